package dev.sparksft.spark;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Map;
import org.apache.spark.resource.ResourceInformation;
import org.junit.jupiter.api.Test;

/** Which CUDA device a rank uses, from the task's Spark resources and CUDA_VISIBLE_DEVICES. */
class GpuAssignmentTest {
    static Map<String, ResourceInformation> gpus(String... addresses) {
        return Map.of("gpu", new ResourceInformation("gpu", addresses));
    }

    @Test
    void theAssignedAddressIsTheDeviceUnlessCudaVisibleDevicesRemapsIt() {
        assertEquals(3, GpuAssignment.deviceIndex(gpus("3"), null, false, 0));
        assertEquals(3, GpuAssignment.deviceIndex(gpus("3"), "", false, 0));
        // the executor sees physical GPUs 5 and 7 as cuda:0 and cuda:1
        assertEquals(1, GpuAssignment.deviceIndex(gpus("7"), "5, 7", false, 0));
        assertEquals(0, GpuAssignment.deviceIndex(gpus("5"), "5,7", false, 0));
    }

    @Test
    void aLocalMasterUsesThePartitionAsTheDevice() {
        assertEquals(2, GpuAssignment.deviceIndex(Map.of(), null, true, 2));
    }

    @Test
    void missingOrAmbiguousAssignmentsAreClearErrors() {
        Exception e = assertThrows(IllegalArgumentException.class, () -> GpuAssignment.deviceIndex(Map.of(), null, false, 1));
        assertTrue(e.getMessage().contains("assigned no GPU to training task 1")
                && e.getMessage().contains("spark.executor.resource.gpu.amount")
                && e.getMessage().contains("spark.task.resource.gpu.amount=1")
                && e.getMessage().contains("discoveryScript"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GpuAssignment.deviceIndex(gpus("0", "1"), null, false, 0));
        assertTrue(e.getMessage().contains("was given 2 GPUs"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GpuAssignment.deviceIndex(gpus("3"), "0,1", false, 0));
        assertTrue(e.getMessage().contains("CUDA_VISIBLE_DEVICES=0,1 hides it"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> GpuAssignment.deviceIndex(gpus("GPU-3f2a"), null, false, 0));
        assertTrue(e.getMessage().contains("expected a device number"), e.getMessage());
    }
}
