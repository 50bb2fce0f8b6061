//! Statistics against a known data set: members at the end of each month,
//! by type today, joins and departures (resignation, exclusion, lapse) in
//! the months they happened, dues collected per month and year; the page
//! shows the same figures in its tables.

use crate::{join, person, setup, url, year, yearly};
use serde_json::{json, Value};
use testkit::{db_test, TestApp, ADMIN_PASSWORD};

fn month<'a>(list: &'a Value, key: &str, m: &str) -> &'a Value {
    list.as_array().unwrap().iter().find(|r| r[key] == m).unwrap_or_else(|| panic!("no {m} in {list}"))
}

db_test!(statistics_count_members_joins_departures_and_dues, |app: TestApp| async move {
    let s = setup(&app).await;
    let (y, p) = (year(), year() - 1);
    let ind = yearly(&app, &s, "Individuelle").await;
    let _unused = yearly(&app, &s, "Famille").await;
    let mut ids = Vec::new();
    for (given, start) in [("Ana", "02-10"), ("Bo", "02-20"), ("Cy", "03-05"), ("Di", "03-10")] {
        let who = person(&app, &s, given, "Stats").await;
        let (st, per) = join(&app, &s, &who, json!({"type_id": ind, "starts_on": format!("{p}-{start}")})).await;
        assert_eq!(st, 201, "{per}");
        ids.push((who, per["id"].as_str().unwrap().to_string()));
    }
    // Bo resigns in June, Di is excluded on 30 September; Ana lapses on 1 January; Cy renews.
    for (i, reason, on) in [(1, "resigned", format!("{p}-06-15")), (3, "excluded", format!("{p}-09-30"))] {
        let (st, b) = app
            .post(&s.admin, &url(&s.org, &format!("/periods/{}/close", ids[i].1)), json!({"reason": reason, "on": on}))
            .await;
        assert_eq!(st, 200, "{b}");
    }
    let cy = &ids[2].0;
    let (st, r) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/people/{cy}/renewals")),
            json!({"type_id": ind, "on": format!("{y}-01-01")}),
        )
        .await;
    assert_eq!(st, 201, "{r}");
    let (st, d) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": cy, "period_id": r["id"], "amount_cents": 3000, "method": "cash", "paid_on": format!("{y}-01-01")}),
        )
        .await;
    assert_eq!(st, 201, "{d}");

    let (st, b) = app.get(&s.admin, &url(&s.org, "/stats")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["members_by_month"].as_array().unwrap().len(), 24);
    let members = |m: String| month(&b["members_by_month"], "month", &m)["members"].as_i64().unwrap();
    assert_eq!(members(format!("{p}-01")), 0);
    assert_eq!(members(format!("{p}-02")), 2);
    assert_eq!(members(format!("{p}-03")), 4);
    assert_eq!(members(format!("{p}-06")), 3, "Bo resigned on 15 June");
    assert_eq!(members(format!("{p}-09")), 3, "Di is a member until the end of 30 September");
    assert_eq!(members(format!("{p}-10")), 2);
    assert_eq!(members(format!("{p}-12")), 2);
    assert_eq!(b["members_today"], 1, "only Cy renewed: {b}");
    let types: Vec<(String, i64)> = b["by_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["name"].as_str().unwrap().to_string(), t["members"].as_i64().unwrap()))
        .collect();
    assert_eq!(types, [("Famille".to_string(), 0), ("Individuelle".to_string(), 1)]);
    let moves = |m: String| month(&b["moves_by_month"], "month", &m).clone();
    let feb = moves(format!("{p}-02"));
    assert_eq!((feb["joins"].as_i64(), feb["departures"].as_i64()), (Some(2), Some(0)));
    assert_eq!(moves(format!("{p}-03"))["joins"], 2);
    let jun = moves(format!("{p}-06"));
    assert_eq!((jun["resignations"].as_i64(), jun["departures"].as_i64()), (Some(1), Some(1)));
    assert_eq!(moves(format!("{p}-09"))["exclusions"], 1);
    let jan = moves(format!("{y}-01"));
    assert_eq!(
        (jan["lapses"].as_i64(), jan["joins"].as_i64(), jan["departures"].as_i64()),
        (Some(1), Some(0), Some(1)),
        "Ana lapsed, Cy's renewal is no join: {jan}"
    );
    let total: i64 = b["moves_by_month"].as_array().unwrap().iter().map(|m| m["departures"].as_i64().unwrap()).sum();
    assert_eq!(total, 3);
    assert_eq!(month(&b["dues_by_month"], "period", &format!("{y}-01"))["amount_cents"], 3000);
    assert_eq!(b["dues_by_year"], json!([{"period": y.to_string(), "amount_cents": 3000, "dues": 1}]));

    // The page: its tables carry the same figures; staff may read it, without the retention form.
    let browser = testkit::browser_client();
    app.sign_in(&browser, "admin@example.org", ADMIN_PASSWORD).await;
    let r = browser.get(app.url(&format!("/o/{}/members/stats", s.org))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!("<th scope=\"row\">{p}-03</th><td>{p}-03-31</td><td class=\"num\">4</td>")),
        "{html}"
    );
    assert!(html.contains("<th scope=\"row\">Individuelle</th><td class=\"num\">1</td>"));
    assert!(html.contains("/static/members/stats.js") && html.contains("data-series="));
    assert!(html.contains("name=\"months\""), "administrators see the retention form");
    let staff = app.member(&s.admin, &s.org, "staff@example.org", "staff").await;
    let (st, _) = app.get(&staff, &url(&s.org, "/stats")).await;
    assert_eq!(st, 200);
    let (st, _) = app.get(&staff, &url(&s.org, "/retention")).await;
    assert_eq!(st, 403);
});
