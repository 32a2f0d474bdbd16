//! The wire protocol of the bundled node's client and admin APIs, shared with the
//! harness (which treats the node as a black box, as it treats etcd).
//!
//! # Framing
//! JSON Lines over TCP: one request object per line, one reply object per line.
//! Requests are pipelined: a client may send many before reading, every request has a
//! client-chosen `id` (u64) echoed in its reply, and replies may come OUT OF ORDER.
//! A line that is not a valid request gets a `bad-request` reply (with `id: null` when
//! no numeric `id` could be read) and the connection stays open.
//!
//! # Client API (`--client-listen`)
//! ```text
//! {"id":1,"op":"get","key":"k"}
//! {"id":2,"op":"put","key":"k","value":V}
//! {"id":3,"op":"cas","key":"k","from":V,"to":V}
//! {"id":4,"op":"append","key":"k","value":V}
//! {"id":5,"op":"txn","ops":[["r","k",null],["w","k",V],["append","k",V]]}
//! ```
//! `V` is any JSON value. Success: `{"id":1,"ok":true,"value":V}` where `value` is the
//! value read for get (null when absent), null for put and cas, the new list for append,
//! and the micro-op list with reads filled in for txn.
//!
//! Errors: `{"id":..,"ok":false,"error":E,"definite":B, ...}`. `definite: true` means the
//! operation certainly did not and never will take effect (Jepsen `fail`); `false` means
//! it may or may not have taken effect, now or later (Jepsen `info`).
//!
//! | `error` | definite | when | extra fields |
//! |---|---|---|---|
//! | `not-leader` | true | a follower or candidate got a write (or a read in read-index, lease or log mode); nothing was proposed | `leader`: the leader's CLIENT address, or null when unknown |
//! | `cas-mismatch` | true | the cas was applied and its `from` was not the current value | `value`: the current value |
//! | `type-mismatch` | true | an append (or txn append) to a key holding a non-list value | `message` |
//! | `bad-request` | true | the line is not a valid request | `message` |
//! | `unavailable` | true | the proposal can never commit: its log slot was taken by another term's entry, or a read lost its leadership check | `message` |
//! | `timeout` | false | no outcome within the node's request timeout (e.g. leadership lost while a write was in flight) | |
//! | `shutting-down` | false | the node stopped with the request in flight | |
//!
//! # Admin API (`--admin-listen`)
//! Same framing and reply shape:
//! - `{"id":1,"op":"status"}` → `value`: `{"id","name","role","term","leader","commit_index",
//!   "applied_index","last_index","snapshot_index","log_entries","read_mode","clock":{"offset_ms","rate"}}`
//!   (`role` is `leader`, `follower`, `candidate` or `pre-candidate`; `leader` is the node id or null).
//! - `{"id":2,"op":"digest"}` → `value`: `{"applied_index","digest":"<16 hex>","history":"<16 hex>","keys"}` (`history`: a hash chain over every applied entry); with `"at":N` also
//!   `"history_at":{"index":N,"history":"<16 hex>"}` (null when N is not among the last 100,000 applied indexes).
//! - `{"id":3,"op":"log-terms"}` → `value`: `{"snapshot_index","snapshot_term","entries":[[index,term],...]}`
//!   over ALL entries the node holds after its snapshot, committed or not.
//! - `{"id":4,"op":"clock","offset_ms":I,"rate":F}` → sets the node's clock skew (both
//!   optional; offset defaults to 0, rate to 1.0; offset replaces, not adds).
//! - `{"id":5,"op":"clock-reset"}` → no skew from now on (time continues, no jump back).

use crate::node::kv::Command;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One client request: an id plus a command (`op` and its fields, flattened).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub command: Command,
}

/// One admin request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminRequest {
    pub id: u64,
    #[serde(flatten)]
    pub op: AdminOp,
}

/// The operations of the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum AdminOp {
    Status,
    Digest {
        /// Also report the applied-history chain as it was at this index, if the node
        /// still remembers it (`history_at`, null otherwise).
        #[serde(default)]
        at: Option<u64>,
    },
    LogTerms,
    Clock {
        #[serde(default)]
        offset_ms: i64,
        #[serde(default = "default_rate")]
        rate: f64,
    },
    ClockReset,
}

fn default_rate() -> f64 {
    1.0
}

/// The kinds of error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    NotLeader,
    CasMismatch,
    TypeMismatch,
    BadRequest,
    Unavailable,
    Timeout,
    ShuttingDown,
}

impl ErrorKind {
    /// Whether an operation that got this error certainly never takes effect.
    pub fn is_definite(self) -> bool {
        !matches!(self, ErrorKind::Timeout | ErrorKind::ShuttingDown)
    }
}

/// One reply line, for both the client and the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The request's id; null when the request line had no readable id.
    pub id: Option<u64>,
    pub ok: bool,
    /// The result (ok replies, always present there, possibly null) or the current value
    /// (cas-mismatch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definite: Option<bool>,
    /// For not-leader: the leader's client address; serialized as null when unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<Option<String>>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Reply {
    pub fn ok(id: u64, value: Value) -> Reply {
        Reply {
            id: Some(id),
            ok: true,
            value: Some(value),
            error: None,
            definite: None,
            leader: None,
            message: None,
        }
    }

    pub fn error(id: Option<u64>, kind: ErrorKind, message: impl Into<String>) -> Reply {
        let message = message.into();
        Reply {
            id,
            ok: false,
            value: None,
            error: Some(kind),
            definite: Some(kind.is_definite()),
            leader: None,
            message: (!message.is_empty()).then_some(message),
        }
    }

    pub fn not_leader(id: u64, leader: Option<String>) -> Reply {
        Reply {
            leader: Some(leader),
            ..Reply::error(Some(id), ErrorKind::NotLeader, "")
        }
    }

    pub fn cas_mismatch(id: u64, current: Value) -> Reply {
        Reply {
            value: Some(current),
            ..Reply::error(Some(id), ErrorKind::CasMismatch, "")
        }
    }

    /// The reply as one line, without the newline.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(r#"{{"id":null,"ok":false,"error":"unavailable","definite":false,"message":"reply encoding failed: {e}"}}"#)
        })
    }
}

/// Parses one request line of type `T`. On failure returns the `bad-request` reply,
/// carrying the id when the line was a JSON object with a numeric `id`.
pub fn parse_line<T: serde::de::DeserializeOwned>(line: &str) -> Result<T, Reply> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| Reply::error(None, ErrorKind::BadRequest, format!("not JSON: {e}")))?;
    let id = value.get("id").and_then(Value::as_u64);
    if id.is_none() {
        return Err(Reply::error(
            None,
            ErrorKind::BadRequest,
            "missing or non-integer \"id\"",
        ));
    }
    serde_json::from_value(value)
        .map_err(|e| Reply::error(id, ErrorKind::BadRequest, format!("invalid request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::kv::{MicroFn, MicroOp};
    use serde_json::json;

    #[test]
    fn parses_every_request_shape() {
        let r: Request = parse_line(r#"{"id":1,"op":"get","key":"k"}"#).expect("get");
        assert_eq!(r.command, Command::Get { key: "k".into() });
        let r: Request =
            parse_line(r#"{"id":3,"op":"cas","key":"k","from":1,"to":[2]}"#).expect("cas");
        assert_eq!(
            r.command,
            Command::Cas {
                key: "k".into(),
                from: json!(1),
                to: json!([2])
            }
        );
        let r: Request = parse_line(
            r#"{"id":5,"op":"txn","ops":[["r","k",null],["w","k",2],["append","l",3]]}"#,
        )
        .expect("txn");
        assert_eq!(
            r.command,
            Command::Txn {
                ops: vec![
                    MicroOp(MicroFn::Read, "k".into(), Value::Null),
                    MicroOp(MicroFn::Write, "k".into(), json!(2)),
                    MicroOp(MicroFn::Append, "l".into(), json!(3)),
                ]
            }
        );
        let a: AdminRequest = parse_line(r#"{"id":4,"op":"clock","offset_ms":-5}"#).expect("clock");
        assert_eq!(
            a.op,
            AdminOp::Clock {
                offset_ms: -5,
                rate: 1.0
            }
        );
        let a: AdminRequest = parse_line(r#"{"id":4,"op":"log-terms"}"#).expect("log-terms");
        assert_eq!(a.op, AdminOp::LogTerms);
    }

    #[test]
    fn malformed_lines_become_bad_request_replies() {
        let err = parse_line::<Request>("{not json").expect_err("garbage");
        assert_eq!(
            (err.id, err.error, err.definite),
            (None, Some(ErrorKind::BadRequest), Some(true))
        );
        let err = parse_line::<Request>(r#"{"id":7,"op":"frobnicate"}"#).expect_err("unknown op");
        assert_eq!(err.id, Some(7));
        let err = parse_line::<Request>(r#"{"id":8,"op":"put","key":"k"}"#).expect_err("no value");
        assert_eq!(err.id, Some(8));
        let err = parse_line::<Request>(r#"{"id":-1,"op":"get","key":"k"}"#).expect_err("bad id");
        assert_eq!(err.id, None);
        let err = parse_line::<Request>(r#"[1,2]"#).expect_err("array");
        assert_eq!(err.error, Some(ErrorKind::BadRequest));
    }

    #[test]
    fn replies_serialize_as_documented() {
        assert_eq!(
            Reply::ok(1, Value::Null).to_line(),
            r#"{"id":1,"ok":true,"value":null}"#
        );
        assert_eq!(
            Reply::not_leader(2, None).to_line(),
            r#"{"id":2,"ok":false,"error":"not-leader","definite":true,"leader":null}"#
        );
        assert_eq!(
            Reply::cas_mismatch(3, json!(4)).to_line(),
            r#"{"id":3,"ok":false,"value":4,"error":"cas-mismatch","definite":true}"#
        );
        let timeout = Reply::error(Some(4), ErrorKind::Timeout, "");
        assert_eq!(
            timeout.to_line(),
            r#"{"id":4,"ok":false,"error":"timeout","definite":false}"#
        );
        let back: Reply =
            serde_json::from_str(&Reply::not_leader(2, Some("127.0.0.1:1".into())).to_line())
                .expect("round trip");
        assert_eq!(back.leader, Some(Some("127.0.0.1:1".into())));
    }
}
