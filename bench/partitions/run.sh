#!/usr/bin/env bash
# The partitioned year (issue 16): a year of the city's traffic (the
# generated 13-estate site, `anju sim site`) loaded month by month with
# COPY into a fresh PostgreSQL database's partitioned `events`, then timed:
# the load, the 24-hour access report over HTTP, the analyzer's warm-up
# (`anju serve` reading the last 30 days of events), the alert list, and
# dropping the oldest month. Results in OUT (default bench/partitions/out):
# year.txt, and the serve log.
# Usage: bench/partitions/run.sh  — env: MONTHS (12), PER_PERSON_DAY (6.8),
#        OUT, ANJU_BENCH_PG (postgres://postgres@127.0.0.1:5432).
# Needs ~20 GB of disk for 12 months and the machine to itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
PG=${ANJU_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
DB=$PG/anju_year
OUT=${OUT:-bench/partitions/out}
MONTHS=${MONTHS:-12}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
for c in psql python3 curl; do
  command -v "$c" >/dev/null || { echo "missing $c" >&2; exit 2; }
done
cargo build --release -q -p anju
BIN=$CARGO_TARGET_DIR/release/anju
rm -rf "$OUT"; mkdir -p "$OUT"
RES=$OUT/year.txt
say() { echo "$*" | tee -a "$RES"; }
ms_now() { date +%s%3N; }
say "nproc $(nproc); load average $(cut -d' ' -f1-3 /proc/loadavg); $(psql "$PG/postgres" -tAc 'SHOW server_version')"
"$BIN" sim site --out "$OUT/site" >/dev/null
# The year stays: events are kept 400 days here (the default is 200, which
# `anju serve` would enforce at its start by dropping half the year).
printf '\n[retention]\nevents_days = 400\n' >>"$OUT/site/site.toml"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS anju_year" -c "CREATE DATABASE anju_year" >/dev/null
"$BIN" import --site "$OUT/site/site.toml" --db "$DB" >/dev/null
ANJU_PASSWORD=year-password "$BIN" user add year --role supervisor --all-estates --db "$DB" >/dev/null

# The MONTHS whole months before this one, oldest first.
months=()
for k in $(seq "$MONTHS" -1 1); do months+=("$(date -u -d "$(date -u +%Y-%m-01) -$k month" +%Y-%m)"); done
first=${months[0]}
from_ms=$(( $(date -u -d "$first-01" +%s) * 1000 ))
to_ms=$(( $(date -u -d "$(date -u +%Y-%m-01) +2 month" +%s) * 1000 ))
psql "$DB" -qtAc "SELECT anju_ensure_event_partitions($from_ms, $to_ms)" >/dev/null
cols="estate, device, event_id, kind, ts_ms, credential_kind, credential_id, result, direction, person_id, stranger_id, payload, received_ms"
total_ms=0
for m in "${months[@]}"; do
  t0=$(ms_now)
  python3 bench/partitions/year.py "$OUT/site" "${m%-*}" "$((10#${m#*-}))" --per-person-day "${PER_PERSON_DAY:-6.8}" |
    psql "$DB" -qc "\\copy events($cols) FROM STDIN WITH (FORMAT csv)"
  t1=$(ms_now)
  total_ms=$(( total_ms + t1 - t0 ))
  say "month $m loaded (generated and copied) in $(( (t1 - t0) / 1000 )) s"
done
t0=$(ms_now); psql "$DB" -qc "VACUUM ANALYZE events"; t1=$(ms_now)
rows=$(psql "$DB" -tAc "SELECT count(*) FROM events")
size=$(psql "$DB" -tAc "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'events'::regclass")
parts=$(psql "$DB" -tAc "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass")
say "loaded $rows events in $((total_ms / 1000)) s ($(( rows * 1000 / (total_ms > 0 ? total_ms : 1) )) rows/s, generator included); VACUUM ANALYZE $(( (t1 - t0) / 1000 )) s; $size in $parts partitions"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
serve=
trap '[ -n "$serve" ] && kill $serve 2>/dev/null || true' EXIT
start_serve() { # warm-up days → serve running, warm-up timed
  local t_start t_warm log=$OUT/serve-warmup-$1.log
  t_start=$(ms_now)
  ANJU_DATA_DIR="$OUT/serve" ANJU_LOG=info "$BIN" serve --site "$OUT/site/site.toml" --db "$DB" \
    --listen "127.0.0.1:$port" --warmup-days "$1" >/dev/null 2>"$log" &
  serve=$!
  for _ in $(seq 1 3000); do
    grep -q "This replica runs the analyzer" "$log" && break
    kill -0 $serve || { tail "$log"; exit 1; }
    sleep 0.2
  done
  t_warm=$(ms_now)
  say "warm-up of $1 days: anju serve start to analyzer running $(( (t_warm - t_start) / 1000 )).$(( (t_warm - t_start) % 1000 / 100 )) s; $(grep -o 'Analyzer warmed up.*' "$log" | head -1 | sed 's/\x1b\[[0-9;]*m//g')"
}
start_serve 30
kill $serve; wait $serve 2>/dev/null || true
start_serve 200
token=$(curl -sf -X POST "http://127.0.0.1:$port/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"username":"year","password":"year-password"}' | sed -E 's/.*"token":"([^"]+)".*/\1/')
estate=$(psql "$DB" -tAc "SELECT code FROM estates ORDER BY code LIMIT 1")
day=$(date -u -d "$(date -u +%Y-%m-01) -1 month +14 day" +%Y-%m-%d)
times() { # url n → sorted seconds
  for _ in $(seq 1 "$2"); do
    curl -sf -o /dev/null -w '%{time_total}\n' -H "Authorization: Bearer $token" "$1"
  done | sort -n | tr '\n' ' '
}
say "24-hour report ($estate, $day) over HTTP, 7 runs (s): $(times "http://127.0.0.1:$port/api/v1/reports/access?estate=$estate&date=$day" 7)"
say "events in that day: $(curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/v1/reports/access?estate=$estate&date=$day" | sed -E 's/.*"events":([0-9]+).*/\1/')"
say "alert list (limit 50) over HTTP, 7 runs (s): $(times "http://127.0.0.1:$port/api/v1/alerts?limit=50" 7)"
kill $serve; wait $serve 2>/dev/null || true
oldest_end=$(( $(date -u -d "$first-01 +1 month" +%s) * 1000 ))
t0=$(ms_now)
dropped=$(psql "$DB" -tAc "SELECT anju_drop_event_partitions($oldest_end)")
t1=$(ms_now)
say "dropping the oldest month ($first): $(( t1 - t0 )) ms (function answered $dropped); $(psql "$DB" -tAc "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass") partitions left"
