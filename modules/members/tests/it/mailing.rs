//! Mass e-mail to a selection: preview, confirmation with the count, the
//! sending job; unsubscribe links; bounces from delivery reports.

use crate::{field_errors, join, person, setup, url, year, yearly};
use serde_json::json;
use std::time::Duration;
use testkit::{db_test, TestApp};

db_test!(a_mailing_is_previewed_confirmed_sent_and_skips_opt_outs_and_bounces, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let t = yearly(&app, &s, "Annuelle").await;
    let mut ids = vec![];
    for n in ["Ana", "Bob", "Cyd"] {
        let p = person(&app, &s, n, "Martin").await;
        assert_eq!(join(&app, &s, &p, json!({"type_id": t, "starts_on": format!("{y}-01-01")})).await.0, 201);
        ids.push(p);
    }
    let body = json!({"subject": "Assemblée générale", "body": "Bonjour {{ first_name }},\nL'AG a lieu le 12.", "filter": {"status": "dues_unpaid"}});
    let (st, p) = app.post(&s.admin, &url(&s.org, "/mailings/preview"), body.clone()).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["recipients"], 3);
    assert!(p["text"].as_str().unwrap().starts_with("Bonjour Ana,"), "{p}");
    assert!(p["text"].as_str().unwrap().contains("/members/unsubscribe/"), "{p}");
    // Without the confirmation, or with a wrong count: refused.
    let (st, b) = app.post(&s.admin, &url(&s.org, "/mailings"), body.clone()).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "confirm_count");
    // An empty selection: refused.
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/mailings"),
            json!({"subject": "x", "body": "y", "filter": {"status": "excluded"}, "confirm_count": 0}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "filter");

    // Bob unsubscribes through his link; Cyd's address bounces (a DSN).
    let text = p["text"].as_str().unwrap();
    let link = text.split_whitespace().find(|w| w.contains("/members/unsubscribe/")).unwrap();
    let token_ana = link.rsplit('/').next().unwrap();
    assert!(token_ana.starts_with(&ids[0]));
    let bob_token = token_ana.replacen(&ids[0], &ids[1], 1);
    // A forged token (Ana's signature on Bob's id) does nothing.
    let (st, _) = app.post("", &format!("/api/v1/orgs/{}/members/unsubscribe/{bob_token}", s.org), json!(null)).await;
    assert_eq!(st, 404);
    let (st, _) = app.post("", &format!("/api/v1/orgs/{}/members/unsubscribe/{token_ana}", s.org), json!(null)).await;
    assert_eq!(st, 204);
    let (st, b) = app.post(&s.admin, &url(&s.org, "/bounces"), json!({"content": "Hello, this is not a report"})).await;
    assert_eq!(st, 422, "{b}");
    let dsn = "Reporting-MTA: dns; mx.example.net\n\nFinal-Recipient: rfc822; cyd@example.org\nAction: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 user unknown\n";
    let (st, b) = app.post(&s.admin, &url(&s.org, "/bounces"), json!({"content": dsn})).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b.as_array().unwrap().len(), 1);
    let (_, flagged) = app.get(&s.admin, &url(&s.org, "/search?bounced=true")).await;
    assert_eq!(flagged["items"][0]["given_name"], "Cyd");

    let (st, p) = app.post(&s.admin, &url(&s.org, "/mailings/preview"), body.clone()).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["recipients"], 1, "{p}");
    assert_eq!(p["skipped_opted_out"], 1);
    assert_eq!(p["skipped_bounced"], 1);
    // A service message still reaches who opted out of newsletters (not the bounced address).
    let mut service = body.clone();
    service["list_kind"] = json!("service");
    let (_, p2) = app.post(&s.admin, &url(&s.org, "/mailings/preview"), service).await;
    assert_eq!(p2["recipients"], 2, "{p2}");

    let mut confirmed = body.clone();
    confirmed["confirm_count"] = json!(1);
    let (st, m) = app.post(&s.admin, &url(&s.org, "/mailings"), confirmed).await;
    assert_eq!(st, 202, "{m}");
    let id = m["id"].as_str().unwrap();
    let mut done = json!(null);
    for _ in 0..600 {
        let (_, v) = app.get(&s.admin, &url(&s.org, &format!("/mailings/{id}"))).await;
        if v["status"] == "done" {
            done = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(done["sent"], 1, "{done}");
    assert_eq!(done["skipped"], 2);
    // Another organisation does not see the mailing.
    assert_eq!(app.post(&s.admin, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await.0, 201);
    let (st, _) = app.get(&s.admin, &format!("/api/v1/orgs/{}/members/mailings/{id}", "other")).await;
    assert_eq!(st, 404);
});
