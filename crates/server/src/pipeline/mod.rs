//! The login pipeline: every login, whatever asked for it, takes the same path.
//!
//! ```text
//!  browser ──GET /cas/login?service=… | ?authz=… | ?next=…──▶ entry     (what the login is for)
//!                                                               │
//!  browser ──POST /cas/login (login, password)──▶ Authenticator::login   (lockout, hashing pool)
//!                                                               │ correct
//!                                                               ▼
//!                                                             steps     (LoginPlan: charter…;
//!                                                               │        refusals: voided password)
//!                                                               │ none due
//!                                                               ▼
//!                                                             session   (open, C11 re-check)
//!                                                               │
//!                                                               ▼
//!                                                             issue     (CAS ticket: issue,
//!                                                               │        OIDC code or consent: oidc;
//!                                                               │        sesame_protocol::issuer)
//!                                                               ▼
//!  browser ◀── redirect | auto-posted form | logged-in page ────┘
//!
//!  logout, revocation, reset, block, password change, helpdesk ──▶ end  (single logout;
//!                                           SAML SPs without a back channel: saml_chain)
//! ```
//!
//! The domain of a login lives in `sesame_core::login` (methods, the requirement policy,
//! transactions, steps); the protocols' ends in `sesame_protocol::issuer`. These modules are
//! the HTTP around them. Routes call into the pipeline; the pipeline never calls a route.

pub mod end;
pub mod entry;
pub mod issue;
pub mod oidc;
pub mod saml;
pub mod saml_chain;
pub mod saml_logout;
pub mod session;
pub mod step_up;
pub mod steps;
pub mod transaction;
