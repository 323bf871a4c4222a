package dev.sparksft.data;

/**
 * One dataset as LLaMA-Factory's {@code dataset_info.json} describes it (DatasetAttr): where the
 * file is, its formatting, which columns hold what, and the role tags of sharegpt/openai data.
 * Column and tag fields are null where the data has no such column ({@code images}: image paths,
 * none unless columns.images names it). Serializable: Spark ships
 * it to the executors that convert rows.
 */
public record DatasetSpec(
        String name,
        String path,
        Formatting formatting,
        Integer numSamples,
        // alpaca columns
        String prompt, String query, String response, String history,
        // sharegpt / openai columns
        String messages,
        // common columns
        String system, String tools, String images,
        // sharegpt / openai tags
        String roleTag, String contentTag, String userTag, String assistantTag, String observationTag,
        String functionTag, String systemTag) implements java.io.Serializable {

    public enum Formatting {
        ALPACA, SHAREGPT, OPENAI;

        public String key() {
            return name().toLowerCase(java.util.Locale.ROOT);
        }
    }

    /** LLaMA-Factory's defaults for a formatting, before dataset_info.json's columns and tags. */
    public static DatasetSpec defaults(String name, String path, Formatting formatting) {
        if (formatting == Formatting.OPENAI) {
            // OpenAI-style messages: role/content with the role names of the chat API.
            return new DatasetSpec(name, path, formatting, null, null, null, null, null, "messages", null, null, null,
                    "role", "content", "user", "assistant", "tool", "function_call", "system");
        }
        return new DatasetSpec(name, path, formatting, null, "instruction", "input", "output", null,
                "conversations", null, null, null, "from", "value", "human", "gpt", "observation", "function_call", "system");
    }
}
