package dev.sparksft.data;

/** Who speaks a message, with LLaMA-Factory's role names. */
public enum Role {
    USER("user"),
    ASSISTANT("assistant"),
    SYSTEM("system"),
    FUNCTION("function"),
    OBSERVATION("observation");

    public final String value;

    Role(String value) {
        this.value = value;
    }
}
