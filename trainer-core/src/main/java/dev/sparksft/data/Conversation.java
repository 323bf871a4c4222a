package dev.sparksft.data;

import java.util.List;

/**
 * A normalised training example, LLaMA-Factory's {@code _prompt/_response/_system/_tools}:
 * a supervised example has an odd number of prompt messages (user, assistant, ..., user) and
 * exactly one response message.
 *
 * @param index  position in the source dataset (0-based), kept through every later stage
 * @param source where the example came from ("file.jsonl line 7"), for error messages
 * @param images the images column's images in order (resolved paths and header sizes), which the
 *               {@code <image>} placeholders of the messages stand for; empty for text
 */
public record Conversation(long index, String source, List<Message> prompt, List<Message> response, String system,
                           String tools, List<ImageFile> images) {
    /** The placeholder of one image in message text (LLaMA-Factory's IMAGE_PLACEHOLDER). */
    public static final String IMAGE_PLACEHOLDER = "<image>";
    public static final String VIDEO_PLACEHOLDER = "<video>";
    public static final String AUDIO_PLACEHOLDER = "<audio>";

    public Conversation {
        prompt = List.copyOf(prompt);
        response = List.copyOf(response);
        system = system == null ? "" : system;
        tools = tools == null ? "" : tools;
        images = images == null ? List.of() : List.copyOf(images);
    }

    /** A text-only conversation. */
    public Conversation(long index, String source, List<Message> prompt, List<Message> response, String system,
                        String tools) {
        this(index, source, prompt, response, system, tools, List.of());
    }

    /** Null when the example is valid for supervised training, else why it is not. */
    public String invalidReason() {
        if (prompt.size() % 2 != 1) {
            return "the prompt has " + prompt.size() + " messages; it must end with a user turn (an odd count)";
        }
        if (response.size() != 1) {
            return response.isEmpty() ? "it has no response" : "it has " + response.size() + " responses";
        }
        for (int i = 0; i < prompt.size(); i++) {
            Role want = i % 2 == 0 ? Role.USER : Role.ASSISTANT;
            Role alt = i % 2 == 0 ? Role.OBSERVATION : Role.FUNCTION;
            if (prompt.get(i).role() != want && prompt.get(i).role() != alt) {
                return "message " + i + " is from " + prompt.get(i).role().value + " but should be from " + want.value;
            }
        }
        Role last = response.get(0).role();
        if (last != Role.ASSISTANT && last != Role.FUNCTION) {
            return "the response is from " + last.value + " but should be from assistant";
        }
        return null;
    }

    /** prompt + response, in order. */
    public List<Message> messages() {
        return java.util.stream.Stream.concat(prompt.stream(), response.stream()).toList();
    }
}
