package dev.sparksft.template;

/**
 * One element of a template formatter, as in LLaMA-Factory's SLOTS: literal text (which may hold
 * {@code {{content}}} and {@code {{idx}}}), the tokenizer's bos or eos token, or a named token.
 */
public sealed interface Slot {
    record Text(String text) implements Slot {}

    /** The tokenizer's bos token; skipped when the tokenizer has none. */
    record Bos() implements Slot {}

    /** The tokenizer's eos token (after the template replaced it, where it does). */
    record Eos() implements Slot {}

    /** One token by name, LLaMA-Factory's {@code {"token": ...}} slot (chatglm3, yuan). */
    record Token(String token) implements Slot {}

    static Slot text(String s) {
        return new Text(s);
    }

    static Slot token(String name) {
        return new Token(name);
    }

    Slot BOS = new Bos();
    Slot EOS = new Eos();
}
