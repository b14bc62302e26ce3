//! The registry: what the housing office knows about its estates, units,
//! households, credentials and devices. Built by `anju-site` from the site
//! file and ledgers; stored by `anju-store`; read by the rules.

use crate::event::CredentialKind;
use crate::ids::*;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estate {
    pub code: EstateCode,
    pub name: String,
    pub office: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Building {
    pub estate: EstateCode,
    pub code: BuildingCode,
    pub grid: Option<GridCode>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    pub estate: EstateCode,
    pub code: GridCode,
    pub staff: Vec<UserName>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntranceKind {
    EstateGate,
    BuildingDoor,
}

impl EntranceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EstateGate => "estate_gate",
            Self::BuildingDoor => "building_door",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entrance {
    pub estate: EstateCode,
    pub code: EntranceCode,
    pub kind: EntranceKind,
    /// For building doors: the building it opens.
    pub building: Option<BuildingCode>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FacesDirection {
    In,
    Out,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Camera,
    Reader,
    Scanner,
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Camera => "camera",
            Self::Reader => "reader",
            Self::Scanner => "scanner",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Camera, Self::Reader, Self::Scanner]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

/// A camera, gate reader or QR scanner at an entrance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub estate: EstateCode,
    pub id: DeviceId,
    pub kind: DeviceKind,
    pub entrance: EntranceCode,
    /// Cameras: the RTSP URL (never with credentials in it).
    pub url: Option<String>,
    /// Cameras: which passage direction the camera sees faces for.
    pub faces: Option<FacesDirection>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    pub key: UnitKey,
    pub area_m2: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonRole {
    Tenant,
    Member,
    Cohabitant,
}

impl PersonRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Member => "member",
            Self::Cohabitant => "cohabitant",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Tenant, Self::Member, Self::Cohabitant]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

/// One ledger row: a person registered to a unit for a lease period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Person {
    pub id: PersonId,
    pub unit: UnitKey,
    pub household: HouseholdId,
    pub name: String,
    pub role: PersonRole,
    pub id_number: String,
    pub phone: String,
    pub birth_year: Option<i32>,
    pub lives_alone: bool,
    pub lease_start: NaiveDate,
    /// `None` = current.
    pub lease_end: Option<NaiveDate>,
}

impl Person {
    /// Registered to their unit on `day`.
    pub fn is_current_on(&self, day: NaiveDate) -> bool {
        self.lease_start <= day && self.lease_end.is_none_or(|end| day < end)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Credential {
    pub kind: CredentialKind,
    pub id: CredentialId,
    pub person: PersonId,
    pub valid_from: Option<NaiveDate>,
    pub valid_to: Option<NaiveDate>,
    /// Recorded through the API (the ledger file has no such column: an
    /// imported credential is active, and a re-import keeps what was
    /// recorded for a credential it still lists).
    #[serde(default)]
    pub status: CredentialStatus,
}

/// What the housing office has recorded about a credential. Anything but
/// `Active` makes its use at a gate an alert (`blocked_credential_used`):
/// the reader may not know yet, and a lost card in a stranger's hand is
/// exactly what the office wants to hear about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialStatus {
    #[default]
    Active,
    /// Temporarily blocked (e.g. unpaid rent, a dispute); may be re-activated.
    Suspended,
    /// Withdrawn for good (moved out, replaced).
    Revoked,
    /// Reported lost or stolen by its holder.
    Lost,
}

impl CredentialStatus {
    pub const ALL: [CredentialStatus; 4] =
        [Self::Active, Self::Suspended, Self::Revoked, Self::Lost];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Revoked => "revoked",
            Self::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WatchEntry {
    pub person: PersonId,
    pub name: String,
    pub reason: String,
    /// Last day the entry applies (inclusive); none = until removed. Set
    /// through the API; the ledger's watch-list file has no such column.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<NaiveDate>,
}

/// The whole registry in memory, with the lookups the rules need.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Registry {
    pub estates: Vec<Estate>,
    pub buildings: Vec<Building>,
    pub grids: Vec<Grid>,
    pub entrances: Vec<Entrance>,
    pub devices: Vec<Device>,
    pub units: Vec<Unit>,
    pub persons: Vec<Person>,
    pub credentials: Vec<Credential>,
    pub watchlist: Vec<WatchEntry>,
    /// Rule thresholds an administrator set for an estate through the API:
    /// a JSON object of threshold → value, over the site file's `[rules]`
    /// (the rules crate merges and checks them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<EstateCode, serde_json::Value>,
    /// Ids of QR passes revoked through the API and not yet expired: the
    /// edges refuse them (`qr_invalid`, revoked).
    #[serde(default, skip_serializing_if = "std::collections::BTreeSet::is_empty")]
    pub qr_revoked: std::collections::BTreeSet<String>,
}

/// Counts as printed by `anju import`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryCounts {
    pub estates: usize,
    pub buildings: usize,
    pub units: usize,
    pub households: usize,
    pub persons: usize,
    pub credentials: usize,
    pub devices: usize,
    pub watchlist: usize,
    pub faces: usize,
}

impl Registry {
    pub fn counts(&self) -> RegistryCounts {
        let households: std::collections::HashSet<&HouseholdId> =
            self.persons.iter().map(|p| &p.household).collect();
        let persons: std::collections::HashSet<&PersonId> =
            self.persons.iter().map(|p| &p.id).collect();
        RegistryCounts {
            estates: self.estates.len(),
            buildings: self.buildings.len(),
            units: self.units.len(),
            households: households.len(),
            persons: persons.len(),
            credentials: self.credentials.len(),
            devices: self.devices.len(),
            watchlist: self.watchlist.len(),
            faces: 0,
        }
    }

    /// Builds the lookup indexes.
    pub fn index(&self) -> RegistryIndex<'_> {
        let mut persons: HashMap<&str, Vec<&Person>> = HashMap::new();
        let mut occupants: BTreeMap<&UnitKey, Vec<&Person>> = BTreeMap::new();
        for p in &self.persons {
            persons.entry(p.id.as_str()).or_default().push(p);
            occupants.entry(&p.unit).or_default().push(p);
        }
        let credentials = self
            .credentials
            .iter()
            .map(|c| ((c.kind, c.id.as_str()), c))
            .collect();
        let devices = self
            .devices
            .iter()
            .map(|d| ((d.estate.as_str(), d.id.as_str()), d))
            .collect();
        let device_any_estate = self.devices.iter().map(|d| (d.id.as_str(), d)).collect();
        let entrances = self
            .entrances
            .iter()
            .map(|e| ((e.estate.as_str(), e.code.as_str()), e))
            .collect();
        let buildings = self
            .buildings
            .iter()
            .map(|b| ((b.estate.as_str(), b.code.as_str()), b))
            .collect();
        let watch = self
            .watchlist
            .iter()
            .map(|w| (w.person.as_str(), w))
            .collect();
        RegistryIndex {
            reg: self,
            persons,
            occupants,
            credentials,
            devices,
            device_any_estate,
            entrances,
            buildings,
            watch,
        }
    }
}

/// Borrowing lookup tables over a [`Registry`].
pub struct RegistryIndex<'a> {
    pub reg: &'a Registry,
    persons: HashMap<&'a str, Vec<&'a Person>>,
    occupants: BTreeMap<&'a UnitKey, Vec<&'a Person>>,
    credentials: HashMap<(CredentialKind, &'a str), &'a Credential>,
    devices: HashMap<(&'a str, &'a str), &'a Device>,
    device_any_estate: HashMap<&'a str, &'a Device>,
    entrances: HashMap<(&'a str, &'a str), &'a Entrance>,
    buildings: HashMap<(&'a str, &'a str), &'a Building>,
    watch: HashMap<&'a str, &'a WatchEntry>,
}

impl<'a> RegistryIndex<'a> {
    /// All ledger rows of a person (several when they moved between units).
    pub fn person_rows(&self, id: &str) -> &[&'a Person] {
        self.persons.get(id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The person's row current on `day`, else their latest row.
    pub fn person_on(&self, id: &str, day: NaiveDate) -> Option<&'a Person> {
        let rows = self.person_rows(id);
        rows.iter()
            .find(|p| p.is_current_on(day))
            .or_else(|| rows.iter().max_by_key(|p| p.lease_start))
            .copied()
    }

    /// Everyone ever registered to a unit.
    pub fn unit_rows(&self, unit: &UnitKey) -> &[&'a Person] {
        self.occupants.get(unit).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Registered occupants of a unit on `day`.
    pub fn occupants_on(&self, unit: &UnitKey, day: NaiveDate) -> Vec<&'a Person> {
        self.unit_rows(unit)
            .iter()
            .filter(|p| p.is_current_on(day))
            .copied()
            .collect()
    }

    pub fn credential(&self, kind: CredentialKind, id: &str) -> Option<&'a Credential> {
        self.credentials.get(&(kind, id)).copied()
    }

    pub fn device(&self, estate: &str, id: &str) -> Option<&'a Device> {
        self.devices.get(&(estate, id)).copied()
    }

    /// A device by id alone (ids are unique across a site file in practice;
    /// replay files may omit the estate).
    pub fn device_by_id(&self, id: &str) -> Option<&'a Device> {
        self.device_any_estate.get(id).copied()
    }

    pub fn entrance(&self, estate: &str, code: &str) -> Option<&'a Entrance> {
        self.entrances.get(&(estate, code)).copied()
    }

    pub fn building(&self, estate: &str, code: &str) -> Option<&'a Building> {
        self.buildings.get(&(estate, code)).copied()
    }

    pub fn watch_entry(&self, person: &str) -> Option<&'a WatchEntry> {
        self.watch.get(person).copied()
    }
}

/// Validates a mainland-China resident ID number (GB 11643-1999): 17 digits
/// and a check character (`0-9` or `X`) computed with weights 2^(17-i) mod 11.
pub fn gb11643_valid(id: &str) -> Result<(), &'static str> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = id.as_bytes();
    if b.len() != 18 {
        return Err("must be 18 characters");
    }
    let mut sum = 0u32;
    for (i, w) in WEIGHTS.iter().enumerate() {
        let d = b[i];
        if !d.is_ascii_digit() {
            return Err("first 17 characters must be digits");
        }
        sum += u32::from(d - b'0') * w;
    }
    let expect = CHECK[(sum % 11) as usize];
    let got = b[17].to_ascii_uppercase();
    if got != expect {
        return Err("check digit does not match (GB 11643)");
    }
    Ok(())
}

/// Appends the GB 11643 check character to a 17-digit prefix (for test data
/// generators).
pub fn gb11643_complete(prefix17: &str) -> Option<String> {
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: &[u8; 11] = b"10X98765432";
    let b = prefix17.as_bytes();
    if b.len() != 17 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = b
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let mut s = prefix17.to_owned();
    s.push(char::from(CHECK[(sum % 11) as usize]));
    Some(s)
}

/// Masks an ID number for roles that do not need it: only the first four
/// digits (province and city) stay, `1101**************`. Keeping more —
/// the usual `110105********123X` — leaves the check digit, which with the
/// birth year shown elsewhere narrows the masked birth date to a few dozen
/// days.
pub fn mask_id_number(id: &str) -> String {
    id.chars()
        .enumerate()
        .map(|(i, c)| if i < 4 { c } else { '*' })
        .collect()
}

/// Masks a credential id (card number, QR pass id) for roles that do not
/// need it: the last four characters stay, enough to tell two cards of one
/// person apart (`********5678`); four or fewer are all masked.
pub fn mask_credential(id: &str) -> String {
    let n = id.chars().count();
    id.chars()
        .enumerate()
        .map(|(i, c)| if n > 4 && i >= n - 4 { c } else { '*' })
        .collect()
}

/// Masks a phone number: `138****5678`.
pub fn mask_phone(phone: &str) -> String {
    let chars: Vec<char> = phone.chars().collect();
    let n = chars.len();
    if n <= 7 {
        return "*".repeat(n);
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < 3 || i >= n - 4 { *c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb11643_known_numbers() {
        // The standard's own example.
        assert!(gb11643_valid("11010519491231002X").is_ok());
        assert!(gb11643_valid("11010519491231002x").is_ok());
        assert!(gb11643_valid("110105194912310021").is_err());
        assert!(gb11643_valid("1101051949123100").is_err());
        assert!(gb11643_valid("1101051949123100AX").is_err());
        assert_eq!(
            gb11643_complete("11010519491231002").as_deref(),
            Some("11010519491231002X")
        );
    }

    #[test]
    fn masking() {
        assert_eq!(mask_id_number("11010519491231002X"), "1101**************");
        assert_eq!(mask_credential("C-0012345678"), "********5678");
        assert_eq!(mask_credential("C12"), "***");
        assert_eq!(mask_phone("13812345678"), "138****5678");
    }
}
