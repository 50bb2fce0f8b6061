//! Reports: trial balance, general ledger, journal, income statement and
//! balance sheet in the associations' format, analytical report by tag —
//! for any date range, with the same range a year earlier beside it. Each
//! report is data (JSON, pages) and also a plain table for ODS and PDF.
//!
//! Every figure comes from one aggregate per account over a date range
//! (`repo::totals_by_account`), closing entries left out.

use crate::domain::{self, Amount, Day};
use crate::error::{AcctError, AcctResult};
use crate::repo::{self, Ledger};
use serde::{Deserialize, Serialize};
use shrooms_core::db::Db;
use shrooms_core::permissions::CanRead;
use sqlx::Row;
use std::collections::BTreeMap;
use utoipa::ToSchema;

#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportParams {
    /// First day (`YYYY-MM-DD`); default: the start of the fiscal year.
    pub from: Option<String>,
    /// Last day; default: the end of the fiscal year.
    pub to: Option<String>,
    /// A fiscal year id, instead of `from` and `to`.
    pub year: Option<String>,
    /// Show the same period a year earlier beside it (default true).
    pub compare: Option<bool>,
    /// General ledger: one account (or a prefix such as `6`).
    pub account: Option<String>,
    /// Journal report: one journal code.
    pub journal: Option<String>,
    /// `json` (default), `ods` or `pdf`.
    pub format: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
pub struct Period {
    #[schema(value_type = String)]
    #[serde(serialize_with = "ser_day")]
    pub from: Day,
    #[schema(value_type = String)]
    #[serde(serialize_with = "ser_day")]
    pub to: Day,
}

fn ser_day<S: serde::Serializer>(d: &Day, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&d.iso())
}

impl Period {
    pub fn previous(self) -> Period {
        Period { from: self.from.add_years(-1), to: self.to.add_years(-1) }
    }
}

/// The period a report covers: explicit dates, a fiscal year, or the fiscal
/// year holding today (else the latest).
pub fn period(l: &Ledger, p: &ReportParams) -> AcctResult<Period> {
    let year = match &p.year {
        Some(id) => Some(l.year(id).ok_or(shrooms_core::CoreError::NotFound)?),
        None => l.year_of(&Day::today().iso()).or(l.years.last()),
    };
    let from = match p.from.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => Day::parse(s).map_err(|m| AcctError::field("from", m))?,
        None => year.map(|y| y.start_day()).unwrap_or_else(Day::today),
    };
    let to = match p.to.as_deref().filter(|s| !s.trim().is_empty()) {
        Some(s) => Day::parse(s).map_err(|m| AcctError::field("to", m))?,
        None => year.map(|y| y.end_day()).unwrap_or_else(Day::today),
    };
    if to < from {
        return Err(AcctError::field("to", "The period ends before it starts."));
    }
    Ok(Period { from, to })
}

/// A report as a plain table, for ODS and PDF.
pub struct Table {
    pub title: String,
    pub header: Vec<String>,
    pub widths: Vec<f32>,
    pub rows: Vec<Vec<String>>,
}

/// The reports' headings are French: the documents an accountant files in
/// France (the API's PDF and ODS files keep them). The pages, and the files
/// downloaded from them, use the reader's language; this gives the English
/// headings. Account and rubric
/// labels stay as the French charts name them.
pub fn in_english(t: &mut Table) {
    const WORDS: &[(&str, &str)] = &[
        ("Balance générale", "Trial balance"),
        ("Compte de résultat", "Income statement"),
        ("Bilan au", "Balance sheet at"),
        ("Grand livre", "General ledger"),
        ("Journal", "Journal"),
        ("Analytique", "Analytical report"),
        ("Budget et réalisé", "Budget and actual"),
        ("Compte", "Account"),
        ("Comptes", "Accounts"),
        ("Libellé", "Label"),
        ("Débit", "Debit"),
        ("Crédit", "Credit"),
        ("Solde débiteur", "Debit balance"),
        ("Solde créditeur", "Credit balance"),
        ("Solde N-1", "Previous year"),
        ("Rubrique", "Heading"),
        ("Exercice", "This year"),
        ("Exercice précédent", "Previous year"),
        ("Poste", "Item"),
        ("Date", "Date"),
        ("Pièce", "Document"),
        ("Solde", "Balance"),
        ("Lettrage", "Matching"),
        ("Écriture", "Entry"),
        ("Étiquette", "Tag"),
        ("Produits", "Income"),
        ("Charges", "Expenses"),
        ("Résultat", "Result"),
        ("Résultat N-1", "Previous year's result"),
        ("Budget", "Budget"),
        ("Réalisé", "Actual"),
        ("Écart", "Difference"),
    ];
    for h in t.header.iter_mut() {
        if let Some((_, en)) = WORDS.iter().find(|(fr, _)| fr == h) {
            *h = en.to_string();
        }
    }
    // Titles are "<heading> <period>": the longest matching heading wins.
    let mut best: Option<&(&str, &str)> = None;
    for w in WORDS.iter().filter(|(fr, _)| t.title.starts_with(&format!("{fr} "))) {
        if best.is_none_or(|b| w.0.len() > b.0.len()) {
            best = Some(w);
        }
    }
    if let Some((fr, en)) = best {
        t.title = format!("{en}{}", &t.title[fr.len()..]);
    }
}

// ---------- trial balance ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TrialRow {
    pub account: String,
    pub label: String,
    pub debit: String,
    pub credit: String,
    /// Debit balance, or "0.00".
    pub balance_debit: String,
    pub balance_credit: String,
    /// The signed balance (debit − credit) of the previous period.
    pub previous_balance: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TrialBalance {
    pub period: Period,
    pub previous: Option<Period>,
    pub rows: Vec<TrialRow>,
    pub total_debit: String,
    pub total_credit: String,
    pub total_balance_debit: String,
    pub total_balance_credit: String,
}

async fn ledger_for(db: &Db, cap: &CanRead) -> AcctResult<(Ledger, sqlx::pool::PoolConnection<sqlx::Any>)> {
    let mut conn = db.pool().acquire().await?;
    let l = repo::ledger(&mut conn, cap.org()).await?;
    Ok((l, conn))
}

fn label_of(l: &Ledger, n: &str) -> String {
    l.accounts.get(n).map(|a| a.0.clone()).unwrap_or_default()
}

pub async fn trial_balance(db: &Db, cap: &CanRead, p: &ReportParams) -> AcctResult<TrialBalance> {
    let (l, mut conn) = ledger_for(db, cap).await?;
    let period = period(&l, p)?;
    let compare = p.compare.unwrap_or(true);
    let (cur, prev) = if compare {
        let pp = period.previous();
        drop(conn);
        let (cur, prev) = repo::totals_of_two_periods(
            db.pool(),
            cap.org(),
            (&period.from.iso(), &period.to.iso()),
            (&pp.from.iso(), &pp.to.iso()),
        )
        .await?;
        (cur, prev.into_iter().map(|(a, d, c)| (a, d.0 - c.0)).collect())
    } else {
        (repo::totals_by_account(&mut conn, cap.org(), &period.from.iso(), &period.to.iso()).await?, BTreeMap::new())
    };
    let mut accounts: Vec<String> = cur.iter().map(|c| c.0.clone()).collect();
    accounts.extend(prev.keys().cloned());
    accounts.sort();
    accounts.dedup();
    let cur: BTreeMap<String, (Amount, Amount)> = cur.into_iter().map(|(a, d, c)| (a, (d, c))).collect();
    let (mut td, mut tc, mut tbd, mut tbc) = (0, 0, 0, 0);
    let rows = accounts
        .into_iter()
        .map(|a| {
            let (d, c) = cur.get(&a).copied().unwrap_or_default();
            let bal = d.0 - c.0;
            td += d.0;
            tc += c.0;
            tbd += bal.max(0);
            tbc += (-bal).max(0);
            TrialRow {
                label: label_of(&l, &a),
                debit: d.plain(),
                credit: c.plain(),
                balance_debit: Amount(bal.max(0)).plain(),
                balance_credit: Amount((-bal).max(0)).plain(),
                previous_balance: compare.then(|| Amount(prev.get(&a).copied().unwrap_or(0)).plain()),
                account: a,
            }
        })
        .collect();
    Ok(TrialBalance {
        period,
        previous: compare.then(|| period.previous()),
        rows,
        total_debit: Amount(td).plain(),
        total_credit: Amount(tc).plain(),
        total_balance_debit: Amount(tbd).plain(),
        total_balance_credit: Amount(tbc).plain(),
    })
}

impl TrialBalance {
    pub fn table(&self) -> Table {
        let mut rows: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|r| {
                vec![
                    r.account.clone(),
                    r.label.clone(),
                    r.debit.clone(),
                    r.credit.clone(),
                    r.balance_debit.clone(),
                    r.balance_credit.clone(),
                    r.previous_balance.clone().unwrap_or_default(),
                ]
            })
            .collect();
        rows.push(vec![
            "Total".into(),
            String::new(),
            self.total_debit.clone(),
            self.total_credit.clone(),
            self.total_balance_debit.clone(),
            self.total_balance_credit.clone(),
            String::new(),
        ]);
        Table {
            title: format!("Balance générale {} – {}", self.period.from, self.period.to),
            header: ["Compte", "Libellé", "Débit", "Crédit", "Solde débiteur", "Solde créditeur", "Solde N-1"]
                .map(String::from)
                .to_vec(),
            widths: vec![1.0, 3.5, 1.3, 1.3, 1.3, 1.3, 1.3],
            rows,
        }
    }
}

// ---------- income statement ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
#[schema(as = StatementGroup)]
pub struct Group {
    pub code: String,
    pub label: String,
    pub amount: String,
    pub previous: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IncomeStatement {
    pub period: Period,
    pub previous: Option<Period>,
    pub expenses: Vec<Group>,
    pub income: Vec<Group>,
    pub total_expenses: String,
    pub total_income: String,
    /// Income − expenses: positive is a surplus.
    pub result: String,
    pub previous_total_expenses: Option<String>,
    pub previous_total_income: Option<String>,
    pub previous_result: Option<String>,
    /// Voluntary contributions in kind, shown under the statement (86 uses, 87 contributions).
    pub in_kind_uses: Vec<Group>,
    pub in_kind_contributions: Vec<Group>,
}

/// Headings of the income statement in the associations' format: an
/// account goes to the first heading whose prefix it starts with.
const EXPENSE_GROUPS: &[(&str, &str)] = &[
    ("60", "Achats"),
    ("61", "Services extérieurs"),
    ("62", "Autres services extérieurs"),
    ("63", "Impôts, taxes et versements assimilés"),
    ("64", "Charges de personnel"),
    ("657", "Aides financières"),
    ("65", "Autres charges de gestion courante"),
    ("66", "Charges financières"),
    ("67", "Charges exceptionnelles"),
    ("689", "Reports en fonds dédiés"),
    ("68", "Dotations aux amortissements, dépréciations et provisions"),
    ("69", "Impôts sur les bénéfices"),
];
const INCOME_GROUPS: &[(&str, &str)] = &[
    ("70", "Ventes de biens et de services"),
    ("71", "Production stockée"),
    ("72", "Production immobilisée"),
    ("74", "Subventions d'exploitation"),
    ("754", "Ressources liées à la générosité du public"),
    ("756", "Cotisations"),
    ("75", "Autres produits de gestion courante"),
    ("76", "Produits financiers"),
    ("77", "Produits exceptionnels"),
    ("789", "Utilisations des fonds dédiés"),
    ("78", "Reprises sur amortissements, dépréciations et provisions"),
    ("79", "Transferts de charges"),
];
const IN_KIND_USES: &[(&str, &str)] = &[
    ("860", "Secours en nature"),
    ("861", "Mise à disposition gratuite de biens"),
    ("862", "Prestations en nature"),
    ("864", "Personnel bénévole"),
    ("86", "Autres emplois des contributions volontaires"),
];
const IN_KIND_CONTRIBUTIONS: &[(&str, &str)] = &[
    ("870", "Dons en nature"),
    ("871", "Prestations en nature"),
    ("875", "Bénévolat"),
    ("87", "Autres contributions volontaires"),
];

fn group_of<'a>(groups: &'a [(&'a str, &'a str)], account: &str) -> Option<usize> {
    groups.iter().position(|(p, _)| account.starts_with(p))
}

/// Sums signed balances into headings; `sign` turns debit balances into
/// positive expenses (+1) or credit balances into positive income (−1).
fn grouped(
    groups: &[(&str, &str)],
    cur: &BTreeMap<String, i64>,
    prev: Option<&BTreeMap<String, i64>>,
    sign: i64,
) -> (Vec<Group>, i64, i64) {
    let mut c = vec![0i64; groups.len()];
    let mut p = vec![0i64; groups.len()];
    let mut used = vec![false; groups.len()];
    for (a, v) in cur {
        if let Some(i) = group_of(groups, a) {
            c[i] += v * sign;
            used[i] = true;
        }
    }
    if let Some(prev) = prev {
        for (a, v) in prev {
            if let Some(i) = group_of(groups, a) {
                p[i] += v * sign;
                used[i] = true;
            }
        }
    }
    let out = groups
        .iter()
        .enumerate()
        .filter(|(i, _)| used[*i])
        .map(|(i, (code, label))| Group {
            code: code.to_string(),
            label: label.to_string(),
            amount: Amount(c[i]).plain(),
            previous: prev.map(|_| Amount(p[i]).plain()),
        })
        .collect();
    (out, c.iter().sum(), p.iter().sum())
}

async fn balances(conn: &mut sqlx::AnyConnection, l: &Ledger, p: Period) -> AcctResult<BTreeMap<String, i64>> {
    Ok(repo::totals_by_account(conn, l.org, &p.from.iso(), &p.to.iso())
        .await?
        .into_iter()
        .map(|(a, d, c)| (a, d.0 - c.0))
        .collect())
}

pub async fn income_statement(db: &Db, cap: &CanRead, p: &ReportParams) -> AcctResult<IncomeStatement> {
    let (l, mut conn) = ledger_for(db, cap).await?;
    let period = period(&l, p)?;
    let compare = p.compare.unwrap_or(true);
    let (cur, prev) = if compare {
        drop(conn);
        let pp = period.previous();
        let (cur, prev) = repo::totals_of_two_periods(
            db.pool(),
            l.org,
            (&period.from.iso(), &period.to.iso()),
            (&pp.from.iso(), &pp.to.iso()),
        )
        .await?;
        let net = |v: Vec<(String, Amount, Amount)>| v.into_iter().map(|(a, d, c)| (a, d.0 - c.0)).collect();
        (net(cur), Some(net(prev)))
    } else {
        (balances(&mut conn, &l, period).await?, None)
    };
    let (expenses, te, pte) = grouped(EXPENSE_GROUPS, &cur, prev.as_ref(), 1);
    let (income, ti, pti) = grouped(INCOME_GROUPS, &cur, prev.as_ref(), -1);
    let (in_kind_uses, _, _) = grouped(IN_KIND_USES, &cur, prev.as_ref(), 1);
    let (in_kind_contributions, _, _) = grouped(IN_KIND_CONTRIBUTIONS, &cur, prev.as_ref(), -1);
    Ok(IncomeStatement {
        period,
        previous: compare.then(|| period.previous()),
        expenses,
        income,
        total_expenses: Amount(te).plain(),
        total_income: Amount(ti).plain(),
        result: Amount(ti - te).plain(),
        previous_total_expenses: compare.then(|| Amount(pte).plain()),
        previous_total_income: compare.then(|| Amount(pti).plain()),
        previous_result: compare.then(|| Amount(pti - pte).plain()),
        in_kind_uses,
        in_kind_contributions,
    })
}

fn group_rows(title: &str, groups: &[Group], total: (&str, &str, Option<&String>)) -> Vec<Vec<String>> {
    let mut rows = vec![vec![title.to_string(), String::new(), String::new(), String::new()]];
    for g in groups {
        rows.push(vec![g.code.clone(), g.label.clone(), g.amount.clone(), g.previous.clone().unwrap_or_default()]);
    }
    rows.push(vec![String::new(), total.0.to_string(), total.1.to_string(), total.2.cloned().unwrap_or_default()]);
    rows
}

impl IncomeStatement {
    pub fn table(&self) -> Table {
        let mut rows = group_rows(
            "Charges",
            &self.expenses,
            ("Total des charges", &self.total_expenses, self.previous_total_expenses.as_ref()),
        );
        rows.extend(group_rows(
            "Produits",
            &self.income,
            ("Total des produits", &self.total_income, self.previous_total_income.as_ref()),
        ));
        rows.push(vec![
            String::new(),
            "Résultat (excédent + / déficit −)".into(),
            self.result.clone(),
            self.previous_result.clone().unwrap_or_default(),
        ]);
        if !self.in_kind_uses.is_empty() || !self.in_kind_contributions.is_empty() {
            rows.push(vec!["Contributions volontaires en nature".into(), String::new(), String::new(), String::new()]);
            for g in self.in_kind_uses.iter().chain(&self.in_kind_contributions) {
                rows.push(vec![
                    g.code.clone(),
                    g.label.clone(),
                    g.amount.clone(),
                    g.previous.clone().unwrap_or_default(),
                ]);
            }
        }
        Table {
            title: format!("Compte de résultat {} – {}", self.period.from, self.period.to),
            header: ["Comptes", "Rubrique", "Exercice", "Exercice précédent"].map(String::from).to_vec(),
            widths: vec![1.0, 4.0, 1.5, 1.5],
            rows,
        }
    }
}

// ---------- balance sheet ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BalanceSheet {
    /// The balance sheet at `period.to`; `period.from` is where the
    /// balances start (the first fiscal year not yet carried forward).
    pub period: Period,
    pub previous: Option<Period>,
    pub assets: Vec<Group>,
    pub liabilities: Vec<Group>,
    pub total_assets: String,
    pub total_liabilities: String,
    pub previous_total_assets: Option<String>,
    pub previous_total_liabilities: Option<String>,
}

/// Asset headings: fixed side, net of depreciation (28x, 29x, 39x).
const ASSET_FIXED: &[(&str, &[&str], &str)] = &[
    ("A1", &["20", "280", "290"], "Immobilisations incorporelles"),
    ("A2", &["21", "22", "23", "281", "282", "291", "292"], "Immobilisations corporelles"),
    ("A3", &["26", "27", "296", "297"], "Immobilisations financières"),
    ("A4", &["3"], "Stocks et en-cours"),
    ("A6", &["486"], "Charges constatées d'avance"),
];
const LIABILITY_FIXED: &[(&str, &[&str], &str)] = &[
    ("P1", &["10"], "Fonds propres et réserves"),
    ("P2", &["11"], "Report à nouveau"),
    ("P3", &["12"], "Résultat de l'exercice"),
    ("P4", &["13"], "Subventions d'investissement"),
    ("P5", &["14", "15"], "Provisions"),
    ("P6", &["19"], "Fonds reportés et dédiés"),
    ("P7", &["16", "17", "18"], "Emprunts et dettes assimilées"),
    ("P11", &["487"], "Produits constatés d'avance"),
];

/// Where the balances of a balance sheet at `to` start: the first day of
/// the earliest fiscal year whose balances are not yet carried forward into
/// `to`'s year by an opening entry.
fn balance_start(l: &Ledger, to: Day) -> Day {
    let iso = to.iso();
    let Some(idx) = l.years.iter().position(|y| y.contains(&iso)) else {
        return l.years.first().map(|y| y.start_day()).unwrap_or(to);
    };
    let mut j = idx;
    while j > 0 && !l.years[j - 1].is_closed() {
        j -= 1;
    }
    l.years[j].start_day()
}

fn sheet_at(l: &Ledger, bal: &BTreeMap<String, i64>) -> (Vec<i64>, Vec<i64>) {
    // Assets: fixed headings, then receivables (A5: debit balances of 4x)
    // and cash (A7: debit balances of 5x). Liabilities: fixed headings, the
    // result of unclosed periods into P3, then payables by kind and overdrafts.
    let _ = l;
    let mut a = vec![0i64; 7];
    let mut p = vec![0i64; 11];
    for (acc, &v) in bal {
        let class = domain::account_class(acc);
        if class == 6 || class == 7 {
            p[2] -= v; // the result not yet closed: income (credit) positive
            continue;
        }
        if class == 8 || class == 0 || class == 9 {
            continue;
        }
        if let Some(i) = ASSET_FIXED.iter().position(|(_, pre, _)| pre.iter().any(|x| acc.starts_with(x))) {
            let slot = [0, 1, 2, 3, 5][i];
            a[slot] += v;
            continue;
        }
        if let Some(i) = LIABILITY_FIXED.iter().position(|(_, pre, _)| pre.iter().any(|x| acc.starts_with(x))) {
            let slot = [0, 1, 2, 3, 4, 5, 6, 10][i];
            p[slot] -= v;
            continue;
        }
        match class {
            4 if v > 0 => a[4] += v,
            4 if acc.starts_with("40") => p[7] -= v,
            4 if acc.starts_with("42") || acc.starts_with("43") || acc.starts_with("44") => p[8] -= v,
            4 => p[9] -= v,
            5 if v > 0 => a[6] += v,
            5 => p[6] -= v,
            _ => a[4] += v,
        }
    }
    (a, p)
}

const ASSET_LABELS: [(&str, &str); 7] = [
    ("A1", "Immobilisations incorporelles"),
    ("A2", "Immobilisations corporelles"),
    ("A3", "Immobilisations financières"),
    ("A4", "Stocks et en-cours"),
    ("A5", "Créances"),
    ("A6", "Charges constatées d'avance"),
    ("A7", "Disponibilités"),
];
const LIABILITY_LABELS: [(&str, &str); 11] = [
    ("P1", "Fonds propres et réserves"),
    ("P2", "Report à nouveau"),
    ("P3", "Résultat de l'exercice"),
    ("P4", "Subventions d'investissement"),
    ("P5", "Provisions"),
    ("P6", "Fonds reportés et dédiés"),
    ("P7", "Emprunts et dettes financières"),
    ("P8", "Dettes fournisseurs"),
    ("P9", "Dettes fiscales et sociales"),
    ("P10", "Autres dettes"),
    ("P11", "Produits constatés d'avance"),
];

pub async fn balance_sheet(db: &Db, cap: &CanRead, p: &ReportParams) -> AcctResult<BalanceSheet> {
    let (l, mut conn) = ledger_for(db, cap).await?;
    let asked = period(&l, p)?;
    let to = asked.to;
    let period = Period { from: balance_start(&l, to), to };
    let compare = p.compare.unwrap_or(true);
    let cur = balances(&mut conn, &l, period).await?;
    let (a, pa) = sheet_at(&l, &cur);
    let prev = if compare {
        let pto = to.add_years(-1);
        let pp = Period { from: balance_start(&l, pto), to: pto };
        let b = balances(&mut conn, &l, pp).await?;
        Some((pp, sheet_at(&l, &b)))
    } else {
        None
    };
    let mk = |labels: &[(&str, &str)], cur: &[i64], prev: Option<&[i64]>| -> Vec<Group> {
        labels
            .iter()
            .enumerate()
            .filter(|(i, _)| cur[*i] != 0 || prev.is_some_and(|p| p[*i] != 0))
            .map(|(i, (code, label))| Group {
                code: code.to_string(),
                label: label.to_string(),
                amount: Amount(cur[i]).plain(),
                previous: prev.map(|p| Amount(p[i]).plain()),
            })
            .collect()
    };
    Ok(BalanceSheet {
        period,
        previous: prev.as_ref().map(|x| x.0),
        assets: mk(&ASSET_LABELS, &a, prev.as_ref().map(|x| x.1 .0.as_slice())),
        liabilities: mk(&LIABILITY_LABELS, &pa, prev.as_ref().map(|x| x.1 .1.as_slice())),
        total_assets: Amount(a.iter().sum()).plain(),
        total_liabilities: Amount(pa.iter().sum()).plain(),
        previous_total_assets: prev.as_ref().map(|x| Amount(x.1 .0.iter().sum()).plain()),
        previous_total_liabilities: prev.as_ref().map(|x| Amount(x.1 .1.iter().sum()).plain()),
    })
}

impl BalanceSheet {
    pub fn table(&self) -> Table {
        let mut rows = group_rows(
            "Actif",
            &self.assets,
            ("Total de l'actif", &self.total_assets, self.previous_total_assets.as_ref()),
        );
        rows.extend(group_rows(
            "Passif",
            &self.liabilities,
            ("Total du passif", &self.total_liabilities, self.previous_total_liabilities.as_ref()),
        ));
        Table {
            title: format!("Bilan au {}", self.period.to),
            header: ["Poste", "Rubrique", "Exercice", "Exercice précédent"].map(String::from).to_vec(),
            widths: vec![1.0, 4.0, 1.5, 1.5],
            rows,
        }
    }
}

// ---------- general ledger and journal ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LedgerLine {
    pub date: String,
    pub journal: String,
    pub reference: Option<String>,
    pub entry_id: String,
    pub account: String,
    pub label: String,
    pub debit: String,
    pub credit: String,
    /// Running balance of the account (debit − credit) within the period.
    pub balance: String,
    pub letter: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct LedgerAccount {
    pub account: String,
    pub label: String,
    pub lines: Vec<LedgerLine>,
    pub total_debit: String,
    pub total_credit: String,
    pub balance: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct GeneralLedger {
    pub period: Period,
    pub accounts: Vec<LedgerAccount>,
    /// True when the period had more lines than one report shows (50,000): narrow it.
    pub truncated: bool,
}

const MAX_REPORT_LINES: i64 = 50_000;

pub async fn general_ledger(db: &Db, cap: &CanRead, p: &ReportParams) -> AcctResult<GeneralLedger> {
    let (l, mut conn) = ledger_for(db, cap).await?;
    let period = period(&l, p)?;
    let prefix = p.account.as_deref().map(str::trim).filter(|s| !s.is_empty()).unwrap_or("").to_string();
    if !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AcctError::field("account", "Give an account number or the start of one."));
    }
    let rows = sqlx::query(
        "SELECT l.account, l.entry_date, e.journal, e.number, e.id, CASE WHEN l.label = '' THEN e.label ELSE l.label END, l.debit, l.credit, l.letter \
         FROM acct_lines l JOIN acct_entries e ON e.id = l.entry_id \
         WHERE l.org_id = $1 AND l.entry_date >= $2 AND l.entry_date <= $3 AND l.closing = 0 AND l.account LIKE $4 \
         ORDER BY l.account, l.entry_date, e.journal, e.number, l.entry_id, l.line_no LIMIT $5",
    )
    .bind(cap.org().to_string())
    .bind(period.from.iso())
    .bind(period.to.iso())
    .bind(format!("{prefix}%"))
    .bind(MAX_REPORT_LINES + 1)
    .fetch_all(&mut *conn)
    .await?;
    let truncated = rows.len() as i64 > MAX_REPORT_LINES;
    let mut accounts: Vec<LedgerAccount> = Vec::new();
    let mut totals: Vec<(i64, i64)> = Vec::new();
    for r in rows.iter().take(MAX_REPORT_LINES as usize) {
        let account: String = r.try_get(0)?;
        if accounts.last().map(|a| &a.account) != Some(&account) {
            accounts.push(LedgerAccount {
                label: label_of(&l, &account),
                account: account.clone(),
                lines: vec![],
                total_debit: String::new(),
                total_credit: String::new(),
                balance: String::new(),
            });
            totals.push((0, 0));
        }
        let (d, c): (i64, i64) = (r.try_get(6)?, r.try_get(7)?);
        let t = totals.last_mut().expect("pushed above");
        t.0 += d;
        t.1 += c;
        let journal: String = r.try_get(2)?;
        let number: Option<i64> = r.try_get(3)?;
        let bal = t.0 - t.1;
        accounts.last_mut().expect("pushed above").lines.push(LedgerLine {
            date: r.try_get(1)?,
            reference: number.map(|n| domain::entry_ref(&journal, n)),
            journal,
            entry_id: r.try_get(4)?,
            account,
            label: r.try_get(5)?,
            debit: Amount(d).plain(),
            credit: Amount(c).plain(),
            balance: Amount(bal).plain(),
            letter: r.try_get(8)?,
        });
    }
    for (a, t) in accounts.iter_mut().zip(totals) {
        a.total_debit = Amount(t.0).plain();
        a.total_credit = Amount(t.1).plain();
        a.balance = Amount(t.0 - t.1).plain();
    }
    Ok(GeneralLedger { period, accounts, truncated })
}

impl GeneralLedger {
    pub fn table(&self) -> Table {
        let mut rows = Vec::new();
        for a in &self.accounts {
            rows.push(vec![
                a.account.clone(),
                a.label.clone(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
            for l in &a.lines {
                rows.push(vec![
                    l.date.clone(),
                    l.reference.clone().unwrap_or_else(|| l.journal.clone()),
                    l.label.clone(),
                    l.debit.clone(),
                    l.credit.clone(),
                    l.balance.clone(),
                    l.letter.clone().unwrap_or_default(),
                ]);
            }
            rows.push(vec![
                String::new(),
                format!("Total {}", a.account),
                String::new(),
                a.total_debit.clone(),
                a.total_credit.clone(),
                a.balance.clone(),
                String::new(),
            ]);
        }
        Table {
            title: format!("Grand livre {} – {}", self.period.from, self.period.to),
            header: ["Date", "Pièce", "Libellé", "Débit", "Crédit", "Solde", "Lettrage"].map(String::from).to_vec(),
            widths: vec![1.2, 1.4, 3.5, 1.2, 1.2, 1.2, 0.7],
            rows,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JournalReport {
    pub period: Period,
    pub journal: Option<String>,
    pub entries: Vec<crate::service::Entry>,
    pub total_debit: String,
    pub total_credit: String,
}

pub async fn journal(db: &Db, cap: &CanRead, p: &ReportParams) -> AcctResult<JournalReport> {
    let (l, _) = ledger_for(db, cap).await?;
    let period = period(&l, p)?;
    let f = crate::service::EntryFilter {
        journal: p.journal.clone().filter(|j| !j.is_empty()),
        from: Some(period.from.iso()),
        to: Some(period.to.iso()),
        limit: Some(500),
        ..Default::default()
    };
    let mut entries = crate::service::list_entries(db, cap, &f).await?;
    entries.reverse();
    let total: Amount = entries.iter().map(|e| Amount::parse(&e.total).unwrap_or_default()).sum();
    Ok(JournalReport { period, journal: f.journal, entries, total_debit: total.plain(), total_credit: total.plain() })
}

impl JournalReport {
    pub fn table(&self) -> Table {
        let mut rows = Vec::new();
        for e in &self.entries {
            for l in &e.lines {
                rows.push(vec![
                    e.date.clone(),
                    e.reference.clone().unwrap_or_else(|| format!("{} (brouillon)", e.journal)),
                    l.account.clone(),
                    if l.label.is_empty() { e.label.clone() } else { l.label.clone() },
                    l.debit.clone(),
                    l.credit.clone(),
                ]);
            }
        }
        rows.push(vec![
            String::new(),
            String::new(),
            String::new(),
            "Total".into(),
            self.total_debit.clone(),
            self.total_credit.clone(),
        ]);
        Table {
            title: format!(
                "Journal {} {} – {}",
                self.journal.clone().unwrap_or_default(),
                self.period.from,
                self.period.to
            ),
            header: ["Date", "Écriture", "Compte", "Libellé", "Débit", "Crédit"].map(String::from).to_vec(),
            widths: vec![1.2, 1.5, 1.0, 4.0, 1.3, 1.3],
            rows,
        }
    }
}

// ---------- analytical report ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TagRow {
    pub tag: String,
    pub income: String,
    pub expenses: String,
    pub result: String,
    pub previous_result: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Analytics {
    pub period: Period,
    pub previous: Option<Period>,
    pub rows: Vec<TagRow>,
}

async fn by_tag(conn: &mut sqlx::AnyConnection, l: &Ledger, p: Period) -> AcctResult<BTreeMap<String, (i64, i64)>> {
    let rows = sqlx::query(
        "SELECT t.tag, CASE WHEN l.account LIKE '7%' THEN 7 ELSE 6 END, CAST(SUM(l.debit) AS BIGINT), CAST(SUM(l.credit) AS BIGINT) \
         FROM acct_line_tags t JOIN acct_lines l ON l.entry_id = t.entry_id AND l.line_no = t.line_no \
         WHERE t.org_id = $1 AND l.entry_date >= $2 AND l.entry_date <= $3 AND l.closing = 0 AND (l.account LIKE '6%' OR l.account LIKE '7%') \
         GROUP BY t.tag, CASE WHEN l.account LIKE '7%' THEN 7 ELSE 6 END",
    )
    .bind(l.org.to_string())
    .bind(p.from.iso())
    .bind(p.to.iso())
    .fetch_all(&mut *conn)
    .await?;
    let mut out: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for r in rows {
        let tag: String = r.try_get(0)?;
        let class: i64 = repo::sum_i64(&r, 1)?;
        let (d, c) = (repo::sum_i64(&r, 2)?, repo::sum_i64(&r, 3)?);
        let e = out.entry(tag).or_default();
        if class == 7 {
            e.0 += c - d;
        } else {
            e.1 += d - c;
        }
    }
    Ok(out)
}

pub async fn analytics(db: &Db, cap: &CanRead, p: &ReportParams) -> AcctResult<Analytics> {
    let (l, mut conn) = ledger_for(db, cap).await?;
    let period = period(&l, p)?;
    let compare = p.compare.unwrap_or(true);
    let cur = by_tag(&mut conn, &l, period).await?;
    let prev = if compare { by_tag(&mut conn, &l, period.previous()).await? } else { BTreeMap::new() };
    let mut tags: Vec<&String> = cur.keys().chain(prev.keys()).collect();
    tags.sort();
    tags.dedup();
    let rows = tags
        .into_iter()
        .map(|t| {
            let (i, e) = cur.get(t).copied().unwrap_or_default();
            let (pi, pe) = prev.get(t).copied().unwrap_or_default();
            TagRow {
                tag: t.clone(),
                income: Amount(i).plain(),
                expenses: Amount(e).plain(),
                result: Amount(i - e).plain(),
                previous_result: compare.then(|| Amount(pi - pe).plain()),
            }
        })
        .collect();
    Ok(Analytics { period, previous: compare.then(|| period.previous()), rows })
}

impl Analytics {
    pub fn table(&self) -> Table {
        Table {
            title: format!("Analytique {} – {}", self.period.from, self.period.to),
            header: ["Étiquette", "Produits", "Charges", "Résultat", "Résultat N-1"].map(String::from).to_vec(),
            widths: vec![3.0, 1.5, 1.5, 1.5, 1.5],
            rows: self
                .rows
                .iter()
                .map(|r| {
                    vec![
                        r.tag.clone(),
                        r.income.clone(),
                        r.expenses.clone(),
                        r.result.clone(),
                        r.previous_result.clone().unwrap_or_default(),
                    ]
                })
                .collect(),
        }
    }
}

/// A report's table as an ODS spreadsheet or a PDF document.
pub fn render_file(t: &Table, ods: bool, org_name: &str, colour: &str) -> Vec<u8> {
    if ods {
        let header: Vec<&str> = t.header.iter().map(String::as_str).collect();
        return shrooms_core::ods::spreadsheet(&t.title.chars().take(31).collect::<String>(), &header, &t.rows);
    }
    let mut doc = shrooms_core::pdf::Document::new(
        &t.title,
        shrooms_core::pdf::Branding { org_name: org_name.to_string(), colour: colour.to_string() },
    );
    doc.heading(&t.title);
    let header: Vec<&str> = t.header.iter().map(String::as_str).collect();
    doc.table(&header, &t.widths, &t.rows);
    doc.finish(&Day::today().iso())
}

#[cfg(test)]
mod tests {
    use super::{in_english, Table};

    #[test]
    fn headings_read_in_english() {
        let mut t = Table {
            title: "Compte de résultat 2025-01-01 – 2025-12-31".into(),
            header: ["Comptes", "Rubrique", "Exercice", "Exercice précédent"].map(String::from).to_vec(),
            widths: vec![],
            rows: vec![vec!["706".into(), "Compte".into()]],
        };
        in_english(&mut t);
        assert_eq!(t.title, "Income statement 2025-01-01 – 2025-12-31");
        assert_eq!(t.header, ["Accounts", "Heading", "This year", "Previous year"]);
        assert_eq!(t.rows[0][1], "Compte", "cells are data, not headings");
    }
}
