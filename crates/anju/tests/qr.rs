//! `anju qr keygen` / `anju qr issue`, verified through `anju replay` on a
//! small site with a `[qr]` table.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn anju(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_anju"))
        .args(args)
        .env("ANJU_LOG", "warn")
        .env_remove("ANJU_DB")
        .output()
        .expect("run anju")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "anju failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).unwrap()
}

/// The replay fixture site, plus `extra` appended to site.toml.
fn site(dir: &Path, extra: &str) -> PathBuf {
    let fx = repo().join("tests/fixtures/replay");
    for f in [
        "site.toml",
        "ledger.csv",
        "credentials.csv",
        "watchlist.csv",
    ] {
        std::fs::copy(fx.join(f), dir.join(f)).unwrap();
    }
    let path = dir.join("site.toml");
    let mut s = std::fs::read_to_string(&path).unwrap();
    s.push_str(extra);
    std::fs::write(&path, s).unwrap();
    path
}

fn scan(ts: &str, id: &str, code: &str) -> String {
    serde_json::json!({
        "kind": "qr_scan", "device": "qr-b2", "event_id": id, "ts": ts, "code": code,
    })
    .to_string()
}

/// Replays `lines`; the notes of the `qr_invalid` evidence, in order.
fn invalid_notes(site: &Path, dir: &Path, lines: &[String]) -> Vec<String> {
    let events = dir.join("events.jsonl");
    std::fs::write(&events, lines.join("\n") + "\n").unwrap();
    let out = ok(&anju(&[
        "replay",
        "--site",
        site.to_str().unwrap(),
        "--events",
        events.to_str().unwrap(),
    ]));
    let mut notes = Vec::new();
    for l in out.lines() {
        let a: serde_json::Value = serde_json::from_str(l).unwrap();
        if a["code"] == "qr_invalid" {
            for e in a["evidence"].as_array().unwrap() {
                let n = e["note"].as_str().unwrap_or_default().to_owned();
                if !notes.contains(&n) {
                    notes.push(n);
                }
            }
        }
    }
    notes
}

#[test]
fn keygen_issue_and_replay_verify() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("qr.key");
    let public = ok(&anju(&["qr", "keygen", "--out", key.to_str().unwrap()]));
    let public = public.trim();
    assert_eq!(public.len(), 64, "{public}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("qr.key.pub"))
            .unwrap()
            .trim(),
        public
    );
    // Never overwrites a key.
    assert!(!anju(&["qr", "keygen", "--out", key.to_str().unwrap()])
        .status
        .success());

    let png = dir.path().join("pass.png");
    let issue = |extra: &[&str]| {
        let mut args = vec![
            "qr",
            "issue",
            "--key",
            key.to_str().unwrap(),
            "--unit",
            "FCY/2/203",
            "--kind",
            "visitor",
            "--valid-from",
            "2026-03-02T06:00:00Z",
            "--valid-to",
            "2026-03-02T18:00:00+08:00",
        ];
        args.extend_from_slice(extra);
        ok(&anju(&args)).trim().to_owned()
    };
    let code = issue(&[
        "--single-use",
        "--id",
        "V-1",
        "--png",
        png.to_str().unwrap(),
    ]);
    assert!(code.starts_with("AJ1."), "{code}");
    let img = std::fs::read(&png).unwrap();
    assert_eq!(&img[..8], b"\x89PNG\r\n\x1a\n");
    let multi = issue(&["--id", "V-2"]);

    // Tamper: another unit in the payload, same signature.
    let parts: Vec<&str> = code.split('.').collect();
    let payload = anju_rules::qr::b64url_decode(parts[1]).unwrap();
    let forged_payload = String::from_utf8(payload)
        .unwrap()
        .replace("FCY/2/203", "FCY/2/204");
    let tampered = format!(
        "AJ1.{}.{}",
        anju_rules::qr::b64url_encode(forged_payload.as_bytes()),
        parts[2]
    );

    let site_keys = site(
        dir.path(),
        &format!("\n[qr]\npublic_keys = [\"{public}\"]\nrevoked = [\"V-9\"]\n"),
    );
    // A valid pass: no qr_invalid.
    let notes = invalid_notes(
        &site_keys,
        dir.path(),
        &[
            scan("2026-03-02T07:00:00Z", "e1", &code),
            scan("2026-03-02T07:05:00Z", "e2", &multi),
            scan("2026-03-02T07:06:00Z", "e3", &multi),
        ],
    );
    assert!(notes.is_empty(), "{notes:?}");
    // A tampered one is forged; a second use of a single-use one replayed.
    let notes = invalid_notes(
        &site_keys,
        dir.path(),
        &[
            scan("2026-03-02T07:00:00Z", "e1", &tampered),
            scan("2026-03-02T07:01:00Z", "e2", &code),
            scan("2026-03-02T07:02:00Z", "e3", &code),
        ],
    );
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[0].starts_with("forged"), "{notes:?}");
    assert!(notes[1].starts_with("replayed"), "{notes:?}");

    // Signed by another key: forged.
    let other = dir.path().join("other.key");
    ok(&anju(&["qr", "keygen", "--out", other.to_str().unwrap()]));
    let foreign = ok(&anju(&[
        "qr",
        "issue",
        "--key",
        other.to_str().unwrap(),
        "--unit",
        "FCY/2/203",
        "--kind",
        "resident",
        "--valid-from",
        "2026-03-02T06:00:00Z",
        "--valid-to",
        "2026-03-03T06:00:00Z",
    ]));
    let notes = invalid_notes(
        &site_keys,
        dir.path(),
        &[scan("2026-03-02T07:00:00Z", "e1", foreign.trim())],
    );
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].starts_with("forged"), "{notes:?}");
}

#[test]
fn issue_rejects_bad_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k");
    ok(&anju(&["qr", "keygen", "--out", key.to_str().unwrap()]));
    for bad in [
        ["--unit", "FCY//1", "--valid-to", "2026-03-03T06:00:00Z"],
        ["--unit", "FCY/1/101", "--valid-to", "tomorrow"],
        ["--unit", "FCY/1/101", "--valid-to", "2000-01-01T00:00:00Z"],
    ] {
        let mut args = vec![
            "qr",
            "issue",
            "--key",
            key.to_str().unwrap(),
            "--kind",
            "visitor",
        ];
        args.extend_from_slice(&bad);
        let o = anju(&args);
        assert!(!o.status.success(), "{bad:?}");
    }
    let o = anju(&[
        "qr",
        "issue",
        "--key",
        dir.path().join("missing").to_str().unwrap(),
        "--unit",
        "FCY/1/101",
        "--kind",
        "visitor",
        "--valid-to",
        "2099-01-01T00:00:00Z",
    ]);
    assert!(!o.status.success());
}
