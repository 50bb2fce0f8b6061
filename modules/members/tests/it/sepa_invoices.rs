//! Direct debits of dues billed by invoice: the debit pays the member's
//! dues invoice through a payment of the invoicing module (the member is up
//! to date, the ledger has the bank money against the receivable), and a
//! returned debit cancels that payment (the invoice is open again, the dues
//! unpaid, the bank entry reversed).

use crate::billing::{address, invoice_path, ledger};
use crate::sepa::{collection_day, creditor, mandate};
use crate::{join, person, setup, url, yearly};
use serde_json::json;
use testkit::{db_test, TestApp};

db_test!(a_direct_debit_pays_a_dues_invoice_and_its_return_opens_it_again, |app: TestApp| async move {
    let s = setup(&app).await;
    let ty = yearly(&app, &s, "Adhésion").await;
    let ana = person(&app, &s, "Ana", "Lopez").await;
    address(&app, &s, &ana).await;
    invoice_path(&app, &s).await;
    let (st, p) = join(&app, &s, &ana, json!({"type_id": ty})).await;
    assert_eq!(st, 201, "{p}");
    let invoice_id = p["invoice_id"].as_str().expect("the period's invoice").to_string();
    let invoice_path_ = format!("/api/v1/orgs/{}/invoicing/documents/{invoice_id}", s.org);
    creditor(&app, &s).await;
    let (st, m) = mandate(
        &app,
        &s,
        json!({"person_id": ana, "iban": "FR76 3000 6000 0112 3456 7890 189", "signed_on": "2026-01-10"}),
    )
    .await;
    assert_eq!(st, 201, "{m}");
    let day = collection_day(&app, &s).await;

    // More than the invoice asks: refused, nothing written.
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/sepa/batches"),
            json!({"collection_date": day, "items": [{"person_id": ana, "period_id": p["id"], "amount_cents": 3001}]}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert!(b.to_string().contains("items[0].amount_cents"), "{b}");

    let (st, batch) = app
        .post(
            &s.admin,
            &url(&s.org, "/sepa/batches"),
            json!({"collection_date": day, "items": [{"person_id": ana, "period_id": p["id"]}]}),
        )
        .await;
    assert_eq!(st, 201, "{batch}");
    let debit = batch["debits"][0].clone();
    assert_eq!((debit["amount_cents"].as_i64(), debit["invoice_id"].as_str()), (Some(3000), Some(invoice_id.as_str())));
    assert!(debit["due_id"].is_null(), "no receipt: the invoice is the dues' document");
    let e2e = debit["end_to_end_id"].as_str().unwrap().to_string();
    let inv = app.get(&s.admin, &invoice_path_).await.1;
    assert_eq!(inv["status"], "paid", "{inv}");
    let (_, member) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}"))).await;
    assert_eq!(member["standing"]["standing"], "up_to_date", "{member}");
    let (_, found) = app.get(&s.admin, &url(&s.org, "/search?status=up_to_date")).await;
    assert!(found.to_string().contains(&ana), "{found}");
    // The file names the invoice for the member's bank statement.
    let xml = app
        .http
        .get(app.url(&url(&s.org, &format!("/sepa/batches/{}/xml", batch["id"].as_str().unwrap()))))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(xml.contains(&format!("<EndToEndId>{e2e}</EndToEndId>")), "{xml}");
    assert!(xml.contains(inv["number"].as_str().unwrap()), "{xml}");
    // The same invoice cannot be debited twice.
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/sepa/batches"),
            json!({"collection_date": day, "items": [{"person_id": ana, "period_id": p["id"]}]}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    let l = ledger(&app, &s).await;
    assert_eq!(l.get("7561"), Some(&(0, 3000)), "{l:?}");
    assert_eq!(l.get("411"), Some(&(3000, 3000)), "{l:?}");
    assert_eq!(l.get("512"), Some(&(3000, 0)), "{l:?}");

    // The bank returns it: the payment is cancelled, the dues are unpaid again.
    let (st, report) = app
        .post(&s.admin, &url(&s.org, "/sepa/returns"), json!({"content": format!("{e2e};AM04"), "returned_on": day}))
        .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["returned"], json!([e2e]));
    let inv = app.get(&s.admin, &invoice_path_).await.1;
    assert!(matches!(inv["status"].as_str(), Some("validated" | "sent")), "{inv}");
    let (_, member) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}"))).await;
    assert_eq!(member["standing"]["standing"], "dues_unpaid", "{member}");
    let (_, found) = app.get(&s.admin, &url(&s.org, "/search?status=dues_unpaid")).await;
    assert!(found.to_string().contains(&ana), "{found}");
    let l = ledger(&app, &s).await;
    assert_eq!(l.get("7561"), Some(&(0, 3000)), "income once: {l:?}");
    assert_eq!(l.get("411"), Some(&(6000, 3000)), "owed again: {l:?}");
    assert_eq!(l.get("512"), Some(&(3000, 3000)), "the bank nets zero: {l:?}");
    // The same return file again changes nothing.
    let (_, again) = app
        .post(&s.admin, &url(&s.org, "/sepa/returns"), json!({"content": format!("{e2e};AM04"), "returned_on": day}))
        .await;
    assert_eq!(again["already"], json!([e2e]));
});
