//! A direct read path for the hottest SQLite queries (the alert list).
//!
//! Through sqlx, every SQLite query is a round trip to the connection's
//! worker thread (a channel send, a wake-up, the rows copied and sent back),
//! and the pool adds a ping on release. Profiled under wrk, that hand-off —
//! not SQLite — was most of the alert list's cost (bench/README.md, "Dashboard
//! API"). This module keeps a few read-only `rusqlite` connections to the same
//! database file and runs short reads on the calling thread instead.
//!
//! It is strictly an accelerator: it never waits. When every reader is busy,
//! when SQLite answers `SQLITE_BUSY` (busy timeout 0), or on any other error,
//! the caller falls back to the sqlx path, which gives the authoritative
//! answer or error. Readers see every committed transaction (WAL snapshots
//! start at each statement), including those of other processes.
//! `PRAGMA query_only` makes a write through them impossible.

use rusqlite::{Connection, OpenFlags};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// A bound parameter of a read.
#[derive(Clone, Debug)]
pub(crate) enum Param {
    Text(String),
    Int(i64),
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(s) => s.to_sql(),
            Param::Int(i) => i.to_sql(),
        }
    }
}

/// A few read-only connections; see the module documentation.
pub(crate) struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers")
            .field("connections", &self.conns.len())
            .finish()
    }
}

impl Readers {
    /// Opens `n` readers on the database file of a `sqlite:` URL. `None` for
    /// in-memory databases (private to each connection) or when the file
    /// cannot be opened (the sqlx path then serves every read).
    pub(crate) fn open(url: &str, n: usize) -> Option<Readers> {
        if url.contains(":memory:") || url.contains("mode=memory") {
            return None;
        }
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        let path = path.split('?').next().unwrap_or(path);
        let mut conns = Vec::with_capacity(n);
        for _ in 0..n {
            let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = match Connection::open_with_flags(path, flags) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "SQLite direct readers unavailable; reads go through the pool");
                    return None;
                }
            };
            if let Err(e) = conn.execute_batch("PRAGMA query_only = ON; PRAGMA busy_timeout = 0;") {
                tracing::warn!(error = %e, "SQLite direct readers unavailable; reads go through the pool");
                return None;
            }
            conns.push(Mutex::new(conn));
        }
        Some(Readers {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a free reader; `None` when all are busy or `f` fails
    /// (the caller then uses the pool).
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for k in 0..self.conns.len() {
            let Some(slot) = self.conns.get((start + k) % self.conns.len()) else {
                continue;
            };
            let Ok(conn) = slot.try_lock() else { continue };
            return match f(&conn) {
                Ok(v) => Some(v),
                Err(e) => {
                    tracing::debug!(error = %e, "SQLite direct read failed; using the pool");
                    None
                }
            };
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_commits_and_cannot_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let w = Connection::open(&path).expect("open");
        w.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);",
        )
        .expect("schema");
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let r = Readers::open(&url, 2).expect("readers");
        let count = |r: &Readers| {
            r.with(|c| c.query_row("SELECT COUNT(*) FROM t", [], |row| row.get::<_, i64>(0)))
        };
        assert_eq!(count(&r), Some(1));
        w.execute("INSERT INTO t VALUES (2)", []).expect("insert");
        assert_eq!(count(&r), Some(2));
        // A write through a reader fails, and the failure is a fallback (None).
        assert_eq!(r.with(|c| c.execute("INSERT INTO t VALUES (3)", [])), None);
        assert!(Readers::open("sqlite::memory:", 2).is_none());
    }
}
