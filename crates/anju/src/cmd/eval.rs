//! `anju eval faces --dir DIR [--pairs FILE]`.

use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum EvalCmd {
    /// Run the face pipeline on DIR/<identity>/*.jpg and report verification
    /// accuracy as JSON (progress on stderr).
    Faces {
        #[arg(long)]
        dir: PathBuf,
        /// LFW pairs.txt: adds the standard 10-fold `lfw_accuracy`.
        #[arg(long)]
        pairs: Option<PathBuf>,
        /// Embed each face and its mirror image and average (slower, more accurate).
        #[arg(long)]
        flip: bool,
    },
}

pub async fn run(_cfg: &Config, c: EvalCmd) -> anyhow::Result<ExitCode> {
    let EvalCmd::Faces { dir, pairs, flip } = c;
    if !dir.is_dir() {
        eprintln!("anju: {} is not a directory", dir.display());
        return Ok(ExitCode::from(2));
    }
    let config = anju_vision::EngineConfig {
        flip,
        ..Default::default()
    };
    let report = tokio::task::spawn_blocking(move || {
        anju_vision::eval_faces_with(config, &dir, pairs.as_deref(), true)
    })
    .await
    .context("evaluation thread")??;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
