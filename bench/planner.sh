#!/usr/bin/env bash
# Planner benchmarks, one command: the timing targets (raa on 1,000 analytics ≤ 5 ms, exact
# placement of 24 images ≤ 10 ms, fptas ε=0.1 on 500 images ≤ 100 ms) with their ratios, then
# the simulation table (weighted QoS and saved upload for every raa × ida combination over the
# same seeded requests) for the reference network and for a constrained one.
# The machine's load is printed: rerun on a quiet machine for clean figures.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== $(date -u +%FT%TZ) on $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench -p qoelab-planner --bench planner
cargo build --release --quiet
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for network in 5mbit/100mbit 1mbit/20mbit; do
  echo
  echo "== simulation: network $network (upload/download), 2 requests/min for 40 min, seed 1"
  ./target/release/qoelab simulate --raa all --ida all --network "$network" \
    --per-minute 2 --arrival-minutes 40 --seed 1 --out "$out/$network"
done
echo "== load after: $(cut -d' ' -f1-3 /proc/loadavg)"
