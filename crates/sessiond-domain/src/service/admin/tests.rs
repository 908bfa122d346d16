use mockall::predicate::eq;

use super::*;
use crate::model::EndedBy;
use crate::model::SessionStatus;
use crate::ports::MockUserAdministration;
use crate::service::fixtures::{self, Mocks, NOW};

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
    let service = AdminService::new(
        mocks.into_ports(),
        std::sync::Arc::new(MockUserAdministration::new()),
    );
    let guest = fixtures::principal(fixtures::session());
    let error = service
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
    let service = AdminService::new(
        mocks.into_ports(),
        std::sync::Arc::new(MockUserAdministration::new()),
    );
    let error = service
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
    let service = AdminService::new(mocks.into_ports(), std::sync::Arc::new(administration));
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
    let service = AdminService::new(mocks.into_ports(), std::sync::Arc::new(administration));
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
    let service = AdminService::new(mocks.into_ports(), std::sync::Arc::new(administration));
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
    let service = AdminService::new(
        mocks.into_ports(),
        std::sync::Arc::new(MockUserAdministration::new()),
    );
    service.end_session(&admin_principal(), id).await.unwrap();
}
