package dev.sparksft.cli;

import dev.sparksft.config.SftConfig;
import dev.sparksft.run.LocalRun;
import dev.sparksft.train.Trainer;
import java.io.IOException;

/** {@code sft train CONFIG.yaml [key=value ...]}: single-process SFT, evaluation and prediction with LLaMA-Factory's outputs. */
public final class TrainCommand {
    private TrainCommand() {}

    /** @return the training result, or null when the run did not train */
    public static Trainer.Result run(SftConfig config) throws IOException {
        return LocalRun.run(config);
    }
}
