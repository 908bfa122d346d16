//! Whether this instance may answer from its caches (SPEC §8, the revocation bound).
//!
//! The caches (the near cache, Redis) may hold a session that another instance has just
//! ended; the revocation feed is what makes them safe. So they are trusted only while the
//! feed shows that this instance holds every revocation committed more than the bound ago.
//! Beyond that the instance validates against the durable store, and when it cannot reach
//! that either, it keeps answering from Redis (never from the near cache alone) only while
//! the other instances' heartbeats vouch that none of them has read a revocation it lacks;
//! otherwise it fails closed.
//!
//! Every request asks [`CacheTrust::mode`]: a few atomic loads, no lock.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// How a request is validated now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidationMode {
    /// The feed is within the bound: near cache, then Redis, then the store.
    Cached,
    /// The feed is behind but the store answers: validate against the store alone.
    StoreOnly,
    /// The feed is behind and the store is unreachable, but the heartbeats vouch that no
    /// instance has read a revocation this one lacks: Redis keeps answering, the near cache
    /// does not. The vouch shows what the other instances have *read*; when every feed is
    /// slow (a loaded database), a revocation may be committed that nobody has read yet.
    /// Its instance wrote a tombstone to Redis before answering, so Redis refuses it.
    Vouched,
    /// The feed is behind, the store is unreachable and nothing vouches: refuse (503).
    Closed,
}

impl ValidationMode {
    pub const ALL: [Self; 4] = [Self::Cached, Self::StoreOnly, Self::Vouched, Self::Closed];

    /// The name metrics and logs use.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Cached => "cached",
            Self::StoreOnly => "store_only",
            Self::Vouched => "vouched",
            Self::Closed => "closed",
        }
    }

    /// Whether the near cache may answer: only while the feed is within the bound, since
    /// nothing but the feed removes an entry that another instance revoked.
    pub const fn trusts_near_cache(self) -> bool {
        matches!(self, Self::Cached)
    }
}

/// Never: no read has succeeded yet, no vouch was given.
const NEVER: i64 = i64::MIN;

fn micros(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

/// What the feed and the heartbeats have shown, and the mode that follows from it.
#[derive(Debug)]
pub struct CacheTrust {
    bound: Duration,
    /// Every revocation committed before this instant (unix µs) is held here.
    caught_up_to: AtomicI64,
    /// A read of the log that has been running since this instant (unix µs); `NEVER` when
    /// none is running. A read in flight for half the bound may hang on a link cut without
    /// a reset: the heartbeats may then vouch for the caches, as when a read fails. Unlike a
    /// failed read it never fails closed on its own: it may only be slow (a loaded
    /// machine), so without a vouch the store is asked, and its own deadline decides.
    reading_since: AtomicI64,
    /// The last read of the log failed.
    read_failed: AtomicBool,
    /// The heartbeats vouch for the caches until this instant (unix µs).
    vouched_until: AtomicI64,
    /// Hysteresis: once the bound was missed, the caches are trusted again only when the
    /// feed is within half of it, so that a feed hovering at the bound does not flap.
    distrusting: AtomicBool,
}

impl CacheTrust {
    /// Trust that requires every revocation older than `bound` to be held.
    pub fn new(bound: Duration) -> Self {
        Self {
            bound,
            caught_up_to: AtomicI64::new(NEVER),
            reading_since: AtomicI64::new(NEVER),
            read_failed: AtomicBool::new(false),
            vouched_until: AtomicI64::new(NEVER),
            distrusting: AtomicBool::new(false),
        }
    }

    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// The feed starts a read of the log at `at`.
    pub fn read_started(&self, at: OffsetDateTime) {
        self.reading_since.store(micros(at), Ordering::Release);
    }

    /// The feed's read that started at `started` succeeded: every revocation committed
    /// before it is held.
    pub fn read_succeeded(&self, started: OffsetDateTime) {
        self.caught_up_to
            .fetch_max(micros(started), Ordering::AcqRel);
        self.read_failed.store(false, Ordering::Release);
        self.reading_since.store(NEVER, Ordering::Release);
    }

    /// The feed's read failed: the store is unreachable from here.
    pub fn read_failed(&self) {
        self.read_failed.store(true, Ordering::Release);
        self.reading_since.store(NEVER, Ordering::Release);
    }

    /// The heartbeats vouch for the caches until `until`.
    pub fn vouch_until(&self, until: OffsetDateTime) {
        self.vouched_until.store(micros(until), Ordering::Release);
    }

    /// The heartbeats no longer vouch (one shows a revocation this instance lacks, or they
    /// cannot be read).
    pub fn withdraw_vouch(&self) {
        self.vouched_until.store(NEVER, Ordering::Release);
    }

    /// Every revocation committed before this instant is held here; `None` before the
    /// first successful read.
    pub fn caught_up_to(&self) -> Option<OffsetDateTime> {
        let at = self.caught_up_to.load(Ordering::Acquire);
        (at != NEVER)
            .then(|| OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000).ok())
            .flatten()
    }

    /// How requests are validated at `now`.
    pub fn mode(&self, now: OffsetDateTime) -> ValidationMode {
        let now_us = micros(now);
        let bound_us = i64::try_from(self.bound.whole_microseconds()).unwrap_or(i64::MAX);
        let distrusting = self.distrusting.load(Ordering::Relaxed);
        let limit = if distrusting { bound_us / 2 } else { bound_us };
        let caught_up_to = self.caught_up_to.load(Ordering::Acquire);
        if caught_up_to != NEVER && now_us.saturating_sub(caught_up_to) <= limit {
            if distrusting {
                self.distrusting.store(false, Ordering::Relaxed);
            }
            return ValidationMode::Cached;
        }
        if !distrusting {
            self.distrusting.store(true, Ordering::Relaxed);
        }
        let reading_since = self.reading_since.load(Ordering::Acquire);
        let hanging = reading_since != NEVER && now_us.saturating_sub(reading_since) > bound_us / 2;
        let failed = self.read_failed.load(Ordering::Acquire);
        if !failed && !hanging {
            ValidationMode::StoreOnly
        } else if now_us <= self.vouched_until.load(Ordering::Acquire) {
            ValidationMode::Vouched
        } else if failed {
            ValidationMode::Closed
        } else {
            ValidationMode::StoreOnly
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const T0: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
    const BOUND: Duration = Duration::milliseconds(200);

    fn ms(n: i64) -> Duration {
        Duration::milliseconds(n)
    }

    #[test]
    fn nothing_is_trusted_before_the_first_read() {
        let trust = CacheTrust::new(BOUND);
        assert_eq!(trust.mode(T0), ValidationMode::StoreOnly);
        assert_eq!(trust.caught_up_to(), None);
    }

    #[test]
    fn the_caches_are_trusted_while_the_feed_is_within_the_bound() {
        let trust = CacheTrust::new(BOUND);
        trust.read_started(T0);
        trust.read_succeeded(T0);
        assert_eq!(trust.caught_up_to(), Some(T0));
        assert_eq!(trust.mode(T0 + ms(200)), ValidationMode::Cached);
        assert_eq!(trust.mode(T0 + ms(201)), ValidationMode::StoreOnly);
    }

    #[test]
    fn trust_comes_back_only_within_half_the_bound() {
        let trust = CacheTrust::new(BOUND);
        trust.read_succeeded(T0);
        assert_eq!(trust.mode(T0 + ms(300)), ValidationMode::StoreOnly);
        // Caught up again, but 150 ms behind at the check: still distrusted.
        trust.read_succeeded(T0 + ms(300));
        assert_eq!(trust.mode(T0 + ms(450)), ValidationMode::StoreOnly);
        assert_eq!(trust.mode(T0 + ms(400)), ValidationMode::Cached);
        // Trusted again, the full bound applies.
        assert_eq!(trust.mode(T0 + ms(450)), ValidationMode::Cached);
    }

    #[test]
    fn an_unreachable_store_fails_closed_unless_the_heartbeats_vouch() {
        let trust = CacheTrust::new(BOUND);
        trust.read_succeeded(T0);
        trust.read_failed();
        // A failed read changes nothing within the bound: what was read still holds.
        assert_eq!(trust.mode(T0 + ms(100)), ValidationMode::Cached);
        assert_eq!(trust.mode(T0 + ms(300)), ValidationMode::Closed);
        trust.vouch_until(T0 + ms(400));
        assert_eq!(trust.mode(T0 + ms(400)), ValidationMode::Vouched);
        assert_eq!(trust.mode(T0 + ms(401)), ValidationMode::Closed);
        trust.vouch_until(T0 + ms(900));
        trust.withdraw_vouch();
        assert_eq!(trust.mode(T0 + ms(500)), ValidationMode::Closed);
    }

    #[test]
    fn a_read_that_hangs_for_half_the_bound_lets_the_heartbeats_vouch_but_never_closes() {
        let trust = CacheTrust::new(BOUND);
        trust.read_succeeded(T0);
        trust.read_started(T0 + ms(150));
        assert_eq!(trust.mode(T0 + ms(251)), ValidationMode::StoreOnly);
        trust.vouch_until(T0 + ms(400));
        assert_eq!(trust.mode(T0 + ms(250)), ValidationMode::StoreOnly);
        assert_eq!(trust.mode(T0 + ms(251)), ValidationMode::Vouched);
        // Slow, perhaps, not failed: without a vouch the store is asked.
        assert_eq!(trust.mode(T0 + ms(401)), ValidationMode::StoreOnly);
        trust.read_succeeded(T0 + ms(150));
        assert_eq!(trust.mode(T0 + ms(240)), ValidationMode::Cached);
    }

    #[test]
    fn a_late_success_never_moves_the_feed_back() {
        let trust = CacheTrust::new(BOUND);
        trust.read_succeeded(T0 + ms(100));
        trust.read_succeeded(T0);
        assert_eq!(trust.caught_up_to(), Some(T0 + ms(100)));
    }
}
