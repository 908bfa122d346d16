//! Finding users: the administrators' search (issue 19). Users are listed newest first and
//! paged by position (keyset), not by offset, so that users created between two pages
//! neither repeat nor push others out of the walk.

use std::cmp::Reverse;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use time::OffsetDateTime;

use super::{Email, InvalidInput, Role, User, UserId};

/// The start of an e-mail address, in the normal form of [`Email`] (NFKC, lower case), so
/// that `ÉVE` finds `éve@example.com` as sign-in would. Any character an address may hold is
/// taken literally, `%` and `_` included.
///
/// A prefix is normalised on its own: in the rare address where NFKC joins a character
/// with the next one (a base letter and a combining accent typed apart), the prefix that
/// stops between the two is not a prefix of the stored form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailPrefix(String);

impl EmailPrefix {
    /// The prefix `raw` searches for; `None` for blank text (no filter).
    ///
    /// # Errors
    /// [`InvalidInput`] for text no address starts with: too long, invisible characters,
    /// spaces or control characters.
    pub fn parse(raw: &str) -> Result<Option<Self>, InvalidInput> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(None);
        }
        Email::normalised(raw).map(|prefix| Some(Self(prefix)))
    }

    /// The normalised prefix.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `email` starts with this prefix.
    pub fn matches(&self, email: &Email) -> bool {
        email.as_str().starts_with(&self.0)
    }
}

/// Which users a search lists; `None` matches everyone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub email_prefix: Option<EmailPrefix>,
    pub role: Option<Role>,
    pub is_active: Option<bool>,
}

impl UserFilter {
    /// Whether `user` is one of the users this filter lists.
    pub fn matches(&self, user: &User) -> bool {
        self.email_prefix
            .as_ref()
            .is_none_or(|prefix| prefix.matches(&user.email))
            && self.role.is_none_or(|role| role == user.role)
            && self.is_active.is_none_or(|active| active == user.is_active)
    }
}

/// A place in the search's order: newest first (`created_at` descending), ties broken by
/// id, descending. A page ends at the position of its last user and the next starts
/// strictly after it. Clients get it as an opaque token ([`Self::to_token`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserPosition {
    pub created_at: OffsetDateTime,
    pub id: UserId,
}

impl UserPosition {
    /// Version byte, then the instant in Unix nanoseconds (16 bytes), then the id.
    const TOKEN_VERSION: u8 = 1;
    const TOKEN_BYTES: usize = 1 + 16 + 16;
    /// The base64url length of a token: anything longer is refused before decoding.
    const TOKEN_CHARS: usize = Self::TOKEN_BYTES.div_ceil(3) * 4;

    /// The position of `user`.
    pub fn of(user: &User) -> Self {
        Self {
            created_at: user.created_at,
            id: user.id,
        }
    }

    /// Sorting `users` by this key puts them in the search's order.
    pub fn sort_key(user: &User) -> (Reverse<OffsetDateTime>, Reverse<UserId>) {
        (Reverse(user.created_at), Reverse(user.id))
    }

    /// Whether `user` comes after this position in the search's order.
    pub fn precedes(&self, user: &User) -> bool {
        (user.created_at, user.id) < (self.created_at, self.id)
    }

    /// The opaque page token of this position (base64url). Not signed: a forged token can
    /// only move the caller elsewhere in a list they may read anyway.
    pub fn to_token(&self) -> String {
        let mut bytes = Vec::with_capacity(Self::TOKEN_BYTES);
        bytes.push(Self::TOKEN_VERSION);
        bytes.extend_from_slice(&self.created_at.unix_timestamp_nanos().to_be_bytes());
        bytes.extend_from_slice(self.id.as_uuid().as_bytes());
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position a page token names.
    ///
    /// # Errors
    /// [`InvalidInput`] for anything [`Self::to_token`] did not produce.
    pub fn from_token(token: &str) -> Result<Self, InvalidInput> {
        let invalid = InvalidInput {
            field: "page_token",
            message: "is not a page token of this search",
        };
        if token.len() > Self::TOKEN_CHARS {
            return Err(invalid);
        }
        let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid.clone())?;
        let [version, rest @ ..] = bytes.as_slice() else {
            return Err(invalid);
        };
        if *version != Self::TOKEN_VERSION || rest.len() != 32 {
            return Err(invalid);
        }
        let (nanos, id) = rest.split_at(16);
        let nanos = <[u8; 16]>::try_from(nanos).map_err(|_| invalid.clone())?;
        let id = uuid::Uuid::from_slice(id).map_err(|_| invalid.clone())?;
        let created_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from_be_bytes(nanos))
            .map_err(|_| invalid)?;
        Ok(Self {
            created_at,
            id: UserId::from_uuid(id),
        })
    }
}

/// How many users one page shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageSize(u32);

impl PageSize {
    pub const DEFAULT: Self = Self(20);
    /// The largest page: bounds the work of one request.
    pub const MAX: u32 = 100;

    /// # Errors
    /// [`InvalidInput`] outside `1..=100`.
    pub fn new(size: u32) -> Result<Self, InvalidInput> {
        if (1..=Self::MAX).contains(&size) {
            Ok(Self(size))
        } else {
            Err(InvalidInput {
                field: "page_size",
                message: "must be between 1 and 100",
            })
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }
}

impl Default for PageSize {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One request of the search: a filter, a page size and where the page starts (`None`:
/// at the newest user).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserQuery {
    pub filter: UserFilter,
    pub page_size: PageSize,
    pub after: Option<UserPosition>,
}

/// A page of the search, and where the next one starts (`None` on the last page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPage {
    pub users: Vec<User>,
    pub next: Option<UserPosition>,
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn prefixes_are_normalised_like_addresses() {
        let prefix = EmailPrefix::parse("  ÉVE").unwrap().unwrap();
        assert_eq!(prefix.as_str(), "éve");
        // Decomposed accent, full-width letters.
        let nfd = EmailPrefix::parse("E\u{301}ve").unwrap().unwrap();
        assert_eq!(nfd, prefix);
        let wide = EmailPrefix::parse("ＥＶＥ").unwrap().unwrap();
        assert_eq!(wide.as_str(), "eve");
        assert!(prefix.matches(&Email::parse("Éve.Martin@example.com").unwrap()));
        assert!(!prefix.matches(&Email::parse("eve@example.com").unwrap()));
        // LIKE's metacharacters are plain characters of a prefix.
        assert_eq!(
            EmailPrefix::parse("a%_\\").unwrap().unwrap().as_str(),
            "a%_\\"
        );
    }

    #[test]
    fn a_blank_prefix_is_no_filter_and_odd_ones_are_refused() {
        assert_eq!(EmailPrefix::parse("  ").unwrap(), None);
        for bad in ["a b", "a\u{200B}", "a\u{0}", &"a".repeat(255)] {
            assert!(EmailPrefix::parse(bad).is_err(), "{bad:?}");
        }
    }

    fn user(created_at: OffsetDateTime, byte: u8, role: Role, active: bool) -> User {
        User {
            id: UserId::from_random_bytes([byte; 16]),
            email: Email::parse(&format!("u{byte}@example.com")).unwrap(),
            password_hash: crate::model::PasswordHash::new("$argon2id$x".into()),
            role,
            hotel_id: None,
            is_active: active,
            created_at,
            updated_at: created_at,
        }
    }

    #[test]
    fn filters_match_on_every_given_field() {
        let t = datetime!(2026-01-01 00:00 UTC);
        let guest = user(t, 1, Role::Guest, true);
        let any = UserFilter::default();
        assert!(any.matches(&guest));
        let filter = UserFilter {
            email_prefix: EmailPrefix::parse("U1").unwrap(),
            role: Some(Role::Guest),
            is_active: Some(true),
        };
        assert!(filter.matches(&guest));
        assert!(!filter.matches(&user(t, 1, Role::VendorAdmin, true)));
        assert!(!filter.matches(&user(t, 1, Role::Guest, false)));
        assert!(!filter.matches(&user(t, 2, Role::Guest, true)));
    }

    #[test]
    fn the_order_is_newest_first_then_by_id_and_positions_split_it() {
        let t = datetime!(2026-01-01 00:00 UTC);
        let mut users = [
            user(t, 1, Role::Guest, true),
            user(t + time::Duration::SECOND, 2, Role::Guest, true),
            user(t, 3, Role::Guest, true),
        ];
        users.sort_by_key(UserPosition::sort_key);
        let order: Vec<u8> = users.iter().map(|u| u.id.as_uuid().as_bytes()[0]).collect();
        assert_eq!(order, [2, 3, 1]);
        let at = UserPosition::of(&users[1]);
        let after: Vec<bool> = users.iter().map(|u| at.precedes(u)).collect();
        assert_eq!(after, [false, false, true]);
    }

    #[test]
    fn tokens_round_trip_and_garbage_is_refused() {
        let position = UserPosition {
            created_at: datetime!(2026-12-22 10:11:12.123456789 UTC),
            id: UserId::from_random_bytes([7; 16]),
        };
        let token = position.to_token();
        assert_eq!(UserPosition::from_token(&token), Ok(position));
        let mut wrong_version = URL_SAFE_NO_PAD.decode(&token).unwrap();
        wrong_version[0] = 2;
        for bad in [
            String::new(),
            "not a token".to_owned(),
            "AAAA".to_owned(),
            format!("{token}A"),
            token[..token.len() - 1].to_owned(),
            URL_SAFE_NO_PAD.encode(wrong_version),
            // A time no `OffsetDateTime` holds.
            URL_SAFE_NO_PAD.encode([[1].as_slice(), &[0x7f; 16], &[0; 16]].concat()),
        ] {
            let refused = UserPosition::from_token(&bad).unwrap_err();
            assert_eq!(refused.field, "page_token", "{bad:?}");
        }
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PageSize::default().get(), 20);
        assert!(PageSize::new(0).is_err());
        assert!(PageSize::new(101).is_err());
        assert_eq!(PageSize::new(100).unwrap().get(), 100);
    }
}
