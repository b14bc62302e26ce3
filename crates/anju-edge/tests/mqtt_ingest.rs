//! Against the real Mosquitto and real stores (SQLite and PostgreSQL).

mod common;

use anju_bus::mqtt::{publisher, MqttConfig};
use anju_bus::topic;
use anju_core::{Event, Sighting};
use anju_edge::worker::IngestStats;
use anju_edge::{spawn_ingest, WorkerConfig};
use anju_rules::RulesConfig;
use anju_store::testutil::TestStore;
use anju_store::Backend;
use common::*;
use rumqttc::QoS;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

fn access(id: &str, card: &str, ts: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        r#"{{"event_id":"{id}","ts":"{}","credential":{{"kind":"card","id":"{card}"}},"result":"granted","direction":"in"}}"#,
        ts.to_rfc3339()
    )
}

async fn good_once_bad_dead_lettered(backend: Backend) {
    let ts = TestStore::new(backend).await.expect("store");
    let estate = unique("I");
    let cancel = CancellationToken::new();
    let reg = Arc::new(registry(&estate));
    let cfg = MqttConfig::new(mqtt_url(), unique("edge"));
    let h = spawn_ingest(
        &cfg,
        WorkerConfig::new(estate.clone()),
        reg,
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
    let t = topic::gate_topic(&estate, "gr-e1", "access");
    let now = chrono::Utc::now();
    let msgs: Vec<(String, Vec<u8>)> = vec![
        (t.clone(), access("e1", "C-P1", now).into_bytes()),
        (t.clone(), access("e1", "C-P1", now).into_bytes()), // redelivery
        (t.clone(), br#"{"event_id":"e2","ts":"yesterday"}"#.to_vec()),
        (
            topic::gate_topic(&estate, "nope", "door"),
            br#"{"event_id":"d","ts":"2026-03-01T08:00:00Z","state":"opened"}"#.to_vec(),
        ),
        (t.clone(), access("e3", "C-P1", now).into_bytes()),
    ];
    for (topic, payload) in msgs {
        pubc.publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .expect("publish");
    }
    let stats = h.stats.clone();
    wait_for("all five acked", 60, || IngestStats::get(&stats.acked) >= 5).await;

    assert_eq!(
        ts.store.count_events(Some(&estate)).await.expect("count"),
        2
    );
    assert_eq!(IngestStats::get(&stats.dead_letters), 2);
    assert_eq!(IngestStats::get(&stats.duplicates), 1);
    let dl = ts.store.dead_letters(100).await.expect("dead letters");
    let mine: Vec<_> = dl.iter().filter(|d| d.topic.contains(&estate)).collect();
    assert_eq!(mine.len(), 2, "{dl:?}");
    assert!(mine
        .iter()
        .any(|d| d.reason.contains("payload") && d.payload.contains("yesterday")));
    assert!(mine.iter().any(|d| d.reason.contains("unknown device")));
    assert!(mine.iter().all(|d| d.source == "mqtt"));

    cancel.cancel();
    h.join().await;
    ts.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stores_good_events_once_and_dead_letters_bad_ones() {
    good_once_bad_dead_lettered(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stores_good_events_once_and_dead_letters_bad_ones() {
    good_once_bad_dead_lettered(Backend::Postgres).await;
}

/// A card of unit 102 used at the entrance while an enrolled person of unit
/// 101 is the face seen there: `credential_misuse` on the alerts topic, and
/// stored. The sighting comes in-process, as the camera path delivers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credential_misuse_is_published_on_the_alerts_topic() {
    let ts = TestStore::new(Backend::Sqlite).await.expect("store");
    let estate = unique("M");
    let cancel = CancellationToken::new();
    let mut alerts = subscriber(&topic::alerts_topic(&estate), cancel.clone()).await;
    let cfg = MqttConfig::new(mqtt_url(), unique("edge"));
    let h = spawn_ingest(
        &cfg,
        WorkerConfig::new(estate.clone()),
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
    let now = chrono::Utc::now();
    h.inject
        .send(
            Event::Sighting {
                estate: None,
                body: Sighting {
                    event_id: Some("s-1".into()),
                    ts: now,
                    camera: "cam-e1".into(),
                    person: Some("P1".into()),
                    stranger: None,
                    score: Some(0.8),
                    direction: Some(anju_core::Direction::In),
                    snapshot: None,
                },
            }
            .into(),
        )
        .await
        .expect("inject");
    let (pubc, _task) = publisher(&mqtt_url(), &unique("pub"), cancel.clone()).expect("pub");
    pubc.publish(
        topic::gate_topic(&estate, "gr-e1", "access"),
        QoS::AtLeastOnce,
        false,
        access("a-1", "C-P2", now),
    )
    .await
    .expect("publish");

    let (t, payload) = tokio::time::timeout(Duration::from_secs(60), alerts.recv())
        .await
        .expect("an alert in time")
        .expect("alert");
    assert_eq!(t, topic::alerts_topic(&estate));
    let a: serde_json::Value = serde_json::from_slice(&payload).expect("json");
    assert_eq!(a["code"], "credential_misuse", "{a}");
    assert_eq!(a["estate"], estate.as_str());
    for k in [
        "id",
        "severity",
        "status",
        "subject",
        "opened_at",
        "updated_at",
        "evidence",
        "title_zh",
        "title_en",
    ] {
        assert!(a.get(k).is_some(), "alert lacks {k}: {a}");
    }
    let id = a["id"].as_i64().expect("id");
    let stored = ts
        .store
        .get_alert(id, &anju_store::Scope::all())
        .await
        .expect("get")
        .expect("stored alert");
    assert_eq!(stored.code.as_str(), "credential_misuse");

    cancel.cancel();
    h.join().await;
    ts.cleanup().await;
}

/// Every scan is answered on the decision topic; a forged code is denied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_scans_are_answered_on_the_decision_topic() {
    let ts = TestStore::new(Backend::Sqlite).await.expect("store");
    let estate = unique("Q");
    let cancel = CancellationToken::new();
    let mut decisions = subscriber(&topic::decision_topic(&estate, "qr-e1"), cancel.clone()).await;
    let cfg = MqttConfig::new(mqtt_url(), unique("edge"));
    let h = spawn_ingest(
        &cfg,
        WorkerConfig::new(estate.clone()),
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
    let started = Instant::now();
    pubc.publish(
        topic::scan_topic(&estate, "qr-e1"),
        QoS::AtLeastOnce,
        false,
        format!(
            r#"{{"event_id":"q-1","ts":"{}","code":"not-a-pass"}}"#,
            chrono::Utc::now().to_rfc3339()
        ),
    )
    .await
    .expect("publish");
    let (_, payload) = tokio::time::timeout(Duration::from_secs(60), decisions.recv())
        .await
        .expect("a decision in time")
        .expect("decision");
    let latency = started.elapsed();
    let d: serde_json::Value = serde_json::from_slice(&payload).expect("json");
    assert_eq!(d["event_id"], "q-1");
    assert_eq!(d["decision"], "deny");
    assert_eq!(d["reason"], "forged");
    eprintln!("QR decision round trip (publish → decision received): {latency:?}");

    cancel.cancel();
    h.join().await;
    ts.cleanup().await;
}

/// A backlog far larger than the hand-off and request channels, waiting in
/// the broker for the worker's persistent session (a worker back from an
/// outage), is drained completely. Regression: the worker awaited room in
/// rumqttc's request channel for its acks while the poll loop, which alone
/// drains that channel, awaited room in the hand-off channel for the next
/// publish; both waited forever. Small channels make that quick to reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_larger_than_the_channels_is_drained() {
    let ts = TestStore::new(Backend::Sqlite).await.expect("store");
    let estate = unique("B");
    let reg = Arc::new(registry(&estate));
    let mut cfg = MqttConfig::new(mqtt_url(), unique("edge"));
    cfg.channel = 4;
    let start = |cancel: &CancellationToken| {
        spawn_ingest(
            &cfg,
            WorkerConfig::new(estate.clone()),
            reg.clone(),
            anju_core::Tz::Asia__Shanghai,
            RulesConfig::default(),
            ts.store.clone(),
            &anju_backoff::Tasks::new(),
            cancel.clone(),
        )
        .expect("ingest")
    };
    // Subscribe once, then go offline: the broker keeps the session.
    let cancel = CancellationToken::new();
    let h = start(&cancel);
    let link = h.link.clone();
    wait_for("subscriptions", 30, || {
        IngestStats::get(&link.subscribed) >= 4
    })
    .await;
    cancel.cancel();
    h.join().await;

    // Below Mosquitto's default queue limit for an offline client (1,000).
    let n = 900;
    let pub_cancel = CancellationToken::new();
    let (pubc, task) = publisher(&mqtt_url(), &unique("pub"), pub_cancel.clone()).expect("pub");
    let t = topic::gate_topic(&estate, "gr-e1", "access");
    let now = chrono::Utc::now();
    for i in 0..n {
        pubc.publish(
            t.clone(),
            QoS::AtLeastOnce,
            false,
            access(&format!("b{i}"), "C-P1", now).into_bytes(),
        )
        .await
        .expect("publish");
    }
    pubc.disconnect().await.expect("disconnect");
    tokio::time::timeout(Duration::from_secs(60), task)
        .await
        .expect("publisher finished")
        .expect("publisher task");

    let cancel = CancellationToken::new();
    let h = start(&cancel);
    let stats = h.stats.clone();
    let link = h.link.clone();
    let deadline = Instant::now() + Duration::from_secs(120);
    while IngestStats::get(&stats.acked) < n {
        assert!(
            Instant::now() < deadline,
            "stalled: received {}, taken {}, acked {}, waiting {}, connects {}",
            IngestStats::get(&link.received),
            IngestStats::get(&stats.messages),
            IngestStats::get(&stats.acked),
            IngestStats::get(&stats.outgoing_waiting),
            IngestStats::get(&link.connects),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        ts.store.count_events(Some(&estate)).await.expect("count"),
        i64::try_from(n).expect("n")
    );
    cancel.cancel();
    h.join().await;
    ts.cleanup().await;
}
