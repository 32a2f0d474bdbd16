//! A database described in TOML ([`splitbrain_db::Description`], etcd among the
//! built-in ones) as a [`Database`]: each node is the description's start command,
//! expanded for that node and placed in its network namespace, controlled by its pid;
//! ready when the description's probe answers; read and written by the built-in client
//! the description names, or by an external adapter process speaking the adapter
//! protocol (the README's "The adapter protocol"), one per logical process.
//!
//! What such a database can tell the driver depends on its client: etcd's gateway names
//! the leader (`/v3/maintenance/status`) and digests a member's store
//! (`/v3/maintenance/hash`), so an etcd cluster gets leader-targeted faults and the
//! convergence check; a database without such a call gets neither, and the report says
//! its convergence was not checked. Clocks are never set: the configuration refuses clock
//! faults for described databases before a run starts.

use anyhow::{anyhow, Context};
use splitbrain_checker::Verdict;
use splitbrain_db::{
    confine, ClientSpec, ClusterState, ClusterVars, Description, LogFile, NodeVars,
};
use splitbrain_reports::results::{Convergence, NodeState};
use splitbrain_workloads::{
    AdapterClient, AdapterSpec, BoxFuture, BundledClient, Client, EtcdClient, EtcdConnection,
    EtcdReads, Handshake, WorkloadKind,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use splitbrain_workloads::child::{OutputCap, OutputCuts};

use super::processes::{Launch, NodeFiles, NodeRunner};
use super::{ClientPurpose, CrashLine, CrashScan, Database};

/// One node's fixed facts.
struct Member {
    id: u64,
    addr: IpAddr,
    node_dir: PathBuf,
    data_dir: PathBuf,
}

/// A described database's cluster, as the driver controls it.
pub struct DescribedCluster {
    desc: Description,
    workload: WorkloadKind,
    reads: EtcdReads,
    run_dir: PathBuf,
    members: BTreeMap<String, Member>,
    cluster: ClusterVars,
    processes: Box<dyn NodeRunner>,
    /// With `--hosts`: node → the run's folder on its host, which holds the node's folder
    /// (`<root>/<node>`); its files come home to `nodes/<node>/` at teardown.
    node_roots: BTreeMap<String, PathBuf>,
    /// With `--hosts`: node → the description as that node sees it (`{description_dir}`
    /// is its copy on the node's host); adapters, which run here, use `desc`.
    node_descs: BTreeMap<String, Description>,
    /// Nodes started at least once: they restart as members of an `existing` cluster.
    started: Mutex<BTreeSet<String>>,
    /// etcd member ids learned from status answers, so a leader can be named even while
    /// it is paused and cannot answer itself.
    member_ids: Mutex<BTreeMap<u64, String>>,
    /// Adapter processes replaced after a protocol failure, over all clients.
    adapter_errors: Arc<AtomicU64>,
    /// What was cut from the adapters' stderr files.
    adapter_cuts: OutputCuts,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl DescribedCluster {
    /// `nodes`: each node's name and the address it listens on, in order.
    pub fn new(
        desc: Description,
        workload: WorkloadKind,
        reads: EtcdReads,
        run_dir: PathBuf,
        nodes: &[(String, IpAddr)],
        token: String,
        processes: Box<dyn NodeRunner>,
    ) -> DescribedCluster {
        let members = nodes
            .iter()
            .enumerate()
            .map(|(i, (name, addr))| {
                let node_dir = run_dir.join("nodes").join(name);
                let member = Member {
                    id: i as u64 + 1,
                    addr: *addr,
                    data_dir: node_dir.join("data"),
                    node_dir,
                };
                (name.clone(), member)
            })
            .collect();
        DescribedCluster {
            desc,
            workload,
            reads,
            run_dir,
            members,
            cluster: ClusterVars {
                nodes: nodes.to_vec(),
                token,
            },
            processes,
            node_roots: BTreeMap::new(),
            node_descs: BTreeMap::new(),
            started: Mutex::new(BTreeSet::new()),
            member_ids: Mutex::new(BTreeMap::new()),
            adapter_errors: Arc::new(AtomicU64::new(0)),
            adapter_cuts: OutputCuts::default(),
        }
    }

    /// The nodes run on SSH hosts, each in `roots[node]/<node>` there;
    /// `description_dirs[node]` is where the description's files were copied on the
    /// node's host.
    pub fn on_hosts(
        mut self,
        roots: BTreeMap<String, PathBuf>,
        description_dirs: BTreeMap<String, PathBuf>,
    ) -> DescribedCluster {
        for (name, m) in self.members.iter_mut() {
            if let Some(root) = roots.get(name) {
                m.node_dir = root.join(name);
                m.data_dir = m.node_dir.join("data");
            }
        }
        self.node_roots = roots;
        for (name, dir) in description_dirs {
            let mut desc = self.desc.clone();
            desc.dir = Some(dir);
            self.node_descs.insert(name, desc);
        }
        self
    }

    /// Where a node's file is read after the run: on hosts, the downloaded copy.
    fn local_copy(&self, path: PathBuf) -> PathBuf {
        for root in self.node_roots.values() {
            if let Ok(rest) = path.strip_prefix(root) {
                return self.run_dir.join("nodes").join(rest);
            }
        }
        path
    }

    fn member(&self, node: &str) -> anyhow::Result<&Member> {
        self.members
            .get(node)
            .ok_or_else(|| anyhow!("no node named {node}"))
    }

    fn vars(&self, node: &str, state: ClusterState) -> anyhow::Result<NodeVars> {
        let m = self.member(node)?;
        Ok(NodeVars {
            name: node.to_string(),
            id: m.id,
            addr: m.addr,
            data_dir: m.data_dir.clone(),
            node_dir: m.node_dir.clone(),
            state,
        })
    }

    /// Where the client port of `node` is (built-in clients only).
    fn client_addr(&self, node: &str) -> anyhow::Result<SocketAddr> {
        let port_name =
            self.desc.client().port().ok_or_else(|| {
                anyhow!("{}: an adapter has no single client port", self.desc.name)
            })?;
        let port = self.desc.ports().get(port_name).copied().ok_or_else(|| {
            anyhow!(
                "{}: the client port {port_name:?} is not a named port",
                self.desc.name
            )
        })?;
        Ok(SocketAddr::new(self.member(node)?.addr, port))
    }

    /// An adapter process for one logical process bound to `node` (started on first
    /// use); its stderr is appended to `adapters/<node>.stderr.log` in the run folder.
    fn adapter(&self, node: &str, op_timeout: Duration) -> anyhow::Result<AdapterClient> {
        let vars = self.vars(node, ClusterState::Existing)?;
        let argv = self
            .desc
            .exec_command(&vars, &self.cluster)
            .ok_or_else(|| anyhow!("{}: no adapter command", self.desc.name))?;
        let dir = self.run_dir.join("adapters");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let spec = AdapterSpec {
            argv,
            env: Vec::new(),
            stderr: dir.join(format!("{node}.stderr.log")),
            handshake: Handshake {
                node: node.to_string(),
                addr: vars.addr.to_string(),
                cluster: self
                    .cluster
                    .nodes
                    .iter()
                    .map(|(n, a)| (n.clone(), a.to_string()))
                    .collect(),
                workload: self.workload.name().to_string(),
                ports: self.desc.ports().clone(),
            },
            timeout: op_timeout,
            start_timeout: Duration::from_secs(5),
            stderr_cap: OutputCap::default(),
        };
        Ok(AdapterClient::new(spec)
            .with_error_counter(self.adapter_errors.clone())
            .with_output_cuts(self.adapter_cuts.clone()))
    }

    fn is_etcd(&self) -> bool {
        matches!(self.desc.client(), ClientSpec::Etcd { .. })
    }

    /// The statuses of the reachable, unpaused members (etcd only).
    async fn etcd_statuses(&self) -> Vec<(String, splitbrain_workloads::MemberStatus)> {
        let mut out = Vec::new();
        for node in self.nodes() {
            if self.processes.is_paused(&node) || !self.is_running(&node) {
                continue;
            }
            let Ok(addr) = self.client_addr(&node) else {
                continue;
            };
            let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
            if let Ok(status) = EtcdConnection::new(addr.to_string()).status(deadline).await {
                lock(&self.member_ids).insert(status.member_id, node.clone());
                out.push((node, status));
            }
        }
        out
    }

    async fn etcd_leader(&self) -> Option<String> {
        let statuses = self.etcd_statuses().await;
        let (_, best) = statuses
            .iter()
            .filter(|(_, s)| s.leader != 0)
            .max_by_key(|(_, s)| s.raft_term)?;
        lock(&self.member_ids).get(&best.leader).cloned()
    }

    /// etcd's digest per member: (revision, hash), or `None` when it did not answer.
    async fn etcd_digests(&self) -> BTreeMap<String, Option<(u64, u64)>> {
        let mut out = BTreeMap::new();
        for node in self.nodes() {
            let digest = match self.client_addr(&node) {
                Ok(addr) => {
                    let deadline = tokio::time::Instant::now() + Duration::from_millis(1000);
                    EtcdConnection::new(addr.to_string())
                        .hash(deadline)
                        .await
                        .ok()
                        .map(|h| (h.revision, h.hash))
                }
                Err(_) => None,
            };
            out.insert(node, digest);
        }
        out
    }

    async fn etcd_convergence(&self, wait: Duration) -> Convergence {
        let deadline = tokio::time::Instant::now() + wait;
        let mut seen = self.etcd_digests().await;
        while !digests_agree(&seen) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            seen = self.etcd_digests().await;
        }
        digest_convergence(&seen, wait)
    }
}

fn digests_agree(seen: &BTreeMap<String, Option<(u64, u64)>>) -> bool {
    let mut values = seen.values();
    match values.next() {
        Some(Some(first)) => values.all(|v| v.as_ref() == Some(first)),
        _ => false,
    }
}

/// The verdict on final (revision, hash) digests: all equal is converged; two members
/// with different hashes at the same revision hold different data (diverged); anything
/// else (a member behind, or silent) is undecided.
fn digest_convergence(seen: &BTreeMap<String, Option<(u64, u64)>>, wait: Duration) -> Convergence {
    let nodes = seen
        .iter()
        .map(|(name, d)| NodeState {
            name: name.clone(),
            applied_index: d.map(|(revision, _)| revision),
            digest: d.map(|(_, hash)| format!("{hash:08x}")),
            history: None,
            last_index: None,
            reachable: d.is_some(),
        })
        .collect();
    let mut by_revision: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    let mut groups: BTreeMap<(u64, u64), Vec<&str>> = BTreeMap::new();
    for (name, (revision, hash)) in seen.iter().filter_map(|(n, d)| Some((n, (*d)?))) {
        by_revision.entry(revision).or_default().insert(hash);
        groups.entry((revision, hash)).or_default().push(name);
    }
    let described: Vec<String> = groups
        .iter()
        .map(|((revision, hash), names)| {
            format!("{} at revision {revision} hash {hash:08x}", names.join(","))
        })
        .collect();
    let silent: Vec<&str> = seen
        .iter()
        .filter(|(_, d)| d.is_none())
        .map(|(n, _)| n.as_str())
        .collect();
    let (verdict, mut explanation) = if digests_agree(seen) {
        (
            Verdict::Valid,
            format!(
                "all {} members hold the same data: {}",
                seen.len(),
                described.join("")
            ),
        )
    } else if by_revision.values().any(|hashes| hashes.len() > 1) {
        (
            Verdict::Invalid,
            format!(
                "members hold different data at the same revision: {}",
                described.join("; ")
            ),
        )
    } else {
        (
            Verdict::Unknown,
            format!(
                "members did not converge within {:.0} s: {}",
                wait.as_secs_f64(),
                described.join("; ")
            ),
        )
    };
    if !silent.is_empty() {
        explanation.push_str(&format!("; no digest from {}", silent.join(",")));
    }
    Convergence {
        verdict,
        nodes,
        replicas_per_entry: Vec::new(),
        explanation,
    }
}

impl Database for DescribedCluster {
    fn name(&self) -> &str {
        &self.desc.name
    }

    fn nodes(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    fn start(&self, node: &str) -> anyhow::Result<()> {
        let first = !lock(&self.started).contains(node);
        let state = if first {
            ClusterState::New
        } else {
            ClusterState::Existing
        };
        let vars = self.vars(node, state)?;
        self.processes.make_dir(node, &vars.node_dir)?;
        let (argv, env) = self
            .node_descs
            .get(node)
            .unwrap_or(&self.desc)
            .start_command(&vars, &self.cluster)
            .map_err(|e| anyhow!("{e}"))?;
        let launch = Launch {
            argv,
            env,
            cwd: vars.node_dir.clone(),
        };
        self.processes
            .spawn(node, &launch, &NodeFiles::in_dir(&vars.node_dir))?;
        lock(&self.started).insert(node.to_string());
        Ok(())
    }

    fn start_all(&self) -> anyhow::Result<()> {
        for node in self.nodes() {
            self.start(&node)?;
        }
        std::thread::sleep(Duration::from_millis(500));
        for (node, m) in &self.members {
            if !self.is_running(node) {
                anyhow::bail!(
                    "{} node {node} exited right after starting: {}",
                    self.desc.name,
                    self.processes.last_words(&NodeFiles::in_dir(&m.node_dir))
                );
            }
        }
        Ok(())
    }

    fn runner(&self) -> &dyn NodeRunner {
        &*self.processes
    }

    /// Stops every node, then wipes their data (the logs stay in the run folder): a
    /// database's data directories can be large (etcd preallocates 64 MB of WAL per
    /// member) and the history and logs are the run's record.
    fn stop_all(&self) -> Vec<String> {
        let mut problems = Vec::new();
        self.processes.stop_all(self.desc.stop_grace());
        for node in self.nodes() {
            let Ok(vars) = self.vars(&node, ClusterState::Existing) else {
                continue;
            };
            match self.desc.wipe_paths(&vars, &self.cluster) {
                Ok(paths) => {
                    for path in paths {
                        if let Err(e) = self.processes.remove_path(&node, &vars.node_dir, &path) {
                            problems.push(format!("wiping {node}: {e:#}"));
                        }
                    }
                }
                Err(e) => problems.push(format!("wiping {node}: {e}")),
            }
        }
        problems
    }

    fn await_ready(&self, _default: Duration) -> BoxFuture<'_, anyhow::Result<String>> {
        Box::pin(async move {
            // The description knows how long its nodes take to come up, longer or
            // shorter than the driver's default: its `ready.timeout` wins.
            let timeout = self.desc.ready_timeout();
            let deadline = tokio::time::Instant::now() + timeout;
            for node in self.nodes() {
                let probe = self
                    .desc
                    .ready_probe(&self.vars(&node, ClusterState::Existing)?, &self.cluster);
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                probe.wait_ready(left).await.map_err(|e| {
                    anyhow!(
                        "{} node {node} was not ready within {:.0} s: {e}; see nodes/{node}/stderr.log",
                        self.desc.name,
                        timeout.as_secs_f64()
                    )
                })?;
            }
            if !self.is_etcd() {
                return Ok(format!("all {} nodes ready", self.members.len()));
            }
            loop {
                if let Some(leader) = self.etcd_leader().await {
                    return Ok(format!(
                        "all {} nodes ready; leader {leader}",
                        self.members.len()
                    ));
                }
                if tokio::time::Instant::now() >= deadline {
                    anyhow::bail!(
                        "no {} member named a leader within {:.0} s",
                        self.desc.name,
                        timeout.as_secs_f64()
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    }

    fn primary(&self) -> BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            if self.is_etcd() {
                self.etcd_leader().await
            } else {
                None
            }
        })
    }

    fn convergence(&self, wait: Duration) -> BoxFuture<'_, Option<Convergence>> {
        Box::pin(async move {
            if self.is_etcd() {
                Some(self.etcd_convergence(wait).await)
            } else {
                None
            }
        })
    }

    fn client(
        &self,
        node: &str,
        purpose: ClientPurpose,
        op_timeout: Duration,
    ) -> anyhow::Result<Box<dyn Client>> {
        Ok(match self.desc.client() {
            ClientSpec::Exec { .. } => Box::new(self.adapter(node, op_timeout)?),
            ClientSpec::Etcd { .. } => Box::new(EtcdClient::new(
                self.workload,
                self.client_addr(node)?.to_string(),
                op_timeout,
                self.reads,
            )),
            ClientSpec::Bundled { .. } => {
                let addr = self.client_addr(node)?.to_string();
                let client = BundledClient::new(self.workload, addr, op_timeout);
                match purpose {
                    ClientPurpose::Worker => Box::new(client.with_redirects(2)),
                    ClientPurpose::FinalRead => Box::new(client),
                }
            }
        })
    }

    fn check_client<'a>(&'a self, node: &'a str) -> BoxFuture<'a, anyhow::Result<()>> {
        Box::pin(async move {
            if !matches!(self.desc.client(), ClientSpec::Exec { .. }) {
                return Ok(());
            }
            let mut adapter = self.adapter(node, Duration::from_secs(5))?;
            let opened = adapter.open().await;
            adapter.close().await;
            opened.map_err(|e| anyhow!("the {} adapter refused to start: {e}", self.desc.name))
        })
    }

    fn output_cuts(&self) -> Vec<(PathBuf, u64)> {
        let mut cuts = self.processes.output_cuts();
        cuts.extend(self.adapter_cuts.cuts());
        cuts
    }

    fn client_notes(&self) -> Vec<String> {
        if !matches!(self.desc.client(), ClientSpec::Exec { .. }) {
            return Vec::new();
        }
        let errors = self.adapter_errors.load(Ordering::Relaxed);
        if errors == 0 {
            return vec!["adapter errors: 0".into()];
        }
        vec![format!(
            "adapter errors: {errors} (each time an adapter timed out, exited, printed a line that is not the protocol's, or answered the wrong id, it was replaced and its operation recorded as info; its stderr is in adapters/)"
        )]
    }

    /// The logs that are regular files inside their node's folder (reached without
    /// following a link); the others are named by [`Database::crash_scan`]'s notes.
    fn log_files(&self) -> Vec<PathBuf> {
        self.node_logs()
            .into_iter()
            .filter(|l| matches!(confine::regular_file_inside(&l.root, &l.path), Ok(Some(_))))
            .map(|l| l.path)
            .collect()
    }

    fn crash_scan(&self) -> Option<CrashScan> {
        let report = self.desc.crash.scan(&self.node_logs());
        let relative = |p: &std::path::Path| {
            p.strip_prefix(&self.run_dir)
                .unwrap_or(p)
                .display()
                .to_string()
        };
        Some(CrashScan {
            lines: report
                .matches
                .into_iter()
                .map(|m| CrashLine {
                    file: relative(&m.file),
                    line: m.line,
                    text: m.text,
                    pattern: m.pattern,
                })
                .collect(),
            // Paths in the run folder are named from there, as elsewhere in the report.
            notes: report
                .notes
                .into_iter()
                .map(|n| n.replace(&format!("{}/", self.run_dir.display()), ""))
                .collect(),
        })
    }
}

impl DescribedCluster {
    /// Every node's captured output and the description's `node.logs`, each with the
    /// node's folder it must lie in, as read after the run (the downloaded copy with
    /// `--hosts`).
    fn node_logs(&self) -> Vec<LogFile> {
        let mut files = Vec::new();
        for node in self.nodes() {
            let Ok(vars) = self.vars(&node, ClusterState::Existing) else {
                continue;
            };
            let root = self.local_copy(vars.node_dir.clone());
            let own = NodeFiles::in_dir(&vars.node_dir);
            for path in [own.stderr, own.stdout]
                .into_iter()
                .chain(self.desc.log_files(&vars, &self.cluster))
            {
                files.push(LogFile {
                    root: root.clone(),
                    path: self.local_copy(path),
                });
            }
        }
        files
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::db::processes::LocalRunner;
    use splitbrain_db::{Source, SCAN_HEAD, SCAN_TAIL};

    /// A temporary run folder, removed on drop.
    struct RunDir(PathBuf);
    impl RunDir {
        fn new(tag: &str) -> RunDir {
            let dir =
                std::env::temp_dir().join(format!("sb-described-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("nodes/n1")).expect("run dir");
            RunDir(dir)
        }
    }
    impl Drop for RunDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// A one-node cluster of a description whose `[node]` ends with `extra`, with
    /// `wipe` and `crash` sections as given.
    fn cluster(run_dir: &std::path::Path, extra: &str, wipe: &str) -> DescribedCluster {
        let desc = Description::from_str(
            &format!(
                "name = \"t\"\nabout = \"x\"\n[node]\nports = {{ client = 7000 }}\nstart = [\"true\"]\n{extra}\n\
                 [ready]\ntcp = \"{{addr}}:{{port.client}}\"\n[wipe]\npaths = [{wipe}]\n\
                 [crash]\npatterns = [\"^panic:\"]\n[client]\nexec = [\"true\"]\n"
            ),
            Source::Builtin("t"),
        )
        .expect("valid");
        DescribedCluster::new(
            desc,
            WorkloadKind::Register,
            EtcdReads::Linearizable,
            run_dir.to_path_buf(),
            &[("n1".to_string(), IpAddr::from([127, 0, 0, 1]))],
            "t".into(),
            Box::new(LocalRunner::new(None)),
        )
    }

    #[test]
    fn a_wipe_does_not_follow_a_link_out_of_the_node_folder() {
        let run = RunDir::new("wipe");
        let elsewhere = run.0.join("elsewhere");
        std::fs::create_dir_all(elsewhere.join("member")).expect("elsewhere");
        std::fs::write(elsewhere.join("member/precious"), "keep").expect("write");
        std::os::unix::fs::symlink(&elsewhere, run.0.join("nodes/n1/data")).expect("link");
        let db = cluster(&run.0, "", "\"{data_dir}/member\"");
        let problems = db.stop_all().join("\n");
        assert!(problems.contains("data is a symbolic link"), "{problems}");
        assert!(
            elsewhere.join("member/precious").exists(),
            "the wipe reached outside the node's folder"
        );
    }

    #[test]
    fn odd_logs_are_named_in_notes_and_not_read_whole() {
        let run = RunDir::new("logs");
        let node = run.0.join("nodes/n1");
        std::fs::write(run.0.join("secret"), "panic: not ours\n").expect("write");
        std::os::unix::fs::symlink("/dev/zero", node.join("zero.log")).expect("link");
        std::os::unix::fs::symlink(run.0.join("secret"), node.join("out.log")).expect("link");
        // Sparse: a large size without the disk space.
        let huge = std::fs::File::create(node.join("huge.log")).expect("create");
        huge.set_len(SCAN_HEAD + SCAN_TAIL + (1 << 30))
            .expect("size");
        drop(huge);
        {
            use std::io::{Seek, Write};
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(node.join("huge.log"))
                .expect("open");
            f.seek(std::io::SeekFrom::End(-20)).expect("seek");
            f.write_all(b"\npanic: at the end\n").expect("write");
        }
        std::fs::write(node.join("stderr.log"), "starting\n").expect("write");
        let db = cluster(
            &run.0,
            "logs = [\"{node_dir}/zero.log\", \"{node_dir}/out.log\", \"{node_dir}/huge.log\"]",
            "",
        );
        let scan = db.crash_scan().expect("patterns");
        let notes = scan.notes.join("\n");
        assert!(notes.contains("zero.log is a symbolic link"), "{notes}");
        assert!(notes.contains("out.log is a symbolic link"), "{notes}");
        let size = SCAN_HEAD + SCAN_TAIL + (1 << 30);
        assert!(
            notes.contains(&format!(
                "nodes/n1/huge.log is {size} bytes: only its first 64 MiB and last 64 MiB"
            )),
            "{notes}"
        );
        assert_eq!(scan.lines.len(), 1, "{:?}", scan.lines);
        assert_eq!(scan.lines[0].text, "panic: at the end");
        assert_eq!(scan.lines[0].line, None);
        // The report lists only the regular files.
        let listed: Vec<String> = db
            .log_files()
            .iter()
            .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .collect();
        assert_eq!(listed, ["stderr.log", "huge.log"]);
    }

    #[tokio::test]
    async fn a_short_ready_timeout_is_honoured() {
        // Nothing listens on the probed port: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let desc = Description::from_str(
            &format!(
                "name = \"quick\"\nabout = \"x\"\n[node]\nports = {{ client = {port} }}\nstart = [\"true\"]\n\
                 [ready]\ntcp = \"{{addr}}:{{port.client}}\"\ntimeout = 2.0\n[client]\nexec = [\"true\"]\n"
            ),
            Source::Builtin("quick"),
        )
        .expect("valid");
        let run_dir = std::env::temp_dir().join(format!("sb-ready-{}", std::process::id()));
        let cluster = DescribedCluster::new(
            desc,
            WorkloadKind::Register,
            EtcdReads::Linearizable,
            run_dir,
            &[("n1".to_string(), IpAddr::from([127, 0, 0, 1]))],
            "t".into(),
            Box::new(LocalRunner::new(None)),
        );
        let started = tokio::time::Instant::now();
        // The driver offers 30 s; the description says 2.
        let err = cluster
            .await_ready(Duration::from_secs(30))
            .await
            .expect_err("nothing listens");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "took {took:?}: {err:#}");
        assert!(err.to_string().contains("within 2 s"), "{err:#}");
    }

    fn seen(entries: &[(&str, Option<(u64, u64)>)]) -> BTreeMap<String, Option<(u64, u64)>> {
        entries.iter().map(|(n, d)| (n.to_string(), *d)).collect()
    }

    #[test]
    fn equal_digests_converge() {
        let c = digest_convergence(
            &seen(&[
                ("n1", Some((7, 1))),
                ("n2", Some((7, 1))),
                ("n3", Some((7, 1))),
            ]),
            Duration::from_secs(1),
        );
        assert_eq!(c.verdict, Verdict::Valid, "{}", c.explanation);
    }

    #[test]
    fn different_data_at_one_revision_diverged() {
        let c = digest_convergence(
            &seen(&[
                ("n1", Some((7, 1))),
                ("n2", Some((7, 2))),
                ("n3", Some((7, 1))),
            ]),
            Duration::from_secs(1),
        );
        assert_eq!(c.verdict, Verdict::Invalid, "{}", c.explanation);
        assert!(
            c.explanation.contains("n2 at revision 7"),
            "{}",
            c.explanation
        );
    }

    #[test]
    fn a_member_behind_or_silent_is_undecided() {
        let behind = digest_convergence(
            &seen(&[("n1", Some((7, 1))), ("n2", Some((6, 2)))]),
            Duration::from_secs(1),
        );
        assert_eq!(behind.verdict, Verdict::Unknown, "{}", behind.explanation);
        let silent = digest_convergence(
            &seen(&[("n1", Some((7, 1))), ("n2", None)]),
            Duration::from_secs(1),
        );
        assert_eq!(silent.verdict, Verdict::Unknown);
        assert!(silent.explanation.contains("no digest from n2"));
    }
}
