//! Timelines and notifications: comments with Markdown and mentions, status
//! changes recorded by a module, followers, the bell, preferences, mails at
//! once and in the daily digest.

use serde_json::{json, Value};
use testkit::{db_test, TestApp, MEMBER_PASSWORD};

async fn outbox_to(app: &TestApp, admin: &str, to: &str) -> Vec<Value> {
    let (s, v) = app.get(admin, &format!("/api/v1/admin/outbox?to={to}")).await;
    assert_eq!(s, 200, "{v}");
    v.as_array().cloned().expect("a list of messages")
}

db_test!(comments_mention_members_and_notify_followers, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    let camille = app.member(admin, org, "camille.martin@example.org", "staff").await;
    let client = app.member(admin, org, "client@example.org", "client").await;
    let (_, person) = app
        .post(admin, &format!("/api/v1/orgs/{org}/people"), json!({"given_name": "Awa", "family_name": "Ouédraogo"}))
        .await;
    let tl = format!("/api/v1/orgs/{org}/timeline/person/{}", person["id"].as_str().unwrap());

    // Markdown is rendered safely; a member who can read people is mentioned,
    // a client (no access to people) is not, even when named.
    let (s, e) = app
        .post(
            admin,
            &format!("{tl}/comments"),
            json!({"body": "Call **her** back, @camille.martin and @client. <script>alert(1)</script> [x](javascript:alert(1))"}),
        )
        .await;
    assert_eq!(s, 201, "{e}");
    let html = e["body_html"].as_str().unwrap();
    assert!(html.contains("<strong>her</strong>"), "{html}");
    assert!(html.contains("<strong class=\"mention\">@camille.martin</strong>"), "{html}");
    assert!(!html.contains("<script") && !html.contains("javascript:"), "{html}");
    assert!(!html.contains("mention\">@client"), "a member who cannot see the record is not mentioned: {html}");
    assert_eq!(e["author_label"], f.admin_email.as_str());

    // Camille sees it under the bell and got a mail at once.
    let (_, n) = app.get(&camille, "/api/v1/notifications").await;
    assert_eq!(n["unread"], 1, "{n}");
    let first = &n["items"][0];
    assert_eq!(first["kind"], "timeline.mention");
    assert!(first["title"].as_str().unwrap().contains("Awa Ouédraogo"), "{first}");
    assert!(first["link"].as_str().unwrap().starts_with(&format!("/o/{org}/people/")), "{first}");
    let mails = outbox_to(&app, admin, "camille.martin@example.org").await;
    assert!(mails.iter().any(|m| m["kind"] == "notification"), "{mails:?}");
    assert_eq!(app.get(&client, "/api/v1/notifications").await.1["unread"], 0);

    // The timeline lists the comment; the author and Camille now follow it.
    let (s, page) = app.get(admin, &tl).await;
    assert_eq!(s, 200, "{page}");
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["following"], true);
    assert_eq!(app.get(&camille, &tl).await.1["following"], true);
    // The client cannot see people: the record does not exist for them.
    assert_eq!(app.get(&client, &tl).await.0, 404);

    // Camille answers: the admin (a follower) is told, Camille is not told of her own comment.
    let (s, _) = app.post(&camille, &format!("{tl}/comments"), json!({"body": "Done, she is coming."})).await;
    assert_eq!(s, 201);
    let (_, n) = app.get(admin, "/api/v1/notifications?unread=true").await;
    assert_eq!(n["items"][0]["kind"], "timeline.comment", "{n}");
    assert_eq!(app.get(&camille, "/api/v1/notifications").await.1["items"].as_array().unwrap().len(), 1);

    // Reading: one, then all.
    let id = n["items"][0]["id"].as_str().unwrap();
    assert_eq!(app.post(admin, &format!("/api/v1/notifications/{id}/read"), json!(null)).await.0, 204);
    assert_eq!(app.get(admin, "/api/v1/notifications").await.1["unread"], 0);
    // Someone else's notification does not exist for me.
    let camille_n = app.get(&camille, "/api/v1/notifications").await.1["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.post(admin, &format!("/api/v1/notifications/{camille_n}/read"), json!(null)).await.0, 404);
    assert_eq!(app.post(&camille, "/api/v1/notifications/read-all", json!(null)).await.0, 204);
    assert_eq!(app.get(&camille, "/api/v1/notifications").await.1["unread"], 0);
});

db_test!(comments_are_validated_edited_and_deleted_by_their_author, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    let staff = app.member(admin, org, "staff@example.org", "staff").await;
    let (_, person) = app.post(admin, &format!("/api/v1/orgs/{org}/people"), json!({"given_name": "Léa"})).await;
    let pid = person["id"].as_str().unwrap();
    let tl = format!("/api/v1/orgs/{org}/timeline/person/{pid}");

    let (s, p) = app.post(&staff, &format!("{tl}/comments"), json!({"body": "   "})).await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "body", "{p}");
    let (s, p) = app.post(&staff, &format!("{tl}/comments"), json!({"body": "x".repeat(10_001)})).await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(
        app.post(&staff, &format!("/api/v1/orgs/{org}/timeline/unknown/{pid}/comments"), json!({"body": "hi"})).await.0,
        404
    );
    assert_eq!(
        app.post(&staff, &format!("/api/v1/orgs/{org}/timeline/person/nope/comments"), json!({"body": "hi"})).await.0,
        404
    );
    assert!(app.get(&staff, &tl).await.1["items"].as_array().unwrap().is_empty(), "bad input stored nothing");

    let (_, e) = app.post(&staff, &format!("{tl}/comments"), json!({"body": "First *draft*"})).await;
    let c = format!("{tl}/comments/{}", e["id"].as_str().unwrap());
    // Only the author edits.
    assert_eq!(app.send(reqwest::Method::PATCH, admin, &c, json!({"body": "hijack"})).await.0, 403);
    let (s, edited) = app.send(reqwest::Method::PATCH, &staff, &c, json!({"body": "Final *text*"})).await;
    assert_eq!(s, 200, "{edited}");
    assert!(edited["body_html"].as_str().unwrap().contains("<em>text</em>"));
    assert!(edited["edited_at"].is_string());
    // The author or an administrator deletes; the entry stays, empty, and the audit log keeps the text.
    let (_, e2) = app.post(&staff, &format!("{tl}/comments"), json!({"body": "Wrong record"})).await;
    let c2 = format!("{tl}/comments/{}", e2["id"].as_str().unwrap());
    assert_eq!(app.send(reqwest::Method::DELETE, admin, &c2, json!(null)).await.0, 204);
    assert_eq!(app.send(reqwest::Method::DELETE, &staff, &c, json!(null)).await.0, 204);
    let (_, page) = app.get(&staff, &tl).await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert!(items.iter().all(|i| i["deleted"] == true && i["body"] == ""), "{page}");
    let (_, audit) = app.get(admin, &format!("/api/v1/orgs/{org}/audit?entity_type=person&entity_id={pid}")).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"timeline.comment_delete") && actions.contains(&"timeline.comment_edit"), "{actions:?}");

    // Deleting the person removes its timeline.
    assert_eq!(
        app.send(reqwest::Method::DELETE, admin, &format!("/api/v1/orgs/{org}/people/{pid}"), json!(null)).await.0,
        204
    );
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM timeline_entries WHERE entity_id = $1")
        .bind(pid)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(left, 0);
    let words: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM people_terms WHERE person_id = $1")
        .bind(pid)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(words, 0, "the person's search words go with them");
});

db_test!(a_module_records_status_changes_and_followers_hear_of_them, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    let member = app.member(admin, org, "reader@example.org", "member").await;
    let (_, note) =
        app.post(admin, &format!("/api/v1/orgs/{org}/notes"), json!({"body": "Repair café, 12 March"})).await;
    let id = note["id"].as_str().unwrap();
    let tl = format!("/api/v1/orgs/{org}/timeline/note/{id}");
    // A member who can read notes follows the note.
    let (s, _) = app.send(reqwest::Method::PUT, &member, &format!("{tl}/following"), json!({"following": true})).await;
    assert_eq!(s, 204);
    let (s, _) = app
        .post(
            admin,
            &format!("/api/v1/orgs/{org}/notes/{id}/status"),
            json!({"from": "planned", "to": "done", "note": "12 people came"}),
        )
        .await;
    assert_eq!(s, 204);
    let (_, page) = app.get(&member, &tl).await;
    let e = &page["items"][0];
    assert_eq!(
        (e["kind"].as_str(), e["status_from"].as_str(), e["status_to"].as_str()),
        (Some("status"), Some("planned"), Some("done"))
    );
    assert!(e["body_html"].as_str().unwrap().contains("12 people came"));
    let (_, n) = app.get(&member, "/api/v1/notifications").await;
    assert_eq!(n["items"][0]["kind"], "timeline.status", "{n}");
    assert!(n["items"][0]["title"].as_str().unwrap().contains("Repair café"), "{n}");
    assert_eq!(n["items"][0]["body"], "planned → done — 12 people came", "{n}");
    // Status changes are not mailed by default.
    assert!(outbox_to(&app, admin, "reader@example.org").await.iter().all(|m| m["kind"] != "notification"));
    // Unfollowing stops them.
    app.send(reqwest::Method::PUT, &member, &format!("{tl}/following"), json!({"following": false})).await;
    app.post(admin, &format!("/api/v1/orgs/{org}/notes/{id}/status"), json!({"from": "done", "to": "archived"})).await;
    assert_eq!(app.get(&member, "/api/v1/notifications").await.1["items"].as_array().unwrap().len(), 1);
});

db_test!(preferences_choose_the_bell_the_mail_and_the_digest, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    let bob = app.member(admin, org, "bob@example.org", "manager").await;
    let (_, person) = app.post(admin, &format!("/api/v1/orgs/{org}/people"), json!({"given_name": "Zoé"})).await;
    let tl = format!("/api/v1/orgs/{org}/timeline/person/{}", person["id"].as_str().unwrap());

    let (s, prefs) = app.get(&bob, "/api/v1/notifications/preferences").await;
    assert_eq!(s, 200, "{prefs}");
    let mention =
        prefs["preferences"].as_array().unwrap().iter().find(|p| p["kind"] == "timeline.mention").unwrap().clone();
    assert_eq!((mention["in_app"].as_bool(), mention["mail"].as_str()), (Some(true), Some("immediate")));
    // Unknown kinds are refused and change nothing.
    let (s, p) = app
        .send(
            reqwest::Method::PUT,
            &bob,
            "/api/v1/notifications/preferences",
            json!({"preferences": [{"kind": "nope", "in_app": true, "mail": "off"}]}),
        )
        .await;
    assert_eq!(s, 422, "{p}");
    // Bob wants mentions in a daily digest, and not under the bell.
    let (s, p) = app
        .send(
            reqwest::Method::PUT,
            &bob,
            "/api/v1/notifications/preferences",
            json!({"preferences": [{"kind": "timeline.mention", "in_app": false, "mail": "digest"}]}),
        )
        .await;
    assert_eq!(s, 200, "{p}");
    app.post(admin, &format!("{tl}/comments"), json!({"body": "@bob@example.org can you check?"})).await;
    app.post(admin, &format!("{tl}/comments"), json!({"body": "@bob also this"})).await;
    assert_eq!(app.get(&bob, "/api/v1/notifications").await.1["unread"], 0, "not under the bell");
    assert!(
        outbox_to(&app, admin, "bob@example.org").await.iter().all(|m| m["kind"] != "notification"),
        "no mail at once"
    );

    // The digest job mails both in one message, once.
    assert_eq!(shrooms_core::notify::send_digests(&app.state).await.unwrap(), 1);
    let digests: Vec<Value> =
        outbox_to(&app, admin, "bob@example.org").await.into_iter().filter(|m| m["kind"] == "digest").collect();
    assert_eq!(digests.len(), 1, "{digests:?}");
    let body = digests[0]["body_text"].as_str().unwrap();
    assert!(body.contains("can you check?") && body.contains("also this"), "{body}");
    assert_eq!(shrooms_core::notify::send_digests(&app.state).await.unwrap(), 0, "nothing is mailed twice");
});

db_test!(the_bell_and_the_comment_form_work_in_the_browser, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    app.member(admin, org, "ines@example.org", "staff").await;
    let (_, person) = app.post(admin, &format!("/api/v1/orgs/{org}/people"), json!({"given_name": "Noé"})).await;
    let page = format!("/o/{org}/people/{}", person["id"].as_str().unwrap());

    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    // An empty comment: the form comes back with the error, nothing is stored.
    let action = format!("/o/{org}/timeline/person/{}/comments", person["id"].as_str().unwrap());
    let r = browser.post(app.url(&action)).form(&[("_csrf", csrf.as_str()), ("body", "")]).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("Write something first."));
    let r = browser
        .post(app.url(&action))
        .form(&[("_csrf", csrf.as_str()), ("body", "Welcome **Noé**, see @ines")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = browser.get(app.url(&page)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Welcome <strong>Noé</strong>"), "the comment shows on the record's page");
    // Without the CSRF token the comment is refused.
    let r = browser.post(app.url(&action)).form(&[("body", "forged")]).send().await.unwrap();
    assert_eq!(r.status(), 403);

    // Inès sees the count on the bell, opens the notification and lands on the record.
    let ines = testkit::browser_client();
    app.sign_in(&ines, "ines@example.org", MEMBER_PASSWORD).await;
    let html = ines.get(app.url(&format!("/o/{org}/"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("class=\"bell-count\">1<"), "the bell shows one unread notification");
    let list = ines.get(app.url("/notifications")).send().await.unwrap().text().await.unwrap();
    let start = list.find("href=\"/notifications/").expect("a notification link") + "href=\"".len();
    let link = &list[start..start + list[start..].find('"').unwrap()];
    let r = ines.get(app.url(link)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().starts_with(&page));
    let html = ines.get(app.url(&format!("/o/{org}/"))).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("class=\"bell-count\""), "read: no count on the bell");
});
