//! Dues: receipts with continuous numbers, the ledger entry of each
//! payment, nothing half-written, no duplicate charge, bulk recording,
//! settings.

use crate::{field_errors, join, person, setup, url, year, yearly, Setup};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

async fn ledger_entries(app: &TestApp, s: &Setup) -> Vec<Value> {
    let (st, b) = app.get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries?limit=500", s.org)).await;
    assert_eq!(st, 200, "{b}");
    b.as_array().cloned().unwrap_or_default()
}

async fn member_with_period(app: &TestApp, s: &Setup, given: &str, type_id: &str) -> (String, String) {
    let p = person(app, s, given, "Dues").await;
    let (st, per) = join(app, s, &p, json!({"type_id": type_id, "starts_on": format!("{}-01-01", year())})).await;
    assert_eq!(st, 201, "{per}");
    (p, per["id"].as_str().unwrap().to_string())
}

db_test!(a_due_gets_a_receipt_number_and_its_ledger_entry, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let (ana, period) = member_with_period(&app, &s, "Ana", &ind).await;
    let (st, d) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": ana, "period_id": period, "amount_cents": 1000, "method": "cheque", "paid_on": format!("{y}-02-03"), "request_key": "k1"}),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    assert_eq!(d["receipt"], "RC-000001");
    assert_eq!(d["payer_name"], "Ana Dues");
    let (st, e) = app
        .get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries/{}", s.org, d["entry_id"].as_str().unwrap()))
        .await;
    assert_eq!(st, 200, "{e}");
    assert_eq!(e["journal"], "BQ");
    assert_eq!(e["status"], "validated");
    assert_eq!(e["piece_ref"], "RC-000001");
    assert_eq!(e["source"], "members");
    assert_eq!(e["date"], format!("{y}-02-03"));
    let lines: Vec<(String, String, String)> = e["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["account"].as_str().unwrap().into(),
                l["debit"].as_str().unwrap().into(),
                l["credit"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(lines, [("512".into(), "10.00".into(), "0.00".into()), ("7561".into(), "0.00".into(), "10.00".into())]);
    // Sent twice: the same receipt, one entry.
    let (st, again) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": ana, "period_id": period, "amount_cents": 1000, "method": "cheque", "paid_on": format!("{y}-02-03"), "request_key": "k1"}),
        )
        .await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["id"], d["id"]);
    assert_eq!(ledger_entries(&app, &s).await.len(), 1);
    // More than what is left: refused, with the amount left.
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": ana, "period_id": period, "amount_cents": 2500, "method": "cash"}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(
        field_errors(&b)[0],
        ("amount_cents".to_string(), "Only 20.00 is left to pay on this period.".to_string())
    );
    // The rest in cash: journal CA, account 531; the period is paid.
    let (st, d2) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": ana, "period_id": period, "method": "cash", "paid_on": format!("{y}-02-04")}),
        )
        .await;
    assert_eq!(st, 201, "{d2}");
    assert_eq!(d2["receipt"], "RC-000002");
    assert_eq!(d2["amount_cents"], 2000);
    let (_, e) = app
        .get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries/{}", s.org, d2["entry_id"].as_str().unwrap()))
        .await;
    assert_eq!(e["journal"], "CA");
    assert_eq!(e["lines"][0]["account"], "531");
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": ana, "period_id": period, "amount_cents": 100, "method": "cash"}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "period_id");
    // Bad input: each field named, nothing written.
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": ana, "amount_cents": 0, "method": "bitcoin", "paid_on": "03/02"}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    let fields: Vec<String> = field_errors(&b).into_iter().map(|e| e.0).collect();
    assert_eq!(fields, ["method", "paid_on", "amount_cents"]);
    // A date outside the open fiscal year: the ledger refuses, nothing is kept, no number is used.
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": ana, "amount_cents": 500, "method": "transfer", "paid_on": format!("{}-12-31", y - 1)}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "paid_on", "{b}");
    let (st, d3) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": ana, "amount_cents": 500, "method": "transfer", "paid_on": format!("{y}-03-01")}),
        )
        .await;
    assert_eq!(st, 201, "{d3}");
    assert_eq!(d3["receipt"], "RC-000003", "continuous");
    assert_eq!(ledger_entries(&app, &s).await.len(), 3);
    let (_, list) = app.get(&s.admin, &url(&s.org, &format!("/dues?person_id={ana}"))).await;
    assert_eq!(list.as_array().unwrap().len(), 3);
});

db_test!(dues_for_many_members_are_all_or_nothing, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let mut items = Vec::new();
    for n in ["Bea", "Cid", "Dee"] {
        let (p, per) = member_with_period(&app, &s, n, &ind).await;
        items.push(json!({"person_id": p, "period_id": per, "method": "transfer", "paid_on": format!("{y}-04-01")}));
    }
    let mut bad = items.clone();
    bad[1]["amount_cents"] = json!(999_999);
    bad[2]["person_id"] = json!("nobody");
    let (st, b) = app.post(&s.admin, &url(&s.org, "/dues/bulk"), json!({"items": bad})).await;
    assert_eq!(st, 422, "{b}");
    let fields: Vec<String> = field_errors(&b).into_iter().map(|e| e.0).collect();
    assert_eq!(fields, ["items[1].amount_cents", "items[2].person_id"]);
    assert_eq!(ledger_entries(&app, &s).await.len(), 0, "nothing half-written");
    // The same period twice in one batch cannot be paid twice.
    let twice = json!({"items": [items[0].clone(), items[0].clone()]});
    let (st, b) = app.post(&s.admin, &url(&s.org, "/dues/bulk"), twice).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "items[1].period_id");
    let (st, b) = app.post(&s.admin, &url(&s.org, "/dues/bulk"), json!({"items": items})).await;
    assert_eq!(st, 201, "{b}");
    let receipts: Vec<&str> = b.as_array().unwrap().iter().map(|d| d["receipt"].as_str().unwrap()).collect();
    assert_eq!(receipts, ["RC-000001", "RC-000002", "RC-000003"]);
    assert_eq!(ledger_entries(&app, &s).await.len(), 3);
    let (_, l) = app.get(&s.admin, &url(&s.org, "/directory?standing=up_to_date")).await;
    assert_eq!(l.as_array().unwrap().len(), 3);
});

db_test!(dues_need_books_and_the_receipt_path, |app: TestApp| async move {
    let s = setup(&app).await;
    let (st, b) = app.get(&s.admin, &url(&s.org, "/settings")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["dues_path"], "receipt");
    // Invoicing off for the organisation: the invoice path is refused.
    let (st, _) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &format!("/api/v1/orgs/{}/modules/invoicing", s.org),
            json!({"enabled": false}),
        )
        .await;
    assert!(st == 200 || st == 204);
    let mut invoice = b.clone();
    invoice["dues_path"] = json!("invoice");
    let (st, e) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/settings"), invoice).await;
    assert_eq!(st, 409, "{e}");
    assert!(e["detail"].as_str().unwrap().contains("invoicing module"), "{e}");
    let mut bad = b.clone();
    bad["dues_account"] = json!("seven");
    let (st, e) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/settings"), bad).await;
    assert_eq!(st, 422, "{e}");
    assert_eq!(field_errors(&e)[0].0, "dues_account");
    let mut other = b.clone();
    other["dues_account"] = json!("7562");
    let (st, e) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/settings"), other).await;
    assert_eq!(st, 200, "{e}");
    // An organisation without books: a clear refusal, nothing recorded.
    assert_eq!(app.post(&s.admin, "/api/v1/orgs", json!({"name": "No books", "slug": "no-books"})).await.0, 201);
    let nb = Setup { org: "no-books".into(), admin: s.admin.clone() };
    let p = person(&app, &nb, "Eli", "Nobooks").await;
    let (st, e) = app
        .post(&s.admin, &url("no-books", "/dues"), json!({"person_id": p, "amount_cents": 500, "method": "cash"}))
        .await;
    assert_eq!(st, 409, "{e}");
    assert!(e["detail"].as_str().unwrap().contains("books"), "{e}");
    let (_, list) = app.get(&s.admin, &url("no-books", "/dues")).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
    // The chosen account is used.
    let ind = yearly(&app, &s, "Individuelle").await;
    let (ana, period) = member_with_period(&app, &s, "Ana", &ind).await;
    let (st, d) = app
        .post(&s.admin, &url(&s.org, "/dues"), json!({"person_id": ana, "period_id": period, "method": "card"}))
        .await;
    assert_eq!(st, 201, "{d}");
    assert_eq!(d["receipt"], "RC-000001", "the refused org used no number of this one");
    let (_, e) = app
        .get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries/{}", s.org, d["entry_id"].as_str().unwrap()))
        .await;
    assert_eq!(e["lines"][1]["account"], "7562");
});
