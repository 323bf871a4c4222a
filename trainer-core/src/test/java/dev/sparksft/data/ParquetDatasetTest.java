package dev.sparksft.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.sparksft.model.TinyModel;
import dev.sparksft.cli.TrainCommand;
import dev.sparksft.config.SftConfig;
import dev.sparksft.runtime.Torch;
import dev.sparksft.train.Trainer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.example.data.simple.SimpleGroupFactory;
import org.apache.parquet.hadoop.ParquetWriter;
import org.apache.parquet.hadoop.example.ExampleParquetWriter;
import org.apache.parquet.io.LocalOutputFile;
import org.apache.parquet.schema.MessageType;
import org.apache.parquet.schema.MessageTypeParser;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Parquet datasets in one process: a file written by parquet-hadoop (the library Spark writes
 * with) reads as the same conversations as the JSON Lines file with the same rows, three-level
 * lists of structs included, and trains with {@code sft train} to the same losses.
 */
class ParquetDatasetTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final MessageType SHAREGPT = MessageTypeParser.parseMessageType("""
            message row {
              required group conversations (LIST) {
                repeated group list {
                  required group element {
                    required binary from (STRING);
                    required binary value (STRING);
                  }
                }
              }
              optional binary system (STRING);
              optional int64 id;
            }""");

    /** The rows as (from, value) pairs plus a system prompt (null: none). */
    record Row(List<String[]> turns, String system, long id) {}

    static List<Row> rows(int n) {
        List<Row> rows = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            String s = "abcdefghij".repeat(3).substring(0, 1 + (7 * i) % 25);
            rows.add(new Row(List.of(new String[] {"human", "Echo " + s}, new String[] {"gpt", s}),
                    i % 3 == 0 ? "Be brief." : null, i));
        }
        return rows;
    }

    static void writeParquet(Path file, List<Row> rows) throws Exception {
        try (ParquetWriter<Group> w = ExampleParquetWriter.builder(new LocalOutputFile(file)).withType(SHAREGPT).build()) {
            SimpleGroupFactory groups = new SimpleGroupFactory(SHAREGPT);
            for (Row r : rows) {
                Group g = groups.newGroup();
                Group list = g.addGroup("conversations");
                for (String[] t : r.turns()) {
                    list.addGroup("list").addGroup("element").append("from", t[0]).append("value", t[1]);
                }
                if (r.system() != null) {
                    g.append("system", r.system());
                }
                g.append("id", r.id());
                w.write(g);
            }
        }
    }

    static void writeJsonl(Path file, List<Row> rows) throws Exception {
        List<String> lines = new ArrayList<>();
        for (Row r : rows) {
            var o = JSON.createObjectNode();
            var c = o.putArray("conversations");
            r.turns().forEach(t -> c.addObject().put("from", t[0]).put("value", t[1]));
            if (r.system() != null) {
                o.put("system", r.system());
            }
            o.put("id", r.id());
            lines.add(JSON.writeValueAsString(o));
        }
        Files.write(file, lines);
    }

    static void datasetInfo(Path dir) throws Exception {
        Files.writeString(dir.resolve(DatasetInfo.FILE), """
                {"pq": {"file_name": "chat.parquet", "formatting": "sharegpt",
                        "columns": {"messages": "conversations", "system": "system"}},
                 "js": {"file_name": "chat.jsonl", "formatting": "sharegpt",
                        "columns": {"messages": "conversations", "system": "system"}}}
                """);
    }

    @Test
    void parquetRowsEqualTheJsonLinesRows(@TempDir Path dir) throws Exception {
        List<Row> rows = rows(9);
        writeParquet(dir.resolve("chat.parquet"), rows);
        writeJsonl(dir.resolve("chat.jsonl"), rows);
        datasetInfo(dir);
        List<DatasetRow> parsed = DataFiles.read(0, dir.resolve("chat.parquet"));
        JsonNode first = JSON.readTree(Files.readAllLines(dir.resolve("chat.jsonl")).get(0));
        assertEquals(first.toString(), parsed.get(0).value().toString(), "a row reads as the JSON object with the same fields");
        assertEquals("chat.parquet row 1", parsed.get(0).source());
        List<Conversation> fromParquet = LocalDatasets.load(List.of("pq"), dir, null);
        List<Conversation> fromJson = LocalDatasets.load(List.of("js"), dir, null);
        assertEquals(9, fromParquet.size());
        for (int i = 0; i < fromJson.size(); i++) {
            assertEquals(fromJson.get(i).prompt(), fromParquet.get(i).prompt());
            assertEquals(fromJson.get(i).response(), fromParquet.get(i).response());
            assertEquals(fromJson.get(i).system(), fromParquet.get(i).system());
        }
        // detected without dataset_info.json, like a .jsonl path
        assertEquals(9, LocalDatasets.load(List.of(dir.resolve("chat.parquet").toString()), dir, null).size());
    }

    @Test
    void aCorruptParquetFileIsNamedAsMalformed(@TempDir Path dir) throws Exception {
        Files.write(dir.resolve("bad.parquet"), new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9});
        Exception e = org.junit.jupiter.api.Assertions.assertThrows(IllegalArgumentException.class,
                () -> LocalDatasets.load(List.of("bad.parquet"), dir, null));
        assertTrue(e.getMessage().contains("bad.parquet is not a readable Parquet file"), e.getMessage());
    }

    @Test
    void sftTrainTrainsOnParquetAsOnJsonLines(@TempDir Path dir) throws Exception {
        Torch.load(1);
        Path model = dir.resolve("model");
        TinyModel.write(new TinyModel.Options("llama", model, 3, 32, 2, 4, 2, 64, null, 0, 0));
        List<Row> rows = rows(12);
        writeParquet(dir.resolve("chat.parquet"), rows);
        writeJsonl(dir.resolve("chat.jsonl"), rows);
        datasetInfo(dir);
        double[] losses = new double[2];
        String[] names = {"pq", "js"};
        for (int k = 0; k < 2; k++) {
            Path yaml = dir.resolve(names[k] + ".yaml");
            Files.writeString(yaml, "model_name_or_path: " + model + "\ntemplate: chatml\ndataset: " + names[k]
                    + "\ndataset_dir: " + dir + "\ncutoff_len: 64\ndo_train: true\nfinetuning_type: full\noutput_dir: "
                    + dir.resolve("out-" + names[k]) + "\nper_device_train_batch_size: 4\nmax_steps: 3\n"
                    + "learning_rate: 1.0e-3\nlogging_steps: 1\nsave_strategy: \"no\"\nnum_threads: 1\n");
            Trainer.Result r = TrainCommand.run(SftConfig.load(yaml, List.of()));
            losses[k] = r.trainLoss();
            assertTrue(Files.exists(dir.resolve("out-" + names[k]).resolve("model.safetensors")));
        }
        assertTrue(Double.isFinite(losses[0]) && losses[0] > 0, "trained: " + losses[0]);
        assertEquals(losses[1], losses[0], 0.0, "the same rows give the same training run");
    }
}
