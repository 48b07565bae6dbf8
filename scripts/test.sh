#!/usr/bin/env bash
# The test command: installs what the suite needs, then runs every test (unit + integration) on
# SQLite, and the integration tests again on PostgreSQL when one is reachable on 127.0.0.1:5432
# (or when LLMAGE_TEST_DATABASE_URL is set; then an unreachable server fails the run).
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3 python3-pip)
command -v node >/dev/null || need_apt+=(nodejs)        # runs the docs' JavaScript example
command -v openssl >/dev/null || need_apt+=(openssl)   # keys for scripts/schemathesis.sh
# The console's browser tests drive Debian's Chromium through chromedriver.
command -v chromium >/dev/null || need_apt+=(chromium fonts-noto-cjk)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
python3 -c "import openai" 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check openai
# moto's S3 server stands in for S3 in tests/s3.rs.
python3 -c "import moto.server, flask_cors" 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check 'moto[server]'
# schemathesis fuzzes the served OpenAPI document; openapi-spec-validator validates it; requests
# runs the docs' Python example.
python3 -c "import schemathesis, openapi_spec_validator, requests" 2>/dev/null ||
  python3 -m pip install --quiet --disable-pip-version-check schemathesis openapi-spec-validator requests
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest

export RUST_BACKTRACE=0
cargo nextest run --profile ci

# schemathesis against the demo server, with the binary the tests just built.
scripts/schemathesis.sh "${LLMAGE_SCHEMATHESIS_SECS:-60}"

pg_url="${LLMAGE_TEST_DATABASE_URL:-}"
if [ -z "$pg_url" ] && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  pg_url="postgres://postgres@127.0.0.1:5432/test"
fi
if [ -n "$pg_url" ]; then
  echo "== integration tests on PostgreSQL ($pg_url)"
  LLMAGE_TEST_DATABASE_URL="$pg_url" cargo nextest run --profile ci -E 'kind(test) & !binary(console_e2e) & !binary(openapi)'
  # Each test made its own database; drop them.
  if command -v psql >/dev/null; then
    psql "$pg_url" -Atqc "SELECT datname FROM pg_database WHERE datname LIKE 'llmage_test_%'" 2>/dev/null |
      while read -r db; do psql "$pg_url" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done
  fi
else
  echo "== no PostgreSQL on 127.0.0.1:5432 and LLMAGE_TEST_DATABASE_URL unset: PostgreSQL pass skipped"
fi
