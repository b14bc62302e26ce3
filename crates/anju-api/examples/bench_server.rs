//! The API under benchmark: seeds a store with one estate, a day of
//! `--events` access/sighting events (default 1,000,000), `--alerts` alerts
//! (default 2,000) and a user `bench` / `bench-pw`, times the 24-hour report
//! in the store, then serves the API. `--alert-index N`: recent alerts kept
//! in memory for pages further back (default 20,000; 0: all from the store).
//! `--churn N`: N alert writes a second meanwhile (default 0).
//!
//! `cargo run --release -p anju-api --example bench_server -- --db sqlite:///tmp/anju-bench/anju.db --listen 127.0.0.1:18080`

use anju_api::{hash_password, serve, ApiConfig, AppState};
use anju_core::*;
use anju_store::Store;
use chrono::{TimeZone, Utc};
use std::time::Instant;

fn arg(name: &str, default: &str) -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| default.to_owned())
}

fn registry() -> Registry {
    let mut reg = Registry::default();
    reg.estates.push(Estate {
        code: "FCY".into(),
        name: "芳草园".into(),
        office: "二所".into(),
    });
    for b in 1..=10 {
        let b = b.to_string();
        reg.buildings.push(Building {
            estate: "FCY".into(),
            code: b.as_str().into(),
            grid: Some("G1".into()),
        });
        reg.entrances.push(Entrance {
            estate: "FCY".into(),
            code: format!("b{b}-door").into(),
            kind: EntranceKind::BuildingDoor,
            building: Some(b.as_str().into()),
        });
        reg.devices.push(Device {
            estate: "FCY".into(),
            id: format!("gr-b{b}").into(),
            kind: DeviceKind::Reader,
            entrance: format!("b{b}-door").into(),
            url: None,
            faces: None,
        });
        reg.devices.push(Device {
            estate: "FCY".into(),
            id: format!("cam-b{b}").into(),
            kind: DeviceKind::Camera,
            entrance: format!("b{b}-door").into(),
            url: None,
            faces: Some(FacesDirection::Both),
        });
    }
    reg.grids.push(Grid {
        estate: "FCY".into(),
        code: "G1".into(),
        staff: vec![],
    });
    reg
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let db = arg("--db", "sqlite:///tmp/anju-bench/anju.db");
    let listen = arg("--listen", "127.0.0.1:18080");
    let n_events: usize = arg("--events", "1000000").parse()?;
    let n_alerts: usize = arg("--alerts", "2000").parse()?;
    let store = Store::connect(&db).await?;
    let tz = Tz::Asia__Shanghai;
    let day = tz
        .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
        .single()
        .ok_or("bad date")?
        .with_timezone(&Utc);
    if store.count_events(Some("FCY")).await? < i64::try_from(n_events)? {
        store.import_registry(&registry()).await?;
        let t0 = Instant::now();
        let mut batch = Vec::with_capacity(10_000);
        for i in 0..n_events {
            let ts =
                day + chrono::Duration::milliseconds((i as i64 * 86_400_000) / n_events as i64);
            let b = i % 10 + 1;
            let ev = if i % 3 == 2 {
                Event::Sighting {
                    estate: Some("FCY".into()),
                    body: Sighting {
                        event_id: Some(format!("s{i}").into()),
                        ts,
                        camera: format!("cam-b{b}").into(),
                        person: (i % 7 != 0).then(|| format!("P{}", i % 5000).into()),
                        stranger: (i % 7 == 0).then(|| format!("st{}", i % 300).into()),
                        score: None,
                        direction: Some(if i % 2 == 0 {
                            Direction::In
                        } else {
                            Direction::Out
                        }),
                        snapshot: None,
                    },
                }
            } else {
                Event::Access {
                    estate: Some("FCY".into()),
                    device: format!("gr-b{b}").into(),
                    body: AccessEvent {
                        event_id: format!("a{i}").into(),
                        ts,
                        credential: CredentialRef {
                            kind: CredentialKind::ALL[i % 4],
                            id: format!("C{}", i % 5000).into(),
                        },
                        result: if i % 20 == 0 {
                            AccessResult::Denied
                        } else {
                            AccessResult::Granted
                        },
                        direction: if i % 2 == 0 {
                            Direction::In
                        } else {
                            Direction::Out
                        },
                        reason: None,
                    },
                }
            };
            batch.push(ev);
            if batch.len() == 10_000 {
                store.insert_events(&batch).await?;
                batch.clear();
            }
        }
        store.insert_events(&batch).await?;
        for i in 0..n_alerts {
            let code = AlertCode::ALL[i % AlertCode::ALL.len()];
            let t = day + chrono::Duration::seconds(i as i64 * 40);
            store
                .insert_alert(&Alert {
                    id: 0,
                    code,
                    severity: code.default_severity(),
                    status: if i % 2 == 0 {
                        AlertStatus::Open
                    } else {
                        AlertStatus::Resolved
                    },
                    estate: "FCY".into(),
                    building: Some(((i % 10) + 1).to_string().into()),
                    unit: Some("101".into()),
                    subject: Subject::Stranger(format!("st{i}").into()),
                    opened_at: t,
                    updated_at: t,
                    evidence: vec![Evidence::new(t, "sighting")],
                    title_zh: code.title_zh().into(),
                    title_en: code.title_en().into(),
                    outcome: None,
                    reason: None,
                })
                .await?;
        }
        eprintln!(
            "seeded {n_events} events and {n_alerts} alerts in {:.1} s",
            t0.elapsed().as_secs_f64()
        );
    }
    if store.backend() == anju_store::Backend::Postgres {
        // What autovacuum does to a freshly loaded table a little later
        // (planner statistics, the visibility map for index-only scans);
        // without it the first reports scan the heap.
        store.after_bulk_load().await?;
    }
    store
        .put_user(
            &User {
                name: "bench".into(),
                role: Role::Supervisor,
                all_estates: true,
                estates: vec![],
                grids: vec![],
            },
            &hash_password("bench-pw"),
        )
        .await?;
    // The report over the day, in the store (median of 5).
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = store
            .access_report("FCY", day, day + chrono::Duration::days(1))
            .await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(r.events >= i64::try_from(n_events)?);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "report_store_ms median={:.1} min={:.1} max={:.1}",
        times[2], times[0], times[4]
    );
    let config = ApiConfig {
        alert_index_max: arg("--alert-index", "20000").parse()?,
        ..ApiConfig::default()
    };
    let churn: u64 = arg("--churn", "0").parse()?;
    if churn > 0 {
        tokio::spawn(churn_alerts(store.clone(), churn));
    }
    let state = AppState::new(store, config);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!("API on http://{listen}/");
    serve(listener, state, async {
        tokio::signal::ctrl_c().await.ok();
    })
    .await?;
    Ok(())
}

/// `--churn N`: N alert writes a second while the API is measured, as on a
/// live site (an operator acknowledging, the analyzer adding evidence): one
/// of the newest 2,000 alerts at a time goes from open to acknowledged or
/// back, with a new piece of evidence. Every write moves the alert list's
/// change counter, so kept pages go stale and the index of recent alerts
/// reads what changed.
async fn churn_alerts(store: Store, per_second: u64) {
    let all = anju_store::Scope::all();
    let newest = match store
        .list_alerts(
            &anju_store::AlertFilter {
                limit: 1,
                ..Default::default()
            },
            &all,
        )
        .await
    {
        Ok(v) => v.first().map_or(0, |a| a.id),
        Err(e) => {
            eprintln!("churn: {e}");
            return;
        }
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_micros(
        1_000_000 / per_second.max(1),
    ));
    let mut k: i64 = 0;
    loop {
        tick.tick().await;
        k += 1;
        let id = newest - (k * 37) % 2000;
        let Ok(Some(mut a)) = store.get_alert(id, &all).await else {
            continue;
        };
        a.status = if a.status == AlertStatus::Open {
            AlertStatus::Acknowledged
        } else {
            AlertStatus::Open
        };
        a.updated_at = Utc::now();
        a.evidence.push(Evidence::new(a.updated_at, "churn"));
        a.evidence.truncate(4);
        if let Err(e) = store.update_alert(&a).await {
            eprintln!("churn: {e}");
        }
    }
}
