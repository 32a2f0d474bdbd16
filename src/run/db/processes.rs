//! The node processes of one run, whatever the database: spawned by the harness (tied to
//! it with `PR_SET_PDEATHSIG`), each in its own process group, signalled only by the
//! group recorded at spawn, and reaped.
//!
//! A node's command may be a wrapper that does not `exec` its server (`sh -c "server;
//! echo exited"`): signalling the started pid alone would leave the server running (a
//! kill that kills nothing, a restart that finds its port taken). So kills, pauses,
//! resumes and stops go to the whole group, and a kill returns only once no process of
//! the group remains (or says which remain).
//!
//! How a node is started is a [`NodeRunner`]: [`LocalRunner`] runs it on this machine
//! (placed in its network namespace by a wrapper); `run::hosts::runner::RemoteRunner`
//! starts it on a host over SSH. Databases build a [`Launch`] and never spawn processes themselves.
//!
//! Every live node has a pid file (`nodes/<n>/pid`: the pid, the process's start time
//! in clock ticks since boot, and its process group id) so that `splitbrain clean` can
//! stop the nodes of a harness that was itself SIGKILLed without matching processes by
//! name, and without signalling an unrelated process that reused the pid.

use anyhow::{anyhow, Context};
use nix::sys::signal::Signal;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::node::launch::spawn_tied;
use crate::run::contain;
use splitbrain_workloads::child::{self, Capture, OutputCap, OutputCuts};

/// How long a kill waits for the last process of a node's group to disappear. SIGKILL
/// takes effect at once unless a process is stuck in the kernel (uninterruptible I/O).
const KILL_WAIT: Duration = Duration::from_secs(5);

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
    /// SIGKILL, and wait until it is gone; an error says what could not be killed
    /// (processes of the node that outlived a bounded wait).
    fn kill(&self, node: &str) -> anyhow::Result<()>;
    fn pause(&self, node: &str) -> anyhow::Result<()>;
    fn resume(&self, node: &str) -> anyhow::Result<()>;
    fn is_paused(&self, node: &str) -> bool;
    /// SIGCONT + SIGTERM to every node, SIGKILL after `grace`.
    fn stop_all(&self, grace: Duration);
    /// The last line a node wrote to its stderr (for "exited at once" errors).
    fn last_words(&self, files: &NodeFiles) -> String;
    /// The output files whose middle was cut, and how many bytes.
    fn output_cuts(&self) -> Vec<(PathBuf, u64)> {
        Vec::new()
    }
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

    fn kill(&self, node: &str) -> anyhow::Result<()> {
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

    fn output_cuts(&self) -> Vec<(PathBuf, u64)> {
        self.processes.output_cuts()
    }
}

/// The pid file's name inside a node's folder.
pub const PID_FILE: &str = "pid";

/// How long the end of a node's output may take to be written after the node is gone
/// (its copier writes the kept tail). Longer only when a process that left the node's
/// group still holds the pipe; its output then ends up in the file later.
const CAPTURE_WAIT: Duration = Duration::from_secs(2);

/// One running node: its process (the leader of its group), pid file and output copiers.
struct Running {
    child: Child,
    pid_file: PathBuf,
    captures: [Capture; 2],
}

/// The running node processes, by node name.
#[derive(Default)]
pub struct ProcessSet {
    children: Mutex<BTreeMap<String, Running>>,
    paused: Mutex<BTreeSet<String>>,
    /// How much of each output stream is kept.
    cap: OutputCap,
    /// What was cut from the output files.
    cuts: OutputCuts,
}

/// The start time of `pid` (field 22 of `/proc/PID/stat`, clock ticks since boot), which
/// tells a recorded process from a later one that reused its pid.
pub fn start_time(pid: u32) -> Option<u64> {
    contain::stat(i32::try_from(pid).ok()?).map(|s| s.start)
}

impl ProcessSet {
    /// A set that keeps `cap` of each output stream (the default is
    /// [`OutputCap::default`]).
    #[cfg(test)]
    pub fn with_cap(cap: OutputCap) -> ProcessSet {
        ProcessSet {
            children: Mutex::default(),
            paused: Mutex::default(),
            cap,
            cuts: OutputCuts::default(),
        }
    }

    fn lock_children(&self) -> MutexGuard<'_, BTreeMap<String, Running>> {
        self.children.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The output files whose middle was cut, and how many bytes.
    pub fn output_cuts(&self) -> Vec<(PathBuf, u64)> {
        self.cuts.cuts()
    }

    fn lock_paused(&self) -> MutexGuard<'_, BTreeSet<String>> {
        self.paused.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Spawns `cmd` as `node` (which must not be running), its output to `files`.
    pub fn spawn(&self, node: &str, mut cmd: Command, files: &NodeFiles) -> anyhow::Result<()> {
        if self.is_running(node) {
            anyhow::bail!("node {node} is already running");
        }
        // Through pipes and copiers, not the files themselves: a copier bounds what is
        // kept (a runaway logger would otherwise fill the disk).
        let (out_read, out_write) = child::pipe().context("creating a pipe")?;
        let (err_read, err_write) = child::pipe().context("creating a pipe")?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out_write))
            .stderr(Stdio::from(err_write));
        // Its own process group (pgid = its pid), which every signal below addresses.
        cmd.process_group(0);
        let program = cmd.get_program().to_string_lossy().into_owned();
        // `cmd` (holding the pipes' write ends) is consumed here, so the copiers see the
        // end of the streams when the node's processes are gone.
        let child = spawn_tied(cmd).with_context(|| format!("starting node {node} ({program})"))?;
        let capture = |from, to: &Path| {
            child::capture(from, to, self.cap, &self.cuts)
                .with_context(|| format!("copying node {node}'s output to {}", to.display()))
        };
        let captures = match (
            capture(out_read, &files.stdout),
            capture(err_read, &files.stderr),
        ) {
            (Ok(out), Ok(err)) => [out, err],
            (Err(e), _) | (_, Err(e)) => {
                let mut child = child;
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let pid = child.id();
        let record = format!("{pid} {} {pid}\n", start_time(pid).unwrap_or(0));
        if let Err(e) = std::fs::write(&files.pid, record) {
            tracing::warn!(node, "writing {}: {e}", files.pid.display());
        }
        self.lock_children().insert(
            node.to_string(),
            Running {
                child,
                pid_file: files.pid.clone(),
                captures,
            },
        );
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
            Some(r) => matches!(r.child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Forgets a node that exited on its own (reaping it), so it can be started again.
    /// What its group still holds (a server its wrapper started) is killed: the node is
    /// dead, and a leftover would hold its ports and data.
    pub fn forget_exited(&self, node: &str) {
        let mut children = self.lock_children();
        let exited = children
            .get_mut(node)
            .is_some_and(|r| !matches!(r.child.try_wait(), Ok(None)));
        let entry = if exited { children.remove(node) } else { None };
        drop(children);
        if let Some(running) = entry {
            if let Err(e) = Self::finish(node, running) {
                tracing::warn!("{e:#}");
            }
        }
    }

    /// Kills what remains of a node's group, reaps the node, waits for its output to be
    /// written and removes its pid file; an error names the survivors.
    fn finish(node: &str, mut running: Running) -> anyhow::Result<()> {
        let pgid = group_of(&running.child);
        let _ = contain::signal_group(pgid, Signal::SIGKILL);
        let _ = running.child.kill();
        let _ = running.child.wait();
        let left = contain::kill_group_and_wait(pgid, KILL_WAIT);
        for capture in &running.captures {
            capture.wait(CAPTURE_WAIT);
        }
        let _ = std::fs::remove_file(&running.pid_file);
        if left.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(
                "node {node}: processes {left:?} of its group survived SIGKILL for {KILL_WAIT:?}"
            ))
        }
    }

    fn signal(&self, node: &str, sig: Signal) -> anyhow::Result<()> {
        let children = self.lock_children();
        let running = children
            .get(node)
            .ok_or_else(|| anyhow!("node {node} is not running"))?;
        contain::signal_group(group_of(&running.child), sig)
            .map_err(|e| anyhow!("sending {sig} to node {node}'s process group: {e}"))
    }

    /// SIGKILLs a node's process group, reaps the node and waits (bounded) until no
    /// process of its group remains. Killing a node that is not running is a no-op; an
    /// error names the processes that survived.
    pub fn kill(&self, node: &str) -> anyhow::Result<()> {
        let entry = self.lock_children().remove(node);
        self.lock_paused().remove(node);
        match entry {
            Some(running) => Self::finish(node, running),
            None => Ok(()),
        }
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

    /// Stops every node's process group: SIGCONT (a stopped process cannot act on
    /// SIGTERM), SIGTERM, then SIGKILL to what remains after `grace`. Always reaps, and
    /// logs the processes that survived even SIGKILL.
    pub fn stop_all(&self, grace: Duration) {
        let mut children = std::mem::take(&mut *self.lock_children());
        for r in children.values() {
            let _ = contain::signal_group(group_of(&r.child), Signal::SIGCONT);
            let _ = contain::signal_group(group_of(&r.child), Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        for r in children.values_mut() {
            // Reaping the leader first, so that its zombie does not keep the group
            // alive; the rest of its group has the same deadline.
            while matches!(r.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            contain::wait_group_gone(
                group_of(&r.child),
                deadline.saturating_duration_since(Instant::now()),
            );
        }
        Self::kill_all(children);
        self.lock_paused().clear();
    }

    /// SIGKILLs every group of `children`, reaps them, removes their pid files.
    fn kill_all(children: BTreeMap<String, Running>) {
        for r in children.values() {
            let _ = contain::signal_group(group_of(&r.child), Signal::SIGKILL);
        }
        for (node, running) in children {
            if let Err(e) = Self::finish(&node, running) {
                tracing::warn!("{e:#}");
            }
        }
    }
}

/// The process group a node was started in: its own pid (`process_group(0)`).
fn group_of(child: &Child) -> i32 {
    i32::try_from(child.id()).unwrap_or(0)
}

impl Drop for ProcessSet {
    fn drop(&mut self) {
        // The last line of defence (a panic, an early return): no node outlives us.
        let children = std::mem::take(&mut *self.lock_children());
        Self::kill_all(children);
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
        set.kill("n1").unwrap();
        assert!(!set.is_running("n1") && !set.is_paused("n1"));
        assert!(!files.pid.exists());
        assert_eq!(start_time(pid), None, "the process is gone");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod group_tests {
    use super::*;
    use crate::run::contain;

    /// A node whose command is a wrapper that does not `exec` its server: `sh` starts a
    /// long `sleep` (the "server"), writes its pid, and waits for it.
    fn wrapper_node(dir: &Path) -> (ProcessSet, NodeFiles, i32) {
        std::fs::create_dir_all(dir).unwrap();
        let files = NodeFiles::in_dir(dir);
        let child_pid = dir.join("child.pid");
        let set = ProcessSet::default();
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!(
            "sleep 60 & echo $! > {}; wait; echo exited",
            child_pid.display()
        ));
        set.spawn("n1", cmd, &files).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let pid = loop {
            if let Some(pid) = std::fs::read_to_string(&child_pid)
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                break pid;
            }
            assert!(
                Instant::now() < deadline,
                "the wrapper never started its child"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        (set, files, pid)
    }

    fn state(pid: i32) -> Option<char> {
        contain::stat(pid).map(|s| s.state)
    }

    /// Gone, or at most a zombie on its way to being reaped by its new parent.
    fn dead(pid: i32) -> bool {
        matches!(state(pid), None | Some('Z'))
    }

    #[test]
    fn kill_and_pause_reach_the_child_of_a_wrapper_that_does_not_exec() {
        let dir = std::env::temp_dir().join(format!("sb-procs-group-{}", std::process::id()));
        let (set, files, server) = wrapper_node(&dir);
        set.pause("n1").unwrap();
        // SIGSTOP is delivered asynchronously: the state turns to T soon after.
        let deadline = Instant::now() + Duration::from_secs(2);
        while state(server) != Some('T') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(state(server), Some('T'), "the server was not paused");
        set.resume("n1").unwrap();
        let deadline = Instant::now() + Duration::from_secs(2);
        while state(server) == Some('T') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_ne!(state(server), Some('T'), "the server was not resumed");
        set.kill("n1").unwrap();
        assert!(
            dead(server),
            "the server survived the kill: {:?}",
            state(server)
        );
        assert!(!files.pid.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stop_all_and_drop_reach_the_child_of_a_wrapper_that_does_not_exec() {
        let dir = std::env::temp_dir().join(format!("sb-procs-stop-{}", std::process::id()));
        let (set, _, server) = wrapper_node(&dir.join("a"));
        set.pause("n1").unwrap();
        set.stop_all(Duration::from_secs(2));
        assert!(
            dead(server),
            "stop_all left the server: {:?}",
            state(server)
        );
        let (set, _, server) = wrapper_node(&dir.join("b"));
        drop(set);
        assert!(dead(server), "drop left the server: {:?}", state(server));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_pid_file_records_the_group() {
        let dir = std::env::temp_dir().join(format!("sb-procs-pgid-{}", std::process::id()));
        let (set, files, server) = wrapper_node(&dir);
        let recorded = std::fs::read_to_string(&files.pid).unwrap();
        let fields: Vec<i32> = recorded
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        assert_eq!(fields.len(), 3, "{recorded}");
        assert_eq!(fields[2], fields[0], "the node leads its own group");
        assert_eq!(contain::stat(server).map(|s| s.pgrp), Some(fields[2]));
        set.kill("n1").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

#[cfg(test)]
mod output_tests {
    use super::*;

    #[test]
    fn a_node_that_writes_far_more_than_the_cap_leaves_head_marker_and_tail() {
        let dir = std::env::temp_dir().join(format!("sb-procs-output-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = NodeFiles::in_dir(&dir);
        let cap = OutputCap {
            head: 64 << 10,
            tail: 64 << 10,
        };
        let set = ProcessSet::with_cap(cap);
        // 20 MB of x on stdout between a first and a last line; a little on stderr.
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(
            "echo FIRST; head -c 20000000 /dev/zero | tr '\\0' x; echo; echo LAST; echo oops >&2",
        );
        set.spawn("n1", cmd, &files).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while set.is_running("n1") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        set.forget_exited("n1");
        let out = std::fs::read(&files.stdout).unwrap();
        let limit = cap.head + cap.tail + 200;
        assert!(out.len() <= limit, "{} bytes kept", out.len());
        let text = String::from_utf8_lossy(&out);
        assert!(text.starts_with("FIRST\nxxx"), "{}", &text[..20]);
        assert!(
            text.ends_with("xxx\nLAST\n"),
            "{}",
            &text[text.len() - 20..]
        );
        let cut = 6 + 20_000_000 + 1 + 5 - cap.head - cap.tail;
        assert!(
            text.contains(&format!("\n… {cut} bytes cut by splitbrain")),
            "no marker"
        );
        assert_eq!(std::fs::read_to_string(&files.stderr).unwrap(), "oops\n");
        assert_eq!(set.output_cuts(), vec![(files.stdout.clone(), cut as u64)]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn output_notes_name_the_file_and_the_bytes() {
        let run = Path::new("/store/t/run1");
        let notes = crate::run::output_notes(&[(run.join("nodes/n1/stdout.log"), 1234)], run);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("output cut: nodes/n1/stdout.log lost 1234 bytes"),
            "{}",
            notes[0]
        );
    }
}
