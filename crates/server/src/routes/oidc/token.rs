//! `POST /token` (RFC 6749 §3.2, §4.1.3, §4.4, §6; OpenID Connect Core §3.1.3, §12).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::ports::Writes;
use sesame_core::session::session_store_key;
use sesame_protocol::oidc::clients::OidcClient;
use sesame_protocol::oidc::codes::{Redemption, TokenError};
use sesame_protocol::oidc::grants::Grant;
use sesame_protocol::oidc::{is_scope_token, OPENID_SCOPE};

use super::{authenticate_client, oauth_error, FormParams};
use crate::web::AppState;

/// The scope that lets a grant outlive the SSO session (OpenID Connect Core §11).
const OFFLINE_ACCESS: &str = "offline_access";

fn token_error(e: &TokenError) -> HttpResponse {
    match e {
        TokenError::Store(err) => {
            tracing::error!(error = %err, "token endpoint: store unavailable");
            oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again later",
            )
        }
        TokenError::Rejected { description, .. } => {
            oauth_error(StatusCode::BAD_REQUEST, e.as_str(), description)
        }
        TokenError::CodeReused { .. } => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "invalid authorization code",
        ),
    }
}

fn unavailable() -> HttpResponse {
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "try again later",
    )
}

fn invalid_grant(description: &str) -> HttpResponse {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description)
}

/// `POST /token`
pub async fn token(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let params = FormParams::parse(&body);
    if let Some(name) = params.malformed() {
        let description = format!("parameter {name} is repeated or too long");
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &description);
    }
    let client = match authenticate_client(&state, &req, &params).await {
        Ok(c) => c,
        Err(failure) => {
            tracing::info!("token request: client authentication failed");
            return failure.response();
        }
    };
    let response = match params.one("grant_type") {
        Some("authorization_code") => authorization_code(&state, client, &params).await,
        Some("refresh_token") => refresh_token(&state, client, &params).await,
        Some("client_credentials") => client_credentials(&state, client, &params).await,
        Some(_) => oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "supported: authorization_code, refresh_token, client_credentials",
        ),
        None => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        ),
    };
    crate::metrics::token_response(params.one("grant_type"), &response);
    response
}

async fn authorization_code(
    state: &AppState,
    client: &OidcClient,
    params: &FormParams,
) -> HttpResponse {
    let oidc = &state.services.oidc;
    let redemption = Redemption {
        code: params.one("code").unwrap_or_default(),
        client_id: &client.client_id,
        redirect_uri: params.one("redirect_uri"),
        code_verifier: params.one("code_verifier"),
    };
    let (code, session_record) = match oidc.codes.redeem_with_session(&redemption).await {
        Ok(c) => c,
        Err(TokenError::CodeReused { grant_id }) => {
            // A code presented twice was stolen or replayed: everything issued from it goes
            // (security decision 9).
            tracing::warn!(client.id = %client.client_id, "authorization code reused; its grant is revoked");
            if let Err(e) = oidc.tokens.revoke_grant(&grant_id).await {
                tracing::error!(error = %e, "could not revoke the grant of a reused code");
                return unavailable();
            }
            let event = AuditEvent::new(
                AuditKind::TokenReuseDetected,
                state.services.clock.now(),
                "self",
            )
            .detail(json!({ "client_id": client.client_id, "token": "authorization_code" }));
            if let Err(e) = state.services.audit.record(event).await {
                tracing::error!(error = %e, "could not record a code reuse");
            }
            return invalid_grant("invalid authorization code");
        }
        Err(e) => return token_error(&e),
    };
    let grant = Grant {
        grant_id: code.grant_id.clone(),
        client_id: client.client_id.clone(),
        account_id: Some(code.account_id),
        login: Some(code.login.clone()),
        scopes: code.scopes.clone(),
        auth_time: Some(code.auth_time),
        amr: code.amr.clone(),
        acr: code.acr.clone(),
        session_handle: Some(code.session_handle.clone()),
        offline: code.scopes.iter().any(|s| s == OFFLINE_ACCESS),
        issued_at: state.services.clock.now(),
        claims: code.claims.clone(),
    };
    // The person logged out (or was blocked) since: no tokens for that session. The session
    // as the store held it when the code was taken (a code stored before codes were linked
    // to their session reads it now).
    let sessions = &state.services.sessions;
    let live = match session_record {
        Some(record) => sessions.is_live_record(record.as_deref()),
        None => sessions.is_live(&code.session_handle).await,
    };
    match live {
        Ok(true) => {}
        Ok(false) => return invalid_grant("the login session has ended"),
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while checking a session");
            return unavailable();
        }
    }
    let tokens = &oidc.tokens;
    let prepared = (|| {
        let access = tokens.prepare_access_token(client, &grant, grant.claims.clone())?;
        let refresh = tokens.grants().prepare_refresh_token(&grant)?;
        let members = tokens.grants().grant_members(&grant)?;
        Ok::<_, sesame_core::error::StoreError>((access, refresh, members))
    })();
    let (access, refresh, members) = match prepared {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "could not prepare the tokens of a code");
            return unavailable();
        }
    };
    // The grant recorded against the session and the person's consent, and its tokens, in
    // one step made only while the session still exists: a logout racing this exchange
    // either ended the session first (nothing is issued) or comes after and revokes the
    // grant it finds.
    let mut writes = Writes {
        puts: vec![(access.key.clone(), access.value.clone(), access.ttl)],
        members,
    };
    writes.puts.extend(refresh.puts.iter().cloned());
    match state
        .services
        .store
        .write_while_live(&session_store_key(&code.session_handle), &writes)
        .await
    {
        Ok(true) => {}
        Ok(false) => return invalid_grant("the login session has ended"),
        Err(e) => {
            tracing::error!(error = %e, "could not issue the tokens of a code");
            return unavailable();
        }
    }
    // In embedded mode an operator's block cannot reach this process's sessions (A54).
    if !crate::pipeline::session::account_still_usable(state, Some(code.account_id)).await {
        if let Err(e) = oidc.tokens.revoke_grant(&grant.grant_id).await {
            tracing::error!(error = %e, "could not revoke a grant of an unusable account");
        }
        return invalid_grant("the account can no longer log in");
    }
    token_response(
        state,
        client,
        &grant,
        access.token,
        Some(refresh.token),
        Some(code.nonce.as_deref()),
    )
}

/// Issues an access token for `grant` (client credentials: no refresh token, no ID token)
/// and answers with it.
async fn respond_with_access_token(
    state: &AppState,
    client: &OidcClient,
    grant: &Grant,
) -> HttpResponse {
    let tokens = &state.services.oidc.tokens;
    match tokens
        .issue_access_token(client, grant, grant.claims.clone())
        .await
    {
        Ok(access_token) => token_response(state, client, grant, access_token, None, None),
        Err(e) => {
            tracing::error!(error = %e, "could not issue an access token");
            unavailable()
        }
    }
}

/// The token response (RFC 6749 §5.1) with the tokens issued, and an ID token signed now
/// when `id_token_nonce` is given (the request's nonce, if it had one) and `openid` was
/// granted.
fn token_response(
    state: &AppState,
    client: &OidcClient,
    grant: &Grant,
    access_token: String,
    refresh_token: Option<String>,
    id_token_nonce: Option<Option<&str>>,
) -> HttpResponse {
    let tokens = &state.services.oidc.tokens;
    let mut body = Map::new();
    if let Some(nonce) = id_token_nonce.filter(|_| grant.scopes.iter().any(|s| s == OPENID_SCOPE)) {
        match tokens.id_token(
            client,
            grant,
            nonce,
            Some(&access_token),
            grant.claims.clone(),
        ) {
            Ok(t) => {
                body.insert("id_token".to_owned(), Value::from(t));
            }
            Err(e) => {
                tracing::error!(error = %e, "could not sign an ID token");
                return oauth_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "server_error",
                    "could not sign the ID token",
                );
            }
        }
    }
    if let Some(refresh_token) = refresh_token {
        body.insert("refresh_token".to_owned(), Value::from(refresh_token));
    }
    body.insert("access_token".to_owned(), Value::from(access_token));
    body.insert("token_type".to_owned(), Value::from("Bearer"));
    body.insert(
        "expires_in".to_owned(),
        Value::from(tokens.access_token_ttl_secs(client)),
    );
    body.insert("scope".to_owned(), Value::from(grant.scopes.join(" ")));
    tracing::debug!(client.id = %client.client_id, "tokens issued");
    HttpResponse::Ok().json(Value::Object(body))
}

/// `scope` of a refresh or client-credentials request: space-separated scope tokens.
fn requested_scopes(params: &FormParams) -> Result<Option<Vec<String>>, Box<HttpResponse>> {
    let Some(raw) = params.one("scope") else {
        return Ok(None);
    };
    let scopes: Vec<String> = raw
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.iter().any(|s| !is_scope_token(s)) {
        return Err(Box::new(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "malformed scope",
        )));
    }
    Ok(Some(scopes))
}

async fn refresh_token(state: &AppState, client: &OidcClient, params: &FormParams) -> HttpResponse {
    let narrower = match requested_scopes(params) {
        Ok(s) => s,
        Err(res) => return *res,
    };
    let presented = params.one("refresh_token").unwrap_or_default();
    let oidc = &state.services.oidc;
    let tokens = &oidc.tokens;
    // The access token is made from the family's grant (narrowed as asked) and stored with
    // the successor refresh token, in the rotation's one write.
    let narrowed = narrower.clone();
    let make_access: sesame_protocol::oidc::grants::AccessTokenMaker<'_> =
        Box::new(move |family_grant| {
            let grant = narrowed_grant(family_grant, narrowed.as_deref());
            tokens.prepare_access_token(client, &grant, grant.claims.clone())
        });
    let rotated = match tokens
        .grants()
        .rotate_refresh_token_with_session(
            presented,
            &client.client_id,
            narrower.as_deref(),
            Some(make_access),
        )
        .await
    {
        Ok(rotated) => rotated,
        Err(e) => return token_error(&e),
    };
    let (grant, next) = (rotated.grant, rotated.next);
    let Some(access_token) = rotated.access_token else {
        tracing::error!("a rotation asked for an access token returned none");
        return unavailable();
    };
    // A grant tied to the SSO session ends with it; offline_access outlives it, but never
    // the account's blocking.
    if !grant.offline {
        // The session came with the token when it was linked to it (one round trip).
        let live = match (&rotated.session, &grant.session_handle) {
            (Some(record), _) => state.services.sessions.is_live_record(record.as_deref()),
            (None, Some(handle)) => state.services.sessions.is_live(handle).await,
            (None, None) => Ok(false),
        };
        match live {
            Ok(true) => {}
            Ok(false) => {
                if let Err(e) = oidc.tokens.revoke_grant(&grant.grant_id).await {
                    tracing::error!(error = %e, "could not revoke a grant of an ended session");
                }
                return invalid_grant("the login session has ended");
            }
            Err(e) => {
                tracing::error!(error = %e, "store unavailable while checking a session");
                return unavailable();
            }
        }
        // In embedded mode an operator's block cannot reach this process's sessions (A54).
        if !crate::pipeline::session::account_still_usable(state, grant.account_id).await {
            if let Err(e) = oidc.tokens.revoke_grant(&grant.grant_id).await {
                tracing::error!(error = %e, "could not revoke a grant of an unusable account");
            }
            return invalid_grant("the account can no longer log in");
        }
    } else if let Some(account_id) = grant.account_id {
        match state.services.accounts_repo.find_by_id(account_id).await {
            Ok(Some(a)) if a.state == sesame_core::account::AccountState::Active => {}
            Ok(_) => {
                if let Err(e) = oidc.tokens.revoke_grant(&grant.grant_id).await {
                    tracing::error!(error = %e, "could not revoke a grant of an unusable account");
                }
                return invalid_grant("the account can no longer log in");
            }
            Err(e) => {
                tracing::error!(error = %e, "database unavailable while refreshing a token");
                return unavailable();
            }
        }
    }
    let grant = narrowed_grant(&grant, narrower.as_deref());
    // No new ID token on refresh (OpenID Connect Core §12.2 makes it optional): it would
    // cost a signature on every refresh and say nothing the first one did not.
    HttpResponse::Ok().json(json!({
        "access_token": access_token,
        "token_type": "Bearer",
        "expires_in": tokens.access_token_ttl_secs(client),
        "refresh_token": next,
        "scope": grant.scopes.join(" "),
    }))
}

/// `grant` with the scopes of a refresh request that narrows them (RFC 6749 §6: narrowing
/// only; widening was refused by the rotation, the token unspent).
fn narrowed_grant(grant: &Grant, narrower: Option<&[String]>) -> Grant {
    let mut grant = grant.clone();
    if let Some(narrower) = narrower {
        grant.claims = sesame_protocol::attributes::claims_for_scopes(&grant.claims, narrower);
        grant.scopes = narrower.to_vec();
    }
    grant
}

async fn client_credentials(
    state: &AppState,
    client: &OidcClient,
    params: &FormParams,
) -> HttpResponse {
    if client.public || !client.client_credentials {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            "this client may not use client_credentials",
        );
    }
    let scopes = match requested_scopes(params) {
        Ok(Some(s)) => s,
        Ok(None) => client
            .scopes
            .iter()
            .filter(|s| s.as_str() != OFFLINE_ACCESS)
            .cloned()
            .collect(),
        Err(res) => return *res,
    };
    // Person scopes mean nothing without a person.
    if scopes
        .iter()
        .any(|s| s == OPENID_SCOPE || s == OFFLINE_ACCESS || !client.allows_scope(s))
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "a scope is not allowed for this client",
        );
    }
    let grant = Grant {
        grant_id: sesame_core::random::token(),
        client_id: client.client_id.clone(),
        account_id: None,
        login: None,
        scopes,
        auth_time: None,
        amr: Vec::new(),
        acr: None,
        session_handle: None,
        offline: false,
        issued_at: state.services.clock.now(),
        claims: Map::new(),
    };
    respond_with_access_token(state, client, &grant).await
}
