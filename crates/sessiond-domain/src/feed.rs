//! The revocation feed (SPEC §8): every instance reads the revocation log, remembers what
//! it hears and marks it ended in the cache, so that a session ended on any instance is
//! refused on all of them, even when the instance that ended it cannot reach the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

use crate::error::StoreError;
use crate::model::{RevocationMemory, SessionId, UserId};
use crate::ports::{Clock, LogPosition, RevocationLog, SessionCache};

/// Where the feed stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FeedStatus {
    /// Every revocation committed before this instant is applied here; `None` before the
    /// first successful read.
    pub caught_up_to: Option<OffsetDateTime>,
    /// Revocations applied since start-up (the ones heard for the first time).
    pub applied: u64,
    /// Reads of the log that failed since start-up.
    pub failed_reads: u64,
}

/// Reads the revocation log into this instance's [`RevocationMemory`] and the cache.
pub struct RevocationFeed {
    log: Arc<dyn RevocationLog>,
    memory: Arc<RevocationMemory>,
    cache: Option<Arc<dyn SessionCache>>,
    clock: Arc<dyn Clock>,
    position: Mutex<Option<LogPosition>>,
    status: Mutex<FeedStatus>,
}

impl std::fmt::Debug for RevocationFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationFeed")
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

impl RevocationFeed {
    /// A feed into `memory` (and `cache`, when there is one) from `log`.
    pub fn new(
        log: Arc<dyn RevocationLog>,
        memory: Arc<RevocationMemory>,
        cache: Option<Arc<dyn SessionCache>>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            log,
            memory,
            cache,
            clock,
            position: Mutex::new(None),
            status: Mutex::new(FeedStatus::default()),
        }
    }

    /// The feed's progress.
    pub fn status(&self) -> FeedStatus {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How many revocations this instance remembers now.
    pub fn remembered(&self) -> usize {
        self.memory.len()
    }

    /// Reads what the log holds beyond the last read and applies it; returns how many
    /// revocations were new here. The first call reads the whole log (start-up).
    ///
    /// # Errors
    /// [`StoreError`] when the log cannot be read; nothing is lost, the next call reads
    /// from the same place.
    pub async fn catch_up(&self) -> Result<usize, StoreError> {
        let from = *self.position.lock().unwrap_or_else(PoisonError::into_inner);
        // Taken before the read: the read sees everything committed before it started.
        let started = self.clock.now();
        let batch = match self.log.read(from).await {
            Ok(batch) => batch,
            Err(error) => {
                self.update_status(|status| status.failed_reads += 1);
                return Err(error);
            }
        };
        let applied = self.apply(&batch.revocations, started).await;
        {
            let mut position = self.position.lock().unwrap_or_else(PoisonError::into_inner);
            *position = Some(position.map_or(batch.next, |p| p.max(batch.next)));
        }
        self.update_status(|status| {
            status.caught_up_to = Some(status.caught_up_to.map_or(started, |t| t.max(started)));
            status.applied += applied as u64;
        });
        self.memory.forget_before(started);
        Ok(applied)
    }

    /// Catches up, then waits for news (or `poll` at most), forever. Read errors are
    /// retried on the next round; [`FeedStatus::caught_up_to`] shows how far behind it is.
    pub async fn run(&self, poll: Duration) {
        loop {
            let _ = self.catch_up().await;
            self.log.wait(poll).await;
        }
    }

    /// Remembers the revocations not yet known here and marks them ended in the cache.
    async fn apply(&self, revocations: &[crate::model::Revocation], now: OffsetDateTime) -> usize {
        let horizon = now - self.memory.window();
        let mut new: HashMap<UserId, (Vec<SessionId>, OffsetDateTime)> = HashMap::new();
        for revocation in revocations {
            // Older than the window: no token of the session can be presented any more.
            if revocation.revoked_at < horizon
                || self.memory.recall(revocation.session_id).is_some()
            {
                continue;
            }
            self.memory.remember(revocation);
            let until = revocation.revoked_at + self.memory.window();
            let (ids, latest) = new
                .entry(revocation.user_id)
                .or_insert_with(|| (Vec::new(), until));
            ids.push(revocation.session_id);
            *latest = (*latest).max(until);
        }
        let count = new.values().map(|(ids, _)| ids.len()).sum();
        if let Some(cache) = &self.cache {
            for (user_id, (ids, until)) in new {
                // Best effort: the memory refuses these sessions here whatever the cache
                // holds; the tombstone spares the instances that have not heard yet.
                let _ = cache.tombstone(user_id, &ids, until).await;
            }
        }
        count
    }

    fn update_status(&self, change: impl FnOnce(&mut FeedStatus)) {
        change(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

#[cfg(test)]
mod tests;
