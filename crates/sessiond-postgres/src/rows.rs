//! Rows as diesel reads and writes them, and their conversion to and from domain types.
//!
//! Read rows own their data and convert with `TryFrom` (a value the domain cannot hold is a
//! corrupt row, [`PgError::CorruptRow`]); insert rows borrow from the domain value.

use std::net::IpAddr;

use diesel::prelude::*;
use sessiond_domain::model::{
    DeviceClass, DeviceInfo, Email, EndedBy, InvalidationReason, PasswordHash, RefreshState,
    RefreshTokenHash, Role, Session, SessionId, SessionStatus, User, UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::PgError;
use crate::schema::{user_sessions, users};

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(crate) struct UserRow {
    id: Uuid,
    email: String,
    password_hash: String,
    role: String,
    hotel_id: Option<i64>,
    is_active: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = users, check_for_backend(diesel::pg::Pg))]
pub(crate) struct NewUserRow<'a> {
    id: Uuid,
    email: &'a str,
    password_hash: &'a str,
    role: &'static str,
    hotel_id: Option<i64>,
    is_active: bool,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a User> for NewUserRow<'a> {
    fn from(user: &'a User) -> Self {
        Self {
            id: user.id.as_uuid(),
            email: user.email.as_str(),
            password_hash: user.password_hash.as_str(),
            role: user.role.as_str(),
            hotel_id: user.hotel_id,
            is_active: user.is_active,
            created_at: user.created_at,
            updated_at: user.updated_at,
        }
    }
}

impl TryFrom<UserRow> for User {
    type Error = PgError;

    fn try_from(row: UserRow) -> Result<Self, Self::Error> {
        let corrupt = |problem: String| PgError::corrupt("users", problem);
        Ok(User {
            id: UserId::from_uuid(row.id),
            email: Email::from_stored(&row.email)
                .map_err(|e| corrupt(format!("user {}: email {e}", row.id)))?,
            password_hash: PasswordHash::new(row.password_hash),
            role: row
                .role
                .parse::<Role>()
                .map_err(|e| corrupt(format!("user {}: {e}", row.id)))?,
            hotel_id: row.hotel_id,
            is_active: row.is_active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = user_sessions, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SessionRow {
    id: Uuid,
    user_id: Uuid,
    device_info: String,
    ip_address: Option<String>,
    user_agent: Option<String>,
    created_at: OffsetDateTime,
    last_activity: OffsetDateTime,
    expires_at: OffsetDateTime,
    is_active: bool,
    invalidated_at: Option<OffsetDateTime>,
    invalidation_reason: Option<String>,
    role: String,
    browser: Option<String>,
    device_name: Option<String>,
    refresh_token_hash: Vec<u8>,
    previous_refresh_token_hash: Option<Vec<u8>>,
    refresh_rotated_at: Option<OffsetDateTime>,
    version: i64,
    ended_by: Option<String>,
    ended_by_admin: Option<Uuid>,
    hotel_id: Option<i64>,
}

/// How `ended_by` and `ended_by_admin` spell who ended a session.
pub(crate) fn ended_by_columns(by: EndedBy) -> (&'static str, Option<Uuid>) {
    match by {
        EndedBy::Owner => ("user", None),
        EndedBy::Administrator(admin) => ("admin", Some(admin.as_uuid())),
        EndedBy::System => ("system", None),
    }
}

/// Who ended a session, from its two columns; `None` when the end did not record it.
fn ended_by(kind: Option<&str>, admin: Option<Uuid>) -> Result<Option<EndedBy>, String> {
    match (kind, admin) {
        (None, None) => Ok(None),
        (Some("user"), None) => Ok(Some(EndedBy::Owner)),
        (Some("admin"), Some(admin)) => Ok(Some(EndedBy::Administrator(UserId::from_uuid(admin)))),
        (Some("system"), None) => Ok(Some(EndedBy::System)),
        (kind, admin) => Err(format!("ended_by {kind:?} with ended_by_admin {admin:?}")),
    }
}

/// A new session as inserted. No `version`: the database starts every session at 1 and
/// alone moves it (migration `2026-12-02-000005_revocation_log`).
#[derive(Debug, Insertable)]
#[diesel(table_name = user_sessions, check_for_backend(diesel::pg::Pg))]
pub(crate) struct NewSessionRow<'a> {
    id: Uuid,
    user_id: Uuid,
    device_info: &'static str,
    ip_address: Option<String>,
    user_agent: Option<&'a str>,
    created_at: OffsetDateTime,
    last_activity: OffsetDateTime,
    expires_at: OffsetDateTime,
    is_active: bool,
    invalidated_at: Option<OffsetDateTime>,
    invalidation_reason: Option<&'static str>,
    role: &'static str,
    browser: Option<&'a str>,
    device_name: Option<&'a str>,
    refresh_token_hash: &'a [u8],
    previous_refresh_token_hash: Option<&'a [u8]>,
    refresh_rotated_at: Option<OffsetDateTime>,
    ended_by: Option<&'static str>,
    ended_by_admin: Option<Uuid>,
    hotel_id: Option<i64>,
}

impl<'a> From<&'a Session> for NewSessionRow<'a> {
    fn from(session: &'a Session) -> Self {
        let (ended_by, ended_by_admin) = session
            .ended_by
            .map(ended_by_columns)
            .map_or((None, None), |(kind, admin)| (Some(kind), admin));
        let (is_active, invalidated_at, invalidation_reason) = match session.status {
            SessionStatus::Active => (true, None, None),
            SessionStatus::Ended { at, reason } => (false, Some(at), Some(reason.as_str())),
        };
        Self {
            id: session.id.as_uuid(),
            user_id: session.user_id.as_uuid(),
            device_info: session.device.class.as_str(),
            ip_address: session.ip_address.map(|ip| ip.to_string()),
            user_agent: session.user_agent.as_deref(),
            created_at: session.created_at,
            last_activity: session.last_activity,
            expires_at: session.expires_at,
            is_active,
            invalidated_at,
            invalidation_reason,
            role: session.role.as_str(),
            browser: session.device.browser.as_deref(),
            device_name: session.device_name.as_deref(),
            refresh_token_hash: session.refresh.current.as_bytes(),
            previous_refresh_token_hash: session
                .refresh
                .previous
                .as_ref()
                .map(|h| &h.as_bytes()[..]),
            refresh_rotated_at: session.refresh.rotated_at,
            ended_by,
            ended_by_admin,
            hotel_id: session.hotel_id,
        }
    }
}

impl TryFrom<SessionRow> for Session {
    type Error = PgError;

    fn try_from(row: SessionRow) -> Result<Self, Self::Error> {
        let id = row.id;
        let corrupt =
            |problem: String| PgError::corrupt("user_sessions", format!("session {id}: {problem}"));
        let status = match (row.is_active, row.invalidated_at, row.invalidation_reason) {
            (true, None, None) => SessionStatus::Active,
            (false, Some(at), Some(reason)) => SessionStatus::Ended {
                at,
                reason: reason
                    .parse::<InvalidationReason>()
                    .map_err(|e| corrupt(e.to_string()))?,
            },
            (is_active, at, reason) => {
                return Err(corrupt(format!(
                    "inconsistent lifecycle: is_active={is_active}, invalidated_at={at:?}, \
                     invalidation_reason={reason:?}"
                )));
            }
        };
        let hash = |bytes: Vec<u8>, column: &str| {
            <[u8; 32]>::try_from(bytes)
                .map(RefreshTokenHash::from_bytes)
                .map_err(|bytes| corrupt(format!("{column} has {} bytes, not 32", bytes.len())))
        };
        let ip_address = row
            .ip_address
            .map(|ip| ip.parse::<IpAddr>())
            .transpose()
            .map_err(|e| corrupt(format!("ip_address: {e}")))?;
        let ended_by = ended_by(row.ended_by.as_deref(), row.ended_by_admin).map_err(corrupt)?;
        let version = u64::try_from(row.version)
            .map_err(|_| corrupt(format!("version {} is negative", row.version)))?;
        let device_class = match row.device_info.parse::<DeviceClass>() {
            Ok(class) => class,
            Err(never) => match never {},
        };
        Ok(Session {
            id: SessionId::from_uuid(row.id),
            user_id: UserId::from_uuid(row.user_id),
            role: row
                .role
                .parse::<Role>()
                .map_err(|e| corrupt(e.to_string()))?,
            hotel_id: row.hotel_id,
            device: DeviceInfo {
                class: device_class,
                browser: row.browser,
            },
            device_name: row.device_name,
            ip_address,
            user_agent: row.user_agent,
            created_at: row.created_at,
            last_activity: row.last_activity,
            expires_at: row.expires_at,
            status,
            refresh: RefreshState {
                current: hash(row.refresh_token_hash, "refresh_token_hash")?,
                previous: row
                    .previous_refresh_token_hash
                    .map(|bytes| hash(bytes, "previous_refresh_token_hash"))
                    .transpose()?,
                rotated_at: row.refresh_rotated_at,
            },
            ended_by,
            version,
        })
    }
}
