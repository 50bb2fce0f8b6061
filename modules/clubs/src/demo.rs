//! Demo data: the AESI federation's four clubs (computing, English, public
//! speaking, sport) with executives, a programme, and `years` years of
//! activities with attendance, ratings, suggestions, competition results
//! and cash. Reproducible: the same seed gives the same data. Rows are
//! written in bulk, with one audit entry per club.

use crate::service;
use serde_json::json;
use shrooms_core::audit::{self, Change, Who};
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::module::{DemoCtx, DemoFuture};
use shrooms_core::{AppState, CoreResult};

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const CLUBS: &[(&str, &str, &str, bool)] = &[
    (
        "Club d'Informatique",
        "Renforcer les compétences en informatique et nouvelles technologies.",
        "Ateliers de programmation, analyse de données avec R et Python, hackathons.",
        false,
    ),
    (
        "Club d'Anglais",
        "Le cadre idéal pour apprendre l'anglais.",
        "Conversation, débats en anglais, préparation aux tests, ciné-club.",
        false,
    ),
    (
        "Club d'Art Oratoire",
        "Développer la prise de parole en public.",
        "Exposés, concours d'éloquence, simulations de soutenance.",
        true,
    ),
    (
        "Club de Sport",
        "Le bien-être physique et mental par l'activité physique.",
        "Football, course à pied, tournois inter-promotions.",
        true,
    ),
];
const THEMES: &[&[&str]] = &[
    &[
        "Atelier Python",
        "Introduction à R",
        "Git et GitHub",
        "Visualisation de données",
        "Excel avancé",
        "Hackathon statistique",
        "SQL pour statisticiens",
        "Machine learning, premiers pas",
    ],
    &[
        "Conversation club",
        "Débat : les réseaux sociaux",
        "Préparation au TOEFL",
        "Ciné-club en VO",
        "Writing workshop",
        "Public speaking in English",
    ],
    &[
        "Concours d'éloquence",
        "Simulation de soutenance",
        "Techniques d'argumentation",
        "Improvisation",
        "Lecture à voix haute",
        "Débat contradictoire",
    ],
    &[
        "Tournoi de football",
        "Course à pied",
        "Séance de fitness",
        "Tournoi de basket",
        "Marche sportive",
        "Relais inter-promotions",
    ],
];
const PLACES: &[&str] =
    &["Amphi A", "Salle 2", "Salle informatique", "Terrain de sport", "Bibliothèque", "Salle polyvalente"];
const FIRST: &[&str] = &[
    "Aïcha",
    "Koffi",
    "Fatou",
    "Mamadou",
    "Awa",
    "Yao",
    "Aminata",
    "Ibrahim",
    "Mariam",
    "Seydou",
    "Adjoa",
    "Kwame",
    "Salimata",
    "Ousmane",
    "Rokia",
    "Moussa",
    "Nafissatou",
    "Cheick",
    "Ramatou",
    "Issa",
];
const LAST: &[&str] = &[
    "Kouassi",
    "Traoré",
    "Diallo",
    "Koné",
    "Ouédraogo",
    "Bamba",
    "Coulibaly",
    "Yao",
    "Touré",
    "Sawadogo",
    "N'Guessan",
    "Diabaté",
    "Konaté",
    "Sanogo",
    "Zongo",
    "Kaboré",
];
const FIELDS: &[&str] = &["Statistique", "Démographie", "Économie", "Actuariat"];
const LEVELS: &[&str] = &["L1", "L2", "L3", "M1", "M2"];
const SUGGESTIONS: &[&str] = &[
    "Plus de pratique",
    "Commencer à l'heure",
    "Une salle plus grande",
    "Plus d'exemples concrets",
    "Refaire cette activité",
    "Prévoir des rafraîchissements",
    "",
];
const DIFFICULTIES: &[&str] = &[
    "Salle réservée tardivement",
    "Coupure de courant",
    "Peu de participants à cause des examens",
    "Matériel insuffisant",
    "",
];
const POSITIONS: &[&str] =
    &["Président·e", "Vice-président·e", "Secrétaire", "Trésorier·e", "Chargé·e de communication"];
const EXPENSES: &[&str] =
    &["Rafraîchissements", "Impression d'affiches", "Location de matériel", "Prix du concours", "Transport"];

pub fn run(st: AppState, ctx: DemoCtx) -> DemoFuture {
    Box::pin(async move {
        let Some(org) = ctx.orgs.first().copied() else { return Ok("clubs: no organisation".into()) };
        let r = seed(&st, org, 1, ctx.seed).await?;
        Ok(format!("clubs: {} clubs, {} activities, {} attendances in the first organisation", r.0, r.1, r.2))
    })
}

/// Writes the four clubs and `years` years of activity into `org`; returns
/// (clubs, activities, attendances).
pub async fn seed(st: &AppState, org: OrgId, years: i64, seed: u64) -> CoreResult<(usize, usize, usize)> {
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let who = Who::system("demo");
    let now = Timestamp::now().0;
    let day = 86_400_000i64;
    let o = org.to_string();
    // A pool of students, who come back to the clubs they like.
    let mut students: Vec<(String, String, String, String, String)> = Vec::new();
    let mut tx = st.db.begin().await?;
    for i in 0..(300 * years.max(1)) {
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let first = format!("{first}{}", if i >= 300 { format!(" {}", i / 300 + 1) } else { String::new() });
        let key = crate::domain::identity_key(last, &format!("{first} {i}"));
        let id = uuid::Uuid::now_v7().to_string();
        let (field, level) = (rng.pick(FIELDS).to_string(), rng.pick(LEVELS).to_string());
        sqlx::query("INSERT INTO clubs_participants (id, org_id, identity_key, last_name, first_name, field_of_study, level, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(&id)
            .bind(&o)
            .bind(&key)
            .bind(last)
            .bind(&first)
            .bind(&field)
            .bind(&level)
            .bind(now)
            .execute(tx.conn())
            .await?;
        students.push((id, first, last.to_string(), field, level));
    }
    tx.commit().await?;
    let (mut n_act, mut n_att) = (0usize, 0usize);
    let year = service::this_year("UTC");
    for (ci, (name, summary, description, competitive)) in CLUBS.iter().enumerate() {
        let mut tx = st.db.begin().await?;
        let club_id = uuid::Uuid::now_v7().to_string();
        let slug = crate::domain::slugify(name);
        sqlx::query("INSERT INTO clubs (id, org_id, slug, name, summary, description, archived, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7) ON CONFLICT (org_id, slug) DO NOTHING")
            .bind(&club_id)
            .bind(&o)
            .bind(&slug)
            .bind(name)
            .bind(summary)
            .bind(description)
            .bind(now)
            .execute(tx.conn())
            .await?;
        let mut execs = Vec::new();
        for (pi, position) in POSITIONS.iter().enumerate() {
            let id = uuid::Uuid::now_v7().to_string();
            let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
            let email = format!(
                "{}.{}@aesi.example.org",
                slug.split('-').next_back().unwrap_or("club"),
                POSITIONS.len() * ci + pi
            );
            sqlx::query("INSERT INTO clubs_executives (id, org_id, club_id, last_name, first_name, email, phone, field_of_study, level, position, is_head, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)")
                .bind(&id)
                .bind(&o)
                .bind(&club_id)
                .bind(last)
                .bind(first)
                .bind(&email)
                .bind(format!("+225 07 {:02} {:02} {:02} {:02}", rng.below(100), rng.below(100), rng.below(100), rng.below(100)))
                .bind(rng.pick(FIELDS))
                .bind(rng.pick(LEVELS))
                .bind(position)
                .bind((pi == 0) as i64)
                .bind(now)
                .execute(tx.conn())
                .await?;
            execs.push(id);
        }
        // Each club has its regulars: a third of the students.
        let regulars: Vec<usize> = (0..students.len()).filter(|i| (i + ci) % 3 == 0 || rng.below(10) == 0).collect();
        let activities = 30 * years.max(1);
        for k in 0..activities {
            // Spread over the years, the last few in the coming weeks.
            let offset = (k * 365 * years.max(1)) / activities;
            let starts = (now / day) * day - (365 * years.max(1) - offset - 20) * day + 13 * 3_600_000;
            let state = if starts > now {
                "planned"
            } else if rng.below(20) == 0 {
                "cancelled"
            } else {
                "done"
            };
            let id = uuid::Uuid::now_v7().to_string();
            let competition = *competitive && rng.below(3) == 0;
            let theme = rng.pick(THEMES[ci]);
            sqlx::query("INSERT INTO clubs_activities (id, org_id, club_id, theme, starts_at, ends_at, place, description, state, difficulties, is_competition, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)")
                .bind(&id)
                .bind(&o)
                .bind(&club_id)
                .bind(theme)
                .bind(starts)
                .bind(starts + 2 * 3_600_000)
                .bind(rng.pick(PLACES))
                .bind(format!("{theme} — {name}."))
                .bind(state)
                .bind(if state == "done" { rng.pick(DIFFICULTIES) } else { "" })
                .bind(competition as i64)
                .bind(now)
                .execute(tx.conn())
                .await?;
            n_act += 1;
            if state != "done" {
                continue;
            }
            let count = 10 + rng.below(40) as usize;
            let mut seen = std::collections::HashSet::new();
            let mut attended = Vec::new();
            for _ in 0..count {
                let s = regulars[rng.below(regulars.len() as u64) as usize];
                if !seen.insert(s) {
                    continue;
                }
                let (pid, _, _, field, level) = &students[s];
                let rating = if rng.below(5) == 0 { None } else { Some(3 + rng.below(3) as i64) };
                sqlx::query("INSERT INTO clubs_attendances (id, org_id, club_id, activity_id, participant_id, submission_key, field_of_study, level, rating, suggestion, submitted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)")
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(&o)
                    .bind(&club_id)
                    .bind(&id)
                    .bind(pid)
                    .bind(uuid::Uuid::now_v7().to_string())
                    .bind(field)
                    .bind(level)
                    .bind(rating)
                    .bind(if rng.below(4) == 0 { rng.pick(SUGGESTIONS) } else { "" })
                    .bind(starts + 600_000)
                    .execute(tx.conn())
                    .await?;
                attended.push(s);
                n_att += 1;
            }
            if competition {
                for (rank, s) in attended.iter().take(3).enumerate() {
                    let (pid, first, last, _, _) = &students[*s];
                    sqlx::query("INSERT INTO clubs_results (id, org_id, activity_id, participant_id, winner_name, rank_no, prize) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                        .bind(uuid::Uuid::now_v7().to_string())
                        .bind(&o)
                        .bind(&id)
                        .bind(pid)
                        .bind(format!("{first} {last}"))
                        .bind(rank as i64 + 1)
                        .bind(if rank == 0 { "Trophée" } else { "" })
                        .execute(tx.conn())
                        .await?;
                }
            }
            // Cash: what the activity cost, sometimes what it brought in.
            for (direction, reason, cents) in [
                ("expense", rng.pick(EXPENSES), 1000 + rng.below(9000) as i64),
                ("income", "Participation", 500 + rng.below(3000) as i64),
            ] {
                if direction == "income" && rng.below(3) != 0 {
                    continue;
                }
                let mid = uuid::Uuid::now_v7().to_string();
                let on = jiff::Timestamp::from_millisecond(starts)
                    .map(|t| t.to_zoned(jiff::tz::TimeZone::UTC).date().to_string())
                    .unwrap_or_default();
                let key = &st.data_key;
                sqlx::query("INSERT INTO clubs_money (id, org_id, club_id, activity_id, direction, occurred_on, amount_sealed, reason_sealed, comment_sealed, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, $10)")
                    .bind(&mid)
                    .bind(&o)
                    .bind(&club_id)
                    .bind(&id)
                    .bind(direction)
                    .bind(&on)
                    .bind(key.seal_i64(&format!("clubs_money.amount:{mid}"), cents))
                    .bind(key.seal(&format!("clubs_money.reason:{mid}"), reason))
                    .bind(key.seal(&format!("clubs_money.comment:{mid}"), ""))
                    .bind(now)
                    .execute(tx.conn())
                    .await?;
            }
        }
        for t in 0..12 {
            let done = rng.below(10) < 6;
            sqlx::query("INSERT INTO clubs_tasks (id, org_id, club_id, year, title, assignee_id, activity_id, due_on, done_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8, $9)")
                .bind(uuid::Uuid::now_v7().to_string())
                .bind(&o)
                .bind(&club_id)
                .bind(year)
                .bind(format!("{} {}", ["Préparer", "Réserver la salle pour", "Communiquer sur", "Faire le bilan de"][t % 4], rng.pick(THEMES[ci])))
                .bind(&execs[t % execs.len()])
                .bind(format!("{year}-{:02}-{:02}", t % 12 + 1, 10 + t % 18))
                .bind(if done { Some(now) } else { None })
                .bind(now)
                .execute(tx.conn())
                .await?;
        }
        audit::record(
            &mut tx,
            &who,
            Change {
                org: Some(org),
                action: "clubs.demo",
                entity_type: "club",
                entity_id: club_id.clone(),
                before: None,
                after: Some(json!({"name": name, "activities": activities})),
            },
        )
        .await?;
        service::touch(&mut tx, org).await?;
        tx.commit().await?;
    }
    Ok((CLUBS.len(), n_act, n_att))
}
