//! The personal dashboard: each person orders and hides the widgets their
//! role can see, per organisation, without changing anyone else's.

use serde_json::json;
use testkit::{db_test, TestApp};

db_test!(each_person_arranges_their_own_dashboard, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    let staff = app.member(admin, org, "staff@example.org", "staff").await;
    let url = format!("/api/v1/orgs/{org}/dashboard");

    let (s, d) = app.get(admin, &url).await;
    assert_eq!(s, 200, "{d}");
    // The core's widgets (modules add theirs, ordered among them).
    let ids: Vec<&str> = d["widgets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .filter(|i| i.starts_with("core."))
        .collect();
    assert_eq!(ids, ["core.people", "core.activity"], "default order");
    assert!(d["widgets"][0]["data"]["count"].is_number(), "{d}");
    // Staff cannot see the activity widget (it needs admin access).
    let (_, sd) = app.get(&staff, &url).await;
    assert!(!sd["widgets"].as_array().unwrap().iter().any(|w| w["id"] == "core.activity"), "{sd}");

    // The admin puts activity first and hides people.
    let (s, d) = app
        .send(reqwest::Method::PUT, admin, &url, json!({"order": ["core.activity"], "hidden": ["core.people"]}))
        .await;
    assert_eq!(s, 200, "{d}");
    assert_eq!(d["widgets"][0]["id"], "core.activity");
    let people = d["widgets"].as_array().unwrap().iter().find(|w| w["id"] == "core.people").unwrap();
    assert_eq!(people["visible"], false);
    assert!(people["data"].is_null(), "a hidden widget is not loaded");
    // Someone else's dashboard is unchanged.
    assert_eq!(app.get(&staff, &url).await.1["widgets"][0]["visible"], true);
    // A widget the caller cannot see is refused, and nothing changes.
    let (s, p) = app.send(reqwest::Method::PUT, &staff, &url, json!({"hidden": ["core.activity"]})).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (422, Some("hidden")), "{p}");
    let (s, _) = app.send(reqwest::Method::PUT, admin, &url, json!({"hidden": ["nope"]})).await;
    assert_eq!(s, 422);
    assert_eq!(app.get(admin, &url).await.1["widgets"][0]["id"], "core.activity");

    // In the browser: the page follows the arrangement; moving and showing work with plain forms.
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let html = browser.get(app.url(&format!("/o/{org}/"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"widget-core-activity\"") && !html.contains("id=\"widget-core-people\""), "{html}");
    let arrange = app.url(&format!("/o/{org}/dashboard/arrange"));
    for (action, widget) in [("show", "core.people"), ("up", "core.people")] {
        let r = browser
            .post(&arrange)
            .form(&[("_csrf", csrf.as_str()), ("action", action), ("widget", widget)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{action}");
    }
    let html = browser.get(app.url(&format!("/o/{org}/"))).send().await.unwrap().text().await.unwrap();
    let people = html.find("id=\"widget-core-people\"").expect("people widget shown again");
    let activity = html.find("id=\"widget-core-activity\"").expect("activity widget");
    assert!(people < activity, "people moved first");
    let r = browser.post(&arrange).form(&[("_csrf", csrf.as_str()), ("action", "reset")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, d) = app.get(admin, &url).await;
    assert_eq!(d["widgets"][0]["id"], "core.people");
    assert!(d["widgets"].as_array().unwrap().iter().all(|w| w["visible"] == true));
});
