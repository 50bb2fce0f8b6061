//! Importing members from a spreadsheet (Paheko, Galette, any CSV or ODS)
//! through the core importer framework: each row finds its person by e-mail
//! (or creates them) and records a membership period of a type named in the
//! file. The core does the mapping, the dry run (every row checked, nothing
//! written) and the progress; this module says what a row means.

use crate::directory;
use crate::domain::{effective_end, Origin, PeriodRule, Rules};
use crate::service::{new_id, MODULE};
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::Timestamp;
use shrooms_core::import::{Field, FieldKind, ImportFuture, Importer, Record};
use shrooms_core::permissions::{CanRead, CanWrite};
use sqlx::Row;
use std::collections::HashSet;

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
            let rows = sqlx::query("SELECT name FROM mem_types WHERE org_id = $1 AND archived = 0")
                .bind(cap.org().to_string())
                .fetch_all(db.pool())
                .await?;
            rows.iter().map(|r| Ok(type_key(&r.try_get::<String, _>(0)?))).collect()
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
        // The same period imported twice is one period.
        let same = sqlx::query(
            "SELECT 1 FROM mem_periods WHERE org_id = $1 AND person_id = $2 AND type_id = $3 AND starts_on = $4",
        )
        .bind(org.to_string())
        .bind(&person)
        .bind(&ty.id)
        .bind(start.to_string())
        .fetch_optional(tx.conn())
        .await?;
        if same.is_some() {
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
    }
    Ok(())
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
}
