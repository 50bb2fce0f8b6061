#!/usr/bin/env bash
# Import benchmark of the platform-services issue: a 100,000-row French CSV
# export (`;`, UTF-8 with a byte-order mark, quoted fields, accents) imported
# with `shrooms import people` (release build) into an empty organisation,
# on SQLite and on PostgreSQL. Prints and writes
# bench/results/import-<backend>.txt: the time to read and check every row,
# the time of the one-transaction import, and the whole command.
#
# Usage: bash bench/import-people.sh [sqlite|postgres|both] (default both)
# Knobs: ROWS=100000, SHROOMS_BIN=<an already built binary>. Needs PostgreSQL at 127.0.0.1:5432 for postgres.
set -euo pipefail
cd "$(dirname "$0")/.."
WHICH="${1:-both}"
ROWS="${ROWS:-100000}"
PG_ADMIN="${SHROOMS_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/postgres}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/shrooms-target}"
if [ -n "${SHROOMS_BIN:-}" ]; then BIN="$SHROOMS_BIN"; else
  cargo build --release -p shrooms -q
  BIN="$CARGO_TARGET_DIR/release/shrooms"
fi
mkdir -p bench/results
WORK=$(mktemp -d /tmp/shrooms-import-bench-XXXX)
CSV="$WORK/people.csv"

# The file: reproducible, every email distinct, some quoted fields with `;`.
python3 - "$CSV" "$ROWS" <<'PY'
import random, sys
path, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
given = ["Camille", "Léa", "Hugo", "Zoé", "Aïcha", "Youssef", "Chloé", "Inès", "François", "Hélène", "Mamadou", "Kofi"]
family = ["Martin", "Lefèvre", "Dubois", "Ndiaye", "Nguyen", "Benali", "Roux", "Guérin", "Koné", "Mensah", "Bernard", "Petit"]
with open(path, "w", encoding="utf-8-sig", newline="") as f:
    f.write("Nom;Prénom;Courriel;Téléphone;Ville\r\n")
    for i in range(n):
        g, fa = rng.choice(given), rng.choice(family)
        town = '"Saint-Denis; 93"' if i % 7 == 0 else "Lyon"
        f.write(f"{fa};{g};{g.lower()}.{fa.lower()}.{i}@example.org;+33 6 {rng.randrange(100):02} {rng.randrange(100):02} {rng.randrange(100):02} {rng.randrange(100):02};{town}\r\n")
PY
echo "file: $(wc -l < "$CSV") lines, $(du -h "$CSV" | cut -f1)"

run_one() {
  local backend=$1
  local data="$WORK/data-$backend"
  mkdir -p "$data"
  export SHROOMS_DATA="$data" SHROOMS__LOG=warn
  unset SHROOMS_DATABASE_URL
  if [ "$backend" = postgres ]; then
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS shrooms_bench_import WITH (FORCE)" -c "CREATE DATABASE shrooms_bench_import" >/dev/null
    export SHROOMS_DATABASE_URL="${PG_ADMIN%/*}/shrooms_bench_import"
  fi
  "$BIN" migrate >/dev/null
  # An organisation with one person in it (the demo loader makes one).
  "$BIN" demo --scale 1 >/dev/null 2>&1
  local t0; t0=$(date +%s.%N)
  "$BIN" import people --org aesi "$CSV" >"$WORK/out-$backend.txt" 2>"$WORK/err-$backend.txt"
  local total_s; total_s=$(echo "$(date +%s.%N) - $t0" | bc)
  local count
  if [ "$backend" = postgres ]; then
    count=$(psql "$SHROOMS_DATABASE_URL" -tAc "SELECT COUNT(*) FROM people")
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS shrooms_bench_import WITH (FORCE)" >/dev/null
  else
    count=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM people').fetchone()[0])" "$data/shrooms.db")
  fi
  {
    echo "backend: $backend"
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "rows: $ROWS"
    grep -o 'checked in [0-9.]* s' "$WORK/err-$backend.txt" | sed 's/^/read + mapped + /'
    sed 's/.*\r//' "$WORK/err-$backend.txt" | grep -o 'importing: .*' | tail -1
    cat "$WORK/out-$backend.txt"
    echo "people in the database afterwards: $count"
    printf 'whole command (start, migrate check, stage, check, import): %.1f s\n' "$total_s"
  } | tee "bench/results/import-$backend.txt"
}

case "$WHICH" in
  sqlite|postgres) run_one "$WHICH" ;;
  both) run_one sqlite; run_one postgres ;;
  *) echo "usage: $0 [sqlite|postgres|both]" >&2; exit 2 ;;
esac
rm -rf "$WORK"
