//! Signed QR passes at the edge, against the real Mosquitto: a worker whose
//! checker holds the site's key allows a pass signed with it and denies a
//! tampered one, one signed by another key and a replayed single-use one.

mod common;

use anju_bus::mqtt::{publisher, MqttConfig};
use anju_bus::topic;
use anju_edge::worker::IngestStats;
use anju_edge::{spawn_ingest, WorkerConfig};
use anju_rules::qr::{self, PassChecker, PassKind, PassPayload, SigningKey};
use anju_rules::RulesConfig;
use anju_store::testutil::TestStore;
use anju_store::Backend;
use common::*;
use rumqttc::QoS;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_passes_are_checked_with_the_site_key() {
    let key = SigningKey::from_bytes(&[42; 32]);
    let other = SigningKey::from_bytes(&[43; 32]);
    let now = chrono::Utc::now();
    let estate = unique("S");
    let unit = format!("{estate}/1/101");
    let pass = |id: &str, single_use: bool| PassPayload {
        id: id.into(),
        unit: unit.clone(),
        kind: PassKind::Visitor,
        nbf: now - chrono::Duration::hours(1),
        exp: now + chrono::Duration::hours(1),
        single_use,
    };
    let good = qr::issue(&pass("V-1", true), &key).expect("issue");
    let parts: Vec<&str> = good.split('.').collect();
    let payload = qr::b64url_decode(parts[1]).expect("b64");
    let tampered_payload = String::from_utf8(payload)
        .expect("utf8")
        .replace(&unit, &format!("{estate}/1/102"));
    let tampered = format!(
        "AJ1.{}.{}",
        qr::b64url_encode(tampered_payload.as_bytes()),
        parts[2]
    );
    let foreign = qr::issue(&pass("V-2", false), &other).expect("issue");
    // Expired an hour ago; its scanner's clock is two hours behind, which
    // must not make it valid.
    let expired = qr::issue(
        &PassPayload {
            nbf: now - chrono::Duration::hours(3),
            exp: now - chrono::Duration::hours(1),
            ..pass("V-3", false)
        },
        &key,
    )
    .expect("issue");

    // Signed by the site's key, for a unit of another estate.
    let elsewhere = qr::issue(
        &PassPayload {
            unit: "OTHER/1/101".into(),
            ..pass("V-4", false)
        },
        &key,
    )
    .expect("issue");
    let ts = TestStore::new(Backend::Sqlite).await.expect("store");
    let cancel = CancellationToken::new();
    let mut decisions = subscriber(&topic::decision_topic(&estate, "qr-e1"), cancel.clone()).await;
    let mut wcfg = WorkerConfig::new(estate.clone());
    wcfg.qr = PassChecker::with_keys([key.verifying_key()]);
    let h = spawn_ingest(
        &MqttConfig::new(mqtt_url(), unique("edge")),
        wcfg,
        Arc::new(registry(&estate)),
        anju_core::Tz::Asia__Shanghai,
        RulesConfig::default(),
        ts.store.clone(),
        &anju_backoff::Tasks::new(),
        cancel.clone(),
    )
    .expect("ingest");
    let link = h.link.clone();
    wait_for("subscriptions", 30, || {
        IngestStats::get(&link.subscribed) >= 4
    })
    .await;
    let (pubc, _task) = publisher(&mqtt_url(), &unique("pub"), cancel.clone()).expect("pub");
    let cases = [
        ("s-1", &good, "grant", ""),
        ("s-2", &tampered, "deny", "forged"),
        ("s-3", &foreign, "deny", "forged"),
        ("s-4", &good, "deny", "replayed"),
        ("s-5", &expired, "deny", "expired"),
        ("s-6", &elsewhere, "deny", "wrong_estate"),
    ];
    for (id, code, decision, reason) in cases {
        let scanner_clock = if id == "s-5" {
            chrono::Utc::now() - chrono::Duration::hours(2)
        } else {
            chrono::Utc::now()
        };
        pubc.publish(
            topic::scan_topic(&estate, "qr-e1"),
            QoS::AtLeastOnce,
            false,
            serde_json::json!({"event_id": id, "ts": scanner_clock, "code": code}).to_string(),
        )
        .await
        .expect("publish");
        let (_, payload) = tokio::time::timeout(Duration::from_secs(60), decisions.recv())
            .await
            .expect("a decision in time")
            .expect("decision");
        let d: serde_json::Value = serde_json::from_slice(&payload).expect("json");
        assert_eq!(d["event_id"], id, "{d}");
        assert_eq!(d["decision"], decision, "{d}");
        if !reason.is_empty() {
            assert_eq!(d["reason"], reason, "{d}");
        }
    }
    cancel.cancel();
    h.join().await;
    ts.cleanup().await;
}
