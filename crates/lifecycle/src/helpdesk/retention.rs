//! Retention: a disabled account (the person left the institution) is deleted once
//! `lifecycle.retention_days` have passed since it was disabled. The deletion takes the
//! account, its credentials, profile, consents and helpdesk records; the audit trail keeps
//! every event about it and gains an `account.deleted` one. Nothing else is deleted here:
//! blocked or provisioned accounts stay, whatever their age.

use std::sync::Arc;
use std::time::Duration;

use sesame_core::audit::{AuditEvent, AuditKind};
use sesame_core::clock::Clock;
use sesame_core::helpdesk::DisabledAccount;
use sesame_core::ports::{AuditLog, HelpdeskRepo};
use time::OffsetDateTime;

use super::HelpdeskError;

/// How many accounts one pass reads at a time.
const BATCH: i64 = 500;

/// Deletes disabled accounts past the retention period.
#[derive(Debug, Clone)]
pub struct Retention {
    repo: Arc<dyn HelpdeskRepo>,
    audit: Arc<dyn AuditLog>,
    clock: Arc<dyn Clock>,
    period: Duration,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone)]
pub struct RetentionReport {
    /// Accounts disabled at or before this are past the period.
    pub cutoff: OffsetDateTime,
    /// The accounts deleted (or that would be).
    pub deleted: Vec<DisabledAccount>,
    /// Nothing was written.
    pub dry_run: bool,
}

impl Retention {
    /// Retention of `period` after the disable time.
    pub fn new(
        repo: Arc<dyn HelpdeskRepo>,
        audit: Arc<dyn AuditLog>,
        clock: Arc<dyn Clock>,
        period: Duration,
    ) -> Self {
        Self {
            repo,
            audit,
            clock,
            period,
        }
    }

    /// The retention period.
    pub fn period(&self) -> Duration {
        self.period
    }

    /// Deletes (or with `dry_run` only lists) every account disabled for longer than the
    /// period, recording `account.deleted` for each.
    ///
    /// # Errors
    /// Storage errors; the accounts deleted before the error stay deleted and audited.
    pub async fn run(&self, dry_run: bool, actor: &str) -> Result<RetentionReport, HelpdeskError> {
        let now = self.clock.now();
        let cutoff = now - self.period;
        let mut report = RetentionReport {
            cutoff,
            deleted: Vec::new(),
            dry_run,
        };
        if dry_run {
            report.deleted = self.repo.disabled_before(cutoff, 10_000).await?;
            return Ok(report);
        }
        loop {
            let batch = self.repo.disabled_before(cutoff, BATCH).await?;
            let mut progressed = false;
            for candidate in batch {
                // The repository checks again, in its transaction, that the account is still
                // disabled since before the cutoff (an import may have brought it back).
                if !self
                    .repo
                    .delete_disabled_account(candidate.account.id, cutoff)
                    .await?
                {
                    continue;
                }
                progressed = true;
                // Recorded after the deletion, so the trail never claims a deletion that did
                // not happen; a failure here stops the run and is reported to the operator.
                self.audit
                    .record(
                        AuditEvent::new(AuditKind::AccountDeleted, now, actor)
                            .login(candidate.account.login.as_str())
                            .account(candidate.account.id)
                            .detail(serde_json::json!({
                                "reason": "retention",
                                "disabled_at": candidate.disabled_at.unix_timestamp(),
                                "retention_days": self.period.as_secs() / 86_400,
                            })),
                    )
                    .await?;
                report.deleted.push(candidate);
            }
            if !progressed {
                break;
            }
        }
        Ok(report)
    }
}
