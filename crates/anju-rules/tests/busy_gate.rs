//! A busy estate replayed through `anju replay`'s driver: residents seconds
//! apart on their own cards, families on one card, 5 % of faces missed,
//! couriers on visitor passes. No false `credential_misuse`, `tailgating`
//! or `overcrowding_suspected`; the planted ones are found. The table of
//! alerts per rule (true / false) is printed.
#![allow(clippy::unwrap_used)]

use anju_core::{AlertCode, Subject};
use anju_rules::gate_sim::{busy_gate, GateSpec};
use anju_rules::RulesConfig;
use std::collections::BTreeMap;
use std::sync::Arc;

#[test]
fn busy_gate_has_no_false_fusion_alerts_and_finds_the_planted_ones() {
    let g = busy_gate(GateSpec::default());
    let mut input = Vec::new();
    for ev in &g.events {
        input.extend(serde_json::to_vec(ev).unwrap());
        input.push(b'\n');
    }
    let mut out = Vec::new();
    let stats = anju_rules::run(
        Arc::new(g.registry.clone()),
        g.tz,
        RulesConfig::default(),
        &input[..],
        &mut out,
    )
    .unwrap();
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    // The last state of every alert.
    let mut alerts: BTreeMap<i64, anju_core::Alert> = BTreeMap::new();
    for line in String::from_utf8(out).unwrap().lines() {
        let a: anju_core::Alert = serde_json::from_str(line).unwrap();
        alerts.insert(a.id, a);
    }
    let t = &g.truth;
    let truth_of = |a: &anju_core::Alert| -> Option<bool> {
        match (a.code, &a.subject) {
            (AlertCode::CredentialMisuse, Subject::Credential(c)) => {
                Some(t.misused_credentials.contains(c.as_str()))
            }
            (AlertCode::Tailgating, Subject::Stranger(s)) => {
                Some(t.tailgaters.contains(s.as_str()))
            }
            (AlertCode::Tailgating, _) => Some(false),
            (AlertCode::OvercrowdingSuspected, Subject::Unit(u)) => {
                Some(t.crowded_units.contains(u))
            }
            _ => None,
        }
    };
    let mut table: BTreeMap<&str, (usize, usize, usize)> = BTreeMap::new();
    for a in alerts.values() {
        let row = table.entry(a.code.as_str()).or_default();
        row.0 += 1;
        match truth_of(a) {
            Some(true) => row.1 += 1,
            Some(false) => row.2 += 1,
            None => {}
        }
    }
    println!(
        "busy gate: {} events, {} passages, {} alerts",
        g.events.len(),
        g.passages,
        alerts.len()
    );
    println!(
        "{:<32} {:>6} {:>6} {:>6}",
        "rule", "alerts", "true", "false"
    );
    for (code, (n, tp, fp)) in &table {
        println!("{code:<32} {n:>6} {tp:>6} {fp:>6}");
    }
    let false_of = |c: AlertCode| table.get(c.as_str()).map_or(0, |r| r.2);
    let true_of = |c: AlertCode| table.get(c.as_str()).map_or(0, |r| r.1);
    for c in [
        AlertCode::CredentialMisuse,
        AlertCode::Tailgating,
        AlertCode::OvercrowdingSuspected,
    ] {
        assert_eq!(
            false_of(c),
            0,
            "false {c}: {:#?}",
            alerts
                .values()
                .filter(|a| a.code == c && truth_of(a) == Some(false))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(
        true_of(AlertCode::CredentialMisuse),
        t.misused_credentials.len()
    );
    assert_eq!(true_of(AlertCode::Tailgating), t.tailgaters.len());
    assert_eq!(
        true_of(AlertCode::OvercrowdingSuspected),
        t.crowded_units.len()
    );
}
