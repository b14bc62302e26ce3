//! Anju's relational store.
//!
//! One [`Store`] type over sqlx's `Any` driver serves both backends: SQLite
//! (the embedded default: one file, WAL, durable commits) and PostgreSQL (real
//! deployments). Each backend has its own migrations (`migrations/sqlite`,
//! `migrations/postgres`), applied at [`Store::connect`]. Query texts are
//! shared: numbered `$N` placeholders work in both (sqlx maps `$N` to the
//! N-th argument on SQLite too), timestamps are epoch milliseconds, and
//! booleans are integers, so that one code path — and one conformance suite —
//! covers both.
//!
//! Performance contract: events are written in multi-row batches inside one
//! transaction; a redelivered event (same estate, device and `event_id`) is
//! ignored by the unique key, never stored twice.
//!
//! Scoping: every query that returns personal data or alerts takes a
//! [`Scope`]; rows outside it are invisible (the API maps that to 404).
//!
//! Alert lifecycle (DESIGN §6a): edge workers forward findings (the central
//! inbox and the edge outbox, `findings` module); the analyzer only attaches
//! evidence to alerts that are still active, and workflow transitions are
//! compare-and-set on the status ([`Store::attach_to_alert`],
//! [`Store::transition_alert`]).

mod activity;
mod admin;
mod alerts;
mod changes;
mod events;
mod fastread;
mod feed;
mod findings;
mod images;
mod lease;
mod registry;
mod reports;
mod strangers;
mod users;

#[cfg(any(test, feature = "test-utils"))]
pub mod testutil;

use anju_core::{EstateCode, GridCode};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Executor};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

pub use activity::{OccupantActivity, UnitActivity};
pub use admin::{
    person_etag, Change, PersonDeleted, PersonPatch, StoredCredential, StoredPass, StoredRules,
    StoredWatch,
};
pub use alerts::{
    AlertFilter, AlertIndexRead, AlertPageJson, AuditEntry, IndexedAlert, Notice, NoticeStatus,
};
pub use changes::AlertFeedItem;
pub use events::{DeadLetter, EventCounts, StoredEvent, MAX_DEAD_LETTER_PAYLOAD};
pub use images::{
    photo_content_type, snapshot_url, valid_snapshot_key, ConsentWithdrawn, FaceConsent, Snapshot,
};
pub use lease::Leases;
pub use registry::ImportSummary;
pub use reports::{
    AccessReportData, AlertCodeRow, CredentialListRow, CredentialRow, DeviceRow, DeviceUptime,
    Page, PersonFilter, SightingCounts, TrafficRow,
};
pub use strangers::StoredStranger;
pub use users::{StoredUser, UserPatch, VersionedUser};

/// Which database is behind the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL {:?}: use sqlite://PATH or postgres://…",
                redact_url(url)
            )))
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("bad store configuration: {0}")]
    Config(String),
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    /// A write named a version that is no longer the stored one (another
    /// write came first): read again and retry.
    #[error("changed since it was read")]
    Stale,
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl StoreError {
    /// Worth retrying later (the database is unreachable or busy), as opposed
    /// to a bug or bad data.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Db(
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::Tls(_)
            )
        )
    }

    /// Worth retrying the same write later: [`StoreError::is_transient`], or
    /// SQLite answering busy or locked (another connection holds the write
    /// lock beyond the busy timeout). Told by SQLite's result code
    /// (`SQLITE_BUSY` = 5, `SQLITE_LOCKED` = 6, extended codes included),
    /// with the message text ("locked", "busy") as a fallback.
    pub fn is_retryable(&self) -> bool {
        if self.is_transient() {
            return true;
        }
        match self {
            StoreError::Db(sqlx::Error::Database(d)) => {
                if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    if let Some(code) = d.code().and_then(|c| c.parse::<i64>().ok()) {
                        // The primary result code is the low byte of an
                        // extended one (SQLITE_BUSY_SNAPSHOT = 517, ...).
                        if matches!(code & 0xff, 5 | 6) {
                            return true;
                        }
                    }
                }
                let m = d.message();
                m.contains("locked") || m.contains("busy")
            }
            _ => false,
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// What a caller may see: all estates, a list of estates, and for field
/// staff only some grids within them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    pub all_estates: bool,
    pub estates: Vec<EstateCode>,
    /// When non-empty, only objects in these grids (field staff).
    pub grids: Vec<(EstateCode, GridCode)>,
}

impl Scope {
    /// Everything (system tasks, the analyzer, administrators).
    pub fn all() -> Self {
        Scope {
            all_estates: true,
            ..Default::default()
        }
    }

    pub fn estates(codes: impl IntoIterator<Item = impl Into<EstateCode>>) -> Self {
        Scope {
            all_estates: false,
            estates: codes.into_iter().map(Into::into).collect(),
            grids: Vec::new(),
        }
    }

    pub fn allows_estate(&self, estate: &str) -> bool {
        (self.all_estates || self.estates.iter().any(|e| e.as_str() == estate))
            && (self.grids.is_empty() || self.grids.iter().any(|(e, _)| e.as_str() == estate))
    }
}

/// The store: a connection pool and the backend it talks to. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite only: direct read-only connections for the hottest reads
    /// (`fastread`); `None` on PostgreSQL and in-memory databases.
    readers: Option<Arc<fastread::Readers>>,
    /// PostgreSQL only: the URL, for the change feed's own connection.
    pg_url: Option<PgUrl>,
    /// PostgreSQL only: the alert list's change counter pushed by NOTIFY
    /// (`feed`), started by the first `alerts_version` call.
    feed: Arc<std::sync::OnceLock<feed::Feed>>,
}

/// A database URL that keeps its password out of `Debug` output.
#[derive(Clone)]
struct PgUrl(Arc<str>);

impl std::fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// Hides the password of a database URL for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

impl Store {
    /// Connects, creating a SQLite file if needed, and applies the backend's
    /// migrations.
    ///
    /// # Errors
    /// A bad URL, an unreachable database or a failed migration.
    pub async fn connect(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let max = match backend {
            // One writer at a time anyway; readers share WAL snapshots.
            Backend::Sqlite => 4,
            Backend::Postgres => 10,
        };
        let url = if backend == Backend::Sqlite {
            sqlite_url_with_create(url)?
        } else {
            url.to_owned()
        };
        let opts = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(10))
            // sqlx pings every idle connection before handing it out: for
            // SQLite an extra round trip to the connection's worker thread
            // per query, guarding against a failure (a dropped server
            // connection) that an open database file cannot have.
            .test_before_acquire(backend == Backend::Postgres)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL for concurrent readers, FULL so that a commit
                        // survives power loss (the outbox relies on it).
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = FULL").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                    }
                    Ok(())
                })
            });
        let pool = opts.connect(&url).await?;
        let mut store = Store {
            pool,
            backend,
            readers: None,
            pg_url: (backend == Backend::Postgres).then(|| PgUrl(Arc::from(url.as_str()))),
            feed: Arc::new(std::sync::OnceLock::new()),
        };
        store.migrate().await?;
        if backend == Backend::Sqlite {
            // After the migrations, so that the readers see the schema.
            store.readers = fastread::Readers::open(&url, 4).map(Arc::new);
        }
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        match self.backend {
            Backend::Sqlite => {
                sqlx::migrate!("./migrations/sqlite")
                    .run(&self.pool)
                    .await?
            }
            Backend::Postgres => {
                sqlx::migrate!("./migrations/postgres")
                    .run(&self.pool)
                    .await?
            }
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for the store's own tests only: every query
    /// of the project lives in this crate, behind methods.
    #[cfg(any(test, feature = "test-utils"))]
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Whether hot reads take the direct SQLite path (`fastread`).
    pub fn has_direct_reads(&self) -> bool {
        self.readers.is_some()
    }

    /// The same store with the direct SQLite readers switched off, so that
    /// every read goes through the pool (tests compare the two paths).
    #[cfg(any(test, feature = "test-utils"))]
    pub fn without_direct_reads(&self) -> Store {
        Store {
            readers: None,
            ..self.clone()
        }
    }

    /// Checks that the database answers (for `/readyz`).
    ///
    /// # Errors
    /// When it does not.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// After loading many rows at once (an import, a benchmark's seed):
    /// refreshes the planner's statistics, and on PostgreSQL the visibility
    /// map that index-only scans need — what autovacuum would do later.
    ///
    /// # Errors
    /// Database errors.
    pub async fn after_bulk_load(&self) -> Result<()> {
        let sql = match self.backend {
            Backend::Sqlite => "ANALYZE",
            Backend::Postgres => "VACUUM ANALYZE",
        };
        sqlx::query(sql).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        if let Some(f) = self.feed.get() {
            f.stop();
        }
        self.pool.close().await;
    }

    /// PostgreSQL: whether the alert change feed follows the database's
    /// notifications now (see [`Store::alerts_version`]).
    pub fn alerts_feed_live(&self) -> bool {
        self.feed.get().is_some_and(feed::Feed::is_live)
    }
}

fn sqlite_url_with_create(url: &str) -> Result<String> {
    if url.contains(":memory:") || url.contains("mode=") {
        return Ok(url.to_owned());
    }
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or(path);
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Config(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    Ok(format!("{url}{sep}mode=rwc"))
}

// ---- small helpers shared by the modules ----

pub(crate) fn ms(t: anju_core::Timestamp) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn from_ms(v: i64) -> Result<anju_core::Timestamp> {
    chrono::DateTime::from_timestamp_millis(v)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {v} out of range")))
}

pub(crate) fn parse<T: FromStr>(what: &str, s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad {what} {s:?}")))
}

pub(crate) type Row = AnyRow;

/// Builds `($1,$2,..),($k,..)` for a multi-row insert of `rows` × `cols`.
///
/// On SQLite it uses anonymous `?` placeholders instead: binding a named
/// (`$N`) parameter makes sqlx call `sqlite3_bind_parameter_name`, a linear
/// scan, for each one — quadratic in a statement with thousands of
/// parameters (measured: 20× slower batched ingest).
pub(crate) fn values_clause_for(backend: Backend, rows: usize, cols: usize) -> String {
    if backend == Backend::Sqlite {
        let row = format!("({})", vec!["?"; cols].join(","));
        return vec![row; rows].join(",");
    }
    values_clause(rows, cols)
}

/// Builds `($1,$2,..),($k,..)` for a multi-row insert of `rows` × `cols`.
pub(crate) fn values_clause(rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    let mut n = 1;
    for r in 0..rows {
        if r > 0 {
            s.push(',');
        }
        s.push('(');
        for c in 0..cols {
            if c > 0 {
                s.push(',');
            }
            s.push('$');
            s.push_str(&n.to_string());
            n += 1;
        }
        s.push(')');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction() {
        assert_eq!(redact_url("postgres://u:pw@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
        let u = PgUrl(Arc::from("postgres://u:pw@h/db"));
        assert_eq!(format!("{u:?}"), "postgres://u:***@h/db");
    }

    #[test]
    fn values() {
        assert_eq!(values_clause(2, 2), "($1,$2),($3,$4)");
        assert_eq!(values_clause_for(Backend::Sqlite, 2, 2), "(?,?),(?,?)");
    }
}
