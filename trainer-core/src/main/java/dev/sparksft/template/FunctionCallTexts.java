package dev.sparksft.template;

import static dev.sparksft.data.PyJson.dumps;
import static dev.sparksft.data.PyJson.str;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sparksft.UserError;
import dev.sparksft.data.PyJson;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/**
 * The assistant text of a message's function calls, per tool format: LLaMA-Factory's
 * {@code ToolUtils.function_formatter} (data/tool_utils.py), quirks kept (glm4_moe's unclosed
 * {@code <tool_call>}, seed_oss's {@code <function=name} without {@code >}, minimax2's calls
 * without their {@code <minimax:tool_call>} wrapper).
 */
final class FunctionCallTexts {
    private static final JsonNodeFactory NODES = JsonNodeFactory.instance;
    private static final String GEMMA_QUOTE = "<|\"|>";
    // Python sorts str keys by code point
    private static final Comparator<String> CODE_POINTS = (a, b) -> {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Integer.compare(a.length() - i, b.length() - j);
    };

    private FunctionCallTexts() {}

    static String of(ToolFormat format, List<ToolFormat.Call> calls) {
        List<String> texts = new ArrayList<>();
        switch (format) {
            case DEFAULT -> {
                calls.forEach(c -> texts.add("Action: " + str(c.name()) + "\nAction Input: " + dumps(c.arguments())));
                return String.join("\n", texts);
            }
            case GEMMA4 -> {
                calls.forEach(c -> texts.add(gemma4Call(c)));
                return String.join("", texts);
            }
            case GLM4 -> {
                if (calls.isEmpty()) {
                    throw new UserError("tool_format glm4: a function_call message holds no call");
                }
                if (calls.size() > 1) {
                    throw new UserError("tool_format glm4: a function_call message holds " + calls.size()
                            + " calls, and GLM-4 writes one call per message (LLaMA-Factory refuses parallel functions)");
                }
                return str(calls.get(0).name()) + "\n" + dumps(calls.get(0).arguments());
            }
            case LLAMA3 -> {
                ArrayNode all = NODES.arrayNode();
                calls.forEach(c -> all.add(call(c, "parameters")));
                return dumps(all.size() == 1 ? all.get(0) : all);
            }
            case MISTRAL -> {
                ArrayNode all = NODES.arrayNode();
                calls.forEach(c -> all.add(call(c, "arguments")));
                return dumps(all);
            }
            case QWEN, LING -> {
                calls.forEach(c -> texts.add("<tool_call>\n" + dumps(call(c, "arguments")) + "\n</tool_call>"));
                return String.join("\n", texts);
            }
            case QWEN3_5 -> {
                for (ToolFormat.Call c : calls) {
                    StringBuilder t = new StringBuilder("<tool_call>\n<function=").append(str(c.name())).append(">");
                    arguments(c, format).forEach(e -> t.append("\n<parameter=").append(e.getKey()).append(">\n")
                            .append(value(e.getValue())).append("\n</parameter>"));
                    texts.add(t.append("\n</function>\n</tool_call>").toString());
                }
                return String.join("\n", texts);
            }
            case MINIMAX1 -> {
                calls.forEach(c -> texts.add(dumps(call(c, "arguments"))));
                return "<tool_calls>\n" + String.join("\n", texts) + "\n</tool_calls>";
            }
            case MINIMAX2 -> {
                for (ToolFormat.Call c : calls) {
                    StringBuilder t = new StringBuilder("<invoke name=\"").append(str(c.name())).append("\">");
                    arguments(c, format).forEach(e -> t.append("\n<parameter name=\"").append(e.getKey()).append("\">")
                            .append(value(e.getValue())).append("</parameter>"));
                    texts.add(t.append("\n</invoke>").toString());
                }
                return String.join("\n", texts);
            }
            case GLM4_MOE -> {
                for (ToolFormat.Call c : calls) {
                    StringBuilder t = new StringBuilder("\n<tool_call>").append(textName(c, format));
                    arguments(c, format).forEach(e -> t.append("\n<arg_key>").append(e.getKey()).append("</arg_key>")
                            .append("\n<arg_value>").append(value(e.getValue())).append("</arg_value>"));
                    texts.add(t.toString());
                }
                return String.join("\n", texts);
            }
            case SEED_OSS -> {
                for (ToolFormat.Call c : calls) {
                    StringBuilder t = new StringBuilder("\n<seed:tool_call>\n<function=").append(textName(c, format));
                    arguments(c, format).forEach(e -> t.append("\n<parameter=").append(e.getKey()).append(">")
                            .append(value(e.getValue())).append("</parameter>"));
                    texts.add(t.append("\n</function>\n</seed:tool_call>").toString());
                }
                return String.join("\n", texts);
            }
            case LFM2 -> {
                for (ToolFormat.Call c : calls) {
                    List<String> kwargs = new ArrayList<>();
                    arguments(c, format).forEach(e -> kwargs.add(e.getValue().isTextual()
                            ? e.getKey() + "=\"" + e.getValue().textValue() + "\"" : e.getKey() + "=" + dumps(e.getValue())));
                    texts.add(str(c.name()) + "(" + String.join(", ", kwargs) + ")");
                }
                return "<|tool_call_start|>[" + String.join(", ", texts) + "]<|tool_call_end|>";
            }
            default -> throw new IllegalStateException("no function call text for " + format);
        }
    }

    /** {"name": name, key: arguments}, in that order. */
    private static ObjectNode call(ToolFormat.Call c, String argumentsKey) {
        ObjectNode o = NODES.objectNode();
        o.set("name", c.name());
        o.set(argumentsKey, c.arguments());
        return o;
    }

    /** {@code arguments.items()}: only an object has them. */
    private static Iterable<Map.Entry<String, JsonNode>> arguments(ToolFormat.Call c, ToolFormat format) {
        if (!c.arguments().isObject()) {
            throw new UserError("tool_format " + format.key + ": the arguments of call '" + str(c.name()) + "' are "
                    + dumps(c.arguments()) + "; this format needs an object of argument names and values");
        }
        return c.arguments().properties();
    }

    /** A name joined with "+", which Python refuses for anything but a string. */
    private static String textName(ToolFormat.Call c, ToolFormat format) {
        if (!c.name().isTextual()) {
            throw new UserError("tool_format " + format.key + ": a call's name is " + dumps(c.name())
                    + ", not a string");
        }
        return c.name().textValue();
    }

    /** An argument value as the XML-like formats write it: a string as it is, anything else as JSON. */
    private static String value(JsonNode v) {
        return v.isTextual() ? v.textValue() : dumps(v);
    }

    /** Gemma4ToolUtils: "<|tool_call>call:name{key:value,...}<tool_call|>", keys sorted, strings in <|"|>. */
    private static String gemma4Call(ToolFormat.Call c) {
        StringBuilder t = new StringBuilder("<|tool_call>call:").append(str(c.name())).append("{");
        JsonNode args = c.arguments();
        if (args.isObject()) {
            List<String> parts = new ArrayList<>();
            for (String key : sortedKeys(args)) {
                parts.add(key + ":" + gemma4Argument(args.get(key), false));
            }
            t.append(String.join(",", parts));
        } else if (args.isTextual()) {
            t.append(args.textValue());
        } else {
            t.append(gemma4Argument(args, false));
        }
        return t.append("}<tool_call|>").toString();
    }

    private static String gemma4Argument(JsonNode v, boolean escapeKeys) {
        if (v.isTextual()) {
            return GEMMA_QUOTE + v.textValue() + GEMMA_QUOTE;
        } else if (v.isBoolean()) {
            return v.booleanValue() ? "true" : "false";
        } else if (v.isObject()) {
            List<String> items = new ArrayList<>();
            for (String key : sortedKeys(v)) {
                items.add((escapeKeys ? GEMMA_QUOTE + key + GEMMA_QUOTE : key) + ":" + gemma4Argument(v.get(key), escapeKeys));
            }
            return "{" + String.join(",", items) + "}";
        } else if (v.isArray()) {
            List<String> items = new ArrayList<>();
            v.forEach(e -> items.add(gemma4Argument(e, escapeKeys)));
            return "[" + String.join(",", items) + "]";
        } else if (v.isNull()) {
            return "null";
        }
        return str(v);
    }

    private static List<String> sortedKeys(JsonNode object) {
        List<String> keys = new ArrayList<>();
        object.fieldNames().forEachRemaining(keys::add);
        keys.sort(CODE_POINTS);
        return keys;
    }
}
