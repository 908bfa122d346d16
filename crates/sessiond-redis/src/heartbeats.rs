//! [`Heartbeats`] in one Redis hash (SPEC §8): each instance's revocation-log position,
//! published and read back by one script per beat. A value is `"position newest at_ms"`
//! (`at_ms` by Redis's clock), or `"position newest left at_ms"` for an instance that has
//! stopped serving.

use std::time::Duration;

use async_trait::async_trait;
use sessiond_domain::StoreError;
use sessiond_domain::ports::{Heartbeat, Heartbeats, LogPosition, PublishedHeartbeat};
use uuid::Uuid;

use crate::RedisSessionCache;
use crate::scripts::HEARTBEAT;

/// The word that marks a final heartbeat.
const LEFT: &str = "left";

impl RedisSessionCache {
    /// Runs the heartbeat script: stores `own` (its `newest` followed by `mark`, if any)
    /// and returns every heartbeat younger than `keep_for`, with their ages.
    async fn publish(
        &self,
        own: &Heartbeat,
        mark: Option<&str>,
        keep_for: Duration,
    ) -> Result<Vec<PublishedHeartbeat>, StoreError> {
        let newest = own
            .newest
            .map_or_else(|| "-1".to_owned(), |n| n.0.to_string());
        let mut invocation = HEARTBEAT.call();
        invocation
            .key(self.keys().heartbeats())
            .arg(own.instance.to_string())
            .arg(own.position.0.to_string())
            .arg(match mark {
                Some(mark) => format!("{newest} {mark}"),
                None => newest,
            })
            .arg(u64::try_from(keep_for.as_millis()).unwrap_or(u64::MAX));
        let fields: Vec<String> = self
            .connections()
            .run(|mut conn| async move { invocation.invoke(&mut conn).await })
            .await?;
        let stored = fields
            .chunks_exact(2)
            .map(|pair| parse(&pair[0], &pair[1]))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| StoreError::Internal("a heartbeat in Redis does not parse".into()))?;
        // Ages by Redis's clock alone: the one just stored is the script's "now".
        let now = stored
            .iter()
            .find(|s| s.heartbeat.instance == own.instance)
            .map_or(0, |s| s.at_ms);
        Ok(stored
            .into_iter()
            .map(|s| PublishedHeartbeat {
                heartbeat: s.heartbeat,
                age: Duration::from_millis(now.saturating_sub(s.at_ms)),
                left: s.left,
            })
            .collect())
    }
}

#[async_trait]
impl Heartbeats for RedisSessionCache {
    async fn exchange(
        &self,
        own: &Heartbeat,
        keep_for: Duration,
    ) -> Result<Vec<PublishedHeartbeat>, StoreError> {
        self.publish(own, None, keep_for).await
    }

    async fn leave(&self, last: &Heartbeat, keep_for: Duration) -> Result<(), StoreError> {
        self.publish(last, Some(LEFT), keep_for).await.map(drop)
    }
}

/// A heartbeat as the script stores it.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    heartbeat: Heartbeat,
    at_ms: u64,
    left: bool,
}

/// `instance` → `"position newest [left] at_ms"`.
fn parse(instance: &str, value: &str) -> Option<Stored> {
    let parts: Vec<&str> = value.split(' ').collect();
    let (position, newest, left, at_ms) = match parts[..] {
        [position, newest, at_ms] => (position, newest, false, at_ms),
        [position, newest, LEFT, at_ms] => (position, newest, true, at_ms),
        _ => return None,
    };
    let newest: i64 = newest.parse().ok()?;
    Some(Stored {
        heartbeat: Heartbeat {
            instance: Uuid::parse_str(instance).ok()?,
            position: LogPosition(position.parse().ok()?),
            newest: u64::try_from(newest).ok().map(LogPosition),
        },
        at_ms: at_ms.parse().ok()?,
        left,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_heartbeat_parses_back() {
        let id = Uuid::from_u128(5);
        assert_eq!(
            parse(&id.to_string(), "120 -1 1700000000000"),
            Some(Stored {
                heartbeat: Heartbeat {
                    instance: id,
                    position: LogPosition(120),
                    newest: None
                },
                at_ms: 1_700_000_000_000,
                left: false,
            })
        );
        let last = parse(&id.to_string(), "120 118 left 1700000000000").unwrap();
        assert_eq!(last.heartbeat.newest, Some(LogPosition(118)));
        assert!(last.left);
        assert_eq!(parse("not-a-uuid", "1 1 1"), None);
        assert_eq!(parse(&id.to_string(), "1"), None);
        assert_eq!(parse(&id.to_string(), "1 1 gone 1"), None);
    }
}
