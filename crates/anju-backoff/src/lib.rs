//! Capped exponential backoff with jitter, shared by every retry loop of the
//! edge: camera sessions (`anju-camera`), the MQTT connection (`anju-bus`),
//! store retries and the outbox forwarder (`anju-edge`). A crate of its own
//! because those stages do not depend on each other, and `anju-core` (the
//! one crate below them all) must not touch the async runtime.
//!
//! It owns the delay schedule and the cancellable wait, and
//! [`supervise`], which restarts a failed long-running task on that
//! schedule; it must not know what is being retried nor decide when to
//! give up.

mod supervise;
pub use supervise::{panic_text, supervise, TaskHealth, Tasks};

use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Capped exponential backoff with "equal jitter": each delay is half the
/// current step plus a random part of the other half, so that many workers
/// that lost the same peer do not come back in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
    seed: u64,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32);
        Self {
            base,
            cap,
            attempt: 0,
            seed: seed | 1,
        }
    }

    /// The default for network peers: 200 ms doubling up to 30 s.
    pub fn network() -> Self {
        Self::new(Duration::from_millis(200), Duration::from_secs(30))
    }

    fn rand(&mut self) -> u64 {
        // xorshift64*: plenty for jitter.
        let mut x = self.seed;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.seed = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The next delay; grows until the cap.
    pub fn next_delay(&mut self) -> Duration {
        let step = self
            .base
            .saturating_mul(1u32 << self.attempt.min(16))
            .min(self.cap);
        self.attempt = self.attempt.saturating_add(1);
        let half = step / 2;
        let jitter_ms = half.as_millis() as u64;
        let extra = if jitter_ms == 0 {
            0
        } else {
            self.rand() % (jitter_ms + 1)
        };
        half + Duration::from_millis(extra)
    }

    /// Back to the first step (after a success).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Sleeps the next delay; `false` when cancelled meanwhile.
    pub async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        let d = self.next_delay();
        tokio::select! {
            biased;
            _ = cancel.cancelled() => false,
            _ = tokio::time::sleep(d) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_is_capped() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));
        let mut last = Duration::ZERO;
        for i in 0..20 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(2), "{i}: {d:?}");
            if i < 3 {
                assert!(d >= Duration::from_millis(50) * (1 << i), "{i}: {d:?}");
            }
            last = d;
        }
        assert!(last >= Duration::from_secs(1));
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
