//! `GET /admin/api/v1/openapi.json`: the API's OpenAPI 3.1 document, generated from the
//! handlers' annotations. `docs/admin-api.openapi.json` is a checked-in copy (`make openapi`
//! rewrites it; a test fails when they differ).

use actix_web::{web, HttpRequest, HttpResponse};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{accounts, authorize, helpdesk, imports, respond, second_factors, sessions};
use crate::web::problem::{ApiError, Problem};
use crate::web::AppState;

/// The document's description of the API.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Sesame admin API",
        version = "1",
        description = "Accounts, imports, sessions and the helpdesk, for provisioning systems and helpdesk tools. \
            Authenticate with `Authorization: Bearer <API key>` (`sesame api-key create`); each \
            operation names the scope it needs. Errors are RFC 9457 problem objects. See docs/admin-api.md."
    ),
    paths(
        accounts::create_account,
        accounts::get_account,
        accounts::update_account,
        accounts::disable_account,
        accounts::block_account,
        accounts::unblock_account,
        accounts::list_audit_events,
        sessions::list_sessions,
        sessions::end_sessions,
        imports::create_import,
        helpdesk::send_reset_link,
        helpdesk::send_activation_link,
        helpdesk::list_requests,
        helpdesk::get_request,
        helpdesk::close_request,
        second_factors::list_second_factors,
        second_factors::remove_second_factors,
    ),
    components(schemas(Problem)),
    modifiers(&BearerKey),
    tags(
        (name = "accounts", description = "Create, read, update, disable, block and unblock accounts"),
        (name = "sessions", description = "The SSO sessions of an account"),
        (name = "imports", description = "Provisioning files from HR and student systems"),
        (name = "helpdesk", description = "Reset and activation links, assistance requests, lost second factors"),
    )
)]
pub struct AdminApiDoc;

/// Declares the `api_key` bearer scheme the operations refer to.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("sesame_ak_<id>_<secret>")
                    .description(Some(
                        "An API key made with `sesame api-key create`; its scopes are \
                         accounts:read, accounts:write, imports, sessions, helpdesk.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document as pretty JSON, with a final newline (as checked in).
///
/// # Errors
/// If serialisation fails.
pub fn document_json() -> Result<String, serde_json::Error> {
    let mut json = AdminApiDoc::openapi().to_pretty_json()?;
    json.push('\n');
    Ok(json)
}

/// Serves the document (to any valid key: the surface is not described to strangers).
pub async fn get_openapi(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    respond(get(&state, &req).await)
}

async fn get(state: &AppState, req: &HttpRequest) -> Result<HttpResponse, ApiError> {
    authorize(state, req, None).await?;
    let json = document_json().map_err(|e| Problem::internal(&e))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(json))
}
