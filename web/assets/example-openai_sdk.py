# pip install openai
import os
from openai import OpenAI

client = OpenAI(base_url="{{BASE_URL}}", api_key=os.environ["LLMAGE_API_KEY"])

# 非流式 / non-streaming
answer = client.chat.completions.create(
    model="qwen3-max",
    messages=[{"role": "user", "content": "你好,介绍一下你自己"}],
)
print(answer.choices[0].message.content)

# 流式 / streaming
stream = client.chat.completions.create(
    model="qwen3-max",
    messages=[{"role": "user", "content": "写一首关于春天的短诗"}],
    stream=True,
)
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        print(chunk.choices[0].delta.content, end="", flush=True)
print()
