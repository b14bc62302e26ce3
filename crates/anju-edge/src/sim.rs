//! Simulated gate readers and QR scanners (`anju sim readers`, the demo):
//! realistic MQTT v1 traffic from a site's own devices and credentials.
//!
//! Mostly residents' cards granted in and out, some denials of unknown
//! cards, door open/close pairs, visitor QR passes (and now and then a
//! forged one), and a status heartbeat per device every 30 s.

use anju_bus::mqtt::publisher;
use anju_bus::topic;
use anju_core::{CredentialKind, DeviceKind};
use anju_rules::qr::{encode_code, PassKind, PassPayload};
use anju_site::Site;
use rumqttc::QoS;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tracing::info;

/// What the simulator published.
#[derive(Debug, Default)]
pub struct SimStats {
    pub access: AtomicU64,
    pub door: AtomicU64,
    pub status: AtomicU64,
    pub scans: AtomicU64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
}

/// Publishes simulated traffic of `estate` at about `rate` messages per
/// second until `cancel` fires. Returns the counters.
///
/// # Errors
/// An unknown estate, an estate without readers or scanners, a bad URL.
pub async fn sim_readers(
    mqtt_url: &str,
    site: &Site,
    estate: &str,
    rate: f64,
    cancel: CancellationToken,
) -> anyhow::Result<Arc<SimStats>> {
    sim_readers_signed(mqtt_url, site, estate, rate, None, &[], cancel).await
}

/// As [`sim_readers`], with visitor passes signed by `signer` (an edge that
/// trusts its public key grants them); without one the passes carry a
/// dummy signature, which an edge without keys denies (`unverifiable`)
/// unless its site allows unsigned passes. Devices and credentials whose
/// ids are in `exclude` are left alone (a scripted story drives them).
///
/// # Errors
/// As [`sim_readers`].
pub async fn sim_readers_signed(
    mqtt_url: &str,
    site: &Site,
    estate: &str,
    rate: f64,
    signer: Option<anju_rules::qr::SigningKey>,
    exclude: &[&str],
    cancel: CancellationToken,
) -> anyhow::Result<Arc<SimStats>> {
    let reg = &site.registry;
    anyhow::ensure!(
        reg.estates.iter().any(|e| e.code.as_str() == estate),
        "estate {estate:?} is not in the site"
    );
    anyhow::ensure!(rate > 0.0, "rate must be positive");
    let readers: Vec<&str> = reg
        .devices
        .iter()
        .filter(|d| d.estate.as_str() == estate && d.kind == DeviceKind::Reader)
        .map(|d| d.id.as_str())
        .filter(|d| !exclude.contains(d))
        .collect();
    let scanners: Vec<&str> = reg
        .devices
        .iter()
        .filter(|d| d.estate.as_str() == estate && d.kind == DeviceKind::Scanner)
        .map(|d| d.id.as_str())
        .collect();
    anyhow::ensure!(
        !readers.is_empty() || !scanners.is_empty(),
        "estate {estate:?} has no readers or scanners"
    );
    let persons: std::collections::HashSet<&str> = reg
        .persons
        .iter()
        .filter(|p| p.unit.estate.as_str() == estate && p.lease_end.is_none())
        .map(|p| p.id.as_str())
        .collect();
    let creds: Vec<(CredentialKind, &str)> = reg
        .credentials
        .iter()
        .filter(|c| c.kind != CredentialKind::Qr && persons.contains(c.person.as_str()))
        .filter(|c| !exclude.contains(&c.id.as_str()))
        .map(|c| (c.kind, c.id.as_str()))
        .collect();
    let units: Vec<String> = reg
        .units
        .iter()
        .filter(|u| u.key.estate.as_str() == estate)
        .map(|u| u.key.to_string())
        .collect();

    let client_id = format!("anju-sim-{estate}-{}", std::process::id());
    let hard_stop = CancellationToken::new();
    let (client, task) = publisher(mqtt_url, &client_id, hard_stop.clone())?;
    let stats = Arc::new(SimStats::default());
    let mut rng = Rng(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
        | 1);
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut heartbeat = tokio::time::interval(Duration::from_secs(30));
    let mut seq: u64 = 0;
    info!(%estate, rate, readers = readers.len(), scanners = scanners.len(), "Simulating readers.");
    loop {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => break,
            _ = heartbeat.tick() => {
                let now = chrono::Utc::now().to_rfc3339();
                for d in &readers {
                    let body = format!(r#"{{"ts":"{now}","online":true}}"#);
                    if client.publish(topic::gate_topic(estate, d, "status"), QoS::AtLeastOnce, false, body).await.is_ok() {
                        stats.status.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            _ = tick.tick() => {
                seq += 1;
                let now = chrono::Utc::now();
                let id = format!("sim-{}-{seq}", now.timestamp_millis());
                let use_scanner = !scanners.is_empty() && (readers.is_empty() || rng.chance(0.1));
                let (t, body, counter) = if use_scanner {
                    let d = scanners[rng.below(scanners.len())];
                    let code = if rng.chance(0.05) || units.is_empty() {
                        "AJ1.forged.pass".to_owned()
                    } else {
                        let p = PassPayload {
                            id: format!("V{seq}"),
                            unit: units[rng.below(units.len())].clone(),
                            kind: PassKind::Visitor,
                            nbf: now - chrono::Duration::hours(1),
                            exp: now + chrono::Duration::hours(4),
                            single_use: true,
                        };
                        match &signer {
                            Some(k) => anju_rules::qr::issue(&p, k)?,
                            None => encode_code(&p, b"sim"),
                        }
                    };
                    let body = serde_json::json!({"event_id": id, "ts": now.to_rfc3339(), "code": code});
                    (topic::scan_topic(estate, d), body, &stats.scans)
                } else {
                    let d = readers[rng.below(readers.len())];
                    if rng.chance(0.08) {
                        let state = if rng.chance(0.5) { "opened" } else { "closed" };
                        let body = serde_json::json!({"event_id": id, "ts": now.to_rfc3339(), "state": state});
                        (topic::gate_topic(estate, d, "door"), body, &stats.door)
                    } else {
                        let denied = creds.is_empty() || rng.chance(0.04);
                        let (kind, cid) = if denied {
                            (CredentialKind::Card, format!("UNKNOWN-{}", rng.below(50)))
                        } else {
                            let (k, c) = creds[rng.below(creds.len())];
                            (k, c.to_owned())
                        };
                        let mut body = serde_json::json!({
                            "event_id": id,
                            "ts": now.to_rfc3339(),
                            "credential": {"kind": kind.as_str(), "id": cid},
                            "result": if denied { "denied" } else { "granted" },
                            "direction": if rng.chance(0.5) { "in" } else { "out" },
                        });
                        if denied {
                            body["reason"] = "unknown credential".into();
                        }
                        (topic::gate_topic(estate, d, "access"), body, &stats.access)
                    }
                };
                if client.publish(t, QoS::AtLeastOnce, false, body.to_string()).await.is_ok() {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
    // Let what was queued go out before leaving.
    if client.disconnect().await.is_err() {
        hard_stop.cancel();
    }
    if tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .is_err()
    {
        hard_stop.cancel();
    }
    Ok(stats)
}
