//! Operator actions shared by the `sesame` command line and the admin HTTP API: the domain
//! operation, then what only the server can do (single logout to the applications that got
//! tickets or codes from the sessions the operation ended).

use std::sync::Arc;

use sesame_core::account::Account;
use sesame_core::error::{AccountError, StoreError};
use sesame_core::helpdesk::BlockReason;
use sesame_core::i18n::Lang;
use sesame_core::ids::{AccountId, Email, LoginName};
use sesame_lifecycle::activation::ImportMails;
use sesame_lifecycle::error::{ImportError, OperatorLinkError};
use sesame_lifecycle::helpdesk::HelpdeskError;
use sesame_lifecycle::import::plan::FullImport;
use sesame_lifecycle::import::{
    ImportOptions, ImportReport, ImportRules, Importer, ImporterParts, Mode, Outcome,
};
use sesame_lifecycle::recovery::reset::IssuedCode;

use crate::services::Services;

/// An account whose sessions an operation ended.
#[derive(Debug)]
pub struct SessionsEnded {
    /// The account, as it is now.
    pub account: Account,
    /// How many live sessions were ended.
    pub sessions_ended: usize,
    /// How many applications were sent a logout request.
    pub applications_notified: usize,
}

/// Sends single-logout requests for sessions just ended; returns how many applications were
/// told.
///
/// # Errors
/// [`StoreError`] if what the sessions had given out cannot be read.
pub async fn notify_ended_sessions(
    services: &Services,
    account_id: AccountId,
    handles: &[String],
) -> Result<usize, StoreError> {
    let mut notified = 0;
    for handle in handles {
        let ended = services.sessions.ended(account_id, handle.clone()).await?;
        notified += crate::pipeline::end::send_single_logout_now(services, &ended).await;
    }
    Ok(notified)
}

async fn with_logout(
    services: &Services,
    (account, handles): (Account, Vec<String>),
) -> Result<SessionsEnded, AccountError> {
    let applications_notified = notify_ended_sessions(services, account.id, &handles).await?;
    Ok(SessionsEnded {
        account,
        sessions_ended: handles.len(),
        applications_notified,
    })
}

/// Blocks an account (the reason and note kept with the block), ends its sessions
/// everywhere, logs it out of its applications and revokes its sessions' proxy tickets.
///
/// # Errors
/// [`HelpdeskError`]: no such account, a disabled account, a bad note, or a storage failure.
pub async fn block_account(
    services: &Services,
    login: &LoginName,
    reason: BlockReason,
    note: Option<&str>,
    actor: &str,
) -> Result<SessionsEnded, HelpdeskError> {
    let blocked = services
        .helpdesk
        .desk
        .block(login, reason, note, actor)
        .await?;
    let applications_notified =
        notify_ended_sessions(services, blocked.account.id, &blocked.sessions_ended).await?;
    for handle in &blocked.sessions_ended {
        services.cas.revoke_session_tickets(handle).await?;
    }
    Ok(SessionsEnded {
        account: blocked.account,
        sessions_ended: blocked.sessions_ended.len(),
        applications_notified,
    })
}

/// Unblocks an account; its former password opens nothing until a new one is set through a
/// verified channel (a reset link, an SMS code, a helpdesk code from [`issue_reset_code`]).
///
/// # Errors
/// [`HelpdeskError`]: no such account, not blocked, or a storage failure.
pub async fn unblock_account(
    services: &Services,
    login: &LoginName,
    actor: &str,
) -> Result<Account, HelpdeskError> {
    services.helpdesk.desk.unblock(login, actor).await
}

/// A one-time password-reset code for an active account, for a helpdesk agent to read out
/// once the caller's identity is checked (the console, the command line). Shown once; only
/// its hash is stored.
///
/// # Errors
/// [`OperatorLinkError`]: no such account, not active, or a storage failure.
pub async fn issue_reset_code(
    services: &Services,
    login: &LoginName,
    actor: &str,
) -> Result<IssuedCode, OperatorLinkError> {
    services.recovery.issue_helpdesk_code(login, actor).await
}

/// Disables an account, ends its sessions everywhere and logs it out of its applications.
///
/// # Errors
/// [`AccountError::NotFound`], or a storage failure.
pub async fn disable_account(
    services: &Services,
    login: &LoginName,
    actor: &str,
) -> Result<SessionsEnded, AccountError> {
    let disabled = services.admin.disable(login, actor).await?;
    with_logout(services, disabled).await
}

/// Ends every session of an account and logs it out of its applications.
///
/// # Errors
/// [`AccountError::NotFound`], or a storage failure.
pub async fn end_sessions(
    services: &Services,
    login: &LoginName,
    actor: &str,
) -> Result<SessionsEnded, AccountError> {
    let ended = services.admin.end_sessions(login, actor).await?;
    with_logout(services, ended).await
}

/// Mails a password-reset link to the verified recovery address of an active account, for
/// an operator (the admin API, the helpdesk console). `base_url` is Sesame's public URL, where
/// the link points. The mail is in French, the institution's first language, as activation
/// mails are: nothing tells Sesame which language the person reads.
///
/// # Errors
/// [`OperatorLinkError`] naming why nothing was sent.
pub async fn send_reset_link(
    services: &Services,
    base_url: &str,
    login: &LoginName,
    actor: &str,
) -> Result<Email, OperatorLinkError> {
    services
        .recovery
        .send_link_for(
            login,
            &format!("{base_url}/password/reset"),
            Lang::Fr,
            actor,
        )
        .await
}

/// Mails a new activation link to a provisioned account's recovery address, for an
/// operator; any older link stops working.
///
/// # Errors
/// [`OperatorLinkError`] naming why nothing was sent.
pub async fn send_activation_link(
    services: &Services,
    login: &LoginName,
    actor: &str,
) -> Result<Email, OperatorLinkError> {
    services.activation.resend_link(login, actor).await
}

/// Runs an import (see [`Importer::run`]) and logs the people it disabled out of their
/// applications. Returns the report and how many applications were told.
///
/// # Errors
/// [`ImportError`] for a file that cannot be read as a whole, or a storage failure.
pub async fn import(
    services: &Services,
    rules: ImportRules,
    input: &[u8],
    options: ImportOptions,
    actor: &str,
    parallelism: usize,
) -> Result<ImportDone, ImportError> {
    let importer = Importer::new(ImporterParts {
        profiles: Arc::clone(&services.profiles),
        accounts: services.accounts.clone(),
        audit: Arc::clone(&services.audit),
        sessions: services.sessions.clone(),
        clock: Arc::clone(&services.clock),
        rules,
        parallelism,
    });
    let report = importer.run(input, options, actor).await?;
    let mut notified = 0;
    for outcome in &report.outcomes {
        if let Outcome::Disabled {
            account_id,
            sessions_ended,
            ..
        } = outcome
        {
            notified += notify_ended_sessions(services, *account_id, sessions_ended)
                .await
                .map_err(AccountError::from)?;
        }
    }
    // New people, and people back from `disabled`, with a recovery address get their
    // activation link (queued; the mail worker sends it). The import itself is written: a
    // failure here is reported, and the person can ask for a new link on the first-login
    // page.
    let mut mails = ImportMails::default();
    if report.mode == Mode::Applied {
        match services
            .activation
            .after_import(&report, actor, parallelism)
            .await
        {
            Ok(m) => mails = m,
            Err(e) => tracing::warn!(error = %e, "queuing activation links after an import failed"),
        }
    }
    Ok(ImportDone {
        report,
        notified,
        activation_links: mails.sent,
        no_activation_link: mails.no_address,
    })
}

/// What an import did, beyond its report.
#[derive(Debug)]
pub struct ImportDone {
    /// The per-line report.
    pub report: ImportReport,
    /// Applications told that a disabled person's sessions ended.
    pub notified: usize,
    /// Activation links queued for the people created or back from `disabled`.
    pub activation_links: usize,
    /// The people who may activate by a mailed link but got none: no recovery address.
    pub no_activation_link: Vec<LoginName>,
}

/// The report of an import as the operator reads it: one line per rejected line and per
/// change, the activation links queued and the people who could not get one, then the
/// summary. `sesame import` prints these lines; the admin API returns them.
pub fn import_report_lines(done: &ImportDone) -> Vec<String> {
    let report = &done.report;
    let notified = done.notified;
    let mut lines = Vec::new();
    let would = report.mode != Mode::Applied;
    let verb = |done: &'static str, planned: &'static str| if would { planned } else { done };
    for r in &report.rejections {
        lines.push(format!("line {}: rejected: {}", r.line, r.reason));
    }
    for outcome in &report.outcomes {
        match outcome {
            Outcome::Created {
                line,
                hr_id,
                login,
                email,
            } => lines.push(format!(
                "line {line}: {} {login}{} (hr_id {hr_id}), state provisioned",
                verb("created", "would create"),
                email
                    .as_ref()
                    .map(|e| format!(" <{e}>"))
                    .unwrap_or_default()
            )),
            Outcome::Updated {
                line,
                hr_id,
                login,
                fields,
                reprovisioned,
            } => {
                let mut what = fields.join(", ");
                if *reprovisioned {
                    if !what.is_empty() {
                        what.push_str("; ");
                    }
                    what.push_str("disabled, back to provisioned");
                }
                lines.push(format!(
                    "line {line}: {} {login} (hr_id {hr_id}): {what}",
                    verb("updated", "would update")
                ));
            }
            Outcome::Unchanged { .. } => {}
            Outcome::Disabled {
                hr_id,
                login,
                sessions_ended,
                session_error,
                ..
            } => {
                let sessions = match session_error {
                    Some(e) => format!(
                        "; its sessions could not be ended here ({e}), they end at their next use"
                    ),
                    None if would => String::new(),
                    None => format!("; {} session(s) ended", sessions_ended.len()),
                };
                lines.push(format!(
                    "{} {login} (hr_id {hr_id}): absent from the file{sessions}",
                    verb("disabled", "would disable")
                ));
            }
        }
    }
    match &report.full {
        FullImport::NotRequested => {}
        FullImport::Source(affiliations) => {
            let names: Vec<&str> = affiliations.iter().map(|a| a.as_str()).collect();
            lines.push(format!(
                "--full: people of {} absent from the file {} disabled",
                if names.is_empty() {
                    "no affiliation".to_owned()
                } else {
                    names.join(", ")
                },
                verb("are", "would be")
            ));
        }
        FullImport::Skipped { lines: unreadable } => {
            let unreadable: Vec<String> = unreadable.iter().map(usize::to_string).collect();
            lines.push(format!(
                "--full: nobody disabled, because line(s) {} have no readable hr_id (their people cannot be told from leavers); fix them and import again",
                unreadable.join(", ")
            ));
        }
    }
    if notified > 0 {
        lines.push(format!("{notified} application(s) sent a logout request"));
    }
    if done.activation_links > 0 {
        lines.push(format!(
            "activation links queued: {}",
            done.activation_links
        ));
    }
    // Looked up by login once for all: a year group can leave tens of thousands without an
    // address, and a scan of the outcomes for each made this report quadratic (minutes).
    let hr_ids: std::collections::HashMap<&LoginName, &sesame_core::ids::HrId> = report
        .outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Created { login, hr_id, .. } | Outcome::Updated { login, hr_id, .. } => {
                Some((login, hr_id))
            }
            _ => None,
        })
        .collect();
    for login in &done.no_activation_link {
        let hr_id = hr_ids.get(login);
        lines.push(format!(
            "no activation link for {login}{}: no recovery address (add it to the file, or give them an activation code)",
            hr_id.map(|h| format!(" (hr_id {h})")).unwrap_or_default()
        ));
    }
    let c = report.counts();
    lines.push(format!(
        "summary: {} created, {} updated, {} unchanged, {} disabled, {} rejected",
        c.created, c.updated, c.unchanged, c.disabled, c.rejected
    ));
    match report.mode {
        Mode::DryRun => lines.push("dry run: nothing was written".to_owned()),
        Mode::RefusedStrict => lines.push("--strict: nothing was written".to_owned()),
        Mode::Applied if report.nothing_changed() => {
            lines.push("nothing changed: the accounts already match the file".to_owned());
        }
        Mode::Applied => {}
    }
    lines
}

/// Why an operator could not reset a person's second factors.
#[derive(Debug, thiserror::Error)]
pub enum FactorResetError {
    /// No account has this login.
    #[error("no account {0}")]
    UnknownAccount(String),
    /// The database, the store or the audit trail failed.
    #[error("{0}")]
    Unavailable(String),
}

/// Removes every second factor and recovery code of `login`'s account (a lost phone, after the
/// helpdesk checked the person's identity), audited as `mfa.removed` by `actor`. Returns the
/// account and how many factors it had.
///
/// # Errors
/// [`FactorResetError`].
pub async fn reset_second_factors(
    services: &Services,
    login: &LoginName,
    actor: &str,
) -> Result<(Account, usize), FactorResetError> {
    let unavailable = |e: &dyn std::fmt::Display| FactorResetError::Unavailable(e.to_string());
    let account = services
        .accounts_repo
        .find_by_login(login)
        .await
        .map_err(|e| unavailable(&e))?
        .ok_or_else(|| FactorResetError::UnknownAccount(login.to_string()))?;
    let removed = services
        .second_factors
        .remove_all(account.id)
        .await
        .map_err(|e| unavailable(&e))?;
    // A browser remembered with the lost factor must not stand for the new one.
    services
        .remembered_browsers
        .forget_all(account.id)
        .await
        .map_err(|e| unavailable(&e))?;
    let event = sesame_core::audit::AuditEvent::new(
        sesame_core::audit::AuditKind::MfaRemoved,
        services.clock.now(),
        actor,
    )
    .login(account.login.as_str())
    .account(account.id)
    .detail(serde_json::json!({ "all": true, "factors": removed }));
    services
        .audit
        .record(event)
        .await
        .map_err(|e| unavailable(&e))?;
    if removed > 0 {
        // The person hears of it: someone who talked the helpdesk into it would be seen.
        if let Err(e) =
            notify_second_factor_change(services, &account, "removed", Lang::Fr, None, None).await
        {
            tracing::error!(error = %e, "could not queue the notice of a second-factor reset");
        }
    }
    Ok((account, removed))
}

/// Mails a notice that `account`'s second factors changed (`what`: `added`, `removed`,
/// `recovery_codes`, `recovery_code_used` with the codes `left`) to its institutional address
/// and its verified recovery address, so that a change made by someone else is seen.
///
/// # Errors
/// The profile cannot be read or the mail cannot be queued (the caller logs it: the change
/// itself stands).
pub async fn notify_second_factor_change(
    services: &Services,
    account: &Account,
    what: &str,
    lang: Lang,
    ip: Option<std::net::IpAddr>,
    left: Option<usize>,
) -> Result<(), String> {
    let recovery = services
        .profiles
        .find_with_profile(account.id)
        .await
        .map_err(|e| e.to_string())?
        .and_then(|found| found.profile.recovery_email)
        .filter(|c| c.verified)
        .map(|c| c.address);
    let mut recipients: Vec<Email> = Vec::new();
    for address in account.email.iter().cloned().chain(recovery) {
        if !recipients.contains(&address) {
            recipients.push(address);
        }
    }
    let ip = ip.map(|i| i.to_string());
    let now = services.clock.now();
    for to in recipients {
        services
            .mail
            .mailer
            .send(sesame_core::mail::MailMessage::second_factor_changed(
                to,
                lang,
                account.id,
                &account.login,
                what,
                now,
                ip.as_deref(),
                left,
            ))
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
