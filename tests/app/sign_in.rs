use crate::helpers::TestApp;
use std::time::{Duration, Instant};

use herald::auth::throttle;
use herald::auth::users::Role;
use reqwest::StatusCode;

use crate::helpers::{browser, location, text_of};

async fn sign_in_lands_on_the_dashboard_with_name_and_sign_out(app: TestApp) {
    app.create_user("ann@example.com", Role::Marketer, "ann's long password")
        .await;
    let r = app.sign_in("Ann@Example.com", "ann's long password").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dashboard");
    let (status, html) = app.page("/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&html, "h1").unwrap(), "Welcome, Marketer Test");
    crate::helpers::find_form(&html, "/logout");
}

async fn wrong_password_and_unknown_user_get_the_same_answer(app: TestApp) {
    app.create_user("ann@example.com", Role::Marketer, "ann's long password")
        .await;
    let wrong = app.sign_in("ann@example.com", "not her password").await;
    let wrong_status = wrong.status();
    let wrong_body = wrong
        .text()
        .await
        .unwrap()
        .replace("ann@example.com", "EMAIL");
    let unknown = app.sign_in("nobody@example.com", "not her password").await;
    let unknown_status = unknown.status();
    let unknown_body = unknown
        .text()
        .await
        .unwrap()
        .replace("nobody@example.com", "EMAIL");
    assert_eq!(wrong_status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong_status, unknown_status);
    assert_eq!(wrong_body, unknown_body);
    assert!(wrong_body.contains("The email or password is not right."));
    // Both failures are audited, without the password typed.
    let stored = app.all_stored_text().await;
    assert!(stored.contains("signin.failed"));
    assert!(!stored.contains("not her password"));
}

async fn the_eleventh_failure_in_fifteen_minutes_is_delayed(app: TestApp) {
    app.create_user("ann@example.com", Role::Marketer, "ann's long password")
        .await;
    for _ in 0..10 {
        let r = app.sign_in("ann@example.com", "wrong password!").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let started = Instant::now();
    let r = app.sign_in("ann@example.com", "wrong password!").await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "11th failure took {:?}",
        started.elapsed()
    );
    // Not a lock-out: the right password still works (after its delay).
    let r = app.sign_in("ann@example.com", "ann's long password").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // A different account from the same address is not slowed by these.
    let delay =
        throttle::delay_before_attempt(&app.state.db, app.now_ms(), "bob@example.com", "127.0.0.1")
            .await
            .unwrap();
    assert_eq!(delay, Duration::ZERO);
    // Failures older than 15 minutes stop counting.
    for _ in 0..11 {
        throttle::record_failure(&app.state.db, app.now_ms(), "eve@example.com", "127.0.0.1")
            .await
            .unwrap();
    }
    let d =
        throttle::delay_before_attempt(&app.state.db, app.now_ms(), "eve@example.com", "127.0.0.1")
            .await
            .unwrap();
    assert_eq!(d, Duration::from_secs(2));
    app.clock.advance(Duration::from_secs(16 * 60));
    let d =
        throttle::delay_before_attempt(&app.state.db, app.now_ms(), "eve@example.com", "127.0.0.1")
            .await
            .unwrap();
    assert_eq!(d, Duration::ZERO);
}

async fn attempts_sent_at_once_after_ten_failures_queue_behind_each_other(app: TestApp) {
    let (account, ip) = ("ann@example.com", "127.0.0.1");
    for _ in 0..10 {
        throttle::record_failure(&app.state.db, app.now_ms(), account, ip)
            .await
            .unwrap();
    }
    // Four attempts at the same moment: each counts the ones started before it.
    let db = &app.state.db;
    let now = app.now_ms();
    let (a, b, c, d) = tokio::join!(
        throttle::begin_attempt(db, now, account, ip),
        throttle::begin_attempt(db, now, account, ip),
        throttle::begin_attempt(db, now, account, ip),
        throttle::begin_attempt(db, now, account, ip),
    );
    let mut delays = vec![a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
    delays.sort();
    let secs = |n| Duration::from_secs(n);
    assert_eq!(
        delays,
        [secs(1), secs(2), secs(4), secs(8)],
        "one behind the other, not together"
    );
    // Another client address for another account is not slowed by them.
    assert_eq!(
        throttle::begin_attempt(db, now, "bob@example.com", "10.0.0.9")
            .await
            .unwrap(),
        Duration::ZERO
    );
}

async fn sign_out_ends_the_session_on_the_server(app: TestApp) {
    app.create_user("ann@example.com", Role::Marketer, "ann's long password")
        .await;
    let r = app.sign_in("ann@example.com", "ann's long password").await;
    let cookie = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = app.submit("/dashboard", "/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?signed_out=1");
    // The old cookie, replayed by another client, opens nothing.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = replay
        .get(app.url("/dashboard"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(location(&r).starts_with("/login"));
}

async fn a_session_from_before_sign_in_is_not_signed_in(app: TestApp) {
    // Session fixation: the id held before sign-in is not the one after.
    app.create_user("ann@example.com", Role::Marketer, "ann's long password")
        .await;
    let r = app.get("/login").await;
    let before = r
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = app.sign_in("ann@example.com", "ann's long password").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = replay
        .get(app.url("/dashboard"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "the pre-sign-in session id must not be signed in"
    );
}

async fn an_idle_session_is_refused_and_an_active_one_ends_after_eight_hours(app: TestApp) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    app.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        app.get_with(&client, "/dashboard").await.status(),
        StatusCode::OK
    );
    app.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(
        app.get_with(&client, "/dashboard").await.status(),
        StatusCode::OK,
        "activity extends the idle timeout"
    );
    app.clock.advance(Duration::from_secs(31 * 60));
    let r = app.get_with(&client, "/dashboard").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "idle for 31 minutes");
    assert!(location(&r).starts_with("/login"));

    let (client, _) = app.signed_in(Role::Marketer).await;
    for step in 0..19 {
        app.clock.advance(Duration::from_secs(25 * 60));
        let r = app.get_with(&client, "/dashboard").await;
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "step {step}: active for {} minutes",
            (step + 1) * 25
        );
    }
    app.clock.advance(Duration::from_secs(25 * 60));
    let r = app.get_with(&client, "/dashboard").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "8 h 20 min after sign-in"
    );
}

async fn a_temporary_password_leads_only_to_choosing_a_new_one_and_works_once(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let r = app
        .submit_with(
            &admin,
            "/admin/users/new",
            "/admin/users",
            &[
                ("email", "new@example.com"),
                ("name", "New Person"),
                ("role", "marketer"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let html = r.text().await.unwrap();
    let temp = text_of(&html, "[data-testid=temporary-password]").unwrap();
    assert_eq!(temp.chars().count(), 16);

    let user = browser();
    let r = app.sign_in_with(&user, "new@example.com", &temp).await;
    assert_eq!(location(&r), "/password");
    // Nothing else is reachable until the password is changed.
    for path in ["/dashboard", "/admin/users", "/"] {
        let r = app.get_with(&user, path).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(location(&r), "/password", "{path}");
    }
    let (_, html) = app.page_with(&user, "/password").await;
    assert_eq!(text_of(&html, "h1").unwrap(), "Choose your new password");
    // The temporary password works once: a second sign-in with it fails.
    assert_eq!(
        app.sign_in_with(&browser(), "new@example.com", &temp)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );

    for (bad, field, message) in [
        ("short", "new_password", "at least 12"),
        ("new@example.com", "new_password", "cannot be your email"),
        (temp.as_str(), "new_password", "not the temporary one"),
    ] {
        let r = app
            .submit_with(
                &user,
                "/password",
                "/password",
                &[("new_password", bad), ("confirm_password", bad)],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
        let html = r.text().await.unwrap();
        let shown = text_of(&html, &format!("#{field}-error")).unwrap();
        assert!(shown.contains(message), "{bad}: {shown}");
    }
    let r = app
        .submit_with(
            &user,
            "/password",
            "/password",
            &[
                ("new_password", "my very own password"),
                ("confirm_password", "my very own passwore"),
            ],
        )
        .await;
    assert!(
        text_of(&r.text().await.unwrap(), "#confirm_password-error")
            .unwrap()
            .contains("not the same")
    );

    let r = app
        .submit_with(
            &user,
            "/password",
            "/password",
            &[
                ("new_password", "my very own password"),
                ("confirm_password", "my very own password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/dashboard");
    let (status, html) = app.page_with(&user, "/dashboard").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Your password has been changed."));
    assert_eq!(
        app.sign_in_with(&browser(), "new@example.com", "my very own password")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.sign_in_with(&browser(), "new@example.com", &temp)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let stored = app.all_stored_text().await;
    assert!(!stored.contains(&temp) && !stored.contains("my very own password"));
}

async fn changing_the_password_ends_other_sessions(app: TestApp) {
    let email = "ann@example.com";
    app.create_user(email, Role::Marketer, "first long password")
        .await;
    let laptop = browser();
    let phone = browser();
    app.sign_in_with(&laptop, email, "first long password")
        .await;
    app.sign_in_with(&phone, email, "first long password").await;
    let r = app
        .submit_with(
            &laptop,
            "/password",
            "/password",
            &[
                ("current_password", "wrong one"),
                ("new_password", "second long password"),
                ("confirm_password", "second long password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = app
        .submit_with(
            &laptop,
            "/password",
            "/password",
            &[
                ("current_password", "first long password"),
                ("new_password", "second long password"),
                ("confirm_password", "second long password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get_with(&laptop, "/dashboard").await.status(),
        StatusCode::OK,
        "this session goes on"
    );
    assert_eq!(
        app.get_with(&phone, "/dashboard").await.status(),
        StatusCode::SEE_OTHER,
        "the other one ends"
    );
    assert_eq!(
        app.sign_in_with(&browser(), email, "first long password")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn next_only_leads_to_local_pages(app: TestApp) {
    app.create_user("ann@example.com", Role::Admin, "ann's long password")
        .await;
    let r = app.get("/admin/audit").await;
    assert_eq!(location(&r), "/login?next=%2Fadmin%2Faudit");
    let r = app
        .submit(
            "/login?next=%2Fadmin%2Faudit",
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", "ann's long password"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/admin/audit");
    let evil = browser();
    let r = app
        .submit_with(
            &evil,
            "/login?next=%2F%2Fevil.example",
            "/login",
            &[
                ("email", "ann@example.com"),
                ("password", "ann's long password"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/dashboard");
}

on_both_engines!(
    sign_in_lands_on_the_dashboard_with_name_and_sign_out,
    wrong_password_and_unknown_user_get_the_same_answer,
    the_eleventh_failure_in_fifteen_minutes_is_delayed,
    attempts_sent_at_once_after_ten_failures_queue_behind_each_other,
    sign_out_ends_the_session_on_the_server,
    a_session_from_before_sign_in_is_not_signed_in,
    an_idle_session_is_refused_and_an_active_one_ends_after_eight_hours,
    a_temporary_password_leads_only_to_choosing_a_new_one_and_works_once,
    changing_the_password_ends_other_sessions,
    next_only_leads_to_local_pages
);
