//! The steps of an activation, as a small state machine held server-side.
//!
//! A flow is stored in the ephemeral store under the hash of a random flow id, which the
//! browser holds. Each submission *takes* the flow (atomically: of two concurrent
//! submissions, one finds nothing), checks that the form is the current step, applies it and
//! stores the result under a **new** id. So a step cannot be skipped (the posted step must be
//! the current one), replayed (the old id is gone), or raced.

use serde::{Deserialize, Serialize};
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
    /// The address the activation link was mailed to: proven by following the link.
    pub proven_email: Option<String>,
    /// Mobile phone.
    pub mobile: Option<String>,
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
            Step::Redirect => self.has_mailbox,
            Step::Directory | Step::Contacts | Step::Password => true,
        }
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
    },
    /// Mail forwarding.
    Redirect {
        /// Forwarding address (empty: none).
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
            Self::Redirect { .. } => Step::Redirect,
            Self::Password { .. } => Step::Password,
        }
    }
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
    /// The account is active.
    Done {
        /// Its login.
        login: String,
    },
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
        assert_eq!(f.step_after(Step::Password, true), None);
        let no_mailbox = flow(false);
        assert_eq!(no_mailbox.first_step(false), Step::Directory);
        assert_eq!(
            no_mailbox.step_after(Step::Contacts, false),
            Some(Step::Password)
        );
    }
}
