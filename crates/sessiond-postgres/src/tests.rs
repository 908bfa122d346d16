//! Tests of what is specific to PostgreSQL: the schema, the pool, error mapping, corrupt
//! rows. The port contract itself is checked by the shared suite in the `tests` crate.
//!
//! They need a server (see [`crate::testing`]).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{Integer, Nullable, Text};
use diesel_async::{AsyncConnection, AsyncMigrationHarness, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::MigrationHarness;
use sessiond_domain::StoreError;
use sessiond_domain::model::{
    DeviceInfo, Email, PasswordHash, RefreshState, RefreshToken, Role, Session, SessionActivity,
    SessionId, SessionStatus, User, UserId,
};
use sessiond_domain::ports::{
    AttemptCounter, CreateUserError, SessionRepository, SignInCheck, UpdateUserError,
    UserAdministration, UserChange, UserRepository,
};
use time::macros::datetime;
use uuid::Uuid;

use crate::testing::{admin_url, fresh_database_url, fresh_pool, settings, with_database};
use crate::{
    MIGRATIONS, PgAttemptCounter, PgPool, PgSessionRepository, PgSettings, PgUserRepository,
    run_migrations,
};

const SCHEMA_RS: &str = include_str!("schema.rs");

#[derive(QueryableByName)]
struct ColumnInfo {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    udt_name: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
    #[diesel(sql_type = Nullable<Integer>)]
    max_length: Option<i32>,
}

#[derive(QueryableByName)]
struct KeyInfo {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    parent: String,
}

/// diesel's name for a PostgreSQL type, as `diesel print-schema` spells it.
fn diesel_type(udt_name: &str) -> String {
    match udt_name {
        "bool" => "Bool".into(),
        "bytea" => "Bytea".into(),
        "int2" => "Int2".into(),
        "int4" => "Int4".into(),
        "int8" => "Int8".into(),
        "float4" => "Float4".into(),
        "float8" => "Float8".into(),
        "text" => "Text".into(),
        "varchar" => "Varchar".into(),
        "bpchar" => "Bpchar".into(),
        "uuid" => "Uuid".into(),
        "date" => "Date".into(),
        "timestamp" => "Timestamp".into(),
        "timestamptz" => "Timestamptz".into(),
        "jsonb" => "Jsonb".into(),
        "json" => "Json".into(),
        "inet" => "Inet".into(),
        "numeric" => "Numeric".into(),
        other => custom_type(other),
    }
}

/// diesel's name for a type it has no built-in for (`xid8`): print-schema declares these in
/// a `sql_types` module and imports them into the tables that use them.
fn custom_type(udt_name: &str) -> String {
    let mut chars = udt_name.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

const BUILT_IN_TYPES: [&str; 18] = [
    "bool",
    "bytea",
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "text",
    "varchar",
    "bpchar",
    "uuid",
    "date",
    "timestamp",
    "timestamptz",
    "jsonb",
    "json",
    "inet",
    "numeric",
];

/// What `diesel print-schema` writes for the database behind `conn`, rebuilt from
/// `information_schema` (the diesel CLI needs libpq, which this project does without).
async fn print_schema(conn: &mut AsyncPgConnection) -> String {
    let columns: Vec<ColumnInfo> = diesel::sql_query(
        "SELECT table_name::text, column_name::text, udt_name::text, is_nullable::text, \
                character_maximum_length::int4 AS max_length \
         FROM information_schema.columns \
         WHERE table_schema = 'public' AND table_name <> '__diesel_schema_migrations' \
           AND table_name IN (SELECT table_name FROM information_schema.tables \
                              WHERE table_schema = 'public' AND table_type = 'BASE TABLE') \
         ORDER BY table_name, ordinal_position",
    )
    .load(conn)
    .await
    .unwrap();
    let primary_keys: Vec<KeyInfo> = diesel::sql_query(
        "SELECT kcu.table_name::text, kcu.column_name::text, kcu.table_name::text AS parent \
         FROM information_schema.table_constraints tc \
         JOIN information_schema.key_column_usage kcu \
           ON kcu.constraint_schema = tc.constraint_schema \
          AND kcu.constraint_name = tc.constraint_name \
         WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = 'public' \
         ORDER BY kcu.table_name, kcu.ordinal_position",
    )
    .load(conn)
    .await
    .unwrap();
    let foreign_keys: Vec<KeyInfo> = diesel::sql_query(
        "SELECT kcu.table_name::text, kcu.column_name::text, ccu.table_name::text AS parent \
         FROM information_schema.table_constraints tc \
         JOIN information_schema.key_column_usage kcu \
           ON kcu.constraint_schema = tc.constraint_schema \
          AND kcu.constraint_name = tc.constraint_name \
         JOIN information_schema.constraint_column_usage ccu \
           ON ccu.constraint_schema = tc.constraint_schema \
          AND ccu.constraint_name = tc.constraint_name \
         WHERE tc.constraint_type = 'FOREIGN KEY' AND tc.table_schema = 'public' \
         ORDER BY kcu.table_name, ccu.table_name",
    )
    .load(conn)
    .await
    .unwrap();

    let mut tables: BTreeMap<String, Vec<&ColumnInfo>> = BTreeMap::new();
    for column in &columns {
        tables
            .entry(column.table_name.clone())
            .or_default()
            .push(column);
    }
    let mut out = String::from("// @generated automatically by Diesel CLI.\n");
    let custom: std::collections::BTreeSet<&str> = columns
        .iter()
        .map(|column| column.udt_name.as_str())
        .filter(|udt| !BUILT_IN_TYPES.contains(udt))
        .collect();
    if !custom.is_empty() {
        out.push_str("\npub mod sql_types {\n");
        for udt in &custom {
            writeln!(
                out,
                "    #[derive(Debug, diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]\n    \
                 #[diesel(postgres_type(name = \"{udt}\", schema = \"pg_catalog\"))]\n    \
                 pub struct {};",
                custom_type(udt)
            )
            .unwrap();
        }
        out.push_str("}\n");
    }
    for (table, columns) in &tables {
        let keys: Vec<&str> = primary_keys
            .iter()
            .filter(|key| &key.table_name == table)
            .map(|key| key.column_name.as_str())
            .collect();
        out.push_str("\ndiesel::table! {\n");
        let imports: std::collections::BTreeSet<&str> = columns
            .iter()
            .map(|column| column.udt_name.as_str())
            .filter(|udt| custom.contains(udt))
            .collect();
        if !imports.is_empty() {
            out.push_str("    use diesel::sql_types::*;\n");
            for udt in imports {
                writeln!(out, "    use super::sql_types::{};", custom_type(udt)).unwrap();
            }
            out.push('\n');
        }
        writeln!(out, "    {table} ({}) {{", keys.join(", ")).unwrap();
        for column in columns {
            if let Some(length) = column.max_length {
                writeln!(out, "        #[max_length = {length}]").unwrap();
            }
            let ty = diesel_type(&column.udt_name);
            let ty = if column.is_nullable == "YES" {
                format!("Nullable<{ty}>")
            } else {
                ty
            };
            writeln!(out, "        {} -> {ty},", column.column_name).unwrap();
        }
        out.push_str("    }\n}\n");
    }
    out.push('\n');
    for key in &foreign_keys {
        writeln!(
            out,
            "diesel::joinable!({} -> {} ({}));",
            key.table_name, key.parent, key.column_name
        )
        .unwrap();
    }
    let names: Vec<&str> = tables.keys().map(String::as_str).collect();
    writeln!(
        out,
        "\ndiesel::allow_tables_to_appear_in_same_query!({},);",
        names.join(", ")
    )
    .unwrap();
    out
}

/// Whitespace and trailing commas are rustfmt's business, not the schema's.
fn normalise(source: &str) -> String {
    source
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .replace(",)", ")")
        .replace(",}", "}")
}

/// `schema.rs` must be what `diesel print-schema` would generate from the migrations:
/// compared with a freshly migrated database's `information_schema`. To regenerate it after
/// changing a migration: `SESSIOND_BLESS_SCHEMA=1 cargo test -p sessiond-postgres schema`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_rs_matches_the_migrations() {
    let pool_url = migrated_from_scratch().await;
    let mut conn = AsyncPgConnection::establish(&pool_url).await.unwrap();
    let expected = print_schema(&mut conn).await;
    if std::env::var_os("SESSIOND_BLESS_SCHEMA").is_some() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/schema.rs");
        std::fs::write(path, &expected).unwrap();
        return;
    }
    assert_eq!(
        normalise(SCHEMA_RS),
        normalise(&expected),
        "src/schema.rs has drifted from migrations/; it should read:\n{expected}\n\
         (regenerate with SESSIOND_BLESS_SCHEMA=1 cargo test -p sessiond-postgres schema)"
    );
}

/// A new database migrated from scratch (not cloned from the template), checking what
/// `run_migrations` reports.
async fn migrated_from_scratch() -> String {
    let name = format!("sessiond_test_{}_{}", unix_now(), Uuid::new_v4().simple());
    let url = with_database(&admin_url(), &name);
    let mut admin = AsyncPgConnection::establish(&admin_url()).await.unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let pool = PgPool::connect(&settings(url.clone())).await.unwrap();
    let applied = run_migrations(&pool).await.unwrap();
    assert_eq!(
        applied,
        vec![
            "2026-05-01-000001_create_users".to_owned(),
            "2026-05-01-000002_create_user_sessions".to_owned(),
            "2026-05-01-000003_index_session_cleanup".to_owned(),
            "2026-05-01-000004_create_sign_in_failures".to_owned(),
            "2026-12-02-000005_revocation_log".to_owned(),
            "2026-12-02-000006_session_ended_by".to_owned(),
            "2026-12-16-000007_email_normal_form".to_owned(),
            "2026-12-18-000009_ended_from_other_device".to_owned(),
            "2026-12-20-000010_revocation_notify_payload".to_owned(),
            "2026-12-21-000011_session_hotel_id".to_owned(),
            "2026-12-22-000012_user_search_indexes".to_owned(),
            "2026-12-22-000013_session_statistics".to_owned(),
        ]
    );
    assert!(
        run_migrations(&pool).await.unwrap().is_empty(),
        "migrations ran twice"
    );
    url
}

/// A new database with the migrations before `stop` applied (by full name), to see what a
/// migration does to the rows it finds.
async fn migrated_before(stop: &'static str) -> String {
    let name = format!("sessiond_test_{}_{}", unix_now(), Uuid::new_v4().simple());
    let url = with_database(&admin_url(), &name);
    let mut admin = AsyncPgConnection::establish(&admin_url()).await.unwrap();
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let conn = AsyncPgConnection::establish(&url).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut harness = AsyncMigrationHarness::new(conn);
        let pending = harness.pending_migrations(MIGRATIONS).unwrap();
        assert!(
            pending.iter().any(|m| m.name().to_string() == stop),
            "{stop}"
        );
        for migration in pending
            .iter()
            .take_while(|m| m.name().to_string().as_str() < stop)
        {
            harness.run_migration(&**migration).unwrap();
        }
    })
    .await
    .unwrap();
    url
}

/// An account whose address was stored by an older `Email::parse` (trimmed and lower-cased
/// only), created at `minute` past eight so that the accounts have an order.
fn stored_before_normalisation(id: u128, email: &str, minute: u8) -> User {
    let at = datetime!(2026-05-01 08:00 UTC) + time::Duration::minutes(minute.into());
    User {
        id: UserId::from_uuid(Uuid::from_u128(id)),
        email: Email::from_stored(email).unwrap(),
        created_at: at,
        updated_at: at,
        ..user()
    }
}

/// Issue 15: the e-mail normal form migration rewrites every address that normalises
/// without colliding, so that sign-in (which looks up the normal form) still finds it, and
/// reports the accounts whose addresses collide instead of merging them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_email_migration_rewrites_lone_addresses_and_reports_collisions() {
    let url = migrated_before("2026-12-16-000007_email_normal_form").await;
    let pool = PgPool::connect(&settings(url)).await.unwrap();
    let users = PgUserRepository::new(pool.clone());
    let stored = [
        // alice, a full-width alice and alice with a zero-width space: one group.
        stored_before_normalisation(1, "alice@example.com", 1),
        stored_before_normalisation(2, "\u{FF41}lice@example.com", 2),
        stored_before_normalisation(3, "al\u{200B}ice@example.com", 3),
        // Two spellings of carol, neither in normal form: another group.
        stored_before_normalisation(4, "carol@\u{FF45}xample.com", 4),
        stored_before_normalisation(5, "car\u{200D}ol@example.com", 5),
        // Alone: a decomposed accent, an invisible character, full-width letters, a
        // ligature in the domain.
        stored_before_normalisation(6, "rene\u{301}e@example.com", 6),
        stored_before_normalisation(7, "b\u{200B}ob@example.com", 7),
        stored_before_normalisation(8, "\u{FF44}\u{FF41}\u{FF56}\u{FF45}@example.com", 8),
        stored_before_normalisation(9, "erin@\u{FB01}rm.example", 9),
        // Already normal.
        stored_before_normalisation(10, "frank@example.com", 10),
    ];
    for user in &stored {
        users.create(user).await.unwrap();
    }

    let applied = run_migrations(&pool).await.unwrap();
    assert_eq!(
        <[String]>::first(&applied).map(String::as_str),
        Some("2026-12-16-000007_email_normal_form"),
        "{applied:?}"
    );

    let id = |n: u128| UserId::from_uuid(Uuid::from_u128(n));
    assert_eq!(
        users.email_collisions().await.unwrap(),
        vec![vec![id(1), id(2), id(3)], vec![id(4), id(5)]]
    );
    // Colliding accounts keep their addresses, and still read back.
    for user in &stored[..5] {
        let read = users.find(user.id).await.unwrap().unwrap();
        assert_eq!(read.email, user.email);
    }
    // The others are found by what their owners type, in any of its spellings.
    for (n, typed) in [
        (6, "Ren\u{E9}e@Example.com"),
        (6, "rene\u{301}e@example.com"),
        (7, "bob@example.com"),
        (8, "DAVE@example.com"),
        (8, "\u{FF24}\u{FF21}\u{FF36}\u{FF25}@example.com"),
        (9, "erin@firm.example"),
        (10, "frank@example.com"),
    ] {
        let email = Email::parse(typed).unwrap();
        let found = users.find_by_email(&email).await.unwrap();
        assert_eq!(found.map(|u| u.id), Some(id(n)), "{typed:?}");
        let read = users.find(id(n)).await.unwrap().unwrap();
        assert_eq!(read.email, email);
    }
    // The oldest alice, stored in the normal form, is the one a sign-in finds.
    let alice = Email::parse("ALICE@example.com").unwrap();
    let found = users.find_by_email(&alice).await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(id(1)));
}

/// A live session of `owner` inserted as the release before issue 17 did: no hotel.
async fn insert_without_hotel(pool: &PgPool, owner: &User) -> SessionId {
    let id = Uuid::new_v4();
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query(
        "INSERT INTO user_sessions (id, user_id, device_info, created_at, last_activity, \
             expires_at, role, refresh_token_hash) \
         VALUES ($1, $2, 'Unknown', now(), now(), now() + interval '1 hour', $3, sha256('x'))",
    )
    .bind::<diesel::sql_types::Uuid, _>(id)
    .bind::<diesel::sql_types::Uuid, _>(owner.id.as_uuid())
    .bind::<Text, _>(owner.role.as_str())
    .execute(&mut conn)
    .await
    .unwrap();
    SessionId::from_uuid(id)
}

/// Issue 17: sessions opened before sessions carried their user's hotel get it from their
/// users, and so do sessions the previous release opens after the migration, so that
/// forward-auth names it for them too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hotel_migration_gives_open_sessions_their_users_hotel() {
    let url = migrated_before("2026-12-21-000011_session_hotel_id").await;
    let pool = PgPool::connect(&settings(url)).await.unwrap();
    let users = PgUserRepository::new(pool.clone());
    let at_hotel = User {
        role: Role::HotelEmployee,
        hotel_id: Some(4711),
        ..user()
    };
    let guest = user();
    let mut sessions = Vec::new();
    for owner in [&at_hotel, &guest] {
        users.create(owner).await.unwrap();
        sessions.push(insert_without_hotel(&pool, owner).await);
    }

    run_migrations(&pool).await.unwrap();
    // The previous release, still serving during a rolling deploy, inserts without it.
    let late = insert_without_hotel(&pool, &at_hotel).await;

    let repository = PgSessionRepository::new(pool);
    let hotel_of = async |id| repository.find(id).await.unwrap().unwrap().hotel_id;
    assert_eq!(hotel_of(sessions[0]).await, Some(4711));
    assert_eq!(hotel_of(sessions[1]).await, None);
    assert_eq!(hotel_of(late).await, Some(4711));
}

#[derive(QueryableByName)]
struct NormalForm {
    #[diesel(sql_type = Text)]
    normal_form: String,
}

/// The migration's SQL rule and `Email::parse` agree on what an address reads as.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sql_normal_form_is_the_domains() {
    let pool = fresh_pool().await.unwrap();
    let mut conn = pool.get().await.unwrap();
    for typed in [
        "alice@example.com",
        "Alice@Example.COM",
        "\u{FF21}\u{FF2C}\u{FF29}\u{FF23}\u{FF25}\u{FF20}example.com",
        "rene\u{301}e@example.com",
        "REN\u{C9}E@example.com",
        "\u{1D41A}lice@example.com",
        "bob@\u{FB01}rm.example",
        "stra\u{DF}e@example.de",
        "\u{2160}\u{2161}@example.com",
        "\u{1D2C}dmin@example.com",
        "\u{3392}@example.com",
        "\u{D55C}\u{AD6D}@example.kr",
        "\u{1112}\u{1161}\u{11AB}@example.kr",
        "\u{FF8A}\u{FF9E}@example.jp",
        "\u{3A3}\u{39F}\u{3A6}\u{3A3}@example.gr",
    ] {
        let email = Email::parse(typed).unwrap();
        let sql: NormalForm = diesel::sql_query("SELECT email_normal_form($1) AS normal_form")
            .bind::<Text, _>(typed.to_lowercase())
            .get_result(&mut conn)
            .await
            .unwrap();
        assert_eq!(sql.normal_form, email.as_str(), "{typed:?}");
    }
}

#[expect(
    clippy::disallowed_methods,
    reason = "naming test databases by wall-clock time, not a domain decision"
)]
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_refuses_connections_is_unavailable_fast() {
    // Port 1 on loopback: nothing listens, the kernel refuses at once.
    let pool = PgPool::connect(&PgSettings {
        url: "postgres://postgres@127.0.0.1:1/postgres".into(),
        max_connections: 2,
        acquire_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(1),
    })
    .await
    .unwrap();
    let started = Instant::now();
    let sessions = PgSessionRepository::new(pool.clone());
    let error = sessions
        .find(SessionId::from_uuid(Uuid::new_v4()))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    let users = PgUserRepository::new(pool.clone());
    let error = users.create(&user()).await.unwrap_err();
    assert!(
        matches!(error, CreateUserError::Store(StoreError::Unavailable(_))),
        "{error:?}"
    );
    assert!(pool.ping().await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_pool_is_unavailable_after_the_acquire_timeout() {
    let url = fresh_database_url().await.unwrap();
    let pool = PgPool::connect(&PgSettings {
        url,
        max_connections: 1,
        acquire_timeout: Duration::from_millis(300),
        statement_timeout: Duration::from_secs(5),
    })
    .await
    .unwrap();
    pool.ping().await.unwrap();
    let held = pool.get().await.unwrap();
    let started = Instant::now();
    let error = PgUserRepository::new(pool.clone())
        .find(UserId::from_uuid(Uuid::new_v4()))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    drop(held);
    pool.ping().await.unwrap();
}

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    statement_timeout: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_connection_has_the_statement_timeout() {
    let url = fresh_database_url().await.unwrap();
    let mut config = settings(url);
    config.statement_timeout = Duration::from_millis(1500);
    let pool = PgPool::connect(&config).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let setting: Setting = diesel::sql_query("SHOW statement_timeout")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(setting.statement_timeout, "1500ms");
    let slow = diesel::sql_query("SELECT pg_sleep(0)")
        .execute(&mut conn)
        .await;
    assert!(slow.is_ok());
}

fn session_of(owner: &User, at: time::OffsetDateTime) -> Session {
    let id = SessionId::from_uuid(Uuid::new_v4());
    Session {
        id,
        user_id: owner.id,
        role: owner.role,
        hotel_id: None,
        device: DeviceInfo::unknown(),
        device_name: None,
        ip_address: None,
        user_agent: None,
        created_at: at,
        last_activity: at,
        expires_at: at + time::Duration::hours(1),
        status: SessionStatus::Active,
        refresh: RefreshState {
            current: RefreshToken::new(id, [1; 32]).hash(),
            previous: None,
            rotated_at: None,
        },
        ended_by: None,
        version: 1,
    }
}

/// What a sign-in of `owner` verified.
fn check_of(owner: &User) -> SignInCheck {
    SignInCheck {
        password_hash: owner.password_hash.clone(),
    }
}

/// Three "instances" (pools) sign one user in, sign it out everywhere and record activity,
/// all at once: the maximum holds, and the multi-row lockers never deadlock (PostgreSQL
/// would abort one of them, which would surface here as an error).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_racing_on_one_user_keep_the_limit_and_never_deadlock() {
    let url = fresh_database_url().await.unwrap();
    let mut instances = Vec::new();
    for _ in 0..3 {
        let pool = PgPool::connect(&settings(url.clone())).await.unwrap();
        instances.push((
            PgUserRepository::new(pool.clone()),
            PgSessionRepository::new(pool),
        ));
    }
    let owner = user();
    instances[0].0.create(&owner).await.unwrap();
    let now = datetime!(2026-05-01 08:00 UTC);
    let limit = sessiond_domain::ports::SessionLimit {
        max_sessions: 3,
        on_limit: sessiond_domain::model::LimitAction::EvictOldest,
    };
    let tasks = (0..60).map(|i| {
        let sessions = instances[i % 3].1.clone();
        let session = session_of(&owner, now + time::Duration::milliseconds(i as i64));
        let user_id = owner.id;
        let check = check_of(&owner);
        tokio::spawn(async move {
            if i % 10 == 9 {
                sessions
                    .end_all_for_user(
                        user_id,
                        None,
                        sessiond_domain::model::InvalidationReason::UserLogoutAll,
                        sessiond_domain::model::EndedBy::Owner,
                        now,
                    )
                    .await
                    .map(|_| ())
            } else {
                sessions
                    .create_within_limit(&session, limit, &check, now)
                    .await
                    .map_err(|e| match e {
                        sessiond_domain::ports::CreateSessionError::Store(e) => e,
                        other => panic!("{other:?}"),
                    })?;
                sessions
                    .record_activities(&[SessionActivity {
                        user_id,
                        session_id: session.id,
                        at: now + time::Duration::seconds(1),
                    }])
                    .await
            }
        })
    });
    for result in futures::future::join_all(tasks).await {
        result.unwrap().unwrap();
    }
    let live = instances[0].1.list_live(owner.id, now).await.unwrap();
    assert!(live.len() <= 3, "{} live sessions", live.len());
}

fn user() -> User {
    User {
        id: UserId::from_uuid(Uuid::new_v4()),
        email: Email::parse(&format!("{}@example.com", Uuid::new_v4())).unwrap(),
        password_hash: PasswordHash::new("$argon2id$x".into()),
        role: Role::Guest,
        hotel_id: None,
        is_active: true,
        created_at: datetime!(2026-05-01 08:00 UTC),
        updated_at: datetime!(2026-05-01 08:00 UTC),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_registrations_of_one_email_yield_one_account() {
    let pool = fresh_pool().await.unwrap();
    let users = PgUserRepository::new(pool);
    let first = user();
    let attempts = (0..10).map(|_| {
        let users = users.clone();
        let mut twin = user();
        twin.email = first.email.clone();
        tokio::spawn(async move { users.create(&twin).await })
    });
    let results = futures::future::join_all(attempts).await;
    let created = results.iter().filter(|r| matches!(r, Ok(Ok(())))).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Ok(Err(CreateUserError::EmailTaken))))
        .count();
    assert_eq!((created, taken), (1, 9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_row_is_an_internal_error_not_a_panic() {
    let pool = fresh_pool().await.unwrap();
    let users = PgUserRepository::new(pool.clone());
    let sessions = PgSessionRepository::new(pool.clone());
    let owner = user();
    users.create(&owner).await.unwrap();
    let at = datetime!(2026-05-01 08:00 UTC);
    let session = session_of(&owner, at);
    let id = session.id;
    let unlimited = sessiond_domain::ports::SessionLimit {
        max_sessions: 10,
        on_limit: sessiond_domain::model::LimitAction::Reject,
    };
    sessions
        .create_within_limit(&session, unlimited, &check_of(&owner), at)
        .await
        .unwrap();
    // Something outside this adapter writes an address that is not one.
    let mut conn = pool.get().await.unwrap();
    diesel::sql_query("UPDATE user_sessions SET ip_address = 'not-an-ip' WHERE id = $1")
        .bind::<diesel::sql_types::Uuid, _>(id.as_uuid())
        .execute(&mut conn)
        .await
        .unwrap();
    let error = sessions.find(id).await.unwrap_err();
    assert!(matches!(error, StoreError::Internal(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_refuses_what_the_domain_never_writes() {
    let pool = fresh_pool().await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let upper = diesel::sql_query(
        "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'Alice@Example.com', 'x', 'guest', now(), now())",
    )
    .execute(&mut conn)
    .await;
    assert!(upper.is_err(), "an upper-case e-mail was accepted");
    let role = diesel::sql_query(
        "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         VALUES (gen_random_uuid(), 'root@example.com', 'x', 'root', now(), now())",
    )
    .execute(&mut conn)
    .await;
    assert!(role.is_err(), "an unknown role was accepted");

    // Who ended a session: only an ended one says, and an administrator's id comes exactly
    // with "admin".
    diesel::sql_query(
        "INSERT INTO users (id, email, password_hash, role, created_at, updated_at) \
         VALUES ('00000000-0000-4000-8000-000000000001', 'ended@example.com', 'x', 'guest', \
                 now(), now())",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    for (is_active, ended_by, admin, allowed) in [
        ("false", "'admin'", "gen_random_uuid()", true),
        ("false", "NULL", "NULL", true),
        ("true", "'user'", "NULL", false),
        ("false", "'admin'", "NULL", false),
        ("false", "'user'", "gen_random_uuid()", false),
        ("false", "'nobody'", "NULL", false),
    ] {
        let (at, reason) = if is_active == "true" {
            ("NULL", "NULL")
        } else {
            ("now()", "'admin_revoked'")
        };
        let inserted = diesel::sql_query(format!(
            "INSERT INTO user_sessions (id, user_id, device_info, created_at, last_activity, \
                 expires_at, is_active, invalidated_at, invalidation_reason, role, \
                 refresh_token_hash, ended_by, ended_by_admin) \
             VALUES (gen_random_uuid(), '00000000-0000-4000-8000-000000000001', 'Unknown', \
                 now(), now(), now() + interval '1 hour', {is_active}, {at}, {reason}, 'guest', \
                 sha256('x'), {ended_by}, {admin})"
        ))
        .execute(&mut conn)
        .await;
        assert_eq!(
            inserted.is_ok(),
            allowed,
            "is_active={is_active} ended_by={ended_by} ended_by_admin={admin}: {inserted:?}"
        );
    }
}

/// `run_migrations` must not need the multi-threaded runtime (diesel-async's harness
/// blocks in place; we run it on a blocking thread).
#[tokio::test(flavor = "current_thread")]
async fn migrations_run_on_a_current_thread_runtime() {
    let url = migrated_from_scratch().await;
    // The schema is usable from this runtime too: the migrated tables answer.
    let pool = PgPool::connect(&settings(url)).await.unwrap();
    let users = PgUserRepository::new(pool);
    let created = user();
    users.create(&created).await.unwrap();
    assert_eq!(users.find(created.id).await.unwrap(), Some(created));
}

/// Four admins on four instances (pools) all disable themselves at once: exactly one admin
/// stays active, and no transaction deadlocks (that would surface as a store error).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn admins_disabled_at_once_on_several_instances_leave_exactly_one() {
    let url = fresh_database_url().await.unwrap();
    let mut instances = Vec::new();
    for _ in 0..4 {
        let pool = PgPool::connect(&settings(url.clone())).await.unwrap();
        instances.push(PgUserRepository::new(pool));
    }
    let mut admins = Vec::new();
    for _ in 0..4 {
        let mut admin = user();
        admin.role = Role::SystemAdmin;
        instances[0].create(&admin).await.unwrap();
        admins.push(admin.id);
    }
    let disable = UserChange {
        role: None,
        is_active: Some(false),
    };
    let at = datetime!(2026-05-02 08:00 UTC);
    let attempts = admins
        .iter()
        .zip(instances.iter().cycle())
        .map(|(id, users)| {
            let users = users.clone();
            let id = *id;
            tokio::spawn(async move { users.update(id, disable, at).await })
        });
    let results: Vec<_> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|joined| joined.unwrap())
        .collect();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(UpdateUserError::LastActiveAdmin)))
        .count();
    let done = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!((done, refused), (3, 1), "{results:?}");
    let mut active = 0;
    for id in &admins {
        let stored = instances[0].find(*id).await.unwrap().unwrap();
        if stored.is_active {
            active += 1;
            assert_eq!(
                stored.updated_at,
                user().updated_at,
                "a refused change was written"
            );
        }
    }
    assert_eq!(active, 1);
}

/// Parallel failures of one key on several instances are each counted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_failures_of_one_key_are_each_counted() {
    let url = fresh_database_url().await.unwrap();
    let mut counters = Vec::new();
    for _ in 0..2 {
        counters.push(PgAttemptCounter::new(
            PgPool::connect(&settings(url.clone())).await.unwrap(),
        ));
    }
    let start = datetime!(2026-05-01 08:00 UTC);
    let end = start + time::Duration::minutes(15);
    let attempts = (0..40).map(|i| {
        let counter = counters[i % 2].clone();
        tokio::spawn(async move { counter.record_failure("account:x", start, end).await })
    });
    let mut counts: Vec<u32> = futures::future::join_all(attempts)
        .await
        .into_iter()
        .map(|joined| joined.unwrap().unwrap())
        .collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=40).collect::<Vec<u32>>());
    assert_eq!(counters[0].failures("account:x", start).await.unwrap(), 40);
}

/// Issue 15: a statement that waits out `statement_timeout` behind another connection's
/// lock is overload, `StoreError::Unavailable` (a 503 with `Retry-After`), never a 500:
/// a burst of sign-ins of one user queues on that user's row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_timeout_behind_a_lock_is_unavailable() {
    let url = fresh_database_url().await.unwrap();
    let pool = PgPool::connect(&PgSettings {
        statement_timeout: Duration::from_millis(200),
        ..settings(url.clone())
    })
    .await
    .unwrap();
    let users = PgUserRepository::new(pool.clone());
    let sessions = PgSessionRepository::new(pool);
    let owner = user();
    users.create(&owner).await.unwrap();

    // Another connection holds the user's row, as a sign-in or a security event does.
    let mut holder = AsyncPgConnection::establish(&url).await.unwrap();
    diesel::sql_query("BEGIN")
        .execute(&mut holder)
        .await
        .unwrap();
    diesel::sql_query(format!(
        "SELECT 1 FROM users WHERE id = '{}' FOR UPDATE",
        owner.id.as_uuid()
    ))
    .execute(&mut holder)
    .await
    .unwrap();
    let now = datetime!(2026-05-01 08:00 UTC);
    let limit = sessiond_domain::ports::SessionLimit {
        max_sessions: 3,
        on_limit: sessiond_domain::model::LimitAction::EvictOldest,
    };
    let waited = sessions
        .create_within_limit(&session_of(&owner, now), limit, &check_of(&owner), now)
        .await
        .unwrap_err();
    assert!(
        matches!(
            waited,
            sessiond_domain::ports::CreateSessionError::Store(StoreError::Unavailable(_))
        ),
        "{waited:?}"
    );

    // A table lock: every read of it waits, then times out.
    diesel::sql_query("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        .execute(&mut holder)
        .await
        .unwrap();
    let error = users.find(owner.id).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");

    // Once the lock is gone, the same calls succeed.
    diesel::sql_query("ROLLBACK")
        .execute(&mut holder)
        .await
        .unwrap();
    assert!(users.find(owner.id).await.unwrap().is_some());
    sessions
        .create_within_limit(&session_of(&owner, now), limit, &check_of(&owner), now)
        .await
        .unwrap();
}

#[derive(QueryableByName)]
struct BackendPid {
    #[diesel(sql_type = Integer)]
    pid: i32,
}

async fn backend_pid(conn: &mut AsyncPgConnection) -> i32 {
    let row: BackendPid = diesel::sql_query("SELECT pg_backend_pid() AS pid")
        .get_result(conn)
        .await
        .unwrap();
    row.pid
}

/// Issue 14: after a failover, a pooled connection may reach a server that no longer takes
/// writes (the old primary, fenced read-only). Its writes are `Unavailable` (a 503 with
/// `Retry-After`, never a 500), and the pool drops it at the next checkout instead of
/// handing it out again, so that writes work again as soon as a primary is reachable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_to_a_read_only_server_is_unavailable_and_dropped() {
    let url = fresh_database_url().await.unwrap();
    let pool = PgPool::connect(&PgSettings {
        max_connections: 1,
        ..settings(url)
    })
    .await
    .unwrap();
    let users = PgUserRepository::new(pool.clone());
    let owner = user();
    users.create(&owner).await.unwrap();

    // The pool's only connection now sees a read-only server, as after a fencing.
    let fenced = {
        let mut conn = pool.get().await.unwrap();
        diesel::sql_query("SET default_transaction_read_only = on")
            .execute(&mut conn)
            .await
            .unwrap();
        let refused = diesel::sql_query("UPDATE users SET updated_at = now() WHERE false")
            .execute(&mut *conn)
            .await
            .map_err(crate::PgError::from)
            .unwrap_err();
        assert!(refused.is_unavailable(), "{refused:?}");
        assert!(
            matches!(StoreError::from(refused), StoreError::Unavailable(_)),
            "a write refused by a read-only server is a 503"
        );
        backend_pid(&mut conn).await
    };

    // The next checkout finds it read-only and opens another: the write goes through.
    users.create(&user()).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    assert_ne!(
        backend_pid(&mut conn).await,
        fenced,
        "the read-only connection was reused"
    );
}
