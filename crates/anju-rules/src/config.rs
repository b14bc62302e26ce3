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
