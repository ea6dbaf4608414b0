//! Builds the domain services from the settings: shared by `sesame serve` and the operator
//! commands, so the CLI applies exactly the rules the web applies.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sesame_core::account_marks::AccountChangeMarks;
use sesame_core::accounts::{AccountService, AccountServiceParts};
use sesame_core::api_keys::ApiKeys;
use sesame_core::authn::Authenticator;
use sesame_core::clock::{Clock, DeploymentClock, SystemClock};
use sesame_core::credentials::hasher::PasswordHasher;
use sesame_core::credentials::pool::HashingPool;
use sesame_core::devices::KnownDevices;
use sesame_core::ports::{
    AccountRepo, AuditLog, ConsentRepo, EphemeralStore, HelpdeskRepo, MailQueue, Mailer,
    ProfileRepo, SigningKeyRepo,
};
use sesame_core::ports::{ApiKeyRepo, KnownDeviceRepo};
use sesame_core::session::SessionManager;
use sesame_core::sms::SmsSender;
use sesame_lifecycle::activation::ports::ActivationTokenRepo;
use sesame_lifecycle::activation::{Activation, ActivationParts};
use sesame_lifecycle::admin::{AccountAdmin, AccountAdminParts};
use sesame_lifecycle::blocking::AccountBlocking;
use sesame_lifecycle::helpdesk::assistance::{
    AssistanceDesk, AssistanceDeskParts, AssistanceLimits,
};
use sesame_lifecycle::helpdesk::retention::Retention;
use sesame_lifecycle::helpdesk::{Helpdesk, HelpdeskParts};
use sesame_lifecycle::recovery::reset::{PasswordRecovery, RecoveryParts};
use sesame_lifecycle::self_service::{SelfService, SelfServiceParts};
use sesame_mail::mailer::TemplatedMailer;
use sesame_mail::templates::{MailTemplates, SiteInfo};
use sesame_mail::transport::build_transport;
use sesame_mail::worker::MailWorker;
use sesame_mfa::factors::{SecondFactorRepo, SecondFactors};
use sesame_protocol::cas::tickets::CasTickets;
use sesame_protocol::oidc::clients::ClientRegistry;
use sesame_protocol::oidc::codes::AuthorizationCodes;
use sesame_protocol::oidc::discovery::DiscoveryDocument;
use sesame_protocol::oidc::grants::Grants;
use sesame_protocol::oidc::keys::SigningKeys;
use sesame_protocol::oidc::tokens::{TokenService, TokenServiceParts};
use sesame_protocol::saml::key_store::SamlKeys;
use sesame_protocol::saml::providers::SamlServiceProviders;
use sesame_protocol::services::ServiceRegistry;
use sesame_sms::sender::BackgroundSmsSender;
use sesame_store::{Database, MemoryStore, RedisStore};

use crate::config::Settings;

/// Why the services could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The listener could not be bound.
    #[error("server.listen: {0}")]
    Listen(String),
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Database(String),
    /// The store could not be reached.
    #[error("store: {0}")]
    Store(String),
    /// The argon2 parameters were refused.
    #[error("password_hashing: {0}")]
    Hashing(String),
    /// The second factors' sealing key is invalid.
    #[error("mfa: {0}")]
    Mfa(String),
    /// The CAS service registry is invalid.
    #[error("cas.services: {0}")]
    Registry(String),
    /// The theme could not be loaded.
    #[error("ui.theme_dir: {0}")]
    Theme(String),
    /// The OpenID Connect clients or signing keys could not be set up.
    #[error("oidc: {0}")]
    Oidc(String),
    /// The SAML service providers or signing keys could not be set up.
    #[error("saml: {0}")]
    Saml(String),
    /// Mail (templates, sender, transport) could not be set up.
    #[error("mail: {0}")]
    Mail(String),
    /// Recovery or the SMS gateway could not be set up.
    #[error("{0}")]
    Recovery(String),
}

/// Outgoing mail: what flows send with, the queue, and the worker that delivers.
#[derive(Debug, Clone)]
pub struct MailServices {
    /// Renders and queues mail (the port the flows use).
    pub mailer: Arc<dyn Mailer>,
    /// The durable queue (for the CLI and tests).
    pub queue: Arc<dyn MailQueue>,
    /// Delivers due mail; `sesame serve` runs it periodically, `sesame mail deliver` once.
    pub worker: MailWorker,
}

/// The OpenID Provider's parts.
#[derive(Debug, Clone)]
pub struct OidcServices {
    /// Registered clients.
    pub clients: Arc<ClientRegistry>,
    /// Authorization codes.
    pub codes: AuthorizationCodes,
    /// Access, ID and refresh tokens.
    pub tokens: TokenService,
    /// Consents.
    pub consents: Arc<dyn ConsentRepo>,
    /// The discovery document, serialised once (a clone shares the bytes).
    pub discovery_json: actix_web::web::Bytes,
}

/// The SAML identity provider's parts (when `saml.enabled`).
#[derive(Clone)]
pub struct SamlServices {
    /// The signing keys.
    pub keys: Arc<SamlKeys>,
    /// The service providers allowed.
    pub providers: Arc<SamlServiceProviders>,
    /// The identity provider's entity ID.
    pub entity_id: String,
    /// The institution's scope.
    pub scope: String,
    /// The salt of pairwise identifiers. Never printed.
    pub pairwise_salt: Arc<[u8]>,
    /// `eduPersonEntitlement` values by affiliation.
    pub entitlements: Arc<[(sesame_core::ids::Affiliation, Vec<String>)]>,
    /// `eduPersonAssurance` values.
    pub assurance: Arc<[String]>,
    /// `supannEtablissement`.
    pub establishment: Arc<str>,
    /// The ENT's identifier at the GAR (`idEnt`); empty: not connected.
    pub gar_ent_id: Arc<str>,
    /// Where `GARPersonIdentifiant` comes from.
    pub gar_person_identifier: sesame_protocol::saml::issuer::GarPersonIdentifier,
    /// The signed metadata last made, and when.
    metadata: Arc<std::sync::Mutex<Option<(time::OffsetDateTime, String)>>>,
}

impl SamlServices {
    /// The signed metadata made less than `fresh_for` before `now`, if any.
    pub fn cached_metadata(
        &self,
        now: time::OffsetDateTime,
        fresh_for: time::Duration,
    ) -> Option<String> {
        let cached = self
            .metadata
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cached
            .as_ref()
            .filter(|(made, _)| *made <= now && now - *made < fresh_for)
            .map(|(_, xml)| xml.clone())
    }

    /// Keeps `xml`, made at `now`, and gives it back.
    pub fn cache_metadata(&self, now: time::OffsetDateTime, xml: String) -> String {
        *self
            .metadata
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((now, xml.clone()));
        xml
    }
}

impl std::fmt::Debug for SamlServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SamlServices")
            .field("entity_id", &self.entity_id)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// Everything a request or a command needs.
#[derive(Debug, Clone)]
pub struct Services {
    /// Account database.
    pub accounts_repo: Arc<dyn AccountRepo>,
    /// Audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Account profiles and HR lookups.
    pub profiles: Arc<dyn ProfileRepo>,
    /// Ticket/session/counter store.
    pub store: Arc<dyn EphemeralStore>,
    /// The login procedure.
    pub authenticator: Authenticator,
    /// The browsers known for accounts (device cookies).
    pub devices: KnownDevices,
    /// People's second factors (TOTP, recovery codes).
    pub second_factors: SecondFactors,
    /// Passkeys and security keys (WebAuthn).
    pub passkeys: sesame_mfa::passkeys::Passkeys,
    /// Browsers remembered for the second factor.
    pub remembered_browsers: sesame_mfa::remembered::RememberedBrowsers,
    /// Who must, may or may not use a second factor.
    pub mfa_policy: sesame_mfa::policy::MfaPolicy,
    /// SSO sessions.
    pub sessions: SessionManager,
    /// When accounts last changed, for the sessions' copies of them (a shared store only).
    pub account_marks: AccountChangeMarks,
    /// Account administration.
    pub accounts: AccountService,
    /// Blocking.
    pub blocking: AccountBlocking,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// The clock aligned on the shared store's, kept aligned by the server (`None` with the
    /// in-process store or a test clock).
    pub deployment_clock: Option<Arc<DeploymentClock>>,
    /// The hashing pool.
    pub pool: HashingPool,
    /// CAS tickets.
    pub cas: CasTickets,
    /// Registered CAS services.
    pub registry: Arc<ServiceRegistry>,
    /// The OpenID Provider.
    pub oidc: OidcServices,
    /// The SAML identity provider, when on.
    pub saml: Option<SamlServices>,
    /// Outgoing mail.
    pub mail: MailServices,
    /// Account administration shared by the CLI and the admin API.
    pub admin: AccountAdmin,
    /// The admin API's keys.
    pub api_keys: ApiKeys,
    /// Account activation, forgotten login, charter acceptance.
    pub activation: Activation,
    /// Outgoing SMS.
    pub sms: Arc<dyn SmsSender>,
    /// Forgotten password.
    pub recovery: PasswordRecovery,
    /// The account page's operations.
    pub self_service: SelfService,
    /// The helpdesk: blocks with reasons, unblocks, forced password changes, assistance
    /// requests, retention.
    pub helpdesk: HelpdeskServices,
}

/// The helpdesk's parts.
#[derive(Debug, Clone)]
pub struct HelpdeskServices {
    /// Blocks, unblocks, forced password changes.
    pub desk: Helpdesk,
    /// The assistance form's requests.
    pub assistance: AssistanceDesk,
    /// Deletion of disabled accounts after the retention period.
    pub retention: Retention,
}

/// Options that only tests and tools set.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replace the system clock (tests move time with a `ManualClock`).
    pub clock: Option<Arc<dyn Clock>>,
}

impl Services {
    /// Connects storage (migrating if configured) and wires the services.
    ///
    /// # Errors
    /// [`StartupError`] naming what failed.
    pub async fn build(
        settings: &Settings,
        overrides: &Overrides,
        migrate: bool,
    ) -> Result<Self, StartupError> {
        let database = Database::connect(
            settings.database.url.expose(),
            settings.database.max_connections,
        )
        .await
        .map_err(|e| StartupError::Database(e.to_string()))?;
        if migrate {
            let applied = database
                .run_migrations()
                .await
                .map_err(|e| StartupError::Database(e.to_string()))?;
            if !applied.is_empty() {
                tracing::info!(migrations = ?applied, "database migrations applied");
            }
        }
        let store: Arc<dyn EphemeralStore> = if !settings.store.is_shared() {
            Arc::new(MemoryStore::new())
        } else {
            let target = settings
                .store
                .redis_target()
                .map_err(|e| StartupError::Store(e.to_string()))?;
            let redis = RedisStore::connect(
                target,
                &settings.store.key_prefix,
                Duration::from_millis(settings.store.timeout_ms),
            )
            .await
            .map_err(|e| StartupError::Store(e.to_string()))?
            .keep_records_across_restarts(settings.store.keep_records_across_restarts);
            match redis.eviction_policy().await {
                Ok(policy) if policy == "noeviction" => {}
                Ok(policy) => tracing::warn!(
                    redis.maxmemory_policy = %policy,
                    "Redis may evict keys (tickets, lock counters) under memory pressure; set maxmemory-policy noeviction"
                ),
                Err(e) => tracing::warn!(error = %e, "could not read Redis maxmemory-policy"),
            }
            Arc::new(redis)
        };
        // A shared store gives the instances one clock (security spec F12); tests bring their
        // own clock, and the in-process store has no other instance to agree with.
        let deployment_clock = match &overrides.clock {
            None if settings.store.is_shared() => {
                let deployment = Arc::new(DeploymentClock::new());
                align_clock(&deployment, store.as_ref()).await;
                Some(deployment)
            }
            _ => None,
        };
        let clock: Arc<dyn Clock> = match (&overrides.clock, &deployment_clock) {
            (Some(clock), _) => Arc::clone(clock),
            (None, Some(deployment)) => deployment.clone(),
            (None, None) => Arc::new(SystemClock),
        };
        let hasher = Arc::new(
            PasswordHasher::new(settings.password_hashing.argon2())
                .map_err(|e| StartupError::Hashing(e.to_string()))?,
        );
        let pool = HashingPool::sized_to_cores(settings.password_hashing.queue_per_worker);
        let account_marks = AccountChangeMarks::new(Arc::clone(&store), Arc::clone(&clock));
        // Only a shared store's marks are read (see `ACCOUNT_RECHECK`): with the in-process
        // store every use of a session reads the database.
        let database = if settings.store.is_shared() {
            database.observing_account_changes(Arc::new(account_marks.clone()))
        } else {
            database
        };
        let database = Arc::new(database);
        let accounts_repo: Arc<dyn AccountRepo> = database.clone();
        let audit: Arc<dyn AuditLog> = database.clone();
        let key_repo: Arc<dyn SigningKeyRepo> = database.clone();
        let profiles: Arc<dyn ProfileRepo> = database.clone();
        let mail_queue: Arc<dyn MailQueue> = database.clone();
        let api_key_repo: Arc<dyn ApiKeyRepo> = database.clone();
        let activation_tokens: Arc<dyn ActivationTokenRepo> = database.clone();
        let helpdesk_repo: Arc<dyn HelpdeskRepo> = database.clone();
        let device_repo: Arc<dyn KnownDeviceRepo> = database.clone();
        let factor_repo: Arc<dyn SecondFactorRepo> = database.clone();
        let remembered_browsers = sesame_mfa::remembered::RememberedBrowsers::new(
            database.clone(),
            Arc::clone(&clock),
            settings.mfa.remember_browser_days,
        );
        let consents: Arc<dyn ConsentRepo> = database;
        let issuer = if settings.mfa.issuer.trim().is_empty() {
            settings.ui.institution_name.clone()
        } else {
            settings.mfa.issuer.clone()
        };
        // Keys are bound to the public URL's host: an address (127.0.0.1) cannot carry them.
        let relying_party =
            match sesame_mfa::passkeys::RelyingParty::from_public_url(settings.public_base()) {
                Ok(rp) => Some(rp),
                Err(e) => {
                    tracing::info!(reason = %e, "passkeys are off");
                    None
                }
            };
        let passkeys = sesame_mfa::passkeys::Passkeys::new(
            Arc::clone(&factor_repo),
            Arc::clone(&store),
            Arc::clone(&clock),
            relying_party,
        );
        let second_factors = SecondFactors::new(
            factor_repo,
            Arc::clone(&store),
            settings
                .mfa
                .sealer()
                .map_err(|e| StartupError::Mfa(e.to_string()))?,
            Arc::clone(&clock),
            issuer,
        );
        let devices = KnownDevices::new(
            Arc::clone(&device_repo),
            Arc::clone(&clock),
            &settings.lockout,
        );
        let authenticator = Authenticator::new(
            Arc::clone(&accounts_repo),
            Arc::clone(&audit),
            Arc::clone(&store),
            Arc::clone(&hasher),
            pool.clone(),
            settings.lockout,
            Arc::clone(&clock),
        )
        .with_known_devices(devices.clone());
        let sessions =
            SessionManager::new(Arc::clone(&store), Arc::clone(&clock), settings.session);
        let accounts = AccountService::new(AccountServiceParts {
            accounts: Arc::clone(&accounts_repo),
            audit: Arc::clone(&audit),
            store: Arc::clone(&store),
            hasher: Arc::clone(&hasher),
            pool: pool.clone(),
            policies: settings.password_policy.clone(),
            lockout: settings.lockout,
            clock: Arc::clone(&clock),
            context_words: context_words(settings),
        })
        .with_known_devices(device_repo);
        let blocking = AccountBlocking::new(accounts.clone(), sessions.clone());
        let registry = Arc::new(
            ServiceRegistry::new(settings.cas.services.clone())
                .map_err(|e| StartupError::Registry(e.to_string()))?,
        );
        let cas = CasTickets::new(
            Arc::clone(&store),
            Arc::clone(&clock),
            settings.cas.ticket_policy(),
        );
        let saml = build_saml(settings, &clock, Arc::clone(&key_repo)).await?;
        let oidc = build_oidc(settings, &store, &clock, key_repo, consents).await?;
        let mail = build_mail(settings, mail_queue, &clock)?;
        let admin = AccountAdmin::new(AccountAdminParts {
            accounts: accounts.clone(),
            accounts_repo: Arc::clone(&accounts_repo),
            profiles: Arc::clone(&profiles),
            audit: Arc::clone(&audit),
            sessions: sessions.clone(),
            blocking: blocking.clone(),
            clock: Arc::clone(&clock),
        });
        let api_keys = ApiKeys::new(api_key_repo, Arc::clone(&audit), Arc::clone(&clock));
        let recovery_policy = settings
            .lifecycle
            .recovery
            .policy()
            .map_err(|e| StartupError::Recovery(e.to_string()))?;
        let sms: Arc<dyn SmsSender> = Arc::new(
            BackgroundSmsSender::new(
                settings
                    .sms
                    .gateway()
                    .map_err(|e| StartupError::Recovery(e.to_string()))?,
            )
            .retrying_for(
                settings
                    .sms
                    .retry_window()
                    .map_err(|e| StartupError::Recovery(e.to_string()))?,
            ),
        );
        let activation = Activation::new(ActivationParts {
            profiles: Arc::clone(&profiles),
            accounts_repo: Arc::clone(&accounts_repo),
            accounts: accounts.clone(),
            audit: Arc::clone(&audit),
            store: Arc::clone(&store),
            tokens: Arc::clone(&activation_tokens),
            mailer: Arc::clone(&mail.mailer),
            sms: Arc::clone(&sms),
            recovery: recovery_policy,
            institution: settings.ui.institution_name.clone(),
            clock: Arc::clone(&clock),
            policy: settings.lifecycle.activation.clone(),
            charter: settings.lifecycle.charter.clone(),
            national_id_key: settings
                .lifecycle
                .import_rules()
                .ok()
                .and_then(|rules| rules.national_id_key),
            public_url: settings.public_base().to_owned(),
            time_zone: settings.ui.time_zone.clone(),
            reset_by_identity: settings.lifecycle.recovery.identity_check.clone(),
        });
        // The login page recognises a school's activation code typed as the password.
        let authenticator = authenticator.recognising_activation_codes(activation.pending_codes());
        let recovery = PasswordRecovery::new(RecoveryParts {
            accounts_repo: Arc::clone(&accounts_repo),
            profiles: Arc::clone(&profiles),
            audit: Arc::clone(&audit),
            store: Arc::clone(&store),
            mailer: Arc::clone(&mail.mailer),
            sms: Arc::clone(&sms),
            accounts: accounts.clone(),
            sessions: sessions.clone(),
            clock: Arc::clone(&clock),
            policy: recovery_policy,
            tokens: activation_tokens,
            helpdesk: Arc::clone(&helpdesk_repo),
        });
        let self_service = SelfService::new(SelfServiceParts {
            profiles: Arc::clone(&profiles),
            audit: Arc::clone(&audit),
            store: Arc::clone(&store),
            mailer: Arc::clone(&mail.mailer),
            sms: Arc::clone(&sms),
            accounts: accounts.clone(),
            authenticator: authenticator.clone(),
            sessions: sessions.clone(),
            clock: Arc::clone(&clock),
            policy: recovery_policy,
        });
        let helpdesk = build_helpdesk(
            settings,
            HelpdeskParts {
                accounts: accounts.clone(),
                accounts_repo: Arc::clone(&accounts_repo),
                profiles: Arc::clone(&profiles),
                blocking: blocking.clone(),
                repo: helpdesk_repo,
                audit: Arc::clone(&audit),
                mailer: Arc::clone(&mail.mailer),
                store: Arc::clone(&store),
                national_id_key: settings
                    .lifecycle
                    .import_rules()
                    .ok()
                    .and_then(|rules| rules.national_id_key),
                clock: Arc::clone(&clock),
            },
            &store,
        )?;
        Ok(Self {
            accounts_repo,
            audit,
            profiles,
            store,
            authenticator,
            devices,
            second_factors,
            passkeys,
            remembered_browsers,
            mfa_policy: settings.mfa.policy(),
            sessions,
            account_marks,
            accounts,
            blocking,
            clock,
            deployment_clock,
            pool,
            cas,
            registry,
            oidc,
            saml,
            mail,
            admin,
            api_keys,
            activation,
            sms,
            recovery,
            self_service,
            helpdesk,
        })
    }
}

/// The helpdesk, the assistance desk and retention over the same parts.
fn build_helpdesk(
    settings: &Settings,
    parts: HelpdeskParts,
    store: &Arc<dyn EphemeralStore>,
) -> Result<HelpdeskServices, StartupError> {
    let h = &settings.helpdesk;
    let assistance = AssistanceDesk::new(AssistanceDeskParts {
        repo: Arc::clone(&parts.repo),
        accounts: Arc::clone(&parts.accounts_repo),
        audit: Arc::clone(&parts.audit),
        store: Arc::clone(store),
        mailer: Arc::clone(&parts.mailer),
        clock: Arc::clone(&parts.clock),
        helpdesk_address: h.address().map_err(|e| StartupError::Mail(e.to_string()))?,
        helpdesk_lang: h.mail_lang(),
        limits: AssistanceLimits {
            per_ip_per_hour: h.form_per_ip_per_hour,
            acks_per_address_per_day: h.acks_per_address_per_day,
        },
    });
    let retention = Retention::new(
        Arc::clone(&parts.repo),
        Arc::clone(&parts.audit),
        Arc::clone(&parts.clock),
        Duration::from_secs(u64::from(settings.lifecycle.retention_days) * 86_400),
    );
    Ok(HelpdeskServices {
        desk: Helpdesk::new(parts),
        assistance,
        retention,
    })
}

async fn build_saml(
    settings: &Settings,
    clock: &Arc<dyn Clock>,
    key_repo: Arc<dyn SigningKeyRepo>,
) -> Result<Option<SamlServices>, StartupError> {
    if !settings.saml.enabled {
        return Ok(None);
    }
    let providers = settings
        .saml
        .service_providers()
        .map_err(|e| StartupError::Saml(e.to_string()))?;
    let host = url::Url::parse(settings.public_base())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "sesame".to_owned());
    let keys = SamlKeys::load_or_create(key_repo, Arc::clone(clock), &host)
        .await
        .map_err(|e| StartupError::Saml(format!("signing keys: {e}")))?;
    Ok(Some(SamlServices {
        keys: Arc::new(keys),
        providers: Arc::new(providers),
        entity_id: settings.saml_entity_id(),
        scope: settings.saml_scope(),
        pairwise_salt: Arc::from(settings.saml.pairwise_salt.expose().as_bytes()),
        entitlements: settings
            .saml
            .entitlements
            .iter()
            .map(|(affiliation, values)| (*affiliation, values.clone()))
            .collect(),
        assurance: settings.saml.assurance.iter().cloned().collect(),
        establishment: Arc::from(settings.saml.supann_etablissement.as_str()),
        gar_ent_id: Arc::from(settings.saml.gar.ent_id.trim()),
        gar_person_identifier: settings.saml.gar.person_identifier,
        metadata: Arc::default(),
    }))
}

async fn build_oidc(
    settings: &Settings,
    store: &Arc<dyn EphemeralStore>,
    clock: &Arc<dyn Clock>,
    key_repo: Arc<dyn SigningKeyRepo>,
    consents: Arc<dyn ConsentRepo>,
) -> Result<OidcServices, StartupError> {
    let o = &settings.oidc;
    let clients = Arc::new(
        ClientRegistry::new(o.clients.clone()).map_err(|e| StartupError::Oidc(e.to_string()))?,
    );
    let keys = Arc::new(
        SigningKeys::load_or_create(key_repo, Arc::clone(clock), &o.signing_algorithms)
            .await
            .map_err(|e| StartupError::Oidc(format!("signing keys: {e}")))?,
    );
    let issuer = settings.public_base().to_owned();
    let discovery = DiscoveryDocument::new(&issuer)
        .map_err(|e| StartupError::Oidc(e.to_string()))?
        .with_signing_algorithms(&o.signing_algorithms);
    let discovery_json = actix_web::web::Bytes::from(
        serde_json::to_vec(&discovery).map_err(|e| StartupError::Oidc(e.to_string()))?,
    );
    let grants = Grants::new(Arc::clone(store), Arc::clone(clock), o.token_policy());
    let tokens = TokenService::new(TokenServiceParts {
        store: Arc::clone(store),
        clock: Arc::clone(clock),
        keys,
        grants,
        issuer,
        access_token_ttl: Duration::from_secs(o.access_token_ttl_secs),
        id_token_ttl: Duration::from_secs(o.id_token_ttl_secs),
    });
    Ok(OidcServices {
        clients,
        codes: AuthorizationCodes::new(Arc::clone(store), Arc::clone(clock)),
        tokens,
        consents,
        discovery_json,
    })
}

fn context_words(settings: &Settings) -> Vec<String> {
    let mut words = settings.ui.context_words.clone();
    words.push(settings.ui.institution_name.clone());
    words.push("sesame".to_owned());
    words
}

/// The theme directory, if one is configured.
pub fn theme_dir(settings: &Settings) -> Option<&Path> {
    (!settings.ui.theme_dir.is_empty()).then(|| Path::new(settings.ui.theme_dir.as_str()))
}

/// Mail templates (themable), the transport of `[mail]`, the worker, and the mailer that
/// queues and wakes it.
fn build_mail(
    settings: &Settings,
    queue: Arc<dyn MailQueue>,
    clock: &Arc<dyn Clock>,
) -> Result<MailServices, StartupError> {
    let m = &settings.mail;
    let templates = MailTemplates::load(
        theme_dir(settings),
        SiteInfo {
            institution: settings.ui.institution_name.clone(),
            public_url: settings.public_base().to_owned(),
            helpdesk_url: settings.ui.helpdesk_url.clone(),
            time_zone: settings.ui.time_zone.clone(),
        },
    )
    .map_err(|e| StartupError::Mail(e.to_string()))?;
    let sender = m.sender().map_err(|e| StartupError::Mail(e.to_string()))?;
    let transport_config = m
        .transport_config()
        .map_err(|e| StartupError::Mail(e.to_string()))?;
    let transport = build_transport(&transport_config, &sender)
        .map_err(|e| StartupError::Mail(e.to_string()))?;
    let worker = MailWorker::new(
        Arc::clone(&queue),
        transport,
        Arc::clone(clock),
        m.worker_settings(),
    );
    let mailer = TemplatedMailer::new(templates, Arc::clone(&queue), Arc::clone(clock))
        .waking(worker.waker());
    Ok(MailServices {
        mailer: Arc::new(mailer),
        queue,
        worker,
    })
}

/// Past this offset between this machine's clock and the shared store's, a warning says so
/// (Sesame uses the store's time anyway; a large offset means NTP is not doing its job).
const CLOCK_OFFSET_WARNING: time::Duration = time::Duration::seconds(1);

/// Measures `clock`'s offset to the shared store's clock once; logs it, and warns when it is
/// large or cannot be measured (the last offset is kept).
pub async fn align_clock(clock: &DeploymentClock, store: &dyn EphemeralStore) {
    match clock.align_with(store).await {
        Ok(Some(offset)) if offset.abs() > CLOCK_OFFSET_WARNING => tracing::warn!(
            clock.offset_ms = offset.whole_milliseconds(),
            "this machine's clock is off the shared store's (Redis TIME); Sesame uses the store's time, but NTP should fix the machine"
        ),
        Ok(Some(offset)) => tracing::debug!(
            clock.offset_ms = offset.whole_milliseconds(),
            "clock aligned on the shared store's"
        ),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the shared store's clock; the last offset is kept"),
    }
}
