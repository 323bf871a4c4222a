package dev.sparksft.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.template.Templates;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SftConfigTest {
    static Path yaml(Path dir, String text) throws Exception {
        Path f = dir.resolve("config.yaml");
        Files.writeString(f, text);
        return f;
    }

    static final String MINIMAL = "model_name_or_path: /models/tiny\ntemplate: qwen\ndataset: alpaca_en,identity\n";

    @Test
    void llamaFactoryKeysAndDefaults(@TempDir Path dir) throws Exception {
        SftConfig c = SftConfig.load(yaml(dir, MINIMAL + "cutoff_len: 1024\ntrust_remote_code: true\n"), List.of());
        assertEquals("/models/tiny", c.model().modelNameOrPath());
        assertEquals(List.of("alpaca_en", "identity"), c.data().dataset(), "comma-separated names");
        assertEquals(1024, c.data().cutoffLen());
        assertEquals("data", c.data().datasetDir());
        assertEquals(DataArguments.Thinking.TRUE, c.data().enableThinking());
        assertFalse(c.data().trainOnPrompt());
    }

    @Test
    void vocabularyKeysBindAsLlamaFactorySplitsThem(@TempDir Path dir) throws Exception {
        SftConfig c = SftConfig.load(yaml(dir, MINIMAL + "resize_vocab: true\nadd_tokens: \"<a>, <b> ,<c>\"\n"
                + "add_special_tokens: <tool>\ninit_special_tokens: noise_init\n"), List.of());
        assertTrue(c.model().resizeVocab());
        assertEquals(List.of("<a>", "<b>", "<c>"), c.model().tokensToAdd(), "split at commas, each stripped");
        assertEquals(List.of("<tool>"), c.model().specialTokensToAdd());
        SftConfig none = SftConfig.load(yaml(dir, MINIMAL), List.of());
        assertFalse(none.model().resizeVocab());
        assertEquals(List.of(), none.model().tokensToAdd());

        ConfigProblems e = assertThrows(ConfigProblems.class, () -> SftConfig.load(yaml(dir, MINIMAL
                + "init_special_tokens: desc_init\nnew_special_tokens_config: tokens.yaml\n"), List.of()));
        String all = String.join("\n", e.problems());
        assertTrue(all.contains("init_special_tokens: \"desc_init\" is not supported"), all);
        assertTrue(all.contains("new_special_tokens_config: \"tokens.yaml\" is not supported"), all);
        assertTrue(all.contains("add tokens with add_tokens or add_special_tokens"), "the fix: " + all);
    }

    @Test
    void overridesWinAndAreParsedAsYaml(@TempDir Path dir) throws Exception {
        SftConfig c = SftConfig.load(yaml(dir, MINIMAL + "cutoff_len: 1024\n"),
                List.of("cutoff_len=512", "train_on_prompt=true", "dataset=[a, b]"));
        assertEquals(512, c.data().cutoffLen());
        assertTrue(c.data().trainOnPrompt());
        assertEquals(List.of("a", "b"), c.data().dataset());
    }

    @Test
    void unknownKeyNamesTheNearestKnownKey(@TempDir Path dir) throws Exception {
        ConfigProblems e = assertThrows(ConfigProblems.class,
                () -> SftConfig.load(yaml(dir, MINIMAL + "cutof_len: 10\n"), List.of()));
        assertEquals(List.of("cutof_len: unknown key (did you mean 'cutoff_len'?)"), e.problems());
    }

    @Test
    void aRefusedKeyNamesTheMissingCapabilityUnlessItIsTheDefault(@TempDir Path dir) throws Exception {
        ConfigProblems e = assertThrows(ConfigProblems.class,
                () -> SftConfig.load(yaml(dir, MINIMAL + "use_dora: true\nexport_quantization_bit: 4\n"), List.of()));
        assertEquals(List.of("use_dora: true is not supported: DoRA adapters are not supported: use finetuning_type: "
                        + "lora (use_rslora and loraplus_lr_ratio are)",
                "export_quantization_bit: 4 is not supported: " + ConfigKeys.QUANTIZATION), e.problems());
        // LLaMA-Factory's example YAMLs write defaults out: those ask for nothing and pass
        SftConfig.load(yaml(dir, MINIMAL + "use_dora: false\nquantization_bit: null\nsave_only_model: false\n"
                + "freeze_vision_tower: true\ntensor_model_parallel_size: 1\nfsdp: ''\nflash_attn: fa2\n"), List.of());
    }

    @Test
    void enableThinkingNullIsPythonsNoneNotTheDefault(@TempDir Path dir) throws Exception {
        assertEquals(DataArguments.Thinking.TRUE, SftConfig.load(yaml(dir, MINIMAL), List.of()).data().enableThinking());
        assertEquals(DataArguments.Thinking.NULL,
                SftConfig.load(yaml(dir, MINIMAL + "enable_thinking: null\n"), List.of()).data().enableThinking());
        assertEquals(DataArguments.Thinking.FALSE,
                SftConfig.load(yaml(dir, MINIMAL), List.of("enable_thinking=false")).data().enableThinking());
        ConfigProblems e = assertThrows(ConfigProblems.class,
                () -> SftConfig.load(yaml(dir, MINIMAL + "enable_thinking: maybe\n"), List.of()));
        assertEquals(List.of("enable_thinking: expected true, false or null, got \"maybe\""), e.problems());
    }

    @Test
    void optimizerAndMethodNamesOfLlamaFactoryYamls(@TempDir Path dir) throws Exception {
        assertEquals("adamw_torch", SftConfig.load(yaml(dir, MINIMAL + "optim: adamw_torch_fused\n"), List.of())
                .training().optim(), "Hugging Face's fused AdamW is the same update");
        ConfigProblems e = assertThrows(ConfigProblems.class, () -> SftConfig.load(yaml(dir, MINIMAL
                + "optim: paged_adamw_8bit\nfinetuning_type: dora\n"), List.of()));
        assertTrue(e.getMessage().contains("optim: 'paged_adamw_8bit' is not implemented (quantized optimizer states "
                + "need bitsandbytes' kernels)"), e.getMessage());
        assertTrue(e.getMessage().contains("finetuning_type must be full, freeze, lora or oft, got 'dora'"),
                e.getMessage());
    }

    @Test
    void suggestionsAreForNearSpellingsOnly(@TempDir Path dir) throws Exception {
        ConfigProblems e = assertThrows(ConfigProblems.class,
                () -> SftConfig.load(yaml(dir, MINIMAL + "learnign_rate: 1.0\nmax_new_token_count: 3\n"), List.of()));
        assertEquals(List.of("learnign_rate: unknown key (did you mean 'learning_rate'?)",
                "max_new_token_count: unknown key"), e.problems());
    }

    @Test
    void allProblemsAreReportedAtOnce(@TempDir Path dir) throws Exception {
        ConfigProblems e = assertThrows(ConfigProblems.class, () -> SftConfig.load(yaml(dir,
                "template: qwen5\ncutoff_len: many\nmask_history: true\ntrain_on_prompt: true\nlearnig_rate: 1e-4\n"),
                List.of(), Templates::problem));
        String m = e.getMessage();
        assertTrue(m.contains("learnig_rate: unknown key (did you mean 'learning_rate'?)"), m);
        assertTrue(m.contains("cutoff_len: expected an integer, got \"many\""), m);
        assertTrue(m.contains("model_name_or_path is required"), m);
        assertEquals(3, e.problems().size(), m); // DataArguments waits for its type error to be fixed
    }

    @Test
    void theRankSilenceTimeoutIsItsOwnKeyWhateverDdpTimeoutSays(@TempDir Path dir) throws Exception {
        SftConfig c = SftConfig.load(yaml(dir, MINIMAL + "ddp_timeout: 180000000\n"), List.of());
        assertEquals(180000000, c.distributed().ddpTimeout());
        assertEquals(900, c.distributed().rankSilenceTimeout(), "the default does not follow ddp_timeout");
        ConfigProblems e = assertThrows(ConfigProblems.class,
                () -> SftConfig.load(yaml(dir, MINIMAL + "rank_silence_timeout: 0\nddp_timeout: 0\n"), List.of()));
        assertTrue(e.getMessage().contains("rank_silence_timeout must be >= 1 second (how long a rank may send no heartbeat"),
                e.getMessage());
        assertEquals(2, e.problems().size(), e.getMessage());
    }

    @Test
    void semanticProblemsOfOneSectionAreCollected(@TempDir Path dir) throws Exception {
        ConfigProblems e = assertThrows(ConfigProblems.class, () -> SftConfig.load(yaml(dir,
                "model_name_or_path: m\ntemplate: qwen5\nmask_history: true\ntrain_on_prompt: true\n"), List.of(),
                Templates::problem));
        String m = e.getMessage();
        assertTrue(m.contains("template: unknown template 'qwen5' (did you mean 'qwen'?)"), m);
        assertTrue(!m.contains("dataset is required"), "whether a dataset is needed depends on the command (RunChecks)");
        assertTrue(m.contains("mask_history is incompatible with train_on_prompt"), m);
    }

    @Test
    void aMultimodalTemplateIsNamedAsMultimodal(@TempDir Path dir) throws Exception {
        ConfigProblems e = assertThrows(ConfigProblems.class, () -> SftConfig.load(yaml(dir,
                "model_name_or_path: m\ntemplate: llava\ndataset: d\n"), List.of(), Templates::problem));
        assertEquals(List.of("template: 'llava' is LLaMA-Factory's template for a multimodal (image, video or "
                + "audio) model with its 'llava' plugin, which spark-sft does not support yet: images train with "
                + "template: qwen2_vl (Qwen2-VL, Qwen2.5-VL); for text use a text model and its template"), e.problems());
    }

    @Test
    void badOverrideAndMissingFileAreClear(@TempDir Path dir) throws Exception {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SftConfig.load(yaml(dir, MINIMAL), List.of("cutoff_len")));
        assertTrue(e.getMessage().contains("is not key=value"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SftConfig.load(dir.resolve("nope.yaml"), List.of()));
        assertTrue(e.getMessage().contains("does not exist"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SftConfig.load(yaml(dir, "a: [1\n"), List.of()));
        assertTrue(e.getMessage().contains("not valid YAML"), e.getMessage());
    }

    @Test
    void activationCheckpointingIsOnUnlessEitherKeyTurnsItOff(@TempDir Path dir) throws Exception {
        assertTrue(SftConfig.load(yaml(dir, MINIMAL), List.of()).model().activationCheckpointing(), "LLaMA-Factory's default");
        assertTrue(!SftConfig.load(yaml(dir, MINIMAL), List.of("disable_gradient_checkpointing=true")).model()
                .activationCheckpointing());
        assertTrue(!SftConfig.load(yaml(dir, MINIMAL), List.of("gradient_checkpointing=false")).model()
                .activationCheckpointing(), "HF's spelling");
        ConfigProblems e = assertThrows(ConfigProblems.class, () -> SftConfig.load(yaml(dir, MINIMAL),
                List.of("disable_gradient_checkpointing=true", "gradient_checkpointing=true")));
        assertTrue(e.getMessage().contains("disable_gradient_checkpointing: true contradicts gradient_checkpointing: true"),
                e.getMessage());
    }

    @Test
    void asftKeysHaveLlamaFactorysDefaultsAndTheirProblemsNameKeyValueAndFix(@TempDir Path dir) throws Exception {
        FinetuningArguments ft = SftConfig.load(yaml(dir, MINIMAL), List.of()).finetuning();
        assertFalse(ft.useAsftLoss());
        assertEquals(0.1, ft.asftAlpha());
        ft = SftConfig.load(yaml(dir, MINIMAL + "use_asft_loss: true\nasft_alpha: 0.05\n"), List.of()).finetuning();
        assertTrue(ft.useAsftLoss());
        assertEquals(0.05, ft.asftAlpha());
        assertEquals(0.0, SftConfig.load(yaml(dir, MINIMAL), List.of("use_asft_loss=true", "asft_alpha=0")).finetuning()
                .asftAlpha(), "0: DFT with a reference forward, allowed");
        ConfigProblems e = assertThrows(ConfigProblems.class, () -> SftConfig.load(yaml(dir, MINIMAL
                + "use_asft_loss: true\nasft_alpha: -0.1\nuse_dft_loss: true\n"), List.of()));
        String m = e.getMessage();
        assertTrue(m.contains("asft_alpha must be >= 0"), m);
        assertTrue(m.contains("got -0.1"), m);
        assertTrue(m.contains("use_dft_loss and use_asft_loss are exclusive (each replaces the loss): set one of them "
                + "(use_asft_loss already contains DFT's weighting)"), m);
        e = assertThrows(ConfigProblems.class, () -> SftConfig.load(yaml(dir, MINIMAL), List.of("use_asft_loss=true",
                "use_eaft_loss=true")));
        assertTrue(e.getMessage().contains("use_eaft_loss and use_asft_loss are exclusive"), e.getMessage());
        e = assertThrows(ConfigProblems.class, () -> SftConfig.load(yaml(dir, MINIMAL), List.of("use_asft_loss=true",
                "pissa_init=true")));
        assertTrue(e.getMessage().contains("use_asft_loss with pissa_init is not supported") && e.getMessage().contains(
                "set pissa_init: false"), e.getMessage());
    }
}
