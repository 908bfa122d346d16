//! The key layout of SPEC §3 (see the crate docs): one string per session and one index per
//! user, all of a user's keys under the same `{<user_id>}` hash tag.

use sessiond_domain::model::{SessionId, UserId};
use uuid::Uuid;

/// The names of the keys, under a prefix (empty in production).
pub(crate) struct Keys {
    pub(crate) prefix: String,
}

impl Keys {
    /// `<prefix>session:{<user_id>}:<session_id>`: the session's value or tombstone.
    pub(crate) fn session(&self, user_id: UserId, id: SessionId) -> String {
        let mut member = Uuid::encode_buffer();
        self.session_of_member(user_id, id.as_uuid().hyphenated().encode_lower(&mut member))
    }

    /// The session key of an index member (a session id as the index holds it).
    ///
    /// Built by hand rather than with `format!`: it is on every validated request.
    pub(crate) fn session_of_member(&self, user_id: UserId, member: &str) -> String {
        let mut user = Uuid::encode_buffer();
        let user = user_id.as_uuid().hyphenated().encode_lower(&mut user);
        let mut key = String::with_capacity(
            self.prefix.len() + "session:{}:".len() + user.len() + member.len(),
        );
        for part in [self.prefix.as_str(), "session:{", user, "}:", member] {
            key.push_str(part);
        }
        key
    }

    /// `<prefix>sessions:{<user_id>}`: the user's index of session ids.
    pub(crate) fn index(&self, user_id: UserId) -> String {
        format!("{}sessions:{{{user_id}}}", self.prefix)
    }

    /// `<prefix>heartbeats:{sessiond}`: the instances' heartbeats, one hash (a hash tag of
    /// its own: one key in one slot on a cluster).
    pub(crate) fn heartbeats(&self) -> String {
        format!("{}heartbeats:{{sessiond}}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_layout_of_spec_section_3() {
        let keys = Keys {
            prefix: "test:".into(),
        };
        let user = UserId::from_uuid(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef));
        let id = SessionId::from_uuid(Uuid::from_u128(u128::MAX - 1));
        assert_eq!(
            keys.session(user, id),
            "test:session:{01234567-89ab-cdef-0123-456789abcdef}:ffffffff-ffff-ffff-ffff-fffffffffffe"
        );
        assert_eq!(
            keys.session(user, id),
            format!("test:session:{{{user}}}:{id}")
        );
        assert_eq!(keys.index(user), format!("test:sessions:{{{user}}}"));
    }
}
