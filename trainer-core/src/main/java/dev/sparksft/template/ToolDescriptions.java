package dev.sparksft.template;

import static dev.sparksft.data.PyJson.dumps;
import static dev.sparksft.data.PyJson.str;
import static dev.sparksft.data.PyJson.truthy;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import dev.sparksft.UserError;
import dev.sparksft.data.PyJson;
import java.time.LocalDate;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The system text that describes the tools, per tool format: LLaMA-Factory's
 * {@code ToolUtils.tool_formatter} (data/tool_utils.py), with its prompts and its quirks kept
 * (the default format's str() of a list type, glm4_moe's unclosed XML, seed_oss's lost space).
 * The text is appended to the system prompt of the first turn.
 */
final class ToolDescriptions {
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final TextNode EMPTY = TextNode.valueOf("");
    private static final TextNode FUNCTION = TextNode.valueOf("function");
    // Python's strftime("%d %b %Y") in the C locale
    private static final DateTimeFormatter LLAMA3_DATE = DateTimeFormatter.ofPattern("dd MMM yyyy", Locale.ENGLISH);

    private static final String DEFAULT_BEFORE = "You have access to the following tools:\n";
    private static final String DEFAULT_BETWEEN = "Use the following format if using a tool:\n"
            + "```\n"
            + "Action: tool name (one of [";
    private static final String DEFAULT_AFTER = "])\n"
            + "Action Input: the input to the tool, in a JSON format representing the kwargs "
            + "(e.g. ```{\"input\": \"hello world\", \"num_beams\": 5}```)\n"
            + "```\n";
    private static final String GLM4_BEFORE = "你是一个名为 ChatGLM 的人工智能助手。你是基于智谱 AI 公司训练的语言模型 GLM-4 模型开发的，"
            + "你的任务是针对用户的问题和要求提供适当的答复和支持。\n"
            + "\n"
            + "# 可用工具";
    private static final String FUNCTIONS_IN_TOOLS = "# Tools\n"
            + "\n"
            + "You may call one or more functions to assist with the user query.\n"
            + "\n"
            + "You are provided with function signatures within <tools></tools> XML tags:\n"
            + "<tools>";
    private static final String GLM4_MOE_AFTER = "\n"
            + "</tools>\n"
            + "\n"
            + "For each function call, output the function name and arguments within the following XML format:\n"
            + "<tool_call>{function-name}\n"
            + "<arg_key>{arg-key-1}</arg_key>\n"
            + "<arg_value>{arg-value-1}</arg_value>\n"
            + "<arg_key>{arg-key-2}</arg_key>\n"
            + "<arg_value>{arg-value-2}</arg_value>\n"
            + "...\n"
            + "</tool_call>\n";
    private static final String LLAMA3_BEFORE = "Cutting Knowledge Date: December 2023\n"
            + "Today Date: ";
    private static final String LLAMA3_BETWEEN = "\n"
            + "\n"
            + "You have access to the following functions. To call a function, please respond with JSON for a function "
            + "call. Respond in the format {\"name\": function name, \"parameters\": dictionary of argument name and its "
            + "value}. Do not use variables.\n"
            + "\n";
    private static final String MINIMAX1_BEFORE = "You are provided with these tools:\n"
            + "<tools>\n";
    private static final String MINIMAX1_AFTER = "</tools>\n"
            + "\n"
            + "If you need to call tools, please respond with <tool_calls></tool_calls> XML tags, and provide tool-name "
            + "and json-object of arguments, following the format below:\n"
            + "<tool_calls>\n"
            + "{\"name\": <tool-name-1>, \"arguments\": <args-json-object-1>}\n"
            + "...\n"
            + "</tool_calls>";
    private static final String MINIMAX2_BEFORE = "\n"
            + "\n"
            + "# Tools\n"
            + "\n"
            + "You may call one or more tools to assist with the user query.\n"
            + "Here are the tools available in JSONSchema format:\n"
            + "\n"
            + "<tools>\n";
    private static final String MINIMAX2_AFTER = "</tools>\n"
            + "\n"
            + "When making tool calls, use XML format to invoke tools and pass parameters:\n"
            + "\n"
            + "<minimax:tool_call>\n"
            + "<invoke name=\"tool-name-1\">\n"
            + "<parameter name=\"param-key-1\">param-value-1</parameter>\n"
            + "<parameter name=\"param-key-2\">param-value-2</parameter>\n"
            + "...\n"
            + "</invoke>\n"
            + "</minimax:tool_call>";
    private static final String QWEN_AFTER = "\n"
            + "</tools>\n"
            + "\n"
            + "For each function call, return a json object with function name and arguments within "
            + "<tool_call></tool_call> XML tags:\n"
            + "<tool_call>\n"
            + "{\"name\": <function-name>, \"arguments\": <args-json-object>}\n"
            + "</tool_call>";
    private static final String QWEN3_5_BEFORE = "\n"
            + "\n"
            + "# Tools\n"
            + "\n"
            + "You have access to the following functions:\n"
            + "\n"
            + "<tools>";
    private static final String QWEN3_5_AFTER = "\n"
            + "</tools>\n"
            + "\n"
            + "If you choose to call a function ONLY reply in the following format with NO suffix:\n"
            + "\n"
            + "<tool_call>\n"
            + "<function=example_function_name>\n"
            + "<parameter=example_parameter_1>\n"
            + "value_1\n"
            + "</parameter>\n"
            + "<parameter=example_parameter_2>\n"
            + "This is the value for the second parameter\n"
            + "that can span\n"
            + "multiple lines\n"
            + "</parameter>\n"
            + "</function>\n"
            + "</tool_call>\n"
            + "\n"
            + "<IMPORTANT>\n"
            + "Reminder:\n"
            + "- Function calls MUST follow the specified format: an inner <function=...></function> block must be "
            + "nested within <tool_call></tool_call> XML tags\n"
            + "- Required parameters MUST be specified\n"
            + "- You may provide optional reasoning for your function call in natural language BEFORE the function "
            + "call, but NOT after\n"
            + "- If there is no function call available, answer the question like normal with your current knowledge "
            + "and do not tell the user about function calls\n"
            + "</IMPORTANT>";
    private static final String SEED_OSS_BEFORE = "system\n"
            + "You are Doubao, a helpful AI assistant. You may call one or more functions to assist with the user "
            + "query.Tool List:\n"
            + "You are authorized to use the following tools (described in JSON Schema format). Before performing any "
            + "task, you must decide how to call them based on the descriptions and parameters of these tools.";
    private static final String SEED_OSS_AFTER = "\n"
            + "工具调用请遵循如下格式:\n"
            + "<seed:tool_call>\n"
            + "<function=example_function_name>\n"
            + "<parameter=example_parameter_1>value_1</parameter>\n"
            + "<parameter=example_parameter_2>This is the value for the second parameter\n"
            + "that can span\n"
            + "multiple lines</parameter>\n"
            + "</function>\n"
            + "</seed:tool_call>\n";

    private ToolDescriptions() {}

    /** @param tools a non-empty loaded tools value; @param today the date llama3's prompt states */
    static String of(ToolFormat format, JsonNode tools, LocalDate today) {
        if (format == ToolFormat.SEED_OSS) {   // the only format that writes the value as it is
            return SEED_OSS_BEFORE + "\n" + dumps(tools) + SEED_OSS_AFTER;
        }
        List<JsonNode> list = PyJson.iterate(tools);
        if (list == null || !tools.isArray()) {
            throw bad("the value is " + abbreviated(tools) + ", not a list");
        }
        StringBuilder text = new StringBuilder();
        switch (format) {
            case DEFAULT -> {
                List<String> names = new ArrayList<>();
                for (JsonNode tool : list) {
                    JsonNode t = unwrap(tool, EMPTY);
                    text.append(defaultTool(t));
                    JsonNode name = get(t, "name");
                    if (!name.isTextual()) {
                        throw bad("a tool's name is " + abbreviated(name) + ", not a string");
                    }
                    names.add(name.textValue());
                }
                return DEFAULT_BEFORE + text + DEFAULT_BETWEEN + String.join(", ", names) + DEFAULT_AFTER;
            }
            case GEMMA4 -> {
                List<String> declarations = new ArrayList<>();
                for (JsonNode tool : list) {
                    declarations.add(gemma4Tool(unwrap(tool, tool)));
                }
                return String.join("\n", declarations);
            }
            case GLM4 -> {
                for (JsonNode tool : list) {
                    JsonNode t = unwrap(tool, EMPTY);
                    text.append("\n\n## ").append(str(get(t, "name"))).append("\n\n").append(PyJson.dumps(t, 4))
                            .append("\n在调用上述函数时，请使用 Json 格式表示调用的参数。");
                }
                return GLM4_BEFORE + text;
            }
            case LLAMA3 -> {
                for (JsonNode tool : list) {
                    text.append(PyJson.dumps(wrapped(tool), 4)).append("\n\n");
                }
                return LLAMA3_BEFORE + LLAMA3_DATE.format(today) + LLAMA3_BETWEEN + text;
            }
            case LFM2 -> {
                ArrayNode unwrapped = NODES.arrayNode();
                list.forEach(tool -> unwrapped.add(unwrap(tool, tool)));
                return "List of tools: <|tool_list_start|>" + dumps(unwrapped) + "<|tool_list_end|>";
            }
            case MINIMAX1 -> {
                list.forEach(tool -> text.append(dumps(unwrap(tool, EMPTY))).append("\n"));
                return MINIMAX1_BEFORE + text + MINIMAX1_AFTER;
            }
            case MINIMAX2 -> {
                list.forEach(tool -> text.append("<tool>").append(dumps(unwrap(tool, EMPTY))).append("</tool>\n"));
                return MINIMAX2_BEFORE + text + MINIMAX2_AFTER;
            }
            case MISTRAL -> {
                ArrayNode all = NODES.arrayNode();
                list.forEach(tool -> all.add(wrapped(tool)));
                return "[AVAILABLE_TOOLS] " + dumps(all) + "[/AVAILABLE_TOOLS]";
            }
            case QWEN, GLM4_MOE, LING -> {
                list.forEach(tool -> text.append("\n").append(dumps(wrapped(tool))));
                return switch (format) {
                    case QWEN -> "\n\n" + FUNCTIONS_IN_TOOLS + text + QWEN_AFTER;
                    case GLM4_MOE -> "\n\n" + FUNCTIONS_IN_TOOLS + text + GLM4_MOE_AFTER;
                    default -> FUNCTIONS_IN_TOOLS + text + QWEN_AFTER + "\n" + "detailed thinking off";
                };
            }
            case QWEN3_5 -> {
                list.forEach(tool -> text.append("\n").append(dumps(unwrap(tool, tool))));
                return QWEN3_5_BEFORE + text + QWEN3_5_AFTER;
            }
            default -> throw new IllegalStateException("no tool description for " + format);
        }
    }

    /** DefaultToolUtils: "> Tool Name: ..." and one "  - name (type, required): description" line per argument. */
    private static String defaultTool(JsonNode tool) {
        JsonNode parameters = get(tool, "parameters");
        JsonNode properties = get(parameters, "properties");
        if (!properties.isObject()) {
            throw bad("a tool's parameters.properties is " + abbreviated(properties) + ", not an object");
        }
        JsonNode required = getOr(parameters, "required", NODES.arrayNode());
        StringBuilder params = new StringBuilder();
        for (Map.Entry<String, JsonNode> p : properties.properties()) {
            JsonNode param = p.getValue();
            String enumText = "";
            if (truthy(getOr(param, "enum", null))) {
                List<String> values = new ArrayList<>();
                List<JsonNode> enumValues = PyJson.iterate(param.get("enum"));
                if (enumValues == null) {
                    throw bad("enum of '" + p.getKey() + "' is " + abbreviated(param.get("enum")) + ", not a list");
                }
                for (JsonNode v : enumValues) {
                    if (!v.isTextual()) {
                        throw bad("enum of '" + p.getKey() + "' holds " + abbreviated(v) + ", not a string");
                    }
                    values.add(v.textValue());
                }
                enumText = ", should be one of [" + String.join(", ", values) + "]";
            }
            String items = truthy(getOr(param, "items", null))
                    ? ", where each item should be " + str(getOr(param.get("items"), "type", EMPTY)) : "";
            params.append("  - ").append(p.getKey()).append(" (").append(str(getOr(param, "type", EMPTY)))
                    .append(contains(required, p.getKey()) ? ", required" : "").append("): ")
                    .append(str(getOr(param, "description", EMPTY))).append(enumText).append(items).append("\n");
        }
        return "> Tool Name: " + str(get(tool, "name")) + "\nTool Description: " + str(getOr(tool, "description", EMPTY))
                + "\nTool Args:\n" + params + "\n";
    }

    /** Gemma4ToolUtils: "declaration:name{description:<|"|>...<|"|>,parameters:{...}}". */
    private static String gemma4Tool(JsonNode function) {
        String q = "<|\"|>";
        StringBuilder d = new StringBuilder("declaration:").append(str(get(function, "name"))).append("{description:")
                .append(q).append(str(getOr(function, "description", EMPTY))).append(q);
        JsonNode params = getOr(function, "parameters", null);
        if (truthy(params)) {
            List<String> parts = new ArrayList<>();
            if (truthy(getOr(params, "properties", null))) {
                JsonNode properties = params.get("properties");
                if (!properties.isObject()) {
                    throw bad("a tool's parameters.properties is " + abbreviated(properties) + ", not an object");
                }
                List<String> props = new ArrayList<>();
                for (Map.Entry<String, JsonNode> p : properties.properties()) {
                    List<String> item = new ArrayList<>();
                    if (truthy(getOr(p.getValue(), "description", null))) {
                        item.add("description:" + q + str(p.getValue().get("description")) + q);
                    }
                    if (truthy(getOr(p.getValue(), "type", null))) {
                        item.add("type:" + q + upper(str(p.getValue().get("type"))) + q);
                    }
                    props.add(p.getKey() + ":{" + String.join(",", item) + "}");
                }
                parts.add("properties:{" + String.join(",", props) + "}");
            }
            if (truthy(getOr(params, "required", null))) {
                List<String> names = new ArrayList<>();
                List<JsonNode> required = PyJson.iterate(params.get("required"));
                if (required == null) {
                    throw bad("a tool's parameters.required is " + abbreviated(params.get("required")) + ", not a list");
                }
                required.forEach(r -> names.add(q + str(r) + q));
                parts.add("required:[" + String.join(",", names) + "]");
            }
            if (truthy(getOr(params, "type", null))) {
                parts.add("type:" + q + upper(str(params.get("type"))) + q);
            }
            d.append(",parameters:{").append(String.join(",", parts)).append("}");
        }
        JsonNode response = getOr(function, "response", null);
        if (truthy(response)) {
            List<String> parts = new ArrayList<>();
            if (truthy(getOr(response, "description", null))) {
                parts.add("description:" + q + str(response.get("description")) + q);
            }
            String type = upper(str(getOr(response, "type", EMPTY)));
            if (type.equals("OBJECT")) {
                parts.add("type:" + q + type + q);
            }
            d.append(",response:{").append(String.join(",", parts)).append("}");
        }
        return d.append("}").toString();
    }

    /** {@code tool.get("function", fallback) if tool.get("type") == "function" else tool}. */
    private static JsonNode unwrap(JsonNode tool, JsonNode fallback) {
        return FUNCTION.equals(getOr(tool, "type", null)) ? getOr(tool, "function", fallback) : tool;
    }

    /** {@code tool if tool.get("type") == "function" else {"type": "function", "function": tool}}. */
    private static JsonNode wrapped(JsonNode tool) {
        if (FUNCTION.equals(getOr(tool, "type", null))) {
            return tool;
        }
        ObjectNode w = NODES.objectNode();
        w.set("type", FUNCTION);
        w.set("function", tool);
        return w;
    }

    /** {@code dict[key]}. */
    private static JsonNode get(JsonNode dict, String key) {
        JsonNode v = getOr(dict, key, null);
        if (v == null) {
            throw bad("a tool has no '" + key + "': " + abbreviated(dict));
        }
        return v;
    }

    /** {@code dict.get(key, fallback)}. */
    private static JsonNode getOr(JsonNode dict, String key, JsonNode fallback) {
        if (!dict.isObject()) {
            throw bad("expected an object, found " + abbreviated(dict));
        }
        return dict.has(key) ? dict.get(key) : fallback;
    }

    /** Python's {@code key in container}: a list's items, a dict's keys, a substring of a string. */
    private static boolean contains(JsonNode container, String key) {
        if (container.isArray()) {
            for (JsonNode v : container) {
                if (v.isTextual() && v.textValue().equals(key)) {
                    return true;
                }
            }
            return false;
        } else if (container.isObject()) {
            return container.has(key);
        } else if (container.isTextual()) {
            return container.textValue().contains(key);
        }
        throw bad("parameters.required is " + abbreviated(container) + ", not a list");
    }

    private static String upper(String s) {
        return s.toUpperCase(Locale.ROOT);
    }

    private static String abbreviated(JsonNode v) {
        String s = dumps(v);
        return s.length() <= 120 ? s : s.substring(0, 120) + "...";
    }

    static UserError bad(String problem) {
        return new UserError("tools: " + problem + "; the tools column must hold a JSON list of tools, each "
                + "{\"name\", \"description\", \"parameters\": {\"type\": \"object\", \"properties\": {...}, "
                + "\"required\": [...]}} (or {\"type\": \"function\", \"function\": {...}})");
    }
}
