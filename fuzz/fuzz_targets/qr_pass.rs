//! QR pass codes as a scanner reads them: `parse_code_raw` and the
//! verifiers (unsigned-allowed scoped to an estate; keyed).
//!
//! The input is tried twice: as the scanned text itself, and as the JSON
//! payload of an `AJ1.<payload>.<sig>` code built around it (so that the
//! fuzzer mutates the payload's fields, not its base64).
#![no_main]

use anju_core::Timestamp;
use anju_rules::qr::{b64url_encode, parse_code_raw, PassChecker, QrVerifier, SigningKey};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn times() -> &'static [Timestamp; 4] {
    static T: OnceLock<[Timestamp; 4]> = OnceLock::new();
    T.get_or_init(|| {
        [
            "2026-03-01T02:00:00Z".parse().expect("a valid timestamp"),
            "1970-01-01T00:00:00Z".parse().expect("a valid timestamp"),
            Timestamp::MIN_UTC,
            Timestamp::MAX_UTC,
        ]
    })
}

fn check(code: &str) {
    let _ = parse_code_raw(code);
    let mut open = PassChecker::unsigned_allowed().for_estate("FCY");
    let mut keyed = PassChecker::with_keys([SigningKey::from_bytes(&[7; 32]).verifying_key()]);
    for &at in times() {
        // Twice each: the second scan of a single-use pass is a replay.
        for _ in 0..2 {
            let _ = open.verify(code, at);
            let _ = keyed.verify(code, at);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check(&text);
    // The input as the signed payload; the signature is the input's last
    // 64 bytes when it has that many (a wrong one, but of the right size).
    let sig: &[u8] = if data.len() >= 64 {
        &data[data.len() - 64..]
    } else {
        b"sig"
    };
    check(&format!(
        "AJ1.{}.{}",
        b64url_encode(data),
        b64url_encode(sig)
    ));
});
