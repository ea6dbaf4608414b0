//! The mail path end to end, below HTTP: `TemplatedMailer` queues in the real database
//! (SQLite, and PostgreSQL when reachable), `MailWorker` delivers to the file outbox or to a
//! real SMTP server (Python's aiosmtpd, started per test on loopback), and time moves only
//! with a `ManualClock`.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions: a panic is how they report a failure"
)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use mail_parser::MessageParser;
use sesame_core::clock::{Clock, ManualClock};
use sesame_core::i18n::Lang;
use sesame_core::ids::{AccountId, Email, LoginName};
use sesame_core::mail::{MailId, MailMessage, MailStatus, QueuedMail, RetryPolicy};
use sesame_core::ports::{MailQueue, Mailer};
use sesame_mail::error::TransportError;
use sesame_mail::mailer::TemplatedMailer;
use sesame_mail::message::Sender;
use sesame_mail::templates::{MailTemplates, SiteInfo};
use sesame_mail::transport::{
    build_transport, MailTransport, SmtpConfig, SmtpSecurity, TransportConfig,
};
use sesame_mail::worker::{DeliveryReport, MailWorker, WorkerSettings};
use sesame_store::testing::{fresh_postgres, fresh_sqlite, skip_or_fail, test_database_url};
use sesame_store::Database;
use time::macros::datetime;

const FROM: &str = "Université Exemple <no-reply@univ.example>";

// ---------------------------------------------------------------------------------------
// Harness

/// A migrated database and whatever keeps it alive.
struct Db {
    db: Arc<Database>,
    url: String,
    _guard: Box<dyn std::any::Any + Send>,
}

async fn sqlite() -> Db {
    let (url, guard) = fresh_sqlite();
    let db = Database::connect(&url, 4).await.unwrap();
    db.run_migrations().await.unwrap();
    Db {
        db: Arc::new(db),
        url,
        _guard: Box::new(guard),
    }
}

async fn postgres() -> Option<Db> {
    let (url, guard) = match fresh_postgres(&test_database_url()).await {
        Ok(fresh) => fresh,
        Err(e) => {
            skip_or_fail("PostgreSQL", &e);
            return None;
        }
    };
    let db = Database::connect(&url, 4).await.unwrap();
    db.run_migrations().await.unwrap();
    Some(Db {
        db: Arc::new(db),
        url,
        _guard: Box::new(guard),
    })
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::starting_at(datetime!(2026-11-27 13:05 UTC)))
}

fn mailer(db: &Db, clock: &Arc<ManualClock>) -> TemplatedMailer {
    let templates = MailTemplates::load(
        None,
        SiteInfo {
            institution: "Université Exemple".to_owned(),
            public_url: "https://sso.univ.example".to_owned(),
            helpdesk_url: String::new(),
            time_zone: "Europe/Paris".to_owned(),
        },
    )
    .unwrap();
    let queue: Arc<dyn MailQueue> = db.db.clone();
    TemplatedMailer::new(templates, queue, clock.clone())
}

fn worker(
    db: &Arc<Database>,
    transport: Arc<dyn MailTransport>,
    clock: &Arc<ManualClock>,
    delays: &[u64],
) -> MailWorker {
    let queue: Arc<dyn MailQueue> = db.clone();
    let clock: Arc<dyn Clock> = clock.clone();
    MailWorker::new(
        queue,
        transport,
        clock,
        WorkerSettings {
            batch_size: 10,
            retry: RetryPolicy {
                delays: delays.iter().copied().map(Duration::from_secs).collect(),
            },
            delivery_timeout: Duration::from_secs(5),
        },
    )
}

fn notice(to: &str) -> MailMessage {
    MailMessage::password_changed(
        Email::parse(to).unwrap(),
        Lang::Fr,
        AccountId::new_random(),
        &LoginName::parse("alice.martin").unwrap(),
        datetime!(2026-11-27 13:05 UTC),
        Some("192.0.2.1"),
    )
}

/// Queues without an account (the queue's `account_id` refers to `accounts`).
async fn queue_notice(mailer: &TemplatedMailer, to: &str) -> MailId {
    let mut message = notice(to);
    message.account_id = None;
    mailer.send(message).await.unwrap()
}

fn temp_dir(stem: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sesame-{stem}-{}",
        sesame_core::random::alphanumeric(10)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn smtp_config(port: u16, security: SmtpSecurity) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".to_owned(),
        port,
        security,
        username: None,
        password: None,
        ca_pem: None,
        timeout: Duration::from_secs(5),
    }
}

fn smtp(config: SmtpConfig) -> Arc<dyn MailTransport> {
    build_transport(
        &TransportConfig::Smtp(config),
        &Sender::parse(FROM).unwrap(),
    )
    .unwrap()
}

/// A real SMTP server (aiosmtpd) in a child process, stopped on drop.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

/// What the server received: the envelope and the parsed message.
struct Received {
    envelope: serde_json::Value,
    raw: Vec<u8>,
}

impl SmtpServer {
    /// Whether aiosmtpd can run here (in CI it must: `.ci/run` installs it).
    fn available() -> bool {
        let ok = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "aiosmtpd must be installed in CI (pip install aiosmtpd)"
            );
            eprintln!("skipped: aiosmtpd is not installed (pip install aiosmtpd)");
        }
        ok
    }

    fn start(args: &[&str]) -> Self {
        Self::start_on(0, args)
    }

    fn start_on(port: u16, args: &[&str]) -> Self {
        let dir = temp_dir("smtp");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(&dir)
            .args(["--port", &port.to_string()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(if std::env::var("TEST_LOG").is_ok() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("READY ")
            .unwrap_or_else(|| panic!("the SMTP server did not start: {line:?}"))
            .parse()
            .unwrap();
        Self { child, port, dir }
    }

    /// The messages received so far, in order.
    fn received(&self) -> Vec<Received> {
        let mut names: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        names.sort();
        names
            .into_iter()
            .map(|eml| Received {
                envelope: serde_json::from_str(
                    &std::fs::read_to_string(eml.with_extension("json")).unwrap(),
                )
                .unwrap(),
                raw: std::fs::read(&eml).unwrap(),
            })
            .collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A port on which nothing listens (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn report(sent: usize, retried: usize, failed: usize) -> DeliveryReport {
    DeliveryReport {
        sent,
        retried,
        failed,
    }
}

async fn status(db: &Database, id: MailId) -> QueuedMail {
    db.find_mail(id).await.unwrap().unwrap()
}

/// The value of header `name` in a raw message (unfolded, still encoded).
fn raw_header(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let prefix = format!("{}:", name.to_lowercase());
    head.replace("\r\n ", " ")
        .lines()
        .find(|l| l.to_lowercase().starts_with(&prefix))
        .map(|l| l[prefix.len()..].trim().to_owned())
}

// ---------------------------------------------------------------------------------------
// The outbox

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outbox_worker_writes_one_parseable_eml_file_per_mail() {
    let db = sqlite().await;
    let clock = clock();
    let outbox = temp_dir("outbox").join("nested/outbox");
    let transport = build_transport(
        &TransportConfig::Outbox {
            dir: outbox.clone(),
        },
        &Sender::parse(FROM).unwrap(),
    )
    .unwrap();
    let worker = worker(&db.db, transport, &clock, &[60]);
    let mailer = mailer(&db, &clock).waking(worker.waker());
    let id = queue_notice(&mailer, "alice.martin@univ.example").await;
    let queued = status(&db.db, id).await;
    assert_eq!(queued.status(), MailStatus::Pending);

    assert_eq!(worker.run_once().await.unwrap(), report(1, 0, 0));
    let path = outbox.join(format!("{id}.eml"));
    let raw = std::fs::read(&path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "mails hold one-time links");
    }
    let message = MessageParser::default().parse(&raw).unwrap();
    assert_eq!(message.subject(), Some(queued.mail.subject.as_str()));
    assert_eq!(
        message.subject(),
        Some("Université Exemple : le mot de passe de votre compte a été modifié")
    );
    let from = message.from().unwrap().first().unwrap();
    assert_eq!(from.address(), Some("no-reply@univ.example"));
    assert_eq!(from.name(), Some("Université Exemple"));
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("alice.martin@univ.example")
    );
    assert_eq!(
        message.message_id(),
        Some(format!("{id}@univ.example").as_str())
    );
    let text = message.body_text(0).unwrap();
    assert!(
        text.contains("Le mot de passe du compte alice.martin a été modifié le 27/11/2026 à 14:05"),
        "{text}"
    );
    assert!(message
        .body_html(0)
        .unwrap()
        .contains("<strong>alice.martin</strong>"));
    assert_eq!(
        raw_header(&raw, "Auto-Submitted").as_deref(),
        Some("auto-generated")
    );

    // Sent: the bodies are gone from the database, and nothing is sent twice.
    let sent = status(&db.db, id).await;
    assert_eq!(sent.status(), MailStatus::Sent);
    assert_eq!(sent.mail.text_body, "");
    assert_eq!(worker.run_once().await.unwrap(), report(0, 0, 0));
    assert_eq!(std::fs::read_dir(&outbox).unwrap().count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_woken_worker_delivers_without_waiting_for_its_interval() {
    let db = sqlite().await;
    let clock = clock();
    let outbox = temp_dir("outbox");
    let transport = build_transport(
        &TransportConfig::Outbox {
            dir: outbox.clone(),
        },
        &Sender::parse(FROM).unwrap(),
    )
    .unwrap();
    let worker = worker(&db.db, transport, &clock, &[60]);
    let mailer = mailer(&db, &clock).waking(worker.waker());
    // An hour-long interval: only the wake-up can deliver within the test.
    let task = worker.spawn(Duration::from_secs(3600));
    let id = queue_notice(&mailer, "alice@univ.example").await;
    let path = outbox.join(format!("{id}.eml"));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the woken worker did not deliver"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    task.abort();
}

// ---------------------------------------------------------------------------------------
// Retries, with a transport that fails on demand

/// Records deliveries; fails with `failure` while it is set.
#[derive(Debug, Default)]
struct FakeTransport {
    failure: Mutex<Option<TransportError>>,
    delivered: Mutex<Vec<MailId>>,
}

#[async_trait]
impl MailTransport for FakeTransport {
    async fn deliver(&self, mail: &QueuedMail) -> Result<(), TransportError> {
        if let Some(e) = self.failure.lock().unwrap().clone() {
            return Err(e);
        }
        // Give the other worker a chance to run in between.
        tokio::task::yield_now().await;
        self.delivered.lock().unwrap().push(mail.id);
        Ok(())
    }

    fn name(&self) -> &'static str {
        "fake"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_back_off_then_give_up_and_keep_the_mail() {
    let db = sqlite().await;
    let clock = clock();
    let transport = Arc::new(FakeTransport::default());
    *transport.failure.lock().unwrap() = Some(TransportError::Temporary(
        "451 4.7.1 <alice@univ.example>: greylisted".to_owned(),
    ));
    let worker = worker(&db.db, transport.clone(), &clock, &[60, 300]);
    let id = queue_notice(&mailer(&db, &clock), "alice@univ.example").await;

    assert_eq!(worker.run_once().await.unwrap(), report(0, 1, 0));
    let first = status(&db.db, id).await;
    assert_eq!(first.attempts, 1);
    assert_eq!(
        first.next_attempt_at,
        clock.now() + time::Duration::seconds(60)
    );
    let error = first.last_error.unwrap();
    assert!(error.contains("greylisted"), "{error}");
    assert!(
        !error.contains("alice@"),
        "the address is scrubbed: {error}"
    );

    clock.advance(time::Duration::seconds(59));
    assert_eq!(worker.run_once().await.unwrap(), report(0, 0, 0));
    clock.advance(time::Duration::seconds(1));
    assert_eq!(worker.run_once().await.unwrap(), report(0, 1, 0));
    let second = status(&db.db, id).await;
    assert_eq!(second.attempts, 2);
    assert_eq!(
        second.next_attempt_at,
        clock.now() + time::Duration::seconds(300)
    );

    clock.advance(time::Duration::seconds(300));
    assert_eq!(worker.run_once().await.unwrap(), report(0, 0, 1));
    let failed = status(&db.db, id).await;
    assert_eq!(failed.status(), MailStatus::Failed);
    assert_eq!(failed.attempts, 3);
    assert!(failed.mail.text_body.contains("alice.martin"), "kept whole");
    clock.advance(time::Duration::days(30));
    assert_eq!(worker.run_once().await.unwrap(), report(0, 0, 0));
    assert!(transport.delivered.lock().unwrap().is_empty());

    // The operator requeues it once the problem is fixed.
    *transport.failure.lock().unwrap() = None;
    db.db.requeue(id, clock.now()).await.unwrap();
    assert_eq!(worker.run_once().await.unwrap(), report(1, 0, 0));
    assert_eq!(*transport.delivered.lock().unwrap(), [id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_transport_ends_the_pass_and_every_claimed_mail_waits() {
    let db = sqlite().await;
    let clock = clock();
    let transport = Arc::new(FakeTransport::default());
    *transport.failure.lock().unwrap() =
        Some(TransportError::Unavailable("connection refused".to_owned()));
    let worker = worker(&db.db, transport.clone(), &clock, &[60]);
    let mailer = mailer(&db, &clock);
    for n in 0..3 {
        queue_notice(&mailer, &format!("p{n}@univ.example")).await;
    }
    assert_eq!(worker.run_once().await.unwrap(), report(0, 3, 0));
    *transport.failure.lock().unwrap() = None;
    clock.advance(time::Duration::seconds(60));
    assert_eq!(worker.run_once().await.unwrap(), report(3, 0, 0));
}

async fn two_workers_never_send_the_same_mail_twice(db: Db) {
    const MAILS: usize = 120;
    let clock = clock();
    let mailer = mailer(&db, &clock);
    for n in 0..MAILS {
        queue_notice(&mailer, &format!("p{n}@univ.example")).await;
    }
    // Two instances: two pools on one database, one transport that sees every delivery.
    let other = Arc::new(Database::connect(&db.url, 4).await.unwrap());
    let transport = Arc::new(FakeTransport::default());
    let a = worker(&db.db, transport.clone(), &clock, &[60]);
    let b = worker(&other, transport.clone(), &clock, &[60]);
    let (ra, rb) = tokio::join!(
        tokio::spawn(async move { a.run_once().await.unwrap() }),
        tokio::spawn(async move { b.run_once().await.unwrap() })
    );
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(ra.sent + rb.sent, MAILS);
    let delivered = transport.delivered.lock().unwrap().clone();
    let mut counts: HashMap<MailId, usize> = HashMap::new();
    for id in &delivered {
        *counts.entry(*id).or_default() += 1;
    }
    assert_eq!(counts.len(), MAILS);
    assert!(counts.values().all(|&n| n == 1), "a mail was sent twice");
    assert_eq!(db.db.mail_counts().await.unwrap().sent, MAILS as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_never_send_the_same_mail_twice_on_postgres() {
    let Some(db) = postgres().await else {
        return;
    };
    two_workers_never_send_the_same_mail_twice(db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_never_send_the_same_mail_twice_on_sqlite() {
    two_workers_never_send_the_same_mail_twice(sqlite().await).await;
}

// ---------------------------------------------------------------------------------------
// A real SMTP server

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_goes_through_a_real_smtp_server_with_auth_and_arrives_with_its_headers() {
    if !SmtpServer::available() {
        return;
    }
    let server = SmtpServer::start(&["--auth", "sesame:relay-pass"]);
    let db = sqlite().await;
    let clock = clock();
    let mut config = smtp_config(server.port, SmtpSecurity::None);
    config.username = Some("sesame".to_owned());
    config.password = Some("relay-pass".to_owned());
    let worker = worker(&db.db, smtp(config), &clock, &[60]);
    let id = queue_notice(&mailer(&db, &clock), "alice.martin@univ.example").await;

    assert_eq!(worker.run_once().await.unwrap(), report(1, 0, 0));
    let received = server.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.envelope["mail_from"], "no-reply@univ.example");
    assert_eq!(
        r.envelope["rcpt_tos"],
        serde_json::json!(["alice.martin@univ.example"])
    );
    assert_eq!(r.envelope["authenticated"], true);
    let message = MessageParser::default().parse(&r.raw).unwrap();
    assert_eq!(
        message.subject(),
        Some("Université Exemple : le mot de passe de votre compte a été modifié")
    );
    assert_eq!(
        message.message_id(),
        Some(format!("{id}@univ.example").as_str())
    );
    assert_eq!(
        message.from().unwrap().first().unwrap().address(),
        Some("no-reply@univ.example")
    );
    assert_eq!(
        message.to().unwrap().first().unwrap().address(),
        Some("alice.martin@univ.example")
    );
    assert!(message.date().is_some());
    assert!(message.body_text(0).unwrap().contains("alice.martin"));
    assert!(message.body_html(0).is_some());
    assert_eq!(status(&db.db, id).await.status(), MailStatus::Sent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_smtp_credentials_leave_the_mail_queued() {
    if !SmtpServer::available() {
        return;
    }
    let server = SmtpServer::start(&["--auth", "sesame:relay-pass"]);
    let db = sqlite().await;
    let clock = clock();
    let mut config = smtp_config(server.port, SmtpSecurity::None);
    config.username = Some("sesame".to_owned());
    config.password = Some("wrong-pass".to_owned());
    let worker = worker(&db.db, smtp(config), &clock, &[60]);
    let id = queue_notice(&mailer(&db, &clock), "alice@univ.example").await;
    // 535 is the settings' fault, not the mail's: it waits for its retry.
    assert_eq!(worker.run_once().await.unwrap(), report(0, 1, 0));
    let mail = status(&db.db, id).await;
    assert_eq!(mail.status(), MailStatus::Pending);
    let error = mail.last_error.unwrap();
    assert!(error.contains("535"), "{error}");
    assert!(!error.contains("wrong-pass"), "{error}");
    assert!(server.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starttls_is_required_and_the_server_certificate_checked() {
    if !SmtpServer::available() {
        return;
    }
    let (ca_pem, cert, key) = test_certificates();
    let server = SmtpServer::start(&[
        "--tls",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        "--auth",
        "sesame:relay-pass",
    ]);
    let db = sqlite().await;
    let clock = clock();
    let mut config = smtp_config(server.port, SmtpSecurity::Starttls);
    config.host = "localhost".to_owned();
    config.username = Some("sesame".to_owned());
    config.password = Some("relay-pass".to_owned());

    // Without the relay's CA the certificate is refused and nothing (no password) is sent.
    let untrusting = worker(&db.db, smtp(config.clone()), &clock, &[60]);
    let id = queue_notice(&mailer(&db, &clock), "alice@univ.example").await;
    assert_eq!(untrusting.run_once().await.unwrap(), report(0, 1, 0));
    assert!(server.received().is_empty());
    assert_eq!(status(&db.db, id).await.attempts, 1);

    config.ca_pem = Some(ca_pem.into_bytes());
    let trusting = worker(&db.db, smtp(config), &clock, &[60]);
    clock.advance(time::Duration::seconds(60));
    assert_eq!(trusting.run_once().await.unwrap(), report(1, 0, 0));
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].envelope["encrypted"], true);
    assert_eq!(received[0].envelope["authenticated"], true);
    std::fs::remove_dir_all(cert.parent().unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_refused_for_good_is_given_up_at_once() {
    if !SmtpServer::available() {
        return;
    }
    let server = SmtpServer::start(&["--reject", "nobody"]);
    let db = sqlite().await;
    let clock = clock();
    let worker = worker(
        &db.db,
        smtp(smtp_config(server.port, SmtpSecurity::None)),
        &clock,
        &[60, 300],
    );
    let mailer = mailer(&db, &clock);
    let refused = queue_notice(&mailer, "nobody.here@univ.example").await;
    let accepted = queue_notice(&mailer, "alice@univ.example").await;
    assert_eq!(worker.run_once().await.unwrap(), report(1, 0, 1));
    let failed = status(&db.db, refused).await;
    assert_eq!(failed.status(), MailStatus::Failed);
    assert_eq!(failed.attempts, 1);
    let error = failed.last_error.unwrap();
    assert!(error.contains("550"), "{error}");
    assert!(
        !error.contains("nobody.here"),
        "the address is scrubbed: {error}"
    );
    assert!(error.contains("…@univ.example"), "{error}");
    assert_eq!(status(&db.db, accepted).await.status(), MailStatus::Sent);
    assert_eq!(server.received().len(), 1);
}

async fn an_smtp_outage_loses_nothing(db: Db) {
    if !SmtpServer::available() {
        return;
    }
    let port = closed_port();
    let clock = clock();
    let worker = worker(
        &db.db,
        smtp(smtp_config(port, SmtpSecurity::None)),
        &clock,
        &[60, 300],
    );
    let mailer = mailer(&db, &clock);
    let first = queue_notice(&mailer, "alice@univ.example").await;
    let second = queue_notice(&mailer, "bob@univ.example").await;

    // The server is down: both stay queued, one attempt counted each.
    assert_eq!(worker.run_once().await.unwrap(), report(0, 2, 0));
    for id in [first, second] {
        let mail = status(&db.db, id).await;
        assert_eq!(mail.status(), MailStatus::Pending);
        assert_eq!(mail.attempts, 1);
        assert!(
            mail.last_error.as_deref().unwrap().contains("unavailable"),
            "{:?}",
            mail.last_error
        );
    }
    // Not due yet: another pass does nothing, even with the server back.
    let server = SmtpServer::start_on(port, &[]);
    assert_eq!(worker.run_once().await.unwrap(), report(0, 0, 0));
    // At the retry time, the later pass delivers both.
    clock.advance(time::Duration::seconds(60));
    assert_eq!(worker.run_once().await.unwrap(), report(2, 0, 0));
    let received = server.received();
    assert_eq!(received.len(), 2);
    let recipients: Vec<_> = received
        .iter()
        .map(|r| r.envelope["rcpt_tos"][0].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(recipients, ["alice@univ.example", "bob@univ.example"]);
    for id in [first, second] {
        let mail = status(&db.db, id).await;
        assert_eq!(mail.status(), MailStatus::Sent);
        assert_eq!(mail.attempts, 2);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f15_an_smtp_outage_loses_nothing_and_a_later_pass_delivers_on_sqlite() {
    an_smtp_outage_loses_nothing(sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn f15_an_smtp_outage_loses_nothing_and_a_later_pass_delivers_on_postgres() {
    let Some(db) = postgres().await else {
        return;
    };
    an_smtp_outage_loses_nothing(db).await;
}

/// A throwaway CA (PEM) and a certificate for `localhost` it signed, written to files.
fn test_certificates() -> (String, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Sesame test relay CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let dir = temp_dir("smtp-tls");
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    write(&cert, &leaf.pem());
    write(&key, &leaf_key.serialize_pem());
    (ca.pem(), cert, key)
}

fn write(path: &Path, text: &str) {
    std::fs::File::create(path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}
