//! `anju`: one binary, roles as subcommands (DESIGN §6 "Contract — CLI").

mod analyzer;
mod cmd;
mod config;
mod notify;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "anju",
    version,
    about = "Anju (安居): real-time monitoring of public-rental-housing estates"
)]
struct Cli {
    /// Process configuration file (TOML); see `anju default-config`.
    #[arg(long, global = true, env = "ANJU_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Everything in one process on embedded defaults (SQLite, in-process MQTT
    /// broker, simulated cameras and readers); API on http://127.0.0.1:8080.
    Demo(cmd::demo::Args),
    /// API server + analyzer + notifier.
    Serve(cmd::serve::Args),
    /// Edge worker for one estate: cameras, gate readers, QR scanners.
    Edge(cmd::edge::Args),
    /// Load or update the registry from a site file (validates everything first).
    Import(cmd::import::Args),
    /// Write the stored ledger, credentials and watch list as XLSX workbooks
    /// (they import back unchanged).
    Export(cmd::export::Args),
    /// Feed a recorded event stream through correlation and all rules on a
    /// simulated clock; prints every alert opened or updated as JSON lines.
    Replay(cmd::replay::Args),
    /// Evaluate the face pipeline.
    #[command(subcommand)]
    Eval(cmd::eval::EvalCmd),
    /// Simulated devices and data for trying a site before hardware arrives.
    #[command(subcommand)]
    Sim(cmd::sim::SimCmd),
    /// Manage dashboard users.
    #[command(subcommand)]
    User(cmd::user::UserCmd),
    /// QR passes: signing keys and signed passes.
    #[command(subcommand)]
    Qr(cmd::qr::QrCmd),
    /// Validate the process configuration and, with --site, a site file.
    CheckConfig(cmd::check::Args),
    /// Print the embedded default process configuration.
    DefaultConfig,
}

fn main() -> ExitCode {
    // Faces, ID numbers and movements (PIPL): every file and folder this
    // process creates — SQLite databases and their journals, edge outboxes,
    // snapshots, key files — is 0600 / 0700.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let cfg = match config::Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("anju: {e:#}");
            return ExitCode::from(2);
        }
    };
    cmd::init_tracing(&cfg);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("anju-rt")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("anju: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.cmd {
            Cmd::Demo(a) => cmd::demo::run(&cfg, a).await,
            Cmd::Serve(a) => cmd::serve::run(&cfg, a).await,
            Cmd::Edge(a) => cmd::edge::run(&cfg, a).await,
            Cmd::Import(a) => cmd::import::run(&cfg, a).await,
            Cmd::Export(a) => cmd::export::run(&cfg, a).await,
            Cmd::Replay(a) => cmd::replay::run(&cfg, a).await,
            Cmd::Eval(a) => cmd::eval::run(&cfg, a).await,
            Cmd::Sim(a) => cmd::sim::run(&cfg, a).await,
            Cmd::User(a) => cmd::user::run(&cfg, a).await,
            Cmd::Qr(a) => cmd::qr::run(&cfg, a).await,
            Cmd::CheckConfig(a) => cmd::check::run(&cfg, a).await,
            Cmd::DefaultConfig => {
                print!("{}", config::DEFAULT_CONFIG);
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("anju: {e:#}");
            ExitCode::FAILURE
        }
    }
}
