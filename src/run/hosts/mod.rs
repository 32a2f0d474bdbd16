//! Nodes on real hosts over SSH (`--hosts FILE`): the hosts file, a pool of multiplexed
//! SSH sessions ([`Hosts`]), the [`runner::RemoteRunner`] that starts and signals node
//! processes on the hosts, and the [`lab`]: hosts made of network namespaces on this
//! machine, each with its own `sshd`, so all of it can be tried and tested on one box.
//!
//! Remote control goes through the system's OpenSSH (the `openssh` crate, native
//! multiplexing): the user's `~/.ssh/config`, agent and ProxyJump keep working, and one
//! master connection per host carries every command. A command costs a round trip
//! (~100 ms), so callers batch: one script per host per action.
//!
//! Everything a run puts on a host lives in one folder, [`remote_root`]
//! (`/tmp/splitbrain/<run>`), removed at teardown after the nodes' logs are downloaded.

pub mod lab;
pub mod runner;

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Whether a run may change the hosts' clocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clocks {
    /// The default: the hosts' clocks are left alone.
    Fixed,
    /// `clocks = "may-change"`: the hosts are throwaway machines whose clocks may be
    /// bumped and strobed.
    MayChange,
}

/// One host: where to reach it and as whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub user: Option<String>,
    /// The host name or address as written.
    pub host: String,
    pub port: Option<u16>,
    /// The private key to log in with (absolute, or relative to the hosts file).
    pub identity: Option<PathBuf>,
}

impl HostEntry {
    /// `user@host:port`, for messages.
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(&self.host);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }

    /// The address the node listens on and its peers and clients dial.
    pub fn ip(&self) -> anyhow::Result<IpAddr> {
        if let Ok(ip) = self.host.parse::<IpAddr>() {
            return Ok(ip);
        }
        use std::net::ToSocketAddrs;
        (self.host.as_str(), 0)
            .to_socket_addrs()
            .with_context(|| format!("resolving host {}", self.host))?
            .next()
            .map(|a| a.ip())
            .ok_or_else(|| anyhow!("host {} has no address", self.host))
    }
}

/// A parsed hosts file: node name (`n1`, `n2`, ...) → host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsFile {
    pub path: PathBuf,
    pub hosts: BTreeMap<String, HostEntry>,
    pub clocks: Clocks,
    /// A known_hosts file to check host keys against strictly; without it each run
    /// keeps its own (`StrictHostKeyChecking accept-new`).
    pub known_hosts: Option<PathBuf>,
    /// Written by `splitbrain lab up`: the hosts share this machine's clock, pid space
    /// and file system.
    pub lab: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    hosts: BTreeMap<String, RawHost>,
    user: Option<String>,
    port: Option<u16>,
    identity: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    clocks: Option<String>,
    #[serde(default)]
    lab: bool,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawHost {
    Address(String),
    Table {
        address: String,
        port: Option<u16>,
        identity: Option<PathBuf>,
    },
}

/// The 1-based line on which `key` is assigned in `text`, for messages.
fn line_of(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key)
                .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        })
        .map(|i| i + 1)
}

impl HostsFile {
    pub fn load(path: &Path) -> anyhow::Result<HostsFile> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read hosts file {}", path.display()))?;
        HostsFile::parse(&text, path)
    }

    /// Parses `text` (read from `path`, which relative identity files are taken from).
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<HostsFile> {
        let shown = path.display();
        let raw: RawFile = toml::from_str(text).map_err(|e| anyhow!("hosts file {shown}: {e}"))?;
        let at = |key: &str| match line_of(text, key) {
            Some(line) => format!("hosts file {shown} line {line}, `{key}`"),
            None => format!("hosts file {shown}, `{key}`"),
        };
        let base = path.parent().unwrap_or(Path::new("."));
        let home = std::env::var_os("HOME").map(PathBuf::from);
        let resolve = |p: PathBuf| match (p.strip_prefix("~"), &home) {
            (Ok(rest), Some(home)) => home.join(rest),
            _ if p.is_absolute() => p,
            _ => base.join(p),
        };
        let clocks = match raw.clocks.as_deref() {
            None | Some("fixed") => Clocks::Fixed,
            Some("may-change") => Clocks::MayChange,
            Some(other) => bail!(
                "{}: {other:?} must be \"fixed\" or \"may-change\"",
                at("clocks")
            ),
        };
        if raw.lab && clocks == Clocks::MayChange {
            bail!(
                "{}: the lab's hosts share this machine's clock, which must not change",
                at("clocks")
            );
        }
        if raw.hosts.is_empty() {
            bail!("hosts file {shown}: `[hosts]` names no host (n1 = \"root@10.0.0.1\", ...)");
        }
        let mut hosts = BTreeMap::new();
        for (name, host) in raw.hosts {
            let (address, port, identity) = match host {
                RawHost::Address(a) => (a, None, None),
                RawHost::Table {
                    address,
                    port,
                    identity,
                } => (address, port, identity),
            };
            let (user, rest) = match address.split_once('@') {
                Some((u, r)) => (Some(u.to_string()), r.to_string()),
                None => (raw.user.clone(), address.clone()),
            };
            let (host, port_in_address) = match rest.rsplit_once(':') {
                // An IPv6 address without a port has colons too.
                Some((h, p)) if !h.contains(':') => {
                    let p = p.parse::<u16>().map_err(|_| {
                        anyhow!("{}: {address:?}: the port {p:?} is not a number", at(&name))
                    })?;
                    (h.to_string(), Some(p))
                }
                _ => (rest, None),
            };
            let valid_host = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c));
            let valid_user = |u: &str| {
                !u.is_empty()
                    && u.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
            };
            if !valid_host || user.as_deref().is_some_and(|u| !valid_user(u)) {
                bail!("{}: {address:?} is not `user@host[:port]`", at(&name));
            }
            hosts.insert(
                name,
                HostEntry {
                    user,
                    host,
                    port: port_in_address.or(port).or(raw.port),
                    identity: identity.or(raw.identity.clone()).map(resolve),
                },
            );
        }
        // The driver names nodes n1..nN; the hosts file must use the same names.
        for (i, name) in hosts.keys().enumerate() {
            let wanted: Vec<String> = (1..=hosts.len()).map(|i| format!("n{i}")).collect();
            if !wanted.contains(name) {
                bail!(
                    "{}: nodes are named n1..n{} (entry {} of {}); got {name:?}",
                    at(name),
                    hosts.len(),
                    i + 1,
                    hosts.len()
                );
            }
        }
        Ok(HostsFile {
            path: path.to_path_buf(),
            hosts,
            clocks,
            known_hosts: raw.known_hosts.map(resolve),
            lab: raw.lab,
        })
    }
}

/// Quotes `s` for a POSIX shell.
pub fn sq(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `f` to completion from synchronous code that runs on (or beside) the tokio
/// runtime: the [`super::db::processes::NodeRunner`] methods are synchronous.
pub fn block_on<F: Future>(f: F) -> F::Output {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => tokio::task::block_in_place(|| handle.block_on(f)),
        Err(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building a tokio runtime")
            .block_on(f),
    }
}

/// The folder of one run on every host.
pub fn remote_root(run_id: &str) -> String {
    format!("/tmp/splitbrain/{run_id}")
}

/// One multiplexed SSH session per host.
pub struct Hosts {
    entries: BTreeMap<String, HostEntry>,
    sessions: BTreeMap<String, openssh::Session>,
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosts")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// Seconds an SSH master without a command lives on (after the harness was killed).
const MASTER_IDLE_SECS: usize = 15;

/// What every host needs whatever runs there.
pub const BASE_COMMANDS: [&str; 7] = ["sh", "setsid", "tar", "kill", "iptables", "sed", "cut"];

impl Hosts {
    /// Opens a session to every host (in parallel). `known_hosts` is this run's own file
    /// (host keys accepted on first sight) unless the hosts file names one to check
    /// strictly.
    pub async fn connect(file: &HostsFile, run_known_hosts: &Path) -> anyhow::Result<Hosts> {
        let mut tasks = Vec::new();
        for (name, entry) in &file.hosts {
            let mut b = openssh::SessionBuilder::default();
            if let Some(u) = &entry.user {
                b.user(u.clone());
            }
            if let Some(p) = entry.port {
                b.port(p);
            }
            if let Some(k) = &entry.identity {
                b.keyfile(k);
            }
            match &file.known_hosts {
                Some(kh) => {
                    b.known_hosts_check(openssh::KnownHosts::Strict)
                        .user_known_hosts_file(kh);
                }
                None => {
                    b.known_hosts_check(openssh::KnownHosts::Add)
                        .user_known_hosts_file(run_known_hosts);
                }
            }
            // The control socket's path must stay short (108 bytes). A master left by a
            // harness that was killed exits once idle; [`Hosts::keep_alive`] keeps a live
            // run's masters busy.
            b.control_directory(std::env::temp_dir())
                .control_persist(openssh::ControlPersist::IdleFor(
                    std::num::NonZeroUsize::new(MASTER_IDLE_SECS)
                        .unwrap_or(std::num::NonZeroUsize::MIN),
                ))
                .connect_timeout(Duration::from_secs(10))
                .server_alive_interval(Duration::from_secs(5));
            let (name, entry) = (name.clone(), entry.clone());
            tasks.push(tokio::spawn(async move {
                let session = b.connect_mux(&entry.host).await;
                (name, entry, session)
            }));
        }
        let mut sessions = BTreeMap::new();
        let mut problems = Vec::new();
        for task in tasks {
            let (name, entry, session) = task.await.context("connecting to the hosts")?;
            match session {
                Ok(s) => {
                    sessions.insert(name, s);
                }
                Err(e) => problems.push(format!(
                    "cannot reach host {name} ({}): {e}",
                    entry.display()
                )),
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        Ok(Hosts {
            entries: file.hosts.clone(),
            sessions,
        })
    }

    /// Runs `true` on every host every few seconds while the pool lives, so that no
    /// master idles out during a quiet stretch of a run.
    pub fn keep_alive(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(MASTER_IDLE_SECS as u64 / 3)).await;
                let Some(hosts) = weak.upgrade() else {
                    return;
                };
                let scripts = hosts
                    .names()
                    .into_iter()
                    .map(|h| (h, "true".into()))
                    .collect();
                let _ = hosts.run_each(scripts).await;
            }
        });
    }

    pub fn names(&self) -> Vec<String> {
        self.entries.keys().cloned().collect()
    }

    pub fn entry(&self, host: &str) -> anyhow::Result<&HostEntry> {
        self.entries
            .get(host)
            .ok_or_else(|| anyhow!("no host named {host}"))
    }

    fn session(&self, host: &str) -> anyhow::Result<&openssh::Session> {
        self.sessions
            .get(host)
            .ok_or_else(|| anyhow!("no host named {host}"))
    }

    /// Runs `script` with `sh -c` on `host`: its standard output, or an error with the
    /// exit status and standard error. One round trip.
    pub async fn run(&self, host: &str, script: &str) -> anyhow::Result<String> {
        let out = self
            .session(host)?
            .command("sh")
            .arg("-c")
            .arg(script)
            .output()
            .await
            .with_context(|| format!("host {host}: running a command over SSH"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            bail!(
                "host {host}: `{}` failed ({}): {}",
                script.lines().next().unwrap_or("").trim(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )
        }
    }

    /// Runs one script per host, all at once; the outputs by host.
    pub async fn run_each(
        self: &Arc<Self>,
        scripts: BTreeMap<String, String>,
    ) -> BTreeMap<String, anyhow::Result<String>> {
        let mut tasks = Vec::new();
        for (host, script) in scripts {
            let me = self.clone();
            tasks.push((
                host.clone(),
                tokio::spawn(async move { me.run(&host, &script).await }),
            ));
        }
        let mut out = BTreeMap::new();
        for (host, task) in tasks {
            let result = task.await.unwrap_or_else(|e| Err(anyhow!("{e}")));
            out.insert(host, result);
        }
        out
    }

    /// Writes `bytes` to `path` on `host` (mode `mode`), through the session's stdin.
    pub async fn upload(
        &self,
        host: &str,
        bytes: &[u8],
        path: &str,
        mode: &str,
    ) -> anyhow::Result<()> {
        // Hosts may share a file system (the lab): each writes its own part file.
        let part = format!("{path}.part-{host}");
        let script = format!(
            "mkdir -p \"$(dirname {p})\" && cat > {part} && chmod {mode} {part} && mv {part} {p}",
            p = sq(path),
            part = sq(&part)
        );
        self.run_with_input(host, &script, bytes)
            .await
            .with_context(|| format!("host {host}: uploading {path}"))
    }

    /// Copies the local folder `local` into `remote` on `host` (created).
    pub async fn upload_dir(&self, host: &str, local: &Path, remote: &str) -> anyhow::Result<()> {
        let out = std::process::Command::new("tar")
            .arg("-C")
            .arg(local)
            .args(["-cf", "-", "."])
            .output()
            .with_context(|| format!("packing {}", local.display()))?;
        if !out.status.success() {
            bail!(
                "packing {}: {}",
                local.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let script = format!("mkdir -p {r} && tar -C {r} -xf -", r = sq(remote));
        self.run_with_input(host, &script, &out.stdout)
            .await
            .with_context(|| format!("host {host}: uploading {} to {remote}", local.display()))
    }

    /// Runs `script` on `host` with `input` on its standard input.
    async fn run_with_input(&self, host: &str, script: &str, input: &[u8]) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        let mut child = self
            .session(host)?
            .command("sh")
            .arg("-c")
            .arg(script)
            .stdin(openssh::Stdio::piped())
            .stdout(openssh::Stdio::null())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await?;
        if let Some(mut stdin) = child.stdin().take() {
            stdin.write_all(input).await?;
            stdin.shutdown().await.ok();
        }
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Ok(())
    }

    /// Copies the folder `remote` of `host` (less the `exclude`d names) into `local`.
    pub async fn download_dir(
        &self,
        host: &str,
        remote: &str,
        exclude: &[&str],
        local: &Path,
    ) -> anyhow::Result<()> {
        let excludes: String = exclude
            .iter()
            .map(|e| format!(" --exclude={}", sq(&format!("./{e}"))))
            .collect();
        let out = self
            .session(host)?
            .command("sh")
            .arg("-c")
            .arg(format!(
                "[ -d {r} ] || exit 0; tar -C {r}{excludes} -cf - .",
                r = sq(remote)
            ))
            .output()
            .await
            .with_context(|| format!("host {host}: downloading {remote}"))?;
        if !out.status.success() {
            bail!(
                "host {host}: downloading {remote}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if out.stdout.is_empty() {
            return Ok(());
        }
        std::fs::create_dir_all(local).with_context(|| format!("creating {}", local.display()))?;
        use std::io::Write;
        let mut tar = std::process::Command::new("tar")
            .arg("-C")
            .arg(local)
            .arg("-xf")
            .arg("-")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .context("running tar")?;
        if let Some(mut stdin) = tar.stdin.take() {
            stdin
                .write_all(&out.stdout)
                .context("unpacking node files")?;
        }
        let status = tar.wait().context("running tar")?;
        if !status.success() {
            bail!(
                "unpacking {remote} of host {host} into {}: tar {status}",
                local.display()
            );
        }
        Ok(())
    }

    /// Checks every host before a run: root, the commands the run needs, and that no
    /// node's address is where the control connection comes from (a partition would
    /// cut splitbrain's own connection). One error names each host and what it lacks.
    pub async fn preflight(
        self: &Arc<Self>,
        commands: &[String],
        node_ips: &BTreeMap<String, IpAddr>,
    ) -> anyhow::Result<()> {
        let mut check = String::from("echo \"uid $(id -u)\"\necho \"control $SSH_CONNECTION\"\n");
        for c in BASE_COMMANDS
            .iter()
            .map(|s| s.to_string())
            .chain(commands.iter().cloned())
        {
            check.push_str(&format!(
                "command -v {c} >/dev/null 2>&1 || echo missing {c}\n",
                c = sq(&c)
            ));
        }
        let scripts = self
            .names()
            .into_iter()
            .map(|h| (h, check.clone()))
            .collect();
        let mut problems = Vec::new();
        let mut control = BTreeMap::new();
        for (host, result) in self.run_each(scripts).await {
            let shown = self
                .entry(&host)
                .map(HostEntry::display)
                .unwrap_or_default();
            match result {
                Err(e) => problems.push(format!("host {host} ({shown}): {e:#}")),
                Ok(out) => {
                    let mut lacks = Vec::new();
                    for line in out.lines() {
                        if let Some(uid) = line.strip_prefix("uid ") {
                            if uid.trim() != "0" {
                                lacks.push(format!("root (logged in as uid {})", uid.trim()));
                            }
                        } else if let Some(c) = line.strip_prefix("missing ") {
                            lacks.push(format!("the command `{c}`"));
                        } else if let Some(conn) = line.strip_prefix("control ") {
                            // `client_ip client_port server_ip server_port`
                            if let Some(ip) = conn
                                .split_whitespace()
                                .next()
                                .and_then(|ip| ip.parse::<IpAddr>().ok())
                            {
                                control.insert(host.clone(), ip);
                            }
                        }
                    }
                    if !lacks.is_empty() {
                        problems.push(format!("host {host} ({shown}) lacks {}", lacks.join(", ")));
                    }
                }
            }
        }
        problems.extend(control_conflicts(&control, node_ips));
        if problems.is_empty() {
            Ok(())
        } else {
            bail!("the hosts are not ready: {}", problems.join("; "))
        }
    }
}

/// Partitions drop the peers' addresses, so no two nodes may share one and none may be
/// the address a host sees the control connection come from. `control`: host → the
/// control connection's source address as that host sees it.
pub fn control_conflicts(
    control: &BTreeMap<String, IpAddr>,
    node_ips: &BTreeMap<String, IpAddr>,
) -> Vec<String> {
    let mut problems = Vec::new();
    for (host, from) in control {
        for (node, ip) in node_ips.iter().filter(|(n, _)| *n != host) {
            if ip == from {
                problems.push(format!(
                    "host {host} sees splitbrain's connection come from {from}, the address of {node}: a partition that cuts {node} off would cut splitbrain off too; run splitbrain on a machine that is not one of the hosts"
                ));
            }
        }
    }
    let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for (node, ip) in node_ips {
        if let Some(other) = seen.insert(*ip, node) {
            problems.push(format!(
                "{other} and {node} have the same address {ip}: partitions between them cannot be made"
            ));
        }
    }
    problems
}

/// What one run put on the hosts: the per-run folder on each, and where its nodes'
/// files go in the local run folder.
pub struct RemoteRun {
    pub hosts: Arc<Hosts>,
    /// `/tmp/splitbrain/<run>` on every host.
    pub root: String,
    /// The local run folder's `nodes/`.
    pub local_nodes: PathBuf,
}

/// The script `splitbrain clean --hosts` runs on every host: kills the node processes
/// recorded in any run's pid files (still the recorded process: same start time),
/// deletes every iptables rule tagged `splitbrain-`, and removes `/tmp/splitbrain`.
/// Prints one `removed ...` line per thing removed.
pub fn clean_script() -> String {
    use splitbrain_nemesis::net::remote::{remove_tagged_script, TAG_PREFIX};
    format!(
        "{alive}for f in /tmp/splitbrain/*/*/pid; do [ -f \"$f\" ] || continue\n\
         set -- $(cat \"$f\"); [ -n \"$2\" ] || continue\n\
         if alive $1 $2; then kill -CONT $1; kill -KILL $1; echo \"removed node process $1 ($f)\"; fi\n\
         done\n\
         n=$(iptables -w -S INPUT | grep -c -e '--comment \"\\?{TAG_PREFIX}')\n\
         {rules}\
         [ \"$n\" -gt 0 ] && echo \"removed $n tagged iptables rule(s)\"\n\
         if [ -d /tmp/splitbrain ]; then rm -rf /tmp/splitbrain && echo 'removed /tmp/splitbrain'; fi\n\
         exit 0\n",
        alive = runner::ALIVE_FN,
        rules = remove_tagged_script(TAG_PREFIX, true),
    )
}

/// Names in a node's remote folder that are not worth downloading.
const NOT_DOWNLOADED: [&str; 2] = ["data", "pid"];

impl RemoteRun {
    /// Downloads each node's folder (logs; not its data) into `nodes/<n>/`, then removes
    /// the run's folder from every host. Returns what went wrong.
    pub async fn finish(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for host in self.hosts.names() {
            let remote = format!("{}/{host}", self.root);
            if let Err(e) = self
                .hosts
                .download_dir(
                    &host,
                    &remote,
                    &NOT_DOWNLOADED,
                    &self.local_nodes.join(&host),
                )
                .await
            {
                problems.push(format!("{e:#}"));
            }
        }
        problems.extend(self.remove().await);
        problems
    }

    /// Removes the run's folder from every host (and `/tmp/splitbrain` once empty).
    pub async fn remove(&self) -> Vec<String> {
        let script = format!(
            "rm -rf {}; rmdir /tmp/splitbrain 2>/dev/null; exit 0",
            sq(&self.root)
        );
        let scripts = self
            .hosts
            .names()
            .into_iter()
            .map(|h| (h, script.clone()))
            .collect();
        self.hosts
            .run_each(scripts)
            .await
            .into_values()
            .filter_map(|r| r.err().map(|e| format!("{e:#}")))
            .collect()
    }

    /// The downloaded log files (absolute paths).
    pub fn log_files(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        for host in self.hosts.names() {
            if let Ok(entries) = std::fs::read_dir(self.local_nodes.join(&host)) {
                let mut logs: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "log") && p.is_file())
                    .collect();
                logs.sort();
                files.extend(logs);
            }
        }
        files
    }
}

impl splitbrain_nemesis::net::remote::RemoteShell for Hosts {
    fn run<'a>(
        &'a self,
        host: &'a str,
        script: String,
    ) -> splitbrain_nemesis::net::remote::ShellFuture<'a> {
        Box::pin(async move {
            Hosts::run(self, host, &script)
                .await
                .map_err(|e| format!("{e:#}"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<HostsFile> {
        HostsFile::parse(text, Path::new("/etc/sb/hosts.toml"))
    }

    #[test]
    fn a_hosts_file_names_users_ports_and_keys() {
        let f = parse(
            "identity = \"key\"\nport = 2222\n[hosts]\nn1 = \"root@10.0.0.1\"\nn2 = \"10.0.0.2:22\"\nn3 = { address = \"admin@db3\", identity = \"/k3\" }\n",
        )
        .unwrap();
        assert_eq!(f.clocks, Clocks::Fixed);
        let n1 = &f.hosts["n1"];
        assert_eq!(n1.user.as_deref(), Some("root"));
        assert_eq!(n1.port, Some(2222));
        assert_eq!(n1.identity.as_deref(), Some(Path::new("/etc/sb/key")));
        assert_eq!(f.hosts["n2"].port, Some(22));
        assert_eq!(f.hosts["n2"].user, None);
        assert_eq!(f.hosts["n3"].identity.as_deref(), Some(Path::new("/k3")));
        assert_eq!(f.hosts["n3"].display(), "admin@db3:2222");
        let f = parse("identity = \"~/.ssh/k\"\n[hosts]\nn1 = \"a@b\"\n").unwrap();
        if let Some(home) = std::env::var_os("HOME") {
            assert_eq!(
                f.hosts["n1"].identity,
                Some(PathBuf::from(home).join(".ssh/k"))
            );
        }
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let e = parse("[hosts]\nn1 = \"root@10.0.0.1\"\nn2 = \"root@10.0.0.2:ssh\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("hosts.toml line 3, `n2`"), "{e}");
        let e = parse("[hosts]\nn1 = \"a@b\"\nweb = \"c@d\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 3, `web`") && e.contains("n1..n2"), "{e}");
        let e = parse("clocks = \"sometimes\"\n[hosts]\nn1 = \"a@b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1, `clocks`"), "{e}");
        let e = parse("lab = true\nclocks = \"may-change\"\n[hosts]\nn1 = \"a@b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("share this machine's clock"), "{e}");
        let e = parse("[hosts]\nn1 = 5\n").unwrap_err().to_string();
        assert!(e.contains("hosts.toml") && e.contains("line"), "{e}");
        let e = parse("[hosts]\nn1 = \"a b@c\"\n").unwrap_err().to_string();
        assert!(e.contains("user@host"), "{e}");
    }

    #[test]
    fn the_control_address_and_shared_addresses_are_refused() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let nodes: BTreeMap<String, IpAddr> = [("n1", "10.0.0.1"), ("n2", "10.0.0.2")]
            .map(|(n, a)| (n.to_string(), ip(a)))
            .into();
        let apart: BTreeMap<String, IpAddr> = [("n1", "10.0.0.9"), ("n2", "10.0.0.9")]
            .map(|(n, a)| (n.to_string(), ip(a)))
            .into();
        assert!(control_conflicts(&apart, &nodes).is_empty());
        // splitbrain runs on n1: n2 sees it come from n1's address.
        let on_n1: BTreeMap<String, IpAddr> = [("n2".to_string(), ip("10.0.0.1"))].into();
        let problems = control_conflicts(&on_n1, &nodes);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("address of n1"), "{problems:?}");
        let same: BTreeMap<String, IpAddr> = [("n1", "10.0.0.1"), ("n2", "10.0.0.1")]
            .map(|(n, a)| (n.to_string(), ip(a)))
            .into();
        assert!(control_conflicts(&BTreeMap::new(), &same)[0].contains("same address"));
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sq("a'b"), "'a'\\''b'");
    }
}
