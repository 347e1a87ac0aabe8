#!/usr/bin/env bash
# Flow-statistics benchmark, one command, everything side by side in one run:
#   1. offline: a synthetic pcap (PACKETS full-size frames, many TCP flows with losses,
#      retransmissions and reordering) through qoelab, tcptrace -n -l -r, tshark -q -z
#      conv,tcp and nfstream (if `pip install nfstream` worked), REPEAT times each, medians;
#   2. live (LIVE=1, needs root): an iperf3 TCP stream at RATE through a lab router, captured
#      by `qoelab capture` on the router's uplink; reports the kernel drop counter.
# Usage: bench/capture/run.sh   (env: PACKETS=1200000 FLOWS=2000 REPEAT=3 LIVE=1 RATE=1G CLI=0)
# Offline, qoelab runs as capture/examples/flows_bench: the engine as `qoelab flows FILE -o OUT`
# runs it (same reader, engine, CSV writer) without building the whole CLI; CLI=1 times
# `qoelab flows` itself. The live part needs the qoelab binary and builds it.
# The machine may be shared: the load average is printed with the figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
PACKETS=${PACKETS:-1200000}
FLOWS=${FLOWS:-2000}
REPEAT=${REPEAT:-3}
LIVE=${LIVE:-1}
RATE=${RATE:-1G}
CLI=${CLI:-0}
WORK=${WORK:-/tmp/qoelab-bench}
mkdir -p "$WORK"

echo "== build (release)"
cargo build --release --quiet -p qoelab-capture --example synth_pcap --example flows_bench
if [ "$LIVE" = 1 ] || [ "$CLI" = 1 ]; then
  cargo build --release --quiet --bin qoelab
fi
QOELAB=$PWD/target/release/qoelab
FLOWS_BENCH=$PWD/target/release/examples/flows_bench
PCAP=$WORK/synth.pcap
if [ ! -f "$PCAP.$PACKETS.$FLOWS" ]; then
  ./target/release/examples/synth_pcap "$PCAP" "$PACKETS" "$FLOWS"
  touch "$PCAP.$PACKETS.$FLOWS"
fi
cat "$PCAP" > /dev/null # warm the page cache for every tool alike

# measure NAME CMD...: REPEAT runs; prints "NAME median_wall median_cpu max_rss_kb".
measure() {
  local name=$1; shift
  : > "$WORK/$name.runs"
  for _ in $(seq "$REPEAT"); do
    /usr/bin/time -f "%e %U %S %M" -o "$WORK/time" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err"
    tail -n 1 "$WORK/time" >> "$WORK/$name.runs"
  done
  local mid=$(( (REPEAT + 1) / 2 ))
  local wall cpu rss
  wall=$(awk '{print $1}' "$WORK/$name.runs" | sort -g | sed -n "${mid}p")
  cpu=$(awk '{print $2 + $3}' "$WORK/$name.runs" | sort -g | sed -n "${mid}p")
  rss=$(awk '{print $4}' "$WORK/$name.runs" | sort -g | tail -n 1)
  echo "$name $wall $cpu $rss"
}

echo "== offline: $PACKETS packets, load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
{
  if [ "$CLI" = 1 ]; then
    measure qoelab "$QOELAB" flows "$PCAP" -o "$WORK/qoelab.csv"
  else
    measure qoelab "$FLOWS_BENCH" "$PCAP" "$WORK/qoelab.csv"
  fi
  measure tcptrace tcptrace -n -l -r "$PCAP"
  measure tshark tshark -r "$PCAP" -q -z conv,tcp
  if python3 -c "import nfstream" 2>/dev/null; then
    measure nfstream python3 -c "
import sys
from nfstream import NFStreamer
n = sum(1 for _ in NFStreamer(source=sys.argv[1], statistical_analysis=True, n_dissections=0, n_meters=1))
print(n, 'flows')" "$PCAP"
  fi
} > "$WORK/results"
awk -v p="$PACKETS" '
  NR == 1 {qw = $2; qc = $3}
  {rows[NR] = $0}
  END {
    printf "%-10s %8s %8s %10s %10s %12s %12s %9s\n", "tool", "wall_s", "cpu_s", "Mpps_wall", "Mpps_cpu", "qoelab_x_wall", "qoelab_x_cpu", "peak_MiB"
    for (i = 1; i <= NR; i++) {
      split(rows[i], f, " ")
      printf "%-10s %8.2f %8.2f %10.2f %10.2f %12.1f %12.1f %9.0f\n", f[1], f[2], f[3], p / f[2] / 1e6, p / f[3] / 1e6, f[2] / qw, f[3] / qc, f[4] / 1024
    }
  }' "$WORK/results"
echo "(Mpps_cpu = packets / (user + sys) seconds: the one-core rate; qoelab_x = how many times faster qoelab is)"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

[ "$LIVE" = 1 ] || exit 0
echo "== live: iperf3 at $RATE through a lab router, qoelab capture on the uplink"
LAB=bch$$
LAB=${LAB:0:6}
"$QOELAB" lab up --name "$LAB" > /dev/null
trap '"$QOELAB" lab down --name "$LAB" > /dev/null' EXIT
ip netns exec "ql$LAB-server" iperf3 -s -1 -D
sleep 0.5
"$QOELAB" capture "ql$LAB-wan" --netns "ql$LAB-router" --seconds 14 --proto tcp \
  -o "$WORK/live.csv" 2> "$WORK/live.summary" &
capture=$!
sleep 1
ip netns exec "ql$LAB-client" iperf3 -c 198.18.2.2 -t 10 -b "$RATE" -J > "$WORK/iperf.json"
wait "$capture"
python3 - "$WORK/iperf.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))["end"]["sum_sent"]
print(f"iperf3 sent {r['bits_per_second'] / 1e9:.3f} Gbit/s for {r['seconds']:.1f} s, {r['retransmits']} retransmits")
PY
grep -E "packets|kernel drops|time" "$WORK/live.summary"
echo "== load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
