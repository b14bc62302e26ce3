//! Loading a site: the TOML site file, the ledger (CSV or XLSX), the
//! credentials and the watch list, validated as a whole.
//!
//! [`load`] either returns a complete, consistent [`Site`] or every problem
//! found, each located by file, line and column ([`SiteErrors`]). Nothing is
//! partially loaded: callers (`anju import`) write to the store only after a
//! successful load.

pub mod diff;
pub mod export;
pub mod fields;
mod file;
pub mod gen;
mod ledger;
mod table;

use anju_core::{Registry, Tz};
use serde::Deserialize as _;
use std::fmt;
use std::path::{Path, PathBuf};

pub use file::{
    CameraSection, EntranceSection, EstateSection, GridSection, ReaderSection, SiteFile,
};
pub use ledger::{CREDENTIAL_COLUMNS, LEDGER_COLUMNS, WATCHLIST_COLUMNS};

/// A loaded and validated site.
#[derive(Debug, Clone)]
pub struct Site {
    /// The site file's path.
    pub path: PathBuf,
    /// The site's time zone; reports and "overnight" rules use it.
    pub timezone: Tz,
    /// The parsed site file (for sections other crates own, e.g. `rules`).
    pub file: SiteFile,
    pub registry: Registry,
    /// `photos/` directory for enrolment, when configured and present.
    pub photos: Option<PathBuf>,
    /// How long personal data is kept (`[retention]`, validated).
    pub retention: anju_core::Retention,
}

/// One problem found while loading, with its location.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SiteError {
    pub file: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (for CSV/XLSX: the field's position; the column name is
    /// in `field`).
    pub column: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for SiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        if let Some(field) = &self.field {
            write!(f, ": {field}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every problem found; the load was rejected as a whole.
#[derive(Debug, Clone, thiserror::Error)]
pub struct SiteErrors(pub Vec<SiteError>);

impl fmt::Display for SiteErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} error(s) in the site; nothing was loaded:",
            self.0.len()
        )?;
        for e in &self.0 {
            writeln!(f, "  {e}")?;
        }
        Ok(())
    }
}

/// Checks an uploaded ledger (CSV or XLSX, the ledger's columns) against
/// the estates and buildings of `base` (the stored registry), exactly as
/// `anju import` checks the site's ledger. Returns its units and rows, or
/// every problem, located by line and column; `name` names the upload in
/// them.
///
/// # Errors
/// Every problem found.
pub fn check_ledger(
    name: &str,
    bytes: &[u8],
    base: &Registry,
) -> Result<(Vec<anju_core::Unit>, Vec<anju_core::Person>), Vec<SiteError>> {
    let mut errs = Vec::new();
    let Some(t) = table::Table::from_bytes(name, bytes, &ledger::LEDGER_COLUMNS, &mut errs) else {
        return Err(errs);
    };
    let mut reg = Registry {
        estates: base.estates.clone(),
        buildings: base.buildings.clone(),
        ..Default::default()
    };
    ledger::ledger(&t, &mut reg, &mut errs);
    if errs.is_empty() {
        Ok((reg.units, reg.persons))
    } else {
        Err(errs)
    }
}

/// Loads and validates the site file at `path` and the tables it names.
///
/// # Errors
/// Every problem found, located; see [`SiteError`].
pub fn load(path: &Path) -> Result<Site, SiteErrors> {
    let mut errs = Vec::new();
    let display = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return Err(SiteErrors(vec![SiteError {
                file: display,
                line: None,
                column: None,
                field: None,
                message: format!("cannot read: {e}"),
            }]))
        }
    };
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let (file, mut registry, tz) = match file::parse(&display, &text, &mut errs) {
        Some(v) => v,
        None => return Err(SiteErrors(errs)),
    };
    ledger::load_tables(&dir, &file, &mut registry, &mut errs);
    let retention = match file
        .retention
        .clone()
        .map(anju_core::Retention::deserialize)
    {
        None => anju_core::Retention::default(),
        Some(Ok(r)) => {
            if let Err(m) = r.validate() {
                errs.push(SiteError {
                    file: display.clone(),
                    line: None,
                    column: None,
                    field: Some("retention".into()),
                    message: m,
                });
            }
            r
        }
        Some(Err(e)) => {
            errs.push(SiteError {
                file: display.clone(),
                line: None,
                column: None,
                field: Some("retention".into()),
                message: format!("[retention]: {e}"),
            });
            anju_core::Retention::default()
        }
    };
    if !errs.is_empty() {
        return Err(SiteErrors(errs));
    }
    let photos = file
        .photos
        .as_ref()
        .map(|p| dir.join(p))
        .filter(|p| p.is_dir());
    Ok(Site {
        path: path.to_path_buf(),
        timezone: tz,
        file,
        registry,
        photos,
        retention,
    })
}
