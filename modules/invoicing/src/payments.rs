//! Payments received from customers: recorded by hand (cash, cheque,
//! transfer, card) or by an online provider, allocated to one or several
//! invoices, the surplus kept as the customer's credit when asked, posted to
//! the ledger. A payment's entry debits where the money is (bank, cash,
//! cheques to deposit, the provider's balance) and credits the customer's
//! receivable account with its auxiliary account, whatever the allocation:
//! what is not allocated stays as a credit balance of that customer.
//!
//! Settling an invoice goes through [`crate::settlement::settle`]: this file
//! never writes an invoice's status.

use crate::settlement;
use crate::MODULE;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_accounting::domain::{Amount, Day, Line};
use shrooms_accounting::service::{post_entry, NewEntry};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::module::RecordRef;
use shrooms_core::permissions::{CanRead, CanWrite};
use shrooms_core::timeline;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

pub const METHODS: &[&str] = &["cash", "cheque", "transfer", "card", "online", "direct_debit"];

// ---------- domain: allocation, no I/O ----------

/// An invoice that can still receive money: what is left to pay on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenInvoice {
    pub id: String,
    pub due_cents: i64,
}

/// Splits `amount` over invoices. With explicit allocations, each must name
/// an open invoice of the customer for at most what is due on it; without,
/// the oldest invoices are paid first. Returns the allocations and the
/// surplus, which the caller refuses unless it is kept as a credit.
pub fn allocate(
    amount: i64,
    open: &[OpenInvoice],
    explicit: Option<&[AllocationInput]>,
) -> Result<(Vec<(String, i64)>, i64), Vec<FieldError>> {
    let mut out: Vec<(String, i64)> = Vec::new();
    match explicit {
        Some(list) => {
            let mut errors = Vec::new();
            for (i, a) in list.iter().enumerate() {
                let Some(inv) = open.iter().find(|o| o.id == a.invoice_id) else {
                    errors.push(FieldError::new(
                        format!("allocations[{i}].invoice_id"),
                        "This is not an open invoice of this customer.",
                    ));
                    continue;
                };
                let already: i64 = out.iter().filter(|(id, _)| id == &inv.id).map(|(_, c)| c).sum();
                if a.amount_cents <= 0 {
                    errors.push(FieldError::new(format!("allocations[{i}].amount_cents"), "Give a positive amount."));
                } else if a.amount_cents > inv.due_cents - already {
                    errors.push(FieldError::new(
                        format!("allocations[{i}].amount_cents"),
                        format!("Only {} is due on this invoice.", Amount(inv.due_cents - already).plain()),
                    ));
                } else {
                    out.push((inv.id.clone(), a.amount_cents));
                }
            }
            let total: i64 = out.iter().map(|(_, c)| c).sum();
            if errors.is_empty() && total > amount {
                errors.push(FieldError::new(
                    "allocations",
                    format!(
                        "The allocations add up to {}, more than the payment ({}).",
                        Amount(total).plain(),
                        Amount(amount).plain()
                    ),
                ));
            }
            if !errors.is_empty() {
                return Err(errors);
            }
            Ok((out, amount - total))
        }
        None => {
            let mut left = amount;
            for inv in open {
                if left == 0 {
                    break;
                }
                let take = left.min(inv.due_cents);
                if take > 0 {
                    out.push((inv.id.clone(), take));
                    left -= take;
                }
            }
            Ok((out, left))
        }
    }
}

/// Money in the users' words: `12.50`.
pub fn money(cents: i64) -> String {
    Amount(cents).plain()
}

// ---------- input and output ----------

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationInput {
    pub invoice_id: String,
    pub amount_cents: i64,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentInput {
    pub customer_id: String,
    /// `cash`, `cheque`, `transfer` or `card` (`online` is recorded by providers).
    pub method: String,
    pub amount_cents: i64,
    /// `YYYY-MM-DD`; today when left out.
    #[serde(default)]
    pub received_date: Option<String>,
    #[serde(default)]
    pub payer: Option<String>,
    /// The cheque's bank (cheques only).
    #[serde(default)]
    pub cheque_bank: Option<String>,
    /// The cheque's number (required for cheques).
    #[serde(default)]
    pub cheque_number: Option<String>,
    /// The transfer's or card slip's reference.
    #[serde(default)]
    pub reference: Option<String>,
    /// Which invoices it pays and how much; the oldest invoices first when left out.
    #[serde(default)]
    pub allocations: Option<Vec<AllocationInput>>,
    /// Keep what exceeds the invoices' amounts due as a credit of the
    /// customer; without it a payment larger than what is due is refused.
    #[serde(default)]
    pub keep_credit: bool,
    #[serde(default)]
    pub notes: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Allocation {
    pub id: String,
    pub payment_id: String,
    pub invoice_id: String,
    pub invoice_number: Option<String>,
    pub amount_cents: i64,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Payment {
    pub id: String,
    pub customer_id: String,
    pub customer_name: String,
    pub method: String,
    pub amount_cents: i64,
    pub received_date: String,
    pub payer: String,
    pub cheque_bank: String,
    pub cheque_number: String,
    pub reference: String,
    pub provider: Option<String>,
    pub provider_ref: Option<String>,
    pub deposit_slip_id: Option<String>,
    pub ledger_entry_id: Option<String>,
    /// `recorded` or `cancelled`.
    pub status: String,
    pub reversal_entry_id: Option<String>,
    pub notes: String,
    /// What is not allocated to invoices: the customer's credit from this payment.
    pub unallocated_cents: i64,
    pub allocations: Vec<Allocation>,
    pub created_at: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PaySettings {
    pub bank_account: String,
    pub cash_account: String,
    pub cheque_account: String,
    pub card_account: String,
    pub online_account: String,
    pub bank_journal: String,
    pub cash_journal: String,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaySettingsInput {
    pub bank_account: Option<String>,
    pub cash_account: Option<String>,
    pub cheque_account: Option<String>,
    pub card_account: Option<String>,
    pub online_account: Option<String>,
    pub bank_journal: Option<String>,
    pub cash_journal: Option<String>,
}

impl PaySettings {
    fn account_for(&self, method: &str) -> &str {
        match method {
            "cash" => &self.cash_account,
            "cheque" => &self.cheque_account,
            "card" => &self.card_account,
            "online" => &self.online_account,
            _ => &self.bank_account,
        }
    }
    fn journal_for(&self, method: &str) -> &str {
        if method == "cash" {
            &self.cash_journal
        } else {
            &self.bank_journal
        }
    }
}

// ---------- settings ----------

pub async fn settings_in(conn: &mut AnyConnection, org: OrgId) -> CoreResult<PaySettings> {
    let r = sqlx::query(
        "SELECT bank_account, cash_account, cheque_account, card_account, online_account, bank_journal, cash_journal \
         FROM inv_pay_settings WHERE org_id = $1",
    )
    .bind(org.to_string())
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match r {
        Some(r) => PaySettings {
            bank_account: r.try_get(0)?,
            cash_account: r.try_get(1)?,
            cheque_account: r.try_get(2)?,
            card_account: r.try_get(3)?,
            online_account: r.try_get(4)?,
            bank_journal: r.try_get(5)?,
            cash_journal: r.try_get(6)?,
        },
        None => PaySettings {
            bank_account: "512".into(),
            cash_account: "531".into(),
            cheque_account: "5112".into(),
            card_account: "512".into(),
            online_account: "517".into(),
            bank_journal: "BQ".into(),
            cash_journal: "CA".into(),
        },
    })
}

pub async fn settings(db: &Db, cap: &CanRead) -> CoreResult<PaySettings> {
    let mut conn = db.pool().acquire().await?;
    settings_in(&mut conn, cap.org()).await
}

pub async fn update_settings(
    db: &Db,
    who: &Who,
    cap: &shrooms_core::permissions::CanAdmin,
    input: PaySettingsInput,
) -> CoreResult<PaySettings> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = settings_in(tx.conn(), org).await?;
    let mut s = before.clone();
    let mut errors = Vec::new();
    let mut set = |field: &str, v: &Option<String>, target: &mut String, journal: bool| {
        if let Some(v) = v {
            let v = v.trim();
            let ok = if journal {
                shrooms_accounting::domain::parse_journal_code(v).is_ok()
            } else {
                shrooms_accounting::domain::parse_account_number(v).is_ok()
            };
            if ok {
                *target = v.to_string();
            } else {
                errors.push(FieldError::new(
                    field,
                    if journal { "Write a journal code such as BQ." } else { "Write an account number such as 512." },
                ));
            }
        }
    };
    set("bank_account", &input.bank_account, &mut s.bank_account, false);
    set("cash_account", &input.cash_account, &mut s.cash_account, false);
    set("cheque_account", &input.cheque_account, &mut s.cheque_account, false);
    set("card_account", &input.card_account, &mut s.card_account, false);
    set("online_account", &input.online_account, &mut s.online_account, false);
    set("bank_journal", &input.bank_journal, &mut s.bank_journal, true);
    set("cash_journal", &input.cash_journal, &mut s.cash_journal, true);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    sqlx::query(
        "INSERT INTO inv_pay_settings (org_id, bank_account, cash_account, cheque_account, card_account, online_account, \
         bank_journal, cash_journal, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (org_id) DO UPDATE SET bank_account = $2, cash_account = $3, cheque_account = $4, \
         card_account = $5, online_account = $6, bank_journal = $7, cash_journal = $8, updated_at = $9",
    )
    .bind(org.to_string())
    .bind(&s.bank_account)
    .bind(&s.cash_account)
    .bind(&s.cheque_account)
    .bind(&s.card_account)
    .bind(&s.online_account)
    .bind(&s.bank_journal)
    .bind(&s.cash_journal)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "invoicing.payment_settings.update",
            entity_type: "invoicing_payment_settings",
            entity_id: org.to_string(),
            before: Some(json!(before)),
            after: Some(json!(s)),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(s)
}

// ---------- shared lookups ----------

pub(crate) struct CustomerRef {
    pub id: String,
    pub name: String,
    pub email: String,
    pub lang: String,
    pub aux_account: String,
}

pub(crate) async fn customer(conn: &mut AnyConnection, org: OrgId, id: &str) -> CoreResult<Option<CustomerRef>> {
    let r = sqlx::query("SELECT id, name, email, lang, aux_account FROM inv_customers WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    r.map(|r| {
        Ok(CustomerRef {
            id: r.try_get(0)?,
            name: r.try_get(1)?,
            email: r.try_get(2)?,
            lang: r.try_get(3)?,
            aux_account: r.try_get(4)?,
        })
    })
    .transpose()
}

pub(crate) async fn receivable_account(conn: &mut AnyConnection, org: OrgId) -> CoreResult<String> {
    let r = sqlx::query("SELECT receivable_account FROM inv_settings WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_optional(&mut *conn)
        .await?;
    Ok(match r {
        Some(r) => r.try_get(0)?,
        None => "411".into(),
    })
}

/// What an open invoice statuses are: validated, sent or partly paid.
pub(crate) const OPEN_STATUSES: &str = "('validated', 'sent', 'partially_paid')";

/// The customer's invoices that still wait for money, oldest first.
pub(crate) async fn open_invoices(
    conn: &mut AnyConnection,
    org: OrgId,
    customer_id: &str,
) -> CoreResult<Vec<OpenInvoice>> {
    let rows = sqlx::query(&format!(
        "SELECT id, gross_cents - paid_cents - credited_cents FROM inv_documents \
         WHERE org_id = $1 AND customer_id = $2 AND kind = 'invoice' AND status IN {OPEN_STATUSES} \
         AND gross_cents - paid_cents - credited_cents > 0 \
         ORDER BY COALESCE(due_date, issue_date), issue_date, seq"
    ))
    .bind(org.to_string())
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok(OpenInvoice { id: r.try_get(0)?, due_cents: r.try_get(1)? })).collect()
}

/// The record of an invoice on the core's timeline.
pub(crate) async fn invoice_record(conn: &mut AnyConnection, org: OrgId, id: &str) -> CoreResult<RecordRef> {
    let r = sqlx::query(
        "SELECT d.number, o.slug FROM inv_documents d JOIN orgs o ON o.id = d.org_id WHERE d.org_id = $1 AND d.id = $2",
    )
    .bind(org.to_string())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound)?;
    let number: Option<String> = r.try_get(0)?;
    let slug: String = r.try_get(1)?;
    Ok(RecordRef {
        entity_type: crate::documents::ENTITY.into(),
        entity_id: id.to_string(),
        title: number.unwrap_or_else(|| id.to_string()),
        path: format!("/o/{slug}/invoicing/documents/{id}"),
    })
}

// ---------- recording ----------

fn trimmed(v: &Option<String>, field: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let t = v.as_deref().unwrap_or("").trim();
    if t.chars().count() > max || t.chars().any(|c| c.is_control()) {
        errors.push(FieldError::new(field, format!("Write at most {max} characters, on one line.")));
    }
    t.to_string()
}

/// A payment checked for form, ready to record.
pub(crate) struct NewPayment {
    pub customer_id: String,
    pub method: String,
    pub amount_cents: i64,
    pub received_date: Day,
    pub payer: String,
    pub cheque_bank: String,
    pub cheque_number: String,
    pub reference: String,
    pub provider: Option<String>,
    pub provider_ref: Option<String>,
    pub allocations: Option<Vec<AllocationInput>>,
    pub keep_credit: bool,
    pub notes: String,
}

fn check_input(input: PaymentInput) -> Result<NewPayment, Vec<FieldError>> {
    let mut errors = Vec::new();
    let method = input.method.trim().to_string();
    if !["cash", "cheque", "transfer", "card"].contains(&method.as_str()) {
        errors.push(FieldError::new(
            "method",
            "Choose cash, cheque, transfer or card (online payments are recorded by the provider).",
        ));
    }
    if input.amount_cents <= 0 {
        errors.push(FieldError::new("amount_cents", "Give a positive amount, in cents."));
    } else if input.amount_cents > 100_000_000_000 {
        errors.push(FieldError::new("amount_cents", "This amount is too large."));
    }
    let received_date = match input.received_date.as_deref().map(str::trim) {
        None | Some("") => Day::today(),
        Some(d) => match Day::parse(d) {
            Ok(d) => d,
            Err(m) => {
                errors.push(FieldError::new("received_date", m));
                Day::today()
            }
        },
    };
    let payer = trimmed(&input.payer, "payer", 200, &mut errors);
    let cheque_bank = trimmed(&input.cheque_bank, "cheque_bank", 100, &mut errors);
    let cheque_number = trimmed(&input.cheque_number, "cheque_number", 50, &mut errors);
    let reference = trimmed(&input.reference, "reference", 200, &mut errors);
    let notes = trimmed(&input.notes, "notes", 1000, &mut errors);
    if method == "cheque" && cheque_number.is_empty() {
        errors.push(FieldError::new("cheque_number", "Write the cheque's number."));
    }
    if input.customer_id.trim().is_empty() {
        errors.push(FieldError::new("customer_id", "Choose the customer."));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(NewPayment {
        customer_id: input.customer_id.trim().to_string(),
        method,
        amount_cents: input.amount_cents,
        received_date,
        payer,
        cheque_bank,
        cheque_number,
        reference,
        provider: None,
        provider_ref: None,
        allocations: input.allocations,
        keep_credit: input.keep_credit,
        notes,
    })
}

/// Records a payment typed by a person: allocation, ledger entry, invoice
/// statuses, audit and timelines in one durable transaction.
pub async fn record(
    st: &shrooms_core::web::AppState,
    who: &Who,
    cap: &CanWrite,
    input: PaymentInput,
) -> CoreResult<Payment> {
    let p = check_input(input).map_err(CoreError::Validation)?;
    let org = cap.org();
    let mut tx = st.db.begin_durable().await?;
    let id = record_in(st, &mut tx, who, org, p).await?;
    let out = get_in(tx.conn(), org, &id).await?;
    tx.commit().await?;
    Ok(out)
}

/// A payment collected by another module, in that module's transaction: a
/// SEPA direct debit of the members module (`method` `direct_debit`, the
/// money reaches the bank account). The input is checked as a typed one,
/// except for the method. Returns the payment's id.
pub async fn record_collected(
    st: &shrooms_core::web::AppState,
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    mut input: PaymentInput,
) -> CoreResult<String> {
    let method = std::mem::replace(&mut input.method, "transfer".into());
    if method != "direct_debit" {
        return Err(CoreError::validation("method", "Only direct debits are collected by other modules."));
    }
    let mut p = check_input(input).map_err(CoreError::Validation)?;
    p.method = method;
    record_in(st, tx, who, org, p).await
}

/// A payment typed in another module's page, in that module's transaction:
/// the members module records the payment of a dues invoice from the
/// member's page. Checked exactly as [`record`] checks a typed one; the
/// caller answers for the permission. Returns the payment's id.
pub async fn record_typed_in(
    st: &shrooms_core::web::AppState,
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    input: PaymentInput,
) -> CoreResult<String> {
    let p = check_input(input).map_err(CoreError::Validation)?;
    record_in(st, tx, who, org, p).await
}

/// Records a checked payment in the caller's transaction (also used by
/// online providers' webhooks). Returns the payment's id.
pub(crate) async fn record_in(
    st: &shrooms_core::web::AppState,
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    p: NewPayment,
) -> CoreResult<String> {
    let c = customer(tx.conn(), org, &p.customer_id)
        .await?
        .ok_or_else(|| CoreError::validation("customer_id", "There is no such customer."))?;
    let open = open_invoices(tx.conn(), org, &c.id).await?;
    let (allocs, surplus) = allocate(p.amount_cents, &open, p.allocations.as_deref()).map_err(CoreError::Validation)?;
    if surplus > 0 && !p.keep_credit {
        let due: i64 = if p.allocations.is_some() {
            allocs.iter().map(|(_, a)| a).sum()
        } else {
            open.iter().map(|o| o.due_cents).sum()
        };
        return Err(CoreError::Validation(vec![FieldError::new(
            "amount_cents",
            format!(
                "This payment is {} more than what is due ({}). Correct the amount, or keep the surplus as the customer's credit (keep_credit).",
                money(surplus),
                money(due)
            ),
        )]));
    }
    let settings = settings_in(tx.conn(), org).await?;
    let receivable = receivable_account(tx.conn(), org).await?;
    let id = uuid::Uuid::now_v7().to_string();
    let now = Timestamp::now().0;
    // The ledger entry first: a refused posting (books not opened, no such
    // account) leaves nothing written.
    let label = match p.method.as_str() {
        "cheque" => format!("Chèque {} {} – {}", p.cheque_bank, p.cheque_number, c.name),
        "cash" => format!("Espèces – {}", c.name),
        "transfer" => format!("Virement – {}", c.name),
        "card" => format!("Carte – {}", c.name),
        "direct_debit" => format!("Prélèvement – {}", c.name),
        _ => format!("Paiement en ligne – {}", c.name),
    };
    let label: String = label.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect();
    let amount = Amount(p.amount_cents);
    let entry = NewEntry {
        journal: settings.journal_for(&p.method).to_string(),
        date: p.received_date,
        label: label.clone(),
        piece_ref: if p.reference.is_empty() { p.cheque_number.clone() } else { p.reference.clone() },
        piece_date: None,
        lines: vec![
            line(settings.account_for(&p.method), "", "", &label, amount, Amount::ZERO),
            line(&receivable, &c.aux_account, &c.name, &label, Amount::ZERO, amount),
        ],
    };
    let posted = post_entry(tx, who, org, MODULE, entry, true).await.map_err(CoreError::from)?;
    sqlx::query(
        "INSERT INTO inv_payments (id, org_id, customer_id, method, amount_cents, received_date, payer, cheque_bank, \
         cheque_number, reference, provider, provider_ref, ledger_entry_id, status, notes, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'recorded', $14, $15, $16)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(&c.id)
    .bind(&p.method)
    .bind(p.amount_cents)
    .bind(p.received_date.iso())
    .bind(&p.payer)
    .bind(&p.cheque_bank)
    .bind(&p.cheque_number)
    .bind(&p.reference)
    .bind(&p.provider)
    .bind(&p.provider_ref)
    .bind(&posted.id)
    .bind(&p.notes)
    .bind(who.account.map(|a| a.to_string()))
    .bind(now)
    .execute(tx.conn())
    .await?;
    for (invoice, cents) in &allocs {
        allocate_in(st, tx, who, org, &id, invoice, *cents, &p.method).await?;
    }
    audit::record(
        tx,
        who,
        Change {
            org: Some(org),
            action: "invoicing.payment.record",
            entity_type: "invoicing_payment",
            entity_id: id.clone(),
            before: None,
            after: Some(json!({
                "customer_id": c.id, "method": p.method, "amount_cents": p.amount_cents,
                "received_date": p.received_date.iso(), "cheque_number": p.cheque_number, "reference": p.reference,
                "provider": p.provider, "provider_ref": p.provider_ref, "ledger_entry_id": posted.id,
                "allocations": allocs, "credit_cents": surplus,
            })),
        },
    )
    .await?;
    Ok(id)
}

fn line(account: &str, aux: &str, aux_label: &str, label: &str, debit: Amount, credit: Amount) -> Line {
    Line {
        account: account.to_string(),
        aux: aux.to_string(),
        aux_label: aux_label.chars().take(100).collect(),
        label: label.to_string(),
        debit,
        credit,
        currency_amount: None,
        currency: None,
        tags: vec![],
    }
}

/// One allocation: the invoice's paid amount grows, its status follows, its
/// timeline says so.
#[allow(clippy::too_many_arguments)]
async fn allocate_in(
    st: &shrooms_core::web::AppState,
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    payment_id: &str,
    invoice: &str,
    cents: i64,
    method: &str,
) -> CoreResult<()> {
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO inv_allocations (id, org_id, payment_id, document_id, amount_cents, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(org.to_string())
    .bind(payment_id)
    .bind(invoice)
    .bind(cents)
    .bind(who.account.map(|a| a.to_string()))
    .bind(now)
    .execute(tx.conn())
    .await?;
    // Guarded: never more than what is due, even if two payments race.
    let r = sqlx::query(
        "UPDATE inv_documents SET paid_cents = paid_cents + $1, updated_at = $2 \
         WHERE org_id = $3 AND id = $4 AND paid_cents + credited_cents + $1 <= gross_cents",
    )
    .bind(cents)
    .bind(now)
    .bind(org.to_string())
    .bind(invoice)
    .execute(tx.conn())
    .await?;
    if r.rows_affected() != 1 {
        return Err(CoreError::Conflict {
            field: None,
            message: "This invoice was paid in the meantime: look at it again.".into(),
        });
    }
    let record = invoice_record(tx.conn(), org, invoice).await?;
    timeline::event(
        tx,
        who,
        org,
        &record,
        &format!("Payment received: {} ({method})", money(cents)),
        json!({"payment_id": payment_id, "amount_cents": cents, "method": method}),
    )
    .await?;
    settle_and_tell(st, tx, who, org, invoice, &record).await
}

/// Settles an invoice and, when its status moves, says so on its timeline.
async fn settle_and_tell(
    st: &shrooms_core::web::AppState,
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    invoice: &str,
    record: &RecordRef,
) -> CoreResult<()> {
    let before: String = sqlx::query("SELECT status FROM inv_documents WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(invoice)
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?;
    if let Some(next) = settlement::settle(st, tx, who, org, invoice).await? {
        timeline::status_change(st, tx, who, org, record, Some(&before), &next, "").await?;
    }
    Ok(())
}

// ---------- reading ----------

const PAYMENT_COLS: &str = "p.id, p.customer_id, c.name, p.method, p.amount_cents, p.received_date, p.payer, \
    p.cheque_bank, p.cheque_number, p.reference, p.provider, p.provider_ref, p.deposit_slip_id, p.ledger_entry_id, \
    p.status, p.reversal_entry_id, p.notes, p.created_at";

fn payment_from(r: &sqlx::any::AnyRow) -> CoreResult<Payment> {
    Ok(Payment {
        id: r.try_get(0)?,
        customer_id: r.try_get(1)?,
        customer_name: r.try_get(2)?,
        method: r.try_get(3)?,
        amount_cents: r.try_get(4)?,
        received_date: r.try_get(5)?,
        payer: r.try_get(6)?,
        cheque_bank: r.try_get(7)?,
        cheque_number: r.try_get(8)?,
        reference: r.try_get(9)?,
        provider: r.try_get(10)?,
        provider_ref: r.try_get(11)?,
        deposit_slip_id: r.try_get(12)?,
        ledger_entry_id: r.try_get(13)?,
        status: r.try_get(14)?,
        reversal_entry_id: r.try_get(15)?,
        notes: r.try_get(16)?,
        created_at: Timestamp(r.try_get(17)?).rfc3339(),
        unallocated_cents: 0,
        allocations: vec![],
    })
}

async fn allocations_of(conn: &mut AnyConnection, org: OrgId, payment_ids: &[String]) -> CoreResult<Vec<Allocation>> {
    if payment_ids.is_empty() {
        return Ok(vec![]);
    }
    let marks: Vec<String> = (0..payment_ids.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT a.id, a.payment_id, a.document_id, d.number, a.amount_cents, a.created_at FROM inv_allocations a \
         JOIN inv_documents d ON d.id = a.document_id \
         WHERE a.org_id = $1 AND a.cancelled_at IS NULL AND a.payment_id IN ({}) ORDER BY a.id",
        marks.join(", ")
    );
    let mut q = sqlx::query(&sql).bind(org.to_string());
    for id in payment_ids {
        q = q.bind(id);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(Allocation {
                id: r.try_get(0)?,
                payment_id: r.try_get(1)?,
                invoice_id: r.try_get(2)?,
                invoice_number: r.try_get(3)?,
                amount_cents: r.try_get(4)?,
                created_at: Timestamp(r.try_get(5)?).rfc3339(),
            })
        })
        .collect()
}

async fn with_allocations(conn: &mut AnyConnection, org: OrgId, mut list: Vec<Payment>) -> CoreResult<Vec<Payment>> {
    let ids: Vec<String> = list.iter().map(|p| p.id.clone()).collect();
    let allocs = allocations_of(conn, org, &ids).await?;
    for p in &mut list {
        p.allocations = allocs.iter().filter(|a| a.payment_id == p.id).cloned().collect();
        p.unallocated_cents = if p.status == "recorded" {
            p.amount_cents - p.allocations.iter().map(|a| a.amount_cents).sum::<i64>()
        } else {
            0
        };
    }
    Ok(list)
}

pub(crate) async fn get_in(conn: &mut AnyConnection, org: OrgId, id: &str) -> CoreResult<Payment> {
    let r = sqlx::query(&format!(
        "SELECT {PAYMENT_COLS} FROM inv_payments p JOIN inv_customers c ON c.id = p.customer_id \
         WHERE p.org_id = $1 AND p.id = $2"
    ))
    .bind(org.to_string())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound)?;
    let p = payment_from(&r)?;
    Ok(with_allocations(conn, org, vec![p]).await?.remove(0))
}

pub async fn get(db: &Db, cap: &CanRead, id: &str) -> CoreResult<Payment> {
    let mut conn = db.pool().acquire().await?;
    get_in(&mut conn, cap.org(), id).await
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PaymentFilter {
    pub customer_id: Option<String>,
    pub method: Option<String>,
    /// `recorded` or `cancelled`.
    pub status: Option<String>,
    /// Cheques not yet on a deposit slip, when true.
    pub undeposited: Option<bool>,
    /// Received on or after this date.
    pub from: Option<String>,
    /// Received on or before this date.
    pub to: Option<String>,
}

pub async fn list(db: &Db, cap: &CanRead, f: &PaymentFilter) -> CoreResult<Vec<Payment>> {
    let org = cap.org();
    let mut sql = format!(
        "SELECT {PAYMENT_COLS} FROM inv_payments p JOIN inv_customers c ON c.id = p.customer_id WHERE p.org_id = $1"
    );
    let mut binds: Vec<String> = vec![org.to_string()];
    let mut add = |cond: &str, v: String| {
        binds.push(v);
        sql.push_str(&format!(" AND {cond} ${}", binds.len()));
    };
    if let Some(c) = f.customer_id.as_deref().filter(|s| !s.is_empty()) {
        add("p.customer_id =", c.to_string());
    }
    if let Some(m) = f.method.as_deref().filter(|s| !s.is_empty()) {
        add("p.method =", m.to_string());
    }
    if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty()) {
        add("p.status =", s.to_string());
    }
    if let Some(d) = f.from.as_deref().filter(|s| !s.is_empty()) {
        add("p.received_date >=", d.to_string());
    }
    if let Some(d) = f.to.as_deref().filter(|s| !s.is_empty()) {
        add("p.received_date <=", d.to_string());
    }
    if f.undeposited == Some(true) {
        sql.push_str(" AND p.method = 'cheque' AND p.status = 'recorded' AND p.deposit_slip_id IS NULL");
    }
    sql.push_str(" ORDER BY p.received_date DESC, p.id DESC LIMIT 500");
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    let mut conn = db.pool().acquire().await?;
    let rows = q.fetch_all(&mut *conn).await?;
    let list = rows.iter().map(payment_from).collect::<CoreResult<Vec<_>>>()?;
    with_allocations(&mut conn, org, list).await
}

/// The payments allocated to one invoice (for the invoice's page).
pub async fn of_invoice(db: &Db, cap: &CanRead, invoice_id: &str) -> CoreResult<Vec<Allocation>> {
    document_exists(db, cap.org(), invoice_id).await?;
    let rows = sqlx::query(
        "SELECT a.id, a.payment_id, a.document_id, d.number, a.amount_cents, a.created_at FROM inv_allocations a \
         JOIN inv_documents d ON d.id = a.document_id \
         WHERE a.org_id = $1 AND a.document_id = $2 AND a.cancelled_at IS NULL ORDER BY a.id",
    )
    .bind(cap.org().to_string())
    .bind(invoice_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Allocation {
                id: r.try_get(0)?,
                payment_id: r.try_get(1)?,
                invoice_id: r.try_get(2)?,
                invoice_number: r.try_get(3)?,
                amount_cents: r.try_get(4)?,
                created_at: Timestamp(r.try_get(5)?).rfc3339(),
            })
        })
        .collect()
}

/// `NotFound` unless the organisation has this quote, invoice or credit note.
pub(crate) async fn document_exists(db: &Db, org: OrgId, id: &str) -> CoreResult<()> {
    sqlx::query("SELECT 1 FROM inv_documents WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .map(|_| ())
        .ok_or(CoreError::NotFound)
}

// ---------- cancelling ----------

/// Cancels a payment recorded by mistake, before its cheque is deposited:
/// its entry is reversed, its allocations undone, the invoices' statuses
/// follow.
pub async fn cancel(st: &shrooms_core::web::AppState, who: &Who, cap: &CanWrite, id: &str) -> CoreResult<Payment> {
    let org = cap.org();
    let mut tx = st.db.begin_durable().await?;
    cancel_in(st, &mut tx, who, org, id, None).await?;
    let out = get_in(tx.conn(), org, id).await?;
    tx.commit().await?;
    Ok(out)
}

/// [`cancel`] in the caller's transaction: a returned direct debit (the
/// members module) cancels the payment it recorded, dated `on` (the day the
/// bank returned it) when given.
pub async fn cancel_in(
    st: &shrooms_core::web::AppState,
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    id: &str,
    on: Option<Day>,
) -> CoreResult<()> {
    let p = get_in(tx.conn(), org, id).await?;
    if p.status != "recorded" {
        return Err(CoreError::Conflict { field: None, message: "This payment is already cancelled.".into() });
    }
    if p.deposit_slip_id.is_some() {
        return Err(CoreError::Conflict {
            field: None,
            message: "This cheque is on a deposit slip: it is at the bank and cannot be cancelled.".into(),
        });
    }
    if p.provider.is_some() {
        return Err(CoreError::Conflict {
            field: None,
            message: "An online payment is refunded at the provider, not cancelled here.".into(),
        });
    }
    let settings = settings_in(tx.conn(), org).await?;
    let receivable = receivable_account(tx.conn(), org).await?;
    let c = customer(tx.conn(), org, &p.customer_id).await?.ok_or(CoreError::NotFound)?;
    let amount = Amount(p.amount_cents);
    let label: String = format!("Annulation paiement {} – {}", p.method, c.name).chars().take(200).collect();
    // Dated today, or on the day it was received when today is outside an
    // open fiscal year (as the accounting module's own reversals are).
    let today = on.unwrap_or_else(Day::today);
    let ledger = shrooms_accounting::repo::ledger(tx.conn(), org).await.map_err(CoreError::from)?;
    let date = if ledger.year_of(&today.iso()).is_some_and(|y| !y.is_closed()) {
        today
    } else {
        Day::parse(&p.received_date).unwrap_or(today)
    };
    let entry = NewEntry {
        journal: settings.journal_for(&p.method).to_string(),
        date,
        label: label.clone(),
        piece_ref: p.cheque_number.clone(),
        piece_date: None,
        lines: vec![
            line(&receivable, &c.aux_account, &c.name, &label, amount, Amount::ZERO),
            line(settings.account_for(&p.method), "", "", &label, Amount::ZERO, amount),
        ],
    };
    let posted = post_entry(tx, who, org, MODULE, entry, true).await.map_err(CoreError::from)?;
    let now = Timestamp::now().0;
    sqlx::query(
        "UPDATE inv_payments SET status = 'cancelled', reversal_entry_id = $1, cancelled_at = $2 \
         WHERE org_id = $3 AND id = $4 AND status = 'recorded'",
    )
    .bind(&posted.id)
    .bind(now)
    .bind(org.to_string())
    .bind(id)
    .execute(tx.conn())
    .await?;
    for a in &p.allocations {
        sqlx::query("UPDATE inv_allocations SET cancelled_at = $1 WHERE org_id = $2 AND id = $3")
            .bind(now)
            .bind(org.to_string())
            .bind(&a.id)
            .execute(tx.conn())
            .await?;
        sqlx::query(
            "UPDATE inv_documents SET paid_cents = paid_cents - $1, updated_at = $2 WHERE org_id = $3 AND id = $4",
        )
        .bind(a.amount_cents)
        .bind(now)
        .bind(org.to_string())
        .bind(&a.invoice_id)
        .execute(tx.conn())
        .await?;
        let record = invoice_record(tx.conn(), org, &a.invoice_id).await?;
        timeline::event(
            tx,
            who,
            org,
            &record,
            &format!("Payment cancelled: {}", money(a.amount_cents)),
            json!({"payment_id": id, "amount_cents": a.amount_cents}),
        )
        .await?;
        settle_and_tell(st, tx, who, org, &a.invoice_id, &record).await?;
    }
    audit::record(
        tx,
        who,
        Change {
            org: Some(org),
            action: "invoicing.payment.cancel",
            entity_type: "invoicing_payment",
            entity_id: id.to_string(),
            before: Some(json!({"status": "recorded", "amount_cents": p.amount_cents})),
            after: Some(json!({"status": "cancelled", "reversal_entry_id": posted.id})),
        },
    )
    .await?;
    Ok(())
}

// ---------- customer credit ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CustomerCredit {
    pub customer_id: String,
    pub customer_name: String,
    /// Money received and not allocated to any invoice.
    pub credit_cents: i64,
    /// What the customer's open invoices still wait for.
    pub due_cents: i64,
    /// The payments the credit comes from, with what is left of each.
    pub sources: Vec<CreditSource>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CreditSource {
    pub payment_id: String,
    pub received_date: String,
    pub method: String,
    pub left_cents: i64,
}

async fn credit_sources(conn: &mut AnyConnection, org: OrgId, customer_id: &str) -> CoreResult<Vec<CreditSource>> {
    let rows = sqlx::query(
        "SELECT p.id, p.received_date, p.method, p.amount_cents - COALESCE((SELECT CAST(SUM(a.amount_cents) AS BIGINT) \
         FROM inv_allocations a WHERE a.payment_id = p.id AND a.cancelled_at IS NULL), 0) \
         FROM inv_payments p WHERE p.org_id = $1 AND p.customer_id = $2 AND p.status = 'recorded' \
         ORDER BY p.received_date, p.id",
    )
    .bind(org.to_string())
    .bind(customer_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let left: i64 = r.try_get(3)?;
        if left > 0 {
            out.push(CreditSource {
                payment_id: r.try_get(0)?,
                received_date: r.try_get(1)?,
                method: r.try_get(2)?,
                left_cents: left,
            });
        }
    }
    Ok(out)
}

async fn credit_in(conn: &mut AnyConnection, org: OrgId, customer_id: &str) -> CoreResult<CustomerCredit> {
    let c = customer(conn, org, customer_id).await?.ok_or(CoreError::NotFound)?;
    let sources = credit_sources(conn, org, &c.id).await?;
    let due = open_invoices(conn, org, &c.id).await?.iter().map(|o| o.due_cents).sum();
    Ok(CustomerCredit {
        customer_id: c.id,
        customer_name: c.name,
        credit_cents: sources.iter().map(|s| s.left_cents).sum(),
        due_cents: due,
        sources,
    })
}

pub async fn credit(db: &Db, cap: &CanRead, customer_id: &str) -> CoreResult<CustomerCredit> {
    let mut conn = db.pool().acquire().await?;
    credit_in(&mut conn, cap.org(), customer_id).await
}

/// Every customer with a credit.
pub async fn credits(db: &Db, cap: &CanRead) -> CoreResult<Vec<CustomerCredit>> {
    let org = cap.org();
    let mut conn = db.pool().acquire().await?;
    let rows = sqlx::query(
        "SELECT DISTINCT p.customer_id FROM inv_payments p WHERE p.org_id = $1 AND p.status = 'recorded' \
         AND p.amount_cents > COALESCE((SELECT CAST(SUM(a.amount_cents) AS BIGINT) FROM inv_allocations a \
         WHERE a.payment_id = p.id AND a.cancelled_at IS NULL), 0)",
    )
    .bind(org.to_string())
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let id: String = r.try_get(0)?;
        out.push(credit_in(&mut conn, org, &id).await?);
    }
    out.sort_by(|a, b| a.customer_name.cmp(&b.customer_name));
    Ok(out)
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyCredit {
    pub invoice_id: String,
    /// At most the credit and what is due; all that can be used when left out.
    #[serde(default)]
    pub amount_cents: Option<i64>,
}

/// Uses a customer's credit on one of their invoices: new allocations of the
/// payments the credit comes from, oldest first. Nothing is posted: the
/// money is already on the customer's account.
pub async fn apply_credit(
    st: &shrooms_core::web::AppState,
    who: &Who,
    cap: &CanWrite,
    customer_id: &str,
    input: ApplyCredit,
) -> CoreResult<CustomerCredit> {
    let org = cap.org();
    let mut tx = st.db.begin_durable().await?;
    let c = customer(tx.conn(), org, customer_id).await?.ok_or(CoreError::NotFound)?;
    let open = open_invoices(tx.conn(), org, &c.id).await?;
    let Some(inv) = open.iter().find(|o| o.id == input.invoice_id) else {
        return Err(CoreError::validation("invoice_id", "This is not an open invoice of this customer."));
    };
    let sources = credit_sources(tx.conn(), org, &c.id).await?;
    let available: i64 = sources.iter().map(|s| s.left_cents).sum();
    if available == 0 {
        return Err(CoreError::Conflict { field: None, message: "This customer has no credit.".into() });
    }
    let want = input.amount_cents.unwrap_or(available.min(inv.due_cents));
    if want <= 0 || want > available || want > inv.due_cents {
        return Err(CoreError::validation(
            "amount_cents",
            &format!(
                "Give an amount up to {} (credit {}, due {}).",
                money(available.min(inv.due_cents)),
                money(available),
                money(inv.due_cents)
            ),
        ));
    }
    let mut left = want;
    for s in &sources {
        if left == 0 {
            break;
        }
        let take = left.min(s.left_cents);
        allocate_in(st, &mut tx, who, org, &s.payment_id, &inv.id, take, "credit").await?;
        left -= take;
    }
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "invoicing.credit.apply",
            entity_type: "invoicing_customer",
            entity_id: c.id.clone(),
            before: Some(json!({"credit_cents": available})),
            after: Some(json!({"credit_cents": available - want, "invoice_id": inv.id, "amount_cents": want})),
        },
    )
    .await?;
    let out = credit_in(tx.conn(), org, &c.id).await?;
    tx.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(id: &str, due: i64) -> OpenInvoice {
        OpenInvoice { id: id.into(), due_cents: due }
    }

    #[test]
    fn oldest_invoices_are_paid_first() {
        let open = [inv("a", 1000), inv("b", 500)];
        assert_eq!(allocate(1200, &open, None).unwrap(), (vec![("a".into(), 1000), ("b".into(), 200)], 0));
        assert_eq!(allocate(1800, &open, None).unwrap(), (vec![("a".into(), 1000), ("b".into(), 500)], 300));
        assert_eq!(allocate(300, &[], None).unwrap(), (vec![], 300));
    }

    #[test]
    fn explicit_allocations_are_checked() {
        let open = [inv("a", 1000), inv("b", 500)];
        let ok = [AllocationInput { invoice_id: "b".into(), amount_cents: 500 }];
        assert_eq!(allocate(600, &open, Some(&ok)).unwrap(), (vec![("b".into(), 500)], 100));
        let too_much = [AllocationInput { invoice_id: "b".into(), amount_cents: 600 }];
        let e = allocate(600, &open, Some(&too_much)).unwrap_err();
        assert_eq!(e[0].field, "allocations[0].amount_cents");
        let unknown = [AllocationInput { invoice_id: "z".into(), amount_cents: 1 }];
        assert_eq!(allocate(600, &open, Some(&unknown)).unwrap_err()[0].field, "allocations[0].invoice_id");
        let over = [
            AllocationInput { invoice_id: "a".into(), amount_cents: 400 },
            AllocationInput { invoice_id: "b".into(), amount_cents: 300 },
        ];
        assert_eq!(allocate(600, &open, Some(&over)).unwrap_err()[0].field, "allocations");
        // The same invoice twice counts once against what is due.
        let twice = [
            AllocationInput { invoice_id: "b".into(), amount_cents: 300 },
            AllocationInput { invoice_id: "b".into(), amount_cents: 300 },
        ];
        assert_eq!(allocate(600, &open, Some(&twice)).unwrap_err()[0].field, "allocations[1].amount_cents");
    }

    #[test]
    fn cheques_need_their_number() {
        let e = check_input(PaymentInput {
            customer_id: "c".into(),
            method: "cheque".into(),
            amount_cents: 100,
            ..Default::default()
        })
        .err()
        .unwrap();
        assert_eq!(e[0].field, "cheque_number");
        let e = check_input(PaymentInput {
            customer_id: "c".into(),
            method: "online".into(),
            amount_cents: 0,
            ..Default::default()
        })
        .err()
        .unwrap();
        assert_eq!(e.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["method", "amount_cents"]);
    }
}
