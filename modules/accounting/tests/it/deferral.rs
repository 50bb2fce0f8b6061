//! Deferred revenue posted: a year's dues paid in October split between
//! the two fiscal years (487 and its transfer when the next year opens), a
//! late payment whose previous-year share goes back to the open previous
//! year (418), or stays in the current year once that one is closed.

use crate::{open_books, url};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

fn balance(tb: &Value, account: &str) -> String {
    tb["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["account"] == account)
        .map(|r| r["balance_credit"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

db_test!(deferred_revenue_is_posted_year_by_year, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    let books = open_books(&app, t, org).await;
    let y2025 = books["years"][0]["id"].as_str().unwrap().to_string();
    let post = |body: Value| {
        let app = &app;
        async move { app.post(t, &url(org, "/deferrals"), body).await }
    };
    let dues = |date: &str, amount: &str, start: &str, end: &str| {
        json!({"date": date, "label": "Adhésion Dupont", "amount": amount, "revenue_account": "7561",
               "counterpart": "512", "aux": "M042", "service_start": start, "service_end": end})
    };
    let mut bad = dues("2025-10-01", "365", "2025-10-01", "2026-09-30");
    bad["revenue_account"] = json!("512");
    let (s, b) = post(bad).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("revenue_account")), "{b}");
    let (s, b) = post(dues("2025-10-01", "365", "2026-09-30", "2025-10-01")).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("service_end")), "{b}");

    // 365.00 for a year from 1 October: 92 days in 2025, 273 in 2026.
    let (s, d) = post(dues("2025-10-01", "365", "2025-10-01", "2026-09-30")).await;
    assert_eq!(s, 201, "{d}");
    let shares = d["shares"].as_array().unwrap();
    assert_eq!((shares[0]["kind"].as_str(), shares[0]["amount"].as_str()), (Some("current"), Some("92.00")));
    assert_eq!((shares[1]["kind"].as_str(), shares[1]["amount"].as_str()), (Some("next"), Some("273.00")));
    assert_eq!(shares[1]["booked_as"], "487");
    assert!(shares[1]["entry_id"].is_null(), "2026 does not exist yet");
    let (_, main) = app.get(t, &url(org, &format!("/entries/{}", d["entry_id"].as_str().unwrap()))).await;
    let lines: Vec<(&str, &str, &str)> = main["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["account"].as_str().unwrap(), l["debit"].as_str().unwrap(), l["credit"].as_str().unwrap()))
        .collect();
    assert_eq!(lines, [("512", "365.00", "0.00"), ("7561", "0.00", "92.00"), ("487", "0.00", "273.00")]);
    assert_eq!((main["status"].as_str(), main["journal"].as_str()), (Some("validated"), Some("BQ")));

    // Creating 2026 moves its share from 487 to revenue on 1 January.
    let (s, y) = app.post(t, &url(org, "/years"), json!({"start": "2026-01-01", "end": "2026-12-31"})).await;
    assert_eq!(s, 201, "{y}");
    let (s, d) = app.get(t, &url(org, &format!("/entries/{}/deferral", main["id"].as_str().unwrap()))).await;
    assert_eq!(s, 200, "{d}");
    let transfer_id = d["shares"][1]["entry_id"].as_str().expect("posted when 2026 was created").to_string();
    let (_, transfer) = app.get(t, &url(org, &format!("/entries/{transfer_id}"))).await;
    assert_eq!(transfer["date"], "2026-01-01");
    assert_eq!(
        (transfer["lines"][0]["account"].as_str(), transfer["lines"][0]["debit"].as_str()),
        (Some("487"), Some("273.00"))
    );
    assert_eq!(
        (transfer["lines"][1]["account"].as_str(), transfer["lines"][1]["credit"].as_str()),
        (Some("7561"), Some("273.00"))
    );

    // Paid late, in February 2026, for December 2025 and January 2026 (31 + 30 days):
    // 2025 is still open, so its share is booked there (418) and the payment settles it.
    let (s, late) = post(dues("2026-02-15", "61", "2025-12-01", "2026-01-30")).await;
    assert_eq!(s, 201, "{late}");
    let prev = &late["shares"][0];
    assert_eq!(
        (prev["kind"].as_str(), prev["amount"].as_str(), prev["booked_as"].as_str()),
        (Some("previous"), Some("31.00"), Some("418"))
    );
    let (_, accrual) = app.get(t, &url(org, &format!("/entries/{}", prev["entry_id"].as_str().unwrap()))).await;
    assert_eq!(accrual["date"], "2025-12-31");

    let tb = |from: &str, to: &str| {
        let app = &app;
        let u = url(org, &format!("/reports/trial-balance?from={from}&to={to}&compare=false"));
        async move { app.get(t, &u).await.1 }
    };
    // Each year carries its days: 2025 = 92 + 31, 2026 = 273 + 30; nothing left on 487 or 418.
    let (t25, t26) = (tb("2025-01-01", "2025-12-31").await, tb("2026-01-01", "2026-12-31").await);
    assert_eq!(balance(&t25, "7561"), "123.00");
    assert_eq!(balance(&t26, "7561"), "303.00");
    let all = tb("2025-01-01", "2026-12-31").await;
    let row = |a: &str| all["rows"].as_array().unwrap().iter().find(|r| r["account"] == a).cloned().unwrap();
    assert_eq!(
        (row("487")["balance_debit"].as_str(), row("487")["balance_credit"].as_str()),
        (Some("0.00"), Some("0.00"))
    );
    assert_eq!(
        (row("418")["balance_debit"].as_str(), row("418")["balance_credit"].as_str()),
        (Some("0.00"), Some("0.00"))
    );

    // Once 2025 is closed, a late payment's 2025 share stays in 2026.
    let (s, b) = app.post(t, &url(org, &format!("/years/{y2025}/close")), json!({})).await;
    assert_eq!(s, 200, "{b}");
    let (s, late) = post(dues("2026-03-01", "31", "2025-12-01", "2025-12-31")).await;
    assert_eq!(s, 201, "{late}");
    assert_eq!(
        (late["shares"][0]["kind"].as_str(), late["shares"][0]["booked_as"].as_str()),
        (Some("previous"), Some("revenue"))
    );

    // Shown on the entry's page, and in the audit log.
    let client = &app.browser;
    app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let html = client
        .get(app.url(&format!("/o/{org}/accounting/entries/{}", main["id"].as_str().unwrap())))
        .send()
        .await
        .unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("2026-01-01 – 2026-09-30") && html.contains("273.00"), "{html}");
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{org}/audit?limit=200")).await;
    assert!(audit.to_string().contains("accounting.deferral.post"), "{audit}");
});

db_test!(the_deferral_form_posts_and_shows_the_split, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let html = client.get(app.url(&format!("/o/{org}/accounting/deferrals/new"))).send().await.unwrap();
    assert!(html.text().await.unwrap().contains("7561"), "income accounts are offered");
    let form = |end: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("date", "2025-10-01".into()),
            ("label", "Hébergement".into()),
            ("amount", "365,00".into()),
            ("revenue_account", "706".into()),
            ("counterpart", "512".into()),
            ("aux", "".into()),
            ("service_start", "2025-10-01".into()),
            ("service_end", end.into()),
        ]
    };
    let r =
        client.post(app.url(&format!("/o/{org}/accounting/deferrals"))).form(&form("2025-09-30")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let r =
        client.post(app.url(&format!("/o/{org}/accounting/deferrals"))).form(&form("2026-09-30")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let entry_page = r.headers()["location"].to_str().unwrap().to_string();
    let html = client.get(app.url(&entry_page)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("92.00") && html.contains("273.00") && html.contains("487"), "{html}");
});

db_test!(the_split_of_a_payment_is_previewed_to_the_cent, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    // A year of service from 1 October 2025: 92 days in 2025, 273 in 2026.
    let (s, b) = app
        .post(t, &url(org, "/deferral-split"), json!({"amount": "100.00", "start": "2025-10-01", "end": "2026-09-30"}))
        .await;
    assert_eq!(s, 200, "{b}");
    let shares = b["shares"].as_array().unwrap();
    assert_eq!(shares.len(), 2, "{b}");
    assert_eq!((shares[0]["days"].as_i64(), shares[0]["amount"].as_str()), (Some(92), Some("25.21")), "{b}");
    assert_eq!((shares[1]["days"].as_i64(), shares[1]["amount"].as_str()), (Some(273), Some("74.79")), "{b}");
    let (s, b) = app
        .post(t, &url(org, "/deferral-split"), json!({"amount": "100.00", "start": "2026-09-30", "end": "2025-10-01"}))
        .await;
    assert_eq!(s, 422, "{b}");
});
