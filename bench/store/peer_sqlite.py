"""Plain batched-insert peer for SQLite: Python's sqlite3 (C loop in
executemany) into the same `events` table (run.sh lets anju create the schema
first, so indexes and triggers are the same), WAL with synchronous=FULL, one
transaction per batch, ON CONFLICT DO NOTHING."""
import json, sqlite3, sys, time

path, n, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(path, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("""CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, estate TEXT NOT NULL, device TEXT NOT NULL,
    event_id TEXT NOT NULL, kind TEXT NOT NULL, ts_ms BIGINT NOT NULL, credential_kind TEXT,
    credential_id TEXT, result TEXT, direction TEXT, person_id TEXT, stranger_id TEXT,
    payload TEXT NOT NULL, received_ms BIGINT NOT NULL, UNIQUE (estate, device, event_id))""")
run = int(time.time() * 1e6)
rows = []
for i in range(n):
    ev = {"kind": "access", "estate": "E01", "device": f"E01-gr-b{i % 80}", "event_id": f"{run}-{i}",
          "ts": "2026-03-01T00:00:00Z", "credential": {"kind": "card", "id": f"C{i % 13000:08}"},
          "result": "granted", "direction": "in"}
    rows.append(("E01", ev["device"], ev["event_id"], "access", 1772323200000 + i * 250, "card",
                 ev["credential"]["id"], "granted", "in", None, None, json.dumps(ev), 0))
t = time.perf_counter()
for s in range(0, n, batch):
    db.execute("BEGIN")
    db.executemany("INSERT INTO events (estate, device, event_id, kind, ts_ms, credential_kind, credential_id, "
                   "result, direction, person_id, stranger_id, payload, received_ms) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING", rows[s:s + batch])
    db.execute("COMMIT")
secs = time.perf_counter() - t
print(json.dumps({"peer": "python-sqlite3", "events": n, "batch": batch, "seconds": round(secs, 3),
                  "events_per_s": round(n / secs)}))
