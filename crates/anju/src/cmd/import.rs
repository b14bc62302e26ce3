//! `anju import --site FILE [--db URL] [--dry-run]`.

use crate::config::Config;
use anyhow::Context;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Site file (TOML).
    #[arg(long)]
    site: PathBuf,
    /// Database URL (default: the embedded SQLite file under the data dir).
    #[arg(long)]
    db: Option<String>,
    /// Validate the site and show, as JSON, what importing it would change
    /// in the store (added, changed with before → after, moved out, removed,
    /// kept); write nothing and enrol no photo.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(cfg: &Config, a: Args) -> anyhow::Result<ExitCode> {
    // Validate everything before writing anything.
    let site = match super::load_site(&a.site) {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let url = cfg.db_url(a.db.as_deref());
    let store = anju_store::Store::connect(&url)
        .await
        .with_context(|| format!("cannot open the store {}", anju_store::redact_url(&url)))?;
    if a.dry_run {
        let stored = store.load_registry().await?;
        let diff = anju_site::diff::RegistryDiff::between(&stored, &site.registry);
        let out = serde_json::json!({
            "dry_run": true,
            "would_change": !diff.is_empty(),
            "changes": diff,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut summary = store
        .import_registry(&site.registry)
        .await
        .context("import failed; nothing was written")?;
    tracing::info!(db = %anju_store::redact_url(&url), "Registry imported.");
    let mut skipped = Vec::new();
    if let Some(photos) = &site.photos {
        let known: std::collections::HashSet<String> = site
            .registry
            .persons
            .iter()
            .map(|p| p.id.0.clone())
            .chain(site.registry.watchlist.iter().map(|w| w.person.0.clone()))
            .collect();
        let enrolled = enrol_photos(photos, &known).await?;
        for (person, source, template) in &enrolled.templates {
            store
                .add_face_template(person, &enrolled.key, template, source)
                .await
                .context("storing a face template")?;
            // The photo itself, for operators to put beside a snapshot
            // (the last usable one of the person).
            let bytes = std::fs::read(source).with_context(|| format!("reading {source}"))?;
            store
                .put_person_photo(
                    person,
                    anju_store::photo_content_type(&bytes),
                    &bytes,
                    chrono::Utc::now(),
                )
                .await
                .context("storing an enrolled photo")?;
        }
        skipped = enrolled.skipped;
        summary = store.registry_summary().await?;
    }
    let mut out = serde_json::to_value(&summary)?;
    if let Some(o) = out.as_object_mut() {
        o.insert("photos_skipped".into(), serde_json::to_value(&skipped)?);
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(ExitCode::SUCCESS)
}

#[derive(Default)]
struct Enrolled {
    /// Templates are tagged with the engine's template key (embedder and
    /// landmarks); a gallery only compares templates of one key.
    key: String,
    templates: Vec<(String, String, Vec<f32>)>,
    skipped: Vec<serde_json::Value>,
}

/// Enrols `photos/<person_id>/*.{jpg,jpeg,png}`. A photo without exactly one
/// usable face is reported with its path and skipped, not fatal.
async fn enrol_photos(
    dir: &std::path::Path,
    known: &std::collections::HashSet<String>,
) -> anyhow::Result<Enrolled> {
    let mut jobs = Vec::new();
    let mut out = Enrolled::default();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let person = entry.file_name().to_string_lossy().into_owned();
        let mut files: Vec<PathBuf> = std::fs::read_dir(entry.path())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    matches!(e.to_ascii_lowercase().as_str(), "jpg" | "jpeg" | "png")
                })
            })
            .collect();
        files.sort();
        if !known.contains(&person) {
            for f in files {
                out.skipped.push(serde_json::json!({
                    "path": f.display().to_string(),
                    "reason": format!("unknown person {person:?}"),
                }));
            }
            continue;
        }
        jobs.extend(files.into_iter().map(|f| (person.clone(), f)));
    }
    if jobs.is_empty() {
        return Ok(out);
    }
    let total = jobs.len();
    let results = tokio::task::spawn_blocking(move || -> anyhow::Result<(String, Vec<_>)> {
        let mut engine = anju_vision::FaceEngine::new(anju_vision::EngineConfig::default())
            .context("face engine (run `bash models/setup-ort.sh` once to install ONNX Runtime)")?;
        let mut res = Vec::with_capacity(jobs.len());
        let key = engine.template_key();
        for (i, (person, path)) in jobs.into_iter().enumerate() {
            eprint!("\renrolling photos {}/{total}", i + 1);
            let r = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| engine.enrol_photo(&b).map_err(|e| e.to_string()));
            res.push((person, path, r));
        }
        eprintln!();
        Ok((key, res))
    })
    .await??;
    let (key, results) = results;
    out.key = key;
    for (person, path, r) in results {
        match r {
            Ok(t) => out
                .templates
                .push((person, path.display().to_string(), t.0)),
            Err(reason) => {
                tracing::warn!(path = %path.display(), %reason, "Photo skipped.");
                out.skipped.push(serde_json::json!({
                    "path": path.display().to_string(),
                    "reason": reason,
                }));
            }
        }
    }
    Ok(out)
}
