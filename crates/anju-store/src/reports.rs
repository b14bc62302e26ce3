//! Reads for the dashboard API: the 24-hour access report (aggregated in SQL
//! with GROUP BY, so a day of a million events stays fast) and the scoped
//! registry listings (estates, units, persons, credentials, devices).
//!
//! Every listing takes a [`Scope`]; rows outside it are simply not returned.

use crate::alerts::scope_sql;
use crate::registry::person_from_row;
use crate::{from_ms, ms, Result, Scope, Store};
use anju_core::{Estate, Person, Timestamp, Unit, UnitKey};
use serde::Serialize;
use sqlx::Row as _;
use std::collections::{BTreeMap, HashSet};

/// Access events of one entrance, hour and direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficRow {
    /// The entrance of the reader (or the device id when it is not in the
    /// registry).
    pub entrance: String,
    /// Hours since the start of the report window (0..24; 23 or 25 on DST
    /// change days).
    pub hour: i64,
    /// `in`, `out` or empty when the event had none.
    pub direction: String,
    pub granted: i64,
    pub denied: i64,
}

/// Access events by credential kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialRow {
    pub kind: String,
    pub granted: i64,
    pub denied: i64,
}

/// Face sightings split into residents (registered in this estate's
/// ledger), visitors (recognised persons not registered in this estate) and
/// unknown faces (anonymous strangers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SightingCounts {
    pub resident_sightings: i64,
    pub residents: i64,
    pub visitor_sightings: i64,
    pub visitors: i64,
    pub unknown_sightings: i64,
    pub unknown: i64,
}

/// Alerts of one code opened and closed within the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AlertCodeRow {
    pub code: String,
    pub opened: i64,
    pub resolved: i64,
    pub dismissed: i64,
}

/// Online time of a device within the window, from its status reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceUptime {
    pub device: String,
    pub kind: String,
    pub entrance: String,
    /// Milliseconds of the window in which the device's state was known.
    pub known_ms: i64,
    pub online_ms: i64,
    /// `online_ms / known_ms`, `None` when no status report says anything
    /// about the window.
    pub uptime: Option<f64>,
    /// How many offline reports fell into the window.
    pub outages: i64,
}

/// The raw numbers of the 24-hour access report of one estate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessReportData {
    pub estate: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub events: i64,
    pub traffic: Vec<TrafficRow>,
    pub credentials: Vec<CredentialRow>,
    pub sightings: SightingCounts,
    pub alerts: Vec<AlertCodeRow>,
    pub devices: Vec<DeviceUptime>,
}

/// A device with when it was last heard of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceRow {
    pub estate: String,
    pub id: String,
    pub kind: String,
    pub entrance: String,
    pub url: Option<String>,
    /// Time of the device's latest stored event.
    pub last_seen: Option<Timestamp>,
    /// Its latest status report said online.
    pub online: Option<bool>,
}

/// A credential as the registry holds it (with the estate of its person).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialListRow {
    pub kind: String,
    pub id: String,
    pub person: String,
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    /// `active`, `suspended`, `revoked` or `lost`.
    pub status: String,
}

/// One page of a list: at most `limit` rows (1..=1000) after skipping
/// `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    /// Rows a list gives when the caller names no limit.
    pub const DEFAULT_LIMIT: i64 = 100;
    /// Most rows one page holds.
    pub const MAX_LIMIT: i64 = 1000;

    /// A page with `limit` clamped to 1..=[`Page::MAX_LIMIT`] (0 or less:
    /// the default) and `offset` to 0 or more.
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> Self {
        let limit = match limit {
            Some(l) if l > 0 => l.min(Self::MAX_LIMIT),
            _ => Self::DEFAULT_LIMIT,
        };
        Self {
            limit,
            offset: offset.unwrap_or(0).max(0),
        }
    }

    /// The offset of the next page, when this one came back full.
    pub fn next(&self, rows: usize) -> Option<i64> {
        (i64::try_from(rows).unwrap_or(i64::MAX) >= self.limit)
            .then(|| self.offset.saturating_add(self.limit))
    }
}

impl Default for Page {
    fn default() -> Self {
        Self::new(None, None)
    }
}

/// Filters of the person list.
#[derive(Debug, Clone, Default)]
pub struct PersonFilter {
    pub estate: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// How far back the state of a device is looked for before the window.
const STATUS_LOOKBACK_MS: i64 = 7 * 24 * 3_600_000;

/// `AND <col> IN (...)` for the estates a scope allows (field staff: the
/// estates of their grids). Returns SQL and text binds.
fn estate_scope_sql(scope: &Scope, col: &str, n: &mut usize) -> (String, Vec<String>) {
    let mut allowed: Option<Vec<String>> = if scope.all_estates {
        None
    } else {
        Some(scope.estates.iter().map(|e| e.0.clone()).collect())
    };
    if !scope.grids.is_empty() {
        let grid_estates: Vec<String> = scope.grids.iter().map(|(e, _)| e.0.clone()).collect();
        allowed = Some(match allowed {
            None => grid_estates,
            Some(a) => a.into_iter().filter(|e| grid_estates.contains(e)).collect(),
        });
    }
    match allowed {
        None => (String::new(), Vec::new()),
        Some(a) if a.is_empty() => (" AND 1 = 0".into(), Vec::new()),
        Some(mut a) => {
            a.sort();
            a.dedup();
            let ph: Vec<String> = a
                .iter()
                .map(|_| {
                    let s = format!("${n}");
                    *n += 1;
                    s
                })
                .collect();
            (format!(" AND {col} IN ({})", ph.join(",")), a)
        }
    }
}

/// Bucket width of `access_rollup` (migration 0004): a quarter hour.
const ROLLUP_BUCKET_MS: i64 = 900_000;

fn i(r: &crate::Row, idx: usize) -> Result<i64> {
    Ok(r.try_get::<i64, _>(idx)?)
}

/// A page of units within `scope` (optionally of one estate and building), ordered by key:
/// the SQL, its text binds, and the number of the next placeholder — the page's `LIMIT` and
/// `OFFSET` are the two placeholders before it.
pub(crate) fn units_page_sql(
    scope: &Scope,
    estate: Option<&str>,
    building: Option<&str>,
) -> (String, Vec<String>, usize) {
    let mut sql = String::from("SELECT estate, building, unit, area_m2 FROM units WHERE 1 = 1");
    let mut binds: Vec<String> = Vec::new();
    let mut n = 1;
    for (col, v) in [("estate", estate), ("building", building)] {
        if let Some(v) = v {
            sql.push_str(&format!(" AND {col} = ${n}"));
            n += 1;
            binds.push(v.to_owned());
        }
    }
    let (sc, sb) = scope_sql(scope, &mut n);
    sql.push_str(&sc);
    binds.extend(sb);
    sql.push_str(&format!(
        " ORDER BY estate, building, unit LIMIT ${n} OFFSET ${}",
        n + 1
    ));
    (sql, binds, n + 2)
}

impl Store {
    /// The numbers of the access report of `estate` for `from <= t < to`
    /// (the caller picks the window: the 24 hours of a local date). All
    /// counting happens in SQL.
    ///
    /// # Errors
    /// Database errors.
    pub async fn access_report(
        &self,
        estate: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<AccessReportData> {
        let (f, t) = (ms(from), ms(to));
        // One scan of the day's access events (index-only with the 0002
        // covering index); devices are mapped to entrances afterwards.
        let entrance_of: BTreeMap<String, String> =
            sqlx::query("SELECT id, entrance FROM devices WHERE estate = $1")
                .bind(estate)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_>>()?;
        // Quarter-hour aligned windows (every local date of every real
        // timezone) read the rollup that migration 0004's triggers keep;
        // any other window scans the access events.
        let sql = if f >= 0 && f % ROLLUP_BUCKET_MS == 0 && t % ROLLUP_BUCKET_MS == 0 {
            "SELECT device, (bucket_ms - $2) / 3600000, direction, credential_kind, \
             CAST(SUM(granted) AS BIGINT), CAST(SUM(denied) AS BIGINT), CAST(SUM(n) AS BIGINT) \
             FROM access_rollup WHERE estate = $1 AND bucket_ms >= $2 AND bucket_ms < $3 \
             GROUP BY device, (bucket_ms - $2) / 3600000, direction, credential_kind \
             HAVING SUM(n) > 0"
        } else {
            "SELECT device, (ts_ms - $2) / 3600000, COALESCE(direction, ''), \
             COALESCE(credential_kind, ''), \
             COUNT(CASE WHEN result = 'granted' THEN 1 END), \
             COUNT(CASE WHEN result = 'denied' THEN 1 END), COUNT(*) \
             FROM events WHERE estate = $1 AND kind = 'access' AND ts_ms >= $2 AND ts_ms < $3 \
             GROUP BY device, (ts_ms - $2) / 3600000, COALESCE(direction, ''), \
             COALESCE(credential_kind, '')"
        };
        let rows = sqlx::query(sql)
            .bind(estate)
            .bind(f)
            .bind(t)
            .fetch_all(&self.pool)
            .await?;
        let mut traffic_m: BTreeMap<(String, i64, String), (i64, i64)> = BTreeMap::new();
        let mut cred_m: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        let mut access_events = 0;
        for r in &rows {
            access_events += i(r, 6)?;
            let device: String = r.try_get(0)?;
            let entrance = entrance_of.get(&device).cloned().unwrap_or(device);
            let (g, d) = (i(r, 4)?, i(r, 5)?);
            let e = traffic_m
                .entry((entrance, i(r, 1)?, r.try_get(2)?))
                .or_default();
            e.0 += g;
            e.1 += d;
            let c = cred_m.entry(r.try_get(3)?).or_default();
            c.0 += g;
            c.1 += d;
        }
        let traffic = traffic_m
            .into_iter()
            .map(
                |((entrance, hour, direction), (granted, denied))| TrafficRow {
                    entrance,
                    hour,
                    direction,
                    granted,
                    denied,
                },
            )
            .collect();
        let credentials = cred_m
            .into_iter()
            .map(|(kind, (granted, denied))| CredentialRow {
                kind,
                granted,
                denied,
            })
            .collect();

        // Distinct subjects per category: group by (category, subject) first,
        // then count the groups. COUNT(DISTINCT …) sorted all the day's
        // sightings per category instead (2× slower on SQLite, measured).
        let rows = sqlx::query(
            "SELECT cat, CAST(SUM(n) AS BIGINT), COUNT(k) FROM (\
             SELECT CASE WHEN e.person_id IS NULL THEN 'unknown' \
             WHEN p.person_id IS NOT NULL THEN 'resident' ELSE 'visitor' END AS cat, \
             COALESCE(e.person_id, e.stranger_id) AS k, COUNT(*) AS n \
             FROM events e LEFT JOIN (SELECT DISTINCT person_id FROM persons WHERE estate = $1) p \
             ON p.person_id = e.person_id \
             WHERE e.estate = $1 AND e.kind = 'sighting' AND e.ts_ms >= $2 AND e.ts_ms < $3 \
             GROUP BY 1, 2) s GROUP BY cat",
        )
        .bind(estate)
        .bind(f)
        .bind(t)
        .fetch_all(&self.pool)
        .await?;
        let mut sightings = SightingCounts::default();
        for r in &rows {
            let cat: String = r.try_get(0)?;
            let (n, d) = (i(r, 1)?, i(r, 2)?);
            match cat.as_str() {
                "resident" => (sightings.resident_sightings, sightings.residents) = (n, d),
                "visitor" => (sightings.visitor_sightings, sightings.visitors) = (n, d),
                _ => (sightings.unknown_sightings, sightings.unknown) = (n, d),
            }
        }

        // The day's events: access and sightings are counted above; the
        // other kinds by index range scans (estate, kind, ts) — no scan of
        // the whole day.
        let others = other_kinds();
        let list = (0..others.len())
            .map(|k| format!("${}", k + 4))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT COUNT(*) FROM events WHERE estate = $1 AND kind IN ({list}) \
             AND ts_ms >= $2 AND ts_ms < $3"
        );
        let mut q = sqlx::query_scalar::<_, i64>(&sql)
            .bind(estate)
            .bind(f)
            .bind(t);
        for k in others {
            q = q.bind(k);
        }
        let other_events: i64 = q.fetch_one(&self.pool).await?;
        let events = access_events
            + sightings.resident_sightings
            + sightings.visitor_sightings
            + sightings.unknown_sightings
            + other_events;

        let mut alerts: BTreeMap<String, AlertCodeRow> = BTreeMap::new();
        let row_for = |m: &mut BTreeMap<String, AlertCodeRow>, code: String| {
            m.entry(code.clone())
                .or_insert(AlertCodeRow {
                    code,
                    opened: 0,
                    resolved: 0,
                    dismissed: 0,
                })
                .clone()
        };
        for r in sqlx::query(
            "SELECT code, COUNT(*) FROM alerts WHERE estate = $1 AND opened_ms >= $2 \
             AND opened_ms < $3 GROUP BY code",
        )
        .bind(estate)
        .bind(f)
        .bind(t)
        .fetch_all(&self.pool)
        .await?
        {
            let code: String = r.try_get(0)?;
            let mut a = row_for(&mut alerts, code.clone());
            a.opened = i(&r, 1)?;
            alerts.insert(code, a);
        }
        for r in sqlx::query(
            "SELECT a.code, t.to_status, COUNT(*) FROM alert_transitions t \
             JOIN alerts a ON a.id = t.alert_id WHERE a.estate = $1 AND t.at_ms >= $2 \
             AND t.at_ms < $3 AND t.to_status IN ('resolved', 'dismissed') \
             GROUP BY a.code, t.to_status",
        )
        .bind(estate)
        .bind(f)
        .bind(t)
        .fetch_all(&self.pool)
        .await?
        {
            let code: String = r.try_get(0)?;
            let to: String = r.try_get(1)?;
            let mut a = row_for(&mut alerts, code.clone());
            if to == "resolved" {
                a.resolved = i(&r, 2)?;
            } else {
                a.dismissed = i(&r, 2)?;
            }
            alerts.insert(code, a);
        }

        let devices = self.device_uptime(estate, f, t).await?;
        Ok(AccessReportData {
            estate: estate.to_owned(),
            from,
            to,
            events,
            traffic,
            credentials,
            sightings,
            alerts: alerts.into_values().collect(),
            devices,
        })
    }

    /// Uptime of the estate's registered devices within `[f, t)` from their
    /// status reports (the state before the window is the last report of the
    /// week before).
    async fn device_uptime(&self, estate: &str, f: i64, t: i64) -> Result<Vec<DeviceUptime>> {
        let devs =
            sqlx::query("SELECT id, kind, entrance FROM devices WHERE estate = $1 ORDER BY id")
                .bind(estate)
                .fetch_all(&self.pool)
                .await?;
        let statuses = sqlx::query(
            "SELECT device, ts_ms, result FROM events WHERE estate = $1 AND kind = 'status' \
             AND ts_ms >= $2 AND ts_ms < $3 ORDER BY ts_ms",
        )
        .bind(estate)
        .bind(f - STATUS_LOOKBACK_MS)
        .bind(t)
        .fetch_all(&self.pool)
        .await?;
        let mut by_dev: BTreeMap<String, Vec<(i64, bool)>> = BTreeMap::new();
        for r in &statuses {
            let d: String = r.try_get(0)?;
            let res: Option<String> = r.try_get(2)?;
            by_dev
                .entry(d)
                .or_default()
                .push((i(r, 1)?, res.as_deref() == Some("online")));
        }
        let mut out = Vec::with_capacity(devs.len());
        for r in &devs {
            let id: String = r.try_get(0)?;
            let points = by_dev.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            let mut state: Option<bool> = None;
            let mut cursor = f;
            let (mut known, mut online, mut outages) = (0i64, 0i64, 0i64);
            for &(ts, on) in points {
                if ts < f {
                    state = Some(on);
                    continue;
                }
                if let Some(s) = state {
                    known += ts - cursor;
                    if s {
                        online += ts - cursor;
                    }
                }
                if !on && state != Some(false) {
                    outages += 1;
                }
                state = Some(on);
                cursor = ts;
            }
            if let Some(s) = state {
                known += t - cursor;
                if s {
                    online += t - cursor;
                }
            }
            out.push(DeviceUptime {
                device: id,
                kind: r.try_get(1)?,
                entrance: r.try_get(2)?,
                known_ms: known,
                online_ms: online,
                #[allow(clippy::cast_precision_loss)]
                uptime: (known > 0).then(|| online as f64 / known as f64),
                outages,
            });
        }
        Ok(out)
    }

    /// Estates within `scope`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_estates(&self, scope: &Scope) -> Result<Vec<Estate>> {
        let mut n = 1;
        let (sc, binds) = estate_scope_sql(scope, "code", &mut n);
        let sql = format!("SELECT code, name, office FROM estates WHERE 1 = 1{sc} ORDER BY code");
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Estate {
                    code: r.try_get::<String, _>(0)?.into(),
                    name: r.try_get(1)?,
                    office: r.try_get(2)?,
                })
            })
            .collect()
    }

    /// Units within `scope` (field staff: the buildings of their grids).
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_units(
        &self,
        scope: &Scope,
        estate: Option<&str>,
        building: Option<&str>,
        page: Page,
    ) -> Result<Vec<Unit>> {
        let (sql, binds, _) = units_page_sql(scope, estate, building);
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        q = q.bind(page.limit).bind(page.offset);
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(Unit {
                    key: UnitKey::new(
                        r.try_get::<String, _>(0)?,
                        r.try_get::<String, _>(1)?,
                        r.try_get::<String, _>(2)?,
                    ),
                    area_m2: r.try_get(3)?,
                })
            })
            .collect()
    }

    /// Ledger rows within `scope` matching `f`, by person id.
    ///
    /// # Errors
    /// Database errors or rows that do not parse.
    pub async fn list_persons(&self, scope: &Scope, f: &PersonFilter) -> Result<Vec<Person>> {
        let mut sql = String::from(
            "SELECT person_id, lease_start, estate, building, unit, household, name, role, \
             id_number, phone, birth_year, lives_alone, lease_end FROM persons WHERE 1 = 1",
        );
        let mut binds: Vec<String> = Vec::new();
        let mut n = 1;
        for (col, v) in [
            ("estate", &f.estate),
            ("building", &f.building),
            ("unit", &f.unit),
        ] {
            if let Some(v) = v {
                sql.push_str(&format!(" AND {col} = ${n}"));
                n += 1;
                binds.push(v.clone());
            }
        }
        let (sc, sb) = scope_sql(scope, &mut n);
        sql.push_str(&sc);
        binds.extend(sb);
        let limit = if f.limit <= 0 { 100 } else { f.limit.min(1000) };
        sql.push_str(&format!(
            " ORDER BY person_id, lease_start LIMIT ${n} OFFSET ${}",
            n + 1
        ));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        q = q.bind(limit).bind(f.offset.max(0));
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(person_from_row)
            .collect()
    }

    /// All ledger rows of one person that lie within `scope` (empty: the
    /// person does not exist for this caller).
    ///
    /// # Errors
    /// Database errors or rows that do not parse.
    pub async fn get_person(&self, id: &str, scope: &Scope) -> Result<Vec<Person>> {
        let mut n = 2;
        let (sc, binds) = scope_sql(scope, &mut n);
        let sql = format!(
            "SELECT person_id, lease_start, estate, building, unit, household, name, role, \
             id_number, phone, birth_year, lives_alone, lease_end FROM persons \
             WHERE person_id = $1{sc} ORDER BY lease_start"
        );
        let mut q = sqlx::query(&sql).bind(id);
        for b in binds {
            q = q.bind(b);
        }
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(person_from_row)
            .collect()
    }

    /// Credentials of persons within `scope`, optionally of one person.
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_credentials(
        &self,
        scope: &Scope,
        person: Option<&str>,
        page: Page,
    ) -> Result<Vec<CredentialListRow>> {
        let mut n = 1;
        let mut sql = String::from(
            "SELECT kind, credential_id, person_id, valid_from, valid_to, status FROM credentials c \
             WHERE 1 = 1",
        );
        let mut binds = Vec::new();
        if let Some(p) = person {
            sql.push_str(&format!(" AND c.person_id = ${n}"));
            n += 1;
            binds.push(p.to_owned());
        }
        let (sc, sb) = scope_sql(scope, &mut n);
        if !sc.is_empty() {
            sql.push_str(&format!(
                " AND c.person_id IN (SELECT person_id FROM persons WHERE 1 = 1{sc})"
            ));
            binds.extend(sb);
        }
        sql.push_str(&format!(
            " ORDER BY kind, credential_id LIMIT ${n} OFFSET ${}",
            n + 1
        ));
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        q = q.bind(page.limit).bind(page.offset);
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                Ok(CredentialListRow {
                    kind: r.try_get(0)?,
                    id: r.try_get(1)?,
                    person: r.try_get(2)?,
                    valid_from: r.try_get(3)?,
                    valid_to: r.try_get(4)?,
                    status: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Registered devices of the estates within `scope` with when each was
    /// last heard of (its latest stored event) and its latest status, as
    /// the `device_seen` table keeps them (migration 0012).
    ///
    /// # Errors
    /// Database errors.
    pub async fn list_devices(&self, scope: &Scope, page: Page) -> Result<Vec<DeviceRow>> {
        let mut n = 1;
        let (sc, binds) = estate_scope_sql(scope, "d.estate", &mut n);
        let paging = format!(" LIMIT ${n} OFFSET ${}", n + 1);
        let sql = format!(
            "SELECT d.estate, d.id, d.kind, d.entrance, d.url, s.last_ms, s.status \
             FROM devices d LEFT JOIN device_seen s ON s.estate = d.estate AND s.device = d.id \
             WHERE 1 = 1{sc} ORDER BY d.estate, d.id{paging}"
        );
        let mut q = sqlx::query(&sql);
        for b in binds {
            q = q.bind(b);
        }
        q = q.bind(page.limit).bind(page.offset);
        q.fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| {
                let status: Option<String> = r.try_get(6)?;
                Ok(DeviceRow {
                    estate: r.try_get(0)?,
                    id: r.try_get(1)?,
                    kind: r.try_get(2)?,
                    entrance: r.try_get(3)?,
                    url: r.try_get(4)?,
                    last_seen: r.try_get::<Option<i64>, _>(5)?.map(from_ms).transpose()?,
                    online: status.map(|s| s == "online"),
                })
            })
            .collect()
    }

    /// The `(estate, building)` pairs of the given grids (to filter a live
    /// alert feed for field staff).
    ///
    /// # Errors
    /// Database errors.
    pub async fn buildings_of_grids(
        &self,
        grids: &[(anju_core::EstateCode, anju_core::GridCode)],
    ) -> Result<HashSet<(String, String)>> {
        let rows = sqlx::query("SELECT estate, code, grid FROM buildings WHERE grid IS NOT NULL")
            .fetch_all(&self.pool)
            .await?;
        let mut out = HashSet::new();
        for r in &rows {
            let (e, b, g): (String, String, String) = (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            if grids
                .iter()
                .any(|(ge, gg)| ge.as_str() == e && gg.as_str() == g)
            {
                out.insert((e, b));
            }
        }
        Ok(out)
    }

    /// Whether an estate exists (validation of API input).
    ///
    /// # Errors
    /// Database errors.
    pub async fn estate_exists(&self, estate: &str) -> Result<bool> {
        let r = sqlx::query("SELECT 1 FROM estates WHERE code = $1")
            .bind(estate)
            .fetch_optional(&self.pool)
            .await?;
        Ok(r.is_some())
    }
}

/// Every event kind but access and sighting, which the report counts from
/// their own queries, and passage, which the edge derives from an access
/// event (counting it would count that access twice). The exhaustive match
/// makes a new kind a compile error here, so the day's total cannot
/// silently miss it.
fn other_kinds() -> Vec<&'static str> {
    use anju_core::EventKind as K;
    [
        K::Access,
        K::Door,
        K::Status,
        K::QrScan,
        K::Sighting,
        K::Passage,
    ]
    .into_iter()
    .filter_map(|k| match k {
        K::Access | K::Sighting | K::Passage => None,
        K::Door | K::Status | K::QrScan => Some(k.as_str()),
    })
    .collect()
}
