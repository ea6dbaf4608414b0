//! Provisioning from HR and student systems: `sesame import FILE`.
//!
//! An import reads a CSV or JSON file of people ([`read`]), decides what to do with each
//! ([`plan`]: create, update, leave alone, and with `--full` disable the absent), then does it
//! through the ports ([`Importer`]). It is an idempotent upsert keyed by the HR identifier:
//! importing the same file twice changes nothing the second time. Each change is an audit
//! event. See `docs/lifecycle.md` for the file format and the rules.

pub mod plan;
pub mod read;

use std::collections::HashSet;
use std::sync::Arc;

use sesame_core::account::{AccountProfile, AccountState, Contact, NewAccount};
use sesame_core::accounts::AccountService;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::clock::Clock;
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Affiliation, Email, HrId, IdentifierKind, LoginName};
use sesame_core::national_id::NationalIdKey;
use sesame_core::ports::{AuditLog, ProfileRepo};
use sesame_core::session::SessionManager;

use self::plan::{FullImport, Plan, Step};
use self::read::{Format, PersonRecord, ReadContext, RejectReason, Rejection};
use crate::error::ImportError;
use crate::login::{numbered_login, EmailPatterns};

/// How many numbered variants of one login are tried before giving up (`jean.dupont` …
/// `jean.dupont1000`).
pub const MAX_LOGIN_NUMBER: u32 = 1000;

/// How new accounts get their institutional e-mail, and the national ID key.
#[derive(Debug, Clone, Default)]
pub struct ImportRules {
    /// Institutional e-mail patterns.
    pub email: EmailPatterns,
    /// Key of the national ID hashes; without it a file with national IDs is refused.
    pub national_id_key: Option<NationalIdKey>,
}

/// How to run an import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportOptions {
    /// CSV or JSON.
    pub format: Format,
    /// Disable the people of the file's affiliations who are not in it.
    pub full: bool,
    /// Import nothing if any line is rejected.
    pub strict: bool,
    /// Say what would be done, do nothing.
    pub dry_run: bool,
}

/// Whether the import changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The steps were carried out.
    Applied,
    /// `--dry-run`: nothing was written; the outcomes say what would have been done.
    DryRun,
    /// `--strict` and some line was rejected: nothing was written.
    RefusedStrict,
}

/// What happened to one person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new account, in state `provisioned`.
    Created {
        /// Line in the file.
        line: usize,
        /// HR identifier.
        hr_id: HrId,
        /// The generated login.
        login: LoginName,
        /// The institutional e-mail, if the affiliation has a pattern.
        email: Option<Email>,
    },
    /// An account whose data changed.
    Updated {
        /// Line in the file.
        line: usize,
        /// HR identifier.
        hr_id: HrId,
        /// The account's login.
        login: LoginName,
        /// The fields written (names only).
        fields: Vec<&'static str>,
        /// It was disabled and is back in state `provisioned`.
        reprovisioned: bool,
    },
    /// An account already as in the file.
    Unchanged {
        /// Line in the file.
        line: usize,
        /// HR identifier.
        hr_id: HrId,
        /// The account's login.
        login: LoginName,
    },
    /// An account disabled because it is absent from a full import.
    Disabled {
        /// HR identifier.
        hr_id: HrId,
        /// The account.
        account_id: AccountId,
        /// The account's login.
        login: LoginName,
        /// Handles of the SSO sessions ended (for single logout).
        sessions_ended: Vec<String>,
        /// Why its sessions could not be ended here (they still die at their next use,
        /// since a disabled account's sessions are refused).
        session_error: Option<String>,
    },
}

/// Counts of an import, as printed in its summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// New accounts.
    pub created: usize,
    /// Accounts changed (re-provisioned ones included).
    pub updated: usize,
    /// Accounts already as in the file.
    pub unchanged: usize,
    /// Accounts disabled.
    pub disabled: usize,
    /// Lines not imported.
    pub rejected: usize,
}

/// The result of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Applied, dry run, or refused.
    pub mode: Mode,
    /// Per person, in file order; disables last.
    pub outcomes: Vec<Outcome>,
    /// Lines not imported, by line.
    pub rejections: Vec<Rejection>,
    /// What `--full` did.
    pub full: FullImport,
}

impl ImportReport {
    /// The summary counts.
    pub fn counts(&self) -> Counts {
        let mut counts = Counts {
            rejected: self.rejections.len(),
            ..Counts::default()
        };
        for outcome in &self.outcomes {
            match outcome {
                Outcome::Created { .. } => counts.created += 1,
                Outcome::Updated { .. } => counts.updated += 1,
                Outcome::Unchanged { .. } => counts.unchanged += 1,
                Outcome::Disabled { .. } => counts.disabled += 1,
            }
        }
        counts
    }

    /// Whether the database already matched the file (nothing to create, change or disable).
    pub fn nothing_changed(&self) -> bool {
        let c = self.counts();
        c.created + c.updated + c.disabled == 0
    }
}

/// Wiring for [`Importer::new`].
#[derive(Debug, Clone)]
pub struct ImporterParts {
    /// Profiles and HR lookups.
    pub profiles: Arc<dyn ProfileRepo>,
    /// State changes (audited).
    pub accounts: AccountService,
    /// Audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// SSO sessions, ended when an account is disabled.
    pub sessions: SessionManager,
    /// Clock.
    pub clock: Arc<dyn Clock>,
    /// E-mail patterns and national ID key.
    pub rules: ImportRules,
}

/// Runs imports.
#[derive(Debug, Clone)]
pub struct Importer {
    parts: ImporterParts,
}

impl Importer {
    /// An importer over the given parts.
    pub fn new(parts: ImporterParts) -> Self {
        Self { parts }
    }

    /// Reads `input`, plans, and (unless dry run or refused by `--strict`) applies.
    ///
    /// A failure while applying (database down) stops the import where it is: what was done
    /// stays done, and importing the file again completes it.
    ///
    /// # Errors
    /// [`ImportError`] for a file that cannot be read as a whole, or a storage failure.
    #[tracing::instrument(skip_all, fields(import.full = options.full, import.strict = options.strict, import.dry_run = options.dry_run))]
    pub async fn run(
        &self,
        input: &[u8],
        options: ImportOptions,
        actor: &str,
    ) -> Result<ImportReport, ImportError> {
        let today = self.parts.clock.now().date();
        let file = read::read(
            input,
            options.format,
            ReadContext {
                today,
                national_id_key: self.parts.rules.national_id_key.as_ref(),
            },
        )?;
        let existing = self.parts.profiles.accounts_with_hr_id().await?;
        let plan = plan::plan(file, existing, options.full);
        if options.strict && !plan.rejections.is_empty() {
            return Ok(ImportReport {
                mode: Mode::RefusedStrict,
                outcomes: Vec::new(),
                rejections: plan.rejections,
                full: plan.full,
            });
        }
        let mode = if options.dry_run {
            Mode::DryRun
        } else {
            Mode::Applied
        };
        let report = self.execute(plan, mode, actor).await?;
        if mode == Mode::Applied {
            let c = report.counts();
            tracing::info!(
                import.created = c.created,
                import.updated = c.updated,
                import.unchanged = c.unchanged,
                import.disabled = c.disabled,
                import.rejected = c.rejected,
                "provisioning file imported"
            );
            self.parts
                .audit
                .record(
                    AuditEvent::new(AuditKind::ImportCompleted, self.parts.clock.now(), actor)
                        .detail(serde_json::json!({
                            "created": c.created,
                            "updated": c.updated,
                            "unchanged": c.unchanged,
                            "disabled": c.disabled,
                            "rejected": c.rejected,
                            "full": options.full,
                        })),
                )
                .await?;
        }
        Ok(report)
    }

    /// Carries out (or, in a dry run, only resolves) the plan's steps.
    async fn execute(
        &self,
        plan: Plan,
        mode: Mode,
        actor: &str,
    ) -> Result<ImportReport, ImportError> {
        let Plan {
            steps,
            mut rejections,
            full,
        } = plan;
        let apply = mode == Mode::Applied;
        let mut outcomes = Vec::with_capacity(steps.len());
        // Logins and addresses given out by this run (a dry run writes nothing down).
        let mut reserved: HashSet<String> = HashSet::new();
        for step in steps {
            match step {
                Step::Create { record, base_login } => {
                    match self
                        .create(record, &base_login, &mut reserved, apply, actor)
                        .await?
                    {
                        Ok(outcome) => outcomes.push(outcome),
                        Err(rejection) => rejections.push(rejection),
                    }
                }
                Step::Update {
                    record,
                    account,
                    changes,
                    reprovision,
                } => {
                    let fields = changes.field_names();
                    if apply {
                        let now = self.parts.clock.now();
                        if !changes.is_empty() {
                            self.parts
                                .profiles
                                .update_account(account.id, &changes, now)
                                .await?;
                            self.parts
                                .audit
                                .record(
                                    AuditEvent::new(AuditKind::AccountUpdated, now, actor)
                                        .login(account.login.as_str())
                                        .account(account.id)
                                        .detail(serde_json::json!({
                                            "source": "import",
                                            "hr_id": record.hr_id.as_str(),
                                            "fields": fields,
                                        })),
                                )
                                .await?;
                        }
                        if reprovision {
                            self.parts
                                .accounts
                                .set_state(&account, AccountState::Provisioned, actor)
                                .await?;
                        }
                    }
                    outcomes.push(Outcome::Updated {
                        line: record.line,
                        hr_id: record.hr_id,
                        login: account.login,
                        fields,
                        reprovisioned: reprovision,
                    });
                }
                Step::Unchanged { record, account } => outcomes.push(Outcome::Unchanged {
                    line: record.line,
                    hr_id: record.hr_id,
                    login: account.login,
                }),
                Step::Disable { account, hr_id } => {
                    let (sessions_ended, session_error) = if apply {
                        self.parts
                            .accounts
                            .set_state(&account, AccountState::Disabled, actor)
                            .await?;
                        match self.parts.sessions.close_all_for(account.id).await {
                            Ok(ended) => (ended, None),
                            Err(e) => {
                                tracing::warn!(user.id = %account.id, error = %e, "could not end the sessions of a disabled account");
                                (Vec::new(), Some(e.to_string()))
                            }
                        }
                    } else {
                        (Vec::new(), None)
                    };
                    outcomes.push(Outcome::Disabled {
                        hr_id,
                        account_id: account.id,
                        login: account.login,
                        sessions_ended,
                        session_error,
                    });
                }
            }
        }
        rejections.sort_by_key(|r| r.line);
        Ok(ImportReport {
            mode,
            outcomes,
            rejections,
            full,
        })
    }

    /// Creates one person's account under the first free login (or, in a dry run, finds
    /// that login). A login or address taken meanwhile by someone else moves on to the next
    /// number; an `hr_id` taken meanwhile rejects the line.
    async fn create(
        &self,
        record: PersonRecord,
        base_login: &str,
        reserved: &mut HashSet<String>,
        apply: bool,
        actor: &str,
    ) -> Result<Result<Outcome, Rejection>, ImportError> {
        loop {
            let (login, email) = match self
                .free_login(base_login, record.affiliation, reserved)
                .await?
            {
                Ok(free) => free,
                Err(clash) => {
                    return Ok(Err(Rejection {
                        line: record.line,
                        reason: clash,
                        hr_id: Some(record.hr_id),
                        affiliation: Some(record.affiliation),
                    }))
                }
            };
            reserved.insert(login.as_str().to_owned());
            if let Some(e) = &email {
                reserved.insert(e.as_str().to_owned());
            }
            if !apply {
                return Ok(Ok(Outcome::Created {
                    line: record.line,
                    hr_id: record.hr_id,
                    login,
                    email,
                }));
            }
            let now = self.parts.clock.now();
            let new = NewAccount {
                login: login.clone(),
                email: email.clone(),
                given_name: record.given_name.clone(),
                family_name: record.family_name.clone(),
                affiliation: record.affiliation,
                state: AccountState::Provisioned,
            };
            let profile = AccountProfile {
                hr_id: Some(record.hr_id.clone()),
                birth_date: record.birth_date,
                national_id: record.national_id.clone(),
                recovery_email: record.recovery_email.clone().map(Contact::unverified),
                mobile: record.mobile.clone().map(Contact::unverified),
                ..AccountProfile::default()
            };
            match self
                .parts
                .profiles
                .create_with_profile(new, profile, now)
                .await
            {
                Ok(created) => {
                    self.parts
                        .audit
                        .record(
                            AuditEvent::new(AuditKind::AccountCreated, now, actor)
                                .login(login.as_str())
                                .account(created.account.id)
                                .detail(serde_json::json!({
                                    "state": AccountState::Provisioned.as_str(),
                                    "affiliation": record.affiliation.as_str(),
                                    "source": "import",
                                    "hr_id": record.hr_id.as_str(),
                                })),
                        )
                        .await?;
                    return Ok(Ok(Outcome::Created {
                        line: record.line,
                        hr_id: record.hr_id,
                        login,
                        email,
                    }));
                }
                Err(RepoError::Conflict(what)) if what == "hr_id" => {
                    return Ok(Err(Rejection {
                        line: record.line,
                        reason: RejectReason::HrIdTaken(record.hr_id.clone()),
                        hr_id: Some(record.hr_id),
                        affiliation: Some(record.affiliation),
                    }));
                }
                // Taken by someone else since we looked: the next number.
                Err(RepoError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// The first of `base`, `base2`… that neither this run nor the database has given out,
    /// with its institutional e-mail. A login taken as a login, or an e-mail taken as an
    /// e-mail, is a namesake: the next number. But logins and e-mails share one namespace
    /// (the login page takes either in one field): an e-mail that is another account's
    /// *login* (one made by hand as `jean.dupont@univ.example`, most likely this very
    /// person) is not worked around with a number but rejects the line, for an operator to
    /// look at.
    async fn free_login(
        &self,
        base: &str,
        affiliation: Affiliation,
        reserved: &HashSet<String>,
    ) -> Result<Result<(LoginName, Option<Email>), RejectReason>, ImportError> {
        for n in 1..=MAX_LOGIN_NUMBER {
            let Some(login) = numbered_login(base, n) else {
                break;
            };
            let email = self.parts.rules.email.render(affiliation, &login);
            if reserved.contains(login.as_str())
                || email
                    .as_ref()
                    .is_some_and(|e| reserved.contains(e.as_str()))
            {
                continue;
            }
            let profiles = &self.parts.profiles;
            let login_holder = profiles.identifier_holder(login.as_str()).await?;
            let email_holder = match &email {
                Some(e) => profiles.identifier_holder(e.as_str()).await?,
                None => None,
            };
            let crossed = [
                (login.as_str(), IdentifierKind::Login, login_holder),
                (
                    email.as_ref().map_or("", Email::as_str),
                    IdentifierKind::Email,
                    email_holder,
                ),
            ]
            .into_iter()
            .find_map(|(value, field, holder)| match holder {
                Some((_, held_as)) if held_as != field => Some(RejectReason::IdentifierTaken {
                    field,
                    value: value.to_owned(),
                    held_as,
                }),
                _ => None,
            });
            if let Some(reason) = crossed {
                return Ok(Err(reason));
            }
            if login_holder.is_none() && email_holder.is_none() {
                return Ok(Ok((login, email)));
            }
        }
        Err(ImportError::NoFreeLogin(base.to_owned()))
    }
}
