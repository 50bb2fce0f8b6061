//! Files and photos: uploads checked by content, photos stripped of their
//! location and scaled, downloads authorised like their record, public files
//! cached, orphaned blobs swept. Test images are generated here.

use serde_json::{json, Value};
use std::io::Cursor;
use testkit::{db_test, TestApp};

/// A multipart body with text fields, then the file (if any).
fn multipart(fields: &[(&str, &str)], file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "----shrooms-test-boundary-7d9f";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub async fn upload(
    app: &TestApp,
    token: &str,
    org: &str,
    fields: &[(&str, &str)],
    name: &str,
    bytes: &[u8],
) -> (u16, Value) {
    let (ct, body) = multipart(fields, Some((name, bytes)));
    let r = app
        .http
        .post(app.url(&format!("/api/v1/orgs/{org}/files")))
        .bearer_auth(token)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .expect("upload");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn person(app: &TestApp, token: &str, org: &str) -> String {
    let (s, p) = app
        .post(token, &format!("/api/v1/orgs/{org}/people"), json!({"given_name": "Awa", "family_name": "Ouédraogo"}))
        .await;
    assert_eq!(s, 201, "{p}");
    p["id"].as_str().unwrap().to_string()
}

/// A photo as a phone takes it: pixels stored sideways, EXIF orientation 6
/// (turn 90° clockwise) and a GPS position (48°51'23.96" N).
fn phone_photo(w: u32, h: u32) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 255 / w) as u8, (y * 255 / h) as u8, 128]));
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85).encode_image(&img).unwrap();
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&exif_app1());
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// The GPS latitude as stored: three rationals 48/1, 51/1, 2396/100.
fn gps_latitude() -> Vec<u8> {
    [48u32, 1, 51, 1, 2396, 100].iter().flat_map(|v| v.to_be_bytes()).collect()
}

fn exif_app1() -> Vec<u8> {
    // TIFF, big-endian. IFD0 at 8: Orientation, GPS pointer. GPS IFD at 38: LatitudeRef, Latitude (data at 68).
    let mut t = Vec::new();
    t.extend_from_slice(b"MM\x00\x2A");
    t.extend_from_slice(&8u32.to_be_bytes());
    t.extend_from_slice(&2u16.to_be_bytes());
    t.extend_from_slice(&[0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0]); // Orientation = 6
    t.extend_from_slice(&[0x88, 0x25, 0, 4, 0, 0, 0, 1]); // GPSInfo (LONG) →
    t.extend_from_slice(&38u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), 38);
    t.extend_from_slice(&2u16.to_be_bytes());
    t.extend_from_slice(&[0x00, 0x01, 0, 2, 0, 0, 0, 2, b'N', 0, 0, 0]); // GPSLatitudeRef = "N"
    t.extend_from_slice(&[0x00, 0x02, 0, 5, 0, 0, 0, 3]); // GPSLatitude: 3 RATIONAL →
    t.extend_from_slice(&68u32.to_be_bytes());
    t.extend_from_slice(&0u32.to_be_bytes());
    assert_eq!(t.len(), 68);
    t.extend_from_slice(&gps_latitude());
    let mut seg = vec![0xFF, 0xE1];
    seg.extend_from_slice(&((2 + 6 + t.len()) as u16).to_be_bytes());
    seg.extend_from_slice(b"Exif\x00\x00");
    seg.extend_from_slice(&t);
    seg
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

async fn fetch(app: &TestApp, token: &str, path: &str, accept: Option<&str>) -> reqwest::Response {
    let mut r = app.http.get(app.url(path));
    if !token.is_empty() {
        r = r.bearer_auth(token);
    }
    if let Some(a) = accept {
        r = r.header("accept", a);
    }
    r.send().await.expect("download")
}

fn dims(bytes: &[u8]) -> (u32, u32) {
    let img = image::ImageReader::new(Cursor::new(bytes)).with_guessed_format().unwrap().decode().unwrap();
    (img.width(), img.height())
}

db_test!(a_phone_photo_loses_its_location_and_gets_renditions, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let org = &f.org_slug;
    let pid = person(&app, t, org).await;
    let photo = phone_photo(2000, 1500);
    assert!(contains(&photo, &gps_latitude()), "the test photo carries a GPS position");
    let fields = [("entity_type", "person"), ("entity_id", pid.as_str())];
    let (s, info) = upload(&app, t, org, &fields, "IMG_0042.JPG", &photo).await;
    assert_eq!(s, 201, "{info}");
    assert_eq!(info["content_type"], "image/jpeg");
    assert_eq!(info["module"], "core");
    assert_eq!(info["name"], "IMG_0042.JPG");
    assert_eq!((info["width"].as_i64(), info["height"].as_i64()), (Some(1500), Some(2000)), "upright size");
    assert_eq!(info["variants"], json!(["original", "thumb", "display"]));
    let id = info["id"].as_str().unwrap();
    let base = format!("/api/v1/orgs/{org}/files/{id}/content");

    // The stored original: no GPS position, same pixels, orientation kept.
    let r = fetch(&app, t, &base, None).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/jpeg");
    assert_eq!(h["cache-control"], "private");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-disposition"].to_str().unwrap().contains("filename=\"IMG_0042.JPG\""));
    let etag = h["etag"].to_str().unwrap().to_string();
    let original = r.bytes().await.unwrap();
    assert!(!contains(&original, &gps_latitude()), "GPS latitude still in the stored original");
    assert!(!contains(&original, &[0x88, 0x25]), "GPS directory pointer still in the stored original");
    assert_eq!(original.len() as i64, info["size"].as_i64().unwrap());
    assert_eq!(dims(&original), (2000, 1500), "the original's pixels are untouched");
    // Unchanged: 304.
    let r = app.http.get(app.url(&base)).bearer_auth(t).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(r.status(), 304);

    // Renditions, upright, in both formats.
    for (variant, format, ct, size) in [
        ("thumb", "webp", "image/webp", (240, 320)),
        ("thumb", "jpeg", "image/jpeg", (240, 320)),
        ("display", "webp", "image/webp", (1200, 1600)),
        ("display", "jpeg", "image/jpeg", (1200, 1600)),
    ] {
        let r = fetch(&app, t, &format!("{base}?variant={variant}&format={format}"), None).await;
        assert_eq!(r.status(), 200, "{variant} {format}");
        assert_eq!(r.headers()["content-type"], ct);
        let b = r.bytes().await.unwrap();
        assert_eq!(dims(&b), size, "{variant} {format}");
        assert!(!contains(&b, &gps_latitude()));
    }
    // Without a format: WebP for browsers that say they take it, JPEG otherwise.
    let r = fetch(&app, t, &format!("{base}?variant=thumb"), Some("image/avif,image/webp,*/*")).await;
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert_eq!(r.headers()["vary"], "Accept");
    let r = fetch(&app, t, &format!("{base}?variant=thumb"), Some("image/png,*/*")).await;
    assert_eq!(r.headers()["content-type"], "image/jpeg");

    // Listed on the record, and audited.
    let (s, list) = app.get(t, &format!("/api/v1/orgs/{org}/files?entity_type=person&entity_id={pid}")).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (_, audit) = app.get(t, &format!("/api/v1/orgs/{org}/audit?entity_id={id}")).await;
    assert_eq!(audit["items"][0]["action"], "file.upload");
});

db_test!(uploads_that_are_too_large_forbidden_or_corrupt_are_refused, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let org = &f.org_slug;
    let pid = person(&app, t, org).await;
    let fields = [("entity_type", "person"), ("entity_id", pid.as_str())];

    let big = vec![b'a'; 20 * 1024 * 1024 + 1];
    let (s, p) = upload(&app, t, org, &fields, "big.txt", &big).await;
    assert_eq!(s, 413, "{p}");
    assert_eq!(p["type"], "urn:shrooms:problem:payload-too-large");
    assert!(p["detail"].as_str().unwrap().contains("20 MiB"), "{p}");

    let refused = |p: &Value| p["errors"][0]["message"].as_str().unwrap_or("").to_string();
    let (s, p) = upload(
        &app,
        t,
        org,
        &fields,
        "holiday.jpg",
        b"MZ\x90\x00\x03\x00\x00\x00\x04\x00This program cannot be run in DOS mode",
    )
    .await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "file");
    assert!(refused(&p).contains("a program"), "{p}");
    let (s, p) =
        upload(&app, t, org, &fields, "holiday.jpg", b"<!doctype html><html><script>alert(document.cookie)</script>")
            .await;
    assert_eq!(s, 422, "{p}");
    assert!(refused(&p).contains("web page"), "{p}");
    let photo = phone_photo(640, 480);
    let (s, p) = upload(&app, t, org, &fields, "cut.jpg", &photo[..photo.len() * 2 / 3]).await;
    assert_eq!(s, 422, "{p}");
    assert!(refused(&p).contains("damaged"), "{p}");
    let (s, p) =
        upload(&app, t, org, &[("entity_type", "person"), ("entity_id", "no-such-person")], "a.txt", b"hello").await;
    assert_eq!(s, 404, "a file for a record that does not exist: {p}");
    let (s, p) = upload(&app, t, org, &[("entity_type", "person")], "a.txt", b"hello").await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "entity_id");

    // Nothing of the refused uploads was kept.
    let (_, list) = app.get(t, &format!("/api/v1/orgs/{org}/files?entity_type=person&entity_id={pid}")).await;
    assert_eq!(list, json!([]));
    let blobs = shrooms_core::files::file_store(&app.state.cfg).list().await.unwrap();
    assert!(blobs.is_empty(), "{blobs:?}");

    // A receipt as PDF, named .jpg: stored as a PDF, downloaded as an attachment.
    let (s, info) =
        upload(&app, t, org, &fields, "receipt.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n").await;
    assert_eq!(s, 201, "{info}");
    assert_eq!(info["content_type"], "application/pdf");
    assert_eq!(info["name"], "receipt.jpg.pdf");
    assert_eq!(info["variants"], json!(["original"]));
    let r = fetch(&app, t, &format!("/api/v1/orgs/{org}/files/{}/content", info["id"].as_str().unwrap()), None).await;
    assert_eq!(r.headers()["content-type"], "application/pdf");
    assert!(r.headers()["content-disposition"].to_str().unwrap().starts_with("attachment;"));
    let r = fetch(
        &app,
        t,
        &format!("/api/v1/orgs/{org}/files/{}/content?variant=thumb", info["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(r.status(), 404, "a PDF has no thumbnail");
});

db_test!(files_are_read_like_their_record_and_public_ones_are_cached, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let admin = &f.admin_token;
    let org = &f.org_slug;
    let pid = person(&app, admin, org).await;
    let fields = [("entity_type", "person"), ("entity_id", pid.as_str())];
    let (s, private) = upload(&app, admin, org, &fields, "notes.txt", "Reçu n° 12\n".as_bytes()).await;
    assert_eq!(s, 201, "{private}");
    assert_eq!(private["content_type"], "text/plain; charset=utf-8");
    let private_id = private["id"].as_str().unwrap().to_string();
    let public_fields = [("entity_type", "person"), ("entity_id", pid.as_str()), ("public", "true")];
    let (s, public) = upload(&app, admin, org, &public_fields, "portrait.png", &{
        let img = image::RgbaImage::from_pixel(64, 32, image::Rgba([200, 10, 10, 255]));
        let mut png = Vec::new();
        img.write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        png
    })
    .await;
    assert_eq!(s, 201, "{public}");
    let public_id = public["id"].as_str().unwrap().to_string();

    // Public: anyone, with caching headers.
    let r = fetch(&app, "", &format!("/public/files/{public_id}/content"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "public, max-age=86400");
    assert!(r.headers().contains_key("etag"));
    assert_eq!(r.headers()["content-type"], "image/png");
    let r = fetch(&app, "", &format!("/public/files/{public_id}/content?variant=thumb&format=jpeg"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(dims(&r.bytes().await.unwrap()), (64, 32), "small photos are not enlarged");
    // Private: not public, and not without signing in.
    assert_eq!(fetch(&app, "", &format!("/public/files/{private_id}/content"), None).await.status(), 404);
    let api = format!("/api/v1/orgs/{org}/files/{private_id}/content");
    assert_eq!(fetch(&app, "", &api, None).await.status(), 401);
    let r = app.browser.get(app.url(&format!("/o/{org}/files/{private_id}/content"))).send().await.unwrap();
    assert_eq!(r.status(), 303, "pages send the visitor to sign in");

    // A member reads but cannot delete; a client (no access to the core) cannot read.
    let member = app.member(admin, org, "member@example.org", "member").await;
    assert_eq!(fetch(&app, &member, &api, None).await.status(), 200);
    let (s, _) = app
        .send(reqwest::Method::DELETE, &member, &format!("/api/v1/orgs/{org}/files/{private_id}"), json!(null))
        .await;
    assert_eq!(s, 403);
    let (s, _) = upload(&app, &member, org, &fields, "x.txt", b"x").await;
    assert_eq!(s, 403);
    let client = app.member(admin, org, "client@example.org", "client").await;
    assert_eq!(fetch(&app, &client, &api, None).await.status(), 403);

    // Another organisation: 404, through its own path and through ours.
    assert_eq!(app.post(admin, "/api/v1/orgs", json!({"name": "Other", "slug": "other"})).await.0, 201);
    let outsider = app.member(admin, "other", "outsider@example.org", "owner").await;
    assert_eq!(fetch(&app, &outsider, &api, None).await.status(), 404);
    assert_eq!(
        fetch(&app, &outsider, &format!("/api/v1/orgs/other/files/{private_id}/content"), None).await.status(),
        404
    );
    assert_eq!(app.get(&outsider, &format!("/api/v1/orgs/other/files/{private_id}")).await.0, 404);
    let (s, _) = app
        .send(reqwest::Method::DELETE, &outsider, &format!("/api/v1/orgs/other/files/{private_id}"), json!(null))
        .await;
    assert_eq!(s, 404);

    // Deleting: gone for everyone, audited.
    let (s, _) =
        app.send(reqwest::Method::DELETE, admin, &format!("/api/v1/orgs/{org}/files/{public_id}"), json!(null)).await;
    assert_eq!(s, 204);
    assert_eq!(fetch(&app, "", &format!("/public/files/{public_id}/content"), None).await.status(), 404);
    let (_, audit) = app.get(admin, &format!("/api/v1/orgs/{org}/audit?entity_id={public_id}")).await;
    assert_eq!(audit["items"][0]["action"], "file.delete");
});

db_test!(the_person_page_uploads_and_shows_attachments, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let org = &f.org_slug;
    let pid = person(&app, &f.admin_token, org).await;
    let b = &app.browser;
    app.sign_in(b, "admin@example.org", testkit::ADMIN_PASSWORD).await;
    let page = format!("/o/{org}/people/{pid}");
    let html = b.get(app.url(&page)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("enctype=\"multipart/form-data\""), "the upload form is on the person page");
    let csrf = testkit::extract_csrf(&html).unwrap();
    let photo = phone_photo(800, 600);
    let fields = [
        ("_csrf", csrf.as_str()),
        ("module", "core"),
        ("entity_type", "person"),
        ("entity_id", pid.as_str()),
        ("return_to", page.as_str()),
    ];
    let (ct, body) = multipart(&fields, Some(("atelier.jpg", &photo)));
    let r = b.post(app.url(&format!("/o/{org}/files"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], page.as_str());
    let html = b.get(app.url(&page)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("atelier.jpg"), "{html}");
    let start = html.find("<img src=\"").expect("a thumbnail") + 10;
    let src = html[start..start + html[start..].find('"').unwrap()].replace("&#x2f;", "/").replace("&amp;", "&");
    let r = b.get(app.url(&src)).header("accept", "image/webp").send().await.unwrap();
    assert_eq!(r.status(), 200, "{src}");
    assert_eq!(r.headers()["content-type"], "image/webp");
    assert_eq!(dims(&r.bytes().await.unwrap()), (240, 320));
    // Without the CSRF token, nothing is stored.
    let (ct, body) = multipart(&fields[1..], Some(("again.jpg", &photo)));
    let r = b.post(app.url(&format!("/o/{org}/files"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let (_, list) =
        app.get(&f.admin_token, &format!("/api/v1/orgs/{org}/files?entity_type=person&entity_id={pid}")).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Refused on the page with the reason.
    let (ct, body) = multipart(&fields, Some(("page.jpg", b"<html><body>hi</body></html>")));
    let r = b.post(app.url(&format!("/o/{org}/files"))).header("content-type", ct).body(body).send().await.unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("<html"));
});

db_test!(the_cleanup_job_removes_orphaned_blobs, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let org = &f.org_slug;
    let gone = person(&app, t, org).await;
    let kept = person(&app, t, org).await;
    let photo = phone_photo(400, 300);
    let (s, a) =
        upload(&app, t, org, &[("entity_type", "person"), ("entity_id", gone.as_str())], "a.jpg", &photo).await;
    assert_eq!(s, 201, "{a}");
    let (s, b) =
        upload(&app, t, org, &[("entity_type", "person"), ("entity_id", kept.as_str())], "b.jpg", &photo).await;
    assert_eq!(s, 201, "{b}");
    let store = shrooms_core::files::file_store(&app.state.cfg);
    assert_eq!(store.list().await.unwrap().len(), 10, "two originals and eight renditions");

    // Deleting the person deletes its file's row at once and schedules the sweep.
    let (s, _) = app.send(reqwest::Method::DELETE, t, &format!("/api/v1/orgs/{org}/people/{gone}"), json!(null)).await;
    assert_eq!(s, 204);
    assert_eq!(app.get(t, &format!("/api/v1/orgs/{org}/files/{}", a["id"].as_str().unwrap())).await.0, 404);
    let (_, jobs) = app.get(t, "/api/v1/admin/jobs?status=queued").await;
    assert!(jobs.as_array().unwrap().iter().any(|j| j["name"] == "core.files.cleanup"), "{jobs}");
    // A blob whose upload crashed before its row was written.
    let stray_id = uuid::Uuid::now_v7().to_string();
    let stray = shrooms_core::files::blob_key(&stray_id, "original");
    store.put(&stray, b"half an upload").await.unwrap();

    // Within the grace period nothing goes (an upload may be in progress).
    let r = shrooms_core::files::sweep(&app.state, std::time::Duration::from_secs(3600)).await.unwrap();
    assert_eq!(r.removed, 0);
    let r = shrooms_core::files::sweep(&app.state, std::time::Duration::ZERO).await.unwrap();
    assert_eq!(r.removed, 6, "the deleted person's five blobs and the stray one");
    let left: Vec<String> = store.list().await.unwrap().into_iter().map(|b| b.key).collect();
    assert_eq!(left.len(), 5);
    assert!(left.iter().all(|k| k.contains(b["id"].as_str().unwrap())), "{left:?}");
    let r = fetch(
        &app,
        t,
        &format!("/api/v1/orgs/{org}/files/{}/content?variant=display", b["id"].as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(r.status(), 200, "the other person's file is intact");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_virus_scanner_can_refuse_a_file() {
    let modules = crate::modules();
    let backend = testkit::Backend::Sqlite;
    let (mut cfg, dir) = testkit::test_config(backend, &modules).await.unwrap();
    // A stand-in scanner that refuses files containing the EICAR test signature.
    let script = dir.join("scan.sh");
    std::fs::write(&script, "! grep -q EICAR \"$1\"\n").unwrap();
    cfg.files.scan_command = Some(format!("sh {}", script.display()));
    let app = TestApp::spawn_with(cfg, dir, backend, modules).await;
    let f = app.bootstrap().await;
    let pid = person(&app, &f.admin_token, &f.org_slug).await;
    let fields = [("entity_type", "person"), ("entity_id", pid.as_str())];
    let (s, p) =
        upload(&app, &f.admin_token, &f.org_slug, &fields, "a.txt", b"X5O!P%@AP EICAR-STANDARD-ANTIVIRUS-TEST-FILE")
            .await;
    assert_eq!(s, 422, "{p}");
    assert!(p["errors"][0]["message"].as_str().unwrap().contains("virus scanner"), "{p}");
    let (s, p) = upload(&app, &f.admin_token, &f.org_slug, &fields, "a.txt", b"a clean receipt").await;
    assert_eq!(s, 201, "{p}");
}
