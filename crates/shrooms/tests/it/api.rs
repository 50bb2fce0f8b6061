//! The JSON API: organisations, people, lists, validation and error format.

use serde_json::{json, Value};
use testkit::{db_test, TestApp};

db_test!(people_crud_search_and_pagination, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let base = format!("/api/v1/orgs/{}/people", f.org_slug);
    let (s, p) = app
        .post(
            t,
            &base,
            json!({"given_name": "Ada", "family_name": "Lovelace", "email": "ADA@Example.org", "phone": "+44 20 0000"}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["email"], "ada@example.org");
    let id = p["id"].as_str().unwrap().to_string();
    for i in 0..25 {
        let (s, _) = app.post(t, &base, json!({"given_name": format!("Person{i:02}"), "family_name": "Zeta", "email": format!("p{i}@example.org")})).await;
        assert_eq!(s, 201);
    }
    // Search is case-insensitive over names, email and phone.
    let (s, r) = app.get(t, &format!("{base}?q=lovel")).await;
    assert_eq!(s, 200);
    assert_eq!(r["items"].as_array().unwrap().len(), 1);
    assert_eq!(r["items"][0]["id"], id.as_str());
    // Pagination: pages of 10 cover all 26 people exactly once, in name order.
    let mut seen: Vec<String> = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}?limit=10&cursor={c}"),
            None => format!("{base}?limit=10"),
        };
        let (s, page) = app.get(t, &url).await;
        assert_eq!(s, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(
            items
                .iter()
                .map(|p| format!("{} {}", p["family_name"].as_str().unwrap(), p["given_name"].as_str().unwrap())),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 26);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    // A limit above the maximum is capped, never unbounded.
    let (_, big) = app.get(t, &format!("{base}?limit=100000")).await;
    assert!(big["items"].as_array().unwrap().len() <= 200);
    // Update and read back.
    let (s, u) =
        app.send(reqwest::Method::PATCH, t, &format!("{base}/{id}"), json!({"phone": "+33 1 23 45 67 89"})).await;
    assert_eq!(s, 200, "{u}");
    assert_eq!(u["given_name"], "Ada");
    assert_eq!(u["phone"], "+33 1 23 45 67 89");
    // The audit log has before and after.
    let (_, a) = app.get(t, &format!("/api/v1/orgs/{}/audit?entity_id={id}", f.org_slug)).await;
    let upd =
        a["items"].as_array().unwrap().iter().find(|e| e["action"] == "person.update").expect("update audited").clone();
    assert_eq!(upd["before"]["phone"], "+44 20 0000");
    assert_eq!(upd["after"]["phone"], "+33 1 23 45 67 89");
    assert_eq!(upd["actor_label"], "admin@example.org");
    // Delete.
    let (s, _) = app.send(reqwest::Method::DELETE, t, &format!("{base}/{id}"), json!(null)).await;
    assert_eq!(s, 204);
    assert_eq!(app.get(t, &format!("{base}/{id}")).await.0, 404);
});

db_test!(bad_input_gets_problem_json_and_changes_nothing, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let base = format!("/api/v1/orgs/{}/people", f.org_slug);
    async fn count(app: &TestApp, t: &str, base: &str) -> usize {
        app.get(t, &format!("{base}?limit=200")).await.1["items"].as_array().map(|a| a.len()).unwrap_or(99)
    }
    let before = count(&app, t, &base).await;
    // Invalid email: 422 naming the field.
    let (s, b) = app.post(t, &base, json!({"given_name": "A", "family_name": "B", "email": "not-an-email"})).await;
    assert_eq!(s, 422);
    assert_eq!(b["type"], "urn:shrooms:problem:validation");
    assert_eq!(b["errors"][0]["field"], "email");
    // Unknown field.
    let (s, b) = app.post(t, &base, json!({"given_name": "A", "family_name": "B", "shoe_size": 43})).await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["detail"].as_str().unwrap_or("").contains("shoe_size")
            || b["errors"][0]["message"].as_str().unwrap_or("").contains("shoe_size"),
        "{b}"
    );
    // Malformed JSON.
    let r = app
        .http
        .post(app.url(&base))
        .bearer_auth(t)
        .header("content-type", "application/json")
        .body("{\"given_name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Valid JSON with a value of the wrong shape (a list where a permission
    // word is expected) is a field error, not "malformed JSON".
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            t,
            &format!("/api/v1/orgs/{}/roles/member", f.org_slug),
            json!({"permissions": {"core": [1, 2]}}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["type"], "urn:shrooms:problem:validation");
    assert!(b["errors"][0]["field"].as_str().unwrap_or("").starts_with("permissions"), "{b}");
    // No Content-Type: 415.
    let r = app.http.post(app.url(&base)).bearer_auth(t).body("{}").send().await.unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    // Oversized body.
    let huge = "x".repeat(3 * 1024 * 1024);
    // (its own client: the server closes a connection whose body it refused)
    let r = reqwest::Client::new()
        .post(app.url(&base))
        .bearer_auth(t)
        .header("content-type", "application/json")
        .body(format!("{{\"notes\": \"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // Nothing was stored.
    assert_eq!(count(&app, t, &base).await, before);
    // Duplicate organisation URL name: conflict on the field.
    let (s, _) = app.post(t, "/api/v1/orgs", json!({"name": "Dup", "slug": "dup"})).await;
    assert_eq!(s, 201);
    let (s, b) = app.post(t, "/api/v1/orgs", json!({"name": "Dup again", "slug": "dup"})).await;
    assert_eq!(s, 409);
    assert_eq!(b["errors"][0]["field"], "slug");
    // Expired or forged tokens.
    let r = app.http.get(app.url("/api/v1/me")).bearer_auth("eyJhbGciOiJIUzI1NiJ9.e30.AAAA").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["type"], "urn:shrooms:problem:unauthorized");
});

db_test!(orgs_one_account_many_roles, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let (s, org) = app.post(t, "/api/v1/orgs", json!({"name": "Club Informatique"})).await;
    assert_eq!(s, 201, "{org}");
    assert!(org["id"].as_str().is_some());
    assert_eq!(org["slug"], "club-informatique");
    // One account, two organisations, a different role in each.
    let m = app.member(t, &f.org_slug, "sam@example.org", "manager").await;
    let (s, _) = app
        .post(t, "/api/v1/orgs/club-informatique/members", json!({"email": "sam@example.org", "role": "member"}))
        .await;
    assert_eq!(s, 201);
    let (_, me) = app.get(&m, "/api/v1/me").await;
    let slugs: Vec<&str> = me["orgs"].as_array().unwrap().iter().map(|o| o["slug"].as_str().unwrap()).collect();
    assert!(slugs.contains(&"club-informatique") && slugs.contains(&f.org_slug.as_str()));
    // Manager writes in the first, member only reads in the second.
    assert_eq!(
        app.post(&m, &format!("/api/v1/orgs/{}/people", f.org_slug), json!({"given_name": "A", "family_name": "B"}))
            .await
            .0,
        201
    );
    assert_eq!(
        app.post(&m, "/api/v1/orgs/club-informatique/people", json!({"given_name": "A", "family_name": "B"})).await.0,
        403
    );
    assert_eq!(app.get(&m, "/api/v1/orgs/club-informatique/people").await.0, 200);
    // Only instance administrators create organisations.
    assert_eq!(app.post(&m, "/api/v1/orgs", json!({"name": "Mine"})).await.0, 403);
    // GET /api/v1/orgs lists only one's own organisations.
    let (_, list) = app.get(&m, "/api/v1/orgs").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
});

db_test!(health_metrics_openapi_and_headers, |app: TestApp| async move {
    let r = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h: Value = r.json().await.unwrap();
    assert_eq!(h["database"]["status"], "ok");
    assert_eq!(h["database"]["backend"], if app.backend == testkit::Backend::Sqlite { "sqlite" } else { "postgres" });
    let r = app.http.get(app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    assert!(doc["paths"]["/api/v1/orgs/{org}/people"]["get"].is_object());
    let r = app.http.get(app.url("/metrics")).send().await.unwrap();
    let text = r.text().await.unwrap();
    assert!(text.contains("shrooms_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("shrooms_db_pool_connections"));
    // Every answer names its request; a caller's sane id is kept.
    let r = app.http.get(app.url("/healthz")).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-42");
    let r = app.http.get(app.url("/healthz")).header("x-request-id", "bad id; drop").send().await.unwrap();
    assert_ne!(r.headers()["x-request-id"], "bad id; drop");
    let r = app.http.get(app.url("/login")).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(r.headers()["x-frame-options"], "DENY");
});

#[test]
fn committed_openapi_document_is_current() {
    // Two modules defining one schema name differently would leave one of
    // them documented with the other's schema (the fuzzing found one).
    let collisions = shrooms_core::web::api::schema_collisions(&shrooms::modules().unwrap());
    assert!(collisions.is_empty(), "schema names defined differently by two parts of the API: {collisions:?}");
    let doc = shrooms_core::web::api::openapi_document(&shrooms::modules().unwrap());
    let current = doc.to_pretty_json().unwrap();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var("SHROOMS_UPDATE_OPENAPI").is_ok() {
        std::fs::write(path, format!("{current}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert_eq!(
        committed.trim_end(),
        current.trim_end(),
        "docs/openapi.json is out of date: run `SHROOMS_UPDATE_OPENAPI=1 cargo test committed_openapi` and commit it"
    );
}

db_test!(groups_and_instance_settings, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let org = &f.org_slug;
    let staff = app.member(t, org, "tech@example.org", "staff").await;
    let (_, me) = app.get(&staff, "/api/v1/me").await;
    let tech_id = me["id"].as_str().unwrap().to_string();
    let (s, g) = app.post(t, &format!("/api/v1/orgs/{org}/groups"), json!({"name": "Technicians"})).await;
    assert_eq!(s, 201, "{g}");
    let gid = g["id"].as_str().unwrap();
    assert_eq!(app.post(t, &format!("/api/v1/orgs/{org}/groups"), json!({"name": "Technicians"})).await.0, 409);
    let put = |account: String| format!("/api/v1/orgs/{org}/groups/{gid}/members/{account}");
    assert_eq!(app.send(reqwest::Method::PUT, t, &put(tech_id.clone()), json!(null)).await.0, 204);
    // An account that is not a member of the organisation cannot join its groups.
    let stranger = "01890000-0000-7000-8000-000000000000".to_string();
    assert_eq!(app.send(reqwest::Method::PUT, t, &put(stranger), json!(null)).await.0, 404);
    // Staff may read groups but not manage them.
    let (s, list) = app.get(&staff, &format!("/api/v1/orgs/{org}/groups")).await;
    assert_eq!(s, 200);
    assert_eq!(list[0]["members"][0], tech_id.as_str());
    assert_eq!(app.post(&staff, &format!("/api/v1/orgs/{org}/groups"), json!({"name": "Mine"})).await.0, 403);
    // The group feeds record-level visibility.
    let groups = shrooms_core::groups::of_account(&app.state.db, f.org_id.parse().unwrap(), tech_id.parse().unwrap())
        .await
        .unwrap();
    let v = shrooms_core::permissions::Visibility { owner: None, group: Some(groups[0]), mode: 0o060 };
    assert!(v.can_write(tech_id.parse().unwrap(), &groups));

    // Instance settings: name and default language, audited.
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            t,
            "/api/v1/admin/instance",
            json!({"name": "Fédération AESI", "default_lang": "fr"}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(app.get(t, "/api/v1/admin/instance").await.1["name"], "Fédération AESI");
    assert_eq!(
        app.send(reqwest::Method::PATCH, t, "/api/v1/admin/instance", json!({"default_lang": "de"})).await.0,
        422
    );
    assert_eq!(app.send(reqwest::Method::PATCH, &staff, "/api/v1/admin/instance", json!({"name": "x"})).await.0, 403);
    let (_, audit) = app.get(t, "/api/v1/admin/audit?action=instance.update").await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
});

db_test!(instance_health_for_administrators, |app: TestApp| async move {
    let f = app.bootstrap().await;
    app.get(&f.admin_token, "/api/v1/me").await;
    let (s, h) = app.get(&f.admin_token, "/api/v1/admin/health").await;
    assert_eq!(s, 200, "{h}");
    assert_eq!(h["database_ok"], true);
    assert!(h["database_latency_ms"].as_f64().is_some());
    assert!(h["memory_rss_kib"].as_u64().unwrap_or(0) > 1000);
    assert!(h["routes"].as_array().unwrap().iter().any(|r| r["route"] == "/api/v1/me"));
    let staff = app.member(&f.admin_token, &f.org_slug, "staff@example.org", "staff").await;
    assert_eq!(app.get(&staff, "/api/v1/admin/health").await.0, 403);
    let b = &app.browser;
    app.sign_in(b, "admin@example.org", testkit::ADMIN_PASSWORD).await;
    let html = b.get(app.url("/admin/health")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("System health") && html.contains(app.backend_name()), "{html}");
});

db_test!(people_export_as_csv, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let base = format!("/api/v1/orgs/{}/people", f.org_slug);
    for (g, fam, notes) in [("Zoé", "Lefèvre", "likes, commas"), ("Max", "Evil", "=HYPERLINK(\"x\")")] {
        assert_eq!(app.post(t, &base, json!({"given_name": g, "family_name": fam, "notes": notes})).await.0, 201);
    }
    let r = app.http.get(app.url(&format!("{base}/export.csv"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].trim_start_matches('\u{feff}').starts_with("id,given_name,family_name"));
    assert!(lines.iter().any(|l| l.contains("Zoé,Lefèvre,,,\"likes, commas\"")), "{csv}");
    assert!(lines.iter().any(|l| l.contains("\"'=HYPERLINK(\"\"x\"\")\"")), "formulas are defused: {csv}");
    // Filtered like the list, and audited.
    let r = app.http.get(app.url(&format!("{base}/export.csv?q=zoe"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.text().await.unwrap().trim_end().split("\r\n").count(), 2);
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{}/audit?action=person.export", f.org_slug)).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
});

db_test!(people_export_as_ods_opens_as_a_spreadsheet, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let base = format!("/api/v1/orgs/{}/people", f.org_slug);
    assert_eq!(
        app.post(t, &base, json!({"given_name": "Zoé", "family_name": "L'Hôpital & Fils", "notes": "<b>x</b>"}))
            .await
            .0,
        201
    );
    let r = app.http.get(app.url(&format!("{base}/export.ods"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/vnd.oasis.opendocument.spreadsheet");
    let bytes = r.bytes().await.unwrap();
    let path = app.data_dir.join("people.ods");
    std::fs::write(&path, &bytes).unwrap();
    // Read it with an independent implementation: Python's zipfile and XML parser.
    let script = r#"
import sys, zipfile, xml.etree.ElementTree as ET
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
names = z.namelist()
assert names[0] == 'mimetype' and z.read('mimetype') == b'application/vnd.oasis.opendocument.spreadsheet'
ns = {'table': 'urn:oasis:names:tc:opendocument:xmlns:table:1.0', 'text': 'urn:oasis:names:tc:opendocument:xmlns:text:1.0'}
root = ET.fromstring(z.read('content.xml'))
rows = [[''.join(c.itertext()) for c in r.findall('table:table-cell', ns)] for r in root.iter('{urn:oasis:names:tc:opendocument:xmlns:table:1.0}table-row')]
print(rows[0][1], '|', rows[1][1], '|', rows[1][2], '|', rows[1][5])
"#;
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "given_name | Zoé | L'Hôpital & Fils | <b>x</b>");
});

db_test!(people_print_as_a_pdf_that_a_reader_opens, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let base = format!("/api/v1/orgs/{}/people", f.org_slug);
    for i in 0..70 {
        let (s, _) = app
            .post(t, &base, json!({"given_name": format!("Zoé {i:02}"), "family_name": "L'Hôpital (Œuvre) € \\", "email": format!("z{i}@example.org")}))
            .await;
        assert_eq!(s, 201);
    }
    let r = app.http.get(app.url(&format!("{base}/export.pdf"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/pdf");
    let path = app.data_dir.join("people.pdf");
    std::fs::write(&path, r.bytes().await.unwrap()).unwrap();
    // Read it with an independent implementation: pypdf (pip install pypdf).
    let script = r#"
import sys, pypdf
r = pypdf.PdfReader(sys.argv[1], strict=True)
text = "\n".join(p.extract_text() for p in r.pages)
print(len(r.pages), r.metadata.title)
print(text)
"#;
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let pages: usize = text.split_whitespace().next().unwrap().parse().unwrap();
    assert!(pages >= 2, "70 people take more than a page: {text}");
    assert!(text.contains("Zoé 00") && text.contains("Zoé 69"), "{text}");
    assert!(text.contains("L'Hôpital (Œuvre) € \\"), "{text}");
    assert!(text.contains(&format!("1 / {pages}")), "page numbers: {text}");
    // Filters apply as for the list.
    let r = app.http.get(app.url(&format!("{base}/export.pdf?q=zoe%2042"))).bearer_auth(t).send().await.unwrap();
    std::fs::write(&path, r.bytes().await.unwrap()).unwrap();
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(&path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Zoé 42") && !text.contains("Zoé 41"), "{text}");
});

db_test!(the_audit_log_exports_with_its_filters, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let org = &f.org_slug;
    let member = app.member(t, org, "reader@example.org", "member").await;
    app.post(t, &format!("/api/v1/orgs/{org}/people"), json!({"given_name": "Awa", "notes": "=1+1"})).await;
    let get = |token: String, path: String| {
        let app = &app;
        async move { app.http.get(app.url(&path)).bearer_auth(token).send().await.unwrap() }
    };
    let r = get(t.clone(), format!("/api/v1/orgs/{org}/audit/export.csv?action=person.create")).await;
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0].trim_start_matches('\u{feff}'),
        "seq,at,actor,action,entity_type,entity_id,address,before,after"
    );
    assert_eq!(lines.len(), 2, "only the filtered action: {csv}");
    assert!(lines[1].contains(",person.create,person,"), "{csv}");
    let r = get(t.clone(), format!("/api/v1/orgs/{org}/audit/export.ods")).await;
    assert_eq!(r.headers()["content-type"], "application/vnd.oasis.opendocument.spreadsheet");
    assert!(r.bytes().await.unwrap().starts_with(b"PK"));
    // Administrators only; the export is itself recorded.
    assert_eq!(get(member, format!("/api/v1/orgs/{org}/audit/export.csv")).await.status(), 403);
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{org}/audit?action=audit.export")).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2, "{audit}");
});

db_test!(a_search_word_shared_by_many_people_still_pages_by_name, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let base = format!("/api/v1/orgs/{}/people", f.org_slug);
    // 600 people at one email domain: more than the threshold of the name-order plan.
    for i in 0..600 {
        let given = if i % 3 == 0 { "Zoé" } else { "Marc" };
        let (s, _) = app
            .post(t, &base, json!({"given_name": given, "family_name": format!("N{:03}", 599 - i), "email": format!("p{i}@bulk-mail.org")}))
            .await;
        assert_eq!(s, 201);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let url = match &cursor {
            Some(c) => format!("{base}?q=bulk%20zoe&limit=50&cursor={c}"),
            None => format!("{base}?q=bulk%20zoe&limit=50"),
        };
        let (s, page) = app.get(t, &url).await;
        assert_eq!(s, 200, "{page}");
        for p in page["items"].as_array().unwrap() {
            assert_eq!(p["given_name"], "Zoé");
            seen.push(p["family_name"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 200, "every third person is a Zoé");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "in name order across pages");
});

db_test!(members_export_with_their_roles, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let org = &f.org_slug;
    app.member(t, org, "treasurer@example.org", "manager").await;
    let r =
        app.http.get(app.url(&format!("/api/v1/orgs/{org}/members/export.csv"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert!(csv.lines().next().unwrap().ends_with("email,display_name,role,account_id"), "{csv}");
    assert!(csv.contains("treasurer@example.org,treasurer,manager,"), "{csv}");
    let r =
        app.http.get(app.url(&format!("/api/v1/orgs/{org}/members/export.ods"))).bearer_auth(t).send().await.unwrap();
    assert!(r.bytes().await.unwrap().starts_with(b"PK"));
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{org}/audit?action=member.export")).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 2);
    // In the browser, from the settings page.
    let browser = testkit::browser_client();
    app.sign_in(&browser, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let r = browser.get(app.url(&format!("/o/{org}/settings/members/export.csv"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("treasurer@example.org"));
});

db_test!(a_search_pages_in_name_order_and_follows_renames, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let base = format!("/api/v1/orgs/{}/people", f.org_slug);
    // Twenty people whose given name starts with "mar", some twice over
    // (Marc Marchand: two of their words match), and others who do not match.
    let mut ids = Vec::new();
    for i in 0..20 {
        let (given, family) =
            if i % 4 == 0 { ("Marc", format!("Marchand{i:02}")) } else { ("Marie", format!("N{:02}", 19 - i)) };
        let (s, p) = app.post(t, &base, json!({"given_name": given, "family_name": family})).await;
        assert_eq!(s, 201, "{p}");
        ids.push(p["id"].as_str().unwrap().to_string());
        let (s, _) = app.post(t, &base, json!({"given_name": "Paul", "family_name": format!("Other{i:02}")})).await;
        assert_eq!(s, 201);
    }
    let search =
        |q: &'static str| {
            let app = &app;
            let base = &base;
            async move {
                let mut seen: Vec<String> = Vec::new();
                let mut cursor: Option<String> = None;
                loop {
                    let url = match &cursor {
                        Some(c) => format!("{base}?q={q}&limit=7&cursor={c}"),
                        None => format!("{base}?q={q}&limit=7"),
                    };
                    let (s, page) = app.get(t, &url).await;
                    assert_eq!(s, 200, "{page}");
                    seen.extend(page["items"].as_array().unwrap().iter().map(|p| {
                        format!("{} {}", p["family_name"].as_str().unwrap(), p["given_name"].as_str().unwrap())
                    }));
                    match page["next_cursor"].as_str() {
                        Some(c) => cursor = Some(c.to_string()),
                        None => break,
                    }
                }
                seen
            }
        };
    let seen = search("mar").await;
    assert_eq!(seen.len(), 20, "each match once, across pages: {seen:?}");
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "in name order across pages");
    // A renamed person is found under the new name, in its place in the order.
    let (s, u) =
        app.send(reqwest::Method::PATCH, t, &format!("{base}/{}", ids[5]), json!({"family_name": "Aardvark"})).await;
    assert_eq!(s, 200, "{u}");
    let seen = search("mar").await;
    assert_eq!(seen.len(), 20);
    assert_eq!(seen[0], "Aardvark Marie", "{seen:?}");
    // Every word must match: the second word narrows the first.
    assert_eq!(search("mar%20aard").await, vec!["Aardvark Marie".to_string()]);
    assert!(search("paul%20mar").await.is_empty());
});
