//! The ledger's rules as users meet them: balanced entries, clear errors
//! naming the line and field, final validated entries, continuous numbers,
//! reversal, permissions, FEC import all-or-nothing, pages.

use crate::{entry, open_books, url};
use serde_json::json;
use testkit::{db_test, TestApp};

db_test!(bad_entries_are_refused_with_the_line_and_field, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    // Before the books are opened, entries say so.
    let (s, b) = app
        .post(
            t,
            &url(org, "/entries"),
            json!({"journal": "BQ", "date": "2025-01-02", "label": "x", "lines": [
        {"account": "512", "debit": "1"}, {"account": "7561", "credit": "1"}]}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    let books = open_books(&app, t, org).await;
    assert_eq!(books["chart"], "associations");
    assert_eq!(books["years"][0]["end"], "2025-12-31");
    let post = |body: serde_json::Value| {
        let app = &app;
        async move { app.post(t, &url(org, "/entries"), body).await }
    };
    // Unbalanced.
    let (s, b) = post(json!({"journal": "BQ", "date": "2025-02-01", "label": "Dues", "lines": [
        {"account": "512", "debit": "30.00"}, {"account": "7561", "credit": "29,99"}]}))
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "lines");
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("0.01"), "{b}");
    // An account that does not exist, and a float amount: each named by line and field.
    let (s, b) = post(json!({"journal": "BQ", "date": "2025-02-01", "label": "Dues", "lines": [
        {"account": "512", "debit": 30.5}, {"account": "7569999", "credit": "30.50"}]}))
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "lines[0].debit", "{b}");
    let (s, b) = post(json!({"journal": "BQ", "date": "2025-02-01", "label": "Dues", "lines": [
        {"account": "512", "debit": "30.50"}, {"account": "7569999", "credit": "30.50"}]}))
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "lines[1].account", "{b}");
    // Garbage amount, both sides on one line, no fiscal year for the date.
    let (s, b) = post(json!({"journal": "BQ", "date": "2026-02-01", "label": "Dues", "lines": [
        {"account": "512", "debit": "12.345"}, {"account": "7561", "debit": "1", "credit": "1"}]}))
    .await;
    assert_eq!(s, 422, "{b}");
    let fields: Vec<&str> = b["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["lines[0].debit", "lines[1].credit"], "{b}");
    let (s, b) = post(json!({"journal": "BQ", "date": "2026-02-01", "label": "Dues", "lines": [
        {"account": "512", "debit": "1 234,56"}, {"account": "7561", "credit": "1234.56"}]}))
    .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "date", "{b}");
    // Nothing was written by any of these.
    let (_, list) = app.get(t, &url(org, "/entries")).await;
    assert_eq!(list.as_array().unwrap().len(), 0);
});

db_test!(validated_entries_are_final_numbered_and_reversed, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let draft =
        entry(&app, t, org, "BQ", "2025-03-01", "Hall rental", &[("6132", "600.00", ""), ("512", "", "600")], false)
            .await;
    assert_eq!(draft["status"], "draft");
    assert!(draft["number"].is_null());
    let id = draft["id"].as_str().unwrap();
    // A draft can change.
    let (s, b) = app
        .send(
            reqwest::Method::PUT,
            t,
            &url(org, &format!("/entries/{id}")),
            json!({"journal": "BQ", "date": "2025-03-02", "label": "Hall rental (March)",
            "lines": [{"account": "6132", "debit": "650"}, {"account": "512", "credit": "650"}]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["total"], "650.00");
    // Validation numbers it.
    let (s, v) = app.post(t, &url(org, &format!("/entries/{id}/validate")), json!(null)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["number"].as_i64(), v["reference"].as_str()),
        (Some("validated"), Some(1), Some("BQ-000001"))
    );
    // Then it is final: no change, no deletion, no second validation.
    let (s, b) = app
        .send(
            reqwest::Method::PUT,
            t,
            &url(org, &format!("/entries/{id}")),
            json!({"journal": "BQ", "date": "2025-03-02", "label": "x",
            "lines": [{"account": "6132", "debit": "1"}, {"account": "512", "credit": "1"}]}),
        )
        .await;
    assert_eq!(s, 409, "{b}");
    assert!(b["detail"].as_str().unwrap().contains("reversed"), "{b}");
    assert_eq!(app.send(reqwest::Method::DELETE, t, &url(org, &format!("/entries/{id}")), json!(null)).await.0, 409);
    assert_eq!(app.post(t, &url(org, &format!("/entries/{id}/validate")), json!(null)).await.0, 409);
    // Reversal: a new validated entry with the sides swapped, next number.
    let (s, r) = app.post(t, &url(org, &format!("/entries/{id}/reverse")), json!({"date": "2025-03-05"})).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["number"], 2);
    assert_eq!(r["reverses"], id);
    assert_eq!((r["lines"][0]["account"].as_str(), r["lines"][0]["credit"].as_str()), (Some("6132"), Some("650.00")));
    assert_eq!(app.post(t, &url(org, &format!("/entries/{id}/reverse")), json!({})).await.0, 409, "reversed twice");
    let (_, tb) = app.get(t, &url(org, "/reports/trial-balance?from=2025-01-01&to=2025-12-31")).await;
    let row = tb["rows"].as_array().unwrap().iter().find(|r| r["account"] == "6132").unwrap().clone();
    assert_eq!(
        (row["debit"].as_str(), row["credit"].as_str(), row["balance_debit"].as_str()),
        (Some("650.00"), Some("650.00"), Some("0.00"))
    );
    // A draft can be deleted; its number was never taken.
    let d = entry(&app, t, org, "BQ", "2025-03-06", "Typo", &[("6132", "1", ""), ("512", "", "1")], false).await;
    assert_eq!(
        app.send(
            reqwest::Method::DELETE,
            t,
            &url(org, &format!("/entries/{}", d["id"].as_str().unwrap())),
            json!(null)
        )
        .await
        .0,
        204
    );
    let next = entry(&app, t, org, "BQ", "2025-03-07", "Fees", &[("627", "4.50", ""), ("512", "", "4.50")], true).await;
    assert_eq!(next["number"], 3);
    // Each journal has its own sequence.
    let od = entry(&app, t, org, "OD", "2025-03-07", "Misc", &[("6063", "1", ""), ("401", "", "1")], true).await;
    assert_eq!(od["reference"], "OD-000001");
    // Every change is in the audit log.
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{org}/audit?action=accounting.entry.validate")).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 4, "{audit}");
    let report = shrooms_accounting::check::run(&app.state.db).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, 4);
});

db_test!(concurrent_validations_never_share_or_skip_a_number, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (f.admin_token.clone(), f.org_slug.clone());
    open_books(&app, &t, &org).await;
    let mut handles = Vec::new();
    let app = std::sync::Arc::new(app);
    for i in 0..12 {
        let (app, t, org) = (app.clone(), t.clone(), org.clone());
        handles.push(tokio::spawn(async move {
            let (s, b) = app
                .post(
                    &t,
                    &url(&org, "/entries"),
                    json!({"journal": "BQ", "date": "2025-04-01", "label": format!("Dues {i}"), "validate": true,
                    "lines": [{"account": "512", "debit": "10"}, {"account": "7561", "credit": "10"}]}),
                )
                .await;
            assert_eq!(s, 201, "{b}");
            b["number"].as_i64().unwrap()
        }));
    }
    let mut numbers = Vec::new();
    for h in handles {
        numbers.push(h.await.unwrap());
    }
    numbers.sort();
    assert_eq!(numbers, (1..=12).collect::<Vec<i64>>());
});

db_test!(roles_and_the_module_switch_guard_the_books, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let member = app.member(t, org, "member@example.org", "member").await;
    assert_eq!(app.get(&member, &url(org, "/entries")).await.0, 403);
    let manager = app.member(t, org, "treasurer@example.org", "manager").await;
    let (s, b) = app
        .post(
            &manager,
            &url(org, "/simple-entries"),
            json!({"kind": "expense", "date": "2025-05-05", "label": "Stamps", "amount": "12,60",
            "category": "626", "payment": "531", "tags": ["project:garden"]}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    // The simple form wrote the double entry: expense debited, cash credited, cash journal.
    assert_eq!(b["journal"], "CA");
    assert_eq!((b["lines"][0]["account"].as_str(), b["lines"][0]["debit"].as_str()), (Some("626"), Some("12.60")));
    assert_eq!((b["lines"][1]["account"].as_str(), b["lines"][1]["credit"].as_str()), (Some("531"), Some("12.60")));
    assert_eq!(b["lines"][0]["tags"][0], "project:garden");
    let (s, b) = app
        .post(
            &manager,
            &url(org, "/simple-entries"),
            json!({"kind": "income", "date": "2025-05-05", "label": "x", "amount": "-3",
            "category": "6064", "payment": "512"}),
        )
        .await;
    assert_eq!(s, 422);
    let fields: Vec<&str> = b["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["amount", "category"], "{b}");
    // Closing a year is for administrators of the module.
    let (_, years) = app.get(t, &url(org, "/years")).await;
    let y = years[0]["id"].as_str().unwrap();
    assert_eq!(app.post(&manager, &url(org, &format!("/years/{y}/close")), json!(null)).await.0, 403);
    // Switched off: 404 everywhere, data kept.
    let toggle = format!("/api/v1/orgs/{org}/modules/accounting");
    assert_eq!(app.send(reqwest::Method::PUT, t, &toggle, json!({"enabled": false})).await.0, 204);
    assert_eq!(app.get(t, &url(org, "/entries")).await.0, 404);
    app.send(reqwest::Method::PUT, t, &toggle, json!({"enabled": true})).await;
    assert_eq!(app.get(t, &url(org, "/entries")).await.1.as_array().unwrap().len(), 1);
});

db_test!(a_fec_import_is_all_or_nothing_and_names_the_line, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let header = "JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib\tCompAuxNum\tCompAuxLib\tPieceRef\tPieceDate\tEcritureLib\tDebit\tCredit\tEcritureLet\tDateLet\tValidDate\tMontantdevise\tIdevise";
    let good = [
        "AN\tA nouveaux\t1\t20250101\t512000\tBanque CCP\t\t\tAN1\t20250101\tReprise\t1500,00\t0,00\t\t\t20250110\t\t",
        "AN\tA nouveaux\t1\t20250101\t102\tFonds\t\t\tAN1\t20250101\tReprise\t0,00\t1500,00\t\t\t20250110\t\t",
        "VT\tVentes\tV12\t20250203\t411\tClients\tC001\tMairie\tF12\t20250203\tBuvette\t80,00\t0,00\t\t\t20250210\t\t",
        "VT\tVentes\tV12\t20250203\t7588\tManifestations\t\t\tF12\t20250203\tBuvette\t0,00\t80,00\t\t\t20250210\t\t",
    ];
    // A malformed amount on the 4th line of the file: nothing is imported.
    let mut bad: Vec<String> = good.iter().map(|s| s.to_string()).collect();
    bad[2] = bad[2].replace("80,00", "80,0O");
    let content = format!("{header}\n{}\n", bad.join("\n"));
    let (s, b) = app.post(t, &url(org, "/imports/fec"), json!({"content": content})).await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "line 4: Debit", "{b}");
    // An unbalanced entry is named by its first line.
    let mut unbalanced: Vec<String> = good.iter().map(|s| s.to_string()).collect();
    unbalanced[3] = unbalanced[3].replace("0,00\t80,00", "0,00\t79,00");
    let (s, b) = app
        .post(t, &url(org, "/imports/fec"), json!({"content": format!("{header}\n{}\n", unbalanced.join("\n"))}))
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "line 4: EcritureNum V12", "{b}");
    let (_, accounts) = app.get(t, &url(org, "/accounts")).await;
    assert!(!accounts.as_array().unwrap().iter().any(|a| a["number"] == "512000"), "nothing half-written");
    assert_eq!(app.get(t, &url(org, "/entries")).await.1.as_array().unwrap().len(), 0);
    // The good file comes in whole, with its accounts and journal.
    let (s, b) = app
        .post(t, &url(org, "/imports/fec"), json!({"content": format!("{header}\r\n{}\r\n", good.join("\r\n"))}))
        .await;
    assert_eq!(s, 201, "{b}");
    assert_eq!((b["entries"].as_i64(), b["lines"].as_i64()), (Some(2), Some(4)));
    assert_eq!(b["accounts_created"], json!(["512000"]));
    assert_eq!(b["journals_created"], json!(["VT"]));
    let (_, list) = app.get(t, &url(org, "/entries?journal=VT")).await;
    assert_eq!(list[0]["reference"], "VT-000001");
    assert_eq!(list[0]["lines"][0]["aux"], "C001");
    let (_, is) = app.get(t, &url(org, "/reports/income-statement?from=2025-01-01&to=2025-12-31")).await;
    assert_eq!(is["total_income"], "80.00");
});

db_test!(pages_let_a_treasurer_keep_the_books, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let org = f.org_slug.clone();
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let app = &app;
    let page = |p: String| async move {
        let r = client.get(app.url(&p)).send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    };
    let (s, html) = page(format!("/o/{org}/accounting")).await;
    assert_eq!(s, 200);
    assert!(html.contains("first_year_start"), "the set-up form is shown");
    let r = client
        .post(app.url(&format!("/o/{org}/accounting/open")))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("chart", "associations"),
            ("first_year_start", "2025-01-01"),
            ("first_year_end", ""),
            ("siren", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let (_, html) = page(format!("/o/{org}/accounting/simple")).await;
    assert!(html.contains("7561 Cotisations sans contrepartie"), "categories come from the chart");
    // A bad amount re-shows the form with the error.
    let form = |amount: &'static str| {
        vec![
            ("_csrf", csrf.clone()),
            ("kind", "income".into()),
            ("date", "2025-06-01".into()),
            ("label", "Dons".into()),
            ("amount", amount.into()),
            ("category", "7541".into()),
            ("payment", "512".into()),
            ("piece_ref", "".into()),
            ("tags", "project:fete".into()),
        ]
    };
    let r = client.post(app.url(&format!("/o/{org}/accounting/simple"))).form(&form("12,5,0")).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("value=\"12,5,0\""));
    let r = client.post(app.url(&format!("/o/{org}/accounting/simple"))).form(&form("45,00")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let entry_page = r.headers()["location"].to_str().unwrap().to_string();
    let (s, html) = page(entry_page.clone()).await;
    assert_eq!(s, 200);
    assert!(html.contains("45.00") && html.contains("7541"), "{html}");
    assert!(html.contains("multipart/form-data"), "a receipt can be attached");
    for kind in ["trial-balance", "income-statement", "balance-sheet", "general-ledger", "journal", "analytics"] {
        let (s, html) = page(format!("/o/{org}/accounting/reports/{kind}?from=2025-01-01&to=2025-12-31")).await;
        assert_eq!(s, 200, "{kind}");
        assert!(html.contains("45.00"), "{kind}: {html}");
    }
    let r =
        client.get(app.url(&format!("/o/{org}/accounting/reports/income-statement?format=pdf"))).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.bytes().await.unwrap().starts_with(b"%PDF"));
    let r = client.get(app.url(&format!("/o/{org}/accounting/reports/trial-balance?format=ods"))).send().await.unwrap();
    assert!(r.bytes().await.unwrap().starts_with(b"PK"));
    let (s, html) = page(format!("/o/{org}/accounting/accounts")).await;
    assert_eq!(s, 200);
    assert!(
        html.contains("Fonds dédiés sur subventions d&#x27;exploitation")
            || html.contains("Fonds dédiés sur subventions d'exploitation")
    );
});

db_test!(a_csv_journal_takes_over_books_all_or_nothing, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let csv = |rows: &str| format!("Date;Journal;Pièce;Compte;Libellé;Débit;Crédit\n{rows}");
    let import = |content: String| {
        let app = &app;
        async move { app.post(t, &url(org, "/imports/journal-csv"), json!({"content": content})).await }
    };
    // Line 5's credit is not an amount, line 6–7's entry does not balance:
    // both named with the file's own columns, and nothing comes in.
    let bad = csv("15/01/2025;VE;F1;411;Facture F1;1 200,00;\n15/01/2025;VE;F1;706;Facture F1;;1 200,00\n\
         02/02/2025;BQ;R1;512;Règlement F1;1 200,00;\n02/02/2025;BQ;R1;411;Règlement F1;;douze\n\
         03/02/2025;OD;X1;6061;Électricité;10;\n03/02/2025;OD;X1;512;Électricité;;9\n");
    let (s, b) = import(bad).await;
    assert_eq!(s, 422, "{b}");
    let fields: Vec<&str> = b["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["line 5: Crédit", "line 6: Pièce X1"], "{b}");
    let (_, list) = app.get(t, &url(org, "/entries")).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing half-written");
    let good = csv("15/01/2025;VE;F1;411;Facture F1;1 200,00;\n15/01/2025;VE;F1;706;Facture F1;;1 200,00\n\
         02/02/2025;BQ;R1;512;Règlement F1;1 200,00;\n02/02/2025;BQ;R1;411;Règlement F1;;1200\n\
         03/02/2025;OD;X1;6061;Électricité;10;\n03/02/2025;OD;X1;512;Électricité;;10\n");
    let (s, b) = import(good).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!((b["entries"].as_u64(), b["lines"].as_u64()), (Some(3), Some(6)));
    let (_, list) = app.get(t, &url(org, "/entries?journal=VE")).await;
    assert_eq!((list[0]["status"].as_str(), list[0]["reference"].as_str()), (Some("validated"), Some("VE-000001")));
    assert_eq!((list[0]["piece_ref"].as_str(), list[0]["date"].as_str()), (Some("F1"), Some("2025-01-15")));
    assert_eq!(list[0]["source"], "accounting.csv");
    let (_, tb) = app.get(t, &url(org, "/reports/trial-balance?from=2025-01-01&to=2025-12-31")).await;
    let row = |a: &str| tb["rows"].as_array().unwrap().iter().find(|r| r["account"] == a).cloned().unwrap();
    assert_eq!(row("512")["balance_debit"], "1190.00");
    assert_eq!(row("411")["balance_debit"], "0.00");
});

db_test!(books_are_taken_over_from_the_overview_page, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let client = &app.browser;
    let csrf = app.sign_in(client, &f.admin_email, testkit::ADMIN_PASSWORD).await;
    let upload = |file: &'static str| {
        let (app, csrf) = (&app, csrf.clone());
        async move {
            let b = "----acct-takeover";
            let body = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n--{b}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\ncsv\r\n--{b}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"journal.csv\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n--{b}--\r\n"
            );
            let r = client
                .post(app.url(&format!("/o/{org}/accounting/imports")))
                .header("content-type", format!("multipart/form-data; boundary={b}"))
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (s, html) =
        upload("Date;Journal;Pièce;Compte;Libellé;Débit;Crédit\n15/01/2025;VE;F1;411;Facture;12;\n15/01/2025;VE;F1;706;Facture;;1x\n").await;
    assert_eq!(s, 422);
    assert!(html.contains("line 3: Crédit"), "{html}");
    let (s, html) =
        upload("Date;Journal;Pièce;Compte;Libellé;Débit;Crédit\n15/01/2025;VE;F1;411;Facture;12;\n15/01/2025;VE;F1;706;Facture;;12\n").await;
    assert_eq!(s, 200, "{html}");
    let (_, list) = app.get(t, &url(org, "/entries")).await;
    assert_eq!(list[0]["reference"], "VE-000001");
});

db_test!(taken_over_books_keep_their_lettering, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    let csv = "Date;Journal;Pièce;Compte;Tiers;Libellé;Débit;Crédit;Lettrage\n\
               15/01/2025;VE;F1;411;C001;Facture F1;120;;AA\n15/01/2025;VE;F1;706;;Facture F1;;120;\n\
               02/02/2025;BQ;R1;512;;Règlement F1;120;;\n02/02/2025;BQ;R1;411;C001;Règlement F1;;120;AA\n\
               03/02/2025;VE;F2;411;C001;Facture F2;80;;\n03/02/2025;VE;F2;706;;Facture F2;;80;\n";
    let (s, b) = app.post(t, &url(org, "/imports/journal-csv"), json!({"content": csv})).await;
    assert_eq!(s, 201, "{b}");
    let (_, l) = app.get(t, &url(org, "/lettering?account=411&aux=C001")).await;
    let letters: Vec<Option<&str>> = l["lines"].as_array().unwrap().iter().map(|x| x["letter"].as_str()).collect();
    assert_eq!(letters, [Some("AA"), Some("AA"), None], "{l}");
    assert_eq!(l["open_balance"], "80.00");
    // The next letter of the account follows the imported ones.
    let f2 = l["lines"][2]["entry_id"].as_str().unwrap();
    let (s, b) = app
        .post(t, &url(org, "/lettering"), json!({"account": "411", "lines": [{"entry_id": f2, "line_no": 1}]}))
        .await;
    assert_eq!((s, b["letter"].as_str()), (201, Some("ab")), "{b}");
});
