//! Signing in, validating requests and refreshing tokens (SPEC §1–§2).

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

use super::throttle::{self, Limit};
use super::{Ports, Principal};
use crate::activity::ActivityBuffer;
use crate::caching::NearSessions;
use crate::error::DomainError;
use crate::model::{
    AccessClaims, DeviceId, DeviceInfo, DeviceKeys, DeviceToken, Email, EndedBy,
    InvalidationReason, KnownDevice, Liveness, NewSessionContext, Password, RefreshState,
    RefreshToken, RefreshTokenHash, Session, SessionActivity, SessionId, SessionPolicy,
    SessionStatus, SessionSummary, User,
};
use crate::ports::{CreateSessionError, SessionLimit, SignInCheck, TokenError};

/// Who asked for a request: the user, or the client on its own (a background check). Only
/// the user's requests are activity and slide a session's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Initiative {
    User,
    Background,
}

/// A sign-in attempt.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// As typed: an address that cannot exist is just another wrong credential.
    pub email: String,
    pub password: Password,
    pub context: NewSessionContext,
}

/// A session with a fresh token pair, the answer to sign-in and refresh.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub session: Session,
    pub access_token: String,
    /// When the pair was issued.
    pub issued_at: OffsetDateTime,
    pub access_expires_at: OffsetDateTime,
    pub refresh_token: RefreshToken,
    /// Sessions ended to make room for this one (`max_sessions_exceeded`).
    pub evicted: Vec<SessionId>,
    /// On sign-in (not refresh), when device tokens are on: the token that makes this
    /// device a known one at its next sign-in.
    pub device_token: Option<DeviceToken>,
}

/// Sign-in, request validation and token refresh.
#[derive(Debug, Clone)]
pub struct AuthService {
    ports: Ports,
    policy: Arc<SessionPolicy>,
    near: Option<Arc<NearSessions>>,
    activity: Arc<ActivityBuffer>,
    devices: Option<Arc<DeviceKeys>>,
}

impl AuthService {
    pub fn new(ports: Ports, policy: Arc<SessionPolicy>) -> Self {
        Self {
            ports,
            policy,
            near: None,
            activity: Arc::new(ActivityBuffer::new(ActivityBuffer::DEFAULT_CAPACITY)),
            devices: None,
        }
    }

    /// Hands every device that signs in a device token signed with `keys`, and counts the
    /// failed sign-ins of a device that presents a valid one apart from strangers' (see
    /// [`Self::sign_in`]). Without keys, every sign-in is a stranger's.
    #[must_use]
    pub fn with_device_keys(mut self, keys: DeviceKeys) -> Self {
        self.devices = Some(Arc::new(keys));
        self
    }

    /// Validates from `near` first: a hit costs no call through the ports at all. The same
    /// near cache must sit in the session repository's caching (which fills it).
    #[must_use]
    pub fn with_near_cache(mut self, near: Arc<NearSessions>) -> Self {
        self.near = Some(near);
        self
    }

    /// Notes validated requests' activity in `activity`, which the caller flushes.
    #[must_use]
    pub fn with_activity_buffer(mut self, activity: Arc<ActivityBuffer>) -> Self {
        self.activity = activity;
        self
    }

    /// Where validated requests' activity waits for its write; the caller flushes it
    /// every `sessions.activity_flush_ms` and at shutdown.
    pub fn activity(&self) -> Arc<ActivityBuffer> {
        Arc::clone(&self.activity)
    }

    /// The policy in force.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// Checks the credentials and opens a session on the caller's device, applying the
    /// role's max-sessions rule.
    ///
    /// Failed sign-ins are throttled (see [`ThrottlePolicy`](crate::model::ThrottlePolicy)):
    /// a stranger's count against the account and the client address; a known device's
    /// (one presenting a valid device token of this account) count against that device
    /// alone, under the account's limit, and it is not refused because strangers exhausted
    /// the account's or the address's. A successful sign-in hands out a device token.
    ///
    /// # Errors
    /// `InvalidCredentials` for an unknown e-mail or a wrong password (the same answer, in
    /// the same time), `AccountDisabled` for a correct password on a disabled account,
    /// `MaxSessionsReached` when the role rejects sign-ins at its maximum, `RateLimited`
    /// while the attempt's keys are over their limits.
    pub async fn sign_in(&self, attempt: SignIn) -> Result<SignedIn, DomainError> {
        let now = self.ports.clock.now();
        // A device token needs the account it names; strangers are judged before the
        // lookup, as before.
        let looked_up = match &attempt.context.device_token {
            Some(_) if self.devices.is_some() => Some(self.find_user(&attempt.email).await?),
            _ => None,
        };
        let known = self.known_device(&attempt, looked_up.as_ref().and_then(Option::as_ref), now);
        let throttle = match known {
            Some(device) => vec![Limit::new(
                device.throttle_key(),
                self.policy.sign_in_throttle.max_failures_per_account,
            )],
            None => self.throttle_keys(&attempt),
        };
        self.refuse_if_throttled(&throttle, now).await?;
        let user = match looked_up {
            Some(user) => user,
            None => self.find_user(&attempt.email).await?,
        };
        let matches = match &user {
            Some(user) => {
                self.ports
                    .hasher
                    .verify(&attempt.password, &user.password_hash)
                    .await?
            }
            None => {
                self.ports.hasher.verify_nothing(&attempt.password).await?;
                false
            }
        };
        let Some(user) = user.filter(|_| matches) else {
            self.record_failure(&throttle, now).await;
            // Best effort too: a statistics store that fails must not turn a 401 into a 503.
            let _ = self.ports.statistics.record_failed_sign_in(now).await;
            return Err(DomainError::InvalidCredentials);
        };
        if !user.is_active {
            return Err(DomainError::AccountDisabled);
        }

        let check = SignInCheck {
            password_hash: user.password_hash.clone(),
        };
        let context = attempt.context;
        let device = context
            .user_agent
            .as_deref()
            .map_or_else(DeviceInfo::unknown, |ua| self.ports.devices.classify(ua));
        let id = SessionId::from_random_bytes(self.ports.random_id_bytes());
        let refresh_token = RefreshToken::new(id, self.ports.random.bytes32());
        let mut session = Session {
            id,
            user_id: user.id,
            role: user.role,
            hotel_id: user.hotel_id,
            device,
            device_name: context.device_name,
            ip_address: context.ip_address,
            user_agent: context.user_agent,
            created_at: now,
            last_activity: now,
            expires_at: now,
            status: SessionStatus::Active,
            refresh: RefreshState {
                current: refresh_token.hash(),
                previous: None,
                rotated_at: None,
            },
            ended_by: None,
            version: 1,
        };
        // The store re-reads the user under the lock that security events take (SPEC §3
        // invariant 7). A role changed since our read is taken, with its policy; a role that
        // keeps changing under us is an administrator's fight, not a sign-in's to win.
        let mut attempts_left = 3;
        let evicted = loop {
            let role_policy = self.policy.roles.get(session.role);
            session.expires_at = role_policy.expiry(now, now);
            let limit = SessionLimit {
                max_sessions: role_policy.max_sessions,
                on_limit: role_policy.on_limit,
            };
            let created = self
                .ports
                .sessions
                .create_within_limit(&session, limit, &check, now)
                .await;
            match created {
                Ok(evicted) => break evicted,
                Err(CreateSessionError::RoleChanged(role)) if attempts_left > 1 => {
                    attempts_left -= 1;
                    session.role = role;
                }
                Err(e) => return Err(refused_sign_in(e)),
            }
        };
        self.ports.events.opened(&session);
        if !evicted.is_empty() {
            self.ports.events.ended(
                session.user_id,
                &evicted,
                InvalidationReason::MaxSessionsExceeded,
                EndedBy::System,
            );
        }
        let mut signed_in = self.signed_in(session, refresh_token, evicted, now)?;
        signed_in.device_token = self.devices.as_ref().map(|keys| {
            // A known device keeps its id (and its count); a new one gets a fresh id.
            let device = known.map_or_else(
                || DeviceId::from_random_bytes(self.ports.random_id_bytes()),
                DeviceId::from,
            );
            keys.issue(&user, device, now).0
        });
        Ok(signed_in)
    }

    /// The account an attempt names, if the text is an address that has one.
    async fn find_user(&self, email: &str) -> Result<Option<User>, DomainError> {
        Ok(match Email::parse(email) {
            Ok(email) => self.ports.users.find_by_email(&email).await?,
            Err(_) => None,
        })
    }

    /// The device the attempt's device token names, when it is valid for `user` (the
    /// account the attempt names) now.
    fn known_device(
        &self,
        attempt: &SignIn,
        user: Option<&User>,
        now: OffsetDateTime,
    ) -> Option<KnownDevice> {
        let keys = self.devices.as_ref()?;
        let token = attempt.context.device_token.as_ref()?;
        keys.verify(token, user?, now)
    }

    /// The throttling keys of a sign-in attempt with their limits: the account and the
    /// client address. The account is the address's normal form, so that its look-alike
    /// spellings share one count; text that is no address (and no account) is counted
    /// trimmed and lower-cased, without control characters, which no store would keep.
    fn throttle_keys(&self, attempt: &SignIn) -> Vec<Limit> {
        let limits = self.policy.sign_in_throttle;
        let account = Email::parse(&attempt.email).map_or_else(
            |_| {
                let typed = attempt.email.trim().to_lowercase();
                typed.chars().filter(|c| !c.is_control()).collect()
            },
            |email| email.as_str().to_owned(),
        );
        let mut keys = vec![Limit::new(
            format!("account:{account}"),
            limits.max_failures_per_account,
        )];
        if let Some(ip) = attempt.context.ip_address {
            keys.push(Limit::new(format!("ip:{ip}"), limits.max_failures_per_ip));
        }
        keys
    }

    /// Refuses the attempt while any of its keys is over its limit. A counter store that
    /// cannot answer does not block sign-in: availability wins over throttling during an
    /// outage of the counter store.
    async fn refuse_if_throttled(
        &self,
        keys: &[Limit],
        now: OffsetDateTime,
    ) -> Result<(), DomainError> {
        let policy = &self.policy.sign_in_throttle;
        throttle::refuse_if_over(self.ports.attempts.as_ref(), policy, keys, now).await
    }

    /// Best effort, as in `refuse_if_throttled`.
    async fn record_failure(&self, keys: &[Limit], now: OffsetDateTime) {
        let policy = &self.policy.sign_in_throttle;
        throttle::record(self.ports.attempts.as_ref(), policy, keys, now).await;
    }

    /// Validates the access token of a request: a valid JWT AND a live session (SPEC §2).
    /// Notes activity when the known `last_activity` is older than the policy's interval,
    /// to be written behind: the request never waits for it.
    ///
    /// The user's own state needs no separate read: deactivating a user or changing their
    /// role ends all their sessions, so a live session implies an active user with this role.
    /// That keeps the hot path at one read. Admin routes re-read the stored user anyway, on
    /// purpose (see `AdminService`): both are right for their route, so do not add the read
    /// here or remove it there.
    ///
    /// # Errors
    /// `TokenExpired`, `TokenInvalid`, `SessionRevoked(reason)` or `SessionExpired`.
    pub async fn authenticate(&self, access_token: &str) -> Result<Principal, DomainError> {
        self.authenticate_as(access_token, Initiative::User).await
    }

    /// As [`Self::authenticate`], for a request the client makes on its own (a page checking
    /// in the background): validated the same, but it is no activity of the user's, so that
    /// a forgotten tab does not keep its session the most recently active one.
    ///
    /// # Errors
    /// As [`Self::authenticate`].
    pub async fn authenticate_in_background(
        &self,
        access_token: &str,
    ) -> Result<Principal, DomainError> {
        self.authenticate_as(access_token, Initiative::Background)
            .await
    }

    async fn authenticate_as(
        &self,
        access_token: &str,
        initiative: Initiative,
    ) -> Result<Principal, DomainError> {
        let now = self.ports.clock.now();
        let claims = self
            .ports
            .tokens
            .decode(access_token, now)
            .map_err(|e| match e {
                TokenError::Expired => DomainError::TokenExpired,
                TokenError::Invalid => DomainError::TokenInvalid,
            })?;
        let near_hit = self
            .near
            .as_ref()
            .and_then(|near| near.live(claims.user_id, claims.session_id, now));
        let session = match near_hit {
            Some(hit) => hit,
            None => {
                let session = self
                    .ports
                    .sessions
                    .find_summary(claims.user_id, claims.session_id, now)
                    .await?
                    .ok_or(DomainError::TokenInvalid)?;
                refuse_unless_live(session.liveness(now))?;
                Arc::new(session)
            }
        };
        let session = match initiative {
            Initiative::User => self.note_activity(session, now),
            Initiative::Background => session,
        };
        Ok(Principal {
            user_id: session.user_id,
            role: session.role,
            session,
        })
    }

    /// Notes the request's activity when the interval has passed since the last one known
    /// here, and returns the session as of now. The near-cache entry moves on too, so the
    /// next requests do not note it again.
    fn note_activity(
        &self,
        session: Arc<SessionSummary>,
        now: OffsetDateTime,
    ) -> Arc<SessionSummary> {
        if !self.policy.activity_is_due(session.last_activity, now) {
            return session;
        }
        self.activity.record(SessionActivity {
            user_id: session.user_id,
            session_id: session.id,
            at: now,
        });
        let mut moved = (*session).clone();
        moved.last_activity = now;
        let moved = Arc::new(moved);
        if let Some(near) = &self.near {
            near.fill(Arc::clone(&moved), now);
        }
        moved
    }

    /// Trades a refresh token for a new pair and slides the session's expiry. Each refresh
    /// token works once; presenting a rotated one outside the grace window ends the session.
    ///
    /// # Errors
    /// `RefreshTokenInvalid` for a token we never issued; `RefreshTokenRotated` for a rotated
    /// token within the grace window (nothing is revoked); `SessionRevoked(reason)` for an
    /// ended session or a reuse (which ends it with `refresh_token_reuse`);
    /// `SessionExpired`.
    pub async fn refresh(&self, presented: &str) -> Result<SignedIn, DomainError> {
        self.refresh_as(presented, Initiative::User).await
    }

    /// As [`Self::refresh`], for a refresh the client makes on its own (a background check
    /// whose access token ran out): a new pair, but the session's expiry does not slide, so
    /// that a forgotten tab cannot keep its session alive up to the absolute lifetime.
    ///
    /// # Errors
    /// As [`Self::refresh`].
    pub async fn refresh_in_background(&self, presented: &str) -> Result<SignedIn, DomainError> {
        self.refresh_as(presented, Initiative::Background).await
    }

    async fn refresh_as(
        &self,
        presented: &str,
        initiative: Initiative,
    ) -> Result<SignedIn, DomainError> {
        let token = RefreshToken::parse(presented).map_err(|_| DomainError::RefreshTokenInvalid)?;
        let presented = token.hash();
        let now = self.ports.clock.now();
        let session = self.find_for_refresh(token.session_id()).await?;

        if session.refresh.current == presented {
            ensure_live(&session, now)?;
            let next = RefreshToken::new(session.id, self.ports.random.bytes32());
            let expires_at = match initiative {
                Initiative::User => self
                    .policy
                    .roles
                    .get(session.role)
                    .expiry(session.created_at, now),
                Initiative::Background => session.expires_at,
            };
            let rotated = self
                .ports
                .sessions
                .rotate_refresh_token(session.id, presented, next.hash(), expires_at, now)
                .await?;
            if let Some(rotated) = rotated {
                return self.signed_in(rotated, next, Vec::new(), now);
            }
            // A parallel refresh with the same token won the swap: judge the token again
            // against what is stored now (it is the previous one, or the session ended).
            let session = self.find_for_refresh(token.session_id()).await?;
            return Err(self.refuse_stale_token(&session, presented, now).await);
        }
        Err(self.refuse_stale_token(&session, presented, now).await)
    }

    async fn find_for_refresh(&self, id: SessionId) -> Result<Session, DomainError> {
        self.ports
            .sessions
            .find(id)
            .await?
            .ok_or(DomainError::RefreshTokenInvalid)
    }

    /// The answer to a refresh token that is not the session's current one.
    async fn refuse_stale_token(
        &self,
        session: &Session,
        presented: RefreshTokenHash,
        now: OffsetDateTime,
    ) -> DomainError {
        let retired_at = if session.refresh.previous == Some(presented) {
            session.refresh.rotated_at.unwrap_or(session.created_at)
        } else {
            // Any earlier token of the session, however many rotations ago (SPEC §2). A hash
            // the session never had says nothing about it: whoever knows only a session id
            // cannot end it.
            match self
                .ports
                .sessions
                .find_retired_refresh_token(session.id, presented)
                .await
            {
                Ok(Some(at)) => at,
                Ok(None) => return DomainError::RefreshTokenInvalid,
                Err(e) => return e.into(),
            }
        };
        if let Err(not_live) = ensure_live(session, now) {
            return not_live;
        }
        if self.policy.within_refresh_grace(retired_at, now) {
            return DomainError::RefreshTokenRotated;
        }
        // A rotated token presented again, well after its rotation: someone else holds it.
        let reason = InvalidationReason::RefreshTokenReuse;
        let by = EndedBy::System;
        match self.ports.sessions.end(session.id, reason, by, now).await {
            Ok(ended) => {
                if ended.is_some() {
                    let ids = [session.id];
                    self.ports.events.ended(session.user_id, &ids, reason, by);
                }
                DomainError::SessionRevoked(reason)
            }
            Err(e) => e.into(),
        }
    }

    fn signed_in(
        &self,
        session: Session,
        refresh_token: RefreshToken,
        evicted: Vec<SessionId>,
        now: OffsetDateTime,
    ) -> Result<SignedIn, DomainError> {
        let access_expires_at = self.policy.access_token_expiry(now, session.expires_at);
        let claims = AccessClaims {
            user_id: session.user_id,
            session_id: session.id,
            role: session.role,
            issued_at: now,
            expires_at: access_expires_at,
            token_id: Uuid::from_bytes(self.ports.random_id_bytes()),
        };
        let access_token = self
            .ports
            .tokens
            .encode(&claims)
            .map_err(|e| DomainError::Internal(Box::new(e)))?;
        Ok(SignedIn {
            session,
            access_token,
            issued_at: now,
            access_expires_at,
            refresh_token,
            evicted,
            device_token: None,
        })
    }
}

/// A sign-in lost to role changes three times in a row: overload, try again.
#[derive(Debug, thiserror::Error)]
#[error("the user's role kept changing during sign-in")]
struct RoleKeptChanging;

/// The answer to a sign-in whose session could not be stored.
fn refused_sign_in(error: CreateSessionError) -> DomainError {
    match error {
        CreateSessionError::LimitReached => DomainError::MaxSessionsReached,
        // The password verified is no longer the user's, or the user is gone: the same
        // answer as a wrong password.
        CreateSessionError::PasswordChanged | CreateSessionError::UserGone => {
            DomainError::InvalidCredentials
        }
        CreateSessionError::UserDisabled => DomainError::AccountDisabled,
        CreateSessionError::RoleChanged(_) => DomainError::Unavailable(Box::new(RoleKeptChanging)),
        CreateSessionError::Store(e) => e.into(),
    }
}

/// Refuses a session that is not live at `now`, with the code the client needs.
fn ensure_live(session: &Session, now: OffsetDateTime) -> Result<(), DomainError> {
    refuse_unless_live(session.liveness(now))
}

fn refuse_unless_live(liveness: Liveness) -> Result<(), DomainError> {
    match liveness {
        Liveness::Live => Ok(()),
        // The same answer whether or not cleanup has marked the session yet.
        Liveness::Expired | Liveness::Ended(InvalidationReason::Expired) => {
            Err(DomainError::SessionExpired)
        }
        Liveness::Ended(reason) => Err(DomainError::SessionRevoked(reason)),
    }
}

#[cfg(test)]
mod tests;
