package dev.sparksft.bench;

import dev.sparksft.generate.Generator;
import dev.sparksft.generate.Sampling;
import dev.sparksft.model.CausalLm;
import dev.sparksft.runtime.Torch;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

/**
 * Generation throughput of a ~25M-parameter Llama (the bench-train model): generated tokens/s
 * for batches of 1, 8 and 32 prompts at 128 new tokens (no stop token, so every row generates
 * all of them), with the KV cache and without it (the whole sequence recomputed each step), and
 * the padding share of the batches with and without sorting prompts by length. Prints markdown.
 *
 * <p>Usage: GenerateBench [THREADS (2)] [NEW_TOKENS (128)] [NO_CACHE_MAX_BATCH (8)]
 */
public final class GenerateBench {
    private GenerateBench() {}

    public static void main(String[] args) throws Exception {
        int threads = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        int newTokens = args.length > 1 ? Integer.parseInt(args[1]) : 128;
        int noCacheMaxBatch = args.length > 2 ? Integer.parseInt(args[2]) : 8;
        Torch.load(threads, 1);
        CausalLm model = BenchModel.random();
        Random rng = new Random(0);
        List<int[]> prompts = new ArrayList<>();            // 32 prompts of 8..64 tokens
        for (int i = 0; i < 32; i++) {
            int[] p = new int[8 + rng.nextInt(57)];
            for (int j = 0; j < p.length; j++) {
                p[j] = 1 + rng.nextInt(6000);
            }
            prompts.add(p);
        }
        Sampling greedy = Sampling.greedy(newTokens);
        Map<Integer, double[]> rows = new LinkedHashMap<>();
        for (int batch : new int[] {1, 8, 32}) {
            List<int[]> work = prompts.subList(0, batch);
            double cached = tokensPerSecond(new Generator(model, greedy, Set.of(), 0, batch, true), work, newTokens);
            double plain = batch <= noCacheMaxBatch
                    ? tokensPerSecond(new Generator(model, greedy, Set.of(), 0, batch, false), work, newTokens) : Double.NaN;
            rows.put(batch, new double[] {cached, plain});
        }
        System.out.printf("| batch | new tokens | KV cache tokens/s | no cache tokens/s | cache speed-up |%n");
        System.out.printf("| --- | --- | --- | --- | --- |%n");
        rows.forEach((batch, r) -> System.out.printf("| %d | %d | %.0f | %s | %s |%n", batch, newTokens, r[0],
                Double.isNaN(r[1]) ? "not run (slow)" : String.format("%.1f", r[1]),
                Double.isNaN(r[1]) ? "" : String.format("%.1fx", r[0] / r[1])));
        System.out.printf("%nbatch 32 vs batch 1 with the cache: %.1fx tokens/s%n", rows.get(32)[0] / rows.get(1)[0]);
        System.out.printf("padding share of 32 prompts (8..64 tokens) in batches of 8: %.1f%% sorted by length, %.1f%% as given%n",
                100 * Generator.paddingFraction(prompts, 8, true), 100 * Generator.paddingFraction(prompts, 8, false));
    }

    /** Generated tokens per second (warm-up call excluded). */
    static double tokensPerSecond(Generator g, List<int[]> prompts, int newTokens) {
        g.generate(prompts.subList(0, 1));
        long t0 = System.nanoTime();
        List<Generator.Output> out = g.generate(prompts);
        double seconds = (System.nanoTime() - t0) / 1e9;
        long tokens = out.stream().mapToLong(o -> o.ids().length).sum();
        if (tokens != (long) newTokens * prompts.size()) {
            throw new IllegalStateException("expected " + newTokens + " tokens per row, got " + tokens);
        }
        return tokens / seconds;
    }
}
