//! The storage contract: what every adapter of `UserRepository` and `SessionRepository`
//! must do, as tests written once and run against each adapter with
//! [`storage_contract_tests!`](crate::storage_contract_tests).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use futures::future::join_all;
use sessiond_domain::model::{
    DeviceClass, DeviceInfo, Email, EndedBy, InvalidationReason, LimitAction, PasswordHash,
    RefreshState, RefreshToken, Role, Session, SessionActivity, SessionId, SessionStatus,
    SessionSummary, User, UserId,
};
use sessiond_domain::ports::{
    CreateSessionError, CreateUserError, SessionLimit, SessionRepository, SignInCheck,
    UserAdministration, UserChange, UserRepository,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The storage adapters under test, sharing one store.
#[derive(Clone)]
pub struct Stores {
    pub users: Arc<dyn UserRepository>,
    /// The same users, changed as an administrator does (the security events that sign-in
    /// is serialised with).
    pub administration: Arc<dyn UserAdministration>,
    pub sessions: Arc<dyn SessionRepository>,
}

impl std::fmt::Debug for Stores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stores").finish_non_exhaustive()
    }
}

/// Whole seconds: every adapter must keep at least microseconds.
pub const T0: OffsetDateTime = datetime!(2026-05-01 08:00 UTC);

pub fn user(email: &str) -> User {
    User {
        id: UserId::from_uuid(Uuid::new_v4()),
        email: Email::parse(email).unwrap(),
        password_hash: PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into()),
        role: Role::HotelEmployee,
        hotel_id: Some(7),
        is_active: true,
        created_at: T0,
        updated_at: T0,
    }
}

pub fn session(user: &User, created_at: OffsetDateTime) -> Session {
    let id = SessionId::from_uuid(Uuid::new_v4());
    Session {
        id,
        user_id: user.id,
        role: user.role,
        hotel_id: user.hotel_id,
        device: DeviceInfo {
            class: DeviceClass::Android,
            browser: Some("Chrome".into()),
        },
        device_name: Some("Pixel".into()),
        ip_address: Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9))),
        user_agent: Some("Mozilla/5.0 (Linux; Android 14)".into()),
        created_at,
        last_activity: created_at,
        expires_at: created_at + Duration::hours(8),
        status: SessionStatus::Active,
        refresh: RefreshState {
            current: token(id, 1).hash(),
            previous: None,
            rotated_at: None,
        },
        ended_by: None,
        version: 1,
    }
}

/// What a sign-in of `user` verified: its password hash as stored.
pub fn check(user: &User) -> SignInCheck {
    SignInCheck {
        password_hash: user.password_hash.clone(),
    }
}

pub fn token(id: SessionId, byte: u8) -> RefreshToken {
    RefreshToken::new(id, [byte; 32])
}

const EVICT_AT_2: SessionLimit = SessionLimit {
    max_sessions: 2,
    on_limit: LimitAction::EvictOldest,
};

async fn stored_user(stores: &Stores) -> User {
    let user = user(&format!("{}@example.com", Uuid::new_v4()));
    stores.users.create(&user).await.unwrap();
    user
}

const UNLIMITED: SessionLimit = SessionLimit {
    max_sessions: 1000,
    on_limit: LimitAction::Reject,
};

/// Stores `session` of `user` (who must be stored, with the password hash given).
async fn insert_for(stores: &Stores, user: &User, session: &Session) {
    let evicted = stores
        .sessions
        .create_within_limit(session, UNLIMITED, &check(user), session.created_at)
        .await
        .unwrap();
    assert!(evicted.is_empty());
}

/// Stores `session`, of a user made by [`user`] and stored unchanged.
async fn insert(stores: &Stores, session: &Session) {
    let owner = stores
        .users
        .find(session.user_id)
        .await
        .unwrap()
        .expect("the session's user is stored");
    insert_for(stores, &owner, session).await;
}

/// One activity, written as the activity flush writes a batch.
async fn record_activity(
    stores: &Stores,
    user_id: UserId,
    session_id: SessionId,
    at: OffsetDateTime,
) {
    stores
        .sessions
        .record_activities(&[SessionActivity {
            user_id,
            session_id,
            at,
        }])
        .await
        .unwrap();
}

pub async fn users_round_trip_and_emails_are_unique(stores: Stores) {
    let user = stored_user(&stores).await;
    assert_eq!(
        stores.users.find(user.id).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        stores.users.find_by_email(&user.email).await.unwrap(),
        Some(user.clone())
    );
    let mut twin = self::user(user.email.as_str());
    twin.role = Role::Guest;
    assert!(matches!(
        stores.users.create(&twin).await,
        Err(CreateUserError::EmailTaken)
    ));
    let missing = UserId::from_uuid(Uuid::new_v4());
    assert_eq!(stores.users.find(missing).await.unwrap(), None);
}

pub async fn password_hashes_are_replaced(stores: Stores) {
    let user = stored_user(&stores).await;
    let hash = PasswordHash::new("$argon2id$new".into());
    let later = T0 + Duration::minutes(5);
    assert!(
        stores
            .users
            .set_password_hash(user.id, &hash, later)
            .await
            .unwrap()
    );
    let stored = stores.users.find(user.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, hash);
    assert_eq!(stored.updated_at, later);
    let missing = UserId::from_uuid(Uuid::new_v4());
    assert!(
        !stores
            .users
            .set_password_hash(missing, &hash, later)
            .await
            .unwrap()
    );
}

pub async fn sessions_round_trip_every_field(stores: Stores) {
    let user = stored_user(&stores).await;
    let mut session = session(&user, T0);
    session.ip_address = Some("2001:db8::1".parse().unwrap());
    insert(&stores, &session).await;
    assert_eq!(
        stores.sessions.find(session.id).await.unwrap(),
        Some(session.clone())
    );

    let mut bare = self::session(&user, T0);
    bare.device = DeviceInfo::unknown();
    bare.device_name = None;
    bare.ip_address = None;
    bare.user_agent = None;
    insert(&stores, &bare).await;
    assert_eq!(stores.sessions.find(bare.id).await.unwrap(), Some(bare));

    let missing = SessionId::from_uuid(Uuid::new_v4());
    assert_eq!(stores.sessions.find(missing).await.unwrap(), None);
}

pub async fn the_least_recently_active_session_is_evicted(stores: Stores) {
    let user = stored_user(&stores).await;
    let older = session(&user, T0);
    let newer = session(&user, T0 + Duration::minutes(1));
    insert(&stores, &older).await;
    insert(&stores, &newer).await;
    // The older session was used last: the newer one is the least recently active.
    record_activity(&stores, user.id, older.id, T0 + Duration::minutes(10)).await;

    let now = T0 + Duration::minutes(20);
    let third = session(&user, now);
    let evicted = stores
        .sessions
        .create_within_limit(&third, EVICT_AT_2, &check(&user), now)
        .await
        .unwrap();
    assert_eq!(evicted, vec![newer.id]);
    let ended = stores.sessions.find(newer.id).await.unwrap().unwrap();
    assert_eq!(
        ended.status,
        SessionStatus::Ended {
            at: now,
            reason: InvalidationReason::MaxSessionsExceeded
        }
    );
    assert_eq!(ended.ended_by, Some(EndedBy::System));
    let live: Vec<SessionId> = stores
        .sessions
        .list_live(user.id, now)
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(live, vec![third.id, older.id]);
}

pub async fn reject_at_the_limit_writes_nothing(stores: Stores) {
    let user = stored_user(&stores).await;
    insert(&stores, &session(&user, T0)).await;
    insert(&stores, &session(&user, T0)).await;
    let now = T0 + Duration::minutes(1);
    let refused = session(&user, now);
    let limit = SessionLimit {
        max_sessions: 2,
        on_limit: LimitAction::Reject,
    };
    let result = stores
        .sessions
        .create_within_limit(&refused, limit, &check(&user), now)
        .await;
    assert!(matches!(result, Err(CreateSessionError::LimitReached)));
    assert_eq!(stores.sessions.find(refused.id).await.unwrap(), None);
    assert_eq!(
        stores.sessions.list_live(user.id, now).await.unwrap().len(),
        2
    );
}

pub async fn expired_and_ended_sessions_do_not_count_against_the_limit(stores: Stores) {
    let user = stored_user(&stores).await;
    let expired = session(&user, T0 - Duration::hours(9));
    let ended = session(&user, T0);
    insert(&stores, &expired).await;
    insert(&stores, &ended).await;
    stores
        .sessions
        .end(ended.id, InvalidationReason::UserLogout, EndedBy::Owner, T0)
        .await
        .unwrap();
    let limit = SessionLimit {
        max_sessions: 1,
        on_limit: LimitAction::Reject,
    };
    let fresh = session(&user, T0);
    let evicted = stores
        .sessions
        .create_within_limit(&fresh, limit, &check(&user), T0)
        .await
        .unwrap();
    assert!(evicted.is_empty());
}

pub async fn parallel_sign_ins_never_exceed_the_maximum(stores: Stores) {
    let user = stored_user(&stores).await;
    let attempts = (0..50).map(|i| {
        let stores = stores.clone();
        let session = session(&user, T0 + Duration::milliseconds(i));
        let check = check(&user);
        tokio::spawn(async move {
            stores
                .sessions
                .create_within_limit(&session, EVICT_AT_2, &check, T0 + Duration::seconds(1))
                .await
        })
    });
    for result in join_all(attempts).await {
        result.unwrap().unwrap();
    }
    let live = stores
        .sessions
        .list_live(user.id, T0 + Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(live.len(), 2);
}

pub async fn a_refresh_token_rotates_exactly_once_under_concurrency(stores: Stores) {
    let user = stored_user(&stores).await;
    let session = session(&user, T0);
    insert(&stores, &session).await;
    let presented = token(session.id, 1).hash();
    let now = T0 + Duration::minutes(3);
    let expires = now + Duration::hours(8);
    let attempts = (0..20u8).map(|i| {
        let stores = stores.clone();
        let next = token(session.id, 100 + i).hash();
        tokio::spawn(async move {
            stores
                .sessions
                .rotate_refresh_token(session.id, presented, next, expires, now)
                .await
        })
    });
    let winners: Vec<Session> = join_all(attempts)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().unwrap())
        .collect();
    assert_eq!(winners.len(), 1);
    let stored = stores.sessions.find(session.id).await.unwrap().unwrap();
    assert_eq!(stored, winners[0]);
    assert_eq!(stored.refresh.previous, Some(presented));
    assert_eq!(stored.refresh.rotated_at, Some(now));
    assert_eq!(stored.expires_at, expires);
    assert_eq!(stored.last_activity, now);
    assert!(
        stored.version > session.version,
        "the rotation kept the version"
    );
}

pub async fn an_ended_session_never_rotates(stores: Stores) {
    let user = stored_user(&stores).await;
    let session = session(&user, T0);
    insert(&stores, &session).await;
    stores
        .sessions
        .end(
            session.id,
            InvalidationReason::AdminRevoked,
            EndedBy::System,
            T0,
        )
        .await
        .unwrap();
    let rotated = stores
        .sessions
        .rotate_refresh_token(
            session.id,
            token(session.id, 1).hash(),
            token(session.id, 2).hash(),
            T0 + Duration::hours(8),
            T0,
        )
        .await
        .unwrap();
    assert_eq!(rotated, None);
}

pub async fn a_session_ends_once_and_keeps_its_first_reason(stores: Stores) {
    let user = stored_user(&stores).await;
    let session = session(&user, T0);
    insert(&stores, &session).await;
    let at = T0 + Duration::minutes(1);
    let ended = stores
        .sessions
        .end(
            session.id,
            InvalidationReason::PasswordChanged,
            EndedBy::Owner,
            at,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        ended.ended(),
        Some((at, InvalidationReason::PasswordChanged))
    );
    let again = stores
        .sessions
        .end(
            session.id,
            InvalidationReason::UserLogout,
            EndedBy::Owner,
            at + Duration::minutes(1),
        )
        .await
        .unwrap();
    assert_eq!(again, None);
    let stored = stores.sessions.find(session.id).await.unwrap().unwrap();
    assert_eq!(
        stored.ended(),
        Some((at, InvalidationReason::PasswordChanged))
    );
    let missing = SessionId::from_uuid(Uuid::new_v4());
    let none = stores
        .sessions
        .end(missing, InvalidationReason::UserLogout, EndedBy::Owner, at)
        .await
        .unwrap();
    assert_eq!(none, None);
}

pub async fn every_end_records_who_ended_it(stores: Stores) {
    let user = stored_user(&stores).await;
    let admin = stored_user(&stores).await;
    let by_admin = session(&user, T0);
    let mine = session(&user, T0);
    let live = session(&user, T0);
    for s in [&by_admin, &mine, &live] {
        insert(&stores, s).await;
    }
    let at = T0 + Duration::minutes(1);
    let administrator = EndedBy::Administrator(admin.id);
    let ended = stores
        .sessions
        .end(
            by_admin.id,
            InvalidationReason::AdminRevoked,
            administrator,
            at,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended.ended_by, Some(administrator));
    // A second end changes nothing, neither the reason nor who.
    stores
        .sessions
        .end(
            by_admin.id,
            InvalidationReason::UserLogout,
            EndedBy::Owner,
            at,
        )
        .await
        .unwrap();
    let stored = stores.sessions.find(by_admin.id).await.unwrap().unwrap();
    assert_eq!(stored.ended_by, Some(administrator));

    let all = stores
        .sessions
        .end_all_for_user(
            user.id,
            Some(live.id),
            InvalidationReason::UserLogoutAll,
            EndedBy::Owner,
            at,
        )
        .await
        .unwrap();
    assert_eq!(all, vec![mine.id]);
    let stored = stores.sessions.find(mine.id).await.unwrap().unwrap();
    assert_eq!(stored.ended_by, Some(EndedBy::Owner));
    let history = stores.sessions.list_ended(user.id, T0).await.unwrap();
    assert!(history.iter().all(|s| s.ended_by.is_some()), "{history:?}");
    let stored = stores.sessions.find(live.id).await.unwrap().unwrap();
    assert_eq!(stored.ended_by, None, "a live session was ended by nobody");
}

pub async fn ending_all_keeps_the_named_session_and_other_users(stores: Stores) {
    let user = stored_user(&stores).await;
    let neighbour = stored_user(&stores).await;
    let keep = session(&user, T0);
    let a = session(&user, T0);
    let b = session(&user, T0);
    let theirs = session(&neighbour, T0);
    for s in [&keep, &a, &b, &theirs] {
        insert(&stores, s).await;
    }
    let at = T0 + Duration::minutes(1);
    let mut ended = stores
        .sessions
        .end_all_for_user(
            user.id,
            Some(keep.id),
            InvalidationReason::UserLogoutAll,
            EndedBy::Owner,
            at,
        )
        .await
        .unwrap();
    ended.sort();
    let mut expected = vec![a.id, b.id];
    expected.sort();
    assert_eq!(ended, expected);
    let live = stores.sessions.list_live(user.id, at).await.unwrap();
    assert_eq!(live.iter().map(|s| s.id).collect::<Vec<_>>(), vec![keep.id]);
    assert_eq!(
        stores
            .sessions
            .list_live(neighbour.id, at)
            .await
            .unwrap()
            .len(),
        1
    );

    let all = stores
        .sessions
        .end_all_for_user(
            user.id,
            None,
            InvalidationReason::AccountDisabled,
            EndedBy::System,
            at,
        )
        .await
        .unwrap();
    assert_eq!(all, vec![keep.id]);
}

pub async fn live_sessions_list_most_recently_active_first(stores: Stores) {
    let user = stored_user(&stores).await;
    let first = session(&user, T0);
    let second = session(&user, T0 + Duration::minutes(1));
    let expired = session(&user, T0 - Duration::hours(9));
    let ended = session(&user, T0);
    for s in [&first, &second, &expired, &ended] {
        insert(&stores, s).await;
    }
    stores
        .sessions
        .end(ended.id, InvalidationReason::UserLogout, EndedBy::Owner, T0)
        .await
        .unwrap();
    record_activity(&stores, user.id, first.id, T0 + Duration::minutes(5)).await;
    let live = stores
        .sessions
        .list_live(user.id, T0 + Duration::minutes(6))
        .await
        .unwrap();
    assert_eq!(
        live.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![first.id, second.id]
    );
}

pub async fn activity_only_moves_forward_and_only_on_active_sessions(stores: Stores) {
    let user = stored_user(&stores).await;
    let session = session(&user, T0);
    insert(&stores, &session).await;
    let later = T0 + Duration::minutes(2);
    record_activity(&stores, user.id, session.id, later).await;
    record_activity(&stores, user.id, session.id, T0).await;
    let stored = stores.sessions.find(session.id).await.unwrap().unwrap();
    assert_eq!(stored.last_activity, later);

    stores
        .sessions
        .end(
            session.id,
            InvalidationReason::UserLogout,
            EndedBy::Owner,
            later,
        )
        .await
        .unwrap();
    record_activity(&stores, user.id, session.id, later + Duration::minutes(1)).await;
    let stored = stores.sessions.find(session.id).await.unwrap().unwrap();
    assert_eq!(stored.last_activity, later);
    let missing = SessionId::from_uuid(Uuid::new_v4());
    record_activity(&stores, user.id, missing, later).await;
}

pub async fn activity_never_reaches_another_users_session(stores: Stores) {
    let user = stored_user(&stores).await;
    let session = session(&user, T0);
    insert(&stores, &session).await;
    let stranger = UserId::from_uuid(Uuid::new_v4());
    record_activity(&stores, stranger, session.id, T0 + Duration::minutes(9)).await;
    let stored = stores.sessions.find(session.id).await.unwrap().unwrap();
    assert_eq!(stored.last_activity, T0);
}

pub async fn a_batch_of_activities_is_written_at_once_each_by_its_own_rules(stores: Stores) {
    let user = stored_user(&stores).await;
    let (first, second, ended) = (session(&user, T0), session(&user, T0), session(&user, T0));
    for s in [&first, &second, &ended] {
        insert(&stores, s).await;
    }
    stores
        .sessions
        .end(ended.id, InvalidationReason::UserLogout, EndedBy::Owner, T0)
        .await
        .unwrap();
    let activity = |session: &Session, user_id: UserId, minutes: i64| SessionActivity {
        user_id,
        session_id: session.id,
        at: T0 + Duration::minutes(minutes),
    };
    let stranger = UserId::from_uuid(Uuid::new_v4());
    let missing = session(&user, T0);
    stores
        .sessions
        .record_activities(&[
            activity(&first, user.id, 3),
            // The same session twice: the latest counts, whatever the order.
            activity(&first, user.id, 7),
            activity(&first, user.id, 5),
            activity(&second, stranger, 9),
            activity(&ended, user.id, 9),
            activity(&missing, user.id, 9),
        ])
        .await
        .unwrap();
    let last_activity = |id| {
        let stores = &stores;
        async move {
            stores
                .sessions
                .find(id)
                .await
                .unwrap()
                .unwrap()
                .last_activity
        }
    };
    assert_eq!(last_activity(first.id).await, T0 + Duration::minutes(7));
    assert_eq!(last_activity(second.id).await, T0);
    assert_eq!(last_activity(ended.id).await, T0);
    stores.sessions.record_activities(&[]).await.unwrap();
}

pub async fn summaries_are_found_only_for_their_owner(stores: Stores) {
    let user = stored_user(&stores).await;
    let session = session(&user, T0);
    insert(&stores, &session).await;
    let summary = stores
        .sessions
        .find_summary(user.id, session.id, T0)
        .await
        .unwrap();
    assert_eq!(summary, Some(SessionSummary::from(&session)));
    let stranger = UserId::from_uuid(Uuid::new_v4());
    let foreign = stores
        .sessions
        .find_summary(stranger, session.id, T0)
        .await
        .unwrap();
    assert_eq!(foreign, None);
    stores
        .sessions
        .end(
            session.id,
            InvalidationReason::AdminRevoked,
            EndedBy::System,
            T0,
        )
        .await
        .unwrap();
    let ended = stores
        .sessions
        .find_summary(user.id, session.id, T0)
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(ended.status, SessionStatus::Ended { .. }));
}

pub async fn history_lists_ended_sessions_since_newest_first(stores: Stores) {
    let user = stored_user(&stores).await;
    let long_ago = session(&user, T0);
    let recent = session(&user, T0);
    let latest = session(&user, T0);
    let live = session(&user, T0);
    for s in [&long_ago, &recent, &latest, &live] {
        insert(&stores, s).await;
    }
    for (s, at) in [
        (&long_ago, T0 + Duration::minutes(1)),
        (&recent, T0 + Duration::minutes(10)),
        (&latest, T0 + Duration::minutes(20)),
    ] {
        stores
            .sessions
            .end(s.id, InvalidationReason::AdminRevoked, EndedBy::System, at)
            .await
            .unwrap();
    }
    let history = stores
        .sessions
        .list_ended(user.id, T0 + Duration::minutes(10))
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|s| s.id).collect::<Vec<_>>(),
        vec![latest.id, recent.id]
    );
}

/// A sign-in whose user changed between the password check and the commit writes nothing:
/// no session, no eviction.
async fn refused_sign_in_writes_nothing(
    stores: &Stores,
    user: &User,
    verified: &User,
    session: &Session,
    expected: fn(&CreateSessionError) -> bool,
) {
    let now = session.created_at;
    let before = stores.sessions.list_live(user.id, now).await.unwrap();
    let result = stores
        .sessions
        .create_within_limit(session, EVICT_AT_2, &check(verified), now)
        .await;
    assert!(
        result.as_ref().is_err_and(expected),
        "unexpected outcome: {result:?}"
    );
    assert_eq!(stores.sessions.find(session.id).await.unwrap(), None);
    assert_eq!(
        stores.sessions.list_live(user.id, now).await.unwrap(),
        before
    );
}

/// Two live sessions of `user`: at the limit of [`EVICT_AT_2`], so that a sign-in that went
/// through would evict one.
async fn at_the_limit(stores: &Stores, user: &User) {
    insert_for(stores, user, &session(user, T0)).await;
    insert_for(stores, user, &session(user, T0)).await;
}

pub async fn sign_in_is_refused_when_the_user_was_disabled_meanwhile(stores: Stores) {
    let user = stored_user(&stores).await;
    at_the_limit(&stores, &user).await;
    let disable = UserChange {
        role: None,
        is_active: Some(false),
    };
    stores
        .administration
        .update(user.id, disable, T0)
        .await
        .unwrap();
    let attempt = session(&user, T0 + Duration::minutes(1));
    refused_sign_in_writes_nothing(&stores, &user, &user, &attempt, |e| {
        matches!(e, CreateSessionError::UserDisabled)
    })
    .await;
}

pub async fn sign_in_is_refused_when_the_password_changed_meanwhile(stores: Stores) {
    let user = stored_user(&stores).await;
    at_the_limit(&stores, &user).await;
    let new_hash = PasswordHash::new("$argon2id$v=19$m=8,t=1,p=1$bmV3c2FsdA$bmV3".into());
    assert!(
        stores
            .users
            .set_password_hash(user.id, &new_hash, T0)
            .await
            .unwrap()
    );
    // Verified against the old hash: refused.
    let attempt = session(&user, T0 + Duration::minutes(1));
    refused_sign_in_writes_nothing(&stores, &user, &user, &attempt, |e| {
        matches!(e, CreateSessionError::PasswordChanged)
    })
    .await;
    // Verified against the new one: stored.
    let changed = stores.users.find(user.id).await.unwrap().unwrap();
    insert_for(
        &stores,
        &changed,
        &session(&user, T0 + Duration::minutes(2)),
    )
    .await;
}

pub async fn sign_in_is_refused_with_the_new_role_when_the_role_changed_meanwhile(stores: Stores) {
    let user = stored_user(&stores).await;
    at_the_limit(&stores, &user).await;
    let promote = UserChange {
        role: Some(Role::VendorAdmin),
        is_active: None,
    };
    stores
        .administration
        .update(user.id, promote, T0)
        .await
        .unwrap();
    let attempt = session(&user, T0 + Duration::minutes(1));
    refused_sign_in_writes_nothing(&stores, &user, &user, &attempt, |e| {
        matches!(e, CreateSessionError::RoleChanged(Role::VendorAdmin))
    })
    .await;
    // The same sign-in with the role the store reported goes through.
    let mut retried = session(&user, T0 + Duration::minutes(2));
    retried.role = Role::VendorAdmin;
    let changed = stores.users.find(user.id).await.unwrap().unwrap();
    insert_for(&stores, &changed, &retried).await;
    assert_eq!(
        stores
            .sessions
            .find(retried.id)
            .await
            .unwrap()
            .unwrap()
            .role,
        Role::VendorAdmin
    );
}

pub async fn sign_in_of_a_user_that_is_gone_is_refused(stores: Stores) {
    let ghost = user(&format!("{}@example.com", Uuid::new_v4()));
    let attempt = session(&ghost, T0);
    refused_sign_in_writes_nothing(&stores, &ghost, &ghost, &attempt, |e| {
        matches!(e, CreateSessionError::UserGone)
    })
    .await;
}

pub async fn the_version_starts_at_1_and_grows_on_every_change_of_state(stores: Stores) {
    let user = stored_user(&stores).await;
    let session = session(&user, T0);
    insert(&stores, &session).await;
    let version = |s: Option<Session>| s.unwrap().version;
    let mut last = version(stores.sessions.find(session.id).await.unwrap());
    assert_eq!(last, 1);

    // Activity is not a change of state: caches need not hear of it.
    record_activity(&stores, user.id, session.id, T0 + Duration::minutes(1)).await;
    assert_eq!(
        version(stores.sessions.find(session.id).await.unwrap()),
        last
    );

    for byte in 1..3u8 {
        let now = T0 + Duration::minutes(i64::from(byte) * 2);
        let rotated = stores
            .sessions
            .rotate_refresh_token(
                session.id,
                token(session.id, byte).hash(),
                token(session.id, byte + 1).hash(),
                now + Duration::hours(8),
                now,
            )
            .await
            .unwrap();
        let rotated = version(rotated);
        assert!(rotated > last, "a rotation kept version {last}");
        assert_eq!(
            version(stores.sessions.find(session.id).await.unwrap()),
            rotated
        );
        last = rotated;
    }

    let ended = version(
        stores
            .sessions
            .end(
                session.id,
                InvalidationReason::UserLogout,
                EndedBy::Owner,
                T0 + Duration::minutes(9),
            )
            .await
            .unwrap(),
    );
    assert!(ended > last, "the end kept version {last}");
    assert_eq!(
        version(stores.sessions.find(session.id).await.unwrap()),
        ended
    );

    // Every other way of ending moves it too.
    let evicted = self::session(&user, T0);
    let kept = self::session(&user, T0);
    insert(&stores, &evicted).await;
    insert(&stores, &kept).await;
    record_activity(&stores, user.id, kept.id, T0 + Duration::minutes(1)).await;
    let third = self::session(&user, T0 + Duration::minutes(2));
    let victims = stores
        .sessions
        .create_within_limit(&third, EVICT_AT_2, &check(&user), third.created_at)
        .await
        .unwrap();
    assert_eq!(victims, vec![evicted.id]);
    assert!(version(stores.sessions.find(evicted.id).await.unwrap()) > 1);
    stores
        .sessions
        .end_all_for_user(
            user.id,
            None,
            InvalidationReason::UserLogoutAll,
            EndedBy::Owner,
            T0,
        )
        .await
        .unwrap();
    for id in [kept.id, third.id] {
        assert!(version(stores.sessions.find(id).await.unwrap()) > 1);
    }
}

pub async fn every_earlier_refresh_token_of_a_session_is_recognised(stores: Stores) {
    let user = stored_user(&stores).await;
    let session = session(&user, T0);
    let other = self::session(&user, T0);
    insert(&stores, &session).await;
    insert(&stores, &other).await;
    let mut retired = Vec::new();
    for byte in 1..=3u8 {
        let now = T0 + Duration::minutes(i64::from(byte));
        stores
            .sessions
            .rotate_refresh_token(
                session.id,
                token(session.id, byte).hash(),
                token(session.id, byte + 1).hash(),
                now + Duration::hours(8),
                now,
            )
            .await
            .unwrap()
            .unwrap();
        retired.push((token(session.id, byte).hash(), now));
    }
    for (hash, at) in retired {
        assert_eq!(
            stores
                .sessions
                .find_retired_refresh_token(session.id, hash)
                .await
                .unwrap(),
            Some(at),
            "a token retired at {at} is not recognised"
        );
        // Only as a token of its own session.
        assert_eq!(
            stores
                .sessions
                .find_retired_refresh_token(other.id, hash)
                .await
                .unwrap(),
            None
        );
    }
    // The current token is not retired, nor is one never issued.
    for unknown in [token(session.id, 4).hash(), token(session.id, 99).hash()] {
        assert_eq!(
            stores
                .sessions
                .find_retired_refresh_token(session.id, unknown)
                .await
                .unwrap(),
            None
        );
    }
    let missing = SessionId::from_uuid(Uuid::new_v4());
    assert_eq!(
        stores
            .sessions
            .find_retired_refresh_token(missing, token(session.id, 1).hash())
            .await
            .unwrap(),
        None
    );
}

/// Generates one `#[tokio::test]` per contract test, each with fresh stores from `$make`
/// (an async expression evaluating to [`Stores`]).
#[macro_export]
macro_rules! storage_contract_tests {
    ($make:expr) => {
        $crate::storage_contract_tests!(@tests $make;
            users_round_trip_and_emails_are_unique,
            password_hashes_are_replaced,
            sessions_round_trip_every_field,
            the_least_recently_active_session_is_evicted,
            reject_at_the_limit_writes_nothing,
            expired_and_ended_sessions_do_not_count_against_the_limit,
            parallel_sign_ins_never_exceed_the_maximum,
            a_refresh_token_rotates_exactly_once_under_concurrency,
            an_ended_session_never_rotates,
            a_session_ends_once_and_keeps_its_first_reason,
            every_end_records_who_ended_it,
            ending_all_keeps_the_named_session_and_other_users,
            live_sessions_list_most_recently_active_first,
            activity_only_moves_forward_and_only_on_active_sessions,
            activity_never_reaches_another_users_session,
            a_batch_of_activities_is_written_at_once_each_by_its_own_rules,
            summaries_are_found_only_for_their_owner,
            history_lists_ended_sessions_since_newest_first,
            sign_in_is_refused_when_the_user_was_disabled_meanwhile,
            sign_in_is_refused_when_the_password_changed_meanwhile,
            sign_in_is_refused_with_the_new_role_when_the_role_changed_meanwhile,
            sign_in_of_a_user_that_is_gone_is_refused,
            the_version_starts_at_1_and_grows_on_every_change_of_state,
            every_earlier_refresh_token_of_a_session_is_recognised,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::contract::$name($make).await;
            }
        )*
    };
}
