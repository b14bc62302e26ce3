//! Anju's edge worker (DESIGN §4): the stages of one estate wired together —
//! device events from the bus (`anju-bus`), camera frames (`anju-camera`)
//! and the faces on them (`anju-faces`), the instant rules, and a durable
//! outbox to the central store.
//!
//! - [`worker`]: validate → batch write → ack → QR decision → rules → alerts.
//! - [`outbox`]: local store first, forwarded in order, exactly once by id.
//! - [`edge`]: `anju edge` ([`run_edge`]): the wiring.
//! - [`sim`]: simulated gate readers and QR scanners ([`sim_readers, sim_readers_signed`]).
//!
//! It must not block inside the MQTT poll loop, and it never drops a
//! device event it accepted: events are acknowledged to the broker only
//! after they are committed to the store. It wires the stages; it must not
//! reach into them (topics and payloads stay in `anju-bus`, decoding in
//! `anju-camera`, recognition in `anju-faces`).

pub mod dead_letters;
pub mod edge;
pub mod outbox;
pub mod qr_keys;
pub mod sim;
pub mod worker;

pub use edge::{run_edge, spawn_ingest, start_edge, EdgeHandle, EdgeOptions, IngestHandle};
pub use sim::{sim_readers, sim_readers_signed, SimStats};
pub use worker::{IngestStats, QrDecision, Worker, WorkerConfig};
