//! The core's `SmsSender` port over a gateway: each SMS is sent on a background task, so the
//! flow that queued it answers at once whatever the provider does (security spec A48, F16).
//!
//! A gateway that is down is tried again, with growing pauses, for a bounded time
//! ([`DEFAULT_RETRY_WINDOW`], five minutes: half the ten-minute life of an SMS code, so a code
//! that arrives late still leaves the person time to type it). The code's lifetime is never
//! extended for a slow gateway: past the window the SMS is dropped and logged, and the person
//! asks for a new code. A message the provider refuses (a 4xx answer) is not tried again.
//! The retries live in this process: an SMS whose instance stops while waiting is lost, which
//! the same request made again repairs (an SMS is never the only copy of anything).

use std::sync::Arc;
use std::time::Duration;

use sesame_core::sms::{mask_phone, SmsMessage, SmsQueueError, SmsSender};

use crate::gateway::{SmsGateway, SmsGatewayError};

/// How long an SMS is tried again while the gateway is down, by default.
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(300);
/// First pause before trying again; each pause doubles, up to [`MAX_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_secs(1);
/// Longest pause between two tries.
const MAX_PAUSE: Duration = Duration::from_secs(30);

/// Sends each queued SMS through `gateway` on a task of the current Tokio runtime.
#[derive(Debug, Clone)]
pub struct BackgroundSmsSender {
    gateway: Arc<dyn SmsGateway>,
    retry_window: Duration,
}

impl BackgroundSmsSender {
    /// A sender over `gateway`, trying again for [`DEFAULT_RETRY_WINDOW`].
    pub fn new(gateway: Arc<dyn SmsGateway>) -> Self {
        Self {
            gateway,
            retry_window: DEFAULT_RETRY_WINDOW,
        }
    }

    /// Tries a failed SMS again for at most `window` after it was queued (zero: one try).
    #[must_use]
    pub fn retrying_for(mut self, window: Duration) -> Self {
        self.retry_window = window;
        self
    }
}

/// Sends `message`, trying again on [`SmsGatewayError::Unavailable`] until `window` has passed.
async fn send_with_retries(gateway: &dyn SmsGateway, message: &SmsMessage, window: Duration) {
    let started = tokio::time::Instant::now();
    let deadline = started + window;
    let mut pause = FIRST_PAUSE;
    let mut tries = 0_u32;
    loop {
        tries += 1;
        let error = match gateway.send(message).await {
            Ok(()) => {
                sesame_metrics::sms("sent");
                tracing::info!(
                    sms.to = %mask_phone(message.to.as_str()),
                    sms.gateway = gateway.name(),
                    sms.tries = tries,
                    "SMS handed to the gateway"
                );
                return;
            }
            Err(e) => e,
        };
        let next_try = tokio::time::Instant::now() + pause;
        let again = matches!(error, SmsGatewayError::Unavailable(_)) && next_try <= deadline;
        if !again {
            sesame_metrics::sms("failed");
            tracing::warn!(
                sms.to = %mask_phone(message.to.as_str()),
                sms.gateway = gateway.name(),
                sms.tries = tries,
                error = %error,
                "SMS not sent"
            );
            return;
        }
        sesame_metrics::sms("retried");
        tracing::info!(
            sms.to = %mask_phone(message.to.as_str()),
            sms.gateway = gateway.name(),
            sms.tries = tries,
            error = %error,
            retry_in_ms = u64::try_from(pause.as_millis()).unwrap_or(u64::MAX),
            "SMS gateway failed; trying again"
        );
        tokio::time::sleep_until(next_try).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

impl SmsSender for BackgroundSmsSender {
    fn queue(&self, message: SmsMessage) -> Result<(), SmsQueueError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| SmsQueueError(format!("no runtime to send on: {e}")))?;
        let gateway = Arc::clone(&self.gateway);
        let window = self.retry_window;
        runtime.spawn(async move { send_with_retries(gateway.as_ref(), &message, window).await });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    use async_trait::async_trait;
    use sesame_core::ids::MobilePhone;

    use super::*;

    /// A gateway that fails its first `failures` calls with `error`, then accepts.
    #[derive(Debug)]
    struct Flaky {
        failures: u32,
        refuse: bool,
        calls: AtomicU32,
        sent: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl SmsGateway for Flaky {
        async fn send(&self, message: &SmsMessage) -> Result<(), SmsGatewayError> {
            let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
            if call <= self.failures {
                return Err(if self.refuse {
                    SmsGatewayError::Refused("400".into())
                } else {
                    SmsGatewayError::Unavailable("connection refused".into())
                });
            }
            self.sent
                .lock()
                .expect("not poisoned")
                .push(message.text.clone());
            Ok(())
        }

        fn name(&self) -> &'static str {
            "flaky"
        }
    }

    fn flaky(failures: u32, refuse: bool) -> Arc<Flaky> {
        Arc::new(Flaky {
            failures,
            refuse,
            calls: AtomicU32::new(0),
            sent: Mutex::new(Vec::new()),
        })
    }

    fn message() -> SmsMessage {
        SmsMessage {
            to: MobilePhone::parse("+33612345678").expect("valid number"),
            text: "Code 123456".to_owned(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unavailable_gateway_is_tried_again_with_growing_pauses_until_it_works() {
        let gateway = flaky(4, false);
        let started = tokio::time::Instant::now();
        send_with_retries(gateway.as_ref(), &message(), DEFAULT_RETRY_WINDOW).await;
        assert_eq!(gateway.calls.load(Ordering::SeqCst), 5);
        assert_eq!(*gateway.sent.lock().expect("not poisoned"), ["Code 123456"]);
        // Pauses of 1, 2, 4 and 8 s (the clock is Tokio's paused test clock).
        assert_eq!(started.elapsed(), Duration::from_secs(15));
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_end_of_the_window() {
        let gateway = flaky(u32::MAX, false);
        let started = tokio::time::Instant::now();
        send_with_retries(gateway.as_ref(), &message(), Duration::from_secs(60)).await;
        // Tries at 0, 1, 3, 7, 15, 31 s; the next (61 s) would be past the window.
        assert_eq!(gateway.calls.load(Ordering::SeqCst), 6);
        assert!(gateway.sent.lock().expect("not poisoned").is_empty());
        assert_eq!(started.elapsed(), Duration::from_secs(31));
    }

    #[tokio::test(start_paused = true)]
    async fn a_refused_message_is_not_tried_again() {
        let gateway = flaky(1, true);
        send_with_retries(gateway.as_ref(), &message(), DEFAULT_RETRY_WINDOW).await;
        assert_eq!(gateway.calls.load(Ordering::SeqCst), 1);
        assert!(gateway.sent.lock().expect("not poisoned").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_window_means_one_try() {
        let gateway = flaky(1, false);
        send_with_retries(gateway.as_ref(), &message(), Duration::ZERO).await;
        assert_eq!(gateway.calls.load(Ordering::SeqCst), 1);
    }
}
