/// Unpredictable bytes for ids and refresh-token secrets.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait RandomSource: Send + Sync {
    /// 32 bytes from a cryptographically secure generator.
    fn bytes32(&self) -> [u8; 32];
}
