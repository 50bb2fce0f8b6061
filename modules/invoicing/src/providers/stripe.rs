//! Stripe Checkout: a hosted payment page for an invoice's amount due, and
//! its webhooks. Creating a session is one form POST to
//! `{api_base}/v1/checkout/sessions` with the organisation's secret key
//! (`api_base` is `https://api.stripe.com` unless the organisation set a
//! local stand-in). A webhook is trusted only with a valid `Stripe-Signature`
//! header: `t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload" with the
//! endpoint's secret>`, compared in constant time, at most 5 minutes old.

use super::{BoxFuture, Checkout, CheckoutRequest, EventKind, PaymentProvider, Secrets, WebhookError, WebhookEvent};
use axum::http::HeaderMap;
use shrooms_core::crypto;

pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// How old a signed webhook may be, in seconds, either way.
pub const TOLERANCE_SECS: i64 = 300;

pub struct Stripe;

/// Checks a `Stripe-Signature` header against the payload. Any of the `v1`
/// signatures may match (Stripe sends several while a secret is rolled).
pub fn verify_signature(header: &str, payload: &[u8], secret: &str, now_secs: i64) -> Result<(), WebhookError> {
    let mut t: Option<i64> = None;
    let mut sigs: Vec<&str> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse().ok(),
            Some(("v1", v)) => sigs.push(v),
            _ => {}
        }
    }
    let Some(t) = t else { return Err(WebhookError::BadSignature) };
    if sigs.is_empty() {
        return Err(WebhookError::BadSignature);
    }
    let mut signed = t.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(payload);
    let expected = crypto::hex(&crypto::hmac_sha256(secret.as_bytes(), &signed));
    if !sigs.iter().any(|s| crypto::constant_time_eq(s.as_bytes(), expected.as_bytes())) {
        return Err(WebhookError::BadSignature);
    }
    // The timestamp is checked after the signature, so a stale answer tells
    // nothing to someone who cannot sign.
    if (now_secs - t).abs() > TOLERANCE_SECS {
        return Err(WebhookError::Stale);
    }
    Ok(())
}

/// The `Stripe-Signature` header for a payload: what Stripe sends, and what
/// tests sign their recorded payloads with.
pub fn sign(payload: &[u8], secret: &str, t: i64) -> String {
    let mut signed = t.to_string().into_bytes();
    signed.push(b'.');
    signed.extend_from_slice(payload);
    format!("t={t},v1={}", crypto::hex(&crypto::hmac_sha256(secret.as_bytes(), &signed)))
}

/// Reads an event's JSON into the normalised event.
pub fn parse_event(payload: &[u8]) -> Result<WebhookEvent, WebhookError> {
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| WebhookError::Malformed("the payload is not JSON".into()))?;
    let id = v["id"].as_str().filter(|s| !s.is_empty() && s.len() <= 255);
    let kind = v["type"].as_str();
    let (Some(id), Some(kind)) = (id, kind) else {
        return Err(WebhookError::Malformed("an event has an id and a type".into()));
    };
    let o = &v["data"]["object"];
    let event = match kind {
        "checkout.session.completed" | "checkout.session.async_payment_succeeded"
            if o["payment_status"].as_str() == Some("paid") =>
        {
            let session_id = o["id"].as_str().ok_or_else(|| WebhookError::Malformed("no session id".into()))?;
            let amount = o["amount_total"]
                .as_i64()
                .filter(|a| *a >= 0)
                .ok_or_else(|| WebhookError::Malformed("no amount_total".into()))?;
            EventKind::CheckoutCompleted {
                session_id: session_id.to_string(),
                document_id: o["metadata"]["document_id"]
                    .as_str()
                    .or(o["client_reference_id"].as_str())
                    .map(str::to_string),
                amount_cents: amount,
                currency: o["currency"].as_str().unwrap_or("").to_ascii_uppercase(),
                payment_ref: o["payment_intent"].as_str().unwrap_or(session_id).to_string(),
            }
        }
        _ => EventKind::Ignored,
    };
    Ok(WebhookEvent { id: id.to_string(), kind_name: kind.to_string(), kind: event })
}

impl PaymentProvider for Stripe {
    fn id(&self) -> &'static str {
        "stripe"
    }

    fn create_checkout<'a>(
        &'a self,
        s: &'a Secrets,
        r: &'a CheckoutRequest,
    ) -> BoxFuture<'a, anyhow::Result<Checkout>> {
        Box::pin(async move {
            let base = if s.api_base.is_empty() { DEFAULT_API_BASE } else { s.api_base.as_str() };
            let mut form: Vec<(&str, String)> = vec![
                ("mode", "payment".into()),
                ("success_url", r.success_url.clone()),
                ("cancel_url", r.cancel_url.clone()),
                ("client_reference_id", r.document_id.clone()),
                ("metadata[document_id]", r.document_id.clone()),
                ("metadata[org_id]", r.org_id.clone()),
                ("line_items[0][quantity]", "1".into()),
                ("line_items[0][price_data][currency]", r.currency.to_ascii_lowercase()),
                ("line_items[0][price_data][unit_amount]", r.amount_cents.to_string()),
                ("line_items[0][price_data][product_data][name]", r.label.clone()),
            ];
            if !r.customer_email.is_empty() {
                form.push(("customer_email", r.customer_email.clone()));
            }
            let body = serde_urlencoded::to_string(&form)?;
            let (status, text) = super::https::post_form(base, "/v1/checkout/sessions", &s.secret_key, &body).await?;
            let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if !(200..300).contains(&status) {
                let msg = v["error"]["message"].as_str().unwrap_or("no message");
                anyhow::bail!("Stripe answered {status}: {msg}");
            }
            match (v["id"].as_str(), v["url"].as_str()) {
                (Some(id), Some(url)) if url.starts_with("https://") || url.starts_with("http://") => {
                    Ok(Checkout { provider_session_id: id.to_string(), url: url.to_string() })
                }
                _ => anyhow::bail!("Stripe's answer has no session id or URL"),
            }
        })
    }

    fn parse_webhook(
        &self,
        s: &Secrets,
        headers: &HeaderMap,
        body: &[u8],
        now_secs: i64,
    ) -> Result<WebhookEvent, WebhookError> {
        let header = headers.get("stripe-signature").and_then(|v| v.to_str().ok()).ok_or(WebhookError::BadSignature)?;
        if s.webhook_secret.is_empty() {
            return Err(WebhookError::BadSignature);
        }
        verify_signature(header, body, &s.webhook_secret, now_secs)?;
        parse_event(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn a_good_signature_passes_and_any_change_fails() {
        let body = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
        let h = sign(body, SECRET, 1_700_000_000);
        assert!(verify_signature(&h, body, SECRET, 1_700_000_010).is_ok());
        assert!(matches!(verify_signature(&h, b"{}", SECRET, 1_700_000_010), Err(WebhookError::BadSignature)));
        assert!(matches!(verify_signature(&h, body, "other", 1_700_000_010), Err(WebhookError::BadSignature)));
        assert!(matches!(
            verify_signature("t=1700000000", body, SECRET, 1_700_000_010),
            Err(WebhookError::BadSignature)
        ));
        assert!(matches!(verify_signature("garbage", body, SECRET, 1_700_000_010), Err(WebhookError::BadSignature)));
        // Rolled secrets: one good v1 among several is enough.
        let two = format!("{h},v1=00ff");
        assert!(verify_signature(&two, body, SECRET, 1_700_000_000).is_ok());
    }

    #[test]
    fn old_or_future_signatures_are_stale() {
        let body = b"{}";
        let h = sign(body, SECRET, 1_700_000_000);
        assert!(verify_signature(&h, body, SECRET, 1_700_000_300).is_ok());
        assert!(matches!(verify_signature(&h, body, SECRET, 1_700_000_301), Err(WebhookError::Stale)));
        assert!(matches!(verify_signature(&h, body, SECRET, 1_699_999_000), Err(WebhookError::Stale)));
    }

    #[test]
    fn checkout_events_are_normalised() {
        let body = br#"{"id":"evt_9","type":"checkout.session.completed","data":{"object":{"id":"cs_1","object":"checkout.session","payment_status":"paid","amount_total":2500,"currency":"eur","client_reference_id":"doc-1","metadata":{"document_id":"doc-1"},"payment_intent":"pi_7"}}}"#;
        let e = parse_event(body).unwrap();
        assert_eq!(e.id, "evt_9");
        match e.kind {
            EventKind::CheckoutCompleted { session_id, document_id, amount_cents, currency, payment_ref } => {
                assert_eq!(
                    (
                        session_id.as_str(),
                        document_id.as_deref(),
                        amount_cents,
                        currency.as_str(),
                        payment_ref.as_str()
                    ),
                    ("cs_1", Some("doc-1"), 2500, "EUR", "pi_7")
                );
            }
            _ => panic!("not a completed checkout"),
        }
        let unpaid = br#"{"id":"evt_2","type":"checkout.session.completed","data":{"object":{"id":"cs_1","payment_status":"unpaid","amount_total":2500}}}"#;
        assert!(matches!(parse_event(unpaid).unwrap().kind, EventKind::Ignored));
        assert!(matches!(parse_event(b"[]"), Err(WebhookError::Malformed(_))));
    }
}
