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
    let mut mocks = Mocks::unthrottled();
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
    let mut mocks = Mocks::unthrottled();
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
        .register(email.clone(), password("password1"), None)
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
        .register(email, password("password1"), None)
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::EmailTaken));
}

/// Mocks in which the caller (alice) exists with the password "right".
fn caller_exists() -> Mocks {
    let mut mocks = Mocks::new();
    mocks
        .users
        .expect_find()
        .returning(|_| Ok(Some(fixtures::user(Role::Guest))));
    mocks
        .hasher
        .expect_verify()
        .returning(|current, _| Ok(current.expose() == "right"));
    mocks
}

#[tokio::test]
async fn wrong_current_passwords_are_counted_per_user_like_failed_sign_ins() {
    let me = fixtures::principal(fixtures::session());
    let key = format!("password:{}", me.user_id);
    let mut mocks = caller_exists();
    let expected = key.clone();
    mocks
        .attempts
        .expect_failures()
        .withf(move |k, start| k == expected && *start == NOW)
        .returning(|_, _| Ok(4));
    let window_end = NOW + time::Duration::minutes(15);
    mocks
        .attempts
        .expect_record_failure()
        .withf(move |k, start, end| *k == key && *start == NOW && *end == window_end)
        .times(1)
        .returning(|_, _, _| Ok(5));
    mocks.users.expect_set_password_hash().times(0);
    let error = AccountService::new(mocks.into_ports())
        .change_password(&me, password("wrong"), password("new password"))
        .await
        .unwrap_err();
    assert!(matches!(error, DomainError::WrongPassword), "{error:?}");
}

#[tokio::test]
async fn at_the_limit_a_password_change_is_refused_even_with_the_right_password() {
    let me = fixtures::principal(fixtures::session());
    let mut mocks = caller_exists();
    // 12:00 is a window start: the 15-minute window ends in 900 s.
    mocks.now = NOW + time::Duration::seconds(100);
    mocks.attempts.expect_failures().returning(|_, _| Ok(5));
    mocks.attempts.expect_record_failure().times(0);
    mocks.hasher.checkpoint();
    mocks.hasher.expect_verify().times(0);
    mocks.hasher.expect_hash().times(0);
    mocks.users.expect_set_password_hash().times(0);
    mocks.sessions.expect_end_all_for_user().times(0);
    let error = AccountService::new(mocks.into_ports())
        .change_password(&me, password("right"), password("new password"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DomainError::RateLimited {
                retry_after_seconds: 800
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_password_guess_limit_follows_the_configured_throttle() {
    let me = fixtures::principal(fixtures::session());
    let mut mocks = caller_exists();
    mocks.attempts.expect_failures().returning(|_, _| Ok(2));
    let throttle = ThrottlePolicy {
        max_failures_per_account: 2,
        ..ThrottlePolicy::default()
    };
    let error = AccountService::new(mocks.into_ports())
        .with_throttle(throttle)
        .change_password(&me, password("right"), password("new password"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DomainError::RateLimited { .. }),
        "{error:?}"
    );
}

fn registering() -> Mocks {
    let mut mocks = Mocks::new();
    mocks
        .hasher
        .expect_hash()
        .returning(|_| Ok(PasswordHash::new("$argon2id$h".into())));
    mocks.users.expect_create().returning(|_| Ok(()));
    mocks
}

#[tokio::test]
async fn registrations_are_counted_per_client_address_and_refused_beyond_the_limit() {
    let client: std::net::IpAddr = "192.0.2.7".parse().unwrap();
    let window_end = NOW + time::Duration::minutes(15);
    // The 20th registration of the window passes...
    let mut mocks = registering();
    mocks
        .attempts
        .expect_record_failure()
        .withf(move |key, start, end| {
            key == "register:192.0.2.7" && *start == NOW && *end == window_end
        })
        .times(1)
        .returning(|_, _, _| Ok(20));
    let email = Email::parse("bob@example.com").unwrap();
    AccountService::new(mocks.into_ports())
        .register(email.clone(), password("password1"), Some(client))
        .await
        .unwrap();
    // ...the 21st is refused before any hashing or lookup.
    let mut mocks = Mocks::new();
    mocks
        .attempts
        .expect_record_failure()
        .returning(|_, _, _| Ok(21));
    mocks.hasher.expect_hash().times(0);
    mocks.users.expect_create().times(0);
    let error = AccountService::new(mocks.into_ports())
        .register(email.clone(), password("password1"), Some(client))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            DomainError::RateLimited {
                retry_after_seconds: 900
            }
        ),
        "{error:?}"
    );
    // The limit is the configured one.
    let mut mocks = Mocks::new();
    mocks
        .attempts
        .expect_record_failure()
        .returning(|_, _, _| Ok(3));
    let throttle = ThrottlePolicy {
        max_registrations_per_ip: 2,
        ..ThrottlePolicy::default()
    };
    let error = AccountService::new(mocks.into_ports())
        .with_throttle(throttle)
        .register(email, password("password1"), Some(client))
        .await
        .unwrap_err();
    assert!(
        matches!(error, DomainError::RateLimited { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_counter_outage_does_not_block_registration() {
    let mut mocks = registering();
    mocks
        .attempts
        .expect_record_failure()
        .returning(|_, _, _| Err(crate::error::StoreError::Unavailable("down".into())));
    let email = Email::parse("bob@example.com").unwrap();
    AccountService::new(mocks.into_ports())
        .register(
            email,
            password("password1"),
            Some("192.0.2.7".parse().unwrap()),
        )
        .await
        .unwrap();
}
