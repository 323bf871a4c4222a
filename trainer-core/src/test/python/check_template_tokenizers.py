#!/usr/bin/env python3
"""LLaMA-Factory's tokenization of its demo data with real tokenizers, as the reference that
scripts/check-template-tokenizers compares `sft tokenize` with.

LLaMA-Factory's own code does everything but the tokenizer: make_template_fixtures.py's loader
imports its template, formatter and processor modules (and here also data/converter.py and
data/parser.py) from a checkout. Its datasets are read as LLaMA-Factory's loader reads them
(dataset_info.json, the first max_samples rows, the alpaca/sharegpt converters, the supervised
processor's filter), and `get_template_and_fix_tokenizer` fixes a tokenizer object made here from
the real tokenizer.json and tokenizer_config.json: vocabulary, bos/eos/pad, and
`add_special_tokens` as transformers does it (a token already in the vocabulary keeps its id and
becomes a special added token; a new one gets the next id). Every string element is then encoded
on its own by @lenml/tokenizers (scripts/lib/npm_encode.js), in two passes: the first records the
strings Template._convert_elements_to_ids encodes, node encodes them, and the second runs
LLaMA-Factory's code again with those ids, so that cutoff and labels are LLaMA-Factory's own.

  prepare --npm NPM_DIR --data DATA_DIR --work WORK (--src SRC | --git-dir GIT) [--max-samples N]
      writes WORK/data (the demo files, the extra conversations, dataset_info.json),
      WORK/expected.json and one `sft tokenize` YAML per run, listed in WORK/runs.tsv
  compare --work WORK
      reads each run's train.jsonl and prints the markdown table
  fixture --npm NPM_DIR --data DATA_DIR --out DIR (--src SRC | --git-dir GIT)
      the committed test fixture (src/test/resources/templates/real-tokenizers): trimmed
      tokenizers, the demo rows used, and the expected ids of FIXTURE_TOKENIZERS' pairs
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import types

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_template_fixtures as mtf  # noqa: E402

NPM_ENCODE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "..", "scripts", "lib",
                          "npm_encode.js")

# (template, npm package of a tokenizer its models use). A template appears once per tokenizer of
# its family that is packaged; vicuna's models are Llama 2 fine-tunes, cohere's the Command R
# family, mistral/mistral_small/ministral are written for the Tekken tokenizer of Mistral NeMo and
# its successors (Mistral Small 3 renamed two control tokens; see the report).
PAIRS = [
    ("default", "llama3"), ("default", "llama2"), ("alpaca", "llama2"),
    ("llama2", "llama2"), ("vicuna", "llama2"),
    ("llama3", "llama3"),
    ("qwen", "qwen2_5"), ("chatml", "qwen2_5"), ("qwen3", "qwen3"), ("qwen3_nothink", "qwen3"),
    ("gemma", "gemma"), ("gemma2", "gemma2"), ("gemma3", "gemma3"),
    ("deepseek3", "deepseek_v3"), ("deepseekr1", "deepseek_v3"),
    ("mistral", "mistral_nemo"), ("mistral_small", "mistral_nemo"), ("ministral", "mistral_nemo"),
    ("gpt_oss", "gptoss"), ("yi", "yi"), ("cohere", "command_r_plus"),
]
# Templates of the task without a packaged tokenizer of their family.
UNPAIRED = {
    "llama4": "Llama 4's 200k tokenizer", "phi4": "Phi-4's tiktoken-style 100k tokenizer",
    "phi4_mini": "Phi-4-mini's 200k tokenizer", "glm4": "GLM-4's tokenizer",
    "qwen3_5": "Qwen3.5's tokenizer (a new vocabulary, not Qwen3's)", "qwen3_5_nothink": "Qwen3.5's tokenizer",
    "zephyr": "Mistral 7B v0.1's sentencepiece tokenizer",
}
DATASETS = ["alpaca_en_demo", "alpaca_zh_demo", "identity", "glaive_toolcall_en_demo"]
# The data arguments of each run: LLaMA-Factory's defaults, and a short cutoff with mask_history
# (truncation from the last turn backwards).
VARIANTS = {"base": {"cutoff_len": 1024, "mask_history": False},
            "cut": {"cutoff_len": 48, "mask_history": True}}
PLAIN = {"special": True, "lstrip": False, "rstrip": False, "normalized": False, "single_word": False}


def token_text(v):
    """tokenizer_config.json writes a special token as "text" or {"content": "text", ...}."""
    return v.get("content") if isinstance(v, dict) else v


class RealTokenizer:
    """What LLaMA-Factory's template code reads of a transformers tokenizer, over a real
    tokenizer.json: ids of tokens, bos/eos/pad, add_special_tokens; encode() records its texts
    (first pass) or returns node's ids for them (second pass)."""

    def __init__(self, folder):
        with open(os.path.join(folder, "tokenizer.json"), encoding="utf-8") as f:
            tok = json.load(f)
        with open(os.path.join(folder, "tokenizer_config.json"), encoding="utf-8") as f:
            cfg = json.load(f)
        vocab = tok["model"]["vocab"]
        self.vocab = dict(vocab) if isinstance(vocab, dict) else {p[0]: i for i, p in enumerate(vocab)}
        self.model_size = len(self.vocab)
        self.added = {a["content"]: a for a in tok["added_tokens"]}
        for a in tok["added_tokens"]:
            self.vocab[a["content"]] = a["id"]
        self.bos_token = token_text(cfg.get("bos_token"))
        self.eos_token = token_text(cfg.get("eos_token"))
        self.pad_token = token_text(cfg.get("pad_token"))
        self.additional_special_tokens = [token_text(t) for t in cfg.get("additional_special_tokens") or []]
        self.chat_template = None
        self.changed = {}  # content -> the added-token entry LLaMA-Factory's fix made
        self.new_tokens = []
        self.texts = set()
        self.ids = None

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

    def _add(self, content):
        """transformers' AddedToken(content, special=True) given to the Rust tokenizer: an entry
        equal in every field is ignored, else it replaces the entry of that content (keeping a
        vocabulary id) or takes the next id."""
        old = self.added.get(content)
        if old is not None and all(old.get(k) == v for k, v in PLAIN.items()):
            return 0
        new_id = self.vocab.get(content)
        if new_id is None:
            new_id = max([a["id"] + 1 for a in self.added.values()] + [self.model_size])
            self.vocab[content] = new_id
            self.new_tokens.append(content)
        entry = {"id": new_id, "content": content, **PLAIN}
        self.added[content] = entry
        self.changed[content] = entry
        return 1 if content in self.new_tokens else 0

    def add_special_tokens(self, tokens, replace_additional_special_tokens=False):
        added = 0
        if "eos_token" in tokens:
            self.eos_token = tokens["eos_token"]
            added += self._add(tokens["eos_token"])
        for t in tokens.get("additional_special_tokens", []):
            if t in self.additional_special_tokens and not replace_additional_special_tokens:
                continue
            self.additional_special_tokens.append(t)
            added += self._add(t)
        return added

    def encode(self, text, add_special_tokens=False):
        assert not add_special_tokens
        if self.ids is None:
            self.texts.add(text)
            return [0]
        return list(self.ids[text])


def load_lf(args):
    """LLaMA-Factory's template, processor, converter and parser modules."""
    template_mod, supervised, unsupervised, commit = mtf.load_llamafactory(args.src, args.git_dir)
    data_pkg = os.path.dirname(template_mod.__file__)
    with open(os.path.join(data_pkg, "converter.py"), "w") as f:
        f.write(mtf.read_source(args.src, args.git_dir, "src/llamafactory/data/converter.py"))
    with open(os.path.join(data_pkg, "parser.py"), "w") as f:
        f.write(mtf.read_source(args.src, args.git_dir, "src/llamafactory/data/parser.py"))
    # parser.py imports these for remote datasets only
    sys.modules["huggingface_hub"] = types.SimpleNamespace(hf_hub_download=None)
    sys.modules["llamafactory.extras.misc"] = types.SimpleNamespace(use_modelscope=lambda: False,
                                                                   use_openmind=lambda: False)
    sys.modules["llamafactory.extras.constants"].DATA_CONFIG = "dataset_info.json"
    import llamafactory.data.converter as converter
    import llamafactory.data.parser as parser
    return types.SimpleNamespace(template=template_mod, supervised=supervised, converter=converter, parser=parser,
                                 commit=commit, originals={k: copy.deepcopy(v) for k, v in template_mod.TEMPLATES.items()})


def extra_conversations(lf, data_dir, name):
    """The byte fixtures' multi-turn, system and placeholder conversations (and the thought
    blocks of a reasoning template) as sharegpt rows with a system column."""
    demo = []
    for f in ("alpaca_en_demo.json", "alpaca_zh_demo.json", "identity.json"):
        with open(os.path.join(data_dir, f), encoding="utf-8") as fh:
            demo.append(json.load(fh))
    t = lf.originals[name]
    convs = mtf.conversations(demo, t.thought_words)
    keep = ["placeholders", "multiturn"] + (["thoughts"] if isinstance(t, lf.template.ReasoningTemplate) else [])
    tag = {"user": "human", "assistant": "gpt"}
    return [{"conversations": [{"from": tag[m["role"]], "value": m["content"]} for m in convs[k][0] + convs[k][1]],
             "system": convs[k][2]} for k in keep]


def write_data(lf, data_dir, work, templates):
    """WORK/data: the demo datasets, each template's extra conversations, dataset_info.json."""
    out = os.path.join(work, "data")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(data_dir, "dataset_info.json"), encoding="utf-8") as f:
        info = json.load(f)
    info = {k: info[k] for k in DATASETS}
    for name in DATASETS:
        dst = os.path.join(out, info[name]["file_name"])
        if not os.path.exists(dst):
            os.symlink(os.path.abspath(os.path.join(data_dir, info[name]["file_name"])), dst)
    for name in templates:
        file_name = f"extra_{name}.json"
        with open(os.path.join(out, file_name), "w", encoding="utf-8") as f:
            json.dump(extra_conversations(lf, data_dir, name), f, ensure_ascii=False, indent=1)
        info[f"extra_{name}"] = {"file_name": file_name, "formatting": "sharegpt",
                                 "columns": {"messages": "conversations", "system": "system"}}
    with open(os.path.join(out, "dataset_info.json"), "w", encoding="utf-8") as f:
        json.dump(info, f, ensure_ascii=False, indent=1)
    return out


def read_rows(lf, data_dir, names, max_samples):
    """LLaMA-Factory's aligned rows of the datasets: the first max_samples of each, converted."""
    rows = []
    data_args = types.SimpleNamespace(media_dir=data_dir)
    for attr in lf.parser.get_dataset_list(names, data_dir):
        with open(os.path.join(data_dir, attr.dataset_name), encoding="utf-8") as f:
            examples = json.load(f)[:max_samples]
        columns = sorted({k for e in examples for k in e})  # datasets gives every row every column
        convert = lf.converter.get_dataset_converter(attr.formatting, attr, data_args)
        rows += [convert({c: e.get(c) for c in columns}) for e in examples]
    return rows


def lf_encode(lf, name, tok, rows, variant):
    """LLaMA-Factory's input_ids and labels of the rows (its processor drops invalid ones), or the
    error its template raises."""
    lf.template.TEMPLATES = {k: copy.deepcopy(v) for k, v in lf.originals.items()}
    data_args = types.SimpleNamespace(template=name, train_on_prompt=False, mask_history=variant["mask_history"],
                                      cutoff_len=variant["cutoff_len"], tool_format=None, default_system=None,
                                      enable_thinking=True, preserve_thinking=False)
    template = lf.template.get_template_and_fix_tokenizer(tok, data_args)
    proc = lf.supervised.SupervisedDatasetProcessor(template=template, tokenizer=tok, processor=None,
                                                    data_args=data_args)
    batch = {k: [copy.deepcopy(r[k]) for r in rows] for k in rows[0]}
    out = proc.preprocess_dataset(batch)
    return [{"input_ids": i, "labels": l} for i, l in zip(out["input_ids"], out["labels"])]


def reference(lf, npm, data_dir, work, pairs, max_samples, tokenizer_dirs):
    """Expected examples of every (pair, variant): pass 1 records texts, node encodes, pass 2."""
    jobs, states = {}, {}
    for name, tok_name in pairs:
        rows = read_rows(lf, data_dir, datasets_of(name), max_samples)
        for vname, variant in VARIANTS.items():
            tok = RealTokenizer(tokenizer_dirs[tok_name])
            lf_encode(lf, name, tok, rows, variant)
            key = f"{name}|{tok_name}"
            job = jobs.setdefault(key, {"dir": tokenizer_dirs[tok_name], "added": list(tok.changed.values()),
                                        "texts": set()})
            job["texts"] |= tok.texts
            states[(name, tok_name)] = (rows, tok.changed, tok.new_tokens)
    job_file, ids_file = os.path.join(work, "npm-job.json"), os.path.join(work, "npm-ids.json")
    with open(job_file, "w", encoding="utf-8") as f:
        json.dump({k: {**v, "texts": sorted(v["texts"])} for k, v in jobs.items()}, f, ensure_ascii=False)
    subprocess.check_call(["node", NPM_ENCODE, npm, job_file, ids_file])
    with open(ids_file, encoding="utf-8") as f:
        ids = json.load(f)
    expected = {}
    for (name, tok_name), (rows, changed, new_tokens) in states.items():
        for vname, variant in VARIANTS.items():
            tok = RealTokenizer(tokenizer_dirs[tok_name])
            tok.ids = ids[f"{name}|{tok_name}"]
            expected[f"{name}|{tok_name}|{vname}"] = {
                "template": name, "tokenizer": tok_name, "variant": vname, "examples": lf_encode(lf, name, tok, rows, variant),
                "added": sorted(changed), "new_tokens": new_tokens}
    return expected


def datasets_of(name):
    return DATASETS + [f"extra_{name}"]


def yaml_of(run_dir, model_dir, data_dir, name, variant, max_samples):
    """A `sft tokenize` configuration: LLaMA-Factory's key names."""
    lines = [f"model_name_or_path: {model_dir}", "stage: sft", "do_train: true",
             f"dataset: {','.join(datasets_of(name))}", f"dataset_dir: {data_dir}", f"template: {name}",
             f"cutoff_len: {variant['cutoff_len']}", f"mask_history: {str(variant['mask_history']).lower()}",
             f"max_samples: {max_samples}", f"tokenized_path: {run_dir}/tokenized", f"output_dir: {run_dir}/output"]
    return "\n".join(lines) + "\n"


def npm_tokenizer_dirs(npm):
    base = os.path.join(npm, "node_modules", "@lenml")
    return {p[len("tokenizer-"):]: os.path.join(base, p, "models") for p in sorted(os.listdir(base))
            if p.startswith("tokenizer-") and os.path.isfile(os.path.join(base, p, "models", "tokenizer.json"))}


def prepare(args):
    lf = load_lf(args)
    dirs = npm_tokenizer_dirs(args.npm)
    pairs = [(t, k) for t, k in PAIRS if k in dirs]
    missing = sorted({k for _, k in PAIRS if k not in dirs})
    data_dir = write_data(lf, args.data, args.work, sorted({t for t, _ in pairs}))
    expected = reference(lf, args.npm, data_dir, args.work, pairs, args.max_samples, dirs)
    with open(os.path.join(args.work, "expected.json"), "w", encoding="utf-8") as f:
        json.dump({"llamafactory_commit": lf.commit, "missing_packages": missing, "runs": expected}, f)
    with open(os.path.join(args.work, "runs.tsv"), "w") as f:
        for key, e in expected.items():
            run_dir = os.path.join(args.work, "runs", key.replace("|", "-"))
            os.makedirs(run_dir, exist_ok=True)
            with open(os.path.join(run_dir, "tokenize.yaml"), "w") as y:
                y.write(yaml_of(run_dir, dirs[e["tokenizer"]], data_dir, e["template"], VARIANTS[e["variant"]],
                                args.max_samples))
            f.write(f"{key}\t{run_dir}\n")


def piece(inverse, i):
    return f"{inverse.get(i, '?')!r}({i})" if i is not None else "end"


def first_difference(expected, actual):
    """(row, position, what) of the first difference of input_ids, then of labels."""
    if len(expected) != len(actual):
        return f"{len(actual)} examples, LLaMA-Factory {len(expected)}", None
    for row, (e, a) in enumerate(zip(expected, actual)):
        for field in ("input_ids", "labels"):
            x, y = e[field], a[field]
            if x != y:
                pos = next((p for p in range(min(len(x), len(y))) if x[p] != y[p]), min(len(x), len(y)))
                at = lambda ids: ids[pos] if pos < len(ids) else None
                return None, (row, field, pos, at(x), at(y))
    return None, None


def compare(args):
    with open(os.path.join(args.work, "expected.json"), encoding="utf-8") as f:
        ref = json.load(f)
    inverse = {}
    print(f"LLaMA-Factory {ref['llamafactory_commit'] or 'checkout'}; expected ids by @lenml/tokenizers\n")
    print("| template | tokenizer | variant | examples | exact | first difference (row, position: LLaMA-Factory / spark-sft) | note |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    failed = 0
    with open(os.path.join(args.work, "runs.tsv")) as runs:
        for line in runs:
            key, run_dir = line.rstrip("\n").split("\t")
            e = ref["runs"][key]
            note = ("needs added tokens: " + " ".join(e["new_tokens"])) if e["new_tokens"] else ""
            if e["added"] and not e["new_tokens"]:
                note = "made special by LLaMA-Factory: " + " ".join(e["added"])
            out = os.path.join(run_dir, "tokenized", "train.jsonl")
            cells = [e["template"], e["tokenizer"], e["variant"], str(len(e["examples"]))]
            if not os.path.isfile(out):
                with open(os.path.join(run_dir, "tokenize.log"), errors="replace") as log:
                    err = [l.strip() for l in log if "Error" in l or "error:" in l or "needs" in l]
                cells += ["-", "spark-sft refused: " + (err[-1][:160] if err else "see " + run_dir), note]
                failed += 1
                print("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
                continue
            with open(out, encoding="utf-8") as f:
                actual = [json.loads(l) for l in f if l.strip()]
            if e["tokenizer"] not in inverse:
                tok = RealTokenizer(npm_tokenizer_dirs(args.npm)[e["tokenizer"]])
                inverse[e["tokenizer"]] = {i: t for t, i in tok.vocab.items()}
            inv = inverse[e["tokenizer"]]
            count, diff = first_difference(e["examples"], actual)
            exact = sum(1 for x, y in zip(e["examples"], actual) if x == y)
            if count:
                cells += [f"{exact}", count, note]
            elif diff:
                row, field, pos, x, y = diff
                cells += [f"{exact}", f"row {row} {field}[{pos}]: {piece(inv, x)} / {piece(inv, y)}", note]
            else:
                cells += [f"{exact}", "", note]
            failed += exact != len(e["examples"]) or bool(count)
            print("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    print()
    for name, why in UNPAIRED.items():
        print(f"- {name}: no npm tokenizer of its family ({why})")
    for name in ref["missing_packages"]:
        print(f"- package @lenml/tokenizer-{name} is not installed in the npm folder: its pairs were skipped")
    return 1 if failed else 0


# The committed test fixture (DataTemplatesRealTokenizerTest): tokenizers trimmed to their first
# FIXTURE_VOCAB ids and the pairs checked with each. llama2 covers sentencepiece's prefix space per
# encode call and bos; yi and gemma a stop word or eos in the vocabulary that LLaMA-Factory turns
# into a special added token; gptoss efficient_eos with thought words; qwen3 a reasoning template.
FIXTURE_TOKENIZERS = {
    "llama3": ["llama3", "default"], "qwen3": ["qwen3", "qwen3_nothink"], "llama2": ["llama2", "vicuna"],
    "yi": ["yi"], "gemma": ["gemma"], "gptoss": ["gpt_oss"],
}
FIXTURE_VOCAB = 3000
FIXTURE_SAMPLES = 3


def trim(src, dst, n):
    """tokenizer.json and tokenizer_config.json of src with the model vocabulary cut to the ids
    below n (plus the byte-fallback pieces, or without byte fallback every one-character token,
    so that any text still encodes)
    and the merges among what is kept; ids, added tokens, normalizer and pre-tokenizer are kept,
    so it encodes as the model's tokenizer does wherever the text needs no dropped token."""
    with open(os.path.join(src, "tokenizer.json"), encoding="utf-8") as f:
        tok = json.load(f)
    with open(os.path.join(src, "tokenizer_config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    model = tok["model"]
    assert model["type"] == "BPE", model["type"]
    fallback = model.get("byte_fallback")
    keep = {t: i for t, i in model["vocab"].items() if i < n or (len(t) == 1 and not fallback)
            or (fallback and len(t) == 6 and t.startswith("<0x") and t.endswith(">"))}
    # The Rust library gives an added token that the model vocabulary lacks the next id after the
    # vocabulary's size, which a cut vocabulary has changed; in the vocabulary, it keeps its own.
    keep.update({a["content"]: a["id"] for a in tok["added_tokens"]})
    model["vocab"] = keep
    pairs = [m.split(" ", 1) if isinstance(m, str) else m for m in model["merges"]]
    model["merges"] = [m for m, (a, b) in zip(model["merges"], pairs) if a in keep and b in keep and a + b in keep]
    cfg.pop("chat_template", None)  # not read by either encoder
    os.makedirs(dst, exist_ok=True)
    with open(os.path.join(dst, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(dst, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)


def compact_labels(input_ids, labels):
    """Labels as runs: {"ignore": n} for -100, {"same": n} for labels equal to the input ids,
    an integer for any other label (efficient_eos's eos over a prompt token)."""
    out = []
    for i, l in zip(input_ids, labels):
        kind = "ignore" if l == -100 else "same" if l == i else None
        if kind and out and isinstance(out[-1], dict) and kind in out[-1]:
            out[-1][kind] += 1
        else:
            out.append({kind: 1} if kind else l)
    return out


def fixture(args):
    lf = load_lf(args)
    npm_dirs = npm_tokenizer_dirs(args.npm)
    os.makedirs(args.out, exist_ok=True)
    dirs = {}
    for name in FIXTURE_TOKENIZERS:
        dirs[name] = os.path.join(args.out, name)
        trim(npm_dirs[name], dirs[name], FIXTURE_VOCAB)
    pairs = [(t, k) for k, ts in FIXTURE_TOKENIZERS.items() for t in ts]
    data_dir = write_data(lf, args.data, args.out, sorted({t for t, _ in pairs}))
    for name in DATASETS:  # only the rows the fixture uses
        target = os.path.join(data_dir, name + ".json")
        with open(target, encoding="utf-8") as f:
            rows = json.load(f)[:FIXTURE_SAMPLES]
        os.unlink(target)
        with open(target, "w", encoding="utf-8") as f:
            json.dump(rows, f, ensure_ascii=False, indent=1)
    expected = reference(lf, args.npm, data_dir, args.out, pairs, FIXTURE_SAMPLES, dirs)
    for f in ("npm-job.json", "npm-ids.json"):
        os.unlink(os.path.join(args.out, f))
    dump = lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(args.out, "expected.json"), "w", encoding="utf-8") as f:
        f.write('{"llamafactory_commit":' + dump(lf.commit) + ',"vocab":' + dump(FIXTURE_VOCAB)
                + ',"max_samples":' + dump(FIXTURE_SAMPLES) + ',"variants":' + dump(VARIANTS) + ',"runs":[\n')
        runs = []
        for e in expected.values():
            examples = [{"input_ids": x["input_ids"], "labels": compact_labels(x["input_ids"], x["labels"])}
                        for x in e["examples"]]
            runs.append(dump({k: e[k] for k in ("template", "tokenizer", "variant", "added", "new_tokens")})[:-1]
                        + ',"examples":[\n' + ",\n".join(dump(x) for x in examples) + "]}")
        f.write(",\n".join(runs) + "]}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare")
    for a in ("--npm", "--data", "--work"):
        p.add_argument(a, required=True)
    p.add_argument("--src")
    p.add_argument("--git-dir")
    p.add_argument("--max-samples", type=int, default=20)
    c = sub.add_parser("compare")
    c.add_argument("--work", required=True)
    c.add_argument("--npm", required=True)
    x = sub.add_parser("fixture")
    for a in ("--npm", "--data", "--out"):
        x.add_argument(a, required=True)
    x.add_argument("--src")
    x.add_argument("--git-dir")
    args = ap.parse_args()
    if args.command in ("prepare", "fixture") and not args.src and not args.git_dir:
        ap.error(args.command + " needs --src or --git-dir (LLaMA-Factory's src folder or a git directory of it)")
    if args.command == "fixture":
        fixture(args)
    elif args.command == "prepare":
        prepare(args)
    else:
        sys.exit(compare(args))


if __name__ == "__main__":
    main()
