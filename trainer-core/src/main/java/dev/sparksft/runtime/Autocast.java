package dev.sparksft.runtime;

import org.bytedeco.pytorch.global.torch;

/**
 * A bf16 autocast region for this thread (torch.autocast(device, dtype=torch.bfloat16)): eligible
 * ops (matmuls, linear, attention) run in bfloat16 while parameters stay float32 masters. The
 * forward pass runs inside; backward outside, as in PyTorch. Closing restores the previous state
 * and drops the cast-weight cache.
 */
public final class Autocast implements AutoCloseable {
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
        if (!wasEnabled) {
            torch.clear_cache();
        }
    }
}
