use crate::helpers::TestApp;
use herald::auth::users::{self, Role};
use herald::settings::Settings;
use reqwest::StatusCode;

use crate::helpers::{location, text_of};

/// Form fields to fill in.
type Fields<'a> = &'a [(&'a str, &'a str)];

async fn admins_create_users_with_validation_next_to_the_fields(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let long_name = "x".repeat(101);
    let cases: [(Fields, &str, &str); 4] = [
        (
            &[
                ("email", "not-an-email"),
                ("name", "Ann"),
                ("role", "marketer"),
            ],
            "email",
            "Enter an email address like",
        ),
        (
            &[
                ("email", "ann@example.com"),
                ("name", "   "),
                ("role", "marketer"),
            ],
            "name",
            "Enter a name",
        ),
        (
            &[
                ("email", "ann@example.com"),
                ("name", &long_name),
                ("role", "marketer"),
            ],
            "name",
            "at most 100",
        ),
        (
            &[
                ("email", "ann@example.com"),
                ("name", "Ann"),
                ("role", "superuser"),
            ],
            "role",
            "Choose Admin or Marketer",
        ),
    ];
    for (values, field, message) in cases {
        let r = app
            .submit_with(&admin, "/admin/users/new", "/admin/users", values)
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{values:?}");
        let html = r.text().await.unwrap();
        let shown = text_of(&html, &format!("#{field}-error"))
            .unwrap_or_else(|| panic!("no message for {field}"));
        assert!(shown.contains(message), "{field}: {shown}");
        // What was typed is kept.
        let form = crate::helpers::find_form(&html, "/admin/users");
        assert_eq!(form.get("email"), Some(values[0].1));
    }
    let r = app
        .submit_with(
            &admin,
            "/admin/users/new",
            "/admin/users",
            &[
                ("email", "Ann@Example.com"),
                ("name", "Ann Lee"),
                ("role", "marketer"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    // The same address in another case is a duplicate.
    let r = app
        .submit_with(
            &admin,
            "/admin/users/new",
            "/admin/users",
            &[
                ("email", "ANN@example.com"),
                ("name", "Ann Again"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        text_of(&r.text().await.unwrap(), "#email-error")
            .unwrap()
            .contains("already exists")
    );
    let (_, html) = app.page_with(&admin, "/admin/users").await;
    assert!(html.contains("ann@example.com") && html.contains("Ann Lee"));
    assert_eq!(
        users::count(&app.state.db).await.unwrap(),
        3,
        "first admin, the signed-in admin, Ann"
    );
}

async fn role_changes_and_disabling_are_audited_and_admins_cannot_lock_themselves_out(
    app: TestApp,
) {
    let (admin, admin_email) = app.signed_in(Role::Admin).await;
    let id = app
        .create_user("bob@example.com", Role::Marketer, "bob's long password")
        .await;
    let page = format!("/admin/users/{id}");
    let r = app
        .submit_with(&admin, &page, &format!("{page}/role"), &[("role", "admin")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        users::find(&app.state.db, id).await.unwrap().unwrap().role,
        Role::Admin
    );
    // A forged role is refused.
    let r = app
        .submit_with(&admin, &page, &format!("{page}/role"), &[("role", "root")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let me = users::find_by_email(&app.state.db, &admin_email)
        .await
        .unwrap()
        .unwrap();
    let my_page = format!("/admin/users/{}", me.id);
    let (_, html) = app.page_with(&admin, &my_page).await;
    let mut form = crate::helpers::find_form(&html, &format!("{my_page}/disable"));
    let r = app.post_form_with(&admin, &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.page_with(&admin, &my_page).await;
    assert!(html.contains("You cannot disable your own account"));
    form.action = format!("{my_page}/role");
    form.set("role", "marketer");
    app.post_form_with(&admin, &form).await;
    assert_eq!(
        users::find(&app.state.db, me.id)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::Admin
    );

    let (status, html) = app.page_with(&admin, "/admin/audit").await;
    assert_eq!(status, StatusCode::OK);
    for label in ["Role changed", "System user created", "Signed in"] {
        assert!(html.contains(label), "audit page lacks {label}");
    }
    assert!(html.contains("marketer → admin"));
    // Newest first.
    let first = text_of(&html, "tbody tr td:nth-child(3)").unwrap();
    assert_eq!(first, "Role changed");
}

async fn the_audit_log_is_paginated(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    for i in 0..60 {
        let actor = herald::audit::Actor::named(format!("ghost{i}@example.com"));
        let entry = herald::audit::Entry {
            actor: &actor,
            action: herald::audit::Action::SignInFailed,
            target: "",
            detail: "",
            ip: "",
        };
        herald::audit::record_now(&app.state.db, app.now_ms(), entry)
            .await
            .unwrap();
    }
    let (_, page1) = app.page_with(&admin, "/admin/audit").await;
    assert_eq!(page1.matches("<tr data-action=").count(), 50);
    assert!(page1.contains("href=\"/admin/audit?page=2\""));
    let (_, page2) = app.page_with(&admin, "/admin/audit?page=2").await;
    assert!(page2.matches("<tr data-action=").count() >= 10);
    assert!(
        page2.contains("ghost0@example.com"),
        "oldest entries on the last page"
    );
    let r = app.get_with(&admin, "/admin/audit?page=abc").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

async fn settings_are_validated_saved_and_read_back(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[
                ("default_time_zone", "Mars/Base"),
                ("temp_password_lifetime_hours", "0"),
                ("sender_address", "nope"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        text_of(&html, "#default_time_zone-error")
            .unwrap()
            .contains("not a time zone")
    );
    assert!(
        text_of(&html, "#temp_password_lifetime_hours-error")
            .unwrap()
            .contains("1 to 720")
    );
    assert!(text_of(&html, "#sender_address-error").is_some());
    assert_eq!(
        Settings::load(&app.state.db).await.unwrap(),
        Settings::default(),
        "nothing saved"
    );

    let r = app
        .submit_with(
            &admin,
            "/admin/settings",
            "/admin/settings",
            &[
                ("brand_name", "Acme Mail"),
                ("sender_name", "Acme"),
                ("sender_address", "news@acme.example"),
                (
                    "preference_center_url",
                    "https://prefs.acme.example/preferences",
                ),
                ("default_time_zone", "Europe/Berlin"),
                ("temp_password_lifetime_hours", "48"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/admin/settings");
    let s = Settings::load(&app.state.db).await.unwrap();
    assert_eq!(s.brand_name, "Acme Mail");
    assert_eq!(s.default_time_zone, "Europe/Berlin");
    assert_eq!(s.temp_password_lifetime_hours, 48);
    let (_, html) = app.page_with(&admin, "/admin/settings").await;
    assert!(html.contains("Settings saved."));
    assert!(
        html.contains("<title>Settings · Acme Mail</title>"),
        "brand in the layout"
    );
    let form = crate::helpers::find_form(&html, "/admin/settings");
    assert_eq!(form.get("default_time_zone"), Some("Europe/Berlin"));
    // Examples read as examples, not as values already set.
    for placeholder in html.split("placeholder=\"").skip(1) {
        assert!(
            placeholder.starts_with("e.g. "),
            "placeholder {:?}",
            &placeholder[..placeholder.find('"').unwrap_or(0)]
        );
    }
    assert!(app.all_stored_text().await.contains("settings.changed"));
    // Every time on a staff page is in that zone, one zone per page: a
    // contact's created time and timeline, the users, the audit log, the
    // dashboard's chart.
    app.clock.set("2026-12-07T10:00:00Z".parse().unwrap());
    let (admin, _) = app.signed_in(Role::Admin).await;
    let r = app
        .submit_with(
            &admin,
            "/contacts/new",
            "/contacts",
            &[("email", "zoe@example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for page in [
        location(&r),
        "/admin/users".into(),
        "/admin/audit".into(),
        "/contacts".into(),
    ] {
        let (_, html) = app.page_with(&admin, &page).await;
        assert!(!html.contains(" UTC"), "{page} shows UTC: {html}");
        assert!(html.contains(" CET"), "{page} shows no CET time: {html}");
    }
    let (_, html) = app.page_with(&admin, "/dashboard").await;
    assert!(!html.contains("UTC"), "{html}");
    assert!(
        html.contains("last 7 days (Europe/Berlin)") && html.contains("Mon 7 Dec"),
        "{html}"
    );
}

async fn a_fresh_install_asks_its_first_admin_who_sends(app: TestApp) {
    let (marketer, _) = app.signed_in(Role::Marketer).await;
    let (_, html) = app.page_with(&marketer, "/dashboard").await;
    assert!(
        text_of(&html, "#sender-setup").is_none(),
        "only admins are asked"
    );
    let (admin, _) = app.signed_in(Role::Admin).await;
    let (_, html) = app.page_with(&admin, "/dashboard").await;
    assert!(
        text_of(&html, "#sender-setup")
            .unwrap()
            .contains("Who sends Herald's emails?")
    );
    // A bad address: the Settings page with the message next to the field.
    let r = app
        .submit_with(
            &admin,
            "/dashboard",
            "/admin/settings/sender",
            &[
                ("sender_name", "Acme News"),
                ("sender_address", "news at acme"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(text_of(&r.text().await.unwrap(), "#sender_address-error").is_some());
    // Saved: the brand is the sender's name when left empty; the question goes.
    let r = app
        .submit_with(
            &admin,
            "/dashboard",
            "/admin/settings/sender",
            &[
                ("sender_name", "Acme News"),
                ("sender_address", "news@acme.example"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/dashboard");
    let s = Settings::load(&app.state.db).await.unwrap();
    assert_eq!(
        (
            s.sender_name.as_str(),
            s.sender_address.as_str(),
            s.brand_name.as_str()
        ),
        ("Acme News", "news@acme.example", "Acme News")
    );
    assert_eq!(
        s.default_time_zone,
        Settings::default().default_time_zone,
        "the rest stays"
    );
    let (_, html) = app.page_with(&admin, "/dashboard").await;
    assert!(text_of(&html, "#sender-setup").is_none());
    assert!(html.contains("Saved: contacts get email from Acme News &#60;news@acme.example&#62;, under the brand Acme News."), "{html}");
    assert!(html.contains("<title>Dashboard · Acme News</title>"));
}

async fn health_and_readiness(app: TestApp) {
    let r = app.get("/healthz").await;
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.text().await.unwrap(), "ready\n");
    app.state.db.close().await;
    let r = app.get("/readyz").await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

on_both_engines!(
    admins_create_users_with_validation_next_to_the_fields,
    role_changes_and_disabling_are_audited_and_admins_cannot_lock_themselves_out,
    the_audit_log_is_paginated,
    settings_are_validated_saved_and_read_back,
    a_fresh_install_asks_its_first_admin_who_sends,
    health_and_readiness
);
