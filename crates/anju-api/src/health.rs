//! `/healthz`, `/readyz` and `/metrics` of a process that has no dashboard
//! API — `anju edge --health ADDR` — from its book of supervised tasks.

use anju_backoff::Tasks;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

#[derive(Clone)]
struct Health {
    tasks: Arc<Tasks>,
    metrics: Arc<crate::Metrics>,
}

/// The health endpoints over `tasks`: `/readyz` is 503 naming every task
/// that is down (with its restarts and last error), `/metrics` has
/// `anju_task_up` and `anju_task_restarts_total`.
pub fn health_router(tasks: Arc<Tasks>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Health {
            tasks,
            metrics: Arc::default(),
        })
}

async fn readyz(State(h): State<Health>) -> Response {
    let down = h.tasks.down_report();
    if down.is_empty() {
        (StatusCode::OK, "ready").into_response()
    } else {
        crate::ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            down.join("; "),
        )
        .into_response()
    }
}

async fn metrics(State(h): State<Health>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.render(&h.tasks),
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt as _;

    #[tokio::test]
    async fn readyz_names_a_task_that_is_down() {
        let tasks = Tasks::new();
        let t = tasks.register("ingest:FCY");
        t.set_up();
        let app = health_router(tasks.clone());
        let get = |p: &'static str| Request::builder().uri(p).body(Body::empty()).unwrap();
        let r = app.clone().oneshot(get("/readyz")).await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        t.failed("panicked: boom");
        let r = app.clone().oneshot(get("/readyz")).await.unwrap();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("ingest:FCY") && text.contains("boom"),
            "{text}"
        );
        let r = app.oneshot(get("/metrics")).await.unwrap();
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        assert!(String::from_utf8_lossy(&body)
            .contains("anju_task_restarts_total{task=\"ingest:FCY\"} 1"));
    }
}
