//! Alerts, their audited transitions, field notices and the audit log.

use crate::fastread::Param;
use crate::{from_ms, ms, Backend, Result, Row, Scope, Store, StoreError};
use anju_core::{
    Alert, AlertCode, AlertId, AlertStatus, Evidence, NoticeId, Outcome, Severity, Subject,
    Timestamp, Transition,
};
use serde::Serialize;
use sqlx::Row as _;

/// Filters of `GET /alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub status: Option<AlertStatus>,
    pub code: Option<AlertCode>,
    pub estate: Option<String>,
    /// Updated at or after.
    pub since: Option<Timestamp>,
    /// Page: alerts with id below this (newest first).
    pub before_id: Option<AlertId>,
    pub limit: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeStatus {
    Open,
    Done,
}

/// A field notice: an alert dispatched to a building's grid staff.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notice {
    pub id: NoticeId,
    pub alert_id: AlertId,
    pub estate: String,
    pub building: Option<String>,
    pub grid: Option<String>,
    pub assignee: Option<String>,
    pub due_at: Timestamp,
    pub status: NoticeStatus,
    pub result: Option<Outcome>,
    pub result_text: Option<String>,
    pub created_at: Timestamp,
    pub closed_at: Option<Timestamp>,
}

/// One audited access or change.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    pub at: Timestamp,
    pub user: String,
    /// `read_person`, `read_snapshot`, `alert_ack`, ...
    pub action: String,
    /// `person:P001`, `alert:17`, ...
    pub object: String,
    pub detail: Option<String>,
}

const ALERT_COLS: &str = "id, code, severity, status, estate, building, unit, subject, \
                          opened_ms, updated_ms, evidence, outcome, reason";

fn alert_from_row(r: &Row) -> Result<Alert> {
    let evidence: String = r.try_get(10)?;
    alert_from_parts(AlertParts(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
        r.try_get(6)?,
        r.try_get(7)?,
        r.try_get(8)?,
        r.try_get(9)?,
        serde_json::from_str::<Vec<Evidence>>(&evidence)
            .map_err(|e| StoreError::Corrupt(format!("evidence: {e}")))?,
        r.try_get(11)?,
        r.try_get(12)?,
    ))
}

/// One alert row in the order of [`ALERT_COLS`], as decoded from a row or
/// from the JSON array of arrays that [`Store::list_alerts`] fetches.
#[derive(serde::Deserialize)]
struct AlertParts(
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
    Vec<Evidence>,
    Option<String>,
    Option<String>,
);

fn alert_from_parts(p: AlertParts) -> Result<Alert> {
    let AlertParts(
        id,
        code,
        severity,
        status,
        estate,
        building,
        unit,
        subject,
        opened,
        updated,
        evidence,
        outcome,
        reason,
    ) = p;
    let code = AlertCode::parse(&code)
        .ok_or_else(|| StoreError::Corrupt(format!("alert code {code:?}")))?;
    Ok(Alert {
        id,
        code,
        severity: Severity::parse(&severity)
            .ok_or_else(|| StoreError::Corrupt(format!("severity {severity:?}")))?,
        status: AlertStatus::parse(&status)
            .ok_or_else(|| StoreError::Corrupt(format!("status {status:?}")))?,
        estate: estate.into(),
        building: building.map(Into::into),
        unit: unit.map(Into::into),
        subject: Subject::parse_key(&subject)
            .ok_or_else(|| StoreError::Corrupt(format!("subject {subject:?}")))?,
        opened_at: from_ms(opened)?,
        updated_at: from_ms(updated)?,
        evidence,
        title_zh: code.title_zh().to_owned(),
        title_en: code.title_en().to_owned(),
        outcome: outcome.as_deref().and_then(Outcome::parse),
        reason,
    })
}

/// The alert list's query (`$n` placeholders): its text binds, then its
/// integer binds.
fn list_sql(f: &AlertFilter, scope: &Scope) -> (String, Vec<String>, Vec<(usize, i64)>) {
    let mut sql = format!("SELECT {ALERT_COLS} FROM alerts WHERE 1 = 1");
    let mut n = 1;
    let mut binds: Vec<String> = Vec::new();
    let mut ints: Vec<(usize, i64)> = Vec::new();
    if let Some(s) = f.status {
        sql.push_str(&format!(" AND status = ${n}"));
        n += 1;
        binds.push(s.as_str().into());
    }
    if let Some(c) = f.code {
        sql.push_str(&format!(" AND code = ${n}"));
        n += 1;
        binds.push(c.as_str().into());
    }
    if let Some(e) = &f.estate {
        sql.push_str(&format!(" AND estate = ${n}"));
        n += 1;
        binds.push(e.clone());
    }
    let (sc, sb) = scope_sql(scope, &mut n);
    sql.push_str(&sc);
    binds.extend(sb);
    // Integer parameters come last so that all text binds keep their order.
    if let Some(t) = f.since {
        sql.push_str(&format!(" AND updated_ms >= ${n}"));
        ints.push((n, ms(t)));
        n += 1;
    }
    if let Some(b) = f.before_id {
        sql.push_str(&format!(" AND id < ${n}"));
        ints.push((n, b));
        n += 1;
    }
    let limit = if f.limit <= 0 { 100 } else { f.limit.min(1000) };
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${n}"));
    ints.push((n, limit));
    (sql, binds, ints)
}

/// The binds of [`list_sql`] for a direct reader (`?N` by position).
fn fast_params(binds: &[String], ints: &[(usize, i64)]) -> Vec<Param> {
    binds
        .iter()
        .cloned()
        .map(Param::Text)
        .chain(ints.iter().map(|&(_, v)| Param::Int(v)))
        .collect()
}

/// The page query wrapped to return one row: a JSON array of rows (arrays
/// in the order of [`ALERT_COLS`], the evidence as stored).
fn page_sql(backend: Backend, sql: &str) -> String {
    match backend {
        Backend::Sqlite => format!(
            "SELECT json_group_array(json_array(id, code, severity, status, estate, \
             building, unit, subject, opened_ms, updated_ms, json(evidence), outcome, \
             reason)) FROM ({sql})"
        ),
        Backend::Postgres => format!(
            "SELECT COALESCE(json_agg(json_build_array(id, code, severity, status, estate, \
             building, unit, subject, opened_ms, updated_ms, evidence::json, outcome, \
             reason)), '[]')::text FROM ({sql}) page"
        ),
    }
}

/// A page of alerts as JSON ([`Store::list_alerts_json`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPageJson {
    /// A JSON array of the alerts, newest first: what serialising
    /// [`Store::list_alerts`]'s `Vec<Alert>` gives.
    pub json: String,
    pub count: usize,
    /// The oldest alert's id (the cursor for the next page).
    pub last_id: Option<AlertId>,
}

/// One stored alert row, borrowed, in the order of [`ALERT_COLS`]; the
/// evidence stays the stored JSON text.
#[derive(serde::Deserialize)]
struct RawRow<'a>(
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
    #[serde(borrow)] &'a serde_json::value::RawValue,
    Option<String>,
    Option<String>,
);

/// An alert serialised exactly as [`Alert`] is, with its evidence written
/// through as stored.
#[derive(Serialize)]
struct AlertOut<'a> {
    id: AlertId,
    code: AlertCode,
    severity: Severity,
    status: AlertStatus,
    estate: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    building: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'a str>,
    subject: Subject,
    opened_at: Timestamp,
    updated_at: Timestamp,
    evidence: &'a serde_json::value::RawValue,
    title_zh: &'static str,
    title_en: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
}

/// Writes one stored row as an alert's JSON onto `out`.
fn write_alert(out: &mut Vec<u8>, r: &RawRow<'_>) -> Result<()> {
    let code = AlertCode::parse(&r.1)
        .ok_or_else(|| StoreError::Corrupt(format!("alert code {:?}", r.1)))?;
    let a = AlertOut {
        id: r.0,
        code,
        severity: Severity::parse(&r.2)
            .ok_or_else(|| StoreError::Corrupt(format!("severity {:?}", r.2)))?,
        status: AlertStatus::parse(&r.3)
            .ok_or_else(|| StoreError::Corrupt(format!("status {:?}", r.3)))?,
        estate: &r.4,
        building: r.5.as_deref(),
        unit: r.6.as_deref(),
        subject: Subject::parse_key(&r.7)
            .ok_or_else(|| StoreError::Corrupt(format!("subject {:?}", r.7)))?,
        opened_at: from_ms(r.8)?,
        updated_at: from_ms(r.9)?,
        evidence: r.10,
        title_zh: code.title_zh(),
        title_en: code.title_en(),
        outcome: r.11.as_deref().and_then(Outcome::parse),
        reason: r.12.as_deref(),
    };
    serde_json::to_writer(out, &a).map_err(|e| StoreError::Corrupt(format!("alert page: {e}")))
}

/// The JSON array of `rows` (already newest first).
fn write_page(rows: &[RawRow<'_>]) -> Result<AlertPageJson> {
    let mut out = Vec::with_capacity(512 * rows.len() + 2);
    out.push(b'[');
    for (i, r) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_alert(&mut out, r)?;
    }
    out.push(b']');
    Ok(AlertPageJson {
        json: String::from_utf8(out)
            .map_err(|e| StoreError::Corrupt(format!("alert page: {e}")))?,
        count: rows.len(),
        last_id: rows.last().map(|r| r.0),
    })
}

/// One alert as the alert list writes it, with the columns the list
/// filters on: an entry of the API's in-memory index of recent alerts
/// ([`Store::alert_index_newest`], [`Store::alert_index_changes`]).
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedAlert {
    pub id: AlertId,
    pub code: AlertCode,
    pub status: AlertStatus,
    pub estate: String,
    pub building: Option<String>,
    pub updated_ms: i64,
    /// The alert's JSON object, byte for byte as in [`AlertPageJson`]'s array.
    pub json: Box<str>,
}

/// What [`Store::alert_index_newest`] and [`Store::alert_index_changes`]
/// read.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertIndexRead {
    /// The alert list's change counter, read before the alerts: every write
    /// numbered up to it is reflected in `alerts` and `gone`.
    pub version: i64,
    /// Newest first.
    pub alerts: Vec<IndexedAlert>,
    /// Alerts deleted (changes only).
    pub gone: Vec<AlertId>,
}

/// The rows of a page fetched as one JSON array ([`page_sql`]), newest
/// first (aggregates keep the subquery's order in practice; made certain).
fn raw_rows(page: &str) -> Result<Vec<RawRow<'_>>> {
    let mut rows: Vec<RawRow<'_>> =
        serde_json::from_str(page).map_err(|e| StoreError::Corrupt(format!("alert page: {e}")))?;
    rows.sort_unstable_by_key(|r| std::cmp::Reverse(r.0));
    Ok(rows)
}

/// Each row of a page as an [`IndexedAlert`].
fn index_rows(rows: &[RawRow<'_>]) -> Result<Vec<IndexedAlert>> {
    rows.iter()
        .map(|r| {
            let mut out = Vec::with_capacity(512);
            write_alert(&mut out, r)?;
            Ok(IndexedAlert {
                id: r.0,
                code: AlertCode::parse(&r.1)
                    .ok_or_else(|| StoreError::Corrupt(format!("alert code {:?}", r.1)))?,
                status: AlertStatus::parse(&r.3)
                    .ok_or_else(|| StoreError::Corrupt(format!("status {:?}", r.3)))?,
                estate: r.4.clone(),
                building: r.5.clone(),
                updated_ms: r.9,
                json: String::from_utf8(out)
                    .map_err(|e| StoreError::Corrupt(format!("alert: {e}")))?
                    .into_boxed_str(),
            })
        })
        .collect()
}

/// A direct reader's row without its evidence (see [`RawRow`]).
struct RawCols(
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
);

impl RawCols {
    fn with_evidence(self, ev: &serde_json::value::RawValue) -> RawRow<'_> {
        let RawCols(a, b, c, d, e, f, g, h, i, j, k, l) = self;
        RawRow(a, b, c, d, e, f, g, h, i, j, ev, k, l)
    }
}

/// Appends `AND (...)` clauses restricting rows to `scope`; `n` is the next
/// placeholder number. Returns the SQL and the values to bind in order.
/// Alerts and notices carry `estate` and `building` columns.
pub(crate) fn scope_sql(scope: &Scope, n: &mut usize) -> (String, Vec<String>) {
    let mut sql = String::new();
    let mut binds = Vec::new();
    if !scope.all_estates {
        if scope.estates.is_empty() {
            return (" AND 1 = 0".into(), binds);
        }
        sql.push_str(" AND estate IN (");
        for (i, e) in scope.estates.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${n}"));
            *n += 1;
            binds.push(e.0.clone());
        }
        sql.push(')');
    }
    if !scope.grids.is_empty() {
        // Field staff: only objects in a building of one of their grids.
        sql.push_str(" AND (");
        for (i, (e, g)) in scope.grids.iter().enumerate() {
            if i > 0 {
                sql.push_str(" OR ");
            }
            sql.push_str(&format!(
                "(estate = ${} AND building IN (SELECT code FROM buildings b WHERE b.estate = ${} AND b.grid = ${}))",
                *n,
                *n + 1,
                *n + 2
            ));
            *n += 3;
            binds.extend([e.0.clone(), e.0.clone(), g.0.clone()]);
        }
        sql.push(')');
    }
    (sql, binds)
}

const ALERTS_VERSION_SQL: &str = "SELECT n FROM change_counters WHERE name = 'alerts'";

pub(crate) async fn read_alerts_version(pool: &sqlx::AnyPool) -> Result<i64> {
    Ok(sqlx::query(ALERTS_VERSION_SQL)
        .fetch_one(pool)
        .await?
        .try_get(0)?)
}

impl Store {
    /// Inserts a new alert (its `id` is ignored) and returns it with its id.
    ///
    /// # Errors
    /// [`StoreError::Conflict`] when an active alert of the same estate, code
    /// and subject exists (update that one instead); database errors.
    pub async fn insert_alert(&self, a: &Alert) -> Result<Alert> {
        let evidence = serde_json::to_string(&a.evidence)
            .map_err(|e| StoreError::Corrupt(format!("evidence: {e}")))?;
        let res = sqlx::query(
            "INSERT INTO alerts (code, severity, status, estate, building, unit, subject, \
             opened_ms, updated_ms, evidence, outcome, reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(a.code.as_str())
        .bind(a.severity.as_str())
        .bind(a.status.as_str())
        .bind(a.estate.as_str())
        .bind(a.building.as_ref().map(|b| b.0.clone()))
        .bind(a.unit.as_ref().map(|u| u.0.clone()))
        .bind(a.subject.key())
        .bind(ms(a.opened_at))
        .bind(ms(a.updated_at))
        .bind(evidence)
        .bind(a.outcome.map(Outcome::as_str))
        .bind(a.reason.clone())
        .fetch_one(&self.pool)
        .await;
        match res {
            Ok(row) => {
                let mut out = a.clone();
                out.id = row.try_get(0)?;
                self.raise_feed().await;
                Ok(out)
            }
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(StoreError::Conflict(
                format!("an active {} alert for {} exists", a.code, a.subject.key()),
            )),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes an alert's mutable fields (status, severity, evidence, ...).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown id; database errors.
    pub async fn update_alert(&self, a: &Alert) -> Result<()> {
        let evidence = serde_json::to_string(&a.evidence)
            .map_err(|e| StoreError::Corrupt(format!("evidence: {e}")))?;
        let r = sqlx::query(
            "UPDATE alerts SET severity = $1, status = $2, updated_ms = $3, evidence = $4, \
             outcome = $5, reason = $6, building = $7, unit = $8 WHERE id = $9",
        )
        .bind(a.severity.as_str())
        .bind(a.status.as_str())
        .bind(ms(a.updated_at))
        .bind(evidence)
        .bind(a.outcome.map(Outcome::as_str))
        .bind(a.reason.clone())
        .bind(a.building.as_ref().map(|b| b.0.clone()))
        .bind(a.unit.as_ref().map(|u| u.0.clone()))
        .bind(a.id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.raise_feed().await;
        Ok(())
    }

    /// The active alert of this estate, code and subject, if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn find_active_alert(
        &self,
        estate: &str,
        code: AlertCode,
        subject: &Subject,
    ) -> Result<Option<Alert>> {
        let row = sqlx::query(&format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE estate = $1 AND code = $2 AND subject = $3 \
             AND status IN ('open', 'acknowledged', 'dispatched')"
        ))
        .bind(estate)
        .bind(code.as_str())
        .bind(subject.key())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    /// One alert, if it exists and is within `scope`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn get_alert(&self, id: AlertId, scope: &Scope) -> Result<Option<Alert>> {
        let mut n = 2;
        let (sc, binds) = scope_sql(scope, &mut n);
        let sql = format!("SELECT {ALERT_COLS} FROM alerts WHERE id = $1{sc}");
        let mut q = sqlx::query(&sql).bind(id);
        for b in binds {
            q = q.bind(b);
        }
        let row = q.fetch_optional(&self.pool).await?;
        row.as_ref().map(alert_from_row).transpose()
    }

    /// Alerts within `scope` matching `f`, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_alerts(&self, f: &AlertFilter, scope: &Scope) -> Result<Vec<Alert>> {
        let (sql, binds, ints) = list_sql(f, scope);
        // SQLite: the page straight from a direct reader on this thread
        // (`fastread`), falling back to the pool when none is free.
        if let Some(readers) = &self.readers {
            let params = fast_params(&binds, &ints);
            // `?N` binds the N-th parameter explicitly.
            let fast_sql = sql.replace('$', "?");
            if let Some(rows) = readers.with(|c| {
                let mut st = c.prepare_cached(&fast_sql)?;
                let rows = st.query_map(rusqlite::params_from_iter(params.iter()), |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, i64>(8)?,
                        r.get::<_, i64>(9)?,
                        r.get::<_, String>(10)?,
                        r.get::<_, Option<String>>(11)?,
                        r.get::<_, Option<String>>(12)?,
                    ))
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()
            }) {
                return rows
                    .into_iter()
                    .map(|(a, b, c, d, e, g, h, i, j, k, ev, l, m)| {
                        let ev = serde_json::from_str::<Vec<Evidence>>(&ev)
                            .map_err(|e| StoreError::Corrupt(format!("evidence: {e}")))?;
                        alert_from_parts(AlertParts(a, b, c, d, e, g, h, i, j, k, ev, l, m))
                    })
                    .collect();
            }
        }
        // The page comes back as one row holding a JSON array of rows:
        // decoding 50 rows one by one through sqlx's `Any` driver (each
        // value copied, each row sent from the SQLite worker thread and
        // converted) cost several times more than the query itself.
        let sql = page_sql(self.backend, &sql);
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        for (_, v) in ints {
            q = q.bind(v);
        }
        let page: String = q.fetch_one(&self.pool).await?.try_get(0)?;
        let parts: Vec<AlertParts> = serde_json::from_str(&page)
            .map_err(|e| StoreError::Corrupt(format!("alert page: {e}")))?;
        let mut alerts = parts
            .into_iter()
            .map(alert_from_parts)
            .collect::<Result<Vec<_>>>()?;
        // Aggregates keep the subquery's order in practice; make it certain.
        alerts.sort_unstable_by_key(|a| std::cmp::Reverse(a.id));
        Ok(alerts)
    }

    /// As [`Store::list_alerts`], as the JSON the API serves: the stored
    /// evidence is written through without being decoded (on an alert page
    /// most of the bytes, and most of the cost of decoding and encoding
    /// them again).
    ///
    /// # Errors
    /// Database errors; a stored row that is not a valid alert.
    pub async fn list_alerts_json(&self, f: &AlertFilter, scope: &Scope) -> Result<AlertPageJson> {
        let (sql, binds, ints) = list_sql(f, scope);
        if let Some(readers) = &self.readers {
            let params = fast_params(&binds, &ints);
            let fast_sql = sql.replace('$', "?");
            if let Some(page) = readers.with(|c| {
                let mut st = c.prepare_cached(&fast_sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(params.iter()))?;
                let mut texts: Vec<(RawCols, String)> = Vec::new();
                while let Some(r) = rows.next()? {
                    texts.push((
                        RawCols(
                            r.get(0)?,
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                            r.get(8)?,
                            r.get(9)?,
                            r.get(11)?,
                            r.get(12)?,
                        ),
                        r.get(10)?,
                    ));
                }
                Ok(texts)
            }) {
                let (cols, evidence): (Vec<RawCols>, Vec<String>) = page.into_iter().unzip();
                let mut raws = Vec::with_capacity(cols.len());
                for (c, ev) in cols.into_iter().zip(&evidence) {
                    let ev: &serde_json::value::RawValue = serde_json::from_str(ev)
                        .map_err(|e| StoreError::Corrupt(format!("evidence: {e}")))?;
                    raws.push(c.with_evidence(ev));
                }
                return write_page(&raws);
            }
        }
        let sql = page_sql(self.backend, &sql);
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        for (_, v) in ints {
            q = q.bind(v);
        }
        let page: String = q.fetch_one(&self.pool).await?.try_get(0)?;
        let rows = raw_rows(&page)?;
        write_page(&rows)
    }

    /// The newest `limit` alerts of every estate, for the API's index of
    /// recent alerts, with the change counter they are current at.
    ///
    /// # Errors
    /// Database errors; a stored row that is not a valid alert.
    pub async fn alert_index_newest(&self, limit: i64) -> Result<AlertIndexRead> {
        // The counter read first: a write committed in between is read
        // (and read again as a change later), never missed.
        let version = read_alerts_version(&self.pool).await?;
        let sql = format!("SELECT {ALERT_COLS} FROM alerts ORDER BY id DESC LIMIT $1");
        let page: String = sqlx::query(&page_sql(self.backend, &sql))
            .bind(limit.max(0))
            .fetch_one(&self.pool)
            .await?
            .try_get(0)?;
        let rows = raw_rows(&page)?;
        Ok(AlertIndexRead {
            version,
            alerts: index_rows(&rows)?,
            gone: Vec::new(),
        })
    }

    /// The alerts written (opened, changed or deleted) after the change
    /// counter stood at `since` (migration 0017 numbers each alert's last
    /// write in commit order), as they are now; `None` when more than
    /// `limit` were (read the newest instead).
    ///
    /// # Errors
    /// Database errors; a stored row that is not a valid alert.
    pub async fn alert_index_changes(
        &self,
        since: i64,
        limit: i64,
    ) -> Result<Option<AlertIndexRead>> {
        // One snapshot for the counter, the numbers and the rows, so that
        // what was deleted, changed and counted agree.
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        let version: i64 = sqlx::query(ALERTS_VERSION_SQL)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        let ids: Vec<i64> =
            sqlx::query("SELECT alert_id FROM alert_revs WHERE rev > $1 ORDER BY rev LIMIT $2")
                .bind(since)
                .bind(limit.saturating_add(1).max(1))
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<std::result::Result<_, _>>()?;
        if i64::try_from(ids.len()).unwrap_or(i64::MAX) > limit {
            return Ok(None);
        }
        if ids.is_empty() {
            return Ok(Some(AlertIndexRead {
                version,
                alerts: Vec::new(),
                gone: Vec::new(),
            }));
        }
        let sql = format!(
            "SELECT {ALERT_COLS} FROM alerts WHERE id IN \
             (SELECT alert_id FROM alert_revs WHERE rev > $1)"
        );
        let page: String = sqlx::query(&page_sql(self.backend, &sql))
            .bind(since)
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        tx.commit().await?;
        let rows = raw_rows(&page)?;
        let alerts = index_rows(&rows)?;
        let present: std::collections::HashSet<i64> = alerts.iter().map(|a| a.id).collect();
        let gone = ids.into_iter().filter(|id| !present.contains(id)).collect();
        Ok(Some(AlertIndexRead {
            version,
            alerts,
            gone,
        }))
    }

    /// A number that changes with every committed write of alerts, or of
    /// the buildings' grids that field-staff scopes use, by any writer (the
    /// triggers of migration 0005). Read it *before* building a page to
    /// cache: the page is then at least as new as the number it is kept
    /// under.
    ///
    /// On PostgreSQL the number comes from memory, kept current by the
    /// database's notifications (`feed` module docs: this store's own writes
    /// are seen at once, other processes' within the notification's
    /// latency); while that feed is down, from the table.
    ///
    /// # Errors
    /// Database errors.
    pub async fn alerts_version(&self) -> Result<i64> {
        if let Some(v) = self.readers.as_ref().and_then(|r| {
            r.with(|c| {
                c.prepare_cached(ALERTS_VERSION_SQL)?
                    .query_row([], |row| row.get::<_, i64>(0))
            })
        }) {
            return Ok(v);
        }
        if let Some(url) = &self.pg_url {
            let feed = self
                .feed
                .get_or_init(|| crate::feed::Feed::start(url.0.to_string(), self.pool.clone()));
            if let Some(v) = feed.get() {
                return Ok(v);
            }
        }
        read_alerts_version(&self.pool).await
    }

    /// After a commit that moved the counter: a running feed learns the new
    /// value at once (read-your-writes), ahead of the notification.
    pub(crate) async fn raise_feed(&self) {
        if let Some(feed) = self.feed.get() {
            if let Ok(v) = read_alerts_version(&self.pool).await {
                feed.raise(v);
            }
        }
    }

    /// Records a workflow transition (who, when, why).
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_transition(&self, t: &Transition) -> Result<()> {
        sqlx::query(
            "INSERT INTO alert_transitions (alert_id, from_status, to_status, by_user, at_ms, reason) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(t.alert_id)
        .bind(t.from.as_str())
        .bind(t.to.as_str())
        .bind(t.by.as_str())
        .bind(ms(t.at))
        .bind(t.reason.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// An alert's transitions, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn transitions(&self, alert: AlertId) -> Result<Vec<Transition>> {
        let rows = sqlx::query(
            "SELECT alert_id, from_status, to_status, by_user, at_ms, reason FROM alert_transitions \
             WHERE alert_id = $1 ORDER BY id",
        )
        .bind(alert)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let from: String = r.try_get(1)?;
                let to: String = r.try_get(2)?;
                Ok(Transition {
                    alert_id: r.try_get(0)?,
                    from: AlertStatus::parse(&from)
                        .ok_or_else(|| StoreError::Corrupt(format!("status {from:?}")))?,
                    to: AlertStatus::parse(&to)
                        .ok_or_else(|| StoreError::Corrupt(format!("status {to:?}")))?,
                    by: r.try_get::<String, _>(3)?.into(),
                    at: from_ms(r.try_get(4)?)?,
                    reason: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// The grid a building belongs to, if any.
    ///
    /// # Errors
    /// Database errors.
    pub async fn grid_of_building(&self, estate: &str, building: &str) -> Result<Option<String>> {
        Ok(
            sqlx::query("SELECT grid FROM buildings WHERE estate = $1 AND code = $2")
                .bind(estate)
                .bind(building)
                .fetch_optional(&self.pool)
                .await?
                .map(|r| r.try_get::<Option<String>, _>(0))
                .transpose()?
                .flatten(),
        )
    }

    /// Creates a field notice for an alert; the grid comes from the alert's
    /// building.
    ///
    /// # Errors
    /// Database errors.
    pub async fn create_notice(
        &self,
        alert: &Alert,
        assignee: Option<&str>,
        due: Timestamp,
        now: Timestamp,
    ) -> Result<Notice> {
        let building = alert.building.as_ref().map(|b| b.0.clone());
        let grid: Option<String> = match &building {
            Some(b) => self.grid_of_building(alert.estate.as_str(), b).await?,
            None => None,
        };
        let row = sqlx::query(
            "INSERT INTO notices (alert_id, estate, building, grid, assignee, due_ms, status, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7) RETURNING id",
        )
        .bind(alert.id)
        .bind(alert.estate.as_str())
        .bind(building.clone())
        .bind(grid.clone())
        .bind(assignee.map(str::to_owned))
        .bind(ms(due))
        .bind(ms(now))
        .fetch_one(&self.pool)
        .await?;
        Ok(Notice {
            id: row.try_get(0)?,
            alert_id: alert.id,
            estate: alert.estate.0.clone(),
            building,
            grid,
            assignee: assignee.map(str::to_owned),
            due_at: due,
            status: NoticeStatus::Open,
            result: None,
            result_text: None,
            created_at: now,
            closed_at: None,
        })
    }

    /// Notices within `scope`, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_notices(
        &self,
        scope: &Scope,
        only_open: bool,
        alert: Option<AlertId>,
        page: crate::Page,
    ) -> Result<Vec<Notice>> {
        let mut n = 1;
        let (sc, binds) = scope_sql(scope, &mut n);
        let of_alert = alert.map_or_else(String::new, |_| format!(" AND alert_id = ${n}"));
        let first_page = n + usize::from(alert.is_some());
        let sql = format!(
            "SELECT id, alert_id, estate, building, grid, assignee, due_ms, status, result, \
             result_text, created_ms, closed_ms FROM notices WHERE 1 = 1{sc}{}{of_alert} \
             ORDER BY id DESC LIMIT ${first_page} OFFSET ${}",
            if only_open {
                " AND status = 'open'"
            } else {
                ""
            },
            first_page + 1
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        if let Some(a) = alert {
            q = q.bind(a);
        }
        q = q.bind(page.limit).bind(page.offset);
        let rows = q.fetch_all(&self.pool).await?;
        rows.iter().map(notice_from_row).collect()
    }

    /// One notice within `scope`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn get_notice(&self, id: NoticeId, scope: &Scope) -> Result<Option<Notice>> {
        let mut n = 2;
        let (sc, binds) = scope_sql(scope, &mut n);
        let sql = format!(
            "SELECT id, alert_id, estate, building, grid, assignee, due_ms, status, result, \
             result_text, created_ms, closed_ms FROM notices WHERE id = $1{sc}"
        );
        let mut q = sqlx::query(&sql).bind(id);
        for b in binds {
            q = q.bind(b);
        }
        let row = q.fetch_optional(&self.pool).await?;
        row.as_ref().map(notice_from_row).transpose()
    }

    /// Records a visit's outcome and closes the notice.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the notice does not exist or is closed.
    pub async fn close_notice(
        &self,
        id: NoticeId,
        outcome: Outcome,
        text: Option<&str>,
        at: Timestamp,
    ) -> Result<()> {
        let r = sqlx::query(
            "UPDATE notices SET status = 'done', result = $1, result_text = $2, closed_ms = $3 \
             WHERE id = $4 AND status = 'open'",
        )
        .bind(outcome.as_str())
        .bind(text.map(str::to_owned))
        .bind(ms(at))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Appends to the audit log.
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit(&self, e: &AuditEntry) -> Result<()> {
        sqlx::query(
            "INSERT INTO audit_log (at_ms, user_name, action, object, detail) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ms(e.at))
        .bind(e.user.as_str())
        .bind(e.action.as_str())
        .bind(e.object.as_str())
        .bind(e.detail.clone())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent audit entries, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn audit_entries(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT at_ms, user_name, action, object, detail FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: from_ms(r.try_get(0)?)?,
                    user: r.try_get(1)?,
                    action: r.try_get(2)?,
                    object: r.try_get(3)?,
                    detail: r.try_get(4)?,
                })
            })
            .collect()
    }
}

fn notice_from_row(r: &Row) -> Result<Notice> {
    let status: String = r.try_get(7)?;
    let result: Option<String> = r.try_get(8)?;
    Ok(Notice {
        id: r.try_get(0)?,
        alert_id: r.try_get(1)?,
        estate: r.try_get(2)?,
        building: r.try_get(3)?,
        grid: r.try_get(4)?,
        assignee: r.try_get(5)?,
        due_at: from_ms(r.try_get(6)?)?,
        status: if status == "open" {
            NoticeStatus::Open
        } else {
            NoticeStatus::Done
        },
        result: result.as_deref().and_then(Outcome::parse),
        result_text: r.try_get(9)?,
        created_at: from_ms(r.try_get(10)?)?,
        closed_at: r.try_get::<Option<i64>, _>(11)?.map(from_ms).transpose()?,
    })
}
