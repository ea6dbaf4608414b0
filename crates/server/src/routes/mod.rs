//! HTTP routes, one module per endpoint group.

pub mod account;
pub mod account_page;
pub mod account_second_factor;
pub mod activation;
pub mod admin;
pub mod assets;
pub mod assistance;
pub mod cas;
pub mod charter;
pub mod health;
pub mod helpdesk_console;
pub mod login;
pub mod logout;
pub mod oidc;
pub mod password_reset;
pub mod saml;
pub mod second_factor;

use actix_web::http::Method;
use actix_web::middleware::from_fn;
use actix_web::{web, HttpRequest, HttpResponse};

use crate::cors;
use crate::web::error::{PageError, PageKind};
use crate::web::AppState;

/// Registers every route.
///
/// actix-web tries the routes in registration order, one pattern match each: `/jwks` and
/// discovery came 28th, and routing cost them about 6,900 instructions a request (callgrind,
/// bench/analysis.md), as much as the rest of their handling. So the endpoints that machines
/// call at high rates come first: metadata, tokens, ticket validation, the login form. Every
/// path is a fixed string that no other pattern matches, so the order decides nothing else.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(oidc::discovery::configuration),
    )
    .route("/jwks", web::get().to(oidc::discovery::jwks))
    .service(
        web::resource("/token")
            .wrap(from_fn(cors::public_client_cors))
            .route(web::post().to(oidc::token::token))
            .route(web::route().method(Method::OPTIONS).to(cors::preflight)),
    )
    .route(
        "/cas/p3/serviceValidate",
        web::get().to(cas::service_validate_v3),
    )
    .route(
        "/cas/serviceValidate",
        web::get().to(cas::service_validate_v2),
    )
    .route("/cas/login", web::get().to(login::show_login))
    .route("/cas/login", web::post().to(login::submit_login))
    .route("/health/live", web::get().to(health::live))
    .route("/health/ready", web::get().to(health::ready));
    cfg.configure(password_reset::configure)
        .configure(account_page::configure)
        .configure(account_second_factor::configure)
        .configure(helpdesk_console::configure);
    cfg.route("/", web::get().to(root))
        .route("/cas/logout", web::get().to(logout::logout))
        .route("/cas/logout", web::post().to(logout::logout_form))
        .route("/cas/validate", web::get().to(cas::validate_v1))
        .route("/cas/proxyValidate", web::get().to(cas::proxy_validate_v2))
        .route(
            "/cas/p3/proxyValidate",
            web::get().to(cas::proxy_validate_v3),
        )
        .route("/cas/proxy", web::get().to(cas::proxy))
        .route("/cas/samlValidate", web::post().to(cas::saml_validate))
        .route("/saml/metadata", web::get().to(saml::metadata))
        .route("/saml/sso", web::get().to(saml::sso_redirect))
        .route("/saml/sso", web::post().to(saml::sso_post))
        .route("/saml/unsolicited", web::get().to(saml::unsolicited))
        .route("/saml/slo", web::get().to(saml::slo_redirect))
        .route("/saml/slo", web::post().to(saml::slo_post))
        .route("/authorize", web::get().to(oidc::authorize::authorize_get))
        .route(
            "/authorize",
            web::post().to(oidc::authorize::authorize_post),
        )
        .route(
            "/authorize/continue",
            web::get().to(oidc::authorize::resume),
        )
        .route(
            "/authorize/consent",
            web::get().to(oidc::authorize::show_consent_step),
        )
        .route(
            "/authorize/consent",
            web::post().to(oidc::authorize::consent),
        )
        .service(
            web::resource("/userinfo")
                .wrap(from_fn(cors::public_client_cors))
                .route(web::get().to(oidc::resource::userinfo_get))
                .route(web::post().to(oidc::resource::userinfo_post))
                .route(web::route().method(Method::OPTIONS).to(cors::preflight)),
        )
        .route("/introspect", web::post().to(oidc::resource::introspect))
        .service(
            web::resource("/revoke")
                .wrap(from_fn(cors::public_client_cors))
                .route(web::post().to(oidc::resource::revoke))
                .route(web::route().method(Method::OPTIONS).to(cors::preflight)),
        )
        .route("/logout", web::get().to(oidc::logout::end_session_get))
        .route("/logout", web::post().to(oidc::logout::end_session_post))
        .route(
            "/account/applications",
            web::get().to(account::applications),
        )
        .route(
            "/account/applications/revoke",
            web::post().to(account::revoke),
        )
        .route("/static/{name}", web::get().to(assets::static_file))
        .configure(activation::configure)
        .route(
            "/login/passkey/options",
            web::post().to(login::passkey_options),
        )
        .route("/login/passkey", web::post().to(login::submit_passkey))
        .route("/login/second-factor", web::get().to(second_factor::show))
        .route(
            "/login/second-factor",
            web::post().to(second_factor::submit),
        )
        .route(
            "/login/second-factor-reminder",
            web::get().to(second_factor::show_reminder),
        )
        .route(
            "/login/second-factor-reminder",
            web::post().to(second_factor::submit_reminder),
        )
        .route("/charter", web::get().to(charter::show_charter))
        .route("/charter", web::post().to(charter::submit_charter))
        .configure(assistance::configure)
        .default_service(web::to(not_found));
}

async fn root(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", format!("{}/cas/login", state.base())))
        .finish()
}

async fn not_found(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    Err(PageError::for_request(&state, &req, PageKind::NOT_FOUND))
}
