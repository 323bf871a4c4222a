package dev.sparksft.template;

import dev.sparksft.UserError;
import dev.sparksft.data.Message;
import dev.sparksft.tokenizer.Tokenizer;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A chat template with LLaMA-Factory's semantics ({@code data/template.py}): every message is
 * formatted and tokenized on its own; the first also carries the prefix and the system prompt.
 *
 * <pre>
 * Turn 0: prefix + system + query    response
 * Turn t: query                      response
 * </pre>
 *
 * @param foldSystem  Llama2Template: the system text is prepended to the first user message
 * @param reasoning   ReasoningTemplate: manages the {@code <think>} block (qwen3)
 * @param replaceEos  the tokenizer's eos becomes {@code stopWords[0]} (chatml, qwen, llama3)
 * @param efficientEos the assistant formatter has no eos: one eos ends the whole example, and
 *                    the first prompt token of every later turn is labelled with eos (glm4,
 *                    gemma2, falcon, gpt_oss)
 * @param emptyThought reasoning templates: the text of an empty thought block, LLaMA-Factory's
 *                    {@code add_thought()} (open + close; GLM-4.7 writes the close word alone)
 * @param toolCalling how the tools column enters the first system prompt and how function messages
 *                    are written
 * @param mmPlugin    the multimodal plugin that expands {@code <image>} placeholders (qwen2_vl); null
 *                    for a text template, whose placeholders stay text as LLaMA-Factory's base plugin
 *                    leaves them
 */
public record ChatTemplate(
        String name,
        Formatter user,
        Formatter assistant,
        Formatter system,
        Formatter observation,
        Formatter prefix,
        String defaultSystem,
        List<String> stopWords,
        String thoughtOpen,
        String thoughtClose,
        boolean replaceEos,
        boolean foldSystem,
        boolean reasoning,
        boolean efficientEos,
        String emptyThought,
        ToolCalling toolCalling,
        MmPlugin mmPlugin) {
    private static final Logger LOG = LoggerFactory.getLogger(ChatTemplate.class);


    /** (prompt ids, response ids) of one turn. */
    public record Turn(int[] source, int[] target) {}

    /**
     * The tokenizer this template trains with, LLaMA-Factory's {@code fix_special_tokens}: eos
     * replaced by the first stop word where the template says so ({@code <|endoftext|>} when the
     * tokenizer has none), pad defaulting to eos, and the other stop words added as additional
     * special tokens. A stop word the tokenizer lacks (llama3's {@code <|eom_id|>} over a Llama 3.0
     * tokenizer, chatml's tokens over a tokenizer without them) is added as a special token with a
     * new id, as transformers' add_special_tokens adds it; {@link Tokenizer#addedTokens} lists it, and
     * the model's embedding grows to cover it ({@code model/VocabResize}).
     */
    public Tokenizer prepare(Tokenizer tok) {
        Tokenizer.SpecialTokens s = tok.specialTokens();
        List<String> rest = stopWords;
        String eos = s.eos();
        if (replaceEos) {
            eos = stopWords.get(0);
            rest = stopWords.subList(1, stopWords.size());
        } else if (eos == null) {
            eos = "<|endoftext|>";
        }
        if (!eos.equals(s.eos())) {
            tok = tok.withAddedTokens(List.of(eos), true);   // add_special_tokens({"eos_token": eos})
            LOG.info("template '{}': eos token {} {}", name, s.eos() == null ? "added:" : "replaced by", eos);
        }
        String pad = s.pad() != null ? s.pad() : eos;
        tok = tok.withSpecialTokens(new Tokenizer.SpecialTokens(s.bos(), eos, pad));
        if (!rest.isEmpty()) {
            tok = tok.withAdditionalSpecialTokens(rest);
        }
        for (String token : namedTokens()) {
            if (tok.tokenId(token).isEmpty()) {
                throw new UserError("template '" + name + "' needs the token '" + token + "', which the tokenizer "
                        + "does not have: use the template that matches the model");
            }
        }
        return tok;
    }

    /** The same template with another default system prompt (the {@code default_system} key). */
    public ChatTemplate withDefaultSystem(String system) {
        return new ChatTemplate(name, user, assistant, this.system, observation, prefix, system, stopWords, thoughtOpen,
                thoughtClose, replaceEos, foldSystem, reasoning, efficientEos, emptyThought, toolCalling, mmPlugin);
    }

    /** The same template with other tool calling (the {@code tool_format} key: {@link ToolCalling#withFormat}). */
    public ChatTemplate withToolCalling(ToolCalling calling) {
        return new ChatTemplate(name, user, assistant, system, observation, prefix, defaultSystem, stopWords, thoughtOpen,
                thoughtClose, replaceEos, foldSystem, reasoning, efficientEos, emptyThought, calling, mmPlugin);
    }

    /** The tokens the formatters name one by one ({@link Slot.Token}). */
    private List<String> namedTokens() {
        List<String> out = new ArrayList<>();
        for (Formatter f : List.of(user, assistant, system, observation, prefix)) {
            f.slots().stream().filter(s -> s instanceof Slot.Token).map(s -> ((Slot.Token) s).token()).forEach(out::add);
        }
        return out;
    }

    /** Token ids that end generation: eos and every stop word. */
    public List<Integer> stopTokenIds(Tokenizer tok) {
        List<Integer> ids = new ArrayList<>();
        ids.add(tok.eosId());
        for (String w : stopWords) {
            tok.tokenId(w).filter(id -> !ids.contains(id)).ifPresent(ids::add);
        }
        return ids;
    }

    /**
     * Encodes the messages (user or observation, assistant or function, ...) into one (prompt,
     * response) pair per turn.
     *
     * @param tools                 the tools column's JSON ("" for none), described after the system prompt
     * @param enableThinking        reasoning templates: train on the think block (true), or put an
     *                              empty one into the prompt (false and null) and strip all thoughts
     *                              (false only: LLaMA-Factory's {@code enable_thinking is False})
     * @param discardingHistoryCot  reasoning templates: drop the thoughts of all but the last turn
     */
    public List<Turn> encodeMultiturn(Tokenizer tok, List<Message> messages, String systemPrompt, String tools,
                                      Boolean enableThinking, boolean discardingHistoryCot) {
        List<Message> msgs = new ArrayList<>(messages);
        boolean trainsThought = Boolean.TRUE.equals(enableThinking);
        if (reasoning && Boolean.FALSE.equals(enableThinking)) {
            for (int i = 1; i < msgs.size(); i += 2) {
                msgs.set(i, msgs.get(i).withContent(removeThought(msgs.get(i).content())));
            }
        }
        if (reasoning && discardingHistoryCot) {
            for (int i = 1; i < msgs.size() - 2; i += 2) {
                msgs.set(i, msgs.get(i).withContent(removeThought(msgs.get(i).content())));
            }
        }
        List<int[]> encoded = encode(tok, msgs, systemPrompt, tools);
        if (reasoning) {
            int[] emptyThought = tok.encode(this.emptyThought);
            int first = discardingHistoryCot ? msgs.size() - 2 : 0;
            for (int i = first; i < msgs.size(); i += 2) {
                String reply = msgs.get(i + 1).content();
                if (!reply.contains(thoughtOpen.strip()) && !reply.contains(thoughtClose.strip())) {
                    if (trainsThought) { // the empty thought is part of the trained response
                        encoded.set(i + 1, concat(emptyThought, encoded.get(i + 1)));
                    } else {              // the empty thought closes the prompt
                        encoded.set(i, concat(encoded.get(i), emptyThought));
                    }
                }
            }
        }
        List<Turn> turns = new ArrayList<>();
        for (int i = 0; i + 1 < encoded.size(); i += 2) {
            turns.add(new Turn(encoded.get(i), encoded.get(i + 1)));
        }
        return turns;
    }

    /**
     * LLaMA-Factory's {@code encode_oneturn}, the prompt of a generation: every message but the last
     * is the prompt, the last one the response. Reasoning templates drop the thoughts of earlier
     * replies (unless {@code preserveThinking}) and handle the empty think block as in training.
     */
    public Turn encodeOneturn(Tokenizer tok, List<Message> messages, String systemPrompt, String tools,
                              Boolean enableThinking, boolean preserveThinking) {
        List<Message> msgs = new ArrayList<>(messages);
        if (reasoning) {
            if (!preserveThinking) {
                for (int i = 1; i < msgs.size() - 2; i += 2) {
                    msgs.set(i, msgs.get(i).withContent(removeThought(msgs.get(i).content())));
                }
            }
            if (Boolean.FALSE.equals(enableThinking)) {
                int last = msgs.size() - 1;
                msgs.set(last, msgs.get(last).withContent(removeThought(msgs.get(last).content())));
            }
        }
        List<int[]> encoded = encode(tok, msgs, systemPrompt, tools);
        int[] prompt = concat(encoded.subList(0, encoded.size() - 1).toArray(new int[0][]));
        int[] response = encoded.get(encoded.size() - 1);
        String reply = msgs.get(msgs.size() - 1).content();
        if (reasoning && !reply.contains(thoughtOpen.strip()) && !reply.contains(thoughtClose.strip())) {
            int[] emptyThought = tok.encode(this.emptyThought);
            if (Boolean.TRUE.equals(enableThinking)) {
                response = concat(emptyThought, response);
            } else {
                prompt = concat(prompt, emptyThought);
            }
        }
        return new Turn(prompt, response);
    }

    /** One token list per message; the first turn's system prompt is followed by the tools' description. */
    private List<int[]> encode(Tokenizer tok, List<Message> messages, String systemPrompt, String tools) {
        String sys = systemPrompt == null || systemPrompt.isEmpty() ? defaultSystem : systemPrompt;
        List<int[]> out = new ArrayList<>();
        for (int i = 0; i < messages.size(); i++) {
            Message m = messages.get(i);
            List<Slot> elements = new ArrayList<>();
            String foldedSystem = "";
            if (i == 0) {
                elements.addAll(prefix.apply());
                if (!sys.isEmpty() || !tools.isEmpty()) {
                    String toolText = tools.isEmpty() ? "" : toolCalling.describeTools(tools);
                    if (foldSystem) {
                        foldedSystem = ((Slot.Text) system.apply(sys + toolText).get(0)).text();
                    } else {
                        elements.addAll(system.apply(sys + toolText));
                    }
                }
            }
            elements.addAll(switch (m.role()) {
                // Llama2Template formats the user without {{idx}}
                case USER -> foldSystem ? user.apply(foldedSystem + m.content()) : user.apply(m.content(), i / 2);
                case ASSISTANT -> assistant.apply(m.content());
                case OBSERVATION -> observation.apply(m.content());
                // LLaMA-Factory's Llama2Template (foldSystem) passes no thought or tool-call words
                case FUNCTION -> toolCalling.functionSlots(m.content(), !foldSystem, thoughtOpen, thoughtClose);
                case SYSTEM -> throw new UserError("template '" + name + "': "
                        + m.role().value + " messages inside a conversation are not supported yet");
            });
            out.add(toIds(tok, elements));
        }
        return out;
    }

    private static int[] toIds(Tokenizer tok, List<Slot> elements) {
        List<int[]> parts = new ArrayList<>();
        for (Slot s : elements) {
            if (s instanceof Slot.Text t) {
                parts.add(tok.encode(t.text()));
            } else if (s instanceof Slot.Bos && tok.bosId() != null) {
                parts.add(new int[] {tok.bosId()});
            } else if (s instanceof Slot.Eos && tok.eosId() != null) {
                parts.add(new int[] {tok.eosId()});
            } else if (s instanceof Slot.Token t) { // present: prepare() checked
                parts.add(new int[] {tok.tokenId(t.token()).orElseThrow()});
            }
        }
        return concat(parts.toArray(new int[0][]));
    }

    String removeThought(String content) {
        Pattern p = Pattern.compile(Pattern.quote(thoughtOpen) + "(.*?)" + Pattern.quote(thoughtClose), Pattern.DOTALL);
        Matcher m = p.matcher(content);
        String stripped = m.replaceAll("");
        int start = 0;
        while (start < stripped.length() && stripped.charAt(start) == '\n') {
            start++;
        }
        return stripped.substring(start);
    }

    static int[] concat(int[]... arrays) {
        int n = 0;
        for (int[] a : arrays) {
            n += a.length;
        }
        int[] out = new int[n];
        int at = 0;
        for (int[] a : arrays) {
            System.arraycopy(a, 0, out, at, a.length);
            at += a.length;
        }
        return out;
    }
}
