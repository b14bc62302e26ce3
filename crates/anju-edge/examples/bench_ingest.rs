//! MQTT event ingest into the edge's durable store vs a plain subscriber
//! (`mosquitto_sub`) on the same broker (bench/ingest/run.sh).
//!
//! `bench_ingest MQTT_URL N`: the same N QoS-1 gate events (one
//! `mosquitto_pub -l` run per case) go to
//! - **drain**: a persistent session that is offline while they are
//!   published, then timed from connect until all N are received (plain
//!   subscriber: `mosquitto_sub -c -q 1 -C N`) or committed to the local
//!   store (the edge worker: `start_edge`, count of the outbox's events);
//! - **live**: a connected consumer, timed from the start of the publisher
//!   until all N are received / committed.
//!
//! Prints one JSON line per measurement.

use anju_bus::mqtt::parse_broker_url;
use anju_bus::topic;
use anju_edge::worker::IngestStats;
use anju_edge::{start_edge, EdgeHandle, EdgeOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// The example site with its estate renamed and its cameras left out.
fn site_copy(dir: &Path, estate: &str) -> anyhow::Result<PathBuf> {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../config/example");
    for f in [
        "site.toml",
        "ledger.csv",
        "credentials.csv",
        "watchlist.csv",
    ] {
        let text = std::fs::read_to_string(src.join(f))?;
        let mut out = String::new();
        let mut skip = false;
        for l in text.lines() {
            if f == "site.toml" {
                if l.starts_with("[[") {
                    skip = l.starts_with("[[estate.camera]]");
                }
                if skip {
                    continue;
                }
                out.push_str(&l.replace("code = \"FCY\"", &format!("code = \"{estate}\"")));
            } else if let Some(rest) = l.strip_prefix("FCY,") {
                out.push_str(&format!("{estate},{rest}"));
            } else {
                out.push_str(l);
            }
            out.push('\n');
        }
        std::fs::write(dir.join(f), out)?;
    }
    Ok(dir.join("site.toml"))
}

fn events(path: &Path, prefix: &str, n: usize) -> anyhow::Result<()> {
    let ts = chrono::Utc::now().to_rfc3339();
    let mut s = String::with_capacity(n * 160);
    for i in 0..n {
        s.push_str(&format!(
            r#"{{"event_id":"{prefix}{i}","ts":"{ts}","credential":{{"kind":"card","id":"C1001"}},"result":"granted","direction":"in"}}"#
        ));
        s.push('\n');
    }
    std::fs::write(path, s)?;
    Ok(())
}

struct Broker {
    host: String,
    port: String,
}

impl Broker {
    fn cmd(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.args(["-h", &self.host, "-p", &self.port, "-q", "1"]);
        c
    }

    /// `mosquitto_pub -l` of the file; returns its run time.
    fn publish(&self, topic: &str, file: &Path) -> anyhow::Result<f64> {
        let t0 = Instant::now();
        let st = self
            .cmd("mosquitto_pub")
            .args([
                "-t",
                topic,
                "-l",
                "-i",
                &format!("bench-pub-{}", std::process::id()),
            ])
            .stdin(std::fs::File::open(file)?)
            .status()?;
        anyhow::ensure!(st.success(), "mosquitto_pub failed");
        Ok(t0.elapsed().as_secs_f64())
    }
}

async fn edge(
    site: &Path,
    estate: &str,
    data: &Path,
    mqtt: &str,
) -> anyhow::Result<(EdgeHandle, CancellationToken)> {
    let mut opts = EdgeOptions::new(site, estate);
    opts.mqtt = mqtt.to_owned();
    opts.data_dir = data.to_owned();
    opts.client_id = Some(format!("bench-edge-{estate}"));
    let cancel = CancellationToken::new();
    let h = start_edge(opts, cancel.clone()).await?;
    let t0 = Instant::now();
    while IngestStats::get(&h.ingest.link.subscribed) < 4 {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(60),
            "edge did not subscribe"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok((h, cancel))
}

async fn wait_count(h: &EdgeHandle, estate: &str, n: i64) -> anyhow::Result<()> {
    let t0 = Instant::now();
    while h.local.count_events(Some(estate)).await? < n {
        anyhow::ensure!(t0.elapsed() < Duration::from_secs(600), "edge stalled");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    Ok(())
}

/// Stops an edge; a join that does not finish within 5 s is reported and
/// left behind (the benchmark only needs the edge to stop consuming).
async fn stop(h: EdgeHandle, cancel: CancellationToken) {
    cancel.cancel();
    if tokio::time::timeout(Duration::from_secs(5), h.join())
        .await
        .is_err()
    {
        eprintln!("bench_ingest: the edge did not finish stopping within 5 s");
    }
}

fn report(case: &str, consumer: &str, n: usize, secs: f64, publish_s: f64) {
    println!(
        "{{\"case\":\"{case}\",\"consumer\":\"{consumer}\",\"n\":{n},\"secs\":{secs:.4},\"events_per_s\":{:.0},\"publish_s\":{publish_s:.4}}}",
        n as f64 / secs
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mqtt = args
        .next()
        .unwrap_or_else(|| "mqtt://127.0.0.1:1883".to_owned());
    let n: usize = args.next().map_or(Ok(20_000), |s| s.parse())?;
    let (host, port) = parse_broker_url(&mqtt)?;
    let broker = Broker {
        host,
        port: port.to_string(),
    };
    let dir = tempfile::tempdir()?;
    let estate = format!("BENCH{}", std::process::id());
    let site = site_copy(dir.path(), &estate)?;
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data)?;
    let t = topic::gate_topic(&estate, "gr-n1", "access");
    let (drain_sub, drain_edge, live_sub, live_edge) = (
        dir.path().join("d1"),
        dir.path().join("d2"),
        dir.path().join("l1"),
        dir.path().join("l2"),
    );
    events(&drain_sub, "ds", n)?;
    events(&drain_edge, "de", n)?;
    events(&live_sub, "ls", n)?;
    events(&live_edge, "le", n)?;
    let sub_id = format!("bench-sub-{estate}");

    // Drain, plain subscriber.
    let st = broker
        .cmd("mosquitto_sub")
        .args(["-c", "-i", &sub_id, "-t", &t, "-E"])
        .status()?;
    anyhow::ensure!(st.success(), "mosquitto_sub -E failed");
    let pub_s = broker.publish(&t, &drain_sub)?;
    let t0 = Instant::now();
    let st = broker
        .cmd("mosquitto_sub")
        .args(["-c", "-i", &sub_id, "-t", &t, "-C", &n.to_string()])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(st.success(), "mosquitto_sub failed");
    report(
        "drain",
        "mosquitto_sub",
        n,
        t0.elapsed().as_secs_f64(),
        pub_s,
    );
    // Drop the session.
    broker
        .cmd("mosquitto_sub")
        .args(["-i", &sub_id, "-t", &t, "-E"])
        .status()?;

    // Drain, edge: subscribe once, go offline, publish, time the restart.
    let (h, cancel) = edge(&site, &estate, &data, &mqtt).await?;
    stop(h, cancel).await;
    let pub_s = broker.publish(&t, &drain_edge)?;
    let t0 = Instant::now();
    let (h, cancel) = edge(&site, &estate, &data, &mqtt).await?;
    wait_count(&h, &estate, n as i64).await?;
    report("drain", "anju edge", n, t0.elapsed().as_secs_f64(), pub_s);

    // Live, edge (already connected).
    let t0 = Instant::now();
    let pub_s = broker.publish(&t, &live_edge)?;
    wait_count(&h, &estate, 2 * n as i64).await?;
    report("live", "anju edge", n, t0.elapsed().as_secs_f64(), pub_s);
    stop(h, cancel).await;

    // Live, plain subscriber (clean session).
    let mut sub = broker
        .cmd("mosquitto_sub")
        .args([
            "-i",
            &format!("{sub_id}-live"),
            "-t",
            &t,
            "-C",
            &n.to_string(),
        ])
        .stdout(Stdio::null())
        .spawn()?;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let t0 = Instant::now();
    let pub_s = broker.publish(&t, &live_sub)?;
    let st = sub.wait()?;
    anyhow::ensure!(st.success(), "mosquitto_sub failed");
    report(
        "live",
        "mosquitto_sub",
        n,
        t0.elapsed().as_secs_f64(),
        pub_s,
    );
    Ok(())
}
