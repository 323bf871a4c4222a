// Encodes texts with @lenml/tokenizers (a JavaScript port of transformers.js's tokenizers), the
// independent encoder that check-template-tokenizers compares spark-sft's Rust tokenizers with.
// Usage: node npm_encode.js NPM_DIR JOB.json OUT.json
// JOB: {"<key>": {"dir": DIR with tokenizer.json and tokenizer_config.json,
//                 "added": [{id, content, special, lstrip, rstrip, normalized, single_word}, ...],
//                 "texts": [...]}}
// "added" are the tokens LLaMA-Factory's fix_special_tokens adds or turns into special tokens
// (transformers' add_special_tokens): each replaces the tokenizer.json entry of the same
// content, or is appended. OUT: {"<key>": {"<text>": [ids]}}; every text is encoded on its own
// without special tokens, as tokenizer.encode(text, add_special_tokens=False).
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [npmDir, jobFile, outFile] = process.argv.slice(2);
if (!outFile) {
  console.error("usage: node npm_encode.js NPM_DIR JOB.json OUT.json");
  process.exit(2);
}
const { TokenizerLoader } = createRequire(path.join(path.resolve(npmDir), "package.json"))("@lenml/tokenizers");
const job = JSON.parse(fs.readFileSync(jobFile, "utf8"));
const out = {};
for (const [key, spec] of Object.entries(job)) {
  const tokenizerJSON = JSON.parse(fs.readFileSync(path.join(spec.dir, "tokenizer.json"), "utf8"));
  const tokenizerConfig = JSON.parse(fs.readFileSync(path.join(spec.dir, "tokenizer_config.json"), "utf8"));
  for (const token of spec.added) {
    const at = tokenizerJSON.added_tokens.findIndex((t) => t.content === token.content);
    if (at >= 0) tokenizerJSON.added_tokens[at] = token;
    else tokenizerJSON.added_tokens.push(token);
  }
  const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON, tokenizerConfig });
  const ids = {};
  for (const text of spec.texts) {
    ids[text] = tokenizer.encode(text, { add_special_tokens: false });
  }
  out[key] = ids;
}
fs.writeFileSync(outFile, JSON.stringify(out));
