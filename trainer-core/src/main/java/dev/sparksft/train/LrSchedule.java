package dev.sparksft.train;

import dev.sparksft.UserError;
import java.util.Map;
import java.util.Set;

/**
 * The learning-rate multiplier at each optimizer step, with the formulas of transformers'
 * {@code get_scheduler} (LambdaLR lambdas; step counts from 0 and the multiplier of step k
 * applies to the k-th update). {@code lr_scheduler_kwargs} carry the scheduler-specific knobs
 * (num_cycles, power, lr_end, timescale, min_lr, min_lr_rate, num_decay_steps, num_stable_steps,
 * warmup_type, decay_type, min_lr_ratio).
 */
public final class LrSchedule {
    private static final Map<String, Set<String>> KWARGS = Map.of(
            "linear", Set.of(),
            "cosine", Set.of("num_cycles"),
            "cosine_with_restarts", Set.of("num_cycles"),
            "polynomial", Set.of("lr_end", "power"),
            "constant", Set.of(),
            "constant_with_warmup", Set.of(),
            "inverse_sqrt", Set.of("timescale"),
            "cosine_with_min_lr", Set.of("num_cycles", "min_lr", "min_lr_rate"),
            "warmup_stable_decay", Set.of("num_decay_steps", "num_stable_steps", "warmup_type", "decay_type",
                    "min_lr_ratio", "num_cycles"));

    private final String type;
    private final double baseLr;
    private final int warmupSteps;
    private final int trainingSteps;
    private final Map<String, Object> kwargs;

    /**
     * @param warmupSteps   HF's {@code get_warmup_steps}: warmup_steps if > 0 else ceil(total x warmup_ratio)
     * @param trainingSteps total optimizer steps of the run
     */
    public LrSchedule(String type, double baseLr, int warmupSteps, int trainingSteps, Map<String, Object> kwargs) {
        Set<String> allowed = KWARGS.get(type);
        if (allowed == null) {
            throw new UserError("lr_scheduler_type: unknown scheduler '" + type + "'");
        }
        for (String k : kwargs.keySet()) {
            if (!allowed.contains(k)) {
                throw new UserError("lr_scheduler_kwargs: '" + k + "' is not a parameter of " + type
                        + (allowed.isEmpty() ? " (it takes none)" : "; it takes " + allowed));
            }
        }
        this.type = type;
        this.baseLr = baseLr;
        this.warmupSteps = warmupSteps;
        this.trainingSteps = trainingSteps;
        this.kwargs = Map.copyOf(kwargs);
        if (type.equals("polynomial") && !(baseLr > number("lr_end", 1e-7))) {
            throw new UserError("lr_scheduler_kwargs.lr_end (" + number("lr_end", 1e-7)
                    + ") must be smaller than learning_rate (" + baseLr + ")");
        }
        if (type.equals("cosine_with_min_lr") && kwargs.containsKey("min_lr") == kwargs.containsKey("min_lr_rate")) {
            throw new UserError("cosine_with_min_lr needs exactly one of lr_scheduler_kwargs.min_lr and "
                    + "lr_scheduler_kwargs.min_lr_rate");
        }
        if (type.equals("warmup_stable_decay") && !kwargs.containsKey("num_decay_steps")) {
            throw new UserError("warmup_stable_decay needs lr_scheduler_kwargs.num_decay_steps");
        }
    }

    public int warmupSteps() {
        return warmupSteps;
    }

    /** HF {@code TrainingArguments.get_warmup_steps}. */
    public static int warmupSteps(int warmupSteps, double warmupRatio, int trainingSteps) {
        return warmupSteps > 0 ? warmupSteps : (int) Math.ceil(trainingSteps * warmupRatio);
    }

    /** Learning rate for the update at (0-based) step {@code step}. */
    public double lr(int step) {
        return baseLr * multiplier(step);
    }

    double multiplier(int step) {
        double warm = (double) step / Math.max(1, warmupSteps);
        double progress = (double) (step - warmupSteps) / Math.max(1, trainingSteps - warmupSteps);
        return switch (type) {
            case "constant" -> 1.0;
            case "constant_with_warmup" -> step < warmupSteps ? warm : 1.0;
            case "linear" -> step < warmupSteps ? warm
                    : Math.max(0.0, (double) (trainingSteps - step) / Math.max(1, trainingSteps - warmupSteps));
            case "cosine" -> step < warmupSteps ? warm
                    : Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * number("num_cycles", 0.5) * 2.0 * progress)));
            case "cosine_with_restarts" -> {
                if (step < warmupSteps) {
                    yield warm;
                }
                if (progress >= 1.0) {
                    yield 0.0;
                }
                yield Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * ((number("num_cycles", 1) * progress) % 1.0))));
            }
            case "polynomial" -> {
                double lrEnd = number("lr_end", 1e-7);
                if (step < warmupSteps) {
                    yield warm;
                } else if (step > trainingSteps) {
                    yield lrEnd / baseLr;
                }
                double remaining = 1.0 - (double) (step - warmupSteps) / (trainingSteps - warmupSteps);
                yield ((baseLr - lrEnd) * Math.pow(remaining, number("power", 1.0)) + lrEnd) / baseLr;
            }
            case "inverse_sqrt" -> {
                double timescale = number("timescale", warmupSteps > 0 ? warmupSteps : 10_000);
                yield step < warmupSteps ? warm : 1.0 / Math.sqrt((step + timescale - warmupSteps) / timescale);
            }
            case "cosine_with_min_lr" -> {
                if (step < warmupSteps) {
                    yield warm;
                }
                double minRate = kwargs.containsKey("min_lr") ? number("min_lr", 0) / baseLr : number("min_lr_rate", 0);
                double factor = 0.5 * (1.0 + Math.cos(Math.PI * number("num_cycles", 0.5) * 2.0 * progress));
                yield Math.max(0.0, factor * (1 - minRate) + minRate);
            }
            case "warmup_stable_decay" -> wsd(step);
            default -> throw new IllegalStateException(type);
        };
    }

    private double wsd(int step) {
        int decay = (int) number("num_decay_steps", 0);
        int stable = kwargs.containsKey("num_stable_steps") ? (int) number("num_stable_steps", 0)
                : trainingSteps - warmupSteps - decay;
        double minRatio = number("min_lr_ratio", 0);
        if (step < warmupSteps) {
            double progress = (double) step / Math.max(1, warmupSteps);
            double f = switch (text("warmup_type", "linear")) {
                case "linear" -> progress;
                case "cosine" -> 0.5 * (1.0 - Math.cos(Math.PI * progress));
                case "1-sqrt" -> 1.0 - Math.sqrt(1.0 - progress);
                default -> throw new UserError("lr_scheduler_kwargs.warmup_type must be linear, cosine or 1-sqrt");
            };
            return Math.max(0.0, f * (1.0 - minRatio) + minRatio);
        }
        if (step < warmupSteps + stable) {
            return 1.0;
        }
        if (step < warmupSteps + stable + decay) {
            double progress = (double) (step - warmupSteps - stable) / Math.max(1, decay);
            double f = switch (text("decay_type", "cosine")) {
                case "linear" -> 1.0 - progress;
                case "cosine" -> 0.5 * (1.0 + Math.cos(Math.PI * number("num_cycles", 0.5) * 2.0 * progress));
                case "1-sqrt" -> 1.0 - Math.sqrt(progress);
                default -> throw new UserError("lr_scheduler_kwargs.decay_type must be linear, cosine or 1-sqrt");
            };
            return Math.max(0.0, f * (1.0 - minRatio) + minRatio);
        }
        return minRatio;
    }

    private double number(String key, double fallback) {
        Object v = kwargs.get(key);
        if (v == null) {
            return fallback;
        }
        if (v instanceof Number n) {
            return n.doubleValue();
        }
        try {
            return Double.parseDouble(v.toString());
        } catch (NumberFormatException e) {
            throw new UserError("lr_scheduler_kwargs." + key + " must be a number, got '" + v + "'");
        }
    }

    private String text(String key, String fallback) {
        Object v = kwargs.get(key);
        return v == null ? fallback : v.toString();
    }
}
