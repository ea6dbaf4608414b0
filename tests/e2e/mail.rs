//! Outgoing mail through the running application: queued by the `Mailer` the flows use,
//! delivered by the app's worker to its outbox or to a real SMTP server (aiosmtpd), and the
//! `sesame mail` commands.

use std::process::Command;

use sesame_core::clock::Clock;
use sesame_core::i18n::Lang;
use sesame_core::ids::{AccountId, LoginName};
use sesame_core::mail::{MailMessage, MailStatus};
use sesame_mail::transport::{SmtpSecurity, TransportKind};
use sesame_tests::{backend, unique_login, Backend, SmtpCatcher, TestApp, GOOD_PASSWORD};

use crate::cli::sesame_bin;

/// The password-changed notice for a fresh account of `app`, its recipient and the account.
async fn notice(app: &TestApp, lang: Lang) -> (MailMessage, String, AccountId) {
    let login = unique_login("mail");
    let account = app.create_user(&login, GOOD_PASSWORD).await;
    let to = account.email.clone().unwrap();
    let message = MailMessage::password_changed(
        to.clone(),
        lang,
        account.id,
        &LoginName::parse(&login).unwrap(),
        app.clock.now(),
        Some("192.0.2.7"),
    );
    (message, to.as_str().to_owned(), account.id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_notice_reaches_the_outbox_of_a_running_server() {
    let app = TestApp::builder()
        .with(|s| s.ui.institution_name = "Université Exemple".to_owned())
        .spawn()
        .await;
    let (message, to, account_id) = notice(&app, Lang::Fr).await;
    let id = app.services.mail.mailer.send(message).await.unwrap();

    let mails = app.mails_to(&to).await;
    assert_eq!(mails.len(), 1, "{:?}", app.outbox());
    let mail = &mails[0];
    assert_eq!(mail.id, id.to_string());
    assert_eq!(mail.from, "no-reply@univ.example.org");
    assert_eq!(
        mail.subject,
        "Université Exemple : le mot de passe de votre compte a été modifié"
    );
    assert!(
        mail.text.contains("depuis l'adresse 192.0.2.7"),
        "{}",
        mail.text
    );
    // The notice points to this Sesame (the lifecycle flows' links will too).
    assert_eq!(
        mail.link_to(&app.address),
        format!("{}/password/forgot", app.address)
    );
    assert!(mail.html.as_deref().unwrap().contains("192.0.2.7"));

    let queued = app
        .services
        .mail
        .queue
        .find_mail(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queued.status(), MailStatus::Sent);
    assert_eq!(queued.mail.account_id, Some(account_id));
    assert_eq!(
        queued.mail.text_body, "",
        "no one-time link stays in the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_woken_worker_delivers_without_being_asked() {
    let app = TestApp::spawn().await;
    let (message, to, _) = notice(&app, Lang::En).await;
    app.services.mail.mailer.send(message).await.unwrap();
    // No call to deliver: the worker woken by the queued mail writes it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if app.outbox().iter().any(|m| m.to == to) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "not delivered");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mail = app.outbox().into_iter().find(|m| m.to == to).unwrap();
    assert_eq!(mail.subject, "Sesame: your account password was changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_smtp_settings_the_server_delivers_through_a_real_smtp_server() {
    let Some(smtp) = SmtpCatcher::start(Some("sesame:relay-pass")) else {
        return;
    };
    let port = smtp.port;
    let app = TestApp::builder()
        .with(move |s| {
            s.mail.transport = TransportKind::Smtp;
            s.mail.smtp_host = "127.0.0.1".to_owned();
            s.mail.smtp_port = port;
            s.mail.smtp_security = SmtpSecurity::None;
            s.mail.smtp_username = "sesame".to_owned();
            s.mail.smtp_password = "relay-pass".into();
        })
        .spawn()
        .await;
    let (message, to, _) = notice(&app, Lang::Fr).await;
    let id = app.services.mail.mailer.send(message).await.unwrap();
    app.deliver_mail().await;
    let queued = app
        .services
        .mail
        .queue
        .find_mail(id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(queued.status(), MailStatus::Sent, "{:?}", queued.last_error);

    let messages = smtp.messages();
    assert_eq!(messages.len(), 1);
    let (envelope, mail) = &messages[0];
    assert_eq!(envelope["rcpt_tos"], serde_json::json!([to]));
    assert_eq!(envelope["authenticated"], true);
    assert_eq!(mail.to, to);
    assert_eq!(
        mail.subject,
        "Sesame : le mot de passe de votre compte a été modifié"
    );
    assert!(String::from_utf8_lossy(&mail.raw)
        .contains(&format!("Message-ID: <{id}@univ.example.org>")));
    // Nothing went to the outbox.
    assert!(app.outbox().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sesame_mail_commands_send_a_test_mail_and_show_the_queue() {
    let app = TestApp::spawn().await;
    let outbox = app.settings.mail.outbox_dir.clone();
    let store = match backend() {
        Backend::Embedded => "url = \"memory://\"".to_owned(),
        Backend::Production => format!(
            "url = \"{}\"\nkey_prefix = \"{}\"",
            app.settings.store.url.expose(),
            app.settings.store.key_prefix
        ),
    };
    let config = std::env::temp_dir().join(format!(
        "sesame-mail-cli-{}.toml",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::write(
        &config,
        format!(
            "[database]\nurl = \"{}\"\n\n[store]\n{store}\n\n[password_hashing]\nmemory_kib = 256\niterations = 1\n\n[log]\nlevel = \"warn\"\n\n[mail]\noutbox_dir = \"{outbox}\"\nfrom = \"ENT <ent@univ.example.org>\"\n",
            app.settings.database.url.expose()
        ),
    )
    .unwrap();
    let secret = config.with_extension("secret");
    std::fs::write(&secret, "relay-pass\n").unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(sesame_bin())
            .arg("--config")
            .arg(&config)
            .args(args)
            .env("SESAME_MAIL__SMTP_PASSWORD_FILE", &secret)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    };

    let (ok, text) = run(&["mail", "test", "Helpdesk@Univ.Example.org", "--lang", "en"]);
    assert!(ok, "{text}");
    assert!(text.contains("sent (outbox"), "{text}");
    let mails = app.outbox();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, "helpdesk@univ.example.org");
    assert_eq!(mails[0].from, "ent@univ.example.org");
    assert_eq!(mails[0].subject, "Sesame: test message");
    assert!(text.contains(&mails[0].id), "{text}");

    let (ok, text) = run(&["mail", "status"]);
    assert!(ok, "{text}");
    assert!(text.contains("sent:      1"), "{text}");
    assert!(text.contains("pending:   0"), "{text}");
    let (ok, text) = run(&["mail", "list", "--status", "sent"]);
    assert!(ok, "{text}");
    assert!(text.contains("helpdesk@univ.example.org"), "{text}");
    assert!(text.contains(" test "), "{text}");
    let (ok, text) = run(&["mail", "list", "--status", "lost"]);
    assert!(!ok, "{text}");
    let (ok, text) = run(&["mail", "retry", &mails[0].id]);
    assert!(!ok && text.contains("no failed mail"), "{text}");
    let (ok, text) = run(&["mail", "deliver"]);
    assert!(ok && text.contains("0 sent"), "{text}");

    // The SMTP password read from its file is masked by `config check`.
    let (ok, text) = run(&["config", "check"]);
    assert!(ok, "{text}");
    assert!(text.contains("smtp_password = \"********\""), "{text}");
    assert!(!text.contains("relay-pass"), "{text}");

    let _ = std::fs::remove_file(&config);
    let _ = std::fs::remove_file(&secret);
}
