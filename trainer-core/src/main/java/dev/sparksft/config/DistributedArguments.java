package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * How the Spark driver spreads training (spark-sft's own keys, plus Hugging Face's ddp_timeout):
 * the number of ranks, their device, how long a collective may wait (ddp_timeout), how long a rank
 * may send no heartbeat before it fails the stage (rank_silence_timeout, whatever ddp_timeout
 * says: LLaMA-Factory's examples set that to 180000000 s), whether malformed dataset rows are
 * skipped or refuse the run, and the memory of each rank's GPU (device_memory_gb: with it the
 * driver refuses a run whose estimate cannot fit, before any GPU is taken). The single-process CLI
 * uses none of these except the timeouts' validation.
 */
public record DistributedArguments(
        @JsonProperty("world_size") Integer worldSize,
        @JsonProperty("device") String device,
        @JsonProperty("ddp_timeout") Integer ddpTimeout,
        @JsonProperty("rank_silence_timeout") Integer rankSilenceTimeout,
        @JsonProperty("skip_bad_rows") Boolean skipBadRows,
        @JsonProperty("device_memory_gb") Double deviceMemoryGb) {
    public DistributedArguments {
        worldSize = worldSize == null ? 1 : worldSize;
        device = device == null ? "cpu" : device;
        ddpTimeout = ddpTimeout == null ? 1800 : ddpTimeout;   // Hugging Face's default, in seconds
        // well above a step plus an evaluation or a checkpoint save, during which a rank beats on anyway
        rankSilenceTimeout = rankSilenceTimeout == null ? 900 : rankSilenceTimeout;
        skipBadRows = skipBadRows != null && skipBadRows;
        List<String> problems = new ArrayList<>();
        if (worldSize < 1) {
            problems.add("world_size must be >= 1 (the number of training ranks, one Spark task each), got " + worldSize);
        }
        if (!Set.of("cpu", "cuda").contains(device)) {
            problems.add("device must be cpu or cuda, got '" + device + "'");
        }
        if (ddpTimeout < 1) {
            problems.add("ddp_timeout must be >= 1 second (how long a collective waits for a silent rank), got "
                    + ddpTimeout);
        }
        if (rankSilenceTimeout < 1) {
            problems.add("rank_silence_timeout must be >= 1 second (how long a rank may send no heartbeat before the"
                    + " stage fails naming it), got " + rankSilenceTimeout);
        }
        if (deviceMemoryGb != null && !(deviceMemoryGb > 0 && Double.isFinite(deviceMemoryGb))) {
            problems.add("device_memory_gb must be a positive number of GB (each rank's GPU memory, e.g. 80), got "
                    + deviceMemoryGb);
        }
        ConfigProblems.throwIfAny(problems);
    }

    public boolean cuda() {
        return device.equals("cuda");
    }
}
