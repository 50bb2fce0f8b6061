//! Self-service: the public join form (settings, join requests approved by a
//! secretary or at once), the member space of a signed-in person (their
//! memberships, dues, receipts, card, mandates, profile), profile changes
//! waiting for approval, and card revocation.
//!
//! The member space is reached through the person↔account link of the core
//! (`people::of_account`): every read and write made with the grant it gives
//! is scoped here to that one person.

use crate::error::{MemError, MemResult};
use crate::service::{
    self, display_name, lock_member, new_id, person_in, record, Address, JoinInput, MemberPerson, Membership,
    MembershipType,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shrooms_core::audit::Who;
use shrooms_core::db::Tx;
use shrooms_core::error::FieldError;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::module::RecordRef;
use shrooms_core::orgs::Org;
use shrooms_core::permissions::{Access, CanAdmin, CanRead, CanWrite};
use shrooms_core::web::{AppState, OrgCtx};
use shrooms_core::{timeline, CoreError, Db};
use sqlx::any::AnyRow;
use sqlx::Row;
use utoipa::ToSchema;

/// The profile fields a member may change themselves; the organisation
/// chooses which of them wait for a secretary's approval.
pub const PROFILE_FIELDS: [&str; 5] = ["given_name", "family_name", "email", "phone", "address"];

/// Join submissions per address within an hour before the form refuses (429).
const MAX_JOINS_PER_HOUR: i64 = 20;

// ---------- settings ----------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JoinMode {
    /// A join request waits for a secretary's approval.
    Approval,
    /// The membership period is recorded at once.
    Automatic,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SelfSettings {
    /// Whether the public join form is open.
    pub join_enabled: bool,
    pub join_mode: JoinMode,
    /// The membership types the form offers.
    pub join_type_ids: Vec<String>,
    /// The organisation's terms, which a visitor must accept to join.
    pub terms_text: String,
    /// What to do to pay the dues (shown after joining): cheque to…, transfer to…
    pub payment_instructions: String,
    /// Profile fields whose change by the member waits for approval:
    /// `given_name`, `family_name`, `email`, `phone`, `address`.
    pub checked_fields: Vec<String>,
}

impl Default for SelfSettings {
    fn default() -> Self {
        SelfSettings {
            join_enabled: false,
            join_mode: JoinMode::Approval,
            join_type_ids: vec![],
            terms_text: String::new(),
            payment_instructions: String::new(),
            checked_fields: vec![],
        }
    }
}

fn json_list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

pub async fn self_settings(db: &Db, org: OrgId) -> MemResult<SelfSettings> {
    let r = sqlx::query(
        "SELECT join_enabled, join_mode, join_type_ids, terms_text, payment_instructions, checked_fields \
         FROM mem_selfservice WHERE org_id = $1",
    )
    .bind(org.to_string())
    .fetch_optional(db.pool())
    .await?;
    let Some(r) = r else { return Ok(SelfSettings::default()) };
    Ok(SelfSettings {
        join_enabled: r.try_get::<i64, _>(0)? != 0,
        join_mode: if r.try_get::<String, _>(1)? == "automatic" { JoinMode::Automatic } else { JoinMode::Approval },
        join_type_ids: json_list(&r.try_get::<String, _>(2)?),
        terms_text: r.try_get(3)?,
        payment_instructions: r.try_get(4)?,
        checked_fields: json_list(&r.try_get::<String, _>(5)?),
    })
}

pub async fn save_self_settings(db: &Db, who: &Who, cap: &CanAdmin, s: SelfSettings) -> MemResult<SelfSettings> {
    let mut errors = Vec::new();
    let types = service::types(db, &cap.as_write().as_read()).await?;
    let mut ids = Vec::new();
    for (i, id) in s.join_type_ids.iter().enumerate() {
        match types.iter().find(|t| &t.id == id) {
            Some(t) if t.archived => errors.push(FieldError::new(
                format!("join_type_ids[{i}]"),
                format!("The type {} is archived: nobody joins it any more.", t.name),
            )),
            Some(_) if !ids.contains(id) => ids.push(id.clone()),
            Some(_) => {}
            None => errors.push(FieldError::new(format!("join_type_ids[{i}]"), "No such membership type.")),
        }
    }
    if s.join_enabled && ids.is_empty() && errors.is_empty() {
        errors.push(FieldError::new("join_type_ids", "Choose at least one membership type the form offers."));
    }
    let terms = service::text_field(&mut errors, "terms_text", &s.terms_text, 10_000, s.join_enabled);
    let pay = service::text_field(&mut errors, "payment_instructions", &s.payment_instructions, 5_000, false);
    let mut checked = Vec::new();
    for (i, f) in s.checked_fields.iter().enumerate() {
        if !PROFILE_FIELDS.contains(&f.as_str()) {
            errors.push(FieldError::new(
                format!("checked_fields[{i}]"),
                "Choose among given_name, family_name, email, phone and address.",
            ));
        } else if !checked.contains(f) {
            checked.push(f.clone());
        }
    }
    MemError::check(errors)?;
    let clean = SelfSettings {
        join_enabled: s.join_enabled,
        join_mode: s.join_mode,
        join_type_ids: ids,
        terms_text: terms,
        payment_instructions: pay,
        checked_fields: checked,
    };
    let before = self_settings(db, cap.org()).await?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO mem_selfservice (org_id, join_enabled, join_mode, join_type_ids, terms_text, payment_instructions, \
         checked_fields, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (org_id) DO UPDATE SET \
         join_enabled = $2, join_mode = $3, join_type_ids = $4, terms_text = $5, payment_instructions = $6, \
         checked_fields = $7, updated_at = $8",
    )
    .bind(cap.org().to_string())
    .bind(clean.join_enabled as i64)
    .bind(if clean.join_mode == JoinMode::Automatic { "automatic" } else { "approval" })
    .bind(json!(clean.join_type_ids).to_string())
    .bind(&clean.terms_text)
    .bind(&clean.payment_instructions)
    .bind(json!(clean.checked_fields).to_string())
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    let org = cap.org().to_string();
    record(
        &mut tx,
        who,
        cap.org(),
        "members.selfservice.settings",
        "members_settings",
        &org,
        Some(json!(before)),
        Some(json!(clean)),
    )
    .await?;
    tx.commit().await?;
    Ok(clean)
}

// ---------- the public join form ----------

/// What the join form offers: the types and the terms.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JoinOffer {
    pub org_name: String,
    pub types: Vec<MembershipType>,
    pub terms_text: String,
    /// `approval` (a secretary approves each request) or `automatic`.
    pub join_mode: JoinMode,
}

/// The offer of an organisation whose form is open; 404 otherwise.
pub async fn offer(db: &Db, org: &Org) -> MemResult<JoinOffer> {
    let s = self_settings(db, org.id).await?;
    if !s.join_enabled {
        return Err(MemError::Core(CoreError::NotFound));
    }
    let mut conn = db.pool().acquire().await?;
    let mut types = Vec::new();
    for id in &s.join_type_ids {
        if let Some(t) = service::type_in(&mut conn, org.id, id).await? {
            if !t.archived {
                types.push(t);
            }
        }
    }
    Ok(JoinOffer { org_name: org.name.clone(), types, terms_text: s.terms_text, join_mode: s.join_mode })
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinForm {
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub family_name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub phone: String,
    #[serde(default)]
    pub address: Address,
    #[serde(default)]
    pub type_id: String,
    /// The tier, for a type with a fee by tier.
    pub tier: Option<String>,
    /// The amount chosen, for a type with a free amount (at least its minimum).
    pub amount_cents: Option<i64>,
    /// The visitor accepts the organisation's terms (required).
    #[serde(default)]
    pub consent: bool,
    /// A random id the form makes once: the same submission sent again
    /// answers what the first one recorded.
    pub submission_id: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JoinAnswer {
    pub request_id: String,
    /// `pending` (waits for a secretary), `approved` (the membership is
    /// recorded), `refused`.
    pub status: String,
    pub type_name: String,
    /// The dues of the membership, in cents.
    pub fee_cents: i64,
    /// True when this submission (or an open request of the same person for
    /// the same type) had already been recorded: nothing new was written.
    pub already_recorded: bool,
    /// What to do to pay (the organisation's instructions; receipt path).
    pub payment_instructions: String,
    /// Where to pay online, once the invoicing path is wired ([`after_join`]).
    pub pay_url: Option<String>,
}

/// After a join was recorded (or approved): where the new member pays their
/// dues online. With dues billed by invoice and online payment set up in
/// invoicing, the invoice's public pay page; `None` otherwise (dues recorded
/// as receipts by the treasurer, nothing left to pay, no provider).
pub async fn after_join(db: &Db, org: &Org, request: &JoinRequest) -> MemResult<Option<String>> {
    match &request.period_id {
        Some(period) => crate::billing::pay_path_of_period(db, org, period).await,
        None => Ok(None),
    }
}

fn check_phone(errors: &mut Vec<FieldError>, field: &str, v: &str) -> Option<String> {
    let p = v.trim().to_string();
    if p.is_empty() {
        return None;
    }
    if p.len() > 40 || !p.chars().all(|c| c.is_ascii_digit() || " +-.()".contains(c)) {
        errors.push(FieldError::new(field, "Use digits, spaces and + - . ( ) only."));
    }
    Some(p)
}

fn check_email(errors: &mut Vec<FieldError>, field: &str, v: &str) -> String {
    match shrooms_core::identity::normalize_email(v) {
        Ok(e) => e,
        Err(e) => {
            errors.push(FieldError::new(field, e.message));
            v.trim().to_string()
        }
    }
}

struct CheckedJoin {
    given: String,
    family: String,
    email: String,
    phone: Option<String>,
    address: Address,
    type_: MembershipType,
    tier: Option<String>,
    amount: Option<i64>,
    fee: i64,
    submission: String,
}

async fn check_join(db: &Db, org: OrgId, zone: &str, s: &SelfSettings, f: &JoinForm) -> MemResult<CheckedJoin> {
    let mut errors = Vec::new();
    let given = service::text_field(&mut errors, "given_name", &f.given_name, 100, true);
    let family = service::text_field(&mut errors, "family_name", &f.family_name, 100, true);
    let email = check_email(&mut errors, "email", &f.email);
    let phone = check_phone(&mut errors, "phone", &f.phone);
    let address = f.address.check("address.", &mut errors);
    if !f.consent {
        errors.push(FieldError::new("consent", "Accept the organisation's terms to join."));
    }
    let submission = service::check_key(&f.submission_id, "submission_id", &mut errors).unwrap_or_else(new_id);
    let mut conn = db.pool().acquire().await?;
    let t = if s.join_type_ids.contains(&f.type_id) {
        service::type_in(&mut conn, org, &f.type_id).await?.filter(|t| !t.archived)
    } else {
        None
    };
    let mut fee = 0;
    let mut tier = None;
    match &t {
        None => errors.push(FieldError::new("type_id", "Choose one of the membership types offered.")),
        Some(t) => match t.rules().fee(service::today(zone), f.tier.as_deref(), f.amount_cents) {
            Ok((c, ti)) => {
                fee = c;
                tier = ti;
            }
            Err(e) => errors.push(e),
        },
    }
    MemError::check(errors)?;
    let Some(type_) = t else { unreachable!("checked above") };
    Ok(CheckedJoin {
        given,
        family,
        email,
        phone,
        address,
        amount: if type_.fee_rule == crate::domain::FeeRule::FreeAmount { Some(fee) } else { None },
        type_,
        tier,
        fee,
        submission,
    })
}

/// The notification of a join request waiting for approval, sent to whoever
/// may write members in the organisation.
pub const JOIN_REQUEST_NOTICE: &str = "members.join_request";

/// The notification of a profile change waiting for approval, sent to the
/// same people.
pub const CHANGE_REQUEST_NOTICE: &str = "members.change_request";

/// What the people who may decide a request read of it: "<requester>
/// <verb of `kind`> <title>", the excerpt, and the link to the requests page.
fn request_notice(
    kind: &'static str,
    who: &Who,
    org: &Org,
    requester: &str,
    title: String,
    excerpt: String,
) -> shrooms_core::notify::Notice {
    shrooms_core::notify::Notice {
        kind,
        org: Some(org.id),
        actor: who.account,
        actor_label: requester.trim().to_string(),
        title,
        excerpt,
        status: None,
        link: format!("/o/{}/members/requests", org.slug),
    }
}

/// Tells the accounts of the organisation that may decide a request (write
/// access to members through their role, owners and administrators
/// included; the requester, the notice's actor, left out) that one arrived,
/// in the request's transaction. Each one's preferences for the notice's
/// kind say whether it shows under the bell and whether it is mailed at
/// once or in the daily digest.
async fn notify_deciders(
    st: &AppState,
    tx: &mut Tx,
    org: OrgId,
    notice: &shrooms_core::notify::Notice,
) -> MemResult<()> {
    let deciders = shrooms_core::orgs::accounts_with_access(tx, &st.modules, org, crate::MODULE, Access::Write).await?;
    shrooms_core::notify::send(st, tx, &deciders, notice).await?;
    Ok(())
}

/// Records a join from the public form: the person (the one of the
/// organisation with this e-mail, or a new one), and a join request that
/// waits for approval, or the membership period at once when the settings
/// say "automatic". The same submission sent again, or a second one for a
/// type the person already has an open request for, answers what was
/// recorded: never a second person, never a second request (nor a second
/// notification of the secretaries).
pub async fn submit_join(
    st: &AppState,
    who: &Who,
    grant: &CanWrite,
    org: &Org,
    form: JoinForm,
    address: &str,
) -> MemResult<JoinAnswer> {
    let db = &st.db;
    let s = self_settings(db, org.id).await?;
    if !s.join_enabled {
        return Err(MemError::Core(CoreError::NotFound));
    }
    if let Some(a) = answer_of_submission(db, org, &s, form.submission_id.as_deref()).await? {
        return Ok(a);
    }
    let subject = format!("members.join:{}:{address}", org.id);
    shrooms_core::identity::rate_limit(db, &subject, MAX_JOINS_PER_HOUR, 60).await?;
    let c = check_join(db, org.id, &org.timezone, &s, &form).await?;
    let oid = org.id;
    if s.join_mode == JoinMode::Automatic {
        // Dues billed by invoice: the catalogue entry exists before the join's transaction.
        crate::billing::prepare(db, oid).await?;
    }
    let mut tx = db.begin().await?;
    // One join at a time per organisation: two forms sent at once with the
    // same e-mail cannot both create the person. SQLite write transactions
    // are already one at a time; PostgreSQL takes the settings row (a lock
    // that writes no new row version, which fifty waiters on an UPDATE
    // made slow).
    if tx.backend() == shrooms_core::db::Backend::Postgres {
        sqlx::query("SELECT org_id FROM mem_selfservice WHERE org_id = $1 FOR UPDATE")
            .bind(oid.to_string())
            .fetch_optional(tx.conn())
            .await?;
    }
    if let Some(id) = request_by_submission(&mut tx, oid, &c.submission).await? {
        drop(tx);
        return answer_of(db, org, &s, &id, true).await;
    }
    let person = match person_by_email(&mut tx, oid, &c.email).await? {
        Some(p) => p,
        None => {
            shrooms_core::people::insert_bulk(
                &mut tx,
                grant,
                &[(c.given.clone(), c.family.clone(), Some(c.email.clone()), c.phone.clone())],
            )
            .await?;
            let id = person_by_email(&mut tx, oid, &c.email).await?.ok_or(MemError::Core(CoreError::NotFound))?;
            lock_member(&mut tx, oid, &id).await?;
            sqlx::query(
                "UPDATE mem_profiles SET street = $1, postcode = $2, city = $3, country = $4 WHERE org_id = $5 AND person_id = $6",
            )
            .bind(&c.address.street)
            .bind(&c.address.postcode)
            .bind(&c.address.city)
            .bind(if c.address.is_empty() { "" } else { c.address.country.as_str() })
            .bind(oid.to_string())
            .bind(&id)
            .execute(tx.conn())
            .await?;
            record(
                &mut tx,
                who,
                oid,
                "person.create",
                "person",
                &id,
                None,
                Some(json!({"given_name": c.given, "family_name": c.family, "email": c.email, "phone": c.phone,
                    "address": c.address, "source": "members.join"})),
            )
            .await?;
            id
        }
    };
    // An open request of the same person for the same type: the same answer.
    let open_key = format!("{person}:{}", c.type_.id);
    if let Some(r) = sqlx::query("SELECT id FROM mem_join_requests WHERE org_id = $1 AND open_key = $2")
        .bind(oid.to_string())
        .bind(&open_key)
        .fetch_optional(tx.conn())
        .await?
    {
        let id: String = r.try_get(0)?;
        drop(tx);
        return answer_of(db, org, &s, &id, true).await;
    }
    let submitted = json!({"given_name": c.given, "family_name": c.family, "email": c.email, "phone": c.phone,
        "address": c.address});
    let id = new_id();
    let (status, period_id, open) = match s.join_mode {
        JoinMode::Approval => ("pending", None, Some(open_key)),
        JoinMode::Automatic => {
            // Already a member of this type for today (a resent form): the same answer.
            if let Some(prev) = current_approved(&mut tx, oid, &org.timezone, &person, &c.type_.id).await? {
                drop(tx);
                return answer_of(db, org, &s, &prev, true).await;
            }
            let input = JoinInput {
                type_id: c.type_.id.clone(),
                starts_on: None,
                tier: c.tier.clone(),
                amount_cents: c.amount,
                request_key: Some(format!("join:{id}")),
            };
            let w = service::join_in(&mut tx, who, oid, service::today(&org.timezone), &person, &input)
                .await
                .map_err(already_member)?;
            ("approved", Some(w.period.id), None)
        }
    };
    let now = Timestamp::now().0;
    sqlx::query(
        "INSERT INTO mem_join_requests (id, org_id, person_id, type_id, tier, amount_cents, fee_cents, submitted, \
         submission_id, open_key, status, period_id, decided_at, decided_by, note, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, '', $15)",
    )
    .bind(&id)
    .bind(oid.to_string())
    .bind(&person)
    .bind(&c.type_.id)
    .bind(&c.tier)
    .bind(c.amount)
    .bind(c.fee)
    .bind(submitted.to_string())
    .bind(&c.submission)
    .bind(&open)
    .bind(status)
    .bind(&period_id)
    .bind(if status == "approved" { Some(now) } else { None })
    .bind(if status == "approved" { Some("automatic") } else { None })
    .bind(now)
    .execute(tx.conn())
    .await
    .map_err(|e| MemError::Core(CoreError::from(e).on_conflict("submission_id", "This form was already sent.")))?;
    record(
        &mut tx,
        who,
        oid,
        "members.join_request.submit",
        "membership_join_request",
        &id,
        None,
        Some(json!({"person": person, "type": c.type_.id, "status": status, "fee_cents": c.fee, "period": period_id})),
    )
    .await?;
    let name = format!("{} {}", c.given, c.family);
    let text = if status == "approved" {
        format!("Joined through the public form ({}): membership recorded.", c.type_.name)
    } else {
        format!("Asked to join through the public form ({}): waiting for approval.", c.type_.name)
    };
    timeline::event(&mut tx, who, oid, &person_record(org, &person, &name), &text, json!({"join_request": id})).await?;
    if status == "pending" {
        let notice = request_notice(JOIN_REQUEST_NOTICE, who, org, &name, c.type_.name.clone(), c.email.clone());
        notify_deciders(st, &mut tx, oid, &notice).await?;
    }
    tx.commit().await?;
    answer_of(db, org, &s, &id, false).await
}

/// A join that overlaps a period of the same type: the visitor is already a member.
fn already_member(e: MemError) -> MemError {
    match e {
        MemError::Invalid(v) if v.iter().any(|f| f.field == "starts_on") => {
            MemError::field("type_id", "You are already a member of this type for this period.")
        }
        other => other,
    }
}

fn person_record(org: &Org, person: &str, name: &str) -> RecordRef {
    RecordRef {
        entity_type: "person".into(),
        entity_id: person.to_string(),
        title: name.trim().to_string(),
        path: format!("/o/{}/people/{person}", org.slug),
    }
}

async fn person_by_email(tx: &mut Tx, org: OrgId, email: &str) -> MemResult<Option<String>> {
    Ok(sqlx::query("SELECT id FROM people WHERE org_id = $1 AND email = $2 ORDER BY created_at, id LIMIT 1")
        .bind(org.to_string())
        .bind(email)
        .fetch_optional(tx.conn())
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?)
}

async fn request_by_submission(tx: &mut Tx, org: OrgId, submission: &str) -> MemResult<Option<String>> {
    Ok(sqlx::query("SELECT id FROM mem_join_requests WHERE org_id = $1 AND submission_id = $2")
        .bind(org.to_string())
        .bind(submission)
        .fetch_optional(tx.conn())
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?)
}

/// The approved request of this person and type whose period covers today or later.
async fn current_approved(
    tx: &mut Tx,
    org: OrgId,
    zone: &str,
    person: &str,
    type_id: &str,
) -> MemResult<Option<String>> {
    let today = service::today(zone).to_string();
    Ok(sqlx::query(
        "SELECT r.id FROM mem_join_requests r JOIN mem_periods p ON p.org_id = r.org_id AND p.id = r.period_id \
         WHERE r.org_id = $1 AND r.person_id = $2 AND r.type_id = $3 AND r.status = 'approved' \
         AND p.closed_on IS NULL AND (p.ends_on IS NULL OR p.ends_on >= $4) ORDER BY r.created_at DESC LIMIT 1",
    )
    .bind(org.to_string())
    .bind(person)
    .bind(type_id)
    .bind(today)
    .fetch_optional(tx.conn())
    .await?
    .map(|r| r.try_get::<String, _>(0))
    .transpose()?)
}

async fn answer_of_submission(
    db: &Db,
    org: &Org,
    s: &SelfSettings,
    submission: Option<&str>,
) -> MemResult<Option<JoinAnswer>> {
    let Some(k) = submission.map(str::trim).filter(|k| !k.is_empty()) else { return Ok(None) };
    let id = sqlx::query("SELECT id FROM mem_join_requests WHERE org_id = $1 AND submission_id = $2")
        .bind(org.id.to_string())
        .bind(k)
        .fetch_optional(db.pool())
        .await?
        .map(|r| r.try_get::<String, _>(0))
        .transpose()?;
    match id {
        Some(id) => Ok(Some(answer_of(db, org, s, &id, true).await?)),
        None => Ok(None),
    }
}

async fn answer_of(db: &Db, org: &Org, s: &SelfSettings, id: &str, already: bool) -> MemResult<JoinAnswer> {
    let r = join_request_in(db, org.id, id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    Ok(JoinAnswer {
        request_id: r.id.clone(),
        status: r.status.clone(),
        type_name: r.type_name.clone(),
        fee_cents: r.fee_cents,
        already_recorded: already,
        payment_instructions: s.payment_instructions.clone(),
        pay_url: after_join(db, org, &r).await?,
    })
}

// ---------- join requests (the secretary's side) ----------

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct JoinRequest {
    pub id: String,
    pub person_id: String,
    pub person_name: String,
    pub email: Option<String>,
    pub type_id: String,
    pub type_name: String,
    pub tier: Option<String>,
    pub fee_cents: i64,
    /// What the visitor typed (names, e-mail, phone, address): the person
    /// record of an existing member is not overwritten by the form.
    #[schema(value_type = Object)]
    pub submitted: Value,
    /// `pending`, `approved` or `refused`.
    pub status: String,
    /// The membership period recorded on approval.
    pub period_id: Option<String>,
    pub note: String,
    pub created_at: String,
    pub decided_at: Option<String>,
}

const JOIN_SELECT: &str = "SELECT r.id, r.person_id, p.given_name, p.family_name, p.email, r.type_id, t.name, r.tier, \
     r.fee_cents, r.submitted, r.status, r.period_id, r.note, r.created_at, r.decided_at \
     FROM mem_join_requests r JOIN people p ON p.id = r.person_id JOIN mem_types t ON t.id = r.type_id";

fn join_row(r: &AnyRow) -> MemResult<JoinRequest> {
    let given: String = r.try_get(2)?;
    let family: String = r.try_get(3)?;
    Ok(JoinRequest {
        id: r.try_get(0)?,
        person_id: r.try_get(1)?,
        person_name: format!("{given} {family}").trim().to_string(),
        email: r.try_get(4)?,
        type_id: r.try_get(5)?,
        type_name: r.try_get(6)?,
        tier: r.try_get(7)?,
        fee_cents: r.try_get(8)?,
        submitted: serde_json::from_str(&r.try_get::<String, _>(9)?).unwrap_or(Value::Null),
        status: r.try_get(10)?,
        period_id: r.try_get(11)?,
        note: r.try_get(12)?,
        created_at: Timestamp(r.try_get(13)?).rfc3339(),
        decided_at: r.try_get::<Option<i64>, _>(14)?.map(|t| Timestamp(t).rfc3339()),
    })
}

async fn join_request_in(db: &Db, org: OrgId, id: &str) -> MemResult<Option<JoinRequest>> {
    let r = sqlx::query(&format!("{JOIN_SELECT} WHERE r.org_id = $1 AND r.id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    r.as_ref().map(join_row).transpose()
}

async fn join_requests_where(db: &Db, org: OrgId, cond: &str, arg: &str) -> MemResult<Vec<JoinRequest>> {
    let rows = sqlx::query(&format!("{JOIN_SELECT} WHERE r.org_id = $1 AND {cond} ORDER BY r.created_at LIMIT 500"))
        .bind(org.to_string())
        .bind(arg)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(join_row).collect()
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Requests {
    pub joins: Vec<JoinRequest>,
    pub changes: Vec<ChangeRequest>,
}

/// The requests waiting for a decision (`pending`), or the decided ones.
pub async fn requests(db: &Db, cap: &CanRead, status: &str) -> MemResult<Requests> {
    let status = if ["pending", "approved", "refused", "rejected"].contains(&status) { status } else { "pending" };
    let joins = join_requests_where(db, cap.org(), "r.status = $2", status).await?;
    let changes = change_requests_where(db, cap.org(), "c.status = $2", status).await?;
    Ok(Requests { joins, changes })
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Why (shown on the person's timeline).
    #[serde(default)]
    pub note: String,
}

async fn pending_join(tx: &mut Tx, org: OrgId, id: &str) -> MemResult<(String, String, Option<String>, Option<i64>)> {
    let r = sqlx::query(
        "SELECT status, person_id, type_id, tier, amount_cents FROM mem_join_requests WHERE org_id = $1 AND id = $2",
    )
    .bind(org.to_string())
    .bind(id)
    .fetch_optional(tx.conn())
    .await?
    .ok_or(MemError::Core(CoreError::NotFound))?;
    let status: String = r.try_get(0)?;
    if status != "pending" {
        return Err(MemError::Core(CoreError::Conflict {
            field: Some("status".into()),
            message: format!("This request was already decided ({status})."),
        }));
    }
    Ok((r.try_get(1)?, r.try_get(2)?, r.try_get(3)?, r.try_get(4)?))
}

/// Approves a join request: the membership period starts today (with the
/// fee the type's rules give), in the same transaction as the decision.
pub async fn approve_join(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    org: &Org,
    id: &str,
    d: Decision,
) -> MemResult<JoinRequest> {
    let mut errors = Vec::new();
    let note = service::text_field(&mut errors, "note", &d.note, 2000, false);
    MemError::check(errors)?;
    let oid = cap.org();
    crate::billing::prepare(db, cap.org()).await?;
    let mut tx = db.begin().await?;
    let (person, type_id, tier, amount) = pending_join(&mut tx, oid, id).await?;
    let input =
        JoinInput { type_id, starts_on: None, tier, amount_cents: amount, request_key: Some(format!("join:{id}")) };
    let w = service::join_in(&mut tx, who, oid, service::today(&org.timezone), &person, &input).await?;
    let now = Timestamp::now().0;
    sqlx::query(
        "UPDATE mem_join_requests SET status = 'approved', open_key = NULL, period_id = $1, decided_at = $2, \
         decided_by = $3, note = $4 WHERE org_id = $5 AND id = $6",
    )
    .bind(&w.period.id)
    .bind(now)
    .bind(&who.label)
    .bind(&note)
    .bind(oid.to_string())
    .bind(id)
    .execute(tx.conn())
    .await?;
    record(
        &mut tx,
        who,
        oid,
        "members.join_request.approve",
        "membership_join_request",
        id,
        Some(json!({"status": "pending"})),
        Some(json!({"status": "approved", "period": w.period.id, "note": note})),
    )
    .await?;
    let name = person_name(&mut tx, oid, &person).await?;
    let text = format!("Join request approved ({}): membership recorded. {note}", w.period.type_name);
    timeline::event(&mut tx, who, oid, &person_record(org, &person, &name), text.trim(), json!({"join_request": id}))
        .await?;
    tx.commit().await?;
    join_request_in(db, oid, id).await?.ok_or(MemError::Core(CoreError::NotFound))
}

pub async fn refuse_join(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    org: &Org,
    id: &str,
    d: Decision,
) -> MemResult<JoinRequest> {
    let mut errors = Vec::new();
    let note = service::text_field(&mut errors, "note", &d.note, 2000, false);
    MemError::check(errors)?;
    let oid = cap.org();
    let mut tx = db.begin().await?;
    let (person, ..) = pending_join(&mut tx, oid, id).await?;
    sqlx::query(
        "UPDATE mem_join_requests SET status = 'refused', open_key = NULL, decided_at = $1, decided_by = $2, note = $3 \
         WHERE org_id = $4 AND id = $5",
    )
    .bind(Timestamp::now().0)
    .bind(&who.label)
    .bind(&note)
    .bind(oid.to_string())
    .bind(id)
    .execute(tx.conn())
    .await?;
    record(
        &mut tx,
        who,
        oid,
        "members.join_request.refuse",
        "membership_join_request",
        id,
        Some(json!({"status": "pending"})),
        Some(json!({"status": "refused", "note": note})),
    )
    .await?;
    let name = person_name(&mut tx, oid, &person).await?;
    let text = format!("Join request refused. {note}");
    timeline::event(&mut tx, who, oid, &person_record(org, &person, &name), text.trim(), json!({"join_request": id}))
        .await?;
    tx.commit().await?;
    join_request_in(db, oid, id).await?.ok_or(MemError::Core(CoreError::NotFound))
}

async fn person_name(tx: &mut Tx, org: OrgId, person: &str) -> MemResult<String> {
    Ok(person_in(tx.conn(), org, person).await?.map(|p| display_name(&p)).unwrap_or_default())
}

// ---------- the member space ----------

/// The signed-in account's own person in the organisation, and the grant
/// scoped (by this module) to that person.
pub struct Own {
    pub person: String,
    pub grant: CanWrite,
}

/// Finds the person linked to the signed-in account (linking it by e-mail
/// the first time, for accounts invited into the organisation); `None` when
/// the account is nobody of the directory.
pub async fn own(db: &Db, ctx: &OrgCtx) -> MemResult<Option<Own>> {
    // Only an account the organisation invited may be linked by its e-mail.
    let email = if ctx.role.is_some() { ctx.actor.account.email.as_str() } else { "" };
    let p = shrooms_core::people::of_account(db, &ctx.who(), ctx.org.id, ctx.actor.account.id, email).await?;
    Ok(p.map(|p| Own { person: p.id.to_string(), grant: ctx.own_records_grant(crate::MODULE) }))
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MyReceipt {
    pub id: String,
    pub reference: String,
    pub year: i64,
    pub amount_cents: i64,
    pub issued_on: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MyMandate {
    pub reference: String,
    /// The IBAN with all but its country, check digits and last four characters hidden.
    pub iban: String,
    pub signed_on: String,
    /// `active` or `revoked`.
    pub status: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MySpace {
    /// Standing today and why, periods, history, dues (receipt numbers).
    pub membership: Membership,
    /// The person's own e-mail and phone (the membership shows the
    /// household's e-mail when the person has none).
    pub email: Option<String>,
    pub phone: Option<String>,
    pub tax_receipts: Vec<MyReceipt>,
    pub mandates: Vec<MyMandate>,
    pub join_requests: Vec<JoinRequest>,
    pub change_requests: Vec<ChangeRequest>,
    /// Profile fields whose change waits for a secretary's approval.
    pub checked_fields: Vec<String>,
    /// Dues invoices (dues billed by invoice), each with its "pay online"
    /// page while something is left to pay and online payment is set up.
    pub invoices: Vec<crate::billing::DuesInvoice>,
    /// The member's renewal page (their personal renewal link), when their
    /// last membership ends within 60 days or has ended, and was not renewed.
    pub renew_path: Option<String>,
}

/// How long before its end a membership can be renewed from the member space.
const RENEW_WINDOW_DAYS: i64 = 60;

pub async fn my_space(st: &AppState, own: &Own, org: &Org) -> MemResult<MySpace> {
    let db = &st.db;
    let zone = org.timezone.as_str();
    let read = own.grant.as_read();
    let membership = service::membership(db, &read, zone, &own.person).await?;
    let core = shrooms_core::people::get(db, &read, &own.person).await?;
    let (email, phone) = (core.email, core.phone);
    let rows = sqlx::query(
        "SELECT id, number, year, amount_cents, issued_on FROM mem_tax_receipts WHERE org_id = $1 AND person_id = $2 \
         ORDER BY number DESC",
    )
    .bind(read.org().to_string())
    .bind(&own.person)
    .fetch_all(db.pool())
    .await?;
    let tax_receipts = rows
        .iter()
        .map(|r| {
            let year: i64 = r.try_get(2)?;
            Ok(MyReceipt {
                id: r.try_get(0)?,
                reference: crate::donations::receipt_reference(year, r.try_get(1)?),
                year,
                amount_cents: r.try_get(3)?,
                issued_on: r.try_get(4)?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    // The mandates' IBANs come masked (`crate::debits::mask_iban`).
    let mandates = crate::debits::mandates(db, &read, Some(&own.person))
        .await?
        .into_iter()
        .map(|m| MyMandate { reference: m.reference, iban: m.iban, signed_on: m.signed_on, status: m.status })
        .collect();
    let join_requests = join_requests_where(db, read.org(), "r.person_id = $2", &own.person).await?;
    let change_requests = change_requests_where(db, read.org(), "c.person_id = $2", &own.person).await?;
    let checked_fields = self_settings(db, read.org()).await?.checked_fields;
    let invoices = if membership.periods.iter().any(|p| p.invoice_id.is_some()) {
        crate::billing::invoices_of(st, org.id, &org.slug, &own.person, true).await?
    } else {
        Vec::new()
    };
    let renew_path = renewable(&membership.periods, service::today(zone))
        .map(|p| format!("/o/{}/members/renew/{}", org.slug, crate::renewals::token(st, org.id, &own.person, &p.id)));
    let mut membership = membership;
    // The card's secret is for staff; the member prints their card.
    membership.card_token = None;
    Ok(MySpace {
        membership,
        email,
        phone,
        tax_receipts,
        mandates,
        join_requests,
        change_requests,
        checked_fields,
        invoices,
        renew_path,
    })
}

/// The period a member may renew from their space: the last one of its
/// type, not closed by a resignation or exclusion, that ends within
/// [`RENEW_WINDOW_DAYS`] or has ended.
fn renewable(periods: &[service::Period], today: jiff::civil::Date) -> Option<&service::Period> {
    let last = periods.iter().filter(|p| p.closed_on.is_none()).max_by(|a, b| a.starts_on.cmp(&b.starts_on))?;
    let later = periods.iter().any(|p| p.type_id == last.type_id && p.starts_on > last.starts_on);
    let end: jiff::civil::Date = last.ends_on.as_deref()?.parse().ok()?;
    let window = today.checked_add(jiff::Span::new().days(RENEW_WINDOW_DAYS)).ok()?;
    (!later && end <= window).then_some(last)
}

/// One of the member's own tax receipts; another person's answers 404.
pub async fn my_receipt(db: &Db, own: &Own, id: &str) -> MemResult<crate::donations::TaxReceipt> {
    let r = crate::donations::receipt(db, &own.grant.as_read(), id).await?;
    if r.person_id != own.person {
        return Err(MemError::Core(CoreError::NotFound));
    }
    Ok(r)
}

/// The member's card: the token made on first print, as for the secretary.
pub async fn my_card(db: &Db, who: &Who, own: &Own, zone: &str) -> MemResult<(Membership, String)> {
    let token = service::card_token(db, who, &own.grant, &own.person).await?;
    let m = service::membership(db, &own.grant.as_read(), zone, &own.person).await?;
    Ok((m, token))
}

// ---------- profile changes ----------

/// What the member changes; fields left out keep their value.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileChange {
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<Address>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FieldChange {
    /// `given_name`, `family_name`, `email`, `phone` or `address`.
    pub field: String,
    #[schema(value_type = Object)]
    pub from: Value,
    #[schema(value_type = Object)]
    pub to: Value,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ChangeRequest {
    pub id: String,
    pub person_id: String,
    pub person_name: String,
    pub changes: Vec<FieldChange>,
    /// `pending`, `approved` or `rejected`.
    pub status: String,
    pub note: String,
    pub created_at: String,
    pub decided_at: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ProfileOutcome {
    /// The fields changed at once.
    pub applied: Vec<String>,
    /// The request for the fields that wait for approval.
    pub pending: Option<ChangeRequest>,
}

const CHANGE_SELECT: &str = "SELECT c.id, c.person_id, p.given_name, p.family_name, c.changes, c.status, c.note, \
     c.created_at, c.decided_at FROM mem_change_requests c JOIN people p ON p.id = c.person_id";

fn change_row(r: &AnyRow) -> MemResult<ChangeRequest> {
    let given: String = r.try_get(2)?;
    let family: String = r.try_get(3)?;
    Ok(ChangeRequest {
        id: r.try_get(0)?,
        person_id: r.try_get(1)?,
        person_name: format!("{given} {family}").trim().to_string(),
        changes: serde_json::from_str(&r.try_get::<String, _>(4)?).unwrap_or_default(),
        status: r.try_get(5)?,
        note: r.try_get(6)?,
        created_at: Timestamp(r.try_get(7)?).rfc3339(),
        decided_at: r.try_get::<Option<i64>, _>(8)?.map(|t| Timestamp(t).rfc3339()),
    })
}

async fn change_requests_where(db: &Db, org: OrgId, cond: &str, arg: &str) -> MemResult<Vec<ChangeRequest>> {
    let rows =
        sqlx::query(&format!("{CHANGE_SELECT} WHERE c.org_id = $1 AND {cond} ORDER BY c.created_at DESC LIMIT 500"))
            .bind(org.to_string())
            .bind(arg)
            .fetch_all(db.pool())
            .await?;
    rows.iter().map(change_row).collect()
}

async fn change_request_in(db: &Db, org: OrgId, id: &str) -> MemResult<Option<ChangeRequest>> {
    let r = sqlx::query(&format!("{CHANGE_SELECT} WHERE c.org_id = $1 AND c.id = $2"))
        .bind(org.to_string())
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    r.as_ref().map(change_row).transpose()
}

/// The person's current values of the profile fields.
async fn current_profile(db: &Db, cap: &CanRead, person: &str) -> MemResult<(shrooms_core::people::Person, Address)> {
    let org = cap.org();
    let core = shrooms_core::people::get(db, cap, person).await?;
    let own =
        sqlx::query("SELECT street, postcode, city, country FROM mem_profiles WHERE org_id = $1 AND person_id = $2")
            .bind(org.to_string())
            .bind(person)
            .fetch_optional(db.pool())
            .await?;
    let address = match own {
        Some(r) => {
            Address { street: r.try_get(0)?, postcode: r.try_get(1)?, city: r.try_get(2)?, country: r.try_get(3)? }
        }
        None => Address::default(),
    };
    Ok((core, address))
}

/// The changes of `input` against the current values, checked.
fn diff(current: &(shrooms_core::people::Person, Address), input: &ProfileChange) -> MemResult<Vec<FieldChange>> {
    let (p, addr) = current;
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut text = |field: &str, new: &Option<String>, old: Option<String>, errors: &mut Vec<FieldError>| {
        let Some(v) = new else { return };
        let v = match field {
            "email" => {
                if v.trim().is_empty() {
                    String::new()
                } else {
                    check_email(errors, field, v)
                }
            }
            "phone" => check_phone(errors, field, v).unwrap_or_default(),
            _ => service::text_field(errors, field, v, 100, false),
        };
        if v != old.clone().unwrap_or_default() {
            out.push(FieldChange { field: field.into(), from: json!(old.unwrap_or_default()), to: json!(v) });
        }
    };
    text("given_name", &input.given_name, Some(p.given_name.clone()), &mut errors);
    text("family_name", &input.family_name, Some(p.family_name.clone()), &mut errors);
    text("email", &input.email, p.email.clone(), &mut errors);
    text("phone", &input.phone, p.phone.clone(), &mut errors);
    let given = input.given_name.as_deref().map(str::trim).unwrap_or(&p.given_name);
    let family = input.family_name.as_deref().map(str::trim).unwrap_or(&p.family_name);
    if given.is_empty() && family.is_empty() {
        errors.push(FieldError::new("family_name", "Give at least a given name or a family name."));
    }
    if let Some(a) = &input.address {
        let mut a = a.check("address.", &mut errors);
        if a.is_empty() {
            a.country = String::new();
        }
        let mut old = addr.clone();
        if old.is_empty() {
            old.country = String::new();
        }
        if a != old {
            out.push(FieldChange { field: "address".into(), from: json!(old), to: json!(a) });
        }
    }
    MemError::check(errors)?;
    Ok(out)
}

/// Writes approved or unchecked changes: names, e-mail and phone through the
/// core's people service (audited there), the address in the member's profile.
async fn apply(db: &Db, who: &Who, cap: &CanWrite, person: &str, changes: &[FieldChange]) -> MemResult<()> {
    let get = |f: &str| changes.iter().find(|c| c.field == f).and_then(|c| c.to.as_str().map(String::from));
    let input = shrooms_core::people::PersonInput {
        given_name: get("given_name"),
        family_name: get("family_name"),
        email: get("email"),
        phone: get("phone"),
        notes: None,
        custom: None,
    };
    if input.given_name.is_some() || input.family_name.is_some() || input.email.is_some() || input.phone.is_some() {
        shrooms_core::people::update(db, who, cap, person, input).await?;
    }
    if let Some(c) = changes.iter().find(|c| c.field == "address") {
        let a: Address = serde_json::from_value(c.to.clone()).unwrap_or_default();
        let mut tx = db.begin().await?;
        lock_member(&mut tx, cap.org(), person).await?;
        sqlx::query(
            "UPDATE mem_profiles SET street = $1, postcode = $2, city = $3, country = $4, updated_at = $5 \
             WHERE org_id = $6 AND person_id = $7",
        )
        .bind(&a.street)
        .bind(&a.postcode)
        .bind(&a.city)
        .bind(&a.country)
        .bind(Timestamp::now().0)
        .bind(cap.org().to_string())
        .bind(person)
        .execute(tx.conn())
        .await?;
        record(
            &mut tx,
            who,
            cap.org(),
            "members.profile.update",
            "person",
            person,
            Some(json!({"address": c.from})),
            Some(json!({"address": c.to})),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The member changes their profile: fields the organisation does not check
/// are changed at once (audited); checked ones make a change request that a
/// secretary approves or rejects, recorded on the person's timeline and
/// notified to whoever may decide it (the fields' names only: the values
/// stay behind the sign-in of the requests page).
pub async fn change_profile(
    st: &AppState,
    who: &Who,
    own: &Own,
    org: &Org,
    input: ProfileChange,
) -> MemResult<ProfileOutcome> {
    let db = &st.db;
    let current = current_profile(db, &own.grant.as_read(), &own.person).await?;
    let changes = diff(&current, &input)?;
    let checked = self_settings(db, org.id).await?.checked_fields;
    let (waiting, now): (Vec<FieldChange>, Vec<FieldChange>) =
        changes.into_iter().partition(|c| checked.contains(&c.field));
    apply(db, who, &own.grant, &own.person, &now).await?;
    let applied = now.iter().map(|c| c.field.clone()).collect();
    if waiting.is_empty() {
        return Ok(ProfileOutcome { applied, pending: None });
    }
    let id = new_id();
    let oid = org.id;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO mem_change_requests (id, org_id, person_id, changes, status, note, created_at) \
         VALUES ($1, $2, $3, $4, 'pending', '', $5)",
    )
    .bind(&id)
    .bind(oid.to_string())
    .bind(&own.person)
    .bind(json!(waiting).to_string())
    .bind(Timestamp::now().0)
    .execute(tx.conn())
    .await?;
    record(&mut tx, who, oid, "members.change_request.submit", "person", &own.person, None, Some(json!(waiting)))
        .await?;
    let fields: Vec<&str> = waiting.iter().map(|c| c.field.as_str()).collect();
    let name = format!("{} {}", current.0.given_name, current.0.family_name);
    timeline::event(
        &mut tx,
        who,
        oid,
        &person_record(org, &own.person, &name),
        &format!("Profile change requested ({}): waiting for approval.", fields.join(", ")),
        json!({"change_request": id}),
    )
    .await?;
    let notice = request_notice(CHANGE_REQUEST_NOTICE, who, org, &name, fields.join(", "), String::new());
    notify_deciders(st, &mut tx, oid, &notice).await?;
    tx.commit().await?;
    let pending = change_request_in(db, oid, &id).await?;
    Ok(ProfileOutcome { applied, pending })
}

async fn decide_change(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    org: &Org,
    id: &str,
    d: Decision,
    approve: bool,
) -> MemResult<ChangeRequest> {
    let mut errors = Vec::new();
    let note = service::text_field(&mut errors, "note", &d.note, 2000, false);
    MemError::check(errors)?;
    let oid = cap.org();
    let c = change_request_in(db, oid, id).await?.ok_or(MemError::Core(CoreError::NotFound))?;
    if c.status != "pending" {
        return Err(MemError::Core(CoreError::Conflict {
            field: Some("status".into()),
            message: format!("This request was already decided ({}).", c.status),
        }));
    }
    if approve {
        apply(db, who, cap, &c.person_id, &c.changes).await?;
    }
    let status = if approve { "approved" } else { "rejected" };
    let mut tx = db.begin().await?;
    let done = sqlx::query(
        "UPDATE mem_change_requests SET status = $1, decided_at = $2, decided_by = $3, note = $4 \
         WHERE org_id = $5 AND id = $6 AND status = 'pending'",
    )
    .bind(status)
    .bind(Timestamp::now().0)
    .bind(&who.label)
    .bind(&note)
    .bind(oid.to_string())
    .bind(id)
    .execute(tx.conn())
    .await?
    .rows_affected();
    if done == 0 {
        // Decided meanwhile by someone else: theirs stands.
        return Err(MemError::Core(CoreError::Conflict {
            field: Some("status".into()),
            message: "This request was already decided.".into(),
        }));
    }
    record(
        &mut tx,
        who,
        oid,
        &format!("members.change_request.{}", if approve { "approve" } else { "reject" }),
        "person",
        &c.person_id,
        Some(json!({"request": id, "status": "pending"})),
        Some(json!({"request": id, "status": status, "changes": c.changes, "note": note})),
    )
    .await?;
    let fields: Vec<&str> = c.changes.iter().map(|c| c.field.as_str()).collect();
    let text = format!("Profile change {status} ({}). {note}", fields.join(", "));
    timeline::event(
        &mut tx,
        who,
        oid,
        &person_record(org, &c.person_id, &c.person_name),
        text.trim(),
        json!({"change_request": id}),
    )
    .await?;
    tx.commit().await?;
    change_request_in(db, oid, id).await?.ok_or(MemError::Core(CoreError::NotFound))
}

pub async fn approve_change(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    org: &Org,
    id: &str,
    d: Decision,
) -> MemResult<ChangeRequest> {
    decide_change(db, who, cap, org, id, d, true).await
}

pub async fn reject_change(
    db: &Db,
    who: &Who,
    cap: &CanWrite,
    org: &Org,
    id: &str,
    d: Decision,
) -> MemResult<ChangeRequest> {
    decide_change(db, who, cap, org, id, d, false).await
}

// ---------- card revocation ----------

/// Revokes a member's card: its token is replaced (a new card must be
/// printed) and the old one is kept so that its QR code says "revoked".
pub async fn revoke_card(db: &Db, who: &Who, cap: &CanWrite, person: &str) -> MemResult<()> {
    let org = cap.org();
    let mut tx = db.begin().await?;
    if person_in(tx.conn(), org, person).await?.is_none() {
        return Err(MemError::Core(CoreError::NotFound));
    }
    lock_member(&mut tx, org, person).await?;
    let old: Option<String> = sqlx::query("SELECT card_token FROM mem_profiles WHERE org_id = $1 AND person_id = $2")
        .bind(org.to_string())
        .bind(person)
        .fetch_one(tx.conn())
        .await?
        .try_get(0)?;
    let Some(old) = old else {
        return Err(MemError::Core(CoreError::Conflict {
            field: Some("person".into()),
            message: "This member has no card yet: there is nothing to revoke.".into(),
        }));
    };
    let now = Timestamp::now().0;
    sqlx::query("INSERT INTO mem_revoked_cards (token, org_id, person_id, revoked_at) VALUES ($1, $2, $3, $4)")
        .bind(&old)
        .bind(org.to_string())
        .bind(person)
        .bind(now)
        .execute(tx.conn())
        .await?;
    sqlx::query("UPDATE mem_profiles SET card_token = $1, updated_at = $2 WHERE org_id = $3 AND person_id = $4")
        .bind(shrooms_core::crypto::random_token())
        .bind(now)
        .bind(org.to_string())
        .bind(person)
        .execute(tx.conn())
        .await?;
    record(&mut tx, who, org, "members.card.revoke", "person", person, None, None).await?;
    tx.commit().await?;
    Ok(())
}

/// The member of a revoked card's token, with the day it was revoked.
pub async fn revoked_card(db: &Db, org: OrgId, token: &str) -> MemResult<Option<(MemberPerson, String)>> {
    let r = sqlx::query("SELECT person_id, revoked_at FROM mem_revoked_cards WHERE org_id = $1 AND token = $2")
        .bind(org.to_string())
        .bind(token)
        .fetch_optional(db.pool())
        .await?;
    let Some(r) = r else { return Ok(None) };
    let person: String = r.try_get(0)?;
    let at: i64 = r.try_get(1)?;
    let mut conn = db.pool().acquire().await?;
    Ok(person_in(&mut conn, org, &person).await?.map(|p| (p, Timestamp(at).rfc3339()[..10].to_string())))
}
