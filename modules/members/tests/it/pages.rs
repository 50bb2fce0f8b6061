//! The pages, in both languages, and their forms: errors shown on the form,
//! a form sent twice recorded once. The catalogues have the same keys and
//! cover every key the templates use.

use crate::{person, setup, url, year, yearly};
use serde_json::json;
use std::collections::BTreeSet;
use testkit::{db_test, TestApp, ADMIN_PASSWORD};

fn keys(src: &str) -> BTreeSet<String> {
    src.parse::<toml::Table>().expect("valid TOML").keys().cloned().collect()
}

#[test]
fn catalogues_have_the_same_keys_and_cover_the_templates() {
    let mut en = keys(include_str!("../../i18n/en.toml"));
    let mut fr = keys(include_str!("../../i18n/fr.toml"));
    en.extend(keys(include_str!("../../i18n/self.en.toml")));
    fr.extend(keys(include_str!("../../i18n/self.fr.toml")));
    assert_eq!(en.symmetric_difference(&fr).collect::<Vec<_>>(), Vec::<&String>::new());
    let mut missing = Vec::new();
    for (name, src) in shrooms_members::TEMPLATES {
        for part in src.split("t(\"").skip(1) {
            let Some(end) = part.find('"') else { continue };
            let key = &part[..end];
            let dynamic = part[end..].starts_with("\" ~");
            if key.starts_with("members.") && !dynamic && !en.contains(key) {
                missing.push(format!("{name}: {key}"));
            }
            // A key built from a value: every value the code can give must be there.
            if dynamic && !en.iter().any(|k| k.starts_with(key)) {
                missing.push(format!("{name}: {key}…"));
            }
        }
    }
    for prefix in ["members.standing.", "members.explain."] {
        for s in ["up_to_date", "dues_unpaid", "lapsed", "resigned", "excluded", "not_started", "never"] {
            if !en.contains(&format!("{prefix}{s}")) {
                missing.push(format!("{prefix}{s}"));
            }
        }
    }
    for s in ["joined", "renewed", "lapsed", "resigned", "excluded"] {
        if !en.contains(&format!("members.event.{s}")) {
            missing.push(format!("members.event.{s}"));
        }
    }
    assert!(missing.is_empty(), "keys used but not translated: {missing:?}");
}

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let r = client.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn form(app: &TestApp, client: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let r = client.post(app.url(path)).form(fields).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

db_test!(pages_show_standing_and_forms_report_errors, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let ana = person(&app, &s, "Ana", "Pages").await;
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, "admin@example.org", ADMIN_PASSWORD).await;
    let org = &s.org;
    for (lang, title) in [("fr", "Adhérents"), ("en", "Members")] {
        let r = browser
            .post(app.url("/lang"))
            .form(&[("_csrf", csrf.as_str()), ("lang", lang), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        for p in ["", "/types", "/households", "/dues", "/donations", "/sepa", "/settings", &format!("/people/{ana}")] {
            let (st, html) = page(&app, &browser, &format!("/o/{org}/members{p}")).await;
            assert_eq!(st, 200, "{p} in {lang}: {html}");
            assert!(html.contains(&format!("<html lang=\"{lang}\"")) && html.contains(title), "{p} in {lang}");
            assert!(!html.contains("members."), "an untranslated key on {p} in {lang}");
            if lang == "fr" && p.starts_with("/people") {
                assert!(html.contains("Cette personne n&#x27;a jamais adhéré"), "{html}");
            }
        }
    }
    // Joining through the form, sent twice with its key: one period.
    let join_path = format!("/o/{org}/members/people/{ana}/join");
    let start = format!("{y}-01-01");
    let fields = [
        ("_csrf", csrf.as_str()),
        ("type_id", ind.as_str()),
        ("starts_on", start.as_str()),
        ("request_key", "page-key-1"),
    ];
    assert_eq!(form(&app, &browser, &join_path, &fields).await.0, 303);
    assert_eq!(form(&app, &browser, &join_path, &fields).await.0, 303);
    let (_, m) = app.get(&s.admin, &url(org, &format!("/people/{ana}"))).await;
    assert_eq!(m["periods"].as_array().unwrap().len(), 1, "{m}");
    // A join that overlaps: the form again, with the message.
    let mid = format!("{y}-05-01");
    let (st, html) = form(
        &app,
        &browser,
        &join_path,
        &[("_csrf", csrf.as_str()), ("type_id", ind.as_str()), ("starts_on", mid.as_str())],
    )
    .await;
    assert_eq!(st, 422);
    assert!(html.contains("overlaps the period"), "{html}");
    // Paying through the form: a receipt, shown on the page; a bad amount is explained.
    let (st, html) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/people/{ana}/pay"),
        &[
            ("_csrf", csrf.as_str()),
            ("period_id", m["periods"][0]["id"].as_str().unwrap()),
            ("amount", "12,345"),
            ("method", "cheque"),
        ],
    )
    .await;
    assert_eq!(st, 422);
    assert!(html.contains("two decimals") || html.contains("decimal"), "{html}");
    let (st, _) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/people/{ana}/pay"),
        &[
            ("_csrf", csrf.as_str()),
            ("period_id", m["periods"][0]["id"].as_str().unwrap()),
            ("method", "cheque"),
            ("paid_on", start.as_str()),
        ],
    )
    .await;
    assert_eq!(st, 303);
    let (_, html) = page(&app, &browser, &format!("/o/{org}/members/people/{ana}")).await;
    assert!(html.contains("RC-000001") && html.contains("Up to date"), "{html}");
    // The list as a file, with its filters.
    let r = browser
        .get(app.url(&format!("/o/{org}/members/list/export.csv?q=ana&standing=up_to_date")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert!(csv.contains("Ana Pages") && csv.contains("up_to_date") && csv.contains("30.00"), "{csv}");
    let r = browser.get(app.url(&format!("/o/{org}/members/list/export.csv?standing=lapsed"))).send().await.unwrap();
    assert!(!r.text().await.unwrap().contains("Ana Pages"));
    let r = app.http.get(app.url(&url(org, "/directory/export.ods"))).bearer_auth(&s.admin).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.bytes().await.unwrap().starts_with(b"PK"));
    // Types: a fee by tier written one per line.
    let (st, html) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/types"),
        &[
            ("_csrf", csrf.as_str()),
            ("name", "Familles"),
            ("kind", "family"),
            ("fee_rule", "tiers"),
            ("tiers", "Petit quotient: 10\nGrand quotient 40"),
            ("period_rule", "school_year"),
        ],
    )
    .await;
    assert_eq!(st, 422);
    assert!(html.contains("Line 2"), "{html}");
    let (st, _) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/types"),
        &[
            ("_csrf", csrf.as_str()),
            ("name", "Familles"),
            ("kind", "family"),
            ("fee_rule", "tiers"),
            ("tiers", "Petit quotient: 10\nGrand quotient: 40,50"),
            ("period_rule", "school_year"),
            ("school_start_month", "9"),
            ("voting", "1"),
        ],
    )
    .await;
    assert_eq!(st, 303);
    let (_, types) = app.get(&s.admin, &url(org, "/types")).await;
    let fam = types.as_array().unwrap().iter().find(|t| t["name"] == "Familles").unwrap().clone();
    assert_eq!(fam["tiers"][1], json!({"label": "Grand quotient", "fee_cents": 4050}));
    // The invoice path is explained, not silently accepted.
    let (st, html) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/settings"),
        &[
            ("_csrf", csrf.as_str()),
            ("dues_path", "invoice"),
            ("dues_account", "7561"),
            ("bank_account", "512"),
            ("cash_account", "531"),
        ],
    )
    .await;
    assert_eq!(st, 409);
    assert!(html.contains("invoicing module"), "{html}");
    // Without the CSRF token, nothing.
    let (st, _) = form(&app, &browser, &join_path, &[("type_id", ind.as_str())]).await;
    assert_eq!(st, 403);
});

db_test!(sepa_and_donation_forms_explain_bad_input, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let ana = person(&app, &s, "Ana", "Forms").await;
    assert_eq!(crate::join(&app, &s, &ana, json!({"type_id": ind, "starts_on": format!("{y}-01-01")})).await.0, 201);
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, "admin@example.org", ADMIN_PASSWORD).await;
    let org = &s.org;
    // A wrong IBAN checksum, then no signature date: the form says which.
    let (st, html) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/sepa/mandates"),
        &[
            ("_csrf", csrf.as_str()),
            ("person_id", ana.as_str()),
            ("iban", "FR76 3000 6000 0112 3456 7890 188"),
            ("signed_on", "2026-01-10"),
        ],
    )
    .await;
    assert_eq!(st, 422);
    assert!(html.contains("check digits do not match"), "{html}");
    let (st, html) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/sepa/mandates"),
        &[("_csrf", csrf.as_str()), ("person_id", ana.as_str()), ("iban", "FR76 3000 6000 0112 3456 7890 189")],
    )
    .await;
    assert_eq!(st, 422);
    assert!(html.contains("date the debtor signed it"), "{html}");
    let (st, _) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/sepa/mandates"),
        &[
            ("_csrf", csrf.as_str()),
            ("person_id", ana.as_str()),
            ("iban", "FR76 3000 6000 0112 3456 7890 189"),
            ("signed_on", "2026-01-10"),
        ],
    )
    .await;
    assert_eq!(st, 303);
    let (_, html) = page(&app, &browser, &format!("/o/{org}/members/sepa")).await;
    assert!(html.contains("ADH-000001") && html.contains("FRST"), "{html}");
    // A company's gift without SIREN, then a good one.
    let (st, html) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/donations"),
        &[
            ("_csrf", csrf.as_str()),
            ("person_id", ana.as_str()),
            ("donor_kind", "company"),
            ("company_name", "Dupont SARL"),
            ("amount", "250"),
            ("method", "transfer"),
        ],
    )
    .await;
    assert_eq!(st, 422);
    assert!(html.contains("SIREN"), "{html}");
    let (st, _) = form(
        &app,
        &browser,
        &format!("/o/{org}/members/donations"),
        &[
            ("_csrf", csrf.as_str()),
            ("person_id", ana.as_str()),
            ("amount", "25,50"),
            ("method", "cash"),
            ("received_on", &format!("{y}-02-01")),
        ],
    )
    .await;
    assert_eq!(st, 303);
    let (_, list) = app.get(&s.admin, &url(org, "/donations")).await;
    assert_eq!(list[0]["amount_cents"], 2550);
});

db_test!(a_membership_card_is_checked_by_its_qr_link, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let ana = person(&app, &s, "Ana", "Card").await;
    let bo = person(&app, &s, "Bo", "Card").await;
    let mut periods = Vec::new();
    for p in [&ana, &bo] {
        let (st, per) = crate::join(&app, &s, p, json!({"type_id": ind, "starts_on": format!("{y}-01-01")})).await;
        assert_eq!(st, 201, "{per}");
        periods.push(per["id"].as_str().unwrap().to_string());
    }
    let (st, b) = app
        .post(&s.admin, &url(&s.org, "/dues"), json!({"person_id": ana, "period_id": periods[0], "method": "cash"}))
        .await;
    assert_eq!(st, 201, "{b}");
    let browser = testkit::browser_client();
    app.sign_in(&browser, "admin@example.org", ADMIN_PASSWORD).await;
    // The card's secret, as the member's page gives it once a card is printed.
    let token_of = |p: String| {
        let u = url(&s.org, &format!("/people/{p}"));
        let a = &app;
        let admin = s.admin.clone();
        async move { a.get(&admin, &u).await.1["card_token"].as_str().map(String::from) }
    };
    assert_eq!(token_of(ana.clone()).await, None);
    let link = |t: String| format!("/o/{}/members/check/{t}", s.org);
    let card = |p: String| {
        let b = browser.clone();
        let u = app.url(&format!("/o/{}/members/people/{p}/card.pdf", s.org));
        async move {
            let r = b.get(u).send().await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["content-type"], "application/pdf");
            r.bytes().await.unwrap().to_vec()
        }
    };
    let ana_card = card(ana.clone()).await;
    // The QR code: hundreds of dark squares besides the brand bar.
    assert!(ana_card.windows(5).filter(|w| w == b" re f").count() > 100, "the QR code is drawn");
    let token = token_of(ana.clone()).await.expect("a card token");
    assert!(token.len() >= 40, "unguessable");
    card(ana.clone()).await;
    assert_eq!(token_of(ana.clone()).await.as_deref(), Some(token.as_str()), "the same card each time");
    let ana_link = link(token);
    // Anyone scanning the code sees whether the card is valid today.
    let anyone = reqwest::Client::new();
    let html = anyone.get(app.url(&ana_link)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Valid today") && html.contains("Ana Card"), "{html}");
    card(bo.clone()).await;
    let bo_link = link(token_of(bo.clone()).await.unwrap());
    let html = anyone.get(app.url(&bo_link)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Not valid today") && html.contains("Dues unpaid"), "{html}");
    let fake = format!("/o/{}/members/check/not-a-real-token", s.org);
    let html = anyone.get(app.url(&fake)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("not a membership card"), "{html}");
});
