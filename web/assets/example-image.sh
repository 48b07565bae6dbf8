# 文生图 / an image task: submit, then poll until SUCCEEDED or FAILED
taskid=$(curl -sS -X POST "{{BASE_URL}}/image/generations" \
  -H "Content-Type: application/json" \
  -H "Authorization: Bearer $LLMAGE_API_KEY" \
  -d '{"model": "wan2.2-t2i-plus", "catelogid": "t2i", "prompt": "一只猫坐在月亮上,水彩画风格"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["taskid"])')
while true; do
  task=$(curl -sS "{{BASE_URL}}/tasks?taskid=$taskid" -H "Authorization: Bearer $LLMAGE_API_KEY")
  case "$task" in *'"SUCCEEDED"'*|*'"FAILED"'*) break ;; esac
  sleep 1
done
echo "$task"
