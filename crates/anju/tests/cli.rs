//! The CLI contract, driven through the real binary.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

use anju_store::testutil::TestStore;
use anju_store::Backend;
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

fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "anju failed: {}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is JSON")
}

async fn import_city(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("city");
    let gen = anju(&["sim", "site", "--out", site.to_str().unwrap()]);
    let counts = json(&gen);
    let t = TestStore::new(backend).await.unwrap();
    let out = anju(&[
        "import",
        "--site",
        site.join("site.toml").to_str().unwrap(),
        "--db",
        &t.url,
    ]);
    let sum = json(&out);
    assert_eq!(sum["estates"], 13);
    assert_eq!(sum["units"], 5803);
    assert_eq!(sum["persons"], counts["persons"]);
    assert_eq!(sum["credentials"], counts["credentials"]);
    let persons = sum["persons"].as_i64().unwrap();
    assert!((13_500..14_500).contains(&persons), "{sum}");
    // Importing the same site again changes nothing.
    let again = json(&anju(&[
        "import",
        "--site",
        site.join("site.toml").to_str().unwrap(),
        "--db",
        &t.url,
    ]));
    assert_eq!(again, sum);
    // A dry run of the same site: nothing would change (the stored registry
    // reads back as the file describes it).
    let site_toml = site.join("site.toml");
    let dry = |path: &Path| {
        json(&anju(&[
            "import",
            "--site",
            path.to_str().unwrap(),
            "--db",
            &t.url,
            "--dry-run",
        ]))
    };
    let d = dry(&site_toml);
    assert_eq!(d["would_change"], false, "{}", d["changes"]);
    // A changed ledger: one household's lease ends, another tenant's phone
    // changes, one card is gone. The dry run lists exactly that, and writes
    // nothing.
    let ledger = std::fs::read_to_string(site.join("ledger.csv")).unwrap();
    let mut lines: Vec<String> = ledger.lines().map(str::to_owned).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (phone, end, pid) = (col("phone"), col("lease_end"), col("person_id"));
    let mut cells: Vec<String> = lines[1].split(',').map(str::to_owned).collect();
    cells[end] = "2026-11-30".into();
    let moved = cells[pid].clone();
    lines[1] = cells.join(",");
    let mut cells: Vec<String> = lines[2].split(',').map(str::to_owned).collect();
    cells[phone] = "13900000000".into();
    lines[2] = cells.join(",");
    std::fs::write(site.join("ledger.csv"), lines.join("\n") + "\n").unwrap();
    let creds = std::fs::read_to_string(site.join("credentials.csv")).unwrap();
    let mut clines: Vec<&str> = creds.lines().collect();
    let gone = clines.remove(1).to_owned();
    std::fs::write(site.join("credentials.csv"), clines.join("\n") + "\n").unwrap();
    let d = dry(&site_toml);
    let c = &d["changes"];
    assert_eq!(d["would_change"], true);
    assert_eq!(c["persons"]["changed"].as_array().unwrap().len(), 2, "{c}");
    assert_eq!(c["moved_out"].as_array().unwrap().len(), 1);
    assert_eq!(c["moved_out"][0]["person"], moved.as_str());
    assert_eq!(c["credentials"]["removed"].as_array().unwrap().len(), 1);
    assert!(gone.contains(c["credentials"]["removed"][0]["id"].as_str().unwrap()));
    for kind in [
        "estates",
        "grids",
        "buildings",
        "entrances",
        "devices",
        "units",
        "watchlist",
    ] {
        assert_eq!(c[kind]["added"].as_array().unwrap().len(), 0, "{kind}");
        assert_eq!(c[kind]["changed"].as_array().unwrap().len(), 0, "{kind}");
    }
    assert_eq!(c["persons"]["added"].as_array().unwrap().len(), 0);
    // Nothing was written: a second dry run shows the same changes.
    assert_eq!(dry(&site_toml), d);
    // The stored ledger exported as XLSX imports back unchanged.
    let xl = dir.path().join("exported");
    let ex = json(&anju(&[
        "export",
        "--db",
        &t.url,
        "--out",
        xl.to_str().unwrap(),
    ]));
    assert_eq!(ex["persons"], sum["persons"]);
    let text = std::fs::read_to_string(&site_toml)
        .unwrap()
        .replace("ledger.csv", "ledger.xlsx")
        .replace("credentials.csv", "credentials.xlsx")
        .replace("watchlist.csv", "watchlist.xlsx");
    assert!(text.contains("ledger.xlsx"), "{text}");
    std::fs::write(xl.join("site.toml"), text).unwrap();
    let d = dry(&xl.join("site.toml"));
    assert_eq!(d["would_change"], false, "{}", d["changes"]);
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn city_sized_import_into_sqlite() {
    import_city(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn city_sized_import_into_postgres() {
    import_city(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ledger_is_rejected_whole_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "site.toml",
        "ledger.csv",
        "credentials.csv",
        "watchlist.csv",
    ] {
        std::fs::copy(repo().join("config/example").join(f), dir.path().join(f)).unwrap();
    }
    let ledger = std::fs::read_to_string(dir.path().join("ledger.csv")).unwrap();
    let mut lines: Vec<String> = ledger.lines().map(str::to_owned).collect();
    lines[1] = lines[1].replace("420602198003120017", "420602198003120018");
    lines[3] = lines[3].replacen("FCY,", "XYZ,", 1);
    lines[5] = lines[5].replace("2020-01-01", "2020-13-01");
    lines[7] = lines[7].replace(",tenant,", ",owner,");
    std::fs::write(dir.path().join("ledger.csv"), lines.join("\n") + "\n").unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let t = TestStore::new(backend).await.unwrap();
        let out = anju(&[
            "import",
            "--site",
            dir.path().join("site.toml").to_str().unwrap(),
            "--db",
            &t.url,
        ]);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        for (line, what) in [
            (2, "check digit"),
            (4, "unknown estate"),
            (6, "not a valid date"),
            (8, "unknown role"),
        ] {
            assert!(
                err.lines()
                    .any(|l| l.contains(&format!("ledger.csv:{line}:")) && l.contains(what)),
                "no error for line {line} ({what}) in:\n{err}"
            );
        }
        assert!(out.stdout.is_empty());
        let sum = t.store.registry_summary().await.unwrap();
        assert_eq!((sum.estates, sum.persons, sum.credentials), (0, 0, 0));
        t.cleanup().await;
    }
}

#[test]
fn replay_prints_contract_alerts_one_per_line() {
    let out = anju(&[
        "replay",
        "--site",
        repo()
            .join("tests/fixtures/replay/site.toml")
            .to_str()
            .unwrap(),
        "--events",
        repo()
            .join("tests/fixtures/replay/two_months.jsonl")
            .to_str()
            .unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut codes = std::collections::BTreeSet::new();
    for line in text.lines() {
        let a: serde_json::Value = serde_json::from_str(line).expect("one JSON object per line");
        for k in [
            "id",
            "code",
            "severity",
            "status",
            "estate",
            "subject",
            "opened_at",
            "updated_at",
            "evidence",
            "title_zh",
            "title_en",
        ] {
            assert!(a.get(k).is_some(), "missing {k} in {line}");
        }
        assert!(a["evidence"]
            .as_array()
            .is_some_and(|e| e.iter().all(|x| x.get("ts").is_some())));
        codes.insert(a["code"].as_str().unwrap().to_owned());
    }
    for c in [
        "credential_misuse",
        "unregistered_long_term_occupant",
        "watchlist_hit",
        "elderly_no_activity",
        "qr_invalid",
        "sublet_suspected",
        "door_forced",
        "vacancy_suspected",
    ] {
        assert!(codes.contains(c), "no {c} alert: {codes:?}");
    }
}

#[test]
fn replay_rejects_bad_lines_but_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let ev = dir.path().join("ev.jsonl");
    std::fs::write(
        &ev,
        "{not json\n{\"ts\":\"2026-03-01T08:00:00+08:00\",\"kind\":\"door\",\"device\":\"gr-b2\",\"event_id\":\"d1\",\"state\":\"forced\"}\n",
    )
    .unwrap();
    let out = anju(&[
        "replay",
        "--site",
        repo()
            .join("tests/fixtures/replay/site.toml")
            .to_str()
            .unwrap(),
        "--events",
        ev.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":1: rejected"), "{err}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("\"door_forced\""), "{text}");
}

#[test]
fn bad_config_and_site_are_clear_errors() {
    let out = Command::new(env!("CARGO_BIN_EXE_anju"))
        .args(["check-config"])
        .env("ANJU_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen must be an address"));
    let ok = anju(&[
        "check-config",
        "--site",
        repo().join("config/example/site.toml").to_str().unwrap(),
    ]);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("5 units"));
}

/// Personal data at rest (issue 12): the database `anju` creates, its
/// folder and its journals are its user's only (umask 077).
#[test]
fn files_the_process_creates_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = data.join("anju.db");
    let out = Command::new(env!("CARGO_BIN_EXE_anju"))
        .args(["import", "--site"])
        .arg(repo().join("config/example/site.toml"))
        .env("ANJU_LOG", "warn")
        .env("ANJU_DATA_DIR", &data)
        .env_remove("ANJU_DB")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&db), 0o600, "{}", db.display());
    assert_eq!(mode(&data), 0o700, "{}", data.display());
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        assert_eq!(mode(&p) & 0o077, 0, "{} is readable by others", p.display());
    }
}
