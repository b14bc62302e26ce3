//! Supervised loops (DESIGN §6a): a named long-running task that fails —
//! returns an error, panics, or ends by itself before it was cancelled — is
//! logged, counted and started again after a backoff, until cancelled.

use crate::Backoff;
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// What a supervised task's health looks like from outside (for logs,
/// metrics and readiness).
#[derive(Debug)]
pub struct TaskHealth {
    pub name: &'static str,
    /// Running now.
    pub up: AtomicBool,
    /// Times it failed and was started again.
    pub restarts: AtomicU64,
}

impl TaskHealth {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            up: AtomicBool::new(false),
            restarts: AtomicU64::new(0),
        })
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
}

/// A task that ran this long before failing starts again without waiting
/// out the backoff it had built up.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// Runs the task `make` builds, on its own tokio task, until `cancel`
/// fires; a failure (error, panic, or an end before cancellation) is logged
/// with the task's name, counted in `health`, and followed by a new task
/// after a capped backoff (200 ms doubling to 30 s).
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
    let name = health.name;
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        if cancel.is_cancelled() {
            break;
        }
        let started = Instant::now();
        health.up.store(true, Ordering::Relaxed);
        let outcome = tokio::spawn(make()).await;
        health.up.store(false, Ordering::Relaxed);
        match outcome {
            Ok(Ok(())) if cancel.is_cancelled() => break,
            Ok(Ok(())) => tracing::error!(task = name, "Task ended by itself; restarting."),
            Ok(Err(e)) => tracing::error!(task = name, error = %e, "Task failed; restarting."),
            Err(e) if e.is_panic() => tracing::error!(task = name, "Task panicked; restarting."),
            Err(_) => break,
        }
        health.restarts.fetch_add(1, Ordering::Relaxed);
        if started.elapsed() >= HEALTHY_RUN {
            backoff.reset();
        }
        if !backoff.wait(&cancel).await {
            break;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_or_fails_is_started_again_until_cancelled() {
        let health = TaskHealth::new("test");
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
        cancel.cancel();
        sup.await.unwrap();
        assert!(!health.is_up());
        assert_eq!(health.restarts(), 2);
        assert_eq!(runs.load(Ordering::Relaxed), 3);
    }
}
