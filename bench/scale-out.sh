#!/usr/bin/env bash
# Scale-out scenario: two `shrooms serve` replicas on one PostgreSQL database.
#
# 1. Throughput: the people-directory load of bench/people.lua (lists and
#    searches, bearer token) against one replica, then the same total number
#    of connections split between two replicas (one wrk per replica, run at
#    the same time; throughput is the sum, p99 the worse of the two).
# 2. Correctness (bench/scale_out_check.py): concurrent creations through
#    both replicas, each acknowledged one present exactly once; imports
#    committed through both replicas, each background job run exactly once.
#
# PIN=1 gives each replica one core of its own (`taskset -c 0` and `-c 1`;
# the one-replica run then has one core too): on a machine with few cores,
# this is how a second replica on its own server is imitated. PostgreSQL and
# wrk are not pinned.
#
# Prints and writes bench/results/scale-out.txt (scale-out-pinned.txt with PIN=1).
# Usage: bash bench/scale-out.sh
# knobs: SCALE=20000 DURATION=20s CONNS=64 WRITES=100 (per writer, 8 writers) PIN=0
# Needs: wrk (installed if missing), PostgreSQL at 127.0.0.1:5432 (trust).
set -euo pipefail
cd "$(dirname "$0")/.."
SCALE="${SCALE:-20000}"
DURATION="${DURATION:-20s}"
CONNS="${CONNS:-64}"
WRITES="${WRITES:-100}"
PIN="${PIN:-0}"
PIN_A=(); PIN_B=(); OUT=bench/results/scale-out.txt
if [ "$PIN" = 1 ]; then PIN_A=(taskset -c 0); PIN_B=(taskset -c 1); OUT=bench/results/scale-out-pinned.txt; fi
PG_ADMIN="${SHROOMS_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shrooms-target}"
cargo build --release -p shrooms -q
BIN="$CARGO_TARGET_DIR/release/shrooms"
mkdir -p bench/results
PORT_A=18111
PORT_B=18112
A="http://127.0.0.1:$PORT_A"
B="http://127.0.0.1:$PORT_B"

hwm_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
wait_ready() {
  for _ in $(seq 1 400); do curl -fs "$1/healthz" >/dev/null 2>&1 && return 0; sleep 0.025; done
  echo "server not ready at $1" >&2; return 1
}
# "Requests/sec" and the 99th percentile (in ms) of a wrk --latency output.
rps() { awk '/^Requests\/sec/ {print $2}' <<<"$1"; }
p99_ms() {
  awk '$1 == "99%" { v = $2; u = v; gsub(/[0-9.]/, "", u); sub(/[a-z]+$/, "", v);
    if (u == "us") v = v / 1000; else if (u == "s") v = v * 1000; print v }' <<<"$1"
}
errors() { awk '/Non-2xx|Socket errors/ {print}' <<<"$1" | tr '\n' ' '; }

data=$(mktemp -d /tmp/shrooms-scaleout-XXXX)
# Both replicas share the database and the data folder (uploaded files), as
# on two servers with a shared volume.
export SHROOMS_DATA="$data" SHROOMS__LOG=warn
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS shrooms_scaleout WITH (FORCE)" -c "CREATE DATABASE shrooms_scaleout" >/dev/null
export SHROOMS_DATABASE_URL="${PG_ADMIN%/*}/shrooms_scaleout"
"$BIN" migrate >/dev/null
"$BIN" demo --scale "$SCALE" >/dev/null 2>&1

SHROOMS_LISTEN="127.0.0.1:$PORT_A" "${PIN_A[@]}" "$BIN" serve & pid_a=$!
SHROOMS_LISTEN="127.0.0.1:$PORT_B" "${PIN_B[@]}" "$BIN" serve & pid_b=$!
trap 'kill $pid_a $pid_b 2>/dev/null; rm -rf "$data"' EXIT
wait_ready "$A"
wait_ready "$B"
token=$(curl -fs -X POST "$A/api/v1/auth/token" -H 'content-type: application/json' \
  -d '{"email":"demo@example.org","password":"demo-password"}' | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
orgs=$(curl -fs "$A/api/v1/orgs?limit=200" -H "authorization: Bearer $token" \
  | python3 -c 'import sys,json; print(" ".join(o["slug"] for o in json.load(sys.stdin)["items"]))')
export SHROOMS_TOKEN="$token" SHROOMS_ORGS="$orgs"

# Warm both replicas (caches, connection pools, PostgreSQL's buffers).
wrk -t1 -c$((CONNS / 2)) -d5s -s bench/people.lua "$A" >/dev/null & w=$!
wrk -t1 -c$((CONNS / 2)) -d5s -s bench/people.lua "$B" >/dev/null
wait $w

one=$(wrk -t2 -c"$CONNS" -d"$DURATION" --latency -s bench/people.lua "$A")
wrk -t1 -c$((CONNS / 2)) -d"$DURATION" --latency -s bench/people.lua "$A" >"$data/a.txt" & w=$!
wrk -t1 -c$((CONNS / 2)) -d"$DURATION" --latency -s bench/people.lua "$B" >"$data/b.txt"
wait $w
two_a=$(cat "$data/a.txt")
two_b=$(cat "$data/b.txt")
rps1=$(rps "$one")
rps2=$(echo "$(rps "$two_a") + $(rps "$two_b")" | bc)
p99_2=$(printf '%s\n%s\n' "$(p99_ms "$two_a")" "$(p99_ms "$two_b")" | sort -g | tail -n1)

first_org=${orgs%% *}
check=$(python3 bench/scale_out_check.py "$A" "$B" "$token" "$first_org" "$WRITES" 2>&1) && ok=yes || ok=no
{
  echo "scale-out: two shrooms serve replicas on one PostgreSQL database$([ "$PIN" = 1 ] && echo ", each pinned to one core of its own")"
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "data: shrooms demo --scale $SCALE ($(echo "$orgs" | wc -w) organisations); load: bench/people.lua (half lists, half searches), $CONNS connections in all, $DURATION"
  echo
  echo "one replica:  $rps1 req/s, p99 $(p99_ms "$one") ms  $(errors "$one")"
  echo "two replicas: $rps2 req/s ($(rps "$two_a") + $(rps "$two_b")), p99 $p99_2 ms (worse of the two)  $(errors "$two_a")$(errors "$two_b")"
  echo "peak memory (VmHWM): replica a $(($(hwm_kb $pid_a) / 1024)) MiB, replica b $(($(hwm_kb $pid_b) / 1024)) MiB"
  echo
  echo "correctness ($WRITES creations per writer, 4 writers per replica):"
  echo "$check"
  echo
  echo "---- wrk, one replica"
  echo "$one"
  echo "---- wrk, two replicas: a"
  echo "$two_a"
  echo "---- wrk, two replicas: b"
  echo "$two_b"
} | tee "$OUT"
psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS shrooms_scaleout WITH (FORCE)" >/dev/null || true
[ "$ok" = yes ]
