//! Budgets and the budget-versus-actual view: for a fiscal year, an amount
//! per account or per prefix of accounts (`60` for all purchases, `7561`
//! for dues); the report sets each line beside what the books hold, the
//! difference and the percentage reached. Each account's actual goes to
//! the longest budget line that covers it, so the totals add up.

use crate::domain::{self, Amount};
use crate::error::{AcctError, AcctResult};
use crate::repo;
use crate::reports::{Period, ReportParams, Table};
use serde::{Deserialize, Serialize};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::Db;
use shrooms_core::error::FieldError;
use shrooms_core::permissions::{CanRead, CanWrite};
use sqlx::Row;
use utoipa::ToSchema;

#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetLineInput {
    /// An account number or the prefix of several (`6`, `60`, `6061`).
    pub target: String,
    #[serde(default)]
    pub label: Option<String>,
    /// The amount expected for the year: positive, an expense for 6…, an income for 7….
    #[schema(value_type = String)]
    pub amount: serde_json::Value,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetInput {
    pub lines: Vec<BudgetLineInput>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BudgetLine {
    pub target: String,
    pub label: String,
    pub amount: String,
}

/// `6` or `7` (and the rest): whether a line is read as an expense or an income.
fn is_income(target: &str) -> bool {
    target.starts_with('7')
}

fn check(l: &repo::Ledger, input: &BudgetInput) -> Result<Vec<(String, String, Amount)>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut out: Vec<(String, String, Amount)> = Vec::new();
    for (i, line) in input.lines.iter().enumerate() {
        let f = |n: &str| format!("lines[{i}].{n}");
        let t = line.target.trim();
        if t.is_empty() || t.len() > 20 || !t.bytes().all(|b| b.is_ascii_digit()) || t.starts_with(['0', '9']) {
            errors
                .push(FieldError::new(f("target"), "Write an account number or its first digits, such as 60 or 6061."));
            continue;
        }
        if !l.accounts.keys().any(|a| a.starts_with(t)) {
            errors.push(FieldError::new(f("target"), format!("No account of the chart starts with {t}.")));
        }
        if out.iter().any(|x| x.0 == t) {
            errors.push(FieldError::new(f("target"), format!("{t} is already in the budget.")));
        }
        let amount = match Amount::from_json(&line.amount) {
            Ok(Some(a)) if a.0 >= 0 => a,
            Ok(_) => {
                errors.push(FieldError::new(f("amount"), "Give a positive amount (or 0)."));
                continue;
            }
            Err(m) => {
                errors.push(FieldError::new(f("amount"), m));
                continue;
            }
        };
        let label = match line.label.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(s) if s.chars().count() <= 200 => s.to_string(),
            Some(_) => {
                errors.push(FieldError::new(f("label"), "Write at most 200 characters."));
                continue;
            }
            // The chart's label of the account; a prefix that is no account is shown as such.
            None => l.accounts.get(t).map(|(lab, _)| lab.clone()).unwrap_or_else(|| format!("Comptes {t}…")),
        };
        out.push((t.to_string(), label, amount));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

async fn lines_of(conn: &mut sqlx::AnyConnection, org: &str, year: &str) -> AcctResult<Vec<(String, String, i64)>> {
    Ok(sqlx::query(
        "SELECT target, label, amount FROM acct_budget_lines WHERE org_id = $1 AND year_id = $2 ORDER BY target",
    )
    .bind(org)
    .bind(year)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
    .collect::<Result<_, sqlx::Error>>()?)
}

fn to_lines(v: Vec<(String, String, i64)>) -> Vec<BudgetLine> {
    v.into_iter().map(|(target, label, a)| BudgetLine { target, label, amount: Amount(a).plain() }).collect()
}

pub async fn budget(db: &Db, cap: &CanRead, year_id: &str) -> AcctResult<Vec<BudgetLine>> {
    let mut conn = db.pool().acquire().await?;
    let l = repo::ledger_or_404(&mut conn, cap.org()).await?;
    l.year(year_id).ok_or(shrooms_core::CoreError::NotFound)?;
    Ok(to_lines(lines_of(&mut conn, &cap.org().to_string(), year_id).await?))
}

/// Replaces the budget of a fiscal year (closed years included: a budget
/// is not part of the books).
pub async fn set_budget(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    year_id: &str,
    input: BudgetInput,
) -> AcctResult<Vec<BudgetLine>> {
    let org = cap.org().to_string();
    let mut tx = db.begin_durable().await?;
    let l = repo::ledger_or_404(tx.conn(), cap.org()).await?;
    l.year(year_id).ok_or(shrooms_core::CoreError::NotFound)?;
    let lines = check(&l, &input).map_err(AcctError::Invalid)?;
    let before = to_lines(lines_of(tx.conn(), &org, year_id).await?);
    sqlx::query("DELETE FROM acct_budget_lines WHERE org_id = $1 AND year_id = $2")
        .bind(&org)
        .bind(year_id)
        .execute(tx.conn())
        .await?;
    for (target, label, amount) in &lines {
        sqlx::query(
            "INSERT INTO acct_budget_lines (org_id, year_id, target, label, amount) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&org)
        .bind(year_id)
        .bind(target)
        .bind(label)
        .bind(amount.0)
        .execute(tx.conn())
        .await?;
    }
    let after = to_lines(lines_of(tx.conn(), &org, year_id).await?);
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "accounting.budget.set",
            entity_type: "budget",
            entity_id: year_id.to_string(),
            before: serde_json::to_value(&before).ok(),
            after: serde_json::to_value(&after).ok(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BudgetRow {
    pub target: String,
    pub label: String,
    /// `expense` (6…) or `income` (7…; other classes are read as expenses).
    pub kind: String,
    pub budget: String,
    pub actual: String,
    /// actual − budget.
    pub difference: String,
    /// actual ÷ budget, in percent with one decimal; none for a zero budget.
    pub percent: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BudgetReport {
    pub period: Period,
    pub rows: Vec<BudgetRow>,
    pub budget_expenses: String,
    pub actual_expenses: String,
    pub budget_income: String,
    pub actual_income: String,
    /// Income − expenses, budgeted and actual.
    pub budget_result: String,
    pub actual_result: String,
}

/// `87.5`: actual ÷ budget × 100, rounded half away from zero to one decimal, exactly.
pub fn percent(actual: i64, budget: i64) -> Option<String> {
    if budget == 0 {
        return None;
    }
    let (n, d) = (actual as i128 * 1000, budget as i128);
    let q = (2 * n + d.signum() * n.signum() * d.abs()) / (2 * d);
    let sign = if q < 0 { "-" } else { "" };
    Some(format!("{sign}{}.{}", q.abs() / 10, q.abs() % 10))
}

/// The report of a fiscal year: `year`, else the year holding `from`, else the current one.
pub async fn report(db: &Db, cap: &CanRead, p: &ReportParams) -> AcctResult<BudgetReport> {
    let mut conn = db.pool().acquire().await?;
    let l = repo::ledger(&mut conn, cap.org()).await?;
    let y = match &p.year {
        Some(id) => l.year(id).ok_or_else(|| AcctError::field("year", "There is no such fiscal year."))?.clone(),
        None => {
            let period = crate::reports::period(&l, p)?;
            l.year_of(&period.from.iso())
                .ok_or_else(|| AcctError::field("from", "No fiscal year holds this date."))?
                .clone()
        }
    };
    let lines = lines_of(&mut conn, &cap.org().to_string(), &y.id).await?;
    let totals = repo::totals_by_account(&mut conn, cap.org(), &y.start, &y.end).await?;
    let mut actual = vec![0i64; lines.len()];
    for (account, d, c) in totals {
        // The longest budget line covering the account.
        let best = lines.iter().enumerate().filter(|(_, x)| account.starts_with(&x.0)).max_by_key(|(_, x)| x.0.len());
        if let Some((i, x)) = best {
            actual[i] += if is_income(&x.0) { c.0 - d.0 } else { d.0 - c.0 };
        }
    }
    let (mut be, mut ae, mut bi, mut ai) = (0, 0, 0, 0);
    let rows = lines
        .into_iter()
        .zip(actual)
        .map(|((target, label, budget), actual)| {
            let income = is_income(&target);
            if income {
                bi += budget;
                ai += actual;
            } else if domain::account_class(&target) == 6 {
                be += budget;
                ae += actual;
            }
            BudgetRow {
                kind: if income { "income" } else { "expense" }.into(),
                budget: Amount(budget).plain(),
                actual: Amount(actual).plain(),
                difference: Amount(actual - budget).plain(),
                percent: percent(actual, budget),
                target,
                label,
            }
        })
        .collect();
    Ok(BudgetReport {
        period: Period { from: y.start_day(), to: y.end_day() },
        rows,
        budget_expenses: Amount(be).plain(),
        actual_expenses: Amount(ae).plain(),
        budget_income: Amount(bi).plain(),
        actual_income: Amount(ai).plain(),
        budget_result: Amount(bi - be).plain(),
        actual_result: Amount(ai - ae).plain(),
    })
}

impl BudgetReport {
    pub fn table(&self) -> Table {
        let mut rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.target.clone(),
                    r.label.clone(),
                    r.budget.clone(),
                    r.actual.clone(),
                    r.difference.clone(),
                    r.percent.as_ref().map(|p| format!("{p} %")).unwrap_or_default(),
                ]
            })
            .collect();
        let total = |label: &str, b: &str, a: &str| {
            let (b, a) = (Amount::parse(b).unwrap_or_default().0, Amount::parse(a).unwrap_or_default().0);
            vec![
                label.to_string(),
                String::new(),
                Amount(b).plain(),
                Amount(a).plain(),
                Amount(a - b).plain(),
                percent(a, b).map(|p| format!("{p} %")).unwrap_or_default(),
            ]
        };
        rows.push(total("Charges", &self.budget_expenses, &self.actual_expenses));
        rows.push(total("Produits", &self.budget_income, &self.actual_income));
        rows.push(total("Résultat", &self.budget_result, &self.actual_result));
        Table {
            title: format!("Budget et réalisé {} – {}", self.period.from, self.period.to),
            header: ["Compte", "Libellé", "Budget", "Réalisé", "Écart", "%"].map(String::from).to_vec(),
            widths: vec![1.0, 3.5, 1.3, 1.3, 1.3, 0.8],
            rows,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::percent;

    #[test]
    fn percentages_are_exact_to_one_decimal() {
        assert_eq!(percent(8_750, 10_000).as_deref(), Some("87.5"));
        assert_eq!(percent(1, 3).as_deref(), Some("33.3"));
        assert_eq!(percent(2, 3).as_deref(), Some("66.7"));
        assert_eq!(percent(-50, 100).as_deref(), Some("-50.0"));
        assert_eq!(percent(5, 0), None);
    }
}
