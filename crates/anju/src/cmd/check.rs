//! `anju check-config [--site FILE]`.

use crate::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Also validate this site file and the tables it names.
    #[arg(long)]
    site: Option<PathBuf>,
}

pub async fn run(cfg: &Config, a: Args) -> anyhow::Result<ExitCode> {
    println!("configuration: ok");
    println!("  data_dir   = {}", cfg.data_dir.display());
    println!(
        "  db         = {}",
        anju_store::redact_url(&cfg.db_url(None))
    );
    println!("  listen     = {}", cfg.listen);
    println!("  mqtt       = {}", cfg.mqtt);
    if let Some(p) = a.site {
        let site = match super::load_site(&p) {
            Ok(s) => s,
            Err(code) => return Ok(code),
        };
        let c = site.registry.counts();
        println!(
            "site {}: ok ({} estates, {} buildings, {} units, {} persons, {} credentials, {} devices, time zone {})",
            p.display(),
            c.estates,
            c.buildings,
            c.units,
            c.persons,
            c.credentials,
            c.devices,
            site.timezone
        );
    }
    Ok(ExitCode::SUCCESS)
}
