"""The official OpenAI Python SDK, unchanged, against llmage's OpenAI-standard surface: one model,
images (url and b64_json), the Videos API (create, retrieve until completed, download, list,
image-to-video with input_reference, delete), embeddings through an OpenAI-compatible channel,
and OpenAI error objects. Run by tests/openai_surface.rs once per base (`/v1`, `/llmage/v1`) with
LLMAGE_BASE_URL, LLMAGE_PREFIX, LLMAGE_API_KEY, LLMAGE_EMBED_MODEL and LLMAGE_OUT_DIR (the MP4 is
written there for the test to probe)."""
import base64
import json
import os
import struct
import sys
import time
import urllib.request
import warnings

import openai

warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks the Videos API deprecated

base = os.environ["LLMAGE_BASE_URL"]
prefix = os.environ["LLMAGE_PREFIX"]
key = os.environ["LLMAGE_API_KEY"]
out_dir = os.environ["LLMAGE_OUT_DIR"]
client = openai.OpenAI(base_url=base + prefix, api_key=key, max_retries=0)


def http(method, url, body=None):
    """A plain HTTP call (the SDK's own HTTP client is its business)."""
    headers = {"Authorization": f"Bearer {key}"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers, method=method)) as r:
        return r.read()


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def until_final(video, deadline_s=60):
    deadline = time.monotonic() + deadline_s
    while video.status not in ("completed", "failed"):
        assert video.status in ("queued", "in_progress"), video
        assert time.monotonic() < deadline, f"video {video.id} did not finish: {video}"
        time.sleep(0.05)
        video = client.videos.retrieve(video.id)
    return video


# models.retrieve
m = client.models.retrieve("wan2.2-t2i-flash")
assert m.id == "wan2.2-t2i-flash" and m.object == "model", m
try:
    client.models.retrieve("no-such-model")
    raise AssertionError("an unknown model must fail")
except openai.NotFoundError as e:
    assert e.code == "model_not_found", e.body
    assert "no-such-model" in e.message, e.message

# images.generate: a link to our archived PNG, then the PNG itself.
img = client.images.generate(model="wan2.2-t2i-flash", prompt="一只橘猫", response_format="url")
assert len(img.data) == 1 and img.created > 0, img
url = img.data[0].url
assert "/idfile?path=" in url, url
png = http("GET", url)
assert png_size(png)[0] > 0
img = client.images.generate(model="wan2.2-t2i-flash", prompt="一只橘猫", response_format="b64_json", n=2)
assert len(img.data) == 2, img
frame = base64.b64decode(img.data[0].b64_json)
w, h = png_size(frame)
assert w > 0 and h > 0
try:
    client.images.generate(model="wan2.2-t2i-flash", prompt="x", n=9)
    raise AssertionError("n above the model's limit must fail")
except openai.BadRequestError as e:
    assert "at most 4" in e.message, e.message
try:
    client.images.generate(model="wan2.2-t2i-flash", prompt="x", size="1024x1024")
    raise AssertionError("a size the model does not have must fail")
except openai.BadRequestError as e:
    assert e.code == "invalid_parameter" and "size" in e.message, e.body

# Videos API: text to video.
v = client.videos.create(model="viduq3-pro", prompt="海边日落", seconds="2", size="1280x720")
assert v.object == "video" and v.status == "queued" and v.progress == 0, v
assert v.model == "viduq3-pro" and v.seconds == "2" and v.size == "1280x720", v
v = until_final(v)
assert v.status == "completed" and v.progress == 100 and v.completed_at, v
content = client.videos.download_content(v.id)
path = os.path.join(out_dir, "video.mp4")
content.write_to_file(path)
thumb = client.videos.download_content(v.id, variant="thumbnail").content
assert thumb[:3] == b"\xff\xd8\xff", thumb[:8]
# The same task on the seed's surface.
seed = json.loads(http("GET", f"{base}/llmage/v1/tasks?taskid={v.id}"))
assert seed["status"] == "SUCCEEDED" and seed["video"].endswith(
    "/idfile?path=" + seed["video"].split("path=")[1]
), seed
# A task made on the seed's surface is a video here.
made = json.loads(http(
    "POST",
    f"{base}/llmage/v1/video/generations",
    {"model": "viduq3-pro", "catelogid": "t2v", "prompt": "雪山", "duration": 1, "resolution": "540p"},
))
other = until_final(client.videos.retrieve(made["taskid"]))
assert other.status == "completed" and other.seconds == "1" and other.size == "960x540", other

# Image to video: input_reference is the model's first frame (multipart upload).
i2v = client.videos.create(
    model="happyhorse-1.0-i2v", prompt="猫在走", seconds="3", size="1280x720",
    input_reference=("first.png", frame, "image/png"),
)
i2v = until_final(i2v)
assert i2v.status == "completed", i2v

# videos.list: newest first, paginated by id.
ids = [x.id for x in client.videos.list(limit=2)]
assert ids[:3] == [i2v.id, other.id, v.id], ids
asc = [x.id for x in client.videos.list(order="asc", limit=10)]
assert asc == list(reversed(ids)), (asc, ids)

# delete: hidden from the owner afterwards.
gone = client.videos.delete(other.id)
assert gone.deleted and gone.id == other.id, gone
try:
    client.videos.retrieve(other.id)
    raise AssertionError("a deleted video is gone")
except openai.NotFoundError as e:
    assert e.code == "not_found", e.body
assert other.id not in [x.id for x in client.videos.list()]

# Embeddings through an OpenAI-compatible channel.
emb = client.embeddings.create(model=os.environ["LLMAGE_EMBED_MODEL"], input=["你好", "world"])
assert len(emb.data) == 2 and len(emb.data[0].embedding) == 8, emb
assert emb.model == os.environ["LLMAGE_EMBED_MODEL"], emb.model
assert emb.usage.prompt_tokens == 500_000, emb.usage
emb = client.embeddings.create(model=os.environ["LLMAGE_EMBED_MODEL"], input="x", encoding_format="float")
assert abs(emb.data[0].embedding[1] - 0.01) < 1e-6, emb.data[0].embedding

# A wrong key: AuthenticationError carrying our message.
bad = openai.OpenAI(base_url=base + prefix, api_key="sk-wrong-key-000000000000000", max_retries=0)
try:
    bad.models.retrieve("wan2.2-t2i-flash")
    raise AssertionError("a wrong key must fail")
except openai.AuthenticationError as e:
    assert e.status_code == 401
    assert "Invalid API Key" in str(e), str(e)
    assert e.code == "invalid_api_key", e.body

print("openai v1 sdk: ok", prefix)
sys.exit(0)
