//! Accounts: registration, creation by an operator, password changes.

use super::{Ports, Principal};
use crate::error::DomainError;
use crate::model::{Email, EndedBy, InvalidationReason, Password, Role, User, UserId};
use crate::ports::CreateUserError;

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub role: Role,
    pub hotel_id: Option<i64>,
}

/// Account management.
#[derive(Debug, Clone)]
pub struct AccountService {
    ports: Ports,
}

impl AccountService {
    pub fn new(ports: Ports) -> Self {
        Self { ports }
    }

    /// Self-service registration: always a `guest`.
    ///
    /// # Errors
    /// `EmailTaken` when the address has an account.
    pub async fn register(&self, email: Email, password: Password) -> Result<User, DomainError> {
        self.create(NewAccount {
            email,
            password,
            role: Role::Guest,
            hotel_id: None,
        })
        .await
    }

    /// Creates a user of any role (operators and administrators).
    ///
    /// # Errors
    /// `EmailTaken` when the address has an account.
    pub async fn create(&self, account: NewAccount) -> Result<User, DomainError> {
        let password_hash = self.ports.hasher.hash(&account.password).await?;
        let now = self.ports.clock.now();
        let user = User {
            id: UserId::from_random_bytes(self.ports.random_id_bytes()),
            email: account.email,
            password_hash,
            role: account.role,
            hotel_id: account.hotel_id,
            is_active: true,
            created_at: now,
            updated_at: now,
        };
        self.ports.users.create(&user).await.map_err(|e| match e {
            CreateUserError::EmailTaken => DomainError::EmailTaken,
            CreateUserError::Store(e) => e.into(),
        })?;
        Ok(user)
    }

    /// Creates the account unless one with this e-mail exists; `true` when it created it.
    /// For start-up bootstrap, where a second instance may race the first.
    ///
    /// # Errors
    /// Storage and hashing errors.
    pub async fn ensure(&self, account: NewAccount) -> Result<bool, DomainError> {
        if self
            .ports
            .users
            .find_by_email(&account.email)
            .await?
            .is_some()
        {
            return Ok(false);
        }
        match self.create(account).await {
            Ok(_) => Ok(true),
            Err(DomainError::EmailTaken) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Changes the caller's password after checking the current one, then ends every other
    /// session of theirs (`password_changed`). The current session stays.
    ///
    /// # Errors
    /// `WrongPassword` when `current` does not match.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: Password,
        new: Password,
    ) -> Result<(), DomainError> {
        let user = self
            .ports
            .users
            .find(principal.user_id)
            .await?
            .ok_or(DomainError::NotFound)?;
        let matches = self
            .ports
            .hasher
            .verify(&current, &user.password_hash)
            .await?;
        if !matches {
            return Err(DomainError::WrongPassword);
        }
        let hash = self.ports.hasher.hash(&new).await?;
        let now = self.ports.clock.now();
        self.ports
            .users
            .set_password_hash(user.id, &hash, now)
            .await?;
        // After the new hash is stored: a failure here leaves the request retryable with
        // the new password, never the old sessions alive under a password nobody changed.
        let (reason, by) = (InvalidationReason::PasswordChanged, EndedBy::Owner);
        let keep = Some(principal.session.id);
        let ended = self
            .ports
            .sessions
            .end_all_for_user(user.id, keep, reason, by, now)
            .await?;
        self.ports.events.ended(user.id, &ended, reason, by);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
