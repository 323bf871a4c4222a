package dev.sparksft.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.junit.jupiter.api.Test;

/** Scheduler curves at chosen steps, values worked out from transformers' optimization.py formulas. */
class LrScheduleTest {
    static final double EPS = 1e-12;

    static LrSchedule s(String type, Map<String, Object> kwargs) {
        return new LrSchedule(type, 1.0, 10, 100, kwargs);
    }

    @Test
    void linear() {
        LrSchedule s = s("linear", Map.of());
        assertEquals(0.0, s.lr(0), EPS, "warmup starts at 0");
        assertEquals(0.5, s.lr(5), EPS);
        assertEquals(1.0, s.lr(10), EPS);
        assertEquals(0.5, s.lr(55), EPS, "(100 - 55) / 90");
        assertEquals(0.0, s.lr(100), EPS);
    }

    @Test
    void cosineAndRestarts() {
        assertEquals(0.5, s("cosine", Map.of()).lr(55), EPS, "half way: 0.5 (1 + cos(pi/2))");
        assertEquals(0.0, s("cosine", Map.of()).lr(100), EPS);
        LrSchedule r = s("cosine_with_restarts", Map.of("num_cycles", 2));
        assertEquals(1.0, r.lr(55), EPS, "second cycle restarts at the top");
        assertEquals(0.5174497483512506, r.lr(32), EPS);
        assertEquals(0.0, r.lr(100), EPS);
    }

    @Test
    void polynomialConstantInverseSqrt() {
        LrSchedule p = s("polynomial", Map.of("lr_end", 0.1, "power", 2.0));
        assertEquals(0.325, p.lr(55), EPS, "(1 - 0.1) * 0.5^2 + 0.1");
        assertEquals(0.1, p.lr(101), EPS, "past the end: lr_end");
        assertEquals(1.0, s("constant", Map.of()).lr(3), EPS);
        assertEquals(0.5, s("constant_with_warmup", Map.of()).lr(5), EPS);
        assertEquals(1.0, s("constant_with_warmup", Map.of()).lr(50), EPS);
        assertEquals(0.5, s("inverse_sqrt", Map.of()).lr(40), EPS, "1 / sqrt((40 + 10 - 10) / 10)");
    }

    @Test
    void cosineWithMinLrAndWarmupStableDecay() {
        assertEquals(0.55, s("cosine_with_min_lr", Map.of("min_lr_rate", 0.1)).lr(55), EPS);
        assertEquals(0.55, s("cosine_with_min_lr", Map.of("min_lr", 0.1)).lr(55), EPS);
        LrSchedule wsd = s("warmup_stable_decay", Map.of("num_decay_steps", 20, "min_lr_ratio", 0.1));
        assertEquals(0.55, wsd.lr(5), EPS, "linear warmup from min_lr_ratio");
        assertEquals(1.0, wsd.lr(50), EPS, "stable");
        assertEquals(0.55, wsd.lr(90), EPS, "half way through the cosine decay");
        assertEquals(0.1, wsd.lr(100), EPS, "min_lr_ratio after the decay");
    }

    @Test
    void warmupStepsFollowHf() {
        assertEquals(7, LrSchedule.warmupSteps(0, 0.061, 100), "ceil(100 x 0.061)");
        assertEquals(4, LrSchedule.warmupSteps(4, 0.0, 100));
    }

    @Test
    void badKwargsAreNamed() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> s("cosine", Map.of("power", 2))).getMessage()
                .contains("'power' is not a parameter of cosine"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> s("cosine_with_min_lr", Map.of())).getMessage()
                .contains("exactly one of lr_scheduler_kwargs.min_lr"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> s("polynomial", Map.of("lr_end", 2.0))).getMessage()
                .contains("must be smaller than learning_rate"));
    }
}
