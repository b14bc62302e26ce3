//! Anju's edge worker (DESIGN §4): device events over MQTT, camera streams
//! over RTSP, the instant rules, and a durable outbox to the central store.
//!
//! - [`topic`]: the MQTT v1 topics and payload validation (pure).
//! - [`mqtt`]: broker options, the `poll()` loop and its bounded hand-off.
//! - [`worker`]: validate → batch write → ack → QR decision → rules → alerts.
//! - [`outbox`]: local store first, forwarded in order, exactly once by id.
//! - [`edge`]: `anju edge` ([`run_edge`]).
//! - [`sim`]: simulated gate readers and QR scanners ([`sim_readers`]).
//! - [`tracker`]: face tracks across frames, one decision per passage (pure).
//! - [`strangers`]: the per-estate stranger gallery (incremental clustering).
//! - `analysis` (feature `rtsp`): frames → face engine → tracker → sightings.
//!
//! It must not block inside the MQTT poll loop, and it never drops a
//! device event it accepted: events are acknowledged to the broker only
//! after they are committed to the store.

#[cfg(feature = "rtsp")]
pub mod analysis;
pub mod backoff;
pub mod edge;
pub mod mqtt;
pub mod outbox;
#[cfg(feature = "rtsp")]
pub mod rtsp;
pub mod sim;
pub mod simcam;
pub mod strangers;
pub mod topic;
pub mod tracker;
pub mod worker;

pub use edge::{
    run_edge, spawn_ingest, start_edge, EdgeHandle, EdgeOptions, IngestHandle, RtspTransport,
};
pub use mqtt::{MqttConfig, DEFAULT_MQTT_URL};
pub use sim::{sim_readers, SimStats};
pub use simcam::{sim_camera, SimCamera, SimCameraConfig};
pub use worker::{IngestStats, QrDecision, Worker, WorkerConfig};
