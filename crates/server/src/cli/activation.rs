//! `sesame activation-codes`: one-time activation codes for a class or a list of people,
//! printed for handing out (or as CSV for a mail merge). Only their hashes are stored.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use sesame_core::account::AccountState;
use sesame_core::ids::{Affiliation, LoginName};
use sesame_lifecycle::activation::error::ActivationError;
use time_tz::OffsetDateTimeExt;

use crate::config::Settings;
use crate::services::Services;

/// `sesame activation-codes …`
#[derive(Debug, Args)]
pub struct ActivationCodesArgs {
    /// The affiliation: with no --login/--file, every provisioned person of it who came
    /// from an import gets a code; with them, each one must have it.
    #[arg(long)]
    pub affiliation: String,
    /// A login to make a code for (repeatable).
    #[arg(long = "login")]
    pub logins: Vec<String>,
    /// A file of logins, one per line (`-`: standard input).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// Output: `text` (aligned columns) or `csv` (login,name,code,expires).
    #[arg(long, value_enum, default_value = "text")]
    pub format: CodesFormat,
}

/// Output format of the codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CodesFormat {
    /// One person per line, aligned.
    Text,
    /// A header line, then `login,name,code,expires`.
    Csv,
}

/// One code made.
struct Issued {
    login: String,
    name: String,
    code: String,
    expires: String,
}

fn csv_field(value: &str) -> String {
    // Formula injection: a spreadsheet must not run a name that starts with `=`.
    let value = if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

fn read_logins(args: &ActivationCodesArgs) -> anyhow::Result<Vec<String>> {
    let mut logins = args.logins.clone();
    if let Some(file) = &args.file {
        let text = if file.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).context("reading standard input")?
        } else {
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?
        };
        logins.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    Ok(logins)
}

/// Runs `sesame activation-codes`.
///
/// # Errors
/// A bad affiliation or login, an unreadable file, or a storage failure; people already
/// active or not allowed to use codes are named and make the command fail (the others
/// still get their codes).
pub async fn run(
    settings: &Settings,
    services: &Services,
    args: &ActivationCodesArgs,
) -> anyhow::Result<()> {
    let affiliation: Affiliation = serde_json::from_value(serde_json::Value::from(
        args.affiliation.to_lowercase(),
    ))
    .map_err(|_| {
        anyhow::anyhow!("--affiliation: staff, faculty, student, pupil, parent or affiliate")
    })?;
    if !services.activation.policy().allows(
        affiliation,
        sesame_lifecycle::activation::settings::ActivationPath::Code,
    ) {
        bail!(
            "{} may not activate with a code: add \"code\" to lifecycle.activation.paths.{}",
            affiliation.as_str(),
            affiliation.as_str()
        );
    }
    let mut logins = read_logins(args)?;
    if logins.is_empty() {
        logins = services
            .profiles
            .accounts_with_hr_id()
            .await?
            .into_iter()
            .filter(|a| {
                a.account.affiliation == affiliation && a.account.state == AccountState::Provisioned
            })
            .map(|a| a.account.login.as_str().to_owned())
            .collect();
    }
    let tz = time_tz::timezones::get_by_name(&settings.ui.time_zone)
        .unwrap_or(time_tz::timezones::db::UTC);
    let mut issued = Vec::new();
    let mut refused = Vec::new();
    for raw in &logins {
        let login = match LoginName::parse(raw) {
            Ok(l) => l,
            Err(e) => {
                refused.push(format!("{raw}: {e}"));
                continue;
            }
        };
        match services.accounts_repo.find_by_login(&login).await? {
            Some(a) if a.affiliation != affiliation => {
                refused.push(format!(
                    "{login}: affiliation is {}",
                    a.affiliation.as_str()
                ));
                continue;
            }
            Some(a) if a.state != AccountState::Provisioned => {
                refused.push(format!("{login}: state is {}, not provisioned", a.state));
                continue;
            }
            Some(_) => {}
            None => {
                refused.push(format!("{login}: no such account"));
                continue;
            }
        }
        match services.activation.issue_code(&login, "cli").await {
            Ok((account, code, expires_at)) => {
                let local = expires_at.to_timezone(tz);
                issued.push(Issued {
                    login: account.login.as_str().to_owned(),
                    name: format!("{} {}", account.given_name, account.family_name),
                    code,
                    expires: format!(
                        "{:04}-{:02}-{:02}",
                        local.year(),
                        u8::from(local.month()),
                        local.day()
                    ),
                });
            }
            Err(ActivationError::Mismatch) => refused.push(format!("{login}: cannot get a code")),
            Err(e) => return Err(e).context("storing the codes"),
        }
    }
    match args.format {
        CodesFormat::Csv => {
            println!("login,name,code,expires");
            for i in &issued {
                println!(
                    "{},{},{},{}",
                    csv_field(&i.login),
                    csv_field(&i.name),
                    i.code,
                    i.expires
                );
            }
        }
        CodesFormat::Text => {
            let width = issued.iter().map(|i| i.login.len()).max().unwrap_or(0);
            for i in &issued {
                println!(
                    "{:<width$}  {}  (until {})  {}",
                    i.login, i.code, i.expires, i.name
                );
            }
        }
    }
    for r in &refused {
        eprintln!("refused: {r}");
    }
    if !refused.is_empty() {
        bail!("{} login(s) refused; the others got a code", refused.len());
    }
    if issued.is_empty() {
        eprintln!("no provisioned {} to make a code for", affiliation.as_str());
    }
    Ok(())
}
