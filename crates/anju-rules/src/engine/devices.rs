//! Device rules: liveness (device_offline), doors, QR scans, denial bursts.

use super::*;

impl Engine {
    /// Device liveness bookkeeping for device_offline.
    pub(super) fn heard(&mut self, d: u32, ev: &Event) {
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

    pub(super) fn check_device(&mut self, d: u32) {
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

    pub(super) fn on_door(&mut self, d: u32, body: &anju_core::DoorEvent) {
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

    pub(super) fn check_door(&mut self, d: u32, seq: u64) {
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

    pub(super) fn on_qr(&mut self, d: u32, body: &anju_core::QrScanEvent) {
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

    pub(super) fn on_access(&mut self, d: u32, device: &anju_core::DeviceId, body: &AccessEvent) {
        if self.blocked_credential(d, device, body) {
            return;
        }
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
            AccessResult::Granted => self.on_grant(d, body),
        }
    }

    /// A credential the office recorded as lost, suspended or revoked, used
    /// at a gate (granted — the reader does not know yet — or denied): an
    /// alert on the credential, with the unit of its holder. The use is not
    /// credited to the holder (it is likely not them) nor fused further.
    fn blocked_credential(
        &mut self,
        d: u32,
        device: &anju_core::DeviceId,
        body: &AccessEvent,
    ) -> bool {
        let Some(c) = self.ix.cred_ix[kind_ix(body.credential.kind)]
            .get(body.credential.id.as_str())
            .copied()
        else {
            return false;
        };
        let (status, holder) = {
            let c = &self.ix.creds[c as usize];
            (c.status, c.person)
        };
        if status == anju_core::CredentialStatus::Active {
            return false;
        }
        let (day, _) = self.local(body.ts);
        let subject = Subject::Credential(body.credential.id.clone());
        let mut f = match self.ix.person_unit_on(holder, day).or_else(|| {
            // Moved out: the unit they last lived in.
            self.ix.persons[holder as usize].rows.last().map(|r| r.unit)
        }) {
            Some(u) => self.unit_finding(
                u,
                AlertCode::BlockedCredentialUsed,
                Severity::High,
                subject,
                body.ts,
            ),
            None => {
                let mut f = self.device_finding(
                    d,
                    AlertCode::BlockedCredentialUsed,
                    Severity::High,
                    body.ts,
                );
                f.subject = subject;
                f
            }
        };
        let mut e = Evidence::new(body.ts, "access");
        e.event_id = Some(body.event_id.clone());
        e.device = Some(device.clone());
        e.credential = Some(body.credential.id.clone());
        e.person = Some(self.ix.persons[holder as usize].id.clone());
        e.note = Some(format!(
            "{} {} reported {}; {} at the gate",
            body.credential.kind.as_str(),
            body.credential.id,
            status.as_str(),
            match body.result {
                AccessResult::Granted => "granted",
                AccessResult::Denied => "denied",
            }
        ));
        f.evidence.push(e);
        self.raise(f);
        true
    }
}
