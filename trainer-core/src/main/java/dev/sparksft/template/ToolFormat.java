package dev.sparksft.template;

import com.fasterxml.jackson.databind.JsonNode;
import dev.sparksft.UserError;
import dev.sparksft.config.Suggest;
import dev.sparksft.data.PyJson;
import java.time.LocalDate;
import java.util.Arrays;
import java.util.List;

/**
 * LLaMA-Factory's tool formats ({@code TOOLS} of data/tool_utils.py), the values of the
 * {@code tool_format} key: how the available tools are described in the system prompt
 * ({@link ToolDescriptions}) and how an assistant's function calls are written
 * ({@link FunctionCallTexts}). Each template has its own (qwen: qwen, llama3: llama3, ...).
 */
public enum ToolFormat {
    DEFAULT("default"),
    GEMMA4("gemma4"),
    GLM4("glm4"),
    LLAMA3("llama3"),
    LFM2("lfm2"),
    MINIMAX1("minimax1"),
    MINIMAX2("minimax2"),
    MISTRAL("mistral"),
    QWEN("qwen"),
    QWEN3_5("qwen3_5"),
    GLM4_MOE("glm4_moe"),
    SEED_OSS("seed_oss"),
    LING("ling");

    /** The name in the configuration. */
    public final String key;

    ToolFormat(String key) {
        this.key = key;
    }

    /**
     * One function call as LLaMA-Factory's FunctionCall holds it: the name and the arguments
     * (there a json.dumps string that every format loads again; here the loaded value).
     */
    public record Call(JsonNode name, JsonNode arguments) {}

    public static List<String> keys() {
        return Arrays.stream(values()).map(f -> f.key).toList();
    }

    /** The format called {@code key}; an unknown one is the user's mistake, naming the nearest. */
    public static ToolFormat of(String key) {
        for (ToolFormat f : values()) {
            if (f.key.equals(key)) {
                return f;
            }
        }
        throw new UserError("tool_format: unknown tool format '" + key + "'" + Suggest.didYouMean(key, keys())
                + "; known: " + String.join(", ", keys()) + " (or leave it unset for the template's own)");
    }

    /**
     * LLaMA-Factory's ToolFormatter: the system text describing {@code toolsJson} ("" for an
     * empty list).
     *
     * @param today the date the llama3 format states as today
     */
    public String describeTools(String toolsJson, LocalDate today) {
        JsonNode tools = PyJson.loads(toolsJson);
        if (tools == null) {
            throw ToolDescriptions.bad("the value is not JSON: " + abbreviate(toolsJson));
        }
        if ((tools.isContainerNode() || tools.isTextual()) && size(tools) == 0) {
            return "";
        }
        if (!tools.isContainerNode() && !tools.isTextual()) {
            throw ToolDescriptions.bad("the value is " + PyJson.dumps(tools) + ", not a list");
        }
        return ToolDescriptions.of(this, tools, today);
    }

    /** The format's function_formatter: the assistant text of {@code calls}. */
    public String writeCalls(List<Call> calls) {
        return FunctionCallTexts.of(this, calls);
    }

    private static int size(JsonNode v) {
        return v.isTextual() ? v.textValue().codePointCount(0, v.textValue().length()) : v.size();
    }

    static String abbreviate(String s) {
        return s.length() <= 200 ? s : s.substring(0, 200) + "...";
    }
}
