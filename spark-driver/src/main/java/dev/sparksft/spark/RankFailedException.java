package dev.sparksft.spark;

import dev.sparksft.train.Trainer;
import java.util.List;

/**
 * A training rank failed: the message names the rank, the step it was on and its last log lines
 * (docs/ARCHITECTURE.md invariant 6), so that the driver's error says which rank broke and where, without
 * anyone digging through executor logs.
 */
final class RankFailedException extends RuntimeException {
    RankFailedException(int rank, int size, Throwable cause, Trainer trainer) {
        super(message(rank, size, cause, trainer), cause);
    }

    private static String message(int rank, int size, Throwable cause, Trainer trainer) {
        StringBuilder m = new StringBuilder("spark-sft rank ").append(rank).append(" of ").append(size).append(" failed");
        if (trainer != null && trainer.log() != null) {
            m.append(" at step ").append(trainer.currentStep());
        }
        m.append(": ").append(cause.getClass().getSimpleName()).append(": ").append(firstLines(cause.getMessage()));
        List<String> lines = trainer == null || trainer.log() == null ? List.of() : trainer.log().recentLines();
        if (!lines.isEmpty()) {
            m.append("\n  last log lines of rank ").append(rank).append(":\n    ").append(String.join("\n    ", lines));
        }
        return m.toString();
    }

    /** libtorch appends a C++ stack trace ("Exception raised from ...") to its messages: keep what precedes it. */
    private static String firstLines(String message) {
        if (message == null) {
            return "";
        }
        int trace = message.indexOf("\nException raised from ");
        return trace < 0 ? message : message.substring(0, trace);
    }
}
