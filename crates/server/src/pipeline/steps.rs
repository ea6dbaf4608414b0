//! What happens between "password correct" and "session open", on a login transaction
//! (`sesame_core::login`; ADR 0010 for the charter, ADR 0013 for the transaction and steps).
//!
//! Once the password is right, [`intercept`] reads what the steps need to know of the account
//! ([`AccountFacts`], failing closed) and asks the [`LoginPlan`]. A refusal stops the login: a
//! password an unblock voided may be the one a phisher typed, so it proves nothing and only
//! gets the page saying how to set a new password through a verified channel; nothing is kept.
//! When steps are due, a [`LoginTransaction`] records the login (what it is for, the account,
//! "remember me", the password with its time, the steps due) in the ephemeral store under the
//! SHA-256 of a random id; the id travels in an HttpOnly, SameSite=Strict cookie
//! (`__Host-sesame_login`, Secure, over HTTPS) and the transaction lives 30 minutes. No SSO
//! session exists until the last step.
//!
//! Each step's page checks that its step is the current one (otherwise it sends the browser to
//! the current one's page), does its step, then calls [`next_or_finish`]: the plan is asked
//! again (a step done elsewhere, in another tab, is skipped; none is missed), and the
//! transaction is taken and, if a step remains, put back under a new id in one atomic store
//! operation (one id per step: a replayed or raced submission finds nothing). When none
//! remains the login completes through `session::open_session_and_continue`, exactly as a
//! login without steps would (session, C11 re-check, ticket, redirect).
//!
//! Adding a step is one [`StepId`] variant with its `is_due` in `sesame_core::login::steps`,
//! its place in [`LoginPlan::standard`], its page path in [`step_path`], and one page that ends
//! with [`next_or_finish`].

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::account::{Account, AccountState};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::i18n::Lang;
use sesame_core::login::methods::{AuthnMethod, AuthnRecord};
use sesame_core::login::steps::{AccountFacts, LoginPlan, Refusal, StepId};
use sesame_core::login::transaction::{LoginTransaction, LoginTransactions, TransactionError};

use super::entry::LoginQuery;
use super::session::{inactive_account_page, open_session_and_continue};
use crate::web::AppState;

/// The page that takes a step after the password.
fn step_path(step: StepId) -> &'static str {
    match step {
        // The password is the login form itself.
        StepId::Password => "/cas/login",
        StepId::AcceptCharter => "/charter",
    }
}

fn transactions(state: &AppState) -> LoginTransactions {
    LoginTransactions::new(state.services.store.clone())
}

/// A login transaction of this browser, as a step's page reads it.
#[derive(Debug)]
pub struct Parked {
    /// The id of the cookie: the transaction's key and the seed of the pages' form tokens.
    id: String,
    /// The login so far.
    pub tx: LoginTransaction,
}

impl Parked {
    /// The cookie's id (per transaction and step, unknown to other sites).
    pub fn token(&self) -> &str {
        &self.id
    }
}

fn cookie_name(state: &AppState) -> &'static str {
    // `__Host-`: over HTTPS the browser refuses the cookie unless it is Secure, host-only and
    // for `/`, so a sibling domain cannot plant a login transaction of its own.
    if state.settings.is_https() {
        "__Host-sesame_login"
    } else {
        "sesame_login"
    }
}

fn transaction_cookie(state: &AppState, value: String) -> Cookie<'static> {
    // Strict: the cookie is set by our own login POST and only read by our own pages, so no
    // cross-site request ever needs it, and a cross-site form cannot act on a transaction.
    Cookie::build(cookie_name(state), value)
        .path("/")
        .http_only(true)
        .secure(state.settings.is_https())
        .same_site(SameSite::Strict)
        .finish()
}

fn remove_cookie(state: &AppState, response: &mut HttpResponse) {
    let mut removal = transaction_cookie(state, String::new());
    removal.make_removal();
    if let Err(e) = response.add_cookie(&removal) {
        tracing::warn!(error = %e, "could not remove the login transaction cookie");
    }
}

/// What the steps need to know of `account`. The voided password is read first: when it is
/// voided nothing else matters.
async fn account_facts(state: &AppState, account: &Account) -> Result<AccountFacts, String> {
    let password_voided = state
        .services
        .helpdesk
        .desk
        .password_change_required(account)
        .await
        .map_err(|e| format!("cannot tell whether the password was voided: {e}"))?;
    if password_voided {
        return Ok(AccountFacts {
            password_voided,
            charter_pending: false,
        });
    }
    let charter_pending = state
        .services
        .activation
        .charter_pending(account.id)
        .await
        .map_err(|e| format!("cannot tell whether the charter is pending: {e}"))?;
    Ok(AccountFacts {
        password_voided,
        charter_pending,
    })
}

/// The response sending the browser to the page of `tx`'s current step, with the cookie
/// naming the transaction `id`.
fn to_current_step(
    state: &AppState,
    tx: &LoginTransaction,
    id: String,
) -> Result<HttpResponse, actix_web::error::HttpError> {
    let next = tx.current_step().map_or("/cas/login", step_path);
    let mut response = HttpResponse::SeeOther()
        .insert_header(("Location", format!("{}{next}", state.base())))
        .finish();
    response.add_cookie(&transaction_cookie(state, id))?;
    Ok(response)
}

/// Called by the login once the password is right: `Some(response)` when the login stops
/// here (a refusal, or steps due: the transaction is stored and the browser sent to the first
/// step's page), `None` to go on and open the session.
pub async fn intercept(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    remember_me: bool,
) -> Option<HttpResponse> {
    let facts = match account_facts(state, account).await {
        Ok(f) => f,
        Err(e) => {
            // Fail closed: the login does not complete without knowing.
            tracing::error!(error = %e, "cannot tell whether a login step is due");
            return Some(state.unavailable(req, lang));
        }
    };
    let now = state.services.clock.now();
    let query = LoginQuery::parse(req.query_string()).unwrap_or_default();
    let mut tx = LoginTransaction::new(query.continuation(state, now).await, now);
    tx.identified = Some(account.id);
    tx.remember_me = remember_me;
    tx.factors.push(AuthnRecord::new(AuthnMethod::Pwd, now));
    tx.steps_due = match LoginPlan::standard().due(&facts, &tx) {
        Ok(steps) => steps,
        Err(Refusal::PasswordResetRequired) => {
            return Some(password_reset_required(state, req, lang, account).await)
        }
    };
    if tx.steps_due.is_empty() {
        return None;
    }
    let started = match transactions(state).start(&tx).await {
        Ok(id) => to_current_step(state, &tx, id).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    Some(match started {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot keep a login transaction");
            state.unavailable(req, lang)
        }
    })
}

/// The login transaction of this browser, if any (not consumed).
///
/// # Errors
/// Store errors, or a record that cannot be read back.
pub async fn parked(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Option<Parked>, TransactionError> {
    let Some(cookie) = req.cookie(cookie_name(state)) else {
        return Ok(None);
    };
    let id = cookie.value().to_owned();
    Ok(transactions(state)
        .get(&id)
        .await?
        .map(|tx| Parked { id, tx }))
}

/// The login transaction of this browser when `step` is the one it is at; otherwise the
/// response to send: the page of the step it is at (a page visited out of turn, say with the
/// back button, neither acts nor drops the transaction), the expired page when there is no
/// transaction, or unavailable when the store fails.
pub async fn parked_at(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    step: StepId,
) -> Result<Parked, HttpResponse> {
    match parked(state, req).await {
        Ok(Some(p)) => match p.tx.current_step() {
            Some(current) if current == step => Ok(p),
            Some(current) => Err(HttpResponse::SeeOther()
                .insert_header((
                    "Location",
                    format!("{}{}", state.base(), step_path(current)),
                ))
                .finish()),
            None => Err(expired(state, req, lang)),
        },
        Ok(None) => Err(expired(state, req, lang)),
        Err(e) => {
            tracing::error!(error = %e, "could not read a login transaction");
            Err(state.unavailable(req, lang))
        }
    }
}

/// Drops a login transaction (too many wrong answers): logging in again goes through the
/// login page's lockout rules.
pub async fn discard(state: &AppState, parked: &Parked) {
    if let Err(e) = transactions(state).discard(&parked.id).await {
        tracing::warn!(error = %e, "could not drop a login transaction");
    }
}

/// Called by a step's page once its step is done: goes to the next due step, or completes
/// the login. The due steps are asked again rather than trusted from the transaction, so a
/// step done elsewhere (another tab) is skipped and none is ever missed; the transaction is
/// taken atomically (and put back under a new id when a step remains), so one transaction
/// never completes two logins.
pub async fn next_or_finish(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    parked: Parked,
) -> HttpResponse {
    let Some(account_id) = parked.tx.identified else {
        return expired(state, req, lang);
    };
    let account = match state.services.accounts_repo.find_by_id(account_id).await {
        Ok(Some(a)) => a,
        Ok(None) => return expired(state, req, lang),
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while resuming a login");
            return state.unavailable(req, lang);
        }
    };
    // The account may have been blocked while the page was open: no further step for it.
    if account.state != AccountState::Active {
        if let Err(e) = transactions(state).discard(&parked.id).await {
            tracing::warn!(error = %e, "could not drop a login transaction");
        }
        let mut response = inactive_account_page(state, req, lang, account.state);
        remove_cookie(state, &mut response);
        return response;
    }
    let facts = match account_facts(state, &account).await {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot tell whether a login step is due");
            return state.unavailable(req, lang);
        }
    };
    let mut next = parked.tx.clone();
    next.steps_due = match LoginPlan::standard().due(&facts, &next) {
        Ok(steps) => steps,
        Err(Refusal::PasswordResetRequired) => {
            if let Err(e) = transactions(state).discard(&parked.id).await {
                tracing::warn!(error = %e, "could not drop a login transaction");
            }
            let mut response = password_reset_required(state, req, lang, &account).await;
            remove_cookie(state, &mut response);
            return response;
        }
    };
    if !next.steps_due.is_empty() {
        return match transactions(state).reissue(&parked.id, &next).await {
            Ok(Some((id, _))) => match to_current_step(state, &next, id) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot set the login transaction cookie");
                    state.unavailable(req, lang)
                }
            },
            // Already used (a second submission) or gone.
            Ok(None) => expired(state, req, lang),
            Err(e) => {
                tracing::error!(error = %e, "cannot keep a login transaction");
                state.unavailable(req, lang)
            }
        };
    }
    let taken = match transactions(state).take(&parked.id).await {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "store unavailable while resuming a login");
            return state.unavailable(req, lang);
        }
    };
    let Some(tx) = taken else {
        // Already taken (a second submission) or gone.
        return expired(state, req, lang);
    };
    let query = LoginQuery::from_continuation(&tx.continuation);
    let service = query.registered_service(state);
    let mut response = open_session_and_continue(
        state,
        req,
        lang,
        &account,
        tx.remember_me,
        &query,
        service.as_ref(),
    )
    .await;
    remove_cookie(state, &mut response);
    response
}

/// The page for a login transaction that is gone (expired, used up or dropped); the cookie
/// that named it goes too.
pub fn expired(state: &AppState, req: &HttpRequest, lang: Lang) -> HttpResponse {
    let mut response = state.error_page(
        StatusCode::FORBIDDEN,
        lang,
        req,
        "error_title",
        "required_action_expired",
    );
    remove_cookie(state, &mut response);
    response
}

/// The answer to a correct password that an unblock voided: nothing is issued or kept, and
/// the page says how to set a new password through a verified channel. Recorded as a
/// `login.refused_state` (reason `password_reset_required`).
async fn password_reset_required(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
) -> HttpResponse {
    let event = AuditEvent::new(
        AuditKind::LoginRefusedState,
        state.services.clock.now(),
        "self",
    )
    .login(account.login.as_str())
    .account(account.id)
    .ip(state.client_ip(req))
    .detail(serde_json::json!({ "reason": "password_reset_required" }));
    if let Err(e) = state.services.audit.record(event).await {
        tracing::error!(error = %e, "could not record a refused login");
        return state.unavailable(req, lang);
    }
    state.page(
        StatusCode::FORBIDDEN,
        "password_reset_required.html",
        lang,
        req,
        minijinja::context! {
            login => account.login.as_str(),
            identity_check => state.services.activation.resets_by_identity(account.affiliation),
        },
    )
}
