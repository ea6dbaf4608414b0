//! `sesame helpdesk …` (the assistance requests: list, show, close) and `sesame retention
//! run` (delete disabled accounts past `lifecycle.retention_days`).

use anyhow::Context;
use clap::Subcommand;
use sesame_core::helpdesk::{AssistanceRequest, RequestFilter};

use crate::services::Services;

/// `sesame helpdesk …`
#[derive(Debug, Subcommand)]
pub enum HelpdeskAction {
    /// The assistance requests, newest first (open ones unless --all).
    List {
        /// Only the open requests (the default).
        #[arg(long, conflicts_with = "all")]
        open: bool,
        /// Open and closed requests.
        #[arg(long)]
        all: bool,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// One request in full.
    Show {
        /// Its reference, e.g. AS-7K2M9QXD.
        reference: String,
    },
    /// Close a request once it is dealt with.
    Close {
        /// Its reference.
        reference: String,
        /// What was done (kept with the request).
        #[arg(long)]
        note: Option<String>,
    },
}

/// `sesame retention …`
#[derive(Debug, Subcommand)]
pub enum RetentionAction {
    /// Delete the accounts disabled for longer than `lifecycle.retention_days` (their audit
    /// events stay, with an `account.deleted` one). `sesame serve` does this every day.
    Run {
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// One line per request. The operator sees what was typed, in Debug form so that no control
/// character typed on the public form reaches the terminal.
fn summary(r: &AssistanceRequest) -> String {
    let status = match &r.closure {
        None => "open".to_owned(),
        Some(c) => format!("closed {}", rfc3339(c.closed_at)),
    };
    let first_line: String = r
        .description
        .lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(60)
        .collect();
    format!(
        "{}  {}  {:<8}  {:<7}  {:?}  {:?}  {:?}",
        r.reference,
        rfc3339(r.created_at),
        status,
        r.kind,
        r.name,
        r.login_or_email,
        first_line
    )
}

/// Runs a `sesame helpdesk` command.
///
/// # Errors
/// Anything that makes the command fail; the message is for the operator.
pub async fn run(services: &Services, action: HelpdeskAction) -> anyhow::Result<()> {
    let desk = &services.helpdesk.assistance;
    match action {
        HelpdeskAction::List { open, all, limit } => {
            let open_only = open || !all;
            let filter = if open_only {
                RequestFilter::Open
            } else {
                RequestFilter::All
            };
            let requests = desk.list(filter, limit).await?;
            if requests.is_empty() {
                println!(
                    "no {}assistance requests",
                    if open_only { "open " } else { "" }
                );
            }
            for r in &requests {
                println!("{}", summary(r));
            }
        }
        HelpdeskAction::Show { reference } => {
            let r = desk.show(&reference).await?;
            println!("reference:      {}", r.reference);
            println!("received:       {}", rfc3339(r.created_at));
            println!("from:           {} {:?}", r.kind, r.name);
            if !r.child_name.is_empty() {
                println!("child:          {:?}", r.child_name);
            }
            if !r.school.is_empty() {
                println!("school, class:  {:?}", r.school);
            }
            println!("login/address:  {:?}", r.login_or_email);
            match r.account_id {
                Some(id) => match services.accounts_repo.find_by_id(id).await? {
                    Some(a) => {
                        println!("account:        {} ({}), state {}", a.login, a.id, a.state)
                    }
                    None => println!("account:        -"),
                },
                None => println!("account:        none has this login or address"),
            }
            println!("personal:       {:?}", r.personal_email);
            println!("phone:          {:?}", r.phone);
            println!("staff/student number: {:?}", r.number);
            println!("language:       {}", r.lang);
            println!("ip:             {}", r.client_ip.as_deref().unwrap_or("-"));
            match &r.closure {
                None => println!("status:         open"),
                Some(c) => {
                    println!(
                        "status:         closed {} by {}",
                        rfc3339(c.closed_at),
                        c.closed_by
                    );
                    if let Some(note) = &c.note {
                        println!("note:           {note:?}");
                    }
                }
            }
            println!("description:");
            for line in r.description.lines() {
                println!("  {}", line.escape_debug());
            }
        }
        HelpdeskAction::Close { reference, note } => {
            let closed = desk
                .close(&reference, note.as_deref(), "cli")
                .await
                .context("closing the request")?;
            let reference = reference.trim().to_ascii_uppercase();
            if closed {
                println!("{reference} closed");
            } else {
                println!("{reference} was already closed");
            }
        }
    }
    Ok(())
}

/// Runs a `sesame retention` command.
///
/// # Errors
/// Anything that makes the command fail; the message is for the operator.
pub async fn retention(services: &Services, action: RetentionAction) -> anyhow::Result<()> {
    match action {
        RetentionAction::Run { dry_run } => {
            let retention = &services.helpdesk.retention;
            let report = retention.run(dry_run, "cli").await?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            for d in &report.deleted {
                println!(
                    "{verb} {} ({}), disabled {}",
                    d.account.login,
                    d.account.id,
                    rfc3339(d.disabled_at)
                );
            }
            println!(
                "{} account(s) {verb}: disabled at or before {} ({} days ago)",
                report.deleted.len(),
                rfc3339(report.cutoff),
                retention.period().as_secs() / 86_400
            );
            if dry_run {
                println!("dry run: nothing was written");
            }
        }
    }
    Ok(())
}
