# pip install requests
import os
import time

import requests

BASE_URL = "{{BASE_URL}}"
HEADERS = {"Authorization": "Bearer " + os.environ["LLMAGE_API_KEY"]}

# 文本生成 / chat (the platform's prompt form)
r = requests.post(f"{BASE_URL}/chat/completions", headers=HEADERS, timeout=60,
                  json={"model": "qwen3-max", "catelogid": "t2t", "prompt": "你好"})
r.raise_for_status()
print(r.json()["content"])

# 文生图 / an image task, polled until it ends
r = requests.post(f"{BASE_URL}/image/generations", headers=HEADERS, timeout=60,
                  json={"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "一只猫坐在月亮上"})
r.raise_for_status()
taskid = r.json()["taskid"]
while True:
    task = requests.get(f"{BASE_URL}/tasks", params={"taskid": taskid}, headers=HEADERS, timeout=60).json()
    if task["status"] in ("SUCCEEDED", "FAILED"):
        break
    time.sleep(1)
print(task["status"], task.get("image"))
