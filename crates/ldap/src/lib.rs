//! Sesame's LDAP v3 interface: a read-only directory of the accounts, for what cannot do CAS
//! or OpenID Connect (IMAP and SMTP through Dovecot and Postfix, Nextcloud's user backend,
//! printers, older applications).
//!
//! * [`dn`]: distinguished names; [`entry`]: the tree, its schema and what each view shows;
//!   [`filter`]: RFC 4515 filters evaluated on what the reader sees, and lookup plans;
//! * [`access`]: who is bound (anonymous, a person, a service account and its scope);
//! * [`directory`]: binds and searches as decisions over a [`directory::DirectoryBackend`]
//!   (the server implements it over the web login's authenticator and the account ports);
//! * [`server`]: the listener (`ldap3_proto`'s codec, StartTLS and LDAPS with rustls).
//!
//! See `docs/ldap.md`.

pub mod access;
pub mod directory;
pub mod dn;
pub mod entry;
pub mod filter;
pub mod server;

pub use access::{Identity, ServiceAccount, ServiceAccounts, ServiceScope};
pub use directory::{BackendError, BindRefusal, Directory, DirectoryBackend, DirectoryOptions};
pub use server::{CleartextBinds, LdapServer, ServerOptions, TlsError, TlsFiles};
