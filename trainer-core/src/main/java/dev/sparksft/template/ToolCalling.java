package dev.sparksft.template;

import static java.util.Map.entry;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.UserError;
import dev.sparksft.data.PyJson;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * How a template writes tools and function calls: LLaMA-Factory's {@code format_function}
 * (FunctionFormatter), {@code format_tools} (ToolFormatter) and {@code tool_call_words}.
 *
 * @param function     the slots of a function message, {@code {{content}}} being the calls' text
 * @param format       the tool format that writes the calls, and describes the tools unless
 *                     {@code tools} is set
 * @param tools        a plain StringFormatter in place of the ToolFormatter (phi4_mini:
 *                     "&lt;|tool|&gt;{{content}}&lt;|/tool|&gt;", the tools column's JSON as it is); null: {@code format}
 * @param callOpen     tool_call_words: in "text&lt;tool_call&gt;json&lt;/tool_call&gt;" the JSON
 *                     between them is the call and the text around it is kept in front
 * @param callClose    see callOpen
 * @param efficientEos LLaMA-Factory's efficient_eos, which decides the slots a tool_format key
 *                     gives function messages
 * @param today        the date llama3's tool prompt states; null: the day the prompt is written,
 *                     as LLaMA-Factory's datetime.now()
 */
public record ToolCalling(Formatter function, ToolFormat format, Formatter tools, String callOpen, String callClose,
                          boolean efficientEos, LocalDate today) {
    private static final String CALL_OPEN = "<tool_call>";
    private static final String CALL_CLOSE = "</tool_call>";

    /**
     * The format_function / format_tools / tool_call_words / efficient_eos of LLaMA-Factory's
     * text templates that set them, whether or not spark-sft has the template yet (so that
     * registering one needs no second table). A null function means the assistant's slots, as
     * register_template's default; a template not listed writes calls with its assistant slots
     * and the default format.
     */
    private static final Map<String, ToolCalling> BY_TEMPLATE = Map.ofEntries(
            entry("bailing", efficientEos(null, ToolFormat.DEFAULT)),
            entry("bailing_v2", efficientEos(Formatter.of("{{content}}<|role_end|>"), ToolFormat.LING)),
            entry("breeze", efficientEos(null, ToolFormat.DEFAULT)),
            entry("chatglm3", efficientEos(Formatter.of("{{content}}"), ToolFormat.GLM4)),
            entry("falcon", efficientEos(null, ToolFormat.DEFAULT)),
            entry("fewshot", efficientEos(null, ToolFormat.DEFAULT)),
            entry("gemma2", efficientEos(null, ToolFormat.DEFAULT)),
            entry("gemma4", of(Formatter.of("<|tool>{{content}}<tool|>"), ToolFormat.GEMMA4)),
            entry("gemma4n", of(Formatter.of("<|tool>{{content}}<tool|>"), ToolFormat.GEMMA4)),
            entry("glm4", efficientEos(Formatter.of("{{content}}"), ToolFormat.GLM4)),
            entry("glm4_moe", efficientEos(Formatter.of("{{content}}"), ToolFormat.GLM4_MOE)),
            entry("glm4_7", efficientEos(Formatter.of("{{content}}"), ToolFormat.GLM4_MOE)),
            entry("glmz1", efficientEos(Formatter.of("{{content}}"), ToolFormat.GLM4)),
            entry("gpt_oss", efficientEos(null, ToolFormat.DEFAULT)),
            entry("granite4", of(Formatter.of("{{content}}<|end_of_text|>\n"), ToolFormat.DEFAULT)),
            entry("index", efficientEos(null, ToolFormat.DEFAULT)),
            entry("hy_dense_1_8b", efficientEos(null, ToolFormat.DEFAULT)),
            entry("hy_dense_7b", efficientEos(null, ToolFormat.DEFAULT)),
            entry("lfm2", new ToolCalling(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.LFM2, null,
                    "<|tool_call_start|>", "<|tool_call_end|>", false, null)),
            entry("llama3", of(Formatter.of("{{content}}<|eot_id|>"), ToolFormat.LLAMA3)),
            entry("llama4", of(Formatter.of("{{content}}<|eot|>"), ToolFormat.LLAMA3)),
            entry("mimo", of(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.QWEN)),
            entry("mimo_v2", of(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.QWEN)),
            entry("minimax1", of(Formatter.of("{{content}}<end_of_sentence>\n"), ToolFormat.MINIMAX1)),
            entry("minimax2", of(Formatter.of("{{content}}[e~[\n"), ToolFormat.MINIMAX2)),
            entry("ministral", of(Formatter.of(Slot.text("[TOOL_CALLS]{{content}}"), Slot.EOS), ToolFormat.MISTRAL)),
            entry("ministral3", of(Formatter.of(Slot.text("[TOOL_CALLS]{{content}}"), Slot.EOS), ToolFormat.MISTRAL)),
            entry("mistral", of(Formatter.of(Slot.text("[TOOL_CALLS] {{content}}"), Slot.EOS), ToolFormat.MISTRAL)),
            entry("mistral_small", of(Formatter.of(Slot.text("[TOOL_CALLS]{{content}}"), Slot.EOS), ToolFormat.MISTRAL)),
            entry("phi4_mini", new ToolCalling(null, ToolFormat.DEFAULT, Formatter.of("<|tool|>{{content}}<|/tool|>"),
                    CALL_OPEN, CALL_CLOSE, false, null)),
            entry("qwen", of(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.QWEN)),
            entry("qwen2_vl", of(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.QWEN)),
            entry("qwen3", of(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.QWEN)),
            entry("qwen3_nothink", of(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.QWEN)),
            entry("qwen3_5", of(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.QWEN3_5)),
            entry("qwen3_5_nothink", of(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.QWEN3_5)),
            entry("qwen3_6", of(Formatter.of("{{content}}<|im_end|>\n"), ToolFormat.QWEN3_5)),
            entry("seed_oss", of(Formatter.of(Slot.BOS, Slot.text("\n{{content}}"), Slot.EOS), ToolFormat.SEED_OSS)),
            entry("solar", efficientEos(null, ToolFormat.DEFAULT)),
            entry("youtu", of(Formatter.of("{{content}}"), ToolFormat.DEFAULT)),
            entry("aeva", efficientEos(Formatter.of("{{content}}"), ToolFormat.GLM4_MOE)));

    private static ToolCalling of(Formatter function, ToolFormat format) {
        return new ToolCalling(function, format, null, CALL_OPEN, CALL_CLOSE, false, null);
    }

    private static ToolCalling efficientEos(Formatter function, ToolFormat format) {
        return new ToolCalling(function, format, null, CALL_OPEN, CALL_CLOSE, true, null);
    }

    /** The tool calling of the template {@code name} whose assistant slots are {@code assistant}. */
    static ToolCalling forTemplate(String name, Formatter assistant) {
        ToolCalling c = BY_TEMPLATE.getOrDefault(name, of(null, ToolFormat.DEFAULT));
        return c.function != null ? c : new ToolCalling(assistant, c.format, c.tools, c.callOpen, c.callClose,
                c.efficientEos, c.today);
    }

    /**
     * The {@code tool_format} key: LLaMA-Factory replaces both formatters (a plain tools
     * formatter too), and function messages get the plain slots "{{content}}" + eos (no eos with
     * efficient_eos), not the template's.
     */
    public ToolCalling withFormat(ToolFormat newFormat) {
        Formatter plain = efficientEos ? Formatter.of("{{content}}") : Formatter.of(Slot.text("{{content}}"), Slot.EOS);
        return new ToolCalling(plain, newFormat, null, callOpen, callClose, efficientEos, today);
    }

    /** The same with llama3's date fixed (tests, or a run that must not depend on the day). */
    public ToolCalling withToday(LocalDate date) {
        return new ToolCalling(function, format, tools, callOpen, callClose, efficientEos, date);
    }

    /**
     * format_tools: the text appended to the system prompt for the tools column's JSON, by the
     * ToolFormatter of {@code format}, or by the plain {@code tools} slots (the JSON unparsed).
     */
    public String describeTools(String toolsJson) {
        if (tools != null) {
            return ((Slot.Text) tools.apply(toolsJson).get(0)).text();   // LLaMA-Factory takes the first element
        }
        return format.describeTools(toolsJson, today != null ? today : LocalDate.now());
    }

    /** LLaMA-Factory's tool_format name of format_tools: null for a plain tools formatter. */
    public String toolsFormatName() {
        return tools != null ? null : format.key;
    }

    /**
     * FunctionFormatter: the slots of a function message. With {@code words} (every template but
     * those folding the system prompt, as LLaMA-Factory's Llama2Template passes none) text
     * around a {@code tool_call_words} pair is kept in front of the calls, else a leading
     * thought (between {@code thoughtOpen} and {@code thoughtClose}) is.
     */
    public List<Slot> functionSlots(String content, boolean words, String thoughtOpen, String thoughtClose) {
        Matcher call = words ? between(callOpen, callClose).matcher(content) : null;
        String text;
        if (call != null && call.find()) {
            text = content.replace(call.group(0), "") + format.writeCalls(parseCalls(call.group(1), content));
        } else {
            Matcher thought = words ? between(thoughtOpen, thoughtClose).matcher(content) : null;
            if (thought != null && thought.find()) {
                text = thought.group(0) + format.writeCalls(parseCalls(content.replace(thought.group(0), ""), content));
            } else {
                text = format.writeCalls(parseCalls(content, content));
            }
        }
        return function.apply(text);
    }

    private static Pattern between(String open, String close) {
        return Pattern.compile(Pattern.quote(open) + "(.*?)" + Pattern.quote(close), Pattern.DOTALL);
    }

    /** FunctionFormatter's _parse_functions: one {"name", "arguments"} object or a list of them. */
    static List<ToolFormat.Call> parseCalls(String json, String content) {
        JsonNode v = PyJson.loads(json);
        if (v == null) {
            throw badCall("it is not JSON", content);
        }
        List<ToolFormat.Call> calls = new ArrayList<>();
        Iterable<JsonNode> items = v.isArray() ? v : List.of(v);   // one call is a list of one
        for (JsonNode c : items) {
            if (!c.isObject() || !c.has("name") || !c.has("arguments")) {
                throw badCall(PyJson.dumps(c) + " is not an object with name and arguments", content);
            }
            calls.add(new ToolFormat.Call(c.get("name"), c.get("arguments")));
        }
        return calls;
    }

    private static UserError badCall(String problem, String content) {
        return new UserError("function call message '" + ToolFormat.abbreviate(content) + "': " + problem
                + "; a function_call message holds {\"name\": ..., \"arguments\": {...}} or a list of them");
    }
}
