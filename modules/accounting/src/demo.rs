//! Demo data for `shrooms demo`: the books of each demo organisation, opened
//! with the associations' chart (ANC 2018-06) for last calendar year, and a
//! year of an association posted in them — dues, donations, a town grant
//! partly carried to a dedicated fund, purchases, insurance, bank charges;
//! entries up to September validated, the last quarter still in draft; a
//! bank statement of January to September, reconciled up to June, with a
//! deposit the bank credited in two parts left for the treasurer to accept.
//! Reproducible: the same seed gives the same books. Scaled by the people
//! per organisation: one member in three pays dues (15 to 600 per year).

use crate::bank::{self, BankAccountInput};
use crate::domain::{Amount, Day, Line};
use crate::error::AcctResult;
use crate::service::{self, NewEntry, OpenBooks, MODULE};
use shrooms_core::audit::Who;
use shrooms_core::ids::OrgId;
use shrooms_core::module::{DemoCtx, DemoFuture};
use shrooms_core::{AppState, CoreError};
use std::collections::HashMap;

/// xorshift64*: small, fast, reproducible; not for secrets.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    /// Cents between `lo` and `hi` euros, rounded to the euro when `whole`.
    fn euros(&mut self, lo: i64, hi: i64, whole: bool) -> Amount {
        let c = lo * 100 + self.below(((hi - lo) * 100) as u64) as i64;
        Amount(if whole { c / 100 * 100 } else { c })
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const DONORS: &[&str] =
    &["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau"];
const SUPPLIES: &[&str] = &["Papeterie", "Cartouches d'encre", "Enveloppes et timbres", "Petit matériel"];

fn line(account: &str, debit: Amount, credit: Amount, tags: &[&str]) -> Line {
    Line {
        account: account.into(),
        aux: String::new(),
        aux_label: String::new(),
        label: String::new(),
        debit,
        credit,
        currency_amount: None,
        currency: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

/// Money in (`amount` > 0: bank debited) or out, against `account`.
fn bank_entry(date: Day, label: String, piece: String, account: &str, amount: Amount, tags: &[&str]) -> NewEntry {
    let z = Amount::ZERO;
    let lines = if amount.0 > 0 {
        vec![line("512", amount, z, &[]), line(account, z, amount, tags)]
    } else {
        let a = Amount(-amount.0);
        vec![line(account, a, z, tags), line("512", z, a, &[])]
    };
    NewEntry { journal: "BQ".into(), date, label, piece_ref: piece, piece_date: None, lines }
}

pub fn run(st: AppState, ctx: DemoCtx) -> DemoFuture {
    Box::pin(async move {
        let per_org = ctx.scale.div_ceil(ctx.orgs.len().max(1));
        let members = (per_org / 3).clamp(15, 600);
        let year = Day::today().0.year() - 1;
        let (mut entries, mut reconciled) = (0usize, 0usize);
        for (i, org) in ctx.orgs.iter().enumerate() {
            let seed = ctx.seed.wrapping_add(i as u64).max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let (e, r) = seed_books(&st, *org, year, members, seed).await.map_err(CoreError::from)?;
            entries += e;
            reconciled += r;
        }
        Ok(format!(
            "accounting: books of {year} in {} organisation(s), {entries} entries, {reconciled} statement lines reconciled",
            ctx.orgs.len()
        ))
    })
}

/// Opens the books of `org` for `year` and posts the year; returns (entries, reconciled statement lines).
pub async fn seed_books(st: &AppState, org: OrgId, year: i32, members: usize, seed: u64) -> AcctResult<(usize, usize)> {
    let mut rng = Rng(seed);
    let who = Who::system("demo");
    let db = &st.db;
    let day = |m: u8, d: u8| {
        let month = time::Month::try_from(m).unwrap_or(time::Month::January);
        Day(time::Date::from_calendar_date(year, month, d.min(month.length(year))).unwrap_or(time::Date::MIN))
    };
    service::open_books_of(
        db,
        &who,
        org,
        OpenBooks {
            chart: "associations".into(),
            currency: Some("EUR".into()),
            siren: Some(String::new()),
            first_year_start: day(1, 1).iso(),
            first_year_end: None,
        },
    )
    .await?;
    let bank = bank::create_bank_account_of(
        db,
        &who,
        org,
        BankAccountInput { account: "512".into(), label: "Compte courant".into(), iban: None },
    )
    .await?;
    let z = Amount::ZERO;
    let mut all: Vec<NewEntry> = Vec::new();
    let opening = Amount(800_000 + rng.below(400) as i64 * 1000);
    all.push(NewEntry {
        journal: "AN".into(),
        date: day(1, 1),
        label: "Solde du compte courant au 1er janvier".into(),
        piece_ref: "AN-1".into(),
        piece_date: None,
        lines: vec![line("512", opening, z, &[]), line("102", z, opening, &[])],
    });
    // Dues, mostly in the first quarter; one deposit of cheques in March.
    for k in 0..members {
        let m = if k % 5 == 4 { 4 + rng.below(8) as u8 } else { 1 + rng.below(3) as u8 };
        let amount = Amount([2000, 3000, 4000, 6000][rng.below(4) as usize]);
        all.push(bank_entry(
            day(m, 1 + rng.below(28) as u8),
            format!("Cotisation {} {}", year, rng.pick(DONORS)),
            format!("C{year}-{:04}", k + 1),
            "7561",
            amount,
            &["activity:cotisations"],
        ));
    }
    let deposit = Amount(45_000);
    all.push(bank_entry(
        day(3, 15),
        "Remise de chèques n° 7 (cotisations)".into(),
        "RC-7".into(),
        "7561",
        deposit,
        &["activity:cotisations"],
    ));
    // Donations, more in December.
    for k in 0..(members / 4).max(3) {
        let m = if k % 3 == 0 { 12 } else { 1 + rng.below(11) as u8 };
        all.push(bank_entry(
            day(m, 1 + rng.below(28) as u8),
            format!("Don de M. ou Mme {}", rng.pick(DONORS)),
            format!("D{year}-{:04}", k + 1),
            "7541",
            rng.euros(10, 300, true),
            &[],
        ));
    }
    // A town grant for the youth project; a quarter is carried to a dedicated fund.
    let grant = Amount(600_000 + members as i64 * 1000);
    all.push(bank_entry(
        day(3, 20),
        "Subvention de la commune — projet jeunesse".into(),
        "SUB-1".into(),
        "744",
        grant,
        &["project:jeunesse"],
    ));
    // Monthly: energy, supplies, bank charges; the summer fair; insurance once.
    for m in 1..=12u8 {
        all.push(bank_entry(
            day(m, 5),
            format!("Électricité — facture {m:02}/{year}"),
            format!("EDF-{m:02}"),
            "6061",
            Amount(-rng.euros(40, 120, false).0),
            &[],
        ));
        all.push(bank_entry(
            day(m, 12),
            rng.pick(SUPPLIES).to_string(),
            format!("F{m:02}-{}", rng.below(900) + 100),
            "6064",
            Amount(-rng.euros(15, 90, false).0),
            &[],
        ));
        if m % 3 == 0 {
            all.push(bank_entry(
                day(m, 10),
                format!("Activités jeunesse — trimestre {}", m / 3),
                format!("J{m:02}"),
                "604",
                Amount(-(grant.0 / 6 + rng.below(5000) as i64)),
                &["project:jeunesse"],
            ));
        }
        all.push(bank_entry(
            day(m, 28),
            "Frais de tenue de compte".into(),
            format!("FR-{m:02}"),
            "627",
            Amount(-450),
            &[],
        ));
    }
    all.push(bank_entry(day(2, 3), "Assurance multirisque".into(), "MAIF-1".into(), "616", Amount(-38_500), &[]));
    all.push(bank_entry(
        day(6, 21),
        "Buvette de la fête de l'été".into(),
        "FETE-1".into(),
        "7588",
        rng.euros(600, 1500, false),
        &["project:fete"],
    ));
    all.push(bank_entry(
        day(6, 19),
        "Courses pour la fête de l'été".into(),
        "FETE-2".into(),
        "6257",
        Amount(-rng.euros(200, 400, false).0),
        &["project:fete"],
    ));
    // What the youth project did not spend goes to the dedicated fund.
    let unspent = Amount(grant.0 / 4);
    all.push(NewEntry {
        journal: "OD".into(),
        date: day(12, 31),
        label: "Report en fonds dédiés — projet jeunesse".into(),
        piece_ref: "OD-FD".into(),
        piece_date: None,
        lines: vec![line("6894", unspent, z, &["project:jeunesse"]), line("194", z, unspent, &[])],
    });
    all.sort_by(|a, b| a.date.cmp(&b.date).then_with(|| a.piece_ref.cmp(&b.piece_ref)));
    let cutoff = day(9, 30);
    let (done, open): (Vec<NewEntry>, Vec<NewEntry>) = all.into_iter().partition(|e| e.date <= cutoff);
    // The statement of January to September: what the bank saw of those entries.
    let mut csv = String::from("Date;Libellé;Montant;Référence;Solde\n");
    let mut balance = 0i64;
    for (k, e) in done.iter().enumerate() {
        let Some(l) = e.lines.iter().find(|l| l.account == "512") else { continue };
        let amount = l.debit.0 - l.credit.0;
        if e.journal == "AN" {
            balance += amount;
            continue;
        }
        if e.piece_ref == "RC-7" {
            // The bank credited the deposit in two parts, two days later.
            for (part, a) in [(1, 25_000), (2, amount - 25_000)] {
                balance += a;
                csv.push_str(&format!(
                    "{};REMISE CHEQUES 7 PARTIE {part};{};B{k}-{part};{}\n",
                    day(3, 17).iso(),
                    Amount(a),
                    Amount(balance)
                ));
            }
        } else {
            balance += amount;
            let label: String = e.label.to_uppercase().chars().filter(|c| *c != ';').take(60).collect();
            csv.push_str(&format!("{};{label};{};B{k};{}\n", e.date.iso(), Amount(amount), Amount(balance)));
        }
    }
    let n = done.len() + open.len();
    let mut tx = db.begin_durable().await?;
    service::post_entries(&mut tx, &who, org, MODULE, done, true).await?;
    service::post_entries(&mut tx, &who, org, MODULE, open, false).await?;
    tx.commit().await?;
    bank::import_statement_of(db, &who, org, &bank.id, csv.as_bytes(), &HashMap::new()).await?;
    let reconciled = bank::reconcile_same_day(db, &who, org, &bank.id, &day(6, 30).iso()).await?;
    Ok((n, reconciled))
}
