//! QR passes: `AJ1.<base64url(json payload)>.<base64url(signature)>`.
//!
//! The payload is `{"id", "unit", "kind": "resident"|"visitor", "nbf", "exp",
//! "single_use"?}` (`nbf`/`exp` RFC 3339). The engine asks a [`QrVerifier`]
//! about every `qr_scan`; an invalid verdict raises `qr_invalid`.
//!
//! The default verifier, [`PassChecker`], checks the format, the validity
//! window, a revocation list and single-use replays. **It does not verify
//! the signature** (no key is configured in replay); it only requires a
//! non-empty signature part. Anything not in the `AJ1` shape is `forged`.
//! A deployment with a signing key plugs in its own verifier.

use anju_core::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Why a QR pass was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QrInvalidReason {
    Forged,
    Expired,
    NotYetValid,
    Revoked,
    Replayed,
}

impl QrInvalidReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Forged => "forged",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Revoked => "revoked",
            Self::Replayed => "replayed",
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
}

/// Format, validity window, revocation and replay checks; see the module
/// docs (no signature check).
#[derive(Debug, Default)]
pub struct PassChecker {
    pub revoked: HashSet<String>,
    used: HashSet<String>,
}

impl PassChecker {
    pub fn new() -> Self {
        Self::default()
    }
}

/// Splits and decodes `AJ1.<payload>.<sig>`; `None` when not in that shape.
pub fn parse_code(code: &str) -> Option<(PassPayload, Vec<u8>)> {
    let mut parts = code.trim().split('.');
    if parts.next()? != "AJ1" {
        return None;
    }
    let payload = b64url_decode(parts.next()?)?;
    let sig = b64url_decode(parts.next()?)?;
    if parts.next().is_some() || sig.is_empty() {
        return None;
    }
    let p: PassPayload = serde_json::from_slice(&payload).ok()?;
    Some((p, sig))
}

impl QrVerifier for PassChecker {
    fn verify(&mut self, code: &str, at: Timestamp) -> QrVerdict {
        let Some((p, _sig)) = parse_code(code) else {
            return QrVerdict::Invalid(QrInvalidReason::Forged);
        };
        check_pass(p, at, &self.revoked, &mut self.used)
    }
}

/// Window, revocation and single-use checks shared by verifiers.
pub fn check_pass(
    p: PassPayload,
    at: Timestamp,
    revoked: &HashSet<String>,
    used: &mut HashSet<String>,
) -> QrVerdict {
    if revoked.contains(&p.id) {
        return QrVerdict::Invalid(QrInvalidReason::Revoked);
    }
    if at < p.nbf {
        return QrVerdict::Invalid(QrInvalidReason::NotYetValid);
    }
    if at >= p.exp {
        return QrVerdict::Invalid(QrInvalidReason::Expired);
    }
    if p.single_use && !used.insert(p.id.clone()) {
        return QrVerdict::Invalid(QrInvalidReason::Replayed);
    }
    QrVerdict::Valid(p)
}

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Base64url without padding (padding tolerated).
pub fn b64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(B64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return None;
    }
    Some(out)
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
        let mut c = PassChecker::new();
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
}
