//! The `sesame` command line: `serve`, `migrate`, `config check`, `account …`. Account
//! commands go through the same services as the web, so the same rules apply.

pub mod activation;
pub mod api_key;
pub mod helpdesk;
pub mod mail;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use sesame_core::credentials::Password;
use sesame_core::error::AccountError;
use sesame_core::i18n::Lang;
use sesame_core::ids::{Affiliation, Email, LoginName};
use sesame_lifecycle::admin::{person_name, AccountRequest};
use sesame_lifecycle::import::read::Format;
use sesame_lifecycle::import::{ImportOptions, ImportRules, Mode};

use crate::config::{self, Settings};
use crate::services::{Overrides, Services};
use crate::Application;

/// Sesame: single sign-on (CAS, OpenID Connect) and account lifecycle.
#[derive(Debug, Parser)]
#[command(name = "sesame", version, about)]
pub struct Cli {
    /// Configuration file (default: ./sesame.toml if present).
    #[arg(long, short, global = true, env = "SESAME_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Apply pending database migrations.
    Migrate,
    /// Configuration tools.
    Config {
        /// What to do with the configuration.
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Manage accounts.
    Account {
        /// What to do with the account.
        #[command(subcommand)]
        action: AccountAction,
    },
    /// OpenID Connect signing keys.
    Keys {
        /// What to do with the keys.
        #[command(subcommand)]
        action: KeysAction,
    },
    /// OpenID Connect client tools.
    Client {
        /// What to do.
        #[command(subcommand)]
        action: ClientAction,
    },
    /// LDAP interface tools.
    Ldap {
        /// What to do.
        #[command(subcommand)]
        action: LdapAction,
    },
    /// Import people from an HR or student system (CSV or JSON, see docs/lifecycle.md): new
    /// people get a provisioned account with a generated login, changed ones are updated.
    /// Exits with status 1 if any line was rejected (the others are imported).
    Import {
        /// The file; `-` reads standard input.
        file: PathBuf,
        /// The file's format (default: json for a .json file, else csv).
        #[arg(long, value_enum)]
        format: Option<ImportFormat>,
        /// Also disable the people of the file's affiliations who are absent from it.
        #[arg(long)]
        full: bool,
        /// Import nothing if any line is rejected.
        #[arg(long)]
        strict: bool,
        /// Show what would be done and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Print the admin HTTP API's OpenAPI document (what `/admin/api/v1/openapi.json` serves).
    Openapi,
    /// Keys of the admin HTTP API (see docs/admin-api.md).
    ApiKey {
        /// What to do with the keys.
        #[command(subcommand)]
        action: api_key::ApiKeyAction,
    },
    /// Make one-time activation codes for a class or a list of logins, to hand out (see
    /// docs/lifecycle.md); prints them (`--format csv` for a mail merge).
    ActivationCodes(activation::ActivationCodesArgs),
    /// The outgoing mail queue (see docs/mail.md).
    Mail {
        /// What to do with the queue.
        #[command(subcommand)]
        action: mail::MailAction,
    },
    /// Assistance requests sent from the public form (see docs/lifecycle.md).
    Helpdesk {
        /// What to do with the requests.
        #[command(subcommand)]
        action: helpdesk::HelpdeskAction,
    },
    /// Deletion of disabled accounts after `lifecycle.retention_days`.
    Retention {
        /// What to do.
        #[command(subcommand)]
        action: helpdesk::RetentionAction,
    },
}

/// `sesame import --format …`
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ImportFormat {
    /// A header line, then one person per line (`,` or `;` separated).
    Csv,
    /// An array of objects.
    Json,
}

/// `sesame keys …`
#[derive(Debug, Subcommand)]
pub enum KeysAction {
    /// List the signing keys: which one signs, which are only published.
    List,
    /// Make a new key current. It is published at once and signs after
    /// `oidc.key_activation_delay_secs` (SAML: `saml.key_activation_days`); the old key stays
    /// published until every token it signed has expired (SAML: one day more).
    Rotate {
        /// RS256, ES256 or EdDSA; `SAML` for the SAML identity provider's key.
        #[arg(long, default_value = "RS256")]
        alg: String,
    },
}

/// `sesame client …`
#[derive(Debug, Subcommand)]
pub enum ClientAction {
    /// Generate a client secret: prints the secret (give it to the application) and the
    /// `client_secret_sha256` to put in `[[oidc.clients]]`. Sesame never stores the secret.
    Secret,
}

/// `sesame ldap …`
#[derive(Debug, Subcommand)]
pub enum LdapAction {
    /// Generate a service account secret: prints the secret (give it to the service, e.g.
    /// Dovecot's `dnpass`) and the `secret_sha256` to put in `[[ldap.service_accounts]]`.
    /// Sesame never stores the secret.
    Secret,
}

/// `sesame config …`
#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration and print the effective values, secrets masked.
    Check,
}

/// `sesame account …`
#[derive(Debug, Subcommand)]
pub enum AccountAction {
    /// Create an account (provisioned: it can log in once a password is set).
    Add {
        /// Login, e.g. jean.dupont.
        login: String,
        /// Institutional e-mail.
        #[arg(long)]
        email: Option<String>,
        /// Given name.
        #[arg(long)]
        given_name: String,
        /// Family name.
        #[arg(long)]
        family_name: String,
        /// staff, faculty, student, pupil, parent or affiliate.
        #[arg(long, default_value = "staff")]
        affiliation: String,
        /// Personal e-mail for recovery (entered by an operator: taken as verified).
        #[arg(long)]
        recovery_email: Option<String>,
        /// Mobile phone for recovery (entered by an operator: taken as verified).
        #[arg(long)]
        mobile: Option<String>,
    },
    /// Set the password (read from standard input when it is not a terminal) under the
    /// account's password policy; activates a provisioned account, and replaces the password
    /// an unblock voided.
    SetPassword {
        /// Login.
        login: String,
    },
    /// Show an account, its lock and its recent audit events.
    Show {
        /// Login.
        login: String,
    },
    /// Lock a login temporarily.
    Lock {
        /// Login.
        login: String,
        /// Minutes (default: the lockout duration).
        #[arg(long)]
        minutes: Option<u64>,
    },
    /// Lift a temporary lock and reset the failure counter.
    Unlock {
        /// Login.
        login: String,
    },
    /// Block an account (helpdesk): no login, ticket or code from now on; its sessions end
    /// and its applications get single logout.
    Block {
        /// Login.
        login: String,
        /// phishing, suspicious or other.
        #[arg(long)]
        reason: String,
        /// Why, in a few words (kept with the block, never shown to the person).
        #[arg(long)]
        note: Option<String>,
    },
    /// Unblock a blocked account. Its former password then opens nothing: the person sets a
    /// new one with a reset link, an SMS code, or a helpdesk code (`--code`, or `reset-code`).
    Unblock {
        /// Login.
        login: String,
        /// Also print a one-time reset code to give the person once their identity is
        /// checked (shown once).
        #[arg(long)]
        code: bool,
    },
    /// Print a one-time password-reset code for an active account, to give the person once
    /// their identity is checked; they type it with their login on /password/helpdesk-code.
    /// It replaces the account's previous code and is shown only once.
    ResetCode {
        /// Login.
        login: String,
    },
    /// Disable an account (the person left) and end its sessions.
    Disable {
        /// Login.
        login: String,
    },
    /// End every SSO session of an account ("log out everywhere"); it stays usable.
    EndSessions {
        /// Login.
        login: String,
    },
    /// List an account's second factors (authenticator applications) and recovery codes left.
    MfaList {
        /// Login.
        login: String,
    },
    /// Remove every second factor and recovery code of an account (a lost phone, once the
    /// person's identity is checked): the next login asks for the password only.
    MfaReset {
        /// Login.
        login: String,
    },
    /// Mail a new activation link to a provisioned account's recovery address. (There is no
    /// `reset-link`: a reset link's token lives in the session store, which a command does
    /// not share with the server in the embedded mode; use the console or the admin API.)
    ActivationLink {
        /// Login.
        login: String,
    },
}

/// Runs a parsed command line.
///
/// # Errors
/// Anything that makes the command fail; the message is for the operator.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    // The document depends on the code only: no configuration needed to print it.
    if matches!(cli.command, Command::Openapi) {
        print!("{}", crate::routes::admin::openapi::document_json()?);
        return Ok(());
    }
    let file = config::locate(cli.config.as_deref());
    let settings = Settings::load(file.as_deref())?;
    match cli.command {
        Command::Serve => serve(settings).await,
        Command::Migrate => {
            let _log = crate::telemetry::init(&settings.log);
            let db = sesame_store::Database::connect(settings.database.url.expose(), 1)
                .await
                .context("database.url")?;
            let applied = db.run_migrations().await.context("applying migrations");
            db.quiesce().await;
            let applied = applied?;
            if applied.is_empty() {
                println!("database is up to date");
            }
            for name in applied {
                println!("applied {name}");
            }
            Ok(())
        }
        Command::Config {
            action: ConfigAction::Check,
        } => {
            match &file {
                Some(f) => println!("# configuration file: {}", f.display()),
                None => println!("# no configuration file: built-in defaults and environment"),
            }
            println!("# configuration is valid\n");
            print!("{}", settings.to_masked_toml()?);
            Ok(())
        }
        Command::Account { action } => {
            let services = Services::build(&settings, &Overrides::default(), true).await?;
            let outcome = account(&services, settings.public_base(), action).await;
            services.accounts_repo.quiesce().await;
            outcome
        }
        Command::Keys { action } => {
            let services = Services::build(&settings, &Overrides::default(), true).await?;
            let outcome = keys(&settings, &services, action).await;
            services.accounts_repo.quiesce().await;
            outcome
        }
        Command::Import {
            file,
            format,
            full,
            strict,
            dry_run,
        } => {
            let _log = crate::telemetry::init(&settings.log);
            let format = match format {
                Some(ImportFormat::Json) => Format::Json,
                Some(ImportFormat::Csv) => Format::Csv,
                None if file
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("json")) =>
                {
                    Format::Json
                }
                None => Format::Csv,
            };
            let input = if file.as_os_str() == "-" {
                let mut input = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut input)
                    .context("reading standard input")?;
                input
            } else {
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let rules = settings.lifecycle.import_rules()?;
            let services = Services::build(&settings, &Overrides::default(), true).await?;
            let options = ImportOptions {
                format,
                full,
                strict,
                dry_run,
            };
            // The whole pool: nothing else runs in this process.
            let parallelism = settings.database.max_connections as usize;
            let outcome = import(&services, rules, &input, options, parallelism).await;
            services.accounts_repo.quiesce().await;
            outcome
        }
        Command::Ldap {
            action: LdapAction::Secret,
        } => {
            // The same 256-bit secrets as OpenID Connect clients, checked the same way.
            let (secret, digest) = sesame_protocol::oidc::clients::generate_client_secret();
            println!("secret = {secret}");
            println!("secret_sha256 = \"{digest}\"");
            Ok(())
        }
        Command::Client {
            action: ClientAction::Secret,
        } => {
            let (secret, digest) = sesame_protocol::oidc::clients::generate_client_secret();
            println!("client_secret = {secret}");
            println!("client_secret_sha256 = \"{digest}\"");
            Ok(())
        }
        // Printed above, before any configuration is read.
        Command::Openapi => Ok(()),
        Command::ApiKey { action } => {
            let services = Services::build(&settings, &Overrides::default(), true).await?;
            let outcome = api_key::run(&services, action).await;
            services.accounts_repo.quiesce().await;
            outcome
        }
        Command::ActivationCodes(args) => {
            let _log = crate::telemetry::init(&settings.log);
            let services = Services::build(&settings, &Overrides::default(), true).await?;
            let outcome = activation::run(&settings, &services, &args).await;
            services.accounts_repo.quiesce().await;
            outcome
        }
        Command::Mail { action } => {
            let services = Services::build(&settings, &Overrides::default(), true).await?;
            let outcome = mail::run(&settings, &services, action).await;
            services.accounts_repo.quiesce().await;
            outcome
        }
        Command::Helpdesk { action } => {
            let services = Services::build(&settings, &Overrides::default(), true).await?;
            let outcome = helpdesk::run(&services, action).await;
            services.accounts_repo.quiesce().await;
            outcome
        }
        Command::Retention { action } => {
            let _log = crate::telemetry::init(&settings.log);
            let services = Services::build(&settings, &Overrides::default(), true).await?;
            let outcome = helpdesk::retention(&services, action).await;
            services.accounts_repo.quiesce().await;
            outcome
        }
    }
}

async fn keys(settings: &Settings, services: &Services, action: KeysAction) -> anyhow::Result<()> {
    let keys = services.oidc.tokens.keys();
    match action {
        KeysAction::List => {
            let set = keys.key_set();
            for key in set.published() {
                let signing = set.current(key.alg()).is_some_and(|c| c.kid() == key.kid());
                let status = if signing {
                    "signing".to_owned()
                } else if key.active_from() > set.now() {
                    format!("published, signs from {}", rfc3339(key.active_from()))
                } else {
                    match key.publish_until() {
                        Some(until) => format!("retired, published until {}", rfc3339(until)),
                        None => "published".to_owned(),
                    }
                };
                println!("{} {:<6} {status}", key.kid(), key.alg().as_str());
            }
            if let Some(saml) = &services.saml {
                let set = saml.keys.key_set();
                let now = saml.keys.now();
                let current = set.current(now).map(|k| k.kid.clone());
                for key in set.published(now) {
                    let status = if Some(&key.kid) == current.as_ref() {
                        "signing".to_owned()
                    } else if key.active_from > now {
                        format!("published, signs from {}", rfc3339(key.active_from))
                    } else {
                        match key.publish_until {
                            Some(until) => format!("retired, published until {}", rfc3339(until)),
                            None => "published".to_owned(),
                        }
                    };
                    println!("{} {:<6} {status}", key.kid, "SAML");
                }
            }
            Ok(())
        }
        KeysAction::Rotate { alg } if alg.eq_ignore_ascii_case("saml") => {
            let Some(saml) = &services.saml else {
                bail!("SAML is off (saml.enabled = false): it has no key to rotate");
            };
            let day = 24 * 3600;
            let delay =
                std::time::Duration::from_secs(u64::from(settings.saml.key_activation_days) * day);
            let kid = saml
                .keys
                .rotate(delay, std::time::Duration::from_secs(day))
                .await
                .context("rotating the SAML key")?;
            let event = sesame_core::audit::AuditEvent::new(
                sesame_core::audit::AuditKind::SigningKeyRotated,
                services.clock.now(),
                "cli",
            )
            .detail(serde_json::json!({ "kid": kid, "alg": "SAML" }));
            services.audit.record(event).await?;
            println!(
                "new SAML key {kid}: in the metadata now, signs in {} days",
                settings.saml.key_activation_days
            );
            Ok(())
        }
        KeysAction::Rotate { alg } => {
            let alg: sesame_protocol::oidc::clients::SigningAlg =
                serde_json::from_value(serde_json::Value::from(alg.as_str()))
                    .map_err(|_| anyhow::anyhow!("--alg must be RS256, ES256 or EdDSA"))?;
            if !settings.oidc.signing_algorithms.contains(&alg) {
                bail!("{} is not in oidc.signing_algorithms", alg.as_str());
            }
            let delay = std::time::Duration::from_secs(settings.oidc.key_activation_delay_secs);
            let kid = keys
                .rotate(alg, delay, settings.oidc.retired_key_publication())
                .await
                .context("rotating the key")?;
            let event = sesame_core::audit::AuditEvent::new(
                sesame_core::audit::AuditKind::SigningKeyRotated,
                services.clock.now(),
                "cli",
            )
            .detail(serde_json::json!({ "kid": kid, "alg": alg.as_str() }));
            services.audit.record(event).await?;
            println!(
                "new {} key {kid}: published now, signs in {} s",
                alg.as_str(),
                delay.as_secs()
            );
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let _log = crate::telemetry::init(&settings.log);
    let public_url = settings.server.public_url.clone();
    let listen = settings.server.listen.clone();
    let store_kind = if settings.store.is_shared() {
        "redis"
    } else {
        "in-process"
    };
    let db_kind = if settings.database.url.expose().starts_with("sqlite://") {
        "sqlite"
    } else {
        "postgresql"
    };
    let app = Application::build(settings, Overrides::default()).await?;
    tracing::info!(%listen, %public_url, database = db_kind, store = store_kind, "sesame listening");
    let repo = std::sync::Arc::clone(&app.services().accounts_repo);
    app.run_until_stopped().await?;
    repo.quiesce().await;
    tracing::info!("sesame stopped");
    Ok(())
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

fn cli_lang() -> Lang {
    std::env::var("LANG")
        .ok()
        .and_then(|l| Lang::from_tag(&l))
        .unwrap_or_default()
}

fn describe(e: AccountError) -> anyhow::Error {
    match e {
        AccountError::Policy(violations) => {
            let lang = cli_lang();
            let lines: Vec<String> = violations
                .iter()
                .map(|v| format!("  - {}", v.message(lang)))
                .collect();
            anyhow::anyhow!("the password was refused:\n{}", lines.join("\n"))
        }
        AccountError::Conflict(what) if what == "login" || what == "email" => anyhow::anyhow!(
            "the {what} is already the login or e-mail of another account (logins and e-mails \
             are typed in the same field of the login page): choose another"
        ),
        other => anyhow::Error::new(other),
    }
}

fn read_password() -> anyhow::Result<String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Repeat it: ")?;
        if first != second {
            bail!("the two passwords differ");
        }
        Ok(first)
    } else {
        let mut input = String::new();
        std::io::stdin()
            .take(64 * 1024)
            .read_to_string(&mut input)
            .context("reading the password from standard input")?;
        // Only the line ending is stripped: spaces are part of a passphrase.
        let line = input.lines().next().unwrap_or_default();
        Ok(line.to_owned())
    }
}

async fn account(
    services: &Services,
    public_base: &str,
    action: AccountAction,
) -> anyhow::Result<()> {
    let parse_login = |raw: &str| LoginName::parse(raw).with_context(|| format!("login {raw:?}"));
    match action {
        AccountAction::Add {
            login,
            email,
            given_name,
            family_name,
            affiliation,
            recovery_email,
            mobile,
        } => {
            // Checked before anything is created, so a typo creates nothing.
            let recovery_email = recovery_email
                .as_deref()
                .map(Email::parse)
                .transpose()
                .context("--recovery-email")?;
            let mobile = mobile
                .as_deref()
                .map(sesame_core::ids::MobilePhone::parse)
                .transpose()
                .context("--mobile")?;
            let request = AccountRequest {
                login: parse_login(&login)?,
                email: email
                    .as_deref()
                    .map(Email::parse)
                    .transpose()
                    .context("--email")?,
                given_name: person_name(&given_name).context("--given-name")?,
                family_name: person_name(&family_name).context("--family-name")?,
                affiliation: affiliation
                    .parse::<Affiliation>()
                    .context("--affiliation")?,
                recovery_email,
                mobile,
                // Entered by an operator who checked them with the person.
                contacts_verified: true,
            };
            let account = services
                .admin
                .create(request, "cli")
                .await
                .map_err(describe)?
                .account;
            println!(
                "created {} ({}), state {}",
                account.login, account.id, account.state
            );
            println!("next: sesame account set-password {}", account.login);
        }
        AccountAction::SetPassword { login } => {
            let login = parse_login(&login)?;
            let password = Password::new(&read_password()?);
            let account = services
                .accounts
                .set_password(&login, password, "cli")
                .await
                .map_err(describe)?;
            // An operator chose this password: the one an unblock voided is gone.
            services
                .helpdesk
                .desk
                .repo()
                .clear_password_change(account.id)
                .await?;
            println!(
                "password set for {}, state {}",
                account.login, account.state
            );
        }
        AccountAction::Show { login } => {
            let login = parse_login(&login)?;
            let account = services.accounts.get(&login).await.map_err(describe)?;
            println!("login:        {}", account.login);
            println!("id:           {}", account.id);
            println!(
                "name:         {} {}",
                account.given_name, account.family_name
            );
            println!(
                "email:        {}",
                account.email.as_ref().map_or("-", |e| e.as_str())
            );
            println!("affiliation:  {}", account.affiliation);
            println!("state:        {}", account.state);
            println!("created:      {}", account.created_at);
            if let Some(found) = services.profiles.find_with_profile(account.id).await? {
                print_profile(&found.profile);
            }
            print_helpdesk_state(services, &account).await?;
            match services
                .accounts
                .locked_until(login.as_str())
                .await
                .map_err(describe)?
            {
                Some(until) => println!("locked until: {until}"),
                None => println!("locked:       no"),
            }
            let events = services.audit.recent(Some(login.as_str()), 10).await?;
            println!("recent security events:");
            for e in events {
                println!(
                    "  {} {} ip={} by={}",
                    e.at,
                    e.kind,
                    e.ip.as_deref().unwrap_or("-"),
                    e.actor
                );
            }
        }
        AccountAction::Lock { login, minutes } => {
            let login = parse_login(&login)?.to_string();
            let until = services
                .accounts
                .lock(&login, minutes.map(|m| m * 60), "cli")
                .await
                .map_err(describe)?;
            println!("{login} locked until {until}");
        }
        AccountAction::Unlock { login } => {
            let login = parse_login(&login)?.to_string();
            services
                .accounts
                .unlock(&login, "cli")
                .await
                .map_err(describe)?;
            println!("{login} unlocked");
        }
        AccountAction::Block {
            login,
            reason,
            note,
        } => {
            let reason = reason
                .parse::<sesame_core::helpdesk::BlockReason>()
                .context("--reason")?;
            let blocked = crate::operations::block_account(
                services,
                &parse_login(&login)?,
                reason,
                note.as_deref(),
                "cli",
            )
            .await?;
            println!(
                "{} blocked ({reason}); {} session(s) ended, {} application(s) sent a logout request",
                blocked.account.login, blocked.sessions_ended, blocked.applications_notified
            );
        }
        AccountAction::Disable { login } => {
            let done = crate::operations::disable_account(services, &parse_login(&login)?, "cli")
                .await
                .map_err(describe)?;
            println!(
                "{} disabled; {} session(s) ended, {} application(s) sent a logout request",
                done.account.login, done.sessions_ended, done.applications_notified
            );
        }
        AccountAction::MfaList { login } => {
            let login = parse_login(&login)?;
            let account = services
                .accounts_repo
                .find_by_login(&login)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no account {login}"))?;
            let factors = services.second_factors.list(account.id).await?;
            if factors.is_empty() {
                println!("{}: no second factor", account.login);
            }
            for f in &factors {
                println!(
                    "{}\t{}\t{:?}\tadded {}\tlast used {}",
                    f.id,
                    f.kind.as_str(),
                    f.label,
                    f.created_at,
                    f.last_used_at
                        .map_or_else(|| "never".to_owned(), |t| t.to_string())
                );
            }
            if !factors.is_empty() {
                let left = services
                    .second_factors
                    .recovery_codes_left(account.id)
                    .await?;
                println!("recovery codes left: {left}");
            }
        }
        AccountAction::MfaReset { login } => {
            let (account, removed) =
                crate::operations::reset_second_factors(services, &parse_login(&login)?, "cli")
                    .await?;
            println!(
                "{}: {removed} second factor(s) and the recovery codes removed; the next login asks for the password only",
                account.login
            );
        }
        AccountAction::EndSessions { login } => {
            let done = crate::operations::end_sessions(services, &parse_login(&login)?, "cli")
                .await
                .map_err(describe)?;
            println!(
                "{}: {} session(s) ended, {} application(s) sent a logout request",
                done.account.login, done.sessions_ended, done.applications_notified
            );
        }
        AccountAction::Unblock { login, code } => {
            let login = parse_login(&login)?;
            let account = crate::operations::unblock_account(services, &login, "cli").await?;
            println!(
                "{} unblocked, state {}; its former password no longer logs in: a new one is set with a reset link, an SMS code or a helpdesk code",
                account.login, account.state
            );
            if code {
                print_reset_code(services, public_base, &login).await?;
            }
        }
        AccountAction::ResetCode { login } => {
            print_reset_code(services, public_base, &parse_login(&login)?).await?;
        }
        AccountAction::ActivationLink { login } => {
            let login = parse_login(&login)?;
            let to = crate::operations::send_activation_link(services, &login, "cli").await?;
            println!(
                "{login}: an activation link is queued for {}",
                sesame_core::mail::mask_email(to.as_str())
            );
        }
    }
    Ok(())
}

/// Issues a helpdesk reset code and prints it with where it is typed.
async fn print_reset_code(
    services: &Services,
    public_base: &str,
    login: &LoginName,
) -> anyhow::Result<()> {
    let issued = crate::operations::issue_reset_code(services, login, "cli").await?;
    println!("reset code:   {}", issued.code);
    println!("valid until:  {}", rfc3339(issued.expires_at));
    println!(
        "the person types their login and this code at {public_base}/password/helpdesk-code; shown once, it replaces any earlier code"
    );
    Ok(())
}

async fn import(
    services: &Services,
    rules: ImportRules,
    input: &[u8],
    options: ImportOptions,
    parallelism: usize,
) -> anyhow::Result<()> {
    let done =
        crate::operations::import(services, rules, input, options, "cli", parallelism).await?;
    for line in crate::operations::import_report_lines(&done) {
        println!("{line}");
    }
    let report = done.report;
    let counts = report.counts();
    match report.mode {
        Mode::RefusedStrict => bail!(
            "--strict: nothing was imported because {} line(s) are rejected",
            counts.rejected
        ),
        _ if counts.rejected > 0 => bail!(
            "{} line(s) rejected{}",
            counts.rejected,
            if report.mode == Mode::Applied {
                "; the other lines were imported"
            } else {
                ""
            }
        ),
        _ => Ok(()),
    }
}

/// The profile lines of `sesame account show`: contacts masked, the national ID never shown
/// (only whether one is on file).
fn print_profile(p: &sesame_core::account::AccountProfile) {
    let on_file = |present: bool| if present { "on file" } else { "-" };
    let verified = |v: bool| if v { "verified" } else { "not verified" };
    println!(
        "hr id:        {}",
        p.hr_id.as_ref().map_or("-", |h| h.as_str())
    );
    println!("birth date:   {}", on_file(p.birth_date.is_some()));
    println!("national id:  {}", on_file(p.national_id.is_some()));
    match &p.recovery_email {
        Some(c) => println!(
            "recovery:     {} ({})",
            mask_email(c.address.as_str()),
            verified(c.verified)
        ),
        None => println!("recovery:     -"),
    }
    match &p.mobile {
        Some(c) => println!(
            "mobile:       {} ({})",
            mask_phone(c.address.as_str()),
            verified(c.verified)
        ),
        None => println!("mobile:       -"),
    }
    match &p.charter {
        Some(c) => println!(
            "charter:      {} accepted {}",
            c.version,
            rfc3339(c.accepted_at)
        ),
        None => println!("charter:      not accepted"),
    }
    println!(
        "directory:    {}",
        if p.directory_opt_in {
            "listed"
        } else {
            "not listed"
        }
    );
    match &p.mail_redirect {
        Some(r) => println!(
            "redirect:     {} ({}{})",
            mask_email(r.address.as_str()),
            verified(r.verified),
            if r.keep_copy { ", keeps a copy" } else { "" }
        ),
        None => println!("redirect:     -"),
    }
}

/// The helpdesk lines of `sesame account show`: the block and its reason, and whether the next
/// login must change the password.
async fn print_helpdesk_state(
    services: &Services,
    account: &sesame_core::account::Account,
) -> anyhow::Result<()> {
    let repo = services.helpdesk.desk.repo();
    match repo.find_block(account.id).await? {
        Some(b) => {
            println!(
                "blocked:      {} since {} by {}",
                b.reason,
                rfc3339(b.blocked_at),
                b.blocked_by
            );
            if let Some(note) = &b.note {
                println!("block note:   {note:?}");
            }
        }
        None => println!("blocked:      no"),
    }
    match repo.password_change_required(account.id).await? {
        Some(since) => println!(
            "password:     voided by the unblock of {}; to be set with a reset link, an SMS code or a helpdesk code",
            rfc3339(since)
        ),
        None => println!("password:     in use"),
    }
    Ok(())
}

/// `j***@example.org`.
fn mask_email(address: &str) -> String {
    match address.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// `+33 6** ** ** 78`, `06** ** ** 78`: the country code or the first two digits, then only
/// the last two.
fn mask_phone(number: &str) -> String {
    let chars: Vec<char> = number.chars().collect();
    if chars.len() < 6 {
        return "******".to_owned();
    }
    let (prefix, rest) = if number.starts_with("+33") || number.starts_with("+32") {
        (format!("{} {}", &number[..3], chars[3]), &chars[4..])
    } else if number.starts_with('+') {
        (
            format!("{} ", chars[..3].iter().collect::<String>()),
            &chars[3..],
        )
    } else {
        (chars[..2].iter().collect::<String>(), &chars[2..])
    };
    let last: String = rest[rest.len().saturating_sub(2)..].iter().collect();
    format!("{prefix}** ** ** {last}")
}
