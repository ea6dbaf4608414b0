//! [`TemplatedMailer`]: the core's [`Mailer`] port, rendering with [`MailTemplates`] and
//! storing in the [`MailQueue`].

use std::sync::Arc;

use async_trait::async_trait;
use sesame_core::clock::Clock;
use sesame_core::error::MailError;
use sesame_core::mail::{email_domain, MailId, MailMessage};
use sesame_core::ports::{MailQueue, Mailer};

use crate::templates::MailTemplates;
use crate::worker::MailWaker;

/// Renders, queues, and wakes the local worker so the mail leaves within moments.
#[derive(Debug, Clone)]
pub struct TemplatedMailer {
    templates: MailTemplates,
    queue: Arc<dyn MailQueue>,
    clock: Arc<dyn Clock>,
    waker: Option<MailWaker>,
}

impl TemplatedMailer {
    /// A mailer over these templates and queue.
    pub fn new(templates: MailTemplates, queue: Arc<dyn MailQueue>, clock: Arc<dyn Clock>) -> Self {
        Self {
            templates,
            queue,
            clock,
            waker: None,
        }
    }

    /// Wakes this worker after each queued mail (otherwise the mail waits for its next pass).
    #[must_use]
    pub fn waking(mut self, waker: MailWaker) -> Self {
        self.waker = Some(waker);
        self
    }
}

#[async_trait]
impl Mailer for TemplatedMailer {
    #[tracing::instrument(
        name = "mail.enqueue",
        skip_all,
        fields(mail.kind = %message.kind, mail.to_domain = %email_domain(message.to.as_str()))
    )]
    async fn send(&self, message: MailMessage) -> Result<MailId, MailError> {
        let mail = self.templates.render(&message)?;
        let id = self.queue.enqueue(mail, self.clock.now()).await?;
        tracing::info!(mail.id = %id, "mail queued");
        sesame_metrics::mail("queued");
        if let Some(waker) = &self.waker {
            waker.wake();
        }
        Ok(id)
    }

    #[tracing::instrument(name = "mail.enqueue_many", skip_all, fields(mail.count = messages.len()))]
    async fn send_many(&self, messages: Vec<MailMessage>) -> Result<Vec<MailId>, MailError> {
        let mails = messages
            .iter()
            .map(|m| self.templates.render(m))
            .collect::<Result<Vec<_>, _>>()?;
        let ids = self.queue.enqueue_many(mails, self.clock.now()).await?;
        tracing::info!(mail.count = ids.len(), "mails queued");
        for _ in &ids {
            sesame_metrics::mail("queued");
        }
        if let Some(waker) = &self.waker {
            waker.wake();
        }
        Ok(ids)
    }
}
