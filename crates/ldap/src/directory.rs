//! The directory: binds and searches, as decisions over the backend (no sockets here, so the
//! rules are tested without a network; [`crate::server`] carries them over the wire).
//!
//! Limits (the answer to unindexed-search denial of service, security spec row A76): every
//! search stops at the smaller of the client's and the server's size and time limits; a
//! search that must examine accounts one by one (no equality on an identifier) holds one of
//! a few scan permits (`busy` when none is free) and examines at most `scan_limit` accounts
//! (`adminLimitExceeded` beyond). Paged results (RFC 2696) continue after the last login
//! returned, so every page is one index range read however deep it is.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use ldap3_proto::proto::{LdapFilter, LdapResultCode, LdapSearchResultEntry, LdapSearchScope};
use sesame_core::account::{Account, AccountWithProfile};
use sesame_core::ids::Affiliation;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::access::{Identity, ServiceAccounts};
use crate::dn::Dn;
use crate::entry::{self, Entry, Selection, View, SUBSCHEMA_DN};
use crate::filter::{affiliation_named, matches, people_plan, PeoplePlan};

/// RFC 2696 simple paged results.
pub const OID_PAGED_RESULTS: &str = "1.2.840.113556.1.4.319";

/// Accounts read per database page while scanning.
const SCAN_PAGE: usize = 500;

/// Why a person's bind was refused. Every refusal of credentials is one answer: the LDAP
/// client learns no more than "invalid credentials" (no enumeration, no lock oracle); the
/// audit trail has the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindRefusal {
    /// Unknown, wrong, locked, throttled, blocked, disabled, not activated, voided.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// The hashing pool is full: try again.
    #[error("busy")]
    Busy,
    /// The database or the store failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

/// A storage failure while reading the directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// What the directory needs of the rest of Sesame: the web login's password check (pool,
/// lockout, audit) and reads of accounts with their profiles. The server implements it over
/// the core's ports.
#[async_trait]
pub trait DirectoryBackend: Send + Sync + std::fmt::Debug {
    /// Checks `password` for the account holding `identifier` exactly as the login page does
    /// (the same counters, lock, hashing pool and audit events, marked `via: ldap`), then
    /// refuses a password an unblock voided.
    async fn bind_person(
        &self,
        identifier: &str,
        password: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<Account, BindRefusal>;

    /// The account holding `identifier` (login or institutional e-mail), with its profile,
    /// if it has an entry in the directory (active or blocked).
    async fn person(&self, identifier: &str) -> Result<Option<AccountWithProfile>, BackendError>;

    /// Records that a service account's bind was refused (the name given, never the
    /// secret).
    async fn service_bind_refused(
        &self,
        name: &str,
        client_ip: Option<IpAddr>,
    ) -> Result<(), BackendError>;

    /// A page of the people in the directory, by login, after `after`.
    async fn people(
        &self,
        after: Option<&str>,
        affiliation: Option<Affiliation>,
        limit: usize,
    ) -> Result<Vec<AccountWithProfile>, BackendError>;
}

/// The directory's settings.
#[derive(Debug, Clone)]
pub struct DirectoryOptions {
    /// The base DN (`dc=univ,dc=example`).
    pub base: Dn,
    /// The organization's name (`o` of the base entry).
    pub organization: String,
    /// The `eduPersonPrincipalName` scope (empty: the institutional e-mail's domain).
    pub principal_scope: String,
    /// Accept `mail=<address>,ou=people,…` (and an address as `uid`) as a bind DN.
    pub bind_by_mail: bool,
    /// Anonymous binds read the public directory view.
    pub anonymous_directory: bool,
    /// Most entries one search (or one page) returns.
    pub size_limit: usize,
    /// Longest a search runs.
    pub time_limit: Duration,
    /// Most accounts one search examines one by one.
    pub scan_limit: usize,
    /// Searches that scan at the same time, across connections.
    pub max_concurrent_scans: usize,
    /// Binds of people checking a password at the same time, across connections: the share
    /// of the hashing pool LDAP may hold, so that a mail server's burst leaves the rest to
    /// the login page (one more gets `busy` at once).
    pub max_concurrent_binds: usize,
    /// How long a bind waits for one of those places before it is told `busy`.
    pub bind_wait: Duration,
    /// Whether StartTLS is offered (shown in the root DSE).
    pub start_tls: bool,
    /// The service accounts.
    pub services: ServiceAccounts,
}

/// The answer to a bind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindOutcome {
    /// The result code.
    pub code: LdapResultCode,
    /// The diagnostic message (never says why credentials were refused).
    pub message: String,
    /// Who the connection is bound as now.
    pub identity: Identity,
}

/// The answer to a search.
#[derive(Debug, Clone)]
pub struct SearchOutcome {
    /// The entries, in order.
    pub entries: Vec<LdapSearchResultEntry>,
    /// The result code.
    pub code: LdapResultCode,
    /// The matched DN, for `noSuchObject`.
    pub matched_dn: String,
    /// The diagnostic message.
    pub message: String,
    /// For a paged search, the cookie of the next page (empty: the last one).
    pub cookie: Option<Vec<u8>>,
}

impl SearchOutcome {
    fn error(code: LdapResultCode, message: &str) -> Self {
        Self {
            entries: Vec::new(),
            code,
            matched_dn: String::new(),
            message: message.to_owned(),
            cookie: None,
        }
    }
}

/// A search request, as the directory needs it.
#[derive(Debug, Clone)]
pub struct Search {
    /// Base DN, as sent.
    pub base: String,
    /// Scope.
    pub scope: LdapSearchScope,
    /// Filter.
    pub filter: LdapFilter,
    /// Requested attributes.
    pub attrs: Vec<String>,
    /// Client's size limit (0: none).
    pub size_limit: i32,
    /// Client's time limit in seconds (0: none).
    pub time_limit: i32,
    /// Names only.
    pub types_only: bool,
    /// RFC 2696 paging: page size and cookie.
    pub paged: Option<(i64, Vec<u8>)>,
}

/// Where a DN points in Sesame's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    RootDse,
    Subschema,
    Base,
    People,
    Groups,
    Person(Box<AccountWithProfile>),
    Group(Affiliation),
}

/// Where a paged search resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resume {
    Start,
    /// In the entries above the people and groups, from this index.
    Structural(usize),
    /// In the people, after this login.
    PeopleAfter(String),
    /// In the groups, from this index.
    GroupsFrom(usize),
}

impl Resume {
    fn parse(cookie: &[u8]) -> Option<Self> {
        if cookie.is_empty() {
            return Some(Self::Start);
        }
        let text = std::str::from_utf8(cookie).ok()?;
        match text.split_once(':')? {
            ("s", index) => index.parse().ok().map(Self::Structural),
            ("p", login) => Some(Self::PeopleAfter(login.to_owned())),
            ("g", index) => index.parse().ok().map(Self::GroupsFrom),
            _ => None,
        }
    }

    fn cookie(&self) -> Vec<u8> {
        match self {
            Self::Start => Vec::new(),
            Self::Structural(i) => format!("s:{i}").into_bytes(),
            Self::PeopleAfter(login) => format!("p:{login}").into_bytes(),
            Self::GroupsFrom(i) => format!("g:{i}").into_bytes(),
        }
    }
}

/// A search's running state: what it may still return and examine.
struct Run<'a> {
    search: &'a Search,
    selection: Selection,
    identity: &'a Identity,
    entries: Vec<LdapSearchResultEntry>,
    /// Entries this search (or page) may return.
    room: usize,
    /// Entries returned before the limit was reached: the limit's result code.
    limit_code: LdapResultCode,
    deadline: Instant,
    scanned: usize,
    /// The login of the last person returned on this page.
    last_login: Option<String>,
    /// Where the people of this page started (the login after which they are read).
    people_start: String,
}

/// Where an offered entry is in the walk, to resume there when the page is full.
enum At {
    Structural(usize),
    Person(String),
    Group(usize),
}

/// How a run stopped early.
enum Stop {
    /// The size limit or the page is full; for a page, where the next one resumes.
    Full(Option<Resume>),
    Code(LdapResultCode, String),
}

impl Run<'_> {
    /// Returns `entry` if it matches; `Err` once there is no room for it.
    fn offer(&mut self, entry: &Entry, at: At) -> Result<(), Stop> {
        if !matches(&self.search.filter, entry) {
            return Ok(());
        }
        if self.room == 0 {
            let resume = match at {
                At::Structural(i) => Resume::Structural(i),
                // Everything between the last person returned and this one did not match.
                At::Person(_) => Resume::PeopleAfter(
                    self.last_login
                        .clone()
                        .unwrap_or_else(|| self.people_start.clone()),
                ),
                At::Group(i) => Resume::GroupsFrom(i),
            };
            return Err(Stop::Full(Some(resume)));
        }
        self.entries
            .push(entry.to_result(&self.selection, self.search.types_only));
        self.room -= 1;
        if let At::Person(login) = at {
            self.last_login = Some(login);
        }
        Ok(())
    }

    fn check_time(&self) -> Result<(), Stop> {
        if Instant::now() >= self.deadline {
            return Err(Stop::Code(
                LdapResultCode::TimeLimitExceeded,
                "time limit exceeded".into(),
            ));
        }
        Ok(())
    }
}

/// The directory over a backend.
#[derive(Debug, Clone)]
pub struct Directory {
    options: Arc<DirectoryOptions>,
    backend: Arc<dyn DirectoryBackend>,
    scans: Arc<Semaphore>,
    binds: Arc<Semaphore>,
    people: Dn,
    groups: Dn,
    services: Dn,
}

impl Directory {
    /// A directory with `options` over `backend`.
    pub fn new(options: DirectoryOptions, backend: Arc<dyn DirectoryBackend>) -> Self {
        let people = options.base.child("ou", "people");
        let groups = options.base.child("ou", "groups");
        let services = options.base.child("ou", "services");
        let scans = Arc::new(Semaphore::new(options.max_concurrent_scans.max(1)));
        let binds = Arc::new(Semaphore::new(options.max_concurrent_binds.max(1)));
        Self {
            options: Arc::new(options),
            backend,
            scans,
            binds,
            people,
            groups,
            services,
        }
    }

    /// The settings.
    pub fn options(&self) -> &DirectoryOptions {
        &self.options
    }

    /// A simple bind of `dn` with `password`; `client_ip` counts on the address's counter
    /// (`None` for a relaying server such as Dovecot, whose address is everyone's).
    pub async fn bind(&self, dn: &str, password: &str, client_ip: Option<IpAddr>) -> BindOutcome {
        let refused = |code, message: &str| BindOutcome {
            code,
            message: message.to_owned(),
            identity: Identity::Anonymous,
        };
        let invalid = || refused(LdapResultCode::InvalidCredentials, "invalid credentials");
        if dn.is_empty() && password.is_empty() {
            return if self.options.anonymous_directory {
                refused(LdapResultCode::Success, "")
            } else {
                refused(
                    LdapResultCode::UnwillingToPerform,
                    "anonymous bind is disabled",
                )
            };
        }
        if password.is_empty() {
            // RFC 4513 §5.1.2: an "unauthenticated" bind (a DN without password) must not
            // pass for a successful one.
            return refused(
                LdapResultCode::UnwillingToPerform,
                "unauthenticated bind (DN without password) is not allowed",
            );
        }
        let Ok(parsed) = Dn::parse(dn) else {
            return refused(LdapResultCode::InvalidDNSyntax, "invalid DN syntax");
        };
        let parent = parsed.parent();
        let Some(leaf) = parsed.leaf() else {
            return invalid();
        };
        if parent.same_as(&self.services) && leaf.attr == "cn" {
            return match self.options.services.authenticate(&leaf.value, password) {
                Some(service) => BindOutcome {
                    code: LdapResultCode::Success,
                    message: String::new(),
                    identity: Identity::Service {
                        name: service.name.clone(),
                        scope: service.scope,
                        dn: self.services.child("cn", &service.name).to_string(),
                    },
                },
                None => {
                    // 256-bit secrets are not guessed: a refusal is a misconfigured service
                    // (or someone trying), which the operator should see, in the audit trail.
                    tracing::warn!(ldap.service = ?leaf.value, client.ip = ?client_ip, "LDAP service account bind refused");
                    match self
                        .backend
                        .service_bind_refused(&leaf.value, client_ip)
                        .await
                    {
                        Ok(()) => invalid(),
                        Err(e) => {
                            tracing::error!(error = %e, "LDAP bind: cannot record the refusal");
                            refused(LdapResultCode::Unavailable, "unavailable, try again")
                        }
                    }
                }
            };
        }
        if !parent.same_as(&self.people) {
            return invalid();
        }
        let identifier = leaf.value.as_str();
        let by_mail = match leaf.attr.as_str() {
            "uid" => identifier.contains('@'),
            "mail" => true,
            _ => return invalid(),
        };
        if by_mail && !self.options.bind_by_mail {
            return invalid();
        }
        // A burst waits its turn a moment (a mail server's logins arrive together), then is
        // told busy rather than queueing behind the login page.
        let permit = tokio::time::timeout(self.options.bind_wait, self.binds.acquire()).await;
        let Ok(Ok(_permit)) = permit else {
            return refused(LdapResultCode::Busy, "busy, try again");
        };
        match self
            .backend
            .bind_person(identifier, password, client_ip)
            .await
        {
            Ok(account) => BindOutcome {
                code: LdapResultCode::Success,
                message: String::new(),
                identity: Identity::Person {
                    login: account.login.to_string(),
                    dn: self.people.child("uid", account.login.as_str()).to_string(),
                },
            },
            Err(BindRefusal::InvalidCredentials) => invalid(),
            Err(BindRefusal::Busy) => refused(LdapResultCode::Busy, "busy, try again"),
            Err(BindRefusal::Unavailable(e)) => {
                tracing::error!(error = %e, "LDAP bind: storage unavailable");
                refused(LdapResultCode::Unavailable, "unavailable, try again")
            }
        }
    }

    /// Where `dn` points, or the DN of its closest existing ancestor.
    async fn locate(&self, dn: &Dn) -> Result<Result<Target, String>, BackendError> {
        if dn.rdns.is_empty() {
            return Ok(Ok(Target::RootDse));
        }
        if dn.same_as(&Dn::parse(SUBSCHEMA_DN).unwrap_or_default()) {
            return Ok(Ok(Target::Subschema));
        }
        let base = &self.options.base;
        if !dn.is_within(base) {
            return Ok(Err(String::new()));
        }
        if dn.same_as(base) {
            return Ok(Ok(Target::Base));
        }
        if dn.same_as(&self.people) {
            return Ok(Ok(Target::People));
        }
        if dn.same_as(&self.groups) {
            return Ok(Ok(Target::Groups));
        }
        let parent = dn.parent();
        let leaf = dn.leaf().map(|r| (r.attr.as_str(), r.normalized_value()));
        if parent.same_as(&self.people) {
            if let Some(("uid", login)) = leaf {
                if let Some(p) = self.backend.person(&login).await? {
                    if p.account.login.as_str() == login {
                        return Ok(Ok(Target::Person(Box::new(p))));
                    }
                }
            }
            return Ok(Err(self.people.to_string()));
        }
        if parent.same_as(&self.groups) {
            if let Some(("cn", name)) = leaf {
                if let Some(a) = affiliation_named(&name) {
                    return Ok(Ok(Target::Group(a)));
                }
            }
            return Ok(Err(self.groups.to_string()));
        }
        Ok(Err(base.to_string()))
    }

    /// Runs `search` for `identity`.
    pub async fn search(&self, identity: &Identity, search: &Search) -> SearchOutcome {
        match self.search_inner(identity, search).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::error!(error = %e, "LDAP search: storage unavailable");
                SearchOutcome::error(LdapResultCode::Unavailable, "unavailable, try again")
            }
        }
    }

    async fn search_inner(
        &self,
        identity: &Identity,
        search: &Search,
    ) -> Result<SearchOutcome, BackendError> {
        let Ok(base) = Dn::parse(&search.base) else {
            return Ok(SearchOutcome::error(
                LdapResultCode::InvalidDNSyntax,
                "invalid DN syntax",
            ));
        };
        let resume = match &search.paged {
            Some((_, cookie)) => match Resume::parse(cookie) {
                Some(r) => r,
                None => {
                    return Ok(SearchOutcome::error(
                        LdapResultCode::UnwillingToPerform,
                        "invalid paged results cookie",
                    ))
                }
            },
            None => Resume::Start,
        };
        if let Some((0, _)) = search.paged {
            // RFC 2696 §3: a page size of zero abandons the paged search.
            let mut done = SearchOutcome::error(LdapResultCode::Success, "");
            done.cookie = Some(Vec::new());
            return Ok(done);
        }
        let target = match self.locate(&base).await? {
            Ok(t) => t,
            Err(matched) => {
                let mut outcome =
                    SearchOutcome::error(LdapResultCode::NoSuchObject, "no such object");
                // Anonymous readers learn nothing of the tree's shape.
                if identity
                    .general_view(self.options.anonymous_directory)
                    .is_some()
                {
                    outcome.matched_dn = matched;
                }
                return Ok(outcome);
            }
        };
        let anonymous_directory = self.options.anonymous_directory;
        let general = identity.general_view(anonymous_directory);
        let public_entry = matches!(target, Target::RootDse | Target::Subschema);
        if general.is_none() && !public_entry {
            return Ok(SearchOutcome::error(
                LdapResultCode::InsufficentAccessRights,
                "bind first",
            ));
        }

        let server_size = self.options.size_limit.max(1);
        let (room, limit_code) = match &search.paged {
            Some((size, _)) => (
                usize::try_from(*size)
                    .unwrap_or(server_size)
                    .min(server_size),
                LdapResultCode::Success,
            ),
            None => {
                let client = usize::try_from(search.size_limit).unwrap_or(0);
                if client > 0 && client <= server_size {
                    (client, LdapResultCode::SizeLimitExceeded)
                } else {
                    (server_size, LdapResultCode::SizeLimitExceeded)
                }
            }
        };
        let time_limit = match u64::try_from(search.time_limit) {
            Ok(secs) if secs > 0 => Duration::from_secs(secs).min(self.options.time_limit),
            _ => self.options.time_limit,
        };
        let mut run = Run {
            search,
            selection: Selection::from_request(&search.attrs),
            identity,
            entries: Vec::new(),
            room,
            limit_code,
            deadline: Instant::now() + time_limit,
            scanned: 0,
            last_login: None,
            people_start: match &resume {
                Resume::PeopleAfter(login) => login.clone(),
                _ => String::new(),
            },
        };

        let stopped = self.walk(&mut run, target, resume).await;
        let paged = search.paged.is_some();
        let (code, message, cookie) = match stopped {
            Ok(()) => (
                LdapResultCode::Success,
                String::new(),
                Resume::Start.cookie(),
            ),
            Err(Stop::Full(next)) => {
                if paged {
                    let cookie = next.map(|r| r.cookie()).unwrap_or_default();
                    (LdapResultCode::Success, String::new(), cookie)
                } else {
                    (
                        run.limit_code.clone(),
                        "size limit exceeded".into(),
                        Vec::new(),
                    )
                }
            }
            Err(Stop::Code(code, message)) => (code, message, Vec::new()),
        };
        Ok(SearchOutcome {
            entries: run.entries,
            code,
            matched_dn: String::new(),
            message,
            cookie: paged.then_some(cookie),
        })
    }

    /// Offers every entry of `target`'s scope, in tree order, from `resume`.
    async fn walk(&self, run: &mut Run<'_>, target: Target, resume: Resume) -> Result<(), Stop> {
        let scope = run.search.scope.clone();
        let base_only = scope == LdapSearchScope::Base;
        let subtree = scope == LdapSearchScope::Subtree;
        let children = matches!(scope, LdapSearchScope::OneLevel | LdapSearchScope::Children);
        // The entries above people and groups, in order; a page resumes among them by index.
        let mut above: Vec<Entry> = Vec::new();
        let mut people = false;
        let mut groups = false;
        match &target {
            Target::RootDse if base_only => {
                above.push(entry::root_dse(&self.options.base, self.options.start_tls));
            }
            Target::Subschema if base_only => above.push(entry::subschema()),
            Target::RootDse | Target::Subschema => {}
            Target::Base => {
                if base_only || subtree {
                    above.push(entry::base(&self.options.base, &self.options.organization));
                }
                if !base_only {
                    above.push(entry::organizational_unit(&self.people));
                    above.push(entry::organizational_unit(&self.groups));
                }
                people = subtree;
                groups = subtree;
            }
            Target::People | Target::Groups => {
                let ou = if target == Target::People {
                    &self.people
                } else {
                    &self.groups
                };
                if base_only || subtree {
                    above.push(entry::organizational_unit(ou));
                }
                people = target == Target::People && (subtree || children);
                groups = target == Target::Groups && (subtree || children);
            }
            Target::Person(p) => {
                if base_only || subtree {
                    let view = run
                        .identity
                        .view_of(p.account.login.as_str(), self.options.anonymous_directory);
                    above.extend(view.and_then(|v| self.person_entry(p, v)));
                }
            }
            Target::Group(a) => {
                if base_only || subtree {
                    above.extend(self.group_entry(run, *a).await?);
                }
            }
        }
        let from = match resume {
            Resume::Start => Some(0),
            Resume::Structural(i) => Some(i),
            _ => None,
        };
        if let Some(from) = from {
            for (i, e) in above.iter().enumerate().skip(from) {
                run.offer(e, At::Structural(i))?;
            }
        }
        if people {
            self.walk_people(run, &resume).await?;
        }
        if groups {
            self.walk_groups(run, &resume).await?;
        }
        Ok(())
    }

    fn person_entry(&self, p: &AccountWithProfile, view: View) -> Option<Entry> {
        entry::person(
            p,
            &self.people,
            &self.groups,
            view,
            &self.options.principal_scope,
        )
    }

    async fn walk_people(&self, run: &mut Run<'_>, resume: &Resume) -> Result<(), Stop> {
        let after = match resume {
            Resume::Start | Resume::Structural(_) => None,
            Resume::PeopleAfter(login) => Some(login.clone()),
            Resume::GroupsFrom(_) => return Ok(()),
        };
        let anonymous_directory = self.options.anonymous_directory;
        match people_plan(&run.search.filter, &self.groups) {
            PeoplePlan::Identifiers(ids) => {
                let mut found: Vec<AccountWithProfile> = Vec::new();
                for id in ids {
                    run.check_time()?;
                    let p = self.backend.person(&id).await.map_err(unavailable)?;
                    if let Some(p) = p {
                        if !found.iter().any(|f| f.account.id == p.account.id) {
                            found.push(p);
                        }
                    }
                }
                found.sort_by(|a, b| a.account.login.as_str().cmp(b.account.login.as_str()));
                for p in found {
                    let login = p.account.login.to_string();
                    if after.as_deref().is_some_and(|a| login.as_str() <= a) {
                        continue;
                    }
                    let view = run.identity.view_of(&login, anonymous_directory);
                    if let Some(e) = view.and_then(|v| self.person_entry(&p, v)) {
                        run.offer(&e, At::Person(login))?;
                    }
                }
                Ok(())
            }
            PeoplePlan::Scan { affiliation } => {
                let Ok(_permit) = self.scans.clone().try_acquire_owned() else {
                    return Err(Stop::Code(
                        LdapResultCode::Busy,
                        "too many searches at once, try again".into(),
                    ));
                };
                let mut cursor = after;
                loop {
                    run.check_time()?;
                    let page = self
                        .backend
                        .people(cursor.as_deref(), affiliation, SCAN_PAGE)
                        .await
                        .map_err(unavailable)?;
                    let last = page.len() < SCAN_PAGE;
                    for p in &page {
                        run.scanned += 1;
                        if run.scanned > self.options.scan_limit {
                            return Err(Stop::Code(
                                LdapResultCode::AdminLimitExceeded,
                                "this search examines too many entries: add an equality on uid or mail, or page it".into(),
                            ));
                        }
                        let login = p.account.login.to_string();
                        let view = run.identity.view_of(&login, anonymous_directory);
                        if let Some(e) = view.and_then(|v| self.person_entry(p, v)) {
                            run.offer(&e, At::Person(login))?;
                        }
                    }
                    match page.last() {
                        Some(p) if !last => cursor = Some(p.account.login.to_string()),
                        _ => return Ok(()),
                    }
                }
            }
        }
    }

    async fn walk_groups(&self, run: &mut Run<'_>, resume: &Resume) -> Result<(), Stop> {
        let from = match resume {
            Resume::GroupsFrom(i) => *i,
            _ => 0,
        };
        for (i, a) in Affiliation::ALL.into_iter().enumerate().skip(from) {
            if let Some(e) = self.group_entry(run, a).await? {
                run.offer(&e, At::Group(i))?;
            }
        }
        Ok(())
    }

    /// The group of `affiliation` as `run`'s reader sees it (groups are shown to the
    /// directory and full views); its members are read only when the search needs them.
    async fn group_entry(
        &self,
        run: &mut Run<'_>,
        affiliation: Affiliation,
    ) -> Result<Option<Entry>, Stop> {
        let anonymous_directory = self.options.anonymous_directory;
        let view = run.identity.general_view(anonymous_directory);
        if !matches!(view, Some(View::Directory | View::Full)) {
            return Ok(None);
        }
        let needs_members = run.selection_wants("member") || mentions(&run.search.filter, "member");
        let mut members = Vec::new();
        if needs_members {
            let Ok(_permit) = self.scans.clone().try_acquire_owned() else {
                return Err(Stop::Code(
                    LdapResultCode::Busy,
                    "too many searches at once, try again".into(),
                ));
            };
            let mut cursor: Option<String> = None;
            loop {
                run.check_time()?;
                let page = self
                    .backend
                    .people(cursor.as_deref(), Some(affiliation), SCAN_PAGE)
                    .await
                    .map_err(unavailable)?;
                for p in &page {
                    run.scanned += 1;
                    if run.scanned > self.options.scan_limit {
                        return Err(Stop::Code(
                            LdapResultCode::AdminLimitExceeded,
                            "this group has too many members to list".into(),
                        ));
                    }
                    let login = p.account.login.as_str();
                    if run
                        .identity
                        .view_of(login, anonymous_directory)
                        .is_some_and(|v| v == View::Full || p.profile.directory_opt_in)
                    {
                        members.push(self.people.child("uid", login).to_string());
                    }
                }
                if page.len() < SCAN_PAGE {
                    break;
                }
                cursor = page.last().map(|p| p.account.login.to_string());
            }
        }
        Ok(Some(entry::group(&self.groups, affiliation, members)))
    }
}

impl Run<'_> {
    fn selection_wants(&self, name: &str) -> bool {
        self.search.attrs.is_empty()
            || self
                .search
                .attrs
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case(name))
    }
}

fn unavailable(e: BackendError) -> Stop {
    tracing::error!(error = %e, "LDAP search: storage unavailable");
    Stop::Code(LdapResultCode::Unavailable, "unavailable, try again".into())
}

/// Whether `filter` tests attribute `name`.
fn mentions(filter: &LdapFilter, name: &str) -> bool {
    match filter {
        LdapFilter::And(items) | LdapFilter::Or(items) => items.iter().any(|f| mentions(f, name)),
        LdapFilter::Not(inner) => mentions(inner, name),
        LdapFilter::Equality(a, _)
        | LdapFilter::Substring(a, _)
        | LdapFilter::GreaterOrEqual(a, _)
        | LdapFilter::LessOrEqual(a, _)
        | LdapFilter::Present(a)
        | LdapFilter::Approx(a, _) => a.eq_ignore_ascii_case(name),
        LdapFilter::Extensible(m) => m
            .type_
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(name)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use ldap3_proto::parse_ldap_filter_str;

    use super::*;
    use crate::access::{ServiceAccount, ServiceScope};
    use crate::entry::tests::someone;

    /// People in memory, by login.
    #[derive(Debug)]
    struct Memory {
        people: Vec<AccountWithProfile>,
        binds_in_flight: Mutex<usize>,
    }

    #[async_trait]
    impl DirectoryBackend for Memory {
        async fn bind_person(
            &self,
            identifier: &str,
            password: &str,
            _client_ip: Option<IpAddr>,
        ) -> Result<Account, BindRefusal> {
            *self.binds_in_flight.lock().unwrap() += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
            *self.binds_in_flight.lock().unwrap() -= 1;
            self.people
                .iter()
                .find(|p| p.account.login.as_str() == identifier && password == "right")
                .map(|p| p.account.clone())
                .ok_or(BindRefusal::InvalidCredentials)
        }

        async fn service_bind_refused(
            &self,
            _name: &str,
            _client_ip: Option<IpAddr>,
        ) -> Result<(), BackendError> {
            Ok(())
        }

        async fn person(
            &self,
            identifier: &str,
        ) -> Result<Option<AccountWithProfile>, BackendError> {
            Ok(self
                .people
                .iter()
                .find(|p| p.account.login.as_str() == identifier)
                .cloned())
        }

        async fn people(
            &self,
            after: Option<&str>,
            affiliation: Option<Affiliation>,
            limit: usize,
        ) -> Result<Vec<AccountWithProfile>, BackendError> {
            Ok(self
                .people
                .iter()
                .filter(|p| after.is_none_or(|a| p.account.login.as_str() > a))
                .filter(|p| affiliation.is_none_or(|a| p.account.affiliation == a))
                .take(limit)
                .cloned()
                .collect())
        }
    }

    fn directory(people: usize) -> Directory {
        directory_waiting(people, Duration::ZERO)
    }

    fn directory_waiting(people: usize, bind_wait: Duration) -> Directory {
        let mut list: Vec<AccountWithProfile> = (0..people)
            .map(|i| someone(&format!("p{i:03}"), i % 2 == 0, None))
            .collect();
        list.sort_by(|a, b| a.account.login.as_str().cmp(b.account.login.as_str()));
        Directory::new(
            DirectoryOptions {
                base: Dn::parse("dc=univ,dc=example").unwrap(),
                organization: "Université".into(),
                principal_scope: String::new(),
                bind_by_mail: false,
                anonymous_directory: false,
                size_limit: 100,
                time_limit: Duration::from_secs(10),
                scan_limit: 1000,
                max_concurrent_scans: 1,
                max_concurrent_binds: 1,
                bind_wait,
                start_tls: false,
                services: ServiceAccounts::new(vec![ServiceAccount {
                    name: "full".into(),
                    scope: ServiceScope::Full,
                    secret_sha256: sesame_core::random::sha256_hex("secret"),
                }]),
            },
            Arc::new(Memory {
                people: list,
                binds_in_flight: Mutex::new(0),
            }),
        )
    }

    fn full() -> Identity {
        Identity::Service {
            name: "full".into(),
            scope: ServiceScope::Full,
            dn: "cn=full,ou=services,dc=univ,dc=example".into(),
        }
    }

    fn subtree(base: &str, filter: &str, paged: Option<(i64, Vec<u8>)>) -> Search {
        Search {
            base: base.into(),
            scope: LdapSearchScope::Subtree,
            filter: parse_ldap_filter_str(filter).unwrap(),
            attrs: vec!["1.1".into()],
            size_limit: 0,
            time_limit: 0,
            types_only: false,
            paged,
        }
    }

    #[tokio::test]
    async fn pages_of_any_size_return_the_whole_tree_once_in_order() {
        let d = directory(7);
        let whole = d
            .search(
                &full(),
                &subtree("dc=univ,dc=example", "(objectClass=*)", None),
            )
            .await;
        assert_eq!(whole.code, LdapResultCode::Success);
        // base, two units, 7 people, 6 groups.
        assert_eq!(whole.entries.len(), 16);
        for size in [1, 2, 3, 5, 16, 50] {
            let mut cookie = Vec::new();
            let mut seen = Vec::new();
            let mut pages = 0;
            loop {
                let page = d
                    .search(
                        &full(),
                        &subtree(
                            "dc=univ,dc=example",
                            "(objectClass=*)",
                            Some((size, cookie)),
                        ),
                    )
                    .await;
                assert_eq!(page.code, LdapResultCode::Success);
                assert!(page.entries.len() <= usize::try_from(size).unwrap());
                seen.extend(page.entries.into_iter().map(|e| e.dn));
                pages += 1;
                cookie = page.cookie.unwrap();
                if cookie.is_empty() {
                    break;
                }
                assert!(pages < 100);
            }
            let expected: Vec<String> = whole.entries.iter().map(|e| e.dn.clone()).collect();
            assert_eq!(seen, expected, "page size {size}");
        }
    }

    #[tokio::test]
    async fn a_forged_cookie_is_refused_and_a_zero_page_ends_the_search() {
        let d = directory(3);
        let forged = d
            .search(
                &full(),
                &subtree(
                    "dc=univ,dc=example",
                    "(objectClass=*)",
                    Some((2, b"x:1".to_vec())),
                ),
            )
            .await;
        assert_eq!(forged.code, LdapResultCode::UnwillingToPerform);
        let zero = d
            .search(
                &full(),
                &subtree(
                    "dc=univ,dc=example",
                    "(objectClass=*)",
                    Some((0, Vec::new())),
                ),
            )
            .await;
        assert_eq!(zero.code, LdapResultCode::Success);
        assert!(zero.entries.is_empty());
    }

    #[tokio::test]
    async fn binds_beyond_ldaps_share_of_the_pool_wait_their_turn_then_are_told_busy() {
        let d = directory(2);
        let dn = "uid=p000,ou=people,dc=univ,dc=example";
        let (a, b) = tokio::join!(d.bind(dn, "right", None), d.bind(dn, "right", None));
        let mut codes = [a.code, b.code];
        codes.sort();
        assert_eq!(codes, [LdapResultCode::Success, LdapResultCode::Busy]);
        // Once the first is done, the next one goes through.
        assert_eq!(
            d.bind(dn, "right", None).await.code,
            LdapResultCode::Success
        );
        // With a wait, the second takes the place the first frees.
        let waiting = directory_waiting(2, Duration::from_secs(5));
        let (a, b) = tokio::join!(
            waiting.bind(dn, "right", None),
            waiting.bind(dn, "right", None)
        );
        assert_eq!(
            (a.code, b.code),
            (LdapResultCode::Success, LdapResultCode::Success)
        );
        let wrong = d.bind(dn, "wrong", None).await;
        assert_eq!(wrong.code, LdapResultCode::InvalidCredentials);
        assert_eq!(wrong.identity, Identity::Anonymous);
    }

    #[tokio::test]
    async fn a_dn_outside_people_or_services_binds_nothing() {
        let d = directory(1);
        for dn in [
            "uid=p000,ou=groups,dc=univ,dc=example",
            "uid=p000,dc=univ,dc=example",
            "cn=full,ou=people,dc=univ,dc=example",
        ] {
            let outcome = d.bind(dn, "right", None).await;
            assert_eq!(outcome.code, LdapResultCode::InvalidCredentials, "{dn}");
        }
        let service = d
            .bind("cn=FULL,ou=services,dc=univ,dc=example", "secret", None)
            .await;
        assert_eq!(service.code, LdapResultCode::Success);
        assert_eq!(service.identity, full());
    }
}
