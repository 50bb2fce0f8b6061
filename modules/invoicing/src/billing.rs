//! Billing what other modules and subscriptions ask for.
//!
//! - **Pending items** ([`bill_later`]): dues, hosting resources, validated
//!   time, hour-bank sales… Other modules never write invoices: they hand
//!   an item (customer, what, how much, VAT code, period) with their own
//!   reference, once (the same reference twice is the same item).
//! - **Subscriptions**: lines billed every month, quarter or year from an
//!   anchor date (the anniversary), in advance for the coming period.
//! - **Billing runs** (the job `invoicing.billing.run`): for a date, every
//!   due subscription period becomes pending items, then each customer's
//!   open items become one validated invoice (number, ledger entry, PDF),
//!   except when their total is below the organisation's minimum (the items
//!   wait for the next run) and overage items still in their grace period.
//!
//! A run is resumable by construction: a customer's invoice, its number,
//! its ledger entry and the marking of its items commit together, chunk by
//! chunk; what is still open after an interruption is exactly what is left
//! to bill. Running again never bills twice and never forgets.

use crate::catalogue::{audited, day, required};
use crate::customers;
use crate::documents::{self, DocLine, Parts, ENTITY};
use crate::{numbering, posting, MODULE};
use serde::{Deserialize, Serialize};
use shrooms_accounting::domain::Day;
use shrooms_core::audit::Who;
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::jobs::{self, JobCtx, JobFuture, JobSpec};
use shrooms_core::permissions::{CanRead, CanWrite};
use shrooms_core::web::AppState;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;
use std::collections::HashMap;
use utoipa::ToSchema;

// ---------- pending items ----------

/// Something to bill at the next run. `source_module` + `source_ref` name it
/// for its module; handing the same pair again returns the item already there.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPendingItem {
    pub customer_id: String,
    /// The module that asks (`hosting`, `members`, `psa`…).
    pub source_module: String,
    /// Its own reference of what is billed (`vm-42:2026-11`).
    pub source_ref: String,
    #[serde(default)]
    pub product_id: Option<String>,
    /// The line's text; the product's name when left out.
    #[serde(default)]
    pub name: Option<String>,
    /// Thousandths; default 1000.
    #[serde(default)]
    pub quantity_milli: Option<i64>,
    #[serde(default)]
    pub unit_code: Option<String>,
    /// The product's price when left out.
    #[serde(default)]
    pub unit_price_cents: Option<i64>,
    /// The product's VAT code when left out.
    #[serde(default)]
    pub vat_code: Option<String>,
    #[serde(default)]
    pub revenue_account: Option<String>,
    #[serde(default)]
    pub period_start: Option<String>,
    #[serde(default)]
    pub period_end: Option<String>,
    /// An overage (usage above a plan): billed only after the organisation's
    /// grace period, counted from the end of its period.
    #[serde(default)]
    pub overage: bool,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PendingItem {
    pub id: String,
    pub customer_id: String,
    pub source_module: String,
    pub source_ref: String,
    pub product_id: Option<String>,
    pub name: String,
    pub quantity_milli: i64,
    pub unit_code: String,
    pub unit_price_cents: i64,
    pub vat_code: String,
    pub revenue_account: Option<String>,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    /// Not billed before this day (overage in its grace period).
    pub not_before: Option<String>,
    /// The invoice that billed it; null while pending.
    pub document_id: Option<String>,
}

const ITEM_COLS: &str = "id, customer_id, source_module, source_ref, product_id, name, quantity_milli, unit_code, \
    unit_price_cents, vat_code, revenue_account, period_start, period_end, not_before, document_id";

fn item_from(r: &AnyRow) -> Result<PendingItem, sqlx::Error> {
    Ok(PendingItem {
        id: r.try_get(0)?,
        customer_id: r.try_get(1)?,
        source_module: r.try_get(2)?,
        source_ref: r.try_get(3)?,
        product_id: r.try_get(4)?,
        name: r.try_get(5)?,
        quantity_milli: r.try_get(6)?,
        unit_code: r.try_get(7)?,
        unit_price_cents: r.try_get(8)?,
        vat_code: r.try_get(9)?,
        revenue_account: r.try_get(10)?,
        period_start: r.try_get(11)?,
        period_end: r.try_get(12)?,
        not_before: r.try_get(13)?,
        document_id: r.try_get(14)?,
    })
}

/// Hands an item to bill at the next run, in the caller's transaction (the
/// calling module's own change and its billing commit together). Returns the
/// item; the same `source_module` + `source_ref` again returns the first one.
pub async fn bill_later(tx: &mut Tx, org: OrgId, item: NewPendingItem) -> CoreResult<PendingItem> {
    let mut made = bill_later_many(tx, org, vec![item]).await?;
    made.pop().ok_or_else(|| CoreError::Internal("a pending item was not stored".into()))
}

/// [`bill_later`] for many items at once, with the same rules (for bulk
/// writers: the members' renewal run): the organisation's rules and the
/// customers are read once, the new items stored by multi-row inserts.
/// Returns the items in the given order; the first item refused refuses
/// them all (422 with its field errors, as [`bill_later`] answers).
pub async fn bill_later_many(tx: &mut Tx, org: OrgId, items: Vec<NewPendingItem>) -> CoreResult<Vec<PendingItem>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let conn = tx.conn();
    // Those handed already (by source module and reference: the unique index).
    let mut known: HashMap<(String, String), PendingItem> = HashMap::new();
    let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in &items {
        refs.entry(i.source_module.trim().to_string()).or_default().push(i.source_ref.trim().to_string());
    }
    for (module, refs) in &refs {
        for chunk in refs.chunks(500) {
            let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "SELECT {ITEM_COLS} FROM inv_pending_items WHERE org_id = $1 AND source_module = $2 \
                 AND source_ref IN ({})",
                params.join(",")
            );
            let mut q = sqlx::query(&sql).bind(org.to_string()).bind(module);
            for r in chunk {
                q = q.bind(r);
            }
            for r in q.fetch_all(&mut *conn).await? {
                let it = item_from(&r)?;
                known.insert((it.source_module.clone(), it.source_ref.clone()), it);
            }
        }
    }
    let ids: Vec<String> = items.iter().map(|i| i.customer_id.trim().to_string()).collect();
    let mut customers_by_id = HashMap::new();
    for chunk in ids.chunks(500) {
        customers_by_id.extend(customers::customers_in(conn, org, chunk).await?);
    }
    let ctx = documents::context(conn, org).await?;
    let mut out = Vec::with_capacity(items.len());
    let mut fresh = Vec::new();
    let now = Timestamp::now().0;
    for item in items {
        if let Some(it) = known.get(&(item.source_module.trim().to_string(), item.source_ref.trim().to_string())) {
            out.push(it.clone());
            continue;
        }
        let mut e = Vec::new();
        let source_module = required(&item.source_module, "source_module", 40, &mut e);
        let source_ref = required(&item.source_ref, "source_ref", 200, &mut e);
        if !customers_by_id.contains_key(item.customer_id.trim()) {
            e.push(FieldError::new("customer_id", "There is no such customer in this organisation."));
        }
        let date = item.period_start.as_deref().and_then(|s| Day::parse(s).ok()).unwrap_or_else(Day::today);
        let lines = documents::resolve_lines(
            conn,
            org,
            &ctx,
            &[documents::LineInput {
                product_id: item.product_id.clone(),
                name: item.name.clone(),
                description: None,
                quantity_milli: item.quantity_milli,
                unit_code: item.unit_code.clone(),
                unit_price_cents: item.unit_price_cents,
                discount_bp: None,
                vat_code: item.vat_code.clone(),
                revenue_account: item.revenue_account.clone(),
                period_start: item.period_start.clone(),
                period_end: item.period_end.clone(),
            }],
            date,
            &mut e,
        )
        .await?;
        // Field names without the `lines[0].` of the document form.
        for f in e.iter_mut() {
            if let Some(rest) = f.field.strip_prefix("lines[0].") {
                f.field = rest.to_string();
            }
        }
        if !e.is_empty() {
            return Err(CoreError::Validation(e));
        }
        let l = &lines[0];
        let not_before = if item.overage {
            let from = l.period_end.as_deref().and_then(|s| Day::parse(s).ok()).unwrap_or_else(Day::today);
            Some(Day(from.0 + time::Duration::days(ctx.settings.overage_grace_days)).iso())
        } else {
            None
        };
        let it = PendingItem {
            id: uuid::Uuid::now_v7().to_string(),
            customer_id: item.customer_id.trim().to_string(),
            source_module,
            source_ref,
            product_id: l.product_id.clone(),
            name: l.name.clone(),
            quantity_milli: l.quantity_milli,
            unit_code: l.unit_code.clone(),
            unit_price_cents: l.unit_price_cents,
            vat_code: l.vat_code.clone(),
            revenue_account: Some(l.revenue_account.clone()),
            period_start: l.period_start.clone(),
            period_end: l.period_end.clone(),
            not_before,
            document_id: None,
        };
        // The same reference twice in one call is one item.
        known.insert((it.source_module.clone(), it.source_ref.clone()), it.clone());
        fresh.push(it.clone());
        out.push(it);
    }
    for chunk in fresh.chunks(100) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = 3 + i * 14;
                let rest: Vec<String> = (b + 1..b + 14).map(|k| format!("${k}")).collect();
                format!("(${b}, $1, {}, NULL, $2)", rest.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO inv_pending_items (id, org_id, customer_id, source_module, source_ref, product_id, name, \
             quantity_milli, unit_code, unit_price_cents, vat_code, revenue_account, period_start, period_end, \
             not_before, document_id, created_at) VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string()).bind(now);
        for it in chunk {
            q = q
                .bind(&it.id)
                .bind(&it.customer_id)
                .bind(&it.source_module)
                .bind(&it.source_ref)
                .bind(&it.product_id)
                .bind(&it.name)
                .bind(it.quantity_milli)
                .bind(&it.unit_code)
                .bind(it.unit_price_cents)
                .bind(&it.vat_code)
                .bind(&it.revenue_account)
                .bind(&it.period_start)
                .bind(&it.period_end)
                .bind(&it.not_before);
        }
        q.execute(tx.conn()).await?;
    }
    Ok(out)
}

/// [`bill_later`] in its own transaction, audited (the API's way in).
pub async fn add_pending(db: &Db, who: &Who, cap: &CanWrite, item: NewPendingItem) -> CoreResult<PendingItem> {
    let mut tx = db.begin().await?;
    let p = bill_later(&mut tx, cap.org(), item).await?;
    audited(
        &mut tx,
        who,
        cap.org(),
        "invoicing.pending.add",
        "inv_pending_item",
        &p.id,
        None,
        serde_json::to_value(&p).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(p)
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PendingQuery {
    pub customer_id: Option<String>,
    /// Only items not billed yet (default true).
    pub open: Option<bool>,
}

pub async fn list_pending(db: &Db, cap: &CanRead, q: &PendingQuery) -> CoreResult<Vec<PendingItem>> {
    let rows = sqlx::query(&format!(
        "SELECT {ITEM_COLS} FROM inv_pending_items WHERE org_id = $1 AND ($2 = '' OR customer_id = $2) \
         AND ($3 = 0 OR document_id IS NULL) ORDER BY id LIMIT 1000"
    ))
    .bind(cap.org().to_string())
    .bind(q.customer_id.clone().unwrap_or_default())
    .bind(q.open.unwrap_or(true) as i64)
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(item_from).collect::<Result<_, _>>()?)
}

// ---------- subscriptions ----------

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionLineInput {
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub quantity_milli: Option<i64>,
    #[serde(default)]
    pub unit_code: Option<String>,
    #[serde(default)]
    pub unit_price_cents: Option<i64>,
    #[serde(default)]
    pub vat_code: Option<String>,
    #[serde(default)]
    pub revenue_account: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionInput {
    pub customer_id: String,
    pub label: String,
    /// `monthly`, `quarterly` or `yearly`.
    pub frequency: String,
    /// The first period starts on this day; later ones on the same day of
    /// the month (the anniversary), the month's last day when shorter.
    pub anchor_date: String,
    #[serde(default)]
    pub end_date: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    pub lines: Vec<SubscriptionLineInput>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SubscriptionLine {
    pub position: i64,
    pub product_id: Option<String>,
    pub name: String,
    pub quantity_milli: i64,
    pub unit_code: String,
    pub unit_price_cents: i64,
    pub vat_code: String,
    pub revenue_account: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Subscription {
    pub id: String,
    pub customer_id: String,
    pub customer_name: String,
    pub label: String,
    pub frequency: String,
    pub anchor_date: String,
    /// The start of the next period to bill.
    pub next_date: String,
    pub end_date: Option<String>,
    pub periods_billed: i64,
    pub active: bool,
    pub lines: Vec<SubscriptionLine>,
}

fn months(frequency: &str) -> Option<i32> {
    match frequency {
        "monthly" => Some(1),
        "quarterly" => Some(3),
        "yearly" => Some(12),
        _ => None,
    }
}

/// The `n`-th period (from 0) of a subscription: its first and last day.
pub fn period(anchor: Day, step: i32, n: i64) -> (Day, Day) {
    let start = anchor.add_months(step * n as i32);
    let end = anchor.add_months(step * (n as i32 + 1)).prev();
    (start, end)
}

const SUB_COLS: &str = "s.id, s.customer_id, c.name, s.label, s.frequency, s.anchor_date, s.next_date, s.end_date, \
    s.periods_billed, s.active";

async fn subscription_in(conn: &mut AnyConnection, org: OrgId, id: &str) -> CoreResult<Option<Subscription>> {
    let r = sqlx::query(&format!(
        "SELECT {SUB_COLS} FROM inv_subscriptions s JOIN inv_customers c ON c.id = s.customer_id \
         WHERE s.org_id = $1 AND s.id = $2"
    ))
    .bind(org.to_string())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let mut s = sub_from(&r)?;
    let lines = sqlx::query(
        "SELECT position, product_id, name, quantity_milli, unit_code, unit_price_cents, vat_code, revenue_account \
         FROM inv_subscription_lines WHERE subscription_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    s.lines = lines
        .iter()
        .map(|r| {
            Ok(SubscriptionLine {
                position: r.try_get(0)?,
                product_id: r.try_get(1)?,
                name: r.try_get(2)?,
                quantity_milli: r.try_get(3)?,
                unit_code: r.try_get(4)?,
                unit_price_cents: r.try_get(5)?,
                vat_code: r.try_get(6)?,
                revenue_account: r.try_get(7)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(Some(s))
}

fn sub_from(r: &AnyRow) -> Result<Subscription, sqlx::Error> {
    Ok(Subscription {
        id: r.try_get(0)?,
        customer_id: r.try_get(1)?,
        customer_name: r.try_get(2)?,
        label: r.try_get(3)?,
        frequency: r.try_get(4)?,
        anchor_date: r.try_get(5)?,
        next_date: r.try_get(6)?,
        end_date: r.try_get(7)?,
        periods_billed: r.try_get(8)?,
        active: r.try_get::<i64, _>(9)? != 0,
        lines: Vec::new(),
    })
}

pub async fn get_subscription(db: &Db, cap: &CanRead, id: &str) -> CoreResult<Subscription> {
    let mut conn = db.pool().acquire().await?;
    subscription_in(&mut conn, cap.org(), id).await?.ok_or(CoreError::NotFound)
}

pub async fn list_subscriptions(db: &Db, cap: &CanRead) -> CoreResult<Vec<Subscription>> {
    let rows = sqlx::query(&format!(
        "SELECT {SUB_COLS} FROM inv_subscriptions s JOIN inv_customers c ON c.id = s.customer_id \
         WHERE s.org_id = $1 ORDER BY s.next_date, s.id LIMIT 1000"
    ))
    .bind(cap.org().to_string())
    .fetch_all(db.pool())
    .await?;
    Ok(rows.iter().map(sub_from).collect::<Result<_, _>>()?)
}

async fn check_subscription(
    conn: &mut AnyConnection,
    org: OrgId,
    input: &SubscriptionInput,
) -> CoreResult<(Day, Option<Day>, Vec<DocLine>)> {
    let mut e = Vec::new();
    if customers::customer_in(conn, org, input.customer_id.trim()).await?.is_none() {
        e.push(FieldError::new("customer_id", "There is no such customer in this organisation."));
    }
    required(&input.label, "label", 200, &mut e);
    if months(input.frequency.trim()).is_none() {
        e.push(FieldError::new("frequency", "Choose monthly, quarterly or yearly."));
    }
    let anchor = day(&input.anchor_date, "anchor_date", &mut e);
    let end = input.end_date.as_deref().filter(|s| !s.trim().is_empty()).and_then(|s| day(s, "end_date", &mut e));
    if input.lines.is_empty() {
        e.push(FieldError::new("lines", "A subscription has at least one line."));
    }
    let ctx = documents::context(conn, org).await?;
    let typed: Vec<documents::LineInput> = input
        .lines
        .iter()
        .map(|l| documents::LineInput {
            product_id: l.product_id.clone(),
            name: l.name.clone(),
            quantity_milli: l.quantity_milli,
            unit_code: l.unit_code.clone(),
            unit_price_cents: l.unit_price_cents,
            vat_code: l.vat_code.clone(),
            revenue_account: l.revenue_account.clone(),
            ..Default::default()
        })
        .collect();
    let lines = documents::resolve_lines(conn, org, &ctx, &typed, anchor.unwrap_or_else(Day::today), &mut e).await?;
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    Ok((anchor.expect("checked"), end, lines))
}

async fn write_sub_lines(conn: &mut AnyConnection, id: &str, lines: &[DocLine]) -> CoreResult<()> {
    sqlx::query("DELETE FROM inv_subscription_lines WHERE subscription_id = $1").bind(id).execute(&mut *conn).await?;
    for l in lines {
        sqlx::query(
            "INSERT INTO inv_subscription_lines (subscription_id, position, product_id, name, quantity_milli, unit_code, \
             unit_price_cents, vat_code, revenue_account) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(l.position)
        .bind(&l.product_id)
        .bind(&l.name)
        .bind(l.quantity_milli)
        .bind(&l.unit_code)
        .bind(l.unit_price_cents)
        .bind(&l.vat_code)
        .bind(Some(&l.revenue_account))
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub async fn create_subscription(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    input: SubscriptionInput,
) -> CoreResult<Subscription> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let (anchor, end, lines) = check_subscription(tx.conn(), org, &input).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO inv_subscriptions (id, org_id, customer_id, label, frequency, anchor_date, next_date, end_date, \
         periods_billed, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6, $7, 0, $8, $9, $9)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(input.customer_id.trim())
    .bind(input.label.trim())
    .bind(input.frequency.trim())
    .bind(anchor.iso())
    .bind(end.map(|d| d.iso()))
    .bind(input.active.unwrap_or(true) as i64)
    .bind(now)
    .execute(tx.conn())
    .await?;
    write_sub_lines(tx.conn(), &id, &lines).await?;
    let s = subscription_in(tx.conn(), org, &id).await?.ok_or(CoreError::NotFound)?;
    audited(
        &mut tx,
        who,
        org,
        "invoicing.subscription.create",
        "inv_subscription",
        &id,
        None,
        serde_json::to_value(&s).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// Changes a subscription: its lines and end apply to the periods not billed
/// yet; the anchor of a subscription already billed does not move.
pub async fn update_subscription(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    id: &str,
    input: SubscriptionInput,
) -> CoreResult<Subscription> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = subscription_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    let (anchor, end, lines) = check_subscription(tx.conn(), org, &input).await?;
    if before.periods_billed > 0 && (anchor.iso() != before.anchor_date || input.frequency != before.frequency) {
        return Err(CoreError::Conflict {
            field: Some("anchor_date".into()),
            message:
                "Periods were billed already: the anchor and frequency stay; end this subscription and start another."
                    .into(),
        });
    }
    sqlx::query(
        "UPDATE inv_subscriptions SET customer_id = $1, label = $2, frequency = $3, anchor_date = $4, \
         next_date = CASE WHEN periods_billed = 0 THEN $4 ELSE next_date END, end_date = $5, active = $6, updated_at = $7 \
         WHERE org_id = $8 AND id = $9",
    )
    .bind(input.customer_id.trim())
    .bind(input.label.trim())
    .bind(input.frequency.trim())
    .bind(anchor.iso())
    .bind(end.map(|d| d.iso()))
    .bind(input.active.unwrap_or(true) as i64)
    .bind(Timestamp::now().0)
    .bind(org.to_string())
    .bind(id)
    .execute(tx.conn())
    .await?;
    write_sub_lines(tx.conn(), id, &lines).await?;
    let s = subscription_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    audited(
        &mut tx,
        who,
        org,
        "invoicing.subscription.update",
        "inv_subscription",
        id,
        serde_json::to_value(&before).ok(),
        serde_json::to_value(&s).ok(),
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

/// Turns every subscription period starting on or before `date` into
/// pending items, advancing each subscription in the same transaction.
async fn materialise_subscriptions(db: &Db, org: OrgId, date: Day) -> CoreResult<i64> {
    let mut made = 0;
    loop {
        let mut tx = db.begin().await?;
        let due = sqlx::query(
            "SELECT id, customer_id, label, frequency, anchor_date, periods_billed, end_date FROM inv_subscriptions \
             WHERE org_id = $1 AND active = 1 AND next_date <= $2 AND (end_date IS NULL OR next_date <= end_date) \
             ORDER BY id LIMIT 500",
        )
        .bind(org.to_string())
        .bind(date.iso())
        .fetch_all(tx.conn())
        .await?;
        if due.is_empty() {
            tx.commit().await?;
            return Ok(made);
        }
        let ids: Vec<String> = due.iter().map(|r| r.try_get::<String, _>(0)).collect::<Result<_, _>>()?;
        let mut lines: BTreeMap<String, Vec<AnyRow>> = BTreeMap::new();
        for chunk in ids.chunks(200) {
            let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 1)).collect();
            let sql = format!(
                "SELECT subscription_id, position, product_id, name, quantity_milli, unit_code, unit_price_cents, vat_code, \
                 revenue_account FROM inv_subscription_lines WHERE subscription_id IN ({}) ORDER BY subscription_id, position",
                params.join(",")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id);
            }
            for r in q.fetch_all(tx.conn()).await? {
                lines.entry(r.try_get(0)?).or_default().push(r);
            }
        }
        let now = Timestamp::now().0;
        let mut items: Vec<[String; 6]> = Vec::new();
        let mut rows: Vec<(String, String, String, Option<String>, i64, String, i64, String, Option<String>)> =
            Vec::new();
        for s in &due {
            let id: String = s.try_get(0)?;
            let customer: String = s.try_get(1)?;
            let label: String = s.try_get(2)?;
            let step = months(&s.try_get::<String, _>(3)?).unwrap_or(1);
            let anchor = Day::parse(&s.try_get::<String, _>(4)?).map_err(|m| CoreError::Internal(m.into()))?;
            let n: i64 = s.try_get(5)?;
            let end: Option<String> = s.try_get(6)?;
            // Every period due by `date`, in one go (a run after a long pause catches up).
            let mut k = n;
            loop {
                let (ps, pe) = period(anchor, step, k);
                if ps > date || end.as_deref().is_some_and(|e| ps.iso().as_str() > e) {
                    break;
                }
                for l in lines.get(&id).map(Vec::as_slice).unwrap_or_default() {
                    let pos: i64 = l.try_get(1)?;
                    items.push([
                        uuid::Uuid::now_v7().to_string(),
                        customer.clone(),
                        format!("{id}:{}:{pos}", ps.iso()),
                        format!("{} — {}", l.try_get::<String, _>(3)?, label),
                        ps.iso(),
                        pe.iso(),
                    ]);
                    rows.push((
                        l.try_get(2).map(|p: Option<String>| p.unwrap_or_default())?,
                        String::new(),
                        String::new(),
                        l.try_get(8)?,
                        l.try_get(4)?,
                        l.try_get(5)?,
                        l.try_get(6)?,
                        l.try_get(7)?,
                        None,
                    ));
                }
                k += 1;
            }
            let next = period(anchor, step, k).0;
            sqlx::query(
                "UPDATE inv_subscriptions SET periods_billed = $1, next_date = $2, updated_at = $3 WHERE org_id = $4 AND id = $5",
            )
            .bind(k)
            .bind(next.iso())
            .bind(now)
            .bind(org.to_string())
            .bind(&id)
            .execute(tx.conn())
            .await?;
        }
        for chunk in items.iter().zip(rows.iter()).collect::<Vec<_>>().chunks(100) {
            let mut sql = String::from(
                "INSERT INTO inv_pending_items (id, org_id, customer_id, source_module, source_ref, product_id, name, \
                 quantity_milli, unit_code, unit_price_cents, vat_code, revenue_account, period_start, period_end, \
                 not_before, document_id, created_at) VALUES ",
            );
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let b = i * 13;
                sql.push_str(&format!(
                    "(${}, ${}, ${}, 'invoicing.subscription', ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, NULL, NULL, {now})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7,
                    b + 8,
                    b + 9,
                    b + 10,
                    b + 11,
                    b + 12,
                    b + 13
                ));
            }
            sql.push_str(" ON CONFLICT (org_id, source_module, source_ref) DO NOTHING");
            let mut q = sqlx::query(&sql);
            for (it, r) in chunk {
                q = q
                    .bind(&it[0])
                    .bind(org.to_string())
                    .bind(&it[1])
                    .bind(&it[2])
                    .bind(Some(r.0.clone()).filter(|p| !p.is_empty()))
                    .bind(&it[3])
                    .bind(r.4)
                    .bind(&r.5)
                    .bind(r.6)
                    .bind(&r.7)
                    .bind(&r.3)
                    .bind(&it[4])
                    .bind(&it[5]);
            }
            q.execute(tx.conn()).await?;
        }
        made += items.len() as i64;
        tx.commit().await?;
    }
}

// ---------- billing runs ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BillingRun {
    pub id: String,
    pub run_date: String,
    /// queued, running, paused, cancelling, cancelled, done, failed.
    pub status: String,
    /// Customers with something to bill when the run counted them.
    pub total: i64,
    pub done: i64,
    pub invoices: i64,
    /// Customers below the minimum: their items wait for the next run.
    pub carried_over: i64,
    /// Customers held back by a missing legal field (see `error`).
    pub failed: i64,
    pub error: Option<String>,
    pub stop_after: Option<i64>,
    /// RFC 3339.
    pub started_at: String,
    pub finished_at: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBillingRun {
    /// `YYYY-MM-DD`: the invoices' issue date; periods starting by then are billed. Today when left out.
    #[serde(default)]
    pub run_date: Option<String>,
    /// Pause after this many customers (a resume continues).
    #[serde(default)]
    pub stop_after: Option<i64>,
}

const RUN_COLS: &str =
    "id, run_date, status, total, done, invoices, carried_over, failed, error, stop_after, started_at, finished_at";

fn run_from(r: &AnyRow) -> Result<BillingRun, sqlx::Error> {
    Ok(BillingRun {
        id: r.try_get(0)?,
        run_date: r.try_get(1)?,
        status: r.try_get(2)?,
        total: r.try_get(3)?,
        done: r.try_get(4)?,
        invoices: r.try_get(5)?,
        carried_over: r.try_get(6)?,
        failed: r.try_get(7)?,
        error: r.try_get(8)?,
        stop_after: r.try_get(9)?,
        started_at: Timestamp(r.try_get(10)?).rfc3339(),
        finished_at: r.try_get::<Option<i64>, _>(11)?.map(|t| Timestamp(t).rfc3339()),
    })
}

pub async fn get_run(db: &Db, cap: &CanRead, id: &str) -> CoreResult<BillingRun> {
    let r = sqlx::query(&format!("SELECT {RUN_COLS} FROM inv_runs WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    Ok(run_from(&r)?)
}

pub async fn list_runs(db: &Db, cap: &CanRead) -> CoreResult<Vec<BillingRun>> {
    let rows =
        sqlx::query(&format!("SELECT {RUN_COLS} FROM inv_runs WHERE org_id = $1 ORDER BY started_at DESC LIMIT 50"))
            .bind(cap.org().to_string())
            .fetch_all(db.pool())
            .await?;
    Ok(rows.iter().map(run_from).collect::<Result<_, _>>()?)
}

pub const RUN_JOB: JobSpec =
    JobSpec { name: "invoicing.billing.run", max_attempts: 5, backoff_secs: 5, timeout_secs: 3600, run: run_job };

/// Starts a billing run: the job does the work; the run shows its progress.
pub async fn start_run(db: &Db, who: &Who, cap: &CanWrite, input: NewBillingRun) -> CoreResult<BillingRun> {
    let mut e = Vec::new();
    let date = match input.run_date.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => day(s, "run_date", &mut e),
        None => Some(Day::today()),
    };
    if input.stop_after.is_some_and(|n| n < 1) {
        e.push(FieldError::new("stop_after", "Give at least 1 customer."));
    }
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    let org = cap.org();
    let mut tx = db.begin().await?;
    let busy =
        sqlx::query("SELECT id FROM inv_runs WHERE org_id = $1 AND status IN ('queued', 'running', 'cancelling')")
            .bind(org.to_string())
            .fetch_optional(tx.conn())
            .await?;
    if busy.is_some() {
        return Err(CoreError::Conflict {
            field: None,
            message: "A billing run is in progress: wait for it to end.".into(),
        });
    }
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO inv_runs (id, org_id, run_date, status, stop_after, created_by, started_at) VALUES ($1, $2, $3, 'queued', $4, $5, $6)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(date.expect("checked").iso())
    .bind(input.stop_after)
    .bind(who.account.map(|a| a.to_string()))
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    let job = jobs::enqueue(
        &mut tx,
        &RUN_JOB,
        Some(org),
        serde_json::json!({"run": id}),
        Some(&format!("inv-run:{id}:0")),
        0,
    )
    .await?;
    sqlx::query("UPDATE inv_runs SET job_id = $1 WHERE id = $2").bind(&job).bind(&id).execute(tx.conn()).await?;
    audited(
        &mut tx,
        who,
        org,
        "invoicing.run.start",
        "inv_run",
        &id,
        None,
        Some(serde_json::json!({"run_date": date.map(|d| d.iso())})),
    )
    .await?;
    tx.commit().await?;
    get_run(db, &cap.as_read(), &id).await
}

/// Asks a run to stop after the chunk it is billing; `resume` continues it.
pub async fn cancel_run(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> CoreResult<BillingRun> {
    let run = get_run(db, &cap.as_read(), id).await?;
    let next = match run.status.as_str() {
        "queued" | "paused" => "cancelled",
        "running" => "cancelling",
        _ => return Err(CoreError::Conflict { field: None, message: format!("This run is {}.", run.status) }),
    };
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE inv_runs SET status = $1 WHERE org_id = $2 AND id = $3 AND status = $4")
        .bind(next)
        .bind(cap.org().to_string())
        .bind(id)
        .bind(&run.status)
        .execute(tx.conn())
        .await?;
    audited(&mut tx, who, cap.org(), "invoicing.run.cancel", "inv_run", id, None, None).await?;
    tx.commit().await?;
    get_run(db, &cap.as_read(), id).await
}

/// Continues a paused, cancelled or failed run where it stopped.
pub async fn resume_run(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> CoreResult<BillingRun> {
    let run = get_run(db, &cap.as_read(), id).await?;
    if !matches!(run.status.as_str(), "paused" | "cancelled" | "failed") {
        return Err(CoreError::Conflict {
            field: None,
            message: format!("This run is {}: nothing to resume.", run.status),
        });
    }
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE inv_runs SET status = 'queued', stop_after = NULL, error = NULL, finished_at = NULL WHERE org_id = $1 AND id = $2")
        .bind(cap.org().to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let key = format!("inv-run:{id}:{}", uuid::Uuid::now_v7());
    jobs::enqueue(&mut tx, &RUN_JOB, Some(cap.org()), serde_json::json!({"run": id}), Some(&key), 0).await?;
    audited(&mut tx, who, cap.org(), "invoicing.run.resume", "inv_run", id, None, None).await?;
    tx.commit().await?;
    get_run(db, &cap.as_read(), id).await
}

fn run_job(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let cap = ctx.write_grant(MODULE).ok_or_else(|| anyhow::anyhow!("a billing run has an organisation"))?;
        let id = ctx.payload["run"].as_str().unwrap_or_default().to_string();
        match execute(&st, &cap, &id, CHUNK).await {
            Ok(()) => Ok(()),
            Err(e) => {
                sqlx::query("UPDATE inv_runs SET status = 'failed', error = $1, finished_at = $2 WHERE id = $3")
                    .bind(format!("{e}"))
                    .bind(Timestamp::now().0)
                    .bind(&id)
                    .execute(st.db.pool())
                    .await?;
                Err(e.into())
            }
        }
    })
}

/// Customers billed per transaction.
const CHUNK: usize = 100;

async fn run_status(db: &Db, id: &str) -> CoreResult<(String, Option<i64>, i64)> {
    let r = sqlx::query("SELECT status, stop_after, done FROM inv_runs WHERE id = $1")
        .bind(id)
        .fetch_one(db.pool())
        .await?;
    Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?))
}

/// Runs (or continues) a billing run until nothing is left, it is paused,
/// or it is cancelled.
pub async fn execute(st: &AppState, cap: &CanWrite, id: &str, chunk: usize) -> CoreResult<()> {
    let org = cap.org();
    let r = sqlx::query("SELECT run_date, status FROM inv_runs WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    let date = Day::parse(&r.try_get::<String, _>(0)?).map_err(|m| CoreError::Internal(m.into()))?;
    let status: String = r.try_get(1)?;
    if status == "cancelling" || status == "cancelled" {
        set_status(&st.db, id, "cancelled", true).await?;
        return Ok(());
    }
    if !matches!(status.as_str(), "queued" | "running") {
        return Ok(());
    }
    set_status(&st.db, id, "running", false).await?;
    let series = {
        let mut conn = st.db.pool().acquire().await?;
        numbering::default_series(&mut conn, org, "invoice").await?
    };
    {
        let mut conn = st.db.pool().acquire().await?;
        if let Some(last) = documents::last_issue(&mut conn, org, &series).await? {
            if date.iso() < last {
                return Err(CoreError::validation(
                    "run_date",
                    &format!("Numbers follow dates: invoices were issued on {last} already."),
                ));
            }
        }
    }
    materialise_subscriptions(&st.db, org, date).await?;
    // Who has something billable: counted once for the progress bar.
    let customers: Vec<String> = sqlx::query(
        "SELECT DISTINCT customer_id FROM inv_pending_items WHERE org_id = $1 AND document_id IS NULL \
         AND (not_before IS NULL OR not_before <= $2) ORDER BY customer_id",
    )
    .bind(org.to_string())
    .bind(date.iso())
    .fetch_all(st.db.pool())
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    let (_, _, already) = run_status(&st.db, id).await?;
    sqlx::query("UPDATE inv_runs SET total = $1 WHERE id = $2")
        .bind(customers.len() as i64 + already)
        .bind(id)
        .execute(st.db.pool())
        .await?;
    let who = Who::system("invoicing: billing run");
    let org_row = shrooms_core::orgs::find_org(&st.db, &org.to_string()).await?.ok_or(CoreError::NotFound)?;
    let mut processed = already;
    for group in customers.chunks(chunk) {
        let (status, stop_after, _) = run_status(&st.db, id).await?;
        if status == "cancelling" {
            set_status(&st.db, id, "cancelled", true).await?;
            return Ok(());
        }
        let group: Vec<String> = match stop_after {
            Some(n) if processed >= n => {
                set_status(&st.db, id, "paused", true).await?;
                return Ok(());
            }
            Some(n) => group.iter().take((n - processed) as usize).cloned().collect(),
            None => group.to_vec(),
        };
        let made = bill_customers(st, &who, org, &org_row.slug, id, date, &series, &group).await?;
        processed += group.len() as i64;
        // The PDF (with its Factur-X XML) of each new invoice, kept as a file.
        store_pdfs(st, cap, &org_row, made).await?;
    }
    let (_, stop_after, _) = run_status(&st.db, id).await?;
    let paused = stop_after.is_some_and(|n| processed >= n) && processed < customers.len() as i64 + already;
    set_status(&st.db, id, if paused { "paused" } else { "done" }, true).await?;
    Ok(())
}

async fn set_status(db: &Db, id: &str, status: &str, finished: bool) -> CoreResult<()> {
    sqlx::query("UPDATE inv_runs SET status = $1, finished_at = $2 WHERE id = $3")
        .bind(status)
        .bind(finished.then(|| Timestamp::now().0))
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Bills a chunk of customers in one durable transaction: their invoices,
/// numbers, ledger entries (one batch) and items marked billed, the run's
/// progress. Returns the new invoices.
#[allow(clippy::too_many_arguments)]
async fn bill_customers(
    st: &AppState,
    who: &Who,
    org: OrgId,
    org_slug: &str,
    run_id: &str,
    date: Day,
    series: &str,
    group: &[String],
) -> CoreResult<Vec<documents::Document>> {
    let mut tx = st.db.begin_durable().await?;
    let params: Vec<String> = (0..group.len()).map(|i| format!("${}", i + 3)).collect();
    let sql = format!(
        "SELECT {ITEM_COLS} FROM inv_pending_items WHERE org_id = $1 AND document_id IS NULL \
         AND (not_before IS NULL OR not_before <= $2) AND customer_id IN ({}) ORDER BY customer_id, id",
        params.join(",")
    );
    let mut q = sqlx::query(&sql).bind(org.to_string()).bind(date.iso());
    for c in group {
        q = q.bind(c);
    }
    let items: Vec<PendingItem> = q.fetch_all(tx.conn()).await?.iter().map(item_from).collect::<Result<_, _>>()?;
    let billed = invoice_items(&mut tx, who, org, org_slug, Some(run_id), date, series, items, true).await?;
    let made = billed.made;
    sqlx::query(
        "UPDATE inv_runs SET done = done + $1, invoices = invoices + $2, carried_over = carried_over + $3, \
         failed = failed + $4, cursor = $5, error = COALESCE(error, $6) WHERE id = $7",
    )
    .bind(group.len() as i64)
    .bind(made.len() as i64)
    .bind(billed.carried)
    .bind(billed.failed)
    .bind(group.last())
    .bind((!billed.errors.is_empty()).then(|| billed.errors.join("; ")))
    .bind(run_id)
    .execute(tx.conn())
    .await?;
    tx.commit().await?;
    Ok(made)
}

/// What [`invoice_items`] made of a list of pending items.
pub struct Billed {
    /// The validated invoices, one per customer.
    pub made: Vec<documents::Document>,
    /// Customers below the organisation's minimum (when it applies).
    pub carried: i64,
    /// Customers held back by a missing legal field.
    pub failed: i64,
    /// The first few reasons of those held back.
    pub errors: Vec<String>,
}

/// Turns pending items into one validated invoice per customer, in the
/// caller's transaction: numbers, ledger entries (one batch), the items
/// marked billed, timeline and audit. `minimum`: whether customers below the
/// organisation's minimum wait (billing runs) or are billed anyway.
#[allow(clippy::too_many_arguments)]
pub async fn invoice_items(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    org_slug: &str,
    run_id: Option<&str>,
    date: Day,
    series: &str,
    items: Vec<PendingItem>,
    minimum: bool,
) -> CoreResult<Billed> {
    let ctx = documents::context(tx.conn(), org).await?;
    let mut by_customer: BTreeMap<String, Vec<PendingItem>> = BTreeMap::new();
    for it in items {
        by_customer.entry(it.customer_id.clone()).or_default().push(it);
    }
    let group: Vec<String> = by_customer.keys().cloned().collect();
    let product_types: BTreeMap<String, String> = {
        let rows = sqlx::query("SELECT id, product_type FROM inv_products WHERE org_id = $1")
            .bind(org.to_string())
            .fetch_all(tx.conn())
            .await?;
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<Result<_, sqlx::Error>>()?
    };
    let mut ready = Vec::new();
    let (mut carried, mut failed, mut errors) = (0i64, 0i64, Vec::new());
    let mut customers_by_id = BTreeMap::new();
    for chunk in group.chunks(500) {
        customers_by_id.extend(customers::customers_in(tx.conn(), org, chunk).await?);
    }
    for (customer_id, items) in by_customer {
        let Some(customer) = customers_by_id.remove(&customer_id) else { continue };
        let mut lines = Vec::new();
        for (i, it) in items.iter().enumerate() {
            lines.push(DocLine {
                position: i as i64 + 1,
                product_id: it.product_id.clone(),
                product_type: it
                    .product_id
                    .as_ref()
                    .and_then(|p| product_types.get(p).cloned())
                    .unwrap_or_else(|| "service".into()),
                name: it.name.clone(),
                description: String::new(),
                quantity_milli: it.quantity_milli,
                unit_code: it.unit_code.clone(),
                unit_price_cents: it.unit_price_cents,
                discount_bp: 0,
                net_cents: 0,
                vat_code: it.vat_code.clone(),
                vat_category: String::new(),
                vat_rate_bp: 0,
                exemption_reason: None,
                revenue_account: it.revenue_account.clone().unwrap_or_else(|| ctx.settings.revenue_account.clone()),
                period_start: it.period_start.clone(),
                period_end: it.period_end.clone(),
            });
        }
        let parts = Parts {
            id: uuid::Uuid::now_v7().to_string(),
            kind: "invoice".into(),
            series: series.to_string(),
            lines,
            due_date: None,
            origin_id: None,
        };
        match documents::freeze_parts(&ctx, parts, &customer, date) {
            Ok(f) if minimum && f.gross < ctx.settings.min_invoice_cents => carried += 1,
            Ok(f) => ready.push((customer, items, f)),
            Err(e) => {
                failed += 1;
                if errors.len() < 5 {
                    errors.push(format!(
                        "{}: {}",
                        customer.name,
                        e.iter().map(|f| format!("{} ({})", f.field, f.message)).collect::<Vec<_>>().join(", ")
                    ));
                }
            }
        }
    }
    let mut made = Vec::new();
    if !ready.is_empty() {
        let (first, prefix) = numbering::take_numbers(tx.conn(), org, series, ready.len() as i64).await?;
        let mut entries = Vec::new();
        let mut issued = Vec::new();
        let mut terms_of: BTreeMap<String, i64> = BTreeMap::new();
        let now = Timestamp::now().0;
        for (k, (customer, items, f)) in ready.into_iter().enumerate() {
            let seq = first + k as i64;
            let number = numbering::format_number(&prefix, ctx.settings.number_with_year, date, seq);
            let f = documents::Frozen { id: uuid::Uuid::now_v7().to_string(), ..f };
            terms_of.insert(f.id.clone(), f.payment_terms_days);
            if f.gross != 0 {
                entries.push((f.id.clone(), posting::entry_for(&ctx, &f, &number, None)));
            }
            let starts = items.iter().filter_map(|i| i.period_start.clone()).min();
            let ends = items.iter().filter_map(|i| i.period_end.clone()).max();
            let source = items.first().map(|i| i.source_module.clone()).unwrap_or_else(|| "invoicing".into());
            let doc = documents::issued_invoice(
                &f,
                seq,
                &number,
                &customer,
                &ctx.settings.currency,
                category(&f.lines),
                (starts, ends),
                &source,
                now,
            );
            issued.push((doc, items));
        }
        let posted = shrooms_accounting::service::post_entries(
            tx,
            who,
            org,
            MODULE,
            entries.iter().map(|(_, e)| e.clone()).collect(),
            true,
        )
        .await
        .map_err(documents::ledger_fields)?;
        let entry_of: BTreeMap<&str, &str> =
            entries.iter().zip(posted.iter()).map(|((d, _), p)| (d.as_str(), p.id.as_str())).collect();
        for (doc, _) in issued.iter_mut() {
            doc.ledger_entry_id = entry_of.get(doc.id.as_str()).map(|e| e.to_string());
        }
        let docs: Vec<&documents::Document> = issued.iter().map(|(d, _)| d).collect();
        let terms: Vec<i64> = issued.iter().map(|(d, _)| terms_of.get(d.id.as_str()).copied().unwrap_or(0)).collect();
        documents::insert_issued(tx.conn(), org, run_id, &docs, &terms, now).await?;
        // Each item marked with its invoice, by multi-row updates.
        let marks: Vec<(&str, &str)> =
            issued.iter().flat_map(|(d, items)| items.iter().map(move |i| (i.id.as_str(), d.id.as_str()))).collect();
        for chunk in marks.chunks(200) {
            let cases: Vec<String> =
                (0..chunk.len()).map(|i| format!("WHEN ${} THEN ${}", 2 + i * 2, 3 + i * 2)).collect();
            let ids: Vec<String> = (0..chunk.len()).map(|i| format!("${}", 2 + i * 2)).collect();
            let sql = format!(
                "UPDATE inv_pending_items SET document_id = CASE id {} END WHERE org_id = $1 AND id IN ({})",
                cases.join(" "),
                ids.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(org.to_string());
            for (item, doc) in chunk {
                q = q.bind(*item).bind(*doc);
            }
            q.execute(tx.conn()).await?;
        }
        let events: Vec<_> = issued
            .iter()
            .map(|(doc, _)| {
                let number = doc.number.as_deref().unwrap_or("");
                let rr = documents::record_ref_of(org_slug, &doc.id, "invoice", Some(number));
                let text = match run_id {
                    Some(_) => format!("Issued as {number} by the billing run of {date}."),
                    None => format!("Issued as {number} for {}.", doc.source_module.as_deref().unwrap_or("invoicing")),
                };
                (rr, text, serde_json::json!({"run_id": run_id}))
            })
            .collect();
        shrooms_core::timeline::events_many(tx, who, org, &events).await?;
        let invoices =
            issued.iter().map(|(d, _)| serde_json::json!([d.id, d.number, d.gross_cents])).collect::<Vec<_>>();
        match run_id {
            Some(run_id) => {
                audited(
                    tx,
                    who,
                    org,
                    "invoicing.run.invoices",
                    "inv_run",
                    run_id,
                    None,
                    Some(serde_json::json!({ "invoices": invoices })),
                )
                .await?
            }
            None => {
                // One entry per invoice, appended together (one chain lock,
                // one multi-row insert): a renewal run invoices thousands.
                let changes = issued
                    .iter()
                    .map(|(d, _)| shrooms_core::audit::Change {
                        org: Some(org),
                        action: "invoicing.pending.invoice",
                        entity_type: ENTITY,
                        entity_id: d.id.clone(),
                        before: None,
                        after: Some(serde_json::json!({"number": d.number, "gross_cents": d.gross_cents})),
                    })
                    .collect();
                shrooms_core::audit::record_many(tx, who, changes).await?;
            }
        }
        made = issued.into_iter().map(|(d, _)| d).collect();
    }
    Ok(Billed { made, carried, failed, errors })
}

/// Invoices the given pending items now, in the caller's transaction (a
/// module that bills at once: members' dues): one validated invoice per
/// customer, dated `date`, in the default invoice series, whatever the
/// organisation's minimum. A missing legal field refuses the whole with a
/// 409 naming it; items already billed are skipped. The PDFs follow by the
/// documents' PDF job.
pub async fn invoice_now(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    org_slug: &str,
    item_ids: &[String],
    date: Day,
) -> CoreResult<Vec<documents::Document>> {
    let mut items = Vec::new();
    for chunk in item_ids.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {ITEM_COLS} FROM inv_pending_items WHERE org_id = $1 AND document_id IS NULL AND id IN ({}) \
             ORDER BY customer_id, id",
            params.join(",")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(tx.conn()).await? {
            items.push(item_from(&r)?);
        }
    }
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let series = numbering::default_series(tx.conn(), org, "invoice").await?;
    if let Some(last) = documents::last_issue(tx.conn(), org, &series).await? {
        if date.iso() < last {
            return Err(CoreError::Conflict {
                field: None,
                message: format!("Numbers follow dates: invoices were issued on {last} already."),
            });
        }
    }
    let billed = invoice_items(tx, who, org, org_slug, None, date, &series, items, false).await?;
    if billed.failed > 0 {
        return Err(CoreError::Conflict {
            field: None,
            message: format!("The invoice cannot be issued: {}", billed.errors.join("; ")),
        });
    }
    // The PDFs' jobs (as `documents_files::request_pdf` queues one), by multi-row inserts.
    let pdfs: Vec<(serde_json::Value, Option<String>)> = billed
        .made
        .iter()
        .map(|d| (serde_json::json!({"document_id": d.id}), Some(format!("invoicing.pdf:{}", d.id))))
        .collect();
    jobs::enqueue_many(tx, &crate::documents_files::PDF_JOB, Some(org), &pdfs, 0).await?;
    Ok(billed.made)
}

fn category(lines: &[DocLine]) -> &'static str {
    let goods = lines.iter().filter(|l| l.product_type == "goods").count();
    match goods {
        0 => "services",
        n if n == lines.len() => "goods",
        _ => "mixed",
    }
}

/// Renders and keeps the PDF (and so the Factur-X XML inside it) of each
/// invoice. Rendering is CPU work spread over the blocking threads; storing
/// a file waits for the disk (each blob is synced), so several are stored at
/// once.
async fn store_pdfs(
    st: &AppState,
    cap: &CanWrite,
    org: &shrooms_core::orgs::Org,
    docs: Vec<documents::Document>,
) -> CoreResult<()> {
    const AT_ONCE: usize = 8;
    let mut renders = tokio::task::JoinSet::new();
    for d in docs {
        let org = org.clone();
        renders.spawn_blocking(move || {
            let r = crate::render::render_document(&d, &org, crate::render::Format::Pdf);
            (d.id, r)
        });
    }
    let mut stores = tokio::task::JoinSet::new();
    while let Some(done) = renders.join_next().await {
        let (id, r) = done.map_err(|e| CoreError::Internal(format!("PDF task: {e}")))?;
        let (name, bytes) = r?;
        while stores.len() >= AT_ONCE {
            if let Some(res) = stores.join_next().await {
                res.map_err(|e| CoreError::Internal(format!("storing a PDF: {e}")))??;
            }
        }
        let (st, cap) = (st.clone(), cap.clone());
        stores.spawn(async move { store_pdf(&st, &cap, &id, name, bytes).await });
    }
    while let Some(res) = stores.join_next().await {
        res.map_err(|e| CoreError::Internal(format!("storing a PDF: {e}")))??;
    }
    Ok(())
}

async fn store_pdf(st: &AppState, cap: &CanWrite, id: &str, name: String, bytes: Vec<u8>) -> CoreResult<()> {
    let who = Who::system("invoicing: billing run");
    let file = shrooms_core::files::store(
        st,
        &who,
        cap,
        &shrooms_core::files::Owner::new(ENTITY, id),
        shrooms_core::files::Upload { name, bytes, public: false },
    )
    .await?;
    sqlx::query("UPDATE inv_documents SET pdf_file_id = $1 WHERE org_id = $2 AND id = $3 AND pdf_file_id IS NULL")
        .bind(&file.id)
        .bind(cap.org().to_string())
        .bind(id)
        .execute(st.db.pool())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anniversary_periods_do_not_drift() {
        let anchor = Day::parse("2026-01-31").unwrap();
        let p = |n| {
            let (s, e) = period(anchor, 1, n);
            (s.iso(), e.iso())
        };
        assert_eq!(p(0), ("2026-01-31".into(), "2026-02-27".into()));
        assert_eq!(p(1), ("2026-02-28".into(), "2026-03-30".into()));
        assert_eq!(p(2), ("2026-03-31".into(), "2026-04-29".into()));
        let (s, e) = period(Day::parse("2025-03-15").unwrap(), 12, 1);
        assert_eq!((s.iso(), e.iso()), ("2026-03-15".into(), "2027-03-14".into()));
    }
}
