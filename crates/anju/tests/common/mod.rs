//! What the real-path tests of the `anju` binary share: child processes
//! that stop on drop, free ports, collected output, waiting, a minimal HTTP
//! client, the `anju` command.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // test code; not every test uses all of it

use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// A child process stopped (SIGINT, then SIGKILL) when dropped.
pub struct Proc(pub Child, pub &'static str);

impl Drop for Proc {
    fn drop(&mut self) {
        let pid = self.0.id().to_string();
        let asked = Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .is_ok_and(|s| s.success());
        if asked {
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_secs(15) {
                if matches!(self.0.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        eprintln!("{} did not stop on SIGINT; killed", self.1);
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

impl Proc {
    pub fn alive(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn collect(r: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = lines.clone();
    std::thread::spawn(move || {
        for l in BufReader::new(r).lines() {
            let Ok(l) = l else { break };
            sink.lock().unwrap().push(l);
        }
    });
    lines
}

pub fn wait_until<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A minimal HTTP/1.1 exchange (Connection: close): status and body text.
/// A minimal HTTP/1.1 exchange with extra request headers.
pub fn http_with(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    http_exchange(port, method, path, token, body, headers)
}

pub fn http_text(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = http_bytes(port, method, path, token, body);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A minimal HTTP/1.1 exchange (Connection: close): status, the response
/// head (lower-cased) and the body as bytes.
pub fn http_bytes(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, Vec<u8>) {
    http_exchange(port, method, path, token, body, &[])
}

fn http_exchange(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
    headers: &[(&str, &str)],
) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
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
    (status, head.to_ascii_lowercase(), body)
}

pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
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

/// [`http_text`] with the body parsed as JSON (`Null` when it is not).
pub fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let (st, text) = http_text(port, method, path, token, body);
    (st, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn anju() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_anju"));
    c.current_dir(ROOT).env("ANJU_LOG", "warn");
    c
}

/// Estate `code`: building 1 with a door reader, a QR scanner, and three
/// tenants (one an elderly person living alone).
pub fn write_site(dir: &Path, code: &str) -> PathBuf {
    let site = format!(
        r#"timezone = "Asia/Shanghai"
ledger = "ledger.csv"
credentials = "credentials.csv"

[[estate]]
code = "{code}"
name = "Hostile input test estate"
office = "Test office"

[[estate.building]]
code = "1"
grid = "G1"

[[estate.grid]]
code = "G1"
staff = []

[[estate.entrance]]
code = "door-1"
kind = "building_door"
building = "1"

[[estate.reader]]
id = "gr-1"
entrance = "door-1"

[[estate.scanner]]
id = "qr-1"
entrance = "door-1"
"#
    );
    std::fs::write(dir.join("site.toml"), site).unwrap();
    let mut ledger = String::from(
        "estate,building,unit,area_m2,household,person_id,name,role,id_number,phone,birth_year,lives_alone,lease_start,lease_end\n",
    );
    let mut creds = String::from("kind,credential_id,person_id,valid_from,valid_to\n");
    for (i, (unit, person, alone)) in [("101", "AA", 0), ("102", "BB", 0), ("103", "CC", 1)]
        .iter()
        .enumerate()
    {
        let idn = anju_rules::sim::id_number(i as u64 + 1, 1950);
        ledger.push_str(&format!(
            "{code},1,{unit},50,H{unit},{person},Person {person},tenant,{idn},1380000000{i},1950,{alone},2020-01-01,\n"
        ));
        creds.push_str(&format!("card,C-{person},{person},,\n"));
    }
    std::fs::write(dir.join("ledger.csv"), ledger).unwrap();
    std::fs::write(dir.join("credentials.csv"), creds).unwrap();
    dir.join("site.toml")
}

/// One message over Mosquitto (payload on stdin: any bytes).
pub fn publish(topic: &str, payload: &[u8]) {
    let mut p = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            "1883",
            "-q",
            "1",
            "-t",
            topic,
            // `-n`: a zero-length message (`-s` refuses an empty stdin).
            if payload.is_empty() { "-n" } else { "-s" },
        ])
        .stdin(Stdio::piped())
        .spawn()
        .expect("mosquitto_pub (Debian mosquitto-clients)");
    p.stdin.take().unwrap().write_all(payload).unwrap();
    assert!(p.wait().unwrap().success(), "mosquitto_pub {topic}");
}

/// `anju import --site SITE --db DB`; panics with its output on failure.
pub fn import_site(site: &str, db: &str) {
    let out = anju()
        .args(["import", "--site", site, "--db", db])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "import: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `anju user add NAME --role ROLE --all-estates --db DB` with `password`.
pub fn add_user(db: &str, name: &str, role: &str, password: &str) {
    let st = anju()
        .args(["user", "add", name, "--role", role, "--all-estates"])
        .args(["--db", db])
        .env("ANJU_PASSWORD", password)
        .status()
        .unwrap();
    assert!(st.success(), "user add {name}");
}

/// Logs `name` in on the API at `port` once it answers (60 s at most).
pub fn login_when_up(port: u16, name: &str, password: &str) -> String {
    let body = serde_json::json!({"username": name, "password": password}).to_string();
    wait_until("the API", 60, || {
        TcpStream::connect(("127.0.0.1", port)).ok()?;
        let (st, v) = http_text(port, "POST", "/api/v1/auth/login", None, &body);
        let v: Value = serde_json::from_str(&v).ok()?;
        (st == 200).then(|| v["token"].as_str().unwrap().to_owned())
    })
}

/// Events of `estate` in the store at `url`.
pub fn count_events(rt: &tokio::runtime::Runtime, url: &str, estate: &str) -> i64 {
    rt.block_on(async {
        let s = anju_store::Store::connect(url).await.unwrap();
        let n = s.count_events(Some(estate)).await.unwrap();
        s.close().await;
        n
    })
}

/// Publishes heartbeats of reader `gr-1` until one reaches the store at
/// `url`: the edge is subscribed and forwarding (90 s at most).
pub fn wait_for_edge(rt: &tokio::runtime::Runtime, url: &str, estate: &str) {
    wait_until("the edge forwarding a heartbeat", 90, || {
        publish(
            &format!("anju/v1/{estate}/gate/gr-1/status"),
            format!(
                r#"{{"ts":"{}","online":true}}"#,
                chrono::Utc::now().to_rfc3339()
            )
            .as_bytes(),
        );
        std::thread::sleep(Duration::from_millis(500));
        (count_events(rt, url, estate) > 0).then_some(())
    });
}

/// One event of a live alert stream: its `id` and its alert.
#[derive(Debug, Clone)]
pub struct SseAlert {
    pub id: u64,
    pub alert: Value,
}

/// Opens `GET /api/v1/alerts/stream` on `port` and reads it on a thread
/// until the server closes it: the alert events as they arrive.
pub fn sse_alerts(port: u16, token: &str) -> Arc<Mutex<Vec<SseAlert>>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET /api/v1/alerts/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let out: Arc<Mutex<Vec<SseAlert>>> = Arc::default();
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut r = BufReader::new(s);
        let mut line = String::new();
        // The head.
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
        }
        // Chunked body: SSE text, split into events at blank lines.
        let mut text = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Ok(n) = usize::from_str_radix(line.trim(), 16) else {
                return;
            };
            if n == 0 {
                return;
            }
            let mut chunk = vec![0u8; n + 2];
            if r.read_exact(&mut chunk).is_err() {
                return;
            }
            text.push_str(&String::from_utf8_lossy(&chunk[..n]));
            while let Some(end) = text.find("\n\n") {
                let ev: String = text.drain(..end + 2).collect();
                let (mut id, mut data) = (None, None);
                for l in ev.lines() {
                    if let Some(v) = l.strip_prefix("id:") {
                        id = v.trim().parse::<u64>().ok();
                    } else if let Some(v) = l.strip_prefix("data:") {
                        data = serde_json::from_str::<Value>(v.trim()).ok();
                    }
                }
                if let (Some(id), Some(alert)) = (id, data) {
                    sink.lock().unwrap().push(SseAlert { id, alert });
                }
            }
        }
    });
    out
}
