//! Provisioning from HR and student systems: `sesame import FILE`.
//!
//! An import reads a CSV or JSON file of people ([`read`]), decides what to do with each
//! ([`plan`]: create, update, leave alone, and with `--full` disable the absent), then does it
//! through the ports ([`Importer`]). It is an idempotent upsert keyed by the HR identifier:
//! importing the same file twice changes nothing the second time. Each change is an audit
//! event. See `docs/lifecycle.md` for the file format and the rules.

pub mod plan;
pub mod read;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::stream::{FuturesUnordered, StreamExt};

use sesame_core::account::{
    Account, AccountChanges, AccountProfile, AccountState, Contact, NewAccount,
};
use sesame_core::accounts::AccountService;
use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::clock::Clock;
use sesame_core::error::RepoError;
use sesame_core::ids::{AccountId, Email, HrId, IdentifierKind, LoginName};
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
    /// How many people are written at once (at least 1). The command line gives the database
    /// pool's size; the admin API less, so that an import leaves connections to logins.
    pub parallelism: usize,
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

    /// Carries out (or, in a dry run, only resolves) the plan's steps, `parallelism` people
    /// at a time.
    ///
    /// Each person is still written on their own (a failure half-way leaves what was done,
    /// and importing the file again completes it), but people no longer wait for each other:
    /// an import is a series of short round trips, and one person after the other left the
    /// database idle most of the time (issue 18: 702 s for 100,000 people). New people who
    /// share a base login are created one after the other, in file order, so that namesakes
    /// are numbered as the file lists them whatever the parallelism; logins given out by this
    /// run are reserved in memory, and the database's one namespace of logins and addresses
    /// stays the judge between groups. A storage failure starts nothing new, lets what is
    /// under way finish (so no account is left without its audit event), and is returned.
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
        let mut outcomes: Vec<(usize, Outcome)> = Vec::with_capacity(steps.len());
        let mut tasks: Vec<Task> = Vec::new();
        let mut group_of_base: HashMap<String, usize> = HashMap::new();
        for (order, step) in steps.into_iter().enumerate() {
            match step {
                Step::Create { record, base_login } => match group_of_base.get(&base_login) {
                    Some(&group) => {
                        if let Task::Create { people, .. } = &mut tasks[group] {
                            people.push((order, record));
                        }
                    }
                    None => {
                        group_of_base.insert(base_login.clone(), tasks.len());
                        tasks.push(Task::Create {
                            base_login,
                            people: vec![(order, record)],
                        });
                    }
                },
                Step::Unchanged { record, account } => outcomes.push((
                    order,
                    Outcome::Unchanged {
                        line: record.line,
                        hr_id: record.hr_id,
                        login: account.login,
                    },
                )),
                Step::Update {
                    record,
                    account,
                    changes,
                    reprovision,
                } => tasks.push(Task::Update {
                    order,
                    record,
                    account,
                    changes,
                    reprovision,
                }),
                Step::Disable { account, hr_id } => tasks.push(Task::Disable {
                    order,
                    account,
                    hr_id,
                }),
            }
        }
        // Logins and addresses given out by this run (a dry run writes nothing down).
        let reserved = Mutex::new(HashSet::new());
        let mut waiting = tasks
            .into_iter()
            .map(|task| self.run_task(task, &reserved, apply, actor));
        let mut running = FuturesUnordered::new();
        let mut failure = None;
        loop {
            while failure.is_none() && running.len() < self.parts.parallelism.max(1) {
                match waiting.next() {
                    Some(task) => running.push(task),
                    None => break,
                }
            }
            match running.next().await {
                Some(Ok(done)) => {
                    for (order, result) in done {
                        match result {
                            Ok(outcome) => outcomes.push((order, outcome)),
                            Err(rejection) => rejections.push(rejection),
                        }
                    }
                }
                Some(Err(e)) => {
                    failure.get_or_insert(e);
                }
                None => break,
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        outcomes.sort_by_key(|(order, _)| *order);
        rejections.sort_by_key(|r| r.line);
        Ok(ImportReport {
            mode,
            outcomes: outcomes.into_iter().map(|(_, outcome)| outcome).collect(),
            rejections,
            full,
        })
    }

    /// Carries out one task (or, in a dry run, says what it would do): its people's outcomes
    /// or rejections, each with its place in the plan.
    async fn run_task(
        &self,
        task: Task,
        reserved: &Mutex<HashSet<String>>,
        apply: bool,
        actor: &str,
    ) -> Result<Vec<(usize, Result<Outcome, Rejection>)>, ImportError> {
        match task {
            Task::Create { base_login, people } => {
                let mut done = Vec::with_capacity(people.len());
                for (order, record) in people {
                    let result = self
                        .create(record, &base_login, reserved, apply, actor)
                        .await?;
                    done.push((order, result));
                }
                Ok(done)
            }
            Task::Update {
                order,
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
                let outcome = Outcome::Updated {
                    line: record.line,
                    hr_id: record.hr_id,
                    login: account.login,
                    fields,
                    reprovisioned: reprovision,
                };
                Ok(vec![(order, Ok(outcome))])
            }
            Task::Disable {
                order,
                account,
                hr_id,
            } => {
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
                let outcome = Outcome::Disabled {
                    hr_id,
                    account_id: account.id,
                    login: account.login,
                    sessions_ended,
                    session_error,
                };
                Ok(vec![(order, Ok(outcome))])
            }
        }
    }

    /// Creates one person's account under the first free login (or, in a dry run, finds
    /// that login). A login or address taken by someone else moves on to the next number; an
    /// `hr_id` taken meanwhile, or an identifier held in the other role (see
    /// [`Importer::holders`]), rejects the line.
    ///
    /// In a real run the insert itself is the check: the database's one namespace refuses a
    /// taken login or address, and only then is it asked who holds it. Asking first would
    /// cost two round trips for every person when namesakes are the exception.
    async fn create(
        &self,
        record: PersonRecord,
        base_login: &str,
        reserved: &Mutex<HashSet<String>>,
        apply: bool,
        actor: &str,
    ) -> Result<Result<Outcome, Rejection>, ImportError> {
        let reject = |reason: RejectReason, record: &PersonRecord| Rejection {
            line: record.line,
            reason,
            hr_id: Some(record.hr_id.clone()),
            affiliation: Some(record.affiliation),
        };
        for n in 1..=MAX_LOGIN_NUMBER {
            let Some(login) = numbered_login(base_login, n) else {
                break;
            };
            let email = self.parts.rules.email.render(record.affiliation, &login);
            if !reserve(reserved, &login, email.as_ref()) {
                continue;
            }
            if !apply {
                match self.holders(&login, email.as_ref()).await? {
                    Holders::Free => {
                        return Ok(Ok(Outcome::Created {
                            line: record.line,
                            hr_id: record.hr_id,
                            login,
                            email,
                        }))
                    }
                    Holders::Namesake => continue,
                    Holders::Crossed(reason) => {
                        release(reserved, &login, email.as_ref());
                        return Ok(Err(reject(reason, &record)));
                    }
                }
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
                    let reason = RejectReason::HrIdTaken(record.hr_id.clone());
                    return Ok(Err(reject(reason, &record)));
                }
                // Taken: by a namesake (the next number), or in the other role (rejected).
                // Free again by now (renamed meanwhile) is taken as a namesake: the next
                // number is as good.
                Err(RepoError::Conflict(_)) => {
                    if let Holders::Crossed(reason) = self.holders(&login, email.as_ref()).await? {
                        release(reserved, &login, email.as_ref());
                        return Ok(Err(reject(reason, &record)));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ImportError::NoFreeLogin(base_login.to_owned()))
    }

    /// Who holds `login` and `email`. A login taken as a login, or an e-mail taken as an
    /// e-mail, is a namesake: the next number. But logins and e-mails share one namespace
    /// (the login page takes either in one field): an e-mail that is another account's
    /// *login* (one made by hand as `jean.dupont@univ.example`, most likely this very
    /// person) is not worked around with a number but rejects the line, for an operator to
    /// look at.
    async fn holders(
        &self,
        login: &LoginName,
        email: Option<&Email>,
    ) -> Result<Holders, ImportError> {
        let profiles = &self.parts.profiles;
        let login_holder = profiles.identifier_holder(login.as_str()).await?;
        let email_holder = match email {
            Some(e) => profiles.identifier_holder(e.as_str()).await?,
            None => None,
        };
        let crossed = [
            (login.as_str(), IdentifierKind::Login, login_holder),
            (
                email.map_or("", Email::as_str),
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
        Ok(match crossed {
            Some(reason) => Holders::Crossed(reason),
            None if login_holder.is_none() && email_holder.is_none() => Holders::Free,
            None => Holders::Namesake,
        })
    }
}

/// What an import does concurrently with the rest.
enum Task {
    /// New people sharing a base login, in file order, each with its place in the plan.
    Create {
        /// `prenom.nom`, before any collision number.
        base_login: String,
        /// The people.
        people: Vec<(usize, PersonRecord)>,
    },
    /// A known person whose data changed (see [`Step::Update`]).
    Update {
        /// Place in the plan.
        order: usize,
        /// The person as the file describes them.
        record: PersonRecord,
        /// The account as it is.
        account: Account,
        /// What to write.
        changes: Box<AccountChanges>,
        /// Back from `disabled`.
        reprovision: bool,
    },
    /// A person absent from a full import (see [`Step::Disable`]).
    Disable {
        /// Place in the plan.
        order: usize,
        /// The account.
        account: Account,
        /// Its HR identifier.
        hr_id: HrId,
    },
}

/// Whether a login and its address can be given to a new account.
enum Holders {
    /// Nobody holds either.
    Free,
    /// One is held in its own role: the next number.
    Namesake,
    /// One is held in the other role: the line is rejected.
    Crossed(RejectReason),
}

/// Gives back what [`reserve`] took for a line that is rejected: the next namesake meets the
/// same identifier and is rejected too, for an operator to look at, rather than numbered
/// around it.
fn release(reserved: &Mutex<HashSet<String>>, login: &LoginName, email: Option<&Email>) {
    let mut reserved = reserved.lock().unwrap_or_else(PoisonError::into_inner);
    reserved.remove(login.as_str());
    if let Some(e) = email {
        reserved.remove(e.as_str());
    }
}

/// Reserves `login` and `email` for this run unless either is already given out by it.
fn reserve(reserved: &Mutex<HashSet<String>>, login: &LoginName, email: Option<&Email>) -> bool {
    // Never held across an await; a panic elsewhere cannot leave the set half-written.
    let mut reserved = reserved.lock().unwrap_or_else(PoisonError::into_inner);
    if reserved.contains(login.as_str()) || email.is_some_and(|e| reserved.contains(e.as_str())) {
        return false;
    }
    reserved.insert(login.as_str().to_owned());
    if let Some(e) = email {
        reserved.insert(e.as_str().to_owned());
    }
    true
}
