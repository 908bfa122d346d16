use crate::model::{EndedBy, InvalidationReason, Session, SessionId, UserId};

/// Where session lifecycle events are announced: the audit log and the metrics hang off
/// it. Every use case that opens or ends a session, and the cleanup job, calls it once per
/// event that happened (never for an end that found the session already ended). It must
/// not fail or block: it is told after the fact.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
pub trait SessionEvents: Send + Sync {
    /// A session was opened.
    fn opened(&self, session: &Session);

    /// These sessions of `user_id` ended for `reason`, by `by`.
    fn ended(&self, user_id: UserId, ids: &[SessionId], reason: InvalidationReason, by: EndedBy);
}
