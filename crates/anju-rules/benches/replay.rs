//! Replay throughput on a synthetic 5,000-unit estate.
//!
//! `cargo bench -p anju-rules --bench replay -- [DAYS] [UNITS]`
//! (defaults: 14 days, 5,000 units). Prints events/s for the full replay
//! (JSON parsing + rules + alert output), for the engine alone on parsed
//! events, the rule cost per unit per day, and the extrapolated time for a
//! year.
#![allow(clippy::unwrap_used)]

use anju_core::{Direction, Event};
use anju_rules::sim::{ev, local, Lcg, SiteBuilder};
use anju_rules::{replay, Engine, RulesConfig};
use chrono::Duration;
use std::sync::Arc;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let days: i64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(14);
    let units: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let tz = chrono_tz::Asia::Shanghai;

    // 20 buildings, each with a door (camera + reader), one estate gate.
    let mut s = SiteBuilder::new("BIG");
    s.entrance("gate", None);
    let buildings = 20;
    for b in 0..buildings {
        let code = format!("{b}");
        s.building(&code).entrance(&format!("d{b}"), Some(&code));
    }
    let mut rng = Lcg(7);
    let mut people: Vec<(String, usize, bool)> = Vec::new(); // (person, building, alone)
    for u in 0..units {
        let b = u % buildings;
        let n = 1 + rng.below(4) as usize;
        let alone = n == 1 && rng.below(4) == 0;
        let ids: Vec<String> = (0..n).map(|i| format!("p{u}-{i}")).collect();
        let rows: Vec<(&str, bool)> = ids.iter().map(|p| (p.as_str(), alone)).collect();
        s.unit(&format!("{b}"), &format!("{u}"), &rows);
        for p in ids {
            people.push((p, b, alone));
        }
    }
    let registry = Arc::new(s.build());
    eprintln!(
        "estate: {units} units, {} persons, {days} days",
        people.len()
    );

    // Events: per person per day a morning sighting at the gate and an
    // evening card entry with a face at their building door; 2,000
    // strangers a day pass the gate; 3% of entries have a follower.
    let t_gen = Instant::now();
    let day0 = local(tz, 2026, 1, 1, 0, 0, 0);
    let mut events: Vec<Event> = Vec::new();
    let mut n = 0u64;
    for d in 0..days {
        let base = day0 + Duration::days(d);
        let start = events.len();
        for (p, b, _) in &people {
            if rng.below(20) == 0 {
                continue; // away today
            }
            let m = Duration::seconds(i64::from(6 * 3600 + rng.below(4 * 3600)));
            events.push(ev::person(base + m, "cam-gate", p));
            let e = Duration::seconds(i64::from(16 * 3600 + rng.below(6 * 3600)));
            n += 1;
            events.push(ev::access(
                base + e,
                &format!("gr-d{b}"),
                &format!("C-{p}"),
                true,
                Direction::In,
                &format!("e{n}"),
            ));
            events.push(ev::person(
                base + e + Duration::seconds(1),
                &format!("cam-d{b}"),
                p,
            ));
            if rng.below(33) == 0 {
                events.push(ev::stranger(
                    base + e + Duration::seconds(3),
                    &format!("cam-d{b}"),
                    &format!("s{}", rng.below(50_000)),
                ));
            }
        }
        for _ in 0..2000 {
            let t = Duration::seconds(i64::from(rng.below(86_400)));
            events.push(ev::stranger(
                base + t,
                "cam-gate",
                &format!("s{}", rng.below(50_000)),
            ));
        }
        events[start..].sort_by_key(|e| e.ts());
    }
    let mut jsonl = Vec::with_capacity(events.len() * 160);
    for e in &events {
        serde_json::to_writer(&mut jsonl, e).unwrap();
        jsonl.push(b'\n');
    }
    eprintln!(
        "generated {} events ({} MB) in {:.1} s",
        events.len(),
        jsonl.len() / 1_000_000,
        t_gen.elapsed().as_secs_f64()
    );

    // Full replay: parse + rules + output.
    let t = Instant::now();
    let mut sink = std::io::sink();
    let stats = replay::run(
        registry.clone(),
        tz,
        RulesConfig::default(),
        &jsonl[..],
        &mut sink,
    )
    .unwrap();
    let full = t.elapsed().as_secs_f64();
    assert!(stats.errors.is_empty());

    // Engine alone on parsed events.
    let t = Instant::now();
    let mut engine = Engine::new(registry.clone(), tz, RulesConfig::default());
    let mut alerts = 0usize;
    for e in &events {
        alerts += engine.ingest(e).len();
    }
    alerts += engine.flush().len();
    let eng = t.elapsed().as_secs_f64();

    let ev_n = events.len() as f64;
    let per_year = 365.0 / days as f64;
    println!("events: {}", events.len());
    println!(
        "alert lines: {} (engine run: {alerts}); alerts opened: {}",
        stats.alerts_written, stats.alerts_opened
    );
    println!(
        "replay (parse+rules+output): {full:.2} s, {:.0} events/s",
        ev_n / full
    );
    println!("engine only: {eng:.2} s, {:.0} events/s", ev_n / eng);
    println!(
        "rule cost per unit per day: {:.2} µs",
        eng * 1e6 / (units as f64 * days as f64)
    );
    println!(
        "extrapolated year of this estate ({:.1} M events): replay {:.0} s, engine {:.0} s",
        ev_n * per_year / 1e6,
        full * per_year,
        eng * per_year
    );
}
