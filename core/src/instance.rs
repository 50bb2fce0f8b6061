//! The instance itself: its name, first-run setup, signing key, and which
//! modules are enabled for the instance and for each organisation.

use crate::audit::{self, Change, Who};
use crate::config::Config;
use crate::crypto;
use crate::db::Db;
use crate::error::{CoreError, CoreResult, FieldError};
use crate::identity::{self, Account, NewAccount};
use crate::ids::{OrgId, Timestamp};
use crate::module::Modules;
use crate::orgs::{self, NewOrg, Org};
use sqlx::Row;

#[derive(Clone, Debug)]
pub struct Instance {
    pub name: String,
    pub default_lang: String,
    /// IANA zone of instance-wide schedules and of new organisations.
    pub time_zone: String,
    pub setup_done: bool,
    pub signing_key: Vec<u8>,
}

/// Creates the instance row with a fresh signing key when missing (safe when
/// several replicas start at once).
pub async fn ensure(db: &Db) -> CoreResult<()> {
    let key = crypto::hex(&crypto::random_bytes::<32>());
    sqlx::query("INSERT INTO instance (id, name, default_lang, signing_key, created_at) VALUES (1, 'Shrooms', 'fr', $1, $2) ON CONFLICT (id) DO NOTHING")
        .bind(key)
        .bind(Timestamp::now().0)
        .execute(db.pool())
        .await?;
    Ok(())
}

pub async fn load(db: &Db) -> CoreResult<Instance> {
    let r = sqlx::query("SELECT name, default_lang, signing_key, setup_done_at, time_zone FROM instance WHERE id = 1")
        .fetch_one(db.pool())
        .await?;
    Ok(Instance {
        name: r.try_get(0)?,
        default_lang: r.try_get(1)?,
        signing_key: r.try_get::<String, _>(2)?.into_bytes(),
        setup_done: r.try_get::<Option<i64>, _>(3)?.is_some(),
        time_zone: r.try_get(4)?,
    })
}

/// Marks setup as done without the browser (an administrator was created
/// from the command line), so that nobody else can claim the instance.
pub async fn close_setup(db: &Db) -> CoreResult<()> {
    sqlx::query("UPDATE instance SET setup_done_at = $1 WHERE id = 1 AND setup_done_at IS NULL")
        .bind(Timestamp::now().0)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Renames the instance, or changes its default language or time zone
/// (which instance-wide schedules follow).
pub async fn update(
    db: &Db,
    who: &Who,
    _admin: &crate::permissions::InstanceAdmin,
    name: Option<&str>,
    default_lang: Option<&str>,
    time_zone: Option<&str>,
) -> CoreResult<Instance> {
    let mut errors = Vec::new();
    if let Some(n) = name {
        if n.trim().is_empty() || n.chars().count() > 120 {
            errors.push(FieldError::new("name", "Give the instance a name of 1 to 120 characters."));
        }
    }
    if let Some(l) = default_lang {
        if !matches!(l, "fr" | "en") {
            errors.push(FieldError::new("default_lang", "Choose fr or en."));
        }
    }
    let time_zone = time_zone.map(str::trim);
    if let Some(z) = time_zone {
        if !crate::cron::valid_zone(z) {
            errors.push(FieldError::new("time_zone", "Use an IANA time zone like Europe/Paris."));
        }
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let before = load(db).await?;
    let mut tx = db.begin().await?;
    let zone = time_zone.unwrap_or(&before.time_zone);
    sqlx::query("UPDATE instance SET name = $1, default_lang = $2, time_zone = $3 WHERE id = 1")
        .bind(name.map(str::trim).unwrap_or(&before.name))
        .bind(default_lang.unwrap_or(&before.default_lang))
        .bind(zone)
        .execute(tx.conn())
        .await?;
    if zone != before.time_zone {
        crate::schedules::zone_changed(&mut tx, None, zone).await?;
    }
    audit::record(&mut tx, who, Change {
        org: None,
        action: "instance.update",
        entity_type: "instance",
        entity_id: "1".into(),
        before: Some(serde_json::json!({"name": before.name, "default_lang": before.default_lang, "time_zone": before.time_zone})),
        after: Some(serde_json::json!({"name": name.map(str::trim).unwrap_or(&before.name), "default_lang": default_lang.unwrap_or(&before.default_lang), "time_zone": zone})),
    })
    .await?;
    tx.commit().await?;
    load(db).await
}

pub struct Setup {
    pub instance_name: String,
    pub default_lang: String,
    pub admin_email: String,
    pub admin_name: String,
    pub admin_password: String,
    pub first_org: String,
    pub modules: Vec<String>,
}

/// First-run setup, in one transaction: instance name, first administrator,
/// enabled modules, first organisation owned by the administrator.
pub async fn complete_setup(
    db: &Db,
    cfg: &Config,
    modules: &Modules,
    s: Setup,
    address: &str,
) -> CoreResult<(Account, Org)> {
    let mut errors = Vec::new();
    if s.instance_name.trim().is_empty() || s.instance_name.chars().count() > 120 {
        errors.push(FieldError::new("instance_name", "Give the instance a name of 1 to 120 characters."));
    }
    if s.first_org.trim().is_empty() {
        errors.push(FieldError::new("first_org", "Name your first organisation."));
    }
    if !matches!(s.default_lang.as_str(), "fr" | "en") {
        errors.push(FieldError::new("default_lang", "Choose fr or en."));
    }
    for m in &s.modules {
        if modules.get(m).is_none() {
            errors.push(FieldError::new("modules", format!("Unknown module `{m}`.")));
        }
    }
    if let Err(e) = validate_dependencies(modules, &s.modules) {
        errors.push(e);
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let mut tx = db.begin().await?;
    let done: Option<i64> =
        sqlx::query("SELECT setup_done_at FROM instance WHERE id = 1").fetch_one(tx.conn()).await?.try_get(0)?;
    if done.is_some() {
        return Err(CoreError::Conflict { field: None, message: "This instance is already set up.".into() });
    }
    let who = Who { account: None, label: "setup".into(), address: address.into() };
    let admin = identity::create_account(
        &mut tx,
        &who,
        cfg,
        NewAccount {
            email: s.admin_email,
            display_name: s.admin_name,
            password: Some(s.admin_password),
            instance_admin: true,
            email_verified: true,
            lang: Some(s.default_lang.clone()),
        },
    )
    .await?;
    let who = admin.who(address);
    let now = Timestamp::now().0;
    sqlx::query("UPDATE instance SET name = $1, default_lang = $2, setup_done_at = $3 WHERE id = 1")
        .bind(s.instance_name.trim())
        .bind(&s.default_lang)
        .bind(now)
        .execute(tx.conn())
        .await?;
    for m in modules.all() {
        if m.always_on() {
            continue;
        }
        let on = s.modules.iter().any(|x| x == m.id());
        sqlx::query("INSERT INTO module_settings (module, scope, enabled, updated_at) VALUES ($1, 'instance', $2, $3)")
            .bind(m.id())
            .bind(on as i64)
            .bind(now)
            .execute(tx.conn())
            .await?;
    }
    audit::record(&mut tx, &who, Change { org: None, action: "instance.setup", entity_type: "instance", entity_id: "1".into(), before: None, after: Some(serde_json::json!({"name": s.instance_name.trim(), "modules": s.modules, "default_lang": s.default_lang})) }).await?;
    let org = orgs::create_org(
        &mut tx,
        &who,
        &crate::permissions::InstanceAdmin::grant(Some(admin.id)),
        modules,
        NewOrg { name: s.first_org, slug: None, timezone: None, currency: None },
        Some(admin.id),
    )
    .await?;
    tx.commit().await?;
    Ok((admin, org))
}

fn validate_dependencies(modules: &Modules, enabled: &[String]) -> Result<(), FieldError> {
    for id in enabled {
        if let Some(m) = modules.get(id) {
            for d in m.depends_on() {
                let dep_on = enabled.iter().any(|e| e == d) || modules.get(d).is_some_and(|x| x.always_on());
                if !dep_on {
                    return Err(FieldError::new("modules", format!("Module `{id}` needs module `{d}`.")));
                }
            }
        }
    }
    Ok(())
}

fn scope(org: Option<OrgId>) -> String {
    match org {
        Some(o) => format!("org:{o}"),
        None => "instance".into(),
    }
}

async fn setting(db: &Db, module: &str, scope: &str) -> CoreResult<Option<bool>> {
    let r = sqlx::query("SELECT enabled FROM module_settings WHERE module = $1 AND scope = $2")
        .bind(module)
        .bind(scope)
        .fetch_optional(db.pool())
        .await?;
    Ok(match r {
        Some(r) => Some(r.try_get::<i64, _>(0)? != 0),
        None => None,
    })
}

/// A module is on for an organisation when it is on for the instance and the
/// organisation has not turned it off.
pub async fn module_enabled(db: &Db, modules: &Modules, module: &str, org: Option<OrgId>) -> CoreResult<bool> {
    let Some(m) = modules.get(module) else {
        return Ok(false);
    };
    if m.always_on() {
        return Ok(true);
    }
    let instance_on = setting(db, module, "instance").await?.unwrap_or(m.enabled_by_default());
    if !instance_on {
        return Ok(false);
    }
    match org {
        Some(o) => Ok(setting(db, module, &scope(Some(o))).await?.unwrap_or(true)),
        None => Ok(true),
    }
}

pub async fn enabled_modules(db: &Db, modules: &Modules, org: Option<OrgId>) -> CoreResult<Vec<String>> {
    let mut out = Vec::new();
    for m in modules.all() {
        if module_enabled(db, modules, m.id(), org).await? {
            out.push(m.id().to_string());
        }
    }
    Ok(out)
}

/// Turns a module on or off for the instance (`org: None`) or one
/// organisation. Data is never deleted: a disabled module's routes answer 404.
/// Where a module is switched: the whole instance (its administrators) or
/// one organisation (its administrators).
pub enum ModuleScope<'a> {
    Instance(&'a crate::permissions::InstanceAdmin),
    Org(&'a crate::permissions::CanAdmin),
}

pub async fn set_module_enabled(
    db: &Db,
    who: &Who,
    modules: &Modules,
    module: &str,
    scope_of: ModuleScope<'_>,
    enabled: bool,
) -> CoreResult<()> {
    let org = match scope_of {
        ModuleScope::Instance(_) => None,
        ModuleScope::Org(cap) => Some(cap.org()),
    };
    let m = modules.get(module).ok_or(CoreError::NotFound)?;
    if m.always_on() {
        return Err(CoreError::validation("module", "The core cannot be disabled."));
    }
    if enabled {
        for d in m.depends_on() {
            if !module_enabled(db, modules, d, org).await? {
                return Err(CoreError::validation("module", &format!("Enable `{d}` first: `{module}` needs it.")));
            }
        }
    } else {
        for other in modules.all() {
            if other.depends_on().contains(&module) && module_enabled(db, modules, other.id(), org).await? {
                return Err(CoreError::validation(
                    "module",
                    &format!("Disable `{}` first: it needs `{module}`.", other.id()),
                ));
            }
        }
    }
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO module_settings (module, scope, enabled, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (module, scope) DO UPDATE SET enabled = $3, updated_at = $4")
        .bind(module)
        .bind(scope(org))
        .bind(enabled as i64)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org,
            action: if enabled { "module.enable" } else { "module.disable" },
            entity_type: "module",
            entity_id: module.to_string(),
            before: None,
            after: Some(serde_json::json!({"enabled": enabled})),
        },
    )
    .await?;
    tx.commit().await
}
