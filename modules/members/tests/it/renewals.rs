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
