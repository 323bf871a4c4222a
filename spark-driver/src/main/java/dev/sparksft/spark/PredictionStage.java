package dev.sparksft.spark;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.config.SftConfig;
import dev.sparksft.generate.Predictor;
import dev.sparksft.model.CausalLm;
import dev.sparksft.train.Models;
import dev.sparksft.run.RankThreads;
import dev.sparksft.template.SupervisedEncoder;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.function.FlatMapFunction;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;

/**
 * One task of the prediction stage, an ordinary Spark stage: the task loads the model once,
 * generates for the prompts of its partition (batched, sorted by length) and returns the rows
 * with their example index. A failed task is retried alone; the driver puts rows in input order.
 */
final class PredictionStage implements FlatMapFunction<Iterator<Predictor.Prompt>, Predictor.Row> {
    private final String configJson;
    private final String modelPath;       // the trained output_dir, or model_name_or_path for predict-only runs
    private final boolean localMaster;

    PredictionStage(String configJson, String modelPath, boolean localMaster) {
        this.configJson = configJson;
        this.modelPath = modelPath;
        this.localMaster = localMaster;
    }

    @Override
    public Iterator<Predictor.Row> call(Iterator<Predictor.Prompt> prompts) throws Exception {
        List<Predictor.Prompt> mine = new ArrayList<>();
        prompts.forEachRemaining(mine::add);
        if (mine.isEmpty()) {
            return List.<Predictor.Row>of().iterator();
        }
        ObjectNode values = RunConfig.values(configJson);
        SftConfig config = SftConfig.fromValues(values);
        TaskContext ctx = TaskContext.get();
        RankThreads.load(config, values.has("num_threads") ? config.training().numThreads() : ctx.cpus(),
                !config.distributed().cuda());
        FaultInjection.ofTask().beforePrediction(ctx.partitionId());
        SupervisedEncoder encoder = ExecutorEncoders.get(new ExecutorEncoders.Key(configJson));
        Device device = new Device(torch.DeviceType.CPU);
        if (config.distributed().cuda()) {   // the GPU Spark gave this task, as in training
            int index = GpuAssignment.deviceIndex(ctx.resourcesJMap(), System.getenv("CUDA_VISIBLE_DEVICES"),
                    localMaster, ctx.partitionId());
            device = TrainingStage.cudaDevice(index, "prediction task " + ctx.partitionId() + " is cuda:" + index);
        }
        String adapter = config.model().adapterNameOrPath();
        java.nio.file.Path base = ModelFiles.local(config.model().modelNameOrPath());
        CausalLm model = Models.forInference(base, ModelFiles.local(modelPath),
                adapter == null ? null : ModelFiles.local(adapter), encoder.newTokens(), device,
                config.training().seed(), Models.quantization(config));   // the weights the training ranks computed with
        // a vision-language model's prompts' images, read here by their resolved paths, never through the driver
        dev.sparksft.train.BatchImages images = dev.sparksft.train.BatchImages.forModel(model, base,
                HadoopMediaFiles.of(config.data().mediaDir()), config.model().imageMaxPixels(),
                config.model().imageMinPixels());
        return new Predictor(model, encoder, config.generating(), config.training().perDeviceEvalBatchSize(),
                config.training().seed(), images).predictPrompts(mine).iterator();
    }
}
