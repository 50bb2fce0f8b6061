//! Reminders (dunning): levels an organisation configures (delay after the
//! due date, subject and message in French and English, whether the level
//! suspends the service), the daily run that sends what is due through the
//! outbox, a manual "send now", and the board of overdue invoices.
//!
//! Never for a zero-amount invoice nor for one fully paid or credited: only
//! invoices still open with something due are looked at, so reminders stop
//! by themselves once the invoice is paid. Each reminder is on the
//! invoice's timeline.

use crate::payments::{self, money, OPEN_STATUSES};
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_accounting::domain::{Amount, Day};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::{Db, Tx};
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::outbox::{self, Mail};
use shrooms_core::permissions::{CanAdmin, CanRead, CanWrite};
use shrooms_core::timeline;
use shrooms_core::web::AppState;
use sqlx::Row;
use utoipa::ToSchema;

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ReminderLevel {
    /// 1, 2, 3…
    pub level: i64,
    /// Days after the due date.
    pub delay_days: i64,
    pub subject_fr: String,
    /// Placeholders: `{number}`, `{customer}`, `{due_date}`, `{amount_due}`, `{pay_link}`.
    pub body_fr: String,
    pub subject_en: String,
    pub body_en: String,
    /// At this level the service may be suspended (modules read it from the board).
    #[serde(default)]
    pub suspend: bool,
}

/// What the settings page proposes before anything is configured.
pub fn suggested_levels() -> Vec<ReminderLevel> {
    let l = |level, delay_days, sfr: &str, bfr: &str, sen: &str, ben: &str, suspend| ReminderLevel {
        level,
        delay_days,
        subject_fr: sfr.into(),
        body_fr: bfr.into(),
        subject_en: sen.into(),
        body_en: ben.into(),
        suspend,
    };
    vec![
        l(1, 7, "Rappel : facture {number}", "Bonjour {customer},\n\nSauf erreur de notre part, la facture {number} arrivée à échéance le {due_date} reste à régler : {amount_due}.\n{pay_link}\nMerci d'avance.", "Reminder: invoice {number}", "Hello {customer},\n\nUnless we are mistaken, invoice {number}, due on {due_date}, is still unpaid: {amount_due}.\n{pay_link}\nThank you.", false),
        l(2, 30, "Deuxième rappel : facture {number}", "Bonjour {customer},\n\nLa facture {number} échue le {due_date} n'est toujours pas réglée : {amount_due}. Des pénalités de retard peuvent s'appliquer.\n{pay_link}", "Second reminder: invoice {number}", "Hello {customer},\n\nInvoice {number}, due on {due_date}, is still unpaid: {amount_due}. Late-payment penalties may apply.\n{pay_link}", false),
        l(3, 60, "Mise en demeure : facture {number}", "Bonjour {customer},\n\nSans règlement de la facture {number} ({amount_due}), le service sera suspendu.\n{pay_link}", "Final notice: invoice {number}", "Hello {customer},\n\nWithout payment of invoice {number} ({amount_due}), the service will be suspended.\n{pay_link}", true),
    ]
}

/// Checks a whole set of levels: numbered from 1 without gaps, delays
/// increasing, texts present.
pub fn check_levels(levels: &[ReminderLevel]) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    if levels.len() > 10 {
        errors.push(FieldError::new("levels", "At most 10 levels."));
    }
    for (i, l) in levels.iter().enumerate() {
        if l.level != i as i64 + 1 {
            errors.push(FieldError::new(
                format!("levels[{i}].level"),
                format!("Number the levels 1, 2, 3…: this one is {}.", i + 1),
            ));
        }
        if !(0..=730).contains(&l.delay_days) {
            errors.push(FieldError::new(format!("levels[{i}].delay_days"), "Give 0 to 730 days after the due date."));
        } else if i > 0 && l.delay_days <= levels[i - 1].delay_days {
            errors.push(FieldError::new(
                format!("levels[{i}].delay_days"),
                "Each level comes later than the one before it.",
            ));
        }
        for (field, v, max) in [
            ("subject_fr", &l.subject_fr, 200),
            ("subject_en", &l.subject_en, 200),
            ("body_fr", &l.body_fr, 5000),
            ("body_en", &l.body_en, 5000),
        ] {
            if v.trim().is_empty() || v.chars().count() > max {
                errors.push(FieldError::new(format!("levels[{i}].{field}"), format!("Write 1 to {max} characters.")));
            }
        }
        if l.subject_fr.contains('\n') || l.subject_en.contains('\n') {
            errors.push(FieldError::new(format!("levels[{i}].subject_fr"), "A subject is one line."));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The level an invoice overdue by `days` has reached (0: none yet).
pub fn level_for(levels: &[ReminderLevel], days_overdue: i64) -> i64 {
    levels.iter().filter(|l| l.delay_days <= days_overdue).map(|l| l.level).max().unwrap_or(0)
}

/// Fills a level's placeholders.
pub fn fill(template: &str, number: &str, customer: &str, due_date: &str, amount_due: &str, pay_link: &str) -> String {
    template
        .replace("{number}", number)
        .replace("{customer}", customer)
        .replace("{due_date}", due_date)
        .replace("{amount_due}", amount_due)
        .replace("{pay_link}", pay_link)
}

// ---------- levels ----------

async fn levels_in(conn: &mut sqlx::AnyConnection, org: OrgId) -> CoreResult<Vec<ReminderLevel>> {
    let rows = sqlx::query(
        "SELECT level, delay_days, subject_fr, body_fr, subject_en, body_en, suspend FROM inv_reminder_levels \
         WHERE org_id = $1 ORDER BY level",
    )
    .bind(org.to_string())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReminderLevel {
                level: r.try_get(0)?,
                delay_days: r.try_get(1)?,
                subject_fr: r.try_get(2)?,
                body_fr: r.try_get(3)?,
                subject_en: r.try_get(4)?,
                body_en: r.try_get(5)?,
                suspend: r.try_get::<i64, _>(6)? == 1,
            })
        })
        .collect()
}

pub async fn levels(db: &Db, cap: &CanRead) -> CoreResult<Vec<ReminderLevel>> {
    let mut conn = db.pool().acquire().await?;
    levels_in(&mut conn, cap.org()).await
}

/// Replaces the organisation's levels (an empty list stops reminders).
pub async fn set_levels(
    db: &Db,
    who: &Who,
    cap: &CanAdmin,
    levels: Vec<ReminderLevel>,
) -> CoreResult<Vec<ReminderLevel>> {
    check_levels(&levels).map_err(CoreError::Validation)?;
    let org = cap.org();
    let mut tx = db.begin().await?;
    let before = levels_in(tx.conn(), org).await?;
    sqlx::query("DELETE FROM inv_reminder_levels WHERE org_id = $1").bind(org.to_string()).execute(tx.conn()).await?;
    let now = Timestamp::now().0;
    for l in &levels {
        sqlx::query(
            "INSERT INTO inv_reminder_levels (org_id, level, delay_days, subject_fr, body_fr, subject_en, body_en, suspend, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(org.to_string())
        .bind(l.level)
        .bind(l.delay_days)
        .bind(l.subject_fr.trim())
        .bind(&l.body_fr)
        .bind(l.subject_en.trim())
        .bind(&l.body_en)
        .bind(l.suspend as i64)
        .bind(now)
        .execute(tx.conn())
        .await?;
    }
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "invoicing.reminder_levels.update",
            entity_type: "invoicing_reminder_levels",
            entity_id: org.to_string(),
            before: Some(json!(before)),
            after: Some(json!(levels)),
        },
    )
    .await?;
    let out = levels_in(tx.conn(), org).await?;
    tx.commit().await?;
    Ok(out)
}

// ---------- sending ----------

struct Overdue {
    id: String,
    number: String,
    customer_id: String,
    due_date: String,
    due_cents: i64,
    level: i64,
}

async fn overdue_in(
    conn: &mut sqlx::AnyConnection,
    org: OrgId,
    as_of: Day,
    one: Option<&str>,
) -> CoreResult<Vec<Overdue>> {
    let mut sql = format!(
        "SELECT id, number, customer_id, due_date, gross_cents - paid_cents - credited_cents, reminder_level \
         FROM inv_documents WHERE org_id = $1 AND kind = 'invoice' AND status IN {OPEN_STATUSES} \
         AND gross_cents > 0 AND gross_cents - paid_cents - credited_cents > 0 AND due_date IS NOT NULL AND due_date < $2"
    );
    if one.is_some() {
        sql.push_str(" AND id = $3");
    }
    sql.push_str(" ORDER BY due_date, seq");
    let mut q = sqlx::query(&sql).bind(org.to_string()).bind(as_of.iso());
    if let Some(id) = one {
        q = q.bind(id);
    }
    let rows = q.fetch_all(&mut *conn).await?;
    rows.iter()
        .map(|r| {
            Ok(Overdue {
                id: r.try_get(0)?,
                number: r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                customer_id: r.try_get(2)?,
                due_date: r.try_get(3)?,
                due_cents: r.try_get(4)?,
                level: r.try_get(5)?,
            })
        })
        .collect()
}

/// Sends one level's reminder for an invoice, in the caller's transaction.
/// `from_level` guards against two runs sending the same level.
#[allow(clippy::too_many_arguments)]
async fn send(
    st: &AppState,
    tx: &mut Tx,
    who: &Who,
    org: OrgId,
    inv: &Overdue,
    level: &ReminderLevel,
    manual: bool,
) -> CoreResult<bool> {
    let moved = sqlx::query(
        "UPDATE inv_documents SET reminder_level = $1, updated_at = $2 WHERE org_id = $3 AND id = $4 AND reminder_level = $5",
    )
    .bind(level.level)
    .bind(Timestamp::now().0)
    .bind(org.to_string())
    .bind(&inv.id)
    .bind(inv.level)
    .execute(tx.conn())
    .await?;
    if moved.rows_affected() != 1 {
        return Ok(false);
    }
    let c = payments::customer(tx.conn(), org, &inv.customer_id).await?.ok_or(CoreError::NotFound)?;
    let lang = if c.lang == "en" { "en" } else { "fr" };
    let pay_link = if crate::providers::online_enabled(tx.conn(), org).await? {
        let token = crate::providers::pay_link_in(tx, org, &inv.id).await?;
        format!("{}/pay/{token}", st.cfg.base_url())
    } else {
        String::new()
    };
    let amount = format!("{} €", Amount(inv.due_cents).display(lang));
    let due_date = inv.due_date.clone();
    let (subject, body) =
        if lang == "en" { (&level.subject_en, &level.body_en) } else { (&level.subject_fr, &level.body_fr) };
    let subject = fill(subject, &inv.number, &c.name, &due_date, &amount, &pay_link);
    let text = fill(body, &inv.number, &c.name, &due_date, &amount, &pay_link);
    let email = c.email.trim().to_string();
    let mut outbox_id: Option<String> = None;
    if !email.is_empty() {
        outbox::enqueue(tx, Some(org), "invoicing.reminder", &email, &Mail { subject, text, html: None }).await?;
        outbox_id = sqlx::query(
            "SELECT id FROM mail_outbox WHERE org_id = $1 AND kind = 'invoicing.reminder' AND to_addr = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(org.to_string())
        .bind(&email)
        .fetch_optional(tx.conn())
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    }
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO inv_reminders (id, org_id, document_id, level, to_email, due_cents, outbox_id, manual, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(&inv.id)
    .bind(level.level)
    .bind(&email)
    .bind(inv.due_cents)
    .bind(&outbox_id)
    .bind(manual as i64)
    .bind(who.account.map(|a| a.to_string()))
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    let record = payments::invoice_record(tx.conn(), org, &inv.id).await?;
    let text = if email.is_empty() {
        format!(
            "Reminder level {} due ({} unpaid), not sent: the customer has no email address",
            level.level,
            money(inv.due_cents)
        )
    } else {
        format!("Reminder level {} sent to {email} ({} unpaid)", level.level, money(inv.due_cents))
    };
    timeline::event(
        tx,
        who,
        org,
        &record,
        &text,
        json!({"reminder_id": id, "level": level.level, "manual": manual, "suspend": level.suspend}),
    )
    .await?;
    audit::record(
        tx,
        who,
        Change {
            org: Some(org),
            action: "invoicing.reminder.send",
            entity_type: "invoicing_reminder",
            entity_id: id,
            before: Some(json!({"reminder_level": inv.level})),
            after: Some(json!({"invoice_id": inv.id, "reminder_level": level.level, "to": email, "manual": manual})),
        },
    )
    .await?;
    Ok(true)
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RunReport {
    pub as_of: String,
    /// Invoices looked at (open, overdue, something due).
    pub overdue: i64,
    pub sent: Vec<SentReminder>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SentReminder {
    pub invoice_id: String,
    pub number: String,
    pub level: i64,
}

/// Sends every reminder due on `as_of`: each overdue invoice gets the
/// highest level its delay has reached, if it has not had it yet (one
/// mail, even when several levels were passed while reminders were off).
pub async fn run(st: &AppState, who: &Who, org: OrgId, as_of: Day) -> CoreResult<RunReport> {
    let mut tx = st.db.begin().await?;
    let levels = levels_in(tx.conn(), org).await?;
    let list = overdue_in(tx.conn(), org, as_of, None).await?;
    let mut sent = Vec::new();
    for inv in &list {
        let days = Day::parse(&inv.due_date).map(|d| d.days_until(as_of)).unwrap_or(0);
        let target = level_for(&levels, days);
        if target > inv.level {
            let l = &levels[(target - 1) as usize];
            if send(st, &mut tx, who, org, inv, l, false).await? {
                sent.push(SentReminder { invoice_id: inv.id.clone(), number: inv.number.clone(), level: target });
            }
        }
    }
    tx.commit().await?;
    Ok(RunReport { as_of: as_of.iso(), overdue: list.len() as i64, sent })
}

/// Sends the next level now, whatever its delay.
pub async fn remind_now(st: &AppState, who: &Who, cap: &CanWrite, invoice_id: &str) -> CoreResult<SentReminder> {
    let org = cap.org();
    payments::document_exists(&st.db, org, invoice_id).await?;
    let mut tx = st.db.begin().await?;
    let levels = levels_in(tx.conn(), org).await?;
    if levels.is_empty() {
        return Err(CoreError::Conflict { field: None, message: "Configure the reminder levels first.".into() });
    }
    // Due today counts too: "now" means now.
    let list = overdue_in(tx.conn(), org, Day::today().next(), Some(invoice_id)).await?;
    let Some(inv) = list.into_iter().next() else {
        let exists = sqlx::query("SELECT 1 FROM inv_documents WHERE org_id = $1 AND id = $2 AND kind = 'invoice'")
            .bind(org.to_string())
            .bind(invoice_id)
            .fetch_optional(tx.conn())
            .await?;
        return Err(match exists {
            None => CoreError::NotFound,
            Some(_) => CoreError::Conflict {
                field: None,
                message:
                    "Nothing is overdue on this invoice (paid, credited, zero, not due yet or a draft): no reminder."
                        .into(),
            },
        });
    };
    // Past the last level, the last one is sent again.
    let next = (inv.level + 1).min(levels.len() as i64);
    let l = &levels[(next - 1) as usize];
    if !send(st, &mut tx, who, org, &inv, l, true).await? {
        return Err(CoreError::Conflict { field: None, message: "A reminder was sent meanwhile: look again.".into() });
    }
    tx.commit().await?;
    Ok(SentReminder { invoice_id: inv.id, number: inv.number, level: next })
}

// ---------- board ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OverdueInvoice {
    pub invoice_id: String,
    pub number: String,
    pub customer_id: String,
    pub customer_name: String,
    pub due_date: String,
    pub days_overdue: i64,
    pub due_cents: i64,
    pub reminder_level: i64,
    /// The level reached suspends the service.
    pub suspend: bool,
    pub last_reminder_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ReminderSent {
    pub id: String,
    pub level: i64,
    pub to_email: String,
    pub due_cents: i64,
    pub manual: bool,
    pub created_at: String,
}

pub async fn board(db: &Db, cap: &CanRead, as_of: Day) -> CoreResult<Vec<OverdueInvoice>> {
    let org = cap.org();
    let mut conn = db.pool().acquire().await?;
    let levels = levels_in(&mut conn, org).await?;
    let rows = sqlx::query(&format!(
        "SELECT d.id, d.number, d.customer_id, c.name, d.due_date, d.gross_cents - d.paid_cents - d.credited_cents, \
         d.reminder_level, (SELECT MAX(r.created_at) FROM inv_reminders r WHERE r.document_id = d.id) \
         FROM inv_documents d JOIN inv_customers c ON c.id = d.customer_id \
         WHERE d.org_id = $1 AND d.kind = 'invoice' AND d.status IN {OPEN_STATUSES} AND d.gross_cents > 0 \
         AND d.gross_cents - d.paid_cents - d.credited_cents > 0 AND d.due_date IS NOT NULL AND d.due_date < $2 \
         ORDER BY d.reminder_level DESC, d.due_date"
    ))
    .bind(org.to_string())
    .bind(as_of.iso())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let due_date: String = r.try_get(4)?;
            let level: i64 = r.try_get(6)?;
            Ok(OverdueInvoice {
                invoice_id: r.try_get(0)?,
                number: r.try_get::<Option<String>, _>(1)?.unwrap_or_default(),
                customer_id: r.try_get(2)?,
                customer_name: r.try_get(3)?,
                days_overdue: Day::parse(&due_date).map(|d| d.days_until(as_of)).unwrap_or(0),
                due_date,
                due_cents: r.try_get(5)?,
                reminder_level: level,
                suspend: levels.iter().any(|l| l.suspend && l.level <= level),
                last_reminder_at: r.try_get::<Option<i64>, _>(7)?.map(|t| Timestamp(t).rfc3339()),
            })
        })
        .collect()
}

pub async fn history(db: &Db, cap: &CanRead, invoice_id: &str) -> CoreResult<Vec<ReminderSent>> {
    payments::document_exists(db, cap.org(), invoice_id).await?;
    let rows = sqlx::query(
        "SELECT id, level, to_email, due_cents, manual, created_at FROM inv_reminders WHERE org_id = $1 AND document_id = $2 ORDER BY id",
    )
    .bind(cap.org().to_string())
    .bind(invoice_id)
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ReminderSent {
                id: r.try_get(0)?,
                level: r.try_get(1)?,
                to_email: r.try_get(2)?,
                due_cents: r.try_get(3)?,
                manual: r.try_get::<i64, _>(4)? == 1,
                created_at: Timestamp(r.try_get(5)?).rfc3339(),
            })
        })
        .collect()
}

// ---------- the daily job ----------

fn run_job(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let org = ctx.org.ok_or_else(|| anyhow::anyhow!("no organisation"))?;
        let as_of = match ctx.payload["as_of"].as_str() {
            Some(d) => Day::parse(d).map_err(|m| anyhow::anyhow!(m))?,
            None => Day::today(),
        };
        let r = run(&st, &Who::system(DUNNING.name), org, as_of).await?;
        tracing::info!(org = %org, sent = r.sent.len(), "reminders sent");
        Ok(())
    })
}

/// The daily run of reminders, per organisation (schedule `invoicing.dunning`).
/// Idempotent: a level is sent once (the invoice's level moves in the same
/// transaction as the mail is queued).
pub const DUNNING: JobSpec =
    JobSpec { name: "invoicing.dunning", max_attempts: 3, backoff_secs: 60, timeout_secs: 120, run: run_job };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_follows_the_delay() {
        let levels = suggested_levels();
        assert!(check_levels(&levels).is_ok());
        assert_eq!(level_for(&levels, 0), 0);
        assert_eq!(level_for(&levels, 6), 0);
        assert_eq!(level_for(&levels, 7), 1);
        assert_eq!(level_for(&levels, 45), 2);
        assert_eq!(level_for(&levels, 400), 3);
        assert_eq!(level_for(&[], 400), 0);
    }

    #[test]
    fn levels_are_numbered_and_increasing() {
        let mut levels = suggested_levels();
        levels[1].delay_days = 7;
        levels[2].level = 5;
        levels[0].subject_fr = " ".into();
        let e = check_levels(&levels).unwrap_err();
        let fields: Vec<&str> = e.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["levels[0].subject_fr", "levels[1].delay_days", "levels[2].level"]);
    }

    #[test]
    fn placeholders_are_filled() {
        assert_eq!(
            fill("{customer}: {number} {amount_due} {due_date}{pay_link}", "F-1", "Ana", "2025-01-01", "12,00 €", ""),
            "Ana: F-1 12,00 € 2025-01-01"
        );
    }
}
