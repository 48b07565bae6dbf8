"""The official OpenAI Python SDK against llmage: chat.completions.create with messages,
non-streaming and streaming. Run by tests/chat_demo.rs with LLMAGE_BASE_URL and LLMAGE_API_KEY."""
import os
import sys

import openai

client = openai.OpenAI(base_url=os.environ["LLMAGE_BASE_URL"] + "/llmage/v1", api_key=os.environ["LLMAGE_API_KEY"])
messages = [
    {"role": "system", "content": "You are concise."},
    {"role": "user", "content": "How do I learn Rust?"},
]

full = client.chat.completions.create(model="qwen3-max", messages=messages)
text = full.choices[0].message.content
assert full.object == "chat.completion", full
assert full.model == "qwen3-max", full.model
assert text and "How do I learn Rust?" in text, text
assert full.choices[0].finish_reason == "stop"
assert full.usage.prompt_tokens > 0 and full.usage.completion_tokens > 0, full.usage

parts = []
finish = None
usage = None
stream = client.chat.completions.create(model="qwen3-max", messages=messages, stream=True, stream_options={"include_usage": True})
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            parts.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
assert "".join(parts) == text, ("".join(parts), text)
assert len(parts) > 3, parts
assert finish == "stop", finish
assert usage is not None and usage.completion_tokens == full.usage.completion_tokens, usage

# Models list through the SDK.
ids = [m.id for m in client.models.list()]
assert "qwen3-max" in ids and "viduq3-pro" in ids, ids

# Errors surface as SDK exceptions with our messages.
bad = openai.OpenAI(base_url=os.environ["LLMAGE_BASE_URL"] + "/llmage/v1", api_key="sk-wrong-key-000000000000000")
try:
    bad.chat.completions.create(model="qwen3-max", messages=messages)
    raise AssertionError("a wrong key must fail")
except openai.AuthenticationError as e:
    assert e.status_code == 401
try:
    client.chat.completions.create(model="no-such-model", messages=messages)
    raise AssertionError("an unknown model must fail")
except openai.NotFoundError as e:
    # The seed's error body is {"error": "<message>"}; the SDK exposes the message as e.body.
    assert e.body == "Model not found: no-such-model", e.body

print("openai sdk: ok")
sys.exit(0)
