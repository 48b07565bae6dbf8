#!/usr/bin/env bash
# Benchmark (not a test): llmage's footprint. Prints
#   - cold start: exec → first `GET /healthz` 200 on a fresh SQLite data dir (best of 5);
#   - idle RSS after start;
#   - RSS while holding STREAMS (default 1000) concurrent streaming chats whose upstream trickles
#     one chunk per second for SECS (default 30) seconds, and whether every stream completed.
# The trickling upstream and the clients are asyncio programs in scripts/slow_streams.py.
#   scripts/bench-footprint.sh            # uses target/release/llmage (SKIP_BUILD=1 to not build)
set -euo pipefail
cd "$(dirname "$0")/.."
: "${STREAMS:=1000}" "${SECS:=30}" "${SKIP_BUILD:=0}"
[[ "$SKIP_BUILD" == 1 ]] || cargo build --release
bin=${LLMAGE_BIN:-target/release/llmage}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
now_ms() { date +%s%3N; }

# Cold start, best of 5.
best=""
for i in 1 2 3 4 5; do
  port=$(free_port)
  t0=$(now_ms)
  "$bin" serve --listen "127.0.0.1:$port" --data-dir "$work/cold$i" >/dev/null 2>&1 &
  pid=$!
  until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.002; done
  t=$(( $(now_ms) - t0 ))
  [[ -z "$best" || $t -lt $best ]] && best=$t
  idle=$(sleep 1; rss_mib "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true
done
echo "cold start to healthy (SQLite, fresh data dir): best of 5 = ${best} ms"
echo "idle RSS after start: ${idle} MiB"

# Slow streams.
up_port=$(free_port)
python3 scripts/slow_streams.py upstream "$up_port" "$SECS" &
pids+=($!)
port=$(free_port)
data="$work/streams"
"$bin" admin user create --phone 13900000000 --credits 100000000000 --data-dir "$data" > "$work/key"
key=$(tail -n 1 "$work/key")
"$bin" admin channel add --vendor openai --base-url "http://127.0.0.1:$up_port/v1" --api-key dummy \
  --models slow-model --price-in 1 --price-out 1 --data-dir "$data" >/dev/null
RUST_LOG=warn LLMAGE_UPSTREAM_IDLE_TIMEOUT_SECS=60 \
LLMAGE_LIMITS__PER_IP_PER_SEC=100000 LLMAGE_LIMITS__PER_IP_BURST=100000 \
LLMAGE_LIMITS__PER_KEY_PER_SEC=100000 LLMAGE_LIMITS__PER_KEY_BURST=100000 \
  "$bin" serve --listen "127.0.0.1:$port" --data-dir "$data" >"$work/server.log" 2>&1 &
gw=$!
pids+=($gw)
until curl -sf -o /dev/null "http://127.0.0.1:$port/healthz"; do sleep 0.01; done
sleep 1
before=$(rss_mib "$gw")
python3 scripts/slow_streams.py clients "$port" "$key" "$STREAMS" > "$work/clients.out" &
clients=$!
peak=0
while kill -0 "$clients" 2>/dev/null; do
  r=$(rss_mib "$gw"); awk -v r="$r" -v p="$peak" 'BEGIN { exit !(r > p) }' && peak=$r
  sleep 0.5
done
wait "$clients" || true
echo "slow streams: $(cat "$work/clients.out")"
echo "RSS before: ${before} MiB; peak while holding $STREAMS streams of ${SECS} s: ${peak} MiB"
