//! `shrooms demo` with the accounting module: the demo organisation's books
//! hold a year, its reports are not empty and balance, some entries are
//! validated and some are drafts, the statement is partly reconciled, and
//! the same seed gives the same books.

use crate::url;
use serde_json::Value;
use testkit::{db_test, TestApp};

fn amount(v: &Value) -> i64 {
    let s = v.as_str().unwrap_or_else(|| panic!("not an amount: {v}"));
    let (int, dec) = s.trim_start_matches('-').split_once('.').unwrap();
    let c = int.parse::<i64>().unwrap() * 100 + dec.parse::<i64>().unwrap();
    if s.starts_with('-') {
        -c
    } else {
        c
    }
}

fn rows_total(c: i64) -> Value {
    Value::String(format!("{}.{:02}", c / 100, c % 100))
}

/// What the demo's books look like from outside: every report figure that
/// must not change between two loads with the same seed.
async fn fingerprint(app: &TestApp, t: &str, org: &str, year: i32) -> (Value, Value) {
    let q = format!("?from={year}-01-01&to={year}-12-31");
    let (s, tb) = app.get(t, &url(org, &format!("/reports/trial-balance{q}"))).await;
    assert_eq!(s, 200, "{tb}");
    let (s, is) = app.get(t, &url(org, &format!("/reports/income-statement{q}"))).await;
    assert_eq!(s, 200, "{is}");
    (tb, is)
}

db_test!(the_demo_keeps_a_year_of_books, |app: TestApp| async move {
    let report = shrooms_core::demo::load(&app.state, 60, 7, |_, _| {}).await.expect("demo");
    assert!(report.contains("accounting: books of"), "{report}");
    let t = app.token("demo@example.org", "demo-password").await;
    let (_, orgs) = app.get(&t, "/api/v1/orgs").await;
    let org = orgs["items"][0]["slug"].as_str().unwrap().to_string();
    let org = org.as_str();
    let year = time::OffsetDateTime::now_utc().year() - 1;
    let (tb, is) = fingerprint(&app, &t, org, year).await;
    // The trial balance is not empty and balances.
    let rows = tb["rows"].as_array().unwrap_or_else(|| panic!("{tb}"));
    assert!(rows.len() >= 10, "{tb}");
    let (d, c): (i64, i64) = rows.iter().fold((0, 0), |(d, c), r| (d + amount(&r["debit"]), c + amount(&r["credit"])));
    assert!(d > 0 && d == c, "debits {d} and credits {c}");
    assert_eq!((tb["total_debit"].clone(), tb["total_credit"].clone()), (rows_total(d), rows_total(c)));
    // Dues, donations, the grant, the dedicated fund, bank charges are all there.
    for n in ["7561", "7541", "744", "6894", "194", "627", "512"] {
        assert!(rows.iter().any(|r| r["account"] == n), "{n} missing from {tb}");
    }
    let (income, expenses) = (amount(&is["total_income"]), amount(&is["total_expenses"]));
    assert!(income > 0 && expenses > 0, "{is}");
    assert_eq!(amount(&is["result"]), income - expenses, "{is}");
    let (s, bs) = app.get(&t, &url(org, &format!("/reports/balance-sheet?to={year}-12-31"))).await;
    assert_eq!(s, 200, "{bs}");
    assert_eq!(bs["total_assets"], bs["total_liabilities"], "{bs}");
    assert!(amount(&bs["total_assets"]) > 0);
    // Some entries validated, some drafts.
    let (_, entries) = app.get(&t, &url(org, "/entries?status=draft")).await;
    assert!(!entries.as_array().unwrap().is_empty(), "drafts in the last quarter");
    let (_, entries) = app.get(&t, &url(org, "/entries?status=validated")).await;
    assert!(entries.as_array().unwrap().len() > 20);
    // The bank statement is partly reconciled, and the split deposit is suggested.
    let (_, banks) = app.get(&t, &url(org, "/bank-accounts")).await;
    let bank = banks[0]["id"].as_str().unwrap();
    let (s, rec) = app.get(&t, &url(org, &format!("/bank-accounts/{bank}/reconciliation?limit=200"))).await;
    assert_eq!(s, 200, "{rec}");
    let unmatched = rec["unmatched_count"].as_i64().unwrap();
    let lines = rec["lines"].as_array().unwrap();
    assert!(unmatched > 0 && lines.iter().any(|l| l["match_id"].is_string()), "{rec}");
    assert!(rec["statement_balance"].is_string());
    let part = lines.iter().find(|l| l["label"] == "REMISE CHEQUES 7 PARTIE 1").expect("the split deposit");
    assert_eq!(part["suggestions"][0]["reason"], "several_statement_lines", "{part}");
    let (_, analytics) = app.get(&t, &url(org, &format!("/reports/analytics?from={year}-01-01&to={year}-12-31"))).await;
    assert!(analytics.to_string().contains("project:jeunesse"), "{analytics}");
});

db_test!(the_same_seed_gives_the_same_books, |app: TestApp| async move {
    let year = time::OffsetDateTime::now_utc().year() - 1;
    // Two organisations at this scale: each gets its own books.
    shrooms_core::demo::load(&app.state, 2100, 11, |_, _| {}).await.expect("demo");
    let t = app.token("demo@example.org", "demo-password").await;
    let (_, orgs) = app.get(&t, "/api/v1/orgs").await;
    let slugs: Vec<String> =
        orgs["items"].as_array().unwrap().iter().map(|o| o["slug"].as_str().unwrap().to_string()).collect();
    assert!(slugs.len() >= 2, "{orgs}");
    let a = fingerprint(&app, &t, &slugs[0], year).await;
    let b = fingerprint(&app, &t, &slugs[1], year).await;
    assert_ne!(a.0, b.0, "each organisation has its own year");
    // A second instance loaded with the same seed has the same figures.
    let other = TestApp::spawn(app.backend, crate::modules()).await;
    shrooms_core::demo::load(&other.state, 2100, 11, |_, _| {}).await.expect("demo");
    let t2 = other.token("demo@example.org", "demo-password").await;
    assert_eq!(fingerprint(&other, &t2, &slugs[0], year).await, a);
});
