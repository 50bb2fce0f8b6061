//! Sealed fields: values encrypted at rest (AES-256-GCM) with a key that
//! lives outside the database, for data that a stolen database file or dump
//! must not reveal (a club's cash, a member's bank details).
//!
//! The key is `data_key` in the configuration (32 bytes, base64; give it with
//! `SHROOMS__DATA_KEY_FILE` on replicas) or, by default, the file
//! `<data>/keys/data.key`, created on first start with mode 0600. Every
//! sealed value names the key it was sealed with (`s1.<key id>.<data>`), so a
//! server holding another key says so instead of returning garbage, and each
//! value is bound to its place (`context`: table, column, record id), so a
//! value copied into another row or column does not open.
//!
//! Sealed values cannot be summed or filtered in SQL: a module reads them and
//! computes in Rust, which is fine for the sizes they are meant for (a club's
//! few hundred cash lines), not for a ledger of a million lines.

use crate::config::Config;
use crate::error::{CoreError, CoreResult};
use anyhow::Context;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use std::path::PathBuf;

/// What every sealed value starts with (the format's version).
pub const PREFIX: &str = "s1.";

/// Whether a stored value is sealed (a column being converted may still
/// hold values written in clear by an earlier version).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

pub struct DataKey {
    key: LessSafeKey,
    /// First 8 hex digits of SHA-256 of the key: names it without revealing it.
    id: String,
    /// The file it was read from, when it came from the data folder (backups copy it).
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({})", self.id)
    }
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

pub fn key_file(cfg: &Config) -> PathBuf {
    cfg.data.join("keys").join("data.key")
}

impl DataKey {
    pub fn from_bytes(bytes: &[u8]) -> anyhow::Result<DataKey> {
        anyhow::ensure!(bytes.len() == 32, "the data key must be 32 bytes (base64 of 32 random bytes)");
        let key = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| anyhow::anyhow!("unusable data key"))?;
        let id = crate::crypto::sha256_hex(bytes)[..8].to_string();
        Ok(DataKey { key: LessSafeKey::new(key), id, file: None })
    }

    /// The configured key, or the data folder's key file (created when missing).
    pub fn load(cfg: &Config) -> anyhow::Result<DataKey> {
        if let Some(k) = &cfg.data_key {
            let bytes = b64().decode(k.0.trim()).context("data_key is not base64")?;
            return DataKey::from_bytes(&bytes).context("data_key");
        }
        let path = key_file(cfg);
        if !path.exists() {
            let dir = path.parent().unwrap_or(&cfg.data);
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let text = b64().encode(crate::crypto::random_bytes::<32>());
            write_private(&path, &text).with_context(|| format!("writing {}", path.display()))?;
            tracing::info!(file = %path.display(), "created the data key; back it up apart from the database");
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let bytes = b64().decode(text.trim()).with_context(|| format!("{} is not base64", path.display()))?;
        let mut key = DataKey::from_bytes(&bytes).with_context(|| format!("{}", path.display()))?;
        key.file = Some(path);
        Ok(key)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Encrypts `plain` for the place named by `context` (e.g. `clubs_money.amount:<id>`).
    pub fn seal(&self, context: &str, plain: &str) -> String {
        let nonce_bytes = crate::crypto::random_bytes::<NONCE_LEN>();
        let mut data = plain.as_bytes().to_vec();
        // Sealing only fails on absurd lengths (more than 64 GiB).
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context.as_bytes()),
                &mut data,
            )
            .is_err()
        {
            return String::new();
        }
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&data);
        format!("{PREFIX}{}.{}", self.id, b64().encode(out))
    }

    /// Decrypts a value sealed for `context`.
    pub fn open(&self, context: &str, sealed: &str) -> CoreResult<String> {
        let rest = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| CoreError::Internal(format!("{context}: the stored value is not sealed")))?;
        let (kid, data) =
            rest.split_once('.').ok_or_else(|| CoreError::Internal(format!("{context}: damaged sealed value")))?;
        if kid != self.id {
            return Err(CoreError::Internal(format!(
                "{context} was sealed with data key {kid}, but this server holds key {}: give every server the same \
                 `data_key`, or put back the `keys/data.key` of the data folder that wrote it",
                self.id
            )));
        }
        let bytes = b64().decode(data).map_err(|_| CoreError::Internal(format!("{context}: damaged sealed value")))?;
        if bytes.len() < NONCE_LEN {
            return Err(CoreError::Internal(format!("{context}: damaged sealed value")));
        }
        let (nonce, ct) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| CoreError::Internal("nonce".into()))?;
        let mut ct = ct.to_vec();
        let plain = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut ct)
            .map_err(|_| {
                CoreError::Internal(format!("{context}: the sealed value does not open (altered or moved)"))
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| CoreError::Internal(format!("{context}: not text")))
    }

    /// Seals an integer (an amount in cents).
    pub fn seal_i64(&self, context: &str, v: i64) -> String {
        self.seal(context, &v.to_string())
    }

    pub fn open_i64(&self, context: &str, sealed: &str) -> CoreResult<i64> {
        self.open(context, sealed)?
            .parse()
            .map_err(|_| CoreError::Internal(format!("{context}: the sealed value is not a number")))
    }
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    std::fs::write(path, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_open_only_in_their_place_and_with_their_key() {
        let k = DataKey::from_bytes(&[7u8; 32]).unwrap();
        let s = k.seal("money.amount:1", "1250");
        assert!(s.starts_with("s1.") && !s.contains("1250"));
        assert_eq!(k.open("money.amount:1", &s).unwrap(), "1250");
        assert_ne!(k.seal("money.amount:1", "1250"), s, "a fresh nonce each time");
        assert!(k.open("money.amount:2", &s).is_err(), "moved to another row");
        let other = DataKey::from_bytes(&[8u8; 32]).unwrap();
        let e = other.open("money.amount:1", &s).unwrap_err().to_string();
        assert!(e.contains(k.id()) && e.contains(other.id()), "{e}");
        let mut tampered = s.clone();
        tampered.pop();
        tampered.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert!(k.open("money.amount:1", &tampered).is_err());
        assert_eq!(k.open_i64("x", &k.seal_i64("x", -4200)).unwrap(), -4200);
    }
}
