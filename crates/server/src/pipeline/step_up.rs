//! Step-up: an application asks for more than the browser's session has (a CAS service with
//! `require_mfa` or `authn_method=mfa`, an OpenID Connect client with `require_mfa` or
//! `acr_values=https://refeds.org/profile/mfa`), and `AuthnRequirement::evaluate` answered
//! `Verdict::StepUp`. The person is not asked for the password again: a login transaction is
//! started from the session (its factors, marked `step_up`) with only the second-factor step
//! due; once it passes, the same session records the new factor (`SessionManager::
//! reauthenticated`: its identifier, lifetime and single-logout records stay) and the
//! application is answered as the continuation says.
//!
//! A person with no second factor cannot be stepped up: they get the page saying that this
//! application needs two-step verification and where to turn it on.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use sesame_core::account::Account;
use sesame_core::i18n::Lang;
use sesame_core::login::steps::{AccountFacts, LoginPlan};
use sesame_core::login::transaction::{Continuation, LoginTransaction};
use sesame_core::session::SsoSession;

use sesame_mfa::factors::MfaError;
use sesame_mfa::policy::{FactorState, MfaDecision, MfaRequirement};

use super::transaction::{to_current_step, transactions};
use crate::web::AppState;

/// The page for a person without a second factor at an application that requires one.
pub(crate) fn second_factor_required_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
) -> HttpResponse {
    state.page(
        StatusCode::FORBIDDEN,
        "mfa_required.html",
        lang,
        req,
        minijinja::context! { by_policy => false },
    )
}

/// The page for a person whose affiliation requires a second factor, after the grace period,
/// who has none: nothing is issued until they add one (the account page stays open to them).
pub(crate) fn enrolment_required_page(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
) -> HttpResponse {
    state.page(
        StatusCode::FORBIDDEN,
        "mfa_required.html",
        lang,
        req,
        minijinja::context! { by_policy => true },
    )
}

/// Whether the account's affiliation makes every application require a second factor of
/// `account` now: its affiliation requires one and either it has one (then every session must
/// have proved it) or the grace is over. Reads nothing when no affiliation requires one;
/// fails closed.
pub(crate) async fn policy_requires_mfa(state: &AppState, account: &Account) -> bool {
    if !state.services.mfa_policy.any_required() {
        return false;
    }
    match policy_decision(state, account).await {
        Ok(decision) => {
            matches!(decision, MfaDecision::MustEnrol | MfaDecision::Challenge)
                && state
                    .services
                    .mfa_policy
                    .requirement(&[account.affiliation])
                    == MfaRequirement::Required
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot tell whether a second factor is required");
            true
        }
    }
}

/// Steps `session` up to a second factor for `continuation`.
pub(crate) async fn step_up(
    state: &AppState,
    req: &HttpRequest,
    lang: Lang,
    session: &SsoSession,
    continuation: Continuation,
) -> HttpResponse {
    let enrolled = match state
        .services
        .second_factors
        .enrolled(session.account_id)
        .await
    {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(error = %e, "cannot tell whether a second factor is enrolled");
            return state.unavailable(req, lang);
        }
    };
    if !enrolled {
        return second_factor_required_page(state, req, lang);
    }
    let now = state.services.clock.now();
    let mut tx = LoginTransaction::new(continuation, now);
    tx.identified = Some(session.account_id);
    tx.remember_me = session.remember_me;
    tx.factors.clone_from(&session.methods.records);
    tx.step_up = true;
    let facts = AccountFacts {
        second_factor_enrolled: true,
        ..AccountFacts::default()
    };
    tx.steps_due = LoginPlan::standard().due(&facts, &tx).unwrap_or_default();
    if tx.steps_due.is_empty() {
        // The session has a possession factor already: nothing to step up to.
        return second_factor_required_page(state, req, lang);
    }
    let started = match transactions(state).start(&tx).await {
        Ok(id) => to_current_step(state, &tx, id).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    started.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot keep a login transaction");
        state.unavailable(req, lang)
    })
}

/// What the `[mfa]` policy says of `account` today: `Challenge` when it has a factor,
/// `EnrolSoon` or `MustEnrol` when its affiliation requires one it lacks, else `MayEnrol` or
/// `NotAsked`. Reads nothing unless the affiliation requires a factor.
///
/// # Errors
/// The database failed (callers fail closed).
pub(crate) async fn policy_decision(
    state: &AppState,
    account: &Account,
) -> Result<MfaDecision, MfaError> {
    let policy = &state.services.mfa_policy;
    match policy.requirement(&[account.affiliation]) {
        MfaRequirement::Off => return Ok(MfaDecision::NotAsked),
        MfaRequirement::Optional => return Ok(MfaDecision::MayEnrol),
        MfaRequirement::Required => {}
    }
    let factors = &state.services.second_factors;
    let enrolled = factors.enrolled(account.id).await?;
    let logins_without_factor = if enrolled {
        0
    } else {
        factors.grace_logins(account.id).await?
    };
    Ok(policy.decide(
        &[account.affiliation],
        FactorState {
            enrolled,
            logins_without_factor,
        },
        state.services.clock.now().date(),
        false,
    ))
}

/// At the end of a login, for an account whose affiliation requires a second factor it lacks:
/// a login within the grace period is counted (the reminder was shown); `true` when the grace
/// is over and nothing may be issued. Fails closed.
pub(crate) async fn settle_grace(state: &AppState, account: &Account) -> bool {
    if !state.services.mfa_policy.any_required() {
        return false;
    }
    match policy_decision(state, account).await {
        Ok(MfaDecision::MustEnrol) => true,
        Ok(MfaDecision::EnrolSoon { .. }) => {
            match state
                .services
                .second_factors
                .count_grace_login(account.id)
                .await
            {
                Ok(_) => false,
                Err(e) => {
                    tracing::error!(error = %e, "could not count a login without a required factor");
                    true
                }
            }
        }
        Ok(_) => false,
        Err(e) => {
            tracing::error!(error = %e, "cannot tell whether a second factor is required");
            true
        }
    }
}
