package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.runtime.Torch;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Header validation of hostile files, and bit-exact load -> save -> load of every layout and dtype. */
class SafetensorsTest {
    @BeforeAll
    static void loadTorch() {
        Torch.load(1);
    }

    /** A file with the given header JSON and {@code dataBytes} zero bytes of data. */
    static Path file(Path dir, String header, int dataBytes) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(json.length).put(json);
        Path f = dir.resolve("model.safetensors");
        Files.write(f, b.array());
        return f;
    }

    static String corruptMessage(Path f) {
        return assertThrows(IllegalArgumentException.class, () -> Safetensors.readHeader(f)).getMessage();
    }

    @Test
    void validHeaderIsRead(@TempDir Path dir) throws Exception {
        Path f = file(dir, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\"__metadata__\":{\"format\":\"pt\"}}", 24);
        Safetensors.Header h = Safetensors.readHeader(f);
        assertArrayEquals(new long[] {2, 3}, h.entries().get("w").shape());
        assertEquals("pt", h.metadata().get("format"));
    }

    @Test
    void hostileHeadersFailWithTheTensorNameAndTheProblem(@TempDir Path dir) throws Exception {
        Path tiny = dir.resolve("tiny.safetensors");
        Files.write(tiny, new byte[] {1, 2, 3});
        assertTrue(corruptMessage(tiny).contains("shorter than the 8-byte header length"));

        // header length claims 2^62 bytes: must not allocate, must fail
        ByteBuffer huge = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(1L << 62).putLong(0);
        Path hugeFile = dir.resolve("huge.safetensors");
        Files.write(hugeFile, huge.array());
        assertTrue(corruptMessage(hugeFile).contains("header length"), corruptMessage(hugeFile));

        assertTrue(corruptMessage(file(dir, "{not json", 0)).contains("not valid JSON"));
        assertTrue(corruptMessage(file(dir, "[1,2]", 0)).contains("not a JSON object"));
        assertTrue(corruptMessage(file(dir, "{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1))
                .contains("tensor 'w': unsupported dtype 'Q4'"));
        assertTrue(corruptMessage(file(dir, "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8))
                .contains("tensor 'w' data_offsets [0, 16] lie outside the data section of 8 bytes"));
        assertTrue(corruptMessage(file(dir, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8))
                .contains("tensor 'w' holds 8 bytes but dtype F32 x shape [3] needs 12"));
        assertTrue(corruptMessage(file(dir, "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4))
                .contains("not a non-negative integer"));
        assertTrue(corruptMessage(file(dir, "{\"w\":{\"dtype\":\"BF16\",\"shape\":[4611686018427387904,4],"
                + "\"data_offsets\":[0,4]}}", 4)).contains("overflows"));
        assertTrue(corruptMessage(file(dir, "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12)).contains("overlap"));
        assertTrue(corruptMessage(file(dir, "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4)).contains("data_offsets"));
    }

    @Test
    void shapeThatContradictsTheConfigNamesTheTensor(@TempDir Path dir) throws Exception {
        Path src = ParityTest.fixture("qwen2");
        Files.copy(src.resolve("config.json"), dir.resolve("config.json"));
        ModelConfig cfg = ModelConfig.load(dir);
        Map<String, Tensor> tensors = new LinkedHashMap<>(ModelWeights.load(src, cfg).tensors());
        tensors.put("model.norm.weight", Tensor.create(new float[7], 7));
        Safetensors.write(dir.resolve("model.safetensors"), tensors);
        String m = assertThrows(IllegalArgumentException.class, () -> ModelWeights.load(dir, cfg)).getMessage();
        assertTrue(m.contains("tensor 'model.norm.weight' has shape [7] but config.json implies [32]"), m);

        tensors.remove("model.norm.weight");
        Safetensors.write(dir.resolve("model.safetensors"), tensors);
        m = assertThrows(IllegalArgumentException.class, () -> ModelWeights.load(dir, cfg)).getMessage();
        assertTrue(m.contains("missing 1 tensor(s), first: model.norm.weight"), m);
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3"})
    void loadSaveLoadIsBitExactInTheSameLayout(String arch, @TempDir Path dir) throws Exception {
        Path src = ParityTest.fixture(arch);
        ModelConfig cfg = ModelConfig.load(src);
        ModelWeights first = ModelWeights.load(src, cfg);
        cfg.save(dir);
        first.save(dir, cfg.torchDtype());
        boolean sharded = Files.exists(src.resolve(ModelWeights.INDEX_FILE));
        assertEquals(sharded, Files.exists(dir.resolve(ModelWeights.INDEX_FILE)), "same single/sharded layout");
        if (sharded) {
            assertTrue(Files.exists(dir.resolve("model-00001-of-00002.safetensors")));
            assertTrue(Files.exists(dir.resolve("model-00002-of-00002.safetensors")));
        }
        ModelWeights second = ModelWeights.load(dir, ModelConfig.load(dir));
        assertEquals(first.tensors().keySet(), second.tensors().keySet());
        for (String name : first.tensors().keySet()) {
            assertEquals(first.storedDtype(name), second.storedDtype(name), name);
            assertArrayEquals(storedBytes(first, name), storedBytes(second, name), name + " bytes differ");
        }
        // the stored bits equal the original file's bits as well
        Safetensors.Header original = Safetensors.readHeader(sharded
                ? src.resolve("model-00001-of-00002.safetensors") : src.resolve("model.safetensors"));
        for (Safetensors.Entry e : original.entries().values()) {
            Tensor raw = Safetensors.readTensor(original, e);
            assertArrayEquals(bytes(raw), storedBytes(second, e.name()), e.name() + " differs from the source file");
        }
    }

    static byte[] storedBytes(ModelWeights w, String name) {
        return bytes(w.get(name).to(w.storedDtype(name).scalarType));
    }

    static byte[] bytes(Tensor t) {
        Tensor c = t.contiguous();
        byte[] out = new byte[(int) c.nbytes()];
        new BytePointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }
}
