package dev.sparksft.cli;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.Adapter;
import dev.sparksft.runtime.Torch;
import dev.sparksft.train.Models;
import dev.sparksft.train.Outputs;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * {@code sft export CONFIG.yaml}: LLaMA-Factory's export. With adapter_name_or_path, the LoRA
 * adapter is merged into model_name_or_path (W += scaling B A); without, model_name_or_path is
 * written as it is (a full fine-tune's output). The result is a Hugging Face model in export_dir,
 * in safetensors shards of at most export_size GB (10^9 bytes, as Hugging Face counts), with the
 * base model's tokenizer and generation files.
 */
public final class ExportCommand {
    private static final Logger LOG = LoggerFactory.getLogger(ExportCommand.class);

    private ExportCommand() {}

    public static Path run(SftConfig config) throws IOException {
        var m = config.model();
        if (m.exportDir() == null) {
            throw new UserError("export needs export_dir (where the exported model goes)");
        }
        Path base = Path.of(m.modelNameOrPath());
        Path adapter = m.adapterNameOrPath() == null ? null : Path.of(m.adapterNameOrPath());
        if (adapter != null && !Adapter.isAdapterDir(adapter)) {
            throw new UserError("adapter_name_or_path: " + adapter + " has no "
                    + Adapter.CONFIG_FILE + "; it is not a PEFT adapter directory");
        }
        Path out = Path.of(m.exportDir());
        if (Files.isDirectory(out)) {
            try (var entries = Files.list(out)) {
                if (entries.findAny().isPresent()) {
                    throw new UserError("export_dir " + out + " is not empty; choose a new directory");
                }
            }
        }
        Torch.load(config.training().numThreads(), config.training().intraOpThreads());
        CausalLm model = Models.forInference(base, base, adapter, 0, new Device(torch.DeviceType.CPU),
                config.training().seed());
        if (model.adapter() != null) {
            model.adapter().mergeInto(model.weights());
        } else {
            LOG.info("no adapter_name_or_path: exporting {} as it is", base);
        }
        Files.createDirectories(out);
        Outputs.open(out, base).exportModel(new CausalLm(model.config(), model.weights()), m.exportSize() * 1_000_000_000L);
        LOG.info("exported to {} in shards of at most {} GB", out, m.exportSize());
        return out;
    }
}
