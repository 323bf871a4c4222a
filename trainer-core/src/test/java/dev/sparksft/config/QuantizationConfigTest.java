package dev.sparksft.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * quantization_bit and its companions (ModelArguments): LLaMA-Factory's defaults, what is
 * refused and why (each message names the key, the value and the fix), and the rules that tie
 * quantization to finetuning_type, pissa_init, resize_vocab, create_new_adapter, fp8 and
 * quantization_device_map.
 */
class QuantizationConfigTest {
    static final String BASE = SftConfigTest.MINIMAL;   // finetuning_type defaults to lora

    static SftConfig load(Path dir, String extra) throws Exception {
        return SftConfig.load(SftConfigTest.yaml(dir, BASE + extra.replace(";", "\n") + "\n"), List.of());
    }

    static List<String> problems(Path dir, String extra) {
        return assertThrows(ConfigProblems.class, () -> load(dir, extra)).problems();
    }

    @Test
    void fourBitBnbWithLlamaFactoryDefaults(@TempDir Path dir) throws Exception {
        ModelArguments m = load(dir, "quantization_bit: 4").model();
        assertTrue(m.quantized());
        assertEquals("bnb", m.quantizationMethod());
        assertEquals("nf4", m.quantizationType());
        assertTrue(m.doubleQuantization(), "double_quantization defaults to true");
        ModelArguments fp4 = load(dir, "quantization_bit: 4;quantization_type: fp4;double_quantization: false").model();
        assertEquals("fp4", fp4.quantizationType());
        assertFalse(fp4.doubleQuantization());
        assertFalse(load(dir, "quantization_method: bnb").model().quantized(), "without quantization_bit nothing is quantized");
        // finetuning_type is checked as a string: oft passes this rule (its own record decides whether OFT runs)
        assertEquals(List.of(), ModelArguments.quantizationProblems(m, "oft", true, false,
                new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode()));
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
            "quantization_bit: 8 | quantization_bit: 8 is not supported: bitsandbytes' LLM.int8 (8-bit weights with fp16 "
                    + "outlier decomposition) is not implemented; set quantization_bit: 4 (NF4, about 0.5 bytes per weight)",
            "quantization_bit: 3 | quantization_bit: 3 is not supported: bitsandbytes only accepts 4-bit or 8-bit "
                    + "quantization; set quantization_bit: 4",
            "quantization_bit: 4;quantization_method: hqq | quantization_method: hqq is not supported: spark-sft quantizes "
                    + "with bitsandbytes' 4-bit algorithm only (HQQ kernels are not implemented); set quantization_method: bnb "
                    + "with quantization_bit: 4",
            "quantization_bit: 8;quantization_method: eetq | quantization_method: eetq is not supported: spark-sft quantizes "
                    + "with bitsandbytes' 4-bit algorithm only (EETQ kernels are not implemented); set quantization_method: bnb "
                    + "with quantization_bit: 4",
            "quantization_method: gptq | quantization_method must be bnb, hqq or eetq, got 'gptq'",
            "quantization_bit: 4;quantization_type: int4 | quantization_type must be nf4 or fp4, got 'int4'",
            "quantization_bit: 4;quantization_device_map: balanced | quantization_device_map must be auto or unset, got 'balanced'",
            "quantization_bit: 4;finetuning_type: full | quantization_bit: 4 with finetuning_type: full: Quantization is only "
                    + "compatible with the LoRA or OFT method; set finetuning_type: lora, or remove quantization_bit to train full",
            "quantization_bit: 4;finetuning_type: freeze | quantization_bit: 4 with finetuning_type: freeze: Quantization is "
                    + "only compatible with the LoRA or OFT method; set finetuning_type: lora, or remove quantization_bit to "
                    + "train freeze",
            "quantization_bit: 4;fp8: true | quantization_bit: 4 with fp8: true: FP8 training is not compatible with "
                    + "quantization; set fp8: false or remove quantization_bit",
            "quantization_bit: 4;do_train: true;quantization_device_map: auto | quantization_device_map: auto with do_train: "
                    + "true: Cannot use device map for quantized models in training; remove quantization_device_map"})
    void refusedWithKeyValueAndFix(String yaml, String message, @TempDir Path dir) {
        assertEquals(List.of(message), problems(dir, yaml));
    }

    @Test
    void pissaResizeAndNewAdaptersAreRefusedOverFourBits(@TempDir Path dir) {
        // these keys belong to other sections (or are refused there); the quantization rule reads them as written
        List<String> p = problems(dir, "quantization_bit: 4;pissa_init: true;resize_vocab: true");
        assertTrue(p.contains("quantization_bit: 4 with pissa_init: true: PiSSA cannot be initialised over a quantized "
                + "model (LLaMA-Factory: use scripts/pissa_init.py first); set pissa_init: false or remove quantization_bit"), p.toString());
        assertTrue(p.contains("quantization_bit: 4 with resize_vocab: true: Cannot resize embedding layers of a quantized "
                + "model; set resize_vocab: false or remove quantization_bit"), p.toString());
        List<String> q = problems(dir, "quantization_bit: 4;adapter_name_or_path: /a;create_new_adapter: true");
        assertTrue(q.contains("quantization_bit: 4 with create_new_adapter: true: Cannot create new adapter upon a quantized "
                + "model; merge /a first (scripts/sft export without quantization_bit) or set create_new_adapter: false"),
                q.toString());
    }

    @Test
    void aDeviceMapOutsideTrainingChangesNothing(@TempDir Path dir) throws Exception {
        assertEquals("auto", load(dir, "quantization_bit: 4;do_predict: true;predict_with_generate: true;quantization_device_map: auto").model()
                .quantizationDeviceMap());
    }
}
