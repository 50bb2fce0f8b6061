//! Dues through invoices: with the organisation's `dues_path = invoice`, a
//! join or renewal hands the period's fee to the invoicing module as a
//! pending item (`shrooms_invoicing::billing::bill_later`) and has it
//! invoiced at once (`invoice_now`: number, ledger entry receivable vs dues
//! account), in the same transaction as the period. The period keeps the
//! invoice's id; its dues count as paid once the invoice is paid (by hand in
//! invoicing, or online through its payment providers). Members never posts
//! the payment itself: invoicing does.
//!
//! The member's customer record is the one linked to the core person
//! (`inv_customers.person_id`), made on first use.

use crate::error::{MemError, MemResult};
use crate::service::{self, DuesPath, Period};
use serde::Serialize;
use shrooms_accounting::domain::Day;
use shrooms_core::audit::Who;
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::CoreError;
use shrooms_core::ids::OrgId;
use shrooms_core::web::AppState;
use sqlx::Row;
use std::collections::HashMap;
use utoipa::ToSchema;

/// The invoicing module's id.
pub const INVOICING: &str = "invoicing";
/// The VAT code of dues lines: dues without a counterpart are outside VAT;
/// the invoicing module's exempt code carries the mention.
const DUES_VAT_CODE: &str = "E";

pub const INVOICING_OFF: &str = "Dues as invoices need the invoicing module, which is not enabled for this \
organisation: enable it (Administration → Modules) or keep simple receipts.";

/// Whether the invoicing module is on for the organisation. The core's rule
/// (`instance::module_enabled`) for a module enabled by default: on unless
/// switched off for the instance or the organisation.
pub async fn invoicing_on(db: &Db, org: OrgId) -> MemResult<bool> {
    let rows =
        sqlx::query("SELECT scope, enabled FROM module_settings WHERE module = $1 AND scope IN ('instance', $2)")
            .bind(INVOICING)
            .bind(format!("org:{org}"))
            .fetch_all(db.pool())
            .await?;
    for r in &rows {
        if r.try_get::<i64, _>(1)? == 0 {
            return Ok(false);
        }
    }
    // The module must also be part of this build (its tables exist).
    let table = sqlx::query("SELECT 1 FROM inv_settings WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_optional(db.pool())
        .await;
    Ok(table.is_ok())
}

/// Refuses the invoice path when invoicing is off (409 on `dues_path`).
pub async fn check_available(db: &Db, org: OrgId) -> MemResult<()> {
    if invoicing_on(db, org).await? {
        Ok(())
    } else {
        Err(MemError::Unavailable(INVOICING_OFF.into()))
    }
}

/// Before a write that may bill dues (outside its transaction): with the
/// invoice path, checks that invoicing is on and that its settings exist.
pub async fn prepare(db: &Db, org: OrgId) -> MemResult<()> {
    if service::settings(db, org).await?.dues_path != DuesPath::Invoice {
        return Ok(());
    }
    check_available(db, org).await?;
    let o = shrooms_core::orgs::find_org(db, &org.to_string()).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    shrooms_invoicing::catalogue::ensure_setup(db, org, &o.name, &o.currency).await?;
    Ok(())
}

struct ToBill {
    period: String,
    person: String,
    type_name: String,
    starts_on: String,
    ends_on: Option<String>,
    fee: i64,
}

/// With the invoice path, invoices the dues of these periods now, in the
/// caller's transaction: a pending item each, one validated invoice per
/// member, the periods marked with their invoice. Periods that cost nothing
/// or are already invoiced are skipped. Does nothing with the receipt path.
pub async fn invoice_periods(
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    period_ids: &[String],
) -> MemResult<HashMap<String, (String, i64)>> {
    let s = service::settings_in(tx.conn(), org).await?;
    if s.dues_path != DuesPath::Invoice || period_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let mut todo = Vec::new();
    for chunk in period_ids.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT p.id, p.person_id, t.name, p.starts_on, p.ends_on, p.fee_cents FROM mem_periods p \
             JOIN mem_types t ON t.id = p.type_id WHERE p.org_id = $1 AND p.invoice_id IS NULL AND p.fee_cents > 0 \
             AND p.id IN ({})",
            params.join(",")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(tx.conn()).await? {
            todo.push(ToBill {
                period: r.try_get(0)?,
                person: r.try_get(1)?,
                type_name: r.try_get(2)?,
                starts_on: r.try_get(3)?,
                ends_on: r.try_get(4)?,
                fee: r.try_get(5)?,
            });
        }
    }
    if todo.is_empty() {
        return Ok(HashMap::new());
    }
    let persons: Vec<String> = todo.iter().map(|t| t.person.clone()).collect();
    let customers = customers_for(tx, org, &persons).await?;
    let mut items = Vec::with_capacity(todo.len());
    for t in &todo {
        let name = match &t.ends_on {
            Some(e) => format!("Cotisation {} du {} au {}", t.type_name, t.starts_on, e),
            None => format!("Cotisation {} à partir du {}", t.type_name, t.starts_on),
        };
        items.push(shrooms_invoicing::billing::NewPendingItem {
            customer_id: customers[&t.person].clone(),
            source_module: service::MODULE.into(),
            source_ref: format!("period:{}", t.period),
            product_id: None,
            name: Some(name),
            quantity_milli: Some(1000),
            unit_code: None,
            unit_price_cents: Some(t.fee),
            vat_code: Some(DUES_VAT_CODE.into()),
            revenue_account: Some(s.dues_account.clone()),
            period_start: Some(t.starts_on.clone()),
            period_end: t.ends_on.clone(),
            overage: false,
        });
    }
    let items: Vec<String> = shrooms_invoicing::billing::bill_later_many(tx, org, items)
        .await
        .map_err(dues_fields)?
        .into_iter()
        .map(|i| i.id)
        .collect();
    let slug: String = sqlx::query("SELECT slug FROM orgs WHERE id = $1")
        .bind(org.to_string())
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?;
    let made = shrooms_invoicing::billing::invoice_now(tx, who, org, &slug, &items, Day::today()).await?;
    // One invoice per customer: each period's is its member's customer's.
    let by_customer: HashMap<&str, (String, i64)> =
        made.iter().map(|d| (d.customer_id.as_str(), (d.number.clone().unwrap_or_default(), d.gross_cents))).collect();
    let invoices: HashMap<String, (String, i64)> = todo
        .iter()
        .filter_map(|t| by_customer.get(customers[&t.person].as_str()).map(|i| (t.period.clone(), i.clone())))
        .collect();
    for chunk in todo.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE mem_periods SET invoice_id = (SELECT i.document_id FROM inv_pending_items i \
             WHERE i.org_id = mem_periods.org_id AND i.source_module = $2 AND i.source_ref = 'period:' || mem_periods.id) \
             WHERE org_id = $1 AND id IN ({})",
            params.join(",")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string()).bind(service::MODULE);
        for t in chunk {
            q = q.bind(&t.period);
        }
        q.execute(tx.conn()).await?;
    }
    Ok(invoices)
}

/// Field errors of a pending item concern the organisation's accounts.
fn dues_fields(e: CoreError) -> MemError {
    match e {
        CoreError::Validation(v) => MemError::Precondition(
            v.first().map(|f| format!("dues_account ({})", f.field)).unwrap_or_default(),
            v.iter().map(|f| f.message.clone()).collect::<Vec<_>>().join(" "),
        ),
        e => MemError::Core(e),
    }
}

/// The invoicing customer of each person, made from the core person (name,
/// e-mail) and the member's address when there is none yet.
async fn customers_for(tx: &mut Tx, org: OrgId, persons: &[String]) -> MemResult<HashMap<String, String>> {
    let mut out = HashMap::new();
    for chunk in persons.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT person_id, id FROM inv_customers WHERE org_id = $1 AND archived = 0 AND person_id IN ({}) ORDER BY id",
            params.join(",")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for p in chunk {
            q = q.bind(p);
        }
        for r in q.fetch_all(tx.conn()).await? {
            out.entry(r.try_get::<String, _>(0)?).or_insert(r.try_get::<String, _>(1)?);
        }
    }
    // The others get one, made from the member's data, by multi-row inserts.
    let mut seen = std::collections::HashSet::new();
    let missing: Vec<&str> =
        persons.iter().map(String::as_str).filter(|p| !out.contains_key(*p) && seen.insert(*p)).collect();
    if missing.is_empty() {
        return Ok(out);
    }
    let members = service::people_in(tx, org, &missing).await?;
    let mut made_for = Vec::with_capacity(missing.len());
    let mut inputs = Vec::with_capacity(missing.len());
    for p in missing {
        let m = members.get(p).ok_or(MemError::Core(CoreError::NotFound))?;
        made_for.push(m);
        inputs.push(shrooms_invoicing::customers::CustomerInput {
            person_id: Some(p.to_string()),
            kind: Some("individual".into()),
            name: service::display_name(m),
            email: m.email.clone(),
            address: Some(m.address.street.clone()).filter(|s| !s.is_empty()),
            postcode: Some(m.address.postcode.clone()).filter(|s| !s.is_empty()),
            city: Some(m.address.city.clone()).filter(|s| !s.is_empty()),
            country: Some(m.address.country.clone()).filter(|s| !s.is_empty()),
            ..Default::default()
        });
    }
    let made = shrooms_invoicing::customers::insert_many(tx, org, inputs).await?;
    for (m, c) in made_for.into_iter().zip(made) {
        match c {
            Ok(c) => {
                out.insert(m.id.clone(), c.id);
            }
            Err(v) => {
                return Err(MemError::Precondition(
                    "person_id".into(),
                    format!(
                        "The invoicing customer of {} cannot be made: {}",
                        service::display_name(m),
                        v.iter().map(|f| format!("{} ({})", f.field, f.message)).collect::<Vec<_>>().join(", ")
                    ),
                ))
            }
        }
    }
    Ok(out)
}

/// Counts invoiced periods as paid by their invoice: fully once it is paid,
/// else what was paid on it. Only reads the invoices when some period has one.
pub async fn settle_periods(conn: &mut sqlx::AnyConnection, org: OrgId, periods: &mut [Period]) -> MemResult<()> {
    let ids: Vec<String> = periods.iter().filter_map(|p| p.invoice_id.clone()).collect();
    let states = invoice_states(conn, org, &ids).await?;
    for p in periods.iter_mut() {
        if let Some(state) = p.invoice_id.as_ref().and_then(|i| states.get(i)) {
            p.paid_cents = paid_with_invoice(p.fee_cents, p.paid_cents, state);
        }
    }
    Ok(())
}

/// What a period counts as paid, given what receipts paid and its invoice's
/// (status, paid cents): the whole fee once the invoice is paid.
pub fn paid_with_invoice(fee_cents: i64, paid_cents: i64, (status, cents): &(String, i64)) -> i64 {
    let on_invoice = if status == "paid" { fee_cents } else { (*cents).min(fee_cents) };
    (paid_cents + on_invoice).min(fee_cents.max(paid_cents))
}

/// The status and paid amount of the given invoices (none read when `ids` is empty).
pub async fn invoice_states(
    conn: &mut sqlx::AnyConnection,
    org: OrgId,
    ids: &[String],
) -> MemResult<HashMap<String, (String, i64)>> {
    let mut out: HashMap<String, (String, i64)> = HashMap::new();
    for chunk in ids.chunks(500) {
        let params: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT id, status, paid_cents FROM inv_documents WHERE org_id = $1 AND id IN ({})",
            params.join(",")
        );
        let mut q = sqlx::query(&sql).bind(org.to_string());
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?));
        }
    }
    Ok(out)
}

/// The public "pay online" page of a period's dues invoice, when something
/// is left to pay on it and online payment is set up (`None` otherwise, and
/// always with the receipt path).
pub async fn pay_path_of_period(db: &Db, org: &shrooms_core::orgs::Org, period: &str) -> MemResult<Option<String>> {
    let invoice: Option<String> =
        sqlx::query_scalar("SELECT invoice_id FROM mem_periods WHERE org_id = $1 AND id = $2")
            .bind(org.id.to_string())
            .bind(period)
            .fetch_optional(db.pool())
            .await?
            .flatten();
    // (Invoicing's tables are read only when the period was invoiced.)
    let Some(invoice) = invoice else { return Ok(None) };
    let row = sqlx::query(
        "SELECT id, status, gross_cents - paid_cents - credited_cents FROM inv_documents WHERE org_id = $1 AND id = $2",
    )
    .bind(org.id.to_string())
    .bind(&invoice)
    .fetch_optional(db.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let (invoice, status, due): (String, String, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
    if due <= 0 || matches!(status.as_str(), "paid" | "cancelled" | "draft") {
        return Ok(None);
    }
    let mut tx = db.begin().await?;
    if !shrooms_invoicing::providers::online_enabled(tx.conn(), org.id).await? {
        return Ok(None);
    }
    let token = shrooms_invoicing::providers::pay_link_in(&mut tx, org.id, &invoice).await?;
    tx.commit().await?;
    Ok(Some(shrooms_invoicing::providers::pay_path(&org.slug, &token)))
}

/// A dues invoice as the member's page and API show it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DuesInvoice {
    pub period_id: String,
    pub type_name: String,
    pub starts_on: String,
    pub ends_on: Option<String>,
    pub invoice_id: String,
    pub number: Option<String>,
    /// The invoice's status: validated, sent, partially_paid, paid, cancelled.
    pub status: String,
    pub gross_cents: i64,
    /// What is still to pay on it.
    pub due_cents: i64,
    pub issue_date: Option<String>,
    /// The invoice in the invoicing module (for the organisation's users).
    pub url: String,
    /// The public "pay online" page, when something is due and online payment is set up.
    pub pay_path: Option<String>,
}

/// The dues invoices of a member, newest first. With `pay_links`, makes the
/// invoicing module's public pay link of each unpaid one (when online
/// payment is set up).
pub async fn invoices_of(
    st: &AppState,
    org: OrgId,
    org_slug: &str,
    person: &str,
    pay_links: bool,
) -> MemResult<Vec<DuesInvoice>> {
    let rows = sqlx::query(
        "SELECT p.id, t.name, p.starts_on, p.ends_on, d.id, d.number, d.status, d.gross_cents, \
         d.gross_cents - d.paid_cents - d.credited_cents, d.issue_date \
         FROM mem_periods p JOIN mem_types t ON t.id = p.type_id \
         JOIN inv_documents d ON d.org_id = p.org_id AND d.id = p.invoice_id \
         WHERE p.org_id = $1 AND p.person_id = $2 ORDER BY p.starts_on DESC",
    )
    .bind(org.to_string())
    .bind(person)
    .fetch_all(st.db.pool())
    .await?;
    let online = if pay_links && !rows.is_empty() {
        let mut conn = st.db.pool().acquire().await?;
        shrooms_invoicing::providers::online_enabled(&mut conn, org).await?
    } else {
        false
    };
    let mut out = Vec::new();
    for r in &rows {
        let invoice_id: String = r.try_get(4)?;
        let status: String = r.try_get(6)?;
        let due: i64 = r.try_get::<i64, _>(8)?.max(0);
        let open = due > 0 && !matches!(status.as_str(), "paid" | "cancelled" | "draft");
        let pay_path = if online && open {
            let token = shrooms_invoicing::providers::pay_link(st, org, &invoice_id).await?;
            Some(shrooms_invoicing::providers::pay_path(org_slug, &token))
        } else {
            None
        };
        out.push(DuesInvoice {
            period_id: r.try_get(0)?,
            type_name: r.try_get(1)?,
            starts_on: r.try_get(2)?,
            ends_on: r.try_get(3)?,
            url: format!("/o/{org_slug}/invoicing/documents/{invoice_id}"),
            invoice_id,
            number: r.try_get(5)?,
            status,
            gross_cents: r.try_get(7)?,
            due_cents: due,
            issue_date: r.try_get(9)?,
            pay_path,
        });
    }
    Ok(out)
}

/// Queued by the invoicing module (in the settling transaction) when a dues
/// invoice changes status: the members it billed get their directory row
/// recomputed, so the list and searches follow payments made in invoicing.
pub const INVOICE_SETTLED: shrooms_core::jobs::JobSpec = shrooms_core::jobs::JobSpec {
    name: "members.invoice_settled",
    max_attempts: 5,
    backoff_secs: 10,
    timeout_secs: 60,
    run: run_invoice_settled,
};

fn run_invoice_settled(st: AppState, ctx: shrooms_core::jobs::JobCtx) -> shrooms_core::jobs::JobFuture {
    Box::pin(async move {
        let org = ctx.org.ok_or_else(|| anyhow::anyhow!("an invoice belongs to an organisation"))?;
        let doc = ctx.payload["document_id"].as_str().unwrap_or_default().to_string();
        let mut tx = st.db.begin().await?;
        let people: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT person_id FROM mem_periods WHERE org_id = $1 AND invoice_id = $2")
                .bind(org.to_string())
                .bind(&doc)
                .fetch_all(tx.conn())
                .await?;
        crate::directory::refresh_many(&mut tx, org, people)
            .await
            .map_err(|e| anyhow::anyhow!("{}", CoreError::from(e)))?;
        tx.commit().await?;
        Ok(())
    })
}
