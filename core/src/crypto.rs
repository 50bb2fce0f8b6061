//! Small cryptographic helpers: random tokens, hashes, HMAC, TOTP (RFC 6238),
//! HS256 JWTs (RFC 7519) and argon2id passwords. Each is a few lines over
//! RustCrypto primitives, so the whole sign-in path is readable here.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::getrandom(&mut b).expect("the operating system's random source failed");
    b
}

/// A 256-bit random token, URL-safe.
pub fn random_token() -> String {
    B64.encode(random_bytes::<32>())
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Tokens are stored hashed: a database leak does not reveal usable tokens.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

// ---------- base32 (RFC 4648, no padding), for TOTP secrets ----------

const B32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

pub fn base32_encode(data: &[u8]) -> String {
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &b in data {
        buf = (buf << 8) | b as u32;
        bits += 8;
        while bits >= 5 {
            out.push(B32[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(B32[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let v = B32.iter().position(|&x| x as char == c.to_ascii_uppercase())? as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

// ---------- TOTP ----------

pub const TOTP_STEP: i64 = 30;

/// The 6-digit code of a 30-second step (HMAC-SHA1, RFC 6238 defaults, what
/// every authenticator app uses).
pub fn totp_code(secret: &[u8], step: i64) -> String {
    let mut mac = <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).expect("any key length");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let off = (h[19] & 0x0f) as usize;
    let bin =
        ((h[off] as u32 & 0x7f) << 24) | ((h[off + 1] as u32) << 16) | ((h[off + 2] as u32) << 8) | h[off + 3] as u32;
    format!("{:06}", bin % 1_000_000)
}

/// Finds the step (within one step of clock drift) whose code matches.
pub fn totp_match(secret: &[u8], code: &str, unix_secs: i64) -> Option<i64> {
    let code = code.trim().replace(' ', "");
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = unix_secs / TOTP_STEP;
    (now - 1..=now + 1).find(|&s| constant_time_eq(totp_code(secret, s).as_bytes(), code.as_bytes()))
}

pub fn totp_uri(issuer: &str, account: &str, secret_b32: &str) -> String {
    fn enc(s: &str) -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect()
    }
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits=6&period=30",
        enc(issuer),
        enc(account),
        secret_b32,
        enc(issuer)
    )
}

// ---------- JWT (HS256 only; other algorithms are refused) ----------

const JWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

pub fn jwt_sign<T: Serialize>(key: &[u8], claims: &T) -> String {
    let payload = serde_json::to_vec(claims).expect("claims serialise");
    let signing_input = format!("{}.{}", B64.encode(JWT_HEADER), B64.encode(payload));
    let sig = hmac_sha256(key, signing_input.as_bytes());
    format!("{signing_input}.{}", B64.encode(sig))
}

/// Verifies the signature and the header; expiry is checked by the caller,
/// which knows the clock.
pub fn jwt_verify<T: DeserializeOwned>(key: &[u8], token: &str) -> Option<T> {
    let mut parts = token.split('.');
    let (h, p, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: serde_json::Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
    if header.get("alg")?.as_str()? != "HS256" {
        return None;
    }
    let expected = hmac_sha256(key, format!("{h}.{p}").as_bytes());
    if !constant_time_eq(&expected, &B64.decode(s).ok()?) {
        return None;
    }
    serde_json::from_slice(&B64.decode(p).ok()?).ok()
}

// ---------- passwords (argon2id) ----------

fn argon2(memory_kib: u32) -> argon2::Argon2<'static> {
    let params = argon2::Params::new(memory_kib.max(8), 2, 1, None).expect("valid argon2 parameters");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Argon2's working memory (19 MiB by default), taken from the system
/// allocator rather than the process's global one. The binary fixes the C
/// library's mmap threshold (`return_large_blocks_to_the_system` in
/// `main.rs`), so these blocks are mapped for the computation and unmapped
/// when dropped. From jemalloc, the global allocator, they stayed resident
/// as dirty pages until its decay, which only runs on later allocations: an
/// idle server kept ~19 MiB after its last sign-in (docs/PERFORMANCE.md).
struct Blocks {
    ptr: std::ptr::NonNull<argon2::Block>,
    len: usize,
}

impl Blocks {
    fn layout(len: usize) -> std::alloc::Layout {
        std::alloc::Layout::array::<argon2::Block>(len).expect("argon2's memory fits the address space")
    }

    fn new(len: usize) -> Blocks {
        use std::alloc::GlobalAlloc;
        let len = len.max(1);
        let layout = Self::layout(len);
        // SAFETY: the layout's size is not zero (len >= 1, a block is 1 KiB);
        // all-zero bytes are a valid `Block` (an array of integers).
        let p = unsafe { std::alloc::System.alloc_zeroed(layout) };
        let ptr =
            std::ptr::NonNull::new(p.cast::<argon2::Block>()).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Blocks { ptr, len }
    }
}

impl AsMut<[argon2::Block]> for Blocks {
    fn as_mut(&mut self) -> &mut [argon2::Block] {
        // SAFETY: `ptr` holds `len` initialised blocks, owned by `self` alone.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        use std::alloc::GlobalAlloc;
        // SAFETY: allocated by `System` with this very layout in `new`.
        unsafe { std::alloc::System.dealloc(self.ptr.as_ptr().cast(), Self::layout(self.len)) }
    }
}

/// The hash of `password` with `salt` under `a`'s parameters, into `out`.
fn argon2_into(a: &argon2::Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    a.hash_password_into_with_memory(password, salt, out, Blocks::new(a.params().block_count()))
}

/// An argon2id PHC string (`$argon2id$v=19$m=…,t=2,p=1$salt$hash`), as the
/// argon2 crate writes it.
pub fn hash_password(password: &str, memory_kib: u32) -> String {
    use argon2::password_hash::{rand_core::OsRng, Output, ParamsString, PasswordHash, SaltString};
    let a = argon2(memory_kib);
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.as_salt().decode_b64(&mut salt_bytes).expect("a generated salt decodes");
    let len = a.params().output_len().unwrap_or(argon2::Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(len, |out| {
        argon2_into(&a, password.as_bytes(), salt_bytes, out).map_err(|_| argon2::password_hash::Error::Password)
    })
    .expect("argon2 hashing cannot fail with valid parameters");
    PasswordHash {
        algorithm: argon2::Algorithm::Argon2id.ident(),
        version: Some(argon2::Version::V0x13.into()),
        params: ParamsString::try_from(a.params()).expect("argon2 parameters are a valid PHC string"),
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string()
}

/// Verifies against a stored PHC string; the parameters stored in it are used.
pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::PasswordHash;
    let check = || -> Option<bool> {
        let h = PasswordHash::new(phc).ok()?;
        let algorithm = argon2::Algorithm::try_from(h.algorithm).ok()?;
        let version = match h.version {
            Some(v) => argon2::Version::try_from(v).ok()?,
            None => argon2::Version::default(),
        };
        let params = argon2::Params::try_from(&h).ok()?;
        let expected = h.hash?;
        let mut salt = [0u8; 64];
        let salt = h.salt?.decode_b64(&mut salt).ok()?;
        let a = argon2::Argon2::new(algorithm, version, params);
        let mut out = vec![0u8; expected.len()];
        argon2_into(&a, password.as_bytes(), salt, &mut out).ok()?;
        Some(constant_time_eq(&out, expected.as_bytes()))
    };
    check().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totp_matches_rfc6238_vector() {
        // RFC 6238 appendix B, SHA1, T = 59 s -> 94287082 (8 digits); 6 digits -> 287082.
        let secret = b"12345678901234567890";
        assert_eq!(totp_code(secret, 59 / 30), "287082");
        assert_eq!(totp_match(secret, "287082", 59), Some(1));
        assert_eq!(totp_match(secret, "287083", 59), None);
    }

    /// Hashes written by the argon2 crate's own hasher (every stored
    /// password so far) still verify, and ours verify with it.
    #[test]
    fn passwords_verify_both_ways_with_the_argon2_crate() {
        use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
        let theirs = argon2(64).hash_password(b"s3cret horse", &SaltString::generate(&mut OsRng)).unwrap().to_string();
        assert!(verify_password("s3cret horse", &theirs));
        assert!(!verify_password("s3cret hors", &theirs));
        let ours = hash_password("s3cret horse", 64);
        assert!(ours.starts_with("$argon2id$v=19$m=64,t=2,p=1$"), "{ours}");
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2::Argon2::default().verify_password(b"s3cret horse", &parsed).is_ok());
        assert!(argon2::Argon2::default().verify_password(b"other", &parsed).is_err());
        assert!(verify_password("s3cret horse", &ours));
        assert!(!verify_password("s3cret horse", "not a hash"));
    }

    #[test]
    fn base32_round_trips() {
        let data = random_bytes::<20>();
        assert_eq!(base32_decode(&base32_encode(&data)).unwrap(), data);
        assert_eq!(base32_encode(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn jwt_rejects_tampering_and_other_algorithms() {
        let key = b"k";
        let t = jwt_sign(key, &serde_json::json!({"sub": "a", "exp": 1}));
        let back: serde_json::Value = jwt_verify(key, &t).unwrap();
        assert_eq!(back["sub"], "a");
        assert!(jwt_verify::<serde_json::Value>(b"other", &t).is_none());
        let mut parts: Vec<&str> = t.split('.').collect();
        let none_header = B64.encode(r#"{"alg":"none"}"#);
        parts[0] = &none_header;
        assert!(jwt_verify::<serde_json::Value>(key, &parts.join(".")).is_none());
    }

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse", 64);
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
    }
}
