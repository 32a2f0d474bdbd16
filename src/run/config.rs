//! The configuration of one test run: CLI flags, an optional `--config` TOML file, and
//! the validation that rejects contradictory settings before anything starts.
//!
//! The resolved [`TestConfig`] is written to `test.json` in the run directory; it holds
//! everything (including the seed) needed to rerun the same schedule.

use clap::Args;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Flags of `splitbrain test` (and `test-all`). Every field is optional here so that a
/// `--config` file can supply it; [`TestConfig::resolve`] applies defaults.
#[derive(Debug, Clone, Default, Args, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestArgs {
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
    /// Network backend: proxy (any user) or netns (root, iptables) (default proxy).
    #[arg(long, value_name = "proxy|netns")]
    pub net: Option<String>,
    /// Read mode of the bundled cluster: read-index, log, lease, local (default
    /// read-index).
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
    /// Read settings from a TOML file (the same names as the flags, e.g.
    /// `workload = "kv"`); flags given on the command line win.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
}

/// Workloads the driver can run against the bundled cluster.
pub const WORKLOADS: &[&str] = &[
    "register",
    "kv",
    "mutex",
    "set",
    "list-append",
    "rw-register",
];
/// Workloads of transactions, checked Elle-style.
pub const TXN_WORKLOADS: &[&str] = &["list-append", "rw-register"];
/// Fault kinds.
pub const FAULTS: &[&str] = &["partition", "kill", "pause", "clock"];
/// Scripted faults: named explicitly, never part of `all` (nor of `test-all`'s product).
pub const SCRIPTED_FAULTS: &[&str] = &["split-vote", "figure-8", "slow-leader"];
/// Scripted faults that drop or hold single messages: the proxy network only.
const MESSAGE_FAULTS: &[&str] = &["split-vote", "figure-8"];
/// Read modes of the bundled cluster.
pub const READ_MODES: &[&str] = &["read-index", "log", "lease", "local"];

/// A fully resolved, validated configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct TestConfig {
    pub name: String,
    pub workload: String,
    /// Fault kinds in canonical order; empty = no faults.
    pub nemesis: Vec<String>,
    pub nemesis_interval: f64,
    pub nodes: usize,
    pub concurrency: usize,
    pub rate: f64,
    pub time_limit: f64,
    pub seed: u64,
    pub net: String,
    pub read_mode: String,
    pub bugs: Vec<String>,
    pub store: PathBuf,
    pub test_count: usize,
    pub op_timeout: f64,
    pub recovery_time: f64,
    /// Transactional workloads: the consistency models checked (canonical names); empty
    /// means strict-serializable. Absent from older `test.json` files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consistency_models: Vec<String>,
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
            workload: self.workload.or(file.workload),
            nemesis: self.nemesis.or(file.nemesis),
            nemesis_interval: self.nemesis_interval.or(file.nemesis_interval),
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

/// Parses `--nemesis`: `all`, `none`, or a comma-separated list of fault kinds.
pub fn parse_nemesis(spec: &str) -> Result<Vec<String>, ConfigError> {
    let spec = spec.trim();
    match spec {
        "all" => return Ok(FAULTS.iter().map(|s| s.to_string()).collect()),
        "none" | "" => return Ok(Vec::new()),
        _ => {}
    }
    let mut kinds = Vec::new();
    let known = || FAULTS.iter().chain(SCRIPTED_FAULTS);
    for part in spec.split(',').map(str::trim) {
        if !known().any(|f| *f == part) {
            return err(format!(
                "--nemesis: unknown fault {part:?}; use a comma-separated list of {}, or all, or none",
                known().copied().collect::<Vec<_>>().join(", ")
            ));
        }
        if !kinds.iter().any(|k| k == part) {
            kinds.push(part.to_string());
        }
    }
    // Canonical order, so names and schedules do not depend on how the flag was typed.
    kinds.sort_by_key(|k| known().position(|f| f == k));
    Ok(kinds)
}

impl TestConfig {
    /// Applies defaults and validates. `known_bugs` is the bundled cluster's bug list;
    /// `is_root` decides whether `--net netns` is possible.
    pub fn resolve(
        args: TestArgs,
        known_bugs: &[&str],
        is_root: bool,
    ) -> Result<TestConfig, ConfigError> {
        let args = args.merged()?;
        let workload = args.workload.unwrap_or_else(|| "kv".into());
        if !WORKLOADS.contains(&workload.as_str()) {
            return err(format!(
                "--workload {workload:?} is not a workload; use one of {}",
                WORKLOADS.join(", ")
            ));
        }
        let consistency_models = match &args.consistency_models {
            None => Vec::new(),
            Some(_) if !TXN_WORKLOADS.contains(&workload.as_str()) => {
                return err(format!(
                "--consistency-models applies to the transactional workloads ({}), not {workload}",
                TXN_WORKLOADS.join(", ")
            ))
            }
            Some(list) => splitbrain_checker::elle::models::parse_models(list)
                .map_err(|e| ConfigError(format!("--consistency-models: {e}")))?
                .iter()
                .map(|m| m.name().to_string())
                .collect(),
        };
        let nemesis = parse_nemesis(args.nemesis.as_deref().unwrap_or("all"))?;
        let nemesis_interval = positive("nemesis-interval", args.nemesis_interval.unwrap_or(5.0))?;
        let nodes = args.nodes.unwrap_or(5);
        if !(1..=9).contains(&nodes) {
            return err(format!(
                "--nodes {nodes}: the bundled cluster runs 1 to 9 nodes (3 or 5 are typical)"
            ));
        }
        if nodes < 3 && nemesis.iter().any(|k| k == "partition") {
            return err(format!(
                "--nodes {nodes} cannot be partitioned meaningfully; use --nodes 3 or more, or leave partition out of --nemesis"
            ));
        }
        if nemesis.iter().any(|k| k == "split-vote") && (nodes < 3 || nodes.is_multiple_of(2)) {
            return err(format!(
                "--nemesis split-vote needs an odd number of nodes, at least 3 (got --nodes {nodes})"
            ));
        }
        if nemesis.iter().any(|k| k == "figure-8") && (nodes < 5 || nodes.is_multiple_of(2)) {
            return err(format!(
                "--nemesis figure-8 needs an odd number of nodes, at least 5 (got --nodes {nodes})"
            ));
        }
        let concurrency = args.concurrency.unwrap_or(10);
        if concurrency == 0 || concurrency > 1000 {
            return err(format!(
                "--concurrency {concurrency} must be between 1 and 1000"
            ));
        }
        let rate = positive("rate", args.rate.unwrap_or(200.0))?;
        let time_limit = positive("time-limit", args.time_limit.unwrap_or(60.0))?;
        let net = args.net.unwrap_or_else(|| "proxy".into());
        match net.as_str() {
            "proxy" => {}
            "netns" if !is_root => {
                return err(
                    "--net netns needs root (network namespaces and iptables); run as root, or use --net proxy",
                )
            }
            "netns" if nemesis.iter().any(|k| MESSAGE_FAULTS.contains(&k.as_str())) => {
                return err(
                    "--nemesis split-vote and figure-8 drop and hold single Raft messages, which only the proxy can do; use --net proxy",
                )
            }
            "netns" => {}
            other => return err(format!("--net {other:?}: use proxy or netns")),
        }
        let read_mode = args.read_mode.unwrap_or_else(|| "read-index".into());
        if !READ_MODES.contains(&read_mode.as_str()) {
            return err(format!(
                "--read-mode {read_mode:?}: use one of {}",
                READ_MODES.join(", ")
            ));
        }
        let mut bugs = args.bugs;
        for bug in &bugs {
            if !known_bugs.contains(&bug.as_str()) {
                return err(format!(
                    "--bug {bug:?} is not a bug of the bundled cluster; `splitbrain bugs` lists them: {}",
                    known_bugs.join(", ")
                ));
            }
        }
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
            None => default_name(&workload, &nemesis, &bugs),
        };
        let seed = args.seed.unwrap_or_else(rand::random);
        Ok(TestConfig {
            name,
            workload,
            nemesis,
            nemesis_interval,
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
        })
    }

    /// The one-line command that reruns this configuration's schedule.
    pub fn reproduce_command(&self) -> String {
        let mut cmd = format!(
            "splitbrain test --workload {} --nemesis {} --nemesis-interval {} --nodes {} --concurrency {} --rate {} --time-limit {} --seed {} --net {} --read-mode {}",
            self.workload,
            if self.nemesis.is_empty() { "none".to_string() } else { self.nemesis.join(",") },
            self.nemesis_interval,
            self.nodes,
            self.concurrency,
            self.rate,
            self.time_limit,
            self.seed,
            self.net,
            self.read_mode
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
        if !self.consistency_models.is_empty() {
            cmd.push_str(&format!(
                " --consistency-models {}",
                self.consistency_models.join(",")
            ));
        }
        cmd
    }
}

fn default_name(workload: &str, nemesis: &[String], bugs: &[String]) -> String {
    let mut name = format!(
        "{workload}-{}",
        if nemesis.is_empty() {
            "none".to_string()
        } else {
            nemesis.join("+")
        }
    );
    for bug in bugs {
        name.push_str("-bug-");
        name.push_str(bug);
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    const BUGS: &[&str] = &["skip-fsync", "stale-reads"];

    #[test]
    fn defaults_are_meaningful() {
        let c = TestConfig::resolve(TestArgs::default(), BUGS, false).unwrap();
        assert_eq!(c.nodes, 5);
        assert_eq!(c.workload, "kv");
        assert_eq!(c.nemesis, vec!["partition", "kill", "pause", "clock"]);
        assert_eq!(c.net, "proxy");
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
        assert_eq!(c.nemesis, vec!["partition", "split-vote"]);
        let all = TestConfig::resolve(TestArgs::default(), BUGS, false).unwrap();
        assert!(!all.nemesis.iter().any(|k| k == "split-vote"));
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
        assert_eq!(c.workload, "register");
        assert_eq!(c.nodes, 5);
        assert_eq!(c.nemesis, vec!["partition"]);
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
        assert_eq!(c.consistency_models, ["serializable", "snapshot-isolation"]);
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
