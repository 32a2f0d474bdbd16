//! The wire protocol of the bundled node's client and admin APIs: one set of types
//! shared by the node (which serializes replies from them), its client in
//! `splitbrain-workloads`, the harness and the bench (which decode them), so that no side
//! builds or picks apart JSON by hand and the two ends cannot drift apart.
//!
//! Plain serde types only: no runtime, no sockets. The node binary enables the `clap`
//! feature to take [`ReadMode`] on its command line.
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
//! `V` is any JSON value ([`Request`], [`Command`]). Success: `{"id":1,"ok":true,"value":V}`
//! where `value` is the value read for get (null when absent), null for put and cas, the
//! new list for append, and the micro-op list with reads filled in for txn.
//!
//! Errors: `{"id":..,"ok":false,"error":E,"definite":B, ...}` ([`Reply`], [`ErrorKind`]).
//! `definite: true` means the operation certainly did not and never will take effect
//! (Jepsen `fail`); `false` means it may or may not have taken effect, now or later
//! (Jepsen `info`).
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
//! Same framing and reply shape ([`AdminRequest`], [`AdminOp`]); each operation's `value`
//! has a type here:
//! - `{"id":1,"op":"status"}` → [`Status`]: `{"id","name","role","term","voted_for","leader",
//!   "commit_index","applied_index","last_index","snapshot_index","log_entries","read_mode",
//!   "clock":{"offset_ms","rate"}}` (`role` is `leader`, `follower`, `candidate` or
//!   `pre-candidate`; `leader` and `voted_for` are node ids or null).
//! - `{"id":2,"op":"digest"}` → [`Digest`]: `{"applied_index","digest":"<16 hex>","history":"<16 hex>","keys"}`
//!   (`history`: a hash chain over every applied entry); with `"at":N` also
//!   `"history_at":{"index":N,"history":"<16 hex>"}` (null when N is not among the last
//!   100,000 applied indexes).
//! - `{"id":3,"op":"log-terms"}` → [`LogTerms`]: `{"snapshot_index","snapshot_term","entries":[[index,term],...]}`
//!   over ALL entries the node holds after its snapshot, committed or not.
//! - `{"id":4,"op":"clock","offset_ms":I,"rate":F}` → [`ClockSkew`]: sets the node's clock
//!   skew (both optional; offset defaults to 0, rate to 1.0; offset replaces, not adds)
//!   and answers the skew now in force.
//! - `{"id":5,"op":"clock-reset"}` → [`ClockSkew`]: no skew from now on (time continues,
//!   no jump back).
//!
//! The node writes each `value` through a JSON object, so its keys come out sorted.

mod admin;
mod command;

pub use admin::*;
pub use command::{Command, MicroFn, MicroOp};

use admin::present;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One client request: an id plus a command (`op` and its fields, flattened).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    #[serde(flatten)]
    pub command: Command,
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

    /// The error's name on the wire (`not-leader`, `cas-mismatch`, ...).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotLeader => "not-leader",
            ErrorKind::CasMismatch => "cas-mismatch",
            ErrorKind::TypeMismatch => "type-mismatch",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ShuttingDown => "shutting-down",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One reply line, for both the client and the admin API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// The request's id; null when the request line had no readable id.
    pub id: Option<u64>,
    pub ok: bool,
    /// The result (ok replies, always present there, possibly null) or the current value
    /// (cas-mismatch). A `"value":null` on the wire is `Some(Value::Null)`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub value: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definite: Option<bool>,
    /// For not-leader: the leader's client address; serialized as null when unknown
    /// (`Some(None)`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present"
    )]
    pub leader: Option<Option<String>>,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Why a reply does not carry the value its request asked for.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    /// The node refused or failed the request.
    #[error("the node answered {}{}", .error.map_or("an error without a kind", ErrorKind::name), .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected {
        error: Option<ErrorKind>,
        message: Option<String>,
    },
    /// The node said ok, but its value is not what the operation answers with.
    #[error("the reply's value does not fit: {0}")]
    Malformed(#[from] DecodeError),
}

impl Reply {
    /// The value of an ok reply as `T` (an ok reply without a value is null), or why not.
    pub fn into_value<T: serde::de::DeserializeOwned>(self) -> Result<T, ReplyError> {
        if !self.ok {
            return Err(ReplyError::Rejected {
                error: self.error,
                message: self.message,
            });
        }
        Ok(decode_value(self.value.unwrap_or(Value::Null))?)
    }

    /// An ok reply carrying `value` serialized (a typed admin answer, say). Should the
    /// encoding fail, the reply says so: the outcome of a client command would be unknown.
    pub fn answer(id: u64, value: &impl Serialize) -> Reply {
        match serde_json::to_value(value) {
            Ok(value) => Reply::ok(id, value),
            Err(e) => Reply::error(
                Some(id),
                ErrorKind::Timeout,
                format!("reply encoding failed: {e}"),
            ),
        }
    }

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

    #[test]
    fn every_reply_line_decodes_back_to_the_same_reply() {
        for reply in [
            Reply::ok(1, Value::Null),
            Reply::ok(2, json!([1, 2])),
            Reply::not_leader(3, None),
            Reply::not_leader(4, Some("127.0.0.1:1".into())),
            Reply::cas_mismatch(5, Value::Null),
            Reply::error(None, ErrorKind::BadRequest, "not JSON"),
        ] {
            let back: Reply = serde_json::from_str(&reply.to_line()).expect("decodes");
            assert_eq!(back, reply);
        }
    }

    #[test]
    fn into_value_gives_the_typed_value_or_says_what_was_wrong() {
        let skew = json!({"offset_ms": 5, "rate": 2.0});
        let got: ClockSkew = Reply::ok(1, skew).into_value().expect("a skew");
        assert_eq!(
            got,
            ClockSkew {
                offset_ms: 5,
                rate: 2.0
            }
        );
        let refused = Reply::error(Some(2), ErrorKind::BadRequest, "rate must be positive");
        let err = refused.into_value::<ClockSkew>().expect_err("refused");
        assert_eq!(
            err.to_string(),
            "the node answered bad-request: rate must be positive"
        );
        let err = Reply::ok(3, json!({"offset_ms": 5}))
            .into_value::<ClockSkew>()
            .expect_err("no rate");
        assert!(err.to_string().contains("missing field `rate`"), "{err}");
    }
}
