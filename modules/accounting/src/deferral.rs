//! Deferred revenue: a payment or an invoice for a service that spans
//! fiscal years, posted so that each year carries its share. The split is
//! in proportion to days, to the cent ([`domain::split_by_days`]):
//!
//! - the current year's share goes to the revenue account;
//! - the later years' shares go to 487 *produits constatés d'avance*, and
//!   on the first day of each later year an entry moves that year's share
//!   from 487 to revenue (for a service over two years: the reversal of the
//!   whole 487 at the opening of the next year). A later year that does not
//!   exist yet gets its entry when it is created (or opened by closing);
//! - a late payment's share of a previous year that is still open is
//!   booked in that year (418 *produits à recevoir* against revenue, on its
//!   last day) and the payment settles the 418; when that year is closed,
//!   the share stays in the current year's revenue, said so in the split.
//!
//! The split is stored with the entries that post it, shown on the entry,
//! and audited with them in one transaction.

use crate::domain::{self, Amount, Day, Line};
use crate::error::{AcctError, AcctResult};
use crate::repo::{self, Ledger};
use crate::service::{self, NewEntry, MODULE};
use serde::{Deserialize, Serialize};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanRead, CanWrite};
use sqlx::Row;
use utoipa::ToSchema;

/// The fiscal years known, extended by twelve-month years both ways so that
/// they cover `start`–`end`.
pub fn year_bounds(l: &Ledger, start: Day, end: Day) -> Vec<(Day, Day)> {
    let mut bounds: Vec<(Day, Day)> = l.years.iter().map(|y| (y.start_day(), y.end_day())).collect();
    if bounds.is_empty() {
        return bounds;
    }
    while bounds[0].0 > start {
        let s = bounds[0].0.add_years(-1);
        bounds.insert(0, (s, bounds[0].0.prev()));
    }
    while bounds[bounds.len() - 1].1 < end {
        let s = bounds[bounds.len() - 1].1.next();
        bounds.push((s, s.add_years(1).prev()));
    }
    bounds
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeferralInput {
    /// The day of the payment or invoice.
    pub date: String,
    pub label: String,
    #[schema(value_type = String)]
    pub amount: serde_json::Value,
    /// The revenue account (7…): dues 7561, services 706…
    pub revenue_account: String,
    /// The account debited: the bank (512…), the cash (53…) or the client (411…).
    pub counterpart: String,
    /// The member or client (on the counterpart line).
    #[serde(default)]
    pub aux: Option<String>,
    #[serde(default)]
    pub piece_ref: Option<String>,
    /// First and last day of the service paid for.
    pub service_start: String,
    pub service_end: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeferralShare {
    /// `previous` (a year before the payment's), `current` or `next` (a later year).
    pub kind: String,
    pub from: String,
    pub to: String,
    pub days: i64,
    pub amount: String,
    /// Where the share went: `418` (booked in the open previous year),
    /// `revenue` (in the current year, also a closed previous year's share),
    /// `487` (deferred to its year).
    pub booked_as: String,
    /// The entry that brings the share into revenue in its own year (the
    /// previous-year 418 entry, the payment itself, or the 487 transfer at
    /// the opening of a later year); none while that year does not exist.
    pub entry_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Deferral {
    pub id: String,
    /// The payment or invoice entry.
    pub entry_id: String,
    pub label: String,
    pub amount: String,
    pub revenue_account: String,
    pub service_start: String,
    pub service_end: String,
    pub shares: Vec<DeferralShare>,
}

fn journal_for(counterpart: &str) -> &'static str {
    if counterpart.starts_with("51") {
        "BQ"
    } else if counterpart.starts_with("53") {
        "CA"
    } else if counterpart.starts_with("41") {
        "VE"
    } else {
        "OD"
    }
}

fn line(account: &str, aux: &str, label: &str, debit: i64, credit: i64) -> Line {
    Line {
        account: account.into(),
        aux: aux.into(),
        aux_label: String::new(),
        label: label.into(),
        debit: Amount(debit),
        credit: Amount(credit),
        currency_amount: None,
        currency: None,
        tags: vec![],
    }
}

/// Posts a payment or invoice with its deferral, validated, in one transaction.
pub async fn post_deferral(db: &Db, who: &Who, cap: &CanWrite, input: DeferralInput) -> AcctResult<Deferral> {
    let mut tx = db.begin_durable().await?;
    let d = post_deferral_in(&mut tx, who, cap.org(), input).await?;
    tx.commit().await?;
    Ok(d)
}

/// [`post_deferral`] in the caller's transaction, for the modules that bill
/// (the caller has checked its own permission, as for `post_entry`).
pub async fn post_deferral_in(tx: &mut Tx, who: &Who, org: OrgId, input: DeferralInput) -> AcctResult<Deferral> {
    let mut errors = Vec::new();
    let date = Day::parse(&input.date).map_err(|m| errors.push(FieldError::new("date", m))).ok();
    let start = Day::parse(&input.service_start).map_err(|m| errors.push(FieldError::new("service_start", m))).ok();
    let end = Day::parse(&input.service_end).map_err(|m| errors.push(FieldError::new("service_end", m))).ok();
    let amount = match Amount::from_json(&input.amount) {
        Ok(Some(a)) if a.0 > 0 => Some(a),
        Ok(_) => {
            errors.push(FieldError::new("amount", "Give a positive amount."));
            None
        }
        Err(m) => {
            errors.push(FieldError::new("amount", m));
            None
        }
    };
    let revenue = domain::parse_account_number(&input.revenue_account)
        .map_err(|m| errors.push(FieldError::new("revenue_account", m)))
        .ok();
    if revenue.as_deref().is_some_and(|r| !r.starts_with('7')) {
        errors.push(FieldError::new("revenue_account", "Choose an income account (7…)."));
    }
    let counterpart = domain::parse_account_number(&input.counterpart)
        .map_err(|m| errors.push(FieldError::new("counterpart", m)))
        .ok();
    let label = input.label.trim().to_string();
    if label.is_empty() || label.chars().count() > 200 {
        errors.push(FieldError::new("label", "Write a label of 1 to 200 characters."));
    }
    if let (Some(s), Some(e)) = (start, end) {
        if e < s {
            errors.push(FieldError::new("service_end", "The service ends before it starts."));
        }
    }
    let (Some(date), Some(start), Some(end), Some(amount), Some(revenue), Some(counterpart), true) =
        (date, start, end, amount, revenue, counterpart, errors.is_empty())
    else {
        return Err(AcctError::Invalid(errors));
    };
    let aux = input.aux.as_deref().unwrap_or("").trim().to_string();
    let piece_ref = input.piece_ref.as_deref().unwrap_or("").trim().to_string();
    let l = repo::ledger(tx.conn(), org).await?;
    let year =
        l.year_of(&date.iso()).ok_or_else(|| AcctError::field("date", format!("No fiscal year holds {date}.")))?;
    let bounds = year_bounds(&l, start, end);
    let split = domain::split_by_days(amount, start, end, &bounds).map_err(|m| AcctError::field("service_end", m))?;
    let (ys, ye) = (year.start_day(), year.end_day());
    let prev_year = l.years.iter().find(|y| y.end_day().next() == ys).cloned();
    // (kind, share, booked_as)
    let mut shares: Vec<(&str, domain::YearShare, &str)> = Vec::new();
    for s in split {
        let from = Day::parse(&s.from).unwrap_or(start);
        let kind = if from > ye {
            "next"
        } else if from < ys {
            "previous"
        } else {
            "current"
        };
        let booked = match kind {
            "next" => "487",
            // Only the year just before, if it is still open, takes its share back.
            "previous" if prev_year.as_ref().is_some_and(|p| !p.is_closed() && p.contains(&s.from)) => "418",
            _ => "revenue",
        };
        shares.push((kind, s, booked));
    }
    let sum = |b: &str| shares.iter().filter(|x| x.2 == b).map(|x| x.1.amount.0).sum::<i64>();
    let (to_revenue, to_487, to_418) = (sum("revenue"), sum("487"), sum("418"));
    let mut main_lines = vec![line(&counterpart, &aux, &label, amount.0, 0)];
    if to_revenue > 0 {
        main_lines.push(line(&revenue, "", &label, 0, to_revenue));
    }
    if to_487 > 0 {
        main_lines.push(line("487", "", &format!("PCA {label}"), 0, to_487));
    }
    if to_418 > 0 {
        main_lines.push(line("418", "", &format!("Produit à recevoir {label}"), 0, to_418));
    }
    let mut batch = vec![NewEntry {
        journal: journal_for(&counterpart).into(),
        date,
        label: label.clone(),
        piece_ref: piece_ref.clone(),
        piece_date: None,
        lines: main_lines,
    }];
    if let (true, Some(p)) = (to_418 > 0, &prev_year) {
        batch.push(NewEntry {
            journal: "OD".into(),
            date: p.end_day(),
            label: format!("Produit à recevoir — {label}"),
            piece_ref: piece_ref.clone(),
            piece_date: None,
            lines: vec![
                line("418", "", &label, to_418, 0),
                line(&revenue, "", &format!("Service du {} au {}", start, p.end), 0, to_418),
            ],
        });
    }
    let posted = service::post_entries(tx, who, org, MODULE, batch, true).await.map_err(|e| match e {
        AcctError::Invalid(v) => AcctError::Invalid(
            v.into_iter()
                .map(|f| {
                    let field = if f.field.contains("date") {
                        "date"
                    } else if f.field.contains("account") {
                        "revenue_account"
                    } else {
                        "amount"
                    };
                    FieldError::new(field, f.message)
                })
                .collect(),
        ),
        other => other,
    })?;
    let id = uuid::Uuid::now_v7().to_string();
    let main_id = posted[0].id.clone();
    sqlx::query("INSERT INTO acct_deferrals (id, org_id, entry_id, label, amount, revenue_account, service_start, service_end, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(&id)
        .bind(org.to_string())
        .bind(&main_id)
        .bind(&label)
        .bind(amount.0)
        .bind(&revenue)
        .bind(start.iso())
        .bind(end.iso())
        .bind(Timestamp::now().0)
        .execute(tx.conn())
        .await?;
    for (i, (kind, s, booked)) in shares.iter().enumerate() {
        let entry = match *booked {
            "418" => posted.get(1).map(|p| p.id.clone()),
            "revenue" => Some(main_id.clone()),
            _ => None,
        };
        sqlx::query("INSERT INTO acct_deferral_shares (deferral_id, share_no, org_id, kind, share_from, share_to, days, amount, booked_as, entry_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(&id)
            .bind(i as i64)
            .bind(org.to_string())
            .bind(*kind)
            .bind(&s.from)
            .bind(&s.to)
            .bind(s.days)
            .bind(s.amount.0)
            .bind(*booked)
            .bind(entry)
            .execute(tx.conn())
            .await?;
    }
    // Later years that exist already get their transfer from 487 now.
    post_due(tx, who, org).await?;
    let d = load(tx.conn(), org, &id).await?;
    audit::record(
        tx,
        who,
        Change {
            org: Some(org),
            action: "accounting.deferral.post",
            entity_type: "deferral",
            entity_id: id.clone(),
            before: None,
            after: serde_json::to_value(&d).ok(),
        },
    )
    .await?;
    Ok(d)
}

/// Posts, for every deferred share whose fiscal year now exists and is
/// open, the transfer from 487 to revenue on the year's first day. Called
/// when a deferral is posted and when a fiscal year is created or opened by
/// closing, in that transaction.
pub async fn post_due(tx: &mut Tx, who: &Who, org: OrgId) -> AcctResult<()> {
    let rows = sqlx::query(
        "SELECT s.deferral_id, s.share_no, s.share_from, s.share_to, s.amount, d.label, d.revenue_account FROM acct_deferral_shares s \
         JOIN acct_deferrals d ON d.id = s.deferral_id WHERE s.org_id = $1 AND s.booked_as = '487' AND s.entry_id IS NULL ORDER BY s.share_from",
    )
    .bind(org.to_string())
    .fetch_all(tx.conn())
    .await?;
    if rows.is_empty() {
        return Ok(());
    }
    let l = repo::ledger(tx.conn(), org).await?;
    let mut due = Vec::new();
    let mut keys = Vec::new();
    for r in &rows {
        let from: String = r.try_get(2)?;
        let Some(y) = l.year_of(&from).filter(|y| !y.is_closed()) else { continue };
        let (amount, label, revenue): (i64, String, String) = (r.try_get(4)?, r.try_get(5)?, r.try_get(6)?);
        let to: String = r.try_get(3)?;
        due.push(NewEntry {
            journal: "OD".into(),
            date: y.start_day(),
            label: format!("Extourne PCA — {label}"),
            piece_ref: String::new(),
            piece_date: None,
            lines: vec![
                line("487", "", &label, amount, 0),
                line(&revenue, "", &format!("Service du {from} au {to}"), 0, amount),
            ],
        });
        keys.push((r.try_get::<String, _>(0)?, r.try_get::<i64, _>(1)?));
    }
    if due.is_empty() {
        return Ok(());
    }
    let posted = service::post_entries(tx, who, org, MODULE, due, true).await?;
    for ((deferral, no), p) in keys.iter().zip(posted) {
        sqlx::query(
            "UPDATE acct_deferral_shares SET entry_id = $1 WHERE org_id = $2 AND deferral_id = $3 AND share_no = $4",
        )
        .bind(&p.id)
        .bind(org.to_string())
        .bind(deferral)
        .bind(no)
        .execute(tx.conn())
        .await?;
    }
    Ok(())
}

async fn load(conn: &mut sqlx::AnyConnection, org: OrgId, id: &str) -> AcctResult<Deferral> {
    let r = sqlx::query("SELECT id, entry_id, label, amount, revenue_account, service_start, service_end FROM acct_deferrals WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(AcctError::Core(shrooms_core::CoreError::NotFound))?;
    let shares = sqlx::query("SELECT kind, share_from, share_to, days, amount, booked_as, entry_id FROM acct_deferral_shares WHERE org_id = $1 AND deferral_id = $2 ORDER BY share_no")
        .bind(org.to_string())
        .bind(id)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|s| {
            Ok(DeferralShare {
                kind: s.try_get(0)?,
                from: s.try_get(1)?,
                to: s.try_get(2)?,
                days: s.try_get(3)?,
                amount: Amount(s.try_get(4)?).plain(),
                booked_as: s.try_get(5)?,
                entry_id: s.try_get(6)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Deferral {
        id: r.try_get(0)?,
        entry_id: r.try_get(1)?,
        label: r.try_get(2)?,
        amount: Amount(r.try_get(3)?).plain(),
        revenue_account: r.try_get(4)?,
        service_start: r.try_get(5)?,
        service_end: r.try_get(6)?,
        shares,
    })
}

/// The deferral an entry belongs to (as the payment or as one of its share entries).
pub async fn of_entry(db: &Db, cap: &CanRead, entry_id: &str) -> AcctResult<Option<Deferral>> {
    let mut conn = db.pool().acquire().await?;
    let id = sqlx::query(
        "SELECT id FROM acct_deferrals WHERE org_id = $1 AND entry_id = $2 \
         UNION SELECT deferral_id FROM acct_deferral_shares WHERE org_id = $1 AND entry_id = $2",
    )
    .bind(cap.org().to_string())
    .bind(entry_id)
    .fetch_optional(&mut *conn)
    .await?;
    match id {
        Some(r) => Ok(Some(load(&mut conn, cap.org(), &r.try_get::<String, _>(0)?).await?)),
        None => Ok(None),
    }
}
