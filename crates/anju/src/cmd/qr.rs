//! `anju qr keygen --out FILE` and `anju qr issue --key FILE --unit U
//! --kind resident|visitor --valid-to T [--valid-from T] [--single-use]
//! [--id ID] [--png FILE]`: Ed25519 signing keys and signed QR passes
//! (format in `anju_rules::qr`). The site's `[qr]` table lists the public
//! keys that `anju edge` and `anju replay` trust.

use crate::config::Config;
use anju_rules::qr::{self, PassKind, PassPayload};
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug)]
pub enum QrCmd {
    /// Create a signing key (written with mode 0600, never overwritten) and
    /// FILE.pub; prints the public key for the site's `[qr] public_keys`.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    /// Issue a signed pass; prints the code (and writes a QR image with
    /// --png).
    Issue {
        /// The signing key file (from `anju qr keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The unit, e.g. FCY/1/101.
        #[arg(long)]
        unit: String,
        /// resident or visitor.
        #[arg(long, value_parser = ["resident", "visitor"])]
        kind: String,
        /// Start of validity, RFC 3339 (default: now).
        #[arg(long)]
        valid_from: Option<String>,
        /// End of validity (exclusive), RFC 3339.
        #[arg(long)]
        valid_to: String,
        /// Refuse the pass after its first use.
        #[arg(long)]
        single_use: bool,
        /// Pass id (for revocation); default random.
        #[arg(long)]
        id: Option<String>,
        /// Also write the code as a QR image (PNG).
        #[arg(long)]
        png: Option<PathBuf>,
    },
}

pub async fn run(_cfg: &Config, c: QrCmd) -> anyhow::Result<ExitCode> {
    match c {
        QrCmd::Keygen { out } => keygen(&out),
        QrCmd::Issue {
            key,
            unit,
            kind,
            valid_from,
            valid_to,
            single_use,
            id,
            png,
        } => {
            let kind = match kind.as_str() {
                "resident" => PassKind::Resident,
                "visitor" => PassKind::Visitor,
                other => bail!("--kind must be resident or visitor, not {other:?}"),
            };
            let unit = unit.trim().to_owned();
            if unit.is_empty() || unit.split('/').any(str::is_empty) {
                bail!("--unit must look like ESTATE/BUILDING/UNIT, not {unit:?}");
            }
            let nbf = match valid_from {
                Some(t) => parse_ts(&t, "--valid-from")?,
                None => chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0),
            };
            let exp = parse_ts(&valid_to, "--valid-to")?;
            if exp <= nbf {
                bail!("--valid-to must be after --valid-from");
            }
            let id = match id {
                Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
                Some(_) => bail!("--id must not be empty"),
                None => qr::random_pass_id()?,
            };
            let sk = anju_edge::qr_keys::read_signing_key(&key)?;
            warn_if_open(&key);
            let pass = PassPayload {
                id,
                unit,
                kind,
                nbf,
                exp,
                single_use,
            };
            let code = qr::issue(&pass, &sk)?;
            if let Some(png) = png {
                write_png(&code, &png)?;
                eprintln!("QR image written to {}", png.display());
            }
            println!("{code}");
            eprintln!(
                "pass {} for {} ({}), valid {} to {}{}",
                pass.id,
                pass.unit,
                match pass.kind {
                    PassKind::Resident => "resident",
                    PassKind::Visitor => "visitor",
                },
                pass.nbf.to_rfc3339(),
                pass.exp.to_rfc3339(),
                if pass.single_use { ", single use" } else { "" }
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn keygen(out: &Path) -> anyhow::Result<ExitCode> {
    let sk = qr::generate_signing_key()?;
    anju_edge::qr_keys::write_signing_key(out, &sk)?;
    let public = qr::public_key_hex(&sk.verifying_key());
    let mut pub_path = out.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    std::fs::write(&pub_path, format!("{public}\n"))
        .with_context(|| format!("writing {}", pub_path.display()))?;
    println!("{public}");
    eprintln!(
        "signing key written to {} (mode 0600; keep it secret), public key to {}.\n\
         Trust it in the site file:\n\n[qr]\npublic_keys = [\"{public}\"]",
        out.display(),
        pub_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn parse_ts(s: &str, what: &str) -> anyhow::Result<anju_core::Timestamp> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&chrono::Utc))
        .with_context(|| {
            format!("{what}: expected RFC 3339 (2026-03-01T08:00:00+08:00), got {s:?}")
        })
}

#[cfg(unix)]
fn warn_if_open(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: {} is readable by others; chmod 600 it",
                path.display()
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_open(_path: &Path) {}

/// The code as a QR image (PNG), as the API serves it.
fn write_png(code: &str, path: &Path) -> anyhow::Result<()> {
    let png = anju_api::qr_png(code).map_err(|e| anyhow::anyhow!(e))?;
    std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
}
