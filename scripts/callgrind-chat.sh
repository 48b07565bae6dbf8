#!/usr/bin/env bash
# Instructions per chat call, counted by valgrind's callgrind: repeatable whatever else the
# machine does (unlike wall-clock benchmarks on a shared VM). Not a test.
#
#   scripts/callgrind-chat.sh BINARY OUT [CALLS] [CONNS]
#   e.g. scripts/callgrind-chat.sh target/release/llmage /tmp/cg/now 3200 32
#        callgrind_annotate --inclusive=yes /tmp/cg/now.1 | less
#
# Sets up a fresh SQLite data dir like scripts/bench-gateway.sh (a user, an `openai` channel to
# the harness' mock upstream on :18080, rate limits on but far above the load), starts
# `llmage serve` under callgrind on 127.0.0.1:18190, warms up with 50 calls, zeroes the
# counters, makes CALLS non-streaming chat calls over CONNS keep-alive connections (Python's
# http.client), dumps the counters to OUT.1 and stops. Instructions per call = the dump's
# total ÷ CALLS. The mock is the shared harness' (${LLMAGE_BENCH_DIR:-<repo>/../shared/bench}).
set -euo pipefail
BIN=$1 OUT=$2 CALLS=${3:-3200} CONNS=${4:-32}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=${LLMAGE_BENCH_DIR:-$REPO/../shared/bench}
command -v valgrind >/dev/null || { echo "valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
DATA=$(mktemp -d "${TMPDIR:-/tmp}/llmage-callgrind.XXXXXX")
VG=""
cleanup() { [ -n "$VG" ] && kill "$VG" 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT
"$BENCH/mock.sh" start >/dev/null
admin() { env -u DATABASE_URL "$BIN" admin --data-dir "$DATA" "$@"; }
KEY=$(admin user create --phone 13900000000 --credits 100000000000 2>/dev/null | tail -n 1)
admin channel add --vendor openai --base-url http://127.0.0.1:18080/v1 --api-key dummy \
  --models bench-model --price-in 1 --price-out 1 >/dev/null 2>&1
env -u DATABASE_URL RUST_LOG=warn \
  LLMAGE_LIMITS__PER_IP_PER_SEC=10000000 LLMAGE_LIMITS__PER_IP_BURST=10000000 \
  LLMAGE_LIMITS__PER_KEY_PER_SEC=10000000 LLMAGE_LIMITS__PER_KEY_BURST=10000000 \
  valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" serve --data-dir "$DATA" \
  --listen 127.0.0.1:18190 >"$DATA/server.log" 2>&1 &
VG=$!
for _ in $(seq 1 120); do curl -sf -o /dev/null http://127.0.0.1:18190/healthz && break; sleep 1; done
python3 - "$KEY" "$CALLS" "$CONNS" "$VG" <<'PY'
import http.client, json, subprocess, sys, threading
key, calls, conns, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
body = json.dumps({"model": "bench-model", "messages": [{"role": "user", "content": "Hello, how are you today?"}]})
headers = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}
def run(n):
    c = http.client.HTTPConnection("127.0.0.1", 18190)
    for _ in range(n):
        c.request("POST", "/llmage/v1/chat/completions", body, headers)
        r = c.getresponse(); r.read()
        assert r.status == 200, r.status
run(50)
subprocess.run(["callgrind_control", "-z", pid], check=True, capture_output=True)
threads = [threading.Thread(target=run, args=(calls // conns,)) for _ in range(conns)]
for t in threads: t.start()
for t in threads: t.join()
subprocess.run(["callgrind_control", "-d", pid], check=True, capture_output=True)
PY
total=$(callgrind_annotate "$OUT.1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "instructions: $total for $CALLS calls = $((total / CALLS)) per call ($OUT.1)"
