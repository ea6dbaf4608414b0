//! Recovery on the ephemeral store: one-time links, SMS codes and the per-account session
//! listing, the same bodies on `MemoryStore` and `RedisStore` (A49, A50, C07).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sesame_core::clock::{Clock, ManualClock};
use sesame_core::ids::{AccountId, LoginName, MobilePhone};
use sesame_core::login::methods::Authentication;
use sesame_core::ports::EphemeralStore;
use sesame_core::session::{SessionManager, SessionPolicy};
use sesame_core::sms::{SmsMessage, SmsQueueError, SmsSender};
use sesame_lifecycle::recovery::codes::{CodePurpose, SmsCodes};
use sesame_lifecycle::recovery::links::{LinkPurpose, OneTimeLinks};
use sesame_lifecycle::recovery::{RecoveryPolicy, Refusal};
use sesame_store::testing::{random_prefix, skip_or_fail, test_redis_url};
use sesame_store::RedisStore;
use time::macros::datetime;

/// Keeps the SMS it is given.
#[derive(Debug, Default)]
struct CapturedSms(Mutex<Vec<SmsMessage>>);

impl SmsSender for CapturedSms {
    fn queue(&self, message: SmsMessage) -> Result<(), SmsQueueError> {
        self.0.lock().unwrap().push(message);
        Ok(())
    }
}

impl CapturedSms {
    fn last_code(&self) -> String {
        let sent = self.0.lock().unwrap();
        sent.last().unwrap().text.clone()
    }
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::starting_at(datetime!(2026-11-28 10:00 UTC)))
}

async fn redis_store() -> Option<RedisStore> {
    match RedisStore::connect(&test_redis_url(), &random_prefix(), Duration::from_secs(2)).await {
        Ok(store) => Some(store),
        Err(e) => {
            skip_or_fail("Redis", &e);
            None
        }
    }
}

macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name(std::sync::Arc::new(sesame_store::MemoryStore::new())).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some(store) = super::redis_store().await else {
                        return;
                    };
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

on_both_stores!(
    a_link_is_checked_without_being_used_and_consumed_once,
    a_link_expires_and_a_newer_one_supersedes_it,
    exactly_one_of_20_concurrent_consumers_gets_a_link,
    a_link_of_one_purpose_does_not_work_for_another,
    a_code_is_single_use_and_spent_after_the_allowed_tries,
    a_code_expires_and_an_unknown_account_never_matches,
    the_daily_sms_budgets_stop_sending,
    sessions_of_an_account_are_listed_and_closed_one_by_one,
);

async fn a_link_is_checked_without_being_used_and_consumed_once(store: Arc<dyn EphemeralStore>) {
    let links = OneTimeLinks::new(store, clock());
    let account = AccountId::new_random();
    let (token, _) = links
        .issue(
            LinkPurpose::PasswordReset,
            account,
            "",
            false,
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    for _ in 0..2 {
        let record = links
            .check(LinkPurpose::PasswordReset, &token)
            .await
            .unwrap();
        assert_eq!(record.unwrap().account_id, account);
    }
    assert!(links
        .consume(LinkPurpose::PasswordReset, &token)
        .await
        .unwrap()
        .is_ok());
    assert_eq!(
        links
            .consume(LinkPurpose::PasswordReset, &token)
            .await
            .unwrap(),
        Err(Refusal::Unknown)
    );
    assert_eq!(
        links
            .check(LinkPurpose::PasswordReset, "forged")
            .await
            .unwrap(),
        Err(Refusal::Unknown)
    );
}

async fn a_link_expires_and_a_newer_one_supersedes_it(store: Arc<dyn EphemeralStore>) {
    let clock = clock();
    let links = OneTimeLinks::new(store, clock.clone());
    let account = AccountId::new_random();
    let ttl = Duration::from_secs(3600);
    let (older, _) = links
        .issue(LinkPurpose::PasswordReset, account, "", false, ttl)
        .await
        .unwrap();
    let (newer, expires_at) = links
        .issue(LinkPurpose::PasswordReset, account, "", false, ttl)
        .await
        .unwrap();
    assert_eq!(expires_at, clock.now() + ttl);
    assert_eq!(
        links
            .check(LinkPurpose::PasswordReset, &older)
            .await
            .unwrap(),
        Err(Refusal::Superseded)
    );
    assert!(links
        .check(LinkPurpose::PasswordReset, &newer)
        .await
        .unwrap()
        .is_ok());
    clock.advance(time::Duration::seconds(3600));
    assert_eq!(
        links
            .consume(LinkPurpose::PasswordReset, &newer)
            .await
            .unwrap(),
        Err(Refusal::Expired)
    );
}

async fn exactly_one_of_20_concurrent_consumers_gets_a_link(store: Arc<dyn EphemeralStore>) {
    let links = OneTimeLinks::new(store, clock());
    let (token, _) = links
        .issue(
            LinkPurpose::PasswordReset,
            AccountId::new_random(),
            "",
            false,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let tries = (0..20).map(|_| {
        let links = links.clone();
        let token = token.clone();
        tokio::spawn(async move { links.consume(LinkPurpose::PasswordReset, &token).await })
    });
    let results = results_of(tries).await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
}

async fn results_of<T: Send + 'static>(
    handles: impl Iterator<
        Item = tokio::task::JoinHandle<Result<Result<T, Refusal>, sesame_core::error::StoreError>>,
    >,
) -> Vec<Result<T, Refusal>> {
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}

async fn a_link_of_one_purpose_does_not_work_for_another(store: Arc<dyn EphemeralStore>) {
    let links = OneTimeLinks::new(store, clock());
    let (token, _) = links
        .issue(
            LinkPurpose::RecoveryEmail,
            AccountId::new_random(),
            "new@example.org",
            false,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(
        links
            .consume(LinkPurpose::PasswordReset, &token)
            .await
            .unwrap(),
        Err(Refusal::Unknown)
    );
    let record = links
        .consume(LinkPurpose::RecoveryEmail, &token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.payload, "new@example.org");
}

fn codes(
    store: Arc<dyn EphemeralStore>,
    clock: Arc<ManualClock>,
    sms: Arc<CapturedSms>,
) -> SmsCodes {
    SmsCodes::new(store, clock, sms, RecoveryPolicy::default())
}

async fn a_code_is_single_use_and_spent_after_the_allowed_tries(store: Arc<dyn EphemeralStore>) {
    let sms = Arc::new(CapturedSms::default());
    let codes = codes(store, clock(), sms.clone());
    let account = AccountId::new_random();
    let number = MobilePhone::parse("+33612345678").unwrap();
    let (request, sent) = codes
        .start(
            CodePurpose::PasswordReset,
            Some((account, &number)),
            "{code}",
        )
        .await
        .unwrap();
    assert!(sent);
    let code = sms.last_code();
    assert_eq!(code.len(), 6);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let record = codes
        .verify(CodePurpose::PasswordReset, &request, &code)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.account_id, Some(account));
    assert_eq!(
        codes
            .verify(CodePurpose::PasswordReset, &request, &code)
            .await
            .unwrap(),
        Err(Refusal::Unknown),
        "single use"
    );

    let (request, _) = codes
        .start(
            CodePurpose::PasswordReset,
            Some((account, &number)),
            "{code}",
        )
        .await
        .unwrap();
    let code = sms.last_code();
    for _ in 0..5 {
        assert_eq!(
            codes
                .verify(CodePurpose::PasswordReset, &request, wrong)
                .await
                .unwrap(),
            Err(Refusal::WrongCode)
        );
    }
    assert!(
        codes
            .verify(CodePurpose::PasswordReset, &request, &code)
            .await
            .unwrap()
            .is_err(),
        "the sixth try is refused even with the right code"
    );
    // A code of one purpose never serves another.
    let (request, _) = codes
        .start(
            CodePurpose::MobileVerification,
            Some((account, &number)),
            "{code}",
        )
        .await
        .unwrap();
    let code = sms.last_code();
    assert!(codes
        .verify(CodePurpose::PasswordReset, &request, &code)
        .await
        .unwrap()
        .is_err());
}

async fn a_code_expires_and_an_unknown_account_never_matches(store: Arc<dyn EphemeralStore>) {
    let clock = clock();
    let sms = Arc::new(CapturedSms::default());
    let codes = codes(store, clock.clone(), sms.clone());
    let number = MobilePhone::parse("0612345678").unwrap();
    let (request, _) = codes
        .start(
            CodePurpose::PasswordReset,
            Some((AccountId::new_random(), &number)),
            "{code}",
        )
        .await
        .unwrap();
    let code = sms.last_code();
    clock.advance(time::Duration::seconds(600));
    assert_eq!(
        codes
            .verify(CodePurpose::PasswordReset, &request, &code)
            .await
            .unwrap(),
        Err(Refusal::Expired)
    );
    let (request, sent) = codes
        .start(CodePurpose::PasswordReset, None, "{code}")
        .await
        .unwrap();
    assert!(!sent);
    assert_eq!(sms.count(), 1);
    for guess in ["000000", "123456", "999999"] {
        assert!(codes
            .verify(CodePurpose::PasswordReset, &request, guess)
            .await
            .unwrap()
            .is_err());
    }
}

async fn the_daily_sms_budgets_stop_sending(store: Arc<dyn EphemeralStore>) {
    let clock = clock();
    let sms = Arc::new(CapturedSms::default());
    let codes = codes(store, clock.clone(), sms.clone());
    let account = AccountId::new_random();
    let number = MobilePhone::parse(&format!("+3361{}", sesame_core::random::digits(7))).unwrap();
    for _ in 0..7 {
        codes
            .start(
                CodePurpose::PasswordReset,
                Some((account, &number)),
                "{code}",
            )
            .await
            .unwrap();
    }
    assert_eq!(
        sms.count(),
        RecoveryPolicy::default().sms_per_number_per_day as usize
    );
    clock.advance(time::Duration::hours(25));
    let (_, sent) = codes
        .start(
            CodePurpose::PasswordReset,
            Some((account, &number)),
            "{code}",
        )
        .await
        .unwrap();
    assert!(sent, "a new day, a new budget");
}

async fn sessions_of_an_account_are_listed_and_closed_one_by_one(store: Arc<dyn EphemeralStore>) {
    let sessions = SessionManager::new(store, clock(), SessionPolicy::default());
    let account = AccountId::new_random();
    let login = LoginName::parse("jean.dupont").unwrap();
    let pwd = || Authentication::password_at(clock().now());
    let first = sessions
        .open(account, login.clone(), false, pwd())
        .await
        .unwrap();
    let second = sessions
        .open(account, login.clone(), true, pwd())
        .await
        .unwrap();
    let other = sessions
        .open(AccountId::new_random(), login, false, pwd())
        .await
        .unwrap();
    let listed = sessions.sessions_of(account).await.unwrap();
    assert_eq!(listed.len(), 2);
    let second_handle = sesame_core::session::session_handle(&second.cookie_value);
    assert!(listed
        .iter()
        .any(|(h, s)| *h == second_handle && s.remember_me));

    // Another account's session cannot be closed through this account.
    let other_handle = sesame_core::session::session_handle(&other.cookie_value);
    assert!(sessions
        .close_handle(account, &other_handle)
        .await
        .unwrap()
        .is_none());
    assert!(sessions.get(&other.cookie_value).await.unwrap().is_some());

    assert!(sessions
        .close_handle(account, &second_handle)
        .await
        .unwrap()
        .is_some());
    assert!(sessions.get(&second.cookie_value).await.unwrap().is_none());
    let listed = sessions.sessions_of(account).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(sessions.get(&first.cookie_value).await.unwrap().is_some());
}
