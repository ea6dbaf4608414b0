//! `GET|POST /userinfo` (OpenID Connect Core §5.3, RFC 6750), `POST /introspect` (RFC
//! 7662) and `POST /revoke` (RFC 7009).

use actix_web::http::header::{HeaderValue, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};
use sesame_protocol::oidc::OPENID_SCOPE;

use super::{authenticate_client, bearer_token, oauth_error, FormParams};
use crate::web::AppState;

fn bearer_error(status: StatusCode, error: &str, description: &str) -> HttpResponse {
    let challenge =
        format!("Bearer realm=\"sesame\", error=\"{error}\", error_description=\"{description}\"");
    let mut res = oauth_error(status, error, description);
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(WWW_AUTHENTICATE, v);
    }
    res
}

fn unavailable() -> HttpResponse {
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "try again later",
    )
}

/// `GET /userinfo`
pub async fn userinfo_get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    userinfo(&state, &req, None).await
}

/// `POST /userinfo`
pub async fn userinfo_post(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let form = FormParams::parse(&body);
    userinfo(&state, &req, Some(&form)).await
}

async fn userinfo(state: &AppState, req: &HttpRequest, form: Option<&FormParams>) -> HttpResponse {
    let token = match bearer_token(req, form) {
        Ok(Some(t)) => t,
        Ok(None) => {
            // RFC 6750 §3.1: no credentials, no error code.
            let mut res = HttpResponse::Unauthorized().finish();
            res.headers_mut().insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sesame\""),
            );
            return res;
        }
        Err(super::TokenSentTwice) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "send the token once",
            )
        }
    };
    let record = match state.services.oidc.tokens.access_token(&token).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return bearer_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the access token is invalid, expired or revoked",
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "userinfo: store unavailable");
            return unavailable();
        }
    };
    if record.account_id.is_none() || !record.scopes.iter().any(|s| s == OPENID_SCOPE) {
        return bearer_error(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            "the token does not carry the openid scope",
        );
    }
    let mut claims = record.claims.clone();
    claims.insert("sub".to_owned(), Value::from(record.subject()));
    HttpResponse::Ok().json(Value::Object(claims))
}

/// `POST /introspect`: for confidential clients, about tokens issued to them.
pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let params = FormParams::parse(&body);
    let client = match authenticate_client(&state, &req, &params).await {
        Ok(c) if !c.public => c,
        Ok(_) => {
            return super::ClientAuthFailure::Invalid { basic: false }.response();
        }
        Err(failure) => return failure.response(),
    };
    let Some(token) = params.one("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    let record = match state.services.oidc.tokens.access_token(token).await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "introspection: store unavailable");
            return unavailable();
        }
    };
    // A client learns nothing about tokens issued to others, not even that they exist.
    match record.filter(|r| r.client_id == client.client_id) {
        Some(r) => {
            let mut body = json!({
                "active": true,
                "scope": r.scopes.join(" "),
                "client_id": r.client_id,
                "token_type": "Bearer",
                "exp": r.expires_at,
                "iat": r.issued_at,
                "sub": r.subject(),
                "aud": r.client_id,
                "iss": state.base(),
            });
            if let (Some(login), Some(obj)) = (&r.login, body.as_object_mut()) {
                obj.insert("username".to_owned(), Value::from(login.as_str()));
            }
            if let (Some(sid), Some(obj)) = (&r.sid, body.as_object_mut()) {
                obj.insert("sid".to_owned(), Value::from(sid.as_str()));
            }
            HttpResponse::Ok().json(body)
        }
        None => HttpResponse::Ok().json(json!({ "active": false })),
    }
}

/// `POST /revoke`: revokes an access or refresh token of the calling client; 200 whether or
/// not the token existed (RFC 7009 §2.2).
pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    let params = FormParams::parse(&body);
    let client = match authenticate_client(&state, &req, &params).await {
        Ok(c) => c,
        Err(failure) => return failure.response(),
    };
    let Some(token) = params.one("token") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    let tokens = &state.services.oidc.tokens;
    let refresh_first = params.one("token_type_hint") == Some("refresh_token");
    let outcome = if refresh_first {
        match tokens
            .grants()
            .revoke_refresh_token(token, &client.client_id)
            .await
        {
            Ok(true) => Ok(true),
            Ok(false) => tokens.revoke_access_token(token, &client.client_id).await,
            Err(e) => Err(e),
        }
    } else {
        match tokens.revoke_access_token(token, &client.client_id).await {
            Ok(true) => Ok(true),
            Ok(false) => {
                tokens
                    .grants()
                    .revoke_refresh_token(token, &client.client_id)
                    .await
            }
            Err(e) => Err(e),
        }
    };
    match outcome {
        Ok(revoked) => {
            tracing::info!(client.id = %client.client_id, revoked, "token revocation");
            HttpResponse::Ok().finish()
        }
        Err(e) => {
            tracing::error!(error = %e, "revocation: store unavailable");
            unavailable()
        }
    }
}
