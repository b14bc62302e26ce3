#!/usr/bin/env bash
# Load benchmark of the dashboard API (issue 6): the alert list and the
# 24-hour access report vs a minimal axum handler on the same machine, with
# wrk (Debian package), plus the 24-hour report over a day of 1 M events.
#
#   bench/api/run.sh            # EVENTS=1000000 DURATION=10s THREADS=2 CONNS=32
#   DB=postgres://postgres@127.0.0.1:5432/anju_bench bench/api/run.sh   # PostgreSQL (database must exist)
#   ALERT_INDEX=0 bench/api/run.sh   # pages further back all from the store (the archive's path)
#   CHURN=10 bench/api/run.sh        # 10 alert writes a second meanwhile (a live site)
#
# Prints throughput ratios and p99 latencies. Idempotent: installs wrk if
# missing, reuses the seeded database under $WORK between runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
EVENTS=${EVENTS:-1000000}
DURATION=${DURATION:-10s}
THREADS=${THREADS:-2}
CONNS=${CONNS:-32}
WORK=${WORK:-/tmp/anju-bench-api}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-api}
API=${API:-127.0.0.1:38080}
MIN=${MIN:-127.0.0.1:38081}

if ! command -v wrk >/dev/null; then
    (apt-get install -y wrk || (apt-get update && apt-get install -y wrk)) >/dev/null
fi
cargo build --release -q -p anju-api --examples
mkdir -p "$WORK"
BIN=$CARGO_TARGET_DIR/release/examples

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

for a in "$API" "$MIN"; do
    if curl -s -o /dev/null "http://$a/"; then echo "port of $a is busy (set API= / MIN=)" >&2; exit 1; fi
done
"$BIN/minimal" "$MIN" 2>/dev/null & pids+=($!)
DB=${DB:-sqlite://$WORK/anju.db}
"$BIN/bench_server" --db "$DB" --listen "$API" --events "$EVENTS" --alert-index "${ALERT_INDEX:-20000}" --churn "${CHURN:-0}" \
    >"$WORK/server.out" 2>"$WORK/server.err" & pids+=($!)
for _ in $(seq 1 600); do
    curl -sf "http://$API/healthz" >/dev/null 2>&1 && break
    kill -0 "${pids[1]}" 2>/dev/null || { cat "$WORK/server.err"; exit 1; }
    sleep 1
done
curl -sf "http://$API/healthz" >/dev/null || { cat "$WORK/server.err"; exit 1; }
TOKEN=$(curl -sf -X POST "http://$API/api/v1/auth/login" \
    -H 'content-type: application/json' -d '{"username":"bench","password":"bench-pw"}' |
    sed -E 's/.*"token":"([^"]+)".*/\1/')

run() { # name url [connections] [wrk script]
    local out c=${3:-$CONNS} script=()
    [ -n "${4:-}" ] && script=(-s "$4")
    out=$(wrk -t"$THREADS" -c"$c" -d"$DURATION" --timeout 30s --latency "${script[@]}" -H "Authorization: Bearer $TOKEN" "$2")
    local rps p99
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    p99=$(echo "$out" | awk '$1=="99%" {print $2}')
    echo "$1 $rps $p99"
}

echo "== store: $(cat "$WORK/server.out")"
t0=$(date +%s%N)
curl -sf -H "Authorization: Bearer $TOKEN" "http://$API/api/v1/reports/access?estate=FCY&date=2026-03-01" -o "$WORK/report.json"
t1=$(date +%s%N)
echo "== HTTP 24-hour report over $EVENTS events: $(( (t1 - t0) / 1000000 )) ms (events counted: $(sed -E 's/.*"events":([0-9]+).*/\1/' "$WORK/report.json"))"

MINR=$(run minimal "http://$MIN/")
LIST=$(run alerts "http://$API/api/v1/alerts?limit=50")
LIST_F=$(run alerts_filtered "http://$API/api/v1/alerts?status=open&code=tailgating&limit=50")
LIST_U=$(run alerts_uncached "http://$API/api/v1/alerts" "$CONNS" bench/api/uncached.lua)
LIST_R=$(run uncached_recent "http://$API/api/v1/alerts" "$CONNS" bench/api/uncached_recent.lua)
DEVS=$(run devices "http://$API/api/v1/devices")
REP=$(run report "http://$API/api/v1/reports/access?estate=FCY&date=2026-03-01" 2)
base=$(echo "$MINR" | awk '{print $2}')
printf '%-16s %12s %10s %8s\n' endpoint req/s p99 ratio
for l in "$MINR" "$LIST" "$LIST_F" "$LIST_U" "$LIST_R" "$DEVS" "$REP"; do
    echo "$l" | awk -v b="$base" '{printf "%-16s %12s %10s %8.3f\n", $1, $2, $3, $2 / b}'
done
echo "(wrk -t$THREADS -c$CONNS -d$DURATION, report with -c2; nproc=$(nproc); load $(cut -d' ' -f1-3 /proc/loadavg); ${DB%%:*}, $EVENTS events in the day; alert index ${ALERT_INDEX:-20000}, churn ${CHURN:-0}/s)"
echo "page cache: $(curl -sf "http://$API/metrics" | grep -E '^anju_alert_page_(cache_hits|cache_misses|index|not_modified)_total' | tr '\n' ' ')"
