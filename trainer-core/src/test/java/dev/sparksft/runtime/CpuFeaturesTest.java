package dev.sparksft.runtime;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** The bf16 capability read from /proc/cpuinfo text, the intra-op threads chosen from it, and the warning. */
class CpuFeaturesTest {
    private static final String AVX2_ONLY = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n\n"
            + "processor\t: 1\nflags\t\t: fpu sse2 avx avx2 fma\n";
    private static final String SAPPHIRE = "processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n";
    private static final String ZEN4 = "flags\t\t: avx2 avx512f avx512bw avx512_bf16\n";

    @Test
    void bf16MatmulsNeedAvx512Bf16OrAmx() {
        assertFalse(CpuFeatures.parse(AVX2_ONLY).bf16Matmul());
        assertTrue(CpuFeatures.parse(SAPPHIRE).bf16Matmul());
        assertTrue(CpuFeatures.parse(ZEN4).bf16Matmul());
        assertTrue(CpuFeatures.parse("no flags here\n").bf16Matmul(), "unknown: taken as capable");
    }

    @Test
    void intraOpThreadsFollowTheDtypeUnlessConfigured() {
        CpuFeatures capable = CpuFeatures.parse(SAPPHIRE);
        CpuFeatures plain = CpuFeatures.parse(AVX2_ONLY);
        assertEquals(4, capable.intraOpThreads(null, 4, true), "bf16 on oneDNN: every core of the rank");
        assertEquals(1, capable.intraOpThreads(null, 4, false), "float32: OpenBLAS has the cores");
        assertEquals(4, plain.intraOpThreads(null, 4, true), "reference bf16 kernels split across the pool too");
        assertEquals(1, plain.intraOpThreads(null, 4, false));
        assertEquals(3, plain.intraOpThreads(3, 4, true), "intra_op_threads as set");
        assertEquals(2, capable.intraOpThreads(2, 4, false));
    }

    @Test
    void aBf16RunOnACpuWithoutBf16MatmulsIsWarnedAbout() {
        String warning = CpuFeatures.parse(AVX2_ONLY).bf16Warning(true, true);
        assertTrue(warning.contains("avx512_bf16") && warning.contains("bf16: false"), warning);
        assertNull(CpuFeatures.parse(AVX2_ONLY).bf16Warning(false, true), "float32: nothing to say");
        assertNull(CpuFeatures.parse(AVX2_ONLY).bf16Warning(true, false), "a GPU rank: its own kernels");
        assertNull(CpuFeatures.parse(SAPPHIRE).bf16Warning(true, true));
    }
}
