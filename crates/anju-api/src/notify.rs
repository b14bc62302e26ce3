//! Webhook notifications of alerts: generic JSON, WeCom (企业微信) group
//! robot and DingTalk (钉钉) group robot with its HMAC-SHA256 signing; retries
//! with exponential backoff; a cooldown per target, alert code and subject
//! (started only by a delivery that got through) so a flapping rule does not
//! spam a group, while a second person's alert of the same rule still goes
//! out.
//!
//! The built-in transport is `reqwest` (HTTP/1.1 over TCP for `http://`, a
//! local relay or gateway; rustls for `https://`, the robots' public
//! endpoints), verifying servers against the system's CA certificates
//! (Debian: `ca-certificates`); another [`Transport`] can be passed to
//! [`Notifier::with_transport`].

use crate::metrics::Metrics;
use anju_core::{Alert, AlertCode, AlertStatus};
use base64::Engine as _;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// Posts `body` (JSON) to `url`, returns the HTTP status.
pub type Transport =
    Arc<dyn Fn(String, Vec<u8>) -> BoxFuture<'static, Result<u16, String>> + Send + Sync>;

/// The message format of a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookKind {
    /// `{"event": "alert", "grid", "alert": <alert JSON>}`.
    Json,
    /// WeCom group robot: `{"msgtype": "markdown", "markdown": {"content"}}`.
    WeCom,
    /// DingTalk group robot (`msgtype: markdown`); with a secret, the URL
    /// gets `timestamp` and `sign` = base64(HMAC-SHA256(secret,
    /// "{timestamp}\n{secret}")), URL-encoded.
    DingTalk { secret: Option<String> },
}

/// Where to send what.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    pub name: String,
    pub url: String,
    pub kind: WebhookKind,
    /// Only alerts of these estates (empty: all).
    pub estates: Vec<String>,
    /// Only alerts in buildings of these `(estate, grid)` (empty: all).
    pub grids: Vec<(String, String)>,
    /// Only these codes (empty: all).
    pub codes: Vec<AlertCode>,
}

#[derive(Debug, Clone)]
pub struct NotifierConfig {
    pub targets: Vec<WebhookTarget>,
    /// No second message for the same target, code and subject within this
    /// after one was delivered.
    pub cooldown: Duration,
    /// Attempts per message (first try included).
    pub attempts: u32,
    /// First retry delay; doubles each time.
    pub backoff: Duration,
    pub timeout: Duration,
}

impl Default for NotifierConfig {
    fn default() -> Self {
        NotifierConfig {
            targets: Vec::new(),
            cooldown: Duration::from_secs(600),
            attempts: 4,
            backoff: Duration::from_millis(500),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Sends alerts to webhooks.
pub struct Notifier {
    cfg: NotifierConfig,
    transport: Transport,
    last: Mutex<HashMap<(String, String, AlertCode, String), Instant>>,
    metrics: Option<Arc<Metrics>>,
}

/// DingTalk's signature for `timestamp_ms`, URL-encoded.
pub fn dingtalk_sign(secret: &str, timestamp_ms: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(format!("{timestamp_ms}\n{secret}").as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    b64.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

fn markdown(alert: &Alert, grid: Option<&str>) -> String {
    let place = [
        Some(alert.estate.as_str()),
        alert.building.as_ref().map(|b| b.as_str()),
        alert.unit.as_ref().map(|u| u.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join("/");
    format!(
        "### {} ({})\n- 地点 place: {place}{}\n- 级别 severity: {}\n- 状态 status: {}\n- 对象 subject: {}\n- 时间 time: {}\n- 告警 alert #{}",
        alert.title_zh,
        alert.title_en,
        grid.map(|g| format!(" (grid {g})")).unwrap_or_default(),
        alert.severity.as_str(),
        alert.status.as_str(),
        alert.subject.key(),
        alert.updated_at.to_rfc3339(),
        alert.id
    )
}

/// The body a target of `kind` receives for `alert`.
pub fn payload(kind: &WebhookKind, alert: &Alert, grid: Option<&str>) -> serde_json::Value {
    match kind {
        WebhookKind::Json => serde_json::json!({"event": "alert", "grid": grid, "alert": alert}),
        WebhookKind::WeCom => serde_json::json!({
            "msgtype": "markdown",
            "markdown": {"content": markdown(alert, grid)},
        }),
        WebhookKind::DingTalk { .. } => serde_json::json!({
            "msgtype": "markdown",
            "markdown": {"title": alert.title_zh, "text": markdown(alert, grid)},
        }),
    }
}

/// POSTs with `reqwest` (HTTP/1.1 and TLS through rustls with the ring
/// provider), trusting the system's CA certificates for `https://` (loaded
/// once, on the first delivery).
pub fn http_transport(timeout: Duration) -> Transport {
    let client: Arc<std::sync::OnceLock<Result<reqwest::Client, String>>> = Arc::default();
    Arc::new(move |url: String, body: Vec<u8>| {
        let client = client.clone();
        Box::pin(async move {
            let c = client
                .get_or_init(|| {
                    reqwest::Client::builder()
                        .use_rustls_tls()
                        .timeout(timeout)
                        .build()
                        .map_err(|e| format!("HTTP client: {}", chain(&e)))
                })
                .clone()?;
            post(&c, &url, body).await
        })
    })
}

/// Like [`http_transport`], trusting only `roots` for `https://` (a private
/// CA, or tests).
pub fn http_transport_with_roots(
    timeout: Duration,
    roots: Vec<rustls::pki_types::CertificateDer<'static>>,
) -> Transport {
    let client = (|| {
        let mut b = reqwest::Client::builder()
            .use_rustls_tls()
            .tls_built_in_root_certs(false)
            .timeout(timeout);
        for r in &roots {
            let cert = reqwest::Certificate::from_der(r.as_ref())
                .map_err(|e| format!("CA certificate: {}", chain(&e)))?;
            b = b.add_root_certificate(cert);
        }
        b.build().map_err(|e| format!("HTTP client: {}", chain(&e)))
    })();
    Arc::new(move |url: String, body: Vec<u8>| {
        let client = client.clone();
        Box::pin(async move { post(&client?, &url, body).await })
    })
}

/// The error and its causes, joined (reqwest's own message names only the
/// outermost: "error sending request").
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// One JSON POST; the answer's status code.
async fn post(client: &reqwest::Client, url: &str, body: Vec<u8>) -> Result<u16, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("bad webhook URL {url}: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("webhook URLs must be http:// or https://: {url}"));
    }
    let host = parsed.host_str().unwrap_or("").to_owned();
    let r = client
        .post(parsed)
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                format!("connect or TLS with {host}: {}", chain(&e))
            } else {
                chain(&e)
            }
        })?;
    Ok(r.status().as_u16())
}

impl Notifier {
    pub fn new(cfg: NotifierConfig) -> Notifier {
        let transport = http_transport(cfg.timeout);
        Notifier {
            cfg,
            transport,
            last: Mutex::new(HashMap::new()),
            metrics: None,
        }
    }

    #[must_use]
    pub fn with_transport(mut self, t: Transport) -> Notifier {
        self.transport = t;
        self
    }

    #[must_use]
    pub fn with_metrics(mut self, m: Arc<Metrics>) -> Notifier {
        self.metrics = Some(m);
        self
    }

    fn wants(t: &WebhookTarget, alert: &Alert, grid: Option<&str>) -> bool {
        (t.estates.is_empty() || t.estates.iter().any(|e| e == alert.estate.as_str()))
            && (t.codes.is_empty() || t.codes.contains(&alert.code))
            && (t.grids.is_empty()
                || t.grids
                    .iter()
                    .any(|(e, g)| e == alert.estate.as_str() && Some(g.as_str()) == grid))
    }

    /// Sends `alert` (in `grid`) to every target that wants it and is not
    /// cooling down; returns how many targets accepted it.
    pub async fn notify(&self, alert: &Alert, grid: Option<&str>) -> usize {
        let mut sent = 0;
        for t in &self.cfg.targets {
            if !Self::wants(t, alert, grid) {
                continue;
            }
            // Keyed by rule *and subject*: another elderly person's alert in
            // the same grid is its own message.
            let key = (
                t.name.clone(),
                alert.estate.0.clone(),
                alert.code,
                serde_json::to_string(&alert.subject).unwrap_or_default(),
            );
            let cooling = self
                .last
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .get(&key)
                .is_some_and(|t0| t0.elapsed() < self.cfg.cooldown);
            if cooling {
                continue;
            }
            let body = payload(&t.kind, alert, grid).to_string().into_bytes();
            let ok = self.deliver(t, body).await;
            if let Some(m) = &self.metrics {
                m.webhook(ok);
            }
            if ok {
                sent += 1;
                // Only a delivery that got through starts the cooldown: a
                // failed one is tried again at the next alert.
                let mut last = self
                    .last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                last.retain(|_, t0| t0.elapsed() < self.cfg.cooldown);
                last.insert(key, Instant::now());
            }
        }
        sent
    }

    async fn deliver(&self, t: &WebhookTarget, body: Vec<u8>) -> bool {
        let mut delay = self.cfg.backoff;
        for attempt in 1..=self.cfg.attempts.max(1) {
            let url = match &t.kind {
                WebhookKind::DingTalk {
                    secret: Some(secret),
                } => {
                    let ts = chrono::Utc::now().timestamp_millis();
                    let sep = if t.url.contains('?') { '&' } else { '?' };
                    format!(
                        "{}{sep}timestamp={ts}&sign={}",
                        t.url,
                        dingtalk_sign(secret, ts)
                    )
                }
                _ => t.url.clone(),
            };
            match (self.transport)(url, body.clone()).await {
                Ok(s) if (200..300).contains(&s) => return true,
                Ok(s) if (400..500).contains(&s) && s != 429 => {
                    tracing::warn!(target = %t.name, status = s, "webhook refused; not retrying");
                    return false;
                }
                Ok(s) => tracing::warn!(target = %t.name, status = s, attempt, "webhook failed"),
                Err(e) => tracing::warn!(target = %t.name, error = %e, attempt, "webhook failed"),
            }
            if attempt < self.cfg.attempts {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
        false
    }

    /// Runs the notifier on the live feed until `cancel` fires: every open
    /// alert goes to the targets that want it. `grid_of(estate, building)`
    /// maps a building to its grid (e.g. from the registry). Meant for a
    /// supervisor ([`anju_backoff::supervise`]).
    ///
    /// # Errors
    /// The live feed closed (its sender is gone).
    pub async fn run(
        self: Arc<Self>,
        mut rx: broadcast::Receiver<Alert>,
        grid_of: Arc<HashMap<(String, String), String>>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Result<(), String> {
        loop {
            let r = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(()),
                r = rx.recv() => r,
            };
            match r {
                Ok(a) if a.status == AlertStatus::Open => {
                    let grid = a
                        .building
                        .as_ref()
                        .and_then(|b| grid_of.get(&(a.estate.0.clone(), b.0.clone())))
                        .cloned();
                    let me = self.clone();
                    // Deliveries (with their retries) never hold up the feed.
                    tokio::spawn(async move {
                        me.notify(&a, grid.as_deref()).await;
                    });
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "notifier lagged");
                }
                Err(broadcast::error::RecvError::Closed) => {
                    return Err("the live alert feed closed".to_owned())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dingtalk_signature_matches_reference() {
        // Computed with Python: base64(hmac.new(b"SEC123", b"1700000000000\nSEC123",
        // sha256).digest()), then quote_plus.
        assert_eq!(
            dingtalk_sign("SEC123", 1_700_000_000_000),
            "lkcPI1uoxBY1gUnCnnPH1Kkru0Hqjo7rFpA3haIVhEQ%3D"
        );
    }
}
