//! Self-service: a visitor joins through the public form (page and API),
//! sent twice it is recorded once; a secretary approves; the member signs
//! in and sees their own standing, card, receipts and mandates, changes
//! their details (at once, or after approval, on the person's timeline);
//! another member sees none of it; a revoked card checks as revoked.

use crate::{field_errors, setup, url, yearly, Setup};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use testkit::{db_test, extract_csrf, TestApp, ADMIN_PASSWORD, MEMBER_PASSWORD};

fn keys(src: &str) -> BTreeSet<String> {
    src.parse::<toml::Table>().expect("valid TOML").keys().cloned().collect()
}

#[test]
fn self_service_catalogues_have_the_same_keys() {
    let en = keys(include_str!("../../i18n/self.en.toml"));
    let fr = keys(include_str!("../../i18n/self.fr.toml"));
    assert_eq!(en.symmetric_difference(&fr).collect::<Vec<_>>(), Vec::<&String>::new());
    let base = keys(include_str!("../../i18n/en.toml"));
    assert!(en.is_disjoint(&base), "a self-service key repeats one of the module's main catalogue");
}

fn today() -> String {
    jiff::Zoned::now().date().to_string()
}

/// The organisation's PDF as text (poppler's pdftotext).
pub(crate) fn pdf_text(bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("mem-self-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("doc.pdf");
    std::fs::write(&file, bytes).unwrap();
    let out = std::process::Command::new("pdftotext").arg(&file).arg("-").output().expect("pdftotext");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "pdftotext: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn download(app: &TestApp, token: &str, path: &str) -> (u16, Vec<u8>) {
    let r = app.http.get(app.url(path)).bearer_auth(token).send().await.unwrap();
    let s = r.status().as_u16();
    if s == 200 {
        assert_eq!(r.headers()["content-type"], "application/pdf");
    }
    (s, r.bytes().await.unwrap().to_vec())
}

/// Opens the join form: the yearly type and a free amount type (minimum 10.00),
/// with `checked` profile fields waiting for approval.
async fn open_form(app: &TestApp, s: &Setup, mode: &str, checked: &[&str]) -> (String, String) {
    let ind = yearly(app, s, "Individuelle").await;
    let (st, free) = app
        .post(
            &s.admin,
            &url(&s.org, "/types"),
            json!({"name": "Soutien", "kind": "individual", "fee_rule": "free_amount", "fee_cents": 1000, "period_rule": "calendar_year"}),
        )
        .await;
    assert_eq!(st, 201, "{free}");
    let free = free["id"].as_str().unwrap().to_string();
    let body = json!({"join_enabled": true, "join_mode": mode, "join_type_ids": [ind, free],
        "terms_text": "Statuts de l'association, article 3.", "payment_instructions": "Chèque à l'ordre des Amis du Jardin.",
        "checked_fields": checked});
    let (st, b) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/self-service"), body.clone()).await;
    assert_eq!(st, 200, "{b}");
    // PUT replaces the settings as a whole: a field left out is refused,
    // and what was stored stays.
    let mut partial = body.clone();
    partial.as_object_mut().unwrap().remove("terms_text");
    let (st, b) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/self-service"), partial).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "terms_text", "{b}");
    let (st, b) = app.get(&s.admin, &url(&s.org, "/self-service")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["terms_text"], body["terms_text"]);
    (ind, free)
}

fn join_body(email: &str, type_id: &str, submission: &str) -> Value {
    json!({"given_name": "Ana", "family_name": "Libre", "email": email, "phone": "06 12 34 56 78",
        "address": {"street": "3 rue Neuve", "postcode": "69001", "city": "Lyon"},
        "type_id": type_id, "consent": true, "submission_id": submission})
}

pub(crate) async fn public_get(app: &TestApp, path: &str) -> (u16, Value) {
    let r = app.http.get(app.url(path)).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn public_post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app.http.post(app.url(path)).json(&body).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn people_with_email(app: &TestApp, s: &Setup, email: &str) -> usize {
    let (st, b) = app.get(&s.admin, &format!("/api/v1/orgs/{}/people?q={email}", s.org)).await;
    assert_eq!(st, 200, "{b}");
    b["items"].as_array().unwrap().iter().filter(|p| p["email"] == email).count()
}

db_test!(a_visitor_joins_and_the_member_uses_their_space, |app: TestApp| async move {
    let s = setup(&app).await;
    let org = s.org.clone();
    // Closed until the organisation opens it.
    assert_eq!(public_get(&app, &url(&org, "/join")).await.0, 404);
    let (ind, free) = open_form(&app, &s, "approval", &["email"]).await;
    let (st, offer) = public_get(&app, &url(&org, "/join")).await;
    assert_eq!(st, 200, "{offer}");
    assert_eq!(offer["types"].as_array().unwrap().len(), 2);

    // Bad input names each field.
    let mut bad = join_body("ana@", &free, "bad-1");
    bad["consent"] = json!(false);
    bad["amount_cents"] = json!(500);
    let (st, b) = public_post(&app, &url(&org, "/join"), bad).await;
    assert_eq!(st, 422, "{b}");
    let fields = field_errors(&b);
    for f in ["email", "consent", "amount_cents"] {
        assert!(fields.iter().any(|(x, _)| x == f), "{f} in {b}");
    }

    // The page: errors shown with what was typed, then the request is received.
    let anon = testkit::browser_client();
    let html = anon.get(app.url(&format!("/o/{org}/members/join"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Statuts de"), "{html}");
    let csrf = extract_csrf(&html).expect("csrf");
    let submission = "page-submission-1";
    let mut fields = vec![
        ("_csrf", csrf.as_str()),
        ("submission_id", submission),
        ("given_name", "Ana"),
        ("family_name", "Libre"),
        ("email", "not-an-email"),
        ("street", "3 rue Neuve"),
        ("postcode", "69001"),
        ("city", "Lyon"),
        ("country", "FR"),
        ("type_id", ind.as_str()),
    ];
    let r = anon.post(app.url(&format!("/o/{org}/members/join"))).form(&fields).send().await.unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("valid email address") && html.contains("Accept the organisation"), "{html}");
    assert!(html.contains("value=\"3 rue Neuve\"") && html.contains("value=\"not-an-email\""), "what was typed stays");
    fields[4] = ("email", "Ana.Libre@Example.org");
    fields.push(("consent", "1"));
    let r = anon.post(app.url(&format!("/o/{org}/members/join"))).form(&fields).send().await.unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("Your request was received") && html.contains("Chèque à"), "{html}");
    // Sent again (the back button): the same request.
    let r = anon.post(app.url(&format!("/o/{org}/members/join"))).form(&fields).send().await.unwrap();
    let html = r.text().await.unwrap();
    assert!(html.contains("already been received"), "{html}");

    // The API, same person and type with another submission id: the same open request.
    let (st, a) = public_post(&app, &url(&org, "/join"), join_body("ana.libre@example.org", &ind, "api-1")).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!((a["status"].as_str(), a["already_recorded"].as_bool()), (Some("pending"), Some(true)));
    assert_eq!(a["fee_cents"], 3000);
    assert_eq!(a["pay_url"], Value::Null);
    let (st, again) = public_post(&app, &url(&org, "/join"), join_body("ana.libre@example.org", &ind, "api-1")).await;
    assert_eq!((st, &again["request_id"]), (200, &a["request_id"]));
    assert_eq!(people_with_email(&app, &s, "ana.libre@example.org").await, 1, "never a duplicate person");

    // The secretary was told once, under the bell (and by mail), with a link to the requests.
    let (_, bell) = app.get(&s.admin, "/api/v1/notifications").await;
    let told: Vec<&Value> =
        bell["items"].as_array().unwrap().iter().filter(|n| n["kind"] == "members.join_request").collect();
    assert_eq!(told.len(), 1, "{bell}");
    assert_eq!(told[0]["link"], format!("/o/{org}/members/requests"));
    assert!(told[0]["title"].as_str().unwrap().starts_with("Ana Libre"), "{bell}");
    assert_eq!(told[0]["body"], "ana.libre@example.org");

    // The secretary sees one request and approves it.
    let (_, reqs) = app.get(&s.admin, &url(&org, "/requests")).await;
    assert_eq!(reqs["joins"].as_array().unwrap().len(), 1, "{reqs}");
    let req = &reqs["joins"][0];
    assert_eq!(req["submitted"]["address"]["city"], "Lyon");
    let ana = req["person_id"].as_str().unwrap().to_string();
    let rid = req["id"].as_str().unwrap().to_string();
    let (st, ok) = app.post(&s.admin, &url(&org, &format!("/requests/joins/{rid}/approve")), json!({})).await;
    assert_eq!(st, 200, "{ok}");
    assert_eq!(ok["status"], "approved");
    let (st, b) = app.post(&s.admin, &url(&org, &format!("/requests/joins/{rid}/approve")), json!({})).await;
    assert_eq!(st, 409, "decided once: {b}");
    let (_, mb) = app.get(&s.admin, &url(&org, &format!("/people/{ana}"))).await;
    assert_eq!(mb["standing"]["standing"], "dues_unpaid");
    assert_eq!(mb["person"]["address"]["city"], "Lyon");
    let period = mb["periods"][0]["id"].as_str().unwrap().to_string();
    let (st, due) = app
        .post(&s.admin, &url(&org, "/dues"), json!({"person_id": ana, "period_id": period, "method": "cheque"}))
        .await;
    assert_eq!(st, 201, "{due}");

    // A gift and its tax receipt, for the member space.
    let (_, mut settings) = app.get(&s.admin, &url(&org, "/settings")).await;
    for (k, v) in [
        ("legal_name", "Les Amis"),
        ("street", "1 place"),
        ("postcode", "69001"),
        ("city", "Lyon"),
        ("object", "Jardins"),
        ("signatory", "Anne, trésorière"),
    ] {
        settings[k] = json!(v);
    }
    assert_eq!(app.send(reqwest::Method::PUT, &s.admin, &url(&org, "/settings"), settings).await.0, 200);
    let (st, d) = app
        .post(
            &s.admin,
            &url(&org, "/donations"),
            json!({"person_id": ana, "amount_cents": 5000, "received_on": today(), "method": "cheque"}),
        )
        .await;
    assert_eq!(st, 201, "{d}");
    let (st, receipt) = app
        .post(&s.admin, &url(&org, &format!("/donations/{}/tax-receipt", d["id"].as_str().unwrap())), json!({}))
        .await;
    assert_eq!(st, 201, "{receipt}");
    let receipt_id = receipt["id"].as_str().unwrap().to_string();
    let (st, m) = app
        .post(
            &s.admin,
            &url(&org, "/sepa/mandates"),
            json!({"person_id": ana, "iban": "FR7630006000011234567890189", "signed_on": today()}),
        )
        .await;
    assert_eq!(st, 201, "{m}");

    // The member signs in: their account is linked to them by its e-mail.
    let token = app.member(&s.admin, &org, "ana.libre@example.org", "member").await;
    assert_eq!(app.get(&token, &url(&org, &format!("/people/{ana}"))).await.0, 403, "no access to the module");
    let (st, me) = app.get(&token, &url(&org, "/me")).await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["membership"]["person"]["id"], ana.as_str());
    assert_eq!(me["membership"]["standing"]["standing"], "up_to_date");
    assert_eq!(me["membership"]["dues"][0]["receipt"], "RC-000001");
    assert_eq!(me["tax_receipts"][0]["id"], receipt_id.as_str());
    assert_eq!(me["mandates"][0]["iban"], "FR76 •••• •••• 0189", "the IBAN is masked");
    assert!(!me.to_string().contains("1234567890"), "no full IBAN");
    let (st, card) = download(&app, &token, &url(&org, "/me/card.pdf?lang=en")).await;
    assert_eq!(st, 200);
    let text = pdf_text(&card);
    assert!(text.contains("Ana Libre") && text.contains("Individuelle"), "{text}");
    let (st, pdf) = download(&app, &token, &url(&org, &format!("/me/tax-receipts/{receipt_id}/pdf"))).await;
    assert_eq!(st, 200);
    assert!(pdf_text(&pdf).to_lowercase().contains("libre"));
    // The page, signed in.
    let browser = testkit::browser_client();
    app.sign_in(&browser, "ana.libre@example.org", MEMBER_PASSWORD).await;
    let html = browser.get(app.url(&format!("/o/{org}/members/me"))).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("Up to date") && html.contains("RC-000001") && html.contains("FR76 •••• •••• 0189"),
        "{html}"
    );
    let r = browser.get(app.url(&format!("/o/{org}/members/me/card.pdf"))).send().await.unwrap();
    assert_eq!(r.status(), 200);

    // Details: the phone changes at once, the e-mail waits for approval.
    let (st, out) = app
        .send(
            reqwest::Method::PATCH,
            &token,
            &url(&org, "/me/profile"),
            json!({"phone": "07 00 00 00 01", "email": "ana@jardin.example"}),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["applied"], json!(["phone"]));
    assert_eq!(out["pending"]["changes"][0]["field"], "email");
    let (st, b) = app.send(reqwest::Method::PATCH, &token, &url(&org, "/me/profile"), json!({"email": "nope"})).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b).into_iter().map(|(f, _)| f).collect::<Vec<_>>(), vec!["email".to_string()]);
    let person_url = format!("/api/v1/orgs/{org}/people/{ana}");
    let (_, p) = app.get(&s.admin, &person_url).await;
    assert_eq!((p["phone"].as_str(), p["email"].as_str()), (Some("07 00 00 00 01"), Some("ana.libre@example.org")));
    let (_, reqs) = app.get(&s.admin, &url(&org, "/requests")).await;
    let change = &reqs["changes"][0];
    assert_eq!(
        (change["changes"][0]["from"].as_str(), change["changes"][0]["to"].as_str()),
        (Some("ana.libre@example.org"), Some("ana@jardin.example"))
    );
    // The secretary's page shows the diff, and approves there.
    let admin = testkit::browser_client();
    app.sign_in(&admin, "admin@example.org", ADMIN_PASSWORD).await;
    let html = admin.get(app.url(&format!("/o/{org}/members/requests"))).send().await.unwrap().text().await.unwrap();
    assert!(
        html.contains("<del>ana.libre@example.org</del>") && html.contains("<ins>ana@jardin.example</ins>"),
        "{html}"
    );
    let csrf = extract_csrf(&html).unwrap();
    let cid = change["id"].as_str().unwrap();
    let r = admin
        .post(app.url(&format!("/o/{org}/members/requests/changes/{cid}/approve")))
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, p) = app.get(&s.admin, &person_url).await;
    assert_eq!(p["email"], "ana@jardin.example");
    let (st, tl) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/timeline/person/{ana}")).await;
    assert_eq!(st, 200, "{tl}");
    let tl = tl.to_string();
    assert!(tl.contains("Profile change requested (email)") && tl.contains("Profile change approved (email)"), "{tl}");
    assert!(tl.contains("Join request approved"), "{tl}");
    // Still the same person after the e-mail changed (the link is the account).
    assert_eq!(app.get(&token, &url(&org, "/me")).await.1["membership"]["person"]["id"], ana.as_str());

    // Another member sees only their own space, never Ana's receipt.
    let (st, bo) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{org}/people"),
            json!({"given_name": "Bo", "family_name": "Autre", "email": "bo@example.org"}),
        )
        .await;
    assert_eq!(st, 201, "{bo}");
    let bo_token = app.member(&s.admin, &org, "bo@example.org", "member").await;
    let (st, bo_me) = app.get(&bo_token, &url(&org, "/me")).await;
    assert_eq!(st, 200);
    assert_eq!(bo_me["membership"]["person"]["id"], bo["id"]);
    assert_eq!(bo_me["membership"]["standing"]["standing"], "never");
    assert_eq!(download(&app, &bo_token, &url(&org, &format!("/me/tax-receipts/{receipt_id}/pdf"))).await.0, 404);
    assert_eq!(app.get(&bo_token, &url(&org, "/requests")).await.0, 403);
    assert_eq!(app.post(&bo_token, &url(&org, &format!("/requests/joins/{rid}/refuse")), json!({})).await.0, 403);
    // An account that is nobody of the directory has no space.
    let carl = app.member(&s.admin, &org, "carl@example.org", "member").await;
    assert_eq!(app.get(&carl, &url(&org, "/me")).await.0, 404);

    // The secretary revokes Ana's card: the old QR code says so, a new card works.
    let (_, mb) = app.get(&s.admin, &url(&org, &format!("/people/{ana}"))).await;
    let old = mb["card_token"].as_str().expect("printed by the member").to_string();
    let r = app
        .http
        .post(app.url(&url(&org, &format!("/people/{ana}/card/revoke"))))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, mb) = app.get(&s.admin, &url(&org, &format!("/people/{ana}"))).await;
    let new = mb["card_token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let anyone = reqwest::Client::new();
    let check = |t: String| anyone.get(app.url(&format!("/o/{org}/members/check/{t}"))).send();
    let html = check(old).await.unwrap().text().await.unwrap();
    assert!(html.contains("Revoked card") && html.contains("Ana Libre"), "{html}");
    let html = check(new).await.unwrap().text().await.unwrap();
    assert!(html.contains("Valid today"), "{html}");
    let (_, audit) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/audit?action=members.card.revoke")).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
});

db_test!(an_automatic_join_records_the_membership_once, |app: TestApp| async move {
    let s = setup(&app).await;
    let org = s.org.clone();
    let (_, free) = open_form(&app, &s, "automatic", &[]).await;
    // A person already in the directory joins: the same person, not a new one.
    let (st, p) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{org}/people"),
            json!({"given_name": "Ana", "family_name": "Libre", "email": "ana@example.org"}),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let mut body = join_body("ANA@example.org", &free, "auto-1");
    body["amount_cents"] = json!(2500);
    let (st, a) = public_post(&app, &url(&org, "/join"), body.clone()).await;
    assert_eq!(st, 201, "{a}");
    assert_eq!((a["status"].as_str(), a["fee_cents"].as_i64()), (Some("approved"), Some(2500)));
    body["submission_id"] = json!("auto-2");
    let (st, again) = public_post(&app, &url(&org, "/join"), body).await;
    assert_eq!((st, &again["request_id"]), (200, &a["request_id"]), "{again}");
    assert_eq!(people_with_email(&app, &s, "ana@example.org").await, 1);
    let (_, mb) = app.get(&s.admin, &url(&org, &format!("/people/{}", p["id"].as_str().unwrap()))).await;
    assert_eq!(mb["periods"].as_array().unwrap().len(), 1, "{mb}");
    assert_eq!(mb["periods"][0]["fee_cents"], 2500);
    // The existing person's record was not overwritten by what the visitor typed.
    assert_eq!(mb["person"]["address"]["city"], "");
    let (_, reqs) = app.get(&s.admin, &url(&org, "/requests?status=approved")).await;
    assert_eq!(reqs["joins"].as_array().unwrap().len(), 1);
});

/// The notifications of `kind` under the bell of the account of `token`.
async fn told(app: &TestApp, token: &str, kind: &str) -> Vec<Value> {
    let (st, bell) = app.get(token, "/api/v1/notifications").await;
    assert_eq!(st, 200, "{bell}");
    bell["items"].as_array().unwrap().iter().filter(|n| n["kind"] == kind).cloned().collect()
}

/// The mails of `kind` queued for `to` (the outbox the mailer delivers from).
async fn mails(app: &TestApp, s: &Setup, to: &str, kind: &str) -> Vec<Value> {
    let (st, b) = app.get(&s.admin, &format!("/api/v1/admin/outbox?to={to}")).await;
    assert_eq!(st, 200, "{b}");
    b.as_array().unwrap().iter().filter(|m| m["kind"] == kind).cloned().collect()
}

db_test!(a_join_request_notifies_the_secretaries_of_its_organisation_only, |app: TestApp| async move {
    let s = setup(&app).await;
    let org = s.org.clone();
    // A manager (reads French), staff (reads members only), a plain member,
    // and the manager of another organisation.
    let manager = app.member(&s.admin, &org, "gerant@example.org", "manager").await;
    let id: shrooms_core::ids::AccountId =
        app.get(&manager, "/api/v1/me").await.1["id"].as_str().unwrap().parse().unwrap();
    shrooms_core::identity::set_lang(&app.state.db, id, "fr").await.unwrap();
    let staff = app.member(&s.admin, &org, "staff@example.org", "staff").await;
    let plain = app.member(&s.admin, &org, "simple@example.org", "member").await;
    assert_eq!(app.post(&s.admin, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await.0, 201);
    let stranger = app.member(&s.admin, "other", "autre@example.org", "manager").await;
    let (ind, _) = open_form(&app, &s, "approval", &[]).await;

    let (st, a) = public_post(&app, &url(&org, "/join"), join_body("ana.libre@example.org", &ind, "told-1")).await;
    assert_eq!((st, a["status"].as_str()), (201, Some("pending")), "{a}");
    // Sent again, with the same submission id and with another one: the same request, told once.
    for again in ["told-1", "told-2"] {
        let (st, b) = public_post(&app, &url(&org, "/join"), join_body("ana.libre@example.org", &ind, again)).await;
        assert_eq!((st, &b["request_id"]), (200, &a["request_id"]), "{b}");
    }

    let link = format!("/o/{org}/members/requests");
    let theirs = told(&app, &manager, "members.join_request").await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["title"], "Ana Libre demande à adhérer : Individuelle", "in the manager's language");
    assert_eq!(theirs[0]["body"], "ana.libre@example.org");
    assert_eq!(theirs[0]["link"], link.as_str());
    assert_eq!(theirs[0]["read"], false);
    let owners = told(&app, &s.admin, "members.join_request").await;
    assert_eq!(owners.len(), 1, "the owner is told too: {owners:?}");
    assert_eq!(owners[0]["title"], "Ana Libre asks to join: Individuelle");
    for (who, token) in [("staff", &staff), ("a plain member", &plain), ("another organisation", &stranger)] {
        assert_eq!(told(&app, token, "members.join_request").await, Vec::<Value>::new(), "{who} is not told");
    }

    // Mailed at once (the kind's default), once, in each one's language.
    let mail = mails(&app, &s, "gerant@example.org", "notification").await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0]["subject"].as_str().unwrap().starts_with("Nouvelle notification"), "{mail:?}");
    let body = mail[0]["body_text"].as_str().unwrap();
    assert!(body.contains("Ana Libre demande à adhérer : Individuelle") && body.contains(&link), "{body}");
    assert_eq!(mails(&app, &s, "admin@example.org", "notification").await.len(), 1);
    for to in ["staff@example.org", "simple@example.org", "autre@example.org"] {
        assert_eq!(mails(&app, &s, to, "notification").await, Vec::<Value>::new(), "no mail to {to}");
    }
});

db_test!(a_profile_change_request_notifies_the_secretaries_in_their_digest, |app: TestApp| async move {
    let s = setup(&app).await;
    let org = s.org.clone();
    open_form(&app, &s, "approval", &["email"]).await;
    // Mia manages members and is a member herself; Bo is a plain member.
    crate::person(&app, &s, "Mia", "Gérante").await;
    let mia = app.member(&s.admin, &org, "mia@example.org", "manager").await;
    let bo = app.member(&s.admin, &org, "bo@example.org", "member").await;

    // A change made at once (the phone is not checked): nothing to decide, nobody told.
    let (st, out) =
        app.send(reqwest::Method::PATCH, &mia, &url(&org, "/me/profile"), json!({"phone": "07 00 00 00 02"})).await;
    assert_eq!((st, &out["applied"], &out["pending"]), (200, &json!(["phone"]), &Value::Null), "{out}");
    assert_eq!(told(&app, &s.admin, "members.change_request").await, Vec::<Value>::new());

    // The e-mail waits for approval: whoever may decide is told, not Mia who asked.
    let (st, out) =
        app.send(reqwest::Method::PATCH, &mia, &url(&org, "/me/profile"), json!({"email": "mia@jardin.example"})).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["pending"]["status"], "pending", "{out}");
    let link = format!("/o/{org}/members/requests");
    let theirs = told(&app, &s.admin, "members.change_request").await;
    assert_eq!(theirs.len(), 1, "{theirs:?}");
    assert_eq!(theirs[0]["title"], "Mia Gérante asks to change their profile: email");
    assert_eq!(theirs[0]["body"], "", "the new values stay behind the sign-in");
    assert_eq!(theirs[0]["link"], link.as_str());
    assert_eq!(told(&app, &mia, "members.change_request").await, Vec::<Value>::new(), "the requester is not told");
    assert_eq!(told(&app, &bo, "members.change_request").await, Vec::<Value>::new(), "a plain member is not told");

    // Not mailed at once: in the daily digest.
    assert_eq!(mails(&app, &s, "admin@example.org", "notification").await, Vec::<Value>::new());
    assert_eq!(shrooms_core::notify::send_digests(&app.state).await.unwrap(), 1, "one digest, the owner's");
    let digest = mails(&app, &s, "admin@example.org", "digest").await;
    assert_eq!(digest.len(), 1, "{digest:?}");
    let body = digest[0]["body_text"].as_str().unwrap();
    assert!(body.contains("Mia Gérante asks to change their profile: email") && body.contains(&link), "{body}");
    assert_eq!(mails(&app, &s, "mia@example.org", "digest").await, Vec::<Value>::new());
});

db_test!(self_service_pages_render_in_both_languages, |app: TestApp| async move {
    let s = setup(&app).await;
    open_form(&app, &s, "approval", &["address"]).await;
    let browser = testkit::browser_client();
    let csrf = app.sign_in(&browser, "admin@example.org", ADMIN_PASSWORD).await;
    let org = &s.org;
    for (lang, word) in [("fr", "Adhérer"), ("en", "Join")] {
        let r = browser
            .post(app.url("/lang"))
            .form(&[("_csrf", csrf.as_str()), ("lang", lang), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
        for p in ["/join", "/me", "/requests", "/settings/self-service", "/settings"] {
            let r = browser.get(app.url(&format!("/o/{org}/members{p}"))).send().await.unwrap();
            assert_eq!(r.status(), 200, "{p} in {lang}");
            let html = r.text().await.unwrap();
            assert!(html.contains(&format!("<html lang=\"{lang}\"")), "{p} in {lang}");
            assert!(!html.contains("members."), "an untranslated key on {p} in {lang}: {html}");
            if p == "/join" {
                assert!(html.contains(word), "{p} in {lang}");
            }
        }
    }
    // The settings form re-renders its errors: an unknown type.
    let html = browser
        .get(app.url(&format!("/o/{org}/members/settings/self-service")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = extract_csrf(&html).unwrap();
    let r = browser
        .post(app.url(&format!("/o/{org}/members/settings/self-service")))
        .form(&[("_csrf", csrf.as_str()), ("join_enabled", "1"), ("join_type_ids", "nope"), ("terms_text", "Règles")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("Règles"), "what was typed stays");
});

db_test!(forms_sent_at_once_make_one_person_and_one_request, |app: TestApp| async move {
    let s = setup(&app).await;
    let org = s.org.clone();
    let (ind, _) = open_form(&app, &s, "approval", &[]).await;
    let path = url(&org, "/join");
    let send = |i: u8| public_post(&app, &path, join_body("twice@example.org", &ind, &format!("at-once-{i}")));
    let (a, b, c, d) = tokio::join!(send(1), send(2), send(3), send(4));
    let answers = [a, b, c, d];
    let created = answers.iter().filter(|(st, _)| *st == 201).count();
    assert_eq!(created, 1, "{answers:?}");
    assert!(
        answers.iter().all(|(st, a)| (*st == 200 || *st == 201) && a["request_id"] == answers[0].1["request_id"]),
        "{answers:?}"
    );
    assert_eq!(people_with_email(&app, &s, "twice@example.org").await, 1);
    let (_, reqs) = app.get(&s.admin, &url(&org, "/requests")).await;
    assert_eq!(reqs["joins"].as_array().unwrap().len(), 1);
    // Refused with a reason: the visitor may ask again, as a new request.
    let rid = reqs["joins"][0]["id"].as_str().unwrap().to_string();
    let (st, r) = app
        .post(&s.admin, &url(&org, &format!("/requests/joins/{rid}/refuse")), json!({"note": "Incomplete address"}))
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!((r["status"].as_str(), r["note"].as_str()), (Some("refused"), Some("Incomplete address")));
    let (st, a) = public_post(&app, &path, join_body("twice@example.org", &ind, "after-refusal")).await;
    assert_eq!((st, a["status"].as_str()), (201, Some("pending")), "{a}");
    assert_ne!(a["request_id"], r["id"]);
    let (_, refused) = app.get(&s.admin, &url(&org, "/requests?status=refused")).await;
    assert_eq!(refused["joins"].as_array().unwrap().len(), 1);
});

db_test!(a_secretary_links_a_shared_family_address_by_hand, |app: TestApp| async move {
    let s = setup(&app).await;
    let org = s.org.clone();
    let people = format!("/api/v1/orgs/{org}/people");
    // Two people of a family share one address: the first visit cannot choose.
    let mut family = Vec::new();
    for given in ["Ana", "Léo"] {
        let (st, p) = app
            .post(
                &s.admin,
                &people,
                json!({"given_name": given, "family_name": "Libre", "email": "famille.libre@example.org"}),
            )
            .await;
        assert_eq!(st, 201, "{p}");
        family.push(p["id"].as_str().unwrap().to_string());
    }
    let token = app.member(&s.admin, &org, "famille.libre@example.org", "member").await;
    let (st, b) = app.get(&token, &url(&org, "/me")).await;
    assert_eq!(st, 404, "{b}");
    let browser = testkit::browser_client();
    app.sign_in(&browser, "famille.libre@example.org", MEMBER_PASSWORD).await;
    let space = app.url(&format!("/o/{org}/members/me"));
    let html = browser.get(&space).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Your account is not linked to a member"), "{html}");
    for id in &family {
        assert_eq!(app.get(&s.admin, &format!("{people}/{id}")).await.1["account_id"], Value::Null);
    }

    // The secretary links the account to Léo by its address.
    let (st, p) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &format!("{people}/{}/account", family[1]),
            json!({"email": "Famille.Libre@example.org"}),
        )
        .await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["account_email"], "famille.libre@example.org");

    // The member space is Léo's now, in the API and on the page.
    let (st, me) = app.get(&token, &url(&org, "/me")).await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["membership"]["person"]["id"], family[1].as_str());
    assert_eq!(me["membership"]["person"]["given_name"], "Léo");
    let html = browser.get(&space).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Léo Libre") && !html.contains("not linked"), "{html}");
    assert_eq!(app.get(&s.admin, &format!("{people}/{}", family[0])).await.1["account_id"], Value::Null);
});
