#!/usr/bin/env bash
# Measured QoE of each ABR algorithm through a lab router shaped to each rate: one session per
# (rate, algorithm), the table printed at the end. Needs root (it builds a lab).
#
#   bench/abr.sh                     # 60 s of media per session, rates 0.75 … 10 Mbit/s
#   MEDIA=30s RATES="1 10" ABRS=mpc bench/abr.sh
#
# The link: HTB at the rate on the router's interface toward the client, over a byte fifo of
# 100 ms (at least 15 kB) — the same setup as the crate's tests. Sessions end with the last
# download (--no-play-out; the QoE is the same). JSON records are kept in target/bench-abr/.
# Installs jq (for the table) with apt if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

MEDIA=${MEDIA:-60s}
RATES=${RATES:-"0.75 1.25 2 3 5 10"}
ABRS=${ABRS:-"buffer rate mpc"}
OUT=target/bench-abr/$(date +%Y%m%d-%H%M%S)

command -v jq >/dev/null || apt-get install -y -qq jq >/dev/null
cargo build -q
mkdir -p "$OUT"
# A copy, so that rebuilding while the benchmark runs does not change the binary under it.
cp target/debug/qoelab "$OUT/qoelab"
qoelab=$OUT/qoelab
lab=ab$(printf '%04d' $((RANDOM % 10000)))
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  "$qoelab" lab down --name "$lab" >/dev/null
}
"$qoelab" lab up --name "$lab" >/dev/null
trap cleanup EXIT

"$qoelab" workload video serve --netns "ql$lab-server" --listen 198.18.2.2:8080 2>/dev/null &
server_pid=$!
for _ in $(seq 50); do
  ip netns exec "ql$lab-client" bash -c 'echo > /dev/tcp/198.18.2.2/8080' 2>/dev/null && break
  sleep 0.1
done

shape() { # rate in Mbit/s
  local iface="ql$lab-lan" bps limit
  bps=$(awk -v r="$1" 'BEGIN { printf "%d", r * 1000000 }')
  limit=$(( bps / 80 > 15000 ? bps / 80 : 15000 ))
  ip netns exec "ql$lab-router" tc qdisc del dev "$iface" root 2>/dev/null || true
  ip netns exec "ql$lab-router" tc qdisc add dev "$iface" root handle 1: htb default 1
  ip netns exec "ql$lab-router" tc class add dev "$iface" parent 1: classid 1:1 htb rate "${bps}bit"
  ip netns exec "ql$lab-router" tc qdisc add dev "$iface" parent 1:1 handle 10: bfifo limit "$limit"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores; media per session: $MEDIA" >&2
for rate in $RATES; do
  shape "$rate"
  for abr in $ABRS; do
    echo "… $rate Mbit/s, $abr" >&2
    "$qoelab" workload video play --netns "ql$lab-client" --server http://198.18.2.2:8080 \
      --abr "$abr" --duration "$MEDIA" --no-play-out --session "$rate-$abr" --json \
      > "$OUT/$rate-$abr.json"
  done
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); records in $OUT" >&2

{
  printf 'link_mbit\tabr\tstartup_s\tstalls\tstall_s\tavg_kbit\tswitches\tqoe_lin\tqoe_log\tclass\n'
  for rate in $RATES; do
    for abr in $ABRS; do
      jq -r --arg rate "$rate" '[$rate, .abr, (.startup_delay_s * 100 | round / 100),
        .stall_count, (.stall_time_s * 100 | round / 100), (.avg_bitrate_bps / 1000 | round),
        .switch_count, (.qoe_lin * 1000 | round / 1000), (.qoe_log * 1000 | round / 1000),
        .qoe_class] | @tsv' "$OUT/$rate-$abr.json"
    done
  done
} | column -t -s $'\t'
