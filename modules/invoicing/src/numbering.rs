//! Numbering series: quotes, invoices and credit notes are numbered
//! continuously per series, without gaps and without reuse.
//!
//! A number is taken by [`take_number`] inside the transaction that
//! validates the document (and posts its ledger entry): the `UPDATE … +1`
//! holds the series row's lock on PostgreSQL (and the write lock on
//! SQLite) until that transaction ends, so concurrent validations on
//! several replicas queue up, and a failed validation rolls its number
//! back with everything else. Nothing produced after the commit (PDF,
//! Factur-X, mail) can make a gap: it is made from the stored document.

use crate::catalogue::{audited, text};
use serde::{Deserialize, Serialize};
use shrooms_accounting::domain::Day;
use shrooms_core::audit::Who;
use shrooms_core::db::Db;
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::OrgId;
use shrooms_core::permissions::{CanAdmin, CanRead};
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

/// The series every organisation starts with: (code, kind, prefix, label).
pub const DEFAULT_SERIES: &[(&str, &str, &str, &str)] = &[
    ("D", "quote", "D{YYYY}-", "Devis"),
    ("F", "invoice", "F{YYYY}-", "Factures"),
    ("A", "credit_note", "A{YYYY}-", "Avoirs"),
];

pub const KINDS: &[&str] = &["quote", "invoice", "credit_note"];

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Series {
    pub code: String,
    /// `quote`, `invoice` or `credit_note`.
    pub kind: String,
    /// `{YYYY}` is replaced by the issue year when the settings put the year in numbers.
    pub prefix: String,
    pub label: String,
    pub is_default: bool,
    pub last_number: i64,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSeries {
    /// 1 to 10 upper-case letters or digits.
    pub code: String,
    pub kind: String,
    pub prefix: String,
    #[serde(default)]
    pub label: Option<String>,
}

/// The printed number: the prefix (with or without the year) and the
/// sequence on five digits: `F2026-00042`.
pub fn format_number(prefix: &str, with_year: bool, issue: Day, seq: i64) -> String {
    let year = if with_year { issue.0.year().to_string() } else { String::new() };
    format!("{}{:05}", prefix.replace("{YYYY}", &year), seq)
}

/// The default series of a kind.
pub async fn default_series(conn: &mut AnyConnection, org: OrgId, kind: &str) -> CoreResult<String> {
    let r = sqlx::query(
        "SELECT code FROM inv_series WHERE org_id = $1 AND kind = $2 ORDER BY is_default DESC, code LIMIT 1",
    )
    .bind(org.to_string())
    .bind(kind)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| CoreError::validation("series", "There is no numbering series for this kind of document."))?;
    Ok(r.try_get(0)?)
}

/// The kind a series numbers, if the series exists.
pub async fn series_kind(conn: &mut AnyConnection, org: OrgId, code: &str) -> CoreResult<Option<String>> {
    let r = sqlx::query("SELECT kind FROM inv_series WHERE org_id = $1 AND code = $2")
        .bind(org.to_string())
        .bind(code)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(r.map(|r| r.try_get(0)).transpose()?)
}

/// Takes the next `count` numbers of a series in the caller's transaction;
/// returns the first sequence number and the prefix pattern.
pub async fn take_numbers(conn: &mut AnyConnection, org: OrgId, code: &str, count: i64) -> CoreResult<(i64, String)> {
    let r = sqlx::query(
        "UPDATE inv_series SET last_number = last_number + $1 WHERE org_id = $2 AND code = $3 \
         RETURNING last_number, prefix",
    )
    .bind(count)
    .bind(org.to_string())
    .bind(code)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| CoreError::validation("series", format!("There is no numbering series {code}.").as_str()))?;
    let last: i64 = r.try_get(0)?;
    Ok((last - count + 1, r.try_get(1)?))
}

pub async fn list(db: &Db, cap: &CanRead) -> CoreResult<Vec<Series>> {
    let rows = sqlx::query(
        "SELECT code, kind, prefix, label, is_default, last_number FROM inv_series WHERE org_id = $1 ORDER BY kind, code",
    )
    .bind(cap.org().to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Series {
                code: r.try_get(0)?,
                kind: r.try_get(1)?,
                prefix: r.try_get(2)?,
                label: r.try_get(3)?,
                is_default: r.try_get::<i64, _>(4)? != 0,
                last_number: r.try_get(5)?,
            })
        })
        .collect()
}

/// Adds a series (another shop, another activity billed apart). It starts at 1.
pub async fn create(db: &Db, who: &Who, cap: &CanAdmin, input: NewSeries) -> CoreResult<Series> {
    let mut e = Vec::new();
    let code = input.code.trim().to_ascii_uppercase();
    if code.is_empty() || code.len() > 10 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        e.push(FieldError::new("code", "A series code has 1 to 10 letters or digits."));
    }
    let kind = input.kind.trim().to_string();
    if !KINDS.contains(&kind.as_str()) {
        e.push(FieldError::new("kind", "Choose quote, invoice or credit_note."));
    }
    let prefix = text(&input.prefix, "prefix", 20, &mut e);
    if prefix.is_empty()
        || !prefix.replace("{YYYY}", "").chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/' || c == '_')
    {
        e.push(FieldError::new(
            "prefix",
            "A prefix has letters, digits, - / _ and optionally {YYYY}, such as FB{YYYY}-.",
        ));
    }
    let label = text(input.label.as_deref().unwrap_or(""), "label", 100, &mut e);
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    let org = cap.org();
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO inv_series (org_id, code, kind, prefix, label, is_default, last_number) VALUES ($1, $2, $3, $4, $5, 0, 0)",
    )
    .bind(org.to_string())
    .bind(&code)
    .bind(&kind)
    .bind(&prefix)
    .bind(&label)
    .execute(tx.conn())
    .await
    .map_err(|e| match CoreError::from(e) {
        CoreError::Conflict { .. } => {
            CoreError::Conflict { field: Some("code".into()), message: format!("The series {code} exists already.") }
        }
        e => e,
    })?;
    let s = Series { code, kind, prefix, label, is_default: false, last_number: 0 };
    audited(&mut tx, who, org, "invoicing.series.create", "inv_series", &s.code, None, serde_json::to_value(&s).ok())
        .await?;
    tx.commit().await?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_have_the_year_when_asked() {
        let d = Day::parse("2026-03-01").unwrap();
        assert_eq!(format_number("F{YYYY}-", true, d, 42), "F2026-00042");
        assert_eq!(format_number("F{YYYY}-", false, d, 42), "F-00042");
        assert_eq!(format_number("FB", true, d, 100_000), "FB100000");
    }
}
