//! Donations and tax receipts: the ledger entry of a gift, the receipt's
//! continuous number and content, once per gift, the yearly batch by mail
//! with its download link, the yearly totals.

use crate::{audited, field_errors, person, setup, url, year, Setup};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

async fn identity(app: &TestApp, s: &Setup) {
    let (_, mut b) = app.get(&s.admin, &url(&s.org, "/settings")).await;
    b["legal_name"] = json!("Les Amis du Jardin");
    b["street"] = json!("12 rue des Tilleuls");
    b["postcode"] = json!("69003");
    b["city"] = json!("Lyon");
    b["object"] = json!("Jardins partagés et éducation à l'environnement");
    b["signatory"] = json!("Anne Martin, trésorière");
    let (st, b) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/settings"), b).await;
    assert_eq!(st, 200, "{b}");
}

async fn donate(app: &TestApp, s: &Setup, body: Value) -> (u16, Value) {
    app.post(&s.admin, &url(&s.org, "/donations"), body).await
}

async fn pdf(app: &TestApp, token: Option<&str>, path: &str) -> (u16, String, Vec<u8>) {
    let mut r = app.http.get(app.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (r.status().as_u16(), ct, r.bytes().await.unwrap().to_vec())
}

fn has(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

db_test!(a_donor_receives_a_tax_receipt_once, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ana = person(&app, &s, "Ana", "Donor").await;
    let (st, d) = donate(&app, &s, json!({"person_id": ana, "amount_cents": 15000, "received_on": format!("{y}-03-10"), "method": "cheque", "request_key": "d1"})).await;
    assert_eq!(st, 201, "{d}");
    let (st, again) = donate(&app, &s, json!({"person_id": ana, "amount_cents": 15000, "received_on": format!("{y}-03-10"), "method": "cheque", "request_key": "d1"})).await;
    assert_eq!((st, &again["id"]), (200, &d["id"]), "sent twice, recorded once");
    let (_, e) = app
        .get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries/{}", s.org, d["entry_id"].as_str().unwrap()))
        .await;
    assert_eq!(e["lines"][0]["account"], "512");
    assert_eq!(e["lines"][1]["account"], "7541");
    assert_eq!(e["lines"][1]["credit"], "150.00");
    // No receipt before the organisation's identity is filled in.
    let did = d["id"].as_str().unwrap();
    let (st, b) = app.post(&s.admin, &url(&s.org, &format!("/donations/{did}/tax-receipt")), json!({})).await;
    assert_eq!(st, 409, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("settings"), "{b}");
    identity(&app, &s).await;
    let (st, r) = app.post(&s.admin, &url(&s.org, &format!("/donations/{did}/tax-receipt")), json!({})).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["reference"], format!("{y}-000001"));
    assert_eq!(r["donor_kind"], "individual");
    assert_eq!(r["amount_cents"], 15000);
    let (st, b) = app.post(&s.admin, &url(&s.org, &format!("/donations/{did}/tax-receipt")), json!({})).await;
    assert_eq!(st, 422, "{b}");
    assert!(field_errors(&b)[0].1.contains(&format!("{y}-000001")), "{b}");
    // The document: Cerfa 11580's content, the amount in words, article 200.
    let (st, ct, body) =
        pdf(&app, Some(&s.admin), &url(&s.org, &format!("/tax-receipts/{}/pdf", r["id"].as_str().unwrap()))).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "application/pdf");
    assert!(body.starts_with(b"%PDF-"));
    for text in [
        "11580",
        "200 du code g",
        "cent cinquante euros",
        "Les Amis du Jardin",
        "Ana Donor",
        "Jardins partag",
        "Ch\u{e8}que",
    ] {
        let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        assert!(body.windows(latin1.len()).any(|w| w == latin1.as_slice()), "{text} missing from the receipt");
    }
    assert!(has(&body, &format!("{y}-000001")));
});

db_test!(companies_need_a_valid_siren_and_get_article_238_bis, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    identity(&app, &s).await;
    let boss = person(&app, &s, "Bea", "Company").await;
    let (st, b) = donate(&app, &s, json!({"person_id": boss, "donor_kind": "company", "company_name": "Menuiserie Dupont", "amount_cents": 100000})).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "siren");
    let (st, b) = donate(&app, &s, json!({"person_id": boss, "donor_kind": "company", "company_name": "Menuiserie Dupont", "siren": "732 829 321", "amount_cents": 100000})).await;
    assert_eq!(st, 422, "{b}");
    assert!(field_errors(&b)[0].1.contains("not valid"));
    let (st, d) = donate(
        &app,
        &s,
        json!({"person_id": boss, "donor_kind": "company", "company_name": "Menuiserie Dupont", "siren": "732 829 320", "legal_form": "SARL",
            "amount_cents": 100000, "received_on": format!("{y}-05-02"), "method": "transfer", "form": "private_deed"}),
    )
    .await;
    assert_eq!(st, 201, "{d}");
    assert_eq!(d["siren"], "732829320");
    // A gift in kind: no ledger entry.
    let (st, k) = donate(
        &app,
        &s,
        json!({"person_id": boss, "amount_cents": 4000, "nature": "in_kind", "received_on": format!("{y}-06-01")}),
    )
    .await;
    assert_eq!(st, 201, "{k}");
    assert!(k["entry_id"].is_null());
    let (st, r) = app
        .post(&s.admin, &url(&s.org, &format!("/donations/{}/tax-receipt", d["id"].as_str().unwrap())), json!({}))
        .await;
    assert_eq!(st, 201, "{r}");
    let (_, _, body) =
        pdf(&app, Some(&s.admin), &url(&s.org, &format!("/tax-receipts/{}/pdf", r["id"].as_str().unwrap()))).await;
    for text in ["16216", "238 bis du code g", "732829320", "Menuiserie Dupont", "mille euros"] {
        assert!(has(&body, text), "{text} missing from the receipt");
    }
    // A date outside the open fiscal year is refused by the books: nothing is kept.
    let (st, b) =
        donate(&app, &s, json!({"person_id": boss, "amount_cents": 100, "received_on": format!("{}-12-31", y - 1)}))
            .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "received_on");
    let (_, list) = app.get(&s.admin, &url(&s.org, "/donations")).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
});

db_test!(the_yearly_batch_mails_receipts_and_totals_add_up, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    identity(&app, &s).await;
    let ana = person(&app, &s, "Ana", "Batch").await;
    let bo = person(&app, &s, "Bo", "Batch").await;
    let (st, nomail) = app
        .post(&s.admin, &format!("/api/v1/orgs/{}/people", s.org), json!({"given_name": "Cy", "family_name": "Nomail"}))
        .await;
    assert_eq!(st, 201);
    let cy = nomail["id"].as_str().unwrap().to_string();
    for (p, amount, day) in [(&ana, 2000, "01-15"), (&ana, 2000, "02-15"), (&bo, 5000, "03-01"), (&cy, 1000, "04-01")] {
        let (st, b) = donate(
            &app,
            &s,
            json!({"person_id": p, "amount_cents": amount, "received_on": format!("{y}-{day}"), "recurring": true}),
        )
        .await;
        assert_eq!(st, 201, "{b}");
    }
    // Bo already has a receipt for his gift: the batch leaves it.
    let (_, list) = app.get(&s.admin, &url(&s.org, &format!("/donations?person_id={bo}"))).await;
    let (st, first) = app
        .post(&s.admin, &url(&s.org, &format!("/donations/{}/tax-receipt", list[0]["id"].as_str().unwrap())), json!({}))
        .await;
    assert_eq!(st, 201, "{first}");
    let (st, report) = app.post(&s.admin, &url(&s.org, "/tax-receipts/batch"), json!({"year": y, "email": true})).await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["issued"], 2, "{report}");
    assert_eq!(report["amount_cents"], 5000);
    assert_eq!(report["emailed"], 1);
    assert_eq!(report["without_email"], json!(["Cy Nomail"]));
    let (_, receipts) = app.get(&s.admin, &url(&s.org, &format!("/tax-receipts?year={y}"))).await;
    let refs: Vec<&str> = receipts.as_array().unwrap().iter().map(|r| r["reference"].as_str().unwrap()).collect();
    assert_eq!(refs, [format!("{y}-000003"), format!("{y}-000002"), format!("{y}-000001")]);
    let ana_receipt = receipts.as_array().unwrap().iter().find(|r| r["person_id"] == json!(ana)).unwrap();
    assert_eq!(ana_receipt["donations"].as_array().unwrap().len(), 2, "one receipt for the year's gifts");
    // The mail carries a personal link that opens the receipt without signing in.
    let (st, mails) = app.get(&s.admin, "/api/v1/admin/outbox?to=ana@example.org").await;
    assert_eq!(st, 200, "{mails}");
    assert_eq!(mails.as_array().unwrap().len(), 1, "{mails}");
    let body = mails[0]["body_text"].as_str().unwrap();
    let link = body.split_whitespace().find(|w| w.starts_with("http")).unwrap();
    // The link is built from the instance's public address; the path is what matters here.
    let path = &link[link.find("/o/").unwrap()..];
    let (st, ct, doc) = pdf(&app, None, path).await;
    assert_eq!((st, ct.as_str()), (200, "application/pdf"));
    assert!(has(&doc, "Ana Batch"));
    let (st, _, _) = pdf(&app, None, &format!("/o/{}/members/receipts/not-a-token", s.org)).await;
    assert_eq!(st, 404);
    // Run again: nothing new, nothing mailed twice.
    let (_, again) = app.post(&s.admin, &url(&s.org, "/tax-receipts/batch"), json!({"year": y, "email": true})).await;
    assert_eq!(again["issued"], 0);
    let (_, mails) = app.get(&s.admin, "/api/v1/admin/outbox?to=ana@example.org").await;
    assert_eq!(mails.as_array().unwrap().len(), 1);
    // What the organisation declares.
    let (st, t) = app.get(&s.admin, &url(&s.org, &format!("/tax-receipts/totals?year={y}"))).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(
        t,
        json!({"year": y, "receipts": 3, "amount_cents": 10000, "individuals": 3, "companies": 0, "not_receipted": 0})
    );
    assert_eq!(audited(&app, &s, "members.tax_receipt.issue").await.len(), 3);
    let (st, b) = app.post(&s.admin, &url(&s.org, "/tax-receipts/batch"), json!({"year": 20})).await;
    assert_eq!(st, 422, "{b}");
});
