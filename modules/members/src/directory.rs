//! The member directory: a filtered, sorted, paged search over the members
//! of an organisation that stays fast with tens of thousands of them, and
//! the saved searches of the board.
//!
//! Each member has one summary row (`mem_directory`) holding the dates of
//! their last two periods, whether each is paid, and how the last one was
//! closed. Every write that changes a member's standing calls [`refresh`]
//! in its own transaction; an organisation whose periods were recorded
//! before the summary existed is summarised at its first search
//! ([`ensure_built`]). The standing itself depends on today's date, so it
//! is never stored: [`status_sql`] computes it from the stored dates.
//!
//! Only the last two periods are summarised: a member holding three periods
//! of different types at once is shown by the two that started last.

use crate::domain::{self, effective_end};
use crate::error::{MemError, MemResult};
use crate::service::{self, new_id, record, text_field, today};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_core::audit::Who;
use shrooms_core::custom_fields::Bind;
use shrooms_core::db::Tx;
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanRead, CanWrite};
use shrooms_core::{CoreError, Db};
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

// ---------- the summary rows ----------

struct PeriodSummary {
    id: String,
    type_id: String,
    start: String,
    end: Option<String>,
    paid: bool,
    reason: Option<String>,
    fee: i64,
    paid_cents: i64,
    invoice_id: Option<String>,
}

/// The periods of the given people (all members of the organisation when
/// `person` is `None`), newest start first within each person.
const SUMMARY_SELECT: &str = "SELECT p.person_id, p.id, p.type_id, p.starts_on, p.ends_on, p.closed_on, p.closed_reason, p.fee_cents, \
     COALESCE((SELECT CAST(SUM(d.amount_cents) AS BIGINT) FROM mem_dues d WHERE d.org_id = p.org_id AND d.period_id = p.id AND d.status = 'paid'), 0), \
     p.invoice_id FROM mem_periods p WHERE p.org_id = $1";

fn summary_row(r: &sqlx::any::AnyRow) -> MemResult<(String, PeriodSummary)> {
    let ends: Option<String> = r.try_get(4)?;
    let closed: Option<String> = r.try_get(5)?;
    let end = effective_end(service::opt_date(ends), service::opt_date(closed)).map(|d| d.to_string());
    let fee: i64 = r.try_get(7)?;
    let paid: i64 = r.try_get(8)?;
    Ok((
        r.try_get(0)?,
        PeriodSummary {
            id: r.try_get(1)?,
            type_id: r.try_get(2)?,
            start: r.try_get(3)?,
            end,
            paid: paid >= fee,
            reason: r.try_get(6)?,
            fee,
            paid_cents: paid,
            invoice_id: r.try_get(9)?,
        },
    ))
}

async fn write_summary(tx: &mut Tx, org: OrgId, person: &str, periods: &[PeriodSummary]) -> MemResult<()> {
    let (Some(a), b) = (periods.first(), periods.get(1)) else {
        sqlx::query("DELETE FROM mem_directory WHERE org_id = $1 AND person_id = $2")
            .bind(org.to_string())
            .bind(person)
            .execute(tx.conn())
            .await?;
        return Ok(());
    };
    let first = periods.iter().map(|p| p.start.as_str()).min().unwrap_or(&a.start).to_string();
    sqlx::query(
        "INSERT INTO mem_directory (org_id, person_id, first_start, a_period, a_type, a_start, a_end, a_paid, a_reason, \
         b_period, b_type, b_start, b_end, b_paid, updated_at, live_end) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (org_id, person_id) DO UPDATE SET first_start = $3, a_period = $4, a_type = $5, a_start = $6, a_end = $7, \
         a_paid = $8, a_reason = $9, b_period = $10, b_type = $11, b_start = $12, b_end = $13, b_paid = $14, updated_at = $15, \
         live_end = $16",
    )
    .bind(org.to_string())
    .bind(person)
    .bind(first)
    .bind(&a.id)
    .bind(&a.type_id)
    .bind(&a.start)
    .bind(&a.end)
    .bind(a.paid as i64)
    .bind(&a.reason)
    .bind(b.map(|b| b.id.clone()))
    .bind(b.map(|b| b.type_id.clone()))
    .bind(b.map(|b| b.start.clone()))
    .bind(b.and_then(|b| b.end.clone()))
    .bind(b.is_some_and(|b| b.paid) as i64)
    .bind(Timestamp::now().0)
    .bind(live_end(a, b))
    .execute(tx.conn())
    .await?;
    Ok(())
}

/// The last day on which the standing of a member whose last two periods
/// are `a` and `b` can be current: the latest of their ends and of the start
/// of `a` (see the migration `m20261121_660`). Up to date, late and not
/// started imply `live_end >= today`; lapsed, resigned and excluded imply
/// `live_end <= today`: an index range for the standing filters.
fn live_end(a: &PeriodSummary, b: Option<&PeriodSummary>) -> String {
    let open = "9999-12-31".to_string();
    let a_end = a.end.clone().unwrap_or_else(|| open.clone());
    let b_end = b.map(|b| b.end.clone().unwrap_or(open));
    [Some(a_end), b_end, Some(a.start.clone())].into_iter().flatten().max().unwrap_or_default()
}

/// Recomputes one member's summary row from their periods and dues, in the
/// caller's transaction. Every write that changes a standing (a period
/// recorded or closed, a due paid or returned) calls it before committing.
pub async fn refresh(tx: &mut Tx, org: OrgId, person: &str) -> MemResult<()> {
    let rows =
        sqlx::query(&format!("{SUMMARY_SELECT} AND p.person_id = $2 ORDER BY p.starts_on DESC, p.created_at DESC"))
            .bind(org.to_string())
            .bind(person)
            .fetch_all(tx.conn())
            .await?;
    let mut periods = rows.iter().map(|r| summary_row(r).map(|(_, p)| p)).collect::<MemResult<Vec<_>>>()?;
    settle_invoiced(tx.conn(), org, &mut periods).await?;
    write_summary(tx, org, person, &periods).await
}

/// Dues billed by invoice count as paid as the invoice is (the invoicing
/// module settles it; its `members.invoice_settled` job refreshes the row).
async fn settle_invoiced(conn: &mut sqlx::AnyConnection, org: OrgId, periods: &mut [PeriodSummary]) -> MemResult<()> {
    let ids: Vec<String> = periods.iter().filter_map(|p| p.invoice_id.clone()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let states = crate::billing::invoice_states(conn, org, &ids).await?;
    for p in periods.iter_mut() {
        if let Some(state) = p.invoice_id.as_ref().and_then(|i| states.get(i)) {
            p.paid = crate::billing::paid_with_invoice(p.fee, p.paid_cents, state) >= p.fee;
        }
    }
    Ok(())
}

/// [`refresh`] for several people (each once), by a few statements per 500
/// people: their periods read at once, the rows written by multi-row
/// upserts (the renewal run refreshes thousands).
pub async fn refresh_many(tx: &mut Tx, org: OrgId, mut people: Vec<String>) -> MemResult<()> {
    people.sort();
    people.dedup();
    for chunk in people.chunks(tx.backend().rows_per_statement(1).min(500)) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "{SUMMARY_SELECT} AND p.person_id IN ({}) ORDER BY p.person_id, p.starts_on DESC, p.created_at DESC",
            params.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for p in chunk {
            q = q.bind(p.as_str());
        }
        let rows = q.fetch_all(tx.conn()).await?;
        let by = summaries_by_person(tx, org, &rows).await?;
        // People left without a period lose their row.
        for p in chunk.iter().filter(|p| !by.iter().any(|(q, _)| q == *p)) {
            write_summary(tx, org, p, &[]).await?;
        }
        write_summaries(tx, org, &by, true).await?;
    }
    Ok(())
}

/// The rows of [`SUMMARY_SELECT`] ordered by person, grouped by person,
/// their invoiced dues settled (invoice states read once for all).
async fn summaries_by_person(
    tx: &mut Tx,
    org: OrgId,
    rows: &[sqlx::any::AnyRow],
) -> MemResult<Vec<(String, Vec<PeriodSummary>)>> {
    let mut by: Vec<(String, Vec<PeriodSummary>)> = Vec::new();
    for r in rows {
        let (person, p) = summary_row(r)?;
        match by.last_mut() {
            Some((id, v)) if *id == person => v.push(p),
            _ => by.push((person, vec![p])),
        }
    }
    // Handed back to each person's periods in the same order.
    let counts: Vec<usize> = by.iter().map(|(_, v)| v.len()).collect();
    let mut all: Vec<PeriodSummary> = by.iter_mut().flat_map(|(_, v)| std::mem::take(v)).collect();
    settle_invoiced(tx.conn(), org, &mut all).await?;
    let mut all = all.into_iter();
    for ((_, v), n) in by.iter_mut().zip(counts) {
        v.extend(all.by_ref().take(n));
    }
    Ok(by)
}

/// Writes the summary rows of people (each with at least one period), many
/// per statement; `upsert` replaces rows already there.
async fn write_summaries(tx: &mut Tx, org: OrgId, by: &[(String, Vec<PeriodSummary>)], upsert: bool) -> MemResult<()> {
    let now = Timestamp::now().0;
    for chunk in by.chunks(tx.backend().rows_per_statement(14).min(200)) {
        let mut sql = String::from(
            "INSERT INTO mem_directory (org_id, person_id, first_start, a_period, a_type, a_start, a_end, a_paid, a_reason, \
             b_period, b_type, b_start, b_end, b_paid, live_end, updated_at) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let n = i * 14;
            sql.push_str("($1");
            for k in 2..=15 {
                sql.push_str(&format!(", ${}", n + k));
            }
            sql.push_str(&format!(", {now})"));
        }
        if upsert {
            sql.push_str(
                " ON CONFLICT (org_id, person_id) DO UPDATE SET first_start = excluded.first_start, \
                 a_period = excluded.a_period, a_type = excluded.a_type, a_start = excluded.a_start, a_end = excluded.a_end, \
                 a_paid = excluded.a_paid, a_reason = excluded.a_reason, b_period = excluded.b_period, b_type = excluded.b_type, \
                 b_start = excluded.b_start, b_end = excluded.b_end, b_paid = excluded.b_paid, live_end = excluded.live_end, \
                 updated_at = excluded.updated_at",
            );
        }
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for (person, periods) in chunk {
            let a = &periods[0];
            let b = periods.get(1);
            let first = periods.iter().map(|p| p.start.as_str()).min().unwrap_or(&a.start).to_string();
            q = q
                .bind(person.as_str())
                .bind(first)
                .bind(a.id.as_str())
                .bind(a.type_id.as_str())
                .bind(a.start.as_str())
                .bind(a.end.clone())
                .bind(a.paid as i64)
                .bind(a.reason.clone())
                .bind(b.map(|b| b.id.clone()))
                .bind(b.map(|b| b.type_id.clone()))
                .bind(b.map(|b| b.start.clone()))
                .bind(b.and_then(|b| b.end.clone()))
                .bind(b.is_some_and(|b| b.paid) as i64)
                .bind(live_end(a, b));
        }
        q.execute(tx.conn()).await?;
    }
    Ok(())
}

/// Rebuilds every summary row of an organisation from its periods.
pub async fn rebuild(db: &Db, org: OrgId) -> MemResult<usize> {
    let mut tx = db.begin().await?;
    let rows = sqlx::query(&format!("{SUMMARY_SELECT} ORDER BY p.person_id, p.starts_on DESC, p.created_at DESC"))
        .bind(org.to_string())
        .fetch_all(tx.conn())
        .await?;
    sqlx::query("DELETE FROM mem_directory WHERE org_id = $1").bind(org.to_string()).execute(tx.conn()).await?;
    let by = summaries_by_person(&mut tx, org, &rows).await?;
    // Many rows per statement: a few hundred statements for 50,000 members.
    write_summaries(&mut tx, org, &by, false).await?;
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO mem_directory_built (org_id, built_at) VALUES ($1, $2) ON CONFLICT (org_id) DO UPDATE SET built_at = $2",
    )
    .bind(org.to_string())
    .bind(now)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    // PostgreSQL plans from statistics: right after a rebuild they still
    // describe the table before it, and the searches would read every
    // summary row until autovacuum runs (docs/PERFORMANCE.md).
    if db.backend() == shrooms_core::db::Backend::Postgres {
        sqlx::query("ANALYZE mem_directory").execute(db.pool()).await?;
    }
    Ok(by.len())
}

/// Builds the organisation's summary rows once, before its first search.
pub async fn ensure_built(db: &Db, org: OrgId) -> MemResult<()> {
    let built = sqlx::query("SELECT built_at FROM mem_directory_built WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_optional(db.pool())
        .await?
        .is_some();
    if !built {
        rebuild(db, org).await?;
    }
    Ok(())
}

// ---------- standing in SQL ----------

fn covers(p: &str, t: &str) -> String {
    format!("(d.{p}_start IS NOT NULL AND d.{p}_start <= {t} AND (d.{p}_end IS NULL OR d.{p}_end >= {t}))")
}

/// The standing of the row `d` (a `mem_directory` row, or none) on the day
/// bound at `t`, as the codes of [`domain::Standing`]: the same rules as
/// `domain::standing` applied to the last two periods.
pub fn status_sql(t: &str) -> String {
    let (a, b) = (covers("a", t), covers("b", t));
    format!(
        "(CASE WHEN d.person_id IS NULL THEN 'never' \
         WHEN ({a} AND d.a_paid = 1) OR ({b} AND d.b_paid = 1) THEN 'up_to_date' \
         WHEN {a} OR {b} THEN 'dues_unpaid' \
         WHEN d.a_start > {t} THEN 'not_started' \
         WHEN d.a_reason IS NOT NULL THEN d.a_reason ELSE 'lapsed' END)"
    )
}

/// Whether the standing is about the period before the last one (`b`):
/// when it covers the day and the last one does not, or only it is paid.
fn shows_b(t: &str) -> String {
    let (a, b) = (covers("a", t), covers("b", t));
    format!("({b} AND (NOT {a} OR (d.b_paid = 1 AND d.a_paid = 0)))")
}

fn shown(col: &str, t: &str) -> String {
    format!("(CASE WHEN {} THEN d.b_{col} ELSE d.a_{col} END)", shows_b(t))
}

/// Whether the row `d` has the standing `code` on the day bound at `t`, as
/// plain comparisons of the stored columns (exactly `status_sql(t) = code`
/// for a summary row). A filter is written this way rather than as the
/// `CASE`, whose selectivity PostgreSQL cannot estimate (it assumes one row
/// in two hundred, where one in five matches, and then joins and sorts every
/// match instead of walking the name index until a page is full:
/// docs/PERFORMANCE.md). Every part is true or false, never null, so `NOT`
/// is safe.
fn standing_is(code: &str, t: &str) -> String {
    let (a, b) = (covers("a", t), covers("b", t));
    let paid = format!("(({a} AND d.a_paid = 1) OR ({b} AND d.b_paid = 1))");
    let past = format!("(NOT {a} AND NOT {b} AND d.a_start <= {t})");
    match code {
        "current" => format!("({a} OR {b})"),
        "up_to_date" => paid,
        "dues_unpaid" => format!("(({a} OR {b}) AND NOT {paid})"),
        "not_started" => format!("(NOT {a} AND NOT {b} AND d.a_start > {t})"),
        "resigned" | "excluded" => format!("({past} AND d.a_reason = '{code}')"),
        "lapsed" => format!("({past} AND d.a_reason IS NULL)"),
        _ => "(1 = 0)".into(),
    }
}

/// `shown(col, t) {op} {value}` as plain comparisons (see [`standing_is`]):
/// the column of the period the standing is about. A null column compares
/// as null, as in the `CASE`.
fn shown_cmp(col: &str, op: &str, value: &str, t: &str) -> String {
    let b = shows_b(t);
    format!("(({b} AND d.b_{col} {op} {value}) OR (NOT {b} AND d.a_{col} {op} {value}))")
}

// ---------- the search ----------

pub const STATUSES: &[&str] = &["up_to_date", "dues_unpaid", "not_started", "lapsed", "resigned", "excluded", "never"];

/// A selection of people: every condition given must hold.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DirFilter {
    /// Words starting a word of the name, e-mail or phone (`mar dub`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub q: Option<String>,
    /// Standings, comma-separated: `up_to_date`, `dues_unpaid` (or `late`),
    /// `not_started`, `lapsed`, `resigned`, `excluded`, `never` (people of
    /// the directory who never held a membership). Members of any standing
    /// when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The type of the period the standing is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_id: Option<String>,
    /// First day of the first membership, from (`YYYY-MM-DD`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub joined_to: Option<String>,
    /// Last day of the period the standing is about, from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub household_id: Option<String>,
    /// Has an active SEPA mandate (`true`) or none (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sepa: Option<bool>,
    /// Has a permanent e-mail failure recorded (`true`) or none (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bounced: Option<bool>,
    /// Custom fields of people, `;`-separated: `key=value` (text from its
    /// start, choices and yes/no exactly), `key~value` (text containing),
    /// `key>=value` and `key<=value` (numbers and dates).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cf: Option<String>,
}

/// The query string of a search: the filter, its order and the page.
#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DirQuery {
    pub q: Option<String>,
    pub status: Option<String>,
    pub type_id: Option<String>,
    pub joined_from: Option<String>,
    pub joined_to: Option<String>,
    pub ends_from: Option<String>,
    pub ends_to: Option<String>,
    pub household_id: Option<String>,
    pub sepa: Option<bool>,
    pub bounced: Option<bool>,
    pub cf: Option<String>,
    /// A saved search whose filter is used (the other filters are then ignored).
    pub saved: Option<String>,
    /// `name` (family name, given name; the default) or `joined` (first membership first).
    pub sort: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1 to 200, 50 when left out.
    pub limit: Option<i64>,
}

impl DirQuery {
    pub fn filter(&self) -> DirFilter {
        let s = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        DirFilter {
            q: s(&self.q),
            status: s(&self.status),
            type_id: s(&self.type_id),
            joined_from: s(&self.joined_from),
            joined_to: s(&self.joined_to),
            ends_from: s(&self.ends_from),
            ends_to: s(&self.ends_to),
            household_id: s(&self.household_id),
            sepa: self.sepa,
            bounced: self.bounced,
            cf: s(&self.cf),
        }
    }
}

/// A member (or person) as the directory lists them.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DirRow {
    pub person_id: String,
    pub given_name: String,
    pub family_name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Standing today (see `status` of the filter).
    pub status: String,
    pub type_id: Option<String>,
    pub type_name: Option<String>,
    /// First and last day of the period the standing is about (the last day
    /// is the closing day when it was closed; none for a lifetime one).
    pub starts_on: Option<String>,
    pub ends_on: Option<String>,
    /// First day of the first membership.
    pub joined_on: Option<String>,
    pub household_id: Option<String>,
    pub sepa: bool,
    /// A permanent e-mail failure is recorded: mass mail skips them.
    pub bounced: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DirPage {
    pub items: Vec<DirRow>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Name,
    Joined,
}

struct Sql {
    binds: Vec<Bind>,
}

impl Sql {
    fn text(&mut self, v: impl Into<String>) -> String {
        self.binds.push(Bind::Text(v.into()));
        format!("${}", self.binds.len())
    }
}

fn bad(field: &str, m: impl Into<String>) -> MemError {
    MemError::field(field, m)
}

/// The words of a text search as the people index holds them (see
/// `shrooms_core::people`): folded, longest first, at most six.
fn words(text: &str) -> Vec<String> {
    let mut w: Vec<String> =
        shrooms_core::people::fold(text).split_whitespace().map(|w| w.chars().take(64).collect()).collect();
    w.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    w.dedup();
    w.truncate(6);
    w
}

/// The smallest string after every string starting with `prefix` (folded
/// letters and digits only).
fn upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match last {
            '0'..='8' | 'a'..='y' => Some(((last as u8) + 1) as char),
            '9' => Some('a'),
            _ => None,
        };
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn check_date(errors: &mut Vec<FieldError>, field: &str, v: &Option<String>) {
    if let Some(s) = v {
        if let Err(e) = domain::parse_date(field, s) {
            errors.push(e);
        }
    }
}

/// Checks a filter without running it (saved searches, mailings).
pub fn check_filter(f: &DirFilter) -> MemResult<()> {
    let mut errors = Vec::new();
    if let Some(s) = &f.status {
        for st in s.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if st != "late" && !STATUSES.contains(&st) {
                errors
                    .push(FieldError::new("status", format!("Unknown standing `{st}`: use {}.", STATUSES.join(", "))));
            }
        }
    }
    check_date(&mut errors, "joined_from", &f.joined_from);
    check_date(&mut errors, "joined_to", &f.joined_to);
    check_date(&mut errors, "ends_from", &f.ends_from);
    check_date(&mut errors, "ends_to", &f.ends_to);
    if f.q.as_deref().is_some_and(|q| q.chars().count() > 200) {
        errors.push(FieldError::new("q", "Use at most 200 characters."));
    }
    MemError::check(errors)
}

/// A set of people an index gives directly: `SELECT {col} {tail}` lists
/// them, with `$1` the organisation and `$2`, `$3`… its own `binds`.
struct PeopleSet {
    col: &'static str,
    tail: String,
    binds: Vec<Bind>,
}

/// Sets of fewer people than this drive the search: they are read first
/// and sorted, instead of walking the whole organisation in name (or
/// joining) order and testing each person (docs/PERFORMANCE.md).
const SMALL_SET: i64 = 1000;

/// How many people a set holds, counted up to [`SMALL_SET`] (an index range
/// read, well under a millisecond).
async fn set_size(db: &Db, org: OrgId, s: &PeopleSet) -> MemResult<i64> {
    let q = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM (SELECT 1 AS one {} LIMIT {SMALL_SET}) n", s.tail);
    let q = bind_all(sqlx::query(&q).bind(org.to_string()), &s.binds);
    Ok(q.fetch_one(db.pool()).await?.try_get(0)?)
}

/// `text` with its own values (`$2`, `$3`…) renumbered after those of `sql`
/// (`$1`, the organisation, stays).
fn embed(text: &str, binds: &[Bind], sql: &mut Sql) -> String {
    let mut out = String::with_capacity(text.len());
    let mut placed: HashMap<usize, String> = HashMap::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let digits: String =
            if c == '$' { text[i + 1..].chars().take_while(char::is_ascii_digit).collect() } else { String::new() };
        match digits.parse::<usize>() {
            Ok(n) if n >= 2 && n - 2 < binds.len() => {
                for _ in 0..digits.len() {
                    chars.next();
                }
                let slot = placed.entry(n).or_insert_with(|| {
                    sql.binds.push(binds[n - 2].clone());
                    format!("${}", sql.binds.len())
                });
                out.push_str(slot);
            }
            _ => out.push(c),
        }
    }
    out
}

/// The `FROM … WHERE …` of a filter; `$1` is the organisation, `$2` today.
/// `by_joining` when the rows come in joining order (members only): the
/// summary is then read first, through its joining-date index.
async fn where_clause(db: &Db, org: OrgId, f: &DirFilter, sql: &mut Sql, by_joining: bool) -> MemResult<String> {
    check_filter(f)?;
    let t = "$2";
    let mut w = String::new();
    let mut sets: Vec<PeopleSet> = Vec::new();
    // Standings.
    let mut statuses: Vec<&str> = f
        .status
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| if s == "late" { "dues_unpaid" } else { s })
        .collect();
    statuses.sort();
    statuses.dedup();
    let never = statuses.contains(&"never");
    statuses.retain(|s| *s != "never");
    match (never, statuses.is_empty()) {
        (false, true) => w.push_str(" AND d.person_id IS NOT NULL"),
        (true, true) => w.push_str(" AND d.person_id IS NULL"),
        (n, false) => {
            // The stored `live_end` narrows the standings through its index
            // when they are all current or all past (see `live_end`).
            const CURRENT: &[&str] = &["up_to_date", "dues_unpaid", "not_started"];
            if !n && statuses.iter().all(|s| CURRENT.contains(s)) {
                w.push_str(&format!(" AND d.live_end >= {t}"));
            } else if !n && statuses.iter().all(|s| !CURRENT.contains(s)) {
                w.push_str(&format!(" AND d.live_end <= {t}"));
            }
            // "Up to date or dues unpaid" is "a period covers the day": one
            // test of the two periods instead of both standings spelled out.
            if statuses.contains(&"up_to_date") && statuses.contains(&"dues_unpaid") {
                statuses.retain(|s| !["up_to_date", "dues_unpaid"].contains(s));
                statuses.push("current");
            }
            let cond = format!("({})", statuses.iter().map(|s| standing_is(s, t)).collect::<Vec<_>>().join(" OR "));
            if n {
                w.push_str(&format!(" AND (d.person_id IS NULL OR {cond})"));
            } else {
                w.push_str(&format!(" AND d.person_id IS NOT NULL AND {cond}"));
            }
        }
    }
    if let Some(ty) = &f.type_id {
        let x = sql.text(ty.as_str());
        // The first test is implied by the second; being two plain
        // comparisons it is evaluated first and turns away most rows before
        // the standing's longer test.
        w.push_str(&format!(" AND (d.a_type = {x} OR d.b_type = {x}) AND {}", shown_cmp("type", "=", &x, t)));
    }
    if let Some(v) = &f.joined_from {
        w.push_str(&format!(" AND d.first_start >= {}", sql.text(v.as_str())));
    }
    if let Some(v) = &f.joined_to {
        w.push_str(&format!(" AND d.first_start <= {}", sql.text(v.as_str())));
    }
    if let Some(v) = &f.ends_from {
        let v = sql.text(v.as_str());
        w.push_str(&format!(" AND {}", shown_cmp("end", ">=", &v, t)));
    }
    if let Some(v) = &f.ends_to {
        let v = sql.text(v.as_str());
        w.push_str(&format!(" AND {}", shown_cmp("end", "<=", &v, t)));
    }
    if let Some(h) = &f.household_id {
        sets.push(PeopleSet {
            col: "person_id",
            tail: "FROM mem_profiles WHERE org_id = $1 AND household_id = $2".into(),
            binds: vec![Bind::Text(h.clone())],
        });
    }
    if let Some(yes) = f.sepa {
        w.push_str(&format!(
            " AND {}EXISTS (SELECT 1 FROM mem_mandates s WHERE s.org_id = p.org_id AND s.person_id = p.id AND s.status = 'active')",
            if yes { "" } else { "NOT " }
        ));
    }
    if let Some(yes) = f.bounced {
        w.push_str(&format!(
            " AND {}EXISTS (SELECT 1 FROM mem_bounces b WHERE b.org_id = p.org_id AND b.person_id = p.id)",
            if yes { "" } else { "NOT " }
        ));
    }
    // Every word must start a word of the person: index range scans of the
    // core's search words.
    for word in words(f.q.as_deref().unwrap_or("")) {
        let (range, mut binds) = match upper_bound(&word) {
            Some(hi) => ("term >= $2 AND term < $3", vec![Bind::Text(hi)]),
            None => ("term >= $2", vec![]),
        };
        binds.insert(0, Bind::Text(word));
        sets.push(PeopleSet {
            col: "person_id",
            tail: format!("FROM people_terms WHERE org_id = $1 AND {range}"),
            binds,
        });
    }
    // Custom fields of people.
    for spec in shrooms_core::custom_fields::split_filters(f.cf.as_deref()).iter().take(10) {
        // (`key~text` comes back as a test of each person's own values.)
        let (cond, binds) = shrooms_core::custom_fields::filter_clause(db, org, "person", "p.id", spec, 2).await?;
        match cond.strip_prefix("p.id IN (SELECT entity_id ").and_then(|c| c.strip_suffix(')')) {
            // The field already names the kind of record; saying it
            // again lets a person be tested through the index of their
            // own values (org, kind, record) while walking the name
            // order, instead of hashing every value first and sorting.
            Some(tail) => {
                sets.push(PeopleSet { col: "entity_id", tail: format!("{tail} AND entity_type = 'person'"), binds })
            }
            None => w.push_str(&format!(" AND {}", embed(&cond, &binds, sql))),
        }
    }
    // The smallest of the sets under SMALL_SET drives; the others are tests.
    let mut driver: Option<(usize, i64)> = None;
    for (i, s) in sets.iter().enumerate() {
        let n = set_size(db, org, s).await?;
        if n < SMALL_SET && driver.is_none_or(|(_, m)| n < m) {
            driver = Some((i, n));
        }
    }
    for (i, s) in sets.iter().enumerate() {
        if driver.is_some_and(|(d, _)| d == i) {
            continue;
        }
        let cond = embed(&format!("p.id IN (SELECT {} {})", s.col, s.tail), &s.binds, sql);
        w.push_str(&format!(" AND {cond}"));
    }
    const PROFILE: &str = "LEFT JOIN mem_profiles m ON m.org_id = p.org_id AND m.person_id = p.id";
    const SUMMARY: &str = "LEFT JOIN mem_directory d ON d.org_id = p.org_id AND d.person_id = p.id";
    // CROSS JOIN keeps the written order on SQLite (its planner has no
    // statistics); PostgreSQL plans it as the inner join it is.
    let from = match driver {
        Some((i, _)) => {
            let s = &sets[i];
            let c = embed(&format!("SELECT DISTINCT {} AS person_id {}", s.col, s.tail), &s.binds, sql);
            format!(" FROM ({c}) c CROSS JOIN people p {SUMMARY} {PROFILE} WHERE p.id = c.person_id AND p.org_id = $1")
        }
        None if by_joining => format!(
            " FROM mem_directory d CROSS JOIN people p {PROFILE} \
             WHERE d.org_id = $1 AND p.org_id = d.org_id AND p.id = d.person_id"
        ),
        None => format!(" FROM people p {SUMMARY} {PROFILE} WHERE p.org_id = $1"),
    };
    Ok(format!("{from}{w}"))
}

fn select_cols() -> String {
    let t = "$2";
    format!(
        "SELECT p.id, p.given_name, p.family_name, p.email, p.phone, {}, {}, {}, {}, d.first_start, m.household_id, \
         CAST(CASE WHEN EXISTS (SELECT 1 FROM mem_mandates s WHERE s.org_id = $1 AND s.person_id = p.id AND s.status = 'active') THEN 1 ELSE 0 END AS BIGINT), \
         CAST(CASE WHEN EXISTS (SELECT 1 FROM mem_bounces b WHERE b.org_id = $1 AND b.person_id = p.id) THEN 1 ELSE 0 END AS BIGINT)",
        status_sql(t),
        shown("type", t),
        shown("start", t),
        shown("end", t)
    )
}

pub(crate) fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    binds: &'q [Bind],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::Text(t) => q.bind(t.as_str()),
            Bind::Int(i) => q.bind(*i),
        };
    }
    q
}

async fn type_names(db: &Db, org: OrgId) -> MemResult<HashMap<String, String>> {
    let rows = sqlx::query("SELECT id, name FROM mem_types WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect()
}

fn dir_row(r: &sqlx::any::AnyRow, names: &HashMap<String, String>) -> MemResult<DirRow> {
    let type_id: Option<String> = r.try_get(6)?;
    Ok(DirRow {
        person_id: r.try_get(0)?,
        given_name: r.try_get(1)?,
        family_name: r.try_get(2)?,
        email: r.try_get(3)?,
        phone: r.try_get(4)?,
        status: r.try_get(5)?,
        type_name: type_id.as_ref().and_then(|t| names.get(t).cloned()),
        type_id,
        starts_on: r.try_get(7)?,
        ends_on: r.try_get(8)?,
        joined_on: r.try_get(9)?,
        household_id: r.try_get(10)?,
        sepa: r.try_get::<i64, _>(11)? != 0,
        bounced: r.try_get::<i64, _>(12)? != 0,
    })
}

fn bad_cursor() -> MemError {
    bad("cursor", "This cursor is not valid for this list; start again without it.")
}

/// The statement of one page of the directory and its values.
async fn page_query(
    db: &Db,
    org: OrgId,
    zone: &str,
    f: &DirFilter,
    sort: Sort,
    cursor: Option<&str>,
    limit: i64,
) -> MemResult<(String, Sql)> {
    let mut sql = Sql { binds: vec![Bind::Text(org.to_string()), Bind::Text(today(zone).to_string())] };
    let by_joining = sort == Sort::Joined && members_only(f);
    let mut q = format!("{}{}", select_cols(), where_clause(db, org, f, &mut sql, by_joining).await?);
    let key: Option<Vec<String>> = match cursor.filter(|c| !c.is_empty()) {
        Some(c) => Some(decode_cursor(c).ok_or_else(bad_cursor)?),
        None => None,
    };
    let order = match sort {
        Sort::Name => {
            if let Some(k) = &key {
                let [fam, giv, id] = k.as_slice() else { return Err(bad_cursor()) };
                let (a, b, c) = (sql.text(fam.as_str()), sql.text(giv.as_str()), sql.text(id.as_str()));
                q.push_str(&format!(" AND (p.family_name, p.given_name, p.id) > ({a}, {b}, {c})"));
            }
            "p.family_name, p.given_name, p.id"
        }
        // Members only (the usual case): the summary's own columns, so the
        // index on (org, first_start, person) gives the order (COALESCE
        // would hide it and sort every member at each page).
        Sort::Joined if by_joining => {
            if let Some(k) = &key {
                let [joined, id] = k.as_slice() else { return Err(bad_cursor()) };
                let (a, b) = (sql.text(joined.as_str()), sql.text(id.as_str()));
                q.push_str(&format!(" AND (d.first_start > {a} OR (d.first_start = {a} AND d.person_id > {b}))"));
            }
            "d.first_start, d.person_id"
        }
        Sort::Joined => {
            if let Some(k) = &key {
                let [joined, id] = k.as_slice() else { return Err(bad_cursor()) };
                let (a, b) = (sql.text(joined.as_str()), sql.text(id.as_str()));
                q.push_str(&format!(" AND (COALESCE(d.first_start, ''), p.id) > ({a}, {b})"));
            }
            "COALESCE(d.first_start, ''), p.id"
        }
    };
    q.push_str(&format!(" ORDER BY {order} LIMIT {}", limit + 1));
    Ok((q, sql))
}

/// The plan the database chooses for one page of the directory (`EXPLAIN
/// QUERY PLAN` on SQLite, `EXPLAIN ANALYZE` on PostgreSQL), one line per
/// step: for the directory benchmark and for looking into a slow search.
pub async fn explain(
    db: &Db,
    cap: &CanRead,
    zone: &str,
    f: &DirFilter,
    sort: Sort,
    cursor: Option<&str>,
    limit: i64,
) -> MemResult<Vec<String>> {
    let org = cap.org();
    ensure_built(db, org).await?;
    let (q, sql) = page_query(db, org, zone, f, sort, cursor, limit.clamp(1, 200)).await?;
    let (prefix, col) = match db.backend() {
        shrooms_core::db::Backend::Sqlite => ("EXPLAIN QUERY PLAN ", 3),
        shrooms_core::db::Backend::Postgres => ("EXPLAIN (ANALYZE, BUFFERS) ", 0),
    };
    let rows = bind_all(sqlx::query(&format!("{prefix}{q}")), &sql.binds).fetch_all(db.pool()).await?;
    let mut lines = vec![q.clone()];
    for r in &rows {
        lines.push(r.try_get::<String, _>(col)?);
    }
    Ok(lines)
}

/// One page of the directory.
pub async fn search(
    db: &Db,
    cap: &CanRead,
    zone: &str,
    f: &DirFilter,
    sort: Sort,
    cursor: Option<&str>,
    limit: i64,
) -> MemResult<DirPage> {
    let org = cap.org();
    ensure_built(db, org).await?;
    let limit = limit.clamp(1, 200);
    let (q, sql) = page_query(db, org, zone, f, sort, cursor, limit).await?;
    let rows = bind_all(sqlx::query(&q), &sql.binds).fetch_all(db.pool()).await?;
    let names = type_names(db, org).await?;
    let mut items = rows.iter().map(|r| dir_row(r, &names)).collect::<MemResult<Vec<_>>>()?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|r| {
            let k = match sort {
                Sort::Name => vec![r.family_name.clone(), r.given_name.clone(), r.person_id.clone()],
                Sort::Joined => vec![r.joined_on.clone().unwrap_or_default(), r.person_id.clone()],
            };
            encode_cursor(&k)
        })
    } else {
        None
    };
    Ok(DirPage { items, next_cursor })
}

/// Whether a filter selects members only (not people who never held a
/// membership): then every row has its summary row.
fn members_only(f: &DirFilter) -> bool {
    !f.status.as_deref().unwrap_or("").split(',').any(|s| s.trim() == "never")
}

/// Every person of a selection, in name order (mass mail, labels, exports).
pub const MAX_SELECTION: i64 = 100_000;

pub async fn select_all(db: &Db, cap: &CanRead, zone: &str, f: &DirFilter) -> MemResult<Vec<DirRow>> {
    let org = cap.org();
    ensure_built(db, org).await?;
    let mut sql = Sql { binds: vec![Bind::Text(org.to_string()), Bind::Text(today(zone).to_string())] };
    let q = format!(
        "{}{} ORDER BY p.family_name, p.given_name, p.id LIMIT {MAX_SELECTION}",
        select_cols(),
        where_clause(db, org, f, &mut sql, false).await?
    );
    let rows = bind_all(sqlx::query(&q), &sql.binds).fetch_all(db.pool()).await?;
    let names = type_names(db, org).await?;
    rows.iter().map(|r| dir_row(r, &names)).collect()
}

/// How many people a selection holds.
pub async fn count(db: &Db, cap: &CanRead, zone: &str, f: &DirFilter) -> MemResult<i64> {
    let org = cap.org();
    ensure_built(db, org).await?;
    let mut sql = Sql { binds: vec![Bind::Text(org.to_string()), Bind::Text(today(zone).to_string())] };
    let q = format!("SELECT CAST(COUNT(*) AS BIGINT){}", where_clause(db, org, f, &mut sql, false).await?);
    Ok(bind_all(sqlx::query(&q), &sql.binds).fetch_one(db.pool()).await?.try_get(0)?)
}

pub fn parse_sort(s: Option<&str>) -> MemResult<Sort> {
    match s.map(str::trim).unwrap_or("") {
        "" | "name" => Ok(Sort::Name),
        "joined" => Ok(Sort::Joined),
        _ => Err(bad("sort", "Sort by name or joined.")),
    }
}

/// The filter of a query: its saved search's, or its own.
pub async fn resolve(db: &Db, cap: &CanRead, q: &DirQuery) -> MemResult<DirFilter> {
    match q.saved.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => Ok(saved_search(db, cap, id).await?.filter),
        None => Ok(q.filter()),
    }
}

// ---------- saved searches ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SavedSearch {
    pub id: String,
    pub name: String,
    pub filter: DirFilter,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavedSearchInput {
    pub name: Option<String>,
    #[serde(default, deserialize_with = "shrooms_core::web::api::nested_object")]
    pub filter: Option<DirFilter>,
}

fn saved_row(r: &sqlx::any::AnyRow) -> MemResult<SavedSearch> {
    let filter: String = r.try_get(2)?;
    Ok(SavedSearch {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        filter: serde_json::from_str(&filter).unwrap_or_default(),
        created_at: Timestamp(r.try_get(3)?).rfc3339(),
        updated_at: Timestamp(r.try_get(4)?).rfc3339(),
    })
}

const SAVED_COLS: &str = "id, name, filter, created_at, updated_at FROM mem_saved_searches";

pub async fn saved_searches(db: &Db, cap: &CanRead) -> MemResult<Vec<SavedSearch>> {
    let rows = sqlx::query(&format!("SELECT {SAVED_COLS} WHERE org_id = $1 ORDER BY name, id"))
        .bind(cap.org().to_string())
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(saved_row).collect()
}

pub async fn saved_search(db: &Db, cap: &CanRead, id: &str) -> MemResult<SavedSearch> {
    let r = sqlx::query(&format!("SELECT {SAVED_COLS} WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    r.as_ref().map(saved_row).transpose()?.ok_or(MemError::Core(CoreError::NotFound))
}

fn name_taken(e: sqlx::Error) -> MemError {
    MemError::Core(CoreError::from(e).on_conflict("name", "A saved search already has this name."))
}

pub async fn create_saved_search(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    input: SavedSearchInput,
) -> MemResult<SavedSearch> {
    let mut errors = Vec::new();
    let name = text_field(&mut errors, "name", input.name.as_deref().unwrap_or(""), 100, true);
    MemError::check(errors)?;
    let filter = input.filter.unwrap_or_default();
    check_filter(&filter)?;
    let id = new_id();
    let now = Timestamp::now().0;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO mem_saved_searches (id, org_id, name, filter, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&id)
    .bind(cap.org().to_string())
    .bind(&name)
    .bind(serde_json::to_string(&filter).unwrap_or_default())
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(name_taken)?;
    record(
        &mut tx,
        who,
        cap.org(),
        "members.search.create",
        "members_saved_search",
        &id,
        None,
        Some(json!({"name": name, "filter": filter})),
    )
    .await?;
    tx.commit().await?;
    saved_search(db, &cap.as_read(), &id).await
}

pub async fn update_saved_search(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    id: &str,
    input: SavedSearchInput,
) -> MemResult<SavedSearch> {
    let before = saved_search(db, &cap.as_read(), id).await?;
    let mut errors = Vec::new();
    let name = text_field(&mut errors, "name", input.name.as_deref().unwrap_or(&before.name), 100, true);
    MemError::check(errors)?;
    let filter = input.filter.unwrap_or(before.filter.clone());
    check_filter(&filter)?;
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE mem_saved_searches SET name = $1, filter = $2, updated_at = $3 WHERE org_id = $4 AND id = $5")
        .bind(&name)
        .bind(serde_json::to_string(&filter).unwrap_or_default())
        .bind(Timestamp::now().0)
        .bind(cap.org().to_string())
        .bind(id)
        .execute(tx.conn())
        .await
        .map_err(name_taken)?;
    record(
        &mut tx,
        who,
        cap.org(),
        "members.search.update",
        "members_saved_search",
        id,
        Some(json!({"name": before.name, "filter": before.filter})),
        Some(json!({"name": name, "filter": filter})),
    )
    .await?;
    tx.commit().await?;
    saved_search(db, &cap.as_read(), id).await
}

pub async fn delete_saved_search(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> MemResult<()> {
    let before = saved_search(db, &cap.as_read(), id).await?;
    let mut tx = db.begin().await?;
    sqlx::query("DELETE FROM mem_saved_searches WHERE org_id = $1 AND id = $2")
        .bind(cap.org().to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    record(
        &mut tx,
        who,
        cap.org(),
        "members.search.delete",
        "members_saved_search",
        id,
        Some(json!({"name": before.name, "filter": before.filter})),
        None,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Cursors are the sort key of the last row, as hexadecimal JSON.
fn encode_cursor(key: &[String]) -> String {
    serde_json::to_vec(key).unwrap_or_default().iter().map(|b| format!("{b:02x}")).collect()
}

fn decode_cursor(c: &str) -> Option<Vec<String>> {
    if !c.len().is_multiple_of(2) || !c.is_ascii() {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..c.len()).step_by(2).map(|i| u8::from_str_radix(&c[i..i + 2], 16).ok()).collect();
    serde_json::from_slice(&bytes?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The filters' plain comparisons select exactly the rows whose `CASE`
    /// (what the list shows) has the value asked, for every combination of
    /// dates around today, payments, closings and types.
    #[tokio::test]
    async fn filter_comparisons_match_the_shown_standing() {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new().max_connections(1).connect("sqlite::memory:").await.unwrap();
        sqlx::query(
            "CREATE TABLE mem_directory (person_id TEXT, a_type TEXT, a_start TEXT, a_end TEXT, a_paid BIGINT, \
             a_reason TEXT, b_type TEXT, b_start TEXT, b_end TEXT, b_paid BIGINT)",
        )
        .execute(&pool)
        .await
        .unwrap();
        let t = "'2026-06-15'";
        let mut n = 0;
        for a_start in ["2025-01-01", "2026-06-15", "2026-07-01"] {
            for a_end in [None, Some("2025-12-31"), Some("2026-06-14"), Some("2026-06-15"), Some("2026-12-31")] {
                for a_reason in [None, Some("resigned"), Some("excluded")] {
                    let mut bs: Vec<(Option<&str>, Option<&str>)> = vec![(None, None)];
                    for b_start in ["2024-01-01", "2025-01-01", "2026-06-15"] {
                        for b_end in [None, Some("2025-06-30"), Some("2026-06-15"), Some("2026-12-31")] {
                            bs.push((Some(b_start), b_end));
                        }
                    }
                    for (b_start, b_end) in bs {
                        for (a_paid, b_paid) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                            for (a_type, b_type) in [("x", "x"), ("x", "y"), ("y", "x")] {
                                n += 1;
                                sqlx::query(
                                    "INSERT INTO mem_directory VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                                )
                                .bind(format!("p{n}"))
                                .bind(a_type)
                                .bind(a_start)
                                .bind(a_end)
                                .bind(a_paid)
                                .bind(a_reason)
                                .bind(b_start.map(|_| b_type))
                                .bind(b_start)
                                .bind(b_end)
                                .bind(b_paid)
                                .execute(&pool)
                                .await
                                .unwrap();
                            }
                        }
                    }
                }
            }
        }
        let differ = |exact: String, plain: String| {
            let pool = pool.clone();
            async move {
                let q = format!(
                    "SELECT CAST(COUNT(*) AS BIGINT) FROM mem_directory d WHERE \
                     (CASE WHEN {exact} THEN 1 ELSE 0 END) <> (CASE WHEN {plain} THEN 1 ELSE 0 END)"
                );
                sqlx::query_scalar::<_, i64>(&q).fetch_one(&pool).await.unwrap()
            }
        };
        for code in STATUSES.iter().filter(|s| **s != "never") {
            let exact = format!("{} = '{code}'", status_sql(t));
            let q = format!("SELECT CAST(COUNT(*) AS BIGINT) FROM mem_directory d WHERE {exact}");
            assert!(sqlx::query_scalar::<_, i64>(&q).fetch_one(&pool).await.unwrap() > 0, "no row is {code}");
            assert_eq!(differ(exact, standing_is(code, t)).await, 0, "{code}");
        }
        let exact = format!("{} IN ('up_to_date', 'dues_unpaid')", status_sql(t));
        assert_eq!(differ(exact, standing_is("current", t)).await, 0, "current");
        for (col, op, v) in [
            ("type", "=", "'x'"),
            ("end", ">=", "'2026-01-01'"),
            ("end", "<=", "'2026-06-15'"),
            ("end", "<=", "'2025-12-31'"),
        ] {
            let exact = format!("{} {op} {v}", shown(col, t));
            assert_eq!(differ(exact, shown_cmp(col, op, v, t)).await, 0, "{col} {op} {v}");
        }
    }
}
