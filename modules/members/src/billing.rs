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
use shrooms_core::error::{CoreError, FieldError};
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
                ));
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

// ---------- payments of dues invoices typed on the members pages ----------

/// A payment of a member's dues invoice, typed by the treasurer on the
/// member's page or the Dues page (dues path *invoice*). Invoicing records
/// it (allocation, ledger entry bank or cash vs receivable, the invoice's
/// status); members checks it against the member's dues invoices first.
#[derive(Clone, Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvoicePaymentInput {
    pub person_id: String,
    /// The membership period whose invoice it pays; by default the member's
    /// oldest dues invoice with something left to pay.
    pub period_id: Option<String>,
    /// In cents; by default what is left to pay on the invoice.
    pub amount_cents: Option<i64>,
    /// `cash`, `cheque`, `transfer` or `card` (direct debits go through
    /// SEPA batches, online payments through the pay page).
    #[schema(example = "cheque")]
    pub method: String,
    /// `YYYY-MM-DD`; today when left out. Not in the future.
    pub paid_on: Option<String>,
    /// The cheque's number (required for a cheque).
    pub cheque_number: Option<String>,
    /// The transfer's or card slip's reference.
    pub reference: Option<String>,
    /// Sent again with the same key, the request returns the payment
    /// already recorded instead of recording it twice.
    pub request_key: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InvoicePayment {
    /// The payment in the invoicing module.
    pub payment_id: String,
    pub person_id: String,
    pub period_id: String,
    pub invoice_id: String,
    pub number: Option<String>,
    pub amount_cents: i64,
    pub method: String,
    pub paid_on: String,
    /// What is left to pay on the invoice now.
    pub left_cents: i64,
}

/// One checked payment, before invoicing records it.
struct CheckedPayment {
    person: service::MemberPerson,
    period_id: String,
    invoice_id: String,
    number: Option<String>,
    customer_id: String,
    amount: i64,
    left_after: i64,
    method: String,
    paid_on: String,
    cheque_number: Option<String>,
    reference: Option<String>,
    key: Option<String>,
}

const METHODS: &[&str] = &["cash", "cheque", "transfer", "card"];

/// A member's dues invoice a payment is for.
struct ToPay {
    period_id: String,
    invoice_id: String,
    number: Option<String>,
    customer_id: String,
    /// What is left to pay on it.
    due: i64,
    status: String,
}

/// The dues invoice a payment is for: the period's, or the member's oldest
/// one with something left to pay.
async fn invoice_to_pay(tx: &mut Tx, org: OrgId, person: &str, period: Option<&str>) -> MemResult<Option<ToPay>> {
    let filter = match period {
        Some(_) => "AND p.id = $3",
        None => "AND d.status NOT IN ('draft', 'cancelled') AND d.gross_cents - d.paid_cents - d.credited_cents > 0",
    };
    let q = format!(
        "SELECT p.id, d.id, d.number, d.customer_id, d.gross_cents - d.paid_cents - d.credited_cents, d.status \
         FROM mem_periods p JOIN inv_documents d ON d.org_id = p.org_id AND d.id = p.invoice_id \
         WHERE p.org_id = $1 AND p.person_id = $2 {filter} ORDER BY p.starts_on, p.id LIMIT 1"
    );
    let mut q = sqlx::query(&q).bind(org.to_string()).bind(person);
    if let Some(p) = period {
        q = q.bind(p);
    }
    let Some(r) = q.fetch_optional(tx.conn()).await? else { return Ok(None) };
    Ok(Some(ToPay {
        period_id: r.try_get(0)?,
        invoice_id: r.try_get(1)?,
        number: r.try_get(2)?,
        customer_id: r.try_get(3)?,
        due: r.try_get(4)?,
        status: r.try_get(5)?,
    }))
}

/// The payment a request key already recorded, as first answered.
async fn payment_by_key(tx: &mut Tx, org: OrgId, key: &str) -> MemResult<Option<InvoicePayment>> {
    let r = sqlx::query(
        "SELECT k.payment_id, k.person_id, k.period_id, k.invoice_id, d.number, y.amount_cents, y.method, y.received_date, \
         d.gross_cents - d.paid_cents - d.credited_cents \
         FROM mem_invoice_payments k JOIN inv_payments y ON y.org_id = k.org_id AND y.id = k.payment_id \
         JOIN inv_documents d ON d.org_id = k.org_id AND d.id = k.invoice_id \
         WHERE k.org_id = $1 AND k.request_key = $2",
    )
    .bind(org.to_string())
    .bind(key)
    .fetch_optional(tx.conn())
    .await?;
    let Some(r) = r else { return Ok(None) };
    Ok(Some(InvoicePayment {
        payment_id: r.try_get(0)?,
        person_id: r.try_get(1)?,
        period_id: r.try_get(2)?,
        invoice_id: r.try_get(3)?,
        number: r.try_get(4)?,
        amount_cents: r.try_get(5)?,
        method: r.try_get(6)?,
        paid_on: r.try_get(7)?,
        left_cents: r.try_get::<i64, _>(8)?.max(0),
    }))
}

/// Records payments of dues invoices typed on the members pages: every one
/// or none, errors naming the item (`items[2].amount_cents`) when there are
/// several. A request key sent again answers the payment it recorded
/// (`created` false) when there is one item, an error in a batch. Needs the
/// invoice dues path; with receipts, dues are recorded as receipts.
pub async fn record_invoice_payments(
    st: &AppState,
    who: &Who,
    cap: &shrooms_core::permissions::CanWrite,
    zone: &str,
    items: Vec<InvoicePaymentInput>,
) -> MemResult<(Vec<InvoicePayment>, bool)> {
    service::check_bulk_size(items.len(), "items")?;
    let org = cap.org();
    let s = service::settings(&st.db, org).await?;
    if s.dues_path != DuesPath::Invoice {
        return Err(MemError::Precondition(
            "dues_path".into(),
            "Dues are recorded as receipts here (the settings' dues path): record the due instead.".into(),
        ));
    }
    let today = service::today(zone);
    let single = items.len() == 1;
    let mut tx = st.db.begin_durable().await?;
    let mut people: Vec<&str> = items.iter().map(|i| i.person_id.trim()).collect();
    people.sort_unstable();
    people.dedup();
    let found = service::people_in(&mut tx, org, &people).await?;
    // Two payments of one invoice sent at once must not both pass the check
    // of what is left (people of the organisation only: the lock rows
    // reference them).
    let known: Vec<&str> = people.iter().copied().filter(|p| found.contains_key(*p)).collect();
    service::lock_members(&mut tx, org, &known).await?;
    let mut errors = Vec::new();
    let mut ok: Vec<CheckedPayment> = Vec::new();
    let mut pending: HashMap<String, i64> = HashMap::new();
    let mut keys = std::collections::HashSet::new();
    for (i, item) in items.iter().enumerate() {
        let f = |n: &str| if single { n.to_string() } else { format!("items[{i}].{n}") };
        let before = errors.len();
        let key = service::check_key(&item.request_key, &f("request_key"), &mut errors);
        if let Some(k) = &key {
            if let Some(done) = payment_by_key(&mut tx, org, k).await? {
                if single {
                    return Ok((vec![done], false));
                }
                errors.push(FieldError::new(f("request_key"), "This payment was already recorded."));
                continue;
            }
            if !keys.insert(k.clone()) {
                errors.push(FieldError::new(f("request_key"), "This payment was already recorded."));
                continue;
            }
        }
        let method = item.method.trim().to_string();
        if !METHODS.contains(&method.as_str()) {
            errors.push(FieldError::new(
                f("method"),
                "Choose cash, cheque, transfer or card (direct debits go through SEPA batches).",
            ));
        }
        let trimmed = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from);
        let (cheque_number, reference) = (trimmed(&item.cheque_number), trimmed(&item.reference));
        if method == "cheque" && cheque_number.is_none() {
            errors.push(FieldError::new(f("cheque_number"), "Write the cheque's number."));
        }
        let paid_on = match item.paid_on.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            Some(d) => match crate::domain::parse_date(&f("paid_on"), d) {
                Ok(d) if d > today => {
                    errors.push(FieldError::new(f("paid_on"), "A payment cannot be dated in the future."));
                    None
                }
                Ok(d) => Some(d),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            None => Some(today),
        };
        let Some(person) = found.get(item.person_id.trim()).cloned() else {
            errors.push(FieldError::new(f("person_id"), "No such person in this organisation."));
            continue;
        };
        let period = trimmed(&item.period_id);
        let Some(ToPay { period_id, invoice_id, number, customer_id, due, status }) =
            invoice_to_pay(&mut tx, org, &person.id, period.as_deref()).await?
        else {
            errors.push(match period {
                Some(_) => FieldError::new(f("period_id"), "No invoiced membership period of this person has this id."),
                None => FieldError::new(f("person_id"), "This member has no dues invoice left to pay."),
            });
            continue;
        };
        let n = number.clone().unwrap_or_default();
        let left = due - pending.get(&invoice_id).copied().unwrap_or(0);
        if matches!(status.as_str(), "draft" | "cancelled") || left <= 0 {
            errors.push(FieldError::new(f("period_id"), format!("Nothing is left to pay on invoice {n}.")));
            continue;
        }
        let amount = item.amount_cents.unwrap_or(left);
        if amount <= 0 {
            errors.push(FieldError::new(f("amount_cents"), "The amount must be more than zero."));
        } else if amount > left {
            errors.push(FieldError::new(
                f("amount_cents"),
                format!("Only {} is left to pay on invoice {n}.", crate::domain::cents_text(left)),
            ));
        }
        if errors.len() > before {
            continue;
        }
        *pending.entry(invoice_id.clone()).or_default() += amount;
        ok.push(CheckedPayment {
            person,
            period_id,
            invoice_id,
            number,
            customer_id,
            amount,
            left_after: left - amount,
            method,
            paid_on: paid_on.map(|d| d.to_string()).unwrap_or_default(),
            cheque_number,
            reference,
            key,
        });
    }
    MemError::check(errors)?;
    let mut out = Vec::with_capacity(ok.len());
    let now = shrooms_core::ids::Timestamp::now().0;
    for p in ok {
        let payment_id = shrooms_invoicing::payments::record_typed_in(
            st,
            &mut tx,
            who,
            org,
            shrooms_invoicing::payments::PaymentInput {
                customer_id: p.customer_id.clone(),
                method: p.method.clone(),
                amount_cents: p.amount,
                received_date: Some(p.paid_on.clone()),
                payer: Some(service::display_name(&p.person)),
                cheque_number: p.cheque_number.clone(),
                reference: p.reference.clone(),
                allocations: Some(vec![shrooms_invoicing::payments::AllocationInput {
                    invoice_id: p.invoice_id.clone(),
                    amount_cents: p.amount,
                }]),
                ..Default::default()
            },
        )
        .await?;
        if let Some(k) = &p.key {
            sqlx::query(
                "INSERT INTO mem_invoice_payments (org_id, request_key, payment_id, person_id, period_id, invoice_id, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(org.to_string())
            .bind(k)
            .bind(&payment_id)
            .bind(&p.person.id)
            .bind(&p.period_id)
            .bind(&p.invoice_id)
            .bind(now)
            .execute(tx.conn())
            .await
            .map_err(|e| {
                MemError::Core(CoreError::from(e).on_conflict("request_key", "This payment was already recorded."))
            })?;
        }
        out.push(InvoicePayment {
            payment_id,
            person_id: p.person.id.clone(),
            period_id: p.period_id,
            invoice_id: p.invoice_id,
            number: p.number,
            amount_cents: p.amount,
            method: p.method,
            paid_on: p.paid_on,
            left_cents: p.left_after,
        });
    }
    // The directory's summary rows follow the invoices' new statuses now
    // (invoicing's settled job would do it a moment later).
    crate::directory::refresh_many(&mut tx, org, out.iter().map(|p| p.person_id.clone()).collect()).await?;
    tx.commit().await?;
    Ok((out, true))
}
