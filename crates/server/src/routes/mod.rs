//! HTTP routes, one module per endpoint group.

pub mod account;
pub mod account_page;
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
pub mod required_actions;

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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// References from one route module into another that the login pipeline's rewrite
    /// (issue 14) removes: `(file under src/routes, module it reaches into)`. Nothing may be
    /// added here; what the rewrite moves to `web/` leaves it.
    const LEFT_FOR_THE_PIPELINE: &[(&str, &str)] = &[
        ("account.rs", "login"),
        ("account_page.rs", "login"),
        ("account_page.rs", "password_reset"),
        ("activation.rs", "charter"),
        ("cas.rs", "login"),
        ("charter.rs", "required_actions"),
        ("helpdesk_console.rs", "login"),
        ("login.rs", "assistance"),
        ("login.rs", "oidc"),
        ("login.rs", "required_actions"),
        ("oidc/authorize.rs", "login"),
        ("oidc/logout.rs", "login"),
        ("oidc/logout.rs", "logout"),
        ("oidc/token.rs", "login"),
        ("required_actions.rs", "login"),
    ];

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir)
            .expect("src/routes is readable")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// The route modules that `text` reaches into: `crate::routes::<module>`, and for a file
    /// directly under `routes/`, `super::<module>::` (its parent being `routes/mod.rs`).
    fn reached_modules(text: &str, top_level: bool) -> Vec<String> {
        let mut modules = Vec::new();
        let mut collect = |prefix: &str, needs_path: bool| {
            for (at, _) in text.match_indices(prefix) {
                let rest = &text[at + prefix.len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let is_module_path = rest[name.len()..].starts_with("::");
                if !name.is_empty() && (!needs_path || is_module_path) {
                    modules.push(name);
                }
            }
        };
        collect("crate::routes::", false);
        if top_level {
            collect("super::", true);
        }
        modules
    }

    /// No route module imports another route module (issue 14): what they share lives in
    /// `crate::web`. Only `routes/mod.rs`, which registers them all, names them.
    #[test]
    fn no_route_module_reaches_into_another() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routes");
        let mut files = Vec::new();
        rust_files(&root, &mut files);
        let mut found = Vec::new();
        for file in files {
            let relative = file
                .strip_prefix(&root)
                .expect("under src/routes")
                .to_string_lossy()
                .replace('\\', "/");
            if relative == "mod.rs" {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("a readable source file");
            let top_level = !relative.contains('/');
            for module in reached_modules(&text, top_level) {
                let pair = (relative.clone(), module);
                if !found.contains(&pair) {
                    found.push(pair);
                }
            }
        }
        let new: Vec<_> = found
            .iter()
            .filter(|(file, module)| {
                !LEFT_FOR_THE_PIPELINE
                    .iter()
                    .any(|(f, m)| f == file && m == module)
            })
            .collect();
        assert!(
            new.is_empty(),
            "route modules reaching into other route modules (move the shared code to crate::web): {new:?}"
        );
    }

    #[test]
    fn module_references_are_found() {
        let text = "use crate::routes::login::current_session;\nuse super::problem::Problem;\nuse super::FormParams;";
        assert_eq!(reached_modules(text, false), ["login"]);
        assert_eq!(reached_modules(text, true), ["login", "problem"]);
    }
}
