use mockall::predicate::eq;

use super::*;
use crate::model::EndedBy;
use crate::model::SessionStatus;
use crate::ports::{MockUserAdministration, MockUserDirectory};
use crate::service::fixtures::{self, Mocks, NOW};

fn service(mocks: Mocks, administration: MockUserAdministration) -> AdminService {
    service_with(mocks, administration, MockUserDirectory::new())
}

fn service_with(
    mocks: Mocks,
    administration: MockUserAdministration,
    directory: MockUserDirectory,
) -> AdminService {
    AdminService::new(
        mocks.into_ports(),
        std::sync::Arc::new(SessionPolicy::default()),
        std::sync::Arc::new(administration),
        std::sync::Arc::new(directory),
    )
}

fn admin_principal() -> Principal {
    let mut session = fixtures::session();
    session.role = Role::SystemAdmin;
    fixtures::principal(session)
}

/// Mocks in which the caller is an active system admin.
fn as_admin() -> Mocks {
    let mut mocks = Mocks::new();
    mocks.users.expect_find().returning(|_| {
        let mut admin = fixtures::user(Role::SystemAdmin);
        admin.role = Role::SystemAdmin;
        Ok(Some(admin))
    });
    mocks
}

fn target() -> User {
    let mut user = fixtures::user(Role::HotelEmployee);
    user.id = UserId::from_random_bytes([50; 16]);
    user
}

#[tokio::test]
async fn other_roles_and_stale_admins_are_forbidden() {
    // A guest's session: refused before any lookup.
    let mut mocks = Mocks::new();
    mocks.users.expect_find().times(0);
    let refusing = service(mocks, MockUserAdministration::new());
    let guest = fixtures::principal(fixtures::session());
    let error = refusing
        .end_session(&guest, fixtures::session_id())
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::Forbidden));

    // An admin session whose user was demoted meanwhile: refused on the user record.
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_find()
        .returning(|_| Ok(Some(fixtures::user(Role::Guest))));
    mocks.sessions.expect_end().times(0);
    let demoted = service(mocks, MockUserAdministration::new());
    let error = demoted
        .end_session(&admin_principal(), fixtures::session_id())
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::Forbidden));
}

#[tokio::test]
async fn a_role_change_ends_every_session_of_the_user() {
    let mut mocks = as_admin();
    let target = target();
    let id = target.id;
    let mut old_session = fixtures::session();
    old_session.user_id = id;
    old_session.role = Role::HotelEmployee;
    mocks
        .sessions
        .expect_list_live()
        .returning(move |_, _| Ok(vec![old_session.clone()]));
    mocks
        .sessions
        .expect_end_all_for_user()
        .with(
            eq(id),
            eq(None),
            eq(InvalidationReason::RoleChanged),
            eq(EndedBy::Administrator(admin_principal().user_id)),
            eq(NOW),
        )
        .times(1)
        .returning(|_, _, _, _, _| Ok(vec![]));
    let mut administration = MockUserAdministration::new();
    administration
        .expect_update()
        .returning(move |_, change, _| {
            let mut user = target.clone();
            user.role = change.role.unwrap_or(user.role);
            Ok(user)
        });
    let service = service(mocks, administration);
    let change = UserChange {
        role: Some(Role::VendorAdmin),
        is_active: None,
    };
    let user = service
        .update_user(&admin_principal(), id, change)
        .await
        .unwrap();
    assert_eq!(user.role, Role::VendorAdmin);
}

#[tokio::test]
async fn deactivation_ends_every_session_as_account_disabled() {
    let mut mocks = as_admin();
    let target = target();
    let id = target.id;
    mocks
        .sessions
        .expect_end_all_for_user()
        .with(
            eq(id),
            eq(None),
            eq(InvalidationReason::AccountDisabled),
            eq(EndedBy::Administrator(admin_principal().user_id)),
            eq(NOW),
        )
        .times(1)
        .returning(|_, _, _, _, _| Ok(vec![]));
    let mut administration = MockUserAdministration::new();
    administration.expect_update().returning(move |_, _, _| {
        let mut user = target.clone();
        user.is_active = false;
        Ok(user)
    });
    let service = service(mocks, administration);
    let change = UserChange {
        role: Some(Role::Guest),
        is_active: Some(false),
    };
    service
        .update_user(&admin_principal(), id, change)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_last_admin_is_protected() {
    let mut mocks = as_admin();
    mocks.sessions.expect_end_all_for_user().times(0);
    let mut administration = MockUserAdministration::new();
    administration
        .expect_update()
        .returning(|_, _, _| Err(UpdateUserError::LastActiveAdmin));
    let service = service(mocks, administration);
    let change = UserChange {
        role: None,
        is_active: Some(false),
    };
    let error = service
        .update_user(
            &admin_principal(),
            UserId::from_random_bytes([1; 16]),
            change,
        )
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::LastActiveAdmin));
}

#[tokio::test]
async fn an_admin_revokes_any_session() {
    let mut mocks = as_admin();
    let id = SessionId::from_random_bytes([77; 16]);
    mocks
        .sessions
        .expect_end()
        .with(
            eq(id),
            eq(InvalidationReason::AdminRevoked),
            eq(EndedBy::Administrator(admin_principal().user_id)),
            eq(NOW),
        )
        .times(1)
        .returning(|_, reason, _, at| {
            let mut ended = fixtures::session();
            ended.status = SessionStatus::Ended { at, reason };
            Ok(Some(ended))
        });
    // The event names the administrator who ended it.
    let admin = admin_principal().user_id;
    mocks.events = crate::ports::MockSessionEvents::new();
    mocks
        .events
        .expect_ended()
        .withf(move |user, ids, reason, by| {
            *user == fixtures::session().user_id
                && ids == [id].as_slice()
                && *reason == InvalidationReason::AdminRevoked
                && *by == EndedBy::Administrator(admin)
        })
        .times(1)
        .return_const(());
    let service = service(mocks, MockUserAdministration::new());
    service.end_session(&admin_principal(), id).await.unwrap();
}

#[tokio::test]
async fn searches_account_views_and_statistics_are_for_system_admins_only() {
    for principal in [fixtures::principal(fixtures::session()), admin_principal()] {
        // A guest's session, then an admin session whose user was demoted meanwhile.
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find()
            .returning(|_| Ok(Some(fixtures::user(Role::Guest))));
        mocks.sessions.expect_list_live().times(0);
        mocks.statistics = crate::ports::MockSessionStatistics::new();
        mocks.statistics.expect_read().times(0);
        let mut directory = MockUserDirectory::new();
        directory.expect_search().times(0);
        let service = service_with(mocks, MockUserAdministration::new(), directory);
        let search = service
            .search_users(&principal, &UserQuery::default())
            .await;
        assert!(matches!(search, Err(DomainError::Forbidden)));
        let detail = service.user_detail(&principal, target().id).await;
        assert!(matches!(detail, Err(DomainError::Forbidden)));
        let statistics = service.statistics(&principal).await;
        assert!(matches!(statistics, Err(DomainError::Forbidden)));
    }
}

fn numbered_user(n: u8) -> User {
    let mut user = target();
    user.id = UserId::from_random_bytes([n; 16]);
    user.created_at = NOW - time::Duration::minutes(i64::from(n));
    user
}

#[tokio::test]
async fn a_search_reads_one_more_than_the_page_to_know_where_the_next_starts() {
    let after = UserPosition::of(&numbered_user(1));
    let query = UserQuery {
        filter: crate::model::UserFilter {
            role: Some(Role::Guest),
            ..Default::default()
        },
        page_size: crate::model::PageSize::new(2).unwrap(),
        after: Some(after),
    };
    let mut directory = MockUserDirectory::new();
    let expected = query.filter.clone();
    directory
        .expect_search()
        .withf(move |filter, from, limit| {
            *filter == expected && *from == Some(after) && *limit == 3
        })
        .times(1)
        .returning(|_, _, _| Ok((2..=4).map(numbered_user).collect()));
    // The last page: fewer than asked for.
    directory
        .expect_search()
        .times(1)
        .returning(|_, _, _| Ok(vec![numbered_user(5), numbered_user(6)]));
    let service = service_with(as_admin(), MockUserAdministration::new(), directory);
    let page = service
        .search_users(&admin_principal(), &query)
        .await
        .unwrap();
    assert_eq!(page.users, vec![numbered_user(2), numbered_user(3)]);
    assert_eq!(page.next, Some(UserPosition::of(&numbered_user(3))));
    let last = service
        .search_users(&admin_principal(), &query)
        .await
        .unwrap();
    assert_eq!(last.users.len(), 2);
    assert_eq!(last.next, None);
}

#[tokio::test]
async fn the_account_view_caps_the_history_and_names_the_administrators_still_known() {
    let known_admin = UserId::from_random_bytes([60; 16]);
    let gone_admin = UserId::from_random_bytes([61; 16]);
    let mut mocks = Mocks::new();
    let user = target();
    let id = user.id;
    mocks.users.expect_find().returning(move |asked| {
        Ok(if asked == id {
            Some(target())
        } else if asked == known_admin || asked == admin_principal().user_id {
            let mut admin = fixtures::user(Role::SystemAdmin);
            admin.id = asked;
            Some(admin)
        } else {
            None
        })
    });
    mocks
        .sessions
        .expect_list_live()
        .with(eq(id), eq(NOW))
        .returning(|_, _| Ok(vec![fixtures::session()]));
    let since = NOW - SessionPolicy::default().history_retention;
    mocks
        .sessions
        .expect_list_ended()
        .with(eq(id), eq(since))
        .returning(move |_, _| {
            Ok((0..60)
                .map(|i| {
                    let mut ended = fixtures::session();
                    ended.status = SessionStatus::Ended {
                        at: NOW - time::Duration::minutes(i),
                        reason: InvalidationReason::AdminRevoked,
                    };
                    ended.ended_by = Some(EndedBy::Administrator(if i % 2 == 0 {
                        known_admin
                    } else {
                        gone_admin
                    }));
                    ended
                })
                .collect())
        });
    let admin = service(mocks, MockUserAdministration::new());
    let detail = admin.user_detail(&admin_principal(), id).await.unwrap();
    assert_eq!(detail.user, user);
    assert_eq!(detail.live_sessions.len(), 1);
    assert_eq!(detail.history.len(), HISTORY_SHOWN);
    assert_eq!(detail.administrators.len(), 1);
    assert_eq!(
        detail.administrators.get(&known_admin).map(Email::as_str),
        Some("alice@example.com")
    );

    // An unknown user: nothing else is read.
    let mut mocks = Mocks::new();
    let admin = admin_principal().user_id;
    mocks
        .users
        .expect_find()
        .returning(move |asked| Ok((asked == admin).then(|| fixtures::user(Role::SystemAdmin))));
    mocks.sessions.expect_list_live().times(0);
    let unknown = service(mocks, MockUserAdministration::new())
        .user_detail(&admin_principal(), id)
        .await;
    assert!(matches!(unknown, Err(DomainError::NotFound)));
}

#[tokio::test]
async fn statistics_read_the_last_24_hours_and_lay_out_every_hour() {
    let mut mocks = as_admin();
    mocks.statistics = crate::ports::MockSessionStatistics::new();
    mocks
        .statistics
        .expect_read()
        .with(eq(SystemStatistics::window_start(NOW)))
        .times(1)
        .returning(|_| Ok(crate::model::StoredStatistics::default()));
    let service = service(mocks, MockUserAdministration::new());
    let statistics = service.statistics(&admin_principal()).await.unwrap();
    assert_eq!(statistics.generated_at, NOW);
    assert_eq!(statistics.hours.len(), 24);
    assert_eq!(
        statistics.hours.last().map(|h| h.hour),
        Some(crate::model::hour_start(NOW))
    );
}
