//! The demo's seeded history: nine weeks of the example estate's life
//! before the demo starts, so that the occupancy rules — which need days
//! and weeks (vacancy, an elderly tenant not seen, a long-term stranger,
//! sublet suspicion) — have something true to say when the console opens.
//!
//! What happened, counted back from the demo's start:
//! - the households of 1-101 and 1-201 go out through the north gate every
//!   morning and come back in the evening, their faces recognised by the
//!   gate's and building 1's door cameras;
//! - 张秀英 (P004, 1944, lives alone in 1-102) goes out every morning —
//!   until 60 hours ago;
//! - 赵磊 (P007, 2-101) was last seen 64 days ago;
//! - 周杰 (P009, 2-102) was last seen 40 days ago; since then his card
//!   C1008 was used at the north gate on four evenings, each time by another
//!   face the gate camera did not know (a unit let to a group);
//! - a stranger came in through building 1's door late at night and early
//!   in the morning on eight of the last ten days (his face on the door
//!   camera's snapshots when the demo has its photos).
//!
//! The raw events are judged by an edge engine (fusion: passages and
//! findings) exactly as a live edge judges them, and stored as the edge's
//! forwarder stores them. No alert is written here: the centre's analyzer
//! warms up from this history at start and opens what its rules find.
//! The history's households all had their faces enrolled (it has them
//! recognised), so its edge engine judges every card by faces; the live
//! edge judges only households its gallery can recognise.
//! Device health is not simulated (no heartbeats in the history), so the
//! edge engine's device findings about it are left out.

use anju_core::{AlertCode, Direction, Event, Registry, Timestamp, Tz};
use anju_rules::engine::Role;
use anju_rules::sim::ev;
use anju_rules::{Engine, Finding, RulesConfig};
use anju_store::{Snapshot, Store};
use chrono::{Duration, NaiveTime, TimeZone};
use std::sync::Arc;

/// Days of history before the demo's start (vacancy warns after 60).
pub const DAYS: i64 = 66;
const ESTATE: &str = "FCY";
/// Everyone's comings and goings that the history needs from the site.
const NEEDS: [&str; 7] = ["P001", "P002", "P004", "P005", "P006", "P007", "P009"];
/// The long-term stranger at building 1, and the four who used 周杰's card.
pub const LODGER: &str = "s-FCY-h1";
pub const CARD_USERS: [&str; 4] = ["s-FCY-h2", "s-FCY-h3", "s-FCY-h4", "s-FCY-h5"];

/// The history: raw events and passages (for the event table), the edge's
/// findings (for the central inbox) and the door camera's snapshots.
pub struct History {
    pub events: Vec<Event>,
    pub findings: Vec<Finding>,
    pub snapshots: Vec<Snapshot>,
}

/// One resident's day: out through the gate in the morning, back in the
/// evening past the gate camera and (building 1) the door camera.
struct Resident {
    person: &'static str,
    card: &'static str,
    building: &'static str,
    out: (u32, u32),
    back: (u32, u32),
    /// Active only between these ages (hours before the start).
    active_until_h: i64,
    active_from_h: i64,
}

const RESIDENTS: [Resident; 7] = [
    Resident {
        person: "P001",
        card: "C1001",
        building: "1",
        out: (7, 20),
        back: (18, 5),
        active_until_h: 0,
        active_from_h: DAYS * 24,
    },
    Resident {
        person: "P002",
        card: "C1002",
        building: "1",
        out: (8, 10),
        back: (17, 35),
        active_until_h: 0,
        active_from_h: DAYS * 24,
    },
    Resident {
        person: "P005",
        card: "C1004",
        building: "1",
        out: (7, 50),
        back: (19, 15),
        active_until_h: 0,
        active_from_h: DAYS * 24,
    },
    Resident {
        person: "P006",
        card: "C1005",
        building: "1",
        out: (8, 40),
        back: (18, 45),
        active_until_h: 0,
        active_from_h: DAYS * 24,
    },
    Resident {
        person: "P004",
        card: "C1003",
        building: "1",
        out: (9, 0),
        back: (10, 30),
        active_until_h: 60,
        active_from_h: DAYS * 24,
    },
    Resident {
        person: "P007",
        card: "C1006",
        building: "2",
        out: (7, 40),
        back: (18, 20),
        active_until_h: 64 * 24,
        active_from_h: DAYS * 24,
    },
    Resident {
        person: "P009",
        card: "C1008",
        building: "2",
        out: (8, 25),
        back: (19, 0),
        active_until_h: 40 * 24,
        active_from_h: DAYS * 24,
    },
];

/// The evenings (days before the start) 周杰's card was used by a stranger.
const CARD_MISUSE_DAYS: [i64; 4] = [21, 16, 11, 6];
/// The nights (days before the start) the stranger slept in building 1.
const LODGER_NIGHTS: [i64; 8] = [10, 9, 7, 6, 5, 3, 2, 1];

/// Builds the history ending just before `now`; `photo` is the face the
/// door camera's snapshots of the lodger show.
///
/// # Errors
/// When the registry is not the example site's (a person, card or device
/// the history needs is missing).
pub fn build(
    registry: Arc<Registry>,
    tz: Tz,
    rules: RulesConfig,
    now: Timestamp,
    photo: Option<&[u8]>,
) -> anyhow::Result<History> {
    check_site(&registry)?;
    let mut raw: Vec<Event> = Vec::new();
    let mut snapshots = Vec::new();
    let mut rng = anju_rules::sim::Lcg(20_261_206);
    let mut n = 0u64;
    let mut id = |what: &str| {
        n += 1;
        format!("hist-{what}-{n}")
    };
    let before = |t: Timestamp, ago_h: i64| now - Duration::hours(ago_h) > t;
    for ago in (0..=DAYS).rev() {
        for r in &RESIDENTS {
            let j = i64::from(rng.below(20));
            // Out through the gate (its camera faces in: no face).
            if let Some(t) = local(tz, now, ago, r.out, j) {
                if before(t, r.active_until_h) && !before(t, r.active_from_h) {
                    raw.push(access(t, "gr-n1", r.card, Direction::Out, &id("out")));
                }
            }
            // Back in: the gate camera sees the face, then the building door.
            if let Some(t) = local(tz, now, ago, r.back, j) {
                if before(t, r.active_until_h) && !before(t, r.active_from_h) {
                    raw.push(person(
                        t - Duration::seconds(1),
                        "cam-n1",
                        r.person,
                        &id("face"),
                    ));
                    raw.push(access(t, "gr-n1", r.card, Direction::In, &id("in")));
                    let door = t + Duration::minutes(3);
                    if r.building == "1" {
                        raw.push(person(
                            door - Duration::seconds(1),
                            "cam-b1",
                            r.person,
                            &id("face"),
                        ));
                        raw.push(access(door, "gr-b1", r.card, Direction::In, &id("in")));
                    } else {
                        raw.push(access(door, "gr-b2", r.card, Direction::In, &id("in")));
                    }
                }
            }
        }
        if let Some(k) = CARD_MISUSE_DAYS.iter().position(|d| *d == ago) {
            if let Some(t) = local(tz, now, ago, (19, 40), i64::from(rng.below(15))) {
                raw.push(stranger(
                    t - Duration::seconds(1),
                    "cam-n1",
                    CARD_USERS[k],
                    &id("face"),
                    None,
                ));
                raw.push(access(t, "gr-n1", "C1008", Direction::In, &id("in")));
            }
        }
        if LODGER_NIGHTS.contains(&ago) {
            let j = i64::from(rng.below(25));
            // Late in the evening, and early the next morning.
            let times = [
                local(tz, now, ago, (22, 10), j),
                local(tz, now, ago - 1, (6, 5), j),
            ];
            for t in times.into_iter().flatten().filter(|t| before(*t, 0)) {
                // Snapshots only for the days the door camera's retention
                // (7 days by default) still keeps.
                let snap = match photo {
                    Some(p) if now - t < Duration::days(6) => {
                        let key = format!("{ESTATE}.cam-b1.{}.h1", t.timestamp_millis());
                        snapshots.push(Snapshot {
                            key: key.clone(),
                            estate: ESTATE.into(),
                            camera: "cam-b1".into(),
                            taken_at: t,
                            jpeg: p.to_vec(),
                        });
                        Some(anju_store::snapshot_url(&key))
                    }
                    _ => None,
                };
                raw.push(stranger(t, "cam-b1", LODGER, &id("face"), snap));
            }
        }
    }
    raw.sort_by_key(Event::ts);
    for e in &mut raw {
        e.set_estate(ESTATE.into());
    }

    // Judged at the edge, as the live worker judges them.
    let mut edge = Engine::new(registry, tz, rules).with_role(Role::Edge);
    let mut events = Vec::with_capacity(raw.len() * 2);
    let mut findings = Vec::new();
    for ev in raw {
        edge.ingest(&ev);
        events.push(ev);
        events.extend(edge.take_passages());
        findings.extend(edge.take_findings());
    }
    let end = now - Duration::minutes(1);
    edge.advance_to(end);
    events.extend(edge.take_passages());
    findings.extend(edge.take_findings());
    for e in &mut events {
        e.set_estate(ESTATE.into());
    }
    findings.retain(|f| !is_device_health(f.code));
    events.sort_by_key(Event::ts);
    Ok(History {
        events,
        findings,
        snapshots,
    })
}

/// Stores the history as the edge's forwarder would (events, snapshots,
/// then findings under the origin `history`).
///
/// # Errors
/// Store errors.
pub async fn seed(store: &Store, h: &History) -> anyhow::Result<()> {
    store.insert_events(&h.events).await?;
    store.insert_snapshots(&h.snapshots).await?;
    let items: Vec<(i64, String, String)> = h
        .findings
        .iter()
        .enumerate()
        .map(|(i, f)| {
            Ok((
                i64::try_from(i)? + 1,
                f.estate.as_str().to_owned(),
                serde_json::to_string(f)?,
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    store.insert_findings("history", &items).await?;
    Ok(())
}

fn is_device_health(c: AlertCode) -> bool {
    c == AlertCode::DeviceOffline
}

fn check_site(reg: &Registry) -> anyhow::Result<()> {
    for p in NEEDS {
        anyhow::ensure!(
            reg.persons.iter().any(|x| x.id.as_str() == p),
            "person {p} of the example site is missing"
        );
    }
    for d in ["gr-n1", "gr-b1", "gr-b2", "cam-n1", "cam-b1"] {
        anyhow::ensure!(
            reg.devices.iter().any(|x| x.id.as_str() == d),
            "device {d} of the example site is missing"
        );
    }
    for r in &RESIDENTS {
        anyhow::ensure!(
            reg.credentials
                .iter()
                .any(|c| c.id.as_str() == r.card && c.person.as_str() == r.person),
            "card {} of {} is missing",
            r.card,
            r.person
        );
    }
    Ok(())
}

/// `hh:mm` plus `jitter` minutes, local time, `ago` days before `now`'s
/// local date.
fn local(tz: Tz, now: Timestamp, ago: i64, (hh, mm): (u32, u32), jitter: i64) -> Option<Timestamp> {
    let day = now
        .with_timezone(&tz)
        .date_naive()
        .checked_sub_signed(Duration::days(ago))?;
    let t = day.and_time(NaiveTime::from_hms_opt(hh, mm, 0)?);
    let t = tz.from_local_datetime(&t).earliest()?.to_utc();
    t.checked_add_signed(Duration::minutes(jitter))
}

fn access(ts: Timestamp, device: &str, card: &str, direction: Direction, id: &str) -> Event {
    ev::access(ts, device, card, true, direction, id)
}

/// A decided face track as the edge's camera pipeline stores it: the
/// replay shape of `anju_rules::sim::ev` with its event id and snapshot.
fn sighting(mut e: Event, id: &str, snapshot: Option<String>) -> Event {
    if let Event::Sighting { body, .. } = &mut e {
        body.event_id = Some(id.into());
        body.snapshot = snapshot;
    }
    e
}

fn person(ts: Timestamp, camera: &str, person: &str, id: &str) -> Event {
    sighting(ev::person(ts, camera, person), id, None)
}

fn stranger(ts: Timestamp, camera: &str, who: &str, id: &str, snapshot: Option<String>) -> Event {
    sighting(ev::stranger(ts, camera, who), id, snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// The centre's analyzer sees, from this history, exactly the story it
    /// tells: one alert per occupancy family (and the misuse behind the
    /// sublet) and nothing false by construction.
    #[test]
    fn the_history_tells_its_story_and_nothing_else() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let site = anju_site::load(&root.join("config/example/site.toml")).expect("example site");
        let rules = crate::cmd::rules_config(&site).expect("rules");
        let reg = Arc::new(site.registry.clone());
        let tz = site.timezone;
        // Any start time: at night, in the morning, in the evening.
        for hour in [0u32, 9, 21] {
            let now = tz
                .with_ymd_and_hms(2026, 12, 6, hour, 30, 0)
                .earliest()
                .expect("time")
                .to_utc();
            let h = build(reg.clone(), tz, rules.clone(), now, Some(b"jpeg")).expect("history");
            assert!(h.events.iter().all(|e| e.ts() < now));
            assert!(!h.snapshots.is_empty());
            let mut centre = Engine::new(reg.clone(), tz, rules.clone()).with_role(Role::Centre);
            let mut alerts = Vec::new();
            for e in &h.events {
                alerts.extend(centre.ingest_at(e, now));
            }
            for f in &h.findings {
                alerts.extend(centre.accept(f.clone()));
            }
            alerts.extend(centre.advance_to(now));
            let got: BTreeSet<(String, String)> = centre
                .alerts()
                .iter()
                .map(|a| (a.code.as_str().to_owned(), a.subject.key()))
                .collect();
            let want: BTreeSet<(String, String)> = [
                ("credential_misuse", "credential:C1008"),
                ("elderly_no_activity", "person:P004"),
                ("overcrowding_suspected", "unit:FCY/2/102"),
                ("sublet_suspected", "unit:FCY/2/102"),
                ("unregistered_long_term_occupant", "stranger:s-FCY-h1"),
                ("vacancy_suspected", "unit:FCY/2/101"),
            ]
            .iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect();
            assert_eq!(got, want, "started at {hour}:30");
            // The long-term stranger's alert shows his face.
            let lodger = centre
                .alerts()
                .iter()
                .find(|a| a.code == AlertCode::UnregisteredLongTermOccupant)
                .expect("lodger");
            assert!(lodger.evidence.iter().any(|e| e.snapshot.is_some()));
        }
    }
}
