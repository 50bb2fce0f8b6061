//! Recurring schedules: module-declared schedules stored per organisation,
//! one job per occurrence even with concurrent schedulers, none while off,
//! the organisation's time zone, administrators' changes and their errors.
//!
//! The server's own scheduler runs beside these tests on the real clock;
//! the tests call `schedules::tick` with chosen instants in the 2030s, after
//! which the real clock can no longer make anything due.

use serde_json::{json, Value};
use shrooms_core::ids::Timestamp;
use shrooms_core::jobs::{JobCtx, JobFuture, JobSpec};
use shrooms_core::module::Module;
use shrooms_core::permissions::{Access, BuiltinRole};
use shrooms_core::schedules::{self, ScheduleSpec, SyncReport, TickReport};
use shrooms_core::web::AppState;
use shrooms_core::Modules;
use sqlx::Row;
use std::sync::Arc;
use testkit::{db_test, TestApp, ADMIN_PASSWORD};

fn at(s: &str) -> Timestamp {
    Timestamp(s.parse::<jiff::Timestamp>().expect("instant").as_millisecond())
}

/// The organisation's schedule named `name`, from the organisation's API.
async fn org_schedule(app: &TestApp, token: &str, org: &str, name: &str) -> Value {
    let (s, b) = app.get(token, &format!("/api/v1/orgs/{org}/schedules")).await;
    assert_eq!(s, 200, "{b}");
    b.as_array().unwrap().iter().find(|x| x["name"] == name).cloned().unwrap_or_else(|| panic!("no {name} in {b}"))
}

async fn jobs_of(app: &TestApp, schedule: &str) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM jobs WHERE dedup_key LIKE $1")
        .bind(format!("schedule:{schedule}:%"))
        .fetch_one(app.state.db.pool())
        .await
        .unwrap()
        .try_get(0)
        .unwrap()
}

async fn patch(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    app.send(reqwest::Method::PATCH, token, path, body).await
}

/// The members module's schedules that are on by default (sealing IBANs,
/// the daily retention) switched off, so that a tick counts only what a test
/// set up.
pub(crate) async fn quiet_members_schedules(st: &AppState) {
    sqlx::query("UPDATE schedules SET enabled = 0 WHERE module = 'members'").execute(st.db.pool()).await.unwrap();
}

async fn tick(st: &AppState, now: &str) -> TickReport {
    quiet_members_schedules(st).await;
    schedules::tick(st, at(now)).await.expect("tick")
}

db_test!(a_module_schedule_enqueues_one_job_per_occurrence, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    // Declared by the notes module for every organisation, stored when the
    // organisation was created, off as the module asks.
    let s = org_schedule(&app, t, &f.org_slug, "notes.minutely").await;
    assert_eq!(s["org_id"], f.org_id.as_str());
    assert_eq!(s["job"], "notes.append");
    assert_eq!(
        (s["cron"].as_str(), s["enabled"].as_bool(), &s["next_run_at"]),
        (Some("* * * * *"), Some(false), &Value::Null)
    );
    let id = s["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/orgs/{}/schedules/{id}", f.org_slug);

    // Off: nothing runs, however late it is.
    assert_eq!(tick(&app.state, "2036-01-15T10:00:30Z").await.enqueued, 0);
    assert_eq!(jobs_of(&app, &id).await, 0);

    let (s, b) = patch(&app, t, &path, json!({"enabled": true})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["enabled"], true);
    assert!(b["next_run_at"].is_string(), "{b}");

    // Years of missed minutes: one job, not one per occurrence.
    let before = jobs_of(&app, &id).await;
    assert_eq!(tick(&app.state, "2036-01-15T10:00:30Z").await, TickReport { enqueued: 1, skipped: 0 });
    assert_eq!(jobs_of(&app, &id).await, before + 1);
    let s = org_schedule(&app, t, &f.org_slug, "notes.minutely").await;
    assert_eq!(s["next_run_at"], "2036-01-15T10:01:00Z");
    assert_eq!(s["next_run_local"], "2036-01-15 11:01", "read in Europe/Paris");
    let counted = jobs_of(&app, &id).await;

    // Nothing more before the next occurrence.
    assert_eq!(tick(&app.state, "2036-01-15T10:00:30Z").await.enqueued, 0);
    assert_eq!(tick(&app.state, "2036-01-15T10:00:59Z").await.enqueued, 0);

    // Four schedulers (replicas) at the same moment: exactly one job.
    for minute in ["2036-01-15T10:01:00Z", "2036-01-15T10:02:10Z"] {
        let runs: Vec<_> = (0..4)
            .map(|_| {
                let st = app.state.clone();
                tokio::spawn(async move { schedules::tick(&st, at(minute)).await.expect("tick").enqueued })
            })
            .collect();
        let mut total = 0;
        for r in runs {
            total += r.await.unwrap();
        }
        assert_eq!(total, 1, "one job for the occurrence at {minute}");
    }
    assert_eq!(jobs_of(&app, &id).await, counted + 2);

    // The job runs (the worker appends a note) and the schedule shows it.
    let notes = format!("/api/v1/orgs/{}/notes", f.org_slug);
    for _ in 0..1200 {
        let (_, v) = app.get(t, &notes).await;
        if v["items"].as_array().map_or(0, |a| a.iter().filter(|n| n["body"] == "tick").count()) as i64 == counted + 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let s = org_schedule(&app, t, &f.org_slug, "notes.minutely").await;
    assert_eq!(s["last_job_status"], "done", "{s}");
    assert!(s["last_run_at"].is_string());

    // Switched off: nothing, even when due.
    let (s, _) = patch(&app, t, &path, json!({"enabled": false})).await;
    assert_eq!(s, 200);
    assert_eq!(tick(&app.state, "2036-01-15T11:00:00Z").await.enqueued, 0);
    assert_eq!(jobs_of(&app, &id).await, counted + 2);
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{}/audit?action=schedule.update", f.org_slug)).await;
    assert_eq!(audit["items"].as_array().map(|a| a.len()), Some(2), "{audit}");

    // A module switched off for the organisation: occurrences pass without a job.
    let (s, _) = patch(&app, t, &path, json!({"enabled": true})).await;
    assert_eq!(s, 200);
    let r = app
        .http
        .put(app.url(&format!("/api/v1/orgs/{}/modules/notes", f.org_slug)))
        .bearer_auth(t)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let before = jobs_of(&app, &id).await;
    assert_eq!(tick(&app.state, "2037-01-01T00:00:00Z").await, TickReport { enqueued: 0, skipped: 1 });
    assert_eq!(jobs_of(&app, &id).await, before);

    // Counted in /metrics.
    let m = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("shrooms_schedules{state=\"enabled\"} 1"), "{m}");
});

db_test!(schedules_follow_the_organisation_time_zone, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let id = org_schedule(&app, t, &f.org_slug, "notes.minutely").await["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/orgs/{}/schedules/{id}", f.org_slug);
    let (s, b) = patch(&app, t, &path, json!({"cron": "0 9 * * *", "enabled": true})).await;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["time_zone"], "Europe/Paris");
    assert_eq!(b["own_time_zone"], Value::Null);

    // 09:00 in Paris is 08:00Z in winter and 07:00Z in summer.
    tick(&app.state, "2037-01-10T12:00:00Z").await;
    assert_eq!(org_schedule(&app, t, &f.org_slug, "notes.minutely").await["next_run_at"], "2037-01-11T08:00:00Z");
    tick(&app.state, "2037-07-10T12:00:00Z").await;
    let s = org_schedule(&app, t, &f.org_slug, "notes.minutely").await;
    assert_eq!(
        (s["next_run_at"].as_str(), s["next_run_local"].as_str()),
        (Some("2037-07-11T07:00:00Z"), Some("2037-07-11 09:00"))
    );

    // The organisation moves to New York: the next run moves with it.
    let (s, b) = patch(&app, t, &format!("/api/v1/orgs/{}", f.org_slug), json!({"timezone": "America/New_York"})).await;
    assert_eq!(s, 200, "{b}");
    let s = org_schedule(&app, t, &f.org_slug, "notes.minutely").await;
    assert_eq!(s["time_zone"], "America/New_York");
    assert!(s["next_run_local"].as_str().unwrap().ends_with(" 09:00"), "{s}");
    let utc_hour = &s["next_run_at"].as_str().unwrap()[11..13];
    assert!(utc_hour == "13" || utc_hour == "14", "09:00 in New York is 13:00Z or 14:00Z: {s}");

    // A zone of its own, then back to the organisation's.
    let (_, b) = patch(&app, t, &path, json!({"time_zone": "Asia/Tokyo"})).await;
    assert_eq!((b["time_zone"].as_str(), b["own_time_zone"].as_str()), (Some("Asia/Tokyo"), Some("Asia/Tokyo")));
    assert_eq!(&b["next_run_at"].as_str().unwrap()[11..16], "00:00", "09:00 in Tokyo is 00:00Z: {b}");
    let (_, b) = patch(&app, t, &path, json!({"time_zone": ""})).await;
    assert_eq!((b["time_zone"].as_str(), &b["own_time_zone"]), (Some("America/New_York"), &Value::Null));

    // Zones are checked against the time zone database.
    let (s, b) = patch(&app, t, &format!("/api/v1/orgs/{}", f.org_slug), json!({"timezone": "Mars/Olympus"})).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("timezone")), "{b}");
    let (s, b) = patch(&app, t, &path, json!({"time_zone": "Europe/Atlantis"})).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("time_zone")), "{b}");

    // The instance's zone: for instance-wide schedules and new organisations.
    let (s, b) = patch(&app, t, "/api/v1/admin/instance", json!({"time_zone": "Nowhere/Land"})).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("time_zone")), "{b}");
    let (s, b) = patch(&app, t, "/api/v1/admin/instance", json!({"time_zone": "America/Toronto"})).await;
    assert_eq!((s, b["time_zone"].as_str()), (200, Some("America/Toronto")), "{b}");
    let (s, b) = app.post(t, "/api/v1/orgs", json!({"name": "Toronto Makers"})).await;
    assert_eq!(s, 201, "{b}");
    assert_eq!(b["timezone"], "America/Toronto");
    let s = org_schedule(&app, t, b["slug"].as_str().unwrap(), "notes.minutely").await;
    assert_eq!(s["time_zone"], "America/Toronto");
});

db_test!(administrators_change_schedules_within_their_reach, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let mine = org_schedule(&app, t, &f.org_slug, "notes.minutely").await["id"].as_str().unwrap().to_string();
    let (_, other) = app.post(t, "/api/v1/orgs", json!({"name": "Other Club"})).await;
    let other_slug = other["slug"].as_str().unwrap().to_string();
    let theirs = org_schedule(&app, t, &other_slug, "notes.minutely").await["id"].as_str().unwrap().to_string();

    // A bad expression: 422 problem+json naming the field, with the reason.
    let r = app
        .http
        .patch(app.url(&format!("/api/v1/orgs/{}/schedules/{mine}", f.org_slug)))
        .bearer_auth(t)
        .json(&json!({"cron": "0 25 * * *"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["errors"][0]["field"], "cron");
    assert_eq!(b["errors"][0]["message"], "hour field: 25 is outside 0-23");
    let (s, b) = patch(&app, t, &format!("/api/v1/admin/schedules/{mine}"), json!({"cron": "0 9 * *"})).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (422, Some("cron")));
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("Expected 5 fields"), "{b}");
    let (s, _) =
        patch(&app, t, &format!("/api/v1/admin/schedules/{mine}"), json!({"cron": "@weekly", "color": 1})).await;
    assert_eq!(s, 422, "unknown fields are refused");

    // The instance administrator sees and changes every schedule.
    let (s, all) = app.get(t, "/api/v1/admin/schedules").await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = all.as_array().unwrap().iter().filter_map(|x| x["id"].as_str()).collect();
    assert!(ids.contains(&mine.as_str()) && ids.contains(&theirs.as_str()), "{all}");
    let (s, b) = patch(&app, t, &format!("/api/v1/admin/schedules/{theirs}"), json!({"cron": "@monthly"})).await;
    assert_eq!((s, b["cron"].as_str(), b["default_cron"].as_str()), (200, Some("@monthly"), Some("* * * * *")));

    // An organisation's administrator: their organisation only.
    let admin_b = app.member(t, &f.org_slug, "orgadmin@example.org", "admin").await;
    let (s, list) = app.get(&admin_b, &format!("/api/v1/orgs/{}/schedules", f.org_slug)).await;
    assert_eq!(s, 200);
    // (Other modules' schedules of the organisation are listed too: count the notes module's.)
    assert_eq!(
        list.as_array().unwrap().iter().filter(|x| x["module"] == "notes").count(),
        1,
        "only this organisation's: {list}"
    );
    assert!(list.as_array().unwrap().iter().all(|x| x["org_id"] == f.org_id.as_str()), "{list}");
    let (s, _) =
        patch(&app, &admin_b, &format!("/api/v1/orgs/{}/schedules/{theirs}", f.org_slug), json!({"enabled": true}))
            .await;
    assert_eq!(s, 404, "another organisation's schedule through one's own");
    let (s, _) =
        patch(&app, &admin_b, &format!("/api/v1/orgs/{other_slug}/schedules/{theirs}"), json!({"enabled": true})).await;
    assert_eq!(s, 404, "another organisation");
    let (s, _) = app.get(&admin_b, "/api/v1/admin/schedules").await;
    assert_eq!(s, 403);
    let (s, b) =
        patch(&app, &admin_b, &format!("/api/v1/orgs/{}/schedules/{mine}", f.org_slug), json!({"cron": "30 2 * * *"}))
            .await;
    assert_eq!((s, b["cron"].as_str()), (200, Some("30 2 * * *")), "{b}");
    let staff = app.member(t, &f.org_slug, "staff@example.org", "staff").await;
    let (s, _) = app.get(&staff, &format!("/api/v1/orgs/{}/schedules", f.org_slug)).await;
    assert_eq!(s, 403);
    let theirs_now = org_schedule(&app, t, &other_slug, "notes.minutely").await;
    assert_eq!((theirs_now["cron"].as_str(), theirs_now["enabled"].as_bool()), (Some("@monthly"), Some(false)));

    // The pages: a bad expression comes back on the form with the reason.
    let b = &app.browser;
    let csrf = app.sign_in(b, "admin@example.org", ADMIN_PASSWORD).await;
    let page = format!("/o/{}/settings/schedules", f.org_slug);
    let html = b.get(app.url(&page)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("notes.minutely") && html.contains("30 2 * * *"), "{html}");
    let r = b
        .post(app.url(&format!("{page}/{mine}")))
        .form(&[("_csrf", csrf.as_str()), ("cron", "61 * * * *"), ("time_zone", ""), ("enabled", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(html.contains("minute field: 61 is outside 0-59") && html.contains("value=\"61 * * * *\""), "{html}");
    let r = b
        .post(app.url(&format!("{page}/{mine}")))
        .form(&[("_csrf", csrf.as_str()), ("cron", "0 9 * * mon"), ("time_zone", ""), ("enabled", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let s = org_schedule(&app, t, &f.org_slug, "notes.minutely").await;
    assert_eq!((s["cron"].as_str(), s["enabled"].as_bool()), (Some("0 9 * * mon"), Some(true)));
    let r = b
        .post(app.url(&format!("{page}/{theirs}")))
        .form(&[("_csrf", csrf.as_str()), ("cron", "@daily")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "another organisation's schedule through this page");
    let html = b.get(app.url("/admin/schedules")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains(&other_slug) && html.contains("@monthly"), "{html}");
});

// ---------- storing the modules' schedules ----------

fn noop(_: AppState, _: JobCtx) -> JobFuture {
    Box::pin(async { Ok(()) })
}

/// A module whose schedules each test chooses, to play module upgrades.
struct Ticker(Vec<ScheduleSpec>);

impl Module for Ticker {
    fn id(&self) -> &'static str {
        "ticker"
    }
    fn name_key(&self) -> &'static str {
        "Ticker"
    }
    fn description_key(&self) -> &'static str {
        "Ticker"
    }
    fn default_access(&self, _: BuiltinRole) -> Access {
        Access::Read
    }
    fn jobs(&self) -> Vec<JobSpec> {
        vec![JobSpec { name: "ticker.run", max_attempts: 1, backoff_secs: 0, timeout_secs: 5, run: noop }]
    }
    fn schedules(&self) -> Vec<ScheduleSpec> {
        self.0.clone()
    }
}

fn ticker(specs: Vec<ScheduleSpec>) -> Modules {
    Modules::new(vec![Arc::new(shrooms_core::core_module::CoreModule), Arc::new(Ticker(specs))]).expect("modules")
}

#[test]
fn declared_schedules_are_checked_at_registration() {
    let err = |s: ScheduleSpec| {
        Modules::new(vec![Arc::new(shrooms_core::core_module::CoreModule), Arc::new(Ticker(vec![s]))])
            .err()
            .expect("refused")
            .to_string()
    };
    assert!(err(ScheduleSpec::instance("ticker.x", "ticker.nope", "@daily")).contains("no module declares"));
    assert_eq!(
        err(ScheduleSpec::instance("ticker.x", "ticker.run", "0 0 * * 9")),
        "schedule `ticker.x`: day-of-week field: 9 is outside 0-7"
    );
    assert!(err(ScheduleSpec::instance("ticker.x", "ticker.run", "@daily").in_zone("Mars/Base"))
        .contains("unknown time zone"));
    let twice = Modules::new(vec![
        Arc::new(shrooms_core::core_module::CoreModule),
        Arc::new(Ticker(vec![
            ScheduleSpec::instance("ticker.x", "ticker.run", "@daily"),
            ScheduleSpec::each_org("ticker.x", "ticker.run", "@daily"),
        ])),
    ]);
    assert!(twice.err().unwrap().to_string().contains("declared twice"));
}

async fn stored(app: &TestApp, name: &str) -> Vec<(Option<String>, String, String, i64, i64)> {
    sqlx::query("SELECT org_id, cron, default_cron, enabled, declared FROM schedules WHERE name = $1 ORDER BY org_id")
        .bind(name)
        .fetch_all(app.state.db.pool())
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
        .collect()
}

db_test!(module_schedules_are_stored_once_and_follow_upgrades, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    app.post(t, "/api/v1/orgs", json!({"name": "Second"})).await;
    let db = &app.state.db;
    let now = Timestamp::now();
    let v1 = ticker(vec![
        ScheduleSpec::instance("ticker.backup", "ticker.run", "30 2 * * *"),
        ScheduleSpec::each_org("ticker.report", "ticker.run", "0 6 1 * *"),
    ]);

    // Two servers starting at once: each schedule stored once per scope.
    let (a, b) = tokio::join!(schedules::sync(db, &v1, now), schedules::sync(db, &v1, now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.created + b.created, 3, "one instance-wide, one per organisation");
    assert_eq!(schedules::sync(db, &v1, now).await.unwrap(), SyncReport::default());
    assert_eq!(stored(&app, "ticker.backup").await, vec![(None, "30 2 * * *".into(), "30 2 * * *".into(), 1, 1)]);
    assert_eq!(stored(&app, "ticker.report").await.len(), 2);

    // An administrator picks another time for the first organisation's report.
    let (_, all) = app.get(t, "/api/v1/admin/schedules").await;
    let report = all
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ticker.report" && s["org_id"] == f.org_id.as_str())
        .unwrap();
    // Instance-wide schedules (the core's and this one) come first.
    let instance_wide: Vec<&serde_json::Value> =
        all.as_array().unwrap().iter().take_while(|s| s["org_id"].is_null()).collect();
    let backup = instance_wide.iter().find(|s| s["name"] == "ticker.backup").expect("instance-wide first");
    assert_eq!(backup["time_zone"], "Europe/Paris", "the instance's zone");
    let (s, _) = patch(
        &app,
        t,
        &format!("/api/v1/admin/schedules/{}", report["id"].as_str().unwrap()),
        json!({"cron": "0 7 1 * *"}),
    )
    .await;
    assert_eq!(s, 200);

    // The module changes both expressions: applied, except over the administrator's choice.
    let v2 = ticker(vec![
        ScheduleSpec::instance("ticker.backup", "ticker.run", "0 3 * * *"),
        ScheduleSpec::each_org("ticker.report", "ticker.run", "0 5 1 * *"),
    ]);
    assert_eq!(schedules::sync(db, &v2, now).await.unwrap(), SyncReport { created: 0, updated: 3, retired: 0 });
    assert_eq!(stored(&app, "ticker.backup").await, vec![(None, "0 3 * * *".into(), "0 3 * * *".into(), 1, 1)]);
    let crons: Vec<String> = stored(&app, "ticker.report").await.into_iter().map(|r| r.1).collect();
    assert!(crons.contains(&"0 7 1 * *".to_string()) && crons.contains(&"0 5 1 * *".to_string()), "{crons:?}");

    // The module no longer declares the backup: switched off, and stays so.
    let v3 = ticker(vec![ScheduleSpec::each_org("ticker.report", "ticker.run", "0 5 1 * *")]);
    assert_eq!(schedules::sync(db, &v3, now).await.unwrap(), SyncReport { created: 0, updated: 0, retired: 1 });
    assert_eq!(stored(&app, "ticker.backup").await, vec![(None, "0 3 * * *".into(), "0 3 * * *".into(), 0, 0)]);
    let backup = backup["id"].as_str().unwrap();
    let (s, b) = patch(&app, t, &format!("/api/v1/admin/schedules/{backup}"), json!({"enabled": true})).await;
    assert_eq!((s, b["errors"][0]["field"].as_str()), (409, Some("enabled")), "{b}");
    // Due: the two reports (whose job this server does not know, so skipped); the backup is not.
    assert_eq!(tick(&app.state, "2039-01-01T00:00:00Z").await, TickReport { enqueued: 0, skipped: 2 });

    // Declared again: back, as the module says.
    assert_eq!(schedules::sync(db, &v2, now).await.unwrap().updated, 1);
    assert_eq!(stored(&app, "ticker.backup").await, vec![(None, "0 3 * * *".into(), "0 3 * * *".into(), 1, 1)]);
});
