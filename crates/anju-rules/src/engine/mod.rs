//! The anomaly engine: pure and deterministic. Time only moves when
//! [`Engine::ingest`] or [`Engine::advance_to`] is called; temporal rules are
//! driven by a heap of due checks, not by scanning on every event.
//!
//! This file keeps time, timers, state and dispatch; the rules live by
//! family: [`fusion`] (credentials ⨝ face tracks: credential_misuse,
//! tailgating, the passages that link identities to units), [`devices`]
//! (doors, QR, denial bursts, device_offline) and [`occupancy`] (vacancy,
//! elderly, long-term strangers, sublet, overcrowding).
//!
//! An engine plays one [`Role`]: at an edge it fuses and raises the instant
//! findings that must answer at the gate; at the centre it raises the
//! occupancy findings over the history from the edges' passages, and
//! [`Engine::accept`]s the edges' findings into its book; in `anju replay`
//! it does both.

mod devices;
mod fusion;
mod occupancy;

use crate::book::{ActError, AlertBook, Finding};
use crate::config::{RulesConfig, Thresholds};
use crate::index::{day_num, kind_ix, Index};
use crate::qr::{PassChecker, QrVerdict, QrVerifier};
use anju_core::alert::{Action, Transition};
use anju_core::registry::FacesDirection;
use anju_core::{
    AccessEvent, AccessResult, Alert, AlertCode, AlertId, CredentialRef, Direction, DoorState,
    Event, EventId, Evidence, Outcome, Passage, Registry, Severity, Sighting, Subject, Timestamp,
    Tz, UserName,
};
use chrono::{Duration, TimeZone, Timelike};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Who {
    Person(u32),
    Stranger(u32),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TimerKind {
    Correlate {
        entrance: u32,
        grant: u64,
    },
    /// The bounded wait for undecided tracks of a grant ran out.
    FusionDeadline {
        entrance: u32,
        grant: u64,
    },
    Vacancy(u32),
    Elderly(u32),
    Device(u32),
    Door {
        device: u32,
        seq: u64,
    },
    Sweep,
}

#[derive(Clone, Copy, Debug)]
struct Timer {
    due: Timestamp,
    /// Strict timers fire only once time has passed `due` (correlation
    /// windows: an event at exactly `due` may still belong to the window).
    strict: bool,
    seq: u64,
    kind: TimerKind,
}

impl PartialEq for Timer {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Timer {}
impl PartialOrd for Timer {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Timer {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.due, self.strict, self.seq).cmp(&(o.due, o.strict, o.seq))
    }
}

/// What a person was last seen doing (for evidence).
#[derive(Clone, Debug, Default)]
struct Seen {
    ts: Option<Timestamp>,
    device: Option<u32>,
    kind: &'static str,
}

#[derive(Debug, Default)]
struct PersonState {
    last: Seen,
    elderly_armed: bool,
    /// Reference time (last activity) the elderly alert fired for.
    elderly_fired_for: Option<Timestamp>,
}

#[derive(Debug, Default)]
struct UnitState {
    last_activity: Option<Timestamp>,
    vacancy_armed: bool,
    /// (reference, level): level 1 = warning raised, 2 = violation raised.
    vacancy: Option<(Timestamp, u8)>,
    /// Distinct persons/strangers linked to the unit, with the last day.
    links: Vec<(Who, i32)>,
    /// Days on which the unit's credentials were used by non-occupants.
    misuse_days: Vec<i32>,
    sublet_latched: bool,
    overcrowd_latched: bool,
}

#[derive(Debug, Default)]
struct DeviceState {
    last_heard: Option<Timestamp>,
    last_status: Option<Timestamp>,
    heartbeating: bool,
    offline_since: Option<Timestamp>,
    offline_fired: bool,
    armed: bool,
    door_open_since: Option<Timestamp>,
    door_seq: u64,
    denials: VecDeque<Timestamp>,
    qr_invalid: VecDeque<Timestamp>,
}

#[derive(Debug)]
struct Grant {
    id: u64,
    ts: Timestamp,
    device: u32,
    event_id: EventId,
    credential: CredentialRef,
    /// The credential's holder, and the holder's unit on the grant's day
    /// (`None`: a visitor pass or a credential the registry does not know).
    holder: Option<u32>,
    unit: Option<u32>,
    direction: Direction,
    /// The window is over and the grant waits for undecided tracks.
    waiting: bool,
    decided: bool,
}

/// A face track at an entrance: announced when it opens (live cameras), with
/// an identity once decided (a sighting), closed when it ends. Replayed
/// sightings are tracks decided and closed at one instant.
#[derive(Debug)]
struct FaceTrack {
    /// The track's key: the sighting's event id.
    key: Option<String>,
    first: Timestamp,
    last: Timestamp,
    open: bool,
    /// `None` while undecided.
    who: Option<Who>,
    /// When the identity was decided (the sighting's time).
    ts: Timestamp,
    dir: Option<Direction>,
    camera: u32,
    event_id: Option<EventId>,
    snapshot: Option<String>,
    score: Option<f32>,
}

impl FaceTrack {
    /// Whether the track was in view at some time within `w` of `t`.
    fn overlaps(&self, t: Timestamp, w: Duration) -> bool {
        self.first <= t + w && (self.open || self.last >= t - w)
    }

    /// Distance from `t` to the track's time in view (0 when `t` is inside).
    fn distance(&self, t: Timestamp) -> Duration {
        if t < self.first {
            self.first - t
        } else if !self.open && t > self.last {
            t - self.last
        } else {
            Duration::zero()
        }
    }
}

#[derive(Debug, Default)]
struct EntranceState {
    grants: VecDeque<Grant>,
    tracks: VecDeque<FaceTrack>,
}

#[derive(Debug, Default)]
struct StrangerState {
    id: String,
    long_term: bool,
}

/// Presence of one stranger at one building.
#[derive(Debug, Default)]
struct Presence {
    days: VecDeque<i32>,
    evenings: VecDeque<i32>,
    mornings: VecDeque<i32>,
    latched: bool,
}

/// Whether the rules reason about `ts`: 1970-01-01 to 9000-01-01 (UTC).
/// From inside that range every duration the rules add or subtract (windows,
/// quiet periods, vacancy thresholds of up to thousands of years) stays
/// within what chrono can represent, so no input-derived time can make the
/// engine's date arithmetic panic. Live inputs are held to a much narrower
/// window at the door ([`anju_core::TsWindow`]).
pub fn in_rule_range(ts: Timestamp) -> bool {
    (0..221_845_392_000).contains(&ts.timestamp())
}

/// Which rules an engine raises (docs/architecture.md, "Which rules run
/// where").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    /// Every rule in one engine, fusion included (`anju replay`, tests).
    #[default]
    All,
    /// An edge worker: fusion and the instant rules
    /// ([`AlertCode::is_instant`]); it emits passages and findings for the
    /// centre ([`Engine::take_passages`], [`Engine::take_findings`]).
    Edge,
    /// The central analyzer: the occupancy rules over the history, fed by
    /// the edges' passages; instant findings come from the edges through
    /// [`Engine::accept`].
    Centre,
}

/// The anomaly engine. See the crate docs.
pub struct Engine {
    role: Role,
    /// Passages judged by fusion (edge role), for the caller to store.
    passages: Vec<Event>,
    /// Findings raised (edge role), for the caller to forward.
    findings: Vec<Finding>,
    #[allow(dead_code)]
    registry: Arc<Registry>,
    tz: Tz,
    config: RulesConfig,
    ix: Index,
    book: AlertBook,
    now: Option<Timestamp>,
    start: Option<Timestamp>,
    timers: BinaryHeap<Reverse<Timer>>,
    seq: u64,
    persons: Vec<PersonState>,
    units: Vec<UnitState>,
    devices: Vec<DeviceState>,
    entrances: Vec<EntranceState>,
    strangers: Vec<StrangerState>,
    stranger_ix: HashMap<String, u32>,
    presence: HashMap<(u32, u32), Presence>,
    qr: Box<dyn QrVerifier>,
    out: Vec<Alert>,
    /// Events ignored for a timestamp outside [`in_rule_range`].
    ignored: u64,
    /// The persons whose faces the cameras can recognise (the gallery), when
    /// the caller says: a credential whose household has no face enrolled
    /// cannot be checked against faces, so an unknown face with it is not
    /// misuse (face is never the only credential). `None`: every household
    /// is assumed enrolled (recorded streams, simulations).
    enrolled: Option<std::collections::HashSet<u32>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("now", &self.now)
            .field("alerts", &self.book.alerts().len())
            .finish_non_exhaustive()
    }
}

fn ev_sighting(s: &FaceTrack, eng: &Engine) -> Evidence {
    let mut e = Evidence::new(s.ts, "sighting");
    e.event_id = s.event_id.clone();
    e.device = eng.ix.devices.get(s.camera as usize).map(|d| d.id.clone());
    e.note = s.score.map(|sc| format!("score {sc:.2}"));
    match s.who {
        None => {}
        Some(Who::Person(p)) => e.person = eng.ix.persons.get(p as usize).map(|p| p.id.clone()),
        Some(Who::Stranger(x)) => {
            e.stranger = eng
                .strangers
                .get(x as usize)
                .map(|s| anju_core::StrangerId::new(s.id.clone()))
        }
    }
    e.snapshot = s.snapshot.clone();
    e
}

impl Engine {
    pub fn new(registry: Arc<Registry>, tz: Tz, config: RulesConfig) -> Self {
        // A recorded stream or a simulation: passes are judged on their
        // window, revocation and reuse, signatures unchecked (a live edge
        // builds its checker from the site's `[qr]` table, failing closed).
        Self::with_qr_verifier(
            registry,
            tz,
            config,
            Box::new(PassChecker::unsigned_allowed()),
        )
    }

    /// As [`Engine::new`], with a custom QR pass verifier.
    pub fn with_qr_verifier(
        registry: Arc<Registry>,
        tz: Tz,
        config: RulesConfig,
        mut qr: Box<dyn QrVerifier>,
    ) -> Self {
        let ix = Index::build(&registry, &config);
        qr.revoke(&registry.qr_revoked);
        let book = AlertBook::new(config.evidence_cap);
        let persons = (0..ix.persons.len())
            .map(|_| PersonState::default())
            .collect();
        let units = (0..ix.units.len()).map(|_| UnitState::default()).collect();
        let devices = (0..ix.devices.len())
            .map(|_| DeviceState::default())
            .collect();
        let entrances = (0..ix.entrances.len())
            .map(|_| EntranceState::default())
            .collect();
        Self {
            role: Role::All,
            passages: Vec::new(),
            findings: Vec::new(),
            registry,
            tz,
            config,
            ix,
            book,
            now: None,
            start: None,
            timers: BinaryHeap::new(),
            seq: 0,
            persons,
            units,
            devices,
            entrances,
            strangers: Vec::new(),
            stranger_ix: HashMap::new(),
            presence: HashMap::new(),
            qr,
            out: Vec::new(),
            ignored: 0,
            enrolled: None,
        }
    }

    /// The persons whose faces are enrolled (the camera gallery, after each
    /// reload). From then on fusion judges misuse only for credentials whose
    /// holder or household has an enrolled face; others pass as their
    /// holder's. Unknown ids are ignored.
    pub fn set_enrolled<'a>(&mut self, persons: impl IntoIterator<Item = &'a str>) {
        self.enrolled = Some(
            persons
                .into_iter()
                .filter_map(|p| self.ix.person_ix.get(p).copied())
                .collect(),
        );
    }

    /// Takes the registrations, watch list and credentials of `registry`
    /// (written through the API or re-imported since the engine started),
    /// and each estate's rule thresholds set through the API, keeping every
    /// rule's state: a card reported lost is blocked from the next event on,
    /// without a restart. Entrances and devices added since are taken too
    /// (a moved device is updated); estates stay as they were built.
    ///
    /// Returns the estates whose stored thresholds did not check (they keep
    /// the site's), for the caller to log.
    pub fn reload_registry(&mut self, registry: Arc<Registry>) -> Vec<String> {
        self.ix.reload_people(&registry, &self.config);
        let problems = self.ix.apply_rules(&registry, &self.config);
        self.qr.revoke(&registry.qr_revoked);
        while self.persons.len() < self.ix.persons.len() {
            self.persons.push(PersonState::default());
        }
        while self.units.len() < self.ix.units.len() {
            self.units.push(UnitState::default());
        }
        while self.devices.len() < self.ix.devices.len() {
            self.devices.push(DeviceState::default());
        }
        while self.entrances.len() < self.ix.entrances.len() {
            self.entrances.push(EntranceState::default());
        }
        self.registry = registry;
        problems
    }

    /// The engine in `role` (the default is [`Role::All`]); set before the
    /// first event.
    #[must_use]
    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Passages judged since the last call (edge role; empty otherwise):
    /// events for the caller to store and forward to the centre.
    pub fn take_passages(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.passages)
    }

    /// Findings raised since the last call (edge role; empty otherwise), for
    /// the caller to forward to the centre, which owns the alerts.
    pub fn take_findings(&mut self) -> Vec<Finding> {
        std::mem::take(&mut self.findings)
    }

    /// A finding raised elsewhere (an edge's, forwarded): into the book
    /// (opened, or attached to the active alert of its code and subject; a
    /// quiet period holds). Does not move the engine's clock.
    pub fn accept(&mut self, f: Finding) -> Vec<Alert> {
        if !in_rule_range(f.at) {
            self.ignored += 1;
            return Vec::new();
        }
        if let Some(a) = self.book.raise(f) {
            self.out.push(a);
        }
        std::mem::take(&mut self.out)
    }

    /// A face track opened at `camera` (live cameras): grants at its entrance
    /// wait for its decision or its end, within the bounded fusion wait.
    pub fn track_opened(&mut self, camera: &str, key: &str, ts: Timestamp) -> Vec<Alert> {
        if !in_rule_range(ts) {
            self.ignored += 1;
            return Vec::new();
        }
        self.advance_inner(ts);
        self.open_track(camera, key, ts);
        std::mem::take(&mut self.out)
    }

    /// A face track at `camera` ended (decided or not).
    pub fn track_closed(&mut self, camera: &str, key: &str, ts: Timestamp) -> Vec<Alert> {
        if !in_rule_range(ts) {
            self.ignored += 1;
            return Vec::new();
        }
        self.advance_inner(ts);
        self.close_track(camera, key, ts);
        std::mem::take(&mut self.out)
    }

    /// When the next check is due (a grant's window, a door, a device, a
    /// temporal rule), for a live caller that advances on the wall clock.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.timers.peek().map(|Reverse(t)| t.due)
    }

    /// The engine's current (simulated) time: the latest time it was
    /// advanced to.
    pub fn now(&self) -> Option<Timestamp> {
        self.now
    }

    /// Every alert in the book, by id (id = index + 1).
    pub fn alerts(&self) -> &[Alert] {
        self.book.alerts()
    }

    pub fn alert(&self, id: AlertId) -> Option<&Alert> {
        self.book.get(id)
    }

    /// The audit trail of workflow transitions.
    pub fn transitions(&self) -> &[Transition] {
        self.book.transitions()
    }

    /// Workflow action on an alert (DESIGN §5): ack, dispatch, resolve (with
    /// an outcome), dismiss (with a reason). A dismissal or a false alarm
    /// suppresses the same code and subject for the estate's quiet period.
    pub fn act(
        &mut self,
        id: AlertId,
        action: Action,
        by: &UserName,
        reason: Option<&str>,
        outcome: Option<Outcome>,
        at: Timestamp,
    ) -> Result<Alert, ActError> {
        let estate = self
            .book
            .get(id)
            .ok_or(ActError::NotFound(id))?
            .estate
            .clone();
        let days = self.config.for_estate(estate.as_str()).quiet_period_days;
        self.book.act(
            id,
            action,
            by,
            reason,
            outcome,
            at,
            Duration::days(i64::from(days)),
        )
    }

    /// Advances time to `ev`'s timestamp (firing due checks), then applies
    /// the event. Returns every alert opened or updated, in order. An event
    /// dated outside [`in_rule_range`] is ignored and counted
    /// ([`Engine::ignored`]): the rules' date arithmetic stays in range.
    pub fn ingest(&mut self, ev: &Event) -> Vec<Alert> {
        let ts = ev.ts();
        if !in_rule_range(ts) {
            self.ignored += 1;
            return Vec::new();
        }
        self.advance_inner(ts);
        self.apply(ev);
        std::mem::take(&mut self.out)
    }

    /// A live event received at the receiver's clock `now` (an edge
    /// worker, the central analyzer): time advances to the event's
    /// timestamp or to `now`, whichever is earlier, so a device's clock
    /// never moves the rules' clock (DESIGN §6a). Otherwise as
    /// [`Engine::ingest`].
    pub fn ingest_at(&mut self, ev: &Event, now: Timestamp) -> Vec<Alert> {
        let ts = ev.ts();
        if !in_rule_range(ts) || !in_rule_range(now) {
            self.ignored += 1;
            return Vec::new();
        }
        self.advance_inner(ts.min(now));
        self.apply(ev);
        std::mem::take(&mut self.out)
    }

    /// Events ignored for a timestamp outside [`in_rule_range`].
    pub fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Fires every check due at or before `now`. Time never runs backwards;
    /// a `now` outside [`in_rule_range`] is ignored.
    pub fn advance_to(&mut self, now: Timestamp) -> Vec<Alert> {
        if !in_rule_range(now) {
            self.ignored += 1;
            return Vec::new();
        }
        self.advance_inner(now);
        std::mem::take(&mut self.out)
    }

    /// Decides every pending correlation (access events still waiting for
    /// face tracks), without moving time: call at the end of a recorded
    /// stream, when no more tracks can arrive.
    pub fn flush(&mut self) -> Vec<Alert> {
        let mut pending: Vec<Timer> = Vec::new();
        let mut rest = BinaryHeap::new();
        while let Some(Reverse(t)) = self.timers.pop() {
            if matches!(
                t.kind,
                TimerKind::Correlate { .. } | TimerKind::FusionDeadline { .. }
            ) {
                pending.push(t);
            } else {
                rest.push(Reverse(t));
            }
        }
        self.timers = rest;
        pending.sort();
        for t in pending {
            if let TimerKind::Correlate { entrance, grant }
            | TimerKind::FusionDeadline { entrance, grant } = t.kind
            {
                self.decide_grant(entrance, grant);
            }
        }
        std::mem::take(&mut self.out)
    }

    // ---------------------------------------------------------------- time

    fn push_timer(&mut self, due: Timestamp, strict: bool, kind: TimerKind) {
        self.seq += 1;
        self.timers.push(Reverse(Timer {
            due,
            strict,
            seq: self.seq,
            kind,
        }));
    }

    fn local(&self, ts: Timestamp) -> (i32, u32) {
        let l = ts.with_timezone(&self.tz);
        (day_num(l.date_naive()), l.hour())
    }

    fn next_local_midnight(&self, ts: Timestamp) -> Timestamp {
        let l = ts.with_timezone(&self.tz);
        let mut d = l.date_naive();
        for _ in 0..3 {
            d = d.succ_opt().unwrap_or(d);
            if let Some(naive) = d.and_hms_opt(0, 0, 0) {
                if let Some(t) = self.tz.from_local_datetime(&naive).earliest() {
                    if t.to_utc() > ts {
                        return t.to_utc();
                    }
                }
                // A DST gap at midnight: an hour later exists.
                if let Some(t) = self
                    .tz
                    .from_local_datetime(&(naive + Duration::hours(1)))
                    .earliest()
                {
                    if t.to_utc() > ts {
                        return t.to_utc();
                    }
                }
            }
        }
        ts + Duration::days(1)
    }

    fn begin(&mut self, t: Timestamp) {
        self.start = Some(t);
        self.now = Some(t);
        if !self.occupancy_rules() {
            return;
        }
        for u in 0..self.units.len() {
            if !self.ix.units[u].rows.is_empty() {
                self.units[u].vacancy_armed = true;
                self.push_timer(t, false, TimerKind::Vacancy(u as u32));
            }
        }
        for p in 0..self.ix.persons.len() {
            if self.ix.persons[p].rows.iter().any(|r| r.lives_alone) {
                self.persons[p].elderly_armed = true;
                self.push_timer(t, false, TimerKind::Elderly(p as u32));
            }
        }
        let m = self.next_local_midnight(t);
        self.push_timer(m, false, TimerKind::Sweep);
    }

    fn advance_inner(&mut self, now: Timestamp) {
        if self.start.is_none() {
            self.begin(now);
        }
        while let Some(Reverse(top)) = self.timers.peek() {
            let due_now = top.due < now || (top.due == now && !top.strict);
            if !due_now {
                break;
            }
            let Some(Reverse(t)) = self.timers.pop() else {
                break;
            };
            if self.now.is_none_or(|n| t.due > n) {
                self.now = Some(t.due);
            }
            self.fire(t);
        }
        if self.now.is_none_or(|n| now > n) {
            self.now = Some(now);
        }
    }

    fn fire(&mut self, t: Timer) {
        match t.kind {
            TimerKind::Correlate { entrance, grant } => self.window_over(entrance, grant),
            TimerKind::FusionDeadline { entrance, grant } => self.decide_grant(entrance, grant),
            TimerKind::Vacancy(u) => self.check_vacancy(u),
            TimerKind::Elderly(p) => self.check_elderly(p),
            TimerKind::Device(d) => self.check_device(d),
            TimerKind::Door { device, seq } => self.check_door(device, seq),
            TimerKind::Sweep => self.sweep(),
        }
    }

    fn now_or(&self, t: Timestamp) -> Timestamp {
        self.now.unwrap_or(t)
    }

    /// Whether this engine fuses credentials with faces (not the centre).
    fn fuses(&self) -> bool {
        self.role != Role::Centre
    }

    /// Whether this engine keeps the occupancy rules (not an edge).
    fn occupancy_rules(&self) -> bool {
        self.role != Role::Edge
    }

    fn raise(&mut self, f: Finding) {
        match self.role {
            Role::Edge if !f.code.is_instant() => return,
            Role::Centre if f.code.is_instant() => return,
            Role::Edge => self.findings.push(f.clone()),
            _ => {}
        }
        if let Some(a) = self.book.raise(f) {
            self.out.push(a);
        }
    }

    fn th_estate(&self, estate: u32) -> &Thresholds {
        self.ix.th(estate)
    }

    // ------------------------------------------------------------ events

    fn apply(&mut self, ev: &Event) {
        let dev = self.ix.device_ix.get(ev.device().as_str()).copied();
        if let Event::Passage { body, .. } = ev {
            // Derived at an edge: the centre's occupancy rules take it as
            // the edge judged it; an engine that fuses judged it itself.
            if let (Some(d), Role::Centre) = (dev, self.role) {
                self.apply_passage(d, body);
            }
            return;
        }
        if let Some(d) = dev {
            self.heard(d, ev);
        }
        match ev {
            Event::Passage { .. } => {}
            Event::Sighting { estate, body } => self.on_sighting(dev, estate.as_ref(), body),
            Event::Access { device, body, .. } => {
                if let Some(d) = dev {
                    self.on_access(d, device, body);
                }
            }
            Event::Door { body, .. } => {
                if let Some(d) = dev {
                    self.on_door(d, body);
                }
            }
            Event::Status { .. } => {}
            Event::QrScan { body, .. } => {
                if let Some(d) = dev {
                    self.on_qr(d, body);
                }
            }
        }
    }

    fn device_finding(
        &self,
        d: u32,
        code: AlertCode,
        severity: Severity,
        at: Timestamp,
    ) -> Finding {
        let info = &self.ix.devices[d as usize];
        let building = info
            .entrance
            .and_then(|e| self.ix.entrances[e as usize].building)
            .map(|b| self.ix.buildings[b as usize].code.clone());
        Finding {
            code,
            severity,
            estate: self.ix.estates[info.estate as usize].code.clone(),
            building,
            unit: None,
            subject: Subject::Device(info.id.clone()),
            at,
            evidence: Vec::new(),
        }
    }

    fn unit_finding(
        &self,
        u: u32,
        code: AlertCode,
        severity: Severity,
        subject: Subject,
        at: Timestamp,
    ) -> Finding {
        let info = &self.ix.units[u as usize];
        Finding {
            code,
            severity,
            estate: info.key.estate.clone(),
            building: Some(info.key.building.clone()),
            unit: Some(info.key.unit.clone()),
            subject,
            at,
            evidence: Vec::new(),
        }
    }
    fn intern_stranger(&mut self, s: &str) -> u32 {
        if let Some(x) = self.stranger_ix.get(s) {
            return *x;
        }
        self.strangers.push(StrangerState {
            id: s.to_owned(),
            long_term: false,
        });
        let x = (self.strangers.len() - 1) as u32;
        self.stranger_ix.insert(s.to_owned(), x);
        x
    }

    fn ix_person(&mut self, p: &anju_core::PersonId) -> u32 {
        let i = self.ix.person(p);
        while self.persons.len() < self.ix.persons.len() {
            self.persons.push(PersonState::default());
        }
        i
    }
}
