//! Herald hears back: every email is a delivery; bounces (RFC 3464) and
//! complaints (RFC 5965) reach its inbound SMTP port, find their email by bounce
//! address (VERP), Message-ID or address, and suppress, unsubscribe and fire
//! Response Received (C); hostile or broken mail gets a clear answer.

use herald::auth::users::Role;
use herald::deliveries::{self, Fate, Kind, Sent};
use herald::suppressions::{self, Reason};
use reqwest::StatusCode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::helpers::{TestApp, text_of};
use crate::messages::{automation, new_contact, runs, welcome_automation, write_message};
use crate::smtp::SmtpServer;

/// Sets the bounce address domain (Settings).
async fn bounce_domain(app: &TestApp, domain: &str) {
    change_settings(app, |s| s.bounce_domain = domain.into()).await;
}

async fn change_settings(app: &TestApp, change: impl FnOnce(&mut herald::settings::Settings)) {
    let mut settings = herald::settings::Settings::load(&app.state.db)
        .await
        .unwrap();
    change(&mut settings);
    let mut tx = app.state.db.begin().await.unwrap();
    settings.save(&mut tx, app.now_ms()).await.unwrap();
    app.state.db.commit(tx).await.unwrap();
}

/// Hands one message to Herald's inbound port as a mail server would; returns
/// the last line of each reply, from the greeting to QUIT's.
pub(crate) async fn deliver(app: &TestApp, from: &str, to: &[&str], data: &[u8]) -> Vec<String> {
    let port = app.inbound_port.expect("the inbound port is configured");
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut replies = Vec::new();
    async fn reply(read: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            if read.read_line(&mut line).await.unwrap() == 0 {
                return "(closed)".into();
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return line.trim_end().to_string();
            }
        }
    }
    replies.push(reply(&mut read).await);
    let mut send = async |text: Vec<u8>, read: &mut BufReader<_>| {
        write.write_all(&text).await.unwrap();
        reply(read).await
    };
    replies.push(send(b"EHLO mx.example.net\r\n".to_vec(), &mut read).await);
    replies.push(send(format!("MAIL FROM:<{from}>\r\n").into_bytes(), &mut read).await);
    for rcpt in to {
        replies.push(send(format!("RCPT TO:<{rcpt}>\r\n").into_bytes(), &mut read).await);
    }
    let data_reply = send(b"DATA\r\n".to_vec(), &mut read).await;
    let go = data_reply.starts_with("354");
    replies.push(data_reply);
    if go {
        let mut body = Vec::with_capacity(data.len() + 16);
        for line in data.split_inclusive(|b| *b == b'\n') {
            if line.starts_with(b".") {
                body.push(b'.');
            }
            body.extend_from_slice(line);
        }
        if !body.ends_with(b"\n") {
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b".\r\n");
        replies.push(send(body, &mut read).await);
    }
    replies.push(send(b"QUIT\r\n".to_vec(), &mut read).await);
    replies
}

/// A delivery status notification as RFC 3464's examples write it, about
/// `recipient`, returning the headers of the email `message_id`.
pub(crate) fn dsn(recipient: &str, action: &str, status: &str, message_id: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\n\
         To: postmaster@example.com\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status;\r\n\
         \tboundary=\"RAA14128.773615765/CS.UTK.EDU\"\r\n\
         \r\n\
         --RAA14128.773615765/CS.UTK.EDU\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         \x20  ----- The following addresses had delivery problems -----\r\n\
         <{recipient}>  (unrecoverable error)\r\n\
         \r\n\
         --RAA14128.773615765/CS.UTK.EDU\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; cs.utk.edu\r\n\
         \r\n\
         Original-Recipient: rfc822;{recipient}\r\n\
         Final-Recipient: rfc822;{recipient}\r\n\
         Action: {action}\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; 550 {status} <{recipient}>...\r\n\
         \x20   User unknown\r\n\
         \r\n\
         --RAA14128.773615765/CS.UTK.EDU\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: Herald <herald@localhost>\r\n\
         To: <{recipient}>\r\n\
         Message-ID: {message_id}\r\n\
         Subject: Welcome\r\n\
         \r\n\
         --RAA14128.773615765/CS.UTK.EDU--\r\n"
    )
}

/// RFC 5965's example complaint, about the email `message_id` to `recipient`.
fn arf(recipient: &str, message_id: &str) -> String {
    format!(
        "From: <abusedesk@example.com>\r\n\
         Date: Thu, 8 Mar 2005 17:40:36 EDT\r\n\
         Subject: FW: Earn money\r\n\
         To: <abuse@example.net>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report;\r\n\
         \x20    boundary=\"part1_13d.2e68ed54_boundary\"\r\n\
         \r\n\
         --part1_13d.2e68ed54_boundary\r\n\
         Content-Type: text/plain; charset=\"US-ASCII\"\r\n\
         Content-Transfer-Encoding: 7bit\r\n\
         \r\n\
         This is an email abuse report for an email message received from IP\r\n\
         192.0.2.1 on Thu, 8 Mar 2005 14:00:00 EDT.\r\n\
         \r\n\
         --part1_13d.2e68ed54_boundary\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: SomeGenerator/1.0\r\n\
         Version: 1\r\n\
         Original-Mail-From: <herald@localhost>\r\n\
         Original-Rcpt-To: <{recipient}>\r\n\
         Arrival-Date: Thu, 8 Mar 2005 14:00:00 EDT\r\n\
         Reporting-MTA: dns; mail.example.com\r\n\
         Source-IP: 192.0.2.1\r\n\
         \r\n\
         --part1_13d.2e68ed54_boundary\r\n\
         Content-Type: message/rfc822\r\n\
         Content-Disposition: inline\r\n\
         \r\n\
         From: <herald@localhost>\r\n\
         To: <{recipient}>\r\n\
         Subject: Earn money\r\n\
         MIME-Version: 1.0\r\n\
         Content-type: text/plain\r\n\
         Message-ID: {message_id}\r\n\
         Date: Thu, 02 Sep 2004 12:31:03 -0500\r\n\
         \r\n\
         Spam Spam Spam\r\n\
         --part1_13d.2e68ed54_boundary--\r\n"
    )
}

pub(crate) fn message_id_in(data: &str) -> String {
    data.lines()
        .find_map(|l| l.strip_prefix("Message-ID: "))
        .expect("a Message-ID")
        .trim()
        .to_string()
}

async fn a_hard_bounce_to_the_bounce_address_suppresses_and_fires_response_received(
    app: TestApp,
    smtp: SmtpServer,
) {
    bounce_domain(&app, "bounce.example.com").await;
    let (client, _) = app.signed_in(Role::Admin).await;
    let message = write_message(&app, &client, "Welcome", "Welcome", "Hello", "").await;
    let welcome = welcome_automation(&app, &client, message).await;
    let deactivate = automation(
        &app,
        &client,
        "Deactivate on bounce",
        "response_received",
        &[("job", "deactivate_contact"), ("use_event_parameter", "on")],
    )
    .await;
    let ada = new_contact(&app, &client, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    let sent = smtp
        .last_to("ada@example.com")
        .expect("the welcome went out");
    // VERP: the envelope names the email; From: stays the sender; List-Id names the brand.
    assert!(
        sent.from.starts_with("bounces+") && sent.from.ends_with("@bounce.example.com"),
        "{}",
        sent.from
    );
    assert!(
        sent.data.contains("From: Herald <herald@localhost>"),
        "{}",
        sent.data
    );
    assert!(
        sent.data.contains("List-Id: \"Herald\" <herald.localhost>"),
        "{}",
        sent.data
    );
    // The delivery is recorded, with its Message-ID.
    let message_id = message_id_in(&sent.data);
    let recorded = deliveries::of_contact(&app.state.db, ada, 10)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].smtp_message_id, message_id);
    assert_eq!(recorded[0].kind(), Kind::Message);
    assert_eq!(recorded[0].fate(), Fate::Sent);
    let replies = deliver(
        &app,
        "",
        &[&sent.from],
        dsn("ada@example.com", "failed", "5.1.1", "<not-herald@x>").as_bytes(),
    )
    .await;
    assert!(replies[replies.len() - 2].starts_with("250"), "{replies:?}");
    let s = suppressions::find(&app.state.db, "ada@example.com")
        .await
        .unwrap()
        .expect("suppressed");
    assert_eq!(s.reason, Reason::HardBounce);
    assert!(s.detail.contains("5.1.1"), "{s:?}");
    // The run shows what became of its email, on the page and over the API.
    let run = runs(&app, welcome).await[0].id.0;
    let key = crate::api::new_key(&app, &client, "bounces").await;
    let r = app
        .client
        .get(app.url(&format!("/api/v1/runs/{run}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["deliveries"][0]["fate"], "hard_bounce", "{body}");
    assert_eq!(body["deliveries"][0]["address"], "ada@example.com");
    assert_eq!(
        body["deliveries"][0]["smtp_message_id"],
        message_id.as_str()
    );
    let (_, page) = app
        .page_with(&client, &format!("/automations/{welcome}"))
        .await;
    assert!(
        text_of(&page, "#runs .delivery")
            .unwrap()
            .contains("bounced (hard)")
    );
    let (_, page) = app.page_with(&client, &format!("/contacts/{ada}")).await;
    assert!(
        text_of(&page, "#deliveries")
            .unwrap()
            .contains("prepared message \"Welcome\"")
    );
    assert!(
        text_of(&page, "#suppressed")
            .unwrap()
            .contains("hard bounce")
    );
    // Response Received (C) fired for Ada, and its automation ran.
    let events = app.events().await;
    let fired = events
        .iter()
        .find(|(kind, ..)| kind == "response_received")
        .expect("the event");
    assert_eq!(fired.1, Some(ada));
    assert_eq!(fired.3["response"], "hard_bounce");
    assert_eq!(fired.3["status"], "5.1.1");
    app.drain_due_runs().await;
    let ran = runs(&app, deactivate).await;
    assert_eq!(ran.len(), 1);
    assert_eq!(ran[0].status.code(), "done", "{:?}", ran[0]);
    let contact = herald::contacts::find(&app.state.db, ada)
        .await
        .unwrap()
        .unwrap();
    assert!(
        contact.is_blocked(),
        "the automation on Response Received blocked her"
    );
}

async fn a_complaint_found_by_its_message_id_unsubscribes_the_contact(
    app: TestApp,
    smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Marketer).await;
    let message = write_message(&app, &client, "Welcome", "Welcome", "Hello", "").await;
    welcome_automation(&app, &client, message).await;
    let ada = new_contact(&app, &client, "ada@example.com", "Ada").await;
    app.drain_due_runs().await;
    let sent = smtp.last_to("ada@example.com").unwrap();
    assert_eq!(
        sent.from, "herald@localhost",
        "no bounce domain: the sender"
    );
    assert!(!sent.data.contains("bounces+"));
    let id = message_id_in(&sent.data);
    // No bounce domain: the sender address's domain takes reports; others get 550.
    let refused = deliver(&app, "", &["abuse@example.org"], b"Subject: x\r\n\r\nx\r\n").await;
    assert!(refused[3].starts_with("550"), "{refused:?}");
    let replies = deliver(
        &app,
        "abusedesk@example.com",
        &["abuse@localhost"],
        arf("ada@example.com", &id).as_bytes(),
    )
    .await;
    assert!(
        replies[replies.len() - 2].starts_with("250 2.0.0 Ok: recorded"),
        "{replies:?}"
    );
    let s = suppressions::find(&app.state.db, "ada@example.com")
        .await
        .unwrap()
        .expect("suppressed");
    assert_eq!(s.reason, Reason::Complaint);
    let contact = herald::contacts::find(&app.state.db, ada)
        .await
        .unwrap()
        .unwrap();
    assert!(contact.is_opted_out(), "a complaint unsubscribes from all");
    let d = &deliveries::of_contact(&app.state.db, ada, 1).await.unwrap()[0];
    assert_eq!(d.fate(), Fate::Complained);
    // A test send is recorded as one.
    let r = app
        .submit_with(
            &client,
            &format!("/messages/{message}/preview"),
            &format!("/messages/{message}/test"),
            &[("to", "qa@example.com")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let test = deliveries::latest_to(&app.state.db, "qa@example.com")
        .await
        .unwrap()
        .expect("the test send is recorded");
    assert_eq!(test.kind(), Kind::Test);
    assert_eq!(test.message_id, Some(message));
}

/// Records an email to `address` sent `ago_ms` ago; returns its Message-ID.
async fn sent_email(app: &TestApp, address: &str, ago_ms: i64) -> String {
    let id = format!("<{}@localhost>", deliveries::new_reference());
    let sent = Sent::new(Kind::Message, id.clone(), address);
    deliveries::record(&app.state.db, app.now_ms() - ago_ms, &[sent])
        .await
        .unwrap();
    id
}

async fn soft_bounces_suppress_only_after_the_limit_in_a_row(app: TestApp, _smtp: SmtpServer) {
    let address = "cleo@example.com";
    let hour = 3_600_000;
    let ids = [
        sent_email(&app, address, 4 * hour).await,
        sent_email(&app, address, 3 * hour).await,
        sent_email(&app, address, 2 * hour).await,
    ];
    let bounce = async |id: &str, action: &str, status: &str| {
        let replies = deliver(
            &app,
            "",
            &["postmaster@localhost"],
            dsn(address, action, status, id).as_bytes(),
        )
        .await;
        assert!(replies[replies.len() - 2].starts_with("250"), "{replies:?}");
    };
    // A delay notice is recorded only.
    bounce(&ids[0], "delayed", "4.4.7").await;
    bounce(&ids[0], "failed", "4.2.2").await;
    bounce(&ids[1], "failed", "4.2.2").await;
    assert!(
        suppressions::find(&app.state.db, address)
            .await
            .unwrap()
            .is_none(),
        "two soft bounces are not three"
    );
    let first = deliveries::latest_to(&app.state.db, address)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.fate(), Fate::Sent, "the third is not bounced yet");
    bounce(&ids[2], "failed", "4.2.2").await;
    let s = suppressions::find(&app.state.db, address)
        .await
        .unwrap()
        .expect("three soft bounces in a row suppress");
    assert_eq!(s.reason, Reason::SoftBounces);
    // A delivered email between soft bounces starts the count again.
    let other = "dan@example.com";
    let a = sent_email(&app, other, 4 * hour).await;
    let _delivered = sent_email(&app, other, 3 * hour).await;
    let b = sent_email(&app, other, 2 * hour).await;
    let c = sent_email(&app, other, hour).await;
    for id in [&a, &b, &c] {
        let replies = deliver(
            &app,
            "",
            &["postmaster@localhost"],
            dsn(other, "failed", "4.2.2", id).as_bytes(),
        )
        .await;
        assert!(replies[replies.len() - 2].starts_with("250"), "{replies:?}");
    }
    assert!(
        suppressions::find(&app.state.db, other)
            .await
            .unwrap()
            .is_none(),
        "a delivery between them breaks the run"
    );
    let d = deliveries::latest_to(&app.state.db, other)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.fate(), Fate::SoftBounce);
    assert_eq!(
        d.fate_detail,
        "4.2.2 550 4.2.2 <dan@example.com>... User unknown"
    );
}

async fn hostile_and_broken_mail_gets_a_clear_answer_and_is_kept(app: TestApp, _smtp: SmtpServer) {
    bounce_domain(&app, "bounce.example.com").await;
    let before = sent_email(&app, "eve@example.com", 1000).await;
    // Another domain: never a relay.
    let r = deliver(
        &app,
        "x@example.org",
        &["victim@example.org"],
        b"Subject: x\r\n\r\nx\r\n",
    )
    .await;
    assert!(r[3].starts_with("550 5.7.1"), "{r:?}");
    assert!(
        r[4].starts_with("503"),
        "no DATA without a recipient: {r:?}"
    );
    // A forged bounce address: kept, nothing suppressed.
    let r = deliver(
        &app,
        "",
        &["bounces+00000000000000000000.0123456789abcdef0123456789abcdef@bounce.example.com"],
        dsn("eve@example.com", "failed", "5.1.1", &before).as_bytes(),
    )
    .await;
    assert!(r[r.len() - 2].starts_with("250 2.0.0 Ok: kept"), "{r:?}");
    assert!(
        suppressions::find(&app.state.db, "eve@example.com")
            .await
            .unwrap()
            .is_none()
    );
    // A truncated MIME body, and headers that are not UTF-8: kept, no panic.
    let full = dsn("nobody@example.com", "failed", "5.1.1", "<x@y>");
    let truncated = &full.as_bytes()[..full.len() / 2];
    let r = deliver(&app, "", &["postmaster@bounce.example.com"], truncated).await;
    assert!(r[r.len() - 2].starts_with("250"), "{r:?}");
    let latin1 = b"From: M\xfcller <m@example.net>\r\nSubject: \xe4\xf6\xfc\xff\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=b\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; \xff\r\n\r\nFinal-Recipient: rfc822; \xfc@example.com\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n";
    let r = deliver(&app, "", &["postmaster@bounce.example.com"], latin1).await;
    assert!(r[r.len() - 2].starts_with("250"), "{r:?}");
    // RFC 5965's own example is about nobody Herald wrote to: kept.
    let r = deliver(
        &app,
        "abusedesk@example.com",
        &["postmaster@bounce.example.com"],
        arf("user@example.com", "8787KJKJ3K4J3K4J3K4J3.mail@example.net").as_bytes(),
    )
    .await;
    assert!(r[r.len() - 2].starts_with("250 2.0.0 Ok: kept"), "{r:?}");
    // 20 MiB: refused after the data, and the connection still answers.
    let big = vec![b'a'; 20 * 1024 * 1024]
        .chunks(998)
        .flat_map(|c| c.iter().copied().chain(*b"\r\n"))
        .collect::<Vec<u8>>();
    let r = deliver(&app, "", &["postmaster@bounce.example.com"], &big).await;
    assert!(r[r.len() - 2].starts_with("552"), "{r:?}");
    assert!(r[r.len() - 1].starts_with("221"), "{r:?}");
    // Connections past the limit are told to come back later; the others stay.
    let port = app.inbound_port.unwrap();
    let mut held = Vec::new();
    for _ in 0..herald::feedback::smtp::MAX_CONNECTIONS {
        let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let mut read = BufReader::new(stream);
        let mut greeting = String::new();
        read.read_line(&mut greeting).await.unwrap();
        assert!(greeting.starts_with("220"), "{greeting}");
        held.push(read);
    }
    let extra = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut answer = String::new();
    BufReader::new(extra).read_line(&mut answer).await.unwrap();
    assert!(answer.starts_with("421"), "{answer}");
    drop(held);
    // All of it is on the admin page of unmatched reports.
    let (client, _) = app.signed_in(Role::Admin).await;
    let (status, page) = app.page_with(&client, "/admin/reports").await;
    assert_eq!(status, StatusCode::OK);
    let total = text_of(&page, "#total").unwrap();
    assert!(total.starts_with("4 unmatched reports"), "{total}");
    let table = text_of(&page, "#reports").unwrap();
    assert!(table.contains("forged or altered"), "{table}");
    assert!(table.contains("user@example.com"), "{table}");
    let (latest, store) = herald::feedback::store::unmatched(&app.state.db, 1)
        .await
        .unwrap();
    assert_eq!(store, 4);
    // Each keeps the start of its message, shown as text.
    let (status, page) = app
        .page_with(&client, &format!("/admin/reports/{}", latest[0].id))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        text_of(&page, "#raw").unwrap().contains("Earn money"),
        "{page}"
    );
    let (status, _) = app.page_with(&client, "/admin/reports/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn settings_take_a_bounce_domain_and_the_rules(app: TestApp) {
    let (admin, _) = app.signed_in(Role::Admin).await;
    let page = "/admin/settings";
    let r = app
        .submit_with(
            &admin,
            page,
            page,
            &[("bounce_domain", "https://bounce.example.com/")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        text_of(&html, "#bounce_domain-error")
            .unwrap()
            .contains("not a domain name"),
        "{html}"
    );
    let r = app
        .submit_with(
            &admin,
            page,
            page,
            &[
                ("bounce_domain", "Bounce.Example.com"),
                ("soft_bounce_limit", "5"),
                ("soft_bounce_days", "14"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let s = herald::settings::Settings::load(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        (
            s.bounce_domain.as_str(),
            s.soft_bounce_limit,
            s.soft_bounce_days
        ),
        ("bounce.example.com", 5, 14)
    );
    let (_, html) = app.page_with(&admin, page).await;
    let dns = text_of(&html, "#bounce-dns").unwrap();
    assert!(
        dns.contains("MX") && dns.contains("inbound_smtp_bind"),
        "{dns}"
    );
}

async fn response_received_filters_by_what_was_said_and_try_it_says_so(app: TestApp) {
    let (client, _) = app.signed_in(Role::Admin).await;
    let r = app
        .submit_with(
            &client,
            "/automations/new",
            "/automations",
            &[
                ("name", "Blacklist complainers"),
                ("description", ""),
                ("event", "response_received"),
                ("filter_response", "complaint"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let id: i64 = crate::helpers::location(&r)
        .trim_start_matches("/automations/")
        .trim_end_matches("/job")
        .parse()
        .unwrap();
    let r = crate::automations::define_job(
        &app,
        &client,
        id,
        &[
            ("action", "time_frame"),
            ("job", "add_contact_to_blacklist"),
            ("use_event_parameter", "on"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.page_with(&client, &format!("/automations/{id}")).await;
    assert!(page.contains("Response: Complaint"), "the filter in words");
    new_contact(&app, &client, "ada@example.com", "Ada").await;
    let key = crate::api::new_key(&app, &client, "try").await;
    let ada = "ada@example.com";
    let soft = crate::try_it::try_api(
        &app,
        &key,
        id,
        &[("contact", ada), ("response", "soft_bounce")],
    )
    .await;
    assert_eq!(soft["matches_filter"], false, "{soft}");
    let complaint = crate::try_it::try_api(
        &app,
        &key,
        id,
        &[("contact", ada), ("response", "complaint")],
    )
    .await;
    assert_eq!(complaint["matches_filter"], true, "{complaint}");
    // A bad filter value is refused next to the field.
    let r = app
        .submit_with(
            &client,
            "/automations/new",
            "/automations",
            &[
                ("name", "Bad"),
                ("event", "response_received"),
                ("filter_response", "opened"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(text_of(&html, "#filter_response-error").is_some(), "{html}");
}

on_both_engines!(
    settings_take_a_bounce_domain_and_the_rules,
    response_received_filters_by_what_was_said_and_try_it_says_so
);

async fn the_deliverability_page_counts_bounces_complaints_and_rates(
    app: TestApp,
    _smtp: SmtpServer,
) {
    let (client, _) = app.signed_in(Role::Admin).await;
    let message = write_message(&app, &client, "Welcome", "Welcome", "Hello", "").await;
    let mut ids = Vec::new();
    for i in 1..=4 {
        let id = format!("<{}@localhost>", deliveries::new_reference());
        let sent =
            Sent::new(Kind::Message, id.clone(), &format!("a{i}@example.com")).of_message(message);
        deliveries::record(&app.state.db, app.now_ms() - 3_600_000, &[sent])
            .await
            .unwrap();
        ids.push(id);
    }
    for body in [
        dsn("a1@example.com", "failed", "5.1.1", &ids[0]),
        arf("a2@example.com", &ids[1]),
        dsn("a3@example.com", "failed", "4.2.2", &ids[2]),
        arf(
            "user@example.com",
            "<8787KJKJ3K4J3K4J3K4J3.mail@example.net>",
        ),
    ] {
        let r = deliver(&app, "", &["postmaster@localhost"], body.as_bytes()).await;
        assert!(r[r.len() - 2].starts_with("250"), "{r:?}");
    }
    let (status, page) = app.page_with(&client, "/admin/deliverability").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(text_of(&page, "#sent").unwrap(), "4");
    let desc = text_of(&page, "#chart-desc").unwrap();
    assert!(
        desc.contains("Hard bounces: 1. Soft bounces: 1. Complaints: 1."),
        "{desc}"
    );
    // The row's cells, one after another: message, sent, hard, soft, complaints.
    let rates = text_of(&page, "#rates tbody").unwrap();
    assert_eq!(rates, "Welcome41 (25.0 %)1 (25.0 %)1 (25.0 %)");
    assert!(
        text_of(&page, "#suppressed")
            .unwrap()
            .starts_with("2 addresses")
    );
    assert!(
        text_of(&page, "#unmatched")
            .unwrap()
            .contains("user@example.com")
    );
    assert!(text_of(&page, "#days").unwrap().contains("Sent"));
}

/// Herald sends through a real Postfix to an address it rejects; Postfix writes
/// the bounce itself and hands it to Herald's inbound port.
async fn through_postfix(engine: crate::helpers::Engine) {
    let inbound = crate::mail::free_port();
    let Some(postfix) = crate::mail::Postfix::start_with(Some(("bounce.herald.test", inbound)))
    else {
        return;
    };
    let smtp_url = format!("smtp://127.0.0.1:{}", postfix.starttls);
    TestApp::on(engine)
        .configure(move |c| {
            c.smtp_url = Some(herald::config::Secret::from(smtp_url));
            c.inbound_smtp_bind = Some(format!("127.0.0.1:{inbound}").parse().unwrap());
        })
        .run(|app| a_bounce_postfix_writes_suppresses_and_stops_the_next_message(app, &postfix))
        .await;
}

async fn a_bounce_postfix_writes_suppresses_and_stops_the_next_message(
    app: TestApp,
    postfix: &crate::mail::Postfix,
) {
    change_settings(&app, |s| {
        s.bounce_domain = "bounce.herald.test".into();
        s.sender_address = "news@herald.test".into();
    })
    .await;
    let (client, _) = app.signed_in(Role::Marketer).await;
    let message = write_message(&app, &client, "Welcome", "Welcome", "Hello", "").await;
    welcome_automation(&app, &client, message).await;
    let blacklist = automation(
        &app,
        &client,
        "Blacklist on bounce",
        "response_received",
        &[
            ("job", "add_contact_to_blacklist"),
            ("use_event_parameter", "on"),
        ],
    )
    .await;
    let changed = automation(
        &app,
        &client,
        "Tell them what changed",
        "profile_data_changed",
        &[
            ("job", "send_message_to_contact"),
            ("use_event_parameter", "on"),
            ("message", &message.to_string()),
        ],
    )
    .await;
    let address = "nobody@reject.herald.test";
    let nobody = new_contact(&app, &client, address, "Nobody").await;
    app.drain_due_runs().await;
    // Postfix took it, bounced it (5.1.1) and sent its bounce to Herald.
    let log = postfix.log_with("Ok: recorded").await;
    assert!(log.contains("status=bounced"), "{log}");
    let mut suppressed = None;
    for _ in 0..100 {
        suppressed = suppressions::find(&app.state.db, address).await.unwrap();
        if suppressed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let suppressed = suppressed.expect("the bounce suppressed the address");
    assert_eq!(suppressed.reason, Reason::HardBounce);
    let d = &deliveries::of_contact(&app.state.db, nobody, 1)
        .await
        .unwrap()[0];
    assert_eq!(d.fate(), Fate::HardBounce);
    assert!(d.fate_detail.starts_with("5.1.1"), "{}", d.fate_detail);
    // Response Received (C) ran the blacklist automation (the bounce had listed
    // the address already), and the next prepared message is skipped.
    app.drain_due_runs().await;
    let ran = runs(&app, blacklist).await;
    assert_eq!(ran.len(), 1, "{ran:?}");
    assert_eq!(ran[0].target_email.as_deref(), Some(address));
    assert_eq!(
        ran[0].outcome.as_deref(),
        Some("already on the suppression list")
    );
    let r = app
        .submit_with(
            &client,
            &format!("/contacts/{nobody}/edit"),
            &format!("/contacts/{nobody}"),
            &[("first_name", "Still nobody")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.drain_due_runs().await;
    let next = &runs(&app, changed).await[0];
    assert_eq!(next.status.code(), "skipped", "{next:?}");
    assert!(
        next.outcome
            .as_deref()
            .unwrap()
            .starts_with("address suppressed: hard bounce on "),
        "{next:?}"
    );
}

mod a_bounce_postfix_writes_suppresses_and_stops_the_next_message {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        super::through_postfix(crate::helpers::Engine::Sqlite).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::through_postfix(crate::helpers::Engine::Postgres).await
    }
}

with_smtp!(
    the_deliverability_page_counts_bounces_complaints_and_rates,
    a_hard_bounce_to_the_bounce_address_suppresses_and_fires_response_received,
    a_complaint_found_by_its_message_id_unsubscribes_the_contact,
    soft_bounces_suppress_only_after_the_limit_in_a_row,
    hostile_and_broken_mail_gets_a_clear_answer_and_is_kept,
);
