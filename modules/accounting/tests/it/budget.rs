//! A year's budget beside the books: values computed by hand, the
//! longest budget line taking each account, checks naming the line, and
//! the report on screen, in ODS and in PDF.

use crate::{entry, open_books, url};
use serde_json::json;
use testkit::{db_test, TestApp};

db_test!(budget_versus_actual_adds_up_by_hand, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    let books = open_books(&app, t, org).await;
    let year = books["years"][0]["id"].as_str().unwrap();
    let budget_url = url(org, &format!("/years/{year}/budget"));
    let put = |body: serde_json::Value| {
        let app = &app;
        let u = budget_url.clone();
        async move { app.send(reqwest::Method::PUT, t, &u, body).await }
    };
    // Bad lines are named; nothing is saved.
    let (s, b) = put(json!({"lines": [
        {"target": "99", "amount": "10"}, {"target": "60", "amount": 12.5}, {"target": "7561", "amount": "-3"}]}))
    .await;
    assert_eq!(s, 422, "{b}");
    let fields: Vec<&str> = b["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["lines[0].target", "lines[1].amount", "lines[2].amount"]);
    assert_eq!(app.get(t, &budget_url).await.1, json!([]));
    let (s, b) = put(json!({"lines": [
        {"target": "60", "amount": "1 000,00", "label": "Achats"},
        {"target": "6061", "amount": "300"},
        {"target": "7561", "amount": "2000.00"},
        {"target": "74", "amount": "500"}]}))
    .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b[1]["label"], "Fournitures non stockables (eau, énergie)", "the chart's label by default: {b}");
    assert_eq!(b[2]["label"], "Comptes 74…", "a prefix is not labelled after one of its accounts: {b}");
    for (label, lines) in [
        ("EDF janvier", [("6061", "250", ""), ("512", "", "250")]),
        ("EDF février", [("6061", "100", ""), ("512", "", "100")]),
        ("Fournitures", [("6064", "400", ""), ("512", "", "400")]),
        ("Loyer", [("6132", "600", ""), ("512", "", "600")]),
        ("Cotisations", [("512", "1500", ""), ("7561", "", "1500")]),
        ("Subvention mairie", [("512", "600", ""), ("741", "", "600")]),
    ] {
        entry(&app, t, org, "BQ", "2025-03-01", label, &lines, true).await;
    }
    let (s, r) = app.get(t, &url(org, &format!("/reports/budget?year={year}"))).await;
    assert_eq!(s, 200, "{r}");
    let rows: Vec<(String, String, String, String, String)> = r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            let s = |k: &str| x[k].as_str().unwrap_or("").to_string();
            (s("target"), s("budget"), s("actual"), s("difference"), s("percent"))
        })
        .collect();
    let row = |a: &str, b: &str, c: &str, d: &str, e: &str| (a.into(), b.into(), c.into(), d.into(), e.into());
    assert_eq!(
        rows,
        vec![
            // 6064 (400) falls to "60"; 6061 has its own line; the rent has no line.
            row("60", "1000.00", "400.00", "-600.00", "40.0"),
            row("6061", "300.00", "350.00", "50.00", "116.7"),
            row("74", "500.00", "600.00", "100.00", "120.0"),
            row("7561", "2000.00", "1500.00", "-500.00", "75.0"),
        ]
    );
    assert_eq!((r["budget_expenses"].as_str(), r["actual_expenses"].as_str()), (Some("1300.00"), Some("750.00")));
    assert_eq!((r["budget_income"].as_str(), r["actual_income"].as_str()), (Some("2500.00"), Some("2100.00")));
    assert_eq!((r["budget_result"].as_str(), r["actual_result"].as_str()), (Some("1200.00"), Some("1350.00")));
    // ODS and PDF downloads, and the page.
    let get = |q: &str| {
        app.http.get(app.url(&url(org, &format!("/reports/budget?year={year}&format={q}")))).bearer_auth(t).send()
    };
    assert!(get("ods").await.unwrap().bytes().await.unwrap().starts_with(b"PK"));
    assert!(get("pdf").await.unwrap().bytes().await.unwrap().starts_with(b"%PDF"));
    let client = &app.browser;
    app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let html = client.get(app.url(&format!("/o/{org}/accounting/reports/budget?year={year}"))).send().await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("116.7") && html.contains("Achats"), "{html}");
    // Members see no budget.
    let member = app.member(t, org, "member@example.org", "member").await;
    assert_eq!(app.get(&member, &budget_url).await.0, 403);
});

db_test!(the_budget_page_saves_lines_and_reshows_errors, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    let books = open_books(&app, t, org).await;
    let year = books["years"][0]["id"].as_str().unwrap();
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let page = format!("/o/{org}/accounting/budget?year={year}");
    assert_eq!(client.get(app.url(&page)).send().await.unwrap().status(), 200);
    let form = |amount: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("target", "7561".into()),
            ("label", "".into()),
            ("amount", amount.into()),
            ("target", "".into()),
            ("label", "".into()),
            ("amount", "".into()),
        ]
    };
    let r = client.post(app.url(&page)).form(&form("12,5,0")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("value=\"12,5,0\""), "the typed amount is shown again");
    let r = client.post(app.url(&page)).form(&form("2 000")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, b) = app.get(t, &url(org, &format!("/years/{year}/budget"))).await;
    assert_eq!((b[0]["target"].as_str(), b[0]["amount"].as_str()), (Some("7561"), Some("2000.00")), "{b}");
    assert_eq!(b.as_array().unwrap().len(), 1, "blank rows are not lines");
});
