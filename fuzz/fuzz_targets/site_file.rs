//! Site loading (`anju_site::load`): the TOML site file and the tables it
//! names (ledger, credentials, watch list; CSV, or XLSX by extension).
//!
//! Input: up to four parts separated by NUL bytes: site.toml, then the
//! ledger, credentials and watch-list files, each written under the name the
//! site file gives it (when that is a plain file name) in a scratch
//! directory of this process.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

fn scratch() -> &'static Path {
    static D: OnceLock<PathBuf> = OnceLock::new();
    D.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("anju-fuzz-site-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("scratch directory");
        d
    })
}

/// A name the loader resolves inside the scratch directory (so that no
/// input makes it read `/dev/zero` or anything else outside it).
fn plain(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name != "site.toml"
        && !name.contains(['/', '\\', '\0'])
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let mut parts = data.splitn(4, |&b| b == 0);
    let site = parts.next().unwrap_or_default();
    let tables: Vec<&[u8]> = parts.collect();
    let text = String::from_utf8_lossy(site);
    if let Ok(file) = toml::from_str::<anju_site::SiteFile>(&text) {
        let names = [
            Some(&file.ledger),
            Some(&file.credentials),
            file.watchlist.as_ref(),
        ];
        // Paths with a separator could point anywhere: not this harness's
        // business (the loader reads what the operator's file names).
        if names.iter().flatten().any(|n| !plain(n)) {
            return;
        }
        for (name, body) in names.iter().zip(&tables) {
            if let Some(name) = name {
                let _ = std::fs::write(dir.join(name), body);
            }
        }
    }
    let path = dir.join("site.toml");
    if std::fs::write(&path, site).is_ok() {
        let _ = anju_site::load(&path);
    }
});
