//! Online payment providers. A provider does two things, behind the
//! [`PaymentProvider`] trait: open a checkout for an invoice's amount due,
//! and turn a webhook it sends into a normalised, verified event. The rest —
//! configuration with sealed secrets, the public "pay online" link, replay
//! protection, recording the payment — is here, the same for every
//! provider. Stripe Checkout is implemented; HelloAsso and others are one
//! more file and one more arm in [`provider`].

pub mod https;
pub mod stripe;

use crate::payments::{self, AllocationInput, NewPayment, OPEN_STATUSES};
use crate::MODULE;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::json;
use shrooms_accounting::domain::Day;
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::error::{CoreError, CoreResult, FieldError};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::{CanAdmin, CanRead};
use shrooms_core::timeline;
use shrooms_core::web::AppState;
use sqlx::Row;
use std::future::Future;
use std::pin::Pin;
use utoipa::ToSchema;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An organisation's credentials at a provider, opened from their seals.
pub struct Secrets {
    pub secret_key: String,
    pub webhook_secret: String,
    pub api_base: String,
}

pub struct CheckoutRequest {
    pub org_id: String,
    pub document_id: String,
    pub label: String,
    pub amount_cents: i64,
    pub currency: String,
    pub customer_email: String,
    pub success_url: String,
    pub cancel_url: String,
}

pub struct Checkout {
    pub provider_session_id: String,
    pub url: String,
}

#[derive(Debug)]
pub enum WebhookError {
    BadSignature,
    Stale,
    Malformed(String),
}

#[derive(Debug)]
pub enum EventKind {
    /// The customer paid a checkout.
    CheckoutCompleted {
        session_id: String,
        document_id: Option<String>,
        amount_cents: i64,
        currency: String,
        /// The provider's reference of the payment (Stripe's payment intent).
        payment_ref: String,
    },
    /// Anything else: acknowledged, recorded, not acted upon.
    Ignored,
}

#[derive(Debug)]
pub struct WebhookEvent {
    pub id: String,
    pub kind_name: String,
    pub kind: EventKind,
}

pub trait PaymentProvider: Send + Sync {
    fn id(&self) -> &'static str;
    /// Opens a hosted payment page for the request's amount.
    fn create_checkout<'a>(&'a self, s: &'a Secrets, r: &'a CheckoutRequest)
        -> BoxFuture<'a, anyhow::Result<Checkout>>;
    /// Verifies a webhook (signature, age) and reads its event.
    fn parse_webhook(
        &self,
        s: &Secrets,
        headers: &HeaderMap,
        body: &[u8],
        now_secs: i64,
    ) -> Result<WebhookEvent, WebhookError>;
}

pub const PROVIDERS: &[&str] = &["stripe"];

pub fn provider(id: &str) -> Option<&'static dyn PaymentProvider> {
    match id {
        "stripe" => Some(&stripe::Stripe),
        _ => None,
    }
}

// ---------- configuration ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProviderConfig {
    pub provider: String,
    pub enabled: bool,
    /// Whether a secret key is stored; the key itself is never shown back.
    pub secret_key_set: bool,
    pub webhook_secret_set: bool,
    /// Empty: the provider's real API.
    pub api_base: String,
    /// The URL to give the provider for its webhooks, from the site root.
    pub webhook_path: String,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfigInput {
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Replaces the stored key when given and not empty.
    #[serde(default)]
    pub secret_key: Option<String>,
    #[serde(default)]
    pub webhook_secret: Option<String>,
    /// `https://…`, or `http://127.0.0.1:<port>` for a local stand-in; empty for the real API.
    #[serde(default)]
    pub api_base: Option<String>,
}

fn seal_ctx(field: &str, org: OrgId, provider: &str) -> String {
    format!("inv_provider_configs.{field}:{org}:{provider}")
}

fn check_provider(p: &str) -> CoreResult<&'static str> {
    PROVIDERS.iter().copied().find(|x| *x == p).ok_or(CoreError::NotFound)
}

pub async fn config(st: &AppState, cap: &CanRead, p: &str, org_slug: &str) -> CoreResult<ProviderConfig> {
    let p = check_provider(p)?;
    let r = sqlx::query(
        "SELECT enabled, secret_key_sealed, webhook_secret_sealed, api_base FROM inv_provider_configs \
         WHERE org_id = $1 AND provider = $2",
    )
    .bind(cap.org().to_string())
    .bind(p)
    .fetch_optional(st.db.pool())
    .await?;
    let webhook_path = format!("/api/v1/hooks/invoicing/{p}/{org_slug}");
    Ok(match r {
        Some(r) => ProviderConfig {
            provider: p.into(),
            enabled: r.try_get::<i64, _>(0)? == 1,
            secret_key_set: r.try_get::<Option<String>, _>(1)?.is_some(),
            webhook_secret_set: r.try_get::<Option<String>, _>(2)?.is_some(),
            api_base: r.try_get(3)?,
            webhook_path,
        },
        None => ProviderConfig {
            provider: p.into(),
            enabled: false,
            secret_key_set: false,
            webhook_secret_set: false,
            api_base: String::new(),
            webhook_path,
        },
    })
}

pub async fn set_config(
    st: &AppState,
    who: &Who,
    cap: &CanAdmin,
    p: &str,
    org_slug: &str,
    input: ProviderConfigInput,
) -> CoreResult<ProviderConfig> {
    let p = check_provider(p)?;
    let org = cap.org();
    let mut errors = Vec::new();
    let api_base = input.api_base.as_deref().map(|s| s.trim().trim_end_matches('/').to_string());
    if let Some(b) = &api_base {
        if !b.is_empty() && https::parse_base(b).is_none() {
            errors.push(FieldError::new(
                "api_base",
                "Write an https:// address, or http://127.0.0.1:<port> for a local stand-in; leave empty for the real API.",
            ));
        }
    }
    let clean = |v: &Option<String>, field: &str, errors: &mut Vec<FieldError>| -> Option<String> {
        let t = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
        if t.len() > 500 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(FieldError::new(field, "Paste the key as the provider shows it, on one line."));
            return None;
        }
        Some(t.to_string())
    };
    let secret = clean(&input.secret_key, "secret_key", &mut errors);
    let hook = clean(&input.webhook_secret, "webhook_secret", &mut errors);
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let key = &st.data_key;
    let mut tx = st.db.begin().await?;
    sqlx::query(
        "INSERT INTO inv_provider_configs (org_id, provider, enabled, api_base, updated_at) VALUES ($1, $2, 0, '', $3) \
         ON CONFLICT (org_id, provider) DO NOTHING",
    )
    .bind(org.to_string())
    .bind(p)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    if let Some(e) = input.enabled {
        sqlx::query("UPDATE inv_provider_configs SET enabled = $1 WHERE org_id = $2 AND provider = $3")
            .bind(e as i64)
            .bind(org.to_string())
            .bind(p)
            .execute(tx.conn())
            .await?;
    }
    if let Some(s) = &secret {
        sqlx::query("UPDATE inv_provider_configs SET secret_key_sealed = $1 WHERE org_id = $2 AND provider = $3")
            .bind(key.seal(&seal_ctx("secret_key", org, p), s))
            .bind(org.to_string())
            .bind(p)
            .execute(tx.conn())
            .await?;
    }
    if let Some(s) = &hook {
        sqlx::query("UPDATE inv_provider_configs SET webhook_secret_sealed = $1 WHERE org_id = $2 AND provider = $3")
            .bind(key.seal(&seal_ctx("webhook_secret", org, p), s))
            .bind(org.to_string())
            .bind(p)
            .execute(tx.conn())
            .await?;
    }
    if let Some(b) = &api_base {
        sqlx::query("UPDATE inv_provider_configs SET api_base = $1 WHERE org_id = $2 AND provider = $3")
            .bind(b)
            .bind(org.to_string())
            .bind(p)
            .execute(tx.conn())
            .await?;
    }
    sqlx::query("UPDATE inv_provider_configs SET updated_at = $1 WHERE org_id = $2 AND provider = $3")
        .bind(Timestamp::now().0)
        .bind(org.to_string())
        .bind(p)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(org),
            action: "invoicing.provider.configure",
            entity_type: "invoicing_provider",
            entity_id: p.to_string(),
            before: None,
            // Which secrets changed, never their values.
            after: Some(json!({"enabled": input.enabled, "secret_key_changed": secret.is_some(),
                "webhook_secret_changed": hook.is_some(), "api_base": api_base})),
        },
    )
    .await?;
    tx.commit().await?;
    config(st, &cap.as_write().as_read(), p, org_slug).await
}

async fn secrets(st: &AppState, org: OrgId, p: &str) -> CoreResult<Option<Secrets>> {
    let r = sqlx::query(
        "SELECT secret_key_sealed, webhook_secret_sealed, api_base FROM inv_provider_configs \
         WHERE org_id = $1 AND provider = $2 AND enabled = 1",
    )
    .bind(org.to_string())
    .bind(p)
    .fetch_optional(st.db.pool())
    .await?;
    let Some(r) = r else { return Ok(None) };
    let open = |field: &str, v: Option<String>| -> CoreResult<String> {
        match v {
            Some(s) => st.data_key.open(&seal_ctx(field, org, p), &s),
            None => Ok(String::new()),
        }
    };
    Ok(Some(Secrets {
        secret_key: open("secret_key", r.try_get(0)?)?,
        webhook_secret: open("webhook_secret", r.try_get(1)?)?,
        api_base: r.try_get(2)?,
    }))
}

// ---------- checkout ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CheckoutSession {
    pub provider: String,
    pub provider_session_id: String,
    /// Where to send the customer.
    pub url: String,
    pub amount_cents: i64,
    pub currency: String,
}

/// Opens a checkout at the provider for what is still due on an invoice.
/// The provider is called outside any transaction; the session is stored
/// after, so a slow provider never holds the database.
pub async fn create_checkout(
    st: &AppState,
    who: &Who,
    org: OrgId,
    p: &str,
    document_id: &str,
    return_url: &str,
) -> CoreResult<CheckoutSession> {
    let p = check_provider(p)?;
    let prov = provider(p).ok_or(CoreError::NotFound)?;
    let r = sqlx::query(&format!(
        "SELECT d.number, d.currency, d.gross_cents - d.paid_cents - d.credited_cents, c.email, CAST(CASE WHEN d.status IN {OPEN_STATUSES} THEN 1 ELSE 0 END AS BIGINT) \
         FROM inv_documents d JOIN inv_customers c ON c.id = d.customer_id \
         WHERE d.org_id = $1 AND d.id = $2 AND d.kind = 'invoice'"
    ))
    .bind(org.to_string())
    .bind(document_id)
    .fetch_optional(st.db.pool())
    .await?
    .ok_or(CoreError::NotFound)?;
    let number: Option<String> = r.try_get(0)?;
    let currency: String = r.try_get(1)?;
    let due: i64 = r.try_get(2)?;
    let email: String = r.try_get(3)?;
    let open: bool = r.try_get::<i64, _>(4)? == 1;
    if !open || due <= 0 {
        return Err(CoreError::Conflict { field: None, message: "Nothing is due on this invoice.".into() });
    }
    let s = secrets(st, org, p).await?.filter(|s| !s.secret_key.is_empty()).ok_or_else(|| CoreError::Conflict {
        field: None,
        message: "Online payment is not set up for this organisation.".into(),
    })?;
    let req = CheckoutRequest {
        org_id: org.to_string(),
        document_id: document_id.to_string(),
        label: format!("Facture {}", number.clone().unwrap_or_default()),
        amount_cents: due,
        currency: currency.clone(),
        customer_email: email,
        success_url: format!("{return_url}?paid=1"),
        cancel_url: return_url.to_string(),
    };
    let c = prov.create_checkout(&s, &req).await.map_err(|e| {
        tracing::warn!(provider = p, error = %e, "checkout creation failed");
        CoreError::Conflict {
            field: None,
            message: "The payment provider refused or did not answer; try again later.".into(),
        }
    })?;
    let mut tx = st.db.begin().await?;
    sqlx::query(
        "INSERT INTO inv_checkout_sessions (id, org_id, provider, document_id, amount_cents, currency, \
         provider_session_id, url, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9)",
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(org.to_string())
    .bind(p)
    .bind(document_id)
    .bind(due)
    .bind(&currency)
    .bind(&c.provider_session_id)
    .bind(&c.url)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    let record = payments::invoice_record(tx.conn(), org, document_id).await?;
    timeline::event(
        &mut tx,
        who,
        org,
        &record,
        &format!("Online payment opened at {p} for {}", payments::money(due)),
        json!({"provider": p, "session": c.provider_session_id}),
    )
    .await?;
    tx.commit().await?;
    Ok(CheckoutSession {
        provider: p.into(),
        provider_session_id: c.provider_session_id,
        url: c.url,
        amount_cents: due,
        currency,
    })
}

// ---------- pay links ----------

/// Where the public "pay online" page of a pay link lives, from the site's
/// root (prefix the base URL for a mail or a provider's return address).
pub fn pay_path(org_slug: &str, token: &str) -> String {
    format!("/o/{org_slug}/invoicing/pay/{token}")
}

/// The invoice's public "pay online" token, made on first use. Whoever has
/// it sees the invoice's number, amount due and a pay button, nothing else.
pub async fn pay_link(st: &AppState, org: OrgId, document_id: &str) -> CoreResult<String> {
    let mut tx = st.db.begin().await?;
    let token = pay_link_in(&mut tx, org, document_id).await?;
    tx.commit().await?;
    Ok(token)
}

/// [`pay_link`] in the caller's transaction.
pub async fn pay_link_in(tx: &mut shrooms_core::db::Tx, org: OrgId, document_id: &str) -> CoreResult<String> {
    let status: Option<String> =
        sqlx::query("SELECT status FROM inv_documents WHERE org_id = $1 AND id = $2 AND kind = 'invoice'")
            .bind(org.to_string())
            .bind(document_id)
            .fetch_optional(tx.conn())
            .await?
            .map(|r| r.try_get(0))
            .transpose()?;
    match status.as_deref() {
        None => return Err(CoreError::NotFound),
        Some("draft") => {
            return Err(CoreError::Conflict {
                field: None,
                message: "This invoice is a draft: validate it before asking for a payment.".into(),
            })
        }
        Some(_) => {}
    }
    sqlx::query(
        "INSERT INTO inv_pay_links (token, org_id, document_id, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (org_id, document_id) DO NOTHING",
    )
    .bind(shrooms_core::crypto::random_token())
    .bind(org.to_string())
    .bind(document_id)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    Ok(sqlx::query("SELECT token FROM inv_pay_links WHERE org_id = $1 AND document_id = $2")
        .bind(org.to_string())
        .bind(document_id)
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?)
}

/// Whether the organisation can take payments online (a provider with a key).
pub async fn online_enabled(conn: &mut sqlx::AnyConnection, org: OrgId) -> CoreResult<bool> {
    Ok(sqlx::query(
        "SELECT 1 FROM inv_provider_configs WHERE org_id = $1 AND enabled = 1 AND secret_key_sealed IS NOT NULL",
    )
    .bind(org.to_string())
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

#[derive(Clone, Debug, Serialize)]
pub struct PublicInvoice {
    pub org_id: String,
    pub org_name: String,
    pub document_id: String,
    pub number: String,
    pub issue_date: String,
    pub due_date: String,
    pub gross_cents: i64,
    pub due_cents: i64,
    pub currency: String,
    pub payable: bool,
    pub providers: Vec<String>,
}

pub async fn by_token(st: &AppState, token: &str) -> CoreResult<PublicInvoice> {
    if token.len() < 20 || token.len() > 100 {
        return Err(CoreError::NotFound);
    }
    let r = sqlx::query(&format!(
        "SELECT o.id, o.name, d.id, d.number, d.issue_date, d.due_date, d.gross_cents, \
         d.gross_cents - d.paid_cents - d.credited_cents, d.currency, CAST(CASE WHEN d.status IN {OPEN_STATUSES} THEN 1 ELSE 0 END AS BIGINT) \
         FROM inv_pay_links l JOIN inv_documents d ON d.id = l.document_id AND d.org_id = l.org_id \
         JOIN orgs o ON o.id = l.org_id WHERE l.token = $1"
    ))
    .bind(token)
    .fetch_optional(st.db.pool())
    .await?
    .ok_or(CoreError::NotFound)?;
    let org_id: String = r.try_get(0)?;
    let org: OrgId = shrooms_core::ids::parse_id(&org_id)?;
    let due: i64 = r.try_get(7)?;
    let mut providers = Vec::new();
    for p in PROVIDERS {
        if secrets(st, org, p).await?.is_some_and(|s| !s.secret_key.is_empty()) {
            providers.push(p.to_string());
        }
    }
    Ok(PublicInvoice {
        org_id,
        org_name: r.try_get(1)?,
        document_id: r.try_get(2)?,
        number: r.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
        issue_date: r.try_get::<Option<String>, _>(4)?.unwrap_or_default(),
        due_date: r.try_get::<Option<String>, _>(5)?.unwrap_or_default(),
        gross_cents: r.try_get(6)?,
        due_cents: due,
        currency: r.try_get(8)?,
        payable: r.try_get::<i64, _>(9)? == 1 && due > 0 && !providers.is_empty(),
        providers,
    })
}

// ---------- webhooks ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct WebhookOutcome {
    pub event_id: String,
    /// `paid`, `amount_mismatch` (paid, the difference kept as the customer's
    /// credit), `unknown_invoice`, `already_recorded`, `ignored` or `duplicate` (a replay).
    pub outcome: String,
    pub payment_id: Option<String>,
}

/// Verifies a webhook, then acts on it once: the event id is stored in the
/// same durable transaction as the payment, so a replayed event (or two
/// deliveries racing) posts nothing twice.
pub async fn handle_webhook(
    st: &AppState,
    p: &str,
    org_ref: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> CoreResult<WebhookOutcome> {
    let p = check_provider(p)?;
    let prov = provider(p).ok_or(CoreError::NotFound)?;
    let org_row = sqlx::query("SELECT id FROM orgs WHERE id = $1 OR slug = $1")
        .bind(org_ref)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or(CoreError::NotFound)?;
    let org: OrgId = shrooms_core::ids::parse_id(&org_row.try_get::<String, _>(0)?)?;
    let Some(s) = secrets(st, org, p).await? else { return Err(CoreError::NotFound) };
    let now = Timestamp::now().0 / 1000;
    let event = prov.parse_webhook(&s, headers, body, now).map_err(|e| match e {
        WebhookError::BadSignature => CoreError::BadRequest("The webhook's signature is not valid.".into()),
        WebhookError::Stale => CoreError::BadRequest(
            "The webhook's timestamp is too old (or in the future): refused as a possible replay.".into(),
        ),
        WebhookError::Malformed(m) => CoreError::BadRequest(format!("The webhook could not be read: {m}.")),
    })?;
    let who = Who::system(&format!("{MODULE}.{p}"));
    let mut tx = st.db.begin_durable().await?;
    let fresh = sqlx::query(
        "INSERT INTO inv_provider_events (provider, event_id, org_id, kind, outcome, received_at) \
         VALUES ($1, $2, $3, $4, 'received', $5) ON CONFLICT (provider, event_id) DO NOTHING",
    )
    .bind(p)
    .bind(&event.id)
    .bind(org.to_string())
    .bind(&event.kind_name)
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    if fresh.rows_affected() == 0 {
        return Ok(WebhookOutcome { event_id: event.id, outcome: "duplicate".into(), payment_id: None });
    }
    let (outcome, payment_id) = match event.kind {
        EventKind::Ignored => ("ignored".to_string(), None),
        EventKind::CheckoutCompleted { session_id, document_id, amount_cents, currency, payment_ref } => {
            completed(st, &mut tx, &who, org, p, &session_id, document_id, amount_cents, &currency, &payment_ref)
                .await?
        }
    };
    sqlx::query("UPDATE inv_provider_events SET outcome = $1, payment_id = $2 WHERE provider = $3 AND event_id = $4")
        .bind(&outcome)
        .bind(&payment_id)
        .bind(p)
        .bind(&event.id)
        .execute(tx.conn())
        .await?;
    audit::record(
        &mut tx,
        &who,
        Change {
            org: Some(org),
            action: "invoicing.provider.event",
            entity_type: "invoicing_provider_event",
            entity_id: event.id.clone(),
            before: None,
            after: Some(json!({"provider": p, "kind": event.kind_name, "outcome": outcome, "payment_id": payment_id})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(WebhookOutcome { event_id: event.id, outcome, payment_id })
}

#[allow(clippy::too_many_arguments)]
async fn completed(
    st: &AppState,
    tx: &mut shrooms_core::db::Tx,
    who: &Who,
    org: OrgId,
    p: &str,
    session_id: &str,
    document_id: Option<String>,
    amount: i64,
    currency: &str,
    payment_ref: &str,
) -> CoreResult<(String, Option<String>)> {
    // The same payment may come through two events (completed, then
    // async_payment_succeeded): the provider's reference is unique.
    let already = sqlx::query("SELECT id FROM inv_payments WHERE org_id = $1 AND provider = $2 AND provider_ref = $3")
        .bind(org.to_string())
        .bind(p)
        .bind(payment_ref)
        .fetch_optional(tx.conn())
        .await?;
    if let Some(r) = already {
        return Ok(("already_recorded".into(), Some(r.try_get(0)?)));
    }
    let session = sqlx::query(
        "SELECT document_id, amount_cents FROM inv_checkout_sessions WHERE org_id = $1 AND provider = $2 AND provider_session_id = $3",
    )
    .bind(org.to_string())
    .bind(p)
    .bind(session_id)
    .fetch_optional(tx.conn())
    .await?;
    let (doc, expected) = match session {
        Some(r) => (Some(r.try_get::<String, _>(0)?), Some(r.try_get::<i64, _>(1)?)),
        None => (document_id, None),
    };
    let invoice = match &doc {
        Some(d) => sqlx::query(&format!(
            "SELECT customer_id, currency, CASE WHEN status IN {OPEN_STATUSES} THEN gross_cents - paid_cents - credited_cents ELSE 0 END \
             FROM inv_documents WHERE org_id = $1 AND id = $2 AND kind = 'invoice'"
        ))
        .bind(org.to_string())
        .bind(d)
        .fetch_optional(tx.conn())
        .await?,
        None => None,
    };
    let (Some(doc), Some(invoice)) = (doc, invoice) else {
        tracing::warn!(provider = p, session = session_id, "paid checkout for no invoice of this organisation");
        return Ok(("unknown_invoice".into(), None));
    };
    let customer_id: String = invoice.try_get(0)?;
    let inv_currency: String = invoice.try_get(1)?;
    let due: i64 = invoice.try_get(2)?;
    if !currency.is_empty() && !currency.eq_ignore_ascii_case(&inv_currency) {
        tracing::warn!(provider = p, session = session_id, "paid checkout in another currency");
        return Ok(("currency_mismatch".into(), None));
    }
    if amount <= 0 {
        return Ok(("ignored".into(), None));
    }
    let to_invoice = amount.min(due.max(0));
    let mismatch = expected.is_some_and(|e| e != amount) || amount > due;
    let allocations = if to_invoice > 0 {
        vec![AllocationInput { invoice_id: doc.clone(), amount_cents: to_invoice }]
    } else {
        vec![]
    };
    let id = payments::record_in(
        st,
        tx,
        who,
        org,
        NewPayment {
            customer_id,
            method: "online".into(),
            amount_cents: amount,
            received_date: Day::today(),
            payer: String::new(),
            cheque_bank: String::new(),
            cheque_number: String::new(),
            reference: session_id.chars().take(200).collect(),
            provider: Some(p.to_string()),
            provider_ref: Some(payment_ref.to_string()),
            // Money received is never refused: what exceeds the amount due
            // stays as the customer's credit.
            allocations: Some(allocations),
            keep_credit: true,
            notes: String::new(),
        },
    )
    .await?;
    sqlx::query(
        "UPDATE inv_checkout_sessions SET status = 'completed', payment_id = $1, completed_at = $2 \
         WHERE org_id = $3 AND provider = $4 AND provider_session_id = $5",
    )
    .bind(&id)
    .bind(Timestamp::now().0)
    .bind(org.to_string())
    .bind(p)
    .bind(session_id)
    .execute(tx.conn())
    .await?;
    if mismatch {
        let record = payments::invoice_record(tx.conn(), org, &doc).await?;
        timeline::event(
            tx,
            who,
            org,
            &record,
            &format!(
                "Online payment of {} while {} was due: the difference is kept as the customer's credit",
                payments::money(amount),
                payments::money(due)
            ),
            json!({"payment_id": id, "amount_cents": amount, "due_cents": due}),
        )
        .await?;
    }
    Ok((if mismatch { "amount_mismatch" } else { "paid" }.into(), Some(id)))
}
