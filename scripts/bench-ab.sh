#!/usr/bin/env bash
# A/B benchmark of two llmage binaries, interleaved finely so both see the same machine: both
# servers run side by side (each with its own SQLite data dir, configured like
# scripts/bench-gateway.sh: a user with 1e11 credits, an `openai` channel to the shared mock),
# pinned with the mock to core 1; then ROUNDS times, A then B (then B then A on the next round),
# one wrk burst of SECS seconds each, c=CONNS, on core 0. Per burst: requests/s and the server's
# CPU per request (utime+stime from /proc, 10 ms ticks). Prints each burst and the medians, and
# B's ratio to A. Not a test; same-run ratios only (docs/benchmarks.md).
#
#   scripts/bench-ab.sh A_BINARY B_BINARY            # ROUNDS=10 SECS=5 CONNS=32 MODE=json|stream
set -euo pipefail
A=$1 B=$2
ROUNDS=${ROUNDS:-10} SECS=${SECS:-5} CONNS=${CONNS:-32} MODE=${MODE:-json}
BENCH=${LLMAGE_BENCH_DIR:-$(cd "$(dirname "$0")/.." && pwd)/../shared/bench}
WORK=$(mktemp -d /tmp/llmage-ab.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    "$BENCH/mock.sh" stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
"$BENCH/mock.sh" start >/dev/null
model=bench-model; port=18080
[[ "$MODE" == stream ]] && { model=bench-model-stream; port=18081; }
start() { # start NAME BIN PORT -> prints pid; key in $WORK/NAME.key
    local name=$1 bin=$2 listen=$3 data=$WORK/$1
    mkdir -p "$data"
    env -u DATABASE_URL "$bin" admin --data-dir "$data" user create --phone 13900000000 \
        --credits 100000000000 2>/dev/null | tail -n 1 >"$WORK/$name.key"
    env -u DATABASE_URL "$bin" admin --data-dir "$data" channel add --vendor openai \
        --base-url "http://127.0.0.1:$port/v1" --api-key dummy --models "$model" \
        --price-in 1 --price-out 1 >/dev/null 2>&1
    env -u DATABASE_URL RUST_LOG=warn \
        LLMAGE_LIMITS__PER_IP_PER_SEC=10000000 LLMAGE_LIMITS__PER_IP_BURST=10000000 \
        LLMAGE_LIMITS__PER_KEY_PER_SEC=10000000 LLMAGE_LIMITS__PER_KEY_BURST=10000000 \
        taskset -c 1 "$bin" serve --data-dir "$data" --listen "127.0.0.1:$listen" \
        >"$WORK/$name.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 100); do curl -sf -o /dev/null "http://127.0.0.1:$listen/healthz" && return; sleep 0.1; done
    echo "$name did not start" >&2; exit 1
}
start a "$A" 18120; PID_A=${PIDS[-1]}
start b "$B" 18121; PID_B=${PIDS[-1]}
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
burst() { # burst NAME PID PORT -> "rps cpu_us"
    local key before after out rps n
    key=$(cat "$WORK/$1.key"); before=$(ticks "$2")
    out=$(taskset -c 0 wrk -t2 -c"$CONNS" -d"${SECS}s" -s "$BENCH/post.lua" \
        "http://127.0.0.1:$3/llmage/v1/chat/completions" -- "$model" "Authorization: Bearer $key" "$MODE" | grep WRK_RESULT)
    after=$(ticks "$2")
    n=$(sed 's/.*requests=\([0-9]*\).*/\1/' <<<"$out"); rps=$(sed 's/.*rps=\([0-9.]*\).*/\1/' <<<"$out")
    echo "$rps $(( (after - before) * 10000 / (n > 0 ? n : 1) ))"
}
# warm-up
burst a "$PID_A" 18120 >/dev/null; burst b "$PID_B" 18121 >/dev/null
: >"$WORK/a.res"; : >"$WORK/b.res"
for ((r = 1; r <= ROUNDS; r++)); do
    if ((r % 2)); then order="a b"; else order="b a"; fi
    for x in $order; do
        if [[ $x == a ]]; then res=$(burst a "$PID_A" 18120); else res=$(burst b "$PID_B" 18121); fi
        echo "$res" >>"$WORK/$x.res"
        echo "round $r $x: rps/cpu_us $res"
    done
done
median() { sort -n | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
ra=$(cut -d' ' -f1 "$WORK/a.res" | median); rb=$(cut -d' ' -f1 "$WORK/b.res" | median)
ca=$(cut -d' ' -f2 "$WORK/a.res" | median); cb=$(cut -d' ' -f2 "$WORK/b.res" | median)
echo "A $A: median rps $ra, cpu µs/req $ca"
echo "B $B: median rps $rb, cpu µs/req $cb"
awk -v ra="$ra" -v rb="$rb" -v ca="$ca" -v cb="$cb" 'BEGIN {printf "B/A: rps %.3f, cpu per request %.3f\n", rb/ra, cb/ca}'
