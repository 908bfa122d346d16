//! The session policy: per-role timeouts and limits (SPEC §1) and the global token timings.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::{Role, Session, SessionId};

/// What sign-in does when the user already has the maximum of live sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitAction {
    /// End the least recently active session (reason `max_sessions_exceeded`).
    EvictOldest,
    /// Refuse the new sign-in (409 `max_sessions_reached`).
    Reject,
}

/// How long a role's sessions live and how many it may hold at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolePolicy {
    /// Sliding timeout: a refresh moves `expires_at` to now + this.
    pub timeout: Duration,
    /// Hard cap: `expires_at` never passes `created_at` + this, however often it slides.
    pub absolute_lifetime: Duration,
    /// Maximum of live sessions per user of this role.
    pub max_sessions: u32,
    /// What happens at the maximum.
    pub on_limit: LimitAction,
}

impl RolePolicy {
    /// SPEC §1's defaults. The absolute lifetimes are ours: long enough for a stay or a
    /// working week, short enough that a stolen refresh token dies on its own.
    pub const fn default_for(role: Role) -> Self {
        let (timeout_s, absolute_days, max_sessions) = match role {
            Role::Guest => (86_400, 30, 5),
            Role::HotelEmployee => (28_800, 7, 2),
            Role::VendorAdmin => (43_200, 7, 3),
            Role::SystemAdmin => (14_400, 1, 2),
        };
        Self {
            timeout: Duration::seconds(timeout_s),
            absolute_lifetime: Duration::days(absolute_days),
            max_sessions,
            on_limit: LimitAction::EvictOldest,
        }
    }

    /// When a session created at `created_at` expires if it is (re)started at `now`.
    pub fn expiry(&self, created_at: OffsetDateTime, now: OffsetDateTime) -> OffsetDateTime {
        (now + self.timeout).min(created_at + self.absolute_lifetime)
    }
}

/// The policy of every role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolePolicies(BTreeMap<Role, RolePolicy>);

impl RolePolicies {
    /// Replaces one role's policy.
    pub fn set(&mut self, role: Role, policy: RolePolicy) {
        self.0.insert(role, policy);
    }

    /// The policy of `role`.
    pub fn get(&self, role: Role) -> RolePolicy {
        self.0
            .get(&role)
            .copied()
            .unwrap_or_else(|| RolePolicy::default_for(role))
    }
}

impl Default for RolePolicies {
    fn default() -> Self {
        Self(
            Role::ALL
                .into_iter()
                .map(|role| (role, RolePolicy::default_for(role)))
                .collect(),
        )
    }
}

/// How many failed sign-ins (and password checks, and registrations) are tolerated before
/// they are refused for a while.
///
/// Failures are counted in fixed windows per account (the e-mail as typed, so unknown
/// addresses are limited too) and per client address; at the limit, every sign-in for that
/// key is refused until the window ends, even with the right password. A device that
/// signed in before and presents its device token is counted on its own instead, under
/// the account's limit, so that strangers cannot lock its owner out. Wrong current
/// passwords of a password change are counted per user under the account's limit too, and
/// registrations per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottlePolicy {
    pub window: Duration,
    pub max_failures_per_account: u32,
    pub max_failures_per_ip: u32,
    /// Registrations (successful or not) from one client address per window.
    pub max_registrations_per_ip: u32,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            window: Duration::minutes(15),
            max_failures_per_account: 5,
            max_failures_per_ip: 50,
            max_registrations_per_ip: 20,
        }
    }
}

impl ThrottlePolicy {
    /// The window that contains `now`: `[start, end)`, aligned on the Unix epoch.
    pub fn window_at(&self, now: OffsetDateTime) -> (OffsetDateTime, OffsetDateTime) {
        let window = self.window.whole_seconds().max(1);
        let start = now.unix_timestamp().div_euclid(window) * window;
        let start = OffsetDateTime::from_unix_timestamp(start).unwrap_or(now);
        (start, start + Duration::seconds(window))
    }
}

/// Everything the use cases need to know about timing and limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    pub roles: RolePolicies,
    /// Lifetime of an access token (JWT); never beyond its session's `expires_at`.
    pub access_token_ttl: Duration,
    /// Clients refresh when less than this is left on the access token.
    pub refresh_threshold: Duration,
    /// How long past its `exp` the verifier still accepts an access token.
    pub token_leeway: Duration,
    /// A session's stored `last_activity` may lag by at most this much.
    pub activity_interval: Duration,
    /// After a rotation, the previous refresh token is answered with a plain 401 (two tabs
    /// racing) for this long; later it is treated as stolen.
    pub refresh_grace: Duration,
    /// How long ended sessions stay visible in the history (and are kept at all).
    pub history_retention: Duration,
    pub sign_in_throttle: ThrottlePolicy,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            roles: RolePolicies::default(),
            access_token_ttl: Duration::seconds(900),
            refresh_threshold: Duration::seconds(300),
            token_leeway: Duration::seconds(5),
            activity_interval: Duration::seconds(60),
            refresh_grace: Duration::seconds(10),
            history_retention: Duration::days(30),
            sign_in_throttle: ThrottlePolicy::default(),
        }
    }
}

impl SessionPolicy {
    /// When an access token issued at `now` for a session expiring at `session_expires_at`
    /// expires.
    pub fn access_token_expiry(
        &self,
        now: OffsetDateTime,
        session_expires_at: OffsetDateTime,
    ) -> OffsetDateTime {
        (now + self.access_token_ttl).min(session_expires_at)
    }

    /// How long every instance remembers a revocation: the longest a token issued before it
    /// can still be presented (the access-token lifetime, the verifier's leeway, and a
    /// margin for clocks that disagree).
    pub fn revocation_memory(&self) -> Duration {
        self.access_token_ttl + self.token_leeway + Duration::seconds(60)
    }

    /// Whether a session last touched at `last_activity` must have its activity stored now.
    pub fn activity_is_due(&self, last_activity: OffsetDateTime, now: OffsetDateTime) -> bool {
        now - last_activity >= self.activity_interval
    }

    /// Whether a refresh token rotated at `rotated_at` is still within its grace window.
    pub fn within_refresh_grace(&self, rotated_at: OffsetDateTime, now: OffsetDateTime) -> bool {
        now < rotated_at + self.refresh_grace
    }
}

/// The sessions a new sign-in evicts under [`LimitAction::EvictOldest`]: with `live` the
/// user's live sessions, the least recently active ones beyond room for one more.
/// Adapters that cannot call this (SQL) implement the same order: `last_activity`
/// ascending, then `created_at`, then id.
pub fn eviction_victims(live: &[Session], max_sessions: u32) -> Vec<SessionId> {
    let keep = (max_sessions as usize).saturating_sub(1);
    let excess = live.len().saturating_sub(keep);
    let mut by_age: Vec<&Session> = live.iter().collect();
    by_age.sort_by_key(|s| (s.last_activity, s.created_at, s.id));
    by_age.into_iter().take(excess).map(|s| s.id).collect()
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn defaults_match_the_spec_table() {
        let roles = RolePolicies::default();
        let expected = [
            (Role::Guest, 86_400, 5),
            (Role::HotelEmployee, 28_800, 2),
            (Role::VendorAdmin, 43_200, 3),
            (Role::SystemAdmin, 14_400, 2),
        ];
        for (role, timeout, max) in expected {
            assert_eq!(roles.get(role).timeout, Duration::seconds(timeout));
            assert_eq!(roles.get(role).max_sessions, max);
        }
    }

    #[test]
    fn expiry_slides_but_never_passes_the_absolute_lifetime() {
        let policy = RolePolicy::default_for(Role::SystemAdmin);
        let created = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(
            policy.expiry(created, created),
            created + Duration::hours(4)
        );
        let late = created + Duration::hours(22);
        assert_eq!(policy.expiry(created, late), created + Duration::days(1));
    }

    #[test]
    fn throttle_windows_are_aligned_and_contain_now() {
        let policy = ThrottlePolicy::default();
        let now = datetime!(2026-01-01 10:07:30 UTC);
        assert_eq!(
            policy.window_at(now),
            (
                datetime!(2026-01-01 10:00 UTC),
                datetime!(2026-01-01 10:15 UTC)
            )
        );
        let edge = datetime!(2026-01-01 10:15 UTC);
        assert_eq!(policy.window_at(edge).0, edge);
    }

    #[test]
    fn eviction_takes_the_least_recently_active_beyond_room_for_one_more() {
        use crate::model::{DeviceInfo, RefreshState, RefreshToken, SessionStatus, UserId};
        let now = datetime!(2026-01-01 00:00 UTC);
        let session = |byte: u8, minutes_ago: i64| {
            let id = SessionId::from_random_bytes([byte; 16]);
            Session {
                id,
                user_id: UserId::from_random_bytes([0; 16]),
                role: Role::Guest,
                hotel_id: None,
                device: DeviceInfo::unknown(),
                device_name: None,
                ip_address: None,
                user_agent: None,
                created_at: now - Duration::hours(1),
                last_activity: now - Duration::minutes(minutes_ago),
                expires_at: now + Duration::hours(1),
                status: SessionStatus::Active,
                refresh: RefreshState {
                    current: RefreshToken::new(id, [0; 32]).hash(),
                    previous: None,
                    rotated_at: None,
                },
                ended_by: None,
                version: 1,
            }
        };
        let live = vec![session(1, 5), session(2, 50), session(3, 20)];
        assert_eq!(
            eviction_victims(&live, 3),
            vec![SessionId::from_random_bytes([2; 16])]
        );
        assert_eq!(
            eviction_victims(&live, 2),
            vec![
                SessionId::from_random_bytes([2; 16]),
                SessionId::from_random_bytes([3; 16])
            ]
        );
        assert!(eviction_victims(&live, 4).is_empty());
    }

    #[test]
    fn access_tokens_never_outlive_their_session() {
        let policy = SessionPolicy::default();
        let now = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(
            policy.access_token_expiry(now, now + Duration::hours(1)),
            now + Duration::minutes(15)
        );
        assert_eq!(
            policy.access_token_expiry(now, now + Duration::minutes(5)),
            now + Duration::minutes(5)
        );
    }

    #[test]
    fn revocations_are_remembered_as_long_as_a_token_issued_before_can_be_presented() {
        let policy = SessionPolicy {
            access_token_ttl: Duration::seconds(300),
            token_leeway: Duration::seconds(7),
            ..SessionPolicy::default()
        };
        assert_eq!(policy.revocation_memory(), Duration::seconds(300 + 7 + 60));
        assert_eq!(
            SessionPolicy::default().revocation_memory(),
            Duration::seconds(900 + 5 + 60)
        );
    }
}
