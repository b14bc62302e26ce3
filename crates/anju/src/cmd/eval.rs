//! `anju eval faces --dir DIR [--pairs FILE] [--flip] [--landmarks NAME|none]
//! [--gallery-per-identity K]...`.

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
        /// Landmark model aligning the chips (default: the manifest's,
        /// dlib's 5 points); `none` aligns on the detector's 4 keypoints.
        #[arg(long)]
        landmarks: Option<String>,
        /// Also open-set 1:N identification: K photos enrolled per identity
        /// (flip-averaged, as enrolment does), the rest probed against the
        /// whole gallery. Repeat for several K.
        #[arg(long = "gallery-per-identity")]
        gallery_per_identity: Vec<usize>,
    },
}

pub async fn run(_cfg: &Config, c: EvalCmd) -> anyhow::Result<ExitCode> {
    let EvalCmd::Faces {
        dir,
        pairs,
        flip,
        landmarks,
        gallery_per_identity,
    } = c;
    if !dir.is_dir() {
        eprintln!("anju: {} is not a directory", dir.display());
        return Ok(ExitCode::from(2));
    }
    if gallery_per_identity.contains(&0) {
        eprintln!("anju: --gallery-per-identity must be at least 1");
        return Ok(ExitCode::from(2));
    }
    let config = anju_vision::EngineConfig {
        flip,
        landmarks,
        ..Default::default()
    };
    let report = tokio::task::spawn_blocking(move || {
        anju_vision::eval::eval_faces_full(
            config,
            &dir,
            pairs.as_deref(),
            &gallery_per_identity,
            true,
        )
    })
    .await
    .context("evaluation thread")??;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}
