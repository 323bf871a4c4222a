package dev.sparksft.cli;

import dev.sparksft.model.Dtype;
import dev.sparksft.model.TinyModel;
import dev.sparksft.UserError;
import dev.sparksft.config.SftConfig;
import dev.sparksft.data.SyntheticTasks;
import dev.sparksft.runtime.Torch;
import dev.sparksft.template.Templates;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/** The trainer-core command line: parse, build, run, close. */
public final class SftMain {
    static final String USAGE = """
            usage: sft <command> [options]
              make-tiny-model --arch {llama,qwen2,qwen3,mistral,gemma2,gemma3_text,gemma3,phi3,qwen3_moe,mixtral} --out DIR [--seed N] [--hidden H] [--layers L]
                              [--heads A] [--kv-heads K] [--intermediate I] [--tokenizer DIR] [--merges M]
                              [--rope-theta T] [--dtype {float32,bfloat16,float16}]
              make-dataset --task {reverse,sort} --out FILE.jsonl [--num N] [--max-len L] [--seed S]
              tokenize CONFIG.yaml [key=value ...]
              train CONFIG.yaml [key=value ...]
              export CONFIG.yaml [key=value ...]       (merge adapter_name_or_path into model_name_or_path, to export_dir)
              score CONFIG.yaml [key=value ...]        (exact match of greedy answers on the eval set)
              estimate CONFIG.yaml [key=value ...]     (bytes per rank: weights, gradients, optimizer, activations)
              llama-pro --model DIR --out DIR --num-expand N [--shard-size GB]
                                                       (LLaMA Pro block expansion; then use_llama_pro: true)
            """;

    private SftMain() {}

    public static void main(String[] args) {
        System.exit(exitCode(args, System.err));
    }

    /** Runs a command: 0 when it worked, 2 for the user's mistake (one line), 1 for anything else (with its trace). */
    static int exitCode(String[] args, java.io.PrintStream err) {
        try {
            run(args);
            return 0;
        } catch (UserError e) {
            err.println("error: " + e.getMessage());
            return 2;
        } catch (Exception e) {       // a bug or a failed machine: never "fix your configuration"
            err.println("error: " + e);
            e.printStackTrace(err);
            return 1;
        }
    }

    static void run(String[] args) throws Exception {
        if (args.length == 0 || args[0].equals("-h") || args[0].equals("--help")) {
            System.out.print(USAGE);
            return;
        }
        List<String> rest = Arrays.asList(args).subList(1, args.length);
        switch (args[0]) {
            case "make-tiny-model" -> {
                Torch.load(1);
                TinyModel.Options o = parseTinyModel(rest);
                TinyModel.write(o, tinyModelDtype(rest));
                System.out.println("wrote a random " + o.arch() + " model to " + o.out());
            }
            case "make-dataset" -> {
                Map<String, String> f = flags(rest, List.of("--task", "--out", "--num", "--max-len", "--seed"), "make-dataset");
                if (!f.containsKey("--task") || !f.containsKey("--out")) {
                    throw new UserError("make-dataset needs --task {reverse,sort} and --out FILE.jsonl");
                }
                SyntheticTasks.Task task = switch (f.get("--task")) {
                    case "reverse" -> SyntheticTasks.Task.REVERSE;
                    case "sort" -> SyntheticTasks.Task.SORT;
                    default -> throw new UserError("--task must be reverse or sort, got '" + f.get("--task") + "'");
                };
                int num = (int) number(f, "--num", 1000);
                SyntheticTasks.write(task, Path.of(f.get("--out")), num, (int) number(f, "--max-len", 8), number(f, "--seed", 0));
                System.out.println("wrote " + num + " " + f.get("--task") + " examples to " + f.get("--out"));
            }
            case "tokenize" -> {
                if (rest.isEmpty()) {
                    throw new UserError("tokenize needs CONFIG.yaml\n" + USAGE);
                }
                TokenizeCommand.run(config(rest));
            }
            case "train" -> {
                if (rest.isEmpty()) {
                    throw new UserError("train needs CONFIG.yaml\n" + USAGE);
                }
                TrainCommand.run(config(rest));
            }
            case "export" -> {
                if (rest.isEmpty()) {
                    throw new UserError("export needs CONFIG.yaml\n" + USAGE);
                }
                Path out = ExportCommand.run(config(rest));
                System.out.println("merged model written to " + out);
            }
            case "score" -> {
                if (rest.isEmpty()) {
                    throw new UserError("score needs CONFIG.yaml\n" + USAGE);
                }
                ScoreCommand.run(config(rest), 32);
            }
            case "estimate" -> {
                if (rest.isEmpty()) {
                    throw new UserError("estimate needs CONFIG.yaml\n" + USAGE);
                }
                SftConfig config = config(rest);
                var model = dev.sparksft.model.ModelConfig.load(Path.of(config.model().modelNameOrPath()));
                System.out.print(dev.sparksft.run.MemoryEstimate.of(config, model).table());
            }
            case "llama-pro" -> {
                Map<String, String> f = flags(rest, List.of("--model", "--out", "--num-expand", "--shard-size"), "llama-pro");
                if (!f.containsKey("--model") || !f.containsKey("--out") || !f.containsKey("--num-expand")) {
                    throw new UserError("llama-pro needs --model DIR, --out DIR and --num-expand N");
                }
                Torch.load(1);
                int n = (int) number(f, "--num-expand", 0);
                // shard size in GB of 10^9 bytes, as Hugging Face counts; LLaMA-Factory's script writes 5GB shards
                Path out = LlamaProCommand.run(Path.of(f.get("--model")), Path.of(f.get("--out")), n,
                        number(f, "--shard-size", 5) * 1_000_000_000L);
                System.out.println("expanded model written to " + out + "; fine-tune it with finetuning_type: freeze, "
                        + "freeze_trainable_layers: " + n + ", use_llama_pro: true");
            }
            default -> throw new UserError("unknown command '" + args[0] + "'\n" + USAGE);
        }
    }

    /** CONFIG.yaml [key=value ...], with the template name checked against the built-in templates. */
    private static SftConfig config(List<String> rest) throws java.io.IOException {
        return SftConfig.load(Path.of(rest.get(0)), rest.subList(1, rest.size()), Templates::problem);
    }

    /** make-tiny-model's --dtype: the stored dtype of the weights (float32 unless given). */
    static Dtype tinyModelDtype(List<String> args) {
        int at = args.indexOf("--dtype");
        if (at < 0 || at + 1 >= args.size()) {
            return Dtype.F32;
        }
        Dtype d = switch (args.get(at + 1)) {
            case "float32" -> Dtype.F32;
            case "bfloat16" -> Dtype.BF16;
            case "float16" -> Dtype.F16;
            default -> null;
        };
        if (d == null) {
            throw new UserError("--dtype must be float32, bfloat16 or float16, got '" + args.get(at + 1) + "'");
        }
        return d;
    }

    static TinyModel.Options parseTinyModel(List<String> args) {
        Map<String, String> flags = flags(args, List.of("--arch", "--out", "--seed", "--hidden", "--layers", "--heads",
                "--kv-heads", "--intermediate", "--tokenizer", "--merges", "--rope-theta", "--dtype"), "make-tiny-model");
        String out = flags.get("--out");
        String tokenizer = flags.get("--tokenizer");
        return new TinyModel.Options(flags.getOrDefault("--arch", ""), out == null ? null : Path.of(out),
                number(flags, "--seed", 0), (int) number(flags, "--hidden", 128), (int) number(flags, "--layers", 4),
                (int) number(flags, "--heads", 4), (int) number(flags, "--kv-heads", 2),
                (int) number(flags, "--intermediate", 384), tokenizer == null ? null : Path.of(tokenizer),
                (int) number(flags, "--merges", 256), real(flags, "--rope-theta", 0));
    }

    /** "--flag value" pairs, each flag one of {@code allowed}. */
    static Map<String, String> flags(List<String> args, List<String> allowed, String command) {
        Map<String, String> flags = new HashMap<>();
        for (int i = 0; i < args.size(); i++) {
            String f = args.get(i);
            if (!allowed.contains(f)) {
                throw new UserError(command + ": unknown option '" + f + "'"
                        + dev.sparksft.config.Suggest.didYouMean(f, allowed) + "\n" + USAGE);
            }
            if (i + 1 >= args.size()) {
                throw new UserError(command + ": " + f + " needs a value");
            }
            flags.put(f, args.get(++i));
        }
        return flags;
    }

    private static double real(Map<String, String> flags, String flag, double fallback) {
        String v = flags.get(flag);
        try {
            return v == null ? fallback : Double.parseDouble(v);
        } catch (NumberFormatException e) {
            throw new UserError(flag + " must be a number, got '" + v + "'");
        }
    }

    private static long number(Map<String, String> flags, String flag, long fallback) {
        String v = flags.get(flag);
        if (v == null) {
            return fallback;
        }
        try {
            return Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw new UserError(flag + " must be an integer, got '" + v + "'");
        }
    }
}
