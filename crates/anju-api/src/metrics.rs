//! Prometheus metrics (`anju_` prefix), kept and exposed by the maintained
//! `prometheus-client` crate (OpenMetrics text), and the request-counting
//! middleware.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

/// Histogram buckets of request durations, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: String,
}

/// Counters of the API process.
pub struct Metrics {
    registry: Registry,
    http: Family<HttpLabels, Counter>,
    durations: Family<RouteLabels, Histogram>,
    alerts_by_code: Family<CodeLabels, Counter>,
    sse_clients: Gauge<i64, AtomicI64>,
    sse_lagged: Counter,
    feed_lagged: Counter,
    logins_ok: Counter,
    logins_failed: Counter,
    webhooks_sent: Counter,
    webhooks_failed: Counter,
    task_up: Family<TaskLabels, Gauge>,
    task_restarts: Family<TaskLabels, Counter>,
    pub(crate) alert_page_hits: Counter,
    pub(crate) alert_page_misses: Counter,
    pub(crate) alert_page_index: Counter,
    pub(crate) alert_page_not_modified: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut r = Registry::default();
        let http = Family::<HttpLabels, Counter>::default();
        r.register(
            "anju_http_requests",
            "HTTP requests by method, route and status",
            http.clone(),
        );
        let durations = Family::<RouteLabels, Histogram>::new_with_constructor(
            (|| Histogram::new(BUCKETS)) as fn() -> Histogram,
        );
        r.register(
            "anju_http_request_duration_seconds",
            "HTTP request duration by route",
            durations.clone(),
        );
        let alerts_by_code = Family::<CodeLabels, Counter>::default();
        r.register(
            "anju_alerts_published",
            "Alerts opened or updated on the live feed, by code",
            alerts_by_code.clone(),
        );
        let gauge = |r: &mut Registry, name: &str, help: &str| {
            let g = Gauge::<i64, AtomicI64>::default();
            r.register(name, help, g.clone());
            g
        };
        let counter = |r: &mut Registry, name: &str, help: &str| {
            let c = Counter::default();
            r.register(name, help, c.clone());
            c
        };
        let sse_clients = gauge(&mut r, "anju_sse_clients", "Connected SSE clients");
        let sse_lagged = counter(
            &mut r,
            "anju_sse_lagged",
            "Alerts SSE clients fell behind on (caught up from the ring buffer)",
        );
        let feed_lagged = counter(
            &mut r,
            "anju_alert_feed_lagged",
            "Alerts the feed relay missed",
        );
        let logins_ok = counter(&mut r, "anju_logins", "Successful logins");
        let logins_failed = counter(&mut r, "anju_login_failures", "Failed or refused logins");
        let webhooks_sent = counter(
            &mut r,
            "anju_webhooks_sent",
            "Webhook notifications delivered",
        );
        let webhooks_failed = counter(
            &mut r,
            "anju_webhooks_failed",
            "Webhook notifications given up after retries",
        );
        let alert_page_hits = counter(
            &mut r,
            "anju_alert_page_cache_hits",
            "Alert list pages served from the page cache (still current)",
        );
        let alert_page_misses = counter(
            &mut r,
            "anju_alert_page_cache_misses",
            "Alert list pages built from the store",
        );
        let alert_page_index = counter(
            &mut r,
            "anju_alert_page_index",
            "Alert list pages further back cut from the replica's index of recent alerts",
        );
        let alert_page_not_modified = counter(
            &mut r,
            "anju_alert_page_not_modified",
            "Alert list requests answered 304 Not Modified (If-None-Match)",
        );
        let task_up = Family::<TaskLabels, Gauge>::default();
        r.register(
            "anju_task_up",
            "Whether a supervised task is running (1) or down (0)",
            task_up.clone(),
        );
        let task_restarts = Family::<TaskLabels, Counter>::default();
        r.register(
            "anju_task_restarts",
            "Failures (error, panic, early end) after which a supervised task was restarted",
            task_restarts.clone(),
        );
        Self {
            registry: r,
            http,
            durations,
            alerts_by_code,
            sse_clients,
            sse_lagged,
            feed_lagged,
            logins_ok,
            logins_failed,
            webhooks_sent,
            webhooks_failed,
            task_up,
            task_restarts,
            alert_page_hits,
            alert_page_misses,
            alert_page_index,
            alert_page_not_modified,
        }
    }
}

impl Metrics {
    pub(crate) fn inc_login(&self, ok: bool) {
        if ok {
            &self.logins_ok
        } else {
            &self.logins_failed
        }
        .inc();
    }

    pub(crate) fn alert_published(&self, code: &str) {
        self.alerts_by_code
            .get_or_create(&CodeLabels {
                code: code.to_owned(),
            })
            .inc();
    }

    /// Counts one more SSE client unless `max` are connected already.
    pub(crate) fn try_sse_client(&self, max: usize) -> bool {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.sse_clients
            .inner()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    pub(crate) fn sse_client(&self, delta: i64) {
        self.sse_clients.inc_by(delta);
    }

    pub(crate) fn sse_lagged(&self, n: u64) {
        self.sse_lagged.inc_by(n);
    }

    pub(crate) fn feed_lagged(&self, n: u64) {
        self.feed_lagged.inc_by(n);
    }

    /// Counts a webhook delivery (for the notifier).
    pub fn webhook(&self, ok: bool) {
        if ok {
            &self.webhooks_sent
        } else {
            &self.webhooks_failed
        }
        .inc();
    }

    /// Current number of SSE clients.
    pub fn sse_clients(&self) -> i64 {
        self.sse_clients.get()
    }

    fn request(&self, method: &'static str, path: &str, status: u16, secs: f64) {
        self.http
            .get_or_create(&HttpLabels {
                method,
                route: path.to_owned(),
                status,
            })
            .inc();
        self.durations
            .get_or_create(&RouteLabels {
                route: path.to_owned(),
            })
            .observe(secs);
    }

    /// The exposition (OpenMetrics text), with the supervised tasks' health
    /// as of now.
    pub fn render(&self, tasks: &anju_backoff::Tasks) -> String {
        for t in tasks.all() {
            let l = TaskLabels {
                task: t.name.clone(),
            };
            self.task_up.get_or_create(&l).set(i64::from(t.is_up()));
            let c = self.task_restarts.get_or_create(&l);
            // Restarts only grow: bring the counter up to the task's count.
            c.inc_by(t.restarts().saturating_sub(c.get()));
        }
        let mut s = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut s, &self.registry) {
            tracing::error!(error = %e, "metrics not encoded");
        }
        s
    }
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
    let method = method_label(req.method());
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    state.metrics.request(
        method,
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
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
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

    #[test]
    fn exposition_has_the_families() {
        let m = Metrics::default();
        m.request("GET", "/api/v1/alerts", 200, 0.003);
        m.inc_login(true);
        let tasks = anju_backoff::Tasks::new();
        tasks.register("analyzer").failed("boom");
        let s = m.render(&tasks);
        assert!(s.contains(
            "anju_http_requests_total{method=\"GET\",route=\"/api/v1/alerts\",status=\"200\"} 1"
        ), "{s}");
        assert!(s.contains("anju_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/api/v1/alerts\"} 1")
            || s.contains("anju_http_request_duration_seconds_bucket{route=\"/api/v1/alerts\",le=\"0.005\"} 1"), "{s}");
        assert!(s.contains("anju_logins_total 1"), "{s}");
        assert!(s.contains("anju_task_up{task=\"analyzer\"} 0"), "{s}");
        assert!(
            s.contains("anju_task_restarts_total{task=\"analyzer\"} 1"),
            "{s}"
        );
        assert!(s.trim_end().ends_with("# EOF"), "{s}");
    }
}
