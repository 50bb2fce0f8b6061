//! Donations and tax receipts: the ledger entry of a gift, the receipt's
//! continuous number and content, once per gift, the yearly batch by mail
//! with its download link, the yearly totals; the page's donor search over
//! the whole directory; receipts pseudonymised by the retention job once
//! their six years have passed.

use crate::{audited, field_errors, person, setup, url, year, Setup};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

async fn identity(app: &TestApp, s: &Setup) {
    let (_, mut b) = app.get(&s.admin, &url(&s.org, "/settings")).await;
    b["legal_name"] = json!("Les Amis du Jardin");
    b["street"] = json!("12 rue des Tilleuls");
    b["postcode"] = json!("69003");
    b["city"] = json!("Lyon");
    b["object"] = json!("Jardins partagés et éducation à l'environnement");
    b["signatory"] = json!("Anne Martin, trésorière");
    let (st, b) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/settings"), b).await;
    assert_eq!(st, 200, "{b}");
}

async fn donate(app: &TestApp, s: &Setup, body: Value) -> (u16, Value) {
    app.post(&s.admin, &url(&s.org, "/donations"), body).await
}

async fn pdf(app: &TestApp, token: Option<&str>, path: &str) -> (u16, String, Vec<u8>) {
    let mut r = app.http.get(app.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await.unwrap();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    (r.status().as_u16(), ct, r.bytes().await.unwrap().to_vec())
}

fn has(bytes: &[u8], text: &str) -> bool {
    bytes.windows(text.len()).any(|w| w == text.as_bytes())
}

db_test!(a_donor_receives_a_tax_receipt_once, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ana = person(&app, &s, "Ana", "Donor").await;
    let (st, d) = donate(&app, &s, json!({"person_id": ana, "amount_cents": 15000, "received_on": format!("{y}-03-10"), "method": "cheque", "request_key": "d1"})).await;
    assert_eq!(st, 201, "{d}");
    let (st, again) = donate(&app, &s, json!({"person_id": ana, "amount_cents": 15000, "received_on": format!("{y}-03-10"), "method": "cheque", "request_key": "d1"})).await;
    assert_eq!((st, &again["id"]), (200, &d["id"]), "sent twice, recorded once");
    let (_, e) = app
        .get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries/{}", s.org, d["entry_id"].as_str().unwrap()))
        .await;
    assert_eq!(e["lines"][0]["account"], "512");
    assert_eq!(e["lines"][1]["account"], "7541");
    assert_eq!(e["lines"][1]["credit"], "150.00");
    // No receipt before the organisation's identity is filled in.
    let did = d["id"].as_str().unwrap();
    let (st, b) = app.post(&s.admin, &url(&s.org, &format!("/donations/{did}/tax-receipt")), json!({})).await;
    assert_eq!(st, 409, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("settings"), "{b}");
    identity(&app, &s).await;
    let (st, r) = app.post(&s.admin, &url(&s.org, &format!("/donations/{did}/tax-receipt")), json!({})).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(r["reference"], format!("{y}-000001"));
    assert_eq!(r["donor_kind"], "individual");
    assert_eq!(r["amount_cents"], 15000);
    let (st, b) = app.post(&s.admin, &url(&s.org, &format!("/donations/{did}/tax-receipt")), json!({})).await;
    assert_eq!(st, 422, "{b}");
    assert!(field_errors(&b)[0].1.contains(&format!("{y}-000001")), "{b}");
    // The document: Cerfa 11580's content, the amount in words, article 200.
    let (st, ct, body) =
        pdf(&app, Some(&s.admin), &url(&s.org, &format!("/tax-receipts/{}/pdf", r["id"].as_str().unwrap()))).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "application/pdf");
    assert!(body.starts_with(b"%PDF-"));
    for text in [
        "11580",
        "200 du code g",
        "cent cinquante euros",
        "Les Amis du Jardin",
        "Ana Donor",
        "Jardins partag",
        "Ch\u{e8}que",
    ] {
        let latin1: Vec<u8> = text.chars().map(|c| c as u32 as u8).collect();
        assert!(body.windows(latin1.len()).any(|w| w == latin1.as_slice()), "{text} missing from the receipt");
    }
    assert!(has(&body, &format!("{y}-000001")));
});

db_test!(companies_need_a_valid_siren_and_get_article_238_bis, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    identity(&app, &s).await;
    let boss = person(&app, &s, "Bea", "Company").await;
    let (st, b) = donate(&app, &s, json!({"person_id": boss, "donor_kind": "company", "company_name": "Menuiserie Dupont", "amount_cents": 100000})).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "siren");
    let (st, b) = donate(&app, &s, json!({"person_id": boss, "donor_kind": "company", "company_name": "Menuiserie Dupont", "siren": "732 829 321", "amount_cents": 100000})).await;
    assert_eq!(st, 422, "{b}");
    assert!(field_errors(&b)[0].1.contains("not valid"));
    let (st, d) = donate(
        &app,
        &s,
        json!({"person_id": boss, "donor_kind": "company", "company_name": "Menuiserie Dupont", "siren": "732 829 320", "legal_form": "SARL",
            "amount_cents": 100000, "received_on": format!("{y}-05-02"), "method": "transfer", "form": "private_deed"}),
    )
    .await;
    assert_eq!(st, 201, "{d}");
    assert_eq!(d["siren"], "732829320");
    // A gift in kind: no ledger entry.
    let (st, k) = donate(
        &app,
        &s,
        json!({"person_id": boss, "amount_cents": 4000, "nature": "in_kind", "received_on": format!("{y}-06-01")}),
    )
    .await;
    assert_eq!(st, 201, "{k}");
    assert!(k["entry_id"].is_null());
    let (st, r) = app
        .post(&s.admin, &url(&s.org, &format!("/donations/{}/tax-receipt", d["id"].as_str().unwrap())), json!({}))
        .await;
    assert_eq!(st, 201, "{r}");
    let (_, _, body) =
        pdf(&app, Some(&s.admin), &url(&s.org, &format!("/tax-receipts/{}/pdf", r["id"].as_str().unwrap()))).await;
    for text in ["16216", "238 bis du code g", "732829320", "Menuiserie Dupont", "mille euros"] {
        assert!(has(&body, text), "{text} missing from the receipt");
    }
    // A date outside the open fiscal year is refused by the books: nothing is kept.
    let (st, b) =
        donate(&app, &s, json!({"person_id": boss, "amount_cents": 100, "received_on": format!("{}-12-31", y - 1)}))
            .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "received_on");
    let (_, list) = app.get(&s.admin, &url(&s.org, "/donations")).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
});

db_test!(the_yearly_batch_mails_receipts_and_totals_add_up, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    identity(&app, &s).await;
    let ana = person(&app, &s, "Ana", "Batch").await;
    let bo = person(&app, &s, "Bo", "Batch").await;
    let (st, nomail) = app
        .post(&s.admin, &format!("/api/v1/orgs/{}/people", s.org), json!({"given_name": "Cy", "family_name": "Nomail"}))
        .await;
    assert_eq!(st, 201);
    let cy = nomail["id"].as_str().unwrap().to_string();
    for (p, amount, day) in [(&ana, 2000, "01-15"), (&ana, 2000, "02-15"), (&bo, 5000, "03-01"), (&cy, 1000, "04-01")] {
        let (st, b) = donate(
            &app,
            &s,
            json!({"person_id": p, "amount_cents": amount, "received_on": format!("{y}-{day}"), "recurring": true}),
        )
        .await;
        assert_eq!(st, 201, "{b}");
    }
    // Bo already has a receipt for his gift: the batch leaves it.
    let (_, list) = app.get(&s.admin, &url(&s.org, &format!("/donations?person_id={bo}"))).await;
    let (st, first) = app
        .post(&s.admin, &url(&s.org, &format!("/donations/{}/tax-receipt", list[0]["id"].as_str().unwrap())), json!({}))
        .await;
    assert_eq!(st, 201, "{first}");
    let (st, report) = app.post(&s.admin, &url(&s.org, "/tax-receipts/batch"), json!({"year": y, "email": true})).await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["issued"], 2, "{report}");
    assert_eq!(report["amount_cents"], 5000);
    assert_eq!(report["emailed"], 1);
    assert_eq!(report["without_email"], json!(["Cy Nomail"]));
    let (_, receipts) = app.get(&s.admin, &url(&s.org, &format!("/tax-receipts?year={y}"))).await;
    let refs: Vec<&str> = receipts.as_array().unwrap().iter().map(|r| r["reference"].as_str().unwrap()).collect();
    assert_eq!(refs, [format!("{y}-000003"), format!("{y}-000002"), format!("{y}-000001")]);
    let ana_receipt = receipts.as_array().unwrap().iter().find(|r| r["person_id"] == json!(ana)).unwrap();
    assert_eq!(ana_receipt["donations"].as_array().unwrap().len(), 2, "one receipt for the year's gifts");
    // The mail carries a personal link that opens the receipt without signing in.
    let (st, mails) = app.get(&s.admin, "/api/v1/admin/outbox?to=ana@example.org").await;
    assert_eq!(st, 200, "{mails}");
    assert_eq!(mails.as_array().unwrap().len(), 1, "{mails}");
    let body = mails[0]["body_text"].as_str().unwrap();
    let link = body.split_whitespace().find(|w| w.starts_with("http")).unwrap();
    // The link is built from the instance's public address; the path is what matters here.
    let path = &link[link.find("/o/").unwrap()..];
    let (st, ct, doc) = pdf(&app, None, path).await;
    assert_eq!((st, ct.as_str()), (200, "application/pdf"));
    assert!(has(&doc, "Ana Batch"));
    let (st, _, _) = pdf(&app, None, &format!("/o/{}/members/receipts/not-a-token", s.org)).await;
    assert_eq!(st, 404);
    // Run again: nothing new, nothing mailed twice.
    let (_, again) = app.post(&s.admin, &url(&s.org, "/tax-receipts/batch"), json!({"year": y, "email": true})).await;
    assert_eq!(again["issued"], 0);
    let (_, mails) = app.get(&s.admin, "/api/v1/admin/outbox?to=ana@example.org").await;
    assert_eq!(mails.as_array().unwrap().len(), 1);
    // What the organisation declares.
    let (st, t) = app.get(&s.admin, &url(&s.org, &format!("/tax-receipts/totals?year={y}"))).await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(
        t,
        json!({"year": y, "receipts": 3, "amount_cents": 10000, "individuals": 3, "companies": 0, "not_receipted": 0})
    );
    assert_eq!(audited(&app, &s, "members.tax_receipt.issue").await.len(), 3);
    let (st, b) = app.post(&s.admin, &url(&s.org, "/tax-receipts/batch"), json!({"year": 20})).await;
    assert_eq!(st, 422, "{b}");
});

async fn page(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    let r = client.get(app.url(path)).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn form(app: &TestApp, client: &reqwest::Client, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let r = client.post(app.url(path)).form(fields).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

db_test!(the_form_finds_and_records_a_donor_who_never_joined, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let org = &s.org;
    let ind = crate::yearly(&app, &s, "Individuelle").await;
    let member = person(&app, &s, "Ana", "Adherente").await;
    assert_eq!(crate::join(&app, &s, &member, json!({"type_id": ind, "starts_on": format!("{y}-01-01")})).await.0, 201);
    // A neighbour and a company: people of the directory, never members.
    let nadia = person(&app, &s, "Nadia", "Voisine").await;
    let (st, c) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{org}/people"),
            json!({"given_name": "", "family_name": "Menuiserie Dupont"}),
        )
        .await;
    assert_eq!(st, 201, "{c}");
    let company = c["id"].as_str().unwrap().to_string();
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, "admin@example.org", testkit::ADMIN_PASSWORD).await;
    let r =
        browser.post(app.url("/lang")).form(&[("_csrf", csrf.as_str()), ("lang", "en"), ("next", "/")]).send().await;
    assert_eq!(r.unwrap().status(), 303);
    let path = format!("/o/{org}/members/donations");

    // The page loads no one before a search: not the members, not the directory.
    let (st, html) = page(&app, &browser, &path).await;
    assert_eq!(st, 200, "{html}");
    assert!(!html.contains("Adherente") && !html.contains("Voisine"), "{html}");
    assert!(html.contains("name=\"find\""), "a search field: {html}");
    // One search for the gift form, one for the recurring gift form, each
    // swapping its own list of people.
    for (input, choices) in [("don-find", "donor-choices"), ("plan-find", "plan-donor-choices")] {
        assert!(html.contains(&format!("id=\"{input}\"")), "{input}: {html}");
        assert!(html.contains(&format!("hx-select=\"#{choices}\"")), "{choices}: {html}");
    }
    assert!(html.contains(&format!("action=\"/o/{}/members/donations#donate-h\"", s.org)), "{html}");
    assert!(html.contains(&format!("hx-get=\"/o/{}/members/donations\"", s.org)), "{html}");
    // The search finds the neighbour (and only her), as a choice of the form.
    let (st, html) = page(&app, &browser, &format!("{path}?find=voisi")).await;
    assert_eq!(st, 200, "{html}");
    assert!(html.contains("Nadia Voisine") && html.contains(&format!("value=\"{nadia}\"")), "{html}");
    assert!(!html.contains("Adherente"), "{html}");
    // Typed in the field (htmx): the same choices, without the year's lists.
    let r = browser.get(app.url(&format!("{path}?find=nadia"))).header("HX-Request", "true").send().await.unwrap();
    assert_eq!(r.headers().get("vary").and_then(|v| v.to_str().ok()), Some("HX-Request"));
    let html = r.text().await.unwrap();
    assert!(html.contains("id=\"donor-choices\"") && html.contains(&format!("value=\"{nadia}\"")), "{html}");
    // Nobody matches: the way to add them to the directory.
    let (_, html) = page(&app, &browser, &format!("{path}?find=zzyzx")).await;
    assert!(
        html.contains("Nobody of the directory matches") && html.contains(&format!("/o/{org}/people/new")),
        "{html}"
    );

    // No donor chosen: the form says so, nothing is recorded.
    let (st, html) =
        form(&app, &browser, &path, &[("_csrf", csrf.as_str()), ("amount", "40"), ("method", "cheque")]).await;
    assert_eq!(st, 422);
    assert!(html.contains("Choose the donor"), "{html}");
    // The gift of the neighbour, through the form.
    let day = format!("{y}-02-03");
    let (st, html) = form(
        &app,
        &browser,
        &path,
        &[
            ("_csrf", csrf.as_str()),
            ("find", "voisi"),
            ("person_id", nadia.as_str()),
            ("amount", "40"),
            ("method", "cheque"),
            ("received_on", day.as_str()),
            ("request_key", "page-gift-1"),
        ],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    // A company's gift missing its SIREN: the form comes back with the donor still chosen.
    let (st, html) = form(
        &app,
        &browser,
        &path,
        &[
            ("_csrf", csrf.as_str()),
            ("person_id", company.as_str()),
            ("donor_kind", "company"),
            ("company_name", "Menuiserie Dupont"),
            ("amount", "500"),
        ],
    )
    .await;
    assert_eq!(st, 422);
    assert!(html.contains("SIREN") && html.contains(&format!("value=\"{company}\" checked")), "{html}");
    let (st, html) = form(
        &app,
        &browser,
        &path,
        &[
            ("_csrf", csrf.as_str()),
            ("person_id", company.as_str()),
            ("donor_kind", "company"),
            ("company_name", "Menuiserie Dupont"),
            ("siren", "732 829 320"),
            ("legal_form", "SARL"),
            ("amount", "500"),
            ("method", "transfer"),
            ("received_on", day.as_str()),
        ],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    let (_, list) = app.get(&s.admin, &url(org, &format!("/donations?year={y}"))).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    let gift = list.iter().find(|d| d["person_id"] == json!(nadia)).expect("the neighbour's gift");
    assert_eq!(
        (&gift["donor_name"], &gift["amount_cents"], &gift["donor_kind"]),
        (&json!("Nadia Voisine"), &json!(4000), &json!("individual"))
    );
    let firm = list.iter().find(|d| d["person_id"] == json!(company)).expect("the company's gift");
    assert_eq!((&firm["donor_kind"], &firm["siren"]), (&json!("company"), &json!("732829320")));
    // Listed on the page, linked to the donor's page (where the receipt's address is kept).
    let (_, html) = page(&app, &browser, &path).await;
    assert!(html.contains(&format!("/o/{org}/members/people/{nadia}\">Nadia Voisine</a>")), "{html}");
});

/// Moves a receipt and the gifts it covers back in time, as if issued then.
async fn backdate(app: &TestApp, receipt: &str, gifts_year: i64, issued_on: &str) {
    let db = app.state.db.pool();
    sqlx::query("UPDATE mem_tax_receipts SET year = $1, issued_on = $2 WHERE id = $3")
        .bind(gifts_year)
        .bind(issued_on)
        .bind(receipt)
        .execute(db)
        .await
        .unwrap();
    sqlx::query("UPDATE mem_donations SET received_on = $1 WHERE receipt_id = $2")
        .bind(format!("{gifts_year:04}-06-15"))
        .bind(receipt)
        .execute(db)
        .await
        .unwrap();
}

db_test!(receipts_past_their_six_years_are_pseudonymised_by_the_retention_job, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year() as i64;
    let org = &s.org;
    identity(&app, &s).await;
    let olga = person(&app, &s, "Olga", "Ancienne").await;
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(org, &format!("/people/{olga}/profile")),
            json!({"address": {"street": "7 impasse des Ormes", "postcode": "69004", "city": "Lyon"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let bea = person(&app, &s, "Bea", "Entreprise").await;
    let rita = person(&app, &s, "Rita", "Recente").await;
    let sam = person(&app, &s, "Sam", "Sixieme").await;
    // One receipt each: issued 7 years ago (Olga, Bea's company), 5 years ago
    // (Rita), and on the last day of the year 6 years ago (Sam: its six years
    // from the end of that year run until the end of this one).
    let mut receipts = Vec::new();
    for (p, company, amount) in [(&olga, false, 15000), (&bea, true, 100000), (&rita, false, 5000), (&sam, false, 2500)]
    {
        let mut body =
            json!({"person_id": p, "amount_cents": amount, "received_on": format!("{y}-01-10"), "method": "cheque"});
        if company {
            body = json!({"person_id": p, "donor_kind": "company", "company_name": "Menuiserie Dupont", "siren": "732829320",
                "legal_form": "SARL", "amount_cents": amount, "received_on": format!("{y}-01-10"), "method": "transfer"});
        }
        let (st, d) = donate(&app, &s, body).await;
        assert_eq!(st, 201, "{d}");
        let (st, r) = app
            .post(&s.admin, &url(org, &format!("/donations/{}/tax-receipt", d["id"].as_str().unwrap())), json!({}))
            .await;
        assert_eq!(st, 201, "{r}");
        receipts.push(r["id"].as_str().unwrap().to_string());
    }
    let old_year = y - 8;
    backdate(&app, &receipts[0], old_year, &format!("{}-01-20", y - 7)).await;
    backdate(&app, &receipts[1], old_year, &format!("{}-02-01", y - 7)).await;
    backdate(&app, &receipts[2], y - 6, &format!("{}-01-20", y - 5)).await;
    backdate(&app, &receipts[3], y - 7, &format!("{}-12-31", y - 6)).await;
    // Olga's was mailed: a download link and the address it went to.
    let token = "olga-old-receipt-link";
    sqlx::query("UPDATE mem_tax_receipts SET token = $1, emailed_to = 'olga@example.org' WHERE id = $2")
        .bind(shrooms_core::crypto::token_hash(token))
        .bind(&receipts[0])
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let link = format!("/o/{org}/members/receipts/{token}");
    assert_eq!(pdf(&app, None, &link).await.0, 200);
    let totals = |year: i64| url(org, &format!("/tax-receipts/totals?year={year}"));
    let (_, totals_before) = app.get(&s.admin, &totals(old_year)).await;
    assert_eq!(totals_before["receipts"], 2, "{totals_before}");
    assert_eq!(totals_before["amount_cents"], 115000, "{totals_before}");
    let (_, old_before) = app.get(&s.admin, &url(org, &format!("/tax-receipts?year={old_year}"))).await;
    let (_, recent_before) = app.get(&s.admin, &url(org, &format!("/tax-receipts?year={}", y - 6))).await;
    let (_, sixth_before) = app.get(&s.admin, &url(org, &format!("/tax-receipts?year={}", y - 7))).await;

    // The daily job, as the schedule runs it (the retention of former members is off).
    let org_id: String = sqlx::query_scalar("SELECT id FROM orgs WHERE slug = $1")
        .bind(org)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    shrooms_core::jobs::enqueue(
        &mut tx,
        &shrooms_members::privacy::RETENTION,
        Some(org_id.parse().unwrap()),
        json!({}),
        None,
        0,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let mut runs = Vec::new();
    for _ in 0..300 {
        runs = audited(&app, &s, "members.retention.run").await;
        if !runs.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(runs.len(), 1, "the job recorded its run");
    let run = &runs[0]["after"];
    assert_eq!(run["receipts"]["pseudonymised"], 2, "{run}");
    assert_eq!(run["receipts"]["issued_before"], format!("{}-01-01", y - 6), "{run}");
    assert_eq!(run["receipts"]["pseudonyms"].as_array().unwrap().len(), 2, "one per donor: {run}");
    let audit = audited(&app, &s, "members.tax_receipt.pseudonymise").await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0]["after"]["count"], 2, "{}", audit[0]);
    for entry in [runs[0].to_string(), audit[0].to_string()] {
        for name in ["Olga", "Ancienne", "Menuiserie", "732829320", "Ormes"] {
            assert!(!entry.contains(name), "{name} in the audit entry {entry}");
        }
    }

    // The old receipts: the donor gone, numbers, dates and amounts kept.
    let (_, old_after) = app.get(&s.admin, &url(org, &format!("/tax-receipts?year={old_year}"))).await;
    let (before, after) = (old_before.as_array().unwrap(), old_after.as_array().unwrap());
    assert_eq!(after.len(), 2);
    for (b, a) in before.iter().zip(after) {
        for k in ["id", "number", "reference", "year", "donor_kind", "amount_cents", "issued_on", "batch"] {
            assert_eq!(a[k], b[k], "{k} kept");
        }
        let pseudonym = a["donor"]["name"].as_str().unwrap();
        assert!(pseudonym.starts_with("Erased ") && run["receipts"]["pseudonyms"].to_string().contains(pseudonym));
        assert_eq!(
            (&a["person_id"], &a["emailed_to"], &a["donor"]["siren"], &a["donor"]["email"]),
            (&json!(""), &Value::Null, &Value::Null, &Value::Null),
            "{a}"
        );
        assert_eq!(a["donor"]["address"], json!({"street": "", "postcode": "", "city": "", "country": ""}), "{a}");
        assert_eq!(a["donations"].as_array().unwrap().len(), 1);
        let (gb, ga) = (&b["donations"][0], &a["donations"][0]);
        for k in
            ["id", "amount_cents", "received_on", "form", "nature", "method", "donor_kind", "entry_id", "receipt_id"]
        {
            assert_eq!(ga[k], gb[k], "{k} of the gift kept");
        }
        assert_eq!((&ga["donor_name"], &ga["person_id"], &ga["siren"]), (&json!(pseudonym), &json!(""), &Value::Null));
    }
    let company = after.iter().find(|r| r["donor_kind"] == "company").unwrap();
    assert_eq!(company["donor"]["legal_form"], "SARL", "a company's legal form is not personal");
    let text = old_after.to_string();
    for gone in ["Olga", "Ancienne", "Ormes", "Menuiserie", "732829320", "olga@example.org"] {
        assert!(!text.contains(gone), "{gone} still in {text}");
    }
    // Their documents show the pseudonym; the mailed link no longer opens.
    let olga_receipt = after.iter().find(|r| r["id"] == json!(receipts[0])).unwrap();
    let (st, _, doc) = pdf(&app, Some(&s.admin), &url(org, &format!("/tax-receipts/{}/pdf", receipts[0]))).await;
    assert_eq!(st, 200);
    assert!(
        has(&doc, olga_receipt["reference"].as_str().unwrap())
            && has(&doc, olga_receipt["donor"]["name"].as_str().unwrap())
    );
    assert!(!has(&doc, "Olga") && !has(&doc, "Ancienne") && !has(&doc, "Ormes"));
    assert_eq!(pdf(&app, None, &link).await.0, 404);
    // What the organisation declared for that year still adds up.
    let (_, totals_after) = app.get(&s.admin, &totals(old_year)).await;
    assert_eq!(totals_after, totals_before);
    // Younger receipts are untouched: 5 years, and 6 years not yet ended.
    let (_, recent_after) = app.get(&s.admin, &url(org, &format!("/tax-receipts?year={}", y - 6))).await;
    assert_eq!(recent_after, recent_before);
    assert_eq!(recent_after[0]["donor"]["name"], "Rita Recente");
    let (_, sixth_after) = app.get(&s.admin, &url(org, &format!("/tax-receipts?year={}", y - 7))).await;
    assert_eq!(sixth_after, sixth_before);
    assert_eq!(sixth_after[0]["person_id"], json!(sam));

    // Run again: nothing to do, nothing changes, nothing more audited.
    let (st, again) = app.post(&s.admin, &url(org, "/retention/run"), json!({})).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["receipts"]["pseudonymised"], 0, "{again}");
    let (_, old_again) = app.get(&s.admin, &url(org, &format!("/tax-receipts?year={old_year}"))).await;
    assert_eq!(old_again, old_after);
    assert_eq!(app.get(&s.admin, &totals(old_year)).await.1, totals_before);
    assert_eq!(audited(&app, &s, "members.tax_receipt.pseudonymise").await.len(), 1);
    assert_eq!(audited(&app, &s, "members.retention.run").await.len(), 1);
});

// ---------- recurring gifts ----------

/// Today in the organisation's time zone, as the server counts days.
async fn today(app: &TestApp, s: &Setup) -> jiff::civil::Date {
    let (st, o) = app.get(&s.admin, &format!("/api/v1/orgs/{}", s.org)).await;
    assert_eq!(st, 200, "{o}");
    let zone = jiff::tz::TimeZone::get(o["timezone"].as_str().unwrap()).unwrap();
    jiff::Timestamp::now().to_zoned(zone).date()
}

/// The most recent 31st at least a month before today, and the last day of the month after it.
fn a_past_31st(today: jiff::civil::Date) -> (jiff::civil::Date, jiff::civil::Date) {
    use jiff::ToSpan;
    let mut month = today.first_of_month().checked_sub(1.month()).unwrap();
    loop {
        month = month.checked_sub(1.month()).unwrap();
        if month.days_in_month() == 31 {
            let day = month.last_of_month();
            let next = month.checked_add(1.month()).unwrap().last_of_month();
            return (day, next);
        }
    }
}

async fn plan(app: &TestApp, s: &Setup, body: Value) -> (u16, Value) {
    app.post(&s.admin, &url(&s.org, "/gift-plans"), body).await
}

async fn receive(app: &TestApp, s: &Setup, id: &str, body: Value) -> (u16, Value) {
    app.post(&s.admin, &url(&s.org, &format!("/gift-plans/{id}/receive")), body).await
}

async fn plans(app: &TestApp, s: &Setup, query: &str) -> Vec<Value> {
    let (st, b) = app.get(&s.admin, &url(&s.org, &format!("/gift-plans{query}"))).await;
    assert_eq!(st, 200, "{b}");
    b.as_array().unwrap().clone()
}

async fn all_donations(app: &TestApp, s: &Setup) -> Vec<Value> {
    let (st, b) = app.get(&s.admin, &url(&s.org, "/donations")).await;
    assert_eq!(st, 200, "{b}");
    b.as_array().unwrap().clone()
}

db_test!(donations_a_late_standing_order_is_received_once_and_moves_to_the_next_month_end, |app: TestApp| async move {
    let s = setup(&app).await;
    // A neighbour, never a member.
    let ana = person(&app, &s, "Ana", "Voisine").await;
    let today = today(&app, &s).await;
    let (first, next) = a_past_31st(today);
    let (st, p) = plan(
        &app,
        &s,
        json!({"person_id": ana, "amount_cents": 2500, "frequency": "monthly", "method": "transfer", "first_on": first.to_string()}),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    assert_eq!((&p["next_on"], &p["status"], &p["late"]), (&json!(first.to_string()), &json!("active"), &json!(true)));
    assert_eq!(p["donor_name"], "Ana Voisine");
    let id = p["id"].as_str().unwrap();
    let listed = plans(&app, &s, "?status=active").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["late"], true, "expected on {first}: late");

    let (st, r) = receive(&app, &s, id, json!({"request_key": "standing-1"})).await;
    assert_eq!(st, 201, "{r}");
    let d = &r["donation"];
    assert_eq!((&d["recurring"], &d["amount_cents"], &d["method"]), (&json!(true), &json!(2500), &json!("transfer")));
    assert_eq!(d["received_on"], today.to_string());
    assert_eq!(r["plan"]["next_on"], next.to_string(), "the 31st falls on the last day of the next month");
    assert_eq!(r["plan"]["received_count"], 1);
    // Its ledger entry, as a gift recorded by hand.
    let (st, e) = app
        .get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries/{}", s.org, d["entry_id"].as_str().unwrap()))
        .await;
    assert_eq!(st, 200, "{e}");
    assert_eq!((&e["lines"][0]["account"], &e["lines"][0]["debit"]), (&json!("512"), &json!("25.00")));
    assert_eq!((&e["lines"][1]["account"], &e["lines"][1]["credit"]), (&json!("7541"), &json!("25.00")));

    // Sent again with the same key: the same gift, the plan not moved twice.
    let (st, again) = receive(&app, &s, id, json!({"request_key": "standing-1"})).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["donation"]["id"], d["id"]);
    let list = all_donations(&app, &s).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!((&list[0]["id"], &list[0]["recurring"]), (&d["id"], &json!(true)));
    assert_eq!(plans(&app, &s, "").await[0]["next_on"], next.to_string());
    assert_eq!(audited(&app, &s, "members.gift_plan.receive").await.len(), 1);
    assert_eq!(audited(&app, &s, "members.gift_plan.create").await.len(), 1);
    assert_eq!(audited(&app, &s, "members.donation.record").await.len(), 1);

    // A gift of another amount, received yesterday: the plan moves on from where it was.
    // The day before, unless that is last year (the books are opened for this year).
    let yesterday = today.yesterday().unwrap().max(today.first_of_year());
    let (st, r) = receive(&app, &s, id, json!({"amount_cents": 3000, "received_on": yesterday.to_string()})).await;
    assert_eq!(st, 201, "{r}");
    assert_eq!(
        (&r["donation"]["amount_cents"], &r["donation"]["received_on"]),
        (&json!(3000), &json!(yesterday.to_string()))
    );
    use jiff::ToSpan;
    let third = next.first_of_month().checked_add(1.month()).unwrap();
    let third = jiff::civil::Date::new(third.year(), third.month(), 31.min(third.days_in_month())).unwrap();
    assert_eq!(r["plan"]["next_on"], third.to_string(), "back to the 31st where the month has one");
});

db_test!(donations_gift_plans_refuse_bad_input_and_record_nothing, |app: TestApp| async move {
    let s = setup(&app).await;
    let ana = person(&app, &s, "Ana", "Voisine").await;
    let today = today(&app, &s).await;
    let good = json!({"person_id": ana, "amount_cents": 1000, "frequency": "quarterly"});
    for (change, field) in [
        (json!({"amount_cents": 0}), "amount_cents"),
        (json!({"person_id": "01890000-0000-7000-8000-000000000000"}), "person_id"),
        (json!({"frequency": "weekly"}), "frequency"),
        (json!({"method": "direct_debit"}), "method"),
        (json!({"first_on": "2026-02-30"}), "first_on"),
        (json!({"first_on": "2026-03-01", "ends_on": "2026-02-01"}), "ends_on"),
    ] {
        let mut body = good.clone();
        body.as_object_mut().unwrap().extend(change.as_object().unwrap().clone());
        let (st, b) = plan(&app, &s, body).await;
        assert_eq!(st, 422, "{change}: {b}");
        assert_eq!(field_errors(&b).iter().map(|e| e.0.as_str()).collect::<Vec<_>>(), [field], "{b}");
    }
    assert!(plans(&app, &s, "").await.is_empty());
    assert!(audited(&app, &s, "members.gift_plan.create").await.is_empty());

    let (st, p) = plan(&app, &s, good).await;
    assert_eq!(st, 201, "{p}");
    let id = p["id"].as_str().unwrap();
    assert_eq!(p["late"], false, "expected today: not late");
    let tomorrow = today.tomorrow().unwrap().tomorrow().unwrap();
    let (st, b) = receive(&app, &s, id, json!({"received_on": tomorrow.to_string()})).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "received_on");
    assert!(field_errors(&b)[0].1.contains("future"), "{b}");
    let (st, b) = receive(&app, &s, id, json!({"amount_cents": 0})).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "amount_cents");
    let (st, b) = receive(&app, &s, id, json!([])).await;
    assert_eq!(st, 422, "{b}");
    assert!(all_donations(&app, &s).await.is_empty());
    assert_eq!(plans(&app, &s, "").await[0]["next_on"], today.to_string(), "the plan did not move");
    let (st, b) = app.get(&s.admin, &url(&s.org, "/gift-plans?status=gone")).await;
    assert_eq!(st, 422, "{b}");
});

db_test!(donations_a_stopped_plan_expects_nothing_and_other_orgs_never_see_it, |app: TestApp| async move {
    let s = setup(&app).await;
    let ana = person(&app, &s, "Ana", "Voisine").await;
    let (st, p) =
        plan(&app, &s, json!({"person_id": ana, "amount_cents": 1000, "frequency": "yearly", "method": "cheque"}))
            .await;
    assert_eq!(st, 201, "{p}");
    let id = p["id"].as_str().unwrap();

    // Another organisation of the same administrator: the plan is not there.
    assert_eq!(app.post(&s.admin, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await.0, 201);
    let other = |path: &str| format!("/api/v1/orgs/other/members/gift-plans{path}");
    let (st, b) = app.post(&s.admin, &other(&format!("/{id}/receive")), json!({})).await;
    assert_eq!(st, 404, "{b}");
    let (st, b) = app.post(&s.admin, &other(&format!("/{id}/stop")), json!({})).await;
    assert_eq!(st, 404, "{b}");
    let (st, b) = app.get(&s.admin, &other("")).await;
    assert_eq!((st, b), (200, json!([])));
    assert_eq!(plans(&app, &s, "?status=active").await.len(), 1, "still active here");
    let (st, b) = receive(&app, &s, "01890000-0000-7000-8000-000000000000", json!({})).await;
    assert_eq!(st, 404, "{b}");

    let (st, stopped) = app.post(&s.admin, &url(&s.org, &format!("/gift-plans/{id}/stop")), json!({})).await;
    assert_eq!(st, 200, "{stopped}");
    assert_eq!(stopped["status"], "stopped");
    assert!(plans(&app, &s, "?status=active").await.is_empty());
    assert_eq!(plans(&app, &s, "?status=stopped").await.len(), 1);
    let (st, b) = receive(&app, &s, id, json!({})).await;
    assert_eq!(st, 409, "{b}");
    assert!(b["detail"].as_str().unwrap_or("").contains("stopped"), "{b}");
    assert!(all_donations(&app, &s).await.is_empty());
    assert_eq!(audited(&app, &s, "members.gift_plan.stop").await.len(), 1);
});

db_test!(donations_the_page_shows_late_gifts_and_records_one_in_a_click, |app: TestApp| async move {
    let s = setup(&app).await;
    let org = &s.org;
    let nadia = person(&app, &s, "Nadia", "Voisine").await;
    let today = today(&app, &s).await;
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, "admin@example.org", testkit::ADMIN_PASSWORD).await;
    let r =
        browser.post(app.url("/lang")).form(&[("_csrf", csrf.as_str()), ("lang", "en"), ("next", "/")]).send().await;
    assert_eq!(r.unwrap().status(), 303);
    let path = format!("/o/{org}/members/donations");
    let (_, html) = page(&app, &browser, &path).await;
    assert!(html.contains("Recurring gifts") && html.contains("No recurring gift expected."), "{html}");

    // Planned through the page's form, the donor found by the search; a bad amount first.
    let (_, html) = page(&app, &browser, &format!("{path}?find=voisi")).await;
    assert!(html.contains("id=\"plan-donor-choices\"") && html.contains(&format!("value=\"{nadia}\"")), "{html}");
    let week_ago = today.checked_sub(jiff::ToSpan::days(7)).unwrap().to_string();
    let plan_path = format!("/o/{org}/members/gift-plans");
    let (st, html) = form(
        &app,
        &browser,
        &plan_path,
        &[("_csrf", csrf.as_str()), ("person_id", nadia.as_str()), ("amount", "0"), ("frequency", "monthly")],
    )
    .await;
    assert_eq!(st, 422);
    assert!(html.contains("The amount must be more than zero."), "{html}");
    let (st, html) = form(
        &app,
        &browser,
        &plan_path,
        &[
            ("_csrf", csrf.as_str()),
            ("person_id", nadia.as_str()),
            ("amount", "15"),
            ("frequency", "monthly"),
            ("method", "transfer"),
            ("first_on", week_ago.as_str()),
        ],
    )
    .await;
    assert_eq!(st, 303, "{html}");
    let id = plans(&app, &s, "").await[0]["id"].as_str().unwrap().to_string();

    // Listed, late, with its Received button.
    let (_, html) = page(&app, &browser, &path).await;
    let receive_path = format!("/o/{org}/members/gift-plans/{id}/receive");
    assert!(html.contains("Nadia Voisine") && html.contains(&week_ago), "{html}");
    assert!(html.contains(">Late</strong>"), "{html}");
    // The button's form (minijinja escapes the slashes of the action).
    let receive_action = format!("action=\"{}\"", receive_path.replace('/', "&#x2f;"));
    assert!(html.contains(&receive_action), "{html}");
    let (st, html) =
        form(&app, &browser, &receive_path, &[("_csrf", csrf.as_str()), ("request_key", "page-click-1")]).await;
    assert_eq!(st, 303, "{html}");
    // Clicked twice: one gift.
    let (st, _) =
        form(&app, &browser, &receive_path, &[("_csrf", csrf.as_str()), ("request_key", "page-click-1")]).await;
    assert_eq!(st, 303);
    let list = all_donations(&app, &s).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!((&list[0]["amount_cents"], &list[0]["recurring"]), (&json!(1500), &json!(true)));
    let (_, html) = page(&app, &browser, &path).await;
    assert!(!html.contains(">Late</strong>"), "expected next month now: {html}");
    // Without the CSRF token, nothing.
    let (st, _) = form(&app, &browser, &receive_path, &[("request_key", "page-click-2")]).await;
    assert_eq!(st, 403);
    // Stopped from the page: no longer listed.
    let (st, _) =
        form(&app, &browser, &format!("/o/{org}/members/gift-plans/{id}/stop"), &[("_csrf", csrf.as_str())]).await;
    assert_eq!(st, 303);
    let (_, html) = page(&app, &browser, &path).await;
    assert!(!html.contains(&receive_action) && html.contains("No recurring gift expected."), "{html}");
});
