//! `anju replay`: recorded events (JSON Lines, DESIGN §6) through the engine
//! on a simulated clock that follows the events' timestamps; every alert
//! opened or updated is written as one JSON object per line.

use crate::config::RulesConfig;
use crate::engine::Engine;
use anju_core::{Event, Registry, Timestamp, Tz};
use serde::Serialize;
use std::io::{BufRead, BufWriter, Write};
use std::sync::Arc;

/// A line that could not be used (1-based line number).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LineError {
    pub line: u64,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ReplayStats {
    /// Lines read (including blank and malformed ones).
    pub lines: u64,
    /// Events fed to the engine.
    pub events: u64,
    /// Alert lines written.
    pub alerts_written: u64,
    /// Distinct alerts opened.
    pub alerts_opened: u64,
    pub first_ts: Option<Timestamp>,
    pub last_ts: Option<Timestamp>,
    /// Malformed or unusable lines; they are skipped, never fatal.
    pub errors: Vec<LineError>,
    /// Lines accepted but worth a note (unknown device, out of time order).
    pub warnings: Vec<LineError>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading events: {0}")]
    Read(#[source] std::io::Error),
    #[error("writing alerts: {0}")]
    Write(#[source] std::io::Error),
}

/// Replays `input` through a fresh [`Engine`] and writes alerts to `out`.
///
/// Events are fed in file order; the engine fires temporal checks at their
/// exact due times between events. At the end, correlations still waiting
/// for face tracks are decided and time stops at the last event's timestamp.
pub fn run(
    registry: Arc<Registry>,
    tz: Tz,
    config: RulesConfig,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<ReplayStats, ReplayError> {
    let mut engine = Engine::new(registry.clone(), tz, config);
    run_with(&mut engine, &registry, input, out)
}

/// As [`run`], with a QR pass verifier (e.g. a
/// [`PassChecker`](crate::qr::PassChecker) holding the site's keys).
pub fn run_with_verifier(
    registry: Arc<Registry>,
    tz: Tz,
    config: RulesConfig,
    verifier: Box<dyn crate::qr::QrVerifier>,
    input: impl BufRead,
    out: &mut impl Write,
) -> Result<ReplayStats, ReplayError> {
    let mut engine = Engine::with_qr_verifier(registry.clone(), tz, config, verifier);
    run_with(&mut engine, &registry, input, out)
}

/// As [`run`], on an engine the caller built (custom QR verifier, or to
/// inspect the alert book afterwards).
pub fn run_with(
    engine: &mut Engine,
    registry: &Registry,
    mut input: impl BufRead,
    out: &mut impl Write,
) -> Result<ReplayStats, ReplayError> {
    let devices: std::collections::HashMap<&str, &anju_core::EstateCode> = registry
        .devices
        .iter()
        .map(|d| (d.id.as_str(), &d.estate))
        .collect();
    let mut w = BufWriter::new(out);
    let mut stats = ReplayStats::default();
    let mut buf = String::new();
    loop {
        buf.clear();
        let n = match input.read_line(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                stats.lines += 1;
                stats.errors.push(LineError {
                    line: stats.lines,
                    reason: "not valid UTF-8".into(),
                });
                // Skip the rest of this line.
                let mut junk = Vec::new();
                input
                    .read_until(b'\n', &mut junk)
                    .map_err(ReplayError::Read)?;
                continue;
            }
            Err(e) => return Err(ReplayError::Read(e)),
        };
        if n == 0 {
            break;
        }
        stats.lines += 1;
        let line = buf.trim();
        if line.is_empty() {
            continue;
        }
        let mut ev: Event = match serde_json::from_str(line) {
            Ok(ev) => ev,
            Err(e) => {
                stats.errors.push(LineError {
                    line: stats.lines,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        match devices.get(ev.device().as_str()) {
            Some(estate) => {
                if ev.estate().is_none() {
                    ev.set_estate((*estate).clone());
                }
            }
            None => stats.warnings.push(LineError {
                line: stats.lines,
                reason: format!("unknown device {}", ev.device()),
            }),
        }
        let ts = ev.ts();
        if !crate::engine::in_rule_range(ts) {
            stats.errors.push(LineError {
                line: stats.lines,
                reason: format!("ts_out_of_range: {ts} is outside 1970..9000"),
            });
            continue;
        }
        if stats.last_ts.is_some_and(|l| ts < l) {
            stats.warnings.push(LineError {
                line: stats.lines,
                reason: "out of time order".into(),
            });
        }
        stats.first_ts.get_or_insert(ts);
        if stats.last_ts.is_none_or(|l| ts > l) {
            stats.last_ts = Some(ts);
        }
        stats.events += 1;
        let alerts = engine.ingest(&ev);
        write_alerts(&mut w, &alerts, &mut stats)?;
    }
    if let Some(last) = stats.last_ts {
        let alerts = engine.advance_to(last);
        write_alerts(&mut w, &alerts, &mut stats)?;
    }
    let alerts = engine.flush();
    write_alerts(&mut w, &alerts, &mut stats)?;
    w.flush().map_err(ReplayError::Write)?;
    stats.alerts_opened = engine.alerts().len() as u64;
    Ok(stats)
}

fn write_alerts(
    w: &mut impl Write,
    alerts: &[anju_core::Alert],
    stats: &mut ReplayStats,
) -> Result<(), ReplayError> {
    for a in alerts {
        serde_json::to_writer(&mut *w, a).map_err(|e| ReplayError::Write(e.into()))?;
        w.write_all(b"\n").map_err(ReplayError::Write)?;
        stats.alerts_written += 1;
    }
    Ok(())
}
