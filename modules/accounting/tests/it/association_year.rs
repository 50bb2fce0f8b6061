//! "Done means": a realistic year of a small association — opening
//! balance, dues, donations, a municipal grant partly carried to a dedicated
//! fund, purchases, a supplier invoice left unpaid, bank fees, volunteering
//! valued in kind, a mistake reversed — then closing. Every figure of the
//! reports is checked against values computed by hand (in the comments),
//! and the FEC of the year column by column.

use crate::{entry, open_books, text, url};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use testkit::{db_test, TestApp};

async fn simple(
    app: &TestApp,
    t: &str,
    org: &str,
    kind: &str,
    date: &str,
    label: &str,
    amount: &str,
    category: &str,
    payment: &str,
    tags: &[&str],
) {
    let (s, b) = app
        .post(
            t,
            &url(org, "/simple-entries"),
            json!({"kind": kind, "date": date, "label": label, "amount": amount,
            "category": category, "payment": payment, "tags": tags, "validate": true}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

fn group(v: &Value, list: &str, code: &str) -> (String, String) {
    let g =
        v[list].as_array().unwrap().iter().find(|g| g["code"] == code).unwrap_or_else(|| panic!("{list} {code}: {v}"));
    (g["amount"].as_str().unwrap().to_string(), g["previous"].as_str().unwrap_or("").to_string())
}

db_test!(an_association_year_adds_up_to_the_cent, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let (t, org) = (&f.admin_token, f.org_slug.as_str());
    open_books(&app, t, org).await;
    // Opening balance taken over from the paper books: 5,000.00 in the bank.
    entry(
        &app,
        t,
        org,
        "AN",
        "2025-01-01",
        "Reprise des soldes",
        &[("512", "5000.00", ""), ("102", "", "5000.00")],
        true,
    )
    .await;
    // Dues: 600 + 450 + 150 = 1,200.00 (7561).
    simple(&app, t, org, "income", "2025-01-15", "Cotisations janvier", "600", "7561", "512", &[]).await;
    simple(&app, t, org, "income", "2025-02-15", "Cotisations février", "450,00", "7561", "512", &[]).await;
    simple(&app, t, org, "income", "2025-09-20", "Cotisations rentrée", "150.00", "7561", "512", &[]).await;
    // Donations in cash, 200 of them paid into the bank.
    simple(&app, t, org, "income", "2025-03-10", "Dons manuels fête", "250", "7541", "531", &[]).await;
    simple(&app, t, org, "transfer", "2025-03-12", "Dépôt espèces", "200", "512", "531", &[]).await;
    // Insurance, supplies, hall rental (the last two for the summer fête).
    simple(&app, t, org, "expense", "2025-02-01", "Assurance", "320", "616", "512", &[]).await;
    simple(&app, t, org, "expense", "2025-05-05", "Fournitures", "180,40", "6064", "512", &["project:fete"]).await;
    simple(&app, t, org, "expense", "2025-06-10", "Location salle", "600", "6132", "512", &["project:fete"]).await;
    // The commune's grant for the fête: 3,000.00, of which 1,200.00 unspent
    // at year end goes to the dedicated fund (6894 → 194).
    simple(&app, t, org, "income", "2025-04-01", "Subvention mairie", "3000", "744", "512", &["project:fete"]).await;
    // A supplier's invoice (purchases journal) paid later, another unpaid at year end.
    entry(&app, t, org, "AC", "2025-10-01", "Facture Bricomax", &[("6063", "450", ""), ("401", "", "450")], true).await;
    entry(&app, t, org, "BQ", "2025-10-20", "Règlement Bricomax", &[("401", "450", ""), ("512", "", "450")], true)
        .await;
    entry(
        &app,
        t,
        org,
        "AC",
        "2025-12-15",
        "Honoraires expert-comptable",
        &[("6226", "300", ""), ("401", "", "300")],
        true,
    )
    .await;
    // Bank fees, one debit a quarter: 4 × 13.50 = 54.00.
    for d in ["2025-03-31", "2025-06-30", "2025-09-30", "2025-12-31"] {
        simple(&app, t, org, "expense", d, "Frais bancaires", "13.50", "627", "512", &[]).await;
    }
    // A mistake (99.00), validated, then reversed.
    let (_, list) = app.get(t, &url(org, "/entries?journal=BQ")).await;
    let before_mistake = list.as_array().unwrap().len();
    simple(&app, t, org, "expense", "2025-07-01", "Erreur de saisie", "99", "6064", "512", &[]).await;
    let (_, list) = app.get(t, &url(org, "/entries?journal=BQ&from=2025-07-01&to=2025-07-01")).await;
    let mistake = list[0]["id"].as_str().unwrap().to_string();
    let (s, r) = app.post(t, &url(org, &format!("/entries/{mistake}/reverse")), json!({"date": "2025-07-02"})).await;
    assert_eq!(s, 201, "{r}");
    assert_eq!(r["number"].as_i64().unwrap() as usize, before_mistake + 2);
    // Year-end entries by the accountant: dedicated fund, volunteering in kind.
    let e = crate::entry(
        &app,
        t,
        org,
        "OD",
        "2025-12-31",
        "Report en fonds dédiés",
        &[("6894", "1200", ""), ("194", "", "1200")],
        false,
    )
    .await;
    let (s, b) = app
        .send(
            reqwest::Method::PUT,
            t,
            &url(org, &format!("/entries/{}", e["id"].as_str().unwrap())),
            json!({"journal": "OD", "date": "2025-12-31",
            "label": "Report en fonds dédiés", "validate": true, "lines": [
            {"account": "6894", "debit": "1200", "tags": ["project:fete"]}, {"account": "194", "credit": "1200"}]}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    entry(&app, t, org, "OD", "2025-12-31", "Bénévolat valorisé", &[("864", "2000", ""), ("875", "", "2000")], true)
        .await;

    let year = "from=2025-01-01&to=2025-12-31";
    // ---- Trial balance ----
    // Debits of every entry: 5000 + 1200 + 250 + 200 + 320 + 180.40 + 600 + 3000 + 450 + 450 + 300
    // + 54 + 99 + 99 + 1200 + 2000 = 15,402.40; credits the same.
    // Debit balances: 512 7,795.60 (5000 + 1200 + 200 + 3000 − 320 − 180.40 − 600 − 450 − 54),
    // 531 50.00, class 6 3,104.40, 864 2,000.00 → 12,950.00 = credit balances
    // (102 5,000 + 194 1,200 + 401 300 + class 7 4,450 + 875 2,000).
    let (s, tb) = app.get(t, &url(org, &format!("/reports/trial-balance?{year}"))).await;
    assert_eq!(s, 200, "{tb}");
    assert_eq!((tb["total_debit"].as_str(), tb["total_credit"].as_str()), (Some("15402.40"), Some("15402.40")));
    assert_eq!(
        (tb["total_balance_debit"].as_str(), tb["total_balance_credit"].as_str()),
        (Some("12950.00"), Some("12950.00"))
    );
    let rows: BTreeMap<String, Value> = tb["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["account"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    let bal = |a: &str| {
        (
            rows[a]["balance_debit"].as_str().unwrap().to_string(),
            rows[a]["balance_credit"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(bal("512"), ("7795.60".into(), "0.00".into()));
    assert_eq!(bal("531"), ("50.00".into(), "0.00".into()));
    assert_eq!(bal("401"), ("0.00".into(), "300.00".into()));
    assert_eq!(bal("194"), ("0.00".into(), "1200.00".into()));
    assert_eq!(bal("7561"), ("0.00".into(), "1200.00".into()));
    assert_eq!((rows["6064"]["debit"].as_str(), rows["6064"]["credit"].as_str()), (Some("279.40"), Some("99.00")));
    assert_eq!(bal("6064"), ("180.40".into(), "0.00".into()));
    assert_eq!(rows.len(), 17, "{:?}", rows.keys().collect::<Vec<_>>());

    // ---- Income statement (associations' headings) ----
    // Expenses: 60 purchases 630.40 (6064 180.40 + 6063 450), 61 920.00 (616 320 + 6132 600),
    // 62 354.00 (6226 300 + 627 54), 689 1,200.00 → 3,104.40.
    // Income: 74 grants 3,000.00, 754 generosity 250.00, 756 dues 1,200.00 → 4,450.00.
    // Result: 4,450.00 − 3,104.40 = 1,345.60 surplus.
    let (_, is) = app.get(t, &url(org, &format!("/reports/income-statement?{year}"))).await;
    assert_eq!(group(&is, "expenses", "60").0, "630.40");
    assert_eq!(group(&is, "expenses", "61").0, "920.00");
    assert_eq!(group(&is, "expenses", "62").0, "354.00");
    assert_eq!(group(&is, "expenses", "689").0, "1200.00");
    assert_eq!(group(&is, "income", "74").0, "3000.00");
    assert_eq!(group(&is, "income", "754").0, "250.00");
    assert_eq!(group(&is, "income", "756").0, "1200.00");
    assert_eq!(
        (is["total_expenses"].as_str(), is["total_income"].as_str(), is["result"].as_str()),
        (Some("3104.40"), Some("4450.00"), Some("1345.60"))
    );
    assert_eq!(group(&is, "in_kind_uses", "864").0, "2000.00");
    assert_eq!(group(&is, "in_kind_contributions", "875").0, "2000.00");
    assert_eq!(is["previous_result"], "0.00", "nothing in 2024");

    // ---- Balance sheet at 31 December ----
    // Assets: cash and bank 7,845.60. Liabilities: fonds propres 5,000.00, result 1,345.60,
    // dedicated funds 1,200.00, suppliers 300.00 → 7,845.60.
    let (_, bs) = app.get(t, &url(org, &format!("/reports/balance-sheet?{year}"))).await;
    assert_eq!(group(&bs, "assets", "A7").0, "7845.60");
    assert_eq!(group(&bs, "liabilities", "P1").0, "5000.00");
    assert_eq!(group(&bs, "liabilities", "P3").0, "1345.60");
    assert_eq!(group(&bs, "liabilities", "P6").0, "1200.00");
    assert_eq!(group(&bs, "liabilities", "P8").0, "300.00");
    assert_eq!((bs["total_assets"].as_str(), bs["total_liabilities"].as_str()), (Some("7845.60"), Some("7845.60")));

    // ---- Analytics: the fête ----
    // Income 3,000.00; expenses 180.40 + 600 + 1,200 = 1,980.40; result 1,019.60.
    let (_, an) = app.get(t, &url(org, &format!("/reports/analytics?{year}"))).await;
    let fete = an["rows"].as_array().unwrap().iter().find(|r| r["tag"] == "project:fete").unwrap();
    assert_eq!(
        (fete["income"].as_str(), fete["expenses"].as_str(), fete["result"].as_str()),
        (Some("3000.00"), Some("1980.40"), Some("1019.60"))
    );

    // ---- General ledger of the bank ----
    let (_, gl) = app.get(t, &url(org, &format!("/reports/general-ledger?{year}&account=512"))).await;
    let bank = &gl["accounts"][0];
    assert_eq!((bank["account"].as_str(), bank["balance"].as_str()), (Some("512"), Some("7795.60")));
    assert_eq!(bank["lines"].as_array().unwrap().len(), 16); // AN, 3 dues, deposit, grant, 3 purchases, supplier, 4 fees, mistake and reversal

    // ---- Closing ----
    let (_, years) = app.get(t, &url(org, "/years")).await;
    let y2025 = years[0]["id"].as_str().unwrap().to_string();
    let (s, c) = app.post(t, &url(org, &format!("/years/{y2025}/close")), json!(null)).await;
    assert_eq!(s, 200, "{c}");
    assert_eq!(c["result"], "1345.60");
    assert_eq!(
        (c["next_year"]["start"].as_str(), c["next_year"]["end"].as_str()),
        (Some("2026-01-01"), Some("2026-12-31"))
    );
    let (_, an_entry) = app.get(t, &url(org, &format!("/entries/{}", c["opening_entry"].as_str().unwrap()))).await;
    assert_eq!(
        (an_entry["journal"].as_str(), an_entry["date"].as_str(), an_entry["reference"].as_str()),
        (Some("AN"), Some("2026-01-01"), Some("AN-000001"))
    );
    let lines: BTreeMap<String, (String, String)> = an_entry["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["account"].as_str().unwrap().to_string(),
                (l["debit"].as_str().unwrap().to_string(), l["credit"].as_str().unwrap().to_string()),
            )
        })
        .collect();
    assert_eq!(lines["512"], ("7795.60".into(), "0.00".into()));
    assert_eq!(lines["120"], ("0.00".into(), "1345.60".into()));
    assert_eq!(lines["401"], ("0.00".into(), "300.00".into()));
    assert_eq!(lines.len(), 6, "{lines:?}"); // 102, 120, 194, 401, 512, 531
                                             // The closed year is untouchable; its reports are unchanged by the closing entry.
    let (s, b) = app
        .post(
            t,
            &url(org, "/entries"),
            json!({"journal": "BQ", "date": "2025-12-30", "label": "Late", "lines": [
        {"account": "627", "debit": "1"}, {"account": "512", "credit": "1"}]}),
        )
        .await;
    assert_eq!(s, 422);
    assert_eq!(b["errors"][0]["field"], "date");
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("closed"), "{b}");
    assert_eq!(
        app.post(t, &url(org, &format!("/entries/{mistake}/reverse")), json!({"date": "2025-12-30"})).await.0,
        409
    );
    assert_eq!(app.post(t, &url(org, &format!("/years/{y2025}/close")), json!(null)).await.0, 409);
    let (_, tb2) = app.get(t, &url(org, &format!("/reports/trial-balance?{year}"))).await;
    assert_eq!(tb2["total_debit"], "15402.40");
    let (_, is2) = app.get(t, &url(org, &format!("/reports/income-statement?{year}"))).await;
    assert_eq!(is2["result"], "1345.60");
    // 2026 starts from the carried balances; its comparison column is 2025.
    simple(&app, t, org, "income", "2026-01-20", "Cotisations 2026", "300", "7561", "512", &[]).await;
    let (_, bs26) = app.get(t, &url(org, "/reports/balance-sheet?to=2026-01-31")).await;
    assert_eq!(group(&bs26, "assets", "A7").0, "8145.60");
    assert_eq!(group(&bs26, "liabilities", "P3").0, "1645.60"); // 1,345.60 carried + 300 of 2026
    assert_eq!(bs26["total_assets"], bs26["total_liabilities"]);
    let (_, is26) = app.get(t, &url(org, "/reports/income-statement?from=2026-01-01&to=2026-12-31")).await;
    assert_eq!((is26["result"].as_str(), is26["previous_result"].as_str()), (Some("300.00"), Some("1345.60")));
    assert_eq!(group(&is26, "income", "756"), ("300.00".into(), "1200.00".into()));

    // ---- FEC of 2025, column by column ----
    let (s, disposition, fec) = text(&app, t, &url(org, &format!("/years/{y2025}/fec"))).await;
    assert_eq!(s, 200);
    assert!(disposition.contains("123456789FEC20251231.txt"), "{disposition}");
    let mut lines = fec.split("\r\n");
    assert_eq!(
        lines.next().unwrap(),
        "JournalCode\tJournalLib\tEcritureNum\tEcritureDate\tCompteNum\tCompteLib\tCompAuxNum\tCompAuxLib\tPieceRef\tPieceDate\tEcritureLib\tDebit\tCredit\tEcritureLet\tDateLet\tValidDate\tMontantdevise\tIdevise"
    );
    let rows: Vec<Vec<&str>> = lines.filter(|l| !l.is_empty()).map(|l| l.split('\t').collect()).collect();
    // 21 entries of two lines; the closing entry is left out.
    assert_eq!(rows.len(), 42);
    let amount = |s: &str| -> i64 {
        let (i, d) = s.split_once(',').unwrap_or_else(|| panic!("amount without comma: {s}"));
        assert!(
            !i.is_empty()
                && i.bytes().all(|b| b.is_ascii_digit())
                && d.len() == 2
                && d.bytes().all(|b| b.is_ascii_digit()),
            "amount {s}"
        );
        i.parse::<i64>().unwrap() * 100 + d.parse::<i64>().unwrap()
    };
    let date = |s: &str| {
        assert!(s.len() == 8 && s.bytes().all(|b| b.is_ascii_digit()), "date {s}");
        assert!(("20250101".."20260101").contains(&s) || s >= "20250101", "date {s}");
    };
    let mut by_entry: BTreeMap<String, (i64, i64, String)> = BTreeMap::new();
    let mut numbers: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for r in &rows {
        assert_eq!(r.len(), 18, "{r:?}");
        let (journal, num) = (r[0], r[2]);
        assert!(!journal.is_empty() && !r[1].is_empty(), "JournalCode, JournalLib: {r:?}");
        assert!(num.starts_with(&format!("{journal}-")), "EcritureNum {num}");
        date(r[3]);
        assert!(("20250101"..="20251231").contains(&r[3]), "EcritureDate in the year: {r:?}");
        assert!(r[4].len() >= 3 && r[4].bytes().all(|b| b.is_ascii_digit()), "CompteNum {r:?}");
        assert!(!r[5].is_empty(), "CompteLib {r:?}");
        assert!(!r[8].is_empty(), "PieceRef {r:?}");
        date(r[9]);
        assert!(!r[10].is_empty(), "EcritureLib {r:?}");
        let (d, c) = (amount(r[11]), amount(r[12]));
        assert!((d == 0) != (c == 0), "one side per line: {r:?}");
        assert_eq!((r[13], r[14]), ("", ""), "no lettering yet");
        date(r[15]);
        assert_eq!((r[16], r[17]), ("", ""));
        let e = by_entry.entry(num.to_string()).or_insert((0, 0, r[3].to_string()));
        e.0 += d;
        e.1 += c;
        assert_eq!(e.2, r[3], "one date per entry");
        let n: i64 = num[journal.len() + 1..].parse().unwrap();
        let v = numbers.entry(journal.to_string()).or_default();
        if v.last() != Some(&n) {
            v.push(n);
        }
    }
    assert!(by_entry.values().all(|(d, c, _)| d == c), "every entry balances");
    assert_eq!(by_entry.len(), 21);
    let total: i64 = by_entry.values().map(|e| e.0).sum();
    assert_eq!(total, 1_540_240, "the FEC holds the same 15,402.40 as the trial balance");
    for (j, v) in &numbers {
        let mut sorted = v.clone();
        sorted.sort();
        assert_eq!(sorted, (1..=v.len() as i64).collect::<Vec<_>>(), "journal {j} numbered without gap");
    }
    assert_eq!(numbers["AN"], vec![1], "the opening entry is in the FEC");
    assert!(!numbers.contains_key("CL"), "the closing entry is not");

    // ---- The check, then a tampered row ----
    let report = shrooms_accounting::check::run(&app.state.db).await.unwrap();
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.closed_years, 1);
    sqlx::query("UPDATE acct_lines SET debit = 60001 WHERE account = '6132' AND closing = 0")
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let report = shrooms_accounting::check::run(&app.state.db).await.unwrap();
    let all = report.problems.join("\n");
    assert!(all.contains("does not balance"), "{all}");
    assert!(all.contains("changed after validation"), "{all}");
    assert!(all.contains("was changed after closing"), "{all}");
});
