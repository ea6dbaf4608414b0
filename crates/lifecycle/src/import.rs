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

    /// Carries out (or, in a dry run, only resolves) the plan's steps.
    ///
    /// An import is many short writes, and one person after the other left the database
    /// idle most of the time (issue 18: 702 s for 100,000 people). So the logins of all new
    /// people are chosen first, in memory and in file order (namesakes are numbered as the
    /// file lists them), with the database asked in bulk which candidates are taken
    /// ([`Importer::assign_logins`]); then new people are written [`BATCH`] at a time, each
    /// batch one transaction (all or none), and updates and disables one by one, with
    /// `parallelism` of these writes under way at once. A batch that meets a clash (someone
    /// took a login since it was checked) is written again person by person. A storage
    /// failure starts nothing new, lets what is under way finish (so no written account loses
    /// its audit events), and is returned: what was written stays, and importing the file
    /// again completes it.
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
        let mut creates = Vec::new();
        let mut tasks: Vec<Task> = Vec::new();
        for (order, step) in steps.into_iter().enumerate() {
            match step {
                Step::Create { record, base_login } => creates.push(NewPerson {
                    order,
                    record,
                    base_login,
                }),
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
        let (assigned, reserved) = self.assign_logins(creates).await?;
        let mut to_write = Vec::new();
        for (person, identifiers) in assigned {
            match identifiers {
                Ok((login, email)) if apply => to_write.push((person, login, email)),
                Ok((login, email)) => outcomes.push((person.order, person.created(login, email))),
                Err(reason) => rejections.push(person.rejection(reason)),
            }
        }
        let mut batches = Vec::new();
        while !to_write.is_empty() {
            let rest = to_write.split_off(BATCH.min(to_write.len()));
            batches.push(Task::Create(std::mem::replace(&mut to_write, rest)));
        }
        // New people first: a disable's single logout notices are slower than a batch.
        batches.append(&mut tasks);
        let reserved = Mutex::new(reserved);
        let mut waiting = batches
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

    /// Chooses every new person's login and address: in file order, the first numbered
    /// variant that neither this run nor the database has given out (see
    /// [`crossed`] for an identifier held in the other role, which rejects the line).
    ///
    /// The database is asked in bulk: first about every person's first candidate, then only
    /// about the candidates that moved because one was taken, until no candidate is unknown
    /// (one round per depth of namesakes already in the database). Returns each person with
    /// their login and address or why their line is rejected, and what this run gave out.
    async fn assign_logins(
        &self,
        people: Vec<NewPerson>,
    ) -> Result<(Vec<(NewPerson, Assignment)>, HashSet<String>), ImportError> {
        let mut held: HashMap<String, IdentifierKind> = HashMap::new();
        let mut asked: HashSet<String> = HashSet::new();
        loop {
            let mut reserved = HashSet::new();
            let mut unknown = Vec::new();
            let mut assigned = Vec::with_capacity(people.len());
            for person in &people {
                let choice = self.first_free(person, &reserved, &held)?;
                if let Ok((login, email)) = &choice {
                    for identifier in
                        std::iter::once(login.as_str()).chain(email.as_ref().map(Email::as_str))
                    {
                        reserved.insert(identifier.to_owned());
                        if !asked.contains(identifier) {
                            unknown.push(identifier.to_owned());
                        }
                    }
                }
                assigned.push(choice);
            }
            if unknown.is_empty() {
                return Ok((people.into_iter().zip(assigned).collect(), reserved));
            }
            let found: Vec<Result<Vec<_>, RepoError>> =
                futures::stream::iter(unknown.chunks(HOLDERS_PER_CALL))
                    .map(|chunk| self.parts.profiles.identifier_holders(chunk))
                    .buffer_unordered(self.parts.parallelism.max(1))
                    .collect()
                    .await;
            for holders in found {
                for (identifier, _, kind) in holders? {
                    held.insert(identifier, kind);
                }
            }
            asked.extend(unknown);
        }
    }

    /// `person`'s logins in the order they are tried (`jean.dupont`, `jean.dupont2`, … up to
    /// [`MAX_LOGIN_NUMBER`]), each with the institutional e-mail it would give.
    fn candidates<'a>(
        &'a self,
        person: &'a NewPerson,
    ) -> impl Iterator<Item = (LoginName, Option<Email>)> + 'a {
        (1..=MAX_LOGIN_NUMBER)
            .map_while(|n| numbered_login(&person.base_login, n))
            .map(|login| {
                let email = self
                    .parts
                    .rules
                    .email
                    .render(person.record.affiliation, &login);
                (login, email)
            })
    }

    /// The first numbered variant of `person`'s login that `reserved` and `held` leave free,
    /// with its address, given what the database said so far (`held`: the identifiers it
    /// reported taken, and as what).
    fn first_free(
        &self,
        person: &NewPerson,
        reserved: &HashSet<String>,
        held: &HashMap<String, IdentifierKind>,
    ) -> Result<Assignment, ImportError> {
        for (login, email) in self.candidates(person) {
            let email_str = email.as_ref().map(Email::as_str);
            if reserved.contains(login.as_str()) || email_str.is_some_and(|e| reserved.contains(e))
            {
                continue;
            }
            if let Some(reason) = crossed(&login, email.as_ref(), held) {
                return Ok(Err(reason));
            }
            if held.contains_key(login.as_str()) || email_str.is_some_and(|e| held.contains_key(e))
            {
                continue;
            }
            return Ok(Ok((login, email)));
        }
        Err(ImportError::NoFreeLogin(person.base_login.clone()))
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
            Task::Create(batch) => self.create_batch(batch, reserved, actor).await,
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

    /// Writes a batch of new people in one transaction, with their audit events; if it meets
    /// a clash, writes them one by one instead ([`Importer::create`]).
    async fn create_batch(
        &self,
        batch: Vec<(NewPerson, LoginName, Option<Email>)>,
        reserved: &Mutex<HashSet<String>>,
        actor: &str,
    ) -> Result<Vec<(usize, Result<Outcome, Rejection>)>, ImportError> {
        let now = self.parts.clock.now();
        let rows = batch
            .iter()
            .map(|(person, login, email)| person.account_and_profile(login, email))
            .collect();
        match self
            .parts
            .profiles
            .create_many_with_profiles(rows, now)
            .await
        {
            Ok(ids) => {
                let events = batch
                    .iter()
                    .zip(&ids)
                    .map(|((person, login, _), id)| person.created_event(login, *id, now, actor))
                    .collect();
                self.parts.audit.record_many(events).await?;
                Ok(batch
                    .into_iter()
                    .map(|(person, login, email)| (person.order, Ok(person.created(login, email))))
                    .collect())
            }
            // Taken since it was checked (another writer), or an `hr_id` given meanwhile:
            // each person on their own finds which, and the next number if need be.
            // The batch's logins are given back first, so that its namesakes are numbered
            // in file order again.
            Err(RepoError::Conflict(_)) => {
                for (_, login, email) in &batch {
                    release(reserved, login, email.as_ref());
                }
                let mut done = Vec::with_capacity(batch.len());
                for (person, _, _) in batch {
                    let order = person.order;
                    done.push((order, self.create(person, reserved, actor).await?));
                }
                Ok(done)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates one person's account under the first free login, when their batch met a
    /// clash. A login or address taken by someone else moves on to the next number; an
    /// `hr_id` taken meanwhile, or an identifier held in the other role (see [`crossed`]),
    /// rejects the line.
    ///
    /// The insert itself is the check: the database's one namespace refuses a taken login or
    /// address, and only then is it asked who holds it.
    async fn create(
        &self,
        person: NewPerson,
        reserved: &Mutex<HashSet<String>>,
        actor: &str,
    ) -> Result<Result<Outcome, Rejection>, ImportError> {
        for (login, email) in self.candidates(&person) {
            if !reserve(reserved, &login, email.as_ref()) {
                continue;
            }
            let now = self.parts.clock.now();
            let (new, profile) = person.account_and_profile(&login, &email);
            match self
                .parts
                .profiles
                .create_with_profile(new, profile, now)
                .await
            {
                Ok(created) => {
                    self.parts
                        .audit
                        .record(person.created_event(&login, created.account.id, now, actor))
                        .await?;
                    return Ok(Ok(person.created(login, email)));
                }
                Err(RepoError::Conflict(what)) if what == "hr_id" => {
                    release(reserved, &login, email.as_ref());
                    let reason = RejectReason::HrIdTaken(person.record.hr_id.clone());
                    return Ok(Err(person.rejection(reason)));
                }
                // Taken: by a namesake (the next number), or in the other role (rejected).
                // Free again by now (renamed meanwhile) is taken as a namesake: the next
                // number is as good.
                Err(RepoError::Conflict(_)) => {
                    let asked: Vec<String> = std::iter::once(login.as_str())
                        .chain(email.as_ref().map(Email::as_str))
                        .map(str::to_owned)
                        .collect();
                    let held: HashMap<String, IdentifierKind> = self
                        .parts
                        .profiles
                        .identifier_holders(&asked)
                        .await?
                        .into_iter()
                        .map(|(identifier, _, kind)| (identifier, kind))
                        .collect();
                    if let Some(reason) = crossed(&login, email.as_ref(), &held) {
                        release(reserved, &login, email.as_ref());
                        return Ok(Err(person.rejection(reason)));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(ImportError::NoFreeLogin(person.base_login))
    }
}

/// How many new people one transaction writes: large enough that a year group costs a few
/// hundred statements, small enough that a batch stays well within the database call budget
/// and that a clash (the batch written again person by person) costs little.
const BATCH: usize = 500;

/// Identifiers asked about in one call to the database during [`Importer::assign_logins`].
const HOLDERS_PER_CALL: usize = 2000;

/// A new person of the file, with their place in the plan.
struct NewPerson {
    /// Place in the plan.
    order: usize,
    /// The person.
    record: PersonRecord,
    /// `prenom.nom`, before any collision number.
    base_login: String,
}

/// A new person's login and address, or why their line is rejected.
type Assignment = Result<(LoginName, Option<Email>), RejectReason>;

impl NewPerson {
    /// The account and profile to write under `login` and `email`.
    fn account_and_profile(
        &self,
        login: &LoginName,
        email: &Option<Email>,
    ) -> (NewAccount, AccountProfile) {
        let record = &self.record;
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
        (new, profile)
    }

    /// The audit event of their account's creation.
    fn created_event(
        &self,
        login: &LoginName,
        id: AccountId,
        now: time::OffsetDateTime,
        actor: &str,
    ) -> AuditEvent {
        AuditEvent::new(AuditKind::AccountCreated, now, actor)
            .login(login.as_str())
            .account(id)
            .detail(serde_json::json!({
                "state": AccountState::Provisioned.as_str(),
                "affiliation": self.record.affiliation.as_str(),
                "source": "import",
                "hr_id": self.record.hr_id.as_str(),
            }))
    }

    /// Their outcome, created under `login` and `email`.
    fn created(&self, login: LoginName, email: Option<Email>) -> Outcome {
        Outcome::Created {
            line: self.record.line,
            hr_id: self.record.hr_id.clone(),
            login,
            email,
        }
    }

    /// Their line, rejected.
    fn rejection(&self, reason: RejectReason) -> Rejection {
        Rejection {
            line: self.record.line,
            reason,
            hr_id: Some(self.record.hr_id.clone()),
            affiliation: Some(self.record.affiliation),
        }
    }
}

/// What an import does concurrently with the rest.
enum Task {
    /// New people with their logins and addresses, written in one transaction.
    Create(Vec<(NewPerson, LoginName, Option<Email>)>),
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

/// Why `login` or `email` cannot be given to a new person even with a number, given what
/// the database holds (`held`: identifiers taken, and as what). A login taken as a login, or
/// an e-mail taken as an e-mail, is a namesake: the next number. But logins and e-mails share
/// one namespace (the login page takes either in one field): an e-mail that is another
/// account's *login* (one made by hand as `jean.dupont@univ.example`, most likely this very
/// person) is not worked around with a number but rejects the line, for an operator to look
/// at.
fn crossed(
    login: &LoginName,
    email: Option<&Email>,
    held: &HashMap<String, IdentifierKind>,
) -> Option<RejectReason> {
    [
        (Some(login.as_str()), IdentifierKind::Login),
        (email.map(Email::as_str), IdentifierKind::Email),
    ]
    .into_iter()
    .find_map(|(value, field)| {
        let value = value?;
        let held_as = *held.get(value)?;
        (held_as != field).then(|| RejectReason::IdentifierTaken {
            field,
            value: value.to_owned(),
            held_as,
        })
    })
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
