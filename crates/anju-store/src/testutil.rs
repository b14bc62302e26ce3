//! Helpers for tests that need a real store: a SQLite file in a temporary
//! directory, or a fresh PostgreSQL database (created from the `test`
//! database given by `ANJU_TEST_PG_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`, and dropped afterwards).

use crate::{Backend, Result, Store};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The PostgreSQL URL used by tests.
pub fn pg_admin_url() -> String {
    std::env::var("ANJU_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A store for one test, cleaned up on [`TestStore::cleanup`] (SQLite files
/// go with the temporary directory when dropped).
pub struct TestStore {
    pub store: Store,
    pub url: String,
    backend: Backend,
    db_name: Option<String>,
    _dir: Option<tempfile_dir::TempDir>,
}

mod tempfile_dir {
    /// A minimal temporary directory (avoids a runtime dependency).
    pub struct TempDir(pub std::path::PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }
}

impl TestStore {
    /// A fresh, migrated store of `backend`.
    ///
    /// # Errors
    /// When the database cannot be created or reached.
    pub async fn new(backend: Backend) -> Result<TestStore> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tag = format!(
            "{}_{}_{}",
            std::process::id(),
            n,
            chrono::Utc::now().timestamp_micros() % 1_000_000_000
        );
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("anju-test-{tag}"));
                std::fs::create_dir_all(&dir)
                    .map_err(|e| crate::StoreError::Config(e.to_string()))?;
                let url = format!("sqlite://{}/anju.db", dir.display());
                let store = Store::connect(&url).await?;
                Ok(TestStore {
                    store,
                    url,
                    backend,
                    db_name: None,
                    _dir: Some(tempfile_dir::TempDir(dir)),
                })
            }
            Backend::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = pg_admin_url();
                let name = format!("anju_t_{tag}");
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin).await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await?;
                let url = replace_db(&admin, &name);
                let store = Store::connect(&url).await?;
                Ok(TestStore {
                    store,
                    url,
                    backend,
                    db_name: Some(name),
                    _dir: None,
                })
            }
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Closes the pool and drops the PostgreSQL database.
    pub async fn cleanup(self) {
        self.store.close().await;
        if let Some(name) = &self.db_name {
            if let Ok(mut conn) =
                <sqlx::AnyConnection as sqlx::Connection>::connect(&pg_admin_url()).await
            {
                // FORCE: sessions still open (another store on the same
                // database, a change feed's listener) are ended.
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await
                    .ok();
            }
        }
    }
}

/// `postgres://u@h:p/db?x` with the database name replaced.
pub fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let base = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |j| j + 2) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}
