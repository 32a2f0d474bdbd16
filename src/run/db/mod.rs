//! The system under test as the driver sees it: a [`Database`] (start, kill, pause,
//! resume and stop nodes; tell when the cluster is ready and which node leads; offer a
//! state digest for the convergence check; hand out clients) and the clients it opens.
//! The driver, the nemesis and the convergence check reach a system only through this
//! trait, so the bundled Raft KV ([`bundled`]) and a database described in TOML
//! ([`described`], etcd among them) are run by the same code.
//!
//! What a database can give the faults is stated once, by [`capabilities`]; before a
//! run starts the configuration (`run::config`) holds each chosen fault's needs (its row
//! in `splitbrain_nemesis::FAULTS`) against it and refuses what cannot happen, so no
//! fault fails halfway through a run for want of a capability.

pub mod bundled;
pub mod convergence;
pub mod described;
pub mod processes;
pub mod wipe;

use anyhow::anyhow;
use splitbrain_db::{ClientSpec, Description};
use splitbrain_nemesis::{Ability, Capabilities, ClusterControl, RaftView};
use splitbrain_reports::results::Convergence;
use splitbrain_workloads::{BoxFuture, Client};

use processes::NodeRunner;
use std::path::PathBuf;
use std::time::Duration;

/// What the database under test can give the faults: the bundled cluster (`None`)
/// everything; a described database its leader when its client kind can name one
/// (etcd), never its clocks or its Raft state.
pub fn capabilities(description: Option<&Description>) -> Capabilities {
    let Some(desc) = description else {
        return Capabilities::all();
    };
    let scripted = "the scripted faults steer by the Raft state the bundled cluster's admin API reports, and hold single Raft messages in its proxy";
    Capabilities {
        leader: match desc.client() {
            ClientSpec::Etcd { .. } => Ability::Yes,
            _ => Ability::no(format!("{} cannot tell which node is its primary", desc.name)),
        },
        clock: Ability::no("its nodes share this machine's clock, and splitbrain sets only the bundled cluster's clocks (a Go binary such as etcd ignores libfaketime too); clock faults need the bundled cluster or real hosts"),
        raft_state: Ability::no(scripted),
        message_rules: Ability::no(scripted),
    }
}

/// What a client is for: the workload's workers, or the final reads after healing
/// (which get a longer timeout and no redirects, to read each node's own answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientPurpose {
    Worker,
    FinalRead,
}

/// One system under test: its nodes and how to reach them.
///
/// Process control is by the pid recorded at spawn ([`processes::ProcessSet`]). Every
/// method is idempotent in the sense [`ClusterControl`] requires: killing a dead node,
/// resuming a running one, or starting a running one succeeds without effect.
pub trait Database: Send + Sync {
    /// The database's name in messages and reports (`bundled`, `etcd`).
    fn name(&self) -> &str;
    /// Node names in order (`n1`, `n2`, ...).
    fn nodes(&self) -> Vec<String>;
    /// Starts a node that is not running (on its existing data, if any).
    fn start(&self, node: &str) -> anyhow::Result<()>;
    /// Starts every node and fails if one of them exits at once (a taken port, a bad
    /// flag): such a node would silently make the cluster smaller.
    fn start_all(&self) -> anyhow::Result<()>;
    /// What starts and signals the node processes.
    fn runner(&self) -> &dyn NodeRunner;
    /// SIGKILLs a node's processes and reaps them.
    fn kill(&self, node: &str) -> anyhow::Result<()> {
        self.runner().kill(node)
    }
    /// SIGSTOPs a node's process.
    fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.runner().pause(node)
    }
    /// SIGCONTs a node's process.
    fn resume(&self, node: &str) -> anyhow::Result<()> {
        self.runner().resume(node)
    }
    fn is_running(&self, node: &str) -> bool {
        self.runner().is_running(node)
    }
    /// Reaps a node that exited on its own, so that [`Database::start`] can start it.
    fn forget_exited(&self, node: &str) {
        self.runner().forget_exited(node)
    }
    /// Stops every node (SIGTERM, then SIGKILL after the database's grace period);
    /// returns what went wrong on the way (a wipe path that was refused), for the notes.
    fn stop_all(&self) -> Vec<String>;
    /// Waits until the cluster serves clients; returns a line for the user (`leader
    /// elected: n3`, `all 5 nodes ready`). `timeout` is the driver's default; a database
    /// that knows its own (a description's `ready.timeout`) uses that instead.
    fn await_ready(&self, timeout: Duration) -> BoxFuture<'_, anyhow::Result<String>>;
    /// The node that currently leads, when the database can tell.
    fn primary(&self) -> BoxFuture<'_, Option<String>>;
    /// A node's Raft state, for the scripted faults; only the bundled cluster has one.
    fn raft_view<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<RaftView>> {
        Box::pin(async move {
            Err(anyhow!(
                "{} does not report its Raft state (node {node})",
                self.name()
            ))
        })
    }
    /// Sets a node's clock; only databases whose clock splitbrain controls can.
    fn set_clock<'a>(
        &'a self,
        node: &'a str,
        _offset_ms: i64,
        _rate: f64,
    ) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            Err(anyhow!(
                "splitbrain cannot set the clock of {} node {node}",
                self.name()
            ))
        })
    }
    /// Puts a node's clock back to real time (nothing to do where clocks are not set).
    fn reset_clock<'a>(&'a self, _node: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// Compares the nodes' final states, polling for up to `wait`; `None` when the
    /// database offers no digest to compare (the report says so).
    fn convergence(&self, wait: Duration) -> BoxFuture<'_, Option<Convergence>>;
    /// A client for one logical process, bound to `node`.
    fn client(
        &self,
        node: &str,
        purpose: ClientPurpose,
        op_timeout: Duration,
    ) -> anyhow::Result<Box<dyn Client>>;
    /// Makes sure a client can be opened against `node` before the workload starts (an
    /// adapter's handshake); an error aborts the run with the client's own message.
    fn check_client<'a>(&'a self, _node: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// What the clients want said in the report's notes (an adapter's error count).
    fn client_notes(&self) -> Vec<String> {
        Vec::new()
    }
    /// The files whose middle was cut to keep them bounded (nodes' and adapters' output,
    /// see `splitbrain_workloads::child::OutputCap`), with the bytes cut; read after
    /// teardown, when every copier has finished.
    fn output_cuts(&self) -> Vec<(PathBuf, u64)> {
        self.runner().output_cuts()
    }
    /// The nodes' log files (absolute paths; some may not exist).
    fn log_files(&self) -> Vec<PathBuf>;
    /// Lines of the nodes' logs that match the database's crash patterns; `None` when
    /// the database names none.
    fn crash_scan(&self) -> Option<CrashScan> {
        None
    }
}

/// What the crash-pattern scan of the nodes' logs found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrashScan {
    pub lines: Vec<CrashLine>,
    /// Logs not read (outside the node's folder, a link, not a regular file) or read in
    /// part (too large): for the run's notes.
    pub notes: Vec<String>,
}

/// A log line that matched one of the database's crash patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashLine {
    /// The file, relative to the run folder.
    pub file: String,
    /// 1-based; `None` past the unread middle of a log too large to scan whole.
    pub line: Option<usize>,
    pub text: String,
    pub pattern: String,
}

/// Resumes paused nodes and restarts dead ones; returns what could not be healed.
pub fn heal_processes(db: &dyn Database) -> Vec<String> {
    let mut problems = Vec::new();
    for node in db.nodes() {
        if let Err(e) = db.resume(&node) {
            problems.push(format!("resuming {node}: {e:#}"));
        }
        if !db.is_running(&node) {
            db.forget_exited(&node);
            if let Err(e) = db.start(&node) {
                problems.push(format!("restarting {node}: {e:#}"));
            }
        }
    }
    problems
}

/// The nemesis's handle on a database.
pub struct Control<'a>(pub &'a dyn Database);

impl ClusterControl for Control<'_> {
    type Error = anyhow::Error;

    async fn kill(&self, node: &str) -> anyhow::Result<()> {
        self.0.kill(node)
    }

    async fn restart(&self, node: &str) -> anyhow::Result<()> {
        if self.0.is_running(node) {
            return Ok(());
        }
        self.0.forget_exited(node);
        self.0.start(node)
    }

    async fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.0.pause(node)
    }

    async fn resume(&self, node: &str) -> anyhow::Result<()> {
        self.0.resume(node)
    }

    async fn leader(&self) -> Option<String> {
        self.0.primary().await
    }

    async fn raft_view(&self, node: &str) -> anyhow::Result<RaftView> {
        self.0.raft_view(node).await
    }

    async fn set_clock(&self, node: &str, offset_ms: i64, rate: f64) -> anyhow::Result<()> {
        self.0.set_clock(node, offset_ms, rate).await
    }

    async fn reset_clock(&self, node: &str) -> anyhow::Result<()> {
        self.0.reset_clock(node).await
    }
}
