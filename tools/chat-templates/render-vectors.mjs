// Renders every chat-template test case with Hugging Face's own Jinja renderer (@huggingface/jinja) and writes
// the expected outputs the Java tests compare against (engine/src/test/resources/chat-templates/vectors.json).
//
//   mkdir -p /tmp/jinja && cd /tmp/jinja && npm install @huggingface/jinja
//   NODE_PATH=/tmp/jinja/node_modules node tools/chat-templates/render-vectors.mjs
//
// strftime_now is pinned to 2025-06-15 (the Java test uses the same date).
import { createRequire } from "module";
import fs from "fs";
import path from "path";
import url from "url";

const require = createRequire(import.meta.url);
const { Template } = require(process.env.NODE_PATH ? path.join(process.env.NODE_PATH, "@huggingface/jinja") : "@huggingface/jinja");

const RealDate = Date;
globalThis.Date = class extends RealDate {
  constructor(...args) {
    super(...(args.length ? args : ["2025-06-15T10:30:00"]));
  }
  static now() {
    return new RealDate("2025-06-15T10:30:00").getTime();
  }
};

const here = path.dirname(url.fileURLToPath(import.meta.url));
const dir = path.join(here, "../../engine/src/test/resources/chat-templates");

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the current weather in a city",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", description: "The city, e.g. Paris" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"], description: "Temperature unit" },
        days: { type: "integer", description: "Forecast days" },
        tags: { type: "array", items: { type: "string" } },
        detailed: { type: "boolean" },
      },
      required: ["city"],
    },
  },
};
const search = {
  type: "function",
  function: {
    name: "search",
    description: "Search the web",
    parameters: { type: "object", properties: { query: { type: "string" } }, required: ["query"] },
  },
};

const sys = { role: "system", content: "You are a helpful assistant." };
const u1 = { role: "user", content: "Hello! How are you?" };
const a1 = { role: "assistant", content: "I'm fine, thanks. How can I help?" };
const u2 = { role: "user", content: "Tell me a joke about \"quotes\" and\nnewlines, in français 😀." };
const uw = { role: "user", content: "What's the weather in Paris?" };
const call = (id) => ({
  role: "assistant",
  content: "",
  tool_calls: [{ id, type: "function", function: { name: "get_weather", arguments: { city: "Paris", unit: "celsius" } } }],
});
const result = (id) => ({ role: "tool", tool_call_id: id, content: "{\"temperature\": 21, \"sky\": \"clear\"}" });
const common = { bos_token: "<s>", eos_token: "</s>" };

const cases = {
  "llama3.jinja": [
    ["single", { messages: [u1], add_generation_prompt: true }],
    ["system-multi", { messages: [sys, u1, a1, u2], add_generation_prompt: true }],
    ["no-generation-prompt", { messages: [sys, { role: "user", content: "  padded  " }, a1], add_generation_prompt: false }],
  ],
  "llama3.1.jinja": [
    ["single", { messages: [u1], add_generation_prompt: true }],
    ["system-multi", { messages: [sys, u1, a1, u2], add_generation_prompt: true }],
    ["tools", { messages: [sys, uw], tools: [weather, search], add_generation_prompt: true }],
    ["tools-in-system", { messages: [sys, uw], tools: [weather], tools_in_user_message: false, add_generation_prompt: true }],
    ["tool-round-trip", { messages: [sys, uw, call("call_1"), result("call_1")], tools: [weather], add_generation_prompt: true }],
    ["date", { messages: [u1], date_string: "01 Jan 2025", add_generation_prompt: true }],
  ],
  "mixtral.jinja": [
    ["single", { messages: [u1], add_generation_prompt: true }],
    ["multi", { messages: [u1, a1, u2], add_generation_prompt: true }],
    ["system-rejected", { messages: [sys, u1], add_generation_prompt: true }],
    ["not-alternating", { messages: [u1, u2], add_generation_prompt: true }],
  ],
  "mistral-nemo.jinja": [
    ["single", { messages: [u1], add_generation_prompt: true }],
    ["system-multi", { messages: [sys, u1, a1, u2], add_generation_prompt: true }],
    ["tools", { messages: [sys, uw], tools: [weather, search], add_generation_prompt: true }],
    ["tool-round-trip", { messages: [uw, call("abcDEF123"), result("abcDEF123")], tools: [weather], add_generation_prompt: true }],
    ["bad-tool-id", { messages: [uw, call("call_1"), result("call_1")], tools: [weather], add_generation_prompt: true }],
  ],
  "qwen3.jinja": [
    ["single", { messages: [u1], add_generation_prompt: true }],
    ["system-multi", { messages: [sys, u1, a1, u2], add_generation_prompt: true }],
    ["no-thinking", { messages: [u1], add_generation_prompt: true, enable_thinking: false }],
    ["thinking-history", {
      messages: [u1, { role: "assistant", content: "<think>\nThe user greets me.\n</think>\n\nHi there!" }, u2],
      add_generation_prompt: true,
    }],
    ["tools", { messages: [sys, uw], tools: [weather, search], add_generation_prompt: true }],
    ["tool-round-trip", { messages: [uw, call("call_1"), result("call_1")], tools: [weather], add_generation_prompt: true }],
    ["no-generation-prompt", { messages: [u1, a1], add_generation_prompt: false }],
  ],
  "olmoe.jinja": [
    ["single", { messages: [u1], add_generation_prompt: true }],
    ["system-multi", { messages: [sys, u1, a1, u2], add_generation_prompt: true }],
    ["no-generation-prompt", { messages: [u1, a1], add_generation_prompt: false }],
  ],
  "gpt-oss.jinja": [
    ["single", { messages: [u1], add_generation_prompt: true }],
    ["system-multi", { messages: [sys, u1, a1, u2], add_generation_prompt: true }],
    ["developer-effort", { messages: [{ role: "developer", content: "Answer briefly." }, u1], reasoning_effort: "high", add_generation_prompt: true }],
    ["tools", { messages: [sys, uw], tools: [weather, search], add_generation_prompt: true }],
    ["tool-round-trip", { messages: [uw, call("call_1"), result("call_1")], tools: [weather], add_generation_prompt: true }],
    ["thinking-last", { messages: [u1, { role: "assistant", content: "Hi!", thinking: "Greet back." }], add_generation_prompt: false }],
    ["tool-without-call", { messages: [u1, result("x")], add_generation_prompt: true }],
  ],
  "features.jinja": [
    ["all", { messages: [sys, u1, a1, u2], tools: [weather] }],
  ],
};

const vectors = [];
for (const [file, list] of Object.entries(cases)) {
  const source = fs.readFileSync(path.join(dir, file), "utf8");
  const template = new Template(source);
  for (const [name, ctx] of list) {
    const context = { ...common, ...ctx };
    let expected = null;
    let error = null;
    try {
      expected = template.render(context);
    } catch (e) {
      error = String(e.message ?? e);
    }
    vectors.push({ template: file, case: name, context, expected, error });
  }
}
fs.writeFileSync(path.join(dir, "vectors.json"), JSON.stringify(vectors, null, 1) + "\n");
console.log(`wrote ${vectors.length} vectors`);
