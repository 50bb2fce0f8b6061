//! Reports of invoicing: receivables ageing, revenue by product and by
//! product type, payments received per day and method (with the daily list
//! of card and online receipts for bank reconciliation), VAT collected per
//! rate and period. Read-only; every figure comes from validated documents
//! and recorded payments, in cents. Each report is also a table for the CSV
//! and ODS exports.

use crate::payments::{money, OPEN_STATUSES};
use serde::{Deserialize, Serialize};
use shrooms_accounting::domain::Day;
use shrooms_core::db::Db;
use shrooms_core::error::{CoreError, CoreResult};
use shrooms_core::permissions::CanRead;
use sqlx::Row;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// First day of the period (`YYYY-MM-DD`); the 1st of January of this year when left out.
    pub from: Option<String>,
    /// Last day of the period; today when left out.
    pub to: Option<String>,
    /// Ageing: the day the receivables are looked at; today when left out.
    pub as_of: Option<String>,
    /// `json` (default), `csv` or `ods`.
    pub format: Option<String>,
}

pub struct Period {
    pub from: Day,
    pub to: Day,
}

impl ReportParams {
    pub fn period(&self) -> CoreResult<Period> {
        let today = Day::today();
        let parse = |v: &Option<String>, field: &str, default: Day| -> CoreResult<Day> {
            match v.as_deref().map(str::trim) {
                None | Some("") => Ok(default),
                Some(d) => Day::parse(d).map_err(|m| CoreError::validation(field, m)),
            }
        };
        let start = Day::parse(&format!("{:04}-01-01", today.0.year())).unwrap_or(today);
        let p = Period { from: parse(&self.from, "from", start)?, to: parse(&self.to, "to", today)? };
        if p.to < p.from {
            return Err(CoreError::validation("to", "The end of the period comes before its start."));
        }
        Ok(p)
    }
    pub fn as_of(&self) -> CoreResult<Day> {
        match self.as_of.as_deref().map(str::trim) {
            None | Some("") => Ok(Day::today()),
            Some(d) => Day::parse(d).map_err(|m| CoreError::validation("as_of", m)),
        }
    }
}

/// A report as rows of text, for CSV and ODS.
pub struct Table {
    pub name: &'static str,
    pub header: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
}

// ---------- ageing ----------

#[derive(Clone, Debug, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct AgeingRow {
    pub customer_id: String,
    pub customer_name: String,
    pub not_due_cents: i64,
    pub d1_30_cents: i64,
    pub d31_60_cents: i64,
    pub d61_90_cents: i64,
    pub over_90_cents: i64,
    pub total_cents: i64,
}

impl AgeingRow {
    /// Puts an amount in its bucket by days past due (0 or less: not due).
    pub fn add(&mut self, days_overdue: i64, cents: i64) {
        match days_overdue {
            d if d <= 0 => self.not_due_cents += cents,
            1..=30 => self.d1_30_cents += cents,
            31..=60 => self.d31_60_cents += cents,
            61..=90 => self.d61_90_cents += cents,
            _ => self.over_90_cents += cents,
        }
        self.total_cents += cents;
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Ageing {
    pub as_of: String,
    pub customers: Vec<AgeingRow>,
    pub total: AgeingRow,
}

pub async fn ageing(db: &Db, cap: &CanRead, as_of: Day) -> CoreResult<Ageing> {
    let rows = sqlx::query(&format!(
        "SELECT d.customer_id, c.name, COALESCE(d.due_date, d.issue_date), d.gross_cents - d.paid_cents - d.credited_cents \
         FROM inv_documents d JOIN inv_customers c ON c.id = d.customer_id \
         WHERE d.org_id = $1 AND d.kind = 'invoice' AND d.status IN {OPEN_STATUSES} \
         AND d.gross_cents - d.paid_cents - d.credited_cents > 0 AND d.issue_date <= $2"
    ))
    .bind(cap.org().to_string())
    .bind(as_of.iso())
    .fetch_all(db.pool())
    .await?;
    let mut by: BTreeMap<(String, String), AgeingRow> = BTreeMap::new();
    let mut total = AgeingRow { customer_name: "Total".into(), ..Default::default() };
    for r in rows {
        let (id, name): (String, String) = (r.try_get(0)?, r.try_get(1)?);
        let due_date: Option<String> = r.try_get(2)?;
        let cents: i64 = r.try_get(3)?;
        let days = due_date.as_deref().and_then(|d| Day::parse(d).ok()).map(|d| d.days_until(as_of)).unwrap_or(0);
        by.entry((name.clone(), id.clone()))
            .or_insert_with(|| AgeingRow { customer_id: id, customer_name: name, ..Default::default() })
            .add(days, cents);
        total.add(days, cents);
    }
    Ok(Ageing { as_of: as_of.iso(), customers: by.into_values().collect(), total })
}

pub fn ageing_table(a: &Ageing) -> Table {
    let row = |r: &AgeingRow| {
        vec![
            r.customer_name.clone(),
            money(r.not_due_cents),
            money(r.d1_30_cents),
            money(r.d31_60_cents),
            money(r.d61_90_cents),
            money(r.over_90_cents),
            money(r.total_cents),
        ]
    };
    let mut rows: Vec<Vec<String>> = a.customers.iter().map(row).collect();
    rows.push(row(&a.total));
    Table { name: "ageing", header: vec!["customer", "not_due", "1-30", "31-60", "61-90", "over_90", "total"], rows }
}

// ---------- revenue ----------

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct RevenueRow {
    /// The product's id, or the line's name for lines without a product; the type for `by_type`.
    pub key: String,
    pub label: String,
    pub net_cents: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Revenue {
    pub from: String,
    pub to: String,
    pub by_product: Vec<RevenueRow>,
    pub by_type: Vec<RevenueRow>,
    /// Invoices minus credit notes, net of VAT.
    pub total_net_cents: i64,
}

/// The documents a report counts: issued invoices and credit notes of the
/// period (credit notes negative).
const ISSUED: &str = "d.kind IN ('invoice', 'credit_note') AND d.status <> 'draft' AND d.number IS NOT NULL";

pub async fn revenue(db: &Db, cap: &CanRead, p: &Period) -> CoreResult<Revenue> {
    let rows = sqlx::query(&format!(
        "SELECT d.kind, l.product_id, COALESCE(pr.name, l.name), l.product_type, l.net_cents \
         FROM inv_lines l JOIN inv_documents d ON d.id = l.document_id \
         LEFT JOIN inv_products pr ON pr.id = l.product_id AND pr.org_id = d.org_id \
         WHERE d.org_id = $1 AND {ISSUED} AND d.issue_date >= $2 AND d.issue_date <= $3"
    ))
    .bind(cap.org().to_string())
    .bind(p.from.iso())
    .bind(p.to.iso())
    .fetch_all(db.pool())
    .await?;
    let mut products: BTreeMap<String, RevenueRow> = BTreeMap::new();
    let mut types: BTreeMap<String, RevenueRow> = BTreeMap::new();
    let mut total = 0;
    for r in rows {
        let kind: String = r.try_get(0)?;
        let product: Option<String> = r.try_get(1)?;
        let name: String = r.try_get(2)?;
        let ptype: String = r.try_get(3)?;
        let net: i64 = r.try_get(4)?;
        let signed = if kind == "credit_note" { -net } else { net };
        total += signed;
        let key = product.unwrap_or_else(|| name.clone());
        products.entry(key.clone()).or_insert(RevenueRow { key, label: name, net_cents: 0 }).net_cents += signed;
        let t = if ptype.is_empty() { "other".to_string() } else { ptype };
        types.entry(t.clone()).or_insert(RevenueRow { key: t.clone(), label: t, net_cents: 0 }).net_cents += signed;
    }
    let mut by_product: Vec<RevenueRow> = products.into_values().collect();
    by_product.sort_by(|a, b| b.net_cents.cmp(&a.net_cents).then(a.label.cmp(&b.label)));
    Ok(Revenue {
        from: p.from.iso(),
        to: p.to.iso(),
        by_product,
        by_type: types.into_values().collect(),
        total_net_cents: total,
    })
}

pub fn revenue_table(r: &Revenue) -> Table {
    let mut rows: Vec<Vec<String>> =
        r.by_product.iter().map(|x| vec!["product".into(), x.label.clone(), money(x.net_cents)]).collect();
    rows.extend(r.by_type.iter().map(|x| vec!["type".into(), x.label.clone(), money(x.net_cents)]));
    rows.push(vec!["total".into(), String::new(), money(r.total_net_cents)]);
    Table { name: "revenue", header: vec!["group", "label", "net"], rows }
}

// ---------- payments received ----------

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct DayMethod {
    pub date: String,
    pub method: String,
    pub count: i64,
    pub total_cents: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Receipt {
    pub date: String,
    pub method: String,
    pub customer_name: String,
    pub reference: String,
    pub amount_cents: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PaymentsReceived {
    pub from: String,
    pub to: String,
    pub days: Vec<DayMethod>,
    /// Per method over the period.
    pub by_method: Vec<DayMethod>,
    pub total_cents: i64,
    /// Card and online receipts one by one, for the bank reconciliation.
    pub card_receipts: Vec<Receipt>,
}

pub async fn payments_received(db: &Db, cap: &CanRead, p: &Period) -> CoreResult<PaymentsReceived> {
    let rows = sqlx::query(
        "SELECT p.received_date, p.method, c.name, CASE WHEN p.provider_ref IS NOT NULL THEN p.provider_ref ELSE p.reference END, \
         p.amount_cents FROM inv_payments p JOIN inv_customers c ON c.id = p.customer_id \
         WHERE p.org_id = $1 AND p.status = 'recorded' AND p.received_date >= $2 AND p.received_date <= $3 \
         ORDER BY p.received_date, p.id",
    )
    .bind(cap.org().to_string())
    .bind(p.from.iso())
    .bind(p.to.iso())
    .fetch_all(db.pool())
    .await?;
    let mut days: BTreeMap<(String, String), DayMethod> = BTreeMap::new();
    let mut methods: BTreeMap<String, DayMethod> = BTreeMap::new();
    let mut card_receipts = Vec::new();
    let mut total = 0;
    for r in rows {
        let date: String = r.try_get(0)?;
        let method: String = r.try_get(1)?;
        let amount: i64 = r.try_get(4)?;
        total += amount;
        let d = days.entry((date.clone(), method.clone())).or_insert(DayMethod {
            date: date.clone(),
            method: method.clone(),
            count: 0,
            total_cents: 0,
        });
        d.count += 1;
        d.total_cents += amount;
        let m = methods.entry(method.clone()).or_insert(DayMethod {
            date: String::new(),
            method: method.clone(),
            count: 0,
            total_cents: 0,
        });
        m.count += 1;
        m.total_cents += amount;
        if method == "card" || method == "online" {
            card_receipts.push(Receipt {
                date,
                method,
                customer_name: r.try_get(2)?,
                reference: r.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
                amount_cents: amount,
            });
        }
    }
    Ok(PaymentsReceived {
        from: p.from.iso(),
        to: p.to.iso(),
        days: days.into_values().collect(),
        by_method: methods.into_values().collect(),
        total_cents: total,
        card_receipts,
    })
}

pub fn payments_table(r: &PaymentsReceived) -> Table {
    let mut rows: Vec<Vec<String>> = r
        .days
        .iter()
        .map(|d| vec![d.date.clone(), d.method.clone(), d.count.to_string(), money(d.total_cents), String::new()])
        .collect();
    rows.extend(r.card_receipts.iter().map(|c| {
        vec![
            c.date.clone(),
            format!("{} receipt", c.method),
            "1".into(),
            money(c.amount_cents),
            format!("{} {}", c.customer_name, c.reference),
        ]
    }));
    rows.push(vec!["total".into(), String::new(), String::new(), money(r.total_cents), String::new()]);
    Table { name: "payments", header: vec!["date", "method", "count", "total", "detail"], rows }
}

// ---------- VAT collected ----------

#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct VatRow {
    /// `YYYY-MM`, or `total`.
    pub period: String,
    /// Hundredths of a percent: 2000 is 20 %.
    pub rate_bp: i64,
    pub base_cents: i64,
    pub vat_cents: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VatCollected {
    pub from: String,
    pub to: String,
    /// Per month and rate.
    pub rows: Vec<VatRow>,
    /// Per rate over the period.
    pub totals: Vec<VatRow>,
}

/// VAT of a base at a rate, rounded half away from zero to the cent (as a
/// document's VAT breakdown is: per rate, on the sum of its lines).
pub fn vat_of(base_cents: i64, rate_bp: i64) -> i64 {
    let x = base_cents as i128 * rate_bp as i128;
    let r = if x >= 0 { (x + 5000) / 10000 } else { (x - 5000) / 10000 };
    r as i64
}

pub async fn vat_collected(db: &Db, cap: &CanRead, p: &Period) -> CoreResult<VatCollected> {
    let rows = sqlx::query(&format!(
        "SELECT d.id, d.kind, d.issue_date, l.vat_rate_bp, CAST(SUM(l.net_cents) AS BIGINT) FROM inv_lines l \
         JOIN inv_documents d ON d.id = l.document_id \
         WHERE d.org_id = $1 AND {ISSUED} AND d.issue_date >= $2 AND d.issue_date <= $3 \
         GROUP BY d.id, d.kind, d.issue_date, l.vat_rate_bp"
    ))
    .bind(cap.org().to_string())
    .bind(p.from.iso())
    .bind(p.to.iso())
    .fetch_all(db.pool())
    .await?;
    let mut by: BTreeMap<(String, i64), VatRow> = BTreeMap::new();
    let mut totals: BTreeMap<i64, VatRow> = BTreeMap::new();
    for r in rows {
        let kind: String = r.try_get(1)?;
        let date: String = r.try_get(2)?;
        let rate: i64 = r.try_get(3)?;
        let base: i64 = r.try_get(4)?;
        let sign = if kind == "credit_note" { -1 } else { 1 };
        let (b, v) = (sign * base, sign * vat_of(base, rate));
        let month = date.get(0..7).unwrap_or("").to_string();
        let e = by.entry((month.clone(), rate)).or_insert(VatRow {
            period: month,
            rate_bp: rate,
            base_cents: 0,
            vat_cents: 0,
        });
        e.base_cents += b;
        e.vat_cents += v;
        let t =
            totals.entry(rate).or_insert(VatRow { period: "total".into(), rate_bp: rate, base_cents: 0, vat_cents: 0 });
        t.base_cents += b;
        t.vat_cents += v;
    }
    Ok(VatCollected {
        from: p.from.iso(),
        to: p.to.iso(),
        rows: by.into_values().collect(),
        totals: totals.into_values().collect(),
    })
}

pub fn rate_text(bp: i64) -> String {
    if bp % 100 == 0 {
        format!("{} %", bp / 100)
    } else {
        let dec = format!("{:02}", bp % 100);
        format!("{}.{} %", bp / 100, dec.trim_end_matches('0'))
    }
}

pub fn vat_table(r: &VatCollected) -> Table {
    let rows = r
        .rows
        .iter()
        .chain(r.totals.iter())
        .map(|x| vec![x.period.clone(), rate_text(x.rate_bp), money(x.base_cents), money(x.vat_cents)])
        .collect();
    Table { name: "vat", header: vec!["period", "rate", "base", "vat"], rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ageing_buckets() {
        let mut r = AgeingRow::default();
        for (d, c) in [(-3, 1), (0, 2), (1, 4), (30, 8), (31, 16), (60, 32), (61, 64), (90, 128), (91, 256)] {
            r.add(d, c);
        }
        assert_eq!(
            (r.not_due_cents, r.d1_30_cents, r.d31_60_cents, r.d61_90_cents, r.over_90_cents, r.total_cents),
            (3, 12, 48, 192, 256, 511)
        );
    }

    #[test]
    fn vat_rounds_half_away_from_zero() {
        assert_eq!(vat_of(10000, 2000), 2000);
        assert_eq!(vat_of(1234, 550), 68); // 67.87
        assert_eq!(vat_of(10, 550), 1); // 0.55
        assert_eq!(vat_of(-10, 550), -1);
        assert_eq!(vat_of(1, 2000), 0); // 0.2
    }

    #[test]
    fn rates_read_as_people_write_them() {
        assert_eq!(rate_text(2000), "20 %");
        assert_eq!(rate_text(550), "5.5 %");
        assert_eq!(rate_text(210), "2.1 %");
    }
}
