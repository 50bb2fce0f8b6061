//! Membership types, periods and their history, standing, households, bulk
//! renewals and types, permissions and tenant scoping.

use crate::{audited, field_errors, join, person, setup, url, year, yearly};
use serde_json::json;
use testkit::{db_test, TestApp};

db_test!(types_are_checked_and_named_once, |app: TestApp| async move {
    let s = setup(&app).await;
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/types"),
            json!({"name": "Famille", "fee_rule": "tiers", "period_rule": "school_year"}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "tiers");
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/types"),
            json!({"name": "X", "fee_rule": "weekly", "period_rule": "calendar_year", "fee_cents": -5}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "fee_rule");
    let (st, t) = app
        .post(
            &s.admin,
            &url(&s.org, "/types"),
            json!({"name": "Famille", "kind": "family", "fee_rule": "tiers", "period_rule": "school_year", "school_start_month": 9,
                "tiers": [{"label": "Quotient < 800", "fee_cents": 2000}, {"label": "Quotient ≥ 800", "fee_cents": 4500}], "voting": true}),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    assert_eq!(t["tiers"][1]["fee_cents"], 4500);
    let (st, b) = app
        .post(&s.admin, &url(&s.org, "/types"), json!({"name": "Famille", "fee_cents": 100, "period_rule": "lifetime"}))
        .await;
    assert_eq!(st, 409, "{b}");
    assert_eq!(b["errors"][0]["field"], "name", "{b}");
    // A change is audited with before and after.
    let id = t["id"].as_str().unwrap();
    let (st, u) = app
        .send(reqwest::Method::PATCH, &s.admin, &url(&s.org, &format!("/types/{id}")), json!({"voting": false}))
        .await;
    assert_eq!(st, 200, "{u}");
    assert_eq!(u["voting"], false);
    assert_eq!(u["fee_rule"], "tiers");
    let a = audited(&app, &s, "members.type.update").await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0]["before"]["voting"], true);
    assert_eq!(a[0]["after"]["voting"], false);
});

db_test!(a_period_that_overlaps_is_refused_and_history_is_kept, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ana = person(&app, &s, "Ana", "Martin").await;
    let ind = yearly(&app, &s, "Individuelle").await;
    let (st, p) =
        join(&app, &s, &ana, json!({"type_id": ind, "starts_on": format!("{y}-01-01"), "request_key": "form-1"})).await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["ends_on"], format!("{y}-12-31"));
    assert_eq!(p["origin"], "joined");
    assert_eq!(p["fee_cents"], 3000);
    // The same form submitted twice: the same period, nothing new.
    let (st, again) =
        join(&app, &s, &ana, json!({"type_id": ind, "starts_on": format!("{y}-01-01"), "request_key": "form-1"})).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["id"], p["id"]);
    // Joining twice: the overlap is refused with a clear message.
    let (st, b) = join(&app, &s, &ana, json!({"type_id": ind, "starts_on": format!("{y}-06-01")})).await;
    assert_eq!(st, 422, "{b}");
    let errs = field_errors(&b);
    assert_eq!(errs[0].0, "starts_on");
    assert!(errs[0].1.contains("overlaps") && errs[0].1.contains(&format!("{y}-01-01 – {y}-12-31")), "{}", errs[0].1);
    // Standing: a current period, its dues not paid.
    let (st, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}"))).await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["periods"].as_array().unwrap().len(), 1, "no duplicate: {m}");
    assert_eq!(m["standing"]["standing"], "dues_unpaid");
    assert_eq!(m["standing"]["due_cents"], 3000);
    assert_eq!(m["standing"]["votes"], false);
    // Renewing: the next calendar year follows.
    let (st, r) = app.post(&s.admin, &url(&s.org, &format!("/people/{ana}/renewals")), json!({"type_id": ind})).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["starts_on"], format!("{}-01-01", y + 1));
    assert_eq!(r["origin"], "renewed");
    // Resigning closes the current period; it stays in the history.
    let pid = p["id"].as_str().unwrap();
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/periods/{pid}/close")),
            json!({"reason": "resigned", "on": format!("{}-01-01", y - 1)}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "on");
    let (st, c) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/periods/{pid}/close")),
            json!({"reason": "resigned", "on": format!("{y}-01-31"), "note": "moved away"}),
        )
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["closed_reason"], "resigned");
    let (st, b) =
        app.post(&s.admin, &url(&s.org, &format!("/periods/{pid}/close")), json!({"reason": "excluded"})).await;
    assert_eq!(st, 422, "closed once: {b}");
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{ana}"))).await;
    let kinds: Vec<&str> = m["history"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["joined", "resigned", "renewed"], "{m}");
    assert_eq!(m["standing"]["standing"], "not_started", "{m}");
    assert_eq!(audited(&app, &s, "members.period.joined").await.len(), 1);
    assert_eq!(audited(&app, &s, "members.period.resigned").await.len(), 1);
});

db_test!(standing_follows_dues_lapses_and_votes, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let bo = person(&app, &s, "Bo", "Diallo").await;
    let ind = yearly(&app, &s, "Individuelle").await;
    // Last year's period lapsed: the history says so, and nobody is up to date.
    let (st, old) = join(&app, &s, &bo, json!({"type_id": ind, "starts_on": format!("{}-03-01", y - 1)})).await;
    assert_eq!(st, 201, "{old}");
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{bo}"))).await;
    assert_eq!(m["standing"]["standing"], "lapsed", "{m}");
    let kinds: Vec<&str> = m["history"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["joined", "lapsed"]);
    assert_eq!(m["history"][1]["on"], format!("{y}-01-01"));
    // Renewing from the first day of the year, paid: up to date, with a vote.
    let (st, p) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/people/{bo}/renewals")),
            json!({"type_id": ind, "on": format!("{y}-01-01")}),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["starts_on"], format!("{y}-01-01"));
    let (st, d) = app
        .post(&s.admin, &url(&s.org, "/dues"), json!({"person_id": bo, "period_id": p["id"], "method": "cheque"}))
        .await;
    assert_eq!(st, 201, "{d}");
    assert_eq!(d["amount_cents"], 3000, "defaults to what is left");
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{bo}"))).await;
    assert_eq!(m["standing"]["standing"], "up_to_date", "{m}");
    assert_eq!(m["standing"]["votes"], true);
    let kinds: Vec<&str> = m["history"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["joined", "renewed"], "followed on: no lapse");
    // The list filters by standing.
    let (st, l) = app.get(&s.admin, &url(&s.org, "/directory?standing=up_to_date")).await;
    assert_eq!(st, 200, "{l}");
    assert_eq!(l.as_array().unwrap().len(), 1);
    let (_, l) = app.get(&s.admin, &url(&s.org, "/directory?standing=lapsed")).await;
    assert_eq!(l.as_array().unwrap().len(), 0);
});

db_test!(one_person_holds_several_memberships_and_fees_follow_rules, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let cy = person(&app, &s, "Cy", "Nguyen").await;
    let ind = yearly(&app, &s, "Individuelle").await;
    let (_, sport) = app
        .post(
            &s.admin,
            &url(&s.org, "/types"),
            json!({"name": "Section sport", "fee_rule": "free_amount", "fee_cents": 1000, "period_rule": "rolling_12_months", "voting": false}),
        )
        .await;
    let (_, pro) = app
        .post(
            &s.admin,
            &url(&s.org, "/types"),
            json!({"name": "Prorata", "fee_rule": "prorated", "fee_cents": 1200, "period_rule": "calendar_year"}),
        )
        .await;
    assert_eq!(join(&app, &s, &cy, json!({"type_id": ind, "starts_on": format!("{y}-01-01")})).await.0, 201);
    let (st, b) =
        join(&app, &s, &cy, json!({"type_id": sport["id"], "starts_on": format!("{y}-02-15"), "amount_cents": 500}))
            .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "amount_cents");
    assert!(field_errors(&b)[0].1.contains("10.00"), "{b}");
    let (st, p) =
        join(&app, &s, &cy, json!({"type_id": sport["id"], "starts_on": format!("{y}-02-15"), "amount_cents": 2500}))
            .await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["ends_on"], format!("{}-02-14", y + 1));
    assert_eq!(p["fee_cents"], 2500);
    // Prorated from October: 3 of 12 months of 12.00.
    let (st, p) = join(&app, &s, &cy, json!({"type_id": pro["id"], "starts_on": format!("{y}-10-20")})).await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["fee_cents"], 300);
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{cy}"))).await;
    assert_eq!(m["periods"].as_array().unwrap().len(), 3);
});

db_test!(households_share_their_address_and_email, |app: TestApp| async move {
    let s = setup(&app).await;
    let (st, b) = app.post(&s.admin, &url(&s.org, "/households"), json!({"name": "", "email": "not an email"})).await;
    assert_eq!(st, 422, "{b}");
    let fields: Vec<String> = field_errors(&b).into_iter().map(|e| e.0).collect();
    assert!(fields.contains(&"name".to_string()) && fields.contains(&"email".to_string()), "{fields:?}");
    // Objects only: an address given as a list, a body that is a list.
    let (st, b) = app.post(&s.admin, &url(&s.org, "/households"), json!({"name": "X", "address": []})).await;
    assert_eq!(st, 422, "{b}");
    let (st, b) = app.post(&s.admin, &url(&s.org, "/households"), json!([])).await;
    assert_eq!(st, 422, "{b}");
    let (st, h) = app
        .post(
            &s.admin,
            &url(&s.org, "/households"),
            json!({"kind": "family", "name": "Famille Petit", "email": "petit@example.org",
                "address": {"street": "3 rue des Lilas", "postcode": "69001", "city": "Lyon"}}),
        )
        .await;
    assert_eq!(st, 201, "{h}");
    assert_eq!(h["address"]["country"], "FR");
    let hid = h["id"].as_str().unwrap();
    // A child without e-mail: the household's address and e-mail are theirs.
    let (st, child) = app
        .post(&s.admin, &format!("/api/v1/orgs/{}/people", s.org), json!({"given_name": "Léa", "family_name": "Petit"}))
        .await;
    assert_eq!(st, 201, "{child}");
    let child = child["id"].as_str().unwrap();
    let (st, h) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/households/{hid}/members")),
            json!({"person_id": child, "role": "member"}),
        )
        .await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["members"][0]["name"], "Léa Petit");
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{child}"))).await;
    assert_eq!(m["person"]["email"], "petit@example.org");
    assert_eq!(m["person"]["address"]["city"], "Lyon");
    assert_eq!(m["person"]["shares_household_address"], true);
    // Their own address wins; a bad country is refused.
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(&s.org, &format!("/people/{child}/profile")),
            json!({"address": {"city": "Paris", "country": "France"}}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "address.country");
    let (st, p) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(&s.org, &format!("/people/{child}/profile")),
            json!({"address": {"street": "1 quai", "postcode": "75004", "city": "Paris"}}),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["address"]["city"], "Paris");
    assert_eq!(p["shares_household_address"], false);
    // Linking someone who does not exist.
    let (st, b) =
        app.post(&s.admin, &url(&s.org, &format!("/households/{hid}/members")), json!({"person_id": "nobody"})).await;
    assert_eq!(st, 422, "{b}");
    let r = app
        .http
        .delete(app.url(&url(&s.org, &format!("/households/{hid}/members/{child}"))))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, h) = app.get(&s.admin, &url(&s.org, &format!("/households/{hid}"))).await;
    assert_eq!(h["members"].as_array().unwrap().len(), 0);
});

db_test!(bulk_renewals_and_types_are_all_or_nothing, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let mut people = Vec::new();
    for n in ["Dan", "Eve", "Fay"] {
        people.push(person(&app, &s, n, "Bulk").await);
    }
    // Eve is already a member this year: applying the type to all three is refused, naming her.
    assert_eq!(join(&app, &s, &people[1], json!({"type_id": ind, "starts_on": format!("{y}-01-01")})).await.0, 201);
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/apply-type"),
            json!({"person_ids": people, "type_id": ind, "starts_on": format!("{y}-03-01")}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b).len(), 1, "{b}");
    assert_eq!(field_errors(&b)[0].0, "person_ids[1].starts_on");
    let (_, l) = app.get(&s.admin, &url(&s.org, "/directory")).await;
    assert_eq!(l.as_array().unwrap().len(), 1, "nothing half-written: {l}");
    let others = vec![people[0].clone(), people[2].clone()];
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/apply-type"),
            json!({"person_ids": others, "type_id": ind, "starts_on": format!("{y}-03-01")}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b.as_array().unwrap().len(), 2);
    // Renewing the whole list: each gets next year.
    let (st, b) = app.post(&s.admin, &url(&s.org, "/renewals"), json!({"person_ids": people, "type_id": ind})).await;
    assert_eq!(st, 201, "{b}");
    assert!(b.as_array().unwrap().iter().all(|p| p["starts_on"] == format!("{}-01-01", y + 1)), "{b}");
    // Renewing again, even with a date inside next year: the year after follows, no overlap.
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/renewals"),
            json!({"person_ids": people, "type_id": ind, "on": format!("{}-06-01", y + 1)}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    assert!(b.as_array().unwrap().iter().all(|p| p["starts_on"] == format!("{}-01-01", y + 2)), "{b}");
    let stranger = person(&app, &s, "Gil", "Never").await;
    let (st, b) = app
        .post(&s.admin, &url(&s.org, "/renewals"), json!({"person_ids": [people[0].clone(), stranger], "type_id": ind}))
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "person_ids[1].type_id");
    let (st, b) = app.post(&s.admin, &url(&s.org, "/renewals"), json!({"person_ids": [], "type_id": ind})).await;
    assert_eq!(st, 422, "{b}");
});

db_test!(roles_and_organisations_are_respected, |app: TestApp| async move {
    let s = setup(&app).await;
    let ind = yearly(&app, &s, "Individuelle").await;
    let ana = person(&app, &s, "Ana", "Roles").await;
    let staff = app.member(&s.admin, &s.org, "staff@example.org", "staff").await;
    let member = app.member(&s.admin, &s.org, "member@example.org", "member").await;
    assert_eq!(app.get(&staff, &url(&s.org, &format!("/people/{ana}"))).await.0, 200);
    let (st, b) =
        join(&app, &crate::Setup { org: s.org.clone(), admin: staff.clone() }, &ana, json!({"type_id": ind})).await;
    assert_eq!(st, 403, "{b}");
    assert_eq!(app.get(&member, &url(&s.org, "/directory")).await.0, 403);
    // Another organisation sees none of it.
    assert_eq!(app.post(&s.admin, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await.0, 201);
    let (st, b) = app.get(&s.admin, &url("other", &format!("/people/{ana}"))).await;
    assert_eq!(st, 404, "{b}");
    let (st, b) = app.post(&s.admin, &url("other", &format!("/people/{ana}/periods")), json!({"type_id": ind})).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "person_id");
    let (st, _) = app.get(&s.admin, &url("other", &format!("/types/{ind}"))).await;
    assert_eq!(st, 404);
});
