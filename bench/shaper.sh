#!/usr/bin/env bash
# Shaping benchmarks side by side with tc (root; builds labs of its own and removes them):
#   bench/shaper.sh                 both parts
#   bench/shaper.sh rates           200 class rate changes: shaper, agent, tc -batch, 200 tc
#   bench/shaper.sh accuracy        one class at 1, 10, 100 Mbit/s and 1 Gbit/s, TCP
# Options after the part: --rounds N (default 21), --process-rounds N (default 5).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "uptime: $(uptime)"
cargo bench -p qoelab-agent --bench shaping -- "$@"
