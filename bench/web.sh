#!/usr/bin/env bash
# wrk against `qoelab serve`'s sessions API with 10,000 stored sessions, on SQLite and on
# PostgreSQL, beside /healthz (the HTTP stack's ceiling on this machine) in the same run.
#   ./bench/web.sh                       # 10 s per run, 2 threads, 32 connections
#   DURATION=30s CONNECTIONS=64 ./bench/web.sh
# Target (issue 8): >= 5000 requests/s with p99 < 20 ms. Lists are kept for a second (see
# web/src/totals.rs); the last run of each backend sends Cache-Control: no-cache and so
# measures the database path on every request. PostgreSQL from QOELAB_TEST_PG
# (default postgres://qoelab:qoelab@127.0.0.1/postgres): a scratch database is created and
# dropped. Installs wrk with apt if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
SESSIONS=${SESSIONS:-10000}
PG=${QOELAB_TEST_PG:-postgres://qoelab:qoelab@127.0.0.1/postgres}
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null
cargo build --release --quiet --bin qoelab -p qoelab
cargo build --release --quiet -p qoelab-web --example seed_sessions
qoelab=target/release/qoelab
seed=target/release/examples/seed_sessions

work=$(mktemp -d)
pgdb="qlbench_$$"
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
  psql -q "$PG" -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A random page of 50 of the campaign's sessions (sorted by seq), with extra headers.
lua() {
  cat <<LUA
math.randomseed(7)
request = function()
  local page = math.random(0, $((SESSIONS / 50 - 1)))
  return wrk.format(nil, "/api/v1/sessions?campaign_id=1&per_page=50&page=" .. page, {$1})
end
LUA
}
lua "" > "$work/pages.lua"
lua '["Cache-Control"] = "no-cache"' > "$work/fresh.lua"

# Prints "requests/s p50_ms p99_ms" of one wrk run against URL (optional Lua script).
measure() {
  local out
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency ${2:+-s "$2"} "$1")
  echo "$out" > "$work/last.txt"
  local rps p50 p99 errors
  rps=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  errors=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99") ${errors:-0}"
}
to_ms() { # wrk prints 1.23ms, 456.00us or 1.2s
  case "$1" in
    *us) awk -v v="${1%us}" 'BEGIN {printf "%.2f", v / 1000}' ;;
    *ms) awk -v v="${1%ms}" 'BEGIN {printf "%.2f", v}' ;;
    *s) awk -v v="${1%s}" 'BEGIN {printf "%.2f", v * 1000}' ;;
  esac
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) before the runs"
printf "%-9s %-34s %12s %9s %9s %8s %12s\n" backend endpoint "requests/s" "p50 ms" "p99 ms" non-2xx "vs target"
for backend in sqlite postgres; do
  if [ "$backend" = sqlite ]; then
    url="sqlite://$work/bench.db"
  else
    psql -q "$PG" -c "CREATE DATABASE $pgdb"
    url="${PG%/*}/$pgdb"
  fi
  "$seed" "$url" "$SESSIONS"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  RUST_LOG=error "$qoelab" serve --listen "127.0.0.1:$port" --database "$url" --agent /nonexistent.sock \
    2>"$work/serve-$backend.log" &
  server=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
  base="http://127.0.0.1:$port"
  total=$(curl -sf "$base/api/v1/sessions?campaign_id=1&per_page=1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
  [ "$total" = "$SESSIONS" ] || { echo "expected $SESSIONS sessions, the API says $total" >&2; exit 1; }
  for run in "healthz|$base/healthz|" \
             "sessions, first page of 50|$base/api/v1/sessions?campaign_id=1&per_page=50|" \
             "sessions, random page of 50|$base/|$work/pages.lua" \
             "same, Cache-Control: no-cache|$base/|$work/fresh.lua"; do
    IFS='|' read -r name target script <<<"$run"
    read -r rps p50 p99 errors <<<"$(measure "$target" "$script")"
    verdict=$(awk -v r="$rps" -v p="$p99" 'BEGIN {printf "%.2fx, %s", r / 5000, (r >= 5000 && p < 20) ? "meets" : "misses"}')
    [ "$name" = healthz ] && verdict="(ceiling)"
    printf "%-9s %-34s %12s %9s %9s %8s %12s\n" "$backend" "$name" "$rps" "$p50" "$p99" "$errors" "$verdict"
  done
  kill "$server"; wait "$server" 2>/dev/null || true; server=""
done
echo "vs target: requests/s divided by 5000; meets = >= 5000 requests/s and p99 < 20 ms"
