//! Wire types of responses, built from domain values, and the schemas of the domain enums
//! that reach the wire. Requests are parsed in the routes.

use std::net::IpAddr;

use std::collections::BTreeMap;

use serde::Serialize;
use sessiond_domain::model::{
    DeviceToken, EndedBy, HourlyCounts, Role, Session, SessionId, SessionSummary, SystemStatistics,
    User, UserPage,
};
use sessiond_domain::service::{Principal, SignedIn, UserDetail};
use sessiond_domain::trust::ValidationMode;
use sessiond_jwt::PublicJwk;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// A session as its owner sees it. Borrows from the session it shows: rendering it is on
/// the path of every `GET /sessions/current`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView<'a> {
    pub id: Uuid,
    /// The seed's device class: iPhone, Android, iPad, Mac, Windows, Linux, Mobile, Unknown.
    pub device_info: &'static str,
    /// phone, tablet, computer or other: which icon to show.
    pub device_kind: &'static str,
    pub browser: Option<&'a str>,
    pub device_name: Option<&'a str>,
    #[schema(value_type = Option<String>)]
    pub ip_address: Option<IpAddr>,
    pub user_agent: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    pub is_current: bool,
}

impl<'a> SessionView<'a> {
    /// A stored session; `current` is the caller's session.
    pub fn new(session: &'a Session, current: SessionId) -> Self {
        Self {
            id: session.id.as_uuid(),
            device_info: session.device.class.as_str(),
            device_kind: session.device.class.kind().as_str(),
            browser: session.device.browser.as_deref(),
            device_name: session.device_name.as_deref(),
            ip_address: session.ip_address,
            user_agent: session.user_agent.as_deref(),
            created_at: session.created_at,
            last_activity: session.last_activity,
            expires_at: session.expires_at,
            is_current: session.id == current,
        }
    }

    /// The caller's own session as validation saw it (no User-Agent: validation does not
    /// read it).
    pub fn current(session: &'a SessionSummary) -> Self {
        Self {
            id: session.id.as_uuid(),
            device_info: session.device.class.as_str(),
            device_kind: session.device.class.kind().as_str(),
            browser: session.device.browser.as_deref(),
            device_name: session.device_name.as_deref(),
            ip_address: session.ip_address,
            user_agent: session.user_agent.as_deref(),
            created_at: session.created_at,
            last_activity: session.last_activity,
            expires_at: session.expires_at,
            is_current: true,
        }
    }
}

/// An ended session in the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndedSessionView {
    pub id: Uuid,
    pub device_info: &'static str,
    pub device_kind: &'static str,
    pub browser: Option<String>,
    pub device_name: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_activity: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    #[schema(value_type = ReasonSchema)]
    pub reason: &'static str,
}

impl EndedSessionView {
    /// `None` for a session that has not ended.
    pub fn new(session: &Session) -> Option<Self> {
        let (ended_at, reason) = session.ended()?;
        Some(Self {
            id: session.id.as_uuid(),
            device_info: session.device.class.as_str(),
            device_kind: session.device.class.kind().as_str(),
            browser: session.device.browser.clone(),
            device_name: session.device_name.clone(),
            ip_address: session.ip_address.map(|ip| ip.to_string()),
            user_agent: session.user_agent.clone(),
            created_at: session.created_at,
            last_activity: session.last_activity,
            ended_at,
            reason: reason.as_str(),
        })
    }
}

/// A user account, without its password hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: String,
    #[schema(value_type = RoleSchema)]
    pub role: Role,
    pub hotel_id: Option<i64>,
    pub is_active: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.as_str().to_owned(),
            role: user.role,
            hotel_id: user.hotel_id,
            is_active: user.is_active,
            created_at: user.created_at,
        }
    }
}

/// `GET /admin/users`: a page of the search.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPageView {
    /// Newest first.
    pub items: Vec<UserView>,
    /// Pass as `page_token`, with the same filters, for the next page; `null` on the last.
    pub next_page_token: Option<String>,
}

impl From<&UserPage> for UserPageView {
    fn from(page: &UserPage) -> Self {
        Self {
            items: page.users.iter().map(UserView::from).collect(),
            next_page_token: page.next.map(|next| next.to_token()),
        }
    }
}

/// An administrator named in a session's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdministratorView {
    pub id: Uuid,
    /// `null` when the administrator's account no longer exists.
    pub email: Option<String>,
}

/// An ended session as an administrator sees it: who ended it, too.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminEndedSessionView {
    #[serde(flatten)]
    pub session: EndedSessionView,
    /// `user` (the session's own user, from this or another device), `admin`, `system`
    /// (expiry, the max-sessions rule, a reused refresh token); `null` when the end did not
    /// record it (before sessiond kept it, or made by hand in SQL).
    #[schema(value_type = Option<String>, pattern = "^(user|admin|system)$")]
    pub ended_by: Option<&'static str>,
    /// The administrator, when `ended_by` is `admin`.
    pub ended_by_admin: Option<AdministratorView>,
}

/// `GET /admin/users/{user_id}`: an account in one answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserDetailView<'a> {
    pub user: UserView,
    /// Most recently active first.
    pub live_sessions: Vec<SessionView<'a>>,
    /// Ended sessions of the retention period, newest first, at most 50.
    pub history: Vec<AdminEndedSessionView>,
}

impl<'a> UserDetailView<'a> {
    /// `current` is the caller's session.
    pub fn new(detail: &'a UserDetail, current: SessionId) -> Self {
        let history = detail
            .history
            .iter()
            .filter_map(|session| {
                let view = EndedSessionView::new(session)?;
                let (ended_by, ended_by_admin) = match session.ended_by {
                    None => (None, None),
                    Some(EndedBy::Owner) => (Some("user"), None),
                    Some(EndedBy::System) => (Some("system"), None),
                    Some(EndedBy::Administrator(admin)) => (
                        Some("admin"),
                        Some(AdministratorView {
                            id: admin.as_uuid(),
                            email: detail
                                .administrators
                                .get(&admin)
                                .map(|email| email.as_str().to_owned()),
                        }),
                    ),
                };
                Some(AdminEndedSessionView {
                    session: view,
                    ended_by,
                    ended_by_admin,
                })
            })
            .collect();
        Self {
            user: UserView::from(&detail.user),
            live_sessions: detail
                .live_sessions
                .iter()
                .map(|session| SessionView::new(session, current))
                .collect(),
            history,
        }
    }
}

/// Live sessions per role.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleCountsView {
    pub guest: u64,
    pub hotel_employee: u64,
    pub vendor_admin: u64,
    pub system_admin: u64,
}

/// One UTC hour of `GET /admin/stats`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HourView {
    /// The start of the hour.
    #[serde(with = "time::serde::rfc3339")]
    pub hour: OffsetDateTime,
    /// Sessions opened.
    pub sign_ins: u64,
    /// Sign-ins refused for a wrong e-mail or password (not those refused for being
    /// throttled, nor a disabled account's).
    pub failed_sign_ins: u64,
    /// Sessions ended in the hour, by invalidation reason: every reason, zeros included.
    /// An expired session counts in the hour it expired.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub ended: BTreeMap<&'static str, u64>,
}

impl From<&HourlyCounts> for HourView {
    fn from(counts: &HourlyCounts) -> Self {
        Self {
            hour: counts.hour,
            sign_ins: counts.sign_ins,
            failed_sign_ins: counts.failed_sign_ins,
            ended: counts
                .ended
                .iter()
                .map(|(reason, count)| (reason.as_str(), count))
                .collect(),
        }
    }
}

/// `GET /admin/stats`: the whole system at a glance.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatisticsView {
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Sessions not ended, by role. A session past its `expires_at` counts until the
    /// cleanup pass ends it as `expired` (within one cleanup interval).
    pub live_sessions_by_role: RoleCountsView,
    /// The last 24 UTC hours, oldest first, every hour present; the last is the current
    /// hour, so far.
    pub hours: Vec<HourView>,
}

impl From<&SystemStatistics> for StatisticsView {
    fn from(statistics: &SystemStatistics) -> Self {
        let live = &statistics.live_by_role;
        Self {
            generated_at: statistics.generated_at,
            live_sessions_by_role: RoleCountsView {
                guest: live.get(Role::Guest),
                hotel_employee: live.get(Role::HotelEmployee),
                vendor_admin: live.get(Role::VendorAdmin),
                system_admin: live.get(Role::SystemAdmin),
            },
            hours: statistics.hours.iter().map(HourView::from).collect(),
        }
    }
}

/// The answer to sign-in and refresh.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView<'a> {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(value_type = String, pattern = "^Bearer$")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Refresh when fewer seconds than this are left.
    pub refresh_threshold: i64,
    pub session: SessionView<'a>,
    /// Sign-in only (not refresh): an opaque token that makes this device a known one. Keep
    /// it (for a year, or until the password changes) and send it back as `device_token` at
    /// the next sign-in: a known device's failed sign-ins are counted on their own, so that
    /// strangers' failures on the account or the network address cannot lock it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<&'a str>,
}

impl<'a> TokenView<'a> {
    pub fn new(signed_in: &'a SignedIn, refresh_threshold: i64) -> Self {
        Self {
            access_token: signed_in.access_token.clone(),
            refresh_token: signed_in.refresh_token.expose(),
            token_type: "Bearer",
            expires_in: (signed_in.access_expires_at - signed_in.issued_at)
                .whole_seconds()
                .max(0),
            refresh_threshold,
            session: SessionView::new(&signed_in.session, signed_in.session.id),
            device_token: signed_in.device_token.as_ref().map(DeviceToken::expose),
        }
    }
}

/// `GET /sessions/current`: answered from the validated session alone, so that the
/// services that call it on every request cost one cache read and no database query.
#[derive(Debug, Serialize, ToSchema)]
pub struct CurrentView<'a> {
    pub session: SessionView<'a>,
    pub user: PrincipalView,
}

/// Who the caller is: enough to authorize. The profile is `GET /users/me`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PrincipalView {
    pub id: Uuid,
    #[schema(value_type = RoleSchema)]
    pub role: Role,
}

impl From<&Principal> for PrincipalView {
    fn from(principal: &Principal) -> Self {
        Self {
            id: principal.user_id.as_uuid(),
            role: principal.role,
        }
    }
}

/// The answer to ending sessions.
#[derive(Debug, Serialize, ToSchema)]
pub struct EndedView {
    pub success: bool,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<u64>, minimum = 0)]
    pub revoked: Option<usize>,
}

impl EndedView {
    /// One session ended.
    pub fn one() -> Self {
        Self {
            success: true,
            message: "Session ended".into(),
            revoked: None,
        }
    }

    /// Several sessions ended; `whose` reads "other " for the caller's others, "" for all.
    pub fn many(revoked: usize, whose: &str) -> Self {
        Self {
            success: true,
            message: format!("Ended {revoked} {whose}session(s)"),
            revoked: Some(revoked),
        }
    }
}

/// `GET /health/live`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

impl Liveness {
    /// The process answers.
    pub const OK: Self = Self { status: "ok" };
}

/// `GET /.well-known/jwks.json`: a JSON Web Key Set (RFC 7517 §5), the public keys that
/// verify access tokens offline; empty with HS256, whose keys are secrets.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = JwkSet)]
pub struct JwkSetView<'a> {
    /// The current key first, then the previous ones.
    pub keys: Vec<JwkView<'a>>,
}

impl<'a> JwkSetView<'a> {
    pub fn new(keys: &'a [PublicJwk]) -> Self {
        Self {
            keys: keys.iter().map(JwkView::new).collect(),
        }
    }
}

/// One public key (RFC 7517 §4, RFC 7518 §6.2, RFC 8037 §2).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Jwk)]
pub struct JwkView<'a> {
    /// The key id: the `kid` in the header of the tokens it verifies.
    pub kid: &'a str,
    /// `EC` for ES256, `OKP` for EdDSA.
    #[schema(pattern = "^(EC|OKP)$")]
    pub kty: &'a str,
    /// `P-256` for ES256, `Ed25519` for EdDSA.
    #[schema(pattern = "^(P-256|Ed25519)$")]
    pub crv: &'a str,
    /// The public key (EdDSA) or its x coordinate (ES256), base64url without padding.
    pub x: &'a str,
    /// ES256 only: the y coordinate, base64url without padding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub y: Option<&'a str>,
    /// `ES256` or `EdDSA`: the only `alg` a token verified with this key may name.
    #[schema(pattern = "^(ES256|EdDSA)$")]
    pub alg: &'a str,
    /// Always `sig`.
    #[serde(rename = "use")]
    #[schema(pattern = "^sig$")]
    pub key_use: &'a str,
}

impl<'a> JwkView<'a> {
    fn new(key: &'a PublicJwk) -> Self {
        Self {
            kid: &key.kid,
            kty: key.kty,
            crv: key.crv,
            x: &key.x,
            y: key.y.as_deref(),
            alg: key.alg,
            key_use: key.key_use,
        }
    }
}

/// `GET /health/ready`: 200 while this instance can validate requests correctly, 503 only
/// when it cannot (SPEC §4): a store blip alone never takes every instance out of a load
/// balancer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(pattern = "^(ready|unavailable)$")]
    status: &'static str,
    /// How requests are validated now (SPEC §8): `cached` (near cache and Redis),
    /// `store_only` (the durable store), `vouched` (the caches, PostgreSQL being
    /// unreachable and the heartbeats vouching), `closed` (refusing with 503).
    #[schema(pattern = "^(cached|store_only|vouched|closed)$")]
    validation: &'static str,
    checks: ReadinessChecks,
}

impl Readiness {
    /// Ready unless validation has failed closed.
    pub fn new(validation: ValidationMode, postgres: StoreStatus, redis: StoreStatus) -> Self {
        Self {
            status: if validation == ValidationMode::Closed {
                "unavailable"
            } else {
                "ready"
            },
            validation: validation.as_str(),
            checks: ReadinessChecks {
                postgres,
                redis,
                redis_cluster: None,
            },
        }
    }

    /// With the state of the cache's Redis Cluster (`REDIS_CLUSTER_URLS`).
    #[must_use]
    pub fn with_redis_cluster(mut self, cluster: RedisClusterCheck) -> Self {
        self.checks.redis_cluster = Some(cluster);
        self
    }

    pub fn is_ready(&self) -> bool {
        self.status == "ready"
    }
}

/// Each store's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    postgres: StoreStatus,
    /// The server, or with a Redis Cluster every primary, answers `PING`.
    redis: StoreStatus,
    /// Only when the cache runs on a Redis Cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_cluster: Option<RedisClusterCheck>,
}

/// The cache's Redis Cluster, as one of its nodes sees it (`CLUSTER INFO`).
#[derive(Debug, Serialize, ToSchema)]
pub struct RedisClusterCheck {
    /// `ok` (every slot is served), `fail` (some slot is not, e.g. during a failover) or
    /// `unreachable` (no node answered).
    #[schema(pattern = "^(ok|fail|unreachable)$")]
    state: &'static str,
    /// Nodes known to the cluster, primaries and replicas; absent when unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    known_nodes: Option<u64>,
    /// Primaries serving slots; absent when unreachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    primaries: Option<u64>,
}

impl RedisClusterCheck {
    /// From the cluster's state, `None` when no node answered.
    pub fn new(state: Option<crate::probes::ClusterState>) -> Self {
        match state {
            Some(state) => Self {
                state: if state.ok { "ok" } else { "fail" },
                known_nodes: Some(state.known_nodes),
                primaries: Some(state.primaries),
            },
            None => Self {
                state: "unreachable",
                known_nodes: None,
                primaries: None,
            },
        }
    }
}

/// One store's state; `not_configured` with in-memory storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StoreStatus {
    Up,
    Down,
    NotConfigured,
}

// The domain enums as the document describes them: `openapi`'s tests keep each equal to the
// domain's list.

/// A user's role, as it appears on the wire (mirror of the domain's `Role`).
#[derive(Debug, ToSchema)]
#[schema(as = Role, rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a schema only: the wire carries the domain's `Role`"
)]
pub enum RoleSchema {
    Guest,
    HotelEmployee,
    VendorAdmin,
    SystemAdmin,
}

/// Why a session ended (mirror of the domain's `InvalidationReason`).
#[derive(Debug, ToSchema)]
#[schema(as = InvalidationReason, rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "a schema only: the wire carries the domain's `InvalidationReason`"
)]
pub enum ReasonSchema {
    UserLogout,
    EndedFromOtherDevice,
    UserLogoutAll,
    MaxSessionsExceeded,
    PasswordChanged,
    RoleChanged,
    AccountDisabled,
    AdminRevoked,
    RefreshTokenReuse,
    Expired,
}
