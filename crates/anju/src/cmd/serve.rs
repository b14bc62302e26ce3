//! `anju serve --site FILE [--db URL] [--listen ADDR]`: the API server, the
//! analyzer (temporal rules over the stored events) and the live feed.

use crate::analyzer::{Analyzer, Publish};
use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Site file (TOML): time zone, rule thresholds; imported when the store
    /// has no registry yet.
    #[arg(long)]
    site: PathBuf,
    /// Database URL (default: the embedded SQLite file under the data dir).
    #[arg(long)]
    db: Option<String>,
    /// Listen address (default from the config: 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// History the analyzer replays at start to rebuild its state.
    #[arg(long, default_value_t = 200)]
    warmup_days: i64,
    /// A QR signing key (from `anju qr keygen`): administrators and operators
    /// may then issue and revoke passes through the API (POST /qr/passes).
    /// The site's `[qr] public_keys` must list its public key.
    #[arg(long)]
    qr_key: Option<PathBuf>,
}

/// Everything `serve` starts, for reuse by `demo`.
pub struct Running {
    pub state: anju_api::AppState,
    pub addr: std::net::SocketAddr,
}

pub async fn run(cfg: &Config, a: Args) -> anyhow::Result<ExitCode> {
    let site = match super::load_site(&a.site) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let url = cfg.db_url(a.db.as_deref());
    let listen = a.listen.clone().unwrap_or_else(|| cfg.listen.clone());
    let stop = tokio_util::sync::CancellationToken::new();
    let qr_key = a
        .qr_key
        .as_deref()
        .map(anju_edge::qr_keys::read_signing_key)
        .transpose()?;
    let running = start(
        site,
        &url,
        &listen,
        a.warmup_days,
        cfg,
        qr_key,
        stop.clone(),
    )
    .await?;
    eprintln!(
        "anju serve: API on http://{}/api/v1 (Ctrl-C to stop)",
        running.addr
    );
    shutdown_signal().await;
    stop.cancel();
    // Let the server drain; a second Ctrl-C exits at once.
    tokio::select! {
        _ = tokio::time::sleep(std::time::Duration::from_secs(10)) => {}
        _ = shutdown_signal() => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the store (importing the site if the store has no registry), starts
/// the API and the analyzer; both stop when `stop` is cancelled.
pub async fn start(
    site: anju_site::Site,
    url: &str,
    listen: &str,
    warmup_days: i64,
    cfg: &Config,
    qr_key: Option<anju_rules::qr::SigningKey>,
    stop: tokio_util::sync::CancellationToken,
) -> anyhow::Result<Running> {
    let ts_window = cfg.ts_window();
    let store = anju_store::Store::connect(url)
        .await
        .with_context(|| format!("cannot open the store {}", anju_store::redact_url(url)))?;
    match store.migrate_snapshot_paths().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(
            alerts = n,
            "Evidence that cited snapshot files by disk path rewritten."
        ),
        Err(e) => tracing::warn!(error = %e, "Old snapshot paths in evidence not rewritten."),
    }
    let mut registry = store.load_registry().await?;
    if registry.estates.is_empty() {
        tracing::info!("The store has no registry yet; importing the site file.");
        store.import_registry(&site.registry).await?;
        registry = store.load_registry().await?;
    }
    let rules = super::rules_config(&site)?;
    let api_cfg = anju_api::ApiConfig {
        default_tz: site.timezone,
        estate_tz: registry
            .estates
            .iter()
            .map(|e| (e.code.clone(), site.timezone))
            .collect(),
        client_ip_header: (!cfg.client_ip_header.is_empty()).then(|| cfg.client_ip_header.clone()),
        trusted_proxies: cfg.trusted_proxies.clone(),
        rules: rules.clone(),
        ..Default::default()
    };
    let mut state = anju_api::AppState::new(store.clone(), api_cfg).with_store_feed();
    if let Some(k) = qr_key {
        state = state.with_qr_signer(k);
    }
    match face_enroller() {
        Ok(enrol) => state = state.with_enroller(enrol),
        Err(e) => tracing::warn!(
            error = %format!("{e:#}"),
            "Face enrolment by upload is off: the face engine did not start \
             (run `bash models/setup-ort.sh` to install ONNX Runtime)."
        ),
    }
    if let Some(ncfg) = crate::notify::config(site.file.notify.as_ref())? {
        let grid_of: std::collections::HashMap<(String, String), String> = registry
            .buildings
            .iter()
            .filter_map(|b| {
                b.grid
                    .as_ref()
                    .map(|g| ((b.estate.0.clone(), b.code.0.clone()), g.0.clone()))
            })
            .collect();
        let targets = ncfg.targets.len();
        let notifier =
            Arc::new(anju_api::notify::Notifier::new(ncfg).with_metrics(state.metrics.clone()));
        let grid_of = Arc::new(grid_of);
        let alerts = state.alerts.clone();
        let stop_n = stop.clone();
        tokio::spawn(anju_backoff::supervise(
            state.tasks.register("notifier"),
            stop.clone(),
            move || {
                notifier
                    .clone()
                    .run(alerts.subscribe(), grid_of.clone(), stop_n.clone())
            },
        ));
        tracing::info!(targets, "Webhook notifications on.");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let stop_api = stop.clone();
    let api_state = state.clone();
    tokio::spawn(async move {
        let shutdown = async move { stop_api.cancelled().await };
        if let Err(e) = anju_api::serve(listener, api_state, shutdown).await {
            tracing::error!(error = %e, "API server failed.");
        }
    });
    // Retention (PIPL minimisation): events past the site's `[retention]
    // events_days` are deleted hourly (on PostgreSQL whole months go as
    // partitions, and months ahead are made). Supervised like the other
    // loops.
    let retention = site.retention;
    let store_r = store.clone();
    let stop_r = stop.clone();
    tokio::spawn(anju_backoff::supervise(
        state.tasks.register("retention"),
        stop.clone(),
        move || {
            let (store, stop) = (store_r.clone(), stop_r.clone());
            async move {
                let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
                loop {
                    tokio::select! {
                        biased;
                        () = stop.cancelled() => return Ok::<(), anju_store::StoreError>(()),
                        _ = tick.tick() => {}
                    }
                    // PostgreSQL: the events table's months, three ahead.
                    let now = chrono::Utc::now();
                    let ahead = now
                        .checked_add_signed(chrono::Duration::days(93))
                        .unwrap_or(now);
                    match store.prepare_event_partitions(now, ahead).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(made = n, "Monthly event partitions made ahead."),
                        Err(e) if e.is_retryable() => {
                            tracing::warn!(error = %e, "Event partitions not made; tried again in an hour.");
                        }
                        Err(e) => return Err(e),
                    }
                    let Some(before) =
                        anju_core::Retention::cutoff(chrono::Utc::now(), retention.events_days)
                    else {
                        continue;
                    };
                    if let Some(b) =
                        anju_core::Retention::cutoff(chrono::Utc::now(), retention.snapshots_days)
                    {
                        match store.prune_snapshot_images(b).await {
                            Ok(0) => {}
                            Ok(n) => tracing::info!(
                                deleted = n,
                                "Snapshots past their retention deleted."
                            ),
                            Err(e) if e.is_retryable() => {
                                tracing::warn!(error = %e, "Snapshots not pruned; tried again in an hour.");
                            }
                            Err(e) => return Err(e),
                        }
                    }
                    match store.prune_events(before).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(
                            deleted = n,
                            days = retention.events_days,
                            "Events past their retention deleted."
                        ),
                        Err(e) if e.is_retryable() => {
                            tracing::warn!(error = %e, "Events not pruned; tried again in an hour.");
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        },
    ));
    let publish_state = state.clone();
    let publish: Publish = Arc::new(move |alert| publish_state.publish(alert));
    // The analyzer is supervised: a failure or a panic is logged and it
    // starts again (warming up from the store) after a backoff.
    let registry = Arc::new(registry);
    let health = state.tasks.register("analyzer");
    let tz = site.timezone;
    let warmup = chrono::Duration::days(warmup_days);
    // Replicas of `anju serve` on one PostgreSQL share the estates out
    // (advisory-lock leases); when one dies the others take its estates
    // over within seconds.
    tokio::spawn(anju_backoff::supervise(health, stop.clone(), move || {
        let (store, registry, rules, publish, stop) = (
            store.clone(),
            registry.clone(),
            rules.clone(),
            publish.clone(),
            stop.clone(),
        );
        async move {
            let analyzer =
                Analyzer::start(store, registry, tz, rules, publish, warmup, ts_window).await?;
            analyzer
                .run(stop)
                .await
                .map_err(|e| anyhow::anyhow!("{e:#}"))
        }
    }));
    Ok(Running { state, addr })
}

/// `POST /persons/{id}/faces`: the face engine on its own thread, one photo
/// at a time (exactly one usable face, else the reason).
fn face_enroller() -> anyhow::Result<anju_api::Enroller> {
    let worker = anju_vision::FaceWorker::spawn(anju_vision::EngineConfig::default(), 4)?;
    Ok(Arc::new(move |bytes: &[u8]| {
        let bytes = bytes.to_vec();
        match worker.call(move |engine| {
            engine
                .enrol_photo(&bytes)
                .map(|t| (engine.template_key(), t))
        }) {
            Ok(Ok((key, t))) => Ok((key, t.0)),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("face engine: {e}")),
        }
    }))
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    tokio::signal::ctrl_c().await.ok();
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.ok();
}
