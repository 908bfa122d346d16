//! What a Redis Cluster says of itself (`CLUSTER INFO`), for readiness and metrics.

use crate::error::RedisCacheError;

/// A cluster's state as one of its nodes sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterHealth {
    /// `cluster_state:ok`: every slot is served by a reachable primary (as that node
    /// believes).
    pub ok: bool,
    /// Nodes known to the cluster, primaries and replicas, reachable or not.
    pub known_nodes: u64,
    /// Primaries serving at least one slot.
    pub primaries: u64,
    /// Slots served by a primary not flagged as failing (16384 when all are).
    pub slots_ok: u64,
}

impl ClusterHealth {
    /// Reads `CLUSTER INFO`'s `field:value` lines.
    ///
    /// # Errors
    /// [`RedisCacheError::ClusterInfo`] when a field this needs is missing or unreadable.
    pub(crate) fn parse(info: &str) -> Result<ClusterHealth, RedisCacheError> {
        let field = |name: &str| {
            info.lines()
                .filter_map(|line| line.trim().split_once(':'))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value)
                .ok_or_else(|| RedisCacheError::ClusterInfo(format!("no {name}")))
        };
        let number = |name: &str| {
            field(name)?
                .parse::<u64>()
                .map_err(|_| RedisCacheError::ClusterInfo(format!("{name} is not a number")))
        };
        Ok(ClusterHealth {
            ok: field("cluster_state")? == "ok",
            known_nodes: number("cluster_known_nodes")?,
            primaries: number("cluster_size")?,
            slots_ok: number("cluster_slots_ok")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_info_is_read_as_redis_7_writes_it() {
        let info = "cluster_enabled:1\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\n\
                    cluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n\
                    cluster_known_nodes:6\r\ncluster_size:3\r\ncluster_current_epoch:6\r\n";
        assert_eq!(
            ClusterHealth::parse(info).unwrap(),
            ClusterHealth {
                ok: true,
                known_nodes: 6,
                primaries: 3,
                slots_ok: 16384
            }
        );
        let failing = info
            .replace("cluster_state:ok", "cluster_state:fail")
            .replace("cluster_slots_ok:16384", "cluster_slots_ok:10923");
        let health = ClusterHealth::parse(&failing).unwrap();
        assert!(!health.ok);
        assert_eq!(health.slots_ok, 10923);
        assert!(ClusterHealth::parse("cluster_state:ok\r\n").is_err());
        assert!(ClusterHealth::parse(&info.replace(":6\r", ":six\r")).is_err());
    }
}
