//! Writes the two-month scenario (site files + `two_months.jsonl`) into a
//! directory (default `tests/fixtures/replay`).
//!
//! `cargo run -p anju-rules --example gen_scenario -- [DIR]`

use std::io::Write;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/fixtures/replay".to_owned());
    std::fs::create_dir_all(&dir)?;
    let sc = anju_rules::sim::two_month_scenario();
    for (name, content) in anju_rules::sim::site_files(&sc.registry, sc.tz) {
        std::fs::write(format!("{dir}/{name}"), content)?;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(format!("{dir}/two_months.jsonl"))?);
    for ev in &sc.events {
        serde_json::to_writer(&mut f, ev)?;
        f.write_all(b"\n")?;
    }
    f.flush()?;
    drop(f);
    // the alert lines `anju replay` must print for it
    let input = std::io::BufReader::new(std::fs::File::open(format!("{dir}/two_months.jsonl"))?);
    let mut out = std::fs::File::create(format!("{dir}/two_months.expected.jsonl"))?;
    let stats = anju_rules::replay::run(
        std::sync::Arc::new(sc.registry),
        sc.tz,
        anju_rules::RulesConfig::default(),
        input,
        &mut out,
    )?;
    eprintln!(
        "{} alert lines, {} alerts",
        stats.alerts_written, stats.alerts_opened
    );
    eprintln!("wrote {} events to {dir}/two_months.jsonl", sc.events.len());
    Ok(())
}
