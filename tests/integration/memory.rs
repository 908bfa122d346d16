//! The storage contract against the in-memory adapters.

use std::sync::Arc;

use sessiond_memory::{MemorySessionRepository, MemoryUserRepository};
use sessiond_tests::contract::Stores;

async fn stores() -> Stores {
    Stores {
        users: Arc::new(MemoryUserRepository::new()),
        sessions: Arc::new(MemorySessionRepository::new()),
    }
}

sessiond_tests::storage_contract_tests!(stores().await);
