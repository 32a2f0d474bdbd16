//! etcd's maintenance calls through the gateway, which a driver uses to watch the
//! cluster rather than to test it: which member leads (`/v3/maintenance/status`) and a
//! digest of a member's key-value store (`/v3/maintenance/hash`) for the convergence
//! check after healing.

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{EtcdConnection, EtcdError};

/// What `/v3/maintenance/status` says about one member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberStatus {
    /// This member's id.
    pub member_id: u64,
    /// The id of the member it believes leads (0: none).
    pub leader: u64,
    pub raft_term: u64,
    /// The store's revision this member has applied.
    pub revision: u64,
}

/// A member's store digest: equal hashes at equal revisions mean equal data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHash {
    pub revision: u64,
    pub hash: u64,
}

/// etcd sends 64-bit integers as JSON strings (and omits zeros).
fn integer(value: &Value, path: &[&str]) -> Result<u64, EtcdError> {
    let mut at = value;
    for key in path {
        match at.get(key) {
            Some(v) => at = v,
            None => return Ok(0),
        }
    }
    match at {
        Value::String(s) => s.parse().map_err(|_| {
            EtcdError::Malformed(format!("{} is not an integer: {s:?}", path.join(".")))
        }),
        Value::Number(n) => n.as_u64().ok_or_else(|| {
            EtcdError::Malformed(format!(
                "{} is not an unsigned integer: {n}",
                path.join(".")
            ))
        }),
        other => Err(EtcdError::Malformed(format!(
            "{} is not an integer: {other}",
            path.join(".")
        ))),
    }
}

impl EtcdConnection {
    /// The member's view of the cluster (`/v3/maintenance/status`).
    pub async fn status(&mut self, deadline: Instant) -> Result<MemberStatus, EtcdError> {
        let reply = self
            .call("/v3/maintenance/status", &json!({}), deadline)
            .await?;
        Ok(MemberStatus {
            member_id: integer(&reply, &["header", "member_id"])?,
            leader: integer(&reply, &["leader"])?,
            raft_term: integer(&reply, &["header", "raft_term"])?,
            revision: integer(&reply, &["header", "revision"])?,
        })
    }

    /// A hash of the member's whole backend (`/v3/maintenance/hash`), with the revision
    /// it answered at.
    pub async fn hash(&mut self, deadline: Instant) -> Result<MemberHash, EtcdError> {
        let reply = self
            .call("/v3/maintenance/hash", &json!({}), deadline)
            .await?;
        Ok(MemberHash {
            revision: integer(&reply, &["header", "revision"])?,
            hash: integer(&reply, &["hash"])?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_arrive_as_strings_or_numbers_and_zeros_are_omitted() {
        let reply = json!({"header": {"member_id": "9422952172328555325", "revision": "2"}, "hash": 241677556});
        assert_eq!(
            integer(&reply, &["header", "member_id"]).unwrap(),
            9422952172328555325
        );
        assert_eq!(integer(&reply, &["hash"]).unwrap(), 241677556);
        assert_eq!(integer(&reply, &["leader"]).unwrap(), 0);
        assert!(integer(&json!({"hash": "x"}), &["hash"]).is_err());
    }
}
