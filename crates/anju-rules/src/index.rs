//! Owned, integer-keyed lookup tables over a [`Registry`], built once per
//! engine so the hot path works on compact indices instead of strings.

use crate::config::{RulesConfig, Thresholds};
use anju_core::registry::{DeviceKind, EntranceKind, FacesDirection};
use anju_core::{
    BuildingCode, CredentialId, CredentialKind, CredentialStatus, DeviceId, EstateCode, PersonId,
    Registry, UnitKey,
};
use chrono::{Datelike, NaiveDate};
use std::collections::HashMap;

pub(crate) fn day_num(d: NaiveDate) -> i32 {
    d.num_days_from_ce()
}

#[derive(Debug)]
pub(crate) struct EstateInfo {
    pub code: EstateCode,
    pub th: Thresholds,
}

#[derive(Debug)]
pub(crate) struct BuildingInfo {
    pub code: BuildingCode,
}

#[derive(Debug)]
pub(crate) struct EntranceInfo {
    pub building: Option<u32>,
    #[allow(dead_code)]
    pub kind: EntranceKind,
}

#[derive(Debug)]
pub(crate) struct DeviceInfo {
    pub id: DeviceId,
    pub estate: u32,
    #[allow(dead_code)]
    pub kind: DeviceKind,
    pub entrance: Option<u32>,
    pub faces: Option<FacesDirection>,
}

/// One ledger row, seen from the unit or the person.
#[derive(Clone, Copy, Debug)]
#[allow(dead_code)]
pub(crate) struct Row {
    pub person: u32,
    pub unit: u32,
    pub start: i32,
    /// Exclusive end day; `i32::MAX` = current.
    pub end: i32,
    pub lives_alone: bool,
}

impl Row {
    pub fn current_on(&self, day: i32) -> bool {
        self.start <= day && day < self.end
    }
}

#[derive(Debug)]
pub(crate) struct PersonInfo {
    pub id: PersonId,
    pub rows: Vec<Row>,
    /// On the watch list up to this day (inclusive; `i32::MAX`: no
    /// expiry).
    pub watch: Option<i32>,
}

#[derive(Debug)]
pub(crate) struct UnitInfo {
    pub key: UnitKey,
    pub estate: u32,
    pub rows: Vec<Row>,
}

#[derive(Debug)]
#[allow(dead_code)]
pub(crate) struct CredInfo {
    pub id: CredentialId,
    pub person: u32,
    pub status: CredentialStatus,
}

#[derive(Debug)]
pub(crate) struct Index {
    pub estates: Vec<EstateInfo>,
    pub estate_ix: HashMap<String, u32>,
    pub default_th: Thresholds,
    pub buildings: Vec<BuildingInfo>,
    pub entrances: Vec<EntranceInfo>,
    pub devices: Vec<DeviceInfo>,
    pub device_ix: HashMap<String, u32>,
    pub units: Vec<UnitInfo>,
    pub unit_ix: HashMap<UnitKey, u32>,
    /// (estate, building code) → building.
    pub building_ix: HashMap<(u32, String), u32>,
    /// (estate, entrance code) → entrance.
    pub entrance_ix: HashMap<(u32, String), u32>,
    pub persons: Vec<PersonInfo>,
    pub person_ix: HashMap<String, u32>,
    pub creds: Vec<CredInfo>,
    /// One map per [`CredentialKind`] (indexed by `kind_ix`).
    pub cred_ix: [HashMap<String, u32>; 4],
}

pub(crate) fn kind_ix(k: CredentialKind) -> usize {
    match k {
        CredentialKind::Card => 0,
        CredentialKind::Face => 1,
        CredentialKind::Qr => 2,
        CredentialKind::Pin => 3,
    }
}

impl Index {
    pub fn build(reg: &Registry, config: &RulesConfig) -> Self {
        let mut ix = Index {
            estates: Vec::new(),
            estate_ix: HashMap::new(),
            default_th: config.defaults.clone(),
            buildings: Vec::new(),
            entrances: Vec::new(),
            devices: Vec::new(),
            device_ix: HashMap::new(),
            units: Vec::new(),
            unit_ix: HashMap::new(),
            building_ix: HashMap::new(),
            entrance_ix: HashMap::new(),
            persons: Vec::new(),
            person_ix: HashMap::new(),
            creds: Vec::new(),
            cred_ix: Default::default(),
        };
        for e in &reg.estates {
            ix.estate(&e.code, config);
        }
        ix.load_places(reg, config);
        for u in &reg.units {
            ix.unit(&u.key, config);
        }
        ix.load_people(reg, config);
        let _ = ix.apply_rules(reg, config);
        ix
    }

    /// Each estate's thresholds: the site's, with what an administrator set
    /// through the API (`reg.rules`) over them. Overrides that do not check
    /// (the API refuses them; a store written by other means) leave the
    /// site's thresholds, and are returned as problems for the caller to
    /// log.
    pub fn apply_rules(&mut self, reg: &Registry, config: &RulesConfig) -> Vec<String> {
        let mut problems = Vec::new();
        for e in &mut self.estates {
            let base = config.for_estate(e.code.as_str());
            e.th = match reg.rules.get(&e.code) {
                None => base.clone(),
                Some(o) => base.with_overrides(o).unwrap_or_else(|why| {
                    problems.push(format!("estate {}: {why}", e.code));
                    base.clone()
                }),
            };
        }
        problems
    }

    fn building(&mut self, estate: u32, code: &BuildingCode) -> u32 {
        if let Some(b) = self.building_ix.get(&(estate, code.0.clone())) {
            return *b;
        }
        self.buildings.push(BuildingInfo { code: code.clone() });
        let b = (self.buildings.len() - 1) as u32;
        self.building_ix.insert((estate, code.0.clone()), b);
        b
    }

    /// Buildings, entrances and devices: at build, and at a reload the ones
    /// added since (existing ids keep their numbers; a device moved to
    /// another entrance, or a camera whose direction changed, is updated;
    /// removed ones stay known here — the ingest worker refuses their
    /// messages).
    fn load_places(&mut self, reg: &Registry, config: &RulesConfig) {
        for b in &reg.buildings {
            let e = self.estate(&b.estate, config);
            self.building(e, &b.code);
        }
        for en in &reg.entrances {
            let e = self.estate(&en.estate, config);
            let b = en.building.as_ref().map(|b| self.building(e, b));
            let key = (e, en.code.0.clone());
            if let Some(&i) = self.entrance_ix.get(&key) {
                self.entrances[i as usize].building = b;
                continue;
            }
            self.entrances.push(EntranceInfo {
                building: b,
                kind: en.kind,
            });
            self.entrance_ix
                .insert(key, (self.entrances.len() - 1) as u32);
        }
        for d in &reg.devices {
            let e = self.estate(&d.estate, config);
            let entrance = self.entrance_ix.get(&(e, d.entrance.0.clone())).copied();
            let info = DeviceInfo {
                id: d.id.clone(),
                estate: e,
                kind: d.kind,
                entrance,
                faces: d.faces,
            };
            match self.device_ix.get(d.id.as_str()) {
                Some(&i) if self.devices[i as usize].estate == e => self.devices[i as usize] = info,
                Some(_) => {}
                None => {
                    self.devices.push(info);
                    self.device_ix
                        .insert(d.id.0.clone(), (self.devices.len() - 1) as u32);
                }
            }
        }
    }

    /// Interns a unit.
    fn unit(&mut self, key: &UnitKey, config: &RulesConfig) -> u32 {
        if let Some(u) = self.unit_ix.get(key) {
            return *u;
        }
        let e = self.estate(&key.estate, config);
        self.units.push(UnitInfo {
            key: key.clone(),
            estate: e,
            rows: Vec::new(),
        });
        let u = (self.units.len() - 1) as u32;
        self.unit_ix.insert(key.clone(), u);
        u
    }

    /// Registrations, the watch list and credentials: what a registry
    /// reload replaces (interned ids stay as they are, so the engine's
    /// state keyed by them stays valid).
    fn load_people(&mut self, reg: &Registry, config: &RulesConfig) {
        for p in &reg.persons {
            let u = self.unit(&p.unit, config);
            let pi = self.person(&p.id);
            let row = Row {
                person: pi,
                unit: u,
                start: day_num(p.lease_start),
                end: p.lease_end.map(day_num).unwrap_or(i32::MAX),
                lives_alone: p.lives_alone,
            };
            self.persons[pi as usize].rows.push(row);
            self.units[u as usize].rows.push(row);
        }
        for w in &reg.watchlist {
            let pi = self.person(&w.person);
            self.persons[pi as usize].watch = Some(w.expires.map(day_num).unwrap_or(i32::MAX));
        }
        for c in &reg.credentials {
            let pi = self.person(&c.person);
            self.creds.push(CredInfo {
                id: c.id.clone(),
                person: pi,
                status: c.status,
            });
            let ci = (self.creds.len() - 1) as u32;
            self.cred_ix[kind_ix(c.kind)].insert(c.id.0.clone(), ci);
        }
    }

    /// Replaces registrations, the watch list and credentials with
    /// `reg`'s (a registry written through the API, re-imported): new
    /// persons and units are interned, existing ids keep their numbers.
    pub fn reload_people(&mut self, reg: &Registry, config: &RulesConfig) {
        self.load_places(reg, config);
        for p in &mut self.persons {
            p.rows.clear();
            p.watch = None;
        }
        for u in &mut self.units {
            u.rows.clear();
        }
        self.creds.clear();
        for m in &mut self.cred_ix {
            m.clear();
        }
        self.load_people(reg, config);
    }

    pub fn estate(&mut self, code: &EstateCode, config: &RulesConfig) -> u32 {
        if let Some(e) = self.estate_ix.get(code.as_str()) {
            return *e;
        }
        self.estates.push(EstateInfo {
            code: code.clone(),
            th: config.for_estate(code.as_str()).clone(),
        });
        let e = (self.estates.len() - 1) as u32;
        self.estate_ix.insert(code.0.clone(), e);
        e
    }

    /// Interns a person id (persons seen but not in the ledger get an entry
    /// without rows).
    pub fn person(&mut self, id: &PersonId) -> u32 {
        if let Some(p) = self.person_ix.get(id.as_str()) {
            return *p;
        }
        self.persons.push(PersonInfo {
            id: id.clone(),
            rows: Vec::new(),
            watch: None,
        });
        let p = (self.persons.len() - 1) as u32;
        self.person_ix.insert(id.0.clone(), p);
        p
    }

    pub fn th(&self, estate: u32) -> &Thresholds {
        self.estates
            .get(estate as usize)
            .map(|e| &e.th)
            .unwrap_or(&self.default_th)
    }

    /// The unit a person is registered to on `day`.
    pub fn person_unit_on(&self, person: u32, day: i32) -> Option<u32> {
        self.persons
            .get(person as usize)?
            .rows
            .iter()
            .find(|r| r.current_on(day))
            .map(|r| r.unit)
    }

    pub fn is_occupant(&self, person: u32, unit: u32, day: i32) -> bool {
        self.persons
            .get(person as usize)
            .is_some_and(|p| p.rows.iter().any(|r| r.unit == unit && r.current_on(day)))
    }

    pub fn lives_alone_on(&self, person: u32, day: i32) -> Option<&Row> {
        self.persons
            .get(person as usize)?
            .rows
            .iter()
            .find(|r| r.lives_alone && r.current_on(day))
    }
}
