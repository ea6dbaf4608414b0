//! The end of every login, whatever the protocol: an open SSO session and what the login
//! was for become what the browser gets ([`Issuer`]), and an ended session becomes the
//! logout messages its relying parties are owed ([`SingleLogout`]).
//!
//! Nothing here knows HTTP: a [`BrowserResponse`] is a redirect or a form to post, which the
//! server writes out. Adding a protocol (SAML 2.0 next) is one implementation of each trait
//! and one [`AttachedProtocol`] variant; the login, its steps and the session are shared.

use async_trait::async_trait;
use sesame_core::error::{RepoError, StoreError};
use sesame_core::session::{
    AttachedProtocol, Attachment, EndedSession, SessionManager, SsoSession,
};
use time::OffsetDateTime;

/// What the browser gets at the end of a login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrowserResponse {
    /// Go to this URL (a ticket or code in its query).
    Redirect(String),
    /// Post these fields to `action`, with a page that submits itself (CAS `method=POST`,
    /// SAML's POST binding).
    AutoPost {
        /// Where the form posts.
        action: String,
        /// The fields, in order.
        fields: Vec<(String, String)>,
        /// The relying party's display name, for the page's heading.
        title: String,
    },
}

/// The session an issuer issues from.
#[derive(Debug, Clone, Copy)]
pub struct IssuingSession<'a> {
    /// The session's store handle (what tickets and codes link to).
    pub handle: &'a str,
    /// The session.
    pub session: &'a SsoSession,
    /// Credentials were entered for this very request (CAS `isFromNewLogin`).
    pub from_new_login: bool,
    /// Where the session's attachments go, for an issuer that records its attachment in the
    /// same store step as what it issues (then [`Issued::attachment`] is `None`).
    pub sessions: Option<&'a SessionManager>,
}

/// What an issuer gave out: the browser's response, and what the session must remember of
/// it for single logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The response.
    pub response: BrowserResponse,
    /// The attachment the caller must record against the session; `None` when the issuer
    /// recorded it itself, with what it issued, in one store step.
    pub attachment: Option<Attachment>,
}

/// Why nothing was issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The database failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
    /// The target cannot carry the response (a service URL that does not parse).
    #[error("the response target is unusable")]
    BadTarget,
    /// No key may sign, or signing failed.
    #[error("signing failed: {0}")]
    Signing(String),
    /// The person must consent first (to these scopes); nothing was issued.
    #[error("consent is required")]
    ConsentRequired {
        /// The scopes to ask consent for.
        scopes: Vec<String>,
    },
}

/// A protocol's end of a login.
#[async_trait]
pub trait Issuer: Send + Sync {
    /// What the relying party asked, as the protocol reads it (it may borrow the parsed
    /// request and the registry entry).
    type Request<'r>: Send + Sync;

    /// The protocol's answer for `request` from `session`.
    ///
    /// # Errors
    /// [`IssueError`]; nothing is issued then.
    async fn issue<'r>(
        &self,
        session: IssuingSession<'_>,
        request: Self::Request<'r>,
    ) -> Result<Issued, IssueError>;
}

/// One back-channel logout message to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutDelivery {
    /// The relying party (service, client id or entity ID), for the logs.
    pub party: String,
    /// Where to post it.
    pub target: String,
    /// How `body` is sent.
    pub encoding: LogoutEncoding,
    /// The message.
    pub body: String,
}

/// How a back-channel logout message is posted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogoutEncoding {
    /// A form with `body` in this field: `logoutRequest` (CAS) or `logout_token` (OIDC).
    Form(&'static str),
    /// `body` is a SOAP 1.1 envelope (SAML 2.0 SOAP binding, `text/xml`).
    Soap,
}

/// A protocol's part in ending a session.
#[async_trait]
pub trait SingleLogout: Send + Sync {
    /// The protocol whose attachments this reads.
    fn protocol(&self) -> AttachedProtocol;

    /// Ends what `ended` gave out under this protocol (revoking what it must) and returns
    /// the messages owed. Failures are logged and skipped: logging out never fails for an
    /// application.
    async fn logouts(&self, ended: &EndedSession, now: OffsetDateTime) -> Vec<LogoutDelivery>;
}

/// The attachments of `ended` that belong to `protocol`.
pub fn attachments_of(
    ended: &EndedSession,
    protocol: AttachedProtocol,
) -> impl Iterator<Item = &Attachment> {
    ended
        .attached
        .iter()
        .filter(move |a| a.protocol == protocol)
}
