//! A person's personal data on the web: the export across every module
//! (JSON or CSV) and erasure by pseudonymisation, as JSON routes next to
//! `/api/v1/orgs/{org}/people/{id}` and as pages from the person's page;
//! and the audit chain's verification for instance administrators (erasure
//! never rewrites the audit log: this proves it).
//!
//! Both need administrator access to the core (people): an export gathers
//! what every module holds, whatever the caller may read there.

use super::api::{download, ApiJson};
use super::auth::{Actor, OrgCtx};
use super::ui::{Ui, UiError};
use super::AppState;
use crate::audit::{self, Change};
use crate::error::{CoreError, CoreResult, Problem};
use crate::people::ExportFormat;
use crate::privacy::{self, ErasureNote, ErasureReport, Outcome, Reason, Section};
use axum::extract::{Form, Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, OpenApi, ToSchema};

const CORE: &str = "core";

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// A person's data across every module.
#[derive(Serialize, ToSchema)]
pub struct PersonalDataExport {
    pub person_id: String,
    /// RFC 3339, UTC.
    pub exported_at: String,
    pub sections: Vec<Section>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseInput {
    /// The person's name (given and family name) as shown, to confirm.
    pub confirmation: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditVerification {
    pub intact: bool,
    /// Entries checked (when intact).
    pub entries: i64,
    /// The first entry that does not verify (when broken).
    pub broken_at: Option<i64>,
    pub reason: Option<String>,
}

/// Gathers the export and writes its audit entry (who exported whose data).
async fn gather(st: &AppState, ctx: &OrgCtx, id: &str, format: &str) -> CoreResult<Vec<Section>> {
    let cap = ctx.can_admin(CORE)?;
    let sections = privacy::export(&st.db, &st.modules, cap.as_write().org(), id).await?;
    let mut tx = st.db.begin().await?;
    audit::record(
        &mut tx,
        &ctx.who(),
        Change {
            org: Some(ctx.org.id),
            action: "person.personal_data_export",
            entity_type: "person",
            entity_id: id.to_string(),
            before: None,
            after: Some(json!({"format": format, "sections": sections.len()})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(sections)
}

fn export_response(id: &str, sections: Vec<Section>, csv: bool) -> Response {
    if csv {
        download(&format!("personal-data-{id}"), ExportFormat::Csv, privacy::export_csv(&sections))
    } else {
        let body = PersonalDataExport {
            person_id: id.to_string(),
            exported_at: crate::ids::Timestamp::now().rfc3339(),
            sections,
        };
        (
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::CONTENT_DISPOSITION, format!("attachment; filename=\"personal-data-{id}.json\"")),
            ],
            serde_json::to_string_pretty(&body).unwrap_or_default(),
        )
            .into_response()
    }
}

fn wants_csv(format: Option<&str>) -> CoreResult<bool> {
    match format.unwrap_or("json") {
        "json" => Ok(false),
        "csv" => Ok(true),
        _ => Err(CoreError::validation("format", "Use json or csv.")),
    }
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/people/{id}/personal-data", tag = "people", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path), ExportParams),
    responses(
        (status = 200, description = "Everything the organisation holds about the person, one section per module and kind of record", content(
            (PersonalDataExport = "application/json"),
            (String = "text/csv")
        )),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn export_personal_data(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<ExportParams>,
) -> CoreResult<Response> {
    let csv = wants_csv(q.format.as_deref())?;
    let sections = gather(&st, &ctx, &id, if csv { "csv" } else { "json" }).await?;
    Ok(export_response(&id, sections, csv))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/people/{id}/erase", tag = "people", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = EraseInput,
    responses(
        (status = 200, body = ErasureReport, description = "Erased: what each module pseudonymised, deleted or kept and why"),
        (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "Already erased, or something still binds the person (an unpaid invoice, an office, access to the organisation)"),
        (status = 422, body = Problem, description = "The confirmation is not the person's name")))]
pub async fn erase_person(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<EraseInput>,
) -> CoreResult<Json<ErasureReport>> {
    let cap = ctx.can_admin(CORE)?.as_write();
    let report = privacy::erase(
        &st.db,
        &st.modules,
        &ctx.who(),
        &cap,
        &id,
        Reason::Request,
        Some(req.confirmation.as_deref().unwrap_or("")),
    )
    .await?;
    Ok(Json(report))
}

#[utoipa::path(get, path = "/api/v1/admin/audit/verify", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = AuditVerification), (status = 403, body = Problem)))]
pub async fn verify_audit(State(st): State<AppState>, actor: Actor) -> CoreResult<Json<AuditVerification>> {
    actor.require_instance_admin()?;
    Ok(Json(match audit::verify(&st.db).await? {
        audit::Verification::Intact { entries, .. } => {
            AuditVerification { intact: true, entries, broken_at: None, reason: None }
        }
        audit::Verification::Broken { seq, reason } => {
            AuditVerification { intact: false, entries: 0, broken_at: Some(seq), reason: Some(reason) }
        }
    }))
}

#[derive(OpenApi)]
#[openapi(
    paths(export_personal_data, erase_person, verify_audit),
    components(schemas(
        PersonalDataExport,
        Section,
        EraseInput,
        ErasureReport,
        ErasureNote,
        Outcome,
        AuditVerification
    ))
)]
pub struct PrivacyApi;

// ---------- pages ----------

async fn export_page(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id, file)): Path<(String, String, String)>,
) -> Result<Response, UiError> {
    let csv = match file.as_str() {
        "data.json" => false,
        "data.csv" => true,
        _ => return Err(UiError(CoreError::NotFound)),
    };
    let sections = gather(&st, &ctx, &id, if csv { "csv" } else { "json" }).await?;
    Ok(export_response(&id, sections, csv))
}

async fn erase_form(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let p = crate::people::get(&ui.st.db, &cap.as_write().as_read(), &id).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("person_erase.html", json!({"person": p, "form": {"confirmation": ""}})))
}

#[derive(Deserialize)]
struct EraseForm {
    confirmation: Option<String>,
}

async fn erase_submit(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    Form(f): Form<EraseForm>,
) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?.as_write();
    let typed = f.confirmation.unwrap_or_default();
    match privacy::erase(&ui.st.db, &ui.st.modules, &ctx.who(), &cap, &id, Reason::Request, Some(&typed)).await {
        Ok(_) => Ok(Redirect::to(&format!("/o/{}/people/{}", ctx.org.slug, id)).into_response()),
        Err(CoreError::NotFound) => Err(UiError(CoreError::NotFound)),
        Err(e) => {
            let p = crate::people::get(&ui.st.db, &cap.as_read(), &id).await?;
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("person_erase.html", e, json!({"person": p, "form": {"confirmation": typed}})))
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/orgs/{org}/people/{id}/personal-data", get(export_personal_data))
        .route("/api/v1/orgs/{org}/people/{id}/erase", post(erase_person))
        .route("/api/v1/admin/audit/verify", get(verify_audit))
        .route("/o/{org}/people/{id}/personal-data/{file}", get(export_page))
        .route("/o/{org}/people/{id}/erase", get(erase_form).post(erase_submit))
}
