//! Supervised loops (DESIGN §6a): a named long-running task that fails —
//! returns an error, panics, or ends by itself before it was cancelled — is
//! logged, counted and started again after a backoff, until cancelled.
//!
//! Every supervised task of a process is registered in one [`Tasks`] book,
//! which `/readyz` (503 naming what is down) and `/metrics` read.

use crate::Backoff;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a supervised task's health looks like from outside (for logs,
/// metrics and readiness).
#[derive(Debug)]
pub struct TaskHealth {
    /// The task's name: `analyzer`, `ingest:FCY`, `faces:cam-n1`, …
    pub name: String,
    /// Running now.
    pub up: AtomicBool,
    /// Times it failed (error, panic, early end) and was started again.
    pub restarts: AtomicU64,
    /// The last failure, for `/readyz` and logs.
    last_error: Mutex<Option<String>>,
}

impl TaskHealth {
    /// A health record not (yet) in any [`Tasks`] book; starts down.
    pub fn new(name: impl Into<String>) -> Arc<Self> {
        Arc::new(Self {
            name: name.into(),
            up: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    /// Marks the task running.
    pub fn set_up(&self) {
        self.up.store(true, Ordering::Relaxed);
    }

    /// Records a failure: down, counted, with its reason. The caller
    /// restarts it (or marks it up again once it recovered by itself).
    pub fn failed(&self, why: impl Into<String>) {
        self.up.store(false, Ordering::Relaxed);
        self.restarts.fetch_add(1, Ordering::Relaxed);
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(why.into());
    }

    /// The last failure's reason, if it ever failed.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// The book of a process's supervised tasks. Cheap to share (`Arc<Tasks>`).
#[derive(Debug, Default)]
pub struct Tasks {
    list: Mutex<Vec<Arc<TaskHealth>>>,
}

impl Tasks {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// A new task's health record, kept in this book (down until it runs).
    pub fn register(&self, name: impl Into<String>) -> Arc<TaskHealth> {
        let h = TaskHealth::new(name);
        self.list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(h.clone());
        h
    }

    /// Keeps a health record made elsewhere (a thread that supervises
    /// itself, such as the face engine's) in this book.
    pub fn adopt(&self, health: Arc<TaskHealth>) {
        self.list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(health);
    }

    /// Every registered task, in registration order.
    pub fn all(&self) -> Vec<Arc<TaskHealth>> {
        self.list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The tasks that are not running now (failed and waiting for their
    /// restart, or not started yet).
    pub fn down(&self) -> Vec<Arc<TaskHealth>> {
        self.all().into_iter().filter(|t| !t.is_up()).collect()
    }

    /// One line per task that is down, for `/readyz`: its name, restarts
    /// and last failure.
    pub fn down_report(&self) -> Vec<String> {
        self.down()
            .iter()
            .map(|t| match t.last_error() {
                Some(why) => format!(
                    "task {} down ({} restarts; last: {why})",
                    t.name,
                    t.restarts()
                ),
                None => format!("task {} not running", t.name),
            })
            .collect()
    }
}

/// A task that ran this long before failing starts again without waiting
/// out the backoff it had built up.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs the task `make` builds, on its own tokio task, until `cancel`
/// fires; a failure (error, panic, or an end before cancellation) is logged
/// with the task's name, counted in `health` (down until it runs again),
/// and followed by a new task after a capped backoff (200 ms doubling to
/// 30 s).
///
/// # Cancel safety
/// The task itself must stop when `cancel` fires; the supervisor then
/// returns once it has ended.
pub async fn supervise<F, Fut, E>(health: Arc<TaskHealth>, cancel: CancellationToken, mut make: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let name = health.name.clone();
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let started = Instant::now();
        health.set_up();
        let outcome = tokio::spawn(make()).await;
        let why = match outcome {
            Ok(Ok(())) if cancel.is_cancelled() => break,
            Ok(Ok(())) => "ended by itself".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(e) if e.is_panic() => format!("panicked: {}", panic_text(e.into_panic())),
            Err(_) => break,
        };
        if cancel.is_cancelled() {
            // It failed because it was being stopped: not a failure.
            break;
        }
        tracing::error!(task = %name, error = %why, "Task failed; restarting after a backoff.");
        health.failed(why);
        if started.elapsed() >= HEALTHY_RUN {
            backoff.reset();
        }
        if !backoff.wait(&cancel).await {
            break;
        }
    }
    health.up.store(false, Ordering::Relaxed);
}

/// The message of a panic payload (`&str` or `String`), else a placeholder.
pub fn panic_text(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => match p.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "(no message)".to_owned(),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_or_fails_is_started_again_until_cancelled() {
        let tasks = Tasks::new();
        let health = tasks.register("test");
        let cancel = CancellationToken::new();
        let runs = Arc::new(AtomicU64::new(0));
        let (r, c) = (runs.clone(), cancel.clone());
        let sup = tokio::spawn(supervise(health.clone(), cancel.clone(), move || {
            let (r, c) = (r.clone(), c.clone());
            async move {
                match r.fetch_add(1, Ordering::Relaxed) {
                    0 => panic!("first run panics"),
                    1 => Err("second run fails".to_owned()),
                    _ => {
                        c.cancelled().await;
                        Ok(())
                    }
                }
            }
        }));
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(health.restarts() == 2 && health.is_up()) {
            assert!(Instant::now() < deadline, "restarts {}", health.restarts());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(tasks.down().is_empty());
        assert_eq!(health.last_error().as_deref(), Some("second run fails"));
        cancel.cancel();
        sup.await.unwrap();
        assert!(!health.is_up());
        assert_eq!(health.restarts(), 2);
        assert_eq!(runs.load(Ordering::Relaxed), 3);
    }

    #[tokio::test]
    async fn a_failed_task_is_down_while_it_waits_for_its_restart() {
        let tasks = Tasks::new();
        let health = tasks.register("flaky");
        let cancel = CancellationToken::new();
        let sup = tokio::spawn(supervise(health.clone(), cancel.clone(), || async {
            Err::<(), _>("always fails")
        }));
        let deadline = Instant::now() + Duration::from_secs(30);
        while health.restarts() < 3 {
            assert!(Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // After a few failures the backoff (≥ 0.4 s) keeps it down.
        let down: Vec<String> = tasks.down().iter().map(|t| t.name.clone()).collect();
        assert_eq!(down, ["flaky"]);
        cancel.cancel();
        sup.await.unwrap();
    }
}
