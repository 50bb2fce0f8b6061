//! Renewal notices and reminders: settings, the run (once per person,
//! period and kind), the mails with their personal link, the public renewal
//! page, and the late list with reminder counts.

use crate::{join, person, setup, url};
use serde_json::json;
use testkit::{db_test, TestApp};

fn day(offset: i64) -> String {
    jiff::Zoned::now().date().checked_add(jiff::Span::new().days(offset)).unwrap().to_string()
}

/// A type of 12 rolling months at 25.00.
async fn rolling(app: &TestApp, s: &crate::Setup) -> String {
    let (st, t) = app
        .post(
            &s.admin,
            &url(&s.org, "/types"),
            json!({"name": "Annuelle", "kind": "individual", "fee_rule": "fixed", "fee_cents": 2500, "period_rule": "rolling_12_months"}),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    t["id"].as_str().unwrap().to_string()
}

db_test!(notices_and_reminders_are_sent_once_with_a_personal_renewal_link, |app: TestApp| async move {
    let s = setup(&app).await;
    let ty = rolling(&app, &s).await;
    // Ends in 10 days: a notice. Ended 20 days ago: the 15-day reminder. Ends in a year: nothing.
    let soon = person(&app, &s, "Nina", "Soon").await;
    let late = person(&app, &s, "Leo", "Late").await;
    let fresh = person(&app, &s, "Fred", "Fresh").await;
    // A rolling period started on D ends on D + 1 year − 1 day.
    let start_for_end = |offset: i64| {
        let end = jiff::Zoned::now().date().checked_add(jiff::Span::new().days(offset)).unwrap();
        end.checked_sub(jiff::Span::new().years(1)).unwrap().tomorrow().unwrap().to_string()
    };
    for (p, start) in [(&soon, start_for_end(10)), (&late, start_for_end(-20)), (&fresh, day(0))] {
        let (st, b) = join(&app, &s, p, json!({"type_id": ty, "starts_on": start})).await;
        assert_eq!(st, 201, "{b}");
    }

    // Settings: defaults, then bad input named by field, then saved.
    let (_, rs) = app.get(&s.admin, &url(&s.org, "/renewal-settings")).await;
    assert_eq!(rs, json!({"notice_days": 30, "reminder_days": [15, 45], "automatic": false}), "off until switched on");
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(&s.org, "/renewal-settings"),
            json!({"notice_days": 400, "reminder_days": [0]}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    let fields: Vec<&str> = b["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["notice_days", "reminder_days"]);
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(&s.org, "/renewal-settings"),
            json!({"notice_days": 30, "reminder_days": [45, 15]}),
        )
        .await;
    assert_eq!((st, b["reminder_days"].clone()), (200, json!([15, 45])), "{b}");

    let (st, r) = app.post(&s.admin, &url(&s.org, "/renewals/run"), json!({})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (r["notices"].as_i64(), r["reminders"].as_i64(), r["invoiced"].as_i64()),
        (Some(1), Some(1), Some(0)),
        "{r}"
    );
    // Run again: nothing twice.
    let (_, r) = app.post(&s.admin, &url(&s.org, "/renewals/run"), json!({})).await;
    assert_eq!((r["notices"].as_i64(), r["reminders"].as_i64()), (Some(0), Some(0)), "{r}");

    // Nina's mail carries her link; the page shows who, which type, the fee.
    let (_, outbox) = app.get(&s.admin, "/api/v1/admin/outbox?to=nina@example.org").await;
    let mails = outbox.as_array().unwrap();
    assert_eq!(mails.len(), 1, "{outbox}");
    let body = mails[0]["body_text"].as_str().unwrap();
    let link = body.split_whitespace().find(|w| w.contains("/members/renew/")).expect("the renewal link").to_string();
    let path = &link[link.find("/o/").unwrap()..];
    let anyone = testkit::browser_client();
    let html = anyone.get(app.url(path)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Nina Soon") && html.contains("Annuelle") && html.contains("25"), "{html}");
    // A tampered token is not a renewal link.
    let bad = anyone.get(app.url(&format!("{}x", path))).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 404);
    // Renewing through the link records the next period (receipt path: how to pay).
    let csrf = testkit::extract_csrf(&html).expect("a form");
    let r = anyone.post(app.url(path)).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{soon}"))).await;
    assert_eq!(m["periods"].as_array().unwrap().len(), 2, "{m}");
    // Sent twice (a double click): still two periods.
    anyone.post(app.url(path)).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{soon}"))).await;
    assert_eq!(m["periods"].as_array().unwrap().len(), 2, "{m}");

    // The member's notices, and the late list with Leo's reminder.
    let (_, dues) = app.get(&s.admin, &url(&s.org, &format!("/people/{late}/dues"))).await;
    assert_eq!(dues["notices"][0]["kind"], "reminder_15", "{dues}");
    assert_eq!(dues["notices"][0]["sent_to"], "leo@example.org");
    let (_, list) = app.get(&s.admin, &url(&s.org, "/late")).await;
    let leo = list.as_array().unwrap().iter().find(|r| r["person_id"] == late.as_str()).expect("Leo is late").clone();
    assert_eq!((leo["standing"].as_str(), leo["reminders"].as_i64()), (Some("lapsed"), Some(1)), "{list}");
    // Fred joined today and owes his dues: late, no reminder yet.
    let fred = list.as_array().unwrap().iter().find(|r| r["person_id"] == fresh.as_str()).expect("Fred owes").clone();
    assert_eq!((fred["standing"].as_str(), fred["reminders"].as_i64()), (Some("dues_unpaid"), Some(0)), "{list}");
});

db_test!(with_the_invoice_path_the_notice_renews_and_invoices, |app: TestApp| async move {
    let s = setup(&app).await;
    let ty = rolling(&app, &s).await;
    let nina = person(&app, &s, "Nina", "Soon").await;
    let end = jiff::Zoned::now().date().checked_add(jiff::Span::new().days(5)).unwrap();
    let start = end.checked_sub(jiff::Span::new().years(1)).unwrap().tomorrow().unwrap().to_string();
    let (st, b) = join(&app, &s, &nina, json!({"type_id": ty, "starts_on": start})).await;
    assert_eq!(st, 201, "{b}");
    let omar = person(&app, &s, "Omar", "Later").await;
    let (st, b) = join(&app, &s, &omar, json!({"type_id": ty, "starts_on": start})).await;
    assert_eq!(st, 201, "{b}");
    // Next year's books, for the invoice of the next period.
    let next = jiff::Zoned::now().date().year() + 1;
    let (st, b) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{}/accounting/years", s.org),
            json!({"start": format!("{next}-01-01"), "end": format!("{next}-12-31")}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    crate::billing::address(&app, &s, &nina).await;
    crate::billing::address(&app, &s, &omar).await;
    crate::billing::invoice_path(&app, &s).await;
    let (st, r) = app.post(&s.admin, &url(&s.org, "/renewals/run"), json!({})).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!((r["notices"].as_i64(), r["invoiced"].as_i64()), (Some(2), Some(2)), "{r}");
    // The renewals were recorded together: each period with its audit
    // entry, the chain intact.
    for who in [&nina, &omar] {
        let (_, page) = app.get(&s.admin, &url(&s.org, &format!("/people/{who}"))).await;
        assert_eq!(page["periods"].as_array().map(Vec::len), Some(2), "{page}");
    }
    assert!(
        matches!(
            shrooms_core::audit::verify(&app.state.db).await.unwrap(),
            shrooms_core::audit::Verification::Intact { .. }
        ),
        "the audit chain is broken"
    );
    let (_, dues) = app.get(&s.admin, &url(&s.org, &format!("/people/{nina}/dues"))).await;
    let inv = &dues["invoices"][0];
    assert_eq!((inv["gross_cents"].as_i64(), inv["status"].as_str()), (Some(2500), Some("validated")), "{dues}");
    let (_, outbox) = app.get(&s.admin, "/api/v1/admin/outbox?to=nina@example.org").await;
    let body = outbox[0]["body_text"].as_str().unwrap().to_string();
    assert!(body.contains(inv["number"].as_str().unwrap()), "{body}");
});

/// Waits (by the clock) for a run started in the background to end.
async fn wait_run(app: &TestApp, s: &crate::Setup, id: &str) -> serde_json::Value {
    for _ in 0..600 {
        let (st, r) = app.get(&s.admin, &url(&s.org, &format!("/renewals/runs/{id}"))).await;
        assert_eq!(st, 200, "{r}");
        if !matches!(r["status"].as_str(), Some("queued" | "running" | "cancelling")) {
            return r;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the renewal run did not end");
}

db_test!(a_run_started_in_the_background_shows_its_progress_and_counts, |app: TestApp| async move {
    let s = setup(&app).await;
    let ty = rolling(&app, &s).await;
    // Three periods ending in 10 days (notices), one ended 20 days ago (the
    // 15-day reminder), one without an e-mail.
    let end_in = |offset: i64| {
        let end = jiff::Zoned::now().date().checked_add(jiff::Span::new().days(offset)).unwrap();
        end.checked_sub(jiff::Span::new().years(1)).unwrap().tomorrow().unwrap().to_string()
    };
    let mut people = Vec::new();
    for (given, offset) in [("Ana", 10), ("Bea", 10), ("Cid", 10), ("Dan", -20)] {
        let p = person(&app, &s, given, "Runner").await;
        let (st, b) = join(&app, &s, &p, json!({"type_id": ty, "starts_on": end_in(offset)})).await;
        assert_eq!(st, 201, "{b}");
        people.push(p);
    }

    // Bad input changes nothing.
    let (st, b) = app.post(&s.admin, &url(&s.org, "/renewals/runs"), json!({"on": "31/12/2026"})).await;
    assert_eq!((st, crate::field_errors(&b)[0].0.as_str()), (422, "on"), "{b}");
    let (st, b) = app.post(&s.admin, &url(&s.org, "/renewals/runs"), json!({"day": "2026-12-31"})).await;
    assert_eq!((st, crate::field_errors(&b)[0].0.as_str()), (422, "day"), "an unknown field is named: {b}");
    let (_, list) = app.get(&s.admin, &url(&s.org, "/renewals/runs")).await;
    assert_eq!(list, json!([]), "no run recorded by bad input");

    // Started: 202 and queued; the job does the work and counts it.
    let (st, r) = app.post(&s.admin, &url(&s.org, "/renewals/runs"), json!({})).await;
    assert_eq!((st, r["started_by"].as_str()), (202, Some("api")), "{r}");
    assert!(matches!(r["status"].as_str(), Some("queued" | "running" | "done")), "{r}");
    let id = r["id"].as_str().unwrap().to_string();
    let r = wait_run(&app, &s, &id).await;
    assert_eq!(
        (r["status"].as_str(), r["total"].as_i64(), r["done"].as_i64(), r["notices"].as_i64(), r["reminders"].as_i64()),
        (Some("done"), Some(4), Some(4), Some(3), Some(1)),
        "{r}"
    );
    assert!(r["finished_at"].is_string(), "{r}");
    let (_, outbox) = app.get(&s.admin, "/api/v1/admin/outbox?to=dan@example.org").await;
    assert_eq!(outbox.as_array().map(Vec::len), Some(1), "Dan's reminder: {outbox}");
    assert_eq!(crate::audited(&app, &s, "members.renewals.start").await.len(), 1);

    // A second run has nothing left to send, and says so.
    let (_, r2) = app.post(&s.admin, &url(&s.org, "/renewals/runs"), json!({})).await;
    let r2 = wait_run(&app, &s, r2["id"].as_str().unwrap()).await;
    assert_eq!((r2["status"].as_str(), r2["total"].as_i64(), r2["notices"].as_i64()), (Some("done"), Some(0), Some(0)));
    let (_, list) = app.get(&s.admin, &url(&s.org, "/renewals/runs")).await;
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(list[0]["id"], r2["id"], "newest first: {list}");
    let (st, _) = app.post(&s.admin, &url(&s.org, &format!("/renewals/runs/{id}/cancel")), json!({})).await;
    assert_eq!(st, 409, "an ended run cannot be cancelled");

    // While a run is under way (here one another server holds), no other
    // starts; cancelled, it stops after its chunk, and the worker that holds
    // it marks it stopped.
    let busy = uuid::Uuid::now_v7().to_string();
    let org_id: String = sqlx::query_scalar("SELECT id FROM orgs WHERE slug = $1")
        .bind(&s.org)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO mem_renewal_runs (id, org_id, on_date, status, started_by, started_at) VALUES ($1, $2, '2026-01-01', 'running', 'api', 0)",
    )
    .bind(&busy)
    .bind(&org_id)
    .execute(app.state.db.pool())
    .await
    .unwrap();
    let (st, b) = app.post(&s.admin, &url(&s.org, "/renewals/runs"), json!({})).await;
    assert_eq!(st, 409, "{b}");
    assert!(b["detail"].as_str().unwrap_or("").contains("in progress"), "{b}");
    // The database holds to it too (two replicas starting at the same moment).
    let second = sqlx::query(
        "INSERT INTO mem_renewal_runs (id, org_id, on_date, status, started_by, started_at) VALUES ($1, $2, '2026-01-01', 'queued', 'api', 0)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(&org_id)
    .execute(app.state.db.pool())
    .await;
    assert!(second.is_err(), "a second run under way is refused by the database");
    let (st, b) = app.post(&s.admin, &url(&s.org, "/renewals/run"), json!({})).await;
    assert_eq!(st, 409, "the waiting form is refused too: {b}");
    let (st, c) = app.post(&s.admin, &url(&s.org, &format!("/renewals/runs/{busy}/cancel")), json!({})).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("cancelling")), "{c}");
});

db_test!(the_dues_page_starts_a_run_and_shows_its_progress, |app: TestApp| async move {
    let s = setup(&app).await;
    let ty = rolling(&app, &s).await;
    let end = jiff::Zoned::now().date().checked_add(jiff::Span::new().days(3)).unwrap();
    let start = end.checked_sub(jiff::Span::new().years(1)).unwrap().tomorrow().unwrap().to_string();
    let p = person(&app, &s, "Pia", "Page").await;
    let (st, b) = join(&app, &s, &p, json!({"type_id": ty, "starts_on": start})).await;
    assert_eq!(st, 201, "{b}");
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, "admin@example.org", testkit::ADMIN_PASSWORD).await;
    let dues = browser.get(app.url(&format!("/o/{}/members/dues", s.org))).send().await.unwrap().text().await.unwrap();
    assert!(dues.contains(&format!("/o/{}/members/renewals/runs", s.org)), "the runs are linked from the Dues page");
    // A bad day is shown on the form.
    let r = browser
        .post(app.url(&format!("/o/{}/members/renewals/run", s.org)))
        .form(&[("_csrf", csrf.as_str()), ("on", "tomorrow")])
        .send()
        .await
        .unwrap();
    let (status, html) = (r.status().as_u16(), r.text().await.unwrap());
    assert_eq!(status, 422, "{html}");
    assert!(html.contains("YYYY-MM-DD"), "{html}");
    // The button of the Dues page (no day: today) starts it and shows the run.
    let r = browser
        .post(app.url(&format!("/o/{}/members/renewals/run", s.org)))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert!(to.starts_with(&format!("/o/{}/members/renewals/runs/", s.org)), "{to}");
    let id = to.rsplit('/').next().unwrap().to_string();
    let ended = wait_run(&app, &s, &id).await;
    assert_eq!((ended["notices"].as_i64(), ended["started_by"].as_str()), (Some(1), Some("page")), "{ended}");
    let html = browser.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<progress max=\"1\" value=\"1\""), "{html}");
    assert!(!html.contains("http-equiv=\"refresh\""), "an ended run's page does not refresh itself");
});
