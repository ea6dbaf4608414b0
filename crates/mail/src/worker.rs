//! [`MailWorker`]: claims due mails from the queue, hands them to the transport, and records
//! the outcome (sent; retried later with backoff; given up, kept and marked failed).
//!
//! Several instances may each run a worker on one database: a claim leases the mail to one
//! worker (see the `MailQueue` port). Within one process, passes never overlap.

use std::sync::Arc;
use std::time::Duration;

use sesame_core::clock::Clock;
use sesame_core::error::RepoError;
use sesame_core::mail::{email_domain, scrub_error, QueuedMail, RetryPolicy};
use sesame_core::ports::MailQueue;
use tokio::sync::{Mutex, Notify};

use crate::error::TransportError;
use crate::transport::MailTransport;

/// Most batches one pass handles (a bound, should mails keep becoming due).
const MAX_BATCHES_PER_PASS: usize = 100;

/// How the worker paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerSettings {
    /// Mails claimed at once.
    pub batch_size: usize,
    /// When failed deliveries are tried again.
    pub retry: RetryPolicy,
    /// The budget of one delivery (the transport's timeout); a claim is leased for a whole
    /// batch of them, plus a minute.
    pub delivery_timeout: Duration,
}

impl WorkerSettings {
    /// How long a claimed batch stays leased to this worker: long enough to deliver every
    /// mail in it even if each takes the whole timeout (otherwise another instance could send
    /// a mail a second time).
    pub fn lease(&self) -> Duration {
        let batch = u32::try_from(self.batch_size.max(1)).unwrap_or(u32::MAX);
        self.delivery_timeout
            .saturating_mul(batch)
            .saturating_add(Duration::from_secs(60))
    }
}

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    /// Mails the transport accepted.
    pub sent: usize,
    /// Mails that failed and will be tried again.
    pub retried: usize,
    /// Mails given up (kept, marked failed).
    pub failed: usize,
}

impl DeliveryReport {
    /// Whether the pass touched no mail.
    pub fn is_empty(&self) -> bool {
        self.sent == 0 && self.retried == 0 && self.failed == 0
    }
}

/// Wakes a worker so it runs a pass now rather than at its next tick.
#[derive(Debug, Clone)]
pub struct MailWaker(Arc<Notify>);

impl MailWaker {
    /// Asks for a pass (remembered if the worker is busy).
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// Delivers queued mail. Cheap to clone: clones share the queue, transport and pass lock.
#[derive(Debug, Clone)]
pub struct MailWorker {
    queue: Arc<dyn MailQueue>,
    transport: Arc<dyn MailTransport>,
    clock: Arc<dyn Clock>,
    settings: Arc<WorkerSettings>,
    wake: Arc<Notify>,
    pass: Arc<Mutex<()>>,
}

impl MailWorker {
    /// A worker over `queue`, delivering through `transport`.
    pub fn new(
        queue: Arc<dyn MailQueue>,
        transport: Arc<dyn MailTransport>,
        clock: Arc<dyn Clock>,
        settings: WorkerSettings,
    ) -> Self {
        Self {
            queue,
            transport,
            clock,
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
            pass: Arc::new(Mutex::new(())),
        }
    }

    /// A handle that wakes this worker.
    pub fn waker(&self) -> MailWaker {
        MailWaker(Arc::clone(&self.wake))
    }

    /// Delivers every mail due now, batch after batch, and returns what happened. Stops
    /// early when the transport is unavailable (the rest waits for its retry time).
    ///
    /// # Errors
    /// [`RepoError`] if the queue fails; mails already handled keep their outcome.
    pub async fn run_once(&self) -> Result<DeliveryReport, RepoError> {
        let _pass = self.pass.lock().await;
        let mut report = DeliveryReport::default();
        for _ in 0..MAX_BATCHES_PER_PASS {
            let batch = self
                .queue
                .claim_due(
                    self.clock.now(),
                    self.settings.batch_size.max(1),
                    self.settings.lease(),
                )
                .await?;
            if batch.is_empty() {
                break;
            }
            let mut unavailable: Option<TransportError> = None;
            for mail in batch {
                let outcome = match &unavailable {
                    // The transport just failed: count this claim as a failed attempt too
                    // rather than wait for another timeout.
                    Some(e) => Err(e.clone()),
                    None => self.transport.deliver(&mail).await,
                };
                if let Err(e @ TransportError::Unavailable(_)) = &outcome {
                    unavailable = Some(e.clone());
                }
                self.record(&mail, outcome, &mut report).await?;
            }
            if unavailable.is_some() {
                break;
            }
        }
        // What an alert on a stuck queue reads (mail that cannot leave waits, never lost).
        match self.queue.oldest_pending().await {
            Ok(oldest) => {
                let age = oldest.map_or(0, |at| (self.clock.now() - at).whole_seconds().max(0));
                #[expect(
                    clippy::cast_precision_loss,
                    reason = "seconds of a mail's wait fit in f64"
                )]
                sesame_metrics::mail_queue_oldest(age as f64);
            }
            Err(e) => tracing::warn!(error = %e, "could not read the age of the mail queue"),
        }
        Ok(report)
    }

    async fn record(
        &self,
        mail: &QueuedMail,
        outcome: Result<(), TransportError>,
        report: &mut DeliveryReport,
    ) -> Result<(), RepoError> {
        let span = tracing::info_span!(
            "mail.deliver",
            mail.id = %mail.id,
            mail.kind = %mail.mail.kind,
            mail.to_domain = %email_domain(mail.mail.to.as_str()),
            mail.attempt = mail.attempts,
            mail.transport = self.transport.name(),
        );
        let _entered = span.enter();
        let now = self.clock.now();
        let error = match outcome {
            Ok(()) => {
                self.queue.mark_sent(mail.id, now).await?;
                report.sent += 1;
                sesame_metrics::mail("sent");
                tracing::info!("mail sent");
                return Ok(());
            }
            Err(e) => e,
        };
        let permanent = matches!(error, TransportError::Permanent(_));
        let message = scrub_error(&error.to_string(), &mail.mail.to);
        let retry_at = if permanent {
            None
        } else {
            self.settings.retry.next_attempt(mail.attempts, now)
        };
        match retry_at {
            Some(at) => {
                self.queue.schedule_retry(mail.id, at, &message).await?;
                report.retried += 1;
                sesame_metrics::mail("retried");
                tracing::warn!(error = %message, mail.retry_at = %at, "mail not delivered; will retry");
            }
            None => {
                self.queue.mark_failed(mail.id, now, &message).await?;
                report.failed += 1;
                sesame_metrics::mail("failed");
                tracing::error!(error = %message, "mail given up; kept in the queue as failed");
            }
        }
        Ok(())
    }

    /// Runs a pass every `interval`, and at once when woken, until the runtime stops.
    pub fn spawn(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let worker = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(interval);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    () = worker.wake.notified() => {}
                }
                match worker.run_once().await {
                    Ok(report) if report.is_empty() => {}
                    Ok(report) => tracing::debug!(
                        sent = report.sent,
                        retried = report.retried,
                        failed = report.failed,
                        "mail pass done"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "mail queue unavailable; next pass will retry")
                    }
                }
            }
        })
    }
}
