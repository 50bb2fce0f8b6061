//! Clubs' part of a person's personal data ([`shrooms_core::privacy`]).
//!
//! Participants who sign attendance are this module's own records, not
//! core people: a person is matched to them by the same folded name the
//! attendance form uses (`domain::identity_key`), and to club executives by
//! e-mail or by that name. At erasure participants take the pseudonym (their
//! study field, level and suggestions are emptied; attendance counts and
//! ratings stay for the clubs' statistics), and so do prize winners. An
//! executive cannot be erased while listed in a club's office.

use crate::domain::identity_key;
use crate::MODULE;
use shrooms_core::db::Tx;
use shrooms_core::privacy::{rows, Col, Erasure, ErasureNote, Outcome, PersonalData, PrivacyFuture, Section, Subject};
use shrooms_core::Db;
use sqlx::Row;

pub struct ClubsPersonalData;

fn key(s: &Subject) -> String {
    identity_key(&s.family_name, &s.given_name)
}

const EXECUTIVE: &str = "x.org_id = $1 AND ((x.email <> '' AND LOWER(x.email) = LOWER($2)) OR \
                         (LOWER(x.last_name) = LOWER($3) AND LOWER(x.first_name) = LOWER($4)))";

impl PersonalData for ClubsPersonalData {
    fn export<'a>(&'a self, db: &'a Db, s: &'a Subject) -> PrivacyFuture<'a, Vec<Section>> {
        Box::pin(async move {
            use Col::*;
            let org = s.org.to_string();
            let k = key(s);
            let participants = rows(
                db,
                "SELECT last_name, first_name, field_of_study, level, created_at FROM clubs_participants WHERE org_id = $1 AND identity_key = $2",
                &[&org, &k],
                &[("last_name", Text), ("first_name", Text), ("field_of_study", Text), ("level", Text), ("created_at", Time)],
            )
            .await?;
            let attendances = rows(
                db,
                "SELECT c.name, a.theme, a.starts_at, t.rating, t.suggestion, t.submitted_at FROM clubs_attendances t \
                 JOIN clubs_participants p ON p.id = t.participant_id JOIN clubs_activities a ON a.id = t.activity_id \
                 JOIN clubs c ON c.id = t.club_id WHERE t.org_id = $1 AND p.identity_key = $2 ORDER BY a.starts_at",
                &[&org, &k],
                &[
                    ("club", Text),
                    ("activity", Text),
                    ("starts_at", Time),
                    ("rating", OptInt),
                    ("suggestion", Text),
                    ("submitted_at", Time),
                ],
            )
            .await?;
            let executives = rows(
                db,
                &format!(
                    "SELECT c.name, x.last_name, x.first_name, x.email, x.phone, x.position, x.is_head FROM clubs_executives x \
                     JOIN clubs c ON c.id = x.club_id WHERE {EXECUTIVE}"
                ),
                &[&org, s.email.as_deref().unwrap_or(""), &s.family_name, &s.given_name],
                &[("club", Text), ("last_name", Text), ("first_name", Text), ("email", Text), ("phone", Text), ("position", Text), ("is_head", Bool)],
            )
            .await?;
            Ok(vec![
                Section::new(MODULE, "participants", participants),
                Section::new(MODULE, "attendances", attendances),
                Section::new(MODULE, "executives", executives),
            ])
        })
    }

    fn obligations<'a>(&'a self, tx: &'a mut Tx, s: &'a Subject) -> PrivacyFuture<'a, Vec<String>> {
        Box::pin(async move {
            let found = sqlx::query(&format!(
                "SELECT c.name, x.position FROM clubs_executives x JOIN clubs c ON c.id = x.club_id WHERE {EXECUTIVE}"
            ))
            .bind(s.org.to_string())
            .bind(s.email.as_deref().unwrap_or(""))
            .bind(&s.family_name)
            .bind(&s.given_name)
            .fetch_all(tx.conn())
            .await?;
            let mut out = Vec::new();
            for r in &found {
                let (club, position): (String, String) = (r.try_get(0)?, r.try_get(1)?);
                out.push(format!(
                    "They are listed in the office of the club {club} ({position}): remove them there first."
                ));
            }
            Ok(out)
        })
    }

    fn erase<'a>(&'a self, tx: &'a mut Tx, e: &'a Erasure) -> PrivacyFuture<'a, Vec<ErasureNote>> {
        Box::pin(async move {
            let org = e.subject.org.to_string();
            let k = key(&e.subject);
            let ids: Vec<String> =
                sqlx::query("SELECT id FROM clubs_participants WHERE org_id = $1 AND identity_key = $2")
                    .bind(&org)
                    .bind(&k)
                    .fetch_all(tx.conn())
                    .await?
                    .iter()
                    .map(|r| r.try_get(0))
                    .collect::<Result<_, _>>()?;
            let mut attendances = 0;
            for id in &ids {
                attendances += sqlx::query(
                    "UPDATE clubs_attendances SET suggestion = '', field_of_study = '', level = '' WHERE org_id = $1 AND participant_id = $2",
                )
                .bind(&org)
                .bind(id)
                .execute(tx.conn())
                .await?
                .rows_affected() as i64;
                sqlx::query("UPDATE clubs_results SET winner_name = $1 WHERE org_id = $2 AND participant_id = $3")
                    .bind(&e.pseudonym)
                    .bind(&org)
                    .bind(id)
                    .execute(tx.conn())
                    .await?;
                sqlx::query(
                    "UPDATE clubs_participants SET last_name = $1, first_name = '', field_of_study = '', level = '', identity_key = $2 \
                     WHERE org_id = $3 AND id = $4",
                )
                .bind(&e.pseudonym)
                .bind(format!("erased {}", id))
                .bind(&org)
                .bind(id)
                .execute(tx.conn())
                .await?;
            }
            Ok(vec![
                ErasureNote::new(
                    MODULE,
                    "participants",
                    Outcome::Pseudonymised,
                    ids.len() as i64,
                    "Participant named by the pseudonym; study field and level emptied (also on prize lists).",
                ),
                ErasureNote::new(
                    MODULE,
                    "attendances",
                    Outcome::Pseudonymised,
                    attendances,
                    "Attendances and ratings kept for the clubs' statistics; suggestions emptied.",
                ),
            ])
        })
    }
}
