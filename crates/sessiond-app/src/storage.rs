//! Chooses the storage adapters from the settings (SPEC §7).

use std::sync::Arc;

use sessiond_domain::ports::{SessionRepository, UserRepository};
use sessiond_memory::{MemorySessionRepository, MemoryUserRepository};

use crate::config::Settings;

/// The storage ports, wired.
#[derive(Clone)]
pub struct Storage {
    pub users: Arc<dyn UserRepository>,
    pub sessions: Arc<dyn SessionRepository>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").finish_non_exhaustive()
    }
}

impl Storage {
    /// Process-local storage: everything is lost when the process stops.
    pub fn in_memory() -> Self {
        Self {
            users: Arc::new(MemoryUserRepository::new()),
            sessions: Arc::new(MemorySessionRepository::new()),
        }
    }

    /// The adapters the settings ask for.
    ///
    /// # Errors
    /// When a configured store cannot be reached or set up.
    pub async fn connect(settings: &Settings) -> anyhow::Result<Self> {
        if settings.database_url.is_some() || settings.redis_url.is_some() {
            anyhow::bail!(
                "DATABASE_URL / REDIS_URL are set, but this build has no PostgreSQL or Redis adapter yet"
            );
        }
        tracing::warn!(
            "no DATABASE_URL: using in-memory storage; every user and session is lost when sessiond stops"
        );
        Ok(Self::in_memory())
    }
}
