#!/usr/bin/env bash
# Event ingest: Anju's store vs plain batched-insert peers on the same machine.
#   SQLite:     anju Store::insert_events  vs  Python sqlite3 executemany (same schema, WAL, synchronous=FULL)
#   PostgreSQL: anju Store::insert_events  vs  pgbench running a multi-row INSERT script (same table)
# Durable commits on both sides (SQLite synchronous=FULL; PostgreSQL synchronous_commit=on).
# Usage: bash bench/store/run.sh [EVENTS] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-200000}; B=${2:-1000}
PG=${ANJU_BENCH_PG:-postgres://postgres@127.0.0.1:5432}
cargo build -q --release -p anju-store --features test-utils --bench ingest
BIN=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/ingest-* | grep -v "\.d$" | head -1)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

echo "== SQLite (N=$N, batch=$B)"
a=$("$BIN" "sqlite://$tmp/anju.db" "$N" "$B" | tail -1); echo "anju: $a"
# The peer writes into the same schema (indexes, report rollup triggers):
# let anju create it with one event, then insert plainly.
"$BIN" "sqlite://$tmp/peer.db" 1 1 >/dev/null
p=$(python3 bench/store/peer_sqlite.py "$tmp/peer.db" "$N" "$B"); echo "peer: $p"
python3 -c "import json,sys; a=json.loads(sys.argv[1]); p=json.loads(sys.argv[2]); print(f'ratio anju/peer = {a[\"events_per_s\"]/p[\"events_per_s\"]:.2f}')" "$a" "$p"

echo "== PostgreSQL (N=$N, batch=$B)"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS anju_bench" -c "CREATE DATABASE anju_bench" >/dev/null
a=$("$BIN" "$PG/anju_bench" "$N" "$B" | tail -1); echo "anju: $a"
# The peer: same table, a pgbench script inserting B rows per transaction.
python3 - "$B" > "$tmp/insert.sql" <<'PY'
import sys
b = int(sys.argv[1])
print("\\set base random(1, 2000000000)")
rows = ",".join(
    f"('E01','E01-gr-b{i % 80}','p'||:base||'-{i}','access',1772323200000+{i}*250,'card','C{i:08}','granted','in',NULL,NULL,"
    f"'{{\"kind\":\"access\",\"estate\":\"E01\",\"device\":\"E01-gr-b{i % 80}\",\"event_id\":\"x\",\"ts\":\"2026-03-01T00.00.00Z\",\"credential\":{{\"kind\":\"card\",\"id\":\"C{i:08}\"}},\"result\":\"granted\",\"direction\":\"in\"}}',0)"
    for i in range(b))
print("INSERT INTO events (estate, device, event_id, kind, ts_ms, credential_kind, credential_id, result, direction, "
      "person_id, stranger_id, payload, received_ms) VALUES " + rows + " ON CONFLICT DO NOTHING;")
PY
tx=$((N / B))
out=$(pgbench -n -c 1 -t "$tx" -f "$tmp/insert.sql" "$PG/anju_bench" 2>&1)
tps=$(echo "$out" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
peer=$(python3 -c "print(round($tps * $B))")
echo "peer: {\"peer\":\"pgbench multi-row INSERT\",\"transactions\":$tx,\"batch\":$B,\"events_per_s\":$peer}"
python3 -c "import json,sys; a=json.loads(sys.argv[1]); print(f'ratio anju/peer = {a[\"events_per_s\"]/$peer:.2f}')" "$a"
psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS anju_bench" >/dev/null
