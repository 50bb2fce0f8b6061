//! A secretary links or unlinks an account and a person by hand
//! (`PUT`/`DELETE /api/v1/orgs/{org}/people/{id}/account` and the "Account"
//! section of the person page): by e-mail in any case or by id, only a member
//! account of the organisation, never one already linked to someone else,
//! replacing the person's previous account, audited and on the timeline; the
//! automatic link by e-mail does not undo an unlink.

use serde_json::{json, Value};
use testkit::{db_test, extract_csrf, TestApp, ADMIN_PASSWORD, MEMBER_PASSWORD};

async fn person(app: &TestApp, token: &str, org: &str, given: &str, family: &str, email: &str) -> String {
    let (s, p) = app
        .post(
            token,
            &format!("/api/v1/orgs/{org}/people"),
            json!({"given_name": given, "family_name": family, "email": email}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

/// Adds an account to the organisation with a role; its id.
async fn member_id(app: &TestApp, token: &str, org: &str, email: &str, role: &str) -> String {
    let (s, m) = app.post(token, &format!("/api/v1/orgs/{org}/members"), json!({"email": email, "role": role})).await;
    assert_eq!(s, 201, "{m}");
    m["account_id"].as_str().unwrap().to_string()
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|e| e.iter().map(|e| e["field"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

async fn audit(app: &TestApp, token: &str, org: &str, action: &str, person: &str) -> Vec<Value> {
    let (s, a) = app.get(token, &format!("/api/v1/orgs/{org}/audit?action={action}&entity_id={person}")).await;
    assert_eq!(s, 200, "{a}");
    a["items"].as_array().unwrap().clone()
}

db_test!(a_secretary_links_and_unlinks_an_account_by_hand, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    // Two people of a family share one address: the automatic link cannot choose.
    let ana = person(&app, t, org, "Ana", "Libre", "famille.libre@example.org").await;
    let lea = person(&app, t, org, "Léa", "Libre", "famille.libre@example.org").await;
    let family = member_id(&app, t, org, "famille.libre@example.org", "member").await;
    let account = move |p: &str| format!("/api/v1/orgs/{org}/people/{p}/account");
    let a = &app;
    let put = move |p: &str, body: Value| {
        let url = account(p);
        async move { a.send(reqwest::Method::PUT, t, &url, body).await }
    };

    // By e-mail, in any case and with spaces around.
    let (s, p) = put(&lea, json!({"email": "  Famille.LIBRE@Example.org "})).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!((p["id"].as_str(), p["given_name"].as_str()), (Some(lea.as_str()), Some("Léa")));
    assert_eq!(p["account_id"], family.as_str());
    assert_eq!(p["account_email"], "famille.libre@example.org");
    assert_eq!(app.get(t, &format!("/api/v1/orgs/{org}/people/{lea}")).await.1["account_id"], family.as_str());
    // Linking it again changes nothing and records nothing.
    let (s, again) = put(&lea, json!({"account_id": family})).await;
    assert_eq!((s, &again["account_id"]), (200, &json!(family)));
    let linked = audit(&app, t, org, "person.link_account", &lea).await;
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0]["before"]["account_id"], Value::Null);
    assert_eq!(linked[0]["after"]["account_id"], family.as_str());
    assert_eq!(linked[0]["after"]["account_email"], "famille.libre@example.org");
    assert_eq!(linked[0]["actor_label"], "admin@example.org");

    // Already linked to Léa: a conflict naming her, on the field used; nothing moves.
    let (s, b) = put(&ana, json!({"email": "famille.libre@example.org"})).await;
    assert_eq!(s, 409, "{b}");
    assert_eq!(b["type"], "urn:shrooms:problem:conflict");
    assert_eq!(fields(&b), ["email"]);
    assert!(b["detail"].as_str().unwrap().contains("Léa Libre"), "{b}");
    let (s, b) = put(&ana, json!({"account_id": family})).await;
    assert_eq!((s, fields(&b)), (409, vec!["account_id".to_string()]), "{b}");
    assert_eq!(app.get(t, &format!("/api/v1/orgs/{org}/people/{ana}")).await.1["account_id"], Value::Null);
    assert_eq!(app.get(t, &format!("/api/v1/orgs/{org}/people/{lea}")).await.1["account_id"], family.as_str());

    // Only a member account of the organisation; one of another organisation
    // answers exactly like one that does not exist.
    let (s, other) = app.post(t, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await;
    assert_eq!(s, 201, "{other}");
    let outsider = member_id(&app, t, "other", "outsider@example.org", "member").await;
    let (s, b) = put(&ana, json!({"email": "outsider@example.org"})).await;
    assert_eq!((s, fields(&b)), (422, vec!["email".to_string()]), "{b}");
    let (_, unknown) = put(&ana, json!({"email": "nobody@example.org"})).await;
    assert_eq!(unknown["errors"], b["errors"], "no hint about the instance's other accounts");
    let (s, b) = put(&ana, json!({"account_id": outsider})).await;
    assert_eq!((s, fields(&b)), (422, vec!["account_id".to_string()]), "{b}");
    for (body, field) in [
        (json!({}), "email"),
        (json!({"email": " "}), "email"),
        (json!({"email": "not-an-email"}), "email"),
        (json!({"account_id": "12"}), "account_id"),
        (json!({"email": "famille.libre@example.org", "account_id": family}), "account_id"),
    ] {
        let (s, b) = put(&ana, body.clone()).await;
        assert_eq!((s, fields(&b)), (422, vec![field.to_string()]), "{body}: {b}");
    }
    let (s, b) = put(&ana, json!({"email": "famille.libre@example.org", "role": "x"})).await;
    assert_eq!(s, 422, "unknown fields are refused: {b}");
    assert!(audit(&app, t, org, "person.link_account", &ana).await.is_empty());

    // A person linked to another account is relinked; the audit keeps both.
    let bo = member_id(&app, t, org, "bo@example.org", "member").await;
    let (s, p) = put(&lea, json!({"account_id": bo})).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!((p["account_id"].as_str(), p["account_email"].as_str()), (Some(bo.as_str()), Some("bo@example.org")));
    let linked = audit(&app, t, org, "person.link_account", &lea).await;
    assert_eq!(linked.len(), 2, "{linked:?}");
    assert_eq!(linked[0]["before"]["account_id"], family.as_str(), "newest first");
    assert_eq!(linked[0]["before"]["account_email"], "famille.libre@example.org");
    assert_eq!(linked[0]["after"]["account_id"], bo.as_str());
    // The family's account is free again: Ana can have it.
    let (s, p) = put(&ana, json!({"email": "famille.libre@example.org"})).await;
    assert_eq!((s, &p["account_id"]), (200, &json!(family)), "{p}");

    // Unlinking: 204, audited with what was linked, idempotent.
    let (s, _) = app.send(reqwest::Method::DELETE, t, &account(&lea), json!(null)).await;
    assert_eq!(s, 204);
    let (_, p) = app.get(t, &format!("/api/v1/orgs/{org}/people/{lea}")).await;
    assert_eq!(p["account_id"], Value::Null);
    let (s, _) = app.send(reqwest::Method::DELETE, t, &account(&lea), json!(null)).await;
    assert_eq!(s, 204, "unlinking a person without an account changes nothing");
    let unlinked = audit(&app, t, org, "person.unlink_account", &lea).await;
    assert_eq!(unlinked.len(), 1, "{unlinked:?}");
    assert_eq!(unlinked[0]["before"]["account_id"], bo.as_str());
    assert_eq!(unlinked[0]["before"]["account_email"], "bo@example.org");
    assert_eq!(unlinked[0]["after"]["account_id"], Value::Null);
    // The person's timeline tells the story.
    let (s, tl) = app.get(t, &format!("/api/v1/orgs/{org}/timeline/person/{lea}")).await;
    assert_eq!(s, 200, "{tl}");
    let bodies: Vec<&str> = tl["items"].as_array().unwrap().iter().map(|e| e["body"].as_str().unwrap()).collect();
    assert_eq!(bodies.len(), 3, "{bodies:?}");
    assert_eq!(bodies[0], "Account unlinked: bo@example.org.");
    assert_eq!(bodies[1], "Account linked: bo@example.org (instead of famille.libre@example.org).");
    assert_eq!(bodies[2], "Account linked: famille.libre@example.org.");
    let html = tl["items"][2]["body_html"].as_str().unwrap();
    assert!(html.contains("famille.libre@example.org") && !html.contains("<em>"), "{html}");

    // Administration of the core is needed: a manager edits people, not links.
    let manager = app.member(t, org, "manager@example.org", "manager").await;
    assert_eq!(app.get(&manager, &format!("/api/v1/orgs/{org}/people/{lea}")).await.0, 200);
    let (s, b) = app.send(reqwest::Method::PUT, &manager, &account(&lea), json!({"account_id": bo})).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(app.send(reqwest::Method::DELETE, &manager, &account(&ana), json!(null)).await.0, 403);
    assert_eq!(app.get(t, &format!("/api/v1/orgs/{org}/people/{ana}")).await.1["account_id"], family.as_str());

    // Two secretaries linking one account to two people at once: one wins,
    // the other is told who has it.
    for round in 0..3 {
        let email = format!("twin{round}@example.org");
        member_id(&app, t, org, &email, "member").await;
        let x = person(&app, t, org, "Xavier", "Twin", "x@example.org").await;
        let y = person(&app, t, org, "Yves", "Twin", "y@example.org").await;
        let ((sx, _), (sy, _)) = tokio::join!(put(&x, json!({"email": email})), put(&y, json!({"email": email})));
        let mut got = [sx, sy];
        got.sort();
        assert_eq!(got, [200, 409], "round {round}");
    }
    // An erased person cannot be linked.
    let eve = person(&app, t, org, "Eve", "Gone", "eve@example.org").await;
    let (s, b) =
        app.post(t, &format!("/api/v1/orgs/{org}/people/{eve}/erase"), json!({"confirmation": "Eve Gone"})).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = put(&eve, json!({"account_id": bo})).await;
    assert_eq!(s, 409, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("erased"), "{b}");

    // Both operations are documented, with the answer's extra field.
    let (_, doc) = app.get("", "/api/v1/openapi.json").await;
    let ops = &doc["paths"]["/api/v1/orgs/{org}/people/{id}/account"];
    assert!(ops["put"]["requestBody"].is_object() && ops["delete"]["responses"]["204"].is_object(), "{ops}");
    let schema = doc["components"]["schemas"]["PersonWithAccount"].to_string();
    assert!(schema.contains("account_email") && schema.contains("#/components/schemas/Person"), "{schema}");
    // A person of another organisation is not found through this one, and stays as is.
    let theirs = person(&app, t, "other", "Oz", "Ailleurs", "oz@example.org").await;
    let (s, b) = put(&theirs, json!({"account_id": bo})).await;
    assert_eq!(s, 404, "{b}");
    assert_eq!(app.send(reqwest::Method::DELETE, t, &account(&theirs), json!(null)).await.0, 404);
    assert_eq!(app.get(t, &format!("/api/v1/orgs/other/people/{theirs}")).await.1["account_id"], Value::Null);
    let (s, b) = app.send(reqwest::Method::PUT, t, &account("no-such-person"), json!({"account_id": bo})).await;
    assert_eq!(s, 404, "{b}");
});

db_test!(the_automatic_link_does_not_undo_an_unlink, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    let zoe = person(&app, t, org, "Zoé", "Martin", "zoe@example.org").await;
    let token = app.member(t, org, "zoe@example.org", "member").await;
    let me = format!("/api/v1/orgs/{org}/members/me");
    // The first visit links the one person with the account's e-mail.
    let (s, space) = app.get(&token, &me).await;
    assert_eq!(s, 200, "{space}");
    assert_eq!(space["membership"]["person"]["id"], zoe.as_str());
    // The secretary unlinks them: the next visits do not link them back.
    let url = format!("/api/v1/orgs/{org}/people/{zoe}/account");
    assert_eq!(app.send(reqwest::Method::DELETE, t, &url, json!(null)).await.0, 204);
    for _ in 0..2 {
        let (s, b) = app.get(&token, &me).await;
        assert_eq!(s, 404, "{b}");
    }
    assert_eq!(app.get(t, &format!("/api/v1/orgs/{org}/people/{zoe}")).await.1["account_id"], Value::Null);
    // By hand, it can be linked again.
    let (s, p) = app.send(reqwest::Method::PUT, t, &url, json!({"email": "zoe@example.org"})).await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(app.get(&token, &me).await.1["membership"]["person"]["id"], zoe.as_str());
});

db_test!(the_person_page_links_and_unlinks_an_account, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    let ana = person(&app, t, org, "Ana", "Libre", "famille.libre@example.org").await;
    let lea = person(&app, t, org, "Léa", "Libre", "famille.libre@example.org").await;
    member_id(&app, t, org, "famille.libre@example.org", "member").await;
    let b = &app.browser;
    app.sign_in(b, "admin@example.org", ADMIN_PASSWORD).await;
    let page = |p: &str| app.url(&format!("/o/{org}/people/{p}"));
    // minijinja escapes `/` in attributes; browsers decode it.
    let text = |html: String| html.replace("&#x2f;", "/");
    let html = text(b.get(page(&lea)).send().await.unwrap().text().await.unwrap());
    assert!(html.contains("No account is linked"), "{html}");
    assert!(html.contains(&format!("action=\"/o/{org}/people/{lea}/account#account\"")), "{html}");
    let csrf = extract_csrf(&html).unwrap();
    let link = |p: &str, email: &str| {
        b.post(app.url(&format!("/o/{org}/people/{p}/account")))
            .form(&[("_csrf", csrf.as_str()), ("email", email)])
            .send()
    };

    // An address no member has: the page again, with the error and what was typed.
    let r = link(&lea, "Nobody@Example.org").await.unwrap();
    assert_eq!(r.status(), 422);
    let html = text(r.text().await.unwrap());
    assert!(html.contains("No member of this organisation has an account with this email"), "{html}");
    assert!(html.contains("value=\"Nobody@Example.org\""), "what was typed stays: {html}");
    assert!(html.contains("Léa") && html.contains("id=\"timeline\""), "the whole page: {html}");
    assert_eq!(html.matches("alert-error").count(), 0, "a field error, not a banner (nor on the comment form)");
    assert!(html.contains("aria-invalid=\"true\""), "{html}");
    // Without the token: refused.
    let r = b
        .post(app.url(&format!("/o/{org}/people/{lea}/account")))
        .form(&[("email", "famille.libre@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // Linked: back to the page, which shows the account.
    let r = link(&lea, "famille.libre@example.org").await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("/o/{org}/people/{lea}#account"));
    let html = text(b.get(page(&lea)).send().await.unwrap().text().await.unwrap());
    assert!(html.contains("Linked to the account <strong>famille.libre@example.org</strong>"), "{html}");
    assert!(html.contains(&format!("/o/{org}/people/{lea}/account/unlink")), "{html}");
    assert!(html.contains("<span title=\"person.link_account\">Account linked</span>"), "the history: {html}");
    // The same account for Ana: the page names Léa, with a link to her page.
    let r = link(&ana, "famille.libre@example.org").await.unwrap();
    assert_eq!(r.status(), 409);
    let html = text(r.text().await.unwrap());
    assert!(html.contains("This account is already linked to"), "{html}");
    assert!(html.contains(&format!("href=\"/o/{org}/people/{lea}\">Léa Libre</a>")), "{html}");
    assert!(html.contains("value=\"famille.libre@example.org\""), "{html}");
    assert_eq!(app.get(t, &format!("/api/v1/orgs/{org}/people/{ana}")).await.1["account_id"], Value::Null);
    // In French.
    let r =
        b.post(app.url("/lang")).form(&[("_csrf", csrf.as_str()), ("lang", "fr"), ("next", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let html = link(&ana, "famille.libre@example.org").await.unwrap().text().await.unwrap();
    assert!(html.contains("Ce compte est déjà lié à"), "{html}");
    let html = link(&ana, "personne@example.org").await.unwrap().text().await.unwrap();
    assert!(html.contains("Aucun membre de l’organisation n’a de compte avec cet e-mail"), "{html}");

    // Unlinked from the page.
    let r = b
        .post(app.url(&format!("/o/{org}/people/{lea}/account/unlink")))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = text(b.get(page(&lea)).send().await.unwrap().text().await.unwrap());
    assert!(html.contains("Aucun compte n’est lié"), "{html}");
    assert_eq!(app.get(t, &format!("/api/v1/orgs/{org}/people/{lea}")).await.1["account_id"], Value::Null);

    // A manager sees no such section and cannot post to it.
    app.member(t, org, "manager@example.org", "manager").await;
    let manager = testkit::browser_client();
    let manager_csrf = app.sign_in(&manager, "manager@example.org", MEMBER_PASSWORD).await;
    let html = text(manager.get(page(&lea)).send().await.unwrap().text().await.unwrap());
    assert!(html.contains("Léa") && !html.contains(&format!("/people/{lea}/account")), "{html}");
    let r = manager
        .post(app.url(&format!("/o/{org}/people/{lea}/account")))
        .form(&[("_csrf", manager_csrf.as_str()), ("email", "famille.libre@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // Another organisation's person, through this one: not found.
    assert_eq!(app.post(t, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await.0, 201);
    let theirs = person(&app, t, "other", "Oz", "Ailleurs", "oz@example.org").await;
    let r = link(&theirs, "famille.libre@example.org").await.unwrap();
    assert_eq!(r.status(), 404);
    let r = b
        .post(app.url(&format!("/o/{org}/people/{theirs}/account/unlink")))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
});
