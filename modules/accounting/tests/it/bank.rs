//! Bank statements as a treasurer meets them: import in each format,
//! duplicates skipped on re-import, errors naming the line or element with
//! nothing imported, suggestions, accepting and refusing them, an entry
//! made from an unmatched line, and the reconciled balance.

use crate::{entry, open_books, url};
use serde_json::{json, Value};
use testkit::{db_test, TestApp};

const OFX: &str = "OFXHEADER:100
DATA:OFXSGML
VERSION:102

<OFX><BANKMSGSRSV1><STMTTRNRS><STMTRS><CURDEF>EUR
<BANKTRANLIST><DTSTART>20250301<DTEND>20250331
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20250305<TRNAMT>-42.10<FITID>F-001<NAME>PRLV EDF<MEMO>EDF facture mars</STMTTRN>
<STMTTRN><TRNTYPE>CREDIT<DTPOSTED>20250306120000<TRNAMT>30.00<FITID>F-002<NAME>VIR M DUPONT</STMTTRN>
<STMTTRN><TRNTYPE>DEBIT<DTPOSTED>20250331<TRNAMT>-3.50<FITID>F-003<NAME>FRAIS TENUE DE COMPTE</STMTTRN>
</BANKTRANLIST><LEDGERBAL><BALAMT>984.40<DTASOF>20250331</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>
";

fn lines(r: &Value) -> &Vec<Value> {
    r["lines"].as_array().unwrap()
}

fn line_with<'a>(r: &'a Value, amount: &str) -> &'a Value {
    lines(r).iter().find(|l| l["amount"] == amount).unwrap_or_else(|| panic!("no line of {amount} in {r}"))
}

db_test!(statements_import_and_reconcile, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    // A bank account: the IBAN's check digits are checked.
    let (s, b) = app
        .post(
            t,
            &url(org, "/bank-accounts"),
            json!({"account": "5121", "label": "Crédit Coop", "iban": "FR76 3000 6000 0112 3456 7890 188"}),
        )
        .await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("iban")), "{b}");
    let (s, b) = app.post(t, &url(org, "/bank-accounts"), json!({"account": "6061", "label": "Not a bank"})).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("account")), "{b}");
    let (s, bank) = app
        .post(
            t,
            &url(org, "/bank-accounts"),
            json!({"account": "5121", "label": "Crédit Coop", "iban": "FR76 3000 6000 0112 3456 7890 189"}),
        )
        .await;
    assert_eq!(s, 201, "{bank}");
    assert_eq!(bank["iban"], "FR7630006000011234567890189");
    let bank_id = bank["id"].as_str().unwrap();
    // The account exists in the chart now, so entries can use it.
    let dues =
        entry(&app, t, org, "BQ", "2025-03-04", "Cotisation Dupont", &[("5121", "30", ""), ("7561", "", "30")], true)
            .await;
    let edf = entry(
        &app,
        t,
        org,
        "BQ",
        "2025-02-10",
        "EDF facture de mars",
        &[("6061", "42.10", ""), ("5121", "", "42.10")],
        true,
    )
    .await;
    entry(&app, t, org, "BQ", "2025-03-20", "Cotisation Martin", &[("5121", "30", ""), ("7561", "", "30")], false)
        .await;

    let import = |content: String, mapping: Value| {
        let app = &app;
        async move {
            app.post(
                t,
                &url(org, &format!("/bank-accounts/{bank_id}/statements")),
                json!({"content": content, "mapping": mapping}),
            )
            .await
        }
    };
    let (s, r) = import(OFX.to_string(), json!({})).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!((r["format"].as_str(), r["added"].as_u64(), r["skipped"].as_u64()), (Some("ofx"), Some(3), Some(0)));
    // The same file again: every movement is already there.
    let (s, r) = import(OFX.to_string(), json!({})).await;
    assert_eq!((s, r["added"].as_u64(), r["skipped"].as_u64()), (201, Some(0), Some(3)), "{r}");

    let rec_url = url(org, &format!("/bank-accounts/{bank_id}/reconciliation"));
    let (s, rec) = app.get(t, &rec_url).await;
    assert_eq!(s, 200, "{rec}");
    assert_eq!(lines(&rec).len(), 3);
    assert_eq!(rec["statement_balance"], "984.40");
    assert_eq!(rec["reconciled_balance"], "0.00");
    // +30.00 on 6 March: the dues of 4 March (same amount, two days apart),
    // not Martin's of 20 March (same amount, 14 days, no word in common).
    let plus = line_with(&rec, "30.00");
    let sugg = plus["suggestions"].as_array().unwrap();
    assert_eq!(sugg.len(), 1, "{plus}");
    assert_eq!(
        (sugg[0]["entry_id"].as_str(), sugg[0]["reason"].as_str()),
        (dues["id"].as_str(), Some("amount_and_date"))
    );
    // −42.10: the EDF bill booked a month earlier, found by its words.
    let edf_line = line_with(&rec, "-42.10");
    assert_eq!(edf_line["suggestions"][0]["entry_id"], edf["id"]);
    assert_eq!(edf_line["suggestions"][0]["reason"], "amount_and_words");
    assert_eq!(line_with(&rec, "-3.50")["suggestions"].as_array().unwrap().len(), 0);

    // Accept the dues; refuse the EDF suggestion (it is not offered again).
    let plus_id = plus["id"].as_str().unwrap().to_string();
    let edf_id = edf_line["id"].as_str().unwrap().to_string();
    let fee_id = line_with(&rec, "-3.50")["id"].as_str().unwrap().to_string();
    let line_url = |id: &str, what: &str| url(org, &format!("/statement-lines/{id}/{what}"));
    let (s, b) = app
        .post(t, &line_url(&plus_id, "match"), json!({"entry_id": sugg[0]["entry_id"], "line_no": sugg[0]["line_no"]}))
        .await;
    assert_eq!(s, 204, "{b}");
    let (s, b) = app.post(t, &line_url(&edf_id, "reject"), json!({"entry_id": edf["id"], "line_no": 2})).await;
    assert_eq!(s, 204, "{b}");
    // A ledger line of another amount, or one already reconciled, is refused.
    let (s, b) = app.post(t, &line_url(&fee_id, "match"), json!({"entry_id": edf["id"], "line_no": 2})).await;
    assert_eq!(s, 422, "{b}");
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("-3.50"), "{b}");
    // The bank charges become an entry, reconciled at once.
    let (s, fee) = app.post(t, &line_url(&fee_id, "entry"), json!({"category": "627", "validate": true})).await;
    assert_eq!(s, 201, "{fee}");
    assert_eq!(
        (fee["journal"].as_str(), fee["status"].as_str(), fee["date"].as_str()),
        (Some("BQ"), Some("validated"), Some("2025-03-31"))
    );
    assert_eq!((fee["lines"][0]["account"].as_str(), fee["lines"][0]["debit"].as_str()), (Some("627"), Some("3.50")));
    assert_eq!((fee["lines"][1]["account"].as_str(), fee["lines"][1]["credit"].as_str()), (Some("5121"), Some("3.50")));
    let (s, b) = app.post(t, &line_url(&fee_id, "entry"), json!({"category": "627"})).await;
    assert_eq!(s, 409, "{b}");

    let (_, rec) = app.get(t, &rec_url).await;
    assert!(line_with(&rec, "-42.10")["suggestions"].as_array().unwrap().is_empty(), "{rec}");
    assert_eq!(line_with(&rec, "30.00")["entry_id"], dues["id"]);
    // Reconciled: +30.00 − 3.50; the bank says 984.40.
    assert_eq!(rec["reconciled_balance"], "26.50");
    assert_eq!(rec["difference"], "957.90");
    // Ledger: +30 +30 (draft) −42.10 −3.50.
    assert_eq!(rec["ledger_balance"], "14.40");
    let unmatched: Vec<&str> =
        rec["unmatched_ledger"].as_array().unwrap().iter().map(|l| l["amount"].as_str().unwrap()).collect();
    assert_eq!(unmatched, ["-42.10", "30.00"]);
    // Undo a reconciliation.
    let r = app.http.delete(app.url(&line_url(&plus_id, "match"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, rec) = app.get(t, &rec_url).await;
    assert_eq!(rec["reconciled_balance"], "-3.50");
    // A draft reconciled then deleted frees its statement line.
    let martin =
        rec["unmatched_ledger"].as_array().unwrap().iter().find(|l| l["date"] == "2025-03-20").unwrap().clone();
    let (s, b) = app.post(t, &line_url(&plus_id, "match"), json!({"entry_id": martin["entry_id"], "line_no": 1})).await;
    assert_eq!(s, 204, "{b}");
    let r = app
        .http
        .delete(app.url(&url(org, &format!("/entries/{}", martin["entry_id"].as_str().unwrap()))))
        .bearer_auth(t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, rec) = app.get(t, &rec_url).await;
    assert!(line_with(&rec, "30.00")["entry_id"].is_null(), "{rec}");
});

db_test!(csv_and_camt_statements_and_their_errors, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let (s, bank) = app.post(t, &url(org, "/bank-accounts"), json!({"account": "512", "label": "Banque"})).await;
    assert_eq!(s, 201, "{bank}");
    let bank_id = bank["id"].as_str().unwrap();
    let stmt_url = url(org, &format!("/bank-accounts/{bank_id}/statements"));
    let rec_url = url(org, &format!("/bank-accounts/{bank_id}/reconciliation"));
    // French columns, debit and credit apart; line 4's credit is not an amount.
    let bad = "Date opération;Libellé;Débit;Crédit;Référence\n03/03/2025;Loyer salle;500,00;;R1\n04/03/2025;Don;;25,00;R2\n05/03/2025;Subvention;;1.500,0O;R3\n";
    let (s, b) = app.post(t, &stmt_url, json!({"content": bad})).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "line 4: credit", "{b}");
    let (_, rec) = app.get(t, &rec_url).await;
    assert_eq!(lines(&rec).len(), 0, "nothing is half-imported");
    let good = bad.replace("1.500,0O", "1.500,00");
    let (s, r) = app.post(t, &stmt_url, json!({"content": good})).await;
    assert_eq!((s, r["format"].as_str(), r["added"].as_u64()), (201, Some("csv"), Some(3)), "{r}");
    let (_, rec) = app.get(t, &rec_url).await;
    let amounts: Vec<&str> = lines(&rec).iter().map(|l| l["amount"].as_str().unwrap()).collect();
    assert_eq!(amounts, ["-500.00", "25.00", "1500.00"]);
    assert_eq!(rec["statement_lines_total"], "1025.00");
    assert!(rec["statement_balance"].is_null(), "this file states no balance");
    // The rent was booked a month earlier as "Location", receipt "salle-des-fetes":
    // the receipt number shares a word with the bank's "Loyer salle".
    let (s, rent) = app
        .post(
            t,
            &url(org, "/entries"),
            json!({"journal": "BQ", "date": "2025-02-01", "label": "Location", "piece_ref": "salle-des-fetes", "validate": true,
                   "lines": [{"account": "6132", "debit": "500"}, {"account": "512", "credit": "500"}]}),
        )
        .await;
    assert_eq!(s, 201, "{rent}");
    let (_, rec) = app.get(t, &rec_url).await;
    let sugg = &line_with(&rec, "-500.00")["suggestions"][0];
    assert_eq!(
        (sugg["entry_id"].as_str(), sugg["reason"].as_str()),
        (rent["id"].as_str(), Some("amount_and_words")),
        "{rec}"
    );
    // Columns the import cannot guess are named by the user.
    let odd = "Quand,Quoi,Combien\n2025-03-10,Vente gâteaux,\"120,50\"\n";
    let (s, b) = app.post(t, &stmt_url, json!({"content": odd})).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "mapping.date", "{b}");
    let (s, r) = app
        .post(t, &stmt_url, json!({"content": odd, "mapping": {"date": "Quand", "label": "Quoi", "amount": "Combien"}}))
        .await;
    assert_eq!((s, r["added"].as_u64()), (201, Some(1)), "{r}");
    // A balance column gives the statement balance: the one after the last movement.
    let with_balance =
        "Date;Libellé;Montant;Solde\n12/03/2025;Cotisation;15,00;2 040,50\n11/03/2025;Cotisation;10,00;2 025,50\n";
    let (s, r) = app.post(t, &stmt_url, json!({"content": with_balance})).await;
    assert_eq!((s, r["added"].as_u64()), (201, Some(2)), "{r}");
    let (_, rec) = app.get(t, &rec_url).await;
    assert_eq!(rec["statement_balance"], "2040.50");
    // CAMT.053: credits and debits, the bank's reference, the closing balance.
    let camt = r#"<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>1</MsgId></GrpHdr>
<Stmt><Id>S1</Id>
<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">2145.50</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2025-03-31</Dt></Dt></Bal>
<Ntry><NtryRef>N1</NtryRef><Amt Ccy="EUR">80.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><BookgDt><Dt>2025-03-12</Dt></BookgDt>
<AcctSvcrRef>BANK-77</AcctSvcrRef><NtryDtls><TxDtls><RmtInf><Ustrd>Adhesion famille Leroy</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
<Ntry><Amt Ccy="EUR">19.90</Amt><CdtDbtInd>DBIT</CdtDbtInd><BookgDt><Dt>2025-03-15</Dt></BookgDt><AcctSvcrRef>BANK-78</AcctSvcrRef>
<NtryDtls><TxDtls><RmtInf><Ustrd>Abonnement &amp; hebergement</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
</Stmt></BkToCstmrStmt></Document>"#;
    let (s, r) = app.post(t, &stmt_url, json!({"content": camt})).await;
    assert_eq!((s, r["format"].as_str(), r["added"].as_u64()), (201, Some("camt.053"), Some(2)), "{r}");
    let (s, r) = app.post(t, &stmt_url, json!({"content": camt})).await;
    assert_eq!((s, r["skipped"].as_u64()), (201, Some(2)), "{r}");
    let (_, rec) = app.get(t, &rec_url).await;
    assert_eq!(rec["statement_balance"], "2145.50");
    let l = line_with(&rec, "-19.90");
    assert_eq!(
        (l["label"].as_str(), l["reference"].as_str(), l["date"].as_str()),
        (Some("Abonnement & hebergement"), Some("BANK-78"), Some("2025-03-15"))
    );
    // A CAMT entry without its debit/credit indicator is named.
    let broken = camt.replace("<CdtDbtInd>DBIT</CdtDbtInd>", "");
    let (s, b) = app.post(t, &stmt_url, json!({"content": broken})).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("Ntry 2: CdtDbtInd")), "{b}");
    // Members cannot import.
    let member = app.member(t, org, "member@example.org", "member").await;
    let (s, _) = app.post(&member, &stmt_url, json!({"content": camt})).await;
    assert_eq!(s, 403);
});

db_test!(the_reconciliation_page_imports_and_accepts, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let dues =
        entry(&app, t, org, "BQ", "2025-03-04", "Cotisation Dupont", &[("512", "30", ""), ("7561", "", "30")], true)
            .await;
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let r = client
        .post(app.url(&format!("/o/{org}/accounting/bank")))
        .form(&[("_csrf", csrf.as_str()), ("account", "512"), ("label", "Banque"), ("iban", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = r.headers()["location"].to_str().unwrap().to_string();
    let upload = |fields: Vec<(&'static str, &'static str)>, file: &'static str| {
        let (app, client, csrf, page) = (&app, client, csrf.clone(), page.clone());
        async move {
            let boundary = "----acct-test-boundary";
            let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n");
            for (k, v) in fields {
                body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
            }
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"releve\"\r\nContent-Type: application/octet-stream\r\n\r\n{file}\r\n--{boundary}--\r\n"
            ));
            client
                .post(app.url(&format!("{page}/statements")))
                .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let r = upload(vec![], OFX).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("VIR M DUPONT") && html.contains("984.40"), "{html}");
    let bank_id = page.rsplit('/').next().unwrap();
    let (_, rec) = app.get(t, &url(org, &format!("/bank-accounts/{bank_id}/reconciliation"))).await;
    let line = line_with(&rec, "30.00");
    let r = client
        .post(app.url(&format!("{page}/lines/{}/match", line["id"].as_str().unwrap())))
        .form(&[("_csrf", csrf.as_str()), ("entry_id", dues["id"].as_str().unwrap()), ("line_no", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, rec) = app.get(t, &url(org, &format!("/bank-accounts/{bank_id}/reconciliation"))).await;
    assert_eq!(rec["reconciled_balance"], "30.00");
    let html = client.get(app.url(&page)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("/accounting/entries/{}", dues["id"].as_str().unwrap())), "{html}");
    let html = client.get(app.url(&format!("/o/{org}/accounting/bank"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&page), "the list links to the account: {html}");
    // Columns named otherwise: the page says which is missing, then takes a mapping.
    let odd = "Quand;Quoi;Combien\n2025-03-10;Vente gateaux;120,50\n";
    let r = upload(vec![], odd).await;
    assert_eq!(r.status(), 422);
    let r = upload(vec![("map_date", "Quand"), ("map_label", "Quoi"), ("map_amount", "Combien")], odd).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Vente gateaux"));
});

db_test!(a_deposit_of_cheques_matches_several_lines, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let (_, bank) = app.post(t, &url(org, "/bank-accounts"), json!({"account": "512", "label": "Banque"})).await;
    let bank_id = bank["id"].as_str().unwrap();
    let a =
        entry(&app, t, org, "BQ", "2025-04-08", "Cotisation Aubert", &[("512", "100", ""), ("7561", "", "100")], true)
            .await;
    let b =
        entry(&app, t, org, "BQ", "2025-04-09", "Cotisation Bernard", &[("512", "50", ""), ("7561", "", "50")], true)
            .await;
    entry(&app, t, org, "BQ", "2025-04-09", "Cotisation Colin", &[("512", "70", ""), ("7561", "", "70")], true).await;
    let csv = "Date;Libellé;Montant;Référence\n10/04/2025;REMISE CHEQUES 2;150,00;RC1\n11/04/2025;REMISE CHEQUES 1;70,00;RC2\n";
    let (s, r) = app.post(t, &url(org, &format!("/bank-accounts/{bank_id}/statements")), json!({"content": csv})).await;
    assert_eq!(s, 201, "{r}");
    let rec_url = url(org, &format!("/bank-accounts/{bank_id}/reconciliation"));
    let (_, rec) = app.get(t, &rec_url).await;
    // 150 = 100 + 50, both within a week: one suggestion of two lines.
    let deposit = line_with(&rec, "150.00");
    let sugg = &deposit["suggestions"][0];
    assert_eq!(sugg["reason"], "several_lines", "{deposit}");
    let mut ids = vec![sugg["entry_id"].as_str().unwrap(), sugg["also"][0]["entry_id"].as_str().unwrap()];
    ids.sort();
    let mut want = vec![a["id"].as_str().unwrap(), b["id"].as_str().unwrap()];
    want.sort();
    assert_eq!(ids, want);
    // The page offers it with both lines in one button.
    let client = &app.browser;
    app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let html = client.get(app.url(&format!("/o/{org}/accounting/bank/{bank_id}"))).send().await.unwrap();
    let html = html.text().await.unwrap();
    let also = format!("{}:1", sugg["also"][0]["entry_id"].as_str().unwrap());
    assert!(html.contains(&format!("name=\"also\" value=\"{also}\"")), "{html}");
    let match_url = url(org, &format!("/statement-lines/{}/match", deposit["id"].as_str().unwrap()));
    // Lines that do not add up are refused.
    let (s, e) = app.post(t, &match_url, json!({"lines": [{"entry_id": a["id"], "line_no": 1}]})).await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("entry_id")), "{e}");
    let (s, e) = app
        .post(
            t,
            &match_url,
            json!({"lines": [{"entry_id": a["id"], "line_no": 1}, {"entry_id": b["id"], "line_no": 1}]}),
        )
        .await;
    assert_eq!(s, 204, "{e}");
    let (_, rec) = app.get(t, &rec_url).await;
    assert_eq!(line_with(&rec, "150.00")["matches"].as_array().unwrap().len(), 2);
    assert_eq!(rec["reconciled_balance"], "150.00");
    // Neither line can be reconciled a second time.
    let other = line_with(&rec, "70.00")["id"].as_str().unwrap().to_string();
    let (s, e) = app
        .post(
            t,
            &url(org, &format!("/statement-lines/{other}/match")),
            json!({"lines": [{"entry_id": a["id"], "line_no": 1}, {"entry_id": b["id"], "line_no": 1}]}),
        )
        .await;
    assert_eq!(s, 422, "{e}");
    assert!(e["errors"][0]["message"].as_str().unwrap().contains("already reconciled"), "{e}");
});

db_test!(one_ledger_line_matches_several_statement_lines, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let (_, bank) = app.post(t, &url(org, "/bank-accounts"), json!({"account": "512", "label": "Banque"})).await;
    let bank_id = bank["id"].as_str().unwrap();
    // One deposit slip booked once; the bank credited it in two parts.
    let slip = entry(
        &app,
        t,
        org,
        "BQ",
        "2025-05-02",
        "Remise de chèques n° 12",
        &[("512", "300", ""), ("7561", "", "300")],
        true,
    )
    .await;
    let csv = "Date;Libellé;Montant;Référence\n05/05/2025;REMISE 12 PARTIE 1;120,00;P1\n06/05/2025;REMISE 12 PARTIE 2;180,00;P2\n07/05/2025;VIREMENT X;50,00;P3\n";
    let (s, r) = app.post(t, &url(org, &format!("/bank-accounts/{bank_id}/statements")), json!({"content": csv})).await;
    assert_eq!(s, 201, "{r}");
    let rec_url = url(org, &format!("/bank-accounts/{bank_id}/reconciliation"));
    let (_, rec) = app.get(t, &rec_url).await;
    let (p1, p2, x) = (line_with(&rec, "120.00"), line_with(&rec, "180.00"), line_with(&rec, "50.00"));
    let ids = |l: &Value| l["id"].as_str().unwrap().to_string();
    let (p1_id, p2_id, x_id) = (ids(p1), ids(p2), ids(x));
    // Suggested: the slip, with the other part.
    let sugg = &p1["suggestions"][0];
    assert_eq!(sugg["reason"], "several_statement_lines", "{p1}");
    assert_eq!((&sugg["entry_id"], &sugg["statement_lines"]), (&slip["id"], &json!([p2_id])), "{p1}");
    assert_eq!(p2["suggestions"][0]["statement_lines"], json!([p1_id]), "{p2}");
    assert!(x["suggestions"].as_array().unwrap().is_empty(), "{x}");
    // Parts that do not add up: the error gives the difference, nothing is reconciled.
    let match_url = |id: &str| url(org, &format!("/statement-lines/{id}/match"));
    let (s, e) =
        app.post(t, &match_url(&p1_id), json!({"entry_id": slip["id"], "line_no": 1, "statement_lines": [x_id]})).await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("entry_id")), "{e}");
    let msg = e["errors"][0]["message"].as_str().unwrap();
    assert!(msg.contains("differ by 130.00") && msg.contains("170.00") && msg.contains("300.00"), "{msg}");
    let (s, e) = app
        .post(t, &match_url(&p1_id), json!({"entry_id": slip["id"], "line_no": 1, "statement_lines": ["nope"]}))
        .await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("statement_lines[0]")), "{e}");
    let (_, rec) = app.get(t, &rec_url).await;
    assert_eq!((rec["reconciled_balance"].as_str(), rec["unmatched_count"].as_i64()), (Some("0.00"), Some(3)));

    // Accepted on the page: the button carries the other statement line.
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let page = format!("/o/{org}/accounting/bank/{bank_id}");
    let html = client.get(app.url(&page)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&format!("name=\"with\" value=\"{p2_id}\"")), "{html}");
    let r = client
        .post(app.url(&format!("{page}/lines/{p1_id}/match")))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("entry_id", slip["id"].as_str().unwrap()),
            ("line_no", "1"),
            ("also", ""),
            ("with", p2_id.as_str()),
            ("back", "unmatched=true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], format!("{page}?unmatched=true").as_str(), "back to the same filters");
    let (_, rec) = app.get(t, &rec_url).await;
    let (p1, p2) = (line_with(&rec, "120.00"), line_with(&rec, "180.00"));
    assert!(p1["match_id"].is_string() && p1["match_id"] == p2["match_id"], "{rec}");
    assert_eq!(p1["matched_with"], json!([p2_id]));
    assert_eq!(p2["matches"], json!([{"entry_id": slip["id"], "line_no": 1}]));
    assert_eq!((rec["reconciled_balance"].as_str(), rec["unmatched_count"].as_i64()), (Some("300.00"), Some(1)));
    assert_eq!(rec["unmatched_ledger_count"], 0);
    // The slip is taken: not for the third line.
    let (s, e) = app.post(t, &match_url(&x_id), json!({"entry_id": slip["id"], "line_no": 1})).await;
    assert_eq!(s, 422, "{e}");
    let (_, only) = app.get(t, &format!("{rec_url}?unmatched=true")).await;
    assert_eq!(lines(&only).len(), 1, "{only}");

    // Undo from either line frees the whole group.
    let r = app.send(reqwest::Method::DELETE, t, &match_url(&p2_id), json!({})).await;
    assert_eq!(r.0, 204);
    let (_, rec) = app.get(t, &rec_url).await;
    assert!(lines(&rec).iter().all(|l| l["match_id"].is_null()), "{rec}");
    assert_eq!((rec["reconciled_balance"].as_str(), rec["unmatched_ledger_count"].as_i64()), (Some("0.00"), Some(1)));
    // And the API reconciles the same group again.
    let (s, e) = app
        .post(t, &match_url(&p2_id), json!({"entry_id": slip["id"], "line_no": 1, "statement_lines": [p1_id]}))
        .await;
    assert_eq!(s, 204, "{e}");
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{org}/audit?limit=20")).await;
    let actions: Vec<&str> = audit["items"].as_array().unwrap().iter().filter_map(|a| a["action"].as_str()).collect();
    assert!(actions.contains(&"accounting.statement.unmatch"), "{actions:?}");
});

db_test!(the_reconciliation_is_read_a_page_at_a_time, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let (_, bank) = app.post(t, &url(org, "/bank-accounts"), json!({"account": "512", "label": "Banque"})).await;
    let bank_id = bank["id"].as_str().unwrap();
    // 120 movements, one a day from 1 January, of 1.00, 2.00 … 120.00.
    let mut csv = String::from("Date;Libellé;Montant;Référence\n");
    for i in 0..120 {
        let d = time::Date::from_ordinal_date(2025, i + 1).unwrap();
        csv.push_str(&format!("{};MVT {:03};{},00;R{i}\n", d, i + 1, i + 1));
    }
    let (s, r) = app.post(t, &url(org, &format!("/bank-accounts/{bank_id}/statements")), json!({"content": csv})).await;
    assert_eq!((s, r["added"].as_u64()), (201, Some(120)), "{r}");
    let rec_url = url(org, &format!("/bank-accounts/{bank_id}/reconciliation"));
    let labels = |r: &Value| lines(r).iter().map(|l| l["label"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    let (s, p1) = app.get(t, &format!("{rec_url}?limit=50")).await;
    assert_eq!(s, 200, "{p1}");
    assert_eq!(labels(&p1).len(), 50);
    assert_eq!((labels(&p1)[0].as_str(), labels(&p1)[49].as_str()), ("MVT 001", "MVT 050"));
    assert!(p1["prev_cursor"].is_null());
    // Totals are the account's, not the page's: 1 + 2 + … + 120 = 7,260.
    assert_eq!((p1["statement_lines_total"].as_str(), p1["unmatched_count"].as_i64()), (Some("7260.00"), Some(120)));
    let next = |r: &Value| r["next_cursor"].as_str().unwrap().to_string();
    let (_, p2) = app.get(t, &format!("{rec_url}?limit=50&cursor={}", next(&p1))).await;
    assert_eq!((labels(&p2)[0].as_str(), labels(&p2)[49].as_str()), ("MVT 051", "MVT 100"));
    let (_, p3) = app.get(t, &format!("{rec_url}?limit=50&cursor={}", next(&p2))).await;
    assert_eq!(labels(&p3).len(), 20);
    assert!(p3["next_cursor"].is_null(), "{p3}");
    // Back from the third page is the second again.
    let (_, back) = app.get(t, &format!("{rec_url}?limit=50&cursor={}", p3["prev_cursor"].as_str().unwrap())).await;
    assert_eq!(labels(&back), labels(&p2));
    assert!(back["prev_cursor"].is_string() && back["next_cursor"].is_string());
    // Filters: a date range, and the lines not reconciled yet.
    let (_, march) = app.get(t, &format!("{rec_url}?from=2025-03-01&to=2025-03-31&limit=200")).await;
    assert_eq!(labels(&march).len(), 31);
    assert!(march["next_cursor"].is_null());
    let d = entry(&app, t, org, "BQ", "2025-01-02", "Don", &[("512", "2", ""), ("7541", "", "2")], true).await;
    let first_two = lines(&p1)[1]["id"].as_str().unwrap().to_string();
    let (s, e) = app
        .post(t, &url(org, &format!("/statement-lines/{first_two}/match")), json!({"entry_id": d["id"], "line_no": 1}))
        .await;
    assert_eq!(s, 204, "{e}");
    let (_, open) = app.get(t, &format!("{rec_url}?unmatched=true&limit=2")).await;
    assert_eq!(labels(&open), vec!["MVT 001", "MVT 003"]);
    assert_eq!(open["unmatched_count"], 119);
    // A cursor that was not given by the server, or a bad date, names the parameter.
    let (s, e) = app.get(t, &format!("{rec_url}?cursor=garbage")).await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("cursor")), "{e}");
    let (s, e) = app.get(t, &format!("{rec_url}?from=2025-02-30")).await;
    assert_eq!((s, e["errors"][0]["field"].as_str()), (422, Some("from")), "{e}");

    // The page: 50 lines, a link to the next ones, and from there one back.
    let client = &app.browser;
    app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let page = format!("/o/{org}/accounting/bank/{bank_id}");
    let html = client.get(app.url(&page)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("MVT 050") && !html.contains("MVT 051"), "one page only");
    assert!(!html.contains("rel=\"prev\""));
    let href = |html: &str, rel: &str| {
        let i = html.find(&format!("rel=\"{rel}\" href=\"")).unwrap_or_else(|| panic!("no {rel} link: {html}"));
        let rest = &html[i + rel.len() + 13..];
        // As a browser reads the attribute.
        rest[..rest.find('"').unwrap()].replace("&amp;", "&").replace("&#x2f;", "/")
    };
    let html = client.get(app.url(&href(&html, "next"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("MVT 051") && html.contains("MVT 100") && !html.contains("MVT 050"), "{html}");
    let html = client.get(app.url(&href(&html, "prev"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("MVT 001") && html.contains("MVT 050") && !html.contains("MVT 051"));
    let html =
        client.get(app.url(&format!("{page}?unmatched=true&from=2025-01-01&to=2025-01-03"))).send().await.unwrap();
    let html = html.text().await.unwrap();
    assert!(html.contains("MVT 001") && html.contains("MVT 003") && !html.contains("MVT 002"), "{html}");
});
