//! [`AttemptCounter`] on the `sign_in_failures` table.
//!
//! A row is one key's failures in one window. Rows are not deleted here: a pass of
//! [`PgSessionCleanup`](crate::PgSessionCleanup) deletes those whose window has ended, in
//! batches, which keeps the table bounded by the keys of the current windows.

use async_trait::async_trait;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use sessiond_domain::StoreError;
use sessiond_domain::ports::AttemptCounter;
use time::OffsetDateTime;

use crate::schema::sign_in_failures;
use crate::{PgError, PgPool};

/// Failed sign-in counters in PostgreSQL, shared by every instance. Ended windows are
/// deleted by [`PgSessionCleanup::run_pass`](crate::PgSessionCleanup), not by this type.
#[derive(Debug, Clone)]
pub struct PgAttemptCounter {
    pool: PgPool,
}

impl PgAttemptCounter {
    /// A counter on `pool`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// A stored count as the port's type; the CHECK keeps it positive.
fn to_count(failures: i32) -> Result<u32, PgError> {
    u32::try_from(failures)
        .map_err(|_| PgError::corrupt("sign_in_failures", format!("negative count {failures}")))
}

#[async_trait]
impl AttemptCounter for PgAttemptCounter {
    async fn failures(&self, key: &str, window_start: OffsetDateTime) -> Result<u32, StoreError> {
        let mut conn = self.pool.get().await?;
        let failures = sign_in_failures::table
            .find((key, window_start))
            .select(sign_in_failures::failures)
            .first::<i32>(&mut conn)
            .await
            .optional()
            .map_err(PgError::from)?;
        Ok(failures.map(to_count).transpose()?.unwrap_or(0))
    }

    /// One upsert: parallel failures of one key each add one, none is lost.
    async fn record_failure(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        window_end: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let mut conn = self.pool.get().await?;
        let failures = diesel::insert_into(sign_in_failures::table)
            .values((
                sign_in_failures::key.eq(key),
                sign_in_failures::window_start.eq(window_start),
                sign_in_failures::window_end.eq(window_end),
                sign_in_failures::failures.eq(1),
            ))
            .on_conflict((sign_in_failures::key, sign_in_failures::window_start))
            .do_update()
            .set(sign_in_failures::failures.eq(sign_in_failures::failures + 1))
            .returning(sign_in_failures::failures)
            .get_result::<i32>(&mut conn)
            .await
            .map_err(PgError::from)?;
        Ok(to_count(failures)?)
    }
}
