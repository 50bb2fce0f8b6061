//! Importing members from a spreadsheet (Paheko, Galette, any CSV or ODS)
//! through the core importer framework: each row finds its person by e-mail
//! (or creates them) and records a membership period of a type named in the
//! file. The core does the mapping, the dry run (every row checked, nothing
//! written) and the progress; this module says what a row means.
//!
//! A row may also say that the period's fee was paid (and when, how, how
//! much): the import then records that due exactly as a treasurer does by
//! hand (`service::check_due` + `service::write_dues`: receipt number,
//! validated ledger entry, audit), in the import's one transaction. The dry
//! run checks what the posting needs (dues path, books, journal, accounts,
//! an open fiscal year), so a committed import does not fail half-way.

use crate::directory;
use crate::domain::{cents_text, effective_end, Origin, PeriodRule, Rules};
use crate::service::{self, new_id, DueInput, DuesPath, Method, MODULE};
use jiff::civil::Date;
use shrooms_accounting::error::AcctError;
use shrooms_core::audit::Who;
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::import::{Field, FieldKind, ImportFuture, Importer, Record};
use shrooms_core::permissions::{CanRead, CanWrite};
use sqlx::Row;
use std::collections::{HashMap, HashSet};

pub struct MembersImporter;

const FIELDS: &[Field] = &[
    Field {
        key: "given_name",
        label_key: "field.given_name",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["prénom", "prenom", "first name", "firstname", "given name"],
    },
    Field {
        key: "family_name",
        label_key: "field.family_name",
        kind: FieldKind::Text,
        required: true,
        synonyms: &["nom", "nom de famille", "last name", "lastname", "surname", "family name", "name"],
    },
    Field {
        key: "email",
        label_key: "field.email",
        kind: FieldKind::Email,
        required: false,
        synonyms: &["e-mail", "courriel", "mail", "adresse e-mail", "adresse email", "adresse mail"],
    },
    Field {
        key: "phone",
        label_key: "field.phone",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["téléphone", "telephone", "tél", "tel", "portable", "mobile"],
    },
    Field {
        key: "type",
        label_key: "members.import.type",
        kind: FieldKind::Text,
        required: true,
        synonyms: &[
            "type",
            "type d'adhésion",
            "type adhesion",
            "catégorie",
            "categorie",
            "statut",
            "cotisation",
            "membership type",
            "tarif",
        ],
    },
    Field {
        key: "starts_on",
        label_key: "members.import.starts_on",
        kind: FieldKind::Date,
        required: true,
        synonyms: &[
            "début",
            "debut",
            "date de début",
            "date d'adhésion",
            "date adhesion",
            "date d'inscription",
            "inscription",
            "start",
            "starts on",
            "joined",
            "date",
        ],
    },
    Field {
        key: "ends_on",
        label_key: "members.import.ends_on",
        kind: FieldKind::Date,
        required: false,
        synonyms: &[
            "fin",
            "date de fin",
            "échéance",
            "echeance",
            "date d'échéance",
            "fin d'adhésion",
            "expiration",
            "end",
            "ends on",
        ],
    },
    Field {
        key: "fee",
        label_key: "members.import.fee",
        kind: FieldKind::Text,
        required: false,
        synonyms: &["montant", "montant cotisation", "fee", "amount", "prix"],
    },
    Field {
        key: "paid",
        label_key: "members.import.paid",
        kind: FieldKind::Text,
        required: false,
        synonyms: &[
            "payé",
            "payée",
            "cotisation payée",
            "cotisation réglée",
            "réglé",
            "réglée",
            "acquitté",
            "à jour de cotisation",
            "paid",
            "fee paid",
            "dues paid",
        ],
    },
    Field {
        key: "paid_on",
        label_key: "members.import.paid_on",
        kind: FieldKind::Date,
        required: false,
        synonyms: &[
            "date de paiement",
            "date paiement",
            "date du paiement",
            "payé le",
            "réglé le",
            "date de règlement",
            "date règlement",
            "date de versement",
            "paid on",
            "payment date",
            "date paid",
            "date of payment",
        ],
    },
    Field {
        key: "method",
        label_key: "members.import.method",
        kind: FieldKind::Text,
        required: false,
        synonyms: &[
            "moyen de paiement",
            "mode de paiement",
            "type de paiement",
            "moyen de règlement",
            "mode de règlement",
            "règlement",
            "paiement",
            "payment method",
            "payment type",
            "payment",
            "paid by",
            "method",
        ],
    },
    Field {
        key: "amount_paid",
        label_key: "members.import.amount_paid",
        kind: FieldKind::Text,
        required: false,
        synonyms: &[
            "montant payé",
            "montant réglé",
            "montant versé",
            "somme payée",
            "somme versée",
            "versé",
            "amount paid",
            "paid amount",
        ],
    },
];

/// The key under which the existing types travel to the row checks.
fn type_key(name: &str) -> String {
    format!("type:{}", shrooms_core::people::fold(name).split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `30`, `30.00`, `30,00`, `30 €` in cents.
fn parse_fee(s: &str) -> Option<i64> {
    let t: String = s.chars().filter(|c| !c.is_whitespace() && *c != '€').collect();
    shrooms_accounting::domain::Amount::parse(&t).ok().map(|a| a.0).filter(|c| *c >= 0)
}

/// Whether a "fee paid" cell says paid, as people and exports write it
/// (`oui`, `x`, `1`, `payé`, `non`, `0`…); `None` when it says neither.
fn parse_paid(s: &str) -> Option<bool> {
    let v = shrooms_core::people::fold(s).split_whitespace().collect::<Vec<_>>().join(" ");
    const YES: &[&str] = &[
        "oui",
        "o",
        "yes",
        "y",
        "1",
        "x",
        "true",
        "vrai",
        "paye",
        "payee",
        "regle",
        "reglee",
        "acquitte",
        "acquittee",
        "ok",
        "fait",
        "a jour",
        "✓",
        "✔",
    ];
    const NO: &[&str] = &[
        "non",
        "n",
        "no",
        "0",
        "false",
        "faux",
        "non paye",
        "non payee",
        "impaye",
        "impayee",
        "non regle",
        "non reglee",
        "a payer",
        "en attente",
        "unpaid",
        "not paid",
        "-",
    ];
    if YES.contains(&v.as_str()) {
        Some(true)
    } else if NO.contains(&v.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// A payment method as exports name it, in French or English.
fn parse_method(s: &str) -> Option<Method> {
    let v = shrooms_core::people::fold(s).split_whitespace().collect::<Vec<_>>().join(" ");
    let v = v.trim_end_matches('.');
    Some(match v {
        "cash" | "especes" | "espece" | "liquide" | "liquides" | "numeraire" | "esp" => Method::Cash,
        "cheque" | "cheques" | "check" | "chq" | "cheque bancaire" => Method::Cheque,
        "transfer" | "bank transfer" | "wire" | "virement" | "virement bancaire" | "vir" => Method::Transfer,
        "card" | "credit card" | "debit card" | "carte" | "carte bancaire" | "carte bleue" | "cb" | "online"
        | "en ligne" => Method::Card,
        "direct debit" | "direct_debit" | "sepa" | "prelevement" | "prelevement sepa" | "prelevement automatique" => {
            Method::DirectDebit
        }
        _ => return None,
    })
}

// What the row checks look up travels in the one set of strings the core
// hands them (`Importer::existing`), under these prefixes: the
// organisation's types, dues settings and fiscal years, a few dozen entries.
const TODAY: &str = "dues.today=";
/// Why no row may say its fee is paid (dues invoiced, books not set up).
const REFUSED: &str = "dues.refused=";
/// Why cash (`dues.cash=`) or other payments (`dues.bank=`) cannot be posted.
const CASH: &str = "dues.cash=";
const BANK: &str = "dues.bank=";
/// A fiscal year: `start|end|open` or `start|end|closed`.
const YEAR: &str = "dues.year=";
/// A type's fee: `fee:` + its type key + `=` + cents.
const FEE: &str = "fee:";

/// The dues facts of the organisation, read back from `existing`.
struct DuesFacts<'a> {
    today: Option<Date>,
    refused: Option<&'a str>,
    cash: Option<&'a str>,
    bank: Option<&'a str>,
    years: Vec<(&'a str, &'a str, bool)>,
}

impl<'a> DuesFacts<'a> {
    fn read(existing: &'a HashSet<String>) -> DuesFacts<'a> {
        let mut f = DuesFacts { today: None, refused: None, cash: None, bank: None, years: Vec::new() };
        for e in existing {
            if let Some(v) = e.strip_prefix(TODAY) {
                f.today = v.parse().ok();
            } else if let Some(v) = e.strip_prefix(REFUSED) {
                f.refused = Some(v);
            } else if let Some(v) = e.strip_prefix(CASH) {
                f.cash = Some(v);
            } else if let Some(v) = e.strip_prefix(BANK) {
                f.bank = Some(v);
            } else if let Some(v) = e.strip_prefix(YEAR) {
                let mut p = v.split('|');
                if let (Some(s), Some(e), Some(st)) = (p.next(), p.next(), p.next()) {
                    f.years.push((s, e, st == "open"));
                }
            }
        }
        f
    }
}

fn type_fee(existing: &HashSet<String>, key: &str) -> Option<i64> {
    existing.iter().find_map(|e| {
        let (k, cents) = e.strip_prefix(FEE)?.rsplit_once('=')?;
        (k == key).then(|| cents.parse().ok()).flatten()
    })
}

/// Whether a checked row records a due: it says paid (or gives a payment
/// date or an amount paid), and its check gave it a payment date.
fn pays(r: &Record) -> bool {
    r.get("paid") != "no" && !r.get("paid_on").is_empty()
}

/// Checks the payment columns of a row and normalises them: `paid` to
/// `yes`/`no`, `method` to the method's name, `amount_paid` to cents, and
/// the payment date of a paid row (the period's first day, or today when
/// it starts later, when the file has none).
fn check_payment(r: &mut Record, existing: &HashSet<String>) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let said = match r.opt("paid") {
        None => None,
        Some(v) => match parse_paid(&v) {
            Some(b) => {
                r.set("paid", (if b { "yes" } else { "no" }).into());
                Some(b)
            }
            None => {
                errors.push(FieldError::new(
                    "paid",
                    format!("\"{v}\" does not say whether the fee is paid: write yes or no (oui, non, x, 1, 0…)."),
                ));
                return errors;
            }
        },
    };
    let amount = match r.opt("amount_paid") {
        None => None,
        Some(a) => match parse_fee(&a) {
            Some(c) => {
                r.set("amount_paid", c.to_string());
                Some(c).filter(|c| *c > 0)
            }
            None => {
                errors.push(FieldError::new("amount_paid", format!("\"{a}\" is not an amount.")));
                return errors;
            }
        },
    };
    let dated = r.opt("paid_on").is_some();
    match said {
        Some(false) if dated || amount.is_some() => {
            errors.push(FieldError::new(
                "paid",
                "This row says the fee is not paid but gives a payment date or an amount paid.",
            ));
            return errors;
        }
        Some(false) => return errors,
        None if !dated && amount.is_none() => return errors,
        _ => {}
    }
    let facts = DuesFacts::read(existing);
    if let Some(why) = facts.refused {
        errors.push(FieldError::new("paid", why));
        return errors;
    }
    let method = match r.opt("method") {
        None => {
            errors.push(FieldError::new(
                "method",
                "Say how the fee was paid (a payment method column): cash, cheque, transfer, card or direct debit.",
            ));
            None
        }
        Some(m) => match parse_method(&m) {
            Some(x) => {
                r.set("method", x.as_str().into());
                Some(x)
            }
            None => {
                errors.push(FieldError::new(
                    "method",
                    format!(
                        "\"{m}\" is not a payment method: write cash, cheque, transfer, card or direct debit \
                         (espèces, chèque, virement, carte, prélèvement)."
                    ),
                ));
                None
            }
        },
    };
    // The period's fee: the file's, else its type's (unknown type: already an error).
    let fee = r.opt("fee").and_then(|f| f.parse::<i64>().ok()).or_else(|| type_fee(existing, &type_key(r.get("type"))));
    if let (Some(a), Some(f)) = (amount, fee) {
        if a > f {
            errors.push(FieldError::new(
                "amount_paid",
                format!("The amount paid ({}) is more than the fee ({}).", cents_text(a), cents_text(f)),
            ));
        }
    }
    if amount.is_none() && fee == Some(0) {
        return errors; // nothing to pay, nothing to record
    }
    let start: Option<Date> = r.get("starts_on").parse().ok();
    let paid_on: Option<Date> = match r.opt("paid_on") {
        Some(d) => d.parse().ok(),
        None => {
            let d = match (start, facts.today) {
                (Some(s), Some(t)) => Some(s.min(t)),
                (s, t) => s.or(t),
            };
            if let Some(d) = d {
                r.set("paid_on", d.to_string());
            }
            d
        }
    };
    if let Some(d) = paid_on {
        let too_early = |s: &Date| s.checked_sub(jiff::Span::new().years(1)).is_ok_and(|y| d < y);
        if facts.today.is_some_and(|t| d > t) {
            errors.push(FieldError::new("paid_on", format!("The payment date {d} is in the future.")));
        } else if let Some(s) = start.filter(too_early) {
            errors.push(FieldError::new(
                "paid_on",
                format!("The payment date {d} is more than a year before the membership starts ({s}): is it the payment of this period?"),
            ));
        } else {
            let iso = d.to_string();
            match facts.years.iter().find(|(s, e, _)| *s <= iso.as_str() && iso.as_str() <= *e) {
                None => errors.push(FieldError::new(
                    "paid_on",
                    format!("No fiscal year of the books holds {d}: open it in accounting first."),
                )),
                Some((s, e, false)) => errors.push(FieldError::new(
                    "paid_on",
                    format!("The fiscal year {s} – {e} is closed: a payment of {d} cannot be posted to it."),
                )),
                Some(_) => {}
            }
        }
    }
    if let Some(m) = method {
        if let Some(why) = if m == Method::Cash { facts.cash } else { facts.bank } {
            errors.push(FieldError::new("method", why));
        }
    }
    errors
}

/// What the payment checks need to know of the organisation (see [`DuesFacts`]).
async fn dues_facts(conn: &mut sqlx::AnyConnection, org: OrgId, out: &mut HashSet<String>) -> CoreResult<()> {
    out.insert(format!("{TODAY}{}", service::org_today(conn, org).await?));
    let s = service::settings_in(conn, org).await.map_err(CoreError::from)?;
    if s.dues_path == DuesPath::Invoice {
        out.insert(format!(
            "{REFUSED}Dues are invoiced (the settings' dues path): an import cannot record them as paid. \
             Leave the fee paid column out and record the payments in invoicing."
        ));
        return Ok(());
    }
    let l = match shrooms_accounting::repo::ledger(conn, org).await {
        Ok(l) => l,
        Err(AcctError::NoBooks) => {
            out.insert(format!(
                "{REFUSED}The accounting books are not set up: set them up in accounting before importing paid dues \
                 (each payment is posted to the ledger)."
            ));
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let problem = |journal: &str, account: &str, what: &str| -> Option<String> {
        if !l.journals.contains_key(journal) {
            return Some(format!("{what} payments cannot be posted: the books have no journal {journal}."));
        }
        [account, s.dues_account.as_str()].into_iter().find_map(|a| match l.accounts.get(a) {
            None => Some(format!(
                "{what} payments cannot be posted: there is no account {a} in the chart of accounts (see the members settings)."
            )),
            Some((_, true)) => Some(format!("{what} payments cannot be posted: the account {a} is archived.")),
            Some(_) => None,
        })
    };
    if let Some(p) = problem("CA", &s.cash_account, "Cash") {
        out.insert(format!("{CASH}{p}"));
    }
    if let Some(p) = problem("BQ", &s.bank_account, "Cheque, transfer and card") {
        out.insert(format!("{BANK}{p}"));
    }
    for y in &l.years {
        out.insert(format!("{YEAR}{}|{}|{}", y.start, y.end, if y.is_closed() { "closed" } else { "open" }));
    }
    Ok(())
}

impl Importer for MembersImporter {
    fn kind(&self) -> &'static str {
        "members.members"
    }
    fn module(&self) -> &'static str {
        MODULE
    }
    fn label_key(&self) -> &'static str {
        "members.import.title"
    }
    fn fields(&self) -> &'static [Field] {
        FIELDS
    }
    fn existing<'a>(&'a self, db: &'a Db, cap: &'a CanRead) -> ImportFuture<'a, HashSet<String>> {
        Box::pin(async move {
            let mut conn = db.pool().acquire().await?;
            let rows = sqlx::query("SELECT name, fee_cents FROM mem_types WHERE org_id = $1 AND archived = 0")
                .bind(cap.org().to_string())
                .fetch_all(&mut *conn)
                .await?;
            let mut out = HashSet::new();
            for r in &rows {
                let key = type_key(&r.try_get::<String, _>(0)?);
                out.insert(format!("{FEE}{key}={}", r.try_get::<i64, _>(1)?));
                out.insert(key);
            }
            dues_facts(&mut conn, cap.org(), &mut out).await?;
            Ok(out)
        })
    }
    fn check(&self, r: &mut Record) -> Vec<FieldError> {
        self.check_with(r, &HashSet::new())
    }
    fn check_with(&self, r: &mut Record, existing: &HashSet<String>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let ty = r.get("type").to_string();
        if !existing.contains(&type_key(&ty)) {
            errors.push(FieldError::new("type", format!("Membership type \"{ty}\" unknown.")));
        }
        if let (Some(s), Some(e)) = (r.opt("starts_on"), r.opt("ends_on")) {
            if e < s {
                errors.push(FieldError::new("ends_on", "The end is before the start."));
            }
        }
        if let Some(f) = r.opt("fee") {
            match parse_fee(&f) {
                Some(c) => r.set("fee", c.to_string()),
                None => errors.push(FieldError::new("fee", format!("\"{f}\" is not an amount."))),
            }
        }
        for (k, max) in [("given_name", 100), ("family_name", 100), ("phone", 40)] {
            if r.get(k).chars().count() > max {
                errors.push(FieldError::new(k, format!("Use at most {max} characters.")));
            }
        }
        errors.extend(check_payment(r, existing));
        errors
    }
    fn write<'a>(&'a self, tx: &'a mut Tx, cap: &'a CanWrite, rows: &'a [Record]) -> ImportFuture<'a, ()> {
        Box::pin(async move { write_rows(tx, cap, rows).await })
    }
}

struct TypeRow {
    id: String,
    fee: i64,
    rules: Rules,
}

fn internal(e: impl std::fmt::Display) -> CoreError {
    CoreError::Internal(e.to_string())
}

async fn write_rows(tx: &mut Tx, cap: &CanWrite, rows: &[Record]) -> CoreResult<()> {
    let org = cap.org();
    let types = sqlx::query(
        "SELECT id, name, fee_rule, fee_cents, period_rule, school_start_month FROM mem_types WHERE org_id = $1 AND archived = 0",
    )
    .bind(org.to_string())
    .fetch_all(tx.conn())
    .await?;
    let mut by_name = std::collections::HashMap::new();
    for t in &types {
        let name: String = t.try_get(1)?;
        let rule = PeriodRule::parse(&t.try_get::<String, _>(4)?).unwrap_or(PeriodRule::CalendarYear);
        let fee: i64 = t.try_get(3)?;
        let rules = Rules {
            fee_rule: crate::domain::FeeRule::parse(&t.try_get::<String, _>(2)?)
                .unwrap_or(crate::domain::FeeRule::Fixed),
            fee_cents: fee,
            tiers: vec![],
            period_rule: rule,
            school_start_month: t.try_get::<i64, _>(5)?.clamp(1, 12) as i8,
        };
        by_name.insert(type_key(&name), TypeRow { id: t.try_get(0)?, fee, rules });
    }
    let now = Timestamp::now().0;
    let today = service::org_today(tx.conn(), org).await?;
    let mut dues = Vec::new();
    let mut pending: HashMap<String, i64> = HashMap::new();
    for r in rows {
        let ty = by_name.get(&type_key(r.get("type"))).ok_or_else(|| {
            CoreError::validation("type", &format!("line {}: membership type \"{}\" unknown", r.line, r.get("type")))
        })?;
        let email = r.opt("email").map(|e| e.to_lowercase());
        let person = find_or_create(tx, cap, r, email.as_deref()).await?;
        let start: jiff::civil::Date = r.get("starts_on").parse().map_err(internal)?;
        let end = match r.opt("ends_on") {
            Some(e) => Some(e.parse::<jiff::civil::Date>().map_err(internal)?),
            None => ty.rules.period_end(start),
        };
        // The same period imported twice is one period, and its due one
        // due: recorded only while the period has none.
        let same = sqlx::query(
            "SELECT p.id, p.fee_cents, (SELECT COUNT(*) FROM mem_dues d WHERE d.org_id = p.org_id AND d.period_id = p.id) \
             FROM mem_periods p WHERE p.org_id = $1 AND p.person_id = $2 AND p.type_id = $3 AND p.starts_on = $4",
        )
        .bind(org.to_string())
        .bind(&person)
        .bind(&ty.id)
        .bind(start.to_string())
        .fetch_optional(tx.conn())
        .await?;
        if let Some(p) = same {
            if pays(r) && p.try_get::<i64, _>(2)? == 0 {
                let (id, fee): (String, i64) = (p.try_get(0)?, p.try_get(1)?);
                due_of(tx, org, r, &person, &id, fee, today, &mut pending, &mut dues).await?;
            }
            continue;
        }
        let earlier = sqlx::query("SELECT 1 FROM mem_periods WHERE org_id = $1 AND person_id = $2 AND starts_on < $3")
            .bind(org.to_string())
            .bind(&person)
            .bind(start.to_string())
            .fetch_optional(tx.conn())
            .await?
            .is_some();
        let origin = if earlier { Origin::Renewed } else { Origin::Joined };
        let fee = r.opt("fee").and_then(|f| f.parse().ok()).unwrap_or(ty.fee);
        let id = new_id();
        sqlx::query(
            "INSERT INTO mem_periods (id, org_id, person_id, type_id, origin, starts_on, ends_on, fee_cents, tier, request_key, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)",
        )
        .bind(&id)
        .bind(org.to_string())
        .bind(&person)
        .bind(&ty.id)
        .bind(origin.as_str())
        .bind(start.to_string())
        .bind(effective_end(end, None).map(|e| e.to_string()))
        .bind(fee)
        .bind(now)
        .execute(tx.conn())
        .await?;
        sqlx::query(
            "INSERT INTO mem_events (id, org_id, person_id, period_id, kind, happened_on, note, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(new_id())
        .bind(org.to_string())
        .bind(&person)
        .bind(&id)
        .bind(origin.as_str())
        .bind(start.to_string())
        .bind(format!("import, line {}", r.line))
        .bind(now)
        .execute(tx.conn())
        .await?;
        directory::refresh(tx, org, &person).await.map_err(CoreError::from)?;
        if pays(r) {
            due_of(tx, org, r, &person, &id, fee, today, &mut pending, &mut dues).await?;
        }
    }
    if !dues.is_empty() {
        let actor = cap.actor();
        let who = Who { account: (!actor.0.is_nil()).then_some(actor), label: "import".into(), address: String::new() };
        service::write_dues(tx, &who, org, dues).await.map_err(CoreError::from)?;
    }
    Ok(())
}

/// Checks the due a paid row records on its period, as a payment recorded
/// by hand is checked (`service::check_due`); written with the batch's
/// others by `service::write_dues`.
#[allow(clippy::too_many_arguments)]
async fn due_of(
    tx: &mut Tx,
    org: OrgId,
    r: &Record,
    person: &str,
    period: &str,
    fee: i64,
    today: Date,
    pending: &mut HashMap<String, i64>,
    dues: &mut Vec<service::NewDue>,
) -> CoreResult<()> {
    let amount = r.opt("amount_paid").and_then(|a| a.parse::<i64>().ok()).filter(|a| *a > 0);
    if amount.is_none() && fee == 0 {
        return Ok(()); // nothing to pay
    }
    let input = DueInput {
        person_id: person.to_string(),
        period_id: Some(period.to_string()),
        // Without an amount: what is left on the period, its whole fee.
        amount_cents: amount,
        method: r.get("method").to_string(),
        paid_on: r.opt("paid_on"),
        request_key: None,
    };
    match service::check_due(tx, org, &input, today, "", pending).await.map_err(CoreError::from)? {
        Ok(d) => {
            *pending.entry(period.to_string()).or_default() += d.amount;
            dues.push(d);
            Ok(())
        }
        Err(errors) => Err(CoreError::Validation(
            errors.into_iter().map(|e| FieldError::new(e.field, format!("line {}: {}", r.line, e.message))).collect(),
        )),
    }
}

/// The person of a row: the one with its e-mail, or a new one.
async fn find_or_create(tx: &mut Tx, cap: &CanWrite, r: &Record, email: Option<&str>) -> CoreResult<String> {
    let org = cap.org().to_string();
    if let Some(e) = email {
        let found = sqlx::query("SELECT id FROM people WHERE org_id = $1 AND LOWER(email) = $2 ORDER BY id LIMIT 1")
            .bind(&org)
            .bind(e)
            .fetch_optional(tx.conn())
            .await?;
        if let Some(f) = found {
            return Ok(f.try_get(0)?);
        }
    }
    let (given, family, phone) = (r.get("given_name").to_string(), r.get("family_name").to_string(), r.opt("phone"));
    shrooms_core::people::insert_bulk(tx, cap, &[(given.clone(), family.clone(), email.map(str::to_string), phone)])
        .await?;
    // The newest person of that name and e-mail is the one just inserted
    // (ids are time-ordered).
    let row = sqlx::query(
        "SELECT id FROM people WHERE org_id = $1 AND given_name = $2 AND family_name = $3 \
         AND (($4 = '' AND email IS NULL) OR LOWER(email) = $4) ORDER BY id DESC LIMIT 1",
    )
    .bind(&org)
    .bind(&given)
    .bind(&family)
    .bind(email.unwrap_or(""))
    .fetch_one(tx.conn())
    .await?;
    Ok(row.try_get(0)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn fees_are_read_as_written() {
        assert_eq!(super::parse_fee("30"), Some(3000));
        assert_eq!(super::parse_fee("30,50 €"), Some(3050));
        assert_eq!(super::parse_fee("trente"), None);
    }

    #[test]
    fn paid_cells_and_methods_are_read_as_exports_write_them() {
        use super::{parse_method, parse_paid, Method};
        for yes in ["oui", "OUI", "x", "1", "Payé", "payée", "yes", "Réglé"] {
            assert_eq!(parse_paid(yes), Some(true), "{yes}");
        }
        for no in ["non", "0", "No", "impayé", "Non payé", "à payer"] {
            assert_eq!(parse_paid(no), Some(false), "{no}");
        }
        assert_eq!(parse_paid("peut-être"), None);
        assert_eq!(parse_method("Chèque"), Some(Method::Cheque));
        assert_eq!(parse_method("Espèces"), Some(Method::Cash));
        assert_eq!(parse_method("virement bancaire"), Some(Method::Transfer));
        assert_eq!(parse_method("CB"), Some(Method::Card));
        assert_eq!(parse_method("Prélèvement SEPA"), Some(Method::DirectDebit));
        assert_eq!(parse_method("troc"), None);
    }
}
