//! Which replica analyzes which estate (issue 16): several `anju serve`
//! processes share one PostgreSQL store, and each estate's alerts are owned
//! by exactly one analyzer at a time.
//!
//! On PostgreSQL a [`Leases`] is one connection of its own holding
//! session-level advisory locks: a shared one that says "a replica is
//! here" (so the replicas can count each other and share the estates
//! fairly) and an exclusive one per estate it analyzes. The locks last as
//! long as the connection: a replica that dies — even by SIGKILL — closes
//! its socket, PostgreSQL ends the session and frees every lock, and the
//! others take the estates over at their next look. The holder checks its
//! connection periodically ([`Leases::check`]) and stops analyzing when it
//! is gone (the locks went with it). On SQLite (one process by
//! construction) every lease is granted.

use crate::{Backend, Result, Store};
use sqlx::{Connection as _, Row as _};
use std::collections::BTreeSet;

/// The advisory-lock namespace (first key) of the replicas' presence lock.
const PRESENCE: i32 = 7315;
/// The namespace of the per-estate analyzer locks (second key:
/// `hashtext(name)`).
const ESTATE: i32 = 7316;

/// This replica's leases: what it holds, on one connection.
#[derive(Debug)]
pub struct Leases {
    conn: Option<sqlx::postgres::PgConnection>,
    held: BTreeSet<String>,
}

impl Leases {
    /// The names held now.
    pub fn held(&self) -> &BTreeSet<String> {
        &self.held
    }

    /// Whether the leases are still held: on PostgreSQL, whether their
    /// connection still answers (the locks live and die with it).
    pub async fn check(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(c) => tokio::time::timeout(std::time::Duration::from_secs(5), c.ping())
                .await
                .is_ok_and(|r| r.is_ok()),
        }
    }

    /// How many replicas hold leases on this store now (this one included;
    /// 1 on SQLite).
    ///
    /// # Errors
    /// The lease connection failed.
    pub async fn replicas(&mut self) -> Result<usize> {
        let Some(c) = &mut self.conn else {
            return Ok(1);
        };
        let n: i64 = sqlx::query(&format!(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
             AND classid = {PRESENCE} AND objid = 0 AND objsubid = 2 AND database = \
             (SELECT oid FROM pg_database WHERE datname = current_database())"
        ))
        .fetch_one(c)
        .await?
        .try_get(0)?;
        Ok(usize::try_from(n).unwrap_or(1).max(1))
    }

    /// Tries to take the lease on `name`; `false` while another replica
    /// holds it (true at once when this one does).
    ///
    /// # Errors
    /// The lease connection failed.
    pub async fn try_take(&mut self, name: &str) -> Result<bool> {
        if self.held.contains(name) {
            return Ok(true);
        }
        if let Some(c) = &mut self.conn {
            let got: bool = sqlx::query("SELECT pg_try_advisory_lock($1, hashtext($2))")
                .bind(ESTATE)
                .bind(name)
                .fetch_one(c)
                .await?
                .try_get(0)?;
            if !got {
                return Ok(false);
            }
        }
        self.held.insert(name.to_owned());
        Ok(true)
    }

    /// Gives the lease on `name` up (another replica takes it at its next
    /// look).
    ///
    /// # Errors
    /// The lease connection failed.
    pub async fn give_up(&mut self, name: &str) -> Result<()> {
        if !self.held.remove(name) {
            return Ok(());
        }
        if let Some(c) = &mut self.conn {
            sqlx::query("SELECT pg_advisory_unlock($1, hashtext($2))")
                .bind(ESTATE)
                .bind(name)
                .execute(c)
                .await?;
        }
        Ok(())
    }

    /// Gives every lease up now.
    pub async fn release(self) {
        if let Some(c) = self.conn {
            if let Err(e) = c.close().await {
                tracing::debug!(error = %e, "Lease connection not closed cleanly (the locks go with it).");
            }
        }
    }
}

impl Store {
    /// This replica's leases, holding none yet: on PostgreSQL a connection
    /// of their own that marks the replica present.
    ///
    /// # Errors
    /// The database could not be reached.
    pub async fn leases(&self) -> Result<Leases> {
        let url = match (&self.backend, &self.pg_url) {
            (Backend::Postgres, Some(u)) => u.0.clone(),
            _ => {
                return Ok(Leases {
                    conn: None,
                    held: BTreeSet::new(),
                })
            }
        };
        let mut conn = sqlx::postgres::PgConnection::connect(&url).await?;
        // The server notices a holder that vanished without closing its
        // socket (a network split) within seconds, not TCP's two hours, and
        // frees the locks for the others.
        for set in [
            "SET tcp_keepalives_idle = 5",
            "SET tcp_keepalives_interval = 2",
            "SET tcp_keepalives_count = 3",
            "SET tcp_user_timeout = 10000",
            "SET application_name = 'anju-leases'",
        ] {
            sqlx::query(set).execute(&mut conn).await?;
        }
        sqlx::query("SELECT pg_advisory_lock_shared($1, 0)")
            .bind(PRESENCE)
            .execute(&mut conn)
            .await?;
        Ok(Leases {
            conn: Some(conn),
            held: BTreeSet::new(),
        })
    }
}
