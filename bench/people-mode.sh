#!/usr/bin/env bash
# Quick saturation run of one kind of people request, for comparing a change
# with the one before: starts `shrooms serve` (release) on an existing data
# folder loaded with `shrooms demo --scale 100000`, warms it up for 3 s, then
# drives it for 10 s with 64 connections and prints p50, p99 and throughput.
#
# Usage: SHROOMS_DATA=/tmp/pb MODE=list|search|mixed bash bench/people-mode.sh
# (load the data once: shrooms migrate && shrooms demo --scale 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shrooms-target}"
BIN="$CARGO_TARGET_DIR/release/shrooms"
PORT="${PORT:-18091}"
: "${SHROOMS_DATA:?set SHROOMS_DATA to a data folder loaded with shrooms demo}"
SHROOMS_LISTEN="127.0.0.1:$PORT" SHROOMS__LOG=warn "$BIN" serve & pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
token=$(curl -fs -X POST "http://127.0.0.1:$PORT/api/v1/auth/token" -H 'content-type: application/json' \
  -d '{"email":"demo@example.org","password":"demo-password"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
orgs=$(curl -fs "http://127.0.0.1:$PORT/api/v1/orgs?limit=200" -H "authorization: Bearer $token" \
  | python3 -c 'import sys,json; print(" ".join(o["slug"] for o in json.load(sys.stdin)["items"]))')
export SHROOMS_MODE="${MODE:-mixed}" SHROOMS_TOKEN="$token" SHROOMS_ORGS="$orgs"
wrk -t2 -c64 -d3s -s bench/people.lua "http://127.0.0.1:$PORT" >/dev/null
wrk -t2 -c64 -d10s --latency -s bench/people.lua "http://127.0.0.1:$PORT" | grep -E "50%|99%|Requests/sec"
