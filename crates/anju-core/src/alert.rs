//! Alerts (DESIGN §5 catalogue) and their workflow.
//!
//! Workflow: `open` → `acknowledged` → `dispatched` → `resolved` (with an
//! [`Outcome`]), or `dismissed` with a reason from any non-final state.

use crate::ids::{
    AlertId, BuildingCode, CredentialId, DeviceId, EstateCode, EventId, PersonId, StrangerId,
    UnitNo, UserName,
};
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The anomaly catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertCode {
    WatchlistHit,
    CredentialMisuse,
    Tailgating,
    UnregisteredLongTermOccupant,
    SubletSuspected,
    VacancySuspected,
    OvercrowdingSuspected,
    ElderlyNoActivity,
    QrInvalid,
    AccessDeniedBurst,
    DoorForced,
    DoorHeldOpen,
    DeviceOffline,
    BlockedCredentialUsed,
}

impl AlertCode {
    pub const ALL: [AlertCode; 14] = [
        Self::WatchlistHit,
        Self::CredentialMisuse,
        Self::Tailgating,
        Self::UnregisteredLongTermOccupant,
        Self::SubletSuspected,
        Self::VacancySuspected,
        Self::OvercrowdingSuspected,
        Self::ElderlyNoActivity,
        Self::QrInvalid,
        Self::AccessDeniedBurst,
        Self::DoorForced,
        Self::DoorHeldOpen,
        Self::DeviceOffline,
        Self::BlockedCredentialUsed,
    ];

    /// The code's row of the [`CATALOGUE`].
    pub fn info(self) -> &'static CodeInfo {
        // Rows are in declaration order (checked by a test).
        &CATALOGUE[self as usize]
    }

    pub fn as_str(self) -> &'static str {
        self.info().name
    }

    pub fn parse(s: &str) -> Option<Self> {
        CATALOGUE.iter().find(|c| c.name == s).map(|c| c.code)
    }

    /// Whether the rule is instant — it answers at the gate, so an edge
    /// worker raises it (and publishes it on MQTT at once, also while the
    /// central store is unreachable) and forwards it as a finding — rather
    /// than an occupancy rule over days, which the central analyzer raises
    /// from the history (docs/architecture.md, "Which rules run where").
    pub fn is_instant(self) -> bool {
        self.info().home == RuleHome::Edge
    }

    /// Default severity from the catalogue (rules may escalate).
    pub fn default_severity(self) -> Severity {
        self.info().severity
    }

    /// Whether the alert becomes a field notice (home visit) rather than an
    /// operator matter.
    pub fn is_field_matter(self) -> bool {
        self.info().goes_to == GoesTo::FieldNotice
    }

    pub fn title_zh(self) -> &'static str {
        self.info().title_zh
    }

    pub fn title_en(self) -> &'static str {
        self.info().title_en
    }
}

/// Where a rule runs (docs/architecture.md, "Which rules run where").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleHome {
    /// At the edge worker: it answers at the gate.
    Edge,
    /// At the central analyzer: it judges the history.
    Centre,
}

/// Who acts on an alert of the code (DESIGN §5, "goes to").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoesTo {
    Operators,
    /// A field notice to the building's grid (home visit).
    FieldNotice,
}

/// One row of the anomaly catalogue (DESIGN §5).
#[derive(Clone, Copy, Debug)]
pub struct CodeInfo {
    pub code: AlertCode,
    /// The code in the API, MQTT and storage.
    pub name: &'static str,
    /// Default severity (rules may escalate).
    pub severity: Severity,
    pub home: RuleHome,
    pub goes_to: GoesTo,
    pub title_zh: &'static str,
    pub title_en: &'static str,
}

const fn row(
    code: AlertCode,
    name: &'static str,
    severity: Severity,
    home: RuleHome,
    goes_to: GoesTo,
    title_zh: &'static str,
    title_en: &'static str,
) -> CodeInfo {
    CodeInfo {
        code,
        name,
        severity,
        home,
        goes_to,
        title_zh,
        title_en,
    }
}

/// The anomaly catalogue, one row per code in declaration order: a new rule
/// is one variant and one row here (plus its rule).
pub const CATALOGUE: [CodeInfo; 14] = {
    use AlertCode as C;
    use GoesTo::{FieldNotice, Operators};
    use RuleHome::{Centre, Edge};
    use Severity::{Critical, High, Low, Medium};
    [
        row(
            C::WatchlistHit,
            "watchlist_hit",
            Critical,
            Edge,
            Operators,
            "重点人员出现",
            "Watch-list person seen",
        ),
        row(
            C::CredentialMisuse,
            "credential_misuse",
            High,
            Edge,
            Operators,
            "凭证冒用",
            "Credential used by a non-occupant",
        ),
        row(
            C::Tailgating,
            "tailgating",
            Medium,
            Edge,
            Operators,
            "尾随进入",
            "Tailgating after a granted entry",
        ),
        row(
            C::UnregisteredLongTermOccupant,
            "unregistered_long_term_occupant",
            High,
            Centre,
            FieldNotice,
            "未登记人员长期居住",
            "Unregistered long-term occupant",
        ),
        row(
            C::SubletSuspected,
            "sublet_suspected",
            High,
            Centre,
            FieldNotice,
            "疑似转租转借",
            "Sublet suspected",
        ),
        row(
            C::VacancySuspected,
            "vacancy_suspected",
            Medium,
            Centre,
            FieldNotice,
            "疑似闲置",
            "Vacancy suspected",
        ),
        row(
            C::OvercrowdingSuspected,
            "overcrowding_suspected",
            Medium,
            Centre,
            FieldNotice,
            "疑似群租",
            "Overcrowding suspected",
        ),
        row(
            C::ElderlyNoActivity,
            "elderly_no_activity",
            High,
            Centre,
            FieldNotice,
            "独居老人长时间未出现",
            "Elderly person living alone not seen",
        ),
        row(
            C::QrInvalid,
            "qr_invalid",
            Low,
            Edge,
            Operators,
            "无效通行码",
            "Invalid QR pass",
        ),
        row(
            C::AccessDeniedBurst,
            "access_denied_burst",
            Medium,
            Edge,
            Operators,
            "多次通行被拒",
            "Repeated access denials",
        ),
        row(
            C::DoorForced,
            "door_forced",
            High,
            Edge,
            Operators,
            "门被强行打开",
            "Door forced open",
        ),
        row(
            C::DoorHeldOpen,
            "door_held_open",
            Medium,
            Edge,
            Operators,
            "门长时间未关",
            "Door held open",
        ),
        row(
            C::DeviceOffline,
            "device_offline",
            Medium,
            Edge,
            Operators,
            "设备离线",
            "Device offline",
        ),
        row(
            C::BlockedCredentialUsed,
            "blocked_credential_used",
            High,
            Edge,
            Operators,
            "挂失或停用凭证被使用",
            "Lost, suspended or revoked credential used",
        ),
    ]
};

impl fmt::Display for AlertCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Low, Self::Medium, Self::High, Self::Critical]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Dispatched,
    Resolved,
    Dismissed,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 5] = [
        Self::Open,
        Self::Acknowledged,
        Self::Dispatched,
        Self::Resolved,
        Self::Dismissed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Dispatched => "dispatched",
            Self::Resolved => "resolved",
            Self::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == s)
    }

    /// Still being worked on: new evidence of the same finding attaches here.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Open | Self::Acknowledged | Self::Dispatched)
    }
}

/// Outcome of a resolved alert (the field visit's finding).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Confirmed,
    FalseAlarm,
    NoAction,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::FalseAlarm => "false_alarm",
            Self::NoAction => "no_action",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Confirmed, Self::FalseAlarm, Self::NoAction]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Who or what an alert is about: `{"person"}`, `{"stranger"}`,
/// `{"device"}`, `{"credential"}` (DESIGN §6), plus `{"unit"}` for
/// unit-level findings (vacancy, sublet, overcrowding) that have no single
/// person.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Person(PersonId),
    Stranger(StrangerId),
    Device(DeviceId),
    Credential(CredentialId),
    Unit(String),
}

impl Subject {
    /// Stable string used for deduplication and storage, e.g.
    /// `person:P001`.
    pub fn key(&self) -> String {
        match self {
            Subject::Person(p) => format!("person:{p}"),
            Subject::Stranger(s) => format!("stranger:{s}"),
            Subject::Device(d) => format!("device:{d}"),
            Subject::Credential(c) => format!("credential:{c}"),
            Subject::Unit(u) => format!("unit:{u}"),
        }
    }

    pub fn parse_key(s: &str) -> Option<Self> {
        let (kind, id) = s.split_once(':')?;
        Some(match kind {
            "person" => Subject::Person(id.into()),
            "stranger" => Subject::Stranger(id.into()),
            "device" => Subject::Device(id.into()),
            "credential" => Subject::Credential(id.into()),
            "unit" => Subject::Unit(id.into()),
            _ => return None,
        })
    }
}

/// One piece of evidence on an alert: what was seen, when, where.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub ts: Timestamp,
    /// `access`, `sighting`, `door`, `qr_scan`, `status`, `summary`, ...
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stranger: Option<StrangerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Human-readable detail, e.g. "seen on 8 days in 14".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Evidence {
    pub fn new(ts: Timestamp, kind: impl Into<String>) -> Self {
        Self {
            ts,
            kind: kind.into(),
            event_id: None,
            device: None,
            person: None,
            stranger: None,
            credential: None,
            snapshot: None,
            note: None,
        }
    }
}

/// An alert as the API, MQTT and replay output show it (alert JSON contract).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: AlertId,
    pub code: AlertCode,
    pub severity: Severity,
    pub status: AlertStatus,
    pub estate: EstateCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building: Option<BuildingCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitNo>,
    pub subject: Subject,
    pub opened_at: Timestamp,
    pub updated_at: Timestamp,
    pub evidence: Vec<Evidence>,
    pub title_zh: String,
    pub title_en: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Free text with the last transition's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// One audited workflow transition of an alert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub alert_id: AlertId,
    pub from: AlertStatus,
    pub to: AlertStatus,
    pub by: UserName,
    pub at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Workflow actions, as in `POST /alerts/{id}/{action}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Ack,
    Dispatch,
    Resolve,
    Dismiss,
}

/// Why a workflow action is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WorkflowError {
    #[error("cannot {action:?} an alert that is {from:?}")]
    InvalidTransition { from: AlertStatus, action: Action },
    #[error("{0} requires a reason")]
    ReasonRequired(&'static str),
}

impl AlertStatus {
    /// The state after `action`, or why it is not allowed.
    pub fn apply(self, action: Action) -> Result<AlertStatus, WorkflowError> {
        use AlertStatus::*;
        let to = match (self, action) {
            (Open, Action::Ack) => Acknowledged,
            (Open | Acknowledged, Action::Dispatch) => Dispatched,
            (Open | Acknowledged | Dispatched, Action::Resolve) => Resolved,
            (Open | Acknowledged | Dispatched, Action::Dismiss) => Dismissed,
            (from, action) => return Err(WorkflowError::InvalidTransition { from, action }),
        };
        Ok(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_one_row_per_code_in_order() {
        for (i, c) in AlertCode::ALL.iter().enumerate() {
            assert_eq!(CATALOGUE[i].code, *c);
            assert_eq!(AlertCode::parse(c.as_str()), Some(*c));
            // Instant rules go to operators; occupancy rules to the grid.
            assert_eq!(c.is_instant(), !c.is_field_matter(), "{c}");
        }
        assert_eq!(AlertCode::parse("nope"), None);
    }

    #[test]
    fn subject_serialises_as_one_key_object() {
        let s = Subject::Person("P1".into());
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"person":"P1"}"#);
        let d: Subject = serde_json::from_str(r#"{"device":"gr-1"}"#).unwrap();
        assert_eq!(d, Subject::Device("gr-1".into()));
        assert_eq!(Subject::parse_key(&d.key()), Some(d));
    }

    #[test]
    fn codes_round_trip() {
        for c in AlertCode::ALL {
            assert_eq!(AlertCode::parse(c.as_str()), Some(c));
            let j = serde_json::to_string(&c).unwrap();
            assert_eq!(j, format!("\"{}\"", c.as_str()));
        }
    }

    #[test]
    fn workflow_transitions() {
        use AlertStatus::*;
        assert_eq!(Open.apply(Action::Ack), Ok(Acknowledged));
        assert_eq!(Acknowledged.apply(Action::Dispatch), Ok(Dispatched));
        assert_eq!(Dispatched.apply(Action::Resolve), Ok(Resolved));
        assert!(Resolved.apply(Action::Ack).is_err());
        assert!(Dismissed.apply(Action::Resolve).is_err());
        assert!(Dispatched.apply(Action::Ack).is_err());
    }
}
