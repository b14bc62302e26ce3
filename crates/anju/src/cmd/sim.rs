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
    /// Serve RTSP H.264 from photos or a clip, like an IP camera.
    Camera,
    /// Publish realistic gate and QR traffic over MQTT.
    Readers,
}

pub async fn run(_cfg: &Config, c: SimCmd) -> anyhow::Result<ExitCode> {
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
        SimCmd::Camera => super::not_yet("anju sim camera"),
        SimCmd::Readers => super::not_yet("anju sim readers"),
    }
}
