//! Editing the chart of accounts on its page, as an administrator does it:
//! add, rename, archive and unarchive through the forms (with their CSRF
//! token), and bad input shown in the form with nothing changed.

use crate::{entry, open_books, url};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

fn account<'a>(list: &'a Value, number: &str) -> Option<&'a Value> {
    list.as_array().unwrap().iter().find(|a| a["number"] == number)
}

db_test!(the_chart_page_adds_renames_and_archives_accounts, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let list_page = client.get(app.url(&format!("/o/{org}/accounting/accounts"))).send().await.unwrap();
    let html = list_page.text().await.unwrap();
    let edit = format!("/o/{org}/accounting/accounts/edit");
    assert!(html.contains(&format!("href=\"{edit}\"")), "the list links to the editing page: {html}");
    let r = client.get(app.url(&edit)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("7561"));
    let add = |number: &'static str, label: &'static str| {
        let (client, app, csrf, org) = (client, &app, csrf.clone(), org.to_string());
        async move {
            client
                .post(app.url(&format!("/o/{org}/accounting/accounts")))
                .form(&[("_csrf", csrf.as_str()), ("number", number), ("label", label)])
                .send()
                .await
                .unwrap()
        }
    };
    let change = |number: &'static str, action: &'static str, label: &'static str| {
        let (client, app, csrf, edit) = (client, &app, csrf.clone(), edit.clone());
        async move {
            client
                .post(app.url(&edit))
                .form(&[("_csrf", csrf.as_str()), ("number", number), ("action", action), ("label", label)])
                .send()
                .await
                .unwrap()
        }
    };
    let accounts = || async { app.get(t, &url(org, "/accounts")).await.1 };

    // Add an account under a chapter of the chart.
    let r = add("60641", "Papeterie").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("{edit}?prefix=60641").as_str());
    assert_eq!(account(&accounts().await, "60641").unwrap()["label"], "Papeterie");
    // The same number again: the form says so and keeps what was typed.
    let r = add("60641", "Autre chose").await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("The account 60641 exists already."), "{html}");
    assert!(html.contains("value=\"Autre chose\""), "what was typed is kept: {html}");
    assert_eq!(account(&accounts().await, "60641").unwrap()["label"], "Papeterie");
    // A number outside the chart's chapters, or outside classes 1 to 8.
    let r = add("890", "Compte inventé").await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("no chapter 89"), "{html}");
    let r = add("9100", "Analytique").await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("class from 1 to 8"));
    let list = accounts().await;
    assert!(account(&list, "890").is_none() && account(&list, "9100").is_none(), "nothing added");

    // Rename; an empty name is refused next to the field.
    let r = change("60641", "rename", "Fournitures de bureau").await;
    assert_eq!(r.status(), 303);
    assert_eq!(account(&accounts().await, "60641").unwrap()["label"], "Fournitures de bureau");
    let r = change("60641", "rename", "   ").await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("f-label-60641-error"), "the error is on the account's own field: {html}");
    assert_eq!(account(&accounts().await, "60641").unwrap()["label"], "Fournitures de bureau");

    // An account with a balance in an open year cannot be archived.
    entry(&app, t, org, "BQ", "2025-02-01", "Cotisation", &[("512", "100", ""), ("7561", "", "100")], true).await;
    let r = change("7561", "archive", "").await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("archive-error-7561") && html.contains("balance of -100.00"), "{html}");
    assert_eq!(account(&accounts().await, "7561").unwrap()["archived"], false);
    // The API refuses it too, on the same field.
    let (s, b) = app.send(reqwest::Method::PATCH, t, &url(org, "/accounts/512"), json!({"archived": true})).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("archived")), "{b}");

    // An unused account is archived: it takes no new line; unarchived, it does.
    let r = change("60641", "archive", "").await;
    assert_eq!(r.status(), 303);
    assert_eq!(account(&accounts().await, "60641").unwrap()["archived"], true);
    let (s, b) = app
        .post(
            t,
            &url(org, "/entries"),
            json!({"journal": "OD", "date": "2025-03-01", "label": "Papier",
                   "lines": [{"account": "60641", "debit": "5"}, {"account": "512", "credit": "5"}]}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    let html = client.get(app.url(&format!("{edit}?prefix=6064"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("60641") && !html.contains("id=\"account-7561\""), "the prefix filters: {html}");
    let r = change("60641", "unarchive", "").await;
    assert_eq!(r.status(), 303);
    assert_eq!(account(&accounts().await, "60641").unwrap()["archived"], false);

    // Without the CSRF token nothing changes.
    let r = client
        .post(app.url(&edit))
        .form(&[("number", "60641"), ("action", "rename"), ("label", "Piraté")])
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 303);
    assert_eq!(account(&accounts().await, "60641").unwrap()["label"], "Fournitures de bureau");
    // A treasurer (write access) cannot edit the chart.
    let manager = app.member(t, org, "treasurer@example.org", "manager").await;
    let (s, _) = app.post(&manager, &url(org, "/accounts"), json!({"number": "6068", "label": "Autres"})).await;
    assert_eq!(s, 403);
});
