//! Job queue throughput: trivial jobs through the real queue (enqueue in
//! batches, then workers claiming, running and finishing them), on SQLite and,
//! when reachable, PostgreSQL. `cargo bench -p shrooms --bench jobs`
//! (JOBS=20000 WORKERS=2 to change the load). Prints jobs per second.

use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::module::Module;
use shrooms_core::permissions::{Access, BuiltinRole};
use shrooms_core::{AppState, Modules};
use std::sync::Arc;
use std::time::Instant;

struct BenchModule;

fn noop(_: AppState, _: JobCtx) -> JobFuture {
    Box::pin(async { Ok(()) })
}

const NOOP: JobSpec = JobSpec { name: "bench.noop", max_attempts: 3, backoff_secs: 1, timeout_secs: 10, run: noop };

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
        vec![NOOP]
    }
}

fn modules() -> Modules {
    let mut list = shrooms::module_list();
    list.push(Arc::new(BenchModule));
    Modules::new(list).expect("modules")
}

async fn run(backend: testkit::Backend, n: usize, workers: usize) -> anyhow::Result<f64> {
    let modules = modules();
    let (cfg, _dir) = testkit::test_config(backend, &modules).await?;
    let st = shrooms_core::boot(cfg, modules).await?;
    for chunk in 0..n.div_ceil(1000) {
        let mut tx = st.db.begin().await?;
        for _ in 0..1000.min(n - chunk * 1000) {
            shrooms_core::jobs::enqueue(&mut tx, &NOOP, None, serde_json::json!({}), None, 0).await?;
        }
        tx.commit().await?;
    }
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let st = st.clone();
        handles.push(tokio::spawn(async move {
            let name = format!("bench-{w}");
            let mut total = 0;
            loop {
                let ran = shrooms_core::jobs::run_due(&st, &name, 1000).await?;
                if ran == 0 {
                    return Ok::<usize, shrooms_core::CoreError>(total);
                }
                total += ran;
            }
        }));
    }
    let mut done = 0;
    for h in handles {
        done += h.await??;
    }
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(done, n, "every job ran once");
    Ok(n as f64 / secs)
}

fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("JOBS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let workers: usize = std::env::var("WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let rate = run(testkit::Backend::Sqlite, n, workers).await?;
        println!("sqlite: {n} trivial jobs, {workers} workers: {rate:.0} jobs/s");
        match run(testkit::Backend::Postgres, n, workers).await {
            Ok(rate) => println!("postgres: {n} trivial jobs, {workers} workers: {rate:.0} jobs/s"),
            Err(e) => println!("postgres: skipped ({e:#})"),
        }
        Ok(())
    })
}
