use std::sync::Arc;

use mockall::predicate::eq;
use time::Duration;

use super::*;
use crate::model::EndedBy;
use crate::model::{DeviceClass, LimitAction, Password, Role, RolePolicy, SessionSummary, UserId};
use crate::ports::HashError;
use crate::service::fixtures::{self, Mocks, NOW};

fn service(mocks: Mocks) -> AuthService {
    AuthService::new(mocks.into_ports(), Arc::new(SessionPolicy::default()))
}

fn service_with(mocks: Mocks, policy: SessionPolicy) -> AuthService {
    AuthService::new(mocks.into_ports(), Arc::new(policy))
}

fn attempt(password: &str) -> SignIn {
    SignIn {
        email: "Alice@example.com".into(),
        password: Password::presented(password.into()).unwrap(),
        context: NewSessionContext {
            ip_address: None,
            user_agent: Some("Mozilla/5.0 (Macintosh)".into()),
            device_name: Some("work laptop".into()),
            device_token: None,
        },
    }
}

fn claims_for(session: &Session, expires_at: OffsetDateTime) -> AccessClaims {
    AccessClaims {
        user_id: session.user_id,
        session_id: session.id,
        role: session.role,
        issued_at: NOW - Duration::minutes(1),
        expires_at,
        token_id: Uuid::nil(),
    }
}

/// Mocks in which a valid access token names `session`, which the repository holds.
fn holding(session: &Session) -> Mocks {
    let mut mocks = Mocks::new();
    let claims = claims_for(session, NOW + Duration::minutes(10));
    mocks
        .tokens
        .expect_decode()
        // Expiry is judged at the clock's time, not the system's.
        .withf(|_, now| *now == NOW)
        .returning(move |_, _| Ok(claims.clone()));
    let stored = SessionSummary::from(session);
    mocks
        .sessions
        .expect_find_summary()
        .with(eq(session.user_id), eq(session.id), eq(NOW))
        .returning(move |_, _, _| Ok(Some(stored.clone())));
    mocks
}

/// Mocks in which alice exists with `role` and password "right".
fn alice_exists(role: Role) -> Mocks {
    let mut mocks = Mocks::unthrottled();
    mocks
        .users
        .expect_find_by_email()
        .withf(|email| email.as_str() == "alice@example.com")
        .returning(move |_| Ok(Some(fixtures::user(role))));
    mocks
        .hasher
        .expect_verify()
        .returning(|password, _| Ok(password.expose() == "right"));
    mocks.devices.expect_classify().returning(|_| DeviceInfo {
        class: DeviceClass::Mac,
        browser: Some("Safari".into()),
    });
    mocks
        .tokens
        .expect_encode()
        .returning(|_| Ok("signed.jwt".into()));
    mocks
}

#[tokio::test]
async fn unknown_email_costs_a_hash_and_gets_the_same_answer_as_a_wrong_password() {
    let mut mocks = Mocks::unthrottled();
    mocks.users.expect_find_by_email().returning(|_| Ok(None));
    mocks
        .hasher
        .expect_verify_nothing()
        .times(1)
        .returning(|_| Ok(()));
    let error = service(mocks).sign_in(attempt("right")).await.unwrap_err();
    assert!(matches!(error, DomainError::InvalidCredentials));

    let mut mocks = alice_exists(Role::Guest);
    mocks.sessions.expect_create_within_limit().times(0);
    let error = service(mocks).sign_in(attempt("wrong")).await.unwrap_err();
    assert!(matches!(error, DomainError::InvalidCredentials));
}

#[tokio::test]
async fn a_full_hashing_queue_is_overload_for_known_and_unknown_emails_alike() {
    let mut mocks = Mocks::unthrottled();
    mocks.users.expect_find_by_email().returning(|_| Ok(None));
    mocks
        .hasher
        .expect_verify_nothing()
        .returning(|_| Err(HashError::Busy));
    let error = service(mocks).sign_in(attempt("right")).await.unwrap_err();
    assert!(matches!(error, DomainError::Unavailable(_)), "{error:?}");

    let mut mocks = Mocks::unthrottled();
    mocks
        .users
        .expect_find_by_email()
        .returning(|_| Ok(Some(fixtures::user(Role::Guest))));
    mocks
        .hasher
        .expect_verify()
        .returning(|_, _| Err(HashError::Busy));
    mocks.sessions.expect_create_within_limit().times(0);
    let error = service(mocks).sign_in(attempt("right")).await.unwrap_err();
    assert!(matches!(error, DomainError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn an_email_that_cannot_exist_is_a_wrong_credential_not_a_lookup() {
    let mut mocks = Mocks::unthrottled();
    mocks.users.expect_find_by_email().times(0);
    mocks
        .hasher
        .expect_verify_nothing()
        .times(1)
        .returning(|_| Ok(()));
    let mut bad = attempt("right");
    bad.email = "not an email".into();
    let error = service(mocks).sign_in(bad).await.unwrap_err();
    assert!(matches!(error, DomainError::InvalidCredentials));
}

/// Mocks in which alice exists, disabled, and every password is right.
fn disabled_alice() -> Mocks {
    let mut mocks = Mocks::unthrottled();
    mocks.users.expect_find_by_email().returning(|_| {
        let mut user = fixtures::user(Role::Guest);
        user.is_active = false;
        Ok(Some(user))
    });
    mocks.hasher.expect_verify().returning(|_, _| Ok(true));
    mocks
}

#[tokio::test]
async fn a_disabled_account_cannot_sign_in_even_with_the_right_password() {
    let mut mocks = disabled_alice();
    mocks.sessions.expect_create_within_limit().times(0);
    let error = service(mocks).sign_in(attempt("right")).await.unwrap_err();
    assert!(matches!(error, DomainError::AccountDisabled));
}

#[tokio::test]
async fn sign_in_opens_a_session_under_the_roles_policy() {
    let mut mocks = alice_exists(Role::HotelEmployee);
    mocks
        .sessions
        .expect_create_within_limit()
        .withf(|session, limit, check, now| {
            *now == NOW
                // The store re-checks the hash this sign-in verified, under the user's lock.
                && check.password_hash == fixtures::user(Role::HotelEmployee).password_hash
                && limit.max_sessions == 2
                && limit.on_limit == LimitAction::EvictOldest
                && session.expires_at == NOW + Duration::hours(8)
                && session.role == Role::HotelEmployee
                // The hotel is the account's, carried so checks need not read the user.
                && session.hotel_id == Some(7)
                && session.device.class == DeviceClass::Mac
                && session.device_name.as_deref() == Some("work laptop")
                && session.status == SessionStatus::Active
        })
        .times(1)
        .returning(|_, _, _, _| Ok(vec![]));
    let signed_in = service(mocks).sign_in(attempt("right")).await.unwrap();
    assert_eq!(signed_in.access_token, "signed.jwt");
    assert_eq!(signed_in.access_expires_at, NOW + Duration::minutes(15));
    // Only the hash is stored, and it is the hash of the token handed out.
    assert_eq!(
        signed_in.session.refresh.current,
        signed_in.refresh_token.hash()
    );
    assert_eq!(signed_in.refresh_token.session_id(), signed_in.session.id);
}

#[tokio::test]
async fn a_role_set_to_reject_refuses_the_sign_in_at_its_maximum() {
    let mut policy = SessionPolicy::default();
    policy.roles.set(
        Role::VendorAdmin,
        RolePolicy {
            on_limit: LimitAction::Reject,
            ..RolePolicy::default_for(Role::VendorAdmin)
        },
    );
    let mut mocks = alice_exists(Role::VendorAdmin);
    mocks
        .sessions
        .expect_create_within_limit()
        .withf(|_, limit, _, _| limit.on_limit == LimitAction::Reject && limit.max_sessions == 3)
        .returning(|_, _, _, _| Err(CreateSessionError::LimitReached));
    let error = service_with(mocks, policy)
        .sign_in(attempt("right"))
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::MaxSessionsReached));
}

#[tokio::test]
async fn a_valid_token_on_a_live_session_authenticates_without_writing_when_activity_is_fresh() {
    let mut session = fixtures::session();
    session.last_activity = NOW - Duration::seconds(59);
    let mut mocks = holding(&session);
    mocks.sessions.expect_record_activities().times(0);
    let service = service(mocks);
    let principal = service.authenticate("jwt").await.unwrap();
    assert_eq!(*principal.session, SessionSummary::from(&session));
    assert!(service.activity().is_empty());
}

#[tokio::test]
async fn activity_is_noted_once_the_interval_has_passed_and_written_by_the_flush() {
    let mut session = fixtures::session();
    session.last_activity = NOW - Duration::seconds(60);
    let mut mocks = holding(&session);
    // Never during the request: the flush writes it.
    mocks.sessions.expect_record_activities().times(0);
    let service = service(mocks);
    let principal = service.authenticate("jwt").await.unwrap();
    assert_eq!(principal.session.last_activity, NOW);
    let mut store = crate::ports::MockSessionRepository::new();
    let expected = SessionActivity {
        user_id: session.user_id,
        session_id: session.id,
        at: NOW,
    };
    store
        .expect_record_activities()
        .withf(move |batch| batch == [expected])
        .times(1)
        .returning(|_| Ok(()));
    assert_eq!(service.activity().flush(&store).await.unwrap(), 1);
}

#[tokio::test]
async fn ended_and_expired_sessions_are_refused_with_their_reason() {
    let ended = {
        let mut s = fixtures::session();
        s.status = SessionStatus::Ended {
            at: NOW - Duration::seconds(1),
            reason: InvalidationReason::MaxSessionsExceeded,
        };
        s
    };
    let expired = {
        let mut s = fixtures::session();
        s.expires_at = NOW;
        s
    };
    // Expired and already marked so by cleanup: the same answer as before the mark.
    let marked_expired = {
        let mut s = fixtures::session();
        s.expires_at = NOW - Duration::minutes(1);
        s.status = SessionStatus::Ended {
            at: s.expires_at,
            reason: InvalidationReason::Expired,
        };
        s
    };
    for (session, expected) in [
        (
            ended,
            DomainError::SessionRevoked(InvalidationReason::MaxSessionsExceeded),
        ),
        (expired, DomainError::SessionExpired),
        (marked_expired, DomainError::SessionExpired),
    ] {
        let mocks = holding(&session);
        let service = service(mocks);
        let error = service.authenticate("jwt").await.unwrap_err();
        assert_eq!(error.to_string(), expected.to_string());
        assert!(service.activity().is_empty());
    }
}

#[tokio::test]
async fn token_failures_and_foreign_sessions_are_refused() {
    for (decoded, expected) in [
        (TokenError::Expired, "the access token has expired"),
        (TokenError::Invalid, "the access token is not valid"),
    ] {
        let mut mocks = Mocks::new();
        mocks
            .tokens
            .expect_decode()
            .returning(move |_, _| Err(decoded));
        mocks.sessions.expect_find_summary().times(0);
        let error = service(mocks).authenticate("jwt").await.unwrap_err();
        assert_eq!(error.to_string(), expected);
    }

    // A token whose `sub` does not own its `sid` is a forgery or a bug: the repository
    // finds no such session of that user, and the token is refused.
    let mut mocks = Mocks::new();
    let session = fixtures::session();
    let mut claims = claims_for(&session, NOW + Duration::minutes(10));
    let stranger = UserId::from_random_bytes([99; 16]);
    claims.user_id = stranger;
    mocks
        .tokens
        .expect_decode()
        .returning(move |_, _| Ok(claims.clone()));
    mocks
        .sessions
        .expect_find_summary()
        .with(eq(stranger), eq(session.id), eq(NOW))
        .times(1)
        .returning(|_, _, _| Ok(None));
    let error = service(mocks).authenticate("jwt").await.unwrap_err();
    assert!(matches!(error, DomainError::TokenInvalid));
}

#[tokio::test]
async fn refresh_rotates_the_token_and_slides_expiry_up_to_the_absolute_lifetime() {
    let mut mocks = Mocks::new();
    mocks.tokens.expect_encode().returning(|_| Ok("jwt".into()));
    // An admin session created 23 hours ago: sliding by 4 h would pass its 24 h lifetime.
    let mut session = fixtures::session();
    session.role = Role::SystemAdmin;
    session.created_at = NOW - Duration::hours(23);
    session.expires_at = NOW + Duration::minutes(30);
    let created_at = session.created_at;
    let stored = session.clone();
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(stored.clone())));
    mocks
        .sessions
        .expect_rotate_refresh_token()
        .withf(move |_, presented, next, expires_at, now| {
            *presented == fixtures::refresh_token(9).hash()
                && *next != *presented
                && *expires_at == created_at + Duration::days(1)
                && *now == NOW
        })
        .times(1)
        .returning(move |_, presented, next, expires_at, now| {
            let mut rotated = session.clone();
            rotated.refresh = RefreshState {
                current: next,
                previous: Some(presented),
                rotated_at: Some(now),
            };
            rotated.expires_at = expires_at;
            Ok(Some(rotated))
        });
    let presented = fixtures::refresh_token(9).expose();
    let refreshed = service(mocks).refresh(&presented).await.unwrap();
    assert_eq!(refreshed.session.expires_at, created_at + Duration::days(1));
    assert_eq!(
        refreshed.session.refresh.current,
        refreshed.refresh_token.hash()
    );
    assert_ne!(refreshed.refresh_token.expose(), presented);
}

fn rotated_session(rotated_ago: Duration) -> Session {
    let mut session = fixtures::session();
    session.refresh = RefreshState {
        current: fixtures::refresh_token(10).hash(),
        previous: Some(fixtures::refresh_token(9).hash()),
        rotated_at: Some(NOW - rotated_ago),
    };
    session
}

#[tokio::test]
async fn a_rotated_token_within_the_grace_window_is_refused_without_revoking() {
    let mut mocks = Mocks::new();
    let session = rotated_session(Duration::seconds(9));
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(session.clone())));
    mocks.sessions.expect_end().times(0);
    mocks.sessions.expect_rotate_refresh_token().times(0);
    let error = service(mocks)
        .refresh(&fixtures::refresh_token(9).expose())
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::RefreshTokenRotated));
}

#[tokio::test]
async fn a_rotated_token_after_the_grace_window_revokes_the_session() {
    let mut mocks = Mocks::new();
    let session = rotated_session(Duration::seconds(10));
    let id = session.id;
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(session.clone())));
    mocks
        .sessions
        .expect_end()
        .with(
            eq(id),
            eq(InvalidationReason::RefreshTokenReuse),
            eq(EndedBy::System),
            eq(NOW),
        )
        .times(1)
        .returning(|_, _, _, _| Ok(None));
    let error = service(mocks)
        .refresh(&fixtures::refresh_token(9).expose())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        DomainError::SessionRevoked(InvalidationReason::RefreshTokenReuse)
    ));
}

#[tokio::test]
async fn losing_a_refresh_race_is_a_rotated_token_not_a_theft() {
    let mut mocks = Mocks::new();
    let mut finds = 0;
    mocks.sessions.expect_find().returning(move |_| {
        finds += 1;
        // First read: our token is current. Second read: a parallel refresh rotated it.
        Ok(Some(if finds == 1 {
            fixtures::session()
        } else {
            rotated_session(Duration::ZERO)
        }))
    });
    mocks
        .sessions
        .expect_rotate_refresh_token()
        .times(1)
        .returning(|_, _, _, _, _| Ok(None));
    mocks.sessions.expect_end().times(0);
    let error = service(mocks)
        .refresh(&fixtures::refresh_token(9).expose())
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::RefreshTokenRotated));
}

#[tokio::test]
async fn unknown_or_malformed_refresh_tokens_reveal_nothing_and_revoke_nothing() {
    for presented in [fixtures::refresh_token(77).expose(), "garbage".to_owned()] {
        let mut mocks = Mocks::new();
        let session = rotated_session(Duration::hours(1));
        mocks
            .sessions
            .expect_find()
            .returning(move |_| Ok(Some(session.clone())));
        // A well-formed token is looked up among the session's retired ones, and is not
        // one of them.
        let unknown = fixtures::refresh_token(77).hash();
        mocks
            .sessions
            .expect_find_retired_refresh_token()
            .withf(move |id, hash| *id == fixtures::session_id() && *hash == unknown)
            .times(usize::from(presented != "garbage"))
            .returning(|_, _| Ok(None));
        mocks.sessions.expect_end().times(0);
        mocks.sessions.expect_rotate_refresh_token().times(0);
        let error = service(mocks).refresh(&presented).await.unwrap_err();
        assert!(matches!(error, DomainError::RefreshTokenInvalid));
    }
}

#[tokio::test]
async fn refreshing_an_ended_session_tells_why_it_ended() {
    let mut mocks = Mocks::new();
    let mut session = fixtures::session();
    session.status = SessionStatus::Ended {
        at: NOW - Duration::minutes(1),
        reason: InvalidationReason::PasswordChanged,
    };
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(session.clone())));
    mocks.sessions.expect_rotate_refresh_token().times(0);
    let error = service(mocks)
        .refresh(&fixtures::refresh_token(9).expose())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        DomainError::SessionRevoked(InvalidationReason::PasswordChanged)
    ));
}

#[tokio::test]
async fn a_throttled_account_is_refused_even_with_the_right_password() {
    let mut mocks = alice_exists(Role::Guest);
    // 12:00 is a window start: the 15-minute window ends in 900 s.
    mocks.now = NOW + Duration::seconds(100);
    mocks.attempts = crate::ports::MockAttemptCounter::new();
    mocks
        .attempts
        .expect_failures()
        .withf(|key, start| key == "account:alice@example.com" && *start == NOW)
        .returning(|_, _| Ok(5));
    mocks.attempts.expect_failures().returning(|_, _| Ok(0));
    mocks.hasher.checkpoint();
    mocks.hasher.expect_verify().times(0);
    mocks.sessions.expect_create_within_limit().times(0);
    let error = service(mocks).sign_in(attempt("right")).await.unwrap_err();
    assert!(matches!(
        error,
        DomainError::RateLimited {
            retry_after_seconds: 800
        }
    ));
}

#[tokio::test]
async fn failed_sign_ins_are_counted_per_account_and_address() {
    let mut mocks = alice_exists(Role::Guest);
    mocks.attempts = crate::ports::MockAttemptCounter::new();
    mocks.attempts.expect_failures().returning(|_, _| Ok(0));
    let window_end = NOW + Duration::minutes(15);
    mocks
        .attempts
        .expect_record_failure()
        .withf(move |key, start, end| {
            (key == "account:alice@example.com" || key == "ip:192.0.2.7")
                && *start == NOW
                && *end == window_end
        })
        .times(2)
        .returning(|_, _, _| Ok(1));
    let mut wrong = attempt("wrong");
    wrong.context.ip_address = Some("192.0.2.7".parse().unwrap());
    let error = service(mocks).sign_in(wrong).await.unwrap_err();
    assert!(matches!(error, DomainError::InvalidCredentials));
}

#[tokio::test]
async fn a_wrong_password_is_one_failed_sign_in_in_the_statistics_and_a_store_failure_changes_nothing()
 {
    let mut mocks = alice_exists(Role::Guest);
    mocks.statistics = crate::ports::MockSessionStatistics::new();
    mocks
        .statistics
        .expect_record_failed_sign_in()
        .with(eq(NOW))
        .times(1)
        .returning(|_| {
            Err(crate::StoreError::Unavailable(
                std::io::Error::other("down").into(),
            ))
        });
    let error = service(mocks).sign_in(attempt("wrong")).await.unwrap_err();
    assert!(matches!(error, DomainError::InvalidCredentials));

    // A refused sign-in that was not a wrong credential is not counted.
    let mut mocks = disabled_alice();
    mocks.statistics = crate::ports::MockSessionStatistics::new();
    mocks.statistics.expect_record_failed_sign_in().times(0);
    let error = service(mocks).sign_in(attempt("right")).await.unwrap_err();
    assert!(matches!(error, DomainError::AccountDisabled));
}

#[tokio::test]
async fn a_full_activity_buffer_does_not_refuse_a_valid_request() {
    let mut session = fixtures::session();
    session.last_activity = NOW - Duration::minutes(5);
    let buffer = Arc::new(ActivityBuffer::new(1));
    buffer.record(SessionActivity {
        user_id: session.user_id,
        session_id: SessionId::from_random_bytes([42; 16]),
        at: NOW,
    });
    let service = service(holding(&session)).with_activity_buffer(Arc::clone(&buffer));
    let principal = service.authenticate("jwt").await.unwrap();
    assert_eq!(principal.session.id, session.id);
    assert_eq!(buffer.dropped(), 1);
}

mod near_cache {
    use super::*;
    use crate::caching::NearSessions;
    use crate::model::RevocationMemory;
    use crate::ports::MockNearCache;

    #[tokio::test]
    async fn a_near_hit_validates_with_no_call_to_the_repository() {
        let mut session = fixtures::session();
        session.last_activity = NOW;
        let mut mocks = Mocks::new();
        let claims = claims_for(&session, NOW + Duration::minutes(10));
        mocks
            .tokens
            .expect_decode()
            .returning(move |_, _| Ok(claims.clone()));
        mocks.sessions.expect_find_summary().times(0);
        let entry = Arc::new(SessionSummary::from(&session));
        let mut cache = MockNearCache::new();
        let hit = Arc::clone(&entry);
        cache
            .expect_get()
            .returning(move |_| Some(Arc::clone(&hit)));
        let near = NearSessions::new(
            Arc::new(cache),
            Arc::new(RevocationMemory::new(Duration::minutes(16))),
            None,
        );
        let service = service(mocks).with_near_cache(Arc::new(near));
        let principal = service.authenticate("jwt").await.unwrap();
        assert!(Arc::ptr_eq(&principal.session, &entry), "nothing copied");
    }

    #[tokio::test]
    async fn a_noted_activity_moves_the_near_entry_on() {
        let mut session = fixtures::session();
        session.last_activity = NOW - Duration::minutes(5);
        let mut mocks = Mocks::new();
        let claims = claims_for(&session, NOW + Duration::minutes(10));
        mocks
            .tokens
            .expect_decode()
            .returning(move |_, _| Ok(claims.clone()));
        let entry = Arc::new(SessionSummary::from(&session));
        let mut cache = MockNearCache::new();
        cache
            .expect_get()
            .returning(move |_| Some(Arc::clone(&entry)));
        cache
            .expect_insert()
            .withf(|moved| moved.last_activity == NOW)
            .times(1)
            .return_const(());
        let near = NearSessions::new(
            Arc::new(cache),
            Arc::new(RevocationMemory::new(Duration::minutes(16))),
            None,
        );
        let service = service(mocks).with_near_cache(Arc::new(near));
        service.authenticate("jwt").await.unwrap();
        assert_eq!(service.activity().len(), 1);
    }
}

/// Mocks in which alice (a guest) signs in with the right password and the store answers
/// the session's creation with `refusal`.
fn sign_in_refused_by(refusal: fn() -> CreateSessionError) -> Mocks {
    let mut mocks = alice_exists(Role::Guest);
    mocks
        .sessions
        .expect_create_within_limit()
        .times(1)
        .returning(move |_, _, _, _| Err(refusal()));
    mocks.tokens.checkpoint();
    mocks.tokens.expect_encode().times(0);
    mocks
}

#[tokio::test]
async fn a_sign_in_that_loses_to_a_deactivation_is_refused_as_disabled() {
    let mocks = sign_in_refused_by(|| CreateSessionError::UserDisabled);
    let error = service(mocks).sign_in(attempt("right")).await.unwrap_err();
    assert!(matches!(error, DomainError::AccountDisabled));
}

#[tokio::test]
async fn a_sign_in_that_loses_to_a_password_change_or_a_deletion_is_a_wrong_credential() {
    for refusal in [
        (|| CreateSessionError::PasswordChanged) as fn() -> CreateSessionError,
        || CreateSessionError::UserGone,
    ] {
        let mocks = sign_in_refused_by(refusal);
        let error = service(mocks).sign_in(attempt("right")).await.unwrap_err();
        assert!(matches!(error, DomainError::InvalidCredentials));
    }
}

#[tokio::test]
async fn a_sign_in_that_races_a_role_change_carries_the_new_role_and_its_policy() {
    let mut mocks = alice_exists(Role::Guest);
    let verified = fixtures::user(Role::Guest).password_hash;
    let mut order = mockall::Sequence::new();
    let first_check = verified.clone();
    mocks
        .sessions
        .expect_create_within_limit()
        .withf(move |session, limit, check, _| {
            session.role == Role::Guest
                && limit.max_sessions == 5
                && session.expires_at == NOW + Duration::hours(24)
                && check.password_hash == first_check
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _, _| Err(CreateSessionError::RoleChanged(Role::SystemAdmin)));
    mocks
        .sessions
        .expect_create_within_limit()
        .withf(move |session, limit, check, now| {
            session.role == Role::SystemAdmin
                && limit.max_sessions == 2
                && limit.on_limit == LimitAction::EvictOldest
                && session.expires_at == NOW + Duration::hours(4)
                && check.password_hash == verified
                && *now == NOW
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _, _, _| Ok(vec![]));
    mocks.tokens.checkpoint();
    mocks
        .tokens
        .expect_encode()
        .withf(|claims| claims.role == Role::SystemAdmin)
        .times(1)
        .returning(|_| Ok("signed.jwt".into()));
    let signed_in = service(mocks).sign_in(attempt("right")).await.unwrap();
    assert_eq!(signed_in.session.role, Role::SystemAdmin);
    assert_eq!(signed_in.session.expires_at, NOW + Duration::hours(4));
    assert_eq!(
        signed_in.session.refresh.current,
        signed_in.refresh_token.hash()
    );
}

#[tokio::test]
async fn a_role_that_keeps_changing_makes_the_sign_in_unavailable_after_three_attempts() {
    let mut mocks = alice_exists(Role::Guest);
    let mut order = mockall::Sequence::new();
    for (tried, now_is) in [
        (Role::Guest, Role::VendorAdmin),
        (Role::VendorAdmin, Role::HotelEmployee),
        (Role::HotelEmployee, Role::SystemAdmin),
    ] {
        let max_sessions = RolePolicy::default_for(tried).max_sessions;
        mocks
            .sessions
            .expect_create_within_limit()
            .withf(move |session, limit, _, _| {
                session.role == tried && limit.max_sessions == max_sessions
            })
            .times(1)
            .in_sequence(&mut order)
            .returning(move |_, _, _, _| Err(CreateSessionError::RoleChanged(now_is)));
    }
    mocks.tokens.checkpoint();
    mocks.tokens.expect_encode().times(0);
    let error = service(mocks).sign_in(attempt("right")).await.unwrap_err();
    assert!(matches!(error, DomainError::Unavailable(_)), "{error:?}");
}

/// A session rotated twice: `refresh_token(9)` was retired `retired_ago`, its successor
/// `refresh_token(10)` (now `previous`) a moment ago, and `refresh_token(11)` is current.
fn rotated_twice(retired_ago: Duration) -> Mocks {
    let mut mocks = Mocks::new();
    let mut session = fixtures::session();
    session.refresh = RefreshState {
        current: fixtures::refresh_token(11).hash(),
        previous: Some(fixtures::refresh_token(10).hash()),
        rotated_at: Some(NOW - Duration::seconds(1)),
    };
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(session.clone())));
    let oldest = fixtures::refresh_token(9).hash();
    mocks
        .sessions
        .expect_find_retired_refresh_token()
        .withf(move |id, hash| *id == fixtures::session_id() && *hash == oldest)
        .times(1)
        .returning(move |_, _| Ok(Some(NOW - retired_ago)));
    mocks.sessions.expect_rotate_refresh_token().times(0);
    mocks
}

#[tokio::test]
async fn a_token_retired_rotations_ago_revokes_the_session_outside_its_grace_window() {
    // Judged by when that token was retired, not by the session's latest rotation (which
    // is within the grace window here).
    for retired_ago in [Duration::seconds(10), Duration::hours(2)] {
        let mut mocks = rotated_twice(retired_ago);
        mocks
            .sessions
            .expect_end()
            .with(
                eq(fixtures::session_id()),
                eq(InvalidationReason::RefreshTokenReuse),
                eq(EndedBy::System),
                eq(NOW),
            )
            .times(1)
            .returning(|_, _, _, _| Ok(None));
        let error = service(mocks)
            .refresh(&fixtures::refresh_token(9).expose())
            .await
            .unwrap_err();
        assert!(matches!(
            error,
            DomainError::SessionRevoked(InvalidationReason::RefreshTokenReuse)
        ));
    }
}

#[tokio::test]
async fn a_token_retired_rotations_ago_within_its_grace_window_revokes_nothing() {
    let mut mocks = rotated_twice(Duration::seconds(9));
    mocks.sessions.expect_end().times(0);
    let error = service(mocks)
        .refresh(&fixtures::refresh_token(9).expose())
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::RefreshTokenRotated));
}

#[tokio::test]
async fn a_retired_token_of_an_ended_session_tells_why_it_ended_and_ends_nothing_again() {
    let mut mocks = Mocks::new();
    let mut session = rotated_session(Duration::hours(1));
    session.status = SessionStatus::Ended {
        at: NOW - Duration::minutes(1),
        reason: InvalidationReason::AdminRevoked,
    };
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(session.clone())));
    mocks
        .sessions
        .expect_find_retired_refresh_token()
        .returning(|_, _| Ok(Some(NOW - Duration::hours(2))));
    mocks.sessions.expect_end().times(0);
    let error = service(mocks)
        .refresh(&fixtures::refresh_token(8).expose())
        .await
        .unwrap_err();
    assert!(matches!(
        error,
        DomainError::SessionRevoked(InvalidationReason::AdminRevoked)
    ));
}

#[tokio::test]
async fn a_failed_lookup_of_retired_tokens_is_unavailable_and_ends_nothing() {
    let mut mocks = Mocks::new();
    let session = rotated_session(Duration::hours(1));
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(session.clone())));
    mocks
        .sessions
        .expect_find_retired_refresh_token()
        .returning(|_, _| Err(crate::StoreError::Unavailable("database down".into())));
    mocks.sessions.expect_end().times(0);
    let error = service(mocks)
        .refresh(&fixtures::refresh_token(8).expose())
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::Unavailable(_)));
}

/// Issue 15: strangers' failed sign-ins must not lock out a device that signed in before.
mod known_devices {
    use super::*;
    use crate::model::{DeviceId, DeviceKeys, DeviceToken};
    use crate::ports::MockAttemptCounter;

    fn keys() -> DeviceKeys {
        DeviceKeys::derive(b"the signing secret", &[]).unwrap()
    }

    fn with_keys(mocks: Mocks) -> AuthService {
        service(mocks).with_device_keys(keys())
    }

    /// A device token alice was given, and the key its device is counted under.
    fn alices_device() -> (DeviceToken, String) {
        let (token, device) = keys().issue(
            &fixtures::user(Role::Guest),
            DeviceId::from_random_bytes([42; 16]),
            NOW - Duration::days(3),
        );
        (token, device.throttle_key())
    }

    /// Alice's attempt from 192.0.2.7, presenting `token`.
    fn from_device(password: &str, token: Option<DeviceToken>) -> SignIn {
        let mut attempt = attempt(password);
        attempt.context.ip_address = Some("192.0.2.7".parse().unwrap());
        attempt.context.device_token = token;
        attempt
    }

    /// A counter where strangers exhausted alice's account and the address, and the
    /// device key has `device_failures`.
    fn locked_by_strangers(device_key: String, device_failures: u32) -> MockAttemptCounter {
        let mut attempts = MockAttemptCounter::new();
        attempts
            .expect_failures()
            .withf(move |key, _| key == device_key)
            .returning(move |_, _| Ok(device_failures));
        attempts
            .expect_failures()
            .withf(|key, _| key == "account:alice@example.com")
            .returning(|_, _| Ok(5));
        attempts
            .expect_failures()
            .withf(|key, _| key == "ip:192.0.2.7")
            .returning(|_, _| Ok(50));
        attempts
    }

    fn signs_in(mut mocks: Mocks) -> Mocks {
        mocks
            .sessions
            .expect_create_within_limit()
            .returning(|_, _, _, _| Ok(vec![]));
        mocks
    }

    #[tokio::test]
    async fn a_known_device_signs_in_while_strangers_have_locked_the_account_and_the_address() {
        let (token, device_key) = alices_device();
        let mut mocks = signs_in(alice_exists(Role::Guest));
        mocks.attempts = locked_by_strangers(device_key.clone(), 4);
        let signed_in = with_keys(mocks)
            .sign_in(from_device("right", Some(token)))
            .await
            .unwrap();
        // The device gets a fresh token that names the same device (the same count).
        let renewed = signed_in.device_token.expect("a device token");
        let device = keys()
            .verify(&renewed, &fixtures::user(Role::Guest), NOW)
            .expect("the renewed token is valid");
        assert_eq!(device.throttle_key(), device_key);

        // A stranger (no token) is refused, even with the right password.
        let (_, device_key) = alices_device();
        let mut mocks = alice_exists(Role::Guest);
        mocks.attempts = locked_by_strangers(device_key, 0);
        mocks.hasher.checkpoint();
        mocks.hasher.expect_verify().times(0);
        let error = with_keys(mocks)
            .sign_in(from_device("right", None))
            .await
            .unwrap_err();
        assert!(
            matches!(error, DomainError::RateLimited { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_wrong_password_from_a_known_device_counts_against_that_device_alone() {
        let (token, device_key) = alices_device();
        let mut mocks = alice_exists(Role::Guest);
        mocks.attempts = MockAttemptCounter::new();
        mocks.attempts.expect_failures().returning(|_, _| Ok(0));
        let expected = device_key.clone();
        mocks
            .attempts
            .expect_record_failure()
            .withf(move |key, _, _| *key == expected)
            .times(1)
            .returning(|_, _, _| Ok(1));
        let error = with_keys(mocks)
            .sign_in(from_device("wrong", Some(token.clone())))
            .await
            .unwrap_err();
        assert!(
            matches!(error, DomainError::InvalidCredentials),
            "{error:?}"
        );

        // At the account's limit the device is refused, even with the right password.
        let mut mocks = alice_exists(Role::Guest);
        mocks.attempts = locked_by_strangers(device_key, 5);
        mocks.hasher.checkpoint();
        mocks.hasher.expect_verify().times(0);
        mocks.sessions.expect_create_within_limit().times(0);
        let error = with_keys(mocks)
            .sign_in(from_device("right", Some(token)))
            .await
            .unwrap_err();
        assert!(
            matches!(error, DomainError::RateLimited { .. }),
            "{error:?}"
        );
    }

    #[tokio::test]
    async fn a_token_of_another_account_a_forged_one_or_one_from_before_a_password_change_is_a_strangers()
     {
        let bob = UserId::from_random_bytes([9; 16]);
        let mut someone_else = fixtures::user(Role::Guest);
        someone_else.id = bob;
        let mut before_change = fixtures::user(Role::Guest);
        before_change.password_hash = crate::model::PasswordHash::new("$argon2id$old".into());
        let device = DeviceId::from_random_bytes([42; 16]);
        let other_key = DeviceKeys::derive(b"another secret", &[]).unwrap();
        for token in [
            keys().issue(&someone_else, device, NOW).0,
            keys().issue(&before_change, device, NOW).0,
            other_key.issue(&fixtures::user(Role::Guest), device, NOW).0,
            DeviceToken::presented("not a token".into()),
        ] {
            let mut mocks = alice_exists(Role::Guest);
            mocks.attempts = MockAttemptCounter::new();
            mocks
                .attempts
                .expect_failures()
                .withf(|key, _| key.starts_with("device:"))
                .times(0);
            mocks
                .attempts
                .expect_failures()
                .returning(|key, _| Ok(if key.starts_with("account:") { 5 } else { 0 }));
            let error = with_keys(mocks)
                .sign_in(from_device("right", Some(token)))
                .await
                .unwrap_err();
            assert!(
                matches!(error, DomainError::RateLimited { .. }),
                "{error:?}"
            );
        }
    }

    #[tokio::test]
    async fn every_sign_in_hands_out_a_device_token_when_keys_are_set_and_none_otherwise() {
        let signed_in = with_keys(signs_in(alice_exists(Role::Guest)))
            .sign_in(attempt("right"))
            .await
            .unwrap();
        let token = signed_in.device_token.expect("a device token");
        assert!(
            keys()
                .verify(&token, &fixtures::user(Role::Guest), NOW)
                .is_some()
        );
        let signed_in = service(signs_in(alice_exists(Role::Guest)))
            .sign_in(attempt("right"))
            .await
            .unwrap();
        assert!(signed_in.device_token.is_none());
        // Without keys a presented token changes nothing: the attempt is a stranger's.
        let (token, _) = alices_device();
        let mut mocks = alice_exists(Role::Guest);
        mocks.attempts = locked_by_strangers(String::new(), 0);
        let error = service(mocks)
            .sign_in(from_device("right", Some(token)))
            .await
            .unwrap_err();
        assert!(
            matches!(error, DomainError::RateLimited { .. }),
            "{error:?}"
        );
    }
}

mod background {
    use super::*;

    #[tokio::test]
    async fn a_background_check_validates_but_is_no_activity() {
        let mut session = fixtures::session();
        session.last_activity = NOW - Duration::minutes(5);
        let service = service(holding(&session));
        let principal = service.authenticate_in_background("jwt").await.unwrap();
        assert_eq!(principal.session.id, session.id);
        assert_eq!(principal.session.last_activity, NOW - Duration::minutes(5));
        assert!(service.activity().is_empty());
    }

    #[tokio::test]
    async fn a_background_refresh_rotates_but_does_not_slide_the_expiry() {
        let mut mocks = Mocks::new();
        mocks.tokens.expect_encode().returning(|_| Ok("jwt".into()));
        let mut session = fixtures::session();
        session.expires_at = NOW + Duration::minutes(30);
        let kept = session.expires_at;
        let stored = session.clone();
        mocks
            .sessions
            .expect_find()
            .returning(move |_| Ok(Some(stored.clone())));
        mocks
            .sessions
            .expect_rotate_refresh_token()
            .withf(move |_, _, _, expires_at, _| *expires_at == kept)
            .times(1)
            .returning(move |_, presented, next, expires_at, now| {
                let mut rotated = session.clone();
                rotated.refresh = RefreshState {
                    current: next,
                    previous: Some(presented),
                    rotated_at: Some(now),
                };
                rotated.expires_at = expires_at;
                Ok(Some(rotated))
            });
        let presented = fixtures::refresh_token(9).expose();
        let refreshed = service(mocks)
            .refresh_in_background(&presented)
            .await
            .unwrap();
        assert_eq!(refreshed.session.expires_at, kept);
        assert_ne!(refreshed.refresh_token.expose(), presented);
    }
}
