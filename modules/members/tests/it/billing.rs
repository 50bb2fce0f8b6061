//! Dues as invoices: a join makes a validated invoice through the invoicing
//! module, the member owes dues until it is paid, a Stripe payment (a local
//! stand-in and a signed webhook) makes them up to date, and the ledger has
//! the invoice (receivable vs dues account) and the payment, once.

use crate::{join, person, setup, url, yearly, Setup};
use axum::routing::post;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use testkit::{db_test, TestApp};

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub(crate) fn stripe_signature(payload: &str, secret: &str, t: i64) -> String {
    let mac = shrooms_core::crypto::hmac_sha256(secret.as_bytes(), format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", shrooms_core::crypto::hex(&mac))
}

/// A stand-in for api.stripe.com that opens checkout sessions.
pub(crate) async fn stripe_stand_in() -> String {
    let app = axum::Router::new().route(
        "/v1/checkout/sessions",
        post(|| async {
            axum::Json(json!({"id": "cs_test_dues", "url": "https://checkout.stripe.com/c/pay/cs_test_dues"}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://{addr}")
}

/// Invoicing ready for an association (franchise: dues without VAT), and the invoice path chosen.
pub async fn invoice_path(app: &TestApp, s: &Setup) {
    let (st, b) = app
        .send(
            reqwest::Method::PATCH,
            &s.admin,
            &format!("/api/v1/orgs/{}/invoicing/settings", s.org),
            json!({"legal_name": "Association des Jardins", "siren": "732 829 320", "siret": "73282932000074",
                   "vat_number": "FR44732829320", "address": "12 rue des Lilas", "postcode": "69001", "city": "Lyon", "vat_regime": "franchise"}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, mut settings) = app.get(&s.admin, &url(&s.org, "/settings")).await;
    settings["dues_path"] = json!("invoice");
    let (st, b) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/settings"), settings).await;
    assert_eq!((st, b["dues_path"].as_str()), (200, Some("invoice")), "{b}");
}

/// A postal address for a member (invoices need the buyer's).
pub async fn address(app: &TestApp, s: &Setup, person: &str) {
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(&s.org, &format!("/people/{person}/profile")),
            json!({"address": {"street": "3 rue Vaubecour", "postcode": "69002", "city": "Lyon", "country": "FR"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
}

/// Debit and credit per account (with its auxiliary) over every entry.
pub(crate) async fn ledger(app: &TestApp, s: &Setup) -> BTreeMap<String, (i64, i64)> {
    let (st, b) = app.get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries", s.org)).await;
    assert_eq!(st, 200, "{b}");
    let cents = |v: &Value| -> i64 {
        let (i, d) = v.as_str().unwrap().split_once('.').unwrap();
        i.parse::<i64>().unwrap() * 100 + d.parse::<i64>().unwrap()
    };
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for e in b.as_array().unwrap() {
        for l in e["lines"].as_array().unwrap() {
            let x = out.entry(l["account"].as_str().unwrap().to_string()).or_default();
            x.0 += cents(&l["debit"]);
            x.1 += cents(&l["credit"]);
        }
    }
    out
}

db_test!(invoiced_dues_paid_online_make_the_member_up_to_date_with_the_ledger_in_step, |app: TestApp| async move {
    let s = setup(&app).await;
    let ty = yearly(&app, &s, "Adhésion").await;
    let ana = person(&app, &s, "Ana", "Lopez").await;
    address(&app, &s, &ana).await;
    invoice_path(&app, &s).await;

    // The join makes a validated invoice of 30.00 for Ana at once.
    let (st, p) = join(&app, &s, &ana, json!({"type_id": ty})).await;
    assert_eq!(st, 201, "{p}");
    let invoice_id = p["invoice_id"].as_str().expect("the period has its invoice").to_string();
    let (st, d) = app.get(&s.admin, &format!("/api/v1/orgs/{}/invoicing/documents/{invoice_id}", s.org)).await;
    assert_eq!(st, 200, "{d}");
    assert_eq!((d["status"].as_str(), d["gross_cents"].as_i64()), (Some("validated"), Some(3000)), "{d}");
    assert!(d["number"].as_str().is_some_and(|n| !n.is_empty()), "{d}");
    assert_eq!(d["source_module"], "members");
    // Receivable against the dues account.
    let l = ledger(&app, &s).await;
    assert_eq!(l.get("7561"), Some(&(0, 3000)), "{l:?}");
    assert_eq!(l.get("411"), Some(&(3000, 0)), "{l:?}");

    // Unpaid invoice: dues unpaid, no "pay online" before a provider is set up.
    let (_, found) = app.get(&s.admin, &url(&s.org, "/search?status=dues_unpaid")).await;
    assert!(found.to_string().contains(&ana), "the directory lists her as owing dues: {found}");
    let (_, dues) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}/dues"))).await;
    assert_eq!(dues["standing"]["standing"], "dues_unpaid", "{dues}");
    assert_eq!(dues["invoices"][0]["number"], d["number"]);
    assert_eq!(dues["invoices"][0]["due_cents"], 3000);
    assert!(dues["invoices"][0]["pay_path"].is_null(), "{dues}");
    // Receipts are refused in this path: the invoice is paid in invoicing.
    let (st, b) = app
        .post(&s.admin, &url(&s.org, "/dues"), json!({"person_id": ana, "method": "cash", "period_id": p["id"]}))
        .await;
    assert_eq!(st, 409, "{b}");

    // Stripe through a local stand-in: the page and the API offer to pay online.
    let secret = "whsec_members_1";
    let base = stripe_stand_in().await;
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &format!("/api/v1/orgs/{}/invoicing/providers/stripe", s.org),
            json!({"enabled": true, "secret_key": "sk_test_members", "webhook_secret": secret, "api_base": base}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, dues) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}/dues"))).await;
    let pay_path = dues["invoices"][0]["pay_path"].as_str().expect("a pay link").to_string();
    let page = app.http.get(app.url(&pay_path)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let browser = testkit::browser_client();
    app.sign_in(&browser, "admin@example.org", testkit::ADMIN_PASSWORD).await;
    let html = browser
        .get(app.url(&format!("/o/{}/members/people/{ana}/billing", s.org)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // (The page escapes slashes: look for the token and the number.)
    let token = pay_path.rsplit('/').next().unwrap();
    assert!(html.contains(token) && html.contains(d["number"].as_str().unwrap()), "{html}");

    // The provider says it is paid (signed webhook): Ana is up to date.
    let payload = json!({
        "id": "evt_dues_1", "object": "event", "created": now_secs(), "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_dues", "object": "checkout.session", "mode": "payment", "status": "complete",
            "payment_status": "paid", "amount_total": 3000, "currency": "eur", "client_reference_id": invoice_id,
            "metadata": {"document_id": invoice_id}, "payment_intent": "pi_dues_1"}}
    })
    .to_string();
    let r = app
        .http
        .post(app.url(&format!("/api/v1/hooks/invoicing/stripe/{}", s.org)))
        .header("content-type", "application/json")
        .header("stripe-signature", stripe_signature(&payload, secret, now_secs()))
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}"))).await;
    assert_eq!(m["standing"]["standing"], "up_to_date", "{m}");
    assert_eq!(m["standing"]["period"]["paid_cents"], 3000);
    // The directory (list, searches) follows once invoicing's settlement job
    // for the members module has run.
    crate::wait_in_directory(&app, &s, "up_to_date", &ana).await;
    let (_, dues) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}/dues"))).await;
    assert_eq!(
        (dues["invoices"][0]["status"].as_str(), dues["invoices"][0]["due_cents"].as_i64()),
        (Some("paid"), Some(0))
    );
    // The ledger: income once, the receivable settled, the money on a treasury account.
    let l = ledger(&app, &s).await;
    assert_eq!(l.get("7561"), Some(&(0, 3000)), "{l:?}");
    assert_eq!(l.get("411"), Some(&(3000, 3000)), "{l:?}");
    let treasury: i64 = l.iter().filter(|(a, _)| a.starts_with('5')).map(|(_, (d, c))| d - c).sum();
    assert_eq!(treasury, 3000, "{l:?}");
});

db_test!(bulk_renewals_invoice_each_member_and_the_path_needs_invoicing, |app: TestApp| async move {
    let s = setup(&app).await;
    let ty = yearly(&app, &s, "Adhésion").await;
    let a = person(&app, &s, "Bea", "Martin").await;
    let b = person(&app, &s, "Carl", "Petit").await;
    address(&app, &s, &a).await;
    address(&app, &s, &b).await;
    // Without invoicing switched on for the organisation, the path is refused.
    let (st, body) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &format!("/api/v1/orgs/{}/modules/invoicing", s.org),
            json!({"enabled": false}),
        )
        .await;
    assert!(st == 200 || st == 204, "{body}");
    let (_, mut settings) = app.get(&s.admin, &url(&s.org, "/settings")).await;
    settings["dues_path"] = json!("invoice");
    let (st, e) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/settings"), settings).await;
    assert_eq!(st, 409, "{e}");
    assert!(e["detail"].as_str().unwrap_or("").contains("invoicing"), "{e}");
    let (st, body) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &format!("/api/v1/orgs/{}/modules/invoicing", s.org),
            json!({"enabled": true}),
        )
        .await;
    assert!(st == 200 || st == 204, "{body}");
    invoice_path(&app, &s).await;

    let y = crate::year();
    let (st, r) = app
        .post(
            &s.admin,
            &url(&s.org, "/apply-type"),
            json!({"person_ids": [a, b], "type_id": ty, "starts_on": format!("{y}-01-01")}),
        )
        .await;
    assert!(st == 200 || st == 201, "{r}");
    let periods = r.as_array().unwrap();
    assert_eq!(periods.len(), 2);
    let ids: Vec<&str> = periods.iter().map(|p| p["invoice_id"].as_str().expect("invoiced")).collect();
    assert_ne!(ids[0], ids[1], "one invoice per member");
    let (_, list) = app.get(&s.admin, &format!("/api/v1/orgs/{}/invoicing/documents", s.org)).await;
    assert!(list.to_string().contains(ids[0]) && list.to_string().contains(ids[1]), "{list}");
});
