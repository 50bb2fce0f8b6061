//! A test-only module and the tests of the module interface.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use shrooms_core::db::Migration;
use shrooms_core::module::{MenuEntry, Module};
use shrooms_core::permissions::{Access, BuiltinRole};
use shrooms_core::web::api::ApiJson;
use shrooms_core::web::{AppState, OrgCtx};
use shrooms_core::CoreResult;
use sqlx::Row;
use testkit::{db_test, TestApp};

pub struct NotesModule;

async fn list(State(st): State<AppState>, ctx: OrgCtx) -> CoreResult<Json<Value>> {
    let cap = ctx.can_read("notes")?;
    let rows = sqlx::query("SELECT id, body FROM test_notes WHERE org_id = $1 ORDER BY id")
        .bind(cap.org().to_string())
        .fetch_all(st.db.pool())
        .await?;
    let items: Vec<Value> = rows.iter().map(|r| json!({"id": r.try_get::<String, _>(0).unwrap_or_default(), "body": r.try_get::<String, _>(1).unwrap_or_default()})).collect();
    Ok(Json(json!({"items": items})))
}

async fn create(
    State(st): State<AppState>,
    ctx: OrgCtx,
    ApiJson(body): ApiJson<Value>,
) -> CoreResult<(axum::http::StatusCode, Json<Value>)> {
    let cap = ctx.can_write("notes")?;
    let id = uuid::Uuid::now_v7().to_string();
    let mut tx = st.db.begin().await?;
    sqlx::query("INSERT INTO test_notes (id, org_id, body) VALUES ($1, $2, $3)")
        .bind(&id)
        .bind(cap.org().to_string())
        .bind(body["body"].as_str().unwrap_or(""))
        .execute(tx.conn())
        .await?;
    shrooms_core::audit::record(
        &mut tx,
        &ctx.who(),
        shrooms_core::audit::Change {
            org: Some(cap.org()),
            action: "note.create",
            entity_type: "note",
            entity_id: id.clone(),
            before: None,
            after: Some(body.clone()),
        },
    )
    .await?;
    tx.commit().await?;
    Ok((axum::http::StatusCode::CREATED, Json(json!({"id": id}))))
}

async fn get_one(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
) -> CoreResult<Json<Value>> {
    let cap = ctx.can_read("notes")?;
    let r = sqlx::query("SELECT body FROM test_notes WHERE org_id = $1 AND id = $2")
        .bind(cap.org().to_string())
        .bind(&id)
        .fetch_optional(st.db.pool())
        .await?
        .ok_or(shrooms_core::CoreError::NotFound)?;
    Ok(Json(json!({"id": id, "body": r.try_get::<String, _>(0)?})))
}

fn find_note(st: AppState, ctx: OrgCtx, id: String) -> shrooms_core::module::RecordFuture {
    Box::pin(async move {
        let cap = ctx.can_read("notes")?;
        let r = sqlx::query("SELECT body FROM test_notes WHERE org_id = $1 AND id = $2")
            .bind(cap.org().to_string())
            .bind(&id)
            .fetch_optional(st.db.pool())
            .await?;
        Ok(r.map(|r| shrooms_core::module::RecordRef {
            entity_type: "note".into(),
            title: r.try_get::<String, _>(0).unwrap_or_default(),
            path: format!("/o/{}/notes/{id}", ctx.org.slug),
            entity_id: id.clone(),
        }))
    })
}

/// A module's one-line timeline call: the status change is recorded in the
/// module's own transaction and the note's followers are told.
async fn set_status(
    State(st): State<AppState>,
    ctx: OrgCtx,
    Path((_, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<Value>,
) -> CoreResult<axum::http::StatusCode> {
    ctx.can_write("notes")?;
    let record = find_note(st.clone(), ctx.clone(), id).await?.ok_or(shrooms_core::CoreError::NotFound)?;
    let mut tx = st.db.begin().await?;
    shrooms_core::timeline::status_change(
        &st,
        &mut tx,
        &ctx.who(),
        ctx.org.id,
        &record,
        body["from"].as_str(),
        body["to"].as_str().unwrap_or(""),
        body["note"].as_str().unwrap_or(""),
    )
    .await?;
    tx.commit().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

static MIGRATIONS: &[Migration] = &[Migration { id: "m20261121_001_notes_init", sql: "CREATE TABLE test_notes (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES orgs (id), body TEXT NOT NULL);\n" }];

/// Appends the note given in the payload; idempotent (the job id is the note id).
fn append_note(st: AppState, ctx: shrooms_core::jobs::JobCtx) -> shrooms_core::jobs::JobFuture {
    Box::pin(async move {
        let org = ctx.org.ok_or_else(|| anyhow::anyhow!("no organisation"))?;
        let mut tx = st.db.begin().await?;
        sqlx::query("INSERT INTO test_notes (id, org_id, body) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING")
            .bind(&ctx.id)
            .bind(org.to_string())
            .bind(ctx.payload["body"].as_str().unwrap_or(""))
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(())
    })
}

fn always_fails(_: AppState, ctx: shrooms_core::jobs::JobCtx) -> shrooms_core::jobs::JobFuture {
    Box::pin(async move { anyhow::bail!("attempt {} failed", ctx.attempt) })
}

pub const APPEND: shrooms_core::jobs::JobSpec = shrooms_core::jobs::JobSpec {
    name: "notes.append",
    max_attempts: 3,
    backoff_secs: 0,
    timeout_secs: 10,
    run: append_note,
};
pub const FAIL: shrooms_core::jobs::JobSpec = shrooms_core::jobs::JobSpec {
    name: "notes.fail",
    max_attempts: 3,
    backoff_secs: 0,
    timeout_secs: 10,
    run: always_fails,
};

impl Module for NotesModule {
    fn jobs(&self) -> Vec<shrooms_core::jobs::JobSpec> {
        vec![APPEND, FAIL]
    }
    /// Every minute, in every organisation, once switched on (off by default
    /// so that it never runs in other tests); see `schedules.rs`.
    fn schedules(&self) -> Vec<shrooms_core::schedules::ScheduleSpec> {
        vec![shrooms_core::schedules::ScheduleSpec::each_org("notes.minutely", "notes.append", "* * * * *")
            .with_payload(json!({"body": "tick"}))
            .disabled()]
    }
    fn id(&self) -> &'static str {
        "notes"
    }
    fn name_key(&self) -> &'static str {
        "Notes"
    }
    fn description_key(&self) -> &'static str {
        "Test notes"
    }
    fn migrations(&self) -> &'static [Migration] {
        MIGRATIONS
    }
    fn default_access(&self, role: BuiltinRole) -> Access {
        match role {
            BuiltinRole::Owner | BuiltinRole::Admin => Access::Admin,
            BuiltinRole::Manager | BuiltinRole::Staff => Access::Write,
            BuiltinRole::Member => Access::Read,
            BuiltinRole::Client => Access::None,
        }
    }
    fn menu(&self) -> Vec<MenuEntry> {
        vec![MenuEntry { label_key: "Notes", path: "notes", min_access: Access::Read, order: 50 }]
    }
    fn router(&self) -> Router<AppState> {
        Router::new()
            .route("/api/v1/orgs/{org}/notes", get(list).post(create))
            .route("/api/v1/orgs/{org}/notes/{id}", get(get_one))
            .route("/api/v1/orgs/{org}/notes/{id}/status", axum::routing::post(set_status))
    }
    fn record_kinds(&self) -> Vec<shrooms_core::module::RecordKind> {
        vec![shrooms_core::module::RecordKind { entity_type: "note", module: "notes", find: find_note }]
    }
    fn openapi(&self) -> Option<utoipa::openapi::OpenApi> {
        use utoipa::openapi::path::{
            HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem, PathsBuilder,
        };
        let p = |n: &str| {
            ParameterBuilder::new()
                .name(n)
                .parameter_in(ParameterIn::Path)
                .required(utoipa::openapi::Required::True)
                .build()
        };
        let op = |params: Vec<_>| {
            let mut b = OperationBuilder::new();
            for x in params {
                b = b.parameter(x);
            }
            b.response("200", utoipa::openapi::Response::new("ok")).build()
        };
        let paths = PathsBuilder::new()
            .path("/api/v1/orgs/{org}/notes", {
                let mut item = PathItem::new(HttpMethod::Get, op(vec![p("org")]));
                item.post = Some(op(vec![p("org")]));
                item
            })
            .path("/api/v1/orgs/{org}/notes/{id}", PathItem::new(HttpMethod::Get, op(vec![p("org"), p("id")])))
            .build();
        Some(utoipa::openapi::OpenApiBuilder::new().paths(paths).build())
    }
}

db_test!(module_routes_follow_enabling_per_instance_and_org, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let notes = format!("/api/v1/orgs/{}/notes", f.org_slug);
    let (s, created) = app.post(t, &notes, json!({"body": "hello"})).await;
    assert_eq!(s, 201, "{created}");

    // Disabled for the organisation: its routes answer 404, its data stays.
    let (s, _) = app
        .send(reqwest::Method::PUT, t, &format!("/api/v1/orgs/{}/modules/notes", f.org_slug), json!({"enabled": false}))
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.get(t, &notes).await.0, 404);
    let (_, mods) = app.get(t, &format!("/api/v1/orgs/{}/modules", f.org_slug)).await;
    assert_eq!(mods.as_array().unwrap().iter().find(|m| m["id"] == "notes").unwrap()["enabled"], false);

    // Enabled again: the note is still there.
    app.send(reqwest::Method::PUT, t, &format!("/api/v1/orgs/{}/modules/notes", f.org_slug), json!({"enabled": true}))
        .await;
    let (s, list) = app.get(t, &notes).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"][0]["body"], "hello");

    // Disabled for the whole instance: 404 in every organisation.
    let (s, _) = app.send(reqwest::Method::PUT, t, "/api/v1/admin/modules/notes", json!({"enabled": false})).await;
    assert_eq!(s, 204);
    assert_eq!(app.get(t, &notes).await.0, 404);

    // Each change is in the audit log.
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{}/audit?action=module.disable", f.org_slug)).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
    let (_, audit) = app.get(t, "/api/v1/admin/audit?action=module.disable").await;
    assert!(audit["items"].as_array().unwrap().iter().any(|e| e["org_id"].is_null() && e["entity_id"] == "notes"));

    // The core cannot be disabled.
    let (s, b) = app.send(reqwest::Method::PUT, t, "/api/v1/admin/modules/core", json!({"enabled": false})).await;
    assert_eq!(s, 422, "{b}");
});

db_test!(module_permissions_come_from_roles, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let notes = format!("/api/v1/orgs/{}/notes", f.org_slug);
    let member = app.member(&f.admin_token, &f.org_slug, "member@example.org", "member").await;
    let client = app.member(&f.admin_token, &f.org_slug, "client@example.org", "client").await;
    assert_eq!(app.get(&member, &notes).await.0, 200);
    let (s, b) = app.post(&member, &notes, json!({"body": "x"})).await;
    assert_eq!(s, 403, "{b}");
    assert_eq!(b["type"], "urn:shrooms:problem:forbidden");
    assert_eq!(app.get(&client, &notes).await.0, 403);
    // A custom role granting write on notes only.
    let (s, b) = app
        .post(
            &f.admin_token,
            &format!("/api/v1/orgs/{}/roles", f.org_slug),
            json!({"key": "scribe", "name": "Scribe", "permissions": {"notes": "write", "core": "read"}}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let scribe = app.member(&f.admin_token, &f.org_slug, "scribe@example.org", "scribe").await;
    assert_eq!(app.post(&scribe, &notes, json!({"body": "by scribe"})).await.0, 201);
    assert_eq!(
        app.post(
            &scribe,
            &format!("/api/v1/orgs/{}/people", f.org_slug),
            json!({"given_name": "A", "family_name": "B", "email": "a@b.org"})
        )
        .await
        .0,
        403
    );
});

pub async fn enqueue(
    app: &TestApp,
    spec: &shrooms_core::jobs::JobSpec,
    org: &str,
    body: &str,
    key: Option<&str>,
) -> String {
    let mut tx = app.state.db.begin().await.unwrap();
    let id = shrooms_core::jobs::enqueue(&mut tx, spec, Some(org.parse().unwrap()), json!({"body": body}), key, 0)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    id
}

pub async fn wait_for<F: Fn(&Value) -> bool>(app: &TestApp, token: &str, path: &str, ok: F) -> Value {
    for _ in 0..1200 {
        let (_, v) = app.get(token, path).await;
        if ok(&v) {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("condition not reached on {path}");
}

db_test!(jobs_run_retry_die_and_resume, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let notes = format!("/api/v1/orgs/{}/notes", f.org_slug);
    // Enqueued in a transaction that commits: it runs once, even if enqueued twice with one key.
    let id = enqueue(&app, &APPEND, &f.org_id, "from a job", Some("welcome-note")).await;
    assert_eq!(enqueue(&app, &APPEND, &f.org_id, "from a job", Some("welcome-note")).await, id);
    wait_for(&app, t, &notes, |v| v["items"].as_array().is_some_and(|a| a.len() == 1)).await;
    // A job enqueued in a transaction that rolls back never exists.
    {
        let mut tx = app.state.db.begin().await.unwrap();
        shrooms_core::jobs::enqueue(
            &mut tx,
            &APPEND,
            Some(f.org_id.parse().unwrap()),
            json!({"body": "ghost"}),
            None,
            0,
        )
        .await
        .unwrap();
        drop(tx);
    }
    // A failing job is retried, then dead, with its last error; an operator can retry it.
    let bad = enqueue(&app, &FAIL, &f.org_id, "", None).await;
    let jobs =
        wait_for(&app, t, "/api/v1/admin/jobs?status=dead", |v| v.as_array().is_some_and(|a| !a.is_empty())).await;
    let dead = jobs.as_array().unwrap().iter().find(|j| j["id"] == bad.as_str()).unwrap().clone();
    assert_eq!(dead["attempts"], 3);
    assert_eq!(dead["last_error"], "attempt 3 failed");
    let r = app.http.post(app.url(&format!("/api/v1/admin/jobs/{bad}/retry"))).bearer_auth(t).send().await.unwrap();
    assert_eq!(r.status(), 204);
    // A job whose worker died mid-run (lease expired) runs again. Written as
    // already claimed in the same transaction, so no live worker saw it queued.
    let orphan = {
        let mut tx = app.state.db.begin().await.unwrap();
        let id = shrooms_core::jobs::enqueue(
            &mut tx,
            &APPEND,
            Some(f.org_id.parse().unwrap()),
            json!({"body": "orphan"}),
            None,
            0,
        )
        .await
        .unwrap();
        sqlx::query("UPDATE jobs SET status = 'running', attempts = 1, locked_by = 'dead-worker', locked_until = 1 WHERE id = $1")
            .bind(&id)
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        id
    };
    let v =
        wait_for(&app, t, &notes, |v| v["items"].as_array().is_some_and(|a| a.iter().any(|n| n["body"] == "orphan")))
            .await;
    assert!(!v["items"].as_array().unwrap().iter().any(|n| n["body"] == "ghost"));
    let (_, done) = app.get(t, "/api/v1/admin/jobs?status=done").await;
    let reclaimed = done.as_array().unwrap().iter().find(|j| j["id"] == orphan.as_str()).expect("orphan done").clone();
    assert_eq!(reclaimed["attempts"], 2, "the dead worker's attempt counts, then one more");
});

db_test!(jobs_run_exactly_once_across_replicas, |app: TestApp| async move {
    let f = app.bootstrap().await;
    // A second server on the same database: two job workers compete.
    let _replica =
        TestApp::spawn_with(app.state.cfg.clone(), app.data_dir.clone(), app.backend, crate::modules()).await;
    for i in 0..40 {
        enqueue(&app, &APPEND, &f.org_id, &format!("n{i}"), None).await;
    }
    let t = &f.admin_token;
    wait_for(&app, t, "/api/v1/admin/jobs?status=done&limit=500", |v| v.as_array().is_some_and(|a| a.len() == 40))
        .await;
    let rows: Vec<(String, i64)> = {
        let rs = sqlx::query("SELECT locked_by, attempts FROM jobs").fetch_all(app.state.db.pool()).await.unwrap();
        rs.iter()
            .map(|r| (r.try_get::<Option<String>, _>(0).unwrap().unwrap_or_default(), r.try_get::<i64, _>(1).unwrap()))
            .collect()
    };
    assert!(rows.iter().all(|(_, attempts)| *attempts == 1), "a job ran twice: {rows:?}");
    let (_, notes) = app.get(t, &format!("/api/v1/orgs/{}/notes", f.org_slug)).await;
    assert_eq!(notes["items"].as_array().unwrap().len(), 40);
});
