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
