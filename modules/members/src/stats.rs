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

use crate::error::MemResult;
use jiff::civil::Date;
use serde::Serialize;
use shrooms_core::db::Backend;
use shrooms_core::permissions::CanRead;
use shrooms_core::{CoreError, Db};
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

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

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Stats {
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

pub async fn stats(db: &Db, cap: &CanRead, today: Date) -> MemResult<Stats> {
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
    let sql = format!(
        "SELECT d.day, COUNT(DISTINCT p.person_id) FROM ({}) d \
         LEFT JOIN mem_periods p ON p.org_id = $1 AND p.starts_on <= d.day AND ({END} IS NULL OR {END} >= d.day) \
         GROUP BY d.day",
        union.join(" UNION ALL ")
    );
    let mut q = sqlx::query(&sql).bind(&org);
    for (_, d) in &days {
        q = q.bind(d);
    }
    let counts: HashMap<String, i64> = q
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

    let today_s = today.to_string();
    let by_type = sqlx::query(&format!(
        "SELECT t.id, t.name, COUNT(DISTINCT p.person_id) FROM mem_types t \
         LEFT JOIN mem_periods p ON p.org_id = t.org_id AND p.type_id = t.id AND p.starts_on <= $2 AND ({END} IS NULL OR {END} >= $2) \
         WHERE t.org_id = $1 GROUP BY t.id, t.name ORDER BY t.name"
    ))
    .bind(&org)
    .bind(&today_s)
    .fetch_all(pool)
    .await
    .map_err(map)?
    .iter()
    .map(|r| Ok(TypeCount { type_id: r.try_get(0)?, name: r.try_get(1)?, members: r.try_get(2)? }))
    .collect::<Result<Vec<_>, sqlx::Error>>()
    .map_err(map)?;

    // Joins, closings and lapses, each grouped by month in SQL.
    let from = first.to_string();
    let mut moves: Vec<MonthMoves> =
        days.iter().map(|(m, _)| MonthMoves { month: m.clone(), ..Default::default() }).collect();
    let index: HashMap<String, usize> = days.iter().enumerate().map(|(i, (m, _))| (m.clone(), i)).collect();
    let grouped = |sql: String| {
        let org = org.clone();
        let from = from.clone();
        let today_s = today_s.clone();
        async move {
            sqlx::query(&sql)
                .bind(org)
                .bind(from)
                .bind(today_s)
                .fetch_all(pool)
                .await
                .map_err(map)?
                .iter()
                .map(|r| Ok((r.try_get::<String, _>(0)?, r.try_get::<String, _>(1)?, r.try_get::<i64, _>(2)?)))
                .collect::<Result<Vec<_>, sqlx::Error>>()
                .map_err(map)
        }
    };
    let joins = grouped(
        "SELECT SUBSTR(p.starts_on, 1, 7) AS m, 'join', COUNT(*) FROM mem_periods p \
         WHERE p.org_id = $1 AND p.origin = 'joined' AND p.starts_on >= $2 AND p.starts_on <= $3 GROUP BY SUBSTR(p.starts_on, 1, 7)"
            .into(),
    )
    .await?;
    let closed = grouped(
        "SELECT SUBSTR(p.closed_on, 1, 7) AS m, p.closed_reason, COUNT(*) FROM mem_periods p \
         WHERE p.org_id = $1 AND p.closed_on IS NOT NULL AND p.closed_on >= $2 AND p.closed_on <= $3 \
         GROUP BY SUBSTR(p.closed_on, 1, 7), p.closed_reason"
            .into(),
    )
    .await?;
    let next = next_day(db.backend(), "p.ends_on");
    let lapses = grouped(format!(
        "SELECT SUBSTR({next}, 1, 7) AS m, 'lapse', COUNT(*) FROM mem_periods p \
         WHERE p.org_id = $1 AND p.closed_on IS NULL AND p.ends_on IS NOT NULL AND {next} >= $2 AND {next} <= $3 \
         AND NOT EXISTS (SELECT 1 FROM mem_periods q WHERE q.org_id = p.org_id AND q.person_id = p.person_id \
             AND q.type_id = p.type_id AND q.starts_on = {next}) \
         GROUP BY SUBSTR({next}, 1, 7)"
    ))
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

    let money = |len: i64, from: Option<String>| {
        let org = org.clone();
        async move {
            let sql = format!(
                "SELECT SUBSTR(paid_on, 1, {len}) AS k, CAST(SUM(amount_cents) AS BIGINT), COUNT(*) FROM mem_dues \
                 WHERE org_id = $1 AND status = 'paid' AND paid_on >= $2 GROUP BY SUBSTR(paid_on, 1, {len}) ORDER BY k"
            );
            sqlx::query(&sql)
                .bind(org)
                .bind(from.unwrap_or_default())
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
        today: today_s,
        members_today,
        members_by_month,
        by_type,
        moves_by_month: moves,
        dues_by_month,
        dues_by_year,
    })
}

#[cfg(test)]
mod tests {
    use super::month_start;
    use jiff::civil::date;

    #[test]
    fn months_back_cross_years() {
        assert_eq!(month_start(date(2026, 3, 15), 0), date(2026, 3, 1));
        assert_eq!(month_start(date(2026, 3, 15), 3), date(2025, 12, 1));
        assert_eq!(month_start(date(2026, 3, 15), 23), date(2024, 4, 1));
    }
}
