//! Pending items from other modules, subscriptions and billing runs:
//! minimum amounts carried over, overage grace, resumable runs.

use crate::{business, inv, ledger_lines, ready_org};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

async fn run(app: &TestApp, t: &str, o: &str, body: Value) -> Value {
    let (s, r) = app.post(t, &inv(o, "/billing-runs"), body).await;
    assert_eq!(s, 202, "{r}");
    wait(app, t, o, r["id"].as_str().unwrap()).await
}

async fn wait(app: &TestApp, t: &str, o: &str, id: &str) -> Value {
    for _ in 0..900 {
        let (_, r) = app.get(t, &inv(o, &format!("/billing-runs/{id}"))).await;
        if !matches!(r["status"].as_str(), Some("queued" | "running" | "cancelling")) {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the billing run did not end");
}

async fn pending(app: &TestApp, t: &str, o: &str, body: Value) -> Value {
    let (s, b) = app.post(t, &inv(o, "/pending-items"), body).await;
    assert_eq!(s, 201, "{b}");
    b
}

async fn invoices_of(app: &TestApp, t: &str, o: &str, customer: &Value) -> Vec<Value> {
    let (_, page) =
        app.get(t, &inv(o, &format!("/documents?kind=invoice&customer_id={}", customer["id"].as_str().unwrap()))).await;
    let mut out = Vec::new();
    for d in page["items"].as_array().unwrap() {
        out.push(app.get(t, &inv(o, &format!("/documents/{}", d["id"].as_str().unwrap()))).await.1);
    }
    out.reverse();
    out
}

db_test!(billing_runs_bill_subscriptions_and_items_with_minimum_and_grace, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            t,
            &inv(o, "/settings"),
            json!({"legal_name": "Coopérative Hébergement SCIC", "min_invoice_cents": 1000, "overage_grace_days": 10}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let a = business(&app, t, o, "Alpha SARL").await;
    let b = business(&app, t, o, "Beta SAS").await;
    let c = business(&app, t, o, "Gamma EURL").await;

    let (s, sub) = app
        .post(
            t,
            &inv(o, "/subscriptions"),
            json!({"customer_id": a["id"], "label": "Mail hosting", "frequency": "monthly", "anchor_date": "2025-01-15",
                   "lines": [{"name": "Mailbox", "quantity_milli": 3000, "unit_price_cents": 1000, "vat_code": "FR-20"}]}),
        )
        .await;
    assert_eq!(s, 201, "{sub}");
    // The hosting module bills a VM, and an overage of its traffic.
    let vm = pending(&app, t, o, json!({"customer_id": b["id"], "source_module": "hosting", "source_ref": "vm-1:2025-02",
        "name": "VM February", "unit_price_cents": 5000, "vat_code": "FR-20", "period_start": "2025-02-01", "period_end": "2025-02-28"})).await;
    let again = pending(
        &app,
        t,
        o,
        json!({"customer_id": b["id"], "source_module": "hosting", "source_ref": "vm-1:2025-02",
        "name": "VM February", "unit_price_cents": 5000, "vat_code": "FR-20"}),
    )
    .await;
    assert_eq!(again["id"], vm["id"], "the same source reference is the same item");
    let overage = pending(&app, t, o, json!({"customer_id": b["id"], "source_module": "hosting", "source_ref": "vm-1:traffic:2025-02",
        "name": "Traffic above plan", "quantity_milli": 120000, "unit_code": "GB", "unit_price_cents": 10, "vat_code": "FR-20",
        "period_start": "2025-02-01", "period_end": "2025-02-28", "overage": true})).await;
    assert_eq!(overage["not_before"], "2025-03-10");
    // 2.00 is below the 10.00 minimum.
    pending(
        &app,
        t,
        o,
        json!({"customer_id": c["id"], "source_module": "members", "source_ref": "due-1", "name": "Small fee",
        "unit_price_cents": 200, "vat_code": "E"}),
    )
    .await;
    let (s, bad) = app
        .post(
            t,
            &inv(o, "/pending-items"),
            json!({"customer_id": c["id"], "source_module": "members", "source_ref": "x",
        "name": "Bad", "unit_price_cents": 100, "vat_code": "NOPE"}),
        )
        .await;
    assert_eq!((s, bad["errors"][0]["field"].as_str()), (422, Some("vat_code")), "{bad}");

    let r = run(&app, t, o, json!({"run_date": "2025-03-01"})).await;
    assert_eq!(
        (r["status"].as_str(), r["invoices"].as_i64(), r["carried_over"].as_i64()),
        (Some("done"), Some(2), Some(1)),
        "{r}"
    );
    let ia = invoices_of(&app, t, o, &a).await;
    assert_eq!(ia.len(), 1);
    // Two monthly periods were due (15 Jan and 15 Feb), billed in advance.
    let periods: Vec<(&str, &str)> = ia[0]["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["period_start"].as_str().unwrap(), l["period_end"].as_str().unwrap()))
        .collect();
    assert_eq!(periods, vec![("2025-01-15", "2025-02-14"), ("2025-02-15", "2025-03-14")]);
    assert_eq!(
        (ia[0]["status"].as_str(), ia[0]["gross_cents"].as_i64(), ia[0]["issue_date"].as_str()),
        (Some("validated"), Some(7200), Some("2025-03-01"))
    );
    let ib = invoices_of(&app, t, o, &b).await;
    assert_eq!(ib[0]["lines"].as_array().unwrap().len(), 1, "the overage waits for its grace period");
    assert_eq!(ib[0]["gross_cents"], 6000);
    assert!(invoices_of(&app, t, o, &c).await.is_empty(), "below the minimum: carried over");
    let mut numbers: Vec<String> =
        ia.iter().chain(ib.iter()).map(|d| d["number"].as_str().unwrap().to_string()).collect();
    numbers.sort();
    assert_eq!(numbers, vec!["F2025-00001", "F2025-00002"]);
    for d in ia.iter().chain(ib.iter()) {
        assert_eq!(ledger_lines(&app, t, o, d["number"].as_str().unwrap()).await.len(), 3, "posted: {d}");
        assert!(d["pdf_file_id"].is_string(), "the run keeps each invoice's PDF");
    }
    let (_, tl) =
        app.get(t, &format!("/api/v1/orgs/{o}/timeline/inv_document/{}", ia[0]["id"].as_str().unwrap())).await;
    assert!(
        tl["items"].as_array().unwrap().iter().any(|e| e["body"].as_str().unwrap_or("").contains("billing run")),
        "{tl}"
    );
    let (_, sub) = app.get(t, &inv(o, &format!("/subscriptions/{}", sub["id"].as_str().unwrap()))).await;
    assert_eq!((sub["next_date"].as_str(), sub["periods_billed"].as_i64()), (Some("2025-03-15"), Some(2)));

    // Two weeks later: the next period, the overage past its grace; the small fee still waits.
    let r = run(&app, t, o, json!({"run_date": "2025-03-15"})).await;
    assert_eq!((r["invoices"].as_i64(), r["carried_over"].as_i64()), (Some(2), Some(1)), "{r}");
    let ib = invoices_of(&app, t, o, &b).await;
    assert_eq!(ib.len(), 2);
    assert_eq!(ib[1]["lines"][0]["name"], "Traffic above plan");
    // Another fee brings Gamma over the minimum: both items on one invoice.
    pending(
        &app,
        t,
        o,
        json!({"customer_id": c["id"], "source_module": "members", "source_ref": "due-2", "name": "Fee",
        "unit_price_cents": 900, "vat_code": "E"}),
    )
    .await;
    let r = run(&app, t, o, json!({"run_date": "2025-03-16"})).await;
    assert_eq!((r["invoices"].as_i64(), r["carried_over"].as_i64()), (Some(1), Some(0)), "{r}");
    let ic = invoices_of(&app, t, o, &c).await;
    assert_eq!((ic[0]["lines"].as_array().unwrap().len(), ic[0]["gross_cents"].as_i64()), (2, Some(1100)));
    let (_, open) = app.get(t, &inv(o, "/pending-items")).await;
    assert_eq!(open, json!([]));
    // Nothing left: a run bills nothing.
    let r = run(&app, t, o, json!({"run_date": "2025-03-16"})).await;
    assert_eq!((r["status"].as_str(), r["invoices"].as_i64()), (Some("done"), Some(0)));
});

db_test!(an_interrupted_run_resumes_without_duplicate_or_gap, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    const N: usize = 7;
    for i in 0..N {
        let c = business(&app, t, o, &format!("Customer {i}")).await;
        for k in 0..2 {
            pending(&app, t, o, json!({"customer_id": c["id"], "source_module": "psa", "source_ref": format!("time-{i}-{k}"),
                "name": "Validated time", "quantity_milli": 1500, "unit_code": "HUR", "unit_price_cents": 6000, "vat_code": "FR-20"})).await;
        }
    }
    // Stopped after 3 customers, as an interruption would.
    let r = run(&app, t, o, json!({"run_date": "2025-05-31", "stop_after": 3})).await;
    assert_eq!(
        (r["status"].as_str(), r["invoices"].as_i64(), r["total"].as_i64()),
        (Some("paused"), Some(3), Some(N as i64)),
        "{r}"
    );
    let id = r["id"].as_str().unwrap().to_string();
    // Cancelled, then resumed: it continues where it stopped.
    let (s, r) = app.post(t, &inv(o, &format!("/billing-runs/{id}/cancel")), json!({})).await;
    assert_eq!((s, r["status"].as_str()), (200, Some("cancelled")));
    let (s, _) = app.post(t, &inv(o, &format!("/billing-runs/{id}/cancel")), json!({})).await;
    assert_eq!(s, 409);
    let (s, _) = app.post(t, &inv(o, &format!("/billing-runs/{id}/resume")), json!({})).await;
    assert_eq!(s, 200);
    let r = wait(&app, t, o, &id).await;
    assert_eq!(
        (r["status"].as_str(), r["invoices"].as_i64(), r["done"].as_i64()),
        (Some("done"), Some(N as i64), Some(N as i64)),
        "{r}"
    );
    let (_, page) = app.get(t, &inv(o, "/documents?kind=invoice")).await;
    let mut seqs: Vec<i64> = page["items"].as_array().unwrap().iter().map(|d| d["seq"].as_i64().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=N as i64).collect::<Vec<_>>(), "one invoice per customer, numbers without gap");
    let (_, items) = app.get(t, &inv(o, "/pending-items?open=false")).await;
    assert_eq!(items.as_array().unwrap().len(), 2 * N);
    assert!(items.as_array().unwrap().iter().all(|i| i["document_id"].is_string()), "every item billed once");
    assert_eq!(page["totals"]["gross_cents"], N as i64 * 2 * 10800);
    // Running again bills nothing more.
    let r = run(&app, t, o, json!({"run_date": "2025-05-31"})).await;
    assert_eq!(r["invoices"], 0);
});
