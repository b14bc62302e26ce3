//! Drives `anju demo` end to end: login, an alert on the live SSE feed, the
//! 24-hour access report as JSON and as CSV.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Demo(Child);

impl Drop for Demo {
    /// Ctrl-C first (the demo stops its simulated camera and drains), then,
    /// if it has not exited within 15 s, SIGKILL.
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let asked = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .is_ok_and(|s| s.success());
        if asked {
            let t0 = std::time::Instant::now();
            while t0.elapsed() < std::time::Duration::from_secs(15) {
                if matches!(self.0.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
        }
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal HTTP/1.1 exchange (Connection: close): status, headers, body.
fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).unwrap();
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).unwrap();
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = buf[split + 4..].to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    (status, head, body)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(std::str::from_utf8(&b[..eol]).unwrap().trim(), 16).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
    out
}

#[test]
fn demo_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_anju"))
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--mqtt-port",
            "0",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
        .env("ANJU_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut demo = Demo(child);
    // It prints the users when it is ready.
    let mut out = BufReader::new(demo.0.stdout.take().unwrap());
    let mut printed = String::new();
    while !printed.contains("Press Ctrl-C") {
        let mut line = String::new();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "demo exited early:\n{printed}"
        );
        printed.push_str(&line);
    }
    for u in ["admin", "supervisor", "operator", "field"] {
        assert!(printed.contains(u), "{printed}");
    }

    // Login.
    let (st, _, body) = http(
        port,
        "POST",
        "/api/v1/auth/login",
        &[("Content-Type", "application/json")],
        r#"{"username":"operator","password":"operator-demo"}"#,
    );
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let token = serde_json::from_slice::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth = format!("Bearer {token}");

    // An alert on the live feed (the story raises several within a minute;
    // Last-Event-ID 0 also replays what was raised before we connected).
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nAccept: text/event-stream\r\nLast-Event-ID: 0\r\n\r\n"
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(150);
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline && !(seen.contains("event: alert") && seen.contains("\"code\""))
    {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            Err(_) => {}
        }
    }
    assert!(
        seen.contains("event: alert"),
        "no alert on the SSE feed:\n{seen}"
    );
    let data = seen
        .lines()
        .find_map(|l| l.strip_prefix("data:"))
        .expect("a data line");
    let alert: serde_json::Value = serde_json::from_str(data.trim()).unwrap();
    for k in [
        "id", "code", "severity", "status", "estate", "subject", "evidence", "title_zh",
    ] {
        assert!(alert.get(k).is_some(), "{k} missing in {alert}");
    }

    // The access report of today (site time), JSON and CSV.
    let today = chrono::Utc::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y-%m-%d")
        .to_string();
    let path = format!("/api/v1/reports/access?estate=FCY&date={today}");
    let (st, _, body) = http(port, "GET", &path, &[("Authorization", &auth)], "");
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let report: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(report.is_object(), "{report}");
    let (st, head, body) = http(
        port,
        "GET",
        &path,
        &[("Authorization", &auth), ("Accept", "text/csv")],
        "",
    );
    assert_eq!(st, 200);
    assert!(head.to_ascii_lowercase().contains("text/csv"), "{head}");
    assert!(
        body.starts_with(&[0xEF, 0xBB, 0xBF]),
        "CSV starts with a BOM for Excel"
    );
    assert!(body.len() > 3);
}
