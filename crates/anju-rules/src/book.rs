//! The in-memory alert book: ids, dedup by code and subject while active,
//! evidence appending, severity escalation, workflow transitions (audited),
//! and the quiet period after a dismissal or false alarm.

use anju_core::alert::{Action, Transition, WorkflowError};
use anju_core::{
    Alert, AlertCode, AlertId, AlertStatus, BuildingCode, EstateCode, Evidence, Outcome, Severity,
    Subject, Timestamp, UnitNo, UserName,
};
use std::collections::HashMap;

/// A finding a rule wants to raise or attach to an active alert. Also what
/// an edge forwards to the centre (JSON; an alert's JSON reads as a finding,
/// `updated_at` standing for `at`, so the alert changes an older edge had
/// queued are delivered as findings).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub code: AlertCode,
    pub severity: Severity,
    pub estate: EstateCode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub building: Option<BuildingCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<UnitNo>,
    pub subject: Subject,
    #[serde(alias = "updated_at")]
    pub at: Timestamp,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
}

/// Why a workflow action was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ActError {
    #[error("no alert {0}")]
    NotFound(AlertId),
    #[error(transparent)]
    Workflow(#[from] WorkflowError),
    #[error("resolve requires an outcome")]
    OutcomeRequired,
}

#[derive(Debug, Default)]
pub struct AlertBook {
    alerts: Vec<Alert>,
    active: HashMap<(AlertCode, Subject), AlertId>,
    quiet_until: HashMap<(AlertCode, Subject), Timestamp>,
    transitions: Vec<Transition>,
    evidence_cap: usize,
}

impl AlertBook {
    pub fn new(evidence_cap: usize) -> Self {
        Self {
            evidence_cap: evidence_cap.max(1),
            ..Self::default()
        }
    }

    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }

    pub fn get(&self, id: AlertId) -> Option<&Alert> {
        usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.alerts.get(i))
    }

    /// The active alert of this code and subject, if any.
    pub fn active(&self, code: AlertCode, subject: &Subject) -> Option<&Alert> {
        self.active
            .get(&(code, subject.clone()))
            .and_then(|id| self.get(*id))
    }

    /// Whether a new finding of this code and subject is suppressed at `at`.
    pub fn is_quiet(&self, code: AlertCode, subject: &Subject, at: Timestamp) -> bool {
        self.quiet_until
            .get(&(code, subject.clone()))
            .is_some_and(|until| at < *until)
    }

    /// Opens an alert or attaches to the active one. Returns the alert as it
    /// now is, or `None` when the finding is suppressed by a quiet period.
    pub fn raise(&mut self, f: Finding) -> Option<Alert> {
        let key = (f.code, f.subject.clone());
        if let Some(id) = self.active.get(&key).copied() {
            let cap = self.evidence_cap;
            let a = self.get_mut(id)?;
            a.evidence.extend(f.evidence);
            if a.evidence.len() > cap {
                let drop = a.evidence.len() - cap;
                a.evidence.drain(..drop);
            }
            if f.severity > a.severity {
                a.severity = f.severity;
            }
            if f.at > a.updated_at {
                a.updated_at = f.at;
            }
            if a.building.is_none() {
                a.building = f.building;
            }
            if a.unit.is_none() {
                a.unit = f.unit;
            }
            return Some(a.clone());
        }
        if self.is_quiet(f.code, &f.subject, f.at) {
            return None;
        }
        let id = AlertId::try_from(self.alerts.len()).unwrap_or(AlertId::MAX - 1) + 1;
        let mut evidence = f.evidence;
        if evidence.len() > self.evidence_cap {
            let drop = evidence.len() - self.evidence_cap;
            evidence.drain(..drop);
        }
        let a = Alert {
            id,
            code: f.code,
            severity: f.severity,
            status: AlertStatus::Open,
            estate: f.estate,
            building: f.building,
            unit: f.unit,
            subject: f.subject,
            opened_at: f.at,
            updated_at: f.at,
            evidence,
            title_zh: f.code.title_zh().to_owned(),
            title_en: f.code.title_en().to_owned(),
            outcome: None,
            reason: None,
        };
        self.alerts.push(a.clone());
        self.active.insert(key, id);
        Some(a)
    }

    fn get_mut(&mut self, id: AlertId) -> Option<&mut Alert> {
        usize::try_from(id - 1)
            .ok()
            .and_then(|i| self.alerts.get_mut(i))
    }

    /// Applies a workflow action (audited). Dismissal needs a reason,
    /// resolution an outcome. A dismissal or a `false_alarm` resolution
    /// starts the quiet period for the same code and subject.
    #[allow(clippy::too_many_arguments)]
    pub fn act(
        &mut self,
        id: AlertId,
        action: Action,
        by: &UserName,
        reason: Option<&str>,
        outcome: Option<Outcome>,
        at: Timestamp,
        quiet: chrono::Duration,
    ) -> Result<Alert, ActError> {
        let a = self.get_mut(id).ok_or(ActError::NotFound(id))?;
        let to = a.status.apply(action)?;
        let reason = reason.map(str::trim).filter(|r| !r.is_empty());
        if action == Action::Dismiss && reason.is_none() {
            return Err(WorkflowError::ReasonRequired("dismiss").into());
        }
        if action == Action::Resolve && outcome.is_none() {
            return Err(ActError::OutcomeRequired);
        }
        let from = a.status;
        a.status = to;
        if at > a.updated_at {
            a.updated_at = at;
        }
        if let Some(r) = reason {
            a.reason = Some(r.to_owned());
        }
        if action == Action::Resolve {
            a.outcome = outcome;
        }
        let snapshot = a.clone();
        self.transitions.push(Transition {
            alert_id: id,
            from,
            to,
            by: by.clone(),
            at,
            reason: reason.map(str::to_owned),
        });
        let key = (snapshot.code, snapshot.subject.clone());
        if !to.is_active() {
            self.active.remove(&key);
            let quiet_worthy =
                to == AlertStatus::Dismissed || snapshot.outcome == Some(Outcome::FalseAlarm);
            if quiet_worthy {
                self.quiet_until.insert(key, at + quiet);
            }
        }
        Ok(snapshot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: i64) -> Timestamp {
        chrono::Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    fn finding(at: Timestamp, sev: Severity) -> Finding {
        Finding {
            code: AlertCode::DoorForced,
            severity: sev,
            estate: "E".into(),
            building: None,
            unit: None,
            subject: Subject::Device("d1".into()),
            at,
            evidence: vec![Evidence::new(at, "door")],
        }
    }

    #[test]
    fn dedup_escalate_cap_and_quiet_period() {
        let mut b = AlertBook::new(3);
        let a = b.raise(finding(t(0), Severity::Medium)).unwrap();
        assert_eq!(a.id, 1);
        for i in 1..5 {
            let a = b.raise(finding(t(i), Severity::Medium)).unwrap();
            assert_eq!(a.id, 1);
        }
        let a = b.raise(finding(t(9), Severity::High)).unwrap();
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.evidence.len(), 3);
        assert_eq!(a.evidence[2].ts, t(9));
        assert_eq!(a.updated_at, t(9));
        let by = UserName::from("op");
        let q = chrono::Duration::days(7);
        assert_eq!(
            b.act(1, Action::Dismiss, &by, None, None, t(10), q),
            Err(ActError::Workflow(WorkflowError::ReasonRequired("dismiss")))
        );
        let a = b
            .act(1, Action::Dismiss, &by, Some("test"), None, t(10), q)
            .unwrap();
        assert_eq!(a.status, AlertStatus::Dismissed);
        assert!(b.raise(finding(t(20), Severity::High)).is_none());
        let a = b
            .raise(finding(t(10) + chrono::Duration::days(8), Severity::High))
            .unwrap();
        assert_eq!(a.id, 2);
        b.act(2, Action::Ack, &by, None, None, t(10), q).unwrap();
        assert_eq!(
            b.act(2, Action::Resolve, &by, None, None, t(11), q),
            Err(ActError::OutcomeRequired)
        );
        b.act(
            2,
            Action::Resolve,
            &by,
            None,
            Some(Outcome::Confirmed),
            t(11),
            q,
        )
        .unwrap();
        // confirmed: no new quiet period
        let later = t(12) + chrono::Duration::days(8);
        assert_eq!(b.raise(finding(later, Severity::High)).unwrap().id, 3);
        assert_eq!(b.transitions().len(), 3);
        assert!(matches!(
            b.act(9, Action::Ack, &by, None, None, t(1), q),
            Err(ActError::NotFound(9))
        ));
    }
}
