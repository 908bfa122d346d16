//! The storage contract against the PostgreSQL adapters, each test on a fresh database
//! (cloned from a migrated template: see `sessiond_postgres::testing`). Needs a server at
//! `TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`).

use std::sync::Arc;

use sessiond_postgres::{
    PgAttemptCounter, PgSessionCleanup, PgSessionRepository, PgSessionStatistics, PgUserRepository,
    testing,
};
use sessiond_tests::admin_contract::AdminStores;
use sessiond_tests::contract::Stores;
use sessiond_tests::lifecycle_contract::LifecycleStores;

#[expect(clippy::expect_used, reason = "a test without its database cannot run")]
async fn stores() -> Stores {
    let pool = testing::fresh_pool()
        .await
        .expect("a fresh PostgreSQL test database");
    let users = Arc::new(PgUserRepository::new(pool.clone()));
    Stores {
        users: users.clone(),
        administration: users,
        sessions: Arc::new(PgSessionRepository::new(pool)),
    }
}

sessiond_tests::storage_contract_tests!(stores().await);

/// All the lifecycle adapters on one pool of one fresh database.
#[expect(clippy::expect_used, reason = "a test without its database cannot run")]
async fn lifecycle_stores() -> LifecycleStores {
    let pool = testing::fresh_pool()
        .await
        .expect("a fresh PostgreSQL test database");
    let users = Arc::new(PgUserRepository::new(pool.clone()));
    LifecycleStores {
        users: users.clone(),
        administration: users,
        sessions: Arc::new(PgSessionRepository::new(pool.clone())),
        cleanup: Arc::new(PgSessionCleanup::new(pool.clone())),
        attempts: Arc::new(PgAttemptCounter::new(pool)),
    }
}

mod lifecycle {
    use super::lifecycle_stores;

    sessiond_tests::lifecycle_contract_tests!(lifecycle_stores().await);
}

/// The administrators' read adapters on one pool of one fresh database.
#[expect(clippy::expect_used, reason = "a test without its database cannot run")]
async fn admin_stores() -> AdminStores {
    let pool = testing::fresh_pool()
        .await
        .expect("a fresh PostgreSQL test database");
    let users = Arc::new(PgUserRepository::new(pool.clone()));
    AdminStores {
        users: users.clone(),
        directory: users,
        sessions: Arc::new(PgSessionRepository::new(pool.clone())),
        cleanup: Arc::new(PgSessionCleanup::new(pool.clone())),
        statistics: Arc::new(PgSessionStatistics::new(pool)),
    }
}

mod admin {
    use super::admin_stores;

    sessiond_tests::admin_contract_tests!(admin_stores().await);
}

/// What the shared contract cannot show: that sign-in really takes the lock security events
/// take (it waits for one in flight, then sees its result), and that the revocation log's
/// listener survives a link that goes silent.
mod serialised {
    use std::time::{Duration, Instant};

    use sessiond_domain::model::{LimitAction, PasswordHash};
    use sessiond_domain::ports::{
        CreateSessionError, RevocationLog, SessionLimit, SessionRepository, UserRepository,
    };
    use sessiond_postgres::{
        PgPool, PgRevocationLog, PgSessionRepository, PgUserRepository, REVOCATIONS_CHANNEL,
        testing,
    };
    use sessiond_tests::contract::{self, T0};
    use sessiond_tests::tcp_proxy::{Mode, TcpProxy};
    use tokio_postgres::NoTls;
    use uuid::Uuid;

    async fn sql(url: &str) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
        tokio::spawn(connection);
        client
    }

    /// A security event (`change`, SQL on the user `$1`) is in flight, uncommitted, when a
    /// sign-in verified against the old state commits: the sign-in waits for it, then
    /// refuses, writing nothing.
    async fn sign_in_racing(change: &str, refused: fn(&CreateSessionError) -> bool) {
        let url = testing::fresh_database_url().await.unwrap();
        let pool = PgPool::connect(&testing::settings(url.clone()))
            .await
            .unwrap();
        let users = PgUserRepository::new(pool.clone());
        let sessions = PgSessionRepository::new(pool);
        let user = contract::user(&format!("{}@example.com", Uuid::new_v4()));
        users.create(&user).await.unwrap();

        let mut event = sql(&url).await;
        let tx = event.transaction().await.unwrap();
        tx.execute(change, &[&user.id.as_uuid().to_string()])
            .await
            .unwrap();

        let session = contract::session(&user, T0);
        let check = contract::check(&user);
        let limit = SessionLimit {
            max_sessions: 5,
            on_limit: LimitAction::EvictOldest,
        };
        let sign_in = {
            let sessions = sessions.clone();
            let session = session.clone();
            tokio::spawn(async move {
                sessions
                    .create_within_limit(&session, limit, &check, T0)
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !sign_in.is_finished(),
            "the sign-in did not wait for the event"
        );
        tx.commit().await.unwrap();
        let result = sign_in.await.unwrap();
        assert!(result.as_ref().is_err_and(refused), "{result:?}");
        assert_eq!(sessions.find(session.id).await.unwrap(), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_sign_in_waits_for_a_password_change_in_flight_and_loses() {
        let hash = PasswordHash::new("$argon2id$changed".into());
        let change = format!(
            "UPDATE users SET password_hash = '{}' WHERE id = $1::text::uuid",
            hash.as_str()
        );
        sign_in_racing(&change, |e| {
            matches!(e, CreateSessionError::PasswordChanged)
        })
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_sign_in_waits_for_a_deactivation_in_flight_and_loses() {
        sign_in_racing(
            "UPDATE users SET is_active = false WHERE id = $1::text::uuid",
            |e| matches!(e, CreateSessionError::UserDisabled),
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_sign_in_waits_for_a_role_change_in_flight_and_reports_the_new_role() {
        sign_in_racing(
            "UPDATE users SET role = 'vendor_admin' WHERE id = $1::text::uuid",
            |e| {
                matches!(
                    e,
                    CreateSessionError::RoleChanged(sessiond_domain::model::Role::VendorAdmin)
                )
            },
        )
        .await;
    }

    /// Waits `timeout` on `log`, returning how long it took.
    async fn timed_wait(log: &PgRevocationLog, timeout: Duration) -> Duration {
        let started = Instant::now();
        log.wait(timeout).await;
        started.elapsed()
    }

    /// The listener's link goes silent (no reset, no close): waits still end at their
    /// timeout, the silent connection is given up, and once the link is back a new one hears
    /// the next notification.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_listener_whose_link_goes_silent_is_replaced() {
        let url = testing::fresh_database_url().await.unwrap();
        let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
        let proxied = url.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port()));
        assert_ne!(proxied, url, "the test server is not at 127.0.0.1:5432");
        let mut settings = testing::settings(proxied);
        settings.acquire_timeout = Duration::from_secs(1);
        let pool = PgPool::connect(&settings).await.unwrap();
        let log = PgRevocationLog::new(pool);
        let long = Duration::from_secs(30);
        assert!(timed_wait(&log, long).await < Duration::from_secs(10));

        proxy.set_mode(Mode::Blackhole);
        let short = Duration::from_millis(300);
        for _ in 0..4 {
            let took = timed_wait(&log, short).await;
            assert!(took >= short, "{took:?}");
            assert!(
                took < Duration::from_secs(3),
                "a wait hung on the silent link: {took:?}"
            );
        }

        // The link comes back; what the silent connection held is delivered, but the
        // listener already gave it up and listens on a new one.
        proxy.set_mode(Mode::Pass);
        assert!(timed_wait(&log, long).await < Duration::from_secs(10));
        let direct = sql(&url).await;
        let notify = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            direct
                .batch_execute(&format!("NOTIFY {REVOCATIONS_CHANNEL}"))
                .await
                .unwrap();
        };
        let (took, ()) = tokio::join!(timed_wait(&log, long), notify);
        assert!(took < Duration::from_secs(10), "{took:?}");
    }
}
