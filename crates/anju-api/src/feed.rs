//! The live alert feed and its Server-Sent Events stream.
//!
//! A relay task reads [`crate::AppState::alerts`], gives each alert the next
//! sequence number, keeps the last `sse_buffer` in a ring and re-broadcasts
//! `(seq, alert)` to SSE clients. A client that falls behind the broadcast
//! channel catches up from the ring; one that falls behind the ring misses
//! the oldest alerts (it can reload `GET /alerts`). Nothing waits for clients.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::AppState;
use anju_core::Alert;
use anju_store::Scope;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

type Item = (u64, Arc<Alert>);

pub(crate) struct Feed {
    ring: Mutex<(u64, VecDeque<Item>)>,
    cap: usize,
    tx: broadcast::Sender<Item>,
    /// Fed by the store's alert stream (PostgreSQL: every replica sees
    /// every alert, numbered by the store); this process's own publishes
    /// then only count in the metrics.
    from_store: AtomicBool,
}

impl Feed {
    pub(crate) fn new(cap: usize) -> Feed {
        let (tx, _) = broadcast::channel(256);
        Feed {
            ring: Mutex::new((0, VecDeque::with_capacity(cap))),
            cap,
            tx,
            from_store: AtomicBool::new(false),
        }
    }

    /// Puts `alert` on the feed with the next sequence number, or with
    /// `seq` when given (the store's, which only grows).
    fn push(&self, alert: Alert, seq: Option<u64>) -> u64 {
        let item = {
            let mut g = self
                .ring
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            g.0 = match seq {
                Some(s) => s.max(g.0.saturating_add(1)),
                None => g.0.saturating_add(1),
            };
            let item = (g.0, Arc::new(alert));
            if g.1.len() == self.cap {
                g.1.pop_front();
            }
            g.1.push_back(item.clone());
            item
        };
        let seq = item.0;
        // No receiver is fine: nobody is watching.
        if self.tx.send(item).is_err() {
            tracing::trace!(seq, "no SSE clients");
        }
        seq
    }

    /// Buffered alerts after `seq`, oldest first.
    fn since(&self, seq: u64) -> Vec<Item> {
        let g = self
            .ring
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1.iter().filter(|(s, _)| *s > seq).cloned().collect()
    }
}

pub(crate) fn spawn_relay(
    mut rx: broadcast::Receiver<Alert>,
    feed: Arc<Feed>,
    metrics: Arc<Metrics>,
) {
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(alert) => {
                    metrics.alert_published(alert.code.as_str());
                    if !feed.from_store.load(Ordering::Acquire) {
                        feed.push(alert, None);
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "alert relay lagged");
                    metrics.feed_lagged(n);
                }
                Err(RecvError::Closed) => break,
            }
        }
    });
}

/// Feeds the SSE ring from the store's alert stream instead of this
/// process's publishes (PostgreSQL; see `anju_store::AlertFeedItem`).
pub(crate) fn follow_store(
    mut rx: tokio::sync::mpsc::Receiver<anju_store::AlertFeedItem>,
    feed: Arc<Feed>,
    metrics: Arc<Metrics>,
) {
    feed.from_store.store(true, Ordering::Release);
    tokio::spawn(async move {
        while let Some(item) = rx.recv().await {
            match item {
                anju_store::AlertFeedItem::Change { seq, alert } => {
                    feed.push(*alert, u64::try_from(seq).ok());
                }
                anju_store::AlertFeedItem::Live { resumed: false } => {
                    tracing::debug!("The live alert stream follows the store.");
                }
                anju_store::AlertFeedItem::Live { resumed: true } => {
                    tracing::warn!(
                        "The live alert stream missed changes while the database was \
                         unreachable; clients should reload the alert list."
                    );
                    metrics.feed_lagged(1);
                }
            }
        }
    });
}

/// Which alerts a subscriber may see.
struct Filter {
    scope: Scope,
    /// Field staff: the `(estate, building)` pairs of their grids.
    buildings: Option<HashSet<(String, String)>>,
}

impl Filter {
    fn allows(&self, a: &Alert) -> bool {
        if !self.scope.allows_estate(a.estate.as_str()) {
            return false;
        }
        match &self.buildings {
            None => true,
            Some(b) => a
                .building
                .as_ref()
                .is_some_and(|bb| b.contains(&(a.estate.0.clone(), bb.0.clone()))),
        }
    }
}

/// Decrements the SSE client gauge when the stream is dropped, and counts
/// the alerts it delivered as a bulk read of personal data for the audit.
struct ClientGuard {
    metrics: Arc<Metrics>,
    reads: Arc<crate::reads::ReadTally>,
    user: String,
    delivered: u64,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.metrics.sse_client(-1);
        self.reads
            .count(&self.user, "read_alert_stream", self.delivered);
    }
}

struct StreamState {
    rx: broadcast::Receiver<Item>,
    pending: VecDeque<Item>,
    last: u64,
    feed: Arc<Feed>,
    filter: Filter,
    shutdown: tokio::sync::watch::Receiver<bool>,
    metrics: Arc<Metrics>,
    /// The stream's token, checked every few seconds: the stream ends once
    /// it expires or is revoked (logout, `POST /auth/revoke`).
    auth: Arc<crate::auth::Auth>,
    token: String,
    recheck: tokio::time::Interval,
    guard: ClientGuard,
}

/// How often a live stream re-checks its token.
const TOKEN_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// `GET /alerts/stream`: one `alert` event per alert opened or updated
/// within the caller's scope; `id` is the feed sequence; `Last-Event-ID`
/// resumes from the ring buffer.
pub async fn stream(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let last = match headers.get("last-event-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID must be a sequence number"))?,
        ),
    };
    let buildings = if auth.scope.grids.is_empty() {
        None
    } else {
        Some(state.store.buildings_of_grids(&auth.scope.grids).await?)
    };
    // Subscribe before reading the ring so nothing falls in between.
    let rx = state.feed.tx.subscribe();
    let pending: VecDeque<Item> = match last {
        Some(l) => state.feed.since(l).into(),
        None => VecDeque::new(),
    };
    if !state.metrics.try_sse_client(state.config.sse_max_clients) {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            format!(
                "{} live alert streams are open, the most this server takes; retry later",
                state.config.sse_max_clients
            ),
        ));
    }
    let user_name = auth.user.name.as_str().to_owned();
    let st = StreamState {
        rx,
        pending,
        last: last.unwrap_or(0),
        feed: state.feed.clone(),
        filter: Filter {
            scope: auth.scope,
            buildings,
        },
        shutdown: state.shutdown.subscribe(),
        metrics: state.metrics.clone(),
        auth: state.auth.clone(),
        token: auth.token.clone(),
        recheck: tokio::time::interval(TOKEN_RECHECK),
        guard: ClientGuard {
            metrics: state.metrics.clone(),
            reads: state.reads.clone(),
            user: user_name,
            delivered: 0,
        },
    };
    let s = futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if *st.shutdown.borrow() {
                return None;
            }
            if let Some((seq, a)) = st.pending.pop_front() {
                if seq <= st.last && st.last != 0 {
                    continue;
                }
                st.last = seq;
                if !st.filter.allows(&a) {
                    continue;
                }
                let data = match serde_json::to_string(&*a) {
                    Ok(d) => d,
                    Err(e) => {
                        tracing::error!(error = %e, "alert not serialisable");
                        continue;
                    }
                };
                st.guard.delivered += 1;
                let ev = Event::default()
                    .event("alert")
                    .id(seq.to_string())
                    .data(data);
                return Some((Ok::<Event, Infallible>(ev), st));
            }
            tokio::select! {
                r = st.rx.recv() => match r {
                    Ok(item) => st.pending.push_back(item),
                    Err(RecvError::Lagged(n)) => {
                        st.metrics.sse_lagged(n);
                        let missed = st.feed.since(st.last);
                        st.pending.extend(missed);
                    }
                    Err(RecvError::Closed) => return None,
                },
                _ = st.shutdown.changed() => return None,
                _ = st.recheck.tick() => {
                    // Expired or revoked: the stream ends.
                    st.auth.lookup(&st.token).await?;
                }
            }
        }
    });
    Ok(Sse::new(s).keep_alive(KeepAlive::default()).into_response())
}
