//! `anju edge --site FILE --estate CODE [--db URL] [--mqtt URL]
//! [--rtsp-transport tcp|udp]`: the edge
//! worker of one estate (MQTT gate readers and QR scanners, RTSP cameras,
//! instant rules, durable outbox to the central store).

use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Site file (TOML).
    #[arg(long)]
    site: PathBuf,
    /// The estate this worker serves.
    #[arg(long)]
    estate: String,
    /// Central store to forward to (default: the configured database). The
    /// worker always writes to its local outbox first.
    #[arg(long)]
    db: Option<String>,
    /// MQTT broker URL (default from the config: mqtt://127.0.0.1:1883).
    #[arg(long)]
    mqtt: Option<String>,
    /// How the cameras' video travels: `tcp` (interleaved in the RTSP
    /// connection; works through NAT and firewalls) or `udp` (separate RTP
    /// ports; lower latency on a clean LAN, lost packets are lost frames).
    #[arg(long, default_value = "tcp")]
    rtsp_transport: anju_camera::RtspTransport,
    /// Serve /healthz, /readyz (503 naming any supervised task that is
    /// down) and /metrics on this address, e.g. 127.0.0.1:9101.
    #[arg(long)]
    health: Option<String>,
    /// Face-engine threads shared by the estate's cameras (0: one per
    /// core).
    #[arg(long, default_value_t = 0)]
    engine_threads: usize,
    /// Seconds between checks of the central store for registry changes
    /// (a card reported lost, a household moved out, the watch list); 0:
    /// never (the site file's registry until restart).
    #[arg(long, default_value_t = 5)]
    registry_refresh: u64,
    /// Seconds between reloads of the enrolled faces from the central store
    /// (enrolments, consent withdrawn, persons deleted); 0: never.
    #[arg(long, default_value_t = 60)]
    gallery_refresh: u64,
}

pub async fn run(cfg: &Config, a: Args) -> anyhow::Result<ExitCode> {
    let site = match super::load_site(&a.site) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    if !site
        .registry
        .estates
        .iter()
        .any(|e| e.code.as_str() == a.estate)
    {
        eprintln!(
            "anju: estate {:?} is not in {} (estates: {})",
            a.estate,
            a.site.display(),
            site.registry
                .estates
                .iter()
                .map(|e| e.code.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(ExitCode::from(2));
    }
    let mut opts = anju_edge::EdgeOptions::new(a.site.clone(), a.estate.clone());
    opts.db = Some(cfg.db_url(a.db.as_deref()));
    opts.mqtt = a.mqtt.unwrap_or_else(|| cfg.mqtt.clone());
    opts.data_dir = cfg.data_dir.clone();
    opts.rtsp_transport = a.rtsp_transport;
    opts.analysis.engine_threads = a.engine_threads;
    opts.registry_refresh = std::time::Duration::from_secs(a.registry_refresh);
    opts.analysis.gallery_refresh = std::time::Duration::from_secs(a.gallery_refresh);
    opts.ts_window = cfg.ts_window();
    opts.rules = super::rules_config(&site)?;
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        super::serve::shutdown_signal().await;
        tracing::info!("Stopping the edge worker: draining (Ctrl-C again to exit at once).");
        c.cancel();
        super::serve::shutdown_signal().await;
        std::process::exit(130);
    });
    if let Some(addr) = &a.health {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} (--health)"))?;
        let app = anju_api::health::health_router(opts.tasks.clone());
        let stop = cancel.clone();
        tokio::spawn(async move {
            let shutdown = async move { stop.cancelled().await };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::error!(error = %e, "The health listener failed.");
            }
        });
        tracing::info!(%addr, "Health endpoints: /healthz /readyz /metrics.");
    }
    anju_edge::run_edge(opts, cancel).await?;
    Ok(ExitCode::SUCCESS)
}
