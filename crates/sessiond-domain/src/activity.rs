//! Activity written behind (SPEC §8): a request never waits for its `last_activity` write.
//! Validation notes the activity here; a flush, every `sessions.activity_flush_ms` and at
//! shutdown, writes the batch in one statement.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::error::StoreError;
use crate::model::{SessionActivity, SessionId};
use crate::ports::SessionRepository;

/// The activities noted since the last flush, one per session (the latest), bounded: while
/// the store is away the buffer fills up to its capacity and then drops new sessions'
/// activity (counted), never memory.
#[derive(Debug)]
pub struct ActivityBuffer {
    pending: Mutex<HashMap<SessionId, SessionActivity>>,
    capacity: usize,
    dropped: AtomicU64,
}

impl ActivityBuffer {
    /// The buffer's size when none is configured: a generous day's worth of sessions.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A buffer of at most `capacity` sessions.
    pub fn new(capacity: usize) -> Self {
        Self {
            pending: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            dropped: AtomicU64::new(0),
        }
    }

    /// Notes `activity`; a later one of the same session replaces it. Returns `false` when
    /// the buffer is full and the activity was dropped.
    pub fn record(&self, activity: SessionActivity) -> bool {
        let kept = keep_latest(&mut self.lock(), activity, self.capacity);
        if !kept {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        kept
    }

    /// Writes everything noted so far in one call; returns how many sessions it covered.
    ///
    /// # Errors
    /// [`StoreError`] when the store fails: the batch goes back into the buffer (newer
    /// activities noted meanwhile win) for the next flush.
    pub async fn flush(&self, store: &dyn SessionRepository) -> Result<usize, StoreError> {
        let batch: Vec<SessionActivity> = std::mem::take(&mut *self.lock()).into_values().collect();
        if batch.is_empty() {
            return Ok(0);
        }
        match store.record_activities(&batch).await {
            Ok(()) => Ok(batch.len()),
            Err(error) => {
                let mut pending = self.lock();
                for activity in batch {
                    if !keep_latest(&mut pending, activity, self.capacity) {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(error)
            }
        }
    }

    /// Sessions waiting for the next flush.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Activities dropped because the buffer was full, since start-up.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, SessionActivity>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Keeps the later of `activity` and what `pending` holds for its session; a new session
/// only while there is room.
fn keep_latest(
    pending: &mut HashMap<SessionId, SessionActivity>,
    activity: SessionActivity,
    capacity: usize,
) -> bool {
    let room = pending.len() < capacity;
    match pending.entry(activity.session_id) {
        Entry::Occupied(mut kept) => {
            if activity.at > kept.get().at {
                kept.insert(activity);
            }
            true
        }
        Entry::Vacant(slot) if room => {
            slot.insert(activity);
            true
        }
        Entry::Vacant(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use time::macros::datetime;

    use super::*;
    use crate::model::UserId;
    use crate::ports::MockSessionRepository;

    const T0: time::OffsetDateTime = datetime!(2026-04-01 09:00 UTC);

    fn activity(n: u8, seconds: i64) -> SessionActivity {
        SessionActivity {
            user_id: UserId::from_random_bytes([1; 16]),
            session_id: SessionId::from_random_bytes([n; 16]),
            at: T0 + Duration::seconds(seconds),
        }
    }

    #[tokio::test]
    async fn one_flush_writes_the_latest_activity_of_each_session_in_one_call() {
        let buffer = ActivityBuffer::new(10);
        buffer.record(activity(1, 5));
        buffer.record(activity(1, 3));
        buffer.record(activity(2, 1));
        let mut store = MockSessionRepository::new();
        store
            .expect_record_activities()
            .withf(|batch| {
                let mut batch = batch.to_vec();
                batch.sort_by_key(|a| a.at);
                batch == [activity(2, 1), activity(1, 5)]
            })
            .times(1)
            .returning(|_| Ok(()));
        assert_eq!(buffer.flush(&store).await.unwrap(), 2);
        assert!(buffer.is_empty());
        // Nothing noted: no call at all.
        assert_eq!(buffer.flush(&store).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_failed_flush_keeps_the_batch_and_newer_activity_wins() {
        let buffer = ActivityBuffer::new(10);
        buffer.record(activity(1, 5));
        let mut failing = MockSessionRepository::new();
        failing
            .expect_record_activities()
            .times(1)
            .returning(|_| Err(StoreError::Unavailable("down".into())));
        buffer.flush(&failing).await.unwrap_err();
        buffer.record(activity(1, 9));
        let mut store = MockSessionRepository::new();
        store
            .expect_record_activities()
            .withf(|batch| batch == [activity(1, 9)])
            .times(1)
            .returning(|_| Ok(()));
        buffer.flush(&store).await.unwrap();
    }

    #[test]
    fn a_full_buffer_drops_new_sessions_but_still_updates_known_ones() {
        let buffer = ActivityBuffer::new(2);
        assert!(buffer.record(activity(1, 1)));
        assert!(buffer.record(activity(2, 1)));
        assert!(!buffer.record(activity(3, 1)));
        assert!(buffer.record(activity(1, 7)));
        assert_eq!(buffer.len(), 2);
        assert_eq!(buffer.dropped(), 1);
    }
}
