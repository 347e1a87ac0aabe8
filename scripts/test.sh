#!/usr/bin/env bash
# Runs the whole test suite, then checks that the suite left no lab behind.
# Needs root: the tests build real network namespaces, links and qdiscs (all named ql*,
# addresses in 198.18.0.0/15; nothing of the host is touched).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo nextest run --workspace --no-fail-fast "$@"
# After every test has ended: no namespace or link of ours may remain.
cargo nextest run --workspace --run-ignored only -E "test(=no_lab_leftovers_remain)"
