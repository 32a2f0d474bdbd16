//! The built-in etcd client: every workload's operations as requests to etcd's v3 JSON
//! gateway (`/v3/kv/range`, `/v3/kv/put`, `/v3/kv/txn`) over HTTP/1.1, with one
//! connection per logical process, no pool and no retries (so no `protoc` and no gRPC
//! stack at build time). Keys and values travel base64-encoded; every value is stored
//! as JSON text, so what a read returns is exactly what was written.
//!
//! How each workload maps onto etcd (the same keys as [`crate::BundledClient`]):
//! - `register` / `kv`: `read` → `range` (linearizable, or `serializable` with
//!   [`EtcdReads::Serializable`], etcd's known-stale local read); `write` → `put`;
//!   `cas [a, b]` → a `txn` comparing the key's `VALUE` with `a` (or its `CREATE`
//!   revision with 0 when `a` is `null`: the key is absent) whose success branch puts
//!   `b`. A failed compare is a definite `fail` (`cas-mismatch`).
//! - `mutex`: `acquire` → a `txn` that puts the owner's token if the lock key is absent;
//!   `release` → a `txn` that deletes the key if it holds the owner's token.
//! - `set`: `add v` → `put set/<v>`; `read` → `range` over the `set/` prefix.
//! - `list-append`: as Jepsen does for etcd. One `txn` of ranges reads every key the
//!   transaction touches at a single revision; the micro-operations are applied to that
//!   snapshot locally; then one `txn` guarded by each key's `mod_revision` (0 for an
//!   absent key) puts the lists that grew. A failed guard is a definite `fail`
//!   (`txn-conflict`); a read-only transaction is answered by the first `txn` alone.
//!
//! Every `ok` completion carries, as the extra field `revision`, the store revision of
//! the gateway's last answer for the operation (its `header.revision`): the revision a
//! read saw or a write created; for a list-append transaction, that of its commit (or of
//! its snapshot, when it only read).
//!
//! Outcomes: a refused connection, a request that never left this process, a request
//! the gateway rejected as malformed (HTTP 400: invalid argument, out of range) and a
//! failed compare are `fail`. A timeout, a connection that broke after the request was
//! sent, an answer that cannot be read, and etcd's own "request timed out" (HTTP 503,
//! code 14: what it answers after about 7 s without a quorum, while the write may
//! still commit) are `info` — except for read-only operations, which had no effect to
//! be uncertain about and are `fail` (see [`crate::client`]).

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use splitbrain_checker::Key;
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::client::{as_list, owner_token, uncertain, BoxFuture, Client, MUTEX_KEY};
use crate::client::{REGISTER_KEY, SET_KEY};
use crate::generator::WorkloadKind;
use crate::op::{Completion, Op};

/// How `read`s are served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EtcdReads {
    /// A read-index round through the leader (etcd's default): linearizable.
    Linearizable,
    /// From the member's local state (`"serializable": true`): possibly stale.
    Serializable,
}

/// Why a gateway call got no usable answer. [`EtcdError::is_definite`] says whether
/// the request certainly had no effect.
#[derive(Debug, thiserror::Error)]
pub enum EtcdError {
    /// No connection: nothing was sent.
    #[error("connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The deadline passed; `sent` tells whether the request had left.
    #[error("timeout")]
    Timeout { sent: bool },
    /// The connection broke while the request was in flight.
    #[error("connection broke: {0}")]
    Transport(String),
    /// etcd answered with an error status.
    #[error("etcd answered HTTP {status}: {message}")]
    Status {
        status: u16,
        /// The gRPC code of the error body (3 invalid argument, 11 out of range, 14
        /// unavailable, ...).
        code: Option<i64>,
        message: String,
    },
    /// The answer could not be understood.
    #[error("malformed reply: {0}")]
    Malformed(String),
}

impl EtcdError {
    /// True when the request certainly did not and never will take effect.
    pub fn is_definite(&self) -> bool {
        match self {
            EtcdError::Connect { .. } | EtcdError::Timeout { sent: false } => true,
            // The gateway rejects a bad request before it reaches the consensus layer.
            EtcdError::Status { status: 400, .. } => true,
            EtcdError::Status { code, .. } => matches!(code, Some(3) | Some(11)),
            EtcdError::Timeout { sent: true }
            | EtcdError::Transport(_)
            | EtcdError::Malformed(_) => false,
        }
    }

    /// A short code for the history's `error` field.
    fn code(&self) -> String {
        match self {
            EtcdError::Connect { .. } => format!("connection-refused: {self}"),
            EtcdError::Timeout { .. } => "timeout".to_string(),
            EtcdError::Transport(_) => format!("connection-closed: {self}"),
            EtcdError::Status { .. } => format!("etcd-error: {self}"),
            EtcdError::Malformed(_) => format!("malformed-reply: {self}"),
        }
    }
}

/// One HTTP/1.1 connection to one member's client port, opened on first use and
/// dropped after any failure (the next call opens a new one).
pub struct EtcdConnection {
    addr: String,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// The `header.revision` of the last successful answer, if it had one; cleared by
    /// every call, so it always belongs to the latest call.
    last_revision: Option<i64>,
}

impl EtcdConnection {
    /// A connection to the member whose client URL is `http://addr`.
    pub fn new(addr: impl Into<String>) -> EtcdConnection {
        EtcdConnection {
            addr: addr.into(),
            sender: None,
            last_revision: None,
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The store revision (`header.revision`) of the last call's answer: `None` when that
    /// call failed or its answer had no readable revision.
    pub fn last_revision(&self) -> Option<i64> {
        self.last_revision
    }

    /// A sender that is ready for a request, connecting if needed. Errors mean nothing
    /// was sent.
    async fn ready(
        &mut self,
        deadline: Instant,
    ) -> Result<&mut SendRequest<Full<Bytes>>, EtcdError> {
        // An idle connection the server closed shows up here, before anything is sent:
        // open a new one.
        let alive = match &mut self.sender {
            Some(sender) => timeout_at(deadline, sender.ready())
                .await
                .is_ok_and(|ready| ready.is_ok()),
            None => false,
        };
        if !alive {
            self.sender = None;
            self.sender = Some(self.connect(deadline).await?);
        }
        self.sender.as_mut().ok_or_else(|| EtcdError::Connect {
            addr: self.addr.clone(),
            reason: "no connection".into(),
        })
    }

    /// Opens a new HTTP/1.1 connection. Errors mean nothing was sent.
    async fn connect(&self, deadline: Instant) -> Result<SendRequest<Full<Bytes>>, EtcdError> {
        let connect_error = |reason: String| EtcdError::Connect {
            addr: self.addr.clone(),
            reason,
        };
        let stream = timeout_at(deadline, TcpStream::connect(&self.addr))
            .await
            .map_err(|_| EtcdError::Timeout { sent: false })?
            .map_err(|e| connect_error(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = timeout_at(
            deadline,
            hyper::client::conn::http1::handshake(TokioIo::new(stream)),
        )
        .await
        .map_err(|_| EtcdError::Timeout { sent: false })?
        .map_err(|e| connect_error(e.to_string()))?;
        // The connection task ends when the sender is dropped or the socket closes.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(sender)
    }

    /// POSTs `body` to `path` and returns the JSON answer of a 2xx status.
    pub async fn call(
        &mut self,
        path: &str,
        body: &Value,
        deadline: Instant,
    ) -> Result<Value, EtcdError> {
        let request = hyper::Request::post(path)
            .header(hyper::header::HOST, self.addr.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| EtcdError::Malformed(format!("building the request: {e}")))?;
        self.last_revision = None;
        let sender = self.ready(deadline).await?;
        let exchange = async {
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = response.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        };
        let (status, body) = match timeout_at(deadline, exchange).await {
            Err(_) => {
                self.sender = None;
                return Err(EtcdError::Timeout { sent: true });
            }
            Ok(Err(e)) => {
                self.sender = None;
                return Err(EtcdError::Transport(e.to_string()));
            }
            Ok(Ok(answer)) => answer,
        };
        let json: Value = serde_json::from_slice(&body).map_err(|_| {
            EtcdError::Malformed(format!(
                "HTTP {status} with a body that is not JSON: {:?}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        })?;
        if (200..300).contains(&status) {
            // Informational: an answer without a readable revision is still an answer.
            self.last_revision = json
                .get("header")
                .and_then(|header| int_field(header, "revision").ok())
                .filter(|&revision| revision > 0);
            return Ok(json);
        }
        let message = json
            .get("message")
            .or_else(|| json.get("error"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Err(EtcdError::Status {
            status,
            code: json.get("code").and_then(Value::as_i64),
            message,
        })
    }

    /// `put key value` (the value as given, base64-encoded for the wire).
    pub async fn put(
        &mut self,
        key: &str,
        value: &[u8],
        deadline: Instant,
    ) -> Result<Value, EtcdError> {
        let body = json!({"key": encode(key.as_bytes()), "value": encode(value)});
        self.call("/v3/kv/put", &body, deadline).await
    }

    /// The value of `key` (`None` when absent), read linearizably or not.
    pub async fn get(
        &mut self,
        key: &str,
        reads: EtcdReads,
        deadline: Instant,
    ) -> Result<Option<Vec<u8>>, EtcdError> {
        let mut body = json!({"key": encode(key.as_bytes())});
        if reads == EtcdReads::Serializable {
            body["serializable"] = Value::Bool(true);
        }
        let reply = self.call("/v3/kv/range", &body, deadline).await?;
        let kvs = reply.get("kvs").and_then(Value::as_array);
        match kvs.and_then(|kvs| kvs.first()) {
            None => Ok(None),
            Some(kv) => field_bytes(kv, "value").map(Some),
        }
    }
}

/// A client for one logical process, bound to one etcd member.
pub struct EtcdClient {
    kind: WorkloadKind,
    connection: EtcdConnection,
    timeout: Duration,
    reads: EtcdReads,
}

impl EtcdClient {
    /// A client for `kind` against the member whose client port is `addr`. No
    /// connection is opened until the first operation.
    pub fn new(
        kind: WorkloadKind,
        addr: impl Into<String>,
        timeout: Duration,
        reads: EtcdReads,
    ) -> EtcdClient {
        EtcdClient {
            kind,
            connection: EtcdConnection::new(addr),
            timeout,
            reads,
        }
    }

    async fn perform(&mut self, op: &Op) -> Completion {
        let deadline = Instant::now() + self.timeout;
        // The revision attached to an `ok` is always one of this operation's answers.
        self.connection.last_revision = None;
        let key = |default: &str| {
            op.key
                .as_ref()
                .map_or_else(|| default.to_string(), Key::to_string)
        };
        let outcome = match (self.kind, op.f.as_str()) {
            (WorkloadKind::Register | WorkloadKind::Kv, "read") => {
                self.read(&key(REGISTER_KEY), deadline).await
            }
            (WorkloadKind::Register | WorkloadKind::Kv, "write") => {
                let value = op.value.to_string();
                let put = self
                    .connection
                    .put(&key(REGISTER_KEY), value.as_bytes(), deadline)
                    .await;
                put.map(|_| Ok(op.value.clone()))
            }
            (WorkloadKind::Register | WorkloadKind::Kv, "cas") => {
                match op.value.as_array().map(Vec::as_slice) {
                    Some([from, to]) => {
                        let key = key(REGISTER_KEY);
                        let put = json!({"request_put": {"key": encode(key.as_bytes()), "value": encode(to.to_string().as_bytes())}});
                        self.guarded(&key, from, put, "cas-mismatch", op, deadline)
                            .await
                    }
                    _ => {
                        return Completion::fail(
                            op.value.clone(),
                            format!("bad-op: cas needs [expected, new], got {}", op.value),
                        )
                    }
                }
            }
            (WorkloadKind::Mutex, "acquire") | (WorkloadKind::Mutex, "release") => {
                let token = match owner_token(op) {
                    Ok(token) => token,
                    Err(why) => return Completion::fail(op.value.clone(), why),
                };
                let key = key(MUTEX_KEY);
                let (expected, then) = if op.f == "acquire" {
                    let put = json!({"request_put": {"key": encode(key.as_bytes()), "value": encode(token.to_string().as_bytes())}});
                    (Value::Null, put)
                } else {
                    (
                        token,
                        json!({"request_delete_range": {"key": encode(key.as_bytes())}}),
                    )
                };
                self.guarded(
                    &key,
                    &expected,
                    then,
                    "lock-not-free-or-not-ours",
                    op,
                    deadline,
                )
                .await
            }
            (WorkloadKind::Set, "add") => {
                let element = op.value.to_string();
                let key = format!("{}/{element}", key(SET_KEY));
                let put = self
                    .connection
                    .put(&key, element.as_bytes(), deadline)
                    .await;
                put.map(|_| Ok(op.value.clone()))
            }
            (WorkloadKind::Set, "read") => self.read_set(&key(SET_KEY), deadline).await,
            (WorkloadKind::ListAppend, "txn") => self.list_append(op, deadline).await,
            _ => {
                return Completion::fail(
                    op.value.clone(),
                    format!(
                        "unsupported-op: the etcd client cannot perform `{}` for {}",
                        op.f, self.kind
                    ),
                )
            }
        };
        match outcome {
            Ok(Ok(value)) => match self.connection.last_revision() {
                Some(revision) => Completion::ok(value).with_extra("revision", revision),
                None => Completion::ok(value),
            },
            Ok(Err(rejection)) => rejection,
            Err(e) if e.is_definite() => Completion::fail(op.value.clone(), e.code()),
            Err(e) => uncertain(op, e.code()),
        }
    }

    /// A read of one JSON value (`null` when absent).
    async fn read(
        &mut self,
        key: &str,
        deadline: Instant,
    ) -> Result<Result<Value, Completion>, EtcdError> {
        let bytes = self.connection.get(key, self.reads, deadline).await?;
        bytes.map_or(Ok(Value::Null), |b| decode_json(&b)).map(Ok)
    }

    /// A read of every element under `prefix/`.
    async fn read_set(
        &mut self,
        prefix: &str,
        deadline: Instant,
    ) -> Result<Result<Value, Completion>, EtcdError> {
        let from = format!("{prefix}/");
        // The range end is the prefix with its last byte incremented: `set/` .. `set0`.
        let end = format!("{prefix}0");
        let mut body = json!({"key": encode(from.as_bytes()), "range_end": encode(end.as_bytes())});
        if self.reads == EtcdReads::Serializable {
            body["serializable"] = Value::Bool(true);
        }
        let reply = self
            .connection
            .call("/v3/kv/range", &body, deadline)
            .await?;
        let mut elements = Vec::new();
        for kv in reply
            .get("kvs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            elements.push(decode_json(&field_bytes(kv, "value")?)?);
        }
        Ok(Ok(Value::Array(elements)))
    }

    /// A `txn` that runs `then` if `key` holds `expected` (`null`: the key is absent).
    /// `Ok(Err(fail))` when the compare failed.
    async fn guarded(
        &mut self,
        key: &str,
        expected: &Value,
        then: Value,
        mismatch: &str,
        op: &Op,
        deadline: Instant,
    ) -> Result<Result<Value, Completion>, EtcdError> {
        let k = encode(key.as_bytes());
        let compare = if expected.is_null() {
            json!({"key": k, "target": "CREATE", "result": "EQUAL", "create_revision": "0"})
        } else {
            json!({"key": k, "target": "VALUE", "result": "EQUAL", "value": encode(expected.to_string().as_bytes())})
        };
        let body = json!({"compare": [compare], "success": [then]});
        let reply = self.connection.call("/v3/kv/txn", &body, deadline).await?;
        // A txn whose compare failed has no `succeeded` at all (defaults are omitted).
        if reply.get("succeeded").and_then(Value::as_bool) == Some(true) {
            Ok(Ok(op.value.clone()))
        } else {
            Ok(Err(Completion::fail(op.value.clone(), mismatch)))
        }
    }

    /// A list-append transaction: read every key at one revision, apply the micro-ops
    /// to that snapshot, then commit the grown lists guarded by the keys' revisions.
    async fn list_append(
        &mut self,
        op: &Op,
        deadline: Instant,
    ) -> Result<Result<Value, Completion>, EtcdError> {
        let bad = |why: String| {
            Ok(Err(Completion::fail(
                op.value.clone(),
                format!("bad-op: {why}"),
            )))
        };
        let Some(micro_ops) = op.value.as_array() else {
            return bad(format!("txn needs a list of micro-ops, got {}", op.value));
        };
        let mut parsed = Vec::with_capacity(micro_ops.len());
        for micro in micro_ops {
            match micro.as_array().map(Vec::as_slice) {
                Some([f, key, value]) => match (f.as_str(), Key::from_json(key)) {
                    (Some(f), Some(key)) => {
                        parsed.push((f.to_string(), key.to_string(), value.clone()))
                    }
                    _ => return bad(format!("micro-op must be [f, key, value], got {micro}")),
                },
                _ => return bad(format!("micro-op must be [f, key, value], got {micro}")),
            }
        }
        let mut keys: Vec<String> = parsed.iter().map(|(_, k, _)| k.clone()).collect();
        keys.sort();
        keys.dedup();
        // 1. One snapshot of every key (a txn's ranges share one revision).
        let ranges: Vec<Value> = keys
            .iter()
            .map(|k| json!({"request_range": {"key": encode(k.as_bytes())}}))
            .collect();
        let snapshot = self
            .connection
            .call("/v3/kv/txn", &json!({"success": ranges}), deadline)
            .await;
        let snapshot = match snapshot {
            Ok(reply) => reply,
            // Nothing was written yet: whatever happened, this transaction had no effect.
            Err(e) => return Ok(Err(Completion::fail(op.value.clone(), e.code()))),
        };
        let responses = snapshot
            .get("responses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if responses.len() != keys.len() {
            return Ok(Err(Completion::fail(
                op.value.clone(),
                format!(
                    "malformed-reply: {} ranges answered with {} responses",
                    keys.len(),
                    responses.len()
                ),
            )));
        }
        let lists = match snapshot_lists(&keys, &responses) {
            Ok(lists) => lists,
            // Still nothing written: a snapshot we cannot read fails the transaction.
            Err(e) => return Ok(Err(Completion::fail(op.value.clone(), e.code()))),
        };
        let mut lists = lists;
        // 2. Apply the micro-ops to the snapshot.
        let mut completed = Vec::with_capacity(parsed.len());
        for ((f, key, value), micro) in parsed.iter().zip(micro_ops) {
            let Some((list, _, grew)) = lists.get_mut(key) else {
                return bad(format!("key {key} missing from the snapshot"));
            };
            let mut micro = micro.as_array().cloned().unwrap_or_default();
            match f.as_str() {
                "r" | "read" => {
                    if let Some(slot) = micro.get_mut(2) {
                        *slot = Value::Array(list.clone());
                    }
                }
                "append" => {
                    list.push(value.clone());
                    *grew = true;
                }
                other => return bad(format!("unknown micro-op `{other}`")),
            }
            completed.push(Value::Array(micro));
        }
        if lists.values().all(|(_, _, grew)| !grew) {
            return Ok(Ok(Value::Array(completed)));
        }
        // 3. Commit, guarded by every key's revision in the snapshot.
        let compare: Vec<Value> = lists
            .iter()
            .map(|(k, (_, revision, _))| {
                json!({"key": encode(k.as_bytes()), "target": "MOD", "result": "EQUAL", "mod_revision": revision.to_string()})
            })
            .collect();
        let puts: Vec<Value> = lists
            .iter()
            .filter(|(_, (_, _, grew))| *grew)
            .map(|(k, (list, _, _))| {
                json!({"request_put": {"key": encode(k.as_bytes()), "value": encode(Value::Array(list.clone()).to_string().as_bytes())}})
            })
            .collect();
        let reply = self
            .connection
            .call(
                "/v3/kv/txn",
                &json!({"compare": compare, "success": puts}),
                deadline,
            )
            .await?;
        if reply.get("succeeded").and_then(Value::as_bool) == Some(true) {
            Ok(Ok(Value::Array(completed)))
        } else {
            Ok(Err(Completion::fail(op.value.clone(), "txn-conflict")))
        }
    }
}

/// Per key of a list-append transaction: its list, its `mod_revision` in the snapshot
/// (0 when absent) and whether the transaction appended to it.
type Lists = std::collections::BTreeMap<String, (Vec<Value>, i64, bool)>;

/// Each key's list and revision from the snapshot txn's ranges.
fn snapshot_lists(keys: &[String], responses: &[Value]) -> Result<Lists, EtcdError> {
    let mut lists = std::collections::BTreeMap::new();
    for (key, response) in keys.iter().zip(responses) {
        let (list, revision) = match response.pointer("/response_range/kvs/0") {
            None => (Vec::new(), 0),
            Some(kv) => match as_list(decode_json(&field_bytes(kv, "value")?)?) {
                Ok(Value::Array(items)) => (items, int_field(kv, "mod_revision")?),
                _ => {
                    return Err(EtcdError::Malformed(format!(
                        "key {key} does not hold a list"
                    )))
                }
            },
        };
        lists.insert(key.clone(), (list, revision, false));
    }
    Ok(lists)
}

impl Client for EtcdClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(self.perform(op))
    }
}

fn encode(bytes: &[u8]) -> String {
    BASE64.encode(bytes)
}

/// The base64 field `name` of a key-value object, decoded (absent: empty).
fn field_bytes(kv: &Value, name: &str) -> Result<Vec<u8>, EtcdError> {
    match kv.get(name).and_then(Value::as_str) {
        None => Ok(Vec::new()),
        Some(text) => BASE64
            .decode(text)
            .map_err(|e| EtcdError::Malformed(format!("`{name}` is not base64: {e}"))),
    }
}

/// A 64-bit integer field, which the gateway sends as a string (absent: 0).
fn int_field(kv: &Value, name: &str) -> Result<i64, EtcdError> {
    match kv.get(name) {
        None => Ok(0),
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| EtcdError::Malformed(format!("`{name}` is not an integer: {s:?}"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| EtcdError::Malformed(format!("`{name}` is not an integer: {n}"))),
        Some(other) => Err(EtcdError::Malformed(format!(
            "`{name}` is not an integer: {other}"
        ))),
    }
}

/// A stored value: JSON text.
fn decode_json(bytes: &[u8]) -> Result<Value, EtcdError> {
    serde_json::from_slice(bytes).map_err(|_| {
        EtcdError::Malformed(format!(
            "stored value is not JSON: {:?}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(100)])
        ))
    })
}

mod maintenance;
pub use maintenance::{MemberHash, MemberStatus};

#[cfg(test)]
pub(crate) mod tests;
