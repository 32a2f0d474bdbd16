//! [`RemoteRunner`]: node processes on SSH hosts, one host per node.
//!
//! A node is started detached (`setsid`, stdin from `/dev/null`, output appended to files
//! in its remote folder) so the SSH command returns at once and the node outlives it. Its
//! pid and start time go to a pid file beside its logs, which `splitbrain clean --hosts`
//! reads.
//!
//! A node is its whole process group, not just that pid: a start script that runs its
//! server without `exec` (`sh -c "server; echo exited"`) has the server as a child, and
//! signalling only the script would leave the server running through a kill and a pause.
//! `setsid` makes the started process the leader of a new session and process group
//! whose id is its pid (checked at start), so kill, pause and resume signal the group
//! (`kill -SIG -PID`), and a kill returns once no process of the group is left. The
//! group is signalled only while its leader is still the recorded process (same start
//! time), so a reused pid is never signalled (hosts may share a pid space, as the lab's
//! do).

use anyhow::{anyhow, bail, Context};
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

/// Shell functions: `group_left PGID` succeeds while a process of that group runs (not a
/// zombie; read from `/proc/*/stat` with shell builtins only, field 3 after the last ')'
/// being the state and 5 the group, so a scan starts no process per entry);
/// `kill_group PID` kills the process group that PID leads (the caller checked that PID
/// is still the recorded leader) and waits, up to 5 s, until none of it is left.
pub const KILL_GROUP_FN: &str = concat!(
    "group_left() { g=$1; for s in /proc/[0-9]*/stat; do read -r l 2>/dev/null < \"$s\" || continue; set -- ${l##*\") \"}; [ \"$3\" = \"$g\" ] && [ \"$1\" != Z ] && [ \"$1\" != X ] && return 0; done; return 1; }\n",
    "kill_group() { kill -KILL -$1 2>/dev/null; kill -CONT -$1 2>/dev/null; k=0; while group_left $1 && [ $k -lt 100 ]; do sleep 0.05; k=$((k+1)); done; }\n"
);

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

    /// Sends `signals` (in order) to a node's process group if its leader is still the
    /// recorded process.
    fn signal(&self, node: &str, signals: &[&str]) -> anyhow::Result<()> {
        let Some((s, _)) = self.lock().get(node).cloned() else {
            bail!("node {node} is not running");
        };
        let mut script = String::from(ALIVE_FN);
        script.push_str(&format!("alive {} {} || exit 0\n", s.pid, s.start));
        for sig in signals {
            script.push_str(&format!("kill -{sig} -{} 2>/dev/null\n", s.pid));
        }
        script.push_str("exit 0\n");
        self.run(node, script).map(drop)
    }

    /// Stops a node's process group: `first` (TERM, or KILL at once), up to `grace` for
    /// the group to go, then KILL and wait until none of it is left. Nothing is signalled
    /// unless the leader is still the recorded process; once it was, the group's id
    /// cannot be reused while any member lives, so the group is followed to its end even
    /// after the leader went first.
    fn stop_script(s: Started, pid_file: &str, grace: Duration, first: &str) -> String {
        let steps = (grace.as_millis() / 50).max(1);
        format!(
            "{ALIVE_FN}{KILL_GROUP_FN}p={pid}; st={start}\n\
             if alive $p $st; then kill -CONT -$p 2>/dev/null; kill -{first} -$p 2>/dev/null; i=0\n\
             while group_left $p && [ $i -lt {steps} ]; do sleep 0.05; i=$((i+1)); done\n\
             kill_group $p; fi\n\
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
        // Without job control (`set +m`) the background child is no group leader, so
        // `setsid` makes it the leader of a new session in place (rather than forking a
        // grandchild): its pid is the group's id. Checked before the pid is recorded.
        let script = format!(
            "set -e\nset +m\nmkdir -p {dir} {cwd}\ncd {cwd}\n\
             setsid env{env} {argv} </dev/null >>{out} 2>>{err} &\n\
             pid=$!\n\
             st=$(sed 's/.*) //' /proc/$pid/stat | cut -d' ' -f20)\n\
             i=0; while :; do set -- $(sed 's/.*) //' /proc/$pid/stat 2>/dev/null | cut -d' ' -f1,3,4)\n\
             [ \"$1\" = Z ] || [ \"$2 $3\" = \"$pid $pid\" ] && break\n\
             [ -n \"$1\" ] && [ $i -lt 200 ] || {{ echo \"the node did not become the leader of its own session (setsid)\" >&2; kill -KILL $pid 2>/dev/null; exit 1; }}\n\
             sleep 0.01; i=$((i+1)); done\n\
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

    fn remove_path(&self, node: &str, root: &Path, path: &Path) -> anyhow::Result<()> {
        let script = crate::run::db::wipe::remote_script(root, path)?;
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

    fn kill(&self, node: &str) -> anyhow::Result<()> {
        let entry = self.lock().remove(node);
        self.lock_paused().remove(node);
        if let Some((s, pid_file)) = entry {
            let script = Self::stop_script(s, &pid_file, Duration::ZERO, "KILL");
            self.run(node, script)
                .map(drop)
                .with_context(|| format!("killing {node}"))?;
        }
        Ok(())
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
            .map(|(node, (s, pf))| (node.clone(), Self::stop_script(*s, pf, grace, "TERM")))
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

#[cfg(test)]
mod tests {
    //! The runner against a lab host (root and OpenSSH only; each test says when it
    //! skips): a node is its whole process group, not just the pid that was recorded.

    use super::*;
    use crate::run::hosts::{lab, HostsFile};
    use std::path::PathBuf;
    use std::time::Instant;

    /// A lab of one host, taken down on drop (also when the test fails).
    struct OneHost {
        hosts_file: PathBuf,
        _dir: tempfile::TempDir,
    }

    impl OneHost {
        fn up() -> Option<OneHost> {
            if !nix::unistd::geteuid().is_root() || !Path::new("/usr/sbin/sshd").exists() {
                eprintln!("skipped: a lab host needs root and OpenSSH (CI has both)");
                return None;
            }
            let dir = tempfile::tempdir().ok()?;
            let hosts_file = dir.path().join("hosts.toml");
            if let Err(e) = lab::up(&hosts_file, 1) {
                panic!("lab up: {e:#}");
            }
            Some(OneHost {
                hosts_file,
                _dir: dir,
            })
        }
    }

    impl Drop for OneHost {
        fn drop(&mut self) {
            let _ = lab::down(&self.hosts_file);
        }
    }

    /// `/proc/PID/stat`'s state letter, if the process exists.
    fn state(pid: u32) -> Option<char> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat[stat.rfind(')')? + 1..].trim_start().chars().next()
    }

    /// Waits up to 5 s for `ok(state of pid)`.
    fn eventually(pid: u32, ok: impl Fn(Option<char>) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if ok(state(pid)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// The process whose command line is exactly `argv`.
    fn find(argv: &[&str]) -> Option<u32> {
        let want: Vec<u8> = argv
            .iter()
            .flat_map(|a| [a.as_bytes(), b"\0"].concat())
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            for entry in std::fs::read_dir("/proc").ok()?.flatten() {
                let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                    continue;
                };
                if std::fs::read(entry.path().join("cmdline")).is_ok_and(|c| c == want) {
                    return Some(pid);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    #[test]
    fn a_start_command_that_does_not_exec_is_paused_and_killed_whole() {
        let Some(lab) = OneHost::up() else {
            return;
        };
        let file = HostsFile::load(&lab.hosts_file).unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let pool = Arc::new(Hosts::connect(&file).await.unwrap());
            // The control sockets' folder is this user's alone.
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(pool.control_dir()).unwrap().permissions(),
            );
            assert_eq!(mode & 0o777, 0o700, "{:o}", mode);
            let roots = pool.make_run_dirs().await.unwrap();
            let node_dir = PathBuf::from(format!("{}/n1", roots["n1"]));
            let runner = RemoteRunner::new(pool.clone(), roots.clone());
            // A wrapper that waits for its server instead of becoming it: the recorded
            // pid is the shell's, the "server" its child.
            let seconds = format!("{}", 100_000 + std::process::id());
            let launch = Launch {
                argv: vec![
                    "sh".into(),
                    "-c".into(),
                    format!("sleep {seconds}; echo exited"),
                ],
                env: Vec::new(),
                cwd: node_dir.clone(),
            };
            let result: anyhow::Result<()> = async {
                runner.spawn("n1", &launch, &NodeFiles::in_dir(&node_dir))?;
                let server = find(&["sleep", &seconds])
                    .ok_or_else(|| anyhow!("the wrapper's server never started"))?;
                runner.pause("n1")?;
                if !eventually(server, |s| s == Some('T')) {
                    bail!("pause left the server running ({:?})", state(server));
                }
                runner.resume("n1")?;
                if !eventually(server, |s| s.is_some_and(|s| s != 'T')) {
                    bail!("resume left the server stopped ({:?})", state(server));
                }
                runner.kill("n1").expect("killing n1");
                // kill returns once nothing of the group is left.
                let left = state(server);
                if left.is_some_and(|s| s != 'Z' && s != 'X') {
                    bail!("kill left the server running ({left:?})");
                }
                if runner.is_running("n1") {
                    bail!("the node still counts as running");
                }
                Ok(())
            }
            .await;
            runner.stop_all(Duration::ZERO);
            // The run's folder goes, and the parent with it (the other tests find none).
            let run = crate::run::hosts::RemoteRun {
                hosts: pool.clone(),
                roots,
                local_nodes: PathBuf::new(),
            };
            let problems = run.remove().await;
            assert!(problems.is_empty(), "{problems:?}");
            if let Err(e) = result {
                panic!("{e:#}");
            }
        });
    }
}
