//! One scenario per rule, positive and negative, on simulated time.
#![allow(clippy::unwrap_used)]

use anju_core::alert::Action;
use anju_core::{
    Alert, AlertCode, AlertStatus, Direction, DoorState, Event, Outcome, Severity, Subject,
    Timestamp, Tz, UserName,
};
use anju_rules::sim::{ev, local, SiteBuilder};
use anju_rules::{Engine, RulesConfig};
use chrono::Duration;
use std::sync::Arc;

const TZ: Tz = chrono_tz::Asia::Shanghai;

fn site() -> SiteBuilder {
    let mut s = SiteBuilder::new("FCY");
    s.building("1")
        .building("2")
        .entrance("n", None)
        .entrance("b1", Some("1"))
        .entrance("b2", Some("2"))
        .unit(
            "1",
            "101",
            &[("P101a", false), ("P101b", false), ("P101c", false)],
        )
        .unit("1", "102", &[("P102", false)])
        .unit("1", "103", &[("P103", true)])
        .unit("2", "201", &[("P201", false)])
        .watch("W1");
    s
}

fn engine() -> Engine {
    Engine::new(Arc::new(site().build()), TZ, RulesConfig::default())
}

/// 2026-03-01 (a Sunday) at local time, plus `day` days.
fn at(day: i64, h: u32, m: u32, s: u32) -> Timestamp {
    local(TZ, 2026, 3, 1, h, m, s) + Duration::days(day)
}

struct Run {
    e: Engine,
    out: Vec<Alert>,
}

impl Run {
    fn new() -> Self {
        Self {
            e: engine(),
            out: Vec::new(),
        }
    }
    fn feed(&mut self, evs: impl IntoIterator<Item = Event>) -> &mut Self {
        for ev in evs {
            let a = self.e.ingest(&ev);
            self.out.extend(a);
        }
        self
    }
    fn until(&mut self, t: Timestamp) -> &mut Self {
        let a = self.e.advance_to(t);
        self.out.extend(a);
        self
    }
    fn codes(&self) -> Vec<AlertCode> {
        let mut c: Vec<AlertCode> = self.e.alerts().iter().map(|a| a.code).collect();
        c.dedup();
        c
    }
    fn of(&self, code: AlertCode) -> Vec<&Alert> {
        self.e.alerts().iter().filter(|a| a.code == code).collect()
    }
}

/// An ordinary day for a resident: out in the morning, back in the evening,
/// with their own card and face at building door `door`.
fn ordinary_day(day: i64, person: &str, door: &str, n: &mut u32) -> Vec<Event> {
    *n += 1;
    let id = format!("e{n}-{person}");
    vec![
        ev::person(at(day, 7, 30, 0), &format!("cam-{door}"), person),
        ev::access(
            at(day, 18, 0, 0),
            &format!("gr-{door}"),
            &format!("C-{person}"),
            true,
            Direction::In,
            &id,
        ),
        ev::person(at(day, 18, 0, 1), &format!("cam-{door}"), person),
    ]
}

#[test]
fn door_forced_and_held_open() {
    let mut r = Run::new();
    r.feed([ev::door(at(0, 10, 0, 0), "gr-b1", DoorState::Forced, "d1")]);
    assert_eq!(r.out.len(), 1);
    assert_eq!(r.out[0].code, AlertCode::DoorForced);
    assert_eq!(r.out[0].severity, Severity::High);
    assert_eq!(r.out[0].subject, Subject::Device("gr-b1".into()));
    assert_eq!(r.out[0].building.as_ref().unwrap().as_str(), "1");
    // opened and closed within 60 s: nothing
    r.feed([
        ev::door(at(0, 11, 0, 0), "gr-b2", DoorState::Opened, "d2"),
        ev::door(at(0, 11, 0, 30), "gr-b2", DoorState::Closed, "d3"),
    ])
    .until(at(0, 12, 0, 0));
    assert_eq!(r.e.alerts().len(), 1);
    // opened, not closed: held open once 60 s have passed
    r.feed([ev::door(at(0, 13, 0, 0), "gr-b2", DoorState::Opened, "d4")])
        .until(at(0, 13, 1, 0));
    assert_eq!(r.e.alerts().len(), 1, "exactly 60 s is not yet held open");
    r.until(at(0, 13, 1, 1));
    assert_eq!(r.of(AlertCode::DoorHeldOpen).len(), 1);
    assert_eq!(r.of(AlertCode::DoorHeldOpen)[0].opened_at, at(0, 13, 1, 0));
}

#[test]
fn access_denied_burst() {
    let mut r = Run::new();
    // 5 denials spread over 5 minutes: no burst
    r.feed((0..5).map(|i| {
        ev::access(
            at(0, 9, i, 0),
            "gr-n",
            "X",
            false,
            Direction::In,
            &format!("a{i}"),
        )
    }));
    assert!(r.e.alerts().is_empty());
    // 5 within 2 minutes
    r.feed((0..5).map(|i| {
        ev::access(
            at(0, 10, 0, 0) + Duration::seconds(i64::from(i) * 20),
            "gr-n",
            "X",
            false,
            Direction::In,
            &format!("b{i}"),
        )
    }));
    assert_eq!(r.codes(), vec![AlertCode::AccessDeniedBurst]);
}

#[test]
fn qr_invalid_escalates() {
    let mut r = Run::new();
    r.feed([ev::qr(at(0, 9, 0, 0), "qr-n", "forged!", "q1")]);
    assert_eq!(r.out[0].code, AlertCode::QrInvalid);
    assert_eq!(r.out[0].severity, Severity::Low);
    r.feed([
        ev::qr(at(0, 9, 3, 0), "qr-n", "AJ1.xx.yy", "q2"),
        ev::qr(at(0, 9, 6, 0), "qr-n", "bad", "q3"),
    ]);
    assert_eq!(r.e.alerts().len(), 1);
    assert_eq!(r.e.alerts()[0].severity, Severity::Medium);
    assert_eq!(r.e.alerts()[0].evidence.len(), 3);
}

#[test]
fn watchlist_hit() {
    let mut r = Run::new();
    r.feed([ev::person(at(0, 9, 0, 0), "cam-n", "P101a")]);
    assert!(r.e.alerts().is_empty());
    r.feed([ev::person(at(0, 9, 0, 0), "cam-n", "W1")]);
    assert_eq!(r.codes(), vec![AlertCode::WatchlistHit]);
    assert_eq!(r.out[0].severity, Severity::Critical);
    assert_eq!(r.out[0].subject, Subject::Person("W1".into()));
}

/// A card reported lost through the API reaches a running engine with the
/// registry reload: from then on its use is `blocked_credential_used`
/// (granted or denied), neither credited to its holder nor fused; a card
/// made active again is ordinary again. A watch-list entry past its expiry
/// no longer hits.
#[test]
fn blocked_credential_after_reload() {
    let mut r = Run::new();
    r.feed([ev::access(
        at(0, 9, 0, 0),
        "gr-b1",
        "C-P102",
        true,
        Direction::In,
        "a1",
    )])
    .until(at(0, 9, 1, 0));
    assert!(r.e.alerts().is_empty());
    let mut reg = site().build();
    let card = reg
        .credentials
        .iter_mut()
        .find(|c| c.id.as_str() == "C-P102")
        .unwrap();
    card.status = anju_core::CredentialStatus::Lost;
    // W1's entry ends today (inclusive); W2's has no end.
    reg.watchlist[0].expires = Some(at(0, 12, 0, 0).date_naive());
    reg.watchlist.push(anju_core::WatchEntry {
        person: "W2".into(),
        name: "W2".into(),
        reason: "test".into(),
        expires: None,
    });
    r.e.reload_registry(Arc::new(reg.clone()));
    r.feed([
        ev::access(
            at(0, 10, 0, 0),
            "gr-b1",
            "C-P102",
            true,
            Direction::In,
            "a2",
        ),
        // Another unit's tenant behind the lost card: fused, this would be
        // credential_misuse; a blocked card is not fused.
        ev::person(at(0, 10, 0, 1), "cam-b1", "P201"),
        ev::access(
            at(0, 10, 5, 0),
            "gr-n",
            "C-P102",
            false,
            Direction::In,
            "a3",
        ),
    ])
    .until(at(0, 10, 10, 0));
    assert_eq!(r.codes(), vec![AlertCode::BlockedCredentialUsed]);
    let a = &r.of(AlertCode::BlockedCredentialUsed)[0];
    assert_eq!(a.subject, Subject::Credential("C-P102".into()));
    assert_eq!(a.unit.as_ref().map(|u| u.as_str()), Some("102"));
    assert_eq!(a.evidence.len(), 2, "both uses: {:?}", a.evidence);
    assert!(a.evidence[0].note.as_deref().unwrap().contains("lost"));
    // Today W1 is still a hit; tomorrow only W2 is.
    r.feed([ev::person(at(0, 23, 0, 0), "cam-n", "W1")]);
    assert_eq!(
        r.of(AlertCode::WatchlistHit).len(),
        1,
        "the last day counts"
    );
    r.feed([
        ev::person(at(1, 9, 0, 0), "cam-n", "W1"),
        ev::person(at(1, 9, 0, 5), "cam-n", "W2"),
    ]);
    let hits: Vec<_> = r
        .of(AlertCode::WatchlistHit)
        .iter()
        .map(|a| a.subject.clone())
        .collect();
    assert_eq!(
        hits,
        vec![Subject::Person("W1".into()), Subject::Person("W2".into())],
        "W1's second sighting, after its last day, is no hit: {hits:?}"
    );
    assert_eq!(r.of(AlertCode::WatchlistHit)[0].evidence.len(), 1);
    // Found again: active, ordinary.
    reg.credentials
        .iter_mut()
        .find(|c| c.id.as_str() == "C-P102")
        .unwrap()
        .status = anju_core::CredentialStatus::Active;
    r.e.reload_registry(Arc::new(reg));
    r.feed([ev::access(
        at(1, 10, 0, 0),
        "gr-b1",
        "C-P102",
        true,
        Direction::In,
        "a4",
    )])
    .until(at(1, 10, 1, 0));
    assert_eq!(r.of(AlertCode::BlockedCredentialUsed)[0].evidence.len(), 2);
}

/// Thresholds an administrator set for an estate reach a running engine
/// with the registry: two denials are a burst after the reload, five
/// before it; thresholds that do not check are reported and ignored.
#[test]
fn estate_thresholds_after_reload() {
    let mut r = Run::new();
    let deny =
        |m: u32, id: &str| ev::access(at(0, 9, m, 0), "gr-n", "C-X", false, Direction::In, id);
    r.feed([deny(0, "d1"), deny(0, "d2")]);
    assert!(r.of(AlertCode::AccessDeniedBurst).is_empty());
    let mut reg = site().build();
    reg.rules
        .insert("FCY".into(), serde_json::json!({"denied_burst_count": 2}));
    assert!(r.e.reload_registry(Arc::new(reg.clone())).is_empty());
    r.feed([deny(5, "d3"), deny(5, "d4")]);
    assert_eq!(r.of(AlertCode::AccessDeniedBurst).len(), 1);
    reg.rules
        .insert("FCY".into(), serde_json::json!({"denied_burst_count": 0}));
    let problems = r.e.reload_registry(Arc::new(reg));
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("denied_burst_count"), "{problems:?}");
    // Ignored: the site's five apply again, so two more denials are no burst.
    let before = r.of(AlertCode::AccessDeniedBurst)[0].evidence.len();
    r.feed([deny(30, "d5"), deny(30, "d6")]);
    assert_eq!(r.of(AlertCode::AccessDeniedBurst)[0].evidence.len(), before);
}

/// A QR pass revoked through the API reaches a running engine with the
/// registry: accepted before, `qr_invalid` (revoked) after.
#[test]
fn qr_pass_revoked_after_reload() {
    use anju_rules::qr::{encode_code, PassKind, PassPayload};
    let mut r = Run::new();
    let pass = PassPayload {
        id: "V-77".into(),
        unit: "FCY/1/101".into(),
        kind: PassKind::Visitor,
        nbf: at(0, 0, 0, 0),
        exp: at(2, 0, 0, 0),
        single_use: false,
    };
    let code = encode_code(&pass, &[0; 64]);
    r.feed([ev::qr(at(0, 9, 0, 0), "qr-n", &code, "q1")]);
    assert!(r.of(AlertCode::QrInvalid).is_empty(), "valid before");
    let mut reg = site().build();
    reg.qr_revoked.insert("V-77".into());
    r.e.reload_registry(Arc::new(reg));
    r.feed([ev::qr(at(0, 10, 0, 0), "qr-n", &code, "q2")]);
    let a = r.of(AlertCode::QrInvalid);
    assert_eq!(a.len(), 1);
    assert!(
        a[0].evidence[0]
            .note
            .as_deref()
            .unwrap_or("")
            .contains("revoked"),
        "{:?}",
        a[0].evidence
    );
}

#[test]
fn credential_misuse_waits_for_late_face() {
    let mut r = Run::new();
    r.feed([
        ev::access(at(0, 9, 0, 0), "gr-b1", "C-P102", true, Direction::In, "a1"),
        ev::stranger(at(0, 9, 0, 3), "cam-b1", "S1"),
    ]);
    assert!(r.e.alerts().is_empty(), "decided only after the window");
    r.until(at(0, 9, 0, 5));
    assert!(r.e.alerts().is_empty(), "window is inclusive");
    // An unexplained face (seen at 3 s): a window after it appeared for a
    // grant that may explain it.
    r.until(at(0, 9, 0, 8));
    assert!(r.e.alerts().is_empty(), "look-ahead is inclusive");
    r.until(at(0, 9, 0, 9));
    assert_eq!(r.codes(), vec![AlertCode::CredentialMisuse]);
    let a = &r.e.alerts()[0];
    assert_eq!(a.subject, Subject::Credential("C-P102".into()));
    assert_eq!(a.unit.as_ref().unwrap().as_str(), "102");
    assert!(a
        .evidence
        .iter()
        .any(|e| e.stranger.as_ref().is_some_and(|s| s.as_str() == "S1")));
    // a person of another unit using the card is misuse too (same alert)
    r.feed([
        ev::person(at(0, 12, 0, 0), "cam-b1", "P101a"),
        ev::access(
            at(0, 12, 0, 1),
            "gr-b1",
            "C-P102",
            true,
            Direction::In,
            "a2",
        ),
    ])
    .until(at(0, 13, 0, 0));
    assert_eq!(r.e.alerts().len(), 1);
    assert_eq!(r.out.len(), 2, "opened, then updated");
}

#[test]
fn own_card_own_face_is_fine() {
    let mut r = Run::new();
    let mut n = 0;
    for d in 0..3 {
        r.feed(ordinary_day(d, "P102", "b1", &mut n));
    }
    // a sighting at another entrance at the same time is not correlated
    r.feed([
        ev::access(at(4, 9, 0, 0), "gr-b1", "C-P102", true, Direction::In, "x"),
        ev::person(at(4, 9, 0, 1), "cam-b1", "P102"),
        ev::stranger(at(4, 9, 0, 1), "cam-b2", "S9"),
    ])
    .until(at(4, 10, 0, 0));
    assert!(r.of(AlertCode::CredentialMisuse).is_empty());
    assert!(r.of(AlertCode::Tailgating).is_empty());
}

#[test]
fn tailgating_but_not_a_family() {
    let mut r = Run::new();
    // a family of three on one card
    r.feed([
        ev::access(
            at(0, 18, 0, 0),
            "gr-b1",
            "C-P101a",
            true,
            Direction::In,
            "f1",
        ),
        ev::person(at(0, 18, 0, 1), "cam-b1", "P101a"),
        ev::person(at(0, 18, 0, 2), "cam-b1", "P101b"),
        ev::person(at(0, 18, 0, 3), "cam-b1", "P101c"),
    ])
    .until(at(0, 19, 0, 0));
    assert!(r.e.alerts().is_empty());
    // two neighbours from different units, each with their own card
    r.feed([
        ev::access(
            at(0, 20, 0, 0),
            "gr-b1",
            "C-P102",
            true,
            Direction::In,
            "g1",
        ),
        ev::access(
            at(0, 20, 0, 2),
            "gr-b1",
            "C-P101b",
            true,
            Direction::In,
            "g2",
        ),
        ev::person(at(0, 20, 0, 1), "cam-b1", "P102"),
        ev::person(at(0, 20, 0, 3), "cam-b1", "P101b"),
    ])
    .until(at(0, 21, 0, 0));
    assert!(r.e.alerts().is_empty(), "{:?}", r.e.alerts());
    // a stranger follows the tenant in
    r.feed([
        ev::access(
            at(1, 18, 0, 0),
            "gr-b1",
            "C-P102",
            true,
            Direction::In,
            "t1",
        ),
        ev::person(at(1, 18, 0, 1), "cam-b1", "P102"),
        ev::stranger(at(1, 18, 0, 4), "cam-b1", "S5"),
    ])
    .until(at(1, 19, 0, 0));
    assert_eq!(r.codes(), vec![AlertCode::Tailgating]);
    assert_eq!(r.e.alerts()[0].subject, Subject::Stranger("S5".into()));
}

#[test]
fn elderly_not_seen_48h() {
    let mut r = Run::new();
    r.feed([ev::person(at(0, 8, 0, 0), "cam-b1", "P103")]);
    r.until(at(2, 7, 59, 59));
    assert!(r.e.alerts().is_empty());
    r.until(at(2, 8, 0, 0));
    assert_eq!(r.codes(), vec![AlertCode::ElderlyNoActivity]);
    let a = &r.e.alerts()[0];
    assert_eq!(a.subject, Subject::Person("P103".into()));
    assert_eq!(a.opened_at, at(2, 8, 0, 0));
    // fires once per absence
    r.until(at(6, 0, 0, 0));
    assert_eq!(r.e.alerts().len(), 1);
    assert_eq!(r.out.len(), 1);
    // seen again, then absent again: the same open alert gets new evidence
    r.feed([ev::person(at(6, 9, 0, 0), "cam-b1", "P103")])
        .until(at(8, 9, 0, 0));
    assert_eq!(r.e.alerts().len(), 1);
    assert_eq!(r.out.len(), 2);
}

#[test]
fn elderly_seen_daily_or_using_card_is_fine() {
    let mut r = Run::new();
    for d in 0..10 {
        let e = if d % 2 == 0 {
            ev::person(at(d, 9, 0, 0), "cam-n", "P103")
        } else {
            ev::access(
                at(d, 9, 0, 0),
                "gr-n",
                "C-P103",
                true,
                Direction::In,
                &format!("x{d}"),
            )
        };
        r.feed([e]);
    }
    r.until(at(11, 8, 0, 0));
    assert!(r.of(AlertCode::ElderlyNoActivity).is_empty());
}

fn keep_alive(r: &mut Run, days: std::ops::Range<i64>, except: &[&str]) {
    // everyone but `except` is seen daily so no other rule fires
    let everyone = ["P101a", "P101b", "P101c", "P102", "P103", "P201"];
    for d in days {
        for p in everyone.iter().filter(|p| !except.contains(p)) {
            r.feed([ev::person(at(d, 10, 0, 0), "cam-n", p)]);
        }
    }
}

#[test]
fn vacancy_warning_then_violation_on_one_alert() {
    let mut r = Run::new();
    r.feed([ev::person(at(0, 10, 0, 0), "cam-b2", "P201")]);
    keep_alive(&mut r, 1..200, &["P201"]);
    let v = r.of(AlertCode::VacancySuspected);
    assert_eq!(v.len(), 1, "{:?}", r.e.alerts());
    assert_eq!(v[0].opened_at, at(60, 10, 0, 0));
    assert_eq!(v[0].severity, Severity::High);
    assert_eq!(v[0].updated_at, at(180, 10, 0, 0));
    assert_eq!(v[0].subject, Subject::Unit("FCY/2/201".into()));
    let lines: Vec<_> = r
        .out
        .iter()
        .filter(|a| a.code == AlertCode::VacancySuspected)
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0].severity, Severity::Medium);
    assert_eq!(r.e.alerts().len(), 1);
}

#[test]
fn three_week_trip_is_not_vacancy_and_history_start_counts() {
    let mut r = Run::new();
    // P201 travels for three weeks twice; never 60 days away
    keep_alive(&mut r, 0..10, &[]);
    keep_alive(&mut r, 10..31, &["P201"]);
    keep_alive(&mut r, 31..40, &[]);
    keep_alive(&mut r, 40..61, &["P201"]);
    keep_alive(&mut r, 61..70, &[]);
    assert!(r.e.alerts().is_empty(), "{:?}", r.e.alerts());

    // never seen since the history started: fires 60 days after the first event
    let mut r = Run::new();
    keep_alive(&mut r, 0..61, &["P201"]);
    let v = r.of(AlertCode::VacancySuspected);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].opened_at, at(60, 10, 0, 0));
}

/// Stranger `s` at building 1's door: evening and next morning on the days
/// given.
fn stays(s: &str, days: impl IntoIterator<Item = i64>, overnight: bool) -> Vec<Event> {
    let mut v = Vec::new();
    for d in days {
        if overnight {
            v.push(ev::stranger(at(d, 7, 40, 0), "cam-b1", s));
            v.push(ev::stranger(at(d, 21, 10, 0), "cam-b1", s));
        } else {
            v.push(ev::stranger(at(d, 15, 0, 0), "cam-b1", s));
        }
    }
    v
}

#[test]
fn unregistered_long_term_occupant() {
    let mut r = Run::new();
    r.feed(stays("S1", 0..8, true));
    let a = r.of(AlertCode::UnregisteredLongTermOccupant);
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].subject, Subject::Stranger("S1".into()));
    assert_eq!(a[0].building.as_ref().unwrap().as_str(), "1");
    // 7th distinct day, with overnights (d0 21:10 → d1 07:40, ...)
    assert_eq!(a[0].opened_at, at(6, 7, 40, 0));
    let lines = r
        .out
        .iter()
        .filter(|a| a.code == AlertCode::UnregisteredLongTermOccupant);
    assert_eq!(lines.count(), 1, "no update per sighting while latched");
}

#[test]
fn weekly_visitor_and_daytime_worker_are_not_occupants() {
    let mut r = Run::new();
    // a relative twice a week in the afternoon, for two months
    let days: Vec<i64> = (0..60).filter(|d| d % 7 == 2 || d % 7 == 5).collect();
    r.feed(stays("REL", days, false));
    // a cleaner every weekday afternoon (many days, no overnights)
    let days: Vec<i64> = (0..60).filter(|d| d % 7 < 5).collect();
    let mut evs = stays("CLN", days, false);
    evs.sort_by_key(|e| e.ts());
    let mut r2 = Run::new();
    r2.feed(evs);
    assert!(r.of(AlertCode::UnregisteredLongTermOccupant).is_empty());
    assert!(r2.of(AlertCode::UnregisteredLongTermOccupant).is_empty());
}

#[test]
fn sublet_after_30_days_unseen_with_card_used_by_stranger() {
    let mut r = Run::new();
    let mut evs = Vec::new();
    for d in 0..45 {
        evs.push(ev::access(
            at(d, 20, 30, 0),
            "gr-b1",
            "C-P102",
            true,
            Direction::In,
            &format!("s{d}"),
        ));
        evs.push(ev::stranger(at(d, 20, 30, 2), "cam-b1", "SUB"));
        evs.push(ev::stranger(at(d, 7, 50, 0), "cam-b1", "SUB"));
    }
    evs.sort_by_key(|e| e.ts());
    r.feed(evs);
    let s = r.of(AlertCode::SubletSuspected);
    assert_eq!(s.len(), 1, "{:#?}", r.codes());
    // 30 days after the history start, at the next daily sweep (midnight)
    assert_eq!(s[0].opened_at, at(31, 0, 0, 0));
    assert_eq!(s[0].subject, Subject::Unit("FCY/1/102".into()));
    assert_eq!(r.of(AlertCode::CredentialMisuse).len(), 1);
    assert_eq!(r.of(AlertCode::UnregisteredLongTermOccupant).len(), 1);
    assert!(r.of(AlertCode::VacancySuspected).is_empty());
}

#[test]
fn overcrowding() {
    let mut r = Run::new();
    let mut n = 0;
    let mut evs = Vec::new();
    for d in 0..10 {
        for p in ["P101a", "P101b", "P101c"] {
            evs.extend(ordinary_day(d, p, "b1", &mut n));
        }
    }
    evs.sort_by_key(|e| e.ts());
    r.feed(evs);
    assert!(r.of(AlertCode::OvercrowdingSuspected).is_empty());
    assert!(r.of(AlertCode::Tailgating).is_empty());
    // A stranger walking in beside the family is not linked to the unit
    // (tailgating, not overcrowding): linked means using its credentials.
    r.feed([
        ev::access(
            at(9, 20, 0, 0),
            "gr-b1",
            "C-P101a",
            true,
            Direction::In,
            "t9",
        ),
        ev::person(at(9, 20, 0, 1), "cam-b1", "P101a"),
        ev::stranger(at(9, 20, 0, 2), "cam-b1", "X0"),
    ]);
    // Three different strangers use the unit's card over a week.
    for (d, s) in [(10, "X1"), (12, "X2"), (14, "X3")] {
        r.feed([
            ev::access(
                at(d, 20, 0, 0),
                "gr-b1",
                "C-P101a",
                true,
                Direction::In,
                &format!("o{d}"),
            ),
            ev::stranger(at(d, 20, 0, 2), "cam-b1", s),
        ]);
    }
    r.until(at(16, 1, 0, 0));
    let o = r.of(AlertCode::OvercrowdingSuspected);
    assert_eq!(o.len(), 1);
    assert_eq!(o[0].opened_at, at(15, 0, 0, 0));
    assert_eq!(r.of(AlertCode::Tailgating).len(), 1);
    assert_eq!(r.of(AlertCode::CredentialMisuse).len(), 1);
}

#[test]
fn quiet_period_after_dismissal() {
    let mut r = Run::new();
    r.feed([ev::door(at(0, 10, 0, 0), "gr-b1", DoorState::Forced, "d1")]);
    let by = UserName::from("op");
    let a =
        r.e.act(
            1,
            Action::Dismiss,
            &by,
            Some("maintenance"),
            None,
            at(0, 10, 5, 0),
        )
        .unwrap();
    assert_eq!(a.status, AlertStatus::Dismissed);
    r.feed([ev::door(at(3, 10, 0, 0), "gr-b1", DoorState::Forced, "d2")]);
    assert_eq!(r.of(AlertCode::DoorForced).len(), 1);
    r.feed([ev::door(at(8, 10, 0, 0), "gr-b1", DoorState::Forced, "d3")]);
    assert_eq!(r.of(AlertCode::DoorForced).len(), 2);
    let id = r.of(AlertCode::DoorForced)[1].id;
    r.e.act(id, Action::Ack, &by, None, None, at(8, 11, 0, 0))
        .unwrap();
    r.e.act(
        id,
        Action::Resolve,
        &by,
        None,
        Some(Outcome::Confirmed),
        at(8, 12, 0, 0),
    )
    .unwrap();
    assert_eq!(r.e.transitions().len(), 3);
    r.feed([ev::door(at(8, 13, 0, 0), "gr-b1", DoorState::Forced, "d4")]);
    assert_eq!(r.of(AlertCode::DoorForced).len(), 3);
}

#[test]
fn device_offline() {
    let mut r = Run::new();
    // goes offline and comes back within 5 minutes: nothing
    r.feed([
        ev::status(at(0, 9, 0, 0), "gr-n", false),
        ev::status(at(0, 9, 2, 0), "gr-n", true),
    ])
    .until(at(0, 10, 0, 0));
    assert!(r.e.alerts().is_empty());
    r.feed([ev::status(at(0, 11, 0, 0), "gr-n", false)])
        .until(at(0, 11, 5, 0));
    assert!(r.e.alerts().is_empty());
    r.until(at(0, 11, 5, 1));
    assert_eq!(r.codes(), vec![AlertCode::DeviceOffline]);
    // a heartbeating reader that falls silent
    r.feed([
        ev::status(at(0, 12, 0, 0), "gr-b2", true),
        ev::status(at(0, 12, 1, 0), "gr-b2", true),
    ])
    .until(at(0, 12, 5, 59));
    assert_eq!(r.e.alerts().len(), 1);
    r.until(at(0, 12, 7, 0));
    assert_eq!(r.e.alerts().len(), 2);
}
