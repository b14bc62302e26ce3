//! Occupancy rules over days: activity of registered occupants, vacancy,
//! elderly living alone, long-term strangers, sublet and overcrowding.

use super::*;

impl Engine {
    pub(super) fn activity(
        &mut self,
        p: u32,
        ts: Timestamp,
        device: Option<u32>,
        kind: &'static str,
    ) {
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

    pub(super) fn stranger_presence(
        &mut self,
        x: u32,
        b: u32,
        ts: Timestamp,
        ev: Evidence,
        estate: u32,
    ) {
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

    pub(super) fn check_vacancy(&mut self, u: u32) {
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

    pub(super) fn check_elderly(&mut self, p: u32) {
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
    pub(super) fn sweep(&mut self) {
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
pub(super) fn link(links: &mut Vec<(Who, i32)>, who: Who, day: i32) {
    if let Some(l) = links.iter_mut().find(|(w, _)| *w == who) {
        l.1 = l.1.max(day);
    } else {
        links.push((who, day));
    }
}
