//! Syntheses of a club and of the federation: participants per activity,
//! average, evolution per month, winners, top participants, execution rate,
//! and (for executives) cash, difficulties, suggestions and ratings.
//!
//! Computed from a handful of queries and cached per organisation, keyed by
//! the organisation's clubs stamp (`service::touch`, bumped in every write
//! transaction), so a cached synthesis is never served after a change, on
//! any replica. The cache keeps the public and the restricted parts
//! together; pages drop what the viewer may not see.

use crate::domain::{self, State};
use crate::service::{self, Activity, AttendanceRow, Club, ResultRow, Task};
use serde::Serialize;
use shrooms_core::ids::OrgId;
use shrooms_core::{AppState, CoreResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PerActivity {
    pub activity_id: String,
    pub theme: String,
    /// Local date `YYYY-MM-DD`.
    pub date: String,
    pub participants: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct PerMonth {
    /// `YYYY-MM`.
    pub month: String,
    pub participants: i64,
    pub activities: i64,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Winner {
    pub activity_id: String,
    pub theme: String,
    pub date: String,
    pub rank: i64,
    pub name: String,
    pub prize: String,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct TopParticipant {
    pub participant_id: String,
    pub name: String,
    pub points: i64,
    pub attendances: i64,
    pub podiums: i64,
}

/// What executives see in addition.
#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub struct Restricted {
    pub cash: service::CashSummary,
    /// Average rating (1–5) given by participants, one decimal; none without ratings.
    pub average_rating: Option<String>,
    pub ratings: i64,
    /// Suggestions written by participants, newest first (at most 50).
    pub suggestions: Vec<Feedback>,
    /// Difficulties recorded on activities, newest first.
    pub difficulties: Vec<Feedback>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Feedback {
    pub activity_id: String,
    pub theme: String,
    pub date: String,
    pub text: String,
    pub rating: Option<i64>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct ClubSynthesis {
    pub club_id: String,
    pub club_name: String,
    pub club_slug: String,
    pub activities_total: i64,
    pub activities_done: i64,
    pub upcoming: i64,
    /// Attendance forms signed.
    pub attendances: i64,
    /// Different people.
    pub participants: i64,
    /// Participants per held activity, one decimal ("23.5").
    pub average_per_activity: String,
    pub per_activity: Vec<PerActivity>,
    pub per_month: Vec<PerMonth>,
    pub winners: Vec<Winner>,
    pub top: Vec<TopParticipant>,
    pub tasks_total: i64,
    pub tasks_done: i64,
    /// Percent of the year's programme done; none without tasks.
    pub execution_rate: Option<i64>,
    /// Executives only: absent from public answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted: Option<Restricted>,
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
#[schema(as = ClubsDashboard)]
pub struct Dashboard {
    pub year: i64,
    pub clubs: Vec<ClubSynthesis>,
    /// Top participants of all clubs together.
    pub top: Vec<TopParticipant>,
    pub attendances: i64,
    pub participants: i64,
    pub activities_done: i64,
    /// Programme execution of all clubs together; none without tasks.
    pub execution_rate: Option<i64>,
    /// Participants per month, all clubs together.
    pub per_month: Vec<PerMonth>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restricted: Option<Restricted>,
}

fn one_decimal(num: i64, den: i64) -> String {
    if den == 0 {
        return "0".into();
    }
    let tenths = (num * 10 + den / 2) / den;
    format!("{}.{}", tenths / 10, tenths % 10)
}

fn local_date(a: &Activity) -> String {
    a.starts_local.get(..10).unwrap_or("").to_string()
}

struct Data {
    clubs: Vec<Club>,
    activities: Vec<Activity>,
    attendances: Vec<AttendanceRow>,
    results: HashMap<String, Vec<ResultRow>>,
    tasks: Vec<Task>,
    money: Vec<service::MoneyLine>,
    scoring: domain::Scoring,
    year: i64,
}

async fn load(st: &AppState, org: OrgId, zone: &str) -> CoreResult<Data> {
    let year = service::this_year(zone);
    let clubs = service::list_clubs(&st.db, org).await?;
    let activities = service::list_activities(&st.db, org, zone, None).await?;
    let attendances = service::attendances(&st.db, org, None, None).await?;
    let mut results: HashMap<String, Vec<ResultRow>> = HashMap::new();
    for (activity, r) in service::all_results(&st.db, org).await? {
        results.entry(activity).or_default().push(r);
    }
    let tasks = service::tasks(&st.db, org, None, Some(year)).await?;
    let money = service::money(&st.db, &st.data_key, org, None).await?;
    let scoring = service::scoring(&st.db, org).await?;
    Ok(Data { clubs, activities, attendances, results, tasks, money, scoring, year })
}

fn top(d: &Data, club: Option<&str>, activities: &HashMap<&str, &Activity>, n: usize) -> Vec<TopParticipant> {
    let mut by: HashMap<&str, TopParticipant> = HashMap::new();
    for t in d.attendances.iter().filter(|t| club.is_none_or(|c| c == t.club_id)) {
        let e = by.entry(&t.participant_id).or_insert_with(|| TopParticipant {
            participant_id: t.participant_id.clone(),
            name: format!("{} {}", t.first_name, t.last_name),
            points: 0,
            attendances: 0,
            podiums: 0,
        });
        e.attendances += 1;
        e.points += d.scoring.points_attendance;
    }
    for (aid, rs) in &d.results {
        let Some(a) = activities.get(aid.as_str()) else { continue };
        if club.is_some_and(|c| c != a.club_id) {
            continue;
        }
        for r in rs {
            if let Some(p) = r.participant_id.as_deref().and_then(|p| by.get_mut(p)) {
                p.points += d.scoring.for_rank(r.rank);
                if r.rank <= 3 {
                    p.podiums += 1;
                }
            }
        }
    }
    let mut v: Vec<TopParticipant> = by.into_values().collect();
    v.sort_by(|a, b| b.points.cmp(&a.points).then(b.attendances.cmp(&a.attendances)).then(a.name.cmp(&b.name)));
    v.truncate(n);
    v
}

fn per_month(acts: &[&Activity], counts: &HashMap<&str, i64>) -> Vec<PerMonth> {
    let mut m: Vec<PerMonth> = Vec::new();
    for a in acts.iter().filter(|a| a.state != State::Cancelled) {
        let month = a.starts_local.get(..7).unwrap_or("").to_string();
        let n = counts.get(a.id.as_str()).copied().unwrap_or(0);
        match m.iter_mut().find(|x| x.month == month) {
            Some(x) => {
                x.participants += n;
                x.activities += 1;
            }
            None => m.push(PerMonth { month, participants: n, activities: 1 }),
        }
    }
    m.sort_by(|a, b| a.month.cmp(&b.month));
    m
}

fn restricted(d: &Data, club: Option<&str>, acts: &[&Activity]) -> Restricted {
    let in_club = |c: &str| club.is_none_or(|k| k == c);
    let lines: Vec<service::MoneyLine> = d.money.iter().filter(|l| in_club(&l.club_id)).cloned().collect();
    let by_id: HashMap<&str, &&Activity> = acts.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut rating_sum = 0;
    let mut ratings = 0;
    let mut suggestions = Vec::new();
    for t in d.attendances.iter().filter(|t| in_club(&t.club_id)).rev() {
        if let Some(r) = t.rating {
            rating_sum += r;
            ratings += 1;
        }
        if !t.suggestion.is_empty() && suggestions.len() < 50 {
            let a = by_id.get(t.activity_id.as_str());
            suggestions.push(Feedback {
                activity_id: t.activity_id.clone(),
                theme: a.map(|a| a.theme.clone()).unwrap_or_default(),
                date: a.map(|a| local_date(a)).unwrap_or_default(),
                text: t.suggestion.clone(),
                rating: t.rating,
            });
        }
    }
    let difficulties = acts
        .iter()
        .filter(|a| a.difficulties.as_deref().is_some_and(|s| !s.trim().is_empty()))
        .take(50)
        .map(|a| Feedback {
            activity_id: a.id.clone(),
            theme: a.theme.clone(),
            date: local_date(a),
            text: a.difficulties.clone().unwrap_or_default(),
            rating: None,
        })
        .collect();
    Restricted {
        cash: service::cash_summary(&lines, None, None),
        average_rating: (ratings > 0).then(|| one_decimal(rating_sum, ratings)),
        ratings,
        suggestions,
        difficulties,
    }
}

fn club_synthesis(d: &Data, c: &Club, by_id: &HashMap<&str, &Activity>, counts: &HashMap<&str, i64>) -> ClubSynthesis {
    let acts: Vec<&Activity> = d.activities.iter().filter(|a| a.club_id == c.id).collect();
    let held: Vec<&&Activity> = acts.iter().filter(|a| a.state == State::Done).collect();
    let attendances: i64 = d.attendances.iter().filter(|t| t.club_id == c.id).count() as i64;
    let held_attendances: i64 = held.iter().map(|a| counts.get(a.id.as_str()).copied().unwrap_or(0)).sum();
    let people: std::collections::HashSet<&str> =
        d.attendances.iter().filter(|t| t.club_id == c.id).map(|t| t.participant_id.as_str()).collect();
    let mut per_activity: Vec<PerActivity> = acts
        .iter()
        .filter(|a| a.state != State::Cancelled && a.state != State::Planned)
        .map(|a| PerActivity {
            activity_id: a.id.clone(),
            theme: a.theme.clone(),
            date: local_date(a),
            participants: counts.get(a.id.as_str()).copied().unwrap_or(0),
        })
        .collect();
    per_activity.sort_by(|a, b| a.date.cmp(&b.date));
    let mut winners = Vec::new();
    for a in &acts {
        if let Some(rs) = d.results.get(&a.id) {
            for r in rs.iter().filter(|r| r.rank <= 3) {
                winners.push(Winner {
                    activity_id: a.id.clone(),
                    theme: a.theme.clone(),
                    date: local_date(a),
                    rank: r.rank,
                    name: r.winner_name.clone(),
                    prize: r.prize.clone(),
                });
            }
        }
    }
    winners.sort_by(|a, b| b.date.cmp(&a.date).then(a.rank.cmp(&b.rank)));
    winners.truncate(30);
    let tasks: Vec<&Task> = d.tasks.iter().filter(|t| t.club_id == c.id).collect();
    let tasks_done = tasks.iter().filter(|t| t.done).count() as i64;
    let now = jiff::Timestamp::now().as_millisecond();
    ClubSynthesis {
        club_id: c.id.clone(),
        club_name: c.name.clone(),
        club_slug: c.slug.clone(),
        activities_total: acts.len() as i64,
        activities_done: held.len() as i64,
        upcoming: acts.iter().filter(|a| a.starts_ms > now && a.state == State::Planned).count() as i64,
        attendances,
        participants: people.len() as i64,
        average_per_activity: one_decimal(held_attendances, held.len() as i64),
        per_activity,
        per_month: per_month(&acts, counts),
        winners,
        top: top(d, Some(&c.id), by_id, 10),
        tasks_total: tasks.len() as i64,
        tasks_done,
        execution_rate: domain::execution_rate(tasks_done, tasks.len() as i64),
        restricted: Some(restricted(d, Some(&c.id), &acts)),
    }
}

fn compute(d: &Data) -> Dashboard {
    let by_id: HashMap<&str, &Activity> = d.activities.iter().map(|a| (a.id.as_str(), a)).collect();
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for t in &d.attendances {
        *counts.entry(t.activity_id.as_str()).or_default() += 1;
    }
    let clubs: Vec<ClubSynthesis> =
        d.clubs.iter().filter(|c| !c.archived).map(|c| club_synthesis(d, c, &by_id, &counts)).collect();
    let all: Vec<&Activity> = d.activities.iter().collect();
    let people: std::collections::HashSet<&str> = d.attendances.iter().map(|t| t.participant_id.as_str()).collect();
    let tasks_done = d.tasks.iter().filter(|t| t.done).count() as i64;
    Dashboard {
        year: d.year,
        top: top(d, None, &by_id, 10),
        attendances: d.attendances.len() as i64,
        participants: people.len() as i64,
        activities_done: d.activities.iter().filter(|a| a.state == State::Done).count() as i64,
        execution_rate: domain::execution_rate(tasks_done, d.tasks.len() as i64),
        per_month: per_month(&all, &counts),
        restricted: Some(restricted(d, None, &all)),
        clubs,
    }
}

type Cache = Mutex<HashMap<OrgId, (i64, Arc<Dashboard>)>>;

fn cache() -> &'static Cache {
    static C: OnceLock<Cache> = OnceLock::new();
    C.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The whole synthesis of an organisation's clubs, from the cache when the
/// organisation's clubs data has not changed since it was computed.
pub async fn dashboard(st: &AppState, org: OrgId, zone: &str) -> CoreResult<Arc<Dashboard>> {
    let version = service::stamp(&st.db, org).await?;
    if let Some((v, d)) = cache().lock().map_err(|_| shrooms_core::CoreError::Internal("cache".into()))?.get(&org) {
        if *v == version {
            return Ok(d.clone());
        }
    }
    let d = Arc::new(compute(&load(st, org, zone).await?));
    let mut c = cache().lock().map_err(|_| shrooms_core::CoreError::Internal("cache".into()))?;
    if c.len() > 1000 {
        c.clear();
    }
    c.insert(org, (version, d.clone()));
    Ok(d)
}

/// Computes without the cache (benchmarks, and the uncached figure).
pub async fn dashboard_uncached(st: &AppState, org: OrgId, zone: &str) -> CoreResult<Dashboard> {
    Ok(compute(&load(st, org, zone).await?))
}

/// The synthesis as a viewer may see it: restricted parts only for clubs they execute.
pub fn visible(d: &Dashboard, sees_all: bool, sees: impl Fn(&str) -> bool) -> Dashboard {
    let mut out = d.clone();
    if !sees_all {
        out.restricted = None;
    }
    for c in &mut out.clubs {
        if !sees_all && !sees(&c.club_id) {
            c.restricted = None;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn averages_round_to_one_decimal() {
        assert_eq!(super::one_decimal(47, 2), "23.5");
        assert_eq!(super::one_decimal(10, 3), "3.3");
        assert_eq!(super::one_decimal(0, 0), "0");
    }
}
