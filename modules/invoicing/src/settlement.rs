//! How much of an invoice is settled, and the status that follows from it.
//! The one place that moves an invoice between validated/sent,
//! partially_paid, paid and cancelled: payments (allocations) and credit
//! notes both change `paid_cents` / `credited_cents` in their transaction
//! and then call [`refresh_status`] in the same transaction.
//!
//! [`settle`] is [`refresh_status`] plus what follows a settled invoice:
//! when it becomes paid (or is cancelled by a credit note, so nothing is
//! owed any more), the suspensions registered against it are lifted and
//! their jobs enqueued, in the same transaction, once.

use shrooms_core::ids::{OrgId, Timestamp};
use sqlx::{AnyConnection, Row};

/// The status an invoice or credit note should have, from its amounts.
/// Drafts and quotes are left alone (`None`).
pub fn settled_status(
    kind: &str,
    status: &str,
    gross: i64,
    paid: i64,
    credited: i64,
    sent: bool,
) -> Option<&'static str> {
    if kind == "quote" || status == "draft" {
        return None;
    }
    let open = if sent { "sent" } else { "validated" };
    Some(if gross > 0 && credited >= gross {
        "cancelled"
    } else if paid + credited >= gross {
        "paid"
    } else if paid + credited > 0 {
        "partially_paid"
    } else {
        open
    })
}

/// Recomputes the status of one document from its stored amounts, in the
/// caller's transaction. Returns the new status when it changed.
pub async fn refresh_status(
    conn: &mut AnyConnection,
    org: OrgId,
    document_id: &str,
) -> Result<Option<String>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT kind, status, gross_cents, paid_cents, credited_cents, sent_at FROM inv_documents \
         WHERE org_id = $1 AND id = $2",
    )
    .bind(org.to_string())
    .bind(document_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let kind: String = row.try_get(0)?;
    let status: String = row.try_get(1)?;
    let sent: Option<i64> = row.try_get(5)?;
    let Some(next) = settled_status(&kind, &status, row.try_get(2)?, row.try_get(3)?, row.try_get(4)?, sent.is_some())
    else {
        return Ok(None);
    };
    if next == status {
        return Ok(None);
    }
    let now = Timestamp::now().0;
    sqlx::query(
        "UPDATE inv_documents SET status = $1, updated_at = $2, \
         paid_at = CASE WHEN $1 = 'paid' THEN COALESCE(paid_at, $2) ELSE NULL END \
         WHERE org_id = $3 AND id = $4",
    )
    .bind(next)
    .bind(now)
    .bind(org.to_string())
    .bind(document_id)
    .execute(&mut *conn)
    .await?;
    Ok(Some(next.to_string()))
}

/// Recomputes the status of one document in the caller's transaction and,
/// when nothing is owed on it any more, lifts the suspensions waiting for it
/// (see [`crate::suspensions`]). Payments call this; so should any code that
/// changes `paid_cents` or `credited_cents`.
pub async fn settle(
    st: &shrooms_core::web::AppState,
    tx: &mut shrooms_core::db::Tx,
    who: &shrooms_core::audit::Who,
    org: OrgId,
    document_id: &str,
) -> Result<Option<String>, shrooms_core::error::CoreError> {
    let changed = refresh_status(tx.conn(), org, document_id).await?;
    if matches!(changed.as_deref(), Some("paid") | Some("cancelled")) {
        crate::suspensions::lift_for(st, tx, who, org, document_id).await?;
    }
    if changed.is_some() {
        tell_sources(st, tx, org, document_id).await?;
    }
    Ok(changed)
}

/// Tells the modules whose pending items this invoice billed that its status
/// changed: for each such module `m` that registers a job named
/// `m.invoice_settled`, that job is queued (payload `{"document_id": …}`) in
/// this transaction. The members module uses it to follow dues paid by
/// invoice. Invoicing knows nothing of the modules it bills for.
async fn tell_sources(
    st: &shrooms_core::web::AppState,
    tx: &mut shrooms_core::db::Tx,
    org: OrgId,
    document_id: &str,
) -> Result<(), shrooms_core::error::CoreError> {
    let modules: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT source_module FROM inv_pending_items WHERE org_id = $1 AND document_id = $2",
    )
    .bind(org.to_string())
    .bind(document_id)
    .fetch_all(tx.conn())
    .await?;
    if modules.is_empty() {
        return Ok(());
    }
    let specs = st.modules.jobs();
    for m in modules {
        let name = format!("{m}.invoice_settled");
        if let Some(spec) = specs.iter().find(|j| j.name == name) {
            shrooms_core::jobs::enqueue(
                tx,
                spec,
                Some(org),
                serde_json::json!({ "document_id": document_id }),
                None,
                0,
            )
            .await?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::settled_status;

    #[test]
    fn status_follows_the_amounts() {
        assert_eq!(settled_status("invoice", "draft", 1000, 0, 0, false), None);
        assert_eq!(settled_status("quote", "sent", 1000, 0, 0, true), None);
        assert_eq!(settled_status("invoice", "validated", 1000, 0, 0, false), Some("validated"));
        assert_eq!(settled_status("invoice", "validated", 1000, 0, 0, true), Some("sent"));
        assert_eq!(settled_status("invoice", "sent", 1000, 400, 0, true), Some("partially_paid"));
        assert_eq!(settled_status("invoice", "partially_paid", 1000, 400, 600, true), Some("paid"));
        assert_eq!(settled_status("invoice", "sent", 1000, 0, 1000, true), Some("cancelled"));
        assert_eq!(settled_status("invoice", "paid", 1000, 1000, 0, true), Some("paid"));
        // A zero-amount invoice is settled as soon as it is issued.
        assert_eq!(settled_status("invoice", "validated", 0, 0, 0, false), Some("paid"));
    }
}
