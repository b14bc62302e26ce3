//! `anju demo`: every role in one process on embedded defaults — a SQLite
//! file, an in-process MQTT broker (rumqttd), the edge worker for the example
//! estate, simulated gate readers and QR scanners, the analyzer and the API
//! on http://127.0.0.1:8080 — plus a short scripted story so that a newcomer
//! sees real alerts arrive within a minute or two.

use crate::config::Config;
use anju_core::{Event, Role, Sighting, User};
use anyhow::Context;
use rumqttc::{AsyncClient, MqttOptions, QoS};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The site to run (the commented example by default).
    #[arg(long, default_value = "config/example/site.toml")]
    site: PathBuf,
    /// API listen address (default from the config: 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// Where the demo keeps its data; wiped at start.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Port of the in-process MQTT broker (0 = any free port).
    #[arg(long, default_value_t = 18830)]
    mqtt_port: u16,
    /// Simulated reader traffic, messages per second.
    #[arg(long, default_value_t = 1.0)]
    rate: f64,
    /// Skip the scripted story (ambient traffic only).
    #[arg(long)]
    no_story: bool,
}

const ESTATE: &str = "FCY";

pub async fn run(cfg: &Config, a: Args) -> anyhow::Result<ExitCode> {
    let site_path = find_site(&a.site)?;
    let site = match super::load_site(&site_path) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    anyhow::ensure!(
        site.registry
            .estates
            .iter()
            .any(|e| e.code.as_str() == ESTATE),
        "the demo story needs estate {ESTATE} (config/example/site.toml)"
    );
    let dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| cfg.data_dir.join("demo"));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot reset {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    let db = format!("sqlite://{}", dir.join("anju.db").display());

    // 1. The in-process MQTT broker.
    let port = if a.mqtt_port == 0 {
        free_port()?
    } else {
        a.mqtt_port
    };
    start_broker(port)?;
    let mqtt_url = format!("mqtt://127.0.0.1:{port}");
    wait_for_port(port).await?;

    // 2. Nine weeks of the estate's history (the occupancy rules need days
    //    and weeks), stored before the analyzer warms up from it.
    seed_history(&site, &site_path, &db).await?;

    // 3. Store, API and analyzer.
    // One cancellation tree: the centre's tasks and the edge's stop together.
    let cancel = CancellationToken::new();
    let listen = a.listen.clone().unwrap_or_else(|| cfg.listen.clone());
    // The example site has no [qr] keys, so its scanners deny every pass
    // (fail closed); the demo signs its simulated visitor passes, and the
    // passes its administrators issue through the API, with a key of its
    // own, which its edge trusts.
    let qr_key = anju_rules::qr::generate_signing_key()?;
    let running = super::serve::start(
        site.clone(),
        &db,
        &listen,
        200,
        cfg,
        Some(qr_key.clone()),
        cancel.child_token(),
    )
    .await?;
    let store = running.state.store.clone();
    let mut users = Vec::new();
    for (name, role) in [
        ("admin", Role::Admin),
        ("supervisor", Role::Supervisor),
        ("operator", Role::Operator),
        ("field", Role::FieldStaff),
    ] {
        let field = role == Role::FieldStaff;
        let user = User {
            name: name.into(),
            role,
            all_estates: !field,
            estates: if field { vec![ESTATE.into()] } else { vec![] },
            grids: if field {
                vec![(ESTATE.into(), "G1".into())]
            } else {
                vec![]
            },
        };
        let password = format!("{name}-demo");
        let hash = tokio::task::spawn_blocking(move || anju_api::hash_password(&password)).await?;
        store.put_user(&user, &hash).await?;
        users.push((name, role));
    }

    // 4. A simulated IP camera at building 1's door: GStreamer's RTSP server
    //    streaming a photo of a person who is not registered there, and the
    //    tenant of 1-201 enrolled from another photo. Without the photos
    //    (models/fetch-test-photos.sh) or GStreamer, the story falls back to
    //    simulated face tracks.
    let camera = start_camera(&site_path, &store).await;
    let camera_url = camera.as_ref().map(|c| c.url.clone());
    let camera = camera.map(|c| Arc::new(tokio::sync::Mutex::new(c)));

    // 5. The edge worker of the estate, forwarding to the central store.
    let mut opts = anju_edge::EdgeOptions::new(site_path.clone(), ESTATE);
    opts.db = Some(db.clone());
    opts.mqtt = mqtt_url.clone();
    opts.data_dir = dir.clone();
    // One process: the edge's supervised tasks show in the API's /readyz
    // and /metrics.
    opts.tasks = running.state.tasks.clone();
    opts.ts_window = cfg.ts_window();
    opts.qr_keys = vec![qr_key.verifying_key()];
    let edge = anju_edge::start_edge(opts, cancel.clone()).await?;

    // 6. Simulated readers and scanners.
    let sim_site = site.clone();
    let sim_cancel = cancel.clone();
    let sim_url = mqtt_url.clone();
    let rate = a.rate;
    tokio::spawn(async move {
        // The readers of the entrances where the story shows faces
        // (building 1's door, the north gate) are the story's alone: a
        // random resident's swipe while a face is in view there would be a
        // misuse by construction.
        // The cards of the history's absent occupants (P004, P007, P009)
        // stay unused too: their absence is the history's story.
        let exclude: &[&str] = &["gr-b1", "gr-n1", "C1003", "C1006", "C1008"];
        if let Err(e) = anju_edge::sim_readers_signed(
            &sim_url,
            &sim_site,
            ESTATE,
            rate,
            Some(qr_key),
            exclude,
            sim_cancel,
        )
        .await
        {
            tracing::warn!(error = %format!("{e:#}"), "Simulated readers stopped.");
        }
    });

    let base = format!("http://{}", running.addr);
    println!("Anju demo is running.");
    println!("  console    {base}/   (log in as operator / operator-demo)");
    println!("  API        {base}/api/v1   (OpenAPI: {base}/api/v1/openapi.json)");
    println!("  live feed  {base}/api/v1/alerts/stream   (Server-Sent Events)");
    println!("  metrics    {base}/metrics");
    println!("  MQTT       {mqtt_url}   (anju/v1/{ESTATE}/#; alerts on anju/v1/{ESTATE}/alerts)");
    println!("  database   {}", dir.join("anju.db").display());
    println!("Users (password = <name>-demo):");
    for (name, role) in &users {
        let scope = if *role == Role::FieldStaff {
            "grid FCY/G1"
        } else {
            "all estates"
        };
        println!("  {name:<11} {:<12} {scope}", role.as_str());
    }
    println!("Try:");
    println!("  TOKEN=$(curl -s {base}/api/v1/auth/login -d '{{\"username\":\"operator\",\"password\":\"operator-demo\"}}' -H 'content-type: application/json' | sed 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/')");
    println!("  curl -N -H \"Authorization: Bearer $TOKEN\" {base}/api/v1/alerts/stream");
    match &camera_url {
        Some(url) => println!("  camera     {url}   (simulated IP camera at building 1's door: the story's faces)"),
        None => println!("Camera sightings in the story are simulated face tracks (no test photos or GStreamer; run models/fetch-test-photos.sh)."),
    }
    println!("Press Ctrl-C to stop.");

    if !a.no_story {
        let story_url = mqtt_url.clone();
        let story_cancel = cancel.clone();
        let story_camera = camera.clone();
        let story_edge = edge.ingest.inject.clone();
        tokio::spawn(async move {
            if let Err(e) = story(&story_url, story_edge, story_cancel, story_camera).await {
                tracing::warn!(error = %format!("{e:#}"), "The demo story stopped.");
            }
        });
    }

    super::serve::shutdown_signal().await;
    eprintln!("Stopping…");
    cancel.cancel();
    if let Some(cam) = camera.and_then(|c| Arc::try_unwrap(c).ok()) {
        cam.into_inner().stop().await;
    }
    tokio::select! {
        _ = edge.join() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {}
        _ = super::serve::shutdown_signal() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Builds and stores the demo's history (`history`), judged by an edge
/// engine like live traffic, before the centre starts.
async fn seed_history(
    site: &anju_site::Site,
    site_path: &std::path::Path,
    db: &str,
) -> anyhow::Result<()> {
    let rules = super::rules_config(site)?;
    let photo = site_path
        .parent()
        .map(|p| p.join("../../.cache/test-photos/biden.jpg"))
        .and_then(|p| std::fs::read(p).ok());
    let h = super::history::build(
        Arc::new(site.registry.clone()),
        site.timezone,
        rules,
        chrono::Utc::now(),
        photo.as_deref(),
    )
    .context("the demo's history")?;
    let store = anju_store::Store::connect(db).await?;
    super::history::seed(&store, &h).await?;
    store.close().await;
    println!(
        "History: {} days of the estate seeded ({} events, {} edge findings, {} snapshots).",
        super::history::DAYS,
        h.events.len(),
        h.findings.len(),
        h.snapshots.len()
    );
    Ok(())
}

/// The example site relative to the working directory, else to the source
/// tree the binary was built from.
fn find_site(p: &std::path::Path) -> anyhow::Result<PathBuf> {
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(p);
    if built.exists() {
        return Ok(built);
    }
    anyhow::bail!(
        "site file {} not found (run from the repository root or pass --site)",
        p.display()
    )
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// rumqttd on its own threads, MQTT v4 on 127.0.0.1:`port`.
fn start_broker(port: u16) -> anyhow::Result<()> {
    let toml = format!(
        r#"
id = 0
[router]
id = 0
max_connections = 1000
max_outgoing_packet_count = 200
max_segment_size = 104857600
max_segment_count = 10

[v4.1]
name = "v4-1"
listen = "127.0.0.1:{port}"
next_connection_delay_ms = 1
    [v4.1.connections]
    connection_timeout_ms = 60000
    max_payload_size = 262144
    max_inflight_count = 500
    dynamic_filters = true
"#
    );
    let config: rumqttd::Config = toml::from_str(&toml).context("broker config")?;
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            let mut broker = rumqttd::Broker::new(config);
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "The in-process MQTT broker stopped.");
            }
        })?;
    Ok(())
}

/// Waits until the broker's port is bound. (A probe connection would make
/// rumqttd log an aborted handshake, so this tries to bind instead.)
async fn wait_for_port(port: u16) -> anyhow::Result<()> {
    for _ in 0..100 {
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("the in-process MQTT broker did not start on port {port}")
}

/// The scripted story: a door forced, a forged QR pass, a burst of denials,
/// a watch-list passer-by, a tenant's card used by a stranger, a door held
/// open. Device events go over MQTT like a real reader's; face tracks (what
/// the camera pipeline would produce) are written as sightings.
async fn story<T: From<Event>>(
    mqtt_url: &str,
    edge: tokio::sync::mpsc::Sender<T>,
    cancel: CancellationToken,
    camera: Option<Arc<tokio::sync::Mutex<anju_camera::SimCamera>>>,
) -> anyhow::Result<()> {
    let port: u16 = mqtt_url
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .context("broker port")?;
    let mut opts = MqttOptions::new("anju-demo-story", "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let c2 = cancel.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = c2.cancelled() => break,
                r = eventloop.poll() => if r.is_err() { tokio::time::sleep(Duration::from_millis(500)).await },
            }
        }
    });
    let pause = |s: u64| {
        let c = cancel.clone();
        async move {
            tokio::select! {
                _ = c.cancelled() => false,
                _ = tokio::time::sleep(Duration::from_secs(s)) => true,
            }
        }
    };
    let run = chrono::Utc::now().timestamp();
    let mut n = 0;
    let mut publish = |topic: String, mut body: serde_json::Value| {
        n += 1;
        if let Some(o) = body.as_object_mut() {
            o.insert("event_id".into(), format!("story-{run}-{n}").into());
            o.insert("ts".into(), chrono::Utc::now().to_rfc3339().into());
        }
        let client = client.clone();
        async move {
            client
                .publish(topic, QoS::AtLeastOnce, false, body.to_string())
                .await
                .map_err(anyhow::Error::from)
        }
    };
    let gate = |dev: &str, what: &str| format!("anju/v1/{ESTATE}/gate/{dev}/{what}");
    if !pause(5).await {
        return Ok(());
    }
    tracing::info!("Story: a door is forced at building 2.");
    publish(
        gate("gr-b2", "door"),
        serde_json::json!({"state": "forced"}),
    )
    .await?;
    if !pause(8).await {
        return Ok(());
    }
    tracing::info!("Story: a forged QR pass at the north gate.");
    publish(
        format!("anju/v1/{ESTATE}/qr/qr-n1/scan"),
        serde_json::json!({"code": "AJ1.Zm9yZ2Vk.bm90LWEtc2lnbmF0dXJl"}),
    )
    .await?;
    if !pause(8).await {
        return Ok(());
    }
    tracing::info!("Story: someone tries an unknown card five times.");
    for _ in 0..5 {
        publish(
            gate("gr-n1", "access"),
            serde_json::json!({"credential": {"kind": "card", "id": "C-UNKNOWN-77"}, "result": "denied", "direction": "in", "reason": "unknown card"}),
        )
        .await?;
        if !pause(2).await {
            return Ok(());
        }
    }
    tracing::info!("Story: a person on the watch list walks past the north-gate camera.");
    sighting(&edge, "cam-n1", Some("W001"), None).await?;
    if !pause(8).await {
        return Ok(());
    }
    let mut swipe_c1004 = || {
        publish(
            gate("gr-b1", "access"),
            serde_json::json!({"credential": {"kind": "card", "id": "C1004"}, "result": "granted", "direction": "in"}),
        )
    };
    match &camera {
        Some(cam) => {
            // The camera at building 1's door shows the story's faces, and
            // nobody otherwise (photo 1: a stranger; photo 2: the tenant of
            // 1-201, enrolled from another photo of him).
            // Each scene: (what the camera shows, when, in ms after the
            // scene's start); the tenant's card is swiped at 1 s; the view
            // is emptied at the end and the story pauses 8 s.
            const SCENES: [(&str, &[(u64, Shot)]); 3] = [
                (
                    "the tenant of 1-201 comes home with his own card (recognised: no alert)",
                    &[(0, Shot::Tenant), (4000, Shot::Empty)],
                ),
                (
                    "the card of unit 1-201 is used by an unregistered person",
                    &[(0, Shot::Stranger), (4000, Shot::Empty)],
                ),
                (
                    "the tenant swipes in and a stranger follows him (tailgating)",
                    &[
                        (0, Shot::Tenant),
                        (2500, Shot::Stranger),
                        (5500, Shot::Empty),
                    ],
                ),
            ];
            for (what, shots) in SCENES {
                tracing::info!("Story: {what}.");
                let start = tokio::time::Instant::now();
                let mut swiped = false;
                for (at, shot) in shots {
                    if !swiped && *at > 1000 {
                        tokio::time::sleep_until(start + Duration::from_millis(1000)).await;
                        swipe_c1004().await?;
                        swiped = true;
                    }
                    tokio::time::sleep_until(start + Duration::from_millis(*at)).await;
                    let mut c = cam.lock().await;
                    match shot {
                        Shot::Stranger => c.show(1).await?,
                        Shot::Tenant => c.show(2).await?,
                        Shot::Empty => c.empty().await?,
                    }
                }
                if !pause(8).await {
                    return Ok(());
                }
            }
        }
        None => {
            tracing::info!("Story: the card of unit 1-201 is used by an unregistered person.");
            swipe_c1004().await?;
            sighting(&edge, "cam-b1", None, Some("stranger-demo-1")).await?;
        }
    }
    if !pause(8).await {
        return Ok(());
    }
    tracing::info!("Story: the door of building 1 is left open.");
    publish(
        gate("gr-b1", "door"),
        serde_json::json!({"state": "opened"}),
    )
    .await?;
    Ok(())
}

/// Starts the simulated camera of `cam-b1` (its URL in the site file) and
/// enrols P005 (tenant of 1-201); `None` when photos, ONNX Runtime or
/// GStreamer are missing (the reason is logged).
async fn start_camera(
    site_path: &std::path::Path,
    store: &anju_store::Store,
) -> Option<anju_camera::SimCamera> {
    let root = site_path.parent()?.join("../..");
    let photos = root.join(".cache/test-photos");
    let (stranger, tenant) = (photos.join("biden.jpg"), photos.join("obama2.jpg"));
    // The tenant on camera: another photo of him when there is one.
    let tenant_seen = Some(photos.join("obama.jpg"))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| tenant.clone());
    if !stranger.is_file() || !tenant.is_file() {
        tracing::warn!(dir = %photos.display(), "No demo photos (run `bash models/fetch-test-photos.sh`); camera sightings will be simulated.");
        return None;
    }
    let bytes = std::fs::read(&tenant).ok()?;
    let photo = bytes.clone();
    let t = tokio::task::spawn_blocking(move || {
        let mut engine = anju_vision::FaceEngine::new(anju_vision::EngineConfig::default())
            .map_err(|e| e.to_string())?;
        engine
            .enrol_photo(&bytes)
            .map(|t| (engine.template_key(), t))
            .map_err(|e| e.to_string())
    })
    .await;
    match t {
        Ok(Ok((key, t))) => {
            if let Err(e) = store
                .add_face_template("P005", &key, &t.0, "demo: obama2.jpg")
                .await
            {
                tracing::warn!(error = %e, "Demo enrolment not stored.");
                return None;
            }
            // The photo too, for the console to show beside a snapshot.
            if let Err(e) = store
                .put_person_photo("P005", "image/jpeg", &photo, chrono::Utc::now())
                .await
            {
                tracing::warn!(error = %e, "Demo enrolled photo not stored.");
            }
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "Face engine unavailable; camera sightings will be simulated.");
            return None;
        }
        Err(e) => {
            tracing::warn!(error = %e, "Enrolment thread failed.");
            return None;
        }
    }
    let script = root.join("tests/rtsp/server.py");
    let mut c = anju_camera::SimCameraConfig::new(script, 8554, "b1");
    c.scene = vec![stranger, tenant_seen];
    match anju_camera::sim_camera(&c).await {
        Ok(cam) => Some(cam),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "Simulated camera not started; camera sightings will be simulated.");
            None
        }
    }
}

/// What the story's camera shows (photo 1: a stranger; photo 2: the
/// tenant of 1-201, enrolled from another photo of him).
#[derive(Clone, Copy)]
enum Shot {
    Stranger,
    Tenant,
    Empty,
}

/// A face track as the camera pipeline would store it.
async fn sighting<T: From<Event>>(
    edge: &tokio::sync::mpsc::Sender<T>,
    camera: &str,
    person: Option<&str>,
    stranger: Option<&str>,
) -> anyhow::Result<()> {
    let ts = chrono::Utc::now();
    let ev = Event::Sighting {
        estate: Some(ESTATE.into()),
        body: Sighting {
            event_id: Some(format!("story-sighting-{}", ts.timestamp_micros()).into()),
            ts,
            camera: camera.into(),
            person: person.map(Into::into),
            stranger: stranger.map(Into::into),
            score: Some(0.97),
            direction: Some(anju_core::Direction::In),
            snapshot: None,
        },
    };
    // Into the edge's worker, like a camera's track: stored, forwarded, and
    // judged by the edge's instant rules (a watch-list hit is one).
    edge.send(ev.into())
        .await
        .map_err(|_| anyhow::anyhow!("the edge worker is gone"))?;
    Ok(())
}
