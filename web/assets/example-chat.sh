# 文本生成(非流式)/ chat, non-streaming
curl -sS -X POST "{{BASE_URL}}/chat/completions" \
  -H "Content-Type: application/json" \
  -H "Authorization: Bearer $LLMAGE_API_KEY" \
  -d '{"model": "qwen3-max", "catelogid": "t2t", "prompt": "用一句话介绍你自己", "sys_prompt": "", "stream": false}'
