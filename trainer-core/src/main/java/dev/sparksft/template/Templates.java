package dev.sparksft.template;

import dev.sparksft.UserError;
import dev.sparksft.config.Suggest;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The built-in templates: LLaMA-Factory's text templates with exactly its strings
 * ({@code register_template} in data/template.py; the test reads fixtures made by running it).
 * Defaults as there: user and system are "{{content}}", assistant is "{{content}}" + eos
 * ("{{content}}" alone with efficient_eos), observation falls back to the user formatter, no
 * prefix, thought words {@code <think>\n} and {@code \n</think>\n\n}, tool format "default";
 * function messages and tools as {@link ToolCalling#forTemplate} says.
 */
public final class Templates {
    private static final String THINK_OPEN = "<think>\n";
    private static final String THINK_CLOSE = "\n</think>\n\n";
    private static final Map<String, ChatTemplate> BUILT_IN = new LinkedHashMap<>();

    /**
     * LLaMA-Factory's templates for image, video or audio models and the multimodal plugin each
     * registers, except qwen2_vl, which is built in with its plugin ({@link MmPlugin#QWEN2_VL});
     * refused by name. The templates whose registration names LLaMA-Factory's Qwen2VLPlugin are
     * qwen2_vl, keye_vl, mimo_vl and dots_ocr (with its own tokens); glm4v, qwen2_omni and qwen3_vl
     * are subclasses of it. gemma3, llama4, mistral_small and the qwen3_5 family have plugins too
     * but are built in as text templates: their text-only encoding is the plain template's, and
     * they refuse images.
     */
    private static final Map<String, String> MULTIMODAL = Map.ofEntries(Map.entry("dots_ocr", "qwen2_vl"),
            Map.entry("ernie_vl", "ernie_vl"), Map.entry("gemma3n", "gemma3n"), Map.entry("gemma4", "gemma4"),
            Map.entry("gemma4n", "gemma4"), Map.entry("glm4_5v", "glm4v"), Map.entry("glm4v", "glm4v"),
            Map.entry("glm_ocr", "glm4v"), Map.entry("granite3_vision", "llava_next"), Map.entry("intern_s1", "intern_vl"),
            Map.entry("intern_vl", "intern_vl"), Map.entry("keye_vl", "qwen2_vl"), Map.entry("kimi_vl", "kimi_vl"),
            Map.entry("lfm2_vl", "lfm2_vl"), Map.entry("llava", "llava"), Map.entry("llava_next", "llava_next"),
            Map.entry("llava_next_llama3", "llava_next"), Map.entry("llava_next_mistral", "llava_next"),
            Map.entry("llava_next_qwen", "llava_next"), Map.entry("llava_next_video", "llava_next_video"),
            Map.entry("llava_next_video_mistral", "llava_next_video"), Map.entry("llava_next_video_yi", "llava_next_video"),
            Map.entry("llava_next_yi", "llava_next"), Map.entry("mimo_vl", "qwen2_vl"), Map.entry("minicpm_o", "minicpm_v"),
            Map.entry("minicpm_v", "minicpm_v"), Map.entry("minicpm_v_4_6", "minicpm_v_4_6"),
            Map.entry("ministral3", "pixtral"), Map.entry("mllama", "mllama"), Map.entry("moss_vl", "moss_vl"),
            Map.entry("paligemma", "paligemma"), Map.entry("paligemma_chat", "paligemma"), Map.entry("pixtral", "pixtral"),
            Map.entry("qwen2_audio", "qwen2_audio"), Map.entry("qwen2_omni", "qwen2_omni"),
            Map.entry("qwen3_omni", "qwen2_omni"), Map.entry("qwen3_omni_nothink", "qwen2_omni"),
            Map.entry("qwen3_vl", "qwen3_vl"), Map.entry("qwen3_vl_nothink", "qwen3_vl"),
            Map.entry("video_llava", "video_llava"), Map.entry("yi_vl", "llava"), Map.entry("youtu_vl", "youtu_vl"));

    // The strings several families share, as LLaMA-Factory's "copied from ... template" entries do.
    private static final String CHATML_USER = "<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n";
    private static final String CHATML_ASSISTANT = "{{content}}<|im_end|>\n";
    private static final String CHATML_SYSTEM = "<|im_start|>system\n{{content}}<|im_end|>\n";
    private static final String CHATML_TOOL = "<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n";
    private static final String QWEN_OBSERVATION =
            "<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n";
    private static final String VICUNA_SYSTEM = "A chat between a curious user and an artificial intelligence "
            + "assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";

    static {
        template("alpaca").user("### Instruction:\n{{content}}\n\n### Response:\n")
                .assistant("{{content}}", Slot.EOS, "\n\n")
                .defaultSystem("Below is an instruction that describes a task. Write a response that appropriately "
                        + "completes the request.\n\n").add();
        template("bailing").user("<role>HUMAN</role>{{content}}<role>ASSISTANT</role>")
                .system("<role>SYSTEM</role>{{content}}")
                .observation("<role>OBSERVATION</role>{{content}}<role>ASSISTANT</role>")
                .stopWords("<|endoftext|>").efficientEos().add();
        template("bailing_v2").user("<role>HUMAN</role>{{content}}<|role_end|><role>ASSISTANT</role>")
                .system("<role>SYSTEM</role>{{content}}<|role_end|>").assistant("{{content}}<|role_end|>")
                .observation("<role>OBSERVATION</role>\n<tool_response>\n{{content}}\n</tool_response><|role_end|>"
                        + "<role>ASSISTANT</role>")
                .stopWords("<|endoftext|>").efficientEos().add();
        template("breeze").user("[INST] {{content}} [/INST] ").prefix(Slot.BOS).efficientEos().add();
        template("chatglm3").user(Slot.token("<|user|>"), "\n", "{{content}}", Slot.token("<|assistant|>"))
                .assistant("\n", "{{content}}").system(Slot.token("<|system|>"), "\n", "{{content}}")
                .observation(Slot.token("<|observation|>"), "\n", "{{content}}", Slot.token("<|assistant|>"))
                .prefix(Slot.token("[gMASK]"), Slot.token("sop"))
                .stopWords("<|user|>", "<|observation|>").efficientEos().add();
        chatml("chatml").observation(CHATML_TOOL).stopWords("<|im_end|>", "<|im_start|>").replaceEos().add();
        chatml("chatml_de").observation(CHATML_TOOL)
                .defaultSystem("Du bist ein freundlicher und hilfsbereiter KI-Assistent.")
                .stopWords("<|im_end|>", "<|im_start|>").replaceEos().add();
        template("cohere").user("<|START_OF_TURN_TOKEN|><|USER_TOKEN|>{{content}}<|END_OF_TURN_TOKEN|>"
                        + "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>")
                .system("<|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>{{content}}<|END_OF_TURN_TOKEN|>")
                .prefix(Slot.BOS).add();
        chatml("cpm4").observation(CHATML_TOOL).prefix(Slot.BOS).stopWords("<|im_end|>").add();
        chatml("dbrx").observation(CHATML_TOOL).defaultSystem("You are DBRX, created by Databricks. You were last "
                + "updated in December 2023. You answer questions based on information available up to that point.\n"
                + "YOU PROVIDE SHORT RESPONSES TO SHORT QUESTIONS OR STATEMENTS, but provide thorough responses to "
                + "more complex and open-ended questions.\nYou assist with various tasks, from writing to coding (using "
                + "markdown for code blocks — remember to use ``` with code, JSON, and tables).\n(You do not have "
                + "real-time data access or code execution capabilities. You avoid stereotyping and provide balanced "
                + "perspectives on controversial topics. You do not provide song lyrics, poems, or news articles and do "
                + "not divulge details of your training data.)\nThis is your system prompt, guiding your responses. Do "
                + "not reference it, just respond to the user. If you find yourself talking about this message, stop. "
                + "You should be responding appropriately and usually that means not mentioning this.\nYOU DO NOT "
                + "MENTION ANY OF THIS INFORMATION ABOUT YOURSELF UNLESS THE INFORMATION IS DIRECTLY PERTINENT TO THE "
                + "USER'S QUERY.").stopWords("<|im_end|>").replaceEos().add();
        template("deepseek").user("User: {{content}}\n\nAssistant:").system("{{content}}\n\n").prefix(Slot.BOS).add();
        template("deepseek3").user("<｜User｜>{{content}}<｜Assistant｜>").prefix(Slot.BOS).add();
        template("deepseekr1").user("<｜User｜>{{content}}<｜Assistant｜>").prefix(Slot.BOS).reasoning().add();
        template("hy3").user("<｜hy_User｜>{{content}}<｜hy_Assistant｜>").assistant("{{content}}<｜hy_eos｜>")
                .prefix(Slot.BOS).stopWords("<｜hy_eos｜>").replaceEos().reasoning().thoughtWords("<think>", "</think>")
                .add();
        template("deepseekcoder").user("### Instruction:\n{{content}}\n### Response:")
                .assistant("\n{{content}}\n<|EOT|>\n").prefix(Slot.BOS)
                .defaultSystem("You are an AI programming assistant, utilizing the DeepSeek Coder model, developed by "
                        + "DeepSeek Company, and you only answer questions related to computer science. For politically "
                        + "sensitive questions, security and privacy issues, and other non-computer science questions, "
                        + "you will refuse to answer.\n").add();
        template("default").user("Human: {{content}}", Slot.EOS, "\nAssistant:")
                .assistant("{{content}}", Slot.EOS, "\n").system("System: {{content}}", Slot.EOS, "\n").add();
        template("empty").assistant("{{content}}").add();
        template("ernie").user("<|im_start|>user\n{{content}}<|im_end|>\n\n<|im_start|>assistant\n")
                .assistant("{{content}}<|im_end|>\n\n").system("<|im_start|>system\n{{content}}<|im_end|>\n\n")
                .observation("<|im_start|>tool\n{{content}}<|im_end|>\n\n<|im_start|>assistant\n")
                .defaultSystem("<global_setting>\nthink_mode=True\n</global_setting>").stopWords("<|im_end|>").add();
        template("ernie_nothink").user("User: {{content}}\nAssistant: ").assistant("{{content}}<|end_of_sentence|>")
                .system("{{content}}\n").prefix("<|begin_of_sentence|>").stopWords("<|end_of_sentence|>").add();
        template("exaone").user("[|user|]{{content}}\n[|assistant|]").assistant("{{content}}", Slot.EOS, "\n")
                .system("[|system|]{{content}}[|endofturn|]\n").add();
        template("falcon").user("User: {{content}}\nFalcon:").assistant("{{content}}\n").efficientEos().add();
        chatml("falcon_h1").observation(CHATML_TOOL).prefix(Slot.BOS).stopWords("<|im_end|>", "<|end_of_text|>").add();
        template("fewshot").assistant("{{content}}\n\n").efficientEos().add();
        // gemma, gemma2, gemma3: Llama2Template, the system text opens the first user message
        gemma("gemma").stopWords("<end_of_turn>").replaceEos().add();
        gemma("gemma2").stopWords("<eos>", "<end_of_turn>").efficientEos().add();
        gemma("gemma3").stopWords("<end_of_turn>").replaceEos().add();
        glm("glm4").add();
        glm("glm4_moe").reasoning().add();
        // GLM-4.7's empty thought is the close word alone (Glm47ReasoningTemplate.add_thought)
        glm("glm4_7").reasoning().thoughtWords("<think>", "</think>").emptyThought("</think>")
                .add();
        glm("glmz1").reasoning().add();
        template("gpt_oss").user("<|start|>user<|message|>{{content}}<|end|><|start|>assistant")
                .assistant("{{content}}")
                .system("<|start|>system<|message|>{{content}}<|end|>")
                .defaultSystem("You are ChatGPT, a large language model trained by OpenAI.")
                .thoughtWords("<|channel|>analysis<|message|>", "<|end|><|start|>assistant<|channel|>final<|message|>")
                .efficientEos().reasoning().add();
        template("granite3").user("<|start_of_role|>user<|end_of_role|>{{content}}<|end_of_text|>\n"
                        + "<|start_of_role|>assistant<|end_of_role|>")
                .assistant("{{content}}<|end_of_text|>\n")
                .system("<|start_of_role|>system<|end_of_role|>{{content}}<|end_of_text|>\n").add();
        template("granite4").user("<|start_of_role|>user<|end_of_role|>{{content}}<|end_of_text|>\n"
                        + "<|start_of_role|>assistant<|end_of_role|>")
                .assistant("{{content}}<|end_of_text|>\n")
                .system("<|start_of_role|>system<|end_of_role|>{{content}}<|end_of_text|>\n")
                .observation("<|start_of_role|>tool<|end_of_role|>{{content}}<|end_of_text|>\n"
                        + "<|start_of_role|>assistant\n")
                .stopWords("<|end_of_text|>")
                .defaultSystem("You are Granite, developed by IBM. You are a helpful AI assistant.").add();
        template("index").user("reserved_0{{content}}reserved_1").system("<unk>{{content}}").efficientEos().add();
        template("hunyuan").user("{{content}}<|extra_0|>").assistant("{{content}}<|eos|>")
                .system("{{content}}<|extra_4|>").prefix("<|startoftext|>").stopWords("<|eos|>").add();
        template("hunyuan_small").user("<｜hy_User｜>{{content}}<｜hy_place▁holder▁no▁8｜>")
                .assistant("{{content}}<｜hy_place▁holder▁no▁2｜>").system("{{content}}<｜hy_place▁holder▁no▁3｜>")
                .prefix("<｜hy_begin▁of▁sentence｜>").stopWords("<｜hy_place▁holder▁no▁2｜>").add();
        template("hy_dense_1_8b").user("<｜hy_User｜>{{content}}").assistant("<｜hy_Assistant｜>{{content}}")
                .system("{{content}}<｜hy_place▁holder▁no▁3｜>").prefix(Slot.BOS).stopWords("<｜hy_place▁holder▁no▁2｜>")
                .efficientEos().add();
        template("hy_dense_7b").user("{{content}}<|extra_0|>").assistant("{{content}}").system("{{content}}<|extra_4|>")
                .prefix(Slot.BOS).stopWords("<|eos|>").efficientEos().add();
        chatml("intern2").prefix(Slot.BOS).stopWords("<|im_end|>").defaultSystem("You are an AI assistant whose name "
                + "is InternLM (书生·浦语).\n- InternLM (书生·浦语) is a conversational language model that is developed "
                + "by Shanghai AI Laboratory (上海人工智能实验室). It is designed to be helpful, honest, and harmless.\n"
                + "- InternLM (书生·浦语) can understand and communicate fluently in the language chosen by the user such "
                + "as English and 中文.").add();
        chatml("lfm2").observation("<|im_start|>tool\n<|tool_response_start|>{{content}}<|tool_response_end|>"
                        + "<|im_end|>\n<|im_start|>assistant\n")
                .defaultSystem("You are a helpful AI assistant.").stopWords("<|im_end|>")
                .replaceEos().add();
        // llama2, llama2_zh: Llama2Template, each user message begins with bos
        template("llama2").user(Slot.BOS, "[INST] {{content}} [/INST]").system("<<SYS>>\n{{content}}\n<</SYS>>\n\n")
                .foldSystem().add();
        template("llama2_zh").user(Slot.BOS, "[INST] {{content}} [/INST]").system("<<SYS>>\n{{content}}\n<</SYS>>\n\n")
                .defaultSystem("You are a helpful assistant. 你是一个乐于助人的助手。").foldSystem().add();
        template("llama3").user("<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n")
                .assistant("{{content}}<|eot_id|>")
                .system("<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>")
                .observation("<|start_header_id|>ipython<|end_header_id|>\n\n{{content}}<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n")
                .prefix(Slot.BOS).stopWords("<|eot_id|>", "<|eom_id|>").replaceEos().add();
        template("llama4").user("<|header_start|>user<|header_end|>\n\n{{content}}<|eot|>"
                        + "<|header_start|>assistant<|header_end|>\n\n")
                .assistant("{{content}}<|eot|>").system("<|header_start|>system<|header_end|>\n\n{{content}}<|eot|>")
                .observation("<|header_start|>ipython<|header_end|>\n\n{{content}}<|eot|>"
                        + "<|header_start|>assistant<|header_end|>\n\n")
                .prefix(Slot.BOS).stopWords("<|eot|>", "<|eom|>").replaceEos().add();
        template("moonlight")
                .user("<|im_user|>user<|im_middle|>{{content}}<|im_end|><|im_assistant|>assistant<|im_middle|>")
                .assistant("{{content}}<|im_end|>").system("<|im_system|>system<|im_middle|>{{content}}<|im_end|>")
                .defaultSystem("You are a helpful assistant provided by Moonshot-AI.").stopWords("<|im_end|>")
                .replaceEos().add();
        qwen("mimo").defaultSystem("You are a helpful assistant.").reasoning().add();
        qwen("mimo_v2").defaultSystem("You are MiMo, a helpful AI assistant engineered by Xiaomi.").reasoning()
                .thoughtWords("<think>", "</think>").add();
        template("minimax1").user("<beginning_of_sentence>user name=user\n{{content}}<end_of_sentence>\n"
                        + "<beginning_of_sentence>ai name=assistant\n")
                .assistant("{{content}}<end_of_sentence>\n")
                .system("<beginning_of_sentence>system ai_setting=assistant\n{{content}}<end_of_sentence>\n")
                .observation("<beginning_of_sentence>tool name=tools\n{{content}}<end_of_sentence>\n"
                        + "<beginning_of_sentence>ai name=assistant\n")
                .defaultSystem("You are a helpful assistant.").stopWords("<end_of_sentence>")
                .add();
        template("minimax2").user("]~b]user\n{{content}}[e~[\n]~b]ai\n").assistant("{{content}}[e~[\n")
                .system("]~!b[]~b]system\n{{content}}[e~[\n")
                .observation("]~b]tool\n<response>{{content}}</response>[e~[\n]~b]ai\n")
                .defaultSystem("You are a helpful assistant. Your name is MiniMax-M2.1 and is built by MiniMax.")
                .stopWords("[e~[").reasoning().add();
        // the Mistral tokenizers: v3 tekken (ministral), v3 (mistral), v7 tekken (mistral_small)
        template("ministral").user("[INST]{{content}}[/INST]").system("{{content}}\n\n")
                .observation("[TOOL_RESULTS]{\"content\": {{content}}}[/TOOL_RESULTS]")
                .prefix(Slot.BOS).foldSystem().add();
        template("mistral").user("[INST] {{content}}[/INST]").assistant(" {{content}}", Slot.EOS)
                .system("{{content}}\n\n")
                .observation("[TOOL_RESULTS] {\"content\": {{content}}}[/TOOL_RESULTS]")
                .prefix(Slot.BOS).foldSystem().add();
        template("mistral_small").user("[INST]{{content}}[/INST]").system("[SYSTEM_PROMPT]{{content}}[/SYSTEM_PROMPT]")
                .observation("[TOOL_RESULTS]{\"content\": {{content}}}[/TOOL_RESULTS]")
                .prefix(Slot.BOS).add();
        template("olmo").user("<|user|>\n{{content}}<|assistant|>\n").prefix(Slot.EOS).add();
        template("openchat").user("GPT4 Correct User: {{content}}", Slot.EOS, "GPT4 Correct Assistant:")
                .prefix(Slot.BOS).add();
        template("openchat-3.6").user("<|start_header_id|>GPT4 Correct User<|end_header_id|>\n\n{{content}}<|eot_id|>"
                        + "<|start_header_id|>GPT4 Correct Assistant<|end_header_id|>\n\n")
                .prefix(Slot.BOS).stopWords("<|eot_id|>").add();
        chatml("opencoder").observation(CHATML_TOOL).defaultSystem("You are OpenCoder, created by OpenCoder Team.")
                .stopWords("<|im_end|>").add();
        template("phi").user("<|user|>\n{{content}}<|end|>\n<|assistant|>\n").assistant("{{content}}<|end|>\n")
                .system("<|system|>\n{{content}}<|end|>\n").stopWords("<|end|>").replaceEos().add();
        // LLaMA-Factory's prefix here is the set {"<|endoftext|>"}, which names neither bos nor eos
        // and so adds no token: no prefix
        template("phi_small").user("<|user|>\n{{content}}<|end|>\n<|assistant|>\n").assistant("{{content}}<|end|>\n")
                .system("<|system|>\n{{content}}<|end|>\n").stopWords("<|end|>").replaceEos().add();
        template("phi4").user("<|im_start|>user<|im_sep|>{{content}}<|im_end|><|im_start|>assistant<|im_sep|>")
                .assistant("{{content}}<|im_end|>").system("<|im_start|>system<|im_sep|>{{content}}<|im_end|>")
                .stopWords("<|im_end|>").replaceEos().add();
        // phi4_mini's tools formatter is a plain string (ToolCalling's table)
        template("phi4_mini").user("<|user|>{{content}}<|end|><|assistant|>").assistant("{{content}}<|end|>")
                .system("<|system|>{{content}}<|end|>").stopWords("<|end|>").replaceEos().add();
        qwen("qwen").defaultSystem("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.").add();
        // Qwen2-VL and Qwen2.5-VL: qwen's slots and tool format, its own default system, images through Qwen2VLPlugin
        qwen("qwen2_vl").defaultSystem("You are a helpful assistant.").mmPlugin(MmPlugin.QWEN2_VL).add();
        qwen("qwen3").reasoning().add();
        qwen("qwen3_nothink").add();
        qwen("qwen3_5").reasoning().add();
        qwen("qwen3_5_nothink").add();
        qwen("qwen3_6").reasoning().add();
        template("sailor").user("<|im_start|>question\n{{content}}<|im_end|>\n<|im_start|>answer\n")
                .assistant(CHATML_ASSISTANT).system(CHATML_SYSTEM).stopWords("<|im_end|>")
                .defaultSystem("You are an AI assistant named Sailor created by Sea AI Lab. Your answer should be "
                        + "friendly, unbiased, faithful, informative and detailed.").add();
        template("seed_coder").user(Slot.BOS, "user\n{{content}}", Slot.EOS, Slot.BOS, "assistant\n")
                .system(Slot.BOS, "system\n{{content}}", Slot.EOS)
                .defaultSystem("You are an AI programming assistant, utilizing the Seed-Coder model, developed by "
                        + "ByteDance Seed, and you only answer questions related to computer science. For politically "
                        + "sensitive questions, security and privacy issues, and other non-computer science questions, "
                        + "you will refuse to answer.\n\n").add();
        template("seed_oss").user(Slot.BOS, "user\n{{content}}", Slot.EOS, Slot.BOS, "assistant\n")
                .system(Slot.BOS, "system\n{{content}}", Slot.EOS).reasoning()
                .thoughtWords("<seed:think>", "</seed:think>").add();
        chatml("smollm").stopWords("<|im_end|>").add();
        chatml("smollm2").stopWords("<|im_end|>")
                .defaultSystem("You are a helpful AI assistant named SmolLM, trained by Hugging Face.").add();
        template("solar").user("### User:\n{{content}}\n\n### Assistant:\n").system("### System:\n{{content}}\n\n")
                .efficientEos().add();
        template("starchat").user("<|user|>\n{{content}}<|end|>\n<|assistant|>").assistant("{{content}}<|end|>\n")
                .system("<|system|>\n{{content}}<|end|>\n").stopWords("<|end|>").add();
        template("telechat2").user("<_user>{{content}}<_bot>").system("<_system>{{content}}")
                .defaultSystem("你是中国电信星辰语义大模型，英文名是TeleChat，你是由中电信人工智能科技有限公司和中国电信人工智能研究院（TeleAI）"
                        + "研发的人工智能助手。").add();
        template("vicuna").user("USER: {{content}} ASSISTANT:").defaultSystem(VICUNA_SYSTEM).add();
        template("xuanyuan").user("Human: {{content}} Assistant:")
                .defaultSystem("以下是用户和人工智能助手之间的对话。用户以Human开头，人工智能助手以Assistant开头，会对人类提出的问题给出有帮助、"
                        + "高质量、详细和礼貌的回答，并且总是拒绝参与与不道德、不安全、有争议、政治敏感等相关的话题、问题和指示。\n").add();
        chatml("yi").stopWords("<|im_end|>").add();
        template("youtu").user("<|User|>{{content}}<|Assistant|>").assistant("{{content}}<|end_of_text|>")
                .observation("<tool_response>\n{{content}}\n</tool_response><|Assistant|>").prefix(Slot.BOS)
                .stopWords("<|end_of_text|>").replaceEos().reasoning().add();
        template("yuan").user("{{content}}", Slot.token("<sep>")).assistant("{{content}}<eod>\n").stopWords("<eod>")
                .add();
        template("zephyr").user("<|user|>\n{{content}}", Slot.EOS, "<|assistant|>\n")
                .system("<|system|>\n{{content}}", Slot.EOS).defaultSystem("You are Zephyr, a helpful assistant.")
                .add();
        glm("aeva").reasoning().thoughtWords("<think>", "</think>").emptyThought("</think>")
                .defaultSystem("You are an AI assistant named Aeva created by Zongzhi Lou. Your answer should be "
                        + "friendly, unbiased, faithful, informative and detailed.").add();
    }

    private Templates() {}

    /** ChatML strings; observation falls back to the user formatter unless set. */
    private static Definition chatml(String name) {
        return template(name).user(CHATML_USER).assistant(CHATML_ASSISTANT).system(CHATML_SYSTEM);
    }

    private static Definition qwen(String name) {
        return chatml(name).observation(QWEN_OBSERVATION).stopWords("<|im_end|>").replaceEos();
    }

    private static Definition gemma(String name) {
        return template(name).user("<start_of_turn>user\n{{content}}<end_of_turn>\n<start_of_turn>model\n")
                .assistant("{{content}}<end_of_turn>\n").system("{{content}}\n\n")
                .observation("<start_of_turn>tool\n{{content}}<end_of_turn>\n<start_of_turn>model\n")
                .prefix(Slot.BOS).foldSystem();
    }

    private static Definition glm(String name) {
        return template(name).user("<|user|>\n{{content}}<|assistant|>").assistant("\n{{content}}")
                .system("<|system|>\n{{content}}").observation("<|observation|>\n{{content}}<|assistant|>")
                .prefix("[gMASK]<sop>").stopWords("<|user|>", "<|observation|>").efficientEos();
    }

    private static Definition template(String name) {
        return new Definition(name);
    }

    /** LLaMA-Factory's {@code register_template} keyword arguments, with its defaults. */
    private static final class Definition {
        private final String name;
        private Formatter user;
        private Formatter assistant;
        private Formatter system;
        private Formatter observation;
        private Formatter prefix = new Formatter(List.of());
        private String defaultSystem = "";
        private List<String> stopWords = List.of();
        private String thoughtOpen = THINK_OPEN;
        private String thoughtClose = THINK_CLOSE;
        private String emptyThought;
        private boolean efficientEos;
        private boolean replaceEos;
        private boolean foldSystem;
        private boolean reasoning;
        private MmPlugin mmPlugin;

        private Definition(String name) {
            this.name = name;
        }

        /** Slots: a String is text, a {@link Slot} itself. */
        private static Formatter slots(Object... parts) {
            List<Slot> out = new ArrayList<>();
            for (Object p : parts) {
                out.add(p instanceof Slot s ? s : Slot.text((String) p));
            }
            return new Formatter(out);
        }

        Definition user(Object... parts) {
            user = slots(parts);
            return this;
        }

        Definition assistant(Object... parts) {
            assistant = slots(parts);
            return this;
        }

        Definition system(Object... parts) {
            system = slots(parts);
            return this;
        }

        Definition observation(Object... parts) {
            observation = slots(parts);
            return this;
        }

        Definition prefix(Object... parts) {
            prefix = slots(parts);
            return this;
        }

        Definition defaultSystem(String text) {
            defaultSystem = text;
            return this;
        }

        Definition stopWords(String... words) {
            stopWords = List.of(words);
            return this;
        }

        Definition thoughtWords(String open, String close) {
            thoughtOpen = open;
            thoughtClose = close;
            return this;
        }

        Definition emptyThought(String text) {
            emptyThought = text;
            return this;
        }

        Definition efficientEos() {
            efficientEos = true;
            return this;
        }

        Definition replaceEos() {
            replaceEos = true;
            return this;
        }

        /** Llama2Template: the formatted system text is prepended to the first user message. */
        Definition foldSystem() {
            foldSystem = true;
            return this;
        }

        /** LLaMA-Factory's mm_plugin (the image placeholders' expansion). */
        Definition mmPlugin(MmPlugin plugin) {
            mmPlugin = plugin;
            return this;
        }

        /** ReasoningTemplate. */
        Definition reasoning() {
            reasoning = true;
            return this;
        }

        void add() {
            if (replaceEos && stopWords.isEmpty()) {
                throw new IllegalStateException(name + ": replace_eos needs stop words");
            }
            if (BUILT_IN.containsKey(name) || MULTIMODAL.containsKey(name)) {
                throw new IllegalStateException("template " + name + " defined twice");
            }
            Formatter userOrDefault = user != null ? user : slots("{{content}}");
            Formatter assistantOrDefault = assistant != null ? assistant
                    : efficientEos ? slots("{{content}}") : slots("{{content}}", Slot.EOS);
            BUILT_IN.put(name, new ChatTemplate(name, userOrDefault, assistantOrDefault,
                    system != null ? system : slots("{{content}}"),
                    observation != null ? observation : userOrDefault,
                    prefix, defaultSystem, stopWords, thoughtOpen, thoughtClose, replaceEos, foldSystem, reasoning,
                    efficientEos, emptyThought != null ? emptyThought : thoughtOpen + thoughtClose,
                    ToolCalling.forTemplate(name, assistantOrDefault), mmPlugin));
        }
    }

    public static List<String> names() {
        return List.copyOf(BUILT_IN.keySet());
    }

    /**
     * What is wrong with {@code template: name} in a configuration, if anything: missing, a
     * multimodal template, or an unknown name (with the nearest built-in one).
     */
    public static Optional<String> problem(String name) {
        if (name == null) {
            return Optional.of("template is required; built-in templates: " + String.join(", ", names()));
        }
        if (BUILT_IN.containsKey(name)) {
            return Optional.empty();
        }
        if (MULTIMODAL.containsKey(name)) {
            return Optional.of("template: '" + name + "' is LLaMA-Factory's template for a multimodal (image, video "
                    + "or audio) model with its '" + MULTIMODAL.get(name) + "' plugin, which spark-sft does not support "
                    + "yet: images train with template: qwen2_vl (Qwen2-VL, Qwen2.5-VL); for text use a text model and "
                    + "its template");
        }
        return Optional.of("template: unknown template '" + name + "'" + Suggest.didYouMean(name, BUILT_IN.keySet())
                + "; built-in templates: " + String.join(", ", names()));
    }

    /** The built-in template called {@code name}; an unknown name names the nearest one. */
    public static ChatTemplate get(String name) {
        Optional<String> problem = problem(name);
        if (problem.isPresent()) {
            throw new UserError(problem.get());
        }
        return BUILT_IN.get(name);
    }
}
