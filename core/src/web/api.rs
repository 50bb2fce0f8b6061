//! JSON API of the core, version 1, under `/api/v1`. Every handler is thin:
//! parse, authorise (capability from [`OrgCtx`]), call the service, answer.
//! Each carries its OpenAPI annotation; `openapi()` assembles the document.

use super::auth::{Actor, OrgCtx};
use super::AppState;
use crate::audit::{self, AuditEntry, AuditFilter};
use crate::error::{CoreError, CoreResult, FieldError, Problem};
use crate::groups::{self, Group};
use crate::identity::{self, ApiKeyInfo, TokenPair, TokenPurpose};
use crate::instance::{self, ModuleScope};
use crate::jobs::{self, JobInfo};
use crate::orgs::{self, Member, NewOrg, Org, OrgPatch, Role, RoleInput};
use crate::outbox::{self, OutboxMessage};
use crate::people::{self, AccountLink, ListQuery, PeopleSort, Person, PersonInput, PersonWithAccount};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post, put};
use axum::{Json, Router};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

pub const CORE: &str = "core";

// ---------- extractors that answer problem+json ----------

/// JSON body whose errors (syntax, unknown or missing fields, size) become problem+json.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Response;
    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !json_content_type(req.headers()) {
            return Err(json_rejection(JsonRejection::MissingJsonContentType(Default::default())));
        }
        let bytes = match axum::body::Bytes::from_request(req, state).await {
            Ok(b) => b,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(crate::error::problem_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload-too-large",
                    "The request body is too large.".into(),
                    vec![],
                ))
            }
            Err(e) => return Err(e.into_response()),
        };
        // Every body of the API is a JSON object; serde would also read a
        // struct from an array of its fields in order, which nobody means.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
            return Err(CoreError::validation("body", "Send a JSON object, not an array.").into_response());
        }
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(v)) => Ok(ApiJson(v)),
            // serde_json reports some wrong types (an array where a word is
            // expected) as syntax errors; when the body parses as JSON, the
            // client sent a wrong value, not broken JSON: a 422 naming it.
            Err(JsonRejection::JsonSyntaxError(e))
                if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() =>
            {
                let text = e.body_text();
                let detail = text.split_once(": ").map(|x| x.1).unwrap_or(&text).to_string();
                let field = detail.split(": ").next().filter(|f| !f.contains(' ')).unwrap_or("body").to_string();
                Err(CoreError::Validation(vec![FieldError::new(field, detail)]).into_response())
            }
            Err(e) => Err(json_rejection(e)),
        }
    }
}

/// For an optional object nested in a request body, with
/// `#[serde(default, deserialize_with = "shrooms_core::web::api::nested_object")]`:
/// serde would read a struct from an array of its fields in order (`[null, null]`),
/// which nobody means; this takes an object or `null` and refuses the rest.
pub fn nested_object<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error;
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Ok(None),
        v @ serde_json::Value::Object(_) => serde_json::from_value(v).map(Some).map_err(D::Error::custom),
        _ => Err(D::Error::custom("expected an object")),
    }
}

/// `application/json` or any `application/*+json`, as axum's `Json` accepts.
fn json_content_type(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn json_rejection(e: JsonRejection) -> Response {
    let status = e.status();
    let text = e.body_text();
    match e {
        JsonRejection::JsonDataError(_) => {
            // "Failed to deserialize the JSON body into the target type: name: missing field `x` at line..."
            let detail = text.split_once(": ").map(|x| x.1).unwrap_or(&text).to_string();
            let field = detail.split(": ").next().filter(|f| !f.contains(' ')).unwrap_or("body").to_string();
            let field = extract_backticked(&detail).unwrap_or(field);
            CoreError::Validation(vec![FieldError::new(field, detail)]).into_response()
        }
        JsonRejection::MissingJsonContentType(_) => crate::error::problem_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Send the body as application/json.".into(),
            vec![],
        ),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => {
            crate::error::problem_response(status, "payload-too-large", "The request body is too large.".into(), vec![])
        }
        _ => crate::error::problem_response(
            StatusCode::BAD_REQUEST,
            "malformed-json",
            format!("The body is not valid JSON: {text}"),
            vec![],
        ),
    }
}

fn extract_backticked(s: &str) -> Option<String> {
    let start = s.find('`')? + 1;
    let end = s[start..].find('`')? + start;
    Some(s[start..end].to_string())
}

/// Query string whose errors become problem+json.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(q) => Ok(ApiQuery(q.0)),
            Err(e) => Err(query_rejection(e)),
        }
    }
}

fn query_rejection(e: QueryRejection) -> Response {
    CoreError::Validation(vec![FieldError::new("query", e.body_text())]).into_response()
}

fn created<T: Serialize>(v: T) -> Response {
    (StatusCode::CREATED, Json(v)).into_response()
}

// ---------- auth ----------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub email: String,
    pub password: String,
    /// Current code of the authenticator app, when a second factor is enrolled.
    #[serde(default)]
    pub totp: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth", request_body = TokenRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn token(
    State(st): State<AppState>,
    parts: Parts_,
    ApiJson(req): ApiJson<TokenRequest>,
) -> CoreResult<Json<TokenPair>> {
    let account = identity::password_login(&st.db, &st.cfg, &req.email, &req.password, &parts.0).await?;
    if account.totp_enabled {
        match req.totp.as_deref() {
            Some(code) => identity::check_totp(&st.db, &st.cfg, &account, code, &parts.0).await?,
            None => {
                return Err(CoreError::validation(
                    "totp",
                    "This account has a second factor: send the current code in `totp`.",
                ))
            }
        }
    }
    Ok(Json(identity::issue_tokens(&st.db, &st.cfg, &st.signing_key, account.id).await?))
}

/// The client address, as an extractor for handlers that do not need the actor.
pub struct Parts_(pub String);

impl FromRequestParts<AppState> for Parts_ {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Parts_(super::auth::client_address(parts)))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), (status = 401, body = Problem)))]
pub async fn refresh(State(st): State<AppState>, ApiJson(req): ApiJson<RefreshRequest>) -> CoreResult<Json<TokenPair>> {
    Ok(Json(identity::refresh_tokens(&st.db, &st.cfg, &st.signing_key, &req.refresh_token).await?))
}

#[utoipa::path(post, path = "/api/v1/auth/logout-everywhere", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem)))]
pub async fn logout_everywhere(State(st): State<AppState>, actor: Actor) -> CoreResult<StatusCode> {
    let mut tx = st.db.begin().await?;
    identity::end_all_sessions(&mut tx, &actor.who(), actor.account.id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForgotRequest {
    pub email: String,
}

#[utoipa::path(post, path = "/api/v1/auth/password/forgot", tag = "auth", request_body = ForgotRequest,
    responses((status = 202, description = "A reset link was sent if the account exists"), (status = 429, body = Problem)))]
pub async fn forgot_password(
    State(st): State<AppState>,
    addr: Parts_,
    ApiJson(req): ApiJson<ForgotRequest>,
) -> CoreResult<StatusCode> {
    send_reset_link(&st, &req.email, &addr.0).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Renders a mail of one kind with the instance's name.
pub async fn compose(st: &AppState, kind: &str, lang: &str, ctx: serde_json::Value) -> CoreResult<outbox::Mail> {
    let name = instance::load(&st.db).await?.name;
    st.templates
        .render_mail(kind, lang, &name, ctx)
        .map_err(|e| CoreError::Internal(format!("mail template {kind}: {e:#}")))
}

/// Mails a password reset link; says nothing about whether the account exists.
pub async fn send_reset_link(st: &AppState, email: &str, address: &str) -> CoreResult<()> {
    // Limits mail floods; counted whether or not the account exists.
    identity::rate_limit(&st.db, &format!("reset-address:{address}"), 20, 60).await?;
    identity::rate_limit(&st.db, &format!("reset:{}", email.trim().to_lowercase()), 3, 60).await?;
    if let Some(a) = identity::find_account_by_email(&st.db, email).await? {
        if !a.disabled {
            let lang = outbox::language_for(&st.db, a.lang.as_deref()).await?;
            let mut tx = st.db.begin().await?;
            let token = identity::issue_one_time_token(&mut tx, a.id, TokenPurpose::ResetPassword).await?;
            let link = format!("{}/password/reset?token={token}", st.base_url());
            let mail = compose(st, "password_reset", &lang, serde_json::json!({"link": link})).await?;
            outbox::enqueue(&mut tx, None, "password_reset", &a.email, &mail).await?;
            tx.commit().await?;
        }
    }
    Ok(())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetRequest {
    pub token: String,
    pub password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/password/reset", tag = "auth", request_body = ResetRequest,
    responses((status = 204), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn reset_password(
    State(st): State<AppState>,
    addr: Parts_,
    ApiJson(req): ApiJson<ResetRequest>,
) -> CoreResult<StatusCode> {
    do_reset(&st, &req.token, req.password, &addr.0).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn do_reset(st: &AppState, token: &str, password: String, address: &str) -> CoreResult<()> {
    identity::check_password_policy(&password).map_err(|e| CoreError::Validation(vec![e]))?;
    let mut tx = st.db.begin().await?;
    let account = identity::consume_one_time_token(&mut tx, token, TokenPurpose::ResetPassword).await?;
    let who = crate::audit::Who { account: Some(account), label: "password-reset".into(), address: address.into() };
    identity::set_password(&mut tx, &who, &st.cfg, account, password).await?;
    // A reset proves control of the mailbox; old sessions may belong to an intruder.
    identity::end_all_sessions(&mut tx, &who, account).await?;
    sqlx::query("UPDATE accounts SET email_verified_at = COALESCE(email_verified_at, $1) WHERE id = $2")
        .bind(crate::ids::Timestamp::now().0)
        .bind(account.to_string())
        .execute(tx.conn())
        .await?;
    tx.commit().await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    pub token: String,
}

#[utoipa::path(post, path = "/api/v1/auth/email/verify", tag = "auth", request_body = VerifyRequest,
    responses((status = 204), (status = 400, body = Problem)))]
pub async fn verify_email(
    State(st): State<AppState>,
    addr: Parts_,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> CoreResult<StatusCode> {
    let mut tx = st.db.begin().await?;
    let account = identity::consume_one_time_token(&mut tx, &req.token, TokenPurpose::VerifyEmail).await?;
    identity::mark_email_verified(
        &mut tx,
        &crate::audit::Who { account: Some(account), label: "email-verification".into(), address: addr.0 },
        account,
    )
    .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/me/email/verification", tag = "me", security(("bearer" = [])),
    responses((status = 202), (status = 409, body = Problem)))]
pub async fn send_verification(State(st): State<AppState>, actor: Actor) -> CoreResult<StatusCode> {
    send_verification_mail(&st, &actor.account).await?;
    Ok(StatusCode::ACCEPTED)
}

pub async fn send_verification_mail(st: &AppState, a: &identity::Account) -> CoreResult<()> {
    if a.email_verified {
        return Err(CoreError::Conflict { field: None, message: "This email address is already verified.".into() });
    }
    let mut tx = st.db.begin().await?;
    let token = identity::issue_one_time_token(&mut tx, a.id, TokenPurpose::VerifyEmail).await?;
    let link = format!("{}/email/verify?token={token}", st.base_url());
    let lang = outbox::language_for(&st.db, a.lang.as_deref()).await?;
    let mail = compose(st, "verify_email", &lang, serde_json::json!({"link": link})).await?;
    outbox::enqueue(&mut tx, None, "verify_email", &a.email, &mail).await?;
    tx.commit().await
}

// ---------- me ----------

#[derive(Serialize, ToSchema)]
pub struct Me {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub email_verified: bool,
    pub is_instance_admin: bool,
    pub totp_enabled: bool,
    pub lang: Option<String>,
    pub orgs: Vec<Org>,
}

#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("bearer" = [])), responses((status = 200, body = Me), (status = 401, body = Problem)))]
pub async fn me(State(st): State<AppState>, actor: Actor) -> CoreResult<Json<Me>> {
    let a = &actor.account;
    let orgs = orgs::list_orgs(&st.db, a.id, false, None, 200).await?;
    Ok(Json(Me {
        id: a.id.to_string(),
        email: a.email.clone(),
        display_name: a.display_name.clone(),
        email_verified: a.email_verified,
        is_instance_admin: a.is_instance_admin,
        totp_enabled: a.totp_enabled,
        lang: a.lang.clone(),
        orgs,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub info: ApiKeyInfo,
    /// Shown once: store it now.
    pub secret: String,
}

#[utoipa::path(get, path = "/api/v1/me/api-keys", tag = "me", security(("bearer" = [])), responses((status = 200, body = [ApiKeyInfo])))]
pub async fn list_keys(State(st): State<AppState>, actor: Actor) -> CoreResult<Json<Vec<ApiKeyInfo>>> {
    Ok(Json(identity::list_api_keys(&st.db, actor.account.id).await?))
}

#[utoipa::path(post, path = "/api/v1/me/api-keys", tag = "me", security(("bearer" = [])), request_body = NewApiKey,
    responses((status = 201, body = CreatedApiKey), (status = 422, body = Problem)))]
pub async fn create_key(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<NewApiKey>,
) -> CoreResult<Response> {
    let (info, secret) = identity::create_api_key(&st.db, &actor.who(), actor.account.id, &req.name).await?;
    Ok(created(CreatedApiKey { info, secret }))
}

#[utoipa::path(delete, path = "/api/v1/me/api-keys/{id}", tag = "me", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_key(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> CoreResult<StatusCode> {
    identity::revoke_api_key(&st.db, &actor.who(), actor.account.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", security(("bearer" = [])), request_body = PasswordChange,
    responses((status = 204, description = "Changed; every session and token of the account is ended, sign in again"), (status = 422, body = Problem), (status = 429, body = Problem)))]
pub async fn change_password(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<PasswordChange>,
) -> CoreResult<StatusCode> {
    identity::change_password(
        &st.db,
        &st.cfg,
        &actor.who(),
        &actor.account,
        &req.current_password,
        req.new_password,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- second factor ----------

#[derive(Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret to type into an authenticator app.
    pub secret: String,
    /// `otpauth://` URI (what a QR code encodes).
    pub uri: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpCode {
    pub code: String,
}

#[utoipa::path(post, path = "/api/v1/me/totp", tag = "me", security(("bearer" = [])),
    responses((status = 200, body = TotpEnrolment), (status = 409, body = Problem)))]
pub async fn totp_begin(State(st): State<AppState>, actor: Actor) -> CoreResult<Json<TotpEnrolment>> {
    if actor.account.totp_enabled {
        return Err(CoreError::Conflict { field: None, message: "A second factor is already enrolled.".into() });
    }
    let secret = identity::totp_begin(&st.db, actor.account.id).await?;
    let name = instance::load(&st.db).await?.name;
    Ok(Json(TotpEnrolment { uri: crate::crypto::totp_uri(&name, &actor.account.email, &secret), secret }))
}

#[utoipa::path(post, path = "/api/v1/me/totp/confirm", tag = "me", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 204), (status = 422, body = Problem)))]
pub async fn totp_confirm(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<TotpCode>,
) -> CoreResult<StatusCode> {
    let account = identity::get_account(&st.db, actor.account.id).await?;
    identity::totp_confirm(&st.db, &actor.who(), &account, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/me/totp", tag = "me", security(("bearer" = [])), request_body = TotpCode,
    responses((status = 204), (status = 401, body = Problem),
        (status = 429, body = Problem, description = "Too many wrong codes for the account (counted with failed sign-ins)")))]
pub async fn totp_disable(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<TotpCode>,
) -> CoreResult<StatusCode> {
    identity::totp_disable(&st.db, &st.cfg, &actor.who(), &actor.account, &req.code).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- organisations ----------

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Page size, 1 to 200 (default 50).
    pub limit: Option<i64>,
    /// From `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrgPage {
    pub items: Vec<Org>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs", tag = "orgs", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = OrgPage)))]
pub async fn list_orgs(
    State(st): State<AppState>,
    actor: Actor,
    ApiQuery(p): ApiQuery<PageParams>,
) -> CoreResult<Json<OrgPage>> {
    let limit = p.limit.unwrap_or(50).clamp(1, 200);
    let mut items =
        orgs::list_orgs(&st.db, actor.account.id, actor.is_instance_admin(), p.cursor.as_deref(), limit + 1).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|o| o.slug.clone())
    } else {
        None
    };
    Ok(Json(OrgPage { items, next_cursor }))
}

#[utoipa::path(post, path = "/api/v1/orgs", tag = "orgs", security(("bearer" = [])), request_body = NewOrg,
    responses((status = 201, body = Org), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_org(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<NewOrg>,
) -> CoreResult<Response> {
    let admin = actor.require_instance_admin()?;
    let mut tx = st.db.begin().await?;
    let org = orgs::create_org(&mut tx, &actor.who(), &admin, &st.modules, req, Some(actor.account.id)).await?;
    tx.commit().await?;
    Ok(created(org))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path, description = "Organisation id or URL name")),
    responses((status = 200, body = Org), (status = 404, body = Problem)))]
pub async fn get_org(ctx: OrgCtx) -> CoreResult<Json<Org>> {
    ctx.can_read(CORE)?;
    Ok(Json(ctx.org))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)), request_body = OrgPatch,
    responses((status = 200, body = Org), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_org(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(req): ApiJson<OrgPatch>,
) -> CoreResult<Json<Org>> {
    let cap = ctx.can_admin(CORE)?;
    Ok(Json(orgs::update_org(&st.db, &ctx.who(), &cap, req).await?))
}

// ---------- people ----------

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeopleParams {
    /// Search in names, email and phone.
    pub q: Option<String>,
    /// Custom field filters, `;`-separated: `size=M;joined>=2024-09-01` (see docs/API.md).
    pub cf: Option<String>,
    pub sort: Option<PeopleSort>,
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct PeoplePage {
    pub items: Vec<Person>,
    pub next_cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/people", tag = "people", security(("bearer" = [])), params(("org" = String, Path), PeopleParams),
    responses((status = 200, body = PeoplePage), (status = 404, body = Problem)))]
pub async fn list_people(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(p): ApiQuery<PeopleParams>,
) -> CoreResult<Json<PeoplePage>> {
    let cap = ctx.can_read(CORE)?;
    let page = people::list(
        &st.db,
        &cap,
        &ListQuery {
            q: p.q,
            filters: crate::custom_fields::split_filters(p.cf.as_deref()),
            sort: p.sort.unwrap_or_default(),
            cursor: p.cursor,
            limit: p.limit.unwrap_or(50),
        },
    )
    .await?;
    Ok(Json(PeoplePage { items: page.items, next_cursor: page.next_cursor }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportParams {
    /// The same search as the list.
    pub q: Option<String>,
    /// The same custom field filters as the list.
    pub cf: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/people/export.csv", tag = "people", security(("bearer" = [])), params(("org" = String, Path), ExportParams),
    responses((status = 200, description = "CSV, UTF-8", content_type = "text/csv"), (status = 404, body = Problem)))]
pub async fn export_people(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> CoreResult<Response> {
    people_file(&st, &ctx, p.q, p.cf, people::ExportFormat::Csv).await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/people/export.ods", tag = "people", security(("bearer" = [])), params(("org" = String, Path), ExportParams),
    responses((status = 200, description = "OpenDocument spreadsheet", content_type = "application/vnd.oasis.opendocument.spreadsheet"), (status = 404, body = Problem)))]
pub async fn export_people_ods(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> CoreResult<Response> {
    people_file(&st, &ctx, p.q, p.cf, people::ExportFormat::Ods).await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/people/export.pdf", tag = "people", security(("bearer" = [])), params(("org" = String, Path), ExportParams),
    responses((status = 200, description = "Printable PDF list", content_type = "application/pdf"), (status = 404, body = Problem)))]
pub async fn export_people_pdf(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(p): ApiQuery<ExportParams>,
) -> CoreResult<Response> {
    people_file(&st, &ctx, p.q, p.cf, people::ExportFormat::Pdf).await
}

/// The people export of one organisation as a download (pages and API).
pub async fn people_file(
    st: &AppState,
    ctx: &OrgCtx,
    q: Option<String>,
    cf: Option<String>,
    format: people::ExportFormat,
) -> CoreResult<Response> {
    let cap = ctx.can_read(CORE)?;
    let filters = crate::custom_fields::split_filters(cf.as_deref());
    let lang = outbox::language_for(&st.db, ctx.actor.account.lang.as_deref()).await?;
    let tr = |k: &str| st.templates.tr(&lang, k);
    let body = people::export(&st.db, &ctx.who(), &cap, q, filters, format, &tr).await?;
    Ok(download(&format!("people-{}", ctx.org.slug), format, body))
}

/// An exported file, as a download named `<stem>.<extension>`.
pub fn download(stem: &str, format: people::ExportFormat, body: Vec<u8>) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, format.content_type().to_string()),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{stem}.{}\"", format.extension()),
            ),
        ],
        body,
    )
        .into_response()
}

fn table_format(ods: bool) -> people::ExportFormat {
    if ods {
        people::ExportFormat::Ods
    } else {
        people::ExportFormat::Csv
    }
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/people", tag = "people", security(("bearer" = [])), params(("org" = String, Path)), request_body = PersonInput,
    responses((status = 201, body = Person), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_person(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(req): ApiJson<PersonInput>,
) -> CoreResult<Response> {
    let cap = ctx.can_write(CORE)?;
    Ok(created(people::create(&st.db, &ctx.who(), &cap, req).await?))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/people/{id}", tag = "people", security(("bearer" = [])), params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Person), (status = 404, body = Problem)))]
pub async fn get_person(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> CoreResult<Json<Person>> {
    let cap = ctx.can_read(CORE)?;
    Ok(Json(people::get(&st.db, &cap, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/people/{id}", tag = "people", security(("bearer" = [])), params(("org" = String, Path), ("id" = String, Path)), request_body = PersonInput,
    responses((status = 200, body = Person), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_person(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PersonInput>,
) -> CoreResult<Json<Person>> {
    let cap = ctx.can_write(CORE)?;
    Ok(Json(people::update(&st.db, &ctx.who(), &cap, &id, req).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/people/{id}", tag = "people", security(("bearer" = [])), params(("org" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_person(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> CoreResult<StatusCode> {
    let cap = ctx.can_write(CORE)?;
    people::delete(&st.db, &ctx.who(), &cap, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/people/{id}/account", tag = "people", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)), request_body = AccountLink,
    responses(
        (status = 200, body = PersonWithAccount, description = "The person, linked to the account (sending the account already linked changes nothing). Audited `person.link_account` with the previous account, and written on the person's timeline"),
        (status = 403, body = Problem, description = "Administration of `core` is needed: the account holder will see the person's member space"),
        (status = 404, body = Problem),
        (status = 409, body = Problem, description = "The account is already linked to another person of the organisation (named in `detail`; the field is `email` or `account_id`), or the person was erased"),
        (status = 422, body = Problem, description = "Neither or both of `email` and `account_id`, or no member of the organisation has that account")))]
pub async fn link_person_account(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(req): ApiJson<AccountLink>,
) -> CoreResult<Json<PersonWithAccount>> {
    let cap = ctx.can_admin(CORE)?;
    Ok(Json(people::link_account(&st.db, &ctx.who(), &cap, &id, &req).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/people/{id}/account", tag = "people", security(("bearer" = [])),
    params(("org" = String, Path), ("id" = String, Path)),
    responses(
        (status = 204, description = "No account is linked to the person any more (also when none was). Audited `person.unlink_account`; the automatic link by e-mail will not link them back"),
        (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn unlink_person_account(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> CoreResult<StatusCode> {
    let cap = ctx.can_admin(CORE)?;
    people::unlink_account(&st.db, &ctx.who(), &cap, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- members and roles ----------

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)), responses((status = 200, body = [Member]), (status = 404, body = Problem)))]
pub async fn list_members(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Json<Vec<Member>>> {
    Ok(Json(orgs::list_members(&st.db, &ctx.can_read(CORE)?).await?))
}

/// The members of the organisation with their roles, as a file; audited.
async fn members_file(st: &AppState, ctx: &OrgCtx, ods: bool) -> CoreResult<Response> {
    let cap = ctx.can_read(CORE)?;
    let members = orgs::list_members(&st.db, &cap).await?;
    let rows: Vec<Vec<String>> =
        members.into_iter().map(|m| vec![m.email, m.display_name, m.role, m.account_id]).collect();
    let mut tx = st.db.begin().await?;
    audit::record(
        &mut tx,
        &ctx.who(),
        audit::Change {
            org: Some(cap.org()),
            action: "member.export",
            entity_type: "org",
            entity_id: cap.org().to_string(),
            before: None,
            after: Some(serde_json::json!({"rows": rows.len(), "format": if ods { "ods" } else { "csv" }})),
        },
    )
    .await?;
    tx.commit().await?;
    let header = ["email", "display_name", "role", "account_id"];
    let body = people::table_file(ods, "Members", &header, &rows);
    Ok(download(&format!("members-{}", ctx.org.slug), table_format(ods), body))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/export.csv", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)),
    responses((status = 200, description = "CSV, UTF-8", content_type = "text/csv"), (status = 404, body = Problem)))]
pub async fn export_members(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Response> {
    members_file(&st, &ctx, false).await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members/export.ods", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)),
    responses((status = 200, description = "OpenDocument spreadsheet", content_type = "application/vnd.oasis.opendocument.spreadsheet"), (status = 404, body = Problem)))]
pub async fn export_members_ods(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Response> {
    members_file(&st, &ctx, true).await
}

/// The same files for pages (session cookie).
pub async fn members_export_page(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, file)): Path<(String, String)>,
) -> CoreResult<Response> {
    match file.as_str() {
        "export.csv" => members_file(&st, &ctx, false).await,
        "export.ods" => members_file(&st, &ctx, true).await,
        _ => Err(CoreError::NotFound),
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    pub email: String,
    /// Role key: owner, admin, manager, staff, member, client or a custom role.
    pub role: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/members", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)), request_body = MemberInput,
    responses((status = 201, body = Member), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn add_member(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(req): ApiJson<MemberInput>,
) -> CoreResult<Response> {
    let cap = ctx.can_admin(CORE)?;
    identity::normalize_email(&req.email).map_err(|e| CoreError::Validation(vec![e]))?;
    Ok(created(orgs::set_member(&st, &ctx.who(), &cap, &req.email, &req.role).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/{account}", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path), ("account" = String, Path)),
    responses((status = 204), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn remove_member(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, account)): Path<(String, String)>,
) -> CoreResult<StatusCode> {
    let cap = ctx.can_admin(CORE)?;
    let account = account.parse().map_err(|_| CoreError::NotFound)?;
    orgs::remove_member(&st.db, &ctx.who(), &cap, account).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/roles", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)), responses((status = 200, body = [Role]), (status = 404, body = Problem)))]
pub async fn list_roles(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Json<Vec<Role>>> {
    Ok(Json(orgs::list_roles(&st.db, &ctx.can_read(CORE)?).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/roles", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)), request_body = RoleInput,
    responses((status = 201, body = Role), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn create_role(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(req): ApiJson<RoleInput>,
) -> CoreResult<Response> {
    let cap = ctx.can_admin(CORE)?;
    Ok(created(orgs::save_role(&st.db, &ctx.who(), &cap, &st.modules, None, req).await?))
}

#[utoipa::path(patch, path = "/api/v1/orgs/{org}/roles/{key}", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path), ("key" = String, Path)), request_body = RoleInput,
    responses((status = 200, body = Role), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_role(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, key)): Path<(String, String)>,
    ApiJson(req): ApiJson<RoleInput>,
) -> CoreResult<Json<Role>> {
    let cap = ctx.can_admin(CORE)?;
    Ok(Json(orgs::save_role(&st.db, &ctx.who(), &cap, &st.modules, Some(&key), req).await?))
}

// ---------- groups ----------

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    pub name: String,
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/groups", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)),
    responses((status = 200, body = [Group]), (status = 404, body = Problem)))]
pub async fn list_groups(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Json<Vec<Group>>> {
    let cap = ctx.can_read(CORE)?;
    Ok(Json(groups::list(&st.db, &cap).await?))
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/groups", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path)), request_body = GroupInput,
    responses((status = 201, body = Group), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_group(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(req): ApiJson<GroupInput>,
) -> CoreResult<Response> {
    let cap = ctx.can_admin(CORE)?;
    Ok(created(groups::create(&st.db, &ctx.who(), &cap, &req.name).await?))
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/groups/{group}", tag = "orgs", security(("bearer" = [])), params(("org" = String, Path), ("group" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn delete_group(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, group)): Path<(String, String)>,
) -> CoreResult<StatusCode> {
    let cap = ctx.can_admin(CORE)?;
    groups::delete(&st.db, &ctx.who(), &cap, &group).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/groups/{group}/members/{account}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path), ("group" = String, Path), ("account" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn add_group_member(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, group, account)): Path<(String, String, String)>,
) -> CoreResult<StatusCode> {
    let cap = ctx.can_admin(CORE)?;
    let account = account.parse().map_err(|_| CoreError::NotFound)?;
    groups::set_member(&st.db, &ctx.who(), &cap, &group, account, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(delete, path = "/api/v1/orgs/{org}/groups/{group}/members/{account}", tag = "orgs", security(("bearer" = [])),
    params(("org" = String, Path), ("group" = String, Path), ("account" = String, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn remove_group_member(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, group, account)): Path<(String, String, String)>,
) -> CoreResult<StatusCode> {
    let cap = ctx.can_admin(CORE)?;
    let account = account.parse().map_err(|_| CoreError::NotFound)?;
    groups::set_member(&st.db, &ctx.who(), &cap, &group, account, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- instance ----------

#[derive(Serialize, ToSchema)]
pub struct InstanceSettings {
    pub name: String,
    pub default_lang: String,
    /// IANA zone of instance-wide schedules and of new organisations.
    pub time_zone: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstancePatch {
    pub name: Option<String>,
    /// `fr` or `en`.
    pub default_lang: Option<String>,
    /// An IANA time zone like `Europe/Paris`.
    pub time_zone: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/admin/instance", tag = "admin", security(("bearer" = [])), responses((status = 200, body = InstanceSettings), (status = 403, body = Problem)))]
pub async fn get_instance(State(st): State<AppState>, actor: Actor) -> CoreResult<Json<InstanceSettings>> {
    actor.require_instance_admin()?;
    let i = instance::load(&st.db).await?;
    Ok(Json(InstanceSettings { name: i.name, default_lang: i.default_lang, time_zone: i.time_zone }))
}

#[utoipa::path(patch, path = "/api/v1/admin/instance", tag = "admin", security(("bearer" = [])), request_body = InstancePatch,
    responses((status = 200, body = InstanceSettings), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_instance(
    State(st): State<AppState>,
    actor: Actor,
    ApiJson(req): ApiJson<InstancePatch>,
) -> CoreResult<Json<InstanceSettings>> {
    let admin = actor.require_instance_admin()?;
    let i = instance::update(
        &st.db,
        &actor.who(),
        &admin,
        req.name.as_deref(),
        req.default_lang.as_deref(),
        req.time_zone.as_deref(),
    )
    .await?;
    Ok(Json(InstanceSettings { name: i.name, default_lang: i.default_lang, time_zone: i.time_zone }))
}

// ---------- modules ----------

#[derive(Serialize, ToSchema)]
pub struct ModuleState {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub always_on: bool,
    pub depends_on: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModuleToggle {
    pub enabled: bool,
}

pub async fn module_states(st: &AppState, org: Option<crate::ids::OrgId>, lang: &str) -> CoreResult<Vec<ModuleState>> {
    let mut out = Vec::new();
    for m in st.modules.all() {
        out.push(ModuleState {
            id: m.id().into(),
            name: st.templates.tr(lang, m.name_key()),
            enabled: instance::module_enabled(&st.db, &st.modules, m.id(), org).await?,
            always_on: m.always_on(),
            depends_on: m.depends_on().iter().map(|s| s.to_string()).collect(),
        });
    }
    Ok(out)
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/modules", tag = "modules", security(("bearer" = [])), params(("org" = String, Path)), responses((status = 200, body = [ModuleState]), (status = 404, body = Problem)))]
pub async fn org_modules(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Json<Vec<ModuleState>>> {
    ctx.can_read(CORE)?;
    Ok(Json(module_states(&st, Some(ctx.org.id), "en").await?))
}

#[utoipa::path(put, path = "/api/v1/orgs/{org}/modules/{module}", tag = "modules", security(("bearer" = [])), params(("org" = String, Path), ("module" = String, Path)), request_body = ModuleToggle,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn set_org_module(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, module)): Path<(String, String)>,
    ApiJson(req): ApiJson<ModuleToggle>,
) -> CoreResult<StatusCode> {
    let cap = ctx.can_admin(CORE)?;
    instance::set_module_enabled(&st.db, &ctx.who(), &st.modules, &module, ModuleScope::Org(&cap), req.enabled).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/admin/modules", tag = "admin", security(("bearer" = [])), responses((status = 200, body = [ModuleState]), (status = 403, body = Problem)))]
pub async fn instance_modules(State(st): State<AppState>, actor: Actor) -> CoreResult<Json<Vec<ModuleState>>> {
    actor.require_instance_admin()?;
    Ok(Json(module_states(&st, None, "en").await?))
}

#[utoipa::path(put, path = "/api/v1/admin/modules/{module}", tag = "admin", security(("bearer" = [])), params(("module" = String, Path)), request_body = ModuleToggle,
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn set_instance_module(
    State(st): State<AppState>,
    actor: Actor,
    Path(module): Path<String>,
    ApiJson(req): ApiJson<ModuleToggle>,
) -> CoreResult<StatusCode> {
    let admin = actor.require_instance_admin()?;
    instance::set_module_enabled(
        &st.db,
        &actor.who(),
        &st.modules,
        &module,
        ModuleScope::Instance(&admin),
        req.enabled,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- audit and outbox ----------

#[derive(Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// Email of the actor.
    pub actor: Option<String>,
    /// e.g. `person.update`.
    pub action: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    pub next_cursor: Option<String>,
}

pub async fn audit_page(st: &AppState, org: Option<crate::ids::OrgId>, p: AuditParams) -> CoreResult<AuditPage> {
    let limit = p.limit.unwrap_or(50).clamp(1, 500);
    let before_seq = match p.cursor.as_deref() {
        Some(c) => Some(c.parse::<i64>().map_err(|_| CoreError::validation("cursor", "Invalid cursor."))?),
        None => None,
    };
    let f = AuditFilter {
        org,
        actor: p.actor,
        action: p.action,
        entity_type: p.entity_type,
        entity_id: p.entity_id,
        before_seq,
        limit: limit + 1,
    };
    let mut items = audit::list(&st.db, &f).await?;
    let next_cursor = if items.len() as i64 > limit {
        items.truncate(limit as usize);
        items.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(AuditPage { items, next_cursor })
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit", tag = "audit", security(("bearer" = [])), params(("org" = String, Path), AuditParams),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn org_audit(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> CoreResult<Json<AuditPage>> {
    ctx.can_admin(CORE)?;
    Ok(Json(audit_page(&st, Some(ctx.org.id), p).await?))
}

/// The organisation's audit log, with the list's filters, as a file (at
/// most 100,000 entries, newest first); the export is itself audited.
pub async fn audit_file(st: &AppState, ctx: &OrgCtx, mut p: AuditParams, ods: bool) -> CoreResult<Response> {
    let cap = ctx.can_admin(CORE)?;
    let mut rows: Vec<Vec<String>> = Vec::new();
    p.limit = Some(500);
    p.cursor = None;
    let filters = serde_json::json!({"actor": p.actor, "action": p.action, "entity_type": p.entity_type, "entity_id": p.entity_id});
    loop {
        let page = audit_page(st, Some(cap.org()), p.clone()).await?;
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|v| v.to_string()).unwrap_or_default();
        for e in page.items {
            rows.push(vec![
                e.seq.to_string(),
                e.at,
                e.actor_label,
                e.action,
                e.entity_type,
                e.entity_id,
                e.address,
                json(&e.before),
                json(&e.after),
            ]);
        }
        match page.next_cursor {
            Some(c) if rows.len() < 100_000 => p.cursor = Some(c),
            _ => break,
        }
    }
    let mut tx = st.db.begin().await?;
    audit::record(
        &mut tx,
        &ctx.who(),
        audit::Change {
            org: Some(cap.org()),
            action: "audit.export",
            entity_type: "org",
            entity_id: cap.org().to_string(),
            before: None,
            after: Some(
                serde_json::json!({"rows": rows.len(), "filters": filters, "format": if ods { "ods" } else { "csv" }}),
            ),
        },
    )
    .await?;
    tx.commit().await?;
    let header = ["seq", "at", "actor", "action", "entity_type", "entity_id", "address", "before", "after"];
    let body = people::table_file(ods, "Audit", &header, &rows);
    Ok(download(&format!("audit-{}", ctx.org.slug), table_format(ods), body))
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit/export.csv", tag = "audit", security(("bearer" = [])), params(("org" = String, Path), AuditParams),
    responses((status = 200, description = "CSV, UTF-8", content_type = "text/csv"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn export_org_audit(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> CoreResult<Response> {
    audit_file(&st, &ctx, p, false).await
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/audit/export.ods", tag = "audit", security(("bearer" = [])), params(("org" = String, Path), AuditParams),
    responses((status = 200, description = "OpenDocument spreadsheet", content_type = "application/vnd.oasis.opendocument.spreadsheet"), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn export_org_audit_ods(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> CoreResult<Response> {
    audit_file(&st, &ctx, p, true).await
}

#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin", security(("bearer" = [])), params(AuditParams),
    responses((status = 200, body = AuditPage), (status = 403, body = Problem)))]
pub async fn instance_audit(
    State(st): State<AppState>,
    actor: Actor,
    ApiQuery(p): ApiQuery<AuditParams>,
) -> CoreResult<Json<AuditPage>> {
    actor.require_instance_admin()?;
    Ok(Json(audit_page(&st, None, p).await?))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutboxParams {
    /// Only messages to this address.
    pub to: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/outbox", tag = "admin", security(("bearer" = [])), params(OutboxParams),
    responses((status = 200, body = [OutboxMessage]), (status = 403, body = Problem)))]
pub async fn list_outbox(
    State(st): State<AppState>,
    actor: Actor,
    ApiQuery(p): ApiQuery<OutboxParams>,
) -> CoreResult<Json<Vec<OutboxMessage>>> {
    actor.require_instance_admin()?;
    Ok(Json(outbox::list(&st.db, p.to.as_deref(), p.limit.unwrap_or(50)).await?))
}

// ---------- health ----------

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub version: String,
    pub database_backend: String,
    pub database_ok: bool,
    pub database_latency_ms: Option<f64>,
    /// Jobs by status (shared by all replicas).
    pub jobs: std::collections::BTreeMap<String, i64>,
    /// Mail by status (shared by all replicas).
    pub mail: std::collections::BTreeMap<String, i64>,
    /// This process.
    pub uptime_secs: u64,
    pub memory_rss_kib: Option<u64>,
    pub data_free_kib: Option<u64>,
    pub data_total_kib: Option<u64>,
    /// Processor time used by this process since it started, in seconds.
    pub process_cpu_secs: Option<f64>,
    /// The machine's load average over 1, 5 and 15 minutes, and its cores.
    pub load_average: Vec<f64>,
    pub cpu_cores: usize,
    pub routes: Vec<crate::web::metrics::RouteStats>,
    /// Current and recent alerts (shared by all replicas).
    pub alerts: Vec<crate::alerts::Alert>,
}

fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of this process, from /proc (clock ticks of 1/100 s on Linux).
fn process_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

fn load_average() -> Vec<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_default()
}

pub async fn health_report(st: &AppState) -> CoreResult<Health> {
    let ping = st.db.ping().await;
    let jobs = jobs::counts(&st.db).await.unwrap_or_default().into_iter().collect();
    let mail = match sqlx::query("SELECT status, COUNT(*) FROM mail_outbox GROUP BY status")
        .fetch_all(st.db.pool())
        .await
    {
        Ok(rows) => {
            use sqlx::Row;
            rows.iter().filter_map(|r| Some((r.try_get::<String, _>(0).ok()?, r.try_get::<i64, _>(1).ok()?))).collect()
        }
        Err(_) => Default::default(),
    };
    let mut routes = st.metrics.routes();
    routes.truncate(15);
    let disk = crate::alerts::disk_kib(&st.cfg.data);
    Ok(Health {
        version: env!("CARGO_PKG_VERSION").into(),
        database_backend: st.db.backend().name().into(),
        database_ok: ping.is_ok(),
        database_latency_ms: ping.ok().map(|d| d.as_secs_f64() * 1000.0),
        jobs,
        mail,
        uptime_secs: st.metrics.uptime_secs(),
        memory_rss_kib: proc_status_kib("VmRSS:"),
        data_free_kib: disk.map(|d| d.0),
        data_total_kib: disk.map(|d| d.1),
        process_cpu_secs: process_cpu_secs(),
        load_average: load_average(),
        cpu_cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        routes,
        alerts: crate::alerts::recent(st, 20).await.unwrap_or_default(),
    })
}

#[utoipa::path(get, path = "/api/v1/admin/health", tag = "admin", security(("bearer" = [])),
    responses((status = 200, body = Health), (status = 403, body = Problem)))]
pub async fn admin_health(State(st): State<AppState>, actor: Actor) -> CoreResult<Json<Health>> {
    actor.require_instance_admin()?;
    Ok(Json(health_report(&st).await?))
}

// ---------- background jobs ----------

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct JobParams {
    /// queued, running, done, dead or cancelled.
    pub status: Option<String>,
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/admin/jobs", tag = "admin", security(("bearer" = [])), params(JobParams),
    responses((status = 200, body = [JobInfo]), (status = 403, body = Problem)))]
pub async fn list_jobs(
    State(st): State<AppState>,
    actor: Actor,
    ApiQuery(p): ApiQuery<JobParams>,
) -> CoreResult<Json<Vec<JobInfo>>> {
    actor.require_instance_admin()?;
    Ok(Json(jobs::list(&st.db, p.status.as_deref(), p.limit.unwrap_or(50)).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/jobs/{id}/retry", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn retry_job(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> CoreResult<StatusCode> {
    let admin = actor.require_instance_admin()?;
    jobs::retry(&st.db, &actor.who(), &admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/admin/jobs/{id}/cancel", tag = "admin", security(("bearer" = [])), params(("id" = String, Path)),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn cancel_job(State(st): State<AppState>, actor: Actor, Path(id): Path<String>) -> CoreResult<StatusCode> {
    let admin = actor.require_instance_admin()?;
    jobs::cancel(&st.db, &actor.who(), &admin, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------- document ----------

#[derive(OpenApi)]
#[openapi(
    info(title = "Shrooms API", version = "1", description = "The JSON API of Shrooms. Errors are RFC 9457 problem+json; lists are cursor-paginated. See docs/API.md."),
    paths(token, refresh, logout_everywhere, forgot_password, reset_password, verify_email, send_verification, me, change_password, list_keys, create_key, revoke_key, totp_begin, totp_confirm, totp_disable,
        list_orgs, create_org, get_org, patch_org, list_people, export_people, export_people_ods, export_people_pdf, create_person, get_person, patch_person, delete_person, link_person_account, unlink_person_account,
        list_members, export_members, export_members_ods, add_member, remove_member, list_groups, create_group, delete_group, add_group_member, remove_group_member, get_instance, patch_instance, list_roles, create_role, patch_role, org_modules, set_org_module, instance_modules, set_instance_module,
        org_audit, export_org_audit, export_org_audit_ods, instance_audit, list_outbox, list_jobs, retry_job, cancel_job, admin_health),
    components(schemas(Problem, FieldError, PeopleSort)),
    modifiers(&BearerAuth),
)]
pub struct CoreApi;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT or API key").build(),
            ),
        );
    }
}

/// The whole API document: the core's and every module's.
pub fn openapi_document(modules: &crate::module::Modules) -> utoipa::openapi::OpenApi {
    let mut parts = openapi_parts(modules).into_iter();
    let mut doc = parts.next().expect("the core's document");
    for more in parts {
        doc.merge(more);
    }
    declare_error_responses(&mut doc);
    doc
}

/// The core's and each module's documents, before they are merged.
fn openapi_parts(modules: &crate::module::Modules) -> Vec<utoipa::openapi::OpenApi> {
    let mut parts = vec![
        CoreApi::openapi(),
        super::social::SocialApi::openapi(),
        super::fields::FieldsApi::openapi(),
        super::dashboard::DashboardApi::openapi(),
        super::files::FilesApi::openapi(),
        super::schedules::SchedulesApi::openapi(),
        super::imports::ImportApi::openapi(),
        super::privacy::PrivacyApi::openapi(),
    ];
    parts.extend(modules.all().iter().filter_map(|m| m.openapi()));
    parts
}

/// Schema names that two parts of the document define differently. Merging
/// keeps the first definition, so the other part's answers would be checked
/// against a schema that is not theirs: give one of them another name
/// (`#[schema(as = …)]`). The committed-document test asserts there is none.
pub fn schema_collisions(modules: &crate::module::Modules) -> Vec<String> {
    let mut seen: std::collections::BTreeMap<String, serde_json::Value> = Default::default();
    let mut out = Vec::new();
    for part in openapi_parts(modules) {
        let Some(c) = part.components else { continue };
        for (name, schema) in c.schemas {
            let v = serde_json::to_value(&schema).unwrap_or_default();
            match seen.get(&name) {
                Some(prev) if *prev != v => out.push(name),
                Some(_) => {}
                None => {
                    seen.insert(name, v);
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// The error answers every handler can give without saying so in its own
/// annotation: they come from the shared extractors and middleware (token
/// check, organisation lookup, JSON body and query parsing, the database
/// being away). Declared once here, for the core's operations and every
/// module's, as `application/problem+json` `Problem` documents; a response an
/// annotation already declares keeps its description.
fn declare_error_responses(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::path::{Operation, ParameterIn};
    use utoipa::openapi::{header::Header, ContentBuilder, Ref, RefOr, ResponseBuilder};
    const PROBLEM_JSON: &str = "application/problem+json";
    // (status, component name, description, when it applies)
    #[derive(Clone, Copy)]
    enum When {
        Always,
        Authenticated,
        PathParameters,
        Body,
        Write,
    }
    const COMMON: &[(&str, &str, &str, When)] = &[
        ("400", "BadRequest", "The body is not valid JSON, or the request cannot be carried out as asked.", When::Body),
        ("401", "Unauthorized", "No token, or an invalid, expired or revoked token or API key.", When::Authenticated),
        (
            "403",
            "Forbidden",
            "The caller's role lacks the access needed, or a second factor is required.",
            When::Authenticated,
        ),
        (
            "404",
            "NotFound",
            "The organisation or the record does not exist, or the caller may not know it exists.",
            When::PathParameters,
        ),
        (
            "409",
            "Conflict",
            "A unique value is taken, or the record is not in a state that allows this change.",
            When::Write,
        ),
        ("413", "PayloadTooLarge", "The body is larger than the server accepts.", When::Body),
        ("415", "UnsupportedMediaType", "The body was sent without the expected Content-Type.", When::Body),
        (
            "422",
            "Unprocessable",
            "A field, a query parameter or a cursor is invalid; `errors` names them.",
            When::Always,
        ),
        (
            "503",
            "Unavailable",
            "The database cannot be reached right now; nothing was changed. Retry after `Retry-After` seconds.",
            When::Always,
        ),
    ];
    let problem = || ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build();
    let components = doc.components.get_or_insert_with(Default::default);
    for (status, name, description, _) in COMMON {
        let mut r = ResponseBuilder::new().description(*description).content(PROBLEM_JSON, problem());
        if matches!(*status, "503") {
            r = r.header(
                "Retry-After",
                Header::new(utoipa::openapi::ObjectBuilder::new().schema_type(utoipa::openapi::schema::Type::Integer)),
            );
        }
        components.responses.insert((*name).to_string(), RefOr::T(r.build()));
    }
    let complete = |op: &mut Operation, path_params: bool, write: bool| {
        // Errors an annotation declared with `body = Problem` are problem+json too.
        for r in op.responses.responses.values_mut() {
            if let RefOr::T(r) = r {
                let is_problem = r
                    .content
                    .get("application/json")
                    .is_some_and(|c| matches!(&c.schema, Some(RefOr::Ref(x)) if x.ref_location.ends_with("/Problem")));
                if is_problem {
                    if let Some(c) = r.content.shift_remove("application/json") {
                        r.content.insert(PROBLEM_JSON.to_string(), c);
                    }
                }
            }
        }
        let authenticated = op.security.as_ref().is_some_and(|s| !s.is_empty());
        let path_params =
            path_params || op.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Path));
        let body = op.request_body.is_some();
        for (status, name, _, when) in COMMON {
            let applies = match when {
                When::Always => true,
                When::Authenticated => authenticated,
                When::PathParameters => path_params,
                When::Body => body,
                When::Write => write,
            };
            if applies && !op.responses.responses.contains_key(*status) {
                op.responses.responses.insert((*status).to_string(), RefOr::Ref(Ref::from_response_name(*name)));
            }
        }
    };
    for item in doc.paths.paths.values_mut() {
        let path_params = item.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Path));
        for (op, write) in [
            (&mut item.get, false),
            (&mut item.post, true),
            (&mut item.put, true),
            (&mut item.patch, true),
            (&mut item.delete, true),
        ] {
            if let Some(op) = op {
                complete(op, path_params, write);
            }
        }
    }
}

pub async fn openapi_json(State(st): State<AppState>) -> Response {
    let doc = openapi_document(&st.modules);
    ([(axum::http::header::CONTENT_TYPE, "application/json")], doc.to_pretty_json().unwrap_or_default()).into_response()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi_json))
        .route("/api/v1/auth/token", post(token))
        .route("/api/v1/auth/refresh", post(refresh))
        .route("/api/v1/auth/logout-everywhere", post(logout_everywhere))
        .route("/api/v1/auth/password/forgot", post(forgot_password))
        .route("/api/v1/auth/password/reset", post(reset_password))
        .route("/api/v1/auth/email/verify", post(verify_email))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/email/verification", post(send_verification))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/me/api-keys", get(list_keys).post(create_key))
        .route("/api/v1/me/totp", post(totp_begin).delete(totp_disable))
        .route("/api/v1/me/totp/confirm", post(totp_confirm))
        .route("/api/v1/me/api-keys/{id}", axum::routing::delete(revoke_key))
        .route("/api/v1/orgs", get(list_orgs).post(create_org))
        .route("/api/v1/orgs/{org}", get(get_org).patch(patch_org))
        .route("/api/v1/orgs/{org}/people", get(list_people).post(create_person))
        .route("/api/v1/orgs/{org}/people/export.csv", get(export_people))
        .route("/api/v1/orgs/{org}/people/export.ods", get(export_people_ods))
        .route("/api/v1/orgs/{org}/people/export.pdf", get(export_people_pdf))
        .route("/api/v1/orgs/{org}/people/{id}", get(get_person).patch(patch_person).delete(delete_person))
        .route("/api/v1/orgs/{org}/people/{id}/account", put(link_person_account).delete(unlink_person_account))
        .route("/api/v1/orgs/{org}/members", get(list_members).post(add_member))
        .route("/api/v1/orgs/{org}/members/export.csv", get(export_members))
        .route("/api/v1/orgs/{org}/members/export.ods", get(export_members_ods))
        .route("/o/{org}/settings/members/{file}", get(members_export_page))
        .route("/api/v1/orgs/{org}/members/{account}", axum::routing::delete(remove_member))
        .route("/api/v1/orgs/{org}/groups", get(list_groups).post(create_group))
        .route("/api/v1/orgs/{org}/groups/{group}", axum::routing::delete(delete_group))
        .route("/api/v1/orgs/{org}/groups/{group}/members/{account}", put(add_group_member).delete(remove_group_member))
        .route("/api/v1/admin/instance", get(get_instance).patch(patch_instance))
        .route("/api/v1/orgs/{org}/roles", get(list_roles).post(create_role))
        .route("/api/v1/orgs/{org}/roles/{key}", patch(patch_role))
        .route("/api/v1/orgs/{org}/modules", get(org_modules))
        .route("/api/v1/orgs/{org}/modules/{module}", put(set_org_module))
        .route("/api/v1/orgs/{org}/audit", get(org_audit))
        .route("/api/v1/orgs/{org}/audit/export.csv", get(export_org_audit))
        .route("/api/v1/orgs/{org}/audit/export.ods", get(export_org_audit_ods))
        .route("/api/v1/admin/modules", get(instance_modules))
        .route("/api/v1/admin/modules/{module}", put(set_instance_module))
        .route("/api/v1/admin/audit", get(instance_audit))
        .route("/api/v1/admin/outbox", get(list_outbox))
        .route("/api/v1/admin/jobs", get(list_jobs))
        .route("/api/v1/admin/health", get(admin_health))
        .route("/api/v1/admin/jobs/{id}/retry", post(retry_job))
        .route("/api/v1/admin/jobs/{id}/cancel", post(cancel_job))
}
