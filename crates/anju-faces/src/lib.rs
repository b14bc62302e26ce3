//! Faces on camera at Anju's edge: from frames to sightings.
//!
//! - [`tracker`]: face tracks across frames, one decision per passage (pure).
//! - [`strangers`]: the per-estate stranger gallery (incremental clustering,
//!   persisted in the local store).
//! - `analysis` (feature `analysis`): frames → face engine → tracker →
//!   sightings, snapshots and their retention.
//! - [`LocalInput`]: what this side hands the edge worker (events, track
//!   openings and closings), in order.
//!
//! It owns recognising and following faces; it must not decide access or
//! raise alerts (the rules do, in the worker), nor pull frames itself (it
//! takes them from `anju-camera`'s slots, whatever the source). Inference is
//! blocking and runs on the face engine's own thread, never on the runtime.

#[cfg(feature = "analysis")]
pub mod analysis;
pub mod input;
pub mod strangers;
pub mod tracker;

pub use input::LocalInput;
