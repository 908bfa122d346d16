//! The audit trail of session lifecycle events: the domain's [`SessionEvents`], logged once
//! per event and counted. No token, hash or password is ever part of what it logs.

use std::borrow::Cow;

use sessiond_domain::model::EndedBy;
use sessiond_domain::model::{InvalidationReason, Session, SessionId, UserId};
use sessiond_domain::ports::SessionEvents;

use crate::metrics::{SESSIONS_CREATED, SESSIONS_ENDED};

/// Session events as log lines and Prometheus counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct AuditLog;

impl SessionEvents for AuditLog {
    fn opened(&self, session: &Session) {
        tracing::info!(
            session.id = %session.id,
            user.id = %session.user_id,
            role = session.role.as_str(),
            device = session.device.class.as_str(),
            "session opened"
        );
        metrics::counter!(SESSIONS_CREATED, "role" => session.role.as_str()).increment(1);
    }

    fn ended(&self, user_id: UserId, ids: &[SessionId], reason: InvalidationReason, by: EndedBy) {
        if ids.is_empty() {
            return;
        }
        let ended_by = match by {
            EndedBy::Owner => Cow::Borrowed("user"),
            EndedBy::Administrator(admin) => Cow::Owned(format!("admin:{admin}")),
            EndedBy::System => Cow::Borrowed("system"),
        };
        for id in ids {
            tracing::info!(
                session.id = %id, user.id = %user_id, reason = reason.as_str(),
                ended_by = %ended_by, "session ended"
            );
        }
        metrics::counter!(SESSIONS_ENDED, "reason" => reason.as_str()).increment(ids.len() as u64);
    }
}
