//! The configuration of one test run: CLI flags, an optional `--config` TOML file, and
//! the validation that rejects contradictory settings before anything starts.
//!
//! Flags arrive as strings ([`TestArgs`]) and are parsed once, here, into the typed
//! [`TestConfig`] (workload, faults, network backend and read mode are enums): the run
//! never parses a setting again, and a configuration that fails validation cannot be
//! represented. The resolved configuration is written to `test.json` in the run
//! directory (each enum as its command-line name); it holds everything (including the
//! seed) needed to rerun the same schedule.

use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

use crate::node::bugs::BugInfo;
use crate::node::server::ReadMode;
use splitbrain_checker::elle::ConsistencyModel;
use splitbrain_db::{ClientSpec, Description};
use splitbrain_nemesis::{FaultKind, TargetSpec};
use splitbrain_workloads::{EtcdReads, WorkloadKind};

fn all_fault_targets() -> Vec<TargetSpec> {
    TargetSpec::ALL.to_vec()
}

/// Flags of `splitbrain test` (and `test-all`). Every field is optional here so that a
/// `--config` file can supply it; [`TestConfig::resolve`] applies defaults.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestArgs {
    /// The system under test: bundled (the built-in Raft KV, default), a built-in
    /// description (etcd; `splitbrain dbs` lists them), or a description file
    /// (FILE.toml).
    #[arg(long, value_name = "NAME|FILE.toml")]
    pub db: Option<String>,
    /// Workload: register, kv, mutex, set, list-append, rw-register (default kv).
    #[arg(long, value_name = "W")]
    pub workload: Option<String>,
    /// Faults: a comma-separated list of partition, kill, pause, clock; or all; or none
    /// (default all).
    #[arg(long, value_name = "F,F,…")]
    pub nemesis: Option<String>,
    /// Mean seconds between fault changes (default 5).
    #[arg(long, value_name = "SECS")]
    pub nemesis_interval: Option<f64>,
    /// Which nodes a kill or pause takes, drawn per fault from this comma-separated
    /// list of one, minority, majority, all, primaries (default all five, as Jepsen).
    #[arg(long, value_name = "T,T,…")]
    pub fault_targets: Option<String>,
    /// Number of nodes in the cluster (default 5).
    #[arg(long, value_name = "N")]
    pub nodes: Option<usize>,
    /// Concurrent client threads (default 10).
    #[arg(long, value_name = "C")]
    pub concurrency: Option<usize>,
    /// Target operations per second over all clients (default 200).
    #[arg(long, value_name = "OPS")]
    pub rate: Option<f64>,
    /// Seconds of workload under faults (default 60).
    #[arg(long, value_name = "SECS")]
    pub time_limit: Option<f64>,
    /// The seed every random choice derives from (default: random, printed).
    #[arg(long, value_name = "S")]
    pub seed: Option<u64>,
    /// Network backend: proxy (any user) or netns (root, iptables) (default proxy for
    /// the bundled cluster, netns for other databases).
    #[arg(long, value_name = "proxy|netns")]
    pub net: Option<String>,
    /// How reads are served. The bundled cluster: read-index, log, lease, local (default
    /// read-index); etcd: linearizable (default) or serializable (stale by design).
    #[arg(long, value_name = "M")]
    pub read_mode: Option<String>,
    /// Switch on a deliberate bug of the bundled cluster (see `splitbrain bugs`);
    /// repeatable.
    #[arg(long = "bug", value_name = "NAME")]
    #[serde(default)]
    pub bugs: Vec<String>,
    /// Where runs are stored (default ./store).
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// Repeat the test K times with seeds seed, seed+1, … and summarise (default 1).
    #[arg(long, value_name = "K")]
    pub test_count: Option<usize>,
    /// Per-operation timeout in seconds; a timed-out operation is recorded as info
    /// (default 1).
    #[arg(long, value_name = "SECS")]
    pub op_timeout: Option<f64>,
    /// Seconds of quiet after healing before the final reads (default 3).
    #[arg(long, value_name = "SECS")]
    pub recovery_time: Option<f64>,
    /// The test's name, used for the store folder (default derived from the settings).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// list-append and rw-register: the consistency models to check the history against
    /// (comma-separated, Elle's names; default strict-serializable).
    #[arg(long, value_name = "M,…")]
    pub consistency_models: Option<String>,
    /// Run the nodes on SSH hosts named in this TOML file (`[hosts] n1 = "root@10.0.0.1"`,
    /// ...; see the README, or `splitbrain lab up` for hosts on this machine).
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,
    /// Read settings from a TOML file (the same names as the flags, e.g.
    /// `workload = "kv"`); flags given on the command line win.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// How the nodes are networked, and so how partitions are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetKind {
    /// A userspace TCP proxy per directed link (any user).
    Proxy,
    /// A network namespace per node, partitions as iptables rules (root).
    Netns,
    /// Each node on its own SSH host (`--hosts`), partitions as tagged iptables rules
    /// installed over SSH.
    Hosts,
}

impl NetKind {
    pub fn name(self) -> &'static str {
        match self {
            NetKind::Proxy => "proxy",
            NetKind::Netns => "netns",
            NetKind::Hosts => "hosts",
        }
    }
}

impl std::fmt::Display for NetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The system under test, as `--db` named it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum DbChoice {
    /// The bundled Raft KV.
    #[default]
    Bundled,
    /// A description that ships with splitbrain (`etcd`).
    Builtin(String),
    /// A description file.
    File(PathBuf),
}

impl DbChoice {
    /// `bundled`, a built-in description's name, or a path (it contains `/` or ends in
    /// `.toml`).
    pub fn parse(arg: &str) -> DbChoice {
        if arg == "bundled" {
            DbChoice::Bundled
        } else if arg.contains('/') || arg.ends_with(".toml") {
            DbChoice::File(PathBuf::from(arg))
        } else {
            DbChoice::Builtin(arg.to_string())
        }
    }

    /// As `--db` takes it.
    pub fn arg(&self) -> String {
        match self {
            DbChoice::Bundled => "bundled".into(),
            DbChoice::Builtin(name) => name.clone(),
            DbChoice::File(path) => path.display().to_string(),
        }
    }

    /// The description behind a non-bundled choice.
    pub fn description(&self) -> Result<Option<Description>, ConfigError> {
        match self {
            DbChoice::Bundled => Ok(None),
            other => Description::resolve(&other.arg())
                .map(Some)
                .map_err(|e| ConfigError(format!("--db {}: {e}", other.arg()))),
        }
    }
}

impl Serialize for DbChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.arg())
    }
}

impl<'de> Deserialize<'de> for DbChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(DbChoice::parse(&String::deserialize(d)?))
    }
}

/// How reads are served: the bundled node's read path, or the read request of etcd's
/// client. Written to `test.json` as its `--read-mode` name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadSetting {
    Bundled(ReadMode),
    Etcd(EtcdReads),
    /// A described database whose reads its own description (or adapter) sets.
    Native,
}

impl ReadSetting {
    const ETCD: [(&'static str, EtcdReads); 2] = [
        ("linearizable", EtcdReads::Linearizable),
        ("serializable", EtcdReads::Serializable),
    ];

    pub fn name(self) -> &'static str {
        match self {
            ReadSetting::Bundled(mode) => mode.name(),
            ReadSetting::Etcd(reads) => Self::ETCD
                .iter()
                .find(|(_, r)| *r == reads)
                .map_or("linearizable", |(n, _)| n),
            ReadSetting::Native => "native",
        }
    }

    fn parse(name: &str) -> Option<ReadSetting> {
        if name == "native" {
            return Some(ReadSetting::Native);
        }
        ReadMode::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .map(ReadSetting::Bundled)
            .or_else(|| {
                Self::ETCD
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, r)| ReadSetting::Etcd(*r))
            })
    }

    /// The bundled node's read mode (read-index unless the setting is one).
    pub fn bundled(self) -> ReadMode {
        match self {
            ReadSetting::Bundled(mode) => mode,
            ReadSetting::Etcd(_) | ReadSetting::Native => ReadMode::ReadIndex,
        }
    }

    /// The etcd client's reads (linearizable unless the setting is one).
    pub fn etcd(self) -> EtcdReads {
        match self {
            ReadSetting::Etcd(reads) => reads,
            ReadSetting::Bundled(_) | ReadSetting::Native => EtcdReads::Linearizable,
        }
    }
}

impl Serialize for ReadSetting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ReadSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        ReadSetting::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown read mode {name:?}")))
    }
}

/// A fully resolved, validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TestConfig {
    pub name: String,
    /// The system under test (absent from older `test.json` files: bundled).
    #[serde(default)]
    pub db: DbChoice,
    pub workload: WorkloadKind,
    /// Fault kinds in canonical order; empty = no faults.
    pub nemesis: Vec<FaultKind>,
    pub nemesis_interval: f64,
    /// Which nodes kills and pauses take (Jepsen's node specs).
    #[serde(default = "all_fault_targets")]
    pub fault_targets: Vec<TargetSpec>,
    pub nodes: usize,
    pub concurrency: usize,
    pub rate: f64,
    pub time_limit: f64,
    pub seed: u64,
    pub net: NetKind,
    pub read_mode: ReadSetting,
    pub bugs: Vec<String>,
    pub store: PathBuf,
    pub test_count: usize,
    pub op_timeout: f64,
    pub recovery_time: f64,
    /// Transactional workloads: the consistency models checked (canonical names); empty
    /// means strict-serializable. Absent from older `test.json` files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consistency_models: Vec<ConsistencyModel>,
    /// The hosts file (absolute) when the nodes run on SSH hosts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosts: Option<PathBuf>,
}

/// Why a configuration was rejected; the message says what to do instead.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, ConfigError> {
    Err(ConfigError(msg.into()))
}

impl TestArgs {
    /// Layers flags over the `--config` file (flags win).
    pub fn merged(self) -> Result<TestArgs, ConfigError> {
        let Some(path) = &self.config else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("cannot read --config {}: {e}", path.display())))?;
        let file: TestArgs = toml::from_str(&text)
            .map_err(|e| ConfigError(format!("--config {}: {e}", path.display())))?;
        let bugs = if self.bugs.is_empty() {
            file.bugs
        } else {
            self.bugs
        };
        Ok(TestArgs {
            db: self.db.or(file.db),
            workload: self.workload.or(file.workload),
            nemesis: self.nemesis.or(file.nemesis),
            nemesis_interval: self.nemesis_interval.or(file.nemesis_interval),
            fault_targets: self.fault_targets.or(file.fault_targets),
            nodes: self.nodes.or(file.nodes),
            concurrency: self.concurrency.or(file.concurrency),
            rate: self.rate.or(file.rate),
            time_limit: self.time_limit.or(file.time_limit),
            seed: self.seed.or(file.seed),
            net: self.net.or(file.net),
            read_mode: self.read_mode.or(file.read_mode),
            bugs,
            store: self.store.or(file.store),
            test_count: self.test_count.or(file.test_count),
            op_timeout: self.op_timeout.or(file.op_timeout),
            recovery_time: self.recovery_time.or(file.recovery_time),
            name: self.name.or(file.name),
            consistency_models: self.consistency_models.or(file.consistency_models),
            hosts: self.hosts.or(file.hosts),
            config: None,
        })
    }
}

fn positive(name: &str, v: f64) -> Result<f64, ConfigError> {
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        err(format!("--{name} {v} must be a positive number"))
    }
}

/// Parses `--nemesis`: `all`, `none`, or a comma-separated list of fault kinds, into
/// the canonical order (so names and schedules do not depend on how the flag was typed).
pub fn parse_nemesis(spec: &str) -> Result<Vec<FaultKind>, ConfigError> {
    let kinds = FaultKind::parse_list(spec).map_err(|e| {
        ConfigError(format!(
            "--nemesis: {e}; use a comma-separated list of fault kinds, or all, or none"
        ))
    })?;
    Ok(kinds.into_iter().collect())
}

/// The names of `kinds`, joined by `sep` (`none` for no faults).
pub fn fault_names(kinds: &[FaultKind], sep: &str) -> String {
    if kinds.is_empty() {
        return "none".to_string();
    }
    kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(sep)
}

impl TestConfig {
    /// Applies defaults and validates. `known_bugs` is the bundled cluster's bug list,
    /// whose settings (read mode, operation timeout) a `--bug` applies unless the flag
    /// is given, and refuses when it contradicts them; `is_root` decides whether
    /// `--net netns` is possible.
    pub fn resolve(
        args: TestArgs,
        known_bugs: &[BugInfo],
        is_root: bool,
    ) -> Result<TestConfig, ConfigError> {
        let mut args = args.merged()?;
        let db = DbChoice::parse(args.db.as_deref().unwrap_or("bundled"));
        let description = db.description()?;
        if let Some(desc) = &description {
            // With --hosts the hosts must have the commands (checked on them).
            if args.hosts.is_none() {
                desc.check_requirements()
                    .map_err(|e| ConfigError(format!("--db {}: {e}", db.arg())))?;
            }
            if !args.bugs.is_empty() {
                return err(format!(
                    "--bug switches on a deliberate bug of the bundled cluster; it does not apply to --db {}",
                    db.arg()
                ));
            }
        }
        let mut chosen = Vec::new();
        for name in &args.bugs {
            match known_bugs.iter().find(|b| b.name == name) {
                Some(bug) => chosen.push(bug),
                None => {
                    return err(format!(
                        "--bug {name:?} is not a bug of the bundled cluster; `splitbrain bugs` lists them: {}",
                        known_bugs.iter().map(|b| b.name).collect::<Vec<_>>().join(", ")
                    ))
                }
            }
        }
        for bug in &chosen {
            if let Some(mode) = bug.read_mode.map(ReadMode::name) {
                match args.read_mode.as_deref() {
                    None => args.read_mode = Some(mode.to_string()),
                    Some(given) if given == mode => {}
                    Some(given) => {
                        return err(format!(
                            "--bug {} lives in the {mode} read path and tests nothing under --read-mode {given}; drop --read-mode or use --read-mode {mode}",
                            bug.name
                        ))
                    }
                }
            }
            if let Some(min) = bug.min_rate {
                match args.rate {
                    None => args.rate = Some(min),
                    Some(given) if given >= min => {}
                    Some(given) => {
                        return err(format!(
                            "--bug {} shows reliably only at {min} operations per second or more (a stale read must land in a short window); got --rate {given}: drop it or use --rate {min}",
                            bug.name
                        ))
                    }
                }
            }
            if let Some(max) = bug.max_op_timeout {
                match args.op_timeout {
                    None => args.op_timeout = Some(max),
                    Some(given) if given <= max => {}
                    Some(given) => {
                        return err(format!(
                            "--bug {} shows only with operations that give up within {max} s (clients stuck at a deposed leader must move on in time); got --op-timeout {given}: drop it or use --op-timeout {max}",
                            bug.name
                        ))
                    }
                }
            }
        }
        let workload = match args.workload.as_deref() {
            None => WorkloadKind::Kv,
            Some(name) => name.parse().map_err(|_| {
                ConfigError(format!(
                    "--workload {name:?} is not a workload; use one of {}",
                    WorkloadKind::NAMES.join(", ")
                ))
            })?,
        };
        let consistency_models = match &args.consistency_models {
            None => Vec::new(),
            Some(_) if !workload.is_transactional() => {
                return err(format!(
                "--consistency-models applies to the transactional workloads ({}), not {workload}",
                WorkloadKind::ALL
                    .iter()
                    .filter(|w| w.is_transactional())
                    .map(|w| w.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
            }
            Some(list) => splitbrain_checker::elle::models::parse_models(list)
                .map_err(|e| ConfigError(format!("--consistency-models: {e}")))?,
        };
        let can = crate::run::db::capabilities(description.as_ref());
        let nemesis = match (&description, args.nemesis.as_deref()) {
            // `all` means every fault the database can take.
            (Some(_), None | Some("all")) => can.all_faults(),
            (_, spec) => parse_nemesis(spec.unwrap_or("all"))?,
        };
        if let Some(desc) = &description {
            refuse_faults(desc, &can, &nemesis)?;
            if workload == WorkloadKind::RwRegister
                && matches!(desc.client(), ClientSpec::Etcd { .. })
            {
                return err(format!(
                    "--db {} --workload rw-register: the etcd client serves register, kv, set, mutex and list-append",
                    desc.name
                ));
            }
        }
        let nemesis_interval = positive("nemesis-interval", args.nemesis_interval.unwrap_or(5.0))?;
        // Only a database that can name its primary can target it.
        let knows_primary = can.leader.is_yes();
        let fault_targets = match args.fault_targets.as_deref() {
            None if knows_primary => all_fault_targets(),
            None => all_fault_targets()
                .into_iter()
                .filter(|t| *t != TargetSpec::Primaries)
                .collect(),
            Some(list) if !knows_primary && list.contains("primaries") => {
                return err(format!(
                    "--fault-targets primaries: {} cannot tell which node is its primary",
                    db.arg()
                ))
            }
            Some(list) => TargetSpec::parse_list(list)
                .map_err(|e| ConfigError(format!("--fault-targets: {e}")))?,
        };
        let hosts = match &args.hosts {
            None => None,
            Some(path) => Some(
                crate::run::hosts::HostsFile::load(path)
                    .map_err(|e| ConfigError(format!("--hosts: {e:#}")))?,
            ),
        };
        let nodes = match (&hosts, args.nodes) {
            (Some(h), Some(n)) if n != h.hosts.len() => {
                return err(format!(
                    "--nodes {n}, but the hosts file {} names {} hosts: drop --nodes",
                    h.path.display(),
                    h.hosts.len()
                ))
            }
            (Some(h), _) => h.hosts.len(),
            (None, n) => n.unwrap_or(5),
        };
        if !(1..=9).contains(&nodes) {
            return err(format!(
                "--nodes {nodes}: the bundled cluster runs 1 to 9 nodes (3 or 5 are typical)"
            ));
        }
        if let Some(e) = nemesis
            .iter()
            .find_map(|kind| kind.row().nodes_refusal(nodes))
        {
            return err(e);
        }
        let concurrency = args.concurrency.unwrap_or(10);
        if concurrency == 0 || concurrency > 1000 {
            return err(format!(
                "--concurrency {concurrency} must be between 1 and 1000"
            ));
        }
        let rate = positive("rate", args.rate.unwrap_or(200.0))?;
        let time_limit = positive("time-limit", args.time_limit.unwrap_or(60.0))?;
        let default_net = if description.is_some() {
            "netns"
        } else {
            "proxy"
        };
        let net = match args.net.as_deref().unwrap_or(default_net) {
            _ if hosts.is_some() => match args.net.as_deref() {
                None | Some("hosts") if nemesis.iter().any(|k| k.row().needs.message_rules) => {
                    return err(
                        "--nemesis split-vote and figure-8 drop and hold single Raft messages, which only the proxy can do; they cannot run with --hosts",
                    )
                }
                None | Some("hosts") => NetKind::Hosts,
                Some(other) => {
                    return err(format!(
                        "--net {other} with --hosts: the nodes run on the hosts, and partitions are iptables rules there; drop --net"
                    ))
                }
            },
            "hosts" => return err("--net hosts needs --hosts FILE"),
            "proxy" if description.is_some() => {
                return err(format!(
                    "--db {} --net proxy: a database we did not write has one peer address per member, so no proxy can sit on each link between two members; partitions need --net netns (root)",
                    db.arg()
                ))
            }
            "proxy" => NetKind::Proxy,
            "netns" if !is_root => {
                return err(
                    "--net netns needs root (network namespaces and iptables); run as root, or use --net proxy",
                )
            }
            "netns" if nemesis.iter().any(|k| k.row().needs.message_rules) => {
                return err(
                    "--nemesis split-vote and figure-8 drop and hold single Raft messages, which only the proxy can do; use --net proxy",
                )
            }
            "netns" => NetKind::Netns,
            other => return err(format!("--net {other:?}: use proxy or netns")),
        };
        let read_mode = read_setting(description.as_ref(), args.read_mode.as_deref())?;
        let mut bugs = args.bugs;
        bugs.sort();
        bugs.dedup();
        let test_count = args.test_count.unwrap_or(1);
        if test_count == 0 {
            return err("--test-count must be at least 1");
        }
        let op_timeout = positive("op-timeout", args.op_timeout.unwrap_or(1.0))?;
        let recovery_time = args.recovery_time.unwrap_or(3.0);
        if !(recovery_time.is_finite() && recovery_time >= 0.0) {
            return err(format!(
                "--recovery-time {recovery_time} must be zero or more seconds"
            ));
        }
        let name = match args.name {
            Some(n) => {
                if n.is_empty()
                    || !n
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    || n.starts_with('.')
                {
                    return err(format!(
                        "--name {n:?}: use letters, digits, '-', '_' and '.' only (it names a folder)"
                    ));
                }
                n
            }
            None => match &description {
                Some(desc) => format!("{}-{}", desc.name, default_name(workload, &nemesis, &bugs)),
                None => default_name(workload, &nemesis, &bugs),
            },
        };
        let seed = args.seed.unwrap_or_else(rand::random);
        Ok(TestConfig {
            name,
            db,
            workload,
            nemesis,
            nemesis_interval,
            fault_targets,
            nodes,
            concurrency,
            rate,
            time_limit,
            seed,
            net,
            read_mode,
            bugs,
            store: args.store.unwrap_or_else(|| PathBuf::from("store")),
            test_count,
            op_timeout,
            recovery_time,
            consistency_models,
            hosts: match hosts {
                Some(h) => Some(
                    std::path::absolute(&h.path)
                        .map_err(|e| ConfigError(format!("--hosts {}: {e}", h.path.display())))?,
                ),
                None => None,
            },
        })
    }

    /// The one-line command that reruns this configuration's schedule.
    pub fn reproduce_command(&self) -> String {
        let mut cmd = format!(
            "splitbrain test{} --workload {} --nemesis {} --nemesis-interval {} --nodes {} --concurrency {} --rate {} --time-limit {} --seed {} --net {} --read-mode {}",
            match &self.db {
                DbChoice::Bundled => String::new(),
                other => format!(" --db {}", other.arg()),
            },
            self.workload,
            fault_names(&self.nemesis, ","),
            self.nemesis_interval,
            self.nodes,
            self.concurrency,
            self.rate,
            self.time_limit,
            self.seed,
            self.net,
            self.read_mode.name()
        );
        for bug in &self.bugs {
            cmd.push_str(&format!(" --bug {bug}"));
        }
        if self.op_timeout != 1.0 {
            cmd.push_str(&format!(" --op-timeout {}", self.op_timeout));
        }
        if self.recovery_time != 3.0 {
            cmd.push_str(&format!(" --recovery-time {}", self.recovery_time));
        }
        if self.fault_targets != all_fault_targets() {
            let names: Vec<&str> = self.fault_targets.iter().map(|t| t.name()).collect();
            cmd.push_str(&format!(" --fault-targets {}", names.join(",")));
        }
        if !self.consistency_models.is_empty() {
            let names: Vec<&str> = self.consistency_models.iter().map(|m| m.name()).collect();
            cmd.push_str(&format!(" --consistency-models {}", names.join(",")));
        }
        if let Some(hosts) = &self.hosts {
            cmd.push_str(&format!(" --hosts {}", hosts.display()));
        }
        cmd
    }
}

/// Refuses, with the database's reason, the faults a described database cannot take.
fn refuse_faults(
    desc: &Description,
    can: &splitbrain_nemesis::Capabilities,
    nemesis: &[FaultKind],
) -> Result<(), ConfigError> {
    match nemesis
        .iter()
        .find_map(|kind| Some((kind, kind.row().refusal(can)?)))
    {
        Some((kind, why)) => err(format!(
            "--db {} --nemesis {}: {why}",
            desc.name,
            kind.name()
        )),
        None => Ok(()),
    }
}

/// Parses `--read-mode` for the database: the bundled cluster's read paths, or etcd's
/// linearizable and serializable reads; other described databases take none.
fn read_setting(
    desc: Option<&Description>,
    given: Option<&str>,
) -> Result<ReadSetting, ConfigError> {
    let bundled_names = ReadMode::ALL.map(ReadMode::name).join(", ");
    match desc.map(Description::client) {
        None => match given {
            None => Ok(ReadSetting::Bundled(ReadMode::ReadIndex)),
            Some(name) => match ReadSetting::parse(name) {
                Some(setting @ ReadSetting::Bundled(_)) => Ok(setting),
                _ => err(format!(
                    "--read-mode {name:?}: the bundled cluster's read modes are {bundled_names}"
                )),
            },
        },
        Some(ClientSpec::Etcd { .. }) => match given {
            None => Ok(ReadSetting::Etcd(EtcdReads::Linearizable)),
            Some(name) => match ReadSetting::parse(name) {
                Some(setting @ ReadSetting::Etcd(_)) => Ok(setting),
                _ => err(format!(
                    "--read-mode {name:?}: etcd's read modes are linearizable and serializable"
                )),
            },
        },
        Some(_) => match given {
            None | Some("native") => Ok(ReadSetting::Native),
            Some(name) => err(format!(
                "--read-mode {name:?}: {} sets how its nodes serve reads in its own description",
                desc.map_or("", |d| d.name.as_str())
            )),
        },
    }
}

/// The default test name: workload, faults and bugs (`kv-partition+kill-bug-x`).
pub fn default_name(workload: WorkloadKind, nemesis: &[FaultKind], bugs: &[String]) -> String {
    let mut name = format!("{workload}-{}", fault_names(nemesis, "+"));
    for bug in bugs {
        name.push_str("-bug-");
        name.push_str(bug);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::node::bugs::BUGS;

    #[test]
    fn a_bug_applies_its_settings_and_refuses_contradicting_flags() {
        let lease = |read_mode: Option<&str>, op_timeout: Option<f64>| {
            TestConfig::resolve(
                TestArgs {
                    bugs: vec!["lease-trusts-clock".into()],
                    read_mode: read_mode.map(str::to_string),
                    op_timeout,
                    ..Default::default()
                },
                BUGS,
                false,
            )
        };
        let c = lease(None, None).unwrap();
        assert_eq!(
            (c.read_mode, c.op_timeout),
            (ReadSetting::Bundled(ReadMode::Lease), 0.25)
        );
        assert_eq!(c.rate, 400.0, "the bug's rate");
        let c = lease(Some("lease"), Some(0.1)).unwrap();
        assert_eq!(c.op_timeout, 0.1, "a shorter timeout is kept");
        let e = lease(Some("read-index"), None).unwrap_err().to_string();
        assert!(e.contains("--read-mode lease"), "{e}");
        let e = lease(None, Some(1.0)).unwrap_err().to_string();
        assert!(e.contains("--op-timeout 0.25"), "{e}");
        // Bugs without settings leave the defaults alone.
        let c = TestConfig::resolve(
            TestArgs {
                bugs: vec!["stale-reads".into()],
                ..Default::default()
            },
            BUGS,
            false,
        )
        .unwrap();
        assert_eq!(
            (c.read_mode, c.op_timeout),
            (ReadSetting::Bundled(ReadMode::ReadIndex), 1.0)
        );
    }

    #[test]
    fn defaults_are_meaningful() {
        let c = TestConfig::resolve(TestArgs::default(), BUGS, false).unwrap();
        assert_eq!(c.nodes, 5);
        assert_eq!(c.workload, WorkloadKind::Kv);
        assert_eq!(c.nemesis, FaultKind::ALL.to_vec());
        assert_eq!(c.net, NetKind::Proxy);
        assert_eq!(c.name, "kv-partition+kill+pause+clock");
    }

    #[test]
    fn rejects_unknown_names_with_alternatives() {
        let bad = |args: TestArgs| {
            TestConfig::resolve(args, BUGS, false)
                .unwrap_err()
                .to_string()
        };
        let e = bad(TestArgs {
            workload: Some("bank".into()),
            ..Default::default()
        });
        assert!(
            e.contains("register, kv, mutex, set, list-append, rw-register"),
            "{e}"
        );
        let e = bad(TestArgs {
            bugs: vec!["nope".into()],
            ..Default::default()
        });
        assert!(
            e.contains("skip-fsync") && e.contains("splitbrain bugs"),
            "{e}"
        );
        let e = bad(TestArgs {
            nemesis: Some("partition,flood".into()),
            ..Default::default()
        });
        assert!(e.contains("\"flood\""), "{e}");
        let e = bad(TestArgs {
            net: Some("netns".into()),
            ..Default::default()
        });
        assert!(e.contains("needs root"), "{e}");
        let e = bad(TestArgs {
            nodes: Some(2),
            ..Default::default()
        });
        assert!(e.contains("--nodes 2"), "{e}");
        let e = bad(TestArgs {
            rate: Some(-1.0),
            ..Default::default()
        });
        assert!(e.contains("--rate"), "{e}");
        let e = bad(TestArgs {
            fault_targets: Some("one,half".into()),
            ..Default::default()
        });
        assert!(
            e.contains("--fault-targets") && e.contains("\"half\"") && e.contains("primaries"),
            "{e}"
        );
        let c = TestConfig::resolve(
            TestArgs {
                fault_targets: Some("minority,primaries".into()),
                ..Default::default()
            },
            BUGS,
            false,
        )
        .unwrap();
        assert!(c
            .reproduce_command()
            .ends_with("--fault-targets minority,primaries"));
    }

    #[test]
    fn split_vote_is_named_explicitly_needs_the_proxy_and_an_odd_cluster() {
        let c = TestConfig::resolve(
            TestArgs {
                nemesis: Some("split-vote,partition".into()),
                ..Default::default()
            },
            BUGS,
            false,
        )
        .unwrap();
        assert_eq!(c.nemesis, vec![FaultKind::Partition, FaultKind::SplitVote]);
        let all = TestConfig::resolve(TestArgs::default(), BUGS, false).unwrap();
        assert!(!all.nemesis.contains(&FaultKind::SplitVote));
        let bad = |args: TestArgs| {
            TestConfig::resolve(args, BUGS, true)
                .unwrap_err()
                .to_string()
        };
        let e = bad(TestArgs {
            nemesis: Some("split-vote".into()),
            net: Some("netns".into()),
            ..Default::default()
        });
        assert!(e.contains("--net proxy"), "{e}");
        let e = bad(TestArgs {
            nemesis: Some("split-vote".into()),
            nodes: Some(4),
            ..Default::default()
        });
        assert!(e.contains("odd number"), "{e}");
        let e = bad(TestArgs {
            nemesis: Some("figure-8".into()),
            nodes: Some(3),
            ..Default::default()
        });
        assert!(e.contains("at least 5"), "{e}");
        let e = bad(TestArgs {
            nemesis: Some("figure-8".into()),
            net: Some("netns".into()),
            ..Default::default()
        });
        assert!(e.contains("--net proxy"), "{e}");
    }

    #[test]
    fn config_file_is_overridden_by_flags() {
        let dir = std::env::temp_dir().join(format!("sb-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("test.toml");
        std::fs::write(
            &file,
            "workload = \"register\"\nnodes = 3\nnemesis = \"partition\"\nseed = 7\n",
        )
        .unwrap();
        let args = TestArgs {
            nodes: Some(5),
            config: Some(file.clone()),
            ..Default::default()
        };
        let c = TestConfig::resolve(args, BUGS, false).unwrap();
        assert_eq!(c.workload, WorkloadKind::Register);
        assert_eq!(c.nodes, 5);
        assert_eq!(c.nemesis, vec![FaultKind::Partition]);
        assert_eq!(c.seed, 7);
        std::fs::write(&file, "workload = \"register\"\nnodez = 3\n").unwrap();
        let e = TestConfig::resolve(
            TestArgs {
                config: Some(file),
                ..Default::default()
            },
            BUGS,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("nodez"), "{e}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn consistency_models_are_for_transactional_workloads() {
        let c = TestConfig::resolve(
            TestArgs {
                workload: Some("rw-register".into()),
                consistency_models: Some("serializable,PL-SI".into()),
                seed: Some(3),
                ..Default::default()
            },
            BUGS,
            false,
        )
        .unwrap();
        assert_eq!(
            c.consistency_models,
            [
                ConsistencyModel::Serializable,
                ConsistencyModel::SnapshotIsolation
            ]
        );
        assert!(c
            .reproduce_command()
            .ends_with("--consistency-models serializable,snapshot-isolation"));
        let e = TestConfig::resolve(
            TestArgs {
                workload: Some("kv".into()),
                consistency_models: Some("serializable".into()),
                ..Default::default()
            },
            BUGS,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("transactional workloads"), "{e}");
        let e = TestConfig::resolve(
            TestArgs {
                workload: Some("list-append".into()),
                consistency_models: Some("linearizable".into()),
                ..Default::default()
            },
            BUGS,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown consistency model"), "{e}");
    }

    #[test]
    fn reproduce_command_round_trips_through_the_parser() {
        let c = TestConfig::resolve(
            TestArgs {
                seed: Some(42),
                bugs: vec!["stale-reads".into()],
                ..Default::default()
            },
            BUGS,
            false,
        )
        .unwrap();
        let cmd = c.reproduce_command();
        #[derive(clap::Parser)]
        struct P {
            #[command(subcommand)]
            c: Sub,
        }
        #[derive(clap::Subcommand)]
        enum Sub {
            Test(TestArgs),
        }
        let words: Vec<&str> = cmd.split_whitespace().collect();
        let parsed = <P as clap::Parser>::try_parse_from(words).unwrap();
        let Sub::Test(args) = parsed.c;
        let again = TestConfig::resolve(args, BUGS, false).unwrap();
        assert_eq!(again, c);
    }
}
