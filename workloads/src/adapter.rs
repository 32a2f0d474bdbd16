//! The client adapter protocol (issue 14): [`AdapterClient`] tests any system through a
//! small program the user writes in any language — an *adapter* — that turns the
//! history's operations into requests to that system. The harness starts one adapter
//! process per logical process, bound to one node, and speaks JSON lines with it over
//! the adapter's stdin and stdout; the adapter's stderr is appended to a file in the run
//! folder. The README's "The adapter protocol" is the specification a user implements
//! from; in short:
//!
//! ```text
//! → {"type":"init","protocol":1,"node":"n1","addr":"10.0.0.1","ports":{"client":2379},
//!    "cluster":[{"name":"n1","addr":"10.0.0.1"},…],"workload":"register","timeout_ms":1000}
//! ← {"type":"init_ok"}                      or  {"type":"error","error":"why"}
//! → {"id":7,"f":"cas","key":null,"value":[1,2]}
//! ← {"id":7,"type":"ok","value":[1,2]}      or "fail" / "info" with "error": "…",
//!                                              or Maelstrom's {"id":7,"type":"error","code":22}
//! ```
//!
//! It is separate from the built-in clients because it owns processes, not sockets: the
//! lifecycle (lazy start, handshake, replacement after any protocol failure, killing on
//! drop) is the bulk of it. How outcomes are classified follows [`crate::client`]: only
//! the adapter's `fail` (or a definite Maelstrom code) and a request that never reached
//! an adapter are `fail`; an adapter that hangs, exits, prints garbage or answers the
//! wrong id makes the operation `info` (uncertain: the adapter may have acted on it),
//! and is killed and replaced by a fresh process (with a new handshake) for the next
//! operation. Uncertain read-only operations become `fail`, as in every client here.
//!
//! Adapter processes never outlive the harness: each runs in its own process group,
//! which is sent SIGKILL when the adapter is replaced, closed or dropped, and has
//! `PR_SET_PDEATHSIG` = SIGKILL, set from the harness's long-lived spawner thread
//! ([`crate::child`]), so that the kernel kills it should the harness die without
//! cleaning up (as `spawn_tied` does for the nodes). A descendant that leaves the group
//! (`setsid`) is the harness's to catch (as a child subreaper, at the end of a run).
//! The adapter's stderr reaches its file through a pipe and a copier that keeps at most
//! [`AdapterSpec::stderr_cap`] of it.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use serde_json::{Map, Value};
use splitbrain_checker::Key;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::time::{timeout, timeout_at, Instant};

use crate::child::{OutputCap, OutputCuts};
use crate::client::{uncertain, BoxFuture, Client};
use crate::op::{Completion, Op};

/// The protocol version the harness speaks, sent as `protocol` in the `init` message.
/// An adapter that cannot speak it refuses the handshake.
pub const PROTOCOL_VERSION: u32 = 1;

/// The longest line an adapter may print (a list-append read can be large); a longer
/// line is a protocol failure, not an allocation without bound.
const MAX_LINE: u64 = 16 << 20;

/// How much of an adapter's bad line an error quotes.
const QUOTE_CHARS: usize = 200;

/// How long to wait for a killed adapter to be reaped before leaving it to tokio's
/// orphan reaper (SIGKILL makes this immediate unless the process is stuck in the
/// kernel).
const REAP_WAIT: Duration = Duration::from_secs(2);

/// The response fields the protocol defines; every other field of a response is kept
/// as an extra field of the completion.
const KNOWN_FIELDS: [&str; 7] = [
    "id",
    "in_reply_to",
    "type",
    "value",
    "error",
    "code",
    "text",
];

/// What the adapter is told about the node it is bound to, in the `init` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The node's name (`n1`), as the history and the report name it.
    pub node: String,
    /// The node's host (an IP address or host name, without a port).
    pub addr: String,
    /// Every member of the cluster, `(name, addr)`, in the description's order, for
    /// adapters that need the whole membership (a client library's seed list).
    pub cluster: Vec<(String, String)>,
    /// The workload's name (`register`, `list-append`, ...): tells the adapter which
    /// operations and values to expect.
    pub workload: String,
    /// The node's named ports (`client`, `peer`, ...), from the database description.
    pub ports: BTreeMap<String, u16>,
}

/// How to start an adapter, and the budgets it gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSpec {
    /// The program and its arguments, already expanded by the driver.
    pub argv: Vec<String>,
    /// Extra environment variables, on top of the harness's own environment.
    pub env: Vec<(String, String)>,
    /// The file the adapter's stderr is appended to (in the run folder): where a user
    /// looks when an adapter misbehaves, so every error names it.
    pub stderr: PathBuf,
    /// What the `init` message says.
    pub handshake: Handshake,
    /// The operation timeout: a request unanswered after this long is `info`
    /// (`timeout`) and its adapter is killed. Sent to the adapter as `timeout_ms`, so it
    /// can give up on its own a little earlier and answer `info` itself.
    pub timeout: Duration,
    /// The handshake's budget: starting the process and its `init_ok`.
    pub start_timeout: Duration,
    /// How much of each adapter process's stderr is kept (its head and its tail).
    pub stderr_cap: OutputCap,
}

/// Why an adapter could not be started. The driver aborts the run with it: every
/// variant names the adapter and says where its stderr went.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// `argv` was empty.
    #[error("the adapter command is empty")]
    NoCommand,
    /// The stderr file could not be opened for appending.
    #[error("adapter {adapter}: cannot open {stderr} for its stderr: {source}")]
    Stderr {
        adapter: String,
        stderr: String,
        source: std::io::Error,
    },
    /// The program could not be started (not found, not executable, ...).
    #[error("adapter {adapter}: cannot start `{command}`: {source}")]
    Spawn {
        adapter: String,
        command: String,
        source: std::io::Error,
    },
    /// The adapter answered `{"type":"error"}` to the `init` message.
    #[error("adapter {adapter} refused the handshake: {message} (its stderr is in {stderr})")]
    Refused {
        adapter: String,
        message: String,
        stderr: String,
    },
    /// The adapter answered something other than `init_ok` or `error`.
    #[error(
        "adapter {adapter} answered the handshake with {line}, expected {{\"type\":\"init_ok\"}} \
         (its stderr is in {stderr})"
    )]
    BadHandshake {
        adapter: String,
        /// The line, quoted and truncated.
        line: String,
        stderr: String,
    },
    /// The adapter exited (or closed its stdout) before answering the `init` message.
    #[error("adapter {adapter} exited during the handshake ({status}); its stderr is in {stderr}")]
    Exited {
        adapter: String,
        status: String,
        stderr: String,
    },
    /// No answer to the `init` message within the start timeout.
    #[error(
        "adapter {adapter} did not answer the handshake within {timeout:?} \
         (its stderr is in {stderr})"
    )]
    HandshakeTimeout {
        adapter: String,
        timeout: Duration,
        stderr: String,
    },
    /// Writing the `init` message or reading the answer failed.
    #[error("adapter {adapter}: handshake: {source} (its stderr is in {stderr})")]
    Io {
        adapter: String,
        source: std::io::Error,
        stderr: String,
    },
}

/// Maelstrom's numeric error codes: the name and whether the code is definite (the
/// operation certainly did not happen). `None` for a code Maelstrom does not define,
/// which the protocol treats as indefinite.
pub fn maelstrom_code(code: i64) -> Option<(&'static str, bool)> {
    Some(match code {
        0 => ("timeout", false),
        1 => ("node-not-found", true),
        10 => ("not-supported", true),
        11 => ("temporarily-unavailable", true),
        12 => ("malformed-request", true),
        13 => ("crash", false),
        14 => ("abort", true),
        20 => ("key-does-not-exist", true),
        21 => ("key-already-exists", true),
        22 => ("precondition-failed", true),
        30 => ("txn-conflict", true),
        _ => return None,
    })
}

/// The `init` message.
#[derive(Serialize)]
struct Init<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    protocol: u32,
    node: &'a str,
    addr: &'a str,
    ports: &'a BTreeMap<String, u16>,
    cluster: Vec<Member<'a>>,
    workload: &'a str,
    timeout_ms: u64,
}

#[derive(Serialize)]
struct Member<'a> {
    name: &'a str,
    addr: &'a str,
}

/// One request line.
#[derive(Serialize)]
struct Request<'a> {
    id: u64,
    f: &'a str,
    key: Option<&'a Key>,
    value: &'a Value,
}

/// One running adapter process and its pipes.
struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// The process's pid, which is also its process group's id.
    pid: u32,
    /// Set once the process has been reaped: its pid may then belong to someone else,
    /// so it must not be signalled any more.
    reaped: bool,
}

impl Running {
    /// SIGKILLs the adapter's process group (the adapter and anything it started),
    /// unless it was already reaped.
    fn signal_kill(&mut self) {
        if self.reaped {
            return;
        }
        if let Ok(pgid) = i32::try_from(self.pid) {
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        let _ = self.child.start_kill();
    }

    /// Kills the adapter and waits (bounded) until it is reaped.
    async fn kill(mut self) {
        self.signal_kill();
        if let Ok(Ok(_)) = timeout(REAP_WAIT, self.child.wait()).await {
            self.reaped = true;
        }
    }

    /// The exit status once the process has exited, waiting at most until `deadline`
    /// (its stdout closed, so it is exiting).
    async fn exit_status(&mut self, deadline: Instant) -> String {
        match timeout_at(deadline, self.child.wait()).await {
            Ok(Ok(status)) => {
                self.reaped = true;
                status.to_string()
            }
            Ok(Err(e)) => format!("exit status unknown: {e}"),
            Err(_) => "stdout closed, still running".to_string(),
        }
    }
}

impl Drop for Running {
    /// A drop cannot await: the group is sent SIGKILL here, and tokio's `kill_on_drop`
    /// hands the child to its orphan reaper, which reaps it while the runtime runs.
    /// [`AdapterClient::close`] kills and reaps synchronously instead.
    fn drop(&mut self) {
        self.signal_kill();
    }
}

/// Why an exchange with a running adapter went wrong. Every case makes the operation
/// uncertain and the adapter is replaced.
enum Broken {
    /// No complete answer before the operation timeout.
    Timeout,
    /// The adapter closed its stdout (exited) before answering.
    Exited,
    /// Writing the request or reading the answer failed.
    Io(&'static str, std::io::Error),
    /// The answer was unusable: which rule it broke, and the line.
    BadLine(String),
}

/// A client that performs operations through one adapter process at a time.
///
/// The process is started on the first [`Client::invoke`] (or by [`AdapterClient::open`],
/// which a driver calls first to fail fast), and replaced after any protocol failure.
/// Dropping the client kills its adapter (see [`Running`]'s drop); a driver that wants
/// the process reaped before it moves on calls [`AdapterClient::close`].
pub struct AdapterClient {
    spec: AdapterSpec,
    /// `argv[0]`'s file name, which names the adapter in errors (`adapter.py`).
    name: String,
    /// The current adapter, if one is running.
    running: Option<Running>,
    /// The id of the next request; ids are never reused on a client, even across
    /// adapter processes.
    next_id: u64,
    /// Set while a request is unanswered: if an invoke future is dropped mid-operation,
    /// the adapter may still answer it, so the next invoke starts a fresh adapter.
    in_flight: bool,
    /// Protocol failures (see [`AdapterClient::adapter_errors`]); shared, so a driver can
    /// sum it over all its clients.
    errors: Arc<AtomicU64>,
    /// The answer line being read, kept to reuse its allocation.
    line: String,
    /// What the stderr copier cut.
    cuts: OutputCuts,
}

impl AdapterClient {
    /// A client that will run `spec`'s adapter. Nothing is started until
    /// [`AdapterClient::open`] or the first operation.
    pub fn new(spec: AdapterSpec) -> AdapterClient {
        let name = spec
            .argv
            .first()
            .map(|program| {
                std::path::Path::new(program)
                    .file_name()
                    .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "(no command)".to_string());
        // With an interpreter (`python3 adapter.py`) the script names the adapter
        // better than the interpreter does.
        let name = match spec.argv.get(1) {
            Some(script) if is_interpreter(&name) && !script.starts_with('-') => {
                std::path::Path::new(script)
                    .file_name()
                    .map_or(name, |n| n.to_string_lossy().into_owned())
            }
            _ => name,
        };
        AdapterClient {
            spec,
            name,
            running: None,
            next_id: 1,
            in_flight: false,
            errors: Arc::new(AtomicU64::new(0)),
            line: String::new(),
            cuts: OutputCuts::default(),
        }
    }

    /// Counts this client's adapter errors in `counter` (shared with other clients)
    /// instead of its own.
    pub fn with_error_counter(mut self, counter: Arc<AtomicU64>) -> AdapterClient {
        self.errors = counter;
        self
    }

    /// How many times an adapter failed: a refused or broken handshake on a restart, no
    /// answer within the timeout, an exit, a bad line, a wrong id or type. Each one
    /// replaced the adapter process. (With a shared counter: the sum over its clients.)
    pub fn adapter_errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// The counter [`AdapterClient::adapter_errors`] reads.
    pub fn error_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.errors)
    }

    /// The name errors use for the adapter (the script or program file name).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Records what is cut from the adapters' stderr files in `cuts` (shared with other
    /// clients) instead of a log of its own.
    pub fn with_output_cuts(mut self, cuts: OutputCuts) -> AdapterClient {
        self.cuts = cuts;
        self
    }

    /// What was cut from this client's stderr file (see [`OutputCap`]).
    pub fn output_cuts(&self) -> OutputCuts {
        self.cuts.clone()
    }

    /// The pid of the running adapter, if one is running.
    pub fn pid(&self) -> Option<u32> {
        self.running.as_ref().map(|r| r.pid)
    }

    /// Starts the adapter and completes the handshake, unless one is already running.
    /// A driver calls this before the run to abort early on a broken adapter.
    pub async fn open(&mut self) -> Result<(), AdapterError> {
        if self.in_flight {
            self.replace().await;
        }
        if let Some(running) = &mut self.running {
            if let Ok(None) = running.child.try_wait() {
                return Ok(());
            }
            running.reaped = true;
            self.running = None;
        }
        self.running = Some(self.start().await?);
        Ok(())
    }

    /// Kills the running adapter, if any, and waits until it is reaped.
    pub async fn close(&mut self) {
        if let Some(running) = self.running.take() {
            running.kill().await;
        }
        self.in_flight = false;
    }

    /// Kills the current adapter; the next operation starts a fresh one.
    async fn replace(&mut self) {
        self.close().await;
    }

    fn stderr_name(&self) -> String {
        self.spec.stderr.display().to_string()
    }

    /// Spawns a new adapter process and performs the handshake.
    async fn start(&self) -> Result<Running, AdapterError> {
        let deadline = Instant::now() + self.spec.start_timeout;
        let adapter = self.name.clone();
        let stderr = self.stderr_name();
        let (program, args) = self
            .spec
            .argv
            .split_first()
            .ok_or(AdapterError::NoCommand)?;
        let stderr_error = |source| AdapterError::Stderr {
            adapter: adapter.clone(),
            stderr: stderr.clone(),
            source,
        };
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.spec.stderr)
            .map_err(stderr_error)?;
        let (stderr_read, stderr_write) = crate::child::pipe().map_err(stderr_error)?;
        let mut command = Command::new(program);
        command
            .args(args)
            .envs(self.spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr_write))
            .kill_on_drop(true)
            // Its own group, so that killing it also kills whatever it started.
            .process_group(0);
        let harness = std::process::id();
        // SAFETY: the closure runs in the forked child before exec and only calls prctl
        // and getppid, which are async-signal-safe.
        unsafe {
            command.pre_exec(move || crate::child::pdeathsig(harness));
        }
        // Forked from the spawner thread, which lives as long as the harness: the death
        // signal refers to the forking thread, and a runtime worker may retire mid-run.
        // The child registers with this runtime's process driver.
        let runtime = tokio::runtime::Handle::current();
        let spawned = crate::child::on_spawner_thread(move || {
            let _entered = runtime.enter();
            command.spawn()
        })
        .and_then(|spawned| spawned);
        let mut child = spawned.map_err(|source| AdapterError::Spawn {
            adapter: adapter.clone(),
            command: self.spec.argv.join(" "),
            source,
        })?;
        // The command (and with it the pipe's write end) was dropped on the spawner
        // thread: the copier sees the end of the stream once the adapter's group is gone.
        let _capture = crate::child::capture(
            stderr_read,
            &self.spec.stderr,
            self.spec.stderr_cap,
            &self.cuts,
        )
        .map_err(stderr_error)?;
        let pid = child.id().unwrap_or(0);
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(AdapterError::Io {
                adapter,
                source: std::io::Error::other("the adapter's pipes were not set up"),
                stderr,
            });
        };
        // A marker in the stderr file, so that a user can tell the processes apart.
        let _ = writeln!(
            log,
            "== splitbrain: started `{}` (pid {pid}) for node {} ==",
            self.spec.argv.join(" "),
            self.spec.handshake.node
        );
        let mut running = Running {
            child,
            stdin,
            stdout: BufReader::new(stdout),
            pid,
            reaped: false,
        };
        match self.handshake(&mut running, deadline).await {
            Ok(()) => Ok(running),
            Err(e) => {
                running.kill().await;
                Err(e)
            }
        }
    }

    /// Sends `init` and reads the answer.
    async fn handshake(
        &self,
        running: &mut Running,
        deadline: Instant,
    ) -> Result<(), AdapterError> {
        let adapter = self.name.clone();
        let stderr = self.stderr_name();
        let h = &self.spec.handshake;
        let init = Init {
            kind: "init",
            protocol: PROTOCOL_VERSION,
            node: &h.node,
            addr: &h.addr,
            ports: &h.ports,
            cluster: h
                .cluster
                .iter()
                .map(|(name, addr)| Member { name, addr })
                .collect(),
            workload: &h.workload,
            timeout_ms: u64::try_from(self.spec.timeout.as_millis()).unwrap_or(u64::MAX),
        };
        let io = |source: std::io::Error| AdapterError::Io {
            adapter: adapter.clone(),
            source,
            stderr: stderr.clone(),
        };
        let mut line = serde_json::to_string(&init).map_err(|e| io(e.into()))?;
        line.push('\n');
        let mut answer = String::new();
        let exchange = async {
            running.stdin.write_all(line.as_bytes()).await?;
            running.stdin.flush().await?;
            read_line(&mut running.stdout, &mut answer).await
        };
        let read = match timeout_at(deadline, exchange).await {
            Err(_) => {
                return Err(AdapterError::HandshakeTimeout {
                    adapter,
                    timeout: self.spec.start_timeout,
                    stderr,
                })
            }
            Ok(Err(e)) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(io(e)),
            Ok(Err(_)) => 0,
            Ok(Ok(n)) => n,
        };
        if read == 0 {
            let soon = Instant::now() + Duration::from_millis(500);
            let status = running.exit_status(soon).await;
            return Err(AdapterError::Exited {
                adapter,
                status,
                stderr,
            });
        }
        let parsed: Option<Map<String, Value>> = serde_json::from_str(answer.trim()).ok();
        let kind = parsed
            .as_ref()
            .and_then(|m| m.get("type"))
            .and_then(Value::as_str);
        let protocol_ok = parsed
            .as_ref()
            .and_then(|m| m.get("protocol"))
            .is_none_or(|p| p.as_u64() == Some(u64::from(PROTOCOL_VERSION)));
        match (kind, &parsed) {
            (Some("init_ok"), _) if protocol_ok => Ok(()),
            (Some("error"), Some(m)) => {
                let message = ["error", "text"]
                    .iter()
                    .find_map(|f| m.get(*f).and_then(Value::as_str))
                    .map_or_else(|| quote(answer.trim()), str::to_string);
                Err(AdapterError::Refused {
                    adapter,
                    message,
                    stderr,
                })
            }
            _ => Err(AdapterError::BadHandshake {
                adapter,
                line: quote(answer.trim()),
                stderr,
            }),
        }
    }

    fn count_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    async fn perform(&mut self, op: &Op) -> Completion {
        if self.in_flight {
            // An abandoned invoke may still be answered: never read that answer.
            self.replace().await;
        }
        // An adapter that died between operations is replaced before this one is sent.
        if let Some(running) = &mut self.running {
            if let Ok(Some(status)) = running.child.try_wait() {
                running.reaped = true;
                tracing::warn!(adapter = %self.name, %status, "adapter exited between operations");
                self.count_error();
                self.running = None;
            }
        }
        if self.running.is_none() {
            match self.start().await {
                Ok(running) => self.running = Some(running),
                Err(e) => {
                    tracing::warn!(adapter = %self.name, error = %e, "adapter did not start");
                    self.count_error();
                    // Nothing was sent: the operation certainly did not happen.
                    return Completion::fail(op.value.clone(), format!("adapter-start: {e}"));
                }
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let request = Request {
            id,
            f: &op.f,
            key: op.key.as_ref(),
            value: &op.value,
        };
        let mut line = match serde_json::to_string(&request) {
            Ok(line) => line,
            Err(e) => return Completion::fail(op.value.clone(), format!("bad-op: {e}")),
        };
        line.push('\n');
        let deadline = Instant::now() + self.spec.timeout;
        self.in_flight = true;
        let outcome = self.exchange(&line, deadline).await;
        self.in_flight = false;
        let broken = match outcome {
            Ok(()) => match self.interpret(op, id) {
                Ok((completion, extra)) => return with_extras(completion, extra),
                Err(broken) => broken,
            },
            Err(broken) => broken,
        };
        let pid = self.pid().unwrap_or(0);
        let error = match broken {
            Broken::Timeout => "timeout".to_string(),
            Broken::Exited => {
                let soon = Instant::now() + Duration::from_millis(500);
                let status = match &mut self.running {
                    Some(running) => running.exit_status(soon).await,
                    None => "gone".to_string(),
                };
                format!(
                    "adapter-exited: {} (pid {pid}) exited before answering ({status}); its stderr is in {}",
                    self.name,
                    self.stderr_name()
                )
            }
            Broken::Io(what, e) => format!("adapter-io: {} (pid {pid}): {what}: {e}", self.name),
            Broken::BadLine(why) => format!("adapter-bad-line: {} (pid {pid}) {why}", self.name),
        };
        tracing::warn!(adapter = %self.name, pid, %error, "replacing the adapter");
        self.count_error();
        self.replace().await;
        uncertain(op, error)
    }

    /// Writes the request line and reads one non-blank answer line into `self.line`.
    async fn exchange(&mut self, line: &str, deadline: Instant) -> Result<(), Broken> {
        let Some(running) = self.running.as_mut() else {
            return Err(Broken::Exited);
        };
        let answer = &mut self.line;
        let exchange = async {
            running
                .stdin
                .write_all(line.as_bytes())
                .await
                .map_err(|e| Broken::Io("writing the request", e))?;
            running
                .stdin
                .flush()
                .await
                .map_err(|e| Broken::Io("writing the request", e))?;
            loop {
                answer.clear();
                let read = read_line(&mut running.stdout, answer)
                    .await
                    .map_err(|e| Broken::Io("reading the answer", e))?;
                if read == 0 {
                    return Err(Broken::Exited);
                }
                if !answer.trim().is_empty() {
                    return Ok(());
                }
            }
        };
        match timeout_at(deadline, exchange).await {
            Err(_) => Err(Broken::Timeout),
            Ok(Err(Broken::Io(_, e))) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                Err(Broken::Exited)
            }
            Ok(result) => result,
        }
    }

    /// The completion an answer line stands for and the answer's extra fields, or why it
    /// is unusable.
    fn interpret(&self, op: &Op, id: u64) -> Result<(Completion, Map<String, Value>), Broken> {
        let text = self.line.trim();
        // `read_line` stops at MAX_LINE bytes without a newline; a shorter line without
        // one is the adapter's last output before it closed its stdout, and is parsed.
        if !self.line.ends_with('\n') && self.line.len() as u64 >= MAX_LINE {
            return Err(Broken::BadLine(format!(
                "printed a line longer than {MAX_LINE} bytes: {}",
                quote(text)
            )));
        }
        let Ok(Value::Object(mut answer)) = serde_json::from_str::<Value>(text) else {
            return Err(Broken::BadLine(format!(
                "printed a line that is not a JSON object: {}",
                quote(text)
            )));
        };
        let answered = answer
            .get("id")
            .or_else(|| answer.get("in_reply_to"))
            .and_then(Value::as_u64);
        if answered != Some(id) {
            let got = answer
                .get("id")
                .or_else(|| answer.get("in_reply_to"))
                .map_or_else(|| "no id".to_string(), |v| format!("id {v}"));
            return Err(Broken::BadLine(format!(
                "answered request {id} with {got}: {}",
                quote(text)
            )));
        }
        let kind = answer
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let code = answer.get("code").and_then(Value::as_i64);
        let message = ["text", "error"]
            .iter()
            .find_map(|f| answer.get(*f).and_then(Value::as_str))
            .map(str::to_string);
        let value = answer.remove("value");
        let is_ok = kind == "ok" || kind.ends_with("_ok");
        if is_ok && value.is_none() && op.f == "read" {
            // Recording the invocation's `null` would claim the read saw nothing.
            return Err(Broken::BadLine(format!(
                "answered a read with no `value` (send \"value\":null for absent): {}",
                quote(text)
            )));
        }
        let completion = match (kind.as_str(), code) {
            _ if is_ok => Completion::ok(value.unwrap_or_else(|| op.value.clone())),
            ("fail" | "info" | "error", Some(code)) => {
                let (error, definite) = match maelstrom_code(code) {
                    Some((name, definite)) => (format!("maelstrom-code-{code} {name}"), definite),
                    None => (format!("maelstrom-code-{code}"), false),
                };
                let error = match message {
                    Some(m) => format!("{error}: {m}"),
                    None => error,
                };
                if definite {
                    Completion::fail(op.value.clone(), error)
                } else {
                    uncertain(op, error)
                }
            }
            ("fail", None) => Completion::fail(
                op.value.clone(),
                message.unwrap_or_else(|| "unknown".to_string()),
            ),
            ("info", None) => uncertain(op, message.unwrap_or_else(|| "unknown".to_string())),
            _ => {
                return Err(Broken::BadLine(format!(
                    "answered with type {:?} (expected ok, fail, info, or error with a code): {}",
                    answer
                        .get("type")
                        .map_or("none".to_string(), Value::to_string),
                    quote(text)
                )))
            }
        };
        answer.retain(|field, _| !KNOWN_FIELDS.contains(&field.as_str()));
        Ok((completion, answer))
    }
}

/// Attaches a response's extra fields (e.g. a `revision`) to its completion.
fn with_extras(mut completion: Completion, extra: Map<String, Value>) -> Completion {
    completion.extra.extend(extra);
    completion
}

impl Client for AdapterClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        Box::pin(self.perform(op))
    }
}

/// Reads one line of at most [`MAX_LINE`] bytes. A line comes back without its newline
/// when it hit the limit (exactly [`MAX_LINE`] bytes read) or when the adapter closed
/// its stdout after it (shorter). 0 means end of file.
async fn read_line(
    stdout: &mut BufReader<ChildStdout>,
    line: &mut String,
) -> std::io::Result<usize> {
    (&mut *stdout).take(MAX_LINE).read_line(line).await
}

/// Interpreters whose first argument is the adapter's script.
fn is_interpreter(program: &str) -> bool {
    let base = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        base,
        "python" | "python3" | "node" | "ruby" | "perl" | "bash" | "sh" | "java" | "bb"
    )
}

/// `text` quoted, truncated to [`QUOTE_CHARS`] characters.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        None => format!("{text:?}"),
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
    }
}

#[cfg(test)]
mod tests;
