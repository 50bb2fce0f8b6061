//! The printed document: PDF/A-3 structure with the XML inside (pypdf,
//! factur-x), and what a person sees (pdftoppm, pdftotext).

use crate::fixtures::*;
use crate::tools::*;
use shrooms_facturx::*;

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A 48×24 RGBA PNG (a diagonal gradient, half transparent on the right),
/// stored with uncompressed deflate blocks so the test needs no encoder.
fn logo_png() -> Vec<u8> {
    let (w, h) = (48u32, 24u32);
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(if y % 2 == 0 { 0 } else { 1 }); // filters None and Sub
        let mut prev = [0u8; 4];
        for x in 0..w {
            let px = [(x * 5) as u8, (y * 10) as u8, 120, if x < 24 { 255 } else { 128 }];
            for c in 0..4 {
                raw.push(if y % 2 == 0 { px[c] } else { px[c].wrapping_sub(prev[c]) });
            }
            prev = px;
        }
    }
    let mut z = vec![0x78, 0x01, 0x01];
    z.extend_from_slice(&(raw.len() as u16).to_le_bytes());
    z.extend_from_slice(&(!(raw.len() as u16)).to_le_bytes());
    z.extend_from_slice(&raw);
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + byte as u32) % 65521;
        b = (b + a) % 65521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        png.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        png.extend_from_slice(&body);
        png.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(b"IDAT", &z);
    chunk(b"IEND", &[]);
    png
}

fn people(cents: i64, lang: Lang) -> String {
    format_amount(cents, "EUR", lang).replace('\u{a0}', " ")
}

#[test]
fn invoices_and_credit_notes_are_pdfa3_carrying_their_cii() {
    let mut standard = standard_invoice();
    standard.branding.logo_png_or_jpeg = Some(logo_png());
    for (name, doc) in
        [("standard", standard), ("mixed", mixed_invoice()), ("exempt", exempt_invoice()), ("credit", credit_note())]
    {
        let bytes = pdf(&doc).unwrap();
        assert!(bytes.starts_with(b"%PDF-1.7"));
        let pdf_path = write(&format!("{name}.pdf"), &bytes);
        let xml_path = write(&format!("{name}-embedded.xml"), cii_xml(&doc).unwrap().as_bytes());
        if python_ready() {
            validate(&["pdf", pdf_path.to_str().unwrap(), xml_path.to_str().unwrap()]);
        }
        if poppler_ready() {
            fonts_embedded(&pdf_path);
        }
    }
}

#[test]
fn the_page_shows_the_invoice_in_french() {
    let mut doc = standard_invoice();
    doc.branding.logo_png_or_jpeg = Some(logo_png());
    let bytes = pdf(&doc).unwrap();
    if !poppler_ready() {
        return;
    }
    let path = write("shown-fr.pdf", &bytes);
    let ink = ink_per_page(&path);
    assert_eq!(ink.len(), 1, "one page");
    assert!(ink[0] > 0.03, "the page is nearly blank: {:.3} of pixels have ink", ink[0]);
    let text = pdftotext(&path, None, None);
    for expected in [
        "FACTURE",
        "F2026-0042",
        "Coopérative Les Girolles",
        "Échéance",
        "Désignation",
        "SIREN 732829320",
        "FR44732829320",
        "FR76 3000 6000 0112 3456 7890 189",
        "AGRIFRPP",
        "Net à payer",
        "indemnité forfaitaire de 40 €",
        "du 01/11/2026 au 30/11/2026",
        "Encadrement par un mycologue",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(text.contains(&people(doc.totals.gross_cents, Lang::Fr)), "total TTC in:\n{text}");
    assert!(text.contains(&people(doc.totals.due_cents, Lang::Fr)), "amount due in:\n{text}");
    assert!(people(doc.totals.due_cents, Lang::Fr).contains(' '), "thousands are grouped in French");
}

#[test]
fn the_page_shows_the_invoice_in_english() {
    let doc = mixed_invoice();
    let bytes = pdf(&doc).unwrap();
    if !poppler_ready() {
        return;
    }
    let path = write("shown-en.pdf", &bytes);
    let text = pdftotext(&path, None, None);
    for expected in ["INVOICE", "Amount due", "Delivery date", "20 Nov 2026", "5.5%", "Coopérative Les Girolles"] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert!(text.contains(&people(doc.totals.due_cents, Lang::En)), "amount due in:\n{text}");
    assert!(text.contains("€25.00") && !text.contains("25,00"), "English amounts:\n{text}");
}

#[test]
fn a_200_line_invoice_flows_over_pages_with_the_totals_on_the_last() {
    let doc = long_invoice();
    let bytes = pdf(&doc).unwrap();
    let path = write("long.pdf", &bytes);
    let xml_path = write("long-embedded.xml", cii_xml(&doc).unwrap().as_bytes());
    if python_ready() {
        validate(&["pdf", path.to_str().unwrap(), xml_path.to_str().unwrap()]);
    }
    if !poppler_ready() {
        return;
    }
    let ink = ink_per_page(&path);
    let n = ink.len();
    assert!(n >= 5, "200 lines on {n} pages");
    assert!(ink.iter().all(|&i| i > 0.01), "a page is blank: {ink:?}");
    let all = pdftotext(&path, None, None);
    for i in [1, 57, 133, 200] {
        assert!(all.contains(&format!("Prestation n° {i} —")), "line {i} is missing");
    }
    let last = pdftotext(&path, Some(n), Some(n));
    assert!(last.contains("Net à payer") && last.contains(&people(doc.totals.due_cents, Lang::Fr)), "{last}");
    assert!(last.contains(&format!("Page {n} / {n}")));
    let first = pdftotext(&path, Some(1), Some(1));
    assert!(!first.contains("Net à payer"), "totals only at the end");
    let second = pdftotext(&path, Some(2), Some(2));
    assert!(second.contains("Désignation") && second.contains("(suite)"), "the table header repeats:\n{second}");
}

#[test]
fn long_text_wraps_instead_of_running_off_the_page() {
    let mut doc = standard_invoice();
    let long_note = "Mention ".repeat(300) + "fin-de-la-mention";
    doc.notes.push(long_note);
    doc.lines[0].name = "Désignationsansaucunespacequidevraitêtrecoupéeproprementsurplusieurslignes".repeat(3);
    doc.buyer.address_lines.push("Une adresse de livraison particulièrement longue ".repeat(4));
    let bytes = pdf(&doc).unwrap();
    if !poppler_ready() {
        return;
    }
    let path = write("wrapped.pdf", &bytes);
    let text = pdftotext(&path, None, None);
    assert!(text.contains("fin-de-la-mention"), "the end of the long note is printed");
    assert!(text.lines().all(|l| l.chars().count() < 200), "a line of text runs wide:\n{text}");
}

#[test]
fn characters_the_font_lacks_print_as_question_marks() {
    // PDF/A forbids showing the .notdef glyph.
    let mut doc = standard_invoice();
    doc.lines[0].name = "Cotisation 会员 ✓".into();
    let bytes = pdf(&doc).unwrap();
    if poppler_ready() {
        let path = write("missing-glyphs.pdf", &bytes);
        fonts_embedded(&path);
        assert!(pdftotext(&path, None, None).contains("Cotisation ?? ?"));
    }
}

#[test]
fn a_one_page_invoice_is_small() {
    let bytes = pdf(&standard_invoice()).unwrap();
    eprintln!("one-page invoice: {} bytes", bytes.len());
    assert!(bytes.len() < 60_000, "{} bytes", bytes.len());
}

#[test]
fn a_quote_is_a_plain_pdf_with_the_same_layout() {
    let bytes = pdf(&quote()).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains("/EmbeddedFiles") && !text.contains("pdfaid"));
    let path = write("quote.pdf", &bytes);
    if python_ready() {
        validate(&["plainpdf", path.to_str().unwrap()]);
    }
    if poppler_ready() {
        let t = pdftotext(&path, None, None);
        assert!(t.contains("DEVIS") && t.contains("D2026-0007") && t.contains("Valable jusqu’au"), "{t}");
        assert!(!t.contains("Net à payer"));
    }
}
