//! MQTT v1 messages from a hostile device: topic and payload validation
//! (`anju_bus::topic`), then the rules engine on whatever parses.
//!
//! Input: one or more messages separated by NUL bytes; in each, the first
//! line is the topic and the rest the payload.
#![no_main]

use anju_bus::topic::{parse_message, parse_message_at, parse_topic, DeviceBook};
use anju_core::{Timestamp, TsWindow, Tz};
use anju_rules::engine::in_rule_range;
use anju_rules::sim::SiteBuilder;
use anju_rules::{Engine, RulesConfig};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

const TZ: Tz = Tz::Asia__Shanghai;

struct Fixture {
    registry: Arc<anju_core::Registry>,
    book: DeviceBook,
    now: Timestamp,
    /// Two years either side of `now`.
    near: (Timestamp, Timestamp),
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        // Entrances b1 (building 1) and n1 (estate gate): devices cam-b1,
        // gr-b1, qr-b1, cam-n1, gr-n1, qr-n1; cards C-P101, C-P102, C-P103.
        let mut s = SiteBuilder::new("FCY");
        s.building("1")
            .entrance("b1", Some("1"))
            .entrance("n1", None)
            .unit("1", "101", &[("P101", false), ("P102", false)])
            .unit("1", "103", &[("P103", true)])
            .watch("P102");
        let registry = Arc::new(s.build());
        let book = DeviceBook::new(&registry, "FCY");
        let now = "2026-03-01T02:00:00Z".parse().expect("a valid timestamp");
        let two_years = chrono::Duration::days(730);
        Fixture {
            registry,
            book,
            now,
            near: (now - two_years, now + two_years),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let window = TsWindow::default();
    // Events that passed the receiver's window, as a live edge sees them.
    let mut live = Engine::new(f.registry.clone(), TZ, RulesConfig::default());
    // Events without the window (a recorded stream): any timestamp chrono
    // can represent reaches the engine's clock and date arithmetic.
    let mut recorded = Engine::new(f.registry.clone(), TZ, RulesConfig::default());
    for msg in data.split(|&b| b == 0).take(64) {
        let (topic, payload) = match msg.iter().position(|&b| b == b'\n') {
            Some(i) => (&msg[..i], &msg[i + 1..]),
            None => (msg, &[][..]),
        };
        let topic = String::from_utf8_lossy(topic);
        let _ = parse_topic(&topic);
        if let Ok(ev) = parse_message_at(&f.book, &topic, payload, f.now, &window) {
            let _ = live.ingest_at(&ev, f.now);
            let _ = live.ingest(&ev);
        }
        if let Ok(ev) = parse_message(&f.book, &topic, payload) {
            // Any `ts` outside the rules' range (ignored by the engine), or
            // within two years of `now`. Not in between: the rules' daily
            // timers fire once per day of a jump, so an event 7,000 years
            // ahead costs seconds (see README, "Findings"), which would
            // starve the fuzzer rather than find anything.
            let ts = ev.ts();
            if in_rule_range(ts) && !(f.near.0..=f.near.1).contains(&ts) {
                continue;
            }
            let _ = recorded.ingest(&ev);
            let _ = recorded.ingest_at(&ev, f.now);
            let _ = recorded.ingest_at(&ev, ev.ts());
        }
    }
    let _ = live.flush();
    let _ = recorded.flush();
    if let Some(t) = recorded.now() {
        // Let every pending timer fire: a day, then a year past the last event.
        for d in [1, 400] {
            if let Some(later) = t.checked_add_signed(chrono::Duration::days(d)) {
                let _ = recorded.advance_to(later);
            }
        }
    }
});
