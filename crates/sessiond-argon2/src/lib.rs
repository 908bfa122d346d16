//! Password hashing with argon2id (SPEC §3). Hashing is deliberately slow, so it runs on
//! tokio's blocking pool and never stalls the request workers.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use async_trait::async_trait;
use sessiond_domain::model::{Password, PasswordHash};
use sessiond_domain::ports::{HashError, PasswordHasher};

/// The cost of one hash. The defaults are OWASP's argon2id recommendation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Cost {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Cost {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// An invalid cost setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid argon2 cost: {0}")]
pub struct InvalidCost(argon2::Error);

/// The `PasswordHasher` port on argon2id.
#[derive(Debug, Clone)]
pub struct Argon2Hasher {
    argon2: Arc<Argon2<'static>>,
    /// Verified against for unknown e-mails, so they cost what a real check costs.
    decoy: Arc<String>,
}

impl Argon2Hasher {
    /// # Errors
    /// [`InvalidCost`] when the parameters are out of argon2's range.
    pub fn new(cost: Argon2Cost) -> Result<Self, InvalidCost> {
        let params = Params::new(cost.memory_kib, cost.iterations, cost.parallelism, None)
            .map_err(InvalidCost)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let salt = SaltString::generate(&mut OsRng);
        let decoy = argon2
            .hash_password(b"decoy password, never a real one", &salt)
            .map_err(|_| InvalidCost(argon2::Error::AlgorithmInvalid))?
            .to_string();
        Ok(Self {
            argon2: Arc::new(argon2),
            decoy: Arc::new(decoy),
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum Argon2Error {
    #[error("argon2 failed: {0}")]
    Hash(password_hash::Error),
    #[error("the blocking hashing task failed")]
    Task(#[from] tokio::task::JoinError),
}

fn verify(argon2: &Argon2<'_>, password: &str, phc: &str) -> bool {
    // A hash we cannot parse matches nothing.
    password_hash::PasswordHash::new(phc)
        .is_ok_and(|parsed| argon2.verify_password(password.as_bytes(), &parsed).is_ok())
}

#[async_trait]
impl PasswordHasher for Argon2Hasher {
    async fn hash(&self, password: &Password) -> Result<PasswordHash, HashError> {
        let argon2 = Arc::clone(&self.argon2);
        let password = password.clone();
        let phc = tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(Argon2Error::Hash)
        })
        .await
        .map_err(|e| HashError(Box::new(Argon2Error::from(e))))?
        .map_err(|e| HashError(Box::new(e)))?;
        Ok(PasswordHash::new(phc))
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, HashError> {
        let argon2 = Arc::clone(&self.argon2);
        let password = password.clone();
        let phc = hash.as_str().to_owned();
        tokio::task::spawn_blocking(move || verify(&argon2, password.expose(), &phc))
            .await
            .map_err(|e| HashError(Box::new(Argon2Error::from(e))))
    }

    async fn verify_nothing(&self, password: &Password) {
        let argon2 = Arc::clone(&self.argon2);
        let decoy = Arc::clone(&self.decoy);
        let password = password.clone();
        // The answer is meaningless; only the time spent matters.
        let _ =
            tokio::task::spawn_blocking(move || verify(&argon2, password.expose(), &decoy)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Argon2Hasher {
        Argon2Hasher::new(Argon2Cost {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        })
        .unwrap()
    }

    fn password(raw: &str) -> Password {
        Password::presented(raw.into()).unwrap()
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = cheap();
        let hash = hasher.hash(&password("correct horse")).await.unwrap();
        assert!(hash.as_str().starts_with("$argon2id$v=19$"));
        assert!(!hash.as_str().contains("correct horse"));
        assert!(
            hasher
                .verify(&password("correct horse"), &hash)
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(&password("correct horsE"), &hash)
                .await
                .unwrap()
        );
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let hasher = cheap();
        let a = hasher.hash(&password("same")).await.unwrap();
        let b = hasher.hash(&password("same")).await.unwrap();
        assert_ne!(a, b);
    }

    #[tokio::test]
    async fn an_unreadable_hash_matches_nothing() {
        let hasher = cheap();
        let garbage = PasswordHash::new("not a phc string".into());
        assert!(!hasher.verify(&password("x"), &garbage).await.unwrap());
    }

    #[test]
    fn out_of_range_costs_are_refused() {
        let cost = Argon2Cost {
            memory_kib: 1,
            iterations: 0,
            parallelism: 1,
        };
        assert!(Argon2Hasher::new(cost).is_err());
    }
}
