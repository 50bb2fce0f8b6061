//! The member directory: filtered search with standings computed for today,
//! custom fields, cursor paging, saved searches, exports and printouts of a
//! selection, bad filters and tenant isolation.

use crate::{field_errors, join, person, setup, url, year, yearly};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

fn names(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|r| r["family_name"].as_str().unwrap().to_string()).collect()
}

db_test!(the_directory_filters_by_standing_type_text_dates_and_custom_fields, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let yearly_t = yearly(&app, &s, "Annuelle").await;
    let other_t = yearly(&app, &s, "Bienfaiteur").await;
    let ana = person(&app, &s, "Ana", "Martin").await;
    let bob = person(&app, &s, "Bob", "Durand").await;
    let cle = person(&app, &s, "Clélia", "Petit").await;
    let _never = person(&app, &s, "Dan", "Zed").await;
    // Ana paid this year; Bob joined but did not pay; Clélia's membership ended last year.
    let (st, p) = join(&app, &s, &ana, json!({"type_id": yearly_t, "starts_on": format!("{y}-01-01")})).await;
    assert_eq!(st, 201, "{p}");
    let (st, b) = app
        .post(&s.admin, &url(&s.org, "/dues"), json!({"person_id": ana, "period_id": p["id"], "amount_cents": 3000, "method": "cash", "paid_on": format!("{y}-01-02")}))
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(join(&app, &s, &bob, json!({"type_id": other_t, "starts_on": format!("{y}-02-01")})).await.0, 201);
    assert_eq!(
        join(&app, &s, &cle, json!({"type_id": yearly_t, "starts_on": format!("{}-03-01", y - 1)})).await.0,
        201
    );

    let search = |q: String| {
        let app = &app;
        let s = &s;
        async move {
            let (st, b) = app.get(&s.admin, &url(&s.org, &format!("/search?{q}"))).await;
            assert_eq!(st, 200, "{q}: {b}");
            b
        }
    };
    // Members only, by name, each with the standing of today.
    let all = search(String::new()).await;
    assert_eq!(names(&all), ["Durand", "Martin", "Petit"]);
    let st: Vec<&str> = all["items"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(st, ["dues_unpaid", "up_to_date", "lapsed"]);
    assert_eq!(all["items"][1]["type_name"], "Annuelle");
    assert_eq!(all["items"][1]["ends_on"], format!("{y}-12-31"));
    assert_eq!(names(&search("status=late".into()).await), ["Durand"]);
    assert_eq!(names(&search("status=up_to_date,lapsed".into()).await), ["Martin", "Petit"]);
    assert_eq!(names(&search("status=never".into()).await), ["Zed"]);
    assert_eq!(names(&search(format!("type_id={other_t}")).await), ["Durand"]);
    assert_eq!(names(&search(format!("status=up_to_date&type_id={yearly_t}&q=ana")).await), ["Martin"]);
    // Text: word prefixes of names and e-mails, accents folded.
    assert_eq!(names(&search("q=clelia".into()).await), ["Petit"]);
    assert_eq!(names(&search("q=bob%40exa".into()).await), ["Durand"]);
    // Dates.
    assert_eq!(names(&search(format!("joined_to={}-12-31", y - 1)).await), ["Petit"]);
    assert_eq!(names(&search(format!("ends_from={y}-01-01")).await), ["Durand", "Martin"]);
    // Paying changes the standing at once (the summary is kept by the write).
    let periods = app.get(&s.admin, &url(&s.org, &format!("/people/{bob}"))).await.1;
    let pid = periods["periods"][0]["id"].as_str().unwrap().to_string();
    let (st, b) = app
        .post(&s.admin, &url(&s.org, "/dues"), json!({"person_id": bob, "period_id": pid, "amount_cents": 3000, "method": "cash", "paid_on": format!("{y}-02-02")}))
        .await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(names(&search("status=up_to_date".into()).await), ["Durand", "Martin"]);
    // A resignation too.
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/periods/{pid}/close")),
            json!({"reason": "resigned", "on": format!("{y}-02-03")}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(names(&search("status=resigned".into()).await), ["Durand"]);

    // Custom fields of people: equality and "contains".
    let (st, b) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{}/custom-fields", s.org),
            json!({"entity_type": "person", "key": "quartier", "label": "Quartier", "kind": "text"}),
        )
        .await;
    assert!(st == 201 || st == 200, "{b}");
    let (st, b) = app
        .send(
            reqwest::Method::PATCH,
            &s.admin,
            &format!("/api/v1/orgs/{}/people/{ana}", s.org),
            json!({"custom": {"quartier": "Croix-Rousse"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(names(&search("cf=quartier%3Dcroix".into()).await), ["Martin"]);
    assert_eq!(names(&search("cf=quartier~rousse".into()).await), ["Martin"]);
    assert!(names(&search("cf=quartier~gerland".into()).await).is_empty());

    // Bad filters are refused with the field named.
    let (st, b) = app.get(&s.admin, &url(&s.org, "/search?colour=red")).await;
    assert_eq!(st, 422, "{b}");
    let (st, b) = app.get(&s.admin, &url(&s.org, "/search?status=asleep")).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "status");
    let (st, b) = app.get(&s.admin, &url(&s.org, "/search?cf=shoe%3D42")).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "cf");
    let (st, b) = app.get(&s.admin, &url(&s.org, "/search?ends_from=31/12/2026")).await;
    assert_eq!(st, 422, "{b}");
    let (st, _) = app.get(&s.admin, &url(&s.org, "/search?cursor=zz")).await;
    assert_eq!(st, 422);
});

db_test!(pages_follow_the_cursor_and_other_organisations_never_show, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let t = yearly(&app, &s, "Annuelle").await;
    for i in 0..5 {
        let p = person(&app, &s, &format!("P{i}"), &format!("Nom{i}")).await;
        assert_eq!(join(&app, &s, &p, json!({"type_id": t, "starts_on": format!("{y}-01-01")})).await.0, 201);
    }
    let (_, p1) = app.get(&s.admin, &url(&s.org, "/search?limit=2")).await;
    assert_eq!(names(&p1), ["Nom0", "Nom1"]);
    let c = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = app.get(&s.admin, &url(&s.org, &format!("/search?limit=2&cursor={c}"))).await;
    assert_eq!(names(&p2), ["Nom2", "Nom3"]);
    let c = p2["next_cursor"].as_str().unwrap();
    let (_, p3) = app.get(&s.admin, &url(&s.org, &format!("/search?limit=2&cursor={c}"))).await;
    assert_eq!(names(&p3), ["Nom4"]);
    assert!(p3["next_cursor"].is_null());
    let (_, j) = app.get(&s.admin, &url(&s.org, "/search?sort=joined&limit=10")).await;
    assert_eq!(j["items"].as_array().unwrap().len(), 5);

    // A saved search of this organisation: list, rename, use, delete.
    let (st, saved) =
        app.post(&s.admin, &url(&s.org, "/searches"), json!({"name": "Nom0 seul", "filter": {"q": "nom0"}})).await;
    assert_eq!(st, 201, "{saved}");
    let id = saved["id"].as_str().unwrap().to_string();
    let (st, b) = app.post(&s.admin, &url(&s.org, "/searches"), json!({"name": "Nom0 seul"})).await;
    assert_eq!(st, 409, "{b}");
    let (st, b) =
        app.post(&s.admin, &url(&s.org, "/searches"), json!({"name": "Bad", "filter": {"colour": "red"}})).await;
    assert_eq!(st, 422, "{b}");
    let (_, used) = app.get(&s.admin, &url(&s.org, &format!("/search?saved={id}"))).await;
    assert_eq!(names(&used), ["Nom0"]);
    let (st, r) = app
        .send(reqwest::Method::PATCH, &s.admin, &url(&s.org, &format!("/searches/{id}")), json!({"name": "Le premier"}))
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["filter"]["q"], "nom0");
    // A filter is an object: an array is refused, not read as the filter's
    // fields in order, and the stored filter stays.
    let (st, b) = app
        .send(
            reqwest::Method::PATCH,
            &s.admin,
            &url(&s.org, &format!("/searches/{id}")),
            json!({"filter": [null, null]}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    let (st, b) = app.post(&s.admin, &url(&s.org, "/searches"), json!({"name": "Array", "filter": ["x"]})).await;
    assert_eq!(st, 422, "{b}");
    let (_, list) = app.get(&s.admin, &url(&s.org, "/searches")).await;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["filter"]["q"], "nom0");

    // Another organisation sees neither the members nor the saved search.
    assert_eq!(app.post(&s.admin, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await.0, 201);
    let (st, b) = app.get(&s.admin, &format!("/api/v1/orgs/{}/members/search", "other")).await;
    assert_eq!(st, 200, "{b}");
    assert!(b["items"].as_array().unwrap().is_empty());
    let (st, b) = app.get(&s.admin, &format!("/api/v1/orgs/{}/members/searches", "other")).await;
    assert_eq!(st, 200);
    assert!(b.as_array().unwrap().is_empty());
    let (st, _) = app.get(&s.admin, &format!("/api/v1/orgs/{}/members/searches/{id}", "other")).await;
    assert_eq!(st, 404);
    let (st, _) = app.get(&s.admin, &format!("/api/v1/orgs/{}/members/search?saved={id}", "other")).await;
    assert_eq!(st, 404);
    let (st, _) = app
        .send(
            reqwest::Method::DELETE,
            &s.admin,
            &format!("/api/v1/orgs/{}/members/searches/{id}", "other"),
            json!(null),
        )
        .await;
    assert_eq!(st, 404);

    let (st, _) =
        app.send(reqwest::Method::DELETE, &s.admin, &url(&s.org, &format!("/searches/{id}")), json!(null)).await;
    assert_eq!(st, 204);
    let (_, list) = app.get(&s.admin, &url(&s.org, "/searches")).await;
    assert!(list.as_array().unwrap().is_empty());

    // Exports and printouts of the selection.
    let r =
        app.http.get(app.url(&url(&s.org, "/search/export.csv?q=nom1"))).bearer_auth(&s.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert!(csv.contains("Nom1") && !csv.contains("Nom2"), "{csv}");
    for path in ["/search/list.pdf", "/search/labels.pdf", "/search/export.ods"] {
        let r = app.http.get(app.url(&url(&s.org, path))).bearer_auth(&s.admin).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    // The page.
    // The pages: the directory, saving a search (an empty name is shown on
    // the form), the mass mail preview.
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, "admin@example.org", testkit::ADMIN_PASSWORD).await;
    let r = browser.get(app.url(&format!("/o/{}/members/directory?status=dues_unpaid", s.org))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Nom3"));
    // Its download links work in the signed-in browser (no bearer token).
    let link = format!("/o/{}/members/directory/export.csv?", s.org);
    assert!(html.contains(&link), "{html}");
    let r = browser.get(app.url(&format!("{link}q=nom1"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert!(csv.contains("Nom1") && !csv.contains("Nom2"), "{csv}");
    for file in ["export.ods", "list.pdf", "labels.pdf"] {
        let r = browser.get(app.url(&format!("/o/{}/members/directory/{file}", s.org))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{file}");
        assert!(!r.bytes().await.unwrap().is_empty());
    }
    // Signed out: to the sign-in page, not a file.
    let r = testkit::browser_client()
        .get(app.url(&format!("/o/{}/members/directory/export.csv", s.org)))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_redirection(), "{}", r.status());
    let r = browser
        .post(app.url(&format!("/o/{}/members/searches", s.org)))
        .form(&[("_csrf", csrf.as_str()), ("name", ""), ("q", "nom2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = browser
        .post(app.url(&format!("/o/{}/members/searches", s.org)))
        .form(&[("_csrf", csrf.as_str()), ("name", "Deuxième"), ("q", "nom2")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    let html = browser.get(app.url(&to)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Deuxième") && html.contains("Nom2") && !html.contains("Nom3"), "{html}");
    let r = browser
        .post(app.url(&format!("/o/{}/members/mailings", s.org)))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("subject", "Bonjour"),
            ("body", "Bonjour {{ first_name }}"),
            ("list_kind", "newsletter"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Bonjour P0"));
});

db_test!(the_member_list_is_the_directory_search_with_pages, |app: TestApp| async move {
    let s = setup(&app).await;
    let t = yearly(&app, &s, "Annuelle").await;
    for (g, f) in [("Zoé", "Zola"), ("Ana", "Abel"), ("Max", "Morel")] {
        let p = person(&app, &s, g, f).await;
        assert_eq!(join(&app, &s, &p, json!({"type_id": t, "starts_on": format!("{}-01-01", year())})).await.0, 201);
    }
    person(&app, &s, "Never", "Member").await;
    // The older list API: pages of `limit` in name order, the next one in the Link header.
    let get = |path: String| {
        let (app, token) = (&app, s.admin.clone());
        async move { app.http.get(app.url(&path)).bearer_auth(token).send().await.unwrap() }
    };
    let r = get(url(&s.org, "/directory?limit=2")).await;
    assert_eq!(r.status(), 200);
    let link = r.headers().get("link").expect("a next page").to_str().unwrap().to_string();
    let rows: Value = r.json().await.unwrap();
    let first: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(first, ["Ana Abel", "Max Morel"]);
    assert_eq!(rows[0]["standing"]["standing"], "dues_unpaid", "with the standing of the row: {rows}");
    assert!(link.ends_with("; rel=\"next\"") && link.contains("limit=2&cursor="), "{link}");
    let next = link.trim_start_matches('<').split('>').next().unwrap().to_string();
    let r = get(next).await;
    assert!(r.headers().get("link").is_none(), "the last page");
    let rows: Value = r.json().await.unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["name"], "Zoé Zola", "people who never held a membership are not listed");
    let (st, b) = app.get(&s.admin, &url(&s.org, "/directory?standing=asleep")).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "standing");
    let (st, b) = app.get(&s.admin, &url(&s.org, "/directory?cursor=zz")).await;
    assert_eq!(st, 422, "{b}");
    // The export is the whole selection, not a page.
    let r = get(url(&s.org, "/directory/export.csv?q=zo")).await;
    let csv = r.text().await.unwrap();
    assert!(csv.contains("Zoé Zola") && !csv.contains("Ana Abel"), "{csv}");
});
