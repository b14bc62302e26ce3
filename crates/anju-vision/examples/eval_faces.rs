//! `cargo run --release -p anju-vision --example eval_faces -- DIR [--pairs FILE] [--flip]
//! [--landmarks NAME|none] [--gallery-per-identity K]...`
//! Prints the `anju eval faces` JSON on stdout, progress on stderr.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut pairs = None;
    let mut ks = Vec::new();
    let mut config = anju_vision::EngineConfig::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pairs" => pairs = args.next().map(PathBuf::from),
            "--flip" => config.flip = true,
            "--landmarks" => config.landmarks = args.next(),
            "--gallery-per-identity" => ks.push(args.next().ok_or("K")?.parse()?),
            "--dir" => dir = args.next().map(PathBuf::from),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.ok_or("usage: eval_faces DIR [--pairs FILE] [--flip] [--landmarks NAME|none] [--gallery-per-identity K]")?;
    let report = anju_vision::eval::eval_faces_full(config, &dir, pairs.as_deref(), &ks, true)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
