//! The two-month scenario through `replay::run`: exactly the expected alerts,
//! in the expected time windows, none on the ordinary families.
#![allow(clippy::unwrap_used)]

use anju_core::{Alert, AlertCode, Severity, Subject, Timestamp};
use anju_rules::{replay, RulesConfig};
use chrono::Duration;
use std::sync::Arc;

fn replay_scenario() -> (Vec<Alert>, replay::ReplayStats, Timestamp) {
    let sc = anju_rules::sim::two_month_scenario();
    let mut input = String::new();
    for ev in &sc.events {
        input += &serde_json::to_string(ev).unwrap();
        input.push('\n');
    }
    // a malformed line and a blank one are reported and skipped
    input += "{\"ts\": \"nope\", \"kind\": \"door\"}\n\n";
    let mut out = Vec::new();
    let stats = replay::run(
        Arc::new(sc.registry),
        sc.tz,
        RulesConfig::default(),
        input.as_bytes(),
        &mut out,
    )
    .unwrap();
    let lines: Vec<Alert> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (lines, stats, sc.day0)
}

#[test]
fn two_month_scenario_opens_exactly_the_expected_alerts() {
    let (lines, stats, day0) = replay_scenario();
    assert_eq!(stats.errors.len(), 1, "{:?}", stats.errors);
    assert!(stats.warnings.is_empty(), "{:?}", stats.warnings);
    let day = |d: i64, h: i64| day0 + Duration::days(d) + Duration::hours(h);
    // final state of each alert = its last line
    let mut last: std::collections::BTreeMap<i64, Alert> = Default::default();
    for a in &lines {
        last.insert(a.id, a.clone());
    }
    let got: Vec<(AlertCode, Subject)> =
        last.values().map(|a| (a.code, a.subject.clone())).collect();
    let expected = [
        (
            AlertCode::CredentialMisuse,
            Subject::Credential("C-SL".into()),
            day(3, 20),
            day(3, 21),
            Severity::High,
        ),
        (
            AlertCode::UnregisteredLongTermOccupant,
            Subject::Stranger("SUB1".into()),
            day(9, 7),
            day(9, 8),
            Severity::High,
        ),
        (
            AlertCode::WatchlistHit,
            Subject::Person("W1".into()),
            day(15, 14),
            day(15, 15),
            Severity::Critical,
        ),
        (
            AlertCode::ElderlyNoActivity,
            Subject::Person("EL".into()),
            day(22, 16),
            day(22, 17),
            Severity::High,
        ),
        (
            AlertCode::QrInvalid,
            Subject::Device("qr-n".into()),
            day(25, 10),
            day(25, 11),
            Severity::Medium,
        ),
        (
            AlertCode::SubletSuspected,
            Subject::Unit("FCY/1/102".into()),
            day(32, 0),
            day(33, 1),
            Severity::High,
        ),
        (
            AlertCode::DoorForced,
            Subject::Device("gr-b2".into()),
            day(40, 3),
            day(40, 4),
            Severity::High,
        ),
        (
            AlertCode::VacancySuspected,
            Subject::Unit("FCY/2/202".into()),
            day(60, 6),
            day(60, 7),
            Severity::Medium,
        ),
    ];
    assert_eq!(got.len(), expected.len(), "got {got:#?}");
    for (code, subject, from, to, sev) in expected {
        let a = last
            .values()
            .find(|a| a.code == code && a.subject == subject)
            .unwrap_or_else(|| panic!("missing {code} {subject:?}; got {got:#?}"));
        assert!(
            a.opened_at >= from && a.opened_at <= to,
            "{code} opened at {} not in [{from}, {to}]",
            a.opened_at
        );
        assert_eq!(a.severity, sev, "{code}");
        assert!(!a.evidence.is_empty(), "{code}");
        assert_eq!(a.title_en, code.title_en());
    }
    // nothing on the families who just live there, or the visitor
    for a in last.values() {
        let unit = a.unit.as_ref().map(|u| u.as_str()).unwrap_or("");
        assert!(
            !["101", "201", "203", "204"].contains(&unit),
            "alert on an ordinary family: {a:?}"
        );
        assert_ne!(a.subject, Subject::Stranger("VIS".into()));
    }
    // the contract's JSON fields are present
    let raw = serde_json::to_value(&lines[0]).unwrap();
    for k in [
        "id",
        "code",
        "severity",
        "status",
        "estate",
        "subject",
        "opened_at",
        "updated_at",
        "evidence",
        "title_zh",
        "title_en",
    ] {
        assert!(raw.get(k).is_some(), "missing {k}");
    }
}

#[test]
fn replay_is_deterministic_and_stops_at_the_last_event() {
    let (a, s1, _) = replay_scenario();
    let (b, s2, _) = replay_scenario();
    assert_eq!(a, b);
    assert_eq!(s1.last_ts, s2.last_ts);
    let last = s1.last_ts.unwrap();
    assert!(a.iter().all(|x| x.updated_at <= last));
}

#[test]
fn committed_fixture_replays_like_the_generator() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/replay");
    let Ok(jsonl) = std::fs::read_to_string(format!("{dir}/two_months.jsonl")) else {
        return;
    };
    let sc = anju_rules::sim::two_month_scenario();
    let mut expected = String::new();
    for ev in &sc.events {
        expected += &serde_json::to_string(ev).unwrap();
        expected.push('\n');
    }
    assert!(
        jsonl == expected,
        "fixture is stale: rerun the gen_scenario example"
    );
}

#[test]
fn replay_reports_bad_lines_and_decides_pending_correlations_at_the_end() {
    let sc = anju_rules::sim::two_month_scenario();
    let input = concat!(
        "not json\n",
        r#"{"ts":"2026-03-01T08:00:00+08:00","kind":"teleport","device":"gr-b1"}"#,
        "\n",
        r#"{"ts":"2026-03-01T08:00:00+08:00","kind":"status","device":"nowhere","online":true}"#,
        "\n",
        r#"{"ts":"2026-03-01T09:00:00+08:00","kind":"access","device":"gr-b1","event_id":"a1","credential":{"kind":"card","id":"C-F1a"},"result":"granted","direction":"in"}"#,
        "\n",
        r#"{"ts":"2026-03-01T09:00:02+08:00","kind":"sighting","camera":"cam-b1","stranger":"Z"}"#,
        "\n",
    );
    let mut out = Vec::new();
    let stats = replay::run(
        Arc::new(sc.registry),
        sc.tz,
        RulesConfig::default(),
        input.as_bytes(),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        stats.errors.iter().map(|e| e.line).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(stats.warnings.len(), 1);
    assert_eq!(stats.events, 3);
    let out = String::from_utf8(out).unwrap();
    let alerts: Vec<Alert> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].code, AlertCode::CredentialMisuse);
    assert_eq!(alerts[0].estate.as_str(), "FCY");
}

/// The committed jsonl replays to exactly the committed expected alert
/// lines (the registry here is the one the site files were written from;
/// `anju_site::load` of `site.toml` was checked to give the same output).
#[test]
fn fixture_replays_to_the_expected_lines() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/replay");
    let sc = anju_rules::sim::two_month_scenario();
    let events = std::fs::File::open(dir.join("two_months.jsonl")).unwrap();
    let mut out = Vec::new();
    let stats = replay::run(
        Arc::new(sc.registry),
        sc.tz,
        RulesConfig::default(),
        std::io::BufReader::new(events),
        &mut out,
    )
    .unwrap();
    assert!(
        stats.errors.is_empty() && stats.warnings.is_empty(),
        "{stats:?}"
    );
    let expected = std::fs::read_to_string(dir.join("two_months.expected.jsonl")).unwrap();
    assert!(
        String::from_utf8(out).unwrap() == expected,
        "replay output differs from two_months.expected.jsonl"
    );
}
