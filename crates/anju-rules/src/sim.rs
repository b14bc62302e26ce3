//! Helpers to build registries and events in code: for tests, the scenario
//! generator and the benchmark. Not used by the engine itself.

use anju_core::registry::{
    Building, Credential, Device, DeviceKind, Entrance, EntranceKind, Estate, FacesDirection,
    Person, PersonRole, Unit, WatchEntry,
};
use anju_core::{
    AccessEvent, AccessResult, CredentialKind, CredentialRef, Direction, DoorEvent, DoorState,
    Event, QrScanEvent, Registry, Sighting, StatusEvent, Timestamp, Tz, UnitKey,
};
use chrono::{NaiveDate, TimeZone};

/// Local time in `tz` to UTC; panics on an impossible local time (test
/// helper only).
pub fn local(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Timestamp {
    #[allow(clippy::unwrap_used)]
    tz.with_ymd_and_hms(y, mo, d, h, mi, s)
        .earliest()
        .unwrap()
        .to_utc()
}

/// A valid GB 11643 ID number for birth year `year` and sequence `n`.
pub fn id_number(n: u64, year: i32) -> String {
    let prefix = format!("420607{:04}0101{:03}", year.clamp(1900, 2099), n % 1000);
    anju_core::gb11643_complete(&prefix[..17]).unwrap_or_default()
}

/// Builds a one-estate registry step by step.
#[derive(Debug)]
pub struct SiteBuilder {
    pub reg: Registry,
    estate: String,
    n: u64,
}

impl SiteBuilder {
    pub fn new(estate: &str) -> Self {
        let mut reg = Registry::default();
        reg.estates.push(Estate {
            code: estate.into(),
            name: format!("{estate} estate"),
            office: "office".into(),
        });
        Self {
            reg,
            estate: estate.to_owned(),
            n: 0,
        }
    }

    pub fn building(&mut self, code: &str) -> &mut Self {
        self.reg.buildings.push(Building {
            estate: self.estate.as_str().into(),
            code: code.into(),
            grid: Some("G1".into()),
        });
        self
    }

    /// An entrance with a face camera (faces `in`), a reader and a QR
    /// scanner, ids `cam-{code}`, `gr-{code}`, `qr-{code}`.
    pub fn entrance(&mut self, code: &str, building: Option<&str>) -> &mut Self {
        self.reg.entrances.push(Entrance {
            estate: self.estate.as_str().into(),
            code: code.into(),
            kind: if building.is_some() {
                EntranceKind::BuildingDoor
            } else {
                EntranceKind::EstateGate
            },
            building: building.map(Into::into),
        });
        for (prefix, kind) in [
            ("cam", DeviceKind::Camera),
            ("gr", DeviceKind::Reader),
            ("qr", DeviceKind::Scanner),
        ] {
            self.reg.devices.push(Device {
                estate: self.estate.as_str().into(),
                id: format!("{prefix}-{code}").into(),
                kind,
                entrance: code.into(),
                url: None,
                faces: (kind == DeviceKind::Camera).then_some(FacesDirection::In),
            });
        }
        self
    }

    /// A unit with persons `(person_id, lives_alone)`; each gets a card
    /// `C-{person_id}`. Leases start 2020-01-01.
    pub fn unit(&mut self, building: &str, unit: &str, persons: &[(&str, bool)]) -> &mut Self {
        let key = UnitKey::new(self.estate.as_str(), building, unit);
        self.reg.units.push(Unit {
            key: key.clone(),
            area_m2: Some(50.0),
        });
        for (i, (pid, alone)) in persons.iter().enumerate() {
            self.n += 1;
            self.reg.persons.push(Person {
                id: (*pid).into(),
                unit: key.clone(),
                household: format!("H-{building}-{unit}").into(),
                name: format!("Name {pid}"),
                role: if i == 0 {
                    PersonRole::Tenant
                } else {
                    PersonRole::Member
                },
                id_number: id_number(self.n, if *alone { 1945 } else { 1985 }),
                phone: format!("138{:08}", self.n),
                birth_year: Some(if *alone { 1945 } else { 1985 }),
                lives_alone: *alone,
                lease_start: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default(),
                lease_end: None,
            });
            self.reg.credentials.push(Credential {
                kind: CredentialKind::Card,
                id: format!("C-{pid}").into(),
                person: (*pid).into(),
                valid_from: None,
                valid_to: None,
                status: Default::default(),
            });
        }
        self
    }

    pub fn watch(&mut self, person: &str) -> &mut Self {
        self.reg.watchlist.push(WatchEntry {
            person: person.into(),
            name: format!("Name {person}"),
            reason: "test".into(),
            expires: None,
        });
        self
    }

    pub fn build(&self) -> Registry {
        self.reg.clone()
    }
}

/// Event constructors in the replay shapes.
pub mod ev {
    use super::*;

    pub fn access(
        ts: Timestamp,
        device: &str,
        card: &str,
        granted: bool,
        dir: Direction,
        id: &str,
    ) -> Event {
        Event::Access {
            estate: None,
            device: device.into(),
            body: AccessEvent {
                event_id: id.into(),
                ts,
                credential: CredentialRef {
                    kind: CredentialKind::Card,
                    id: card.into(),
                },
                result: if granted {
                    AccessResult::Granted
                } else {
                    AccessResult::Denied
                },
                direction: dir,
                reason: None,
            },
        }
    }

    pub fn person(ts: Timestamp, camera: &str, person: &str) -> Event {
        Event::Sighting {
            estate: None,
            body: Sighting {
                event_id: None,
                ts,
                camera: camera.into(),
                person: Some(person.into()),
                stranger: None,
                score: Some(0.9),
                direction: Some(Direction::In),
                snapshot: None,
            },
        }
    }

    pub fn stranger(ts: Timestamp, camera: &str, stranger: &str) -> Event {
        Event::Sighting {
            estate: None,
            body: Sighting {
                event_id: None,
                ts,
                camera: camera.into(),
                person: None,
                stranger: Some(stranger.into()),
                score: None,
                direction: Some(Direction::In),
                snapshot: None,
            },
        }
    }

    pub fn door(ts: Timestamp, device: &str, state: DoorState, id: &str) -> Event {
        Event::Door {
            estate: None,
            device: device.into(),
            body: DoorEvent {
                event_id: id.into(),
                ts,
                state,
            },
        }
    }

    pub fn status(ts: Timestamp, device: &str, online: bool) -> Event {
        Event::Status {
            estate: None,
            device: device.into(),
            body: StatusEvent { ts, online },
        }
    }

    pub fn qr(ts: Timestamp, device: &str, code: &str, id: &str) -> Event {
        Event::QrScan {
            estate: None,
            device: device.into(),
            body: QrScanEvent {
                event_id: id.into(),
                ts,
                code: code.into(),
            },
        }
    }
}

/// A tiny deterministic generator (LCG) for jitter.
#[derive(Clone, Debug)]
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u32) -> u32 {
        self.next_u32() % n.max(1)
    }
}

/// The two-month scenario of one estate (DESIGN "must show"): see
/// `two_month_scenario`.
#[derive(Debug)]
pub struct Scenario {
    pub tz: Tz,
    pub registry: Registry,
    pub events: Vec<Event>,
    /// Local midnight of day 0.
    pub day0: Timestamp,
}

/// Estate FCY, 61 days from 2026-03-01 (Asia/Shanghai). Stories:
/// - 1/101 family of three (F1a, F1b, F1c): ordinary; on weekends they
///   walk in together on F1a's card.
/// - 1/102 sublet: tenant SL seen days 0–2 only; from day 3 stranger SUB1
///   uses SL's card every evening (~20:30) and leaves every morning.
/// - 1/103 EL, elderly living alone: seen twice daily until day 20 16:xx.
/// - 2/201 TR travels for three weeks (days 10–30).
/// - 2/202 VA: never seen (vacant).
/// - 2/203 family (G1a, G1b) with a relative (stranger VIS) visiting twice a
///   week in the afternoon on a valid visitor QR pass.
/// - 2/204 family (H1a, H1b): ordinary.
/// - W1 on the watch list walks past the north gate on day 15, 14:00.
/// - three forged QR codes at qr-n on day 25 (10:00, 10:03, 10:06).
/// - the door at gr-b2 is forced on day 40 at 03:10.
pub fn two_month_scenario() -> Scenario {
    use anju_core::{Direction as D, DoorState};
    let tz: Tz = chrono_tz::Asia::Shanghai;
    let mut s = SiteBuilder::new("FCY");
    s.building("1")
        .building("2")
        .entrance("n", None)
        .entrance("b1", Some("1"))
        .entrance("b2", Some("2"))
        .unit(
            "1",
            "101",
            &[("F1a", false), ("F1b", false), ("F1c", false)],
        )
        .unit("1", "102", &[("SL", false)])
        .unit("1", "103", &[("EL", true)])
        .unit("2", "201", &[("TR", false)])
        .unit("2", "202", &[("VA", false)])
        .unit("2", "203", &[("G1a", false), ("G1b", false)])
        .unit("2", "204", &[("H1a", false), ("H1b", false)])
        .watch("W1");
    let registry = s.build();
    let day0 = local(tz, 2026, 3, 1, 0, 0, 0);
    let at = |d: i64, h: u32, m: u32, sec: u32| {
        day0 + chrono::Duration::days(d)
            + chrono::Duration::seconds(i64::from(h * 3600 + m * 60 + sec))
    };
    let mut rng = Lcg(20260301);
    let mut evs: Vec<Event> = Vec::new();
    let mut n = 0u32;
    let mut id = |p: &str| {
        n += 1;
        format!("ev-{n}-{p}")
    };
    // Residents: morning out through the gate, evening in at their door.
    let ordinary = |evs: &mut Vec<Event>,
                    rng: &mut Lcg,
                    id: &mut dyn FnMut(&str) -> String,
                    d: i64,
                    p: &str,
                    b: &str| {
        let m = rng.below(50);
        evs.push(ev::person(at(d, 7, m, 0), "cam-n", p));
        let (h, m) = (17 + rng.below(3), rng.below(60));
        evs.push(ev::access(
            at(d, h, m, 0),
            &format!("gr-{b}"),
            &format!("C-{p}"),
            true,
            D::In,
            &id(p),
        ));
        evs.push(ev::person(
            at(d, h, m, 1 + rng.below(3)),
            &format!("cam-{b}"),
            p,
        ));
    };
    // first event of the history: day 0 06:00
    evs.push(ev::status(at(0, 6, 0, 0), "gr-n", true));
    for d in 0..=60i64 {
        let weekend = d % 7 == 5 || d % 7 == 6;
        // 1/101: family; together on weekends
        if weekend {
            let m = rng.below(60);
            evs.push(ev::access(
                at(d, 16, m, 0),
                "gr-b1",
                "C-F1a",
                true,
                D::In,
                &id("F1"),
            ));
            for (i, p) in ["F1a", "F1b", "F1c"].iter().enumerate() {
                evs.push(ev::person(at(d, 16, m, 1 + i as u32), "cam-b1", p));
            }
        } else {
            for p in ["F1a", "F1b", "F1c"] {
                ordinary(&mut evs, &mut rng, &mut id, d, p, "b1");
            }
        }
        // 1/102: sublet
        if d <= 2 {
            ordinary(&mut evs, &mut rng, &mut id, d, "SL", "b1");
        } else {
            let m = 20 + rng.below(30);
            evs.push(ev::access(
                at(d, 20, m, 0),
                "gr-b1",
                "C-SL",
                true,
                D::In,
                &id("SUB"),
            ));
            evs.push(ev::stranger(at(d, 20, m, 2), "cam-b1", "SUB1"));
            evs.push(ev::stranger(at(d, 7, rng.below(50), 0), "cam-b1", "SUB1"));
        }
        // 1/103: elderly, stops appearing after day 20
        if d <= 20 {
            evs.push(ev::person(at(d, 9, rng.below(30), 0), "cam-n", "EL"));
            evs.push(ev::person(at(d, 16, rng.below(30), 0), "cam-b1", "EL"));
        }
        // 2/201: traveller
        if !(10..=30).contains(&d) {
            ordinary(&mut evs, &mut rng, &mut id, d, "TR", "b2");
        }
        // 2/203 + weekly visitor on a valid visitor pass
        for p in ["G1a", "G1b"] {
            ordinary(&mut evs, &mut rng, &mut id, d, p, "b2");
        }
        if d % 7 == 1 || d % 7 == 4 {
            let t = at(d, 15, rng.below(40), 0);
            let pass = crate::qr::PassPayload {
                id: format!("VP-{d}"),
                unit: "FCY/2/203".into(),
                kind: crate::qr::PassKind::Visitor,
                nbf: t - chrono::Duration::hours(1),
                exp: t + chrono::Duration::hours(6),
                single_use: true,
            };
            evs.push(ev::qr(
                t,
                "qr-b2",
                &crate::qr::encode_code(&pass, b"signature"),
                &id("VP"),
            ));
            evs.push(ev::stranger(
                t + chrono::Duration::seconds(3),
                "cam-b2",
                "VIS",
            ));
        }
        // 2/204: ordinary
        for p in ["H1a", "H1b"] {
            ordinary(&mut evs, &mut rng, &mut id, d, p, "b2");
        }
        if d == 15 {
            evs.push(ev::person(at(d, 14, 0, 0), "cam-n", "W1"));
        }
        if d == 25 {
            for (i, m) in [0, 3, 6].iter().enumerate() {
                evs.push(ev::qr(
                    at(d, 10, *m, 0),
                    "qr-n",
                    &format!("FAKE-{i}"),
                    &id("QR"),
                ));
            }
        }
        if d == 40 {
            evs.push(ev::door(
                at(d, 3, 10, 0),
                "gr-b2",
                DoorState::Forced,
                &id("DOOR"),
            ));
        }
    }
    evs.sort_by_key(|e| e.ts());
    Scenario {
        tz,
        registry,
        events: evs,
        day0,
    }
}

/// The site files (DESIGN §6) for a one-estate registry built by
/// [`SiteBuilder`]: `(file name, content)`.
pub fn site_files(reg: &Registry, tz: Tz) -> Vec<(&'static str, String)> {
    let mut toml = format!(
        "timezone = \"{}\"\nledger = \"ledger.csv\"\ncredentials = \"credentials.csv\"\nwatchlist = \"watchlist.csv\"\n",
        tz.name()
    );
    for e in &reg.estates {
        toml += &format!(
            "\n[[estate]]\ncode = \"{}\"\nname = \"{}\"\noffice = \"{}\"\n",
            e.code, e.name, e.office
        );
        for b in reg.buildings.iter().filter(|b| b.estate == e.code) {
            toml += &format!(
                "\n[[estate.building]]\ncode = \"{}\"\ngrid = \"{}\"\n",
                b.code,
                b.grid.as_ref().map(|g| g.as_str()).unwrap_or("G1")
            );
        }
        toml += "\n[[estate.grid]]\ncode = \"G1\"\nstaff = [\"wang.wei\"]\n";
        for en in reg.entrances.iter().filter(|x| x.estate == e.code) {
            toml += &format!(
                "\n[[estate.entrance]]\ncode = \"{}\"\nkind = \"{}\"\n",
                en.code,
                en.kind.as_str()
            );
            if let Some(b) = &en.building {
                toml += &format!("building = \"{b}\"\n");
            }
        }
        for d in reg.devices.iter().filter(|x| x.estate == e.code) {
            match d.kind {
                DeviceKind::Camera => {
                    toml += &format!(
                        "\n[[estate.camera]]\nid = \"{}\"\nurl = \"rtsp://127.0.0.1:8554/{}\"\nentrance = \"{}\"\nfaces = \"in\"\n",
                        d.id, d.id, d.entrance
                    )
                }
                DeviceKind::Reader => {
                    toml += &format!("\n[[estate.reader]]\nid = \"{}\"\nentrance = \"{}\"\n", d.id, d.entrance)
                }
                DeviceKind::Scanner => {
                    toml += &format!("\n[[estate.scanner]]\nid = \"{}\"\nentrance = \"{}\"\n", d.id, d.entrance)
                }
            }
        }
    }
    let mut ledger = String::from(
        "estate,building,unit,area_m2,household,person_id,name,role,id_number,phone,birth_year,lives_alone,lease_start,lease_end\n",
    );
    for p in &reg.persons {
        let area = reg
            .units
            .iter()
            .find(|u| u.key == p.unit)
            .and_then(|u| u.area_m2)
            .map(|a| a.to_string())
            .unwrap_or_default();
        ledger += &format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            p.unit.estate,
            p.unit.building,
            p.unit.unit,
            area,
            p.household,
            p.id,
            p.name,
            p.role.as_str(),
            p.id_number,
            p.phone,
            p.birth_year.map(|y| y.to_string()).unwrap_or_default(),
            u8::from(p.lives_alone),
            p.lease_start,
            p.lease_end.map(|d| d.to_string()).unwrap_or_default()
        );
    }
    let mut creds = String::from("kind,credential_id,person_id,valid_from,valid_to\n");
    for c in &reg.credentials {
        creds += &format!("{},{},{},,\n", c.kind.as_str(), c.id, c.person);
    }
    let mut watch = String::from("person_id,name,reason\n");
    for w in &reg.watchlist {
        watch += &format!("{},{},{}\n", w.person, w.name, w.reason);
    }
    vec![
        ("site.toml", toml),
        ("ledger.csv", ledger),
        ("credentials.csv", creds),
        ("watchlist.csv", watch),
    ]
}
