use crate::model::DeviceInfo;

/// Reads a User-Agent header.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait DeviceClassifier: Send + Sync {
    /// The device behind `user_agent`; [`DeviceInfo::unknown`] when nothing is recognised.
    /// Never fails: any string is a valid input.
    fn classify(&self, user_agent: &str) -> DeviceInfo;
}
