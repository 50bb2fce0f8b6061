//! Clubs benchmarks (`cargo bench -p shrooms-clubs --bench clubs`), against
//! the real server on loopback:
//!
//! 1. **Lecture hall**: 300 participants submit the attendance form within
//!    2 minutes, each with a phone photo (1600×1200 JPEG), on SQLite.
//!    Prints p50/p95/p99/max latency and errors. `PARTICIPANTS=300
//!    WINDOW_SECS=120` change the load.
//! 2. **Global dashboard** of 4 clubs × 5 years of activity (the demo data
//!    generator, `YEARS=5`), on SQLite and PostgreSQL: the
//!    page `/o/{org}/clubs` cached (nothing changed since the last view) and
//!    uncached (the clubs data changed just before), median and p95 of 30
//!    requests each.
//!
//! `BENCH=hall` or `BENCH=dashboard` runs one of them.

use serde_json::json;
use shrooms_core::{core_module::CoreModule, Modules};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::{Backend, TestApp};

fn modules() -> Modules {
    Modules::new(vec![Arc::new(CoreModule), Arc::new(shrooms_clubs::ClubsModule)]).expect("modules")
}

fn env(k: &str, d: u64) -> u64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// A phone photo: 1600×1200, with enough detail that JPEG cannot shrink it to nothing.
fn photo() -> Vec<u8> {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let img = image::RgbImage::from_fn(1600, 1200, |x, y| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed % 40) as u8;
        image::Rgb([((x / 7) % 200) as u8 + n, ((y / 5) % 200) as u8 + n, ((x + y) / 11 % 200) as u8 + n / 2])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85).encode_image(&img).expect("jpeg");
    out.into_inner()
}

fn form(fields: &[(&str, String)], photo: &[u8]) -> (String, Vec<u8>) {
    let boundary = "----bench-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes());
    }
    if !photo.is_empty() {
        body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photos\"; filename=\"IMG_0001.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes());
        body.extend_from_slice(photo);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn executive(app: &TestApp) -> (String, String) {
    let f = app.bootstrap().await;
    let (s, e) = app.post(&f.admin_token, "/api/v1/me/totp", json!({})).await;
    assert_eq!(s, 200, "{e}");
    let secret = shrooms_core::crypto::base32_decode(e["secret"].as_str().unwrap()).unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let (s, _) = app
        .post(
            &f.admin_token,
            "/api/v1/me/totp/confirm",
            json!({"code": shrooms_core::crypto::totp_code(&secret, now / 30)}),
        )
        .await;
    assert_eq!(s, 204);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    (f.admin_token, f.org_slug)
}

async fn hall() {
    let participants = env("PARTICIPANTS", 300) as usize;
    let window = env("WINDOW_SECS", 120);
    let app = TestApp::spawn(Backend::Sqlite, modules()).await;
    // As in `shrooms serve`: the job worker makes the photos' renditions meanwhile.
    tokio::spawn(shrooms_core::jobs::run_worker(app.state.clone()));
    let (token, org) = executive(&app).await;
    let (_, club) =
        app.post(&token, &format!("/api/v1/orgs/{org}/clubs"), json!({"name": "Club d'Informatique"})).await;
    let club = club["slug"].as_str().unwrap().to_string();
    let (_, act) = app
        .post(
            &token,
            &format!("/api/v1/orgs/{org}/clubs/{club}/activities"),
            json!({"theme": "Amphi", "starts_at": "2026-03-12T14:30"}),
        )
        .await;
    let act = act["id"].as_str().unwrap().to_string();
    let (_, code) =
        app.post(&token, &format!("/api/v1/orgs/{org}/clubs/{club}/activities/{act}/attendance"), json!({})).await;
    let code = code["code"].as_str().unwrap().to_string();
    let photo = Arc::new(photo());
    println!(
        "lecture hall: {participants} participants within {window} s, one {} KiB photo each, SQLite",
        photo.len() / 1024
    );
    let url = app.url(&format!("/api/v1/orgs/{org}/clubs/attend"));
    let client = reqwest::Client::new();
    // One at a time first: the cost of a submission without and with a photo.
    for with_photo in [false, true] {
        let mut one = Vec::new();
        for i in 0..5 {
            let fields = [
                ("code", code.clone()),
                ("last_name", format!("Solo{with_photo}{i}")),
                ("first_name", "Test".to_string()),
            ];
            let (ct, body) = form(&fields, if with_photo { &photo } else { &[] });
            let t = Instant::now();
            let r = client.post(&url).header("content-type", ct).body(body).send().await.expect("send");
            assert!(r.status().is_success(), "{}", r.text().await.unwrap_or_default());
            one.push(t.elapsed().as_secs_f64() * 1000.0);
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        one.sort_by(|a, b| a.total_cmp(b));
        println!(
            "  one at a time, {}: median {:.1} ms",
            if with_photo { "with a photo" } else { "no photo" },
            pct(&one, 0.5)
        );
    }
    let start = Instant::now();
    let mut handles = Vec::new();
    for i in 0..participants {
        let (client, url, code, photo) = (client.clone(), url.clone(), code.clone(), photo.clone());
        // Arrivals spread evenly over the window, as people walk in.
        let at = Duration::from_millis(window * 1000 * i as u64 / participants as u64);
        handles.push(tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(start + at)).await;
            let fields = [
                ("code", code),
                ("last_name", format!("Participant{i}")),
                ("first_name", format!("Prénom{i}")),
                ("field_of_study", "Statistique".to_string()),
                ("level", "L2".to_string()),
                ("rating", ((i % 5) + 1).to_string()),
                ("suggestion", "Plus de pratique".to_string()),
                ("submission_id", format!("bench-{i}")),
            ];
            let (ct, body) = form(&fields, &photo);
            let t = Instant::now();
            let r = client.post(&url).header("content-type", ct).body(body).send().await;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            (ms, r.map(|r| r.status().as_u16()).unwrap_or(0))
        }));
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (ms, status) = h.await.expect("task");
        if status != 201 && status != 200 {
            errors += 1;
        }
        lat.push(ms);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let (_, page) = app.get(&token, &format!("/api/v1/orgs/{org}/clubs/{club}/activities/{act}")).await;
    println!(
        "  p50 {:.1} ms  p95 {:.1} ms  p99 {:.1} ms  max {:.1} ms  errors {errors}  recorded {}  (target: p99 < 100 ms)",
        pct(&lat, 0.50),
        pct(&lat, 0.95),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        page["attendances"].as_array().map(|a| a.len()).unwrap_or(0)
    );
}

async fn dashboard(backend: Backend) {
    let years = env("YEARS", 5) as i64;
    let app = TestApp::spawn(backend, modules()).await;
    let (_, org) = executive(&app).await;
    let org_id = shrooms_core::orgs::find_org(&app.state.db, &org).await.unwrap().unwrap().id;
    let t = Instant::now();
    let (clubs, acts, atts) = shrooms_clubs::demo::seed(&app.state, org_id, years, 7).await.expect("demo");
    println!(
        "dashboard, {}: {clubs} clubs × {years} years: {acts} activities, {atts} attendances (loaded in {:.1} s)",
        app.backend_name(),
        t.elapsed().as_secs_f64()
    );
    let client = reqwest::Client::new();
    let url = app.url(&format!("/o/{org}/clubs"));
    let get = || async {
        let t = Instant::now();
        let r = client.get(&url).send().await.expect("page");
        assert_eq!(r.status(), 200);
        let _ = r.bytes().await;
        t.elapsed().as_secs_f64() * 1000.0
    };
    get().await;
    let mut cached = Vec::new();
    for _ in 0..30 {
        cached.push(get().await);
    }
    let mut uncached = Vec::new();
    for _ in 0..30 {
        let mut tx = app.state.db.begin().await.unwrap();
        shrooms_clubs::service::touch(&mut tx, org_id).await.unwrap();
        tx.commit().await.unwrap();
        uncached.push(get().await);
    }
    cached.sort_by(|a, b| a.total_cmp(b));
    uncached.sort_by(|a, b| a.total_cmp(b));
    println!(
        "  page cached: median {:.1} ms, p95 {:.1} ms (target < 50 ms); uncached: median {:.1} ms, p95 {:.1} ms (target < 300 ms)",
        pct(&cached, 0.5),
        pct(&cached, 0.95),
        pct(&uncached, 0.5),
        pct(&uncached, 0.95)
    );
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let which = std::env::var("BENCH").unwrap_or_default();
    rt.block_on(async {
        if which.is_empty() || which == "dashboard" {
            dashboard(Backend::Sqlite).await;
            dashboard(Backend::Postgres).await;
        }
        if which.is_empty() || which == "hall" {
            hall().await;
        }
    });
}
