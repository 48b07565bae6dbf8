#!/usr/bin/env bash
# The test command. Runs on a fresh Debian/Ubuntu machine with Rust, as root or not:
#
#  1. As root, installs the Debian packages the suite uses when they are missing (curl, Python
#     venv, Node, OpenSSL, Chromium + chromedriver, PostgreSQL, Redis). Without root it uses what
#     is installed.
#  2. Python tools (the OpenAI SDK, moto, schemathesis, openapi-spec-validator, requests) go into
#     a virtual environment it creates in .venv-test/ (never into the system Python).
#  3. PostgreSQL and Redis: used when reachable; otherwise started from the installed binaries in
#     a temporary directory (as an unprivileged user) and stopped at the end.
#  4. Runs every test (unit + integration) on SQLite, schemathesis against `serve --demo`, then
#     the integration tests again on PostgreSQL.
#
# What cannot be provided is skipped with one line each (`== SKIPPED: …`), never failed: the
# browser tests without Chromium, the tmpfs test without root, the Redis and PostgreSQL tests
# without those servers, the Python/Node tests without Python/Node.
#
# Settings (environment):
#   LLMAGE_TEST_POSTGRES_URL  a PostgreSQL server where the suite may create databases
#                             (default postgres://postgres@127.0.0.1:5432/test)
#   LLMAGE_TEST_DATABASE_URL  the same, but then an unreachable server fails the run
#   LLMAGE_TEST_REDIS_URL     a Redis server (default redis://127.0.0.1:6379/0)
#   LLMAGE_TEST_NO_INSTALL=1  do not install anything, even as root
#   LLMAGE_TEST_NO_START=1    do not start PostgreSQL or Redis (skip their tests instead)
#   LLMAGE_SCHEMATHESIS_SECS  seconds per schemathesis pass (default 60; 0 leaves it out)
#   LLMAGE_TEST_ONLY          a nextest filterset: run only the matching tests, set up the same
#                             way (e.g. 'binary(multinode) | binary(faults)')
set -euo pipefail
cd "$(dirname "$0")/.."

is_root=0
[ "$(id -u)" = 0 ] && is_root=1
work="$(mktemp -d "${TMPDIR:-/tmp}/llmage-test.XXXXXX")"
chmod 755 "$work"
pg_started=""
redis_pid=""
run_id="$(date +%s)_$$"
drop_run_databases=""
cleanup() {
  # Drop the databases this run made (other runs may share the server); a cluster started
  # here goes as a whole.
  if [ -n "$drop_run_databases" ] && [ -z "$pg_started" ]; then
    local psql_bin
    psql_bin="$(command -v psql || find_pg_bin psql)"
    if [ -n "$psql_bin" ]; then
      "$psql_bin" "$pg_url" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE '${LLMAGE_TEST_DB_PREFIX}%'" 2>/dev/null |
        while read -r db; do "$psql_bin" "$pg_url" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done
    else
      echo "== no psql: this run's databases (${LLMAGE_TEST_DB_PREFIX}*) are left on $pg_url"
    fi
  fi
  if [ -n "$pg_started" ]; then
    as_service_user "$pg_started/pg_ctl" -D "$work/pg" -m immediate stop >/dev/null 2>&1 || true
  fi
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

# Tests left out, as nextest filter expressions, and why (one line each).
excluded=()
skip() {
  excluded+=("$1")
  echo "== SKIPPED: $2"
}
# The browser tests: every test binary that drives Chromium through tests/common/browser.rs
# (found by its use of that module, so a new browser suite is skipped without Chromium too).
browser_tests="$(grep -l 'browser::' tests/*.rs | sed 's|tests/\(.*\)\.rs|binary(\1)|' | paste -sd'|' | sed 's/|/ | /g')"
[ -n "$browser_tests" ] || browser_tests='none()'

# Runs a command as an unprivileged user (PostgreSQL refuses to run as root).
as_service_user() {
  if [ "$is_root" = 1 ]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

# --- 1. Debian packages -----------------------------------------------------------------------
tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
url_host() { local u="${1#*://}"; u="${u#*@}"; u="${u%%/*}"; echo "${u%%:*}"; }
url_port() {
  local u="${1#*://}"
  u="${u#*@}"
  u="${u%%/*}"
  if [[ "$u" == *:* ]]; then echo "${u##*:}"; else echo "$2"; fi
}
pg_url="${LLMAGE_TEST_DATABASE_URL:-${LLMAGE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}"
redis_url="${LLMAGE_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
pg_reachable=0
tcp_open "$(url_host "$pg_url")" "$(url_port "$pg_url" 5432)" && pg_reachable=1
redis_reachable=0
tcp_open "$(url_host "$redis_url")" "$(url_port "$redis_url" 6379)" && redis_reachable=1
find_pg_bin() { find /usr/lib/postgresql -maxdepth 3 -name "$1" -path '*/bin/*' 2>/dev/null | sort -V | tail -n 1; }

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v node >/dev/null || need_apt+=(nodejs)         # runs the docs' JavaScript example
command -v openssl >/dev/null || need_apt+=(openssl)    # keys for scripts/schemathesis.sh
# The console's browser tests drive Debian's Chromium through chromedriver.
[ -x /usr/bin/chromium ] || need_apt+=(chromium fonts-noto-cjk)
[ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ "$pg_reachable" = 0 ] && [ -z "$(find_pg_bin initdb)" ]; then need_apt+=(postgresql); fi
if [ "$redis_reachable" = 0 ] && ! command -v redis-server >/dev/null; then need_apt+=(redis-server); fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$is_root" = 1 ] && [ -z "${LLMAGE_TEST_NO_INSTALL:-}" ]; then
    echo "== installing: ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
    # The postgresql package starts a cluster on 5432; use it.
    tcp_open "$(url_host "$pg_url")" "$(url_port "$pg_url" 5432)" && pg_reachable=1
  else
    echo "== not installing (not root, or LLMAGE_TEST_NO_INSTALL): ${need_apt[*]}"
  fi
fi
command -v curl >/dev/null || { echo "curl is needed (apt-get install curl)" >&2; exit 1; }

# --- 2. Python tools in .venv-test/ -----------------------------------------------------------
venv=.venv-test
python_ok=0
if [ -x "$venv/bin/python" ] || python3 -m venv "$venv" >/dev/null 2>&1; then
  if "$venv/bin/python" -c 'import openai, moto.server, flask_cors, schemathesis, openapi_spec_validator, requests' 2>/dev/null ||
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      openai 'moto[server]' schemathesis openapi-spec-validator requests; then
    python_ok=1
    export PATH="$PWD/$venv/bin:$PATH"
    export VIRTUAL_ENV="$PWD/$venv"
  fi
fi
if [ "$python_ok" = 0 ]; then
  skip 'binary(s3) | test(openai_python_sdk_works) | test(the_official_python_sdk_works_on_both_bases) | test(the_official_node_sdk_works_on_both_bases) | test(the_document_is_valid_openapi_3_1_and_matches_the_router) | test(the_docs_examples_run_against_the_demo_server)' \
    "Python tests (S3 via moto, the OpenAI SDK, the OpenAPI validator, the docs' examples): no Python virtual environment (apt-get install python3-venv)"
elif ! command -v node >/dev/null; then
  skip 'test(the_docs_examples_run_against_the_demo_server) | test(the_official_node_sdk_works_on_both_bases)' "the docs' examples and the OpenAI Node SDK: no Node.js (apt-get install nodejs)"
fi
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  skip "$browser_tests" "browser tests of the console: no /usr/bin/chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)"
fi
if [ "$is_root" = 0 ]; then
  skip 'test(a_full_disk_fails_cleanly_and_recovers_without_a_restart)' "the full-disk test: mounting its small tmpfs needs root"
fi

# --- 3. Redis and PostgreSQL ------------------------------------------------------------------
free_port() {
  local p
  for p in $(shuf -i 20000-60000 -n 50); do
    tcp_open 127.0.0.1 "$p" || { echo "$p"; return; }
  done
  return 1
}
wait_port() {
  local i
  for i in $(seq 1 100); do
    tcp_open 127.0.0.1 "$1" && return 0
    sleep 0.1
  done
  return 1
}
if [ "$redis_reachable" = 0 ] && [ -z "${LLMAGE_TEST_NO_START:-}" ] && command -v redis-server >/dev/null; then
  port="$(free_port)"
  redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --daemonize no >"$work/redis.log" 2>&1 &
  redis_pid=$!
  if wait_port "$port"; then
    redis_url="redis://127.0.0.1:$port/0"
    redis_reachable=1
    echo "== started Redis for this run on 127.0.0.1:$port"
  fi
fi
if [ "$redis_reachable" = 1 ]; then
  export LLMAGE_TEST_REDIS_URL="$redis_url"
else
  skip 'test(rate_limits_are_shared_through_redis)' "the shared rate-limit test: no Redis at $redis_url and none could be started (apt-get install redis-server)"
fi

if [ "$pg_reachable" = 0 ] && [ -n "${LLMAGE_TEST_DATABASE_URL:-}" ]; then
  echo "LLMAGE_TEST_DATABASE_URL is set but nothing listens at $pg_url" >&2
  exit 1
fi
if [ "$pg_reachable" = 0 ] && [ -z "${LLMAGE_TEST_NO_START:-}" ] && [ -n "$(find_pg_bin initdb)" ]; then
  bin="$(dirname "$(find_pg_bin initdb)")"
  port="$(free_port)"
  mkdir -p "$work/pg"
  [ "$is_root" = 1 ] && chown nobody "$work/pg"
  if as_service_user "$bin/initdb" -D "$work/pg" -U postgres -A trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1 &&
    as_service_user "$bin/pg_ctl" -D "$work/pg" -l "$work/pg/server.log" -w -t 30 \
      -o "-p $port -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300" start >/dev/null; then
    pg_started="$bin"
    pg_url="postgres://postgres@127.0.0.1:$port/postgres"
    pg_reachable=1
    echo "== started PostgreSQL for this run on 127.0.0.1:$port"
  else
    echo "== could not start PostgreSQL from $bin:"
    cat "$work/initdb.log" "$work/pg/server.log" 2>/dev/null | tail -n 5
  fi
fi
if [ "$pg_reachable" = 1 ]; then
  export LLMAGE_TEST_POSTGRES_URL="$pg_url"
  # This run's databases only: the cleanup below drops exactly these.
  export LLMAGE_TEST_DB_PREFIX="llmage_test_r${run_id}_"
  drop_run_databases=1
else
  skip 'test(a_database_outage_answers_503_and_recovers_without_a_restart)' \
    "the database-outage test and the PostgreSQL pass: no PostgreSQL at $pg_url and none could be started (apt-get install postgresql)"
fi

command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

filter() {
  local expr="$1" e
  [ -n "${LLMAGE_TEST_ONLY:-}" ] && expr="($expr) & ($LLMAGE_TEST_ONLY)"
  for e in "${excluded[@]}"; do expr="($expr) & !($e)"; done
  echo "$expr"
}

# --- 4. The tests ------------------------------------------------------------------------------
export RUST_BACKTRACE=0
unset LLMAGE_TEST_DATABASE_URL
if [ ${#excluded[@]} -eq 0 ] && [ -z "${LLMAGE_TEST_ONLY:-}" ]; then
  cargo nextest run --profile ci
else
  cargo nextest run --profile ci -E "$(filter 'all()')"
fi

# schemathesis against the demo server, with the binary the tests just built.
if [ "${LLMAGE_SCHEMATHESIS_SECS:-60}" = 0 ]; then
  echo "== schemathesis left out (LLMAGE_SCHEMATHESIS_SECS=0)"
elif [ "$python_ok" = 1 ] && command -v openssl >/dev/null; then
  scripts/schemathesis.sh "${LLMAGE_SCHEMATHESIS_SECS:-60}"
else
  echo "== SKIPPED: schemathesis: needs the Python virtual environment and openssl"
fi

if [ "$pg_reachable" = 1 ]; then
  echo "== integration tests on PostgreSQL ($pg_url)"
  LLMAGE_TEST_DATABASE_URL="$pg_url" cargo nextest run --profile ci \
    -E "$(filter "kind(test) & !binary(openapi) & !($browser_tests)")"
fi
