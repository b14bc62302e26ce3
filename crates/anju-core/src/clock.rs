//! Time as an injected dependency, so rules and correlation run on simulated
//! time in tests and replay (after moonfire-nvr's `Clocks`).

use crate::Timestamp;
use std::sync::{Arc, Mutex};

pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        chrono::Utc::now()
    }
}

/// A clock that only moves when told to. Clones share the same time.
#[derive(Clone, Debug)]
pub struct SimulatedClock(Arc<Mutex<Timestamp>>);

impl SimulatedClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(Mutex::new(start)))
    }

    /// Moves the clock to `t`; a time earlier than now is ignored (time never
    /// runs backwards).
    pub fn set(&self, t: Timestamp) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if t > *g {
            *g = t;
        }
    }

    pub fn advance(&self, d: chrono::Duration) {
        let mut g = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *g += d;
    }
}

impl Clock for SimulatedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The window around a receiving worker's clock in which a device's
/// timestamp is believed (DESIGN §6a): readers upload what they stored
/// while offline (default: up to 7 days late), and a clock may run a little
/// fast (default: 5 minutes). Anything outside is a dead letter
/// (`ts_out_of_range`); no rule clock is moved by a device's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TsWindow {
    pub past: chrono::Duration,
    pub future: chrono::Duration,
}

impl Default for TsWindow {
    fn default() -> Self {
        Self {
            past: chrono::Duration::days(7),
            future: chrono::Duration::minutes(5),
        }
    }
}

/// A device timestamp outside the [`TsWindow`] around `now`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("ts_out_of_range: {ts} is {how} the worker's clock ({now})")]
pub struct TsOutOfRange {
    pub ts: Timestamp,
    pub now: Timestamp,
    how: &'static str,
}

impl TsWindow {
    /// Whether `ts` lies within the window around `now`. Checked arithmetic
    /// throughout: any `ts` chrono can represent gets an answer, never a
    /// panic.
    ///
    /// # Errors
    /// `ts` too far in the past or in the future.
    pub fn check(&self, ts: Timestamp, now: Timestamp) -> Result<(), TsOutOfRange> {
        let earliest = now.checked_sub_signed(self.past);
        let latest = now.checked_add_signed(self.future);
        let how = if earliest.is_some_and(|e| ts < e) {
            "more than the allowed delay before"
        } else if latest.is_some_and(|l| ts > l) {
            "more than the allowed skew ahead of"
        } else {
            return Ok(());
        };
        Err(TsOutOfRange { ts, now, how })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_window_takes_late_uploads_and_refuses_forged_clocks() {
        let now: Timestamp = "2026-03-01T08:00:00Z".parse().unwrap();
        let w = TsWindow::default();
        let at = |s: &str| s.parse::<Timestamp>().unwrap();
        assert!(w.check(at("2026-02-23T08:00:00Z"), now).is_ok());
        assert!(w.check(at("2026-03-01T08:04:59Z"), now).is_ok());
        let e = w.check(at("9999-12-31T00:00:00Z"), now).unwrap_err();
        assert!(e.to_string().starts_with("ts_out_of_range: "), "{e}");
        assert!(w.check(at("2026-03-01T08:05:01Z"), now).is_err());
        assert!(w.check(at("2026-02-22T07:59:59Z"), now).is_err());
        // The extremes chrono can hold: an answer, not a panic.
        assert!(w.check(Timestamp::MIN_UTC, now).is_err());
        assert!(w.check(Timestamp::MAX_UTC, now).is_err());
        assert!(w.check(now, Timestamp::MIN_UTC).is_err());
        assert!(w.check(now, Timestamp::MAX_UTC).is_err());
        let neg = "-262143-01-01T00:00:10Z".parse::<Timestamp>().unwrap();
        assert!(w.check(neg, now).is_err());
    }
}
