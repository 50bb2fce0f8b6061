//! Scheduler cost: storing an every-minute schedule for each of N
//! organisations (`schedules::sync`), then one tick where all of them are
//! due (N jobs enqueued, each with its compare-and-set), on SQLite and, when
//! reachable, PostgreSQL; and the cost of computing a next occurrence.
//! `cargo bench -p shrooms --bench schedules` (ORGS=2000 to change the load).

use shrooms_core::cron::Cron;
use shrooms_core::ids::Timestamp;
use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::module::Module;
use shrooms_core::permissions::{Access, BuiltinRole};
use shrooms_core::schedules::{self, ScheduleSpec};
use shrooms_core::{AppState, Modules};
use std::sync::Arc;
use std::time::Instant;

struct BenchModule;

fn noop(_: AppState, _: JobCtx) -> JobFuture {
    Box::pin(async { Ok(()) })
}

impl Module for BenchModule {
    fn id(&self) -> &'static str {
        "bench"
    }
    fn name_key(&self) -> &'static str {
        "bench"
    }
    fn description_key(&self) -> &'static str {
        "bench"
    }
    fn default_access(&self, _: BuiltinRole) -> Access {
        Access::None
    }
    fn jobs(&self) -> Vec<JobSpec> {
        vec![JobSpec { name: "bench.noop", max_attempts: 3, backoff_secs: 1, timeout_secs: 10, run: noop }]
    }
    fn schedules(&self) -> Vec<ScheduleSpec> {
        vec![ScheduleSpec::each_org("bench.minutely", "bench.noop", "* * * * *")]
    }
}

async fn run(backend: testkit::Backend, orgs: usize) -> anyhow::Result<(f64, f64)> {
    let mut list = shrooms::module_list();
    list.push(Arc::new(BenchModule));
    let modules = Modules::new(list)?;
    let (cfg, _dir) = testkit::test_config(backend, &modules).await?;
    let st = shrooms_core::boot(cfg, modules).await?;
    let mut tx = st.db.begin().await?;
    for i in 0..orgs {
        sqlx::query("INSERT INTO orgs (id, slug, name, timezone, currency, created_at, updated_at) VALUES ($1, $2, $2, 'Europe/Paris', 'EUR', 0, 0)")
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(format!("org-{i}"))
            .execute(tx.conn())
            .await?;
    }
    tx.commit().await?;
    let now = Timestamp::now();
    let start = Instant::now();
    let r = schedules::sync(&st.db, &st.modules, now).await?;
    let sync_secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(r.created == orgs, "created {}", r.created);
    let start = Instant::now();
    let t = schedules::tick(&st, now.plus_secs(120)).await?;
    let tick_secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(t.enqueued == orgs, "enqueued {}", t.enqueued);
    Ok((sync_secs, tick_secs))
}

fn next_cost(expr: &str, after: &str, zone: &str) -> f64 {
    let c = Cron::parse(expr).expect("expression");
    let z = jiff::tz::TimeZone::get(zone).expect("zone");
    let after: jiff::Timestamp = after.parse().expect("instant");
    let n = 2000;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(c.next_after(std::hint::black_box(after), &z));
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let orgs: usize = std::env::var("ORGS").ok().and_then(|v| v.parse().ok()).unwrap_or(2000);
    for (expr, after, zone) in [
        ("0 9 * * mon", "2026-11-21T10:00:00Z", "Europe/Paris"),
        ("* * * * *", "2026-11-21T22:58:30Z", "Europe/Paris"),
        ("30 2 * * *", "2026-03-28T12:00:00Z", "Europe/Paris"),
        ("0 0 29 2 *", "2096-03-01T00:00:00Z", "UTC"),
    ] {
        println!("next_after({expr:>12}, {zone:<12}): {:8.2} µs", next_cost(expr, after, zone));
    }
    for backend in [testkit::Backend::Sqlite, testkit::Backend::Postgres] {
        match run(backend, orgs).await {
            Ok((sync, tick)) => println!(
                "{backend:?}: {orgs} organisations: sync {:.2} s ({:.0} schedules/s), tick {:.2} s ({:.0} jobs enqueued/s)",
                sync,
                orgs as f64 / sync,
                tick,
                orgs as f64 / tick
            ),
            Err(e) => println!("{backend:?}: skipped ({e:#})"),
        }
    }
    Ok(())
}
