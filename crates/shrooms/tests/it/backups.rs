//! Scheduled backups: the core's schedules, a backup with the uploaded
//! files, retention, a second copy, and a restore into a fresh data folder
//! (or database) that serves exactly what the original served.

use crate::files::upload;
use serde_json::{json, Value};
use shrooms_core::schedules;
use testkit::{db_test, TestApp};

/// What a user sees of an organisation: people with their custom fields,
/// a person's timeline and attachments (with the file's bytes), the audit trail.
async fn view(app: &TestApp, token: &str, org: &str, person: &str) -> Value {
    let (_, people) = app.get(token, &format!("/api/v1/orgs/{org}/people?limit=200")).await;
    let (_, timeline) = app.get(token, &format!("/api/v1/orgs/{org}/timeline/person/{person}")).await;
    let (_, files) = app.get(token, &format!("/api/v1/orgs/{org}/files?entity_type=person&entity_id={person}")).await;
    let mut contents = Vec::new();
    for f in files["items"].as_array().cloned().unwrap_or_default() {
        let r = app
            .http
            .get(app.url(&format!("/api/v1/orgs/{org}/files/{}/content", f["id"].as_str().unwrap())))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        contents.push(String::from_utf8_lossy(&r.bytes().await.unwrap()).to_string());
    }
    let (_, audit) = app.get(token, &format!("/api/v1/orgs/{org}/audit?limit=500")).await;
    json!({"people": people["items"], "timeline": timeline["items"], "files": files["items"], "contents": contents, "audit": audit["items"]})
}

db_test!(a_restored_backup_serves_what_the_original_served, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    let (s, _) = app
        .post(
            admin,
            &format!("/api/v1/orgs/{org}/custom-fields"),
            json!({"key": "size", "label": "Size", "kind": "choice", "options": ["S", "M"]}),
        )
        .await;
    assert_eq!(s, 201);
    let (_, p) = app
        .post(admin, &format!("/api/v1/orgs/{org}/people"), json!({"given_name": "Awa", "custom": {"size": "M"}}))
        .await;
    let pid = p["id"].as_str().unwrap().to_string();
    app.post(
        admin,
        &format!("/api/v1/orgs/{org}/timeline/person/{pid}/comments"),
        json!({"body": "Joined the **board**."}),
    )
    .await;
    let (s, up) = upload(
        &app,
        admin,
        org,
        &[("entity_type", "person"), ("entity_id", pid.as_str())],
        "minutes.csv",
        b"date;topic\n2026-11-21;budget\n",
    )
    .await;
    assert_eq!(s, 201, "{up}");
    let before = view(&app, admin, org, &pid).await;

    // A scheduled backup, with a copy in a second folder.
    let second = app.data_dir.join("offsite");
    let mut cfg = app.state.cfg.clone();
    cfg.backup.copy_to = Some(second.clone());
    let path = shrooms_core::backup::scheduled(&cfg, &app.state.db).await.expect("backup");
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    assert!(name.starts_with("shrooms-"), "{name}");
    assert!(second.join(&name).is_file(), "copied to the second folder");
    assert!(shrooms_core::backup::files_dir_of(&path).is_dir(), "the uploaded files are in the backup");

    // Restored into a fresh data folder (and, on PostgreSQL, a fresh database).
    let modules = crate::modules();
    let (mut fresh, dir) = testkit::test_config(app.backend, &modules).await.unwrap();
    fresh.security = app.state.cfg.security.clone();
    shrooms_core::backup::restore(&fresh, &path).await.expect("restore");
    let restored = TestApp::spawn_with(fresh, dir, app.backend, modules).await;
    let token = restored.token(&f.admin_email, testkit::ADMIN_PASSWORD).await;
    let after = view(&restored, &token, org, &pid).await;
    assert_eq!(before, after);
    assert!(matches!(
        shrooms_core::audit::verify(&restored.state.db).await.unwrap(),
        shrooms_core::audit::Verification::Intact { .. }
    ));
});

db_test!(the_core_schedules_exist_and_the_backup_runs, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let (s, all) = app.get(admin, "/api/v1/admin/schedules").await;
    assert_eq!(s, 200, "{all}");
    let find = |name: &str| {
        all.as_array().unwrap().iter().find(|s| s["name"] == name).cloned().unwrap_or_else(|| panic!("{name}: {all}"))
    };
    assert_eq!(find("core.backup")["cron"], "30 3 * * *");
    assert_eq!(find("core.health")["cron"], "*/5 * * * *");
    assert_eq!(find("core.digest")["cron"], "0 7 * * *");

    // Switched on, the backup runs at its next occurrence and writes a backup.
    let id = find("core.backup")["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .send(reqwest::Method::PATCH, admin, &format!("/api/v1/admin/schedules/{id}"), json!({"enabled": true}))
        .await;
    assert_eq!(s, 200, "{v}");
    let later = shrooms_core::ids::Timestamp::now().plus_secs(2 * 86_400);
    crate::schedules::quiet_members_schedules(&app.state).await;
    let report = schedules::tick(&app.state, later).await.unwrap();
    assert_eq!(report.enqueued, 1, "{report:?}");
    let folder = app.data_dir.join("backups");
    for _ in 0..600 {
        let written = std::fs::read_dir(&folder)
            .map(|d| d.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().starts_with("shrooms-")))
            .unwrap_or(false);
        if written {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no scheduled backup in {}", folder.display());
});
