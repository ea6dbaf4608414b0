//! The helpdesk console, `/helpdesk/…`: server-rendered pages where an agent finds an
//! account, sees its state, how it may activate, and its recent security events (in words),
//! compares what a caller says with its record (match / no match, never the record), and
//! unlocks, blocks, unblocks, sends an activation or a password-reset link, issues an
//! activation or a password-reset code, sends the link that verifies an unverified recovery
//! address, and closes assistance requests (docs/helpdesk.md).
//!
//! Agents log in at `/cas/login` like anyone; the console is for the logins listed in
//! `helpdesk.agents`, everybody else gets 403. Every form carries a token derived from the
//! session cookie, and a foreign `Origin` is refused, as on the account page. Every action
//! goes through the same operation as the command line and the admin API, audited with
//! `helpdesk:<agent login>` as actor.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sesame_core::account::{Account, AccountState};
use sesame_core::error::AccountError;
use sesame_core::helpdesk::{AssistanceRequest, BlockReason, RequestFilter};
use sesame_core::i18n::Lang;
use sesame_core::ids::LoginName;
use sesame_core::mail::mask_email;
use sesame_core::sms::mask_phone;
use sesame_lifecycle::activation::error::ActivationError;
use sesame_lifecycle::activation::settings::ActivationPath;
use sesame_lifecycle::error::OperatorLinkError;
use sesame_lifecycle::helpdesk::identity::IdentityField;
use sesame_lifecycle::helpdesk::HelpdeskError;
use sesame_lifecycle::self_service::VerificationRequest;

use crate::pipeline::session::current_session;
use crate::web::csrf::{self, FormPurpose};
use crate::web::AppState;

/// Most accounts a search shows.
const SEARCH_LIMIT: usize = 50;
/// Most requests a list shows.
const REQUEST_LIMIT: i64 = 200;
/// Audit events shown on an account's page.
const SHOWN_EVENTS: i64 = 20;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/helpdesk", web::get().to(search))
        .route("/helpdesk/accounts/{login}", web::get().to(show_account))
        .route(
            "/helpdesk/accounts/{login}/{action}",
            web::post().to(account_action),
        )
        .route("/helpdesk/requests", web::get().to(list_requests))
        .route(
            "/helpdesk/requests/{reference}",
            web::get().to(show_request),
        )
        .route(
            "/helpdesk/requests/{reference}/close",
            web::post().to(close_request),
        );
}

/// A signed-in helpdesk agent.
struct Agent {
    login: LoginName,
    csrf: String,
}

impl Agent {
    /// The actor of the audit events the agent causes.
    fn actor(&self) -> String {
        format!("helpdesk:{}", self.login)
    }
}

/// The agent of this request: anonymous people go to the login page (and back to the
/// console), signed-in people who are not agents get 403.
async fn agent(state: &AppState, req: &HttpRequest) -> Result<Agent, HttpResponse> {
    let Some((cookie, session)) = current_session(state, req).await else {
        return Err(HttpResponse::SeeOther()
            .insert_header((
                "Location",
                format!("{}/cas/login?next=/helpdesk", state.base()),
            ))
            .finish());
    };
    if !state.settings.helpdesk.is_agent(&session.login) {
        tracing::info!(user.id = %session.account_id, "helpdesk console refused: not an agent");
        return Err(state.error_page(
            StatusCode::FORBIDDEN,
            state.lang(req, None),
            req,
            "helpdesk_forbidden_title",
            "helpdesk_forbidden_text",
        ));
    }
    Ok(Agent {
        login: session.login,
        csrf: FormPurpose::Helpdesk.token(&cookie),
    })
}

/// [`agent`], for a form: the token must match and the request must not come from another
/// site.
async fn posting_agent(
    state: &AppState,
    req: &HttpRequest,
    csrf: Option<&str>,
) -> Result<Agent, HttpResponse> {
    let agent = agent(state, req).await?;
    if !csrf::presented_matches(csrf, &agent.csrf) {
        return Err(state.form_expired(req, state.lang(req, None)));
    }
    Ok(agent)
}

/// A path segment for a login or a reference.
fn segment(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}

fn not_found(state: &AppState, req: &HttpRequest, lang: Lang) -> HttpResponse {
    state.error_page(
        StatusCode::NOT_FOUND,
        lang,
        req,
        "not_found_title",
        "not_found_text",
    )
}

fn state_text(state: &AppState, lang: Lang, account_state: AccountState) -> String {
    state
        .renderer
        .text(lang, &format!("helpdesk_state_{}", account_state.as_str()))
}

fn account_item(state: &AppState, lang: Lang, a: &Account) -> minijinja::Value {
    minijinja::context! {
        login => a.login.as_str(),
        href => format!("{}/helpdesk/accounts/{}", state.base_path(), segment(a.login.as_str())),
        name => format!("{} {}", a.given_name, a.family_name),
        email => a.email.as_ref().map(|e| e.as_str().to_owned()),
        state => state_text(state, lang, a.state),
    }
}

/// Query of `GET /helpdesk`.
#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    lang: Option<String>,
}

/// `GET /helpdesk`: the search form and, with `?q=`, the accounts it finds.
pub async fn search(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<SearchQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let agent = match agent(&state, &req).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let q = query.q.as_deref().unwrap_or_default().trim().to_owned();
    let results = if q.is_empty() {
        None
    } else {
        match state.services.admin.search(&q, SEARCH_LIMIT).await {
            Ok(found) => Some(
                found
                    .iter()
                    .map(|a| account_item(&state, lang, a))
                    .collect::<Vec<_>>(),
            ),
            Err(e) => {
                tracing::error!(error = %e, "database unavailable while searching accounts");
                return state.unavailable(&req, lang);
            }
        }
    };
    state.page(
        StatusCode::OK,
        "helpdesk_search.html",
        lang,
        &req,
        minijinja::context! {
            agent => agent.login.as_str(),
            q => q,
            results => results,
        },
    )
}

/// What to say above an account's page after an action.
#[derive(Debug, Default)]
struct Outcome {
    notice: Option<String>,
    error: Option<String>,
    /// A code just issued, and until when it works: shown once, never stored in clear.
    code: Option<IssuedCode>,
    /// The answer of an identity comparison: `match`, `no_match`, `not_on_file`,
    /// `unreadable`.
    compared: Option<&'static str>,
}

/// A code to show once on the account's page.
#[derive(Debug)]
struct IssuedCode {
    /// What it is for.
    purpose: CodePurpose,
    /// The code.
    code: String,
    /// Its end, as shown.
    expires: String,
}

/// What an issued code opens.
#[derive(Debug, Clone, Copy)]
enum CodePurpose {
    /// An activation (`/activation/code`).
    Activation,
    /// A new password (`/password/helpdesk-code`).
    Reset,
}

/// `GET /helpdesk/accounts/{login}`
pub async fn show_account(
    state: web::Data<AppState>,
    req: HttpRequest,
    login: web::Path<String>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let agent = match agent(&state, &req).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let Ok(login) = LoginName::parse(&login) else {
        return not_found(&state, &req, lang);
    };
    render_account(
        &state,
        &req,
        lang,
        &agent,
        &login,
        StatusCode::OK,
        Outcome::default(),
    )
    .await
}

async fn render_account(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    agent: &Agent,
    login: &LoginName,
    status: StatusCode,
    outcome: Outcome,
) -> HttpResponse {
    let services = &state.services;
    let found = match services.admin.get(login).await {
        Ok(f) => f,
        Err(AccountError::NotFound) => return not_found(state, req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while showing an account");
            return state.unavailable(req, lang);
        }
    };
    let account = &found.account;
    let profile = &found.profile;
    let repo = services.helpdesk.desk.repo();
    let details = async {
        let locked_until = services
            .accounts
            .locked_until(account.login.as_str())
            .await
            .map_err(|e| e.to_string())?;
        let block = repo
            .find_block(account.id)
            .await
            .map_err(|e| e.to_string())?;
        let password_change = repo
            .password_change_required(account.id)
            .await
            .map_err(|e| e.to_string())?;
        let charter_pending = services
            .activation
            .charter_pending(account.id)
            .await
            .map_err(|e| e.to_string())?;
        let events = services
            .audit
            .recent(Some(account.login.as_str()), SHOWN_EVENTS)
            .await
            .map_err(|e| e.to_string())?;
        let second_factors = services
            .second_factors
            .list(account.id)
            .await
            .map_err(|e| e.to_string())?
            .len();
        Ok::<_, String>((
            locked_until,
            block,
            password_change,
            charter_pending,
            events,
            second_factors,
        ))
    };
    let (locked_until, block, password_change, charter_pending, events, second_factors) =
        match details.await {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "storage unavailable while showing an account");
                return state.unavailable(req, lang);
            }
        };
    let texts = state.renderer.texts(lang);
    let events: Vec<minijinja::Value> = events
        .iter()
        .map(|e| {
            // Words for the agent; the code stays beside them for the logs and the CLI.
            let label = texts
                .get(&format!("audit_{}", e.kind.replace('.', "_")))
                .cloned()
                .unwrap_or_else(|| e.kind.clone());
            minijinja::context! {
                at => state.local_datetime(e.at),
                kind => e.kind,
                label => label,
                actor => e.actor,
                ip => e.ip,
            }
        })
        .collect();
    // What the activation configuration allows this affiliation: the actions that would
    // always fail for it are not offered.
    let policy = services.activation.policy();
    let activation_paths: Vec<String> = policy
        .paths
        .get(&account.affiliation)
        .map(|paths| {
            paths
                .iter()
                .map(|p| {
                    state
                        .renderer
                        .text(lang, &format!("helpdesk_path_{}", path_name(*p)))
                })
                .collect()
        })
        .unwrap_or_default();
    let can_link = policy.allows(account.affiliation, ActivationPath::EmailLink);
    let can_code = policy.allows(account.affiliation, ActivationPath::Code);
    let on_file = |present: bool| {
        state.renderer.text(
            lang,
            if present {
                "helpdesk_on_file"
            } else {
                "helpdesk_not_on_file"
            },
        )
    };
    let national_id_end = profile.national_id.as_ref().is_some_and(|n| n.has_end());
    let compare_fields: Vec<minijinja::Value> = IdentityField::ALL
        .iter()
        .map(|f| {
            minijinja::context! {
                value => f.as_str(),
                label => state.renderer.text(lang, &format!("helpdesk_compare_{}", f.as_str())),
            }
        })
        .collect();
    let affiliation_key = format!("account_affiliation_{}", account.affiliation.as_str());
    let code = outcome.code.map(|c| {
        minijinja::context! {
            reset => matches!(c.purpose, CodePurpose::Reset),
            value => c.code,
            expires => c.expires,
        }
    });
    state.page(
        status,
        "helpdesk_account.html",
        lang,
        req,
        minijinja::context! {
            agent => agent.login.as_str(),
            csrf => agent.csrf,
            action_base => format!("{}/helpdesk/accounts/{}", state.base_path(), segment(account.login.as_str())),
            login => account.login.as_str(),
            name => format!("{} {}", account.given_name, account.family_name),
            email => account.email.as_ref().map(|e| e.as_str().to_owned()),
            affiliation => texts.get(&affiliation_key).cloned().unwrap_or_else(|| account.affiliation.as_str().to_owned()),
            hr_id => profile.hr_id.as_ref().map(ToString::to_string),
            birth_date_on_file => on_file(profile.birth_date.is_some()),
            national_id_on_file => on_file(profile.national_id.is_some()),
            national_id_end_on_file => on_file(national_id_end),
            compare_fields => compare_fields,
            compared => outcome.compared,
            activation_paths => activation_paths,
            can_link => can_link,
            can_code => can_code,
            state_name => account.state.as_str(),
            state => state_text(state, lang, account.state),
            provisioned => account.state == AccountState::Provisioned,
            active => account.state == AccountState::Active,
            blocked => account.state == AccountState::Blocked,
            disabled => account.state == AccountState::Disabled,
            locked_until => locked_until.map(|u| state.local_datetime(u)),
            block_reason => block.as_ref().map(|b| texts.get(&format!("helpdesk_reason_{}", b.reason.as_str())).cloned().unwrap_or_else(|| b.reason.as_str().to_owned())),
            block_since => block.as_ref().map(|b| state.local_datetime(b.blocked_at)),
            block_by => block.as_ref().map(|b| b.blocked_by.clone()),
            block_note => block.as_ref().and_then(|b| b.note.clone()),
            password_change => password_change.is_some(),
            recovery_email => profile.recovery_email.as_ref().map(|c| mask_email(c.address.as_str())),
            recovery_email_verified => profile.recovery_email.as_ref().is_some_and(|c| c.verified),
            mobile => profile.mobile.as_ref().map(|c| mask_phone(c.address.as_str())),
            mobile_verified => profile.mobile.as_ref().is_some_and(|c| c.verified),
            charter_version => profile.charter.as_ref().map(|c| c.version.clone()),
            charter_accepted => profile.charter.as_ref().map(|c| state.local_datetime(c.accepted_at)),
            charter_pending => charter_pending,
            second_factors => second_factors,
            mfa_reset_hint => state
                .renderer
                .text(lang, "helpdesk_mfa_reset_hint")
                .replace("{n}", &second_factors.to_string()),
            events => events,
            notice => outcome.notice,
            error => outcome.error,
            code => code,
            reset_code_page => format!("{}/password/helpdesk-code", state.base()),
        },
    )
}

/// The form of every account action (`block` reads the reason and the note, `compare` the
/// field and what the caller said).
#[derive(Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    reason: Option<String>,
    note: Option<String>,
    field: Option<String>,
    value: Option<String>,
}

impl std::fmt::Debug for ActionForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // What a caller said (a birth date, a national ID) is never logged.
        f.debug_struct("ActionForm")
            .field("reason", &self.reason)
            .field("field", &self.field)
            .finish_non_exhaustive()
    }
}

/// The name of an activation path in the texts' keys.
fn path_name(path: ActivationPath) -> &'static str {
    match path {
        ActivationPath::Identity => "identity",
        ActivationPath::Code => "code",
        ActivationPath::EmailLink => "email_link",
    }
}

/// `POST /helpdesk/accounts/{login}/{action}`: `unlock`, `block`, `unblock`, `mfa-reset`,
/// `activation-link`, `activation-code`, `reset-link`, `reset-code`, `compare`,
/// `recovery-verification`.
pub async fn account_action(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    form: web::Form<ActionForm>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let form = form.into_inner();
    let agent = match posting_agent(&state, &req, form.csrf.as_deref()).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let (login, action) = path.into_inner();
    let Ok(login) = LoginName::parse(&login) else {
        return not_found(&state, &req, lang);
    };
    let text = |key: &str| state.renderer.text(lang, key);
    let services = &state.services;
    let actor = agent.actor();
    let result: Result<Outcome, Failure> = match action.as_str() {
        "unlock" => match services.accounts.get(&login).await {
            Ok(account) => services
                .accounts
                .unlock(account.login.as_str(), &actor)
                .await
                .map(|()| Outcome {
                    notice: Some(text("helpdesk_done_unlock")),
                    ..Outcome::default()
                })
                .map_err(Failure::from),
            Err(e) => Err(Failure::from(e)),
        },
        "block" => match form
            .reason
            .as_deref()
            .unwrap_or("other")
            .parse::<BlockReason>()
        {
            Ok(reason) => crate::operations::block_account(
                services,
                &login,
                reason,
                form.note.as_deref(),
                &actor,
            )
            .await
            .map(|done| Outcome {
                notice: Some(
                    text("helpdesk_done_block")
                        .replace("{sessions}", &done.sessions_ended.to_string()),
                ),
                ..Outcome::default()
            })
            .map_err(Failure::from),
            Err(_) => Err(Failure::Text("helpdesk_error_reason")),
        },
        "mfa-reset" => crate::operations::reset_second_factors(services, &login, &actor)
            .await
            .map(|(_, removed)| Outcome {
                notice: Some(text("helpdesk_done_mfa_reset").replace("{n}", &removed.to_string())),
                ..Outcome::default()
            })
            .map_err(|e| match e {
                crate::operations::FactorResetError::UnknownAccount(_) => Failure::NotFound,
                crate::operations::FactorResetError::Unavailable(e) => Failure::Unavailable(e),
            }),
        "unblock" => crate::operations::unblock_account(services, &login, &actor)
            .await
            .map(|_| Outcome {
                notice: Some(text("helpdesk_done_unblock")),
                ..Outcome::default()
            })
            .map_err(Failure::from),
        "activation-link" => crate::operations::send_activation_link(services, &login, &actor)
            .await
            .map(|to| Outcome {
                notice: Some(
                    text("helpdesk_done_activation_link").replace("{to}", &mask_email(to.as_str())),
                ),
                ..Outcome::default()
            })
            .map_err(Failure::from),
        "reset-link" => crate::operations::send_reset_link(services, state.base(), &login, &actor)
            .await
            .map(|to| Outcome {
                notice: Some(
                    text("helpdesk_done_reset_link").replace("{to}", &mask_email(to.as_str())),
                ),
                ..Outcome::default()
            })
            .map_err(Failure::from),
        "compare" => {
            let field = form
                .field
                .as_deref()
                .unwrap_or_default()
                .parse::<IdentityField>();
            let typed: String = form
                .value
                .as_deref()
                .unwrap_or_default()
                .chars()
                .take(64)
                .collect();
            match field {
                Err(_) => Err(Failure::Text("helpdesk_compare_error_field")),
                Ok(field) => match services
                    .helpdesk
                    .desk
                    .compare_identity(&login, field, &typed, &actor)
                    .await
                {
                    Ok(outcome) => Ok(Outcome {
                        compared: Some(outcome.as_str()),
                        ..Outcome::default()
                    }),
                    Err(HelpdeskError::TooManyComparisons { until }) => Err(Failure::Refused(
                        text("helpdesk_compare_too_many")
                            .replace("{time}", &state.local_time(until)),
                    )),
                    Err(e) => Err(Failure::from(e)),
                },
            }
        }
        "reset-code" => crate::operations::issue_reset_code(services, &login, &actor)
            .await
            .map(|issued| Outcome {
                notice: Some(text("helpdesk_done_reset_code")),
                code: Some(IssuedCode {
                    purpose: CodePurpose::Reset,
                    code: issued.code,
                    expires: state.local_datetime(issued.expires_at),
                }),
                ..Outcome::default()
            })
            .map_err(Failure::from),
        "recovery-verification" => match services.accounts.get(&login).await {
            Ok(account) => match services
                .self_service
                .send_recovery_verification(
                    account.id,
                    &format!("{}/account/verify", state.base()),
                    Lang::Fr,
                    &actor,
                )
                .await
            {
                Ok(VerificationRequest::Sent(to)) => Ok(Outcome {
                    notice: Some(
                        text("helpdesk_done_recovery_verification")
                            .replace("{to}", &mask_email(&to)),
                    ),
                    ..Outcome::default()
                }),
                Ok(VerificationRequest::DailyLimit) => {
                    Err(Failure::Text("helpdesk_error_verification_limit"))
                }
                Ok(VerificationRequest::NothingToVerify) => {
                    Err(Failure::Text("helpdesk_error_nothing_to_verify"))
                }
                Err(e) => Err(Failure::Unavailable(e.to_string())),
            },
            Err(e) => Err(Failure::from(e)),
        },
        "activation-code" => match services.activation.issue_code(&login, &actor).await {
            Ok((_, code, expires_at)) => Ok(Outcome {
                notice: Some(text("helpdesk_done_activation_code")),
                code: Some(IssuedCode {
                    purpose: CodePurpose::Activation,
                    code,
                    expires: state.local_datetime(expires_at),
                }),
                ..Outcome::default()
            }),
            Err(ActivationError::Mismatch) => match services.accounts.get(&login).await {
                Err(AccountError::NotFound) => Err(Failure::NotFound),
                _ => Err(Failure::Refused(text("helpdesk_error_code"))),
            },
            Err(e) => Err(Failure::Unavailable(e.to_string())),
        },
        _ => Err(Failure::NotFound),
    };
    let (status, outcome) = match result {
        Ok(outcome) => (StatusCode::OK, outcome),
        Err(Failure::NotFound) => return not_found(&state, &req, lang),
        Err(Failure::Unavailable(e)) => {
            tracing::error!(error = %e, action, "helpdesk console action failed");
            return state.unavailable(&req, lang);
        }
        Err(Failure::Refused(message)) => (
            StatusCode::CONFLICT,
            Outcome {
                error: Some(message),
                ..Outcome::default()
            },
        ),
        Err(Failure::Text(key)) => (
            StatusCode::CONFLICT,
            Outcome {
                error: Some(text(key)),
                ..Outcome::default()
            },
        ),
    };
    render_account(&state, &req, lang, &agent, &login, status, outcome).await
}

/// Why an action did not go through, as the console shows it.
enum Failure {
    /// No such account (or action): 404.
    NotFound,
    /// Storage failed: 503.
    Unavailable(String),
    /// Refused, with this message.
    Refused(String),
    /// Refused, with the message of this key.
    Text(&'static str),
}

impl From<AccountError> for Failure {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::NotFound => Self::NotFound,
            AccountError::BadTransition { .. } => Self::Text("helpdesk_error_state"),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<HelpdeskError> for Failure {
    fn from(e: HelpdeskError) -> Self {
        match e {
            HelpdeskError::Account(e) => Self::from(e),
            HelpdeskError::BadNote => Self::Text("helpdesk_error_note"),
            HelpdeskError::NoSuchRequest(_) => Self::NotFound,
            HelpdeskError::BadComparison => Self::Text("helpdesk_compare_error_field"),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

impl From<OperatorLinkError> for Failure {
    fn from(e: OperatorLinkError) -> Self {
        match e {
            OperatorLinkError::NoSuchAccount => Self::NotFound,
            OperatorLinkError::WrongState { .. } => Self::Text("helpdesk_error_state"),
            OperatorLinkError::NoRecoveryAddress => Self::Text("helpdesk_error_no_address"),
            OperatorLinkError::UnverifiedRecoveryAddress => {
                Self::Text("helpdesk_error_unverified_address")
            }
            OperatorLinkError::PathNotAllowed(_) => Self::Text("helpdesk_error_path"),
            OperatorLinkError::Unavailable(e) => Self::Unavailable(e),
        }
    }
}

/// Query of `GET /helpdesk/requests`.
#[derive(Debug, Deserialize)]
pub struct RequestsQuery {
    status: Option<String>,
    lang: Option<String>,
}

fn request_item(state: &AppState, r: &AssistanceRequest) -> minijinja::Value {
    minijinja::context! {
        reference => r.reference,
        href => format!("{}/helpdesk/requests/{}", state.base_path(), segment(&r.reference)),
        created_at => state.local_datetime(r.created_at),
        requester => r.name,
        institutional_email => r.login_or_email,
        open => r.is_open(),
        summary => r.description.lines().next().unwrap_or_default().chars().take(80).collect::<String>(),
    }
}

/// `GET /helpdesk/requests?status=open|closed|all`
pub async fn list_requests(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<RequestsQuery>,
) -> HttpResponse {
    let lang = state.lang(&req, query.lang.as_deref());
    let agent = match agent(&state, &req).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let filter = query
        .status
        .as_deref()
        .and_then(|s| s.parse::<RequestFilter>().ok())
        .unwrap_or_default();
    let requests = match state
        .services
        .helpdesk
        .assistance
        .list(filter, REQUEST_LIMIT)
        .await
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while listing requests");
            return state.unavailable(&req, lang);
        }
    };
    let status = match filter {
        RequestFilter::Open => "open",
        RequestFilter::Closed => "closed",
        RequestFilter::All => "all",
    };
    state.page(
        StatusCode::OK,
        "helpdesk_requests.html",
        lang,
        &req,
        minijinja::context! {
            agent => agent.login.as_str(),
            status => status,
            requests => requests.iter().map(|r| request_item(&state, r)).collect::<Vec<_>>(),
        },
    )
}

/// `GET /helpdesk/requests/{reference}`
pub async fn show_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    reference: web::Path<String>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let agent = match agent(&state, &req).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    render_request(
        &state,
        &req,
        lang,
        &agent,
        &reference,
        StatusCode::OK,
        None,
        None,
    )
    .await
}

#[expect(
    clippy::too_many_arguments,
    reason = "the page's request, the agent and what to say above it"
)]
async fn render_request(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    agent: &Agent,
    reference: &str,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> HttpResponse {
    let request = match state.services.helpdesk.assistance.show(reference).await {
        Ok(r) => r,
        Err(HelpdeskError::NoSuchRequest(_)) => return not_found(state, req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while showing a request");
            return state.unavailable(req, lang);
        }
    };
    let account = match request.account_id {
        Some(id) => match state.services.accounts_repo.find_by_id(id).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "database unavailable while showing a request");
                return state.unavailable(req, lang);
            }
        },
        None => None,
    };
    let closure = request.closure.as_ref();
    state.page(
        status,
        "helpdesk_request.html",
        lang,
        req,
        minijinja::context! {
            agent => agent.login.as_str(),
            csrf => agent.csrf,
            reference => request.reference,
            close_action => format!("{}/helpdesk/requests/{}/close", state.base_path(), segment(&request.reference)),
            created_at => state.local_datetime(request.created_at),
            requester_kind => state.renderer.text(lang, &format!("assistance_as_{}", request.kind.as_str())),
            name => request.name,
            child_name => request.child_name,
            school => request.school,
            institutional_email => request.login_or_email,
            personal_email => request.personal_email,
            phone => request.phone,
            number => request.number,
            description => request.description,
            request_lang => request.lang,
            account => account.as_ref().map(|a| account_item(state, lang, a)),
            open => request.is_open(),
            closed_at => closure.map(|c| state.local_datetime(c.closed_at)),
            closed_by => closure.map(|c| c.closed_by.clone()),
            closed_note => closure.and_then(|c| c.note.clone()),
            notice => notice,
            error => error,
        },
    )
}

/// The close form.
#[derive(Debug, Deserialize)]
pub struct CloseForm {
    csrf: Option<String>,
    note: Option<String>,
}

/// `POST /helpdesk/requests/{reference}/close`
pub async fn close_request(
    state: web::Data<AppState>,
    req: HttpRequest,
    reference: web::Path<String>,
    form: web::Form<CloseForm>,
) -> HttpResponse {
    let lang = state.lang(&req, None);
    let form = form.into_inner();
    let agent = match posting_agent(&state, &req, form.csrf.as_deref()).await {
        Ok(a) => a,
        Err(res) => return res,
    };
    let text = |key: &str| state.renderer.text(lang, key);
    let (status, notice, error) = match state
        .services
        .helpdesk
        .assistance
        .close(&reference, form.note.as_deref(), &agent.actor())
        .await
    {
        Ok(true) => (StatusCode::OK, Some(text("helpdesk_done_close")), None),
        Ok(false) => (StatusCode::OK, Some(text("helpdesk_already_closed")), None),
        Err(HelpdeskError::NoSuchRequest(_)) => return not_found(&state, &req, lang),
        Err(HelpdeskError::BadNote) => (
            StatusCode::BAD_REQUEST,
            None,
            Some(text("helpdesk_error_note")),
        ),
        Err(e) => {
            tracing::error!(error = %e, "closing a request failed");
            return state.unavailable(&req, lang);
        }
    };
    render_request(
        &state, &req, lang, &agent, &reference, status, notice, error,
    )
    .await
}
