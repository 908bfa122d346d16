//! The storage contract against the in-memory adapters.

use std::sync::Arc;

use sessiond_memory::{MemoryAttemptCounter, MemorySessionRepository, MemoryUserRepository};
use sessiond_tests::admin_contract::AdminStores;
use sessiond_tests::contract::Stores;
use sessiond_tests::lifecycle_contract::LifecycleStores;

async fn stores() -> Stores {
    let users = Arc::new(MemoryUserRepository::new());
    Stores {
        users: users.clone(),
        administration: users.clone(),
        sessions: Arc::new(MemorySessionRepository::new(users)),
    }
}

sessiond_tests::storage_contract_tests!(stores().await);

async fn lifecycle_stores() -> LifecycleStores {
    let users = Arc::new(MemoryUserRepository::new());
    let sessions = Arc::new(MemorySessionRepository::new(users.clone()));
    LifecycleStores {
        users: users.clone(),
        administration: users,
        sessions: sessions.clone(),
        cleanup: sessions,
        attempts: Arc::new(MemoryAttemptCounter::new()),
    }
}

mod lifecycle {
    use super::lifecycle_stores;

    sessiond_tests::lifecycle_contract_tests!(lifecycle_stores().await);
}

async fn admin_stores() -> AdminStores {
    let users = Arc::new(MemoryUserRepository::new());
    let sessions = Arc::new(MemorySessionRepository::new(users.clone()));
    AdminStores {
        users: users.clone(),
        directory: users,
        sessions: sessions.clone(),
        cleanup: sessions.clone(),
        statistics: sessions,
    }
}

mod admin {
    use super::admin_stores;

    sessiond_tests::admin_contract_tests!(admin_stores().await);
}
