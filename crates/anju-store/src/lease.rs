//! Which replica runs a singleton task (issue 16): several `anju serve`
//! processes share one PostgreSQL store, and exactly one of them runs the
//! analyzer — the owner of the alerts' lifecycle — at a time.
//!
//! On PostgreSQL a [`Lease`] is a session-level advisory lock
//! (`pg_try_advisory_lock`) held on a connection of its own: it lasts as
//! long as that connection. A replica that dies — even by SIGKILL — closes
//! its socket, PostgreSQL ends the session and frees the lock, and a
//! standby's next try takes it over. The holder checks its connection
//! periodically ([`Lease::check`]) and stops the task when it is gone (the
//! lock went with it). On SQLite (one process by construction) the lease is
//! always granted.

use crate::{Backend, Result, Store};
use sqlx::{Connection as _, Row as _};

/// The right to run the singleton task `name`; released when dropped (the
/// connection closes) or by [`Lease::release`].
#[derive(Debug)]
pub struct Lease {
    name: String,
    conn: Option<sqlx::postgres::PgConnection>,
}

impl Lease {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the lease is still held: on PostgreSQL, whether its
    /// connection still answers (the lock lives and dies with it).
    pub async fn check(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(c) => tokio::time::timeout(std::time::Duration::from_secs(5), c.ping())
                .await
                .is_ok_and(|r| r.is_ok()),
        }
    }

    /// Gives the lease up now (a standby takes it at its next try).
    pub async fn release(self) {
        if let Some(c) = self.conn {
            if let Err(e) = c.close().await {
                tracing::debug!(error = %e, "Lease connection not closed cleanly (the lock goes with it).");
            }
        }
    }
}

impl Store {
    /// Tries to take the lease on `name` (the analyzer: `"analyzer"`);
    /// `None` while another process holds it.
    ///
    /// # Errors
    /// The database could not be reached.
    pub async fn try_lease(&self, name: &str) -> Result<Option<Lease>> {
        let url = match (&self.backend, &self.pg_url) {
            (Backend::Postgres, Some(u)) => u.0.clone(),
            _ => {
                return Ok(Some(Lease {
                    name: name.to_owned(),
                    conn: None,
                }))
            }
        };
        let mut conn = sqlx::postgres::PgConnection::connect(&url).await?;
        // The server notices a holder that vanished without closing its
        // socket (a network split) within seconds, not TCP's two hours, and
        // frees the lock for a standby.
        for set in [
            "SET tcp_keepalives_idle = 5",
            "SET tcp_keepalives_interval = 2",
            "SET tcp_keepalives_count = 3",
            "SET tcp_user_timeout = 10000",
        ] {
            sqlx::query(set).execute(&mut conn).await?;
        }
        let got: bool = sqlx::query("SELECT pg_try_advisory_lock(hashtext($1))")
            .bind(format!("anju:{name}"))
            .fetch_one(&mut conn)
            .await?
            .try_get(0)?;
        if got {
            Ok(Some(Lease {
                name: name.to_owned(),
                conn: Some(conn),
            }))
        } else {
            if let Err(e) = conn.close().await {
                tracing::debug!(error = %e, "Lease probe connection not closed cleanly.");
            }
            Ok(None)
        }
    }
}
