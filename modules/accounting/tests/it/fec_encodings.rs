//! FEC files as other tools write them: UTF-8 with or without a byte-order
//! mark, or Windows-1252 / ISO-8859-15 (é, à, ç, €), tab- or pipe-separated.
//! Labels come through intact; a bad line is named, and nothing is written.

use crate::{open_books, text, url};
use base64::Engine;
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

const HEADER: &str = "JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib\tCompAuxNum\tCompAuxLib\tPieceRef\tPieceDate\tEcritureLib\tDebit\tCredit\tEcritureLet\tDateLet\tValidDate\tMontantdevise\tIdevise";

/// The file's lines: a journal, accounts and labels with the French letters
/// and the euro sign that Windows-1252 holds in one byte each.
fn fec_lines() -> Vec<&'static str> {
    vec![
        HEADER,
        "FE\tFêtes à thème\t1\t20250614\t512\tBanque\t\t\tR1\t20250614\tRecette fête de l'été : 1 250 €\t1250,00\t0,00\t\t\t20250620\t\t",
        "FE\tFêtes à thème\t1\t20250614\t7588\tProduits de la fête du garçon\t\t\tR1\t20250614\tRecette fête de l'été : 1 250 €\t0,00\t1250,00\t\t\t20250620\t\t",
        "FE\tFêtes à thème\t2\t20250615\t62578\tRéceptions façon œuvre\t\t\tR2\t20250615\tDîner des bénévoles à Noël\t80,00\t0,00\t\t\t20250620\t\t",
        "FE\tFêtes à thème\t2\t20250615\t512\tBanque\t\t\tR2\t20250615\tDîner des bénévoles à Noël\t0,00\t80,00\t\t\t20250620\t\t",
    ]
}

/// Windows-1252 bytes of a text (only the letters these tests use).
fn cp1252(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match c {
            '€' => 0x80,
            'œ' => 0x9C,
            c if (c as u32) < 0x100 => c as u32 as u8,
            c => panic!("{c} is not in the test's Windows-1252 table"),
        })
        .collect()
}

fn entry_labels(list: &Value) -> Vec<String> {
    let mut v: Vec<String> =
        list.as_array().unwrap().iter().map(|e| e["label"].as_str().unwrap().to_string()).collect();
    v.sort();
    v
}

db_test!(a_windows_1252_fec_keeps_its_accents, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    // A malformed amount on line 4 of a Windows-1252 file: named, nothing written.
    let mut bad = fec_lines();
    let broken = bad[3].replace("80,00\t0,00", "80,0O\t0,00");
    bad[3] = &broken;
    let (s, e) =
        app.post(t, &url(org, "/imports/fec"), json!({"content_base64": b64(&cp1252(&bad.join("\r\n")))})).await;
    assert_eq!(s, 422, "{e}");
    assert_eq!(e["errors"][0]["field"], "line 4: Debit", "{e}");
    assert_eq!(app.get(t, &url(org, "/entries")).await.1.as_array().unwrap().len(), 0, "nothing written");
    let (_, accounts) = app.get(t, &url(org, "/accounts")).await;
    assert!(!accounts.as_array().unwrap().iter().any(|a| a["number"] == "62578"), "no account created");

    // The good file, in Windows-1252: read as such, every letter intact.
    let bytes = cp1252(&(fec_lines().join("\r\n") + "\r\n"));
    assert!(std::str::from_utf8(&bytes).is_err(), "the test file is not UTF-8");
    let (s, r) = app.post(t, &url(org, "/imports/fec"), json!({"content_base64": b64(&bytes)})).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!((r["entries"].as_i64(), r["encoding"].as_str()), (Some(2), Some("windows-1252")), "{r}");
    let (_, list) = app.get(t, &url(org, "/entries")).await;
    assert_eq!(entry_labels(&list), vec!["Dîner des bénévoles à Noël", "Recette fête de l'été : 1 250 €"]);
    let (_, accounts) = app.get(t, &url(org, "/accounts")).await;
    let label = |n: &str| accounts.as_array().unwrap().iter().find(|a| a["number"] == n).unwrap()["label"].clone();
    assert_eq!(label("62578"), "Réceptions façon œuvre");
    // And out again in the FEC, in UTF-8, byte for byte the same labels.
    let (_, years) = app.get(t, &url(org, "/years")).await;
    let year = years[0]["id"].as_str().unwrap();
    let (s, _, fec) = text(&app, t, &url(org, &format!("/years/{year}/fec"))).await;
    assert_eq!(s, 200);
    assert!(fec.contains("\tFêtes à thème\t") && fec.contains("\tRéceptions façon œuvre\t"), "{fec}");
    assert!(fec.contains("\tRecette fête de l'été : 1 250 €\t") && fec.contains("\tDîner des bénévoles à Noël\t"));
});

db_test!(utf8_with_a_bom_and_pipes_and_the_upload_form, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    // UTF-8 with a byte-order mark, columns separated by vertical bars, through the page's upload.
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(fec_lines().iter().map(|l| l.replace('\t', "|")).collect::<Vec<_>>().join("\n").into_bytes());
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let upload = |file: Vec<u8>| {
        let (app, client, csrf) = (&app, client, csrf.clone());
        async move {
            let boundary = "----fec-test-boundary";
            let mut body = format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\nfec\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"FEC.txt\"\r\nContent-Type: text/plain\r\n\r\n"
            )
            .into_bytes();
            body.extend(file);
            body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
            client
                .post(app.url(&format!("/o/{org}/accounting/imports")))
                .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    // A Windows-1252 file with a bad date on line 3: the page names it.
    let mut bad = fec_lines();
    let broken = bad[2].replace("20250614\t7588", "20250631\t7588");
    bad[2] = &broken;
    let r = upload(cp1252(&bad.join("\n"))).await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("line 3: EcritureDate"), "{html}");
    assert_eq!(app.get(t, &url(org, "/entries")).await.1.as_array().unwrap().len(), 0);
    // A file that is neither tab- nor pipe-separated.
    let r = upload(fec_lines().join("\n").replace('\t', ";").into_bytes()).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("separated by tabs or by vertical bars"));
    let r = upload(bytes).await;
    assert_eq!(r.status(), 200);
    let (_, list) = app.get(t, &url(org, "/entries")).await;
    assert_eq!(entry_labels(&list), vec!["Dîner des bénévoles à Noël", "Recette fête de l'été : 1 250 €"]);
    assert_eq!(list[0]["journal"], "FE");
});
