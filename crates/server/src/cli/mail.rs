//! `sesame mail …`: look at the outgoing mail queue, deliver it now, requeue a failed mail,
//! send a test mail.

use anyhow::{bail, Context};
use clap::Subcommand;
use sesame_core::error::RepoError;
use sesame_core::i18n::Lang;
use sesame_core::ids::Email;
use sesame_core::mail::{MailId, MailMessage, MailStatus, QueuedMail};

use crate::config::Settings;
use crate::services::Services;

/// `sesame mail …`
#[derive(Debug, Subcommand)]
pub enum MailAction {
    /// How many mails are pending, sent and failed, and where mail goes.
    Status,
    /// The most recent mails, newest first (never their bodies).
    List {
        /// Only `pending`, `sent` or `failed` mails.
        #[arg(long)]
        status: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Deliver every mail due now, once, and report what happened.
    Deliver,
    /// Make a failed mail pending again (due now, attempts from zero); the server's worker,
    /// or `sesame mail deliver`, sends it.
    Retry {
        /// The mail's id (from `sesame mail list --status failed`).
        id: String,
    },
    /// Queue a test mail to ADDRESS and deliver it now, to check the settings.
    Test {
        /// The recipient.
        address: String,
        /// Language of the mail: fr or en.
        #[arg(long, default_value = "fr")]
        lang: String,
    },
}

/// Runs a `sesame mail` command.
///
/// # Errors
/// Anything that makes the command fail; the message is for the operator.
pub async fn run(
    settings: &Settings,
    services: &Services,
    action: MailAction,
) -> anyhow::Result<()> {
    let mail = &services.mail;
    match action {
        MailAction::Status => {
            let counts = mail.queue.mail_counts().await?;
            println!("transport: {}", describe_transport(settings));
            println!("pending:   {}", counts.pending);
            println!("sent:      {}", counts.sent);
            println!("failed:    {}", counts.failed);
        }
        MailAction::List { status, limit } => {
            let status = status
                .as_deref()
                .map(str::parse::<MailStatus>)
                .transpose()
                .map_err(|e| anyhow::anyhow!("--status: {e}"))?;
            for m in mail.queue.list_mails(status, limit).await? {
                print_mail(&m);
            }
        }
        MailAction::Deliver => {
            let report = mail.worker.run_once().await?;
            println!(
                "{} sent, {} to retry, {} given up ({})",
                report.sent,
                report.retried,
                report.failed,
                describe_transport(settings)
            );
        }
        MailAction::Retry { id } => {
            let id: MailId = id.parse().context("not a mail id")?;
            match mail.queue.requeue(id, services.clock.now()).await {
                Ok(()) => println!("{id} is pending again"),
                Err(RepoError::NotFound) => bail!("no failed mail {id}"),
                Err(e) => return Err(e.into()),
            }
        }
        MailAction::Test { address, lang } => {
            let to = Email::parse(&address).context("not an e-mail address")?;
            let lang = Lang::from_tag(&lang).context("--lang must be fr or en")?;
            let id = mail
                .mailer
                .send(MailMessage::test(to, lang, services.clock.now()))
                .await?;
            let report = mail.worker.run_once().await?;
            let Some(sent) = mail.queue.find_mail(id).await? else {
                bail!("the test mail {id} vanished from the queue");
            };
            match sent.status() {
                MailStatus::Sent => {
                    println!("test mail {id} sent ({})", describe_transport(settings));
                }
                status => bail!(
                    "test mail {id} not delivered ({status}, {} other mail(s) sent): {}",
                    report.sent.saturating_sub(1),
                    sent.last_error.as_deref().unwrap_or("no error recorded")
                ),
            }
        }
    }
    Ok(())
}

fn describe_transport(settings: &Settings) -> String {
    let m = &settings.mail;
    match m.transport {
        sesame_mail::transport::TransportKind::Outbox => format!("outbox {}", m.outbox_dir),
        sesame_mail::transport::TransportKind::Smtp => {
            let port = if m.smtp_port == 0 {
                m.smtp_security.default_port()
            } else {
                m.smtp_port
            };
            format!("smtp {}:{port}", m.smtp_host)
        }
    }
}

fn print_mail(m: &QueuedMail) {
    let when = match m.status() {
        MailStatus::Sent => m.sent_at,
        MailStatus::Failed => m.failed_at,
        MailStatus::Pending => Some(m.next_attempt_at),
    }
    .map(rfc3339)
    .unwrap_or_default();
    println!(
        "{}  {:<7} {}  {}  to {}  attempts {}  created {}{}",
        m.id,
        m.status().as_str(),
        when,
        m.mail.kind,
        m.mail.to,
        m.attempts,
        rfc3339(m.created_at),
        m.last_error
            .as_deref()
            .map(|e| format!("\n    last error: {e}"))
            .unwrap_or_default()
    );
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
