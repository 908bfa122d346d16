//! The administrators' picture of the whole system (issue 19): sessions open by role, and
//! per hour sign-ins, failed sign-ins and sessions ended by reason.

use time::{Duration, OffsetDateTime, UtcOffset};

use super::{InvalidationReason, Role};

/// The start of the UTC hour `at` falls in: the key of the hourly counts.
pub fn hour_start(at: OffsetDateTime) -> OffsetDateTime {
    let at = at.to_offset(UtcOffset::UTC);
    at.replace_time(time::Time::MIDNIGHT) + Duration::hours(i64::from(at.hour()))
}

/// A count per role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoleCounts([u64; Role::ALL.len()]);

impl RoleCounts {
    pub fn add(&mut self, role: Role, count: u64) {
        self.0[role_index(role)] += count;
    }

    pub fn get(&self, role: Role) -> u64 {
        self.0[role_index(role)]
    }

    /// Every role with its count, in [`Role::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (Role, u64)> + '_ {
        Role::ALL.into_iter().zip(self.0)
    }
}

fn role_index(role: Role) -> usize {
    match role {
        Role::Guest => 0,
        Role::HotelEmployee => 1,
        Role::VendorAdmin => 2,
        Role::SystemAdmin => 3,
    }
}

/// A count per invalidation reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasonCounts([u64; InvalidationReason::ALL.len()]);

impl ReasonCounts {
    pub fn add(&mut self, reason: InvalidationReason, count: u64) {
        self.0[reason_index(reason)] += count;
    }

    pub fn get(&self, reason: InvalidationReason) -> u64 {
        self.0[reason_index(reason)]
    }

    /// Every reason with its count, in [`InvalidationReason::ALL`]'s order.
    pub fn iter(&self) -> impl Iterator<Item = (InvalidationReason, u64)> + '_ {
        InvalidationReason::ALL.into_iter().zip(self.0)
    }
}

fn reason_index(reason: InvalidationReason) -> usize {
    match reason {
        InvalidationReason::UserLogout => 0,
        InvalidationReason::EndedFromOtherDevice => 1,
        InvalidationReason::UserLogoutAll => 2,
        InvalidationReason::MaxSessionsExceeded => 3,
        InvalidationReason::PasswordChanged => 4,
        InvalidationReason::RoleChanged => 5,
        InvalidationReason::AccountDisabled => 6,
        InvalidationReason::AdminRevoked => 7,
        InvalidationReason::RefreshTokenReuse => 8,
        InvalidationReason::Expired => 9,
    }
}

/// What happened in one UTC hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HourlyCounts {
    /// The hour's start ([`hour_start`]).
    pub hour: OffsetDateTime,
    /// Sessions opened.
    pub sign_ins: u64,
    /// Sign-ins refused for a wrong e-mail or password.
    pub failed_sign_ins: u64,
    /// Sessions ended, by reason, in the hour they ended (an expired session at its
    /// `expires_at`, whenever cleanup marked it).
    pub ended: ReasonCounts,
}

impl HourlyCounts {
    /// An hour in which nothing happened.
    pub fn empty(hour: OffsetDateTime) -> Self {
        Self {
            hour,
            sign_ins: 0,
            failed_sign_ins: 0,
            ended: ReasonCounts::default(),
        }
    }

    /// Adds `other`'s counts to these.
    pub fn merge(&mut self, other: &HourlyCounts) {
        self.sign_ins += other.sign_ins;
        self.failed_sign_ins += other.failed_sign_ins;
        for (reason, count) in other.ended.iter() {
            self.ended.add(reason, count);
        }
    }
}

/// What a statistics store holds: the sessions open now, by role, and the counts of the
/// hours asked for, in any order, possibly several entries per hour and none for an hour
/// in which nothing happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredStatistics {
    /// Sessions not ended in storage. Includes sessions past `expires_at` that cleanup
    /// has not ended yet (at most one cleanup interval's worth): they are counted until
    /// cleanup ends them as `expired`, in the hour they expired.
    pub open_by_role: RoleCounts,
    pub hours: Vec<HourlyCounts>,
}

/// The answer of the statistics endpoint: every hour of the window, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemStatistics {
    pub generated_at: OffsetDateTime,
    /// See [`StoredStatistics::open_by_role`].
    pub live_by_role: RoleCounts,
    /// One entry per hour, oldest first, the last being the hour of `generated_at`.
    pub hours: Vec<HourlyCounts>,
}

impl SystemStatistics {
    /// The hours shown: the current one and the 23 before it.
    pub const HOURS: i64 = 24;
    /// How long hourly counts are kept: a week, for a look further back than the window
    /// (in the database) at the price of a few thousand small rows.
    pub const KEPT: Duration = Duration::days(7);

    /// The first hour shown at `now`.
    pub fn window_start(now: OffsetDateTime) -> OffsetDateTime {
        hour_start(now) - Duration::hours(Self::HOURS - 1)
    }

    /// The stored figures laid out as the window at `now`: every hour present, zeros
    /// where nothing was stored, entries outside the window ignored.
    pub fn at(now: OffsetDateTime, stored: StoredStatistics) -> Self {
        let start = Self::window_start(now);
        let mut hours: Vec<HourlyCounts> = (0..Self::HOURS)
            .map(|i| HourlyCounts::empty(start + Duration::hours(i)))
            .collect();
        for counts in &stored.hours {
            let offset = (hour_start(counts.hour) - start).whole_hours();
            if let Some(slot) = usize::try_from(offset).ok().and_then(|i| hours.get_mut(i)) {
                slot.merge(counts);
            }
        }
        Self {
            generated_at: now,
            live_by_role: stored.open_by_role,
            hours,
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn hours_start_on_the_utc_hour() {
        assert_eq!(
            hour_start(datetime!(2026-12-22 10:59:59.999 UTC)),
            datetime!(2026-12-22 10:00 UTC)
        );
        // Half-hour zones: the UTC hour, not the local one.
        assert_eq!(
            hour_start(datetime!(2026-12-22 16:10 +05:30)),
            datetime!(2026-12-22 10:00 UTC)
        );
    }

    #[test]
    fn every_role_and_reason_has_its_own_slot() {
        let mut roles = RoleCounts::default();
        for (i, role) in Role::ALL.into_iter().enumerate() {
            roles.add(role, i as u64 + 1);
        }
        assert_eq!(
            roles.iter().map(|(_, n)| n).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        let mut reasons = ReasonCounts::default();
        for (i, reason) in InvalidationReason::ALL.into_iter().enumerate() {
            reasons.add(reason, i as u64);
            assert_eq!(reasons.get(reason), i as u64);
        }
    }

    #[test]
    fn the_window_has_every_hour_oldest_first_and_merges_entries() {
        let now = datetime!(2026-12-22 10:30 UTC);
        let mut in_window = HourlyCounts::empty(datetime!(2026-12-22 09:00 UTC));
        in_window.sign_ins = 2;
        in_window.ended.add(InvalidationReason::Expired, 1);
        let mut same_hour = HourlyCounts::empty(datetime!(2026-12-22 09:00 UTC));
        same_hour.sign_ins = 3;
        same_hour.failed_sign_ins = 4;
        let mut too_old = HourlyCounts::empty(datetime!(2026-12-21 10:00 UTC));
        too_old.sign_ins = 100;
        let mut roles = RoleCounts::default();
        roles.add(Role::Guest, 7);
        let stats = SystemStatistics::at(
            now,
            StoredStatistics {
                open_by_role: roles,
                hours: vec![in_window, too_old, same_hour],
            },
        );
        assert_eq!(stats.hours.len(), 24);
        assert_eq!(stats.hours[0].hour, datetime!(2026-12-21 11:00 UTC));
        assert_eq!(stats.hours[23].hour, datetime!(2026-12-22 10:00 UTC));
        let nine = stats.hours[22];
        assert_eq!((nine.sign_ins, nine.failed_sign_ins), (5, 4));
        assert_eq!(nine.ended.get(InvalidationReason::Expired), 1);
        assert_eq!(stats.hours.iter().map(|h| h.sign_ins).sum::<u64>(), 5);
        assert_eq!(stats.live_by_role.get(Role::Guest), 7);
    }
}
