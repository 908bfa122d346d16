use time::OffsetDateTime;

/// The current time. The only way the domain learns what time it is, so tests fix it.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> OffsetDateTime;
}
