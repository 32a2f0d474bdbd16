//! The node processes of one run, whatever the database: spawned by the harness (tied to
//! it with `PR_SET_PDEATHSIG`), signalled only by the pid recorded at spawn, and reaped.
//!
//! How a node is started is a [`NodeRunner`]: [`LocalRunner`] runs it on this machine
//! (placed in its network namespace by a wrapper); `run::hosts::runner::RemoteRunner`
//! starts it on a host over SSH. Databases build a [`Launch`] and never spawn processes themselves.
//!
//! Every live node has a pid file (`nodes/<n>/pid`: the pid and the process's start time
//! in clock ticks since boot) so that `splitbrain clean` can stop the nodes of a harness
//! that was itself SIGKILLed without matching processes by name, and without signalling
//! an unrelated process that reused the pid.

use anyhow::{anyhow, Context};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::node::launch::spawn_tied;

/// Where one node's process writes and records itself.
#[derive(Debug, Clone)]
pub struct NodeFiles {
    /// Its standard output (appended across restarts).
    pub stdout: PathBuf,
    /// Its standard error (appended across restarts).
    pub stderr: PathBuf,
    /// The pid file `splitbrain clean` reads.
    pub pid: PathBuf,
}

impl NodeFiles {
    /// The usual layout inside a node's folder of the run store.
    pub fn in_dir(node_dir: &Path) -> NodeFiles {
        NodeFiles {
            stdout: node_dir.join("stdout.log"),
            stderr: node_dir.join("stderr.log"),
            pid: node_dir.join(PID_FILE),
        }
    }
}

/// What to run for one node: its command line, extra environment and working directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program first.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
}

impl Launch {
    /// The launch of a prepared command (program, arguments, set variables, directory).
    pub fn of(cmd: &Command, default_cwd: &Path) -> Launch {
        let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
        Launch {
            argv: std::iter::once(cmd.get_program())
                .chain(cmd.get_args())
                .map(text)
                .collect(),
            env: cmd
                .get_envs()
                .filter_map(|(k, v)| Some((text(k), text(v?))))
                .collect(),
            cwd: cmd
                .get_current_dir()
                .map_or_else(|| default_cwd.to_path_buf(), Path::to_path_buf),
        }
    }
}

/// Starts, signals and stops the node processes of one run, by the pid recorded at
/// start. All methods are idempotent as [`super::Database`] requires.
pub trait NodeRunner: Send + Sync {
    /// Starts `node` (which must not be running), its output to `files`.
    fn spawn(&self, node: &str, launch: &Launch, files: &NodeFiles) -> anyhow::Result<()>;
    /// Creates a folder a node needs (its data directory) where the node runs.
    fn make_dir(&self, _node: &str, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
    }
    /// Removes a file or folder (a node's data) inside the node's folder `root` where
    /// the node runs, never through a symbolic link (one on the way is an error; one
    /// as `path` itself is removed, not its target); a missing one is no error.
    fn remove_path(&self, _node: &str, root: &Path, path: &Path) -> anyhow::Result<()> {
        splitbrain_db::confine::remove_inside(root, path)
            .map(drop)
            .with_context(|| format!("removing {}", path.display()))
    }
    fn is_running(&self, node: &str) -> bool;
    /// Forgets (and reaps) a node that exited on its own.
    fn forget_exited(&self, node: &str);
    /// SIGKILL, and wait until it is gone.
    fn kill(&self, node: &str);
    fn pause(&self, node: &str) -> anyhow::Result<()>;
    fn resume(&self, node: &str) -> anyhow::Result<()>;
    fn is_paused(&self, node: &str) -> bool;
    /// SIGCONT + SIGTERM to every node, SIGKILL after `grace`.
    fn stop_all(&self, grace: Duration);
    /// The last line a node wrote to its stderr (for "exited at once" errors).
    fn last_words(&self, files: &NodeFiles) -> String;
}

/// Nodes as processes of this machine, each command passed through `wrap` (into its
/// network namespace) when given.
pub struct LocalRunner {
    processes: ProcessSet,
    wrap: Option<super::bundled::CommandWrapper>,
}

impl LocalRunner {
    pub fn new(wrap: Option<super::bundled::CommandWrapper>) -> LocalRunner {
        LocalRunner {
            processes: ProcessSet::default(),
            wrap,
        }
    }
}

impl NodeRunner for LocalRunner {
    fn spawn(&self, node: &str, launch: &Launch, files: &NodeFiles) -> anyhow::Result<()> {
        let (program, args) = launch
            .argv
            .split_first()
            .ok_or_else(|| anyhow!("node {node}: the command is empty"))?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&launch.cwd);
        if let Some(wrap) = &self.wrap {
            cmd = wrap(node, cmd)?;
        }
        self.processes.spawn(node, cmd, files)
    }

    fn is_running(&self, node: &str) -> bool {
        self.processes.is_running(node)
    }

    fn forget_exited(&self, node: &str) {
        self.processes.forget_exited(node)
    }

    fn kill(&self, node: &str) {
        self.processes.kill(node)
    }

    fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.processes.pause(node)
    }

    fn resume(&self, node: &str) -> anyhow::Result<()> {
        self.processes.resume(node)
    }

    fn is_paused(&self, node: &str) -> bool {
        self.processes.is_paused(node)
    }

    fn stop_all(&self, grace: Duration) {
        self.processes.stop_all(grace)
    }

    fn last_words(&self, files: &NodeFiles) -> String {
        ProcessSet::last_words(files)
    }
}

/// The pid file's name inside a node's folder.
pub const PID_FILE: &str = "pid";

/// The running node processes, by node name.
#[derive(Default)]
pub struct ProcessSet {
    children: Mutex<BTreeMap<String, (Child, PathBuf)>>,
    paused: Mutex<BTreeSet<String>>,
}

fn open_append(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

/// The start time of `pid` (field 22 of `/proc/PID/stat`, clock ticks since boot), which
/// tells a recorded process from a later one that reused its pid.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields after it
    // start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl ProcessSet {
    fn lock_children(&self) -> MutexGuard<'_, BTreeMap<String, (Child, PathBuf)>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_paused(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.paused.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns `cmd` as `node` (which must not be running), its output to `files`.
    pub fn spawn(&self, node: &str, mut cmd: Command, files: &NodeFiles) -> anyhow::Result<()> {
        if self.is_running(node) {
            anyhow::bail!("node {node} is already running");
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(open_append(&files.stdout)?))
            .stderr(Stdio::from(open_append(&files.stderr)?));
        let program = cmd.get_program().to_string_lossy().into_owned();
        let child = spawn_tied(cmd).with_context(|| format!("starting node {node} ({program})"))?;
        let pid = child.id();
        let record = format!("{pid} {}\n", start_time(pid).unwrap_or(0));
        if let Err(e) = std::fs::write(&files.pid, record) {
            tracing::warn!(node, "writing {}: {e}", files.pid.display());
        }
        self.lock_children()
            .insert(node.to_string(), (child, files.pid.clone()));
        Ok(())
    }

    /// The last line a node wrote to `stderr` (for "exited at once" errors).
    pub fn last_words(files: &NodeFiles) -> String {
        std::fs::read_to_string(&files.stderr)
            .ok()
            .and_then(|s| {
                s.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }

    pub fn is_running(&self, node: &str) -> bool {
        let mut children = self.lock_children();
        match children.get_mut(node) {
            Some((child, _)) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Forgets a node that exited on its own (reaping it), so it can be started again.
    pub fn forget_exited(&self, node: &str) {
        let mut children = self.lock_children();
        if let Some((child, _)) = children.get_mut(node) {
            if !matches!(child.try_wait(), Ok(None)) {
                if let Some((_, pid_file)) = children.remove(node) {
                    let _ = std::fs::remove_file(pid_file);
                }
            }
        }
    }

    fn signal(&self, node: &str, sig: Signal) -> anyhow::Result<()> {
        let children = self.lock_children();
        let (child, _) = children
            .get(node)
            .ok_or_else(|| anyhow!("node {node} is not running"))?;
        match signal::kill(Pid::from_raw(child.id() as i32), sig) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(anyhow!("sending {sig} to node {node}: {e}")),
        }
    }

    /// SIGKILLs a node and reaps it. Killing a node that is not running is a no-op.
    pub fn kill(&self, node: &str) {
        let entry = self.lock_children().remove(node);
        if let Some((mut child, pid_file)) = entry {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(pid_file);
        }
        self.lock_paused().remove(node);
    }

    pub fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.signal(node, Signal::SIGSTOP)?;
        self.lock_paused().insert(node.to_string());
        Ok(())
    }

    pub fn resume(&self, node: &str) -> anyhow::Result<()> {
        if self.is_running(node) {
            self.signal(node, Signal::SIGCONT)?;
        }
        self.lock_paused().remove(node);
        Ok(())
    }

    pub fn is_paused(&self, node: &str) -> bool {
        self.lock_paused().contains(node)
    }

    /// Stops every node: SIGCONT (a stopped process cannot act on SIGTERM), SIGTERM,
    /// then SIGKILL after `grace`. Always reaps.
    pub fn stop_all(&self, grace: Duration) {
        let mut children = std::mem::take(&mut *self.lock_children());
        for (child, _) in children.values() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = signal::kill(pid, Signal::SIGCONT);
            let _ = signal::kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline
            && children
                .values_mut()
                .any(|(c, _)| matches!(c.try_wait(), Ok(None)))
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        for (child, pid_file) in children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&*pid_file);
        }
        self.lock_paused().clear();
    }
}

impl Drop for ProcessSet {
    fn drop(&mut self) {
        // The last line of defence (a panic, an early return): no node outlives us.
        let mut children = std::mem::take(&mut *self.lock_children());
        for (child, pid_file) in children.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&*pid_file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_reads_our_own_process() {
        assert!(start_time(std::process::id()).is_some());
        assert_eq!(start_time(u32::MAX), None);
    }

    #[test]
    fn a_killed_node_leaves_no_pid_file() {
        let dir = std::env::temp_dir().join(format!("sb-procs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = NodeFiles::in_dir(&dir);
        let set = ProcessSet::default();
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        set.spawn("n1", cmd, &files).unwrap();
        assert!(set.is_running("n1"));
        let recorded = std::fs::read_to_string(&files.pid).unwrap();
        let pid: u32 = recorded.split_whitespace().next().unwrap().parse().unwrap();
        assert_eq!(
            recorded
                .split_whitespace()
                .nth(1)
                .unwrap()
                .parse::<u64>()
                .ok(),
            start_time(pid)
        );
        set.pause("n1").unwrap();
        assert!(set.is_paused("n1"));
        set.kill("n1");
        assert!(!set.is_running("n1") && !set.is_paused("n1"));
        assert!(!files.pid.exists());
        assert_eq!(start_time(pid), None, "the process is gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
