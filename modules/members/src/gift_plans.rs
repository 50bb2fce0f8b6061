//! Recurring gifts as plans. Most recurring gifts of a small association
//! are standing orders (virements permanents) the donor set up at their
//! bank: the plan says who gives how much, how often, by what means, and
//! the day the next gift is expected, so the treasurer sees which are late
//! and records each one received in one step. Receiving records the
//! donation exactly as by hand (`donations::record_donation_in`: ledger
//! entry, receipt eligibility, `recurring`) and moves the plan to its next
//! expected day, in the same transaction.
//!
//! The next day keeps the day of the month of the first one: a plan on the
//! 31st falls on the last day of shorter months and comes back to the 31st.
//! Nothing is collected: a SEPA direct debit of a gift is not built yet.

use crate::donations::{self, Donation, DonationInput, Recorded, FORMS, NATURES};
use crate::error::{MemError, MemResult};
use crate::service::{self, check_key, new_id, person_in, record, Method};
use jiff::civil::Date;
use jiff::ToSpan;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_core::audit::Who;
use shrooms_core::db::Tx;
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanRead, CanWrite};
use shrooms_core::{CoreError, Db};
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

/// How often a gift is expected.
pub const FREQUENCIES: [&str; 3] = ["monthly", "quarterly", "yearly"];
/// How the gifts are made: a standing order, cheques, cash, a card. A gift
/// by direct debit would be collected by the association, which is not built.
pub const METHODS: [Method; 4] = [Method::Transfer, Method::Cheque, Method::Cash, Method::Card];

fn months(frequency: &str) -> i32 {
    match frequency {
        "quarterly" => 3,
        "yearly" => 12,
        _ => 1,
    }
}

/// The expected day after `next`: `months` later, on the day of the month
/// of the plan's first day (`anchor`), or the month's last day when it has
/// fewer days. `None` past the calendar's end.
pub fn advance(next: Date, anchor: i8, months: i32) -> Option<Date> {
    let month = next.first_of_month().checked_add(months.months()).ok()?;
    Date::new(month.year(), month.month(), anchor.min(month.days_in_month())).ok()
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GiftPlan {
    pub id: String,
    /// The donor in the directory, member or not.
    pub person_id: String,
    pub donor_name: String,
    pub amount_cents: i64,
    /// `monthly`, `quarterly` or `yearly`.
    pub frequency: String,
    /// `transfer` (a standing order), `cheque`, `cash` or `card`.
    pub method: Method,
    /// The donations' form (`manual_gift`…).
    pub form: String,
    /// The donations' nature (`money`…); only money is posted to the ledger.
    pub nature: String,
    pub first_on: String,
    /// The day of the last expected gift, if the donor said.
    pub ends_on: Option<String>,
    /// The day the next gift is expected.
    pub next_on: String,
    /// `active` or `stopped` (by hand, or past its last day).
    pub status: String,
    /// Active and its next gift expected before today (the organisation's time zone).
    pub late: bool,
    /// Gifts received through the plan.
    pub received_count: i64,
    /// The donation of the last gift received.
    pub last_donation_id: Option<String>,
    pub created_at: String,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GiftPlanInput {
    /// Anyone of the organisation's directory, member or not.
    pub person_id: String,
    /// Each gift's amount.
    #[serde(default)]
    pub amount_cents: i64,
    /// `monthly`, `quarterly` or `yearly`.
    #[serde(default)]
    pub frequency: String,
    /// `transfer` (default: a standing order), `cheque`, `cash` or `card`.
    #[schema(value_type = Option<String>, example = "transfer")]
    pub method: Option<String>,
    /// Default `manual_gift`.
    pub form: Option<String>,
    /// Default `money`.
    pub nature: Option<String>,
    /// `YYYY-MM-DD`, the first expected gift; today when left out.
    pub first_on: Option<String>,
    /// `YYYY-MM-DD`, the last expected gift; none for an open-ended plan.
    pub ends_on: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiveInput {
    /// `YYYY-MM-DD`, not in the future; today when left out.
    pub received_on: Option<String>,
    /// The plan's amount when left out.
    pub amount_cents: Option<i64>,
    /// Sent again with the same key, the gift is recorded once.
    pub request_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReceivedGift {
    /// The donation recorded (`recurring`), with its ledger entry.
    pub donation: Donation,
    /// The plan, moved to its next expected day.
    pub plan: GiftPlan,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GiftPlanFilter {
    /// `active` or `stopped`; all when left out.
    pub status: Option<String>,
}

const PLAN_COLS: &str = "g.id, g.person_id, COALESCE(p.given_name, ''), COALESCE(p.family_name, ''), g.amount_cents, \
     g.frequency, g.method, g.form, g.nature, g.first_on, g.ends_on, g.next_on, g.status, g.received_count, \
     g.last_donation_id, g.created_at FROM mem_gift_plans g \
     LEFT JOIN people p ON p.org_id = g.org_id AND p.id = g.person_id";

fn plan_row(r: &AnyRow, today: Date) -> MemResult<GiftPlan> {
    let given: String = r.try_get(2)?;
    let family: String = r.try_get(3)?;
    let next_on: String = r.try_get(11)?;
    let status: String = r.try_get(12)?;
    Ok(GiftPlan {
        id: r.try_get(0)?,
        person_id: r.try_get(1)?,
        donor_name: format!("{given} {family}").trim().to_string(),
        amount_cents: r.try_get(4)?,
        frequency: r.try_get(5)?,
        method: Method::parse(&r.try_get::<String, _>(6)?).unwrap_or(Method::Transfer),
        form: r.try_get(7)?,
        nature: r.try_get(8)?,
        first_on: r.try_get(9)?,
        ends_on: r.try_get(10)?,
        late: status == "active" && next_on < today.to_string(),
        next_on,
        status,
        received_count: r.try_get(13)?,
        last_donation_id: r.try_get(14)?,
        created_at: Timestamp(r.try_get(15)?).rfc3339(),
    })
}

async fn plan_in(conn: &mut sqlx::AnyConnection, org: OrgId, id: &str, today: Date) -> MemResult<Option<GiftPlan>> {
    let r = sqlx::query(&format!("SELECT {PLAN_COLS} WHERE g.org_id = $1 AND g.id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(conn)
        .await?;
    r.as_ref().map(|r| plan_row(r, today)).transpose()
}

fn date_field(field: &str, v: Option<&str>, errors: &mut Vec<FieldError>) -> Option<Option<Date>> {
    match v.map(str::trim).filter(|s| !s.is_empty()) {
        None => Some(None),
        Some(s) => crate::domain::parse_date(field, s).map(Some).map_err(|e| errors.push(e)).ok(),
    }
}

/// Plans a recurring gift of anyone of the directory.
pub async fn create(db: &Db, who: &Who, cap: &CanWrite, zone: &str, input: GiftPlanInput) -> MemResult<GiftPlan> {
    let org = cap.org();
    let today = service::today(zone);
    let mut errors = Vec::new();
    if input.amount_cents <= 0 || input.amount_cents > 10_000_000_000 {
        errors.push(FieldError::new("amount_cents", "The amount must be more than zero."));
    }
    let frequency = input.frequency.trim().to_string();
    if !FREQUENCIES.contains(&frequency.as_str()) {
        errors.push(FieldError::new("frequency", "Choose monthly, quarterly or yearly."));
    }
    let method = Method::parse(input.method.as_deref().unwrap_or("transfer").trim()).filter(|m| METHODS.contains(m));
    if method.is_none() {
        errors.push(FieldError::new(
            "method",
            "Choose transfer (a standing order), cheque, cash or card: gifts by direct debit are not collected yet.",
        ));
    }
    let form = input.form.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("manual_gift").to_string();
    if !FORMS.contains(&form.as_str()) {
        errors.push(FieldError::new("form", "Choose authentic_act, private_deed, manual_gift or other."));
    }
    let nature = input.nature.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("money").to_string();
    if !NATURES.contains(&nature.as_str()) {
        errors.push(FieldError::new("nature", "Choose money, securities or in_kind."));
    }
    let first = date_field("first_on", input.first_on.as_deref(), &mut errors).map(|d| d.unwrap_or(today));
    let ends = date_field("ends_on", input.ends_on.as_deref(), &mut errors).flatten();
    if let (Some(f), Some(e)) = (first, ends) {
        if e < f {
            errors.push(FieldError::new("ends_on", "The last gift cannot come before the first one."));
        }
    }
    let mut tx = db.begin_durable().await?;
    let person_id = input.person_id.trim();
    if person_id.is_empty() {
        errors.push(FieldError::new(
            "person_id",
            "Choose the donor: find them in the directory, member or not (add them to it first if needed).",
        ));
    } else if person_in(tx.conn(), org, person_id).await?.is_none() {
        errors.push(FieldError::new("person_id", "No such person in this organisation."));
    }
    MemError::check(errors)?;
    let (Some(first), Some(method)) = (first, method) else { unreachable!("checked above") };
    let id = new_id();
    sqlx::query(
        "INSERT INTO mem_gift_plans (id, org_id, person_id, amount_cents, frequency, method, form, nature, first_on, \
         ends_on, next_on, status, received_count, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'active', 0, $12)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(person_id)
    .bind(input.amount_cents)
    .bind(&frequency)
    .bind(method.as_str())
    .bind(&form)
    .bind(&nature)
    .bind(first.to_string())
    .bind(ends.map(|d| d.to_string()))
    .bind(first.to_string())
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    let plan = plan_in(tx.conn(), org, &id, today).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    record(&mut tx, who, org, "members.gift_plan.create", "gift_plan", &id, None, Some(json!(plan))).await?;
    tx.commit().await?;
    Ok(plan)
}

/// The organisation's plans, the active ones first by next expected day.
pub async fn list(db: &Db, cap: &CanRead, zone: &str, f: &GiftPlanFilter) -> MemResult<Vec<GiftPlan>> {
    let status = f.status.as_deref().map(str::trim).unwrap_or("");
    if !status.is_empty() && status != "active" && status != "stopped" {
        return Err(MemError::field("status", "Choose active or stopped."));
    }
    let today = service::today(zone);
    let rows = sqlx::query(&format!(
        "SELECT {PLAN_COLS} WHERE g.org_id = $1 AND ($2 = '' OR g.status = $2) \
         ORDER BY g.status, g.next_on, g.created_at LIMIT 1000"
    ))
    .bind(cap.org().to_string())
    .bind(status)
    .fetch_all(db.pool())
    .await?;
    rows.iter().map(|r| plan_row(r, today)).collect()
}

/// Stops a plan: no gift is expected any more. Stopping a stopped plan changes nothing.
pub async fn stop(db: &Db, who: &Who, cap: &CanWrite, zone: &str, id: &str) -> MemResult<GiftPlan> {
    let org = cap.org();
    let today = service::today(zone);
    let mut tx = db.begin_durable().await?;
    let before = plan_in(tx.conn(), org, id, today).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    if before.status != "active" {
        return Ok(before);
    }
    sqlx::query("UPDATE mem_gift_plans SET status = 'stopped', stopped_at = $1 WHERE org_id = $2 AND id = $3")
        .bind(Timestamp::now().0)
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let after = plan_in(tx.conn(), org, id, today).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    record(&mut tx, who, org, "members.gift_plan.stop", "gift_plan", id, Some(json!(before)), Some(json!(after)))
        .await?;
    tx.commit().await?;
    Ok(after)
}

/// Records the expected gift of a plan as a donation (as by hand: ledger
/// entry, receipt eligibility, `recurring`), dated the day received, and
/// moves the plan to its next expected day; once with the same request key.
pub async fn receive(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    id: &str,
    input: ReceiveInput,
) -> MemResult<Recorded<ReceivedGift>> {
    let org = cap.org();
    let today = service::today(zone);
    let mut errors = Vec::new();
    let key = check_key(&input.request_key, "request_key", &mut errors);
    let received = date_field("received_on", input.received_on.as_deref(), &mut errors).map(|d| d.unwrap_or(today));
    if received.is_some_and(|d| d > today) {
        errors.push(FieldError::new("received_on", "A gift cannot be received in the future: give the day it came."));
    }
    if input.amount_cents.is_some_and(|a| a <= 0) {
        errors.push(FieldError::new("amount_cents", "The amount must be more than zero."));
    }
    let mut tx = db.begin_durable().await?;
    let plan = plan_in(tx.conn(), org, id, today).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    if let Some(k) = &key {
        if let Some(d) = donations::donation_by_key(tx.conn(), org, k).await? {
            return Ok(Recorded { item: ReceivedGift { donation: d, plan }, created: false });
        }
    }
    if plan.status != "active" {
        return Err(MemError::Precondition(
            "status".into(),
            "This recurring gift is stopped: no gift is expected. Record a gift that still came by hand.".into(),
        ));
    }
    MemError::check(errors)?;
    let Some(received) = received else { unreachable!("checked above") };
    let r = record_expected(&mut tx, who, cap, zone, &plan, received, input.amount_cents, key).await?;
    if r.created {
        tx.commit().await?;
    }
    Ok(r)
}

#[allow(clippy::too_many_arguments)]
async fn record_expected(
    tx: &mut Tx,
    who: &Who,
    cap: &CanWrite,
    zone: &str,
    plan: &GiftPlan,
    received: Date,
    amount: Option<i64>,
    key: Option<String>,
) -> MemResult<Recorded<ReceivedGift>> {
    let org = cap.org();
    let today = service::today(zone);
    let input = DonationInput {
        person_id: plan.person_id.clone(),
        amount_cents: amount.unwrap_or(plan.amount_cents),
        received_on: Some(received.to_string()),
        form: Some(plan.form.clone()),
        nature: Some(plan.nature.clone()),
        method: Some(plan.method.as_str().to_string()),
        recurring: true,
        request_key: key,
        ..Default::default()
    };
    let d = donations::record_donation_in(tx, who, cap, zone, input).await?;
    if !d.created {
        return Ok(Recorded { item: ReceivedGift { donation: d.item, plan: plan.clone() }, created: false });
    }
    let (Ok(next), Ok(first)) = (plan.next_on.parse::<Date>(), plan.first_on.parse::<Date>()) else {
        return Err(MemError::Core(CoreError::Internal(format!("stored days of gift plan {}", plan.id))));
    };
    let next = advance(next, first.day(), months(&plan.frequency))
        .ok_or_else(|| MemError::field("next_on", "The next expected day is past the calendar's end."))?;
    let ended = plan.ends_on.as_deref().and_then(|e| e.parse::<Date>().ok()).is_some_and(|e| next > e);
    // The condition on the day read serialises two receipts of the same gift.
    let n = sqlx::query(
        "UPDATE mem_gift_plans SET next_on = $1, status = $2, stopped_at = $3, last_donation_id = $4, \
         received_count = received_count + 1 WHERE org_id = $5 AND id = $6 AND next_on = $7 AND status = 'active'",
    )
    .bind(next.to_string())
    .bind(if ended { "stopped" } else { "active" })
    .bind(ended.then(|| Timestamp::now().0))
    .bind(&d.item.id)
    .bind(org.to_string())
    .bind(&plan.id)
    .bind(&plan.next_on)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if n != 1 {
        return Err(MemError::Core(CoreError::Conflict {
            field: Some("next_on".into()),
            message: "This gift was just recorded by someone else: reload the page.".into(),
        }));
    }
    let after = plan_in(tx.conn(), org, &plan.id, today).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    record(
        tx,
        who,
        org,
        "members.gift_plan.receive",
        "gift_plan",
        &plan.id,
        Some(json!(plan)),
        Some(json!({"plan": after, "donation_id": d.item.id, "received_on": d.item.received_on,
            "amount_cents": d.item.amount_cents})),
    )
    .await?;
    Ok(Recorded { item: ReceivedGift { donation: d.item, plan: after }, created: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Date {
        s.parse().unwrap()
    }

    #[test]
    fn the_31st_falls_on_the_last_day_of_shorter_months_and_comes_back() {
        assert_eq!(advance(day("2026-01-31"), 31, 1), Some(day("2026-02-28")));
        assert_eq!(advance(day("2026-02-28"), 31, 1), Some(day("2026-03-31")));
        assert_eq!(advance(day("2028-01-31"), 31, 1), Some(day("2028-02-29")));
        assert_eq!(advance(day("2026-03-31"), 31, 1), Some(day("2026-04-30")));
        assert_eq!(advance(day("2026-11-30"), 30, 3), Some(day("2027-02-28")));
        assert_eq!(advance(day("2024-02-29"), 29, 12), Some(day("2025-02-28")));
        assert_eq!(advance(day("2026-12-15"), 15, 1), Some(day("2027-01-15")));
    }
}
