//! Integration tests of the clubs module: the real server on a random port,
//! on SQLite and on PostgreSQL, spoken to over HTTP.

use serde_json::{json, Value};
use shrooms_core::{core_module::CoreModule, Modules};
use std::sync::Arc;
use testkit::{db_test, TestApp};

pub fn modules() -> Modules {
    Modules::new(vec![Arc::new(CoreModule), Arc::new(shrooms_clubs::ClubsModule)]).expect("modules")
}

/// Enrols a second factor for the token's account (executives need one).
async fn enrol_totp(app: &TestApp, token: &str) {
    let (s, e) = app.post(token, "/api/v1/me/totp", json!({})).await;
    assert_eq!(s, 200, "{e}");
    let secret = shrooms_core::crypto::base32_decode(e["secret"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let code = shrooms_core::crypto::totp_code(&secret, now / 30);
    let (s, b) = app.post(token, "/api/v1/me/totp/confirm", json!({"code": code})).await;
    assert_eq!(s, 204, "{b}");
    // The account behind a token is cached for up to a second.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
}

fn jpeg(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 128]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
    out.into_inner()
}

async fn attend(app: &TestApp, org: &str, fields: &[(&str, &str)], photos: Vec<Vec<u8>>) -> (u16, Value) {
    let boundary = "----clubs-test-boundary";
    let mut body: Vec<u8> = Vec::new();
    for (k, v) in fields {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    for (i, p) in photos.into_iter().enumerate() {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"p{i}.jpg\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend(p);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    let r = reqwest::Client::new()
        .post(app.url(&format!("/api/v1/orgs/{org}/clubs/attend")))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A request without credentials: a visitor with the link.
async fn public(app: &TestApp, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, app.url(path));
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

struct Setup {
    org: String,
    admin: String,
    club: Value,
    activity: Value,
}

async fn club_with_activity(app: &TestApp) -> Setup {
    let f = app.bootstrap().await;
    enrol_totp(app, &f.admin_token).await;
    let org = f.org_slug.clone();
    let (s, club) = app
        .post(
            &f.admin_token,
            &format!("/api/v1/orgs/{org}/clubs"),
            json!({"name": "Club d'Informatique", "summary": "Code et données"}),
        )
        .await;
    assert_eq!(s, 201, "{club}");
    assert_eq!(club["slug"], "club-d-informatique");
    let (s, activity) = app
        .post(
            &f.admin_token,
            &format!("/api/v1/orgs/{org}/clubs/{}/activities", club["slug"].as_str().unwrap()),
            json!({"theme": "Atelier Python", "starts_at": "2026-03-12T14:30", "place": "Salle 2", "is_competition": true}),
        )
        .await;
    assert_eq!(s, 201, "{activity}");
    Setup { org, admin: f.admin_token, club, activity }
}

db_test!(attendance_by_one_time_code, |app: TestApp| async move {
    let s = club_with_activity(&app).await;
    let (org, club, act) = (&s.org, s.club["slug"].as_str().unwrap(), s.activity["id"].as_str().unwrap());
    let base = format!("/api/v1/orgs/{org}/clubs/{club}/activities/{act}");
    // Before attendance opens, no code works.
    let (st, b) =
        attend(&app, org, &[("code", "123456"), ("last_name", "Kouassi"), ("first_name", "Aïcha")], vec![]).await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "code");
    let (st, code) = app.post(&s.admin, &format!("{base}/attendance"), json!({})).await;
    assert_eq!(st, 201, "{code}");
    let c = code["code"].as_str().unwrap().to_string();
    assert_eq!(c.len(), 6);
    assert!(code["url"].as_str().unwrap().ends_with(&format!("/o/{org}/clubs/attend?code={c}")));
    let opened: jiff::Timestamp = code["opened_at"].as_str().unwrap().parse().unwrap();
    let expires: jiff::Timestamp = code["expires_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(expires.as_second() - opened.as_second(), 3 * 3600, "valid three hours");
    // A participant on a phone: the code, the form, a photo.
    let (st, info) = public(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/orgs/{org}/clubs/attend/check"),
        Some(json!({"code": c})),
    )
    .await;
    assert_eq!(st, 200, "{info}");
    assert_eq!(info["theme"], "Atelier Python");
    let fields = [
        ("code", c.as_str()),
        ("last_name", "Kouassi"),
        ("first_name", "Aïcha"),
        ("field_of_study", "Statistique"),
        ("level", "L2"),
        ("rating", "5"),
        ("suggestion", "Plus de pratique"),
        ("submission_id", "sub-1"),
    ];
    let (st, done) = attend(&app, org, &fields, vec![jpeg(64, 48)]).await;
    assert_eq!(st, 201, "{done}");
    assert_eq!(done["photos"], 1);
    // The same submission again (a retry after a dropped connection): recognised, nothing new.
    let (st, again) = attend(&app, org, &fields, vec![jpeg(64, 48)]).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["already_recorded"], true);
    assert_eq!(again["attendance_id"], done["attendance_id"]);
    // The same person again (another submission, other case and accents): refused.
    let (st, dup) = attend(
        &app,
        org,
        &[("code", &c), ("last_name", "KOUASSI"), ("first_name", "aicha"), ("submission_id", "sub-2")],
        vec![],
    )
    .await;
    assert_eq!(st, 409, "{dup}");
    assert!(dup["detail"].as_str().unwrap().contains("already"), "{dup}");
    // Bad input: not an image, no name, a rating out of range; nothing stored.
    let (st, b) = attend(
        &app,
        org,
        &[("code", &c), ("last_name", "Yao"), ("first_name", "Koffi")],
        vec![b"#!/bin/sh\necho hi\n".to_vec()],
    )
    .await;
    assert_eq!(st, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "photos");
    let (st, b) =
        attend(&app, org, &[("code", &c), ("last_name", ""), ("first_name", "Koffi"), ("rating", "9")], vec![]).await;
    assert_eq!(st, 422, "{b}");
    let fields_in_error: Vec<&str> =
        b["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert!(fields_in_error.contains(&"last_name") && fields_in_error.contains(&"rating"), "{b}");
    // The participant is in the activity's list, with the executive.
    let (st, page) = app.get(&s.admin, &base).await;
    assert_eq!(st, 200);
    let list = page["attendances"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{page}");
    assert_eq!(list[0]["first_name"], "Aïcha");
    assert_eq!(list[0]["rating"], 5);
    // The public sees the activity, but neither the list nor the code.
    let (st, seen) = public(&app, reqwest::Method::GET, &base, None).await;
    assert_eq!(st, 200);
    assert!(seen.get("attendances").is_none() && seen.get("code").is_none(), "{seen}");
    assert!(seen["activity"]["difficulties"].is_null());
    // The photo is in the public gallery, as WebP and JPEG (renditions are
    // made by a job right after the submission, which answered at once).
    let (_, gallery) =
        public(&app, reqwest::Method::GET, &format!("/api/v1/orgs/{org}/clubs/gallery?club={club}"), None).await;
    assert_eq!(gallery.as_array().unwrap().len(), 1, "{gallery}");
    let thumb = gallery[0]["thumb_url"].as_str().unwrap().to_string();
    // Until the job has run, the photo is served as it was sent.
    let mut served = String::new();
    for _ in 0..300 {
        shrooms_core::jobs::run_due(&app.state, "test", 10).await.unwrap();
        let r = reqwest::get(app.url(&format!("{thumb}&format=webp"))).await.unwrap();
        assert_eq!(r.status(), 200);
        served = r.headers()["content-type"].to_str().unwrap().to_string();
        if served == "image/webp" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(served, "image/webp");
    let r = reqwest::get(app.url(&format!("{thumb}&format=jpeg"))).await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    // Closing attendance: the code stops working and says why.
    let (st, _) = app.send(reqwest::Method::DELETE, &s.admin, &format!("{base}/attendance"), json!(null)).await;
    assert_eq!(st, 204);
    let (st, b) = attend(&app, org, &[("code", &c), ("last_name", "Late"), ("first_name", "Comer")], vec![]).await;
    assert_eq!(st, 422);
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("closed"), "{b}");
});

db_test!(an_expired_code_says_so_and_wrong_codes_are_limited, |app: TestApp| async move {
    let s = club_with_activity(&app).await;
    let (org, club, act) = (&s.org, s.club["slug"].as_str().unwrap(), s.activity["id"].as_str().unwrap());
    let (_, code) =
        app.post(&s.admin, &format!("/api/v1/orgs/{org}/clubs/{club}/activities/{act}/attendance"), json!({})).await;
    let c = code["code"].as_str().unwrap();
    // Three hours and a minute later.
    sqlx::query("UPDATE clubs_codes SET expires_at = $1 WHERE code = $2")
        .bind(shrooms_core::ids::Timestamp::now().0 - 60_000)
        .bind(c)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let (st, b) = public(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/orgs/{org}/clubs/attend/check"),
        Some(json!({"code": c})),
    )
    .await;
    assert_eq!(st, 422);
    assert!(b["errors"][0]["message"].as_str().unwrap().contains("expired"), "{b}");
    // Wrong codes: ten are answered, then the address waits.
    let wrong = if c == "000000" { "000001" } else { "000000" };
    let mut last = 0;
    for _ in 0..11 {
        last = public(
            &app,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{org}/clubs/attend/check"),
            Some(json!({"code": wrong})),
        )
        .await
        .0;
    }
    assert_eq!(last, 429);
});

db_test!(restricted_parts_need_a_club_executive_with_a_second_factor, |app: TestApp| async move {
    let s = club_with_activity(&app).await;
    let org = &s.org;
    let (_, other) = app.post(&s.admin, &format!("/api/v1/orgs/{org}/clubs"), json!({"name": "Club de Sport"})).await;
    let info = s.club["slug"].as_str().unwrap();
    let sport = other["slug"].as_str().unwrap();
    // Money of the computing club, sealed in the database.
    let (st, line) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{org}/clubs/{info}/money"),
            json!({"direction": "expense", "amount": "12,50", "reason": "Clé USB", "occurred_on": "2026-03-12"}),
        )
        .await;
    assert_eq!(st, 201, "{line}");
    assert_eq!(line["amount"], "12.50");
    let stored: String = sqlx::query_scalar("SELECT amount_sealed || reason_sealed FROM clubs_money")
        .fetch_one(app.state.db.pool())
        .await
        .unwrap();
    assert!(!stored.contains("1250") && !stored.contains("USB"), "financial fields are encrypted at rest: {stored}");
    // Bad amounts are refused with a clear message, and nothing is added.
    for bad in ["-3", "abc", "1.234", ""] {
        let (st, b) = app
            .post(&s.admin, &format!("/api/v1/orgs/{org}/clubs/{info}/money"), json!({"amount": bad, "reason": "x"}))
            .await;
        assert_eq!(st, 422, "{bad}: {b}");
        assert_eq!(b["errors"][0]["field"], "amount");
    }
    let (_, book) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/clubs/{info}/money")).await;
    assert_eq!(book["lines"].as_array().unwrap().len(), 1);
    assert_eq!(book["summary"]["balance"], "-12.50");
    // A line recorded by mistake is removed, with its audit entry.
    let other = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{org}/clubs/{info}/money"),
            json!({"direction": "income", "amount": "5", "reason": "Erreur"}),
        )
        .await
        .1;
    let (st, _) = app
        .send(
            reqwest::Method::DELETE,
            &s.admin,
            &format!("/api/v1/orgs/{org}/clubs/{info}/money/{}", other["id"].as_str().unwrap()),
            json!(null),
        )
        .await;
    assert_eq!(st, 204);
    let (_, book) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/clubs/{info}/money")).await;
    assert_eq!((book["lines"].as_array().unwrap().len(), book["summary"]["balance"].as_str()), (1, Some("-12.50")));
    // The public: no money, 401 for the API.
    let (st, _) = public(&app, reqwest::Method::GET, &format!("/api/v1/orgs/{org}/clubs/{info}/money"), None).await;
    assert_eq!(st, 401);
    let (_, page) = public(&app, reqwest::Method::GET, &format!("/api/v1/orgs/{org}/clubs/{info}"), None).await;
    assert_eq!(page["restricted"], false);
    assert!(page["synthesis"].get("restricted").is_none(), "{page}");
    // The sport club's executive (a staff member listed in that club).
    let exec = app.member(&s.admin, org, "sport.head@example.org", "staff").await;
    let (st, e) = app
        .post(&s.admin, &format!("/api/v1/orgs/{org}/clubs/{sport}/executives"), json!({"last_name": "Bamba", "first_name": "Moussa", "email": "Sport.Head@example.org", "position": "Président", "is_head": true}))
        .await;
    assert_eq!(st, 201, "{e}");
    // Without a second factor: asked to enrol one.
    let (st, b) = app.get(&exec, &format!("/api/v1/orgs/{org}/clubs/{sport}/money")).await;
    assert_eq!((st, b["type"].as_str().unwrap_or("")), (403, "urn:shrooms:problem:totp-required"), "{b}");
    enrol_totp(&app, &exec).await;
    assert_eq!(app.get(&exec, &format!("/api/v1/orgs/{org}/clubs/{sport}/money")).await.0, 200);
    // Never another club's restricted data.
    let (st, _) = app.get(&exec, &format!("/api/v1/orgs/{org}/clubs/{info}/money")).await;
    assert_eq!(st, 403);
    let (st, _) = app.get(&exec, &format!("/api/v1/orgs/{org}/clubs/participants?club={info}")).await;
    assert_eq!(st, 403);
    let (_, page) = app.get(&exec, &format!("/api/v1/orgs/{org}/clubs/{info}")).await;
    assert_eq!(page["restricted"], false);
    assert!(page["executives"].as_array().unwrap().iter().all(|e| e["email"].is_null()));
    let (_, dash) = app.get(&exec, &format!("/api/v1/orgs/{org}/clubs/dashboard")).await;
    assert!(dash.get("restricted").is_none());
    for c in dash["clubs"].as_array().unwrap() {
        assert_eq!(c.get("restricted").is_some(), c["club_slug"] == sport, "{c}");
    }
    // A member who is nobody's executive sees the public parts only.
    let member = app.member(&s.admin, org, "student@example.org", "member").await;
    assert_eq!(app.get(&member, &format!("/api/v1/orgs/{org}/clubs/{sport}/money")).await.0, 403);
});

db_test!(syntheses_follow_attendance_results_and_the_programme, |app: TestApp| async move {
    let s = club_with_activity(&app).await;
    let (org, club, act) = (&s.org, s.club["slug"].as_str().unwrap(), s.activity["id"].as_str().unwrap());
    let base = format!("/api/v1/orgs/{org}/clubs/{club}");
    let (_, code) = app.post(&s.admin, &format!("{base}/activities/{act}/attendance"), json!({})).await;
    let c = code["code"].as_str().unwrap();
    let people = [("Kouassi", "Aïcha", "4"), ("Yao", "Koffi", "2"), ("Traoré", "Fatou", "")];
    for (last, first, rating) in people {
        let (st, b) =
            attend(&app, org, &[("code", c), ("last_name", last), ("first_name", first), ("rating", rating)], vec![])
                .await;
        assert_eq!(st, 201, "{b}");
    }
    // Cached synthesis before the activity is done.
    let (_, before) = public(&app, reqwest::Method::GET, &format!("/api/v1/orgs/{org}/clubs/dashboard"), None).await;
    assert_eq!(before["attendances"], 3);
    assert_eq!(before["clubs"][0]["activities_done"], 0);
    let (st, b) = app
        .post(&s.admin, &format!("{base}/activities/{act}/state"), json!({"state": "done", "note": "Très bien"}))
        .await;
    assert_eq!(st, 204, "{b}");
    // The state change is on the activity's timeline.
    let (_, tl) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/timeline/club_activity/{act}")).await;
    assert!(tl.to_string().contains("clubs.state.done"), "{tl}");
    let (_, page) = app.get(&s.admin, &format!("{base}/activities/{act}")).await;
    let koffi = page["attendances"].as_array().unwrap().iter().find(|a| a["first_name"] == "Koffi").unwrap()
        ["participant_id"]
        .clone();
    let (st, b) = app
        .send(reqwest::Method::PUT, &s.admin, &format!("{base}/activities/{act}/results"), json!({"results": [{"rank": 1, "participant_id": koffi, "prize": "Livre"}, {"rank": 2, "winner_name": "Équipe invitée"}]}))
        .await;
    assert_eq!(st, 200, "{b}");
    // A programme of three tasks, one done.
    for (i, title) in ["Affiche", "Salle", "Bilan"].iter().enumerate() {
        let (st, t) = app.post(&s.admin, &format!("{base}/tasks"), json!({"title": title})).await;
        assert_eq!(st, 201, "{t}");
        if i == 0 {
            let (st, _) = app
                .send(
                    reqwest::Method::PATCH,
                    &s.admin,
                    &format!("{base}/tasks/{}", t["id"].as_str().unwrap()),
                    json!({"done": true}),
                )
                .await;
            assert_eq!(st, 200);
        }
    }
    // The cached synthesis was invalidated by each change.
    let (_, d) = public(&app, reqwest::Method::GET, &format!("/api/v1/orgs/{org}/clubs/dashboard"), None).await;
    let cs = &d["clubs"][0];
    assert_eq!(cs["activities_done"], 1, "{d}");
    assert_eq!(cs["average_per_activity"], "3.0");
    assert_eq!(cs["execution_rate"], 33);
    assert_eq!(cs["winners"][0]["name"], "Koffi Yao");
    // Koffi: 1 point for attending + 5 for winning; the others 1 each.
    assert_eq!(cs["top"][0]["name"], "Koffi Yao");
    assert_eq!(cs["top"][0]["points"], 6);
    assert_eq!(d["top"].as_array().unwrap().len(), 3);
    assert!(cs.get("restricted").is_none(), "public answer");
    let (_, d) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/clubs/dashboard")).await;
    assert_eq!(d["clubs"][0]["restricted"]["average_rating"], "3.0");
    // Changing how the ranking is scored changes the points.
    let (st, b) = app
        .send(reqwest::Method::PUT, &s.admin, &format!("/api/v1/orgs/{org}/clubs/settings"), json!({"points_attendance": 2, "points_first": 10, "points_second": 3, "points_third": 2, "points_other_rank": 1, "code_valid_minutes": 180}))
        .await;
    assert_eq!(st, 200, "{b}");
    let (_, list) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/clubs/participants?club={club}")).await;
    let k = list.as_array().unwrap().iter().find(|p| p["first_name"] == "Koffi").unwrap();
    assert_eq!(k["points"], 12);
    // Export of the participants: CSV with the names.
    let r = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/orgs/{org}/clubs/participants/export.csv?club={club}")))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    assert!(csv.contains("Traoré") && csv.contains("Kouassi") && csv.lines().count() == 4, "{csv}");
});

db_test!(an_activity_report_is_written_and_mailed_to_the_club_head, |app: TestApp| async move {
    let s = club_with_activity(&app).await;
    let (org, club) = (&s.org, s.club["slug"].as_str().unwrap());
    app.post(&s.admin, &format!("/api/v1/orgs/{org}/clubs/{club}/executives"), json!({"last_name": "Diallo", "first_name": "Awa", "email": "head@example.org", "position": "Présidente", "is_head": true})).await;
    app.post(
        &s.admin,
        &format!("/api/v1/orgs/{org}/clubs/{club}/money"),
        json!({"direction": "income", "amount": "40", "reason": "Cotisations", "occurred_on": "2026-03-01"}),
    )
    .await;
    let (st, b) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{org}/clubs/{club}/reports"),
            json!({"from": "2026-01-01", "to": "2026-12-31"}),
        )
        .await;
    assert_eq!(st, 202, "{b}");
    let (st, b) = app
        .post(
            &s.admin,
            &format!("/api/v1/orgs/{org}/clubs/{club}/reports"),
            json!({"from": "2026-12-31", "to": "2026-01-01"}),
        )
        .await;
    assert_eq!(st, 422, "{b}");
    shrooms_core::jobs::run_due(&app.state, "test", 10).await.unwrap();
    let mails = shrooms_core::outbox::list(&app.state.db, Some("head@example.org"), 10).await.unwrap();
    assert_eq!(mails.len(), 1, "the club head gets the report");
    let body = &mails[0].body_text;
    let link = body
        .split_whitespace()
        .find(|w| w.starts_with("http") && w.contains("/files/"))
        .expect("a link to the report")
        .to_string();
    // The PDF is readable, and has the club's figures.
    // The page link, for people; the same file through the API here.
    let id = link.split("/files/").nth(1).and_then(|r| r.split('/').next()).expect("a file link");
    assert!(link.contains(&format!("/o/{org}/files/{id}/content")), "{link}");
    let r = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/orgs/{org}/files/{id}/content")))
        .bearer_auth(&s.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{link}");
    let pdf = r.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let dir = std::env::temp_dir().join(format!("clubs-report-{}", uuid_like()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("r.pdf");
    std::fs::write(&path, &pdf).unwrap();
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys, pypdf; print(''.join(p.extract_text() for p in pypdf.PdfReader(sys.argv[1]).pages))"])
        .arg(&path)
        .output()
        .expect("python3 with pypdf");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Atelier Python") && text.contains("40.00"),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
});

fn uuid_like() -> String {
    format!("{}", std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos())
}

db_test!(club_pages_render_for_visitors_and_executives, |app: TestApp| async move {
    let s = club_with_activity(&app).await;
    let (org, club, act) = (&s.org, s.club["slug"].as_str().unwrap(), s.activity["id"].as_str().unwrap());
    let anon = reqwest::Client::new();
    for path in [
        format!("/o/{org}/clubs"),
        format!("/o/{org}/clubs/{club}"),
        format!("/o/{org}/clubs/{club}/activities/{act}"),
        format!("/o/{org}/clubs/gallery"),
        format!("/o/{org}/clubs/attend"),
    ] {
        let r = anon.get(app.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let html = r.text().await.unwrap();
        assert!(!html.contains("restricted\""), "{path}");
    }
    // The attendance page asks for a numeric code.
    let html = anon.get(app.url(&format!("/o/{org}/clubs/attend"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("inputmode=\"numeric\""), "{html}");
    // The cash page is not for visitors: sign in.
    let r = testkit::browser_client().get(app.url(&format!("/o/{org}/clubs/{club}/money"))).send().await.unwrap();
    assert!(r.status() == 303 || r.status() == 401 || r.url().path().starts_with("/login"), "{}", r.status());
});

db_test!(a_participant_signs_through_the_pages_on_a_phone, |app: TestApp| async move {
    let s = club_with_activity(&app).await;
    let (org, club, act) = (&s.org, s.club["slug"].as_str().unwrap(), s.activity["id"].as_str().unwrap());
    let (_, code) =
        app.post(&s.admin, &format!("/api/v1/orgs/{org}/clubs/{club}/activities/{act}/attendance"), json!({})).await;
    let c = code["code"].as_str().unwrap();
    let phone = testkit::browser_client();
    // A wrong code: the same page, with the message, and the code kept.
    let html =
        phone.get(app.url(&format!("/o/{org}/clubs/attend?code=999999x"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("This code is not valid"), "{html}");
    // The QR code's link leads straight to the form.
    let html =
        phone.get(app.url(&format!("/o/{org}/clubs/attend?code={c}"))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Atelier Python") && html.contains("name=\"submission_id\""), "{html}");
    let csrf = testkit::extract_csrf(&html).expect("CSRF field");
    let submission =
        html.split("name=\"submission_id\" value=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    let boundary = "----phone";
    let mut body = Vec::new();
    for (k, v) in [
        ("_csrf", csrf.as_str()),
        ("code", c),
        ("submission_id", submission.as_str()),
        ("last_name", "Koné"),
        ("first_name", "Awa"),
        ("rating", "4"),
    ] {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"\"\r\nContent-Type: application/octet-stream\r\n\r\n\r\n--{boundary}--\r\n").as_bytes());
    let post = |body: Vec<u8>| {
        phone
            .post(app.url(&format!("/o/{org}/clubs/attend")))
            .header("content-type", format!("multipart/form-data; boundary={boundary}"))
            .header("origin", app.url(""))
            .body(body)
            .send()
    };
    let r = post(body.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Thank you") && html.contains("Your attendance is recorded"), "{html}");
    // The page sends the same form again after a dropped connection: recognised.
    let html = post(body).await.unwrap().text().await.unwrap();
    assert!(html.contains("already recorded"), "{html}");
    let (_, page) = app.get(&s.admin, &format!("/api/v1/orgs/{org}/clubs/{club}/activities/{act}")).await;
    assert_eq!(page["attendances"].as_array().unwrap().len(), 1);
});
