//! Timestamps from a forged or broken device clock (issue 12): the engine
//! never panics on them, and a live event never moves the rules' clock past
//! the receiver's.
#![allow(clippy::unwrap_used)]

use anju_core::{AlertCode, DoorState, Timestamp, Tz};
use anju_rules::engine::in_rule_range;
use anju_rules::sim::{ev, local, SiteBuilder};
use anju_rules::{Engine, RulesConfig};
use std::sync::Arc;

const TZ: Tz = chrono_tz::Asia::Shanghai;

fn engine() -> Engine {
    let mut s = SiteBuilder::new("FCY");
    s.building("1")
        .entrance("b1", Some("1"))
        .unit("1", "101", &[("P101", false)])
        .unit("1", "103", &[("P103", true)]);
    Engine::new(Arc::new(s.build()), TZ, RulesConfig::default())
}

#[test]
fn extreme_timestamps_are_ignored_not_a_panic() {
    let mut e = engine();
    let now = local(TZ, 2026, 3, 1, 10, 0, 0);
    for ts in [
        "-262143-01-01T00:00:10Z".parse::<Timestamp>().unwrap(),
        Timestamp::MIN_UTC,
        Timestamp::MAX_UTC,
        "9999-12-31T00:00:00Z".parse().unwrap(),
    ] {
        assert!(!in_rule_range(ts), "{ts}");
        assert!(e
            .ingest(&ev::door(ts, "gr-b1", DoorState::Forced, "x"))
            .is_empty());
        assert!(e.ingest_at(&ev::status(ts, "gr-b1", false), now).is_empty());
        assert!(e.advance_to(ts).is_empty());
        assert!(e.track_opened("cam-b1", "k", ts).is_empty());
    }
    assert_eq!(e.ignored(), 16);
    assert_eq!(e.now(), None, "no ignored time started the clock");
    // The engine still works afterwards.
    let a = e.ingest(&ev::door(now, "gr-b1", DoorState::Forced, "d1"));
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].code, AlertCode::DoorForced);
}

#[test]
fn a_live_event_dated_ahead_does_not_move_the_rules_clock() {
    let mut e = engine();
    let now = local(TZ, 2026, 3, 1, 10, 0, 0);
    e.advance_to(now);
    // A status 8,000 years ahead (within the rules' range for this test's
    // sake: year 8000) at a receiver whose clock says `now`.
    let ahead: Timestamp = "8000-01-01T00:00:00Z".parse().unwrap();
    let out = e.ingest_at(&ev::status(ahead, "gr-b1", true), now);
    assert_eq!(e.now(), Some(now));
    assert!(
        out.iter().all(|a| a.opened_at <= now),
        "an alert dated from the forged clock: {out:?}"
    );
    // Vacancy and elderly checks did not jump 8,000 years ahead.
    assert!(e
        .alerts()
        .iter()
        .all(|a| a.code != AlertCode::VacancySuspected && a.code != AlertCode::ElderlyNoActivity));
}
