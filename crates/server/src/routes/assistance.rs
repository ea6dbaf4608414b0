//! `GET|POST /assistance`, `GET /assistance/sent`: the assistance form, which works without
//! logging in (seed 004: a blocked person can no longer reach the service desk; seed 002: the
//! help form for parents), and the page shown when a blocked account logs in with its correct
//! password.
//!
//! Every kind of person may ask: `/assistance` first asks who they are (staff, student, pupil,
//! parent: links, so no script is needed), then `/assistance?as=<kind>` shows the fields that
//! fit them (`sesame_lifecycle::helpdesk::assistance::fields_for`).
//!
//! The form is protected like the login form: a foreign `Origin` is refused and each form
//! carries a single-use token from the store. Every well-formed request gets the same
//! answer, whatever the institutional address is.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::helpdesk::RequesterKind;
use sesame_core::i18n::Lang;
use sesame_lifecycle::helpdesk::assistance::{
    self, fields_for, AssistanceForm, Field, Need, Problem, SubmitError,
};

use crate::web::csrf::ASSISTANCE_FORM;
use crate::web::AppState;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/assistance", web::get().to(show_form))
        .route("/assistance", web::post().to(submit_form))
        .route("/assistance/sent", web::get().to(sent));
}

/// Query of the pages.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    lang: Option<String>,
    reference: Option<String>,
    /// Who is asking: `staff`, `student`, `pupil`, `parent`.
    #[serde(rename = "as")]
    kind: Option<String>,
}

/// The form as posted.
#[derive(Debug, Deserialize)]
pub struct AssistancePost {
    token: Option<String>,
    lang: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    account: Option<String>,
    number: Option<String>,
    child_name: Option<String>,
    school: Option<String>,
    personal_email: Option<String>,
    phone: Option<String>,
    description: Option<String>,
}

/// `GET /assistance`
pub async fn show_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let Some(kind) = query
        .kind
        .as_deref()
        .and_then(|k| k.parse::<RequesterKind>().ok())
    else {
        return choose_kind(&state, &req, lang);
    };
    let form = AssistanceForm {
        kind,
        ..AssistanceForm::default()
    };
    render_form(&state, &req, lang, StatusCode::OK, &form, &[], None).await
}

/// The first step: who is asking (each a link to the form that fits them).
fn choose_kind(state: &AppState, req: &HttpRequest, lang: Lang) -> HttpResponse {
    let kinds: Vec<minijinja::Value> = RequesterKind::ALL
        .iter()
        .map(|k| {
            minijinja::context! {
                href => format!("{}/assistance?as={}", state.base_path(), k.as_str()),
                label => state.renderer.text(lang, &format!("assistance_as_{}", k.as_str())),
            }
        })
        .collect();
    state.page(
        StatusCode::OK,
        "assistance_choose.html",
        lang,
        req,
        minijinja::context! { kinds => kinds },
    )
}

async fn render_form(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    status: StatusCode,
    form: &AssistanceForm,
    problems: &[(Field, Problem)],
    message: Option<String>,
) -> HttpResponse {
    let token = match ASSISTANCE_FORM.issue(state.services.store.as_ref()).await {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(error = %e, "cannot issue an assistance form: store unavailable");
            return state.unavailable(req, lang);
        }
    };
    let text = |key: &str| state.renderer.text(lang, key);
    let texts = state.renderer.texts(lang);
    // A text that fits this kind of person if there is one (`…_parent`), else the general one.
    let fitted = |key: &str| {
        texts
            .get(&format!("{key}_{}", form.kind.as_str()))
            .cloned()
            .unwrap_or_else(|| text(key))
    };
    let error_of = |field: Field| {
        problems
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, p)| match p {
                Problem::Missing => text("assistance_error_missing"),
                Problem::TooLong => text("assistance_error_too_long"),
                Problem::Invalid => text("assistance_error_invalid"),
                Problem::SameAddress => text("assistance_error_same_address"),
                Problem::NoContact => text("assistance_error_no_contact"),
            })
    };
    let fields: Vec<minijinja::Value> = fields_for(form.kind)
        .into_iter()
        .map(|(f, need)| {
            let key = format!("assistance_{}", f.name());
            let (kind, autocomplete, value) = match f {
                Field::Name => ("text", "name", &form.name),
                Field::Account => ("text", "username", &form.account),
                Field::Number => ("text", "", &form.number),
                Field::ChildName => ("text", "", &form.child_name),
                Field::School => ("text", "", &form.school),
                Field::PersonalEmail => ("email", "email", &form.personal_email),
                Field::Phone => ("tel", "tel", &form.phone),
                Field::Description => ("textarea", "", &form.description),
            };
            minijinja::context! {
                name => f.name(),
                label => fitted(&key),
                hint => fitted(&format!("{key}_hint")),
                required => need == Need::Required,
                kind => kind,
                max => f.max_chars(),
                autocomplete => autocomplete,
                value => value,
                error => error_of(f),
            }
        })
        .collect();
    state.page(
        status,
        "assistance.html",
        lang,
        req,
        minijinja::context! {
            token => token,
            kind => form.kind.as_str(),
            kind_label => text(&format!("assistance_as_{}", form.kind.as_str())),
            fields => fields,
            has_errors => !problems.is_empty(),
            message => message,
        },
    )
}

/// Values kept to show the form again: bounded, so a huge post is not echoed back.
fn bounded(value: Option<&str>, max: usize) -> String {
    value.unwrap_or_default().chars().take(max).collect()
}

/// `POST /assistance`
pub async fn submit_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    post: web::Form<AssistancePost>,
) -> HttpResponse {
    let post = post.into_inner();
    let lang = state.lang(&req, post.lang.as_deref());
    let Some(kind) = post
        .kind
        .as_deref()
        .and_then(|k| k.parse::<RequesterKind>().ok())
    else {
        return choose_kind(&state, &req, lang);
    };
    // Each field is bounded a little above its limit: long enough to report "too long".
    let field = |value: &Option<String>, f: Field| bounded(value.as_deref(), f.max_chars() + 1);
    let form = AssistanceForm {
        kind,
        name: field(&post.name, Field::Name),
        account: field(&post.account, Field::Account),
        number: field(&post.number, Field::Number),
        child_name: field(&post.child_name, Field::ChildName),
        school: field(&post.school, Field::School),
        personal_email: field(&post.personal_email, Field::PersonalEmail),
        phone: field(&post.phone, Field::Phone),
        description: field(&post.description, Field::Description),
    };
    let token_valid = match ASSISTANCE_FORM
        .take(state.services.store.as_ref(), post.token.as_deref())
        .await
    {
        Ok(valid) => valid,
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while checking an assistance form");
            return state.unavailable(&req, lang);
        }
    };
    if !token_valid {
        let message = state.renderer.text(lang, "error_form_expired");
        return render_form(
            &state,
            &req,
            lang,
            StatusCode::FORBIDDEN,
            &form,
            &[],
            Some(message),
        )
        .await;
    }
    let checked = match assistance::check(&form) {
        Ok(c) => c,
        Err(problems) => {
            return render_form(
                &state,
                &req,
                lang,
                StatusCode::BAD_REQUEST,
                &form,
                &problems,
                None,
            )
            .await
        }
    };
    match state
        .services
        .helpdesk
        .assistance
        .submit(checked, lang, state.client_ip(&req))
        .await
    {
        Ok(request) => {
            let location = format!(
                "{}/assistance/sent?reference={}&lang={}",
                state.base(),
                request.reference,
                lang.tag()
            );
            HttpResponse::SeeOther()
                .insert_header(("Location", location))
                .finish()
        }
        Err(SubmitError::TooMany) => {
            let message = state.renderer.text(lang, "assistance_too_many");
            let mut res = state.page(
                StatusCode::TOO_MANY_REQUESTS,
                "error.html",
                lang,
                &req,
                minijinja::context! { title => state.renderer.text(lang, "assistance_title"), message => message },
            );
            res.headers_mut().insert(
                actix_web::http::header::RETRY_AFTER,
                actix_web::http::header::HeaderValue::from_static("3600"),
            );
            res
        }
        Err(SubmitError::Helpdesk(e)) => {
            tracing::error!(error = %e, "could not store an assistance request");
            state.unavailable(&req, lang)
        }
    }
}

/// Whether `raw` looks like a reference Sesame hands out (anything else is not shown back).
fn is_reference(raw: &str) -> bool {
    raw.len() == 11
        && raw.starts_with("AS-")
        && raw[3..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `GET /assistance/sent`
pub async fn sent(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let reference = query.reference.as_deref().filter(|r| is_reference(r));
    state.page(
        StatusCode::OK,
        "assistance_sent.html",
        lang,
        &req,
        minijinja::context! { reference => reference },
    )
}
