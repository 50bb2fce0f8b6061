//! Layered configuration: built-in defaults, then a TOML file, then
//! `SHROOMS__SECTION__KEY` environment variables, then `*_FILE` secrets.
//! The contract variables `SHROOMS_DATA`, `SHROOMS_LISTEN` and
//! `SHROOMS_DATABASE_URL` are honoured as documented. Unknown keys are
//! rejected. Secrets are never printed (`Debug` redacts them).

use anyhow::{bail, Context};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// A string that never shows up in logs or `Debug` output.
#[derive(Clone, Deserialize, Default, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"<redacted>\"")
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data folder: embedded database, uploaded files, backups.
    pub data: PathBuf,
    /// Address the HTTP server listens on.
    pub listen: String,
    /// PostgreSQL URL; absent means the embedded SQLite database in the data folder.
    pub database_url: Option<Secret>,
    /// Public base URL used in links sent by mail (defaults to http://<listen>).
    pub public_url: Option<String>,
    /// Folder of template and static overrides (a theme).
    pub theme: Option<PathBuf>,
    /// Log filter, e.g. `info` or `info,shrooms_core=debug`.
    pub log: String,
    /// `text` (for people) or `json` (one object per line, for log collectors).
    pub log_format: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Database connection pool size; 0 picks 8. More connections did not
    /// answer faster on the measured machine (see docs/PERFORMANCE.md): every
    /// SQLite connection has its own thread and page cache, and PostgreSQL
    /// connections compete for the same cores.
    pub pool_size: u32,
    /// Addresses of reverse proxies whose `X-Forwarded-For` is believed
    /// (for sign-in throttling and the audit log). Empty: the peer address.
    pub trusted_proxies: Vec<String>,
    pub session: SessionConfig,
    pub security: SecurityConfig,
    pub tls: Option<TlsConfig>,
    pub smtp: Option<SmtpConfig>,
    pub alerts: AlertsConfig,
    pub backup: BackupConfig,
    pub files: FilesConfig,
    /// Key of sealed (encrypted) fields: base64 of 32 random bytes. Unset: the
    /// file `<data>/keys/data.key`, created on first start. Replicas must share it.
    pub data_key: Option<Secret>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Where scheduled backups go (default `<data>/backups`).
    pub folder: Option<PathBuf>,
    /// A second folder (another disk, a mounted share) that receives a copy of each.
    pub copy_to: Option<PathBuf>,
    pub keep_daily: usize,
    pub keep_weekly: usize,
    pub keep_monthly: usize,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig { folder: None, copy_to: None, keep_daily: 7, keep_weekly: 4, keep_monthly: 12 }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Alert when the data folder's file system has less than this share free (percent).
    pub disk_free_percent: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig { disk_free_percent: 5 }
    }
}

/// Uploaded files and photos (`[files]`).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// Largest accepted file, in bytes.
    pub max_upload_bytes: usize,
    /// A virus scanner run on every upload with the file's path as its last
    /// argument (`clamdscan --no-summary`); a non-zero exit refuses the file.
    pub scan_command: Option<String>,
    /// A stored blob without its metadata row is removed by the cleanup job
    /// only once it is this old (an upload in progress has no row yet).
    pub orphan_grace_minutes: i64,
    /// `Cache-Control: public, max-age=…` of public files.
    pub public_max_age_secs: i64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        FilesConfig {
            max_upload_bytes: 20 * 1024 * 1024,
            scan_command: None,
            orphan_grace_minutes: 60,
            public_max_age_secs: 86_400,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused for this long expires.
    pub idle_minutes: i64,
    /// A session expires this long after sign-in, used or not.
    pub absolute_hours: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// Lifetime of API access tokens (JWT).
    pub access_token_seconds: i64,
    /// Lifetime of API refresh tokens.
    pub refresh_token_days: i64,
    /// Failed sign-ins allowed per account within the window.
    pub max_failures_per_account: i64,
    /// Failed sign-ins allowed per client address within the window.
    pub max_failures_per_address: i64,
    /// Throttling window.
    pub failure_window_minutes: i64,
    /// argon2id memory cost in KiB (tests lower it).
    pub argon2_memory_kib: u32,
    /// How long (milliseconds) a server may reuse what it read to check an
    /// access token and the caller's role in an organisation before reading
    /// it again. A write on the same server clears it at once; other replicas
    /// see a revocation or a role change after at most this delay. 0 turns
    /// the cache off.
    pub auth_cache_ms: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    pub certificate: PathBuf,
    pub key: PathBuf,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_smtp_port")]
    pub port: u16,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    /// `none`, `starttls` or `tls`.
    #[serde(default = "default_smtp_security")]
    pub security: String,
    pub from: String,
}

fn default_smtp_port() -> u16 {
    25
}
fn default_smtp_security() -> String {
    "starttls".into()
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data: PathBuf::from("./shrooms-data"),
            listen: "127.0.0.1:8080".into(),
            database_url: None,
            public_url: None,
            theme: None,
            log: "info".into(),
            log_format: "text".into(),
            max_body_bytes: 2 * 1024 * 1024,
            pool_size: 0,
            trusted_proxies: Vec::new(),
            session: SessionConfig::default(),
            security: SecurityConfig::default(),
            tls: None,
            smtp: None,
            alerts: AlertsConfig::default(),
            backup: BackupConfig::default(),
            files: FilesConfig::default(),
            data_key: None,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig { idle_minutes: 120, absolute_hours: 24 * 7 }
    }
}

impl Default for SecurityConfig {
    fn default() -> Self {
        SecurityConfig {
            access_token_seconds: 900,
            auth_cache_ms: 1000,
            refresh_token_days: 30,
            max_failures_per_account: 5,
            max_failures_per_address: 30,
            failure_window_minutes: 15,
            argon2_memory_kib: 19 * 1024,
        }
    }
}

impl Config {
    /// Loads the configuration from the process environment and the optional file
    /// named by `SHROOMS_CONFIG` (or `<data>/shrooms.toml` when it exists).
    pub fn load() -> anyhow::Result<Config> {
        let env: BTreeMap<String, String> = std::env::vars().collect();
        Self::load_from(&env)
    }

    pub fn load_from(env: &BTreeMap<String, String>) -> anyhow::Result<Config> {
        let mut tree = toml::Table::new();
        let data_hint = env.get("SHROOMS_DATA").cloned();
        let file = match env.get("SHROOMS_CONFIG") {
            Some(p) => Some(PathBuf::from(p)),
            None => {
                let p = Path::new(data_hint.as_deref().unwrap_or("./shrooms-data")).join("shrooms.toml");
                p.exists().then_some(p)
            }
        };
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading configuration file {}", path.display()))?;
            tree = text
                .parse::<toml::Table>()
                .with_context(|| format!("parsing configuration file {}", path.display()))?;
        }
        // SHROOMS__SECTION__KEY=value: text, except the numeric keys and [lists].
        for (k, v) in env {
            let Some(rest) = k.strip_prefix("SHROOMS__") else {
                continue;
            };
            let (path, value) = match rest.strip_suffix("_FILE") {
                Some(p) => (
                    p,
                    std::fs::read_to_string(v)
                        .with_context(|| format!("reading secret file for {k}"))?
                        .trim_end()
                        .to_string(),
                ),
                None => (rest, v.clone()),
            };
            let keys: Vec<String> = path.split("__").map(|s| s.to_ascii_lowercase()).collect();
            let last = keys.last().map(String::as_str).unwrap_or("");
            insert_path(&mut tree, &keys, parse_env_value(last, &value));
        }
        for (var, key) in
            [("SHROOMS_DATA", "data"), ("SHROOMS_LISTEN", "listen"), ("SHROOMS_DATABASE_URL", "database_url")]
        {
            if let Some(v) = env.get(var) {
                if !v.is_empty() {
                    tree.insert(key.into(), toml::Value::String(v.clone()));
                }
            }
        }
        let cfg: Config = toml::Value::Table(tree).try_into().context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            bail!("listen: `{}` is not an address like 127.0.0.1:8080", self.listen);
        }
        if let Some(url) = &self.database_url {
            if !url.0.starts_with("postgres://") && !url.0.starts_with("postgresql://") {
                bail!("database_url: only postgres:// URLs are supported (leave it unset for the embedded SQLite database)");
            }
        }
        if let Some(smtp) = &self.smtp {
            if !matches!(smtp.security.as_str(), "none" | "starttls" | "tls") {
                bail!("smtp.security: `{}` is not one of none, starttls, tls", smtp.security);
            }
            if smtp.from.split('<').next_back().map(|a| a.trim_end_matches('>').trim()).is_none_or(|a| !a.contains('@'))
            {
                bail!(
                    "smtp.from: `{}` is not an address like shrooms@example.org or Shrooms <shrooms@example.org>",
                    smtp.from
                );
            }
        }
        if self.files.max_upload_bytes == 0 || self.files.orphan_grace_minutes < 0 || self.files.public_max_age_secs < 0
        {
            bail!(
                "files: max_upload_bytes must be positive, orphan_grace_minutes and public_max_age_secs not negative"
            );
        }
        if self.files.scan_command.as_deref().is_some_and(|c| c.split_whitespace().next().is_none()) {
            bail!("files.scan_command: give a command, like `clamdscan --no-summary`, or leave it unset");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!("log_format: `{}` is not text or json", self.log_format);
        }
        if self.session.idle_minutes <= 0 || self.session.absolute_hours <= 0 {
            bail!("session: idle_minutes and absolute_hours must be positive");
        }
        Ok(())
    }

    pub fn is_postgres(&self) -> bool {
        self.database_url.is_some()
    }

    pub fn effective_pool_size(&self) -> u32 {
        match self.pool_size {
            0 => 8,
            n => n.max(2),
        }
    }

    pub fn sqlite_path(&self) -> PathBuf {
        self.data.join("shrooms.db")
    }

    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_string(),
            None => {
                let scheme = if self.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{}", self.listen)
            }
        }
    }

    /// Cookies get the `Secure` flag when the instance is reached over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.tls.is_some() || self.base_url().starts_with("https://")
    }
}

/// Keys whose values are numbers; every other value stays a string, so a
/// password of digits remains a password.
const NUMERIC_KEYS: &[&str] = &[
    "idle_minutes",
    "absolute_hours",
    "access_token_seconds",
    "auth_cache_ms",
    "disk_free_percent",
    "keep_daily",
    "keep_weekly",
    "keep_monthly",
    "refresh_token_days",
    "max_failures_per_account",
    "max_failures_per_address",
    "failure_window_minutes",
    "argon2_memory_kib",
    "max_body_bytes",
    "pool_size",
    "port",
    "max_upload_bytes",
    "orphan_grace_minutes",
    "public_max_age_secs",
];

fn parse_env_value(key: &str, v: &str) -> toml::Value {
    if NUMERIC_KEYS.contains(&key) {
        if let Ok(i) = v.trim().parse::<i64>() {
            return toml::Value::Integer(i);
        }
    }
    if v.starts_with('[') {
        // Lists, such as trusted_proxies = ["127.0.0.1"].
        if let Ok(t) = format!("x = {v}").parse::<toml::Table>() {
            if let Some(x) = t.get("x") {
                return x.clone();
            }
        }
    }
    toml::Value::String(v.to_string())
}

fn insert_path(table: &mut toml::Table, keys: &[String], value: toml::Value) {
    match keys {
        [] => {}
        [last] => {
            table.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = table.entry(first.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(t) = entry {
                insert_path(t, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::load_from(&env(&[("SHROOMS_DATA", "/nonexistent-shrooms")])).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8080");
        assert!(c.database_url.is_none());
    }

    #[test]
    fn env_layers_override_and_unknown_keys_fail() {
        let c = Config::load_from(&env(&[
            ("SHROOMS_DATA", "/nonexistent-shrooms"),
            ("SHROOMS__SESSION__IDLE_MINUTES", "5"),
            ("SHROOMS_LISTEN", "127.0.0.1:9999"),
        ]))
        .unwrap();
        assert_eq!(c.session.idle_minutes, 5);
        assert_eq!(c.listen, "127.0.0.1:9999");
        let err = Config::load_from(&env(&[
            ("SHROOMS_DATA", "/nonexistent-shrooms"),
            ("SHROOMS__SESSION__IDLE_MINUTS", "5"),
        ]))
        .unwrap_err();
        assert!(format!("{err:#}").contains("idle_minuts"), "{err:#}");
    }

    #[test]
    fn digit_only_secrets_stay_strings() {
        let c = Config::load_from(&env(&[
            ("SHROOMS_DATA", "/nonexistent-shrooms"),
            ("SHROOMS__SMTP__HOST", "localhost"),
            ("SHROOMS__SMTP__FROM", "a@b.org"),
            ("SHROOMS__SMTP__PASSWORD", "123456"),
            ("SHROOMS__SMTP__PORT", "2525"),
            ("SHROOMS__TRUSTED_PROXIES", "[\"10.0.0.1\"]"),
        ]))
        .unwrap();
        let smtp = c.smtp.unwrap();
        assert_eq!(smtp.password.unwrap().0, "123456");
        assert_eq!(smtp.port, 2525);
        assert_eq!(c.trusted_proxies, vec!["10.0.0.1".to_string()]);
    }

    #[test]
    fn secrets_are_redacted() {
        let c = Config::load_from(&env(&[
            ("SHROOMS_DATA", "/nonexistent-shrooms"),
            ("SHROOMS_DATABASE_URL", "postgres://u:hunter2@localhost/db"),
        ]))
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
