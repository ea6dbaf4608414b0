//! Second factors, as a domain: what Sesame asks after the password when a person or an
//! application wants more than one factor.
//!
//! - [`factors`]: a person's factors: enrolment in two phases, the check at login (a TOTP code
//!   or a recovery code, wrong answers counted), removal; the database behind a port.
//! - [`totp`]: time-based one-time passwords (RFC 6238: HMAC-SHA-1, 6 digits, 30 s steps, one
//!   step of drift either way), enrolment through an `otpauth://` URI shown as a QR code and as
//!   text, and the rule of RFC 6238 § 5.2 that a code is accepted once ([`totp::UsedSteps`],
//!   kept in the ephemeral store so it holds across instances).
//! - [`passkeys`]: passkeys and security keys (WebAuthn), registered on the account page,
//!   used as the second factor or alone with the authenticator's user verification.
//! - [`remembered`]: browsers remembered for the second factor ("Ne plus demander sur cet
//!   appareil"), off by default, listed and forgotten on the account page.
//! - [`recovery`]: ten single-use recovery codes, shown once, kept as SHA-256.
//! - [`sealing`]: the TOTP secrets are sealed at rest (AES-256-GCM, the account bound as
//!   associated data) with a key from the configuration, rotatable.
//! - [`policy`]: who must, may or may not use a second factor (per affiliation), with a grace
//!   period for enrolment.
//!
//! Mail and SMS one-time codes are recovery channels, never a second factor here (the view of
//! the CNIL and of the ANSSI): nothing in this crate counts them as one.

pub mod factors;
pub mod passkeys;
pub mod policy;
pub mod recovery;
pub mod remembered;
pub mod sealing;
pub mod totp;
