//! Replicas that take over (issue 16's must-show): two `anju serve`
//! processes on one PostgreSQL store, one `anju edge` over Mosquitto. One
//! replica holds the analyzer's lease (an advisory lock) and owns the
//! alerts; the other stands by. Twelve cards are reported lost; their uses
//! at the gate become `blocked_credential_used` findings at the edge, which
//! the analyzer turns into alerts. The holder is killed with SIGKILL while
//! uses keep arriving; the standby takes the lease over and every expected
//! alert opens exactly once — none lost, none doubled — with each use's
//! evidence on it. The live alert stream (SSE) of the replica that stands
//! by carries the alerts the other replica's analyzer opens (it follows the
//! store by LISTEN/NOTIFY), and goes on across the takeover.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use anju_store::testutil::TestStore;
use anju_store::Backend;
use common::*;
use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

const CARDS: usize = 12;

fn serve(
    site: &str,
    db: &str,
    port: u16,
    dir: &std::path::Path,
) -> (Proc, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let mut child = anju()
        .args(["serve", "--site", site, "--db", db])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("ANJU_DATA_DIR", dir)
        .env("ANJU_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = collect(child.stderr.take().unwrap());
    (Proc(child, "anju serve"), log)
}

fn runs_analyzer(log: &std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> bool {
    log.lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("This replica runs the analyzer"))
}

fn login(port: u16) -> String {
    login_when_up(port, "op", "op-password")
}

/// The `blocked_credential_used` alerts as the API of `port` shows them:
/// credential → (how many alerts, evidence event ids of each).
fn blocked(port: u16, token: &str) -> BTreeMap<String, Vec<Vec<String>>> {
    let (st, v) = http(
        port,
        "GET",
        "/api/v1/alerts?code=blocked_credential_used&limit=500",
        Some(token),
        "",
    );
    assert_eq!(st, 200, "{v}");
    let mut out: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for a in v["alerts"].as_array().unwrap() {
        let ev = a["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_id"].as_str().unwrap_or("").to_owned())
            .collect();
        out.entry(a["subject"]["credential"].as_str().unwrap().to_owned())
            .or_default()
            .push(ev);
    }
    out
}

#[test]
fn analyzer_fails_over_between_replicas_on_postgres() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let central = rt
        .block_on(TestStore::new(Backend::Postgres))
        .expect("central store");
    let dir = tempfile::tempdir().unwrap();
    let estate = "FOV";
    let site = write_site(dir.path(), estate);
    // Twelve more households, each with a card.
    let mut ledger = std::fs::read_to_string(dir.path().join("ledger.csv")).unwrap();
    let mut creds = std::fs::read_to_string(dir.path().join("credentials.csv")).unwrap();
    for i in 0..CARDS {
        let idn = anju_rules::sim::id_number(100 + i as u64, 1960);
        ledger.push_str(&format!(
            "{estate},1,2{i:02},50,HX{i},PX{i},Person X{i},tenant,{idn},,1960,0,2020-01-01,\n"
        ));
        creds.push_str(&format!("card,CX{i},PX{i},,\n"));
    }
    std::fs::write(dir.path().join("ledger.csv"), ledger).unwrap();
    std::fs::write(dir.path().join("credentials.csv"), creds).unwrap();
    let site_s = site.to_str().unwrap();
    import_site(site_s, &central.url);
    add_user(&central.url, "op", "operator", "op-password");
    // Every card reported lost (as the API records it).
    rt.block_on(async {
        let s = anju_store::Store::connect(&central.url).await.unwrap();
        for i in 0..CARDS {
            s.set_credential_status(
                anju_core::CredentialKind::Card,
                &format!("CX{i}"),
                anju_core::CredentialStatus::Lost,
                Some("failover test"),
                1,
                anju_store::Change {
                    by: "test",
                    at: chrono::Utc::now(),
                },
            )
            .await
            .unwrap();
        }
        s.close().await;
    });

    let (pa, pb) = (free_port(), free_port());
    let (serve_a, log_a) = serve(site_s, &central.url, pa, &dir.path().join("a"));
    let mut serve_a = Some(serve_a);
    let ta = login(pa);
    wait_until("replica A holding the analyzer's lease", 30, || {
        runs_analyzer(&log_a).then_some(())
    });
    let (mut serve_b, log_b) = serve(site_s, &central.url, pb, &dir.path().join("b"));
    let tb = login(pb);
    wait_until("replica B standing by", 30, || {
        log_b
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("stands by"))
            .then_some(())
    });
    assert!(!runs_analyzer(&log_b), "exactly one analyzer");
    let stream_b = sse_alerts(pb, &tb);

    let edge = anju()
        .args(["edge", "--site", site_s, "--estate", estate])
        .args(["--db", &central.url, "--mqtt", "mqtt://127.0.0.1:1883"])
        .env("ANJU_DATA_DIR", dir.path().join("edge"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let _edge = Proc(edge, "anju edge");
    let now = || chrono::Utc::now().to_rfc3339();
    let gate = format!("anju/v1/{estate}/gate/gr-1");
    wait_for_edge(&rt, &central.url, estate);
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut use_card = |i: usize, n: usize| {
        let id = format!("use-{i}-{n}");
        publish(
            &format!("{gate}/access"),
            format!(
                r#"{{"event_id":"{id}","ts":"{}","credential":{{"kind":"card","id":"CX{i}"}},"result":"granted","direction":"in"}}"#,
                now()
            )
            .as_bytes(),
        );
        expected.entry(format!("CX{i}")).or_default().push(id);
    };

    // Phase 1: four cards, through replica A's analyzer.
    for i in 0..4 {
        use_card(i, 0);
    }
    wait_until("four alerts", 60, || {
        (blocked(pb, &tb).len() == 4).then_some(())
    });
    // Opened by A's analyzer, seen live on B.
    let streamed = |s: &std::sync::Arc<std::sync::Mutex<Vec<SseAlert>>>| {
        s.lock()
            .unwrap()
            .iter()
            .filter(|e| e.alert["code"] == "blocked_credential_used")
            .filter_map(|e| e.alert["subject"]["credential"].as_str().map(str::to_owned))
            .collect::<std::collections::BTreeSet<String>>()
    };
    wait_until("A's four alerts on B's live stream", 30, || {
        (streamed(&stream_b).len() == 4).then_some(())
    });
    // Phase 2: uses keep arriving; A is killed among them.
    use_card(4, 0);
    use_card(0, 1);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!runs_analyzer(&log_b), "B took over before A died");
    let b_lines = log_b.lock().unwrap().len();
    let killed = Instant::now();
    let mut a = serve_a.take().unwrap();
    a.0.kill().unwrap();
    a.0.wait().unwrap();
    std::mem::forget(a);
    for i in 5..9 {
        use_card(i, 0);
    }
    use_card(1, 1);
    wait_until("replica B taking the analyzer over", 60, || {
        log_b.lock().unwrap()[b_lines..]
            .iter()
            .any(|l| l.contains("This replica runs the analyzer"))
            .then_some(())
    });
    let takeover = killed.elapsed();
    // Phase 3: through B.
    for i in 9..CARDS {
        use_card(i, 0);
    }
    wait_until("every expected alert", 90, || {
        let got = blocked(pb, &tb);
        let complete = got.len() == CARDS
            && expected.iter().all(|(c, ids)| {
                got.get(c).is_some_and(|alerts| {
                    ids.iter()
                        .all(|id| alerts.iter().flatten().any(|e| e == id))
                })
            });
        complete.then_some(())
    });
    let first_alert_after = killed.elapsed();
    // A duplicate would come later, if at all: look again after several of
    // the analyzer's polls.
    std::thread::sleep(Duration::from_secs(4));
    let got = blocked(pb, &tb);
    assert_eq!(got.len(), CARDS);
    for (c, alerts) in &got {
        assert_eq!(
            alerts.len(),
            1,
            "{c} opened {} times: {alerts:?}",
            alerts.len()
        );
        let mut ev = alerts[0].clone();
        ev.sort();
        let before = ev.len();
        ev.dedup();
        assert_eq!(ev.len(), before, "{c}: evidence doubled: {:?}", alerts[0]);
    }
    assert!(serve_b.alive(), "replica B died");
    // B's live stream: every alert, before and after the takeover, in the
    // store's order.
    wait_until("every alert on B's live stream", 30, || {
        (streamed(&stream_b).len() == CARDS).then_some(())
    });
    let ids: Vec<u64> = stream_b.lock().unwrap().iter().map(|e| e.id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "event ids grow: {ids:?}"
    );
    let (st, body) = http_text(pb, "GET", "/readyz", None, "");
    assert_eq!(st, 200, "{body}");
    eprintln!(
        "failover: replica A killed; B held the analyzer's lease after {:.1} s; all {CARDS} alerts (each once) after {:.1} s",
        takeover.as_secs_f64(),
        first_alert_after.as_secs_f64()
    );
    drop(serve_b);
    let _ = ta;
}
