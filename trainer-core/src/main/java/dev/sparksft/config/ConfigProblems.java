package dev.sparksft.config;

import dev.sparksft.UserError;
import java.util.List;

/** Reports every problem of a configuration at once, one per line. */
public final class ConfigProblems extends UserError {
    private final List<String> problems;

    public ConfigProblems(List<String> problems) {
        super(problems.size() == 1 ? "invalid configuration: " + problems.get(0)
                : "invalid configuration (" + problems.size() + " problems):\n  - " + String.join("\n  - ", problems));
        this.problems = List.copyOf(problems);
    }

    public List<String> problems() {
        return problems;
    }

    static void throwIfAny(List<String> problems) {
        if (!problems.isEmpty()) {
            throw new ConfigProblems(problems);
        }
    }
}
