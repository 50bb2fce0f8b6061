//! Quotes, invoices and credit notes: drafts, validation (number, frozen
//! seller and buyer, totals, legal checks and the ledger entry, all in one
//! durable transaction), the quote's life (accepted, refused, converted)
//! and credit notes against a validated invoice.
//!
//! A validated document never changes again: its number, parties, lines
//! and amounts are frozen; only its settlement (`paid_cents`,
//! `credited_cents`, through [`crate::settlement`]) and its sending move.

use crate::catalogue::{self, audited, day, text, Settings, VatRate};
use crate::customers::{self, Customer};
use crate::{numbering, posting, settlement, MODULE};
use serde::{Deserialize, Serialize};
use shrooms_accounting::domain::Day;
use shrooms_core::audit::Who;
use shrooms_core::db::Db;
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::module::RecordRef;
use shrooms_core::permissions::{CanRead, CanWrite};
use shrooms_core::timeline;
use shrooms_core::web::AppState;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use std::collections::BTreeMap;
use utoipa::ToSchema;

pub const ENTITY: &str = "inv_document";

/// Finds a document for the core timeline (comments, status changes).
pub fn find_record(st: AppState, ctx: shrooms_core::web::OrgCtx, id: String) -> shrooms_core::module::RecordFuture {
    Box::pin(async move {
        let cap = ctx.can_read(MODULE)?;
        let mut conn = st.db.pool().acquire().await?;
        Ok(document_in(&mut conn, cap.org(), &id).await?.map(|d| record_ref(&ctx.org.slug, &d)))
    })
}

// ---------- types ----------

/// A seller or buyer as printed on a document, frozen at validation.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct Party {
    pub name: String,
    /// `business` or `individual` (the seller is always `business`).
    pub kind: String,
    pub legal_form: String,
    pub share_capital: String,
    pub siren: String,
    pub siret: String,
    pub vat_number: String,
    pub rcs: String,
    pub address: String,
    pub postcode: String,
    pub city: String,
    pub country: String,
    pub email: String,
    pub phone: String,
    pub iban: String,
    pub bic: String,
    /// The seller's VAT regime (`normal` or `franchise`).
    pub vat_regime: String,
    /// The seller's late-payment penalty mention.
    pub late_penalty: String,
    /// The buyer's auxiliary account in the ledger.
    pub aux_account: String,
}

impl Party {
    pub fn seller(s: &Settings) -> Party {
        Party {
            name: s.legal_name.clone(),
            kind: "business".into(),
            legal_form: s.legal_form.clone(),
            share_capital: s.share_capital.clone(),
            siren: s.siren.clone(),
            siret: s.siret.clone(),
            vat_number: s.vat_number.clone(),
            rcs: s.rcs.clone(),
            address: s.address.clone(),
            postcode: s.postcode.clone(),
            city: s.city.clone(),
            country: s.country.clone(),
            email: s.email.clone(),
            phone: s.phone.clone(),
            iban: s.iban.clone(),
            bic: s.bic.clone(),
            vat_regime: s.vat_regime.clone(),
            late_penalty: s.late_penalty.clone(),
            aux_account: String::new(),
        }
    }
    pub fn buyer(c: &Customer) -> Party {
        Party {
            name: c.name.clone(),
            kind: c.kind.clone(),
            siren: c.siren.clone(),
            siret: c.siret.clone(),
            vat_number: c.vat_number.clone(),
            address: c.address.clone(),
            postcode: c.postcode.clone(),
            city: c.city.clone(),
            country: c.country.clone(),
            email: c.email.clone(),
            aux_account: c.aux_account.clone(),
            ..Party::default()
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[schema(as = InvoiceLine)]
pub struct DocLine {
    pub position: i64,
    pub product_id: Option<String>,
    pub product_type: String,
    pub name: String,
    pub description: String,
    /// Thousandths: 1500 is 1.5.
    pub quantity_milli: i64,
    /// UN/ECE unit code (C62, HUR, DAY, MON…).
    pub unit_code: String,
    pub unit_price_cents: i64,
    /// Hundredths of a percent off the line.
    pub discount_bp: i64,
    pub net_cents: i64,
    pub vat_code: String,
    pub vat_category: String,
    /// The rate in force on the issue date, stored with the line.
    pub vat_rate_bp: i64,
    pub exemption_reason: Option<String>,
    pub revenue_account: String,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
}

/// VAT per category and rate, as printed and as exchanged (EN 16931 BG-23).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct VatLine {
    pub category: String,
    pub rate_bp: i64,
    pub basis_cents: i64,
    pub vat_cents: i64,
    pub exemption_reason: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = InvoicingDocument)]
pub struct Document {
    pub id: String,
    /// `quote`, `invoice` or `credit_note`.
    pub kind: String,
    pub series: String,
    /// Given at validation: `F2026-00042`.
    pub number: Option<String>,
    pub seq: Option<i64>,
    /// Invoices and credit notes: draft, validated, sent, partially_paid, paid, cancelled.
    /// Quotes: draft, sent, accepted, refused, expired, invoiced.
    pub status: String,
    pub customer_id: String,
    pub customer_name: String,
    pub issue_date: Option<String>,
    pub due_date: Option<String>,
    pub valid_until: Option<String>,
    pub delivery_date: Option<String>,
    pub period_start: Option<String>,
    pub period_end: Option<String>,
    pub currency: String,
    /// `fr` or `en`: the language the document is printed in.
    pub lang: String,
    /// `goods`, `services` or `mixed`.
    pub operation_category: String,
    pub buyer_reference: String,
    pub notes: String,
    pub net_cents: i64,
    pub vat_cents: i64,
    pub gross_cents: i64,
    pub paid_cents: i64,
    pub credited_cents: i64,
    /// What is still to pay: gross − paid − credited (never below zero).
    pub due_cents: i64,
    /// Past its due date and not settled.
    pub overdue: bool,
    pub reminder_level: i64,
    /// The quote an invoice comes from, the invoice a credit note credits.
    pub origin_id: Option<String>,
    /// The number and issue date of the origin (the invoice a credit note corrects).
    pub origin_number: Option<String>,
    pub origin_issue_date: Option<String>,
    /// Documents made from this one: the invoice of a quote, the credit notes of an invoice.
    pub derived_ids: Vec<String>,
    pub subscription_id: Option<String>,
    pub source_module: Option<String>,
    pub ledger_entry_id: Option<String>,
    /// The stored PDF (a core file), once the background job has made it.
    pub pdf_file_id: Option<String>,
    pub seller: Option<Party>,
    pub buyer: Option<Party>,
    pub lines: Vec<DocLine>,
    pub vat: Vec<VatLine>,
    /// Legal mentions printed on the document, in its language.
    pub mentions: Vec<String>,
    /// Each sending by email, with its delivery status.
    pub sends: Vec<crate::documents_send::Send>,
    /// RFC 3339.
    pub created_at: String,
    pub validated_at: Option<String>,
    pub sent_at: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InvoiceLineInput)]
pub struct LineInput {
    /// A catalogue product: its name, unit, price, VAT code and account are the defaults.
    #[serde(default)]
    pub product_id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Thousandths (1000 is one); default 1000. Positive.
    #[serde(default)]
    pub quantity_milli: Option<i64>,
    #[serde(default)]
    pub unit_code: Option<String>,
    #[serde(default)]
    pub unit_price_cents: Option<i64>,
    /// Hundredths of a percent off (1000 is 10 %).
    #[serde(default)]
    pub discount_bp: Option<i64>,
    #[serde(default)]
    pub vat_code: Option<String>,
    #[serde(default)]
    pub revenue_account: Option<String>,
    #[serde(default)]
    pub period_start: Option<String>,
    #[serde(default)]
    pub period_end: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = InvoicingDocumentInput)]
pub struct DocumentInput {
    /// `invoice` (default) or `quote`. Credit notes are made from an invoice.
    #[serde(default)]
    pub kind: Option<String>,
    pub customer_id: String,
    /// A numbering series of this kind; the default one when left out.
    #[serde(default)]
    pub series: Option<String>,
    /// `YYYY-MM-DD`; the day of validation when left out.
    #[serde(default)]
    pub issue_date: Option<String>,
    /// The customer's or organisation's terms after the issue date when left out.
    #[serde(default)]
    pub due_date: Option<String>,
    /// Quotes: the last day they can be accepted.
    #[serde(default)]
    pub valid_until: Option<String>,
    #[serde(default)]
    pub delivery_date: Option<String>,
    #[serde(default)]
    pub period_start: Option<String>,
    #[serde(default)]
    pub period_end: Option<String>,
    /// `fr` or `en`; the customer's language when left out.
    #[serde(default)]
    pub lang: Option<String>,
    /// `goods`, `services` or `mixed`; from the lines' product types when left out.
    #[serde(default)]
    pub operation_category: Option<String>,
    #[serde(default)]
    pub buyer_reference: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub lines: Vec<LineInput>,
}

// ---------- arithmetic (pure) ----------

/// `n / d` rounded half away from zero.
pub fn div_round(n: i128, d: i128) -> i64 {
    let q = (n.abs() + d / 2) / d;
    (if n < 0 { -q } else { q }) as i64
}

/// The unit price after the line's discount, rounded to the cent (EN 16931's
/// item net price).
pub fn net_unit_price(unit_price_cents: i64, discount_bp: i64) -> i64 {
    div_round(unit_price_cents as i128 * (10_000 - discount_bp) as i128, 10_000)
}

/// A line's net amount: quantity × net unit price, rounded to the cent, so
/// that the e-invoice's arithmetic (BR-LIN) holds exactly.
pub fn line_net(quantity_milli: i64, unit_price_cents: i64, discount_bp: i64) -> i64 {
    div_round(quantity_milli as i128 * net_unit_price(unit_price_cents, discount_bp) as i128, 1000)
}

/// VAT per category and rate, computed on each group's total (EN 16931:
/// the VAT of a breakdown is its basis times its rate), and the totals.
pub fn breakdown(lines: &[DocLine]) -> (Vec<VatLine>, i64, i64) {
    let mut groups: BTreeMap<(String, i64), (i64, Option<String>)> = BTreeMap::new();
    for l in lines {
        let g = groups.entry((l.vat_category.clone(), l.vat_rate_bp)).or_insert((0, None));
        g.0 += l.net_cents;
        if g.1.is_none() {
            g.1 = l.exemption_reason.clone();
        }
    }
    let vat: Vec<VatLine> = groups
        .into_iter()
        .map(|((category, rate_bp), (basis, reason))| VatLine {
            vat_cents: div_round(basis as i128 * rate_bp as i128, 10_000),
            category,
            rate_bp,
            basis_cents: basis,
            exemption_reason: reason,
        })
        .collect();
    let net = lines.iter().map(|l| l.net_cents).sum();
    let tax = vat.iter().map(|v| v.vat_cents).sum();
    (vat, net, tax)
}

fn category_of(lines: &[DocLine]) -> &'static str {
    let goods = lines.iter().filter(|l| l.product_type == "goods").count();
    if goods == 0 {
        "services"
    } else if goods == lines.len() {
        "goods"
    } else {
        "mixed"
    }
}

// ---------- reading ----------

const COLS: &str = "d.id, d.kind, d.series, d.number, d.seq, d.status, d.customer_id, c.name, d.seller_snapshot, \
    d.buyer_snapshot, d.issue_date, d.due_date, d.valid_until, d.delivery_date, d.period_start, d.period_end, \
    d.currency, d.lang, d.operation_category, d.buyer_reference, d.notes, d.net_cents, d.vat_cents, d.gross_cents, \
    d.paid_cents, d.credited_cents, d.origin_id, d.subscription_id, d.source_module, d.ledger_entry_id, \
    d.reminder_level, d.created_at, d.validated_at, d.sent_at, d.pdf_file_id";

const LINE_COLS: &str = "position, product_id, product_type, name, description, quantity_milli, unit_code, \
    unit_price_cents, discount_bp, net_cents, vat_code, vat_category, vat_rate_bp, exemption_reason, \
    revenue_account, period_start, period_end";

/// A stored document before its lines are attached.
pub(crate) struct Head {
    pub doc: Document,
}

fn head_from(r: &AnyRow, today: &str) -> Result<Head, sqlx::Error> {
    let snap = |i: usize| -> Result<Option<Party>, sqlx::Error> {
        let s: Option<String> = r.try_get(i)?;
        Ok(s.and_then(|s| serde_json::from_str(&s).ok()))
    };
    let kind: String = r.try_get(1)?;
    let mut status: String = r.try_get(5)?;
    let gross: i64 = r.try_get(23)?;
    let paid: i64 = r.try_get(24)?;
    let credited: i64 = r.try_get(25)?;
    let due_date: Option<String> = r.try_get(11)?;
    let valid_until: Option<String> = r.try_get(12)?;
    if kind == "quote" && status == "sent" && valid_until.as_deref().is_some_and(|v| v < today) {
        status = "expired".into();
    }
    let due_cents = (gross - paid - credited).max(0);
    let overdue = kind == "invoice"
        && matches!(status.as_str(), "validated" | "sent" | "partially_paid")
        && due_cents > 0
        && due_date.as_deref().is_some_and(|d| d < today);
    let ts = |i: usize| -> Result<Option<String>, sqlx::Error> {
        Ok(r.try_get::<Option<i64>, _>(i)?.map(|t| Timestamp(t).rfc3339()))
    };
    Ok(Head {
        doc: Document {
            id: r.try_get(0)?,
            kind,
            series: r.try_get(2)?,
            number: r.try_get(3)?,
            seq: r.try_get(4)?,
            status,
            customer_id: r.try_get(6)?,
            customer_name: r.try_get(7)?,
            seller: snap(8)?,
            buyer: snap(9)?,
            issue_date: r.try_get(10)?,
            due_date,
            valid_until,
            delivery_date: r.try_get(13)?,
            period_start: r.try_get(14)?,
            period_end: r.try_get(15)?,
            currency: r.try_get(16)?,
            lang: r.try_get(17)?,
            operation_category: r.try_get(18)?,
            buyer_reference: r.try_get(19)?,
            notes: r.try_get(20)?,
            net_cents: r.try_get(21)?,
            vat_cents: r.try_get(22)?,
            gross_cents: gross,
            paid_cents: paid,
            credited_cents: credited,
            due_cents,
            overdue,
            origin_id: r.try_get(26)?,
            subscription_id: r.try_get(27)?,
            source_module: r.try_get(28)?,
            ledger_entry_id: r.try_get(29)?,
            reminder_level: r.try_get(30)?,
            created_at: Timestamp(r.try_get(31)?).rfc3339(),
            validated_at: ts(32)?,
            sent_at: ts(33)?,
            pdf_file_id: r.try_get(34)?,
            derived_ids: Vec::new(),
            origin_number: None,
            origin_issue_date: None,
            lines: Vec::new(),
            vat: Vec::new(),
            mentions: Vec::new(),
            sends: Vec::new(),
        },
    })
}

fn line_from(r: &AnyRow) -> Result<DocLine, sqlx::Error> {
    Ok(DocLine {
        position: r.try_get(0)?,
        product_id: r.try_get(1)?,
        product_type: r.try_get(2)?,
        name: r.try_get(3)?,
        description: r.try_get(4)?,
        quantity_milli: r.try_get(5)?,
        unit_code: r.try_get(6)?,
        unit_price_cents: r.try_get(7)?,
        discount_bp: r.try_get(8)?,
        net_cents: r.try_get(9)?,
        vat_code: r.try_get(10)?,
        vat_category: r.try_get(11)?,
        vat_rate_bp: r.try_get(12)?,
        exemption_reason: r.try_get(13)?,
        revenue_account: r.try_get(14)?,
        period_start: r.try_get(15)?,
        period_end: r.try_get(16)?,
    })
}

/// Reads one document of the organisation with its lines, VAT breakdown,
/// derived documents and legal mentions.
pub async fn document_in(conn: &mut AnyConnection, org: OrgId, id: &str) -> CoreResult<Option<Document>> {
    let today = Day::today().iso();
    let r = sqlx::query(&format!(
        "SELECT {COLS} FROM inv_documents d JOIN inv_customers c ON c.id = d.customer_id \
         WHERE d.org_id = $1 AND d.id = $2"
    ))
    .bind(org.to_string())
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(r) = r else { return Ok(None) };
    let mut d = head_from(&r, &today)?.doc;
    let rows = sqlx::query(&format!("SELECT {LINE_COLS} FROM inv_lines WHERE document_id = $1 ORDER BY position"))
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    d.lines = rows.iter().map(line_from).collect::<Result<_, _>>()?;
    d.vat = breakdown(&d.lines).0;
    let derived = sqlx::query("SELECT id FROM inv_documents WHERE org_id = $1 AND origin_id = $2 ORDER BY id")
        .bind(org.to_string())
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    d.derived_ids = derived.iter().map(|r| r.try_get(0)).collect::<Result<_, _>>()?;
    if let Some(origin) = &d.origin_id {
        let o = sqlx::query("SELECT number, issue_date FROM inv_documents WHERE org_id = $1 AND id = $2")
            .bind(org.to_string())
            .bind(origin)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(o) = o {
            d.origin_number = o.try_get(0)?;
            d.origin_issue_date = o.try_get(1)?;
        }
    }
    d.mentions = crate::documents_mentions::mentions(&d);
    d.sends = crate::documents_send::sends_of(conn, id).await?;
    Ok(Some(d))
}

pub async fn get(db: &Db, cap: &CanRead, id: &str) -> CoreResult<Document> {
    let mut conn = db.pool().acquire().await?;
    document_in(&mut conn, cap.org(), id).await?.ok_or(CoreError::NotFound)
}

#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DocumentQuery {
    /// `quote`, `invoice` or `credit_note`.
    pub kind: Option<String>,
    pub status: Option<String>,
    pub customer_id: Option<String>,
    /// Issued on or after (`YYYY-MM-DD`).
    pub from: Option<String>,
    /// Issued on or before (`YYYY-MM-DD`).
    pub to: Option<String>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct DocumentTotals {
    pub count: i64,
    pub net_cents: i64,
    pub gross_cents: i64,
    pub due_cents: i64,
}

#[derive(Serialize, ToSchema)]
pub struct DocumentPage {
    /// Newest first; lines are left out (read one document for them).
    pub items: Vec<Document>,
    pub next_cursor: Option<String>,
    /// Totals of every document the filters keep, all pages together.
    pub totals: DocumentTotals,
}

/// A page of documents, newest first, with the totals of the whole filtered set.
pub async fn list(db: &Db, cap: &CanRead, q: &DocumentQuery) -> CoreResult<DocumentPage> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let mut e = Vec::new();
    let from = q.from.as_deref().filter(|s| !s.is_empty()).and_then(|s| day(s, "from", &mut e));
    let to = q.to.as_deref().filter(|s| !s.is_empty()).and_then(|s| day(s, "to", &mut e));
    let cursor: Option<String> = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => match catalogue::decode_cursor::<String>(c) {
            Some(id) => Some(id),
            None => {
                e.push(FieldError::new("cursor", "This cursor does not fit the list: start again without it."));
                None
            }
        },
    };
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    let kind = q.kind.clone().unwrap_or_default();
    let status = q.status.clone().unwrap_or_default();
    let customer = q.customer_id.clone().unwrap_or_default();
    let from = from.map(|d| d.iso()).unwrap_or_default();
    let to = to.map(|d| d.iso()).unwrap_or_default();
    let filter = "d.org_id = $1 AND ($2 = '' OR d.kind = $2) AND ($3 = '' OR d.status = $3) \
        AND ($4 = '' OR d.customer_id = $4) AND ($5 = '' OR d.issue_date >= $5) AND ($6 = '' OR d.issue_date <= $6)";
    let rows = sqlx::query(&format!(
        "SELECT {COLS} FROM inv_documents d JOIN inv_customers c ON c.id = d.customer_id \
         WHERE {filter} AND ($7 = '' OR d.id < $7) ORDER BY d.id DESC LIMIT $8"
    ))
    .bind(cap.org().to_string())
    .bind(&kind)
    .bind(&status)
    .bind(&customer)
    .bind(&from)
    .bind(&to)
    .bind(cursor.unwrap_or_default())
    .bind(limit + 1)
    .fetch_all(db.pool())
    .await?;
    let today = Day::today().iso();
    let mut items: Vec<Document> =
        rows.iter().map(|r| head_from(r, &today).map(|h| h.doc)).collect::<Result<_, _>>()?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|d| catalogue::encode_cursor(&d.id))
    } else {
        None
    };
    let t = sqlx::query(&format!(
        "SELECT COUNT(*), CAST(COALESCE(SUM(d.net_cents), 0) AS BIGINT), CAST(COALESCE(SUM(d.gross_cents), 0) AS BIGINT), \
         CAST(COALESCE(SUM(CASE WHEN d.kind = 'invoice' AND d.status IN ('validated', 'sent', 'partially_paid') \
         THEN d.gross_cents - d.paid_cents - d.credited_cents ELSE 0 END), 0) AS BIGINT) FROM inv_documents d WHERE {filter}"
    ))
    .bind(cap.org().to_string())
    .bind(&kind)
    .bind(&status)
    .bind(&customer)
    .bind(&from)
    .bind(&to)
    .fetch_one(db.pool())
    .await?;
    let totals = DocumentTotals {
        count: t.try_get(0)?,
        net_cents: t.try_get(1)?,
        gross_cents: t.try_get(2)?,
        due_cents: t.try_get(3)?,
    };
    Ok(DocumentPage { items, next_cursor, totals })
}

// ---------- drafts ----------

/// What the organisation's rules give for line resolution.
pub(crate) struct Context {
    pub settings: Settings,
    pub rates: Vec<VatRate>,
}

pub(crate) async fn context(conn: &mut AnyConnection, org: OrgId) -> CoreResult<Context> {
    Ok(Context { settings: catalogue::settings_in(conn, org).await?, rates: catalogue::all_rates(conn, org).await? })
}

/// Applies the VAT rate of `code` on `date` to a line; the franchise regime
/// makes every line exempt. Errors name `field`.
pub(crate) fn apply_rate(ctx: &Context, line: &mut DocLine, date: Day, field: &str) -> Result<(), FieldError> {
    if ctx.settings.vat_regime == "franchise" {
        line.vat_code = catalogue::FRANCHISE_CODE.into();
    }
    match catalogue::pick_rate(&ctx.rates, &line.vat_code, date) {
        Some(r) => {
            line.vat_category = r.category.clone();
            line.vat_rate_bp = r.rate_bp;
            line.exemption_reason = r.exemption_reason.clone();
            Ok(())
        }
        None if ctx.rates.iter().any(|r| r.code == line.vat_code) => {
            Err(FieldError::new(field, format!("The VAT code {} has no rate on {date}.", line.vat_code)))
        }
        None => Err(FieldError::new(field, format!("There is no VAT code {}.", line.vat_code))),
    }
}

/// Resolves typed lines against the catalogue and the rates on `date`.
pub(crate) async fn resolve_lines(
    conn: &mut AnyConnection,
    org: OrgId,
    ctx: &Context,
    input: &[LineInput],
    date: Day,
    errors: &mut Vec<FieldError>,
) -> CoreResult<Vec<DocLine>> {
    if input.len() > 1000 {
        errors.push(FieldError::new("lines", "A document has at most 1,000 lines."));
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for (i, l) in input.iter().enumerate() {
        let f = |n: &str| format!("lines[{i}].{n}");
        let product = match l.product_id.as_deref().filter(|p| !p.is_empty()) {
            None => None,
            Some(p) => match catalogue::product_in(conn, org, p).await? {
                Some(p) => Some(p),
                None => {
                    errors.push(FieldError::new(f("product_id"), "There is no such product in the catalogue."));
                    continue;
                }
            },
        };
        let name = l.name.clone().filter(|n| !n.trim().is_empty()).or(product.as_ref().map(|p| p.name.clone()));
        let name = text(name.as_deref().unwrap_or(""), &f("name"), 300, errors);
        if name.is_empty() {
            errors.push(FieldError::new(f("name"), "Name the line, or choose a product."));
        }
        let description = l.description.clone().or(product.as_ref().map(|p| p.description.clone())).unwrap_or_default();
        let description = text(&description, &f("description"), 2000, errors);
        let quantity = l.quantity_milli.unwrap_or(1000);
        if quantity <= 0 || quantity > 100_000_000 {
            errors.push(FieldError::new(
                f("quantity_milli"),
                "A quantity is positive, at most 100,000 (in thousandths: 1000 is one); to take something back, issue a credit note.",
            ));
        }
        let price = l.unit_price_cents.or(product.as_ref().map(|p| p.unit_price_cents));
        let price = match price {
            Some(p) if (0..=10_000_000_000).contains(&p) => p,
            Some(_) => {
                errors.push(FieldError::new(f("unit_price_cents"), "A unit price is a positive number of cents."));
                0
            }
            None => {
                errors.push(FieldError::new(f("unit_price_cents"), "Give a unit price, or choose a product."));
                0
            }
        };
        let discount = l.discount_bp.unwrap_or(0);
        if !(0..=10_000).contains(&discount) {
            errors.push(FieldError::new(f("discount_bp"), "A discount is from 0 to 10000 hundredths of a percent."));
        }
        let unit = l.unit_code.clone().or(product.as_ref().map(|p| p.unit_code.clone())).unwrap_or("C62".into());
        let unit = catalogue::check_unit(&unit, &f("unit_code"), errors);
        let vat_code =
            l.vat_code.clone().filter(|c| !c.trim().is_empty()).or(product.as_ref().map(|p| p.vat_code.clone()));
        let account = l
            .revenue_account
            .clone()
            .filter(|a| !a.trim().is_empty())
            .or(product.as_ref().and_then(|p| p.revenue_account.clone()))
            .unwrap_or_else(|| ctx.settings.revenue_account.clone());
        let account = catalogue::account(&account, &f("revenue_account"), errors);
        let period_start =
            l.period_start.as_deref().filter(|s| !s.is_empty()).and_then(|s| day(s, &f("period_start"), errors));
        let period_end =
            l.period_end.as_deref().filter(|s| !s.is_empty()).and_then(|s| day(s, &f("period_end"), errors));
        if let (Some(s), Some(e)) = (period_start, period_end) {
            if e < s {
                errors.push(FieldError::new(f("period_end"), "The period ends on or after its start."));
            }
        }
        let mut line = DocLine {
            position: i as i64 + 1,
            product_id: product.as_ref().map(|p| p.id.clone()),
            product_type: product.as_ref().map(|p| p.product_type.clone()).unwrap_or_else(|| "service".into()),
            name,
            description,
            quantity_milli: quantity,
            unit_code: unit,
            unit_price_cents: price,
            discount_bp: discount,
            net_cents: 0,
            vat_code: vat_code.clone().unwrap_or_default().trim().to_string(),
            vat_category: String::new(),
            vat_rate_bp: 0,
            exemption_reason: None,
            revenue_account: account,
            period_start: period_start.map(|d| d.iso()),
            period_end: period_end.map(|d| d.iso()),
        };
        if vat_code.is_none() && ctx.settings.vat_regime != "franchise" {
            errors.push(FieldError::new(f("vat_code"), "Give a VAT code (FR-20, E…), or choose a product."));
        } else if let Err(err) = apply_rate(ctx, &mut line, date, &f("vat_code")) {
            errors.push(err);
        }
        if (0..=10_000).contains(&discount) && quantity > 0 {
            line.net_cents = line_net(quantity, price, discount);
        }
        out.push(line);
    }
    Ok(out)
}

/// A checked draft, ready to store.
pub(crate) struct Draft {
    pub kind: String,
    pub series: String,
    pub customer: Customer,
    pub issue_date: Option<Day>,
    pub due_date: Option<Day>,
    pub valid_until: Option<Day>,
    pub delivery_date: Option<Day>,
    pub period_start: Option<Day>,
    pub period_end: Option<Day>,
    pub lang: String,
    pub operation_category: String,
    pub buyer_reference: String,
    pub notes: String,
    pub lines: Vec<DocLine>,
    pub origin_id: Option<String>,
    pub subscription_id: Option<String>,
    pub source_module: Option<String>,
    pub run_id: Option<String>,
}

pub(crate) async fn check_draft(
    conn: &mut AnyConnection,
    org: OrgId,
    ctx: &Context,
    input: &DocumentInput,
    kind: &str,
) -> CoreResult<Draft> {
    let mut e = Vec::new();
    let customer = match customers::customer_in(conn, org, input.customer_id.trim()).await? {
        Some(c) => Some(c),
        None => {
            e.push(FieldError::new("customer_id", "There is no such customer in this organisation."));
            None
        }
    };
    let series = match input.series.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => numbering::default_series(conn, org, kind).await?,
        Some(s) => {
            if numbering::series_kind(conn, org, s).await?.as_deref() != Some(kind) {
                e.push(FieldError::new("series", format!("There is no series {s} for this kind of document.")));
            }
            s.to_string()
        }
    };
    let opt_day = |v: &Option<String>, f: &str, e: &mut Vec<FieldError>| {
        v.as_deref().map(str::trim).filter(|s| !s.is_empty()).and_then(|s| day(s, f, e))
    };
    let issue_date = opt_day(&input.issue_date, "issue_date", &mut e);
    let due_date = opt_day(&input.due_date, "due_date", &mut e);
    let valid_until = opt_day(&input.valid_until, "valid_until", &mut e);
    let delivery_date = opt_day(&input.delivery_date, "delivery_date", &mut e);
    let period_start = opt_day(&input.period_start, "period_start", &mut e);
    let period_end = opt_day(&input.period_end, "period_end", &mut e);
    if let (Some(i), Some(d)) = (issue_date, due_date) {
        if d < i {
            e.push(FieldError::new("due_date", "The due date is on or after the issue date."));
        }
    }
    if let (Some(s), Some(t)) = (period_start, period_end) {
        if t < s {
            e.push(FieldError::new("period_end", "The period ends on or after its start."));
        }
    }
    let lang = input
        .lang
        .clone()
        .filter(|l| !l.trim().is_empty())
        .or(customer.as_ref().map(|c| c.lang.clone()))
        .unwrap_or("fr".into());
    if lang != "fr" && lang != "en" {
        e.push(FieldError::new("lang", "Choose `fr` or `en`."));
    }
    let date = issue_date.unwrap_or_else(Day::today);
    let lines = resolve_lines(conn, org, ctx, &input.lines, date, &mut e).await?;
    let operation_category = match input.operation_category.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => category_of(&lines).to_string(),
        Some(c @ ("goods" | "services" | "mixed")) => c.to_string(),
        Some(_) => {
            e.push(FieldError::new("operation_category", "Choose goods, services or mixed."));
            String::new()
        }
    };
    let buyer_reference = text(input.buyer_reference.as_deref().unwrap_or(""), "buyer_reference", 100, &mut e);
    let notes = text(input.notes.as_deref().unwrap_or(""), "notes", 4000, &mut e);
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    Ok(Draft {
        kind: kind.to_string(),
        series,
        customer: customer.expect("checked"),
        issue_date,
        due_date,
        valid_until,
        delivery_date,
        period_start,
        period_end,
        lang,
        operation_category,
        buyer_reference,
        notes,
        lines,
        origin_id: None,
        subscription_id: None,
        source_module: None,
        run_id: None,
    })
}

async fn insert_lines(conn: &mut AnyConnection, id: &str, lines: &[DocLine]) -> CoreResult<()> {
    sqlx::query("DELETE FROM inv_lines WHERE document_id = $1").bind(id).execute(&mut *conn).await?;
    for chunk in lines.chunks(50) {
        let mut sql = format!("INSERT INTO inv_lines (document_id, {LINE_COLS}) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for k in 0..18 {
                if k > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("${}", i * 18 + k + 1));
            }
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for l in chunk {
            q = q
                .bind(id)
                .bind(l.position)
                .bind(&l.product_id)
                .bind(&l.product_type)
                .bind(&l.name)
                .bind(&l.description)
                .bind(l.quantity_milli)
                .bind(&l.unit_code)
                .bind(l.unit_price_cents)
                .bind(l.discount_bp)
                .bind(l.net_cents)
                .bind(&l.vat_code)
                .bind(&l.vat_category)
                .bind(l.vat_rate_bp)
                .bind(&l.exemption_reason)
                .bind(&l.revenue_account)
                .bind(&l.period_start)
                .bind(&l.period_end);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Stores a new draft in the caller's transaction; returns its id.
pub(crate) async fn insert_draft(
    conn: &mut AnyConnection,
    org: OrgId,
    currency: &str,
    d: &Draft,
    created_by: Option<String>,
) -> CoreResult<String> {
    let id = uuid::Uuid::now_v7().to_string();
    let (_, net, vat) = breakdown(&d.lines);
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO inv_documents (id, org_id, kind, series, status, customer_id, issue_date, due_date, valid_until, \
         delivery_date, period_start, period_end, currency, lang, operation_category, buyer_reference, notes, \
         net_cents, vat_cents, gross_cents, origin_id, subscription_id, source_module, run_id, created_by, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, 'draft', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
         $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $25)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(&d.kind)
    .bind(&d.series)
    .bind(&d.customer.id)
    .bind(d.issue_date.map(|x| x.iso()))
    .bind(d.due_date.map(|x| x.iso()))
    .bind(d.valid_until.map(|x| x.iso()))
    .bind(d.delivery_date.map(|x| x.iso()))
    .bind(d.period_start.map(|x| x.iso()))
    .bind(d.period_end.map(|x| x.iso()))
    .bind(currency)
    .bind(&d.lang)
    .bind(&d.operation_category)
    .bind(&d.buyer_reference)
    .bind(&d.notes)
    .bind(net)
    .bind(vat)
    .bind(net + vat)
    .bind(&d.origin_id)
    .bind(&d.subscription_id)
    .bind(&d.source_module)
    .bind(&d.run_id)
    .bind(created_by)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    insert_lines(conn, &id, &d.lines).await?;
    Ok(id)
}

pub(crate) fn record_ref(org_slug: &str, d: &Document) -> RecordRef {
    record_ref_of(org_slug, &d.id, &d.kind, d.number.as_deref())
}

pub(crate) fn record_ref_of(org_slug: &str, id: &str, kind: &str, number: Option<&str>) -> RecordRef {
    let what = match kind {
        "quote" => "Quote",
        "credit_note" => "Credit note",
        _ => "Invoice",
    };
    RecordRef {
        entity_type: ENTITY.into(),
        entity_id: id.to_string(),
        title: format!("{what} {}", number.unwrap_or("(draft)")),
        path: format!("/o/{org_slug}/invoicing/documents/{id}"),
    }
}

fn kind_of(input: &DocumentInput) -> CoreResult<String> {
    match input.kind.as_deref().map(str::trim).unwrap_or("invoice") {
        k @ ("invoice" | "quote") => Ok(k.to_string()),
        "credit_note" => Err(CoreError::validation(
            "kind",
            "A credit note is made from a validated invoice (POST …/documents/{id}/credit-notes).",
        )),
        _ => Err(CoreError::validation("kind", "Choose invoice or quote.")),
    }
}

/// Creates a draft quote or invoice.
pub async fn create(db: &Db, who: &Who, cap: &CanWrite, org_slug: &str, input: DocumentInput) -> CoreResult<Document> {
    let org = cap.org();
    let kind = kind_of(&input)?;
    let mut tx = db.begin().await?;
    let ctx = context(tx.conn(), org).await?;
    let draft = check_draft(tx.conn(), org, &ctx, &input, &kind).await?;
    let id = insert_draft(tx.conn(), org, &ctx.settings.currency, &draft, who.account.map(|a| a.to_string())).await?;
    let d = document_in(tx.conn(), org, &id).await?.ok_or(CoreError::NotFound)?;
    audited(&mut tx, who, org, "invoicing.document.create", ENTITY, &id, None, Some(summary(&d))).await?;
    timeline::event(&mut tx, who, org, &record_ref(org_slug, &d), "Draft created.", serde_json::json!({})).await?;
    tx.commit().await?;
    Ok(d)
}

pub(crate) fn summary(d: &Document) -> serde_json::Value {
    serde_json::json!({
        "kind": d.kind, "number": d.number, "status": d.status, "customer_id": d.customer_id,
        "issue_date": d.issue_date, "net_cents": d.net_cents, "vat_cents": d.vat_cents, "gross_cents": d.gross_cents,
        "lines": d.lines.iter().map(|l| serde_json::json!([l.name, l.quantity_milli, l.unit_price_cents, l.vat_code, l.vat_rate_bp, l.net_cents])).collect::<Vec<_>>(),
    })
}

fn frozen(d: &Document) -> CoreError {
    CoreError::Conflict {
        field: None,
        message: format!(
            "{} is {}: it cannot be changed any more{}.",
            d.number.as_deref().unwrap_or("This document"),
            d.status,
            if d.kind == "invoice" { "; issue a credit note to correct it" } else { "" }
        ),
    }
}

/// Replaces a draft's content. A validated document answers 409.
pub async fn update(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    org_slug: &str,
    id: &str,
    input: DocumentInput,
) -> CoreResult<Document> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = document_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    if before.status != "draft" {
        return Err(frozen(&before));
    }
    let kind = if before.kind == "credit_note" { "credit_note".to_string() } else { kind_of(&input)? };
    if kind != before.kind {
        return Err(CoreError::validation("kind", "A draft keeps its kind; create another document."));
    }
    let ctx = context(tx.conn(), org).await?;
    let d = check_draft(tx.conn(), org, &ctx, &input, &kind).await?;
    if before.kind == "credit_note" && d.customer.id != before.customer_id {
        return Err(CoreError::validation("customer_id", "A credit note is for the customer of its invoice."));
    }
    let (_, net, vat) = breakdown(&d.lines);
    sqlx::query(
        "UPDATE inv_documents SET series = $1, customer_id = $2, issue_date = $3, due_date = $4, valid_until = $5, \
         delivery_date = $6, period_start = $7, period_end = $8, lang = $9, operation_category = $10, \
         buyer_reference = $11, notes = $12, net_cents = $13, vat_cents = $14, gross_cents = $15, updated_at = $16 \
         WHERE org_id = $17 AND id = $18 AND status = 'draft'",
    )
    .bind(&d.series)
    .bind(&d.customer.id)
    .bind(d.issue_date.map(|x| x.iso()))
    .bind(d.due_date.map(|x| x.iso()))
    .bind(d.valid_until.map(|x| x.iso()))
    .bind(d.delivery_date.map(|x| x.iso()))
    .bind(d.period_start.map(|x| x.iso()))
    .bind(d.period_end.map(|x| x.iso()))
    .bind(&d.lang)
    .bind(&d.operation_category)
    .bind(&d.buyer_reference)
    .bind(&d.notes)
    .bind(net)
    .bind(vat)
    .bind(net + vat)
    .bind(Timestamp::now().0)
    .bind(org.to_string())
    .bind(id)
    .execute(tx.conn())
    .await?;
    insert_lines(tx.conn(), id, &d.lines).await?;
    let after = document_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    audited(&mut tx, who, org, "invoicing.document.update", ENTITY, id, Some(summary(&before)), Some(summary(&after)))
        .await?;
    let _ = org_slug;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a draft (a validated document is never deleted).
pub async fn delete(db: &Db, who: &Who, cap: &CanWrite, id: &str) -> CoreResult<()> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = document_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    if before.status != "draft" {
        return Err(frozen(&before));
    }
    sqlx::query("UPDATE inv_pending_items SET document_id = NULL WHERE org_id = $1 AND document_id = $2")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    sqlx::query("DELETE FROM inv_documents WHERE org_id = $1 AND id = $2 AND status = 'draft'")
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    timeline::forget(&mut tx, org, ENTITY, id).await?;
    audited(&mut tx, who, org, "invoicing.document.delete", ENTITY, id, Some(summary(&before)), None).await?;
    tx.commit().await
}

// ---------- validation ----------

/// The legal checks of a document about to be issued. Field names say what
/// to fix: `seller.siren` (the invoicing settings), `buyer.address` (the
/// customer), `lines`, `lines[2].exemption_reason`.
pub fn legal_checks(kind: &str, seller: &Party, buyer: &Party, lines: &[DocLine]) -> Vec<FieldError> {
    let mut e = Vec::new();
    let mut need = |v: &str, field: &str, what: &str| {
        if v.trim().is_empty() {
            e.push(FieldError::new(field, what.to_string()));
        }
    };
    need(&seller.name, "seller.name", "Give the organisation's legal name in the invoicing settings.");
    need(&buyer.name, "buyer.name", "Give the customer's name.");
    if kind != "quote" {
        need(&seller.address, "seller.address", "Give the organisation's address in the invoicing settings.");
        need(&seller.postcode, "seller.postcode", "Give the organisation's postcode in the invoicing settings.");
        need(&seller.city, "seller.city", "Give the organisation's city in the invoicing settings.");
        if seller.country == "FR" {
            need(&seller.siren, "seller.siren", "Give the organisation's SIREN in the invoicing settings.");
        }
        need(&buyer.address, "buyer.address", "Give the customer's billing address.");
        need(&buyer.postcode, "buyer.postcode", "Give the customer's postcode.");
        need(&buyer.city, "buyer.city", "Give the customer's city.");
        if buyer.kind == "business" && buyer.country == "FR" {
            need(&buyer.siren, "buyer.siren", "A French business customer's invoice carries its SIREN.");
        }
    }
    if lines.is_empty() {
        e.push(FieldError::new("lines", "A document has at least one line."));
    }
    // EN 16931: every VAT category but O needs the seller's VAT number on an
    // e-invoice; reverse charge and intra-community supplies the buyer's.
    if kind != "quote" {
        if lines.iter().any(|l| l.vat_category != "O") && seller.vat_number.trim().is_empty() {
            e.push(FieldError::new(
                "seller.vat_number",
                "Give the organisation's VAT number in the invoicing settings (required on e-invoices).",
            ));
        }
        if lines.iter().any(|l| l.vat_category == "O") && lines.iter().any(|l| l.vat_category != "O") {
            e.push(FieldError::new(
                "lines",
                "Lines outside the scope of VAT (O) cannot be mixed with others on one document.",
            ));
        }
        if lines.iter().any(|l| l.vat_category == "AE" || l.vat_category == "K") && buyer.vat_number.trim().is_empty() {
            e.push(FieldError::new(
                "buyer.vat_number",
                "Reverse charge and intra-community supplies need the customer's VAT number.",
            ));
        }
    }
    for (i, l) in lines.iter().enumerate() {
        if l.vat_category != "S" && l.exemption_reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
            e.push(FieldError::new(
                format!("lines[{i}].exemption_reason"),
                format!("The VAT code {} needs the legal mention of its exemption.", l.vat_code),
            ));
        }
    }
    e
}

/// What a validation changes, computed before anything is written.
pub(crate) struct Frozen {
    pub id: String,
    pub kind: String,
    pub series: String,
    pub issue: Day,
    pub due: Option<Day>,
    pub seller: Party,
    pub buyer: Party,
    pub lines: Vec<DocLine>,
    pub net: i64,
    pub vat: i64,
    pub gross: i64,
    pub origin_id: Option<String>,
    pub payment_terms_days: i64,
}

/// Prepares a draft's validation on `issue` (the lines' rates of that day,
/// the parties, the totals and the legal checks), without writing.
pub(crate) fn freeze(ctx: &Context, d: &Document, customer: &Customer, issue: Day) -> Result<Frozen, Vec<FieldError>> {
    freeze_parts(
        ctx,
        Parts {
            id: d.id.clone(),
            kind: d.kind.clone(),
            series: d.series.clone(),
            lines: d.lines.clone(),
            due_date: d.due_date.as_deref().and_then(|s| Day::parse(s).ok()),
            origin_id: d.origin_id.clone(),
        },
        customer,
        issue,
    )
}

/// What a document is made of, for [`freeze_parts`].
pub(crate) struct Parts {
    pub id: String,
    pub kind: String,
    pub series: String,
    pub lines: Vec<DocLine>,
    pub due_date: Option<Day>,
    pub origin_id: Option<String>,
}

pub(crate) fn freeze_parts(
    ctx: &Context,
    d: Parts,
    customer: &Customer,
    issue: Day,
) -> Result<Frozen, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut lines = d.lines;
    for (i, l) in lines.iter_mut().enumerate() {
        if let Err(e) = apply_rate(ctx, l, issue, &format!("lines[{i}].vat_code")) {
            errors.push(e);
        }
        l.net_cents = line_net(l.quantity_milli, l.unit_price_cents, l.discount_bp);
    }
    let seller = Party::seller(&ctx.settings);
    let buyer = Party::buyer(customer);
    errors.extend(legal_checks(&d.kind, &seller, &buyer, &lines));
    let (_, net, vat) = breakdown(&lines);
    let terms = customer.payment_terms_days.unwrap_or(ctx.settings.payment_terms_days);
    let due = match (&d.kind[..], d.due_date) {
        ("quote", _) => None,
        (_, Some(x)) => Some(x),
        (_, None) => Some(Day(issue.0 + time::Duration::days(terms))),
    };
    if let Some(x) = due {
        if x < issue {
            errors.push(FieldError::new("due_date", "The due date is on or after the issue date."));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Frozen {
        id: d.id,
        kind: d.kind,
        series: d.series,
        issue,
        due,
        seller,
        buyer,
        lines,
        net,
        vat,
        gross: net + vat,
        origin_id: d.origin_id,
        payment_terms_days: terms,
    })
}

/// Writes a frozen document with its number, in the caller's transaction.
pub(crate) async fn write_frozen(
    conn: &mut AnyConnection,
    org: OrgId,
    f: &Frozen,
    seq: i64,
    number: &str,
    entry_id: Option<&str>,
    now: i64,
) -> CoreResult<()> {
    let status = if f.kind == "quote" { "sent" } else { "validated" };
    sqlx::query(
        "UPDATE inv_documents SET status = $1, number = $2, seq = $3, seller_snapshot = $4, buyer_snapshot = $5, \
         issue_date = $6, due_date = $7, net_cents = $8, vat_cents = $9, gross_cents = $10, ledger_entry_id = $11, \
         payment_terms_days = $12, validated_at = $13, updated_at = $13, sent_at = CASE WHEN $1 = 'sent' THEN $13 ELSE NULL END \
         WHERE org_id = $14 AND id = $15 AND status = 'draft'",
    )
    .bind(status)
    .bind(number)
    .bind(seq)
    .bind(serde_json::to_string(&f.seller).unwrap_or_default())
    .bind(serde_json::to_string(&f.buyer).unwrap_or_default())
    .bind(f.issue.iso())
    .bind(f.due.map(|d| d.iso()))
    .bind(f.net)
    .bind(f.vat)
    .bind(f.gross)
    .bind(entry_id)
    .bind(f.payment_terms_days)
    .bind(now)
    .bind(org.to_string())
    .bind(&f.id)
    .execute(&mut *conn)
    .await?;
    insert_lines(conn, &f.id, &f.lines).await
}

/// An invoice issued by a billing run, as it will be stored and printed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn issued_invoice(
    f: &Frozen,
    seq: i64,
    number: &str,
    customer: &Customer,
    currency: &str,
    operation_category: &str,
    period: (Option<String>, Option<String>),
    source_module: &str,
    now: i64,
) -> Document {
    let mut d = Document {
        id: f.id.clone(),
        kind: "invoice".into(),
        series: f.series.clone(),
        number: Some(number.to_string()),
        seq: Some(seq),
        status: "validated".into(),
        customer_id: customer.id.clone(),
        customer_name: customer.name.clone(),
        issue_date: Some(f.issue.iso()),
        due_date: f.due.map(|d| d.iso()),
        valid_until: None,
        delivery_date: None,
        period_start: period.0,
        period_end: period.1,
        currency: currency.to_string(),
        lang: customer.lang.clone(),
        operation_category: operation_category.to_string(),
        buyer_reference: String::new(),
        notes: String::new(),
        net_cents: f.net,
        vat_cents: f.vat,
        gross_cents: f.gross,
        paid_cents: 0,
        credited_cents: 0,
        due_cents: f.gross.max(0),
        overdue: false,
        reminder_level: 0,
        origin_id: None,
        origin_number: None,
        origin_issue_date: None,
        derived_ids: Vec::new(),
        subscription_id: None,
        source_module: Some(source_module.to_string()),
        ledger_entry_id: None,
        pdf_file_id: None,
        seller: Some(f.seller.clone()),
        buyer: Some(f.buyer.clone()),
        lines: f.lines.clone(),
        vat: breakdown(&f.lines).0,
        mentions: Vec::new(),
        sends: Vec::new(),
        created_at: Timestamp(now).rfc3339(),
        validated_at: Some(Timestamp(now).rfc3339()),
        sent_at: None,
    };
    d.mentions = crate::documents_mentions::mentions(&d);
    d
}

/// Stores issued invoices and their lines in a few multi-row statements.
pub(crate) async fn insert_issued(
    conn: &mut AnyConnection,
    org: OrgId,
    run_id: Option<&str>,
    docs: &[&Document],
    payment_terms_days: &[i64],
    now: i64,
) -> CoreResult<()> {
    const COLS_N: usize = 27;
    for (n, chunk) in docs.chunks(40).enumerate() {
        let mut sql = String::from(
            "INSERT INTO inv_documents (id, org_id, kind, series, number, seq, status, customer_id, seller_snapshot, \
             buyer_snapshot, issue_date, due_date, period_start, period_end, currency, lang, operation_category, \
             net_cents, vat_cents, gross_cents, ledger_entry_id, source_module, run_id, created_at, updated_at, \
             validated_at, payment_terms_days) VALUES ",
        );
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let cols: Vec<String> = (1..=COLS_N).map(|k| format!("${}", i * COLS_N + k)).collect();
            sql.push('(');
            sql.push_str(&cols.join(","));
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for (k, d) in chunk.iter().enumerate() {
            q = q
                .bind(&d.id)
                .bind(org.to_string())
                .bind(&d.kind)
                .bind(&d.series)
                .bind(&d.number)
                .bind(d.seq)
                .bind(&d.status)
                .bind(&d.customer_id)
                .bind(serde_json::to_string(&d.seller).unwrap_or_default())
                .bind(serde_json::to_string(&d.buyer).unwrap_or_default())
                .bind(&d.issue_date)
                .bind(&d.due_date)
                .bind(&d.period_start)
                .bind(&d.period_end)
                .bind(&d.currency)
                .bind(&d.lang)
                .bind(&d.operation_category)
                .bind(d.net_cents)
                .bind(d.vat_cents)
                .bind(d.gross_cents)
                .bind(&d.ledger_entry_id)
                .bind(&d.source_module)
                .bind(run_id)
                .bind(now)
                .bind(now)
                .bind(now)
                .bind(payment_terms_days.get(n * 40 + k).copied().unwrap_or(0));
        }
        q.execute(&mut *conn).await?;
    }
    let all: Vec<(&str, &DocLine)> =
        docs.iter().flat_map(|d| d.lines.iter().map(move |l| (d.id.as_str(), l))).collect();
    for chunk in all.chunks(50) {
        let mut sql = format!("INSERT INTO inv_lines (document_id, {LINE_COLS}) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            let cols: Vec<String> = (1..=18).map(|k| format!("${}", i * 18 + k)).collect();
            sql.push('(');
            sql.push_str(&cols.join(","));
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for (id, l) in chunk {
            q = q
                .bind(*id)
                .bind(l.position)
                .bind(&l.product_id)
                .bind(&l.product_type)
                .bind(&l.name)
                .bind(&l.description)
                .bind(l.quantity_milli)
                .bind(&l.unit_code)
                .bind(l.unit_price_cents)
                .bind(l.discount_bp)
                .bind(l.net_cents)
                .bind(&l.vat_code)
                .bind(&l.vat_category)
                .bind(l.vat_rate_bp)
                .bind(&l.exemption_reason)
                .bind(&l.revenue_account)
                .bind(&l.period_start)
                .bind(&l.period_end);
        }
        q.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The last issue date in a series: numbers follow the dates.
pub(crate) async fn last_issue(conn: &mut AnyConnection, org: OrgId, series: &str) -> CoreResult<Option<String>> {
    let r = sqlx::query(
        "SELECT MAX(issue_date) FROM inv_documents WHERE org_id = $1 AND series = $2 AND number IS NOT NULL",
    )
    .bind(org.to_string())
    .bind(series)
    .fetch_one(&mut *conn)
    .await?;
    Ok(r.try_get(0)?)
}

/// Checks a credit note against what is left to credit on its invoice.
async fn credit_room(conn: &mut AnyConnection, org: OrgId, f: &Frozen) -> CoreResult<Option<String>> {
    let Some(origin) = &f.origin_id else {
        return Err(CoreError::validation("origin_id", "A credit note credits a validated invoice."));
    };
    let r = sqlx::query(
        "SELECT status, gross_cents, credited_cents, number FROM inv_documents WHERE org_id = $1 AND id = $2 AND kind = 'invoice'",
    )
    .bind(org.to_string())
    .bind(origin)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or(CoreError::NotFound)?;
    let status: String = r.try_get(0)?;
    let gross: i64 = r.try_get(1)?;
    let credited: i64 = r.try_get(2)?;
    if status == "draft" {
        return Err(CoreError::Conflict { field: None, message: "The invoice to credit is still a draft.".into() });
    }
    if f.gross > gross - credited {
        return Err(CoreError::Validation(vec![FieldError::new(
            "lines",
            format!(
                "This credit note ({}) is more than what is left to credit on the invoice ({}).",
                money(f.gross),
                money(gross - credited)
            ),
        )]));
    }
    Ok(r.try_get(3)?)
}

pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", cents.abs() / 100, cents.abs() % 100)
}

pub(crate) fn ledger_fields(e: shrooms_accounting::error::AcctError) -> CoreError {
    match e {
        shrooms_accounting::error::AcctError::Invalid(v) => CoreError::Validation(
            v.into_iter().map(|f| FieldError::new(format!("ledger.{}", f.field), f.message)).collect(),
        ),
        e => e.into(),
    }
}

/// Validates a draft: number, frozen parties and lines, totals, legal
/// checks and (invoices, credit notes) the validated ledger entry, in one
/// durable transaction. On any error nothing is written and the number is
/// not used.
pub async fn validate(st: &AppState, who: &Who, cap: &CanWrite, org_slug: &str, id: &str) -> CoreResult<Document> {
    let org = cap.org();
    let mut tx = st.db.begin_durable().await?;
    let d = document_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    if d.status != "draft" {
        return Err(frozen(&d));
    }
    let ctx = context(tx.conn(), org).await?;
    let customer = customers::customer_in(tx.conn(), org, &d.customer_id).await?.ok_or(CoreError::NotFound)?;
    let issue = match d.issue_date.as_deref() {
        Some(s) => Day::parse(s).map_err(|m| CoreError::validation("issue_date", m))?,
        None => Day::today(),
    };
    let f = freeze(&ctx, &d, &customer, issue).map_err(CoreError::Validation)?;
    if f.lines.iter().any(|l| l.vat_category == "K") && d.delivery_date.is_none() && d.period_start.is_none() {
        return Err(CoreError::validation(
            "delivery_date",
            "An intra-community supply needs its delivery date or the period it covers.",
        ));
    }
    if let Some(last) = last_issue(tx.conn(), org, &f.series).await? {
        if f.issue.iso() < last {
            return Err(CoreError::validation(
                "issue_date",
                &format!("Numbers follow dates: the series {} already has a document issued on {last}.", f.series),
            ));
        }
    }
    let origin_number = if f.kind == "credit_note" { credit_room(tx.conn(), org, &f).await? } else { None };
    let (seq, prefix) = numbering::take_numbers(tx.conn(), org, &f.series, 1).await?;
    let number = numbering::format_number(&prefix, ctx.settings.number_with_year, f.issue, seq);
    let entry_id = if f.kind != "quote" && f.gross != 0 {
        let entry = posting::entry_for(&ctx, &f, &number, origin_number.as_deref());
        let posted = shrooms_accounting::service::post_entry(&mut tx, who, org, MODULE, entry, true)
            .await
            .map_err(ledger_fields)?;
        Some(posted.id)
    } else {
        None
    };
    let now = Timestamp::now().0;
    write_frozen(tx.conn(), org, &f, seq, &number, entry_id.as_deref(), now).await?;
    if f.kind == "quote" && d.valid_until.is_none() {
        let until = Day(f.issue.0 + time::Duration::days(ctx.settings.quote_validity_days));
        sqlx::query("UPDATE inv_documents SET valid_until = $1 WHERE org_id = $2 AND id = $3")
            .bind(until.iso())
            .bind(org.to_string())
            .bind(id)
            .execute(tx.conn())
            .await?;
    }
    if f.kind == "credit_note" {
        if let Some(origin) = &f.origin_id {
            sqlx::query(
                "UPDATE inv_documents SET credited_cents = credited_cents + $1, updated_at = $2 WHERE org_id = $3 AND id = $4",
            )
            .bind(f.gross)
            .bind(now)
            .bind(org.to_string())
            .bind(origin)
            .execute(tx.conn())
            .await?;
            let r = sqlx::query("SELECT kind, number, status FROM inv_documents WHERE org_id = $1 AND id = $2")
                .bind(org.to_string())
                .bind(origin)
                .fetch_one(tx.conn())
                .await?;
            let before: String = r.try_get(2)?;
            // `settle`: a fully credited invoice also lifts what its non-payment suspended.
            if let Some(next) = settlement::settle(st, &mut tx, who, org, origin).await? {
                let rr = record_ref_of(org_slug, origin, "invoice", r.try_get::<Option<String>, _>(1)?.as_deref());
                timeline::status_change(
                    st,
                    &mut tx,
                    who,
                    org,
                    &rr,
                    Some(&before),
                    &next,
                    &format!("Credit note {number} issued ({}).", money(f.gross)),
                )
                .await?;
            }
        }
    }
    crate::documents_files::request_pdf(&mut tx, org, id).await?;
    let after = document_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    audited(&mut tx, who, org, "invoicing.document.validate", ENTITY, id, Some(summary(&d)), Some(summary(&after)))
        .await?;
    timeline::status_change(
        st,
        &mut tx,
        who,
        org,
        &record_ref(org_slug, &after),
        Some("draft"),
        &after.status,
        &format!("Validated as {number}."),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

// ---------- quotes ----------

async fn set_quote_status(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    org_slug: &str,
    id: &str,
    to: &str,
) -> CoreResult<Document> {
    let org = cap.org();
    let mut tx = st.db.begin().await?;
    let d = document_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    if d.kind != "quote" {
        return Err(CoreError::Conflict { field: None, message: "Only a quote is accepted or refused.".into() });
    }
    if d.status != "sent" {
        return Err(CoreError::Conflict {
            field: None,
            message: format!("This quote is {}: only a sent quote is accepted or refused.", d.status),
        });
    }
    sqlx::query("UPDATE inv_documents SET status = $1, updated_at = $2 WHERE org_id = $3 AND id = $4")
        .bind(to)
        .bind(Timestamp::now().0)
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let action = if to == "accepted" { "invoicing.quote.accept" } else { "invoicing.quote.refuse" };
    audited(
        &mut tx,
        who,
        org,
        action,
        ENTITY,
        id,
        Some(serde_json::json!({"status": d.status})),
        Some(serde_json::json!({"status": to})),
    )
    .await?;
    timeline::status_change(st, &mut tx, who, org, &record_ref(org_slug, &d), Some("sent"), to, "").await?;
    let after = document_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    tx.commit().await?;
    Ok(after)
}

pub async fn accept(st: &AppState, who: &Who, cap: &CanWrite, org_slug: &str, id: &str) -> CoreResult<Document> {
    set_quote_status(st, who, cap, org_slug, id, "accepted").await
}

pub async fn refuse(st: &AppState, who: &Who, cap: &CanWrite, org_slug: &str, id: &str) -> CoreResult<Document> {
    set_quote_status(st, who, cap, org_slug, id, "refused").await
}

/// Turns an accepted quote into a draft invoice with the same lines; the
/// quote becomes `invoiced` and each points to the other.
pub async fn convert(st: &AppState, who: &Who, cap: &CanWrite, org_slug: &str, id: &str) -> CoreResult<Document> {
    let org = cap.org();
    let mut tx = st.db.begin().await?;
    let q = document_in(tx.conn(), org, id).await?.ok_or(CoreError::NotFound)?;
    if q.kind != "quote" || q.status != "accepted" {
        return Err(CoreError::Conflict {
            field: None,
            message: format!("Only an accepted quote is converted to an invoice; this one is {}.", q.status),
        });
    }
    let ctx = context(tx.conn(), org).await?;
    let customer = customers::customer_in(tx.conn(), org, &q.customer_id).await?.ok_or(CoreError::NotFound)?;
    let series = numbering::default_series(tx.conn(), org, "invoice").await?;
    let draft = Draft {
        kind: "invoice".into(),
        series,
        customer,
        issue_date: None,
        due_date: None,
        valid_until: None,
        delivery_date: q.delivery_date.as_deref().and_then(|s| Day::parse(s).ok()),
        period_start: q.period_start.as_deref().and_then(|s| Day::parse(s).ok()),
        period_end: q.period_end.as_deref().and_then(|s| Day::parse(s).ok()),
        lang: q.lang.clone(),
        operation_category: q.operation_category.clone(),
        buyer_reference: q.buyer_reference.clone(),
        notes: q.notes.clone(),
        lines: q.lines.clone(),
        origin_id: Some(q.id.clone()),
        subscription_id: None,
        source_module: None,
        run_id: None,
    };
    let inv_id =
        insert_draft(tx.conn(), org, &ctx.settings.currency, &draft, who.account.map(|a| a.to_string())).await?;
    sqlx::query("UPDATE inv_documents SET status = 'invoiced', updated_at = $1 WHERE org_id = $2 AND id = $3")
        .bind(Timestamp::now().0)
        .bind(org.to_string())
        .bind(id)
        .execute(tx.conn())
        .await?;
    let inv = document_in(tx.conn(), org, &inv_id).await?.ok_or(CoreError::NotFound)?;
    audited(
        &mut tx,
        who,
        org,
        "invoicing.quote.convert",
        ENTITY,
        id,
        None,
        Some(serde_json::json!({"invoice_id": inv_id})),
    )
    .await?;
    timeline::status_change(
        st,
        &mut tx,
        who,
        org,
        &record_ref(org_slug, &q),
        Some("accepted"),
        "invoiced",
        "Converted to an invoice.",
    )
    .await?;
    timeline::event(
        &mut tx,
        who,
        org,
        &record_ref(org_slug, &inv),
        &format!("Made from quote {}.", q.number.as_deref().unwrap_or("")),
        serde_json::json!({"quote_id": id}),
    )
    .await?;
    tx.commit().await?;
    Ok(inv)
}

// ---------- credit notes ----------

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreditNoteInput {
    /// The lines to credit; the whole invoice when left out.
    #[serde(default)]
    pub lines: Option<Vec<LineInput>>,
    #[serde(default)]
    pub issue_date: Option<String>,
    #[serde(default)]
    pub notes: Option<String>,
}

/// Makes a draft credit note for a validated invoice: all of it, or the
/// lines given (partial). Validating it posts the reverse entry and lowers
/// what the invoice's customer owes.
pub async fn credit_note(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    org_slug: &str,
    invoice_id: &str,
    input: CreditNoteInput,
) -> CoreResult<Document> {
    let org = cap.org();
    let mut tx = st.db.begin().await?;
    let inv = document_in(tx.conn(), org, invoice_id).await?.ok_or(CoreError::NotFound)?;
    if inv.kind != "invoice" || inv.number.is_none() {
        return Err(CoreError::Conflict { field: None, message: "Only a validated invoice is credited.".into() });
    }
    let ctx = context(tx.conn(), org).await?;
    let mut e = Vec::new();
    let issue = input.issue_date.as_deref().filter(|s| !s.is_empty()).and_then(|s| day(s, "issue_date", &mut e));
    let invoice_day = inv.issue_date.as_deref().and_then(|s| Day::parse(s).ok()).unwrap_or_else(Day::today);
    let lines = match &input.lines {
        // The invoice's own lines, at the rates it was issued with.
        None => inv.lines.clone(),
        Some(given) => resolve_lines(tx.conn(), org, &ctx, given, invoice_day, &mut e).await?,
    };
    let notes = text(input.notes.as_deref().unwrap_or(""), "notes", 4000, &mut e);
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    let (_, net, vat) = breakdown(&lines);
    if net + vat > inv.gross_cents - inv.credited_cents {
        return Err(CoreError::validation(
            "lines",
            &format!(
                "This credit note ({}) is more than what is left to credit on the invoice ({}).",
                money(net + vat),
                money(inv.gross_cents - inv.credited_cents)
            ),
        ));
    }
    let customer = customers::customer_in(tx.conn(), org, &inv.customer_id).await?.ok_or(CoreError::NotFound)?;
    let series = numbering::default_series(tx.conn(), org, "credit_note").await?;
    let draft = Draft {
        kind: "credit_note".into(),
        series,
        customer,
        issue_date: issue,
        due_date: None,
        valid_until: None,
        delivery_date: None,
        period_start: inv.period_start.as_deref().and_then(|s| Day::parse(s).ok()),
        period_end: inv.period_end.as_deref().and_then(|s| Day::parse(s).ok()),
        lang: inv.lang.clone(),
        operation_category: inv.operation_category.clone(),
        buyer_reference: inv.buyer_reference.clone(),
        notes,
        lines,
        origin_id: Some(inv.id.clone()),
        subscription_id: None,
        source_module: None,
        run_id: None,
    };
    let id = insert_draft(tx.conn(), org, &ctx.settings.currency, &draft, who.account.map(|a| a.to_string())).await?;
    let d = document_in(tx.conn(), org, &id).await?.ok_or(CoreError::NotFound)?;
    audited(&mut tx, who, org, "invoicing.document.create", ENTITY, &id, None, Some(summary(&d))).await?;
    timeline::event(
        &mut tx,
        who,
        org,
        &record_ref(org_slug, &inv),
        &format!("Credit note drafted ({}).", money(d.gross_cents)),
        serde_json::json!({"credit_note_id": id}),
    )
    .await?;
    tx.commit().await?;
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_round_half_away_from_zero() {
        assert_eq!(line_net(1500, 1999, 0), 2999); // 29.985 -> 29.99
        assert_eq!(line_net(1000, 1000, 1000), 900);
        assert_eq!(line_net(333, 100, 0), 33);
        assert_eq!(div_round(-5, 10), -1);
    }

    #[test]
    fn vat_is_computed_per_rate_on_the_group_total() {
        let l = |net: i64, rate: i64| DocLine {
            position: 1,
            product_id: None,
            product_type: "service".into(),
            name: "x".into(),
            description: String::new(),
            quantity_milli: 1000,
            unit_code: "C62".into(),
            unit_price_cents: net,
            discount_bp: 0,
            net_cents: net,
            vat_code: "FR-20".into(),
            vat_category: "S".into(),
            vat_rate_bp: rate,
            exemption_reason: None,
            revenue_account: "706".into(),
            period_start: None,
            period_end: None,
        };
        // 3 × 0.33 at 20 %: 0.99 × 20 % = 0.198 -> 0.20 (not 3 × 0.07).
        let (vat, net, tax) = breakdown(&[l(33, 2000), l(33, 2000), l(33, 2000), l(1000, 550)]);
        assert_eq!(net, 1099);
        assert_eq!(vat.len(), 2);
        assert_eq!(tax, 20 + 55);
    }
}
