//! What the cameras' side of the edge hands the worker: camera events and
//! the lives of face tracks, in one ordered channel. Face analysis produces
//! it, the worker (`anju-edge`) consumes it; it lives here, with its
//! producer, so that neither depends on the other's internals.

use anju_core::Event;

/// What the cameras' analysis hands the worker, in order: events
/// (sightings, camera status) and the lives of face tracks, which fusion
/// waits for.
#[derive(Debug, Clone)]
pub enum LocalInput {
    Event(Event),
    TrackOpened {
        camera: String,
        key: String,
        ts: anju_core::Timestamp,
    },
    TrackClosed {
        camera: String,
        key: String,
        ts: anju_core::Timestamp,
    },
    /// The persons the camera gallery can recognise (after each load): the
    /// rules judge misuse by faces only for their households.
    Enrolled(Vec<String>),
    /// The registry as the central store has it now (credentials reported
    /// lost, households moved in or out, watch-list changes): the rules
    /// take its registrations, watch list and credentials.
    Registry(std::sync::Arc<anju_core::Registry>),
}

impl From<Event> for LocalInput {
    fn from(ev: Event) -> Self {
        Self::Event(ev)
    }
}
