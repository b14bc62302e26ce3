//! `anju serve --site FILE [--db URL] [--listen ADDR]`.

use crate::config::Config;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    site: PathBuf,
    #[arg(long)]
    db: Option<String>,
    #[arg(long)]
    listen: Option<String>,
}

pub async fn run(_cfg: &Config, _a: Args) -> anyhow::Result<ExitCode> {
    super::not_yet("anju serve")
}
