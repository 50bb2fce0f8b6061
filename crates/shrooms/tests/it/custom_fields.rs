//! Custom fields: defined by an administrator without code, then shown,
//! checked, filtered and exported with the records they belong to.

use serde_json::{json, Value};
use testkit::{db_test, TestApp};

async fn define(app: &TestApp, token: &str, org: &str, body: Value) -> Value {
    let (s, v) = app.post(token, &format!("/api/v1/orgs/{org}/custom-fields"), body).await;
    assert_eq!(s, 201, "{v}");
    v
}

async fn people_count(app: &TestApp, token: &str, org: &str) -> usize {
    app.get(token, &format!("/api/v1/orgs/{org}/people?limit=200")).await.1["items"].as_array().unwrap().len()
}

db_test!(fields_are_defined_checked_and_returned_with_people, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    let member = app.member(admin, org, "member@example.org", "member").await;

    // Only an administrator of the module defines fields.
    let (s, _) =
        app.post(&member, &format!("/api/v1/orgs/{org}/custom-fields"), json!({"label": "Size", "kind": "text"})).await;
    assert_eq!(s, 403);
    let size = define(&app, admin, org, json!({"label": "T-shirt size", "kind": "choice", "options": ["S", "M", "L"], "required": true, "in_list": true})).await;
    assert_eq!(size["key"], "t_shirt_size");
    define(&app, admin, org, json!({"key": "dues", "label": "Dues paid", "kind": "number"})).await;
    define(&app, admin, org, json!({"key": "joined", "label": "Joined", "kind": "date"})).await;
    define(&app, admin, org, json!({"key": "volunteer", "label": "Volunteer", "kind": "bool"})).await;
    define(
        &app,
        admin,
        org,
        json!({"key": "languages", "label": "Languages", "kind": "multi", "options": ["French", "English", "Wolof"]}),
    )
    .await;
    define(&app, admin, org, json!({"key": "sponsor", "label": "Sponsor", "kind": "person"})).await;
    // Bad definitions.
    let (s, p) = app
        .post(admin, &format!("/api/v1/orgs/{org}/custom-fields"), json!({"label": "Colour", "kind": "choice"}))
        .await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (422, Some("options")), "{p}");
    let (s, p) = app
        .post(
            admin,
            &format!("/api/v1/orgs/{org}/custom-fields"),
            json!({"key": "dues", "label": "Again", "kind": "text"}),
        )
        .await;
    assert_eq!(s, 409, "{p}");
    let (s, _) =
        app.post(admin, &format!("/api/v1/orgs/{org}/custom-fields"), json!({"label": "X", "kind": "colour"})).await;
    assert_eq!(s, 422);
    let (s, _) = app
        .post(
            admin,
            &format!("/api/v1/orgs/{org}/custom-fields"),
            json!({"entity_type": "spaceship", "label": "X", "kind": "text"}),
        )
        .await;
    assert_eq!(s, 422);
    let (_, list) = app.get(&member, &format!("/api/v1/orgs/{org}/custom-fields?entity_type=person")).await;
    assert_eq!(list.as_array().unwrap().len(), 6, "members read the definitions: {list}");

    // Bad values: every problem is named, nothing is stored.
    let people = format!("/api/v1/orgs/{org}/people");
    let before = people_count(&app, admin, org).await;
    let (s, p) = app
        .post(admin, &people, json!({"given_name": "Awa", "custom": {"dues": "a lot", "joined": "2026-02-30", "languages": ["Klingon"], "volunteer": "maybe", "sponsor": "nobody@example.org", "nope": 1}}))
        .await;
    assert_eq!(s, 422, "{p}");
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in [
        "custom.t_shirt_size",
        "custom.dues",
        "custom.joined",
        "custom.languages",
        "custom.volunteer",
        "custom.sponsor",
        "custom.nope",
    ] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    assert_eq!(people_count(&app, admin, org).await, before);

    // Good values are normalised: option case, decimal comma, French date.
    let (_, sponsor) = app
        .post(
            admin,
            &people,
            json!({"given_name": "Bintou", "email": "bintou@example.org", "custom": {"t_shirt_size": "S"}}),
        )
        .await;
    let (s, awa) = app
        .post(admin, &people, json!({"given_name": "Awa", "family_name": "Diop", "custom": {"t_shirt_size": "m", "dues": "12,5", "joined": "01/09/2024", "languages": ["wolof", "French"], "volunteer": true, "sponsor": "bintou@example.org"}}))
        .await;
    assert_eq!(s, 201, "{awa}");
    let expect = json!({"t_shirt_size": "M", "dues": 12.5, "joined": "2024-09-01", "languages": ["French", "Wolof"], "volunteer": true, "sponsor": sponsor["id"]});
    assert_eq!(awa["custom"], expect);
    let awa_url = format!("{people}/{}", awa["id"].as_str().unwrap());
    assert_eq!(app.get(&member, &awa_url).await.1["custom"], expect);

    // An update changes what it names and keeps the rest; an empty value clears an optional field.
    let (s, v) =
        app.send(reqwest::Method::PATCH, admin, &awa_url, json!({"custom": {"dues": "30", "sponsor": ""}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["custom"]["dues"], 30);
    assert!(v["custom"].get("sponsor").is_none(), "{v}");
    assert_eq!(v["custom"]["t_shirt_size"], "M");
    let (s, p) = app.send(reqwest::Method::PATCH, admin, &awa_url, json!({"custom": {"t_shirt_size": ""}})).await;
    assert_eq!(
        (s, p["errors"][0]["field"].as_str()),
        (422, Some("custom.t_shirt_size")),
        "a required field cannot be emptied"
    );
    assert_eq!(app.get(admin, &awa_url).await.1["custom"]["t_shirt_size"], "M");
    // A file field takes one of the files attached to a record of this kind.
    define(&app, admin, org, json!({"key": "id_photo", "label": "ID photo", "kind": "file"})).await;
    let awa_id = awa["id"].as_str().unwrap();
    let (s, file) = crate::files::upload(
        &app,
        admin,
        org,
        &[("entity_type", "person"), ("entity_id", awa_id)],
        "card.csv",
        b"name\nAwa\n",
    )
    .await;
    assert_eq!(s, 201, "{file}");
    // The attachment shows on the record's timeline.
    let (_, tl) = app.get(admin, &format!("/api/v1/orgs/{org}/timeline/person/{awa_id}")).await;
    assert_eq!(
        (tl["items"][0]["kind"].as_str(), &tl["items"][0]["data"]["file"]),
        (Some("event"), &file["id"]),
        "{tl}"
    );
    let (s, p) = app.send(reqwest::Method::PATCH, admin, &awa_url, json!({"custom": {"id_photo": "not-a-file"}})).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (422, Some("custom.id_photo")), "{p}");
    let (s, v) = app.send(reqwest::Method::PATCH, admin, &awa_url, json!({"custom": {"id_photo": file["id"]}})).await;
    assert_eq!((s, &v["custom"]["id_photo"]), (200, &file["id"]), "{v}");
    // The audit log records the change of custom values.
    let (_, audit) = app
        .get(admin, &format!("/api/v1/orgs/{org}/audit?entity_type=person&entity_id={}", awa["id"].as_str().unwrap()))
        .await;
    let update = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "person.update" && e["before"]["custom"]["dues"] != e["after"]["custom"]["dues"])
        .expect("an update of the dues in the audit log");
    assert_eq!(
        (update["before"]["custom"]["dues"].clone(), update["after"]["custom"]["dues"].clone()),
        (json!(12.5), json!(30))
    );
});

db_test!(lists_filter_and_export_by_custom_fields, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    define(
        &app,
        admin,
        org,
        json!({"key": "size", "label": "Size", "kind": "choice", "options": ["S", "M", "L"], "in_list": true}),
    )
    .await;
    define(&app, admin, org, json!({"key": "dues", "label": "Dues", "kind": "number"})).await;
    define(&app, admin, org, json!({"key": "joined", "label": "Joined", "kind": "date"})).await;
    define(&app, admin, org, json!({"key": "volunteer", "label": "Volunteer", "kind": "bool"})).await;
    define(&app, admin, org, json!({"key": "district", "label": "District", "kind": "text"})).await;
    let people = format!("/api/v1/orgs/{org}/people");
    for (name, custom) in [
        (
            "Ana",
            json!({"size": "S", "dues": "5", "joined": "2023-01-10", "volunteer": true, "district": "Croix-Rousse"}),
        ),
        ("Ben", json!({"size": "M", "dues": "12.5", "joined": "2024-09-01", "district": "Guillotière"})),
        ("Cléo", json!({"size": "M", "dues": "40", "joined": "2025-03-15", "volunteer": false})),
        ("Dan", json!({})),
    ] {
        let (s, v) = app.post(admin, &people, json!({"given_name": name, "custom": custom})).await;
        assert_eq!(s, 201, "{v}");
    }
    let names = |v: &Value| -> Vec<String> {
        let mut n: Vec<String> =
            v["items"].as_array().unwrap().iter().map(|p| p["given_name"].as_str().unwrap().to_string()).collect();
        n.sort();
        n
    };
    let url = |cf: &str| {
        format!("{people}?cf={}", cf.replace('=', "%3D").replace(';', "%3B").replace('>', "%3E").replace('<', "%3C"))
    };
    assert_eq!(names(&app.get(admin, &url("size=M")).await.1), ["Ben", "Cléo"]);
    assert_eq!(names(&app.get(admin, &url("dues>=12,5")).await.1), ["Ben", "Cléo"]);
    assert_eq!(names(&app.get(admin, &url("dues<=12.5;size=M")).await.1), ["Ben"]);
    assert_eq!(names(&app.get(admin, &url("joined>=2024-01-01;joined<=2024-12-31")).await.1), ["Ben"]);
    assert_eq!(names(&app.get(admin, &url("volunteer=true")).await.1), ["Ana"]);
    assert_eq!(
        names(&app.get(admin, &url("volunteer=false")).await.1),
        ["Ben", "Cléo", "Dan"],
        "never set counts as no"
    );
    assert_eq!(
        names(&app.get(admin, &url("district=guillo")).await.1),
        ["Ben"],
        "text matches from the start, without accents or case"
    );
    assert_eq!(
        names(&app.get(admin, &url("district~LOTIE")).await.1),
        ["Ben"],
        "`~` finds the text anywhere in the value"
    );
    let (s, p) = app.get(admin, &url("colour=red")).await;
    assert_eq!((s, p["errors"][0]["field"].as_str()), (422, Some("cf")), "{p}");
    let (s, _) = app.get(admin, &url("district>=a")).await;
    assert_eq!(s, 422);

    // Exports carry the columns and honour the filters.
    let r = app
        .http
        .get(app.url(&format!("/api/v1/orgs/{org}/people/export.csv?cf=size%3DM")))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    let csv = r.text().await.unwrap();
    let header = csv.lines().next().unwrap().trim_start_matches('\u{feff}');
    assert!(header.ends_with(",size,dues,joined,volunteer,district"), "{header}");
    assert_eq!(csv.lines().count(), 3, "{csv}");
    assert!(csv.contains(",M,12.5,2024-09-01,,Guillotière"), "{csv}");

    // Archiving hides the field and its values; restoring brings them back.
    let (_, defs) = app.get(admin, &format!("/api/v1/orgs/{org}/custom-fields")).await;
    let size_id =
        defs.as_array().unwrap().iter().find(|d| d["key"] == "size").unwrap()["id"].as_str().unwrap().to_string();
    let field = format!("/api/v1/orgs/{org}/custom-fields/{size_id}");
    assert_eq!(app.send(reqwest::Method::DELETE, admin, &field, json!(null)).await.0, 204);
    let (_, all) = app.get(admin, &format!("{people}?q=ben")).await;
    assert!(all["items"][0]["custom"].get("size").is_none(), "{all}");
    let (s, v) = app.send(reqwest::Method::PATCH, admin, &field, json!({"archived": false, "label": "T-shirt"})).await;
    assert_eq!((s, v["label"].as_str(), v["archived"].as_bool()), (200, Some("T-shirt"), Some(false)), "{v}");
    assert_eq!(app.get(admin, &format!("{people}?q=ben")).await.1["items"][0]["custom"]["size"], "M");
    // A field's kind never changes.
    let (s, _) = app.send(reqwest::Method::PATCH, admin, &field, json!({"kind": "text"})).await;
    assert_eq!(s, 422);
});

db_test!(custom_fields_in_the_person_form, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    // Defined from the settings page.
    let r = browser
        .post(app.url(&format!("/o/{org}/settings/fields")))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("entity_type", "person"),
            ("label", "Taille"),
            ("kind", "choice"),
            ("options", "S\nM\nL"),
            ("required", "1"),
            ("in_list", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = browser
        .post(app.url(&format!("/o/{org}/settings/fields")))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("entity_type", "person"),
            ("label", "Langues"),
            ("kind", "multi"),
            ("options", "fr\nen"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = browser.get(app.url(&format!("/o/{org}/people/new"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("name=\"cf.taille\"") && html.contains("name=\"cf.langues\""), "{html}");
    // The required field is missing: the form comes back with its error and the input kept.
    let r = browser
        .post(app.url(&format!("/o/{org}/people")))
        .form(&[("_csrf", csrf.as_str()), ("given_name", "Inès"), ("cf.langues", "en")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("“Taille” is required.") && html.contains("value=\"Inès\""), "{html}");
    let r = browser
        .post(app.url(&format!("/o/{org}/people")))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("given_name", "Inès"),
            ("cf.taille", "L"),
            ("cf.langues", "fr"),
            ("cf.langues", "en"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, list) = app.get(admin, &format!("/api/v1/orgs/{org}/people?q=ines")).await;
    assert_eq!(list["items"][0]["custom"], json!({"taille": "L", "langues": ["fr", "en"]}));
    // The list shows the chosen column.
    let html = browser.get(app.url(&format!("/o/{org}/people"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(">Taille</th>") && html.contains("data-label=\"Taille\">L</td>"), "{html}");
    // The filter form: one select per choice field; a filter keeps the matching people only.
    assert!(html.contains("name=\"cf.taille\""), "{html}");
    app.post(admin, &format!("/api/v1/orgs/{org}/people"), json!({"given_name": "Théo", "custom": {"taille": "S"}}))
        .await;
    let html =
        browser.get(app.url(&format!("/o/{org}/people?cf.taille=L"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Inès") && !html.contains("Théo"), "{html}");
    assert!(html.contains("export.csv?q=&amp;cf=taille%3DL"), "exports keep the filter: {html}");
});
