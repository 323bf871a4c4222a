package dev.sparksft.spark;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.config.SftConfig;
import dev.sparksft.config.TrainingArguments;
import dev.sparksft.data.TokenizedExample;
import dev.sparksft.dist.Heartbeat;
import dev.sparksft.dist.Rendezvous;
import dev.sparksft.dist.World;
import dev.sparksft.model.CausalLm;
import dev.sparksft.run.RankThreads;
import dev.sparksft.template.SupervisedEncoder;
import dev.sparksft.train.Checkpoints;
import dev.sparksft.train.Models;
import dev.sparksft.train.Outputs;
import dev.sparksft.train.Trainer;
import dev.sparksft.run.RankRun;
import java.io.IOException;
import java.io.Serializable;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.apache.spark.BarrierTaskContext;
import org.bytedeco.pytorch.Device;
import org.bytedeco.pytorch.global.torch;
import org.apache.spark.SparkEnv;
import scala.Tuple2;
import scala.collection.Iterator;
import scala.collection.JavaConverters;
import scala.runtime.AbstractFunction1;

/**
 * One training rank: the body of a barrier task. Rank 0 opens the rendezvous store and publishes
 * its address and the checkpoint every rank resumes from through {@code allGather}; every rank
 * starts its {@link Heartbeat} there, loads the model (from that checkpoint after a retry), joins
 * one process group (Gloo on cpu, NCCL on cuda), and runs the trainer on the rank's sorted slots.
 * Rank 0 writes checkpoints, the final model and the results. A rank that fails reports its rank,
 * step and last log lines.
 */
final class TrainingStage extends AbstractFunction1<Iterator<Tuple2<Slot, TokenizedExample>>, Iterator<String>>
        implements Serializable {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final String configJson;
    private final int numExamples;
    private final ArrayList<TokenizedExample> eval;
    private final String resumeFrom;       // resume_from_checkpoint resolved by the driver: checkpoint-N, a path, or null
    private final boolean localMaster;
    private transient Trainer current;     // for the failure report of this task

    TrainingStage(String configJson, int numExamples, List<TokenizedExample> eval, String resumeFrom, boolean localMaster) {
        this.configJson = configJson;
        this.numExamples = numExamples;
        this.eval = new ArrayList<>(eval);
        this.resumeFrom = resumeFrom;
        this.localMaster = localMaster;
    }

    @Override
    public Iterator<String> apply(Iterator<Tuple2<Slot, TokenizedExample>> slots) {
        BarrierTaskContext ctx = BarrierTaskContext.get();
        int rank = ctx.partitionId();
        int size = ctx.getTaskInfos().length;
        try {
            String summary = run(ctx, rank, size, JavaConverters.asJava(slots));
            return JavaConverters.asScala(List.of(summary).iterator());
        } catch (Throwable t) {
            throw new RankFailedException(rank, size, t, current);
        } finally {
            current = null;
        }
    }

    private String run(BarrierTaskContext ctx, int rank, int size, java.util.Iterator<Tuple2<Slot, TokenizedExample>> slots)
            throws IOException {
        ObjectNode values = RunConfig.values(configJson);
        SftConfig config = SftConfig.fromValues(values);
        TrainingArguments args = config.training();
        // threads per rank: num_threads when given, else the cores Spark gave the task (spark.task.cpus)
        RankThreads.load(config, values.has("num_threads") ? args.numThreads() : ctx.cpus(), !config.distributed().cuda());
        Duration timeout = Duration.ofSeconds(config.distributed().ddpTimeout());
        Device device = new Device(torch.DeviceType.CPU);
        if (config.distributed().cuda()) {
            String visible = System.getenv("CUDA_VISIBLE_DEVICES");
            int index = GpuAssignment.deviceIndex(ctx.resourcesJMap(), visible, localMaster, rank);
            device = cudaDevice(index, "rank " + rank + " (Spark GPU " + GpuAssignment.address(ctx.resourcesJMap(), rank)
                    + (visible == null ? "" : ", CUDA_VISIBLE_DEVICES=" + visible) + ") is cuda:" + index);
        }
        OutputMirror output = OutputMirror.of(args.outputDir(), ModelFiles.hadoopConf()).forRank(rank);
        output.resetStaging();
        Path outputDir = output.localDir();
        // the address the other ranks reach this executor at; the store and Gloo listen there only. On a
        // local master every rank is a thread of this JVM, and loopback keeps both off the network.
        String host = localMaster ? "127.0.0.1" : SparkEnv.get().blockManager().blockManagerId().host();
        Rendezvous rendezvous = null;
        Heartbeat heartbeat = null;
        try {
            String offer = "";
            if (rank == 0) {
                rendezvous = Rendezvous.host(host, size, timeout);
                offer = rendezvous.address().encoded() + "\n" + resumePoint(output);
            }
            // rank 0's store address with this attempt's key namespace (over Spark RPC, which spark.authenticate
            // and spark.network.crypto.enabled protect), and the checkpoint every rank resumes from: a name in
            // output_dir or a path
            String[] gathered = ctx.allGather(offer)[0].split("\n", -1);
            Rendezvous.Address address = Rendezvous.Address.parse(gathered[0]);
            // from here on every wait for another rank is bounded by its heartbeat, not by ddp_timeout alone
            heartbeat = Heartbeat.start(address, rank, size, Duration.ofSeconds(config.distributed().rankSilenceTimeout()));
            Path resume = gathered[1].isEmpty() ? null
                    : gathered[1].startsWith("checkpoint-") ? output.fetchCheckpoint(gathered[1]) : Path.of(gathered[1]);
            if (rank == 0 && resume != null) {
                output.fetchLog();
            }
            FaultInjection faults = FaultInjection.ofTask(heartbeat::stopBeating);
            // everything that can fail on one rank happens before the process group forms: a rank that fails
            // here fails its task, Spark interrupts the others (TrainingJob asks it to), and their wait in
            // World.join for the ranks still loading ends at once instead of after ddp_timeout
            faults.beforeLoad(rank);
            SupervisedEncoder encoder = ExecutorEncoders.get(new ExecutorEncoders.Key(configJson));
            Path modelDir = ModelFiles.local(config.model().modelNameOrPath());
            String adapter = config.model().adapterNameOrPath();
            CausalLm model = Models.forTraining(config, modelDir, resume, adapter == null ? null : ModelFiles.local(adapter),
                    encoder.newTokens(), device);
            faults.beforeJoin(rank);
            try (World world = World.join(rank, size, address, host, device, timeout, heartbeat)) {
                Outputs outputs = Outputs.open(outputDir, modelDir).mirroredBy(output::push, output::remove)
                        .withTokenizer(encoder.tokenizer());
                Trainer.Result result = RankRun.trainAndEvaluate(config, model, modelDir, numExamples,
                        new SlottedBatches(slots, rank, args.gradientAccumulationSteps(), faults), eval, world,
                        encoder.tokenizer().padId(), outputs, resume == null ? null : Checkpoints.load(resume),
                        HadoopMediaFiles.of(config.data().mediaDir()), trainer -> current = trainer).result();
                ObjectNode summary = JSON.createObjectNode().put("rank", rank).put("global_step", result.globalStep())
                        .put("epoch", result.epoch()).put("runtime", result.runtimeSeconds())
                        .put("resumed_from", resume == null ? null : resume.getFileName().toString());
                if (Double.isFinite(result.trainLoss())) {
                    summary.put("train_loss", result.trainLoss());
                }
                if (rank == 0) {
                    output.pushFinal();
                }
                world.allReduceSum(0L);   // nobody closes the group (and rank 0 the store) while others still use it
                return JSON.writeValueAsString(summary);
            }
        } finally {
            if (heartbeat != null) {
                heartbeat.close();
            }
            if (rendezvous != null) {
                rendezvous.close();
            }
        }
    }

    /**
     * Where the ranks start: the newest intact checkpoint among resume_from_checkpoint and output_dir's
     * checkpoints (an earlier attempt of this stage writes them there), as a name in output_dir
     * ("checkpoint-N"), a path, or "" for the model itself. Checkpoints.newestIntact reads each
     * candidate's files (rank 0's download of a remote one) and skips corrupt ones.
     */
    private String resumePoint(OutputMirror output) throws IOException {
        List<String> names = output.checkpoints();
        // the driver chose the newest of output_dir: below it only older ones, all candidates
        boolean chosenInOutputDir = resumeFrom != null && resumeFrom.startsWith("checkpoint-");
        if (resumeFrom != null && !chosenInOutputDir) {   // a path the driver verified: newer checkpoints supersede it
            long from = Checkpoints.step(Path.of(resumeFrom));
            names = names.stream().filter(n -> Checkpoints.stepOf(n) > from).toList();
        }
        Optional<Path> intact = Checkpoints.newestIntact(names, output::fetchCheckpoint, output.describe(), chosenInOutputDir);
        return intact.map(p -> p.getFileName().toString()).orElse(resumeFrom == null ? "" : resumeFrom);
    }

    /**
     * The CUDA device {@code index}, checked against what this process's libtorch sees. The model,
     * its optimizer state and every batch then live there; collectives go through NCCL.
     */
    static Device cudaDevice(int index, String assignment) {
        if (!torch.cuda_is_available()) {
            throw new UserError("device: cuda: " + assignment + ", but this libtorch has no CUDA device "
                    + "(a CPU build, or no driver): build with -Pgpu and run on a CUDA 13 host, or set device: cpu");
        }
        int visible = torch.cuda_device_count();
        if (index >= visible) {
            throw new UserError("device: cuda: " + assignment + ", but this process sees only " + visible
                    + " CUDA device(s); check the discovery script and CUDA_VISIBLE_DEVICES");
        }
        return new Device(torch.DeviceType.CUDA, (byte) index);
    }
}
