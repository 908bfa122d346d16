use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use sessiond_domain::StoreError;
use sessiond_domain::ports::AttemptCounter;
use time::OffsetDateTime;

use crate::lock;

/// Failed sign-in counts of this process. With several instances each counts its own, so
/// the effective limit multiplies by the instance count: use the Redis counter there.
#[derive(Debug, Default)]
pub struct MemoryAttemptCounter {
    /// (key, window start) -> (count, window end).
    counts: Mutex<HashMap<(String, OffsetDateTime), (u32, OffsetDateTime)>>,
}

impl MemoryAttemptCounter {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl AttemptCounter for MemoryAttemptCounter {
    async fn failures(&self, key: &str, window_start: OffsetDateTime) -> Result<u32, StoreError> {
        Ok(lock(&self.counts)
            .get(&(key.to_owned(), window_start))
            .map_or(0, |(count, _)| *count))
    }

    async fn record_failure(
        &self,
        key: &str,
        window_start: OffsetDateTime,
        window_end: OffsetDateTime,
    ) -> Result<u32, StoreError> {
        let mut counts = lock(&self.counts);
        // Forget windows that ended before this one started: memory stays bounded by the
        // keys of the current window.
        counts.retain(|_, (_, end)| *end > window_start);
        let entry = counts
            .entry((key.to_owned(), window_start))
            .or_insert((0, window_end));
        entry.0 += 1;
        Ok(entry.0)
    }
}
