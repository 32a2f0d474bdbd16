//! Descriptions of databases splitbrain did not write (`splitbrain-db`).
//!
//! A description is a TOML file saying how to run one node of a database: which
//! command must be installed, how to start a node (argv templates with placeholders
//! such as `{addr}`, `{port.client}` and `{peers}`), how to tell it is ready (a TCP
//! connect or an HTTP GET), what to remove when it is wiped, which log lines mean it
//! crashed, and which built-in client talks to it. `splitbrain test --db FILE.toml`
//! loads one from a file; `--db etcd` loads a built-in one (see [`builtin_names`]).
//!
//! This crate owns the format and everything that only needs the format: parsing with
//! errors that name the file, line and key; expanding templates for one node; the
//! readiness [`Probe`]; the crash [`CrashPatterns`]. It starts no processes: the driver
//! does that with what [`Description::start_command`] gives it.
//!
//! # Example
//! ```
//! use splitbrain_db::{ClusterState, ClusterVars, Description, NodeVars};
//!
//! let etcd = Description::resolve("etcd").expect("built in");
//! let cluster = ClusterVars {
//!     nodes: vec![("n1".into(), "10.0.0.1".parse().unwrap())],
//!     token: "run-1".into(),
//! };
//! let node = NodeVars {
//!     name: "n1".into(),
//!     id: 1,
//!     addr: "10.0.0.1".parse().unwrap(),
//!     data_dir: "/store/run-1/n1/data".into(),
//!     node_dir: "/store/run-1/n1".into(),
//!     state: ClusterState::New,
//! };
//! let (argv, _env) = etcd.start_command(&node, &cluster).unwrap();
//! assert_eq!(argv[0], "etcd");
//! assert!(argv.contains(&"n1=http://10.0.0.1:2380".to_string()));
//! ```
//!
//! # Layout
//! - `lib.rs`: the [`Description`] and its loading and validation.
//! - `error.rs`: [`DescriptionError`] and how toml's spans become lines.
//! - `template.rs`: [`Template`] parsing (at load time) and expansion.
//! - `probe.rs`: [`Probe`], the readiness check.
//! - `crash.rs`: [`CrashPatterns`], the crash-line scan.
//! - `confine.rs`: removing and opening node files without leaving the node's folder.
//! - `upload.rs`: which of the description's files go to SSH hosts.
//! - `builtin/*.toml`: the built-in descriptions, embedded in the binary.

pub mod confine;
mod crash;
mod error;
mod probe;
mod template;
mod upload;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

pub use confine::ConfineError;
pub use crash::{
    CrashMatch, CrashPatterns, LogFile, ScanReport, MAX_LINE_CHARS, MAX_MATCHES_PER_FILE, OVERLAP,
    PIECE, SCAN_HEAD, SCAN_TAIL,
};
pub use error::{DescriptionError, Location};
pub use probe::{Probe, ProbeError, ATTEMPT_TIMEOUT, POLL_INTERVAL};
pub use template::{Placeholder, Template, Vars};
pub use upload::UPLOAD_LIMIT;

use confine::normalize;
use error::Locator;
use template::Scope;

/// The built-in descriptions: name and TOML text.
const BUILTINS: &[(&str, &str)] = &[("etcd", include_str!("builtin/etcd.toml"))];
/// Their names, in listing order.
const BUILTIN_NAMES: &[&str] = &["etcd"];

/// The names `--db` accepts besides a path and `bundled`.
pub fn builtin_names() -> &'static [&'static str] {
    BUILTIN_NAMES
}

/// The TOML text of a built-in description (for `splitbrain dbs --show`).
pub fn builtin_text(name: &str) -> Option<&'static str> {
    BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Every built-in description's name and `about` line, in listing order.
pub fn builtin_list() -> Vec<(&'static str, String)> {
    BUILTINS
        .iter()
        .map(|(name, text)| {
            let about = match Description::from_str(text, Source::Builtin(name)) {
                Ok(d) => d.about,
                Err(e) => format!("(broken built-in description: {e})"),
            };
            (*name, about)
        })
        .collect()
}

/// Where a description came from; errors name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A description compiled into the binary (`--db etcd`).
    Builtin(&'static str),
    /// A description file (`--db ./mydb.toml`).
    File(PathBuf),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Builtin(name) => write!(f, "built-in {name}"),
            Source::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// A command that must be on PATH before any node starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// Looked up on PATH (or used as is when it contains `/`).
    pub command: String,
    /// The Debian package that provides it, named in the error when it is missing.
    pub package: Option<String>,
}

/// How to run one node: `[node]`.
#[derive(Debug, Clone)]
pub struct NodeSection {
    /// The ports a node listens on, by name (`client`, `peer`); `{port.NAME}` expands
    /// to these. Every node uses the same numbers: nodes differ by address.
    pub ports: BTreeMap<String, u16>,
    /// argv of a node, command first.
    pub start: Vec<Template>,
    /// One node's entry in `{peers}`; `None` when the description has no `{peers}`.
    pub peer: Option<Template>,
    /// What joins the entries of `{peers}`.
    pub peer_separator: String,
    /// Between SIGTERM and SIGKILL when a node is stopped.
    pub stop_grace: Duration,
    /// Extra environment of a node, values expanded; sorted by name.
    pub env: Vec<(String, Template)>,
    /// Log files the node writes itself (its stdout and stderr are always captured).
    pub logs: Vec<Template>,
}

/// `[ready]`: how to tell a started node is ready.
#[derive(Debug, Clone)]
pub struct ReadyProbe {
    pub check: ReadyCheck,
    /// How long a node may take to become ready before its start counts as failed.
    pub timeout: Duration,
}

/// The unexpanded form of a [`Probe`].
#[derive(Debug, Clone)]
pub enum ReadyCheck {
    /// `GET url` answers 2xx, and its body contains `expect` if given.
    Http {
        url: Template,
        expect: Option<String>,
    },
    /// A TCP connection to `host:port` succeeds.
    Tcp(Template),
}

/// `[client]`: which client talks to the nodes: a built-in one (`kind`), or an
/// external adapter process (`exec`, speaking the adapter protocol of
/// the README's "The adapter protocol").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSpec {
    /// The etcd v3 JSON-gateway client, on the named port.
    Etcd { port: String },
    /// The bundled Raft KV's client, on the named port.
    Bundled { port: String },
    /// An adapter: this command (templates, expanded per node). The adapter learns
    /// its node's address and every named port from the protocol's handshake.
    Exec { argv: Vec<Template> },
}

impl ClientSpec {
    /// The client kind as written in `client.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientSpec::Etcd { .. } => "etcd",
            ClientSpec::Bundled { .. } => "bundled",
            ClientSpec::Exec { .. } => "exec",
        }
    }

    /// The named port (a key of [`NodeSection::ports`]) a built-in client connects to;
    /// `None` for an adapter, which is told every port.
    pub fn port(&self) -> Option<&str> {
        match self {
            ClientSpec::Etcd { port } | ClientSpec::Bundled { port } => Some(port),
            ClientSpec::Exec { .. } => None,
        }
    }
}

/// The client kinds `client.kind` accepts.
const CLIENT_KINDS: &str = "`etcd`, `bundled`";

/// Whether a node starts a new cluster or rejoins with its data: `{cluster_state}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    /// The node's first start (`new`).
    New,
    /// A restart of a node that has data (`existing`).
    Existing,
}

impl ClusterState {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterState::New => "new",
            ClusterState::Existing => "existing",
        }
    }
}

/// What placeholders expand to for one node.
#[derive(Debug, Clone)]
pub struct NodeVars {
    /// `{name}`: `n1`, `n2`, ...
    pub name: String,
    /// `{id}`: 1-based.
    pub id: u64,
    /// `{addr}`: the IP the node listens on.
    pub addr: IpAddr,
    /// `{data_dir}`: inside `node_dir`.
    pub data_dir: PathBuf,
    /// `{node_dir}`: the node's folder in the run store; wipe paths must lie inside.
    pub node_dir: PathBuf,
    /// `{cluster_state}`.
    pub state: ClusterState,
}

/// What placeholders expand to for the whole cluster.
#[derive(Debug, Clone)]
pub struct ClusterVars {
    /// Every node's name and address, in id order (`{peers}`, `{nodes}`).
    pub nodes: Vec<(String, IpAddr)>,
    /// `{token}`: unique per run.
    pub token: String,
}

/// A node's extra environment: (name, value) pairs, sorted by name.
pub type Env = Vec<(String, String)>;

/// How to run a node of one database: a parsed and validated description.
#[derive(Debug, Clone)]
pub struct Description {
    /// `name`: what reports call the database.
    pub name: String,
    /// `about`: one line for `splitbrain dbs`.
    pub about: String,
    /// Where it was loaded from; errors name it.
    pub source: Source,
    /// The folder holding the description file, absolute (`{description_dir}`);
    /// `None` for a built-in description.
    pub dir: Option<PathBuf>,
    /// `[[requires]]`: commands that must be installed.
    pub requires: Vec<Requirement>,
    /// `[node]`.
    pub node: NodeSection,
    /// `[ready]`.
    pub ready: ReadyProbe,
    /// `[wipe] paths`: each starts with `{node_dir}` or `{data_dir}`.
    pub wipe: Vec<Template>,
    /// `[crash] patterns`.
    pub crash: CrashPatterns,
    /// `[client]`.
    pub client: ClientSpec,
    /// `[files] upload`: paths relative to the description's folder (files, or folders
    /// with everything in them) that go to each host with `--hosts`, besides those its
    /// node's templates name as `{description_dir}/...`. Checked at load to stay inside.
    pub upload: Vec<PathBuf>,
}

impl Description {
    /// Loads `--db ARG`: a built-in name (`etcd`) or a path (contains `/` or ends in
    /// `.toml`). `bundled` is not a description; the caller handles it before this.
    pub fn resolve(arg: &str) -> Result<Description, DescriptionError> {
        if arg == "bundled" {
            return Err(DescriptionError::Bundled);
        }
        if arg.contains('/') || arg.ends_with(".toml") {
            let path = PathBuf::from(arg);
            let text = std::fs::read_to_string(&path).map_err(|source| DescriptionError::Read {
                path: path.clone(),
                source,
            })?;
            return Description::from_str(&text, Source::File(path));
        }
        match BUILTINS.iter().find(|(name, _)| *name == arg) {
            Some((name, text)) => Description::from_str(text, Source::Builtin(name)),
            None => Err(DescriptionError::UnknownDatabase {
                name: arg.to_string(),
                known: BUILTIN_NAMES
                    .iter()
                    .map(|n| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// Parses and validates a description's TOML `text`.
    pub fn from_str(text: &str, source: Source) -> Result<Description, DescriptionError> {
        let at = Locator::new(text, &source);
        let raw: RawDescription = serde_path_to_error::deserialize(toml::Deserializer::new(text))
            .map_err(|e| at.toml_error(e))?;
        raw.validate(&at, source.clone())
    }

    /// Every required command is installed; else an error naming the first missing
    /// one and its package (`etcd is not installed: apt-get install etcd-server`).
    pub fn check_requirements(&self) -> Result<(), DescriptionError> {
        match self.missing_requirements().into_iter().next() {
            None => Ok(()),
            Some(r) => Err(DescriptionError::NotInstalled {
                command: r.command.clone(),
                package: r.package.clone(),
            }),
        }
    }

    /// The required commands that are not installed.
    pub fn missing_requirements(&self) -> Vec<&Requirement> {
        self.requires
            .iter()
            .filter(|r| !on_path(&r.command))
            .collect()
    }

    /// The named ports every node listens on.
    pub fn ports(&self) -> &BTreeMap<String, u16> {
        &self.node.ports
    }

    /// Between SIGTERM and SIGKILL when a node is stopped.
    pub fn stop_grace(&self) -> Duration {
        self.node.stop_grace
    }

    /// How long a started node may take to pass its [`Probe`].
    pub fn ready_timeout(&self) -> Duration {
        self.ready.timeout
    }

    /// The start command expanded for one node (argv[0] first) and its extra
    /// environment.
    pub fn start_command(
        &self,
        node: &NodeVars,
        cluster: &ClusterVars,
    ) -> Result<(Vec<String>, Env), DescriptionError> {
        let peers = self.peers(cluster);
        let vars = self.vars(node, cluster, Some(&peers));
        let argv: Vec<String> = self.node.start.iter().map(|t| t.expand(&vars)).collect();
        if argv.first().is_none_or(|c| c.is_empty()) {
            return Err(DescriptionError::Expand {
                source_name: self.source.to_string(),
                key: "node.start[0]".into(),
                message: format!("the command expands to nothing for node {}", node.name),
            });
        }
        let env = self
            .node
            .env
            .iter()
            .map(|(k, t)| (k.clone(), t.expand(&vars)))
            .collect();
        Ok((argv, env))
    }

    /// The readiness probe expanded for one node.
    pub fn ready_probe(&self, node: &NodeVars, cluster: &ClusterVars) -> Probe {
        let vars = self.vars(node, cluster, None);
        match &self.ready.check {
            ReadyCheck::Http { url, expect } => Probe::Http {
                url: url.expand(&vars),
                expect: expect.clone(),
            },
            ReadyCheck::Tcp(addr) => Probe::Tcp(addr.expand(&vars)),
        }
    }

    /// What to remove when the node is wiped, each checked to lie strictly inside
    /// `node.node_dir` (no `..` escapes).
    pub fn wipe_paths(
        &self,
        node: &NodeVars,
        cluster: &ClusterVars,
    ) -> Result<Vec<PathBuf>, DescriptionError> {
        let vars = self.vars(node, cluster, None);
        let root = normalize(&node.node_dir);
        let mut out = Vec::new();
        for (i, t) in self.wipe.iter().enumerate() {
            let raw = PathBuf::from(t.expand(&vars));
            let inside = root
                .as_ref()
                .and_then(|root| normalize(&raw).filter(|p| p.starts_with(root) && p != root));
            match inside {
                Some(path) => out.push(path),
                None => {
                    return Err(DescriptionError::Expand {
                        source_name: self.source.to_string(),
                        key: format!("wipe.paths[{i}]"),
                        message: format!(
                            "`{t}` expands to {} for node {}, which is not inside its folder {}",
                            raw.display(),
                            node.name,
                            node.node_dir.display()
                        ),
                    })
                }
            }
        }
        Ok(out)
    }

    /// The extra log files the node writes itself, expanded.
    pub fn log_files(&self, node: &NodeVars, cluster: &ClusterVars) -> Vec<PathBuf> {
        let vars = self.vars(node, cluster, None);
        self.node
            .logs
            .iter()
            .map(|t| PathBuf::from(t.expand(&vars)))
            .collect()
    }

    /// The adapter command of an `exec` client, expanded for one node; `None` for a
    /// built-in client.
    pub fn exec_command(&self, node: &NodeVars, cluster: &ClusterVars) -> Option<Vec<String>> {
        let ClientSpec::Exec { argv, .. } = &self.client else {
            return None;
        };
        let vars = self.vars(node, cluster, None);
        Some(argv.iter().map(|t| t.expand(&vars)).collect())
    }

    /// Which client talks to the nodes.
    pub fn client(&self) -> &ClientSpec {
        &self.client
    }

    /// The port number a built-in client connects to (`None` for an adapter).
    pub fn client_port(&self) -> Option<u16> {
        // client.port is checked against node.ports at load time.
        self.node.ports.get(self.client.port()?).copied()
    }

    /// `{peers}`: each node's `peer` template, joined.
    fn peers(&self, cluster: &ClusterVars) -> String {
        let Some(peer) = &self.node.peer else {
            return String::new();
        };
        cluster
            .nodes
            .iter()
            .enumerate()
            .map(|(i, (name, addr))| {
                peer.expand(&Vars {
                    name,
                    id: i as u64 + 1,
                    addr: *addr,
                    ports: &self.node.ports,
                    data_dir: None,
                    node_dir: None,
                    peers: None,
                    cluster_state: None,
                    token: &cluster.token,
                    nodes: cluster.nodes.len(),
                    description_dir: self.dir.as_ref(),
                })
            })
            .collect::<Vec<_>>()
            .join(&self.node.peer_separator)
    }

    fn vars<'a>(
        &'a self,
        node: &'a NodeVars,
        cluster: &'a ClusterVars,
        peers: Option<&'a str>,
    ) -> Vars<'a> {
        Vars {
            name: &node.name,
            id: node.id,
            addr: node.addr,
            ports: &self.node.ports,
            data_dir: Some(&node.data_dir),
            node_dir: Some(&node.node_dir),
            peers,
            cluster_state: Some(node.state.as_str()),
            token: &cluster.token,
            nodes: cluster.nodes.len(),
            description_dir: self.dir.as_ref(),
        }
    }
}

/// Whether a path template stays in the node's folder by its text: it starts with
/// `{node_dir}` or `{data_dir}` and has no `..`. (Links are dealt with where the path
/// is used: [`confine`].)
fn inside_node_dir(t: &Template) -> bool {
    let rest = t.after_leading();
    matches!(
        t.leading_placeholder(),
        Some(Placeholder::NodeDir | Placeholder::DataDir)
    ) && (rest.is_empty() || rest.starts_with('/'))
        && !Path::new(&rest)
            .components()
            .any(|c| c == Component::ParentDir)
}

/// Whether `command` is an executable file on PATH (or at its path, with a `/`).
fn on_path(command: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        return executable(Path::new(command));
    }
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| executable(&dir.join(command)))
}

// ---- The TOML shape. Values checked after parsing are `Spanned` for their line. ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDescription {
    name: Spanned<String>,
    about: String,
    #[serde(default)]
    requires: Vec<RawRequirement>,
    node: RawNode,
    ready: Spanned<RawReady>,
    #[serde(default)]
    wipe: RawWipe,
    #[serde(default)]
    crash: RawCrash,
    client: Spanned<RawClient>,
    #[serde(default)]
    files: RawFiles,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFiles {
    #[serde(default)]
    upload: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequirement {
    command: Spanned<String>,
    package: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    #[serde(default)]
    ports: BTreeMap<String, Spanned<u16>>,
    start: Spanned<Vec<Spanned<String>>>,
    peer: Option<Spanned<String>>,
    #[serde(default = "default_separator")]
    peer_separator: String,
    stop_grace: Option<Spanned<f64>>,
    #[serde(default)]
    env: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    logs: Vec<Spanned<String>>,
}

fn default_separator() -> String {
    ",".to_string()
}

/// `node.stop_grace` when not given.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(2);
/// `ready.timeout` when not given.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest `stop_grace` or `ready.timeout` accepted (one hour).
const MAX_SECONDS: f64 = 3600.0;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReady {
    http: Option<Spanned<String>>,
    tcp: Option<Spanned<String>>,
    expect: Option<Spanned<String>>,
    timeout: Option<Spanned<f64>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWipe {
    #[serde(default)]
    paths: Vec<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrash {
    #[serde(default)]
    patterns: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    kind: Option<Spanned<String>>,
    exec: Option<Spanned<Vec<Spanned<String>>>>,
    port: Option<Spanned<String>>,
}

/// A number of seconds within (0, one hour] (or 0 when `zero_ok`).
fn seconds(
    at: &Locator<'_>,
    key: &str,
    value: Option<&Spanned<f64>>,
    default: Duration,
    zero_ok: bool,
) -> Result<Duration, DescriptionError> {
    let Some(v) = value else {
        return Ok(default);
    };
    let s = *v.get_ref();
    let low_ok = if zero_ok { s >= 0.0 } else { s > 0.0 };
    if !s.is_finite() || !low_ok || s > MAX_SECONDS {
        let low = if zero_ok { "0" } else { "more than 0" };
        return Err(at.error(
            Some(v.span()),
            key,
            format!("{s} seconds: must be {low} and at most {MAX_SECONDS}"),
        ));
    }
    Ok(Duration::from_secs_f64(s))
}

impl RawDescription {
    fn validate(self, at: &Locator<'_>, source: Source) -> Result<Description, DescriptionError> {
        if self.name.get_ref().trim().is_empty() {
            return Err(at.error(Some(self.name.span()), "name", "must not be empty"));
        }

        let mut requires = Vec::new();
        for (i, r) in self.requires.into_iter().enumerate() {
            let command = r.command.get_ref();
            if command.is_empty() || command.contains(char::is_whitespace) {
                return Err(at.error(
                    Some(r.command.span()),
                    format!("requires[{i}].command"),
                    format!("{command:?}: must be one command name, without spaces"),
                ));
            }
            requires.push(Requirement {
                command: command.clone(),
                package: r.package,
            });
        }

        let node = self.node;
        let mut ports = BTreeMap::new();
        for (name, port) in &node.ports {
            if *port.get_ref() == 0 {
                return Err(at.error(
                    Some(port.span()),
                    format!("node.ports.{name}"),
                    "port 0 is not a port a client can reach",
                ));
            }
            ports.insert(name.clone(), *port.get_ref());
        }
        let template = |value: &Spanned<String>, key: String, scope: Scope| {
            Template::parse(value.get_ref(), &ports, scope)
                .map_err(|why| at.error(Some(value.span()), key, why))
        };

        if node.start.get_ref().is_empty() {
            return Err(at.error(
                Some(node.start.span()),
                "node.start",
                "must not be empty: it is the node's command and its arguments",
            ));
        }
        let mut start = Vec::new();
        for (i, arg) in node.start.get_ref().iter().enumerate() {
            start.push(template(arg, format!("node.start[{i}]"), Scope::Start)?);
        }
        if node.start.get_ref()[0].get_ref().trim().is_empty() {
            return Err(at.error(
                Some(node.start.get_ref()[0].span()),
                "node.start[0]",
                "the command must not be empty",
            ));
        }
        let mut env = Vec::new();
        for (name, value) in &node.env {
            env.push((
                name.clone(),
                template(value, format!("node.env.{name}"), Scope::Start)?,
            ));
        }
        let peer = match &node.peer {
            Some(p) => Some(template(p, "node.peer".into(), Scope::Peer)?),
            None => None,
        };
        if peer.is_none() {
            let uses_peers = node
                .start
                .get_ref()
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("node.start[{i}]"), v, &start[i]))
                .chain(
                    node.env
                        .iter()
                        .zip(&env)
                        .map(|((name, v), (_, t))| (format!("node.env.{name}"), v, t)),
                )
                .find(|(_, _, t)| t.uses(&Placeholder::Peers));
            if let Some((key, value, _)) = uses_peers {
                return Err(at.error(
                    Some(value.span()),
                    key,
                    "uses {peers} but node.peer (one node's entry in {peers}) is not given",
                ));
            }
        }
        let stop_grace = seconds(
            at,
            "node.stop_grace",
            node.stop_grace.as_ref(),
            DEFAULT_STOP_GRACE,
            true,
        )?;
        let mut logs = Vec::new();
        for (i, l) in node.logs.iter().enumerate() {
            let key = format!("node.logs[{i}]");
            let t = template(l, key.clone(), Scope::Node)?;
            if !inside_node_dir(&t) {
                return Err(at.error(
                    Some(l.span()),
                    key,
                    format!(
                        "{:?} must start with {{node_dir}} or {{data_dir}} and not leave it with `..`: only files of the node's folder are read",
                        t.text()
                    ),
                ));
            }
            logs.push(t);
        }

        let ready_span = self.ready.span();
        let ready = self.ready.into_inner();
        let check = match (&ready.http, &ready.tcp) {
            (Some(_), Some(tcp)) => {
                return Err(at.error(
                    Some(tcp.span()),
                    "ready.tcp",
                    "give either ready.http or ready.tcp, not both",
                ))
            }
            (None, None) => {
                return Err(at.error(
                    Some(ready_span),
                    "ready",
                    "give either http = \"http://{addr}:{port.NAME}/path\" or tcp = \"{addr}:{port.NAME}\"",
                ))
            }
            (Some(url), None) => {
                let text = url.get_ref();
                if text.starts_with("https://") {
                    return Err(at.error(
                        Some(url.span()),
                        "ready.http",
                        "https is not supported; the probe speaks plain http:// only",
                    ));
                }
                if !text.starts_with("http://") {
                    return Err(at.error(
                        Some(url.span()),
                        "ready.http",
                        format!("{text:?}: must be a URL starting with http://"),
                    ));
                }
                ReadyCheck::Http {
                    url: template(url, "ready.http".into(), Scope::Node)?,
                    expect: ready.expect.map(Spanned::into_inner),
                }
            }
            (None, Some(tcp)) => {
                if let Some(expect) = &ready.expect {
                    return Err(at.error(
                        Some(expect.span()),
                        "ready.expect",
                        "only an http probe has a body to expect text in",
                    ));
                }
                ReadyCheck::Tcp(template(tcp, "ready.tcp".into(), Scope::Node)?)
            }
        };
        let timeout = seconds(
            at,
            "ready.timeout",
            ready.timeout.as_ref(),
            DEFAULT_READY_TIMEOUT,
            false,
        )?;

        let mut wipe = Vec::new();
        for (i, p) in self.wipe.paths.iter().enumerate() {
            let key = format!("wipe.paths[{i}]");
            let t = template(p, key.clone(), Scope::Node)?;
            let rest = t.after_leading();
            if !inside_node_dir(&t) {
                return Err(at.error(
                    Some(p.span()),
                    key,
                    format!(
                        "{:?} must start with {{node_dir}} or {{data_dir}} and not leave it with `..`",
                        t.text()
                    ),
                ));
            }
            if t.leading_placeholder() == Some(&Placeholder::NodeDir)
                && rest.trim_matches('/').is_empty()
            {
                return Err(at.error(
                    Some(p.span()),
                    key,
                    "{node_dir} itself holds the node's captured output; name a path inside it",
                ));
            }
            wipe.push(t);
        }

        let mut patterns = Vec::new();
        for p in &self.crash.patterns {
            patterns.push(p.get_ref().clone());
        }
        let crash = CrashPatterns::new(patterns).map_err(|(i, why)| {
            let span = self.crash.patterns.get(i).map(|p| p.span());
            at.error(span, format!("crash.patterns[{i}]"), why)
        })?;

        let client_span = self.client.span();
        let raw_client = self.client.into_inner();
        let port = |kind: &str| {
            let Some(port) = &raw_client.port else {
                return Err(at.error(
                    Some(client_span.clone()),
                    "client.port",
                    format!("missing required key: the `{kind}` client needs a named port"),
                ));
            };
            if !ports.contains_key(port.get_ref()) {
                return Err(at.error(
                    Some(port.span()),
                    "client.port",
                    format!(
                        "`{}` is not a port named in node.ports (named: {})",
                        port.get_ref(),
                        ports
                            .keys()
                            .map(|k| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            Ok(port.get_ref().clone())
        };
        let client = match (&raw_client.kind, &raw_client.exec) {
            (Some(_), Some(exec)) => {
                return Err(at.error(
                    Some(exec.span()),
                    "client.exec",
                    "give either `kind` (a built-in client) or `exec` (an adapter command), not both",
                ))
            }
            (None, None) => {
                return Err(at.error(
                    Some(client_span.clone()),
                    "client",
                    format!("missing required key: `kind` (one of {CLIENT_KINDS}) or `exec` (an adapter command)"),
                ))
            }
            (None, Some(exec)) => {
                if exec.get_ref().is_empty() {
                    return Err(at.error(
                        Some(exec.span()),
                        "client.exec",
                        "must not be empty: it is the adapter's command and its arguments",
                    ));
                }
                let mut argv = Vec::new();
                for (i, arg) in exec.get_ref().iter().enumerate() {
                    argv.push(
                        Template::parse(arg.get_ref(), &ports, Scope::Node)
                            .map_err(|why| at.error(Some(arg.span()), format!("client.exec[{i}]"), why))?,
                    );
                }
                if let Some(port) = &raw_client.port {
                    return Err(at.error(
                        Some(port.span()),
                        "client.port",
                        "an adapter (`exec`) is told every named port in its handshake; `port` is for built-in clients",
                    ));
                }
                ClientSpec::Exec { argv }
            }
            (Some(kind), None) => match kind.get_ref().as_str() {
                "etcd" => ClientSpec::Etcd {
                    port: port("etcd")?,
                },
                "bundled" => ClientSpec::Bundled {
                    port: port("bundled")?,
                },
                other => {
                    return Err(at.error(
                        Some(kind.span()),
                        "client.kind",
                        format!("unknown client kind `{other}`; expected one of {CLIENT_KINDS}"),
                    ))
                }
            },
        };
        let mut upload = Vec::new();
        for (i, path) in self.files.upload.iter().enumerate() {
            upload::confined(path.get_ref())
                .map_err(|why| at.error(Some(path.span()), format!("files.upload[{i}]"), why))?;
            upload.push(PathBuf::from(path.get_ref()));
        }
        let dir = match &source {
            Source::Builtin(_) => None,
            Source::File(path) => {
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                Some(
                    parent
                        .canonicalize()
                        .unwrap_or_else(|_| parent.to_path_buf()),
                )
            }
        };

        Ok(Description {
            name: self.name.into_inner(),
            about: self.about,
            source,
            dir,
            requires,
            node: NodeSection {
                ports,
                start,
                peer,
                peer_separator: node.peer_separator,
                stop_grace,
                env,
                logs,
            },
            ready: ReadyProbe { check, timeout },
            wipe,
            crash,
            client,
            upload,
        })
    }
}

#[cfg(test)]
mod tests;
