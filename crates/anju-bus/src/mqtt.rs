//! The MQTT side: broker options, the `poll()` loop and its hand-off.
//!
//! The poll loop does no slow work: it only forwards incoming publishes into
//! a bounded channel (lossless: a full channel blocks the loop, which is the
//! backpressure rumqttc expects) and reconnects with capped exponential
//! backoff and jitter when the broker goes away. With `clean_session(false)`
//! and manual acks, a message that was received but not yet acknowledged is
//! redelivered by the broker after a reconnect or a restart.

use anju_backoff::Backoff;
use rumqttc::{
    AsyncClient, ClientError, ConnectionError, Event, EventLoop, MqttOptions, Packet, Publish, QoS,
};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Default broker when none is given.
pub const DEFAULT_MQTT_URL: &str = "mqtt://127.0.0.1:1883";

/// Where and how to connect.
#[derive(Clone)]
pub struct MqttConfig {
    /// `mqtt://host[:port]`, `tcp://host[:port]` or `host[:port]`.
    pub url: String,
    /// Stable client id: the broker keeps the session (subscriptions and
    /// unacknowledged messages) under it.
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub keep_alive: Duration,
    /// Capacity of the hand-off channel and of rumqttc's request channel.
    pub channel: usize,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl MqttConfig {
    pub fn new(url: impl Into<String>, client_id: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            client_id: client_id.into(),
            username: None,
            password: None,
            keep_alive: Duration::from_secs(15),
            channel: 1024,
        }
    }

    /// Options for a persistent session with manual acks (ingest) or, with
    /// `manual_acks = false`, for a plain publisher.
    ///
    /// # Errors
    /// An unparsable URL.
    pub fn options(&self, manual_acks: bool) -> anyhow::Result<MqttOptions> {
        let (host, port) = parse_broker_url(&self.url)?;
        let mut o = MqttOptions::new(self.client_id.clone(), host, port);
        o.set_keep_alive(self.keep_alive)
            .set_clean_session(!manual_acks)
            .set_manual_acks(manual_acks)
            .set_max_packet_size(256 * 1024, 256 * 1024);
        if let (Some(u), Some(p)) = (&self.username, &self.password) {
            o.set_credentials(u.clone(), p.clone());
        }
        Ok(o)
    }
}

/// `(host, port)` of a broker URL.
///
/// # Errors
/// An unsupported scheme or a bad port.
pub fn parse_broker_url(url: &str) -> anyhow::Result<(String, u16)> {
    let rest = if let Some((scheme, rest)) = url.split_once("://") {
        anyhow::ensure!(
            matches!(scheme, "mqtt" | "tcp"),
            "unsupported MQTT URL scheme {scheme:?} (use mqtt://host:port)"
        );
        rest
    } else {
        url
    };
    let rest = rest.trim_end_matches('/');
    // Credentials in the URL are not supported: they would end up in logs.
    anyhow::ensure!(
        !rest.contains('@'),
        "MQTT URL must not carry credentials; pass them separately"
    );
    match rest.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_owned(),
            p.parse()
                .map_err(|_| anyhow::anyhow!("bad port in MQTT URL {url:?}"))?,
        )),
        None => Ok((rest.to_owned(), 1883)),
    }
}

/// Counters of the connection.
#[derive(Debug, Default)]
pub struct LinkStats {
    pub connects: AtomicU64,
    pub connection_errors: AtomicU64,
    pub received: AtomicU64,
    /// Subscription acknowledgements received.
    pub subscribed: AtomicU64,
}

/// Runs the poll loop until cancelled: forwards publishes to `out`,
/// (re)subscribes to `topics` at QoS 1 whenever the broker has no session,
/// reconnects with backoff.
///
/// # Cancel safety
/// Returns when `cancel` fires; a publish that was being handed off is not
/// acknowledged and will be redelivered.
pub async fn poll_loop(
    client: AsyncClient,
    eventloop: &mut EventLoop,
    topics: Vec<String>,
    out: mpsc::Sender<Publish>,
    stats: Arc<LinkStats>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::network();
    loop {
        let ev = tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            ev = eventloop.poll() => ev,
        };
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff.reset();
                stats.connects.fetch_add(1, Ordering::Relaxed);
                info!(
                    session_present = ack.session_present,
                    "Connected to the MQTT broker."
                );
                // Subscribe every time: cheap, and covers a broker that lost
                // its persistent state.
                for t in &topics {
                    if let Err(e) = client.try_subscribe(t.clone(), QoS::AtLeastOnce) {
                        warn!(topic = %t, error = %e, "Could not queue a subscription.");
                    }
                }
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                stats.received.fetch_add(1, Ordering::Relaxed);
                tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break,
                    r = out.send(p) => if r.is_err() { break },
                }
            }
            Ok(Event::Incoming(Packet::SubAck(_))) => {
                stats.subscribed.fetch_add(1, Ordering::Relaxed);
            }
            Ok(other) => debug!(event = ?other, "MQTT event."),
            Err(e) => {
                stats.connection_errors.fetch_add(1, Ordering::Relaxed);
                log_conn_error(&e);
                if !backoff.wait(&cancel).await {
                    break;
                }
            }
        }
    }
    // Best effort: tell the broker we leave (the session stays).
    if client.try_disconnect().is_err() {
        debug!("Disconnect not queued; the connection is gone anyway.");
    }
}

fn log_conn_error(e: &ConnectionError) {
    warn!(error = %e, "MQTT connection lost; reconnecting with backoff.");
}

/// A publisher connection (no subscriptions) driven by its own task; used
/// by the simulator and tests. The task ends once [`Publisher::disconnect`]
/// went out (after the broker acknowledged what was published), or at once
/// when `cancel` fires.
///
/// # Errors
/// An unparsable URL.
pub fn publisher(
    url: &str,
    client_id: &str,
    cancel: CancellationToken,
) -> anyhow::Result<(Publisher, tokio::task::JoinHandle<()>)> {
    let cfg = MqttConfig::new(url, client_id);
    let (client, mut el) = AsyncClient::new(cfg.options(false)?, cfg.channel);
    let acked = Arc::new(AtomicU64::new(0));
    let task = tokio::spawn({
        let acked = acked.clone();
        async move {
            let mut backoff = Backoff::network();
            loop {
                let ev = tokio::select! {
                    biased;
                    _ = cancel.cancelled() => break,
                    ev = el.poll() => ev,
                };
                match ev {
                    Ok(Event::Incoming(Packet::ConnAck(_))) => backoff.reset(),
                    Ok(Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_))) => {
                        acked.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(e) => {
                        log_conn_error(&e);
                        if !backoff.wait(&cancel).await {
                            break;
                        }
                    }
                }
            }
        }
    });
    Ok((
        Publisher {
            client,
            queued: Arc::new(AtomicU64::new(0)),
            acked,
        },
        task,
    ))
}

/// The sending side of [`publisher`]: an MQTT client that counts its QoS 1
/// and 2 publishes, so that [`Publisher::disconnect`] can wait until the
/// broker acknowledged them. A DISCONNECT sent right behind unacknowledged
/// publishes can lose them: Mosquitto 2.0.11 drops what it had not yet
/// processed when the publisher's socket closes ("disconnected due to out
/// of memory" in its log).
#[derive(Debug, Clone)]
pub struct Publisher {
    client: AsyncClient,
    queued: Arc<AtomicU64>,
    acked: Arc<AtomicU64>,
}

impl Publisher {
    /// Queues a publish (waits for room in the request channel).
    ///
    /// # Errors
    /// The connection's task is gone.
    pub async fn publish(
        &self,
        topic: impl Into<String>,
        qos: QoS,
        retain: bool,
        payload: impl Into<Vec<u8>>,
    ) -> Result<(), ClientError> {
        self.client.publish(topic, qos, retain, payload).await?;
        if qos != QoS::AtMostOnce {
            self.queued.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Publishes queued but not yet acknowledged by the broker.
    pub fn unacknowledged(&self) -> u64 {
        self.queued
            .load(Ordering::Relaxed)
            .saturating_sub(self.acked.load(Ordering::Relaxed))
    }

    /// Waits until the broker acknowledged every publish (at most 10 s,
    /// then goes on with a warning), then disconnects.
    ///
    /// # Errors
    /// The connection's task is gone.
    pub async fn disconnect(&self) -> Result<(), ClientError> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.unacknowledged() > 0 {
            if tokio::time::Instant::now() >= deadline {
                warn!(
                    unacknowledged = self.unacknowledged(),
                    "Disconnecting with publishes the broker has not acknowledged."
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.client.disconnect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_broker_url("mqtt://127.0.0.1:1883").unwrap(),
            ("127.0.0.1".into(), 1883)
        );
        assert_eq!(parse_broker_url("tcp://b").unwrap(), ("b".into(), 1883));
        assert_eq!(parse_broker_url("b:1884").unwrap(), ("b".into(), 1884));
        assert!(parse_broker_url("http://b").is_err());
        assert!(parse_broker_url("mqtt://u:p@b:1").is_err());
        assert!(parse_broker_url("mqtt://b:x").is_err());
    }
}
