// Node 18+ or a browser. 浏览器中请勿暴露 API Key / never ship your key in a web page.
const BASE_URL = "{{BASE_URL}}";
const KEY = process.env.LLMAGE_API_KEY;
const headers = { "Content-Type": "application/json", Authorization: `Bearer ${KEY}` };

// 文本生成 / chat
const chat = await fetch(`${BASE_URL}/chat/completions`, {
  method: "POST",
  headers,
  body: JSON.stringify({ model: "qwen3-max", catelogid: "t2t", prompt: "你好" }),
});
if (!chat.ok) throw new Error((await chat.json()).error);
console.log((await chat.json()).content);

// 文生图 / an image task, polled until it ends
const submitted = await fetch(`${BASE_URL}/image/generations`, {
  method: "POST",
  headers,
  body: JSON.stringify({ model: "wan2.2-t2i-plus", catelogid: "t2i", prompt: "一只猫坐在月亮上" }),
});
if (!submitted.ok) throw new Error((await submitted.json()).error);
const { taskid } = await submitted.json();
let task;
do {
  await new Promise((r) => setTimeout(r, 1000));
  task = await (await fetch(`${BASE_URL}/tasks?taskid=${taskid}`, { headers })).json();
} while (!["SUCCEEDED", "FAILED"].includes(task.status));
console.log(task.status, task.image);
