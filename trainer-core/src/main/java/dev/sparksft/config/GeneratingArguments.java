package dev.sparksft.config;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;

/**
 * How predictions are generated: LLaMA-Factory's GeneratingArguments with its defaults (sampling
 * on, temperature 0.95, top_p 0.7, top_k 50, up to 1024 new tokens). Beam search is not
 * implemented: num_beams must be 1. max_length and length_penalty are accepted for
 * compatibility: max_new_tokens bounds generation, and length_penalty only affects beams.
 */
public record GeneratingArguments(
        @JsonProperty("do_sample") Boolean doSample,
        @JsonProperty("temperature") Double temperature,
        @JsonProperty("top_p") Double topP,
        @JsonProperty("top_k") Integer topK,
        @JsonProperty("num_beams") Integer numBeams,
        @JsonProperty("max_length") Integer maxLength,
        @JsonProperty("max_new_tokens") Integer maxNewTokens,
        @JsonProperty("repetition_penalty") Double repetitionPenalty,
        @JsonProperty("length_penalty") Double lengthPenalty,
        @JsonProperty("skip_special_tokens") Boolean skipSpecialTokens) {
    public GeneratingArguments {
        doSample = doSample == null || doSample;
        temperature = temperature == null ? 0.95 : temperature;
        topP = topP == null ? 0.7 : topP;
        topK = topK == null ? 50 : topK;
        numBeams = numBeams == null ? 1 : numBeams;
        maxLength = maxLength == null ? 1024 : maxLength;
        maxNewTokens = maxNewTokens == null ? 1024 : maxNewTokens;
        repetitionPenalty = repetitionPenalty == null ? 1.0 : repetitionPenalty;
        lengthPenalty = lengthPenalty == null ? 1.0 : lengthPenalty;
        skipSpecialTokens = skipSpecialTokens == null || skipSpecialTokens;
        List<String> p = new ArrayList<>();
        if (numBeams != 1) {
            p.add("num_beams: " + numBeams + ": beam search is not implemented yet; set num_beams: 1");
        }
        if (maxNewTokens < 1) {
            p.add("max_new_tokens must be >= 1, got " + maxNewTokens);
        }
        if (doSample && temperature <= 0) {
            p.add("temperature must be > 0 with do_sample: true (or set do_sample: false), got " + temperature);
        }
        if (doSample && (topP <= 0 || topP > 1)) {
            p.add("top_p must be in (0, 1], got " + topP);
        }
        if (topK < 0) {
            p.add("top_k must be >= 0 (0 turns it off), got " + topK);
        }
        if (repetitionPenalty <= 0) {
            p.add("repetition_penalty must be > 0 (1.0 = none), got " + repetitionPenalty);
        }
        ConfigProblems.throwIfAny(p);
    }
}
