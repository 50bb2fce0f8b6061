//! Sending a document by email through the core outbox. The mail carries a
//! link to the document's PDF (a public file: the customer has no account);
//! each sending is recorded in `inv_sends` with the outbox message, whose
//! delivery status the document shows. An invoice becomes `sent`.

use crate::catalogue::{audited, text};
use crate::documents::{self, money, record_ref, ENTITY};
use crate::render::{self, Format};
use crate::settlement;
use serde::{Deserialize, Serialize};
use shrooms_core::audit::Who;
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::files::{self, Owner, Upload};
use shrooms_core::ids::Timestamp;
use shrooms_core::orgs::Org;
use shrooms_core::permissions::CanWrite;
use shrooms_core::timeline;
use shrooms_core::web::AppState;
use sqlx::{AnyConnection, Row};
use utoipa::ToSchema;

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    /// The recipient; the customer's email when left out.
    #[serde(default)]
    pub to: Option<String>,
    /// A few words added to the mail.
    #[serde(default)]
    pub message: Option<String>,
}

/// One sending of a document, with the outbox's delivery status.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Send {
    pub id: String,
    pub to: String,
    /// `queued`, `sent`, `logged` (no SMTP server configured) or `failed`.
    pub status: String,
    pub last_error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

pub async fn sends_of(conn: &mut AnyConnection, document_id: &str) -> CoreResult<Vec<Send>> {
    let rows = sqlx::query(
        "SELECT s.id, s.to_email, COALESCE(m.status, 'queued'), m.last_error, s.created_at FROM inv_sends s \
         LEFT JOIN mail_outbox m ON m.id = s.outbox_id WHERE s.document_id = $1 ORDER BY s.id",
    )
    .bind(document_id)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Send {
                id: r.try_get(0)?,
                to: r.try_get(1)?,
                status: r.try_get(2)?,
                last_error: r.try_get(3)?,
                created_at: Timestamp(r.try_get(4)?).rfc3339(),
            })
        })
        .collect()
}

/// Mails an issued document and records it.
pub async fn send(
    st: &AppState,
    who: &Who,
    cap: &CanWrite,
    org: &Org,
    id: &str,
    input: SendInput,
) -> CoreResult<documents::Document> {
    let d = documents::get(&st.db, &cap.as_read(), id).await?;
    if d.number.is_none() {
        return Err(CoreError::Conflict { field: None, message: "Validate the document before sending it.".into() });
    }
    let mut e = Vec::new();
    let to = input
        .to
        .clone()
        .filter(|t| !t.trim().is_empty())
        .or(d.buyer.as_ref().map(|b| b.email.clone()))
        .unwrap_or_default()
        .trim()
        .to_lowercase();
    if to.is_empty() {
        e.push(FieldError::new("to", "The customer has no email address: give one."));
    } else if !to.contains('@') || to.contains(' ') || to.len() > 200 {
        e.push(FieldError::new("to", "Enter a valid email address, like name@example.org."));
    }
    let message = text(input.message.as_deref().unwrap_or(""), "message", 2000, &mut e);
    if !e.is_empty() {
        return Err(CoreError::Validation(e));
    }
    // The file the link points to: the document's PDF, public by its link.
    let (name, bytes) = render::render_document(&d, org, Format::Pdf)?;
    let file = files::store(st, who, cap, &Owner::new(ENTITY, id), Upload { name, bytes, public: true }).await?;
    let link = format!("{}/public/files/{}/content", st.base_url(), file.id);
    // An invoice still to pay carries its "pay online" page when the
    // organisation takes payments online.
    let pay_link = if d.kind == "invoice" && d.status != "draft" && d.gross_cents > d.paid_cents + d.credited_cents {
        let mut conn = st.db.pool().acquire().await?;
        if crate::providers::online_enabled(&mut conn, cap.org()).await? {
            let token = crate::providers::pay_link(st, cap.org(), id).await?;
            Some(format!("{}{}", st.base_url(), crate::providers::pay_path(&org.slug, &token)))
        } else {
            None
        }
    } else {
        None
    };
    let mut mail = shrooms_core::web::api::compose(
        st,
        "inv_doc",
        &d.lang,
        serde_json::json!({
            "kind": d.kind, "number": d.number, "amount": money(d.gross_cents), "currency": d.currency,
            "due_date": if d.kind == "invoice" { d.due_date.clone() } else { None }, "message": message,
            "link": link, "pay_link": pay_link, "org": org.name,
        }),
    )
    .await?;
    let kind = match (d.kind.as_str(), d.lang.as_str()) {
        ("quote", "en") => "Quote",
        ("quote", _) => "Devis",
        ("credit_note", "en") => "Credit note",
        ("credit_note", _) => "Avoir",
        (_, "en") => "Invoice",
        _ => "Facture",
    };
    mail.subject = format!("{kind} {} — {}", d.number.as_deref().unwrap_or(""), org.name);
    let mut tx = st.db.begin().await?;
    let started = Timestamp::now().0;
    shrooms_core::outbox::enqueue(&mut tx, Some(cap.org()), "inv_doc", &to, &mail).await?;
    let outbox_id: Option<String> = sqlx::query(
        "SELECT id FROM mail_outbox WHERE org_id = $1 AND kind = 'inv_doc' AND to_addr = $2 AND created_at >= $3 \
         AND id NOT IN (SELECT outbox_id FROM inv_sends WHERE outbox_id IS NOT NULL AND org_id = $1) ORDER BY id DESC LIMIT 1",
    )
    .bind(cap.org().to_string())
    .bind(&to)
    .bind(started)
    .fetch_optional(tx.conn())
    .await?
    .map(|r| r.try_get(0))
    .transpose()?;
    let send_id = uuid::Uuid::now_v7().to_string();
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO inv_sends (id, org_id, document_id, to_email, outbox_id, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&send_id)
    .bind(cap.org().to_string())
    .bind(id)
    .bind(&to)
    .bind(&outbox_id)
    .bind(who.account.map(|a| a.to_string()))
    .bind(now)
    .execute(tx.conn())
    .await?;
    sqlx::query(
        "UPDATE inv_documents SET sent_at = COALESCE(sent_at, $1), updated_at = $1 WHERE org_id = $2 AND id = $3",
    )
    .bind(now)
    .bind(cap.org().to_string())
    .bind(id)
    .execute(tx.conn())
    .await?;
    let rr = record_ref(&org.slug, &d);
    match settlement::refresh_status(tx.conn(), cap.org(), id).await? {
        Some(next) => {
            timeline::status_change(
                st,
                &mut tx,
                who,
                cap.org(),
                &rr,
                Some(&d.status),
                &next,
                &format!("Sent to {}.", shrooms_core::markdown::escape_text(&to)),
            )
            .await?;
        }
        None => {
            timeline::event(
                &mut tx,
                who,
                cap.org(),
                &rr,
                &format!("Sent to {}.", shrooms_core::markdown::escape_text(&to)),
                serde_json::json!({"send_id": send_id}),
            )
            .await?;
        }
    }
    audited(
        &mut tx,
        who,
        cap.org(),
        "invoicing.document.send",
        ENTITY,
        id,
        None,
        Some(serde_json::json!({"to": to, "file": file.id})),
    )
    .await?;
    tx.commit().await?;
    documents::get(&st.db, &cap.as_read(), id).await
}
