//! The TOML site file (DESIGN §6 "site file" contract).

use crate::SiteError;
use anju_core::{
    Building, Device, DeviceKind, Entrance, EntranceKind, Estate, FacesDirection, Grid, Registry,
    Tz,
};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SiteFile {
    pub timezone: String,
    pub ledger: String,
    pub credentials: String,
    #[serde(default)]
    pub watchlist: Option<String>,
    #[serde(default)]
    pub photos: Option<String>,
    #[serde(default, rename = "estate")]
    pub estates: Vec<EstateSection>,
    /// Rule thresholds (owned by `anju-rules`), passed through untouched.
    #[serde(default)]
    pub rules: Option<toml::Value>,
    /// QR pass settings (owned by the edge), passed through untouched.
    #[serde(default)]
    pub qr: Option<toml::Value>,
    /// Retention settings, passed through untouched.
    #[serde(default)]
    pub retention: Option<toml::Value>,
    /// Webhook notifications (owned by `anju serve`), passed through untouched.
    #[serde(default)]
    pub notify: Option<toml::Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EstateSection {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub office: String,
    #[serde(default, rename = "building")]
    pub buildings: Vec<BuildingSection>,
    #[serde(default, rename = "grid")]
    pub grids: Vec<GridSection>,
    #[serde(default, rename = "entrance")]
    pub entrances: Vec<EntranceSection>,
    #[serde(default, rename = "camera")]
    pub cameras: Vec<CameraSection>,
    #[serde(default, rename = "reader")]
    pub readers: Vec<ReaderSection>,
    #[serde(default, rename = "scanner")]
    pub scanners: Vec<ReaderSection>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildingSection {
    pub code: String,
    #[serde(default)]
    pub grid: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridSection {
    pub code: String,
    #[serde(default)]
    pub staff: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntranceSection {
    pub code: String,
    pub kind: String,
    #[serde(default)]
    pub building: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSection {
    pub id: String,
    pub url: String,
    pub entrance: String,
    #[serde(default = "default_faces")]
    pub faces: String,
    /// Name of the secret holding the camera's credentials (never in the URL).
    #[serde(default)]
    pub secret: Option<String>,
}

fn default_faces() -> String {
    "in".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReaderSection {
    pub id: String,
    pub entrance: String,
}

fn err(file: &str, path: String, message: impl Into<String>) -> SiteError {
    SiteError {
        file: file.to_owned(),
        line: None,
        column: None,
        field: Some(path),
        message: message.into(),
    }
}

/// Parses and checks the site file itself. Returns `None` when it cannot be
/// parsed at all (the errors say why); structural problems are pushed to
/// `errs` and parsing goes on so that all are reported.
pub(crate) fn parse(
    file: &str,
    text: &str,
    errs: &mut Vec<SiteError>,
) -> Option<(SiteFile, Registry, Tz)> {
    let site: SiteFile = match toml::from_str(text) {
        Ok(s) => s,
        Err(e) => {
            let (line, column) = e
                .span()
                .map(|s| line_col(text, s.start))
                .map_or((None, None), |(l, c)| (Some(l), Some(c)));
            errs.push(SiteError {
                file: file.to_owned(),
                line,
                column,
                field: None,
                message: e.message().to_owned(),
            });
            return None;
        }
    };
    let tz: Tz = match site.timezone.parse() {
        Ok(tz) => tz,
        Err(_) => {
            errs.push(err(
                file,
                "timezone".into(),
                format!(
                    "unknown time zone {:?} (expected e.g. \"Asia/Shanghai\")",
                    site.timezone
                ),
            ));
            Tz::UTC
        }
    };
    let mut reg = Registry::default();
    let mut estate_codes = HashSet::new();
    let mut device_ids = HashSet::new();
    for (ei, e) in site.estates.iter().enumerate() {
        let at = |rest: &str| format!("estate[{ei}]{rest}");
        if !valid_code(&e.code) {
            errs.push(err(
                file,
                at(".code"),
                format!(
                    "{:?} is not a valid code (letters, digits, - and _)",
                    e.code
                ),
            ));
        }
        if !estate_codes.insert(e.code.clone()) {
            errs.push(err(
                file,
                at(".code"),
                format!("duplicate estate {:?}", e.code),
            ));
        }
        reg.estates.push(Estate {
            code: e.code.as_str().into(),
            name: e.name.clone(),
            office: e.office.clone(),
        });
        let grids: HashSet<&str> = e.grids.iter().map(|g| g.code.as_str()).collect();
        if grids.len() != e.grids.len() {
            errs.push(err(file, at(".grid"), "duplicate grid code"));
        }
        for (gi, g) in e.grids.iter().enumerate() {
            check_code(
                errs,
                file,
                at(&format!(".grid[{gi}].code")),
                "grid code",
                &g.code,
            );
            reg.grids.push(Grid {
                estate: e.code.as_str().into(),
                code: g.code.as_str().into(),
                staff: g.staff.iter().map(|s| s.as_str().into()).collect(),
            });
        }
        let mut buildings = HashSet::new();
        for (bi, b) in e.buildings.iter().enumerate() {
            check_code(
                errs,
                file,
                at(&format!(".building[{bi}].code")),
                "building code",
                &b.code,
            );
            if !buildings.insert(b.code.as_str()) {
                errs.push(err(
                    file,
                    at(&format!(".building[{bi}].code")),
                    format!("duplicate building {:?}", b.code),
                ));
            }
            if let Some(g) = &b.grid {
                if !grids.contains(g.as_str()) {
                    errs.push(err(
                        file,
                        at(&format!(".building[{bi}].grid")),
                        format!("unknown grid {g:?}"),
                    ));
                }
            }
            reg.buildings.push(Building {
                estate: e.code.as_str().into(),
                code: b.code.as_str().into(),
                grid: b.grid.as_deref().map(Into::into),
            });
        }
        let mut entrances = HashSet::new();
        for (ni, n) in e.entrances.iter().enumerate() {
            let p = |f: &str| at(&format!(".entrance[{ni}].{f}"));
            check_code(errs, file, p("code"), "entrance code", &n.code);
            if !entrances.insert(n.code.as_str()) {
                errs.push(err(
                    file,
                    p("code"),
                    format!("duplicate entrance {:?}", n.code),
                ));
            }
            let kind = match n.kind.as_str() {
                "estate_gate" => EntranceKind::EstateGate,
                "building_door" => EntranceKind::BuildingDoor,
                other => {
                    errs.push(err(
                        file,
                        p("kind"),
                        format!("{other:?} is not estate_gate or building_door"),
                    ));
                    EntranceKind::EstateGate
                }
            };
            match (&kind, &n.building) {
                (EntranceKind::BuildingDoor, None) => errs.push(err(
                    file,
                    p("building"),
                    "a building_door needs building = \"…\"",
                )),
                (_, Some(b)) if !buildings.contains(b.as_str()) => {
                    errs.push(err(file, p("building"), format!("unknown building {b:?}")))
                }
                _ => {}
            }
            reg.entrances.push(Entrance {
                estate: e.code.as_str().into(),
                code: n.code.as_str().into(),
                kind,
                building: n.building.as_deref().map(Into::into),
            });
        }
        let mut device = |errs: &mut Vec<SiteError>,
                          id: &str,
                          kind: DeviceKind,
                          entrance: &str,
                          path: String|
         -> bool {
            let mut ok = valid_code(id);
            check_code(errs, file, format!("{path}.id"), "device id", id);
            if !device_ids.insert(id.to_owned()) {
                errs.push(err(
                    file,
                    format!("{path}.id"),
                    format!("duplicate device id {id:?}"),
                ));
                ok = false;
            }
            if !entrances.contains(entrance) {
                errs.push(err(
                    file,
                    format!("{path}.entrance"),
                    format!("unknown entrance {entrance:?} for {} {id:?}", kind.as_str()),
                ));
                ok = false;
            }
            ok
        };
        for (ci, c) in e.cameras.iter().enumerate() {
            let path = at(&format!(".camera[{ci}]"));
            device(errs, &c.id, DeviceKind::Camera, &c.entrance, path.clone());
            let faces = match c.faces.as_str() {
                "in" => FacesDirection::In,
                "out" => FacesDirection::Out,
                "both" => FacesDirection::Both,
                other => {
                    errs.push(err(
                        file,
                        format!("{path}.faces"),
                        format!("{other:?} is not in, out or both"),
                    ));
                    FacesDirection::Both
                }
            };
            if let Some(msg) = check_rtsp_url(&c.url) {
                errs.push(err(file, format!("{path}.url"), msg));
            }
            reg.devices.push(Device {
                estate: e.code.as_str().into(),
                id: c.id.as_str().into(),
                kind: DeviceKind::Camera,
                entrance: c.entrance.as_str().into(),
                url: Some(c.url.clone()),
                faces: Some(faces),
            });
        }
        for (kind, list, name) in [
            (DeviceKind::Reader, &e.readers, "reader"),
            (DeviceKind::Scanner, &e.scanners, "scanner"),
        ] {
            for (ri, r) in list.iter().enumerate() {
                device(
                    errs,
                    &r.id,
                    kind,
                    &r.entrance,
                    at(&format!(".{name}[{ri}]")),
                );
                reg.devices.push(Device {
                    estate: e.code.as_str().into(),
                    id: r.id.as_str().into(),
                    kind,
                    entrance: r.entrance.as_str().into(),
                    url: None,
                    faces: None,
                });
            }
        }
    }
    if site.estates.is_empty() {
        errs.push(err(file, "estate".into(), "no [[estate]] defined"));
    }
    Some((site, reg, tz))
}

/// Reports `value` at `path` unless it is a [`valid_code`]: device ids,
/// entrance, building and grid codes become MQTT topic levels, metric
/// labels and parts of file paths (a camera's snapshots), so `/`, `..`,
/// `+`, `#`, quotes and spaces are refused where they enter.
fn check_code(errs: &mut Vec<SiteError>, file: &str, path: String, what: &str, value: &str) {
    if !valid_code(value) {
        errs.push(err(
            file,
            path,
            format!("{value:?} is not a valid {what} (1 to 64 letters, digits, - and _)"),
        ));
    }
}

/// Codes appear in MQTT topics and URLs: keep them to a safe alphabet.
pub(crate) fn valid_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn check_rtsp_url(url: &str) -> Option<String> {
    crate::fields::rtsp_url(url).err()
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}
