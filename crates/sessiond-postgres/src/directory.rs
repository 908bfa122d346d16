//! [`UserDirectory`] on the `users` table: the administrators' search (issue 19).
//!
//! One statement per page: the filters given, `(created_at, id) < (…)` after a position,
//! newest first, `LIMIT`. Each filter shape has an index that answers it in order
//! (migration `2026-12-22-000012_user_search_indexes`), so a page costs the same among a
//! hundred users or a million; [`PgUserRepository::explain_search`] shows the plans (make
//! bench).

use async_trait::async_trait;
use diesel::debug_query;
use diesel::dsl::sql;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text, Timestamptz};
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

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

impl PgUserRepository {
    /// `EXPLAIN (ANALYZE, BUFFERS)` of the very statement a search with these arguments
    /// runs, with the same parameters bound (make bench reports one per search shape).
    ///
    /// # Errors
    /// [`PgError`] when no connection is available or the statement fails.
    pub async fn explain_search(
        &self,
        filter: &UserFilter,
        after: Option<UserPosition>,
        limit: u32,
    ) -> Result<String, PgError> {
        let statement = debug_query::<Pg, _>(&search_query(filter, after, limit)).to_string();
        // diesel's debug form: the SQL with `$n` placeholders, then " -- binds: [...]".
        let sql = statement.split(" -- binds: ").next().unwrap_or_default();
        // Bound in the order the filters were added in `search_query`.
        let mut query = diesel::sql_query(format!("EXPLAIN (ANALYZE, BUFFERS) {sql}")).into_boxed();
        if let Some(prefix) = &filter.email_prefix {
            query = query
                .bind::<Text, _>(prefix_pattern(prefix.as_str()))
                .bind::<Text, _>(LIKE_ESCAPE.to_string());
        }
        if let Some(role) = filter.role {
            query = query.bind::<Text, _>(role.as_str());
        }
        if let Some(is_active) = filter.is_active {
            query = query.bind::<Bool, _>(is_active);
        }
        if let Some(after) = after {
            query = query
                .bind::<Timestamptz, _>(after.created_at)
                .bind::<diesel::sql_types::Uuid, _>(after.id.as_uuid());
        }
        let query = query.bind::<BigInt, _>(i64::from(limit));
        let mut conn = self.pool().get().await?;
        let lines: Vec<PlanLine> = query.load(&mut conn).await?;
        Ok(lines
            .into_iter()
            .map(|line| line.line)
            .collect::<Vec<_>>()
            .join("\n"))
    }
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
    fn the_statement_binds_in_the_order_explain_search_binds() {
        let filter = UserFilter {
            email_prefix: sessiond_domain::model::EmailPrefix::parse("a").unwrap(),
            role: Some(sessiond_domain::model::Role::Guest),
            is_active: Some(true),
        };
        let after = UserPosition {
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            id: sessiond_domain::model::UserId::from_uuid(uuid::Uuid::nil()),
        };
        let sql = debug_query::<Pg, _>(&search_query(&filter, Some(after), 3)).to_string();
        let binds = sql.split(" -- binds: ").nth(1).unwrap();
        assert!(
            binds.starts_with(r#"["a%", "\\", "guest", true, "#),
            "{binds}"
        );
        assert!(binds.ends_with(", 3]"), "{binds}");
        assert!(sql.contains("LIKE $1 ESCAPE $2"), "{sql}");
    }

    #[test]
    fn like_metacharacters_in_a_prefix_match_themselves() {
        assert_eq!(prefix_pattern("eve"), "eve%");
        assert_eq!(prefix_pattern("a%b_c\\d"), "a\\%b\\_c\\\\d%");
    }
}
