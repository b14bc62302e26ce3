#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The edge worker killed with SIGKILL in the middle of a QoS-1 stream and
//! restarted with the same client id and data dir loses nothing and stores
//! nothing twice: Mosquitto redelivers what was not acknowledged (acks go
//! out only after the local store committed), the store drops redeliveries
//! of what was committed but not yet acknowledged.
//!
//! The edge runs in a child process (this test binary re-run with
//! `ANJU_SIGKILL_CHILD` set, see [`edge_child`]), so that `kill -9` hits a
//! real process with its SQLite file and its broker connection open.

mod common;

use anju_bus::mqtt::publisher;
use anju_bus::topic;
use anju_edge::worker::IngestStats;
use anju_edge::{start_edge, EdgeOptions};
use common::*;
use rumqttc::QoS;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::Row;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const N: usize = 1500;

/// Not a test of its own: the edge process that the parent kills. Runs only
/// when the parent sets `ANJU_SIGKILL_CHILD`.
#[test]
#[ignore = "run by sigkill_mid_stream_loses_nothing_and_duplicates_nothing as a child process"]
fn edge_child() {
    let Ok(site) = std::env::var("ANJU_SIGKILL_CHILD") else {
        return;
    };
    let estate = std::env::var("ANJU_SIGKILL_ESTATE").expect("estate");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut opts = EdgeOptions::new(site, estate);
        opts.mqtt = mqtt_url();
        opts.data_dir = PathBuf::from(std::env::var("ANJU_DATA_DIR").expect("data dir"));
        opts.client_id = Some(std::env::var("ANJU_SIGKILL_CLIENT").expect("client id"));
        let edge = start_edge(opts, CancellationToken::new())
            .await
            .expect("edge");
        let link = edge.ingest.link.clone();
        wait_for("subscriptions", 60, || {
            IngestStats::get(&link.subscribed) >= 4
        })
        .await;
        println!("EDGE-READY");
        // Until killed.
        std::future::pending::<()>().await;
    });
}

/// A copy of the example site with its estate renamed to `estate`, so that
/// no other test's publishers reach this edge.
fn site_copy(dir: &Path, estate: &str) -> PathBuf {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/example");
    for f in [
        "site.toml",
        "ledger.csv",
        "credentials.csv",
        "watchlist.csv",
    ] {
        let text = std::fs::read_to_string(src.join(f)).expect("example site");
        let text = if f == "site.toml" {
            text.replace("code = \"FCY\"", &format!("code = \"{estate}\""))
        } else {
            text.lines()
                .map(|l| match l.strip_prefix("FCY,") {
                    Some(rest) => format!("{estate},{rest}\n"),
                    None => format!("{l}\n"),
                })
                .collect()
        };
        std::fs::write(dir.join(f), text).expect("write site copy");
    }
    dir.join("site.toml")
}

/// Starts the edge child and waits (hang guard only) for its ready line.
fn spawn_edge(site: &Path, estate: &str, data: &Path, client: &str) -> Child {
    let mut child = Command::new(std::env::current_exe().expect("exe"))
        .args(["edge_child", "--exact", "--ignored", "--nocapture"])
        .env("ANJU_SIGKILL_CHILD", site)
        .env("ANJU_SIGKILL_ESTATE", estate)
        .env("ANJU_DATA_DIR", data)
        .env("ANJU_SIGKILL_CLIENT", client)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn edge child");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.contains("EDGE-READY") {
                tx.send(()).ok();
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(120))
        .expect("edge child ready in time");
    child
}

fn access(id: &str) -> Vec<u8> {
    format!(
        r#"{{"event_id":"{id}","ts":"{}","credential":{{"kind":"card","id":"C1001"}},"result":"granted","direction":"in"}}"#,
        chrono::Utc::now().to_rfc3339()
    )
    .into_bytes()
}

/// `(rows, distinct event ids)` of `estate` in the local store.
async fn counts(pool: &sqlx::SqlitePool, estate: &str) -> (i64, i64) {
    let row = sqlx::query(
        "SELECT COUNT(*), COUNT(DISTINCT device || '/' || event_id) FROM events WHERE estate = ?",
    )
    .bind(estate)
    .fetch_one(pool)
    .await
    .expect("count");
    (row.get(0), row.get(1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_stream_loses_nothing_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let estate = unique("K");
    let client = unique("edge-kill");
    let site = site_copy(dir.path(), &estate);
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");

    let mut edge = spawn_edge(&site, &estate, &data, &client);
    let db = data.join(format!("edge-{estate}.db"));
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            SqliteConnectOptions::from_str(&format!("sqlite://{}", db.display()))
                .expect("url")
                .read_only(true)
                .busy_timeout(Duration::from_secs(30)),
        )
        .await
        .expect("open the local store read-only");

    // Paced publisher: the stream lasts long enough to be cut in the middle.
    let cancel = CancellationToken::new();
    let (pubc, _task) = publisher(&mqtt_url(), &unique("pub"), cancel.clone()).expect("pub");
    let t = topic::gate_topic(&estate, "gr-n1", "access");
    let publishing = tokio::spawn(async move {
        for i in 0..N {
            pubc.publish(t.clone(), QoS::AtLeastOnce, false, access(&format!("k{i}")))
                .await
                .expect("publish");
            if i % 25 == 24 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        pubc
    });

    // Kill once part of the stream is stored, while the rest is still coming.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (n, _) = counts(&pool, &estate).await;
        if n as usize >= N / 5 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stored {n} before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = Command::new("kill")
        .args(["-9", &edge.id().to_string()])
        .status()
        .expect("kill -9");
    assert!(status.success());
    edge.wait().expect("reap");
    let (at_kill, _) = counts(&pool, &estate).await;
    let still_publishing = !publishing.is_finished();
    eprintln!("SIGKILL with {at_kill} of {N} stored, publisher still running: {still_publishing}");
    assert!((at_kill as usize) < N, "the kill came after the stream");

    let mut edge = spawn_edge(&site, &estate, &data, &client);
    let pubc = publishing.await.expect("publisher");

    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    let (n, distinct) = loop {
        let (n, distinct) = counts(&pool, &estate).await;
        if n as usize >= N {
            break (n, distinct);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "stored {n} of {N} after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Anything late (a redelivery stored twice) would show up here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (n2, distinct2) = counts(&pool, &estate).await;
    assert_eq!((n, distinct), (N as i64, N as i64));
    assert_eq!((n2, distinct2), (N as i64, N as i64));
    let ids: Vec<String> = sqlx::query_scalar("SELECT event_id FROM events WHERE estate = ?")
        .bind(&estate)
        .fetch_all(&pool)
        .await
        .expect("ids");
    let ids: std::collections::HashSet<String> = ids.into_iter().collect();
    for i in 0..N {
        assert!(ids.contains(&format!("k{i}")), "event k{i} lost");
    }

    edge.kill().ok();
    edge.wait().ok();
    drop(pubc);
    cancel.cancel();
    pool.close().await;
}
