//! What happens between "password correct" and "session open", on a login transaction
//! (`sesame_core::login`; ADR 0010 for the charter, ADR 0013 for the transaction and steps).
//!
//! Once the password is right, [`intercept`] reads what the steps need to know of the account
//! ([`AccountFacts`], failing closed) and asks the [`LoginPlan`]. A refusal stops the login: a
//! password an unblock voided may be the one a phisher typed, so it proves nothing and only
//! gets the page saying how to set a new password through a verified channel; nothing is kept.
//! The login form builds the [`LoginTransaction`] (what the login is for, read once from the
//! login URL; the account, "remember me", the password with its time); when steps are due it
//! is stored in the ephemeral store under the SHA-256 of a random id, named by the browser's
//! transaction cookie ([`super::transaction`]), for 30 minutes. No SSO session exists until
//! the last step; the steps due once it is open (an OpenID Connect consent,
//! [`LoginPlan::after_session`]) are the protocol's, in [`super::oidc`].
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
//! its place in [`LoginPlan::standard`], its page path in
//! [`step_path`](super::transaction::step_path), and one page that ends with
//! [`next_or_finish`].

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::account::{Account, AccountState};
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::i18n::Lang;
use sesame_core::login::methods::{AuthnMethod, AuthnRecord};
use sesame_core::login::steps::{AccountFacts, LoginPlan, Refusal};
use sesame_core::login::transaction::LoginTransaction;

use super::session::{inactive_account_page, open_session_and_continue};
use super::transaction::{expired, remove_cookie, to_current_step, transactions, Parked};
use crate::web::AppState;

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
            ..AccountFacts::default()
        });
    }
    let decision = super::step_up::policy_decision(state, account)
        .await
        .map_err(|e| format!("cannot tell what the second-factor policy asks: {e}"))?;
    let second_factor_enrolled = match decision {
        sesame_mfa::policy::MfaDecision::Challenge => true,
        // A required factor already tells; otherwise the factors are read.
        sesame_mfa::policy::MfaDecision::EnrolSoon { .. }
        | sesame_mfa::policy::MfaDecision::MustEnrol => false,
        _ => state
            .services
            .second_factors
            .enrolled(account.id)
            .await
            .map_err(|e| format!("cannot tell whether a second factor is enrolled: {e}"))?,
    };
    let second_factor_grace = matches!(decision, sesame_mfa::policy::MfaDecision::EnrolSoon { .. });
    let charter_pending = state
        .services
        .activation
        .charter_pending(account.id)
        .await
        .map_err(|e| format!("cannot tell whether the charter is pending: {e}"))?;
    Ok(AccountFacts {
        password_voided,
        second_factor_enrolled,
        second_factor_grace,
        charter_pending,
        // Asked once the session is open (`LoginPlan::after_session`), not before.
        consent_pending: false,
    })
}

/// Called by the login once the password of `account` is right, with the login's
/// transaction (`tx`, not stored yet): records the password and asks the plan. The answer is
/// the end of the login (the session and what it was for), a refusal, or, when steps are
/// due, the transaction stored and the browser sent to the first step's page.
pub async fn after_password(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    tx: LoginTransaction,
) -> HttpResponse {
    let now = state.services.clock.now();
    after_first_factor(state, req, lang, account, tx, &[AuthnMethod::Pwd], now).await
}

/// [`after_password`] for whatever identified `account` first: the password, or a passkey
/// alone (`hwk`/`swk`, with `user` when the authenticator verified the person: two factors,
/// and the second-factor step is then not due). The password step counts as done for a
/// passkey login: the key took its place.
pub async fn after_first_factor(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
    mut tx: LoginTransaction,
    methods: &[AuthnMethod],
    now: time::OffsetDateTime,
) -> HttpResponse {
    let facts = match account_facts(state, account).await {
        Ok(f) => f,
        Err(e) => {
            // Fail closed: the login does not complete without knowing.
            tracing::error!(error = %e, "cannot tell whether a login step is due");
            return state.unavailable(req, lang);
        }
    };
    tx.identified = Some(account.id);
    for method in methods {
        tx.factors.push(AuthnRecord::new(*method, now));
    }
    // A browser remembered for this account's second factor stands for it: a key kept in
    // software (`swk`, docs/mfa.md). Only asked of an account that has a factor, so a browser
    // remembered before its factors were removed proves nothing.
    let possession = methods
        .iter()
        .any(|m| m.factor() == sesame_core::login::methods::FactorKind::Possession);
    if facts.second_factor_enrolled
        && !possession
        && state.remembered_for_second_factor(req, account.id).await
    {
        tx.factors.push(AuthnRecord::new(AuthnMethod::Swk, now));
    }
    tx.steps_due = match LoginPlan::standard().due(&facts, &tx) {
        Ok(steps) => steps,
        Err(Refusal::PasswordResetRequired) => {
            return password_reset_required(state, req, lang, account).await
        }
    };
    if tx.steps_due.is_empty() {
        return open_session_and_continue(state, req, lang, account, &tx).await;
    }
    let started = match transactions(state).start(&tx).await {
        Ok(id) => to_current_step(state, &tx, id).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match started {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "cannot keep a login transaction");
            state.unavailable(req, lang)
        }
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
    if taken.is_none() {
        // Already taken (a second submission) or gone.
        return expired(state, req, lang);
    }
    // `next` is the stored transaction with what the step just did (a factor recorded).
    let response = open_session_and_continue(state, req, lang, &account, &next).await;
    // The response may name a transaction of its own (a consent after the session opened):
    // only the finished one's cookie is removed, by being replaced.
    if response
        .cookies()
        .any(|c| c.name() == super::transaction::cookie_name(state))
    {
        response
    } else {
        let mut response = response;
        remove_cookie(state, &mut response);
        response
    }
}

/// The answer to a correct password that an unblock voided: nothing is issued or kept, and
/// the page says how to set a new password through a verified channel. Recorded as a
/// `login.refused_state` (reason `password_reset_required`).
/// The audit event of a correct password that an unblock voided, refused: the login page's,
/// and an LDAP bind's (`via: "ldap"`).
pub fn voided_password_refusal(
    at: time::OffsetDateTime,
    account: &Account,
    ip: Option<std::net::IpAddr>,
    via: Option<&str>,
) -> AuditEvent {
    let mut detail = serde_json::json!({ "reason": "password_reset_required" });
    if let Some(via) = via {
        detail["via"] = serde_json::Value::from(via);
    }
    AuditEvent::new(AuditKind::LoginRefusedState, at, "self")
        .login(account.login.as_str())
        .account(account.id)
        .ip(ip)
        .detail(detail)
}

async fn password_reset_required(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    account: &Account,
) -> HttpResponse {
    let event = voided_password_refusal(
        state.services.clock.now(),
        account,
        state.client_ip(req),
        None,
    );
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
