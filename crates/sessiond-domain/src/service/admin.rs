//! What system administrators do to other users and their sessions (SPEC §4 `/admin`).

use std::collections::HashMap;
use std::sync::Arc;

use super::{AccountService, NewAccount, Ports, Principal};
use crate::error::DomainError;
use crate::model::{
    Email, EndedBy, InvalidationReason, Role, Session, SessionId, SessionPolicy, SystemStatistics,
    User, UserId, UserPage, UserPosition, UserQuery,
};
use crate::ports::{UpdateUserError, UserAdministration, UserChange, UserDirectory};

/// How many ended sessions the account view shows, newest first.
pub const HISTORY_SHOWN: usize = 50;

/// One account as an administrator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDetail {
    pub user: User,
    /// Live now, most recently active first.
    pub live_sessions: Vec<Session>,
    /// Ended within the retention period, newest first, at most [`HISTORY_SHOWN`].
    pub history: Vec<Session>,
    /// The addresses of the administrators who ended a session of `history`; an
    /// administrator whose account is gone is absent.
    pub administrators: HashMap<UserId, Email>,
}

/// Administration, for `system_admin`s only. Every method first checks the caller against
/// the live session AND the stored user, never against a token claim alone, so a demoted or
/// disabled admin loses the rights at once.
#[derive(Clone)]
pub struct AdminService {
    ports: Ports,
    policy: Arc<SessionPolicy>,
    accounts: AccountService,
    administration: Arc<dyn UserAdministration>,
    directory: Arc<dyn UserDirectory>,
}

impl std::fmt::Debug for AdminService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminService").finish_non_exhaustive()
    }
}

impl AdminService {
    pub fn new(
        ports: Ports,
        policy: Arc<SessionPolicy>,
        administration: Arc<dyn UserAdministration>,
        directory: Arc<dyn UserDirectory>,
    ) -> Self {
        Self {
            accounts: AccountService::new(ports.clone()),
            ports,
            policy,
            administration,
            directory,
        }
    }

    /// The stored user is read on every admin request although a live session already
    /// implies an active user with its role (`AuthService::authenticate`): defence in depth
    /// for the routes that can change everyone's access, at a cost only admins pay.
    ///
    /// # Errors
    /// `Forbidden` unless the caller is an active `system_admin` right now.
    async fn authorize(&self, principal: &Principal) -> Result<(), DomainError> {
        if principal.role != Role::SystemAdmin {
            return Err(DomainError::Forbidden);
        }
        let user = self.ports.users.find(principal.user_id).await?;
        match user {
            Some(user) if user.is_active && user.role == Role::SystemAdmin => Ok(()),
            _ => Err(DomainError::Forbidden),
        }
    }

    /// Creates a user of any role.
    ///
    /// # Errors
    /// `Forbidden`, `EmailTaken`.
    pub async fn create_user(
        &self,
        principal: &Principal,
        account: NewAccount,
    ) -> Result<User, DomainError> {
        self.authorize(principal).await?;
        self.accounts.create(account).await
    }

    /// Changes a user's role or active flag. A role change ends all the user's sessions
    /// (`role_changed`), a deactivation too (`account_disabled`), so the user's next request
    /// fails and the next sign-in carries the new role.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound`, `LastActiveAdmin`.
    pub async fn update_user(
        &self,
        principal: &Principal,
        id: UserId,
        change: UserChange,
    ) -> Result<User, DomainError> {
        self.authorize(principal).await?;
        let now = self.ports.clock.now();
        let user = self
            .administration
            .update(id, change, now)
            .await
            .map_err(|e| match e {
                UpdateUserError::NotFound => DomainError::NotFound,
                UpdateUserError::LastActiveAdmin => DomainError::LastActiveAdmin,
                UpdateUserError::Store(e) => e.into(),
            })?;
        let reason = if !user.is_active {
            Some(InvalidationReason::AccountDisabled)
        } else if change.role.is_some() {
            // Also when the role did not change now: a retry after a failed end must still
            // end the sessions that carry the old role.
            let live = self.ports.sessions.list_live(user.id, now).await?;
            live.iter()
                .any(|session| session.role != user.role)
                .then_some(InvalidationReason::RoleChanged)
        } else {
            None
        };
        if let Some(reason) = reason {
            let by = EndedBy::Administrator(principal.user_id);
            let ended = self
                .ports
                .sessions
                .end_all_for_user(user.id, None, reason, by, now)
                .await?;
            self.ports.events.ended(user.id, &ended, reason, by);
        }
        Ok(user)
    }

    /// A page of the users `query` asks for, newest first, and where the next page starts.
    ///
    /// # Errors
    /// `Forbidden`.
    pub async fn search_users(
        &self,
        principal: &Principal,
        query: &UserQuery,
    ) -> Result<UserPage, DomainError> {
        self.authorize(principal).await?;
        let size = query.page_size.get();
        // One more than the page: whether there is a next page without a second query.
        let mut users = self
            .directory
            .search(&query.filter, query.after, size + 1)
            .await?;
        let more = users.len() > size as usize;
        users.truncate(size as usize);
        let next = more.then(|| users.last().map(UserPosition::of)).flatten();
        Ok(UserPage { users, next })
    }

    /// A user's account, live sessions and recent history, with the administrators who
    /// ended sessions of it.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound` for an unknown user.
    pub async fn user_detail(
        &self,
        principal: &Principal,
        id: UserId,
    ) -> Result<UserDetail, DomainError> {
        self.authorize(principal).await?;
        let user = self
            .ports
            .users
            .find(id)
            .await?
            .ok_or(DomainError::NotFound)?;
        let now = self.ports.clock.now();
        let live_sessions = self.ports.sessions.list_live(id, now).await?;
        let since = now - self.policy.history_retention;
        let mut history = self.ports.sessions.list_ended(id, since).await?;
        history.truncate(HISTORY_SHOWN);
        let mut administrators = HashMap::new();
        for session in &history {
            let Some(EndedBy::Administrator(admin)) = session.ended_by else {
                continue;
            };
            if administrators.contains_key(&admin) {
                continue;
            }
            if let Some(account) = self.ports.users.find(admin).await? {
                administrators.insert(admin, account.email);
            }
        }
        Ok(UserDetail {
            user,
            live_sessions,
            history,
            administrators,
        })
    }

    /// The whole system's figures: sessions live by role and the last 24 hours.
    ///
    /// # Errors
    /// `Forbidden`.
    pub async fn statistics(&self, principal: &Principal) -> Result<SystemStatistics, DomainError> {
        self.authorize(principal).await?;
        let now = self.ports.clock.now();
        let stored = self
            .ports
            .statistics
            .read(SystemStatistics::window_start(now))
            .await?;
        Ok(SystemStatistics::at(now, stored))
    }

    /// Any user's live sessions, most recently active first.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound` for an unknown user.
    pub async fn user_sessions(
        &self,
        principal: &Principal,
        id: UserId,
    ) -> Result<Vec<Session>, DomainError> {
        self.authorize(principal).await?;
        self.ports
            .users
            .find(id)
            .await?
            .ok_or(DomainError::NotFound)?;
        let now = self.ports.clock.now();
        Ok(self.ports.sessions.list_live(id, now).await?)
    }

    /// Ends all of a user's sessions (`admin_revoked`); returns how many ended.
    ///
    /// # Errors
    /// `Forbidden`, `NotFound` for an unknown user.
    pub async fn end_user_sessions(
        &self,
        principal: &Principal,
        id: UserId,
    ) -> Result<usize, DomainError> {
        self.authorize(principal).await?;
        self.ports
            .users
            .find(id)
            .await?
            .ok_or(DomainError::NotFound)?;
        let now = self.ports.clock.now();
        let reason = InvalidationReason::AdminRevoked;
        let by = EndedBy::Administrator(principal.user_id);
        let ended = self
            .ports
            .sessions
            .end_all_for_user(id, None, reason, by, now)
            .await?;
        self.ports.events.ended(id, &ended, reason, by);
        Ok(ended.len())
    }

    /// Ends one session of anyone (`admin_revoked`).
    ///
    /// # Errors
    /// `Forbidden`, `NotFound` when there is no such active session.
    pub async fn end_session(
        &self,
        principal: &Principal,
        id: SessionId,
    ) -> Result<(), DomainError> {
        self.authorize(principal).await?;
        let now = self.ports.clock.now();
        let reason = InvalidationReason::AdminRevoked;
        let by = EndedBy::Administrator(principal.user_id);
        let ended = self
            .ports
            .sessions
            .end(id, reason, by, now)
            .await?
            .ok_or(DomainError::NotFound)?;
        self.ports.events.ended(ended.user_id, &[id], reason, by);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
