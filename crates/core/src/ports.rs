//! What the core needs from storage. Implemented in `sesame-store` (SQL via diesel; the
//! ephemeral store in-process or in Redis).

use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::account::{
    Account, AccountChanges, AccountCredential, AccountProfile, AccountState, AccountWithProfile,
    NewAccount,
};
use crate::audit::AuditEvent;
use crate::error::{RepoError, StoreError};
use crate::ids::{AccountId, Affiliation, Email, HrId, IdentifierKind, LoginName};

/// Durable account storage (the SQL database).
#[async_trait]
pub trait AccountRepo: Send + Sync + std::fmt::Debug {
    /// Inserts an account.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] if the login or e-mail is taken.
    async fn create(&self, account: NewAccount, now: OffsetDateTime) -> Result<Account, RepoError>;

    /// The account whose login (or institutional e-mail) equals `identifier`, with its
    /// password hash, in one query (this is on the login path).
    async fn find_credential(
        &self,
        identifier: &str,
    ) -> Result<Option<AccountCredential>, RepoError>;

    /// The account with this login.
    async fn find_by_login(&self, login: &LoginName) -> Result<Option<Account>, RepoError>;

    /// The account with this id (the OpenID Connect `sub`).
    async fn find_by_id(&self, id: AccountId) -> Result<Option<Account>, RepoError>;

    /// Changes the state.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if there is no such account.
    async fn set_state(
        &self,
        id: AccountId,
        state: AccountState,
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Stores a new password hash.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if there is no such account.
    async fn set_password_hash(
        &self,
        id: AccountId,
        phc: &str,
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Until when `login_key` is locked, as written by [`AccountRepo::set_login_lock`]
    /// (security decision 2: a lock survives the loss of the counter store).
    async fn login_locked_until(
        &self,
        login_key: &str,
    ) -> Result<Option<OffsetDateTime>, RepoError>;

    /// Records (`Some`) or lifts (`None`) the lock of a login string.
    async fn set_login_lock(
        &self,
        login_key: &str,
        until: Option<OffsetDateTime>,
    ) -> Result<(), RepoError>;

    /// Waits (briefly) until no connection is being opened or used, so the process can
    /// exit without a database library still at work on another thread (libpq with TLS
    /// crashes when the process exits under it). Called before a command or the server ends.
    async fn quiesce(&self) {}

    /// Deletes lock records that ended at or before `now`; returns how many.
    async fn purge_expired_login_locks(&self, now: OffsetDateTime) -> Result<usize, RepoError>;

    /// Round trip to the database, for readiness.
    async fn ping(&self) -> Result<(), RepoError>;

    /// Sets (or, with `None`, removes) the institutional e-mail.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if there is no such account; [`RepoError::Conflict`] naming
    /// `email` if another account has it.
    async fn set_email(
        &self,
        id: AccountId,
        email: Option<&Email>,
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;
}

/// Told once the database has committed a change to an account (its state, names, addresses,
/// affiliation or password), by the storage that committed it: sessions keep a copy of the
/// account and learn from this that it is old ([`crate::account_marks`]).
#[async_trait]
pub trait AccountChangeObserver: Send + Sync + std::fmt::Debug {
    /// Account `id` changed. Failures are the observer's to report: the change stands.
    async fn account_changed(&self, id: AccountId);
}

/// Durable audit trail (the SQL database). Writes are never dropped silently: an error here
/// fails the operation that wanted to record it.
#[async_trait]
pub trait AuditLog: Send + Sync + std::fmt::Debug {
    /// Appends an event.
    async fn record(&self, event: AuditEvent) -> Result<(), RepoError>;

    /// Appends events in one write: all of them, or (on error) none.
    async fn record_many(&self, events: Vec<AuditEvent>) -> Result<(), RepoError>;

    /// The most recent events, newest first, optionally for one login.
    async fn recent(&self, login: Option<&str>, limit: i64) -> Result<Vec<AuditEvent>, RepoError>;
}

/// The outcome of reserving one attempt on a counter (see [`EphemeralStore::reserve_attempt`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptReservation {
    /// This attempt's rank within the current window (1 for the first).
    pub attempt: u32,
    /// Set when the key is locked (the attempt was then not counted).
    pub locked_until: Option<OffsetDateTime>,
}

/// What [`EphemeralStore::take_linked`] and [`EphemeralStore::get_linked`] return: the
/// payload, and the value of each linked entry (`None` if absent), in the order of the links.
pub type Linked = (String, Vec<Option<String>>);

/// A value for [`EphemeralStore::take_linked`] and [`EphemeralStore::get_linked`]: `payload`
/// linked to the entries `links`. The format is the links separated by spaces, a newline, then
/// the payload, so keys must hold neither (Sesame's keys are `[A-Za-z0-9:_-]`).
pub fn linked_value(links: &[&str], payload: &str) -> String {
    let mut value =
        String::with_capacity(links.iter().map(|l| l.len() + 1).sum::<usize>() + payload.len());
    for (i, link) in links.iter().enumerate() {
        if i > 0 {
            value.push(' ');
        }
        value.push_str(link);
    }
    value.push('\n');
    value.push_str(payload);
    value
}

/// The links and the payload of a value made by [`linked_value`]; no links and the whole
/// value when it has no newline.
pub fn split_linked_value(value: &str) -> (Vec<&str>, &str) {
    match value.split_once('\n') {
        Some((links, payload)) => (links.split_whitespace().collect(), payload),
        None => (Vec::new(), value),
    }
}

/// The default [`EphemeralStore::take_linked`]: reads the links one by one.
async fn read_links<S: EphemeralStore + ?Sized>(
    store: &S,
    value: &str,
) -> Result<Linked, StoreError> {
    let (links, payload) = split_linked_value(value);
    let mut linked = Vec::with_capacity(links.len());
    for link in links {
        linked.push(store.get(link).await?);
    }
    Ok((payload.to_owned(), linked))
}

/// A member to add to a set of the store, with the set's lifetime
/// ([`EphemeralStore::set_add`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetMember {
    /// The set's key.
    pub set: String,
    /// The member.
    pub member: String,
    /// The set lives at least this long from now.
    pub ttl: Duration,
}

/// Records and set members written together by [`EphemeralStore::write_while_live`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Writes {
    /// `(key, value, ttl)` records, each replacing what was there.
    pub puts: Vec<(String, String, Duration)>,
    /// Members added to sets, each set's lifetime extended as [`EphemeralStore::set_add`]
    /// does.
    pub members: Vec<SetMember>,
}

/// An entry of a map of the store: `value` under `field`, replacing what that field held,
/// the map living at least `ttl` from now and holding at most `max_fields` fields
/// ([`EphemeralStore::map_put`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapEntry {
    /// The map's key.
    pub map: String,
    /// The field: a second entry under the same field replaces the first.
    pub field: String,
    /// The value.
    pub value: String,
    /// The map lives at least this long from now.
    pub ttl: Duration,
    /// A new field beyond this many displaces one of the others (any): a map grows no
    /// further, whoever writes to it.
    pub max_fields: usize,
}

/// Short-lived shared state: tickets, SSO sessions, counters, locks. Every operation is
/// atomic, so several Sesame instances sharing one Redis behave as one. Keys are given
/// without the deployment's prefix; implementations add it.
///
/// Time-based decisions take `now` from the caller's clock; the store's own expiry (TTL) only
/// collects garbage and is always at least as long as the logical lifetime.
#[async_trait]
pub trait EphemeralStore: Send + Sync + std::fmt::Debug {
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<(), StoreError>;

    /// Stores `value` only if `key` is absent; `true` if it was stored.
    async fn put_new(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Replaces the value of `key` (and its lifetime) only if a live value is there; `true` if
    /// it was replaced. For a record read, changed and written back: a plain `put` would
    /// bring back a session that a logout or a block ended in between.
    async fn replace(&self, key: &str, value: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Stores `value` under `key` only if it is absent, as [`EphemeralStore::put_new`], and
    /// in the same step puts `also` in its map as [`EphemeralStore::map_put`] does: a CAS
    /// ticket together with its session's record of it for single logout, in one round trip.
    /// `true` if stored; the map is left alone otherwise. The default makes two calls (enough
    /// in one process); Redis does it in one script.
    async fn put_new_with_map_entry(
        &self,
        key: &str,
        value: &str,
        ttl: Duration,
        also: &MapEntry,
    ) -> Result<bool, StoreError> {
        if !self.put_new(key, value, ttl).await? {
            return Ok(false);
        }
        self.map_put(also).await?;
        Ok(true)
    }

    /// Makes `writes` only while `guard` holds a live record, all in one atomic step; `true`
    /// if they were made, `false` (nothing written) if `guard` is absent. What an SSO
    /// session issues (an authorization code's grant and tokens) is written this way, so that
    /// a logout either comes before and nothing is issued, or after and finds everything it
    /// must end. The default makes several calls (enough for a store in one process used by
    /// one caller at a time); the stores do it in one step.
    async fn write_while_live(&self, guard: &str, writes: &Writes) -> Result<bool, StoreError> {
        if self.get(guard).await?.is_none() {
            return Ok(false);
        }
        for (key, value, ttl) in &writes.puts {
            self.put(key, value, *ttl).await?;
        }
        for m in &writes.members {
            self.set_add(&m.set, &m.member, m.ttl).await?;
        }
        Ok(true)
    }

    /// Reads `key`.
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Reads and deletes `key` in one atomic step: of any number of concurrent callers,
    /// exactly one gets the value.
    async fn take(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// Deletes `key`; `true` if it existed.
    async fn delete(&self, key: &str) -> Result<bool, StoreError>;

    /// Reads and deletes `key` like [`EphemeralStore::take`] and, in the same atomic step
    /// (one round trip), reads the entries the taken value links to. The value must have been
    /// stored as [`linked_value`] made it. Returns the payload and the linked entries' values
    /// in the order of the links (`None` for an absent one); a value without links is all
    /// payload.
    ///
    /// For a ticket that is only good while its session lives: one round trip instead of a
    /// take followed by a read. The default makes several calls; the stores do it in one.
    async fn take_linked(&self, key: &str) -> Result<Option<Linked>, StoreError> {
        let Some(value) = self.take(key).await? else {
            return Ok(None);
        };
        read_links(self, &value).await.map(Some)
    }

    /// [`EphemeralStore::take_linked`] without the delete: reads `key` and the entries it
    /// links to in one atomic step.
    async fn get_linked(&self, key: &str) -> Result<Option<Linked>, StoreError> {
        let Some(value) = self.get(key).await? else {
            return Ok(None);
        };
        read_links(self, &value).await.map(Some)
    }

    /// Reads and deletes `key` like [`EphemeralStore::take`] and, only if it was there, stores
    /// each `(key, value, ttl)` of `puts` (replacing), all in one atomic step: of concurrent
    /// callers exactly one gets the value, and its writes exist as soon as it has it (a
    /// single-use token handing over to its successor).
    async fn take_and_put(
        &self,
        key: &str,
        puts: &[(&str, &str, Duration)],
    ) -> Result<Option<String>, StoreError> {
        let Some(value) = self.take(key).await? else {
            return Ok(None);
        };
        for (put_key, put_value, ttl) in puts {
            self.put(put_key, put_value, *ttl).await?;
        }
        Ok(Some(value))
    }

    /// Adds `member` to the set `key` and extends the set's lifetime to at least `ttl`.
    async fn set_add(&self, key: &str, member: &str, ttl: Duration) -> Result<(), StoreError>;

    /// Removes `member` from the set `key`.
    async fn set_remove(&self, key: &str, member: &str) -> Result<(), StoreError>;

    /// The members of set `key` (empty if absent).
    async fn set_members(&self, key: &str) -> Result<Vec<String>, StoreError>;

    /// Puts `entry.value` under `entry.field` of the map `entry.map` (replacing that field's
    /// value), extends the map's lifetime to at least `entry.ttl`, and, if the field is new
    /// and the map already holds `entry.max_fields` fields, first removes one of them.
    async fn map_put(&self, entry: &MapEntry) -> Result<(), StoreError>;

    /// Reads and deletes the map `key` in one atomic step; its values, in no set order
    /// (empty if absent).
    async fn map_take(&self, key: &str) -> Result<Vec<String>, StoreError>;

    /// Atomically: if `key` is locked until after `now`, report the lock and count nothing;
    /// if its lock has expired, forget the lock and the counter; then count one attempt in
    /// the window that started with the first counted attempt (a new window starts when
    /// `window` has passed since then), and report its rank.
    async fn reserve_attempt(
        &self,
        key: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> Result<AttemptReservation, StoreError>;

    /// Locks `key` until `until` (counted from the caller's `now`).
    async fn lock_attempts(
        &self,
        key: &str,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Forgets the counter and any lock of `key`.
    async fn clear_attempts(&self, key: &str) -> Result<(), StoreError>;

    /// Gives back one counted attempt (never below zero).
    async fn forgive_attempt(&self, key: &str) -> Result<(), StoreError>;

    /// Round trip, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The store's own clock, when the store is shared by several instances (Redis's `TIME`),
    /// so that they all decide expiries on one clock ([`crate::clock::DeploymentClock`]);
    /// `None` for a store inside this process.
    async fn server_time(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(None)
    }
}

/// One browser known for one account: it has logged in to that account with the password
/// (security spec decision 1, [`crate::devices`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownDevice {
    /// The account it logged in to.
    pub account_id: AccountId,
    /// Its first login to that account.
    pub first_seen: OffsetDateTime,
    /// Its last login to that account.
    pub last_seen: OffsetDateTime,
    /// Until when its own failures lock it out of that account, if they do.
    pub locked_until: Option<OffsetDateTime>,
}

/// Known devices (the SQL database: they must survive a restart of the ephemeral store, or
/// every browser would become unknown again and lockable by an attacker). A device is named
/// by the SHA-256 of its cookie's token; the token itself is never stored.
#[async_trait]
pub trait KnownDeviceRepo: Send + Sync + std::fmt::Debug {
    /// Every account the device with this token hash is known for, by the hash alone (so the
    /// lookup costs the same whatever login was typed).
    async fn devices_by_token(&self, token_hash: &str) -> Result<Vec<KnownDevice>, RepoError>;

    /// Records a login of the device to the account: a new row, or `last_seen` moved on.
    async fn remember_device(
        &self,
        token_hash: &str,
        account_id: AccountId,
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Records (`Some`) or lifts (`None`) the lock of one device for one account.
    async fn set_device_lock(
        &self,
        token_hash: &str,
        account_id: AccountId,
        until: Option<OffsetDateTime>,
    ) -> Result<(), RepoError>;

    /// Lifts the locks of every device of the account; returns the token hashes of all its
    /// devices (so their counters can be cleared too).
    async fn clear_device_locks(&self, account_id: AccountId) -> Result<Vec<String>, RepoError>;

    /// Forgets the devices whose last login to an account is older than `unseen_since` (their
    /// cookie has expired); returns how many rows went.
    async fn purge_devices(&self, unseen_since: OffsetDateTime) -> Result<usize, RepoError>;
}

/// What the login procedure asks of activation, which it does not know otherwise: the ENT 77
/// guide has people type the activation code their school gave them in the login page's
/// password field. Implemented in `sesame-lifecycle`.
#[async_trait]
pub trait PendingActivationCodes: Send + Sync + std::fmt::Debug {
    /// Whether `typed` is an unused, unexpired activation code of the not yet activated
    /// account `account`. With `None` (no such account, or one that is not waiting for its
    /// activation) the answer is `false` after the same work, so that the check costs what it
    /// costs for a provisioned account.
    async fn is_pending_code(
        &self,
        account: Option<AccountId>,
        typed: &crate::credentials::Password,
        now: OffsetDateTime,
    ) -> Result<bool, RepoError>;
}

/// A JWT signing key as stored (OpenID Connect ID tokens, access tokens, logout tokens).
///
/// A key is *published* (in the JWKS) from its creation until `publish_until`, and *signs*
/// from `active_from` until `retired_at`. A rotation inserts a key whose `active_from` lies a
/// little ahead, so that every instance publishes it before any instance signs with it.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    /// Key id (`kid`), unique.
    pub kid: String,
    /// JOSE algorithm: `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// The private key, PKCS#8 DER. Never printed.
    pub private_pkcs8_der: Vec<u8>,
    /// The public key as a JWK (JSON object text, with `kid`, `alg`, `use`).
    pub public_jwk: String,
    /// When it was generated.
    pub created_at: OffsetDateTime,
    /// From when it may sign.
    pub active_from: OffsetDateTime,
    /// Since when it no longer signs (a newer key of its algorithm took over).
    pub retired_at: Option<OffsetDateTime>,
    /// After this it is no longer published (every token it signed has expired).
    pub publish_until: Option<OffsetDateTime>,
}

impl std::fmt::Debug for SigningKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyRecord")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("created_at", &self.created_at)
            .field("active_from", &self.active_from)
            .field("retired_at", &self.retired_at)
            .field("publish_until", &self.publish_until)
            .finish_non_exhaustive()
    }
}

/// Durable storage of signing keys (the SQL database).
#[async_trait]
pub trait SigningKeyRepo: Send + Sync + std::fmt::Debug {
    /// Inserts a key.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] if the `kid` exists.
    async fn insert_signing_key(&self, key: SigningKeyRecord) -> Result<(), RepoError>;

    /// Every stored key, newest (`created_at`, then `kid`) first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, RepoError>;

    /// Marks every key of `alg` other than `except_kid` that is not yet retired as retired at
    /// `retired_at` and published until `publish_until`; returns how many.
    async fn retire_signing_keys(
        &self,
        alg: &str,
        except_kid: &str,
        retired_at: OffsetDateTime,
        publish_until: OffsetDateTime,
    ) -> Result<usize, RepoError>;

    /// Deletes keys whose `publish_until` is at or before `now`; returns how many.
    async fn purge_unpublished_signing_keys(&self, now: OffsetDateTime)
        -> Result<usize, RepoError>;
}

/// What a person allowed an OpenID Connect client to receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The person.
    pub account_id: AccountId,
    /// The client.
    pub client_id: String,
    /// The scopes granted (sorted, no duplicates).
    pub scopes: Vec<String>,
    /// When they were (last) granted.
    pub granted_at: OffsetDateTime,
}

/// Durable consent records (the SQL database).
#[async_trait]
pub trait ConsentRepo: Send + Sync + std::fmt::Debug {
    /// The consent of `account_id` for `client_id`, if any.
    async fn find_consent(
        &self,
        account_id: AccountId,
        client_id: &str,
    ) -> Result<Option<Consent>, RepoError>;

    /// Records a consent, replacing any earlier one for the same account and client.
    async fn save_consent(&self, consent: Consent) -> Result<(), RepoError>;

    /// Every consent of an account, by client id.
    async fn consents_of(&self, account_id: AccountId) -> Result<Vec<Consent>, RepoError>;

    /// Withdraws a consent; `true` if there was one.
    async fn revoke_consent(
        &self,
        account_id: AccountId,
        client_id: &str,
    ) -> Result<bool, RepoError>;
}

/// Account profiles (the HR link, identity-check data, recovery contacts, activation choices)
/// and what provisioning from HR files needs (the SQL database).
#[async_trait]
pub trait ProfileRepo: Send + Sync + std::fmt::Debug {
    /// Inserts an account with its profile, in one transaction.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] naming `login`, `email` or `hr_id` when one is taken.
    async fn create_with_profile(
        &self,
        account: NewAccount,
        profile: AccountProfile,
        now: OffsetDateTime,
    ) -> Result<AccountWithProfile, RepoError>;

    /// The account with this id and its profile.
    async fn find_with_profile(
        &self,
        id: AccountId,
    ) -> Result<Option<AccountWithProfile>, RepoError>;

    /// The account with this HR identifier and its profile.
    async fn find_by_hr_id(&self, hr_id: &HrId) -> Result<Option<AccountWithProfile>, RepoError>;

    /// Every account that has an HR identifier, with its profile, by HR identifier.
    async fn accounts_with_hr_id(&self) -> Result<Vec<AccountWithProfile>, RepoError>;

    /// The accounts in which every one of `words` (folded, see
    /// [`fold_for_search`](crate::ids::fold_for_search)) occurs in the login, the
    /// institutional e-mail, or the given and family names folded the same way (without case
    /// or accents, on every database), by login, at most `limit` (clamped to 0..=200).
    async fn search_accounts(
        &self,
        words: &[String],
        limit: i64,
    ) -> Result<Vec<Account>, RepoError>;

    /// Writes the fields `changes` sets (and `updated_at`), in one statement.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if there is no such account; [`RepoError::Conflict`] naming
    /// `hr_id` if another account has that identifier.
    async fn update_account(
        &self,
        id: AccountId,
        changes: &AccountChanges,
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// One page of the directory (the LDAP interface): the accounts that have an entry there
    /// (active or blocked; provisioned and disabled accounts have none), with their profiles,
    /// by login, those whose login sorts after `after` (exclusive), only of `affiliation` if
    /// given, at most `limit` (clamped to 0..=1000). Pages are read by login, so a page
    /// costs one index range scan however deep it is.
    async fn directory_page(
        &self,
        after: Option<&str>,
        affiliation: Option<Affiliation>,
        limit: i64,
    ) -> Result<Vec<AccountWithProfile>, RepoError>;

    /// The account whose login or institutional e-mail is `identifier` (folded), with its
    /// profile, if it has an entry in the directory (as [`ProfileRepo::directory_page`]), in
    /// one query (an LDAP search by `uid` or `mail`). A login equal to the identifier wins
    /// over another account's e-mail.
    async fn directory_entry(
        &self,
        identifier: &str,
    ) -> Result<Option<AccountWithProfile>, RepoError>;

    /// Inserts several accounts with their profiles in one transaction: all of them, or (on
    /// any error) none. An import's way of writing a year group: a few statements for
    /// hundreds of people instead of several per person.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] when a login, e-mail or `hr_id` is taken (by an account already
    /// there or by another of `people`): nothing is written, and the caller writes them one by
    /// one to find which.
    async fn create_many_with_profiles(
        &self,
        people: Vec<(NewAccount, AccountProfile)>,
        now: OffsetDateTime,
    ) -> Result<Vec<AccountId>, RepoError>;

    /// The accounts with these logins (folded), with their profiles, in any order (the
    /// logins no account has are left out): what an import reads back about its people.
    async fn find_many_by_login(
        &self,
        logins: &[String],
    ) -> Result<Vec<AccountWithProfile>, RepoError>;

    /// [`ProfileRepo::identifier_holder`] for many identifiers in one query: those held, each
    /// with its holder and as what (the ones absent are free).
    async fn identifier_holders(
        &self,
        identifiers: &[String],
    ) -> Result<Vec<(String, AccountId, IdentifierKind)>, RepoError>;

    /// The account that holds `identifier` (folded), and as what: logins and institutional
    /// e-mails share one namespace, since the login page takes either in one field. A string
    /// that is an account's login is reported as a login, even if (created before this rule)
    /// it is also another account's e-mail.
    async fn identifier_holder(
        &self,
        identifier: &str,
    ) -> Result<Option<(AccountId, IdentifierKind)>, RepoError>;
}

/// The durable queue of outgoing mail (the SQL database). Several workers (one per instance)
/// may share it: a claimed mail is leased to one worker until the lease ends, so no two
/// workers send it at the same time.
#[async_trait]
pub trait MailQueue: Send + Sync + std::fmt::Debug {
    /// Queues a mail, due at once; returns its id.
    async fn enqueue(
        &self,
        mail: crate::mail::OutgoingMail,
        now: OffsetDateTime,
    ) -> Result<crate::mail::MailId, RepoError>;

    /// Queues mails, due at once, in one write (all or none); returns their ids in order.
    async fn enqueue_many(
        &self,
        mails: Vec<crate::mail::OutgoingMail>,
        now: OffsetDateTime,
    ) -> Result<Vec<crate::mail::MailId>, RepoError>;

    /// Claims at most `limit` pending mails due at `now` whose lease (if any) has ended,
    /// oldest due first: each one's attempt count goes up by one and it is leased until
    /// `now + lease`. Concurrent callers never get the same mail.
    async fn claim_due(
        &self,
        now: OffsetDateTime,
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<crate::mail::QueuedMail>, RepoError>;

    /// Records that the transport accepted the mail, and erases its bodies (they may hold
    /// one-time links). Does nothing to a mail already sent.
    async fn mark_sent(
        &self,
        id: crate::mail::MailId,
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Records a failed attempt and makes the mail due again at `next_attempt_at`.
    async fn schedule_retry(
        &self,
        id: crate::mail::MailId,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), RepoError>;

    /// Gives the mail up after a failed attempt; it stays in the queue, marked failed.
    async fn mark_failed(
        &self,
        id: crate::mail::MailId,
        now: OffsetDateTime,
        error: &str,
    ) -> Result<(), RepoError>;

    /// Makes a failed mail pending again (due at `now`, attempts back to zero).
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if there is no failed mail with this id.
    async fn requeue(&self, id: crate::mail::MailId, now: OffsetDateTime) -> Result<(), RepoError>;

    /// One mail.
    async fn find_mail(
        &self,
        id: crate::mail::MailId,
    ) -> Result<Option<crate::mail::QueuedMail>, RepoError>;

    /// The most recent mails (by creation), newest first, optionally only those in `status`;
    /// `limit` is clamped to 0..=10 000.
    async fn list_mails(
        &self,
        status: Option<crate::mail::MailStatus>,
        limit: i64,
    ) -> Result<Vec<crate::mail::QueuedMail>, RepoError>;

    /// How many mails are pending, sent and failed.
    async fn mail_counts(&self) -> Result<crate::mail::MailCounts, RepoError>;

    /// When the oldest mail still waiting (neither sent nor given up) was queued.
    async fn oldest_pending(&self) -> Result<Option<OffsetDateTime>, RepoError>;
}

/// Sends mail for the flows: renders a [`crate::mail::MailMessage`] with the (themable)
/// templates of its kind and queues it. Returns once the mail is stored; delivery happens
/// later, so a flow's answer never waits for a mail server (security spec A48, F15).
#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    /// Renders and queues `message`.
    ///
    /// # Errors
    /// [`crate::error::MailError`] if a template fails or the queue cannot store it.
    async fn send(
        &self,
        message: crate::mail::MailMessage,
    ) -> Result<crate::mail::MailId, crate::error::MailError>;

    /// Renders and queues `messages` in one write (all or none): an import's activation
    /// links. Returns their ids in order.
    ///
    /// # Errors
    /// As [`Mailer::send`]; on error nothing is queued.
    async fn send_many(
        &self,
        messages: Vec<crate::mail::MailMessage>,
    ) -> Result<Vec<crate::mail::MailId>, crate::error::MailError>;
}

/// Durable storage of the admin API's keys (the SQL database). Never the keys themselves:
/// their SHA-256.
#[async_trait]
pub trait ApiKeyRepo: Send + Sync + std::fmt::Debug {
    /// Inserts a key.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] if the id exists.
    async fn insert_api_key(&self, key: crate::api_keys::ApiKeyRecord) -> Result<(), RepoError>;

    /// The key with this id.
    async fn find_api_key(
        &self,
        id: &str,
    ) -> Result<Option<crate::api_keys::ApiKeyRecord>, RepoError>;

    /// Every key, newest first.
    async fn api_keys(&self) -> Result<Vec<crate::api_keys::ApiKeyRecord>, RepoError>;

    /// Marks the key revoked at `now` (a revoked key stays revoked: its first revocation
    /// time is kept).
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if there is no such key.
    async fn revoke_api_key(&self, id: &str, now: OffsetDateTime) -> Result<(), RepoError>;

    /// Records that the key was used at `now`.
    async fn touch_api_key(&self, id: &str, now: OffsetDateTime) -> Result<(), RepoError>;
}

/// The helpdesk's records (the SQL database): blocks with their reason, forced password
/// changes, disable times, assistance requests, and the deletion of accounts past retention.
#[async_trait]
pub trait HelpdeskRepo: Send + Sync + std::fmt::Debug {
    /// Records why `account_id` is blocked, replacing any earlier record.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if there is no such account.
    async fn save_block(
        &self,
        account_id: AccountId,
        block: &crate::helpdesk::BlockRecord,
    ) -> Result<(), RepoError>;

    /// The current block record of `account_id`, if any.
    async fn find_block(
        &self,
        account_id: AccountId,
    ) -> Result<Option<crate::helpdesk::BlockRecord>, RepoError>;

    /// Forgets the block record of `account_id` (the audit trail keeps its history).
    async fn clear_block(&self, account_id: AccountId) -> Result<(), RepoError>;

    /// Makes the next login of `account_id` change its password first. Keeps the earlier
    /// requirement if there is one.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if there is no such account.
    async fn require_password_change(
        &self,
        account_id: AccountId,
        by: &str,
        now: OffsetDateTime,
    ) -> Result<(), RepoError>;

    /// Since when `account_id` must change its password, if it must.
    async fn password_change_required(
        &self,
        account_id: AccountId,
    ) -> Result<Option<OffsetDateTime>, RepoError>;

    /// Lifts the requirement; `true` if there was one.
    async fn clear_password_change(&self, account_id: AccountId) -> Result<bool, RepoError>;

    /// Stores a new assistance request.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] naming `reference` if the reference is taken.
    async fn insert_assistance_request(
        &self,
        request: &crate::helpdesk::AssistanceRequest,
    ) -> Result<(), RepoError>;

    /// One request, by reference.
    async fn find_assistance_request(
        &self,
        reference: &str,
    ) -> Result<Option<crate::helpdesk::AssistanceRequest>, RepoError>;

    /// The most recent requests first, those `filter` selects; `limit` is clamped to
    /// 0..=10 000.
    async fn list_assistance_requests(
        &self,
        filter: crate::helpdesk::RequestFilter,
        limit: i64,
    ) -> Result<Vec<crate::helpdesk::AssistanceRequest>, RepoError>;

    /// Closes an open request; `false` if it was already closed.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] if there is no such request.
    async fn close_assistance_request(
        &self,
        reference: &str,
        closure: &crate::helpdesk::AssistanceClosure,
    ) -> Result<bool, RepoError>;

    /// The accounts in the disabled state that were disabled at or before `cutoff`, oldest
    /// first, at most `limit`.
    async fn disabled_before(
        &self,
        cutoff: OffsetDateTime,
        limit: i64,
    ) -> Result<Vec<crate::helpdesk::DisabledAccount>, RepoError>;

    /// Deletes account `account_id` with everything that hangs on it (credentials, profile,
    /// consents, helpdesk records), in one transaction, if it is still disabled and was
    /// disabled at or before `cutoff`; `true` if it was deleted. Audit events are kept.
    async fn delete_disabled_account(
        &self,
        account_id: AccountId,
        cutoff: OffsetDateTime,
    ) -> Result<bool, RepoError>;
}
