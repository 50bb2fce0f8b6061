//! Roles, permissions and capability values.
//!
//! A role grants each module an [`Access`] level. Checking a permission
//! returns a capability ([`CanRead`], [`CanWrite`], [`CanAdmin`]) that only
//! this crate can build; services take it as an argument, so a write path
//! that skipped the check does not compile. Each capability carries the
//! organisation it was granted for: tenant scoping travels with it.

use crate::ids::{AccountId, OrgId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    #[default]
    None,
    Read,
    Write,
    Admin,
}

impl Access {
    pub fn parse(s: &str) -> Option<Access> {
        Some(match s {
            "none" => Access::None,
            "read" => Access::Read,
            "write" => Access::Write,
            "admin" => Access::Admin,
            _ => return None,
        })
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Access::None => "none",
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        }
    }
}

/// The roles every organisation starts with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BuiltinRole {
    Owner,
    Admin,
    Manager,
    Staff,
    Member,
    Client,
}

impl BuiltinRole {
    pub const ALL: [BuiltinRole; 6] = [
        BuiltinRole::Owner,
        BuiltinRole::Admin,
        BuiltinRole::Manager,
        BuiltinRole::Staff,
        BuiltinRole::Member,
        BuiltinRole::Client,
    ];
    pub fn key(self) -> &'static str {
        match self {
            BuiltinRole::Owner => "owner",
            BuiltinRole::Admin => "admin",
            BuiltinRole::Manager => "manager",
            BuiltinRole::Staff => "staff",
            BuiltinRole::Member => "member",
            BuiltinRole::Client => "client",
        }
    }
    pub fn from_key(k: &str) -> Option<BuiltinRole> {
        Self::ALL.into_iter().find(|r| r.key() == k)
    }
}

/// Module id → access level granted by a role.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Permissions(pub BTreeMap<String, Access>);

impl Permissions {
    pub fn get(&self, module: &str) -> Access {
        self.0.get(module).copied().unwrap_or(Access::None)
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }
    pub fn from_json(s: &str) -> Permissions {
        serde_json::from_str(s).unwrap_or_default()
    }
}

macro_rules! capability {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Debug)]
        pub struct $name {
            org: OrgId,
            actor: AccountId,
            module: &'static str,
        }
        impl $name {
            pub(crate) fn grant(org: OrgId, actor: AccountId, module: &'static str) -> Self {
                Self { org, actor, module }
            }
            /// The organisation this capability is scoped to.
            pub fn org(&self) -> OrgId { self.org }
            /// Who holds it.
            pub fn actor(&self) -> AccountId { self.actor }
            pub fn module(&self) -> &'static str { self.module }
        }
    };
}

capability!(
    /// Proof that the actor may read the module's data in one organisation.
    CanRead
);
capability!(
    /// Proof that the actor may create and change the module's data in one organisation.
    CanWrite
);
capability!(
    /// Proof that the actor may administer the module in one organisation.
    CanAdmin
);

/// Proof that the actor administers the whole instance (or that the
/// instance itself acts: setup, demo data). Instance-wide changes take it.
#[derive(Clone, Debug)]
pub struct InstanceAdmin {
    actor: Option<AccountId>,
}

impl InstanceAdmin {
    pub(crate) fn grant(actor: Option<AccountId>) -> Self {
        InstanceAdmin { actor }
    }
    pub fn actor(&self) -> Option<AccountId> {
        self.actor
    }
}

impl CanWrite {
    /// The operator's grant: command-line tools and background jobs act for
    /// an organisation with no account (the nil id). Only code the operator
    /// runs may use it; audit its changes as `Who::system(...)`.
    pub fn operator(org: OrgId, module: &'static str) -> Self {
        Self::grant(org, AccountId(uuid::Uuid::nil()), module)
    }
    pub fn as_read(&self) -> CanRead {
        CanRead::grant(self.org, self.actor, self.module)
    }
}
impl CanAdmin {
    pub fn as_write(&self) -> CanWrite {
        CanWrite::grant(self.org, self.actor, self.module)
    }
}

/// Record-level visibility, the "UNIX-like rights" of a record: an owner, a
/// group, and a mode of read/write bits for owner, group and everyone in the
/// organisation (`0o640` = owner read+write, group read, others nothing).
/// Module administrators bypass it. Modules that need it store the three
/// columns `owner_id`, `group_id`, `mode` and filter lists with
/// [`Visibility::sql_read_filter`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visibility {
    pub owner: Option<AccountId>,
    pub group: Option<uuid::Uuid>,
    pub mode: u16,
}

impl Visibility {
    pub const READ: u16 = 4;
    pub const WRITE: u16 = 2;

    fn bits_for(&self, actor: AccountId, actor_groups: &[uuid::Uuid]) -> u16 {
        let mut bits = self.mode & 0o7;
        if self.group.is_some_and(|g| actor_groups.contains(&g)) {
            bits |= (self.mode >> 3) & 0o7;
        }
        if self.owner == Some(actor) {
            bits |= (self.mode >> 6) & 0o7;
        }
        bits
    }
    pub fn can_read(&self, actor: AccountId, groups: &[uuid::Uuid]) -> bool {
        self.bits_for(actor, groups) & Self::READ != 0
    }
    pub fn can_write(&self, actor: AccountId, groups: &[uuid::Uuid]) -> bool {
        self.bits_for(actor, groups) & Self::WRITE != 0
    }
    /// A WHERE fragment keeping the rows the actor may read. `$actor` and
    /// `$groups` are bound by the caller: the fragment uses the parameter
    /// number given for the actor id and an `IN` subquery on group membership.
    pub fn sql_read_filter(alias: &str, actor_param: usize) -> String {
        format!(
            "(({a}.mode & 4) <> 0 \
             OR ({a}.owner_id = ${p} AND ({a}.mode & 256) <> 0) \
             OR (({a}.mode & 32) <> 0 AND {a}.group_id IN (SELECT group_id FROM org_group_members WHERE account_id = ${p})))",
            a = alias,
            p = actor_param
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_like_rights() {
        let owner = AccountId::new();
        let other = AccountId::new();
        let g = uuid::Uuid::now_v7();
        let v = Visibility { owner: Some(owner), group: Some(g), mode: 0o640 };
        assert!(v.can_read(owner, &[]) && v.can_write(owner, &[]));
        assert!(v.can_read(other, &[g]) && !v.can_write(other, &[g]));
        assert!(!v.can_read(other, &[]));
        let public = Visibility { mode: 0o644, ..v };
        assert!(public.can_read(other, &[]) && !public.can_write(other, &[]));
    }

    #[test]
    fn access_orders() {
        assert!(Access::Admin > Access::Write && Access::Write > Access::Read && Access::Read > Access::None);
    }
}
