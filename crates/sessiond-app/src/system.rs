//! The real clock and the operating system's randomness: the two ports whose adapters are
//! too small for a crate of their own.

use rand::RngCore;
use rand::rngs::OsRng;
use sessiond_domain::ports::{Clock, RandomSource};
use time::OffsetDateTime;

/// The system clock, in UTC, at microsecond precision: what PostgreSQL stores, so a value
/// read back equals the value written.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that reads the system clock"
    )]
    fn now(&self) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
            .unwrap_or(now)
    }
}

/// The operating system's CSPRNG.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl RandomSource for OsRandom {
    fn bytes32(&self) -> [u8; 32] {
        let mut bytes = [0; 32];
        OsRng.fill_bytes(&mut bytes);
        bytes
    }
}
