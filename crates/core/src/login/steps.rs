//! What happens between "the login began" and "the session opens", as data: the
//! authentication steps (the password today, a second factor next), the required actions
//! (accepting a new IT charter) and the consent an OpenID Connect client needs. Each step says whether it is due for an account and a
//! transaction; the order is a [`LoginPlan`], not a chain of `if`s. After every step the
//! server asks the plan again (rather than trusting the list it stored), so a step done
//! elsewhere (another tab) is skipped and none is missed.
//!
//! The model is `sesame_lifecycle::activation::flow`: a pure step machine the server drives.

use serde::{Deserialize, Serialize};

use super::methods::{AuthnMethod, FactorKind};
use super::transaction::{Continuation, LoginTransaction};

/// A step of a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepId {
    /// Enter the login and password (the first factor, which identifies the account).
    Password,
    /// Prove a second factor the account enrolled (a TOTP code, or a recovery code).
    SecondFactor,
    /// Be reminded that a second factor is required and how long the grace lasts (a login
    /// without one, counted).
    SecondFactorReminder,
    /// Accept the IT charter in force (`[lifecycle.charter] version` changed).
    AcceptCharter,
    /// Consent to what the OpenID Connect client the login is for asks (OpenID Connect
    /// Core 1.0 §3.1.2.4), when no consent recorded covers it.
    Consent,
}

impl StepId {
    /// Stable name (audit detail, form field value).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::SecondFactor => "second_factor",
            Self::SecondFactorReminder => "second_factor_reminder",
            Self::AcceptCharter => "accept_charter",
            Self::Consent => "consent",
        }
    }
}

/// What the steps need to know of the account being logged in, read by the server before
/// asking the plan (fail closed: a fact that cannot be read stops the login).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountFacts {
    /// An unblock voided the password: a correct one proves nothing (it may be the one a
    /// phisher typed) and leads only to the page on setting a new one.
    pub password_voided: bool,
    /// The account has enrolled a second factor: whoever did is always asked for it.
    pub second_factor_enrolled: bool,
    /// A second factor is required of the account, which has none, and the grace period
    /// still runs: the login goes on after a reminder.
    pub second_factor_grace: bool,
    /// A charter version the account has not accepted is in force.
    pub charter_pending: bool,
    /// The OpenID Connect client this login is for needs a consent the account has not
    /// given (false for any other login).
    pub consent_pending: bool,
}

/// Why a login stops for good after a correct password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The password was voided by an unblock: the page saying how to set a new one through a
    /// verified channel (`password_reset_required.html`), nothing issued or kept.
    PasswordResetRequired,
}

/// One step: whether it is due for this account and transaction.
pub trait LoginStep {
    /// Which step this is.
    fn id(&self) -> StepId;

    /// Whether the step remains to be done.
    fn is_due(&self, facts: &AccountFacts, tx: &LoginTransaction) -> bool;
}

/// The password: due until a password factor is recorded in the transaction, or a key
/// that verified its holder (a passkey login: `user` beside `hwk`/`swk`) took its place.
#[derive(Debug, Clone, Copy)]
pub struct PasswordStep;

impl LoginStep for PasswordStep {
    fn id(&self) -> StepId {
        StepId::Password
    }
    fn is_due(&self, _facts: &AccountFacts, tx: &LoginTransaction) -> bool {
        let has = |m: AuthnMethod| tx.factors.iter().any(|f| f.method == m);
        let passkey = (has(AuthnMethod::Hwk) || has(AuthnMethod::Swk)) && has(AuthnMethod::User);
        !has(AuthnMethod::Pwd) && !passkey
    }
}

/// The second factor: due for an account that enrolled one, until a possession factor (a
/// TOTP code, a key) is recorded in the transaction.
#[derive(Debug, Clone, Copy)]
pub struct SecondFactorStep;

impl LoginStep for SecondFactorStep {
    fn id(&self) -> StepId {
        StepId::SecondFactor
    }
    fn is_due(&self, facts: &AccountFacts, tx: &LoginTransaction) -> bool {
        facts.second_factor_enrolled
            && !tx
                .factors
                .iter()
                .any(|f| f.method.factor() == FactorKind::Possession)
    }
}

/// The reminder: due while a required second factor is missing and its grace runs.
#[derive(Debug, Clone, Copy)]
pub struct SecondFactorReminderStep;

impl LoginStep for SecondFactorReminderStep {
    fn id(&self) -> StepId {
        StepId::SecondFactorReminder
    }
    fn is_due(&self, facts: &AccountFacts, tx: &LoginTransaction) -> bool {
        facts.second_factor_grace
            && !facts.second_factor_enrolled
            && !tx.acknowledged.contains(&StepId::SecondFactorReminder)
    }
}

/// The charter: due while a version the account has not accepted is in force.
#[derive(Debug, Clone, Copy)]
pub struct AcceptCharterStep;

impl LoginStep for AcceptCharterStep {
    fn id(&self) -> StepId {
        StepId::AcceptCharter
    }
    fn is_due(&self, facts: &AccountFacts, _tx: &LoginTransaction) -> bool {
        facts.charter_pending
    }
}

/// The consent: due for a login made for an OpenID Connect request whose client needs a
/// consent not given yet ([`LoginPlan::after_session`]).
#[derive(Debug, Clone, Copy)]
pub struct ConsentStep;

impl LoginStep for ConsentStep {
    fn id(&self) -> StepId {
        StepId::Consent
    }
    fn is_due(&self, facts: &AccountFacts, tx: &LoginTransaction) -> bool {
        facts.consent_pending && matches!(tx.continuation, Continuation::Oidc { .. })
    }
}

impl LoginStep for StepId {
    fn id(&self) -> StepId {
        *self
    }
    fn is_due(&self, facts: &AccountFacts, tx: &LoginTransaction) -> bool {
        match self {
            Self::Password => PasswordStep.is_due(facts, tx),
            Self::SecondFactor => SecondFactorStep.is_due(facts, tx),
            Self::SecondFactorReminder => SecondFactorReminderStep.is_due(facts, tx),
            Self::AcceptCharter => AcceptCharterStep.is_due(facts, tx),
            Self::Consent => ConsentStep.is_due(facts, tx),
        }
    }
}

/// The ordered steps of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginPlan {
    steps: Vec<StepId>,
}

impl LoginPlan {
    /// A plan of these steps, in this order.
    pub fn new(steps: Vec<StepId>) -> Self {
        Self { steps }
    }

    /// Today's plan before the session opens: the password, the second factor (for whoever
    /// enrolled one), then the charter: the required actions come after the factors, so that
    /// nothing is asked of a person before they are known to be who they say.
    pub fn standard() -> Self {
        Self::new(vec![
            StepId::Password,
            StepId::SecondFactor,
            StepId::SecondFactorReminder,
            StepId::AcceptCharter,
        ])
    }

    /// The steps once the session is open, before the protocol answers: an OpenID Connect
    /// client's consent. The login is done (a refused consent leaves the person logged in,
    /// and only the client without a code); what the transaction keeps then is that the
    /// session was opened for this request.
    pub fn after_session() -> Self {
        Self::new(vec![StepId::Consent])
    }

    /// The steps, in order.
    pub fn steps(&self) -> &[StepId] {
        &self.steps
    }

    /// The steps still due for `tx`, in order; `Err` when the login must stop for good.
    /// Nothing is asked of an account before a factor identifies it, so for a transaction
    /// not yet identified only the authentication steps can be due.
    ///
    /// # Errors
    /// [`Refusal::PasswordResetRequired`] once a correct password was given for an account
    /// whose password an unblock voided.
    pub fn due(&self, facts: &AccountFacts, tx: &LoginTransaction) -> Result<Vec<StepId>, Refusal> {
        let password_done = !StepId::Password.is_due(facts, tx);
        if password_done && facts.password_voided {
            return Err(Refusal::PasswordResetRequired);
        }
        let facts = if tx.identified.is_some() {
            *facts
        } else {
            AccountFacts::default()
        };
        Ok(self
            .steps
            .iter()
            .copied()
            .filter(|step| step.is_due(&facts, tx))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use time::OffsetDateTime;

    use super::*;
    use crate::ids::AccountId;
    use crate::login::methods::AuthnRecord;
    use crate::login::transaction::Continuation;

    const T0: OffsetDateTime = datetime!(2026-01-05 08:00 UTC);

    fn fresh() -> LoginTransaction {
        LoginTransaction::new(Continuation::LoginPage, T0)
    }

    fn after_password() -> LoginTransaction {
        let mut tx = fresh();
        tx.identified = Some(AccountId(uuid::Uuid::nil()));
        tx.factors.push(AuthnRecord::new(AuthnMethod::Pwd, T0));
        tx
    }

    #[test]
    fn a_new_login_starts_with_the_password() {
        let facts = AccountFacts {
            charter_pending: true,
            ..AccountFacts::default()
        };
        // The account is not known yet: its facts are not consulted.
        assert_eq!(
            LoginPlan::standard().due(&facts, &fresh()),
            Ok(vec![StepId::Password])
        );
    }

    #[test]
    fn nothing_is_due_after_the_password_for_a_plain_account() {
        assert_eq!(
            LoginPlan::standard().due(&AccountFacts::default(), &after_password()),
            Ok(vec![])
        );
    }

    #[test]
    fn a_pending_charter_follows_the_password() {
        let facts = AccountFacts {
            charter_pending: true,
            ..AccountFacts::default()
        };
        assert_eq!(
            LoginPlan::standard().due(&facts, &after_password()),
            Ok(vec![StepId::AcceptCharter])
        );
    }

    #[test]
    fn a_voided_password_refuses_after_a_correct_one_only() {
        let facts = AccountFacts {
            password_voided: true,
            second_factor_enrolled: true,
            second_factor_grace: false,
            charter_pending: true,
            consent_pending: true,
        };
        assert_eq!(
            LoginPlan::standard().due(&facts, &after_password()),
            Err(Refusal::PasswordResetRequired)
        );
        assert_eq!(
            LoginPlan::standard().due(&facts, &fresh()),
            Ok(vec![StepId::Password])
        );
    }

    #[test]
    fn a_consent_is_due_only_for_an_openid_connect_login_once_its_session_is_open() {
        let facts = AccountFacts {
            charter_pending: true,
            consent_pending: true,
            ..AccountFacts::default()
        };
        // A CAS or local login never asks for an OpenID Connect consent.
        assert_eq!(
            LoginPlan::after_session().due(&facts, &after_password()),
            Ok(vec![])
        );
        let mut tx = after_password();
        tx.continuation = Continuation::Oidc {
            request_id: "r".to_owned(),
            params: Vec::new(),
            requested_at: T0,
        };
        // Before the session the consent is not asked; after it, it is.
        assert_eq!(
            LoginPlan::standard().due(&facts, &tx),
            Ok(vec![StepId::AcceptCharter])
        );
        assert_eq!(
            LoginPlan::after_session().due(&facts, &tx),
            Ok(vec![StepId::Consent])
        );
        assert_eq!(StepId::Consent.as_str(), "consent");
    }

    #[test]
    fn an_enrolled_second_factor_comes_after_the_password_and_before_the_charter() {
        let facts = AccountFacts {
            second_factor_enrolled: true,
            charter_pending: true,
            ..AccountFacts::default()
        };
        assert_eq!(
            LoginPlan::standard().due(&facts, &after_password()),
            Ok(vec![StepId::SecondFactor, StepId::AcceptCharter])
        );
        // A code done: only the charter remains.
        let mut tx = after_password();
        tx.factors.push(AuthnRecord::new(AuthnMethod::Otp, T0));
        assert_eq!(
            LoginPlan::standard().due(&facts, &tx),
            Ok(vec![StepId::AcceptCharter])
        );
        assert_eq!(tx.authentication().amr(), vec!["pwd", "otp", "mfa"]);
        // Not enrolled: never asked.
        assert_eq!(
            LoginPlan::standard().due(&AccountFacts::default(), &after_password()),
            Ok(vec![])
        );
    }

    #[test]
    fn the_reminder_of_a_required_factor_is_due_once_per_login() {
        let facts = AccountFacts {
            second_factor_grace: true,
            ..AccountFacts::default()
        };
        let mut tx = after_password();
        assert_eq!(
            LoginPlan::standard().due(&facts, &tx),
            Ok(vec![StepId::SecondFactorReminder])
        );
        tx.acknowledged.push(StepId::SecondFactorReminder);
        assert_eq!(LoginPlan::standard().due(&facts, &tx), Ok(vec![]));
    }

    #[test]
    fn a_passkey_that_verified_its_holder_stands_for_the_password_and_the_second_factor() {
        let mut tx = fresh();
        tx.identified = Some(AccountId(uuid::Uuid::nil()));
        tx.factors.push(AuthnRecord::new(AuthnMethod::Swk, T0));
        let enrolled = AccountFacts {
            second_factor_enrolled: true,
            ..AccountFacts::default()
        };
        // Presence alone is not enough to stand for the password.
        assert_eq!(
            LoginPlan::standard().due(&enrolled, &tx),
            Ok(vec![StepId::Password])
        );
        tx.factors.push(AuthnRecord::new(AuthnMethod::User, T0));
        assert_eq!(LoginPlan::standard().due(&enrolled, &tx), Ok(vec![]));
        // An unblock's voided password stops a passkey login too: the person sets a new one.
        let voided = AccountFacts {
            password_voided: true,
            ..AccountFacts::default()
        };
        assert_eq!(
            LoginPlan::standard().due(&voided, &tx),
            Err(Refusal::PasswordResetRequired)
        );
    }

    #[test]
    fn the_order_is_the_plans() {
        let facts = AccountFacts {
            charter_pending: true,
            ..AccountFacts::default()
        };
        let mut tx = fresh();
        tx.identified = Some(AccountId(uuid::Uuid::nil()));
        let reversed = LoginPlan::new(vec![StepId::AcceptCharter, StepId::Password]);
        assert_eq!(
            reversed.due(&facts, &tx),
            Ok(vec![StepId::AcceptCharter, StepId::Password])
        );
        assert_eq!(StepId::AcceptCharter.id().as_str(), "accept_charter");
    }
}
