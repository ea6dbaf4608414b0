//! The core's `SmsSender` port over a gateway: each SMS is sent on a background task, so the
//! flow that queued it answers at once whatever the provider does (security spec A48, F16).
//!
//! There is no retry: an SMS code lives ten minutes, and a late SMS would only show a code
//! that is about to expire (the code's lifetime is never extended for a slow gateway). The
//! person asks for a new code instead; the failure is logged.

use std::sync::Arc;

use sesame_core::sms::{mask_phone, SmsMessage, SmsQueueError, SmsSender};

use crate::gateway::SmsGateway;

/// Sends each queued SMS through `gateway` on a task of the current Tokio runtime.
#[derive(Debug, Clone)]
pub struct BackgroundSmsSender {
    gateway: Arc<dyn SmsGateway>,
}

impl BackgroundSmsSender {
    /// A sender over `gateway`.
    pub fn new(gateway: Arc<dyn SmsGateway>) -> Self {
        Self { gateway }
    }
}

impl SmsSender for BackgroundSmsSender {
    fn queue(&self, message: SmsMessage) -> Result<(), SmsQueueError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| SmsQueueError(format!("no runtime to send on: {e}")))?;
        let gateway = Arc::clone(&self.gateway);
        runtime.spawn(async move {
            match gateway.send(&message).await {
                Ok(()) => tracing::info!(
                    sms.to = %mask_phone(message.to.as_str()),
                    sms.gateway = gateway.name(),
                    "SMS handed to the gateway"
                ),
                Err(e) => tracing::warn!(
                    sms.to = %mask_phone(message.to.as_str()),
                    sms.gateway = gateway.name(),
                    error = %e,
                    "SMS not sent"
                ),
            }
        });
        Ok(())
    }
}
