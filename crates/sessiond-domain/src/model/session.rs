//! A session: one sign-in on one device, and its lifecycle.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use time::OffsetDateTime;

use super::{DeviceInfo, RefreshTokenHash, Role, SessionId, UserId};

/// Why a session ended (SPEC §4). Stored as `invalidation_reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidationReason {
    /// The device signed itself out.
    UserLogout,
    /// The user ended it from another of their sessions.
    EndedFromOtherDevice,
    UserLogoutAll,
    MaxSessionsExceeded,
    PasswordChanged,
    RoleChanged,
    AccountDisabled,
    AdminRevoked,
    RefreshTokenReuse,
    Expired,
}

impl InvalidationReason {
    /// Every reason, in a stable order.
    pub const ALL: [InvalidationReason; 10] = [
        InvalidationReason::UserLogout,
        InvalidationReason::EndedFromOtherDevice,
        InvalidationReason::UserLogoutAll,
        InvalidationReason::MaxSessionsExceeded,
        InvalidationReason::PasswordChanged,
        InvalidationReason::RoleChanged,
        InvalidationReason::AccountDisabled,
        InvalidationReason::AdminRevoked,
        InvalidationReason::RefreshTokenReuse,
        InvalidationReason::Expired,
    ];

    /// The stored and JSON spelling.
    pub const fn as_str(self) -> &'static str {
        match self {
            InvalidationReason::UserLogout => "user_logout",
            InvalidationReason::EndedFromOtherDevice => "ended_from_other_device",
            InvalidationReason::UserLogoutAll => "user_logout_all",
            InvalidationReason::MaxSessionsExceeded => "max_sessions_exceeded",
            InvalidationReason::PasswordChanged => "password_changed",
            InvalidationReason::RoleChanged => "role_changed",
            InvalidationReason::AccountDisabled => "account_disabled",
            InvalidationReason::AdminRevoked => "admin_revoked",
            InvalidationReason::RefreshTokenReuse => "refresh_token_reuse",
            InvalidationReason::Expired => "expired",
        }
    }
}

impl fmt::Display for InvalidationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no invalidation reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown invalidation reason {0:?}")]
pub struct UnknownReason(pub String);

impl FromStr for InvalidationReason {
    type Err = UnknownReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|reason| reason.as_str() == s)
            .ok_or_else(|| UnknownReason(s.to_owned()))
    }
}

/// Who ended a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndedBy {
    /// The session's own user, from this device or another of theirs.
    Owner,
    /// This administrator.
    Administrator(UserId),
    /// sessiond itself: expiry, a full session list, a reused refresh token.
    System,
}

/// Where a session is in its life. Storage may spread this over `is_active`,
/// `invalidated_at` and `invalidation_reason`; the domain sees one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    /// Live until `expires_at`.
    Active,
    /// Ended at an instant, for a reason.
    Ended {
        at: OffsetDateTime,
        reason: InvalidationReason,
    },
}

/// What a session is worth at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Live,
    /// Active in storage but past `expires_at` (cleanup has not marked it yet).
    Expired,
    Ended(InvalidationReason),
}

/// The refresh-token state of a session: hashes only, never a raw token (SPEC §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshState {
    /// Hash of the one refresh token that may be used next.
    pub current: RefreshTokenHash,
    /// Hash of the token that `current` replaced, kept to recognise reuse.
    pub previous: Option<RefreshTokenHash>,
    /// When `previous` was replaced.
    pub rotated_at: Option<OffsetDateTime>,
}

/// One sign-in on one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// The user's role at sign-in; a role change ends the session, so while the session is
    /// live this is the user's role.
    pub role: Role,
    /// The user's hotel, copied at sign-in (an account's hotel never changes), so that
    /// whoever checks the session learns it without reading the user.
    pub hotel_id: Option<i64>,
    pub device: DeviceInfo,
    /// A name the user gave this device at sign-in, if any.
    pub device_name: Option<String>,
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_activity: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub status: SessionStatus,
    pub refresh: RefreshState,
    /// Who ended the session: `None` while it is active, and for a session whose end did
    /// not record it (ended before sessiond kept it).
    pub ended_by: Option<EndedBy>,
    /// The session's generation: 1 when created, bumped by the store on every change of
    /// state (a refresh, its end). Caches never replace a newer generation with an older
    /// one, so a slow copy cannot roll a session back.
    pub version: u64,
}

impl SessionStatus {
    /// Whether a session in this status that expires at `expires_at` may be used at `now`.
    /// The one definition of "live".
    pub fn liveness(self, expires_at: OffsetDateTime, now: OffsetDateTime) -> Liveness {
        match self {
            SessionStatus::Ended { reason, .. } => Liveness::Ended(reason),
            SessionStatus::Active if now >= expires_at => Liveness::Expired,
            SessionStatus::Active => Liveness::Live,
        }
    }
}

impl Session {
    /// Whether the session may be used at `now`.
    pub fn liveness(&self, now: OffsetDateTime) -> Liveness {
        self.status.liveness(self.expires_at, now)
    }

    /// Whether the session is live at `now`.
    pub fn is_live(&self, now: OffsetDateTime) -> bool {
        self.liveness(now) == Liveness::Live
    }

    /// When and why the session ended, if it did.
    pub fn ended(&self) -> Option<(OffsetDateTime, InvalidationReason)> {
        match self.status {
            SessionStatus::Active => None,
            SessionStatus::Ended { at, reason } => Some((at, reason)),
        }
    }
}

/// What validating a request needs to know of a session: everything but its refresh state.
/// Small enough for a cache entry of a few dozen bytes plus the User-Agent (bounded at the
/// edge: 512 bytes at most).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub id: SessionId,
    pub user_id: UserId,
    pub role: Role,
    /// See [`Session::hotel_id`].
    pub hotel_id: Option<i64>,
    pub device: DeviceInfo,
    pub device_name: Option<String>,
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_activity: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub status: SessionStatus,
    /// See [`Session::version`].
    pub version: u64,
}

impl SessionSummary {
    /// Whether the session may be used at `now`.
    pub fn liveness(&self, now: OffsetDateTime) -> Liveness {
        self.status.liveness(self.expires_at, now)
    }
}

impl From<&Session> for SessionSummary {
    fn from(session: &Session) -> Self {
        Self {
            id: session.id,
            user_id: session.user_id,
            role: session.role,
            hotel_id: session.hotel_id,
            device: session.device.clone(),
            device_name: session.device_name.clone(),
            ip_address: session.ip_address,
            user_agent: session.user_agent.clone(),
            created_at: session.created_at,
            last_activity: session.last_activity,
            expires_at: session.expires_at,
            status: session.status,
            version: session.version,
        }
    }
}

/// A request seen on a session: its `last_activity` moves forward to `at`, written behind
/// in batches (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionActivity {
    pub user_id: UserId,
    pub session_id: SessionId,
    pub at: OffsetDateTime,
}

/// What the caller's connection tells about a new session's device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewSessionContext {
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub device_name: Option<String>,
    /// The device token this device was given at an earlier sign-in, if it sent one back:
    /// a known device is throttled apart from strangers.
    pub device_token: Option<super::DeviceToken>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_through_its_name() {
        for reason in InvalidationReason::ALL {
            assert_eq!(reason.as_str().parse(), Ok(reason));
        }
        assert!("whatever".parse::<InvalidationReason>().is_err());
    }
}
