//! User accounts, e-mail addresses and passwords.

use std::fmt;

use time::OffsetDateTime;

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

/// A syntactically plausible e-mail address, trimmed and lower-cased so that one mailbox is
/// one account.
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
        let email = raw.trim().to_lowercase();
        if email.is_empty() || email.len() > Self::MAX_LEN {
            return Err(invalid("must be between 1 and 254 characters"));
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("must not contain spaces"));
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
