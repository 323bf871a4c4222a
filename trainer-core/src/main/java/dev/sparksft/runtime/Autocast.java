package dev.sparksft.runtime;

import org.bytedeco.pytorch.global.torch;

/**
 * A bf16 autocast region for this thread (torch.autocast(device, dtype=torch.bfloat16)): eligible
 * ops (matmuls, linear, attention) run in bfloat16 while parameters stay float32 masters. The
 * forward pass runs inside; backward outside, as in PyTorch. Closing restores the previous state
 * and drops the cast-weight cache (libtorch's bf16 copies of float32 weights that require grad),
 * unless a {@link StepCasts} scope is open: then the copies live until the scope closes, so the
 * micro-batches of one optimizer step cast each weight once, not once per micro-batch.
 */
public final class Autocast implements AutoCloseable {
    /** Open {@link StepCasts} scopes on this thread (a rank's thread: libtorch's cache is per thread too). */
    private static final ThreadLocal<int[]> STEP_SCOPES = ThreadLocal.withInitial(() -> new int[1]);

    private final torch.DeviceType device;
    private final boolean wasEnabled;

    private Autocast(torch.DeviceType device, boolean enable) {
        this.device = device;
        this.wasEnabled = torch.is_autocast_enabled(device);
        if (enable) {
            torch.set_autocast_dtype(device, torch.ScalarType.BFloat16);
            torch.set_autocast_enabled(device, true);
        }
    }

    /** bf16 autocast on {@code device}'s type (CPU or CUDA) when {@code enable}, else a region that changes nothing. */
    public static Autocast bf16(org.bytedeco.pytorch.Device device, boolean enable) {
        boolean cuda = device.type().value == torch.DeviceType.CUDA.value;
        return new Autocast(cuda ? torch.DeviceType.CUDA : torch.DeviceType.CPU, enable);
    }

    /** bf16 autocast on the CPU when {@code enable}, else a region that changes nothing. */
    public static Autocast cpuBf16(boolean enable) {
        return new Autocast(torch.DeviceType.CPU, enable);
    }

    @Override
    public void close() {
        torch.set_autocast_enabled(device, wasEnabled);
        if (!wasEnabled && STEP_SCOPES.get()[0] == 0) {
            torch.clear_cache();
        }
    }

    /**
     * Keeps autocast's bf16 weight copies across the regions opened inside it: for the
     * micro-batches of one optimizer step, whose weights do not change until the step. Closing it
     * drops them, which must happen before the optimizer changes a weight in place (the cache is
     * keyed by the weight's storage, not its values). {@link #none()} keeps nothing: a run that
     * saves memory (activation checkpointing: one layer's copies at a time; ZeRO 3: gathered
     * weights are new tensors each forward) or has one micro-batch per step.
     */
    public static final class StepCasts implements AutoCloseable {
        private final boolean active;

        private StepCasts(boolean active) {
            this.active = active;
            if (active) {
                STEP_SCOPES.get()[0]++;
            }
        }

        /** Keeps the copies until {@link #close()}. */
        public static StepCasts keep() {
            return new StepCasts(true);
        }

        /** Keeps nothing: each region drops its copies as it closes. */
        public static StepCasts none() {
            return new StepCasts(false);
        }

        @Override
        public void close() {
            if (active && --STEP_SCOPES.get()[0] == 0) {
                torch.clear_cache();
            }
        }
    }
}
