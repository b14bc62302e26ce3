//! `GET /reports/access?estate=CODE&date=YYYY-MM-DD`: the 24-hour access
//! report of an estate for a local date, as JSON (default), CSV (`Accept:
//! text/csv` or `format=csv`; UTF-8 with BOM so Excel reads Chinese text) or
//! a printable HTML page with an inline SVG chart (`format=html`).

use crate::auth::AuthUser;
use crate::error::ApiError;
use crate::extract::Q;
use crate::AppState;
use anju_core::Role;
use anju_store::AccessReportData;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `write!` into a String (which cannot fail).
macro_rules! w {
    ($s:expr, $($t:tt)*) => {{
        $s.push_str(&format!($($t)*));
    }};
}

#[derive(Deserialize, Default)]
pub struct ReportQuery {
    estate: Option<String>,
    date: Option<String>,
    format: Option<String>,
}

#[derive(Serialize)]
struct HourRow {
    hour: i64,
    /// Local start of the hour, `HH:00`.
    label: String,
    granted: i64,
    denied: i64,
    #[serde(rename = "in")]
    inbound: i64,
    out: i64,
}

#[derive(Serialize)]
struct EntranceTotal {
    entrance: String,
    granted: i64,
    denied: i64,
    #[serde(rename = "in")]
    inbound: i64,
    out: i64,
}

/// The report as JSON.
#[derive(Serialize)]
struct Report {
    estate: String,
    date: String,
    timezone: String,
    #[serde(flatten)]
    data: AccessReportData,
    totals: Totals,
    by_hour: Vec<HourRow>,
    by_entrance: Vec<EntranceTotal>,
}

#[derive(Serialize)]
struct Totals {
    access: i64,
    granted: i64,
    denied: i64,
}

enum Format {
    Json,
    Csv,
    Html,
}

/// `GET /reports/access`.
pub async fn access(
    State(state): State<AppState>,
    auth: AuthUser,
    headers: HeaderMap,
    Q(q): Q<ReportQuery>,
) -> Result<Response, ApiError> {
    let estate = q
        .estate
        .as_deref()
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::bad_request("estate is required (estate=CODE)"))?;
    crate::registry::code_param("estate", Some(estate))?;
    let date_s = q
        .date
        .as_deref()
        .ok_or_else(|| ApiError::bad_request("date is required (date=YYYY-MM-DD)"))?;
    let date = NaiveDate::parse_from_str(date_s, "%Y-%m-%d")
        .map_err(|_| ApiError::bad_request(format!("date must be YYYY-MM-DD, got {date_s:?}")))?;
    let format = match q.format.as_deref() {
        Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some("html") => Format::Html,
        Some(o) => {
            return Err(ApiError::bad_request(format!(
                "format must be json, csv or html, got {o:?}"
            )))
        }
        None => {
            let accept = headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains("text/csv") {
                Format::Csv
            } else {
                Format::Json
            }
        }
    };
    if !auth.scope.allows_estate(estate) || !state.store.estate_exists(estate).await? {
        return Err(ApiError::not_found(format!("estate {estate} not found")));
    }
    // Role after scope: a foreign estate is a 404 for everyone.
    auth.require(
        &[Role::Admin, Role::Supervisor, Role::Operator],
        "read access reports",
    )?;
    let tz = state.config.tz_for(estate);
    let local_midnight = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .and_then(|t| tz.from_local_datetime(&t).earliest())
            .map(|t| t.with_timezone(&Utc))
    };
    let next = date
        .succ_opt()
        .ok_or_else(|| ApiError::bad_request("date out of range"))?;
    let (from, to) = match (local_midnight(date), local_midnight(next)) {
        (Some(f), Some(t)) => (f, t),
        _ => return Err(ApiError::bad_request("date out of range for the time zone")),
    };
    let data = state.store.access_report(estate, from, to).await?;
    let report = build(estate, date_s, tz, data);
    Ok(match format {
        Format::Json => crate::json(report),
        Format::Csv => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"access-{estate}-{date_s}.csv\""),
                ),
            ],
            csv(&report),
        )
            .into_response(),
        Format::Html => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html(&report),
        )
            .into_response(),
    })
}

fn build(estate: &str, date: &str, tz: anju_core::Tz, data: AccessReportData) -> Report {
    let hours = ((data.to - data.from).num_minutes() + 59) / 60;
    let mut by_hour: Vec<HourRow> = (0..hours.max(0))
        .map(|h| {
            let t = data.from + chrono::Duration::hours(h);
            HourRow {
                hour: h,
                label: t.with_timezone(&tz).format("%H:00").to_string(),
                granted: 0,
                denied: 0,
                inbound: 0,
                out: 0,
            }
        })
        .collect();
    let mut ent: BTreeMap<String, EntranceTotal> = BTreeMap::new();
    let (mut granted, mut denied) = (0, 0);
    for r in &data.traffic {
        granted += r.granted;
        denied += r.denied;
        let n = r.granted + r.denied;
        if let Some(h) = usize::try_from(r.hour)
            .ok()
            .and_then(|h| by_hour.get_mut(h))
        {
            h.granted += r.granted;
            h.denied += r.denied;
            match r.direction.as_str() {
                "in" => h.inbound += n,
                "out" => h.out += n,
                _ => {}
            }
        }
        let e = ent.entry(r.entrance.clone()).or_insert(EntranceTotal {
            entrance: r.entrance.clone(),
            granted: 0,
            denied: 0,
            inbound: 0,
            out: 0,
        });
        e.granted += r.granted;
        e.denied += r.denied;
        match r.direction.as_str() {
            "in" => e.inbound += n,
            "out" => e.out += n,
            _ => {}
        }
    }
    Report {
        estate: estate.to_owned(),
        date: date.to_owned(),
        timezone: tz.name().to_owned(),
        totals: Totals {
            access: granted + denied,
            granted,
            denied,
        },
        by_hour,
        by_entrance: ent.into_values().collect(),
        data,
    }
}

/// One CSV cell. A cell that a spreadsheet would run as a formula (it
/// starts with `=`, `+`, `-`, `@`, a tab or a carriage return) is
/// neutralised with a leading `'` (OWASP "CSV injection").
fn csv_field(s: &str) -> String {
    let neutral;
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        neutral = format!("'{s}");
        neutral.as_str()
    } else {
        s
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Long format, one number per row: `section,key,hour,direction,metric,value`.
fn csv(r: &Report) -> String {
    let mut s = String::from("\u{feff}section,key,hour,direction,metric,value\r\n");
    let mut row = |section: &str, key: &str, hour: &str, dir: &str, metric: &str, v: &str| {
        s.push_str(&format!(
            "{},{},{},{},{},{}\r\n",
            csv_field(section),
            csv_field(key),
            csv_field(hour),
            csv_field(dir),
            csv_field(metric),
            csv_field(v)
        ));
    };
    row(
        "summary",
        &r.estate,
        "",
        "",
        "events",
        &r.data.events.to_string(),
    );
    row(
        "summary",
        &r.estate,
        "",
        "",
        "granted",
        &r.totals.granted.to_string(),
    );
    row(
        "summary",
        &r.estate,
        "",
        "",
        "denied",
        &r.totals.denied.to_string(),
    );
    for t in &r.data.traffic {
        let label = r
            .by_hour
            .get(usize::try_from(t.hour).unwrap_or(usize::MAX))
            .map_or_else(|| t.hour.to_string(), |h| h.label.clone());
        row(
            "traffic",
            &t.entrance,
            &label,
            &t.direction,
            "granted",
            &t.granted.to_string(),
        );
        row(
            "traffic",
            &t.entrance,
            &label,
            &t.direction,
            "denied",
            &t.denied.to_string(),
        );
    }
    for c in &r.data.credentials {
        row(
            "credential",
            &c.kind,
            "",
            "",
            "granted",
            &c.granted.to_string(),
        );
        row(
            "credential",
            &c.kind,
            "",
            "",
            "denied",
            &c.denied.to_string(),
        );
    }
    let sg = &r.data.sightings;
    for (k, n, d) in [
        ("resident", sg.resident_sightings, sg.residents),
        ("visitor", sg.visitor_sightings, sg.visitors),
        ("unknown", sg.unknown_sightings, sg.unknown),
    ] {
        row("sightings", k, "", "", "sightings", &n.to_string());
        row("sightings", k, "", "", "distinct", &d.to_string());
    }
    for a in &r.data.alerts {
        row("alerts", &a.code, "", "", "opened", &a.opened.to_string());
        row(
            "alerts",
            &a.code,
            "",
            "",
            "resolved",
            &a.resolved.to_string(),
        );
        row(
            "alerts",
            &a.code,
            "",
            "",
            "dismissed",
            &a.dismissed.to_string(),
        );
    }
    for d in &r.data.devices {
        let up = d.uptime.map_or_else(String::new, |u| format!("{u:.4}"));
        row("devices", &d.device, "", "", "uptime", &up);
        row(
            "devices",
            &d.device,
            "",
            "",
            "outages",
            &d.outages.to_string(),
        );
    }
    s
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn html(r: &Report) -> String {
    let mut s = String::new();
    let title = format!(
        "出入报告 Access report — {} — {}",
        esc(&r.estate),
        esc(&r.date)
    );
    w!(
        s,
        "<!doctype html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse;margin:1em 0}}\
         td,th{{border:1px solid #999;padding:2px 8px;text-align:right}}th{{background:#eee}}\
         td:first-child{{text-align:left}}@media print{{body{{margin:0}}}}</style></head><body>\
         <h1>{title}</h1><p>时区 Time zone: {} · 事件 Events: {} · 通过 Granted: {} · 拒绝 Denied: {}</p>",
        esc(&r.timezone),
        r.data.events,
        r.totals.granted,
        r.totals.denied
    );
    // Bar chart of traffic by hour (granted stacked with denied).
    let max = r
        .by_hour
        .iter()
        .map(|h| h.granted + h.denied)
        .max()
        .unwrap_or(0)
        .max(1);
    let (w, h) = (24 * 28 + 40, 200);
    w!(
        s,
        "<h2>按小时通行 Traffic by hour</h2><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{}\" role=\"img\">",
        h + 30
    );
    for (i, hr) in r.by_hour.iter().enumerate() {
        let x = 30 + i * 28;
        #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
        let scale = |v: i64| ((v as f64 / max as f64) * f64::from(h)).round() as i64;
        let gh = scale(hr.granted);
        let dh = scale(hr.denied);
        w!(
            s,
            "<rect x=\"{x}\" y=\"{}\" width=\"22\" height=\"{gh}\" fill=\"#4a7\"><title>{} granted {}</title></rect>\
             <rect x=\"{x}\" y=\"{}\" width=\"22\" height=\"{dh}\" fill=\"#c44\"><title>{} denied {}</title></rect>\
             <text x=\"{}\" y=\"{}\" font-size=\"9\" text-anchor=\"middle\">{}</text>",
            i64::from(h) - gh,
            esc(&hr.label),
            hr.granted,
            i64::from(h) - gh - dh,
            esc(&hr.label),
            hr.denied,
            x + 11,
            h + 12,
            esc(&hr.label[..2.min(hr.label.len())])
        );
    }
    s.push_str("</svg>");
    s.push_str("<h2>出入口 Entrances</h2><table><tr><th>entrance</th><th>in</th><th>out</th><th>granted</th><th>denied</th></tr>");
    for e in &r.by_entrance {
        w!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&e.entrance),
            e.inbound,
            e.out,
            e.granted,
            e.denied
        );
    }
    s.push_str("</table><h2>凭证 Credentials</h2><table><tr><th>kind</th><th>granted</th><th>denied</th></tr>");
    for c in &r.data.credentials {
        w!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.kind),
            c.granted,
            c.denied
        );
    }
    let sg = &r.data.sightings;
    w!(
        s,
        "</table><h2>人脸 Faces</h2><table><tr><th></th><th>sightings</th><th>distinct</th></tr>\
         <tr><td>住户 residents</td><td>{}</td><td>{}</td></tr>\
         <tr><td>访客 visitors</td><td>{}</td><td>{}</td></tr>\
         <tr><td>陌生 unknown</td><td>{}</td><td>{}</td></tr></table>",
        sg.resident_sightings,
        sg.residents,
        sg.visitor_sightings,
        sg.visitors,
        sg.unknown_sightings,
        sg.unknown
    );
    s.push_str("<h2>告警 Alerts</h2><table><tr><th>code</th><th>opened</th><th>resolved</th><th>dismissed</th></tr>");
    for a in &r.data.alerts {
        w!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&a.code),
            a.opened,
            a.resolved,
            a.dismissed
        );
    }
    s.push_str("</table><h2>设备 Devices</h2><table><tr><th>device</th><th>kind</th><th>entrance</th><th>uptime</th><th>outages</th></tr>");
    for d in &r.data.devices {
        let up = d
            .uptime
            .map_or_else(|| "—".to_owned(), |u| format!("{:.1}%", u * 100.0));
        w!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{up}</td><td>{}</td></tr>",
            esc(&d.device),
            esc(&d.kind),
            esc(&d.entrance),
            d.outages
        );
    }
    s.push_str("</table></body></html>");
    s
}

#[cfg(test)]
mod csv_tests {
    #[test]
    fn formula_cells_are_neutralised() {
        assert_eq!(
            super::csv_field("=HYPERLINK(\"x\")"),
            "\"'=HYPERLINK(\"\"x\"\")\""
        );
        assert_eq!(super::csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(super::csv_field("+1"), "'+1");
        assert_eq!(super::csv_field("north-gate"), "north-gate");
        assert_eq!(super::csv_field("12"), "12");
    }
}
