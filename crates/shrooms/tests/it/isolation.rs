//! The isolation sweep: for every organisation-scoped operation of the
//! OpenAPI document (new routes are covered automatically), a user of
//! organisation A asking for organisation B's resources gets 404, and B's
//! data is unchanged afterwards.

use serde_json::{json, Value};
use testkit::{db_test, TestApp};

async fn snapshot(app: &TestApp, token: &str, org: &str) -> Value {
    let mut out = serde_json::Map::new();
    for part in [
        "people",
        "members",
        "roles",
        "groups",
        "modules",
        "audit?limit=500",
        "notes",
        "custom-fields",
        "accounting/entries",
        "accounting/accounts",
        "clubs",
        "clubs/dashboard",
    ] {
        let (s, v) = app.get(token, &format!("/api/v1/orgs/{org}/{part}")).await;
        assert_eq!(s, 200, "{part}: {v}");
        out.insert(part.into(), v);
    }
    let (_, o) = app.get(token, &format!("/api/v1/orgs/{org}")).await;
    out.insert("org".into(), o);
    Value::Object(out)
}

db_test!(no_route_leaks_across_organisations, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    assert_eq!(app.post(admin, "/api/v1/orgs", json!({"name": "Org A", "slug": "org-a"})).await.0, 201);
    assert_eq!(app.post(admin, "/api/v1/orgs", json!({"name": "Org B", "slug": "org-b"})).await.0, 201);
    let alice = app.member(admin, "org-a", "alice@example.org", "owner").await;
    // Org B's resources.
    let (_, person) = app
        .post(
            admin,
            "/api/v1/orgs/org-b/people",
            json!({"given_name": "Bob", "family_name": "B", "email": "bob@example.org"}),
        )
        .await;
    let (_, note) = app.post(admin, "/api/v1/orgs/org-b/notes", json!({"body": "secret of B"})).await;
    let (_, role) = app.post(admin, "/api/v1/orgs/org-b/roles", json!({"key": "b-only", "name": "B only"})).await;
    assert_eq!(role["key"], "b-only");
    let (_, member) =
        app.post(admin, "/api/v1/orgs/org-b/members", json!({"email": "bmember@example.org", "role": "member"})).await;
    let (s, group) = app.post(admin, "/api/v1/orgs/org-b/groups", json!({"name": "Board of B"})).await;
    assert_eq!(s, 201, "{group}");
    let (s, _) = app
        .send(
            reqwest::Method::PUT,
            admin,
            &format!(
                "/api/v1/orgs/org-b/groups/{}/members/{}",
                group["id"].as_str().unwrap(),
                member["account_id"].as_str().unwrap()
            ),
            json!(null),
        )
        .await;
    assert_eq!(s, 204);
    let b_timeline = format!("/api/v1/orgs/org-b/timeline/person/{}", person["id"].as_str().unwrap());
    let (s, comment) = app.post(admin, &format!("{b_timeline}/comments"), json!({"body": "secret comment of B"})).await;
    assert_eq!(s, 201, "{comment}");
    let (s, field) =
        app.post(admin, "/api/v1/orgs/org-b/custom-fields", json!({"label": "Secret of B", "kind": "text"})).await;
    assert_eq!(s, 201, "{field}");
    let ids: Vec<(&str, String)> = vec![
        ("group", group["id"].as_str().unwrap().to_string()),
        ("id", person["id"].as_str().unwrap().to_string()),
        ("account", member["account_id"].as_str().unwrap().to_string()),
        ("key", "b-only".to_string()),
        ("module", "notes".to_string()),
        ("entity_type", "person".to_string()),
        ("comment", comment["id"].as_str().unwrap().to_string()),
        ("field", field["id"].as_str().unwrap().to_string()),
    ];
    let note_id = note["id"].as_str().unwrap().to_string();
    // B's books and one entry.
    let (s, books) = app
        .post(
            admin,
            "/api/v1/orgs/org-b/accounting/books",
            json!({"chart": "associations", "first_year_start": "2025-01-01"}),
        )
        .await;
    assert_eq!(s, 201, "{books}");
    let (s, entry) = app
        .post(
            admin,
            "/api/v1/orgs/org-b/accounting/entries",
            json!({"journal": "BQ", "date": "2025-03-01", "label": "B's dues", "lines": [
                {"account": "512", "debit": "10"}, {"account": "7561", "credit": "10"}]}),
        )
        .await;
    assert_eq!(s, 201, "{entry}");
    let entry_id = entry["id"].as_str().unwrap().to_string();
    let year_id = books["years"][0]["id"].as_str().unwrap().to_string();
    let before = snapshot(&app, admin, "org-b").await;
    let timeline_before = app.get(admin, &b_timeline).await;

    let (_, doc) = app.get("", "/api/v1/openapi.json").await;
    let mut checked = 0;
    let mut public = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.contains("{org}") {
            continue;
        }
        for method in ["get", "post", "put", "patch", "delete"] {
            let Some(op) = item.get(method) else {
                continue;
            };
            // Public pages' data (a club's page, its gallery, the attendance
            // form) is meant for anyone with the link: not swept here; the
            // module's own tests check what such answers leave out.
            if op["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| t.as_str().is_some_and(|t| t.ends_with("(public)"))))
            {
                public += 1;
                continue;
            }
            let fill = |org: &str| {
                let mut p = path.replace("{org}", org);
                for (k, v) in &ids {
                    let v = if *k == "id" && path.contains("/notes/") {
                        note_id.clone()
                    } else if *k == "id" && path.contains("/accounting/entries/") {
                        entry_id.clone()
                    } else {
                        v.clone()
                    };
                    p = p.replace(&format!("{{{k}}}"), &v);
                }
                p.replace("{year}", &year_id).replace("{number}", "512")
            };
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // B's organisation itself.
            let url = fill("org-b");
            let (s, b) = app.send(m.clone(), &alice, &url, json!({})).await;
            assert_eq!(s, 404, "{method} {url} answered {s}: {b}");
            // B's records reached through A's organisation.
            let has_record = ["{id}", "{account}", "{key}", "{group}", "{comment}", "{field}", "{year}"]
                .iter()
                .any(|k| path.contains(k));
            if has_record {
                let url = fill("org-a");
                let (s, b) = app.send(m.clone(), &alice, &url, json!({})).await;
                assert_eq!(s, 404, "{method} {url} answered {s}: {b}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 15, "only {checked} operations were swept");
    assert!(public <= 10, "{public} public operations: each must be meant for anyone with the link");
    // By id as well as by URL name.
    let org_b_id = before["org"]["id"].as_str().unwrap();
    assert_eq!(app.get(&alice, &format!("/api/v1/orgs/{org_b_id}/people")).await.0, 404);
    // A made-up organisation answers exactly like B.
    assert_eq!(app.get(&alice, "/api/v1/orgs/does-not-exist/people").await.0, 404);
    let after = snapshot(&app, admin, "org-b").await;
    assert_eq!(before, after, "organisation B changed");
    assert_eq!(timeline_before, app.get(admin, &b_timeline).await, "B's timeline changed");
});
