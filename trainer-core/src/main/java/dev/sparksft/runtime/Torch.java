package dev.sparksft.runtime;

import dev.sparksft.UserError;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.openblas.global.openblas;
import org.bytedeco.pytorch.global.torch;

/**
 * Loads libtorch once per JVM and sets its thread counts.
 *
 * <p>The resource cache is filled before {@code Loader.load} so that a system libtorch (Debian's
 * libtorch1.13, say) is never linked by accident on a cold first load. Thread counts are set for
 * both libtorch's intra-op pool and OpenBLAS, which does the fp32 matmuls and does not follow
 * {@code torch.set_num_threads}.
 */
public final class Torch {
    private static boolean loaded;

    private Torch() {}

    /** Loads the native libraries (idempotent). */
    public static synchronized void load() {
        if (loaded) {
            return;
        }
        // JavaCPP refuses allocations once the process's RSS passes a multiple of the Java heap
        // (-Xmx1g: 4 GB), which a model's weights pass at once: libtorch's memory is the model's, not
        // the heap's. Read when JavaCPP's Pointer class initialises, so set before the first tensor.
        if (System.getProperty("org.bytedeco.javacpp.maxPhysicalBytes") == null) {
            System.setProperty("org.bytedeco.javacpp.maxPhysicalBytes", "0");
        }
        try {
            Loader.cacheResources(torch.class, "/org/bytedeco/pytorch/" + Loader.getPlatform() + "/");
        } catch (java.io.IOException e) {
            throw new IllegalStateException("cannot unpack libtorch into the JavaCPP cache: " + e.getMessage(), e);
        }
        Loader.load(torch.class);
        loaded = true;
    }

    /** Loads libtorch with {@code numThreads} threads for both OpenBLAS and libtorch's intra-op pool. */
    public static void load(int numThreads) {
        load(numThreads, numThreads);
    }

    /**
     * Loads libtorch with {@code blasThreads} OpenBLAS threads (fp32 matmuls) and
     * {@code intraOpThreads} threads for libtorch's own parallel kernels (elementwise, attention).
     * On 2 cores, 2 + 1 trained the 25M bench model 30% faster than 2 + 2: OpenBLAS workers spin
     * after each matmul and starve a second intra-op thread.
     */
    public static void load(int blasThreads, int intraOpThreads) {
        if (blasThreads < 1 || intraOpThreads < 1) {
            throw new UserError("thread counts must be >= 1, got " + blasThreads + " and " + intraOpThreads);
        }
        load();
        torch.set_num_threads(intraOpThreads);
        openblas.blas_set_num_threads(blasThreads);
    }

    /**
     * A CPU generator for stream {@code key} of run {@code seed} (an example's sampling, a rank's
     * dropout, a parameter's projection): the same on every rank and machine, independent of the
     * others and of torch's global generator, which the ranks of one JVM share.
     */
    public static org.bytedeco.pytorch.Generator generator(long seed, long key) {
        return torch.createCPUGenerator(new java.util.SplittableRandom(seed * 0x9E3779B97F4A7C15L + key).nextLong());
    }
}
