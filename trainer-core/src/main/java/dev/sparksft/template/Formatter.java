package dev.sparksft.template;

import java.util.List;

/** LLaMA-Factory's StringFormatter/EmptyFormatter: slots with {{content}} and {{idx}} filled in. */
public record Formatter(List<Slot> slots) {
    public static Formatter of(Slot... slots) {
        return new Formatter(List.of(slots));
    }

    public static Formatter of(String text) {
        return new Formatter(List.of(Slot.text(text)));
    }

    /** As LLaMA-Factory: each placeholder is replaced once per slot, content first, then idx. */
    public List<Slot> apply(String content, int idx) {
        return slots.stream().map(s -> s instanceof Slot.Text t
                ? Slot.text(replaceOnce(replaceOnce(t.text(), "{{content}}", content), "{{idx}}", Integer.toString(idx)))
                : s).toList();
    }

    /** Only {@code {{content}}} replaced, as LLaMA-Factory formats every message but the user's. */
    public List<Slot> apply(String content) {
        return slots.stream().map(s -> s instanceof Slot.Text t ? Slot.text(replaceOnce(t.text(), "{{content}}", content))
                : s).toList();
    }

    private static String replaceOnce(String s, String placeholder, String value) {
        int at = s.indexOf(placeholder);
        return at < 0 ? s : s.substring(0, at) + value + s.substring(at + placeholder.length());
    }

    public List<Slot> apply() {
        return slots;
    }
}
