//! "Is this authentication good enough for this request?": the one policy function every
//! protocol asks, so that CAS `renew` (CAS Protocol 3.0 §2.1.1), OpenID Connect
//! `prompt=login` and `max_age` (OpenID Connect Core 1.0 §3.1.2.1) and, later, SAML
//! `ForceAuthn` and `acr_values` / `authn_method` are decided alike.

use time::OffsetDateTime;

use super::methods::{Assurance, Authentication};

/// What a request demands of the authentication behind it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthnRequirement {
    /// Credentials must be entered for this request: an existing session never satisfies
    /// it (CAS `renew=true`, OIDC `prompt=login`, SAML `ForceAuthn`).
    pub fresh: bool,
    /// The last method must have been done at most this many seconds ago (OIDC `max_age`).
    pub max_age_secs: Option<u64>,
    /// The assurance level the authentication must reach (OIDC `acr_values`, SAML
    /// `RequestedAuthnContext`); `None` asks for none in particular.
    pub assurance: Option<Assurance>,
}

/// The answer of [`AuthnRequirement::evaluate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The authentication suffices: issue.
    Satisfied,
    /// The person must log in (again): credentials from the start.
    Login,
    /// The person is known well enough, but must add a factor to reach the assurance asked.
    StepUp,
}

impl AuthnRequirement {
    /// No demand beyond being logged in.
    pub fn any() -> Self {
        Self::default()
    }

    /// This requirement once the login made for the request is done: that login is the
    /// fresh one the request asked for, so only age and assurance remain to check.
    #[must_use]
    pub fn after_fresh_login(self) -> Self {
        Self {
            fresh: false,
            ..self
        }
    }

    /// Whether `auth` satisfies this requirement at `now`.
    ///
    /// An authentication with no method never does (`Login`); neither does any when
    /// freshness is asked. A last method older than `max_age_secs` asks for a login again
    /// (a clock that went backwards counts as age zero). An assurance below the one asked
    /// is a step-up: the factors done still count.
    pub fn evaluate(&self, auth: &Authentication, now: OffsetDateTime) -> Verdict {
        let Some(last) = auth.last_at() else {
            return Verdict::Login;
        };
        if self.fresh {
            return Verdict::Login;
        }
        if let Some(max_age) = self.max_age_secs {
            let age = u64::try_from((now - last).whole_seconds()).unwrap_or(0);
            if age > max_age {
                return Verdict::Login;
            }
        }
        if let Some(wanted) = self.assurance {
            if auth.assurance().is_none_or(|reached| reached < wanted) {
                return Verdict::StepUp;
            }
        }
        Verdict::Satisfied
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;
    use time::Duration;

    use super::*;
    use crate::login::methods::AuthnMethod;

    const T0: OffsetDateTime = datetime!(2026-01-05 08:00 UTC);

    fn pwd() -> Authentication {
        Authentication::password_at(T0)
    }

    #[test]
    fn any_session_satisfies_no_demand() {
        assert_eq!(
            AuthnRequirement::any().evaluate(&pwd(), T0),
            Verdict::Satisfied
        );
        assert_eq!(
            AuthnRequirement::any().evaluate(&pwd(), T0 + Duration::days(10)),
            Verdict::Satisfied
        );
    }

    #[test]
    fn nothing_done_asks_for_a_login() {
        assert_eq!(
            AuthnRequirement::any().evaluate(&Authentication::default(), T0),
            Verdict::Login
        );
    }

    #[test]
    fn renew_or_prompt_login_asks_for_a_login_whatever_the_session() {
        let fresh = AuthnRequirement {
            fresh: true,
            ..AuthnRequirement::any()
        };
        assert_eq!(fresh.evaluate(&pwd(), T0), Verdict::Login);
        assert_eq!(
            fresh.after_fresh_login().evaluate(&pwd(), T0),
            Verdict::Satisfied
        );
    }

    #[test]
    fn max_age_counts_from_the_last_method() {
        let req = AuthnRequirement {
            max_age_secs: Some(60),
            ..AuthnRequirement::any()
        };
        assert_eq!(
            req.evaluate(&pwd(), T0 + Duration::seconds(60)),
            Verdict::Satisfied
        );
        assert_eq!(
            req.evaluate(&pwd(), T0 + Duration::seconds(61)),
            Verdict::Login
        );
        let mut later = pwd();
        later.push(AuthnMethod::Otp, T0 + Duration::seconds(50));
        assert_eq!(
            req.evaluate(&later, T0 + Duration::seconds(100)),
            Verdict::Satisfied
        );
        // A clock that went backwards is no reason to refuse.
        assert_eq!(
            req.evaluate(&pwd(), T0 - Duration::seconds(5)),
            Verdict::Satisfied
        );
        let zero = AuthnRequirement {
            max_age_secs: Some(0),
            ..AuthnRequirement::any()
        };
        assert_eq!(zero.evaluate(&pwd(), T0), Verdict::Satisfied);
        assert_eq!(
            zero.evaluate(&pwd(), T0 + Duration::seconds(1)),
            Verdict::Login
        );
    }

    #[test]
    fn a_higher_assurance_is_a_step_up() {
        let mfa = AuthnRequirement {
            assurance: Some(Assurance::MultiFactor),
            ..AuthnRequirement::any()
        };
        assert_eq!(mfa.evaluate(&pwd(), T0), Verdict::StepUp);
        let mut two = pwd();
        two.push(AuthnMethod::Hwk, T0);
        assert_eq!(mfa.evaluate(&two, T0), Verdict::Satisfied);
        let single = AuthnRequirement {
            assurance: Some(Assurance::SingleFactor),
            ..AuthnRequirement::any()
        };
        assert_eq!(single.evaluate(&two, T0), Verdict::Satisfied);
    }

    #[test]
    fn age_is_checked_before_assurance() {
        let req = AuthnRequirement {
            max_age_secs: Some(10),
            assurance: Some(Assurance::MultiFactor),
            fresh: false,
        };
        assert_eq!(
            req.evaluate(&pwd(), T0 + Duration::seconds(11)),
            Verdict::Login
        );
    }
}
