//! The cleanup job (SPEC §5): expire what ran out, purge what is past retention.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::Ports;
use crate::error::DomainError;
use crate::model::{EndedBy, InvalidationReason, SessionId, UserId};
use crate::model::{SessionPolicy, SystemStatistics, hour_start};
use crate::ports::{SessionCache, SessionCleanup};
use time::OffsetDateTime;

/// Rows per batch: each batch is one short statement; fewer, larger batches cut the
/// per-statement cost of ending 1 000 000 sessions (make bench) while staying well under a
/// second per batch.
pub const CLEANUP_BATCH_SIZE: u32 = 20_000;

/// What a cleanup pass reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Another instance was running a pass; this one did nothing.
    pub skipped: bool,
    pub expired: usize,
    pub purged: u64,
}

/// Runs cleanup passes.
#[derive(Clone)]
pub struct CleanupService {
    ports: Ports,
    policy: Arc<SessionPolicy>,
    cleanup: Arc<dyn SessionCleanup>,
    cache: Option<Arc<dyn SessionCache>>,
}

impl std::fmt::Debug for CleanupService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CleanupService").finish_non_exhaustive()
    }
}

impl CleanupService {
    /// `cache`, when there is one, has the expired sessions pruned from its per-user index.
    pub fn new(
        ports: Ports,
        policy: Arc<SessionPolicy>,
        cleanup: Arc<dyn SessionCleanup>,
        cache: Option<Arc<dyn SessionCache>>,
    ) -> Self {
        Self {
            ports,
            policy,
            cleanup,
            cache,
        }
    }

    /// One pass: sessions past `expires_at` end with reason `expired`; sessions that ended
    /// more than the retention period ago are deleted; hourly statistics older than
    /// [`SystemStatistics::KEPT`] are forgotten.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn run_once(&self) -> Result<CleanupReport, DomainError> {
        let now = self.ports.clock.now();
        let purge_before = now - self.policy.history_retention;
        let outcome = self
            .cleanup
            .run_pass(
                now,
                purge_before,
                now - self.policy.revocation_memory(),
                CLEANUP_BATCH_SIZE,
            )
            .await?;
        Ok(match outcome {
            None => CleanupReport {
                skipped: true,
                ..CleanupReport::default()
            },
            Some(outcome) => {
                // Under the pass's turn, so that one instance an hour does it.
                let forget_before = hour_start(now) - SystemStatistics::KEPT;
                self.ports.statistics.forget_before(forget_before).await?;
                self.announce_expired(&outcome.expired);
                self.prune_cache(&outcome.expired, now).await;
                CleanupReport {
                    skipped: false,
                    expired: outcome.expired.len(),
                    purged: outcome.purged,
                }
            }
        })
    }

    /// Tells the session events of the sessions this pass expired, one call per user.
    fn announce_expired(&self, expired: &[(UserId, SessionId)]) {
        let mut by_user: HashMap<UserId, Vec<SessionId>> = HashMap::new();
        for (user, session) in expired {
            by_user.entry(*user).or_default().push(*session);
        }
        for (user, sessions) in by_user {
            let reason = InvalidationReason::Expired;
            self.ports
                .events
                .ended(user, &sessions, reason, EndedBy::System);
        }
    }

    /// Prunes the cache's index of each user who had a session expire (SPEC §5): their
    /// keys expired on their own. Best effort: the index entries also expire with the
    /// index.
    async fn prune_cache(&self, expired: &[(UserId, SessionId)], now: OffsetDateTime) {
        let Some(cache) = &self.cache else {
            return;
        };
        let users: HashSet<UserId> = expired.iter().map(|(user, _)| *user).collect();
        for user in users {
            let _ = cache.prune_index(user, now).await;
        }
    }
}

#[cfg(test)]
mod tests;
