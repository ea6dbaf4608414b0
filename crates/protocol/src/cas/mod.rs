//! CAS 1.0, 2.0 and 3.0 (Apereo "CAS Protocol 3.0 Specification", §2 endpoints, §3 tickets,
//! §4.2 `/samlValidate`, appendices A and C): ticket rules over the shared store, and the
//! documents every validation endpoint answers with. The server crate maps these to routes.

mod error;
pub mod issuer;
pub mod response;
pub mod saml;
pub mod slo;
pub mod tickets;
mod xml;

pub use error::{CasError, CasErrorCode};
