//! The baseline of the API benchmark: a minimal axum handler on the same
//! runtime settings, answering a small JSON body.
//!
//! `cargo run --release -p anju-api --example minimal -- 127.0.0.1:18081`

use axum::routing::get;
use axum::{Json, Router};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18081".to_owned());
    let app = Router::new().route("/", get(|| async { Json(serde_json::json!({"ok": true})) }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!("minimal handler on http://{addr}/");
    axum::serve(listener, app).await
}
