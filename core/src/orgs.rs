//! Organisations (tenants), their roles and memberships. An account belongs
//! to any number of organisations, with one role in each.

use crate::audit::{self, Change, Who};
use crate::db::{Db, Tx};
use crate::error::{CoreError, CoreResult, FieldError};
use crate::identity;
use crate::ids::{parse_id, AccountId, OrgId, RoleId, Timestamp};
use crate::module::Modules;
use crate::permissions::{Access, BuiltinRole, CanAdmin, Permissions};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Org {
    #[schema(value_type = String)]
    pub id: OrgId,
    pub slug: String,
    pub name: String,
    pub timezone: String,
    pub currency: String,
    pub logo_url: Option<String>,
    pub color_primary: Option<String>,
    pub color_accent: Option<String>,
    pub created_at: String,
}

const ORG_COLS: &str = "id, slug, name, timezone, currency, logo_url, color_primary, color_accent, created_at";

fn org_from_row(r: &AnyRow) -> CoreResult<Org> {
    Ok(Org {
        id: parse_id(&r.try_get::<String, _>(0)?)?,
        slug: r.try_get(1)?,
        name: r.try_get(2)?,
        timezone: r.try_get(3)?,
        currency: r.try_get(4)?,
        logo_url: r.try_get(5)?,
        color_primary: r.try_get(6)?,
        color_accent: r.try_get(7)?,
        created_at: Timestamp(r.try_get(8)?).rfc3339(),
    })
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrg {
    pub name: String,
    /// URL name; derived from the name when absent.
    #[serde(default)]
    pub slug: Option<String>,
    /// IANA time zone; default: the instance's (initially Europe/Paris).
    #[serde(default)]
    pub timezone: Option<String>,
    /// ISO 4217 code, default EUR.
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrgPatch {
    pub name: Option<String>,
    pub timezone: Option<String>,
    pub currency: Option<String>,
    pub logo_url: Option<String>,
    pub color_primary: Option<String>,
    pub color_accent: Option<String>,
}

pub fn slugify(name: &str) -> String {
    let mut s = String::new();
    for c in name.trim().to_lowercase().chars() {
        let c = match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            c => c,
        };
        if c.is_ascii_alphanumeric() {
            s.push(c);
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
    }
    let s = s.trim_end_matches('-').chars().take(48).collect::<String>();
    if s.is_empty() {
        "org".into()
    } else {
        s
    }
}

fn valid_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].chars().all(|x| x.is_ascii_hexdigit())
}

fn validate_common(name: Option<&str>, tz: Option<&str>, cur: Option<&str>, errors: &mut Vec<FieldError>) {
    if let Some(n) = name {
        if n.trim().is_empty() || n.chars().count() > 120 {
            errors.push(FieldError::new("name", "Give a name of 1 to 120 characters."));
        }
    }
    if let Some(t) = tz {
        if !crate::cron::valid_zone(t) {
            errors.push(FieldError::new("timezone", "Use an IANA time zone like Europe/Paris."));
        }
    }
    if let Some(c) = cur {
        if c.len() != 3 || !c.chars().all(|x| x.is_ascii_uppercase()) {
            errors.push(FieldError::new("currency", "Use a three-letter ISO 4217 code like EUR."));
        }
    }
}

/// Creates an organisation with its built-in roles; `owner` becomes its owner.
pub async fn create_org(
    tx: &mut Tx,
    who: &Who,
    _admin: &crate::permissions::InstanceAdmin,
    modules: &Modules,
    new: NewOrg,
    owner: Option<AccountId>,
) -> CoreResult<Org> {
    let mut errors = Vec::new();
    validate_common(Some(&new.name), new.timezone.as_deref(), new.currency.as_deref(), &mut errors);
    let explicit_slug = new.slug.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if let Some(s) = explicit_slug {
        if s.len() > 48 || !s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') || s.len() == 36
        {
            errors.push(FieldError::new("slug", "Use 1 to 48 lowercase letters, digits and hyphens."));
        }
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let base = explicit_slug.map(str::to_string).unwrap_or_else(|| slugify(&new.name));
    let mut slug = base.clone();
    if explicit_slug.is_none() {
        let mut n = 1;
        while sqlx::query("SELECT 1 FROM orgs WHERE slug = $1").bind(&slug).fetch_optional(tx.conn()).await?.is_some() {
            n += 1;
            slug = format!("{base}-{n}");
        }
    }
    let id = OrgId::new();
    let now = Timestamp::now().0;
    let default_zone: String =
        sqlx::query("SELECT time_zone FROM instance WHERE id = 1").fetch_one(tx.conn()).await?.try_get(0)?;
    sqlx::query(&format!(
        "INSERT INTO orgs ({ORG_COLS}, updated_at) VALUES ($1, $2, $3, $4, $5, NULL, NULL, NULL, $6, $6)"
    ))
    .bind(id.to_string())
    .bind(&slug)
    .bind(new.name.trim())
    .bind(new.timezone.as_deref().unwrap_or(&default_zone))
    .bind(new.currency.as_deref().unwrap_or("EUR"))
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(|e| CoreError::from(e).on_conflict("slug", "This URL name is already taken."))?;
    for role in BuiltinRole::ALL {
        sqlx::query("INSERT INTO roles (id, org_id, key, name, builtin, permissions, require_totp) VALUES ($1, $2, $3, $4, 1, $5, 0)")
            .bind(RoleId::new().to_string())
            .bind(id.to_string())
            .bind(role.key())
            .bind(role.key())
            .bind(modules.default_permissions(role).to_json())
            .execute(tx.conn())
            .await?;
    }
    let org = get_org_tx(tx, id).await?;
    crate::schedules::create_for_org(tx, modules, id, &org.timezone).await?;
    audit::record(
        tx,
        who,
        Change {
            org: Some(id),
            action: "org.create",
            entity_type: "org",
            entity_id: id.to_string(),
            before: None,
            after: Some(serde_json::to_value(&org).unwrap_or_default()),
        },
    )
    .await?;
    if let Some(owner) = owner {
        add_member_tx(tx, who, id, owner, "owner").await?;
    }
    Ok(org)
}

async fn get_org_tx(tx: &mut Tx, id: OrgId) -> CoreResult<Org> {
    let r = sqlx::query(&format!("SELECT {ORG_COLS} FROM orgs WHERE id = $1"))
        .bind(id.to_string())
        .fetch_one(tx.conn())
        .await?;
    org_from_row(&r)
}

/// Finds an organisation by id or URL name.
pub async fn find_org(db: &Db, key: &str) -> CoreResult<Option<Org>> {
    let col = if key.len() == 36 && key.parse::<uuid::Uuid>().is_ok() { "id" } else { "slug" };
    let r = sqlx::query(&format!("SELECT {ORG_COLS} FROM orgs WHERE {col} = $1"))
        .bind(key)
        .fetch_optional(db.pool())
        .await?;
    r.as_ref().map(org_from_row).transpose()
}

pub async fn update_org(db: &Db, who: &Who, cap: &CanAdmin, patch: OrgPatch) -> CoreResult<Org> {
    let mut errors = Vec::new();
    validate_common(patch.name.as_deref(), patch.timezone.as_deref(), patch.currency.as_deref(), &mut errors);
    for (f, v) in [("color_primary", &patch.color_primary), ("color_accent", &patch.color_accent)] {
        if let Some(c) = v {
            if !c.is_empty() && !valid_color(c) {
                errors.push(FieldError::new(f, "Use a colour like #2e7d32."));
            }
        }
    }
    if let Some(u) = &patch.logo_url {
        if !u.is_empty() && !(u.starts_with("https://") || u.starts_with('/')) {
            errors.push(FieldError::new("logo_url", "Use an https:// address or a path on this site."));
        }
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let mut tx = db.begin().await?;
    let before = get_org_tx(&mut tx, cap.org()).await?;
    let opt = |v: &Option<String>, old: &Option<String>| match v {
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s.clone()),
        None => old.clone(),
    };
    sqlx::query("UPDATE orgs SET name = $1, timezone = $2, currency = $3, logo_url = $4, color_primary = $5, color_accent = $6, updated_at = $7 WHERE id = $8")
        .bind(patch.name.as_deref().map(str::trim).unwrap_or(&before.name))
        .bind(patch.timezone.as_deref().unwrap_or(&before.timezone))
        .bind(patch.currency.as_deref().unwrap_or(&before.currency))
        .bind(opt(&patch.logo_url, &before.logo_url))
        .bind(opt(&patch.color_primary, &before.color_primary))
        .bind(opt(&patch.color_accent, &before.color_accent))
        .bind(Timestamp::now().0)
        .bind(cap.org().to_string())
        .execute(tx.conn())
        .await?;
    let after = get_org_tx(&mut tx, cap.org()).await?;
    if after.timezone != before.timezone {
        crate::schedules::zone_changed(&mut tx, Some(cap.org()), &after.timezone).await?;
    }
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "org.update",
            entity_type: "org",
            entity_id: cap.org().to_string(),
            before: serde_json::to_value(&before).ok(),
            after: serde_json::to_value(&after).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Organisations an account can open: its memberships, or all for an instance administrator.
pub async fn list_orgs(
    db: &Db,
    account: AccountId,
    all: bool,
    after_slug: Option<&str>,
    limit: i64,
) -> CoreResult<Vec<Org>> {
    let limit = limit.clamp(1, 200);
    let after = after_slug.unwrap_or("");
    let rows = if all {
        sqlx::query(&format!("SELECT {ORG_COLS} FROM orgs WHERE slug > $1 ORDER BY slug LIMIT {limit}"))
            .bind(after)
            .fetch_all(db.pool())
            .await?
    } else {
        sqlx::query(&format!(
            "SELECT {} FROM orgs o JOIN memberships m ON m.org_id = o.id WHERE m.account_id = $1 AND o.slug > $2 ORDER BY o.slug LIMIT {limit}",
            ORG_COLS.split(", ").map(|c| format!("o.{c}")).collect::<Vec<_>>().join(", ")
        ))
        .bind(account.to_string())
        .bind(after)
        .fetch_all(db.pool())
        .await?
    };
    rows.iter().map(org_from_row).collect()
}

// ---------------- roles ----------------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Role {
    #[schema(value_type = String)]
    pub id: RoleId,
    pub key: String,
    pub name: String,
    pub builtin: bool,
    #[schema(value_type = Object)]
    pub permissions: Permissions,
    pub require_totp: bool,
}

fn role_from_row(r: &AnyRow) -> CoreResult<Role> {
    role_from_row_at(r, 0)
}

fn role_from_row_at(r: &AnyRow, o: usize) -> CoreResult<Role> {
    Ok(Role {
        id: parse_id(&r.try_get::<String, _>(o)?)?,
        key: r.try_get(o + 1)?,
        name: r.try_get(o + 2)?,
        builtin: r.try_get::<i64, _>(o + 3)? != 0,
        permissions: Permissions::from_json(&r.try_get::<String, _>(o + 4)?),
        require_totp: r.try_get::<i64, _>(o + 5)? != 0,
    })
}

/// The organisation named by `key` (id or URL name) and the account's role
/// in it, in one round trip: this runs on every organisation request.
pub async fn find_org_with_role(db: &Db, key: &str, account: AccountId) -> CoreResult<Option<(Org, Option<Role>)>> {
    let col = if key.len() == 36 && key.parse::<uuid::Uuid>().is_ok() { "id" } else { "slug" };
    let org_cols = ORG_COLS.split(", ").map(|c| format!("o.{c}")).collect::<Vec<_>>().join(", ");
    let r = sqlx::query(&format!(
        "SELECT {org_cols}, {ROLE_COLS} FROM orgs o LEFT JOIN memberships m ON m.org_id = o.id AND m.account_id = $2 \
         LEFT JOIN roles r ON r.id = m.role_id WHERE o.{col} = $1"
    ))
    .bind(key)
    .bind(account.to_string())
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = r else { return Ok(None) };
    let org = org_from_row(&r)?;
    let role = match r.try_get::<Option<String>, _>(9)? {
        Some(_) => Some(role_from_row_at(&r, 9)?),
        None => None,
    };
    Ok(Some((org, role)))
}

const ROLE_COLS: &str = "r.id, r.key, r.name, r.builtin, r.permissions, r.require_totp";

pub async fn list_roles(db: &Db, cap: &crate::permissions::CanRead) -> CoreResult<Vec<Role>> {
    let org = cap.org();
    let rows =
        sqlx::query(&format!("SELECT {ROLE_COLS} FROM roles r WHERE r.org_id = $1 ORDER BY r.builtin DESC, r.key"))
            .bind(org.to_string())
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(role_from_row).collect()
}

/// The role of an account in an organisation, if it is a member.
pub async fn membership_role(db: &Db, org: OrgId, account: AccountId) -> CoreResult<Option<Role>> {
    let r = sqlx::query(&format!("SELECT {ROLE_COLS} FROM memberships m JOIN roles r ON r.id = m.role_id WHERE m.org_id = $1 AND m.account_id = $2"))
        .bind(org.to_string())
        .bind(account.to_string())
        .fetch_optional(db.pool())
        .await?;
    r.as_ref().map(role_from_row).transpose()
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub key: Option<String>,
    pub name: Option<String>,
    /// Module id → none | read | write | admin.
    #[schema(value_type = Option<Object>)]
    pub permissions: Option<std::collections::BTreeMap<String, Access>>,
    pub require_totp: Option<bool>,
}

pub async fn save_role(
    db: &Db,
    who: &Who,
    cap: &CanAdmin,
    modules: &Modules,
    existing_key: Option<&str>,
    input: RoleInput,
) -> CoreResult<Role> {
    let mut errors = Vec::new();
    if let Some(p) = &input.permissions {
        for m in p.keys() {
            if modules.get(m).is_none() {
                errors.push(FieldError::new("permissions", format!("Unknown module `{m}`.")));
            }
        }
    }
    let mut tx = db.begin().await?;
    let before = match existing_key {
        Some(k) => Some(
            sqlx::query(&format!("SELECT {ROLE_COLS} FROM roles r WHERE r.org_id = $1 AND r.key = $2"))
                .bind(cap.org().to_string())
                .bind(k)
                .fetch_optional(tx.conn())
                .await?
                .as_ref()
                .map(role_from_row)
                .transpose()?
                .ok_or(CoreError::NotFound)?,
        ),
        None => None,
    };
    if before.as_ref().is_some_and(|r| r.key == "owner") && input.permissions.is_some() {
        errors.push(FieldError::new("permissions", "The owner role always has every permission."));
    }
    let key = match (&before, &input.key) {
        (Some(b), _) => b.key.clone(),
        (None, Some(k))
            if !k.is_empty()
                && k.len() <= 40
                && k.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_') =>
        {
            k.clone()
        }
        (None, _) => {
            errors.push(FieldError::new("key", "Use 1 to 40 lowercase letters, digits, - or _."));
            String::new()
        }
    };
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let name = input.name.clone().or(before.as_ref().map(|b| b.name.clone())).unwrap_or_else(|| key.clone());
    let mut perms = before.as_ref().map(|b| b.permissions.clone()).unwrap_or_default();
    if let Some(p) = input.permissions {
        perms = Permissions(p);
    }
    let require_totp = input.require_totp.or(before.as_ref().map(|b| b.require_totp)).unwrap_or(false);
    match &before {
        Some(b) => {
            sqlx::query("UPDATE roles SET name = $1, permissions = $2, require_totp = $3 WHERE id = $4")
                .bind(&name)
                .bind(perms.to_json())
                .bind(require_totp as i64)
                .bind(b.id.to_string())
                .execute(tx.conn())
                .await?;
        }
        None => {
            sqlx::query("INSERT INTO roles (id, org_id, key, name, builtin, permissions, require_totp) VALUES ($1, $2, $3, $4, 0, $5, $6)")
                .bind(RoleId::new().to_string())
                .bind(cap.org().to_string())
                .bind(&key)
                .bind(&name)
                .bind(perms.to_json())
                .bind(require_totp as i64)
                .execute(tx.conn())
                .await
                .map_err(|e| CoreError::from(e).on_conflict("key", "A role with this key exists."))?;
        }
    }
    let after = role_from_row(
        &sqlx::query(&format!("SELECT {ROLE_COLS} FROM roles r WHERE r.org_id = $1 AND r.key = $2"))
            .bind(cap.org().to_string())
            .bind(&key)
            .fetch_one(tx.conn())
            .await?,
    )?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: if before.is_some() { "role.update" } else { "role.create" },
            entity_type: "role",
            entity_id: after.id.to_string(),
            before: before.as_ref().and_then(|b| serde_json::to_value(b).ok()),
            after: serde_json::to_value(&after).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

// ---------------- memberships ----------------

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Member {
    pub account_id: String,
    pub email: String,
    pub display_name: String,
    pub role: String,
}

async fn add_member_tx(tx: &mut Tx, who: &Who, org: OrgId, account: AccountId, role_key: &str) -> CoreResult<()> {
    let role = sqlx::query("SELECT id FROM roles WHERE org_id = $1 AND key = $2")
        .bind(org.to_string())
        .bind(role_key)
        .fetch_optional(tx.conn())
        .await?
        .ok_or_else(|| CoreError::validation("role", "Unknown role."))?;
    let role_id: String = role.try_get(0)?;
    sqlx::query("INSERT INTO memberships (org_id, account_id, role_id, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (org_id, account_id) DO UPDATE SET role_id = $3")
        .bind(org.to_string())
        .bind(account.to_string())
        .bind(&role_id)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    audit::record(
        tx,
        who,
        Change {
            org: Some(org),
            action: "membership.set",
            entity_type: "account",
            entity_id: account.to_string(),
            before: None,
            after: Some(serde_json::json!({"role": role_key})),
        },
    )
    .await?;
    Ok(())
}

/// Gives an account (found by email, or created without a password and
/// invited by mail) a role in the organisation.
pub async fn set_member(
    st: &crate::web::AppState,
    who: &Who,
    cap: &CanAdmin,
    email: &str,
    role_key: &str,
) -> CoreResult<Member> {
    let (state_db, cfg) = (&st.db, &st.cfg);
    let existing = identity::find_account_by_email(state_db, email).await?;
    let current = match &existing {
        Some(a) => membership_role(state_db, cap.org(), a.id).await?.map(|r| r.key),
        None => None,
    };
    let touches_owner = role_key == "owner" || current.as_deref() == Some("owner");
    if touches_owner && !actor_is_owner(state_db, cap).await? {
        return Err(CoreError::Forbidden("Only an owner can give or take away ownership.".into()));
    }
    let mut tx = state_db.begin().await?;
    if current.as_deref() == Some("owner") && role_key != "owner" {
        if let Some(a) = &existing {
            ensure_another_owner(&mut tx, cap.org(), a.id).await?;
        }
    }
    let account = match existing {
        Some(a) => a,
        None => {
            let a = identity::create_account(
                &mut tx,
                who,
                cfg,
                identity::NewAccount {
                    email: email.to_string(),
                    display_name: String::new(),
                    password: None,
                    instance_admin: false,
                    email_verified: false,
                    lang: None,
                },
            )
            .await?;
            let token = identity::issue_one_time_token(&mut tx, a.id, identity::TokenPurpose::ResetPassword).await?;
            let org_name = sqlx::query("SELECT name FROM orgs WHERE id = $1")
                .bind(cap.org().to_string())
                .fetch_one(tx.conn())
                .await?
                .try_get::<String, _>(0)?;
            let lang = crate::outbox::language_for(state_db, None).await?;
            let link = format!("{}/password/reset?token={token}", st.base_url());
            let mail = crate::web::api::compose(
                st,
                "invitation",
                &lang,
                serde_json::json!({"link": link, "org_name": org_name}),
            )
            .await?;
            crate::outbox::enqueue(&mut tx, Some(cap.org()), "invitation", &a.email, &mail).await?;
            a
        }
    };
    add_member_tx(&mut tx, who, cap.org(), account.id, role_key).await?;
    tx.commit().await?;
    Ok(Member {
        account_id: account.id.to_string(),
        email: account.email,
        display_name: account.display_name,
        role: role_key.to_string(),
    })
}

/// Owners, and instance administrators, manage ownership.
async fn actor_is_owner(db: &Db, cap: &CanAdmin) -> CoreResult<bool> {
    if membership_role(db, cap.org(), cap.actor()).await?.is_some_and(|r| r.key == "owner") {
        return Ok(true);
    }
    Ok(identity::get_account(db, cap.actor()).await?.is_instance_admin)
}

async fn ensure_another_owner(tx: &mut Tx, org: OrgId, leaving: AccountId) -> CoreResult<()> {
    let owners: i64 = sqlx::query("SELECT COUNT(*) FROM memberships m JOIN roles r ON r.id = m.role_id WHERE m.org_id = $1 AND r.key = 'owner' AND m.account_id <> $2")
        .bind(org.to_string())
        .bind(leaving.to_string())
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?;
    if owners == 0 {
        return Err(CoreError::Conflict { field: None, message: "An organisation keeps at least one owner.".into() });
    }
    Ok(())
}

pub async fn remove_member(db: &Db, who: &Who, cap: &CanAdmin, account: AccountId) -> CoreResult<()> {
    let current = membership_role(db, cap.org(), account).await?.ok_or(CoreError::NotFound)?;
    if current.key == "owner" && !actor_is_owner(db, cap).await? {
        return Err(CoreError::Forbidden("Only an owner can remove an owner.".into()));
    }
    let mut tx = db.begin().await?;
    if current.key == "owner" {
        ensure_another_owner(&mut tx, cap.org(), account).await?;
    }
    let n = sqlx::query("DELETE FROM memberships WHERE org_id = $1 AND account_id = $2")
        .bind(cap.org().to_string())
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
            org: Some(cap.org()),
            action: "membership.remove",
            entity_type: "account",
            entity_id: account.to_string(),
            before: None,
            after: None,
        },
    )
    .await?;
    tx.commit().await
}

pub async fn list_members(db: &Db, cap: &crate::permissions::CanRead) -> CoreResult<Vec<Member>> {
    let org = cap.org();
    let rows = sqlx::query("SELECT a.id, a.email, a.display_name, r.key FROM memberships m JOIN accounts a ON a.id = m.account_id JOIN roles r ON r.id = m.role_id WHERE m.org_id = $1 ORDER BY a.email LIMIT 1000")
        .bind(org.to_string())
        .fetch_all(db.pool())
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Member {
                account_id: r.try_get(0)?,
                email: r.try_get(1)?,
                display_name: r.try_get(2)?,
                role: r.try_get(3)?,
            })
        })
        .collect()
}

/// The active accounts of the organisation whose role gives at least `at_least`
/// over `module` (the people to notify of something they must act on: a
/// join request to approve goes to whoever may write members).
pub async fn accounts_with_access(
    tx: &mut Tx,
    modules: &Modules,
    org: OrgId,
    module: &str,
    at_least: Access,
) -> CoreResult<Vec<AccountId>> {
    let rows = sqlx::query(&format!(
        "SELECT m.account_id, {ROLE_COLS} FROM memberships m JOIN roles r ON r.id = m.role_id \
         JOIN accounts a ON a.id = m.account_id WHERE m.org_id = $1 AND a.disabled_at IS NULL ORDER BY m.account_id"
    ))
    .bind(org.to_string())
    .fetch_all(tx.conn())
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let role = role_from_row_at(r, 1)?;
        if modules.effective_permissions(Some(&role), false).is_some_and(|p| p.get(module) >= at_least) {
            out.push(parse_id(&r.try_get::<String, _>(0)?)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn slugs_are_url_safe() {
        assert_eq!(super::slugify("Club Informatique de l'École"), "club-informatique-de-l-ecole");
        assert_eq!(super::slugify("  !!! "), "org");
    }
}
