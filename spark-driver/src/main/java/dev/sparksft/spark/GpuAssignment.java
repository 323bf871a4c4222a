package dev.sparksft.spark;

import dev.sparksft.UserError;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.apache.spark.resource.ResourceInformation;

/**
 * Which CUDA device a training task uses (docs/ARCHITECTURE.md, Devices): the GPU Spark assigned to the task
 * ({@code TaskContext.resources().get("gpu")}), as an index among the devices this process sees:
 * Spark's addresses are physical ids, so where CUDA_VISIBLE_DEVICES remaps them, the index is the
 * address's position in that list. A local master has no GPU scheduling: rank r uses device r.
 */
final class GpuAssignment {
    static final String SETTINGS = "spark.executor.resource.gpu.amount=<GPUs per executor>, "
            + "spark.task.resource.gpu.amount=1 and spark.executor.resource.gpu.discoveryScript="
            + "<path of scripts/get-gpus-resources.sh> (see scripts/spark-submit-gpu.example)";

    private GpuAssignment() {}

    /** The GPU address Spark gave the task ("local" on a local master, which schedules no GPUs). */
    static String address(Map<String, ResourceInformation> resources, int partitionId) {
        ResourceInformation gpu = resources.get("gpu");
        return gpu == null || gpu.addresses().length == 0 ? "none, local master: rank " + partitionId
                : String.join(",", gpu.addresses());
    }

    /**
     * @param resources          the task's resources (TaskContext.resources())
     * @param cudaVisibleDevices the executor's CUDA_VISIBLE_DEVICES, or null when unset
     * @param localMaster        whether the master is local[...] (no resource scheduling)
     * @param partitionId        the task's partition: its rank
     */
    static int deviceIndex(Map<String, ResourceInformation> resources, String cudaVisibleDevices, boolean localMaster,
                           int partitionId) {
        ResourceInformation gpu = resources.get("gpu");
        if (gpu == null || gpu.addresses().length == 0) {
            if (localMaster) {
                return partitionId;
            }
            throw new UserError("device: cuda, but Spark assigned no GPU to training task " + partitionId
                    + ". Set " + SETTINGS);
        }
        if (gpu.addresses().length > 1) {
            throw new UserError("training task " + partitionId + " was given " + gpu.addresses().length
                    + " GPUs " + Arrays.toString(gpu.addresses()) + "; each rank uses one: set spark.task.resource.gpu.amount=1");
        }
        String address = gpu.addresses()[0].strip();
        if (cudaVisibleDevices != null && !cudaVisibleDevices.isBlank()) {
            List<String> visible = Arrays.stream(cudaVisibleDevices.split(",")).map(String::strip).toList();
            int index = visible.indexOf(address);
            if (index < 0) {
                throw new UserError("Spark assigned GPU " + address + " to training task " + partitionId
                        + ", but this executor's CUDA_VISIBLE_DEVICES=" + cudaVisibleDevices + " hides it; make the "
                        + "discovery script report the visible ids, or unset CUDA_VISIBLE_DEVICES");
            }
            return index;
        }
        try {
            return Integer.parseInt(address);
        } catch (NumberFormatException e) {
            throw new UserError("Spark assigned GPU address '" + address + "' to training task " + partitionId
                    + "; expected a device number (check the discovery script's output)");
        }
    }
}
