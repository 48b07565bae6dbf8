# 文本生成(流式,SSE)/ chat, streaming: one `data: {…}` line per chunk, then `data: [DONE]`
curl -sS -N -X POST "{{BASE_URL}}/chat/completions" \
  -H "Content-Type: application/json" \
  -H "Authorization: Bearer $LLMAGE_API_KEY" \
  -d '{"model": "qwen3-max", "catelogid": "t2t", "prompt": "写一首关于春天的短诗", "stream": true}'
