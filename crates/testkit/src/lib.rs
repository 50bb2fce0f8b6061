//! Test harness: starts the real Shrooms application on a random loopback
//! port, on a fresh embedded SQLite database or a fresh PostgreSQL database
//! cloned from a migrated template (fast), and talks HTTP to it.
//!
//! PostgreSQL is found at `SHROOMS_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`).

use anyhow::Context;
use serde_json::{json, Value};
use shrooms_core::config::Secret;
use shrooms_core::{AppState, Config, Modules};
use sqlx::Connection;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Mutex;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub fn pg_admin_url() -> String {
    std::env::var("SHROOMS_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn pg_url_for(db: &str) -> String {
    let base = pg_admin_url();
    let (prefix, _) = base.rsplit_once('/').expect("postgres URL with a database name");
    format!("{prefix}/{db}")
}

static PG_LOCK: Mutex<Option<String>> = Mutex::const_new(None);
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Creates (once per migration set) a migrated template database and returns
/// a fresh copy's name.
pub async fn fresh_pg_database(modules: &Modules) -> anyhow::Result<String> {
    sqlx::any::install_default_drivers();
    let mut guard = PG_LOCK.lock().await;
    let mut admin = sqlx::AnyConnection::connect(&pg_admin_url())
        .await
        .context("connecting to the test PostgreSQL (set SHROOMS_TEST_POSTGRES)")?;
    if guard.is_none() {
        let sum: String = {
            let mut all = String::new();
            for (_, m) in modules.migrations() {
                all.push_str(m.id);
                all.push_str(m.sql);
            }
            shrooms_core::crypto::sha256_hex(all.as_bytes())[..16].to_string()
        };
        let tpl = format!("shrooms_tpl_{sum}");
        sqlx::query("SELECT pg_advisory_lock(735201)").execute(&mut admin).await?;
        // Databases left by earlier runs whose process is gone.
        let rows: Vec<(String,)> = sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'shrooms_t_%'")
            .fetch_all(&mut admin)
            .await
            .unwrap_or_default();
        for (name,) in rows {
            let pid = name.trim_start_matches("shrooms_t_").split('_').next().and_then(|p| p.parse::<u32>().ok());
            if pid.is_some_and(|p| !PathBuf::from(format!("/proc/{p}")).exists()) {
                let _ =
                    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut admin).await;
            }
        }
        let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM pg_database WHERE datname = $1")
            .bind(&tpl)
            .fetch_optional(&mut admin)
            .await?;
        if exists.is_none() {
            let building = format!("{tpl}_b{}", std::process::id());
            let _ =
                sqlx::query(&format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)")).execute(&mut admin).await;
            sqlx::query(&format!("CREATE DATABASE \"{building}\"")).execute(&mut admin).await?;
            let mut cfg = Config::default();
            cfg.database_url = Some(Secret(pg_url_for(&building)));
            let db = shrooms_core::Db::connect(&cfg).await?;
            shrooms_core::db::migrate(&db, &modules.migrations()).await?;
            db.close().await;
            // The closed pool's server processes may take a moment to exit;
            // end any that linger.
            let mut renamed = false;
            for _ in 0..50 {
                let _ = sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
                    .bind(&building)
                    .execute(&mut admin)
                    .await;
                if sqlx::query(&format!("ALTER DATABASE \"{building}\" RENAME TO \"{tpl}\""))
                    .execute(&mut admin)
                    .await
                    .is_ok()
                {
                    renamed = true;
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            anyhow::ensure!(renamed, "could not rename the template database {building}");
        }
        sqlx::query("SELECT pg_advisory_unlock(735201)").execute(&mut admin).await?;
        *guard = Some(tpl);
    }
    let tpl = guard.clone().unwrap_or_default();
    let name = format!("shrooms_t_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
    let mut last_err = None;
    for _ in 0..20 {
        match sqlx::query(&format!("CREATE DATABASE \"{name}\" TEMPLATE \"{tpl}\"")).execute(&mut admin).await {
            Ok(_) => return Ok(name),
            Err(e) => {
                last_err = Some(e);
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    Err(anyhow::anyhow!("creating test database: {:?}", last_err))
}

/// A configuration for tests: fast password hashing, a private data folder.
pub async fn test_config(backend: Backend, modules: &Modules) -> anyhow::Result<(Config, PathBuf)> {
    let dir = std::env::temp_dir().join(format!("shrooms-test-{}-{}", std::process::id(), uuid_like()));
    std::fs::create_dir_all(&dir)?;
    let mut cfg = Config::default();
    cfg.data = dir.clone();
    cfg.listen = "127.0.0.1:0".into();
    cfg.security.argon2_memory_kib = 64;
    cfg.pool_size = 8;
    if backend == Backend::Postgres {
        let name = fresh_pg_database(modules).await?;
        cfg.database_url = Some(Secret(pg_url_for(&name)));
    }
    Ok((cfg, dir))
}

fn uuid_like() -> String {
    shrooms_core::crypto::hex(&shrooms_core::crypto::random_bytes::<6>())
}

pub struct TestApp {
    pub base: String,
    pub state: AppState,
    pub backend: Backend,
    pub data_dir: PathBuf,
    /// A client that keeps cookies (a browser) and does not follow redirects.
    pub browser: reqwest::Client,
    /// A plain client for the API.
    pub http: reqwest::Client,
}

pub fn browser_client() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// Server errors go to the test's captured output (shown when a test fails).
fn init_logging() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let filter: tracing_subscriber::filter::Targets =
            std::env::var("SHROOMS_TEST_LOG").unwrap_or_else(|_| "warn".into()).parse().unwrap_or_default();
        use tracing_subscriber::prelude::*;
        let _ = tracing_subscriber::registry()
            .with(tracing_subscriber::fmt::layer().with_test_writer())
            .with(filter)
            .try_init();
    });
}

impl TestApp {
    pub async fn spawn(backend: Backend, modules: Modules) -> TestApp {
        init_logging();
        let (cfg, dir) = test_config(backend, &modules).await.expect("test configuration");
        let app = Self::spawn_with(cfg, dir, backend, modules).await;
        // The core's periodic schedules (backup, health check, digest) are
        // switched off, so that a test's jobs and ticks are only its own;
        // tests of those schedules switch them on.
        shrooms_core::schedules::sync(&app.state.db, &app.state.modules, shrooms_core::ids::Timestamp::now())
            .await
            .expect("schedules");
        sqlx::query("UPDATE schedules SET enabled = 0 WHERE name LIKE 'core.%'")
            .execute(app.state.db.pool())
            .await
            .expect("switching off the core's schedules");
        app
    }

    /// Starts another server (a replica) on the same configuration and database.
    pub async fn spawn_with(cfg: Config, dir: PathBuf, backend: Backend, modules: Modules) -> TestApp {
        let state = shrooms_core::boot(cfg, modules).await.expect("boot");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let st = state.clone();
        tokio::spawn(async move {
            let _ = shrooms_core::web::serve(st, listener).await;
        });
        TestApp {
            base,
            state,
            backend,
            data_dir: dir,
            browser: browser_client(),
            http: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client"),
        }
    }

    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Completes first-run setup through the service (tests of setup itself use the form).
    pub async fn bootstrap(&self) -> Fixture {
        let (admin, org) = shrooms_core::instance::complete_setup(
            &self.state.db,
            &self.state.cfg,
            &self.state.modules,
            shrooms_core::instance::Setup {
                instance_name: "Test instance".into(),
                default_lang: "en".into(),
                admin_email: "admin@example.org".into(),
                admin_name: "Admin".into(),
                admin_password: ADMIN_PASSWORD.into(),
                first_org: "First Org".into(),
                modules: self
                    .state
                    .modules
                    .all()
                    .iter()
                    .filter(|m| !m.always_on())
                    .map(|m| m.id().to_string())
                    .collect(),
            },
            "test",
        )
        .await
        .expect("setup");
        let token = self.token("admin@example.org", ADMIN_PASSWORD).await;
        Fixture { admin_email: admin.email, admin_token: token, org_slug: org.slug, org_id: org.id.to_string() }
    }

    pub async fn token(&self, email: &str, password: &str) -> String {
        let r = self
            .http
            .post(self.url("/api/v1/auth/token"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .expect("token request");
        assert_eq!(r.status(), 200, "sign-in of {email} failed: {}", r.text().await.unwrap_or_default());
        r.json::<Value>().await.expect("json")["access_token"].as_str().expect("access_token").to_string()
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let r = self.http.get(self.url(path)).bearer_auth(token).send().await.expect("request");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn send(&self, method: reqwest::Method, token: &str, path: &str, body: Value) -> (u16, Value) {
        let r = self.http.request(method, self.url(path)).bearer_auth(token).json(&body).send().await.expect("request");
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, token, path, body).await
    }

    /// Creates an account with a role in an organisation and returns its token.
    pub async fn member(&self, admin_token: &str, org: &str, email: &str, role: &str) -> String {
        let (s, b) =
            self.post(admin_token, &format!("/api/v1/orgs/{org}/members"), json!({"email": email, "role": role})).await;
        assert_eq!(s, 201, "{b}");
        let mut tx = self.state.db.begin().await.expect("tx");
        let id = b["account_id"].as_str().expect("account id").parse().expect("uuid");
        shrooms_core::identity::set_password(
            &mut tx,
            &shrooms_core::audit::Who::system("test"),
            &self.state.cfg,
            id,
            MEMBER_PASSWORD.into(),
        )
        .await
        .expect("password");
        tx.commit().await.expect("commit");
        self.token(email, MEMBER_PASSWORD).await
    }

    /// Signs `client` in through the sign-in form, as a browser does; returns
    /// the CSRF token for the forms that follow.
    pub async fn sign_in(&self, client: &reqwest::Client, email: &str, password: &str) -> String {
        let html = client.get(self.url("/login")).send().await.expect("sign-in page").text().await.expect("text");
        let csrf = extract_csrf(&html).expect("CSRF field on the sign-in page");
        let r = client
            .post(self.url("/login"))
            .form(&[("_csrf", csrf.as_str()), ("email", email), ("password", password)])
            .send()
            .await
            .expect("sign-in");
        assert_eq!(r.status(), 303, "sign-in of {email} failed");
        csrf
    }

    /// Reads the `value` of `<input name="_csrf">` from a page.
    pub async fn csrf_from(&self, path: &str) -> String {
        let html = self.browser.get(self.url(path)).send().await.expect("page").text().await.expect("text");
        extract_csrf(&html).unwrap_or_else(|| panic!("no CSRF field on {path}"))
    }
}

pub fn extract_csrf(html: &str) -> Option<String> {
    let i = html.find("name=\"_csrf\"")?;
    let rest = &html[i..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')? + v;
    Some(rest[v..end].to_string())
}

pub const ADMIN_PASSWORD: &str = "correct horse battery";
pub const MEMBER_PASSWORD: &str = "member password 123";

pub struct Fixture {
    pub admin_email: String,
    pub admin_token: String,
    pub org_slug: String,
    pub org_id: String,
}

/// Runs a test body once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! db_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::TestApp::spawn($crate::Backend::Sqlite, crate::modules()).await;
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_ok() {
                    eprintln!("SKIPPED: PostgreSQL tests disabled by SHROOMS_TEST_SKIP_POSTGRES");
                    return;
                }
                let app = $crate::TestApp::spawn($crate::Backend::Postgres, crate::modules()).await;
                ($body)(app).await;
            }
        }
    };
}
