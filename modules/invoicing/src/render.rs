//! From a stored, frozen document to its electronic and printed forms:
//! the Factur-X CII XML, the UBL 2.1 XML and the PDF (PDF/A-3 with the
//! XML embedded for invoices and credit notes, plain for quotes), through
//! `shrooms-facturx`.
//!
//! Everything is made from what validation froze (parties, lines, rates,
//! totals), never from the current settings or customer, so the same
//! document always gives the same bytes: a crash after numbering loses
//! nothing, the files can be made again at any time.

use crate::documents::{self, Document, Party};
use crate::MODULE;
use shrooms_accounting::domain::Day;
use shrooms_core::error::{CoreError, CoreResult};
use shrooms_core::orgs::Org;
use shrooms_core::permissions::CanRead;
use shrooms_core::web::AppState;
use shrooms_facturx as fx;

fn date(s: &str) -> CoreResult<time::Date> {
    Day::parse(s).map(|d| d.0).map_err(|m| CoreError::Internal(format!("stored date {s}: {m}")))
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

fn party(p: &Party, vat_allowed: bool) -> fx::Party {
    fx::Party {
        name: p.name.clone(),
        siren: opt(&p.siren),
        siret: opt(&p.siret),
        vat_number: if vat_allowed { opt(&p.vat_number) } else { None },
        address_lines: p.address.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect(),
        postcode: p.postcode.clone(),
        city: p.city.clone(),
        country: if p.country.is_empty() { "FR".into() } else { p.country.clone() },
        email: opt(&p.email),
    }
}

/// Maps a validated document to the Factur-X crate's document.
pub fn to_facturx(d: &Document, org: &Org) -> CoreResult<fx::Document> {
    let number = d.number.clone().ok_or_else(|| CoreError::Conflict {
        field: None,
        message: "A draft has no PDF nor e-invoice yet: validate it first.".into(),
    })?;
    let (Some(seller), Some(buyer)) = (&d.seller, &d.buyer) else {
        return Err(CoreError::Internal(format!("document {} has no frozen parties", d.id)));
    };
    let fr = d.lang != "en";
    // Outside the scope of VAT (O), no VAT number may be given.
    let vat_allowed = !d.lines.iter().any(|l| l.vat_category == "O");
    let lines = d
        .lines
        .iter()
        .map(|l| {
            let period = match (&l.period_start, &l.period_end) {
                (Some(s), Some(e)) => Some((date(s)?, date(e)?)),
                _ => None,
            };
            Ok(fx::Line {
                id: l.position.to_string(),
                name: l.name.clone(),
                description: opt(&l.description),
                quantity_milli: l.quantity_milli,
                unit_code: l.unit_code.clone(),
                // The net unit price, after the line's discount.
                unit_price_cents: documents::net_unit_price(l.unit_price_cents, l.discount_bp),
                net_cents: l.net_cents,
                vat_category: l.vat_category.clone(),
                vat_rate_bp: l.vat_rate_bp,
                period,
            })
        })
        .collect::<CoreResult<Vec<_>>>()?;
    let vat = d
        .vat
        .iter()
        .map(|v| fx::VatBreakdown {
            category: v.category.clone(),
            rate_bp: v.rate_bp,
            basis_cents: v.basis_cents,
            vat_cents: v.vat_cents,
            exemption_reason: if v.category == "S" { None } else { v.exemption_reason.clone() },
        })
        .collect();
    let payment = (d.kind == "invoice" && !seller.iban.is_empty()).then(|| fx::Payment {
        means_code: "58".into(),
        iban: opt(&seller.iban),
        bic: opt(&seller.bic),
        remittance: Some(number.clone()),
    });
    let payment_terms = match (d.kind.as_str(), &d.due_date) {
        ("invoice", Some(due)) => Some(if fr {
            format!("Paiement à réception, au plus tard le {due}.")
        } else {
            format!("Payment on receipt, at the latest on {due}.")
        }),
        _ => None,
    };
    let mut notes = d.mentions.clone();
    if !d.notes.trim().is_empty() {
        notes.insert(0, d.notes.trim().to_string());
    }
    let preceding_invoice = match (&d.origin_number, &d.origin_issue_date) {
        (Some(n), Some(i)) if d.kind == "credit_note" => Some((n.clone(), date(i)?)),
        _ => None,
    };
    let service_period = match (&d.period_start, &d.period_end) {
        (Some(s), Some(e)) => Some((date(s)?, date(e)?)),
        _ => None,
    };
    Ok(fx::Document {
        kind: match d.kind.as_str() {
            "quote" => fx::DocKind::Quote,
            "credit_note" => fx::DocKind::CreditNote,
            _ => fx::DocKind::Invoice,
        },
        number,
        issue_date: date(d.issue_date.as_deref().unwrap_or_default())?,
        due_date: match (&d.kind[..], &d.due_date) {
            ("quote", _) => None,
            (_, Some(x)) => Some(date(x)?),
            _ => None,
        },
        currency: d.currency.clone(),
        lang: if fr { fx::Lang::Fr } else { fx::Lang::En },
        seller: party(seller, vat_allowed),
        buyer: party(buyer, vat_allowed),
        buyer_reference: opt(&d.buyer_reference),
        lines,
        vat,
        totals: fx::Totals {
            net_cents: d.net_cents,
            vat_cents: d.vat_cents,
            gross_cents: d.gross_cents,
            prepaid_cents: 0,
            due_cents: d.gross_cents,
        },
        payment,
        payment_terms,
        notes,
        preceding_invoice,
        delivery_date: d.delivery_date.as_deref().map(date).transpose()?,
        service_period,
        branding: fx::Branding {
            org_name: org.name.clone(),
            colour: org
                .color_primary
                .clone()
                .filter(|c| c.len() == 7 && c.starts_with('#'))
                .unwrap_or("#2f5d50".into()),
            logo_png_or_jpeg: None,
        },
    })
}

fn inconsistent(e: fx::Error) -> CoreError {
    match e {
        fx::Error::QuoteHasNoXml => {
            CoreError::Conflict { field: None, message: "A quote is not an e-invoice: it has a PDF only.".into() }
        }
        // Validation checked the same rules; a failure here is a bug, logged.
        fx::Error::Inconsistent(v) => CoreError::Internal(format!("inconsistent e-invoice: {}", v.join("; "))),
    }
}

/// The file name of a document's download: `F2026-00042.pdf`.
pub fn file_name(d: &Document, ext: &str) -> String {
    let n: String = d
        .number
        .as_deref()
        .unwrap_or("draft")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .collect();
    format!("{n}.{ext}")
}

pub enum Format {
    Pdf,
    FacturX,
    Ubl,
}

/// Renders a document of the capability's organisation.
pub async fn render(st: &AppState, cap: &CanRead, org: &Org, id: &str, f: Format) -> CoreResult<(String, Vec<u8>)> {
    debug_assert_eq!(cap.module(), MODULE);
    let d = documents::get(&st.db, cap, id).await?;
    render_document(&d, org, f)
}

pub fn render_document(d: &Document, org: &Org, f: Format) -> CoreResult<(String, Vec<u8>)> {
    let doc = to_facturx(d, org)?;
    Ok(match f {
        Format::Pdf => (file_name(d, "pdf"), fx::pdf(&doc).map_err(inconsistent)?),
        Format::FacturX => (file_name(d, "xml"), fx::cii_xml(&doc).map_err(inconsistent)?.into_bytes()),
        Format::Ubl => (file_name(d, "ubl.xml"), fx::ubl_xml(&doc).map_err(inconsistent)?.into_bytes()),
    })
}
