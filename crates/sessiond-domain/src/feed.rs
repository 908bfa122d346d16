//! The revocation feed (SPEC §8): every instance reads the revocation log, remembers what
//! it hears, drops it from its near cache and marks it ended in Redis, so that a session
//! ended on any instance is refused on all of them, even when the instance that ended it
//! cannot reach Redis. How far it has read decides whether the caches may answer
//! ([`CacheTrust`]); its heartbeats tell the other instances how far that is.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::StoreError;
use crate::model::{RevocationMemory, SessionId, UserId};
use crate::ports::{
    Clock, Heartbeat, Heartbeats, LogPosition, NearCache, PublishedHeartbeat, RevocationLog,
    SessionCache,
};
use crate::trust::CacheTrust;

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

/// How far the log has been read.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Where the next read starts; `None` before the first read.
    position: Option<LogPosition>,
    /// The newest entry read so far.
    newest: Option<LogPosition>,
}

/// What the heartbeats have shown of the other instances.
#[derive(Debug, Default)]
struct Peers {
    /// Those whose heartbeat was current at the last exchange.
    current: HashSet<Uuid>,
    /// Those that fell silent (a heartbeat older than half the bound, or gone), and when
    /// this instance noticed: one may be cut off from Redis and still revoking through
    /// PostgreSQL, so its silence vouches for nothing until a read of the log that began
    /// after it has succeeded here.
    silent: HashMap<Uuid, OffsetDateTime>,
}

/// Reads the revocation log into this instance's [`RevocationMemory`] and the caches.
pub struct RevocationFeed {
    log: Arc<dyn RevocationLog>,
    memory: Arc<RevocationMemory>,
    cache: Option<Arc<dyn SessionCache>>,
    near: Option<Arc<dyn NearCache>>,
    trust: Option<Arc<CacheTrust>>,
    clock: Arc<dyn Clock>,
    instance: Uuid,
    progress: Mutex<Progress>,
    status: Mutex<FeedStatus>,
    peers: Mutex<Peers>,
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
            near: None,
            trust: None,
            clock,
            instance: Uuid::nil(),
            progress: Mutex::new(Progress::default()),
            status: Mutex::new(FeedStatus::default()),
            peers: Mutex::new(Peers::default()),
        }
    }

    /// Also drops every revocation it hears from `near`.
    #[must_use]
    pub fn with_near_cache(mut self, near: Arc<dyn NearCache>) -> Self {
        self.near = Some(near);
        self
    }

    /// Also reports every read, and every heartbeat exchange, to `trust`; `instance` names
    /// this process in the heartbeats (random per process).
    #[must_use]
    pub fn with_trust(mut self, trust: Arc<CacheTrust>, instance: Uuid) -> Self {
        self.trust = Some(trust);
        self.instance = instance;
        self
    }

    /// This instance's id in the heartbeats.
    pub fn instance(&self) -> Uuid {
        self.instance
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
        let from = self.progress().position;
        // Taken before the read: the read sees everything committed before it started.
        let started = self.clock.now();
        if let Some(trust) = &self.trust {
            trust.read_started(started);
        }
        let batch = match self.log.read(from).await {
            Ok(batch) => batch,
            Err(error) => {
                if let Some(trust) = &self.trust {
                    trust.read_failed();
                }
                self.update_status(|status| status.failed_reads += 1);
                return Err(error);
            }
        };
        let applied = self.apply(&batch.revocations, started).await;
        {
            let mut progress = self.progress.lock().unwrap_or_else(PoisonError::into_inner);
            progress.position = Some(progress.position.map_or(batch.next, |p| p.max(batch.next)));
            progress.newest = progress.newest.max(batch.newest);
        }
        // Only now, with every revocation of the read applied, may the caches be trusted.
        if let Some(trust) = &self.trust {
            trust.read_succeeded(started);
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
            let heard = self.log.wait(poll).await;
            self.hear(&heard).await;
        }
    }

    /// Applies revocations that news of the log named, before the read that follows it:
    /// one round trip sooner out of the caches. Only a read moves the trust
    /// ([`CacheTrust`]): news can be lost, so it never shows that nothing else happened.
    pub async fn hear(&self, revocations: &[crate::model::Revocation]) {
        if revocations.is_empty() {
            return;
        }
        let applied = self.apply(revocations, self.clock.now()).await;
        self.update_status(|status| status.applied += applied as u64);
    }

    /// Publishes how far this instance has read and learns how far the others have; the
    /// caches stay vouched for (while the log cannot be read) for half the bound after an
    /// exchange that shows no instance has read an entry this one may lack and none has
    /// fallen silent. Run it eight times per bound, with the log read four times: a
    /// revocation is read somewhere within a quarter of the bound, published within an
    /// eighth more, seen here within another eighth, and the vouch given just before lapses
    /// half a bound later at the latest, even when no exchange succeeds after it. An
    /// instance that cannot publish (cut off from Redis, perhaps still revoking) is silent
    /// here half a bound after its last heartbeat, so no vouch outlives the bound either.
    /// `keep_for` is how long the store keeps a heartbeat that is no longer renewed.
    pub async fn beat(&self, heartbeats: &dyn Heartbeats, keep_for: Duration) {
        let Some(trust) = &self.trust else {
            return;
        };
        let own = self.own_heartbeat();
        let started = self.clock.now();
        let exchanged = heartbeats.exchange(&own, keep_for).await;
        let vouch = match (&exchanged, self.progress().position) {
            (Ok(all), Some(position)) => self.peers_vouch(all, position, started, trust),
            _ => false,
        };
        if vouch {
            trust.vouch_until(started + trust.bound() / 2);
        } else {
            trust.withdraw_vouch();
        }
    }

    /// Publishes this instance's final heartbeat: it serves no more requests, so the
    /// others need not count its silence against their vouch. Call it once the server
    /// has stopped.
    pub async fn leave(&self, heartbeats: &dyn Heartbeats, keep_for: Duration) {
        if self.trust.is_some() {
            // Best effort: if it fails, the others only count this instance as silent.
            let _ = heartbeats.leave(&self.own_heartbeat(), keep_for).await;
        }
    }

    fn own_heartbeat(&self) -> Heartbeat {
        let progress = self.progress();
        Heartbeat {
            instance: self.instance,
            position: progress.position.unwrap_or(LogPosition(0)),
            newest: progress.newest,
        }
    }

    /// Whether the other instances' heartbeats, read at `now`, vouch for this instance at
    /// `position`: none has read an entry at or beyond it, and none is silent.
    fn peers_vouch(
        &self,
        all: &[PublishedHeartbeat],
        position: LogPosition,
        now: OffsetDateTime,
        trust: &CacheTrust,
    ) -> bool {
        let current_within = trust.bound().unsigned_abs() / 2;
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ahead = false;
        let mut current = HashSet::new();
        let mut left = HashSet::new();
        for peer in all.iter().filter(|p| p.heartbeat.instance != self.instance) {
            let id = peer.heartbeat.instance;
            ahead |= peer
                .heartbeat
                .newest
                .is_some_and(|newest| newest >= position);
            if peer.left {
                left.insert(id);
                peers.silent.remove(&id);
            } else if peer.age <= current_within {
                current.insert(id);
                peers.silent.remove(&id);
            } else {
                peers.silent.entry(id).or_insert(now);
            }
        }
        // Current at the last exchange and gone from this one: its entry expired.
        let gone: Vec<Uuid> = peers
            .current
            .iter()
            .filter(|id| !current.contains(id) && !left.contains(id))
            .copied()
            .collect();
        for id in gone {
            peers.silent.entry(id).or_insert(now);
        }
        peers.current = current;
        // What a silent instance committed before it fell silent is held here once a read
        // that began after that has succeeded.
        if let Some(caught_up_to) = trust.caught_up_to() {
            peers.silent.retain(|_, noticed| *noticed >= caught_up_to);
        }
        !ahead && peers.silent.is_empty()
    }

    fn progress(&self) -> Progress {
        *self.progress.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Remembers the revocations not yet known here, drops them from the near cache and
    /// marks them ended in Redis.
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
            // After remembering: a near-cache fill racing with this checks the memory after
            // inserting, so one of the two always removes the entry.
            if let Some(near) = &self.near {
                near.remove(revocation.session_id);
            }
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
