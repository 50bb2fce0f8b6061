//! Who is asking, and for which organisation.
//!
//! [`Actor`] authenticates the request: a session cookie for pages, a bearer
//! token (JWT access token or personal API key) for `/api/`. [`OrgCtx`] adds
//! the organisation named by the `{org}` path segment and the actor's role in
//! it. It fails closed: an organisation the actor does not belong to answers
//! 404, exactly like one that does not exist.

use super::{ui::UiError, AppState};
use crate::error::{CoreError, CoreResult};
use crate::identity::{self, Account, API_KEY_PREFIX};
use crate::orgs::{self, Org, Role};
use crate::permissions::{Access, CanAdmin, CanRead, CanWrite, Permissions};
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "shrooms_session";
pub const CSRF_COOKIE: &str = "shrooms_csrf";
pub const LANG_COOKIE: &str = "shrooms_lang";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    Session { token_hash: String },
    AccessToken,
    ApiKey,
}

#[derive(Clone, Debug)]
pub struct Actor {
    pub account: Account,
    pub address: String,
    pub method: AuthMethod,
}

impl Actor {
    pub fn who(&self) -> crate::audit::Who {
        self.account.who(&self.address)
    }
    pub fn is_instance_admin(&self) -> bool {
        self.account.is_instance_admin
    }
    pub fn require_instance_admin(&self) -> CoreResult<crate::permissions::InstanceAdmin> {
        if self.account.is_instance_admin {
            Ok(crate::permissions::InstanceAdmin::grant(Some(self.account.id)))
        } else {
            Err(CoreError::Forbidden("Only instance administrators can do this.".into()))
        }
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_secs: Option<i64>) -> HeaderValue {
    let secure = if state.cfg.secure_cookies() { "; Secure" } else { "" };
    let age = match max_age_secs {
        Some(s) => format!("; Max-Age={s}"),
        None => String::new(),
    };
    HeaderValue::from_str(&format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{secure}{age}"))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub fn client_address(parts: &Parts) -> String {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let trusted = parts.extensions.get::<TrustedProxies>().map(|t| t.0.clone()).unwrap_or_default();
    if !trusted.iter().any(|t| *t == peer) {
        return peer;
    }
    // The right-most address that is not one of our proxies is the client.
    let forwarded = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_string())
        .collect::<Vec<_>>();
    forwarded.into_iter().rev().find(|a| !a.is_empty() && !trusted.contains(a)).unwrap_or(peer)
}

/// The configured reverse proxies, put in each request's extensions by the router.
#[derive(Clone, Default)]
pub struct TrustedProxies(pub std::sync::Arc<Vec<String>>);

fn is_api(parts: &Parts) -> bool {
    is_api_path(parts.uri.path())
}

/// The JSON API (bearer tokens, problem+json); `/api/docs` is a page.
pub fn is_api_path(path: &str) -> bool {
    path.starts_with("/api/v")
}

/// Rejection: problem+json for the API, a redirect to sign-in for pages.
fn reject(parts: &Parts, err: CoreError) -> Response {
    if is_api(parts) {
        return err.into_response();
    }
    match err {
        CoreError::Unauthorized(_) => {
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            Redirect::to(&format!("/login?next={}", urlencode(next))).into_response()
        }
        CoreError::TotpRequired => Redirect::to("/account/security?required=1").into_response(),
        other => UiError(other).into_response(),
    }
}

pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn authenticate(parts: &Parts, state: &AppState) -> CoreResult<Option<Actor>> {
    let address = client_address(parts);
    if is_api(parts) {
        let Some(auth) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
            return Ok(None);
        };
        let token = auth
            .strip_prefix("Bearer ")
            .ok_or_else(|| CoreError::Unauthorized("Use `Authorization: Bearer <token>`.".into()))?
            .trim();
        let (account, method) = if token.starts_with(API_KEY_PREFIX) {
            (identity::verify_api_key(&state.db, token).await?, AuthMethod::ApiKey)
        } else {
            (
                identity::verify_access_token(&state.db, &state.signing_key, token, &state.token_cache).await?,
                AuthMethod::AccessToken,
            )
        };
        return Ok(Some(Actor { account, address, method }));
    }
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    match identity::find_session(&state.db, &state.cfg, &token).await? {
        Some(s) if !s.second_factor_pending => {
            Ok(Some(Actor { account: s.account, address, method: AuthMethod::Session { token_hash: s.token_hash } }))
        }
        _ => Ok(None),
    }
}

/// The signed-in actor, if any (cached for the request).
pub struct MaybeActor(pub Option<Actor>);

impl FromRequestParts<AppState> for MaybeActor {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(a) = parts.extensions.get::<Option<Actor>>() {
            return Ok(MaybeActor(a.clone()));
        }
        let a = authenticate(parts, state).await.map_err(|e| reject(parts, e))?;
        parts.extensions.insert(a.clone());
        Ok(MaybeActor(a))
    }
}

impl FromRequestParts<AppState> for Actor {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let MaybeActor(a) = MaybeActor::from_request_parts(parts, state).await?;
        a.ok_or_else(|| reject(parts, CoreError::Unauthorized("Sign in first.".into())))
    }
}

/// An actor acting inside one organisation, with the permissions of its role there.
#[derive(Clone, Debug)]
pub struct OrgCtx {
    pub org: Org,
    pub actor: Actor,
    pub role: Option<Role>,
    pub perms: Permissions,
}

impl OrgCtx {
    pub fn access(&self, module: &str) -> Access {
        self.perms.get(module)
    }
    fn check(&self, module: &str, need: Access) -> CoreResult<()> {
        if self.access(module) >= need {
            Ok(())
        } else {
            Err(CoreError::Forbidden(format!(
                "Your role does not allow this ({} access to `{module}` is needed).",
                need.as_str()
            )))
        }
    }
    pub fn can_read(&self, module: &'static str) -> CoreResult<CanRead> {
        self.check(module, Access::Read)?;
        Ok(CanRead::grant(self.org.id, self.actor.account.id, module))
    }
    pub fn can_write(&self, module: &'static str) -> CoreResult<CanWrite> {
        self.check(module, Access::Write)?;
        Ok(CanWrite::grant(self.org.id, self.actor.account.id, module))
    }
    pub fn can_admin(&self, module: &'static str) -> CoreResult<CanAdmin> {
        self.check(module, Access::Admin)?;
        Ok(CanAdmin::grant(self.org.id, self.actor.account.id, module))
    }
    pub fn who(&self) -> crate::audit::Who {
        self.actor.who()
    }
    /// Access to the signed-in person's own records (a member space), whatever
    /// the role grants on `module`: granted by a module after it found the
    /// person linked to this account (`people::of_account`). The module must
    /// scope every read and write made with it to that one person.
    pub fn own_records_grant(&self, module: &'static str) -> CanWrite {
        CanWrite::grant(self.org.id, self.actor.account.id, module)
    }

    pub async fn resolve(state: &AppState, actor: Actor, org_key: &str) -> CoreResult<OrgCtx> {
        let cache_key = (org_key.to_string(), actor.account.id);
        let found = match state.org_cache.get(&state.db, &cache_key) {
            Some(found) => found,
            None => {
                let generation = state.db.generation();
                let found = orgs::find_org_with_role(&state.db, org_key, actor.account.id).await?;
                state.org_cache.put(generation, cache_key, found.clone());
                found
            }
        };
        let (org, role) = found.ok_or(CoreError::NotFound)?;
        // Instance administrators operate every organisation of their instance.
        let perms =
            state.modules.effective_permissions(role.as_ref(), actor.is_instance_admin()).ok_or(CoreError::NotFound)?;
        if role.as_ref().is_some_and(|r| r.require_totp) && !actor.account.totp_enabled {
            return Err(CoreError::TotpRequired);
        }
        Ok(OrgCtx { org, actor, role, perms })
    }
}

impl FromRequestParts<AppState> for OrgCtx {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(c) = parts.extensions.get::<OrgCtx>() {
            return Ok(c.clone());
        }
        let actor = Actor::from_request_parts(parts, state).await?;
        let Path(params): Path<HashMap<String, String>> =
            Path::from_request_parts(parts, state).await.map_err(|e| e.into_response())?;
        let key = params.get("org").cloned().unwrap_or_default();
        let ctx = OrgCtx::resolve(state, actor, &key).await.map_err(|e| reject(parts, e))?;
        parts.extensions.insert(ctx.clone());
        Ok(ctx)
    }
}

/// Someone on an organisation's public pages (a club page, an attendance
/// form): the organisation, and the member context when the visitor is
/// signed in and belongs to it. Fails only when the organisation does not
/// exist (404); a stranger, or a member who still owes a second factor, is
/// simply an anonymous visitor.
#[derive(Clone, Debug)]
pub struct Visitor {
    pub org: Org,
    pub actor: Option<Actor>,
    /// Present when the visitor is a member (or an instance administrator).
    pub ctx: Option<OrgCtx>,
}

impl Visitor {
    /// The visitor's access to a module: `None` for anonymous visitors.
    pub fn access(&self, module: &str) -> Access {
        self.ctx.as_ref().map(|c| c.access(module)).unwrap_or(Access::None)
    }

    pub fn who(&self) -> crate::audit::Who {
        match &self.actor {
            Some(a) => a.who(),
            None => crate::audit::Who::system("public form"),
        }
    }

    /// Write access for a public form, granted by the module itself after it
    /// checked its own proof (an attendance code valid for this
    /// organisation). The capability carries no account (the nil id): what
    /// is written with it is attributed to `who()`. Never call it without
    /// such a check: it is how an anonymous visitor gets to write.
    pub fn public_form_grant(&self, module: &'static str) -> CanWrite {
        CanWrite::grant(self.org.id, crate::ids::AccountId(uuid::Uuid::nil()), module)
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Response;
    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let MaybeActor(actor) = MaybeActor::from_request_parts(parts, state).await?;
        let Path(params): Path<HashMap<String, String>> =
            Path::from_request_parts(parts, state).await.map_err(|e| e.into_response())?;
        let key = params.get("org").cloned().unwrap_or_default();
        let ctx = match &actor {
            Some(a) => match OrgCtx::resolve(state, a.clone(), &key).await {
                Ok(c) => Some(c),
                Err(CoreError::NotFound | CoreError::TotpRequired) => None,
                Err(e) => return Err(reject(parts, e)),
            },
            None => None,
        };
        let org = match &ctx {
            Some(c) => c.org.clone(),
            None => match orgs::find_org(&state.db, &key).await {
                Ok(Some(o)) => o,
                Ok(None) => return Err(reject(parts, CoreError::NotFound)),
                Err(e) => return Err(reject(parts, e)),
            },
        };
        Ok(Visitor { org, actor, ctx })
    }
}

/// The CSRF token of this browser, for forms (`<input name="_csrf">`).
#[derive(Clone)]
pub struct CsrfToken(pub String);

/// CSRF protection for pages: double-submit token (cookie + form field or
/// `X-CSRF-Token` header) on every state-changing request, plus an Origin
/// check. The JSON API is exempt: it authenticates with bearer tokens, which
/// a browser never sends by itself.
pub async fn csrf(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if is_api_path(req.uri().path()) {
        return next.run(req).await;
    }
    let existing = cookie(req.headers(), CSRF_COOKIE).filter(|c| c.len() >= 32);
    let (mut parts, body) = req.into_parts();
    let token = existing.clone().unwrap_or_else(crate::crypto::random_token);
    parts.extensions.insert(CsrfToken(token.clone()));
    let req = if super::is_write(&parts.method) {
        if let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
            let origin_host = origin.split("://").nth(1).unwrap_or("");
            if origin != "null" && origin_host != host {
                return UiError(CoreError::Forbidden("This form was sent from another site.".into())).into_response();
            }
        }
        let Some(expected) = existing.clone() else {
            return UiError(CoreError::Forbidden("Your form expired: reload the page and send it again.".into()))
                .into_response();
        };
        let header_token = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
        let (sent, body) = match header_token {
            Some(t) => (Some(t), body),
            None => {
                let content_type =
                    parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                let is_form = content_type.starts_with("application/x-www-form-urlencoded");
                if content_type.starts_with("multipart/form-data") && parts.uri.path().ends_with("/imports") {
                    // File uploads (imports): the token is a part of the form.
                    let bytes = match axum::body::to_bytes(body, crate::import::MAX_UPLOAD_BYTES).await {
                        Ok(b) => b,
                        Err(_) => {
                            return UiError(CoreError::BadRequest("The file is too large.".into())).into_response()
                        }
                    };
                    (super::imports::multipart_csrf(&content_type, &bytes), Body::from(bytes))
                } else if content_type.starts_with("multipart/form-data") {
                    // File uploads: the token must be the form's first field.
                    let limit = state.cfg.files.max_upload_bytes.saturating_add(1 << 20);
                    let bytes = match axum::body::to_bytes(body, limit).await {
                        Ok(b) => b,
                        Err(_) => {
                            return UiError(crate::files::too_large(state.cfg.files.max_upload_bytes)).into_response()
                        }
                    };
                    let sent = multipart_first_field(&content_type, &bytes, "_csrf").await;
                    (sent, Body::from(bytes))
                } else if !is_form {
                    (None, body)
                } else {
                    let bytes = match axum::body::to_bytes(body, state.cfg.max_body_bytes).await {
                        Ok(b) => b,
                        Err(_) => {
                            return UiError(CoreError::BadRequest("The form is too large.".into())).into_response()
                        }
                    };
                    let sent = form_urlencoded_get(&bytes, "_csrf");
                    (sent, Body::from(bytes))
                }
            }
        };
        if !sent.is_some_and(|s| crate::crypto::constant_time_eq(s.as_bytes(), expected.as_bytes())) {
            return UiError(CoreError::Forbidden("Your form expired: reload the page and send it again.".into()))
                .into_response();
        }
        Request::from_parts(parts, body)
    } else {
        Request::from_parts(parts, body)
    };
    let mut resp = next.run(req).await;
    if existing.is_none() {
        resp.headers_mut().append(header::SET_COOKIE, set_cookie(&state, CSRF_COOKIE, &token, None));
    }
    resp
}

/// The value of `key` when it is among the first fields of a multipart body
/// (only its first 64 KiB are parsed).
async fn multipart_first_field(content_type: &str, body: &axum::body::Bytes, key: &str) -> Option<String> {
    use axum::extract::FromRequest;
    let head = body.slice(..body.len().min(64 * 1024));
    let req = Request::builder().header(header::CONTENT_TYPE, content_type).body(Body::from(head)).ok()?;
    let mut mp = axum::extract::Multipart::from_request(req, &()).await.ok()?;
    while let Ok(Some(field)) = mp.next_field().await {
        if field.name() == Some(key) {
            return field.text().await.ok();
        }
    }
    None
}

fn form_urlencoded_get(body: &[u8], key: &str) -> Option<String> {
    let s = std::str::from_utf8(body).ok()?;
    s.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.replace('+', " "))
    })
}
