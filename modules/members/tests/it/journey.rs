//! The members issue's "done means", end to end over HTTP on a real server:
//! a person joins online and pays by card, receives a membership card that
//! checks as valid, is shown up to date; the next year's renewal notice
//! reaches her with her personal link; her renewal is collected by direct
//! debit, the bank rejects the debit and her renewal dues show unpaid; a
//! donor receives a tax receipt by mail; and the treasurer's ledger holds
//! exactly what happened.

use crate::billing::{invoice_path, ledger, now_secs, stripe_signature, stripe_stand_in};
use crate::selfservice::{pdf_text, public_post};
use crate::sepa::{collection_day, creditor, mandate};
use crate::{person, setup, url, yearly};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

async fn outbox(app: &TestApp, admin: &str, to: &str) -> Vec<Value> {
    let (st, mails) = app.get(admin, &format!("/api/v1/admin/outbox?to={to}")).await;
    assert_eq!(st, 200, "{mails}");
    mails.as_array().cloned().unwrap_or_default()
}

db_test!(a_member_joins_pays_renews_by_direct_debit_and_the_ledger_matches, |app: TestApp| async move {
    let s = setup(&app).await;
    let org = s.org.clone();
    let email = "ana.journey@example.org";

    // The association: dues by invoice (franchise, no VAT), card payments
    // through Stripe, the join form open and recording members at once,
    // renewal notices sent as soon as a year ends within 365 days.
    let ty = yearly(&app, &s, "Adhésion").await;
    invoice_path(&app, &s).await;
    let secret = "whsec_journey";
    let base = stripe_stand_in().await;
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &format!("/api/v1/orgs/{org}/invoicing/providers/stripe"),
            json!({"enabled": true, "secret_key": "sk_test_journey", "webhook_secret": secret, "api_base": base}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(&org, "/self-service"),
            json!({"join_enabled": true, "join_mode": "automatic", "join_type_ids": [ty],
                "terms_text": "Statuts, article 3.", "payment_instructions": "Payez en ligne.", "checked_fields": []}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(&org, "/renewal-settings"),
            json!({"notice_days": 365, "reminder_days": [15], "automatic": true}),
        )
        .await;
    assert_eq!((st, &b["automatic"]), (200, &json!(true)), "{b}");
    let (_, schedules) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/schedules")).await;
    let daily = schedules.as_array().unwrap().iter().find(|x| x["name"] == "members.renewals").cloned();
    assert_eq!(daily.map(|d| d["enabled"].clone()), Some(json!(true)), "the daily run is on: {schedules}");

    // 1. Ana joins online; the answer sends her to pay; she pays by card.
    let join = json!({"given_name": "Ana", "family_name": "Journey", "email": email, "phone": "06 12 34 56 78",
        "address": {"street": "3 rue Neuve", "postcode": "69001", "city": "Lyon"},
        "type_id": ty, "consent": true, "submission_id": "journey-1"});
    let (st, joined) = public_post(&app, &url(&org, "/join"), join.clone()).await;
    assert!(st == 200 || st == 201, "{st} {joined}");
    let pay_url = joined["pay_url"].as_str().expect("the answer sends her to pay online").to_string();
    assert_eq!(app.http.get(app.url(&pay_url)).send().await.unwrap().status().as_u16(), 200, "the pay page opens");
    // Sent again (a double click): the same answer, no second member, no second invoice.
    let (_, again) = public_post(&app, &url(&org, "/join"), join).await;
    assert_eq!(again["pay_url"], joined["pay_url"], "{again}");
    let (_, people) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/people?q={email}")).await;
    let ana = people["items"][0]["id"].as_str().unwrap().to_string();
    assert_eq!(people["items"].as_array().unwrap().len(), 1, "{people}");
    let (_, m) = app.get(&s.admin, &url(&org, &format!("/people/{ana}"))).await;
    assert_eq!(m["standing"]["standing"], "dues_unpaid", "{m}");
    assert_eq!(m["periods"].as_array().unwrap().len(), 1, "{m}");
    let invoice = m["periods"][0]["invoice_id"].as_str().expect("her dues invoice").to_string();
    let payload = json!({
        "id": "evt_journey_1", "object": "event", "created": now_secs(), "type": "checkout.session.completed",
        "data": {"object": {"id": "cs_test_dues", "object": "checkout.session", "mode": "payment", "status": "complete",
            "payment_status": "paid", "amount_total": 3000, "currency": "eur", "client_reference_id": invoice,
            "metadata": {"document_id": invoice}, "payment_intent": "pi_journey_1"}}
    })
    .to_string();
    let r = app
        .http
        .post(app.url(&format!("/api/v1/hooks/invoicing/stripe/{org}")))
        .header("content-type", "application/json")
        .header("stripe-signature", stripe_signature(&payload, secret, now_secs()))
        .body(payload)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // 2. She is up to date, in her page and in the directory.
    let (_, m) = app.get(&s.admin, &url(&org, &format!("/people/{ana}"))).await;
    assert_eq!(m["standing"]["standing"], "up_to_date", "{m}");
    crate::wait_in_directory(&app, &s, "up_to_date", &ana).await;

    // 3. She signs in and downloads her card; its QR code checks as valid today.
    let token = app.member(&s.admin, &org, email, "member").await;
    let r = app.http.get(app.url(&url(&org, "/me/card.pdf?lang=en"))).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let text = pdf_text(&r.bytes().await.unwrap());
    assert!(text.contains("Ana Journey") && text.contains("Adhésion"), "{text}");
    let (_, me) = app.get(&token, &url(&org, "/me")).await;
    assert_eq!(me["membership"]["standing"]["standing"], "up_to_date", "{me}");
    assert_eq!(
        (me["invoices"][0]["status"].as_str(), me["invoices"][0]["due_cents"].as_i64()),
        (Some("paid"), Some(0))
    );
    assert!(me["invoices"][0]["pay_path"].is_null(), "nothing left to pay: {me}");
    let (_, m) = app.get(&s.admin, &url(&org, &format!("/people/{ana}"))).await;
    let card = m["card_token"].as_str().expect("the card's token").to_string();
    let check = app
        .http
        .get(app.url(&format!("/o/{org}/members/check/{card}?lang=en")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(check.contains("Valid today"), "{check}");

    // 4. The next year: her renewal notice, with her personal link; she
    // signed a direct debit mandate with the secretary.
    creditor(&app, &s).await;
    let (st, mandate) = mandate(
        &app,
        &s,
        json!({"person_id": ana, "iban": "FR76 3000 6000 0112 3456 7890 189", "signed_on": "2026-01-10"}),
    )
    .await;
    assert_eq!(st, 201, "{mandate}");
    let (st, run) = app.post(&s.admin, &url(&org, "/renewals/run"), json!({})).await;
    assert_eq!(st, 200, "{run}");
    assert_eq!(run["notices"], 1, "{run}");
    let mails = outbox(&app, &s.admin, email).await;
    let notice = mails
        .iter()
        .find(|m| m["body_text"].as_str().unwrap_or("").contains("/members/renew/"))
        .unwrap_or_else(|| panic!("a renewal notice with her link: {mails:?}"));
    assert!(notice["body_text"].as_str().unwrap().contains("Adhésion"), "{notice}");
    let (_, m) = app.get(&s.admin, &url(&org, &format!("/people/{ana}"))).await;
    let periods = m["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 2, "the renewal is recorded and invoiced: {m}");
    let renewal = periods.iter().max_by_key(|p| p["starts_on"].as_str().unwrap().to_string()).unwrap().clone();
    let renewal_invoice = renewal["invoice_id"].as_str().expect("the renewal's invoice").to_string();

    // 5. The renewal is collected by direct debit; the bank rejects it.
    let day = collection_day(&app, &s).await;
    let (st, batch) = app
        .post(
            &s.admin,
            &url(&org, "/sepa/batches"),
            json!({"collection_date": day, "items": [{"person_id": ana, "period_id": renewal["id"]}]}),
        )
        .await;
    assert_eq!(st, 201, "{batch}");
    assert_eq!(batch["debits"][0]["sequence"], "FRST");
    let e2e = batch["debits"][0]["end_to_end_id"].as_str().unwrap().to_string();
    let inv_path = format!("/api/v1/orgs/{org}/invoicing/documents/{renewal_invoice}");
    assert_eq!(app.get(&s.admin, &inv_path).await.1["status"], "paid");
    assert!(
        outbox(&app, &s.admin, email).await.iter().any(|m| m["body_text"]
            .as_str()
            .unwrap_or("")
            .contains(&mandate["reference"].as_str().unwrap().to_string())),
        "she was told of the debit in advance"
    );
    let (st, report) = app
        .post(&s.admin, &url(&org, "/sepa/returns"), json!({"content": format!("{e2e};MD06"), "returned_on": day}))
        .await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["returned"], json!([e2e]));
    let (_, dues) = app.get(&s.admin, &url(&org, &format!("/people/{ana}/dues"))).await;
    let unpaid = dues["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["invoice_id"] == json!(renewal_invoice))
        .unwrap_or_else(|| panic!("{dues}"))
        .clone();
    assert_eq!(unpaid["due_cents"], 3000, "her renewal dues show unpaid: {dues}");
    assert!(matches!(unpaid["status"].as_str(), Some("validated" | "sent")), "{unpaid}");
    // In her space too, with a way to pay it by card.
    let (_, me) = app.get(&token, &url(&org, "/me")).await;
    let mine = me["invoices"].as_array().unwrap().iter().find(|i| i["invoice_id"] == json!(renewal_invoice)).cloned();
    let mine = mine.unwrap_or_else(|| panic!("{me}"));
    assert_eq!(mine["due_cents"], 3000, "{me}");
    assert!(mine["pay_path"].as_str().is_some_and(|p| p.contains("/invoicing/pay/")), "{me}");

    // 6. A donor receives a tax receipt by mail.
    let (_, mut settings) = app.get(&s.admin, &url(&org, "/settings")).await;
    for (k, v) in [
        ("legal_name", "Les Amis du Jardin"),
        ("street", "12 rue des Tilleuls"),
        ("postcode", "69003"),
        ("city", "Lyon"),
        ("object", "Jardins partagés"),
        ("signatory", "Anne, trésorière"),
    ] {
        settings[k] = json!(v);
    }
    assert_eq!(app.send(reqwest::Method::PUT, &s.admin, &url(&org, "/settings"), settings).await.0, 200);
    let bo = person(&app, &s, "Bo", "Donor").await;
    let today = jiff::Zoned::now().date().to_string();
    let (st, gift) = app
        .post(
            &s.admin,
            &url(&org, "/donations"),
            json!({"person_id": bo, "amount_cents": 10000, "received_on": today, "method": "transfer"}),
        )
        .await;
    assert_eq!(st, 201, "{gift}");
    let y = jiff::Zoned::now().date().year();
    let (st, sent) = app.post(&s.admin, &url(&org, "/tax-receipts/batch"), json!({"year": y, "email": true})).await;
    assert_eq!(st, 200, "{sent}");
    assert_eq!(sent["emailed"], 1, "{sent}");
    assert_eq!(outbox(&app, &s.admin, "bo@example.org").await.len(), 1, "Bo's receipt");

    // 7. The treasurer's ledger: dues earned twice (the join and the
    // renewal), the renewal still owed, the card payment and the gift in the
    // treasury, the rejected debit netted out of the bank; and it balances.
    let l = ledger(&app, &s).await;
    assert_eq!(l.get("7561"), Some(&(0, 6000)), "dues: {l:?}");
    let receivable = l.get("411").copied().unwrap_or_default();
    assert_eq!(receivable.0 - receivable.1, 3000, "the renewal is owed: {l:?}");
    assert_eq!(l.get("7541").map(|(d, c)| c - d), Some(10000), "the gift: {l:?}");
    let treasury: i64 = l.iter().filter(|(a, _)| a.starts_with('5')).map(|(_, (d, c))| d - c).sum();
    assert_eq!(treasury, 3000 + 10000, "card payment and gift; the debit came back: {l:?}");
    let (debits, credits) = l.values().fold((0, 0), |(d, c), (x, y)| (d + x, c + y));
    assert_eq!(debits, credits, "the books balance: {l:?}");
});

db_test!(a_member_whose_membership_ends_soon_renews_from_their_space, |app: TestApp| async move {
    let s = setup(&app).await;
    let org = s.org.clone();
    let (st, ty) = app
        .post(
            &s.admin,
            &url(&org, "/types"),
            json!({"name": "Annuelle", "kind": "individual", "fee_rule": "fixed", "fee_cents": 2500, "period_rule": "rolling_12_months"}),
        )
        .await;
    assert_eq!(st, 201, "{ty}");
    let ty = ty["id"].as_str().unwrap().to_string();
    let cy = person(&app, &s, "Cy", "Soon").await;
    // Joined 340 days ago: the year ends in about 25 days.
    let start = jiff::Zoned::now().date().checked_sub(jiff::Span::new().days(340)).unwrap().to_string();
    let (st, p) = crate::join(&app, &s, &cy, json!({"type_id": ty, "starts_on": start})).await;
    assert_eq!(st, 201, "{p}");
    let token = app.member(&s.admin, &org, "cy@example.org", "member").await;
    let (_, me) = app.get(&token, &url(&org, "/me")).await;
    let renew = me["renew_path"].as_str().unwrap_or_else(|| panic!("a renewal link: {me}")).to_string();
    // The renewal page (no sign-in needed: the link is signed) renews once.
    let page = app.http.get(app.url(&renew)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Annuelle") && page.contains("25"), "{page}");
    let dan = person(&app, &s, "Dan", "Later").await;
    let (st, p) = crate::join(&app, &s, &dan, json!({"type_id": ty})).await;
    assert_eq!(st, 201, "{p}");
    let token = app.member(&s.admin, &org, "dan@example.org", "member").await;
    let (_, me) = app.get(&token, &url(&org, "/me")).await;
    assert!(me["renew_path"].is_null(), "a year to go: nothing to renew yet: {me}");
});
