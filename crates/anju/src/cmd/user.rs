//! `anju user …`.

use crate::config::Config;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum UserCmd {
    /// Create or update a dashboard user.
    Add {
        name: String,
        #[arg(long)]
        role: String,
    },
}

pub async fn run(_cfg: &Config, _c: UserCmd) -> anyhow::Result<ExitCode> {
    super::not_yet("anju user add")
}
