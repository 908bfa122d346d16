//! The administrators' read ports, `UserDirectory` and `SessionStatistics`, as one contract
//! run against every adapter with [`admin_contract_tests!`](crate::admin_contract_tests).

use std::sync::Arc;

use sessiond_domain::model::{
    EmailPrefix, EndedBy, HourlyCounts, InvalidationReason, Role, StoredStatistics, User,
    UserFilter, UserPosition, hour_start,
};
use sessiond_domain::ports::{
    SessionCleanup, SessionRepository, SessionStatistics, UserDirectory, UserRepository,
};
use time::{Duration, OffsetDateTime};

use crate::contract::{T0, check, session, user};

/// The adapters under test, sharing one store.
#[derive(Clone)]
pub struct AdminStores {
    pub users: Arc<dyn UserRepository>,
    pub sessions: Arc<dyn SessionRepository>,
    pub cleanup: Arc<dyn SessionCleanup>,
    pub directory: Arc<dyn UserDirectory>,
    pub statistics: Arc<dyn SessionStatistics>,
}

impl std::fmt::Debug for AdminStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminStores").finish_non_exhaustive()
    }
}

/// Stores a user of `role` created at `T0 + minutes`.
async fn stored(
    stores: &AdminStores,
    email: &str,
    role: Role,
    is_active: bool,
    minutes: i64,
) -> User {
    let mut user = user(email);
    user.role = role;
    user.is_active = is_active;
    user.created_at = T0 + Duration::minutes(minutes);
    stores.users.create(&user).await.unwrap();
    user
}

async fn search(
    stores: &AdminStores,
    filter: &UserFilter,
    after: Option<UserPosition>,
    limit: u32,
) -> Vec<String> {
    stores
        .directory
        .search(filter, after, limit)
        .await
        .unwrap()
        .into_iter()
        .map(|user| user.email.as_str().to_owned())
        .collect()
}

pub async fn the_search_filters_and_pages_newest_first(stores: AdminStores) {
    stored(&stores, "g1@example.com", Role::Guest, true, 1).await;
    stored(&stores, "g2@example.com", Role::Guest, false, 2).await;
    let v3 = stored(&stores, "v3@example.com", Role::VendorAdmin, true, 3).await;
    stored(&stores, "g4@example.com", Role::Guest, true, 4).await;
    // Two users at one instant: ordered by id, descending.
    let mut twins = [
        stored(&stores, "t5a@example.com", Role::Guest, true, 5).await,
        stored(&stores, "t5b@example.com", Role::Guest, true, 5).await,
    ];
    twins.sort_by_key(UserPosition::sort_key);
    let twins: Vec<String> = twins.iter().map(|u| u.email.as_str().to_owned()).collect();

    let all = search(&stores, &UserFilter::default(), None, 10).await;
    let mut expected = twins.clone();
    expected.extend(["g4", "v3", "g2", "g1"].map(|e| format!("{e}@example.com")));
    assert_eq!(all, expected);

    let guests = UserFilter {
        role: Some(Role::Guest),
        ..UserFilter::default()
    };
    assert_eq!(search(&stores, &guests, None, 10).await.len(), 5);
    let inactive = UserFilter {
        is_active: Some(false),
        ..UserFilter::default()
    };
    assert_eq!(
        search(&stores, &inactive, None, 10).await,
        ["g2@example.com"]
    );
    let active_guests = UserFilter {
        role: Some(Role::Guest),
        is_active: Some(true),
        ..UserFilter::default()
    };
    assert_eq!(search(&stores, &active_guests, None, 10).await.len(), 4);
    let prefixed = UserFilter {
        email_prefix: EmailPrefix::parse("G").unwrap(),
        is_active: Some(true),
        ..UserFilter::default()
    };
    assert_eq!(
        search(&stores, &prefixed, None, 10).await,
        ["g4@example.com", "g1@example.com"]
    );

    // Pages: strictly after a position, at most the limit, also between the twins.
    let first = stores
        .directory
        .search(&UserFilter::default(), None, 1)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let after_twin = search(
        &stores,
        &UserFilter::default(),
        Some(UserPosition::of(&first[0])),
        2,
    )
    .await;
    assert_eq!(after_twin, [twins[1].clone(), "g4@example.com".to_owned()]);
    let after_v3 = search(
        &stores,
        &UserFilter::default(),
        Some(UserPosition::of(&v3)),
        10,
    )
    .await;
    assert_eq!(after_v3, ["g2@example.com", "g1@example.com"]);
    // A user created after a position was taken never shows up behind it.
    stored(&stores, "late@example.com", Role::Guest, true, 60).await;
    let again = search(
        &stores,
        &UserFilter::default(),
        Some(UserPosition::of(&v3)),
        10,
    )
    .await;
    assert_eq!(again, after_v3);
}

pub async fn an_email_prefix_matches_the_stored_form_character_for_character(stores: AdminStores) {
    for (i, email) in [
        "a%b@example.com",
        "axb@example.com",
        "a_b@example.com",
        "a\\b@example.com",
        "éve@example.com",
        "eve@example.com",
    ]
    .into_iter()
    .enumerate()
    {
        stored(&stores, email, Role::Guest, true, i as i64).await;
    }
    let with = async |prefix: &str| {
        let filter = UserFilter {
            email_prefix: EmailPrefix::parse(prefix).unwrap(),
            ..UserFilter::default()
        };
        search(&stores, &filter, None, 10).await
    };
    assert_eq!(with("a%").await, ["a%b@example.com"]);
    assert_eq!(with("a_").await, ["a_b@example.com"]);
    assert_eq!(with("a\\").await, ["a\\b@example.com"]);
    assert_eq!(with("ÉVE").await, ["éve@example.com"]);
    assert_eq!(with("E\u{301}VE@").await, ["éve@example.com"]);
    assert_eq!(with("EVE").await, ["eve@example.com"]);
    assert!(with("zzz").await.is_empty());
}

/// The counts of `hour` in `stored`, all entries of it added up.
fn hour(stored: &StoredStatistics, at: OffsetDateTime) -> HourlyCounts {
    let mut counts = HourlyCounts::empty(at);
    for entry in stored.hours.iter().filter(|h| hour_start(h.hour) == at) {
        counts.merge(entry);
    }
    counts
}

pub async fn statistics_count_what_happened_in_each_hour(stores: AdminStores) {
    let guest = stored(&stores, "guest@example.com", Role::Guest, true, 0).await;
    let employee = stored(&stores, "staff@example.com", Role::HotelEmployee, true, 0).await;
    let admin = user("admin@example.com");
    let h0 = hour_start(T0);
    let h1 = h0 + Duration::hours(1);
    let h2 = h0 + Duration::hours(2);

    // Three sign-ins in the first hour.
    let mut sessions = Vec::new();
    for owner in [&guest, &guest, &employee] {
        let opened = session(owner, T0 + Duration::minutes(10));
        stores
            .sessions
            .create_within_limit(
                &opened,
                sessiond_domain::ports::SessionLimit {
                    max_sessions: 10,
                    on_limit: sessiond_domain::model::LimitAction::Reject,
                },
                &check(owner),
                opened.created_at,
            )
            .await
            .unwrap();
        sessions.push(opened);
    }
    let before = stores.statistics.read(h0).await.unwrap();
    assert_eq!(before.open_by_role.get(Role::Guest), 2);
    assert_eq!(before.open_by_role.get(Role::HotelEmployee), 1);
    assert_eq!(hour(&before, h0).sign_ins, 3);

    // In the second hour: a sign-out, an administrator ends the employee's sessions, two
    // failed sign-ins; ending an ended session again counts nothing.
    let at = h1 + Duration::minutes(5);
    let logout = InvalidationReason::UserLogout;
    stores
        .sessions
        .end(sessions[0].id, logout, EndedBy::Owner, at)
        .await
        .unwrap();
    stores
        .sessions
        .end(sessions[0].id, logout, EndedBy::Owner, at)
        .await
        .unwrap();
    let revoked = InvalidationReason::AdminRevoked;
    stores
        .sessions
        .end_all_for_user(
            employee.id,
            None,
            revoked,
            EndedBy::Administrator(admin.id),
            at,
        )
        .await
        .unwrap();
    for _ in 0..2 {
        stores.statistics.record_failed_sign_in(at).await.unwrap();
    }
    // The last session expires in the third hour; cleanup, later, counts it there.
    let expiry = sessions[1].expires_at;
    stores
        .cleanup
        .run_pass(expiry + Duration::hours(3), T0, T0, 100)
        .await
        .unwrap();

    let after = stores.statistics.read(h0).await.unwrap();
    assert_eq!(after.open_by_role.iter().map(|(_, n)| n).sum::<u64>(), 0);
    let second = hour(&after, h1);
    assert_eq!(second.sign_ins, 0);
    assert_eq!(second.failed_sign_ins, 2);
    assert_eq!(second.ended.get(logout), 1);
    assert_eq!(second.ended.get(revoked), 1);
    let expired_hour = hour(&after, hour_start(expiry));
    assert_eq!(expired_hour.ended.get(InvalidationReason::Expired), 1);
    assert_eq!(hour(&after, h0).sign_ins, 3);
    // Hours before `since` are left out.
    assert_eq!(
        hour(&stores.statistics.read(h1).await.unwrap(), h0).sign_ins,
        0
    );

    // Forgetting drops the old hours and keeps the rest, and what is open, as it was.
    let more = session(&guest, h2 + Duration::minutes(1));
    stores
        .sessions
        .create_within_limit(
            &more,
            sessiond_domain::ports::SessionLimit {
                max_sessions: 10,
                on_limit: sessiond_domain::model::LimitAction::Reject,
            },
            &check(&guest),
            more.created_at,
        )
        .await
        .unwrap();
    stores.statistics.forget_before(h1).await.unwrap();
    let kept = stores.statistics.read(h0).await.unwrap();
    assert_eq!(hour(&kept, h0), HourlyCounts::empty(h0));
    assert_eq!(hour(&kept, h1), second);
    assert_eq!(kept.open_by_role.get(Role::Guest), 1);
    assert_eq!(
        kept.open_by_role.iter().map(|(_, n)| n).sum::<u64>(),
        1,
        "{kept:?}"
    );
}

/// One `#[tokio::test]` per contract test, each on stores from `$make`.
#[macro_export]
macro_rules! admin_contract_tests {
    ($make:expr) => {
        $crate::admin_contract_tests!(@tests $make;
            the_search_filters_and_pages_newest_first,
            an_email_prefix_matches_the_stored_form_character_for_character,
            statistics_count_what_happened_in_each_hour,
        );
    };
    (@tests $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                $crate::admin_contract::$name($make).await;
            }
        )*
    };
}
