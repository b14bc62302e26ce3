//! How long personal data is kept (PIPL: data no longer needed is deleted).
//! The site file's `[retention]` table; every value in days.
//!
//! ```toml
//! [retention]
//! events_days = 200        # access, door, status, QR, sightings, passages
//! strangers_days = 30      # anonymous stranger face templates, after last seen
//! snapshots_days = 7       # best-face snapshot images
//! dead_letters_days = 30   # rejected device messages
//! ```

use serde::{Deserialize, Serialize};

/// Retention periods in days. The defaults are the least the rules need:
/// events cover the longest rule window (vacancy: 180 days) and the
/// analyzer's 200-day warm-up; a stranger template is kept 30 days after it
/// was last seen (the long-term-occupant rule looks 14 days back); a face
/// snapshot a week (evidence for an operator's decision); a rejected
/// device message 30 days.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Retention {
    pub events_days: u32,
    pub strangers_days: u32,
    pub snapshots_days: u32,
    pub dead_letters_days: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            events_days: 200,
            strangers_days: 30,
            snapshots_days: 7,
            dead_letters_days: 30,
        }
    }
}

/// The most days any period may be (about 27 years): keeps the date
/// arithmetic of the cut-offs far from chrono's limits.
pub const MAX_RETENTION_DAYS: u32 = 10_000;

impl Retention {
    /// Checks each period is 1..=[`MAX_RETENTION_DAYS`] days.
    ///
    /// # Errors
    /// The first period out of range, named.
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("events_days", self.events_days),
            ("strangers_days", self.strangers_days),
            ("snapshots_days", self.snapshots_days),
            ("dead_letters_days", self.dead_letters_days),
        ] {
            // Events are kept at least 8 days: longer than the 7 days a
            // reader may upload late, so a redelivered event still finds
            // its stored twin and is not stored again.
            let min = if name == "events_days" { 8 } else { 1 };
            if !(min..=MAX_RETENTION_DAYS).contains(&v) {
                return Err(format!(
                    "[retention] {name} = {v}: must be {min} to {MAX_RETENTION_DAYS} days"
                ));
            }
        }
        Ok(())
    }

    /// The time before which data kept `days` is deleted, at `now`.
    pub fn cutoff(now: crate::Timestamp, days: u32) -> Option<crate::Timestamp> {
        now.checked_sub_signed(chrono::Duration::days(i64::from(days)))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_bounds() {
        let r: Retention = toml::from_str("events_days = 400").unwrap();
        assert_eq!(r.events_days, 400);
        assert_eq!(r.strangers_days, 30);
        assert!(r.validate().is_ok());
        let bad = Retention {
            snapshots_days: 0,
            ..Retention::default()
        };
        assert!(bad.validate().unwrap_err().contains("snapshots_days"));
        assert!(toml::from_str::<Retention>("event_days = 1").is_err());
    }
}
