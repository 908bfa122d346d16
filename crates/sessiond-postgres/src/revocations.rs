//! [`RevocationLog`] on `session_revocations` (SPEC §8), which the database fills itself:
//! triggers on `user_sessions` log every end but expiry, and every deletion of a live
//! session, in the transaction that makes it, and `NOTIFY sessiond_revocations` (migration
//! `2026-12-02-000005_revocation_log`) with the ended session named in the payload
//! (migration `…000010`), so that a listener drops it before its next read.
//!
//! **Reading.** A reader's position is a transaction id: one statement returns the entries
//! with `txid >=` the position together with `pg_snapshot_xmin` of the statement's own
//! snapshot, the next position. Every transaction below that xmin had finished when the
//! snapshot was taken, so its entries were in this read; a transaction still running then
//! has an id at or above it and is read next time. Nothing is skipped however transactions
//! interleave their commits (a serial id can commit after a larger one), at the price of
//! re-reading the entries of transactions that were running at the read.
//!
//! **Waiting.** One dedicated connection, outside the pool, `LISTEN`s. A notification, or a
//! (re)connection, ends [`RevocationLog::wait`] at once, with the revocations the
//! notifications named: a new connection may have missed
//! notifications, and the caller's next read catches up on them. The notification stream
//! does not end when the server goes silent (a cut link, a frozen host), so a listener that
//! heard nothing for a whole wait is probed with a query before the next wait relies on it;
//! one that errs, ends or does not answer within the wait is dropped and re-established.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures::{FutureExt, StreamExt};
use sessiond_domain::StoreError;
use sessiond_domain::model::{InvalidationReason, Revocation, SessionId, UserId};
use sessiond_domain::ports::{LogPosition, RevocationBatch, RevocationLog};
use time::OffsetDateTime;
use tokio::sync::Mutex;
use tokio::time::Instant;
use uuid::Uuid;

use crate::pool::redact_password;
use crate::{PgError, PgPool};

/// The channel the triggers notify.
pub const REVOCATIONS_CHANNEL: &str = "sessiond_revocations";

/// The listening connection's `application_name`: an operator (or a test) tells it apart in
/// `pg_stat_activity`, for instance to see that every instance listens on a new primary.
pub const LISTENER_APPLICATION_NAME: &str = "sessiond revocation listener";

/// The log from a position (`$1`, a transaction id; 0 for all of it), and where the next
/// read starts. The one-row `LEFT JOIN` returns the position even when there is no entry;
/// xid8 travels as text because diesel has no binding for it (it fits a bigint for the
/// next few thousand years of transactions).
///
/// A position beyond the server's own (`behind`) was handed out by another server: after a
/// failover to a standby that had not replayed everything the old primary had done, the new
/// primary gives out again transaction ids the reader believes it has passed, and entries
/// with those ids would be skipped. The server's history is not the one the position
/// describes, so the read starts from the beginning of the log (SPEC §8: a reader whose
/// position means nothing here resynchronises from scratch).
const READ: &str = "\
WITH here AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS next) \
SELECT here.next::text::bigint AS next, $1::text::xid8 > here.next AS behind, \
    r.txid::text::bigint AS txid, r.session_id, r.user_id, r.reason::text AS reason, r.revoked_at \
FROM here \
LEFT JOIN session_revocations AS r ON r.txid >= \
    CASE WHEN $1::text::xid8 > here.next THEN '0'::xid8 ELSE $1::text::xid8 END \
ORDER BY r.txid, r.id";

#[derive(QueryableByName)]
struct LogRow {
    #[diesel(sql_type = BigInt)]
    next: i64,
    #[diesel(sql_type = Bool)]
    behind: bool,
    #[diesel(sql_type = Nullable<BigInt>)]
    txid: Option<i64>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    session_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<diesel::sql_types::Uuid>)]
    user_id: Option<Uuid>,
    #[diesel(sql_type = Nullable<Text>)]
    reason: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    revoked_at: Option<OffsetDateTime>,
}

impl LogRow {
    /// The entry on this row; `None` on the row that only carries the position.
    fn revocation(self) -> Result<Option<Revocation>, PgError> {
        let (Some(session_id), Some(user_id), Some(revoked_at)) =
            (self.session_id, self.user_id, self.revoked_at)
        else {
            return Ok(None);
        };
        let reason = self
            .reason
            .map(|reason| reason.parse::<InvalidationReason>())
            .transpose()
            .map_err(|e| {
                PgError::corrupt("session_revocations", format!("session {session_id}: {e}"))
            })?;
        Ok(Some(Revocation {
            session_id: SessionId::from_uuid(session_id),
            user_id: UserId::from_uuid(user_id),
            reason,
            revoked_at,
        }))
    }
}

/// The listening connection and when it last showed it was alive.
struct Listener {
    conn: AsyncPgConnection,
    alive_at: Instant,
}

/// What one wait on the notification stream gave.
struct Heard {
    news: bool,
    alive: bool,
    /// The revocations the notifications named.
    named: Vec<Revocation>,
}

/// The revocation a notification names (migration `…000010`: `"<session> <user> <reason or
/// -> <revoked at, unix µs>"`); `None` for one that names none (an older trigger, a bare
/// `NOTIFY`) or cannot be read: the log read that follows finds it anyway.
fn named_revocation(payload: &str) -> Option<Revocation> {
    let mut parts = payload.split(' ');
    let session_id = Uuid::parse_str(parts.next()?).ok()?;
    let user_id = Uuid::parse_str(parts.next()?).ok()?;
    let reason = match parts.next()? {
        "-" => None,
        reason => Some(reason.parse::<InvalidationReason>().ok()?),
    };
    let micros: i128 = parts.next()?.parse().ok()?;
    if parts.next().is_some() {
        return None;
    }
    Some(Revocation {
        session_id: SessionId::from_uuid(session_id),
        user_id: UserId::from_uuid(user_id),
        reason,
        revoked_at: OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).ok()?,
    })
}

/// The revocation log in PostgreSQL: reads on the shared pool, waits on a connection of its
/// own.
pub struct PgRevocationLog {
    pool: PgPool,
    url: String,
    connect_timeout: Duration,
    listener: Mutex<Option<Listener>>,
}

impl fmt::Debug for PgRevocationLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgRevocationLog")
            .field("url", &redact_password(&self.url))
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl PgRevocationLog {
    /// A log read on `pool`, listening on a connection of its own to the pool's database,
    /// opened on the first [`RevocationLog::wait`] and within the pool's acquire timeout.
    pub fn new(pool: PgPool) -> Self {
        let settings = pool.settings();
        Self {
            url: settings.url.clone(),
            connect_timeout: settings.acquire_timeout,
            listener: Mutex::new(None),
            pool,
        }
    }

    /// Opens the listening connection and `LISTEN`s.
    async fn listen(&self) -> Result<Listener, PgError> {
        let mut conn = AsyncPgConnection::establish(&self.url).await?;
        diesel::sql_query(format!(
            "SET application_name = '{LISTENER_APPLICATION_NAME}'"
        ))
        .execute(&mut conn)
        .await?;
        diesel::sql_query(format!("LISTEN {REVOCATIONS_CHANNEL}"))
            .execute(&mut conn)
            .await?;
        Ok(Listener {
            conn,
            alive_at: Instant::now(),
        })
    }
}

/// Waits for a notification on `conn` until `deadline`; having heard one, takes the others
/// already received too, so that one read answers them all.
async fn next_notification(conn: &mut AsyncPgConnection, deadline: Instant) -> Heard {
    let mut stream = std::pin::pin!(conn.notifications_stream());
    match tokio::time::timeout_at(deadline, stream.next()).await {
        Err(_elapsed) => Heard {
            news: false,
            alive: true,
            named: Vec::new(),
        },
        Ok(Some(Ok(first))) => {
            let mut named: Vec<Revocation> = named_revocation(&first.payload).into_iter().collect();
            let alive = loop {
                match stream.next().now_or_never() {
                    Some(Some(Ok(more))) => named.extend(named_revocation(&more.payload)),
                    Some(Some(Err(_)) | None) => break false,
                    None => break true,
                }
            };
            Heard {
                news: true,
                alive,
                named,
            }
        }
        // The connection failed or closed: its driver reports it once, then stops.
        Ok(Some(Err(_)) | None) => Heard {
            news: false,
            alive: false,
            named: Vec::new(),
        },
    }
}

#[async_trait]
impl RevocationLog for PgRevocationLog {
    async fn read(&self, from: Option<LogPosition>) -> Result<RevocationBatch, StoreError> {
        let from = from.map_or(0, |LogPosition(txid)| txid);
        let from = i64::try_from(from)
            .map_err(|_| PgError::corrupt("session_revocations", format!("position {from}")))?;
        let mut conn = self.pool.get().await?;
        let rows: Vec<LogRow> = diesel::sql_query(READ)
            .bind::<BigInt, _>(from)
            .load(&mut conn)
            .await
            .map_err(PgError::from)?;
        let (next, behind) = <[LogRow]>::first(&rows)
            .map(|row| (row.next, row.behind))
            .ok_or_else(|| {
                PgError::corrupt("session_revocations", "the read returned no position")
            })?;
        if behind {
            tracing::warn!(
                position = from,
                server_position = next,
                "the revocation log's server has not reached this reader's position (a \
                 failover to a standby that had not replayed everything?): read it all again"
            );
        }
        let next = u64::try_from(next).map_err(|_| {
            PgError::corrupt("session_revocations", format!("negative position {next}"))
        })?;
        let newest = rows
            .iter()
            .filter_map(|row| row.txid)
            .max()
            .map(|txid| LogPosition(u64::try_from(txid).unwrap_or_default()));
        let mut revocations = Vec::with_capacity(rows.len());
        for row in rows {
            if let Some(revocation) = row.revocation()? {
                revocations.push(revocation);
            }
        }
        Ok(RevocationBatch {
            revocations,
            next: LogPosition(next),
            newest,
        })
    }

    async fn wait(&self, timeout: Duration) -> Vec<Revocation> {
        let deadline = Instant::now() + timeout;
        // Another caller waiting on the listener: this one waits out its own time.
        let Ok(mut guard) = tokio::time::timeout_at(deadline, self.listener.lock()).await else {
            return Vec::new();
        };
        loop {
            let Some(listener) = guard.as_mut() else {
                let connect_by = deadline.min(Instant::now() + self.connect_timeout);
                match tokio::time::timeout_at(connect_by, self.listen()).await {
                    Ok(Ok(listener)) => {
                        // Notifications sent before the LISTEN are lost: the caller's next
                        // read, which starts after it, finds their entries.
                        tracing::info!("listening for revocations");
                        *guard = Some(listener);
                        return Vec::new();
                    }
                    Ok(Err(error)) => {
                        tracing::warn!(error = %error, "cannot listen for revocations");
                    }
                    Err(_elapsed) => {
                        tracing::warn!("cannot listen for revocations: connecting timed out");
                    }
                }
                // No news can be had: the caller polls the log at this pace instead.
                tokio::time::sleep_until(deadline).await;
                return Vec::new();
            };

            // Silent for a whole wait: make sure the server is still there before relying
            // on its silence.
            if listener.alive_at.elapsed() >= timeout {
                let probe = diesel::sql_query("SELECT 1").execute(&mut listener.conn);
                match tokio::time::timeout_at(deadline, probe).await {
                    Ok(Ok(_)) => listener.alive_at = Instant::now(),
                    _ => {
                        tracing::warn!("revocation listener lost: no answer to a probe");
                        *guard = None;
                        continue;
                    }
                }
            }

            let heard = next_notification(&mut listener.conn, deadline).await;
            if heard.alive {
                if heard.news {
                    listener.alive_at = Instant::now();
                }
            } else {
                tracing::warn!("revocation listener lost: the connection failed");
                *guard = None;
            }
            if heard.news || heard.alive {
                return heard.named;
            }
            // Lost without news: reconnect within what is left of the wait.
        }
    }
}

#[cfg(test)]
mod tests {
    //! The log on a real server: what the triggers write, reads that never skip a late
    //! commit, and waits that end on news, on their timeout, and survive a lost connection.

    use std::time::Instant as StdInstant;

    use diesel::sql_types::Uuid as SqlUuid;
    use sessiond_domain::model::{
        DeviceInfo, Email, EndedBy, LimitAction, PasswordHash, RefreshState, RefreshToken, Role,
        Session, SessionStatus, User,
    };
    use sessiond_domain::ports::{
        SessionCleanup, SessionLimit, SessionRepository, SignInCheck, UserRepository,
    };
    use time::macros::datetime;

    use super::*;
    use crate::testing::{fresh_database_url, settings};
    use crate::{PgSessionCleanup, PgSessionRepository, PgUserRepository};

    /// Far enough ahead that the database clock sees these sessions live.
    const T0: OffsetDateTime = datetime!(2099-01-01 08:00 UTC);

    struct Fixture {
        url: String,
        pool: PgPool,
        users: PgUserRepository,
        sessions: PgSessionRepository,
        log: PgRevocationLog,
    }

    async fn fixture() -> Fixture {
        let url = fresh_database_url().await.unwrap();
        let settings = settings(url.clone());
        let pool = PgPool::connect(&settings).await.unwrap();
        Fixture {
            log: PgRevocationLog::new(pool.clone()),
            users: PgUserRepository::new(pool.clone()),
            sessions: PgSessionRepository::new(pool.clone()),
            pool,
            url,
        }
    }

    async fn user(fixture: &Fixture) -> User {
        let user = User {
            id: UserId::from_uuid(Uuid::new_v4()),
            email: Email::parse(&format!("{}@example.com", Uuid::new_v4())).unwrap(),
            password_hash: PasswordHash::new("$argon2id$x".into()),
            role: Role::Guest,
            hotel_id: None,
            is_active: true,
            created_at: T0,
            updated_at: T0,
        };
        fixture.users.create(&user).await.unwrap();
        user
    }

    async fn session(fixture: &Fixture, owner: &User, expires_at: OffsetDateTime) -> Session {
        let id = SessionId::from_uuid(Uuid::new_v4());
        let session = Session {
            id,
            user_id: owner.id,
            role: owner.role,
            hotel_id: None,
            device: DeviceInfo::unknown(),
            device_name: None,
            ip_address: None,
            user_agent: None,
            created_at: expires_at - time::Duration::hours(1),
            last_activity: expires_at - time::Duration::hours(1),
            expires_at,
            status: SessionStatus::Active,
            refresh: RefreshState {
                current: RefreshToken::new(id, [1; 32]).hash(),
                previous: None,
                rotated_at: None,
            },
            ended_by: None,
            version: 1,
        };
        let limit = SessionLimit {
            max_sessions: 100,
            on_limit: LimitAction::Reject,
        };
        let check = SignInCheck {
            password_hash: owner.password_hash.clone(),
        };
        fixture
            .sessions
            .create_within_limit(&session, limit, &check, session.created_at)
            .await
            .unwrap();
        session
    }

    async fn connect(url: &str) -> AsyncPgConnection {
        AsyncPgConnection::establish(url).await.unwrap()
    }

    /// Ends `id` the way an operator would, outside the service.
    const END_BY_SQL: &str = "UPDATE user_sessions SET is_active = false, \
        invalidated_at = $2, invalidation_reason = 'admin_revoked' WHERE id = $1";

    fn ids(batch: &RevocationBatch) -> Vec<SessionId> {
        batch.revocations.iter().map(|r| r.session_id).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_end_but_expiry_is_logged_by_the_database() {
        let fixture = fixture().await;
        let owner = user(&fixture).await;
        let by_repository = session(&fixture, &owner, T0).await;
        let by_sql = session(&fixture, &owner, T0).await;
        let deleted = session(&fixture, &owner, T0).await;
        let expired = session(&fixture, &owner, datetime!(2026-01-01 00:00 UTC)).await;
        let at = T0 - time::Duration::minutes(30);

        fixture
            .sessions
            .end(
                by_repository.id,
                InvalidationReason::UserLogout,
                EndedBy::Owner,
                at,
            )
            .await
            .unwrap()
            .unwrap();
        let mut conn = connect(&fixture.url).await;
        diesel::sql_query(END_BY_SQL)
            .bind::<SqlUuid, _>(by_sql.id.as_uuid())
            .bind::<Timestamptz, _>(at)
            .execute(&mut conn)
            .await
            .unwrap();
        // Expiry is not a revocation, whoever marks it.
        let cleanup = PgSessionCleanup::new(fixture.pool.clone());
        let outcome = cleanup
            .run_pass(
                T0 - time::Duration::days(1),
                T0 - time::Duration::days(400),
                T0 - time::Duration::days(400),
                10,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome.expired, vec![(owner.id, expired.id)]);
        let before_delete = fixture.log.read(None).await.unwrap();
        assert_eq!(
            before_delete.revocations,
            vec![
                Revocation {
                    session_id: by_repository.id,
                    user_id: owner.id,
                    reason: Some(InvalidationReason::UserLogout),
                    revoked_at: at,
                },
                Revocation {
                    session_id: by_sql.id,
                    user_id: owner.id,
                    reason: Some(InvalidationReason::AdminRevoked),
                    revoked_at: at,
                },
            ]
        );

        // Deleting the user deletes its sessions; only the live one is logged (the ended
        // ones were logged when they ended, the expired one needs nothing).
        diesel::sql_query("DELETE FROM users WHERE id = $1")
            .bind::<SqlUuid, _>(owner.id.as_uuid())
            .execute(&mut conn)
            .await
            .unwrap();
        // A read may repeat entries (transactions of other tests on the server hold the
        // position back); what is new is the deletion.
        let after = fixture.log.read(Some(before_delete.next)).await.unwrap();
        let new: Vec<&Revocation> = after
            .revocations
            .iter()
            .filter(|r| !before_delete.revocations.contains(r))
            .collect();
        assert_eq!(new.len(), 1, "{after:?}");
        assert_eq!((new[0].session_id, new[0].reason), (deleted.id, None));
        assert!(after.next >= before_delete.next);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_revocation_committed_late_by_an_earlier_transaction_is_never_skipped() {
        let fixture = fixture().await;
        let owner = user(&fixture).await;
        let early = session(&fixture, &owner, T0).await;
        let late = session(&fixture, &owner, T0).await;
        let at = T0 - time::Duration::minutes(30);

        // A transaction ends `early` (taking the smaller log id) and stays open.
        let mut slow = connect(&fixture.url).await;
        diesel::sql_query("BEGIN").execute(&mut slow).await.unwrap();
        diesel::sql_query(END_BY_SQL)
            .bind::<SqlUuid, _>(early.id.as_uuid())
            .bind::<Timestamptz, _>(at)
            .execute(&mut slow)
            .await
            .unwrap();
        // Meanwhile `late` ends and commits, and a reader reads it.
        fixture
            .sessions
            .end(
                late.id,
                InvalidationReason::AdminRevoked,
                EndedBy::System,
                at,
            )
            .await
            .unwrap()
            .unwrap();
        let first = fixture.log.read(None).await.unwrap();
        assert_eq!(ids(&first), vec![late.id]);

        diesel::sql_query("COMMIT")
            .execute(&mut slow)
            .await
            .unwrap();
        let second = fixture.log.read(Some(first.next)).await.unwrap();
        assert!(
            ids(&second).contains(&early.id),
            "the late commit was skipped: {second:?}"
        );
        // Reads from there on may repeat these two (while other transactions on the server
        // are in flight) but find nothing else.
        let third = fixture.log.read(Some(second.next)).await.unwrap();
        assert!(
            ids(&third)
                .iter()
                .all(|id| [early.id, late.id].contains(id)),
            "{third:?}"
        );
    }

    /// Waits `timeout` on `log`, returning how long it took.
    async fn timed_wait(log: &PgRevocationLog, timeout: Duration) -> Duration {
        let started = StdInstant::now();
        log.wait(timeout).await;
        started.elapsed()
    }

    /// A `NOTIFY` on the channel with no payload, sent 200 ms from now on `conn`.
    async fn bare_notify_soon(conn: &mut AsyncPgConnection) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        diesel::sql_query(format!("NOTIFY {REVOCATIONS_CHANNEL}"))
            .execute(conn)
            .await
            .unwrap();
    }

    /// Ends `id` through the repository, as an administrator's revocation does.
    async fn admin_revoke(fixture: &Fixture, id: SessionId) {
        fixture
            .sessions
            .end(
                id,
                InvalidationReason::AdminRevoked,
                EndedBy::System,
                T0 - time::Duration::minutes(1),
            )
            .await
            .unwrap()
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_position_the_server_has_not_reached_reads_the_whole_log() {
        let fixture = fixture().await;
        let owner = user(&fixture).await;
        let ended = session(&fixture, &owner, T0).await;
        admin_revoke(&fixture, ended.id).await;
        let now = fixture.log.read(None).await.unwrap();
        assert_eq!(ids(&now), vec![ended.id]);
        // A position far beyond the server's, as a reader brings it from an old primary
        // to a new one that had not replayed as far: the entries the new primary commits
        // with the ids the reader believes passed must not be skipped, so all is read.
        let ahead = LogPosition(now.next.0 + 1_000_000);
        let resynchronised = fixture.log.read(Some(ahead)).await.unwrap();
        assert_eq!(ids(&resynchronised), vec![ended.id]);
        assert!(resynchronised.next < ahead, "{resynchronised:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wait_ends_on_news_or_at_its_timeout() {
        let fixture = fixture().await;
        let long = Duration::from_secs(30);
        // The first wait connects and returns at once: news may have been missed before.
        assert!(timed_wait(&fixture.log, long).await < Duration::from_secs(10));

        let quiet = timed_wait(&fixture.log, Duration::from_millis(300)).await;
        assert!(quiet >= Duration::from_millis(300), "{quiet:?}");
        assert!(quiet < Duration::from_secs(5), "{quiet:?}");

        // A revocation through the repository, announced at its commit.
        let owner = user(&fixture).await;
        let ended = session(&fixture, &owner, T0).await;
        let notify = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            admin_revoke(&fixture, ended.id).await;
        };
        let (took, ()) = tokio::join!(timed_wait(&fixture.log, long), notify);
        assert!(took < Duration::from_secs(10), "{took:?}");

        // A bare NOTIFY on the channel wakes it too.
        let mut conn = connect(&fixture.url).await;
        let notify = bare_notify_soon(&mut conn);
        let (took, ()) = tokio::join!(timed_wait(&fixture.log, long), notify);
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn news_names_each_revocation_it_announces() {
        let fixture = fixture().await;
        let long = Duration::from_secs(30);
        // The first wait connects.
        fixture.log.wait(long).await;
        let owner = user(&fixture).await;
        let ended = session(&fixture, &owner, T0).await;
        let deleted = session(&fixture, &owner, T0).await;
        let notify = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            admin_revoke(&fixture, ended.id).await;
        };
        let (named, ()) = tokio::join!(fixture.log.wait(long), notify);
        assert_eq!(
            named,
            vec![Revocation {
                session_id: ended.id,
                user_id: owner.id,
                reason: Some(InvalidationReason::AdminRevoked),
                revoked_at: T0 - time::Duration::minutes(1),
            }]
        );

        // A live session deleted with SQL: named, with no reason.
        let mut conn = connect(&fixture.url).await;
        let delete = async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            diesel::sql_query("DELETE FROM user_sessions WHERE id = $1")
                .bind::<SqlUuid, _>(deleted.id.as_uuid())
                .execute(&mut conn)
                .await
                .unwrap();
        };
        let (named, ()) = tokio::join!(fixture.log.wait(long), delete);
        assert_eq!(named.len(), 1, "{named:?}");
        assert_eq!(named[0].session_id, deleted.id);
        assert_eq!(named[0].reason, None);

        // A bare NOTIFY names nothing: only the read that follows can tell.
        let notify = bare_notify_soon(&mut conn);
        let (named, ()) = tokio::join!(fixture.log.wait(long), notify);
        assert!(named.is_empty(), "{named:?}");
    }

    #[test]
    fn a_payload_that_does_not_name_a_revocation_names_none() {
        let session = Uuid::new_v4();
        let user = Uuid::new_v4();
        let named =
            named_revocation(&format!("{session} {user} admin_revoked 1700000000123456")).unwrap();
        assert_eq!(named.session_id.as_uuid(), session);
        assert_eq!(named.reason, Some(InvalidationReason::AdminRevoked));
        assert_eq!(
            named.revoked_at,
            OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_000).unwrap()
        );
        for payload in [
            String::new(),
            format!("{session} {user} made_up 1"),
            format!("{session} {user} - x"),
            format!("{session} {user} - 1 extra"),
            format!("{session} not-a-uuid - 1"),
        ] {
            assert_eq!(named_revocation(&payload), None, "{payload:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_listener_is_noticed_and_re_established() {
        let fixture = fixture().await;
        let long = Duration::from_secs(30);
        assert!(timed_wait(&fixture.log, long).await < Duration::from_secs(10));

        // The server ends the listening connection (a restart, a failover, an operator).
        let mut conn = connect(&fixture.url).await;
        let terminated = diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND application_name = '{LISTENER_APPLICATION_NAME}'"
        ))
        .execute(&mut conn)
        .await
        .unwrap();
        assert_eq!(terminated, 1, "no listening connection found");
        // The wait notices, reconnects and returns, so that the caller reads what it may
        // have missed.
        assert!(timed_wait(&fixture.log, long).await < Duration::from_secs(10));
        let notify = bare_notify_soon(&mut conn);
        let (took, ()) = tokio::join!(timed_wait(&fixture.log, long), notify);
        assert!(took < Duration::from_secs(10), "{took:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn without_a_server_wait_sleeps_out_its_timeout() {
        // Nothing listens on port 1: every connection attempt is refused at once.
        let settings = settings("postgres://postgres@127.0.0.1:1/none".into());
        let pool = PgPool::connect(&settings).await.unwrap();
        let log = PgRevocationLog::new(pool);
        for _ in 0..3 {
            let took = timed_wait(&log, Duration::from_millis(200)).await;
            assert!(took >= Duration::from_millis(200), "it spins: {took:?}");
            assert!(took < Duration::from_secs(5), "{took:?}");
        }
        assert!(log.read(None).await.is_err());
    }
}
