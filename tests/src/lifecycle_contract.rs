//! The contract of the lifecycle ports (administration, cleanup, sign-in attempt counting),
//! run against each adapter with [`lifecycle_contract_tests!`](crate::lifecycle_contract_tests).

use std::sync::Arc;

use futures::future::join_all;
use sessiond_domain::model::{EndedBy, InvalidationReason, Role, SessionStatus};
use sessiond_domain::ports::{
    AttemptCounter, SessionCleanup, SessionRepository, UpdateUserError, UserAdministration,
    UserChange, UserRepository,
};
use time::Duration;
use uuid::Uuid;

use crate::contract::{self, T0};

/// The lifecycle adapters under test, sharing one store with the repositories.
#[derive(Clone)]
pub struct LifecycleStores {
    pub users: Arc<dyn UserRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub administration: Arc<dyn UserAdministration>,
    pub cleanup: Arc<dyn SessionCleanup>,
    pub attempts: Arc<dyn AttemptCounter>,
}

impl std::fmt::Debug for LifecycleStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LifecycleStores").finish_non_exhaustive()
    }
}

async fn stored_user(stores: &LifecycleStores, role: Role) -> sessiond_domain::model::User {
    let mut user = contract::user(&format!("{}@example.com", Uuid::new_v4()));
    user.role = role;
    stores.users.create(&user).await.unwrap();
    user
}

pub async fn users_change_role_and_active_flag(stores: LifecycleStores) {
    // An admin besides the one changed, so the last-admin rule stays out of the way.
    stored_user(&stores, Role::SystemAdmin).await;
    let user = stored_user(&stores, Role::Guest).await;
    let at = T0 + Duration::hours(1);
    let change = UserChange {
        role: Some(Role::VendorAdmin),
        is_active: Some(false),
    };
    let updated = stores
        .administration
        .update(user.id, change, at)
        .await
        .unwrap();
    assert_eq!(updated.role, Role::VendorAdmin);
    assert!(!updated.is_active);
    assert_eq!(updated.updated_at, at);
    assert_eq!(stores.users.find(user.id).await.unwrap(), Some(updated));
    let missing = sessiond_domain::model::UserId::from_uuid(Uuid::new_v4());
    let result = stores
        .administration
        .update(missing, UserChange::default(), at)
        .await;
    assert!(matches!(result, Err(UpdateUserError::NotFound)));
}

pub async fn the_last_active_admin_survives_racing_changes(stores: LifecycleStores) {
    // Fresh stores: these two are the only admins. Each disables the other at once.
    let a = stored_user(&stores, Role::SystemAdmin).await;
    let b = stored_user(&stores, Role::SystemAdmin).await;
    let disable = UserChange {
        role: None,
        is_active: Some(false),
    };
    let attempts = [a.id, b.id].map(|id| {
        let stores = stores.clone();
        tokio::spawn(async move { stores.administration.update(id, disable, T0).await })
    });
    let results: Vec<_> = join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(UpdateUserError::LastActiveAdmin)))
        .count();
    assert_eq!(refused, 1, "exactly one of the two changes must be refused");

    // The survivor can be neither disabled nor demoted.
    let survivor = if results[0].is_ok() { b.id } else { a.id };
    let demote = UserChange {
        role: Some(Role::Guest),
        is_active: None,
    };
    for change in [demote, disable] {
        let result = stores.administration.update(survivor, change, T0).await;
        assert!(matches!(result, Err(UpdateUserError::LastActiveAdmin)));
    }
    // Changing a non-admin is never blocked by the rule.
    let guest = stored_user(&stores, Role::Guest).await;
    assert!(
        stores
            .administration
            .update(guest.id, disable, T0)
            .await
            .is_ok()
    );
}

pub async fn cleanup_expires_purges_and_is_idempotent(stores: LifecycleStores) {
    let user = stored_user(&stores, Role::Guest).await;
    let now = T0 + Duration::days(40);
    let expired = contract::session(&user, now - Duration::hours(9));
    let live = contract::session(&user, now - Duration::hours(1));
    let old_ended = contract::session(&user, T0);
    let recent_ended = contract::session(&user, now - Duration::hours(2));
    for s in [&expired, &live, &old_ended, &recent_ended] {
        stores
            .sessions
            .create_within_limit(
                s,
                sessiond_domain::ports::SessionLimit {
                    max_sessions: 100,
                    on_limit: sessiond_domain::model::LimitAction::Reject,
                },
                &contract::check(&user),
                s.created_at,
            )
            .await
            .unwrap();
    }
    stores
        .sessions
        .end(
            old_ended.id,
            InvalidationReason::UserLogout,
            EndedBy::Owner,
            T0,
        )
        .await
        .unwrap();
    stores
        .sessions
        .end(
            recent_ended.id,
            InvalidationReason::UserLogout,
            EndedBy::Owner,
            now - Duration::hours(1),
        )
        .await
        .unwrap();

    let purge_before = now - Duration::days(30);
    let outcome = stores
        .cleanup
        .run_pass(now, purge_before, purge_before, 2)
        .await
        .unwrap()
        .unwrap();
    assert!(outcome.expired.contains(&(user.id, expired.id)));
    assert!(!outcome.expired.iter().any(|(_, id)| *id == live.id));
    assert!(outcome.purged >= 1);

    let stored = stores.sessions.find(expired.id).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        SessionStatus::Ended {
            at: expired.expires_at,
            reason: InvalidationReason::Expired
        }
    );
    assert_eq!(stored.ended_by, Some(EndedBy::System));
    assert_eq!(stores.sessions.find(old_ended.id).await.unwrap(), None);
    assert!(
        stores
            .sessions
            .find(recent_ended.id)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        stores
            .sessions
            .find(live.id)
            .await
            .unwrap()
            .unwrap()
            .is_live(now)
    );

    let second = stores
        .cleanup
        .run_pass(now, purge_before, purge_before, 2)
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(!second.expired.iter().any(|(u, _)| *u == user.id));
}

pub async fn concurrent_cleanups_expire_each_session_once(stores: LifecycleStores) {
    let user = stored_user(&stores, Role::Guest).await;
    let now = T0 + Duration::days(1);
    for _ in 0..30 {
        let session = contract::session(&user, T0);
        stores
            .sessions
            .create_within_limit(
                &session,
                sessiond_domain::ports::SessionLimit {
                    max_sessions: 100,
                    on_limit: sessiond_domain::model::LimitAction::Reject,
                },
                &contract::check(&user),
                T0,
            )
            .await
            .unwrap();
    }
    let passes = (0..2).map(|_| {
        let stores = stores.clone();
        tokio::spawn(async move {
            stores
                .cleanup
                .run_pass(now, T0 - Duration::days(365), T0 - Duration::days(365), 7)
                .await
        })
    });
    let mine: usize = join_all(passes)
        .await
        .into_iter()
        .filter_map(|r| r.unwrap().unwrap())
        .map(|outcome| {
            outcome
                .expired
                .iter()
                .filter(|(u, _)| *u == user.id)
                .count()
        })
        .sum();
    assert_eq!(mine, 30);
}

pub async fn failed_attempts_are_counted_per_key_and_window(stores: LifecycleStores) {
    let key = format!("account:{}", Uuid::new_v4());
    let other = format!("ip:{}", Uuid::new_v4());
    let start = T0;
    let end = T0 + Duration::minutes(15);
    assert_eq!(stores.attempts.failures(&key, start).await.unwrap(), 0);
    assert_eq!(
        stores
            .attempts
            .record_failure(&key, start, end)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        stores
            .attempts
            .record_failure(&key, start, end)
            .await
            .unwrap(),
        2
    );
    assert_eq!(stores.attempts.failures(&key, start).await.unwrap(), 2);
    assert_eq!(stores.attempts.failures(&other, start).await.unwrap(), 0);
    assert_eq!(stores.attempts.failures(&key, end).await.unwrap(), 0);
}

/// Generates one `#[tokio::test]` per lifecycle contract test, each with fresh stores from
/// `$make` (an async expression evaluating to [`LifecycleStores`]).
#[macro_export]
macro_rules! lifecycle_contract_tests {
    ($make:expr) => {
        $crate::lifecycle_contract_tests!(@tests $make;
            users_change_role_and_active_flag,
            the_last_active_admin_survives_racing_changes,
            cleanup_expires_purges_and_is_idempotent,
            concurrent_cleanups_expire_each_session_once,
            failed_attempts_are_counted_per_key_and_window,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                $crate::lifecycle_contract::$name($make).await;
            }
        )*
    };
}
