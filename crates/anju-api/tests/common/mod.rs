//! Shared fixture: two estates (FCY in scope, XYZ foreign), each with
//! buildings 1 (grid G1) and 2 (grid G2); users of every role scoped to FCY
//! (field staff: FCY/G1); alerts, notices and persons on both sides.
#![allow(dead_code, clippy::unwrap_used)]

use anju_api::{hash_password, router, ApiConfig, AppState};
use anju_core::*;
use anju_store::testutil::TestStore;
use anju_store::{Backend, Store};
use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use chrono::{NaiveDate, TimeZone, Utc};
use http_body_util::BodyExt;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;
use tower::ServiceExt;

pub const ROLES: [&str; 4] = ["admin", "supervisor", "operator", "field"];

pub struct Ctx {
    pub t: TestStore,
    pub state: AppState,
    pub tokens: HashMap<&'static str, String>,
    /// Alert ids: in scope of everyone (FCY/1), FCY/2 (foreign to field
    /// staff), XYZ/1 (foreign to all).
    pub alert_in: i64,
    pub alert_b2: i64,
    pub alert_xyz: i64,
    pub notice_b2: i64,
    pub notice_xyz: i64,
}

impl Ctx {
    pub fn store(&self) -> &Store {
        &self.t.store
    }
    pub fn app(&self) -> Router {
        router(self.state.clone())
    }
}

fn password_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_password("pw-demo"))
}

pub fn registry() -> Registry {
    let mut reg = Registry::default();
    for (e, name) in [("FCY", "芳草园"), ("XYZ", "新苑")] {
        reg.estates.push(Estate {
            code: e.into(),
            name: name.into(),
            office: "二所".into(),
        });
        for (b, g) in [("1", "G1"), ("2", "G2")] {
            reg.buildings.push(Building {
                estate: e.into(),
                code: b.into(),
                grid: Some(g.into()),
            });
            reg.grids.push(Grid {
                estate: e.into(),
                code: g.into(),
                staff: vec![],
            });
            reg.units.push(Unit {
                key: UnitKey::new(e, b, "101"),
                area_m2: Some(50.0),
            });
            let pid = format!("{e}-P{b}");
            reg.persons.push(Person {
                id: pid.as_str().into(),
                unit: UnitKey::new(e, b, "101"),
                household: format!("{e}-H{b}").into(),
                name: "张三".into(),
                role: PersonRole::Tenant,
                id_number: "11010519491231002X".into(),
                phone: "13812345678".into(),
                birth_year: Some(1949),
                lives_alone: false,
                lease_start: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
                lease_end: None,
            });
            reg.credentials.push(Credential {
                kind: CredentialKind::Card,
                id: format!("C-{pid}").into(),
                person: pid.as_str().into(),
                valid_from: None,
                valid_to: None,
                status: Default::default(),
            });
        }
        reg.entrances.push(Entrance {
            estate: e.into(),
            code: "north-gate".into(),
            kind: EntranceKind::EstateGate,
            building: None,
        });
        reg.entrances.push(Entrance {
            estate: e.into(),
            code: "b1-door".into(),
            kind: EntranceKind::BuildingDoor,
            building: Some("1".into()),
        });
        for (id, kind, ent) in [
            ("gr-n1", DeviceKind::Reader, "north-gate"),
            ("gr-b1", DeviceKind::Reader, "b1-door"),
            ("cam-n1", DeviceKind::Camera, "north-gate"),
        ] {
            reg.devices.push(Device {
                estate: e.into(),
                id: format!("{}{id}", if e == "FCY" { "" } else { "x-" }).into(),
                kind,
                entrance: ent.into(),
                url: None,
                faces: None,
            });
        }
    }
    reg
}

pub fn alert(estate: &str, building: &str, code: AlertCode, subject: Subject) -> Alert {
    let t = Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0).unwrap();
    Alert {
        id: 0,
        code,
        severity: code.default_severity(),
        status: AlertStatus::Open,
        estate: estate.into(),
        building: Some(building.into()),
        unit: Some("101".into()),
        subject,
        opened_at: t,
        updated_at: t,
        evidence: vec![Evidence::new(t, "access")],
        title_zh: code.title_zh().into(),
        title_en: code.title_en().into(),
        outcome: None,
        reason: None,
    }
}

pub async fn setup(backend: Backend) -> Ctx {
    setup_with(backend, ApiConfig::default()).await
}

pub async fn setup_with(backend: Backend, config: ApiConfig) -> Ctx {
    let t = TestStore::new(backend).await.expect("test store");
    let store = t.store.clone();
    store.import_registry(&registry()).await.unwrap();
    let users = [
        ("admin", Role::Admin, vec![]),
        ("supervisor", Role::Supervisor, vec![]),
        ("operator", Role::Operator, vec![]),
        ("field", Role::FieldStaff, vec![("FCY".into(), "G1".into())]),
        // Two more field staff of G1 (dispatch races need real assignees).
        (
            "field-a",
            Role::FieldStaff,
            vec![("FCY".into(), "G1".into())],
        ),
        (
            "field-b",
            Role::FieldStaff,
            vec![("FCY".into(), "G1".into())],
        ),
    ];
    for (name, role, grids) in users {
        let u = User {
            name: name.into(),
            role,
            all_estates: false,
            estates: vec!["FCY".into()],
            grids,
        };
        store.put_user(&u, password_hash()).await.unwrap();
    }
    let ins = |e: &'static str, b: &'static str, s: &'static str| {
        let store = store.clone();
        async move {
            store
                .insert_alert(&alert(
                    e,
                    b,
                    AlertCode::SubletSuspected,
                    Subject::Unit(s.into()),
                ))
                .await
                .unwrap()
        }
    };
    let a_in = ins("FCY", "1", "FCY/1/101").await;
    let a_b2 = ins("FCY", "2", "FCY/2/101").await;
    let a_xyz = ins("XYZ", "1", "XYZ/1/101").await;
    let due = Utc::now() + chrono::Duration::days(3);
    let n_b2 = store
        .create_notice(&a_b2, None, due, Utc::now())
        .await
        .unwrap();
    let n_xyz = store
        .create_notice(&a_xyz, None, due, Utc::now())
        .await
        .unwrap();
    let state = AppState::new(store, config);
    let mut ctx = Ctx {
        t,
        state,
        tokens: HashMap::new(),
        alert_in: a_in.id,
        alert_b2: a_b2.id,
        alert_xyz: a_xyz.id,
        notice_b2: n_b2.id,
        notice_xyz: n_xyz.id,
    };
    for r in ROLES {
        let (st, v) = call(
            &ctx,
            None,
            "POST",
            "/api/v1/auth/login",
            Some(serde_json::json!({"username": r, "password": "pw-demo"})),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        ctx.tokens
            .insert(r, v["token"].as_str().unwrap().to_owned());
    }
    ctx
}

/// One request through the router; returns status and JSON body (or the
/// body as a JSON string when it is not JSON).
pub async fn call(
    ctx: &Ctx,
    role: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (st, _, bytes) = raw(ctx, role, method, uri, body, &[]).await;
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (st, v)
}

pub async fn raw(
    ctx: &Ctx,
    role: Option<&str>,
    method: &str,
    uri: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let mut b = Request::builder().method(method).uri(uri);
    if let Some(r) = role {
        b = b.header(header::AUTHORIZATION, format!("Bearer {}", ctx.tokens[r]));
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = match body {
        Some(v) => b
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(v.to_string()))
            .unwrap(),
        None => b.body(Body::empty()).unwrap(),
    };
    let resp = ctx.app().oneshot(req).await.unwrap();
    let st = resp.status();
    let h = resp.headers().clone();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (st, h, bytes)
}

/// Runs each named async test fn `fn(Backend)` on SQLite and PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(anju_store::Backend::Sqlite).await; })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(anju_store::Backend::Postgres).await; })*
        }
    };
}
