//! Personal data across modules, on the real build's module list: the
//! export gathers the core's and invoicing's records (a customer with an
//! invoice); erasure waits for the invoice to be paid, then pseudonymises
//! the person and the customer record while the issued invoice (number,
//! amount, PDF), the ledger and the audit chain stay intact.

use serde_json::{json, Value};
use testkit::{db_test, TestApp};

fn section<'a>(export: &'a Value, module: &str, name: &str) -> &'a Vec<Value> {
    export["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["module"] == module && s["section"] == name)
        .unwrap_or_else(|| panic!("no section {module}/{name} in {export}"))["rows"]
        .as_array()
        .unwrap()
}

db_test!(erasure_keeps_invoices_and_the_ledger, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (f.admin_token.as_str(), f.org_slug.as_str());
    let inv = |p: &str| format!("/api/v1/orgs/{o}/invoicing{p}");
    let (s, b) = app
        .post(
            t,
            &format!("/api/v1/orgs/{o}/accounting/books"),
            json!({"chart": "associations", "first_year_start": "2025-01-01"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            t,
            &inv("/settings"),
            json!({"legal_name": "Asso Test", "siren": "732 829 320", "siret": "73282932000074", "vat_number": "FR44732829320",
                   "address": "12 rue des Serveurs", "postcode": "69001", "city": "Lyon", "email": "factures@asso.example"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, p) = app
        .post(t, &format!("/api/v1/orgs/{o}/people"), json!({"given_name": "Pia", "family_name": "Durandal", "email": "pia@example.org", "phone": "06 12 34 56 78", "notes": "Allergic to nuts"}))
        .await;
    assert_eq!(s, 201, "{p}");
    let pid = p["id"].as_str().unwrap().to_string();
    let (s, c) = app
        .post(
            t,
            &inv("/customers"),
            json!({"kind": "individual", "name": "Pia Durandal", "person_id": pid, "email": "pia@example.org",
            "address": "4 impasse des Roses", "postcode": "69007", "city": "Lyon"}),
        )
        .await;
    assert_eq!(s, 201, "{c}");
    let (s, d) = app
        .post(
            t,
            &inv("/documents"),
            json!({"customer_id": c["id"], "issue_date": "2025-06-01",
            "lines": [{"name": "Workshop", "unit_price_cents": 10000, "vat_code": "FR-20"}]}),
        )
        .await;
    assert_eq!(s, 201, "{d}");
    let did = d["id"].as_str().unwrap().to_string();
    let (s, invoice) = app.post(t, &inv(&format!("/documents/{did}/validate")), json!({})).await;
    assert_eq!(s, 200, "{invoice}");
    let number = invoice["number"].as_str().unwrap().to_string();

    let (s, ex) = app.get(t, &format!("/api/v1/orgs/{o}/people/{pid}/personal-data")).await;
    assert_eq!(s, 200, "{ex}");
    assert_eq!(section(&ex, "core", "person")[0]["notes"], "Allergic to nuts");
    assert_eq!(section(&ex, "invoicing", "customers")[0]["address"], "4 impasse des Roses");
    assert_eq!(section(&ex, "invoicing", "documents")[0]["number"], number.as_str());
    assert_eq!(section(&ex, "invoicing", "documents")[0]["gross_cents"], 12000);
    assert!(
        section(&ex, "accounting", "ledger_lines")
            .iter()
            .any(|l| l["aux_label"] == "Pia Durandal" || l["label"].as_str().unwrap_or("").contains("Pia Durandal")),
        "{ex}"
    );

    // An invoice not paid: not yet.
    let (s, b) =
        app.post(t, &format!("/api/v1/orgs/{o}/people/{pid}/erase"), json!({"confirmation": "Pia Durandal"})).await;
    assert_eq!(s, 409, "{b}");
    assert!(b["detail"].as_str().unwrap().contains(&number), "{b}");
    let (s, pay) = app
        .post(t, &inv("/payments"), json!({"customer_id": c["id"], "method": "transfer", "amount_cents": 12000, "received_date": "2025-06-10", "payer": "Pia Durandal"}))
        .await;
    assert_eq!(s, 201, "{pay}");
    let (_, pdf_before) = app.get(t, &inv(&format!("/documents/{did}"))).await;
    let (_, ledger_before) = app.get(t, &format!("/api/v1/orgs/{o}/accounting/entries?limit=500")).await;

    let (s, rep) =
        app.post(t, &format!("/api/v1/orgs/{o}/people/{pid}/erase"), json!({"confirmation": "Pia Durandal"})).await;
    assert_eq!(s, 200, "{rep}");
    let pseudo = rep["pseudonym"].as_str().unwrap();
    let (_, person) = app.get(t, &format!("/api/v1/orgs/{o}/people/{pid}")).await;
    assert_eq!(
        (person["email"].clone(), person["phone"].clone(), person["notes"].clone()),
        (Value::Null, Value::Null, json!(""))
    );
    let (_, found) = app.get(t, &format!("/api/v1/orgs/{o}/people?q=durandal")).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 0);
    let (_, cust) = app.get(t, &inv(&format!("/customers/{}", c["id"].as_str().unwrap()))).await;
    assert_eq!(cust["name"], pseudo, "{cust}");
    assert_eq!(cust["address"], "");
    // The invoice is a legal document: unchanged, its PDF still served.
    let (_, after) = app.get(t, &inv(&format!("/documents/{did}"))).await;
    assert_eq!(after["number"], number.as_str());
    assert_eq!(after["gross_cents"], 12000);
    assert_eq!(after["status"], pdf_before["status"]);
    let r = app.http.get(app.url(&inv(&format!("/documents/{did}/pdf")))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().starts_with(b"%PDF"));
    let (_, ledger_after) = app.get(t, &format!("/api/v1/orgs/{o}/accounting/entries?limit=500")).await;
    assert_eq!(ledger_before, ledger_after, "the ledger is not touched");
    let (s, v) = app.get(t, "/api/v1/admin/audit/verify").await;
    assert_eq!((s, v["intact"].as_bool()), (200, Some(true)), "{v}");
    let (s, _) = app.get(t, &format!("/api/v1/orgs/{o}/people/{pid}/personal-data?format=xml")).await;
    assert_eq!(s, 422);
});
