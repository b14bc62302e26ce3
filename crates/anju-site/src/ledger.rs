//! Ledger, credentials and watch list: parsed, checked row by row and against
//! each other and the site file.

use crate::fields;
use crate::file::SiteFile;
use crate::table::Table;
use crate::SiteError;
use anju_core::{Credential, CredentialKind, Person, Registry, Unit, UnitKey, WatchEntry};
use chrono::{Datelike, NaiveDate};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

pub const LEDGER_COLUMNS: [&str; 14] = [
    "estate",
    "building",
    "unit",
    "area_m2",
    "household",
    "person_id",
    "name",
    "role",
    "id_number",
    "phone",
    "birth_year",
    "lives_alone",
    "lease_start",
    "lease_end",
];
pub const CREDENTIAL_COLUMNS: [&str; 5] = [
    "kind",
    "credential_id",
    "person_id",
    "valid_from",
    "valid_to",
];
pub const WATCHLIST_COLUMNS: [&str; 3] = ["person_id", "name", "reason"];

use crate::fields::date;

pub(crate) fn load_tables(
    dir: &Path,
    site: &SiteFile,
    reg: &mut Registry,
    errs: &mut Vec<SiteError>,
) {
    // Every person id the ledger names, valid row or not: a credential of a
    // person whose row was rejected is not reported a second time.
    let mut persons: HashSet<String> = HashSet::new();
    if let Some(t) = Table::read(&dir.join(&site.ledger), &LEDGER_COLUMNS, errs) {
        ledger(&t, reg, errs);
        persons.extend(t.rows.iter().map(|r| t.get(r, "person_id").to_owned()));
    }
    if let Some(t) = Table::read(&dir.join(&site.credentials), &CREDENTIAL_COLUMNS, errs) {
        credentials(&t, &persons, reg, errs);
    }
    if let Some(w) = &site.watchlist {
        if let Some(t) = Table::read(&dir.join(w), &WATCHLIST_COLUMNS, errs) {
            watchlist(&t, reg, errs);
        }
    }
}

pub(crate) fn ledger(t: &Table, reg: &mut Registry, errs: &mut Vec<SiteError>) {
    let estates: HashSet<&str> = reg.estates.iter().map(|e| e.code.as_str()).collect();
    let buildings: HashSet<(&str, &str)> = reg
        .buildings
        .iter()
        .map(|b| (b.estate.as_str(), b.code.as_str()))
        .collect();
    let this_year = chrono::Utc::now().year();
    let mut persons = Vec::with_capacity(t.rows.len());
    let mut units: BTreeMap<UnitKey, Option<f64>> = BTreeMap::new();
    let mut seen: HashMap<(String, NaiveDate), usize> = HashMap::new();
    let mut household_unit: HashMap<String, (UnitKey, usize)> = HashMap::new();
    for row in &t.rows {
        let n0 = errs.len();
        let get = |c: &str| t.get(row, c);
        let estate = get("estate");
        let building = get("building");
        if !estates.contains(estate) {
            errs.push(t.err(row, "estate", format!("unknown estate {estate:?}")));
        } else if !buildings.contains(&(estate, building)) {
            errs.push(t.err(
                row,
                "building",
                format!("unknown building {building:?} in estate {estate}"),
            ));
        }
        for c in ["unit", "household", "person_id", "name"] {
            if get(c).is_empty() {
                errs.push(t.err(row, c, "must not be empty"));
            }
        }
        let area = fields::area(get("area_m2")).unwrap_or_else(|m| {
            errs.push(t.err(row, "area_m2", m));
            None
        });
        let role = fields::role(get("role"))
            .map_err(|m| errs.push(t.err(row, "role", m)))
            .ok();
        let id_number = fields::id_number(get("id_number")).unwrap_or_else(|m| {
            errs.push(t.err(row, "id_number", m));
            String::new()
        });
        let phone = fields::phone(get("phone")).unwrap_or_else(|m| {
            errs.push(t.err(row, "phone", m));
            String::new()
        });
        let birth_year = match get("birth_year") {
            "" => None,
            s => match s.parse::<i32>() {
                Ok(y) => fields::birth_year(y, this_year)
                    .map_err(|m| errs.push(t.err(row, "birth_year", m)))
                    .ok(),
                Err(_) => {
                    errs.push(t.err(row, "birth_year", format!("{s:?} is not a birth year")));
                    None
                }
            },
        };
        let lives_alone = match get("lives_alone") {
            "" | "0" => false,
            "1" => true,
            s => {
                errs.push(t.err(row, "lives_alone", format!("{s:?} must be 1, 0 or empty")));
                false
            }
        };
        let lease_start = match date(get("lease_start")) {
            Ok(d) => Some(d),
            Err(m) => {
                errs.push(t.err(row, "lease_start", m));
                None
            }
        };
        let lease_end = match get("lease_end") {
            "" => None,
            s => match date(s) {
                Ok(d) => Some(d),
                Err(m) => {
                    errs.push(t.err(row, "lease_end", m));
                    None
                }
            },
        };
        if let (Some(s), Some(e)) = (lease_start, lease_end) {
            if e < s {
                errs.push(t.err(row, "lease_end", "lease_end is before lease_start"));
            }
        }
        let key = UnitKey::new(estate, building, get("unit"));
        if let Some(s) = lease_start {
            if let Some(first) = seen.insert((get("person_id").to_owned(), s), row.line) {
                errs.push(t.err(
                    row,
                    "person_id",
                    format!(
                        "duplicate person {:?} with the same lease_start (first on line {first})",
                        get("person_id")
                    ),
                ));
            }
        }
        let unit_ok = errs.len() == n0;
        match household_unit.get(get("household")) {
            Some((u, line)) if unit_ok && *u != key => errs.push(t.err(
                row,
                "household",
                format!(
                    "household {:?} is in unit {u} on line {line}",
                    get("household")
                ),
            )),
            None if unit_ok => {
                household_unit.insert(get("household").to_owned(), (key.clone(), row.line));
            }
            Some(_) | None => {}
        }
        if errs.len() > n0 {
            continue;
        }
        let (Some(role), Some(lease_start)) = (role, lease_start) else {
            continue;
        };
        let a = units.entry(key.clone()).or_insert(None);
        if area.is_some() {
            *a = area;
        }
        persons.push((
            row.line,
            Person {
                id: get("person_id").into(),
                unit: key,
                household: get("household").into(),
                name: get("name").to_owned(),
                role,
                id_number,
                phone,
                birth_year,
                lives_alone,
                lease_start,
                lease_end,
            },
        ));
    }
    // A person may be registered to one unit at a time.
    let mut current: HashMap<&str, (&UnitKey, usize)> = HashMap::new();
    for (line, p) in &persons {
        if p.lease_end.is_none() {
            if let Some((u, first)) = current.insert(p.id.as_str(), (&p.unit, *line)) {
                if *u != p.unit {
                    errs.push(SiteError {
                        file: t.file.clone(),
                        line: Some(*line),
                        column: t.columns.get("person_id").map(|i| i + 1),
                        field: Some("person_id".into()),
                        message: format!(
                            "person {} is currently registered in {u} (line {first}) and {}",
                            p.id, p.unit
                        ),
                    });
                }
            }
        }
    }
    reg.units = units
        .into_iter()
        .map(|(key, area_m2)| Unit { key, area_m2 })
        .collect();
    reg.persons = persons.into_iter().map(|(_, p)| p).collect();
}

fn credentials(
    t: &Table,
    persons: &HashSet<String>,
    reg: &mut Registry,
    errs: &mut Vec<SiteError>,
) {
    let mut seen: HashMap<(CredentialKind, String), usize> = HashMap::new();
    for row in &t.rows {
        let n0 = errs.len();
        let kind = CredentialKind::parse(t.get(row, "kind"));
        if kind.is_none() {
            errs.push(t.err(
                row,
                "kind",
                format!(
                    "unknown kind {:?} (card, face, qr or pin)",
                    t.get(row, "kind")
                ),
            ));
        }
        let id = t.get(row, "credential_id");
        if id.is_empty() {
            errs.push(t.err(row, "credential_id", "must not be empty"));
        }
        let person = t.get(row, "person_id");
        if !persons.contains(person) {
            errs.push(t.err(row, "person_id", format!("unknown person {person:?}")));
        }
        let mut d = |c: &str| match t.get(row, c) {
            "" => None,
            s => match date(s) {
                Ok(d) => Some(d),
                Err(m) => {
                    errs.push(t.err(row, c, m));
                    None
                }
            },
        };
        let valid_from = d("valid_from");
        let valid_to = d("valid_to");
        if let Some(k) = kind {
            if let Some(first) = seen.insert((k, id.to_owned()), row.line) {
                errs.push(t.err(
                    row,
                    "credential_id",
                    format!("duplicate {k} credential {id:?} (first on line {first})"),
                ));
            }
        }
        if errs.len() > n0 {
            continue;
        }
        if let Some(kind) = kind {
            reg.credentials.push(Credential {
                kind,
                id: id.into(),
                person: person.into(),
                valid_from,
                valid_to,
                status: Default::default(),
            });
        }
    }
}

fn watchlist(t: &Table, reg: &mut Registry, errs: &mut Vec<SiteError>) {
    let mut seen: HashMap<String, usize> = HashMap::new();
    for row in &t.rows {
        let id = t.get(row, "person_id");
        if id.is_empty() {
            errs.push(t.err(row, "person_id", "must not be empty"));
            continue;
        }
        if let Some(first) = seen.insert(id.to_owned(), row.line) {
            errs.push(t.err(
                row,
                "person_id",
                format!("duplicate watch-list entry (first on line {first})"),
            ));
            continue;
        }
        reg.watchlist.push(WatchEntry {
            person: id.into(),
            name: t.get(row, "name").to_owned(),
            reason: t.get(row, "reason").to_owned(),
            expires: None,
        });
    }
}
