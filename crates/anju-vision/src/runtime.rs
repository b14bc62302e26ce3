//! Finding and loading ONNX Runtime (`ort` with `load-dynamic`).
//!
//! Search order for `libonnxruntime.so`:
//! 1. `ORT_DYLIB_PATH`, if set (a file; it must exist);
//! 2. `<dir>/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so*` for every
//!    ancestor `<dir>` of the current directory and of the running executable, and of this crate's
//!    source directory at build time (so `cargo test`/examples work from anywhere in the repo).
//!
//! If nothing is found the error says exactly what to run: `bash models/setup-ort.sh`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;

use crate::error::{Result, VisionError};

/// The command that installs the runtime into the project-local venv.
pub const SETUP_HINT: &str = "run `bash models/setup-ort.sh` in the anju repository (installs the PyPI onnxruntime wheel into .venv/), or set ORT_DYLIB_PATH to a libonnxruntime.so";

static ENV: OnceLock<std::result::Result<(PathBuf, Environment), String>> = OnceLock::new();

fn venv_candidates(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let lib = dir.join(".venv").join("lib");
    let Ok(entries) = std::fs::read_dir(&lib) else {
        return out;
    };
    let mut pys: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("python3"))
        })
        .collect();
    pys.sort();
    for py in pys {
        let capi = py.join("site-packages").join("onnxruntime").join("capi");
        let Ok(files) = std::fs::read_dir(&capi) else {
            continue;
        };
        let mut libs: Vec<PathBuf> = files
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.starts_with("libonnxruntime.so")
                        || n == "libonnxruntime.dylib"
                        || n == "onnxruntime.dll"
                })
            })
            .collect();
        // Prefer the fully versioned name (the real file) over symlinks.
        libs.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
        out.extend(libs);
    }
    out
}

/// Locates `libonnxruntime` without loading it (see the module docs for the order).
pub fn find_ort_dylib() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        return Err(VisionError::RuntimeMissing(format!(
            "ORT_DYLIB_PATH={} is not a file; {SETUP_HINT}",
            p.display()
        )));
    }
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        if let Some(dir) = exe.parent() {
            roots.push(dir.to_path_buf());
        }
    }
    roots.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    let mut searched = Vec::new();
    for root in roots {
        for dir in root.ancestors() {
            if let Some(found) = venv_candidates(dir).into_iter().next() {
                return Ok(found);
            }
            searched.push(dir.join(".venv").display().to_string());
        }
    }
    searched.dedup();
    Err(VisionError::RuntimeMissing(format!(
        "libonnxruntime not found (looked in .venv/lib/python3*/site-packages/onnxruntime/capi/ under: {}); {SETUP_HINT}",
        searched.join(", ")
    )))
}

/// Loads ONNX Runtime once per process and returns the shared environment.
pub fn environment() -> Result<&'static Environment> {
    let r = ENV.get_or_init(|| {
        let path = find_ort_dylib().map_err(|e| e.to_string())?;
        let env = ort::init_from(&path)
            .map_err(|e| format!("loading {}: {e}; {SETUP_HINT}", path.display()))?
            .with_name("anju-vision")
            .build()
            .map_err(|e| {
                format!(
                    "creating ONNX Runtime environment from {}: {e}",
                    path.display()
                )
            })?;
        Ok((path, env))
    });
    match r {
        Ok((_, env)) => Ok(env),
        Err(e) => Err(VisionError::RuntimeMissing(e.clone())),
    }
}

/// Path of the loaded runtime library, once [`environment`] succeeded.
pub fn loaded_dylib() -> Option<&'static Path> {
    ENV.get()
        .and_then(|r| r.as_ref().ok())
        .map(|(p, _)| p.as_path())
}

/// Creates a session with one intra-op and one inter-op thread and thread spinning disabled
/// (spinning burns idle cores on small edge machines).
pub fn session(model: &Path, intra_threads: usize) -> Result<Session> {
    let env = environment()?;
    let builder = Session::builder(env).map_err(VisionError::ort)?;
    let builder = builder
        .with_optimization_level(GraphOptimizationLevel::All)
        .map_err(VisionError::ort)?;
    let builder = builder
        .with_intra_threads(intra_threads.max(1))
        .map_err(VisionError::ort)?;
    let builder = builder.with_inter_threads(1).map_err(VisionError::ort)?;
    let builder = builder
        .with_intra_op_spinning(false)
        .map_err(VisionError::ort)?;
    let mut builder = builder
        .with_inter_op_spinning(false)
        .map_err(VisionError::ort)?;
    builder
        .commit_from_file(model)
        .map_err(|e| VisionError::Model(format!("loading {}: {e}", model.display())))
}
