//! Counting attempts in fixed windows ([`ThrottlePolicy`]), shared by sign-in, password
//! changes and registration.
//!
//! A counter store that cannot answer refuses nothing: availability wins over throttling
//! during an outage of the counter store.

use time::OffsetDateTime;

use crate::error::DomainError;
use crate::model::ThrottlePolicy;
use crate::ports::AttemptCounter;

/// A key counted in fixed windows and the count at which it is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Limit {
    pub key: String,
    pub max: u32,
}

impl Limit {
    pub fn new(key: String, max: u32) -> Self {
        Self { key, max }
    }
}

/// Refuses while any of `limits` has reached its maximum in the window of `now`.
pub(super) async fn refuse_if_over(
    counter: &dyn AttemptCounter,
    policy: &ThrottlePolicy,
    limits: &[Limit],
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let (start, end) = policy.window_at(now);
    for limit in limits {
        let failures = counter.failures(&limit.key, start).await.unwrap_or(0);
        if failures >= limit.max {
            return Err(rate_limited(end, now));
        }
    }
    Ok(())
}

/// Counts one failure against each of `limits`, best effort.
pub(super) async fn record(
    counter: &dyn AttemptCounter,
    policy: &ThrottlePolicy,
    limits: &[Limit],
    now: OffsetDateTime,
) {
    let (start, end) = policy.window_at(now);
    for limit in limits {
        let _ = counter.record_failure(&limit.key, start, end).await;
    }
}

/// Counts this attempt against `limit` and refuses it when it is beyond the maximum: one
/// atomic increment, so parallel attempts cannot slip past the limit together.
pub(super) async fn count_or_refuse(
    counter: &dyn AttemptCounter,
    policy: &ThrottlePolicy,
    limit: &Limit,
    now: OffsetDateTime,
) -> Result<(), DomainError> {
    let (start, end) = policy.window_at(now);
    match counter.record_failure(&limit.key, start, end).await {
        Ok(count) if count > limit.max => Err(rate_limited(end, now)),
        _ => Ok(()),
    }
}

/// 429 until the window ends.
fn rate_limited(end: OffsetDateTime, now: OffsetDateTime) -> DomainError {
    let wait = (end - now).whole_seconds().max(1);
    DomainError::RateLimited {
        retry_after_seconds: u64::try_from(wait).unwrap_or(1),
    }
}
