//! Password hashing with argon2id (SPEC §3). Hashing is deliberately slow and takes
//! `memory_kib` of memory while it runs, so it runs on tokio's blocking pool (never on the
//! request workers) and behind a gate: at most `max_concurrent` hashes at once, at most
//! `max_queued` waiting for a turn, and any more refused at once with
//! [`HashError::Busy`], before any hashing memory is taken (SPEC §3 invariant 6). The
//! memory sign-ins can take is thus `max_concurrent × memory_kib`, however many arrive.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{self, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use async_trait::async_trait;
use sessiond_domain::model::{Password, PasswordHash};
use sessiond_domain::ports::{HashError, PasswordHasher};
use tokio::sync::Semaphore;

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

/// How many hashes may run, and wait, at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingBounds {
    /// Hashes computed at once (at least one).
    pub max_concurrent: usize,
    /// Hashes waiting for a turn; any more are refused.
    pub max_queued: usize,
}

impl HashingBounds {
    /// The default queue: a burst of sign-ins waits a little instead of failing.
    pub const DEFAULT_MAX_QUEUED: usize = 64;
}

impl Default for HashingBounds {
    /// One hash per core, [`Self::DEFAULT_MAX_QUEUED`] waiting.
    fn default() -> Self {
        Self {
            max_concurrent: std::thread::available_parallelism().map_or(1, usize::from),
            max_queued: Self::DEFAULT_MAX_QUEUED,
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
    gate: Arc<Gate>,
}

impl Argon2Hasher {
    /// A hasher with the default [`HashingBounds`].
    ///
    /// # Errors
    /// [`InvalidCost`] when the parameters are out of argon2's range.
    pub fn new(cost: Argon2Cost) -> Result<Self, InvalidCost> {
        Self::with_bounds(cost, HashingBounds::default())
    }

    /// # Errors
    /// [`InvalidCost`] when the parameters are out of argon2's range.
    pub fn with_bounds(cost: Argon2Cost, bounds: HashingBounds) -> Result<Self, InvalidCost> {
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
            gate: Arc::new(Gate::new(bounds)),
        })
    }

    /// Runs `work` on the blocking pool once the gate lets it, or refuses it at once.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        // Counted from here until the hash is done (or this call is dropped while waiting).
        let ticket = self.gate.admit().ok_or(HashError::Busy)?;
        let permit = Arc::clone(&self.gate.slots)
            .acquire_owned()
            .await
            .map_err(|_| HashError::Busy)?;
        // The permit and the ticket go with the work: a caller that gives up (a client that
        // disconnects) does not free the slot before the memory is.
        tokio::task::spawn_blocking(move || {
            let result = work();
            drop((permit, ticket));
            result
        })
        .await
        .map_err(|e| HashError::Failed(Box::new(Argon2Error::from(e))))
    }
}

/// Admission to hashing: `slots` hashes run at once; `admitted` counts the running and the
/// waiting ones, up to `capacity`.
#[derive(Debug)]
struct Gate {
    slots: Arc<Semaphore>,
    admitted: Arc<AtomicUsize>,
    capacity: usize,
}

/// One admitted hash; leaving frees its place.
#[derive(Debug)]
struct Ticket(Arc<AtomicUsize>);

impl Drop for Ticket {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Gate {
    fn new(bounds: HashingBounds) -> Self {
        let running = bounds.max_concurrent.max(1);
        Self {
            slots: Arc::new(Semaphore::new(running)),
            admitted: Arc::new(AtomicUsize::new(0)),
            capacity: running.saturating_add(bounds.max_queued),
        }
    }

    /// A place among the running and waiting hashes, if one is free.
    fn admit(&self) -> Option<Ticket> {
        self.admitted
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |admitted| {
                (admitted < self.capacity).then_some(admitted + 1)
            })
            .ok()
            .map(|_| Ticket(Arc::clone(&self.admitted)))
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
        let phc = self
            .run(move || {
                let salt = SaltString::generate(&mut OsRng);
                argon2
                    .hash_password(password.expose().as_bytes(), &salt)
                    .map(|hash| hash.to_string())
                    .map_err(Argon2Error::Hash)
            })
            .await?
            .map_err(|e| HashError::Failed(Box::new(e)))?;
        Ok(PasswordHash::new(phc))
    }

    async fn verify(&self, password: &Password, hash: &PasswordHash) -> Result<bool, HashError> {
        let argon2 = Arc::clone(&self.argon2);
        let password = password.clone();
        let phc = hash.as_str().to_owned();
        self.run(move || verify(&argon2, password.expose(), &phc))
            .await
    }

    async fn verify_nothing(&self, password: &Password) -> Result<(), HashError> {
        let argon2 = Arc::clone(&self.argon2);
        let decoy = Arc::clone(&self.decoy);
        let password = password.clone();
        // The answer is meaningless; only the time spent matters.
        self.run(move || verify(&argon2, password.expose(), &decoy))
            .await
            .map(|_| ())
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
    fn the_gate_admits_the_running_and_the_waiting_then_refuses() {
        let gate = Gate::new(HashingBounds {
            max_concurrent: 2,
            max_queued: 1,
        });
        let admitted: Vec<Ticket> = (0..3).map(|_| gate.admit().unwrap()).collect();
        assert!(gate.admit().is_none(), "a fourth hash was admitted");
        drop(admitted);
        assert!(gate.admit().is_some(), "leaving did not free the places");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_queue_hashes_are_refused_as_busy_not_failed() {
        // One hash at a time and none waiting: of many at once, the first runs and the
        // others are refused before they take any memory, unknown e-mails included.
        let hasher = Argon2Hasher::with_bounds(
            Argon2Cost {
                memory_kib: 8 * 1024,
                iterations: 2,
                parallelism: 1,
            },
            HashingBounds {
                max_concurrent: 1,
                max_queued: 0,
            },
        )
        .unwrap();
        let stored = hasher.hash(&password("right")).await.unwrap();
        let attempts = (0..20).map(|i| {
            let (hasher, stored) = (hasher.clone(), stored.clone());
            async move {
                if i % 2 == 0 {
                    hasher.verify(&password("right"), &stored).await.map(|_| ())
                } else {
                    hasher.verify_nothing(&password("right")).await
                }
            }
        });
        // join_all polls every attempt before any hash can finish.
        let results = futures::future::join_all(attempts).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(HashError::Busy)))
            .count();
        assert!(
            results
                .iter()
                .all(|r| r.is_ok() || matches!(r, Err(HashError::Busy))),
            "{results:?}"
        );
        assert!((1..20).contains(&busy), "{busy} of 20 refused");
        // The places are free again once the hashes are done.
        assert!(hasher.verify(&password("right"), &stored).await.unwrap());
        assert!(hasher.verify_nothing(&password("x")).await.is_ok());
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
