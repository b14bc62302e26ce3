//! Event ingest throughput through `Store::insert_events` (batched,
//! idempotent, durable commits), for `bench/store/run.sh`, which runs a plain
//! batched-insert peer side by side and reports the ratio.
//!
//! Usage: `cargo bench -p anju-store --features test-utils --bench ingest --
//!         URL EVENTS BATCH` (URL: sqlite://FILE or postgres://…; the schema
//!         is migrated; events get fresh ids).
#![allow(clippy::unwrap_used, clippy::expect_used)] // benchmark tool

use anju_core::*;
use chrono::{TimeZone, Utc};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let url = args
        .first()
        .cloned()
        .unwrap_or_else(|| "sqlite:///tmp/anju-bench.db".into());
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let batch: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let store = anju_store::Store::connect(&url).await.expect("store");
        let run = Utc::now().timestamp_micros();
        let t0 = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let events: Vec<Event> = (0..n)
            .map(|i| Event::Access {
                estate: Some("E01".into()),
                device: format!("E01-gr-b{}", i % 80).into(),
                body: AccessEvent {
                    event_id: format!("{run}-{i}").into(),
                    ts: t0 + chrono::Duration::milliseconds(i as i64 * 250),
                    credential: CredentialRef {
                        kind: CredentialKind::Card,
                        id: format!("C{:08}", i % 13_000).into(),
                    },
                    result: if i % 20 == 0 {
                        AccessResult::Denied
                    } else {
                        AccessResult::Granted
                    },
                    direction: if i % 2 == 0 { Direction::In } else { Direction::Out },
                    reason: None,
                },
            })
            .collect();
        let start = Instant::now();
        let mut stored = 0;
        for chunk in events.chunks(batch) {
            stored += store.insert_events(chunk).await.expect("insert");
        }
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(stored as usize, n);
        // Redelivery of the whole set stores nothing.
        let again = store.insert_events(&events[..batch.min(n)]).await.unwrap();
        assert_eq!(again, 0);
        println!(
            "{{\"backend\":\"{:?}\",\"events\":{n},\"batch\":{batch},\"seconds\":{secs:.3},\"events_per_s\":{:.0}}}",
            store.backend(),
            n as f64 / secs
        );
    });
}
