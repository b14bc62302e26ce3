//! The durable outbox: the central store (real PostgreSQL behind a proxy we
//! can cut) goes away and comes back; nothing is lost, nothing doubled.

mod common;

use anju_core::{Alert, AlertCode, AlertStatus, Event, Severity, Subject};
use anju_edge::outbox::Forwarder;
use anju_store::testutil::TestStore;
use anju_store::Backend;
use common::*;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A TCP proxy whose network can be broken and restored (all open
/// connections cut, new ones refused), like crates.io's ChaosProxy.
struct Chaos {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Chaos {
    async fn start(target: String) -> Chaos {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        let up = Arc::new(AtomicBool::new(true));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, conns2) = (up.clone(), conns.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = l.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut out) = TcpStream::connect(&target).await {
                        tokio::io::copy_bidirectional(&mut inbound, &mut out)
                            .await
                            .ok();
                    }
                });
                conns2.lock().expect("lock").push(h);
            }
        });
        Chaos { addr, up, conns }
    }

    fn break_networking(&self) {
        self.up.store(false, Ordering::SeqCst);
        for h in self.conns.lock().expect("lock").drain(..) {
            h.abort();
        }
    }

    fn restore_networking(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

fn events(estate: &str, from: usize, n: usize) -> Vec<Event> {
    let t0 = chrono::Utc::now();
    (from..from + n)
        .map(|i| {
            let mut ev = anju_rules::sim::ev::access(
                t0 + chrono::Duration::milliseconds(i as i64),
                "gr-e1",
                "C-P1",
                true,
                anju_core::Direction::In,
                &format!("ev-{i}"),
            );
            ev.set_estate(estate.into());
            ev
        })
        .collect()
}

fn alert(estate: &str, n: usize) -> Alert {
    let now = chrono::Utc::now();
    Alert {
        id: 0,
        code: AlertCode::DoorForced,
        severity: Severity::High,
        status: AlertStatus::Open,
        estate: estate.into(),
        building: None,
        unit: None,
        subject: Subject::Device("gr-e1".into()),
        opened_at: now,
        updated_at: now,
        evidence: (0..n)
            .map(|_| anju_core::Evidence::new(now, "door"))
            .collect(),
        title_zh: AlertCode::DoorForced.title_zh().into(),
        title_en: AlertCode::DoorForced.title_en().into(),
        outcome: None,
        reason: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_store_outage_loses_nothing() {
    let local = TestStore::new(Backend::Sqlite).await.expect("local");
    let central = TestStore::new(Backend::Postgres).await.expect("central");
    let estate = unique("O");

    // The central store as the forwarder sees it: through the proxy.
    let authority = central
        .url
        .split('@')
        .nth(1)
        .and_then(|s| s.split('/').next())
        .expect("host:port in the PostgreSQL URL")
        .to_owned();
    let chaos = Chaos::start(authority.clone()).await;
    let via_proxy = central.url.replace(&authority, &chaos.addr.to_string());

    // Work done at the edge before and while forwarding.
    local
        .store
        .insert_events(&events(&estate, 0, 300))
        .await
        .expect("local write");
    // A finding of the edge's instant rules (an older edge queued alert
    // JSON, which reads as a finding: the same shape is used here).
    let a = alert(&estate, 1);
    let json = serde_json::to_string(&a).expect("json");
    local.store.outbox_push_finding(&json).await.expect("queue");

    let cancel = CancellationToken::new();
    let fwd = Forwarder::new(local.store.clone(), via_proxy, "edge-test");
    let stats = fwd.stats();
    let task = tokio::spawn(fwd.run(cancel.clone()));

    let count = |s: anju_store::Store, e: String| async move {
        s.count_events(Some(&e)).await.expect("count")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while count(central.store.clone(), estate.clone()).await < 300 {
        assert!(tokio::time::Instant::now() < deadline, "first delivery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Outage: the central store is unreachable while the edge keeps working.
    chaos.break_networking();
    let failures_before = stats.failures.load(Ordering::Relaxed);
    local
        .store
        .insert_events(&events(&estate, 300, 200))
        .await
        .expect("local write");
    let mut a2 = a.clone();
    a2.evidence = alert(&estate, 3).evidence;
    a2.updated_at = chrono::Utc::now();
    let json = serde_json::to_string(&a2).expect("json");
    local.store.outbox_push_finding(&json).await.expect("queue");
    // Replaying part of the history (a crash before the cursor moved) must
    // not double anything either.
    local
        .store
        .insert_events(&events(&estate, 250, 100))
        .await
        .expect("local write");

    let s2 = stats.clone();
    wait_for("a failed delivery attempt", 60, move || {
        s2.failures.load(Ordering::Relaxed) > failures_before
    })
    .await;
    assert_eq!(count(central.store.clone(), estate.clone()).await, 300);
    assert_eq!(count(local.store.clone(), estate.clone()).await, 500);

    // Restored: everything arrives, exactly once.
    chaos.restore_networking();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let n = count(central.store.clone(), estate.clone()).await;
        let findings = central
            .store
            .findings_after(0, 100)
            .await
            .expect("findings");
        let done = findings.len() == 2;
        if n == 500 && done {
            break;
        }
        assert!(n <= 500, "duplicates: {n}");
        assert!(findings.len() <= 2, "finding doubled: {findings:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery after the outage ({n})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        count(central.store.clone(), estate.clone()).await,
        count(local.store.clone(), estate.clone()).await
    );

    cancel.cancel();
    task.await.expect("join").expect("forwarder");
    local.cleanup().await;
    central.cleanup().await;
}
