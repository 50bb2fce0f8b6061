//! The documents pages in a browser's shoes: every page renders in English
//! and French, a customer and an invoice are made through the forms (lines
//! added without JavaScript), a bad form shows its errors, a validated
//! invoice shows its number and a billing run its progress.

use crate::{inv, ready_org};
use serde_json::json;
use testkit::{db_test, TestApp};

async fn page(app: &TestApp, path: String) -> (u16, String) {
    let r = app.browser.get(app.url(&path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.text().await.unwrap())
}

async fn post(app: &TestApp, csrf: &str, path: String, mut form: Vec<(&'static str, String)>) -> (u16, String, String) {
    form.push(("_csrf", csrf.to_string()));
    let r = app.browser.post(app.url(&path)).form(&form).send().await.unwrap();
    let s = r.status().as_u16();
    let loc = r.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
    (s, loc, r.text().await.unwrap())
}

db_test!(the_invoicing_pages_work_without_javascript_in_both_languages, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, o) = (&f.admin_token, f.org_slug.as_str());
    ready_org(&app, t, o).await;
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let base = format!("/o/{o}/invoicing");
    for lang in ["en", "fr"] {
        let r = client.post(app.url("/lang")).form(&[("_csrf", csrf.as_str()), ("lang", lang)]).send().await.unwrap();
        assert!(r.status().is_redirection() || r.status().is_success());
        for p in [
            "",
            "/documents/new?kind=invoice",
            "/documents/new?kind=quote",
            "/customers",
            "/catalogue",
            "/vat-rates",
            "/settings",
            "/subscriptions",
            "/billing-runs",
        ] {
            let (s, html) = page(&app, format!("{base}{p}")).await;
            assert_eq!(s, 200, "{p}: {html}");
            assert!(html.contains(&format!("<html lang=\"{lang}\"")), "{p} in {lang}");
            // An unknown key is printed as itself: none may show.
            assert!(
                !html.contains(">inv.") && !html.contains(" inv.") && !html.contains("\"inv."),
                "{p}: an untranslated key in {lang}"
            );
        }
    }
    let (_, html) = page(&app, format!("{base}/vat-rates")).await;
    assert!(html.contains("TVA non applicable, art. 293 B du CGI") && html.contains("2013-12-31"), "seeded rates");

    // A customer through the form; a bad SIREN is shown next to its field.
    let (s, _, html) = post(
        &app,
        &csrf,
        format!("{base}/customers"),
        vec![("kind", "business".into()), ("name", "Café des Arts".into()), ("siren", "123".into())],
    )
    .await;
    assert_eq!(s, 422);
    assert!(html.contains("SIREN") && html.contains("Café des Arts"), "the form keeps what was typed");
    let (s, loc, _) = post(
        &app,
        &csrf,
        format!("{base}/customers"),
        vec![
            ("kind", "business".into()),
            ("name", "Café des Arts".into()),
            ("siren", "552100554".into()),
            ("address", "1 rue Haute".into()),
            ("postcode", "33000".into()),
            ("city", "Bordeaux".into()),
            ("country", "FR".into()),
            ("lang", "fr".into()),
        ],
    )
    .await;
    assert_eq!(s, 303);
    let customer_id = loc.rsplit('/').next().unwrap().to_string();

    // An invoice: "add a line" re-renders the form with one more row, nothing saved.
    let mut form = vec![
        ("kind", "invoice".to_string()),
        ("customer_id", customer_id.clone()),
        ("issue_date", "2025-04-02".into()),
    ];
    for (name, qty, price) in [("Repair", "2", "45,50"), ("", "", "")] {
        form.extend([
            ("line_product", String::new()),
            ("line_name", name.into()),
            ("line_quantity", qty.into()),
            ("line_price", price.into()),
            ("line_vat", "FR-20".into()),
            ("line_discount", String::new()),
        ]);
    }
    let mut add = form.clone();
    add.push(("action", "add_line".into()));
    let (s, _, html) = post(&app, &csrf, format!("{base}/documents"), add).await;
    assert_eq!(s, 200);
    assert_eq!(html.matches("name=\"line_name\"").count(), 3);
    assert!(html.contains("value=\"Repair\""));
    let (_, page_json) = app.get(t, &inv(o, "/documents")).await;
    assert_eq!(page_json["totals"]["count"], 0, "adding a line saves nothing");
    let mut bad = form.clone();
    bad[4].1 = "Repair".into();
    bad[8].1 = "XX".into(); // the VAT code of the first line
    let (s, _, html) = post(&app, &csrf, format!("{base}/documents"), bad).await;
    assert_eq!(s, 422, "{html}");
    assert!(html.contains("XX"), "{html}");
    form.push(("action", "save".into()));
    let (s, loc, _) = post(&app, &csrf, format!("{base}/documents"), form).await;
    assert_eq!(s, 303);
    let (s, html) = page(&app, loc.clone()).await;
    assert_eq!(s, 200);
    assert!(html.contains("91.00") && html.contains("109.20"), "2 × 45.50 + 20 %: {html}");
    let (s, loc2, _) = post(&app, &csrf, format!("{loc}/do/validate"), vec![]).await;
    assert_eq!((s, loc2.as_str()), (303, loc.as_str()));
    let (_, html) = page(&app, loc.clone()).await;
    assert!(html.contains("F2025-00001") && html.contains("Factur-X"), "{html}");
    let r = client.get(app.url(&format!("{loc}/file/pdf"))).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/pdf");
    // Validating again is refused on the page, with the reason.
    let (s, _, html) = post(&app, &csrf, format!("{loc}/do/validate"), vec![]).await;
    assert_eq!(s, 409, "{html}");

    // A billing run from its page: the run page shows the progress.
    let (s, _) = app
        .post(t, &inv(o, "/pending-items"), json!({"customer_id": customer_id, "source_module": "psa", "source_ref": "t-1", "name": "Time", "unit_price_cents": 5000, "vat_code": "FR-20"}))
        .await;
    assert_eq!(s, 201);
    let (s, run_loc, _) =
        post(&app, &csrf, format!("{base}/billing-runs"), vec![("run_date", "2025-04-30".into())]).await;
    assert_eq!(s, 303);
    let mut done = false;
    for _ in 0..600 {
        let (_, html) = page(&app, run_loc.clone()).await;
        assert!(html.contains("<progress"));
        if html.contains("terminée") || html.contains(">done<") || html.contains("— done") {
            done = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(done, "the run page shows the end of the run");
});
