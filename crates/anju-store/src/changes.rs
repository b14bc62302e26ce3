//! PostgreSQL: every alert written, by whichever process, as a stream — what
//! feeds the live alert stream (SSE) of every `anju serve` replica, not only
//! the one whose analyzer wrote it (issue 16).
//!
//! Migration 0014 makes the alerts' trigger `NOTIFY anju_alert_changed`
//! with `"<counter> <alert id>"` at commit. [`Store::alert_changes`] starts
//! a task that `LISTEN`s on a connection of its own, reads each announced
//! alert (in its state as of now: a later change is announced again) and
//! hands it on with the counter as its sequence number. The counter follows
//! commit order, so sequence numbers mean the same on every replica.
//!
//! While the listener is down (a database restart, the network) the
//! notifications sent meanwhile are gone: the stream says so when it is
//! live again ([`AlertFeedItem::Live`] with `resumed`), and a client
//! reloads the list (`GET /alerts`) as it would after falling behind.

use crate::{Scope, Store};
use anju_core::Alert;
use sqlx::postgres::PgListener;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// The channel migration 0014's trigger notifies.
const CHANNEL: &str = "anju_alert_changed";

/// One item of [`Store::alert_changes`].
#[derive(Debug, Clone)]
pub enum AlertFeedItem {
    /// An alert as stored after the write numbered `seq` (the alert
    /// list's change counter).
    Change { seq: i64, alert: Box<Alert> },
    /// The stream follows the database from here on. `resumed`: after an
    /// interruption, during which alerts written were not announced.
    Live { resumed: bool },
}

impl Store {
    /// PostgreSQL: every alert written from now on, by any process, in
    /// commit order; `None` on SQLite (one process: its own writers
    /// publish). The task ends when the receiver is dropped.
    pub fn alert_changes(&self) -> Option<mpsc::Receiver<AlertFeedItem>> {
        let url = self.pg_url.as_ref()?.0.to_string();
        let (tx, rx) = mpsc::channel(1024);
        let store = self.clone();
        tokio::spawn(async move {
            let mut first = true;
            loop {
                tokio::select! {
                    r = follow(&url, &store, &tx, first) => match r {
                        Ok(true) => return,
                        Ok(false) => debug!("Alert stream lost its connection; reconnecting."),
                        Err(e) => warn!(error = %e, "Alert stream interrupted; reconnecting in a second."),
                    },
                    () = tx.closed() => return,
                }
                first = false;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        Some(rx)
    }
}

/// One connection: `LISTEN`, then read and pass on each announced alert.
/// `Ok(true)`: the receiver is gone; `Ok(false)`: the connection was lost.
async fn follow(
    url: &str,
    store: &Store,
    tx: &mpsc::Sender<AlertFeedItem>,
    first: bool,
) -> crate::Result<bool> {
    let mut l = PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    let live = AlertFeedItem::Live { resumed: !first };
    if tx.send(live).await.is_err() {
        return Ok(true);
    }
    debug!("Alert stream live.");
    loop {
        // `None`: the connection was lost; what was sent meanwhile is gone.
        let Some(n) = l.try_recv().await? else {
            return Ok(false);
        };
        let Some((seq, id)) = parse(n.payload()) else {
            warn!(
                payload = n.payload(),
                "Unreadable alert announcement ignored."
            );
            continue;
        };
        // Deleted since (erasure): nothing to show.
        let Some(alert) = store.get_alert(id, &Scope::all()).await? else {
            continue;
        };
        let change = AlertFeedItem::Change {
            seq,
            alert: Box::new(alert),
        };
        if tx.send(change).await.is_err() {
            return Ok(true);
        }
    }
}

/// `"<counter> <alert id>"`.
fn parse(payload: &str) -> Option<(i64, i64)> {
    let (v, id) = payload.split_once(' ')?;
    Some((v.parse().ok()?, id.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn announcements_parse() {
        assert_eq!(super::parse("12 34"), Some((12, 34)));
        assert_eq!(super::parse("12"), None);
        assert_eq!(super::parse("x 34"), None);
        assert_eq!(super::parse("12 "), None);
    }
}
