//! The nouns of the domain: users, sessions, tokens and the policy that governs them.

pub mod device;
pub mod device_token;
pub mod directory;
pub mod ids;
pub mod policy;
pub mod revocation;
pub mod role;
pub mod session;
pub mod statistics;
pub mod token;
pub mod user;

pub use device::{DeviceClass, DeviceInfo, DeviceKind, DeviceName, is_bidi_control};
pub use device_token::{DeviceId, DeviceKeys, DeviceToken, KnownDevice, UnusableDeviceKey};
pub use directory::{EmailPrefix, PageSize, UserFilter, UserPage, UserPosition, UserQuery};
pub use ids::{SessionId, UserId};
pub use policy::{
    LimitAction, RolePolicies, RolePolicy, SessionPolicy, ThrottlePolicy, eviction_victims,
};
pub use revocation::{Remembered, Revocation, RevocationMemory};
pub use role::Role;
pub use session::{
    EndedBy, InvalidationReason, Liveness, NewSessionContext, RefreshState, Session,
    SessionActivity, SessionStatus, SessionSummary,
};
pub use statistics::{
    HourlyCounts, ReasonCounts, RoleCounts, StoredStatistics, SystemStatistics, hour_start,
};
pub use token::{AccessClaims, RefreshToken, RefreshTokenHash};
pub use user::{Email, InvalidInput, Password, PasswordHash, User};
