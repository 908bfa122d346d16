//! [`Heartbeats`] in one Redis hash (SPEC §8): each instance's revocation-log position,
//! published and read back by one script per beat.

use std::time::Duration;

use async_trait::async_trait;
use sessiond_domain::StoreError;
use sessiond_domain::ports::{Heartbeat, Heartbeats, LogPosition};
use uuid::Uuid;

use crate::RedisSessionCache;
use crate::scripts::HEARTBEAT;

#[async_trait]
impl Heartbeats for RedisSessionCache {
    async fn exchange(
        &self,
        own: &Heartbeat,
        fresh_for: Duration,
    ) -> Result<Vec<Heartbeat>, StoreError> {
        let mut invocation = HEARTBEAT.call();
        invocation
            .key(self.keys().heartbeats())
            .arg(own.instance.to_string())
            .arg(own.position.0.to_string())
            .arg(
                own.newest
                    .map_or_else(|| "-1".to_owned(), |n| n.0.to_string()),
            )
            .arg(u64::try_from(fresh_for.as_millis()).unwrap_or(u64::MAX));
        let fields: Vec<String> = self
            .connections()
            .run(|mut conn| async move { invocation.invoke(&mut conn).await })
            .await?;
        fields
            .chunks_exact(2)
            .map(|pair| parse(&pair[0], &pair[1]))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| StoreError::Internal("a heartbeat in Redis does not parse".into()))
    }
}

/// `instance` → `"position newest at_ms"`, as the script stores it.
fn parse(instance: &str, value: &str) -> Option<Heartbeat> {
    let mut parts = value.split(' ');
    let position = parts.next()?.parse().ok()?;
    let newest: i64 = parts.next()?.parse().ok()?;
    Some(Heartbeat {
        instance: Uuid::parse_str(instance).ok()?,
        position: LogPosition(position),
        newest: u64::try_from(newest).ok().map(LogPosition),
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
            Some(Heartbeat {
                instance: id,
                position: LogPosition(120),
                newest: None
            })
        );
        assert_eq!(
            parse(&id.to_string(), "120 118 1700000000000")
                .unwrap()
                .newest,
            Some(LogPosition(118))
        );
        assert_eq!(parse("not-a-uuid", "1 1 1"), None);
        assert_eq!(parse(&id.to_string(), "1"), None);
    }
}
