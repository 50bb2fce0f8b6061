//! HTML pages of the core: first-run setup, sign-in (password, TOTP), password
//! reset, email verification, account security, instance administration,
//! organisation dashboard, people, settings and audit log. Handlers are thin
//! and call the same services as the JSON API. A handler returns the full
//! page, or only the fragment when htmx asks (`HX-Request`).

use super::api::{self, audit_page, module_states, AuditParams, CORE};
use super::auth::{self, Actor, CsrfToken, MaybeActor, OrgCtx, LANG_COOKIE, SESSION_COOKIE};
use super::templates::{negotiate_lang, Page};
use super::AppState;
use crate::error::{CoreError, CoreResult, FieldError};
use crate::identity::{self, TokenPurpose};
use crate::instance::{self, Setup};
use crate::orgs::{self, NewOrg, OrgPatch};
use crate::people::{self, ListQuery, PeopleSort, PersonInput};
use crate::permissions::Access;
use axum::extract::{Form, FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};

// ---------- errors as pages ----------

/// An error on a page: rendered as an HTML error page by [`render_errors`]
/// (or as problem+json under `/api/`).
pub struct UiError(pub CoreError);

#[derive(Clone)]
struct UiErrorInfo {
    status: StatusCode,
    detail: String,
}

impl From<CoreError> for UiError {
    fn from(e: CoreError) -> Self {
        UiError(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let info = UiErrorInfo { status: self.0.status(), detail: self.0.public_detail() };
        let mut resp = self.0.into_response();
        resp.extensions_mut().insert(info);
        resp
    }
}

pub async fn render_errors(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if auth::is_api_path(req.uri().path()) {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let csrf = req.extensions().get::<CsrfToken>().map(|c| c.0.clone()).unwrap_or_default();
    let resp = next.run(req).await;
    let Some(info) = resp.extensions().get::<UiErrorInfo>().cloned() else {
        return resp;
    };
    let lang = negotiate_lang(
        auth::cookie(&headers, LANG_COOKIE).as_deref(),
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
        "fr",
    );
    let page = Page { lang, csrf, instance_name: "Shrooms".into(), ..Default::default() };
    let ctx = merge(&page, json!({"status": info.status.as_u16(), "detail": info.detail}));
    match st.templates.render("error.html", minijinja::Value::from_serialize(&ctx)) {
        Ok(html) => {
            let mut r = (info.status, Html(html)).into_response();
            for (k, v) in resp.headers() {
                if k == header::RETRY_AFTER || k == header::SET_COOKIE {
                    r.headers_mut().append(k.clone(), v.clone());
                }
            }
            r
        }
        Err(_) => resp,
    }
}

fn merge(page: &Page, extra: Value) -> Value {
    let mut base = serde_json::to_value(page).unwrap_or_else(|_| json!({}));
    if let (Some(b), Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

// ---------- page context ----------

/// What a page handler needs to render: language, CSRF token, the actor if signed in.
pub struct Ui {
    pub st: AppState,
    pub page: Page,
    pub actor: Option<Actor>,
    pub htmx: bool,
}

impl FromRequestParts<AppState> for Ui {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let MaybeActor(actor) = MaybeActor::from_request_parts(parts, st).await?;
        let inst = instance::load(&st.db).await.map_err(|e| UiError(e).into_response())?;
        let choice =
            auth::cookie(&parts.headers, LANG_COOKIE).or_else(|| actor.as_ref().and_then(|a| a.account.lang.clone()));
        let lang = negotiate_lang(
            choice.as_deref(),
            parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
            &inst.default_lang,
        );
        let csrf = parts.extensions.get::<CsrfToken>().map(|c| c.0.clone()).unwrap_or_default();
        let user = actor.as_ref().map(|a| json!({"id": a.account.id, "email": a.account.email, "display_name": a.account.display_name, "is_instance_admin": a.account.is_instance_admin, "totp_enabled": a.account.totp_enabled, "email_verified": a.account.email_verified}));
        let orgs = match &actor {
            Some(a) => orgs::list_orgs(&st.db, a.account.id, a.is_instance_admin(), None, 100)
                .await
                .map_err(|e| UiError(e).into_response())?
                .into_iter()
                .map(|o| json!({"slug": o.slug, "name": o.name}))
                .collect(),
            None => vec![],
        };
        let unread = match &actor {
            Some(a) => {
                crate::notify::unread_count(&st.db, a.account.id).await.map_err(|e| UiError(e).into_response())?
            }
            None => 0,
        };
        let page = Page {
            lang,
            csrf,
            instance_name: inst.name,
            path: parts.uri.path().to_string(),
            user,
            orgs,
            unread,
            ..Default::default()
        };
        // A history restore wants the whole page, not the fragment.
        let htmx =
            parts.headers.contains_key("hx-request") && !parts.headers.contains_key("hx-history-restore-request");
        Ok(Ui { st: st.clone(), page, actor, htmx })
    }
}

impl Ui {
    pub fn t(&self, key: &str) -> String {
        self.st.templates.tr(&self.page.lang, key)
    }

    /// Adds the organisation, its branding and its menu (enabled modules the role can see).
    pub async fn with_org(mut self, ctx: &OrgCtx) -> CoreResult<Self> {
        let o = &ctx.org;
        self.page.org = Some(
            json!({"id": o.id, "slug": o.slug, "name": o.name, "logo_url": o.logo_url, "color_primary": o.color_primary, "color_accent": o.color_accent, "is_admin": ctx.access(CORE) >= Access::Admin}),
        );
        let enabled = instance::enabled_modules(&self.st.db, &self.st.modules, Some(o.id)).await?;
        let mut menu: Vec<(i32, Value)> = Vec::new();
        for m in self.st.modules.all() {
            if !enabled.iter().any(|e| e == m.id()) {
                continue;
            }
            for e in m.menu() {
                if ctx.access(m.id()) >= e.min_access {
                    let href = format!("/o/{}/{}", o.slug, e.path);
                    let active = self.page.path == href || (!e.path.is_empty() && self.page.path.starts_with(&href));
                    menu.push((e.order, json!({"label": self.t(e.label_key), "href": href, "active": active})));
                }
            }
        }
        menu.sort_by_key(|(o, _)| *o);
        self.page.menu = menu.into_iter().map(|(_, v)| v).collect();
        Ok(self)
    }

    /// Renders a template to a string with the page context (widgets, fragments).
    pub fn render_fragment(&self, name: &str, extra: Value) -> Result<String, minijinja::Error> {
        let ctx = merge(&self.page, extra);
        self.st.templates.render(name, minijinja::Value::from_serialize(&ctx))
    }

    pub fn render(&self, name: &str, extra: Value) -> Response {
        self.render_status(StatusCode::OK, name, extra)
    }

    pub fn render_status(&self, status: StatusCode, name: &str, extra: Value) -> Response {
        let ctx = merge(&self.page, extra);
        match self.st.templates.render(name, minijinja::Value::from_serialize(&ctx)) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => UiError(CoreError::Internal(format!("template {name}: {e:#}"))).into_response(),
        }
    }

    /// Re-renders a form with the user's input and the field errors of `err`;
    /// errors that are not about the form become error pages.
    pub fn form_error(&self, name: &str, err: CoreError, mut extra: Value) -> Response {
        match &err {
            CoreError::Validation(_)
            | CoreError::Conflict { .. }
            | CoreError::Unauthorized(_)
            | CoreError::TooManyRequests { .. }
            | CoreError::BadRequest(_) => {
                let fields: serde_json::Map<String, Value> = err
                    .field_errors()
                    .into_iter()
                    .map(|FieldError { field, message }| (field, Value::String(message)))
                    .collect();
                if let Some(o) = extra.as_object_mut() {
                    o.insert("errors".into(), Value::Object(fields));
                    o.insert("error".into(), Value::String(err.public_detail()));
                }
                self.render_status(err.status(), name, extra)
            }
            _ => UiError(err).into_response(),
        }
    }
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn with_cookie(mut resp: Response, cookie: HeaderValue) -> Response {
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    resp
}

fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".into(),
    }
}

fn user_agent(h: &HeaderMap) -> String {
    h.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

// ---------- home, setup ----------

async fn home(ui: Ui) -> Response {
    if !ui.st.setup_done().await {
        return see_other("/setup");
    }
    let Some(actor) = &ui.actor else {
        return see_other("/login");
    };
    let orgs = ui.page.orgs.clone();
    if let Some(last) = &actor.account.last_org_id {
        if let Ok(Some(o)) = orgs::find_org(&ui.st.db, last).await {
            if orgs.iter().any(|x| x["slug"] == o.slug) {
                return see_other(&format!("/o/{}/", o.slug));
            }
        }
    }
    if orgs.len() == 1 {
        return see_other(&format!("/o/{}/", orgs[0]["slug"].as_str().unwrap_or("")));
    }
    ui.render("home.html", json!({}))
}

async fn setup_page(ui: Ui) -> Response {
    if ui.st.setup_done().await {
        return see_other("/login");
    }
    let modules = setup_modules(&ui, &[]);
    ui.render("setup.html", json!({"modules": modules, "form": {"default_lang": ui.page.lang}}))
}

fn setup_modules(ui: &Ui, chosen: &[String]) -> Vec<Value> {
    ui.st
        .modules
        .all()
        .iter()
        .filter(|m| !m.always_on())
        .map(|m| {
            json!({
                "id": m.id(), "name": ui.t(m.name_key()), "description": ui.t(m.description_key()),
                "checked": if chosen.is_empty() { m.enabled_by_default() } else { chosen.iter().any(|c| c == m.id()) },
                "depends_on": m.depends_on(),
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct SetupForm {
    #[serde(default)]
    instance_name: String,
    #[serde(default)]
    default_lang: String,
    #[serde(default)]
    admin_name: String,
    #[serde(default)]
    admin_email: String,
    #[serde(default)]
    admin_password: String,
    #[serde(default)]
    first_org: String,
}

async fn setup_submit(ui: Ui, addr: api::Parts_, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if ui.st.setup_done().await {
        return see_other("/login");
    }
    // Checkbox lists repeat the key: parse pairs by hand.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let f = SetupForm {
        instance_name: get("instance_name"),
        default_lang: get("default_lang"),
        admin_name: get("admin_name"),
        admin_email: get("admin_email"),
        admin_password: get("admin_password"),
        first_org: get("first_org"),
    };
    let chosen: Vec<String> = pairs.iter().filter(|(k, _)| k == "modules").map(|(_, v)| v.clone()).collect();
    let address = addr.0.as_str();
    let result = instance::complete_setup(
        &ui.st.db,
        &ui.st.cfg,
        &ui.st.modules,
        Setup {
            instance_name: f.instance_name.clone(),
            default_lang: f.default_lang.clone(),
            admin_email: f.admin_email.clone(),
            admin_name: f.admin_name.clone(),
            admin_password: f.admin_password,
            first_org: f.first_org.clone(),
            modules: chosen.clone(),
        },
        address,
    )
    .await;
    match result {
        Ok((admin, org)) => {
            let token =
                match identity::create_session(&ui.st.db, &ui.st.cfg, admin.id, false, &user_agent(&headers), address)
                    .await
                {
                    Ok(t) => t,
                    Err(e) => return UiError(e).into_response(),
                };
            let _ = identity::set_last_org(&ui.st.db, admin.id, &org.id.to_string()).await;
            with_cookie(see_other(&format!("/o/{}/", org.slug)), auth::set_cookie(&ui.st, SESSION_COOKIE, &token, None))
        }
        Err(e) => {
            let modules = setup_modules(&ui, &chosen);
            ui.form_error("setup.html", e, json!({"modules": modules, "form": {"instance_name": f.instance_name, "default_lang": f.default_lang, "admin_name": f.admin_name, "admin_email": f.admin_email, "first_org": f.first_org}}))
        }
    }
}

// ---------- sign-in ----------

#[derive(Deserialize, Default)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(ui: Ui, Query(q): Query<NextQuery>) -> Response {
    if !ui.st.setup_done().await {
        return see_other("/setup");
    }
    if ui.actor.is_some() {
        return see_other(&safe_next(q.next.as_deref()));
    }
    ui.render("login.html", json!({"next": safe_next(q.next.as_deref()), "form": {}}))
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

async fn login_submit(ui: Ui, parts_addr: api::Parts_, headers: HeaderMap, Form(f): Form<LoginForm>) -> Response {
    let next = safe_next(f.next.as_deref());
    match identity::password_login(&ui.st.db, &ui.st.cfg, &f.email, &f.password, &parts_addr.0).await {
        Ok(account) => {
            let pending = account.totp_enabled;
            let token = match identity::create_session(
                &ui.st.db,
                &ui.st.cfg,
                account.id,
                pending,
                &user_agent(&headers),
                &parts_addr.0,
            )
            .await
            {
                Ok(t) => t,
                Err(e) => return UiError(e).into_response(),
            };
            let to = if pending { format!("/login/totp?next={}", auth::urlencode(&next)) } else { next };
            with_cookie(see_other(&to), auth::set_cookie(&ui.st, SESSION_COOKIE, &token, None))
        }
        Err(e) => ui.form_error("login.html", e, json!({"next": next, "form": {"email": f.email}})),
    }
}

async fn totp_page(ui: Ui, Query(q): Query<NextQuery>) -> Response {
    ui.render("login_totp.html", json!({"next": safe_next(q.next.as_deref())}))
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
    #[serde(default)]
    next: Option<String>,
}

async fn totp_submit(ui: Ui, addr: api::Parts_, headers: HeaderMap, Form(f): Form<CodeForm>) -> Response {
    let next = safe_next(f.next.as_deref());
    let Some(token) = auth::cookie(&headers, SESSION_COOKIE) else {
        return see_other("/login");
    };
    let session = match identity::find_session(&ui.st.db, &ui.st.cfg, &token).await {
        Ok(Some(s)) if s.second_factor_pending => s,
        Ok(_) => return see_other("/login"),
        Err(e) => return UiError(e).into_response(),
    };
    match identity::check_totp(&ui.st.db, &ui.st.cfg, &session.account, &f.code, &addr.0).await {
        Ok(()) => match identity::complete_second_factor(&ui.st.db, &session.token_hash).await {
            Ok(()) => see_other(&next),
            Err(e) => UiError(e).into_response(),
        },
        Err(e) => ui.form_error("login_totp.html", e, json!({"next": next})),
    }
}

async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = auth::cookie(&headers, SESSION_COOKIE) {
        let _ = identity::end_session(&st.db, &crate::crypto::token_hash(&token)).await;
    }
    with_cookie(see_other("/login"), auth::set_cookie(&st, SESSION_COOKIE, "", Some(0)))
}

#[derive(Deserialize)]
struct LangForm {
    lang: String,
    #[serde(default)]
    next: Option<String>,
}

async fn set_lang(ui: Ui, Form(f): Form<LangForm>) -> Response {
    if !super::templates::LANGS.contains(&f.lang.as_str()) {
        return UiError(CoreError::validation("lang", "Choose fr or en.")).into_response();
    }
    if let Some(a) = &ui.actor {
        if let Err(e) = identity::set_lang(&ui.st.db, a.account.id, &f.lang).await {
            return UiError(e).into_response();
        }
    }
    with_cookie(
        see_other(&safe_next(f.next.as_deref())),
        auth::set_cookie(&ui.st, LANG_COOKIE, &f.lang, Some(365 * 86_400)),
    )
}

// ---------- password reset, email verification ----------

async fn forgot_page(ui: Ui) -> Response {
    ui.render("password_forgot.html", json!({}))
}

#[derive(Deserialize)]
struct EmailForm {
    #[serde(default)]
    email: String,
}

async fn forgot_submit(ui: Ui, addr: api::Parts_, Form(f): Form<EmailForm>) -> Response {
    if let Err(e) = identity::normalize_email(&f.email) {
        return ui.form_error(
            "password_forgot.html",
            CoreError::Validation(vec![e]),
            json!({"form": {"email": f.email}}),
        );
    }
    match api::send_reset_link(&ui.st, &f.email, &addr.0).await {
        Ok(()) => ui.render("password_forgot.html", json!({"sent": true})),
        Err(e) => UiError(e).into_response(),
    }
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

async fn reset_page(ui: Ui, Query(q): Query<TokenQuery>) -> Response {
    ui.render("password_reset.html", json!({"token": q.token}))
}

#[derive(Deserialize)]
struct ResetForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

async fn reset_submit(ui: Ui, addr: api::Parts_, Form(f): Form<ResetForm>) -> Response {
    match api::do_reset(&ui.st, &f.token, f.password, &addr.0).await {
        Ok(()) => ui.render("password_reset.html", json!({"done": true})),
        Err(e) => ui.form_error("password_reset.html", e, json!({"token": f.token})),
    }
}

async fn verify_email_page(ui: Ui, addr: api::Parts_, Query(q): Query<TokenQuery>) -> Response {
    // A GET only shows the confirmation button: mail scanners that follow links consume nothing.
    let _ = addr;
    ui.render("email_verify.html", json!({"token": q.token}))
}

async fn verify_email_submit(ui: Ui, addr: api::Parts_, Form(f): Form<TokenQuery>) -> Response {
    let st = &ui.st;
    let result = async {
        let mut tx = st.db.begin().await?;
        let account = identity::consume_one_time_token(&mut tx, &f.token, TokenPurpose::VerifyEmail).await?;
        identity::mark_email_verified(
            &mut tx,
            &crate::audit::Who { account: Some(account), label: "email-verification".into(), address: addr.0.clone() },
            account,
        )
        .await?;
        tx.commit().await
    }
    .await;
    match result {
        Ok(()) => ui.render("email_verify.html", json!({"done": true})),
        Err(e) => ui.form_error("email_verify.html", e, json!({"token": f.token})),
    }
}

// ---------- account security ----------

#[derive(Deserialize, Default)]
struct SecurityQuery {
    required: Option<String>,
}

async fn security_page(ui: Ui, actor: Actor, Query(q): Query<SecurityQuery>) -> Response {
    security_render(&ui, &actor, json!({"required": q.required.is_some()})).await
}

async fn security_render(ui: &Ui, actor: &Actor, mut extra: Value) -> Response {
    let keys = match identity::list_api_keys(&ui.st.db, actor.account.id).await {
        Ok(k) => k,
        Err(e) => return UiError(e).into_response(),
    };
    let account = match identity::get_account(&ui.st.db, actor.account.id).await {
        Ok(a) => a,
        Err(e) => return UiError(e).into_response(),
    };
    let pending_secret = if !account.totp_enabled { account.totp_secret.clone() } else { None };
    let uri = pending_secret.as_ref().map(|s| crate::crypto::totp_uri(&ui.page.instance_name, &account.email, s));
    if let Some(o) = extra.as_object_mut() {
        o.insert("keys".into(), serde_json::to_value(keys).unwrap_or_default());
        o.insert("account".into(), serde_json::to_value(&account).unwrap_or_default());
        o.insert("totp_secret".into(), json!(pending_secret));
        o.insert("totp_qr".into(), json!(uri.as_deref().and_then(qr_data_uri)));
        o.insert("totp_uri".into(), json!(uri));
    }
    ui.render("account_security.html", extra)
}

/// The otpauth URI as a QR code, an SVG image in a data URI (allowed by the CSP).
fn qr_data_uri(uri: &str) -> Option<String> {
    use base64::Engine;
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    let svg = code.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build();
    Some(format!("data:image/svg+xml;base64,{}", base64::engine::general_purpose::STANDARD.encode(svg)))
}

async fn totp_begin(ui: Ui, actor: Actor) -> Response {
    match identity::totp_begin(&ui.st.db, actor.account.id).await {
        Ok(_) => see_other("/account/security"),
        Err(e) => UiError(e).into_response(),
    }
}

async fn totp_confirm(ui: Ui, actor: Actor, Form(f): Form<CodeForm>) -> Response {
    let account = match identity::get_account(&ui.st.db, actor.account.id).await {
        Ok(a) => a,
        Err(e) => return UiError(e).into_response(),
    };
    match identity::totp_confirm(&ui.st.db, &actor.who(), &account, &f.code).await {
        Ok(()) => see_other("/account/security"),
        Err(e) => {
            let fields: serde_json::Map<String, Value> =
                e.field_errors().into_iter().map(|f| (f.field, Value::String(f.message))).collect();
            security_render(&ui, &actor, json!({"errors": fields, "error": e.public_detail()})).await
        }
    }
}

async fn totp_disable(ui: Ui, actor: Actor, Form(f): Form<CodeForm>) -> Response {
    match identity::totp_disable(&ui.st.db, &ui.st.cfg, &actor.who(), &actor.account, &f.code).await {
        Ok(()) => see_other("/account/security"),
        Err(e) => security_render(&ui, &actor, json!({"error": e.public_detail()})).await,
    }
}

#[derive(Deserialize)]
struct KeyForm {
    #[serde(default)]
    name: String,
}

async fn key_create(ui: Ui, actor: Actor, Form(f): Form<KeyForm>) -> Response {
    match identity::create_api_key(&ui.st.db, &actor.who(), actor.account.id, &f.name).await {
        Ok((_, secret)) => security_render(&ui, &actor, json!({"new_key": secret})).await,
        Err(e) => security_render(&ui, &actor, json!({"error": e.public_detail()})).await,
    }
}

async fn key_revoke(ui: Ui, actor: Actor, Path(id): Path<String>) -> Response {
    match identity::revoke_api_key(&ui.st.db, &actor.who(), actor.account.id, &id).await {
        Ok(()) => see_other("/account/security"),
        Err(e) => UiError(e).into_response(),
    }
}

async fn logout_everywhere(ui: Ui, actor: Actor) -> Response {
    let r = async {
        let mut tx = ui.st.db.begin().await?;
        identity::end_all_sessions(&mut tx, &actor.who(), actor.account.id).await?;
        tx.commit().await
    }
    .await;
    match r {
        Ok(()) => with_cookie(see_other("/login"), auth::set_cookie(&ui.st, SESSION_COOKIE, "", Some(0))),
        Err(e) => UiError(e).into_response(),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

async fn password_change(ui: Ui, actor: Actor, Form(f): Form<PasswordForm>) -> Response {
    let keep = match &actor.method {
        auth::AuthMethod::Session { token_hash } => Some(token_hash.clone()),
        _ => None,
    };
    match identity::change_password(
        &ui.st.db,
        &ui.st.cfg,
        &actor.who(),
        &actor.account,
        &f.current_password,
        f.new_password,
        keep.as_deref(),
    )
    .await
    {
        Ok(()) => security_render(&ui, &actor, json!({"password_changed": true})).await,
        Err(e) => {
            let fields: serde_json::Map<String, Value> =
                e.field_errors().into_iter().map(|f| (f.field, Value::String(f.message))).collect();
            let status = e.status();
            let mut r = security_render(&ui, &actor, json!({"errors": fields, "error": e.public_detail()})).await;
            *r.status_mut() = status;
            r
        }
    }
}

async fn send_verification(ui: Ui, actor: Actor) -> Response {
    match api::send_verification_mail(&ui.st, &actor.account).await {
        Ok(()) => security_render(&ui, &actor, json!({"verification_sent": true})).await,
        Err(e) => security_render(&ui, &actor, json!({"error": e.public_detail()})).await,
    }
}

// ---------- instance administration ----------

async fn admin_page(ui: Ui, actor: Actor) -> Response {
    if let Err(e) = actor.require_instance_admin() {
        return UiError(e).into_response();
    }
    admin_render(&ui, json!({})).await
}

async fn admin_render(ui: &Ui, mut extra: Value) -> Response {
    let orgs = match orgs::list_orgs(&ui.st.db, crate::ids::AccountId::new(), true, None, 200).await {
        Ok(o) => o,
        Err(e) => return UiError(e).into_response(),
    };
    let modules = match module_states(&ui.st, None, &ui.page.lang).await {
        Ok(m) => m,
        Err(e) => return UiError(e).into_response(),
    };
    let inst = match instance::load(&ui.st.db).await {
        Ok(i) => json!({"name": i.name, "default_lang": i.default_lang, "time_zone": i.time_zone}),
        Err(e) => return UiError(e).into_response(),
    };
    if let Some(o) = extra.as_object_mut() {
        o.insert("instance".into(), inst);
        o.insert("all_orgs".into(), serde_json::to_value(orgs).unwrap_or_default());
        o.insert("modules".into(), serde_json::to_value(modules).unwrap_or_default());
    }
    ui.render("admin.html", extra)
}

#[derive(Deserialize)]
struct OrgForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    slug: String,
}

async fn admin_create_org(ui: Ui, actor: Actor, Form(f): Form<OrgForm>) -> Response {
    let admin = match actor.require_instance_admin() {
        Ok(a) => a,
        Err(e) => return UiError(e).into_response(),
    };
    let r = async {
        let mut tx = ui.st.db.begin().await?;
        let org = orgs::create_org(
            &mut tx,
            &actor.who(),
            &admin,
            &ui.st.modules,
            NewOrg { name: f.name.clone(), slug: Some(f.slug.clone()), timezone: None, currency: None },
            Some(actor.account.id),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, CoreError>(org)
    }
    .await;
    match r {
        Ok(org) => see_other(&format!("/o/{}/", org.slug)),
        Err(e) => {
            let fields: serde_json::Map<String, Value> =
                e.field_errors().into_iter().map(|f| (f.field, Value::String(f.message))).collect();
            let status = e.status();
            let mut resp = admin_render(
                &ui,
                json!({"errors": fields, "error": e.public_detail(), "form": {"name": f.name, "slug": f.slug}}),
            )
            .await;
            *resp.status_mut() = status;
            resp
        }
    }
}

#[derive(Deserialize)]
struct ToggleForm {
    #[serde(default)]
    enabled: String,
}

async fn admin_toggle_module(ui: Ui, actor: Actor, Path(module): Path<String>, Form(f): Form<ToggleForm>) -> Response {
    let admin = match actor.require_instance_admin() {
        Ok(a) => a,
        Err(e) => return UiError(e).into_response(),
    };
    let scope = instance::ModuleScope::Instance(&admin);
    match instance::set_module_enabled(&ui.st.db, &actor.who(), &ui.st.modules, &module, scope, f.enabled == "1").await
    {
        Ok(()) => see_other("/admin"),
        Err(e) => {
            let status = e.status();
            let mut r = admin_render(&ui, json!({"error": e.public_detail()})).await;
            *r.status_mut() = status;
            r
        }
    }
}

// ---------- organisation pages ----------

#[derive(Deserialize, Default)]
struct PeopleQuery {
    q: Option<String>,
    cf: Option<String>,
    sort: Option<PeopleSort>,
    cursor: Option<String>,
}

async fn people_list(
    ui: Ui,
    ctx: OrgCtx,
    Query(mut q): Query<PeopleQuery>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, UiError> {
    let cap = ctx.can_read(CORE)?;
    // The filter form sends one `cf.<key>` per field; links carry them all in `cf`.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let mut filters = crate::custom_fields::split_filters(q.cf.as_deref());
    for (k, v) in &pairs {
        if let Some(key) = k.strip_prefix("cf.") {
            filters.retain(|f| f.split_once('=').map(|(fk, _)| fk) != Some(key));
            if !v.trim().is_empty() && !v.contains(';') {
                filters.push(format!("{key}={}", v.trim()));
            }
        }
    }
    q.cf = Some(filters.join(";")).filter(|c| !c.is_empty());
    let chosen: serde_json::Map<String, Value> = filters
        .iter()
        .filter_map(|f| f.split_once('=').filter(|(k, _)| !k.ends_with(['>', '<'])))
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let page = people::list(
        &ui.st.db,
        &cap,
        &ListQuery {
            q: q.q.clone(),
            filters: filters.clone(),
            sort: q.sort.unwrap_or_default(),
            cursor: q.cursor.clone(),
            limit: 50,
        },
    )
    .await?;
    let can_write = ctx.access(CORE) >= Access::Write;
    let defs = crate::custom_fields::definitions(&ui.st.db, ctx.org.id, "person").await?;
    let filterable: Vec<_> = defs
        .iter()
        .filter(|f| {
            use crate::custom_fields::FieldKind::*;
            matches!(f.kind, Choice | Multi | Bool)
        })
        .cloned()
        .collect();
    let columns: Vec<_> = defs.into_iter().filter(|f| f.in_list).collect();
    let htmx = ui.htmx;
    let ui = ui.with_org(&ctx).await?;
    let extra = json!({"people": page.items, "next_cursor": page.next_cursor, "q": q.q.unwrap_or_default(),
        "cf": q.cf.unwrap_or_default(), "can_write": can_write, "columns": columns, "filterable": filterable,
        "chosen": chosen});
    let mut resp =
        if htmx { ui.render("people_rows_partial.html", extra) } else { ui.render("people_list.html", extra) };
    resp.headers_mut().insert(header::VARY, HeaderValue::from_static("HX-Request"));
    Ok(resp)
}

async fn people_export(ui: Ui, ctx: OrgCtx, Query(q): Query<PeopleQuery>) -> Result<Response, UiError> {
    Ok(api::people_file(&ui.st, &ctx, q.q, q.cf, people::ExportFormat::Csv).await?)
}

async fn people_export_pdf(ui: Ui, ctx: OrgCtx, Query(q): Query<PeopleQuery>) -> Result<Response, UiError> {
    Ok(api::people_file(&ui.st, &ctx, q.q, q.cf, people::ExportFormat::Pdf).await?)
}

async fn people_export_ods(ui: Ui, ctx: OrgCtx, Query(q): Query<PeopleQuery>) -> Result<Response, UiError> {
    Ok(api::people_file(&ui.st, &ctx, q.q, q.cf, people::ExportFormat::Ods).await?)
}

async fn person_new(ui: Ui, ctx: OrgCtx) -> Result<Response, UiError> {
    ctx.can_write(CORE)?;
    let fields = person_fields(&ui.st, &ctx).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("person_form.html", json!({"form": {}, "is_new": true, "fields": fields})))
}

/// The person form: its fixed fields and the organisation's custom fields (`cf.<key>`).
struct PersonForm {
    given_name: String,
    family_name: String,
    email: String,
    phone: String,
    notes: String,
    custom: serde_json::Map<String, Value>,
}

impl PersonForm {
    async fn read(st: &AppState, ctx: &OrgCtx, pairs: Vec<(String, String)>) -> CoreResult<PersonForm> {
        let defs = crate::custom_fields::definitions(&st.db, ctx.org.id, "person").await?;
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
        Ok(PersonForm {
            given_name: get("given_name"),
            family_name: get("family_name"),
            email: get("email"),
            phone: get("phone"),
            notes: get("notes"),
            custom: crate::custom_fields::from_form(&defs, &pairs),
        })
    }
    fn input(&self) -> PersonInput {
        PersonInput {
            given_name: Some(self.given_name.clone()),
            family_name: Some(self.family_name.clone()),
            email: Some(self.email.clone()),
            phone: Some(self.phone.clone()),
            notes: Some(self.notes.clone()),
            custom: Some(self.custom.clone()),
        }
    }
    fn echo(&self) -> Value {
        json!({"given_name": self.given_name, "family_name": self.family_name, "email": self.email, "phone": self.phone,
            "notes": self.notes, "custom": self.custom})
    }
}

/// The custom fields of people, for forms and pages.
async fn person_fields(st: &AppState, ctx: &OrgCtx) -> CoreResult<Vec<crate::custom_fields::FieldDef>> {
    crate::custom_fields::definitions(&st.db, ctx.org.id, "person").await
}

async fn person_create(ui: Ui, ctx: OrgCtx, Form(pairs): Form<Vec<(String, String)>>) -> Result<Response, UiError> {
    let cap = ctx.can_write(CORE)?;
    let f = PersonForm::read(&ui.st, &ctx, pairs).await?;
    let fields = person_fields(&ui.st, &ctx).await?;
    match people::create(&ui.st.db, &ctx.who(), &cap, f.input()).await {
        Ok(p) => Ok(see_other(&format!("/o/{}/people/{}", ctx.org.slug, p.id))),
        Err(e) => {
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error("person_form.html", e, json!({"form": f.echo(), "is_new": true, "fields": fields})))
        }
    }
}

async fn person_show(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Result<Response, UiError> {
    let extra = person_page(&ui.st, &ctx, &id).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render("person_show.html", extra))
}

/// What the person page shows: the record, its history (administrators),
/// timeline, files, and the linked account's e-mail (administrators, who
/// may link and unlink it).
async fn person_page(st: &AppState, ctx: &OrgCtx, id: &str) -> CoreResult<Value> {
    let cap = ctx.can_read(CORE)?;
    let p = people::get(&st.db, &cap, id).await?;
    let admin = ctx.access(CORE) >= Access::Admin;
    let history = if admin {
        audit_page(
            st,
            Some(ctx.org.id),
            AuditParams {
                actor: None,
                action: None,
                entity_type: Some("person".into()),
                entity_id: Some(id.to_string()),
                limit: Some(20),
                cursor: None,
            },
        )
        .await?
        .items
    } else {
        vec![]
    };
    let linked_account = if admin && p.account_id.is_some() {
        people::linked_account_email(&st.db, &cap, id).await?.map(|email| json!({"email": email}))
    } else {
        None
    };
    let can_write = ctx.access(CORE) >= Access::Write;
    let timeline = super::social::partial_context(st, ctx, "person", id).await?;
    let fields = person_fields(st, ctx).await?;
    let back = format!("/o/{}/people/{}", ctx.org.slug, p.id);
    let attachments = super::files::partial_context(st, ctx, CORE, "person", id, &back).await?;
    Ok(json!({"person": p, "history": history, "can_write": can_write, "timeline": timeline, "fields": fields,
        "attachments": attachments, "linked_account": linked_account}))
}

#[derive(Deserialize)]
struct AccountLinkForm {
    email: Option<String>,
}

/// The "Account" section's form: links the account that signs in with the
/// e-mail typed. Errors come back on the person page with what was typed,
/// under their own names (`account_errors`) so that the comment form of the
/// same page does not show them too.
async fn person_account_link(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    Form(f): Form<AccountLinkForm>,
) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let email = f.email.unwrap_or_default();
    let input = people::AccountLink { email: Some(email.clone()), account_id: None };
    let err = match people::link_account(&ui.st.db, &ctx.who(), &cap, &id, &input).await {
        Ok(_) => return Ok(see_other(&format!("/o/{}/people/{}#account", ctx.org.slug, id))),
        Err(e @ (CoreError::Validation(_) | CoreError::Conflict { .. })) => e,
        Err(e) => return Err(UiError(e)),
    };
    let mut extra = person_page(&ui.st, &ctx, &id).await?;
    let errors: serde_json::Map<String, Value> =
        err.field_errors().into_iter().map(|fe| (fe.field, Value::String(fe.message))).collect();
    // The account is someone else's: name them, in the page's language, with a link.
    let holder = match &err {
        CoreError::Conflict { field: Some(_), .. } => {
            people::linked_to_email(&ui.st.db, &cap.as_write().as_read(), &email).await?
        }
        _ => None,
    };
    if let Some(o) = extra.as_object_mut() {
        o.insert("account_form".into(), json!({"email": email}));
        o.insert("account_errors".into(), Value::Object(errors));
        o.insert("account_error".into(), Value::String(err.public_detail()));
        o.insert(
            "account_holder".into(),
            match holder {
                Some(h) => json!({"id": h.id, "given_name": h.given_name, "family_name": h.family_name}),
                None => Value::Null,
            },
        );
    }
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render_status(err.status(), "person_show.html", extra))
}

async fn person_account_unlink(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    people::unlink_account(&ui.st.db, &ctx.who(), &cap, &id).await?;
    Ok(see_other(&format!("/o/{}/people/{}#account", ctx.org.slug, id)))
}

async fn person_edit(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Result<Response, UiError> {
    let cap = ctx.can_write(CORE)?;
    let p = people::get(&ui.st.db, &cap.as_read(), &id).await?;
    let fields = person_fields(&ui.st, &ctx).await?;
    let files = crate::files::list_for(&ui.st.db, &cap.as_read(), "person", &id).await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui.render(
        "person_form.html",
        json!({"form": p, "person": p, "is_new": false, "fields": fields, "record_files": files}),
    ))
}

async fn person_update(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, UiError> {
    let cap = ctx.can_write(CORE)?;
    let f = PersonForm::read(&ui.st, &ctx, pairs).await?;
    let fields = person_fields(&ui.st, &ctx).await?;
    match people::update(&ui.st.db, &ctx.who(), &cap, &id, f.input()).await {
        Ok(p) => Ok(see_other(&format!("/o/{}/people/{}", ctx.org.slug, p.id))),
        Err(CoreError::NotFound) => Err(UiError(CoreError::NotFound)),
        Err(e) => {
            let ui = ui.with_org(&ctx).await?;
            Ok(ui.form_error(
                "person_form.html",
                e,
                json!({"form": f.echo(), "person": {"id": id}, "is_new": false, "fields": fields}),
            ))
        }
    }
}

async fn person_delete(ui: Ui, ctx: OrgCtx, Path((_, id)): Path<(String, String)>) -> Result<Response, UiError> {
    let cap = ctx.can_write(CORE)?;
    people::delete(&ui.st.db, &ctx.who(), &cap, &id).await?;
    Ok(see_other(&format!("/o/{}/people", ctx.org.slug)))
}

#[derive(Deserialize, Default)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    entity_type: Option<String>,
    cursor: Option<String>,
}

async fn audit_list(ui: Ui, ctx: OrgCtx, Query(q): Query<AuditQuery>) -> Result<Response, UiError> {
    ctx.can_admin(CORE)?;
    let nonempty = |s: Option<String>| s.filter(|x| !x.trim().is_empty());
    let filters = json!({"actor": q.actor, "action": q.action, "entity_type": q.entity_type});
    let page = audit_page(
        &ui.st,
        Some(ctx.org.id),
        AuditParams {
            actor: nonempty(q.actor),
            action: nonempty(q.action),
            entity_type: nonempty(q.entity_type),
            entity_id: None,
            limit: Some(50),
            cursor: q.cursor,
        },
    )
    .await?;
    let ui = ui.with_org(&ctx).await?;
    Ok(ui
        .render("audit_list.html", json!({"entries": page.items, "next_cursor": page.next_cursor, "filters": filters})))
}

async fn audit_export(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, file)): Path<(String, String)>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, UiError> {
    let nonempty = |s: Option<String>| s.filter(|x| !x.trim().is_empty());
    let p = AuditParams {
        actor: nonempty(q.actor),
        action: nonempty(q.action),
        entity_type: nonempty(q.entity_type),
        entity_id: None,
        limit: None,
        cursor: None,
    };
    let ods = match file.as_str() {
        "export.csv" => false,
        "export.ods" => true,
        _ => return Err(UiError(CoreError::NotFound)),
    };
    Ok(api::audit_file(&ui.st, &ctx, p, ods).await?)
}

async fn settings_page(ui: Ui, ctx: OrgCtx) -> Result<Response, UiError> {
    ctx.can_admin(CORE)?;
    let ui = ui.with_org(&ctx).await?;
    settings_render(ui, &ctx, json!({})).await
}

async fn settings_render(ui: Ui, ctx: &OrgCtx, mut extra: Value) -> Result<Response, UiError> {
    let cap = ctx.can_read(CORE)?;
    let members = orgs::list_members(&ui.st.db, &cap).await?;
    let groups = crate::groups::list(&ui.st.db, &cap).await?;
    let roles = orgs::list_roles(&ui.st.db, &cap).await?;
    let modules = module_states(&ui.st, Some(ctx.org.id), &ui.page.lang).await?;
    let instance_on = module_states(&ui.st, None, &ui.page.lang).await?;
    let modules: Vec<Value> = modules
        .into_iter()
        .zip(instance_on)
        .filter(|(_, i)| i.enabled)
        .map(|(m, _)| serde_json::to_value(m).unwrap_or_default())
        .collect();
    if let Some(o) = extra.as_object_mut() {
        o.insert("members".into(), serde_json::to_value(members).unwrap_or_default());
        o.insert("groups".into(), serde_json::to_value(groups).unwrap_or_default());
        o.insert("roles".into(), serde_json::to_value(roles).unwrap_or_default());
        o.insert("modules".into(), json!(modules));
        o.insert("org_full".into(), serde_json::to_value(&ctx.org).unwrap_or_default());
        o.insert("module_ids".into(), json!(ui.st.modules.all().iter().map(|m| m.id()).collect::<Vec<_>>()));
    }
    let status = if extra.get("error").is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    Ok(ui.render_status(status, "org_settings.html", extra))
}

#[derive(Deserialize)]
struct BrandingForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    timezone: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    logo_url: String,
    #[serde(default)]
    color_primary: String,
    #[serde(default)]
    color_accent: String,
}

async fn settings_save(ui: Ui, ctx: OrgCtx, Form(f): Form<BrandingForm>) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let patch = OrgPatch {
        name: Some(f.name),
        timezone: Some(f.timezone),
        currency: Some(f.currency),
        logo_url: Some(f.logo_url),
        color_primary: Some(f.color_primary),
        color_accent: Some(f.color_accent),
    };
    match orgs::update_org(&ui.st.db, &ctx.who(), &cap, patch).await {
        Ok(o) => Ok(see_other(&format!("/o/{}/settings", o.slug))),
        Err(e) => {
            let fields: serde_json::Map<String, Value> =
                e.field_errors().into_iter().map(|f| (f.field, Value::String(f.message))).collect();
            let ui = ui.with_org(&ctx).await?;
            settings_render(ui, &ctx, json!({"errors": fields, "error": e.public_detail()})).await
        }
    }
}

async fn settings_module(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, module)): Path<(String, String)>,
    Form(f): Form<ToggleForm>,
) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    match instance::set_module_enabled(
        &ui.st.db,
        &ctx.who(),
        &ui.st.modules,
        &module,
        instance::ModuleScope::Org(&cap),
        f.enabled == "1",
    )
    .await
    {
        Ok(()) => Ok(see_other(&format!("/o/{}/settings", ctx.org.slug))),
        Err(CoreError::NotFound) => Err(UiError(CoreError::NotFound)),
        Err(e) => {
            let ui = ui.with_org(&ctx).await?;
            settings_render(ui, &ctx, json!({"error": e.public_detail()})).await
        }
    }
}

#[derive(Deserialize)]
struct MemberForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

async fn settings_member(ui: Ui, ctx: OrgCtx, Form(f): Form<MemberForm>) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let r = match identity::normalize_email(&f.email) {
        Ok(_) => orgs::set_member(&ui.st, &ctx.who(), &cap, &f.email, &f.role).await.map(|_| ()),
        Err(e) => Err(CoreError::Validation(vec![e])),
    };
    match r {
        Ok(()) => Ok(see_other(&format!("/o/{}/settings", ctx.org.slug))),
        Err(e) => {
            let fields: serde_json::Map<String, Value> =
                e.field_errors().into_iter().map(|f| (f.field, Value::String(f.message))).collect();
            let ui = ui.with_org(&ctx).await?;
            settings_render(ui, &ctx, json!({"errors": fields, "error": e.public_detail(), "member_form": {"email": f.email, "role": f.role}})).await
        }
    }
}

async fn settings_member_remove(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, account)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let account = account.parse().map_err(|_| CoreError::NotFound)?;
    match orgs::remove_member(&ui.st.db, &ctx.who(), &cap, account).await {
        Ok(()) => Ok(see_other(&format!("/o/{}/settings", ctx.org.slug))),
        Err(CoreError::NotFound) => Err(UiError(CoreError::NotFound)),
        Err(e) => {
            let ui = ui.with_org(&ctx).await?;
            settings_render(ui, &ctx, json!({"error": e.public_detail()})).await
        }
    }
}

async fn settings_role(ui: Ui, ctx: OrgCtx, body: axum::body::Bytes) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let get = |k: &str| pairs.iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    let existing = get("existing").filter(|s| !s.is_empty());
    let mut perms = std::collections::BTreeMap::new();
    for (k, v) in &pairs {
        if let Some(m) = k.strip_prefix("perm_") {
            if let Some(a) = Access::parse(v) {
                perms.insert(m.to_string(), a);
            }
        }
    }
    let input = orgs::RoleInput {
        key: get("key"),
        name: get("name"),
        permissions: (!perms.is_empty()).then_some(perms),
        require_totp: Some(get("require_totp").as_deref() == Some("1")),
    };
    match orgs::save_role(&ui.st.db, &ctx.who(), &cap, &ui.st.modules, existing.as_deref(), input).await {
        Ok(_) => Ok(see_other(&format!("/o/{}/settings", ctx.org.slug))),
        Err(e) => {
            let fields: serde_json::Map<String, Value> =
                e.field_errors().into_iter().map(|f| (f.field, Value::String(f.message))).collect();
            let ui = ui.with_org(&ctx).await?;
            settings_render(ui, &ctx, json!({"errors": fields, "error": e.public_detail()})).await
        }
    }
}

async fn admin_health_page(ui: Ui, actor: Actor) -> Result<Response, UiError> {
    actor.require_instance_admin()?;
    let h = api::health_report(&ui.st).await?;
    Ok(ui.render("admin_health.html", json!({"health": h})))
}

#[derive(Deserialize, Default)]
struct JobsQuery {
    status: Option<String>,
}

async fn admin_jobs(ui: Ui, actor: Actor, Query(q): Query<JobsQuery>) -> Result<Response, UiError> {
    actor.require_instance_admin()?;
    let status = q.status.filter(|s| ["queued", "running", "done", "dead", "cancelled"].contains(&s.as_str()));
    let jobs = crate::jobs::list(&ui.st.db, status.as_deref(), 200).await?;
    let counts = crate::jobs::counts(&ui.st.db).await?;
    Ok(ui.render("admin_jobs.html", json!({"jobs": jobs, "counts": counts, "status": status})))
}

async fn admin_job_action(
    ui: Ui,
    actor: Actor,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let admin = actor.require_instance_admin()?;
    match action.as_str() {
        "retry" => crate::jobs::retry(&ui.st.db, &actor.who(), &admin, &id).await?,
        "cancel" => crate::jobs::cancel(&ui.st.db, &actor.who(), &admin, &id).await?,
        _ => return Err(UiError(CoreError::NotFound)),
    }
    Ok(see_other("/admin/jobs"))
}

#[derive(Deserialize)]
struct InstanceForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    default_lang: String,
    /// Absent from an older form: the zone stays as it is.
    time_zone: Option<String>,
}

async fn admin_instance(ui: Ui, actor: Actor, Form(f): Form<InstanceForm>) -> Response {
    let admin = match actor.require_instance_admin() {
        Ok(a) => a,
        Err(e) => return UiError(e).into_response(),
    };
    match instance::update(
        &ui.st.db,
        &actor.who(),
        &admin,
        Some(&f.name),
        Some(&f.default_lang),
        f.time_zone.as_deref(),
    )
    .await
    {
        Ok(_) => see_other("/admin"),
        Err(e) => {
            let fields: serde_json::Map<String, Value> =
                e.field_errors().into_iter().map(|f| (f.field, Value::String(f.message))).collect();
            let status = e.status();
            let mut r = admin_render(&ui, json!({"errors": fields, "error": e.public_detail()})).await;
            *r.status_mut() = status;
            r
        }
    }
}

#[derive(Deserialize)]
struct GroupForm {
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct GroupMemberForm {
    #[serde(default)]
    account: String,
}

async fn group_result(ui: Ui, ctx: &OrgCtx, r: CoreResult<()>) -> Result<Response, UiError> {
    match r {
        Ok(()) => Ok(see_other(&format!("/o/{}/settings#groups", ctx.org.slug))),
        Err(CoreError::NotFound) => Err(UiError(CoreError::NotFound)),
        Err(e) => {
            let ui = ui.with_org(ctx).await?;
            settings_render(ui, ctx, json!({"error": e.public_detail()})).await
        }
    }
}

async fn settings_group_create(ui: Ui, ctx: OrgCtx, Form(f): Form<GroupForm>) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let r = crate::groups::create(&ui.st.db, &ctx.who(), &cap, &f.name).await.map(|_| ());
    group_result(ui, &ctx, r).await
}

async fn settings_group_delete(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, group)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let r = crate::groups::delete(&ui.st.db, &ctx.who(), &cap, &group).await;
    group_result(ui, &ctx, r).await
}

async fn settings_group_add(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, group)): Path<(String, String)>,
    Form(f): Form<GroupMemberForm>,
) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let account = f.account.parse().map_err(|_| CoreError::validation("account", "Choose a member."))?;
    let r = crate::groups::set_member(&ui.st.db, &ctx.who(), &cap, &group, account, true).await;
    group_result(ui, &ctx, r).await
}

async fn settings_group_remove(
    ui: Ui,
    ctx: OrgCtx,
    Path((_, group, account)): Path<(String, String, String)>,
) -> Result<Response, UiError> {
    let cap = ctx.can_admin(CORE)?;
    let account = account.parse().map_err(|_| CoreError::NotFound)?;
    let r = crate::groups::set_member(&ui.st.db, &ctx.who(), &cap, &group, account, false).await;
    group_result(ui, &ctx, r).await
}

/// The organisation's colours as CSS custom properties (the CSP forbids inline styles).
async fn brand_css(ctx: OrgCtx) -> Response {
    let o = ctx.org;
    let mut css = String::from(":root {");
    if let Some(c) = o.color_primary.filter(|c| c.len() == 7) {
        css.push_str(&format!(" --primary: {c};"));
    }
    if let Some(c) = o.color_accent.filter(|c| c.len() == 7) {
        css.push_str(&format!(" --accent: {c};"));
    }
    css.push_str(" }\n");
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "private, max-age=60")], css)
        .into_response()
}

async fn api_docs(ui: Ui) -> Response {
    ui.render("api_docs.html", json!({}))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/setup", get(setup_page).post(setup_submit))
        .route("/login", get(login_page).post(login_submit))
        .route("/login/totp", get(totp_page).post(totp_submit))
        .route("/logout", post(logout))
        .route("/lang", post(set_lang))
        .route("/password/forgot", get(forgot_page).post(forgot_submit))
        .route("/password/reset", get(reset_page).post(reset_submit))
        .route("/email/verify", get(verify_email_page).post(verify_email_submit))
        .route("/account/security", get(security_page))
        .route("/account/totp/begin", post(totp_begin))
        .route("/account/totp/confirm", post(totp_confirm))
        .route("/account/totp/disable", post(totp_disable))
        .route("/account/api-keys", post(key_create))
        .route("/account/api-keys/{id}/revoke", post(key_revoke))
        .route("/account/logout-everywhere", post(logout_everywhere))
        .route("/account/password", post(password_change))
        .route("/account/email/verification", post(send_verification))
        .route("/admin", get(admin_page))
        .route("/admin/orgs", post(admin_create_org))
        .route("/admin/instance", post(admin_instance))
        .route("/admin/jobs", get(admin_jobs))
        .route("/admin/health", get(admin_health_page))
        .route("/admin/jobs/{id}/{action}", post(admin_job_action))
        .route("/admin/modules/{module}", post(admin_toggle_module))
        .route("/api/docs", get(api_docs))
        .route("/o/{org}/", get(super::dashboard::page))
        .route("/o/{org}/brand.css", get(brand_css))
        .route("/o/{org}/people", get(people_list).post(person_create))
        .route("/o/{org}/people/new", get(person_new))
        .route("/o/{org}/people/export.csv", get(people_export))
        .route("/o/{org}/people/export.ods", get(people_export_ods))
        .route("/o/{org}/people/export.pdf", get(people_export_pdf))
        .route("/o/{org}/people/{id}", get(person_show).post(person_update))
        .route("/o/{org}/people/{id}/edit", get(person_edit))
        .route("/o/{org}/people/{id}/delete", post(person_delete))
        .route("/o/{org}/people/{id}/account", post(person_account_link))
        .route("/o/{org}/people/{id}/account/unlink", post(person_account_unlink))
        .route("/o/{org}/audit", get(audit_list))
        .route("/o/{org}/audit/{file}", get(audit_export))
        .route("/o/{org}/settings", get(settings_page).post(settings_save))
        .route("/o/{org}/settings/modules/{module}", post(settings_module))
        .route("/o/{org}/settings/members", post(settings_member))
        .route("/o/{org}/settings/members/{account}/remove", post(settings_member_remove))
        .route("/o/{org}/settings/roles", post(settings_role))
        .route("/o/{org}/settings/groups", post(settings_group_create))
        .route("/o/{org}/settings/groups/{group}/delete", post(settings_group_delete))
        .route("/o/{org}/settings/groups/{group}/members", post(settings_group_add))
        .route("/o/{org}/settings/groups/{group}/members/{account}/remove", post(settings_group_remove))
}
