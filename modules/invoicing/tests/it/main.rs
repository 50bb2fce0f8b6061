//! The one integration-test binary of the invoicing module. Every test
//! starts the real server (SQLite and PostgreSQL, `testkit::db_test!`) and
//! talks HTTP to it.

mod documents;
mod documents_billing;
mod documents_ui;
mod payments;

use serde_json::{json, Value};
use shrooms_core::{core_module::CoreModule, Module, Modules};
use std::sync::Arc;
use testkit::TestApp;

pub fn modules() -> Modules {
    let list: Vec<Arc<dyn Module>> = vec![
        Arc::new(CoreModule),
        Arc::new(shrooms_accounting::AccountingModule),
        Arc::new(shrooms_invoicing::InvoicingModule),
        Arc::new(payments::ServiceModule),
    ];
    Modules::new(list).expect("valid module list")
}

/// `/api/v1/orgs/{org}/invoicing{path}`
pub fn inv(org: &str, path: &str) -> String {
    format!("/api/v1/orgs/{org}/invoicing{path}")
}

/// Opens the books (associations' chart, calendar year 2025) and fills the
/// seller's legal identity, so that invoices can be validated.
pub async fn ready_org(app: &TestApp, token: &str, org: &str) {
    let (s, b) = app
        .post(
            token,
            &format!("/api/v1/orgs/{org}/accounting/books"),
            json!({"chart": "associations", "siren": "732829320", "first_year_start": "2025-01-01"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            token,
            &inv(org, "/settings"),
            json!({
                "legal_name": "Coopérative Hébergement SCIC", "legal_form": "SCIC SA", "share_capital": "12 000 €",
                "siren": "732 829 320", "siret": "73282932000074", "vat_number": "FR44732829320",
                "rcs": "RCS Lyon 732 829 320", "address": "12 rue des Serveurs", "postcode": "69001", "city": "Lyon",
                "iban": "FR76 3000 6000 0112 3456 7890 189", "bic": "AGRIFRPP", "email": "factures@coop.example"
            }),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

/// A French business customer with every legal field.
pub async fn business(app: &TestApp, token: &str, org: &str, name: &str) -> Value {
    let (s, b) = app
        .post(
            token,
            &inv(org, "/customers"),
            json!({"kind": "business", "name": name, "siren": "552100554", "vat_number": "FR96552100554",
                   "address": "3 place de la Gare", "postcode": "75010", "city": "Paris", "email": "compta@client.example"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b
}

/// Creates a draft; asserts 201.
pub async fn draft(app: &TestApp, token: &str, org: &str, body: Value) -> Value {
    let (s, b) = app.post(token, &inv(org, "/documents"), body).await;
    assert_eq!(s, 201, "{b}");
    b
}

/// Validates a document; asserts 200.
pub async fn validate(app: &TestApp, token: &str, org: &str, id: &str) -> Value {
    let (s, b) = app.post(token, &inv(org, &format!("/documents/{id}/validate")), json!({})).await;
    assert_eq!(s, 200, "{b}");
    b
}

/// The ledger's validated entries of a journal, as (account, aux, debit, credit) per line.
pub async fn ledger_lines(app: &TestApp, token: &str, org: &str, piece: &str) -> Vec<(String, String, String, String)> {
    let (s, b) = app.get(token, &format!("/api/v1/orgs/{org}/accounting/entries?journal=VE")).await;
    assert_eq!(s, 200, "{b}");
    let mut out = Vec::new();
    for e in b.as_array().expect("entries") {
        if e["piece_ref"] != piece {
            continue;
        }
        assert_eq!(e["status"], "validated", "{e}");
        for l in e["lines"].as_array().unwrap() {
            out.push((
                l["account"].as_str().unwrap().to_string(),
                l["aux"].as_str().unwrap().to_string(),
                l["debit"].as_str().unwrap().to_string(),
                l["credit"].as_str().unwrap().to_string(),
            ));
        }
    }
    out
}

/// Downloads a file; returns (status, content type, bytes).
pub async fn bytes(app: &TestApp, token: &str, path: &str) -> (u16, String, Vec<u8>) {
    let r = app.http.get(app.url(path)).bearer_auth(token).send().await.expect("request");
    let s = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (s, ct, r.bytes().await.map(|b| b.to_vec()).unwrap_or_default())
}

/// Runs a Python snippet with the given files as arguments; panics with its output on failure.
pub fn python(script: &str, args: &[&std::path::Path]) -> String {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 is installed (bash e2e/setup.sh; pip install factur-x)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "python failed:\n{text}");
    text
}

/// Checks a Factur-X PDF and its XML with the `factur-x` package (PyPI):
/// the XML against the official EN 16931 schema, the PDF's embedded XML
/// equal to the one served.
pub fn check_facturx(pdf: &[u8], xml: &[u8]) {
    let dir = std::env::temp_dir().join(format!("inv-fx-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let (p, x) = (dir.join("invoice.pdf"), dir.join("invoice.xml"));
    std::fs::write(&p, pdf).unwrap();
    std::fs::write(&x, xml).unwrap();
    python(
        r#"
import sys, facturx
pdf = open(sys.argv[1], 'rb').read()
xml = open(sys.argv[2], 'rb').read()
facturx.xml_check_xsd(xml, flavor='factur-x', level='en16931')
name, embedded = facturx.get_xml_from_pdf(pdf, check_xsd=True)
assert name == 'factur-x.xml', name
assert embedded == xml, 'the PDF does not carry the served XML'
print('ok')
"#,
        &[&p, &x],
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Renders page 1 of a PDF to PNG with pdftoppm and checks it is not blank:
/// enough dark pixels to be text.
pub fn check_pdf_not_blank(pdf: &[u8]) {
    let dir = std::env::temp_dir().join(format!("inv-png-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("doc.pdf");
    std::fs::write(&p, pdf).unwrap();
    let status = std::process::Command::new("pdftoppm")
        .args(["-png", "-r", "50", "-f", "1", "-l", "1", "-gray"])
        .arg(&p)
        .arg(dir.join("page"))
        .status()
        .expect("pdftoppm is installed (apt-get install poppler-utils)");
    assert!(status.success());
    let png = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "png"))
        .expect("a PNG page");
    let out = python(
        r#"
import sys, zlib, struct
data = open(sys.argv[1], 'rb').read()
pos, w, h, idat = 8, 0, 0, b''
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos+8]); body = data[pos+8:pos+8+n]; pos += 12 + n
    if kind == b'IHDR': w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    if kind == b'IDAT': idat += body
raw = zlib.decompress(idat)
# Grey 8-bit rows with a filter byte; filters make values differ from pixels,
# so count rows that are not all one byte after the filter.
stride = w + 1
busy = sum(1 for y in range(h) if len(set(raw[y*stride+1:(y+1)*stride])) > 1)
print(busy, h)
"#,
        &[&png],
    );
    let nums: Vec<usize> = out.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    assert!(nums.len() == 2 && nums[0] * 10 > nums[1], "page 1 looks blank ({out})");
    let _ = std::fs::remove_dir_all(&dir);
}
