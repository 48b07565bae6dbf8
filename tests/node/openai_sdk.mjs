// The official OpenAI Node SDK, unchanged, against llmage: chat streaming, images (url and
// b64_json), the Videos API (create, retrieve until completed, download, list) and a wrong key.
// Run by tests/openai_surface.rs once per base with LLMAGE_BASE_URL, LLMAGE_PREFIX,
// LLMAGE_API_KEY, and NODE_PATH pointing at the `openai` package it installed from npm.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(path.join(process.env.LLMAGE_SDK_DIR, "node_modules", "x.js"));
const OpenAI = require("openai").default ?? require("openai");

const base = process.env.LLMAGE_BASE_URL;
const prefix = process.env.LLMAGE_PREFIX;
const client = new OpenAI({ baseURL: base + prefix, apiKey: process.env.LLMAGE_API_KEY, maxRetries: 0 });

// Chat, streamed.
const stream = await client.chat.completions.create({
  model: "qwen3-max",
  messages: [{ role: "user", content: "How do I learn Rust?" }],
  stream: true,
  stream_options: { include_usage: true },
});
let text = "";
let chunks = 0;
let usage = null;
for await (const chunk of stream) {
  chunks += 1;
  for (const choice of chunk.choices) text += choice.delta?.content ?? "";
  if (chunk.usage) usage = chunk.usage;
}
assert.ok(chunks > 3 && text.includes("How do I learn Rust?"), text);
assert.ok(usage && usage.completion_tokens > 0, JSON.stringify(usage));

// Images.
const byUrl = await client.images.generate({ model: "wan2.2-t2i-flash", prompt: "一只橘猫" });
assert.match(byUrl.data[0].url, /\/idfile\?path=/);
const png = Buffer.from(await (await fetch(byUrl.data[0].url)).arrayBuffer());
assert.equal(png.subarray(0, 8).toString("hex"), "89504e470d0a1a0a");
const inline = await client.images.generate({ model: "wan2.2-t2i-flash", prompt: "一只橘猫", response_format: "b64_json" });
assert.equal(Buffer.from(inline.data[0].b64_json, "base64").subarray(1, 4).toString(), "PNG");

// Videos.
let video = await client.videos.create({ model: "viduq3-pro", prompt: "海边日落", seconds: "2", size: "1280x720" });
assert.equal(video.object, "video");
assert.equal(video.status, "queued");
const deadline = Date.now() + 60_000;
while (video.status !== "completed" && video.status !== "failed") {
  assert.ok(Date.now() < deadline, `video ${video.id} did not finish`);
  await new Promise((r) => setTimeout(r, 50));
  video = await client.videos.retrieve(video.id);
}
assert.equal(video.status, "completed", JSON.stringify(video));
const content = await client.videos.downloadContent(video.id);
const mp4 = Buffer.from(await content.arrayBuffer());
assert.equal(mp4.subarray(4, 8).toString(), "ftyp");
const ids = [];
for await (const v of client.videos.list({ limit: 1 })) ids.push(v.id);
assert.ok(ids.includes(video.id), ids.join(","));

// A wrong key.
const bad = new OpenAI({ baseURL: base + prefix, apiKey: "sk-wrong-key-000000000000000", maxRetries: 0 });
await assert.rejects(bad.models.retrieve("qwen3-max"), (e) => {
  assert.ok(e instanceof OpenAI.AuthenticationError, String(e));
  assert.match(e.message, /Invalid API Key/);
  assert.equal(e.code, "invalid_api_key");
  return true;
});

console.log("openai node sdk: ok", prefix);
