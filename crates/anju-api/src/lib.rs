//! Anju's dashboard API (DESIGN §6 "Contract — dashboard API (v1)").
//!
//! [`router`] builds the whole HTTP surface from an [`AppState`]; [`serve`]
//! runs it on a bound listener until a shutdown future completes. Scoping is
//! enforced by the store queries themselves (every read takes the caller's
//! [`anju_store::Scope`]); an object outside the caller's scope answers 404.
//!
//! The live alert feed: whoever opens or updates an alert sends it on
//! [`AppState::alerts`] (a `tokio::sync::broadcast::Sender<Alert>`, also
//! [`AppState::publish`]). A relay task numbers every alert with a
//! monotonically increasing sequence and keeps the last few in a ring buffer
//! so that SSE clients can resume with `Last-Event-ID`; a slow client lags
//! (and catches up from the ring), it never blocks the sender.

mod admin;
mod alerts;
mod auth;
mod console;
mod error;
mod extract;
mod feed;
pub mod health;
mod images;
mod index;
mod metrics;
pub mod notify;
mod openapi;
mod pages;
pub mod policy;
mod qr;
pub mod reads;
mod registry;
mod reports;
mod users;
mod visits;

use anju_core::{Alert, EstateCode, Tz};
use anju_store::Store;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tower_http::trace::TraceLayer;

pub use auth::{hash_password, verify_password};
pub use error::ApiError;
pub use metrics::Metrics;
pub use qr::qr_png;

/// Prefix of the versioned API.
pub const API_PREFIX: &str = "/api/v1";

/// Enrols a face photo: takes the uploaded bytes, returns the embedding
/// model's name and the L2-normalised template, or why the photo is not
/// usable. Runs on a blocking thread. The binary wires anju-vision here.
pub type Enroller = Arc<dyn Fn(&[u8]) -> Result<(String, Vec<f32>), String> + Send + Sync>;

/// Settings of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// How long a login token stays valid.
    pub token_ttl: Duration,
    /// Time zone of estates not listed in `estate_tz`.
    pub default_tz: Tz,
    /// Time zone per estate (reports cover the 24 hours of a local date).
    pub estate_tz: HashMap<EstateCode, Tz>,
    /// How many alerts the SSE ring buffer keeps for `Last-Event-ID` resume.
    pub sse_buffer: usize,
    /// Most live alert streams open at once; one more answers 503
    /// `too_many_streams`.
    pub sse_max_clients: usize,
    /// Failed logins per user before that user's logins are refused for
    /// the rest of `login_window` (attempts count before verification).
    pub login_max_failures: u32,
    /// Failed logins per client address (sprayed user names) in the window.
    pub login_max_failures_per_addr: u32,
    /// Failed logins overall in the window (a distributed guess).
    pub login_max_failures_total: u32,
    pub login_window: Duration,
    /// Password verifications (argon2) running at once; more answer 429.
    pub login_max_concurrent: usize,
    /// The header a trusted reverse proxy puts the client address in
    /// (e.g. `X-Forwarded-For`); read only from `trusted_proxies`.
    pub client_ip_header: Option<String>,
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Due date of a dispatched notice when the request gives none.
    pub default_due: Duration,
    /// Due date for `elderly_no_activity` notices (DESIGN §5: 4 h).
    pub elderly_due: Duration,
    /// The site's rule thresholds (`[rules]`), under what administrators
    /// set per estate (`PUT /estates/{code}/rules`).
    pub rules: anju_rules::RulesConfig,
    /// Recent alerts each replica keeps in memory to cut pages further
    /// back from (`index`; 0: every such page from the store).
    pub alert_index_max: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            token_ttl: Duration::from_secs(12 * 3600),
            default_tz: Tz::Asia__Shanghai,
            estate_tz: HashMap::new(),
            sse_buffer: 1024,
            sse_max_clients: 100,
            login_max_failures: 5,
            login_max_failures_per_addr: 20,
            login_max_failures_total: 200,
            login_window: Duration::from_secs(15 * 60),
            login_max_concurrent: 4,
            client_ip_header: None,
            trusted_proxies: Vec::new(),
            default_due: Duration::from_secs(72 * 3600),
            elderly_due: Duration::from_secs(4 * 3600),
            rules: anju_rules::RulesConfig::default(),
            alert_index_max: 20_000,
        }
    }
}

impl ApiConfig {
    /// The time zone of an estate.
    pub fn tz_for(&self, estate: &str) -> Tz {
        self.estate_tz
            .get(estate)
            .copied()
            .unwrap_or(self.default_tz)
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    /// The live alert feed: send every alert opened or updated here.
    pub alerts: broadcast::Sender<Alert>,
    pub config: Arc<ApiConfig>,
    pub metrics: Arc<Metrics>,
    /// The process's supervised tasks: `/readyz` answers 503 naming those
    /// down, `/metrics` counts their restarts.
    pub tasks: Arc<anju_backoff::Tasks>,
    pub(crate) auth: Arc<auth::Auth>,
    pub(crate) feed: Arc<feed::Feed>,
    pub(crate) shutdown: Arc<watch::Sender<bool>>,
    pub(crate) enroller: Option<Enroller>,
    /// Signs QR passes issued through the API (`None`: 501).
    pub(crate) qr_signer: Option<Arc<anju_rules::qr::SigningKey>>,
    pub(crate) pages: Arc<pages::PageCache>,
    /// The recent alerts of every estate, for pages further back.
    pub(crate) index: Arc<index::AlertIndex>,
    /// Bulk reads of personal data (alert pages, live streams), written to
    /// the audit once a minute.
    pub reads: Arc<reads::ReadTally>,
}

impl AppState {
    /// Builds the state and starts the feed relay task. Must be called
    /// inside a Tokio runtime.
    pub fn new(store: Store, config: ApiConfig) -> AppState {
        let (alerts, _) = broadcast::channel(1024);
        let metrics = Arc::new(Metrics::default());
        let feed = Arc::new(feed::Feed::new(config.sse_buffer.max(1)));
        feed::spawn_relay(alerts.subscribe(), feed.clone(), metrics.clone());
        let (shutdown, _) = watch::channel(false);
        let auth = Arc::new(auth::Auth::new(&config, store.clone()));
        let index = Arc::new(index::AlertIndex::new(config.alert_index_max));
        AppState {
            store,
            alerts,
            auth,
            config: Arc::new(config),
            metrics,
            tasks: anju_backoff::Tasks::new(),
            feed,
            shutdown: Arc::new(shutdown),
            enroller: None,
            qr_signer: None,
            pages: Arc::default(),
            index,
            reads: Arc::default(),
        }
        .with_read_audit()
    }

    /// Starts the task that writes counted bulk reads to the audit.
    fn with_read_audit(self) -> AppState {
        let (reads, store) = (Arc::downgrade(&self.reads), self.store.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(reads::FLUSH_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                // Ends with the last state holding the tally.
                let Some(r) = reads.upgrade() else { break };
                r.flush(&store).await;
            }
        });
        self
    }

    /// PostgreSQL: the live alert stream (SSE) carries every alert written
    /// to the store, by whichever replica's analyzer or API, numbered by
    /// the store so that `Last-Event-ID` means the same on every replica.
    /// On SQLite (one process) nothing changes: the stream carries what
    /// this process publishes.
    #[must_use]
    pub fn with_store_feed(self) -> AppState {
        if let Some(rx) = self.store.alert_changes() {
            feed::follow_store(rx, self.feed.clone(), self.metrics.clone());
        }
        self
    }

    /// Enables `POST /persons/{id}/faces` with this enrolment function.
    #[must_use]
    pub fn with_enroller(mut self, enroller: Enroller) -> AppState {
        self.enroller = Some(enroller);
        self
    }

    /// Lets administrators issue QR passes through the API, signed with
    /// `key` (the edges must trust its public key: the site's `[qr]`).
    pub fn with_qr_signer(mut self, key: anju_rules::qr::SigningKey) -> AppState {
        self.qr_signer = Some(Arc::new(key));
        self
    }

    /// Puts an alert on the live feed (SSE). Never blocks.
    pub fn publish(&self, alert: Alert) {
        if self.alerts.send(alert).is_err() {
            tracing::debug!("alert feed has no subscribers");
        }
    }

    /// Ends open SSE streams (graceful shutdown does this itself).
    pub fn close_streams(&self) {
        self.shutdown.send_replace(true);
    }
}

/// The whole HTTP surface.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/auth/revoke", post(auth::revoke))
        .route("/alerts", get(alerts::list))
        .route("/alerts/stream", get(feed::stream))
        .route("/alerts/{id}", get(alerts::detail))
        .route("/alerts/{id}/{action}", post(alerts::act))
        .route("/notices", get(alerts::notices))
        .route("/notices/{id}/result", post(alerts::notice_result))
        .route(
            "/notices/{id}/photos",
            post(visits::upload).layer(DefaultBodyLimit::max(visits::MAX_BYTES)),
        )
        .route("/notices/{id}/photos/{photo}", get(visits::photo))
        .route("/reports/access", get(reports::access))
        .route("/devices", get(registry::devices).post(admin::add_device))
        .route(
            "/devices/{estate}/{id}",
            get(admin::device).delete(admin::remove_device),
        )
        .route("/entrances", post(admin::add_entrance))
        .route("/qr/passes", post(qr::issue))
        .route("/qr/passes/{id}", get(qr::get))
        .route("/qr/passes/{id}/png", get(qr::png))
        .route("/qr/passes/{id}/revoke", post(qr::revoke))
        .route("/estates", get(registry::estates))
        .route("/units", get(registry::units))
        .route("/units/activity", get(registry::unit_activity))
        .route("/persons", get(registry::persons).post(admin::register))
        .route(
            "/persons/{id}",
            get(registry::person)
                .patch(admin::patch_person)
                .delete(admin::delete_person),
        )
        .route(
            "/persons/{id}/faces",
            post(registry::faces).layer(DefaultBodyLimit::max(10 * 1024 * 1024)),
        )
        .route(
            "/credentials",
            get(registry::credentials).post(admin::issue),
        )
        .route("/credentials/{kind}/{id}", get(admin::credential))
        .route("/credentials/{kind}/{id}/status", post(admin::set_status))
        .route("/watchlist", get(admin::watchlist).post(admin::add_watch))
        .route(
            "/ledger/dry-run",
            post(admin::ledger_dry_run).layer(DefaultBodyLimit::max(admin::MAX_LEDGER_BYTES)),
        )
        .route(
            "/watchlist/{person}",
            get(admin::watch_entry).delete(admin::remove_watch),
        )
        .route(
            "/estates/{code}/rules",
            get(admin::estate_rules).put(admin::set_estate_rules),
        )
        .route("/users", get(users::list).post(users::create))
        .route(
            "/users/{name}",
            get(users::get).patch(users::update).delete(users::delete),
        )
        .route("/persons/{id}/move-out", post(admin::move_out))
        .route("/persons/{id}/history", get(admin::history))
        .route("/snapshots/{key}", get(images::snapshot))
        .route("/persons/{id}/photo", get(images::person_photo))
        .route("/persons/{id}/consent", post(registry::consent))
        .route("/openapi.json", get(openapi::document))
        .fallback(not_found);
    Router::new()
        .nest(API_PREFIX, api)
        .route("/", get(console::index))
        .route("/console/app.js", get(console::app_js))
        .route("/console/app.css", get(console::app_css))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::render))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then closes SSE
/// streams and lets in-flight requests finish.
///
/// # Errors
/// I/O errors of the listener.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closer = state.shutdown.clone();
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            closer.send_replace(true);
        })
        .await
}

/// On every response: no MIME sniffing; no framing; and a content
/// policy that lets HTML pages (the printable report) load nothing from
/// elsewhere and run no script.
async fn security_headers(mut resp: Response) -> Response {
    use axum::http::header::{
        HeaderValue, CONTENT_SECURITY_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
    };
    let h = resp.headers_mut();
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(CONTENT_SECURITY_POLICY).or_insert(HeaderValue::from_static(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ));
    resp
}

async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when the store answers and every supervised task is
/// running; else 503 naming what is not (DESIGN §6a).
async fn readyz(State(state): State<AppState>) -> Response {
    let mut problems = Vec::new();
    if let Err(e) = state.store.ping().await {
        problems.push(format!("store unreachable: {e}"));
    }
    problems.extend(state.tasks.down_report());
    if problems.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            problems.join("; "),
        )
        .into_response()
    }
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such resource")
}

/// JSON body helper.
pub(crate) fn json<T: serde::Serialize>(v: T) -> Response {
    Json(v).into_response()
}
