//! `sesame api-key …`: make, list and revoke the keys of the admin HTTP API.

use anyhow::Context;
use clap::Subcommand;
use sesame_core::api_keys::{ApiKeyRecord, ApiScope};

use crate::services::Services;

/// `sesame api-key …`
#[derive(Debug, Subcommand)]
pub enum ApiKeyAction {
    /// Make a key and print it, once: Sesame keeps only its SHA-256.
    Create {
        /// Who or what holds it (e.g. `siham-provisioning`); the audit trail names it.
        #[arg(long)]
        name: String,
        /// What it may do: accounts:read, accounts:write, imports, sessions, helpdesk (repeat the
        /// option for several).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires: Option<u32>,
    },
    /// The keys: id, name, scopes, status, expiry, last use (never the keys).
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's id (from `sesame api-key list`).
        id: String,
    },
}

/// Runs a `sesame api-key` command.
///
/// # Errors
/// Anything that makes the command fail; the message is for the operator.
pub async fn run(services: &Services, action: ApiKeyAction) -> anyhow::Result<()> {
    let keys = &services.api_keys;
    match action {
        ApiKeyAction::Create {
            name,
            scopes,
            expires,
        } => {
            let scopes = scopes
                .iter()
                .map(|s| s.parse::<ApiScope>())
                .collect::<Result<Vec<_>, _>>()
                .context("--scope")?;
            let issued = keys.create(&name, &scopes, expires, "cli").await?;
            println!("{}", issued.key);
            eprintln!(
                "key {} for {} ({}), {}; this is the only time the key is shown",
                issued.record.id,
                issued.record.name,
                scope_list(&issued.record),
                issued.record.expires_at.map_or_else(
                    || "never expires".to_owned(),
                    |e| format!("expires {}", rfc3339(e))
                )
            );
        }
        ApiKeyAction::List => {
            let now = services.clock.now();
            for key in keys.list().await? {
                println!(
                    "{}  {:<7}  {}  [{}]  expires {}  last used {}",
                    key.id,
                    key.status(now),
                    key.name,
                    scope_list(&key),
                    key.expires_at.map_or_else(|| "never".to_owned(), rfc3339),
                    key.last_used_at.map_or_else(|| "never".to_owned(), rfc3339),
                );
            }
        }
        ApiKeyAction::Revoke { id } => {
            let key = keys.revoke(&id, "cli").await?;
            println!("{} ({}) revoked", key.id, key.name);
        }
    }
    Ok(())
}

fn scope_list(key: &ApiKeyRecord) -> String {
    key.scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}
