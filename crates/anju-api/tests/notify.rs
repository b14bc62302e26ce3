//! Webhooks against a local axum receiver: formats, DingTalk signing,
//! retries with backoff, cooldown per grid and code.
#![allow(clippy::unwrap_used)]

use anju_api::notify::{dingtalk_sign, Notifier, NotifierConfig, WebhookKind, WebhookTarget};
use anju_core::*;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Log = Arc<Mutex<Vec<(String, HashMap<String, String>, serde_json::Value)>>>;

async fn receiver(fail_first: usize) -> (String, Log) {
    let log: Log = Arc::default();
    let fails = Arc::new(Mutex::new(fail_first));
    let app = Router::new()
        .route(
            "/{kind}",
            post(
                |State((log, fails)): State<(Log, Arc<Mutex<usize>>)>,
                 axum::extract::Path(kind): axum::extract::Path<String>,
                 Query(q): Query<HashMap<String, String>>,
                 Json(v): Json<serde_json::Value>| async move {
                    let mut f = fails.lock().unwrap();
                    if *f > 0 {
                        *f -= 1;
                        return StatusCode::SERVICE_UNAVAILABLE;
                    }
                    log.lock().unwrap().push((kind, q, v));
                    StatusCode::OK
                },
            ),
        )
        .with_state((log.clone(), fails));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

fn alert(code: AlertCode) -> Alert {
    let t = Utc::now();
    Alert {
        id: 7,
        code,
        severity: code.default_severity(),
        status: AlertStatus::Open,
        estate: "FCY".into(),
        building: Some("1".into()),
        unit: Some("402".into()),
        subject: Subject::Unit("FCY/1/402".into()),
        opened_at: t,
        updated_at: t,
        evidence: vec![],
        title_zh: code.title_zh().into(),
        title_en: code.title_en().into(),
        outcome: None,
        reason: None,
    }
}

fn target(name: &str, url: String, kind: WebhookKind) -> WebhookTarget {
    WebhookTarget {
        name: name.into(),
        url,
        kind,
        estates: vec![],
        grids: vec![],
        codes: vec![],
    }
}

#[tokio::test]
async fn formats_signing_retries_cooldown() {
    let (base, log) = receiver(2).await;
    let cfg = NotifierConfig {
        targets: vec![
            target("json", format!("{base}/json"), WebhookKind::Json),
            target("wecom", format!("{base}/wecom"), WebhookKind::WeCom),
            target(
                "ding",
                format!("{base}/ding?access_token=abc"),
                WebhookKind::DingTalk {
                    secret: Some("SEC".into()),
                },
            ),
            WebhookTarget {
                codes: vec![AlertCode::Tailgating],
                ..target(
                    "only-tailgating",
                    format!("{base}/other"),
                    WebhookKind::Json,
                )
            },
        ],
        cooldown: Duration::from_secs(60),
        attempts: 4,
        backoff: Duration::from_millis(10),
        timeout: Duration::from_secs(5),
    };
    let n = Notifier::new(cfg);
    // The receiver fails twice: the first target retries and gets through.
    let sent = n
        .notify(&alert(AlertCode::SubletSuspected), Some("G1"))
        .await;
    assert_eq!(sent, 3);
    {
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 3);
        let json = log.iter().find(|e| e.0 == "json").unwrap();
        assert_eq!(json.2["alert"]["code"], "sublet_suspected");
        assert_eq!(json.2["grid"], "G1");
        let wecom = log.iter().find(|e| e.0 == "wecom").unwrap();
        assert_eq!(wecom.2["msgtype"], "markdown");
        assert!(wecom.2["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("疑似转租转借"));
        let ding = log.iter().find(|e| e.0 == "ding").unwrap();
        assert_eq!(ding.1["access_token"], "abc");
        let ts: i64 = ding.1["timestamp"].parse().unwrap();
        // The query string arrives decoded; compare with the encoded form decoded.
        let expect = dingtalk_sign("SEC", ts)
            .replace("%2B", "+")
            .replace("%2F", "/")
            .replace("%3D", "=");
        assert_eq!(ding.1["sign"], expect);
        assert_eq!(ding.2["markdown"]["title"], "疑似转租转借");
    }
    // Cooldown: the same grid and code again sends nothing; another code does.
    assert_eq!(
        n.notify(&alert(AlertCode::SubletSuspected), Some("G1"))
            .await,
        0
    );
    assert_eq!(n.notify(&alert(AlertCode::Tailgating), Some("G1")).await, 4);
    assert_eq!(
        n.notify(&alert(AlertCode::SubletSuspected), Some("G2"))
            .await,
        3
    );
}

#[tokio::test]
async fn gives_up_after_attempts() {
    let (base, log) = receiver(100).await;
    let n = Notifier::new(NotifierConfig {
        targets: vec![target("json", format!("{base}/json"), WebhookKind::Json)],
        attempts: 3,
        backoff: Duration::from_millis(5),
        ..NotifierConfig::default()
    });
    assert_eq!(n.notify(&alert(AlertCode::DoorForced), None).await, 0);
    assert!(log.lock().unwrap().is_empty());
    // Unreachable endpoint: an error, not a hang or a panic.
    let n = Notifier::new(NotifierConfig {
        targets: vec![target(
            "dead",
            "http://127.0.0.1:9/x".into(),
            WebhookKind::Json,
        )],
        attempts: 2,
        backoff: Duration::from_millis(5),
        ..NotifierConfig::default()
    });
    assert_eq!(n.notify(&alert(AlertCode::DoorForced), None).await, 0);
}
