use mockall::predicate::eq;

use super::*;
use crate::model::EndedBy;
use crate::model::PasswordHash;
use crate::service::fixtures::{self, Mocks, NOW};

fn password(raw: &str) -> Password {
    Password::presented(raw.into()).unwrap()
}

#[tokio::test]
async fn a_wrong_current_password_changes_nothing() {
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_find()
        .returning(|_| Ok(Some(fixtures::user(Role::Guest))));
    mocks.hasher.expect_verify().returning(|_, _| Ok(false));
    mocks.hasher.expect_hash().times(0);
    mocks.users.expect_set_password_hash().times(0);
    mocks.sessions.expect_end_all_for_user().times(0);
    let me = fixtures::principal(fixtures::session());
    let error = AccountService::new(mocks.into_ports())
        .change_password(&me, password("wrong"), password("new password"))
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::WrongPassword));
}

#[tokio::test]
async fn a_password_change_ends_every_other_session() {
    let mut mocks = Mocks::new();
    let me = fixtures::principal(fixtures::session());
    mocks
        .users
        .expect_find()
        .returning(|_| Ok(Some(fixtures::user(Role::Guest))));
    mocks.hasher.expect_verify().returning(|_, _| Ok(true));
    mocks
        .hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$new".into())));
    mocks
        .users
        .expect_set_password_hash()
        .withf(|_, hash, at| hash.as_str() == "$argon2id$new" && *at == NOW)
        .times(1)
        .returning(|_, _, _| Ok(true));
    mocks
        .sessions
        .expect_end_all_for_user()
        .with(
            eq(me.user_id),
            eq(Some(me.session.id)),
            eq(InvalidationReason::PasswordChanged),
            eq(EndedBy::Owner),
            eq(NOW),
        )
        .times(1)
        .returning(|_, _, _, _, _| Ok(vec![]));
    AccountService::new(mocks.into_ports())
        .change_password(&me, password("right"), password("new password"))
        .await
        .unwrap();
}

#[tokio::test]
async fn registration_makes_an_active_guest_and_reports_a_taken_email() {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$h".into())));
    mocks
        .users
        .expect_create()
        .withf(|user| user.role == Role::Guest && user.is_active && user.created_at == NOW)
        .times(1)
        .returning(|_| Ok(()));
    let email = Email::parse("bob@example.com").unwrap();
    let user = AccountService::new(mocks.into_ports())
        .register(email.clone(), password("password1"))
        .await
        .unwrap();
    assert_eq!(user.email, email);

    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$h".into())));
    mocks
        .users
        .expect_create()
        .returning(|_| Err(CreateUserError::EmailTaken));
    let error = AccountService::new(mocks.into_ports())
        .register(email, password("password1"))
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::EmailTaken));
}
