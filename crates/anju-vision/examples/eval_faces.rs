//! `cargo run --release -p anju-vision --example eval_faces -- DIR [--pairs FILE] [--flip]`
//! Prints the `anju eval faces` JSON on stdout, progress on stderr.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut pairs = None;
    let mut config = anju_vision::EngineConfig::default();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--pairs" => pairs = args.next().map(PathBuf::from),
            "--flip" => config.flip = true,
            "--dir" => dir = args.next().map(PathBuf::from),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.ok_or("usage: eval_faces DIR [--pairs FILE] [--flip]")?;
    let report = anju_vision::eval_faces_with(config, &dir, pairs.as_deref(), true)?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
