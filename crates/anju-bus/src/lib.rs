//! The device bus of Anju's edge: MQTT v1 (DESIGN §6) between the estate's
//! gate readers and QR scanners and its edge worker.
//!
//! - [`topic`]: the topics, payload validation into [`anju_core::Event`]s
//!   or a dead-letter reason, and the [`topic::DeviceBook`] of the estate's
//!   devices (pure).
//! - [`mqtt`]: broker options ([`MqttConfig`]), the `poll()` loop with its
//!   bounded hand-off and [`LinkStats`], and a publisher for simulators and
//!   tests.
//!
//! It owns the wire and nothing behind it: no store, no rules, no
//! acknowledgements (the worker acks after its commit). It must not block
//! inside the poll loop: publishes are only handed off, into a bounded
//! channel whose backpressure is the broker's.

pub mod mqtt;
pub mod topic;

pub use mqtt::{LinkStats, MqttConfig, DEFAULT_MQTT_URL};
