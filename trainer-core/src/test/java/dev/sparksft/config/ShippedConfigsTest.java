package dev.sparksft.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.sparksft.template.Templates;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** The configurations the repository ships under conf/ bind as they are (the 8B one with its ZeRO-2 file). */
class ShippedConfigsTest {
    static final Path CONF = Path.of("..", "conf");

    @Test
    void everyShippedYamlBinds() throws Exception {
        List<Path> yamls;
        try (Stream<Path> s = Files.list(CONF)) {
            yamls = s.filter(p -> p.toString().endsWith(".yaml")).sorted().toList();
        }
        assertTrue(yamls.size() >= 3, "conf/ holds " + yamls);
        for (Path yaml : yamls) {
            SftConfig.load(yaml, List.of(), Templates::problem);
        }
    }

    @Test
    void theEightBillionConfigShardsWithZeroTwoInBf16() throws Exception {
        SftConfig c = SftConfig.load(CONF.resolve("llama3-8b-sft.yaml"), List.of(), Templates::problem);
        assertTrue(c.training().bf16());
        assertTrue(c.model().activationCheckpointing());
        DeepSpeedConfig ds = DeepSpeedConfig.load(CONF.resolve(c.training().deepspeed()), c.training(),
                c.distributed().worldSize());
        assertEquals(2, ds.stage());
    }
}
