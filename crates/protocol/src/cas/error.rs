//! Validation and proxy error codes (CAS Protocol 3.0 §2.5.3, §2.7.3).

use std::fmt;

use sesame_core::error::StoreError;

/// The `code` attribute of `<cas:authenticationFailure>` / `<cas:proxyFailure>` (and the
/// `code` member of the JSON failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CasErrorCode {
    /// Not all of the required request parameters were present.
    InvalidRequest,
    /// Failure to meet the requirements of the validation specification (a ticket of the wrong
    /// kind for the endpoint, e.g. a proxy ticket at `/serviceValidate`).
    InvalidTicketSpec,
    /// The service is not authorized to perform proxy authentication.
    UnauthorizedServiceProxy,
    /// The proxy callback specified is invalid or does not meet the security requirements.
    InvalidProxyCallback,
    /// The ticket is unknown, already used, expired, or did not come from a new login while
    /// `renew` was set.
    InvalidTicket,
    /// The ticket was valid but issued for another service; it is now burned.
    InvalidService,
    /// `/proxy` only (§2.7.3): the target service is not authorized.
    UnauthorizedService,
    /// An internal error occurred (the ticket store failed). Never a success.
    InternalError,
}

impl CasErrorCode {
    /// The code as the specification spells it, e.g. `INVALID_TICKET`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::InvalidTicketSpec => "INVALID_TICKET_SPEC",
            Self::UnauthorizedServiceProxy => "UNAUTHORIZED_SERVICE_PROXY",
            Self::InvalidProxyCallback => "INVALID_PROXY_CALLBACK",
            Self::InvalidTicket => "INVALID_TICKET",
            Self::InvalidService => "INVALID_SERVICE",
            Self::UnauthorizedService => "UNAUTHORIZED_SERVICE",
            Self::InternalError => "INTERNAL_ERROR",
        }
    }
}

impl fmt::Display for CasErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A CAS failure: the code and a human-readable description for the response body.
/// Descriptions never contain a ticket id (security row A59: no ticket in logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct CasError {
    /// The specification's error code.
    pub code: CasErrorCode,
    /// The description.
    pub message: String,
}

impl CasError {
    /// A failure with this code and description.
    pub fn new(code: CasErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for CasError {
    /// Store faults become `INTERNAL_ERROR` (fail closed); the description stays generic so
    /// that no store detail reaches a client.
    fn from(_: StoreError) -> Self {
        Self::new(
            CasErrorCode::InternalError,
            "the ticket store is unavailable, try again later",
        )
    }
}
