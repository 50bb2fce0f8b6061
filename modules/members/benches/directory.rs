//! Member directory benchmark (`cargo bench -p shrooms-members --bench directory`):
//! an organisation with 50,000 members (one to four periods each over six
//! years, three types, dues paid or not, some closed, households, SEPA
//! mandates, two custom fields of people), next to a second organisation of
//! 10,000 members, on SQLite and PostgreSQL. Seeding is plain SQL (not
//! timed); the summary rows are then built once (timed, reported).
//!
//! Each search runs `RUNS` times (50 by default) through the function the
//! API calls (`directory::search`) and then over HTTP against the running
//! server (`GET /api/v1/orgs/{org}/members/search`); median and p95 are
//! printed. Target: under 50 ms.
//!
//! `MEMBERS=50000` changes the size, `RUNS=50` the repetitions,
//! `BENCH_DB=sqlite|postgres` runs one database only, `ONLY=household`
//! the searches whose label contains the text, and `EXPLAIN=1` prints each
//! search's statement and plan (`directory::explain`). `KEEP=1` keeps the
//! seeded data for trying statements by hand: the SQLite database is copied
//! to `/tmp/directory-bench.sqlite`; the PostgreSQL one is named and kept
//! for ten minutes before the bench ends.

use serde_json::json;
use shrooms_core::ids::{OrgId, Timestamp};
use shrooms_core::permissions::CanWrite;
use shrooms_core::{core_module::CoreModule, Db, Module, Modules};
use shrooms_members::directory::{self, DirFilter, Sort};
use std::sync::Arc;
use std::time::Instant;
use testkit::{Backend, TestApp};

fn modules() -> Modules {
    let list: Vec<Arc<dyn Module>> = vec![
        Arc::new(CoreModule),
        Arc::new(shrooms_accounting::AccountingModule),
        Arc::new(shrooms_members::MembersModule),
    ];
    Modules::new(list).expect("modules")
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

const GIVEN: &[&str] =
    &["Marie", "Jean", "Léa", "Hugo", "Chloé", "Louis", "Emma", "Lucas", "Inès", "Jules", "Zoé", "Noah"];
const FAMILY: &[&str] = &[
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "Legrand",
];
const SECTIONS: &[&str] = &["Basket", "Chorale", "Jardin", "Théâtre", "Vélo"];
const QUARTERS: &[&str] =
    &["Croix-Rousse", "Presqu'île", "Guillotière", "Vaise", "Monplaisir", "Gerland", "Confluence"];

fn id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Tiny deterministic generator: the same data on both databases.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

enum V {
    T(String),
    N(Option<String>),
    I(i64),
}

/// Inserts rows of `cols` columns, many per statement.
async fn insert(db: &Db, table: &str, cols: &[&str], rows: Vec<Vec<V>>) {
    let per = (4000 / cols.len()).max(1);
    let mut tx = db.begin().await.unwrap();
    for chunk in rows.chunks(per) {
        let mut sql = format!("INSERT INTO {table} ({}) VALUES ", cols.join(", "));
        let mut n = 0;
        for (i, _) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(',');
            }
            sql.push('(');
            for k in 0..cols.len() {
                n += 1;
                sql.push_str(&format!("{}${n}", if k > 0 { ", " } else { "" }));
            }
            sql.push(')');
        }
        let mut q = sqlx::query(&sql);
        for row in chunk {
            for v in row {
                q = match v {
                    V::T(s) => q.bind(s.as_str()),
                    V::N(s) => q.bind(s.as_deref()),
                    V::I(i) => q.bind(*i),
                };
            }
        }
        q.execute(tx.conn()).await.unwrap();
    }
    tx.commit().await.unwrap();
}

struct Seeded {
    types: Vec<String>,
    households: Vec<String>,
}

/// `n` members of `org` with their periods, dues, profiles, mandates and
/// custom field values, straight in SQL.
async fn seed(app: &TestApp, token: &str, org_slug: &str, org: &str, n: usize, salt: u64) -> Seeded {
    let db = &app.state.db;
    let mut types = vec![];
    for (name, rule) in
        [("Annuelle", "calendar_year"), ("Famille", "calendar_year"), ("Bienfaitrice", "rolling_12_months")]
    {
        let (s, t) = app
            .post(
                token,
                &format!("/api/v1/orgs/{org_slug}/members/types"),
                json!({"name": name, "kind": "individual", "fee_rule": "fixed", "fee_cents": 3000, "period_rule": rule}),
            )
            .await;
        assert_eq!(s, 201, "{t}");
        types.push(t["id"].as_str().unwrap().to_string());
    }
    let mut fields = vec![];
    for body in [
        json!({"label": "Section", "key": "section", "kind": "choice", "options": SECTIONS}),
        json!({"label": "Quartier", "key": "quartier", "kind": "text"}),
    ] {
        let (s, f) = app.post(token, &format!("/api/v1/orgs/{org_slug}/custom-fields"), body).await;
        assert_eq!(s, 201, "{f}");
        fields.push(f["id"].as_str().unwrap().to_string());
    }
    let now = Timestamp::now().0;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ salt);
    let households: Vec<String> = (0..n / 20).map(|_| id()).collect();
    insert(
        db,
        "mem_households",
        &["id", "org_id", "kind", "name", "street", "postcode", "city", "country", "created_at", "updated_at"],
        households
            .iter()
            .enumerate()
            .map(|(i, h)| {
                vec![
                    V::T(h.clone()),
                    V::T(org.into()),
                    V::T("household".into()),
                    V::T(format!("Foyer {i}")),
                    V::T(format!("{i} rue Longue")),
                    V::T("69004".into()),
                    V::T("Lyon".into()),
                    V::T("FR".into()),
                    V::I(now),
                    V::I(now),
                ]
            })
            .collect(),
    )
    .await;
    let (mut people, mut terms, mut profiles, mut periods, mut dues, mut mandates, mut values) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    let year = jiff::Zoned::now().date().year() as usize;
    let mut receipt = 0i64;
    for k in 0..n {
        let p = id();
        let given =
            format!("{}{}", GIVEN[rng.next(GIVEN.len())], if k % 3 == 0 { format!(" {k}") } else { String::new() });
        let family = format!(
            "{}{}",
            FAMILY[rng.next(FAMILY.len())],
            if k % 2 == 0 { format!("-{}", k % 997) } else { String::new() }
        );
        let email = (k % 10 != 0).then(|| format!("m{k}.{salt}@example.org"));
        let phone = (k % 4 == 0).then(|| format!("06 {:02} {:02} {:02} {:02}", k % 97, k % 89, k % 83, k % 79));
        for t in shrooms_core::people::terms_of(&given, &family, email.as_deref(), phone.as_deref()) {
            terms.push(vec![V::T(org.into()), V::T(t), V::T(p.clone())]);
        }
        people.push(vec![
            V::T(p.clone()),
            V::T(org.into()),
            V::T(given),
            V::T(family),
            V::N(email),
            V::N(phone),
            V::T(String::new()),
            V::I(now),
            V::I(now),
        ]);
        let household = (k % 7 == 0 && !households.is_empty()).then(|| households[k % households.len()].clone());
        profiles.push(vec![
            V::T(org.into()),
            V::T(p.clone()),
            V::T(format!("{k} avenue des Tilleuls")),
            V::T("69003".into()),
            V::T("Lyon".into()),
            V::T("FR".into()),
            V::N(household),
            V::I(now),
        ]);
        // One to four consecutive yearly periods ending between six years ago and this year.
        let count = 1 + rng.next(4);
        let last = year - rng.next(6);
        let ty = &types[rng.next(types.len())];
        for y in (last + 1 - count)..=last {
            let per = id();
            let closed = (y == last && k % 23 == 0).then(|| format!("{y}-06-30"));
            periods.push(vec![
                V::T(per.clone()),
                V::T(org.into()),
                V::T(p.clone()),
                V::T(ty.clone()),
                V::T(if y == last + 1 - count { "joined" } else { "renewed" }.into()),
                V::T(format!("{y}-01-01")),
                V::N(Some(format!("{y}-12-31"))),
                V::I(3000),
                V::N(closed.clone()),
                V::N(closed.map(|_| "resigned".into())),
                V::I(now),
            ]);
            if y < year || k % 5 != 0 {
                receipt += 1;
                dues.push(vec![
                    V::T(id()),
                    V::T(org.into()),
                    V::I(receipt),
                    V::T(p.clone()),
                    V::T("Payeur".into()),
                    V::N(Some(per)),
                    V::I(3000),
                    V::T("cheque".into()),
                    V::T(format!("{y}-01-15")),
                    V::T("paid".into()),
                    V::T(format!("bench-{receipt}")),
                    V::I(now),
                ]);
            }
        }
        if k % 9 == 0 {
            mandates.push(vec![
                V::T(id()),
                V::T(org.into()),
                V::T(p.clone()),
                V::T(format!("ADH-{salt}-{k:06}")),
                V::T("DE89370400440532013000".into()),
                V::T("Bench".into()),
                V::T("2025-09-01".into()),
                V::T("active".into()),
                V::I(now),
            ]);
        }
        let section = SECTIONS[rng.next(SECTIONS.len())];
        let quarter = QUARTERS[rng.next(QUARTERS.len())];
        for (f, v) in [(&fields[0], section), (&fields[1], quarter)] {
            values.push(vec![
                V::T(org.into()),
                V::T("person".into()),
                V::T(p.clone()),
                V::T(f.clone()),
                V::T(v.into()),
                V::T(shrooms_core::people::fold(v).split_whitespace().collect::<Vec<_>>().join(" ")),
            ]);
        }
    }
    let cols = &["id", "org_id", "given_name", "family_name", "email", "phone", "search", "created_at", "updated_at"];
    insert(db, "people", cols, people).await;
    insert(db, "people_terms", &["org_id", "term", "person_id"], terms).await;
    let cols = &["org_id", "person_id", "street", "postcode", "city", "country", "household_id", "updated_at"];
    insert(db, "mem_profiles", cols, profiles).await;
    let cols = &[
        "id",
        "org_id",
        "person_id",
        "type_id",
        "origin",
        "starts_on",
        "ends_on",
        "fee_cents",
        "closed_on",
        "closed_reason",
        "created_at",
    ];
    insert(db, "mem_periods", cols, periods).await;
    let cols = &[
        "id",
        "org_id",
        "receipt_number",
        "person_id",
        "payer_name",
        "period_id",
        "amount_cents",
        "method",
        "paid_on",
        "status",
        "entry_id",
        "created_at",
    ];
    insert(db, "mem_dues", cols, dues).await;
    let cols = &["id", "org_id", "person_id", "reference", "iban", "debtor_name", "signed_on", "status", "created_at"];
    insert(db, "mem_mandates", cols, mandates).await;
    let cols = &["org_id", "entity_type", "entity_id", "field_id", "value_text", "value_fold"];
    insert(db, "custom_values", cols, values).await;
    Seeded { types, households }
}

fn stats(mut ms: Vec<f64>) -> (f64, f64) {
    ms.sort_by(f64::total_cmp);
    let p95 = ms[((ms.len() as f64 * 0.95).ceil() as usize).clamp(1, ms.len()) - 1];
    (ms[ms.len() / 2], p95)
}

async fn bench(backend: Backend, n: usize, runs: usize) {
    let app = TestApp::spawn(backend, modules()).await;
    let f = app.bootstrap().await;
    let (s, other) = app.post(&f.admin_token, "/api/v1/orgs", json!({"name": "Voisins", "slug": "voisins"})).await;
    assert_eq!(s, 201, "{other}");
    let t = Instant::now();
    let seeded = seed(&app, &f.admin_token, &f.org_slug, &f.org_id, n, 1).await;
    seed(&app, &f.admin_token, "voisins", other["id"].as_str().unwrap(), n / 5, 2).await;
    let seeding = t.elapsed().as_secs_f64();
    let db = &app.state.db;
    let org: OrgId = f.org_id.parse().unwrap();
    let t = Instant::now();
    let built = directory::rebuild(db, org).await.unwrap();
    let build = t.elapsed().as_secs_f64();
    // Statistics and visibility maps as autovacuum would leave them on a
    // running server (PostgreSQL vacuums a table after many inserts by
    // default; the test cluster may run with autovacuum off). Without the
    // visibility map an index-only scan of the search words still reads
    // every heap page it points to.
    if backend == Backend::Postgres {
        sqlx::query("VACUUM ANALYZE").execute(db.pool()).await.unwrap();
    }
    println!(
        "directory on {}: {n} members (+{} in another organisation), seeded in {seeding:.1} s; summary rows of {built} members built in {build:.2} s",
        app.backend_name(),
        n / 5
    );
    let cap = CanWrite::operator(org, "members").as_read();
    let zone = "Europe/Paris";
    let year = jiff::Zoned::now().date().year();
    let ty = &seeded.types[0];
    let filters: Vec<(&str, DirFilter, String)> = vec![
        (
            "status + type + text",
            DirFilter {
                q: Some("mar".into()),
                status: Some("up_to_date,dues_unpaid".into()),
                type_id: Some(ty.clone()),
                ..Default::default()
            },
            format!("q=mar&status=up_to_date,dues_unpaid&type_id={ty}"),
        ),
        (
            "custom field (choice)",
            DirFilter { cf: Some("section=Chorale".into()), ..Default::default() },
            "cf=section%3DChorale".into(),
        ),
        (
            "custom field contains + status",
            DirFilter { cf: Some("quartier~rousse".into()), status: Some("lapsed".into()), ..Default::default() },
            "cf=quartier~rousse&status=lapsed".into(),
        ),
        (
            "joined date range",
            DirFilter {
                joined_from: Some(format!("{}-01-01", year - 3)),
                joined_to: Some(format!("{}-12-31", year - 2)),
                ..Default::default()
            },
            format!("joined_from={}-01-01&joined_to={}-12-31", year - 3, year - 2),
        ),
        (
            "end date range + SEPA",
            DirFilter {
                ends_from: Some(format!("{}-01-01", year - 1)),
                ends_to: Some(format!("{}-12-31", year - 1)),
                sepa: Some(true),
                ..Default::default()
            },
            format!("ends_from={}-01-01&ends_to={}-12-31&sepa=true", year - 1, year - 1),
        ),
        (
            "household",
            DirFilter { household_id: Some(seeded.households[3].clone()), ..Default::default() },
            format!("household_id={}", seeded.households[3]),
        ),
        ("everyone, by name", DirFilter::default(), String::new()),
        ("everyone, by joining date", DirFilter::default(), "sort=joined".into()),
    ];
    let only = std::env::var("ONLY").unwrap_or_default();
    let explain = std::env::var("EXPLAIN").is_ok_and(|v| v == "1");
    for (label, filter, qs) in &filters {
        if !label.contains(only.as_str()) {
            continue;
        }
        let sort = if qs.contains("sort=joined") { Sort::Joined } else { Sort::Name };
        let first = directory::search(db, &cap, zone, filter, sort, None, 50).await.unwrap();
        let cursor = first.next_cursor.clone();
        for (page, cur) in [("page 1", None), ("page 2 (cursor)", cursor.clone())] {
            if page != "page 1" && cur.is_none() {
                continue;
            }
            if explain {
                let plan = directory::explain(db, &cap, zone, filter, sort, cur.as_deref(), 50).await.unwrap();
                println!("  -- {label}, {page}:\n     {}", plan.join("\n     "));
            }
            let mut times = vec![];
            let mut found = 0;
            for _ in 0..runs {
                let t = Instant::now();
                let p = directory::search(db, &cap, zone, filter, sort, cur.as_deref(), 50).await.unwrap();
                times.push(t.elapsed().as_secs_f64() * 1000.0);
                found = p.items.len();
            }
            let (med, p95) = stats(times);
            let mut http = vec![];
            let path = format!(
                "/api/v1/orgs/{}/members/search?{qs}{}{}",
                f.org_slug,
                if qs.is_empty() { "" } else { "&" },
                cur.as_deref().map(|c| format!("cursor={c}")).unwrap_or_default()
            );
            for _ in 0..runs {
                let t = Instant::now();
                let (s, b) = app.get(&f.admin_token, &path).await;
                http.push(t.elapsed().as_secs_f64() * 1000.0);
                assert_eq!(s, 200, "{b}");
            }
            let (hmed, hp95) = stats(http);
            println!(
                "  {label:<32} {page:<16} {found:>3} rows  service median {med:6.1} ms p95 {p95:6.1} ms | HTTP median {hmed:6.1} ms p95 {hp95:6.1} ms{}",
                if p95 > 50.0 || hp95 > 50.0 { "  (over 50 ms)" } else { "" }
            );
        }
    }
    let t = Instant::now();
    let c = directory::count(db, &cap, zone, &filters[0].1).await.unwrap();
    println!("  count of the first selection: {c} in {:.1} ms", t.elapsed().as_secs_f64() * 1000.0);
    if std::env::var("KEEP").is_ok_and(|v| v == "1") {
        if backend == Backend::Postgres {
            let name: String =
                sqlx::query_scalar("SELECT CAST(current_database() AS TEXT)").fetch_one(db.pool()).await.unwrap();
            println!("  kept: psql -U postgres -h 127.0.0.1 {name} (ten minutes)");
            tokio::time::sleep(std::time::Duration::from_secs(600)).await;
        } else {
            let _ = std::fs::remove_file("/tmp/directory-bench.sqlite");
            sqlx::query("VACUUM INTO '/tmp/directory-bench.sqlite'").execute(db.pool()).await.unwrap();
            println!("  kept: sqlite3 /tmp/directory-bench.sqlite");
        }
    }
}

fn main() {
    let n = env("MEMBERS", 50_000);
    let runs = env("RUNS", 50);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if std::env::var("BENCH_DB").map_or(true, |d| d == "sqlite") {
        rt.block_on(bench(Backend::Sqlite, n, runs));
    }
    if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_err()
        && std::env::var("BENCH_DB").map_or(true, |d| d == "postgres")
    {
        rt.block_on(bench(Backend::Postgres, n, runs));
    }
}
