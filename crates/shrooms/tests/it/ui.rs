//! Pages, as a browser uses them: first-run setup, sign-in with and without
//! second factor, CSRF, language, people, organisation switching.

use testkit::db_test;
use testkit::{extract_csrf, TestApp, ADMIN_PASSWORD};

// Templates are compiled on first use: every one of every module must
// compile, whether or not another test renders it.
db_test!(every_template_of_every_module_compiles, |app: TestApp| async move {
    let t = &app.state.templates;
    assert!(t.names().len() > 100, "{} templates", t.names().len());
    assert!(t.names().iter().any(|n| n == "members_person.html"), "module templates are there");
    assert_eq!(t.compile_all(), Vec::<String>::new());
});

db_test!(first_run_setup_in_the_browser, |app: TestApp| async move {
    let b = &app.browser;
    let r = b.get(app.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/setup");
    let html = b.get(app.url("/setup")).send().await.unwrap().text().await.unwrap();
    let csrf = extract_csrf(&html).expect("csrf field");
    assert!(html.contains("name=\"instance_name\"") && html.contains("name=\"admin_password\""));
    // Without the CSRF token, nothing happens.
    let r = b.post(app.url("/setup")).form(&[("instance_name", "X")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // A bad form comes back with its errors and the values typed.
    let r = b
        .post(app.url("/setup"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("instance_name", "Atelier"),
            ("default_lang", "fr"),
            ("admin_name", "Zoé"),
            ("admin_email", "zoe@"),
            ("admin_password", "short"),
            ("first_org", "Repair Café"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("value=\"Atelier\""), "typed values are kept");
    assert!(html.contains("aria-invalid"), "fields are marked invalid");
    assert!(!app.state.setup_done().await);
    // A good one creates the instance, the administrator and the first organisation, and signs in.
    let r = b
        .post(app.url("/setup"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("instance_name", "Atelier"),
            ("default_lang", "fr"),
            ("admin_name", "Zoé"),
            ("admin_email", "zoe@example.org"),
            ("admin_password", "long enough password"),
            ("first_org", "Repair Café"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(to, "/o/repair-cafe/");
    let r = b.get(app.url(&to)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Repair Café"));
    // Setup is done once.
    let r = b.get(app.url("/setup")).send().await.unwrap();
    assert_eq!(r.status(), 303);
});

db_test!(sign_in_with_second_factor_in_the_browser, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (_, en) = app.post(&f.admin_token, "/api/v1/me/totp", serde_json::json!(null)).await;
    let secret = shrooms_core::crypto::base32_decode(en["secret"].as_str().unwrap()).unwrap();
    let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64 / 30;
    let step = now();
    assert_eq!(
        app.post(
            &f.admin_token,
            "/api/v1/me/totp/confirm",
            serde_json::json!({"code": shrooms_core::crypto::totp_code(&secret, step)})
        )
        .await
        .0,
        204
    );

    let b = &app.browser;
    let csrf = app.csrf_from("/login").await;
    // Wrong password: the form again, with a message, and the email kept.
    let r = b
        .post(app.url("/login"))
        .form(&[("_csrf", csrf.as_str()), ("email", "admin@example.org"), ("password", "nope nope nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("admin@example.org"));
    let r = b
        .post(app.url("/login"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("email", "admin@example.org"),
            ("password", ADMIN_PASSWORD),
            ("next", "/o/first-org/people"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login/totp"));
    // The password alone does not open pages.
    let r = b.get(app.url("/o/first-org/people")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let html = b.get(app.url("/login/totp?next=/o/first-org/people")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("name=\"code\""));
    let r = b
        .post(app.url("/login/totp"))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("code", shrooms_core::crypto::totp_code(&secret, step + 1).as_str()),
            ("next", "/o/first-org/people"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/o/first-org/people");
    assert_eq!(b.get(app.url("/o/first-org/people")).send().await.unwrap().status(), 200);
});

db_test!(people_pages_and_language, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let b = &app.browser;
    app.sign_in(b, "admin@example.org", ADMIN_PASSWORD).await;
    let new = format!("/o/{}/people/new", f.org_slug);
    let csrf = app.csrf_from(&new).await;
    // Invalid email: the form comes back with the error, nothing is created.
    let r = b
        .post(app.url(&format!("/o/{}/people", f.org_slug)))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("given_name", "Grace"),
            ("family_name", "Hopper"),
            ("email", "grace-at-navy"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("value=\"Grace\""));
    let (_, list) = app.get(&f.admin_token, &format!("/api/v1/orgs/{}/people?q=hopper", f.org_slug)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "nothing was created");
    let r = b
        .post(app.url(&format!("/o/{}/people", f.org_slug)))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("given_name", "Grace"),
            ("family_name", "Hopper"),
            ("email", "grace@navy.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let show = r.headers()["location"].to_str().unwrap().to_string();
    assert!(b.get(app.url(&show)).send().await.unwrap().text().await.unwrap().contains("grace@navy.example"));
    // htmx search returns only the rows.
    let r =
        b.get(app.url(&format!("/o/{}/people?q=hopp", f.org_slug))).header("hx-request", "true").send().await.unwrap();
    let rows = r.text().await.unwrap();
    assert!(rows.contains("Hopper") && !rows.contains("<html"));
    // Language: the browser's by default, the person's choice after.
    let html = b
        .get(app.url(&format!("/o/{}/people", f.org_slug)))
        .header("accept-language", "fr-FR,fr;q=0.9")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("lang=\"en\""), "the account chose en at setup");
    let r =
        b.post(app.url("/lang")).form(&[("_csrf", csrf.as_str()), ("lang", "fr"), ("next", "/")]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let html = b.get(app.url(&format!("/o/{}/people", f.org_slug))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("lang=\"fr\""));
    // Another organisation's pages are not found, like a missing one.
    assert_eq!(
        app.post(&f.admin_token, "/api/v1/orgs", serde_json::json!({"name": "Other", "slug": "other"})).await.0,
        201
    );
    let m = app.member(&f.admin_token, &f.org_slug, "staff@example.org", "staff").await;
    let _ = m;
    let staff = testkit::browser_client();
    app.sign_in(&staff, "staff@example.org", testkit::MEMBER_PASSWORD).await;
    assert_eq!(staff.get(app.url("/o/other/people")).send().await.unwrap().status(), 404);
    assert_eq!(staff.get(app.url(&format!("/o/{}/people", f.org_slug))).send().await.unwrap().status(), 200);
    // Staff may not open settings or the audit log of their own organisation.
    assert_eq!(staff.get(app.url(&format!("/o/{}/settings", f.org_slug))).send().await.unwrap().status(), 403);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_theme_folder_overrides_templates_and_static_files() {
    let modules = crate::modules();
    let (mut cfg, dir) = testkit::test_config(testkit::Backend::Sqlite, &modules).await.unwrap();
    let theme = dir.join("theme");
    std::fs::create_dir_all(theme.join("templates")).unwrap();
    std::fs::create_dir_all(theme.join("static")).unwrap();
    // An integrator changes the sign-in page and the stylesheet, no compiler involved.
    let login = shrooms_core::core_module::TEMPLATES.iter().find(|(n, _)| *n == "login.html").unwrap().1;
    std::fs::write(
        theme.join("templates/login.html"),
        login.replace("{% block content %}", "{% block content %}<p>Bienvenue à l'Atelier</p>"),
    )
    .unwrap();
    std::fs::write(theme.join("static/app.css"), "body { background: hotpink; }").unwrap();
    cfg.theme = Some(theme);
    let app = TestApp::spawn_with(cfg, dir, testkit::Backend::Sqlite, modules).await;
    app.bootstrap().await;
    let html = app.http.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Bienvenue à l&#x27;Atelier") || html.contains("Bienvenue à l'Atelier"), "{html}");
    let css = app.http.get(app.url("/static/app.css")).send().await.unwrap().text().await.unwrap();
    assert_eq!(css, "body { background: hotpink; }");
    // Files the theme does not override come from the binary.
    let r = app.http.get(app.url("/static/vendor/htmx/htmx.min.js")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

db_test!(second_factor_enrolment_page_shows_a_qr_code, |app: TestApp| async move {
    app.bootstrap().await;
    let b = &app.browser;
    let csrf = app.sign_in(b, "admin@example.org", ADMIN_PASSWORD).await;
    let r = b.post(app.url("/account/totp/begin")).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    // (minijinja escapes "/" in attributes; browsers decode it)
    let html = b.get(app.url("/account/security")).send().await.unwrap().text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains("src=\"data:image/svg+xml;base64,"), "no QR code on the enrolment page");
    assert!(html.contains("otpauth://totp/"));
});

db_test!(administrators_see_and_retry_failed_jobs_in_the_browser, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let id = {
        let mut tx = app.state.db.begin().await.unwrap();
        let id = shrooms_core::jobs::enqueue(
            &mut tx,
            &crate::modules::FAIL,
            Some(f.org_id.parse().unwrap()),
            serde_json::json!({}),
            None,
            0,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let b = &app.browser;
    let csrf = app.sign_in(b, "admin@example.org", ADMIN_PASSWORD).await;
    let mut html = String::new();
    for _ in 0..1200 {
        html = b.get(app.url("/admin/jobs?status=dead")).send().await.unwrap().text().await.unwrap();
        if html.contains(&id) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(html.contains("notes.fail") && html.contains("attempt 3 failed"), "{html}");
    let r = b.post(app.url(&format!("/admin/jobs/{id}/retry"))).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, audit) = app.get(&f.admin_token, "/api/v1/admin/audit?action=job.retry").await;
    assert_eq!(audit["items"][0]["entity_id"], id.as_str());
});
