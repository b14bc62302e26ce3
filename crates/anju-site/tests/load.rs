#![allow(clippy::unwrap_used)] // test code: a panic is the failure report
use anju_site::{gen, load};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn example_site_loads() {
    let site = load(&repo().join("config/example/site.toml")).expect("example site is valid");
    let c = site.registry.counts();
    assert_eq!(c.estates, 1);
    assert_eq!(c.buildings, 2);
    assert_eq!(c.units, 5);
    assert_eq!(c.persons, 9);
    assert_eq!(c.credentials, 10);
    assert_eq!(c.watchlist, 1);
    assert_eq!(site.timezone, anju_core::Tz::Asia__Shanghai);
    let idx = site.registry.index();
    let day = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    let unit = anju_core::UnitKey::new("FCY", "2", "102");
    // The household that moved out keeps its row but is no longer current.
    assert_eq!(idx.unit_rows(&unit).len(), 2);
    let now: Vec<_> = idx
        .occupants_on(&unit, day)
        .iter()
        .map(|p| p.id.0.clone())
        .collect();
    assert_eq!(now, ["P009"]);
}

#[test]
fn xlsx_ledger_equals_csv_ledger() {
    let csv = load(&repo().join("config/example/site.toml")).unwrap();
    let xlsx = load(&repo().join("tests/fixtures/site-xlsx/site.toml")).expect("xlsx site loads");
    assert_eq!(csv.registry.persons, xlsx.registry.persons);
    assert_eq!(csv.registry.units, xlsx.registry.units);
}

fn copy_example(dir: &Path) {
    for f in [
        "site.toml",
        "ledger.csv",
        "credentials.csv",
        "watchlist.csv",
    ] {
        std::fs::copy(repo().join("config/example").join(f), dir.join(f)).unwrap();
    }
}

#[test]
fn four_bad_rows_are_all_reported_with_lines() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    let ledger = std::fs::read_to_string(dir.path().join("ledger.csv")).unwrap();
    let mut lines: Vec<String> = ledger.lines().map(str::to_owned).collect();
    // line 2: bad check digit; line 4: unknown estate; line 6: impossible date;
    // line 8: unknown role.
    lines[1] = lines[1].replace("420602198003120017", "420602198003120018");
    lines[3] = lines[3].replacen("FCY,", "XYZ,", 1);
    lines[5] = lines[5].replace("2020-01-01", "2020-02-30");
    lines[7] = lines[7].replace(",tenant,", ",landlord,");
    std::fs::write(dir.path().join("ledger.csv"), lines.join("\n") + "\n").unwrap();
    let errs = load(&dir.path().join("site.toml")).unwrap_err().0;
    let mut got: Vec<(usize, String)> = errs
        .iter()
        .map(|e| (e.line.unwrap(), e.field.clone().unwrap()))
        .collect();
    got.sort();
    // P005's card now refers to a rejected ledger row: that is reported too,
    // in credentials.csv.
    let ledger_errs: Vec<_> = errs
        .iter()
        .filter(|e| e.file.ends_with("ledger.csv"))
        .collect();
    assert_eq!(ledger_errs.len(), 4, "{errs:#?}");
    for (line, field, col) in [
        (2, "id_number", 9),
        (4, "estate", 1),
        (6, "lease_start", 13),
        (8, "role", 8),
    ] {
        assert!(
            ledger_errs.iter().any(|e| e.line == Some(line)
                && e.field.as_deref() == Some(field)
                && e.column == Some(col)),
            "missing {field} error on line {line}: {errs:#?}"
        );
    }
}

#[test]
fn bad_site_file_is_located() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    let p = dir.path().join("site.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    std::fs::write(
        &p,
        s.replace(
            "\"rtsp://127.0.0.1:8554/n1\"",
            "\"rtsp://admin:secret@127.0.0.1/n1\"",
        )
        .replace("entrance = \"b2-door\"", "entrance = \"nowhere\"")
        .replace("Asia/Shanghai", "Mars/Olympus")
        // A camera id that would become part of a snapshot path.
        .replace("id = \"cam-b1\"", "id = \"../../etc/cam\"")
        .replace("id = \"gr-b1\"", "id = \"gr/#\""),
    )
    .unwrap();
    let errs = load(&p).unwrap_err().0;
    let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert!(
        text.iter()
            .any(|e| e.contains("must not contain credentials")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.contains("unknown entrance \"nowhere\"")),
        "{text:?}"
    );
    assert!(
        text.iter().any(|e| e.contains("unknown time zone")),
        "{text:?}"
    );
    for bad in [
        "\"../../etc/cam\" is not a valid device id",
        "\"gr/#\" is not a valid device id",
    ] {
        assert!(text.iter().any(|e| e.contains(bad)), "{bad}: {text:?}");
    }
    // A syntax error gives line and column.
    std::fs::write(&p, "timezone = \"Asia/Shanghai\"\nledger = [\n").unwrap();
    let errs = load(&p).unwrap_err().0;
    assert_eq!(errs.len(), 1);
    assert!(errs[0].line.is_some(), "{errs:?}");
}

#[test]
fn generated_city_has_the_customers_size() {
    let dir = tempfile::tempdir().unwrap();
    let counts = gen::generate(dir.path(), &gen::GenSpec::default()).unwrap();
    assert_eq!(counts.units, 5803);
    let site = load(&dir.path().join("site.toml")).expect("generated site is valid");
    let c = site.registry.counts();
    assert_eq!((c.estates, c.units), (13, 5803));
    assert_eq!(c.persons, counts.persons);
    assert!((13_500..14_500).contains(&c.persons), "{c:?}");
    assert!((12_500..13_500).contains(&c.credentials), "{c:?}");
}

#[test]
fn retention_is_read_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    copy_example(dir.path());
    let p = dir.path().join("site.toml");
    let s = std::fs::read_to_string(&p).unwrap();
    let site = load(&p).unwrap();
    assert_eq!(site.retention, anju_core::Retention::default());
    std::fs::write(
        &p,
        format!("{s}\n[retention]\nevents_days = 365\nsnapshots_days = 3\n"),
    )
    .unwrap();
    let site = load(&p).unwrap();
    assert_eq!(site.retention.events_days, 365);
    assert_eq!(site.retention.snapshots_days, 3);
    assert_eq!(site.retention.strangers_days, 30);
    for bad in ["events_days = 2", "snapshot_days = 3", "strangers_days = 0"] {
        std::fs::write(&p, format!("{s}\n[retention]\n{bad}\n")).unwrap();
        let errs = load(&p).unwrap_err().0;
        assert!(
            errs.iter().any(|e| e.field.as_deref() == Some("retention")),
            "{bad}: {errs:?}"
        );
    }
}
