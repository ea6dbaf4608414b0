//! OpenID Connect at the end of a login: once consent is there (first-party clients need
//! none), an authorization code sent back to the client's `redirect_uri` (OpenID Connect
//! Core 1.0 §3.1.2.5); and at the end of a session, its grants revoked and a signed logout
//! token for every client with a `backchannel_logout_uri` (OpenID Connect Back-Channel
//! Logout 1.0 §2.5).

use std::collections::BTreeSet;

use async_trait::async_trait;
use sesame_core::account::Account;
use sesame_core::ids::AccountId;
use sesame_core::ports::ConsentRepo;
use sesame_core::session::{AttachedProtocol, Attachment, EndedSession};
use time::OffsetDateTime;

use super::authorize::AuthorizationRequest;
use super::clients::{ClientRegistry, OidcClient};
use super::codes::{AuthorizationCodes, CodeGrant};
use super::tokens::{session_id, TokenService};
use super::OPENID_SCOPE;
use crate::attributes::oidc_claims;
use crate::issuer::{
    attachments_of, BrowserResponse, IssueError, Issued, Issuer, IssuingSession, LogoutDelivery,
    LogoutEncoding, SingleLogout,
};

/// The form field of a back-channel logout request (§2.5).
pub const LOGOUT_TOKEN_FIELD: &str = "logout_token";

/// What a session remembers of a client it issued a code to: the client (one record per
/// client, however many codes).
pub fn attachment_for_client(client_id: &str) -> Attachment {
    Attachment::new(AttachedProtocol::Oidc, client_id, client_id)
}

/// Scopes that need consent: all granted ones except `openid`, sorted.
pub fn consent_scopes(request: &AuthorizationRequest) -> Vec<String> {
    let mut scopes: Vec<String> = request
        .scopes
        .iter()
        .filter(|s| s.as_str() != OPENID_SCOPE)
        .cloned()
        .collect();
    scopes.sort();
    scopes.dedup();
    scopes
}

/// An authorization request to answer with a code.
#[derive(Debug, Clone, Copy)]
pub struct OidcRequest<'a> {
    /// The request, parsed and checked.
    pub request: &'a AuthorizationRequest,
    /// Its client.
    pub client: &'a OidcClient,
    /// The session's account as just read: the code captures the claims it releases.
    pub account: &'a Account,
    /// The language of the pages (the `locale` claim).
    pub locale: &'a str,
    /// The person has just consented (the consent form): no consent check.
    pub consented: bool,
}

/// OpenID Connect's issuer and single logout.
#[derive(Debug, Clone, Copy)]
pub struct OidcIssuer<'a> {
    codes: &'a AuthorizationCodes,
    consents: &'a dyn ConsentRepo,
    clients: &'a ClientRegistry,
    tokens: &'a TokenService,
    base: &'a str,
}

impl<'a> OidcIssuer<'a> {
    /// An issuer; `base` is Sesame's public base URL (the `iss` of error redirects).
    pub fn new(
        codes: &'a AuthorizationCodes,
        consents: &'a dyn ConsentRepo,
        clients: &'a ClientRegistry,
        tokens: &'a TokenService,
        base: &'a str,
    ) -> Self {
        Self {
            codes,
            consents,
            clients,
            tokens,
            base,
        }
    }

    /// Whether `account` must consent before `client` gets a code for `request`:
    /// `prompt=consent`, or a third-party client without a consent covering the scopes.
    ///
    /// # Errors
    /// [`IssueError::Repo`] when the consent cannot be read.
    pub async fn needs_consent(
        &self,
        request: &AuthorizationRequest,
        client: &OidcClient,
        account: AccountId,
    ) -> Result<bool, IssueError> {
        if client.first_party {
            return Ok(false);
        }
        let wanted = consent_scopes(request);
        let consent = self
            .consents
            .find_consent(account, &client.client_id)
            .await?;
        let covered = consent.is_some_and(|c| wanted.iter().all(|s| c.scopes.contains(s)));
        Ok(request.prompt.consent || !covered)
    }
}

#[async_trait]
impl Issuer for OidcIssuer<'_> {
    type Request<'r> = OidcRequest<'r>;

    /// A code in a redirect to the client. [`IssueError::ConsentRequired`] when consent is
    /// missing (nothing issued), [`IssueError::Store`] when the code cannot be kept.
    async fn issue<'r>(
        &self,
        session: IssuingSession<'_>,
        request: OidcRequest<'r>,
    ) -> Result<Issued, IssueError> {
        let OidcRequest {
            request,
            client,
            account,
            locale,
            consented,
        } = request;
        if !consented && self.needs_consent(request, client, account.id).await? {
            return Err(IssueError::ConsentRequired {
                scopes: consent_scopes(request),
            });
        }
        let sso = session.session;
        let grant = CodeGrant {
            grant_id: String::new(),
            client_id: client.client_id.clone(),
            redirect_uri: request.redirect_uri.clone(),
            account_id: sso.account_id,
            login: sso.login.to_string(),
            scopes: request.scopes.clone(),
            nonce: request.nonce.clone(),
            auth_time: sso.authenticated_at,
            amr: sso.methods.amr(),
            // Said when asked for (`acr_values`, or a client that requires a second factor):
            // what the session's methods add up to.
            acr: (!request.acr_values.is_empty() || client.require_mfa)
                .then(|| sso.methods.assurance())
                .flatten()
                .map(|a| a.uri().to_owned()),
            session_handle: session.handle.to_owned(),
            code_challenge: request.code_challenge.clone(),
            // Set by the code service from its clock.
            issued_at: OffsetDateTime::UNIX_EPOCH,
            claims: oidc_claims(account, &request.scopes, locale),
        };
        let code = self.codes.issue(grant).await?;
        Ok(Issued {
            response: BrowserResponse::Redirect(request.code_redirect(&code, self.base)),
            attachment: Some(attachment_for_client(&client.client_id)),
        })
    }
}

#[async_trait]
impl SingleLogout for OidcIssuer<'_> {
    fn protocol(&self) -> AttachedProtocol {
        AttachedProtocol::Oidc
    }

    async fn logouts(&self, ended: &EndedSession, _now: OffsetDateTime) -> Vec<LogoutDelivery> {
        if let Err(e) = self.tokens.revoke_session(&ended.handle).await {
            tracing::error!(error = %e, "could not revoke the grants of an ended session");
        }
        let clients: BTreeSet<&str> = attachments_of(ended, AttachedProtocol::Oidc)
            .map(|a| a.payload.as_str())
            .collect();
        let sid = session_id(&ended.handle);
        let sub = ended.account_id.to_string();
        let mut deliveries = Vec::new();
        for client_id in clients {
            let Some(client) = self.clients.get(client_id) else {
                continue;
            };
            let Some(target) = client.backchannel_logout_uri.clone() else {
                continue;
            };
            match self.tokens.logout_token(client, &sub, &sid) {
                Ok(token) => deliveries.push(LogoutDelivery {
                    party: client.client_id.clone(),
                    target,
                    encoding: LogoutEncoding::Form(LOGOUT_TOKEN_FIELD),
                    body: token,
                }),
                Err(e) => {
                    tracing::error!(error = %e, client.id = %client.client_id, "could not sign a logout token");
                }
            }
        }
        deliveries
    }
}
