#!/usr/bin/env bash
# The dependency policy in deny.toml, checked with cargo-deny (run by .ci/run after clippy):
#
#  1. Installs cargo-deny (the version below, from crates.io) when no cargo-deny is on PATH.
#  2. `cargo deny check licenses bans sources`: a license, ban or source violation fails the run.
#     Crates in several versions are only warned about, summed up in one line.
#  3. `cargo deny check advisories` (RustSec vulnerabilities, unsound/unmaintained crates, yanked
#     versions) when the advisory database can be fetched from GitHub; otherwise one
#     `== SKIPPED:` line. An unreachable network never fails the run; an advisory does.
set -euo pipefail
cd "$(dirname "$0")/.."

deny_version=0.20.2

if ! command -v cargo-deny >/dev/null; then
  echo "== installing cargo-deny $deny_version (cargo install, a few minutes)"
  cargo install --locked --quiet "cargo-deny@$deny_version"
fi
echo "== $(cargo deny --version) (deny.toml)"

# Errors only, each with the chain of crates that brings it in; then one line for the warnings.
cargo deny --locked --log-level error check --show-stats licenses bans sources
dups="$(cargo deny --locked check --hide-inclusion-graph bans 2>&1 |
  sed -n "s/^warning\[duplicate\]: found \([0-9]*\) duplicate entries for crate '\(.*\)'/\2 (\1)/p" |
  paste -sd' ' | sed 's/) /), /g')"
[ -z "$dups" ] || echo "== crates in several versions (allowed, see deny.toml [bans]): $dups"

# The advisory database lives on GitHub only. Fetch it first (git fails at once where GitHub's
# name does not resolve; the timeout covers a network that drops packets instead).
fetch_log="$(mktemp)"
trap 'rm -f "$fetch_log"' EXIT
if timeout 180 cargo deny fetch db >"$fetch_log" 2>&1; then
  cargo deny --locked --log-level error check --show-stats advisories
else
  echo "== SKIPPED: cargo deny check advisories: the advisory database (github.com/rustsec/advisory-db) is unreachable from this machine"
fi
