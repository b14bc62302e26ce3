//! How many rejected messages of one device are written one by one: a token
//! bucket per device (issue 12: one device's junk — 3,000 messages made
//! 3,000 rows, 12 MB, and delayed another device's event by 2.8 s). Beyond
//! its bucket a device's rejects are only counted, and one summary dead
//! letter per device says how many were not written. Pure: the caller
//! passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Rejected messages a device may have written at once, then per second.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetterLimit {
    pub burst: u32,
    pub per_second: f64,
}

impl Default for DeadLetterLimit {
    fn default() -> Self {
        Self {
            burst: 20,
            per_second: 1.0,
        }
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    /// Rejects counted but not written since the last summary.
    suppressed: u64,
}

/// Token buckets per device key. Keys of devices the site does not know
/// share one bucket (`unknown-device`), so made-up device names cannot
/// multiply the allowance.
#[derive(Debug, Default)]
pub struct DeadLetterGate {
    limit: DeadLetterLimit,
    buckets: HashMap<String, Bucket>,
}

/// The key of rejects whose topic names no device the site knows.
pub const UNKNOWN_DEVICE: &str = "unknown-device";

impl DeadLetterGate {
    pub fn new(limit: DeadLetterLimit) -> Self {
        Self {
            limit,
            buckets: HashMap::new(),
        }
    }

    /// Whether a reject of `device` is written now; if not, it is counted
    /// for the next [`DeadLetterGate::take_suppressed`].
    pub fn admit(&mut self, device: &str, now: Instant) -> bool {
        let limit = self.limit;
        let b = self
            .buckets
            .entry(device.to_owned())
            .or_insert_with(|| Bucket {
                tokens: f64::from(limit.burst),
                at: now,
                suppressed: 0,
            });
        let dt = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + dt * limit.per_second).min(f64::from(limit.burst));
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            b.suppressed = b.suppressed.saturating_add(1);
            false
        }
    }

    /// The devices with rejects not written since the last call, and how
    /// many; their counters restart. Buckets full again for `idle` are
    /// forgotten (the map stays as small as the set of noisy devices).
    pub fn take_suppressed(&mut self, now: Instant, idle: Duration) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        for (k, b) in &mut self.buckets {
            if b.suppressed > 0 {
                out.push((k.clone(), std::mem::take(&mut b.suppressed)));
            }
        }
        self.buckets
            .retain(|_, b| b.suppressed > 0 || now.saturating_duration_since(b.at) < idle);
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_noisy_device_is_capped_and_others_are_not() {
        let mut g = DeadLetterGate::new(DeadLetterLimit {
            burst: 5,
            per_second: 1.0,
        });
        let t0 = Instant::now();
        let written = (0..3000).filter(|_| g.admit("gr-1", t0)).count();
        assert_eq!(written, 5);
        assert!(g.admit("gr-2", t0), "another device has its own bucket");
        // Two seconds later two more of gr-1's are written.
        let t2 = t0 + Duration::from_secs(2);
        assert!(g.admit("gr-1", t2));
        assert!(g.admit("gr-1", t2));
        assert!(!g.admit("gr-1", t2));
        assert_eq!(
            g.take_suppressed(t2, Duration::from_secs(60)),
            [("gr-1".to_owned(), 2996)]
        );
        assert!(g.take_suppressed(t2, Duration::from_secs(60)).is_empty());
        // Idle buckets are forgotten.
        g.take_suppressed(t2 + Duration::from_secs(120), Duration::from_secs(60));
        assert!(g.buckets.is_empty());
    }
}
