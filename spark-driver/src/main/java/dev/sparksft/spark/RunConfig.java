package dev.sparksft.spark;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.config.SftConfig;
import java.io.IOException;
import java.io.UncheckedIOException;

/**
 * A run's configuration travels to executors as the JSON of its flat key/values (the YAML file
 * with the key=value overrides applied) and is bound again there, with the same validation.
 */
final class RunConfig {
    private static final ObjectMapper JSON = new ObjectMapper();

    private RunConfig() {}

    static String json(ObjectNode values) {
        try {
            return JSON.writeValueAsString(values);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static ObjectNode values(String json) {
        try {
            return (ObjectNode) JSON.readTree(json);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static SftConfig parse(String json) {
        return SftConfig.fromValues(values(json));
    }
}
