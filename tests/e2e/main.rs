//! One test binary for the whole end-to-end suite.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions: a panic is how they report a failure"
)]

mod account_page;
mod activation;
mod activation_contacts;
mod admin_api;
mod browser;
mod browser_security;
mod cas;
mod cli;
mod headers;
mod health;
mod helpdesk;
mod helpdesk_console;
mod import;
mod interop;
mod ldap;
mod ldap_mail;
mod lockout;
mod login;
mod mail;
mod metrics;
mod mfa;
mod oidc;
mod oidc_flows;
mod passkeys;
mod policy;
mod recovery;
mod saml;
mod saml_python3_saml;
mod saml_shibboleth;
mod security_cas;
mod security_login;
mod security_oidc;
mod sessions;
