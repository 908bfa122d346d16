//! In-memory adapters for the storage ports of `sessiond-domain`.
//!
//! Everything lives in one process and is gone when it stops: this is `make run` without
//! `DATABASE_URL` and the reference the other adapters' contract tests compare against. Each
//! store keeps its data behind one mutex, which makes every port operation atomic, so the
//! max-sessions rule and single-use refresh tokens hold under concurrency here too. A
//! sign-in also holds the users' lock while it stores its session (users first, then
//! sessions, always in that order), which serialises it with the user's security events.
//!
//! [`QuickNearCache`] is the odd one out: not a store but the in-process near cache that
//! every instance keeps in front of Redis, in production too (SPEC §8).

mod attempts;
mod near_cache;
mod sessions;
mod users;

pub use attempts::MemoryAttemptCounter;
pub use near_cache::QuickNearCache;
pub use sessions::MemorySessionRepository;
pub use users::MemoryUserRepository;

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks a store. A panic while holding the lock cannot leave our maps half-updated (no
/// operation panics between two writes), so a poisoned lock is safe to reuse.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
