//! Who is bound on a connection, and what they may read.
//!
//! * Nobody (anonymous): the root DSE and the subschema; the public directory only where the
//!   operator allowed anonymous reads (`[ldap] anonymous_directory`).
//! * A person (`uid=<login>,ou=people,…`, bound with their password): their own entry whole,
//!   everyone else as the public directory shows them.
//! * A service account (`cn=<name>,ou=services,…`, bound with a 256-bit secret Sesame
//!   generated, configured as its SHA-256): what its scope allows.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::entry::View;

/// What a service account may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceScope {
    /// Find a person's DN by uid or mail, then check their password by binding as them
    /// (Dovecot `auth_bind`, a legacy application's login).
    Auth,
    /// Mail routing attributes (Postfix, Dovecot user lookups).
    Mail,
    /// The public directory view (an address book, a phone directory).
    Directory,
    /// Every attribute Sesame releases (Nextcloud's user backend, a trusted application).
    Full,
}

impl ServiceScope {
    /// The name used in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::Mail => "mail",
            Self::Directory => "directory",
            Self::Full => "full",
        }
    }

    /// The scope named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Auth, Self::Mail, Self::Directory, Self::Full]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    fn view(self) -> View {
        match self {
            Self::Auth => View::Locate,
            Self::Mail => View::Mail,
            Self::Directory => View::Directory,
            Self::Full => View::Full,
        }
    }
}

/// A configured service account.
#[derive(Debug, Clone)]
pub struct ServiceAccount {
    /// Its `cn` under `ou=services`.
    pub name: String,
    /// What it may read.
    pub scope: ServiceScope,
    /// SHA-256 of its secret, lowercase hex.
    pub secret_sha256: String,
}

/// The service accounts, checked in constant time.
#[derive(Debug, Clone, Default)]
pub struct ServiceAccounts {
    accounts: Vec<ServiceAccount>,
}

/// Stands in for an unknown name, so that a wrong name costs what a wrong secret costs.
const NO_SUCH_SERVICE: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl ServiceAccounts {
    /// Over `accounts`.
    pub fn new(accounts: Vec<ServiceAccount>) -> Self {
        Self { accounts }
    }

    /// The account named `name` (without case) whose secret is `secret`.
    pub fn authenticate(&self, name: &str, secret: &str) -> Option<&ServiceAccount> {
        let found = self
            .accounts
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name.trim()));
        let expected = found.map_or(NO_SUCH_SERVICE, |a| a.secret_sha256.as_str());
        let presented = hex::encode(Sha256::digest(secret.as_bytes()));
        let same: bool = presented
            .as_bytes()
            .ct_eq(expected.to_ascii_lowercase().as_bytes())
            .into();
        found.filter(|_| same)
    }
}

/// Who a connection is bound as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Not bound, or bound anonymously, or after a failed bind (RFC 4513 §5.1).
    Anonymous,
    /// A person.
    Person {
        /// Their login.
        login: String,
        /// Their entry's DN.
        dn: String,
    },
    /// A service account.
    Service {
        /// Its name.
        name: String,
        /// Its scope.
        scope: ServiceScope,
        /// Its DN.
        dn: String,
    },
}

impl Identity {
    /// How this identity sees the person whose login is `login`; `None`: not at all.
    pub fn view_of(&self, login: &str, anonymous_directory: bool) -> Option<View> {
        match self {
            Self::Anonymous => anonymous_directory.then_some(View::Directory),
            Self::Person { login: own, .. } if own == login => Some(View::Full),
            Self::Person { .. } => Some(View::Directory),
            Self::Service { scope, .. } => Some(scope.view()),
        }
    }

    /// The view this identity has of people in general (of others than itself).
    pub fn general_view(&self, anonymous_directory: bool) -> Option<View> {
        self.view_of("", anonymous_directory)
    }

    /// The RFC 4532 authorization identity: `dn:<dn>`, empty when anonymous.
    pub fn authz_id(&self) -> String {
        match self {
            Self::Anonymous => String::new(),
            Self::Person { dn, .. } | Self::Service { dn, .. } => format!("dn:{dn}"),
        }
    }

    /// For logs and metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Person { .. } => "person",
            Self::Service { .. } => "service",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> ServiceAccounts {
        ServiceAccounts::new(vec![ServiceAccount {
            name: "dovecot".into(),
            scope: ServiceScope::Auth,
            secret_sha256: hex::encode(Sha256::digest(b"s3cret")),
        }])
    }

    #[test]
    fn a_service_binds_with_its_secret_only() {
        let a = accounts();
        assert_eq!(a.authenticate("Dovecot", "s3cret").unwrap().name, "dovecot");
        assert!(a.authenticate("dovecot", "s3cret ").is_none());
        assert!(a.authenticate("postfix", "s3cret").is_none());
        assert!(a.authenticate("dovecot", "").is_none());
    }

    #[test]
    fn views_follow_the_identity() {
        let me = Identity::Person {
            login: "jd".into(),
            dn: "uid=jd".into(),
        };
        assert_eq!(me.view_of("jd", false), Some(View::Full));
        assert_eq!(me.view_of("other", false), Some(View::Directory));
        assert_eq!(Identity::Anonymous.view_of("jd", false), None);
        assert_eq!(
            Identity::Anonymous.view_of("jd", true),
            Some(View::Directory)
        );
        let svc = Identity::Service {
            name: "postfix".into(),
            scope: ServiceScope::Mail,
            dn: "cn=postfix".into(),
        };
        assert_eq!(svc.view_of("jd", false), Some(View::Mail));
        assert_eq!(svc.authz_id(), "dn:cn=postfix");
        assert_eq!(Identity::Anonymous.authz_id(), "");
    }
}
