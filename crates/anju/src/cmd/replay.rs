//! `anju replay --site FILE --events FILE.jsonl`: the recorded events through
//! correlation and every rule on a simulated clock; every alert opened or
//! updated is printed as one JSON line on stdout; problems go to stderr.

use crate::config::Config;
use anyhow::Context;
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Site file (TOML); its `[rules]` table overrides rule thresholds and
    /// its `[qr]` table names the keys QR passes must be signed with.
    #[arg(long)]
    site: PathBuf,
    /// JSON Lines events in time order (`-` for stdin).
    #[arg(long)]
    events: PathBuf,
}

pub async fn run(_cfg: &Config, a: Args) -> anyhow::Result<ExitCode> {
    let site = match super::load_site(&a.site) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let rules: anju_rules::RulesConfig = match site.file.rules.clone() {
        Some(v) => v
            .try_into()
            .with_context(|| format!("[rules] in {}", a.site.display()))?,
        None => anju_rules::RulesConfig::default(),
    };
    let qr = match site.file.qr.clone() {
        Some(v) => {
            let c: anju_rules::qr::QrConfig = v
                .try_into()
                .with_context(|| format!("[qr] in {}", a.site.display()))?;
            let checker = anju_edge::qr_keys::pass_checker(&c, site.path.parent())
                .with_context(|| format!("[qr] in {}", a.site.display()))?;
            Some(checker)
        }
        None => None,
    };
    let registry = Arc::new(site.registry);
    let tz = site.timezone;
    let events = a.events.clone();
    let stats = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let input: Box<dyn std::io::BufRead> = if events.as_os_str() == "-" {
            Box::new(BufReader::new(std::io::stdin().lock()))
        } else {
            let f = std::fs::File::open(&events)
                .with_context(|| format!("cannot open {}", events.display()))?;
            Box::new(BufReader::with_capacity(1 << 20, f))
        };
        let stdout = std::io::stdout();
        let mut out = BufWriter::new(stdout.lock());
        let stats = match qr {
            Some(c) => anju_rules::replay::run_with_verifier(
                registry,
                tz,
                rules,
                Box::new(c),
                input,
                &mut out,
            )?,
            None => anju_rules::replay::run(registry, tz, rules, input, &mut out)?,
        };
        out.flush()?;
        Ok(stats)
    })
    .await
    .context("replay thread")??;
    for e in &stats.errors {
        eprintln!("{}:{}: rejected: {}", a.events.display(), e.line, e.reason);
    }
    for w in stats.warnings.iter().take(20) {
        eprintln!("{}:{}: warning: {}", a.events.display(), w.line, w.reason);
    }
    eprintln!(
        "replayed {} events ({} lines, {} rejected) from {} to {}: {} alerts opened, {} alert lines",
        stats.events,
        stats.lines,
        stats.errors.len(),
        stats.first_ts.map_or("-".into(), |t| t.to_rfc3339()),
        stats.last_ts.map_or("-".into(), |t| t.to_rfc3339()),
        stats.alerts_opened,
        stats.alerts_written
    );
    Ok(ExitCode::SUCCESS)
}
