//! Quotes, invoices and credit notes through the API: numbering, legal
//! checks, totals, the ledger, dated VAT rates, replicas and isolation.

use crate::{business, bytes, check_facturx, check_pdf_not_blank, draft, inv, ledger_lines, ready_org, validate};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

fn acct(a: &str, aux: &str, d: &str, c: &str) -> (String, String, String, String) {
    (a.to_string(), aux.to_string(), d.to_string(), c.to_string())
}

fn fields(b: &Value) -> Vec<String> {
    b["errors"]
        .as_array()
        .map(|v| v.iter().map(|e| e["field"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

db_test!(quote_accepted_invoiced_credited_and_posted, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    let customer = business(&app, t, o, "Librairie du Parc SARL").await;
    assert_eq!(customer["aux_account"], "C00001");
    let (s, vm) = app
        .post(
            t,
            &inv(o, "/products"),
            json!({"sku": "VM-S", "name": "Virtual machine S", "product_type": "hosting", "unit_code": "MON",
                   "unit_price_cents": 12000, "vat_code": "FR-20", "revenue_account": "706"}),
        )
        .await;
    assert_eq!(s, 201, "{vm}");

    // The quote: 2 months of VM (240.00) + 1.5 h of set-up at 80.00 less 10 % (108.00).
    let quote = draft(
        &app,
        t,
        o,
        json!({"kind": "quote", "customer_id": customer["id"], "issue_date": "2025-03-01", "valid_until": "2099-12-31",
               "lines": [{"product_id": vm["id"], "quantity_milli": 2000},
                         {"name": "Set-up", "quantity_milli": 1500, "unit_code": "HUR", "unit_price_cents": 8000,
                          "discount_bp": 1000, "vat_code": "FR-20"}]}),
    )
    .await;
    assert_eq!(quote["status"], "draft");
    assert_eq!(quote["number"], Value::Null);
    assert_eq!(
        (quote["net_cents"].as_i64(), quote["vat_cents"].as_i64(), quote["gross_cents"].as_i64()),
        (Some(34800), Some(6960), Some(41760))
    );
    let qid = quote["id"].as_str().unwrap();
    let quote = validate(&app, t, o, qid).await;
    assert_eq!(quote["number"], "D2025-00001");
    assert_eq!(quote["valid_until"], "2099-12-31", "the validity typed is kept");
    assert_eq!(quote["status"], "sent");
    // A quote is never posted to the ledger.
    assert_eq!(quote["ledger_entry_id"], Value::Null);
    // Converting needs an accepted quote.
    let (s, _) = app.post(t, &inv(o, &format!("/documents/{qid}/convert")), json!({})).await;
    assert_eq!(s, 409);
    let (s, b) = app.post(t, &inv(o, &format!("/documents/{qid}/accept")), json!({})).await;
    assert_eq!((s, b["status"].as_str()), (200, Some("accepted")), "{b}");
    let (s, invoice) = app.post(t, &inv(o, &format!("/documents/{qid}/convert")), json!({})).await;
    assert_eq!(s, 201, "{invoice}");
    assert_eq!(invoice["kind"], "invoice");
    assert_eq!(invoice["status"], "draft");
    assert_eq!(invoice["origin_id"], qid);
    assert_eq!(invoice["lines"].as_array().unwrap().len(), 2);
    assert_eq!(invoice["gross_cents"], 41760);
    let iid = invoice["id"].as_str().unwrap().to_string();
    let (_, quote) = app.get(t, &inv(o, &format!("/documents/{qid}"))).await;
    assert_eq!(quote["status"], "invoiced");
    assert_eq!(quote["derived_ids"], json!([iid]));

    // Issued today (no fiscal year holds it): the ledger refuses, nothing is written, no number is used.
    let (s, b) = app.post(t, &inv(o, &format!("/documents/{iid}/validate")), json!({})).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(fields(&b), vec!["ledger.date"]);
    let (_, still) = app.get(t, &inv(o, &format!("/documents/{iid}"))).await;
    assert_eq!((still["status"].as_str(), still["number"].as_str()), (Some("draft"), None));

    let mut body = json!({"customer_id": customer["id"], "issue_date": "2025-03-10",
        "lines": [{"product_id": vm["id"], "quantity_milli": 2000},
                  {"name": "Set-up", "quantity_milli": 1500, "unit_code": "HUR", "unit_price_cents": 8000, "discount_bp": 1000, "vat_code": "FR-20"}]});
    let (s, b) = app.send(reqwest::Method::PUT, t, &inv(o, &format!("/documents/{iid}")), body.clone()).await;
    assert_eq!(s, 200, "{b}");
    let invoice = validate(&app, t, o, &iid).await;
    assert_eq!(invoice["number"], "F2025-00001", "the failed validation used no number");
    assert_eq!(invoice["status"], "validated");
    assert_eq!(invoice["issue_date"], "2025-03-10");
    assert_eq!(invoice["due_date"], "2025-04-09", "30 days by default");
    assert_eq!(invoice["seller"]["siren"], "732829320");
    assert_eq!(invoice["buyer"]["name"], "Librairie du Parc SARL");
    assert_eq!(
        invoice["vat"],
        json!([{"category": "S", "rate_bp": 2000, "basis_cents": 34800, "vat_cents": 6960, "exemption_reason": null}])
    );
    let mentions =
        invoice["mentions"].as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect::<Vec<_>>().join("\n");
    assert!(mentions.contains("Indemnité forfaitaire pour frais de recouvrement"), "{mentions}");
    assert!(mentions.contains("SIREN 732829320"), "{mentions}");
    assert!(mentions.contains("prestation de services"), "{mentions}");

    // The sales journal: 411 (customer's aux) debit 417.60, 706 credit 348.00, 44571 credit 69.60.
    let mut lines = ledger_lines(&app, t, o, "F2025-00001").await;
    lines.sort();
    assert_eq!(
        lines,
        vec![
            acct("411", "C00001", "417.60", "0.00"),
            acct("44571", "", "0.00", "69.60"),
            acct("706", "", "0.00", "348.00"),
        ]
    );

    // The Factur-X PDF carries the served XML, valid against the EN 16931 schema; the page is not blank.
    let (s, ct, pdf) = bytes(&app, t, &inv(o, &format!("/documents/{iid}/pdf"))).await;
    assert_eq!((s, ct.as_str()), (200, "application/pdf"));
    let (s, _, xml) = bytes(&app, t, &inv(o, &format!("/documents/{iid}/facturx.xml"))).await;
    assert_eq!(s, 200);
    let xml_text = String::from_utf8(xml.clone()).unwrap();
    assert!(xml_text.contains("F2025-00001") && xml_text.contains("417.60"), "{xml_text}");
    check_facturx(&pdf, &xml);
    check_pdf_not_blank(&pdf);
    // The PDF is kept as a file by a job: from then on, the same bytes every time.
    let mut stored = Value::Null;
    for _ in 0..600 {
        stored = app.get(t, &inv(o, &format!("/documents/{iid}"))).await.1["pdf_file_id"].clone();
        if !stored.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(stored.is_string(), "the PDF job stored the file");
    let first = bytes(&app, t, &inv(o, &format!("/documents/{iid}/pdf"))).await.2;
    check_facturx(&first, &xml);
    assert!(first == bytes(&app, t, &inv(o, &format!("/documents/{iid}/pdf"))).await.2, "the stored PDF is served");
    let (s, _, ubl) = bytes(&app, t, &inv(o, &format!("/documents/{iid}/ubl.xml"))).await;
    assert_eq!(s, 200);
    assert!(String::from_utf8(ubl).unwrap().contains("<cbc:ID>F2025-00001</cbc:ID>"));
    // A quote prints, but is no e-invoice; a draft has neither.
    let (s, _, qpdf) = bytes(&app, t, &inv(o, &format!("/documents/{qid}/pdf"))).await;
    assert_eq!(s, 200);
    check_pdf_not_blank(&qpdf);
    assert_eq!(bytes(&app, t, &inv(o, &format!("/documents/{qid}/facturx.xml"))).await.0, 409);

    // Sent by email through the outbox: the invoice is `sent`, the delivery status shows.
    let (s, b) = app.post(t, &inv(o, &format!("/documents/{iid}/send")), json!({"message": "Merci !"})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["status"], "sent");
    assert_eq!(b["sends"][0]["to"], "compta@client.example");
    let mut status = String::new();
    for _ in 0..600 {
        let (_, d) = app.get(t, &inv(o, &format!("/documents/{iid}"))).await;
        status = d["sends"][0]["status"].as_str().unwrap_or("").to_string();
        if status != "queued" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status, "logged", "no SMTP server in tests: the outbox logs the mail");
    let (_, outbox) = app.get(t, "/api/v1/admin/outbox").await;
    let mail = outbox.as_array().unwrap().iter().find(|m| m["kind"] == "inv_doc").expect("the mail").clone();
    assert!(mail["subject"].as_str().unwrap().starts_with("Facture F2025-00001"), "{mail}");
    let body_text = mail["body_text"].as_str().unwrap();
    assert!(body_text.contains("417.60") && body_text.contains("Merci !"), "{body_text}");
    let link = body_text.lines().find(|l| l.contains("/public/files/")).expect("a link").trim().to_string();
    // The test server's configured address is port 0: ask the real one.
    let path = &link[link.find("/public/").unwrap()..];
    let r = reqwest::get(app.url(path)).await.unwrap();
    assert_eq!(r.status(), 200, "the customer downloads the PDF without an account");
    assert!(r.bytes().await.unwrap().starts_with(b"%PDF"));
    let (s, b) = app.post(t, &inv(o, &format!("/documents/{iid}/send")), json!({"to": "not an address"})).await;
    assert_eq!((s, fields(&b)), (422, vec!["to".to_string()]));

    // Issued means frozen.
    body["notes"] = json!("changed");
    let (s, b) = app.send(reqwest::Method::PUT, t, &inv(o, &format!("/documents/{iid}")), body).await;
    assert_eq!(s, 409, "{b}");
    let (s, _) = app.send(reqwest::Method::DELETE, t, &inv(o, &format!("/documents/{iid}")), json!({})).await;
    assert_eq!(s, 409);
    let (s, _) = app.post(t, &inv(o, &format!("/documents/{iid}/validate")), json!({})).await;
    assert_eq!(s, 409);

    // A partial credit note: 50.00 of the set-up, VAT included 60.00.
    let (s, cn) = app
        .post(
            t,
            &inv(o, &format!("/documents/{iid}/credit-notes")),
            json!({"issue_date": "2025-03-20", "lines": [{"name": "Set-up, partly refunded", "quantity_milli": 1000, "unit_price_cents": 5000, "vat_code": "FR-20"}]}),
        )
        .await;
    assert_eq!(s, 201, "{cn}");
    assert_eq!(cn["kind"], "credit_note");
    let cn = validate(&app, t, o, cn["id"].as_str().unwrap()).await;
    assert_eq!(cn["number"], "A2025-00001");
    assert_eq!(cn["gross_cents"], 6000);
    assert!(cn["mentions"].as_array().unwrap().iter().any(|m| m.as_str().unwrap().contains("F2025-00001")), "{cn}");
    let mut lines = ledger_lines(&app, t, o, "A2025-00001").await;
    lines.sort();
    assert_eq!(
        lines,
        vec![
            acct("411", "C00001", "0.00", "60.00"),
            acct("44571", "", "10.00", "0.00"),
            acct("706", "", "50.00", "0.00"),
        ]
    );
    let (_, _, cpdf) = bytes(&app, t, &inv(o, &format!("/documents/{}/pdf", cn["id"].as_str().unwrap()))).await;
    let (_, _, cxml) = bytes(&app, t, &inv(o, &format!("/documents/{}/facturx.xml", cn["id"].as_str().unwrap()))).await;
    check_facturx(&cpdf, &cxml);
    assert!(String::from_utf8(cxml).unwrap().contains("381"), "a credit note's type code");
    let (_, invoice) = app.get(t, &inv(o, &format!("/documents/{iid}"))).await;
    assert_eq!(invoice["credited_cents"], 6000);
    assert_eq!(invoice["due_cents"], 41760 - 6000);
    assert_eq!(invoice["status"], "partially_paid");
    assert_eq!(invoice["derived_ids"].as_array().unwrap().len(), 1);

    // More than is left to credit is refused.
    let (s, b) = app
        .post(
            t,
            &inv(o, &format!("/documents/{iid}/credit-notes")),
            json!({"lines": [{"name": "Too much", "unit_price_cents": 40000, "vat_code": "FR-20"}]}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(fields(&b), vec!["lines"]);

    // The whole invoice again is more than is left.
    let (s, b) = app.post(t, &inv(o, &format!("/documents/{iid}/credit-notes")), json!({})).await;
    assert_eq!(s, 422, "{b}");

    // Another invoice, credited in full: cancelled.
    let other = draft(
        &app,
        t,
        o,
        json!({"customer_id": customer["id"], "issue_date": "2025-03-22", "lines": [{"product_id": vm["id"]}]}),
    )
    .await;
    let other_id = other["id"].as_str().unwrap();
    let other = validate(&app, t, o, other_id).await;
    assert_eq!((other["number"].as_str(), other["gross_cents"].as_i64()), (Some("F2025-00002"), Some(14400)));
    let (s, full) =
        app.post(t, &inv(o, &format!("/documents/{other_id}/credit-notes")), json!({"issue_date": "2025-03-23"})).await;
    assert_eq!(s, 201, "{full}");
    assert_eq!(full["gross_cents"], 14400);
    let full = validate(&app, t, o, full["id"].as_str().unwrap()).await;
    assert_eq!(full["number"], "A2025-00002");
    let (_, other) = app.get(t, &inv(o, &format!("/documents/{other_id}"))).await;
    assert_eq!((other["status"].as_str(), other["due_cents"].as_i64()), (Some("cancelled"), Some(0)));

    // The timeline tells the story.
    let (s, tl) = app.get(t, &format!("/api/v1/orgs/{o}/timeline/inv_document/{iid}")).await;
    assert_eq!(s, 200, "{tl}");
    let kinds: Vec<&str> = tl["items"].as_array().unwrap().iter().filter_map(|e| e["status_to"].as_str()).collect();
    assert!(kinds.contains(&"validated") && kinds.contains(&"partially_paid"), "{tl}");

    // Lists filter by kind and status and add up.
    let (_, page) = app.get(t, &inv(o, "/documents?kind=invoice")).await;
    assert_eq!(page["totals"]["count"], 2);
    assert_eq!(page["totals"]["gross_cents"], 41760 + 14400);
    assert_eq!(page["totals"]["due_cents"], 41760 - 6000);
    let (_, page) = app.get(t, &inv(o, "/documents?kind=quote&status=invoiced")).await;
    assert_eq!(page["items"][0]["id"], qid);
});

db_test!(validation_names_missing_legal_fields_and_keeps_the_draft, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    let (s, b) = app
        .post(
            t,
            &format!("/api/v1/orgs/{o}/accounting/books"),
            json!({"chart": "pcg", "first_year_start": "2025-01-01"}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    // A business customer without SIREN nor address.
    let (s, c) = app.post(t, &inv(o, "/customers"), json!({"kind": "business", "name": "Garage Martin"})).await;
    assert_eq!(s, 201, "{c}");
    let d = draft(
        &app,
        t,
        o,
        json!({"customer_id": c["id"], "issue_date": "2025-06-01", "lines": [{"name": "Repair", "unit_price_cents": 10000, "vat_code": "FR-20"}]}),
    )
    .await;
    let id = d["id"].as_str().unwrap();
    let (s, b) = app.post(t, &inv(o, &format!("/documents/{id}/validate")), json!({})).await;
    assert_eq!(s, 422, "{b}");
    let got = fields(&b);
    for want in [
        "seller.address",
        "seller.postcode",
        "seller.city",
        "seller.siren",
        "seller.vat_number",
        "buyer.address",
        "buyer.siren",
    ] {
        assert!(got.contains(&want.to_string()), "{want} missing from {got:?}");
    }
    let (_, same) = app.get(t, &inv(o, &format!("/documents/{id}"))).await;
    assert_eq!(same["status"], "draft");
    assert_eq!(same["number"], Value::Null);
    assert_eq!(same["lines"], d["lines"]);
    let (_, series) = app.get(t, &inv(o, "/series")).await;
    assert!(series.as_array().unwrap().iter().all(|s| s["last_number"] == 0), "{series}");

    // Bad lines name the line and the field.
    let (s, b) = app
        .post(
            t,
            &inv(o, "/documents"),
            json!({"customer_id": c["id"], "lines": [{"name": "A", "unit_price_cents": 100, "vat_code": "XX-99"},
                                                      {"name": "B", "quantity_milli": -1000, "unit_price_cents": 100, "vat_code": "FR-20"}]}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(fields(&b), vec!["lines[0].vat_code", "lines[1].quantity_milli"]);
    let (s, b) = app.post(t, &inv(o, "/documents"), json!({"customer_id": "nope", "lines": []})).await;
    assert_eq!(s, 422);
    assert_eq!(fields(&b), vec!["customer_id"]);
    // Checked identity numbers.
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            t,
            &inv(o, "/settings"),
            json!({"legal_name": "Atelier", "siren": "732829321", "iban": "FR76 3000 6000 0112 3456 7890 188"}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(fields(&b), vec!["siren", "iban"]);

    // Fixed, it validates with the first number.
    ready_settings_only(&app, t, o).await;
    let (s, b) = app
        .send(
            reqwest::Method::PUT,
            t,
            &inv(o, &format!("/customers/{}", c["id"].as_str().unwrap())),
            json!({"kind": "business", "name": "Garage Martin", "siret": "55210055400013", "address": "1 rue Haute", "postcode": "33000", "city": "Bordeaux"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["siren"], "552100554", "the SIREN comes from the SIRET");
    let done = validate(&app, t, o, id).await;
    assert_eq!(done["number"], "F2025-00001");
    assert_eq!(done["buyer"]["siren"], "552100554");
});

async fn ready_settings_only(app: &TestApp, t: &str, o: &str) {
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            t,
            &inv(o, "/settings"),
            json!({"legal_name": "Atelier Vélo", "siren": "732829320", "vat_number": "FR44732829320", "address": "5 quai Est", "postcode": "69002", "city": "Lyon"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

db_test!(a_new_vat_rate_never_changes_an_issued_invoice, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    let c = business(&app, t, o, "Client SA").await;
    let line = json!([{"name": "Support", "quantity_milli": 1000, "unit_price_cents": 10000, "vat_code": "FR-20"}]);
    let d = draft(&app, t, o, json!({"customer_id": c["id"], "issue_date": "2025-03-01", "lines": line})).await;
    let before = validate(&app, t, o, d["id"].as_str().unwrap()).await;
    assert_eq!((before["vat_cents"].as_i64(), before["lines"][0]["vat_rate_bp"].as_i64()), (Some(2000), Some(2000)));

    // FR-20 becomes 21 % from 1 June 2025.
    let (s, r) = app
        .post(
            t,
            &inv(o, "/vat-rates"),
            json!({"code": "FR-20", "label": "TVA 21 %", "rate_bp": 2100, "valid_from": "2025-06-01"}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    let (_, rates) = app.get(t, &inv(o, "/vat-rates")).await;
    let fr20: Vec<&Value> = rates.as_array().unwrap().iter().filter(|r| r["code"] == "FR-20").collect();
    assert_eq!(
        fr20.iter().map(|r| (r["rate_bp"].as_i64().unwrap(), r["valid_to"].clone())).collect::<Vec<_>>(),
        vec![(1960, json!("2013-12-31")), (2000, json!("2025-05-31")), (2100, Value::Null)]
    );
    // The same start twice is a conflict.
    let (s, _) = app
        .post(
            t,
            &inv(o, "/vat-rates"),
            json!({"code": "FR-20", "label": "again", "rate_bp": 2200, "valid_from": "2025-06-01"}),
        )
        .await;
    assert_eq!(s, 409);

    // The issued invoice is unchanged, and so is the VAT report of its period.
    let (_, after) = app.get(t, &inv(o, &format!("/documents/{}", d["id"].as_str().unwrap()))).await;
    assert_eq!(after["vat"], before["vat"]);
    assert_eq!(after["gross_cents"], 12000);
    assert_eq!(ledger_lines(&app, t, o, "F2025-00001").await.len(), 3);

    // A draft dated in May takes 20 %, one dated in July 21 %.
    let may = draft(&app, t, o, json!({"customer_id": c["id"], "issue_date": "2025-05-15", "lines": line})).await;
    assert_eq!(may["lines"][0]["vat_rate_bp"], 2000);
    let july = draft(&app, t, o, json!({"customer_id": c["id"], "issue_date": "2025-07-01", "lines": line})).await;
    assert_eq!((july["lines"][0]["vat_rate_bp"].as_i64(), july["gross_cents"].as_i64()), (Some(2100), Some(12100)));
    // The rate is taken again on the issue date at validation: a 2013 date gets 19.6 %.
    let (s, b) = app
        .send(
            reqwest::Method::PUT,
            t,
            &inv(o, &format!("/documents/{}", may["id"].as_str().unwrap())),
            json!({"customer_id": c["id"], "issue_date": "2013-05-15", "lines": line}),
        )
        .await;
    assert_eq!((s, b["lines"][0]["vat_rate_bp"].as_i64()), (200, Some(1960)), "{b}");

    // The franchise regime makes every line exempt, with its mention.
    let (s, _) = app
        .send(
            reqwest::Method::PATCH,
            t,
            &inv(o, "/settings"),
            json!({"legal_name": "Coopérative Hébergement SCIC", "vat_regime": "franchise"}),
        )
        .await;
    assert_eq!(s, 200);
    let fr = draft(&app, t, o, json!({"customer_id": c["id"], "issue_date": "2025-08-01", "lines": line})).await;
    assert_eq!((fr["lines"][0]["vat_code"].as_str(), fr["vat_cents"].as_i64()), (Some("E"), Some(0)));
    let fr = validate(&app, t, o, fr["id"].as_str().unwrap()).await;
    assert!(fr["mentions"].as_array().unwrap().contains(&json!("TVA non applicable, art. 293 B du CGI")), "{fr}");
});

db_test!(numbers_have_no_gap_nor_duplicate_across_two_replicas, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (f.admin_token.clone(), f.org_slug.clone());
    ready_org(&app, &t, &o).await;
    let c = business(&app, &t, &o, "Client SA").await;
    // Replicas share a PostgreSQL database; SQLite is one server, so there
    // the same validations race inside one process.
    let replica = match app.backend {
        testkit::Backend::Postgres => {
            Some(TestApp::spawn_with(app.state.cfg.clone(), app.data_dir.clone(), app.backend, crate::modules()).await)
        }
        testkit::Backend::Sqlite => None,
    };
    const N: usize = 24;
    let mut ids = Vec::new();
    for _ in 0..N {
        let d = draft(
            &app,
            &t,
            &o,
            json!({"customer_id": c["id"], "issue_date": "2025-04-01",
            "lines": [{"name": "Hosting", "unit_price_cents": 1000, "vat_code": "FR-20"}]}),
        )
        .await;
        ids.push(d["id"].as_str().unwrap().to_string());
    }
    let bases = [app.base.clone(), replica.as_ref().map_or(app.base.clone(), |r| r.base.clone())];
    let calls = ids.iter().enumerate().map(|(i, id)| {
        let url = format!("{}{}", bases[i % 2], inv(&o, &format!("/documents/{id}/validate")));
        let (t, http) = (t.clone(), app.http.clone());
        async move {
            loop {
                let r = http.post(&url).bearer_auth(&t).json(&json!({})).send().await.expect("request");
                let s = r.status().as_u16();
                let b: Value = r.json().await.unwrap_or(Value::Null);
                // A busy database (SQLite's write lock) is a 503: the client retries.
                if s == 503 {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue;
                }
                assert_eq!(s, 200, "{b}");
                return b["seq"].as_i64().unwrap();
            }
        }
    });
    let mut seqs = futures_join(calls).await;
    seqs.sort();
    assert_eq!(seqs, (1..=N as i64).collect::<Vec<_>>());
    // Every invoice has its ledger entry, each numbered once.
    let (_, entries) = app.get(&t, &format!("/api/v1/orgs/{o}/accounting/entries?journal=VE")).await;
    assert_eq!(entries.as_array().unwrap().len(), N);
});

async fn futures_join<F: std::future::Future<Output = i64> + Send + 'static>(
    calls: impl Iterator<Item = F>,
) -> Vec<i64> {
    let handles: Vec<_> = calls.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("task"));
    }
    out
}

db_test!(another_organisations_records_are_not_found, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    let c = business(&app, t, o, "Client SA").await;
    let d = draft(
        &app,
        t,
        o,
        json!({"customer_id": c["id"], "lines": [{"name": "X", "unit_price_cents": 100, "vat_code": "FR-20"}]}),
    )
    .await;
    let (s, other) = app.post(t, "/api/v1/orgs", json!({"name": "Other Org", "slug": "other-org"})).await;
    assert_eq!(s, 201, "{other}");
    let cid = c["id"].as_str().unwrap();
    let did = d["id"].as_str().unwrap();
    assert_eq!(app.get(t, &inv("other-org", &format!("/customers/{cid}"))).await.0, 404);
    assert_eq!(app.get(t, &inv("other-org", &format!("/documents/{did}"))).await.0, 404);
    assert_eq!(app.post(t, &inv("other-org", &format!("/documents/{did}/validate")), json!({})).await.0, 404);
    let (s, b) = app.post(t, &inv("other-org", "/documents"), json!({"customer_id": cid, "lines": []})).await;
    assert_eq!((s, fields(&b)), (422, vec!["customer_id".to_string()]));
    let (_, page) = app.get(t, &inv("other-org", "/customers")).await;
    assert_eq!(page["items"], json!([]));
    // The search finds the start of a word of the name, in this organisation only.
    let (_, page) = app.get(t, &inv(o, "/customers?q=cli")).await;
    assert_eq!(page["items"][0]["id"], cid);
    let (_, page) = app.get(t, &inv(o, "/customers?q=sa")).await;
    assert_eq!(page["items"][0]["id"], cid, "a later word of the name");
    let (_, page) = app.get(t, &inv(o, "/customers?q=lient")).await;
    assert_eq!(page["items"], json!([]));
    let (_, page) = app.get(t, &inv("other-org", "/customers?q=cli")).await;
    assert_eq!(page["items"], json!([]));
    // Staff read but do not write; members see nothing.
    let staff = app.member(t, o, "staff@example.org", "staff").await;
    assert_eq!(app.get(&staff, &inv(o, &format!("/documents/{did}"))).await.0, 200);
    assert_eq!(app.post(&staff, &inv(o, &format!("/documents/{did}/validate")), json!({})).await.0, 403);
    let member = app.member(t, o, "member@example.org", "member").await;
    assert_eq!(app.get(&member, &inv(o, &format!("/documents/{did}"))).await.0, 403);
});
