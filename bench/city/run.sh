#!/usr/bin/env bash
# City soak (issue 16): bench/city/soak.py against a fresh PostgreSQL
# database, with the release build of anju. Results in OUT (default
# bench/city/out): soak.json, soak.svg, and the processes' logs in work/.
# Usage: bench/city/run.sh [DAY_S] — seconds a city-day is compressed into
#        (default 600). Env: CAMERAS (3), REPLICAS (2), OUT, ANJU_BENCH_PG.
set -euo pipefail
cd "$(dirname "$0")/../.."
DAY_S=${1:-600}
PG=${ANJU_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
OUT=${OUT:-bench/city/out}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
for c in mosquitto psql python3; do
  command -v "$c" >/dev/null || { echo "missing $c" >&2; exit 2; }
done
cargo build --release -q -p anju
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS anju_city" -c "CREATE DATABASE anju_city" >/dev/null
rm -rf "$OUT"; mkdir -p "$OUT"
echo "nproc $(nproc); load average $(cut -d' ' -f1-3 /proc/loadavg)"
python3 bench/city/soak.py --bin "$CARGO_TARGET_DIR/release/anju" --db "$PG/anju_city" --out "$OUT" \
  --day-s "$DAY_S" --cameras "${CAMERAS:-3}" --replicas "${REPLICAS:-2}"
