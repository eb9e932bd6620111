use crate::helpers::TestApp;
use herald::auth::users::Role;
use reqwest::StatusCode;

use crate::helpers::{browser, location};

async fn a_post_without_the_csrf_token_is_refused(app: TestApp) {
    app.create_user("ann@example.com", Role::Admin, "ann's long password")
        .await;
    // Sign-in form without its token.
    let mut form = app.form_with(&app.client, "/login", "/login").await;
    form.set("email", "ann@example.com")
        .set("password", "ann's long password")
        .remove("csrf_token");
    let r = app.post_form_with(&app.client, &form).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(r.text().await.unwrap().contains("Form expired"));
    // A wrong token.
    form.set("csrf_token", "0000");
    assert_eq!(
        app.post_form_with(&app.client, &form).await.status(),
        StatusCode::FORBIDDEN
    );
    // Signed in: a state change without the token changes nothing.
    assert_eq!(
        app.sign_in("ann@example.com", "ann's long password")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    let r = app
        .client
        .post(app.url("/logout"))
        .form(&[("x", "y")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/dashboard").await.status(),
        StatusCode::OK,
        "still signed in"
    );
    let stored = app.all_stored_text().await;
    assert!(stored.contains("security.csrf_rejected"));
}

async fn a_post_from_a_foreign_origin_is_refused(app: TestApp) {
    app.create_user("ann@example.com", Role::Admin, "ann's long password")
        .await;
    let mut form = app.form_with(&app.client, "/login", "/login").await;
    form.set("email", "ann@example.com")
        .set("password", "ann's long password");
    let r = app
        .client
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .form(&form.fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = app
        .client
        .post(app.url("/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&form.fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // The same form from this site's own origin goes through.
    let r = app
        .client
        .post(app.url("/login"))
        .header("origin", app.address.as_str())
        .form(&form.fields)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn every_response_carries_the_security_headers(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    for path in [
        "/login",
        "/dashboard",
        "/admin/users",
        "/no/such/page",
        "/static/herald.css",
        "/healthz",
        "/readyz",
    ] {
        let r = app.get_with(&client, path).await;
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"))
            .to_str()
            .unwrap();
        for part in [
            "default-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(part), "{path}: {csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(
            h.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert!(h.get("referrer-policy").is_some(), "{path}");
        assert!(h.get("x-request-id").is_some(), "{path}");
    }
    // Plain-HTTP local development: the session cookie is HttpOnly and Lax, not Secure.
    let r = browser().get(app.url("/login")).send().await.unwrap();
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "{cookie}");
    // Pages hold no inline script or style (the CSP would block them).
    let (_, html) = app.page_with(&client, "/dashboard").await;
    assert!(
        !html.contains("style=\"") && !html.contains("<script>"),
        "inline code in the page"
    );
}

async fn a_marketer_gets_403_on_every_admin_page(app: TestApp) {
    let (marketer, _) = app.signed_in(Role::Marketer).await;
    let (admin, _) = app.signed_in(Role::Admin).await;
    let id = app
        .create_user("other@example.com", Role::Marketer, "a long password 1")
        .await;
    let gets = [
        "/admin/users".to_string(),
        "/admin/users/new".into(),
        format!("/admin/users/{id}"),
        "/admin/audit".into(),
        "/admin/settings".into(),
    ];
    for path in &gets {
        let (status, html) = app.page_with(&marketer, path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        assert!(html.contains("Not allowed"), "{path}");
        // The navigation stays, and signing out still works from here.
        assert!(
            html.contains("href=\"/automations\"") && html.contains("Marketer Test"),
            "{path}: {html}"
        );
        assert!(
            crate::helpers::find_form(&html, "/logout")
                .get("csrf_token")
                .is_some_and(|t| !t.is_empty())
        );
        assert_eq!(
            app.get_with(&admin, path).await.status(),
            StatusCode::OK,
            "admin on {path}"
        );
    }
    // POSTs with a valid token are refused as well, and change nothing.
    let (_, html) = app.page_with(&marketer, "/dashboard").await;
    let token = crate::helpers::find_form(&html, "/logout")
        .get("csrf_token")
        .unwrap()
        .to_string();
    for path in [
        format!("/admin/users/{id}/disable"),
        format!("/admin/users/{id}/role"),
        "/admin/settings".into(),
        "/admin/users".into(),
    ] {
        let r = marketer
            .post(app.url(&path))
            .form(&[("csrf_token", token.as_str()), ("role", "admin")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let other = herald::auth::users::find(&app.state.db, id)
        .await
        .unwrap()
        .unwrap();
    assert!(!other.disabled && other.role == Role::Marketer);
    // The admin navigation is not shown to marketers.
    assert!(!html.contains("/admin/users"));
    assert!(
        app.all_stored_text()
            .await
            .contains("security.access_denied")
    );
}

async fn disabling_a_user_ends_their_live_session(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let (victim, email) = app.signed_in(Role::Marketer).await;
    assert_eq!(
        app.get_with(&victim, "/dashboard").await.status(),
        StatusCode::OK
    );
    let user = herald::auth::users::find_by_email(&app.state.db, &email)
        .await
        .unwrap()
        .unwrap();
    let page = format!("/admin/users/{}", user.id);
    let r = app
        .submit_with(&admin, &page, &format!("{page}/disable"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app.get_with(&victim, "/dashboard").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/login"));
    // Disabled users cannot sign in; re-enabled they can.
    assert_eq!(
        app.sign_in_with(&browser(), &email, "a good long password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let r = app
        .submit_with(&admin, &page, &format!("{page}/enable"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.sign_in_with(&browser(), &email, "a good long password")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
}

async fn no_password_or_session_id_is_stored_in_plain_text(app: TestApp) {
    let r = app.sign_in("nobody@example.com", "typed secret one").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (client, _) = app.signed_in(Role::Admin).await;
    assert_eq!(
        app.get_with(&client, "/dashboard").await.status(),
        StatusCode::OK
    );
    let stored = app.all_stored_text().await;
    for secret in ["typed secret one", "a good long password"] {
        assert!(!stored.contains(secret), "{secret} stored");
    }
    assert!(
        stored.contains("$argon2id$v=19$m=19456,t=2,p=1$"),
        "hashes are argon2id PHC"
    );
}

on_both_engines!(
    a_post_without_the_csrf_token_is_refused,
    a_post_from_a_foreign_origin_is_refused,
    every_response_carries_the_security_headers,
    a_marketer_gets_403_on_every_admin_page,
    disabling_a_user_ends_their_live_session,
    no_password_or_session_id_is_stored_in_plain_text
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_https_cookies_are_secure_and_hsts_is_sent() {
    let app = TestApp::on(crate::helpers::Engine::Sqlite)
        .configure(|c| c.base_url = "https://herald.example.com/".parse().unwrap())
        .spawn()
        .await
        .unwrap();
    let r = app.get("/login").await;
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // The prefix browsers enforce: no subdomain or plain-HTTP page can set it.
    assert!(
        cookie.starts_with("__Host-herald_session=")
            && cookie.split(';').any(|p| p.trim() == "Path=/"),
        "{cookie}"
    );
    assert!(r.headers().get("strict-transport-security").is_some());
    let r = app.get("/preferences/login").await;
    let cookie = r.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        cookie.starts_with("__Secure-herald_preferences=") && cookie.contains("Secure"),
        "{cookie}"
    );
}
