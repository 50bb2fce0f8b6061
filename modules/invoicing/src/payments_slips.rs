//! Cheque deposit slips (bordereaux de remise de chèques): the cheques
//! taken to the bank together. Until then a cheque sits on "cheques to
//! deposit" (5112); the slip's entry moves the total to the bank (512 ←
//! 5112). A cheque on a slip can no longer be cancelled.

use crate::payments::{self, money, Payment, PaymentFilter};
use crate::MODULE;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_accounting::domain::{Amount, Day, Line};
use shrooms_accounting::service::{post_entry, NewEntry};
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::db::Db;
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::Timestamp;
use shrooms_core::permissions::{CanRead, CanWrite};
use sqlx::Row;
use utoipa::ToSchema;

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlipInput {
    /// The cheques to deposit; every cheque not yet deposited when left out.
    #[serde(default)]
    pub payment_ids: Option<Vec<String>>,
    /// `YYYY-MM-DD`; today when left out.
    #[serde(default)]
    pub deposit_date: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DepositSlip {
    pub id: String,
    /// `REM-00001`.
    pub number: String,
    pub bank_account: String,
    pub deposit_date: String,
    pub total_cents: i64,
    pub cheque_count: i64,
    pub ledger_entry_id: Option<String>,
    pub created_at: String,
    pub cheques: Vec<Payment>,
}

fn from_row(r: &sqlx::any::AnyRow) -> CoreResult<DepositSlip> {
    Ok(DepositSlip {
        id: r.try_get(0)?,
        number: r.try_get(1)?,
        bank_account: r.try_get(2)?,
        deposit_date: r.try_get(3)?,
        total_cents: r.try_get(4)?,
        cheque_count: r.try_get(5)?,
        ledger_entry_id: r.try_get(6)?,
        created_at: Timestamp(r.try_get(7)?).rfc3339(),
        cheques: vec![],
    })
}

const COLS: &str = "id, number, bank_account, deposit_date, total_cents, cheque_count, ledger_entry_id, created_at";

pub async fn create(db: &Db, who: &Who, cap: &CanWrite, input: SlipInput) -> CoreResult<DepositSlip> {
    let org = cap.org();
    let date = match input.deposit_date.as_deref().map(str::trim) {
        None | Some("") => Day::today(),
        Some(d) => Day::parse(d).map_err(|m| CoreError::validation("deposit_date", m))?,
    };
    let mut tx = db.begin_durable().await?;
    let rows = sqlx::query(
        "SELECT id, amount_cents, cheque_number, cheque_bank FROM inv_payments WHERE org_id = $1 AND method = 'cheque' \
         AND status = 'recorded' AND deposit_slip_id IS NULL ORDER BY received_date, id",
    )
    .bind(org.to_string())
    .fetch_all(tx.conn())
    .await?;
    let waiting: Vec<(String, i64)> =
        rows.iter().map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).collect::<CoreResult<_>>()?;
    let chosen: Vec<(String, i64)> = match &input.payment_ids {
        Some(ids) => {
            let mut errors = Vec::new();
            let mut out = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                match waiting.iter().find(|(w, _)| w == id) {
                    Some(c) if !out.iter().any(|(o, _): &(String, i64)| o == id) => out.push(c.clone()),
                    Some(_) => {
                        errors.push(FieldError::new(format!("payment_ids[{i}]"), "This cheque is listed twice."))
                    }
                    None => errors.push(FieldError::new(
                        format!("payment_ids[{i}]"),
                        "This is not a cheque waiting to be deposited.",
                    )),
                }
            }
            if !errors.is_empty() {
                return Err(CoreError::Validation(errors));
            }
            out
        }
        None => waiting,
    };
    if chosen.is_empty() {
        return Err(CoreError::validation("payment_ids", "There is no cheque to deposit."));
    }
    let total: i64 = chosen.iter().map(|(_, a)| a).sum();
    let settings = payments::settings_in(tx.conn(), org).await?;
    let seq: i64 = sqlx::query("SELECT COALESCE(MAX(seq), 0) + 1 FROM inv_deposit_slips WHERE org_id = $1")
        .bind(org.to_string())
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?;
    let number = format!("REM-{seq:05}");
    let label = format!("Remise de chèques {number} ({} chèques)", chosen.len());
    let line = |account: &str, d: i64, c: i64| Line {
        account: account.into(),
        aux: String::new(),
        aux_label: String::new(),
        label: label.clone(),
        debit: Amount(d),
        credit: Amount(c),
        currency_amount: None,
        currency: None,
        tags: vec![],
    };
    let entry = NewEntry {
        journal: settings.bank_journal.clone(),
        date,
        label: label.clone(),
        piece_ref: number.clone(),
        piece_date: None,
        lines: vec![line(&settings.bank_account, total, 0), line(&settings.cheque_account, 0, total)],
    };
    let posted = post_entry(&mut tx, who, org, MODULE, entry, true).await.map_err(CoreError::from)?;
    let id = uuid::Uuid::now_v7().to_string();
    sqlx::query(
        "INSERT INTO inv_deposit_slips (id, org_id, seq, number, bank_account, deposit_date, total_cents, cheque_count, \
         ledger_entry_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&id)
    .bind(org.to_string())
    .bind(seq)
    .bind(&number)
    .bind(&settings.bank_account)
    .bind(date.iso())
    .bind(total)
    .bind(chosen.len() as i64)
    .bind(&posted.id)
    .bind(who.account.map(|a| a.to_string()))
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await
    .map_err(|e| CoreError::from(e).on_conflict("payment_ids", "Another deposit slip was made at the same time: try again."))?;
    for (p, _) in &chosen {
        let r = sqlx::query(
            "UPDATE inv_payments SET deposit_slip_id = $1 WHERE org_id = $2 AND id = $3 AND deposit_slip_id IS NULL",
        )
        .bind(&id)
        .bind(org.to_string())
        .bind(p)
        .execute(tx.conn())
        .await?;
        if r.rows_affected() != 1 {
            return Err(CoreError::Conflict {
                field: None,
                message: "A cheque was deposited meanwhile: try again.".into(),
            });
        }
    }
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "invoicing.deposit_slip.create",
            entity_type: "invoicing_deposit_slip",
            entity_id: id.clone(),
            before: None,
            after: Some(json!({"number": number, "total_cents": total, "cheques": chosen.iter().map(|(p, _)| p).collect::<Vec<_>>(), "ledger_entry_id": posted.id})),
        },
    )
    .await?;
    tx.commit().await?;
    get(db, &cap.as_read(), &id).await
}

pub async fn list(db: &Db, cap: &CanRead) -> CoreResult<Vec<DepositSlip>> {
    let rows =
        sqlx::query(&format!("SELECT {COLS} FROM inv_deposit_slips WHERE org_id = $1 ORDER BY seq DESC LIMIT 500"))
            .bind(cap.org().to_string())
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(from_row).collect()
}

pub async fn get(db: &Db, cap: &CanRead, id: &str) -> CoreResult<DepositSlip> {
    let r = sqlx::query(&format!("SELECT {COLS} FROM inv_deposit_slips WHERE org_id = $1 AND id = $2"))
        .bind(cap.org().to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    let mut s = from_row(&r)?;
    let all = payments::list(db, cap, &PaymentFilter { method: Some("cheque".into()), ..Default::default() }).await?;
    s.cheques = all.into_iter().filter(|p| p.deposit_slip_id.as_deref() == Some(id)).collect();
    s.cheques.sort_by(|a, b| a.received_date.cmp(&b.received_date).then(a.id.cmp(&b.id)));
    Ok(s)
}

/// The slip as a PDF to hand to the bank with the cheques.
pub fn pdf(slip: &DepositSlip, org_name: &str, colour: &str, lang: &str) -> Vec<u8> {
    let fr = lang == "fr";
    let title = if fr { "Bordereau de remise de chèques" } else { "Cheque deposit slip" };
    let mut doc = shrooms_core::pdf::Document::new(
        title,
        shrooms_core::pdf::Branding { org_name: org_name.to_string(), colour: colour.to_string() },
    );
    doc.heading(&format!("{title} {}", slip.number));
    let total = Amount(slip.total_cents).display(lang);
    let count = slip.cheque_count.to_string();
    doc.key_values(&[
        (if fr { "Date de remise" } else { "Deposit date" }, slip.deposit_date.as_str()),
        (if fr { "Compte" } else { "Account" }, slip.bank_account.as_str()),
        (if fr { "Nombre de chèques" } else { "Cheques" }, count.as_str()),
        (if fr { "Total" } else { "Total" }, total.as_str()),
    ]);
    let rows: Vec<Vec<String>> = slip
        .cheques
        .iter()
        .map(|c| {
            vec![
                c.cheque_number.clone(),
                c.cheque_bank.clone(),
                if c.payer.is_empty() { c.customer_name.clone() } else { c.payer.clone() },
                c.received_date.clone(),
                Amount(c.amount_cents).display(lang),
            ]
        })
        .collect();
    let headers: [&str; 5] = if fr {
        ["N° chèque", "Banque", "Tireur", "Reçu le", "Montant"]
    } else {
        ["Cheque no.", "Bank", "Drawer", "Received", "Amount"]
    };
    doc.table(&headers, &[1.5, 1.5, 3.0, 1.3, 1.3], &rows);
    doc.finish(&format!("{} – {}", slip.number, money(slip.total_cents)))
}
