//! Administrative blocking: a compromised or abusive account is cut off at once and stays
//! so until the helpdesk unblocks it (distinct from the temporary lockout, which ends by
//! itself).

use sesame_core::account::{Account, AccountState};
use sesame_core::accounts::AccountService;
use sesame_core::error::AccountError;
use sesame_core::ids::LoginName;
use sesame_core::session::SessionManager;

/// Blocks and unblocks accounts.
#[derive(Debug, Clone)]
pub struct AccountBlocking {
    accounts: AccountService,
    sessions: SessionManager,
}

impl AccountBlocking {
    /// Blocking over the account service and session manager.
    pub fn new(accounts: AccountService, sessions: SessionManager) -> Self {
        Self { accounts, sessions }
    }

    /// Blocks the account and ends every SSO session it has, on every instance (they share
    /// the store). Returns the account and the handles of the sessions ended (for single
    /// logout).
    ///
    /// # Errors
    /// [`AccountError::NotFound`]; [`AccountError::BadTransition`] for a disabled account.
    pub async fn block(
        &self,
        login: &LoginName,
        actor: &str,
    ) -> Result<(Account, Vec<String>), AccountError> {
        let account = self.accounts.get(login).await?;
        let account = match account.state {
            AccountState::Blocked => account,
            AccountState::Active | AccountState::Provisioned => {
                self.accounts
                    .set_state(&account, AccountState::Blocked, actor)
                    .await?
            }
            AccountState::Disabled => {
                return Err(AccountError::BadTransition {
                    from: account.state.as_str(),
                    to: AccountState::Blocked.as_str(),
                })
            }
        };
        let ended = self.sessions.close_all_for(account.id).await?;
        Ok((account, ended))
    }

    /// Unblocks a blocked account (back to active).
    ///
    /// # Errors
    /// [`AccountError::NotFound`]; [`AccountError::BadTransition`] if it is not blocked.
    pub async fn unblock(&self, login: &LoginName, actor: &str) -> Result<Account, AccountError> {
        let account = self.accounts.get(login).await?;
        if account.state != AccountState::Blocked {
            return Err(AccountError::BadTransition {
                from: account.state.as_str(),
                to: AccountState::Active.as_str(),
            });
        }
        self.accounts
            .set_state(&account, AccountState::Active, actor)
            .await
    }
}
