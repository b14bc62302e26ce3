//! Dashboard users and their roles and scopes.

use crate::ids::{EstateCode, GridCode, UserName};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Supervisor,
    Operator,
    FieldStaff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Supervisor => "supervisor",
            Self::Operator => "operator",
            Self::FieldStaff => "field_staff",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Admin,
            Self::Supervisor,
            Self::Operator,
            Self::FieldStaff,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Whether the role may see unmasked ID numbers and phone numbers.
    pub fn sees_personal_identifiers(self) -> bool {
        matches!(self, Self::Admin)
    }
}

/// A user with the scope they may see. `estates` empty with `all_estates`
/// means every estate; field staff are further limited to `grids`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: UserName,
    pub role: Role,
    pub all_estates: bool,
    pub estates: Vec<EstateCode>,
    /// `(estate, grid)` pairs for field staff.
    pub grids: Vec<(EstateCode, GridCode)>,
}
