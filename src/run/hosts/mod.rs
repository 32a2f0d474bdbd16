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
//! Everything a run puts on a host lives in one folder, made by `mktemp -d` in
//! [`REMOTE_PARENT`] (`/tmp/splitbrain/run.XXXXXXXXXXXX`, root's alone: see
//! [`run_dir_script`]) and learned from the host, so it differs between hosts; it is
//! removed at teardown after the nodes' logs are downloaded.

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

/// How the hosts' SSH keys are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostKeys {
    /// The default (`host_keys = "strict"`): every host's key must already be in the
    /// known_hosts file (OpenSSH's `StrictHostKeyChecking yes`).
    Strict,
    /// `host_keys = "accept-new"`: a host not in the file yet is trusted on first
    /// sight and its key added to the file; a changed key is still refused.
    AcceptNew,
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
    /// A known_hosts file to check host keys against (instead of the user's own,
    /// `~/.ssh/known_hosts` or what `~/.ssh/config` names).
    pub known_hosts: Option<PathBuf>,
    /// Whether a host whose key is not known yet is refused (the default) or trusted
    /// and its key recorded.
    pub host_keys: HostKeys,
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
    host_keys: Option<String>,
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
        let host_keys = match raw.host_keys.as_deref() {
            None | Some("strict") => HostKeys::Strict,
            Some("accept-new") => HostKeys::AcceptNew,
            Some(other) => bail!(
                "{}: {other:?} must be \"strict\" (the default: every host's key must be known) or \"accept-new\" (trust a host not seen before and record its key)",
                at("host_keys")
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
            host_keys,
            lab: raw.lab,
        })
    }
}

/// Copies `from` into `to` until `from` ends, then shuts `to`. It holds one buffer of
/// [`STREAM_BUFFER`] bytes at a time: archives and binaries of any size pass through it
/// without being held in memory.
pub async fn stream(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> std::io::Result<u64> {
    use tokio::io::AsyncWriteExt;
    let mut from = tokio::io::BufReader::with_capacity(STREAM_BUFFER, from);
    let n = tokio::io::copy_buf(&mut from, to).await?;
    to.shutdown().await?;
    Ok(n)
}

/// The one buffer [`stream`] holds.
pub const STREAM_BUFFER: usize = 64 * 1024;

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

/// Where each run makes its own folder on a host.
pub const REMOTE_PARENT: &str = "/tmp/splitbrain";

/// The script that makes this run's folder on a host and prints its path.
///
/// The nodes' binary and scripts are run from that folder as root, so nobody else may be
/// able to put anything there: `parent` (made here, mode 0700, unless it exists) must be
/// a real directory (not a link) owned by the login user and writable by nobody else,
/// and the run's folder is a fresh `mktemp -d` (an unguessable name, mode 0700) in it.
/// `/tmp` is sticky, so once checked, a root-owned `parent` cannot be swapped. Exits 3
/// with the reason on standard error otherwise.
pub fn run_dir_script(parent: &str) -> String {
    format!(
        "umask 077\n\
         p={p}\n\
         mkdir \"$p\" 2>/dev/null\n\
         if [ -L \"$p\" ]; then echo \"$p is a symbolic link: splitbrain runs its nodes' files from there as root and follows no link; remove it\" >&2; exit 3; fi\n\
         if [ ! -d \"$p\" ]; then echo \"$p is not a directory; remove it\" >&2; exit 3; fi\n\
         set -- $(stat -c '%u %a' \"$p\") \"$(id -u)\"\n\
         if [ \"$1\" != \"$3\" ]; then echo \"$p is owned by uid $1, not by uid $3 who runs the nodes: whoever made it could plant the files run from there; remove it\" >&2; exit 3; fi\n\
         if [ $(( 0$2 & 022 )) -ne 0 ]; then echo \"$p has mode $2: others could plant the files run from there; remove it (or chmod 700 it)\" >&2; exit 3; fi\n\
         d=$(mktemp -d \"$p/run.XXXXXXXXXXXX\") || exit 3\n\
         echo \"$d\"\n",
        p = sq(parent)
    )
}

/// Checks what [`run_dir_script`] printed: a folder right inside `parent` with the name
/// `mktemp` gives (nothing a shell or a path could misread).
pub fn parse_run_dir(parent: &str, out: &str) -> anyhow::Result<String> {
    let dir = out.trim();
    let name = dir
        .strip_prefix(parent)
        .and_then(|r| r.strip_prefix("/run."))
        .ok_or_else(|| anyhow!("the run folder {dir:?} is not in {parent}"))?;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        bail!("the run folder {dir:?} is not a name mktemp makes");
    }
    Ok(dir.to_string())
}

/// One multiplexed SSH session per host.
pub struct Hosts {
    entries: BTreeMap<String, HostEntry>,
    sessions: BTreeMap<String, openssh::Session>,
    /// The private (0700, unguessable name) folder holding the control sockets, removed
    /// with the pool. Declared after `sessions` so that they close first.
    _control_dir: tempfile::TempDir,
}

impl std::fmt::Debug for Hosts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hosts")
            .field("entries", &self.entries)
            .finish_non_exhaustive()
    }
}

/// Why a connection failed, in ssh's own words, with what to do when it is the host key.
fn connect_error(e: &openssh::Error, file: &HostsFile) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    let text = text.replace(['\r', '\n'], " ");
    let key_problem = [
        "Host key verification failed",
        "HOST IDENTIFICATION HAS CHANGED",
        "host key",
    ]
    .iter()
    .any(|m| text.contains(m));
    if !key_problem {
        return text;
    }
    let file_named = match &file.known_hosts {
        Some(f) => format!("the known_hosts file {}", f.display()),
        None => "your known hosts (~/.ssh/known_hosts)".to_string(),
    };
    format!(
        "its host key is not the one recorded in {file_named}, or is not recorded there (host keys are checked strictly; add the key with `ssh-keyscan` after checking it, or say `host_keys = \"accept-new\"` in the hosts file to trust hosts not seen before): {text}"
    )
}

/// Seconds an SSH master without a command lives on (after the harness was killed).
const MASTER_IDLE_SECS: usize = 15;

/// What every host needs whatever runs there.
pub const BASE_COMMANDS: [&str; 10] = [
    "sh", "setsid", "tar", "kill", "iptables", "sed", "cut", "mktemp", "stat", "id",
];

impl Hosts {
    /// Opens a session to every host (in parallel). Host keys are checked against the
    /// user's known hosts (or the file the hosts file names), strictly unless the hosts
    /// file says `host_keys = "accept-new"`.
    pub async fn connect(file: &HostsFile) -> anyhow::Result<Hosts> {
        // The control sockets live in a fresh folder only this user can enter, so no
        // other local user can reach a master through them. Its path must stay short:
        // a socket's path has at most 108 bytes.
        use std::os::unix::fs::PermissionsExt;
        let control_dir = tempfile::Builder::new()
            .prefix("splitbrain-ssh-")
            // Made with this mode, not chmod-ed after: it is never open to others.
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .context("creating a private folder for the SSH control sockets")?;
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
            b.known_hosts_check(match file.host_keys {
                HostKeys::Strict => openssh::KnownHosts::Strict,
                HostKeys::AcceptNew => openssh::KnownHosts::Add,
            });
            if let Some(kh) = &file.known_hosts {
                b.user_known_hosts_file(kh);
            }
            // A master left by a harness that was killed exits once idle;
            // [`Hosts::keep_alive`] keeps a live run's masters busy.
            b.control_directory(control_dir.path())
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
                    "cannot reach host {name} ({}): {}",
                    entry.display(),
                    connect_error(&e, file)
                )),
            }
        }
        if !problems.is_empty() {
            bail!("{}", problems.join("; "));
        }
        Ok(Hosts {
            entries: file.hosts.clone(),
            sessions,
            _control_dir: control_dir,
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

    /// The private folder of the control sockets.
    #[cfg(test)]
    pub fn control_dir(&self) -> &Path {
        self._control_dir.path()
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
        let out = self.output(host, script).await?;
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

    /// Runs `script` with `sh -c` on `host`: its exit status and output, whatever they are.
    async fn output(&self, host: &str, script: &str) -> anyhow::Result<std::process::Output> {
        self.session(host)?
            .command("sh")
            .arg("-c")
            .arg(script)
            .output()
            .await
            .with_context(|| format!("host {host}: running a command over SSH"))
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

    /// Copies the local file `local` to `path` on `host` (mode `mode`), streamed through
    /// the SSH command's standard input: the splitbrain binary is ~190 MB, which is never
    /// held in memory.
    pub async fn upload_file(
        &self,
        host: &str,
        local: &Path,
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
        let mut file = tokio::fs::File::open(local)
            .await
            .with_context(|| format!("opening {}", local.display()))?;
        self.run_with_input(host, &script, &mut file)
            .await
            .with_context(|| format!("host {host}: uploading {} to {path}", local.display()))
    }

    /// Copies `files` (relative to the local folder `local`, each a file or a folder of
    /// its own; nothing else under a folder is taken along) into `remote` on `host`
    /// (created), as a tar archive streamed from a local `tar` through the SSH command
    /// into the host's `tar`. Links are followed (the caller checked that they stay
    /// inside `local`).
    pub async fn upload_files(
        &self,
        host: &str,
        local: &Path,
        files: &[PathBuf],
        remote: &str,
    ) -> anyhow::Result<()> {
        let mut tar = tokio::process::Command::new("tar");
        tar.arg("-C")
            .arg(local)
            .args(["--no-recursion", "--dereference", "-cf", "-"])
            // `./` first: no name is read as an option.
            .args(files.iter().map(|f| Path::new(".").join(f)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        let mut tar = tar.spawn().context("running tar")?;
        let mut archive = tar
            .stdout
            .take()
            .ok_or_else(|| anyhow!("tar's output is not a pipe"))?;
        let script = format!("mkdir -p {r} && tar -C {r} -xf -", r = sq(remote));
        let sent = self.run_with_input(host, &script, &mut archive).await;
        let packed = tar.wait_with_output().await.context("running tar")?;
        if !packed.status.success() {
            bail!(
                "packing {} for host {host}: {}",
                local.display(),
                String::from_utf8_lossy(&packed.stderr).trim()
            );
        }
        sent.with_context(|| format!("host {host}: uploading {} to {remote}", local.display()))
    }

    /// Runs `script` on `host` with `input` streamed to its standard input.
    async fn run_with_input(
        &self,
        host: &str,
        script: &str,
        input: &mut (impl tokio::io::AsyncRead + Unpin),
    ) -> anyhow::Result<()> {
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
        let mut stdin = child
            .stdin()
            .take()
            .ok_or_else(|| anyhow!("the SSH command's input is not a pipe"))?;
        let streamed = stream(input, &mut stdin).await;
        drop(stdin);
        let out = child.wait_with_output().await?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        streamed.context("sending over SSH")?;
        Ok(())
    }

    /// Copies the folder `remote` of `host` (less the `exclude`d names) into `local`,
    /// streamed from the host's `tar` through the SSH command into a local `tar`.
    pub async fn download_dir(
        &self,
        host: &str,
        remote: &str,
        exclude: &[&str],
        local: &Path,
    ) -> anyhow::Result<()> {
        use tokio::io::AsyncReadExt;
        let excludes: String = exclude
            .iter()
            .map(|e| format!(" --exclude={}", sq(&format!("./{e}"))))
            .collect();
        let mut child = self
            .session(host)?
            .command("sh")
            .arg("-c")
            .arg(format!(
                "[ -d {r} ] || exit 0; tar -C {r}{excludes} -cf - .",
                r = sq(remote)
            ))
            .stdin(openssh::Stdio::null())
            .stdout(openssh::Stdio::piped())
            .stderr(openssh::Stdio::piped())
            .spawn()
            .await
            .with_context(|| format!("host {host}: downloading {remote}"))?;
        let mut archive = child
            .stdout()
            .take()
            .ok_or_else(|| anyhow!("the SSH command's output is not a pipe"))?;
        // A folder that is not there sends nothing, and there is nothing to unpack.
        let mut first = [0u8; 512];
        let got = archive
            .read(&mut first)
            .await
            .with_context(|| format!("host {host}: downloading {remote}"))?;
        let unpacked = if got == 0 {
            Ok(())
        } else {
            self.unpack(&first[..got], &mut archive, local).await
        };
        drop(archive);
        let out = child
            .wait_with_output()
            .await
            .with_context(|| format!("host {host}: downloading {remote}"))?;
        if !out.status.success() {
            bail!(
                "host {host}: downloading {remote}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        unpacked
            .with_context(|| format!("unpacking {remote} of host {host} into {}", local.display()))
    }

    /// Unpacks the tar archive `head` + `rest` into `local` (created) with a local `tar`.
    async fn unpack(
        &self,
        head: &[u8],
        rest: &mut (impl tokio::io::AsyncRead + Unpin),
        local: &Path,
    ) -> anyhow::Result<()> {
        use tokio::io::AsyncWriteExt;
        std::fs::create_dir_all(local).with_context(|| format!("creating {}", local.display()))?;
        let mut tar = tokio::process::Command::new("tar")
            .arg("-C")
            .arg(local)
            .args(["-xf", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("running tar")?;
        let mut stdin = tar
            .stdin
            .take()
            .ok_or_else(|| anyhow!("tar's input is not a pipe"))?;
        let mut streamed = stdin.write_all(head).await;
        if streamed.is_ok() {
            streamed = stream(rest, &mut stdin).await.map(drop);
        }
        drop(stdin);
        let out = tar.wait_with_output().await.context("running tar")?;
        if !out.status.success() {
            bail!("tar: {}", String::from_utf8_lossy(&out.stderr).trim());
        }
        streamed.context("receiving over SSH")?;
        Ok(())
    }

    /// Makes this run's folder on every host ([`run_dir_script`]): host → its folder.
    /// One error names each host that refused and why.
    pub async fn make_run_dirs(self: &Arc<Self>) -> anyhow::Result<BTreeMap<String, String>> {
        let script = run_dir_script(REMOTE_PARENT);
        let mut tasks = Vec::new();
        for host in self.names() {
            let (me, script) = (self.clone(), script.clone());
            tasks.push((
                host.clone(),
                tokio::spawn(async move { me.output(&host, &script).await }),
            ));
        }
        let mut dirs = BTreeMap::new();
        let mut problems = Vec::new();
        for (host, task) in tasks {
            let made = match task.await {
                Ok(Ok(out)) if out.status.success() => {
                    parse_run_dir(REMOTE_PARENT, &String::from_utf8_lossy(&out.stdout))
                }
                Ok(Ok(out)) => Err(anyhow!("{}", String::from_utf8_lossy(&out.stderr).trim())),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(anyhow!("{e}")),
            };
            match made {
                Ok(dir) => {
                    dirs.insert(host, dir);
                }
                Err(e) => problems.push(format!("host {host}: {e:#}")),
            }
        }
        if problems.is_empty() {
            return Ok(dirs);
        }
        // The folders that were made go again.
        let removal = dirs
            .iter()
            .map(|(h, d)| (h.clone(), format!("rm -rf {}", sq(d))))
            .collect();
        let _ = self.run_each(removal).await;
        bail!(
            "cannot make the run's folder on the hosts: {}",
            problems.join("; ")
        )
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
    /// Host → the run's folder there (`/tmp/splitbrain/run.XXXXXXXXXXXX`, as `mktemp`
    /// made it on that host).
    pub roots: BTreeMap<String, String>,
    /// The local run folder's `nodes/`.
    pub local_nodes: PathBuf,
}

/// The script `splitbrain clean --hosts` runs on every host: kills the node processes
/// recorded in any run's pid files (still the recorded process: same start time),
/// deletes every iptables rule tagged `splitbrain-`, and removes [`REMOTE_PARENT`].
/// Prints one `removed ...` line per thing removed.
///
/// It follows no link: a pid file is read only in a [`REMOTE_PARENT`] that is a real
/// directory owned by the login user and writable by nobody else (the check of
/// [`run_dir_script`]), and only if neither it nor its folders are links; a parent that
/// fails the check is left alone and said so (`refused ...`), as another user's files
/// are none of splitbrain's business and its pid files are not to be trusted.
pub fn clean_script() -> String {
    use splitbrain_nemesis::net::remote::{remove_tagged_script, TAG_PREFIX};
    format!(
        "{alive}{kill_group}p={p}\n\
         safe=no\n\
         if [ -d \"$p\" ] && [ ! -L \"$p\" ]; then\n\
         set -- $(stat -c '%u %a' \"$p\") \"$(id -u)\"\n\
         if [ \"$1\" = \"$3\" ] && [ $(( 0$2 & 022 )) -eq 0 ]; then safe=yes; else echo \"refused $p: owned by uid $1 with mode $2, not made by splitbrain\"; fi\n\
         elif [ -L \"$p\" ]; then echo \"refused $p: a symbolic link, not made by splitbrain\"; fi\n\
         if [ $safe = yes ]; then for f in \"$p\"/*/*/pid; do\n\
         [ -f \"$f\" ] && [ ! -L \"$f\" ] || continue\n\
         n=${{f%/pid}}; r=${{n%/*}}\n\
         [ ! -L \"$n\" ] && [ ! -L \"$r\" ] || continue\n\
         set -- $(cat \"$f\"); [ -n \"$2\" ] || continue\n\
         if alive $1 $2; then kill_group $1 $2; echo \"removed node process $1 ($f)\"; fi\n\
         done; fi\n\
         n=$(iptables -w -S INPUT | grep -c -e '--comment \"\\?{TAG_PREFIX}')\n\
         {rules}\
         [ \"$n\" -gt 0 ] && echo \"removed $n tagged iptables rule(s)\"\n\
         if [ $safe = yes ]; then rm -rf \"$p\" && echo \"removed $p\"; fi\n\
         exit 0\n",
        alive = runner::ALIVE_FN,
        kill_group = runner::KILL_GROUP_FN,
        p = sq(REMOTE_PARENT),
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
        for (host, root) in &self.roots {
            let remote = format!("{root}/{host}");
            if let Err(e) = self
                .hosts
                .download_dir(host, &remote, &NOT_DOWNLOADED, &self.local_nodes.join(host))
                .await
            {
                problems.push(format!("{e:#}"));
            }
        }
        problems.extend(self.remove().await);
        problems
    }

    /// Removes the run's folder from every host (and [`REMOTE_PARENT`] once empty).
    pub async fn remove(&self) -> Vec<String> {
        let scripts = self
            .roots
            .iter()
            .map(|(h, root)| {
                let script = format!(
                    "rm -rf {}; rmdir {} 2>/dev/null; exit 0",
                    sq(root),
                    sq(REMOTE_PARENT)
                );
                (h.clone(), script)
            })
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
    fn host_keys_are_strict_unless_the_file_says_accept_new() {
        let f = parse("[hosts]\nn1 = \"a@b\"\n").unwrap();
        assert_eq!(f.host_keys, HostKeys::Strict);
        assert_eq!(f.known_hosts, None, "the user's own known hosts");
        let f = parse("host_keys = \"accept-new\"\nknown_hosts = \"kh\"\n[hosts]\nn1 = \"a@b\"\n")
            .unwrap();
        assert_eq!(f.host_keys, HostKeys::AcceptNew);
        assert_eq!(f.known_hosts.as_deref(), Some(Path::new("/etc/sb/kh")));
        let f = parse("host_keys = \"strict\"\n[hosts]\nn1 = \"a@b\"\n").unwrap();
        assert_eq!(f.host_keys, HostKeys::Strict);
        let e = parse("lab = true\nhost_keys = \"yes\"\n[hosts]\nn1 = \"a@b\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hosts.toml line 2, `host_keys`") && e.contains("accept-new"),
            "{e}"
        );
        let e = parse("host_keys = 1\n[hosts]\nn1 = \"a@b\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("host_keys") && e.contains("line 1"), "{e}");
    }

    /// Runs [`run_dir_script`] for `parent` with this machine's `sh`.
    fn make_run_dir(parent: &Path) -> (bool, String, String) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(run_dir_script(&parent.to_string_lossy()))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    #[test]
    fn the_run_folder_is_fresh_private_and_only_in_a_parent_of_our_own() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap();
        let parent = tmp.path().join("splitbrain");
        let shown = parent.to_string_lossy().into_owned();

        // Made when missing, 0700; each run gets a folder of its own, 0700.
        let (ok, out, err) = make_run_dir(&parent);
        assert!(ok, "{err}");
        let first = parse_run_dir(&shown, &out).unwrap();
        let meta = std::fs::symlink_metadata(&parent).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        let meta = std::fs::symlink_metadata(&first).unwrap();
        assert!(meta.is_dir());
        assert_eq!(meta.mode() & 0o777, 0o700);
        assert_eq!(meta.uid(), nix::unistd::geteuid().as_raw());
        let (ok, out, _) = make_run_dir(&parent);
        assert!(ok);
        assert_ne!(parse_run_dir(&shown, &out).unwrap(), first, "a fresh name");

        // Others may write in it: refused.
        std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (ok, _, err) = make_run_dir(&parent);
        assert!(!ok && err.contains("has mode 777"), "{err}");
        std::fs::remove_dir_all(&parent).unwrap();

        // A link (even to a folder of our own): refused, nothing made through it.
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &parent).unwrap();
        let (ok, _, err) = make_run_dir(&parent);
        assert!(!ok && err.contains("is a symbolic link"), "{err}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
        std::fs::remove_file(&parent).unwrap();

        // A file: refused.
        std::fs::write(&parent, "").unwrap();
        let (ok, _, err) = make_run_dir(&parent);
        assert!(!ok && err.contains("not a directory"), "{err}");
        std::fs::remove_file(&parent).unwrap();

        // Another user's: refused (only root can make one for the test).
        if nix::unistd::geteuid().is_root() {
            std::fs::create_dir(&parent).unwrap();
            std::os::unix::fs::chown(&parent, Some(65534), Some(65534)).unwrap();
            std::fs::set_permissions(&parent, std::fs::Permissions::from_mode(0o700)).unwrap();
            let (ok, _, err) = make_run_dir(&parent);
            assert!(
                !ok && err.contains("is owned by uid 65534, not by uid 0"),
                "{err}"
            );
            assert_eq!(std::fs::read_dir(&parent).unwrap().count(), 0);
        }
    }

    #[test]
    fn only_a_mktemp_name_in_the_parent_is_taken_as_the_run_folder() {
        let p = "/tmp/splitbrain";
        assert_eq!(
            parse_run_dir(p, "/tmp/splitbrain/run.a1B2c3D4e5F6\n").unwrap(),
            "/tmp/splitbrain/run.a1B2c3D4e5F6"
        );
        for bad in [
            "",
            "/tmp/splitbrain",
            "/tmp/splitbrain/run.",
            "/tmp/other/run.abc",
            "/tmp/splitbrain/run.a/../../etc",
            "/tmp/splitbrain/run.a b",
        ] {
            assert!(parse_run_dir(p, bad).is_err(), "{bad:?}");
        }
    }

    /// A source of `total` bytes that counts what it handed out.
    struct Counting {
        left: u64,
        given: Arc<std::sync::atomic::AtomicU64>,
    }

    impl tokio::io::AsyncRead for Counting {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let n = (buf.remaining() as u64).min(self.left) as usize;
            buf.put_slice(&vec![7u8; n]);
            self.left -= n as u64;
            self.given
                .fetch_add(n as u64, std::sync::atomic::Ordering::SeqCst);
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// A sink that checks, at every write, how far the source ran ahead of it.
    struct Lagging {
        taken: u64,
        given: Arc<std::sync::atomic::AtomicU64>,
        most_ahead: u64,
    }

    impl tokio::io::AsyncWrite for Lagging {
        fn poll_write(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            let given = self.given.load(std::sync::atomic::Ordering::SeqCst);
            self.most_ahead = self.most_ahead.max(given - self.taken);
            // Small writes, as a pipe takes them.
            let n = buf.len().min(4096);
            self.taken += n as u64;
            std::task::Poll::Ready(Ok(n))
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[test]
    fn uploads_and_downloads_stream_a_buffer_at_a_time() {
        // 1 GiB through: the source is never more than one buffer ahead of the sink.
        let total = 1u64 << 30;
        let given = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut from = Counting {
            left: total,
            given: given.clone(),
        };
        let mut to = Lagging {
            taken: 0,
            given: given.clone(),
            most_ahead: 0,
        };
        let n = block_on(stream(&mut from, &mut to)).unwrap();
        assert_eq!((n, to.taken), (total, total));
        assert!(
            to.most_ahead <= STREAM_BUFFER as u64,
            "{} bytes held at once",
            to.most_ahead
        );
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sq("a'b"), "'a'\\''b'");
    }
}
