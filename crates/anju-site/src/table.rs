//! Reading a table (CSV UTF-8 with header, or the first sheet of an XLSX
//! workbook with the same header) into rows of strings that remember where
//! they came from.

use crate::SiteError;
use calamine::{Data, Reader};
use std::collections::HashMap;
use std::path::Path;

pub(crate) struct Table {
    pub file: String,
    /// Column name → 0-based index.
    pub columns: HashMap<String, usize>,
    pub rows: Vec<Row>,
}

pub(crate) struct Row {
    /// 1-based line (CSV) or row (XLSX) number.
    pub line: usize,
    pub cells: Vec<String>,
}

impl Table {
    /// Reads `path` and checks that every `required` column is present.
    pub fn read(path: &Path, required: &[&str], errs: &mut Vec<SiteError>) -> Option<Table> {
        let file = path.display().to_string();
        let is_xlsx = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
        let parsed = if is_xlsx {
            read_xlsx(
                calamine::open_workbook(path).map_err(|e| format!("cannot open workbook: {e}")),
            )
        } else {
            match csv::ReaderBuilder::new().flexible(true).from_path(path) {
                Ok(r) => Ok(read_csv(r, &file, errs)),
                Err(e) => Err(format!("cannot read: {e}")),
            }
        };
        Self::checked(file, parsed, required, errs)
    }

    /// Reads an uploaded table (`name` for messages): XLSX when `bytes` is
    /// a zip archive, else CSV.
    pub fn from_bytes(
        name: &str,
        bytes: &[u8],
        required: &[&str],
        errs: &mut Vec<SiteError>,
    ) -> Option<Table> {
        let parsed = if bytes.starts_with(b"PK\x03\x04") {
            read_xlsx(
                calamine::Xlsx::new(std::io::Cursor::new(bytes))
                    .map_err(|e| format!("cannot open workbook: {e}")),
            )
        } else {
            Ok(read_csv(
                csv::ReaderBuilder::new().flexible(true).from_reader(bytes),
                name,
                errs,
            ))
        };
        Self::checked(name.to_owned(), parsed, required, errs)
    }

    fn checked(
        file: String,
        parsed: Result<Option<Parsed>, String>,
        required: &[&str],
        errs: &mut Vec<SiteError>,
    ) -> Option<Table> {
        let fail = |errs: &mut Vec<SiteError>, msg: String| {
            errs.push(SiteError {
                file: file.clone(),
                line: None,
                column: None,
                field: None,
                message: msg,
            })
        };
        let (header, rows) = match parsed {
            Ok(Some(v)) => v,
            Ok(None) => return None,
            Err(e) => {
                fail(errs, e);
                return None;
            }
        };
        let columns: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, h)| (h.trim().trim_start_matches('\u{feff}').to_owned(), i))
            .collect();
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| !columns.contains_key(*c))
            .collect();
        if !missing.is_empty() {
            errs.push(SiteError {
                file: file.clone(),
                line: Some(1),
                column: None,
                field: None,
                message: format!("missing column(s): {}", missing.join(", ")),
            });
            return None;
        }
        Some(Table {
            file,
            columns,
            rows,
        })
    }

    /// The cell of `col` in `row`, trimmed; empty when absent.
    pub fn get<'r>(&self, row: &'r Row, col: &str) -> &'r str {
        self.columns
            .get(col)
            .and_then(|&i| row.cells.get(i))
            .map_or("", |s| s.trim())
    }

    /// An error located at `row`, column `col`.
    pub fn err(&self, row: &Row, col: &str, message: impl Into<String>) -> SiteError {
        SiteError {
            file: self.file.clone(),
            line: Some(row.line),
            column: self.columns.get(col).map(|i| i + 1),
            field: Some(col.to_owned()),
            message: message.into(),
        }
    }
}

type Parsed = (Vec<String>, Vec<Row>);

fn read_csv<R: std::io::Read>(
    mut rdr: csv::Reader<R>,
    file: &str,
    errs: &mut Vec<SiteError>,
) -> Option<Parsed> {
    let header = match rdr.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(e) => {
            errs.push(SiteError {
                file: file.to_owned(),
                line: Some(1),
                column: None,
                field: None,
                message: format!("bad header: {e}"),
            });
            return None;
        }
    };
    let mut rows = Vec::new();
    for rec in rdr.records() {
        match rec {
            Ok(r) => {
                if r.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                rows.push(Row {
                    line: r.position().map_or(0, |p| p.line() as usize),
                    cells: r.iter().map(str::to_owned).collect(),
                })
            }
            Err(e) => errs.push(SiteError {
                file: file.to_owned(),
                line: e.position().map(|p| p.line() as usize),
                column: None,
                field: None,
                message: format!("unreadable row: {e}"),
            }),
        }
    }
    Some((header, rows))
}

fn read_xlsx<RS: std::io::Read + std::io::Seek>(
    wb: Result<calamine::Xlsx<RS>, String>,
) -> Result<Option<Parsed>, String> {
    let mut wb = wb?;
    let range = wb
        .worksheet_range_at(0)
        .ok_or_else(|| "workbook has no sheet".to_owned())?
        .map_err(|e| format!("cannot read the first sheet: {e}"))?;
    let (first_row, _) = range.start().unwrap_or((0, 0));
    let mut it = range.rows();
    let header: Vec<String> = it
        .next()
        .ok_or_else(|| "the first sheet is empty".to_owned())?
        .iter()
        .map(cell_text)
        .collect();
    let mut rows = Vec::new();
    for (i, r) in it.enumerate() {
        let cells: Vec<String> = r.iter().map(cell_text).collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push(Row {
            // +1 for 1-based, +1 for the header row.
            line: first_row as usize + i + 2,
            cells,
        });
    }
    Ok(Some((header, rows)))
}

/// Excel stores numbers as floats and dates as serials: turn them back into
/// the text a CSV would have.
fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        Data::Float(f) => f.to_string(),
        Data::Int(i) => i.to_string(),
        Data::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
        Data::DateTime(dt) => dt
            .as_datetime()
            .map(|d| d.date().format("%Y-%m-%d").to_string())
            .unwrap_or_else(|| dt.to_string()),
        Data::DateTimeIso(s) => s.get(..10).unwrap_or(s).to_owned(),
        Data::DurationIso(s) => s.clone(),
        Data::Error(e) => format!("#ERROR {e:?}"),
    }
}
