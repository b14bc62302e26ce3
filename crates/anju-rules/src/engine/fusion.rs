//! Fusion of credential events with the face tracks at their entrance
//! (DESIGN §6a, "Fusion waits for the faces"): `credential_misuse`,
//! `tailgating`, and the passages that link identities to units.
//!
//! - A grant is judged once its window (± `correlation_window_s`) is over
//!   and every face track at the entrance that overlaps it has decided an
//!   identity or closed — or when the bounded wait (`fusion_wait_s`) runs
//!   out. Tracks announce themselves when they open (live cameras); replayed
//!   sightings are tracks decided and closed at one instant.
//! - Faces are assigned to grants one to one, as a careful operator would:
//!   a face is first explained by identity — its person's own credential,
//!   or a grant of the unit they live in (a family on one card) — wherever
//!   that grant is in the window; the faces left unexplained (strangers,
//!   residents without a grant of their own) are then given, nearest in
//!   time first, to the grants that saw none of their own people: visitor
//!   passes first (they expect an unregistered face), then residents'
//!   grants. A missed face is not a stranger: a grant with no face at all
//!   is recorded and claims nothing.
//! - A grant whose faces are all unexplained is `credential_misuse`; an
//!   unexplained face left over beside a grant that saw its own people is
//!   `tailgating` (inward). Only identities that passed on a unit's
//!   credential are linked to it (the passage), never neighbours near its
//!   tenant.

use super::occupancy::link;
use super::*;

/// Whose face a track is, as far as the grants in its window can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Explained {
    /// Its person's own credential, or a grant of their own unit.
    By(u64),
    /// Not by identity: a stranger, or a resident with no grant of theirs.
    No,
}

impl Engine {
    pub(super) fn on_grant(&mut self, d: u32, body: &AccessEvent) {
        let cred = self.ix.cred_ix[kind_ix(body.credential.kind)]
            .get(body.credential.id.as_str())
            .copied();
        let holder = cred.map(|c| self.ix.creds[c as usize].person);
        let Some(entrance) = self.ix.devices[d as usize].entrance else {
            // Not correlatable: credit the holder directly.
            if let Some(p) = holder {
                self.activity(p, body.ts, Some(d), "access");
            }
            return;
        };
        if !self.fuses() {
            // The centre: the edge's passage says who passed.
            return;
        }
        let (day, _) = self.local(body.ts);
        let unit = holder.and_then(|p| self.ix.person_unit_on(p, day));
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
            holder,
            unit,
            direction: body.direction,
            waiting: false,
            decided: false,
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

    fn prune_entrance(&mut self, e: u32, now: Timestamp, w: i64) {
        let horizon = now - Duration::seconds(4 * w + 1);
        // Open tracks that never decided nor closed (a camera whose analysis
        // stopped) are forgotten after a few minutes.
        let stale = now - Duration::minutes(5);
        let st = &mut self.entrances[e as usize];
        st.tracks.retain(|t| {
            if t.open {
                t.first >= stale || t.who.is_some() && t.ts >= stale
            } else {
                t.last >= horizon
            }
        });
        while st
            .grants
            .front()
            .is_some_and(|g| g.ts < horizon && (g.decided || g.ts < stale))
        {
            st.grants.pop_front();
        }
    }

    fn entrance_of_camera(&self, camera: &str) -> Option<(u32, u32)> {
        let c = self.ix.device_ix.get(camera).copied()?;
        let e = self.ix.devices[c as usize].entrance?;
        Some((c, e))
    }

    pub(super) fn open_track(&mut self, camera: &str, key: &str, ts: Timestamp) {
        if !self.fuses() {
            return;
        }
        let Some((c, e)) = self.entrance_of_camera(camera) else {
            return;
        };
        let st = &mut self.entrances[e as usize];
        if st.tracks.iter().any(|t| t.key.as_deref() == Some(key)) {
            return;
        }
        st.tracks.push_back(FaceTrack {
            key: Some(key.to_owned()),
            first: ts,
            last: ts,
            open: true,
            who: None,
            ts,
            dir: None,
            camera: c,
            event_id: None,
            snapshot: None,
            score: None,
        });
    }

    pub(super) fn close_track(&mut self, camera: &str, key: &str, ts: Timestamp) {
        if !self.fuses() {
            return;
        }
        let Some((_, e)) = self.entrance_of_camera(camera) else {
            return;
        };
        let st = &mut self.entrances[e as usize];
        let Some(t) = st.tracks.iter_mut().find(|t| t.key.as_deref() == Some(key)) else {
            return;
        };
        t.open = false;
        t.last = t.last.max(ts);
        self.recheck_waiting(e);
    }

    /// Decides the waiting grants of an entrance that no longer wait for
    /// any track.
    fn recheck_waiting(&mut self, e: u32) {
        let ready: Vec<u64> = self.entrances[e as usize]
            .grants
            .iter()
            .filter(|g| g.waiting && !g.decided && !self.blocked(e, g))
            .map(|g| g.id)
            .collect();
        for g in ready {
            self.decide_grant(e, g);
        }
    }

    /// Whether an undecided open track overlaps the grant's window.
    fn blocked(&self, e: u32, g: &Grant) -> bool {
        let w = self.window(g.device);
        self.entrances[e as usize]
            .tracks
            .iter()
            .any(|t| t.open && t.who.is_none() && t.overlaps(g.ts, w))
    }

    fn window(&self, device: u32) -> Duration {
        Duration::seconds(
            self.th_estate(self.ix.devices[device as usize].estate)
                .correlation_window_s,
        )
    }

    /// The window of a grant is over: judge it, or wait (bounded) for the
    /// tracks that are still undecided.
    pub(super) fn window_over(&mut self, e: u32, grant: u64) {
        let Some(g) = self.entrances[e as usize]
            .grants
            .iter()
            .find(|g| g.id == grant)
        else {
            return;
        };
        if g.decided {
            return;
        }
        if self.blocked(e, g) {
            let wait = self
                .th_estate(self.ix.devices[g.device as usize].estate)
                .fusion_wait_s;
            let due = g.ts + self.window(g.device) + Duration::seconds(wait.max(0));
            if let Some(g) = self.entrances[e as usize]
                .grants
                .iter_mut()
                .find(|g| g.id == grant)
            {
                g.waiting = true;
            }
            self.push_timer(due, true, TimerKind::FusionDeadline { entrance: e, grant });
            return;
        }
        // A face in the window that no grant explains yet may be explained
        // by a grant still to come: a resident swipes within a window of
        // appearing at the door. Wait until then (at most one more window)
        // before blaming this grant.
        let w = self.window(g.device);
        if let Some(first) = self.latest_unexplained(e, g) {
            let ahead = (first + w).min(g.ts + w * 2);
            if self.now.is_some_and(|n| n < ahead) {
                self.push_timer(ahead, true, TimerKind::Correlate { entrance: e, grant });
                return;
            }
        }
        self.decide_grant(e, grant);
    }

    /// When the latest-appearing decided face in the grant's window that no
    /// grant known now explains (by identity: own credential or own unit's)
    /// first appeared.
    fn latest_unexplained(&self, e: u32, g: &Grant) -> Option<Timestamp> {
        let w = self.window(g.device);
        let (day, _) = self.local(g.ts);
        let est = &self.entrances[e as usize];
        est.tracks
            .iter()
            .filter(|t| {
                t.overlaps(g.ts, w)
                    && t.dir.is_none_or(|x| x == g.direction)
                    && match t.who {
                        Some(Who::Person(p)) => !est.grants.iter().any(|o| {
                            o.direction == g.direction
                                && t.overlaps(o.ts, w)
                                && self.explains(o, p, day)
                        }),
                        Some(Who::Stranger(_)) => true,
                        None => false,
                    }
            })
            .map(|t| t.first)
            .max()
    }

    pub(super) fn on_sighting(
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
            if self.occupancy_rules() {
                self.activity(p, s.ts, cam, "sighting");
            }
            let (day, _) = self.local(s.ts);
            if self.ix.persons[p as usize]
                .watch
                .is_some_and(|last| day <= last)
            {
                self.watchlist_hit(p, cam, estate, s);
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
        let estate_ix = info.estate;
        let w = self.th_estate(estate_ix).correlation_window_s;
        if let (Who::Stranger(x), Some(b), true) = (
            who,
            self.ix.entrances[entrance as usize].building,
            self.occupancy_rules(),
        ) {
            let mut ev = Evidence::new(s.ts, "sighting");
            ev.event_id = s.event_id.clone();
            ev.device = Some(s.camera.clone());
            ev.stranger = s.stranger.clone();
            ev.snapshot = s.snapshot.clone();
            self.stranger_presence(x, b, s.ts, ev, estate_ix);
        }
        if !self.fuses() {
            return;
        }
        let key = s.event_id.as_ref().map(|k| k.0.clone());
        let st = &mut self.entrances[entrance as usize];
        let open = key
            .as_deref()
            .and_then(|k| st.tracks.iter_mut().find(|t| t.key.as_deref() == Some(k)));
        match open {
            // A live track decided: it stays open (in view) until it closes.
            Some(t) => {
                t.who = Some(who);
                t.ts = s.ts;
                t.last = t.last.max(s.ts);
                t.dir = dir;
                t.event_id = s.event_id.clone();
                t.snapshot = s.snapshot.clone();
                t.score = s.score;
            }
            None => st.tracks.push_back(FaceTrack {
                key,
                first: s.ts,
                last: s.ts,
                open: false,
                who: Some(who),
                ts: s.ts,
                dir,
                camera: c,
                event_id: s.event_id.clone(),
                snapshot: s.snapshot.clone(),
                score: s.score,
            }),
        }
        self.prune_entrance(entrance, s.ts, w);
        self.recheck_waiting(entrance);
    }

    fn watchlist_hit(
        &mut self,
        p: u32,
        cam: Option<u32>,
        estate: Option<&anju_core::EstateCode>,
        s: &Sighting,
    ) {
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

    /// Whether person `p`'s face is explained by grant `g`: their own
    /// credential, or a credential of the unit they live in.
    fn explains(&self, g: &Grant, p: u32, day: i32) -> bool {
        g.holder == Some(p) || g.unit.is_some_and(|u| self.ix.is_occupant(p, u, day))
    }

    /// Whether faces can check this grant: its holder or someone of the
    /// holder's household on `day` has an enrolled face (always, when the
    /// caller never said who is enrolled).
    fn verifiable(&self, g: &Grant, day: i32) -> bool {
        let Some(enrolled) = &self.enrolled else {
            return true;
        };
        g.holder.is_some_and(|h| enrolled.contains(&h))
            || g.unit.is_some_and(|u| {
                self.ix.units[u as usize]
                    .rows
                    .iter()
                    .any(|r| r.current_on(day) && enrolled.contains(&r.person))
            })
    }

    // ------------------------------------------------------- correlation

    pub(super) fn decide_grant(&mut self, entrance: u32, grant: u64) {
        let est = &self.entrances[entrance as usize];
        let Some(g) = est.grants.iter().find(|g| g.id == grant) else {
            return;
        };
        if g.decided {
            return;
        }
        let w = self.window(g.device);
        let (day, _) = self.local(g.ts);
        let dir_ok = |t: &FaceTrack, d: Direction| t.who.is_some() && t.dir.is_none_or(|x| x == d);
        // The grants that may share faces with this one, and the decided
        // faces of its window (one track per identity).
        let grants: Vec<&Grant> = est
            .grants
            .iter()
            .filter(|o| o.direction == g.direction && (o.ts - g.ts).abs() <= w * 2)
            .collect();
        // One track per identity: the one nearest the grant (the same person
        // passing twice keeps two tracks).
        let mut faces: Vec<&FaceTrack> = Vec::new();
        for t in &est.tracks {
            if !(dir_ok(t, g.direction) && t.overlaps(g.ts, w)) {
                continue;
            }
            match faces.iter_mut().find(|f| f.who == t.who) {
                Some(f) if t.distance(g.ts) < f.distance(g.ts) => *f = t,
                Some(_) => {}
                None => faces.push(t),
            }
        }
        // 1. Explained by identity (this grant first).
        let explained: Vec<Explained> = faces
            .iter()
            .map(|f| match f.who {
                Some(Who::Person(p)) => {
                    if self.explains(g, p, day) {
                        return Explained::By(g.id);
                    }
                    grants
                        .iter()
                        .filter(|o| o.id != g.id && f.overlaps(o.ts, w) && self.explains(o, p, day))
                        .min_by_key(|o| f.distance(o.ts))
                        .map_or(Explained::No, |o| Explained::By(o.id))
                }
                _ => Explained::No,
            })
            .collect();
        // 2. The grants that saw none of their own people take the
        //    unexplained faces one to one, visitors' grants first, nearest
        //    in time first.
        let own_face = |o: &Grant| {
            est.tracks.iter().any(|t| {
                dir_ok(t, o.direction)
                    && t.overlaps(o.ts, w)
                    && matches!(t.who, Some(Who::Person(p)) if self.explains(o, p, day))
            })
        };
        let open_grants: Vec<&Grant> = grants.iter().copied().filter(|o| !own_face(o)).collect();
        let mut by_face: Vec<Option<u64>> = vec![None; faces.len()];
        {
            let mut cands: Vec<(bool, Duration, Timestamp, u64, usize)> = Vec::new();
            for (i, f) in faces.iter().enumerate() {
                if explained[i] != Explained::No {
                    continue;
                }
                for o in &open_grants {
                    // A grant already judged keeps a face only if its person
                    // left with that passage: someone still in view after it
                    // may pass again.
                    let stayed = f.open || f.last > o.ts + w;
                    if f.overlaps(o.ts, w) && !(o.decided && stayed) {
                        cands.push((o.unit.is_some(), f.distance(o.ts), o.ts, o.id, i));
                    }
                }
            }
            cands.sort_by_key(|c| (c.0, c.1, c.2));
            let mut taken: Vec<u64> = Vec::new();
            for (_, _, _, gid, i) in cands {
                if by_face[i].is_none() && !taken.contains(&gid) {
                    by_face[i] = Some(gid);
                    taken.push(gid);
                }
            }
        }
        // Faces this grant answers for: those given to it, and unexplained
        // faces given to no grant whose nearest grant it is.
        let mut mine: Vec<usize> = Vec::new();
        let mut extra: Vec<usize> = Vec::new();
        for (i, f) in faces.iter().enumerate() {
            if explained[i] != Explained::No {
                continue;
            }
            match by_face[i] {
                Some(gid) if gid == g.id => mine.push(i),
                Some(_) => {}
                None => {
                    let nearest = grants
                        .iter()
                        .filter(|o| f.overlaps(o.ts, w))
                        .min_by_key(|o| (f.distance(o.ts), o.ts))
                        .map(|o| o.id);
                    if nearest == Some(g.id) {
                        extra.push(i);
                    }
                }
            }
        }
        let has_own = explained.contains(&Explained::By(g.id));
        let faced = !(mine.is_empty() && extra.is_empty());
        // A household nobody can recognise: an unknown face with its card
        // may be its own (no misuse, and nobody linked to the unit). A face
        // recognised as someone else is someone else either way.
        let known_other = mine
            .iter()
            .chain(extra.iter())
            .any(|i| matches!(faces[*i].who, Some(Who::Person(_))));
        let misuse = !has_own && faced && (known_other || self.verifiable(g, day));
        let tail: Vec<usize> = if has_own && g.direction == Direction::In {
            extra
                .iter()
                .copied()
                .filter(|i| faces[*i].dir == Some(Direction::In))
                .collect()
        } else {
            Vec::new()
        };
        let users: Vec<usize> = if misuse {
            mine.iter().chain(extra.iter()).copied().collect()
        } else {
            Vec::new()
        };
        let evidence: Vec<(Who, Evidence)> = users
            .iter()
            .chain(tail.iter())
            .filter_map(|i| faces[*i].who.map(|who| (who, ev_sighting(faces[*i], self))))
            .collect();
        let (gts, gdev, holder, unit) = (g.ts, g.device, g.holder, g.unit);
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
        let mut passage = Passage {
            event_id: EventId::new(format!("{}:passage", g.event_id)),
            ts: g.ts,
            access_event_id: g.event_id.clone(),
            credential: g.credential.clone(),
            holder_credited: holder.is_some() && !misuse,
            persons: Vec::new(),
            strangers: Vec::new(),
        };
        if let Some(g) = self.entrances[entrance as usize]
            .grants
            .iter_mut()
            .find(|g| g.id == grant)
        {
            g.decided = true;
            g.waiting = false;
        }
        for (who, _) in evidence.iter().take(users.len()) {
            match who {
                Who::Person(p) => passage
                    .persons
                    .push(self.ix.persons[*p as usize].id.clone()),
                Who::Stranger(x) => passage
                    .strangers
                    .push(self.strangers[*x as usize].id.as_str().into()),
            }
        }
        let Some(unit) = unit else {
            // A visitor pass or an unknown credential: it explained the
            // face it took; nothing to judge against.
            return;
        };
        let estate = self.ix.units[unit as usize].key.estate.clone();
        let device = self.ix.devices[gdev as usize].id.clone();
        let ev = Event::Passage {
            estate: Some(estate),
            device,
            body: passage,
        };
        match self.role {
            Role::Edge => self.passages.push(ev.clone()),
            Role::All => {}
            Role::Centre => return,
        }
        if let Event::Passage { body, .. } = &ev {
            self.apply_passage(gdev, body);
        }
        if misuse {
            let mut f = self.unit_finding(
                unit,
                AlertCode::CredentialMisuse,
                Severity::High,
                Subject::Credential(access_ev.credential.clone().unwrap_or_else(|| "".into())),
                gts,
            );
            f.evidence.push(access_ev.clone());
            f.evidence
                .extend(evidence.iter().take(users.len()).map(|(_, e)| e.clone()));
            self.raise(f);
        }
        for (who, e) in evidence.iter().skip(users.len()) {
            let subject = match who {
                Who::Person(p) => Subject::Person(self.ix.persons[*p as usize].id.clone()),
                Who::Stranger(x) => {
                    Subject::Stranger(self.strangers[*x as usize].id.as_str().into())
                }
            };
            let mut f =
                self.unit_finding(unit, AlertCode::Tailgating, Severity::Medium, subject, gts);
            f.evidence.push(access_ev.clone());
            f.evidence.push(e.clone());
            self.raise(f);
        }
    }

    /// What a passage means for the occupancy rules: the holder's activity,
    /// or the non-occupants linked to the unit whose credential they used.
    pub(super) fn apply_passage(&mut self, device: u32, p: &Passage) {
        if !self.occupancy_rules() {
            return;
        }
        let cred = self.ix.cred_ix[kind_ix(p.credential.kind)]
            .get(p.credential.id.as_str())
            .copied();
        let Some(holder) = cred.map(|c| self.ix.creds[c as usize].person) else {
            return;
        };
        if p.holder_credited {
            self.activity(holder, p.ts, Some(device), "access");
        }
        let (day, _) = self.local(p.ts);
        let Some(unit) = self.ix.person_unit_on(holder, day) else {
            return;
        };
        if p.persons.is_empty() && p.strangers.is_empty() {
            return;
        }
        let mut whos: Vec<Who> = Vec::new();
        for id in &p.persons {
            whos.push(Who::Person(self.ix_person(id)));
        }
        for s in &p.strangers {
            whos.push(Who::Stranger(self.intern_stranger(s.as_str())));
        }
        let ust = &mut self.units[unit as usize];
        if ust.misuse_days.last() != Some(&day) {
            ust.misuse_days.push(day);
        }
        for who in whos {
            link(&mut self.units[unit as usize].links, who, day);
        }
    }
}
