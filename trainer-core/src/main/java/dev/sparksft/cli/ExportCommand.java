package dev.sparksft.cli;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.LoraAdapter;
import dev.sparksft.runtime.Torch;
import dev.sparksft.train.Models;
import dev.sparksft.train.Outputs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

/**
 * {@code sft export CONFIG.yaml}: LLaMA-Factory's export for LoRA: model_name_or_path plus the
 * adapter in adapter_name_or_path, merged (W += scaling B A) into a full Hugging Face model in
 * export_dir, with the base model's tokenizer and generation files.
 */
public final class ExportCommand {
    private ExportCommand() {}

    public static Path run(SftConfig config) throws IOException {
        var m = config.model();
        if (m.adapterNameOrPath() == null || m.exportDir() == null) {
            throw new UserError("export needs adapter_name_or_path (the LoRA adapter to merge) and "
                    + "export_dir (where the merged model goes)");
        }
        Path base = Path.of(m.modelNameOrPath());
        Path adapter = Path.of(m.adapterNameOrPath());
        if (!LoraAdapter.isAdapterDir(adapter)) {
            throw new UserError("adapter_name_or_path: " + adapter + " has no "
                    + LoraAdapter.CONFIG_FILE + "; it is not a PEFT adapter directory");
        }
        Path out = Path.of(m.exportDir());
        if (Files.isDirectory(out) && Files.list(out).findAny().isPresent()) {
            throw new UserError("export_dir " + out + " is not empty; choose a new directory");
        }
        Torch.load(config.training().numThreads(), config.training().intraOpThreads());
        CausalLm model = Models.forInference(base, base, adapter, 0, new Device(torch.DeviceType.CPU));
        model.lora().mergeInto(model.weights());
        Files.createDirectories(out);
        Outputs.open(out, base).saveModel(new CausalLm(model.config(), model.weights()));
        return out;
    }
}
