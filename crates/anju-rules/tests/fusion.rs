//! Fusion of credentials with live face tracks (DESIGN §6a): grants wait
//! for undecided tracks, faces are assigned one to one, and the edge and
//! centre roles split the rules. Simulated clock throughout.
#![allow(clippy::unwrap_used)]

use anju_core::{AlertCode, Direction, Event, Subject, Timestamp, Tz};
use anju_rules::engine::Role;
use anju_rules::sim::{ev, local, SiteBuilder};
use anju_rules::{Engine, RulesConfig};
use chrono::Duration;
use std::sync::Arc;

const TZ: Tz = chrono_tz::Asia::Shanghai;

fn site() -> SiteBuilder {
    let mut s = SiteBuilder::new("FCY");
    s.building("1")
        .entrance("b1", Some("1"))
        .unit("1", "101", &[("P101a", false), ("P101b", false)])
        .unit("1", "102", &[("P102", false)])
        .unit("1", "103", &[("P103", false)]);
    s
}

fn engine(role: Role) -> Engine {
    Engine::new(Arc::new(site().build()), TZ, RulesConfig::default()).with_role(role)
}

fn t0() -> Timestamp {
    local(TZ, 2026, 3, 2, 19, 0, 0)
}

fn secs(s: f64) -> Timestamp {
    t0() + Duration::milliseconds((s * 1000.0) as i64)
}

/// A decided live track: the sighting carries the track's key.
fn decided(ts: Timestamp, key: &str, person: Option<&str>, stranger: Option<&str>) -> Event {
    let mut e = match (person, stranger) {
        (Some(p), _) => ev::person(ts, "cam-b1", p),
        (_, Some(s)) => ev::stranger(ts, "cam-b1", s),
        _ => unreachable!(),
    };
    if let Event::Sighting { body, .. } = &mut e {
        body.event_id = Some(key.into());
    }
    e
}

fn codes(e: &Engine) -> Vec<AlertCode> {
    e.alerts().iter().map(|a| a.code).collect()
}

#[test]
fn a_grant_waits_for_a_track_that_decides_after_the_window() {
    let mut e = engine(Role::All);
    // The face appears at 0 s; another unit's card is swiped at 1 s; the
    // track is decided only at 8 s (a slow decision), after the window.
    e.track_opened("cam-b1", "k1", secs(0.0));
    e.ingest(&ev::access(
        secs(1.0),
        "gr-b1",
        "C-P102",
        true,
        Direction::In,
        "a1",
    ));
    e.advance_to(secs(7.0));
    assert!(e.alerts().is_empty(), "judged before the face decided");
    e.ingest(&decided(secs(8.0), "k1", Some("P103"), None));
    let a = e.alerts();
    assert_eq!(codes(&e), vec![AlertCode::CredentialMisuse], "{a:?}");
    assert_eq!(a[0].subject, Subject::Credential("C-P102".into()));
    assert!(a[0]
        .evidence
        .iter()
        .any(|x| x.person.as_ref().is_some_and(|p| p.as_str() == "P103")));
}

#[test]
fn the_wait_is_bounded() {
    let mut e = engine(Role::All);
    e.track_opened("cam-b1", "k1", secs(0.0));
    e.ingest(&ev::access(
        secs(1.0),
        "gr-b1",
        "C-P102",
        true,
        Direction::In,
        "a1",
    ));
    // Never decided: judged at 1 + 5 + 10 s without it, as nobody on camera.
    e.advance_to(secs(17.0));
    assert!(e.alerts().is_empty());
    e.ingest(&decided(secs(18.0), "k1", None, Some("s-1")));
    e.advance_to(secs(40.0));
    assert!(e.alerts().is_empty(), "{:?}", e.alerts());
}

#[test]
fn a_person_who_stays_in_view_is_seen_at_the_swipe() {
    let mut e = engine(Role::All);
    // A stranger's track is decided at 1 s and stays in view; another
    // unit's card is swiped at 9 s, 8 s after the decision.
    e.track_opened("cam-b1", "k1", secs(0.0));
    e.ingest(&decided(secs(1.0), "k1", None, Some("s-1")));
    e.ingest(&ev::access(
        secs(9.0),
        "gr-b1",
        "C-P102",
        true,
        Direction::In,
        "a1",
    ));
    e.track_closed("cam-b1", "k1", secs(11.0));
    e.advance_to(secs(30.0));
    assert_eq!(codes(&e), vec![AlertCode::CredentialMisuse]);
}

#[test]
fn own_card_family_and_nobody_on_camera_raise_nothing() {
    let mut e = engine(Role::All);
    // Own card, face after the swipe.
    e.ingest(&ev::access(
        secs(0.0),
        "gr-b1",
        "C-P102",
        true,
        Direction::In,
        "a1",
    ));
    e.ingest(&ev::person(secs(2.0), "cam-b1", "P102"));
    // A family on one card.
    e.ingest(&ev::access(
        secs(100.0),
        "gr-b1",
        "C-P101a",
        true,
        Direction::In,
        "a2",
    ));
    e.ingest(&ev::person(secs(100.5), "cam-b1", "P101a"));
    e.ingest(&ev::person(secs(101.0), "cam-b1", "P101b"));
    // Nobody on camera.
    e.ingest(&ev::access(
        secs(200.0),
        "gr-b1",
        "C-P103",
        true,
        Direction::In,
        "a3",
    ));
    e.advance_to(secs(300.0));
    assert!(e.alerts().is_empty(), "{:?}", e.alerts());
}

#[test]
fn two_faces_on_one_grant_is_tailgating() {
    let mut e = engine(Role::All);
    e.ingest(&ev::access(
        secs(0.0),
        "gr-b1",
        "C-P102",
        true,
        Direction::In,
        "a1",
    ));
    e.ingest(&ev::person(secs(0.5), "cam-b1", "P102"));
    e.ingest(&ev::stranger(secs(2.0), "cam-b1", "s-9"));
    e.advance_to(secs(30.0));
    assert_eq!(codes(&e), vec![AlertCode::Tailgating]);
    assert_eq!(e.alerts()[0].subject, Subject::Stranger("s-9".into()));
}

#[test]
fn a_face_explained_by_its_own_card_is_not_evidence_against_a_neighbour() {
    let mut e = engine(Role::All);
    // P103 swipes and is seen; P102 swipes 5.5 s later and is missed by the
    // camera; P103's face is within P102's window.
    e.ingest(&ev::access(
        secs(0.0),
        "gr-b1",
        "C-P103",
        true,
        Direction::In,
        "a1",
    ));
    e.ingest(&ev::person(secs(1.0), "cam-b1", "P103"));
    e.ingest(&ev::access(
        secs(5.5),
        "gr-b1",
        "C-P102",
        true,
        Direction::In,
        "a2",
    ));
    // A courier on a visitor pass, close to P102's swipe.
    e.ingest(&Event::Access {
        estate: None,
        device: "gr-b1".into(),
        body: anju_core::AccessEvent {
            event_id: "a3".into(),
            ts: secs(8.0),
            credential: anju_core::CredentialRef {
                kind: anju_core::CredentialKind::Qr,
                id: "visitor-77".into(),
            },
            result: anju_core::AccessResult::Granted,
            direction: Direction::In,
            reason: None,
        },
    });
    e.ingest(&ev::stranger(secs(8.5), "cam-b1", "courier-1"));
    e.advance_to(secs(60.0));
    assert!(e.alerts().is_empty(), "{:?}", e.alerts());
}

#[test]
fn edge_and_centre_split_the_rules_through_passages_and_findings() {
    let mut edge = engine(Role::Edge);
    let mut centre = engine(Role::Centre);
    let mut evs = vec![
        ev::access(secs(0.0), "gr-b1", "C-P102", true, Direction::In, "a1"),
        ev::stranger(secs(1.0), "cam-b1", "s-1"),
    ];
    for ev in &evs {
        edge.ingest(ev);
    }
    edge.advance_to(secs(30.0));
    let passages = edge.take_passages();
    let findings = edge.take_findings();
    assert_eq!(passages.len(), 1);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, AlertCode::CredentialMisuse);
    // The centre sees the same events plus the passage, raises no instant
    // rule itself, and takes the edge's finding into its book.
    evs.extend(passages);
    for ev in &evs {
        assert!(centre.ingest(ev).is_empty());
    }
    let a = centre.accept(findings[0].clone());
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].code, AlertCode::CredentialMisuse);
    // The holder was not credited: P102's absence keeps counting.
    let edge_codes = codes(&edge);
    assert_eq!(edge_codes, vec![AlertCode::CredentialMisuse]);
}

#[test]
fn someone_who_stays_in_view_is_judged_at_every_swipe() {
    let mut e = engine(Role::All);
    // P103 stands at the door for a minute while P102's card is swiped
    // three times, 10 s apart: each swipe is his.
    e.track_opened("cam-b1", "k1", secs(0.0));
    e.ingest(&decided(secs(0.6), "k1", Some("P103"), None));
    for (i, t) in [1.0, 11.0, 21.0].iter().enumerate() {
        e.ingest(&ev::access(
            secs(*t),
            "gr-b1",
            "C-P102",
            true,
            Direction::In,
            &format!("a{i}"),
        ));
    }
    e.track_closed("cam-b1", "k1", secs(60.0));
    e.advance_to(secs(90.0));
    let a = e.alerts();
    assert_eq!(codes(&e), vec![AlertCode::CredentialMisuse]);
    let swipes = a[0].evidence.iter().filter(|x| x.kind == "access").count();
    assert_eq!(swipes, 3, "{a:?}");
}

#[test]
fn the_same_person_passing_twice_is_judged_by_the_nearer_track() {
    let mut e = engine(Role::All);
    // P103 uses P102's card at 0 s and again at 7 s, leaving in between.
    for (i, (k, t0)) in [("k1", 0.0), ("k2", 7.0)].into_iter().enumerate() {
        e.track_opened("cam-b1", k, secs(t0 - 1.0));
        e.ingest(&decided(secs(t0 - 0.4), k, Some("P103"), None));
        e.ingest(&ev::access(
            secs(t0),
            "gr-b1",
            "C-P102",
            true,
            Direction::In,
            &format!("a{i}"),
        ));
        e.track_closed("cam-b1", k, secs(t0 + 2.0));
    }
    e.advance_to(secs(60.0));
    let a = e.alerts();
    assert_eq!(codes(&e), vec![AlertCode::CredentialMisuse]);
    let swipes = a[0].evidence.iter().filter(|x| x.kind == "access").count();
    assert_eq!(swipes, 2, "{a:?}");
}

/// Face is never the only credential: where the caller says who is
/// enrolled, an unknown face with the card of a household nobody can
/// recognise is not misuse (it may be the holder), and the passage is the
/// holder's; the same scene with the household enrolled is misuse.
#[test]
fn a_household_without_enrolled_faces_is_not_judged_by_faces() {
    let scene = |enrolled: &[&str]| {
        let mut e = engine(Role::Edge);
        e.set_enrolled(enrolled.iter().copied());
        e.ingest(&decided(secs(0.5), "k1", None, Some("s-1")));
        e.ingest(&ev::access(
            secs(1.0),
            "gr-b1",
            "C-P101a",
            true,
            Direction::In,
            "a1",
        ));
        e.advance_to(secs(30.0));
        let misuse = e
            .take_findings()
            .iter()
            .any(|f| f.code == AlertCode::CredentialMisuse);
        let credited = e.take_passages().iter().any(|p| {
            matches!(p, Event::Passage { body, .. } if body.holder_credited && body.strangers.is_empty())
        });
        (misuse, credited)
    };
    assert_eq!(scene(&[]), (false, true), "nobody enrolled");
    assert_eq!(
        scene(&["P102"]),
        (false, true),
        "only another unit enrolled"
    );
    assert_eq!(
        scene(&["P101b"]),
        (true, false),
        "a household member enrolled"
    );
    assert_eq!(scene(&["P101a"]), (true, false), "the holder enrolled");
    // A face recognised as someone of another unit is not the holder, enrolled
    // household or not.
    let mut e = engine(Role::Edge);
    e.set_enrolled(["P102"]);
    e.ingest(&decided(secs(0.5), "k1", Some("P102"), None));
    e.ingest(&ev::access(
        secs(1.0),
        "gr-b1",
        "C-P101a",
        true,
        Direction::In,
        "a1",
    ));
    e.advance_to(secs(30.0));
    assert!(e
        .take_findings()
        .iter()
        .any(|f| f.code == AlertCode::CredentialMisuse));
}
