package dev.sparksft.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.json.JsonReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.TextNode;
import java.math.BigDecimal;
import java.math.MathContext;
import java.math.RoundingMode;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * JSON values as Python handles them, for the tool formats: LLaMA-Factory reads tool descriptions
 * and calls with {@code json.loads} and writes them with {@code json.dumps(ensure_ascii=False)}, so
 * key order (as read), number spelling ({@code 1e-07}, {@code 2.0}, {@code 1e+16}) and escapes
 * must be Python's; {@code str.format} writes a value as {@code str()} does ({@code True},
 * {@code ['a', 'b']}), and {@code if value:} is Python's truthiness.
 */
public final class PyJson {
    // json.loads accepts NaN and Infinity and refuses anything after the value
    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private PyJson() {}

    /** {@code json.loads}; null where Python raises JSONDecodeError. */
    public static JsonNode loads(String text) {
        try {
            JsonNode v = JSON.readTree(text);
            return v == null || v.isMissingNode() ? null : v;
        } catch (JsonProcessingException e) {
            return null;
        }
    }

    /** {@code json.dumps(v, ensure_ascii=False)}: separators ", " and ": ". */
    public static String dumps(JsonNode v) {
        StringBuilder sb = new StringBuilder();
        write(sb, v, 0, 0);
        return sb.toString();
    }

    /** {@code json.dumps(v, indent=indent, ensure_ascii=False)}: separators "," and ": ", one item a line. */
    public static String dumps(JsonNode v, int indent) {
        StringBuilder sb = new StringBuilder();
        write(sb, v, indent, 0);
        return sb.toString();
    }

    private static void write(StringBuilder sb, JsonNode v, int indent, int level) {
        if (v.isObject() || v.isArray()) {
            boolean object = v.isObject();
            if (v.isEmpty()) {
                sb.append(object ? "{}" : "[]");
                return;
            }
            String newline = indent > 0 ? "\n" + " ".repeat(indent * (level + 1)) : "";
            sb.append(object ? '{' : '[').append(newline);
            boolean first = true;
            Iterator<Map.Entry<String, JsonNode>> fields = object ? v.fields() : null;
            Iterator<JsonNode> elements = object ? null : v.elements();
            while (object ? fields.hasNext() : elements.hasNext()) {
                if (!first) {
                    sb.append(indent > 0 ? "," + newline : ", ");
                }
                first = false;
                if (object) {
                    Map.Entry<String, JsonNode> f = fields.next();
                    writeString(sb, f.getKey());
                    sb.append(": ");
                    write(sb, f.getValue(), indent, level + 1);
                } else {
                    write(sb, elements.next(), indent, level + 1);
                }
            }
            sb.append(indent > 0 ? "\n" + " ".repeat(indent * level) : "").append(object ? '}' : ']');
        } else if (v.isTextual()) {
            writeString(sb, v.textValue());
        } else if (v.isFloatingPointNumber()) {
            double d = v.doubleValue();
            sb.append(Double.isNaN(d) ? "NaN" : Double.isInfinite(d) ? (d > 0 ? "Infinity" : "-Infinity") : floatRepr(d));
        } else {
            sb.append(v.asText());   // integers (any size), true, false, null
        }
    }

    /** Python's json string escapes with ensure_ascii=False: only quote, backslash and controls. */
    private static void writeString(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                default -> {
                    if (c < 0x20) {
                        sb.append(String.format("\\u%04x", (int) c));
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        sb.append('"');
    }

    /**
     * Python's {@code repr(float)} of a finite double: the shortest digits that read back as
     * {@code d} (the nearer of two candidates), positional for exponents -4..15, else
     * {@code 1e-05} / {@code 1.5e+16}.
     */
    public static String floatRepr(double d) {
        if (d == 0) {
            return 1 / d < 0 ? "-0.0" : "0.0";
        }
        BigDecimal shortest = shortestDigits(Math.abs(d)).stripTrailingZeros();
        String digits = shortest.unscaledValue().toString();
        int decpt = digits.length() - shortest.scale();   // value = 0.digits x 10^decpt
        StringBuilder sb = new StringBuilder(d < 0 ? "-" : "");
        if (decpt > 16 || decpt <= -4) {
            int exp = decpt - 1;
            sb.append(digits.charAt(0));
            if (digits.length() > 1) {
                sb.append('.').append(digits, 1, digits.length());
            }
            sb.append('e').append(exp < 0 ? '-' : '+').append(String.format("%02d", Math.abs(exp)));
        } else if (decpt <= 0) {
            sb.append("0.").append("0".repeat(-decpt)).append(digits);
        } else if (decpt >= digits.length()) {
            sb.append(digits).append("0".repeat(decpt - digits.length())).append(".0");
        } else {
            sb.append(digits, 0, decpt).append('.').append(digits, decpt, digits.length());
        }
        return sb.toString();
    }

    private static BigDecimal shortestDigits(double d) {
        BigDecimal exact = new BigDecimal(d);
        for (int p = 1; p < 17; p++) {
            BigDecimal down = exact.round(new MathContext(p, RoundingMode.FLOOR));
            BigDecimal up = exact.round(new MathContext(p, RoundingMode.CEILING));
            boolean downOk = down.doubleValue() == d;
            boolean upOk = up.doubleValue() == d;
            if (downOk && upOk) {
                return exact.subtract(down).compareTo(up.subtract(exact)) <= 0 ? down : up;
            } else if (downOk || upOk) {
                return downOk ? down : up;
            }
        }
        return exact.round(new MathContext(17, RoundingMode.HALF_EVEN));
    }

    /** Python's {@code str(v)} of a loaded value, which {@code str.format} and f-strings write. */
    public static String str(JsonNode v) {
        return v.isTextual() ? v.textValue() : repr(v);
    }

    /** Python's {@code repr(v)}: strings quoted, True/False/None, lists and dicts with ", " and ": ". */
    public static String repr(JsonNode v) {
        if (v.isTextual()) {
            return reprString(v.textValue());
        } else if (v.isBoolean()) {
            return v.booleanValue() ? "True" : "False";
        } else if (v.isNull()) {
            return "None";
        } else if (v.isFloatingPointNumber()) {
            double d = v.doubleValue();
            return Double.isNaN(d) ? "nan" : Double.isInfinite(d) ? (d > 0 ? "inf" : "-inf") : floatRepr(d);
        } else if (v.isArray()) {
            List<String> items = new ArrayList<>();
            v.forEach(e -> items.add(repr(e)));
            return "[" + String.join(", ", items) + "]";
        } else if (v.isObject()) {
            List<String> items = new ArrayList<>();
            v.fields().forEachRemaining(f -> items.add(reprString(f.getKey()) + ": " + repr(f.getValue())));
            return "{" + String.join(", ", items) + "}";
        }
        return v.asText();
    }

    private static String reprString(String s) {
        char quote = s.indexOf('\'') >= 0 && s.indexOf('"') < 0 ? '"' : '\'';
        StringBuilder sb = new StringBuilder().append(quote);
        s.codePoints().forEach(cp -> {
            if (cp == '\\' || cp == quote) {
                sb.append('\\').appendCodePoint(cp);
            } else if (cp == '\t') {
                sb.append("\\t");
            } else if (cp == '\n') {
                sb.append("\\n");
            } else if (cp == '\r') {
                sb.append("\\r");
            } else if (!isPrintable(cp)) {
                sb.append(cp < 0x100 ? String.format("\\x%02x", cp)
                        : cp < 0x10000 ? String.format("\\u%04x", cp) : String.format("\\U%08x", cp));
            } else {
                sb.appendCodePoint(cp);
            }
        });
        return sb.append(quote).toString();
    }

    /** Python's str.isprintable for one code point: not a control, format, private, unassigned or separator (but space). */
    private static boolean isPrintable(int cp) {
        if (cp == ' ') {
            return true;
        }
        return switch (Character.getType(cp)) {
            case Character.CONTROL, Character.FORMAT, Character.SURROGATE, Character.PRIVATE_USE, Character.UNASSIGNED,
                 Character.LINE_SEPARATOR, Character.PARAGRAPH_SEPARATOR, Character.SPACE_SEPARATOR -> false;
            default -> true;
        };
    }

    /** Python's {@code bool(v)}: null, false, 0, "" and empty containers are false. */
    public static boolean truthy(JsonNode v) {
        if (v == null || v.isNull() || v.isMissingNode()) {
            return false;
        } else if (v.isBoolean()) {
            return v.booleanValue();
        } else if (v.isNumber()) {
            return v.isFloatingPointNumber() ? v.doubleValue() != 0 : v.bigIntegerValue().signum() != 0;
        } else if (v.isTextual()) {
            return !v.textValue().isEmpty();
        }
        return !v.isEmpty();
    }

    /** What {@code for x in v} yields: a list's items, a dict's keys, a string's characters; null where Python raises. */
    public static List<JsonNode> iterate(JsonNode v) {
        List<JsonNode> out = new ArrayList<>();
        if (v.isArray()) {
            v.forEach(out::add);
        } else if (v.isObject()) {
            v.fieldNames().forEachRemaining(k -> out.add(TextNode.valueOf(k)));
        } else if (v.isTextual()) {
            v.textValue().codePoints().forEach(cp -> out.add(TextNode.valueOf(new String(Character.toChars(cp)))));
        } else {
            return null;
        }
        return out;
    }
}
