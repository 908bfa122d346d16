//! Shared test fixtures: mocked ports, a fixed clock, ready-made users and sessions.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use time::OffsetDateTime;
use time::macros::datetime;

use super::{Ports, Principal};
use crate::model::{
    DeviceClass, DeviceInfo, Email, PasswordHash, RefreshState, RefreshToken, Role, Session,
    SessionId, SessionStatus, SessionSummary, User, UserId,
};
use crate::ports::{
    MockAttemptCounter, MockClock, MockDeviceClassifier, MockPasswordHasher, MockRandomSource,
    MockSessionEvents, MockSessionRepository, MockSessionStatistics, MockTokenCodec,
    MockUserRepository,
};

pub const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

/// The mocks, to be given expectations, then turned into [`Ports`].
pub struct Mocks {
    pub users: MockUserRepository,
    pub sessions: MockSessionRepository,
    pub hasher: MockPasswordHasher,
    pub tokens: MockTokenCodec,
    pub devices: MockDeviceClassifier,
    pub attempts: MockAttemptCounter,
    /// Accepts every event; a test that checks events replaces it.
    pub events: MockSessionEvents,
    /// Accepts every count; a test that checks counts replaces it.
    pub statistics: MockSessionStatistics,
    pub now: OffsetDateTime,
}

impl Mocks {
    /// Mocks with no expectations: any unexpected port call fails the test.
    pub fn new() -> Self {
        Self {
            users: MockUserRepository::new(),
            sessions: MockSessionRepository::new(),
            hasher: MockPasswordHasher::new(),
            tokens: MockTokenCodec::new(),
            devices: MockDeviceClassifier::new(),
            attempts: MockAttemptCounter::new(),
            events: quiet_events(),
            statistics: quiet_statistics(),
            now: NOW,
        }
    }

    /// Mocks whose attempt counter has no failures and counts nothing.
    pub fn unthrottled() -> Self {
        let mut mocks = Self::new();
        mocks.attempts.expect_failures().returning(|_, _| Ok(0));
        mocks
            .attempts
            .expect_record_failure()
            .returning(|_, _, _| Ok(1));
        mocks
    }

    pub fn into_ports(self) -> Ports {
        let mut clock = MockClock::new();
        let now = self.now;
        clock.expect_now().return_const(now);
        // Distinct, predictable bytes on every call.
        let counter = AtomicU8::new(1);
        let mut random = MockRandomSource::new();
        random
            .expect_bytes32()
            .returning(move || [counter.fetch_add(1, Ordering::Relaxed); 32]);
        Ports {
            users: Arc::new(self.users),
            sessions: Arc::new(self.sessions),
            hasher: Arc::new(self.hasher),
            tokens: Arc::new(self.tokens),
            devices: Arc::new(self.devices),
            clock: Arc::new(clock),
            random: Arc::new(random),
            attempts: Arc::new(self.attempts),
            events: Arc::new(self.events),
            statistics: Arc::new(self.statistics),
        }
    }
}

pub fn user(role: Role) -> User {
    User {
        id: UserId::from_random_bytes([1; 16]),
        email: Email::parse("alice@example.com").unwrap(),
        password_hash: PasswordHash::new("$argon2id$fixture".into()),
        role,
        hotel_id: (role == Role::HotelEmployee).then_some(7),
        is_active: true,
        created_at: NOW - time::Duration::days(10),
        updated_at: NOW - time::Duration::days(10),
    }
}

pub fn refresh_token(byte: u8) -> RefreshToken {
    RefreshToken::new(session_id(), [byte; 32])
}

pub fn session_id() -> SessionId {
    SessionId::from_random_bytes([2; 16])
}

/// A live guest session of [`user`], created an hour ago, whose current refresh token is
/// `refresh_token(9)`.
pub fn session() -> Session {
    let created = NOW - time::Duration::hours(1);
    Session {
        id: session_id(),
        user_id: user(Role::Guest).id,
        role: Role::Guest,
        hotel_id: None,
        device: DeviceInfo {
            class: DeviceClass::Mac,
            browser: Some("Safari".into()),
        },
        device_name: None,
        ip_address: Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        user_agent: Some("Mozilla/5.0 (Macintosh)".into()),
        created_at: created,
        last_activity: created,
        expires_at: created + time::Duration::days(1),
        status: SessionStatus::Active,
        refresh: RefreshState {
            current: refresh_token(9).hash(),
            previous: None,
            rotated_at: None,
        },
        ended_by: None,
        version: 1,
    }
}

pub fn principal(session: Session) -> Principal {
    Principal {
        user_id: session.user_id,
        role: session.role,
        session: Arc::new(SessionSummary::from(&session)),
    }
}

/// Session events that accept anything.
pub fn quiet_events() -> MockSessionEvents {
    let mut events = MockSessionEvents::new();
    events.expect_opened().return_const(());
    events.expect_ended().return_const(());
    events
}

/// Statistics that count anything and hold nothing.
pub fn quiet_statistics() -> MockSessionStatistics {
    let mut statistics = MockSessionStatistics::new();
    statistics
        .expect_record_failed_sign_in()
        .returning(|_| Ok(()));
    statistics.expect_forget_before().returning(|_| Ok(()));
    statistics
}
