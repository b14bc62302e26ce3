//! The ledger out of a registry, as the XLSX workbooks a housing office edits (issue 15): the
//! ledger, the credentials and the watch list, each one sheet with the importer's columns, every
//! cell text (so that ID numbers, phone numbers and codes keep their leading zeros and digits,
//! and Excel shows exactly what the importer reads back). A site file pointing at them imports
//! back unchanged (`anju import --dry-run` reports nothing).

use crate::ledger::{CREDENTIAL_COLUMNS, LEDGER_COLUMNS, WATCHLIST_COLUMNS};
use anju_core::Registry;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// One sheet: its file name, header and rows of text.
pub struct Sheet {
    pub file: &'static str,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

fn date(d: Option<chrono::NaiveDate>) -> String {
    d.map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// The three sheets of `reg`, rows in a stable order (by unit and person, by credential, by
/// person).
pub fn sheets(reg: &Registry) -> [Sheet; 3] {
    let area: HashMap<String, Option<f64>> = reg
        .units
        .iter()
        .map(|u| (u.key.to_string(), u.area_m2))
        .collect();
    let mut persons: Vec<&anju_core::Person> = reg.persons.iter().collect();
    persons.sort_by(|a, b| {
        (a.unit.to_string(), a.id.as_str(), a.lease_start).cmp(&(
            b.unit.to_string(),
            b.id.as_str(),
            b.lease_start,
        ))
    });
    let ledger = persons
        .iter()
        .map(|p| {
            vec![
                p.unit.estate.to_string(),
                p.unit.building.to_string(),
                p.unit.unit.to_string(),
                area.get(&p.unit.to_string())
                    .copied()
                    .flatten()
                    .map(|a| a.to_string())
                    .unwrap_or_default(),
                p.household.to_string(),
                p.id.to_string(),
                p.name.clone(),
                p.role.as_str().to_owned(),
                p.id_number.clone(),
                p.phone.clone(),
                p.birth_year.map(|y| y.to_string()).unwrap_or_default(),
                if p.lives_alone { "1" } else { "0" }.to_owned(),
                date(Some(p.lease_start)),
                date(p.lease_end),
            ]
        })
        .collect();
    let mut creds: Vec<&anju_core::Credential> = reg.credentials.iter().collect();
    creds.sort_by(|a, b| (a.kind.as_str(), a.id.as_str()).cmp(&(b.kind.as_str(), b.id.as_str())));
    let credentials = creds
        .iter()
        .map(|c| {
            vec![
                c.kind.as_str().to_owned(),
                c.id.to_string(),
                c.person.to_string(),
                date(c.valid_from),
                date(c.valid_to),
            ]
        })
        .collect();
    let mut watch: Vec<&anju_core::WatchEntry> = reg.watchlist.iter().collect();
    watch.sort_by(|a, b| a.person.as_str().cmp(b.person.as_str()));
    let watchlist = watch
        .iter()
        .map(|w| vec![w.person.to_string(), w.name.clone(), w.reason.clone()])
        .collect();
    [
        Sheet {
            file: "ledger.xlsx",
            header: LEDGER_COLUMNS.to_vec(),
            rows: ledger,
        },
        Sheet {
            file: "credentials.xlsx",
            header: CREDENTIAL_COLUMNS.to_vec(),
            rows: credentials,
        },
        Sheet {
            file: "watchlist.xlsx",
            header: WATCHLIST_COLUMNS.to_vec(),
            rows: watchlist,
        },
    ]
}

/// Writes the three workbooks into `dir`; returns their paths.
///
/// # Errors
/// File system errors, with the file.
pub fn export_xlsx(reg: &Registry, dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for s in sheets(reg) {
        let path = dir.join(s.file);
        write_xlsx(&path, &s.header, &s.rows).map_err(|e| format!("{}: {e}", path.display()))?;
        out.push(path);
    }
    Ok(out)
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

/// A column's letters (0 → A, 25 → Z, 26 → AA).
fn column(mut i: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (i % 26) as u8);
        if i < 26 {
            break;
        }
        i = i / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).unwrap_or_default()
}

/// A minimal XLSX workbook (Office Open XML): one sheet named `Sheet1`, the header in bold-less
/// row 1, every cell an inline string.
///
/// # Errors
/// I/O errors.
pub fn write_xlsx(path: &Path, header: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let f = std::fs::File::create(path)?;
    let mut z = zip::ZipWriter::new(f);
    let opt = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let io = |e: zip::result::ZipError| std::io::Error::other(e.to_string());
    let mut put = |name: &str, body: &str| -> std::io::Result<()> {
        z.start_file(name, opt).map_err(io)?;
        z.write_all(body.as_bytes())
    };
    put(
        "[Content_Types].xml",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>"#,
    )?;
    put(
        "_rels/.rels",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    )?;
    put(
        "xl/workbook.xml",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>"#,
    )?;
    put(
        "xl/_rels/workbook.xml.rels",
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>"#,
    )?;
    let mut sheet = String::from(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    for (r, cells) in std::iter::once(&header).chain(rows).enumerate() {
        sheet.push_str(&format!("<row r=\"{}\">", r + 1));
        for (c, v) in cells.iter().enumerate() {
            if v.is_empty() {
                continue;
            }
            sheet.push_str(&format!(
                "<c r=\"{}{}\" t=\"inlineStr\"><is><t xml:space=\"preserve\">{}</t></is></c>",
                column(c),
                r + 1,
                xml_escape(v)
            ));
        }
        sheet.push_str("</row>");
    }
    sheet.push_str("</sheetData></worksheet>");
    put("xl/worksheets/sheet1.xml", &sheet)?;
    z.finish().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_lettered_like_excel() {
        assert_eq!(column(0), "A");
        assert_eq!(column(13), "N");
        assert_eq!(column(25), "Z");
        assert_eq!(column(26), "AA");
        assert_eq!(column(27), "AB");
        assert_eq!(column(701), "ZZ");
        assert_eq!(column(702), "AAA");
    }

    /// The example site, exported and read back through the importer, is the same registry.
    #[test]
    fn the_example_ledger_round_trips() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let Ok(site) = crate::load(&root.join("config/example/site.toml")) else {
            unreachable!("the example site loads")
        };
        let dir = tempfile::tempdir().unwrap_or_else(|_| unreachable!());
        export_xlsx(&site.registry, dir.path()).unwrap_or_else(|e| unreachable!("{e}"));
        let text = std::fs::read_to_string(root.join("config/example/site.toml"))
            .unwrap_or_default()
            .replace("ledger.csv", "ledger.xlsx")
            .replace("credentials.csv", "credentials.xlsx")
            .replace("watchlist.csv", "watchlist.xlsx");
        let toml = dir.path().join("site.toml");
        std::fs::write(&toml, text).unwrap_or_else(|_| unreachable!());
        let back = match crate::load(&toml) {
            Ok(s) => s.registry,
            Err(e) => unreachable!("{e:?}"),
        };
        let d = crate::diff::RegistryDiff::between(&site.registry, &back);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(back.persons.len(), site.registry.persons.len());
    }
}
