//! QR key files: the public keys a site's `[qr]` table names
//! (`public_key_files`, relative to the site file) and the issuing side's
//! private key file (mode 0600, never overwritten). The pass format and
//! its checks stay pure in `anju_rules::qr`; this module is their file I/O.

use anju_rules::qr::{self, PassChecker, QrConfig, QrError, SigningKey, VerifyingKey};
use std::path::{Path, PathBuf};

/// Why a key file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Key(#[from] QrError),
}

fn read(path: &Path) -> Result<String, KeyFileError> {
    std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The public keys in a file (see [`qr::parse_public_keys`]).
///
/// # Errors
/// An unreadable file, a malformed key, no key at all.
pub fn read_public_keys(path: &Path) -> Result<Vec<VerifyingKey>, KeyFileError> {
    let text = read(path)?;
    Ok(qr::parse_public_keys(&text, &path.display().to_string())?)
}

/// The checker of a `[qr]` table: its inline keys, the keys of its key
/// files (relative paths taken from `base`, the site file's directory) and
/// its revocations.
///
/// # Errors
/// A malformed key, an unreadable key file.
pub fn pass_checker(cfg: &QrConfig, base: Option<&Path>) -> Result<PassChecker, KeyFileError> {
    let mut file_keys = Vec::new();
    for f in &cfg.public_key_files {
        let path = match base {
            Some(b) if f.is_relative() => b.join(f),
            _ => f.clone(),
        };
        file_keys.extend(read_public_keys(&path)?);
    }
    Ok(PassChecker::from_config(cfg, &file_keys)?)
}

/// Writes a new private key file with mode 0600; never overwrites.
///
/// # Errors
/// The file exists or cannot be written.
pub fn write_signing_key(path: &Path, key: &SigningKey) -> Result<(), KeyFileError> {
    use std::io::Write as _;
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(io)?;
    f.write_all(qr::signing_key_text(key).as_bytes())
        .map_err(io)?;
    f.sync_all().map_err(io)
}

/// Reads a private key file (see [`qr::parse_signing_key`]).
///
/// # Errors
/// An unreadable or malformed file.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyFileError> {
    let text = read(path)?;
    qr::parse_signing_key(&text)
        .map_err(|e| KeyFileError::Key(QrError::BadKey(format!("{}: {e}", path.display()))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use anju_rules::qr::{issue, PassKind, PassPayload, QrInvalidReason, QrVerdict, QrVerifier};

    #[test]
    fn key_files_round_trip_and_configure_a_checker() {
        let dir = tempfile::tempdir().unwrap();
        let k = qr::generate_signing_key().unwrap();
        let path = dir.path().join("qr.key");
        write_signing_key(&path, &k).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(write_signing_key(&path, &k).is_err(), "never overwrites");
        assert_eq!(read_signing_key(&path).unwrap().to_bytes(), k.to_bytes());
        assert!(read_signing_key(&dir.path().join("none")).is_err());
        let pubhex = qr::public_key_hex(&k.verifying_key());
        std::fs::write(dir.path().join("qr.pub"), format!("# test\n{pubhex}\n")).unwrap();
        let cfg: QrConfig = serde_json::from_value(serde_json::json!({
            "public_key_files": ["qr.pub"],
            "revoked": ["P1"],
        }))
        .unwrap();
        let mut c = pass_checker(&cfg, Some(dir.path())).unwrap();
        assert!(c.checks_signatures());
        let t0 = chrono::Utc::now();
        let p = PassPayload {
            id: "P1".into(),
            unit: "FCY/1/101".into(),
            kind: PassKind::Resident,
            nbf: t0,
            exp: t0 + chrono::Duration::hours(2),
            single_use: false,
        };
        assert_eq!(
            c.verify(&issue(&p, &k).unwrap(), t0 + chrono::Duration::minutes(1)),
            QrVerdict::Invalid(QrInvalidReason::Revoked)
        );
        let missing: QrConfig = serde_json::from_value(serde_json::json!({
            "public_key_files": ["none.pub"],
        }))
        .unwrap();
        assert!(matches!(
            pass_checker(&missing, Some(dir.path())),
            Err(KeyFileError::Io { .. })
        ));
    }
}
