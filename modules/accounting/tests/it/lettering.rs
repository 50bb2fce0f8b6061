//! Lettering a client's account: complete and partial letters, the checks
//! that keep a letter to one account and one third party, unlettering, and
//! the letter in the FEC.

use crate::{open_books, text, url};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

/// Posts a validated entry whose first line is on the client's account 411 with `aux`.
#[allow(clippy::too_many_arguments)]
async fn third_party_entry(
    app: &TestApp,
    t: &str,
    org: &str,
    (journal, date, label): (&str, &str, &str),
    aux: &str,
    client_debit: bool,
    other: &str,
    amount: &str,
    validate: bool,
) -> Value {
    let (d, c) = if client_debit { (amount, "") } else { ("", amount) };
    let (s, b) = app
        .post(
            t,
            &url(org, "/entries"),
            json!({"journal": journal, "date": date, "label": label, "validate": validate, "lines": [
                {"account": "411", "aux": aux, "debit": d, "credit": c},
                {"account": other, "debit": c, "credit": d}]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    b
}

fn line(e: &Value) -> Value {
    json!({"entry_id": e["id"], "line_no": 1})
}

db_test!(client_lines_are_lettered_partly_then_fully, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    let books = open_books(&app, t, org).await;
    let f1 =
        third_party_entry(&app, t, org, ("VE", "2025-01-10", "Facture F1"), "C001", true, "706", "120", true).await;
    let f2 = third_party_entry(&app, t, org, ("VE", "2025-01-20", "Facture F2"), "C001", true, "706", "80", true).await;
    let p1 =
        third_party_entry(&app, t, org, ("BQ", "2025-02-01", "Règlement F1"), "C001", false, "512", "120", true).await;
    let p2 =
        third_party_entry(&app, t, org, ("BQ", "2025-02-15", "Acompte F2"), "C001", false, "512", "50", true).await;
    let other =
        third_party_entry(&app, t, org, ("VE", "2025-02-20", "Facture G1"), "C002", true, "706", "50", true).await;
    let draft =
        third_party_entry(&app, t, org, ("BQ", "2025-02-21", "Brouillon"), "C001", false, "512", "30", false).await;
    let letter = |lines: Vec<Value>, code: Value| {
        let app = &app;
        async move { app.post(t, &url(org, "/lettering"), json!({"account": "411", "lines": lines, "letter": code})).await }
    };
    // The invoice and its payment balance: a complete letter.
    let (s, b) = letter(vec![line(&f1), line(&p1)], Value::Null).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!((b["letter"].as_str(), b["partial"].as_bool()), (Some("AA"), Some(false)));
    // A line already lettered, another client's line, a draft's line, a line
    // of another account: each refused and named, nothing lettered.
    let (s, b) = letter(vec![line(&f2), line(&p1)], Value::Null).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("lines[1].entry_id")), "{b}");
    let (s, b) = letter(vec![line(&f2), line(&other)], Value::Null).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("lines[1].entry_id")), "{b}");
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("C002"), "{b}");
    let (s, b) = letter(vec![line(&f2), line(&draft)], Value::Null).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("lines[1].entry_id")), "{b}");
    let (s, b) = letter(vec![line(&f2), json!({"entry_id": p2["id"], "line_no": 2})], Value::Null).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("lines[1].entry_id")), "{b}");
    // 80 invoiced, 50 paid: a partial letter, in lower case.
    let (s, b) = letter(vec![line(&f2), line(&p2)], Value::Null).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!((b["letter"].as_str(), b["partial"].as_bool()), (Some("ab"), Some(true)));
    let (_, l) = app.get(t, &url(org, "/lettering?account=411&aux=C001")).await;
    assert_eq!(l["open_balance"], "30.00", "{l}");
    // The remaining 30 arrive: lettered with the partial letter, it becomes complete.
    let p3 = third_party_entry(&app, t, org, ("BQ", "2025-03-01", "Solde F2"), "C001", false, "512", "30", true).await;
    let (s, b) = letter(vec![line(&p3)], json!("ab")).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!((b["letter"].as_str(), b["partial"].as_bool(), b["lines"].as_u64()), (Some("AB"), Some(false), Some(3)));
    let (_, l) = app.get(t, &url(org, "/lettering?account=411&aux=C001&open=true")).await;
    assert_eq!(l["open_balance"], "0.00");
    assert_eq!(l["lines"].as_array().unwrap().len(), 0, "every validated line of C001 is lettered: {l}");
    // The FEC carries the letter and its date.
    let year = books["years"][0]["id"].as_str().unwrap();
    let (_, _, fec) = text(&app, t, &url(org, &format!("/years/{year}/fec"))).await;
    let f1_line = fec.lines().find(|l| l.contains("Facture F1") && l.contains("\t411\t")).unwrap();
    let cols: Vec<&str> = f1_line.split('\t').collect();
    assert_eq!(cols[13], "AA");
    assert_eq!(cols[14].len(), 8, "DateLet is AAAAMMJJ: {f1_line}");
    // Unlettering frees both lines.
    let r = app.http.delete(app.url(&url(org, "/lettering/411/AA"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, l) = app.get(t, &url(org, "/lettering?account=411&aux=C001")).await;
    let f1_row = l["lines"].as_array().unwrap().iter().find(|x| x["entry_id"] == f1["id"]).unwrap();
    assert!(f1_row["letter"].is_null(), "{f1_row}");
    let r = app.http.delete(app.url(&url(org, "/lettering/411/AA"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 404);
});

db_test!(the_lettering_page_letters_selected_lines, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let inv =
        third_party_entry(&app, t, org, ("VE", "2025-01-10", "Facture F1"), "C001", true, "706", "120", true).await;
    let pay =
        third_party_entry(&app, t, org, ("BQ", "2025-02-01", "Règlement F1"), "C001", false, "512", "100", true).await;
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let html =
        client.get(app.url(&format!("/o/{org}/accounting/lettering?account=411&aux=C001"))).send().await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("Facture F1") && html.contains("20.00"), "{html}");
    let v = |e: &Value| format!("{}:1", e["id"].as_str().unwrap());
    let r = client
        .post(app.url(&format!("/o/{org}/accounting/lettering")))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("account", "411"),
            ("aux", "C001"),
            ("line", &v(&inv)),
            ("line", &v(&pay)),
            ("letter", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, l) = app.get(t, &url(org, "/lettering?account=411")).await;
    assert!(l["lines"].as_array().unwrap().iter().all(|x| x["letter"] == "aa"), "partial: 120 against 100: {l}");
    let r = client
        .post(app.url(&format!("/o/{org}/accounting/lettering/unletter")))
        .form(&[("_csrf", csrf.as_str()), ("account", "411"), ("aux", "C001"), ("letter", "aa")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, l) = app.get(t, &url(org, "/lettering?account=411")).await;
    assert!(l["lines"].as_array().unwrap().iter().all(|x| x["letter"].is_null()), "{l}");
});

db_test!(a_line_ticked_twice_counts_once, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let inv = third_party_entry(&app, t, org, ("VE", "2025-01-10", "Facture"), "C001", true, "706", "50", true).await;
    let pay =
        third_party_entry(&app, t, org, ("BQ", "2025-01-20", "Paiement"), "C001", false, "512", "100", true).await;
    let (s, b) = app
        .post(t, &url(org, "/lettering"), json!({"account": "411", "lines": [line(&inv), line(&inv), line(&pay)]}))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(
        (b["partial"].as_bool(), b["debit"].as_str(), b["lines"].as_u64()),
        (Some(true), Some("50.00"), Some(2))
    );
});
