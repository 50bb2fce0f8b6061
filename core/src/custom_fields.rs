//! Custom fields: data an organisation adds to a kind of record without
//! code ("which data do we need on a part?"). An administrator of the module
//! that owns the record kind defines fields; forms, pages, lists, filters,
//! exports and the API carry their values.
//!
//! A module stores the values of its records in its own write transaction
//! ([`parse`] then [`write`]), reads them in one query per page
//! ([`values_for`]) and filters its lists with [`filter_clause`]. Values are
//! kept one row per field and record, indexed by field and value: a filter
//! is an index range scan, not a scan of JSON.

use crate::audit::{self, Change, Who};
use crate::cache::TtlCache;
use crate::db::{Db, Tx};
use crate::error::{CoreError, CoreResult, FieldError};
use crate::ids::{OrgId, Timestamp};
use crate::permissions::CanAdmin;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::Row;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// A decimal number, up to 4 decimal places.
    Number,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of the options.
    Choice,
    /// Any of the options.
    Multi,
    /// Yes or no.
    Bool,
    /// A person of the organisation's directory (their id).
    Person,
    /// A file attached to a record of the same kind (its id; see [`crate::files`]).
    File,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Text => "text",
            FieldKind::Number => "number",
            FieldKind::Date => "date",
            FieldKind::Choice => "choice",
            FieldKind::Multi => "multi",
            FieldKind::Bool => "bool",
            FieldKind::Person => "person",
            FieldKind::File => "file",
        }
    }
    fn parse(s: &str) -> Option<FieldKind> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct FieldDef {
    pub id: String,
    pub entity_type: String,
    /// Stable name in the API, exports and filters: `tshirt_size`.
    pub key: String,
    pub label: String,
    pub kind: FieldKind,
    /// The options of a choice or multiple choice.
    pub options: Vec<String>,
    pub required: bool,
    /// Shown as a column of lists.
    pub in_list: bool,
    pub position: i64,
    pub archived: bool,
}

const COLS: &str = "id, entity_type, key, label, kind, options, required, in_list, position, archived_at";

fn from_row(r: &sqlx::any::AnyRow) -> CoreResult<FieldDef> {
    Ok(FieldDef {
        id: r.try_get(0)?,
        entity_type: r.try_get(1)?,
        key: r.try_get(2)?,
        label: r.try_get(3)?,
        kind: FieldKind::parse(&r.try_get::<String, _>(4)?).unwrap_or(FieldKind::Text),
        options: serde_json::from_str(&r.try_get::<String, _>(5)?).unwrap_or_default(),
        required: r.try_get::<i64, _>(6)? != 0,
        in_list: r.try_get::<i64, _>(7)? != 0,
        position: r.try_get(8)?,
        archived: r.try_get::<Option<i64>, _>(9)?.is_some(),
    })
}

/// The definitions cache: (org, entity type) → live fields, per process,
/// cleared by this process's writes (see [`crate::cache`]).
pub type DefsCache = TtlCache<(OrgId, String), Vec<FieldDef>>;

/// The live (not archived) fields of a kind of record, in display order.
pub async fn definitions(db: &Db, org: OrgId, entity_type: &str) -> CoreResult<Vec<FieldDef>> {
    let key = (org, entity_type.to_string());
    if let Some(d) = db.field_defs().get(db, &key) {
        return Ok(d);
    }
    let generation = db.generation();
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM custom_fields WHERE org_id = $1 AND entity_type = $2 AND archived_at IS NULL ORDER BY position, key"
    ))
    .bind(org.to_string())
    .bind(entity_type)
    .fetch_all(db.pool())
    .await?;
    let defs = rows.iter().map(from_row).collect::<CoreResult<Vec<_>>>()?;
    db.field_defs().put(generation, key, defs.clone());
    Ok(defs)
}

/// Every field of the organisation, archived ones included, for settings.
pub async fn list_all(db: &Db, org: OrgId) -> CoreResult<Vec<FieldDef>> {
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM custom_fields WHERE org_id = $1 ORDER BY entity_type, archived_at IS NOT NULL, position, key"
    ))
    .bind(org.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(from_row).collect()
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldInput {
    /// Kind of record (`person`, or one a module declares); on creation only.
    pub entity_type: Option<String>,
    /// On creation only; made from the label when absent.
    pub key: Option<String>,
    pub label: Option<String>,
    /// On creation only.
    pub kind: Option<FieldKind>,
    pub options: Option<Vec<String>>,
    pub required: Option<bool>,
    pub in_list: Option<bool>,
    pub position: Option<i64>,
    /// On update only: archive (hidden, values kept) or bring back.
    pub archived: Option<bool>,
}

fn slug_key(label: &str) -> String {
    let mut k = String::new();
    for w in crate::people::fold(label).split_whitespace() {
        if !k.is_empty() {
            k.push('_');
        }
        k.push_str(w);
    }
    k.chars().take(40).collect()
}

fn check_options(kind: FieldKind, options: &[String], errors: &mut Vec<FieldError>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for o in options {
        let o = o.trim();
        if !o.is_empty() && !out.iter().any(|x| x.eq_ignore_ascii_case(o)) {
            out.push(o.chars().take(100).collect());
        }
    }
    if matches!(kind, FieldKind::Choice | FieldKind::Multi) && out.is_empty() {
        errors.push(FieldError::new("options", "List at least one option, one per line."));
    }
    if out.len() > 200 {
        errors.push(FieldError::new("options", "Keep at most 200 options."));
    }
    out
}

/// Adds a field. `cap` is administration of the module that owns the kind
/// of record (the caller resolves it from the record kinds).
pub async fn create(db: &Db, who: &Who, cap: &CanAdmin, entity_type: &str, input: &FieldInput) -> CoreResult<FieldDef> {
    let mut errors = Vec::new();
    let label = input.label.as_deref().unwrap_or("").trim().to_string();
    if label.is_empty() || label.chars().count() > 100 {
        errors.push(FieldError::new("label", "Give the field a label of 1 to 100 characters."));
    }
    let key = input
        .key
        .as_deref()
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| slug_key(&label));
    if key.is_empty()
        || key.len() > 40
        || !key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || key.starts_with(|c: char| c.is_ascii_digit())
    {
        errors.push(FieldError::new("key", "Use 1 to 40 lowercase letters, digits or _, starting with a letter."));
    }
    let Some(kind) = input.kind else {
        errors.push(FieldError::new("kind", "Choose the kind of field."));
        return Err(CoreError::Validation(errors));
    };
    let options = check_options(kind, input.options.as_deref().unwrap_or(&[]), &mut errors);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let org = cap.org();
    let mut tx = db.begin().await?;
    let taken = sqlx::query("SELECT 1 FROM custom_fields WHERE org_id = $1 AND entity_type = $2 AND key = $3")
        .bind(org.to_string())
        .bind(entity_type)
        .bind(&key)
        .fetch_optional(tx.conn())
        .await?;
    if taken.is_some() {
        return Err(CoreError::Conflict {
            field: Some("key".into()),
            message: "A field with this key already exists.".into(),
        });
    }
    let position = match input.position {
        Some(p) => p,
        None => sqlx::query(
            "SELECT COALESCE(MAX(position), 0) + 10 FROM custom_fields WHERE org_id = $1 AND entity_type = $2",
        )
        .bind(org.to_string())
        .bind(entity_type)
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?,
    };
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query("INSERT INTO custom_fields (id, org_id, entity_type, key, label, kind, options, required, in_list, position, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
        .bind(&id)
        .bind(org.to_string())
        .bind(entity_type)
        .bind(&key)
        .bind(&label)
        .bind(kind.as_str())
        .bind(serde_json::to_string(&options).unwrap_or_else(|_| "[]".into()))
        .bind(input.required.unwrap_or(false) as i64)
        .bind(input.in_list.unwrap_or(false) as i64)
        .bind(position)
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    let def = get_in(&mut tx, org, &id).await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "custom_field.create",
            entity_type: "custom_field",
            entity_id: id.clone(),
            before: None,
            after: serde_json::to_value(&def).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(def)
}

async fn get_in(tx: &mut Tx, org: OrgId, id: &str) -> CoreResult<FieldDef> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM custom_fields WHERE org_id = $1 AND id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(CoreError::NotFound)?;
    from_row(&r)
}

/// One field of the organisation (archived ones too).
pub async fn get(db: &Db, org: OrgId, id: &str) -> CoreResult<FieldDef> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM custom_fields WHERE org_id = $1 AND id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    from_row(&r)
}

/// Changes a field's label, options, order, whether it is required or shown
/// in lists. Its key and kind never change (values and integrations rely on
/// them): archive it and add another instead.
pub async fn update(db: &Db, who: &Who, cap: &CanAdmin, id: &str, input: &FieldInput) -> CoreResult<FieldDef> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = get_in(&mut tx, org, id).await?;
    let mut errors = Vec::new();
    if input.entity_type.is_some() || input.key.as_ref().is_some_and(|k| *k != before.key) {
        errors.push(FieldError::new("key", "A field's key and kind of record cannot change."));
    }
    if input.kind.is_some_and(|k| k != before.kind) {
        errors.push(FieldError::new("kind", "A field's kind cannot change: archive it and add a new field."));
    }
    let label = input.label.as_deref().map(str::trim).unwrap_or(&before.label).to_string();
    if label.is_empty() || label.chars().count() > 100 {
        errors.push(FieldError::new("label", "Give the field a label of 1 to 100 characters."));
    }
    let options = match &input.options {
        Some(o) => check_options(before.kind, o, &mut errors),
        None => before.options.clone(),
    };
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    sqlx::query("UPDATE custom_fields SET label = $1, options = $2, required = $3, in_list = $4, position = $5 WHERE org_id = $6 AND id = $7")
        .bind(&label)
        .bind(serde_json::to_string(&options).unwrap_or_else(|_| "[]".into()))
        .bind(input.required.unwrap_or(before.required) as i64)
        .bind(input.in_list.unwrap_or(before.in_list) as i64)
        .bind(input.position.unwrap_or(before.position))
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let after = get_in(&mut tx, org, id).await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "custom_field.update",
            entity_type: "custom_field",
            entity_id: id.to_string(),
            before: serde_json::to_value(&before).ok(),
            after: serde_json::to_value(&after).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// Archives (or brings back) a field: hidden from forms, lists and the API;
/// its values stay and come back with it.
pub async fn set_archived(db: &Db, who: &Who, cap: &CanAdmin, id: &str, archived: bool) -> CoreResult<FieldDef> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = get_in(&mut tx, org, id).await?;
    sqlx::query("UPDATE custom_fields SET archived_at = $1 WHERE org_id = $2 AND id = $3")
        .bind(archived.then(|| Timestamp::now().0))
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: if archived { "custom_field.archive" } else { "custom_field.restore" },
            entity_type: "custom_field",
            entity_id: id.to_string(),
            before: serde_json::to_value(&before).ok(),
            after: None,
        },
    )
    .await?;
    let after = get_in(&mut tx, org, id).await?;
    tx.commit().await?;
    Ok(after)
}

// ---------- values ----------

/// A checked value, ready to store: one or more (text, number, folded) rows.
#[derive(Clone, Debug)]
pub struct Parsed {
    field_id: String,
    key: String,
    kind: FieldKind,
    rows: Vec<(String, Option<i64>, String)>,
}

/// Applies checked values to a record's `custom` object (as the API shows it).
pub fn apply(values: &[Parsed], to: &mut Map<String, Value>) {
    for p in values {
        if p.rows.is_empty() {
            to.remove(&p.key);
            continue;
        }
        let one = |(text, num, _): &(String, Option<i64>, String)| match p.kind {
            FieldKind::Number => {
                serde_json::from_str::<Value>(&format_decimal(num.unwrap_or(0))).unwrap_or(Value::Null)
            }
            FieldKind::Bool => Value::Bool(num.unwrap_or(0) != 0),
            _ => Value::String(text.clone()),
        };
        let v =
            if p.kind == FieldKind::Multi { Value::Array(p.rows.iter().map(one).collect()) } else { one(&p.rows[0]) };
        to.insert(p.key.clone(), v);
    }
}

const SCALE: i64 = 10_000;

/// Reads a decimal with up to 4 places (`12.5`, `12,5`, `-3`) as ten-thousandths.
pub fn parse_decimal(s: &str) -> Option<i64> {
    let s = s.trim().replace(',', ".").replace([' ', '\u{a0}', '\u{202f}'], "");
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r.to_string()),
        None => (false, s.clone()),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((&digits, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 4
        || int.len() > 14
    {
        return None;
    }
    let i: i64 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let f: i64 = format!("{frac:0<4}").parse().ok()?;
    let v = i.checked_mul(SCALE)?.checked_add(f)?;
    Some(if neg { -v } else { v })
}

/// Ten-thousandths back to the shortest decimal text.
pub fn format_decimal(v: i64) -> String {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let (i, f) = (a / SCALE as u64, a % SCALE as u64);
    if f == 0 {
        format!("{sign}{i}")
    } else {
        format!("{sign}{i}.{}", format!("{f:04}").trim_end_matches('0'))
    }
}

fn parse_date(s: &str) -> Option<String> {
    let s = s.trim();
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(s, fmt) {
        return Some(d.format(fmt).ok()?);
    }
    // French habit: 21/11/2026.
    let fr = time::macros::format_description!("[day]/[month]/[year]");
    time::Date::parse(s, fr).ok().and_then(|d| d.format(fmt).ok())
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// Checks the `custom` object of a create (`existing` = `None`) or an update
/// against the live fields: unknown keys, wrong kinds and missing required
/// values are field errors named `custom.<key>` (the inner `Err`, to merge
/// with the record's own field errors). Fields left out of an
/// update keep their value. Person fields must name a person of `org`.
pub async fn parse(
    db: &Db,
    org: OrgId,
    entity_type: &str,
    input: Option<&Map<String, Value>>,
    existing: Option<&Map<String, Value>>,
) -> CoreResult<Result<Vec<Parsed>, Vec<FieldError>>> {
    let defs = definitions(db, org, entity_type).await?;
    let empty_map = Map::new();
    let input = input.unwrap_or(&empty_map);
    let mut errors = Vec::new();
    for k in input.keys() {
        if !defs.iter().any(|d| &d.key == k) {
            errors.push(FieldError::new(format!("custom.{k}"), "There is no such field."));
        }
    }
    let mut out = Vec::new();
    for d in &defs {
        let name = format!("custom.{}", d.key);
        let Some(v) = input.get(&d.key) else {
            let had = existing.and_then(|e| e.get(&d.key)).is_some_and(|v| !empty(v));
            if d.required && !had {
                errors.push(FieldError::new(name, format!("“{}” is required.", d.label)));
            }
            continue;
        };
        if empty(v) {
            if d.required {
                errors.push(FieldError::new(name, format!("“{}” is required.", d.label)));
            } else {
                out.push(Parsed { field_id: d.id.clone(), key: d.key.clone(), kind: d.kind, rows: vec![] });
            }
            continue;
        }
        let mut bad = |msg: &str| errors.push(FieldError::new(name.clone(), msg.to_string()));
        let rows = match d.kind {
            FieldKind::Text => match as_text(v) {
                Some(s) if s.chars().count() <= 1000 => {
                    let s = s.trim().to_string();
                    let fold = crate::people::fold(&s).split_whitespace().collect::<Vec<_>>().join(" ");
                    vec![(s, None, fold.chars().take(200).collect())]
                }
                _ => {
                    bad("Use text of at most 1,000 characters.");
                    continue;
                }
            },
            FieldKind::Number => match as_text(v).as_deref().and_then(parse_decimal) {
                Some(n) => vec![(format_decimal(n), Some(n), String::new())],
                None => {
                    bad("Use a number, with at most 4 decimal places.");
                    continue;
                }
            },
            FieldKind::Date => match as_text(v).as_deref().and_then(parse_date) {
                Some(d) => vec![(d.clone(), None, d)],
                None => {
                    bad("Use a date like 2026-11-21.");
                    continue;
                }
            },
            FieldKind::Bool => {
                let b = match v {
                    Value::Bool(b) => Some(*b),
                    other => match as_text(other).unwrap_or_default().trim().to_lowercase().as_str() {
                        "true" | "1" | "yes" | "oui" | "on" => Some(true),
                        "false" | "0" | "no" | "non" | "off" => Some(false),
                        _ => None,
                    },
                };
                match b {
                    Some(b) => vec![(b.to_string(), Some(b as i64), String::new())],
                    None => {
                        bad("Use true or false.");
                        continue;
                    }
                }
            }
            FieldKind::Choice | FieldKind::Multi => {
                let picked: Vec<String> = match v {
                    Value::Array(a) if d.kind == FieldKind::Multi => a.iter().filter_map(as_text).collect(),
                    other => as_text(other).into_iter().collect(),
                };
                let mut rows = Vec::new();
                let mut ok = true;
                for p in picked {
                    match d.options.iter().find(|o| o.eq_ignore_ascii_case(p.trim())) {
                        Some(o) if !rows.iter().any(|(t, _, _): &(String, Option<i64>, String)| t == o) => {
                            rows.push((o.clone(), None, crate::people::fold(o)))
                        }
                        Some(_) => {}
                        None => ok = false,
                    }
                }
                if !ok {
                    bad(&format!("Choose among: {}.", d.options.join(", ")));
                    continue;
                }
                rows.sort_by_key(|(t, _, _)| d.options.iter().position(|o| o == t));
                rows
            }
            FieldKind::File => {
                let id = as_text(v).unwrap_or_default();
                let found = sqlx::query("SELECT id FROM files WHERE org_id = $1 AND id = $2 AND entity_type = $3")
                    .bind(org.to_string())
                    .bind(id.trim())
                    .bind(entity_type)
                    .fetch_optional(db.pool())
                    .await?;
                match found {
                    Some(_) => vec![(id.trim().to_string(), None, id.trim().to_string())],
                    None => {
                        bad("Choose a file attached to the record.");
                        continue;
                    }
                }
            }
            FieldKind::Person => {
                let id = as_text(v).unwrap_or_default();
                let found = sqlx::query("SELECT id FROM people WHERE org_id = $1 AND (id = $2 OR email = $3)")
                    .bind(org.to_string())
                    .bind(id.trim())
                    .bind(id.trim().to_lowercase())
                    .fetch_optional(db.pool())
                    .await?;
                match found {
                    Some(r) => {
                        let pid: String = r.try_get(0).unwrap_or_default();
                        vec![(pid.clone(), None, pid)]
                    }
                    None => {
                        bad("Name a person of the directory (their id or email address).");
                        continue;
                    }
                }
            }
        };
        out.push(Parsed { field_id: d.id.clone(), key: d.key.clone(), kind: d.kind, rows });
    }
    Ok(if errors.is_empty() { Ok(out) } else { Err(errors) })
}

/// Stores checked values of one record, in the caller's transaction.
pub async fn write(tx: &mut Tx, org: OrgId, entity_type: &str, entity_id: &str, values: &[Parsed]) -> CoreResult<()> {
    for p in values {
        sqlx::query(
            "DELETE FROM custom_values WHERE org_id = $1 AND entity_type = $2 AND entity_id = $3 AND field_id = $4",
        )
        .bind(org.to_string())
        .bind(entity_type)
        .bind(entity_id)
        .bind(&p.field_id)
        .execute(tx.conn())
        .await?;
        for (text, num, fold) in &p.rows {
            sqlx::query("INSERT INTO custom_values (org_id, entity_type, entity_id, field_id, value_text, value_num, value_fold) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(org.to_string())
                .bind(entity_type)
                .bind(entity_id)
                .bind(&p.field_id)
                .bind(text)
                .bind(*num)
                .bind(fold)
                .execute(tx.conn())
                .await?;
        }
    }
    Ok(())
}

/// Removes every value of a deleted record, in its delete transaction.
pub async fn forget(tx: &mut Tx, org: OrgId, entity_type: &str, entity_id: &str) -> CoreResult<()> {
    sqlx::query("DELETE FROM custom_values WHERE org_id = $1 AND entity_type = $2 AND entity_id = $3")
        .bind(org.to_string())
        .bind(entity_type)
        .bind(entity_id)
        .execute(tx.conn())
        .await?;
    Ok(())
}

/// The values of live fields for some records: id → {key: value}. One query;
/// none at all when the kind of record has no fields.
pub async fn values_for(
    db: &Db,
    org: OrgId,
    entity_type: &str,
    ids: &[String],
) -> CoreResult<HashMap<String, Map<String, Value>>> {
    let mut out: HashMap<String, Map<String, Value>> = HashMap::new();
    let defs = definitions(db, org, entity_type).await?;
    if defs.is_empty() || ids.is_empty() {
        return Ok(out);
    }
    let placeholders: Vec<String> = (0..ids.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT entity_id, field_id, value_text, value_num FROM custom_values WHERE org_id = $1 AND entity_type = $2 AND entity_id IN ({})",
        placeholders.join(", ")
    );
    let mut q =
        sqlx::query_as::<_, (String, String, String, Option<i64>)>(&sql).bind(org.to_string()).bind(entity_type);
    for id in ids {
        q = q.bind(id);
    }
    for (entity, field, text, num) in q.fetch_all(db.pool()).await? {
        let Some(d) = defs.iter().find(|d| d.id == field) else { continue };
        let v = match d.kind {
            FieldKind::Number => {
                serde_json::from_str::<Value>(&format_decimal(num.unwrap_or(0))).unwrap_or(Value::Null)
            }
            FieldKind::Bool => Value::Bool(num.unwrap_or(0) != 0),
            FieldKind::Multi => Value::Array(vec![Value::String(text)]),
            _ => Value::String(text),
        };
        let m = out.entry(entity).or_default();
        match (m.get_mut(&d.key), v) {
            (Some(Value::Array(a)), Value::Array(mut more)) => a.append(&mut more),
            (_, v) => {
                m.insert(d.key.clone(), v);
            }
        }
    }
    // Multiple choices in the order of the field's options.
    for m in out.values_mut() {
        for d in defs.iter().filter(|d| d.kind == FieldKind::Multi) {
            if let Some(Value::Array(a)) = m.get_mut(&d.key) {
                a.sort_by_key(|v| d.options.iter().position(|o| Some(o.as_str()) == v.as_str()).unwrap_or(usize::MAX));
            }
        }
    }
    Ok(out)
}

/// The filters of a query string parameter `cf`: `key=value` conditions
/// separated by `;` (`cf=size=M;joined>=2024-09-01`).
pub fn split_filters(cf: Option<&str>) -> Vec<String> {
    cf.unwrap_or("").split(';').map(str::trim).filter(|f| !f.is_empty()).map(str::to_string).collect()
}

/// Reads the custom fields of an HTML form, named `cf.<key>` (a multiple
/// choice repeats the name; a yes/no checkbox sends `1` when ticked).
pub fn from_form(defs: &[FieldDef], pairs: &[(String, String)]) -> Map<String, Value> {
    let mut out = Map::new();
    for d in defs {
        let name = format!("cf.{}", d.key);
        let given: Vec<&str> = pairs.iter().filter(|(k, _)| *k == name).map(|(_, v)| v.as_str()).collect();
        let v = match d.kind {
            FieldKind::Multi => {
                Value::Array(given.iter().filter(|v| !v.is_empty()).map(|v| Value::String(v.to_string())).collect())
            }
            FieldKind::Bool => Value::Bool(given.iter().any(|v| *v == "1")),
            _ => Value::String(given.first().map(|v| v.to_string()).unwrap_or_default()),
        };
        out.insert(d.key.clone(), v);
    }
    out
}

/// A bind value of a filter.
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// Turns a filter `key=value`, `key>=value`, `key<=value` or `key~text`
/// into a condition on `{id_column}` for a list query whose `$1` is the
/// organisation id; the binds continue after `$first - 1`. Text matches from
/// the start of the value, ignoring case and accents; choices, people and
/// yes/no exactly; numbers and dates also by range; `~` finds the text
/// anywhere in the value.
pub async fn filter_clause(
    db: &Db,
    org: OrgId,
    entity_type: &str,
    id_column: &str,
    spec: &str,
    first: usize,
) -> CoreResult<(String, Vec<Bind>)> {
    let bad = |m: &str| CoreError::Validation(vec![FieldError::new("cf", m.to_string())]);
    let field_of = |defs: Vec<FieldDef>, key: &str| {
        defs.into_iter()
            .find(|d| d.key == key.trim())
            .ok_or_else(|| bad(&format!("There is no field `{}`.", key.trim())))
    };
    // `key~text`: no index finds a part of a value, so the condition is
    // tested on each record through its own values (a handful), not by
    // reading every value of the field first.
    if let Some(i) = spec.find('~').filter(|&i| !spec[..i].contains(['=', '<', '>'])) {
        let d = field_of(definitions(db, org, entity_type).await?, &spec[..i])?;
        let folded = crate::people::fold(&spec[i + 1..]).split_whitespace().collect::<Vec<_>>().join(" ");
        return Ok((
            format!(
                "EXISTS (SELECT 1 FROM custom_values v WHERE v.org_id = $1 AND v.entity_type = '{entity_type}' \
                 AND v.entity_id = {id_column} AND v.field_id = ${first} AND v.value_fold LIKE ${})",
                first + 1
            ),
            vec![Bind::Text(d.id), Bind::Text(format!("%{folded}%"))],
        ));
    }
    let (key, op, value) = if let Some((k, v)) = spec.split_once(">=") {
        (k, ">=", v)
    } else if let Some((k, v)) = spec.split_once("<=") {
        (k, "<=", v)
    } else if let Some((k, v)) = spec.split_once('=') {
        (k, "=", v)
    } else {
        return Err(bad("Write a filter as key=value, key>=value, key<=value or key~text."));
    };
    let d = &field_of(definitions(db, org, entity_type).await?, key)?;
    let sub = |cond: &str| {
        format!(
            "{id_column} IN (SELECT entity_id FROM custom_values WHERE org_id = $1 AND field_id = ${first} AND {cond})"
        )
    };
    let field = Bind::Text(d.id.clone());
    let n = first + 1;
    Ok(match (d.kind, op) {
        (FieldKind::Number, _) => {
            let v = parse_decimal(value).ok_or_else(|| bad("Use a number."))?;
            (sub(&format!("value_num {op} ${n}")), vec![field, Bind::Int(v)])
        }
        (FieldKind::Date, _) => {
            let v = parse_date(value).ok_or_else(|| bad("Use a date like 2026-11-21."))?;
            (sub(&format!("value_fold {op} ${n}")), vec![field, Bind::Text(v)])
        }
        (_, ">=") | (_, "<=") => return Err(bad("Only numbers and dates can be compared.")),
        (FieldKind::Bool, _) => {
            let yes = matches!(value.trim().to_lowercase().as_str(), "true" | "1" | "yes" | "oui");
            if yes {
                (sub(&format!("value_num = ${n}")), vec![field, Bind::Int(1)])
            } else {
                // "No" includes records where the field was never set.
                (
                    format!("{id_column} NOT IN (SELECT entity_id FROM custom_values WHERE org_id = $1 AND field_id = ${first} AND value_num = ${n})"),
                    vec![field, Bind::Int(1)],
                )
            }
        }
        (FieldKind::Text, _) => {
            let f = crate::people::fold(value).split_whitespace().collect::<Vec<_>>().join(" ");
            match crate::people::prefix_upper_bound(&f) {
                Some(hi) => (
                    sub(&format!("value_fold >= ${n} AND value_fold < ${}", n + 1)),
                    vec![field, Bind::Text(f), Bind::Text(hi)],
                ),
                None => (sub(&format!("value_fold >= ${n}")), vec![field, Bind::Text(f)]),
            }
        }
        (FieldKind::Person | FieldKind::File, _) => {
            (sub(&format!("value_fold = ${n}")), vec![field, Bind::Text(value.trim().to_string())])
        }
        (FieldKind::Choice | FieldKind::Multi, _) => {
            (sub(&format!("value_fold = ${n}")), vec![field, Bind::Text(crate::people::fold(value.trim()))])
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_decimal("12.5"), Some(125_000));
        assert_eq!(parse_decimal("12,5"), Some(125_000));
        assert_eq!(parse_decimal("-0.0001"), Some(-1));
        assert_eq!(parse_decimal("1 234,50"), Some(12_345_000));
        assert_eq!(parse_decimal("1.23456"), None);
        assert_eq!(parse_decimal("abc"), None);
        assert_eq!(parse_decimal(""), None);
        assert_eq!(format_decimal(125_000), "12.5");
        assert_eq!(format_decimal(-1), "-0.0001");
        assert_eq!(format_decimal(30_000), "3");
    }

    #[test]
    fn dates_in_iso_or_french_order() {
        assert_eq!(parse_date("2026-11-21").as_deref(), Some("2026-11-21"));
        assert_eq!(parse_date("21/11/2026").as_deref(), Some("2026-11-21"));
        assert_eq!(parse_date("2026-02-30"), None);
    }

    #[test]
    fn keys_from_labels() {
        assert_eq!(slug_key("Taille de T-shirt"), "taille_de_t_shirt");
        assert_eq!(slug_key("Études"), "etudes");
    }
}
