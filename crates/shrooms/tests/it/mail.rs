//! Mail leaves through a real SMTP server (aiosmtpd, started here), and
//! failures are retried and visible.

use base64::Engine;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use testkit::{Backend, TestApp};

struct SmtpSink {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl SmtpSink {
    async fn start(dir: &std::path::Path) -> SmtpSink {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.join("smtp.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new("python3")
            .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::from(out))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        for _ in 0..600 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return SmtpSink { child, port, log };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not start (pip install aiosmtpd)");
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn app_with_smtp(backend: Backend, port: u16) -> TestApp {
    let modules = crate::modules();
    let (mut cfg, dir) = testkit::test_config(backend, &modules).await.unwrap();
    cfg.smtp = Some(shrooms_core::config::SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        security: "none".into(),
        from: "shrooms@example.org".into(),
    });
    TestApp::spawn_with(cfg, dir, backend, modules).await
}

async fn outbox_until(app: &TestApp, token: &str, to: &str, ok: impl Fn(&Value) -> bool) -> Value {
    // Generous: on a loaded two-core machine the job worker may take a while.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        let (_, v) = app.get(token, &format!("/api/v1/admin/outbox?to={to}")).await;
        if let Some(m) = v.as_array().and_then(|a| a.iter().find(|m| ok(m))) {
            return m.clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox never reached the expected state");
}

async fn delivered_through_smtp(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("shrooms-smtp-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let sink = SmtpSink::start(&dir).await;
    let app = app_with_smtp(backend, sink.port).await;
    let f = app.bootstrap().await;
    assert_eq!(app.post("", "/api/v1/auth/password/forgot", json!({"email": "admin@example.org"})).await.0, 202);
    let m = outbox_until(&app, &f.admin_token, "admin@example.org", |m| m["status"] == "sent").await;
    assert_eq!(m["attempts"], 1);
    // What the SMTP server received: headers, and the link in the base64 body.
    let mut text = String::new();
    for _ in 0..600 {
        text = std::fs::read_to_string(&sink.log).unwrap_or_default();
        if text.contains("Subject:") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text.contains("To: admin@example.org"), "log {:?}: {text}", sink.log);
    assert!(
        text.contains("Subject: Reset your password — Test instance") || text.contains("Subject: =?UTF-8?B?"),
        "{text}"
    );
    assert!(text.contains("multipart/alternative") && text.contains("Content-Type: text/html"), "{text}");
    let body_b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("Content-Type: text/plain"))
        .skip_while(|l| !l.trim().is_empty())
        .skip(1)
        .take_while(|l| !l.starts_with("--") && !l.trim().is_empty())
        .collect();
    let body =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(body_b64.trim()).expect("base64 body"))
            .unwrap();
    assert!(body.contains("/password/reset?token="), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_delivered_through_smtp_sqlite() {
    delivered_through_smtp(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_delivered_through_smtp_postgres() {
    if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_ok() {
        return;
    }
    delivered_through_smtp(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_smtp_server_is_retried_and_visible() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = app_with_smtp(Backend::Sqlite, closed).await;
    let f = app.bootstrap().await;
    assert_eq!(app.post("", "/api/v1/auth/password/forgot", json!({"email": "admin@example.org"})).await.0, 202);
    let m = outbox_until(&app, &f.admin_token, "admin@example.org", |m| m["attempts"].as_i64().unwrap_or(0) >= 1).await;
    assert_eq!(m["status"], "queued", "it will be tried again");
    assert!(m["last_error"].as_str().unwrap_or("").contains("connecting"), "{m}");
    // The outbox row records the failure before the job run ends: wait for
    // the job to be back in the queue, waiting for its next attempt.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let job = loop {
        let (_, jobs) = app.get(&f.admin_token, "/api/v1/admin/jobs?status=queued").await;
        if let Some(j) = jobs.as_array().unwrap().iter().find(|j| j["name"] == "core.mail.deliver") {
            break j.clone();
        }
        assert!(std::time::Instant::now() < deadline, "the delivery job never went back to the queue: {jobs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(job["attempts"], 1);
    assert!(job["last_error"].as_str().is_some());
}

/// A newsletter of the members module carries the unsubscribe headers of
/// mailing lists (RFC 2369, RFC 8058), and its one-click address works as a
/// mail program calls it: a form POST without cookies.
async fn newsletter_headers(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("shrooms-smtp-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).unwrap();
    let sink = SmtpSink::start(&dir).await;
    let app = app_with_smtp(backend, sink.port).await;
    let f = app.bootstrap().await;
    let org = f.org_slug.clone();
    let m = |p: &str| format!("/api/v1/orgs/{org}/members{p}");
    let (st, t) = app
        .post(
            &f.admin_token,
            &m("/types"),
            json!({"name": "Annuelle", "kind": "individual", "fee_rule": "fixed", "fee_cents": 3000, "period_rule": "calendar_year"}),
        )
        .await;
    assert_eq!(st, 201, "{t}");
    let (st, p) = app
        .post(
            &f.admin_token,
            &format!("/api/v1/orgs/{org}/people"),
            json!({"given_name": "Lou", "family_name": "Abonné", "email": "lou@example.org"}),
        )
        .await;
    assert_eq!(st, 201, "{p}");
    let person = p["id"].as_str().unwrap();
    let year = jiff::Zoned::now().date().year();
    let (st, b) = app
        .post(
            &f.admin_token,
            &m(&format!("/people/{person}/periods")),
            json!({"type_id": t["id"], "starts_on": format!("{year}-01-01")}),
        )
        .await;
    assert_eq!(st, 201, "{b}");
    let (st, b) = app
        .post(
            &f.admin_token,
            &m("/mailings"),
            json!({"subject": "Lettre", "body": "Bonjour {{ first_name }}", "filter": {}, "confirm_count": 1}),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    outbox_until(&app, &f.admin_token, "lou@example.org", |m| m["status"] == "sent").await;
    let mut text = String::new();
    for _ in 0..600 {
        text = std::fs::read_to_string(&sink.log).unwrap_or_default();
        if text.contains("List-Unsubscribe-Post") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(text.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"), "{text}");
    let line = text.lines().find(|l| l.starts_with("List-Unsubscribe: <")).unwrap_or_else(|| panic!("{text}"));
    let url = line.trim_start_matches("List-Unsubscribe: <").trim_end().trim_end_matches('>');
    assert!(url.starts_with("http") && url.contains(&format!("/api/v1/orgs/{org}/members/unsubscribe/")), "{url}");
    // The mail program's one-click POST, sent to this server.
    let path = &url[url.find("/api/").unwrap()..];
    let r = app
        .http
        .post(app.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, preview) = app
        .post(&f.admin_token, &m("/mailings/preview"), json!({"subject": "Lettre 2", "body": "x", "filter": {}}))
        .await;
    assert_eq!(preview["recipients"], 0, "{preview}");
    assert_eq!(preview["skipped_opted_out"], 1, "{preview}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newsletters_carry_list_unsubscribe_headers_sqlite() {
    newsletter_headers(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newsletters_carry_list_unsubscribe_headers_postgres() {
    if std::env::var("SHROOMS_TEST_SKIP_POSTGRES").is_ok() {
        return;
    }
    newsletter_headers(Backend::Postgres).await;
}
