//! [`UserRepository`] and [`UserAdministration`] on the `users` table.
//!
//! Every operation is one statement, except an administrative change, which is one
//! transaction: see [`PgUserRepository::update`](UserAdministration::update).

use async_trait::async_trait;
use diesel::dsl::exists;
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sessiond_domain::StoreError;
use sessiond_domain::model::{Email, PasswordHash, Role, User, UserId};
use sessiond_domain::ports::{
    CreateUserError, UpdateUserError, UserAdministration, UserChange, UserRepository,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::rows::{NewUserRow, UserRow};
use crate::schema::users;
use crate::{PgError, PgPool};

/// Key of the transaction-scoped advisory lock taken by every change that would take an
/// active `system_admin` away, so that such changes (on any instance) check the last-admin
/// rule one at a time.
const LAST_ADMIN_LOCK_KEY: i64 = 0x7365_7373_6164_6d6e; // "sessadmn"

/// User accounts in PostgreSQL.
#[derive(Debug, Clone)]
pub struct PgUserRepository {
    pool: PgPool,
}

impl PgUserRepository {
    /// A repository on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The accounts whose addresses read the same once normalised (issue 15: they were
    /// stored before the normal form and the migration does not merge them), as groups of
    /// ids, oldest account first; empty when there are none.
    ///
    /// # Errors
    /// [`PgError`] when the database cannot answer.
    pub async fn email_collisions(&self) -> Result<Vec<Vec<UserId>>, PgError> {
        let mut conn = self.pool.get().await?;
        let groups: Vec<CollidingUsers> = diesel::sql_query(
            "SELECT user_ids FROM email_normalisation_collisions ORDER BY user_ids[1]",
        )
        .load(&mut conn)
        .await?;
        Ok(groups
            .into_iter()
            .map(|group| group.user_ids.into_iter().map(UserId::from_uuid).collect())
            .collect())
    }
}

/// A row of the `email_normalisation_collisions` view.
#[derive(QueryableByName)]
struct CollidingUsers {
    #[diesel(sql_type = Array<diesel::sql_types::Uuid>)]
    user_ids: Vec<Uuid>,
}

#[async_trait]
impl UserRepository for PgUserRepository {
    async fn create(&self, user: &User) -> Result<(), CreateUserError> {
        let mut conn = self.pool.get().await.map_err(StoreError::from)?;
        diesel::insert_into(users::table)
            .values(NewUserRow::from(user))
            .execute(&mut conn)
            .await
            .map_err(|e| CreateUserError::from(PgError::from(e)))?;
        Ok(())
    }

    async fn find_by_email(&self, email: &Email) -> Result<Option<User>, StoreError> {
        let mut conn = self.pool.get().await?;
        let row = users::table
            .filter(users::email.eq(email.as_str()))
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(PgError::from)?;
        Ok(row.map(User::try_from).transpose()?)
    }

    async fn find(&self, id: UserId) -> Result<Option<User>, StoreError> {
        let mut conn = self.pool.get().await?;
        let row = users::table
            .find(id.as_uuid())
            .select(UserRow::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(PgError::from)?;
        Ok(row.map(User::try_from).transpose()?)
    }

    async fn set_password_hash(
        &self,
        id: UserId,
        hash: &PasswordHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await?;
        let updated = diesel::update(users::table.find(id.as_uuid()))
            .set((
                users::password_hash.eq(hash.as_str()),
                users::updated_at.eq(at),
            ))
            .execute(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(updated == 1)
    }
}

/// Why the administrative change rolled back.
#[derive(Debug)]
enum UpdateTxError {
    NotFound,
    LastActiveAdmin,
    Pg(PgError),
}

impl From<diesel::result::Error> for UpdateTxError {
    fn from(error: diesel::result::Error) -> Self {
        UpdateTxError::Pg(error.into())
    }
}

impl From<PgError> for UpdateTxError {
    fn from(error: PgError) -> Self {
        UpdateTxError::Pg(error)
    }
}

fn is_active_admin(role: Role, is_active: bool) -> bool {
    is_active && role == Role::SystemAdmin
}

/// The administrative change: see [`UserAdministration::update`].
async fn update_tx(
    conn: &mut AsyncPgConnection,
    id: Uuid,
    change: UserChange,
    at: OffsetDateTime,
) -> Result<User, UpdateTxError> {
    // The user's row first: concurrent changes of one user apply one after the other, each
    // to the other's result.
    let row = users::table
        .find(id)
        .for_no_key_update()
        .select(UserRow::as_select())
        .first(conn)
        .await
        .optional()?
        .ok_or(UpdateTxError::NotFound)?;
    let current = User::try_from(row)?;
    let role = change.role.unwrap_or(current.role);
    let is_active = change.is_active.unwrap_or(current.is_active);

    if is_active_admin(current.role, current.is_active) && !is_active_admin(role, is_active) {
        // Two admins disabling each other would each see the other still active and both
        // commit. Every change that removes an admin queues on one lock instead; under READ
        // COMMITTED the count below then sees the committed result of the previous one.
        // Changes that add admins need no lock: a missed one only makes the check stricter.
        // No deadlock: the holder of this lock locks no other user's row.
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<BigInt, _>(LAST_ADMIN_LOCK_KEY)
            .execute(conn)
            .await?;
        let another_admin_remains = diesel::select(exists(
            users::table
                .filter(users::role.eq(Role::SystemAdmin.as_str()))
                .filter(users::is_active)
                .filter(users::id.ne(id)),
        ))
        .get_result::<bool>(conn)
        .await?;
        if !another_admin_remains {
            return Err(UpdateTxError::LastActiveAdmin);
        }
    }

    let row = diesel::update(users::table.find(id))
        .set((
            users::role.eq(role.as_str()),
            users::is_active.eq(is_active),
            users::updated_at.eq(at),
        ))
        .returning(UserRow::as_returning())
        .get_result(conn)
        .await?;
    Ok(User::try_from(row)?)
}

#[async_trait]
impl UserAdministration for PgUserRepository {
    /// One transaction: lock the user's row, and when the change takes an active
    /// `system_admin` away, take the last-admin advisory lock and check that another active
    /// admin remains; then update. A refused change rolls back, writing nothing.
    async fn update(
        &self,
        id: UserId,
        change: UserChange,
        at: OffsetDateTime,
    ) -> Result<User, UpdateUserError> {
        let mut pooled = self.pool.get().await.map_err(StoreError::from)?;
        let conn: &mut AsyncPgConnection = &mut pooled;
        let result = conn
            .transaction(async |conn| update_tx(conn, id.as_uuid(), change, at).await)
            .await;
        match result {
            Ok(user) => Ok(user),
            Err(UpdateTxError::NotFound) => Err(UpdateUserError::NotFound),
            Err(UpdateTxError::LastActiveAdmin) => Err(UpdateUserError::LastActiveAdmin),
            Err(UpdateTxError::Pg(error)) => Err(error.into()),
        }
    }
}
