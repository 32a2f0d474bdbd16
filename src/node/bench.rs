//! `splitbrain bench-cluster`: throughput and latency of a fresh local cluster of
//! bundled nodes (fsync on), driven over TCP by N concurrent clients, each with one
//! request outstanding at a time; optionally the same load against a 3-node etcd on
//! loopback (through etcd's v3 HTTP/JSON gateway, `/v3/kv/put` and `/v3/kv/range`, so
//! both systems see one request per operation over a kept-alive connection).
//!
//! This is the documented benchmark for the node's speed; tests never assert speed.

use crate::node::launch::{
    admin, free_port_base, port_rng, spawn_node, wait_for_leader, Children, LineClient, NodeSpec,
};
use crate::node::protocol::{AdminOp, Command, Status};
use anyhow::{anyhow, bail, Context};
use clap::Args;
use rand::{Rng, SeedableRng};
use splitbrain_workloads::{EtcdConnection, EtcdReads};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `splitbrain bench-cluster`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Cluster size.
    #[arg(long, default_value_t = 3)]
    pub nodes: u64,
    /// Client counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<usize>,
    /// Seconds per client count.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Fraction of operations that are reads (0.0 to 1.0).
    #[arg(long, default_value_t = 0.0)]
    pub read_ratio: f64,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// Seed of the operation mix.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also run the load against a 3-node etcd (needs `etcd` on PATH) and print ratios.
    #[arg(long)]
    pub etcd: bool,
}

/// What one client count achieved.
#[derive(Debug, Clone)]
struct Measurement {
    clients: usize,
    writes_per_s: f64,
    reads_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

/// The system under load.
#[derive(Debug, Clone)]
enum Target {
    Splitbrain(String),
    Etcd(String),
}

enum Conn {
    Splitbrain(LineClient),
    Etcd(EtcdConnection),
}

impl Conn {
    async fn connect(target: &Target) -> anyhow::Result<Conn> {
        Ok(match target {
            Target::Splitbrain(addr) => Conn::Splitbrain(LineClient::connect(addr).await?),
            Target::Etcd(addr) => Conn::Etcd(EtcdConnection::new(addr.clone())),
        })
    }

    /// One operation: `Ok(None)` when acknowledged, `Ok(Some(leader))` when refused
    /// (with the leader's client address when the refusal was a not-leader hint).
    async fn op(
        &mut self,
        write: bool,
        key: &str,
        value: u64,
    ) -> anyhow::Result<Option<Option<String>>> {
        match self {
            Conn::Splitbrain(c) => {
                let key = key.to_string();
                let command = if write {
                    Command::Put {
                        key,
                        value: value.into(),
                    }
                } else {
                    Command::Get { key }
                };
                let reply = c.request(command).await?;
                if reply.ok {
                    return Ok(None);
                }
                Ok(Some(reply.leader.flatten()))
            }
            Conn::Etcd(c) => {
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                let outcome = if write {
                    c.put(key, value.to_string().as_bytes(), deadline)
                        .await
                        .map(|_| ())
                } else {
                    c.get(key, EtcdReads::Linearizable, deadline)
                        .await
                        .map(|_| ())
                };
                Ok(outcome.err().map(|_| None))
            }
        }
    }
}

async fn drive(target: &Target, clients: usize, args: &BenchArgs) -> anyhow::Result<Measurement> {
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::with_capacity(clients);
    for c in 0..clients {
        let target = target.clone();
        let seed = args.seed.wrapping_mul(1_000_003).wrapping_add(c as u64);
        let (keys, read_ratio) = (args.keys.max(1), args.read_ratio);
        tasks.push(tokio::spawn(async move {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut target = target;
            let mut conn = Conn::connect(&target).await?;
            let (mut writes, mut reads, mut errors) = (0u64, 0u64, 0u64);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let write = !rng.gen_bool(read_ratio.clamp(0.0, 1.0));
                let key = format!("k{}", rng.gen_range(0..keys));
                let started = Instant::now();
                match conn.op(write, &key, rng.gen()).await {
                    Ok(None) => {
                        latencies.push(started.elapsed());
                        if write {
                            writes += 1;
                        } else {
                            reads += 1;
                        }
                    }
                    Ok(Some(leader)) => {
                        errors += 1;
                        // Follow a new leader, as a real client would.
                        match leader {
                            Some(addr) if matches!(&target, Target::Splitbrain(old) if *old != addr) => {
                                target = Target::Splitbrain(addr);
                                if let Ok(c) = Conn::connect(&target).await {
                                    conn = c;
                                }
                            }
                            _ => tokio::time::sleep(Duration::from_millis(5)).await,
                        }
                    }
                    Err(_) => {
                        errors += 1;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        if let Ok(c) = Conn::connect(&target).await {
                            conn = c;
                        }
                    }
                }
            }
            Ok::<_, anyhow::Error>((writes, reads, errors, latencies))
        }));
    }
    let started = Instant::now();
    let (mut writes, mut reads, mut errors) = (0, 0, 0);
    let mut latencies = Vec::new();
    for t in tasks {
        let (w, r, e, l) = t.await.map_err(|e| anyhow!("client task failed: {e}"))??;
        writes += w;
        reads += r;
        errors += e;
        latencies.extend(l);
    }
    let secs = started.elapsed().as_secs_f64().max(args.seconds as f64);
    latencies.sort_unstable();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(Measurement {
        clients,
        writes_per_s: writes as f64 / secs,
        reads_per_s: reads as f64 / secs,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors,
    })
}

fn print_table(system: &str, rows: &[Measurement]) {
    println!("{system}");
    println!(
        "{:>8} {:>12} {:>12} {:>9} {:>9} {:>7}",
        "clients", "writes/s", "reads/s", "p50 ms", "p99 ms", "errors"
    );
    for m in rows {
        println!(
            "{:>8} {:>12.0} {:>12.0} {:>9.2} {:>9.2} {:>7}",
            m.clients, m.writes_per_s, m.reads_per_s, m.p50_ms, m.p99_ms, m.errors
        );
    }
}

fn start_bundled(args: &BenchArgs, root: &Path) -> anyhow::Result<(Children, Vec<NodeSpec>)> {
    start_local_cluster(args.nodes, args.seed, root)
}

/// Starts `nodes` bundled nodes (read-index reads, fsync on) with data under `root`;
/// they stop when the returned [`Children`] is dropped.
pub(crate) fn start_local_cluster(
    nodes: u64,
    seed: u64,
    root: &Path,
) -> anyhow::Result<(Children, Vec<NodeSpec>)> {
    let base = free_port_base((nodes * 3) as u16, &mut port_rng(seed))?;
    let specs = NodeSpec::local_cluster(
        nodes,
        base,
        &root.join("splitbrain"),
        crate::node::server::ReadMode::ReadIndex,
        seed,
    );
    let exe = std::env::current_exe().context("locating the splitbrain executable")?;
    let mut children = Children {
        children: Vec::new(),
        grace: Duration::from_secs(5),
    };
    for spec in &specs {
        std::fs::create_dir_all(&spec.data_dir)?;
        children.children.push(spawn_node(spec, &exe)?);
    }
    Ok((children, specs))
}

/// A 3-member etcd on loopback ports (data and logs under `root/etcd`); returns the
/// members and their client addresses. The members die with this process.
pub(crate) fn start_etcd(root: &Path, seed: u64) -> anyhow::Result<(Children, Vec<String>)> {
    let base = free_port_base(6, &mut port_rng(seed.wrapping_add(7)))?;
    let peer = |i: u16| format!("http://127.0.0.1:{}", base + 2 * i);
    let client = |i: u16| format!("127.0.0.1:{}", base + 2 * i + 1);
    let initial: Vec<String> = (0..3).map(|i| format!("e{i}={}", peer(i))).collect();
    let mut children = Children {
        children: Vec::new(),
        grace: Duration::from_secs(5),
    };
    for i in 0..3u16 {
        let dir = root.join(format!("etcd/e{i}"));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::File::create(root.join(format!("etcd/e{i}.log")))?;
        let mut cmd = std::process::Command::new("etcd");
        cmd.args([
            "--name",
            &format!("e{i}"),
            "--data-dir",
            &dir.display().to_string(),
            "--listen-client-urls",
            &format!("http://{}", client(i)),
            "--advertise-client-urls",
            &format!("http://{}", client(i)),
            "--listen-peer-urls",
            &peer(i),
            "--initial-advertise-peer-urls",
            &peer(i),
            "--initial-cluster",
            &initial.join(","),
            "--initial-cluster-token",
            "splitbrain-bench",
            "--initial-cluster-state",
            "new",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
        children
            .children
            .push(crate::node::launch::spawn_tied(cmd).context("starting etcd")?);
    }
    Ok((children, (0..3).map(client).collect()))
}

/// Runs the benchmark; prints one table per system.
pub fn run(args: BenchArgs) -> anyhow::Result<i32> {
    if args.nodes == 0 || args.clients.is_empty() || !(0.0..=1.0).contains(&args.read_ratio) {
        eprintln!("error: need --nodes >= 1, at least one client count and 0 <= --read-ratio <= 1");
        return Ok(i32::from(crate::EXIT_BAD_INPUT));
    }
    let root: PathBuf =
        std::env::temp_dir().join(format!("splitbrain-bench-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    // The nodes' and etcd's descendants are reparented to us, and killed after the run.
    if let Err(e) = crate::run::contain::become_subreaper() {
        tracing::warn!("{e:#}");
    }
    let result = run_in(&args, &root);
    crate::run::contain::sweep_after_run();
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn run_in(args: &BenchArgs, root: &Path) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let (mut children, specs) = start_bundled(args, root)?;
    let admin_addrs: Vec<String> = specs.iter().map(|s| s.admin_listen.clone()).collect();
    let ours = runtime.block_on(async {
        let leader = wait_for_leader(&admin_addrs, Duration::from_secs(30)).await?;
        let target = Target::Splitbrain(specs[leader].client_listen.clone());
        let mut rows = Vec::new();
        for &c in &args.clients {
            rows.push(drive(&target, c, args).await?);
        }
        // Elections during the run (term 1 is the first leader's) explain refusals.
        let mut terms = Vec::new();
        for addr in &admin_addrs {
            let status = admin::<Status>(addr, AdminOp::Status, Duration::from_secs(5)).await;
            terms.push(status.map_or(0, |s| s.term));
        }
        println!("final terms per node: {terms:?}");
        Ok::<_, anyhow::Error>(rows)
    })?;
    children.stop_all();
    print_table(
        &format!("splitbrain ({} nodes, fsync on, read-index)", args.nodes),
        &ours,
    );

    if !args.etcd {
        return Ok(0);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("etcd").is_file()))
        .unwrap_or(false);
    if !on_path {
        eprintln!("etcd is not on PATH; skipping the comparison (Debian package etcd-server)");
        return Ok(0);
    }
    let (mut etcd_children, clients) = start_etcd(root, args.seed)?;
    let theirs = runtime.block_on(async {
        // Wait until a put goes through (the cluster has a leader).
        let target = Target::Etcd(clients[0].clone());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut c) = Conn::connect(&target).await {
                if let Ok(None) = c.op(true, "warmup", 0).await {
                    break;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "etcd did not come up within 30 s (logs in {})",
                    root.join("etcd").display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut rows = Vec::new();
        for &c in &args.clients {
            rows.push(drive(&target, c, args).await?);
        }
        Ok::<_, anyhow::Error>(rows)
    });
    etcd_children.stop_all();
    let theirs = theirs?;
    print_table(
        "etcd 3-node (v3 JSON gateway, one member's client port)",
        &theirs,
    );
    println!("ratio splitbrain/etcd (ops/s)");
    for (a, b) in ours.iter().zip(&theirs) {
        let ours_ops = a.writes_per_s + a.reads_per_s;
        let theirs_ops = b.writes_per_s + b.reads_per_s;
        println!(
            "{:>8} {:>8.2}x",
            a.clients,
            if theirs_ops > 0.0 {
                ours_ops / theirs_ops
            } else {
                f64::INFINITY
            }
        );
    }
    Ok(0)
}
