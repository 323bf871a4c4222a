package dev.sparksft.run;

import dev.sparksft.config.SftConfig;
import dev.sparksft.runtime.CpuFeatures;
import dev.sparksft.runtime.Torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Loads libtorch with a rank's threads, chosen for the dtype the run computes in: OpenBLAS gets
 * {@code blasThreads} (it does the float32 matmuls), libtorch's intra-op pool intra_op_threads
 * or, unset, what {@link CpuFeatures#intraOpThreads} picks (all of them for bf16, whose matmuls
 * run on that pool, else 1). A bf16 run on a CPU without bf16 matmuls is said once,
 * as a warning, instead of running slowly without a word.
 */
public final class RankThreads {
    private static final Logger LOG = LoggerFactory.getLogger(RankThreads.class);
    private static boolean warned;

    private RankThreads() {}

    /** @param onCpu whether this rank computes on the CPU (not a GPU) */
    public static void load(SftConfig config, int blasThreads, boolean onCpu) {
        boolean bf16 = config.training().bf16() || config.finetuning().pureBf16();
        CpuFeatures cpu = CpuFeatures.current();
        int intraOp = cpu.intraOpThreads(config.training().intraOpThreads(), blasThreads, bf16 && onCpu);
        Torch.load(blasThreads, intraOp);
        String warning = cpu.bf16Warning(bf16, onCpu);
        synchronized (RankThreads.class) {
            if (warning != null && !warned) {
                warned = true;
                LOG.warn(warning);
            }
        }
    }
}
