package dev.sparksft.data;

import dev.sparksft.UserError;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * LLaMA-Factory's dataset converters (data/converter.py) for supervised data: alpaca rows and
 * sharegpt/openai conversations become {@link Conversation}s. Structural problems of one example
 * (role order, unknown role) raise {@link InvalidExampleException} so that the example is
 * dropped and counted; values of the wrong type are file errors naming the row.
 */
public final class Converters {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Converters() {}

    /** A row without images (a spec without an images column). */
    public static Conversation convert(DatasetSpec spec, JsonRecords.Row row, long index) {
        return convert(spec, row, index, null);
    }

    /** @param media where the images column's paths are found (only read when the spec has that column) */
    public static Conversation convert(DatasetSpec spec, JsonRecords.Row row, long index, MediaFiles media) {
        Conversation c = switch (spec.formatting()) {
            case ALPACA -> alpaca(spec, row, index);
            case SHAREGPT, OPENAI -> conversation(spec, row, index);
        };
        if (spec.images() == null) {
            return c;
        }
        List<String> names = imageNames(spec.images(), row);
        if (names.isEmpty()) {
            return c;
        }
        if (media == null) {
            throw new IllegalStateException("dataset '" + spec.name() + "' has an images column but no media files");
        }
        List<ImageFile> images = new ArrayList<>(names.size());
        for (String name : names) {
            images.add(media.image(row.source(), name));
        }
        return new Conversation(c.index(), c.source(), c.prompt(), c.response(), c.system(), c.tools(), images);
    }

    /**
     * The images column's paths, as LLaMA-Factory's {@code _find_medias} takes them: null or an empty
     * list is none, one string is one image, a list of strings is several.
     */
    static List<String> imageNames(String column, JsonRecords.Row row) {
        JsonNode v = row.value().get(column);
        if (v == null || v.isNull()) {
            return List.of();
        }
        List<JsonNode> items = new ArrayList<>();
        if (v.isArray()) {
            v.forEach(items::add);
        } else {
            items.add(v);
        }
        List<String> names = new ArrayList<>();
        for (int i = 0; i < items.size(); i++) {
            JsonNode item = items.get(i);
            if (!item.isTextual() || item.asText().isEmpty()) {
                throw new UserError(row.source() + ": column '" + column + "' (columns.images) holds "
                        + abbreviate(item.toString()) + (v.isArray() ? " at position " + i : "")
                        + "; expected image paths (a string or a list of strings; bytes and objects are not supported)");
            }
            names.add(item.asText());
        }
        return names;
    }

    /** instruction + "\n" + input is the user turn, history pairs come before it, output is the reply. */
    static Conversation alpaca(DatasetSpec spec, JsonRecords.Row row, long index) {
        JsonNode r = row.value();
        List<Message> prompt = new ArrayList<>();
        JsonNode history = spec.history() == null ? null : r.get(spec.history());
        if (history != null && history.isArray()) {
            for (JsonNode pair : history) {
                if (!pair.isArray() || pair.size() != 2) {
                    throw new UserError(row.source() + ": column '" + spec.history()
                            + "' must be a list of [prompt, response] pairs");
                }
                prompt.add(new Message(Role.USER, text(pair.get(0), spec.history(), row)));
                prompt.add(new Message(Role.ASSISTANT, text(pair.get(1), spec.history(), row)));
            }
        }
        List<String> query = new ArrayList<>();
        String instruction = spec.prompt() == null ? null : text(r.get(spec.prompt()), spec.prompt(), row);
        String input = spec.query() == null ? null : text(r.get(spec.query()), spec.query(), row);
        if (instruction != null && !instruction.isEmpty()) {
            query.add(instruction);
        }
        if (input != null && !input.isEmpty()) {
            query.add(input);
        }
        prompt.add(new Message(Role.USER, String.join("\n", query)));
        JsonNode output = spec.response() == null ? null : r.get(spec.response());
        List<Message> response = output != null && output.isTextual()
                ? List.of(new Message(Role.ASSISTANT, output.asText())) : List.of();
        String tools = spec.tools() == null ? "" : toolsText(r.get(spec.tools()));
        return new Conversation(index, row.source(), prompt, response, column(spec.system(), row), tools);
    }

    /** sharegpt ({@code from}/{@code value}) and openai ({@code role}/{@code content}) conversations. */
    static Conversation conversation(DatasetSpec spec, JsonRecords.Row row, long index) {
        JsonNode r = row.value();
        if (spec.roleTag() == null || spec.contentTag() == null || spec.messages() == null) {
            throw new UserError("dataset '" + spec.name() + "' needs columns.messages, tags.role_tag and "
                    + "tags.content_tag in dataset_info.json");
        }
        Map<String, Role> tagRoles = new java.util.HashMap<>();
        tagRoles.put(spec.userTag(), Role.USER);
        tagRoles.put(spec.assistantTag(), Role.ASSISTANT);
        tagRoles.put(spec.observationTag(), Role.OBSERVATION);
        tagRoles.put(spec.functionTag(), Role.FUNCTION);
        tagRoles.put(spec.systemTag(), Role.SYSTEM);
        JsonNode messages = r.get(spec.messages());
        if (messages == null || messages.isNull()) {
            throw new InvalidExampleException("it has no '" + spec.messages() + "' messages");
        }
        if (!messages.isArray()) {
            throw new UserError(row.source() + ": column '" + spec.messages()
                    + "' (columns.messages) must be a list of messages");
        }
        List<JsonNode> list = new ArrayList<>();
        messages.forEach(list::add);
        String system = column(spec.system(), row);
        if (spec.systemTag() != null && !list.isEmpty() && spec.systemTag().equals(tag(list.get(0), spec, row, 0))) {
            system = content(list.get(0), spec, row, 0);
            list = list.subList(1, list.size());
        }
        List<Message> aligned = new ArrayList<>();
        List<String> toolResponses = new ArrayList<>();
        for (int i = 0; i < list.size(); i++) {
            JsonNode m = list.get(i);
            String tag = tag(m, spec, row, i);
            String content = content(m, spec, row, i);
            if (spec.formatting() == DatasetSpec.Formatting.OPENAI) {
                if ((tag.equals(spec.assistantTag()) || tag.equals(spec.functionTag())) && m.has("tool_calls")
                        && m.get("tool_calls").isArray() && !m.get("tool_calls").isEmpty()) {
                    List<JsonNode> calls = new ArrayList<>();
                    m.get("tool_calls").forEach(c -> calls.add(c.get("function")));
                    content = toJson(calls);
                    tag = spec.functionTag();
                }
                if (tag.equals(spec.observationTag())) { // consecutive tool results form one observation
                    toolResponses.add(content);
                    continue;
                } else if (!toolResponses.isEmpty()) {
                    aligned.add(new Message(Role.OBSERVATION, String.join("\n</tool_response>\n<tool_response>\n", toolResponses)));
                    toolResponses.clear();
                }
            }
            Role role = tagRoles.get(tag);
            if (role == null) {
                throw new InvalidExampleException("message " + i + " has role tag '" + tag + "', which is none of "
                        + List.of(spec.userTag(), spec.assistantTag(), spec.observationTag(), spec.functionTag()));
            }
            aligned.add(new Message(role, content));
        }
        if (!toolResponses.isEmpty()) {
            aligned.add(new Message(Role.OBSERVATION, String.join("\n</tool_response>\n<tool_response>\n", toolResponses)));
        }
        for (int i = 0; i < aligned.size(); i++) {
            Role role = aligned.get(i).role();
            boolean ok = i % 2 == 0 ? role == Role.USER || role == Role.OBSERVATION
                    : role == Role.ASSISTANT || role == Role.FUNCTION;
            if (!ok) {
                throw new InvalidExampleException("message " + i + " is from " + role.value + " but should be from "
                        + (i % 2 == 0 ? "user" : "assistant"));
            }
        }
        if (aligned.size() % 2 != 0) {
            throw new InvalidExampleException("it has " + aligned.size() + " messages; a conversation must end with an "
                    + "assistant reply (an even count)");
        }
        List<Message> prompt = aligned.isEmpty() ? List.of() : aligned.subList(0, aligned.size() - 1);
        List<Message> response = aligned.isEmpty() ? List.of() : aligned.subList(aligned.size() - 1, aligned.size());
        String tools = spec.tools() == null ? "" : toolsText(r.get(spec.tools()));
        if (spec.formatting() == DatasetSpec.Formatting.OPENAI) {
            system = openaiSystem(system, tools);
        }
        return new Conversation(index, row.source(), prompt, response, system, tools);
    }

    /**
     * LLaMA-Factory's OpenAIDatasetConverter ends the system prompt for reasoning switches: without
     * tools it asks for "detailed thinking off" (unless the prompt already says on or off), with
     * tools it adds a newline before the tool text.
     */
    static String openaiSystem(String system, String tools) {
        String off = "detailed thinking off";
        if (system.isEmpty()) {
            return tools.isEmpty() ? off : system;
        } else if (!tools.isEmpty()) {
            return system + "\n";
        }
        return system.contains("detailed thinking on") || system.contains(off) ? system : system + "\n" + off;
    }

    private static String tag(JsonNode m, DatasetSpec spec, JsonRecords.Row row, int i) {
        JsonNode t = m.get(spec.roleTag());
        if (t == null || !t.isTextual()) {
            throw new UserError(row.source() + ": message " + i + " has no '" + spec.roleTag()
                    + "' key (tags.role_tag); its keys are " + fieldNames(m) + ". Set tags in dataset_info.json, "
                    + "or use formatting: openai for role/content messages");
        }
        return t.asText();
    }

    private static String content(JsonNode m, DatasetSpec spec, JsonRecords.Row row, int i) {
        JsonNode c = m.get(spec.contentTag());
        if (c == null) {
            throw new UserError(row.source() + ": message " + i + " has no '" + spec.contentTag()
                    + "' key (tags.content_tag); its keys are " + fieldNames(m));
        }
        return c.isNull() ? "" : text(c, spec.contentTag(), row);
    }

    private static String column(String column, JsonRecords.Row row) {
        return column == null ? "" : java.util.Objects.requireNonNullElse(text(row.value().get(column), column, row), "");
    }

    /**
     * The tools column as JSON text: LLaMA-Factory's demo sets hold a string; a list or object
     * (as openai rows have) is written as LLaMA-Factory's json.dumps(tools, ensure_ascii=False)
     * writes it, which a plain tools formatter (phi4_mini) puts into the prompt as it is.
     */
    private static String toolsText(JsonNode tools) {
        if (tools == null || tools.isNull()) {
            return "";
        }
        return tools.isTextual() ? tools.asText() : PyJson.dumps(tools);
    }

    /** A string value, null when absent or null; other types are an error naming the row and column. */
    private static String text(JsonNode v, String column, JsonRecords.Row row) {
        if (v == null || v.isNull()) {
            return null;
        }
        if (!v.isTextual()) {
            throw new UserError(row.source() + ": column '" + column + "' holds " + v.getNodeType()
                    .toString().toLowerCase(java.util.Locale.ROOT) + " " + abbreviate(v.toString()) + ", expected a string");
        }
        return v.asText();
    }

    private static List<String> fieldNames(JsonNode m) {
        List<String> names = new ArrayList<>();
        m.fieldNames().forEachRemaining(names::add);
        return names;
    }

    static String abbreviate(String s) {
        return s.length() <= 200 ? s : s.substring(0, 200) + "...";
    }

    private static String toJson(Object o) {
        try {
            return JSON.writeValueAsString(o);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
        }
    }
}
