//! The `shrooms` binary as an operator runs it: serve, admin create while
//! serving, kill -9 under write load, audit verify, backup and restore, check.

use serde_json::{json, Value};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;
use testkit::Backend;

const BIN: &str = env!("CARGO_BIN_EXE_shrooms");

pub(crate) struct Env {
    pub(crate) vars: Vec<(String, String)>,
    pub(crate) dir: std::path::PathBuf,
}

impl Env {
    pub(crate) async fn new(backend: Backend) -> Env {
        let (cfg, dir) = testkit::test_config(backend, &crate::modules()).await.unwrap();
        let mut vars = vec![
            ("SHROOMS_DATA".to_string(), dir.display().to_string()),
            ("SHROOMS__SECURITY__ARGON2_MEMORY_KIB".to_string(), "64".to_string()),
            ("SHROOMS__LOG".to_string(), "warn".to_string()),
            // A free port, so `restore` can tell that no server runs there.
            ("SHROOMS_LISTEN".to_string(), format!("127.0.0.1:{}", free_port())),
        ];
        if let Some(u) = &cfg.database_url {
            vars.push(("SHROOMS_DATABASE_URL".into(), u.0.clone()));
        }
        Env { vars, dir }
    }

    pub(crate) fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args).env_remove("SHROOMS_DATABASE_URL").env_remove("SHROOMS_CONFIG");
        for (k, v) in &self.vars {
            c.env(k, v);
        }
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run shrooms")
    }

    pub(crate) async fn serve(&self) -> (Child, String) {
        let listen = self.vars.iter().find(|(k, _)| k == "SHROOMS_LISTEN").map(|(_, v)| v.clone()).unwrap_or_default();
        let child = self
            .cmd(&["serve"])
            .env("SHROOMS_LISTEN", &listen)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start server");
        let base = format!("http://{listen}");
        let client = reqwest::Client::new();
        for _ in 0..600 {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
                if r.status() == 200 {
                    return (child, base);
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("server did not become ready on {base}");
    }
}

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

async fn token(base: &str, email: &str, password: &str) -> String {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/token"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_string()
}

/// Creates an administrator from the command line while the server runs,
/// signs it in and creates an organisation; returns the access token.
pub(crate) async fn operator_with_org(env: &Env, base: &str, name: &str, slug: &str) -> String {
    let out = env.run(&["admin", "create", "--email", "ops@example.org", "--password", "operator password"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = token(base, "ops@example.org", "operator password").await;
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/orgs"))
        .bearer_auth(&t)
        .json(&json!({"name": name, "slug": slug}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    t
}

macro_rules! proc_test {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(Env::new(Backend::Sqlite).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_ok() {
                    eprintln!("SKIPPED: PostgreSQL tests disabled by SHROOMS_TEST_SKIP_POSTGRES");
                    return;
                }
                ($body)(Env::new(Backend::Postgres).await).await;
            }
        }
    };
}

proc_test!(kill_during_writes_loses_nothing_acknowledged, |env: Env| async move {
    let (mut server, base) = env.serve().await;
    let t = operator_with_org(&env, &base, "Load", "load").await;
    let client = reqwest::Client::new();
    // Eight writers; the server is killed with SIGKILL in the middle.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (client, base, t, acked) = (client.clone(), base.clone(), t.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..1000 {
                let r = client
                    .post(format!("{base}/api/v1/orgs/load/people"))
                    .bearer_auth(&t)
                    .json(&json!({"given_name": format!("W{w}"), "family_name": format!("N{i}")}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        let v: Value = match r.json().await {
                            Ok(v) => v,
                            Err(_) => break,
                        };
                        acked.lock().unwrap().push(v["id"].as_str().unwrap().to_string());
                    }
                    _ => break,
                }
            }
        }));
    }
    let start = std::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if acked.lock().unwrap().len() >= 150 {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "writes are not being acknowledged");
    }
    server.kill().unwrap();
    server.wait().unwrap();
    for t in tasks {
        let _ = t.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 150);
    let (mut server, base) = env.serve().await;
    let t = token(&base, "ops@example.org", "operator password").await;
    for id in &acked {
        let r = client.get(format!("{base}/api/v1/orgs/load/people/{id}")).bearer_auth(&t).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged person {id} was lost");
    }
    let out = env.run(&["audit", "verify"]);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("intact"));
    server.kill().unwrap();
    let _ = server.wait();
});

proc_test!(audit_verify_finds_tampering, |env: Env| async move {
    let (mut server, base) = env.serve().await;
    let t = operator_with_org(&env, &base, "Audit", "audit").await;
    let client = reqwest::Client::new();
    for i in 0..5 {
        let r = client
            .post(format!("{base}/api/v1/orgs/audit/people"))
            .bearer_auth(&t)
            .json(&json!({"given_name": "P", "family_name": format!("{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    server.kill().unwrap();
    let _ = server.wait();
    assert!(env.run(&["audit", "verify"]).status.success());
    // Someone with database access rewrites history.
    let mut cfg = shrooms_core::Config::default();
    cfg.data = env.dir.clone();
    if let Some((_, u)) = env.vars.iter().find(|(k, _)| k == "SHROOMS_DATABASE_URL") {
        cfg.database_url = Some(shrooms_core::config::Secret(u.clone()));
    }
    let db = shrooms_core::Db::connect(&cfg).await.unwrap();
    sqlx::query("UPDATE audit_log SET after_json = '{\"given_name\":\"Mallory\"}' WHERE seq = 4")
        .execute(db.pool())
        .await
        .unwrap();
    db.close().await;
    let out = env.run(&["audit", "verify"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("entry 4"), "{err}");
});

proc_test!(accounting_check_finds_a_changed_entry, |env: Env| async move {
    let (mut server, base) = env.serve().await;
    let t = operator_with_org(&env, &base, "Books", "books").await;
    let client = reqwest::Client::new();
    let api = |p: &str| format!("{base}/api/v1/orgs/books/accounting{p}");
    let r = client
        .post(api("/books"))
        .bearer_auth(&t)
        .json(&json!({"chart": "associations", "first_year_start": "2025-01-01"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for amount in ["30.00", "45.50"] {
        let r = client
            .post(api("/entries"))
            .bearer_auth(&t)
            .json(&json!({"journal": "BQ", "date": "2025-02-01", "label": "Dues", "validate": true,
                "lines": [{"account": "512", "debit": amount}, {"account": "7561", "credit": amount}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    server.kill().unwrap();
    let _ = server.wait();
    let out = env.run(&["accounting", "check"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 entries"));
    // Someone with database access changes a validated amount on both sides.
    let mut cfg = shrooms_core::Config::default();
    cfg.data = env.dir.clone();
    if let Some((_, u)) = env.vars.iter().find(|(k, _)| k == "SHROOMS_DATABASE_URL") {
        cfg.database_url = Some(shrooms_core::config::Secret(u.clone()));
    }
    let db = shrooms_core::Db::connect(&cfg).await.unwrap();
    sqlx::query("UPDATE acct_lines SET debit = 3 WHERE debit = 3000").execute(db.pool()).await.unwrap();
    sqlx::query("UPDATE acct_lines SET credit = 3 WHERE credit = 3000").execute(db.pool()).await.unwrap();
    db.close().await;
    let out = env.run(&["accounting", "check"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("BQ-000001 was changed after validation"), "{err}");
});

proc_test!(backup_restore_and_check, |env: Env| async move {
    let (mut server, base) = env.serve().await;
    let t = operator_with_org(&env, &base, "Keep", "keep").await;
    let client = reqwest::Client::new();
    let p: Value = client
        .post(format!("{base}/api/v1/orgs/keep/people"))
        .bearer_auth(&t)
        .json(&json!({"given_name": "Kept", "family_name": "Safe"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = p["id"].as_str().unwrap().to_string();
    // Backup while the server runs.
    let file = env.dir.join("snap.backup");
    let out = env.run(&["backup", "--output", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let r = client.delete(format!("{base}/api/v1/orgs/keep/people/{id}")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 204);
    server.kill().unwrap();
    let _ = server.wait();
    let out = env.run(&["restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The browser setup page is closed once an administrator exists.
    let (mut server, base) = env.serve().await;
    let t = token(&base, "ops@example.org", "operator password").await;
    let r = client.get(format!("{base}/api/v1/orgs/keep/people/{id}")).bearer_auth(&t).send().await.unwrap();
    assert_eq!(r.status(), 200, "the person deleted after the backup is back");
    let out = env.run(&["check"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("database: ok") && text.contains("up to date"), "{text}");
    server.kill().unwrap();
    let _ = server.wait();
});

#[test]
fn bad_configuration_is_refused_clearly() {
    let out = Command::new(BIN)
        .arg("check")
        .env("SHROOMS_DATA", std::env::temp_dir().join("shrooms-nothing"))
        .env("SHROOMS__SESION__IDLE_MINUTES", "3")
        .env_remove("SHROOMS_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sesion"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_when_given_a_certificate() {
    let env = Env::new(Backend::Sqlite).await;
    let (cert, key) = (env.dir.join("cert.pem"), env.dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = env
        .cmd(&["serve"])
        .env("SHROOMS_LISTEN", format!("127.0.0.1:{port}"))
        .env("SHROOMS__TLS__CERTIFICATE", &cert)
        .env("SHROOMS__TLS__KEY", &key)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut headers = String::new();
    for _ in 0..600 {
        let out =
            Command::new("curl").args(["-k", "-s", "-i", &format!("https://localhost:{port}/login")]).output().unwrap();
        if out.status.success() {
            headers = String::from_utf8_lossy(&out.stdout).to_lowercase();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();
    assert!(headers.starts_with("http/"), "no HTTPS answer: {headers}");
    assert!(headers.contains("strict-transport-security: max-age="), "{headers}");
    assert!(headers.contains("; secure"), "cookies are Secure over TLS: {headers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_request_id() {
    let env = Env::new(Backend::Sqlite).await;
    let listen = env.vars.iter().find(|(k, _)| k == "SHROOMS_LISTEN").map(|(_, v)| v.clone()).unwrap();
    let log = env.dir.join("server.log");
    let mut child = env
        .cmd(&["serve"])
        .env("SHROOMS__LOG_FORMAT", "json")
        .env("SHROOMS__LOG", "info,shrooms_core=debug")
        .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut ok = false;
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("http://{listen}/healthz")).header("x-request-id", "req-json-1").send().await
        {
            ok = r.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok);
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap();
    let _ = child.wait();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(!lines.is_empty(), "no JSON log lines: {text}");
    let req = lines
        .iter()
        .find(|l| l["span"]["id"] == "req-json-1")
        .unwrap_or_else(|| panic!("no line for the request: {text}"));
    assert_eq!(req["span"]["route"], "/healthz");
    assert_eq!(req["fields"]["status"], 200);
}

struct LaterModule;

static LATER: &[shrooms_core::db::Migration] = &[shrooms_core::db::Migration {
    id: "m20261122_001_later_init",
    sql: "CREATE TABLE later_things (id TEXT PRIMARY KEY);\n",
}];

impl shrooms_core::Module for LaterModule {
    fn id(&self) -> &'static str {
        "later"
    }
    fn name_key(&self) -> &'static str {
        "later"
    }
    fn description_key(&self) -> &'static str {
        "later"
    }
    fn migrations(&self) -> &'static [shrooms_core::db::Migration] {
        LATER
    }
    fn default_access(&self, _: shrooms_core::permissions::BuiltinRole) -> shrooms_core::permissions::Access {
        shrooms_core::permissions::Access::None
    }
}

testkit::db_test!(an_upgrade_backs_the_database_up_before_migrating, |app: testkit::TestApp| async move {
    let f = app.bootstrap().await;
    let backups = app.data_dir.join("backups");
    assert!(!backups.exists(), "a fresh database needs no backup");
    // The next version brings a module with a migration.
    let mut list = shrooms::module_list();
    list.push(std::sync::Arc::new(crate::modules::NotesModule));
    list.push(std::sync::Arc::new(LaterModule));
    let upgraded = shrooms_core::Modules::new(list).unwrap();
    let next = testkit::TestApp::spawn_with(app.state.cfg.clone(), app.data_dir.clone(), app.backend, upgraded).await;
    let files: Vec<_> =
        std::fs::read_dir(&backups).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().to_string()).collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("pre-migration-"));
    assert!(std::fs::metadata(backups.join(&files[0])).unwrap().len() > 0);
    // And the upgraded server serves the same data.
    assert_eq!(next.get(&f.admin_token, &format!("/api/v1/orgs/{}", f.org_slug)).await.0, 200);
});

proc_test!(a_billing_run_from_the_command_line_shows_its_progress, |env: Env| async move {
    let (mut server, base) = env.serve().await;
    let t = operator_with_org(&env, &base, "Hébergeur", "hebergeur").await;
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        let (client, base, t) = (client.clone(), base.clone(), t.clone());
        let path = path.to_string();
        async move {
            let r = client.request(method, format!("{base}{path}")).bearer_auth(&t).json(&body).send().await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let inv = "/api/v1/orgs/hebergeur/invoicing";
    let (s, b) = call(
        reqwest::Method::POST,
        "/api/v1/orgs/hebergeur/accounting/books",
        json!({"chart": "pcg", "siren": "732829320", "first_year_start": "2025-01-01"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = call(
        reqwest::Method::PATCH,
        &format!("{inv}/settings"),
        json!({"legal_name": "Coopérative Hébergement SCIC", "siren": "732 829 320", "vat_number": "FR44732829320",
               "address": "12 rue des Serveurs", "postcode": "69001", "city": "Lyon"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    for name in ["Alpha SARL", "Beta SAS", "Gamma EURL"] {
        let (s, c) = call(
            reqwest::Method::POST,
            &format!("{inv}/customers"),
            json!({"kind": "business", "name": name, "siren": "552100554", "vat_number": "FR96552100554",
                   "address": "3 place de la Gare", "postcode": "75010", "city": "Paris"}),
        )
        .await;
        assert_eq!(s, 201, "{c}");
        let (s, b) = call(
            reqwest::Method::POST,
            &format!("{inv}/subscriptions"),
            json!({"customer_id": c["id"], "label": "Hosting", "frequency": "monthly", "anchor_date": "2025-01-15",
                   "lines": [{"name": "Web space", "quantity_milli": 1000, "unit_price_cents": 1500, "vat_code": "FR-20"}]}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    server.kill().unwrap();
    server.wait().unwrap();

    // The operator bills from the command line, with no server running.
    let out = env.run(&["invoicing", "bill", "--org", "hebergeur", "--date", "2025-01-15"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("3/3 customers"), "progress is shown: {stderr}");
    assert!(stdout.contains("billing run done") && stdout.contains("3 invoices"), "{stdout}");
    let out = env.run(&["invoicing", "bill", "--org", "nobody"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no organisation nobody"));

    // The invoices are there, numbered, and a second run bills nothing twice.
    let (mut server, base2) = env.serve().await;
    assert_eq!(base, base2);
    let (_, page) = call(reqwest::Method::GET, &format!("{inv}/documents?kind=invoice"), Value::Null).await;
    let mut numbers: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["number"].as_str().unwrap_or_default().to_string())
        .collect();
    numbers.sort();
    assert_eq!(numbers.len(), 3, "{page}");
    assert!(
        numbers.iter().all(|n| n.ends_with("00001") || n.ends_with("00002") || n.ends_with("00003")),
        "{numbers:?}"
    );
    server.kill().unwrap();
    server.wait().unwrap();
    let out = env.run(&["invoicing", "bill", "--org", "hebergeur", "--date", "2025-01-15"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 invoices"), "{}", String::from_utf8_lossy(&out.stdout));
});

proc_test!(a_renewal_run_from_the_command_line_shows_its_progress, |env: Env| async move {
    let (mut server, base) = env.serve().await;
    let t = operator_with_org(&env, &base, "Jardins partagés", "jardins").await;
    let (s, b) = api(
        &base,
        &t,
        reqwest::Method::POST,
        "/api/v1/orgs/jardins/accounting/books",
        json!({"chart": "associations", "first_year_start": format!("{}-01-01", jiff::Zoned::now().date().year())}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, ty) = api(
        &base,
        &t,
        reqwest::Method::POST,
        "/api/v1/orgs/jardins/members/types",
        json!({"name": "Annuelle", "kind": "individual", "fee_rule": "fixed", "fee_cents": 2000, "period_rule": "rolling_12_months"}),
    )
    .await;
    assert_eq!(s, 201, "{ty}");
    // Two members whose periods end in 10 days: two notices are due.
    let end = jiff::Zoned::now().date().checked_add(jiff::Span::new().days(10)).unwrap();
    let start = end.checked_sub(jiff::Span::new().years(1)).unwrap().tomorrow().unwrap().to_string();
    for given in ["Iris", "Jules"] {
        let (s, p) = api(
            &base,
            &t,
            reqwest::Method::POST,
            "/api/v1/orgs/jardins/people",
            json!({"given_name": given, "family_name": "Membre", "email": format!("{}@example.org", given.to_lowercase())}),
        )
        .await;
        assert_eq!(s, 201, "{p}");
        let (s, b) = api(
            &base,
            &t,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/jardins/members/people/{}/periods", p["id"].as_str().unwrap()),
            json!({"type_id": ty["id"], "starts_on": start}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
    }
    server.kill().unwrap();
    server.wait().unwrap();

    // A bad day is refused and starts nothing.
    let out = env.run(&["members", "renew", "--org", "jardins", "--on", "31/12"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("YYYY-MM-DD"), "{}", String::from_utf8_lossy(&out.stderr));
    // The operator runs the renewals with no server running.
    let out = env.run(&["members", "renew", "--org", "jardins"]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("2/2 members"), "progress is shown: {stderr}");
    assert!(stdout.contains("renewal run done") && stdout.contains("2 notices"), "{stdout}");
    // Again: nothing is sent twice.
    let out = env.run(&["members", "renew", "--org", "jardins"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 notices"), "{}", String::from_utf8_lossy(&out.stdout));

    // The runs are listed with where they came from.
    let (mut server, _) = env.serve().await;
    let (_, runs) =
        api(&base, &t, reqwest::Method::GET, "/api/v1/orgs/jardins/members/renewals/runs", Value::Null).await;
    let from: Vec<(&str, i64)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["started_by"].as_str().unwrap(), r["notices"].as_i64().unwrap()))
        .collect();
    assert_eq!(from, vec![("cli", 0), ("cli", 2)], "{runs}");
    server.kill().unwrap();
    server.wait().unwrap();
});

/// An API call with a bearer token: the status and the JSON body (null when none).
async fn api(base: &str, t: &str, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .request(method, format!("{base}{path}"))
        .bearer_auth(t)
        .json(&body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json::<Value>().await.unwrap_or(Value::Null))
}

/// The books, the seller's identity and one customer of an organisation,
/// ready for invoices; returns the customer's id.
async fn invoicing_ready(base: &str, t: &str, org: &str) -> String {
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: String, body: Value| {
        let r = client.request(method, format!("{base}{path}")).bearer_auth(t).json(&body).send();
        async move {
            let r = r.await.unwrap();
            let s = r.status().as_u16();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, b) = call(
        reqwest::Method::POST,
        format!("/api/v1/orgs/{org}/accounting/books"),
        json!({"chart": "pcg", "siren": "732829320", "first_year_start": "2025-01-01"}),
    )
    .await;
    assert_eq!(s, 201, "{b}");
    let (s, b) = call(
        reqwest::Method::PATCH,
        format!("/api/v1/orgs/{org}/invoicing/settings"),
        json!({"legal_name": "Coopérative Hébergement SCIC", "siren": "732 829 320", "vat_number": "FR44732829320",
               "address": "12 rue des Serveurs", "postcode": "69001", "city": "Lyon"}),
    )
    .await;
    assert_eq!(s, 200, "{b}");
    let (s, c) = call(
        reqwest::Method::POST,
        format!("/api/v1/orgs/{org}/invoicing/customers"),
        json!({"kind": "business", "name": "Alpha SARL", "siren": "552100554", "vat_number": "FR96552100554",
               "address": "3 place de la Gare", "postcode": "75010", "city": "Paris"}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    c["id"].as_str().unwrap().to_string()
}

proc_test!(killed_while_validating_invoices_leaves_no_gap, |env: Env| async move {
    let (mut server, base) = env.serve().await;
    let t = operator_with_org(&env, &base, "Hébergeur", "heb").await;
    let customer = invoicing_ready(&base, &t, "heb").await;
    let client = reqwest::Client::new();
    let inv = format!("{base}/api/v1/orgs/heb/invoicing");
    let mut drafts = Vec::new();
    for i in 0..40 {
        let r = client
            .post(format!("{inv}/documents"))
            .bearer_auth(&t)
            .json(&json!({"customer_id": customer, "issue_date": "2025-03-01",
                "lines": [{"name": format!("Hosting {i}"), "quantity_milli": 1000, "unit_code": "MON", "unit_price_cents": 1500, "vat_code": "FR-20"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        drafts.push(r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string());
    }
    // Four clerks validate at once; the server is killed (SIGKILL) in the middle.
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(String, String)>::new()));
    let queue = std::sync::Arc::new(std::sync::Mutex::new(drafts.clone()));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (client, inv, t, acked, queue) = (client.clone(), inv.clone(), t.clone(), acked.clone(), queue.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let Some(id) = queue.lock().unwrap().pop() else { return };
                match client
                    .post(format!("{inv}/documents/{id}/validate"))
                    .bearer_auth(&t)
                    .json(&json!({}))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => {
                        let number =
                            r.json::<Value>().await.unwrap()["number"].as_str().unwrap_or_default().to_string();
                        acked.lock().unwrap().push((id, number));
                    }
                    _ => return,
                }
            }
        }));
    }
    for _ in 0..400 {
        if acked.lock().unwrap().len() >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.kill().unwrap();
    server.wait().unwrap();
    for task in tasks {
        task.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= 8 && acked.len() < 40, "the kill came in the middle: {} validated", acked.len());

    // After the restart: every acknowledged number is there, the numbers run
    // 1..N without a gap, each issued invoice has its ledger entry and its PDF.
    let (mut server, _) = env.serve().await;
    let r = client.get(format!("{inv}/documents?kind=invoice&limit=200")).bearer_auth(&t).send().await.unwrap();
    let page: Value = r.json().await.unwrap();
    let issued: Vec<&Value> = page["items"].as_array().unwrap().iter().filter(|d| d["status"] != "draft").collect();
    let mut seqs: Vec<i64> = issued
        .iter()
        .map(|d| d["number"].as_str().unwrap().rsplit(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap())
        .collect();
    seqs.sort();
    assert_eq!(seqs, (1..=issued.len() as i64).collect::<Vec<_>>(), "numbers without gap or duplicate");
    for (id, number) in &acked {
        assert!(issued.iter().any(|d| d["id"] == id.as_str() && d["number"] == number.as_str()), "{number} lost");
    }
    let r =
        client.get(format!("{base}/api/v1/orgs/heb/accounting/entries?journal=VE&limit=200")).bearer_auth(&t).send();
    let entries: Value = r.await.unwrap().json().await.unwrap();
    let entries = entries.as_array().or(entries["items"].as_array()).cloned().unwrap_or_default();
    assert_eq!(entries.len(), issued.len(), "one sales entry per issued invoice");
    for d in &issued {
        let r = client.get(format!("{inv}/documents/{}/pdf", d["id"].as_str().unwrap())).bearer_auth(&t).send();
        let r = r.await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.bytes().await.unwrap().starts_with(b"%PDF"), "the PDF of {}", d["number"]);
    }
    // Validating goes on from the next number.
    let next = drafts.iter().find(|id| !issued.iter().any(|d| d["id"] == id.as_str())).unwrap();
    let r =
        client.post(format!("{inv}/documents/{next}/validate")).bearer_auth(&t).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let number = r.json::<Value>().await.unwrap()["number"].as_str().unwrap().to_string();
    assert!(number.ends_with(&format!("{:05}", issued.len() + 1)), "{number} after {}", issued.len());
    server.kill().unwrap();
    server.wait().unwrap();
});
