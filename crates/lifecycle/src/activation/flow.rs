//! The steps of an activation, as a small state machine held server-side.
//!
//! A flow is stored in the ephemeral store under the hash of a random flow id, which the
//! browser holds. Each submission *takes* the flow (atomically: of two concurrent
//! submissions, one finds nothing), checks that the form is the current step, applies it and
//! stores the result under a **new** id. So a step cannot be skipped (the posted step must be
//! the current one), replayed (the old id is gone), or raced.

use serde::{Deserialize, Serialize};
use sesame_core::account::{Account, MailRedirect};
use sesame_core::i18n::Lang;
use sesame_core::ids::{AccountId, Affiliation};

use super::settings::ActivationPath;

/// One step of an activation, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Accept the IT charter.
    Charter,
    /// Be listed in the public directory or not.
    Directory,
    /// Recovery e-mail and mobile.
    Contacts,
    /// Type the codes sent to the recovery e-mail and the mobile (only for what the person
    /// has not already proven, e.g. by following a mailed activation link).
    Verify,
    /// Forward institutional mail, and keep a copy or not.
    Redirect,
    /// Choose the password (the last step: it activates the account).
    Password,
}

impl Step {
    /// Stable name (form field value, audit detail).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Charter => "charter",
            Self::Directory => "directory",
            Self::Contacts => "contacts",
            Self::Verify => "verify",
            Self::Redirect => "redirect",
            Self::Password => "password",
        }
    }

    /// Parses [`Step::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Charter,
            Self::Directory,
            Self::Contacts,
            Self::Verify,
            Self::Redirect,
            Self::Password,
        ]
        .into_iter()
        .find(|step| step.as_str() == s)
    }
}

/// An activation in progress: whose, by which path, where it is, and the choices made so
/// far (written to the account only when the last step succeeds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlowState {
    /// The account being activated.
    pub account_id: AccountId,
    /// Its login (shown at every step).
    pub login: String,
    /// Its affiliation (which password policy applies).
    pub affiliation: Affiliation,
    /// How the person proved who they are.
    pub path: ActivationPath,
    /// The current step.
    pub step: Step,
    /// Whether the account has an institutional mailbox (else no redirect step).
    pub has_mailbox: bool,
    /// The charter version accepted in this flow.
    pub charter_version: Option<String>,
    /// Listed in the public directory.
    pub directory_opt_in: bool,
    /// Recovery e-mail (prefilled from the import or the identity check).
    pub recovery_email: Option<String>,
    /// An address the person proved they receive at: the one the activation link was
    /// mailed to, or one whose mailed code they typed.
    pub proven_email: Option<String>,
    /// Mobile phone.
    pub mobile: Option<String>,
    /// A number the person proved they receive at (they typed the code sent to it).
    #[serde(default)]
    pub proven_mobile: Option<String>,
    /// The request of the code mailed to the recovery e-mail, while it waits to be typed.
    #[serde(default)]
    pub email_check: Option<String>,
    /// The request of the code sent by SMS to the mobile, while it waits to be typed.
    #[serde(default)]
    pub mobile_check: Option<String>,
    /// Forwarding address.
    pub mail_redirect: Option<String>,
    /// Keep a copy of forwarded mail.
    pub keep_copy: bool,
    /// For an activation by code: the stored hash of the school's code, used up when the
    /// activation completes (not when it starts, so an abandoned one can start again).
    #[serde(default)]
    pub code_hash: Option<String>,
}

impl FlowState {
    /// The step after `step` for this flow (`None` after the password).
    pub fn step_after(&self, step: Step, charter_in_force: bool) -> Option<Step> {
        let order = [
            Step::Charter,
            Step::Directory,
            Step::Contacts,
            Step::Verify,
            Step::Redirect,
            Step::Password,
        ];
        order
            .into_iter()
            .skip_while(|s| *s != step)
            .skip(1)
            .find(|s| self.applies(*s, charter_in_force))
    }

    /// The first step of this flow.
    pub fn first_step(&self, charter_in_force: bool) -> Step {
        if self.applies(Step::Charter, charter_in_force) {
            Step::Charter
        } else {
            Step::Directory
        }
    }

    fn applies(&self, step: Step, charter_in_force: bool) -> bool {
        match step {
            Step::Charter => charter_in_force,
            Step::Verify => self.email_unproven().is_some() || self.mobile_unproven().is_some(),
            Step::Redirect => self.has_mailbox,
            Step::Directory | Step::Contacts | Step::Password => true,
        }
    }

    /// The recovery e-mail, if the person has not proven it yet.
    pub fn email_unproven(&self) -> Option<&str> {
        self.recovery_email
            .as_deref()
            .filter(|e| self.proven_email.as_deref() != Some(*e))
    }

    /// The mobile, if the person has not proven it yet.
    pub fn mobile_unproven(&self) -> Option<&str> {
        self.mobile
            .as_deref()
            .filter(|m| self.proven_mobile.as_deref() != Some(*m))
    }
}

/// What the person submitted at a step.
#[derive(Debug)]
pub enum StepInput {
    /// The charter checkbox.
    Charter {
        /// Ticked.
        accepted: bool,
    },
    /// The directory choice.
    Directory {
        /// Listed.
        opt_in: bool,
    },
    /// Recovery contacts.
    Contacts {
        /// Personal e-mail.
        recovery_email: String,
        /// Mobile (may be empty).
        mobile: String,
        /// The page's language: the codes that prove them are written in it.
        lang: Lang,
    },
    /// The codes that prove the contacts.
    Verify {
        /// What the person asked for.
        action: VerifyAction,
        /// The page's language (for codes sent again).
        lang: Lang,
    },
    /// Mail forwarding.
    Redirect {
        /// Forward institutional mail at all (the box of the seed 004 form).
        forward: bool,
        /// Forwarding address (ignored unless `forward`).
        address: String,
        /// Keep a copy.
        keep_copy: bool,
    },
    /// The new password, twice.
    Password {
        /// New password.
        password: sesame_core::credentials::Password,
        /// Typed again.
        confirm: sesame_core::credentials::Password,
    },
}

impl StepInput {
    /// The step this input belongs to.
    pub fn step(&self) -> Step {
        match self {
            Self::Charter { .. } => Step::Charter,
            Self::Directory { .. } => Step::Directory,
            Self::Contacts { .. } => Step::Contacts,
            Self::Verify { .. } => Step::Verify,
            Self::Redirect { .. } => Step::Redirect,
            Self::Password { .. } => Step::Password,
        }
    }
}

/// What the person does at the [`Step::Verify`] step.
#[derive(Debug)]
pub enum VerifyAction {
    /// Checks the codes typed (an empty one for something already proven is ignored).
    Confirm {
        /// The code mailed to the recovery e-mail.
        email_code: String,
        /// The code sent by SMS to the mobile.
        mobile_code: String,
    },
    /// Sends new codes for what is not proven yet.
    Resend,
    /// Goes back to the contacts step (a mistyped address, a mobile that gets no SMS).
    Change,
}

/// Why one code of the [`Step::Verify`] step was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeProblem {
    /// Nothing was typed.
    Missing,
    /// A wrong code (it may be typed again, a few times).
    Wrong,
    /// The code has expired, was used up by wrong tries, or was never sent: ask for a new one.
    Expired,
}

/// Why a step's input was refused (the flow stays at that step).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepProblem {
    /// The charter was not ticked.
    CharterNotAccepted,
    /// The recovery e-mail is missing or not an address.
    BadRecoveryEmail,
    /// The mobile is not a phone number.
    BadMobile,
    /// The forwarding address is not an address (or is the institutional one).
    BadRedirect,
    /// A code of the contacts was not accepted (the other one may have been).
    Codes {
        /// The recovery e-mail's code, if it was not accepted.
        email: Option<CodeProblem>,
        /// The mobile's code, if it was not accepted.
        mobile: Option<CodeProblem>,
    },
    /// No code could be sent: the day's budget of the address or number is spent (or the
    /// SMS gateway refused it).
    CodesNotSent,
    /// The two passwords differ.
    PasswordsDiffer,
    /// The password breaks the policy.
    Policy(Vec<sesame_core::credentials::policy::PolicyViolation>),
}

/// The result of a step submission.
#[derive(Debug)]
pub enum Advance {
    /// The step was done; the flow continues under a new id.
    Next {
        /// The new flow id.
        flow_id: String,
    },
    /// The input was refused; the flow stays at its step under a new id.
    Rejected {
        /// The new flow id.
        flow_id: String,
        /// Why.
        problem: StepProblem,
    },
    /// New codes were sent; the flow stays at its step under a new id.
    Resent {
        /// The new flow id.
        flow_id: String,
    },
    /// The account is active.
    Done(Box<Activated>),
}

/// What an activation that completed wrote, for its confirmation page.
#[derive(Debug, Clone)]
pub struct Activated {
    /// The account, now active.
    pub account: Account,
    /// The mail redirect chosen, if any (unverified until its link is followed).
    pub mail_redirect: Option<MailRedirect>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(has_mailbox: bool) -> FlowState {
        FlowState {
            account_id: AccountId::new_random(),
            login: "a.b".to_owned(),
            affiliation: Affiliation::Staff,
            path: ActivationPath::Code,
            step: Step::Charter,
            has_mailbox,
            charter_version: None,
            directory_opt_in: false,
            recovery_email: None,
            proven_email: None,
            mobile: None,
            proven_mobile: None,
            email_check: None,
            mobile_check: None,
            mail_redirect: None,
            keep_copy: false,
            code_hash: None,
        }
    }

    #[test]
    fn steps_follow_the_seed_order_and_skip_what_does_not_apply() {
        let f = flow(true);
        assert_eq!(f.first_step(true), Step::Charter);
        assert_eq!(f.step_after(Step::Charter, true), Some(Step::Directory));
        assert_eq!(f.step_after(Step::Contacts, true), Some(Step::Redirect));
        assert_eq!(f.step_after(Step::Verify, true), Some(Step::Redirect));
        assert_eq!(f.step_after(Step::Password, true), None);
        let no_mailbox = flow(false);
        assert_eq!(no_mailbox.first_step(false), Step::Directory);
        assert_eq!(
            no_mailbox.step_after(Step::Contacts, false),
            Some(Step::Password)
        );
    }

    #[test]
    fn contacts_not_proven_yet_lead_to_the_verify_step() {
        let mut f = flow(true);
        f.recovery_email = Some("p@perso.example.com".to_owned());
        assert_eq!(f.step_after(Step::Contacts, true), Some(Step::Verify));
        // The address the link was mailed to is proven; a mobile is not.
        f.proven_email = f.recovery_email.clone();
        assert_eq!(f.step_after(Step::Contacts, true), Some(Step::Redirect));
        f.mobile = Some("0612345678".to_owned());
        assert_eq!(f.step_after(Step::Contacts, true), Some(Step::Verify));
        f.proven_mobile = f.mobile.clone();
        assert_eq!(f.step_after(Step::Contacts, true), Some(Step::Redirect));
    }
}
