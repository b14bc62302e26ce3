//! QR passes: `AJ1.<base64url(json payload)>.<base64url(signature)>`.
//!
//! The payload is `{"id", "unit", "kind": "resident"|"visitor", "nbf", "exp",
//! "single_use"?, "kid"?}` (`nbf`/`exp` RFC 3339). The signature is Ed25519
//! over the exact payload bytes (the decoded middle part); `kid` names the
//! signing key (see [`key_id`]) so that a site can trust several keys while
//! it rotates them. The engine asks a [`QrVerifier`] about every `qr_scan`;
//! an invalid verdict raises `qr_invalid`.
//!
//! The default verifier, [`PassChecker`], checks the format, the signature
//! against the configured public keys, the validity window, a revocation
//! list and single-use replays, and — scoped with
//! [`PassChecker::for_estate`], as every edge does — that the pass is for a
//! unit of the scanner's estate (`wrong_estate` otherwise). A checker
//! **without keys** cannot check signatures and fails closed: every pass is
//! `unverifiable`, unless unsigned passes are explicitly allowed
//! (`[qr] allow_unsigned = true`, [`PassChecker::unsigned_allowed`]; the
//! pure engine's default for replays and simulations), in which case it
//! only requires a non-empty signature part. Anything not in the `AJ1`
//! shape is `forged`.
//!
//! Keys: [`generate_signing_key`], [`signing_key_text`] /
//! [`parse_signing_key`] and [`issue`] on the issuing side; [`QrConfig`] (the
//! site file's `[qr]` table), [`parse_public_keys`] and
//! [`PassChecker::from_config`] on the verifying side. This module does no
//! I/O: key files are read and written by `anju_edge::qr_keys`.

use anju_core::Timestamp;
use ed25519_dalek::{Signature, Signer as _};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

/// Why a QR pass was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QrInvalidReason {
    Forged,
    Expired,
    NotYetValid,
    Revoked,
    Replayed,
    /// No trusted key to check the signature with, and the site does not
    /// allow unsigned passes: a scanner without keys fails closed.
    Unverifiable,
    /// A pass for a unit of another estate than the scanner's.
    WrongEstate,
}

impl QrInvalidReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forged => "forged",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::Replayed => "replayed",
            Self::Unverifiable => "unverifiable",
            Self::WrongEstate => "wrong_estate",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PassKind {
    Resident,
    Visitor,
}

/// The signed content of a pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PassPayload {
    pub id: String,
    pub unit: String,
    pub kind: PassKind,
    pub nbf: Timestamp,
    pub exp: Timestamp,
    #[serde(default)]
    pub single_use: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum QrVerdict {
    Valid(PassPayload),
    Invalid(QrInvalidReason),
}

/// Decides whether a scanned code is a valid pass. May keep state (used
/// single-use passes).
pub trait QrVerifier: Send {
    fn verify(&mut self, code: &str, at: Timestamp) -> QrVerdict;

    /// Pass ids revoked since the verifier was built (a registry reload);
    /// refused from now on.
    fn revoke(&mut self, _ids: &std::collections::BTreeSet<String>) {}
}

/// Format, signature, validity window, revocation and replay checks; see
/// the module docs.
#[derive(Clone, Debug, Default)]
pub struct PassChecker {
    pub revoked: HashSet<String>,
    /// Trusted public keys by key id; empty: signatures are not checked.
    keys: Vec<(String, VerifyingKey)>,
    /// Used single-use passes: id → expiry. Entries are dropped once the
    /// pass has expired (it is refused as `expired` from then on), so the
    /// memory is bounded by the passes still valid.
    used: HashMap<String, Timestamp>,
    /// Size of `used` after the last pruning (amortises pruning).
    pruned_len: usize,
    /// Without keys, accept passes unsigned (`[qr] allow_unsigned = true`);
    /// otherwise a checker without keys refuses every pass as
    /// `unverifiable` (fails closed).
    allow_unsigned: bool,
    /// Passes are valid only for units of this estate (`ESTATE/…`).
    estate: Option<String>,
}

impl PassChecker {
    /// A checker without keys: it fails closed, refusing every pass as
    /// `unverifiable`, until a key is added.
    pub fn new() -> Self {
        Self::default()
    }

    /// A checker that, without keys, accepts passes without checking their
    /// signature (`[qr] allow_unsigned = true`; simulations and replays of
    /// recorded streams).
    pub fn unsigned_allowed() -> Self {
        Self {
            allow_unsigned: true,
            ..Self::default()
        }
    }

    /// Passes are valid only for units of `estate` (the scanner's).
    #[must_use]
    pub fn for_estate(mut self, estate: &str) -> Self {
        self.estate = Some(estate.to_owned());
        self
    }

    /// Whether a pass without a checkable signature is accepted (no keys
    /// and `allow_unsigned`).
    pub fn accepts_unsigned(&self) -> bool {
        self.keys.is_empty() && self.allow_unsigned
    }

    /// A checker that requires a valid signature by one of `keys`.
    pub fn with_keys(keys: impl IntoIterator<Item = VerifyingKey>) -> Self {
        let mut c = Self::new();
        for k in keys {
            c.add_key(k);
        }
        c
    }

    /// Trusts one more public key.
    pub fn add_key(&mut self, key: VerifyingKey) {
        let kid = key_id(&key);
        if !self.keys.iter().any(|(_, k)| *k == key) {
            self.keys.push((kid, key));
        }
    }

    /// Whether signatures are checked (at least one key is configured).
    pub fn checks_signatures(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Builds a checker from the `[qr]` table's inline keys and
    /// revocations plus `file_keys`, the keys of its `public_key_files`
    /// (read by the caller: `anju_edge::qr_keys::pass_checker`).
    ///
    /// # Errors
    /// A malformed inline public key.
    pub fn from_config(cfg: &QrConfig, file_keys: &[VerifyingKey]) -> Result<Self, QrError> {
        let mut c = Self::new();
        c.allow_unsigned = cfg.allow_unsigned;
        for (i, hex) in cfg.public_keys.iter().enumerate() {
            let k = parse_public_key(hex).map_err(|e| match e {
                QrError::BadKey(why) => QrError::BadKey(format!("public_keys[{i}]: {why}")),
                other => other,
            })?;
            c.add_key(k);
        }
        for k in file_keys {
            c.add_key(*k);
        }
        c.revoked.extend(cfg.revoked.iter().cloned());
        Ok(c)
    }

    /// Single-use passes currently remembered.
    pub fn remembered(&self) -> usize {
        self.used.len()
    }

    fn signature_ok(&self, payload: &[u8], kid: Option<&str>, sig: &[u8]) -> bool {
        let Ok(sig) = Signature::from_slice(sig) else {
            return false;
        };
        self.keys
            .iter()
            .filter(|(id, _)| kid.is_none_or(|kid| kid == id))
            .any(|(_, k)| k.verify_strict(payload, &sig).is_ok())
    }

    fn prune(&mut self, at: Timestamp) {
        if self.used.len() >= 1024 && self.used.len() >= 2 * self.pruned_len {
            self.used.retain(|_, exp| *exp > at);
            self.pruned_len = self.used.len();
        }
    }
}

/// Splits and decodes `AJ1.<payload>.<sig>`; `None` when not in that shape.
pub fn parse_code(code: &str) -> Option<(PassPayload, Vec<u8>)> {
    parse_code_raw(code).map(|r| (r.payload, r.signature))
}

/// A code split into its parts, with the exact signed bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct RawCode {
    pub payload: PassPayload,
    /// The key id named in the payload, if any.
    pub kid: Option<String>,
    /// The decoded payload part: the bytes the signature covers.
    pub signed: Vec<u8>,
    pub signature: Vec<u8>,
}

/// As [`parse_code`], keeping the signed bytes and the key id.
pub fn parse_code_raw(code: &str) -> Option<RawCode> {
    #[derive(Deserialize)]
    struct Kid {
        #[serde(default)]
        kid: Option<String>,
    }
    let mut parts = code.trim().split('.');
    if parts.next()? != "AJ1" {
        return None;
    }
    let signed = b64url_decode(parts.next()?)?;
    let signature = b64url_decode(parts.next()?)?;
    if parts.next().is_some() || signature.is_empty() {
        return None;
    }
    let payload: PassPayload = serde_json::from_slice(&signed).ok()?;
    let kid = serde_json::from_slice::<Kid>(&signed).ok()?.kid;
    Some(RawCode {
        payload,
        kid,
        signed,
        signature,
    })
}

impl QrVerifier for PassChecker {
    fn revoke(&mut self, ids: &std::collections::BTreeSet<String>) {
        self.revoked.extend(ids.iter().cloned());
    }

    fn verify(&mut self, code: &str, at: Timestamp) -> QrVerdict {
        let Some(raw) = parse_code_raw(code) else {
            return QrVerdict::Invalid(QrInvalidReason::Forged);
        };
        if !self.checks_signatures() && !self.allow_unsigned {
            return QrVerdict::Invalid(QrInvalidReason::Unverifiable);
        }
        if self.checks_signatures()
            && !self.signature_ok(&raw.signed, raw.kid.as_deref(), &raw.signature)
        {
            return QrVerdict::Invalid(QrInvalidReason::Forged);
        }
        let p = raw.payload;
        if let Some(estate) = &self.estate {
            let ours = p
                .unit
                .split_once('/')
                .is_some_and(|(e, rest)| e == estate && !rest.is_empty());
            if !ours {
                return QrVerdict::Invalid(QrInvalidReason::WrongEstate);
            }
        }
        if let Some(r) = window_and_revocation(&p, at, &self.revoked) {
            return QrVerdict::Invalid(r);
        }
        if p.single_use {
            self.prune(at);
            if self.used.contains_key(&p.id) {
                return QrVerdict::Invalid(QrInvalidReason::Replayed);
            }
            self.used.insert(p.id.clone(), p.exp);
        }
        QrVerdict::Valid(p)
    }
}

fn window_and_revocation(
    p: &PassPayload,
    at: Timestamp,
    revoked: &HashSet<String>,
) -> Option<QrInvalidReason> {
    if revoked.contains(&p.id) {
        Some(QrInvalidReason::Revoked)
    } else if at < p.nbf {
        Some(QrInvalidReason::NotYetValid)
    } else if at >= p.exp {
        Some(QrInvalidReason::Expired)
    } else {
        None
    }
}

/// Window, revocation and single-use checks shared by verifiers (no
/// signature check, unbounded replay memory; [`PassChecker`] does both).
pub fn check_pass(
    p: PassPayload,
    at: Timestamp,
    revoked: &HashSet<String>,
    used: &mut HashSet<String>,
) -> QrVerdict {
    if let Some(r) = window_and_revocation(&p, at, revoked) {
        return QrVerdict::Invalid(r);
    }
    if p.single_use && !used.insert(p.id.clone()) {
        return QrVerdict::Invalid(QrInvalidReason::Replayed);
    }
    QrVerdict::Valid(p)
}

/// The `[qr]` table of the site file.
///
/// ```toml
/// [qr]
/// public_keys = ["<64 hex digits>"]          # trusted signing keys
/// public_key_files = ["keys/qr-2026.pub"]    # and/or files of them
/// revoked = ["V-0042"]                       # revoked pass ids
/// allow_unsigned = false                     # without keys: deny all (default)
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QrConfig {
    /// Ed25519 public keys, hex (64 digits).
    pub public_keys: Vec<String>,
    /// Files holding public keys (one hex key a line; `#` comments and
    /// `-----` armour lines ignored), relative to the site file.
    #[serde(alias = "key_files")]
    pub public_key_files: Vec<PathBuf>,
    /// Revoked pass ids.
    pub revoked: Vec<String>,
    /// Accept passes without a checkable signature when no key is
    /// configured. Off by default: a scanner without keys denies every pass
    /// (`unverifiable`). Turning it on lets anyone who can print a QR code
    /// in; it is logged loudly at start.
    pub allow_unsigned: bool,
}

impl QrConfig {
    /// Whether any key is configured.
    pub fn has_keys(&self) -> bool {
        !self.public_keys.is_empty() || !self.public_key_files.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("bad key: {0}")]
    BadKey(String),
    #[error("random number generator: {0}")]
    Random(String),
    #[error("encoding the pass: {0}")]
    Encode(#[from] serde_json::Error),
}

/// A key's id: the first 8 bytes of the public key, hex.
pub fn key_id(key: &VerifyingKey) -> String {
    hex_encode(&key.as_bytes()[..8])
}

/// A public key as 64 hex digits.
pub fn public_key_hex(key: &VerifyingKey) -> String {
    hex_encode(key.as_bytes())
}

/// Parses a public key (64 hex digits).
///
/// # Errors
/// Not 32 bytes of hex, or not a valid Ed25519 point.
pub fn parse_public_key(hex: &str) -> Result<VerifyingKey, QrError> {
    let b = key_bytes(hex)?;
    VerifyingKey::from_bytes(&b).map_err(|_| QrError::BadKey("not an Ed25519 public key".into()))
}

fn key_bytes(text: &str) -> Result<[u8; 32], QrError> {
    let body: String = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("-----"))
        .collect();
    let v = hex_decode(&body).ok_or_else(|| QrError::BadKey("not hex".into()))?;
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| QrError::BadKey(format!("{} bytes, expected 32", v.len())))
}

/// Parses the text of a public key file: one hex key a line, `#` comments
/// and `-----` armour lines ignored; `origin` names it in errors.
///
/// # Errors
/// A malformed key, no key at all.
pub fn parse_public_keys(text: &str, origin: &str) -> Result<Vec<VerifyingKey>, QrError> {
    let keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("-----"))
        .map(|l| parse_public_key(l).map_err(|e| QrError::BadKey(format!("{origin}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(QrError::BadKey(format!("{origin}: no key")));
    }
    Ok(keys)
}

const PRIVATE_BEGIN: &str = "-----BEGIN ANJU QR SIGNING KEY-----";
const PRIVATE_END: &str = "-----END ANJU QR SIGNING KEY-----";

/// A new random signing key (from the operating system's generator).
///
/// # Errors
/// The generator is unavailable.
pub fn generate_signing_key() -> Result<SigningKey, QrError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| QrError::Random(e.to_string()))?;
    let k = SigningKey::from_bytes(&seed);
    seed.fill(0);
    Ok(k)
}

/// The private key file's text: the 32-byte seed in hex between armour
/// lines, with the public key as a comment.
pub fn signing_key_text(key: &SigningKey) -> String {
    format!(
        "{PRIVATE_BEGIN}\n# public {}\n{}\n{PRIVATE_END}\n",
        public_key_hex(&key.verifying_key()),
        hex_encode(key.as_bytes())
    )
}

/// Parses a private key: plain hex (64 digits) or the armoured text of
/// [`signing_key_text`].
///
/// # Errors
/// Not 32 bytes of hex.
pub fn parse_signing_key(text: &str) -> Result<SigningKey, QrError> {
    Ok(SigningKey::from_bytes(&key_bytes(text)?))
}

/// Signs a pass: the payload (with the key's id as `kid`) as JSON, signed
/// with Ed25519 over those exact bytes. Returns the code.
///
/// # Errors
/// The payload cannot be encoded (not expected).
pub fn issue(pass: &PassPayload, key: &SigningKey) -> Result<String, QrError> {
    #[derive(Serialize)]
    struct Signed<'a> {
        #[serde(flatten)]
        p: &'a PassPayload,
        kid: String,
    }
    let json = serde_json::to_vec(&Signed {
        p: pass,
        kid: key_id(&key.verifying_key()),
    })?;
    let sig = key.sign(&json);
    Ok(format!(
        "AJ1.{}.{}",
        b64url_encode(&json),
        b64url_encode(&sig.to_bytes())
    ))
}

/// A random pass id, `P-` and 16 hex digits.
///
/// # Errors
/// The generator is unavailable.
pub fn random_pass_id() -> Result<String, QrError> {
    let mut b = [0u8; 8];
    getrandom::getrandom(&mut b).map_err(|e| QrError::Random(e.to_string()))?;
    Ok(format!("P-{}", hex_encode(&b)))
}

fn hex_encode(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(H[usize::from(x >> 4)]));
        s.push(char::from(H[usize::from(x & 15)]));
    }
    s
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.as_bytes();
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let nib = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    s.chunks(2)
        .map(|p| Some((nib(p[0])? << 4) | nib(p[1])?))
        .collect()
}

/// Base64url without padding on output; padding tolerated on input (the
/// maintained `base64` crate, not a hand-written codec).
const B64URL: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    base64::engine::GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

/// Base64url without padding.
pub fn b64url_encode(data: &[u8]) -> String {
    use base64::Engine as _;
    B64URL.encode(data)
}

/// Decodes base64url (padding optional); `None` when it is not.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    B64URL.decode(s).ok()
}

/// Builds an (unsigned-by-key) pass code with the given signature bytes;
/// for tests and scenario generators.
pub fn encode_code(p: &PassPayload, sig: &[u8]) -> String {
    let json = serde_json::to_vec(p).unwrap_or_default();
    format!("AJ1.{}.{}", b64url_encode(&json), b64url_encode(sig))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn b64_round_trip() {
        for n in 0..20 {
            let data: Vec<u8> = (0..n).map(|i| (i * 37 + 11) as u8).collect();
            assert_eq!(b64url_decode(&b64url_encode(&data)).unwrap(), data);
        }
        assert!(b64url_decode("a+b").is_none());
    }

    #[test]
    fn checker_reasons() {
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let p = PassPayload {
            id: "V1".into(),
            unit: "FCY/1/101".into(),
            kind: PassKind::Visitor,
            nbf: t0,
            exp: t0 + chrono::Duration::hours(4),
            single_use: true,
        };
        let code = encode_code(&p, b"sig");
        let mut c = PassChecker::unsigned_allowed();
        let h = chrono::Duration::hours(1);
        assert_eq!(
            c.verify(&code, t0 - h),
            QrVerdict::Invalid(QrInvalidReason::NotYetValid)
        );
        assert!(matches!(c.verify(&code, t0 + h), QrVerdict::Valid(_)));
        assert_eq!(
            c.verify(&code, t0 + h),
            QrVerdict::Invalid(QrInvalidReason::Replayed)
        );
        assert_eq!(
            c.verify(&code, t0 + h * 5),
            QrVerdict::Invalid(QrInvalidReason::Expired)
        );
        assert_eq!(
            c.verify("AJ1.garbage.x", t0),
            QrVerdict::Invalid(QrInvalidReason::Forged)
        );
        assert_eq!(
            c.verify("hello", t0),
            QrVerdict::Invalid(QrInvalidReason::Forged)
        );
        c.revoked.insert("V1".into());
        assert_eq!(
            c.verify(&code, t0 + h),
            QrVerdict::Invalid(QrInvalidReason::Revoked)
        );
    }

    fn pass(single_use: bool) -> (PassPayload, Timestamp) {
        let t0 = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let p = PassPayload {
            id: "P1".into(),
            unit: "FCY/1/101".into(),
            kind: PassKind::Resident,
            nbf: t0,
            exp: t0 + chrono::Duration::hours(4),
            single_use,
        };
        (p, t0)
    }

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn signed_pass_reasons() {
        let k = key(7);
        let (p, t0) = pass(true);
        let code = issue(&p, &k).unwrap();
        let h = chrono::Duration::hours(1);
        let mut c = PassChecker::with_keys([k.verifying_key()]);
        assert!(c.checks_signatures());
        assert_eq!(
            c.verify(&code, t0 - h),
            QrVerdict::Invalid(QrInvalidReason::NotYetValid)
        );
        assert_eq!(c.verify(&code, t0 + h), QrVerdict::Valid(p.clone()));
        assert_eq!(
            c.verify(&code, t0 + h),
            QrVerdict::Invalid(QrInvalidReason::Replayed)
        );
        assert_eq!(
            c.verify(&code, t0 + h * 4),
            QrVerdict::Invalid(QrInvalidReason::Expired)
        );
        c.revoked.insert("P1".into());
        assert_eq!(
            c.verify(&code, t0 + h),
            QrVerdict::Invalid(QrInvalidReason::Revoked)
        );
        // Multi-use passes can be shown again.
        let (mut p2, _) = pass(false);
        p2.id = "P2".into();
        let code2 = issue(&p2, &k).unwrap();
        for _ in 0..3 {
            assert!(matches!(c.verify(&code2, t0 + h), QrVerdict::Valid(_)));
        }
    }

    #[test]
    fn tampered_or_foreign_passes_are_forged() {
        let k = key(7);
        let (p, t0) = pass(false);
        let at = t0 + chrono::Duration::hours(1);
        let code = issue(&p, &k).unwrap();
        let mut c = PassChecker::with_keys([k.verifying_key()]);
        assert!(matches!(c.verify(&code, at), QrVerdict::Valid(_)));
        let raw = parse_code_raw(&code).unwrap();
        let sig = b64url_encode(&raw.signature);
        // Flip one byte of the signed payload (it stays valid JSON).
        let s = String::from_utf8(raw.signed.clone()).unwrap();
        let tampered = s.replace("FCY/1/101", "FCY/1/102");
        assert_ne!(tampered, s);
        let code_t = format!("AJ1.{}.{sig}", b64url_encode(tampered.as_bytes()));
        assert!(parse_code_raw(&code_t).is_some());
        assert_eq!(
            c.verify(&code_t, at),
            QrVerdict::Invalid(QrInvalidReason::Forged)
        );
        // Every single-byte change of payload or signature is refused.
        for i in 0..raw.signed.len() + raw.signature.len() {
            let (mut pl, mut sg) = (raw.signed.clone(), raw.signature.clone());
            if i < pl.len() {
                pl[i] ^= 1;
            } else {
                sg[i - pl.len()] ^= 1;
            }
            let code_b = format!("AJ1.{}.{}", b64url_encode(&pl), b64url_encode(&sg));
            assert_eq!(
                c.verify(&code_b, at),
                QrVerdict::Invalid(QrInvalidReason::Forged),
                "byte {i}"
            );
        }
        // Another key, and the unsigned format of the simulators.
        let other = issue(&p, &key(8)).unwrap();
        assert_eq!(
            c.verify(&other, at),
            QrVerdict::Invalid(QrInvalidReason::Forged)
        );
        assert_eq!(
            c.verify(&encode_code(&p, b"sig"), at),
            QrVerdict::Invalid(QrInvalidReason::Forged)
        );
        assert_eq!(
            c.verify(&encode_code(&p, &[0u8; 64]), at),
            QrVerdict::Invalid(QrInvalidReason::Forged)
        );
        // A keyless checker allowed to take unsigned passes does not look
        // at signatures (without that permission it fails closed).
        assert!(matches!(
            PassChecker::unsigned_allowed().verify(&other, at),
            QrVerdict::Valid(_)
        ));
    }

    #[test]
    fn key_rotation_by_kid() {
        let (old, new) = (key(1), key(2));
        let (p, t0) = pass(false);
        let at = t0 + chrono::Duration::hours(1);
        let mut c = PassChecker::with_keys([old.verifying_key(), new.verifying_key()]);
        for k in [&old, &new] {
            let code = issue(&p, k).unwrap();
            assert_eq!(
                parse_code_raw(&code).unwrap().kid.as_deref(),
                Some(key_id(&k.verifying_key()).as_str())
            );
            assert!(matches!(c.verify(&code, at), QrVerdict::Valid(_)));
        }
        // Retiring the old key forges its passes.
        let mut c2 = PassChecker::with_keys([new.verifying_key()]);
        assert_eq!(
            c2.verify(&issue(&p, &old).unwrap(), at),
            QrVerdict::Invalid(QrInvalidReason::Forged)
        );
    }

    #[test]
    fn replay_memory_is_bounded_by_expiry() {
        let k = key(3);
        let (p, t0) = pass(true);
        let mut c = PassChecker::with_keys([k.verifying_key()]);
        for i in 0..3000 {
            let mut q = p.clone();
            q.id = format!("S{i}");
            let at = t0 + chrono::Duration::seconds(i);
            q.nbf = at;
            q.exp = at + chrono::Duration::seconds(10);
            let code = issue(&q, &k).unwrap();
            assert!(matches!(c.verify(&code, at), QrVerdict::Valid(_)));
            assert_eq!(
                c.verify(&code, at),
                QrVerdict::Invalid(QrInvalidReason::Replayed)
            );
        }
        assert!(c.remembered() < 1100, "{}", c.remembered());
    }

    #[test]
    fn keys_and_config() {
        let k = generate_signing_key().unwrap();
        let back = parse_signing_key(&signing_key_text(&k)).unwrap();
        assert_eq!(back.to_bytes(), k.to_bytes());
        assert_eq!(
            parse_signing_key(&hex_encode(k.as_bytes()))
                .unwrap()
                .to_bytes(),
            k.to_bytes()
        );
        let pubhex = public_key_hex(&k.verifying_key());
        let file_keys = parse_public_keys(&format!("# test\n{pubhex}\n"), "qr.pub").unwrap();
        assert!(parse_public_keys("# nothing\n", "empty.pub").is_err());
        let cfg: QrConfig = serde_json::from_value(serde_json::json!({
            "public_key_files": ["qr.pub"],
            "revoked": ["P1"],
        }))
        .unwrap();
        assert!(cfg.has_keys());
        let mut c = PassChecker::from_config(&cfg, &file_keys).unwrap();
        assert!(c.checks_signatures());
        let (p, t0) = pass(false);
        let at = t0 + chrono::Duration::hours(1);
        assert_eq!(
            c.verify(&issue(&p, &k).unwrap(), at),
            QrVerdict::Invalid(QrInvalidReason::Revoked)
        );
        let cfg2 = QrConfig {
            public_keys: vec![pubhex],
            ..QrConfig::default()
        };
        let mut c2 = PassChecker::from_config(&cfg2, &[]).unwrap();
        assert!(matches!(
            c2.verify(&issue(&p, &k).unwrap(), at),
            QrVerdict::Valid(_)
        ));
        let bad = QrConfig {
            public_keys: vec!["abcd".into()],
            ..QrConfig::default()
        };
        assert!(PassChecker::from_config(&bad, &[]).is_err());
        assert!(parse_public_key(&"zz".repeat(32)).is_err());
    }

    #[test]
    fn without_keys_every_pass_is_unverifiable_unless_unsigned_is_allowed() {
        let t0: Timestamp = "2026-03-01T08:00:00Z".parse().unwrap();
        let p = PassPayload {
            id: "V-1".into(),
            unit: "FCY/1/101".into(),
            kind: PassKind::Visitor,
            nbf: t0,
            exp: t0 + chrono::Duration::hours(4),
            single_use: false,
        };
        let code = encode_code(&p, b"not a signature");
        let at = t0 + chrono::Duration::hours(1);
        assert_eq!(
            PassChecker::new().verify(&code, at),
            QrVerdict::Invalid(QrInvalidReason::Unverifiable)
        );
        let cfg = QrConfig::default();
        assert_eq!(
            PassChecker::from_config(&cfg, &[])
                .unwrap()
                .verify(&code, at),
            QrVerdict::Invalid(QrInvalidReason::Unverifiable)
        );
        let allow = QrConfig {
            allow_unsigned: true,
            ..QrConfig::default()
        };
        let mut c = PassChecker::from_config(&allow, &[]).unwrap();
        assert!(c.accepts_unsigned());
        assert!(matches!(c.verify(&code, at), QrVerdict::Valid(_)));
        // Scoped to a scanner's estate: a pass for another estate's unit.
        let mut other = PassChecker::unsigned_allowed().for_estate("XYZ");
        assert_eq!(
            other.verify(&code, at),
            QrVerdict::Invalid(QrInvalidReason::WrongEstate)
        );
        let mut ours = PassChecker::unsigned_allowed().for_estate("FCY");
        assert!(matches!(ours.verify(&code, at), QrVerdict::Valid(_)));
        // A key configured: the dummy signature is forged.
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut keyed = PassChecker::with_keys([key.verifying_key()]);
        assert_eq!(
            keyed.verify(&code, at),
            QrVerdict::Invalid(QrInvalidReason::Forged)
        );
        let signed = issue(&p, &key).unwrap();
        assert!(matches!(keyed.verify(&signed, at), QrVerdict::Valid(_)));
    }
}
