//! Sign-in: tokens and their rotation, second factor, password reset, API
//! keys, throttling, logout everywhere, sessions shared by replicas.

use serde_json::{json, Value};
use shrooms_core::crypto;
use testkit::{db_test, TestApp, ADMIN_PASSWORD};

fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

db_test!(refresh_rotates_and_reuse_revokes_the_family, |app: TestApp| async move {
    app.bootstrap().await;
    let (s, pair) =
        app.post("", "/api/v1/auth/token", json!({"email": "admin@example.org", "password": ADMIN_PASSWORD})).await;
    assert_eq!(s, 200, "{pair}");
    assert!(pair["expires_in"].as_i64().unwrap() > 0);
    let r1 = pair["refresh_token"].as_str().unwrap().to_string();
    let (s, pair2) = app.post("", "/api/v1/auth/refresh", json!({"refresh_token": r1})).await;
    assert_eq!(s, 200);
    let r2 = pair2["refresh_token"].as_str().unwrap().to_string();
    let a2 = pair2["access_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(app.get(&a2, "/api/v1/me").await.0, 200);
    // Replaying the old refresh token revokes the whole family...
    let (s, b) = app.post("", "/api/v1/auth/refresh", json!({"refresh_token": r1})).await;
    assert_eq!(s, 401, "{b}");
    // ...so the newest refresh token and its access token stop working too.
    assert_eq!(app.post("", "/api/v1/auth/refresh", json!({"refresh_token": r2})).await.0, 401);
    assert_eq!(app.get(&a2, "/api/v1/me").await.0, 401);
    // A fresh sign-in works.
    let t = app.token("admin@example.org", ADMIN_PASSWORD).await;
    assert_eq!(app.get(&t, "/api/v1/me").await.0, 200);
});

db_test!(totp_second_factor_and_org_mandate, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let (s, en) = app.post(t, "/api/v1/me/totp", json!(null)).await;
    assert_eq!(s, 200, "{en}");
    let secret = crypto::base32_decode(en["secret"].as_str().unwrap()).unwrap();
    assert!(en["uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    let (s, b) = app.post(t, "/api/v1/me/totp/confirm", json!({"code": "000000"})).await;
    assert!(s == 422 || crypto::totp_match(&secret, "000000", now_secs()).is_some(), "{b}");
    let step = now_secs() / 30;
    let (s, b) = app.post(t, "/api/v1/me/totp/confirm", json!({"code": crypto::totp_code(&secret, step)})).await;
    assert_eq!(s, 204, "{b}");
    // Password alone is no longer enough.
    let (s, b) =
        app.post("", "/api/v1/auth/token", json!({"email": "admin@example.org", "password": ADMIN_PASSWORD})).await;
    assert_eq!(s, 422);
    assert_eq!(b["errors"][0]["field"], "totp");
    // The code used at enrolment cannot be replayed; the next one works once.
    let (s, _) = app
        .post(
            "",
            "/api/v1/auth/token",
            json!({"email": "admin@example.org", "password": ADMIN_PASSWORD, "totp": crypto::totp_code(&secret, step)}),
        )
        .await;
    assert_eq!(s, 401);
    let next = crypto::totp_code(&secret, step + 1);
    let (s, b) = app
        .post("", "/api/v1/auth/token", json!({"email": "admin@example.org", "password": ADMIN_PASSWORD, "totp": next}))
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, _) = app
        .post("", "/api/v1/auth/token", json!({"email": "admin@example.org", "password": ADMIN_PASSWORD, "totp": next}))
        .await;
    assert_eq!(s, 401);

    // An organisation makes the second factor mandatory for a role.
    let member = app.member(t, &f.org_slug, "m@example.org", "staff").await;
    let people = format!("/api/v1/orgs/{}/people", f.org_slug);
    assert_eq!(app.get(&member, &people).await.0, 200);
    let (s, b) = app
        .send(
            reqwest::Method::PATCH,
            t,
            &format!("/api/v1/orgs/{}/roles/staff", f.org_slug),
            json!({"require_totp": true}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = app.get(&member, &people).await;
    assert_eq!(s, 403);
    assert_eq!(b["type"], "urn:shrooms:problem:totp-required");
});

fn token_in(body: &str) -> String {
    let i = body.find("token=").expect("link with token") + 6;
    body[i..].split(|c: char| c.is_whitespace()).next().unwrap().to_string()
}

db_test!(password_reset_by_single_use_token, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    app.member(t, &f.org_slug, "forgetful@example.org", "member").await;
    // Unknown addresses get the same answer (no account enumeration).
    assert_eq!(app.post("", "/api/v1/auth/password/forgot", json!({"email": "nobody@example.org"})).await.0, 202);
    assert_eq!(app.post("", "/api/v1/auth/password/forgot", json!({"email": "forgetful@example.org"})).await.0, 202);
    let (s, mails) = app.get(t, "/api/v1/admin/outbox?to=forgetful@example.org").await;
    assert_eq!(s, 200);
    let mail =
        mails.as_array().unwrap().iter().find(|m| m["kind"] == "password_reset").expect("reset mail in outbox").clone();
    let token = token_in(mail["body_text"].as_str().unwrap());
    // Weak passwords are refused and do not consume the token.
    let (s, b) = app.post("", "/api/v1/auth/password/reset", json!({"token": token, "password": "short"})).await;
    assert_eq!(s, 422, "{b}");
    let (s, b) =
        app.post("", "/api/v1/auth/password/reset", json!({"token": token, "password": "a brand new password"})).await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(
        app.post("", "/api/v1/auth/password/reset", json!({"token": token, "password": "yet another password"}))
            .await
            .0,
        400
    );
    assert_eq!(
        app.post(
            "",
            "/api/v1/auth/token",
            json!({"email": "forgetful@example.org", "password": testkit::MEMBER_PASSWORD})
        )
        .await
        .0,
        401
    );
    app.token("forgetful@example.org", "a brand new password").await;
});

db_test!(email_verification, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let m = app.member(&f.admin_token, &f.org_slug, "new@example.org", "member").await;
    let (_, me) = app.get(&m, "/api/v1/me").await;
    assert_eq!(me["email_verified"], false);
    assert_eq!(app.post(&m, "/api/v1/me/email/verification", json!(null)).await.0, 202);
    let (_, mails) = app.get(&f.admin_token, "/api/v1/admin/outbox?to=new@example.org").await;
    let mail = mails.as_array().unwrap().iter().find(|m| m["kind"] == "verify_email").unwrap().clone();
    let token = token_in(mail["body_text"].as_str().unwrap());
    assert_eq!(app.post("", "/api/v1/auth/email/verify", json!({"token": token})).await.0, 204);
    assert_eq!(app.get(&m, "/api/v1/me").await.1["email_verified"], true);
    assert_eq!(app.post("", "/api/v1/auth/email/verify", json!({"token": token})).await.0, 400);
});

db_test!(login_throttling_per_account, |app: TestApp| async move {
    app.bootstrap().await;
    for _ in 0..5 {
        let (s, _) = app
            .post("", "/api/v1/auth/token", json!({"email": "admin@example.org", "password": "wrong password!"}))
            .await;
        assert_eq!(s, 401);
    }
    let r = app
        .http
        .post(app.url("/api/v1/auth/token"))
        .json(&json!({"email": "admin@example.org", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["type"], "urn:shrooms:problem:rate-limited");
});

db_test!(login_throttling_per_address, |app: TestApp| async move {
    app.bootstrap().await;
    // One address trying many accounts (password spraying) is stopped too.
    let max = app.state.cfg.security.max_failures_per_address;
    for i in 0..max {
        let (s, _) = app
            .post(
                "",
                "/api/v1/auth/token",
                json!({"email": format!("user{i}@example.org"), "password": "guess guess guess"}),
            )
            .await;
        assert_eq!(s, 401);
    }
    let (s, b) =
        app.post("", "/api/v1/auth/token", json!({"email": "admin@example.org", "password": ADMIN_PASSWORD})).await;
    assert_eq!(s, 429, "{b}");
});

db_test!(api_keys_and_logout_everywhere, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let t = &f.admin_token;
    let (s, k) = app.post(t, "/api/v1/me/api-keys", json!({"name": "accounting export"})).await;
    assert_eq!(s, 201, "{k}");
    let secret = k["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("shr_"));
    assert_eq!(app.get(&secret, &format!("/api/v1/orgs/{}/people", f.org_slug)).await.0, 200);
    let (_, list) = app.get(t, "/api/v1/me/api-keys").await;
    assert!(list.as_array().unwrap().iter().all(|x| x.get("secret").is_none()), "secrets are shown once only");
    let (s, _) = app
        .send(reqwest::Method::DELETE, t, &format!("/api/v1/me/api-keys/{}", k["id"].as_str().unwrap()), json!(null))
        .await;
    assert_eq!(s, 204);
    assert_eq!(app.get(&secret, "/api/v1/me").await.0, 401);
    // Logout everywhere kills access tokens issued before.
    let other = app.token("admin@example.org", ADMIN_PASSWORD).await;
    assert_eq!(app.post(t, "/api/v1/auth/logout-everywhere", json!(null)).await.0, 204);
    assert_eq!(app.get(&other, "/api/v1/me").await.0, 401);
    assert_eq!(app.get(t, "/api/v1/me").await.0, 401);
});

db_test!(replicas_share_sessions_and_data, |app: TestApp| async move {
    let f = app.bootstrap().await;
    // A second server on the same database: what one writes the other serves,
    // a token or a browser session from one works on the other.
    let replica = TestApp::spawn_with(app.state.cfg.clone(), app.data_dir.clone(), app.backend, crate::modules()).await;
    let (s, p) = app
        .post(
            &f.admin_token,
            &format!("/api/v1/orgs/{}/people", f.org_slug),
            json!({"given_name": "Shared", "family_name": "Person"}),
        )
        .await;
    assert_eq!(s, 201);
    let (s, got) =
        replica.get(&f.admin_token, &format!("/api/v1/orgs/{}/people/{}", f.org_slug, p["id"].as_str().unwrap())).await;
    assert_eq!(s, 200);
    assert_eq!(got["given_name"], "Shared");
    let csrf = app.csrf_from("/login").await;
    let r = app
        .browser
        .post(app.url("/login"))
        .form(&[("email", "admin@example.org"), ("password", ADMIN_PASSWORD), ("_csrf", csrf.as_str()), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("shrooms_session="))
        .unwrap();
    let cookie = cookie.split(';').next().unwrap().to_string();
    let r = replica
        .http
        .get(replica.url(&format!("/o/{}/people", f.org_slug)))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Shared"));
});

db_test!(sessions_expire_when_idle, |app: TestApp| async move {
    let f = app.bootstrap().await;
    app.sign_in(&app.browser, "admin@example.org", ADMIN_PASSWORD).await;
    let page = format!("/o/{}/people", f.org_slug);
    assert_eq!(app.browser.get(app.url(&page)).send().await.unwrap().status(), 200);
    // Move the session's last use back beyond the idle limit (the clock of the database).
    let idle_ms = app.state.cfg.session.idle_minutes * 60_000 + 1000;
    sqlx::query("UPDATE sessions SET last_seen_at = last_seen_at - $1")
        .bind(idle_ms)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let r = app.browser.get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login"));
});

db_test!(sessions_expire_after_their_absolute_lifetime_even_when_used, |app: TestApp| async move {
    let f = app.bootstrap().await;
    app.sign_in(&app.browser, "admin@example.org", ADMIN_PASSWORD).await;
    let page = format!("/o/{}/people", f.org_slug);
    assert_eq!(app.browser.get(app.url(&page)).send().await.unwrap().status(), 200);
    // Used a second ago, but signed in longer ago than the absolute limit allows.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2")
        .bind(now - 1000)
        .bind(now - 1)
        .execute(app.state.db.pool())
        .await
        .unwrap();
    let r = app.browser.get(app.url(&page)).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions").fetch_one(app.state.db.pool()).await.unwrap();
    assert_eq!(n, 0, "the expired session is deleted");
});

db_test!(concurrent_refreshes_with_one_token_cannot_both_win, |app: TestApp| async move {
    app.bootstrap().await;
    let (_, pair) =
        app.post("", "/api/v1/auth/token", json!({"email": "admin@example.org", "password": ADMIN_PASSWORD})).await;
    let r = pair["refresh_token"].as_str().unwrap().to_string();
    let mut handles = Vec::new();
    for _ in 0..6 {
        let (http, url, r) = (app.http.clone(), app.url("/api/v1/auth/refresh"), r.clone());
        handles.push(tokio::spawn(async move {
            http.post(url).json(&json!({"refresh_token": r})).send().await.unwrap().status().as_u16()
        }));
    }
    let mut ok = 0;
    for h in handles {
        if h.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert!(ok <= 1, "{ok} refreshes succeeded with the same token");
});

db_test!(password_reset_requests_are_rate_limited, |app: TestApp| async move {
    app.bootstrap().await;
    for _ in 0..3 {
        assert_eq!(app.post("", "/api/v1/auth/password/forgot", json!({"email": "admin@example.org"})).await.0, 202);
    }
    let (s, b) = app.post("", "/api/v1/auth/password/forgot", json!({"email": "admin@example.org"})).await;
    assert_eq!(s, 429, "{b}");
});

db_test!(ownership_is_managed_by_owners_only, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let org = &f.org_slug;
    let admin = app.member(&f.admin_token, org, "orgadmin@example.org", "admin").await;
    let members = format!("/api/v1/orgs/{org}/members");
    // An organisation administrator cannot demote or remove the owner...
    let (s, b) = app.post(&admin, &members, json!({"email": "admin@example.org", "role": "member"})).await;
    assert_eq!(s, 403, "{b}");
    let (_, me) = app.get(&f.admin_token, "/api/v1/me").await;
    let owner_id = me["id"].as_str().unwrap();
    assert_eq!(app.send(reqwest::Method::DELETE, &admin, &format!("{members}/{owner_id}"), json!(null)).await.0, 403);
    // ...nor make anyone an owner.
    assert_eq!(app.post(&admin, &members, json!({"email": "orgadmin@example.org", "role": "owner"})).await.0, 403);
    // The last owner cannot step down.
    let (s, b) = app.post(&f.admin_token, &members, json!({"email": "admin@example.org", "role": "member"})).await;
    assert_eq!(s, 409, "{b}");
    let (_, list) = app.get(&f.admin_token, &members).await;
    let owner = list.as_array().unwrap().iter().find(|m| m["email"] == "admin@example.org").unwrap().clone();
    assert_eq!(owner["role"], "owner");
});

db_test!(changing_the_password_signs_out_the_others, |app: TestApp| async move {
    let f = app.bootstrap().await;
    let other = app.token("admin@example.org", ADMIN_PASSWORD).await;
    // A wrong current password changes nothing.
    let (s, b) = app
        .post(
            &f.admin_token,
            "/api/v1/me/password",
            json!({"current_password": "not it at all", "new_password": "another long password"}),
        )
        .await;
    assert_eq!(s, 422, "{b}");
    assert_eq!(b["errors"][0]["field"], "current_password");
    assert_eq!(app.get(&other, "/api/v1/me").await.0, 200);
    let (s, b) = app
        .post(
            &f.admin_token,
            "/api/v1/me/password",
            json!({"current_password": ADMIN_PASSWORD, "new_password": "another long password"}),
        )
        .await;
    assert_eq!(s, 204, "{b}");
    assert_eq!(app.get(&other, "/api/v1/me").await.0, 401);
    assert_eq!(
        app.post("", "/api/v1/auth/token", json!({"email": "admin@example.org", "password": ADMIN_PASSWORD})).await.0,
        401
    );
    app.token("admin@example.org", "another long password").await;
    let (_, audit) = app
        .get(
            &app.token("admin@example.org", "another long password").await,
            "/api/v1/admin/audit?action=account.password_set",
        )
        .await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 1);
});
