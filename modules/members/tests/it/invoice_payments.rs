//! Dues as invoices, paid from the members pages: the treasurer records the
//! payment of a member's dues invoice (cheque, transfer, cash, card) on the
//! member's page, the Dues page or the API; invoicing records it (allocated
//! to the invoice, ledger entry), the member is up to date at once, a
//! request sent twice records one payment.

use crate::billing::{address, invoice_path, ledger};
use crate::{field_errors, join, person, setup, url, yearly, Setup};
use serde_json::{json, Value};
use testkit::{db_test, TestApp, ADMIN_PASSWORD};

/// The organisation's today (Europe/Paris), which UTC's date is not around midnight.
fn today() -> String {
    jiff::Timestamp::now().in_tz("Europe/Paris").unwrap().date().to_string()
}

async fn invoice_left(app: &TestApp, s: &Setup, person: &str) -> (String, i64) {
    let (st, d) = app.get(&s.admin, &url(&s.org, &format!("/people/{person}/dues"))).await;
    assert_eq!(st, 200, "{d}");
    (d["invoices"][0]["status"].as_str().unwrap().to_string(), d["invoices"][0]["due_cents"].as_i64().unwrap())
}

async fn pay(app: &TestApp, s: &Setup, body: Value) -> (u16, Value) {
    app.post(&s.admin, &url(&s.org, "/invoice-payments"), body).await
}

db_test!(dues_invoices_are_paid_from_the_members_pages_once, |app: TestApp| async move {
    let s = setup(&app).await;
    let ty = yearly(&app, &s, "Adhésion").await;
    let mut people = Vec::new();
    for (g, f) in [("Ana", "Lopez"), ("Bob", "Marchal"), ("Carl", "Petit")] {
        let p = person(&app, &s, g, f).await;
        address(&app, &s, &p).await;
        people.push(p);
    }
    let [ana, bob, carl] = [people[0].clone(), people[1].clone(), people[2].clone()];
    // With receipts, this route is refused and points to recording the due.
    let (st, b) = pay(&app, &s, json!({"person_id": ana, "method": "cash"})).await;
    assert_eq!(st, 409, "{b}");
    invoice_path(&app, &s).await;
    let mut periods = Vec::new();
    for p in &people {
        let (st, per) = join(&app, &s, p, json!({"type_id": ty})).await;
        assert_eq!(st, 201, "{per}");
        periods.push(per["id"].as_str().unwrap().to_string());
    }
    // A receipt is refused in this path, and says where to go instead.
    let (st, b) = app
        .post(&s.admin, &url(&s.org, "/dues"), json!({"person_id": ana, "method": "cash", "amount_cents": 3000}))
        .await;
    assert_eq!(st, 409, "{b}");
    assert!(b["detail"].as_str().is_some_and(|d| d.contains("invoice-payments")), "{b}");

    // Bad input: each error names its field, nothing is recorded.
    let day = today();
    for (body, field) in [
        (json!({"person_id": ana, "method": "cheque", "paid_on": day}), "cheque_number"),
        (json!({"person_id": ana, "method": "cash", "amount_cents": 4000}), "amount_cents"),
        (json!({"person_id": ana, "method": "cash", "paid_on": "2999-01-01"}), "paid_on"),
        (json!({"person_id": ana, "method": "direct_debit"}), "method"),
        (json!({"person_id": "nobody", "method": "cash"}), "person_id"),
        (json!({"person_id": ana, "period_id": periods[1], "method": "cash"}), "period_id"),
    ] {
        let (st, b) = pay(&app, &s, body.clone()).await;
        assert_eq!(st, 422, "{body}: {b}");
        assert!(field_errors(&b).iter().any(|(f, _)| f == field), "{body}: {b}");
    }
    assert_eq!(invoice_left(&app, &s, &ana).await, ("validated".into(), 3000));

    // A cheque of 10.00, sent twice with its request key: one payment.
    let first = json!({"person_id": ana, "method": "cheque", "cheque_number": "0012345", "amount_cents": 1000,
        "paid_on": day, "request_key": "pay-ana-1"});
    let (st, p1) = pay(&app, &s, first.clone()).await;
    assert_eq!(st, 201, "{p1}");
    assert_eq!((p1["amount_cents"].as_i64(), p1["left_cents"].as_i64()), (Some(1000), Some(2000)), "{p1}");
    assert_eq!(p1["period_id"].as_str(), Some(periods[0].as_str()));
    let (st, again) = pay(&app, &s, first).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["payment_id"], p1["payment_id"]);
    assert_eq!(invoice_left(&app, &s, &ana).await, ("partially_paid".into(), 2000));
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}"))).await;
    assert_eq!(m["standing"]["standing"], "dues_unpaid", "{m}");
    // The rest by transfer, the amount left out: what is left.
    let (st, p2) = pay(&app, &s, json!({"person_id": ana, "method": "transfer", "reference": "VIR 42"})).await;
    assert_eq!(st, 201, "{p2}");
    assert_eq!((p2["amount_cents"].as_i64(), p2["left_cents"].as_i64()), (Some(2000), Some(0)), "{p2}");
    assert_eq!(invoice_left(&app, &s, &ana).await, ("paid".into(), 0));
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}"))).await;
    assert_eq!(m["standing"]["standing"], "up_to_date", "{m}");
    // The directory follows in the same transaction, not a job later.
    let (_, found) = app.get(&s.admin, &url(&s.org, "/search?status=up_to_date")).await;
    assert!(found.to_string().contains(&ana), "{found}");
    // Nothing left: refused.
    let (st, b) = pay(&app, &s, json!({"person_id": ana, "method": "cash"})).await;
    assert_eq!(st, 422, "{b}");
    assert!(field_errors(&b).iter().any(|(f, _)| f == "person_id"), "{b}");

    // Bulk: an error in one item records none.
    let bulk = |m1: &str| {
        json!({"items": [
            {"person_id": bob, "period_id": periods[1], "method": "cash", "paid_on": day},
            {"person_id": carl, "period_id": periods[2], "method": m1, "paid_on": day},
        ]})
    };
    let (st, b) = app.post(&s.admin, &url(&s.org, "/invoice-payments/bulk"), bulk("bitcoin")).await;
    assert_eq!(st, 422, "{b}");
    assert!(field_errors(&b).iter().any(|(f, _)| f == "items[1].method"), "{b}");
    assert_eq!(invoice_left(&app, &s, &bob).await, ("validated".into(), 3000));
    let (st, b) = app.post(&s.admin, &url(&s.org, "/invoice-payments/bulk"), bulk("card")).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b.as_array().unwrap().len(), 2);
    assert_eq!(invoice_left(&app, &s, &bob).await, ("paid".into(), 0));
    assert_eq!(invoice_left(&app, &s, &carl).await, ("paid".into(), 0));

    // The books: three dues earned once, receivable settled, 90.00 in treasury.
    let l = ledger(&app, &s).await;
    assert_eq!(l.get("7561"), Some(&(0, 9000)), "{l:?}");
    assert_eq!(l.get("411"), Some(&(9000, 9000)), "{l:?}");
    let treasury: i64 = l.iter().filter(|(a, _)| a.starts_with('5')).map(|(_, (d, c))| d - c).sum();
    assert_eq!(treasury, 9000, "{l:?}");
});

db_test!(the_members_page_records_a_dues_invoice_payment, |app: TestApp| async move {
    let s = setup(&app).await;
    let ty = yearly(&app, &s, "Adhésion").await;
    let dan = person(&app, &s, "Dan", "Roux").await;
    address(&app, &s, &dan).await;
    invoice_path(&app, &s).await;
    let (st, per) = join(&app, &s, &dan, json!({"type_id": ty})).await;
    assert_eq!(st, 201, "{per}");
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, "admin@example.org", ADMIN_PASSWORD).await;
    let page = format!("/o/{}/members/people/{dan}", s.org);
    let html = browser.get(app.url(&page)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("name=\"cheque_number\""), "the invoice path's form asks for the cheque's number");
    let post = |fields: Vec<(&'static str, String)>| {
        let browser = browser.clone();
        let url = app.url(&format!("{page}/pay"));
        async move {
            let r = browser.post(url).form(&fields).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    // A cheque without its number: the form says so, nothing is recorded.
    let (st, body) = post(vec![
        ("_csrf", csrf.clone()),
        ("request_key", "form-dan-1".into()),
        ("period_id", per["id"].as_str().unwrap().into()),
        ("method", "cheque".into()),
        ("paid_on", today()),
    ])
    .await;
    assert_eq!(st, 422, "{body}");
    assert!(body.contains("Write the cheque&#x27;s number.") || body.contains("Write the cheque's number."), "{body}");
    assert_eq!(invoice_left(&app, &s, &dan).await, ("validated".into(), 3000));
    // With the number: recorded, the member's page shows the invoice paid.
    let fields = vec![
        ("_csrf", csrf.clone()),
        ("request_key", "form-dan-2".into()),
        ("period_id", per["id"].as_str().unwrap().into()),
        ("method", "cheque".into()),
        ("cheque_number", "7654321".into()),
        ("paid_on", today()),
    ];
    let (st, body) = post(fields.clone()).await;
    assert!(st == 200 || st == 303, "{st} {body}");
    assert_eq!(invoice_left(&app, &s, &dan).await, ("paid".into(), 0));
    // The form sent twice (back button, double click): still one payment.
    post(fields).await;
    let l = ledger(&app, &s).await;
    assert_eq!(l.get("411"), Some(&(3000, 3000)), "{l:?}");
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{dan}"))).await;
    assert_eq!(m["standing"]["standing"], "up_to_date", "{m}");
});
