//! The anomaly engine: pure and deterministic. Time only moves when
//! [`Engine::ingest`] or [`Engine::advance_to`] is called; temporal rules are
//! driven by a heap of due checks, not by scanning on every event.

use crate::book::{ActError, AlertBook, Finding};
use crate::config::{RulesConfig, Thresholds};
use crate::index::{day_num, kind_ix, Index};
use crate::qr::{PassChecker, QrVerdict, QrVerifier};
use anju_core::alert::{Action, Transition};
use anju_core::registry::FacesDirection;
use anju_core::{
    AccessEvent, AccessResult, Alert, AlertCode, AlertId, CredentialRef, Direction, DoorState,
    Event, EventId, Evidence, Outcome, Registry, Severity, Sighting, Subject, Timestamp, Tz,
    UserName,
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
    Correlate { entrance: u32, grant: u64 },
    Vacancy(u32),
    Elderly(u32),
    Device(u32),
    Door { device: u32, seq: u64 },
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
    cred: Option<u32>,
    direction: Direction,
}

#[derive(Debug)]
struct FaceTrack {
    ts: Timestamp,
    who: Who,
    dir: Option<Direction>,
    camera: u32,
    event_id: Option<EventId>,
    snapshot: Option<String>,
}

#[derive(Debug, Default)]
struct EntranceState {
    grants: VecDeque<Grant>,
    faces: VecDeque<FaceTrack>,
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

/// The anomaly engine. See the crate docs.
pub struct Engine {
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
    match s.who {
        Who::Person(p) => e.person = eng.ix.persons.get(p as usize).map(|p| p.id.clone()),
        Who::Stranger(x) => {
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
        Self::with_qr_verifier(registry, tz, config, Box::new(PassChecker::new()))
    }

    /// As [`Engine::new`], with a custom QR pass verifier.
    pub fn with_qr_verifier(
        registry: Arc<Registry>,
        tz: Tz,
        config: RulesConfig,
        qr: Box<dyn QrVerifier>,
    ) -> Self {
        let ix = Index::build(&registry, &config);
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
        }
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
    /// the event. Returns every alert opened or updated, in order.
    pub fn ingest(&mut self, ev: &Event) -> Vec<Alert> {
        let ts = ev.ts();
        self.advance_inner(ts);
        self.apply(ev);
        std::mem::take(&mut self.out)
    }

    /// Fires every check due at or before `now`. Time never runs backwards.
    pub fn advance_to(&mut self, now: Timestamp) -> Vec<Alert> {
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
            if matches!(t.kind, TimerKind::Correlate { .. }) {
                pending.push(t);
            } else {
                rest.push(Reverse(t));
            }
        }
        self.timers = rest;
        pending.sort();
        for t in pending {
            if let TimerKind::Correlate { entrance, grant } = t.kind {
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
            TimerKind::Correlate { entrance, grant } => self.decide_grant(entrance, grant),
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

    fn raise(&mut self, f: Finding) {
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
        if let Some(d) = dev {
            self.heard(d, ev);
        }
        match ev {
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

    /// Device liveness bookkeeping for device_offline.
    fn heard(&mut self, d: u32, ev: &Event) {
        let ts = ev.ts();
        let window = self
            .th_estate(self.ix.devices[d as usize].estate)
            .device_offline_s;
        let st = &mut self.devices[d as usize];
        st.last_heard = Some(ts);
        let mut back_online = true;
        if let Event::Status { body, .. } = ev {
            if body.online {
                if st
                    .last_status
                    .is_some_and(|p| ts - p <= Duration::seconds(window * 2))
                {
                    st.heartbeating = true;
                }
                st.last_status = Some(ts);
            } else {
                back_online = false;
                if st.offline_since.is_none() {
                    st.offline_since = Some(ts);
                }
            }
        }
        if back_online {
            st.offline_since = None;
            st.offline_fired = false;
        }
        let wants_timer = st.offline_since.is_some() || st.heartbeating;
        if wants_timer && !st.armed {
            st.armed = true;
            let due = ts + Duration::seconds(window);
            self.push_timer(due, true, TimerKind::Device(d));
        }
    }

    fn check_device(&mut self, d: u32) {
        let now = self.now_or(chrono::DateTime::UNIX_EPOCH);
        let window = Duration::seconds(
            self.th_estate(self.ix.devices[d as usize].estate)
                .device_offline_s,
        );
        let st = &mut self.devices[d as usize];
        st.armed = false;
        let (since, what) = match (st.offline_since, st.last_heard) {
            (Some(t), _) => (t, "reported offline"),
            (None, Some(t)) if st.heartbeating => (t, "no heartbeat"),
            _ => return,
        };
        let due = since + window;
        // A strict timer pops only once time has passed `due`.
        if now < due {
            st.armed = true;
            self.push_timer(due, true, TimerKind::Device(d));
            return;
        }
        if st.offline_fired {
            return;
        }
        st.offline_fired = true;
        let last = st.last_heard;
        let mut f = self.device_finding(d, AlertCode::DeviceOffline, Severity::Medium, now);
        let mut e = Evidence::new(now, "status");
        e.device = Some(self.ix.devices[d as usize].id.clone());
        e.note = Some(format!(
            "{what} since {}; last heard {}",
            since.to_rfc3339(),
            last.map(|t| t.to_rfc3339()).unwrap_or_default()
        ));
        f.evidence.push(e);
        self.raise(f);
    }

    fn on_door(&mut self, d: u32, body: &anju_core::DoorEvent) {
        let held = self
            .th_estate(self.ix.devices[d as usize].estate)
            .door_held_open_s;
        let mut e = Evidence::new(body.ts, "door");
        e.event_id = Some(body.event_id.clone());
        e.device = Some(self.ix.devices[d as usize].id.clone());
        e.note = Some(format!("door {}", body.state.as_str()));
        match body.state {
            DoorState::Opened => {
                let st = &mut self.devices[d as usize];
                if st.door_open_since.is_none() {
                    st.door_open_since = Some(body.ts);
                    st.door_seq += 1;
                    let seq = st.door_seq;
                    self.push_timer(
                        body.ts + Duration::seconds(held),
                        true,
                        TimerKind::Door { device: d, seq },
                    );
                }
            }
            DoorState::Closed => {
                let st = &mut self.devices[d as usize];
                st.door_open_since = None;
                st.door_seq += 1;
            }
            DoorState::Forced => {
                let mut f = self.device_finding(d, AlertCode::DoorForced, Severity::High, body.ts);
                f.evidence.push(e);
                self.raise(f);
            }
            DoorState::HeldOpen => {
                let mut f =
                    self.device_finding(d, AlertCode::DoorHeldOpen, Severity::Medium, body.ts);
                f.evidence.push(e);
                self.raise(f);
            }
        }
    }

    fn check_door(&mut self, d: u32, seq: u64) {
        let st = &self.devices[d as usize];
        if st.door_seq != seq {
            return;
        }
        let Some(since) = st.door_open_since else {
            return;
        };
        let now = self.now_or(since);
        let mut f = self.device_finding(d, AlertCode::DoorHeldOpen, Severity::Medium, now);
        let mut e = Evidence::new(since, "door");
        e.device = Some(self.ix.devices[d as usize].id.clone());
        e.note = Some(format!("opened at {} and not closed", since.to_rfc3339()));
        f.evidence.push(e);
        self.raise(f);
    }

    fn on_qr(&mut self, d: u32, body: &anju_core::QrScanEvent) {
        let verdict = self.qr.verify(&body.code, body.ts);
        let QrVerdict::Invalid(reason) = verdict else {
            return;
        };
        let th = self.th_estate(self.ix.devices[d as usize].estate);
        let (win, count) = (
            Duration::seconds(th.qr_escalate_window_s),
            th.qr_escalate_count as usize,
        );
        let st = &mut self.devices[d as usize];
        st.qr_invalid.push_back(body.ts);
        while st.qr_invalid.front().is_some_and(|t| *t < body.ts - win) {
            st.qr_invalid.pop_front();
        }
        let n = st.qr_invalid.len();
        let sev = if n >= count {
            Severity::Medium
        } else {
            Severity::Low
        };
        let mut f = self.device_finding(d, AlertCode::QrInvalid, sev, body.ts);
        let mut e = Evidence::new(body.ts, "qr_scan");
        e.event_id = Some(body.event_id.clone());
        e.device = Some(self.ix.devices[d as usize].id.clone());
        e.note = Some(format!("{} ({n} invalid in window)", reason.as_str()));
        f.evidence.push(e);
        self.raise(f);
    }

    fn on_access(&mut self, d: u32, device: &anju_core::DeviceId, body: &AccessEvent) {
        match body.result {
            AccessResult::Denied => {
                let th = self.th_estate(self.ix.devices[d as usize].estate);
                let (win, count) = (
                    Duration::seconds(th.denied_burst_window_s),
                    th.denied_burst_count as usize,
                );
                let st = &mut self.devices[d as usize];
                st.denials.push_back(body.ts);
                while st.denials.front().is_some_and(|t| *t < body.ts - win) {
                    st.denials.pop_front();
                }
                let n = st.denials.len();
                if n >= count {
                    let mut f = self.device_finding(
                        d,
                        AlertCode::AccessDeniedBurst,
                        Severity::Medium,
                        body.ts,
                    );
                    let mut e = Evidence::new(body.ts, "access");
                    e.event_id = Some(body.event_id.clone());
                    e.device = Some(device.clone());
                    e.credential = Some(body.credential.id.clone());
                    e.note = Some(format!(
                        "denied ({}){}; {n} denials within {} s",
                        body.credential.kind.as_str(),
                        body.reason
                            .as_deref()
                            .map(|r| format!(": {r}"))
                            .unwrap_or_default(),
                        win.num_seconds()
                    ));
                    f.evidence.push(e);
                    self.raise(f);
                }
            }
            AccessResult::Granted => {
                let cred = self.ix.cred_ix[kind_ix(body.credential.kind)]
                    .get(body.credential.id.as_str())
                    .copied();
                let Some(entrance) = self.ix.devices[d as usize].entrance else {
                    // Not correlatable: credit the holder directly.
                    if let Some(c) = cred {
                        let p = self.ix.creds[c as usize].person;
                        self.activity(p, body.ts, Some(d), "access");
                    }
                    return;
                };
                let w = self
                    .th_estate(self.ix.devices[d as usize].estate)
                    .correlation_window_s;
                self.seq += 1;
                let id = self.seq;
                self.entrances[entrance as usize].grants.push_back(Grant {
                    id,
                    ts: body.ts,
                    device: d,
                    event_id: body.event_id.clone(),
                    credential: body.credential.clone(),
                    cred,
                    direction: body.direction,
                });
                self.push_timer(
                    body.ts + Duration::seconds(w),
                    true,
                    TimerKind::Correlate {
                        entrance,
                        grant: id,
                    },
                );
                self.prune_entrance(entrance, body.ts, w);
            }
        }
    }

    fn prune_entrance(&mut self, e: u32, now: Timestamp, w: i64) {
        let horizon = now - Duration::seconds(3 * w + 1);
        let st = &mut self.entrances[e as usize];
        while st.faces.front().is_some_and(|f| f.ts < horizon) {
            st.faces.pop_front();
        }
        while st.grants.front().is_some_and(|g| g.ts < horizon) {
            // Undecided grants here only when time jumped; they are decided
            // from their timers, which find them gone and do nothing.
            st.grants.pop_front();
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

    fn on_sighting(
        &mut self,
        cam: Option<u32>,
        estate: Option<&anju_core::EstateCode>,
        s: &Sighting,
    ) {
        let who = if let Some(p) = &s.person {
            Who::Person(self.ix_person(p))
        } else if let Some(x) = &s.stranger {
            Who::Stranger(self.intern_stranger(x.as_str()))
        } else {
            return;
        };
        if let Who::Person(p) = who {
            self.activity(p, s.ts, cam, "sighting");
            if self.ix.persons[p as usize].watch {
                let (estate, building) = match cam {
                    Some(c) => {
                        let info = &self.ix.devices[c as usize];
                        (
                            self.ix.estates[info.estate as usize].code.clone(),
                            info.entrance
                                .and_then(|e| self.ix.entrances[e as usize].building)
                                .map(|b| self.ix.buildings[b as usize].code.clone()),
                        )
                    }
                    None => (estate.cloned().unwrap_or_else(|| "".into()), None),
                };
                let mut e = Evidence::new(s.ts, "sighting");
                e.event_id = s.event_id.clone();
                e.device = Some(s.camera.clone());
                e.person = s.person.clone();
                e.snapshot = s.snapshot.clone();
                e.note = s.score.map(|sc| format!("score {sc:.2}"));
                self.raise(Finding {
                    code: AlertCode::WatchlistHit,
                    severity: Severity::Critical,
                    estate,
                    building,
                    unit: None,
                    subject: Subject::Person(self.ix.persons[p as usize].id.clone()),
                    at: s.ts,
                    evidence: vec![e],
                });
            }
        }
        let Some(c) = cam else { return };
        let info = &self.ix.devices[c as usize];
        let Some(entrance) = info.entrance else {
            return;
        };
        let dir = s.direction.or(match info.faces {
            Some(FacesDirection::In) => Some(Direction::In),
            Some(FacesDirection::Out) => Some(Direction::Out),
            _ => None,
        });
        let w = self.th_estate(info.estate).correlation_window_s;
        let track = FaceTrack {
            ts: s.ts,
            who,
            dir,
            camera: c,
            event_id: s.event_id.clone(),
            snapshot: s.snapshot.clone(),
        };
        if let (Who::Stranger(x), Some(b)) = (who, self.ix.entrances[entrance as usize].building) {
            let ev = ev_sighting(&track, self);
            self.stranger_presence(x, b, s.ts, ev, self.ix.devices[c as usize].estate);
        }
        self.entrances[entrance as usize].faces.push_back(track);
        self.prune_entrance(entrance, s.ts, w);
    }

    fn ix_person(&mut self, p: &anju_core::PersonId) -> u32 {
        let i = self.ix.person(p);
        while self.persons.len() < self.ix.persons.len() {
            self.persons.push(PersonState::default());
        }
        i
    }

    /// A registered person was active (sighting or own credential used).
    fn activity(&mut self, p: u32, ts: Timestamp, device: Option<u32>, kind: &'static str) {
        let st = &mut self.persons[p as usize];
        if st.last.ts.is_none_or(|t| ts >= t) {
            st.last = Seen {
                ts: Some(ts),
                device,
                kind,
            };
        }
        let (day, _) = self.local(ts);
        if !self.persons[p as usize].elderly_armed {
            if let Some(row) = self.ix.lives_alone_on(p, day).copied() {
                self.persons[p as usize].elderly_armed = true;
                let hours = self
                    .th_estate(self.ix.units[row.unit as usize].estate)
                    .elderly_hours;
                self.push_timer(
                    ts + Duration::hours(i64::from(hours)),
                    false,
                    TimerKind::Elderly(p),
                );
            }
        }
        let Some(u) = self.ix.person_unit_on(p, day) else {
            return;
        };
        let ust = &mut self.units[u as usize];
        if ust.last_activity.is_none_or(|t| ts > t) {
            ust.last_activity = Some(ts);
        }
        link(&mut ust.links, Who::Person(p), day);
        if !ust.vacancy_armed {
            ust.vacancy_armed = true;
            let days = self
                .th_estate(self.ix.units[u as usize].estate)
                .vacancy_warning_days;
            self.push_timer(
                ts + Duration::days(i64::from(days)),
                false,
                TimerKind::Vacancy(u),
            );
        }
    }

    // ------------------------------------------------------- correlation

    fn decide_grant(&mut self, entrance: u32, grant: u64) {
        let est = &self.entrances[entrance as usize];
        let Some(g) = est.grants.iter().find(|g| g.id == grant) else {
            return;
        };
        let w = Duration::seconds(
            self.th_estate(self.ix.devices[g.device as usize].estate)
                .correlation_window_s,
        );
        let (day, _) = self.local(g.ts);
        let holder = g.cred.map(|c| self.ix.creds[c as usize].person);
        let unit = holder.and_then(|p| self.ix.person_unit_on(p, day));
        let (gts, gdev, gdir) = (g.ts, g.device, g.direction);
        let access_ev = {
            let mut e = Evidence::new(g.ts, "access");
            e.event_id = Some(g.event_id.clone());
            e.device = Some(self.ix.devices[g.device as usize].id.clone());
            e.credential = Some(g.credential.id.clone());
            e.person = holder.map(|p| self.ix.persons[p as usize].id.clone());
            e.note = Some(format!(
                "granted {} ({}) {}",
                g.credential.kind.as_str(),
                g.credential.id,
                g.direction.as_str()
            ));
            e
        };
        let cred_id = g.credential.id.clone();
        let Some(unit) = unit else {
            // Unknown credential or holder without a current unit: nothing
            // to judge against.
            if let Some(p) = holder {
                self.activity(p, gts, Some(gdev), "access");
            }
            return;
        };
        // Other grants in the window explain their own holders and units.
        let others: Vec<(Option<u32>, Option<u32>)> = est
            .grants
            .iter()
            .filter(|o| o.id != grant && (o.ts - gts).abs() <= w)
            .map(|o| {
                let h = o.cred.map(|c| self.ix.creds[c as usize].person);
                (h, h.and_then(|p| self.ix.person_unit_on(p, day)))
            })
            .collect();
        let mut faces: Vec<usize> = Vec::new();
        let mut seen_who: Vec<Who> = Vec::new();
        for (i, f) in est.faces.iter().enumerate() {
            if (f.ts - gts).abs() > w || f.dir.is_some_and(|d| d != gdir) {
                continue;
            }
            if seen_who.contains(&f.who) {
                continue;
            }
            seen_who.push(f.who);
            let explained = match f.who {
                Who::Person(p) => others.iter().any(|(h, u)| {
                    *h == Some(p) || u.is_some_and(|u| u != unit && self.ix.is_occupant(p, u, day))
                }),
                Who::Stranger(_) => false,
            };
            if !explained {
                faces.push(i);
            }
        }
        if faces.is_empty() {
            if let Some(p) = holder {
                self.activity(p, gts, Some(gdev), "access");
            }
            return;
        }
        let tracks: Vec<(Who, Evidence, Option<Direction>, bool)> = faces
            .iter()
            .map(|i| {
                let f = &est.faces[*i];
                let occ = match f.who {
                    Who::Person(p) => self.ix.is_occupant(p, unit, day),
                    Who::Stranger(_) => false,
                };
                (f.who, ev_sighting(f, self), f.dir, occ)
            })
            .collect();
        let any_occ = tracks.iter().any(|t| t.3);
        let estate_ix = self.ix.units[unit as usize].estate;
        let building = self.ix.units[unit as usize].building;
        if !any_occ {
            // credential_misuse
            let mut f = self.unit_finding(
                unit,
                AlertCode::CredentialMisuse,
                Severity::High,
                Subject::Credential(cred_id),
                gts,
            );
            f.evidence.push(access_ev);
            for t in &tracks {
                f.evidence.push(t.1.clone());
            }
            let ust = &mut self.units[unit as usize];
            if ust.misuse_days.last() != Some(&day) {
                ust.misuse_days.push(day);
            }
            for (who, e, _, _) in tracks {
                link(&mut self.units[unit as usize].links, who, day);
                if let Who::Stranger(x) = who {
                    if let Some(b) = building {
                        self.stranger_presence(x, b, e.ts, e, estate_ix);
                    }
                }
            }
            self.raise(f);
            return;
        }
        if let Some(p) = holder {
            self.activity(p, gts, Some(gdev), "access");
        }
        let inward = tracks
            .iter()
            .filter(|t| gdir == Direction::In && t.2 == Some(Direction::In))
            .count();
        for (who, e, _, occ) in tracks {
            if occ {
                continue;
            }
            link(&mut self.units[unit as usize].links, who, day);
            if let Who::Stranger(x) = who {
                if let Some(b) = building {
                    self.stranger_presence(x, b, e.ts, e.clone(), estate_ix);
                }
            }
            if inward >= 2 {
                let subject = match who {
                    Who::Person(p) => Subject::Person(self.ix.persons[p as usize].id.clone()),
                    Who::Stranger(x) => {
                        Subject::Stranger(self.strangers[x as usize].id.as_str().into())
                    }
                };
                let mut f =
                    self.unit_finding(unit, AlertCode::Tailgating, Severity::Medium, subject, gts);
                f.evidence.push(access_ev.clone());
                f.evidence.push(e);
                self.raise(f);
            }
        }
    }

    // ---------------------------------------------------- temporal rules

    fn stranger_presence(&mut self, x: u32, b: u32, ts: Timestamp, ev: Evidence, estate: u32) {
        let th = self.th_estate(estate).clone();
        let (day, hour) = self.local(ts);
        let p = self.presence.entry((x, b)).or_default();
        let lo = day - th.long_term_window_days as i32 + 1;
        for q in [&mut p.days, &mut p.evenings, &mut p.mornings] {
            while q.front().is_some_and(|d| *d < lo) {
                q.pop_front();
            }
        }
        if p.days.back().is_none_or(|d| *d < day) {
            p.days.push_back(day);
        }
        if hour >= th.evening_hour && p.evenings.back().is_none_or(|d| *d < day) {
            p.evenings.push_back(day);
        }
        if hour < th.morning_hour && p.mornings.back().is_none_or(|d| *d < day) {
            p.mornings.push_back(day);
        }
        let n_days = p.days.len() as u32;
        let overnights = p
            .evenings
            .iter()
            .filter(|d| p.mornings.contains(&(**d + 1)))
            .count() as u32;
        let hit = n_days >= th.long_term_days && overnights >= th.long_term_overnights;
        if !hit {
            p.latched = false;
            return;
        }
        if p.latched {
            return;
        }
        p.latched = true;
        self.strangers[x as usize].long_term = true;
        let building = self.ix.buildings[b as usize].code.clone();
        let mut summary = Evidence::new(ts, "summary");
        summary.stranger = ev.stranger.clone();
        summary.note = Some(format!(
            "seen on {n_days} distinct days in {} at building {building}, {overnights} overnight",
            th.long_term_window_days
        ));
        self.raise(Finding {
            code: AlertCode::UnregisteredLongTermOccupant,
            severity: Severity::High,
            estate: self.ix.estates[estate as usize].code.clone(),
            building: Some(building),
            unit: None,
            subject: Subject::Stranger(self.strangers[x as usize].id.as_str().into()),
            at: ts,
            evidence: vec![ev, summary],
        });
    }

    /// The reference time of a unit's absence: the last occupant activity,
    /// but never before the history start or the current lease start.
    fn unit_ref(&self, u: u32, day: i32) -> Option<Timestamp> {
        let start = self.start?;
        let rows = &self.ix.units[u as usize].rows;
        let lease = rows
            .iter()
            .filter(|r| r.current_on(day))
            .map(|r| r.start)
            .max()?;
        let mut r = start;
        if let Some(t) = self.units[u as usize].last_activity {
            r = r.max(t);
        }
        if let Some(t) = self.day_start(lease) {
            r = r.max(t);
        }
        Some(r)
    }

    fn day_start(&self, day: i32) -> Option<Timestamp> {
        let d = chrono::NaiveDate::from_num_days_from_ce_opt(day)?;
        let naive = d.and_hms_opt(0, 0, 0)?;
        self.tz
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.to_utc())
    }

    fn check_vacancy(&mut self, u: u32) {
        let Some(now) = self.now else { return };
        let (day, _) = self.local(now);
        self.units[u as usize].vacancy_armed = false;
        let Some(r) = self.unit_ref(u, day) else {
            // Nobody registered now: look again tomorrow.
            self.units[u as usize].vacancy_armed = true;
            self.push_timer(now + Duration::days(1), false, TimerKind::Vacancy(u));
            return;
        };
        let th = self.th_estate(self.ix.units[u as usize].estate).clone();
        let warn = r + Duration::days(i64::from(th.vacancy_warning_days));
        let viol = r + Duration::days(i64::from(th.vacancy_violation_days));
        let ust = &mut self.units[u as usize];
        let mut level = match ust.vacancy {
            Some((rr, l)) if rr == r => l,
            _ => 0,
        };
        let mut fire = None;
        if level < 2 && now >= viol {
            level = 2;
            fire = Some(Severity::High);
        } else if level < 1 && now >= warn {
            level = 1;
            fire = Some(Severity::Medium);
        }
        ust.vacancy = Some((r, level));
        let next = match level {
            0 => Some(warn),
            1 => Some(viol),
            _ => None,
        };
        if let Some(n) = next {
            ust.vacancy_armed = true;
            self.push_timer(n, false, TimerKind::Vacancy(u));
        }
        if let Some(sev) = fire {
            let idle = (now - r).num_days();
            let key = self.ix.units[u as usize].key.to_string();
            let mut f =
                self.unit_finding(u, AlertCode::VacancySuspected, sev, Subject::Unit(key), now);
            let mut e = Evidence::new(now, "summary");
            e.note = Some(match self.units[u as usize].last_activity {
                Some(t) if t >= r => format!(
                    "no activity of any registered occupant for {idle} days (last {})",
                    t.to_rfc3339()
                ),
                _ => format!(
                    "no activity of any registered occupant for {idle} days (none since {})",
                    r.to_rfc3339()
                ),
            });
            if sev == Severity::High {
                e.note = e.note.map(|n| {
                    format!(
                        "{n}; idle limit of {} days exceeded",
                        th.vacancy_violation_days
                    )
                });
            }
            f.evidence.push(e);
            self.raise(f);
        }
    }

    fn check_elderly(&mut self, p: u32) {
        let Some(now) = self.now else { return };
        let Some(start) = self.start else { return };
        let (day, _) = self.local(now);
        self.persons[p as usize].elderly_armed = false;
        let Some(row) = self.ix.lives_alone_on(p, day).copied() else {
            // Not (yet) watched: check again tomorrow.
            if self.ix.persons[p as usize]
                .rows
                .iter()
                .any(|r| r.lives_alone && r.end > day)
            {
                self.persons[p as usize].elderly_armed = true;
                self.push_timer(now + Duration::days(1), false, TimerKind::Elderly(p));
            }
            return;
        };
        let th = self
            .th_estate(self.ix.units[row.unit as usize].estate)
            .clone();
        let st = &self.persons[p as usize];
        let mut r = start;
        if let Some(t) = st.last.ts {
            r = r.max(t);
        }
        if let Some(t) = self.day_start(row.start) {
            r = r.max(t);
        }
        if st.elderly_fired_for == Some(r) {
            return; // re-armed by the next activity
        }
        let due = r + Duration::hours(i64::from(th.elderly_hours));
        if now < due {
            self.persons[p as usize].elderly_armed = true;
            self.push_timer(due, false, TimerKind::Elderly(p));
            return;
        }
        self.persons[p as usize].elderly_fired_for = Some(r);
        let pid = self.ix.persons[p as usize].id.clone();
        let mut f = self.unit_finding(
            row.unit,
            AlertCode::ElderlyNoActivity,
            Severity::High,
            Subject::Person(pid.clone()),
            now,
        );
        let st = &self.persons[p as usize];
        let mut e = Evidence::new(st.last.ts.unwrap_or(r), "summary");
        e.person = Some(pid);
        e.device = st
            .last
            .device
            .map(|d| self.ix.devices[d as usize].id.clone());
        e.note = Some(match st.last.ts {
            Some(t) => format!(
                "not seen for {} h; last {} at {}",
                (now - t).num_hours(),
                st.last.kind,
                t.to_rfc3339()
            ),
            None => format!("not seen since records began at {}", r.to_rfc3339()),
        });
        f.evidence.push(e);
        self.raise(f);
    }

    /// Daily (local midnight): unit-level rules over windows of days.
    fn sweep(&mut self) {
        let Some(now) = self.now else { return };
        let (today, _) = self.local(now);
        let next = self.next_local_midnight(now);
        self.push_timer(next, false, TimerKind::Sweep);
        for u in 0..self.units.len() as u32 {
            self.sweep_unit(u, now, today);
        }
        // Forget presences that fell out of every window.
        let keep = today - 31;
        self.presence
            .retain(|_, p| p.days.back().is_some_and(|d| *d >= keep));
    }

    fn sweep_unit(&mut self, u: u32, now: Timestamp, today: i32) {
        let info = &self.ix.units[u as usize];
        let th = self.ix.th(info.estate);
        let registered = info.rows.iter().filter(|r| r.current_on(today)).count() as u32;
        let (sub_win, over_win) = (
            th.sublet_window_days as i32,
            th.overcrowding_window_days as i32,
        );
        let (unseen_days, misuse_need, margin) = (
            th.sublet_unseen_days,
            th.sublet_misuse_days,
            th.overcrowding_margin,
        );
        let ust = &mut self.units[u as usize];
        let keep = today - sub_win.max(over_win);
        ust.links.retain(|(_, d)| *d >= keep);
        ust.misuse_days.retain(|d| *d >= today - sub_win);
        if ust.links.is_empty()
            && ust.misuse_days.is_empty()
            && !ust.sublet_latched
            && !ust.overcrowd_latched
        {
            return;
        }
        // overcrowding
        let linked: Vec<Who> = ust
            .links
            .iter()
            .filter(|(_, d)| *d >= today - over_win)
            .map(|(w, _)| *w)
            .collect();
        let crowded = registered > 0 && linked.len() as u32 > registered + margin;
        let mut fire_over = false;
        if crowded && !ust.overcrowd_latched {
            ust.overcrowd_latched = true;
            fire_over = true;
        } else if !crowded {
            ust.overcrowd_latched = false;
        }
        // sublet
        let misuse = ust.misuse_days.len() as u32;
        let long_term: Vec<u32> = ust
            .links
            .iter()
            .filter(|(_, d)| *d >= today - sub_win)
            .filter_map(|(w, _)| match w {
                Who::Stranger(x) if self.strangers[*x as usize].long_term => Some(*x),
                _ => None,
            })
            .collect();
        let r = self.unit_ref(u, today);
        let unseen = r.is_some_and(|r| now - r >= Duration::days(i64::from(unseen_days)));
        let sublet = registered > 0 && unseen && (misuse >= misuse_need || !long_term.is_empty());
        let ust = &mut self.units[u as usize];
        let mut fire_sublet = false;
        if sublet && !ust.sublet_latched {
            ust.sublet_latched = true;
            fire_sublet = true;
        } else if !sublet {
            ust.sublet_latched = false;
        }
        let key = self.ix.units[u as usize].key.to_string();
        if fire_over {
            let mut f = self.unit_finding(
                u,
                AlertCode::OvercrowdingSuspected,
                Severity::Medium,
                Subject::Unit(key.clone()),
                now,
            );
            let mut e = Evidence::new(now, "summary");
            let (mut persons, mut strangers) = (0, 0);
            for w in &linked {
                match w {
                    Who::Person(_) => persons += 1,
                    Who::Stranger(_) => strangers += 1,
                }
            }
            e.note = Some(format!(
                "{} distinct persons linked in {over_win} days ({persons} known, {strangers} strangers); {registered} registered",
                linked.len()
            ));
            f.evidence.push(e);
            self.raise(f);
        }
        if fire_sublet {
            let mut f = self.unit_finding(
                u,
                AlertCode::SubletSuspected,
                Severity::High,
                Subject::Unit(key),
                now,
            );
            let mut e = Evidence::new(now, "summary");
            let since = r.map(|r| r.to_rfc3339()).unwrap_or_default();
            e.note = Some(format!(
                "registered occupants unseen since {since}; credentials used by non-occupants on {misuse} days in {sub_win}; {} long-term stranger(s) linked",
                long_term.len()
            ));
            f.evidence.push(e);
            for x in long_term {
                let mut e = Evidence::new(now, "summary");
                e.stranger = Some(self.strangers[x as usize].id.as_str().into());
                e.note = Some("long-term stranger linked to the unit".into());
                f.evidence.push(e);
            }
            self.raise(f);
        }
    }
}

fn link(links: &mut Vec<(Who, i32)>, who: Who, day: i32) {
    if let Some(l) = links.iter_mut().find(|(w, _)| *w == who) {
        l.1 = l.1.max(day);
    } else {
        links.push((who, day));
    }
}
