//! One-time reset codes a helpdesk agent gives after checking a caller's identity on the
//! phone (the way back in after an unblock, when the person has no verified address or
//! mobile, or does not want to wait for a mail).
//!
//! The code is shown once to the agent (console or command line), who reads it out; the
//! person types their login and the code on `/password/helpdesk-code` and is then on the
//! new-password step of the ordinary reset flow, through the same kind of reset token a
//! correct SMS code is exchanged for. So this is a way into the existing reset, not another
//! reset.
//!
//! - **Hashed at rest, durable.** Only a SHA-256 of the code salted with the account id is
//!   kept, in the database's one-time secrets (`activation_tokens`, kind `reset_code`), not in
//!   the ephemeral store: the command line issues codes too, and in the embedded mode it
//!   shares the database with the server but not its in-process store.
//! - **Short-lived and single use**: `lifecycle.recovery.helpdesk_code_ttl_secs`; consumed by
//!   one conditional update (of parallel submissions exactly one wins, C07); a new code for an
//!   account replaces the older one.
//! - **Tries limited**: wrong codes count per live code (`helpdesk_code_max_tries`); at the
//!   limit the code is invalidated and the agent issues a new one. Counting per code rather
//!   than per login means a new code starts afresh even when the command line issued it.
//! - **No enumeration**: an unknown login, an account without a code, a wrong, used or
//!   spent code all get the same refusal, after the same database reads.

use std::sync::Arc;
use std::time::Duration;

use sesame_core::clock::Clock;
use sesame_core::ids::AccountId;
use sesame_core::ports::EphemeralStore;
use sesame_core::random;
use time::OffsetDateTime;

use super::{RecoveryError, RecoveryPolicy, Refusal};
use crate::activation::codes::{generate_code, normalise_code};
use crate::activation::ports::{ActivationTokenRepo, Consumption, NewToken, TokenKind};

/// The stored hash of a helpdesk code: SHA-256 of the account id and the normalised code
/// (case, spaces and dashes do not matter when it is typed).
pub fn helpdesk_code_hash(account_id: AccountId, code: &str) -> String {
    random::sha256_hex(&format!(
        "helpdesk-reset-code:{account_id}:{}",
        normalise_code(code)
    ))
}

/// Issues and checks helpdesk reset codes.
#[derive(Debug, Clone)]
pub struct HelpdeskCodes {
    tokens: Arc<dyn ActivationTokenRepo>,
    store: Arc<dyn EphemeralStore>,
    clock: Arc<dyn Clock>,
    policy: RecoveryPolicy,
}

fn tries_key(live_hash: &str) -> String {
    format!("helpdesk-code-tries:{}", random::sha256_hex(live_hash))
}

impl HelpdeskCodes {
    /// Codes over the database's one-time secrets, tries counted in `store`.
    pub fn new(
        tokens: Arc<dyn ActivationTokenRepo>,
        store: Arc<dyn EphemeralStore>,
        clock: Arc<dyn Clock>,
        policy: RecoveryPolicy,
    ) -> Self {
        Self {
            tokens,
            store,
            clock,
            policy,
        }
    }

    /// A new code for the account (its older codes stop working); returns the code, to
    /// show once, and its end.
    ///
    /// # Errors
    /// Database failures.
    pub async fn issue(
        &self,
        account_id: AccountId,
    ) -> Result<(String, OffsetDateTime), RecoveryError> {
        let code = generate_code();
        let now = self.clock.now();
        let expires_at = now + self.policy.helpdesk_code_ttl;
        self.tokens
            .insert_token(
                NewToken {
                    token_hash: helpdesk_code_hash(account_id, &code),
                    account_id,
                    kind: TokenKind::ResetCode,
                    created_at: now,
                    expires_at,
                    detail: None,
                },
                true,
            )
            .await?;
        Ok((code, expires_at))
    }

    /// Checks `typed` against the live code of `account` (`None`: no such account, which is
    /// refused after the same reads). A right code is consumed; a wrong one counts, and the
    /// last allowed wrong one invalidates the code.
    ///
    /// # Errors
    /// Storage failures; a refused code is `Ok(Err(refusal))`.
    pub async fn verify(
        &self,
        account: Option<AccountId>,
        typed: &str,
    ) -> Result<Result<AccountId, Refusal>, RecoveryError> {
        let now = self.clock.now();
        // An unknown login reads as much as a known one (no enumeration by timing).
        let probe = account.unwrap_or_else(AccountId::new_random);
        let live = self
            .tokens
            .live_token(probe, TokenKind::ResetCode, now)
            .await?;
        let (Some(account_id), Some(live)) = (account, live) else {
            return Ok(Err(Refusal::Unknown));
        };
        let keep = self.policy.helpdesk_code_ttl + Duration::from_secs(60);
        let tries = self
            .store
            .reserve_attempt(&tries_key(&live), now, keep)
            .await?;
        let max = self.policy.helpdesk_code_max_tries;
        if tries.attempt > max {
            self.invalidate(&live, now).await?;
            return Ok(Err(Refusal::TooManyTries));
        }
        let typed = normalise_code(typed);
        let right = !typed.is_empty()
            && random::constant_time_eq(&helpdesk_code_hash(account_id, &typed), &live);
        if !right {
            if tries.attempt >= max {
                self.invalidate(&live, now).await?;
            }
            return Ok(Err(Refusal::WrongCode));
        }
        match self
            .tokens
            .consume_token(TokenKind::ResetCode, &live, now)
            .await?
        {
            Consumption::Consumed {
                account_id: owner, ..
            } if owner == account_id => {
                self.store.clear_attempts(&tries_key(&live)).await?;
                Ok(Ok(account_id))
            }
            // Taken by a parallel submission, or expired meanwhile.
            _ => Ok(Err(Refusal::Unknown)),
        }
    }

    /// Uses the code up without a winner: the tries are spent.
    async fn invalidate(&self, live: &str, now: OffsetDateTime) -> Result<(), RecoveryError> {
        self.tokens
            .consume_token(TokenKind::ResetCode, live, now)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_hash_ignores_how_it_is_typed_and_depends_on_the_account() {
        let a = AccountId::new_random();
        let b = AccountId::new_random();
        assert_eq!(
            helpdesk_code_hash(a, "abcde-fghjk"),
            helpdesk_code_hash(a, " ABCDE FGHJK ")
        );
        assert_ne!(
            helpdesk_code_hash(a, "ABCDEFGHJK"),
            helpdesk_code_hash(b, "ABCDEFGHJK")
        );
        // Not the hash an activation code of the same text has.
        assert_ne!(
            helpdesk_code_hash(a, "ABCDEFGHJK"),
            crate::activation::codes::code_hash(a, "ABCDEFGHJK")
        );
    }
}
