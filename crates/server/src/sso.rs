//! Opening an SSO session for a person who has just proved who they are: at the end of a
//! login (and of its required actions), or at the end of an activation (the ENT 77 guide:
//! "L'utilisateur est dorénavant connecté"). Both go through [`open_session`], so both get
//! the same rules (docs/ARCHITECTURE.md, "Login flow", step 10): the browser's previous
//! session ends and a new random identifier is issued (A40), and once the new session is in
//! the account's session set the account's state is read again, so a block that committed
//! meanwhile leaves no session behind (C11).

use actix_web::cookie::Cookie;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::account::{Account, AccountState};
use sesame_core::i18n::Lang;
use sesame_core::login::methods::Authentication;
use sesame_core::session::SsoSession;

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

/// Opens the SSO session of `account`, which has just proved who it is. `Err` is the page
/// to answer instead: the account was blocked or disabled meanwhile (the session opened is
/// closed again), or the store or the database failed.
pub(crate) async fn open_session(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    remember_me: bool,
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
            // The password is the only method today: it was checked just now.
            Authentication::password_at(state.services.clock.now()),
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
                Ok(Some(now)) => {
                    crate::routes::login::inactive_account_page(state, req, lang, now.state)
                }
                // A deleted account is refused as a disabled one.
                Ok(None) => crate::routes::login::inactive_account_page(
                    state,
                    req,
                    lang,
                    AccountState::Disabled,
                ),
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
