//! Who may take which workflow step: one table, enforced here for every
//! handler (issue 12). DESIGN §5's workflow: operators acknowledge,
//! dispatch, resolve and dismiss; field staff record the result of a visit
//! they were sent on (which resolves the alert) but do not close alerts
//! themselves; supervisors and administrators may do everything.

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::AppState;
use anju_core::{Alert, Role};
use anju_store::Notice;

/// A workflow step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Ack,
    Dispatch,
    Resolve,
    Dismiss,
    /// Recording a notice's visit result (resolves its alert).
    NoticeResult,
}

use Role::{Admin, FieldStaff, Operator, Supervisor};

/// The roles that may take each step (for a notice result also its
/// assignee, or — for a notice without one — field staff of its grid).
pub const WORKFLOW: &[(Step, &[Role], &str)] = &[
    (
        Step::Ack,
        &[Admin, Supervisor, Operator],
        "acknowledge alerts",
    ),
    (
        Step::Dispatch,
        &[Admin, Supervisor, Operator],
        "dispatch alerts",
    ),
    (
        Step::Resolve,
        &[Admin, Supervisor, Operator],
        "resolve alerts",
    ),
    (
        Step::Dismiss,
        &[Admin, Supervisor, Operator],
        "dismiss alerts",
    ),
    (
        Step::NoticeResult,
        &[Admin, Supervisor],
        "record the result of another person's notice",
    ),
];

fn row(step: Step) -> (&'static [Role], &'static str) {
    WORKFLOW
        .iter()
        .find(|(s, _, _)| *s == step)
        .map_or((&[], "do this"), |(_, r, w)| (*r, *w))
}

/// Whether `role` may take `step` by its role alone.
pub fn may(role: Role, step: Step) -> bool {
    row(step).0.contains(&role)
}

/// 403 unless the caller's role may take `step`.
///
/// # Errors
/// 403 `forbidden`.
pub fn require(auth: &AuthUser, step: Step) -> Result<(), ApiError> {
    let (roles, what) = row(step);
    auth.require(roles, what)
}

/// 403 unless the caller may record `notice`'s result: its assignee; for a
/// notice without an assignee, field staff of its grid; or a role of the
/// table.
///
/// # Errors
/// 403 `forbidden`.
pub fn require_notice_result(auth: &AuthUser, notice: &Notice) -> Result<(), ApiError> {
    let me = auth.user.name.as_str();
    let assignee_ok = match &notice.assignee {
        Some(a) => a == me,
        None => {
            auth.user.role == FieldStaff
                && notice.grid.as_deref().is_some_and(|g| {
                    auth.user
                        .grids
                        .iter()
                        .any(|(e, gg)| e.as_str() == notice.estate && gg.as_str() == g)
                })
        }
    };
    if assignee_ok {
        return Ok(());
    }
    require(auth, Step::NoticeResult)
}

/// 400 unless `assignee` is a field-staff user of the grid of the alert's
/// building (for an alert without a building: of a grid of its estate).
///
/// # Errors
/// 400 `bad_request` saying why; store errors.
pub async fn check_assignee(
    state: &AppState,
    alert: &Alert,
    assignee: &str,
) -> Result<(), ApiError> {
    let Some(user) = state.store.get_user(assignee).await? else {
        return Err(ApiError::bad_request(format!(
            "assignee {assignee:?} is not a user"
        )));
    };
    let user = user.user;
    if user.role != FieldStaff {
        return Err(ApiError::bad_request(format!(
            "assignee {assignee:?} is {}, not field staff",
            user.role.as_str()
        )));
    }
    let grid = match &alert.building {
        Some(b) => {
            state
                .store
                .grid_of_building(alert.estate.as_str(), b.as_str())
                .await?
        }
        None => None,
    };
    let ok = user.grids.iter().any(|(e, g)| {
        e.as_str() == alert.estate.as_str() && grid.as_deref().is_none_or(|want| g.as_str() == want)
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "assignee {assignee:?} is not field staff of grid {} of estate {}",
            grid.as_deref().unwrap_or("(any)"),
            alert.estate
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_covers_every_step_and_field_staff_close_nothing_alone() {
        for step in [
            Step::Ack,
            Step::Dispatch,
            Step::Resolve,
            Step::Dismiss,
            Step::NoticeResult,
        ] {
            assert!(!row(step).0.is_empty(), "{step:?}");
            assert!(may(Admin, step) && may(Supervisor, step), "{step:?}");
            assert!(!may(FieldStaff, step), "{step:?}");
        }
        assert!(may(Operator, Step::Resolve));
        assert!(!may(Operator, Step::NoticeResult));
    }
}
