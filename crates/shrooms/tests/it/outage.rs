//! The database goes away under load and comes back: a real `shrooms serve`
//! answers 503 problem+json (never 500, never a dropped connection), stays
//! up, says so on /healthz, and serves reads and writes again once the
//! database is back, without a restart.
//!
//! PostgreSQL is cut with a TCP proxy between the server and the cluster
//! (the shared cluster is never touched); SQLite by making the database and
//! its write-ahead log immutable (`chattr +i`: as root a `chmod` would not
//! stop the writes, and an immutable file refuses writes even through the
//! descriptors the server already holds).

use crate::cli::Env;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::Backend;

/// Forwards TCP connections to PostgreSQL until cut: then every open
/// connection is dropped and new ones are closed at once, as when the
/// database server stops.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links = Arc::new(Mutex::new(Vec::<tokio::task::AbortHandle>::new()));
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                links2.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy { port, up, links }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for l in self.links.lock().unwrap().drain(..) {
            l.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// The SQLite files made immutable; put back as they were even if the test fails.
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    fn set(files: Vec<std::path::PathBuf>) -> Immutable {
        for f in &files {
            let out = std::process::Command::new("chattr").arg("+i").arg(f).output().expect("chattr");
            assert!(
                out.status.success(),
                "making {} immutable needs root and a file system with the immutable flag (ext4, xfs, btrfs): {}",
                f.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Immutable(files)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for f in &self.0 {
            let _ = std::process::Command::new("chattr").arg("-i").arg(f).status();
        }
    }
}

/// Four clients reading the people list and adding people, without pause.
#[derive(Default)]
struct Tally {
    statuses: BTreeMap<u16, usize>,
    /// Answers that are neither a success nor a proper 503 problem.
    wrong: Vec<String>,
    created: Vec<String>,
}

fn start_load(base: &str, token: &str, stop: Arc<AtomicBool>) -> (Arc<Mutex<Tally>>, Vec<tokio::task::JoinHandle<()>>) {
    let tally = Arc::new(Mutex::new(Tally::default()));
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (client, base, token, stop, tally) =
            (client.clone(), base.to_string(), token.to_string(), stop.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let url = format!("{base}/api/v1/orgs/outage/people");
                let r = if i % 2 == 0 {
                    client.get(format!("{url}?limit=20")).bearer_auth(&token).send().await
                } else {
                    let body = json!({"given_name": format!("W{w}"), "family_name": format!("N{i}")});
                    client.post(&url).bearer_auth(&token).json(&body).send().await
                };
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        tally.lock().unwrap().wrong.push(format!("no answer: {e}"));
                        continue;
                    }
                };
                let status = r.status().as_u16();
                let ctype = r.headers().get("content-type").map(|v| v.to_str().unwrap_or("").to_string());
                let retry_after = r.headers().contains_key("retry-after");
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let mut t = tally.lock().unwrap();
                *t.statuses.entry(status).or_default() += 1;
                match status {
                    200 => {}
                    201 => t.created.push(body["id"].as_str().unwrap_or_default().to_string()),
                    503 if ctype.as_deref() == Some("application/problem+json")
                        && body["type"] == "urn:shrooms:problem:unavailable"
                        && retry_after => {}
                    _ => t.wrong.push(format!("{status} {ctype:?} {body}")),
                }
            }
        }));
    }
    (tally, tasks)
}

async fn wait_for(what: &str, limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < limit, "{what}: not within {} s", limit.as_secs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start.elapsed()
}

async fn health(base: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}/healthz")).await.expect("the server answers /healthz");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The scenario, the same on both databases; `cut` and `restore` make the
/// database unavailable and bring it back.
async fn outage_scenario(env: Env, cut: impl FnOnce() -> Box<dyn FnOnce()>) {
    let (server, base) = env.serve().await;
    let mut server = crate::e2e::Server(server);
    let token = crate::cli::operator_with_org(&env, &base, "Outage", "outage").await;
    let stop = Arc::new(AtomicBool::new(false));
    let (tally, tasks) = start_load(&base, &token, stop.clone());
    let count = |s: u16| tally.lock().unwrap().statuses.get(&s).copied().unwrap_or(0);
    wait_for("writes before the outage", Duration::from_secs(30), async || count(201) >= 20).await;
    let created_before = count(201);

    let restore = cut();
    wait_for("503 answers once the database is gone", Duration::from_secs(30), async || count(503) >= 8).await;
    let (s, h) = health(&base).await;
    assert_eq!(s, 503, "{h}");
    assert_eq!(h["database"]["status"], "unavailable", "{h}");
    // A write now: refused with a clear message, nothing half-done.
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/orgs/outage/people"))
        .bearer_auth(&token)
        .json(&json!({"given_name": "During", "family_name": "Outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let p: Value = r.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap_or("").contains("database is unavailable"), "{p}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.0.try_wait().unwrap().is_none(), "the server exited during the outage");
    let created_during = count(201);

    restore();
    let recovery =
        wait_for("/healthz once the database is back", Duration::from_secs(20), async || health(&base).await.0 == 200)
            .await;
    let after = count(201);
    wait_for("writes once the database is back", Duration::from_secs(20), async || count(201) >= after + 20).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let t = std::mem::take(&mut *tally.lock().unwrap());
    println!(
        "statuses {:?}; created before the outage {created_before}, by its end {created_during}, \
         healthy {} ms after the database came back",
        t.statuses,
        recovery.as_millis()
    );
    assert!(t.wrong.is_empty(), "answers other than success or 503 problem+json:\n{}", t.wrong.join("\n"));
    assert!(!t.statuses.contains_key(&500));
    // Every acknowledged creation is there, and the audit chain is whole.
    let client = reqwest::Client::new();
    for id in &t.created {
        let r = client.get(format!("{base}/api/v1/orgs/outage/people/{id}")).bearer_auth(&token).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged person {id} is missing");
    }
    let out = env.run(&["audit", "verify"]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_answers_503_and_recovers() {
    if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_ok() {
        eprintln!("SKIPPED: PostgreSQL tests disabled by SHROOMS_TEST_SKIP_POSTGRES");
        return;
    }
    let mut env = Env::new(Backend::Postgres).await;
    // The server reaches PostgreSQL through the proxy.
    let (_, url) = env.vars.iter().find(|(k, _)| k == "SHROOMS_DATABASE_URL").cloned().expect("database URL");
    let (head, rest) = url.split_once('@').expect("user@host in the URL");
    let (hostport, db) = rest.split_once('/').expect("/database in the URL");
    let proxy = Arc::new(Proxy::start(hostport.to_string()).await);
    let via_proxy = format!("{head}@127.0.0.1:{}/{db}", proxy.port);
    for (k, v) in env.vars.iter_mut() {
        if k == "SHROOMS_DATABASE_URL" {
            *v = via_proxy.clone();
        }
    }
    outage_scenario(env, move || {
        proxy.cut();
        Box::new(move || proxy.restore())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_read_only_answers_503_and_recovers() {
    let env = Env::new(Backend::Sqlite).await;
    let files = vec![env.dir.join("shrooms.db"), env.dir.join("shrooms.db-wal")];
    outage_scenario(env, move || {
        let guard = Immutable::set(files);
        Box::new(move || drop(guard))
    })
    .await;
}
