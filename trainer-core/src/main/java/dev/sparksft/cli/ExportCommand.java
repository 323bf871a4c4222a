package dev.sparksft.cli;

import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.model.CausalLm;
import dev.sparksft.model.Adapter;
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
        if (m.quantized()) {
            // LLaMA-Factory refuses both: merging into a quantized model, and saving bnb 4-bit weights as a model
            throw new UserError("quantization_bit: " + m.quantizationBit() + " with export: " + (m.adapterNameOrPath() != null
                    ? "Cannot merge adapters to a quantized model" : "a 4-bit model cannot be exported")
                    + "; remove quantization_bit: an adapter trained over 4-bit weights merges into the unquantized base "
                    + "model_name_or_path, read from disk (as LLaMA-Factory's merge_lora examples do)");
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
        dev.sparksft.run.RankThreads.load(config, config.training().numThreads(), true);
        // with a template, the base model grows for the tokens its training run added (the adapter's
        // embed_tokens and lm_head have the grown shape) and the exported tokenizer holds them
        dev.sparksft.tokenizer.Tokenizer tokenizer = null;
        dev.sparksft.tokenizer.NewTokens tokens = dev.sparksft.tokenizer.NewTokens.none(0);
        if (config.data().template() != null) {
            try (dev.sparksft.tokenizer.Tokenizer raw = dev.sparksft.tokenizer.Tokenizer.load(base)) {
                var encoder = dev.sparksft.template.SupervisedEncoder.of(config.data(), m, raw);
                tokenizer = encoder.tokenizer();
                tokens = encoder.newTokens();
            }
        }
        CausalLm model = Models.forInference(base, base, adapter, tokens, new Device(torch.DeviceType.CPU),
                config.training().seed());
        if (model.adapter() != null) {
            model.adapter().mergeInto(model.weights());
        } else {
            LOG.info("no adapter_name_or_path: exporting {} as it is", base);
        }
        Files.createDirectories(out);
        Outputs outputs = Outputs.open(out, base);
        if (tokenizer != null) {
            outputs.withTokenizer(tokenizer);
        }
        outputs.exportModel(new CausalLm(model.config(), model.weights()), m.exportSize() * 1_000_000_000L);
        LOG.info("exported to {} in shards of at most {} GB", out, m.exportSize());
        return out;
    }
}
