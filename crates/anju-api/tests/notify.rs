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
    // Cooldown: the same code and subject again sends nothing; another code
    // does, and so does the same code for another subject (a second elderly
    // person's alert in the same grid is its own message).
    assert_eq!(
        n.notify(&alert(AlertCode::SubletSuspected), Some("G1"))
            .await,
        0
    );
    assert_eq!(n.notify(&alert(AlertCode::Tailgating), Some("G1")).await, 4);
    let mut other = alert(AlertCode::SubletSuspected);
    other.subject = Subject::Unit("FCY/1/403".into());
    assert_eq!(n.notify(&other, Some("G1")).await, 3);
}

/// A delivery that failed does not start the cooldown: the next alert of
/// the same code and subject is tried again.
#[tokio::test]
async fn a_failed_delivery_starts_no_cooldown() {
    let (base, log) = receiver(2).await;
    let n = Notifier::new(NotifierConfig {
        targets: vec![target("json", format!("{base}/json"), WebhookKind::Json)],
        attempts: 1,
        backoff: Duration::from_millis(5),
        cooldown: Duration::from_secs(600),
        ..NotifierConfig::default()
    });
    // The receiver fails its first two requests.
    assert_eq!(
        n.notify(&alert(AlertCode::ElderlyNoActivity), None).await,
        0
    );
    assert_eq!(
        n.notify(&alert(AlertCode::ElderlyNoActivity), None).await,
        0
    );
    assert_eq!(
        n.notify(&alert(AlertCode::ElderlyNoActivity), None).await,
        1
    );
    assert_eq!(log.lock().unwrap().len(), 1);
    // Delivered: now it cools down.
    assert_eq!(
        n.notify(&alert(AlertCode::ElderlyNoActivity), None).await,
        0
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

/// An HTTPS receiver with a certificate for localhost/127.0.0.1 from a
/// throwaway CA made by the openssl CLI; returns the CA certificate, the port
/// and the first body it receives.
async fn tls_receiver() -> (
    rustls::pki_types::CertificateDer<'static>,
    u16,
    tokio::sync::oneshot::Receiver<Vec<u8>>,
) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = std::env::temp_dir().join(format!("anju-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A CA, and a server certificate it signs (webpki refuses a CA
    // certificate as the server's own).
    let openssl = |args: &[&str]| {
        let st = std::process::Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl CLI (Debian package openssl)");
        assert!(st.success(), "openssl {args:?}");
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=Anju test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-new"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "key.pem",
                "-out",
                "leaf.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
        "-out",
        "cert.pem",
    ]);
    let ca = CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let cert = CertificateDer::from_pem_file(&cert).unwrap();
    let key = PrivateKeyDer::from_pem_file(&key).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut tx = Some(tx);
        loop {
            let (tcp, _) = l.accept().await.unwrap();
            // A client that rejects the certificate ends its handshake.
            let Ok(mut s) = acceptor.accept(tcp).await else {
                continue;
            };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = s.read(&mut chunk).await.unwrap();
                assert!(n > 0, "request ended early");
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).into_owned();
                if let Some(i) = text.find("\r\n\r\n") {
                    let len: usize = text
                        .lines()
                        .find_map(|l| {
                            l.split_once(':')
                                .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                                .map(|(_, v)| v.to_owned())
                        })
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    if buf.len() >= i + 4 + len {
                        break buf[i + 4..i + 4 + len].to_vec();
                    }
                }
            };
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            s.shutdown().await.ok();
            if let Some(tx) = tx.take() {
                tx.send(body).ok();
            }
        }
    });
    (ca, port, rx)
}

#[tokio::test]
async fn https_webhooks_verify_the_server() {
    use anju_api::notify::{http_transport, http_transport_with_roots};
    let (ca, port, got) = tls_receiver().await;
    let url = format!("https://localhost:{port}/cgi-bin/webhook/send?key=k");
    // The system's CA store does not trust the throwaway CA.
    let system = http_transport(Duration::from_secs(5));
    let err = system(url.clone(), b"{}".to_vec()).await.unwrap_err();
    assert!(err.contains("TLS"), "{err}");
    // Trusting it, the POST goes through, body intact.
    let trusted = http_transport_with_roots(Duration::from_secs(5), vec![ca]);
    let body = r#"{"msgtype":"markdown","markdown":{"content":"门被强行打开"}}"#
        .as_bytes()
        .to_vec();
    assert_eq!(trusted(url, body.clone()).await, Ok(200));
    assert_eq!(got.await.unwrap(), body);
    let bad = trusted("ftp://localhost/x".into(), vec![])
        .await
        .unwrap_err();
    assert!(bad.contains("http:// or https://"), "{bad}");
}
