//! The audit log: who changed what, when, in which organisation, with the
//! record before and after. Append-only and hash-chained: each entry's hash
//! covers its content and the previous hash, so `verify` proves nothing was
//! altered, inserted or removed, and says where the chain breaks if it was.

use crate::db::{Backend, Db, Tx};
use crate::error::CoreResult;
use crate::ids::{AccountId, OrgId, Timestamp};
use serde::Serialize;
use sqlx::Row;

/// Who performs a change: an account, or the system/CLI with a label.
#[derive(Clone, Debug)]
pub struct Who {
    pub account: Option<AccountId>,
    pub label: String,
    pub address: String,
}

impl Who {
    pub fn system(label: &str) -> Who {
        Who { account: None, label: label.to_string(), address: String::new() }
    }
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
const CHAIN_LOCK: i64 = 0x4155_4449_54; // "AUDIT"

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub seq: i64,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor_id: Option<String>,
    pub actor_label: String,
    pub org_id: Option<String>,
    pub action: String,
    pub entity_type: String,
    pub entity_id: String,
    /// What the record was, as JSON: usually an object, but any JSON value.
    pub before: Option<serde_json::Value>,
    /// What the record became, as JSON: usually an object, but any JSON value
    /// (a list for a change of notification preferences).
    pub after: Option<serde_json::Value>,
    pub address: String,
    pub hash: String,
}

/// A change to record. `before`/`after` hold what a user cares about, never secrets.
pub struct Change<'a> {
    pub org: Option<OrgId>,
    pub action: &'a str,
    pub entity_type: &'a str,
    pub entity_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

#[allow(clippy::too_many_arguments)]
fn entry_hash(
    seq: i64,
    at: i64,
    actor_id: &Option<String>,
    actor_label: &str,
    org_id: &Option<String>,
    action: &str,
    entity_type: &str,
    entity_id: &str,
    before: &Option<String>,
    after: &Option<String>,
    address: &str,
    prev_hash: &str,
) -> String {
    // A JSON array is an unambiguous encoding of the fields.
    let canonical = serde_json::json!([
        seq,
        at,
        actor_id,
        actor_label,
        org_id,
        action,
        entity_type,
        entity_id,
        before,
        after,
        address,
        prev_hash
    ]);
    crate::crypto::sha256_hex(canonical.to_string().as_bytes())
}

/// Appends one entry in the caller's transaction: the change and its audit
/// entry commit together or not at all.
pub async fn record(tx: &mut Tx, who: &Who, change: Change<'_>) -> CoreResult<i64> {
    let seqs = record_many(tx, who, vec![change]).await?;
    Ok(seqs[0])
}

/// Appends several entries in the caller's transaction, in the order given,
/// each chained to the one before exactly as one [`record`] after another
/// would: the chain is locked and its head read once, the hashes computed
/// in memory, and the entries written by multi-row inserts (a batch of
/// thousands of changes, such as the yearly renewal run, costs a few
/// statements instead of three per entry). Returns their sequence numbers.
pub async fn record_many(tx: &mut Tx, who: &Who, changes: Vec<Change<'_>>) -> CoreResult<Vec<i64>> {
    if changes.is_empty() {
        return Ok(Vec::new());
    }
    if tx.backend() == Backend::Postgres {
        // Serialises appends across replicas until this transaction ends.
        sqlx::query(&format!("SELECT pg_advisory_xact_lock({CHAIN_LOCK})")).execute(tx.conn()).await?;
    }
    let last =
        sqlx::query("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetch_optional(tx.conn()).await?;
    let (mut seq, mut prev_hash) = match last {
        Some(r) => (r.try_get::<i64, _>(0)?, r.try_get::<String, _>(1)?),
        None => (0, GENESIS.to_string()),
    };
    let at = Timestamp::now().0;
    let actor_id = who.account.map(|a| a.to_string());
    struct Pending<'c> {
        seq: i64,
        org_id: Option<String>,
        change: Change<'c>,
        before: Option<String>,
        after: Option<String>,
        prev_hash: String,
        hash: String,
    }
    let mut rows = Vec::with_capacity(changes.len());
    for change in changes {
        seq += 1;
        let org_id = change.org.map(|o| o.to_string());
        let before = change.before.as_ref().map(|v| v.to_string());
        let after = change.after.as_ref().map(|v| v.to_string());
        let hash = entry_hash(
            seq,
            at,
            &actor_id,
            &who.label,
            &org_id,
            change.action,
            change.entity_type,
            &change.entity_id,
            &before,
            &after,
            &who.address,
            &prev_hash,
        );
        let prev = std::mem::replace(&mut prev_hash, hash.clone());
        rows.push(Pending { seq, org_id, change, before, after, prev_hash: prev, hash });
    }
    for chunk in rows.chunks(tx.backend().rows_per_statement(13)) {
        let values: Vec<String> =
            (0..chunk.len()).map(|i| format!("({})", crate::db::placeholders(i * 13 + 1, 13))).collect();
        let sql = format!(
            "INSERT INTO audit_log (seq, at, actor_id, actor_label, org_id, action, entity_type, entity_id, before_json, after_json, address, prev_hash, hash) \
             VALUES {}",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for r in chunk {
            q = q
                .bind(r.seq)
                .bind(at)
                .bind(&actor_id)
                .bind(&who.label)
                .bind(&r.org_id)
                .bind(r.change.action)
                .bind(r.change.entity_type)
                .bind(&r.change.entity_id)
                .bind(&r.before)
                .bind(&r.after)
                .bind(&who.address)
                .bind(&r.prev_hash)
                .bind(&r.hash);
        }
        q.execute(tx.conn()).await?;
    }
    Ok(rows.iter().map(|r| r.seq).collect())
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Intact { entries: i64, head: String },
    Broken { seq: i64, reason: String },
}

/// Walks the whole chain in order and recomputes every hash.
pub async fn verify(db: &Db) -> CoreResult<Verification> {
    let mut expected_seq = 1i64;
    let mut prev = GENESIS.to_string();
    loop {
        let rows = sqlx::query(
            "SELECT seq, at, actor_id, actor_label, org_id, action, entity_type, entity_id, before_json, after_json, address, prev_hash, hash \
             FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT 5000",
        )
        .bind(expected_seq)
        .fetch_all(db.pool())
        .await?;
        if rows.is_empty() {
            break;
        }
        for r in rows {
            let seq: i64 = r.try_get(0)?;
            if seq != expected_seq {
                return Ok(Verification::Broken {
                    seq: expected_seq,
                    reason: format!("entry {expected_seq} is missing (next entry is {seq})"),
                });
            }
            let stored_prev: String = r.try_get(11)?;
            let stored_hash: String = r.try_get(12)?;
            if stored_prev != prev {
                return Ok(Verification::Broken {
                    seq,
                    reason: "its link to the previous entry does not match".into(),
                });
            }
            let h = entry_hash(
                seq,
                r.try_get(1)?,
                &r.try_get(2)?,
                &r.try_get::<String, _>(3)?,
                &r.try_get(4)?,
                &r.try_get::<String, _>(5)?,
                &r.try_get::<String, _>(6)?,
                &r.try_get::<String, _>(7)?,
                &r.try_get(8)?,
                &r.try_get(9)?,
                &r.try_get::<String, _>(10)?,
                &stored_prev,
            );
            if h != stored_hash {
                return Ok(Verification::Broken { seq, reason: "its content was altered after it was written".into() });
            }
            prev = stored_hash;
            expected_seq += 1;
        }
    }
    Ok(Verification::Intact { entries: expected_seq - 1, head: prev })
}

pub struct AuditFilter {
    pub org: Option<OrgId>,
    pub actor: Option<String>,
    pub action: Option<String>,
    pub entity_type: Option<String>,
    pub entity_id: Option<String>,
    /// Entries with seq strictly lower (newest first paging).
    pub before_seq: Option<i64>,
    pub limit: i64,
}

/// Lists entries newest first: one organisation's, or with `org: None` the
/// whole instance's (for instance administrators only).
pub async fn list(db: &Db, f: &AuditFilter) -> CoreResult<Vec<AuditEntry>> {
    let mut sql = String::from(
        "SELECT seq, at, actor_id, actor_label, org_id, action, entity_type, entity_id, before_json, after_json, address, hash FROM audit_log WHERE 1=1",
    );
    let mut binds: Vec<String> = Vec::new();
    let mut push = |sql: &mut String, cond: &str, v: String| {
        binds.push(v);
        sql.push_str(&format!(" AND {cond} ${}", binds.len()));
    };
    if let Some(o) = f.org {
        push(&mut sql, "org_id =", o.to_string());
    }
    if let Some(a) = &f.actor {
        push(&mut sql, "actor_label =", a.clone());
    }
    if let Some(a) = &f.action {
        push(&mut sql, "action =", a.clone());
    }
    if let Some(a) = &f.entity_type {
        push(&mut sql, "entity_type =", a.clone());
    }
    if let Some(a) = &f.entity_id {
        push(&mut sql, "entity_id =", a.clone());
    }
    let mut q_before = None;
    if let Some(b) = f.before_seq {
        sql.push_str(&format!(" AND seq < ${}", binds.len() + 1));
        q_before = Some(b);
    }
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT {}", f.limit.clamp(1, 500)));
    let mut q = sqlx::query(&sql);
    for b in &binds {
        q = q.bind(b);
    }
    if let Some(b) = q_before {
        q = q.bind(b);
    }
    let rows = q.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
            Ok(AuditEntry {
                seq: r.try_get(0)?,
                at: Timestamp(r.try_get(1)?).rfc3339(),
                actor_id: r.try_get(2)?,
                actor_label: r.try_get(3)?,
                org_id: r.try_get(4)?,
                action: r.try_get(5)?,
                entity_type: r.try_get(6)?,
                entity_id: r.try_get(7)?,
                before: parse(r.try_get(8)?),
                after: parse(r.try_get(9)?),
                address: r.try_get(10)?,
                hash: r.try_get(11)?,
            })
        })
        .collect()
}
