//! [`UserDirectory`] on the `users` table: the administrators' search (issue 19).
//!
//! One statement per page: the filters given, `(created_at, id) < (…)` after a position,
//! newest first, `LIMIT`. Each filter shape has an index that answers it in order
//! (migration `2026-12-22-000012_user_search_indexes`), so a page costs the same among a
//! hundred users or a million; [`search_statement`] shows the SQL, for `EXPLAIN` (make
//! bench).

use async_trait::async_trait;
use diesel::debug_query;
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Timestamptz};
use diesel_async::RunQueryDsl;
use sessiond_domain::StoreError;
use sessiond_domain::model::{User, UserFilter, UserPosition};
use sessiond_domain::ports::UserDirectory;

use crate::rows::UserRow;
use crate::schema::users;
use crate::{PgError, PgUserRepository};

/// `LIKE`'s escape character in the prefix patterns.
const LIKE_ESCAPE: char = '\\';

/// The `LIKE` pattern of addresses that start with `prefix`: its own `%`, `_` and `\`
/// are escaped, so that they match themselves.
pub fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 2);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            pattern.push(LIKE_ESCAPE);
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// The search's query, boxed: each filter adds its condition.
fn search_query<'a>(
    filter: &'a UserFilter,
    after: Option<UserPosition>,
    limit: u32,
) -> users::BoxedQuery<'a, Pg, diesel::dsl::AsSelect<UserRow, Pg>> {
    let mut query = users::table.select(UserRow::as_select()).into_boxed();
    if let Some(prefix) = &filter.email_prefix {
        query = query.filter(
            users::email
                .like(prefix_pattern(prefix.as_str()))
                .escape(LIKE_ESCAPE),
        );
    }
    if let Some(role) = filter.role {
        query = query.filter(users::role.eq(role.as_str()));
    }
    if let Some(is_active) = filter.is_active {
        query = query.filter(users::is_active.eq(is_active));
    }
    if let Some(after) = after {
        // A row comparison, which a btree range serves; diesel has no tuple `<`.
        query = query.filter(
            sql::<Bool>("(users.created_at, users.id) < (")
                .bind::<Timestamptz, _>(after.created_at)
                .sql(", ")
                .bind::<diesel::sql_types::Uuid, _>(after.id.as_uuid())
                .sql(")"),
        );
    }
    query
        .order((users::created_at.desc(), users::id.desc()))
        .limit(i64::from(limit))
}

/// The statement a search runs, with its parameters shown apart (diesel's debug form): for
/// `EXPLAIN` in the benchmark, so that the plans it reports are the service's own.
pub fn search_statement(filter: &UserFilter, after: Option<UserPosition>, limit: u32) -> String {
    debug_query::<Pg, _>(&search_query(filter, after, limit)).to_string()
}

#[async_trait]
impl UserDirectory for PgUserRepository {
    async fn search(
        &self,
        filter: &UserFilter,
        after: Option<UserPosition>,
        limit: u32,
    ) -> Result<Vec<User>, StoreError> {
        let mut conn = self.pool().get().await?;
        let rows = search_query(filter, after, limit)
            .load(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(rows
            .into_iter()
            .map(User::try_from)
            .collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_metacharacters_in_a_prefix_match_themselves() {
        assert_eq!(prefix_pattern("eve"), "eve%");
        assert_eq!(prefix_pattern("a%b_c\\d"), "a\\%b\\_c\\\\d%");
    }
}
