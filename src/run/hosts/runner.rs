//! [`RemoteRunner`]: node processes on SSH hosts, one host per node.
//!
//! A node is started detached (`setsid`, stdin from `/dev/null`, output appended to files
//! in its remote folder) so the SSH command returns at once and the node outlives it. Its
//! pid and start time go to a pid file beside its logs, which `splitbrain clean --hosts`
//! reads; kill, pause and resume signal that pid only after checking the start time, so
//! a reused pid is never signalled (hosts may share a pid space, as the lab's do).

use anyhow::{anyhow, bail};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::{block_on, sq, Hosts};
use crate::run::db::processes::{Launch, NodeFiles, NodeRunner};

/// A shell function: `alive PID START` succeeds while that very process runs (not a
/// zombie, same start time). Field 3 of `/proc/PID/stat` is the state, 22 the start time;
/// the command name (field 2) may hold spaces, so fields are counted after the last ')'.
pub const ALIVE_FN: &str = "alive() { set -- \"$2\" $(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -d' ' -f1,20); [ -n \"$2\" ] && [ \"$2\" != Z ] && [ \"$2\" != X ] && [ \"$3\" = \"$1\" ]; }\n";

/// A shell function: `kill_group PID START` stops the node recorded as PID (started at
/// START) for good.
pub const KILL_GROUP_FN: &str = "kill_group() { kill -CONT $1; kill -KILL $1; }\n";

/// A started node: its pid and start time (clock ticks since boot) on its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Started {
    pid: u32,
    start: u64,
}

/// Nodes as processes on remote hosts (the host named like the node).
pub struct RemoteRunner {
    hosts: Arc<Hosts>,
    /// Host → the run's folder there: a working directory outside it is replaced by the
    /// node's own folder, so nothing is written elsewhere on a host.
    roots: BTreeMap<String, String>,
    started: Mutex<BTreeMap<String, (Started, String)>>,
    paused: Mutex<std::collections::BTreeSet<String>>,
}

impl RemoteRunner {
    pub fn new(hosts: Arc<Hosts>, roots: BTreeMap<String, String>) -> RemoteRunner {
        RemoteRunner {
            hosts,
            roots,
            started: Mutex::default(),
            paused: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, (Started, String)>> {
        self.started.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_paused(&self) -> MutexGuard<'_, std::collections::BTreeSet<String>> {
        self.paused.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn run(&self, node: &str, script: String) -> anyhow::Result<String> {
        block_on(self.hosts.run(node, &script))
    }

    /// Sends `signals` (in order) to a node's recorded process if it is still that process.
    fn signal(&self, node: &str, signals: &[&str]) -> anyhow::Result<()> {
        let Some((s, _)) = self.lock().get(node).cloned() else {
            bail!("node {node} is not running");
        };
        let mut script = String::from(ALIVE_FN);
        script.push_str(&format!("alive {} {} || exit 0\n", s.pid, s.start));
        for sig in signals {
            script.push_str(&format!("kill -{sig} {} 2>/dev/null\n", s.pid));
        }
        script.push_str("exit 0\n");
        self.run(node, script).map(drop)
    }

    fn stop_script(s: Started, pid_file: &str, grace: Duration) -> String {
        let steps = (grace.as_millis() / 50).max(1);
        format!(
            "{ALIVE_FN}p={pid}; st={start}\n\
             if alive $p $st; then kill -CONT $p; kill -TERM $p; i=0\n\
             while alive $p $st && [ $i -lt {steps} ]; do sleep 0.05; i=$((i+1)); done\n\
             alive $p $st && kill -KILL $p; i=0\n\
             while alive $p $st && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; fi\n\
             rm -f {pf}\n",
            pid = s.pid,
            start = s.start,
            pf = sq(pid_file)
        )
    }
}

impl NodeRunner for RemoteRunner {
    fn spawn(&self, node: &str, launch: &Launch, files: &NodeFiles) -> anyhow::Result<()> {
        if self.is_running(node) {
            bail!("node {node} is already running");
        }
        if launch.argv.is_empty() {
            bail!("node {node}: the command is empty");
        }
        let text = |p: &Path| p.to_string_lossy().into_owned();
        let node_dir = files
            .pid
            .parent()
            .map(text)
            .ok_or_else(|| anyhow!("node {node}: the pid file has no folder"))?;
        let root = self
            .roots
            .get(node)
            .ok_or_else(|| anyhow!("node {node}: no run folder on its host"))?;
        let cwd = text(&launch.cwd);
        let cwd = if Path::new(&cwd).starts_with(root) {
            cwd
        } else {
            node_dir.clone()
        };
        let env: String = launch
            .env
            .iter()
            .map(|(k, v)| format!(" {}", sq(&format!("{k}={v}"))))
            .collect();
        let argv: Vec<String> = launch.argv.iter().map(|a| sq(a)).collect();
        let script = format!(
            "set -e\nmkdir -p {dir} {cwd}\ncd {cwd}\n\
             setsid env{env} {argv} </dev/null >>{out} 2>>{err} &\n\
             pid=$!\n\
             st=$(sed 's/.*) //' /proc/$pid/stat | cut -d' ' -f20)\n\
             echo \"$pid $st\" > {pf}\necho \"$pid $st\"\n",
            dir = sq(&node_dir),
            cwd = sq(&cwd),
            argv = argv.join(" "),
            out = sq(&text(&files.stdout)),
            err = sq(&text(&files.stderr)),
            pf = sq(&text(&files.pid)),
        );
        let out = self
            .run(node, script)
            .map_err(|e| anyhow!("starting node {node}: {e:#}"))?;
        let mut fields = out.split_whitespace().map(str::parse::<u64>);
        let (Some(Ok(pid)), Some(Ok(start))) = (fields.next(), fields.next()) else {
            bail!("starting node {node}: the host did not report a pid ({out:?})");
        };
        let pid = u32::try_from(pid).map_err(|_| anyhow!("node {node}: pid {pid}"))?;
        self.lock()
            .insert(node.to_string(), (Started { pid, start }, text(&files.pid)));
        Ok(())
    }

    fn make_dir(&self, node: &str, dir: &Path) -> anyhow::Result<()> {
        let script = format!("mkdir -p {}", sq(&dir.to_string_lossy()));
        self.run(node, script).map(drop)
    }

    fn remove_path(&self, node: &str, path: &Path) -> anyhow::Result<()> {
        let script = format!("rm -rf {}", sq(&path.to_string_lossy()));
        self.run(node, script).map(drop)
    }

    fn is_running(&self, node: &str) -> bool {
        let Some((s, _)) = self.lock().get(node).cloned() else {
            return false;
        };
        let script = format!(
            "{ALIVE_FN}alive {} {} && echo yes || echo no",
            s.pid, s.start
        );
        // An unreachable host counts as running: the node may well be.
        self.run(node, script).map_or(true, |o| o.trim() == "yes")
    }

    fn forget_exited(&self, node: &str) {
        if self.lock().contains_key(node) && !self.is_running(node) {
            if let Some((_, pid_file)) = self.lock().remove(node) {
                let _ = self.run(node, format!("rm -f {}", sq(&pid_file)));
            }
        }
    }

    fn kill(&self, node: &str) {
        let entry = self.lock().remove(node);
        if let Some((s, pid_file)) = entry {
            let script = Self::stop_script(s, &pid_file, Duration::ZERO)
                .replace("kill -TERM $p", "kill -KILL $p");
            if let Err(e) = self.run(node, script) {
                tracing::warn!(node, "killing: {e:#}");
            }
        }
        self.lock_paused().remove(node);
    }

    fn pause(&self, node: &str) -> anyhow::Result<()> {
        self.signal(node, &["STOP"])?;
        self.lock_paused().insert(node.to_string());
        Ok(())
    }

    fn resume(&self, node: &str) -> anyhow::Result<()> {
        if self.lock().contains_key(node) {
            self.signal(node, &["CONT"])?;
        }
        self.lock_paused().remove(node);
        Ok(())
    }

    fn is_paused(&self, node: &str) -> bool {
        self.lock_paused().contains(node)
    }

    fn stop_all(&self, grace: Duration) {
        let started = std::mem::take(&mut *self.lock());
        let scripts = started
            .iter()
            .map(|(node, (s, pf))| (node.clone(), Self::stop_script(*s, pf, grace)))
            .collect();
        for (node, result) in block_on(self.hosts.run_each(scripts)) {
            if let Err(e) = result {
                tracing::warn!(node, "stopping: {e:#}");
            }
        }
        self.lock_paused().clear();
    }

    fn last_words(&self, files: &NodeFiles) -> String {
        let Some(node) = files
            .pid
            .parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
        else {
            return String::new();
        };
        let script = format!(
            "tail -n 20 {} 2>/dev/null || true",
            sq(&files.stderr.to_string_lossy())
        );
        self.run(&node, script)
            .map(|s| {
                s.lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or_default()
                    .to_string()
            })
            .unwrap_or_default()
    }
}

