//! MQTT v1 topics (DESIGN §6) and validation of incoming payloads.
//!
//! [`parse_message`] turns a topic and a payload into an [`Event`] of the
//! estate, or a [`Reject`] whose text is the dead-letter reason. It is pure:
//! no I/O, no panics on any input.

use anju_core::{
    AccessEvent, DeviceKind, DoorEvent, Event, EventId, QrScanEvent, Registry, StatusEvent,
};
use std::collections::HashMap;

/// Topic root of protocol version 1.
pub const PREFIX: &str = "anju/v1";

/// Longest payload accepted (a device event is a few hundred bytes).
pub const MAX_PAYLOAD: usize = 64 * 1024;

/// Subscriptions of an estate's edge worker.
pub fn subscriptions(estate: &str) -> Vec<String> {
    vec![
        format!("{PREFIX}/{estate}/gate/+/access"),
        format!("{PREFIX}/{estate}/gate/+/door"),
        format!("{PREFIX}/{estate}/gate/+/status"),
        format!("{PREFIX}/{estate}/qr/+/scan"),
    ]
}

pub fn alerts_topic(estate: &str) -> String {
    format!("{PREFIX}/{estate}/alerts")
}

pub fn decision_topic(estate: &str, device: &str) -> String {
    format!("{PREFIX}/{estate}/qr/{device}/decision")
}

pub fn gate_topic(estate: &str, device: &str, what: &str) -> String {
    format!("{PREFIX}/{estate}/gate/{device}/{what}")
}

pub fn scan_topic(estate: &str, device: &str) -> String {
    format!("{PREFIX}/{estate}/qr/{device}/scan")
}

/// Why a message was rejected; `Display` is the dead-letter reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    #[error("topic: {0}")]
    Topic(String),
    #[error("payload larger than {MAX_PAYLOAD} bytes")]
    TooLarge,
    #[error("payload is not UTF-8: {0}")]
    Utf8(String),
    #[error("payload: {0}")]
    Json(String),
    /// `ts` outside the window around the worker's clock (DESIGN §6a);
    /// the reason starts with `ts_out_of_range`.
    #[error("{0}")]
    TsOutOfRange(#[from] anju_core::TsOutOfRange),
    #[error("unknown device {device:?} for a {kind} topic of estate {estate:?}")]
    UnknownDevice {
        estate: String,
        device: String,
        kind: &'static str,
    },
}

/// Which message a topic carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicKind {
    Access,
    Door,
    Status,
    Scan,
}

/// Splits `anju/v1/{estate}/{gate|qr}/{device}/{what}`.
pub fn parse_topic(topic: &str) -> Result<(&str, &str, TopicKind), Reject> {
    let parts: Vec<&str> = topic.split('/').collect();
    let bad = || {
        Reject::Topic(format!(
            "{topic:?} is not anju/v1/{{estate}}/gate|qr/{{device}}/…"
        ))
    };
    if parts.len() != 6 || parts[0] != "anju" || parts[1] != "v1" {
        return Err(bad());
    }
    let (estate, device) = (parts[2], parts[4]);
    if estate.is_empty() || device.is_empty() {
        return Err(bad());
    }
    let kind = match (parts[3], parts[5]) {
        ("gate", "access") => TopicKind::Access,
        ("gate", "door") => TopicKind::Door,
        ("gate", "status") => TopicKind::Status,
        ("qr", "scan") => TopicKind::Scan,
        _ => return Err(bad()),
    };
    Ok((estate, device, kind))
}

/// The devices of one estate, for topic validation.
#[derive(Debug, Clone, Default)]
pub struct DeviceBook {
    estate: String,
    devices: HashMap<String, DeviceKind>,
}

impl DeviceBook {
    pub fn new(registry: &Registry, estate: &str) -> Self {
        let devices = registry
            .devices
            .iter()
            .filter(|d| d.estate.as_str() == estate)
            .map(|d| (d.id.0.clone(), d.kind))
            .collect();
        Self {
            estate: estate.to_owned(),
            devices,
        }
    }

    pub fn estate(&self) -> &str {
        &self.estate
    }

    pub fn kind(&self, device: &str) -> Option<DeviceKind> {
        self.devices.get(device).copied()
    }
}

fn json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, Reject> {
    serde_json::from_str(text).map_err(|e| Reject::Json(e.to_string()))
}

fn check_event_id(id: &EventId) -> Result<(), Reject> {
    if id.0.trim().is_empty() || id.0.len() > 128 {
        return Err(Reject::Json("event_id must be 1 to 128 characters".into()));
    }
    Ok(())
}

/// Validates one message of `book`'s estate: topic shape, size, UTF-8, JSON
/// with the required fields and enum values, `ts` as RFC 3339 with an offset,
/// and a device the site knows for that estate with the topic's kind.
///
/// # Errors
/// The reason the message is rejected.
pub fn parse_message(book: &DeviceBook, topic: &str, payload: &[u8]) -> Result<Event, Reject> {
    let (estate, device, kind) = parse_topic(topic)?;
    if estate != book.estate {
        return Err(Reject::Topic(format!(
            "estate {estate:?} is not this worker's ({:?})",
            book.estate
        )));
    }
    let want = match kind {
        TopicKind::Scan => DeviceKind::Scanner,
        _ => DeviceKind::Reader,
    };
    if book.kind(device) != Some(want) {
        return Err(Reject::UnknownDevice {
            estate: estate.to_owned(),
            device: device.to_owned(),
            kind: want.as_str(),
        });
    }
    if payload.len() > MAX_PAYLOAD {
        return Err(Reject::TooLarge);
    }
    let text = std::str::from_utf8(payload).map_err(|e| Reject::Utf8(e.to_string()))?;
    // `ts` must carry an offset: chrono's parser already insists on one for
    // `DateTime<Utc>`, so a naive local time is a JSON error.
    let estate = Some(estate.into());
    let device = device.into();
    let ev = match kind {
        TopicKind::Access => {
            let body: AccessEvent = json(text)?;
            check_event_id(&body.event_id)?;
            if body.credential.id.0.trim().is_empty() {
                return Err(Reject::Json("credential.id is empty".into()));
            }
            Event::Access {
                estate,
                device,
                body,
            }
        }
        TopicKind::Door => {
            let body: DoorEvent = json(text)?;
            check_event_id(&body.event_id)?;
            Event::Door {
                estate,
                device,
                body,
            }
        }
        TopicKind::Status => Event::Status {
            estate,
            device,
            body: json::<StatusEvent>(text)?,
        },
        TopicKind::Scan => {
            let body: QrScanEvent = json(text)?;
            check_event_id(&body.event_id)?;
            Event::QrScan {
                estate,
                device,
                body,
            }
        }
    };
    Ok(ev)
}

/// [`parse_message`], then the event's `ts` against `window` around the
/// receiving worker's clock `now`: a forged or broken device clock is a dead
/// letter, never a rule clock moved years ahead (or a panic in date
/// arithmetic).
///
/// # Errors
/// The reason the message is rejected.
pub fn parse_message_at(
    book: &DeviceBook,
    topic: &str,
    payload: &[u8],
    now: anju_core::Timestamp,
    window: &anju_core::TsWindow,
) -> Result<Event, Reject> {
    let ev = parse_message(book, topic, payload)?;
    window.check(ev.ts(), now)?;
    Ok(ev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anju_core::{Device, DeviceId, EntranceCode};

    fn book() -> DeviceBook {
        let mut reg = Registry::default();
        for (id, kind) in [("gr-1", DeviceKind::Reader), ("qr-1", DeviceKind::Scanner)] {
            reg.devices.push(Device {
                estate: "FCY".into(),
                id: DeviceId::new(id),
                kind,
                entrance: EntranceCode::new("north-gate"),
                url: None,
                faces: None,
            });
        }
        DeviceBook::new(&reg, "FCY")
    }

    const ACCESS: &str = r#"{"event_id":"e1","ts":"2026-03-01T08:00:00+08:00","credential":{"kind":"card","id":"C1"},"result":"granted","direction":"in","extra":true}"#;

    #[test]
    fn good_messages_parse() {
        let b = book();
        let ev = parse_message(&b, "anju/v1/FCY/gate/gr-1/access", ACCESS.as_bytes()).unwrap();
        assert_eq!(ev.estate().unwrap().as_str(), "FCY");
        assert_eq!(ev.device().as_str(), "gr-1");
        let door = r#"{"event_id":"d1","ts":"2026-03-01T08:00:00Z","state":"held_open"}"#;
        parse_message(&b, "anju/v1/FCY/gate/gr-1/door", door.as_bytes()).unwrap();
        let st = r#"{"ts":"2026-03-01T08:00:00+08:00","online":false}"#;
        parse_message(&b, "anju/v1/FCY/gate/gr-1/status", st.as_bytes()).unwrap();
        let scan = r#"{"event_id":"s1","ts":"2026-03-01T08:00:00+08:00","code":"AJ1.x.y"}"#;
        parse_message(&b, "anju/v1/FCY/qr/qr-1/scan", scan.as_bytes()).unwrap();
    }

    #[test]
    fn malformed_messages_are_rejected_with_a_reason() {
        let b = book();
        let cases: &[(&str, &[u8], &str)] = &[
            ("anju/v1/FCY/gate/gr-1/open", ACCESS.as_bytes(), "topic"),
            ("anju/v2/FCY/gate/gr-1/access", ACCESS.as_bytes(), "topic"),
            ("anju/v1/XXX/gate/gr-1/access", ACCESS.as_bytes(), "estate"),
            ("anju/v1/FCY/gate/gr-9/access", ACCESS.as_bytes(), "unknown device"),
            ("anju/v1/FCY/gate/qr-1/access", ACCESS.as_bytes(), "unknown device"),
            ("anju/v1/FCY/gate/gr-1/access", b"\xff\xfe", "UTF-8"),
            ("anju/v1/FCY/gate/gr-1/access", b"{not json", "payload"),
            (
                "anju/v1/FCY/gate/gr-1/access",
                br#"{"event_id":"e","ts":"2026-03-01T08:00:00+08:00","credential":{"kind":"iris","id":"C"},"result":"granted","direction":"in"}"#,
                "iris",
            ),
            (
                "anju/v1/FCY/gate/gr-1/access",
                br#"{"event_id":"e","ts":"2026-03-01T08:00:00","credential":{"kind":"card","id":"C"},"result":"granted","direction":"in"}"#,
                "payload",
            ),
            (
                "anju/v1/FCY/gate/gr-1/access",
                br#"{"ts":"2026-03-01T08:00:00Z","credential":{"kind":"card","id":"C"},"result":"granted","direction":"in"}"#,
                "event_id",
            ),
            (
                "anju/v1/FCY/gate/gr-1/door",
                br#"{"event_id":"","ts":"2026-03-01T08:00:00Z","state":"opened"}"#,
                "event_id",
            ),
            (
                "anju/v1/FCY/gate/gr-1/door",
                br#"{"event_id":"x","ts":"2026-03-01T08:00:00Z","state":"ajar"}"#,
                "ajar",
            ),
            ("anju/v1/FCY/gate/gr-1/status", br#"{"online":true}"#, "ts"),
            ("anju/v1/FCY/qr/qr-1/scan", br#"[1,2]"#, "payload"),
        ];
        for (topic, payload, needle) in cases {
            let err = parse_message(&b, topic, payload).unwrap_err().to_string();
            assert!(err.contains(needle), "{topic}: {err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn timestamps_outside_the_window_are_rejected_as_out_of_range() {
        let b = book();
        let now: anju_core::Timestamp = "2026-03-01T08:00:00Z".parse().unwrap();
        let w = anju_core::TsWindow::default();
        let access = |ts: &str| {
            format!(
                r#"{{"event_id":"e","ts":"{ts}","credential":{{"kind":"card","id":"C"}},"result":"granted","direction":"in"}}"#
            )
        };
        let topic = "anju/v1/FCY/gate/gr-1/access";
        for ts in [
            "-262143-01-01T00:00:10Z",
            "9999-12-31T00:00:00Z",
            "2026-03-01T08:06:00Z",
        ] {
            let err = parse_message_at(&b, topic, access(ts).as_bytes(), now, &w)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("ts_out_of_range"), "{ts}: {err}");
        }
        let status = br#"{"ts":"9999-12-31T23:59:59Z","online":true}"#;
        let err =
            parse_message_at(&b, "anju/v1/FCY/gate/gr-1/status", status, now, &w).unwrap_err();
        assert!(matches!(err, Reject::TsOutOfRange(_)), "{err}");
        // A reader uploading yesterday's events after an outage: accepted.
        parse_message_at(
            &b,
            topic,
            access("2026-02-28T08:00:00+08:00").as_bytes(),
            now,
            &w,
        )
        .unwrap();
    }
}
