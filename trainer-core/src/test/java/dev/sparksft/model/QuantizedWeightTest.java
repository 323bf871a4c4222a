package dev.sparksft.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.runtime.Torch;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.HexFormat;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

/**
 * 4-bit quantization against the numpy re-creation of bitsandbytes' kernels
 * (src/test/python/make_quantization_fixtures.py): packed codes and the 8-bit nested codes are
 * bit-exact, absmax and dequantized values equal within 1e-6 relative (the fixture computes them
 * in float32 too, so they agree to the bit unless numpy and libtorch round a product differently).
 * The "edge" tensor has an all-zero block, blocks of equal values, values exactly on every NF4 and
 * FP4 threshold and one float32 step either side, tiny negatives, and a short odd tail (485 values);
 * "normal" has 262 blocks, so its nested absmax has a short second 256-block.
 */
class QuantizedWeightTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @BeforeAll
    static void load() {
        Torch.load(1);
    }

    static JsonNode fixture(String name) throws Exception {
        try (InputStream in = QuantizedWeightTest.class.getResourceAsStream("/quantization/" + name + ".json")) {
            return JSON.readTree(in);
        }
    }

    static float[] floats(String hex) {
        ByteBuffer b = ByteBuffer.wrap(HexFormat.of().parseHex(hex)).order(ByteOrder.LITTLE_ENDIAN);
        float[] out = new float[b.remaining() / 4];
        b.asFloatBuffer().get(out);
        return out;
    }

    static byte[] bytes(Tensor t) {
        Tensor c = t.to(torch.ScalarType.Byte).contiguous();
        byte[] out = new byte[(int) c.numel()];
        new BytePointer(c.data_ptr()).capacity(out.length).get(out);
        return out;
    }

    static Tensor input(JsonNode f) {
        long[] shape = {f.get("shape").get(0).asLong(), f.get("shape").get(1).asLong()};
        return Tensor.create(floats(f.get("input").asText()), shape);
    }

    static void assertClose(float[] want, float[] got, String what) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            double tol = 1e-6 * Math.abs(want[i]) + 1e-30;
            assertTrue(Math.abs(want[i] - got[i]) <= tol, what + "[" + i + "]: want " + want[i] + ", got " + got[i]);
        }
    }

    @ParameterizedTest
    @CsvSource({"edge,nf4", "edge,fp4", "normal,nf4", "normal,fp4"})
    void quantizeAndDequantizeEqualTheReference(String name, String kind) throws Exception {
        JsonNode f = fixture(name);
        JsonNode want = f.get(kind);
        FourBitType type = FourBitType.valueOf(kind.toUpperCase());
        Tensor w = input(f);

        QuantizedWeight q = QuantizedWeight.quantize(w, type, false);
        assertEquals(want.get("packed").asText(), HexFormat.of().formatHex(bytes(q.packed())), "packed codes");
        assertClose(floats(want.get("absmax").asText()), Tensors.floats(q.absmax()), "absmax");
        Tensor dq = q.dequantize();
        assertArrayEquals(w.sizes().vec().get(), dq.sizes().vec().get());
        assertClose(floats(want.get("dequantized").asText()), Tensors.floats(dq), "dequantized");
        assertEquals(QuantizedWeight.heldBytes(w.numel(), false), q.packed().numel() + 4 * q.absmax().numel());

        QuantizedWeight nested = QuantizedWeight.quantize(w, type, true);
        assertEquals(want.get("packed").asText(), HexFormat.of().formatHex(bytes(nested.packed())),
                "the 4-bit codes do not depend on double quantization");
        assertEquals(want.get("nested_codes").asText(), HexFormat.of().formatHex(bytes(nested.nested().codes())),
                "8-bit codes of the absmax");
        assertClose(floats(want.get("nested_scales").asText()), Tensors.floats(nested.nested().scales()), "nested scales");
        assertClose(floats(want.get("nested_offset").asText()), new float[] {nested.nested().offset()}, "offset");
        float[] restored = floats(want.get("nested_absmax").asText());
        assertClose(restored, Tensors.floats(nested.absmax()), "absmax restored from 8 bits");
        // the dequantized weight: each value's code value times its block's restored absmax
        float[] codes = Tensors.floats(q.codes());
        float[] table = type.codeValues();
        float[] expected = new float[codes.length];
        for (int i = 0; i < codes.length; i++) {
            expected[i] = table[(int) codes[i]] * restored[i / QuantizedWeight.BLOCKSIZE];
        }
        assertClose(expected, Tensors.floats(nested.dequantize()), "dequantized over nested absmax");
    }

    @Test
    void dynamicMapEqualsTheReference() throws Exception {
        float[] map = NestedAbsmax.DYNAMIC_MAP;
        assertArrayEquals(floats(fixture("normal").get("dynamic_map").asText()), map);
        assertEquals(-0.99296874f, map[0], "signed: no -1, the largest magnitude below is 1 - 0.9/128");
        assertEquals(1f, map[255]);
        for (int i = 1; i < 256; i++) {
            assertTrue(map[i - 1] < map[i], "sorted, no repeats at " + i);
        }
    }

    @Test
    void codesFollowTheKernelsTieRules() {
        // on an NF4 split point the lower code; on an FP4 one the smaller magnitude; tiny negatives are FP4's -0
        float[] x = {0.03979014977812767f, -0.045525018125772476f, 1f, -1f, 0f};
        Tensor t = Tensor.create(x, new long[] {x.length});
        assertArrayEquals(new float[] {7, 6, 15, 0, 7}, Tensors.floats(FourBitType.NF4.encode(t)));
        float[] y = {0.29166667f, -0.29166667f, -1e-4f, 1e-4f, -0f, 1f};
        assertArrayEquals(new float[] {0b111, 0b1111, 8, 0, 0, 0b011},
                Tensors.floats(FourBitType.FP4.encode(Tensor.create(y, new long[] {y.length}))));
    }

    @Test
    void heldBytesAreHalfAByteAWeightPlusTheAbsmax() {
        // a 4096 x 4096 weight: 8 MiB of codes, 262144 blocks: 1 MiB of float32 absmax or 256 KiB + 4 KiB nested
        assertEquals(8L * 1024 * 1024 + 4L * 262144, QuantizedWeight.heldBytes(4096L * 4096, false));
        assertEquals(8L * 1024 * 1024 + 262144 + 4L * 1024 + 4, QuantizedWeight.heldBytes(4096L * 4096, true));
    }
}
