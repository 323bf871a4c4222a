package dev.sparksft.cli;

import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.World;
import dev.sparksft.model.LlamaModel;
import dev.sparksft.runtime.Torch;
import dev.sparksft.tokenizer.Tokenizer;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.Trainer;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** {@code sft train CONFIG.yaml [key=value ...]}: single-process SFT with LLaMA-Factory's outputs. */
public final class TrainCommand {
    private TrainCommand() {}

    public static Trainer.Result run(SftConfig config) throws IOException {
        TrainingArguments args = config.training();
        if (args.outputDir() == null || args.outputDir().isBlank()) {
            throw new IllegalArgumentException("output_dir is required: where checkpoints, the final model and the logs go");
        }
        if (!args.doTrain() && !args.doEval()) {
            throw new IllegalArgumentException("nothing to do: set do_train: true (and/or do_eval: true)");
        }
        config.finetuning().requireImplementedMethod();
        if (config.distributed().worldSize() > 1) {
            throw new IllegalArgumentException("world_size " + config.distributed().worldSize() + " needs the Spark driver: "
                    + "run scripts/spark-sft (sft train is one process; world_size is 1 there)");
        }
        Torch.load(args.numThreads(), args.intraOpThreads());
        Path modelDir = Path.of(config.model().modelNameOrPath());
        Path outputDir = Path.of(args.outputDir());
        Path resumeDir = Checkpoints.resumeDir(args.resumeFromCheckpoint(), outputDir);
        Outputs outputs = Outputs.prepare(outputDir, modelDir, args.overwriteOutputDir(), resumeDir != null);
        try (Tokenizer raw = Tokenizer.load(modelDir)) {
            PreparedData data = PreparedData.load(config, raw, args.seed());
            List<TokenizedExample> train = data.encode(data.train());
            List<TokenizedExample> eval = data.encode(data.eval());
            LlamaModel model = LlamaModel.load(resumeDir != null ? resumeDir : modelDir, data.tokenizer().vocabSize());
            Trainer trainer = new Trainer(args, config.finetuning(), model, train, eval, World.single(),
                    data.tokenizer().padId(), outputs);
            Trainer.Result result = null;
            if (args.doTrain()) {
                result = trainer.trainAndSave(resumeDir == null ? null : Checkpoints.load(resumeDir));
            }
            if (args.doEval()) {
                trainer.evaluateAndSave(result == null ? 0.0 : result.epoch());
            }
            return result;
        }
    }
}
