//! Alerts to instance administrators: failing jobs and an almost full disk
//! notify them once, under the bell and by mail, then stay quiet while the
//! problem lasts; the health page lists them.

use crate::modules::{enqueue, wait_for, FAIL};
use shrooms_core::alerts;
use testkit::{db_test, TestApp};

db_test!(administrators_hear_of_failing_jobs_once, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let member = app.member(admin, &f.org_slug, "member@example.org", "member").await;
    assert!(alerts::check(&app.state).await.unwrap().is_empty(), "a healthy instance raises nothing");

    enqueue(&app, &FAIL, &f.org_id, "", None).await;
    wait_for(&app, admin, "/api/v1/admin/jobs?status=dead", |v| v.as_array().is_some_and(|a| !a.is_empty())).await;
    assert_eq!(alerts::check(&app.state).await.unwrap(), ["jobs"]);
    let (_, n) = app.get(admin, "/api/v1/notifications").await;
    let alert = n["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "core.alert")
        .expect("an alert under the bell")
        .clone();
    assert!(alert["title"].as_str().unwrap().contains("notes.fail (1)"), "{alert}");
    assert_eq!(alert["link"], "/admin/health");
    let (_, mails) = app.get(admin, &format!("/api/v1/admin/outbox?to={}", f.admin_email)).await;
    let alert_mails =
        |m: &serde_json::Value| m.as_array().unwrap().iter().filter(|m| m["kind"] == "notification").count();
    assert_eq!(alert_mails(&mails), 1, "{mails}");
    // Members are not told.
    assert_eq!(app.get(&member, "/api/v1/notifications").await.1["unread"], 0);

    // The problem lasts: the next checks stay quiet.
    assert!(!alerts::raise(&app.state, "jobs", "again").await.unwrap());
    alerts::check(&app.state).await.unwrap();
    let (_, mails) = app.get(admin, &format!("/api/v1/admin/outbox?to={}", f.admin_email)).await;
    assert_eq!(alert_mails(&mails), 1, "no second mail within the quiet period");
    let (_, h) = app.get(admin, "/api/v1/admin/health").await;
    let a = h["alerts"].as_array().unwrap().iter().find(|a| a["key"] == "jobs").unwrap();
    assert_eq!((a["resolved"].as_bool(), a["occurrences"].as_i64()), (Some(false), Some(3)), "{h}");
    assert!(h["cpu_cores"].as_u64().unwrap() >= 1 && h["data_total_kib"].as_u64().is_some(), "{h}");

    // Resolved, then back: administrators are told again at once.
    alerts::resolve(&app.state, "jobs").await.unwrap();
    assert!(alerts::raise(&app.state, "jobs", "jobs failing again").await.unwrap());
});

db_test!(an_almost_full_data_folder_raises_an_alert, |app: TestApp| async move {
    let f = app.bootstrap().await;
    // A server whose threshold no disk can meet, on the same database.
    let mut cfg = app.state.cfg.clone();
    cfg.alerts.disk_free_percent = 101;
    let strict = TestApp::spawn_with(cfg, app.data_dir.clone(), app.backend, crate::modules()).await;
    assert_eq!(alerts::check(&strict.state).await.unwrap(), ["disk"]);
    let html = {
        let browser = testkit::browser_client();
        app.sign_in(&browser, &f.admin_email, testkit::ADMIN_PASSWORD).await;
        browser.get(app.url("/admin/health")).send().await.unwrap().text().await.unwrap()
    };
    assert!(html.contains("The data folder is almost full"), "{html}");
    // With the usual threshold the same disk is fine: the alert is resolved.
    alerts::check(&app.state).await.unwrap();
    let (_, h) = app.get(&f.admin_token, "/api/v1/admin/health").await;
    assert_eq!(h["alerts"][0]["resolved"], true, "{h}");
});
