//! How a person authenticated: methods as RFC 8176 ("Authentication Method Reference
//! Values") names them, the factor kind each proves (knowledge, possession, inherence) and
//! the assurance level they add up to.
//!
//! The assurance levels are named by URIs relying parties already know: SAML 2.0's
//! `PasswordProtectedTransport` authentication context class for one factor
//! (OASIS SAML 2.0 Authentication Context §3.4.13) and the REFEDS MFA profile
//! (`https://refeds.org/profile/mfa`) for two factors of different kinds. The same URI is the
//! OIDC `acr` and, later, the SAML `AuthnContextClassRef`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An authentication method (RFC 8176 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AuthnMethod {
    /// Password (`pwd`).
    #[serde(rename = "pwd")]
    Pwd,
    /// One-time password (`otp`).
    #[serde(rename = "otp")]
    Otp,
    /// Proof of possession of a hardware-secured key (`hwk`), e.g. a security key.
    #[serde(rename = "hwk")]
    Hwk,
    /// Proof of possession of a software-secured key (`swk`), e.g. a platform passkey.
    #[serde(rename = "swk")]
    Swk,
    /// User presence test (`user`).
    #[serde(rename = "user")]
    User,
}

/// The kind of factor a method proves (NIST SP 800-63B §4: something you know, have, are).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FactorKind {
    /// Something the person knows.
    Knowledge,
    /// Something the person has.
    Possession,
    /// Something the person is or does.
    Inherence,
}

impl AuthnMethod {
    /// The RFC 8176 value (`amr` member).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pwd => "pwd",
            Self::Otp => "otp",
            Self::Hwk => "hwk",
            Self::Swk => "swk",
            Self::User => "user",
        }
    }

    /// Parses [`AuthnMethod::as_str`].
    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pwd, Self::Otp, Self::Hwk, Self::Swk, Self::User]
            .into_iter()
            .find(|m| m.as_str() == value)
    }

    /// The factor kind the method proves. A user-presence test proves nothing on its own
    /// about who is there; it is counted with what the person is (inherence), as RFC 8176
    /// lists it beside biometrics.
    pub fn factor(self) -> FactorKind {
        match self {
            Self::Pwd => FactorKind::Knowledge,
            Self::Otp | Self::Hwk | Self::Swk => FactorKind::Possession,
            Self::User => FactorKind::Inherence,
        }
    }

    /// The name of the handler of this method in the CAS 3.0
    /// `successfulAuthenticationHandlers` attribute (Apereo CAS's attribute; its values
    /// name handlers, so Sesame names its own after the RFC 8176 value).
    pub fn cas_handler(self) -> &'static str {
        match self {
            Self::Pwd => "SesamePwdAuthenticationHandler",
            Self::Otp => "SesameOtpAuthenticationHandler",
            Self::Hwk => "SesameHwkAuthenticationHandler",
            Self::Swk => "SesameSwkAuthenticationHandler",
            Self::User => "SesameUserPresenceAuthenticationHandler",
        }
    }
}

/// The `amr` value RFC 8176 §2 defines for "multiple-factor authentication".
pub const MFA_AMR: &str = "mfa";

/// One method done, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthnRecord {
    /// The method.
    pub method: AuthnMethod,
    /// When it succeeded.
    #[serde(with = "time::serde::timestamp")]
    pub at: OffsetDateTime,
}

impl AuthnRecord {
    /// `method`, done at `at`.
    pub fn new(method: AuthnMethod, at: OffsetDateTime) -> Self {
        Self { method, at }
    }
}

/// An assurance level: what a set of methods adds up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Assurance {
    /// One factor (today: the password over TLS).
    #[serde(rename = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")]
    SingleFactor,
    /// Two factors of different kinds (REFEDS MFA profile).
    #[serde(rename = "https://refeds.org/profile/mfa")]
    MultiFactor,
}

impl Assurance {
    /// The URI of the level (OIDC `acr`, SAML `AuthnContextClassRef`).
    pub fn uri(self) -> &'static str {
        match self {
            Self::SingleFactor => {
                "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            }
            Self::MultiFactor => "https://refeds.org/profile/mfa",
        }
    }

    /// Parses [`Assurance::uri`].
    pub fn parse(uri: &str) -> Option<Self> {
        [Self::SingleFactor, Self::MultiFactor]
            .into_iter()
            .find(|a| a.uri() == uri)
    }
}

/// How a session was authenticated: the methods done, each with its time, in the order
/// done.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Authentication {
    /// The methods done.
    pub records: Vec<AuthnRecord>,
}

impl Authentication {
    /// An authentication by these records.
    pub fn new(records: Vec<AuthnRecord>) -> Self {
        Self { records }
    }

    /// An authentication by the password alone, at `at` (every login today; the reading of
    /// sessions stored before methods were recorded).
    pub fn password_at(at: OffsetDateTime) -> Self {
        Self::new(vec![AuthnRecord::new(AuthnMethod::Pwd, at)])
    }

    /// Whether nothing was done.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The distinct methods, in the order first done.
    pub fn methods(&self) -> Vec<AuthnMethod> {
        let mut out: Vec<AuthnMethod> = Vec::new();
        for record in &self.records {
            if !out.contains(&record.method) {
                out.push(record.method);
            }
        }
        out
    }

    /// The distinct factor kinds proven.
    pub fn factor_kinds(&self) -> Vec<FactorKind> {
        let mut out: Vec<FactorKind> = Vec::new();
        for method in self.methods() {
            if !out.contains(&method.factor()) {
                out.push(method.factor());
            }
        }
        out
    }

    /// The `amr` values (RFC 8176): each method once, in the order first done, then `mfa`
    /// when two factor kinds were proven.
    pub fn amr(&self) -> Vec<String> {
        let mut amr: Vec<String> = self
            .methods()
            .into_iter()
            .map(|m| m.as_str().to_owned())
            .collect();
        if self.factor_kinds().len() >= 2 {
            amr.push(MFA_AMR.to_owned());
        }
        amr
    }

    /// The assurance level reached: multi-factor with two factor kinds, single-factor with
    /// one, none without any method.
    pub fn assurance(&self) -> Option<Assurance> {
        match self.factor_kinds().len() {
            0 => None,
            1 => Some(Assurance::SingleFactor),
            _ => Some(Assurance::MultiFactor),
        }
    }

    /// When the last method was done (the OIDC `auth_time`), if any.
    pub fn last_at(&self) -> Option<OffsetDateTime> {
        self.records.iter().map(|r| r.at).max()
    }

    /// Adds a method done at `at`.
    pub fn push(&mut self, method: AuthnMethod, at: OffsetDateTime) {
        self.records.push(AuthnRecord::new(method, at));
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-01-05 08:00 UTC);

    #[test]
    fn method_names_are_the_rfc_8176_values() {
        for m in [
            AuthnMethod::Pwd,
            AuthnMethod::Otp,
            AuthnMethod::Hwk,
            AuthnMethod::Swk,
            AuthnMethod::User,
        ] {
            assert_eq!(serde_json::to_value(m).unwrap(), json!(m.as_str()));
            assert_eq!(AuthnMethod::parse(m.as_str()), Some(m));
        }
        assert_eq!(AuthnMethod::parse("mfa"), None);
    }

    #[test]
    fn a_password_alone_is_single_factor_pwd() {
        let auth = Authentication::password_at(T0);
        assert_eq!(auth.amr(), vec!["pwd"]);
        assert_eq!(auth.assurance(), Some(Assurance::SingleFactor));
        assert_eq!(auth.last_at(), Some(T0));
    }

    #[test]
    fn two_factor_kinds_add_mfa_and_reach_multi_factor() {
        let mut auth = Authentication::password_at(T0);
        auth.push(AuthnMethod::Otp, T0 + time::Duration::seconds(20));
        assert_eq!(auth.amr(), vec!["pwd", "otp", "mfa"]);
        assert_eq!(auth.assurance(), Some(Assurance::MultiFactor));
        assert_eq!(auth.last_at(), Some(T0 + time::Duration::seconds(20)));
    }

    #[test]
    fn two_methods_of_one_kind_are_still_single_factor() {
        let auth = Authentication::new(vec![
            AuthnRecord::new(AuthnMethod::Otp, T0),
            AuthnRecord::new(AuthnMethod::Hwk, T0),
            AuthnRecord::new(AuthnMethod::Otp, T0),
        ]);
        assert_eq!(auth.amr(), vec!["otp", "hwk"]);
        assert_eq!(auth.assurance(), Some(Assurance::SingleFactor));
    }

    #[test]
    fn nothing_done_is_no_assurance() {
        let auth = Authentication::default();
        assert!(auth.amr().is_empty());
        assert_eq!(auth.assurance(), None);
        assert_eq!(auth.last_at(), None);
    }

    #[test]
    fn assurance_uris_and_order() {
        assert_eq!(
            serde_json::to_value(Assurance::MultiFactor).unwrap(),
            json!("https://refeds.org/profile/mfa")
        );
        assert_eq!(
            Assurance::parse("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"),
            Some(Assurance::SingleFactor)
        );
        assert!(Assurance::MultiFactor > Assurance::SingleFactor);
    }

    #[test]
    fn authentication_round_trips_through_json() {
        let mut auth = Authentication::password_at(T0);
        auth.push(AuthnMethod::Hwk, T0);
        let value = serde_json::to_value(&auth).unwrap();
        assert_eq!(
            value,
            json!({ "records": [
                { "method": "pwd", "at": T0.unix_timestamp() },
                { "method": "hwk", "at": T0.unix_timestamp() },
            ]})
        );
        assert_eq!(
            serde_json::from_value::<Authentication>(value).unwrap(),
            auth
        );
    }
}
