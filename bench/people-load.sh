#!/usr/bin/env bash
# Load scenario of the core issue: 100,000 people over 50 organisations,
# listing and searching people under 64 concurrent clients on loopback, on
# SQLite and on PostgreSQL. Prints and writes bench/results/people-<backend>.txt:
# throughput, p50/p90/p99 latency, errors, server memory idle and peak,
# readiness time on an existing database.
#
# Usage: bash bench/people-load.sh [sqlite|postgres|both] (default both)
# Needs: wrk (apt-get install wrk), PostgreSQL at 127.0.0.1:5432 for postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-both}"
SCALE="${SCALE:-100000}"
DURATION="${DURATION:-30s}"
CONNS="${CONNS:-64}"
PG_ADMIN="${SHROOMS_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shrooms-target}"
cargo build --release -p shrooms -q
BIN="$CARGO_TARGET_DIR/release/shrooms"
mkdir -p bench/results

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

wait_ready() {
  local url=$1
  for _ in $(seq 1 400); do
    curl -fs "$url/healthz" >/dev/null 2>&1 && return 0
    sleep 0.025
  done
  echo "server not ready" >&2; return 1
}

run_one() {
  local backend=$1
  local data; data=$(mktemp -d /tmp/shrooms-bench-XXXX)
  local port=18090
  export SHROOMS_DATA="$data" SHROOMS_LISTEN="127.0.0.1:$port" SHROOMS__LOG=warn
  unset SHROOMS_DATABASE_URL
  if [ "$backend" = postgres ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS shrooms_bench WITH (FORCE)" -c "CREATE DATABASE shrooms_bench" >/dev/null
    export SHROOMS_DATABASE_URL="${PG_ADMIN%/*}/shrooms_bench"
  fi
  "$BIN" migrate >/dev/null
  local t0; t0=$(date +%s.%N)
  "$BIN" demo --scale "$SCALE" 2>/dev/null >/dev/null
  local load_s; load_s=$(echo "$(date +%s.%N) - $t0" | bc)

  # Readiness on an existing database: process start to first healthy answer.
  t0=$(date +%s.%N)
  "$BIN" serve & local pid=$!
  wait_ready "http://127.0.0.1:$port"
  local ready_ms; ready_ms=$(echo "($(date +%s.%N) - $t0) * 1000 / 1" | bc)
  local token; token=$(curl -fs -X POST "http://127.0.0.1:$port/api/v1/auth/token" -H 'content-type: application/json' \
      -d '{"email":"demo@example.org","password":"demo-password"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
  local orgs; orgs=$(curl -fs "http://127.0.0.1:$port/api/v1/orgs?limit=200" -H "authorization: Bearer $token" | python3 -c 'import sys,json; print(" ".join(o["slug"] for o in json.load(sys.stdin)["items"]))')
  sleep 1
  local idle_kb; idle_kb=$(rss_kb $pid)
  SHROOMS_TOKEN="$token" SHROOMS_ORGS="$orgs" wrk -t2 -c"$CONNS" -d5s -s bench/people.lua "http://127.0.0.1:$port" >/dev/null # warm-up
  local out; out=$(SHROOMS_TOKEN="$token" SHROOMS_ORGS="$orgs" wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s bench/people.lua "http://127.0.0.1:$port")
  # The same clients as people at work: each waits THINK_MS between requests.
  local out2; out2=$(SHROOMS_THINK_MS="${THINK_MS:-100}" SHROOMS_TOKEN="$token" SHROOMS_ORGS="$orgs" wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s bench/people.lua "http://127.0.0.1:$port")
  local peak_kb; peak_kb=$(hwm_kb $pid)
  kill $pid; wait $pid 2>/dev/null || true
  local norgs; norgs=$(echo "$orgs" | wc -w)
  {
    echo "backend: $backend"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB"
    echo "data: $SCALE people over $norgs organisations (shrooms demo --scale $SCALE, loaded in ${load_s}s)"
    echo "ready on existing database: ${ready_ms} ms (process start to first healthy /healthz)"
    echo "memory: idle $((idle_kb / 1024)) MiB RSS, peak under load $((peak_kb / 1024)) MiB (VmHWM)"
    echo "load 1 (saturation): wrk -t2 -c$CONNS -d$DURATION, half lists (limit 50) half searches, bearer token, no think time"
    echo "$out"
    echo "load 2 (working day): the same $CONNS clients, each waiting ${THINK_MS:-100} ms between requests"
    echo "$out2"
  } | tee "bench/results/people-$backend.txt"
  rm -rf "$data"
}

case "$WHICH" in
  sqlite) run_one sqlite ;;
  postgres) run_one postgres ;;
  both) run_one sqlite; run_one postgres ;;
esac
