//! Accounts and sign-in: one account per human for the whole instance,
//! password (argon2id), email verification and password reset by single-use
//! tokens, TOTP second factor, browser sessions with idle and absolute
//! expiry, API access and refresh tokens (rotation with reuse detection),
//! personal API keys, and sign-in throttling per account and per address.
//! Everything lives in the database, so any replica can serve any request.

use crate::audit::{self, Change, Who};
use crate::config::Config;
use crate::crypto;
use crate::db::{Db, Tx};
use crate::error::{CoreError, CoreResult, FieldError};
use crate::ids::{parse_id, AccountId, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Clone, Debug, Serialize)]
pub struct Account {
    pub id: AccountId,
    pub email: String,
    pub display_name: String,
    #[serde(skip)]
    pub password_hash: Option<String>,
    pub email_verified: bool,
    pub is_instance_admin: bool,
    pub totp_enabled: bool,
    #[serde(skip)]
    pub totp_secret: Option<String>,
    #[serde(skip)]
    pub totp_last_step: Option<i64>,
    pub lang: Option<String>,
    pub last_org_id: Option<String>,
    pub disabled: bool,
}

const ACCOUNT_COLS: &str = "id, email, display_name, password_hash, email_verified_at, is_instance_admin, totp_secret, totp_enabled_at, totp_last_step, lang, last_org_id, disabled_at";

fn account_from_row(r: &AnyRow) -> CoreResult<Account> {
    Ok(Account {
        id: parse_id(&r.try_get::<String, _>(0)?)?,
        email: r.try_get(1)?,
        display_name: r.try_get(2)?,
        password_hash: r.try_get(3)?,
        email_verified: r.try_get::<Option<i64>, _>(4)?.is_some(),
        is_instance_admin: r.try_get::<i64, _>(5)? != 0,
        totp_secret: r.try_get(6)?,
        totp_enabled: r.try_get::<Option<i64>, _>(7)?.is_some(),
        totp_last_step: r.try_get(8)?,
        lang: r.try_get(9)?,
        last_org_id: r.try_get(10)?,
        disabled: r.try_get::<Option<i64>, _>(11)?.is_some(),
    })
}

impl Account {
    pub fn who(&self, address: &str) -> Who {
        Who { account: Some(self.id), label: self.email.clone(), address: address.to_string() }
    }
    fn audit_view(&self) -> serde_json::Value {
        serde_json::json!({
            "email": self.email, "display_name": self.display_name,
            "is_instance_admin": self.is_instance_admin, "totp_enabled": self.totp_enabled,
            "email_verified": self.email_verified, "disabled": self.disabled,
        })
    }
}

/// Trims and lowercases an email, or says why it is not one.
pub fn normalize_email(raw: &str) -> Result<String, FieldError> {
    let e = raw.trim().to_lowercase();
    let bad = || FieldError::new("email", "Enter a valid email address, like name@example.org.");
    if e.len() > 254 || e.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = e.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(bad());
    }
    Ok(e)
}

pub fn check_password_policy(p: &str) -> Result<(), FieldError> {
    let n = p.chars().count();
    if n < 10 {
        return Err(FieldError::new("password", "Use at least 10 characters."));
    }
    if n > 512 {
        return Err(FieldError::new("password", "Use at most 512 characters."));
    }
    Ok(())
}

/// Each argon2 computation holds `argon2_memory_kib` (19 MiB by default) for
/// its duration: forty sign-ins at once took the server to 624 MB. At most
/// one per core runs at a time (more would not finish sooner); the others
/// wait their turn, so memory stays near cores × 19 MiB under any burst.
fn hashing_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        tokio::sync::Semaphore::new(std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).max(2))
    })
}

pub async fn hash_password_async(password: String, memory_kib: u32) -> CoreResult<String> {
    let _slot = hashing_slots().acquire().await.map_err(|e| CoreError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || crypto::hash_password(&password, memory_kib))
        .await
        .map_err(|e| CoreError::Internal(e.to_string()))
}

pub async fn verify_password_async(password: String, phc: String) -> bool {
    let Ok(_slot) = hashing_slots().acquire().await else { return false };
    tokio::task::spawn_blocking(move || crypto::verify_password(&password, &phc)).await.unwrap_or(false)
}

pub struct NewAccount {
    pub email: String,
    pub display_name: String,
    pub password: Option<String>,
    pub instance_admin: bool,
    pub email_verified: bool,
    pub lang: Option<String>,
}

pub async fn create_account(tx: &mut Tx, who: &Who, cfg: &Config, new: NewAccount) -> CoreResult<Account> {
    let mut errors = Vec::new();
    let email = normalize_email(&new.email).map_err(|e| errors.push(e)).ok();
    let display_name = new.display_name.trim().to_string();
    if let Some(p) = &new.password {
        if let Err(e) = check_password_policy(p) {
            errors.push(e);
        }
    }
    if display_name.chars().count() > 200 {
        errors.push(FieldError::new("display_name", "Use at most 200 characters."));
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let email = email.unwrap_or_default();
    let display_name =
        if display_name.is_empty() { email.split('@').next().unwrap_or("").to_string() } else { display_name };
    let hash = match new.password {
        Some(p) => Some(hash_password_async(p, cfg.security.argon2_memory_kib).await?),
        None => None,
    };
    let id = AccountId::new();
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO accounts (id, email, display_name, password_hash, email_verified_at, is_instance_admin, lang, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(id.to_string())
    .bind(&email)
    .bind(&display_name)
    .bind(&hash)
    .bind(new.email_verified.then_some(now))
    .bind(new.instance_admin as i64)
    .bind(&new.lang)
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(|e| CoreError::from(e).on_conflict("email", "An account with this email already exists."))?;
    let account = get_account_tx(tx, id).await?;
    audit::record(
        tx,
        who,
        Change {
            org: None,
            action: "account.create",
            entity_type: "account",
            entity_id: id.to_string(),
            before: None,
            after: Some(account.audit_view()),
        },
    )
    .await?;
    Ok(account)
}

pub async fn get_account(db: &Db, id: AccountId) -> CoreResult<Account> {
    let r = sqlx::query(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    account_from_row(&r)
}

pub async fn get_account_tx(tx: &mut Tx, id: AccountId) -> CoreResult<Account> {
    let r = sqlx::query(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE id = $1"))
        .bind(id.to_string())
        .fetch_optional(tx.conn())
        .await?
        .ok_or(CoreError::NotFound)?;
    account_from_row(&r)
}

pub async fn find_account_by_email(db: &Db, email: &str) -> CoreResult<Option<Account>> {
    let Ok(email) = normalize_email(email) else {
        return Ok(None);
    };
    let r = sqlx::query(&format!("SELECT {ACCOUNT_COLS} FROM accounts WHERE email = $1"))
        .bind(email)
        .fetch_optional(db.pool())
        .await?;
    r.as_ref().map(account_from_row).transpose()
}

pub async fn set_password(
    tx: &mut Tx,
    who: &Who,
    cfg: &Config,
    account: AccountId,
    password: String,
) -> CoreResult<()> {
    check_password_policy(&password).map_err(|e| CoreError::Validation(vec![e]))?;
    let hash = hash_password_async(password, cfg.security.argon2_memory_kib).await?;
    sqlx::query("UPDATE accounts SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(Timestamp::now().0)
        .bind(account.to_string())
        .execute(tx.conn())
        .await?;
    audit::record(
        tx,
        who,
        Change {
            org: None,
            action: "account.password_set",
            entity_type: "account",
            entity_id: account.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    Ok(())
}

/// Changes a password after checking the current one (counted by sign-in
/// throttling). Every other browser session and every token family of the
/// account is ended: whoever knew the old password is out.
pub async fn change_password(
    db: &Db,
    cfg: &Config,
    who: &Who,
    account: &Account,
    current: &str,
    new: String,
    keep_session: Option<&str>,
) -> CoreResult<()> {
    check_password_policy(&new).map_err(|e| CoreError::Validation(vec![e]))?;
    if password_login(db, cfg, &account.email, current, &who.address).await.is_err() {
        return Err(CoreError::Validation(vec![FieldError::new(
            "current_password",
            "This is not your current password.",
        )]));
    }
    let mut tx = db.begin().await?;
    set_password(&mut tx, who, cfg, account.id, new).await?;
    sqlx::query("DELETE FROM sessions WHERE account_id = $1 AND token_hash <> $2")
        .bind(account.id.to_string())
        .bind(keep_session.unwrap_or(""))
        .execute(tx.conn())
        .await?;
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
        .bind(Timestamp::now().0)
        .bind(account.id.to_string())
        .execute(tx.conn())
        .await?;
    tx.commit().await
}

pub async fn set_lang(db: &Db, account: AccountId, lang: &str) -> CoreResult<()> {
    sqlx::query("UPDATE accounts SET lang = $1 WHERE id = $2")
        .bind(lang)
        .bind(account.to_string())
        .execute(db.pool())
        .await?;
    db.wrote();
    Ok(())
}

pub async fn set_last_org(db: &Db, account: AccountId, org: &str) -> CoreResult<()> {
    sqlx::query("UPDATE accounts SET last_org_id = $1 WHERE id = $2")
        .bind(org)
        .bind(account.to_string())
        .execute(db.pool())
        .await?;
    db.wrote();
    Ok(())
}

pub async fn mark_email_verified(tx: &mut Tx, who: &Who, account: AccountId) -> CoreResult<()> {
    sqlx::query("UPDATE accounts SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
        .bind(Timestamp::now().0)
        .bind(account.to_string())
        .execute(tx.conn())
        .await?;
    audit::record(
        tx,
        who,
        Change {
            org: None,
            action: "account.email_verified",
            entity_type: "account",
            entity_id: account.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    Ok(())
}

// ---------------- throttling ----------------

fn subjects(email: &str, address: &str) -> [String; 2] {
    [format!("account:{}", email.trim().to_lowercase()), format!("address:{address}")]
}

async fn throttle_check(db: &Db, cfg: &Config, email: &str, address: &str) -> CoreResult<()> {
    let window_ms = cfg.security.failure_window_minutes * 60_000;
    let since = Timestamp::now().0 - window_ms;
    let [acct, addr] = subjects(email, address);
    for (subject, max) in [(acct, cfg.security.max_failures_per_account), (addr, cfg.security.max_failures_per_address)]
    {
        let r = sqlx::query("SELECT COUNT(*), MIN(at) FROM login_failures WHERE subject = $1 AND at > $2")
            .bind(&subject)
            .bind(since)
            .fetch_one(db.pool())
            .await?;
        let n: i64 = r.try_get(0)?;
        if n >= max {
            let oldest: i64 = r.try_get::<Option<i64>, _>(1)?.unwrap_or(since);
            let retry = ((oldest + window_ms - Timestamp::now().0) / 1000).max(1);
            return Err(CoreError::TooManyRequests { retry_after_secs: retry });
        }
    }
    Ok(())
}

async fn throttle_fail(db: &Db, email: &str, address: &str) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    let now = Timestamp::now().0;
    for s in subjects(email, address) {
        sqlx::query("INSERT INTO login_failures (id, subject, at) VALUES ($1, $2, $3)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(s)
            .bind(now)
            .execute(tx.conn())
            .await?;
    }
    // Old entries are useless: keep the table small.
    sqlx::query("DELETE FROM login_failures WHERE at < $1").bind(now - 24 * 3_600_000).execute(tx.conn()).await?;
    tx.commit().await
}

/// Refuses when `subject` was counted `max` times within the window, without
/// counting this call (count failures with [`rate_limit`]).
pub async fn rate_check(db: &Db, subject: &str, max: i64, window_minutes: i64) -> CoreResult<()> {
    let window_ms = window_minutes * 60_000;
    let now = Timestamp::now().0;
    let r = sqlx::query("SELECT COUNT(*), MIN(at) FROM login_failures WHERE subject = $1 AND at > $2")
        .bind(subject)
        .bind(now - window_ms)
        .fetch_one(db.pool())
        .await?;
    if r.try_get::<i64, _>(0)? >= max {
        let oldest: i64 = r.try_get::<Option<i64>, _>(1)?.unwrap_or(now);
        return Err(CoreError::TooManyRequests { retry_after_secs: ((oldest + window_ms - now) / 1000).max(1) });
    }
    Ok(())
}

/// Counts one use of `subject` and refuses once `max` uses happened within
/// the window (shared by all replicas: the counter is in the database).
pub async fn rate_limit(db: &Db, subject: &str, max: i64, window_minutes: i64) -> CoreResult<()> {
    let window_ms = window_minutes * 60_000;
    let now = Timestamp::now().0;
    let r = sqlx::query("SELECT COUNT(*), MIN(at) FROM login_failures WHERE subject = $1 AND at > $2")
        .bind(subject)
        .bind(now - window_ms)
        .fetch_one(db.pool())
        .await?;
    if r.try_get::<i64, _>(0)? >= max {
        let oldest: i64 = r.try_get::<Option<i64>, _>(1)?.unwrap_or(now);
        return Err(CoreError::TooManyRequests { retry_after_secs: ((oldest + window_ms - now) / 1000).max(1) });
    }
    sqlx::query("INSERT INTO login_failures (id, subject, at) VALUES ($1, $2, $3)")
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(subject)
        .bind(now)
        .execute(db.pool())
        .await?;
    Ok(())
}

fn wrong_credentials() -> CoreError {
    CoreError::Unauthorized("Wrong email or password.".into())
}

/// Checks email and password (and TOTP when `totp` is given or enrolled and
/// `require_totp` is set). Failures are counted per account and per address.
pub async fn password_login(db: &Db, cfg: &Config, email: &str, password: &str, address: &str) -> CoreResult<Account> {
    throttle_check(db, cfg, email, address).await?;
    let account = find_account_by_email(db, email).await?;
    let ok = match &account {
        Some(a) if !a.disabled => match &a.password_hash {
            Some(h) => verify_password_async(password.to_string(), h.clone()).await,
            None => false,
        },
        _ => {
            // Same work whether or not the account exists: no timing oracle.
            let _ = verify_password_async(password.to_string(), dummy_hash(cfg).to_string()).await;
            false
        }
    };
    match account {
        Some(a) if ok => Ok(a),
        _ => {
            throttle_fail(db, email, address).await?;
            Err(wrong_credentials())
        }
    }
}

fn dummy_hash(cfg: &Config) -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| crypto::hash_password("not a real password", cfg.security.argon2_memory_kib))
}

/// Checks a TOTP code for an enrolled account; a code is accepted once.
pub async fn check_totp(db: &Db, cfg: &Config, account: &Account, code: &str, address: &str) -> CoreResult<()> {
    throttle_check(db, cfg, &account.email, address).await?;
    let secret = account
        .totp_secret
        .as_deref()
        .and_then(crypto::base32_decode)
        .ok_or_else(|| CoreError::BadRequest("no second factor is enrolled".into()))?;
    let now = Timestamp::now().0 / 1000;
    match crypto::totp_match(&secret, code, now) {
        Some(step) if account.totp_last_step.is_none_or(|last| step > last) => {
            let mut tx = db.begin().await?;
            let n = sqlx::query("UPDATE accounts SET totp_last_step = $1 WHERE id = $2 AND (totp_last_step IS NULL OR totp_last_step < $1)")
                .bind(step)
                .bind(account.id.to_string())
                .execute(tx.conn())
                .await?
                .rows_affected();
            tx.commit().await?;
            if n == 1 {
                return Ok(());
            }
            throttle_fail(db, &account.email, address).await?;
            Err(CoreError::Unauthorized("This code was already used; wait for the next one.".into()))
        }
        _ => {
            throttle_fail(db, &account.email, address).await?;
            Err(CoreError::Unauthorized("Wrong second-factor code.".into()))
        }
    }
}

/// Starts TOTP enrolment: stores a new secret (not yet active) and returns it in base32.
pub async fn totp_begin(db: &Db, account: AccountId) -> CoreResult<String> {
    let secret = crypto::base32_encode(&crypto::random_bytes::<20>());
    sqlx::query("UPDATE accounts SET totp_secret = $1, totp_enabled_at = NULL, totp_last_step = NULL WHERE id = $2 AND totp_enabled_at IS NULL")
        .bind(&secret)
        .bind(account.to_string())
        .execute(db.pool())
        .await?;
    db.wrote();
    Ok(secret)
}

/// Confirms enrolment with a first code from the authenticator app.
pub async fn totp_confirm(db: &Db, who: &Who, account: &Account, code: &str) -> CoreResult<()> {
    if account.totp_enabled {
        return Err(CoreError::Conflict { field: None, message: "A second factor is already enrolled.".into() });
    }
    let secret = account
        .totp_secret
        .as_deref()
        .and_then(crypto::base32_decode)
        .ok_or_else(|| CoreError::BadRequest("start the enrolment first".into()))?;
    let step = crypto::totp_match(&secret, code, Timestamp::now().0 / 1000).ok_or_else(|| {
        CoreError::validation("code", "This code does not match; check the time on your phone and try again.")
    })?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE accounts SET totp_enabled_at = $1, totp_last_step = $2 WHERE id = $3")
        .bind(Timestamp::now().0)
        .bind(step)
        .bind(account.id.to_string())
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: None,
            action: "account.totp_enabled",
            entity_type: "account",
            entity_id: account.id.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await
}

pub async fn totp_disable(db: &Db, cfg: &Config, who: &Who, account: &Account, code: &str) -> CoreResult<()> {
    check_totp(db, cfg, account, code, &who.address).await?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE accounts SET totp_enabled_at = NULL, totp_secret = NULL, totp_last_step = NULL WHERE id = $1")
        .bind(account.id.to_string())
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: None,
            action: "account.totp_disabled",
            entity_type: "account",
            entity_id: account.id.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await
}

// ---------------- browser sessions ----------------

pub struct Session {
    pub token_hash: String,
    pub account: Account,
    pub second_factor_pending: bool,
}

pub async fn create_session(
    db: &Db,
    cfg: &Config,
    account: AccountId,
    second_factor_pending: bool,
    user_agent: &str,
    address: &str,
) -> CoreResult<String> {
    let token = crypto::random_token();
    let now = Timestamp::now();
    sqlx::query(
        "INSERT INTO sessions (token_hash, account_id, second_factor_pending, created_at, last_seen_at, expires_at, user_agent, address) VALUES ($1, $2, $3, $4, $4, $5, $6, $7)",
    )
    .bind(crypto::token_hash(&token))
    .bind(account.to_string())
    .bind(second_factor_pending as i64)
    .bind(now.0)
    .bind(now.plus_secs(cfg.session.absolute_hours * 3600).0)
    .bind(user_agent.chars().take(300).collect::<String>())
    .bind(address)
    .execute(db.pool())
    .await?;
    Ok(token)
}

/// Finds a live session; expired ones (idle or absolute) are deleted.
pub async fn find_session(db: &Db, cfg: &Config, token: &str) -> CoreResult<Option<Session>> {
    let hash = crypto::token_hash(token);
    let Some(r) = sqlx::query(
        "SELECT account_id, second_factor_pending, last_seen_at, expires_at FROM sessions WHERE token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    let now = Timestamp::now().0;
    let last_seen: i64 = r.try_get(2)?;
    let expires: i64 = r.try_get(3)?;
    if now > expires || now > last_seen + cfg.session.idle_minutes * 60_000 {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(&hash).execute(db.pool()).await?;
        return Ok(None);
    }
    let account = get_account(db, parse_id(&r.try_get::<String, _>(0)?)?).await?;
    if account.disabled {
        return Ok(None);
    }
    // Touch at most once a minute: reads stay reads.
    if now - last_seen > 60_000 {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(now)
            .bind(&hash)
            .execute(db.pool())
            .await?;
    }
    Ok(Some(Session { token_hash: hash, account, second_factor_pending: r.try_get::<i64, _>(1)? != 0 }))
}

pub async fn complete_second_factor(db: &Db, token_hash: &str) -> CoreResult<()> {
    sqlx::query("UPDATE sessions SET second_factor_pending = 0 WHERE token_hash = $1")
        .bind(token_hash)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn end_session(db: &Db, token_hash: &str) -> CoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(db.pool()).await?;
    Ok(())
}

/// Signs the account out everywhere: browser sessions, refresh token families
/// (and so the access tokens tied to them).
pub async fn end_all_sessions(tx: &mut Tx, who: &Who, account: AccountId) -> CoreResult<()> {
    sqlx::query("DELETE FROM sessions WHERE account_id = $1").bind(account.to_string()).execute(tx.conn()).await?;
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
        .bind(Timestamp::now().0)
        .bind(account.to_string())
        .execute(tx.conn())
        .await?;
    audit::record(
        tx,
        who,
        Change {
            org: None,
            action: "account.logout_everywhere",
            entity_type: "account",
            entity_id: account.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    Ok(())
}

// ---------------- API tokens ----------------

#[derive(Serialize, Deserialize)]
pub struct AccessClaims {
    pub sub: String,
    pub fam: String,
    pub iat: i64,
    pub exp: i64,
    pub typ: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

async fn issue_in_family(
    conn: &mut sqlx::AnyConnection,
    cfg: &Config,
    key: &[u8],
    account: AccountId,
    family: &str,
) -> CoreResult<TokenPair> {
    let now = Timestamp::now();
    let refresh = crypto::random_token();
    sqlx::query("INSERT INTO refresh_tokens (token_hash, family_id, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(crypto::token_hash(&refresh))
        .bind(family)
        .bind(account.to_string())
        .bind(now.0)
        .bind(now.plus_secs(cfg.security.refresh_token_days * 86_400).0)
        .execute(&mut *conn)
        .await?;
    let secs = now.0 / 1000;
    let claims = AccessClaims {
        sub: account.to_string(),
        fam: family.to_string(),
        iat: secs,
        exp: secs + cfg.security.access_token_seconds,
        typ: "access".into(),
    };
    Ok(TokenPair {
        access_token: crypto::jwt_sign(key, &claims),
        refresh_token: refresh,
        token_type: "Bearer",
        expires_in: cfg.security.access_token_seconds,
    })
}

pub async fn issue_tokens(db: &Db, cfg: &Config, key: &[u8], account: AccountId) -> CoreResult<TokenPair> {
    let mut tx = db.begin().await?;
    let family = uuid::Uuid::now_v7().to_string();
    let pair = issue_in_family(tx.conn(), cfg, key, account, &family).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Rotates a refresh token. Presenting one that was already used means it
/// leaked: the whole family is revoked and the caller must sign in again.
pub async fn refresh_tokens(db: &Db, cfg: &Config, key: &[u8], refresh: &str) -> CoreResult<TokenPair> {
    let hash = crypto::token_hash(refresh);
    let mut tx = db.begin().await?;
    let row = sqlx::query(
        "SELECT family_id, account_id, expires_at, used_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
    )
    .bind(&hash)
    .fetch_optional(tx.conn())
    .await?
    .ok_or_else(|| CoreError::Unauthorized("Unknown refresh token.".into()))?;
    let family: String = row.try_get(0)?;
    let account: AccountId = parse_id(&row.try_get::<String, _>(1)?)?;
    let now = Timestamp::now().0;
    if row.try_get::<Option<i64>, _>(4)?.is_some() {
        return Err(CoreError::Unauthorized("This refresh token was revoked; sign in again.".into()));
    }
    if row.try_get::<Option<i64>, _>(3)?.is_some() {
        revoke_family(&mut tx, &family, account, false).await?;
        tx.commit().await?;
        return Err(CoreError::Unauthorized(
            "This refresh token was already used; every token of its family is now revoked. Sign in again.".into(),
        ));
    }
    if now > row.try_get::<i64, _>(2)? {
        return Err(CoreError::Unauthorized("This refresh token has expired; sign in again.".into()));
    }
    let acct = get_account_tx(&mut tx, account).await?;
    if acct.disabled {
        return Err(CoreError::Unauthorized("This account is disabled.".into()));
    }
    // Conditional on still being unused: of two concurrent refreshes with the
    // same token (PostgreSQL, several replicas), exactly one wins; the other
    // is a reuse.
    let won = sqlx::query(
        "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(&hash)
    .execute(tx.conn())
    .await?
    .rows_affected()
        == 1;
    if !won {
        drop(tx);
        let mut tx = db.begin().await?;
        revoke_family(&mut tx, &family, account, true).await?;
        tx.commit().await?;
        return Err(CoreError::Unauthorized("This refresh token was already used; sign in again.".into()));
    }
    let pair = issue_in_family(tx.conn(), cfg, key, account, &family).await?;
    tx.commit().await?;
    Ok(pair)
}

/// A refresh token was presented twice: it leaked. Every token of its family
/// is revoked (and the access tokens tied to it stop working), audited.
async fn revoke_family(tx: &mut Tx, family: &str, account: AccountId, race: bool) -> CoreResult<()> {
    sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL")
        .bind(Timestamp::now().0)
        .bind(family)
        .execute(tx.conn())
        .await?;
    audit::record(
        tx,
        &Who::system("token-reuse-detector"),
        Change {
            org: None,
            action: "account.refresh_reuse_revoked",
            entity_type: "account",
            entity_id: account.to_string(),
            before: None,
            after: Some(serde_json::json!({"family": family, "race": race})),
        },
    )
    .await?;
    Ok(())
}

/// Validates an access token: signature, expiry, and that its family was not revoked.
pub async fn verify_access_token(
    db: &Db,
    key: &[u8],
    token: &str,
    cache: &crate::cache::TtlCache<(String, String), Account>,
) -> CoreResult<Account> {
    let bad = || CoreError::Unauthorized("Invalid or expired access token.".into());
    let claims: AccessClaims = crypto::jwt_verify(key, token).ok_or_else(bad)?;
    if claims.typ != "access" || claims.exp < Timestamp::now().0 / 1000 {
        return Err(bad());
    }
    let cache_key = (claims.sub, claims.fam);
    if let Some(a) = cache.get(db, &cache_key) {
        return Ok(a);
    }
    let generation = db.generation();
    let account = read_token_account(db, &cache_key.0, &cache_key.1).await?.ok_or_else(bad)?;
    cache.put(generation, cache_key, account.clone());
    Ok(account)
}

/// The account of an access token, unless it is disabled or the token's family was revoked.
async fn read_token_account(db: &Db, sub: &str, fam: &str) -> CoreResult<Option<Account>> {
    // Account and revocation of the token's family in one round trip: this runs on every API request.
    let r = sqlx::query(&format!(
        "SELECT {ACCOUNT_COLS}, (SELECT COUNT(*) FROM refresh_tokens WHERE family_id = $2 AND revoked_at IS NOT NULL) FROM accounts WHERE id = $1"
    ))
    .bind(sub)
    .bind(fam)
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = r else { return Ok(None) };
    let account = account_from_row(&r)?;
    if r.try_get::<i64, _>(12)? > 0 || account.disabled {
        return Ok(None);
    }
    Ok(Some(account))
}

// ---------------- personal API keys ----------------

#[derive(Serialize, utoipa::ToSchema)]
pub struct ApiKeyInfo {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
    pub revoked: bool,
}

pub const API_KEY_PREFIX: &str = "shr_";

pub async fn create_api_key(db: &Db, who: &Who, account: AccountId, name: &str) -> CoreResult<(ApiKeyInfo, String)> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(CoreError::validation("name", "Give the key a name of 1 to 100 characters."));
    }
    let prefix = crypto::hex(&crypto::random_bytes::<4>());
    let secret = format!("{API_KEY_PREFIX}{prefix}_{}", crypto::random_token());
    let id = uuid::Uuid::now_v7().to_string();
    let now = Timestamp::now();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO api_keys (id, account_id, name, prefix, key_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(account.to_string())
    .bind(name)
    .bind(&prefix)
    .bind(crypto::token_hash(&secret))
    .bind(now.0)
    .execute(tx.conn())
    .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: None,
            action: "api_key.create",
            entity_type: "api_key",
            entity_id: id.clone(),
            before: None,
            after: Some(serde_json::json!({"name": name, "prefix": prefix})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((
        ApiKeyInfo {
            id,
            name: name.to_string(),
            prefix,
            created_at: now.rfc3339(),
            last_used_at: None,
            revoked: false,
        },
        secret,
    ))
}

pub async fn list_api_keys(db: &Db, account: AccountId) -> CoreResult<Vec<ApiKeyInfo>> {
    let rows = sqlx::query("SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_keys WHERE account_id = $1 ORDER BY created_at DESC LIMIT 200")
        .bind(account.to_string())
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(ApiKeyInfo {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                prefix: r.try_get(2)?,
                created_at: Timestamp(r.try_get(3)?).rfc3339(),
                last_used_at: r.try_get::<Option<i64>, _>(4)?.map(|t| Timestamp(t).rfc3339()),
                revoked: r.try_get::<Option<i64>, _>(5)?.is_some(),
            })
        })
        .collect()
}

pub async fn revoke_api_key(db: &Db, who: &Who, account: AccountId, id: &str) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    let n = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL")
        .bind(Timestamp::now().0)
        .bind(id)
        .bind(account.to_string())
        .execute(tx.conn())
        .await?
        .rows_affected();
    if n == 0 {
        return Err(CoreError::NotFound);
    }
    audit::record(
        &mut tx,
        who,
        Change {
            org: None,
            action: "api_key.revoke",
            entity_type: "api_key",
            entity_id: id.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await
}

pub async fn verify_api_key(db: &Db, secret: &str) -> CoreResult<Account> {
    let bad = || CoreError::Unauthorized("Invalid or revoked API key.".into());
    let hash = crypto::token_hash(secret);
    let r = sqlx::query("SELECT account_id, last_used_at, revoked_at FROM api_keys WHERE key_hash = $1")
        .bind(&hash)
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(bad)?;
    if r.try_get::<Option<i64>, _>(2)?.is_some() {
        return Err(bad());
    }
    let now = Timestamp::now().0;
    if r.try_get::<Option<i64>, _>(1)?.is_none_or(|t| now - t > 300_000) {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE key_hash = $2")
            .bind(now)
            .bind(&hash)
            .execute(db.pool())
            .await?;
    }
    let account = get_account(db, parse_id(&r.try_get::<String, _>(0)?)?).await?;
    if account.disabled {
        return Err(bad());
    }
    Ok(account)
}

// ---------------- single-use tokens (email verification, password reset) ----------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    ResetPassword,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::ResetPassword => "reset_password",
        }
    }
    fn ttl_secs(self) -> i64 {
        match self {
            TokenPurpose::VerifyEmail => 7 * 86_400,
            TokenPurpose::ResetPassword => 3_600,
        }
    }
}

pub async fn issue_one_time_token(tx: &mut Tx, account: AccountId, purpose: TokenPurpose) -> CoreResult<String> {
    let token = crypto::random_token();
    let now = Timestamp::now();
    sqlx::query("INSERT INTO one_time_tokens (token_hash, account_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(crypto::token_hash(&token))
        .bind(account.to_string())
        .bind(purpose.as_str())
        .bind(now.0)
        .bind(now.plus_secs(purpose.ttl_secs()).0)
        .execute(tx.conn())
        .await?;
    Ok(token)
}

/// Consumes a token: it works once, for its purpose, before it expires.
pub async fn consume_one_time_token(tx: &mut Tx, token: &str, purpose: TokenPurpose) -> CoreResult<AccountId> {
    let now = Timestamp::now().0;
    let r = sqlx::query("UPDATE one_time_tokens SET used_at = $1 WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1 RETURNING account_id")
        .bind(now)
        .bind(crypto::token_hash(token))
        .bind(purpose.as_str())
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| CoreError::BadRequest("This link is invalid, was already used, or has expired. Ask for a new one.".into()))?;
    parse_id(&r.try_get::<String, _>(0)?)
}
