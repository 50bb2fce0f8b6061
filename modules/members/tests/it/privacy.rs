//! Personal data of a member: the export (core and members sections, the
//! IBAN masked), erasure (refused while a membership is current, without
//! the name typed, for staff; the name gone from search, the list and the
//! export; receipts, ledger and audit chain intact), and the retention job.

use crate::{field_errors, join, person, setup, url, year, yearly, Setup};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

fn people_url(s: &Setup, rest: &str) -> String {
    format!("/api/v1/orgs/{}/people{rest}", s.org)
}

fn section<'a>(export: &'a Value, module: &str, name: &str) -> &'a Vec<Value> {
    export["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["module"] == module && s["section"] == name)
        .unwrap_or_else(|| panic!("no section {module}/{name} in {export}"))["rows"]
        .as_array()
        .unwrap()
}

db_test!(a_member_is_exported_then_erased, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let ana = person(&app, &s, "Anaïs", "Moreau").await;
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(&s.org, &format!("/people/{ana}/profile")),
            json!({"address": {"street": "12 rue des Lilas", "postcode": "69003", "city": "Lyon"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, per) = join(&app, &s, &ana, json!({"type_id": ind, "starts_on": format!("{y}-01-01")})).await;
    assert_eq!(st, 201, "{per}");
    let (st, due) = app
        .post(
            &s.admin,
            &url(&s.org, "/dues"),
            json!({"person_id": ana, "period_id": per["id"], "amount_cents": 3000, "method": "cheque", "paid_on": format!("{y}-01-01")}),
        )
        .await;
    assert_eq!(st, 201, "{due}");
    let (st, m) = app
        .post(
            &s.admin,
            &url(&s.org, "/sepa/mandates"),
            json!({"person_id": ana, "iban": "FR76 3000 6000 0112 3456 7890 189", "signed_on": format!("{y}-01-01")}),
        )
        .await;
    assert_eq!(st, 201, "{m}");
    let (st, plan) = app
        .post(
            &s.admin,
            &url(&s.org, "/gift-plans"),
            json!({"person_id": ana, "amount_cents": 1500, "frequency": "monthly", "method": "transfer",
                   "first_on": format!("{y}-01-31")}),
        )
        .await;
    assert_eq!(st, 201, "{plan}");

    // The export: core and members sections; the IBAN masked.
    let (st, ex) = app.get(&s.admin, &people_url(&s, &format!("/{ana}/personal-data"))).await;
    assert_eq!(st, 200, "{ex}");
    assert_eq!(section(&ex, "core", "person")[0]["family_name"], "Moreau");
    assert_eq!(section(&ex, "members", "profile")[0]["street"], "12 rue des Lilas");
    assert_eq!(section(&ex, "members", "periods")[0]["type"], "Individuelle");
    assert_eq!(section(&ex, "members", "dues")[0]["amount_cents"], 3000);
    assert_eq!(section(&ex, "members", "mandates")[0]["iban"], "FR76 **** 0189");
    assert_eq!(section(&ex, "members", "gift_plans")[0]["amount_cents"], 1500);
    assert!(!ex.to_string().contains("30006000011234567890189"), "the IBAN is never exported whole");
    let r = app
        .http
        .get(app.url(&people_url(&s, &format!("/{ana}/personal-data?format=csv"))))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert!(csv.trim_start_matches('\u{feff}').starts_with("module,section,record,field,value"), "{csv}");
    assert!(csv.contains("members,profile,1,city,Lyon"), "{csv}");

    // Staff may not export nor erase.
    let staff = app.member(&s.admin, &s.org, "staff@example.org", "staff").await;
    let (st, _) = app.get(&staff, &people_url(&s, &format!("/{ana}/personal-data"))).await;
    assert_eq!(st, 403);
    let (st, _) =
        app.post(&staff, &people_url(&s, &format!("/{ana}/erase")), json!({"confirmation": "Anaïs Moreau"})).await;
    assert_eq!(st, 403);
    // A current member: record the resignation first.
    let (st, b) =
        app.post(&s.admin, &people_url(&s, &format!("/{ana}/erase")), json!({"confirmation": "Anaïs Moreau"})).await;
    assert_eq!(st, 409, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("record their resignation first"), "{b}");
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/periods/{}/close", per["id"].as_str().unwrap())),
            json!({"reason": "resigned", "on": format!("{y}-01-01")}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    // The name must be typed.
    for body in [json!({}), json!({"confirmation": "Anais"})] {
        let (st, b) = app.post(&s.admin, &people_url(&s, &format!("/{ana}/erase")), body).await;
        assert_eq!(st, 422, "{b}");
        assert_eq!(field_errors(&b)[0].0, "confirmation");
    }
    let entries_before = app.get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries?limit=500", s.org)).await.1;
    let (st, rep) = app
        .post(&s.admin, &people_url(&s, &format!("/{ana}/erase")), json!({"confirmation": "  anaïs   MOREAU "}))
        .await;
    assert_eq!(st, 200, "{rep}");
    let pseudo = rep["pseudonym"].as_str().unwrap().to_string();
    assert!(pseudo.starts_with("Erased "), "{rep}");
    let kept: Vec<&str> = rep["notes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["outcome"] == "kept")
        .map(|n| n["section"].as_str().unwrap())
        .collect();
    assert!(kept.contains(&"tax_receipts") && kept.contains(&"audit"), "{rep}");
    // A recurring gift of someone erased is no longer expected.
    let (_, plans) = app.get(&s.admin, &url(&s.org, "/gift-plans")).await;
    assert_eq!(plans.as_array().map(Vec::len), Some(0), "{plans}");

    // The name is found nowhere: people search, the member list, the export.
    let (_, found) = app.get(&s.admin, &people_url(&s, "?q=moreau")).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 0, "{found}");
    let (_, list) = app.get(&s.admin, &url(&s.org, "/directory")).await;
    assert!(!list.to_string().contains("Moreau") && list.to_string().contains(&pseudo), "{list}");
    let (_, ex) = app.get(&s.admin, &people_url(&s, &format!("/{ana}/personal-data"))).await;
    let text = ex.to_string();
    for gone in ["Moreau", "Anaïs", "anaïs@example.org", "Lilas", "FR76"] {
        assert!(!text.contains(gone), "{gone} still in {text}");
    }
    // Kept: the receipt's number and amount, the mandate revoked, the ledger unchanged, the audit chain whole.
    let d = &section(&ex, "members", "dues")[0];
    assert_eq!(
        (d["receipt_number"].as_i64(), d["amount_cents"].as_i64(), d["payer_name"].as_str()),
        (Some(1), Some(3000), Some(pseudo.as_str()))
    );
    assert_eq!(section(&ex, "members", "mandates")[0]["status"], "revoked");
    let entries_after = app.get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries?limit=500", s.org)).await.1;
    assert_eq!(entries_before, entries_after);
    let (st, v) = app.get(&s.admin, "/api/v1/admin/audit/verify").await;
    assert_eq!((st, v["intact"].as_bool()), (200, Some(true)), "{v}");
    let (_, audit) = app.get(&s.admin, &format!("/api/v1/orgs/{}/audit?action=person.erase", s.org)).await;
    let entry = audit["items"][0].to_string();
    assert!(entry.contains(&pseudo) && !entry.contains("Moreau"), "{entry}");
    // Once only.
    let (st, _) = app.post(&s.admin, &people_url(&s, &format!("/{ana}/erase")), json!({"confirmation": pseudo})).await;
    assert_eq!(st, 409);
    // Another organisation's person is not found.
    let (st, other) = app.post(&s.admin, "/api/v1/orgs", json!({"name": "Other Org", "slug": "other-org"})).await;
    assert_eq!(st, 201, "{other}");
    let (st, _) = app.get(&s.admin, &format!("/api/v1/orgs/other-org/people/{ana}/personal-data")).await;
    assert_eq!(st, 404);
    let (st, _) = app
        .post(&s.admin, &format!("/api/v1/orgs/other-org/people/{ana}/erase"), json!({"confirmation": pseudo}))
        .await;
    assert_eq!(st, 404);
});

db_test!(retention_erases_former_members_past_the_delay, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let old = person(&app, &s, "Odile", "Ancienne").await;
    let (st, b) = join(&app, &s, &old, json!({"type_id": ind, "starts_on": format!("{}-01-01", y - 3)})).await;
    assert_eq!(st, 201, "{b}");
    let recent = person(&app, &s, "Rémi", "Recent").await;
    let (st, b) = join(&app, &s, &recent, json!({"type_id": ind, "starts_on": format!("{}-01-01", y - 1)})).await;
    assert_eq!(st, 201, "{b}");
    let current = person(&app, &s, "Céline", "Courante").await;
    let (st, b) = join(&app, &s, &current, json!({"type_id": ind, "starts_on": format!("{}-01-01", y - 3)})).await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/people/{current}/renewals")),
            json!({"type_id": ind, "on": format!("{y}-01-01")}),
        )
        .await;
    assert_eq!(st, 201, "{b}");

    // Off by default: nothing happens.
    let (st, run) = app.post(&s.admin, &url(&s.org, "/retention/run"), json!({})).await;
    assert_eq!((st, run["erased"].as_array().unwrap().len()), (200, 0), "{run}");
    let (st, b) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/retention"), json!({"months": 0})).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "months");
    let (st, b) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/retention"), json!({"months": 24})).await;
    assert_eq!(st, 200, "{b}");

    let (_, sch) = app.get(&s.admin, &format!("/api/v1/orgs/{}/schedules", s.org)).await;
    let sch = sch.as_array().unwrap().iter().find(|x| x["name"] == "members.retention").cloned().unwrap();
    assert_eq!(sch["enabled"], true, "setting a period switches the daily schedule on: {sch}");
    // Through the job, as the daily schedule runs it.
    let org_id: String = sqlx::query_scalar("SELECT id FROM orgs WHERE slug = $1")
        .bind(&s.org)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    shrooms_core::jobs::enqueue(
        &mut tx,
        &shrooms_members::privacy::RETENTION,
        Some(org_id.parse().unwrap()),
        json!({}),
        None,
        0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut runs = Vec::new();
    for _ in 0..300 {
        let (_, a) = app.get(&s.admin, &format!("/api/v1/orgs/{}/audit?action=members.retention.run", s.org)).await;
        runs = a["items"].as_array().cloned().unwrap_or_default();
        if !runs.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(runs.len(), 1, "the job recorded its run");
    let erased = runs[0]["after"]["erased"].as_array().unwrap().clone();
    assert_eq!(erased.len(), 1, "{:?}", runs[0]);
    assert!(!runs[0].to_string().contains("Ancienne"), "the report names pseudonyms only");
    let (_, p) = app.get(&s.admin, &people_url(&s, &format!("/{old}"))).await;
    assert_eq!(
        format!("{} {}", p["given_name"].as_str().unwrap(), p["family_name"].as_str().unwrap()),
        erased[0].as_str().unwrap()
    );
    for (id, name) in [(&recent, "Recent"), (&current, "Courante")] {
        let (_, p) = app.get(&s.admin, &people_url(&s, &format!("/{id}"))).await;
        assert_eq!(p["family_name"], name, "not past the delay, or still a member");
    }
    // Run again: nothing more to do.
    let (_, run) = app.post(&s.admin, &url(&s.org, "/retention/run"), json!({})).await;
    assert_eq!(run["erased"].as_array().unwrap().len(), 0, "{run}");
});
