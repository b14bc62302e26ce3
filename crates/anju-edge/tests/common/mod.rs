#![allow(dead_code)]
//! Shared helpers: the real Mosquitto (`ANJU_TEST_MQTT`, default
//! `mqtt://127.0.0.1:1883`), unique estates per test, a registry.

use anju_core::Registry;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

static N: AtomicUsize = AtomicUsize::new(0);

pub fn mqtt_url() -> String {
    std::env::var("ANJU_TEST_MQTT").unwrap_or_else(|_| "mqtt://127.0.0.1:1883".to_owned())
}

/// An estate code no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    let n = N.fetch_add(1, Ordering::Relaxed);
    let t = chrono::Utc::now().timestamp_micros() % 1_000_000_000_000;
    format!("{prefix}{}x{n}x{t}", std::process::id())
}

/// One building `1` with entrance `e1` (cam-e1, gr-e1, qr-e1), units 101
/// (P1) and 102 (P2); cards `C-P1`, `C-P2`.
pub fn registry(estate: &str) -> Registry {
    let mut b = anju_rules::sim::SiteBuilder::new(estate);
    b.building("1")
        .entrance("e1", Some("1"))
        .unit("1", "101", &[("P1", false)])
        .unit("1", "102", &[("P2", false)]);
    b.build()
}

/// Waits until `f` holds, polling; panics after `secs` (a deadlock guard,
/// not a speed requirement).
pub async fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A subscriber to `topic` that forwards (topic, payload) to a channel.
pub async fn subscriber(
    topic: &str,
    cancel: CancellationToken,
) -> mpsc::UnboundedReceiver<(String, Vec<u8>)> {
    let (host, port) = anju_bus::mqtt::parse_broker_url(&mqtt_url()).expect("url");
    let mut o = MqttOptions::new(unique("sub"), host, port);
    o.set_keep_alive(Duration::from_secs(10));
    let (client, mut el) = AsyncClient::new(o, 100);
    client
        .subscribe(topic, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, rx) = mpsc::unbounded_channel();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready = Some(ready_tx);
    tokio::spawn(async move {
        let _client = client;
        loop {
            let ev = tokio::select! {
                _ = cancel.cancelled() => break,
                ev = el.poll() => ev,
            };
            match ev {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    if let Some(r) = ready.take() {
                        r.send(()).ok();
                    }
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    tx.send((p.topic.clone(), p.payload.to_vec())).ok();
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .expect("suback in time")
        .expect("suback");
    rx
}
