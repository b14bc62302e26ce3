//! `anju demo`.

use crate::config::Config;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {}

pub async fn run(_cfg: &Config, _a: Args) -> anyhow::Result<ExitCode> {
    super::not_yet("anju demo")
}
