//! The seam between a camera and the rest of the edge: a [`CameraSource`]
//! starts pulling frames and hands back a [`CameraHandle`] (latest-frame
//! slot and health). Only RTSP implements it today (module `rtsp`,
//! feature `rtsp`).
//!
//! Another source (a video file, another protocol) would be one more module
//! of this crate: a config type that implements [`CameraSource`], puts RGB24
//! [`crate::Frame`]s into the handle's [`crate::FrameSlot`] and keeps its
//! [`crate::CameraHealth`] counters. What it does not get for free: the site
//! file only accepts `rtsp://` camera URLs (`anju-site`), and the edge
//! (`anju-edge`) builds an RTSP config for every camera device; both would
//! have to choose the source per device.

use crate::frame::CameraHandle;
use tokio_util::sync::CancellationToken;

/// A camera's frames, from wherever they come.
pub trait CameraSource {
    /// Starts the source's tasks (inside a Tokio runtime) and returns at
    /// once; frames and health go into the returned handle until `cancel`
    /// fires.
    ///
    /// # Errors
    /// A configuration the source refuses (a bad URL, credentials inside
    /// it), a decoder or thread that cannot start.
    fn spawn(self, cancel: CancellationToken) -> anyhow::Result<CameraHandle>;
}

/// How a camera's RTP packets travel (`anju edge --rtsp-transport`). Here
/// rather than in the `rtsp` module so that settings parse without the `rtsp`
/// feature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RtspTransport {
    /// Interleaved in the RTSP TCP connection: one connection, passes NAT
    /// and firewalls, no loss (the default).
    #[default]
    Tcp,
    /// Separate RTP/RTCP UDP ports per camera: less latency on a clean LAN,
    /// but lost packets are lost frames and firewalls must let them in.
    Udp,
}

impl std::str::FromStr for RtspTransport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            other => Err(format!("RTSP transport {other:?}: use tcp or udp")),
        }
    }
}
