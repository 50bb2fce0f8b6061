//! Sample documents: each is consistent, so `check` accepts it.

use shrooms_facturx::*;
use time::macros::date;

pub fn seller() -> Party {
    Party {
        name: "Association des Amis du Champignon".into(),
        siren: Some("732829320".into()),
        siret: Some("73282932000074".into()),
        vat_number: Some("FR44732829320".into()),
        address_lines: vec!["12 rue des Mycélium".into(), "Bâtiment B".into()],
        postcode: "69003".into(),
        city: "Lyon".into(),
        country: "FR".into(),
        email: Some("tresorerie@amis-champignon.example".into()),
    }
}

pub fn buyer() -> Party {
    Party {
        name: "Coopérative Les Girolles".into(),
        siren: Some("552081317".into()),
        siret: None,
        vat_number: Some("FR03552081317".into()),
        address_lines: vec!["4 place de l’Église".into()],
        postcode: "38000".into(),
        city: "Grenoble".into(),
        country: "FR".into(),
        email: None,
    }
}

pub fn line(id: usize, name: &str, qty_milli: i64, unit: &str, price: i64, cat: &str, rate: i64) -> Line {
    let exact = qty_milli as i128 * price as i128;
    Line {
        id: id.to_string(),
        name: name.into(),
        description: None,
        quantity_milli: qty_milli,
        unit_code: unit.into(),
        unit_price_cents: price,
        net_cents: ((exact + 500) / 1000) as i64,
        vat_category: cat.into(),
        vat_rate_bp: rate,
        period: None,
    }
}

/// Fills the VAT breakdown and the totals from the lines.
pub fn totalled(mut doc: Document, prepaid: i64, reason: Option<&str>) -> Document {
    let mut groups: Vec<VatBreakdown> = Vec::new();
    for l in &doc.lines {
        match groups.iter_mut().find(|g| g.category == l.vat_category && g.rate_bp == l.vat_rate_bp) {
            Some(g) => g.basis_cents += l.net_cents,
            None => groups.push(VatBreakdown {
                category: l.vat_category.clone(),
                rate_bp: l.vat_rate_bp,
                basis_cents: l.net_cents,
                vat_cents: 0,
                exemption_reason: if l.vat_category == "S" { None } else { reason.map(String::from) },
            }),
        }
    }
    for g in &mut groups {
        g.vat_cents = ((g.basis_cents as i128 * g.rate_bp as i128 + 5000) / 10000) as i64;
    }
    let net: i64 = doc.lines.iter().map(|l| l.net_cents).sum();
    let vat: i64 = groups.iter().map(|g| g.vat_cents).sum();
    doc.vat = groups;
    doc.totals = Totals {
        net_cents: net,
        vat_cents: vat,
        gross_cents: net + vat,
        prepaid_cents: prepaid,
        due_cents: net + vat - prepaid,
    };
    doc
}

fn base(kind: DocKind, number: &str, lines: Vec<Line>) -> Document {
    Document {
        kind,
        number: number.into(),
        issue_date: date!(2026 - 11 - 21),
        due_date: Some(date!(2026 - 12 - 21)),
        currency: "EUR".into(),
        lang: Lang::Fr,
        seller: seller(),
        buyer: buyer(),
        buyer_reference: Some("BC-2026-117".into()),
        lines,
        vat: Vec::new(),
        totals: Totals::default(),
        payment: Some(Payment {
            means_code: "58".into(),
            iban: Some("FR76 3000 6000 0112 3456 7890 189".into()),
            bic: Some("AGRIFRPP".into()),
            remittance: Some("F2026-0042".into()),
        }),
        payment_terms: Some("Paiement à 30 jours par virement.".into()),
        notes: vec![
            "En cas de retard de paiement, pénalités au taux de 10 % l’an et indemnité forfaitaire de 40 € pour frais de recouvrement (art. L441-10 du Code de commerce).".into(),
            "Pas d’escompte pour paiement anticipé.".into(),
            "Catégorie de l’opération : prestation de services.".into(),
        ],
        preceding_invoice: None,
        delivery_date: None,
        service_period: Some((date!(2026 - 11 - 01), date!(2026 - 11 - 30))),
        branding: Branding { org_name: "Les Amis du Champignon".into(), colour: "#2E7D32".into(), logo_png_or_jpeg: None },
    }
}

/// Standard rate only, with a partial prepayment.
pub fn standard_invoice() -> Document {
    let mut lines = vec![
        line(1, "Cotisation annuelle — membre bienfaiteur", 1000, "C62", 12000, "S", 2000),
        line(2, "Atelier de cueillette (demi-journée)", 3500, "HUR", 4550, "S", 2000),
        line(3, "Location de salle", 1500, "DAY", 33333, "S", 2000),
    ];
    lines[1].description = Some("Encadrement par un mycologue diplômé, matériel fourni.".into());
    lines[2].period = Some((date!(2026 - 11 - 14), date!(2026 - 11 - 15)));
    totalled(base(DocKind::Invoice, "F2026-0042", lines), 5000, None)
}

/// 20 % and 5.5 % on the same invoice, in English.
pub fn mixed_invoice() -> Document {
    let lines = vec![
        line(1, "Guided mushroom walk", 2000, "C62", 2500, "S", 2000),
        line(2, "Field guide (book)", 3000, "C62", 1990, "S", 550),
        line(3, "Dried morels, 100 g", 4000, "C62", 1299, "S", 550),
    ];
    let mut doc = totalled(base(DocKind::Invoice, "F2026-0043", lines), 0, None);
    doc.lang = Lang::En;
    doc.service_period = None;
    doc.delivery_date = Some(date!(2026 - 11 - 20));
    doc
}

/// A seller under the VAT franchise (category E, art. 293 B du CGI).
pub fn exempt_invoice() -> Document {
    let lines = vec![
        line(1, "Cours d’initiation à la mycologie", 10000, "HUR", 3000, "E", 0),
        line(2, "Frais de déplacement", 1000, "C62", 4500, "E", 0),
    ];
    let mut doc =
        totalled(base(DocKind::Invoice, "F2026-0044", lines), 0, Some("TVA non applicable, art. 293 B du CGI"));
    doc.notes.push("TVA non applicable, art. 293 B du CGI".into());
    doc
}

/// A credit note on the standard invoice.
pub fn credit_note() -> Document {
    let lines = vec![line(1, "Remboursement atelier annulé", 3500, "HUR", 4550, "S", 2000)];
    let mut doc = totalled(base(DocKind::CreditNote, "AV2026-0003", lines), 0, None);
    doc.preceding_invoice = Some(("F2026-0042".into(), date!(2026 - 11 - 21)));
    doc.payment_terms = Some("Remboursement par virement sous 15 jours.".into());
    doc
}

pub fn quote() -> Document {
    let mut doc = standard_invoice();
    doc.kind = DocKind::Quote;
    doc.number = "D2026-0007".into();
    doc.totals.prepaid_cents = 0;
    doc.totals.due_cents = doc.totals.gross_cents;
    doc
}

/// 200 lines, some with long descriptions.
pub fn long_invoice() -> Document {
    let lines = (1..=200)
        .map(|i| {
            let mut l = line(i, &format!("Prestation n° {i} — séance d’accompagnement"), 1000 + (i as i64 % 7) * 250, "HUR", 4200 + i as i64, "S", 2000);
            if i % 5 == 0 {
                l.description = Some("Compte rendu détaillé remis après la séance, avec les relevés d’espèces observées, les photographies et les recommandations pour la saison suivante. ".repeat(2));
            }
            l
        })
        .collect();
    totalled(base(DocKind::Invoice, "F2026-0200", lines), 0, None)
}
