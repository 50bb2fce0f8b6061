#!/usr/bin/env bash
# Working-day load: 64 people clicking through the people directory with
# 100 ms between clicks, reads and writes mixed (bench/workday.lua: lists
# with filters, dashboards, people added and edited, CSV exports, sign-ins),
# on SQLite and on PostgreSQL. Prints and writes
# bench/results/workday-<backend>.txt: throughput, p50/p95/p99 latency,
# error count, the server's peak resident memory.
#
# Usage: bash bench/workday-load.sh [sqlite|postgres|both] (default both)
# knobs: SCALE=20000 DURATION=30s CONNS=64 THINK_MS=100
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-both}"
SCALE="${SCALE:-20000}"
DURATION="${DURATION:-30s}"
CONNS="${CONNS:-64}"
PG_ADMIN="${SHROOMS_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shrooms-target}"
cargo build --release -p shrooms -q
BIN="$CARGO_TARGET_DIR/release/shrooms"
mkdir -p bench/results

run_one() {
  local backend=$1 port=18095
  local data; data=$(mktemp -d /tmp/shrooms-workday-XXXX)
  export SHROOMS_DATA="$data" SHROOMS_LISTEN="127.0.0.1:$port" SHROOMS__LOG=warn
  unset SHROOMS_DATABASE_URL
  if [ "$backend" = postgres ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS shrooms_workday WITH (FORCE)" -c "CREATE DATABASE shrooms_workday" >/dev/null
    export SHROOMS_DATABASE_URL="${PG_ADMIN%/*}/shrooms_workday"
  fi
  "$BIN" migrate >/dev/null
  "$BIN" demo --scale "$SCALE" >/dev/null 2>&1
  "$BIN" serve & local pid=$!
  for _ in $(seq 1 400); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.025; done
  local token; token=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/auth/token" -H 'content-type: application/json' \
      -d '{"email":"demo@example.org","password":"demo-password"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
  local orgs; orgs=$(curl -fs "http://127.0.0.1:$port/api/v1/orgs?limit=200" -H "authorization: Bearer $token" \
      | python3 -c 'import sys,json; print(" ".join(o["slug"] for o in json.load(sys.stdin)["items"]))')
  export SHROOMS_TOKEN="$token" SHROOMS_ORGS="$orgs" SHROOMS_THINK_MS="${THINK_MS:-100}"
  wrk -t2 -c"$CONNS" -d5s -s bench/workday.lua "http://127.0.0.1:$port" >/dev/null # warm-up
  local out; out=$(wrk -t2 -c"$CONNS" -d"$DURATION" -s bench/workday.lua "http://127.0.0.1:$port")
  local peak_kb; peak_kb=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
  kill $pid; wait $pid 2>/dev/null || true
  {
    echo "backend: $backend"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  machine: $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "data: shrooms demo --scale $SCALE ($(echo "$orgs" | wc -w) organisations)"
    echo "load: wrk -t2 -c$CONNS -d$DURATION -s bench/workday.lua, ${THINK_MS:-100} ms between a client's requests"
    echo "peak memory of the server (VmHWM): $((peak_kb / 1024)) MiB"
    echo "$out"
  } | tee "bench/results/workday-$backend.txt"
  rm -rf "$data"
}

case "$WHICH" in
  sqlite) run_one sqlite ;;
  postgres) run_one postgres ;;
  both) run_one sqlite; run_one postgres ;;
esac
