use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use sessiond_domain::StoreError;
use sessiond_domain::model::{Email, PasswordHash, Role, User, UserFilter, UserId, UserPosition};
use sessiond_domain::ports::{
    CreateUserError, UpdateUserError, UserAdministration, UserChange, UserDirectory, UserRepository,
};
use time::OffsetDateTime;

use crate::lock;

/// Users in a map keyed by id.
#[derive(Debug, Default)]
pub struct MemoryUserRepository {
    users: Mutex<HashMap<UserId, User>>,
}

impl MemoryUserRepository {
    pub fn new() -> Self {
        Self::default()
    }

    /// The users, locked: every change of a user (a password change, deactivation, a role
    /// change) takes this lock, so holding it keeps what it shows true. Taken before the
    /// sessions' lock, never after (see `MemorySessionRepository::create_within_limit`).
    pub(crate) fn locked(&self) -> MutexGuard<'_, HashMap<UserId, User>> {
        lock(&self.users)
    }
}

#[async_trait]
impl UserRepository for MemoryUserRepository {
    async fn create(&self, user: &User) -> Result<(), CreateUserError> {
        let mut users = lock(&self.users);
        if users.values().any(|u| u.email == user.email) || users.contains_key(&user.id) {
            return Err(CreateUserError::EmailTaken);
        }
        users.insert(user.id, user.clone());
        Ok(())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.users)
            .values()
            .find(|u| &u.email == email)
            .cloned())
    }

    async fn find(&self, id: UserId) -> Result<Option<User>, StoreError> {
        Ok(lock(&self.users).get(&id).cloned())
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        Ok(lock(&self.users)
            .get_mut(&id)
            .map(|user| {
                user.password_hash = hash.clone();
                user.updated_at = at;
            })
            .is_some())
    }
}

#[async_trait]
impl UserAdministration for MemoryUserRepository {
    async fn update(
        &self,
        id: UserId,
        change: UserChange,
        at: OffsetDateTime,
    ) -> Result<User, UpdateUserError> {
        let mut users = lock(&self.users);
        let current = users.get(&id).ok_or(UpdateUserError::NotFound)?;
        let mut updated = current.clone();
        updated.role = change.role.unwrap_or(updated.role);
        updated.is_active = change.is_active.unwrap_or(updated.is_active);
        updated.updated_at = at;
        let is_admin = |u: &User| u.is_active && u.role == Role::SystemAdmin;
        let admins_left = users.values().filter(|u| u.id != id && is_admin(u)).count();
        if is_admin(current) && !is_admin(&updated) && admins_left == 0 {
            return Err(UpdateUserError::LastActiveAdmin);
        }
        users.insert(id, updated.clone());
        Ok(updated)
    }
}

#[async_trait]
impl UserDirectory for MemoryUserRepository {
    /// A scan of every user: fine for the sizes this adapter is for.
    async fn search(
        &self,
        filter: &UserFilter,
        after: Option<UserPosition>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let mut found: Vec<User> = lock(&self.users)
            .values()
            .filter(|user| filter.matches(user))
            .filter(|user| after.is_none_or(|position| position.precedes(user)))
            .cloned()
            .collect();
        found.sort_by_key(UserPosition::sort_key);
        found.truncate(limit as usize);
        Ok(found)
    }
}
