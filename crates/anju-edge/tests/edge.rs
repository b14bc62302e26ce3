//! `anju edge` end to end on the example site: simulated readers publish to
//! Mosquitto, the edge worker stores into its local outbox, the forwarder
//! delivers to the central store; every published message is stored once.

mod common;

use anju_edge::worker::IngestStats;
use anju_edge::{sim_readers, start_edge, EdgeOptions};
use anju_store::testutil::TestStore;
use anju_store::Backend;
use common::*;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_readers_through_the_edge_to_the_central_store() {
    let site_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/example/site.toml");
    let site = anju_site::load(&site_path).expect("example site");
    let central = TestStore::new(Backend::Sqlite).await.expect("central");
    let data = std::env::temp_dir().join(unique("anju-edge-test-"));

    let mut opts = EdgeOptions::new(&site_path, "FCY");
    opts.db = Some(central.url.clone());
    opts.mqtt = mqtt_url();
    opts.data_dir = data.clone();
    opts.client_id = Some(unique("edge"));
    let cancel = CancellationToken::new();
    let edge = start_edge(opts, cancel.clone()).await.expect("edge");
    let link = edge.ingest.link.clone();
    wait_for("subscriptions", 30, || {
        IngestStats::get(&link.subscribed) >= 4
    })
    .await;

    let sim_cancel = CancellationToken::new();
    let sc = sim_cancel.clone();
    let url = mqtt_url();
    let sim = tokio::spawn(async move { sim_readers(&url, &site, "FCY", 200.0, sc).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sim_cancel.cancel();
    let stats = sim.await.expect("join").expect("sim");
    let published = stats.access.load(Ordering::Relaxed)
        + stats.door.load(Ordering::Relaxed)
        + stats.status.load(Ordering::Relaxed)
        + stats.scans.load(Ordering::Relaxed);
    assert!(published > 0);

    let ing = edge.ingest.stats.clone();
    wait_for("every simulated message acked", 60, || {
        IngestStats::get(&ing.acked) >= published
    })
    .await;
    assert_eq!(IngestStats::get(&ing.dead_letters), 0);
    // Every device message stored once; beside them, the passages fusion
    // judged (derived events, forwarded too).
    let device_events = |store: anju_store::Store| async move {
        let rows = store
            .local_events_after(0, 1_000_000)
            .await
            .expect("events");
        // Camera status events are the edge's own (the example site's
        // cameras at 127.0.0.1:8554 may be answered by another test's RTSP
        // server running at the same time): only device messages count.
        rows.iter()
            .filter(|(_, p, _)| {
                !p.contains("\"kind\":\"passage\"") && !p.contains("\"device\":\"cam-")
            })
            .count() as u64
    };
    assert_eq!(device_events(edge.local.clone()).await, published);
    if stats.scans.load(Ordering::Relaxed) > 0 {
        wait_for("QR decisions", 30, || IngestStats::get(&ing.decisions) > 0).await;
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let local_n = edge.local.count_events(Some("FCY")).await.expect("count");
        let n = central
            .store
            .count_events(Some("FCY"))
            .await
            .expect("count");
        if n == local_n {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "forwarded {n} of {local_n}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    cancel.cancel();
    edge.join().await;
    central.cleanup().await;
    std::fs::remove_dir_all(data).ok();
}
