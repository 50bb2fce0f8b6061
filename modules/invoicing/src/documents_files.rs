//! The PDF of an issued document, kept as a core file. Validation enqueues
//! the job `invoicing.documents.pdf` in its own transaction; the job makes
//! the PDF from the frozen document and attaches it. Until it has run (or
//! if it failed), the PDF is made on the fly from the same frozen data, so
//! a crash between numbering and the PDF loses nothing: the number and the
//! ledger entry are committed, the file follows.

use crate::documents::{self, ENTITY};
use crate::render::{self, Format};
use crate::MODULE;
use shrooms_core::audit::Who;
use shrooms_core::db::Tx;
use shrooms_core::error::{CoreError, CoreResult};
use shrooms_core::files::{self, Owner, Upload, Variant};
use shrooms_core::ids::OrgId;
use shrooms_core::jobs::{self, JobCtx, JobFuture, JobSpec};
use shrooms_core::orgs::Org;
use shrooms_core::permissions::CanRead;
use shrooms_core::web::AppState;
use sqlx::Row;

pub const PDF_JOB: JobSpec =
    JobSpec { name: "invoicing.documents.pdf", max_attempts: 5, backoff_secs: 10, timeout_secs: 120, run: run_pdf };

/// Asks for the stored PDF of a document just validated, in its transaction.
pub async fn request_pdf(tx: &mut Tx, org: OrgId, document_id: &str) -> CoreResult<()> {
    jobs::enqueue(
        tx,
        &PDF_JOB,
        Some(org),
        serde_json::json!({"document_id": document_id}),
        Some(&format!("invoicing.pdf:{document_id}")),
        0,
    )
    .await?;
    Ok(())
}

fn run_pdf(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let cap = ctx.write_grant(MODULE).ok_or_else(|| anyhow::anyhow!("a document's PDF job has an organisation"))?;
        let id = ctx.payload["document_id"].as_str().unwrap_or_default().to_string();
        let stored = sqlx::query("SELECT pdf_file_id FROM inv_documents WHERE org_id = $1 AND id = $2")
            .bind(cap.org().to_string())
            .bind(&id)
            .fetch_optional(st.db.pool())
            .await?;
        let Some(stored) = stored else { return Ok(()) };
        if stored.try_get::<Option<String>, _>(0)?.is_some() {
            return Ok(());
        }
        let org = shrooms_core::orgs::find_org(&st.db, &cap.org().to_string())
            .await?
            .ok_or_else(|| anyhow::anyhow!("organisation gone"))?;
        let d = documents::get(&st.db, &cap.as_read(), &id).await?;
        let (name, bytes) = render::render_document(&d, &org, Format::Pdf)?;
        let who = Who::system("invoicing: document PDF");
        let file =
            files::store(&st, &who, &cap, &Owner::new(ENTITY, &id), Upload { name, bytes, public: false }).await?;
        let mut tx = st.db.begin().await?;
        sqlx::query("UPDATE inv_documents SET pdf_file_id = $1 WHERE org_id = $2 AND id = $3 AND pdf_file_id IS NULL")
            .bind(&file.id)
            .bind(cap.org().to_string())
            .bind(&id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    })
}

/// The PDF of a document: the stored file when there is one, else made now.
pub async fn pdf(st: &AppState, cap: &CanRead, org: &Org, id: &str) -> CoreResult<(String, Vec<u8>)> {
    let d = documents::get(&st.db, cap, id).await?;
    if let Some(file_id) = &d.pdf_file_id {
        match files::get(&st.db, cap, file_id).await {
            Ok(info) => {
                let (bytes, _) =
                    files::content(&st.cfg, &info, Variant::Original, shrooms_core::images::RenditionFormat::Webp)
                        .await?;
                return Ok((render::file_name(&d, "pdf"), bytes));
            }
            Err(CoreError::NotFound) => {}
            Err(e) => return Err(e),
        }
    }
    render::render_document(&d, org, Format::Pdf)
}
