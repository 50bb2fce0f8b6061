//! Payments through the API: cheques and their deposit slip, a Stripe
//! webhook against the running server, the ledger read back through the
//! accounting API, overpayments and customer credit, reminders, the
//! suspension hook and the reports.

use crate::{business, draft, inv, ready_org, validate};
use axum::routing::post;
use serde_json::{json, Value};
use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::permissions::{Access, BuiltinRole};
use shrooms_core::web::AppState;
use shrooms_core::Module;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use testkit::{db_test, TestApp};

// ---------- a module that suspends a service, for the hook ----------

fn resume(_st: AppState, _ctx: JobCtx) -> JobFuture {
    Box::pin(async move { Ok(()) })
}

pub const RESUME: JobSpec =
    JobSpec { name: "svc.resume", max_attempts: 3, backoff_secs: 0, timeout_secs: 10, run: resume };

/// Stands for the hosting module: it only declares the job that restores a service.
pub struct ServiceModule;

impl Module for ServiceModule {
    fn id(&self) -> &'static str {
        "svc"
    }
    fn name_key(&self) -> &'static str {
        "svc"
    }
    fn description_key(&self) -> &'static str {
        "svc"
    }
    fn default_access(&self, _role: BuiltinRole) -> Access {
        Access::None
    }
    fn jobs(&self) -> Vec<JobSpec> {
        vec![RESUME]
    }
}

// ---------- helpers ----------

fn fields(b: &Value) -> Vec<String> {
    b["errors"]
        .as_array()
        .map(|v| v.iter().map(|e| e["field"].as_str().unwrap_or("").to_string()).collect())
        .unwrap_or_default()
}

/// A validated invoice issued in March 2025 (due 30 days later) of `qty`
/// months of a 100.00 service at 20 % VAT: 120.00 a month.
async fn issue_invoice(app: &TestApp, t: &str, o: &str, customer: &Value, issue: &str, qty: i64) -> Value {
    let d = draft(
        app,
        t,
        o,
        json!({"customer_id": customer["id"], "issue_date": issue,
               "lines": [{"name": "Hosting", "quantity_milli": qty * 1000, "unit_code": "MON", "unit_price_cents": 10000, "vat_code": "FR-20"}]}),
    )
    .await;
    validate(app, t, o, d["id"].as_str().unwrap()).await
}

async fn doc(app: &TestApp, t: &str, o: &str, id: &str) -> Value {
    let (s, b) = app.get(t, &inv(o, &format!("/documents/{id}"))).await;
    assert_eq!(s, 200, "{b}");
    b
}

/// Debits and credits per account (and auxiliary) over a journal's validated entries.
async fn balances(app: &TestApp, t: &str, o: &str, journal: &str) -> BTreeMap<String, (i64, i64)> {
    let (s, b) = app.get(t, &format!("/api/v1/orgs/{o}/accounting/entries?journal={journal}")).await;
    assert_eq!(s, 200, "{b}");
    let cents = |v: &Value| -> i64 {
        let s = v.as_str().unwrap();
        let (i, d) = s.split_once('.').unwrap();
        i.parse::<i64>().unwrap() * 100 + d.parse::<i64>().unwrap()
    };
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for e in b.as_array().unwrap() {
        assert_eq!(e["status"], "validated", "{e}");
        for l in e["lines"].as_array().unwrap() {
            let key = format!(
                "{}{}",
                l["account"].as_str().unwrap(),
                l["aux"].as_str().map(|a| if a.is_empty() { String::new() } else { format!("/{a}") }).unwrap()
            );
            let x = out.entry(key).or_default();
            x.0 += cents(&l["debit"]);
            x.1 += cents(&l["credit"]);
        }
    }
    out
}

/// Fiscal years after 2025 up to this one, for payments received today.
async fn years_to_today(app: &TestApp, t: &str, o: &str) {
    let this_year = shrooms_accounting::domain::Day::today().0.year();
    for y in 2026..=this_year {
        let (s, b) = app
            .post(
                t,
                &format!("/api/v1/orgs/{o}/accounting/years"),
                json!({"start": format!("{y}-01-01"), "end": format!("{y}-12-31")}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// The `Stripe-Signature` header, computed here as Stripe does.
fn stripe_signature(payload: &str, secret: &str, t: i64) -> String {
    let mac = shrooms_core::crypto::hmac_sha256(secret.as_bytes(), format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", shrooms_core::crypto::hex(&mac))
}

/// A `checkout.session.completed` event as Stripe sends it (fields we do not read trimmed).
fn completed_event(event_id: &str, session: &str, document_id: &str, amount: i64) -> String {
    json!({
        "id": event_id, "object": "event", "api_version": "2024-06-20", "created": now_secs(),
        "type": "checkout.session.completed", "livemode": false, "pending_webhooks": 1,
        "request": {"id": null, "idempotency_key": null},
        "data": {"object": {
            "id": session, "object": "checkout.session", "mode": "payment", "status": "complete",
            "payment_status": "paid", "amount_subtotal": amount, "amount_total": amount, "currency": "eur",
            "client_reference_id": document_id, "metadata": {"document_id": document_id},
            "payment_intent": format!("pi_{session}"), "customer_details": {"email": "compta@client.example"}
        }}
    })
    .to_string()
}

async fn webhook(app: &TestApp, o: &str, payload: &str, signature: Option<&str>) -> (u16, String, Value) {
    let mut r = app
        .http
        .post(app.url(&format!("/api/v1/hooks/invoicing/stripe/{o}")))
        .header("content-type", "application/json")
        .body(payload.to_string());
    if let Some(s) = signature {
        r = r.header("stripe-signature", s);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (status, ct, r.json().await.unwrap_or(Value::Null))
}

/// A small stand-in for api.stripe.com: answers session creations and keeps
/// what it was sent.
async fn stripe_stand_in() -> (String, Arc<Mutex<Vec<(String, String)>>>) {
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let keep = seen.clone();
    let app = axum::Router::new().route(
        "/v1/checkout/sessions",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let n = {
                    let mut k = keep.lock().unwrap();
                    k.push((auth, body));
                    k.len()
                };
                axum::Json(json!({"id": format!("cs_test_{n}"), "object": "checkout.session",
                    "url": format!("https://checkout.stripe.com/c/pay/cs_test_{n}")}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    (format!("http://{addr}"), seen)
}

// ---------- the story ----------

db_test!(cheque_then_stripe_settle_an_invoice_with_the_ledger_and_reports_in_step, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    let customer = business(&app, t, o, "Librairie du Parc SARL").await;
    let aux = customer["aux_account"].as_str().unwrap().to_string();
    // Two months of hosting: 200.00 + 40.00 VAT.
    let invoice = issue_invoice(&app, t, o, &customer, "2025-03-01", 2).await;
    let iid = invoice["id"].as_str().unwrap().to_string();
    assert_eq!(invoice["gross_cents"], 24000);

    // A cheque of 100.00: partly paid, waiting on "cheques to deposit".
    let (s, cheque) = app
        .post(
            t,
            &inv(o, "/payments"),
            json!({"customer_id": customer["id"], "method": "cheque", "amount_cents": 10000, "received_date": "2025-03-10",
                   "cheque_bank": "Crédit Coopératif", "cheque_number": "4411207"}),
        )
        .await;
    assert_eq!(s, 201, "{cheque}");
    assert_eq!(cheque["allocations"][0]["invoice_id"], iid.as_str());
    assert_eq!(cheque["unallocated_cents"], 0);
    let d = doc(&app, t, o, &iid).await;
    assert_eq!((d["status"].as_str(), d["paid_cents"].as_i64()), (Some("partially_paid"), Some(10000)));
    let bq = balances(&app, t, o, "BQ").await;
    assert_eq!(bq.get("5112"), Some(&(10000, 0)));
    assert_eq!(bq.get(&format!("411/{aux}")), Some(&(0, 10000)));

    // A cheque without its number is refused, naming the field.
    let (s, b) = app
        .post(t, &inv(o, "/payments"), json!({"customer_id": customer["id"], "method": "cheque", "amount_cents": 500}))
        .await;
    assert_eq!((s, fields(&b)), (422, vec!["cheque_number".to_string()]), "{b}");

    // The deposit slip takes it to the bank: 512 <- 5112; its PDF is a PDF.
    let (s, slip) = app.post(t, &inv(o, "/deposit-slips"), json!({"deposit_date": "2025-03-12"})).await;
    assert_eq!(s, 201, "{slip}");
    assert_eq!(
        (slip["number"].as_str(), slip["cheque_count"].as_i64(), slip["total_cents"].as_i64()),
        (Some("REM-00001"), Some(1), Some(10000))
    );
    let r = app
        .http
        .get(app.url(&inv(o, &format!("/deposit-slips/{}/pdf", slip["id"].as_str().unwrap()))))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.bytes().await.unwrap().starts_with(b"%PDF-"));
    let bq = balances(&app, t, o, "BQ").await;
    assert_eq!((bq.get("5112"), bq.get("512")), (Some(&(10000, 10000)), Some(&(10000, 0))));
    // Nothing left to deposit; a deposited cheque cannot be cancelled.
    let (s, _) = app.post(t, &inv(o, "/deposit-slips"), json!({})).await;
    assert_eq!(s, 422);
    let (s, _) = app.post(t, &inv(o, &format!("/payments/{}/cancel", cheque["id"].as_str().unwrap())), json!({})).await;
    assert_eq!(s, 409);

    // Stripe, pointed at a local stand-in; secrets are never shown back.
    years_to_today(&app, t, o).await;
    let (base, seen) = stripe_stand_in().await;
    let secret = "whsec_test_4242";
    let (s, cfg) = app
        .send(
            reqwest::Method::PUT,
            t,
            &inv(o, "/providers/stripe"),
            json!({"enabled": true, "secret_key": "sk_test_abc123", "webhook_secret": secret, "api_base": base}),
        )
        .await;
    assert_eq!(s, 200, "{cfg}");
    assert_eq!((cfg["secret_key_set"].as_bool(), cfg["webhook_secret_set"].as_bool()), (Some(true), Some(true)));
    let (_, cfg) = app.get(t, &inv(o, "/providers/stripe")).await;
    assert!(!cfg.to_string().contains("sk_test_abc123") && !cfg.to_string().contains(secret), "{cfg}");
    let (s, b) =
        app.send(reqwest::Method::PUT, t, &inv(o, "/providers/stripe"), json!({"api_base": "http://10.1.2.3"})).await;
    assert_eq!((s, fields(&b)), (422, vec!["api_base".to_string()]));

    // The checkout asks Stripe for what is still due: 140.00.
    let (s, co) = app.post(t, &inv(o, &format!("/documents/{iid}/checkout")), json!({})).await;
    assert_eq!(s, 201, "{co}");
    assert_eq!((co["amount_cents"].as_i64(), co["provider_session_id"].as_str()), (Some(14000), Some("cs_test_1")));
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].0, "Bearer sk_test_abc123");
        let form: Vec<(String, String)> = serde_urlencoded::from_str(&seen[0].1).unwrap();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("line_items[0][price_data][unit_amount]").as_deref(), Some("14000"));
        assert_eq!(get("line_items[0][price_data][currency]").as_deref(), Some("eur"));
        assert_eq!(get("metadata[document_id]").as_deref(), Some(iid.as_str()));
    }
    // The customer's public page offers to pay.
    let (s, link) = app.post(t, &inv(o, &format!("/documents/{iid}/pay-link")), json!({})).await;
    assert_eq!(s, 200, "{link}");
    let page = app.http.get(app.url(link["path"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(invoice["number"].as_str().unwrap()) && html.contains("140"), "{html}");
    let bad = app.http.get(app.url(&format!("/o/{o}/invoicing/pay/not-a-token-at-all-xxxxxxxx"))).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 404);
    // The invoice sent by email carries the same page.
    let (s, b) = app.post(t, &inv(o, &format!("/documents/{iid}/send")), json!({"to": "compta@client.example"})).await;
    assert_eq!(s, 200, "{b}");
    let (_, outbox) = app.get(t, "/api/v1/admin/outbox?to=compta@client.example").await;
    let mail = outbox.as_array().unwrap().iter().find(|m| m["kind"] == "inv_doc").expect("the invoice mail").clone();
    assert!(mail["body_text"].as_str().unwrap().contains(link["path"].as_str().unwrap()), "{mail}");

    let payload = completed_event("evt_1Pay", "cs_test_1", &iid, 14000);
    // A bad signature: 400 problem+json, nothing posted.
    let (s, ct, b) = webhook(&app, o, &payload, Some(&stripe_signature(&payload, "whsec_wrong", now_secs()))).await;
    assert_eq!((s, ct.as_str()), (400, "application/problem+json"), "{b}");
    let (s, _, _) = webhook(&app, o, &payload, None).await;
    assert_eq!(s, 400);
    // Correctly signed but ten minutes old: refused as a possible replay.
    let (s, _, b) = webhook(&app, o, &payload, Some(&stripe_signature(&payload, secret, now_secs() - 600))).await;
    assert_eq!(s, 400, "{b}");
    assert_eq!(doc(&app, t, o, &iid).await["status"], "partially_paid");
    // Signed now: the invoice is paid, the money waits on the provider's account.
    let sig = stripe_signature(&payload, secret, now_secs());
    let (s, _, b) = webhook(&app, o, &payload, Some(&sig)).await;
    assert_eq!((s, b["outcome"].as_str()), (200, Some("paid")), "{b}");
    let d = doc(&app, t, o, &iid).await;
    assert_eq!(
        (d["status"].as_str(), d["paid_cents"].as_i64(), d["due_cents"].as_i64()),
        (Some("paid"), Some(24000), Some(0))
    );
    // The same event again: acknowledged, nothing posted twice.
    let (s, _, b) = webhook(&app, o, &payload, Some(&sig)).await;
    assert_eq!((s, b["outcome"].as_str()), (200, Some("duplicate")), "{b}");
    let (_, online) = app.get(t, &inv(o, "/payments?method=online")).await;
    assert_eq!(online.as_array().unwrap().len(), 1, "{online}");
    assert_eq!((online[0]["provider"].as_str(), online[0]["amount_cents"].as_i64()), (Some("stripe"), Some(14000)));
    // A paid checkout for an invoice that does not exist: acknowledged, nothing posted.
    let stray = completed_event("evt_2Stray", "cs_unknown", "no-such-invoice", 999);
    let (s, _, b) = webhook(&app, o, &stray, Some(&stripe_signature(&stray, secret, now_secs()))).await;
    assert_eq!((s, b["outcome"].as_str()), (200, Some("unknown_invoice")), "{b}");

    // The bank journal, account by account.
    let bq = balances(&app, t, o, "BQ").await;
    assert_eq!(bq.get("5112"), Some(&(10000, 10000)));
    assert_eq!(bq.get("512"), Some(&(10000, 0)));
    assert_eq!(bq.get("517"), Some(&(14000, 0)));
    assert_eq!(bq.get(&format!("411/{aux}")), Some(&(0, 24000)));
    assert_eq!(bq.len(), 4, "{bq:?}");
    // With the sales journal, the customer's account is settled.
    let ve = balances(&app, t, o, "VE").await;
    assert_eq!(ve.get(&format!("411/{aux}")), Some(&(24000, 0)));

    // A credit note of 50.00 + VAT on another invoice of the period.
    let second = issue_invoice(&app, t, o, &customer, "2025-03-15", 1).await;
    let sid = second["id"].as_str().unwrap();
    let (s, cn) = app
        .post(
            t,
            &inv(o, &format!("/documents/{sid}/credit-notes")),
            json!({"issue_date": "2025-03-20", "lines": [{"name": "Hosting, half a month back", "quantity_milli": 500, "unit_code": "MON", "unit_price_cents": 10000, "vat_code": "FR-20"}]}),
        )
        .await;
    assert_eq!(s, 201, "{cn}");
    validate(&app, t, o, cn["id"].as_str().unwrap()).await;

    // Reports, against figures computed by hand.
    let (s, r) = app.get(t, &inv(o, "/reports/revenue?from=2025-03-01&to=2025-03-31")).await;
    assert_eq!(s, 200, "{r}");
    assert_eq!(r["total_net_cents"], 20000 + 10000 - 5000);
    let (_, r) = app.get(t, &inv(o, "/reports/vat?from=2025-01-01&to=2025-12-31")).await;
    assert_eq!(r["totals"], json!([{"period": "total", "rate_bp": 2000, "base_cents": 25000, "vat_cents": 5000}]));
    assert_eq!(r["rows"][0]["period"], "2025-03");
    let (_, r) = app.get(t, &inv(o, "/reports/ageing?as_of=2025-05-10")).await;
    // The second invoice (120.00, due 2025-04-14) less its credit note (60.00): 60.00, 26 days late.
    assert_eq!(r["total"]["d1_30_cents"], 6000, "{r}");
    assert_eq!(r["total"]["total_cents"], 6000);
    assert_eq!(r["customers"].as_array().unwrap().len(), 1);
    let (_, r) = app.get(t, &inv(o, "/reports/payments?from=2025-03-01")).await;
    let by: BTreeMap<String, i64> = r["by_method"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["method"].as_str().unwrap().to_string(), m["total_cents"].as_i64().unwrap()))
        .collect();
    assert_eq!(by, BTreeMap::from([("cheque".to_string(), 10000), ("online".to_string(), 14000)]));
    assert_eq!(r["card_receipts"].as_array().unwrap().len(), 1);
    assert_eq!(r["card_receipts"][0]["reference"], "pi_cs_test_1");
    // The same report as CSV and ODS.
    let r = app
        .http
        .get(app.url(&inv(o, "/reports/payments?from=2025-03-01&format=csv")))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert!(csv.contains("2025-03-10") && csv.contains("cheque") && csv.contains("100.00"), "{csv}");
    let r =
        app.http.get(app.url(&inv(o, "/reports/vat?format=ods&from=2025-01-01"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/vnd.oasis.opendocument.spreadsheet");
    assert!(r.bytes().await.unwrap().starts_with(b"PK"));

    // The invoice's timeline tells the story.
    let (_, tl) = app.get(t, &format!("/api/v1/orgs/{o}/timeline/inv_document/{iid}")).await;
    let text = tl.to_string();
    assert!(
        text.contains("Payment received: 100.00 (cheque)") && text.contains("Payment received: 140.00 (online)"),
        "{tl}"
    );

    // The pages answer.
    let client = testkit::browser_client();
    app.sign_in(&client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    for p in ["payments", "deposit-slips", "credits", "reminders", "reports?from=2025-01-01", "payment-settings"] {
        let r = client.get(app.url(&format!("/o/{o}/invoicing/{p}"))).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{p}");
    }
    let r = client.get(app.url(&format!("/o/{o}/invoicing/payment-settings"))).send().await.unwrap();
    assert!(!r.text().await.unwrap().contains("sk_test_abc123"));
});

db_test!(overpayment_needs_a_credit_which_a_later_invoice_uses, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    let customer = business(&app, t, o, "Atelier Vélo SCOP").await;
    let a = issue_invoice(&app, t, o, &customer, "2025-03-01", 1).await;
    let aid = a["id"].as_str().unwrap().to_string();

    // 150.00 for 120.00 due, without asking to keep a credit: refused, nothing posted.
    let pay = json!({"customer_id": customer["id"], "method": "transfer", "amount_cents": 15000, "received_date": "2025-03-05", "reference": "VIR 0305"});
    let (s, b) = app.post(t, &inv(o, "/payments"), pay.clone()).await;
    assert_eq!((s, fields(&b)), (422, vec!["amount_cents".to_string()]), "{b}");
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("30.00"), "{b}");
    assert!(balances(&app, t, o, "BQ").await.is_empty());
    let (_, list) = app.get(t, &inv(o, "/payments")).await;
    assert_eq!(list, json!([]));
    // Explicit allocations are checked against what is due.
    let mut too_much = pay.clone();
    too_much["allocations"] = json!([{"invoice_id": aid, "amount_cents": 12001}]);
    let (s, b) = app.post(t, &inv(o, "/payments"), too_much).await;
    assert_eq!((s, fields(&b)), (422, vec!["allocations[0].amount_cents".to_string()]), "{b}");

    // Kept as a credit: the invoice is paid, 30.00 stays with the customer.
    let mut keep = pay.clone();
    keep["keep_credit"] = json!(true);
    let (s, p) = app.post(t, &inv(o, "/payments"), keep).await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["unallocated_cents"], 3000);
    assert_eq!(doc(&app, t, o, &aid).await["status"], "paid");
    let cid = customer["id"].as_str().unwrap();
    let (_, credit) = app.get(t, &inv(o, &format!("/customers/{cid}/credit"))).await;
    assert_eq!((credit["credit_cents"].as_i64(), credit["due_cents"].as_i64()), (Some(3000), Some(0)));
    let (_, credits) = app.get(t, &inv(o, "/credits")).await;
    assert_eq!(credits.as_array().unwrap().len(), 1);
    // The whole 150.00 is on the bank; the customer's account shows the 30.00 in their favour.
    let bq = balances(&app, t, o, "BQ").await;
    assert_eq!(bq.get("512"), Some(&(15000, 0)));

    // A later invoice uses the credit.
    let b_inv = issue_invoice(&app, t, o, &customer, "2025-04-01", 1).await;
    let bid = b_inv["id"].as_str().unwrap();
    let (s, left) = app.post(t, &inv(o, &format!("/customers/{cid}/credit/apply")), json!({"invoice_id": bid})).await;
    assert_eq!(s, 200, "{left}");
    assert_eq!((left["credit_cents"].as_i64(), left["due_cents"].as_i64()), (Some(0), Some(9000)));
    let d = doc(&app, t, o, bid).await;
    assert_eq!((d["status"].as_str(), d["paid_cents"].as_i64()), (Some("partially_paid"), Some(3000)));
    let (s, _) = app.post(t, &inv(o, &format!("/customers/{cid}/credit/apply")), json!({"invoice_id": bid})).await;
    assert_eq!(s, 409);

    // Cash paid by mistake, then cancelled: the entry is reversed, the invoice reopens.
    let (s, cash) = app
        .post(
            t,
            &inv(o, "/payments"),
            json!({"customer_id": cid, "method": "cash", "amount_cents": 9000, "received_date": "2025-04-02"}),
        )
        .await;
    assert_eq!(s, 201, "{cash}");
    assert_eq!(doc(&app, t, o, bid).await["status"], "paid");
    let (s, c) = app.post(t, &inv(o, &format!("/payments/{}/cancel", cash["id"].as_str().unwrap())), json!({})).await;
    assert_eq!((s, c["status"].as_str()), (200, Some("cancelled")), "{c}");
    let d = doc(&app, t, o, bid).await;
    assert_eq!((d["status"].as_str(), d["paid_cents"].as_i64()), (Some("partially_paid"), Some(3000)));
    let ca = balances(&app, t, o, "CA").await;
    assert_eq!(ca.get("531"), Some(&(9000, 9000)));
    let (s, _) = app.post(t, &inv(o, &format!("/payments/{}/cancel", cash["id"].as_str().unwrap())), json!({})).await;
    assert_eq!(s, 409);

    // Another organisation's member sees none of it.
    let (s, _) = app.get(t, &inv(o, "/payments/not-a-payment")).await;
    assert_eq!(s, 404);
});

db_test!(reminders_follow_their_levels_and_stop_once_paid, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    let customer = business(&app, t, o, "Maison des Associations").await;
    let level = |n: i64, days: i64, suspend: bool| {
        json!({"level": n, "delay_days": days, "suspend": suspend,
               "subject_fr": format!("Relance {n} : facture {{number}}"), "body_fr": "Reste dû : {amount_due}, échéance {due_date}.",
               "subject_en": format!("Reminder {n}: invoice {{number}}"), "body_en": "Due: {amount_due} since {due_date}."})
    };
    // Bad levels name their field.
    let (s, b) = app
        .send(
            reqwest::Method::PUT,
            t,
            &inv(o, "/reminder-levels"),
            json!({"levels": [level(1, 30, false), level(2, 7, false)]}),
        )
        .await;
    assert_eq!((s, fields(&b)), (422, vec!["levels[1].delay_days".to_string()]), "{b}");
    let (s, b) = app
        .send(
            reqwest::Method::PUT,
            t,
            &inv(o, "/reminder-levels"),
            json!({"levels": [level(1, 7, false), level(2, 30, true)]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");

    // Issued 2025-03-01, due 2025-03-31 (30 days).
    let a = issue_invoice(&app, t, o, &customer, "2025-03-01", 1).await;
    let aid = a["id"].as_str().unwrap().to_string();
    let number = a["number"].as_str().unwrap().to_string();
    assert_eq!(a["due_date"], "2025-03-31");
    // A zero-amount invoice is never dunned.
    let zero = draft(
        &app,
        t,
        o,
        json!({"customer_id": customer["id"], "issue_date": "2025-03-01",
        "lines": [{"name": "Free audit", "quantity_milli": 1000, "unit_price_cents": 0, "vat_code": "FR-20"}]}),
    )
    .await;
    let zero = validate(&app, t, o, zero["id"].as_str().unwrap()).await;
    assert_eq!(zero["gross_cents"], 0);

    let run = |as_of: &'static str| {
        let app = &app;
        async move {
            let (s, r) = app.post(t, &inv(o, "/reminders/run"), json!({"as_of": as_of})).await;
            assert_eq!(s, 200, "{r}");
            r["sent"].as_array().unwrap().iter().map(|x| x["level"].as_i64().unwrap()).collect::<Vec<_>>()
        }
    };
    assert_eq!(run("2025-04-06").await, Vec::<i64>::new()); // 6 days late
    assert_eq!(run("2025-04-07").await, vec![1]); // 7 days
    assert_eq!(run("2025-04-07").await, Vec::<i64>::new()); // once per level
    assert_eq!(run("2025-04-29").await, Vec::<i64>::new());
    assert_eq!(run("2025-04-30").await, vec![2]); // 30 days
    let (_, board) = app.get(t, &inv(o, "/reminders/overdue?as_of=2025-04-30")).await;
    assert_eq!(board.as_array().unwrap().len(), 1, "{board}");
    assert_eq!(
        (board[0]["reminder_level"].as_i64(), board[0]["suspend"].as_bool(), board[0]["days_overdue"].as_i64()),
        (Some(2), Some(true), Some(30))
    );

    // Both went to the customer through the outbox, in French, with the invoice's figures.
    let (_, outbox) = app.get(t, "/api/v1/admin/outbox?to=compta@client.example").await;
    let mails: Vec<&Value> = outbox.as_array().unwrap().iter().filter(|m| m["kind"] == "invoicing.reminder").collect();
    assert_eq!(mails.len(), 2, "{outbox}");
    assert!(mails.iter().any(|m| m["subject"] == format!("Relance 1 : facture {number}")), "{outbox}");
    assert!(mails.iter().all(|m| m["body_text"].as_str().unwrap().contains("120,00")
        && m["body_text"].as_str().unwrap().contains("2025-03-31")));
    let (_, hist) = app.get(t, &inv(o, &format!("/documents/{aid}/reminders"))).await;
    assert_eq!(hist.as_array().unwrap().iter().map(|r| r["level"].as_i64().unwrap()).collect::<Vec<_>>(), vec![1, 2]);
    let (_, tl) = app.get(t, &format!("/api/v1/orgs/{o}/timeline/inv_document/{aid}")).await;
    assert!(tl.to_string().contains("Reminder level 2 sent to compta@client.example"), "{tl}");

    // "Send now" sends the last level again.
    let (s, r) = app.post(t, &inv(o, &format!("/documents/{aid}/remind")), json!({})).await;
    assert_eq!((s, r["level"].as_i64()), (200, Some(2)), "{r}");

    // Paid: reminders stop, and "send now" refuses.
    let (s, p) = app.post(t, &inv(o, "/payments"), json!({"customer_id": customer["id"], "method": "transfer", "amount_cents": 12000, "received_date": "2025-05-02"})).await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(run("2025-12-31").await, Vec::<i64>::new());
    let (_, board) = app.get(t, &inv(o, "/reminders/overdue?as_of=2025-12-31")).await;
    assert_eq!(board, json!([]));
    let (s, _) = app.post(t, &inv(o, &format!("/documents/{aid}/remind")), json!({})).await;
    assert_eq!(s, 409);
    let (s, _) = app.post(t, &inv(o, &format!("/documents/{}/remind", zero["id"].as_str().unwrap())), json!({})).await;
    assert_eq!(s, 409);
    let (_, outbox) = app.get(t, "/api/v1/admin/outbox?to=compta@client.example").await;
    assert_eq!(outbox.as_array().unwrap().iter().filter(|m| m["kind"] == "invoicing.reminder").count(), 3);
});

db_test!(a_paid_invoice_lifts_its_suspension_once, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    let customer = business(&app, t, o, "Radio Associative").await;
    let a = issue_invoice(&app, t, o, &customer, "2025-03-01", 1).await;
    let aid = a["id"].as_str().unwrap().to_string();
    let body = json!({"module": "svc", "target_ref": "mailbox:4411", "invoice_id": aid, "job_kind": "svc.resume", "payload": {"mailbox": 4411}});
    let (s, susp) = app.post(t, &inv(o, "/suspensions"), body.clone()).await;
    assert_eq!(s, 201, "{susp}");
    assert_eq!(susp["lifted_at"], Value::Null);
    // Registering again gives the same suspension.
    let (_, again) = app.post(t, &inv(o, "/suspensions"), body.clone()).await;
    assert_eq!(again["id"], susp["id"]);
    let mut unknown = body.clone();
    unknown["job_kind"] = json!("nobody.declares");
    let (s, b) = app.post(t, &inv(o, "/suspensions"), unknown).await;
    assert_eq!((s, fields(&b)), (422, vec!["job_kind".to_string()]));

    let pay = |amount: i64| json!({"customer_id": customer["id"], "method": "transfer", "amount_cents": amount, "received_date": "2025-04-20"});
    let (s, _) = app.post(t, &inv(o, "/payments"), pay(5000)).await;
    assert_eq!(s, 201);
    let (_, list) = app.get(t, &inv(o, &format!("/suspensions?invoice_id={aid}&active=true"))).await;
    assert_eq!(list.as_array().unwrap().len(), 1, "partly paid: still suspended");
    let (s, _) = app.post(t, &inv(o, "/payments"), pay(7000)).await;
    assert_eq!(s, 201);
    let (_, list) = app.get(t, &inv(o, &format!("/suspensions?invoice_id={aid}"))).await;
    assert!(list[0]["lifted_at"].is_string() && list[0]["job_id"].is_string(), "{list}");

    // The job runs, once.
    let mut done = 0;
    for _ in 0..600 {
        let (_, jobs) = app.get(t, "/api/v1/admin/jobs?status=done&limit=500").await;
        done = jobs.as_array().unwrap().iter().filter(|j| j["name"] == "svc.resume").count();
        if done > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(done, 1);
    // Cancelling a payment and paying again does not restore the service twice.
    let (_, payments) = app.get(t, &inv(o, "/payments")).await;
    let last = payments[0]["id"].as_str().unwrap();
    let (s, _) = app.post(t, &inv(o, &format!("/payments/{last}/cancel")), json!({})).await;
    assert_eq!(s, 200);
    let (s, _) = app.post(t, &inv(o, "/payments"), pay(7000)).await;
    assert_eq!(s, 201);
    let (_, jobs) = app.get(t, "/api/v1/admin/jobs?limit=500").await;
    assert_eq!(jobs.as_array().unwrap().iter().filter(|j| j["name"] == "svc.resume").count(), 1);
    // A suspension registered for a paid invoice is lifted at once.
    let mut late = body.clone();
    late["target_ref"] = json!("mailbox:9");
    let (s, b) = app.post(t, &inv(o, "/suspensions"), late).await;
    assert_eq!(s, 201);
    assert!(b["lifted_at"].is_string(), "{b}");

    // An invoice cancelled by a full credit note lifts its suspension too.
    let c = issue_invoice(&app, t, o, &customer, "2025-05-01", 1).await;
    let cid = c["id"].as_str().unwrap().to_string();
    let mut on_c = body.clone();
    on_c["invoice_id"] = json!(cid);
    on_c["target_ref"] = json!("mailbox:77");
    let (s, susp) = app.post(t, &inv(o, "/suspensions"), on_c).await;
    assert_eq!((s, susp["lifted_at"].clone()), (201, Value::Null), "{susp}");
    let (s, cn) = app
        .post(
            t,
            &inv(o, &format!("/documents/{cid}/credit-notes")),
            json!({"issue_date": "2025-05-02", "lines": [{"name": "Cancelled", "quantity_milli": 1000, "unit_code": "MON", "unit_price_cents": 10000, "vat_code": "FR-20"}]}),
        )
        .await;
    assert_eq!(s, 201, "{cn}");
    validate(&app, t, o, cn["id"].as_str().unwrap()).await;
    let (_, c) = app.get(t, &inv(o, &format!("/documents/{cid}"))).await;
    assert_eq!(c["status"], "cancelled", "{c}");
    let (_, list) = app.get(t, &inv(o, &format!("/suspensions?invoice_id={cid}"))).await;
    assert!(list[0]["lifted_at"].is_string(), "{list}");

    // A draft owes nothing: no suspension, no pay link; it can still be deleted.
    let d = draft(
        &app,
        t,
        o,
        json!({"customer_id": customer["id"], "issue_date": "2025-06-01",
               "lines": [{"name": "Hosting", "quantity_milli": 1000, "unit_code": "MON", "unit_price_cents": 10000, "vat_code": "FR-20"}]}),
    )
    .await;
    let did = d["id"].as_str().unwrap();
    let mut on_draft = body.clone();
    on_draft["invoice_id"] = json!(did);
    let (s, b) = app.post(t, &inv(o, "/suspensions"), on_draft).await;
    assert_eq!((s, fields(&b)), (422, vec!["invoice_id".to_string()]), "{b}");
    let (s, b) = app.post(t, &inv(o, &format!("/documents/{did}/pay-link")), json!({})).await;
    assert_eq!(s, 409, "{b}");
    let (s, b) = app.send(reqwest::Method::DELETE, t, &inv(o, &format!("/documents/{did}")), Value::Null).await;
    assert_eq!(s, 204, "{b}");
});
