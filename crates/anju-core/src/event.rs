//! Events ingested at the edge, in the shapes of the MQTT v1 payloads and the
//! replay format (DESIGN §6). Every event has a timestamp; device events have
//! an `event_id` that makes delivery idempotent.

use crate::ids::{CredentialId, DeviceId, EstateCode, EventId, PersonId, StrangerId};
use crate::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Kind of credential presented at a reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialKind {
    Card,
    Face,
    Qr,
    Pin,
}

impl CredentialKind {
    pub const ALL: [CredentialKind; 4] = [Self::Card, Self::Face, Self::Qr, Self::Pin];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Face => "face",
            Self::Qr => "qr",
            Self::Pin => "pin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `{"kind", "id"}` as it appears in an access event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CredentialRef {
    pub kind: CredentialKind,
    pub id: CredentialId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessResult {
    Granted,
    Denied,
}

impl AccessResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Denied => "denied",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::In => "in",
            Self::Out => "out",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoorState {
    Opened,
    Closed,
    Forced,
    HeldOpen,
}

impl DoorState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Closed => "closed",
            Self::Forced => "forced",
            Self::HeldOpen => "held_open",
        }
    }
}

/// `anju/v1/{estate}/gate/{device}/access`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AccessEvent {
    pub event_id: EventId,
    pub ts: Timestamp,
    pub credential: CredentialRef,
    pub result: AccessResult,
    pub direction: Direction,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `anju/v1/{estate}/gate/{device}/door`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DoorEvent {
    pub event_id: EventId,
    pub ts: Timestamp,
    pub state: DoorState,
}

/// `anju/v1/{estate}/gate/{device}/status`. Has no event id: a status is a
/// level, not an occurrence, so repeats are harmless.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusEvent {
    pub ts: Timestamp,
    pub online: bool,
}

/// `anju/v1/{estate}/qr/{device}/scan`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QrScanEvent {
    pub event_id: EventId,
    pub ts: Timestamp,
    pub code: String,
}

/// A face track resolved to a registered person or an anonymous stranger.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sighting {
    /// Id of the sighting, when the producer gave one (the edge does; replay
    /// files may not). Used for idempotent storage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<EventId>,
    pub ts: Timestamp,
    pub camera: DeviceId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<PersonId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stranger: Option<StrangerId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Reference to the best-face snapshot, if one was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// An edge's judgement of one granted credential event at an entrance: who
/// passed on it, after fusing it with the face tracks there (DESIGN §6a).
/// Written by the edge's fusion next to the access event it judges and
/// forwarded with the events; the central occupancy rules read it instead
/// of fusing again (the centre never sees the tracks live).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Passage {
    /// `"{access event_id}:passage"` (idempotent like every event).
    pub event_id: EventId,
    /// The access event's time.
    pub ts: Timestamp,
    /// The judged access event.
    pub access_event_id: EventId,
    pub credential: CredentialRef,
    /// The holder's passage counts as their activity (their face or a
    /// household member's was seen, or nobody was on camera).
    pub holder_credited: bool,
    /// Non-occupants who passed on the unit's credential (misuse).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub persons: Vec<PersonId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub strangers: Vec<StrangerId>,
}

/// The kinds of [`Event`], as strings used in storage and the replay format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Access,
    Door,
    Status,
    QrScan,
    Sighting,
    Passage,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Door => "door",
            Self::Status => "status",
            Self::QrScan => "qr_scan",
            Self::Sighting => "sighting",
            Self::Passage => "passage",
        }
    }
}

/// One event with its origin, as stored and as replayed.
///
/// Serialises to the replay line format: `{"ts", "kind", "device", ...}` with
/// the kind's own fields flattened in; `estate` is optional in replay files
/// (the device's estate from the site file is used when absent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Access {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estate: Option<EstateCode>,
        device: DeviceId,
        #[serde(flatten)]
        body: AccessEvent,
    },
    Door {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estate: Option<EstateCode>,
        device: DeviceId,
        #[serde(flatten)]
        body: DoorEvent,
    },
    Status {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estate: Option<EstateCode>,
        device: DeviceId,
        #[serde(flatten)]
        body: StatusEvent,
    },
    QrScan {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estate: Option<EstateCode>,
        device: DeviceId,
        #[serde(flatten)]
        body: QrScanEvent,
    },
    Sighting {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estate: Option<EstateCode>,
        #[serde(flatten)]
        body: Sighting,
    },
    /// Derived at the edge, never received from a device.
    Passage {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        estate: Option<EstateCode>,
        /// The reader of the judged access event.
        device: DeviceId,
        #[serde(flatten)]
        body: Passage,
    },
}

impl Event {
    pub fn ts(&self) -> Timestamp {
        match self {
            Event::Access { body, .. } => body.ts,
            Event::Door { body, .. } => body.ts,
            Event::Status { body, .. } => body.ts,
            Event::QrScan { body, .. } => body.ts,
            Event::Sighting { body, .. } => body.ts,
            Event::Passage { body, .. } => body.ts,
        }
    }

    pub fn kind(&self) -> EventKind {
        match self {
            Event::Access { .. } => EventKind::Access,
            Event::Door { .. } => EventKind::Door,
            Event::Status { .. } => EventKind::Status,
            Event::QrScan { .. } => EventKind::QrScan,
            Event::Sighting { .. } => EventKind::Sighting,
            Event::Passage { .. } => EventKind::Passage,
        }
    }

    pub fn estate(&self) -> Option<&EstateCode> {
        match self {
            Event::Access { estate, .. }
            | Event::Door { estate, .. }
            | Event::Status { estate, .. }
            | Event::QrScan { estate, .. }
            | Event::Sighting { estate, .. }
            | Event::Passage { estate, .. } => estate.as_ref(),
        }
    }

    pub fn set_estate(&mut self, code: EstateCode) {
        match self {
            Event::Access { estate, .. }
            | Event::Door { estate, .. }
            | Event::Status { estate, .. }
            | Event::QrScan { estate, .. }
            | Event::Sighting { estate, .. }
            | Event::Passage { estate, .. } => *estate = Some(code),
        }
    }

    /// The device (reader, scanner or camera) the event came from.
    pub fn device(&self) -> &DeviceId {
        match self {
            Event::Access { device, .. }
            | Event::Door { device, .. }
            | Event::Status { device, .. }
            | Event::QrScan { device, .. }
            | Event::Passage { device, .. } => device,
            Event::Sighting { body, .. } => &body.camera,
        }
    }

    /// The idempotency key, when the event has one.
    pub fn event_id(&self) -> Option<&EventId> {
        match self {
            Event::Access { body, .. } => Some(&body.event_id),
            Event::Door { body, .. } => Some(&body.event_id),
            Event::Status { .. } => None,
            Event::QrScan { body, .. } => Some(&body.event_id),
            Event::Sighting { body, .. } => body.event_id.as_ref(),
            Event::Passage { body, .. } => Some(&body.event_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_lines_round_trip() {
        let lines = [
            r#"{"ts":"2026-03-01T08:00:00+08:00","kind":"access","device":"gr-n1","event_id":"e1","credential":{"kind":"card","id":"C1"},"result":"granted","direction":"in"}"#,
            r#"{"ts":"2026-03-01T08:00:01+08:00","kind":"sighting","camera":"cam-n1","stranger":"s-7","direction":"in"}"#,
            r#"{"ts":"2026-03-01T08:00:02+08:00","kind":"door","device":"gr-n1","event_id":"e2","state":"forced","extra":1}"#,
            r#"{"ts":"2026-03-01T08:00:03+08:00","kind":"qr_scan","device":"qr-n1","event_id":"e3","code":"AJ1.x"}"#,
            r#"{"ts":"2026-03-01T08:00:04+08:00","kind":"status","device":"gr-n1","online":false}"#,
        ];
        let kinds = ["access", "sighting", "door", "qr_scan", "status"];
        for (line, kind) in lines.iter().zip(kinds) {
            let ev: Event = serde_json::from_str(line).expect(line);
            assert_eq!(ev.kind().as_str(), kind);
            let back = serde_json::to_string(&ev).unwrap();
            let again: Event = serde_json::from_str(&back).unwrap();
            assert_eq!(ev, again);
        }
    }

    #[test]
    fn offset_is_normalised_to_utc() {
        let ev: Event = serde_json::from_str(
            r#"{"ts":"2026-03-01T08:00:00+08:00","kind":"status","device":"d","online":true}"#,
        )
        .unwrap();
        assert_eq!(ev.ts().to_rfc3339(), "2026-03-01T00:00:00+00:00");
    }

    #[test]
    fn bad_enum_value_is_an_error() {
        let r: Result<Event, _> = serde_json::from_str(
            r#"{"ts":"2026-03-01T08:00:00+08:00","kind":"door","device":"d","event_id":"x","state":"ajar"}"#,
        );
        assert!(r.is_err());
    }
}
