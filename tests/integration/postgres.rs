//! The storage contract against the PostgreSQL adapters, each test on a fresh database
//! (cloned from a migrated template: see `sessiond_postgres::testing`). Needs a server at
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::sync::Arc;

use sessiond_postgres::{
    PgAttemptCounter, PgSessionCleanup, PgSessionRepository, PgUserRepository, testing,
};
use sessiond_tests::contract::Stores;
use sessiond_tests::lifecycle_contract::LifecycleStores;

#[allow(clippy::expect_used, reason = "a test without its database cannot run")]
async fn stores() -> Stores {
    let pool = testing::fresh_pool()
        .await
        .expect("a fresh PostgreSQL test database");
    let users = Arc::new(PgUserRepository::new(pool.clone()));
    Stores {
        users: users.clone(),
        administration: users,
        sessions: Arc::new(PgSessionRepository::new(pool)),
    }
}

sessiond_tests::storage_contract_tests!(stores().await);

/// All the lifecycle adapters on one pool of one fresh database.
#[allow(clippy::expect_used, reason = "a test without its database cannot run")]
async fn lifecycle_stores() -> LifecycleStores {
    let pool = testing::fresh_pool()
        .await
        .expect("a fresh PostgreSQL test database");
    let users = Arc::new(PgUserRepository::new(pool.clone()));
    LifecycleStores {
        users: users.clone(),
        administration: users,
        sessions: Arc::new(PgSessionRepository::new(pool.clone())),
        cleanup: Arc::new(PgSessionCleanup::new(pool.clone())),
        attempts: Arc::new(PgAttemptCounter::new(pool)),
    }
}

mod lifecycle {
    use super::lifecycle_stores;

    sessiond_tests::lifecycle_contract_tests!(lifecycle_stores().await);
}
