package dev.sparksft.runtime;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * What this machine's CPU can do for bf16, read from the first {@code flags} line of
 * /proc/cpuinfo: with AVX512-BF16 or AMX, libtorch runs bf16 matmuls in oneDNN (on its intra-op
 * threads); without them it runs its reference kernels, which on the 25.6M bench model made a
 * training step 15-17x slower than fp32 (scripts/bench-precision). Where /proc/cpuinfo is
 * absent (not Linux) nothing is known and bf16 is taken as capable, so no warning is printed.
 */
public record CpuFeatures(Set<String> flags, boolean known) {
    private static final Path CPUINFO = Path.of("/proc/cpuinfo");

    /** This machine's flags. */
    public static CpuFeatures current() {
        try {
            return parse(Files.readString(CPUINFO));
        } catch (IOException | SecurityException e) {
            return new CpuFeatures(Set.of(), false);
        }
    }

    /** The flags of /proc/cpuinfo's text (its first {@code flags} line). */
    static CpuFeatures parse(String cpuinfo) {
        for (String line : cpuinfo.split("\n")) {
            if (line.startsWith("flags")) {
                String list = line.substring(line.indexOf(':') + 1).trim();
                return new CpuFeatures(Arrays.stream(list.split("\\s+")).collect(Collectors.toUnmodifiableSet()), true);
            }
        }
        return new CpuFeatures(Set.of(), false);
    }

    /** Whether bf16 matmuls have hardware support: AVX512-BF16 or AMX-BF16 (true when unknown). */
    public boolean bf16Matmul() {
        return !known || flags.contains("avx512_bf16") || flags.contains("amx_bf16");
    }

    /**
     * libtorch's intra-op threads for a rank: {@code configured} (intra_op_threads) when set;
     * else, when the rank computes in bf16, {@code cores}: bf16 matmuls never reach OpenBLAS, they
     * run on the intra-op pool (oneDNN's kernels where the CPU has bf16 matmuls, libtorch's
     * reference kernels elsewhere, whose forward matmuls also split across it: 2 threads made a
     * bench-model bf16 step 15% faster on a 2-core AVX2 machine), so one thread leaves the other
     * cores idle; else 1 (OpenBLAS does the fp32 matmuls on its own threads, and a second intra-op
     * thread only competes with its spinning workers).
     */
    public int intraOpThreads(Integer configured, int cores, boolean bf16Compute) {
        if (configured != null) {
            return configured;
        }
        return bf16Compute ? cores : 1;
    }

    /**
     * The warning for a bf16 run on a CPU rank without bf16 matmuls, or null when there is
     * nothing to warn about: libtorch falls back to reference kernels without saying so.
     */
    public String bf16Warning(boolean bf16Compute, boolean onCpu) {
        if (!bf16Compute || !onCpu || bf16Matmul()) {
            return null;
        }
        return "bf16 on this CPU runs libtorch's reference bf16 kernels (/proc/cpuinfo has neither avx512_bf16 "
                + "nor amx_bf16): a training step measured about 15x slower than float32. Train in float32 here "
                + "(bf16: false, pure_bf16: false); bf16 pays on GPUs and on CPUs with AVX512-BF16 or AMX";
    }
}
