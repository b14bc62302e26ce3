//! `anju export --out DIR [--db URL] [--estate CODE]`: the stored ledger as
//! the XLSX workbooks a housing office edits (ledger, credentials, watch
//! list). A site file pointing at them imports back unchanged.

use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for ledger.xlsx, credentials.xlsx and watchlist.xlsx.
    #[arg(long)]
    out: PathBuf,
    /// Database URL (default: the embedded SQLite file under the data dir).
    #[arg(long)]
    db: Option<String>,
    /// Only this estate's households and their credentials.
    #[arg(long)]
    estate: Option<String>,
}

pub async fn run(cfg: &Config, a: Args) -> anyhow::Result<ExitCode> {
    let url = cfg.db_url(a.db.as_deref());
    let store = anju_store::Store::connect(&url)
        .await
        .with_context(|| format!("cannot open the store {}", anju_store::redact_url(&url)))?;
    let mut reg = store.load_registry().await?;
    if let Some(e) = &a.estate {
        if !reg.estates.iter().any(|x| x.code.as_str() == e) {
            eprintln!("anju: no estate {e:?} in the store");
            return Ok(ExitCode::from(2));
        }
        reg.persons.retain(|p| p.unit.estate.as_str() == e);
        let kept: std::collections::HashSet<String> =
            reg.persons.iter().map(|p| p.id.0.clone()).collect();
        reg.credentials.retain(|c| kept.contains(c.person.as_str()));
        reg.units.retain(|u| u.key.estate.as_str() == e);
    }
    let files = anju_site::export::export_xlsx(&reg, &a.out).map_err(anyhow::Error::msg)?;
    let out = serde_json::json!({
        "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "persons": reg.persons.len(),
        "credentials": reg.credentials.len(),
        "watchlist": reg.watchlist.len(),
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}
