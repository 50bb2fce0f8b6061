//! Importing people from CSV and ODS files: through the API, the pages and
//! the command line, on both databases. Files are built here the way the
//! users' tools write them (French CSV exports, LibreOffice spreadsheets).

use serde_json::{json, Value};
use std::time::Duration;
use testkit::{db_test, TestApp};

const BOUNDARY: &str = "----shrooms-test-boundary-7MA4YWxk";

/// A multipart/form-data body: (name, file name, content).
fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, file, data) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(app: &TestApp, token: &str, org: &str, file_name: &str, bytes: &[u8]) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(&format!("/api/v1/orgs/{org}/imports")))
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(&[("kind", None, b"people"), ("file", Some(file_name), bytes)]))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Waits for the background job to finish the import.
async fn finished(app: &TestApp, token: &str, org: &str, id: &str) -> Value {
    for _ in 0..900 {
        let (s, v) = app.get(token, &format!("/api/v1/orgs/{org}/imports/{id}")).await;
        assert_eq!(s, 200, "{v}");
        if v["status"] == "done" || v["status"] == "failed" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("import {id} did not finish");
}

async fn people(app: &TestApp, token: &str, org: &str) -> Vec<Value> {
    let (s, v) = app.get(token, &format!("/api/v1/orgs/{org}/people?limit=200")).await;
    assert_eq!(s, 200);
    v["items"].as_array().unwrap().clone()
}

fn names(people: &[Value]) -> Vec<String> {
    let mut n: Vec<String> = people
        .iter()
        .map(|p| format!("{} {}", p["given_name"].as_str().unwrap(), p["family_name"].as_str().unwrap()))
        .collect();
    n.sort();
    n
}

/// The same stored ODS archive with `content.xml` deflated, as LibreOffice writes it.
fn deflated_ods(stored: &[u8]) -> Vec<u8> {
    let entry = |n: &str| shrooms_core::tabular::zip_entry(stored, n).unwrap();
    let entries: Vec<(&str, Vec<u8>, bool)> = vec![
        ("mimetype", entry("mimetype"), false),
        ("META-INF/manifest.xml", entry("META-INF/manifest.xml"), true),
        ("content.xml", entry("content.xml"), true),
    ];
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, data, deflate) in &entries {
        let packed = if *deflate { miniz_oxide::deflate::compress_to_vec(data, 6) } else { data.clone() };
        let mut h = Vec::new();
        h.extend_from_slice(&20u16.to_le_bytes());
        h.extend_from_slice(&8u16.to_le_bytes()); // flags: sizes in a data descriptor (zeros here)
        h.extend_from_slice(&(if *deflate { 8u16 } else { 0 }).to_le_bytes());
        h.extend_from_slice(&[0; 8]); // time, date, crc (not checked)
        let local_sizes = [0u8; 8];
        let mut sizes = Vec::new();
        sizes.extend_from_slice(&(packed.len() as u32).to_le_bytes());
        sizes.extend_from_slice(&(data.len() as u32).to_le_bytes());
        let mut tail = Vec::new();
        tail.extend_from_slice(&(name.len() as u16).to_le_bytes());
        tail.extend_from_slice(&0u16.to_le_bytes());
        let offset = out.len() as u32;
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&h);
        out.extend_from_slice(&local_sizes);
        out.extend_from_slice(&tail);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&packed);
        out.extend_from_slice(b"PK\x07\x08\0\0\0\0");
        out.extend_from_slice(&sizes);
        central.extend_from_slice(b"PK\x01\x02\x14\x00");
        central.extend_from_slice(&h);
        central.extend_from_slice(&sizes);
        central.extend_from_slice(&tail);
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0\x03\x00\x03\x00");
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out
}

db_test!(french_csv_exports_import_with_their_accents, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, &f.org_slug);
    // Galette-like export: `;`, Windows-1252 (é = 0xE9, ï = 0xEF), quoted fields, French headers.
    let latin1: &[u8] = b"Nom;Pr\xe9nom;Courriel;T\xe9l\xe9phone;Ville\r\n\"Lef\xe8vre\";\"H\xe9l\xe8ne\";helene@example.org;06 12 34 56 78;\"Saint-\xc9tienne\"\r\nNa\xefma;A\xefcha;;;Lyon\r\n";
    let (s, v) = upload(&app, t, org, "adherents.csv", latin1).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "staged");
    assert_eq!(v["file_format"], "csv (;, windows-1252)");
    assert_eq!(v["rows_total"], 2);
    assert_eq!(v["error_count"], 0, "{v}");
    // Columns found by their French names.
    assert_eq!(
        v["mapping"],
        json!({"family_name": "Nom", "given_name": "Prénom", "email": "Courriel", "phone": "Téléphone"})
    );
    assert_eq!(v["preview"][0]["values"], json!(["Hélène", "Lefèvre", "helene@example.org", "06 12 34 56 78"]));
    let id = v["id"].as_str().unwrap();
    let (s, v) = app.post(t, &format!("/api/v1/orgs/{org}/imports/{id}/commit"), json!(null)).await;
    assert_eq!(s, 202, "{v}");
    let v = finished(&app, t, org, id).await;
    assert_eq!(v["status"], "done", "{v}");
    assert_eq!(v["rows_done"], v["rows_total"], "progress reaches the total");

    // UTF-8 with a byte-order mark, commas, English headers.
    let bom = "\u{feff}first name,last name,e-mail\nZoé,\"Dupont, Jr\",zoe@example.org\n";
    let (s, v) = upload(&app, t, org, "members.csv", bom.as_bytes()).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["file_format"], "csv (,, utf-8)");
    let id = v["id"].as_str().unwrap();
    assert_eq!(app.post(t, &format!("/api/v1/orgs/{org}/imports/{id}/commit"), json!(null)).await.0, 202);
    assert_eq!(finished(&app, t, org, id).await["status"], "done");

    let all = people(&app, t, org).await;
    assert_eq!(names(&all), vec!["Aïcha Naïma", "Hélène Lefèvre", "Zoé Dupont, Jr"]);
    // Imported people are found by the search like any other.
    let (_, found) = app.get(t, &format!("/api/v1/orgs/{org}/people?q=helene")).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    // One audit entry per import, with the count and the file name; none per row.
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{org}/audit?action=import.done")).await;
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert!(entries.iter().any(|e| e["after"]["file_name"] == "adherents.csv" && e["after"]["count"] == 2), "{audit}");
    let (_, per_row) = app.get(t, &format!("/api/v1/orgs/{org}/audit?action=person.create")).await;
    assert_eq!(per_row["items"].as_array().unwrap().len(), 0);
});

db_test!(libreoffice_spreadsheets_import_stored_or_deflated, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, &f.org_slug);
    let stored = shrooms_core::ods::spreadsheet(
        "Participants",
        &["Prénom", "Nom", "Mail"],
        &[vec!["Awa".into(), "Ouédraogo".into(), "awa@example.org".into()]],
    );
    let (s, v) = upload(&app, t, org, "club.ods", &stored).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!((v["file_format"].as_str(), v["error_count"].as_i64()), (Some("ods"), Some(0)), "{v}");
    let id = v["id"].as_str().unwrap();
    app.post(t, &format!("/api/v1/orgs/{org}/imports/{id}/commit"), json!(null)).await;
    assert_eq!(finished(&app, t, org, id).await["status"], "done");

    let other = shrooms_core::ods::spreadsheet(
        "Feuille1",
        &["Prénom", "Nom", "Mail"],
        &[vec!["Kofi".into(), "Mensah".into(), "kofi@example.org".into()]],
    );
    let deflated = deflated_ods(&other);
    assert!(deflated.len() < other.len(), "content.xml is really deflated");
    let (s, v) = upload(&app, t, org, "club2.ods", &deflated).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    app.post(t, &format!("/api/v1/orgs/{org}/imports/{id}/commit"), json!(null)).await;
    assert_eq!(finished(&app, t, org, id).await["status"], "done");
    assert_eq!(names(&people(&app, t, org).await), vec!["Awa Ouédraogo", "Kofi Mensah"]);

    // Not a spreadsheet at all: a reason, and nothing staged.
    let (s, v) = upload(&app, t, org, "photo.ods", b"PK\x03\x04not really a zip").await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "file");
});

db_test!(a_file_with_bad_rows_imports_nothing_and_says_why, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, &f.org_slug);
    let csv = "Nom;Prénom;Courriel;Téléphone\nDupont;Jean;jean@example.org;\nMartin;Léa;pas-une-adresse;\nDurand;Paul;paul@example.org;06 AB\n";
    let (s, v) = upload(&app, t, org, "bad.csv", csv.as_bytes()).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["error_count"], 2, "{v}");
    let errors: Vec<(i64, &str, &str)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_i64().unwrap(), e["column"].as_str().unwrap(), e["message"].as_str().unwrap()))
        .collect();
    assert_eq!(
        errors,
        vec![
            (3, "Courriel", "Enter a valid email address, like name@example.org."),
            (4, "Téléphone", "Use digits, spaces and + - . ( ) only."),
        ]
    );
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = app.post(t, &format!("/api/v1/orgs/{org}/imports/{id}/commit"), json!(null)).await;
    assert_eq!(s, 409, "{v}");
    assert!(people(&app, t, org).await.is_empty(), "nothing was imported");

    // Leaving the phone column out fixes one row; the other stays bad.
    let (s, v) = app
        .send(
            reqwest::Method::PUT,
            t,
            &format!("/api/v1/orgs/{org}/imports/{id}/mapping"),
            json!({"mapping": {"phone": null}}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["error_count"].as_i64(), v["errors"][0]["line"].as_i64()), (Some(1), Some(3)), "{v}");
    assert_eq!(v["mapping"].get("phone"), None);
    // A column the file does not have.
    let (s, v) = app
        .send(
            reqwest::Method::PUT,
            t,
            &format!("/api/v1/orgs/{org}/imports/{id}/mapping"),
            json!({"mapping": {"email": "Adresse"}}),
        )
        .await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(v["errors"][0]["field"], "mapping.email");

    // Duplicates: within the file, and with someone added after the preview
    // (checked again by the job: the whole import fails, the report is kept).
    let csv = "Nom,Email\nA,a@example.org\nB,b@example.org\nC,A@example.org\n";
    let (_, v) = upload(&app, t, org, "dups.csv", csv.as_bytes()).await;
    assert_eq!(v["error_count"], 1, "{v}");
    assert_eq!(v["errors"][0]["line"], 4);
    let id = v["id"].as_str().unwrap().to_string();
    let (_, v) = app
        .send(
            reqwest::Method::PUT,
            t,
            &format!("/api/v1/orgs/{org}/imports/{id}/mapping"),
            json!({"skip_duplicates": true}),
        )
        .await;
    assert_eq!((v["error_count"].as_i64(), v["rows_skipped"].as_i64()), (Some(0), Some(1)), "{v}");
    let (s, _) =
        app.post(t, &format!("/api/v1/orgs/{org}/people"), json!({"family_name": "Z", "email": "b@example.org"})).await;
    assert_eq!(s, 201);
    let (_, v) = app
        .send(
            reqwest::Method::PUT,
            t,
            &format!("/api/v1/orgs/{org}/imports/{id}/mapping"),
            json!({"skip_duplicates": false}),
        )
        .await;
    assert_eq!(v["error_count"], 2, "{v}");
    // The same file, committed while it was good, fails at run time.
    let (_, v) = upload(&app, t, org, "late.csv", b"Nom,Email\nLate,late@example.org\n").await;
    let late = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        app.post(
            t,
            &format!("/api/v1/orgs/{org}/people"),
            json!({"family_name": "Early", "email": "late@example.org"})
        )
        .await
        .0,
        201
    );
    app.post(t, &format!("/api/v1/orgs/{org}/imports/{late}/commit"), json!(null)).await;
    let v = finished(&app, t, org, &late).await;
    assert_eq!(v["status"], "failed", "{v}");
    assert_eq!(v["errors"][0]["message"], "A record with this value already exists.");
    assert_eq!(names(&people(&app, t, org).await), vec![" Early", " Z"]);
});

db_test!(imports_belong_to_one_organisation_and_need_write_access, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, &f.org_slug);
    let (_, v) = upload(&app, t, org, "a.csv", b"Nom\nA\n").await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(app.post(t, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await.0, 201);
    let stranger = app.member(t, "other", "stranger@example.org", "owner").await;
    // Through the organisation it belongs to, and through the stranger's own.
    assert_eq!(app.get(&stranger, &format!("/api/v1/orgs/{org}/imports/{id}")).await.0, 404);
    assert_eq!(app.get(&stranger, &format!("/api/v1/orgs/other/imports/{id}")).await.0, 404);
    assert_eq!(app.post(&stranger, &format!("/api/v1/orgs/other/imports/{id}/commit"), json!(null)).await.0, 404);
    // A member (read only) can neither upload nor look at an import.
    let member = app.member(t, org, "reader@example.org", "member").await;
    assert_eq!(upload(&app, &member, org, "a.csv", b"Nom\nB\n").await.0, 403);
    assert_eq!(app.get(&member, &format!("/api/v1/orgs/{org}/imports/{id}")).await.0, 403);
    assert_eq!(app.get(t, &format!("/api/v1/orgs/{org}/imports/{id}")).await.0, 200);
});

db_test!(the_pages_upload_map_preview_and_follow_progress, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let org = &f.org_slug;
    app.sign_in(&app.browser, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let list = app.browser.get(app.url(&format!("/o/{org}/people"))).send().await.unwrap().text().await.unwrap();
    assert!(list.contains(&format!("/o/{org}/imports/new?kind=people")), "an Import button on the people list");
    let page = app.browser.get(app.url(&format!("/o/{org}/imports/new?kind=people"))).send().await.unwrap();
    let csrf = testkit::extract_csrf(&page.text().await.unwrap()).unwrap();
    let send = |bytes: &'static [u8]| {
        app.browser
            .post(app.url(&format!("/o/{org}/imports")))
            .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
            .body(multipart(&[
                ("_csrf", None, csrf.as_bytes()),
                ("kind", None, b"people"),
                ("file", Some("x.csv"), bytes),
            ]))
            .send()
    };
    // A file that is not a table: the form again, with the reason.
    let r = send(b"").await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("f-file-error"));
    // Without the CSRF token: refused.
    let r = app
        .browser
        .post(app.url(&format!("/o/{org}/imports")))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart(&[("file", Some("x.csv"), b"Nom\nA\n")]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = send(b"Nom;Pr\xc3\xa9nom;Ville\nCurie;Marie;Paris\nNoether;Emmy;Erlangen\n").await.unwrap();
    assert_eq!(r.status(), 303);
    let show = r.headers()["location"].to_str().unwrap().to_string();
    let html = app.browser.get(app.url(&show)).send().await.unwrap().text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("Curie") && html.contains("<option value=\"Nom\" selected>"), "{html}");
    // Map the town as the family name: the preview follows.
    let r = app
        .browser
        .post(app.url(&format!("{show}/mapping")))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("map.given_name", "Prénom"),
            ("map.family_name", "Ville"),
            ("map.email", ""),
            ("map.phone", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let html = app.browser.get(app.url(&show)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("<option value=\"Ville\" selected>"), "{html}");
    // Two fields from one column: a form error.
    let r = app
        .browser
        .post(app.url(&format!("{show}/mapping")))
        .form(&[("_csrf", csrf.as_str()), ("map.given_name", "Nom"), ("map.family_name", "Nom")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("f-map-family_name-error"));
    let r =
        app.browser.post(app.url(&format!("{show}/commit"))).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // The progress fragment htmx polls, until the result.
    let mut last = String::new();
    for _ in 0..900 {
        last = app.browser.get(app.url(&show)).header("hx-request", "true").send().await.unwrap().text().await.unwrap();
        assert!(!last.contains("<html"), "htmx gets the fragment");
        if !last.contains("hx-trigger") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(last.contains("alert-success") && last.contains(" 2"), "{last}");
    let t = &f.admin_token;
    assert_eq!(names(&people(&app, t, org).await), vec!["Emmy Erlangen", "Marie Paris"]);
});

fn run_cli(vars: &[(String, String)], args: &[&str]) -> std::process::Output {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_shrooms"));
    c.args(args).env_remove("SHROOMS_DATABASE_URL").env_remove("SHROOMS_CONFIG");
    for (k, v) in vars {
        c.env(k, v);
    }
    c.output().expect("run shrooms")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_line_imports_and_reports_bad_rows() {
    for backend in [testkit::Backend::Sqlite, testkit::Backend::Postgres] {
        if backend == testkit::Backend::Postgres && std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_ok() {
            continue;
        }
        let (cfg, dir) = testkit::test_config(backend, &crate::modules()).await.unwrap();
        let mut vars = vec![
            ("SHROOMS_DATA".to_string(), dir.display().to_string()),
            ("SHROOMS__SECURITY__ARGON2_MEMORY_KIB".to_string(), "64".to_string()),
            ("SHROOMS__LOG".to_string(), "warn".to_string()),
        ];
        if let Some(u) = &cfg.database_url {
            vars.push(("SHROOMS_DATABASE_URL".into(), u.0.clone()));
        }
        let out = run_cli(&vars, &["demo", "--scale", "3"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let bad = dir.join("bad.csv");
        std::fs::write(
            &bad,
            "Nom;Courriel\nDupont;dupont@example.org\nMartin;martin(at)example.org\n;\nDurand;DUPONT@example.org\n",
        )
        .unwrap();
        let out = run_cli(&vars, &["import", "people", "--org", "aesi", bad.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(2), "{stdout}");
        assert!(stdout.contains("line 3: column \"Courriel\""), "{stdout}");
        assert!(
            stdout.contains("line 5: column \"Courriel\" (email): This value is already on an earlier line"),
            "{stdout}"
        );
        let good = dir.join("good.csv");
        std::fs::write(&good, "Famille;Prénom;Courriel\nDupont;Jean;jean.dupont@example.org\nMartin;Léa;\n").unwrap();
        let out = run_cli(
            &vars,
            &["import", "people", "--org", "aesi", "--map", "Famille=family_name", "--dry-run", good.to_str().unwrap()],
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("2 rows would be imported"));
        let out = run_cli(
            &vars,
            &["import", "people", "--org", "aesi", "--map", "Famille=family_name", good.to_str().unwrap()],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(stderr.contains("importing: 2/2 rows"), "progress on stderr: {stderr}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("imported 2 rows"));
        let db = shrooms_core::Db::connect(&cfg).await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM people WHERE family_name IN ('Dupont', 'Martin', 'Durand') AND email IS NULL OR email = 'jean.dupont@example.org'")
            .fetch_one(db.pool())
            .await
            .unwrap();
        assert_eq!(n, 2, "{backend:?}: only the good file was imported");
        db.close().await;
    }
}
