//! SEPA direct debit: creditor and mandate checks, a collection batch
//! (receipts, ledger, pain.008.001.08 valid against the ISO 20022 schema,
//! pre-notifications), returned debits marking the dues unpaid, debtors'
//! IBANs sealed at rest (also those an older version wrote in clear), and
//! the schema check of a 10,000-debit file.

use crate::{field_errors, join, person, setup, url, year, yearly, Setup};
use serde_json::{json, Value};
use std::path::PathBuf;
use testkit::{db_test, TestApp};

/// Validates pain.008 files with lxml against the ISO 20022 XSD (fetched
/// once from PyPI by `tests/sepa/validate.py` into the target directory).
pub fn validate_pain008(files: &[PathBuf]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/sepa/validate.py");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let cache = target.join("sepa-xsd");
    let out = std::process::Command::new("python3").arg(script).arg(&cache).args(files).output().expect("python3");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "pain.008 schema validation failed:\n{text}");
    assert_eq!(text.matches("valid ").count(), files.len(), "{text}");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shrooms-members-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

pub(crate) async fn creditor(app: &TestApp, s: &Setup) {
    let (st, b) = app
        .send(
            reqwest::Method::PUT,
            &s.admin,
            &url(&s.org, "/sepa/creditor"),
            json!({"name": "Les Amis du Jardin", "iban": "FR76 3000 6000 0112 3456 7890 189", "bic": "AGRIFRPP",
                "ics": "FR72ZZZ123456", "address": {"street": "12 rue des Tilleuls", "postcode": "69003", "city": "Lyon"}}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
}

/// A collection day (two days ahead), and the fiscal year that holds it opened when it is next year.
pub(crate) async fn collection_day(app: &TestApp, s: &Setup) -> String {
    // Two days ahead by this machine's clock: after the organisation's today
    // in any time zone (a day ahead was its today for an hour each night in
    // Paris).
    let day = jiff::Zoned::now().date().checked_add(jiff::Span::new().days(2)).unwrap();
    if day.year() != year() {
        let y = day.year();
        let (st, b) = app
            .post(
                &s.admin,
                &format!("/api/v1/orgs/{}/accounting/years", s.org),
                json!({"start": format!("{y}-01-01"), "end": format!("{y}-12-31")}),
            )
            .await;
        assert_eq!(st, 201, "{b}");
    }
    day.to_string()
}

pub(crate) async fn mandate(app: &TestApp, s: &Setup, body: Value) -> (u16, Value) {
    app.post(&s.admin, &url(&s.org, "/sepa/mandates"), body).await
}

db_test!(creditor_and_mandates_are_checked, |app: TestApp| async move {
    let s = setup(&app).await;
    let (st, b) = app
        .send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/sepa/creditor"), json!({"name": "X", "iban": "FR76 3000 6000 0112 3456 7890 188", "bic": "AGRI", "ics": "FR73ZZZ123456", "address": {"city": "Lyon"}}))
        .await;
    assert_eq!(st, 422, "{b}");
    let fields: Vec<String> = field_errors(&b).into_iter().map(|e| e.0).collect();
    assert_eq!(fields, ["iban", "bic", "ics"]);
    assert_eq!(app.get(&s.admin, &url(&s.org, "/sepa/creditor")).await.0, 404);
    creditor(&app, &s).await;
    let ana = person(&app, &s, "Ana", "Debit").await;
    // A wrong IBAN checksum: refused, and said so.
    let (st, b) = mandate(
        &app,
        &s,
        json!({"person_id": ana, "iban": "FR76 3000 6000 0112 3456 7890 188", "signed_on": "2026-01-10"}),
    )
    .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "iban");
    assert!(field_errors(&b)[0].1.contains("check digits"), "{b}");
    // A mandate without its signature date: refused.
    let (st, b) = mandate(&app, &s, json!({"person_id": ana, "iban": "FR7630006000011234567890189"})).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "signed_on");
    let (st, b) =
        mandate(&app, &s, json!({"person_id": ana, "iban": "FR7630006000011234567890189", "signed_on": "2999-01-01"}))
            .await;
    assert_eq!(st, 422, "{b}");
    let (st, m) = mandate(&app, &s, json!({"person_id": ana, "iban": "DE89 3704 0044 0532 0130 00", "bic": "COBADEFFXXX", "signed_on": "2026-01-10"})).await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["reference"], "ADH-000001");
    assert_eq!(m["iban"], "DE89 •••• •••• 3000", "masked: the IBAN itself is sealed");
    assert_eq!(m["next_sequence"], "FRST");
    // The reference is unique.
    let (st, b) = mandate(&app, &s, json!({"person_id": ana, "reference": "ADH-000001", "iban": "DE89370400440532013000", "signed_on": "2026-01-10"})).await;
    assert_eq!(st, 409, "{b}");
    assert_eq!(b["errors"][0]["field"], "reference", "{b}");
    let (st, b) = mandate(
        &app,
        &s,
        json!({"person_id": ana, "reference": "ADH 2", "iban": "DE89370400440532013000", "signed_on": "2026-01-10"}),
    )
    .await;
    assert_eq!(st, 422, "{b}");
    let (st, l) = app.get(&s.admin, &url(&s.org, &format!("/sepa/mandates?person_id={ana}"))).await;
    assert_eq!((st, l.as_array().unwrap().len()), (200, 1));
});

db_test!(a_collection_is_sent_then_a_debit_is_returned, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let day = collection_day(&app, &s).await;
    let mut people = Vec::new();
    for (n, iban) in [("Ana", "FR7630006000011234567890189"), ("Bo", "DE89370400440532013000")] {
        let p = person(&app, &s, n, "Sepa").await;
        let (st, per) = join(&app, &s, &p, json!({"type_id": ind, "starts_on": format!("{y}-01-01")})).await;
        assert_eq!(st, 201, "{per}");
        let (st, m) = mandate(&app, &s, json!({"person_id": p, "iban": iban, "signed_on": format!("{y}-01-02")})).await;
        assert_eq!(st, 201, "{m}");
        let (st, b) = app
            .send(
                reqwest::Method::PUT,
                &s.admin,
                &url(&s.org, &format!("/people/{p}/profile")),
                json!({"address": {"street": "3 rue de l'Église", "postcode": "69001", "city": "Lyon"}}),
            )
            .await;
        assert_eq!(st, 200, "{b}");
        people.push((p, per["id"].as_str().unwrap().to_string()));
    }
    let items: Vec<Value> = people.iter().map(|(p, per)| json!({"person_id": p, "period_id": per})).collect();
    // No creditor yet: a clear refusal.
    let (st, b) =
        app.post(&s.admin, &url(&s.org, "/sepa/batches"), json!({"collection_date": day, "items": items})).await;
    assert_eq!(st, 409, "{b}");
    creditor(&app, &s).await;
    let stranger = person(&app, &s, "Cy", "Nomandate").await;
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, "/sepa/batches"),
            json!({"collection_date": day, "items": [items[0].clone(), {"person_id": stranger}]}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "items[1].person_id");
    let (st, b) = app
        .post(&s.admin, &url(&s.org, "/sepa/batches"), json!({"collection_date": format!("{y}-01-01"), "items": items}))
        .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(field_errors(&b)[0].0, "collection_date");
    let (_, dues) = app.get(&s.admin, &url(&s.org, "/dues")).await;
    assert_eq!(dues.as_array().unwrap().len(), 0, "nothing half-written");
    let (st, batch) =
        app.post(&s.admin, &url(&s.org, "/sepa/batches"), json!({"collection_date": day, "items": items})).await;
    assert_eq!(st, 201, "{batch}");
    assert_eq!(batch["debit_count"], 2);
    assert_eq!(batch["total_cents"], 6000);
    assert!(batch["debits"].as_array().unwrap().iter().all(|d| d["sequence"] == "FRST"));
    // The members are up to date, the bank holds the dues.
    let (_, l) = app.get(&s.admin, &url(&s.org, "/directory?standing=up_to_date")).await;
    assert_eq!(l.as_array().unwrap().len(), 2);
    // The file validates against the ISO 20022 schema.
    let r = app
        .http
        .get(app.url(&url(&s.org, &format!("/sepa/batches/{}/xml", batch["id"].as_str().unwrap()))))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let xml = r.text().await.unwrap();
    assert!(
        xml.contains("<StrtNm>3 rue de l'Eglise</StrtNm>") || xml.contains("<StrtNm>3 rue de l&apos;Eglise</StrtNm>"),
        "{xml}"
    );
    let file = scratch(&format!("batch-{}.xml", app.backend_name()));
    std::fs::write(&file, &xml).unwrap();
    validate_pain008(&[file]);
    // Each debtor was told in advance.
    let (_, mails) = app.get(&s.admin, "/api/v1/admin/outbox?to=ana@example.org").await;
    assert!(
        mails.as_array().unwrap().iter().any(|m| m["body_text"].as_str().unwrap().contains("ADH-000001")),
        "{mails}"
    );
    // Bo's debit comes back rejected (pain.002): his dues are unpaid, the entry reversed.
    let bo_debit =
        batch["debits"].as_array().unwrap().iter().find(|d| d["person_id"] == json!(people[1].0)).unwrap().clone();
    let e2e = bo_debit["end_to_end_id"].as_str().unwrap();
    let pain002 = format!(
        "<?xml version=\"1.0\"?><Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10\"><CstmrPmtStsRpt><OrgnlPmtInfAndSts>\
         <TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf></TxInfAndSts>\
         <TxInfAndSts><OrgnlEndToEndId>UNKNOWN-1</OrgnlEndToEndId><TxSts>RJCT</TxSts></TxInfAndSts>\
         </OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"
    );
    let (st, report) =
        app.post(&s.admin, &url(&s.org, "/sepa/returns"), json!({"content": pain002, "returned_on": day})).await;
    assert_eq!(st, 200, "{report}");
    assert_eq!(report["format"], "pain.002");
    assert_eq!(report["returned"], json!([e2e]));
    assert_eq!(report["unknown"], json!(["UNKNOWN-1"]));
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{}", people[1].0))).await;
    assert_eq!(m["standing"]["standing"], "dues_unpaid", "{m}");
    assert_eq!(m["dues"][0]["status"], "unpaid");
    // The same file again changes nothing.
    let (_, again) =
        app.post(&s.admin, &url(&s.org, "/sepa/returns"), json!({"content": pain002, "returned_on": day})).await;
    assert_eq!(again["returned"], json!([]));
    assert_eq!(again["already"], json!([e2e]));
    // The ledger: two dues in, one reversed; the bank account nets 30.00.
    let (_, entries) = app.get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries?limit=500", s.org)).await;
    let mut bank = 0i64;
    for e in entries.as_array().unwrap() {
        let (_, full) = app
            .get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries/{}", s.org, e["id"].as_str().unwrap()))
            .await;
        for l in full["lines"].as_array().unwrap() {
            if l["account"] == "512" {
                let c = |v: &Value| (v.as_str().unwrap().parse::<f64>().unwrap() * 100.0).round() as i64;
                bank += c(&l["debit"]) - c(&l["credit"]);
            }
        }
    }
    assert_eq!(bank, 3000);
    // The next debit of Ana's mandate is recurrent; Bo's stays first (his was returned).
    let (_, ms) = app.get(&s.admin, &url(&s.org, "/sepa/mandates")).await;
    let seq =
        |p: &str| ms.as_array().unwrap().iter().find(|m| m["person_id"] == json!(p)).unwrap()["next_sequence"].clone();
    assert_eq!(seq(&people[0].0), "RCUR");
    assert_eq!(seq(&people[1].0), "FRST");
    // A returns file that cannot be read: nothing changes.
    let (st, b) =
        app.post(&s.admin, &url(&s.org, "/sepa/returns"), json!({"content": "<Document><Nothing/></Document>"})).await;
    assert_eq!(st, 422, "{b}");
});

/// The IBAN column of a mandate and its hint, as a stolen database shows them.
async fn stored_iban(app: &TestApp, mandate_id: &str) -> (String, Option<String>) {
    let r = sqlx::query("SELECT iban, iban_hint FROM mem_mandates WHERE id = $1")
        .bind(mandate_id)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    use sqlx::Row;
    (r.try_get(0).unwrap(), r.try_get(1).unwrap())
}

/// A mandate as a version without sealing wrote it: the IBAN in clear, no hint.
async fn legacy_mandate(app: &TestApp, org_id: &str, person_id: &str, reference: &str, iban: &str) -> String {
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO mem_mandates (id, org_id, person_id, reference, iban, bic, debtor_name, signed_on, status, created_at) \
         VALUES ($1, $2, $3, $4, $5, NULL, 'Legacy Debtor', '2025-09-01', 'active', 1)",
    )
    .bind(&id)
    .bind(org_id)
    .bind(person_id)
    .bind(reference)
    .bind(iban)
    .execute(app.state.db.pool())
    .await
    .unwrap();
    id
}

/// A collection batch for these people and periods (what is left by
/// default), and its pain.008 file.
async fn collect(
    app: &TestApp,
    s: &Setup,
    day: &str,
    people: &[(String, String)],
    amount_cents: Option<i64>,
) -> (bool, String) {
    let items: Vec<Value> =
        people.iter().map(|(p, per)| json!({"person_id": p, "period_id": per, "amount_cents": amount_cents})).collect();
    let (st, batch) =
        app.post(&s.admin, &url(&s.org, "/sepa/batches"), json!({"collection_date": day, "items": items})).await;
    if st != 201 {
        return (false, batch.to_string());
    }
    let r = app
        .http
        .get(app.url(&url(&s.org, &format!("/sepa/batches/{}/xml", batch["id"].as_str().unwrap()))))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    (r.status() == 200, r.text().await.unwrap())
}

db_test!(debtors_ibans_are_sealed_at_rest, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = year();
    let ind = yearly(&app, &s, "Individuelle").await;
    let day = collection_day(&app, &s).await;
    creditor(&app, &s).await;
    let org_id: String = sqlx::query_scalar("SELECT id FROM orgs WHERE slug = $1")
        .bind(&s.org)
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    let mut people = Vec::new();
    for n in ["Ana", "Bo", "Cy", "Di"] {
        let p = person(&app, &s, n, "Sealed").await;
        let (st, per) = join(&app, &s, &p, json!({"type_id": ind, "starts_on": format!("{y}-01-01")})).await;
        assert_eq!(st, 201, "{per}");
        people.push((p, per["id"].as_str().unwrap().to_string()));
    }
    // Ana's mandate, through the API: the database holds no digit of her
    // IBAN beyond what the masked IBAN shows; the API shows it masked.
    let (st, m) = mandate(
        &app,
        &s,
        json!({"person_id": people[0].0, "iban": "FR76 3000 4000 0312 3456 7890 143", "signed_on": format!("{y}-01-02")}),
    )
    .await;
    assert_eq!(st, 201, "{m}");
    assert_eq!(m["iban"], "FR76 •••• •••• 0143");
    let ana_mandate = m["id"].as_str().unwrap().to_string();
    let (raw, hint) = stored_iban(&app, &ana_mandate).await;
    assert!(raw.starts_with("s1."), "sealed: {raw}");
    assert!(!raw.contains("30004000031234567890143") && !raw.contains("1234567890"), "{raw}");
    assert_eq!(hint.as_deref(), Some("FR760143"));
    // Not in the audit log either.
    let (_, audit) = app.get(&s.admin, &format!("/api/v1/orgs/{}/audit?action=members.mandate.create", s.org)).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1, "{audit}");
    assert!(!audit.to_string().contains("1234567890"), "{audit}");
    // The direct debit page shows it masked (the creditor's own IBAN, the
    // organisation's, is shown whole and is another one).
    let browser = testkit::browser_client();
    app.sign_in(&browser, "admin@example.org", testkit::ADMIN_PASSWORD).await;
    let page = |path: String| {
        let browser = browser.clone();
        let url = app.url(&path);
        async move { browser.get(url).send().await.unwrap().text().await.unwrap() }
    };
    let html = page(format!("/o/{}/members/sepa", s.org)).await;
    assert!(html.contains("FR76 •••• •••• 0143") && !html.contains("1234567890143"), "{html}");

    // Bo's, Cy's and Di's mandates, written in clear by an older version:
    // read as they are until sealed (masked all the same).
    let ibans = ["DE89370400440532013000", "GB82WEST12345698765432", "FR1420041010050500013M02606"];
    let mut legacy = Vec::new();
    for (i, ((p, _), iban)) in people[1..].iter().zip(ibans).enumerate() {
        legacy.push(legacy_mandate(&app, &org_id, p, &format!("OLD-{i}"), iban).await);
    }
    let (_, list) = app.get(&s.admin, &url(&s.org, "/sepa/mandates")).await;
    let shown: Vec<&str> = list.as_array().unwrap().iter().map(|m| m["iban"].as_str().unwrap()).collect();
    assert!(shown.contains(&"DE89 •••• •••• 3000") && shown.contains(&"GB82 •••• •••• 5432"), "{list}");
    assert!(!list.to_string().contains("0532013000"), "{list}");
    // A collection file made meanwhile, from sealed and clear IBANs alike:
    // 10.00 of each one's dues.
    let (ok, xml) = collect(&app, &s, &day, &people, Some(1000)).await;
    assert!(ok, "{xml}");
    for iban in ["FR7630004000031234567890143"].iter().chain(&ibans) {
        assert_eq!(xml.matches(&format!("<IBAN>{iban}</IBAN>")).count(), 1, "{iban} in {xml}");
    }
    // Two servers seal at once: each row is sealed once, by one of them.
    let (a, b) = tokio::join!(
        shrooms_members::debits::seal_clear_ibans(&app.state.db, &app.state.data_key),
        shrooms_members::debits::seal_clear_ibans(&app.state.db, &app.state.data_key),
    );
    assert_eq!(a.unwrap() + b.unwrap(), 3);
    for (id, iban) in legacy.iter().zip(ibans) {
        let (raw, hint) = stored_iban(&app, id).await;
        assert!(raw.starts_with("s1.") && !raw.contains(&iban[4..]), "{raw}");
        assert_eq!(hint.unwrap(), format!("{}{}", &iban[..4], &iban[iban.len() - 4..]));
    }
    assert_eq!(shrooms_members::debits::seal_clear_ibans(&app.state.db, &app.state.data_key).await.unwrap(), 0);
    // The instance's hourly job does the same (Di's mandate, put back in clear).
    sqlx::query("UPDATE mem_mandates SET iban = $1, iban_hint = NULL WHERE id = $2")
        .bind(ibans[2])
        .bind(&legacy[2])
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let mut tx = app.state.db.begin().await.unwrap();
    shrooms_core::jobs::enqueue(&mut tx, &shrooms_members::debits::SEAL_IBANS, None, json!({}), None, 0).await.unwrap();
    tx.commit().await.unwrap();
    let mut raw = String::new();
    for _ in 0..300 {
        raw = stored_iban(&app, &legacy[2]).await.0;
        if raw.starts_with("s1.") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(raw.starts_with("s1."), "the job sealed it: {raw}");
    let (_, schedules) = app.get(&s.admin, "/api/v1/admin/schedules").await;
    assert!(
        schedules.as_array().unwrap().iter().any(|x| x["name"] == "members.seal_ibans" && x["enabled"] == true),
        "{schedules}"
    );

    // Once all are sealed, the next collection file (what is left of the
    // dues) still carries every IBAN in clear, each once.
    let (ok, xml) = collect(&app, &s, &day, &people, None).await;
    assert!(ok, "{xml}");
    assert!(xml.contains("<InstdAmt Ccy=\"EUR\">20.00</InstdAmt>"), "{xml}");
    for iban in ["FR7630004000031234567890143"].iter().chain(&ibans) {
        assert_eq!(xml.matches(&format!("<IBAN>{iban}</IBAN>")).count(), 1, "{iban} in {xml}");
    }
    // The member's own export keeps it masked.
    let (st, ex) = app.get(&s.admin, &format!("/api/v1/orgs/{}/people/{}/personal-data", s.org, people[1].0)).await;
    assert_eq!(st, 200, "{ex}");
    assert!(ex.to_string().contains("DE89 **** 3000") && !ex.to_string().contains("0532013000"), "{ex}");
    // Bo is erased once his debits are collected and his membership closed:
    // his IBAN leaves his mandate, and the stored files keep it masked.
    sqlx::query("UPDATE mem_debit_batches SET collection_date = '2000-01-10' WHERE org_id = $1")
        .bind(&org_id)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let (st, b) = app
        .post(
            &s.admin,
            &url(&s.org, &format!("/periods/{}/close", people[1].1)),
            json!({"reason": "resigned", "on": format!("{y}-01-01")}),
        )
        .await;
    assert_eq!(st, 200, "{b}");
    let (st, rep) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{}/people/{}/erase", s.org, people[1].0),
            json!({"confirmation": "Bo Sealed"}),
        )
        .await;
    assert_eq!(st, 200, "{rep}");
    assert_eq!(stored_iban(&app, &legacy[0]).await, (String::new(), None));
    let files: Vec<String> = sqlx::query_scalar("SELECT xml FROM mem_debit_batches WHERE org_id = $1")
        .bind(&org_id)
        .fetch_all(app.state.db.pool())
        .await
        .unwrap();
    assert_eq!(files.len(), 2);
    for xml in &files {
        assert!(xml.contains("<IBAN>DE89 **** 3000</IBAN>") && !xml.contains("DE89370400440532013000"), "{xml}");
        assert!(xml.contains("<IBAN>GB82WEST12345698765432</IBAN>"), "the others' stay: {xml}");
    }
});

#[test]
fn a_batch_of_ten_thousand_debits_validates_against_the_schema() {
    use shrooms_members::sepa::{pain008, Creditor, Debit, PostalAddress};
    let creditor = Creditor {
        name: "Coopérative d'hébergement".into(),
        iban: "FR7630006000011234567890189".into(),
        bic: "AGRIFRPP".into(),
        ics: "FR72ZZZ123456".into(),
        address: PostalAddress {
            street: "5 avenue Foch".into(),
            postcode: "75016".into(),
            city: "Paris".into(),
            country: "FR".into(),
        },
    };
    let debits: Vec<Debit> = (0..10_000)
        .map(|i| Debit {
            end_to_end_id: format!("RC-{i:06}"),
            amount_cents: 1000 + (i % 5000) as i64,
            mandate_reference: format!("ADH-{i:06}"),
            mandate_signed_on: "2025-09-01".into(),
            first: i % 7 == 0,
            debtor_name: format!("Membre n° {i} Lefèvre-Œuvray"),
            debtor_iban: "DE89370400440532013000".into(),
            debtor_bic: if i % 2 == 0 { Some("COBADEFFXXX".into()) } else { None },
            debtor_address: PostalAddress {
                street: format!("{i} rue de la Paix"),
                postcode: "69001".into(),
                city: "Lyon".into(),
                country: "FR".into(),
            },
            remittance: format!("Cotisation 2027 RC-{i:06}"),
        })
        .collect();
    let xml = pain008("SHR-20270105-000001", "2026-11-21T10:00:00Z", "2027-01-05", &creditor, &debits);
    let file = scratch("ten-thousand.xml");
    std::fs::write(&file, xml).unwrap();
    validate_pain008(&[file]);
}
