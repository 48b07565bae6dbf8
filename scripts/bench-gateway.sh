#!/usr/bin/env bash
# Benchmark: what llmage adds on top of a (nearly free) upstream, non-streaming and streaming
# chat, next to a plain nginx proxy_pass hop as the physical reference. Not a test.
#
#   scripts/bench-gateway.sh                 # build, set up, measure once, print a summary
#   RUNS=2 DURATION=10 scripts/bench-gateway.sh
#   BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres scripts/bench-gateway.sh
#
# It uses the shared harness by path, never a copy: ${LLMAGE_BENCH_DIR:-<repo>/../shared/bench}
# (read its README.md: mock upstream = nginx on 127.0.0.1:18080 (JSON) / :18081 (SSE), load =
# wrk, CPU layout on 2 cores: wrk on core 0, mock + gateway on core 1).
#
# Steps, all undone on exit (trap):
#   1. cargo build --release                          (skip with SKIP_BUILD=1)
#   2. a fresh temp dir; `mock.sh start` unless a mock already runs (then it is left alone)
#   3. configure llmage with the admin CLI on that data dir: a user with 1e11 credits and two
#      `--vendor openai` channels, bench-model -> :18080/v1 and bench-model-stream -> :18081/v1,
#      both priced 1 credit per million tokens in and out. So every request takes the real
#      money path: hold (in memory against the process's credit lease, claimed in a ledger
#      transaction when short) -> upstream -> settle (charge ledger row + chat_usage row, one
#      group commit) (docs/money.md).
#      SQLite in the data dir by default; with BENCH_DATABASE_URL (a PostgreSQL URL the script
#      may CREATE DATABASE with, e.g. postgres://postgres@127.0.0.1:5432/postgres) a fresh
#      database llmage_bench_<time>_<pid> is created there, used, and dropped at the end.
#   4. `llmage serve` on 127.0.0.1:$GW_PORT pinned to core $GW_CPUS with RUST_LOG=warn: no
#      per-request access log lines (at info every request writes one line to stderr, which
#      would be measured too); warnings/errors still go to the server log.
#   5. per run (RUNS, default 1): the harness' gateway-overhead.sh against llmage (GW_PID set,
#      STREAM_MODEL=bench-model-stream), then run-peer-nginx.sh (RUNS=1) as the reference hop,
#      interleaved so both see the same machine state. NGINX_REF=0 skips the reference.
#      Then (BARE_REF=1, default) the stack floor: examples/bare_proxy.rs, llmage's own
#      connection loop and HTTP client with no product logic (no auth, limits, JSON, billing),
#      forwarding bytes to the same mock, pinned like llmage: what hyper + reqwest + tokio cost
#      by themselves on this machine.
#   6. a summary table, a billing check from the database (calls recorded, outcomes, balance
#      == ledger sum), warnings from the server log; then everything started here is stopped.
#
# Environment (besides the harness' own knobs, which pass through unchanged: CONNS THREADS
# DURATION WARMUP LAT_PROBE LAT_DURATION PIN LOADGEN_CPUS MOCK_CPUS GW_CPUS MAX_ERR_PCT
# BENCH_TMP ...):
#   LLMAGE_BENCH_DIR    harness directory (default <repo>/../shared/bench)
#   RUNS                repetitions (default 1)
#   GW_PORT             llmage listen port (default 18100)
#   NGINX_REF           1 (default) = also measure the nginx proxy_pass reference
#   BARE_REF            1 (default) = also measure the stack floor (examples/bare_proxy.rs)
#   BARE_PORT           its listen port (default 18110)
#   LITELLM_REF         1 = also measure LiteLLM proxy (the harness' run-peer-litellm.sh; it
#                       installs LiteLLM into a venv on first use), once, after the runs
#   SKIP_BUILD          1 = use the existing target/release/llmage
#   LLMAGE_BIN          the llmage binary to measure (default target/release/llmage; with
#                       SKIP_BUILD=1 e.g. a build of an earlier commit, for before/after runs)
#   BENCH_DATABASE_URL  PostgreSQL server URL (see 3.); unset = SQLite
#   KEEP_DATA           1 = keep the temp data dir (and the PostgreSQL database)
#   LLMAGE_RUST_LOG     log filter for the server (default warn)
#
# Output: the harness' tables as they come, then "llmage bench summary" (also saved to
# $BENCH_TMP/results/<time>-llmage-bench-summary.txt, with the server log next to it).
# Exit status: 0; 3 if a run had more than MAX_ERR_PCT % errors (numbers not meaningful);
# 1 on a setup failure (build, mock, server start, the harness' sanity check).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=${LLMAGE_BENCH_DIR:-$REPO/../shared/bench}
[[ -f "$BENCH/lib.sh" && -x "$BENCH/gateway-overhead.sh" ]] ||
    { echo "bench-gateway: no harness at $BENCH (set LLMAGE_BENCH_DIR)" >&2; exit 1; }
BENCH=$(cd "$BENCH" && pwd)

case "${1:-}" in
-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
"") ;;
*) echo "bench-gateway: no arguments expected (configure with environment variables; see --help)" >&2; exit 2 ;;
esac

# Defaults and helpers (log, die, pin, wait_http, stop_pid_tree, kv, ensure_tools, RESULTS_DIR).
# shellcheck source=/dev/null
. "$BENCH/lib.sh"

: "${RUNS:=1}"
: "${GW_PORT:=18100}"
: "${NGINX_REF:=1}"
: "${BARE_REF:=1}"
: "${BARE_PORT:=18110}"
: "${LITELLM_REF:=0}"
: "${SKIP_BUILD:=0}"
: "${KEEP_DATA:=0}"
: "${BENCH_DATABASE_URL:=}"
: "${LLMAGE_RUST_LOG:=warn}"
export BENCH_TMP PIN LOADGEN_CPUS MOCK_CPUS GW_CPUS  # the harness scripts see the same values

BIN="${LLMAGE_BIN:-$REPO/target/release/llmage}"
BARE_BIN="$REPO/target/release/examples/bare_proxy"
STAMP=$(date +%Y%m%d-%H%M%S)
WORK="" GW_PID="" BARE_PID="" STARTED_MOCK=0 PG_DB="" PG_ADMIN_URL="" DB_URL=""
SERVER_LOG="" SUMMARY_FILE=""

# ---- cleanup ----------------------------------------------------------------------------
cleanup() {
    local rc=$?
    set +e
    if [[ -n "$GW_PID" ]]; then stop_pid_tree "$GW_PID" "llmage"; GW_PID=""; fi
    if [[ -n "$BARE_PID" ]]; then stop_pid_tree "$BARE_PID" "bare_proxy"; BARE_PID=""; fi
    if ((STARTED_MOCK)); then "$BENCH/mock.sh" stop; STARTED_MOCK=0; fi
    if [[ -n "$SERVER_LOG" && -s "$SERVER_LOG" ]]; then
        mkdir -p "$RESULTS_DIR"
        cp "$SERVER_LOG" "$RESULTS_DIR/$STAMP-llmage-server.log" &&
            log "server log kept: $RESULTS_DIR/$STAMP-llmage-server.log"
    fi
    if [[ -n "$PG_DB" ]]; then
        if [[ "$KEEP_DATA" == 1 ]]; then
            log "kept PostgreSQL database $PG_DB"
        else
            psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$PG_DB\" WITH (FORCE)" >/dev/null 2>&1 ||
                psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS \"$PG_DB\"" >/dev/null 2>&1 ||
                log "could not drop PostgreSQL database $PG_DB"
        fi
    fi
    if [[ -n "$WORK" && -d "$WORK" ]]; then
        if [[ "$KEEP_DATA" == 1 ]]; then log "kept data dir $WORK"; else rm -rf "$WORK"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- 1. build ---------------------------------------------------------------------------
if [[ "$SKIP_BUILD" != 1 ]]; then
    log "cargo build --release (in $REPO)"
    (cd "$REPO" && cargo build --release --bin llmage --example bare_proxy) || die "cargo build --release failed"
fi
[[ -x "$BIN" ]] || die "no binary at $BIN (build first, or unset SKIP_BUILD)"
[[ "$BARE_REF" != 1 || -x "$BARE_BIN" ]] ||
    die "no binary at $BARE_BIN (cargo build --release --example bare_proxy, or BARE_REF=0)"

# ---- 2. temp dir, tools, mock -----------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/llmage-bench.XXXXXX")
DATA="$WORK/data"
SERVER_LOG="$WORK/server.log"
mkdir -p "$DATA" "$RESULTS_DIR"
ensure_tools
if "$BENCH/mock.sh" status >/dev/null 2>&1; then
    log "mock already running; using it (it will be left running)"
    "$BENCH/mock.sh" start  # only checks that it answers as expected
else
    "$BENCH/mock.sh" start
    STARTED_MOCK=1
fi

# ---- 3. database and configuration ------------------------------------------------------
DB_ARGS=()
if [[ -n "$BENCH_DATABASE_URL" ]]; then
    command -v psql >/dev/null || die "BENCH_DATABASE_URL is set but psql is missing (apt-get install postgresql-client)"
    PG_ADMIN_URL=$BENCH_DATABASE_URL
    PG_DB="llmage_bench_${STAMP//-/_}_$$"
    base=${PG_ADMIN_URL%%\?*}; query=${PG_ADMIN_URL#"$base"}
    rest=${base#*://}
    [[ "$rest" == */* ]] && base=${base%/*}
    DB_URL="$base/$PG_DB$query"
    psql "$PG_ADMIN_URL" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$PG_DB\"" >/dev/null ||
        { PG_DB=""; die "cannot create a database via $PG_ADMIN_URL"; }
    DB_ARGS=(--database-url "$DB_URL")
    DB_DESC="PostgreSQL $(psql "$DB_URL" -Atqc 'SHOW server_version' 2>/dev/null || echo '?'), database $PG_DB"
else
    DB_DESC="SQLite in a fresh temp data dir"
fi
log "database: $DB_DESC"

# llmage reads DATABASE_URL from the environment too: never let a caller's leak in.
llmage() { env -u DATABASE_URL "$BIN" "$@"; }
admin() { llmage admin --data-dir "$DATA" "${DB_ARGS[@]}" "$@"; }

KEY=$(admin user create --phone 13900000000 --credits 100000000000 2>"$WORK/admin.err" | tail -n 1) ||
    { cat "$WORK/admin.err" >&2; die "admin user create failed"; }
[[ "$KEY" == sk-* ]] || { cat "$WORK/admin.err" >&2; die "admin user create printed no key"; }
admin channel add --vendor openai --base-url "http://127.0.0.1:$MOCK_PORT/v1" --api-key dummy \
    --models bench-model --price-in 1 --price-out 1 >&2 || die "admin channel add (bench-model) failed"
admin channel add --vendor openai --base-url "http://127.0.0.1:$MOCK_STREAM_PORT/v1" --api-key dummy \
    --models bench-model-stream --price-in 1 --price-out 1 >&2 || die "admin channel add (bench-model-stream) failed"
log "configured: user 13900000000 (1e11 credits), channels bench-model -> :$MOCK_PORT, bench-model-stream -> :$MOCK_STREAM_PORT"

# ---- 4. start llmage ----------------------------------------------------------------------
GW_BASE="http://127.0.0.1:$GW_PORT"
if curl -s -o /dev/null --max-time 1 "$GW_BASE/" 2>/dev/null; then
    die "something already listens on 127.0.0.1:$GW_PORT (set GW_PORT)"
fi
# Rate limiting stays on (every request is counted per IP and per key) with limits far above
# what the load reaches, so the limiter's cost is measured but nothing is refused.
GW_CMD=(env -u DATABASE_URL RUST_LOG="$LLMAGE_RUST_LOG"
  LLMAGE_LIMITS__PER_IP_PER_SEC=10000000 LLMAGE_LIMITS__PER_IP_BURST=10000000
  LLMAGE_LIMITS__PER_KEY_PER_SEC=10000000 LLMAGE_LIMITS__PER_KEY_BURST=10000000
  "$BIN" serve --data-dir "$DATA" "${DB_ARGS[@]}" --listen "127.0.0.1:$GW_PORT")
if [[ "$PIN" == 1 && -n "$GW_CPUS" ]]; then GW_CMD=(taskset -c "$GW_CPUS" "${GW_CMD[@]}"); fi
"${GW_CMD[@]}" >"$SERVER_LOG" 2>&1 &
GW_PID=$!
if ! wait_http "$GW_BASE/healthz" 30 "$GW_PID"; then
    tail -n 30 "$SERVER_LOG" >&2 || true
    die "llmage did not answer GET /healthz with 200 within 30 s"
fi
log "llmage up: pid $GW_PID on $GW_BASE (cpus ${GW_CPUS:-any}, PIN=$PIN), RUST_LOG=$LLMAGE_RUST_LOG (no access log lines), log $SERVER_LOG"

GW_URL="$GW_BASE/llmage/v1/chat/completions"
AUTH="Authorization: Bearer $KEY"
sample=$(curl -sS --max-time 10 -H 'Content-Type: application/json' -H "$AUTH" \
    -d '{"model":"bench-model","messages":[{"role":"user","content":"hi"}],"max_tokens":32}' "$GW_URL" || true)
log "sample reply: ${sample:0:700}"

# The stack floor serves POSTs only: wait until one is answered.
wait_bare() {
    for _ in $(seq 100); do
        curl -s -o /dev/null -X POST -d '{}' "http://127.0.0.1:$BARE_PORT/v1/chat/completions" && return 0
        kill -0 "$BARE_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# ---- 5. measure ---------------------------------------------------------------------------
RC=0
GW_OUTS=() REF_OUTS=() BARE_OUTS=() LITELLM_OUT=""
for ((i = 1; i <= RUNS; i++)); do
    out="$RESULTS_DIR/$STAMP-llmage-run$i.out"
    log "=== llmage, run $i/$RUNS ==="
    set +e
    LABEL="llmage-run$i" GW_PID="$GW_PID" STREAM_MODEL=bench-model-stream \
        "$BENCH/gateway-overhead.sh" "$GW_URL" "$AUTH" bench-model | tee "$out"
    rc=${PIPESTATUS[0]}
    set -e
    if ((rc == 3)); then
        RC=3
    elif ((rc != 0)); then
        log "gateway-overhead.sh failed (exit $rc); last server log lines:"
        tail -n 30 "$SERVER_LOG" >&2 || true
        exit 1
    fi
    kill -0 "$GW_PID" 2>/dev/null || { tail -n 30 "$SERVER_LOG" >&2; die "llmage died during run $i"; }
    GW_OUTS+=("$out")
    if [[ "$NGINX_REF" == 1 ]]; then
        out="$RESULTS_DIR/$STAMP-nginx-ref-run$i.out"
        log "=== nginx proxy_pass reference, run $i/$RUNS ==="
        set +e
        RUNS=1 "$BENCH/run-peer-nginx.sh" | tee "$out"
        rc=${PIPESTATUS[0]}
        set -e
        ((rc == 0)) || log "nginx reference run $i exited $rc"
        REF_OUTS+=("$out")
    fi
    if [[ "$BARE_REF" == 1 ]]; then
        out="$RESULTS_DIR/$STAMP-bare-proxy-run$i.out"
        log "=== stack floor (examples/bare_proxy.rs), run $i/$RUNS ==="
        bare_cmd=("$BARE_BIN" "127.0.0.1:$BARE_PORT" "http://127.0.0.1:$MOCK_PORT" "http://127.0.0.1:$MOCK_STREAM_PORT")
        if [[ "$PIN" == 1 && -n "$GW_CPUS" ]]; then bare_cmd=(taskset -c "$GW_CPUS" "${bare_cmd[@]}"); fi
        "${bare_cmd[@]}" >"$WORK/bare-proxy.log" 2>&1 &
        BARE_PID=$!
        wait_bare || die "bare_proxy did not start on 127.0.0.1:$BARE_PORT"
        set +e
        LABEL="bare-proxy-run$i" GW_PID="$BARE_PID" STREAM_MODEL=bench-model-stream \
            "$BENCH/gateway-overhead.sh" "http://127.0.0.1:$BARE_PORT/llmage/v1/chat/completions" "" bench-model | tee "$out"
        rc=${PIPESTATUS[0]}
        set -e
        ((rc == 0)) || log "stack floor run $i exited $rc"
        stop_pid_tree "$BARE_PID" "bare_proxy"
        BARE_PID=""
        BARE_OUTS+=("$out")
    fi
done

if [[ "$LITELLM_REF" == 1 ]]; then
    LITELLM_OUT="$RESULTS_DIR/$STAMP-litellm.out"
    log "=== LiteLLM proxy on the same mock ==="
    set +e
    RUNS=1 "$BENCH/run-peer-litellm.sh" | tee "$LITELLM_OUT"
    rc=${PIPESTATUS[0]}
    set -e
    ((rc == 0)) || log "LiteLLM run exited $rc"
fi

# ---- 6. summary -----------------------------------------------------------------------------
# col FILE ROW N -- field N of the table row named ROW in a gateway-overhead.sh output
col() { awk -v r="$2" -v n="$3" '$1 == r { v = $n } END { print v }' "$1"; }
# line FILE PREFIX -- last line starting with PREFIX
line() { grep -E "^$2" "$1" | tail -n 1 || true; }
# cpu_us FILE ROW -- the "µs per request" part of a row's gw_cpu column ("65%/17us")
cpu_us() { local c; c=$(col "$1" "$2" 8); c=${c#*/}; echo "${c%us}"; }
cpu_pct() { local c; c=$(col "$1" "$2" 8); echo "${c%%/*}"; }

summary_rows() { # PEER FILE
    local peer=$1 f=$2 last c1 st rss
    last=$(line "$f" 'ratio=')
    c1=$(line "$f" 'unloaded \(c=1\):')
    st=$(line "$f" 'streaming \(c=')
    rss=$(grep -oE 'rss_after_runs_mb=[0-9]+' "$f" | tail -n 1 | cut -d= -f2)
    printf '%-14s %10s %10s %7s %8s %8s %8s %8s %9s %5s | %10s %10s %7s %8s %8s %9s | %6s %s\n' \
        "$peer" "$(kv "$last" direct_rps)" "$(kv "$last" gw_rps)" "$(kv "$last" ratio)" \
        "$(kv "$c1" p50_add_ms)" "$(kv "$c1" p99_add_ms)" \
        "$(kv "$last" p50_add_ms)" "$(kv "$last" p99_add_ms)" \
        "$(cpu_us "$f" gw)/$(cpu_pct "$f" gw)" "$(col "$f" gw 7)" \
        "$(kv "$st" direct_rps)" "$(kv "$st" gw_rps)" "$(kv "$st" ratio)" \
        "$(kv "$st" p50_add_ms)" "$(kv "$st" p99_add_ms)" "$(cpu_us "$f" gw_stream)/$(cpu_pct "$f" gw_stream)" \
        "${rss:-?}MiB" "errs c1=$(col "$f" gw_c1 7) stream=$(col "$f" gw_stream 7)"
}

db_query() { # SQL -> rows "a|b|c" (never fails: the summary must print anyway)
    {
    if [[ -n "$DB_URL" ]]; then
        psql "$DB_URL" -Atqc "$1" 2>/dev/null
    elif command -v sqlite3 >/dev/null; then
        sqlite3 -readonly "$DATA/llmage.db" "$1" 2>/dev/null
    else
        python3 - "$DATA/llmage.db" "$1" <<'PY' 2>/dev/null
import sqlite3, sys
c = sqlite3.connect("file:" + sys.argv[1] + "?mode=ro", uri=True)
for r in c.execute(sys.argv[2]):
    print("|".join("" if v is None else str(v) for v in r))
PY
    fi
    } || true
}

# Stop the server first: streams settle their bills as they end, so the data is final.
stop_pid_tree "$GW_PID" "llmage"
GW_PID=""

SUMMARY_FILE="$RESULTS_DIR/$STAMP-llmage-bench-summary.txt"
{
    echo
    echo "=== llmage bench summary ($STAMP) ==="
    echo "llmage $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')$( [[ -n "$(git -C "$REPO" status --porcelain -- src Cargo.toml Cargo.lock migrations 2>/dev/null)" ]] && echo ' + uncommitted changes'), release build; $DB_DESC"
    echo "server: llmage serve, RUST_LOG=$LLMAGE_RUST_LOG (per-request access log lines off), pinned to cpu ${GW_CPUS:-any} (PIN=$PIN) with the mock; wrk on cpu $LOADGEN_CPUS"
    echo "load: wrk c=${CONNS} t=${THREADS} ${DURATION}s (+${WARMUP}s warm-up), c1 probe ${LAT_DURATION:-5}s, runs=$RUNS; nproc=$(nproc)"
    echo "every llmage request: per-IP and per-key rate limit, key cache, JSON parse, hold against the credit lease, upstream, decorate, settle (charge row + chat_usage row, one commit)"
    echo
    echo "                                                 non-streaming                                     |                    streaming (c=$CONNS, 21 chunks)                 |"
    printf '%-14s %10s %10s %7s %8s %8s %8s %8s %9s %5s | %10s %10s %7s %8s %8s %9s | %6s %s\n' \
        peer direct_rps gw_rps ratio c1_p50+ c1_p99+ c32_p50+ c32_p99+ cpu_us/%c errs \
        direct_rps gw_rps ratio p50+ p99+ cpu_us/%c rss other
    for ((i = 0; i < ${#GW_OUTS[@]}; i++)); do
        summary_rows "llmage#$((i + 1))" "${GW_OUTS[$i]}"
        if [[ -n "${REF_OUTS[$i]:-}" ]]; then summary_rows "nginx-ref#$((i + 1))" "${REF_OUTS[$i]}"; fi
        if [[ -n "${BARE_OUTS[$i]:-}" ]]; then summary_rows "floor#$((i + 1))" "${BARE_OUTS[$i]}"; fi
    done
    if [[ -n "$LITELLM_OUT" && -s "$LITELLM_OUT" ]]; then summary_rows "litellm" "$LITELLM_OUT"; fi
    echo "(added latency in ms = gateway - direct; c1 = one connection, the per-request cost; c32 is queueing-dominated)"
    echo "(floor = examples/bare_proxy.rs: llmage's connection loop and HTTP client forwarding bytes, no product logic)"
    echo "(cpu_us/%c = gateway CPU per request in µs / % of one core during the run, from /proc, 10 ms ticks)"
    for ((i = 0; i < ${#GW_OUTS[@]}; i++)); do
        if [[ -n "${REF_OUTS[$i]:-}" ]]; then
            awk -v g="$(kv "$(line "${GW_OUTS[$i]}" 'ratio=')" gw_rps)" -v n="$(kv "$(line "${REF_OUTS[$i]}" 'ratio=')" gw_rps)" \
                -v gs="$(kv "$(line "${GW_OUTS[$i]}" 'streaming \(c=')" gw_rps)" -v ns="$(kv "$(line "${REF_OUTS[$i]}" 'streaming \(c=')" gw_rps)" -v r=$((i + 1)) \
                'BEGIN { if (n > 0 && ns > 0) printf "run %d: llmage / nginx-ref rps = %.3f (non-streaming), %.3f (streaming)\n", r, g / n, gs / ns }'
        fi
        if [[ -n "${REF_OUTS[$i]:-}" && -n "${BARE_OUTS[$i]:-}" ]]; then
            awk -v g="$(kv "$(line "${BARE_OUTS[$i]}" 'ratio=')" gw_rps)" -v n="$(kv "$(line "${REF_OUTS[$i]}" 'ratio=')" gw_rps)" \
                -v gs="$(kv "$(line "${BARE_OUTS[$i]}" 'streaming \(c=')" gw_rps)" -v ns="$(kv "$(line "${REF_OUTS[$i]}" 'streaming \(c=')" gw_rps)" -v r=$((i + 1)) \
                'BEGIN { if (n > 0 && ns > 0) printf "run %d: floor / nginx-ref rps = %.3f (non-streaming), %.3f (streaming): the best any gateway on hyper + reqwest + tokio reaches here\n", r, g / n, gs / ns }'
        fi
    done
    echo
    echo "billing check (database after the runs):"
    echo "  chat_usage by outcome|source|calls|credits:"
    db_query "SELECT outcome, usage_source, COUNT(*), CAST(SUM(credits) AS BIGINT) FROM chat_usage GROUP BY outcome, usage_source ORDER BY 3 DESC" | sed 's/^/    /'
    echo "  reservations by status|count:"
    db_query "SELECT status, COUNT(*) FROM reservations GROUP BY status ORDER BY 2 DESC" | sed 's/^/    /'
    bal=$(db_query "SELECT balance FROM users WHERE phone = '13900000000'" | head -n 1)
    lsum=$(db_query "SELECT CAST(SUM(amount) AS BIGINT) FROM ledger l JOIN users u ON u.id = l.user_id WHERE u.phone = '13900000000'" | head -n 1)
    nledger=$(db_query "SELECT COUNT(*) FROM ledger" | head -n 1)
    echo "  balance=$bal ledger_sum=$lsum ledger_rows=$nledger -> $([[ -n "$bal" && "$bal" == "$lsum" ]] && echo 'consistent' || echo 'MISMATCH (or unreadable)')"
    echo
    nwarn=$(grep -cE ' (WARN|ERROR) ' "$SERVER_LOG" || true)
    echo "server log: $nwarn WARN/ERROR lines (${SERVER_LOG##*/} kept as $RESULTS_DIR/$STAMP-llmage-server.log)"
    if ((nwarn > 0)); then
        grep -E ' (WARN|ERROR) ' "$SERVER_LOG" | sed -E 's/^[^ ]+ +//; s/[0-9a-f]{16,}/<id>/g' | sort | uniq -c | sort -rn | head -n 8 | sed 's/^/  /' || true
    fi
    ((RC == 0)) || echo "WARNING: at least one llmage run had more than ${MAX_ERR_PCT:-1}% errors; its numbers are not meaningful"
} | tee "$SUMMARY_FILE"
log "summary saved: $SUMMARY_FILE"
exit "$RC"
