//! Members statistics: members over time (the last 24 months), by
//! membership type today, joins and departures per month, dues collected
//! per month and per year. Every figure is one SQL aggregate; no period or
//! due is loaded into memory.
//!
//! Definitions (the same as a member's standing):
//! - a person **is a member on a day** when one of their periods has
//!   started and not ended that day (its end is the earlier of its term and
//!   the day it was closed; a lifetime period has none);
//! - a **join** is a period recorded as a join (not a renewal), counted in
//!   the month it starts;
//! - a **departure** is a resignation or an exclusion (in the month of the
//!   closing day) or a **lapse**: a period that ended, was not closed, and
//!   was not followed the next day by a period of the same type, counted in
//!   the month of the day after its end (only when that day is past);
//! - **dues collected** are dues recorded and not returned (a returned
//!   direct debit is not collected), by payment date.
//!
//! A [`StatsFilter`] narrows every figure to one membership type (periods
//! of that type, dues of those periods) and to the people whose custom
//! fields match, with the member directory's `cf` syntax. The filter is
//! added to each aggregate as conditions with bound values: still one SQL
//! text for both engines, nothing loaded into memory.

use crate::domain::cents_text;
use crate::error::{MemError, MemResult};
use jiff::civil::Date;
use serde::{Deserialize, Serialize};
use shrooms_core::custom_fields::{self, Bind};
use shrooms_core::db::Backend;
use shrooms_core::error::FieldError;
use shrooms_core::permissions::CanRead;
use shrooms_core::{CoreError, Db};
use sqlx::Row;
use std::collections::HashMap;
use utoipa::{IntoParams, ToSchema};

/// How many months the monthly series cover, the current one included.
pub const MONTHS: i16 = 24;

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MonthCount {
    /// `YYYY-MM`.
    pub month: String,
    /// The day counted: the month's last day, or today for the current month.
    pub day: String,
    pub members: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TypeCount {
    pub type_id: String,
    pub name: String,
    /// People with a period of this type today.
    pub members: i64,
}

#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct MonthMoves {
    /// `YYYY-MM`.
    pub month: String,
    pub joins: i64,
    pub resignations: i64,
    pub exclusions: i64,
    pub lapses: i64,
    /// Resignations, exclusions and lapses.
    pub departures: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MoneyCount {
    /// `YYYY-MM` or `YYYY`.
    pub period: String,
    pub amount_cents: i64,
    /// Receipts counted.
    pub dues: i64,
}

/// Which figures to count; both filters are optional and combine.
#[derive(Clone, Debug, Default, Deserialize, Serialize, ToSchema, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsFilter {
    /// One membership type (its id): members are the people with a period
    /// of this type on the day counted, joins and departures those of
    /// periods of this type, dues those of periods of this type (dues
    /// recorded without a period are then left out); "by type" lists this
    /// type only.
    pub type_id: Option<String>,
    /// Custom fields of people, `;`-separated, as in the member directory:
    /// `key=value` (text from its start, choices and yes/no exactly),
    /// `key~value` (text containing), `key>=value` and `key<=value`
    /// (numbers and dates). Only the people matching every condition are
    /// counted, in every figure (dues by the person they were recorded for).
    pub cf: Option<String>,
}

impl StatsFilter {
    /// Blank values (an empty form field) are no filter.
    pub fn normalized(&self) -> StatsFilter {
        let s = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        StatsFilter { type_id: s(&self.type_id), cf: s(&self.cf) }
    }
    pub fn is_empty(&self) -> bool {
        self.type_id.is_none() && self.cf.is_none()
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Stats {
    /// The filter the figures were counted with (blank values removed).
    pub filter: StatsFilter,
    /// The day the figures are computed for, in the organisation's time zone.
    pub today: String,
    /// Members today (people, each counted once whatever their types).
    pub members_today: i64,
    pub members_by_month: Vec<MonthCount>,
    pub by_type: Vec<TypeCount>,
    pub moves_by_month: Vec<MonthMoves>,
    pub dues_by_month: Vec<MoneyCount>,
    /// Every year with dues, oldest first.
    pub dues_by_year: Vec<MoneyCount>,
}

fn last_day(d: Date) -> Date {
    d.last_of_month()
}

/// The first day of the month `back` months before the month of `today`.
fn month_start(today: Date, back: i16) -> Date {
    let mut y = today.year();
    let mut m = today.month() as i16 - back;
    while m < 1 {
        m += 12;
        y -= 1;
    }
    Date::new(y, m as i8, 1).expect("a valid month")
}

/// The SQL of "the day after `col`" (a `YYYY-MM-DD` text) on each engine.
fn next_day(backend: Backend, col: &str) -> String {
    match backend {
        Backend::Sqlite => format!("date({col}, '+1 day')"),
        Backend::Postgres => format!("to_char(CAST({col} AS date) + 1, 'YYYY-MM-DD')"),
    }
}

const END: &str = "CASE WHEN p.closed_on IS NOT NULL AND (p.ends_on IS NULL OR p.closed_on < p.ends_on) THEN p.closed_on ELSE p.ends_on END";

/// At most this many custom-field conditions in one filter.
const MAX_CONDITIONS: usize = 10;

/// A checked filter, ready to be added to the aggregates. The conditions
/// on people are written on `fp.id` (a person of the organisation) with
/// their values numbered from `$2` (`$1` is the organisation); each query
/// moves them after its own values (see [`renumber`]).
#[derive(Clone, Debug, Default)]
pub struct Scope {
    type_id: Option<String>,
    people: Vec<String>,
    binds: Vec<Bind>,
}

/// Checks a filter: the type must be one of the organisation's (another
/// organisation's type is refused with the same message as an unknown one),
/// every field a live custom field of people.
pub async fn scope(db: &Db, cap: &CanRead, f: &StatsFilter) -> MemResult<Scope> {
    let f = f.normalized();
    let org = cap.org();
    let mut errors = Vec::new();
    let mut out = Scope::default();
    if let Some(t) = &f.type_id {
        let found = sqlx::query("SELECT id FROM mem_types WHERE org_id = $1 AND id = $2")
            .bind(org.to_string())
            .bind(t.as_str())
            .fetch_optional(db.pool())
            .await?;
        match found {
            Some(_) => out.type_id = Some(t.clone()),
            None => errors.push(FieldError::new("type_id", format!("There is no membership type `{t}`."))),
        }
    }
    let specs = custom_fields::split_filters(f.cf.as_deref());
    if specs.len() > MAX_CONDITIONS {
        errors.push(FieldError::new("cf", format!("Use at most {MAX_CONDITIONS} conditions.")));
    } else {
        for spec in &specs {
            let next = out.binds.len() + 2;
            match custom_fields::filter_clause(db, org, "person", "fp.id", spec, next).await {
                Ok((cond, binds)) => {
                    out.people.push(cond);
                    out.binds.extend(binds);
                }
                Err(CoreError::Validation(v)) => errors.extend(v),
                Err(e) => return Err(e.into()),
            }
        }
    }
    MemError::check(errors)?;
    Ok(out)
}

/// `sql` with its values `$2`, `$3`… moved to `$first`, `$first + 1`…
/// (`$1`, the organisation, stays).
fn renumber(sql: &str, first: usize) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let digits: String = rest[i + 1..].chars().take_while(char::is_ascii_digit).collect();
        match digits.parse::<usize>() {
            Ok(n) if n >= 2 => out.push_str(&format!("${}", n - 2 + first)),
            _ => {
                out.push('$');
                out.push_str(&digits);
            }
        }
        rest = &rest[i + 1 + digits.len()..];
    }
    out.push_str(rest);
    out
}

/// The conditions of a [`Scope`] added to one query whose own values end
/// at `$(first - 1)`; the values to bind after the query's own.
struct Extra<'a> {
    scope: &'a Scope,
    first: usize,
    binds: Vec<Bind>,
}

impl<'a> Extra<'a> {
    fn new(scope: &'a Scope, first: usize) -> Self {
        Extra { scope, first, binds: Vec::new() }
    }
    fn next(&self) -> usize {
        self.first + self.binds.len()
    }
    /// ` AND {cond}` with `{type}` the chosen type, or nothing.
    fn of_type(&mut self, cond: &str) -> String {
        let Some(t) = &self.scope.type_id else { return String::new() };
        let s = format!(" AND {}", cond.replace("{type}", &format!("${}", self.next())));
        self.binds.push(Bind::Text(t.clone()));
        s
    }
    /// ` AND {col} IN (the people matching)`, or nothing.
    fn of_people(&mut self, col: &str) -> String {
        if self.scope.people.is_empty() {
            return String::new();
        }
        let cond = renumber(&self.scope.people.join(" AND "), self.next());
        self.binds.extend(self.scope.binds.iter().cloned());
        format!(" AND {col} IN (SELECT fp.id FROM people fp WHERE fp.org_id = $1 AND {cond})")
    }
}

use crate::directory::bind_all;

/// The figures, with every filter applied (see [`StatsFilter`]).
pub async fn stats(db: &Db, cap: &CanRead, today: Date, filter: &StatsFilter) -> MemResult<Stats> {
    let scope = scope(db, cap, filter).await?;
    let org = cap.org().to_string();
    let first = month_start(today, MONTHS - 1);
    let days: Vec<(String, String)> = (0..MONTHS)
        .rev()
        .map(|back| {
            let start = month_start(today, back);
            let day = if back == 0 { today } else { last_day(start) };
            (start.strftime("%Y-%m").to_string(), day.to_string())
        })
        .collect();
    let pool = db.pool();
    let map = |e: sqlx::Error| CoreError::from(e);

    // Members on the last day of each month: one query over a list of days.
    let union: Vec<String> = (0..days.len()).map(|i| format!("SELECT CAST(${} AS TEXT) AS day", i + 2)).collect();
    let mut extra = Extra::new(&scope, days.len() + 2);
    let (of_type, of_people) = (extra.of_type("p.type_id = {type}"), extra.of_people("p.person_id"));
    let sql = format!(
        "SELECT d.day, COUNT(DISTINCT p.person_id) FROM ({}) d \
         LEFT JOIN mem_periods p ON p.org_id = $1 AND p.starts_on <= d.day AND ({END} IS NULL OR {END} >= d.day){of_type}{of_people} \
         GROUP BY d.day",
        union.join(" UNION ALL ")
    );
    let mut q = sqlx::query(&sql).bind(&org);
    for (_, d) in &days {
        q = q.bind(d);
    }
    let counts: HashMap<String, i64> = bind_all(q, &extra.binds)
        .fetch_all(pool)
        .await
        .map_err(map)?
        .iter()
        .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(map)?;
    let members_by_month: Vec<MonthCount> = days
        .iter()
        .map(|(m, d)| MonthCount { month: m.clone(), day: d.clone(), members: counts.get(d).copied().unwrap_or(0) })
        .collect();
    let members_today = members_by_month.last().map(|m| m.members).unwrap_or(0);

    // By type: the chosen type only when filtered by type.
    let today_s = today.to_string();
    let mut extra = Extra::new(&scope, 3);
    let (of_people, of_type) = (extra.of_people("p.person_id"), extra.of_type("t.id = {type}"));
    let sql = format!(
        "SELECT t.id, t.name, COUNT(DISTINCT p.person_id) FROM mem_types t \
         LEFT JOIN mem_periods p ON p.org_id = t.org_id AND p.type_id = t.id AND p.starts_on <= $2 AND ({END} IS NULL OR {END} >= $2){of_people} \
         WHERE t.org_id = $1{of_type} GROUP BY t.id, t.name ORDER BY t.name"
    );
    let by_type = bind_all(sqlx::query(&sql).bind(&org).bind(&today_s), &extra.binds)
        .fetch_all(pool)
        .await
        .map_err(map)?
        .iter()
        .map(|r| Ok(TypeCount { type_id: r.try_get(0)?, name: r.try_get(1)?, members: r.try_get(2)? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()
        .map_err(map)?;

    // Joins, closings and lapses, each grouped by month in SQL; `$2` and
    // `$3` are the first and last days counted.
    let from = first.to_string();
    let mut moves: Vec<MonthMoves> =
        days.iter().map(|(m, _)| MonthMoves { month: m.clone(), ..Default::default() }).collect();
    let index: HashMap<String, usize> = days.iter().enumerate().map(|(i, (m, _))| (m.clone(), i)).collect();
    let periods = || {
        let mut extra = Extra::new(&scope, 4);
        let cond = format!("{}{}", extra.of_type("p.type_id = {type}"), extra.of_people("p.person_id"));
        (cond, extra.binds)
    };
    let grouped = |sql: String, binds: Vec<Bind>| {
        let org = org.clone();
        let from = from.clone();
        let today_s = today_s.clone();
        async move {
            bind_all(sqlx::query(&sql).bind(org).bind(from).bind(today_s), &binds)
                .fetch_all(pool)
                .await
                .map_err(map)?
                .iter()
                .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?, r.try_get::<i64, _>(2)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(map)
        }
    };
    let (cond, binds) = periods();
    let joins = grouped(
        format!(
            "SELECT SUBSTR(p.starts_on, 1, 7) AS m, 'join', COUNT(*) FROM mem_periods p \
             WHERE p.org_id = $1 AND p.origin = 'joined' AND p.starts_on >= $2 AND p.starts_on <= $3{cond} \
             GROUP BY SUBSTR(p.starts_on, 1, 7)"
        ),
        binds,
    )
    .await?;
    let (cond, binds) = periods();
    let closed = grouped(
        format!(
            "SELECT SUBSTR(p.closed_on, 1, 7) AS m, p.closed_reason, COUNT(*) FROM mem_periods p \
             WHERE p.org_id = $1 AND p.closed_on IS NOT NULL AND p.closed_on >= $2 AND p.closed_on <= $3{cond} \
             GROUP BY SUBSTR(p.closed_on, 1, 7), p.closed_reason"
        ),
        binds,
    )
    .await?;
    let next = next_day(db.backend(), "p.ends_on");
    let (cond, binds) = periods();
    let lapses = grouped(
        format!(
            "SELECT SUBSTR({next}, 1, 7) AS m, 'lapse', COUNT(*) FROM mem_periods p \
             WHERE p.org_id = $1 AND p.closed_on IS NULL AND p.ends_on IS NOT NULL AND {next} >= $2 AND {next} <= $3{cond} \
             AND NOT EXISTS (SELECT 1 FROM mem_periods q WHERE q.org_id = p.org_id AND q.person_id = p.person_id \
                 AND q.type_id = p.type_id AND q.starts_on = {next}) \
             GROUP BY SUBSTR({next}, 1, 7)"
        ),
        binds,
    )
    .await?;
    for (month, kind, n) in joins.into_iter().chain(closed).chain(lapses) {
        let Some(&i) = index.get(&month) else { continue };
        let row = &mut moves[i];
        match kind.as_str() {
            "join" => row.joins += n,
            "resigned" => row.resignations += n,
            "excluded" => row.exclusions += n,
            "lapse" => row.lapses += n,
            _ => {}
        }
    }
    for row in &mut moves {
        row.departures = row.resignations + row.exclusions + row.lapses;
    }

    // Dues: of a period of the chosen type, recorded for a matching person.
    let money = |len: i64, from: Option<String>| {
        let org = org.clone();
        let mut extra = Extra::new(&scope, 3);
        let cond = format!(
            "{}{}",
            extra.of_type(
                "EXISTS (SELECT 1 FROM mem_periods tp WHERE tp.org_id = d.org_id AND tp.id = d.period_id AND tp.type_id = {type})"
            ),
            extra.of_people("d.person_id")
        );
        let binds = extra.binds;
        async move {
            let sql = format!(
                "SELECT SUBSTR(d.paid_on, 1, {len}) AS k, CAST(SUM(d.amount_cents) AS BIGINT), COUNT(*) FROM mem_dues d \
                 WHERE d.org_id = $1 AND d.status = 'paid' AND d.paid_on >= $2{cond} \
                 GROUP BY SUBSTR(d.paid_on, 1, {len}) ORDER BY k"
            );
            bind_all(sqlx::query(&sql).bind(org).bind(from.unwrap_or_default()), &binds)
                .fetch_all(pool)
                .await
                .map_err(map)?
                .iter()
                .map(|r| Ok(MoneyCount { period: r.try_get(0)?, amount_cents: r.try_get(1)?, dues: r.try_get(2)? }))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(map)
        }
    };
    let monthly: HashMap<String, MoneyCount> =
        money(7, Some(from.clone())).await?.into_iter().map(|m| (m.period.clone(), m)).collect();
    let dues_by_month = days
        .iter()
        .map(|(m, _)| monthly.get(m).cloned().unwrap_or(MoneyCount { period: m.clone(), amount_cents: 0, dues: 0 }))
        .collect();
    let dues_by_year = money(4, None).await?;

    Ok(Stats {
        filter: filter.normalized(),
        today: today_s,
        members_today,
        members_by_month,
        by_type,
        moves_by_month: moves,
        dues_by_month,
        dues_by_year,
    })
}

// ---------- CSV ----------

/// The tables of the page, as CSV files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Table {
    /// Members at each month-end.
    Members,
    /// Members by type today.
    Types,
    /// Joins and departures per month.
    Moves,
    /// Dues collected per month.
    Dues,
    /// Dues collected per year.
    DuesYears,
}

impl Table {
    pub const ALL: [(&'static str, Table); 5] = [
        ("members", Table::Members),
        ("types", Table::Types),
        ("moves", Table::Moves),
        ("dues", Table::Dues),
        ("dues_years", Table::DuesYears),
    ];
    pub fn parse(s: Option<&str>) -> MemResult<Table> {
        let s = s.map(str::trim).unwrap_or("");
        Table::ALL.iter().find(|(k, _)| *k == s).map(|(_, t)| *t).ok_or_else(|| {
            let names: Vec<&str> = Table::ALL.iter().map(|(k, _)| *k).collect();
            MemError::field("table", format!("Choose the table: {}.", names.join(", ")))
        })
    }
    pub fn key(self) -> &'static str {
        Table::ALL.iter().find(|(_, t)| *t == self).map(|(k, _)| *k).unwrap_or("members")
    }
}

/// The query string of a CSV export: a table and the page's filters.
#[derive(Clone, Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsCsvQuery {
    /// `members` (members at each month-end), `types` (members by type
    /// today), `moves` (joins and departures per month), `dues` (dues
    /// collected per month) or `dues_years` (dues collected per year).
    pub table: Option<String>,
    /// One membership type (its id), as for the statistics.
    pub type_id: Option<String>,
    /// Custom fields of people (`key=value;key~text`…), as for the statistics.
    pub cf: Option<String>,
}

/// One table of the figures as a CSV file (the core's: UTF-8 with a
/// byte-order mark, comma-separated). Amounts are in the organisation's
/// currency with two decimals and a point, written from the integer cents.
pub fn csv(s: &Stats, table: Table) -> Vec<u8> {
    let n = |v: i64| v.to_string();
    let money = |rows: &[MoneyCount]| -> Vec<Vec<String>> {
        rows.iter().map(|r| vec![r.period.clone(), n(r.dues), cents_text(r.amount_cents)]).collect()
    };
    let (header, rows): (&[&str], Vec<Vec<String>>) = match table {
        Table::Members => (
            &["month", "day", "members"],
            s.members_by_month.iter().map(|r| vec![r.month.clone(), r.day.clone(), n(r.members)]).collect(),
        ),
        Table::Types => (
            &["type_id", "type", "members"],
            s.by_type.iter().map(|r| vec![r.type_id.clone(), r.name.clone(), n(r.members)]).collect(),
        ),
        Table::Moves => (
            &["month", "joins", "resignations", "exclusions", "lapses", "departures"],
            s.moves_by_month
                .iter()
                .map(|r| {
                    vec![r.month.clone(), n(r.joins), n(r.resignations), n(r.exclusions), n(r.lapses), n(r.departures)]
                })
                .collect(),
        ),
        Table::Dues => (&["month", "receipts", "amount"], money(&s.dues_by_month)),
        Table::DuesYears => (&["year", "receipts", "amount"], money(&s.dues_by_year)),
    };
    shrooms_core::people::csv_file(header, &rows)
}

/// A table of the figures, filtered, as a CSV file: its name and content.
pub async fn export(db: &Db, cap: &CanRead, today: Date, q: &StatsCsvQuery) -> MemResult<(String, Vec<u8>)> {
    let filter = StatsFilter { type_id: q.type_id.clone(), cf: q.cf.clone() };
    let table = match Table::parse(q.table.as_deref()) {
        Ok(t) => t,
        // Every mistake at once: the table and the filters.
        Err(MemError::Invalid(mut errors)) => {
            if let Err(MemError::Invalid(more)) = scope(db, cap, &filter).await {
                errors.extend(more);
            }
            return Err(MemError::Invalid(errors));
        }
        Err(e) => return Err(e),
    };
    let figures = stats(db, cap, today, &filter).await?;
    Ok((format!("members-stats-{}-{today}.csv", table.key()), csv(&figures, table)))
}

#[cfg(test)]
mod tests {
    use super::{month_start, renumber, Table};
    use jiff::civil::date;

    #[test]
    fn filter_values_move_after_the_query_values() {
        assert_eq!(
            renumber(
                "fp.id IN (SELECT entity_id FROM custom_values WHERE org_id = $1 AND field_id = $2 AND value_fold >= $3)",
                26
            ),
            "fp.id IN (SELECT entity_id FROM custom_values WHERE org_id = $1 AND field_id = $26 AND value_fold >= $27)"
        );
        assert_eq!(renumber("$12 = $2 AND $1", 4), "$14 = $4 AND $1");
        assert_eq!(renumber("a $ b", 3), "a $ b");
    }

    #[test]
    fn tables_by_name() {
        assert_eq!(Table::parse(Some(" moves ")).unwrap(), Table::Moves);
        assert_eq!(Table::parse(Some("dues_years")).unwrap().key(), "dues_years");
        assert!(Table::parse(None).is_err());
        assert!(Table::parse(Some("people")).is_err());
    }

    #[test]
    fn months_back_cross_years() {
        assert_eq!(month_start(date(2026, 3, 15), 0), date(2026, 3, 1));
        assert_eq!(month_start(date(2026, 3, 15), 3), date(2025, 12, 1));
        assert_eq!(month_start(date(2026, 3, 15), 23), date(2024, 4, 1));
    }
}
