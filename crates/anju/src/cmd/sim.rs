//! `anju sim …`: simulated data and devices.

use crate::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum SimCmd {
    /// Write a synthetic site (site.toml, ledger, credentials, watch list).
    /// Defaults to the customer's city: 13 estates, 5,803 units.
    Site {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 13)]
        estates: usize,
        #[arg(long, default_value_t = 5803)]
        units: usize,
        #[arg(long, default_value_t = 2026)]
        seed: u64,
    },
    /// Serve RTSP H.264 from a photo (or a moving test pattern), like an IP
    /// camera, through GStreamer's RTSP server.
    Camera {
        /// Photo to serve (JPEG/PNG); without it, a test pattern.
        #[arg(long)]
        photo: Option<PathBuf>,
        #[arg(long, default_value_t = 8554)]
        port: u16,
        /// Mount path: rtsp://127.0.0.1:PORT/MOUNT.
        #[arg(long, default_value = "cam")]
        mount: String,
    },
    /// Write a busy estate for `anju replay` (site files, events.jsonl and
    /// truth.json, the planted cases): residents seconds apart at four
    /// doors, families on one card, missed faces, couriers on visitor passes.
    Gate {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value_t = 120)]
        units: usize,
        #[arg(long, default_value_t = 14)]
        days: i64,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// Publish realistic gate and QR traffic of an estate over MQTT.
    Readers {
        #[arg(long)]
        site: PathBuf,
        #[arg(long)]
        estate: String,
        /// MQTT broker URL (default from the config).
        #[arg(long)]
        mqtt: Option<String>,
        /// Messages per second.
        #[arg(long, default_value_t = 2.0)]
        rate: f64,
        /// Sign the visitor passes with this key (from `anju qr keygen`;
        /// the site's `[qr]` must trust its public key). Without it the
        /// passes carry a dummy signature, which edges deny.
        #[arg(long)]
        qr_key: Option<PathBuf>,
    },
}

pub async fn run(cfg: &Config, c: SimCmd) -> anyhow::Result<ExitCode> {
    match c {
        SimCmd::Site {
            out,
            estates,
            units,
            seed,
        } => {
            let spec = anju_site::gen::GenSpec {
                estates,
                units,
                seed,
                ..Default::default()
            };
            let counts = anju_site::gen::generate(&out, &spec)?;
            println!("{}", serde_json::to_string_pretty(&counts)?);
            Ok(ExitCode::SUCCESS)
        }
        SimCmd::Gate {
            out,
            units,
            days,
            seed,
        } => {
            let spec = anju_rules::gate_sim::GateSpec {
                units,
                days,
                seed,
                ..Default::default()
            };
            let g = anju_rules::gate_sim::busy_gate(spec);
            std::fs::create_dir_all(&out)?;
            for (name, text) in anju_rules::sim::site_files(&g.registry, g.tz) {
                std::fs::write(out.join(name), text)?;
            }
            let mut lines = String::new();
            for ev in &g.events {
                lines += &serde_json::to_string(ev)?;
                lines.push('\n');
            }
            std::fs::write(out.join("events.jsonl"), lines)?;
            let truth = serde_json::json!({
                "misused_credentials": g.truth.misused_credentials,
                "tailgaters": g.truth.tailgaters,
                "crowded_units": g.truth.crowded_units,
            });
            std::fs::write(
                out.join("truth.json"),
                serde_json::to_string_pretty(&truth)?,
            )?;
            println!(
                "{}",
                serde_json::json!({
                    "events": g.events.len(),
                    "passages": g.passages,
                    "site": out.join("site.toml"),
                    "replay": format!("anju replay --site {} --events {}", out.join("site.toml").display(), out.join("events.jsonl").display()),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        SimCmd::Camera { photo, port, mount } => {
            let mut c = anju_camera::SimCameraConfig::new(
                anju_camera::simcam::default_script(),
                port,
                mount,
            );
            c.photo = photo;
            let cam = anju_camera::sim_camera(&c).await?;
            eprintln!("anju sim camera: serving {} (Ctrl-C to stop)", cam.url);
            super::serve::shutdown_signal().await;
            cam.stop().await;
            Ok(ExitCode::SUCCESS)
        }
        SimCmd::Readers {
            site,
            estate,
            mqtt,
            rate,
            qr_key,
        } => {
            let site = match super::load_site(&site) {
                Ok(s) => s,
                Err(code) => return Ok(code),
            };
            let url = mqtt.unwrap_or_else(|| cfg.mqtt.clone());
            let cancel = tokio_util::sync::CancellationToken::new();
            let c = cancel.clone();
            tokio::spawn(async move {
                super::serve::shutdown_signal().await;
                c.cancel();
            });
            eprintln!("anju sim readers: publishing {estate} traffic to {url} at {rate}/s (Ctrl-C to stop)");
            let signer = qr_key
                .as_deref()
                .map(anju_edge::qr_keys::read_signing_key)
                .transpose()?;
            let stats =
                anju_edge::sim_readers_signed(&url, &site, &estate, rate, signer, &[], cancel)
                    .await?;
            eprintln!("{stats:?}");
            Ok(ExitCode::SUCCESS)
        }
    }
}
