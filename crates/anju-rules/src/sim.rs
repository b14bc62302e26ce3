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

/// A 17-digit prefix made from `n`, completed with its GB 11643 check digit.
pub fn id_number(n: u64) -> String {
    let prefix = format!("42060719{:02}0101{:03}", 50 + (n % 40), n % 1000);
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
                id_number: id_number(self.n),
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
            });
        }
        self
    }

    pub fn watch(&mut self, person: &str) -> &mut Self {
        self.reg.watchlist.push(WatchEntry {
            person: person.into(),
            name: format!("Name {person}"),
            reason: "test".into(),
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
