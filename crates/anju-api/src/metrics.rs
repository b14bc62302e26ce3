//! Prometheus text metrics (`anju_` prefix) and the request-counting
//! middleware.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// `writeln!` into a String (which cannot fail).
macro_rules! w {
    ($s:expr, $($t:tt)*) => {{
        $s.push_str(&format!($($t)*));
        $s.push('\n');
    }};
}

/// Histogram buckets of request durations, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct Hist {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    n: u64,
}

/// Counters of the API process.
#[derive(Default)]
pub struct Metrics {
    http: Mutex<BTreeMap<(String, String, u16), u64>>,
    durations: Mutex<BTreeMap<String, Hist>>,
    alerts_by_code: Mutex<BTreeMap<String, u64>>,
    sse_clients: AtomicI64,
    sse_lagged: AtomicU64,
    feed_lagged: AtomicU64,
    logins_ok: AtomicU64,
    logins_failed: AtomicU64,
    webhooks_sent: AtomicU64,
    webhooks_failed: AtomicU64,
    pub(crate) alert_page_hits: AtomicU64,
    pub(crate) alert_page_misses: AtomicU64,
    pub(crate) alert_page_not_modified: AtomicU64,
}

impl Metrics {
    pub(crate) fn inc_login(&self, ok: bool) {
        if ok {
            &self.logins_ok
        } else {
            &self.logins_failed
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn alert_published(&self, code: &str) {
        *self
            .alerts_by_code
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(code.to_owned())
            .or_default() += 1;
    }

    /// Counts one more SSE client unless `max` are connected already.
    pub(crate) fn try_sse_client(&self, max: usize) -> bool {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.sse_clients
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn sse_client(&self, delta: i64) {
        self.sse_clients.fetch_add(delta, Ordering::Relaxed);
    }

    pub(crate) fn sse_lagged(&self, n: u64) {
        self.sse_lagged.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn feed_lagged(&self, n: u64) {
        self.feed_lagged.fetch_add(n, Ordering::Relaxed);
    }

    /// Counts a webhook delivery (for the notifier).
    pub fn webhook(&self, ok: bool) {
        if ok {
            &self.webhooks_sent
        } else {
            &self.webhooks_failed
        }
        .fetch_add(1, Ordering::Relaxed);
    }

    /// Current number of SSE clients.
    pub fn sse_clients(&self) -> i64 {
        self.sse_clients.load(Ordering::Relaxed)
    }

    fn request(&self, method: &str, path: &str, status: u16, secs: f64) {
        *self
            .http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry((method.to_owned(), path.to_owned(), status))
            .or_default() += 1;
        let mut d = self
            .durations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let h = d.entry(path.to_owned()).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.n += 1;
    }

    /// The Prometheus text exposition, with the supervised tasks' health.
    pub fn render(&self, tasks: &anju_backoff::Tasks) -> String {
        let mut s = String::new();
        let all = tasks.all();
        w!(
            s,
            "# HELP anju_task_up Whether a supervised task is running (1) or down (0).\n# TYPE anju_task_up gauge"
        );
        for t in &all {
            w!(
                s,
                "anju_task_up{{task=\"{}\"}} {}",
                esc(&t.name),
                u8::from(t.is_up())
            );
        }
        w!(
            s,
            "# HELP anju_task_restarts_total Failures (error, panic, early end) after which a supervised task was restarted.\n# TYPE anju_task_restarts_total counter"
        );
        for t in &all {
            w!(
                s,
                "anju_task_restarts_total{{task=\"{}\"}} {}",
                esc(&t.name),
                t.restarts()
            );
        }
        w!(
            s,
            "# HELP anju_http_requests_total HTTP requests by method, route and status.\n# TYPE anju_http_requests_total counter"
        );
        for ((m, p, st), n) in self
            .http
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            w!(
                s,
                "anju_http_requests_total{{method=\"{m}\",route=\"{}\",status=\"{st}\"}} {n}",
                esc(p)
            );
        }
        w!(
            s,
            "# HELP anju_http_request_duration_seconds HTTP request duration by route.\n# TYPE anju_http_request_duration_seconds histogram"
        );
        for (p, h) in self
            .durations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let p = esc(p);
            for (i, b) in BUCKETS.iter().enumerate() {
                w!(
                    s,
                    "anju_http_request_duration_seconds_bucket{{route=\"{p}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            w!(
                s,
                "anju_http_request_duration_seconds_bucket{{route=\"{p}\",le=\"+Inf\"}} {}\nanju_http_request_duration_seconds_sum{{route=\"{p}\"}} {}\nanju_http_request_duration_seconds_count{{route=\"{p}\"}} {}",
                h.n, h.sum, h.n
            );
        }
        w!(
            s,
            "# HELP anju_alerts_published_total Alerts opened or updated on the live feed, by code.\n# TYPE anju_alerts_published_total counter"
        );
        for (c, n) in self
            .alerts_by_code
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            w!(s, "anju_alerts_published_total{{code=\"{}\"}} {n}", esc(c));
        }
        let gauges: [(&str, &str, &str, i64); 10] = [
            (
                "anju_sse_clients",
                "gauge",
                "Connected SSE clients.",
                self.sse_clients.load(Ordering::Relaxed),
            ),
            (
                "anju_sse_lagged_total",
                "counter",
                "Alerts SSE clients fell behind on (caught up from the ring buffer).",
                to_i64(self.sse_lagged.load(Ordering::Relaxed)),
            ),
            (
                "anju_alert_feed_lagged_total",
                "counter",
                "Alerts the feed relay missed.",
                to_i64(self.feed_lagged.load(Ordering::Relaxed)),
            ),
            (
                "anju_logins_total",
                "counter",
                "Successful logins.",
                to_i64(self.logins_ok.load(Ordering::Relaxed)),
            ),
            (
                "anju_login_failures_total",
                "counter",
                "Failed logins.",
                to_i64(self.logins_failed.load(Ordering::Relaxed)),
            ),
            (
                "anju_webhooks_sent_total",
                "counter",
                "Webhook notifications delivered.",
                to_i64(self.webhooks_sent.load(Ordering::Relaxed)),
            ),
            (
                "anju_webhooks_failed_total",
                "counter",
                "Webhook notifications given up after retries.",
                to_i64(self.webhooks_failed.load(Ordering::Relaxed)),
            ),
            (
                "anju_alert_page_cache_hits_total",
                "counter",
                "Alert list pages served from the page cache (still current).",
                to_i64(self.alert_page_hits.load(Ordering::Relaxed)),
            ),
            (
                "anju_alert_page_cache_misses_total",
                "counter",
                "Alert list pages built from the store.",
                to_i64(self.alert_page_misses.load(Ordering::Relaxed)),
            ),
            (
                "anju_alert_page_not_modified_total",
                "counter",
                "Alert list requests answered 304 Not Modified (If-None-Match).",
                to_i64(self.alert_page_not_modified.load(Ordering::Relaxed)),
            ),
        ];
        for (name, kind, help, v) in gauges {
            w!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        s
    }
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// A fixed set of method labels: a made-up method (anyone can send one,
/// unauthenticated) must not grow the metrics forever.
fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts requests by method, matched route and status.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method()).to_owned();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state.metrics.request(
        &method,
        &path,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics`.
pub async fn render(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(&state.tasks),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_clients_are_capped() {
        let m = Metrics::default();
        assert!(m.try_sse_client(2));
        assert!(m.try_sse_client(2));
        assert!(!m.try_sse_client(2), "a third stream over a cap of 2");
        m.sse_client(-1);
        assert!(m.try_sse_client(2), "room again after one closed");
        assert_eq!(m.sse_clients(), 2);
    }

    #[test]
    fn method_labels_are_a_fixed_set() {
        let odd = axum::http::Method::from_bytes(b"FROBNICATE").unwrap_or_default();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&axum::http::Method::POST), "POST");
    }
}
