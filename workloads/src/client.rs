//! Clients: how an [`Op`] becomes a request to a system under test, and how the outcome
//! is classified into a [`Completion`].
//!
//! The classification is the part a consistency tester must get right: `fail` claims the
//! operation certainly never took effect, so it is only used for definite rejections
//! (the server said so, or the request never left this process). A timeout, a dropped
//! connection, a reply that cannot be understood — anything uncertain — is `info`.
//! One refinement, as Jepsen's clients do: an uncertain *read-only* operation is
//! reported as `fail`, because a read has no effect to be uncertain about; this spares
//! the driver a new process number for every timed-out read.
//!
//! [`BundledClient`] speaks the bundled Raft KV's JSON-lines protocol to one node with the
//! protocol's own types (the `splitbrain-node-protocol` crate, shared with the node, so
//! the two ends cannot drift apart), and otherwise treats the node as a black box: a
//! reply outside the protocol (an unknown error code, say) is not understood, so the
//! operation's outcome is unknown. The protocol, as this client relies on it:
//!
//! ```text
//! → {"id":1,"op":"get","key":"k"}          ← {"id":1,"ok":true,"value":V}   (null when absent)
//! → {"id":2,"op":"put","key":"k","value":V}
//! → {"id":3,"op":"cas","key":"k","from":V,"to":V}     (absent compares equal to null)
//! → {"id":4,"op":"append","key":"k","value":V}       (absent: a new one-element list)
//! → {"id":5,"op":"txn","ops":[["r","k",null],["append","k",V]]}
//!                                           ← value: the micro-ops with reads filled in
//! ← {"id":N,"ok":false,"error":"cas-mismatch"|"not-leader"|...,"definite":true|false,
//!    "leader":ADDR|null,"message":..}
//! ```
//!
//! How each workload maps onto it:
//! - `register` / `kv`: `read` → `get`, `write` → `put`, `cas [a, b]` → `cas` from `a`
//!   to `b`. The single register (key `None`) lives at server key `register`; `kv` keys
//!   are used as they are. An absent key reads as `null`.
//! - `mutex`: the lock is server key `mutex`; free is absent/`null`, held is the owner's
//!   token (the op's value, e.g. `"t3"`). `acquire` → `cas` from `null` to the token;
//!   `release` → `cas` from the token to `null`. A `cas-mismatch` is a definite `fail`
//!   (the lock was held, or not held by this owner). Every successful server operation
//!   is thus legal in the mutex model, and a release can never free another thread's
//!   lock.
//! - `set`: `add v` → `append v` to server key `set`; `read` → `get set`, normalised to a
//!   list (absent → `[]`).
//! - `list-append`: `txn` → `txn`, each micro-op's key rendered as a string (integer key
//!   `3` → server key `"3"`); the completion keeps the history's keys and fills each
//!   read with the list read (absent → `[]`).
//! - `rw-register`: the same, with `w` micro-ops (the node's register write); a read is
//!   filled with the value read (absent → `null`, the initial state).
//!
//! `not-leader` is a definite `fail` with error `not-leader`: by default a worker is
//! bound to its node and does not retry elsewhere (Jepsen style); the driver moves on.
//! [`BundledClient::with_redirects`] lets an operation follow the leader hint instead
//! (safe: a `not-leader` reply means nothing was proposed).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;
use splitbrain_checker::Key;
use splitbrain_node_protocol::{Command, ErrorKind, MicroFn, MicroOp, Reply, Request};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

use crate::generator::WorkloadKind;
use crate::op::{Completion, Op};

/// A boxed, `Send` future, so that [`Client`] stays object-safe (`Box<dyn Client>`) and
/// its futures can run on tokio's multi-threaded runtime.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Performs operations against one node of a system under test.
///
/// A client has at most one operation in flight (a logical process never has two), is
/// bound to one node for its whole life, and never panics or errors: every outcome,
/// including its own confusion, is a [`Completion`]. Each call is bounded by the
/// per-operation timeout the client was constructed with.
pub trait Client: Send {
    /// Performs `op` and classifies its outcome (use as `client.invoke(&op).await`).
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion>;
}

/// A driver picks the client for the database at run time (`Box<dyn Client>`).
impl<C: Client + ?Sized> Client for Box<C> {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        (**self).invoke(op)
    }
}

/// Why a request got no reply. [`RequestError::was_sent`] says whether the node may have
/// received it, which decides between `fail` and `info`.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connect to {addr}: timeout")]
    ConnectTimeout { addr: String },
    #[error("request encoding: {0}")]
    Encode(serde_json::Error),
    #[error("send: {0}")]
    Send(std::io::Error),
    #[error("receive: {0}")]
    Receive(std::io::Error),
    #[error("connection-closed")]
    Closed,
    #[error("timeout")]
    Timeout,
    #[error("malformed reply: {0}")]
    Malformed(String),
}

impl RequestError {
    /// False only when the request certainly never reached the node.
    pub fn was_sent(&self) -> bool {
        !matches!(
            self,
            RequestError::Connect { .. }
                | RequestError::ConnectTimeout { .. }
                | RequestError::Encode(_)
        )
    }
}

/// One JSON-lines TCP connection to a node, opened lazily and reopened after any error.
///
/// It is dropped after a timeout or a malformed reply as well: a late reply to an
/// abandoned request must never be mistaken for the answer to the next one (replies
/// carrying another request's id are skipped too, for the same reason).
#[derive(Debug)]
pub struct Connection {
    /// The node's client address, `host:port`.
    addr: String,
    /// The open connection, if any; `None` means "connect on the next request".
    stream: Option<BufReader<TcpStream>>,
    /// The id of the next request; ids are never reused on a client, even across
    /// reconnections, so a stray reply cannot match.
    next_id: u64,
    /// The reply line being read, kept to reuse its allocation.
    line: String,
}

impl Connection {
    pub fn new(addr: impl Into<String>) -> Connection {
        Connection {
            addr: addr.into(),
            stream: None,
            next_id: 1,
            line: String::new(),
        }
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// Closes the connection; the next request reconnects.
    pub fn disconnect(&mut self) {
        self.stream = None;
    }

    /// Sends `command` and waits for its reply until `deadline`. Any error leaves the
    /// connection closed. A reply's `id` is null only when the node could not read one
    /// from our line: then it can only answer the request in flight.
    pub async fn request(
        &mut self,
        command: &Command,
        deadline: Instant,
    ) -> Result<Reply, RequestError> {
        let result = self.exchange(command, deadline).await;
        if result.is_err() {
            self.disconnect();
        }
        result
    }

    async fn exchange(
        &mut self,
        command: &Command,
        deadline: Instant,
    ) -> Result<Reply, RequestError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Request {
            id,
            command: command.clone(),
        };
        let mut line = serde_json::to_string(&request).map_err(RequestError::Encode)?;
        line.push('\n');
        let stream = match &mut self.stream {
            Some(stream) => stream,
            None => {
                let addr = self.addr.clone();
                let connected = timeout_at(deadline, TcpStream::connect(self.addr.as_str()))
                    .await
                    .map_err(|_| RequestError::ConnectTimeout { addr: addr.clone() })?
                    .map_err(|source| RequestError::Connect { addr, source })?;
                // Requests are single small lines: send each at once.
                connected.set_nodelay(true).ok();
                self.stream.insert(BufReader::new(connected))
            }
        };
        timeout_at(deadline, stream.get_mut().write_all(line.as_bytes()))
            .await
            .map_err(|_| RequestError::Timeout)?
            .map_err(RequestError::Send)?;
        loop {
            self.line.clear();
            let read = timeout_at(deadline, stream.read_line(&mut self.line))
                .await
                .map_err(|_| RequestError::Timeout)?
                .map_err(RequestError::Receive)?;
            if read == 0 {
                return Err(RequestError::Closed);
            }
            let reply: Reply = serde_json::from_str(self.line.trim_end())
                .map_err(|e| RequestError::Malformed(format!("{e}: {}", self.line.trim_end())))?;
            match reply.id {
                Some(other) if other != id => continue,
                _ => return Ok(reply),
            }
        }
    }
}

/// A client of one node of the bundled Raft KV, for one workload.
#[derive(Debug)]
pub struct BundledClient {
    /// Decides how operations map onto requests and how reads are normalised.
    kind: WorkloadKind,
    /// The connection to the node this client is bound to.
    connection: Connection,
    /// The per-operation budget: connecting, sending and waiting for the reply (also
    /// across redirects).
    timeout: Duration,
    /// How many `not-leader` redirects one operation may follow; 0 (the default) keeps
    /// every request on the bound node.
    max_redirects: usize,
    /// The connection to the leader a `not-leader` reply last named, kept while it stays
    /// the leader.
    redirect: Option<Connection>,
}

/// The server key of the single register.
pub const REGISTER_KEY: &str = "register";
/// The server key of the lock.
pub const MUTEX_KEY: &str = "mutex";
/// The server key of the set.
pub const SET_KEY: &str = "set";

impl BundledClient {
    /// A client for `kind` against the node whose client API listens on `addr`. No
    /// connection is opened until the first operation.
    pub fn new(kind: WorkloadKind, addr: impl Into<String>, timeout: Duration) -> BundledClient {
        BundledClient {
            kind,
            connection: Connection::new(addr),
            timeout,
            max_redirects: 0,
            redirect: None,
        }
    }

    /// Lets each operation follow up to `hops` `not-leader` replies to the leader they
    /// name, within the same per-operation timeout. This is safe: `not-leader` is
    /// definite (nothing was proposed), so the retry is the only attempt that can take
    /// effect. Off by default (Jepsen style: a worker stays on its node and a follower's
    /// refusal is a `fail`); with it on, the history's `node` names where the worker
    /// started, not necessarily the node that served it.
    pub fn with_redirects(mut self, hops: usize) -> BundledClient {
        self.max_redirects = hops;
        self
    }

    pub fn addr(&self) -> &str {
        self.connection.addr()
    }

    pub fn kind(&self) -> WorkloadKind {
        self.kind
    }

    async fn perform(&mut self, op: &Op) -> Completion {
        let request = match self.to_request(op) {
            Ok(request) => request,
            // Nothing was sent: the operation certainly did not happen.
            Err(why) => return Completion::fail(op.value.clone(), why),
        };
        let deadline = Instant::now() + self.timeout;
        let mut hops = 0;
        let mut at_home = true;
        loop {
            let connection = match (at_home, self.redirect.as_mut()) {
                (false, Some(leader)) => leader,
                _ => &mut self.connection,
            };
            let reply = match connection.request(&request, deadline).await {
                Ok(reply) => reply,
                Err(e) if !e.was_sent() => {
                    return Completion::fail(op.value.clone(), e.to_string())
                }
                Err(e) => return uncertain(op, e.to_string()),
            };
            if reply.ok {
                return self.completed(op, reply.value.unwrap_or(Value::Null));
            }
            let leader = match (reply.error, reply.definite, &reply.leader) {
                (Some(ErrorKind::NotLeader), Some(true), Some(Some(leader))) => leader,
                _ => return rejected(op, &reply),
            };
            if hops == self.max_redirects {
                return rejected(op, &reply);
            }
            hops += 1;
            at_home = leader == self.connection.addr();
            if !at_home && self.redirect.as_ref().map(Connection::addr) != Some(leader.as_str()) {
                self.redirect = Some(Connection::new(leader.clone()));
            }
        }
    }

    /// The request for `op`, or why this client cannot perform it.
    fn to_request(&self, op: &Op) -> Result<Command, String> {
        let unsupported = || format!("unsupported-op: {} cannot perform `{}`", self.kind, op.f);
        let key = |default: &str| {
            op.key
                .as_ref()
                .map_or_else(|| default.to_string(), Key::to_string)
        };
        match (self.kind, op.f.as_str()) {
            (WorkloadKind::Register | WorkloadKind::Kv, "read") => Ok(Command::Get {
                key: key(REGISTER_KEY),
            }),
            (WorkloadKind::Register | WorkloadKind::Kv, "write") => Ok(Command::Put {
                key: key(REGISTER_KEY),
                value: op.value.clone(),
            }),
            (WorkloadKind::Register | WorkloadKind::Kv, "cas") => {
                match op.value.as_array().map(Vec::as_slice) {
                    Some([from, to]) => Ok(Command::Cas {
                        key: key(REGISTER_KEY),
                        from: from.clone(),
                        to: to.clone(),
                    }),
                    _ => Err(format!(
                        "bad-op: cas needs [expected, new], got {}",
                        op.value
                    )),
                }
            }
            (WorkloadKind::Mutex, "acquire") => Ok(Command::Cas {
                key: key(MUTEX_KEY),
                from: Value::Null,
                to: owner_token(op)?,
            }),
            (WorkloadKind::Mutex, "release") => Ok(Command::Cas {
                key: key(MUTEX_KEY),
                from: owner_token(op)?,
                to: Value::Null,
            }),
            (WorkloadKind::Set, "add") => Ok(Command::Append {
                key: key(SET_KEY),
                value: op.value.clone(),
            }),
            (WorkloadKind::Set, "read") => Ok(Command::Get { key: key(SET_KEY) }),
            (WorkloadKind::ListAppend | WorkloadKind::RwRegister, "txn") => {
                let micro_ops = op.value.as_array().ok_or_else(|| {
                    format!("bad-op: txn needs a list of micro-ops, got {}", op.value)
                })?;
                let ops = micro_ops
                    .iter()
                    .map(server_micro_op)
                    .collect::<Result<_, _>>()?;
                Ok(Command::Txn { ops })
            }
            _ => Err(unsupported()),
        }
    }

    /// The completion of an operation the node acknowledged with result `value`.
    fn completed(&self, op: &Op, value: Value) -> Completion {
        let normalised = match (self.kind, op.f.as_str()) {
            (WorkloadKind::Register | WorkloadKind::Kv, "read") => Ok(value),
            (WorkloadKind::Set, "read") => as_list(value),
            (WorkloadKind::ListAppend, "txn") => completed_txn(&op.value, &value, true),
            (WorkloadKind::RwRegister, "txn") => completed_txn(&op.value, &value, false),
            _ => Ok(op.value.clone()),
        };
        match normalised {
            Ok(value) => Completion::ok(value),
            // It took effect, but we cannot say what it read: unknown to the checker.
            Err(why) => uncertain(op, format!("malformed-reply: {why}")),
        }
    }
}

impl Client for BundledClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(self.perform(op))
    }
}

/// The lock owner's token: the op's value, which must be present.
pub(crate) fn owner_token(op: &Op) -> Result<Value, String> {
    if op.value.is_null() {
        return Err(format!(
            "bad-op: `{}` needs an owner token as its value",
            op.f
        ));
    }
    Ok(op.value.clone())
}

/// A history micro-op `[f, key, value]` as the node expects it: a function the node
/// knows (`r`, `w`, `append`) and the key as a string.
fn server_micro_op(micro: &Value) -> Result<MicroOp, String> {
    match micro.as_array().map(Vec::as_slice) {
        Some([f, key, value]) => {
            let f: MicroFn = serde_json::from_value(f.clone())
                .map_err(|e| format!("bad-op: micro-op function {f}: {e}"))?;
            let key = Key::from_json(key).ok_or_else(|| {
                format!("bad-op: micro-op key must be a string or integer, got {key}")
            })?;
            Ok(MicroOp(f, key.to_string(), value.clone()))
        }
        _ => Err(format!(
            "bad-op: micro-op must be [f, key, value], got {micro}"
        )),
    }
}

/// A read of a list-valued key: absent (`null`) is the empty list.
pub(crate) fn as_list(value: Value) -> Result<Value, String> {
    match value {
        Value::Null => Ok(Value::Array(Vec::new())),
        Value::Array(items) => Ok(Value::Array(items)),
        other => Err(format!("expected a list, got {other}")),
    }
}

/// The completed transaction: the invocation's micro-ops (history keys kept), each read
/// filled with the list the node returned for it. The node answers with its micro-op
/// list, `[f, key, value]` per micro-op in order.
fn completed_txn(invoked: &Value, reply: &Value, lists: bool) -> Result<Value, String> {
    let invoked = invoked.as_array().ok_or("the invocation is not a list")?;
    let results = reply
        .as_array()
        .ok_or_else(|| format!("txn result is not a list: {reply}"))?;
    if results.len() != invoked.len() {
        return Err(format!(
            "txn of {} micro-ops answered with {} results",
            invoked.len(),
            results.len()
        ));
    }
    invoked
        .iter()
        .zip(results)
        .map(|(micro, result)| {
            let mut micro = micro.as_array().cloned().ok_or("micro-op is not a list")?;
            let is_read = micro
                .first()
                .and_then(Value::as_str)
                .is_some_and(|f| f == "r" || f == "read");
            if is_read {
                let read = match result.as_array().map(Vec::as_slice) {
                    Some([_, _, read]) => read.clone(),
                    _ => {
                        return Err(format!(
                            "micro-op result must be [f, key, value], got {result}"
                        ))
                    }
                };
                if let Some(slot) = micro.get_mut(2) {
                    // A register read is the value itself (`null`: never written).
                    *slot = if lists { as_list(read)? } else { read };
                }
            }
            Ok(Value::Array(micro))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(Value::Array)
}

/// The completion of an operation the node rejected.
fn rejected(op: &Op, reply: &Reply) -> Completion {
    let code = reply.error.map_or("unknown-error", ErrorKind::name);
    let error = match &reply.message {
        Some(message) => format!("{code}: {message}"),
        None => code.to_string(),
    };
    // Trust the node's `definite`; a reply without one is definite only for the codes
    // that mean "refused before proposing" or "applied without effect".
    let definite = reply
        .definite
        .unwrap_or_else(|| reply.error.is_some_and(ErrorKind::is_definite));
    if definite {
        Completion::fail(op.value.clone(), error)
    } else {
        uncertain(op, error)
    }
}

/// The completion of an operation whose outcome is unknown: `info`, except that a
/// read-only operation certainly changed nothing and is a `fail`.
pub(crate) fn uncertain(op: &Op, error: String) -> Completion {
    if op.is_read_only() {
        Completion::fail(op.value.clone(), error)
    } else {
        Completion::info(op.value.clone(), error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use splitbrain_checker::EventType;
    use std::sync::{Arc, Mutex};
    use tokio::net::TcpListener;

    /// What the fake node does with one request line.
    #[derive(Debug, Clone)]
    enum Action {
        /// Reply with this object plus the request's id.
        Reply(Value),
        /// Reply with exactly this line (for malformed and stale replies).
        Raw(String),
        /// Close the connection without replying.
        Drop,
        /// Never reply.
        Silence,
        /// Reply `not-leader`, naming this very node as the leader.
        NotLeaderSelf,
    }

    /// A fake node on 127.0.0.1:0 that answers each request line with the next scripted
    /// action and records every request it received. It stops when the test's runtime
    /// does.
    struct FakeNode {
        addr: String,
        requests: Arc<Mutex<Vec<Value>>>,
        connections: Arc<Mutex<usize>>,
    }

    async fn fake_node(script: Vec<Action>) -> FakeNode {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr").to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(Mutex::new(0));
        let script = Arc::new(Mutex::new(script.into_iter()));
        let (seen, accepted) = (requests.clone(), connections.clone());
        let own_addr = addr.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                *accepted.lock().expect("lock") += 1;
                let (seen, script, own_addr) = (seen.clone(), script.clone(), own_addr.clone());
                tokio::spawn(async move {
                    let mut socket = BufReader::new(socket);
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let request: Value =
                            serde_json::from_str(&line).expect("client sends JSON");
                        seen.lock().expect("lock").push(request.clone());
                        let action = script.lock().expect("lock").next().unwrap_or(Action::Drop);
                        let out = match action {
                            Action::Reply(mut reply) => {
                                reply["id"] = request["id"].clone();
                                format!("{reply}\n")
                            }
                            Action::Raw(line) => format!("{line}\n"),
                            Action::NotLeaderSelf => {
                                let reply = json!({"id": request["id"], "ok": false, "error": "not-leader", "definite": true, "leader": own_addr});
                                format!("{reply}\n")
                            }
                            Action::Drop => return,
                            Action::Silence => {
                                std::future::pending::<()>().await;
                                return;
                            }
                        };
                        if socket.get_mut().write_all(out.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        FakeNode {
            addr,
            requests,
            connections,
        }
    }

    impl FakeNode {
        fn requests(&self) -> Vec<Value> {
            let mut requests = self.requests.lock().expect("lock").clone();
            for r in &mut requests {
                if let Some(map) = r.as_object_mut() {
                    map.remove("id");
                }
            }
            requests
        }
    }

    const TIMEOUT: Duration = Duration::from_millis(300);

    fn ok(value: Value) -> Action {
        Action::Reply(json!({"ok": true, "value": value}))
    }

    fn op(f: &str, key: Option<&str>, value: Value) -> Op {
        Op::new(f, key.map(Key::from), value)
    }

    #[tokio::test]
    async fn register_and_kv_map_to_get_put_cas() {
        let node = fake_node(vec![
            ok(Value::Null),
            ok(json!(7)),
            ok(Value::Null),
            ok(Value::Null),
        ])
        .await;
        let mut client = BundledClient::new(WorkloadKind::Kv, &node.addr, TIMEOUT);
        let read_absent = client.invoke(&op("read", None, Value::Null)).await;
        assert_eq!(read_absent, Completion::ok(Value::Null));
        let read = client.invoke(&op("read", Some("k3"), Value::Null)).await;
        assert_eq!(read, Completion::ok(json!(7)));
        let write = client.invoke(&op("write", Some("k3"), json!(8))).await;
        assert_eq!(write, Completion::ok(json!(8)));
        let cas = client.invoke(&op("cas", Some("k3"), json!([8, 9]))).await;
        assert_eq!(cas, Completion::ok(json!([8, 9])));
        assert_eq!(
            node.requests(),
            vec![
                json!({"op": "get", "key": "register"}),
                json!({"op": "get", "key": "k3"}),
                json!({"op": "put", "key": "k3", "value": 8}),
                json!({"op": "cas", "key": "k3", "from": 8, "to": 9}),
            ]
        );
        assert_eq!(
            *node.connections.lock().expect("lock"),
            1,
            "one connection reused"
        );
    }

    #[tokio::test]
    async fn definite_rejections_fail_and_uncertain_ones_are_info() {
        let node = fake_node(vec![
            Action::Reply(json!({"ok": false, "error": "cas-mismatch", "definite": true, "value": 3})),
            Action::Reply(json!({"ok": false, "error": "not-leader", "definite": true, "leader": "127.0.0.1:9"})),
            Action::Reply(json!({"ok": false, "error": "timeout", "definite": false})),
            Action::Reply(json!({"ok": false, "error": "timeout", "definite": false})),
            Action::Reply(json!({"ok": false, "error": "shutting-down"})),
            Action::Reply(json!({"ok": false, "error": "bad-request", "definite": true, "message": "no"})),
        ])
        .await;
        let mut client = BundledClient::new(WorkloadKind::Register, &node.addr, TIMEOUT);
        let cas = op("cas", None, json!([1, 2]));
        assert_eq!(
            client.invoke(&cas).await,
            Completion::fail(json!([1, 2]), "cas-mismatch")
        );
        let write = op("write", None, json!(5));
        assert_eq!(
            client.invoke(&write).await,
            Completion::fail(json!(5), "not-leader")
        );
        assert_eq!(
            client.invoke(&write).await,
            Completion::info(json!(5), "timeout")
        );
        // A read in doubt changed nothing: fail, not info.
        let read = op("read", None, Value::Null);
        assert_eq!(
            client.invoke(&read).await,
            Completion::fail(Value::Null, "timeout")
        );
        // No `definite` field: only the known definite codes fail.
        assert_eq!(
            client.invoke(&write).await,
            Completion::info(json!(5), "shutting-down")
        );
        assert_eq!(
            client.invoke(&write).await,
            Completion::fail(json!(5), "bad-request: no")
        );
    }

    #[tokio::test]
    async fn dropped_connection_is_info_and_the_next_op_reconnects() {
        let node = fake_node(vec![
            Action::Drop,
            ok(Value::Null),
            Action::Drop,
            ok(json!(5)),
        ])
        .await;
        let mut client = BundledClient::new(WorkloadKind::Register, &node.addr, TIMEOUT);
        let write = op("write", None, json!(5));
        assert_eq!(
            client.invoke(&write).await,
            Completion::info(json!(5), "connection-closed")
        );
        assert_eq!(client.invoke(&write).await, Completion::ok(json!(5)));
        let read = op("read", None, Value::Null);
        let dropped = client.invoke(&read).await;
        assert_eq!(dropped.kind, EventType::Fail, "{dropped:?}");
        assert_eq!(client.invoke(&read).await, Completion::ok(json!(5)));
        assert_eq!(*node.connections.lock().expect("lock"), 3);
    }

    #[tokio::test]
    async fn no_reply_times_out_as_info_and_a_late_reply_is_never_misread() {
        let node = fake_node(vec![Action::Silence, ok(json!(1))]).await;
        let mut client = BundledClient::new(WorkloadKind::Register, &node.addr, TIMEOUT);
        let cas = op("cas", None, json!([1, 2]));
        assert_eq!(
            client.invoke(&cas).await,
            Completion::info(json!([1, 2]), "timeout")
        );
        assert!(
            !client.connection.is_connected(),
            "the abandoned connection is closed"
        );
        let read = op("read", None, Value::Null);
        assert_eq!(client.invoke(&read).await, Completion::ok(json!(1)));
        assert_eq!(*node.connections.lock().expect("lock"), 2);
    }

    #[tokio::test]
    async fn replies_for_other_ids_are_skipped_and_garbage_is_uncertain() {
        let stale = r#"{"id":999,"ok":true,"value":"stale"}"#.to_string();
        let node = fake_node(vec![Action::Raw(stale), Action::Raw("not json".into())]).await;
        let mut client = BundledClient::new(WorkloadKind::Register, &node.addr, TIMEOUT);
        // The stale reply is skipped; the real one never comes: timeout.
        let write = op("write", None, json!(3));
        assert_eq!(
            client.invoke(&write).await,
            Completion::info(json!(3), "timeout")
        );
        let garbage = client.invoke(&write).await;
        assert_eq!(garbage.kind, EventType::Info);
        assert!(
            garbage
                .error
                .as_deref()
                .is_some_and(|e| e.starts_with("malformed reply")),
            "{garbage:?}"
        );
    }

    #[tokio::test]
    async fn connection_refused_is_a_definite_fail() {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("addr").to_string();
        drop(listener);
        let mut client = BundledClient::new(WorkloadKind::Register, &addr, TIMEOUT);
        let done = client.invoke(&op("write", None, json!(1))).await;
        assert_eq!(done.kind, EventType::Fail, "{done:?}");
        assert!(
            done.error
                .as_deref()
                .is_some_and(|e| e.starts_with("connect to")),
            "{done:?}"
        );
    }

    #[tokio::test]
    async fn mutex_is_cas_on_an_owner_token() {
        let mismatch =
            json!({"ok": false, "error": "cas-mismatch", "definite": true, "value": "t1"});
        let node = fake_node(vec![
            ok(Value::Null),
            Action::Reply(mismatch),
            ok(Value::Null),
        ])
        .await;
        let mut client = BundledClient::new(WorkloadKind::Mutex, &node.addr, TIMEOUT);
        let acquire = op("acquire", None, json!("t0"));
        assert_eq!(client.invoke(&acquire).await, Completion::ok(json!("t0")));
        let other = op("acquire", None, json!("t1"));
        assert_eq!(
            client.invoke(&other).await,
            Completion::fail(json!("t1"), "cas-mismatch")
        );
        let release = op("release", None, json!("t0"));
        assert_eq!(client.invoke(&release).await, Completion::ok(json!("t0")));
        assert_eq!(
            node.requests(),
            vec![
                json!({"op": "cas", "key": "mutex", "from": null, "to": "t0"}),
                json!({"op": "cas", "key": "mutex", "from": null, "to": "t1"}),
                json!({"op": "cas", "key": "mutex", "from": "t0", "to": null}),
            ]
        );
        // Without an owner token nothing is sent.
        let anonymous = client.invoke(&op("acquire", None, Value::Null)).await;
        assert_eq!(anonymous.kind, EventType::Fail);
        assert_eq!(node.requests().len(), 3);
    }

    #[tokio::test]
    async fn set_adds_append_and_reads_are_lists() {
        let node = fake_node(vec![
            ok(json!([4])),
            ok(Value::Null),
            ok(json!([4, 9])),
            ok(json!(3)),
        ])
        .await;
        let mut client = BundledClient::new(WorkloadKind::Set, &node.addr, TIMEOUT);
        assert_eq!(
            client.invoke(&op("add", None, json!(4))).await,
            Completion::ok(json!(4))
        );
        let read = op("read", None, Value::Null);
        assert_eq!(client.invoke(&read).await, Completion::ok(json!([])));
        assert_eq!(client.invoke(&read).await, Completion::ok(json!([4, 9])));
        let not_a_list = client.invoke(&read).await;
        assert_eq!(not_a_list.kind, EventType::Fail, "{not_a_list:?}");
        assert_eq!(
            node.requests()[..2],
            [
                json!({"op": "append", "key": "set", "value": 4}),
                json!({"op": "get", "key": "set"}),
            ]
        );
    }

    #[tokio::test]
    async fn list_append_txns_use_string_keys_and_fill_reads() {
        let filled = json!([["append", "3", 11], ["r", "3", [2, 11]], ["r", "4", null]]);
        let node = fake_node(vec![ok(filled), ok(json!([["append", "3", 12]]))]).await;
        let mut client = BundledClient::new(WorkloadKind::ListAppend, &node.addr, TIMEOUT);
        let txn = op(
            "txn",
            None,
            json!([["append", 3, 11], ["r", 3, null], ["r", 4, null]]),
        );
        assert_eq!(
            client.invoke(&txn).await,
            Completion::ok(json!([["append", 3, 11], ["r", 3, [2, 11]], ["r", 4, []]]))
        );
        // A reply of the wrong length: it took effect, but what it read is unknown.
        let short = client.invoke(&txn).await;
        assert_eq!(short.kind, EventType::Info, "{short:?}");
        assert_eq!(
            node.requests()[0],
            json!({"op": "txn", "ops": [["append", "3", 11], ["r", "3", null], ["r", "4", null]]})
        );
    }

    #[tokio::test]
    async fn rw_register_txns_fill_reads_with_the_value() {
        let filled = json!([["w", "3", 11], ["r", "3", 11], ["r", "4", null]]);
        let node = fake_node(vec![ok(filled)]).await;
        let mut client = BundledClient::new(WorkloadKind::RwRegister, &node.addr, TIMEOUT);
        let txn = op(
            "txn",
            None,
            json!([["w", 3, 11], ["r", 3, null], ["r", 4, null]]),
        );
        assert_eq!(
            client.invoke(&txn).await,
            Completion::ok(json!([["w", 3, 11], ["r", 3, 11], ["r", 4, null]]))
        );
        assert_eq!(
            node.requests()[0],
            json!({"op": "txn", "ops": [["w", "3", 11], ["r", "3", null], ["r", "4", null]]})
        );
    }

    fn not_leader(leader: Option<&str>) -> Action {
        Action::Reply(
            json!({"ok": false, "error": "not-leader", "definite": true, "leader": leader}),
        )
    }

    #[tokio::test]
    async fn not_leader_fails_unless_redirects_are_on() {
        let leader = fake_node(vec![ok(Value::Null), ok(json!(4))]).await;
        let hint = Some(leader.addr.as_str());
        let script = vec![
            not_leader(hint),
            not_leader(hint),
            not_leader(None),
            not_leader(hint),
        ];
        let follower = fake_node(script).await;
        let write = op("write", None, json!(4));
        let mut bound = BundledClient::new(WorkloadKind::Register, &follower.addr, TIMEOUT);
        assert_eq!(
            bound.invoke(&write).await,
            Completion::fail(json!(4), "not-leader")
        );
        let mut client =
            BundledClient::new(WorkloadKind::Register, &follower.addr, TIMEOUT).with_redirects(1);
        assert_eq!(client.invoke(&write).await, Completion::ok(json!(4)));
        // No hint: nowhere to go.
        assert_eq!(
            client.invoke(&write).await,
            Completion::fail(json!(4), "not-leader")
        );
        let read = op("read", None, Value::Null);
        assert_eq!(client.invoke(&read).await, Completion::ok(json!(4)));
        assert_eq!(follower.requests().len(), 4);
        assert_eq!(
            leader.requests(),
            vec![
                json!({"op": "put", "key": "register", "value": 4}),
                json!({"op": "get", "key": "register"}),
            ]
        );
        assert_eq!(
            *leader.connections.lock().expect("lock"),
            1,
            "the leader connection is kept"
        );
    }

    #[tokio::test]
    async fn redirects_are_bounded() {
        // A node that names itself as the leader, forever.
        let looping = fake_node(vec![Action::NotLeaderSelf; 10]).await;
        let mut client =
            BundledClient::new(WorkloadKind::Register, &looping.addr, TIMEOUT).with_redirects(3);
        let done = client.invoke(&op("write", None, json!(1))).await;
        assert_eq!(done, Completion::fail(json!(1), "not-leader"));
        assert_eq!(
            looping.requests().len(),
            4,
            "one attempt and three redirects"
        );
    }

    #[tokio::test]
    async fn operations_a_workload_does_not_have_are_refused_without_sending() {
        let node = fake_node(vec![]).await;
        let mut client = BundledClient::new(WorkloadKind::Set, &node.addr, TIMEOUT);
        let done = client.invoke(&op("cas", None, json!([1, 2]))).await;
        assert_eq!(done.kind, EventType::Fail);
        assert!(done
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("unsupported-op")));
        assert!(node.requests().is_empty());
    }

    #[tokio::test]
    async fn micro_ops_the_node_does_not_know_are_refused_without_sending() {
        let node = fake_node(vec![]).await;
        let mut client = BundledClient::new(WorkloadKind::ListAppend, &node.addr, TIMEOUT);
        let done = client
            .invoke(&op(
                "txn",
                None,
                json!([["append", 1, 2], ["delete", 1, null]]),
            ))
            .await;
        assert_eq!(done.kind, EventType::Fail, "{done:?}");
        assert!(
            done.error
                .as_deref()
                .is_some_and(|e| e.starts_with("bad-op") && e.contains("delete")),
            "{done:?}"
        );
        assert!(node.requests().is_empty());
    }

    #[tokio::test]
    async fn a_reply_outside_the_protocol_is_uncertain_and_says_why() {
        let node = fake_node(vec![Action::Reply(
            json!({"ok": false, "error": "on-fire", "definite": true}),
        )])
        .await;
        let mut client = BundledClient::new(WorkloadKind::Register, &node.addr, TIMEOUT);
        let done = client.invoke(&op("write", None, json!(1))).await;
        // A node that speaks outside the protocol is not trusted to have refused.
        assert_eq!(done.kind, EventType::Info, "{done:?}");
        assert!(
            done.error
                .as_deref()
                .is_some_and(|e| e.starts_with("malformed reply") && e.contains("on-fire")),
            "{done:?}"
        );
    }

    #[test]
    fn requests_serialize_as_the_node_expects() {
        let request = Request {
            id: 3,
            command: Command::Cas {
                key: "k".into(),
                from: Value::Null,
                to: json!(2),
            },
        };
        let line = serde_json::to_string(&request).expect("encodes");
        assert_eq!(line, r#"{"id":3,"op":"cas","key":"k","from":null,"to":2}"#);
    }
}
