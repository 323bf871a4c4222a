package dev.sparksft.spark;

import dev.sparksft.config.SftConfig;
import dev.sparksft.template.SupervisedEncoder;
import dev.sparksft.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.Serializable;
import java.util.HashMap;
import java.util.Map;

/**
 * The chat-template encoder of a run, built once per executor JVM (loading a tokenizer per task
 * would cost more than tokenizing a partition) from the run's configuration.
 */
final class ExecutorEncoders {
    /** What identifies an encoder: the run's configuration as JSON (template, cutoff_len, model path...). */
    record Key(String configJson) implements Serializable {}

    private static final Map<Key, SupervisedEncoder> CACHE = new HashMap<>();

    private ExecutorEncoders() {}

    static synchronized SupervisedEncoder get(Key key) throws IOException {
        SupervisedEncoder cached = CACHE.get(key);
        if (cached == null) {
            SftConfig config = RunConfig.parse(key.configJson());
            java.nio.file.Path modelDir = ModelFiles.local(config.model().modelNameOrPath());
            Tokenizer raw = Tokenizer.load(modelDir);
            // lives as long as the executor; an image template reads preprocessor_config.json from the same copy
            cached = SupervisedEncoder.of(config.data(), config.model(), raw, modelDir);
            CACHE.put(key, cached);
        }
        return cached;
    }
}
