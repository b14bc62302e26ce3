//! One module per subcommand.

pub mod check;
pub mod demo;
pub mod edge;
pub mod eval;
pub mod export;
pub mod history;
pub mod import;
pub mod qr;
pub mod replay;
pub mod serve;
pub mod sim;
pub mod user;

use crate::config::Config;
use std::process::ExitCode;

/// Logs go to stderr so that commands whose stdout is data (`replay`,
/// `import`, `eval`) stay machine-readable.
pub fn init_tracing(cfg: &Config) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .or_else(|_| EnvFilter::try_new(&cfg.log))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless.
    if cfg.log_format == "json" {
        b.json().try_init().ok();
    } else {
        b.try_init().ok();
    }
}

/// Loads a site file, printing every problem to stderr.
pub fn load_site(path: &std::path::Path) -> Result<anju_site::Site, ExitCode> {
    anju_site::load(path).map_err(|errs| {
        eprint!("{errs}");
        ExitCode::from(2)
    })
}

/// The site file's `[rules]` (defaults where it has none).
///
/// # Errors
/// A `[rules]` section that does not parse.
pub fn rules_config(site: &anju_site::Site) -> anyhow::Result<anju_rules::RulesConfig> {
    use anyhow::Context as _;
    match site.file.rules.clone() {
        Some(v) => v.try_into().context("[rules] in the site file"),
        None => Ok(anju_rules::RulesConfig::default()),
    }
}
