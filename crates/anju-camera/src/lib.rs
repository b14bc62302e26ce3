//! Camera sources of Anju's edge: frames in, health out.
//!
//! - [`frame`]: what every source produces, whatever the protocol — decoded
//!   [`Frame`]s in a latest-only [`FrameSlot`], [`CameraHealth`], a
//!   [`CameraHandle`].
//! - [`source`]: the [`CameraSource`] seam (how a file or another protocol
//!   would be one more module) and [`RtspTransport`].
//! - `rtsp` (feature `rtsp`): retina sessions, libavcodec decoding on a
//!   thread of its own; the only [`CameraSource`] today.
//! - [`simcam`]: the simulated camera (GStreamer's RTSP server as a child
//!   process) for the demo and tests.
//!
//! It owns getting pixels off a camera and nothing after that: no faces,
//! no events, no store, no MQTT. It must not block the runtime (decoding
//! runs on its own thread) nor let a slow consumer hold frames back (the
//! slot keeps only the newest and counts what it overwrote).

pub mod frame;
#[cfg(feature = "rtsp")]
pub mod rtsp;
pub mod simcam;
pub mod source;

pub use frame::{CameraHandle, CameraHealth, Frame, FrameSlot};
pub use simcam::{sim_camera, SimCamera, SimCameraConfig};
pub use source::{CameraSource, RtspTransport};
