//! Accounts: registration, creation by an operator, password changes.

use std::net::IpAddr;

use super::throttle::{self, Limit};
use super::{Ports, Principal};
use crate::error::DomainError;
use crate::model::{
    Email, EndedBy, InvalidationReason, Password, Role, ThrottlePolicy, User, UserId,
};
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
    throttle: ThrottlePolicy,
}

impl AccountService {
    /// Throttled under the default [`ThrottlePolicy`]; see [`Self::with_throttle`].
    pub fn new(ports: Ports) -> Self {
        Self {
            ports,
            throttle: ThrottlePolicy::default(),
        }
    }

    /// Counts registrations and wrong current passwords under `throttle` (the sign-in
    /// throttle's window and limits).
    #[must_use]
    pub fn with_throttle(mut self, throttle: ThrottlePolicy) -> Self {
        self.throttle = throttle;
        self
    }

    /// Self-service registration: always a `guest`. Every registration from `client` is
    /// counted (successful or not: a taken address tells that it has an account); beyond
    /// `max_registrations_per_ip` in a window they are refused until it ends. Registration
    /// from no known address is not counted.
    ///
    /// # Errors
    /// `EmailTaken` when the address has an account; `RateLimited` beyond the limit.
    pub async fn register(
        &self,
        email: Email,
        password: Password,
        client: Option<IpAddr>,
    ) -> Result<User, DomainError> {
        if let Some(ip) = client {
            let limit = Limit::new(
                format!("register:{ip}"),
                self.throttle.max_registrations_per_ip,
            );
            let now = self.ports.clock.now();
            let counter = self.ports.attempts.as_ref();
            throttle::count_or_refuse(counter, &self.throttle, &limit, now).await?;
        }
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
    /// Wrong current passwords are counted like failed sign-ins (per user, under the
    /// account's limit and in the same windows): a stolen access token is no oracle for the
    /// password. At the limit every change is refused until the window ends, even with the
    /// right password.
    ///
    /// # Errors
    /// `WrongPassword` when `current` does not match; `RateLimited` at the limit.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: Password,
        new: Password,
    ) -> Result<(), DomainError> {
        let guesses = [Limit::new(
            format!("password:{}", principal.user_id),
            self.throttle.max_failures_per_account,
        )];
        let checked_at = self.ports.clock.now();
        let counter = self.ports.attempts.as_ref();
        throttle::refuse_if_over(counter, &self.throttle, &guesses, checked_at).await?;
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
            throttle::record(counter, &self.throttle, &guesses, checked_at).await;
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
