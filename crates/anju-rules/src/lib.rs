//! Anju's anomaly engine (DESIGN §5): pure, deterministic rules over the
//! event stream on simulated time, an in-memory alert book with the alert
//! workflow, and the `anju replay` driver.
//!
//! - [`Engine`]: `ingest(&Event)` advances time to the event (firing due
//!   temporal checks) and applies it; `advance_to(ts)` fires what is due.
//!   Both return every alert opened or updated.
//! - [`RulesConfig`]: thresholds with catalogue defaults, per-estate overrides.
//! - [`replay::run`]: JSON Lines events in, JSON Lines alerts out.
//! - [`qr`]: QR pass format and the verifier seam.

pub mod book;
pub mod config;
pub mod engine;
pub mod gate_sim;
mod index;
pub mod qr;
pub mod replay;
pub mod sim;

pub use book::{ActError, AlertBook, Finding};
pub use config::{RulesConfig, Thresholds};
pub use engine::Engine;
pub use replay::{run, LineError, ReplayError, ReplayStats};
