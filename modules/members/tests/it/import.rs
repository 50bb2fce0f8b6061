//! Importing members from Paheko-like and Galette-like French CSV files and
//! from an ODS sheet: the dry run reports row errors, nothing is written
//! until the import is committed; people are reused by e-mail.

use crate::{setup, url, yearly};
use serde_json::{json, Value};
use std::time::Duration;
use testkit::{db_test, TestApp};

const BOUNDARY: &str = "----members-import-boundary";

async fn upload(app: &TestApp, token: &str, org: &str, file_name: &str, bytes: &[u8]) -> (u16, Value) {
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nmembers.members\r\n").as_bytes(),
    );
    body.extend_from_slice(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    let r = app
        .http
        .post(app.url(&format!("/api/v1/orgs/{org}/imports")))
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn commit(app: &TestApp, token: &str, org: &str, id: &str) -> Value {
    let (s, v) = app.post(token, &format!("/api/v1/orgs/{org}/imports/{id}/commit"), json!(null)).await;
    assert_eq!(s, 202, "{v}");
    for _ in 0..600 {
        let (_, v) = app.get(token, &format!("/api/v1/orgs/{org}/imports/{id}")).await;
        if v["status"] == "done" || v["status"] == "failed" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("import did not finish");
}

db_test!(members_import_from_paheko_and_galette_files_with_a_dry_run, |app: TestApp| async move {
    let s = setup(&app).await;
    yearly(&app, &s, "Individuelle").await;
    yearly(&app, &s, "Bienfaiteur").await;
    // Paheko-like: `;`, French headers and dates, one unknown type.
    let paheko = "Nom;Prénom;Courriel;Catégorie;Date d'inscription;Échéance;Montant\n\
        Lefèvre;Hélène;helene@example.org;Individuelle;01/01/2026;31/12/2026;30,00\n\
        Dubois;Noël;noel@example.org;bienfaiteur;15/03/2026;;50\n\
        Garçon;Zoé;zoe@example.org;Famille;01/01/2026;31/12/2026;45\n";
    let (st, v) = upload(&app, &s.admin, &s.org, "paheko.csv", paheko.as_bytes()).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["error_count"], 1, "{v}");
    assert_eq!(v["errors"][0]["line"], 4, "{v}");
    assert_eq!(v["errors"][0]["field"], "type");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("\"Famille\" unknown"), "{v}");
    // The dry run wrote nothing.
    let (_, found) = app.get(&s.admin, &url(&s.org, "/search?status=never")).await;
    assert!(found["items"].as_array().unwrap().is_empty());
    let (_, people) = app.get(&s.admin, &format!("/api/v1/orgs/{}/people", s.org)).await;
    assert!(people["items"].as_array().unwrap().is_empty());

    // Fixed file: imported; Hélène already exists in the directory and is reused.
    let (st, h) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{}/people", s.org),
            json!({"given_name": "Hélène", "family_name": "Lefèvre", "email": "helene@example.org"}),
        )
        .await;
    assert_eq!(st, 201, "{h}");
    let fixed = paheko.replace("Famille", "Individuelle");
    let (_, v) = upload(&app, &s.admin, &s.org, "paheko.csv", fixed.as_bytes()).await;
    assert_eq!(v["error_count"], 0, "{v}");
    let done = commit(&app, &s.admin, &s.org, v["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    let (_, people) = app.get(&s.admin, &format!("/api/v1/orgs/{}/people", s.org)).await;
    assert_eq!(people["items"].as_array().unwrap().len(), 3, "Hélène is not created twice");
    let (_, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{}", h["id"].as_str().unwrap()))).await;
    assert_eq!(m["periods"][0]["ends_on"], "2026-12-31");
    assert_eq!(m["periods"][0]["fee_cents"], 3000);
    let (_, n) = app.get(&s.admin, &url(&s.org, "/search?q=noel")).await;
    // The end is computed from the type's rule when the file has none.
    assert_eq!(n["items"][0]["ends_on"], "2026-12-31", "{n}");
    assert_eq!(n["items"][0]["type_name"], "Bienfaiteur");

    // Galette-like, Windows-1252, and an ODS sheet.
    let galette: &[u8] = b"nom;pr\xe9nom;email;type adh\xe9sion;d\xe9but;fin\r\nRenard;Ga\xebl;gael@example.org;Individuelle;01/09/2026;31/08/2027\r\n";
    let (_, v) = upload(&app, &s.admin, &s.org, "galette.csv", galette).await;
    assert_eq!(v["error_count"], 0, "{v}");
    assert_eq!(commit(&app, &s.admin, &s.org, v["id"].as_str().unwrap()).await["status"], "done");
    let ods = shrooms_core::people::table_file(
        true,
        "Adhérents",
        &["Nom", "Prénom", "Courriel", "Type", "Début"],
        &[vec!["Lemaître".into(), "Inès".into(), "ines@example.org".into(), "Bienfaiteur".into(), "2026-05-01".into()]],
    );
    let (st, v) = upload(&app, &s.admin, &s.org, "adherents.ods", &ods).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["error_count"], 0, "{v}");
    assert_eq!(commit(&app, &s.admin, &s.org, v["id"].as_str().unwrap()).await["status"], "done");
    let (_, all) = app.get(&s.admin, &url(&s.org, "/search")).await;
    let names: Vec<&str> =
        all["items"].as_array().unwrap().iter().map(|r| r["family_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Dubois", "Garçon", "Lefèvre", "Lemaître", "Renard"]);
});

async fn ledger(app: &TestApp, s: &crate::Setup) -> Vec<Value> {
    let (st, b) = app.get(&s.admin, &format!("/api/v1/orgs/{}/accounting/entries?limit=500", s.org)).await;
    assert_eq!(st, 200, "{b}");
    b.as_array().cloned().unwrap_or_default()
}

/// The member page of the person the directory finds by `q`.
async fn member(app: &TestApp, s: &crate::Setup, q: &str) -> Value {
    let (_, found) = app.get(&s.admin, &url(&s.org, &format!("/search?q={q}"))).await;
    let id = found["items"][0]["person_id"].as_str().unwrap_or_else(|| panic!("{q} not found: {found}"));
    let (st, m) = app.get(&s.admin, &url(&s.org, &format!("/people/{id}"))).await;
    assert_eq!(st, 200, "{m}");
    m
}

/// (receipt, amount, method, paid_on) of a member's dues.
fn dues_of(m: &Value) -> Vec<(String, i64, String, String)> {
    m["dues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["receipt"].as_str().unwrap().into(),
                d["amount_cents"].as_i64().unwrap(),
                d["method"].as_str().unwrap().into(),
                d["paid_on"].as_str().unwrap().into(),
            )
        })
        .collect()
}

/// (account, debit, credit)
type Posting = (String, String, String);

/// (journal, piece, lines) of the ledger's entries, by piece.
fn postings(entries: &[Value]) -> Vec<(String, String, Vec<Posting>)> {
    let mut v: Vec<_> = entries
        .iter()
        .map(|e| {
            assert_eq!(e["status"], "validated", "{e}");
            assert_eq!(e["source"], "members", "{e}");
            let lines = e["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| {
                    (
                        l["account"].as_str().unwrap().to_string(),
                        l["debit"].as_str().unwrap().to_string(),
                        l["credit"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (e["journal"].as_str().unwrap().to_string(), e["piece_ref"].as_str().unwrap().to_string(), lines)
        })
        .collect();
    v.sort_by(|a, b| a.1.cmp(&b.1));
    v
}

fn line(a: &str, d: &str, c: &str) -> Posting {
    (a.into(), d.into(), c.into())
}

db_test!(members_import_records_the_dues_a_file_says_paid, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = crate::year();
    yearly(&app, &s, "Individuelle").await;
    // Hélène paid by cheque on a date; Noël did not pay; Zoé paid cash (no
    // date: the period's first day); Gaël's row has no "paid" cell but an
    // amount paid, part of the fee, by transfer.
    let file = format!(
        "Nom;Prénom;Courriel;Catégorie;Date d'inscription;Échéance;Cotisation payée;Date de paiement;Mode de paiement;Montant payé\n\
         Lefèvre;Hélène;helene@example.org;Individuelle;01/01/{y};31/12/{y};Oui;01/01/{y};Chèque;\n\
         Dubois;Noël;noel@example.org;Individuelle;01/01/{y};31/12/{y};non;;;\n\
         Garçon;Zoé;zoe@example.org;Individuelle;01/01/{y};31/12/{y};x;;espèces;\n\
         Renard;Gaël;gael@example.org;Individuelle;01/01/{y};31/12/{y};;01/01/{y};Virement;12,50\n"
    );
    let (st, v) = upload(&app, &s.admin, &s.org, "paheko.csv", file.as_bytes()).await;
    assert_eq!(st, 201, "{v}");
    assert_eq!(v["error_count"], 0, "{v}");
    for (field, column) in [
        ("paid", "Cotisation payée"),
        ("paid_on", "Date de paiement"),
        ("method", "Mode de paiement"),
        ("amount_paid", "Montant payé"),
        ("type", "Catégorie"),
    ] {
        assert_eq!(v["mapping"][field], column, "{v}");
    }
    // The dry run posted nothing.
    assert!(ledger(&app, &s).await.is_empty());
    let done = commit(&app, &s.admin, &s.org, v["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");

    let jan1 = format!("{y}-01-01");
    let h = member(&app, &s, "helene").await;
    assert_eq!(dues_of(&h), [("RC-000001".to_string(), 3000, "cheque".to_string(), jan1.clone())], "{h}");
    assert_eq!(h["standing"]["standing"], "up_to_date", "{h}");
    assert_eq!(h["periods"][0]["paid_cents"], 3000, "{h}");
    let n = member(&app, &s, "noel").await;
    assert!(dues_of(&n).is_empty(), "{n}");
    assert_eq!(n["standing"]["standing"], "dues_unpaid", "{n}");
    let z = member(&app, &s, "zoe").await;
    assert_eq!(dues_of(&z), [("RC-000002".to_string(), 3000, "cash".to_string(), jan1.clone())], "{z}");
    assert_eq!(z["standing"]["standing"], "up_to_date", "{z}");
    let g = member(&app, &s, "gael").await;
    assert_eq!(dues_of(&g), [("RC-000003".to_string(), 1250, "transfer".to_string(), jan1.clone())], "{g}");
    assert_eq!(g["standing"]["standing"], "dues_unpaid", "{g}");
    assert_eq!(g["standing"]["due_cents"], 1750, "{g}");
    // The directory agrees (its summary rows were refreshed).
    let (_, late) = app.get(&s.admin, &url(&s.org, "/search?status=dues_unpaid")).await;
    let mut late: Vec<&str> =
        late["items"].as_array().unwrap().iter().map(|r| r["family_name"].as_str().unwrap()).collect();
    late.sort();
    assert_eq!(late, ["Dubois", "Renard"]);
    // The ledger: one validated entry per receipt, bank or cash against dues.
    let entries = ledger(&app, &s).await;
    assert_eq!(
        postings(&entries),
        [
            ("BQ".into(), "RC-000001".into(), vec![line("512", "30.00", "0.00"), line("7561", "0.00", "30.00")]),
            ("CA".into(), "RC-000002".into(), vec![line("531", "30.00", "0.00"), line("7561", "0.00", "30.00")]),
            ("BQ".into(), "RC-000003".into(), vec![line("512", "12.50", "0.00"), line("7561", "0.00", "12.50")]),
        ]
    );
    assert!(entries.iter().all(|e| e["date"] == jan1.as_str()), "{entries:?}");

    // The same file again: no new period, no second due, no entry.
    let (_, v) = upload(&app, &s.admin, &s.org, "paheko.csv", file.as_bytes()).await;
    assert_eq!(v["error_count"], 0, "{v}");
    assert_eq!(commit(&app, &s.admin, &s.org, v["id"].as_str().unwrap()).await["status"], "done");
    assert_eq!(ledger(&app, &s).await.len(), 3);
    assert_eq!(dues_of(&member(&app, &s, "helene").await).len(), 1);
    assert_eq!(dues_of(&member(&app, &s, "gael").await).len(), 1, "a partly paid period is left as it is");
    // The file updated: Noël has paid since. His period gets its due, the
    // others are still recorded once.
    let updated = file.replace(";non;;;", &format!(";oui;01/01/{y};carte;"));
    let (_, v) = upload(&app, &s.admin, &s.org, "paheko.csv", updated.as_bytes()).await;
    assert_eq!(v["error_count"], 0, "{v}");
    assert_eq!(commit(&app, &s.admin, &s.org, v["id"].as_str().unwrap()).await["status"], "done");
    let n = member(&app, &s, "noel").await;
    assert_eq!(dues_of(&n), [("RC-000004".to_string(), 3000, "card".to_string(), jan1.clone())], "{n}");
    assert_eq!(n["standing"]["standing"], "up_to_date", "{n}");
    assert_eq!(n["periods"].as_array().unwrap().len(), 1, "{n}");
    assert_eq!(ledger(&app, &s).await.len(), 4);
    assert_eq!(dues_of(&member(&app, &s, "helene").await).len(), 1);
});

db_test!(members_import_refuses_bad_payment_cells_in_the_dry_run, |app: TestApp| async move {
    let s = setup(&app).await;
    let y = crate::year();
    yearly(&app, &s, "Individuelle").await;
    // Two days ahead: in the future whatever the server's time zone.
    let later = jiff::Zoned::now().date().tomorrow().and_then(|d| d.tomorrow()).unwrap();
    let file = format!(
        "Nom;Prénom;Courriel;Type;Début;Payé;Payé le;Moyen de paiement;Montant payé\n\
         Ok;Anne;anne@example.org;Individuelle;01/01/{y};oui;01/01/{y};chèque;\n\
         Peut;Être;etre@example.org;Individuelle;01/01/{y};peut-être;;chèque;\n\
         Mauvaise;Date;date@example.org;Individuelle;01/01/{y};oui;32/01/{y};chèque;\n\
         Futur;Paul;paul@example.org;Individuelle;01/01/{y};oui;{later};chèque;\n\
         Troc;Tom;tom@example.org;Individuelle;01/01/{y};oui;01/01/{y};troc;\n\
         Sans;Moyen;moyen@example.org;Individuelle;01/01/{y};oui;01/01/{y};;\n\
         Trop;Payé;trop@example.org;Individuelle;01/01/{y};oui;01/01/{y};chèque;45\n\
         Non;Mais;mais@example.org;Individuelle;01/01/{y};non;01/01/{y};;\n\
         Avant;Livres;livres@example.org;Individuelle;01/01/{y};oui;15/06/{};virement;\n\
         Bien;Avant;avant@example.org;Individuelle;01/01/{y};oui;15/06/{};virement;\n",
        y - 1,
        y - 2
    );
    let (st, v) = upload(&app, &s.admin, &s.org, "cotisations.csv", file.as_bytes()).await;
    assert_eq!(st, 201, "{v}");
    let errors: Vec<(i64, String, String)> = v["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["line"].as_i64().unwrap(), e["field"].as_str().unwrap().into(), e["message"].as_str().unwrap().into())
        })
        .collect();
    let expect: &[(i64, &str, &str)] = &[
        (3, "paid", "\"peut-être\" does not say whether the fee is paid"),
        (4, "paid_on", "Write the date like"),
        (5, "paid_on", "is in the future"),
        (6, "method", "\"troc\" is not a payment method"),
        (7, "method", "Say how the fee was paid"),
        (8, "amount_paid", "The amount paid (45.00) is more than the fee (30.00)."),
        (9, "paid", "says the fee is not paid but gives a payment date"),
        (10, "paid_on", &format!("No fiscal year of the books holds {}-06-15", y - 1)),
        (11, "paid_on", "more than a year before the membership starts"),
    ];
    assert_eq!(errors.len(), expect.len(), "{errors:?}");
    for ((line, field, message), (l, f, m)) in errors.iter().zip(expect) {
        assert_eq!((line, field.as_str()), (l, *f), "{errors:?}");
        assert!(message.contains(m), "line {line}: {message:?} should say {m:?}");
    }
    // Nothing was written, and such a file cannot be committed.
    let (st, b) = app
        .post(&s.admin, &format!("/api/v1/orgs/{}/imports/{}/commit", s.org, v["id"].as_str().unwrap()), json!(null))
        .await;
    assert_eq!(st, 409, "{b}");
    let (_, people) = app.get(&s.admin, &format!("/api/v1/orgs/{}/people", s.org)).await;
    assert!(people["items"].as_array().unwrap().is_empty(), "{people}");
    assert!(ledger(&app, &s).await.is_empty());
    let (_, dues) = app.get(&s.admin, &url(&s.org, "/dues")).await;
    assert_eq!(dues.as_array().map(Vec::len), Some(0), "{dues}");

    // What the posting needs is checked too: a cash account the chart does
    // not have is named for cash rows only; unpaid rows pass.
    let (_, mut settings) = app.get(&s.admin, &url(&s.org, "/settings")).await;
    settings["cash_account"] = json!("5399");
    let (st, b) = app.send(reqwest::Method::PUT, &s.admin, &url(&s.org, "/settings"), settings).await;
    assert_eq!(st, 200, "{b}");
    let file = format!(
        "Nom;Prénom;Type;Début;Payé;Payé le;Mode de paiement\n\
         Caisse;Carl;Individuelle;01/01/{y};oui;01/01/{y};espèces\n\
         Banque;Bea;Individuelle;01/01/{y};oui;01/01/{y};virement\n\
         Rien;Rose;Individuelle;01/01/{y};non;;\n"
    );
    let (_, v) = upload(&app, &s.admin, &s.org, "caisse.csv", file.as_bytes()).await;
    assert_eq!(v["error_count"], 1, "{v}");
    assert_eq!((v["errors"][0]["line"].as_i64(), v["errors"][0]["field"].as_str()), (Some(2), Some("method")), "{v}");
    assert!(v["errors"][0]["message"].as_str().unwrap().contains("no account 5399"), "{v}");

    // Dues invoiced: a row saying paid is refused with the reason.
    crate::billing::invoice_path(&app, &s).await;
    let (_, v) = upload(&app, &s.admin, &s.org, "caisse.csv", file.replace("espèces", "virement").as_bytes()).await;
    assert_eq!(v["error_count"], 2, "{v}");
    for e in v["errors"].as_array().unwrap() {
        assert_eq!(e["field"], "paid", "{v}");
        assert!(e["message"].as_str().unwrap().contains("Dues are invoiced"), "{v}");
    }
});
