//! Groups of an organisation's members: the "group" of record-level
//! visibility ([`crate::permissions::Visibility`]), e.g. the board, the
//! workshop volunteers, the technicians of one site.

use crate::audit::{self, Change, Who};
use crate::db::Db;
use crate::error::{CoreError, CoreResult, FieldError};
use crate::ids::{AccountId, OrgId};
use crate::permissions::{CanAdmin, CanRead};
use serde::Serialize;
use sqlx::Row;

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Group {
    pub id: String,
    pub name: String,
    /// Account ids of the members.
    pub members: Vec<String>,
}

pub async fn list(db: &Db, cap: &CanRead) -> CoreResult<Vec<Group>> {
    let rows = sqlx::query(
        "SELECT g.id, g.name, gm.account_id FROM org_groups g LEFT JOIN org_group_members gm ON gm.group_id = g.id \
         WHERE g.org_id = $1 ORDER BY g.name, g.id, gm.account_id LIMIT 5000",
    )
    .bind(cap.org().to_string())
    .fetch_all(db.pool())
    .await?;
    let mut out: Vec<Group> = Vec::new();
    for r in rows {
        let id: String = r.try_get(0)?;
        if out.last().is_none_or(|g| g.id != id) {
            out.push(Group { id: id.clone(), name: r.try_get(1)?, members: Vec::new() });
        }
        if let Some(m) = r.try_get::<Option<String>, _>(2)? {
            if let Some(g) = out.last_mut() {
                g.members.push(m);
            }
        }
    }
    Ok(out)
}

pub async fn create(db: &Db, who: &Who, cap: &CanAdmin, name: &str) -> CoreResult<Group> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 80 {
        return Err(CoreError::Validation(vec![FieldError::new(
            "name",
            "Give the group a name of 1 to 80 characters.",
        )]));
    }
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO org_groups (id, org_id, name) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(cap.org().to_string())
        .bind(name)
        .execute(tx.conn())
        .await
        .map_err(|e| CoreError::from(e).on_conflict("name", "A group with this name exists."))?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "group.create",
            entity_type: "group",
            entity_id: id.clone(),
            before: None,
            after: Some(serde_json::json!({"name": name})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(Group { id, name: name.to_string(), members: Vec::new() })
}

/// Checks the group belongs to the capability's organisation; any other is NotFound.
async fn owned(tx: &mut crate::db::Tx, org: OrgId, group: &str) -> CoreResult<String> {
    let r = sqlx::query("SELECT name FROM org_groups WHERE org_id = $1 AND id = $2")
        .bind(org.to_string())
        .bind(group)
        .fetch_optional(tx.conn())
        .await?
        .ok_or(CoreError::NotFound)?;
    Ok(r.try_get(0)?)
}

pub async fn delete(db: &Db, who: &Who, cap: &CanAdmin, group: &str) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    let name = owned(&mut tx, cap.org(), group).await?;
    sqlx::query("DELETE FROM org_group_members WHERE group_id = $1").bind(group).execute(tx.conn()).await?;
    sqlx::query("DELETE FROM org_groups WHERE id = $1").bind(group).execute(tx.conn()).await?;
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: "group.delete",
            entity_type: "group",
            entity_id: group.to_string(),
            before: Some(serde_json::json!({"name": name})),
            after: None,
        },
    )
    .await?;
    tx.commit().await
}

pub async fn set_member(
    db: &Db,
    who: &Who,
    cap: &CanAdmin,
    group: &str,
    account: AccountId,
    member: bool,
) -> CoreResult<()> {
    let mut tx = db.begin().await?;
    owned(&mut tx, cap.org(), group).await?;
    let in_org = sqlx::query("SELECT 1 FROM memberships WHERE org_id = $1 AND account_id = $2")
        .bind(cap.org().to_string())
        .bind(account.to_string())
        .fetch_optional(tx.conn())
        .await?
        .is_some();
    if !in_org {
        // Not a member of this organisation: as if it did not exist.
        return Err(CoreError::NotFound);
    }
    if member {
        sqlx::query("INSERT INTO org_group_members (group_id, account_id) VALUES ($1, $2) ON CONFLICT (group_id, account_id) DO NOTHING")
            .bind(group)
            .bind(account.to_string())
            .execute(tx.conn())
            .await?;
    } else {
        sqlx::query("DELETE FROM org_group_members WHERE group_id = $1 AND account_id = $2")
            .bind(group)
            .bind(account.to_string())
            .execute(tx.conn())
            .await?;
    }
    audit::record(
        &mut tx,
        who,
        Change {
            org: Some(cap.org()),
            action: if member { "group.member_add" } else { "group.member_remove" },
            entity_type: "group",
            entity_id: group.to_string(),
            before: None,
            after: Some(serde_json::json!({"account_id": account.to_string()})),
        },
    )
    .await?;
    tx.commit().await
}

/// The groups an account belongs to in one organisation (for visibility checks).
pub async fn of_account(db: &Db, org: OrgId, account: AccountId) -> CoreResult<Vec<uuid::Uuid>> {
    let rows = sqlx::query("SELECT g.id FROM org_groups g JOIN org_group_members gm ON gm.group_id = g.id WHERE g.org_id = $1 AND gm.account_id = $2")
        .bind(org.to_string())
        .bind(account.to_string())
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| crate::ids::parse_id::<uuid::Uuid>(&r.try_get::<String, _>(0)?)).collect()
}
