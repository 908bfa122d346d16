//! Property tests of the session rules (SPEC §1–§3): any sequence of sign-ins, refreshes,
//! requests and revocations under a moving clock, run against the domain services over the
//! in-memory adapters, keeps the invariants after every step:
//!
//! - never more live sessions per user than the role allows;
//! - `expires_at` never beyond `created_at` + the role's absolute lifetime;
//! - a session that was seen ended (or expired) never authenticates nor refreshes again;
//! - a refresh token succeeds at most once, and a used one presented again after the grace
//!   window ends its session (`refresh_token_reuse`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use sessiond_domain::DomainError;
use sessiond_domain::model::{
    AccessClaims, DeviceInfo, Email, InvalidationReason, LimitAction, Liveness, NewSessionContext,
    Password, PasswordHash, Role, RolePolicy, SessionId, SessionPolicy, SessionStatus,
};
use sessiond_domain::ports::{
    Clock, DeviceClassifier, HashError, PasswordHasher, RandomSource, SessionRepository,
    TokenCodec, TokenError,
};
use sessiond_domain::service::{
    AccountService, AuthService, NewAccount, Ports, Principal, SessionService, SignIn, SignedIn,
};
use sessiond_memory::{MemoryAttemptCounter, MemorySessionRepository, MemoryUserRepository};
use time::{Duration, OffsetDateTime};

// ---- test adapters -------------------------------------------------------------------------

/// A clock the test moves.
#[derive(Debug)]
struct TestClock(Mutex<OffsetDateTime>);

impl TestClock {
    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().unwrap()
    }
}

/// Access tokens as opaque handles to their claims, expiring exactly at `exp` (no leeway),
/// so that the properties can step the clock onto the boundary.
#[derive(Debug)]
struct TestTokens {
    issued: Mutex<HashMap<String, AccessClaims>>,
}

impl TokenCodec for TestTokens {
    fn encode(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        let token = format!("access-{}", claims.token_id);
        self.issued
            .lock()
            .unwrap()
            .insert(token.clone(), claims.clone());
        Ok(token)
    }

    fn decode(&self, token: &str, now: OffsetDateTime) -> Result<AccessClaims, TokenError> {
        let claims = self
            .issued
            .lock()
            .unwrap()
            .get(token)
            .cloned()
            .ok_or(TokenError::Invalid)?;
        if now >= claims.expires_at {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// No hashing at all: these tests are about sessions.
#[derive(Debug)]
struct PlainHasher;

#[async_trait]
impl PasswordHasher for PlainHasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        Ok(PasswordHash::new(format!("plain:{}", password.expose())))
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, HashError> {
        Ok(hash.as_str() == format!("plain:{}", password.expose()))
    }

    async fn verify_nothing(&self, _: &Password) -> Result<(), HashError> {
        Ok(())
    }
}

#[derive(Debug)]
struct NoDevices;

impl DeviceClassifier for NoDevices {
    fn classify(&self, _: &str) -> DeviceInfo {
        DeviceInfo::unknown()
    }
}

/// Distinct bytes on every call.
#[derive(Debug, Default)]
struct CountingRandom(AtomicU64);

impl RandomSource for CountingRandom {
    fn bytes32(&self) -> [u8; 32] {
        let n = self.0.fetch_add(1, Ordering::Relaxed).to_le_bytes();
        let mut bytes = [0x5a; 32];
        bytes[..6].copy_from_slice(&n[..6]);
        bytes[16..24].copy_from_slice(&n);
        bytes
    }
}

// ---- the operations ------------------------------------------------------------------------

/// Which refresh token to present.
#[derive(Debug, Clone, Copy)]
enum Presented {
    /// The session's current one.
    Current,
    /// The one most recently traded in.
    Previous,
    /// An older traded-in one.
    Older,
    /// A well-formed token of this session with a secret never issued.
    Forged,
    /// Not a token at all.
    Garbage,
}

#[derive(Debug, Clone)]
enum Op {
    SignIn {
        user: usize,
    },
    WrongPassword {
        user: usize,
    },
    Refresh {
        session: usize,
        presented: Presented,
    },
    /// A request with one of the session's access tokens (the newest when `token` is 0).
    Authenticate {
        session: usize,
        token: usize,
    },
    SignOut {
        session: usize,
    },
    EndOne {
        session: usize,
        target: usize,
    },
    EndOthers {
        session: usize,
    },
    ChangePassword {
        session: usize,
    },
    Advance {
        seconds: i64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let pick = 0..64usize;
    prop_oneof![
        4 => (0..USERS).prop_map(|user| Op::SignIn { user }),
        1 => (0..USERS).prop_map(|user| Op::WrongPassword { user }),
        5 => (pick.clone(), prop_oneof![
            4 => Just(Presented::Current),
            4 => Just(Presented::Previous),
            1 => Just(Presented::Older),
            1 => Just(Presented::Forged),
            1 => Just(Presented::Garbage),
        ]).prop_map(|(session, presented)| Op::Refresh { session, presented }),
        4 => (pick.clone(), 0..3usize)
            .prop_map(|(session, token)| Op::Authenticate { session, token }),
        1 => pick.clone().prop_map(|session| Op::SignOut { session }),
        1 => (pick.clone(), pick.clone())
            .prop_map(|(session, target)| Op::EndOne { session, target }),
        1 => pick.clone().prop_map(|session| Op::EndOthers { session }),
        1 => pick.prop_map(|session| Op::ChangePassword { session }),
        // Within the refresh grace (10 s), beyond the activity interval, across the sliding
        // timeout (1 h) and the absolute lifetime (3 h).
        4 => prop_oneof![1..12i64, 30..400i64, 600..4_000i64, 3_000..12_000i64]
            .prop_map(|seconds| Op::Advance { seconds }),
    ]
}

/// One of three users per case, each of its own role.
const USERS: usize = 3;
const ROLES: [Role; USERS] = [Role::Guest, Role::HotelEmployee, Role::VendorAdmin];
const TIMEOUT: Duration = Duration::hours(1);
const ABSOLUTE: Duration = Duration::hours(3);

fn limits() -> impl Strategy<Value = [(u32, LimitAction); USERS]> {
    let limit = (
        1..=3u32,
        prop_oneof![Just(LimitAction::EvictOldest), Just(LimitAction::Reject)],
    );
    [limit.clone(), limit.clone(), limit]
}

// ---- the model -----------------------------------------------------------------------------

/// What the test knows of a session it opened.
#[derive(Debug)]
struct Tracked {
    id: SessionId,
    user: usize,
    /// Access tokens issued for it, newest last.
    access: Vec<String>,
    refresh: String,
    /// Refresh tokens traded in, with when, oldest first.
    used: Vec<(String, OffsetDateTime)>,
    /// Seen ended or expired: it must never work again.
    dead: bool,
}

struct World {
    clock: Arc<TestClock>,
    sessions_repo: Arc<MemorySessionRepository>,
    auth: AuthService,
    sessions: SessionService,
    accounts: AccountService,
    policy: SessionPolicy,
    emails: Vec<String>,
    passwords: Vec<String>,
    tracked: Vec<Tracked>,
    /// Every refresh token that ever succeeded.
    spent: HashSet<String>,
    password_changes: u32,
}

fn email(user: usize) -> String {
    format!("user{user}@example.com")
}

impl World {
    async fn new(limits: [(u32, LimitAction); USERS]) -> Self {
        let clock = Arc::new(TestClock(Mutex::new(
            OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap(),
        )));
        let users = Arc::new(MemoryUserRepository::new());
        let sessions_repo = Arc::new(MemorySessionRepository::new(Arc::clone(&users)));
        let ports = Ports {
            users,
            sessions: sessions_repo.clone(),
            hasher: Arc::new(PlainHasher),
            tokens: Arc::new(TestTokens {
                issued: Mutex::default(),
            }),
            devices: Arc::new(NoDevices),
            clock: clock.clone(),
            random: Arc::new(CountingRandom::default()),
            attempts: Arc::new(MemoryAttemptCounter::new()),
            events: Arc::new(sessiond_app::audit::AuditLog),
            statistics: sessions_repo.clone(),
        };
        let mut policy = SessionPolicy::default();
        for (role, (max_sessions, on_limit)) in ROLES.into_iter().zip(limits) {
            policy.roles.set(
                role,
                RolePolicy {
                    timeout: TIMEOUT,
                    absolute_lifetime: ABSOLUTE,
                    max_sessions,
                    on_limit,
                },
            );
        }
        let shared = Arc::new(policy.clone());
        let accounts = AccountService::new(ports.clone());
        let mut passwords = Vec::new();
        for (user, role) in ROLES.into_iter().enumerate() {
            let password = format!("password of user {user}");
            accounts
                .create(NewAccount {
                    email: Email::parse(&email(user)).unwrap(),
                    password: Password::presented(password.clone()).unwrap(),
                    role,
                    hotel_id: None,
                })
                .await
                .unwrap();
            passwords.push(password);
        }
        Self {
            clock,
            sessions_repo,
            auth: AuthService::new(ports.clone(), shared.clone()),
            sessions: SessionService::new(ports, shared),
            accounts,
            policy,
            emails: (0..USERS).map(email).collect(),
            passwords,
            tracked: Vec::new(),
            spent: HashSet::new(),
            password_changes: 0,
        }
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    fn role_policy(&self, user: usize) -> RolePolicy {
        self.policy.roles.get(ROLES[user])
    }

    /// How many sessions of `user` are live in storage now.
    async fn live_count(&self, user: usize) -> usize {
        let now = self.now();
        let mut live = 0;
        for tracked in self.tracked.iter().filter(|t| t.user == user) {
            let session = self.sessions_repo.find(tracked.id).await.unwrap();
            if session.is_some_and(|s| s.is_live(now)) {
                live += 1;
            }
        }
        live
    }

    /// The session behind `pick`, if any was opened: half of the picks among those not seen
    /// ended (most sessions end soon, and the live ones have more to show).
    fn pick(&self, pick: usize) -> Option<usize> {
        let live: Vec<usize> = (0..self.tracked.len())
            .filter(|&i| !self.tracked[i].dead)
            .collect();
        if pick >= 32 && !live.is_empty() {
            return Some(live[pick % live.len()]);
        }
        (!self.tracked.is_empty()).then(|| pick % self.tracked.len())
    }

    /// The caller on session `index`, when its newest access token still works.
    async fn principal(&mut self, index: usize) -> Result<Option<Principal>, TestCaseError> {
        let token = self.tracked[index]
            .access
            .last()
            .cloned()
            .unwrap_or_default();
        self.authenticate(index, &token).await
    }

    /// Authenticates with `token` of session `index` and checks the answer against what the
    /// test knows.
    async fn authenticate(
        &mut self,
        index: usize,
        token: &str,
    ) -> Result<Option<Principal>, TestCaseError> {
        let was_dead = self.tracked[index].dead;
        let result = self.auth.authenticate(token).await;
        match result {
            Ok(principal) => {
                prop_assert!(!was_dead, "an ended session authenticated");
                prop_assert_eq!(principal.session.id, self.tracked[index].id);
                Ok(Some(principal))
            }
            Err(
                DomainError::TokenExpired
                | DomainError::SessionRevoked(_)
                | DomainError::SessionExpired,
            ) => Ok(None),
            Err(other) => Err(TestCaseError::fail(format!(
                "authenticate failed with {other:?}"
            ))),
        }
    }

    fn record_signed_in(&mut self, index: Option<usize>, user: usize, signed_in: &SignedIn) {
        let refresh = signed_in.refresh_token.expose();
        match index {
            Some(index) => {
                let tracked = &mut self.tracked[index];
                let old = std::mem::replace(&mut tracked.refresh, refresh);
                tracked.used.push((old, self.clock.now()));
                tracked.access.push(signed_in.access_token.clone());
            }
            None => self.tracked.push(Tracked {
                id: signed_in.session.id,
                user,
                access: vec![signed_in.access_token.clone()],
                refresh,
                used: Vec::new(),
                dead: false,
            }),
        }
    }

    async fn sign_in(&mut self, user: usize, password: String) -> Result<(), TestCaseError> {
        let policy = self.role_policy(user);
        let live_before = self.live_count(user).await;
        let attempt = SignIn {
            email: self.emails[user].clone(),
            password: Password::presented(password.clone()).unwrap(),
            context: NewSessionContext::default(),
        };
        let correct = password == self.passwords[user];
        match self.auth.sign_in(attempt).await {
            Ok(signed_in) => {
                prop_assert!(correct, "a wrong password signed in");
                prop_assert!(
                    policy.on_limit == LimitAction::EvictOldest
                        || live_before < policy.max_sessions as usize,
                    "reject policy let a sign-in past the maximum"
                );
                self.record_signed_in(None, user, &signed_in);
            }
            Err(DomainError::MaxSessionsReached) => {
                prop_assert!(correct);
                prop_assert_eq!(policy.on_limit, LimitAction::Reject);
                prop_assert_eq!(live_before, policy.max_sessions as usize);
            }
            Err(DomainError::InvalidCredentials) => prop_assert!(!correct),
            Err(DomainError::RateLimited { .. }) => {}
            Err(other) => return Err(TestCaseError::fail(format!("sign-in: {other:?}"))),
        }
        Ok(())
    }

    async fn refresh(&mut self, index: usize, presented: Presented) -> Result<(), TestCaseError> {
        let now = self.now();
        let tracked = &self.tracked[index];
        let token = match presented {
            Presented::Current => tracked.refresh.clone(),
            Presented::Previous => match tracked.used.last() {
                Some((token, _)) => token.clone(),
                None => return Ok(()),
            },
            Presented::Older => match tracked.used.first() {
                Some((token, _)) if tracked.used.len() >= 2 => token.clone(),
                _ => return Ok(()),
            },
            Presented::Forged => format!("{}.{}", tracked.id, "A".repeat(43)),
            Presented::Garbage => "not-a-refresh-token".to_owned(),
        };
        let previous_at = tracked
            .used
            .last()
            .filter(|(used, _)| *used == token)
            .map(|(_, at)| *at);
        let was_dead = tracked.dead;
        let id = tracked.id;
        let result = self.auth.refresh(&token).await;
        let after = self.sessions_repo.find(id).await.unwrap().unwrap();
        match result {
            Ok(signed_in) => {
                prop_assert!(!was_dead, "an ended session refreshed");
                prop_assert!(
                    self.spent.insert(token.clone()),
                    "a refresh token succeeded twice"
                );
                prop_assert_eq!(token, self.tracked[index].refresh.clone());
                prop_assert_eq!(signed_in.session.id, id);
                self.record_signed_in(Some(index), self.tracked[index].user, &signed_in);
            }
            Err(error) => {
                prop_assert!(
                    !matches!(presented, Presented::Current) || was_dead || !after.is_live(now),
                    "the current refresh token of a live session failed: {error:?}"
                );
                if let Some(rotated_at) = previous_at
                    && !was_dead
                {
                    let grace = self.policy.refresh_grace;
                    if now - rotated_at > grace {
                        prop_assert_eq!(
                            after.status,
                            SessionStatus::Ended {
                                at: now,
                                reason: InvalidationReason::RefreshTokenReuse
                            },
                            "a reused refresh token did not end its session"
                        );
                    } else if now - rotated_at < grace && after.expires_at > now {
                        prop_assert!(matches!(error, DomainError::RefreshTokenRotated));
                        prop_assert!(after.is_live(now), "a refresh within grace ended it");
                    }
                }
                if matches!(presented, Presented::Forged | Presented::Garbage) {
                    prop_assert!(matches!(error, DomainError::RefreshTokenInvalid));
                }
            }
        }
        Ok(())
    }

    async fn step(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::SignIn { user } => {
                let password = self.passwords[user].clone();
                self.sign_in(user, password).await?;
            }
            Op::WrongPassword { user } => self.sign_in(user, "wrong".into()).await?,
            Op::Advance { seconds } => self.clock.advance(Duration::seconds(seconds)),
            Op::Refresh { session, presented } => {
                if let Some(index) = self.pick(session) {
                    self.refresh(index, presented).await?;
                }
            }
            Op::Authenticate { session, token } => {
                if let Some(index) = self.pick(session) {
                    let tokens = &self.tracked[index].access;
                    let token = tokens[tokens.len().saturating_sub(1 + token)].clone();
                    self.authenticate(index, &token).await?;
                }
            }
            Op::SignOut { session } => {
                if let Some(index) = self.pick(session)
                    && let Some(principal) = self.principal(index).await?
                {
                    self.sessions.sign_out(&principal).await.unwrap();
                    self.expect_ended(index, InvalidationReason::UserLogout)
                        .await?;
                }
            }
            Op::EndOne { session, target } => {
                if let (Some(index), Some(target)) = (self.pick(session), self.pick(target))
                    && let Some(principal) = self.principal(index).await?
                {
                    let own = self.tracked[target].user == self.tracked[index].user;
                    let result = self
                        .sessions
                        .end_own(&principal, self.tracked[target].id)
                        .await;
                    if own {
                        prop_assert!(
                            result.is_ok() || matches!(result, Err(DomainError::NotFound)),
                            "end own: {result:?}"
                        );
                        let after = self.sessions_repo.find(self.tracked[target].id).await;
                        prop_assert!(!after.unwrap().unwrap().is_live(self.now()));
                    } else {
                        prop_assert!(matches!(result, Err(DomainError::NotFound)));
                    }
                }
            }
            Op::EndOthers { session } => {
                if let Some(index) = self.pick(session)
                    && let Some(principal) = self.principal(index).await?
                {
                    self.sessions.end_others(&principal).await.unwrap();
                    self.expect_others_ended(index).await?;
                }
            }
            Op::ChangePassword { session } => {
                if let Some(index) = self.pick(session)
                    && let Some(principal) = self.principal(index).await?
                {
                    let user = self.tracked[index].user;
                    self.password_changes += 1;
                    let new = format!("new password {}", self.password_changes);
                    self.accounts
                        .change_password(
                            &principal,
                            Password::presented(self.passwords[user].clone()).unwrap(),
                            Password::presented(new.clone()).unwrap(),
                        )
                        .await
                        .unwrap();
                    self.passwords[user] = new;
                    self.expect_others_ended(index).await?;
                }
            }
        }
        self.check_invariants().await
    }

    async fn expect_ended(
        &self,
        index: usize,
        reason: InvalidationReason,
    ) -> Result<(), TestCaseError> {
        let session = self
            .sessions_repo
            .find(self.tracked[index].id)
            .await
            .unwrap()
            .unwrap();
        prop_assert_eq!(session.ended().map(|(_, r)| r), Some(reason));
        Ok(())
    }

    /// After "end the others": of the user's sessions, only `index` is live.
    async fn expect_others_ended(&self, index: usize) -> Result<(), TestCaseError> {
        let user = self.tracked[index].user;
        let now = self.now();
        for (i, tracked) in self.tracked.iter().enumerate() {
            if tracked.user == user {
                let session = self.sessions_repo.find(tracked.id).await.unwrap().unwrap();
                prop_assert_eq!(session.is_live(now), i == index);
            }
        }
        Ok(())
    }

    /// The invariants, after every step; also marks the sessions seen ended.
    async fn check_invariants(&mut self) -> Result<(), TestCaseError> {
        let now = self.now();
        for user in 0..USERS {
            let live = self.live_count(user).await;
            let max = self.role_policy(user).max_sessions as usize;
            prop_assert!(live <= max, "user {user}: {live} live sessions, max {max}");
        }
        for tracked in &mut self.tracked {
            let session = self.sessions_repo.find(tracked.id).await.unwrap();
            let session = session.ok_or_else(|| TestCaseError::fail("a session vanished"))?;
            let absolute = self.policy.roles.get(ROLES[tracked.user]).absolute_lifetime;
            prop_assert!(
                session.expires_at <= session.created_at + absolute,
                "expires_at beyond the absolute lifetime"
            );
            if session.liveness(now) != Liveness::Live {
                tracked.dead = true;
            } else {
                prop_assert!(!tracked.dead, "an ended session came back to life");
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        max_shrink_iters: 2_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn session_rules_hold_for_any_sequence(
        limits in limits(),
        ops in prop::collection::vec(op(), 1..=40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut world = World::new(limits).await;
            for op in ops {
                world.step(op).await?;
            }
            Ok::<(), TestCaseError>(())
        })?;
    }
}
