#!/usr/bin/env python3
"""Independent reference for the chat template tests: runs LLaMA-Factory's own code.

Imports LLaMA-Factory's `data/template.py`, `data/formatter.py`, `data/tool_utils.py` and the
supervised and unsupervised dataset processors unchanged from a LLaMA-Factory checkout, with
stubs only for what they import but do not use on text (logging, the `datasets` package, the
multimodal plugins, the constants module that needs torch). Every registered template then
encodes a few conversations built from LLaMA-Factory's demo data, with a byte-level tokenizer
made here: each special token of the case is one id (256, 257, ... in list order) and every
other byte of text is its own id, as `ByteLevelBpe.train("", 0, specials)` builds in Java.

Writes `../resources/templates/llamafactory_templates.json`: for every template its
registration facts (class, multimodal plugin, efficient_eos, stop words, ...) and, for the text
templates, the cases: input_ids and labels of `SupervisedDatasetProcessor._encode_data_example`
(or the error LLaMA-Factory raises), the prompt and label of
`UnsupervisedDatasetProcessor._encode_data_example`, and the eos, pad and stop token ids after
`get_template_and_fix_tokenizer`. The conversations come from the checkout's demo data
(data/alpaca_en_demo.json, alpaca_zh_demo.json, identity.json), plus a system prompt, thought
blocks in each reasoning template's own words, and {{idx}}/{{content}} written in messages. Ids are written compactly: a string stands for its UTF-8
bytes, an integer for itself, {"ignore": n} for n labels of -100.

Run from the repository root, with LLaMA-Factory's `src` folder or a git directory of it:
  python3 trainer-core/src/test/python/make_template_fixtures.py --src LLaMA-Factory/src
  python3 trainer-core/src/test/python/make_template_fixtures.py --git-dir LLaMA-Factory/.git
Needs only the Python standard library and typing_extensions.
"""
import argparse
import copy
import json
import os
import re
import subprocess
import sys
import tempfile
import types

OUT = os.path.join(os.path.dirname(__file__), "..", "resources", "templates", "llamafactory_templates.json")

REAL_FILES = [
    "data/template.py",
    "data/formatter.py",
    "data/tool_utils.py",
    "data/processor/processor_utils.py",
    "data/processor/supervised.py",
    "data/processor/unsupervised.py",
]

# Templates whose registration names a multimodal plugin but whose models are fine-tuned on text
# too; their encoding of text without media is the plain template's (the plugins only rewrite
# image/video/audio placeholders). Every other template with a multimodal plugin is refused.
TEXT_USE_OF_MULTIMODAL = ["gemma3", "llama4", "mistral_small", "qwen3_5", "qwen3_5_nothink", "qwen3_6"]

STUBS = {
    "__init__.py": "",
    "extras/__init__.py": "",
    "extras/logging.py": (
        "class _Logger:\n"
        "    def __getattr__(self, name):\n"
        "        return lambda *args, **kwargs: None\n"
        "def get_logger(name=None):\n"
        "    return _Logger()\n"
    ),
    # constants.py needs peft and transformers; the processors use only this value from it.
    "extras/constants.py": "IGNORE_INDEX = -100\n",
    "data/__init__.py": "",
    "data/processor/__init__.py": "",
    # data_utils.py needs the datasets package; the template uses only Role and SLOTS from it.
    "data/data_utils.py": (
        "from enum import StrEnum, unique\n"
        "from typing import Union\n"
        "SLOTS = list[Union[str, set[str], dict[str, str]]]\n"
        "@unique\n"
        "class Role(StrEnum):\n"
        "    USER = 'user'\n"
        "    ASSISTANT = 'assistant'\n"
        "    SYSTEM = 'system'\n"
        "    FUNCTION = 'function'\n"
        "    OBSERVATION = 'observation'\n"
    ),
    # The plugins need torch and PIL; on text without media they change nothing.
    "data/mm_plugin.py": (
        "class Plugin:\n"
        "    def __init__(self, name):\n"
        "        self.name = name\n"
        "    def process_messages(self, messages, images, videos, audios, processor):\n"
        "        return messages\n"
        "    def process_token_ids(self, input_ids, labels, images, videos, audios, tokenizer, processor):\n"
        "        return input_ids, labels\n"
        "def get_mm_plugin(name, image_token=None, video_token=None, audio_token=None, **kwargs):\n"
        "    return Plugin(name)\n"
    ),
}


def read_source(src, git_dir, rel):
    """A file of the LLaMA-Factory checkout, relative to its root (src/.. or the git HEAD)."""
    if git_dir:
        return subprocess.check_output(["git", "--git-dir", git_dir, "show", "HEAD:" + rel], text=True)
    with open(os.path.join(src, "..", rel), encoding="utf-8") as f:
        return f.read()


def load_llamafactory(src, git_dir):
    root = tempfile.mkdtemp(prefix="lf-")
    pkg = os.path.join(root, "llamafactory")
    commit = None
    if git_dir:
        commit = subprocess.check_output(["git", "--git-dir", git_dir, "rev-parse", "HEAD"], text=True).strip()
    for rel, text in STUBS.items():
        os.makedirs(os.path.dirname(os.path.join(pkg, rel)), exist_ok=True)
        with open(os.path.join(pkg, rel), "w") as f:
            f.write(text)
    for rel in REAL_FILES:
        text = read_source(src, git_dir, "src/llamafactory/" + rel)
        with open(os.path.join(pkg, rel), "w") as f:
            f.write(text)
    sys.path.insert(0, root)
    import llamafactory.data.template as template
    import llamafactory.data.processor.supervised as supervised
    import llamafactory.data.processor.unsupervised as unsupervised
    return template, supervised, unsupervised, commit


class ByteTokenizer:
    """The Java test tokenizer: specials first (leftmost-longest, as Hugging Face's added
    vocabulary matches), else one id per UTF-8 byte."""

    def __init__(self, specials, bos, eos):
        self.vocab = {s: 256 + i for i, s in enumerate(specials)}
        self.bos_token = bos
        self.eos_token = eos
        self.pad_token = None
        self.chat_template = None

    def _id(self, token):
        return None if token is None else self.vocab.get(token)

    @property
    def bos_token_id(self):
        return self._id(self.bos_token)

    @property
    def eos_token_id(self):
        return self._id(self.eos_token)

    @property
    def pad_token_id(self):
        return self._id(self.pad_token)

    def convert_tokens_to_ids(self, token):
        return self.vocab.get(token)

    def add_special_tokens(self, tokens, replace_additional_special_tokens=False):
        added = 0
        new = list(tokens.get("additional_special_tokens", []))
        if "eos_token" in tokens:
            new.append(tokens["eos_token"])
            self.eos_token = tokens["eos_token"]
        for t in new:
            if t not in self.vocab:
                self.vocab[t] = 256 + len(self.vocab)
                added += 1
        return added

    def encode(self, text, add_special_tokens=False):
        assert not add_special_tokens
        ids, i = [], 0
        while i < len(text):
            match = max((s for s in self.vocab if text.startswith(s, i)), key=len, default=None)
            if match:
                ids.append(self.vocab[match])
                i += len(match)
            else:
                ids.extend(text[i].encode("utf-8"))
                i += 1
        return ids


def specials_of(t):
    """Special tokens of the case's tokenizer: bos, eos, <|endoftext|>, the stop words, named
    token slots, and the <|...|>-like markers of the template's strings."""
    out = ["<s>", "</s>", "<|endoftext|>"]
    texts = []
    for f in (t.format_user, t.format_assistant, t.format_system, t.format_observation, t.format_prefix):
        for slot in f.slots:
            if isinstance(slot, str):
                texts.append(slot)
            elif isinstance(slot, dict):
                out.append(slot["token"])
    out += t.stop_words
    for text in texts + list(t.thought_words):
        out += re.findall(r"<\|[^<>|\s]+\|>|<｜[^<>｜]+｜>|<[a-z_]+_of_(?:turn|text|sentence)>|\[/?INST\]"
                          r"|\[/?SYSTEM_PROMPT\]", text)
    seen = []
    for s in out:
        if s not in seen:
            seen.append(s)
    return seen


def compact(ids):
    """Ids as strings of bytes (where they decode as UTF-8), integers and {"ignore": n}."""
    out, run = [], []

    def flush():
        if run:
            data = bytes(run)
            try:
                out.append(data.decode("utf-8"))
            except UnicodeDecodeError:
                out.extend(run)
            run.clear()

    for i in ids:
        if 0 <= i < 256:
            run.append(i)
            continue
        flush()
        if i == -100:
            if out and isinstance(out[-1], dict):
                out[-1]["ignore"] += 1
            else:
                out.append({"ignore": 1})
        else:
            out.append(i)
    flush()
    return out


def conversations(demo, tw):
    """LLaMA-Factory's demo data (data/*.json of the checkout) as (prompt, response, system)."""
    alpaca, alpaca_zh, identity = demo

    def query(ex):  # LLaMA-Factory's AlpacaDatasetConverter: instruction, then input on a new line
        return "\n".join([ex["instruction"]] + ([ex["input"]] if ex["input"] else []))

    en = next(e for e in alpaca if e["input"] and len(e["output"]) < 80 and len(query(e)) < 120)
    en2 = next(e for e in alpaca if not e["input"] and len(e["output"]) < 60 and e is not en)
    zh = next(e for e in alpaca_zh if len(e["output"]) < 60 and len(query(e)) < 60)
    user, asst = "user", "assistant"
    one = lambda ex: ([{"role": user, "content": query(ex)}], [{"role": asst, "content": ex["output"]}])
    multi_prompt = [{"role": user, "content": query(identity[5])}, {"role": asst, "content": identity[5]["output"]},
                    {"role": user, "content": query(en2)}]
    multi_response = [{"role": asst, "content": en2["output"]}]
    thought_prompt = [{"role": user, "content": query(identity[0])},
                      {"role": asst, "content": tw[0] + "A greeting." + tw[1] + identity[0]["output"]},
                      {"role": user, "content": query(en2)}]
    thought_response = [{"role": asst, "content": tw[0] + "Short answer." + tw[1] + en2["output"]}]
    # LLaMA-Factory fills {{idx}} in user messages only, after {{content}}: a placeholder in the
    # user's text is filled too, one in the assistant's is kept
    placeholders = ([{"role": user, "content": "Repeat {{idx}}"}, {"role": asst, "content": "{{idx}} {{content}}"},
                     {"role": user, "content": "Again {{idx}}"}], [{"role": asst, "content": "{{idx}}"}], "")
    return {
        "placeholders": placeholders,
        "alpaca_en": one(en) + ("",),
        "alpaca_zh": one(zh) + ("",),
        "identity": one(identity[0]) + ("",),
        "multiturn": (multi_prompt, multi_response, "Answer briefly."),
        "thoughts": (thought_prompt, thought_response, ""),
    }


BASE_OPTIONS = dict(train_on_prompt=False, mask_history=False, enable_thinking=True, preserve_thinking=False,
                    cutoff_len=1024, bos="<s>")


def as_json(conv):
    prompt, response, system = conv
    return {"prompt": prompt, "response": response, "system": system}


def cases_for(reasoning):
    cases = [
        ("alpaca_en", {}),
        ("alpaca_zh", {}),
        ("identity", {"bos": None}),
        ("placeholders", {}),
        ("multiturn", {}),
        ("multiturn", {"mask_history": True}),
        ("multiturn", {"train_on_prompt": True}),
        ("multiturn", {"cutoff_len": 40}),
        ("multiturn", {"mask_history": True, "cutoff_len": 60}),
    ]
    if reasoning:
        cases += [
            ("multiturn", {"enable_thinking": False}),
            ("thoughts", {}),
            ("thoughts", {"enable_thinking": False}),
            ("thoughts", {"mask_history": True}),
            ("thoughts", {"mask_history": True, "preserve_thinking": True}),
            ("thoughts", {"preserve_thinking": True}),
        ]
    return [(conv, {**BASE_OPTIONS, **opts}) for conv, opts in cases]


def run_case(lf, name, conv, opts):
    template_mod, supervised, unsupervised = lf
    template_mod.TEMPLATES = {k: copy.deepcopy(v) for k, v in ORIGINAL.items()}
    t = template_mod.TEMPLATES[name]
    specials = specials_of(t)
    tok = ByteTokenizer(specials, opts["bos"], "</s>")
    data_args = types.SimpleNamespace(template=name, train_on_prompt=opts["train_on_prompt"],
                                      mask_history=opts["mask_history"], cutoff_len=opts["cutoff_len"],
                                      tool_format=None, default_system=None,
                                      enable_thinking=opts["enable_thinking"],
                                      preserve_thinking=opts["preserve_thinking"])
    changed = {k: v for k, v in opts.items() if BASE_OPTIONS[k] != v}
    out = {"conversation": conv, **changed}
    prompt, response, system = CONVS[name][conv]
    try:
        tmpl = template_mod.get_template_and_fix_tokenizer(tok, data_args)
    except ValueError as e:
        out["error"] = str(e)
        return out, None
    assert len(tok.vocab) == len(specials), "the case's tokenizer must already hold every token"
    proc = supervised.SupervisedDatasetProcessor(template=tmpl, tokenizer=tok, processor=None, data_args=data_args)
    ids, labels = proc._encode_data_example(copy.deepcopy(prompt), copy.deepcopy(response), system, "", [], [], [])
    out.update({"input_ids": compact(ids), "labels": compact(labels)})
    if not opts["mask_history"] and not opts["train_on_prompt"]:  # the options a prompt for generation reads
        gen = unsupervised.UnsupervisedDatasetProcessor(template=tmpl, tokenizer=tok, processor=None,
                                                        data_args=data_args)
        gen_ids, gen_labels = gen._encode_data_example(copy.deepcopy(prompt), copy.deepcopy(response), system, "",
                                                       [], [], [])
        out.update({"generation_prompt": compact(gen_ids), "generation_label": compact(gen_labels)})
    tokens = {"specials": specials, "eos_id": tok.eos_token_id, "pad_id": tok.pad_token_id,
              "stop_ids": sorted(tmpl.get_stop_token_ids(tok))}
    return out, tokens


def facts(t):
    def tool_format(f):
        return getattr(f, "tool_format", None)

    return {
        "class": type(t).__name__,
        "mm_plugin": t.mm_plugin.name,
        "efficient_eos": t.efficient_eos,
        "replace_eos": t.replace_eos,
        "stop_words": t.stop_words,
        "default_system": t.default_system,
        "thought_words": list(t.thought_words),
        "tool_format": tool_format(t.format_tools),
        "function_tool_format": tool_format(t.format_function),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", help="LLaMA-Factory's src folder")
    ap.add_argument("--git-dir", help="a git directory of LLaMA-Factory (its HEAD is read)")
    args = ap.parse_args()
    if not args.src and not args.git_dir:
        ap.error("give --src or --git-dir")
    template_mod, supervised, unsupervised, commit = load_llamafactory(args.src, args.git_dir)
    global ORIGINAL, CONVS
    ORIGINAL = {k: copy.deepcopy(v) for k, v in template_mod.TEMPLATES.items()}
    demo = [json.loads(read_source(args.src, args.git_dir, "data/" + f))
            for f in ("alpaca_en_demo.json", "alpaca_zh_demo.json", "identity.json")]
    CONVS = {name: conversations(demo, t.thought_words) for name, t in ORIGINAL.items()}
    shared = {k: v for k, v in CONVS["default"].items() if k != "thoughts"}
    assert all({k: c[k] for k in shared} == shared for c in CONVS.values())
    templates = {}
    for name, t in sorted(ORIGINAL.items()):
        entry = facts(t)
        text = t.mm_plugin.name == "base" or name in TEXT_USE_OF_MULTIMODAL
        if text:
            reasoning = isinstance(t, template_mod.ReasoningTemplate)
            if reasoning:  # written in the template's own thought words
                entry["thoughts"] = as_json(CONVS[name]["thoughts"])
            entry["cases"] = []
            for conv, opts in cases_for(reasoning):
                case, tokens = run_case((template_mod, supervised, unsupervised), name, conv, opts)
                entry["cases"].append(case)
                if tokens and opts["bos"]:  # eos, pad and stop ids do not depend on the case
                    assert entry.setdefault("tokenizer", tokens) == tokens

        templates[name] = entry
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        # one line per template and per case, so that a change reads as a small diff
        dump = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
        f.write("{\"llamafactory_commit\":" + dump(commit) + ",\n")
        f.write("\"text_use_of_multimodal\":" + dump(TEXT_USE_OF_MULTIMODAL) + ",\n")
        f.write("\"conversations\":{\n" + ",\n".join(dump(k) + ":" + dump(as_json(v)) for k, v in shared.items())
                + "},\n\"templates\":{\n")
        for i, (name, entry) in enumerate(templates.items()):
            cases = entry.pop("cases", None)
            f.write(dump(name) + ":" + dump(entry)[:-1])
            if cases is not None:
                f.write(",\"cases\":[\n" + ",\n".join(dump(c) for c in cases) + "]")
            f.write("}" + (",\n" if i + 1 < len(templates) else "\n"))
        f.write("}}\n")
    print(f"wrote {OUT}: {len(templates)} templates, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
