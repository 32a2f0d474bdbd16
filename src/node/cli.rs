//! The subcommands of the bundled Raft KV: `node` (one server), `cluster` (a local
//! cluster of child processes), `bugs` (the deliberate-bug registry) and
//! `bench-cluster` (throughput and latency, optionally against etcd).

use crate::node::bench::{self, BenchArgs};
use crate::node::bugs::{self, BugSet};
use crate::node::clock::Clock;
use crate::node::launch::{spawn_node, wait_for_leader, Children, NodeSpec};
use crate::node::server::{self, Listeners, NodeConfig, ReadMode};
use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Run one node of the bundled Raft key-value store.
    Node(NodeArgs),
    /// Start a local cluster of bundled nodes as child processes, until Ctrl-C.
    Cluster(ClusterArgs),
    /// List the deliberate bugs: name, nemesis that exposes it, workload, the whole
    /// command line that exposes it, and what it breaks (tab-separated, or `--json`).
    Bugs(BugsArgs),
    /// Measure throughput and latency of a fresh local cluster (and optionally etcd).
    BenchCluster(BenchArgs),
}

/// `splitbrain node`.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// This node's Raft id (1-based).
    #[arg(long)]
    pub id: u64,
    /// Human name (default `n<id>`).
    #[arg(long)]
    pub name: Option<String>,
    /// Address to accept peer connections on.
    #[arg(long)]
    pub peer_listen: String,
    /// Address to accept client connections on.
    #[arg(long)]
    pub client_listen: String,
    /// Address to accept admin connections on.
    #[arg(long)]
    pub admin_listen: String,
    /// `ID=ADDR`: dial ADDR to send to peer ID (one flag per peer; ADDR may be a proxy).
    #[arg(long = "peer", value_name = "ID=ADDR")]
    pub peers: Vec<String>,
    /// `ID=ADDR`: peer ID's client address, returned in not-leader replies.
    #[arg(long = "client-addr-of", value_name = "ID=ADDR")]
    pub client_addrs: Vec<String>,
    /// Directory of the write-ahead log and snapshot.
    #[arg(long)]
    pub data_dir: PathBuf,
    #[arg(long, value_enum, default_value = "read-index")]
    pub read_mode: ReadMode,
    /// Switch on a deliberate bug (repeatable; `splitbrain bugs` lists them).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
    /// Write logs here instead of stderr.
    #[arg(long)]
    pub log_file: Option<PathBuf>,
    /// Milliseconds per consensus tick (elections after 10-20 ticks).
    #[arg(long, default_value_t = 10)]
    pub tick_ms: u64,
    /// Snapshot and compact the log after this many applied entries (0: never).
    #[arg(long, default_value_t = 10_000)]
    pub snapshot_every: u64,
    /// Clock milliseconds before an unanswered request gets a `timeout` reply.
    #[arg(long, default_value_t = 5_000)]
    pub request_timeout_ms: u64,
    /// Seed of the election-timeout randomness (default: derived from the id and time).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// `splitbrain cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Where the nodes keep their data and logs (default: a new temp directory).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "read-index")]
    pub read_mode: ReadMode,
    /// First port; node i uses base+3(i-1) (peer), +1 (client), +2 (admin).
    #[arg(long, default_value_t = 7100)]
    pub base_port: u16,
    /// Switch on a deliberate bug on every node (repeatable).
    #[arg(long = "bug", value_name = "NAME")]
    pub bugs: Vec<String>,
}

/// Flags of `splitbrain bugs`.
#[derive(Debug, Clone, clap::Args)]
pub struct BugsArgs {
    /// Print a JSON array instead of tab-separated lines.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: NodeCommand) -> anyhow::Result<i32> {
    match cmd {
        NodeCommand::Bugs(args) => {
            if args.json {
                let list: Vec<serde_json::Value> = bugs::BUGS
                    .iter()
                    .map(|b| {
                        serde_json::json!({
                            "name": b.name,
                            "nemesis": b.nemesis_arg(),
                            "workload": b.workload.name(),
                            "read_mode": b.read_mode.map(|m| m.name()),
                            "op_timeout": b.max_op_timeout,
                            "rate": b.min_rate,
                            "command": b.command(),
                            "description": b.description,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&list)?);
                return Ok(0);
            }
            for b in bugs::BUGS {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    b.name,
                    b.nemesis_arg(),
                    b.workload.name(),
                    b.command(),
                    b.description
                );
            }
            Ok(0)
        }
        NodeCommand::Node(args) => run_node(args),
        NodeCommand::Cluster(args) => run_cluster(args),
        NodeCommand::BenchCluster(args) => bench::run(args),
    }
}

/// Parses repeated `ID=ADDR` flags.
pub fn parse_id_addrs(flag: &str, values: &[String]) -> Result<BTreeMap<u64, String>, String> {
    let mut map = BTreeMap::new();
    for v in values {
        let (id, addr) = v
            .split_once('=')
            .ok_or_else(|| format!("--{flag} {v:?}: expected ID=ADDR"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| format!("--{flag} {v:?}: {id:?} is not a node id"))?;
        if addr.trim().is_empty() {
            return Err(format!("--{flag} {v:?}: empty address"));
        }
        map.insert(id, addr.trim().to_string());
    }
    Ok(map)
}

fn init_logging(log_file: Option<&PathBuf>) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::sync::Mutex::new(file))
                .try_init()
        }
        None => builder.with_writer(std::io::stderr).try_init(),
    }
    .map_err(|e| anyhow!("initialising logging: {e}"))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn termination() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}

fn run_node(args: NodeArgs) -> anyhow::Result<i32> {
    let bugs = match BugSet::parse(&args.bugs) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(i32::from(crate::EXIT_BAD_INPUT));
        }
    };
    let (peers, mut client_addrs) = match (
        parse_id_addrs("peer", &args.peers),
        parse_id_addrs("client-addr-of", &args.client_addrs),
    ) {
        (Ok(p), Ok(c)) => (p, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return Ok(i32::from(crate::EXIT_BAD_INPUT));
        }
    };
    if peers.contains_key(&args.id) || args.id == 0 {
        eprintln!(
            "error: --id {} must be non-zero and must not appear among --peer",
            args.id
        );
        return Ok(i32::from(crate::EXIT_BAD_INPUT));
    }
    client_addrs.insert(args.id, args.client_listen.clone());
    init_logging(args.log_file.as_ref())?;
    let seed = args.seed.unwrap_or_else(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        (nanos as u64) ^ args.id.rotate_left(32)
    });
    let cfg = NodeConfig {
        id: args.id,
        name: args.name.unwrap_or_else(|| format!("n{}", args.id)),
        peers,
        client_addrs,
        data_dir: args.data_dir,
        read_mode: args.read_mode,
        bugs,
        tick_ms: args.tick_ms,
        snapshot_every: args.snapshot_every,
        request_timeout_ms: args.request_timeout_ms,
        seed,
    };
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listeners =
            Listeners::bind(&args.peer_listen, &args.client_listen, &args.admin_listen).await?;
        let (peer, client, admin) = listeners.addrs()?;
        tracing::info!(%peer, %client, %admin, "listening");
        tracing::info!(id = cfg.id, name = %cfg.name, seed, read_mode = cfg.read_mode.name(),
            bugs = ?args.bugs, "node starting");
        server::run(cfg, listeners, Clock::new(), termination()).await?;
        tracing::info!("node stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}

fn run_cluster(args: ClusterArgs) -> anyhow::Result<i32> {
    if args.nodes == 0 || args.nodes > 99 {
        eprintln!("error: --nodes must be between 1 and 99");
        return Ok(i32::from(crate::EXIT_BAD_INPUT));
    }
    if let Err(e) = BugSet::parse(&args.bugs) {
        eprintln!("error: {e}");
        return Ok(i32::from(crate::EXIT_BAD_INPUT));
    }
    let data_root = match args.data_dir {
        Some(d) => d,
        None => std::env::temp_dir().join(format!("splitbrain-cluster-{}", std::process::id())),
    };
    std::fs::create_dir_all(&data_root)
        .with_context(|| format!("creating {}", data_root.display()))?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut specs =
        NodeSpec::local_cluster(args.nodes, args.base_port, &data_root, args.read_mode, seed);
    for spec in &mut specs {
        spec.bugs = args.bugs.clone();
    }
    let exe = std::env::current_exe().context("locating the splitbrain executable")?;
    let mut children = Children {
        children: Vec::new(),
        grace: Duration::from_secs(5),
    };
    for spec in &specs {
        children.children.push(spawn_node(spec, &exe)?);
        println!(
            "{}\tclient {}\tadmin {}\tdata {}\tlog {}",
            spec.name,
            spec.client_listen,
            spec.admin_listen,
            spec.data_dir.display(),
            spec.log_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let admin: Vec<String> = specs.iter().map(|s| s.admin_listen.clone()).collect();
    let outcome = runtime.block_on(async {
        tokio::select! {
            leader = wait_for_leader(&admin, Duration::from_secs(30)) => {
                let leader = leader?;
                println!("leader: {} (client {})", specs[leader].name, specs[leader].client_listen);
                println!("press Ctrl-C to stop the cluster");
                termination().await;
                Ok(())
            }
            _ = termination() => Ok(()),
        }
    });
    eprintln!("stopping {} nodes", children.children.len());
    children.stop_all();
    outcome.map(|()| 0).map_err(|e: anyhow::Error| e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_addr_flags_parse_and_reject_nonsense() {
        let ok = parse_id_addrs("peer", &["2=127.0.0.1:1".into(), "3=127.0.0.1:2".into()])
            .expect("valid");
        assert_eq!(ok.get(&3).map(String::as_str), Some("127.0.0.1:2"));
        assert!(parse_id_addrs("peer", &["x=127.0.0.1:1".into()]).is_err());
        assert!(parse_id_addrs("peer", &["2".into()]).is_err());
        assert!(parse_id_addrs("peer", &["2=".into()]).is_err());
    }

    #[test]
    fn node_spec_args_round_trip_through_the_cli() {
        use clap::Parser;
        #[derive(Debug, clap::Parser)]
        struct Top {
            #[command(subcommand)]
            cmd: NodeCommand,
        }
        let dir = std::env::temp_dir();
        let mut specs = NodeSpec::local_cluster(3, 9000, &dir, ReadMode::Lease, 7);
        specs[1].bugs = vec!["forget-vote".into()];
        let top =
            Top::try_parse_from(std::iter::once("splitbrain".to_string()).chain(specs[1].args()))
                .expect("spec args parse");
        let NodeCommand::Node(args) = top.cmd else {
            panic!("not a node command")
        };
        assert_eq!(args.id, 2);
        assert_eq!(args.read_mode, ReadMode::Lease);
        assert_eq!(
            args.peers,
            vec![
                "1=127.0.0.1:9000".to_string(),
                "3=127.0.0.1:9006".to_string()
            ]
        );
        assert_eq!(args.bugs, vec!["forget-vote".to_string()]);
        assert_eq!(args.client_listen, "127.0.0.1:9004");
    }
}
