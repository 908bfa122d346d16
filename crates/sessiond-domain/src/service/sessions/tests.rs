use std::sync::Arc;

use mockall::predicate::eq;
use time::Duration;

use super::*;
use crate::model::EndedBy;
use crate::model::{SessionStatus, UserId};
use crate::service::fixtures::{self, Mocks, NOW};

fn service(mocks: Mocks) -> SessionService {
    SessionService::new(mocks.into_ports(), Arc::new(SessionPolicy::default()))
}

fn other_session_of(user_id: UserId) -> Session {
    let mut session = fixtures::session();
    session.id = SessionId::from_random_bytes([5; 16]);
    session.user_id = user_id;
    session
}

#[tokio::test]
async fn another_users_session_is_not_found_and_stays_untouched() {
    let mut mocks = Mocks::new();
    let foreign = other_session_of(UserId::from_random_bytes([66; 16]));
    let id = foreign.id;
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(foreign.clone())));
    mocks.sessions.expect_end().times(0);
    let me = fixtures::principal(fixtures::session());
    let error = service(mocks).end_own(&me, id).await.unwrap_err();
    assert!(matches!(error, DomainError::NotFound));
}

#[tokio::test]
async fn ending_my_own_session_records_a_user_logout() {
    let mut mocks = Mocks::new();
    let me = fixtures::principal(fixtures::session());
    let mine = other_session_of(me.user_id);
    let id = mine.id;
    let stored = mine.clone();
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(stored.clone())));
    mocks
        .sessions
        .expect_end()
        .with(
            eq(id),
            eq(InvalidationReason::EndedFromOtherDevice),
            eq(EndedBy::Owner),
            eq(NOW),
        )
        .times(1)
        .returning(move |_, reason, _, at| {
            let mut ended = mine.clone();
            ended.status = SessionStatus::Ended { at, reason };
            Ok(Some(ended))
        });
    service(mocks).end_own(&me, id).await.unwrap();
}

#[tokio::test]
async fn ending_an_already_ended_session_is_not_found() {
    let mut mocks = Mocks::new();
    let me = fixtures::principal(fixtures::session());
    let mine = other_session_of(me.user_id);
    let id = mine.id;
    mocks
        .sessions
        .expect_find()
        .returning(move |_| Ok(Some(mine.clone())));
    mocks.sessions.expect_end().returning(|_, _, _, _| Ok(None));
    let error = service(mocks).end_own(&me, id).await.unwrap_err();
    assert!(matches!(error, DomainError::NotFound));
}

#[tokio::test]
async fn ending_the_others_keeps_the_current_session() {
    let mut mocks = Mocks::new();
    let me = fixtures::principal(fixtures::session());
    let others = vec![
        SessionId::from_random_bytes([5; 16]),
        SessionId::from_random_bytes([6; 16]),
    ];
    mocks
        .sessions
        .expect_end_all_for_user()
        .with(
            eq(me.user_id),
            eq(Some(me.session.id)),
            eq(InvalidationReason::UserLogoutAll),
            eq(EndedBy::Owner),
            eq(NOW),
        )
        .times(1)
        .returning(move |_, _, _, _, _| Ok(others.clone()));
    assert_eq!(service(mocks).end_others(&me).await.unwrap(), 2);
}

#[tokio::test]
async fn history_covers_the_retention_period() {
    let mut mocks = Mocks::new();
    let me = fixtures::principal(fixtures::session());
    mocks
        .sessions
        .expect_list_ended()
        .with(eq(me.user_id), eq(NOW - Duration::days(30)))
        .times(1)
        .returning(|_, _| Ok(vec![]));
    assert!(service(mocks).history(&me).await.unwrap().is_empty());
}

#[tokio::test]
async fn sign_out_ends_the_current_session() {
    let mut mocks = Mocks::new();
    let me = fixtures::principal(fixtures::session());
    mocks
        .sessions
        .expect_end()
        .with(
            eq(me.session.id),
            eq(InvalidationReason::UserLogout),
            eq(EndedBy::Owner),
            eq(NOW),
        )
        .times(1)
        .returning(|_, _, _, _| Ok(None));
    service(mocks).sign_out(&me).await.unwrap();
}
