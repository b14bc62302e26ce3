//! Rule thresholds (DESIGN §5 defaults), overridable per estate.

use anju_core::EstateCode;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// The thresholds of every rule. Every field has the catalogue default, so a
/// TOML/JSON table only needs the fields it changes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// Access events and face tracks at one entrance within ± this many
    /// seconds belong together (credential_misuse, tailgating).
    pub correlation_window_s: i64,
    /// After the window, a grant waits at most this many more seconds for
    /// the face tracks at its entrance that are still undecided (a face
    /// that appeared late in the window needs a few frames to be decided).
    pub fusion_wait_s: i64,
    /// unregistered_long_term_occupant: distinct days seen ...
    pub long_term_days: u32,
    /// ... within this many days ...
    pub long_term_window_days: u32,
    /// ... of which at least this many overnight presences.
    pub long_term_overnights: u32,
    /// Overnight = seen at or after this local hour on day D ...
    pub evening_hour: u32,
    /// ... and again before this local hour on day D+1.
    pub morning_hour: u32,
    /// sublet_suspected: every registered occupant unseen this many days ...
    pub sublet_unseen_days: u32,
    /// ... and the unit's credentials used by non-occupants on this many days ...
    pub sublet_misuse_days: u32,
    /// ... within this many days (also the window for a linked long-term stranger).
    pub sublet_window_days: u32,
    /// vacancy_suspected warning (medium).
    pub vacancy_warning_days: u32,
    /// vacancy_suspected violation (high; the national 6-month idle rule).
    pub vacancy_violation_days: u32,
    /// overcrowding_suspected: distinct persons linked to a unit in this many days ...
    pub overcrowding_window_days: u32,
    /// ... exceeding registered members + this margin.
    pub overcrowding_margin: u32,
    /// elderly_no_activity: hours without a sighting or credential use.
    pub elderly_hours: u32,
    /// qr_invalid escalates to medium at this many invalid scans at one device ...
    pub qr_escalate_count: u32,
    /// ... within this many seconds.
    pub qr_escalate_window_s: i64,
    /// access_denied_burst: this many denials at one device ...
    pub denied_burst_count: u32,
    /// ... within this many seconds.
    pub denied_burst_window_s: i64,
    /// door_held_open: a door opened and not closed for more than this.
    pub door_held_open_s: i64,
    /// device_offline: seconds after a status `online=false` (or after the
    /// last heartbeat of a reader that sends heartbeats) without news.
    pub device_offline_s: i64,
    /// A dismissed or false-alarm alert suppresses the same code and subject
    /// for this many days.
    pub quiet_period_days: u32,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            correlation_window_s: 5,
            fusion_wait_s: 10,
            long_term_days: 7,
            long_term_window_days: 14,
            long_term_overnights: 3,
            evening_hour: 20,
            morning_hour: 9,
            sublet_unseen_days: 30,
            sublet_misuse_days: 3,
            sublet_window_days: 30,
            vacancy_warning_days: 60,
            vacancy_violation_days: 180,
            overcrowding_window_days: 30,
            overcrowding_margin: 2,
            elderly_hours: 48,
            qr_escalate_count: 3,
            qr_escalate_window_s: 600,
            denied_burst_count: 5,
            denied_burst_window_s: 120,
            door_held_open_s: 60,
            device_offline_s: 300,
            quiet_period_days: 7,
        }
    }
}

impl Thresholds {
    /// `self` with the thresholds named in `overrides` (a JSON object of
    /// threshold → value, as `PUT /estates/{code}/rules` takes it) replaced,
    /// then checked.
    ///
    /// # Errors
    /// An unknown threshold, a value of the wrong type, or a combination
    /// that cannot work ([`Thresholds::check`]).
    pub fn with_overrides(&self, overrides: &serde_json::Value) -> Result<Thresholds, String> {
        let serde_json::Value::Object(o) = overrides else {
            return Err("rules must be a JSON object of threshold → value".into());
        };
        let mut v = serde_json::to_value(self).map_err(|e| e.to_string())?;
        let Some(base) = v.as_object_mut() else {
            return Err("thresholds are not an object".into());
        };
        for (k, x) in o {
            if !base.contains_key(k) {
                return Err(format!("unknown threshold {k:?}"));
            }
            base.insert(k.clone(), x.clone());
        }
        let t: Thresholds =
            serde_json::from_value(v).map_err(|e| format!("invalid threshold value: {e}"))?;
        t.check()?;
        Ok(t)
    }

    /// Values that cannot work: windows and counts of zero, hours outside a
    /// day, a vacancy violation before its warning, more overnights than
    /// days, windows beyond a year.
    ///
    /// # Errors
    /// The first problem found.
    pub fn check(&self) -> Result<(), String> {
        let pos_s = [
            ("correlation_window_s", self.correlation_window_s),
            ("fusion_wait_s", self.fusion_wait_s),
            ("qr_escalate_window_s", self.qr_escalate_window_s),
            ("denied_burst_window_s", self.denied_burst_window_s),
            ("door_held_open_s", self.door_held_open_s),
            ("device_offline_s", self.device_offline_s),
        ];
        for (k, v) in pos_s {
            if !(1..=86_400).contains(&v) {
                return Err(format!("{k} must be 1 to 86400 seconds, got {v}"));
            }
        }
        let days = [
            ("long_term_days", self.long_term_days),
            ("long_term_window_days", self.long_term_window_days),
            ("sublet_unseen_days", self.sublet_unseen_days),
            ("sublet_misuse_days", self.sublet_misuse_days),
            ("sublet_window_days", self.sublet_window_days),
            ("vacancy_warning_days", self.vacancy_warning_days),
            ("vacancy_violation_days", self.vacancy_violation_days),
            ("overcrowding_window_days", self.overcrowding_window_days),
        ];
        for (k, v) in days {
            if !(1..=366).contains(&v) {
                return Err(format!("{k} must be 1 to 366 days, got {v}"));
            }
        }
        for (k, v) in [
            ("evening_hour", self.evening_hour),
            ("morning_hour", self.morning_hour),
        ] {
            if v > 23 {
                return Err(format!("{k} must be 0 to 23, got {v}"));
            }
        }
        for (k, v) in [
            ("elderly_hours", self.elderly_hours),
            ("qr_escalate_count", self.qr_escalate_count),
            ("denied_burst_count", self.denied_burst_count),
        ] {
            if !(1..=10_000).contains(&v) {
                return Err(format!("{k} must be 1 to 10000, got {v}"));
            }
        }
        if self.quiet_period_days > 366 {
            return Err("quiet_period_days must be 0 to 366".into());
        }
        if self.overcrowding_margin > 100 {
            return Err("overcrowding_margin must be 0 to 100".into());
        }
        if self.vacancy_violation_days < self.vacancy_warning_days {
            return Err("vacancy_violation_days must not be before vacancy_warning_days".into());
        }
        if self.long_term_days > self.long_term_window_days {
            return Err("long_term_days must fit in long_term_window_days".into());
        }
        if self.long_term_overnights > self.long_term_days {
            return Err("long_term_overnights must not exceed long_term_days".into());
        }
        Ok(())
    }
}

/// Engine configuration: default thresholds plus per-estate overrides.
///
/// An estate's override table is a complete [`Thresholds`]: fields it leaves
/// out take the catalogue default (not the value in `defaults`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RulesConfig {
    pub defaults: Thresholds,
    pub estates: HashMap<EstateCode, Thresholds>,
    /// Evidence entries kept per alert (oldest dropped first).
    pub evidence_cap: usize,
}

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            defaults: Thresholds::default(),
            estates: HashMap::new(),
            evidence_cap: 50,
        }
    }
}

impl RulesConfig {
    /// The thresholds that apply to `estate`.
    pub fn for_estate(&self, estate: &str) -> &Thresholds {
        self.estates.get(estate).unwrap_or(&self.defaults)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_config_takes_defaults() {
        let c: RulesConfig = serde_json::from_str(
            r#"{"defaults":{"elderly_hours":24},"estates":{"FCY":{"vacancy_warning_days":30}}}"#,
        )
        .unwrap();
        assert_eq!(c.defaults.elderly_hours, 24);
        assert_eq!(c.defaults.vacancy_warning_days, 60);
        assert_eq!(c.for_estate("FCY").vacancy_warning_days, 30);
        assert_eq!(c.for_estate("X").elderly_hours, 24);
        assert_eq!(c.evidence_cap, 50);
        assert!(serde_json::from_str::<RulesConfig>(r#"{"defaults":{"nope":1}}"#).is_err());
    }
}
