//! Errors of the admin API as one JSON shape, an RFC 9457 problem object
//! (`application/problem+json`), and how domain errors map to it.

use actix_web::http::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde::Serialize;
use sesame_core::error::{AccountError, RepoError, StoreError};
use sesame_lifecycle::error::{ImportError, OperatorLinkError};
use utoipa::ToSchema;

/// What went wrong, for the program that called and for the person who reads its logs.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// `urn:sesame:admin-api:<code>`.
    #[serde(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What happened this time.
    pub detail: String,
    /// A stable code to branch on: `unauthorized`, `forbidden`, `bad_request`,
    /// `not_found`, `conflict`, `bad_transition`, `no_recovery_address`, `unprocessable`,
    /// `too_large`, `unavailable`, `internal`.
    pub code: String,
}

impl Problem {
    /// A problem with this status and code.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        let title = match code {
            "unauthorized" => "A valid API key is required",
            "forbidden" => "The API key lacks the scope this needs",
            "bad_request" => "The request is malformed",
            "not_found" => "Not found",
            "conflict" => "Already taken",
            "bad_transition" => "Not possible in the account's current state",
            "unprocessable" => "The content cannot be processed",
            "too_large" => "The body is too large",
            "no_recovery_address" => "No address the link may be sent to",
            "unavailable" => "Temporarily unavailable",
            _ => "Internal error",
        };
        Self {
            problem_type: format!("urn:sesame:admin-api:{code}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
        }
    }

    /// 400.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 503, after logging the cause once.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "admin API: storage failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database or the session store failed; nothing was reported done, try again",
        )
    }

    /// 500, after logging the cause once.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "admin API: unexpected failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "unexpected failure; see the server log",
        )
    }

    /// The response carrying it.
    pub fn response(&self) -> HttpResponse {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut res = HttpResponse::build(status)
            .content_type("application/problem+json")
            .json(self);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            res.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        res
    }

    /// The response, with a `WWW-Authenticate` challenge (RFC 6750 §3).
    pub fn challenge(&self, challenge: &str) -> HttpResponse {
        let mut res = self.response();
        if let Ok(value) = HeaderValue::from_str(challenge) {
            res.headers_mut().insert(WWW_AUTHENTICATE, value);
        }
        res
    }
}

/// An error answer of a handler: the problem and, for 401 and 403, the `WWW-Authenticate`
/// challenge. Boxed, so a `Result` carrying it stays small on the happy path.
#[derive(Debug)]
pub struct ApiError {
    problem: Box<Problem>,
    challenge: Option<String>,
}

impl ApiError {
    /// The problem with a challenge.
    pub fn challenged(problem: Problem, challenge: String) -> Self {
        Self {
            problem: Box::new(problem),
            challenge: Some(challenge),
        }
    }

    /// The response carrying it.
    pub fn response(&self) -> HttpResponse {
        match &self.challenge {
            Some(challenge) => self.problem.challenge(challenge),
            None => self.problem.response(),
        }
    }
}

impl<E> From<E> for ApiError
where
    Problem: From<E>,
{
    fn from(e: E) -> Self {
        Self {
            problem: Box::new(Problem::from(e)),
            challenge: None,
        }
    }
}

impl From<AccountError> for Problem {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound => {
                Self::new(StatusCode::NOT_FOUND, "not_found", "no such account")
            }
            AccountError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("{what} is already taken by another account"),
            ),
            e @ AccountError::IdentifierTaken { .. } => {
                Self::new(StatusCode::CONFLICT, "conflict", e.to_string())
            }
            AccountError::BadTransition { from, to } => Self::new(
                StatusCode::CONFLICT,
                "bad_transition",
                format!("an account cannot go from {from} to {to}"),
            ),
            AccountError::Policy(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "the password does not meet the policy",
            ),
            AccountError::Busy => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "too many password hashes are waiting; try again",
            ),
            AccountError::Repo(e) => Self::unavailable(&e),
            AccountError::Store(e) => Self::unavailable(&e),
            AccountError::Hashing(e) => Self::internal(&e),
        }
    }
}

impl From<sesame_lifecycle::helpdesk::HelpdeskError> for Problem {
    fn from(e: sesame_lifecycle::helpdesk::HelpdeskError) -> Self {
        use sesame_lifecycle::helpdesk::HelpdeskError;
        match e {
            HelpdeskError::Account(e) => Self::from(e),
            HelpdeskError::Repo(e) => Self::from(e),
            HelpdeskError::Store(e) => Self::from(e),
            HelpdeskError::BadNote => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                HelpdeskError::BadNote.to_string(),
            ),
            HelpdeskError::NoSuchRequest(r) => Self::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no assistance request {r}"),
            ),
            // The API makes no identity comparisons (the console does); kept exhaustive.
            e @ HelpdeskError::BadComparison => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                e.to_string(),
            ),
            e @ HelpdeskError::TooManyComparisons { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", e.to_string())
            }
        }
    }
}

impl From<OperatorLinkError> for Problem {
    fn from(e: OperatorLinkError) -> Self {
        match e {
            OperatorLinkError::NoSuchAccount => {
                Self::new(StatusCode::NOT_FOUND, "not_found", "no such account")
            }
            OperatorLinkError::WrongState { .. } | OperatorLinkError::PathNotAllowed(_) => {
                Self::new(StatusCode::CONFLICT, "bad_transition", e.to_string())
            }
            OperatorLinkError::NoRecoveryAddress | OperatorLinkError::UnverifiedRecoveryAddress => {
                Self::new(StatusCode::CONFLICT, "no_recovery_address", e.to_string())
            }
            OperatorLinkError::Unavailable(_) => Self::unavailable(&e),
        }
    }
}

impl From<RepoError> for Problem {
    fn from(e: RepoError) -> Self {
        Self::from(AccountError::from(e))
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        Self::unavailable(&e)
    }
}

impl From<ImportError> for Problem {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Repo(e) => Self::from(e),
            ImportError::Account(e) => Self::from(e),
            other => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                other.to_string(),
            ),
        }
    }
}
