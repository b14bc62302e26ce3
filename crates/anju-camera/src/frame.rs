//! What every camera source produces, whatever the protocol: decoded
//! [`Frame`]s in a latest-only [`FrameSlot`], the camera's [`CameraHealth`],
//! and the [`CameraHandle`] that holds both. Consumers (face analysis, the
//! edge's health watch) see only these types, never the source behind them.

use anju_core::Timestamp;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// A decoded frame, RGB24, tightly packed.
#[derive(Debug, Clone)]
pub struct Frame {
    pub camera: String,
    /// Number of the decoded frame since the camera task started.
    pub seq: u64,
    pub decoded_at: Timestamp,
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

/// Latest-frame slot: capacity one, the newest frame wins; a frame
/// overwritten before anyone took it is counted as dropped.
#[derive(Debug, Default)]
pub struct FrameSlot {
    frame: Mutex<Option<Arc<Frame>>>,
    notify: Notify,
    pub dropped: AtomicU64,
}

impl FrameSlot {
    pub fn put(&self, f: Arc<Frame>) {
        let old = match self.frame.lock() {
            Ok(mut g) => g.replace(f),
            Err(p) => p.into_inner().replace(f),
        };
        if old.is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.notify.notify_one();
    }

    pub fn try_take(&self) -> Option<Arc<Frame>> {
        match self.frame.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        }
    }

    /// Waits for a frame.
    ///
    /// # Cancel safety
    /// Cancel safe: a frame is only taken when this returns.
    pub async fn take(&self) -> Arc<Frame> {
        loop {
            let notified = self.notify.notified();
            if let Some(f) = self.try_take() {
                return f;
            }
            notified.await;
        }
    }
}

/// Health of one camera, for `device_offline` and `/devices`.
#[derive(Debug, Default)]
pub struct CameraHealth {
    pub frames_decoded: AtomicU64,
    pub frames_sampled: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Sessions (re)established after the first one.
    pub reconnects: AtomicU64,
    pub sessions: AtomicU64,
    pub connection_errors: AtomicU64,
    /// Epoch ms of the last decoded frame, 0 when none yet.
    pub last_frame_ms: AtomicI64,
    pub connected: AtomicBool,
    /// Decoded frames per second (smoothed), as f64 bits.
    fps_bits: AtomicU64,
}

impl CameraHealth {
    pub fn fps(&self) -> f64 {
        f64::from_bits(self.fps_bits.load(Ordering::Relaxed))
    }

    /// Records the decoded frames per second (set by the source).
    pub fn set_fps(&self, fps: f64) {
        self.fps_bits.store(fps.to_bits(), Ordering::Relaxed);
    }

    pub fn last_frame(&self) -> Option<Timestamp> {
        match self.last_frame_ms.load(Ordering::Relaxed) {
            0 => None,
            ms => chrono::DateTime::from_timestamp_millis(ms),
        }
    }

    /// No frame for `after` (or none ever, `after` since `since`).
    pub fn is_offline(&self, now: Timestamp, since: Timestamp, after: Duration) -> bool {
        let last = self.last_frame().unwrap_or(since);
        now.signed_duration_since(last)
            .to_std()
            .is_ok_and(|d| d >= after)
    }
}

/// A running camera: its slot and health.
#[derive(Debug, Clone)]
pub struct CameraHandle {
    pub slot: Arc<FrameSlot>,
    pub health: Arc<CameraHealth>,
}
