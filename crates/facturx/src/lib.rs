//! Electronic invoices: one invoice-like [`Document`] becomes the Factur-X
//! Cross Industry Invoice XML (profile EN 16931), a UBL 2.1 Invoice or
//! CreditNote, and a branded A4 PDF — PDF/A-3b with the CII XML embedded as
//! `factur-x.xml` for invoices and credit notes, a plain PDF for quotes.
//!
//! This crate owns the formats only: it never numbers, stores or sends
//! documents, and it never computes amounts. The caller computes them;
//! [`check`] refuses a document whose amounts or legal identifiers do not
//! hold together, so no inconsistent e-invoice leaves the house.

mod check;
mod cii;
mod format;
mod pdf;
mod ubl;
mod xml;

pub use check::check;
pub use format::{format_amount, format_date};

/// What the document is. Invoices (UNTDID 1001 type code 380) and credit
/// notes (381) are e-invoices; quotes are printed only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocKind {
    Invoice,
    CreditNote,
    Quote,
}

impl DocKind {
    /// The UNTDID 1001 document type code, none for a quote.
    pub fn type_code(self) -> Option<&'static str> {
        match self {
            DocKind::Invoice => Some("380"),
            DocKind::CreditNote => Some("381"),
            DocKind::Quote => None,
        }
    }
}

/// The language of the printed document (the XML is language-neutral).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Fr,
    En,
}

/// The seller or the buyer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Party {
    pub name: String,
    /// French company number (9 digits), the legal registration (ISO 6523 ICD 0002).
    pub siren: Option<String>,
    /// French establishment number (14 digits), the party identifier (ICD 0009).
    pub siret: Option<String>,
    pub vat_number: Option<String>,
    pub address_lines: Vec<String>,
    pub postcode: String,
    pub city: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub email: Option<String>,
}

/// One invoiced item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    /// Thousandths: 1.5 is 1500.
    pub quantity_milli: i64,
    /// UN/ECE Recommendation 20 unit code: C62 (one), HUR (hour), MON (month)…
    pub unit_code: String,
    /// Net unit price, VAT excluded.
    pub unit_price_cents: i64,
    /// The line's net total.
    pub net_cents: i64,
    /// UNCL 5305 VAT category: S, Z, E, AE, K, G, O.
    pub vat_category: String,
    /// Hundredths of a percent: 20 % is 2000.
    pub vat_rate_bp: i64,
    pub period: Option<(time::Date, time::Date)>,
}

/// The VAT of one (category, rate) pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VatBreakdown {
    pub category: String,
    pub rate_bp: i64,
    pub basis_cents: i64,
    pub vat_cents: i64,
    /// Required for categories E, AE, K, G and O, e.g. "TVA non applicable, art. 293 B du CGI".
    pub exemption_reason: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub net_cents: i64,
    pub vat_cents: i64,
    pub gross_cents: i64,
    pub prepaid_cents: i64,
    pub due_cents: i64,
}

/// How to pay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// UNTDID 4461: 30 transfer, 58 SEPA transfer, 48 card, 20 cheque, 10 cash.
    pub means_code: String,
    pub iban: Option<String>,
    pub bic: Option<String>,
    /// The reference the payer quotes with the payment.
    pub remittance: Option<String>,
}

/// What the organisation puts on its documents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Branding {
    pub org_name: String,
    /// `#RRGGBB`.
    pub colour: String,
    /// A PNG (8-bit, non-interlaced) or baseline JPEG (grey or RGB); another
    /// image is left out rather than failing the document.
    pub logo_png_or_jpeg: Option<Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    pub kind: DocKind,
    pub number: String,
    pub issue_date: time::Date,
    pub due_date: Option<time::Date>,
    /// ISO 4217, e.g. EUR.
    pub currency: String,
    pub lang: Lang,
    pub seller: Party,
    pub buyer: Party,
    pub buyer_reference: Option<String>,
    pub lines: Vec<Line>,
    pub vat: Vec<VatBreakdown>,
    pub totals: Totals,
    pub payment: Option<Payment>,
    pub payment_terms: Option<String>,
    /// Legal mentions: late-payment penalties, the 40 € indemnity, the category of operation…
    pub notes: Vec<String>,
    /// Credit notes: the invoice they correct.
    pub preceding_invoice: Option<(String, time::Date)>,
    pub delivery_date: Option<time::Date>,
    pub service_period: Option<(time::Date, time::Date)>,
    pub branding: Branding,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// Quotes are not e-invoices: they have no CII or UBL form.
    #[error("a quote has no e-invoice XML")]
    QuoteHasNoXml,
    /// What [`check`] found, one message per field.
    #[error("inconsistent document: {}", .0.join("; "))]
    Inconsistent(Vec<String>),
}

/// The Factur-X EN 16931 Cross Industry Invoice XML.
pub fn cii_xml(doc: &Document) -> Result<String, Error> {
    ready_for_xml(doc)?;
    Ok(cii::write(doc))
}

/// The UBL 2.1 Invoice (or CreditNote) XML, EN 16931 customization.
pub fn ubl_xml(doc: &Document) -> Result<String, Error> {
    ready_for_xml(doc)?;
    Ok(ubl::write(doc))
}

/// The printable A4 PDF: PDF/A-3b carrying `factur-x.xml` for invoices and
/// credit notes, a plain PDF for quotes.
pub fn pdf(doc: &Document) -> Result<Vec<u8>, Error> {
    check(doc).map_err(Error::Inconsistent)?;
    let xml = match doc.kind {
        DocKind::Quote => None,
        _ => Some(cii::write(doc)),
    };
    Ok(pdf::render(doc, xml.as_deref()))
}

fn ready_for_xml(doc: &Document) -> Result<(), Error> {
    if doc.kind == DocKind::Quote {
        return Err(Error::QuoteHasNoXml);
    }
    check(doc).map_err(Error::Inconsistent)
}
