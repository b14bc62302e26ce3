//! Anju's domain model.
//!
//! This crate owns the types every stage shares: identifiers, the registry
//! (estates, buildings, units, persons, credentials, devices), the events the
//! edge ingests (access, door, status, QR scan, sighting), alerts with their
//! workflow, notices, users and roles, and the [`Clock`] seam that lets pure
//! logic run on simulated time.
//!
//! It must not do I/O: no database, network, files or async runtime. Other
//! crates depend on it; it depends on none of them.

pub mod alert;
pub mod clock;
pub mod event;
pub mod ids;
pub mod registry;
pub mod retention;
pub mod user;

pub use alert::{
    Action, Alert, AlertCode, AlertStatus, CodeInfo, Evidence, GoesTo, Outcome, RuleHome, Severity,
    Subject, Transition, WorkflowError, CATALOGUE,
};
pub use clock::{Clock, SimulatedClock, SystemClock, TsOutOfRange, TsWindow};
pub use event::{
    AccessEvent, AccessResult, CredentialKind, CredentialRef, Direction, DoorEvent, DoorState,
    Event, EventKind, Passage, QrScanEvent, Sighting, StatusEvent,
};
pub use ids::*;
pub use registry::*;
pub use retention::Retention;
pub use user::{Role, User};

/// All timestamps are instants in UTC; wire formats carry RFC 3339 with an
/// offset, and local-time reasoning (reports, "overnight") uses the site's
/// [`chrono_tz::Tz`].
pub type Timestamp = chrono::DateTime<chrono::Utc>;

/// Re-exported so dependants name the same time-zone type.
pub use chrono_tz::Tz;
