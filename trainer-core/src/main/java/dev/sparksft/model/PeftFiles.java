package dev.sparksft.model;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/** What LoRA's and OFT's PEFT files share: the weights file and adapter_config.json's modules_to_save. */
final class PeftFiles {
    private PeftFiles() {}

    /**
     * Writes {@code dir}/adapter_model.safetensors: the adapter's own tensors and the saved modules
     * (modules_to_save), in float32, under PEFT's keys, which carry the names of the model's files
     * (gemma3: model.language_model.).
     *
     * @return the file's CRC32C
     */
    static long writeWeights(Path dir, Map<String, Tensor> own, List<String> savedModules, ModelWeights weights)
            throws IOException {
        Map<String, Tensor> out = new TreeMap<>();
        own.forEach((n, t) -> out.put(Adapter.PREFIX + weights.storedName(n), t.to(torch.ScalarType.Float)));
        for (String n : savedModules) {
            out.put(Adapter.PREFIX + weights.storedName(n), weights.get(n).to(torch.ScalarType.Float));
        }
        return Safetensors.write(dir.resolve(Adapter.WEIGHTS_FILE), out);
    }

    /** adapter_config.json's modules_to_save: null when there are none, as PEFT writes it. */
    static void putModulesToSave(ObjectNode config, List<String> modules) {
        if (modules.isEmpty()) {
            config.putNull("modules_to_save");
        } else {
            ArrayNode m = config.putArray("modules_to_save");
            modules.forEach(m::add);
        }
    }
}
