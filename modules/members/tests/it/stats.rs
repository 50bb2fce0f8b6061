//! Statistics against a known data set: members at the end of each month,
//! by type today, joins and departures (resignation, exclusion, lapse) in
//! the months they happened, dues collected per month and year; the page
//! shows the same figures in its tables. The same figures filtered by
//! membership type and by custom fields of people (bad filters refused,
//! another organisation's type too), each table as CSV, and the page's
//! filter form.

use crate::{field_errors, join, person, setup, url, year, yearly};
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

/// Two types, a custom field of people and four members over last year and
/// this one:
/// - Ana, Individuelle, Lyon: joins in February, renews on 1 January, pays 30.00;
/// - Bo, Famille, Paris: joins on 5 March, resigns on 15 June;
/// - Cy, Individuelle, Paris: joins on 10 March, lapses on 1 January;
/// - Di, Famille, Lyon: joins on 1 April, renews on 1 January, pays 50.00
///   and a 10.00 gift recorded as dues without a period.
struct Filtered {
    ind: String,
    fam: String,
}

async fn filtered_data(app: &TestApp, s: &crate::Setup) -> Filtered {
    let (y, p) = (year(), year() - 1);
    let ind = yearly(app, s, "Individuelle").await;
    let (st, t) = app
        .post(
            &s.admin,
            &url(&s.org, "/types"),
            json!({"name": "Famille", "kind": "individual", "fee_rule": "fixed", "fee_cents": 5000, "period_rule": "calendar_year"}),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    let fam = t["id"].as_str().unwrap().to_string();
    let (st, b) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{}/custom-fields", s.org),
            json!({"entity_type": "person", "key": "ville", "label": "Ville", "kind": "text"}),
        )
        .await;
    assert!(st == 201 || st == 200, "{b}");
    let mut people = Vec::new();
    for (given, ty, start, city) in [
        ("Ana", &ind, "02-10", "Lyon"),
        ("Bo", &fam, "03-05", "Paris"),
        ("Cy", &ind, "03-10", "Paris"),
        ("Di", &fam, "04-01", "Lyon"),
    ] {
        let who = person(app, s, given, "Filtre").await;
        let (st, b) = app
            .send(
                reqwest::Method::PATCH,
                &s.admin,
                &format!("/api/v1/orgs/{}/people/{who}", s.org),
                json!({"custom": {"ville": city}}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        let (st, per) = join(app, s, &who, json!({"type_id": ty, "starts_on": format!("{p}-{start}")})).await;
        assert_eq!(st, 201, "{per}");
        people.push((who, per["id"].as_str().unwrap().to_string()));
    }
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/periods/{}/close", people[1].1)),
            json!({"reason": "resigned", "on": format!("{p}-06-15")}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    for (i, ty, cents) in [(0, &ind, 3000), (3, &fam, 5000)] {
        let who = &people[i].0;
        let (st, r) = app
            .post(
                &s.admin,
                &url(&s.org, &format!("/people/{who}/renewals")),
                json!({"type_id": ty, "on": format!("{y}-01-01")}),
            )
            .await;
        assert_eq!(st, 201, "{r}");
        let (st, d) = app
            .post(
                &s.admin,
                &url(&s.org, "/dues"),
                json!({"person_id": who, "period_id": r["id"], "amount_cents": cents, "method": "cash", "paid_on": format!("{y}-01-01")}),
            )
            .await;
        assert_eq!(st, 201, "{d}");
    }
    let (st, d) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": people[3].0, "amount_cents": 1000, "method": "cash", "paid_on": format!("{y}-01-01")}),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    Filtered { ind, fam }
}

/// The figures of a filter: members at some month-ends and today, by type,
/// joins, resignations and lapses in some months, dues of this year.
async fn figures(app: &TestApp, s: &crate::Setup, query: &str) -> Value {
    let (st, b) = app.get(&s.admin, &url(&s.org, &format!("/stats?{query}"))).await;
    assert_eq!(st, 200, "{query}: {b}");
    let (y, p) = (year(), year() - 1);
    let members = |m: String| month(&b["members_by_month"], "month", &m)["members"].clone();
    let moves = |m: String, k: &str| month(&b["moves_by_month"], "month", &m)[k].clone();
    let by_type: Vec<Value> =
        b["by_type"].as_array().unwrap().iter().map(|t| json!([t["name"], t["members"]])).collect();
    json!({
        "members": [members(format!("{p}-02")), members(format!("{p}-03")), members(format!("{p}-04")),
            members(format!("{p}-06")), members(format!("{p}-12")), b["members_today"]],
        "by_type": by_type,
        "joins": [moves(format!("{p}-02"), "joins"), moves(format!("{p}-03"), "joins"), moves(format!("{p}-04"), "joins")],
        "resigned_june": moves(format!("{p}-06"), "resignations"),
        "lapsed_january": moves(format!("{y}-01"), "lapses"),
        "dues_january": [month(&b["dues_by_month"], "period", &format!("{y}-01"))["amount_cents"].clone(),
            month(&b["dues_by_month"], "period", &format!("{y}-01"))["dues"].clone()],
        "dues_by_year": b["dues_by_year"].clone(),
    })
}

db_test!(statistics_filter_by_type_and_custom_fields, |app: TestApp| async move {
    let s = setup(&app).await;
    let d = filtered_data(&app, &s).await;
    let y = year().to_string();
    let all = figures(&app, &s, "").await;
    assert_eq!(
        all,
        json!({"members": [1, 3, 4, 3, 3, 2], "by_type": [["Famille", 1], ["Individuelle", 1]], "joins": [1, 2, 1],
            "resigned_june": 1, "lapsed_january": 1, "dues_january": [9000, 3],
            "dues_by_year": [{"period": y, "amount_cents": 9000, "dues": 3}]})
    );
    // One type: its periods, and the dues of its periods (not the gift without a period).
    assert_eq!(
        figures(&app, &s, &format!("type_id={}", d.ind)).await,
        json!({"members": [1, 2, 2, 2, 2, 1], "by_type": [["Individuelle", 1]], "joins": [1, 1, 0],
            "resigned_june": 0, "lapsed_january": 1, "dues_january": [3000, 1],
            "dues_by_year": [{"period": y, "amount_cents": 3000, "dues": 1}]})
    );
    assert_eq!(
        figures(&app, &s, &format!("type_id={}", d.fam)).await,
        json!({"members": [0, 1, 2, 1, 1, 1], "by_type": [["Famille", 1]], "joins": [0, 1, 1],
            "resigned_june": 1, "lapsed_january": 0, "dues_january": [5000, 1],
            "dues_by_year": [{"period": y, "amount_cents": 5000, "dues": 1}]})
    );
    // A custom field: only the people of Lyon (Ana and Di), in every figure.
    assert_eq!(
        figures(&app, &s, "cf=ville%3Dlyon").await,
        json!({"members": [1, 1, 2, 2, 2, 2], "by_type": [["Famille", 1], ["Individuelle", 1]], "joins": [1, 0, 1],
            "resigned_june": 0, "lapsed_january": 0, "dues_january": [9000, 3],
            "dues_by_year": [{"period": y, "amount_cents": 9000, "dues": 3}]})
    );
    // "Containing" (Paris: Bo and Cy), and both filters together (Cy only).
    assert_eq!(
        figures(&app, &s, "cf=ville~ARI").await,
        json!({"members": [0, 2, 2, 1, 1, 0], "by_type": [["Famille", 0], ["Individuelle", 0]], "joins": [0, 2, 0],
            "resigned_june": 1, "lapsed_january": 1, "dues_january": [0, 0], "dues_by_year": []})
    );
    let (st, b) =
        app.get(&s.admin, &url(&s.org, &format!("/stats?type_id={}&cf=ville%3Dparis%3Bville~ri", d.ind))).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["filter"], json!({"type_id": d.ind, "cf": "ville=paris;ville~ri"}));
    assert_eq!(month(&b["members_by_month"], "month", &format!("{}-03", year() - 1))["members"], 1);
    assert_eq!(b["members_today"], 0);
    // Blank values are no filter.
    assert_eq!(figures(&app, &s, "type_id=&cf=+").await, all);

    // Unknown type, field or parameter: 422 naming the field.
    for (query, field) in
        [("type_id=nope", "type_id"), ("cf=shoe%3D42", "cf"), ("cf=ville%3E%3D3", "cf"), ("colour=red", "query")]
    {
        let (st, b) = app.get(&s.admin, &url(&s.org, &format!("/stats?{query}"))).await;
        assert_eq!(st, 422, "{query}: {b}");
        assert_eq!(field_errors(&b)[0].0, field, "{query}: {b}");
    }
    let (_, b) = app.get(&s.admin, &url(&s.org, "/stats?type_id=nope&cf=shoe%3D42")).await;
    let fields: Vec<String> = field_errors(&b).into_iter().map(|(f, _)| f).collect();
    assert_eq!(fields, ["type_id", "cf"], "both mistakes at once: {b}");
    // Another organisation's type: the same answer as an unknown one, not its figures.
    assert_eq!(app.post(&s.admin, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await.0, 201);
    let (st, t) = app
        .post(
            &s.admin,
            &url("other", "/types"),
            json!({"name": "Secrète", "kind": "individual", "fee_rule": "fixed", "fee_cents": 100, "period_rule": "calendar_year"}),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    let theirs = t["id"].as_str().unwrap();
    let (st, b) = app.get(&s.admin, &url(&s.org, &format!("/stats?type_id={theirs}"))).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b), [("type_id".to_string(), format!("There is no membership type `{theirs}`."))]);
    assert!(!b.to_string().contains("Secrète"), "{b}");
    let (st, b) = app.get(&s.admin, &url(&s.org, &format!("/stats.csv?table=types&type_id={theirs}"))).await;
    assert_eq!((st, field_errors(&b)[0].0.as_str()), (422, "type_id"), "{b}");
});

async fn csv(app: &TestApp, s: &crate::Setup, query: &str) -> (u16, String, String, String) {
    let r = reqwest::Client::new()
        .get(app.url(&url(&s.org, &format!("/stats.csv?{query}"))))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    let (ct, cd) = (h("content-type"), h("content-disposition"));
    (r.status().as_u16(), ct, cd, r.text().await.unwrap())
}

db_test!(statistics_tables_as_csv_and_the_filter_form, |app: TestApp| async move {
    let s = setup(&app).await;
    let d = filtered_data(&app, &s).await;
    let (y, p) = (year(), year() - 1);

    // Each table, with the filters; amounts in euros from the cents.
    let (st, ct, cd, body) = csv(&app, &s, &format!("table=dues&type_id={}", d.fam)).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(ct, "text/csv; charset=utf-8");
    assert!(cd.starts_with("attachment; filename=\"members-stats-dues-") && cd.ends_with(".csv\""), "{cd}");
    let lines: Vec<&str> = body.trim_start_matches('\u{feff}').split("\r\n").collect();
    assert_eq!(lines[0], "month,receipts,amount");
    assert_eq!(lines.len(), 26, "a header, 24 months and the final line break: {body}");
    assert!(lines.contains(&format!("{y}-01,1,50.00").as_str()), "{body}");
    assert!(lines.contains(&format!("{p}-12,0,0.00").as_str()), "{body}");
    let (_, _, _, body) = csv(&app, &s, "table=dues_years").await;
    assert_eq!(body, format!("\u{feff}year,receipts,amount\r\n{y},3,90.00\r\n"));
    let (_, _, _, body) = csv(&app, &s, "table=types&cf=ville%3Dlyon").await;
    assert_eq!(body, format!("\u{feff}type_id,type,members\r\n{},Famille,1\r\n{},Individuelle,1\r\n", d.fam, d.ind));
    let (_, _, _, body) = csv(&app, &s, &format!("table=members&type_id={}", d.ind)).await;
    assert!(body.starts_with("\u{feff}month,day,members\r\n"), "{body}");
    assert!(body.contains(&format!("\r\n{p}-03,{p}-03-31,2\r\n")), "{body}");
    let (_, _, _, body) = csv(&app, &s, "table=moves&cf=ville~ari").await;
    assert!(body.starts_with("\u{feff}month,joins,resignations,exclusions,lapses,departures\r\n"), "{body}");
    assert!(body.contains(&format!("\r\n{p}-06,0,1,0,0,1\r\n")), "{body}");
    assert!(body.contains(&format!("\r\n{y}-01,0,0,0,1,1\r\n")), "{body}");
    // No table, an unknown one, and a bad filter: 422 naming each field.
    for (query, fields) in [
        ("", vec!["table"]),
        ("table=people", vec!["table"]),
        ("table=people&cf=shoe%3D1", vec!["table", "cf"]),
        ("table=members&type_id=nope", vec!["type_id"]),
    ] {
        let (st, _, _, body) = csv(&app, &s, query).await;
        assert_eq!(st, 422, "{query}: {body}");
        let b: Value = serde_json::from_str(&body).unwrap();
        let got: Vec<String> = field_errors(&b).into_iter().map(|(f, _)| f).collect();
        assert_eq!(got, fields, "{query}: {body}");
    }

    // The page: the form keeps the filter, the tables show the filtered
    // figures, the CSV links carry the filter and download in the browser.
    let browser = testkit::browser_client();
    app.sign_in(&browser, "admin@example.org", ADMIN_PASSWORD).await;
    let page = |q: String| {
        let browser = browser.clone();
        let u = app.url(&format!("/o/{}/members/stats?{q}", s.org));
        async move {
            let r = browser.get(u).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap().replace("&#x2f;", "/"))
        }
    };
    let (st, html) = page(format!("type_id={}&cf=ville%3Dparis", d.ind)).await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains(&format!("<option value=\"{}\" selected>Individuelle</option>", d.ind)), "{html}");
    assert!(html.contains("name=\"cf\" type=\"text\" value=\"ville=paris\""), "{html}");
    assert!(
        html.contains(&format!("<th scope=\"row\">{p}-03</th><td>{p}-03-31</td><td class=\"num\">1</td>")),
        "Cy only: {html}"
    );
    assert!(html.contains("<th scope=\"row\">Individuelle</th><td class=\"num\">0</td>"), "{html}");
    assert!(!html.contains("<th scope=\"row\">Famille</th>"), "the chosen type only: {html}");
    let link = format!("/o/{}/members/stats.csv?table=moves&amp;type_id={}&amp;cf=ville%3Dparis", s.org, d.ind);
    assert!(html.contains(&link), "{html}");
    let r = browser.get(app.url(&link.replace("&amp;", "&"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!("\r\n{y}-01,0,0,0,1,1\r\n")), "Cy lapsed: {body}");
    // Unfiltered, the same rows count everyone.
    let (_, html) = page(String::new()).await;
    assert!(
        html.contains(&format!("<th scope=\"row\">{p}-03</th><td>{p}-03-31</td><td class=\"num\">3</td>")),
        "{html}"
    );
    assert!(html.contains("/members/stats.csv?table=dues_years\""), "{html}");
    // A bad filter is a form error, with no figures.
    let (st, html) = page("type_id=nope&cf=shoe%3D1".into()).await;
    assert_eq!(st, 422, "{html}");
    assert!(
        html.contains("There is no membership type `nope`.") && html.contains("There is no field `shoe`."),
        "{html}"
    );
    assert!(
        html.contains("name=\"cf\" type=\"text\" value=\"shoe=1\"") && html.contains("aria-invalid=\"true\""),
        "{html}"
    );
    assert!(!html.contains("<th scope=\"row\">Individuelle</th>"), "{html}");
});
