//! Deterministic identifiers, tokens and encodings.
//!
//! The emulator never uses randomness: every id is derived from a counter through a fixed
//! mixing function, so two runs of the same test produce the same ids (and snapshot diffs stay
//! meaningful). The shapes imitate Basiq's (uuid-looking ids, JWT-looking tokens, a base64
//! `uuid:uuid` API key) so SDK code that assumes those shapes is exercised.

use std::sync::atomic::{AtomicU64, Ordering};

/// SplitMix64: a tiny, well-distributed 64-bit mixer. Good enough to make ids look random.
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Salts keep ids of different kinds apart even when their counters coincide.
#[derive(Debug, Clone, Copy)]
pub(crate) enum IdKind {
    User = 1,
    Connection = 2,
    Job = 3,
    Token = 4,
    Key = 5,
}

/// A uuid-v4-looking id for counter value `n`.
pub(crate) fn uuid_like(kind: IdKind, n: u64) -> String {
    let salt = (kind as u64).wrapping_mul(0xA24B_AED4_963E_E407);
    let a = mix(n ^ salt);
    let b = mix(a ^ n.rotate_left(29));
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | ((b >> 48) & 0x3fff),
        b & 0xffff_ffff_ffff
    )
}

/// Basiq-like correlation ids ("ac5ah5i"): short lowercase base36, fresh for every error body.
pub(crate) fn correlation_id() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let mut v = mix(NEXT.fetch_add(1, Ordering::Relaxed) ^ 0xC0FF_EE00) % 36u64.pow(8);
    let mut out = Vec::with_capacity(8);
    for _ in 0..8 {
        let d = (v % 36) as u8;
        out.push(if d < 10 { b'0' + d } else { b'a' + d - 10 });
        v /= 36;
    }
    String::from_utf8(out).unwrap_or_default()
}

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn encode(input: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64 with padding (the API key's encoding).
pub(crate) fn base64(input: &[u8]) -> String {
    encode(input, STD, true)
}

/// URL-safe base64 without padding (JWT segments).
pub(crate) fn base64url(input: &[u8]) -> String {
    encode(input, URL, false)
}

/// The default API key: base64 of `uuid:uuid`, exactly the shape of a dashboard key, so that an
/// SDK which wrongly re-encodes it (or decodes it) is caught by the key comparison.
pub(crate) fn default_api_key() -> String {
    let raw = format!(
        "{}:{}",
        uuid_like(IdKind::Key, 1),
        uuid_like(IdKind::Key, 2)
    );
    base64(raw.as_bytes())
}

/// A JWT-looking token: `base64url(header).base64url(payload).base64url(signature)`.
/// The signature is not verifiable; the emulator looks tokens up in its own table.
pub(crate) fn jwt(payload: &serde_json::Value, n: u64) -> String {
    let header = base64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let body = base64url(payload.to_string().as_bytes());
    let mut sig = Vec::with_capacity(32);
    let mut s = n ^ 0x5EED;
    for _ in 0..4 {
        s = mix(s);
        sig.extend_from_slice(&s.to_be_bytes());
    }
    format!("{header}.{body}.{}", base64url(&sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn ids_are_deterministic_and_distinct() {
        assert_eq!(uuid_like(IdKind::User, 7), uuid_like(IdKind::User, 7));
        assert_ne!(uuid_like(IdKind::User, 7), uuid_like(IdKind::Job, 7));
        assert_eq!(uuid_like(IdKind::User, 7).len(), 36);
        assert_eq!(correlation_id().len(), 8);
    }
}
