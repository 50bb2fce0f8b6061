//! The activity report of a club for a period: a PDF written in the
//! background, attached to the club (for its executives), and mailed to the
//! club head and to whoever asked for it, with the link.

use crate::service::{self, Club};
use crate::MODULE;
use serde_json::json;
use shrooms_core::audit::Who;
use shrooms_core::ids::OrgId;
use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::pdf::{Branding, Document};
use shrooms_core::{AppState, CoreError, CoreResult};

pub const REPORT: JobSpec =
    JobSpec { name: "clubs.report", max_attempts: 3, backoff_secs: 30, timeout_secs: 60, run: run_report };

/// Asks for a report; it is written by the job, in the background.
pub async fn request(
    st: &AppState,
    who: &Who,
    cap: &shrooms_core::permissions::CanWrite,
    club: &Club,
    from: &str,
    to: &str,
    notify: Option<&str>,
) -> CoreResult<String> {
    let mut errors = Vec::new();
    for (k, v) in [("from", from), ("to", to)] {
        if v.parse::<jiff::civil::Date>().is_err() {
            errors.push(shrooms_core::error::FieldError::new(k, "Give a date like 2026-03-31."));
        }
    }
    if errors.is_empty() && from > to {
        errors.push(shrooms_core::error::FieldError::new("to", "The end comes before the start."));
    }
    if !errors.is_empty() {
        return Err(CoreError::Validation(errors));
    }
    let mut tx = st.db.begin().await?;
    let id = shrooms_core::jobs::enqueue(
        &mut tx,
        &REPORT,
        Some(cap.org()),
        json!({"club_id": club.id, "from": from, "to": to, "notify": notify}),
        None,
        0,
    )
    .await?;
    shrooms_core::audit::record(
        &mut tx,
        who,
        shrooms_core::audit::Change {
            org: Some(cap.org()),
            action: "clubs.report.request",
            entity_type: "club",
            entity_id: club.id.clone(),
            before: None,
            after: Some(json!({"from": from, "to": to, "job": id})),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

fn money(c: &str, currency: &str) -> String {
    format!("{c} {currency}")
}

/// The PDF of a club's activity over a period.
pub async fn render(
    st: &AppState,
    org: &shrooms_core::orgs::Org,
    club: &Club,
    from: &str,
    to: &str,
    lang: &str,
) -> CoreResult<Vec<u8>> {
    let t = |k: &str| st.templates.tr(lang, k);
    let zone = &org.timezone;
    let acts: Vec<service::Activity> = service::list_activities(&st.db, org.id, zone, Some(&club.id))
        .await?
        .into_iter()
        .filter(|a| {
            let d = a.starts_local.get(..10).unwrap_or("");
            d >= from && d <= to
        })
        .rev()
        .collect();
    let attendances = service::attendances(&st.db, org.id, None, Some(&club.id)).await?;
    let in_period: Vec<&service::AttendanceRow> =
        attendances.iter().filter(|t| acts.iter().any(|a| a.id == t.activity_id)).collect();
    let people: std::collections::HashSet<&str> = in_period.iter().map(|t| t.participant_id.as_str()).collect();
    let lines = service::money(&st.db, &st.data_key, org.id, Some(&club.id)).await?;
    let cash = service::cash_summary(&lines, Some(from), Some(to));
    let colour = org.color_primary.clone().unwrap_or_else(|| "#FF6B35".into());
    let title = format!("{} — {} {} → {}", club.name, t("clubs.report.title"), from, to);
    let mut doc = Document::new(&title, Branding { org_name: org.name.clone(), colour });
    doc.heading(&title);
    let held = acts.iter().filter(|a| a.state == crate::domain::State::Done).count();
    doc.key_values(&[
        (&t("clubs.report.activities"), &acts.len().to_string()),
        (&t("clubs.report.held"), &held.to_string()),
        (&t("clubs.report.attendances"), &in_period.len().to_string()),
        (&t("clubs.report.participants"), &people.len().to_string()),
        (&t("clubs.cash.income"), &money(&cash.income, &org.currency)),
        (&t("clubs.cash.expenses"), &money(&cash.expenses, &org.currency)),
        (&t("clubs.cash.balance"), &money(&cash.balance, &org.currency)),
    ]);
    doc.heading(&t("clubs.activities"));
    let rows: Vec<Vec<String>> = acts
        .iter()
        .map(|a| {
            vec![
                a.starts_local.replace('T', " "),
                a.theme.clone(),
                a.place.clone(),
                t(a.state.key()),
                a.participants.to_string(),
            ]
        })
        .collect();
    doc.table(
        &[
            &t("clubs.field.date"),
            &t("clubs.field.theme"),
            &t("clubs.field.place"),
            &t("clubs.field.state"),
            &t("clubs.participants"),
        ],
        &[90.0, 170.0, 110.0, 70.0, 59.0],
        &rows,
    );
    let mut winners = Vec::new();
    for a in &acts {
        for r in service::results(&st.db, org.id, &a.id).await? {
            winners.push(vec![a.theme.clone(), r.rank.to_string(), r.winner_name, r.prize]);
        }
    }
    if !winners.is_empty() {
        doc.heading(&t("clubs.winners"));
        doc.table(
            &[&t("clubs.field.theme"), &t("clubs.field.rank"), &t("clubs.field.winner"), &t("clubs.field.prize")],
            &[190.0, 40.0, 140.0, 129.0],
            &winners,
        );
    }
    let difficulties: Vec<Vec<String>> = acts
        .iter()
        .filter(|a| a.difficulties.as_deref().is_some_and(|d| !d.trim().is_empty()))
        .map(|a| vec![a.theme.clone(), a.difficulties.clone().unwrap_or_default()])
        .collect();
    if !difficulties.is_empty() {
        doc.heading(&t("clubs.field.difficulties"));
        doc.table(&[&t("clubs.field.theme"), &t("clubs.field.difficulties")], &[160.0, 339.0], &difficulties);
    }
    let lines_rows: Vec<Vec<String>> = lines
        .iter()
        .filter(|l| l.occurred_on.as_str() >= from && l.occurred_on.as_str() <= to)
        .map(|l| {
            vec![
                l.occurred_on.clone(),
                t(&format!("clubs.direction.{}", l.direction.as_str())),
                l.reason.clone(),
                money(&l.amount, &org.currency),
            ]
        })
        .collect();
    if !lines_rows.is_empty() {
        doc.heading(&t("clubs.cash.title"));
        doc.table(
            &[&t("clubs.field.date"), &t("clubs.field.direction"), &t("clubs.field.reason"), &t("clubs.field.amount")],
            &[80.0, 70.0, 249.0, 100.0],
            &lines_rows,
        );
    }
    Ok(doc.finish(&format!("{} — {}", org.name, club.name)))
}

fn run_report(st: AppState, ctx: JobCtx) -> JobFuture {
    Box::pin(async move {
        let org_id: OrgId = ctx.org.ok_or_else(|| anyhow::anyhow!("a report belongs to an organisation"))?;
        let org = shrooms_core::orgs::find_org(&st.db, &org_id.to_string())
            .await?
            .ok_or_else(|| anyhow::anyhow!("organisation gone"))?;
        let p = &ctx.payload;
        let (club_id, from, to) =
            (p["club_id"].as_str().unwrap_or(""), p["from"].as_str().unwrap_or(""), p["to"].as_str().unwrap_or(""));
        let club = match service::club(&st.db, org_id, club_id).await {
            Ok(c) => c,
            Err(CoreError::NotFound) => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let grant = ctx.write_grant(MODULE).ok_or_else(|| anyhow::anyhow!("no organisation"))?;
        // A retry after the file was stored does not store a second copy.
        let name = format!("report-{}-{from}-{to}-{}.pdf", club.slug, &ctx.id[ctx.id.len().saturating_sub(6)..]);
        let existing = shrooms_core::files::list_for(&st.db, &grant.as_read(), "club_report", &club.id)
            .await?
            .into_iter()
            .find(|f| f.name == name);
        let lang = shrooms_core::outbox::language_for(&st.db, None).await?;
        let who = Who::system("clubs.report");
        let file = match existing {
            Some(f) => f,
            None => {
                let pdf = render(&st, &org, &club, from, to, &lang).await?;
                shrooms_core::files::store(
                    &st,
                    &who,
                    &grant,
                    &shrooms_core::files::Owner::new("club_report", &club.id),
                    shrooms_core::files::Upload { name, bytes: pdf, public: false },
                )
                .await?
            }
        };
        let link = format!("{}/o/{}/files/{}/content", st.base_url(), org.slug, file.id);
        let mut to_list: Vec<String> = service::executives(&st.db, org_id, &club.id)
            .await?
            .into_iter()
            .filter(|e| e.is_head)
            .filter_map(|e| e.email.filter(|m| !m.is_empty()))
            .collect();
        if let Some(n) = p["notify"].as_str().filter(|n| !n.is_empty()) {
            if !to_list.iter().any(|m| m.eq_ignore_ascii_case(n)) {
                to_list.push(n.to_string());
            }
        }
        let mail = shrooms_core::web::api::compose(
            &st,
            "clubs_report",
            &lang,
            json!({"club": club.name, "org": org.name, "from": from, "to": to, "link": link}),
        )
        .await?;
        let mut tx = st.db.begin().await?;
        // Mail once per job, even if the job runs again.
        let first = sqlx::query("INSERT INTO clubs_reports_mailed (job_id, org_id, file_id, mailed_at) VALUES ($1, $2, $3, $4) ON CONFLICT (job_id) DO NOTHING")
            .bind(&ctx.id)
            .bind(org_id.to_string())
            .bind(&file.id)
            .bind(shrooms_core::ids::Timestamp::now().0)
            .execute(tx.conn())
            .await?
            .rows_affected()
            == 1;
        if !first {
            return Ok(());
        }
        for addr in &to_list {
            shrooms_core::outbox::enqueue(&mut tx, Some(org_id), "clubs_report", addr, &mail).await?;
        }
        shrooms_core::audit::record(
            &mut tx,
            &who,
            shrooms_core::audit::Change {
                org: Some(org_id),
                action: "clubs.report.ready",
                entity_type: "club",
                entity_id: club.id.clone(),
                before: None,
                after: Some(json!({"file": file.id, "mailed_to": to_list.len()})),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(())
    })
}
