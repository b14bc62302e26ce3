//! A busy estate in replay form, with its ground truth, to keep the
//! precision of the fusion rules measurable (`anju sim gate`, and the
//! busy-gate test): residents coming home by the busload seconds apart at
//! four building doors, each with their own card, families walking in on
//! one card, 5 % of faces missed by the cameras, couriers on visitor passes
//! every day (recurring faces that never stay the night) — and a few
//! planted cases: a stranger using a tenant's card on several evenings
//! (`credential_misuse`), a stranger walking in behind a resident
//! (`tailgating`), and a unit whose card five different strangers use
//! (`credential_misuse` and `overcrowding_suspected`).

use crate::sim::{ev, local, Lcg, SiteBuilder};
use anju_core::{
    AccessEvent, AccessResult, CredentialKind, CredentialRef, Direction, Event, Registry,
    Timestamp, Tz,
};
use chrono::Duration;
use std::collections::BTreeSet;

/// What was planted: every alert of these rules outside it is false.
#[derive(Clone, Debug, Default)]
pub struct Truth {
    /// Credentials used by non-occupants (`credential_misuse` subjects).
    pub misused_credentials: BTreeSet<String>,
    /// Strangers that walked in behind someone (`tailgating` subjects).
    pub tailgaters: BTreeSet<String>,
    /// Units used by more people than live there (`overcrowding_suspected`).
    pub crowded_units: BTreeSet<String>,
}

/// The generated estate.
#[derive(Debug)]
pub struct BusyGate {
    pub tz: Tz,
    pub registry: Registry,
    /// In time order.
    pub events: Vec<Event>,
    pub truth: Truth,
    /// Passages generated (grants), for the report.
    pub passages: usize,
}

/// Settings of [`busy_gate`].
#[derive(Clone, Copy, Debug)]
pub struct GateSpec {
    pub units: usize,
    pub days: i64,
    /// Share of faces the cameras miss, per mille.
    pub missed_per_mille: u32,
    pub couriers_per_day: u32,
    pub seed: u64,
}

impl Default for GateSpec {
    fn default() -> Self {
        Self {
            units: 120,
            days: 14,
            missed_per_mille: 50,
            couriers_per_day: 24,
            seed: 7,
        }
    }
}

struct Household {
    building: usize,
    unit: String,
    persons: Vec<String>,
}

/// Generates the estate of `spec`: estate `BG`, buildings 1–4 with a door
/// each (`cam-d{b}` faces in, reader `gr-d{b}`), from 2026-03-02
/// (Asia/Shanghai).
pub fn busy_gate(spec: GateSpec) -> BusyGate {
    let tz: Tz = chrono_tz::Asia::Shanghai;
    let mut rng = Lcg(spec.seed.wrapping_mul(2_654_435_761).wrapping_add(1));
    let mut s = SiteBuilder::new("BG");
    for b in 1..=4 {
        s.building(&b.to_string());
        s.entrance(&format!("d{b}"), Some(&b.to_string()));
    }
    let mut homes: Vec<Household> = Vec::new();
    for i in 0..spec.units.max(3) {
        let building = i % 4 + 1;
        let unit = format!("{}{:02}", 1 + (i / 4) / 10, (i / 4) % 10 + 1);
        let size = [1, 2, 2, 3, 3, 4][rng.below(6) as usize];
        let persons: Vec<String> = (0..size)
            .map(|k| format!("P{building}-{unit}{}", (b'a' + k as u8) as char))
            .collect();
        let alone = size == 1 && rng.below(4) == 0;
        let list: Vec<(&str, bool)> = persons.iter().map(|p| (p.as_str(), alone)).collect();
        s.unit(&building.to_string(), &unit, &list);
        homes.push(Household {
            building,
            unit,
            persons,
        });
    }
    // Planted: the misused, the tailgated and the crowded unit.
    let misused = 5usize;
    let tailgated = 10usize;
    let crowded = (0..homes.len())
        .find(|i| homes[*i].persons.len() == 2 && *i > 12)
        .unwrap_or(15);
    let mut truth = Truth::default();
    let day0 = local(tz, 2026, 3, 2, 0, 0, 0);
    let at = |d: i64, secs: i64| day0 + Duration::days(d) + Duration::seconds(secs);
    let mut evs: Vec<Event> = Vec::new();
    let mut n = 0u64;
    let mut passages = 0usize;
    let id = |n: &mut u64| {
        *n += 1;
        format!("e{n}")
    };
    let jitter = |rng: &mut Lcg, lo_ms: i64, hi_ms: i64| -> Duration {
        Duration::milliseconds(lo_ms + i64::from(rng.below((hi_ms - lo_ms).max(1) as u32)))
    };
    let miss = spec.missed_per_mille;
    // One inward passage: a swipe of `card` at `door`, then the faces.
    let enter = |evs: &mut Vec<Event>,
                 rng: &mut Lcg,
                 n: &mut u64,
                 ts: Timestamp,
                 b: usize,
                 card: &str,
                 faces: &[&str],
                 strangers: &[&str]| {
        evs.push(ev::access(
            ts,
            &format!("gr-d{b}"),
            card,
            true,
            Direction::In,
            &id(n),
        ));
        for p in faces {
            if rng.below(1000) >= miss {
                let t = ts + jitter(rng, -2000, 2500);
                evs.push(ev::person(t, &format!("cam-d{b}"), p));
            }
        }
        for x in strangers {
            let t = ts + jitter(rng, -1000, 2500);
            evs.push(ev::stranger(t, &format!("cam-d{b}"), x));
        }
    };
    for d in 0..spec.days {
        // Morning: out by the back door (no faces), some swipes out.
        for h in &homes {
            for p in &h.persons {
                if rng.below(3) == 0 {
                    let t = at(d, 7 * 3600 + i64::from(rng.below(7200)));
                    evs.push(ev::access(
                        t,
                        &format!("gr-d{}", h.building),
                        &format!("C-{p}"),
                        true,
                        Direction::Out,
                        &id(&mut n),
                    ));
                }
            }
        }
        // Evening: home by the bus, every 15 minutes from 17:00; families
        // together on one card (30 %), or each on their own card.
        for (hi, h) in homes.iter().enumerate() {
            if hi == crowded && d % 2 == 0 {
                // The crowded unit's own family is out of town half the time.
                continue;
            }
            let together = h.persons.len() > 1 && rng.below(10) < 3;
            let bus = i64::from(rng.below(13)) * 900;
            if together {
                let t = at(d, 17 * 3600 + bus + i64::from(rng.below(40)));
                let faces: Vec<&str> = h.persons.iter().map(String::as_str).collect();
                let card = format!("C-{}", h.persons[0]);
                let tail = if hi == tailgated && d == 5 {
                    truth.tailgaters.insert("tail-1".into());
                    vec!["tail-1"]
                } else {
                    Vec::new()
                };
                enter(
                    &mut evs, &mut rng, &mut n, t, h.building, &card, &faces, &tail,
                );
                passages += 1;
            } else {
                for p in &h.persons {
                    let t = at(d, 17 * 3600 + bus + i64::from(rng.below(40)));
                    let tail = if hi == tailgated && d == 5 && p == &h.persons[0] {
                        truth.tailgaters.insert("tail-1".into());
                        vec!["tail-1"]
                    } else {
                        Vec::new()
                    };
                    enter(
                        &mut evs,
                        &mut rng,
                        &mut n,
                        t,
                        h.building,
                        &format!("C-{p}"),
                        &[p.as_str()],
                        &tail,
                    );
                    passages += 1;
                }
            }
        }
        // Couriers on visitor passes: six recurring faces, daytime and in
        // the evening rush, never overnight.
        for k in 0..spec.couriers_per_day {
            let b = rng.below(4) as usize + 1;
            let secs = if k % 3 == 0 {
                17 * 3600 + i64::from(rng.below(13)) * 900 + i64::from(rng.below(40))
            } else {
                10 * 3600 + i64::from(rng.below(6 * 3600))
            };
            let t = at(d, secs);
            let courier = format!("courier-{}", rng.below(6) + 1);
            evs.push(Event::Access {
                estate: None,
                device: format!("gr-d{b}").as_str().into(),
                body: AccessEvent {
                    event_id: id(&mut n).as_str().into(),
                    ts: t,
                    credential: CredentialRef {
                        kind: CredentialKind::Qr,
                        id: format!("visitor-{d}-{k}").as_str().into(),
                    },
                    result: AccessResult::Granted,
                    direction: Direction::In,
                    reason: None,
                },
            });
            passages += 1;
            let ft = t + jitter(&mut rng, -1000, 2500);
            evs.push(ev::stranger(ft, &format!("cam-d{b}"), &courier));
        }
        // Planted misuse: a stranger on the tenant's card, three evenings.
        if [3, 6, 9].contains(&d) {
            let h = &homes[misused];
            let card = format!("C-{}", h.persons[0]);
            truth.misused_credentials.insert(card.clone());
            let t = at(d, 20 * 3600 + 1800 + i64::from(rng.below(300)));
            enter(
                &mut evs,
                &mut rng,
                &mut n,
                t,
                h.building,
                &card,
                &[],
                &["sublet-1"],
            );
            passages += 1;
        }
        // Planted group renting: five strangers on one family's card.
        let crowd = [2, 4, 7, 10, 12];
        if let Some(k) = crowd.iter().position(|x| *x == d) {
            let h = &homes[crowded];
            let card = format!("C-{}", h.persons[0]);
            truth.misused_credentials.insert(card.clone());
            truth
                .crowded_units
                .insert(format!("BG/{}/{}", h.building, h.unit));
            let t = at(d, 21 * 3600 + i64::from(rng.below(600)));
            let who = format!("crowd-{}", k + 1);
            enter(
                &mut evs,
                &mut rng,
                &mut n,
                t,
                h.building,
                &card,
                &[],
                &[who.as_str()],
            );
            passages += 1;
        }
    }
    evs.sort_by_key(Event::ts);
    BusyGate {
        tz,
        registry: s.build(),
        events: evs,
        truth,
        passages,
    }
}
