//! User accounts, e-mail addresses and passwords.

use std::fmt;

use time::OffsetDateTime;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

use super::{Role, UserId};

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub email: Email,
    pub password_hash: PasswordHash,
    pub role: Role,
    pub hotel_id: Option<i64>,
    pub is_active: bool,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// Why an input was refused; the message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidInput {
    pub field: &'static str,
    pub message: &'static str,
}

/// A syntactically plausible e-mail address in its normal form, so that one mailbox is one
/// account: trimmed, Unicode NFKC (full-width letters, ligatures and composed accents read
/// as the plain ones), then lower-cased. Addresses with invisible characters (zero-width
/// spaces and joiners, soft hyphens, bidirectional controls: any default-ignorable code
/// point) are refused: they would look like another account's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    /// Longest address SMTP allows (RFC 5321 path limit).
    const MAX_LEN: usize = 254;

    /// Validates and normalises an address.
    ///
    /// # Errors
    /// [`InvalidInput`] for anything that cannot be an address.
    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let invalid = |message| InvalidInput {
            field: "email",
            message,
        };
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(invalid("must be between 1 and 254 characters"));
        }
        let email = Self::normalised(raw)?;
        if email.is_empty() {
            return Err(invalid("must be between 1 and 254 characters"));
        }
        let Some((local, domain)) = email.split_once('@') else {
            return Err(invalid("must contain @"));
        };
        if local.is_empty() || domain.contains('@') || !domain.contains('.') {
            return Err(invalid("is not an e-mail address"));
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(invalid("is not an e-mail address"));
        }
        Ok(Self(email))
    }

    /// `text` (trimmed) in the normal form of addresses, refused when no address could
    /// hold it: over 254 characters, invisible characters, spaces or control characters.
    /// What [`Self::parse`] checks of any address, and a search prefix of one.
    ///
    /// # Errors
    /// [`InvalidInput`] of the field `email`.
    pub(crate) fn normalised(text: &str) -> Result<String, InvalidInput> {
        let invalid = |message| InvalidInput {
            field: "email",
            message,
        };
        // Checked before normalising, which would make a bounded amount of work of any
        // length (NFKC expands a character into at most 18).
        if text.len() > Self::MAX_LEN * 4 {
            return Err(invalid("must be between 1 and 254 characters"));
        }
        if text.chars().any(is_invisible) {
            return Err(invalid(
                "must not contain invisible characters (zero-width spaces or joiners, soft \
                 hyphens, direction controls)",
            ));
        }
        let normal = normal_form(text);
        if normal.len() > Self::MAX_LEN {
            return Err(invalid("must be between 1 and 254 characters"));
        }
        if normal
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || is_invisible(c))
        {
            return Err(invalid("must not contain spaces or control characters"));
        }
        Ok(normal)
    }

    /// An address read back from storage, kept as stored. Storage holds what
    /// [`Self::parse`] returned when the address was saved, under the rules of the day: an
    /// address saved before the normal form (issue 15) that the migration could not rewrite
    /// (it collides with another account's, see the `email_normalisation_collisions` view)
    /// may be in another form or hold invisible characters. Refusing it on read would make
    /// its account unreadable, even to the administrator who has to sort it out.
    ///
    /// # Errors
    /// [`InvalidInput`] for text that was never an address (a corrupt row).
    pub fn from_stored(stored: &str) -> Result<Self, InvalidInput> {
        let plausible = !stored.is_empty()
            && stored.len() <= Self::MAX_LEN * 4
            && stored.contains('@')
            && !stored.chars().any(|c| c.is_whitespace() || c.is_control());
        if plausible {
            Ok(Self(stored.to_owned()))
        } else {
            Err(InvalidInput {
                field: "email",
                message: "is not an e-mail address",
            })
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// NFKC, lower case, NFKC again: lower-casing can undo the normal form (a character whose
/// lower case decomposes), and the second pass makes the result a fixed point, so that a
/// stored address parses to itself.
fn normal_form(text: &str) -> String {
    let lower = text.nfkc().collect::<String>().to_lowercase();
    if is_nfkc_quick(lower.chars()) == IsNormalized::Yes {
        lower
    } else {
        lower.nfkc().collect()
    }
}

/// A character that draws nothing: Unicode's `Default_Ignorable_Code_Point` (zero-width
/// space, joiners, soft hyphen, word joiner, byte-order mark, bidirectional marks,
/// overrides and isolates, variation selectors, fillers, tags).
pub fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// A plaintext password on its way to the hasher. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Shortest acceptable new password.
    pub const MIN_CHARS: usize = 8;
    /// Longest accepted password: bounds the hashing work an attacker can ask for.
    pub const MAX_BYTES: usize = 1024;

    /// A password as typed at sign-in: anything up to the size bound, since the policy may
    /// have changed since it was set.
    ///
    /// # Errors
    /// [`InvalidInput`] when it is empty or oversized.
    pub fn presented(raw: String) -> Result<Self, InvalidInput> {
        if raw.is_empty() || raw.len() > Self::MAX_BYTES {
            return Err(InvalidInput {
                field: "password",
                message: "must be between 1 and 1024 bytes",
            });
        }
        Ok(Self(raw))
    }

    /// A password being set: at least [`Self::MIN_CHARS`] characters.
    ///
    /// # Errors
    /// [`InvalidInput`] when it is too short or oversized.
    pub fn new_secret(raw: String, field: &'static str) -> Result<Self, InvalidInput> {
        if raw.chars().count() < Self::MIN_CHARS || raw.len() > Self::MAX_BYTES {
            return Err(InvalidInput {
                field,
                message: "must be at least 8 characters and at most 1024 bytes",
            });
        }
        Ok(Self(raw))
    }

    /// The plaintext, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A password hash in PHC string format (argon2id in production). Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Wraps a PHC string produced by a hasher or read from storage.
    pub const fn new(phc: String) -> Self {
        Self(phc)
    }

    /// The PHC string, for storage and verification.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised() {
        let email = Email::parse("  Alice@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "alice@example.com");
    }

    #[test]
    fn lookalike_spellings_are_one_address() {
        let plain = Email::parse("alice@example.com").unwrap();
        for lookalike in [
            // Full-width letters and at sign.
            "\u{FF41}\u{FF4C}\u{FF49}\u{FF43}\u{FF45}\u{FF20}example.com",
            "ＡＬＩＣＥ@ＥＸＡＭＰＬＥ.ＣＯＭ",
            // Mathematical and ligature forms.
            "\u{1D41A}lice@example.com",
        ] {
            assert_eq!(
                Email::parse(lookalike).as_ref(),
                Ok(&plain),
                "{lookalike:?}"
            );
        }
        // Composed and decomposed accents.
        let nfc = Email::parse("ren\u{E9}e@example.com").unwrap();
        let nfd = Email::parse("rene\u{301}e@example.com").unwrap();
        assert_eq!(nfc, nfd);
        assert_eq!(nfc.as_str(), "ren\u{E9}e@example.com");
        let upper_nfd = Email::parse("RENE\u{301}E@EXAMPLE.COM").unwrap();
        assert_eq!(upper_nfd, nfc);
        // A ligature in the domain.
        assert_eq!(
            Email::parse("bob@\u{FB01}rm.example").unwrap().as_str(),
            "bob@firm.example"
        );
    }

    #[test]
    fn invisible_characters_are_refused_with_a_clear_message() {
        for invisible in [
            '\u{200B}',
            '\u{200C}',
            '\u{200D}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{00AD}',
            '\u{202E}',
            '\u{2066}',
            '\u{200E}',
            '\u{E0041}',
        ] {
            for raw in [
                format!("al{invisible}ice@example.com"),
                format!("alice@exam{invisible}ple.com"),
                format!("{invisible}alice@example.com"),
            ] {
                let refused = Email::parse(&raw).unwrap_err();
                assert_eq!(refused.field, "email");
                assert!(refused.message.contains("invisible"), "{raw:?}: {refused}");
            }
        }
    }

    #[test]
    fn the_normal_form_is_a_fixed_point() {
        // Every character of the planes with letters, compatibility forms and invisible
        // ones, alone in the local part: parsing a stored address gives it back.
        for c in (0..0x3_0000)
            .chain(0xE_0000..0xE_1000)
            .filter_map(char::from_u32)
        {
            let Ok(email) = Email::parse(&format!("a{c}@example.com")) else {
                continue;
            };
            assert_eq!(
                Email::parse(email.as_str()).as_ref(),
                Ok(&email),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn addresses_stored_under_older_rules_read_back_as_stored() {
        for stored in ["al\u{200B}ice@example.com", "\u{FF41}lice@example.com"] {
            assert_eq!(Email::from_stored(stored).unwrap().as_str(), stored);
        }
        for corrupt in ["", "alice", "a b@example.com", "a\u{0}@example.com"] {
            assert!(Email::from_stored(corrupt).is_err(), "{corrupt:?}");
        }
    }

    #[test]
    fn implausible_emails_are_refused() {
        for bad in [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a b@example.com",
            "a@b@example.com",
            "alice@.example.com",
            "alice@example.com.",
            "alice\u{0}@example.com",
            "alice\u{3000}x@example.com",
            // Expands under NFKC beyond the bound.
            &format!("{}@example.com", "\u{FDFA}".repeat(20)),
            &format!("{}@example.com", "a".repeat(250)),
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn new_passwords_have_a_minimum_and_a_maximum() {
        assert!(Password::new_secret("short".into(), "password").is_err());
        assert!(Password::new_secret("x".repeat(1025), "password").is_err());
        assert!(Password::new_secret("long enough".into(), "password").is_ok());
        assert!(Password::presented(String::new()).is_err());
        assert!(Password::presented("short".into()).is_ok());
    }

    #[test]
    fn secrets_never_print() {
        let password = Password::presented("hunter22".into()).unwrap();
        assert!(!format!("{password:?}").contains("hunter22"));
        let hash = PasswordHash::new("$argon2id$secret".into());
        assert!(!format!("{hash:?}").contains("secret"));
    }
}
