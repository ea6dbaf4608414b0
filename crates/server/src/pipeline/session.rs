//! Where a login becomes a session (the one place), and how a request finds the session it
//! belongs to.
//!
//! Opening an SSO session for a person who has just proved who they are: at the end of a
//! login (and of its steps), or at the end of an activation (the ENT 77 guide:
//! "L'utilisateur est dorénavant connecté"). Both go through [`open_session`], so both get
//! the same rules: the browser's previous session ends and a new random identifier is issued
//! (A40), and once the new session is in the account's session set the account's state is
//! read again, so a block that committed meanwhile leaves no session behind (C11).

use actix_web::cookie::Cookie;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::account::{Account, AccountState};
use sesame_core::i18n::Lang;
use sesame_core::login::methods::{Assurance, Authentication};
use sesame_core::login::transaction::{Continuation, LoginTransaction};
use sesame_core::session::SsoSession;

use super::entry::local_next;
use super::{issue, oidc};
use crate::web::AppState;

/// A session just opened.
#[derive(Debug)]
pub(crate) struct OpenedSession {
    /// The cookie's value (the session identifier, known only to this browser).
    pub cookie_value: String,
    /// The session.
    pub session: SsoSession,
    /// The `Set-Cookie` to send with the response.
    pub cookie: Cookie<'static>,
}

/// Opens the SSO session of `account`, which has just proved who it is (`authentication`:
/// how, recorded in the session for `amr` and CAS's `authenticationMethod`). `Err` is the page
/// to answer instead: the account was blocked or disabled meanwhile (the session opened is
/// closed again), or the store or the database failed.
pub(crate) async fn open_session(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    remember_me: bool,
    authentication: Authentication,
) -> Result<OpenedSession, HttpResponse> {
    // A session the browser already had is ended, and a new identifier issued: the
    // browser never keeps an identifier that existed before the login (A40).
    if let Some(old) = req.cookie(&state.sso_cookie_name) {
        if let Err(e) = state.services.sessions.close(old.value()).await {
            tracing::warn!(error = %e, "could not close the previous session");
        }
    }
    let opened = match state
        .services
        .sessions
        .open(
            account.id,
            account.login.clone(),
            remember_me,
            authentication,
        )
        .await
    {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(error = %e, "could not open an SSO session");
            return Err(state.unavailable(req, lang));
        }
    };
    // A block that committed while this login was being checked must not leave it a
    // session (C11). The session is in the account's set before the state is read again,
    // so either this read sees the block, or the block's ending of the account's sessions
    // (which follows its state change) sees this session.
    match state.services.accounts_repo.find_by_id(account.id).await {
        Ok(Some(now)) if now.state == AccountState::Active => {}
        outcome => {
            if let Err(e) = state.services.sessions.close(&opened.cookie_value).await {
                tracing::error!(error = %e, "could not close the session of an account blocked during its login");
            }
            return Err(match outcome {
                Ok(Some(now)) => inactive_account_page(state, req, lang, now.state),
                // A deleted account is refused as a disabled one.
                Ok(None) => inactive_account_page(state, req, lang, AccountState::Disabled),
                Err(e) => {
                    tracing::error!(error = %e, "database unavailable after opening a session");
                    state.unavailable(req, lang)
                }
            });
        }
    }
    let persistent = remember_me.then_some(state.services.sessions.policy().remember_me_secs);
    let cookie = state.sso_cookie(opened.cookie_value.clone(), persistent);
    Ok(OpenedSession {
        cookie_value: opened.cookie_value,
        session: opened.session,
        cookie,
    })
}

/// The live session of this browser whose account may still use it, if any. A blocked or
/// disabled account's session is closed here, so blocking holds even where the blocking
/// process could not reach the session store (embedded mode with the CLI).
pub async fn current_session(state: &AppState, req: &HttpRequest) -> Option<(String, SsoSession)> {
    current_session_with_account(state, req)
        .await
        .map(|(cookie, session, _)| (cookie, session))
}

/// [`current_session`], with the account as read to check it (a service ticket captures the
/// attributes released to its service from it).
pub async fn current_session_with_account(
    state: &AppState,
    req: &HttpRequest,
) -> Option<(String, SsoSession, Account)> {
    let cookie = req.cookie(&state.sso_cookie_name)?;
    let value = cookie.value().to_owned();
    let session = match state.services.sessions.get(&value).await {
        Ok(Some(s)) => s,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "session store unavailable while reading a session");
            return None;
        }
    };
    let shared = state.settings.store.is_shared();
    let read_at = state.services.clock.now();
    // With a shared store, a block or a disable ends the account's sessions in the store
    // itself, so the account as a use of this session read it is good enough while it is
    // recent or not marked changed since: no database read on the hot path (the CAS cycle,
    // every use of a session within `ACCOUNT_BACKSTOP`). See `ACCOUNT_RECHECK`.
    if shared {
        if let Some(snapshot) = &session.account {
            if let Some(account) = state
                .services
                .account_marks
                .current(snapshot, session.account_id, read_at)
                .await
            {
                let account = account.clone();
                return Some((value, session, account));
            }
        }
    }
    match state
        .services
        .accounts_repo
        .find_by_login(&session.login)
        .await
    {
        Ok(Some(account)) if account.state == AccountState::Active => {
            // A session that lives while a password change is pending predates the block
            // that led to it (no session opens until the change): it ends here. Only the
            // in-process store can hold one: with a shared store the block ended it.
            if shared {
                if let Err(e) = state
                    .services
                    .sessions
                    .remember_account(&value, &session, &account, read_at)
                    .await
                {
                    tracing::warn!(error = %e, "could not keep the account with its session");
                }
                return Some((value, session, account));
            }
            match state
                .services
                .helpdesk
                .desk
                .password_change_required(&account)
                .await
            {
                Ok(false) => Some((value, session, account)),
                Ok(true) => {
                    if let Err(e) = state.services.sessions.close(&value).await {
                        tracing::warn!(error = %e, "could not close a session older than a block");
                    }
                    None
                }
                Err(e) => {
                    tracing::warn!(error = %e, "database unavailable while reading a session");
                    None
                }
            }
        }
        Ok(_) => {
            if let Err(e) = state.services.sessions.close(&value).await {
                tracing::warn!(error = %e, "could not close the session of an unusable account");
            }
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "database unavailable while reading a session");
            None
        }
    }
}

/// Whether the account a ticket, code or token was issued to may still use it, as far as
/// this process can tell without the database: with a shared store (Redis), a block ends the
/// account's sessions everywhere, so a live session is enough. With the in-process store, an
/// operator's block runs in another process and cannot end this process's sessions, so the
/// database is asked (A54). Fails closed.
pub async fn account_still_usable(
    state: &AppState,
    account_id: Option<sesame_core::ids::AccountId>,
) -> bool {
    if state.settings.store.is_shared() {
        return true;
    }
    let Some(id) = account_id else {
        return true;
    };
    let account = match state.services.accounts_repo.find_by_id(id).await {
        Ok(Some(a)) if a.state == AccountState::Active => a,
        Ok(_) => return false,
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while checking an account");
            return false;
        }
    };
    match state
        .services
        .helpdesk
        .desk
        .password_change_required(&account)
        .await
    {
        Ok(required) => !required,
        Err(e) => {
            tracing::error!(error = %e, "database unavailable while checking an account");
            false
        }
    }
}

/// Opens the SSO session of a login transaction that passed every check (credentials, then
/// any [steps](super::steps)) and continues where it was going: a service ticket for a CAS
/// service, the parked OpenID Connect request (a code, or the consent form), one of Sesame's
/// own pages, or the logged-in page. The one place a login becomes a session.
pub(crate) async fn open_session_and_continue(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    tx: &LoginTransaction,
) -> HttpResponse {
    // A CAS service is checked again before anything opens: the registry may have changed
    // while the login was in progress, and an unregistered service gets nothing (A08).
    let cas_service = match &tx.continuation {
        Continuation::Cas { service, .. } => match state.services.registry.find(service) {
            Some(registered) => Some((service.as_str(), registered.clone())),
            None => {
                return state.error_page(
                    StatusCode::FORBIDDEN,
                    lang,
                    req,
                    "service_not_allowed_title",
                    "service_not_allowed_text",
                )
            }
        },
        _ => None,
    };
    let opened = if tx.step_up {
        // A step-up: the browser's own session, of this account, records the factor added.
        match reauthenticate(state, req, lang, account, tx).await {
            Ok(o) => o,
            Err(page) => return page,
        }
    } else {
        // The same opening as after an activation: previous session ended, C11 re-check.
        match open_session(
            state,
            req,
            lang,
            account,
            tx.remember_me,
            tx.authentication(),
        )
        .await
        {
            Ok(o) => Reached {
                cookie_value: o.cookie_value,
                session: o.session,
                cookie: Some(o.cookie),
            },
            Err(page) => return page,
        }
    };
    // 303 wherever the browser goes next: it follows with a GET and never re-posts the
    // credentials (A46).
    let see_other = |location: String| {
        HttpResponse::SeeOther()
            .insert_header(("Location", location))
            .finish()
    };
    let logged_in_page = || see_other(format!("{}/cas/login", state.base()));
    // Required by the affiliation, none enrolled: a login within the grace is counted; past
    // it the session is open (the account page stays reachable, to add one), nothing else is
    // issued.
    let account_pages_only = !tx.step_up
        && super::step_up::settle_grace(state, account).await
        && !matches!(&tx.continuation, Continuation::Local { next } if next.starts_with("/account"));
    let mut response = match (&tx.continuation, cas_service) {
        _ if account_pages_only => super::step_up::enrolment_required_page(state, req, lang),
        // A service that requires a second factor, after a login with the password only (the
        // person has none: whoever has one was asked for it): the session is open, but the
        // service gets no ticket; the page says where to turn two-step verification on.
        (Continuation::Cas { mfa, .. }, Some((_, registered)))
            if (registered.require_mfa || *mfa)
                && opened.session.methods.assurance() < Some(Assurance::MultiFactor) =>
        {
            super::step_up::second_factor_required_page(state, req, lang)
        }
        (Continuation::Cas { method_post, .. }, Some((url, registered))) => {
            issue::issue_and_redirect(
                state,
                req,
                lang,
                url,
                &registered,
                &opened.cookie_value,
                &opened.session,
                Some(account),
                true,
                *method_post,
            )
            .await
        }
        (Continuation::Oidc { request_id, .. }, _) => {
            // This login was made for the request: it is the fresh one `prompt=login` and
            // `max_age` ask for. A request gone meanwhile (expired, answered in another tab)
            // leaves the person logged in, on the page saying the request expired.
            oidc::complete_after_login(
                state,
                req,
                request_id,
                &opened.cookie_value,
                &opened.session,
            )
            .await
        }
        (Continuation::Saml { request_id }, _) => {
            super::saml::complete(
                state,
                req,
                lang,
                request_id,
                &opened.cookie_value,
                &opened.session,
                account,
                true,
            )
            .await
        }
        (Continuation::Local { next }, _) => {
            local_next(state, next).map_or_else(logged_in_page, see_other)
        }
        _ => logged_in_page(),
    };
    if let Some(cookie) = &opened.cookie {
        if let Err(e) = response.add_cookie(cookie) {
            tracing::error!(error = %e, "could not set the SSO cookie");
        }
        // The browser is now a known device of the account: failures elsewhere never lock it.
        if let Some(device) = state.remember_device(req, account.id).await {
            if let Err(e) = response.add_cookie(&device) {
                tracing::error!(error = %e, "could not set the device cookie");
            }
        }
    }
    response
}

/// The session a login ends in: opened by it (with the cookie to set), or the browser's own,
/// stepped up.
struct Reached {
    cookie_value: String,
    session: SsoSession,
    cookie: Option<Cookie<'static>>,
}

/// Adds a step-up's factors to the browser's session, which must still be live and the
/// account's; `Err` is the page to answer instead (the session ended meanwhile: log in again).
async fn reauthenticate(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    tx: &LoginTransaction,
) -> Result<Reached, HttpResponse> {
    let expired = || super::transaction::expired(state, req, lang);
    let Some(cookie) = req.cookie(&state.sso_cookie_name) else {
        return Err(expired());
    };
    let cookie_value = cookie.value().to_owned();
    match state.services.sessions.get(&cookie_value).await {
        Ok(Some(current)) if current.account_id == account.id => {}
        Ok(_) => return Err(expired()),
        Err(e) => {
            tracing::error!(error = %e, "store unavailable during a step-up");
            return Err(state.unavailable(req, lang));
        }
    }
    match state
        .services
        .sessions
        .reauthenticated(&cookie_value, tx.authentication())
        .await
    {
        Ok(Some(session)) => Ok(Reached {
            cookie_value,
            session,
            cookie: None,
        }),
        Ok(None) => Err(expired()),
        Err(e) => {
            tracing::error!(error = %e, "store unavailable during a step-up");
            Err(state.unavailable(req, lang))
        }
    }
}

/// The page for a login whose account is no longer active (blocked or disabled while it was
/// being checked, or while a required action's page was open).
pub(crate) fn inactive_account_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account_state: AccountState,
) -> HttpResponse {
    if account_state == AccountState::Blocked {
        // Only a correct password gets here: it may learn where to ask for help.
        blocked_page(state, req, lang)
    } else {
        state.error_page(
            StatusCode::FORBIDDEN,
            lang,
            req,
            "error_title",
            "error_disabled",
        )
    }
}

/// The page a blocked account gets after typing its correct password: it says the account is
/// blocked and points to the form. (A wrong password never gets here: it gets the generic
/// error, so the state of an account is not told to someone without its password.)
pub fn blocked_page(state: &AppState, req: &HttpRequest, lang: Lang) -> HttpResponse {
    state.page(
        StatusCode::FORBIDDEN,
        "assistance_blocked.html",
        lang,
        req,
        minijinja::context! {},
    )
}
