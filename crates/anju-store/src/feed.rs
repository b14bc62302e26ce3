//! PostgreSQL: the alert list's change counter kept in memory, pushed by
//! the database, so that a reused page costs no round trip.
//!
//! Migration 0006 makes the counter's trigger `NOTIFY anju_alerts_version`
//! with the new value at commit. The first [`Store::alerts_version`] call
//! on a PostgreSQL store starts a task that `LISTEN`s on its own connection,
//! reads the counter once (after `LISTEN`, so no commit falls between), and
//! then raises the value with every notification. While the listener is
//! down (database restart, network), the feed is marked not live and
//! `alerts_version` queries the table as before; on reconnect it re-reads.
//!
//! Consistency: a commit by this store (`insert_alert`, `update_alert`,
//! `attach_to_alert`, `transition_alert`, `import_registry`) raises the feed
//! itself before returning, so a caller reads its own writes at once. A
//! commit by another process reaches the feed with the notification,
//! normally within a millisecond; until then a reused page may lag that
//! commit. SQLite stores never start a feed (the
//! counter read there is a direct, in-process query).
//!
//! [`Store::alerts_version`]: crate::Store::alerts_version

use crate::alerts::read_alerts_version;
use sqlx::postgres::PgListener;
use sqlx::AnyPool;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::{debug, warn};

/// The channel the trigger notifies (migration 0006).
pub(crate) const CHANNEL: &str = "anju_alerts_version";

#[derive(Debug, Default)]
struct State {
    value: AtomicI64,
    live: AtomicBool,
}

/// A running feed; dropping it (with the last clone of its store) stops the
/// listener task.
pub(crate) struct Feed {
    state: Arc<State>,
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("value", &self.state.value.load(Ordering::Relaxed))
            .field("live", &self.state.live.load(Ordering::Relaxed))
            .finish()
    }
}

impl Feed {
    /// Starts the listener task; `pool` reads the counter from the table.
    pub(crate) fn start(url: String, pool: AnyPool) -> Feed {
        let state = Arc::new(State::default());
        let (stop_tx, mut stop_rx) = oneshot::channel::<()>();
        let st = state.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = listen(&url, &st, &pool) => {}
                _ = &mut stop_rx => {}
            }
            st.live.store(false, Ordering::Relaxed);
            debug!("Alert change feed stopped.");
        });
        Feed {
            state,
            stop: std::sync::Mutex::new(Some(stop_tx)),
        }
    }

    /// Stops the listener (its connection closes as the task ends).
    pub(crate) fn stop(&self) {
        let tx = self
            .stop
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(tx);
        self.state.live.store(false, Ordering::Release);
    }

    /// Whether notifications are being followed now.
    pub(crate) fn is_live(&self) -> bool {
        self.state.live.load(Ordering::Acquire)
    }

    /// The counter, when the feed is live.
    pub(crate) fn get(&self) -> Option<i64> {
        self.state
            .live
            .load(Ordering::Acquire)
            .then(|| self.state.value.load(Ordering::Acquire))
    }

    /// Raises the value to at least `v` (a commit this store just made).
    pub(crate) fn raise(&self, v: i64) {
        self.state.value.fetch_max(v, Ordering::AcqRel);
    }
}

/// Listens until the process ends; reconnects after a second on failure.
async fn listen(url: &str, st: &State, pool: &AnyPool) {
    loop {
        match session(url, st, pool).await {
            Ok(()) => debug!("Alert change feed lost its connection; reconnecting."),
            Err(e) => {
                warn!(error = %e, "Alert change feed unavailable; reading the counter per request.")
            }
        }
        st.live.store(false, Ordering::Release);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// One connection: LISTEN, read the counter, follow notifications until the
/// connection is lost (`Ok`) or something fails (`Err`).
async fn session(url: &str, st: &State, pool: &AnyPool) -> crate::Result<()> {
    let mut l = PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    let v = read_alerts_version(pool).await?;
    st.value.fetch_max(v, Ordering::AcqRel);
    st.live.store(true, Ordering::Release);
    debug!(version = v, "Alert change feed live.");
    loop {
        // `None`: the connection was lost (notifications in between are
        // gone, so the caller marks the feed not live and starts over).
        let Some(n) = l.try_recv().await? else {
            return Ok(());
        };
        let v = match n.payload().parse::<i64>() {
            Ok(v) => v,
            // Not ours (someone else NOTIFYing the channel): re-read.
            Err(_) => read_alerts_version(pool).await?,
        };
        st.value.fetch_max(v, Ordering::AcqRel);
    }
}
