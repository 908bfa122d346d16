//! The cached value: a hand-written, versioned binary encoding of a [`SessionSummary`], or
//! a tombstone.
//!
//! Layout version 4 (integers big-endian):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | layout version (`4`) |
//! | 1 | 8 | the session's generation ([`SessionSummary::version`]), u64 (compared by the put script) |
//! | 9 | 16 | session id (UUID bytes) |
//! | 25 | 16 | user id (UUID bytes) |
//! | 41 | 8 | `created_at`, i64 unix microseconds |
//! | 49 | 8 | `last_activity`, i64 unix microseconds (as stored; never patched) |
//! | 57 | 8 | `expires_at`, i64 unix microseconds |
//! | 65 | 1 | role |
//! | 66 | 1 | device class |
//! | 67 | 1 | status: `0` active; `1` ended, then 8 bytes `at` (micros) and 1 byte reason |
//! | .. | 1 | flags: bit 0 browser present, bit 1 device name present, bits 2–3 IP (0 none, 1 v4, 2 v6), bit 4 User-Agent present, bit 5 hotel id present |
//! | .. | var | browser: LEB128 length, then UTF-8 bytes (when present) |
//! | .. | var | device name: LEB128 length, then UTF-8 bytes (when present) |
//! | .. | var | User-Agent: LEB128 length, then UTF-8 bytes (when present) |
//! | .. | 4/16 | IP address octets (when present) |
//! | .. | 8 | hotel id, i64 (when present) |
//!
//! The ids duplicate the key's, on purpose: a reader checks that the value belongs to the key
//! it asked for (32 bytes well spent against a mixed-up write). No token material is ever
//! part of a summary, so none can reach Redis.
//!
//! A tombstone (a session marked ended) is the single byte `TOMBSTONE` (`0`): no layout
//! version is `0`, so the scripts and `is_tombstone` tell it from any encoded session by
//! its first byte. Layout 1 had no generation, layout 2 no User-Agent, layout 3 no hotel id;
//! this build reads only layout 4 and treats any other value as unreadable (a miss that
//! PostgreSQL answers and the refill replaces), so instances of the layout-3 release may
//! serve beside it. Layouts 3 and 4 keep the generation at one offset, and this build's put
//! script compares it across both, so it never rolls back a copy the previous release wrote.
//! The previous release's script overwrites a layout-4 copy whatever its generation, which
//! this build then reads as a miss; neither overwrites a tombstone.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use sessiond_domain::model::{
    DeviceClass, DeviceInfo, InvalidationReason, Role, SessionId, SessionStatus, SessionSummary,
    UserId,
};
use time::OffsetDateTime;
use uuid::Uuid;

/// The layout version byte this build writes (and the only one it reads).
pub(crate) const VERSION: u8 = 4;
/// The previous release's layout: unreadable here, but its generation is where ours is.
pub(crate) const PREVIOUS_VERSION: u8 = 3;
/// The first (and only) byte of a tombstone; never a layout version.
pub(crate) const TOMBSTONE: u8 = 0;
/// Byte offset of the generation, which the put script compares.
pub(crate) const GENERATION_OFFSET: usize = 1;
/// Byte offset of `last_activity`.
#[cfg(test)]
pub(crate) const LAST_ACTIVITY_OFFSET: usize = 49;

const FIXED_LEN: usize = 68;
const FLAG_BROWSER: u8 = 0b0001;
const FLAG_DEVICE_NAME: u8 = 0b0010;
const FLAG_USER_AGENT: u8 = 0b1_0000;
const FLAG_HOTEL: u8 = 0b10_0000;
const IP_SHIFT: u8 = 2;
const IP_MASK: u8 = 0b1100;

/// A cached value this build cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown value version {0}")]
    Version(u8),
    #[error("value truncated")]
    Truncated,
    #[error("{0} byte {1} names nothing")]
    Tag(&'static str, u8),
    #[error("time out of range")]
    Time,
    #[error("string is not UTF-8")]
    Utf8,
    #[error("{0} trailing bytes")]
    Trailing(usize),
    #[error("the value belongs to another session")]
    WrongSession,
}

/// Encodes `session` (version [`VERSION`]).
pub(crate) fn encode(session: &SessionSummary) -> Vec<u8> {
    let mut out = Vec::with_capacity(FIXED_LEN + 32);
    out.push(VERSION);
    out.extend_from_slice(&session.version.to_be_bytes());
    out.extend_from_slice(session.id.as_uuid().as_bytes());
    out.extend_from_slice(session.user_id.as_uuid().as_bytes());
    out.extend_from_slice(&micros(session.created_at).to_be_bytes());
    out.extend_from_slice(&micros(session.last_activity).to_be_bytes());
    out.extend_from_slice(&micros(session.expires_at).to_be_bytes());
    out.push(role_tag(session.role));
    out.push(class_tag(session.device.class));
    match session.status {
        SessionStatus::Active => out.push(0),
        SessionStatus::Ended { at, reason } => {
            out.push(1);
            out.extend_from_slice(&micros(at).to_be_bytes());
            out.push(reason_tag(reason));
        }
    }
    let mut flags = 0;
    if session.device.browser.is_some() {
        flags |= FLAG_BROWSER;
    }
    if session.device_name.is_some() {
        flags |= FLAG_DEVICE_NAME;
    }
    if session.user_agent.is_some() {
        flags |= FLAG_USER_AGENT;
    }
    if session.hotel_id.is_some() {
        flags |= FLAG_HOTEL;
    }
    flags |= match session.ip_address {
        None => 0,
        Some(IpAddr::V4(_)) => 1 << IP_SHIFT,
        Some(IpAddr::V6(_)) => 2 << IP_SHIFT,
    };
    out.push(flags);
    for text in [
        &session.device.browser,
        &session.device_name,
        &session.user_agent,
    ]
    .into_iter()
    .flatten()
    {
        put_varint(&mut out, text.len());
        out.extend_from_slice(text.as_bytes());
    }
    match session.ip_address {
        None => {}
        Some(IpAddr::V4(ip)) => out.extend_from_slice(&ip.octets()),
        Some(IpAddr::V6(ip)) => out.extend_from_slice(&ip.octets()),
    }
    if let Some(hotel) = session.hotel_id {
        out.extend_from_slice(&hotel.to_be_bytes());
    }
    out
}

/// Whether a stored value is a tombstone rather than a session.
pub(crate) fn is_tombstone(bytes: &[u8]) -> bool {
    bytes.first() == Some(&TOMBSTONE)
}

/// Decodes a value read from the key of `user_id`'s session `id` (not a tombstone: check
/// [`is_tombstone`] first).
pub(crate) fn decode(
    bytes: &[u8],
    user_id: UserId,
    id: SessionId,
) -> Result<SessionSummary, DecodeError> {
    let mut r = Reader { bytes };
    let version = r.u8()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let generation = u64::from_be_bytes(r.array::<8>()?);
    let session_id = SessionId::from_uuid(r.uuid()?);
    let owner = UserId::from_uuid(r.uuid()?);
    if session_id != id || owner != user_id {
        return Err(DecodeError::WrongSession);
    }
    let created_at = r.time()?;
    let last_activity = r.time()?;
    let expires_at = r.time()?;
    let role = role_from(r.u8()?)?;
    let class = class_from(r.u8()?)?;
    let status = match r.u8()? {
        0 => SessionStatus::Active,
        1 => SessionStatus::Ended {
            at: r.time()?,
            reason: reason_from(r.u8()?)?,
        },
        other => return Err(DecodeError::Tag("status", other)),
    };
    let flags = r.u8()?;
    if flags & !(FLAG_BROWSER | FLAG_DEVICE_NAME | FLAG_USER_AGENT | IP_MASK | FLAG_HOTEL) != 0 {
        return Err(DecodeError::Tag("flags", flags));
    }
    let browser = (flags & FLAG_BROWSER != 0)
        .then(|| r.string())
        .transpose()?;
    let device_name = (flags & FLAG_DEVICE_NAME != 0)
        .then(|| r.string())
        .transpose()?;
    let user_agent = (flags & FLAG_USER_AGENT != 0)
        .then(|| r.string())
        .transpose()?;
    let ip_address = match (flags & IP_MASK) >> IP_SHIFT {
        0 => None,
        1 => Some(IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))),
        2 => Some(IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))),
        _ => return Err(DecodeError::Tag("flags", flags)),
    };
    let hotel_id = (flags & FLAG_HOTEL != 0)
        .then(|| r.array::<8>().map(i64::from_be_bytes))
        .transpose()?;
    if !r.bytes.is_empty() {
        return Err(DecodeError::Trailing(r.bytes.len()));
    }
    Ok(SessionSummary {
        id: session_id,
        user_id: owner,
        role,
        hotel_id,
        device: DeviceInfo { class, browser },
        device_name,
        ip_address,
        user_agent,
        created_at,
        last_activity,
        expires_at,
        status,
        version: generation,
    })
}

/// Unix microseconds, the precision PostgreSQL keeps.
pub(crate) fn micros(at: OffsetDateTime) -> i64 {
    // Nanoseconds since 1970 fit an i64 of microseconds for any year `time` can represent.
    i64::try_from(at.unix_timestamp_nanos().div_euclid(1_000)).unwrap_or(i64::MAX)
}

fn from_micros(micros: i64) -> Result<OffsetDateTime, DecodeError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .map_err(|_| DecodeError::Time)
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    fn uuid(&mut self) -> Result<Uuid, DecodeError> {
        Ok(Uuid::from_bytes(self.array::<16>()?))
    }

    fn time(&mut self) -> Result<OffsetDateTime, DecodeError> {
        from_micros(i64::from_be_bytes(self.array::<8>()?))
    }

    fn varint(&mut self) -> Result<usize, DecodeError> {
        let mut n: usize = 0;
        for shift in (0..usize::BITS).step_by(7) {
            let byte = self.u8()?;
            n |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DecodeError::Tag("length", 0x80))
    }

    fn string(&mut self) -> Result<String, DecodeError> {
        let len = self.varint()?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::Utf8)
    }
}

// Explicit tags, never `as u8`: reordering a Rust enum must not change stored values.

fn role_tag(role: Role) -> u8 {
    match role {
        Role::Guest => 0,
        Role::HotelEmployee => 1,
        Role::VendorAdmin => 2,
        Role::SystemAdmin => 3,
    }
}

fn role_from(tag: u8) -> Result<Role, DecodeError> {
    Ok(match tag {
        0 => Role::Guest,
        1 => Role::HotelEmployee,
        2 => Role::VendorAdmin,
        3 => Role::SystemAdmin,
        other => return Err(DecodeError::Tag("role", other)),
    })
}

fn class_tag(class: DeviceClass) -> u8 {
    match class {
        DeviceClass::Unknown => 0,
        DeviceClass::IPhone => 1,
        DeviceClass::Android => 2,
        DeviceClass::IPad => 3,
        DeviceClass::Mac => 4,
        DeviceClass::Windows => 5,
        DeviceClass::Linux => 6,
        DeviceClass::Mobile => 7,
    }
}

fn class_from(tag: u8) -> Result<DeviceClass, DecodeError> {
    Ok(match tag {
        0 => DeviceClass::Unknown,
        1 => DeviceClass::IPhone,
        2 => DeviceClass::Android,
        3 => DeviceClass::IPad,
        4 => DeviceClass::Mac,
        5 => DeviceClass::Windows,
        6 => DeviceClass::Linux,
        7 => DeviceClass::Mobile,
        other => return Err(DecodeError::Tag("device class", other)),
    })
}

fn reason_tag(reason: InvalidationReason) -> u8 {
    match reason {
        InvalidationReason::UserLogout => 0,
        InvalidationReason::UserLogoutAll => 1,
        InvalidationReason::MaxSessionsExceeded => 2,
        InvalidationReason::PasswordChanged => 3,
        InvalidationReason::RoleChanged => 4,
        InvalidationReason::AccountDisabled => 5,
        InvalidationReason::AdminRevoked => 6,
        InvalidationReason::RefreshTokenReuse => 7,
        InvalidationReason::Expired => 8,
        InvalidationReason::EndedFromOtherDevice => 9,
    }
}

fn reason_from(tag: u8) -> Result<InvalidationReason, DecodeError> {
    Ok(match tag {
        0 => InvalidationReason::UserLogout,
        1 => InvalidationReason::UserLogoutAll,
        2 => InvalidationReason::MaxSessionsExceeded,
        3 => InvalidationReason::PasswordChanged,
        4 => InvalidationReason::RoleChanged,
        5 => InvalidationReason::AccountDisabled,
        6 => InvalidationReason::AdminRevoked,
        7 => InvalidationReason::RefreshTokenReuse,
        8 => InvalidationReason::Expired,
        9 => InvalidationReason::EndedFromOtherDevice,
        other => return Err(DecodeError::Tag("reason", other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn summary() -> SessionSummary {
        SessionSummary {
            id: SessionId::from_uuid(Uuid::from_u128(0x1234)),
            user_id: UserId::from_uuid(Uuid::from_u128(0x5678)),
            role: Role::HotelEmployee,
            hotel_id: Some(42),
            device: DeviceInfo {
                class: DeviceClass::Android,
                browser: Some("Chrome".into()),
            },
            device_name: Some("Pixel".into()),
            ip_address: Some("203.0.113.9".parse().unwrap()),
            user_agent: None,
            created_at: datetime!(2026-05-01 08:00:00.123456 UTC),
            last_activity: datetime!(2026-05-01 08:05 UTC),
            expires_at: datetime!(2026-05-01 16:00 UTC),
            status: SessionStatus::Active,
            version: 0x0102_0304_0506_0708,
        }
    }

    #[test]
    fn a_typical_session_is_small_and_round_trips() {
        let s = summary();
        let bytes = encode(&s);
        assert_eq!(bytes.len(), FIXED_LEN + 1 + 7 + 6 + 4 + 8);
        assert_eq!(decode(&bytes, s.user_id, s.id), Ok(s));
    }

    #[test]
    fn every_variant_round_trips() {
        let long_name = "é".repeat(200);
        for (i, role) in Role::ALL.into_iter().enumerate() {
            for reason in InvalidationReason::ALL {
                let mut s = summary();
                s.role = role;
                s.status = SessionStatus::Ended {
                    at: datetime!(2026-05-01 09:00:00.000001 UTC),
                    reason,
                };
                s.device.class = class_from(u8::try_from(i).unwrap() * 2).unwrap();
                s.device.browser = None;
                s.device_name = Some(long_name.clone());
                s.ip_address = Some("2001:db8::1".parse().unwrap());
                s.hotel_id = [None, Some(i64::MIN), Some(0), Some(i64::MAX)][i % 4];
                let bytes = encode(&s);
                assert_eq!(decode(&bytes, s.user_id, s.id), Ok(s.clone()));
                s.ip_address = None;
                s.device_name = Some(String::new());
                s.user_agent = Some("Mozilla/5.0 (X11; Linux x86_64) ".repeat(16));
                assert_eq!(decode(&encode(&s), s.user_id, s.id), Ok(s));
            }
        }
    }

    #[test]
    fn the_scripts_fields_sit_at_their_documented_offsets() {
        let s = summary();
        let bytes = encode(&s);
        assert_eq!(bytes[0], VERSION);
        let at = &bytes[LAST_ACTIVITY_OFFSET..LAST_ACTIVITY_OFFSET + 8];
        assert_eq!(at, micros(s.last_activity).to_be_bytes());
        let generation = &bytes[GENERATION_OFFSET..GENERATION_OFFSET + 8];
        assert_eq!(generation, s.version.to_be_bytes());
        for version in [0, 1, u64::MAX] {
            let s = SessionSummary {
                version,
                ..summary()
            };
            assert_eq!(decode(&encode(&s), s.user_id, s.id), Ok(s));
        }
    }

    #[test]
    fn a_tombstone_is_no_session() {
        let s = summary();
        assert!(is_tombstone(&[TOMBSTONE]));
        assert!(!is_tombstone(&encode(&s)));
        assert!(!is_tombstone(&[]));
        assert_eq!(
            decode(&[TOMBSTONE], s.user_id, s.id),
            Err(DecodeError::Version(TOMBSTONE))
        );
    }

    #[test]
    fn a_value_of_an_earlier_layout_is_unreadable() {
        let s = summary();
        for layout in [1, PREVIOUS_VERSION] {
            let mut old = encode(&s);
            old[0] = layout;
            assert_eq!(
                decode(&old, s.user_id, s.id),
                Err(DecodeError::Version(layout))
            );
        }
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        let s = summary();
        let bytes = encode(&s);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], s.user_id, s.id).is_err());
        }
        // Layout 2 (no User-Agent) is unreadable here, as is any other.
        let mut other = bytes.clone();
        other[0] = 2;
        assert_eq!(
            decode(&other, s.user_id, s.id),
            Err(DecodeError::Version(2))
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer, s.user_id, s.id),
            Err(DecodeError::Trailing(1))
        );
        let stranger = SessionId::from_uuid(Uuid::from_u128(1));
        assert_eq!(
            decode(&bytes, s.user_id, stranger),
            Err(DecodeError::WrongSession)
        );
    }
}
