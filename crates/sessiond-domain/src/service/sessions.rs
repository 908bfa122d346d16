//! A user's view of their own sessions: list, end, history (SPEC §4).

use std::sync::Arc;

use super::{Ports, Principal};
use crate::error::DomainError;
use crate::model::{EndedBy, InvalidationReason, Session, SessionId, SessionPolicy, User};

/// What users do with their own sessions. Every method acts for a [`Principal`] and never
/// touches another user's session.
#[derive(Debug, Clone)]
pub struct SessionService {
    ports: Ports,
    policy: Arc<SessionPolicy>,
}

impl SessionService {
    pub fn new(ports: Ports, policy: Arc<SessionPolicy>) -> Self {
        Self { ports, policy }
    }

    /// The caller's live sessions, most recently active first.
    ///
    /// # Errors
    /// Storage errors only.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<Session>, DomainError> {
        let now = self.ports.clock.now();
        Ok(self
            .ports
            .sessions
            .list_live(principal.user_id, now)
            .await?)
    }

    /// The caller's user record ("whoami").
    ///
    /// # Errors
    /// `NotFound` if the user was deleted since the session was validated.
    pub async fn current_user(&self, principal: &Principal) -> Result<User, DomainError> {
        self.ports
            .users
            .find(principal.user_id)
            .await?
            .ok_or(DomainError::NotFound)
    }

    /// Ends the caller's current session.
    ///
    /// # Errors
    /// Storage errors only; ending an already ended session is not an error.
    pub async fn sign_out(&self, principal: &Principal) -> Result<(), DomainError> {
        let now = self.ports.clock.now();
        let id = principal.session.id;
        let reason = InvalidationReason::UserLogout;
        let by = EndedBy::Owner;
        if self
            .ports
            .sessions
            .end(id, reason, by, now)
            .await?
            .is_some()
        {
            self.ports
                .events
                .ended(principal.user_id, &[id], reason, by);
        }
        Ok(())
    }

    /// Ends one of the caller's sessions: `user_logout` when it is the current one (the
    /// device signs itself out), `ended_from_other_device` otherwise, so that the device
    /// that was signed out can tell its user why.
    ///
    /// # Errors
    /// `NotFound` when the session does not exist, belongs to someone else or has already
    /// ended: another user's session id is indistinguishable from a made-up one.
    pub async fn end_own(&self, principal: &Principal, id: SessionId) -> Result<(), DomainError> {
        let owned = self
            .ports
            .sessions
            .find(id)
            .await?
            .is_some_and(|session| session.user_id == principal.user_id);
        if !owned {
            return Err(DomainError::NotFound);
        }
        let now = self.ports.clock.now();
        let reason = if id == principal.session.id {
            InvalidationReason::UserLogout
        } else {
            InvalidationReason::EndedFromOtherDevice
        };
        let by = EndedBy::Owner;
        self.ports
            .sessions
            .end(id, reason, by, now)
            .await?
            .ok_or(DomainError::NotFound)?;
        self.ports
            .events
            .ended(principal.user_id, &[id], reason, by);
        Ok(())
    }

    /// Ends all the caller's sessions except the current one; returns how many ended.
    ///
    /// # Errors
    /// Storage errors only.
    pub async fn end_others(&self, principal: &Principal) -> Result<usize, DomainError> {
        let now = self.ports.clock.now();
        let (reason, by) = (InvalidationReason::UserLogoutAll, EndedBy::Owner);
        let keep = Some(principal.session.id);
        let ended = self
            .ports
            .sessions
            .end_all_for_user(principal.user_id, keep, reason, by, now)
            .await?;
        self.ports
            .events
            .ended(principal.user_id, &ended, reason, by);
        Ok(ended.len())
    }

    /// The caller's sessions that ended within the retention period, newest first.
    ///
    /// # Errors
    /// Storage errors only.
    pub async fn history(&self, principal: &Principal) -> Result<Vec<Session>, DomainError> {
        let since = self.ports.clock.now() - self.policy.history_retention;
        Ok(self
            .ports
            .sessions
            .list_ended(principal.user_id, since)
            .await?)
    }
}

#[cfg(test)]
mod tests;
