package dev.sparksft.template;

import dev.sparksft.UserError;
import dev.sparksft.config.Suggest;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The built-in templates, with exactly LLaMA-Factory's strings ({@code register_template} in
 * data/template.py). Defaults as there: user and system are "{{content}}", assistant is
 * "{{content}}" + eos, observation falls back to the user formatter, no prefix; function
 * messages and tools as {@link ToolCalling#forTemplate} says.
 */
public final class Templates {
    private static final String THINK_OPEN = "<think>\n";
    private static final String THINK_CLOSE = "\n</think>\n\n";
    private static final Map<String, ChatTemplate> BUILT_IN = new LinkedHashMap<>();

    static {
        register("default",
                Formatter.of(Slot.text("Human: {{content}}"), Slot.EOS, Slot.text("\nAssistant:")),
                Formatter.of(Slot.text("{{content}}"), Slot.EOS, Slot.text("\n")),
                Formatter.of(Slot.text("System: {{content}}"), Slot.EOS, Slot.text("\n")),
                null, null, "", List.of(), false, false, false);
        register("empty", null, Formatter.of("{{content}}"), null, null, null, "", List.of(), false, false, false);
        register("alpaca",
                Formatter.of("### Instruction:\n{{content}}\n\n### Response:\n"),
                Formatter.of(Slot.text("{{content}}"), Slot.EOS, Slot.text("\n\n")),
                null, null, null,
                "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n",
                List.of(), false, false, false);
        register("chatml",
                Formatter.of("<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"),
                Formatter.of("{{content}}<|im_end|>\n"),
                Formatter.of("<|im_start|>system\n{{content}}<|im_end|>\n"),
                Formatter.of("<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n"),
                null, "", List.of("<|im_end|>", "<|im_start|>"), true, false, false);
        Formatter qwenObservation = Formatter.of(
                "<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n");
        register("qwen",
                Formatter.of("<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"),
                Formatter.of("{{content}}<|im_end|>\n"),
                Formatter.of("<|im_start|>system\n{{content}}<|im_end|>\n"),
                qwenObservation, null, "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
                List.of("<|im_end|>"), true, false, false);
        for (String name : List.of("qwen3", "qwen3_nothink")) {
            register(name,
                    Formatter.of("<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n"),
                    Formatter.of("{{content}}<|im_end|>\n"),
                    Formatter.of("<|im_start|>system\n{{content}}<|im_end|>\n"),
                    qwenObservation, null, "", List.of("<|im_end|>"), true, false, name.equals("qwen3"));
        }
        register("llama3",
                Formatter.of("<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n"),
                Formatter.of("{{content}}<|eot_id|>"),
                Formatter.of("<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>"),
                Formatter.of("<|start_header_id|>ipython<|end_header_id|>\n\n{{content}}<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n"),
                Formatter.of(Slot.BOS), "", List.of("<|eot_id|>", "<|eom_id|>"), true, false, false);
        register("mistral",
                Formatter.of("[INST] {{content}}[/INST]"),
                Formatter.of(Slot.text(" {{content}}"), Slot.EOS),
                Formatter.of("{{content}}\n\n"),
                Formatter.of("[TOOL_RESULTS] {\"content\": {{content}}}[/TOOL_RESULTS]"),
                Formatter.of(Slot.BOS), "", List.of(), false, true, false);
    }

    private Templates() {}

    private static void register(String name, Formatter user, Formatter assistant, Formatter system,
                                 Formatter observation, Formatter prefix, String defaultSystem, List<String> stopWords,
                                 boolean replaceEos, boolean foldSystem, boolean reasoning) {
        Formatter plain = Formatter.of("{{content}}");
        Formatter userOrDefault = user != null ? user : plain;
        Formatter assistantOrDefault = assistant != null ? assistant : Formatter.of(Slot.text("{{content}}"), Slot.EOS);
        BUILT_IN.put(name, new ChatTemplate(name, userOrDefault, assistantOrDefault,
                system != null ? system : plain,
                observation != null ? observation : userOrDefault,
                prefix != null ? prefix : new Formatter(List.of()),
                defaultSystem, stopWords, THINK_OPEN, THINK_CLOSE, replaceEos, foldSystem, reasoning,
                ToolCalling.forTemplate(name, assistantOrDefault)));
    }

    public static List<String> names() {
        return List.copyOf(BUILT_IN.keySet());
    }

    /** The built-in template called {@code name}; an unknown name names the nearest one. */
    public static ChatTemplate get(String name) {
        if (name == null) {
            throw new UserError("template is required; built-in templates: " + String.join(", ", names()));
        }
        ChatTemplate t = BUILT_IN.get(name);
        if (t == null) {
            throw new UserError("template: unknown template '" + name + "'"
                    + Suggest.didYouMean(name, BUILT_IN.keySet()) + "; built-in templates: " + String.join(", ", names()));
        }
        return t;
    }
}
