//! Who sees what of the clubs.
//!
//! - Anyone with the link: club pages, activities, syntheses, progress,
//!   gallery, winners (the public parts).
//! - A club's executives: their own club's restricted data (cash, attendance
//!   forms, participants' data, executives' attendance and tasks). An
//!   executive is a member whose role gives at least *write* access to
//!   `clubs` and whose email is on the club's list of executives.
//! - Federation executives: *admin* access to `clubs` (owners and
//!   administrators by default): everything, all clubs.
//!
//! Restricted data also needs a second factor: an executive without TOTP
//! gets a 403 `totp-required` that says where to enrol.

use crate::MODULE;
use shrooms_core::permissions::{Access, CanWrite};
use shrooms_core::web::Visitor;
use shrooms_core::{CoreError, CoreResult, Db};
use sqlx::Row;

#[derive(Clone, Debug)]
pub struct Viewer {
    pub visitor: Visitor,
    /// Federation executive: everything, every club.
    pub federation: bool,
    /// Clubs whose executive list holds the visitor's email (with write access).
    pub exec_clubs: Vec<String>,
    pub second_factor: bool,
}

impl Viewer {
    pub async fn of(db: &Db, visitor: Visitor) -> CoreResult<Viewer> {
        let access = visitor.access(MODULE);
        let mut exec_clubs = Vec::new();
        if access >= Access::Write {
            if let Some(a) = &visitor.actor {
                let rows = sqlx::query("SELECT club_id FROM clubs_executives WHERE org_id = $1 AND email = $2")
                    .bind(visitor.org.id.to_string())
                    .bind(a.account.email.to_lowercase())
                    .fetch_all(db.pool())
                    .await?;
                for r in rows {
                    exec_clubs.push(r.try_get::<String, _>(0)?);
                }
            }
        }
        let second_factor = visitor.actor.as_ref().is_some_and(|a| a.account.totp_enabled);
        Ok(Viewer { federation: access >= Access::Admin, exec_clubs, second_factor, visitor })
    }

    pub fn org(&self) -> shrooms_core::ids::OrgId {
        self.visitor.org.id
    }

    /// Whether the restricted parts of this club are shown (second factor included).
    pub fn sees(&self, club_id: &str) -> bool {
        self.second_factor && (self.federation || self.exec_clubs.iter().any(|c| c == club_id))
    }

    /// Whether everything of every club is shown.
    pub fn sees_all(&self) -> bool {
        self.second_factor && self.federation
    }

    /// Whether the visitor is an executive somewhere, second factor or not
    /// (pages then show links that lead to the enrolment request).
    pub fn is_executive(&self) -> bool {
        self.federation || !self.exec_clubs.is_empty()
    }

    /// The capability for the restricted data and the writes of one club.
    pub fn club(&self, club_id: &str) -> CoreResult<CanWrite> {
        self.check(self.federation || self.exec_clubs.iter().any(|c| c == club_id))
    }

    /// The capability for what only federation executives do (create clubs,
    /// settings, the participants of every club, the cash of every club).
    pub fn all(&self) -> CoreResult<CanWrite> {
        self.check(self.federation)
    }

    fn check(&self, allowed: bool) -> CoreResult<CanWrite> {
        let Some(ctx) = &self.visitor.ctx else {
            // A stranger to the organisation: signed out → sign in; signed in
            // elsewhere → the organisation's private parts do not exist for them.
            return Err(match self.visitor.actor {
                None => CoreError::Unauthorized("Sign in first.".into()),
                Some(_) => CoreError::NotFound,
            });
        };
        if !allowed {
            return Err(CoreError::Forbidden("This part of the club is for its executives.".into()));
        }
        if !self.second_factor {
            return Err(CoreError::TotpRequired);
        }
        ctx.can_write(MODULE)
    }
}
