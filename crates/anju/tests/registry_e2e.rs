//! A card reported lost through the API is blocked at a running edge
//! (issue 15's must-show), on the real path: `anju import` into a SQLite or
//! PostgreSQL centre, `anju serve`, `anju edge` over Mosquitto. The card is
//! used at the gate (nothing to say), an administrator records it lost
//! (`GET` for the ETag, `POST …/status` with `If-Match`), and the next use
//! at the gate — a reader that does not know yet and grants it — becomes a
//! `blocked_credential_used` alert in the API and on the alerts topic. The
//! edge is the same process throughout, its ingest worker never restarted.
//! Then a reader registered through the API (`POST /devices`) has its
//! messages accepted by that same edge.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use anju_store::testutil::TestStore;
use anju_store::Backend;
use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn lost_card_at_a_running_edge(backend: Backend, estate: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let central = rt.block_on(TestStore::new(backend)).expect("central store");
    let dir = tempfile::tempdir().unwrap();
    let site = write_site(dir.path(), estate);
    let site_s = site.to_str().unwrap();
    import_site(site_s, &central.url);
    add_user(&central.url, "adm", "admin", "adm-password");

    let port = free_port();
    let serve = anju()
        .args(["serve", "--site", site_s, "--db", &central.url])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("ANJU_DATA_DIR", dir.path().join("centre"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut serve = Proc(serve, "anju serve");
    let edge_health = free_port();
    let edge = anju()
        .args(["edge", "--site", site_s, "--estate", estate])
        .args(["--db", &central.url, "--mqtt", "mqtt://127.0.0.1:1883"])
        .args(["--health", &format!("127.0.0.1:{edge_health}")])
        .args(["--registry-refresh", "1"])
        .env("ANJU_DATA_DIR", dir.path().join("edge"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut edge = Proc(edge, "anju edge");
    let edge_pid = edge.0.id();
    let mut sub = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", "1883", "-t"])
        .arg(format!("anju/v1/{estate}/alerts"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("mosquitto_sub");
    let mqtt_alerts = collect(sub.stdout.take().unwrap());
    let _sub = Proc(sub, "mosquitto_sub");

    let token = login_when_up(port, "adm", "adm-password");
    let count_events = || count_events(&rt, &central.url, estate);
    let gate = |what: &str| format!("anju/v1/{estate}/gate/gr-1/{what}");
    let now = || chrono::Utc::now().to_rfc3339();
    wait_for_edge(&rt, &central.url, estate);
    let access = |id: &str| {
        publish(
            &gate("access"),
            format!(
                r#"{{"event_id":"{id}","ts":"{}","credential":{{"kind":"card","id":"C-AA"}},"result":"granted","direction":"in"}}"#,
                now()
            )
            .as_bytes(),
        );
    };
    let blocked = || {
        let (st, v) = http(
            port,
            "GET",
            "/api/v1/alerts?code=blocked_credential_used",
            Some(&token),
            "",
        );
        assert_eq!(st, 200, "{v}");
        v["alerts"].as_array().unwrap().clone()
    };

    // Before the loss: an ordinary use, stored, no alert.
    let before = count_events();
    access("before-loss");
    wait_until("the ordinary use at the centre", 60, || {
        (count_events() > before).then_some(())
    });

    // The tenant calls the office: the card is recorded lost.
    let (st, head, body) = http_with(
        port,
        "GET",
        "/api/v1/credentials/card/C-AA",
        Some(&token),
        "",
        &[],
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let etag = head
        .lines()
        .find_map(|l| l.strip_prefix("etag: "))
        .expect("an ETag")
        .trim()
        .to_owned();
    let body = r#"{"status":"lost","note":"reported by the tenant"}"#;
    let (st, _, b) = http_with(
        port,
        "POST",
        "/api/v1/credentials/card/C-AA/status",
        Some(&token),
        body,
        &[],
    );
    assert_eq!(st, 428, "no If-Match: {}", String::from_utf8_lossy(&b));
    let (st, _, b) = http_with(
        port,
        "POST",
        "/api/v1/credentials/card/C-AA/status",
        Some(&token),
        body,
        &[("If-Match", &etag)],
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));

    // The card used again (the reader still grants it). The edge reloads
    // the registry within its refresh period; uses are repeated, each a
    // new event, until the alert is there.
    let mut n = 0;
    let alert = wait_until("blocked_credential_used in the API", 90, || {
        n += 1;
        access(&format!("after-loss-{n}"));
        std::thread::sleep(Duration::from_millis(700));
        blocked().into_iter().next()
    });
    assert_eq!(alert["subject"]["credential"], "C-AA", "{alert}");
    assert_eq!(alert["unit"], "101");
    assert_eq!(alert["severity"], "high");
    let ev = alert["evidence"].as_array().unwrap();
    assert!(
        ev.iter()
            .all(|e| e["event_id"].as_str().unwrap().starts_with("after-loss-")),
        "only uses after the loss: {ev:?}"
    );
    assert!(ev[0]["note"].as_str().unwrap().contains("lost"), "{ev:?}");
    wait_until("the alert on the alerts topic", 30, || {
        mqtt_alerts
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("blocked_credential_used"))
            .then_some(())
    });

    // A reader installed at the door: before it is registered its messages
    // are refused (an unknown device), stored nowhere.
    publish(
        &format!("anju/v1/{estate}/gate/gr-2/door"),
        format!(
            r#"{{"event_id":"gr2-early","ts":"{}","state":"closed"}}"#,
            now()
        )
        .as_bytes(),
    );
    // A known reader's message after it: once it is stored, the early one
    // had its turn.
    let before = count_events();
    publish(
        &format!("anju/v1/{estate}/gate/gr-1/door"),
        format!(
            r#"{{"event_id":"gr1-sync","ts":"{}","state":"closed"}}"#,
            now()
        )
        .as_bytes(),
    );
    wait_until("the known reader's event at the centre", 60, || {
        (count_events() > before).then_some(())
    });
    // Registered through the API: the running edge accepts its messages
    // after its next registry reload.
    let (st, _, b) = http_with(
        port,
        "POST",
        "/api/v1/devices",
        Some(&token),
        &format!(r#"{{"estate":"{estate}","id":"gr-2","kind":"reader","entrance":"door-1"}}"#),
        &[],
    );
    assert_eq!(st, 201, "{}", String::from_utf8_lossy(&b));
    let from_gr2 = || {
        rt.block_on(async {
            let s = anju_store::Store::connect(&central.url).await.unwrap();
            let n = s
                .events_after(0, 100_000)
                .await
                .unwrap()
                .iter()
                .filter(|(_, e)| serde_json::to_value(e).unwrap()["device"] == "gr-2")
                .count();
            s.close().await;
            n
        })
    };
    assert_eq!(from_gr2(), 0, "an unregistered reader's message was stored");
    let mut k = 0;
    wait_until("the new reader's event at the centre", 90, || {
        k += 1;
        publish(
            &format!("anju/v1/{estate}/gate/gr-2/door"),
            format!(
                r#"{{"event_id":"gr2-{k}","ts":"{}","state":"closed"}}"#,
                now()
            )
            .as_bytes(),
        );
        std::thread::sleep(Duration::from_millis(700));
        (from_gr2() > 0).then_some(())
    });

    // Same edge process, its ingest worker never restarted.
    assert!(edge.alive(), "anju edge died");
    assert_eq!(edge.0.id(), edge_pid);
    assert!(serve.alive(), "anju serve died");
    let (_, m) = http_text(edge_health, "GET", "/metrics", None, "");
    assert!(
        m.contains(&format!(
            "anju_task_restarts_total{{task=\"ingest:{estate}\"}} 0"
        )),
        "{m}"
    );
    assert!(
        m.contains(&format!("anju_task_up{{task=\"registry:{estate}\"}} 1")),
        "{m}"
    );
}

#[test]
fn lost_card_sqlite_centre() {
    lost_card_at_a_running_edge(Backend::Sqlite, "LCS");
}

#[test]
fn lost_card_postgres_centre() {
    lost_card_at_a_running_edge(Backend::Postgres, "LCP");
}
