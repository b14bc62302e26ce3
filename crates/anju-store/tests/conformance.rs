#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
//! The store conformance suite: every test runs against SQLite (a file in a
//! temporary directory) and PostgreSQL (a fresh database at
//! ANJU_TEST_PG_URL, default postgres://postgres@127.0.0.1:5432/test).

use anju_core::*;
use anju_store::testutil::TestStore;
use anju_store::{AlertFilter, AuditEntry, Backend, Scope, Store, StoreError};
use chrono::{NaiveDate, TimeZone, Utc};
use std::path::Path;

fn example_registry() -> Registry {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/example/site.toml");
    anju_site::load(&p).expect("example site").registry
}

fn ts(h: u32, m: u32, s: u32) -> Timestamp {
    Utc.with_ymd_and_hms(2026, 3, 1, h, m, s).unwrap()
}

fn access(id: &str, t: Timestamp, card: &str) -> Event {
    Event::Access {
        estate: Some("FCY".into()),
        device: "gr-n1".into(),
        body: AccessEvent {
            event_id: id.into(),
            ts: t,
            credential: CredentialRef {
                kind: CredentialKind::Card,
                id: card.into(),
            },
            result: AccessResult::Granted,
            direction: Direction::In,
            reason: None,
        },
    }
}

fn alert(code: AlertCode, subject: Subject, building: Option<&str>) -> Alert {
    Alert {
        id: 0,
        code,
        severity: code.default_severity(),
        status: AlertStatus::Open,
        estate: "FCY".into(),
        building: building.map(Into::into),
        unit: None,
        subject,
        opened_at: ts(8, 0, 0),
        updated_at: ts(8, 0, 0),
        evidence: vec![Evidence::new(ts(8, 0, 0), "access")],
        title_zh: code.title_zh().into(),
        title_en: code.title_en().into(),
        outcome: None,
        reason: None,
    }
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let t = super::TestStore::new(super::Backend::Sqlite).await.expect("sqlite store");
                super::$name(&t.store).await;
                t.cleanup().await;
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let t = super::TestStore::new(super::Backend::Postgres)
                    .await
                    .expect("PostgreSQL at ANJU_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test) must be up");
                super::$name(&t.store).await;
                t.cleanup().await;
            })*
        }
    };
}

on_both_backends!(
    registry_round_trips,
    reimport_updates_and_keeps_history,
    event_written_twice_is_stored_once,
    events_batch_is_atomic_and_ordered,
    dead_letters_are_kept,
    alerts_dedup_and_workflow,
    scope_hides_foreign_objects,
    alert_list_filters_scopes_and_pages,
    alert_page_json_is_the_alerts_serialised,
    alert_index_follows_every_write,
    notices_and_audit,
    users_round_trip,
    leases_share_and_free,
    face_templates_round_trip,
    findings_insert_is_idempotent_and_ordered,
    outbox_round_trip,
    attach_to_alert_never_undoes_a_decision,
    transition_alert_is_compare_and_set,
    concurrent_transitions_have_one_winner,
    retention_prunes_events_and_strangers,
    retention_drops_whole_months,
    evidence_images,
    devices_last_seen_and_status,
);

/// `list_devices` (GET /devices) reads `device_seen`, kept by a trigger on
/// every stored event: the latest event's time, the latest status — a
/// late, older status does not overwrite a newer one; events inserted in
/// any order, across batches, and a redelivery that stores nothing leave
/// it right.
async fn devices_last_seen_and_status(s: &Store) {
    s.import_registry(&example_registry()).await.unwrap();
    let status = |t: Timestamp, online: bool| Event::Status {
        estate: Some("FCY".into()),
        device: "gr-n1".into(),
        body: StatusEvent { ts: t, online },
    };
    let find = |list: &[anju_store::DeviceRow], id: &str| {
        list.iter().find(|d| d.id == id).cloned().unwrap()
    };
    let page = anju_store::Page::new(Some(1000), None);
    let list = s.list_devices(&Scope::all(), page).await.unwrap();
    assert_eq!(find(&list, "gr-n1").last_seen, None);
    s.insert_events(&[
        access("d-1", ts(9, 0, 0), "C1001"),
        status(ts(8, 0, 0), false),
    ])
    .await
    .unwrap();
    let d = find(&s.list_devices(&Scope::all(), page).await.unwrap(), "gr-n1");
    assert_eq!(d.last_seen, Some(ts(9, 0, 0)));
    assert_eq!(d.online, Some(false));
    s.insert_events(&[status(ts(9, 30, 0), true)])
        .await
        .unwrap();
    // A late report from earlier, and an older access: neither goes back.
    s.insert_events(&[
        status(ts(9, 10, 0), false),
        access("d-0", ts(7, 0, 0), "C1001"),
    ])
    .await
    .unwrap();
    s.insert_events(&[access("d-1", ts(9, 0, 0), "C1001")])
        .await
        .unwrap();
    let d = find(&s.list_devices(&Scope::all(), page).await.unwrap(), "gr-n1");
    assert_eq!(d.last_seen, Some(ts(9, 30, 0)));
    assert_eq!(d.online, Some(true));
    // Scoped like the devices: another estate's scope sees none of them.
    let none = s
        .list_devices(&Scope::estates(["XYZ"]), page)
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn registry_round_trips(s: &Store) {
    let reg = example_registry();
    let sum = s.import_registry(&reg).await.unwrap();
    assert_eq!(
        (
            sum.estates,
            sum.buildings,
            sum.units,
            sum.persons,
            sum.credentials,
            sum.devices
        ),
        (1, 2, 5, 9, 10, 6)
    );
    let back = s.load_registry().await.unwrap();
    let mut a = reg.persons.clone();
    a.sort_by(|x, y| (&x.id, x.lease_start).cmp(&(&y.id, y.lease_start)));
    assert_eq!(back.persons, a);
    assert_eq!(back.credentials.len(), reg.credentials.len());
    assert_eq!(back.devices.len(), reg.devices.len());
    assert_eq!(back.watchlist, reg.watchlist);
    assert_eq!(back.grids, reg.grids);
}

async fn reimport_updates_and_keeps_history(s: &Store) {
    let mut reg = example_registry();
    s.import_registry(&reg).await.unwrap();
    // P007 moves out of 2/101; the ledger closes the lease.
    let end = NaiveDate::from_ymd_opt(2026, 2, 1).unwrap();
    for p in reg.persons.iter_mut().filter(|p| p.id.as_str() == "P007") {
        p.lease_end = Some(end);
    }
    reg.credentials.retain(|c| c.person.as_str() != "P007");
    let sum = s.import_registry(&reg).await.unwrap();
    assert_eq!(sum.persons, 9, "history is kept");
    assert_eq!(sum.credentials, 9, "the card of the leaver is gone");
    let back = s.load_registry().await.unwrap();
    let p7 = back
        .persons
        .iter()
        .find(|p| p.id.as_str() == "P007")
        .unwrap();
    assert_eq!(p7.lease_end, Some(end));
}

async fn event_written_twice_is_stored_once(s: &Store) {
    let e = access("ev-1", ts(8, 0, 0), "C1001");
    assert_eq!(s.insert_events(std::slice::from_ref(&e)).await.unwrap(), 1);
    assert_eq!(s.insert_events(std::slice::from_ref(&e)).await.unwrap(), 0);
    // Same id within one batch too.
    let e2 = access("ev-2", ts(8, 0, 1), "C1001");
    assert_eq!(s.insert_events(&[e2.clone(), e2, e]).await.unwrap(), 1);
    assert_eq!(s.count_events(Some("FCY")).await.unwrap(), 2);
    // Status reports have no id: the same report twice is one row.
    let st = Event::Status {
        estate: Some("FCY".into()),
        device: "gr-n1".into(),
        body: StatusEvent {
            ts: ts(8, 1, 0),
            online: false,
        },
    };
    s.insert_events(&[st.clone(), st]).await.unwrap();
    assert_eq!(s.count_events(None).await.unwrap(), 3);
}

/// The alert page written from the stored rows (evidence passed through)
/// is byte for byte the serialised `Vec<Alert>` of `list_alerts`, for
/// every shape of alert: with and without building, unit, outcome and
/// reason, evidence with escapes and non-ASCII text, filters and scopes.
/// The API's index of recent alerts reads the newest alerts and then the
/// alerts written after the change counter it holds (migration 0017): each
/// entry's JSON is the alert list's, byte for byte; an insert and an update
/// after the read are both found, a building's change (which moves the
/// counter too) brings no alert, and too many changes say so.
async fn alert_index_follows_every_write(s: &Store) {
    s.import_registry(&example_registry()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut a = alert(
            AlertCode::Tailgating,
            Subject::Unit(format!("FCY/1/10{i}").as_str().into()),
            Some("1"),
        );
        // Escapes and characters outside ASCII come out as the list's.
        let mut e = Evidence::new(ts(8, i, 0), "swipe");
        e.note = Some(format!("引号 \"{i}\" \\ back\nline \u{1F600}"));
        a.evidence.push(e);
        ids.push(s.insert_alert(&a).await.unwrap().id);
    }
    // The alert list's JSON of one alert (a page of it alone).
    let listed = |id: i64| async move {
        let page = s
            .list_alerts_json(
                &AlertFilter {
                    before_id: Some(id + 1),
                    limit: 1,
                    ..Default::default()
                },
                &Scope::all(),
            )
            .await
            .unwrap();
        assert_eq!(page.last_id, Some(id));
        let json = page
            .json
            .strip_prefix('[')
            .unwrap()
            .strip_suffix(']')
            .unwrap();
        (id, json.to_owned())
    };
    let newest = s.alert_index_newest(2).await.unwrap();
    assert_eq!(newest.version, s.alerts_version().await.unwrap());
    let got: Vec<(i64, String)> = newest
        .alerts
        .iter()
        .map(|a| (a.id, a.json.to_string()))
        .collect();
    assert_eq!(got, vec![listed(ids[2]).await, listed(ids[1]).await]);
    assert_eq!(newest.alerts[0].estate, "FCY");
    assert_eq!(newest.alerts[0].building.as_deref(), Some("1"));
    assert_eq!(newest.alerts[0].code, AlertCode::Tailgating);
    assert_eq!(newest.alerts[0].status, AlertStatus::Open);
    assert_eq!(newest.alerts[0].updated_ms, ts(8, 0, 0).timestamp_millis());
    let v0 = newest.version;
    let none = s.alert_index_changes(v0, 10).await.unwrap().unwrap();
    assert!(none.alerts.is_empty() && none.gone.is_empty());
    assert_eq!(none.version, v0);

    // The oldest alert resolved, a fourth opened.
    let mut first = s.get_alert(ids[0], &Scope::all()).await.unwrap().unwrap();
    first.status = AlertStatus::Resolved;
    first.updated_at = ts(9, 0, 0);
    s.update_alert(&first).await.unwrap();
    let fourth = s
        .insert_alert(&alert(
            AlertCode::DoorForced,
            Subject::Unit("FCY/1/109".into()),
            None,
        ))
        .await
        .unwrap();
    let ch = s.alert_index_changes(v0, 10).await.unwrap().unwrap();
    assert!(ch.version > v0);
    assert!(ch.gone.is_empty());
    let want = vec![listed(fourth.id).await, listed(ids[0]).await];
    let got: Vec<(i64, String)> = ch
        .alerts
        .iter()
        .map(|a| (a.id, a.json.to_string()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(ch.alerts[1].status, AlertStatus::Resolved);
    assert_eq!(ch.alerts[0].building, None);
    // More changes than asked for: read the newest instead.
    assert_eq!(s.alert_index_changes(v0, 1).await.unwrap(), None);
    // Nothing since the last read.
    let again = s
        .alert_index_changes(ch.version, 10)
        .await
        .unwrap()
        .unwrap();
    assert!(again.alerts.is_empty());
}

async fn alert_page_json_is_the_alerts_serialised(s: &Store) {
    s.import_registry(&example_registry()).await.unwrap();
    let empty = s
        .list_alerts_json(&AlertFilter::default(), &Scope::all())
        .await
        .unwrap();
    assert_eq!(
        (empty.json.as_str(), empty.count, empty.last_id),
        ("[]", 0, None)
    );
    for i in 0..7 {
        let mut a = alert(
            if i % 2 == 0 {
                AlertCode::Tailgating
            } else {
                AlertCode::DoorForced
            },
            Subject::Unit(format!("FCY/1/10{i}").as_str().into()),
            (i % 3 != 0).then_some("1"),
        );
        if i % 3 == 1 {
            a.unit = Some("101".into());
        }
        let mut e = Evidence::new(ts(8, i, 0), "swipe");
        e.note = Some(format!("引号 \"{i}\" \\ back\nline"));
        a.evidence.push(e);
        let mut stored = s.insert_alert(&a).await.unwrap();
        if i % 3 == 2 {
            stored.status = AlertStatus::Resolved;
            stored.outcome = Some(Outcome::FalseAlarm);
            stored.reason = Some("巡查: ok \u{1F600}".into());
            s.update_alert(&stored).await.unwrap();
        }
    }
    let estates_only = Scope {
        all_estates: false,
        estates: vec!["FCY".into()],
        grids: vec![],
    };
    let filters = [
        AlertFilter::default(),
        AlertFilter {
            code: Some(AlertCode::Tailgating),
            limit: 2,
            ..AlertFilter::default()
        },
        AlertFilter {
            status: Some(AlertStatus::Resolved),
            ..AlertFilter::default()
        },
        AlertFilter {
            before_id: Some(i64::MAX),
            limit: 3,
            ..AlertFilter::default()
        },
    ];
    for scope in [Scope::all(), estates_only] {
        for f in &filters {
            let alerts = s.list_alerts(f, &scope).await.unwrap();
            let page = s.list_alerts_json(f, &scope).await.unwrap();
            assert_eq!(page.json, serde_json::to_string(&alerts).unwrap(), "{f:?}");
            assert_eq!(page.count, alerts.len());
            assert_eq!(page.last_id, alerts.last().map(|a| a.id));
        }
    }
}

/// Retention over months (PostgreSQL: monthly partitions, dropped whole;
/// SQLite: rows deleted): the same events go, reports and reads across
/// months see the rest, the access rollup keeps matching the events.
async fn retention_drops_whole_months(s: &Store) {
    let at = |m: u32, d: u32, h: u32| Utc.with_ymd_and_hms(2026, m, d, h, 0, 0).unwrap();
    let made = s
        .prepare_event_partitions(at(1, 1, 0), at(3, 31, 0))
        .await
        .unwrap();
    let parts = s.event_partitions().await.unwrap();
    let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    if s.backend() == Backend::Postgres {
        assert_eq!(made, 3, "{names:?}");
        for m in [
            "events_2026_01",
            "events_2026_02",
            "events_2026_03",
            "events_default",
        ] {
            assert!(names.contains(&m), "{m} in {names:?}");
        }
        // Made once: a second call (another replica) makes nothing.
        let again = s.prepare_event_partitions(at(1, 1, 0), at(3, 31, 0));
        assert_eq!(again.await.unwrap(), 0);
    } else {
        assert_eq!((made, parts.len()), (0, 0));
    }
    s.insert_events(&[
        access("jan", at(1, 15, 8), "C1001"),
        access("feb", at(2, 15, 8), "C1001"),
        access("mar-1", at(3, 1, 8), "C1001"),
        access("mar-20", at(3, 20, 8), "C1001"),
    ])
    .await
    .unwrap();
    // A redelivery within a partition is still one event.
    let again = [access("feb", at(2, 15, 8), "C1001")];
    assert_eq!(s.insert_events(&again).await.unwrap(), 0);
    // Read across months, oldest first.
    let all = s.events_after(0, 10).await.unwrap();
    assert_eq!(all.len(), 4);
    let day = |m: u32, d: u32| async move {
        s.access_report("FCY", at(m, d, 0), at(m, d, 0) + chrono::Duration::days(1))
            .await
            .unwrap()
            .events
    };
    assert_eq!(day(2, 15).await, 1);
    // Cut on March 10: January and February go whole, March 1 by row.
    assert_eq!(s.prune_events(at(3, 10, 0)).await.unwrap(), 3);
    assert_eq!(s.count_events(None).await.unwrap(), 1);
    assert_eq!(day(2, 15).await, 0, "February's rollup went with it");
    assert_eq!(day(3, 1).await, 0);
    assert_eq!(day(3, 20).await, 1);
    if s.backend() == Backend::Postgres {
        let parts = s.event_partitions().await.unwrap();
        let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
        assert!(!names.contains(&"events_2026_01"), "{names:?}");
        assert!(!names.contains(&"events_2026_02"), "{names:?}");
        assert!(names.contains(&"events_2026_03"), "{names:?}");
    }
    // Nothing left to drop: nothing more goes.
    assert_eq!(s.prune_events(at(3, 10, 0)).await.unwrap(), 0);
}

/// Retention: events before a time and strangers last seen before a time
/// are deleted; later ones stay.
async fn retention_prunes_events_and_strangers(s: &Store) {
    s.insert_events(&[
        access("old", ts(8, 0, 0), "C1001"),
        access("new", ts(9, 0, 0), "C1001"),
    ])
    .await
    .unwrap();
    assert_eq!(s.prune_events(ts(8, 30, 0)).await.unwrap(), 1);
    assert_eq!(s.count_events(None).await.unwrap(), 1);
    let stranger = |seq: i64, last: chrono::DateTime<chrono::Utc>| anju_store::StoredStranger {
        id: format!("s-FCY-{seq}"),
        estate: "FCY".into(),
        model: "m".into(),
        seq,
        centroid: vec![0.5; 4],
        samples: 1,
        first_seen: last,
        last_seen: last,
    };
    s.upsert_stranger(&stranger(1, ts(8, 0, 0))).await.unwrap();
    s.upsert_stranger(&stranger(2, ts(9, 0, 0))).await.unwrap();
    assert_eq!(s.prune_strangers("XYZ", ts(8, 30, 0)).await.unwrap(), 0);
    assert_eq!(s.prune_strangers("FCY", ts(8, 30, 0)).await.unwrap(), 1);
    let left = s.strangers("FCY", "m").await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].seq, 2);
}

/// Evidence images: snapshots stored once per key, visible to a caller
/// through an alert in their scope that cites them, pruned by time; the
/// enrolled photo of a person.
async fn evidence_images(s: &Store) {
    s.import_registry(&example_registry()).await.unwrap();
    let snap = |key: &str, t: Timestamp| anju_store::Snapshot {
        key: key.into(),
        estate: "FCY".into(),
        camera: "cam-b1".into(),
        taken_at: t,
        jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
    };
    let a = snap("FCY.cam-b1.1000.1", ts(8, 0, 0));
    let b = snap("FCY.cam-b1.2000.2", ts(9, 0, 0));
    assert_eq!(
        s.insert_snapshots(&[a.clone(), b.clone()]).await.unwrap(),
        2
    );
    assert_eq!(
        s.insert_snapshots(std::slice::from_ref(&a)).await.unwrap(),
        0,
        "a repeated forward"
    );
    let outbox = s.snapshots_after(0, 10).await.unwrap();
    assert_eq!(outbox.len(), 2);
    assert_eq!(outbox[0].1, a);
    assert_eq!(s.get_snapshot(&b.key).await.unwrap(), Some(b.clone()));
    // Cited by an alert of building 1: its scope sees it, a foreign estate
    // and another grid's field staff do not.
    let mut al = alert(
        AlertCode::CredentialMisuse,
        Subject::Credential("C1001".into()),
        Some("1"),
    );
    let mut e = Evidence::new(ts(8, 0, 0), "sighting");
    e.snapshot = Some(anju_store::snapshot_url(&a.key));
    al.evidence.push(e);
    let stored = s.insert_alert(&al).await.unwrap();
    let url = anju_store::snapshot_url(&a.key);
    assert_eq!(
        s.alert_citing(&url, &Scope::all()).await.unwrap(),
        Some(stored.id)
    );
    let foreign = Scope {
        all_estates: false,
        estates: vec!["XYZ".into()],
        grids: vec![],
    };
    assert_eq!(s.alert_citing(&url, &foreign).await.unwrap(), None);
    // A key that is the prefix of a cited one is not cited.
    let prefix = anju_store::snapshot_url("FCY.cam-b1.1000");
    assert_eq!(s.alert_citing(&prefix, &Scope::all()).await.unwrap(), None);
    let uncited = anju_store::snapshot_url(&b.key);
    assert_eq!(s.alert_citing(&uncited, &Scope::all()).await.unwrap(), None);
    // Evidence from before evidence images: a disk path is removed, noted;
    // API paths stay.
    let mut old = alert(
        AlertCode::Tailgating,
        Subject::Stranger("s-FCY-1".into()),
        Some("1"),
    );
    let mut e = Evidence::new(ts(8, 0, 0), "sighting");
    e.snapshot = Some("data/snapshots/FCY/2026-03-01/cam-b1-1.jpg".into());
    old.evidence.push(e);
    let old = s.insert_alert(&old).await.unwrap();
    assert_eq!(s.migrate_snapshot_paths().await.unwrap(), 1);
    assert_eq!(s.migrate_snapshot_paths().await.unwrap(), 0, "done once");
    let got = s.get_alert(old.id, &Scope::all()).await.unwrap().unwrap();
    let e = got.evidence.last().unwrap();
    assert_eq!(e.snapshot, None);
    assert!(e.note.as_deref().unwrap().contains("not kept"));
    let kept = s
        .get_alert(stored.id, &Scope::all())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        kept.evidence.last().unwrap().snapshot.as_deref(),
        Some(url.as_str())
    );
    // Retention by the time taken.
    assert_eq!(s.prune_snapshot_images(ts(8, 30, 0)).await.unwrap(), 1);
    assert_eq!(s.get_snapshot(&a.key).await.unwrap(), None);
    // The enrolled photo, replaced by a later one.
    assert_eq!(s.person_photo("P001").await.unwrap(), None);
    s.put_person_photo("P001", "image/png", b"one", ts(8, 0, 0))
        .await
        .unwrap();
    s.put_person_photo("P001", "image/jpeg", b"two", ts(9, 0, 0))
        .await
        .unwrap();
    assert_eq!(
        s.person_photo("P001").await.unwrap(),
        Some(("image/jpeg".to_owned(), b"two".to_vec()))
    );
}

async fn events_batch_is_atomic_and_ordered(s: &Store) {
    let mut batch: Vec<Event> = (0..2500)
        .map(|i| {
            access(
                &format!("b-{i}"),
                ts(9, 0, 0) + chrono::Duration::seconds(i),
                "C1",
            )
        })
        .collect();
    assert_eq!(s.insert_events(&batch).await.unwrap(), 2500);
    // A batch with an event lacking an estate is rejected whole.
    let mut bad = access("bad", ts(10, 0, 0), "C1");
    if let Event::Access { estate, .. } = &mut bad {
        *estate = None;
    }
    batch.push(bad);
    batch.push(access("new-1", ts(10, 0, 0), "C1"));
    assert!(s.insert_events(&batch).await.is_err());
    assert_eq!(s.count_events(None).await.unwrap(), 2500);
    let got = s
        .events_between("FCY", ts(9, 0, 0), ts(9, 0, 10))
        .await
        .unwrap();
    assert_eq!(got.len(), 10);
    assert!(got.windows(2).all(|w| w[0].ts() <= w[1].ts()));
    assert_eq!(got[0], batch[0]);
}

async fn dead_letters_are_kept(s: &Store) {
    s.insert_dead_letter(
        "mqtt",
        "anju/v1/FCY/gate/gr-n1/access",
        b"{not json",
        "expected value at line 1",
    )
    .await
    .unwrap();
    s.insert_dead_letter(
        "mqtt",
        "anju/v1/FCY/gate/gr-n1/door",
        &[0xff, 0xfe],
        "not UTF-8",
    )
    .await
    .unwrap();
    let d = s.dead_letters(10).await.unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(d[1].payload, "{not json");
    assert_eq!(d[0].reason, "not UTF-8");
    // Junk is kept bounded, cut on a character boundary.
    let big = "界".repeat(30_000);
    s.insert_dead_letter("mqtt", &big, big.as_bytes(), &big)
        .await
        .unwrap();
    let d = s.dead_letters(1).await.unwrap();
    // (The lossy display of a character cut in two adds one U+FFFD.)
    assert!(d[0].payload.len() <= anju_store::MAX_DEAD_LETTER_PAYLOAD + 3);
    assert!(d[0].topic.len() <= 512 && d[0].reason.len() <= 1024);
    assert!(d[0].reason.chars().all(|c| c == '界'));
    // Retention: everything received before a time is deleted.
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    assert_eq!(s.prune_dead_letters(later).await.unwrap(), 3);
    assert!(s.dead_letters(10).await.unwrap().is_empty());
}

async fn alerts_dedup_and_workflow(s: &Store) {
    s.import_registry(&example_registry()).await.unwrap();
    let a = s
        .insert_alert(&alert(
            AlertCode::CredentialMisuse,
            Subject::Credential("C1001".into()),
            Some("1"),
        ))
        .await
        .unwrap();
    assert!(a.id > 0);
    // A second active alert of the same code and subject is refused...
    let dup = s
        .insert_alert(&alert(
            AlertCode::CredentialMisuse,
            Subject::Credential("C1001".into()),
            Some("1"),
        ))
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    // ... new evidence goes onto the active one.
    let mut found = s
        .find_active_alert(
            "FCY",
            AlertCode::CredentialMisuse,
            &Subject::Credential("C1001".into()),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, a.id);
    found.evidence.push(Evidence::new(ts(8, 5, 0), "sighting"));
    found.updated_at = ts(8, 5, 0);
    s.update_alert(&found).await.unwrap();
    // Workflow with audited transitions.
    let to = found.status.apply(Action::Dismiss).unwrap();
    found.status = to;
    found.reason = Some("relative with the tenant's card".into());
    s.update_alert(&found).await.unwrap();
    s.record_transition(&Transition {
        alert_id: a.id,
        from: AlertStatus::Open,
        to,
        by: "operator".into(),
        at: ts(8, 6, 0),
        reason: found.reason.clone(),
    })
    .await
    .unwrap();
    let t = s.transitions(a.id).await.unwrap();
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].by.as_str(), "operator");
    // Once dismissed, a new alert of the same finding may open.
    s.insert_alert(&alert(
        AlertCode::CredentialMisuse,
        Subject::Credential("C1001".into()),
        Some("1"),
    ))
    .await
    .unwrap();
    let got = s.get_alert(a.id, &Scope::all()).await.unwrap().unwrap();
    assert_eq!(got.evidence.len(), 2);
    assert_eq!(got.status, AlertStatus::Dismissed);
    let list = s
        .list_alerts(
            &AlertFilter {
                status: Some(AlertStatus::Open),
                code: Some(AlertCode::CredentialMisuse),
                since: Some(ts(7, 0, 0)),
                limit: 10,
                ..Default::default()
            },
            &Scope::all(),
        )
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_ne!(list[0].id, a.id);
}

async fn scope_hides_foreign_objects(s: &Store) {
    let mut reg = example_registry();
    // A second estate with its own grid.
    reg.estates.push(Estate {
        code: "ZZZ".into(),
        name: "other".into(),
        office: String::new(),
    });
    reg.grids.push(Grid {
        estate: "ZZZ".into(),
        code: "G9".into(),
        staff: vec![],
    });
    reg.buildings.push(Building {
        estate: "ZZZ".into(),
        code: "9".into(),
        grid: Some("G9".into()),
    });
    s.import_registry(&reg).await.unwrap();
    let mine = s
        .insert_alert(&alert(
            AlertCode::VacancySuspected,
            Subject::Unit("FCY/1/102".into()),
            Some("1"),
        ))
        .await
        .unwrap();
    let mut other = alert(
        AlertCode::VacancySuspected,
        Subject::Unit("ZZZ/9/1".into()),
        Some("9"),
    );
    other.estate = "ZZZ".into();
    let other = s.insert_alert(&other).await.unwrap();
    let fcy = Scope::estates(["FCY"]);
    assert!(s.get_alert(mine.id, &fcy).await.unwrap().is_some());
    assert!(s.get_alert(other.id, &fcy).await.unwrap().is_none());
    let l = s.list_alerts(&AlertFilter::default(), &fcy).await.unwrap();
    assert_eq!(l.iter().map(|a| a.id).collect::<Vec<_>>(), vec![mine.id]);
    // Field staff of grid G1 in FCY see building 1 but not another grid's.
    let field = Scope {
        all_estates: false,
        estates: vec!["FCY".into()],
        grids: vec![("FCY".into(), "G1".into())],
    };
    assert!(s.get_alert(mine.id, &field).await.unwrap().is_some());
    let wrong_grid = Scope {
        grids: vec![("FCY".into(), "G2".into())],
        ..field.clone()
    };
    assert!(s.get_alert(mine.id, &wrong_grid).await.unwrap().is_none());
    assert!(s
        .get_alert(other.id, &Scope::estates(Vec::<String>::new()))
        .await
        .unwrap()
        .is_none());
}

/// The alert list against the same filtering done in Rust, over filters,
/// scopes and pages; on SQLite also the direct read path against the pool's.
async fn alert_list_filters_scopes_and_pages(s: &Store) {
    let mut reg = example_registry();
    reg.estates.push(Estate {
        code: "ZZZ".into(),
        name: "Other".into(),
        office: "x".into(),
    });
    reg.buildings.push(Building {
        estate: "ZZZ".into(),
        code: "9".into(),
        grid: None,
    });
    s.import_registry(&reg).await.unwrap();
    let codes = [
        AlertCode::VacancySuspected,
        AlertCode::Tailgating,
        AlertCode::CredentialMisuse,
    ];
    let mut all = Vec::new();
    for i in 0..40u32 {
        let code = codes[(i % 3) as usize];
        let building = if i % 4 == 0 { "2" } else { "1" };
        let mut a = alert(
            code,
            Subject::Unit(format!("FCY/{building}/{i}")),
            Some(building),
        );
        if i % 5 == 0 {
            a.estate = "ZZZ".into();
            a.building = Some("9".into());
            a.subject = Subject::Unit(format!("ZZZ/9/{i}"));
        }
        a.updated_at = ts(8, i, 0);
        a.evidence.push(Evidence::new(ts(8, i, 1), "sighting"));
        let mut a = s.insert_alert(&a).await.unwrap();
        if i % 7 == 0 {
            a.status = AlertStatus::Acknowledged;
            s.update_alert(&a).await.unwrap();
        }
        all.push(a);
    }
    all.sort_by_key(|a| std::cmp::Reverse(a.id));
    let field = Scope {
        all_estates: false,
        estates: vec!["FCY".into()],
        grids: vec![("FCY".into(), "G1".into())],
    };
    let grid_buildings: Vec<String> = reg
        .buildings
        .iter()
        .filter(|b| {
            b.estate.as_str() == "FCY" && b.grid.as_ref().is_some_and(|g| g.as_str() == "G1")
        })
        .map(|b| b.code.as_str().to_owned())
        .collect();
    let scopes = [
        Scope::all(),
        Scope::estates(["FCY"]),
        Scope::estates(["ZZZ"]),
        field.clone(),
    ];
    let filters = [
        AlertFilter::default(),
        AlertFilter {
            code: Some(AlertCode::Tailgating),
            limit: 5,
            ..Default::default()
        },
        AlertFilter {
            status: Some(AlertStatus::Open),
            estate: Some("FCY".into()),
            since: Some(ts(8, 10, 0)),
            ..Default::default()
        },
        AlertFilter {
            before_id: Some(all[10].id),
            limit: 7,
            ..Default::default()
        },
    ];
    for scope in &scopes {
        for f in &filters {
            let limit = if f.limit <= 0 { 100 } else { f.limit } as usize;
            let want: Vec<i64> = all
                .iter()
                .filter(|a| scope.allows_estate(a.estate.as_str()))
                .filter(|a| {
                    scope.grids.is_empty()
                        || a.building
                            .as_ref()
                            .is_some_and(|b| grid_buildings.iter().any(|g| g == b.as_str()))
                })
                .filter(|a| f.status.is_none_or(|st| a.status == st))
                .filter(|a| f.code.is_none_or(|c| a.code == c))
                .filter(|a| f.estate.as_ref().is_none_or(|e| a.estate.as_str() == e))
                .filter(|a| f.since.is_none_or(|t| a.updated_at >= t))
                .filter(|a| f.before_id.is_none_or(|b| a.id < b))
                .take(limit)
                .map(|a| a.id)
                .collect();
            let got = s.list_alerts(f, scope).await.unwrap();
            assert_eq!(
                got.iter().map(|a| a.id).collect::<Vec<_>>(),
                want,
                "{f:?} {scope:?}"
            );
            assert!(got.iter().all(|a| a.evidence.len() == 2));
            if s.has_direct_reads() {
                let pooled = s
                    .without_direct_reads()
                    .list_alerts(f, scope)
                    .await
                    .unwrap();
                assert_eq!(
                    serde_json::to_value(&got).unwrap(),
                    serde_json::to_value(&pooled).unwrap()
                );
            }
        }
    }
    assert_eq!(s.has_direct_reads(), s.backend() == Backend::Sqlite);
}

async fn notices_and_audit(s: &Store) {
    s.import_registry(&example_registry()).await.unwrap();
    let a = s
        .insert_alert(&alert(
            AlertCode::ElderlyNoActivity,
            Subject::Person("P004".into()),
            Some("1"),
        ))
        .await
        .unwrap();
    let n = s
        .create_notice(&a, Some("field"), ts(12, 0, 0), ts(8, 0, 0))
        .await
        .unwrap();
    assert_eq!(n.grid.as_deref(), Some("G1"));
    let field = Scope {
        all_estates: false,
        estates: vec!["FCY".into()],
        grids: vec![("FCY".into(), "G1".into())],
    };
    assert_eq!(
        s.list_notices(&field, true, None, anju_store::Page::default())
            .await
            .unwrap()
            .len(),
        1
    );
    s.close_notice(
        n.id,
        Outcome::Confirmed,
        Some("visited, she is in hospital"),
        ts(11, 0, 0),
    )
    .await
    .unwrap();
    assert!(s
        .close_notice(n.id, Outcome::Confirmed, None, ts(11, 0, 0))
        .await
        .is_err());
    let got = s.get_notice(n.id, &field).await.unwrap().unwrap();
    assert_eq!(got.result, Some(Outcome::Confirmed));
    s.audit(&AuditEntry {
        at: ts(11, 0, 0),
        user: "supervisor".into(),
        action: "read_person".into(),
        object: "person:P004".into(),
        detail: None,
    })
    .await
    .unwrap();
    let log = s.audit_entries(5).await.unwrap();
    assert_eq!(log[0].object, "person:P004");
}

async fn users_round_trip(s: &Store) {
    let u = User {
        name: "field".into(),
        role: Role::FieldStaff,
        all_estates: false,
        estates: vec!["FCY".into()],
        grids: vec![("FCY".into(), "G1".into())],
    };
    let v0 = s.alerts_version().await.unwrap();
    s.put_user(&u, "$argon2id$dummy").await.unwrap();
    let got = s.get_user("field").await.unwrap().unwrap();
    assert_eq!(got.user, u);
    assert!(s.get_user("nobody").await.unwrap().is_none());
    // A user write moves the counter the API keeps users by (migration
    // 0016): a demotion shows at the next request.
    let v1 = s.alerts_version().await.unwrap();
    assert!(v1 > v0, "{v0} -> {v1}");
    let demoted = User {
        grids: vec![("FCY".into(), "G2".into())],
        ..u
    };
    s.put_user(&demoted, "$argon2id$dummy").await.unwrap();
    assert!(s.alerts_version().await.unwrap() > v1);
    assert_eq!(s.get_user("field").await.unwrap().unwrap().user, demoted);
}

/// The analyzer's estate leases: on PostgreSQL each estate is held by one
/// replica at a time, given up on request, and freed when its holder's
/// connection goes (as when the process dies); the replicas count each
/// other. SQLite has one process by construction: every lease is granted.
async fn leases_share_and_free(s: &Store) {
    let mut a = s.leases().await.unwrap();
    let mut b = s.leases().await.unwrap();
    assert!(a.try_take("E1").await.unwrap());
    assert!(a.try_take("E1").await.unwrap(), "held already");
    assert!(a.check().await);
    if s.backend() == Backend::Sqlite {
        assert!(b.try_take("E1").await.unwrap());
        assert_eq!(a.replicas().await.unwrap(), 1);
        return;
    }
    assert_eq!(a.replicas().await.unwrap(), 2);
    assert!(!b.try_take("E1").await.unwrap(), "E1 is a's");
    assert!(b.try_take("E2").await.unwrap());
    assert!(!a.try_take("E2").await.unwrap(), "E2 is b's");
    b.give_up("E2").await.unwrap();
    assert!(a.try_take("E2").await.unwrap(), "given up, taken");
    assert_eq!(a.held().len(), 2);
    assert!(b.held().is_empty());
    // a's process dies: its connection closes and its estates are free.
    a.release().await;
    let t0 = std::time::Instant::now();
    loop {
        if b.replicas().await.unwrap() == 1 && b.try_take("E1").await.unwrap() {
            break;
        }
        assert!(t0.elapsed().as_secs() < 10, "a's leases never freed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(b.try_take("E2").await.unwrap());
    b.release().await;
}

async fn face_templates_round_trip(s: &Store) {
    let v: Vec<f32> = (0..128).map(|i| i as f32 / 128.0).collect();
    s.add_face_template("P001", "dlib_resnet128", &v, "photos/P001/a.jpg")
        .await
        .unwrap();
    let t = s.face_templates("dlib_resnet128").await.unwrap();
    assert_eq!(t, vec![("P001".to_owned(), v)]);
    assert_eq!(s.registry_summary().await.unwrap().faces, 1);
}

/// The alert list's change counter moves with every committed alert or
/// building write, whoever makes it (here a second store on the same
/// database, as another process would be), and only then. This store's own
/// writes show at once; another's on PostgreSQL through the change feed
/// (NOTIFY), which must be live and must follow them.
async fn alerts_version_tracks_every_writer(t: &TestStore) {
    let s = &t.store;
    let other = Store::connect(&t.url).await.unwrap();
    other.import_registry(&example_registry()).await.unwrap();
    let v0 = s.alerts_version().await.unwrap();
    if s.backend() == Backend::Postgres {
        let t0 = std::time::Instant::now();
        while !s.alerts_feed_live() {
            assert!(t0.elapsed().as_secs() < 20, "change feed never went live");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
    // Another writer's commit reaches this store (at once on SQLite, within
    // the notification's latency on PostgreSQL).
    async fn changed_from(s: &Store, old: i64) -> i64 {
        let t0 = std::time::Instant::now();
        loop {
            let v = s.alerts_version().await.unwrap();
            if v != old {
                return v;
            }
            assert!(t0.elapsed().as_secs() < 20, "version stuck at {old}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    // Events do not touch it.
    s.insert_events(&[access("e1", ts(8, 0, 0), "C1001")])
        .await
        .unwrap();
    assert_eq!(s.alerts_version().await.unwrap(), v0);
    let mut a = other
        .insert_alert(&alert(
            AlertCode::Tailgating,
            Subject::Unit("FCY/1/101".into()),
            Some("1"),
        ))
        .await
        .unwrap();
    let v1 = changed_from(s, v0).await;
    assert_eq!(s.alerts_version().await.unwrap(), v1);
    a.status = AlertStatus::Acknowledged;
    other.update_alert(&a).await.unwrap();
    let v2 = changed_from(s, v1).await;
    // This store's own write: seen at once.
    a.status = AlertStatus::Dispatched;
    s.update_alert(&a).await.unwrap();
    let v3 = s.alerts_version().await.unwrap();
    assert_ne!(v3, v2);
    // A registry re-import (buildings' grids) moves it too.
    let mut reg = example_registry();
    for b in &mut reg.buildings {
        b.grid = Some("G9".into());
    }
    reg.grids.push(Grid {
        estate: "FCY".into(),
        code: "G9".into(),
        staff: vec![],
    });
    other.import_registry(&reg).await.unwrap();
    let v4 = changed_from(s, v3).await;
    // Nothing else moved it since.
    assert_eq!(s.alerts_version().await.unwrap(), v4);
    if s.backend() == Backend::Postgres {
        assert!(s.alerts_feed_live(), "the feed answered these reads");
    }
    other.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_version_sqlite() {
    let t = TestStore::new(Backend::Sqlite).await.unwrap();
    alerts_version_tracks_every_writer(&t).await;
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_version_postgres() {
    let t = TestStore::new(Backend::Postgres)
        .await
        .expect("PostgreSQL at ANJU_TEST_PG_URL must be up");
    alerts_version_tracks_every_writer(&t).await;
    t.cleanup().await;
}

/// PostgreSQL: every alert written by another process arrives on the
/// stream, in commit order, numbered by the change counter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_changes_postgres() {
    use anju_store::AlertFeedItem;
    let t = TestStore::new(Backend::Postgres)
        .await
        .expect("PostgreSQL at ANJU_TEST_PG_URL must be up");
    let s = &t.store;
    let other = Store::connect(&t.url).await.unwrap();
    other.import_registry(&example_registry()).await.unwrap();
    let mut rx = s.alert_changes().expect("a stream on PostgreSQL");
    async fn next(rx: &mut tokio::sync::mpsc::Receiver<AlertFeedItem>) -> AlertFeedItem {
        tokio::time::timeout(std::time::Duration::from_secs(20), rx.recv())
            .await
            .expect("an item within 20 s")
            .expect("stream open")
    }
    assert!(matches!(
        next(&mut rx).await,
        AlertFeedItem::Live { resumed: false }
    ));
    let mut a = other
        .insert_alert(&alert(
            AlertCode::Tailgating,
            Subject::Unit("FCY/1/101".into()),
            Some("1"),
        ))
        .await
        .unwrap();
    let AlertFeedItem::Change {
        seq: s1,
        alert: got,
    } = next(&mut rx).await
    else {
        panic!("a change")
    };
    assert_eq!(got.id, a.id);
    assert_eq!(got.status, AlertStatus::Open);
    a.status = AlertStatus::Acknowledged;
    other.update_alert(&a).await.unwrap();
    let AlertFeedItem::Change {
        seq: s2,
        alert: got,
    } = next(&mut rx).await
    else {
        panic!("a change")
    };
    assert!(s2 > s1, "{s2} after {s1}");
    assert_eq!((got.id, got.status), (a.id, AlertStatus::Acknowledged));
    assert_eq!(s2, s.alerts_version().await.unwrap());
    other.close().await;
    drop(rx);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_changes_sqlite_is_in_process() {
    let t = TestStore::new(Backend::Sqlite).await.unwrap();
    assert!(t.store.alert_changes().is_none());
    t.cleanup().await;
}

// ---- findings, the edge outbox and the alert lifecycle's writes ----

fn payload(n: i64) -> String {
    format!(r#"{{"n":{n}}}"#)
}

async fn findings_insert_is_idempotent_and_ordered(s: &Store) {
    assert_eq!(s.max_finding_id().await.unwrap(), 0);
    assert!(s.findings_after(0, 10).await.unwrap().is_empty());
    assert_eq!(s.insert_findings("edge-FCY", &[]).await.unwrap(), 0);
    let item = |seq: i64, n: i64| (seq, "FCY".to_owned(), payload(n));
    assert_eq!(
        s.insert_findings("edge-FCY", &[item(1, 1), item(2, 2)])
            .await
            .unwrap(),
        2
    );
    // Forwarded again after a crash, with one new item: stored once.
    assert_eq!(
        s.insert_findings("edge-FCY", &[item(2, 2), item(3, 3), item(3, 3)])
            .await
            .unwrap(),
        1
    );
    // The same sequence number from another origin is another finding.
    assert_eq!(
        s.insert_findings("edge-XYZ", &[(1, "XYZ".to_owned(), payload(4))])
            .await
            .unwrap(),
        1
    );
    let all = s.findings_after(0, 100).await.unwrap();
    let payloads: Vec<&str> = all.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(
        payloads,
        [payload(1), payload(2), payload(3), payload(4)]
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "ascending ids");
    assert_eq!(s.max_finding_id().await.unwrap(), all[3].0);
    // Paging: after an id, at most `limit`.
    let page = s.findings_after(all[1].0, 1).await.unwrap();
    assert_eq!(page, vec![all[2].clone()]);
    assert!(s.findings_after(all[3].0, 10).await.unwrap().is_empty());
    // A batch larger than one statement's chunk: all or nothing, in order.
    let big: Vec<_> = (100..550).map(|i| item(i, i)).collect();
    assert_eq!(s.insert_findings("edge-FCY", &big).await.unwrap(), 450);
    assert_eq!(s.insert_findings("edge-FCY", &big).await.unwrap(), 0);
    let rest = s.findings_after(all[3].0, 1000).await.unwrap();
    assert_eq!(rest.len(), 450);
    assert_eq!(rest[0].1, payload(100));
    assert_eq!(rest[449].1, payload(549));
}

async fn outbox_round_trip(s: &Store) {
    assert_eq!(s.outbox_cursor("findings").await.unwrap(), 0);
    assert!(s.outbox_findings_after(0, 10).await.unwrap().is_empty());
    let mut seqs = Vec::new();
    for n in 1..=3 {
        seqs.push(s.outbox_push_finding(&payload(n)).await.unwrap());
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let all = s.outbox_findings_after(0, 10).await.unwrap();
    assert_eq!(
        all,
        vec![
            (seqs[0], payload(1)),
            (seqs[1], payload(2)),
            (seqs[2], payload(3))
        ]
    );
    assert_eq!(
        s.outbox_findings_after(seqs[0], 1).await.unwrap(),
        vec![(seqs[1], payload(2))]
    );
    // Cursors: per name, upserted.
    s.set_outbox_cursor("findings", seqs[1]).await.unwrap();
    assert_eq!(s.outbox_cursor("findings").await.unwrap(), seqs[1]);
    s.set_outbox_cursor("findings", seqs[2]).await.unwrap();
    assert_eq!(s.outbox_cursor("findings").await.unwrap(), seqs[2]);
    assert_eq!(s.outbox_cursor("events").await.unwrap(), 0);
    let from = s.outbox_cursor("findings").await.unwrap();
    assert!(s.outbox_findings_after(from, 10).await.unwrap().is_empty());
    // Local events, as the forwarder reads them: raw payload and estate.
    let evs = [
        access("o-1", ts(8, 0, 0), "C1001"),
        access("o-2", ts(8, 0, 1), "C1002"),
    ];
    s.insert_events(&evs).await.unwrap();
    let rows = s.local_events_after(0, 10).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows[0].0 < rows[1].0);
    for ((_, p, estate), ev) in rows.iter().zip(&evs) {
        assert_eq!(estate, "FCY");
        let back: Event = serde_json::from_str(p).unwrap();
        assert_eq!(&back, ev);
    }
    s.set_outbox_cursor("events", rows[0].0).await.unwrap();
    let from = s.outbox_cursor("events").await.unwrap();
    let rest = s.local_events_after(from, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].0, rows[1].0);
}

async fn attach_to_alert_never_undoes_a_decision(s: &Store) {
    let a = s
        .insert_alert(&alert(
            AlertCode::CredentialMisuse,
            Subject::Credential("C1001".into()),
            Some("1"),
        ))
        .await
        .unwrap();
    // While active: evidence, severity, time and place are written...
    let mut found = a.clone();
    found.evidence.push(Evidence::new(ts(8, 5, 0), "sighting"));
    found.severity = Severity::Critical;
    found.updated_at = ts(8, 5, 0);
    found.unit = Some("101".into());
    // ... but never status, outcome or reason.
    found.status = AlertStatus::Resolved;
    found.outcome = Some(Outcome::FalseAlarm);
    found.reason = Some("analyzer".into());
    assert!(s.attach_to_alert(&found).await.unwrap());
    let got = s.get_alert(a.id, &Scope::all()).await.unwrap().unwrap();
    assert_eq!(got.evidence.len(), 2);
    assert_eq!(got.severity, Severity::Critical);
    assert_eq!(got.updated_at, ts(8, 5, 0));
    assert_eq!(got.unit.as_ref().map(|u| u.0.as_str()), Some("101"));
    assert_eq!(got.status, AlertStatus::Open);
    assert_eq!((got.outcome, got.reason.as_deref()), (None, None));
    // A person dismisses it; a late finding cannot touch it any more.
    assert!(s
        .transition_alert(
            a.id,
            AlertStatus::Open,
            AlertStatus::Dismissed,
            Some("relative with the tenant's card"),
            None,
            ts(8, 6, 0),
        )
        .await
        .unwrap());
    let mut late = got.clone();
    late.evidence.push(Evidence::new(ts(8, 7, 0), "access"));
    late.updated_at = ts(8, 7, 0);
    assert!(!s.attach_to_alert(&late).await.unwrap());
    let after = s.get_alert(a.id, &Scope::all()).await.unwrap().unwrap();
    assert_eq!(after.status, AlertStatus::Dismissed);
    assert_eq!(
        after.reason.as_deref(),
        Some("relative with the tenant's card")
    );
    assert_eq!(after.evidence.len(), 2);
    assert_eq!(after.updated_at, ts(8, 6, 0));
    // Unknown alert: no row, no error.
    late.id = a.id + 1000;
    assert!(!s.attach_to_alert(&late).await.unwrap());
}

async fn transition_alert_is_compare_and_set(s: &Store) {
    let a = s
        .insert_alert(&alert(
            AlertCode::Tailgating,
            Subject::Unit("FCY/1/101".into()),
            Some("1"),
        ))
        .await
        .unwrap();
    let v0 = s.alerts_version().await.unwrap();
    assert!(s
        .transition_alert(
            a.id,
            AlertStatus::Open,
            AlertStatus::Acknowledged,
            Some("seen"),
            None,
            ts(9, 0, 0),
        )
        .await
        .unwrap());
    assert_ne!(s.alerts_version().await.unwrap(), v0, "the change is seen");
    // From a stale status: nothing changes.
    assert!(!s
        .transition_alert(
            a.id,
            AlertStatus::Open,
            AlertStatus::Dismissed,
            Some("stale"),
            None,
            ts(9, 1, 0),
        )
        .await
        .unwrap());
    let got = s.get_alert(a.id, &Scope::all()).await.unwrap().unwrap();
    assert_eq!(got.status, AlertStatus::Acknowledged);
    assert_eq!(got.reason.as_deref(), Some("seen"));
    assert_eq!(got.updated_at, ts(9, 0, 0));
    // Outcome given, reason not: the stored reason stays.
    assert!(s
        .transition_alert(
            a.id,
            AlertStatus::Acknowledged,
            AlertStatus::Resolved,
            None,
            Some(Outcome::Confirmed),
            ts(9, 2, 0),
        )
        .await
        .unwrap());
    let got = s.get_alert(a.id, &Scope::all()).await.unwrap().unwrap();
    assert_eq!(got.status, AlertStatus::Resolved);
    assert_eq!(got.outcome, Some(Outcome::Confirmed));
    assert_eq!(got.reason.as_deref(), Some("seen"));
    assert_eq!(got.updated_at, ts(9, 2, 0));
    // Unknown alert.
    assert!(!s
        .transition_alert(
            a.id + 1000,
            AlertStatus::Open,
            AlertStatus::Acknowledged,
            None,
            None,
            ts(9, 3, 0),
        )
        .await
        .unwrap());
}

async fn concurrent_transitions_have_one_winner(s: &Store) {
    for i in 0..10 {
        let a = s
            .insert_alert(&alert(
                AlertCode::Tailgating,
                Subject::Unit(format!("FCY/1/{i}")),
                Some("1"),
            ))
            .await
            .unwrap();
        let go = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let run = |to: AlertStatus, reason: &'static str| {
            let (s, go) = (s.clone(), go.clone());
            tokio::spawn(async move {
                go.wait().await;
                s.transition_alert(
                    a.id,
                    AlertStatus::Open,
                    to,
                    Some(reason),
                    None,
                    ts(10, 0, 0),
                )
                .await
                .unwrap()
            })
        };
        let d = run(AlertStatus::Dispatched, "dispatch");
        let x = run(AlertStatus::Dismissed, "dismiss");
        let (d, x) = (d.await.unwrap(), x.await.unwrap());
        assert!(d ^ x, "exactly one wins (dispatch {d}, dismiss {x})");
        let got = s.get_alert(a.id, &Scope::all()).await.unwrap().unwrap();
        let (status, reason) = if d {
            (AlertStatus::Dispatched, "dispatch")
        } else {
            (AlertStatus::Dismissed, "dismiss")
        };
        assert_eq!(got.status, status);
        assert_eq!(got.reason.as_deref(), Some(reason), "the winner's reason");
    }
}

/// The outbox tables as anju-ingest's `ensure_schema` created them before
/// migration 0007, with alert changes up to seq 5 of which 2 were forwarded.
const LEGACY_SQLITE: &str = "\
    CREATE TABLE edge_alert_log (\
    seq INTEGER PRIMARY KEY AUTOINCREMENT, local_id BIGINT NOT NULL, payload TEXT NOT NULL);\
    CREATE TABLE edge_forward_cursor (name TEXT PRIMARY KEY, last_id BIGINT NOT NULL);\
    CREATE TABLE edge_alert_map (local_id BIGINT PRIMARY KEY, central_id BIGINT NOT NULL);";

fn legacy_rows(cursor: Option<i64>) -> Vec<String> {
    let mut sql: Vec<String> = (1..=5)
        .map(|n| {
            format!(
                "INSERT INTO edge_alert_log (local_id, payload) VALUES ({}, '{}')",
                10 + n,
                payload(n)
            )
        })
        .collect();
    if let Some(c) = cursor {
        sql.push(format!(
            "INSERT INTO edge_forward_cursor (name, last_id) VALUES ('alerts', {c})"
        ));
    }
    sql.push("INSERT INTO edge_forward_cursor (name, last_id) VALUES ('events', 42)".into());
    sql.push("INSERT INTO edge_alert_map (local_id, central_id) VALUES (11, 7)".into());
    sql
}

/// Checks what migration 0007 made of [`legacy_rows`]: the unforwarded
/// alert changes are findings, in order, and the cursor is past them; the
/// rest is kept.
async fn check_migrated_legacy(s: &Store, cursor: Option<i64>) {
    let from = cursor.unwrap_or(0);
    let expected: Vec<String> = (from + 1..=5).map(payload).collect();
    let got: Vec<String> = s
        .outbox_findings_after(0, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    assert_eq!(got, expected);
    assert_eq!(s.outbox_cursor("alerts").await.unwrap(), 5);
    assert_eq!(s.outbox_cursor("events").await.unwrap(), 42);
    let mapped: i64 =
        sqlx::query_scalar("SELECT central_id FROM edge_alert_map WHERE local_id = 11")
            .fetch_one(s.pool())
            .await
            .unwrap();
    assert_eq!(mapped, 7);
    // New findings go after the copied ones.
    let seq = s.outbox_push_finding(&payload(6)).await.unwrap();
    let all = s.outbox_findings_after(0, 100).await.unwrap();
    assert_eq!(all.last(), Some(&(seq, payload(6))));
    assert_eq!(all.len(), expected.len() + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_copies_unforwarded_alert_log_sqlite() {
    for cursor in [Some(2), None, Some(5)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("edge.db");
        {
            let c = rusqlite::Connection::open(&path).unwrap();
            c.execute_batch(LEGACY_SQLITE).unwrap();
            for sql in legacy_rows(cursor) {
                c.execute(&sql, []).unwrap();
            }
        }
        let url = format!("sqlite://{}", path.display());
        let s = Store::connect(&url).await.unwrap();
        check_migrated_legacy(&s, cursor).await;
        s.close().await;
        // Opening it again copies nothing twice.
        let s = Store::connect(&url).await.unwrap();
        assert_eq!(
            s.outbox_findings_after(0, 100).await.unwrap().len(),
            (5 - cursor.unwrap_or(0)) as usize + 1
        );
        s.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_copies_unforwarded_alert_log_postgres() {
    use anju_store::testutil::{pg_admin_url, replace_db};
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let admin = pg_admin_url();
    let name = format!(
        "anju_t_legacy_{}_{}",
        std::process::id(),
        Utc::now().timestamp_micros() % 1_000_000_000
    );
    let mut conn = sqlx::AnyConnection::connect(&admin)
        .await
        .expect("PostgreSQL at ANJU_TEST_PG_URL must be up");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let url = replace_db(&admin, &name);
    {
        let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
        let legacy =
            LEGACY_SQLITE.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY");
        for sql in legacy.split(';').filter(|q| !q.trim().is_empty()) {
            sqlx::query(sql).execute(&mut c).await.unwrap();
        }
        for sql in legacy_rows(Some(3)) {
            sqlx::query(&sql).execute(&mut c).await.unwrap();
        }
        c.close().await.unwrap();
    }
    let s = Store::connect(&url).await.unwrap();
    check_migrated_legacy(&s, Some(3)).await;
    s.close().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut conn)
        .await
        .unwrap();
}

/// SQLite answering "database is locked" is worth a retry; a conflict or a
/// missing row is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_sqlite_is_retryable() {
    use sqlx::Connection as _;
    let t = TestStore::new(Backend::Sqlite).await.unwrap();
    let path = t.url.trim_start_matches("sqlite://").to_owned();
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let mut c = sqlx::AnyConnection::connect(&t.url).await.unwrap();
    sqlx::query("PRAGMA busy_timeout = 0")
        .execute(&mut c)
        .await
        .unwrap();
    let e = sqlx::query("INSERT INTO edge_findings (payload) VALUES ('x')")
        .execute(&mut c)
        .await
        .unwrap_err();
    // Told by SQLite's result code (SQLITE_BUSY), not only by the text.
    match &e {
        sqlx::Error::Database(d) => {
            assert!(d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some());
            assert_eq!(d.code().as_deref(), Some("5"), "{d}");
        }
        other => panic!("not a database error: {other}"),
    }
    let e = StoreError::Db(e);
    assert!(e.is_retryable(), "{e}");
    assert!(!e.is_transient(), "busy is not a connection problem");
    holder.execute_batch("ROLLBACK").unwrap();
    c.close().await.unwrap();
    assert!(!StoreError::NotFound.is_retryable());
    assert!(!StoreError::Conflict("x".into()).is_retryable());
    assert!(StoreError::Db(sqlx::Error::PoolTimedOut).is_retryable());
    t.cleanup().await;
}
