//! Identifier newtypes. Ids are opaque strings chosen by the housing office
//! (estate codes, person ids from the ledger, device ids from the site file),
//! so they stay strings; the newtypes keep them from being mixed up.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! string_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn new(s: impl Into<String>) -> Self {
                Self(s.into())
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self(s.to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self(s)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

string_id!(
    /// Estate code, e.g. `FCY`; used in MQTT topics and the API.
    EstateCode
);
string_id!(
    /// Building code within an estate, e.g. `1`.
    BuildingCode
);
string_id!(
    /// Unit number within a building, e.g. `402`.
    UnitNo
);
string_id!(
    /// Grid code within an estate, e.g. `G1`.
    GridCode
);
string_id!(
    /// Entrance code within an estate, e.g. `north-gate`.
    EntranceCode
);
string_id!(
    /// Person id from the ledger (or watch list).
    PersonId
);
string_id!(
    /// Household id from the ledger.
    HouseholdId
);
string_id!(
    /// Credential id (card number, QR pass id, PIN id, face-terminal id).
    CredentialId
);
string_id!(
    /// Device id: camera, gate reader or QR scanner, unique within an estate.
    DeviceId
);
string_id!(
    /// Anonymous stranger identity: one unknown face clustered over days.
    StrangerId
);
string_id!(
    /// Event id given by the device; makes delivery idempotent.
    EventId
);
string_id!(
    /// User name of a person using the dashboard.
    UserName
);

/// A unit's full key: estate, building and unit number. Displayed as
/// `FCY/1/402`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnitKey {
    pub estate: EstateCode,
    pub building: BuildingCode,
    pub unit: UnitNo,
}

impl UnitKey {
    pub fn new(
        estate: impl Into<EstateCode>,
        building: impl Into<BuildingCode>,
        unit: impl Into<UnitNo>,
    ) -> Self {
        Self {
            estate: estate.into(),
            building: building.into(),
            unit: unit.into(),
        }
    }
}

impl fmt::Display for UnitKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.estate, self.building, self.unit)
    }
}

/// Database id of an alert.
pub type AlertId = i64;
/// Database id of a field notice.
pub type NoticeId = i64;
