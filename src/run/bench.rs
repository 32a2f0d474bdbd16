//! `splitbrain bench-driver`: the test driver's own ceiling and its cost per operation.
//!
//! Three measurements per worker count, all in one run so they share the machine's load:
//! - **null system**: the real workers, generator and history recorder (streaming to a
//!   JSONL file, as in `splitbrain test`) against a client that answers at once. Its
//!   rate is the most the driver can issue and record; its CPU time per operation is
//!   the driver's overhead, since nothing else runs in the process.
//! - **raw client**: the same client code against a fresh bundled cluster (3 nodes, fsync
//!   on), operations pre-generated, nothing recorded: the cluster's rate for this mix.
//! - **through the driver**: the workers, generator and recorder against that cluster.
//!   The ratio to the raw rate is what the driver costs a real test.
//!
//! All clients talk to the leader, with no stagger (`rate` unlimited): this is the
//! ceiling. A `splitbrain test` spreads its workers over every node, so followers answer
//! `not-leader` and clients follow the hint, which costs more than the driver does.
//! Speed is only ever measured here and reported, never asserted by tests.
//!
//! `--db etcd` runs the raw and driven measurements against a 3-member etcd on loopback
//! through the built-in etcd client instead (one member's client port, as
//! `bench-cluster --etcd` does): the driver's rate against etcd next to the client's own.

use anyhow::{bail, Context};
use clap::Args;
use serde_json::Value;
use splitbrain_checker::{EventType, Process};
use splitbrain_workloads::{
    BoxFuture, BundledClient, Client, Completion, EtcdClient, EtcdConnection, EtcdReads, Generator,
    Op, WorkloadConfig, WorkloadKind,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

use super::recorder::Recorder;
use super::workers::{self, Counters, WorkerSetup};
use crate::node::launch::wait_for_leader;

/// `splitbrain bench-driver`.
#[derive(Debug, Args)]
pub struct BenchDriverArgs {
    /// Worker counts to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub clients: Vec<usize>,
    /// Seconds per measurement (three measurements per worker count).
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// The workload whose operations are generated and recorded.
    #[arg(long, default_value = "kv")]
    pub workload: String,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Skip the cluster measurements (the null system needs no nodes).
    #[arg(long)]
    pub null_only: bool,
    /// The system the raw and driven measurements run against: bundled (a 3-node
    /// cluster, clients on the leader) or etcd (a 3-member etcd on loopback, clients on
    /// one member through the built-in etcd client; needs etcd-server).
    #[arg(long, default_value = "bundled", value_parser = ["bundled", "etcd"])]
    pub db: String,
}

/// A system that answers every operation at once: reads see this client's last write
/// of the key, everything else succeeds with its own value.
#[derive(Debug, Default)]
struct NullClient {
    last_written: HashMap<Option<String>, Value>,
}

impl Client for NullClient {
    fn invoke<'a>(&'a mut self, op: &'a Op) -> BoxFuture<'a, Completion> {
        let key = op.key.as_ref().map(|k| k.to_string());
        let completion = match op.f.as_str() {
            "read" => Completion::ok(self.last_written.get(&key).cloned().unwrap_or(Value::Null)),
            "write" => {
                self.last_written.insert(key, op.value.clone());
                Completion::ok(op.value.clone())
            }
            _ => Completion::ok(op.value.clone()),
        };
        Box::pin(std::future::ready(completion))
    }
}

/// What one measurement achieved.
#[derive(Debug, Clone, Default)]
struct Measurement {
    ops: u64,
    ok: u64,
    wall: Duration,
    /// CPU time of this process (user + system) over the measurement.
    cpu: Duration,
    p50_us: f64,
    p99_us: f64,
}

impl Measurement {
    fn rate(&self) -> f64 {
        self.ops as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    fn cpu_us_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }
}

fn process_cpu() -> Duration {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .map(Duration::from)
        .unwrap_or_default()
}

/// Runs the real workers (generator, stagger-free loop, recorder) with one client each
/// for `seconds`, recording into `history`.
async fn through_driver<C: Client + 'static>(
    clients: Vec<C>,
    workload: WorkloadKind,
    seed: u64,
    seconds: u64,
    history: &Path,
) -> anyhow::Result<Measurement> {
    let concurrency = clients.len();
    let generator = Generator::new(WorkloadConfig::new(workload, concurrency, seed))
        .map_err(|e| anyhow::anyhow!("workload: {e}"))?;
    let generator = Arc::new(Mutex::new(generator));
    let started = Instant::now();
    let recorder = Recorder::create(history, started)
        .with_context(|| format!("creating {}", history.display()))?;
    let counters = Arc::new(Counters::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let cpu_before = process_cpu();
    let mut tasks = Vec::new();
    for (thread, client) in clients.into_iter().enumerate() {
        tasks.push(tokio::spawn(workers::run_worker(
            WorkerSetup {
                thread,
                concurrency,
                node: "n1".to_string(),
                rate: f64::INFINITY,
                seed,
            },
            client,
            generator.clone(),
            recorder.clone(),
            counters.clone(),
            stop_rx.clone(),
        )));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let _ = stop_tx.send(true);
    for task in tasks {
        task.await.context("a worker panicked")?;
    }
    let wall = started.elapsed();
    let cpu = process_cpu().saturating_sub(cpu_before);
    if let Some(error) = recorder.finish() {
        bail!("writing {}: {error}", history.display());
    }
    let ok = counters.ok.load(Ordering::Relaxed);
    let ops = ok + counters.fail.load(Ordering::Relaxed) + counters.info.load(Ordering::Relaxed);
    let latencies = latencies_us(&recorder);
    Ok(Measurement {
        ops,
        ok,
        wall,
        cpu,
        p50_us: percentile(&latencies, 0.50),
        p99_us: percentile(&latencies, 0.99),
    })
}

/// Invocation-to-completion times of the recorded history, sorted.
fn latencies_us(recorder: &Recorder) -> Vec<f64> {
    let history = recorder.history();
    let mut open: HashMap<Process, u64> = HashMap::new();
    let mut out = Vec::new();
    for event in &history.events {
        if event.kind == EventType::Invoke {
            open.insert(event.process, event.time);
        } else if let Some(invoked) = open.remove(&event.process) {
            out.push(event.time.saturating_sub(invoked) as f64 / 1e3);
        }
    }
    out.sort_by(f64::total_cmp);
    out
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The same clients on pre-generated operations, one at a time each, nothing recorded.
async fn raw_clients<C: Client + 'static>(
    clients: Vec<C>,
    workload: WorkloadKind,
    seed: u64,
    seconds: u64,
) -> anyhow::Result<Measurement> {
    let concurrency = clients.len();
    let mut generator = Generator::new(WorkloadConfig::new(workload, concurrency, seed))
        .map_err(|e| anyhow::anyhow!("workload: {e}"))?;
    // Enough for ~5,000 ops/s per client, and at most two million in all.
    let per_thread = (seconds as usize * 5_000).min(2_000_000 / concurrency.max(1));
    let mut scripts: Vec<Vec<Op>> = vec![Vec::with_capacity(per_thread); concurrency];
    for _ in 0..per_thread {
        for (thread, script) in scripts.iter_mut().enumerate() {
            if let Some(op) = generator.next_op(thread) {
                script.push(op);
            }
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let cpu_before = process_cpu();
    let mut tasks = Vec::new();
    for (mut client, script) in clients.into_iter().zip(scripts) {
        tasks.push(tokio::spawn(async move {
            let mut done = (0u64, 0u64);
            let mut latencies = Vec::new();
            for op in &script {
                if tokio::time::Instant::now() >= deadline {
                    break;
                }
                let t = Instant::now();
                let completion = client.invoke(op).await;
                latencies.push(t.elapsed().as_secs_f64() * 1e6);
                done.0 += 1;
                done.1 += u64::from(completion.kind == EventType::Ok);
            }
            (done, latencies)
        }));
    }
    let mut m = Measurement::default();
    let mut latencies = Vec::new();
    for task in tasks {
        let ((ops, ok), lat) = task.await.context("a client task panicked")?;
        m.ops += ops;
        m.ok += ok;
        latencies.extend(lat);
    }
    m.wall = started.elapsed();
    m.cpu = process_cpu().saturating_sub(cpu_before);
    latencies.sort_by(f64::total_cmp);
    m.p50_us = percentile(&latencies, 0.50);
    m.p99_us = percentile(&latencies, 0.99);
    Ok(m)
}

pub fn run(args: BenchDriverArgs) -> anyhow::Result<i32> {
    let workload: WorkloadKind = match args.workload.parse() {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: --workload: {e}");
            return Ok(i32::from(crate::EXIT_BAD_INPUT));
        }
    };
    if args.clients.is_empty() || args.clients.contains(&0) || args.seconds == 0 {
        eprintln!("error: need at least one client count, none of them 0, and --seconds >= 1");
        return Ok(i32::from(crate::EXIT_BAD_INPUT));
    }
    let root = std::env::temp_dir().join(format!("splitbrain-bench-driver-{}", std::process::id()));
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let result = run_in(&args, workload, &root);
    let _ = std::fs::remove_dir_all(&root);
    result
}

fn run_in(args: &BenchDriverArgs, workload: WorkloadKind, root: &Path) -> anyhow::Result<i32> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let etcd = args.db == "etcd";
    let cluster = if args.null_only || etcd {
        None
    } else {
        Some(crate::node::bench::start_local_cluster(3, args.seed, root)?)
    };
    let etcd_cluster = if etcd && !args.null_only {
        Some(crate::node::bench::start_etcd(root, args.seed)?)
    } else {
        None
    };
    runtime.block_on(async {
        let leader_addr = match &cluster {
            Some((_, specs)) => {
                let admin: Vec<String> = specs.iter().map(|s| s.admin_listen.clone()).collect();
                let leader = wait_for_leader(&admin, Duration::from_secs(30)).await?;
                Some(specs[leader].client_listen.clone())
            }
            None => None,
        };
        let etcd_addr = match &etcd_cluster {
            Some((_, clients)) => Some(wait_for_etcd(&clients[0], root).await?),
            None => None,
        };
        println!(
            "# bench-driver: workload {}, {} s per measurement, {}",
            workload.name(),
            args.seconds,
            if etcd {
                "clients talk to one member of a 3-member etcd on loopback (v3 JSON gateway, linearizable reads)"
            } else {
                "clients talk to the leader of a 3-node cluster (fsync on)"
            }
        );
        println!(
            "{:>7} | {:>12} {:>12} | {:>10} {:>9} {:>9} | {:>10} {:>9} {:>9} {:>9} {:>11}",
            "workers",
            "null ops/s",
            "null CPU/op",
            "raw ops/s",
            "raw p50",
            "raw p99",
            "drv ops/s",
            "drv p50",
            "drv p99",
            "drv/raw",
            "drv CPU/op"
        );
        for (i, &c) in args.clients.iter().enumerate() {
            let null = through_driver(
                (0..c).map(|_| NullClient::default()).collect(),
                workload,
                args.seed,
                args.seconds,
                &root.join(format!("null-{i}.jsonl")),
            )
            .await?;
            let mut row = format!(
                "{:>7} | {:>12.0} {:>9.2} µs |",
                c,
                null.rate(),
                null.cpu_us_per_op()
            );
            let measured = if let Some(addr) = &leader_addr {
                let client = || BundledClient::new(workload, addr.clone(), Duration::from_secs(5));
                let raw = raw_clients((0..c).map(|_| client()).collect(), workload, args.seed, args.seconds)
                    .await?;
                let driven = through_driver(
                    (0..c).map(|_| client()).collect(),
                    workload,
                    args.seed,
                    args.seconds,
                    &root.join(format!("cluster-{i}.jsonl")),
                )
                .await?;
                Some((raw, driven))
            } else if let Some(addr) = &etcd_addr {
                let client = || {
                    EtcdClient::new(workload, addr.clone(), Duration::from_secs(5), EtcdReads::Linearizable)
                };
                let raw = raw_clients((0..c).map(|_| client()).collect(), workload, args.seed, args.seconds)
                    .await?;
                let driven = through_driver(
                    (0..c).map(|_| client()).collect(),
                    workload,
                    args.seed,
                    args.seconds,
                    &root.join(format!("etcd-{i}.jsonl")),
                )
                .await?;
                Some((raw, driven))
            } else {
                None
            };
            if let Some((raw, driven)) = measured {
                row.push_str(&format!(
                    " {:>10.0} {:>6.2} ms {:>6.2} ms | {:>10.0} {:>6.2} ms {:>6.2} ms {:>8.2}× {:>8.2} µs",
                    raw.rate(),
                    raw.p50_us / 1e3,
                    raw.p99_us / 1e3,
                    driven.rate(),
                    driven.p50_us / 1e3,
                    driven.p99_us / 1e3,
                    driven.rate() / raw.rate().max(1e-9),
                    driven.cpu_us_per_op(),
                ));
            }
            println!("{row}");
        }
        println!(
            "# null: the driver alone (workers + generator + recorder streaming history.jsonl); CPU/op is this process's user+system time per operation"
        );
        println!(
            "# raw: the same client code on pre-generated ops, nothing recorded; drv: through the driver; drv CPU/op excludes the nodes (separate processes)"
        );
        anyhow::Ok(())
    })?;
    drop(cluster);
    if let Some((mut members, _)) = etcd_cluster {
        members.stop_all();
    }
    Ok(0)
}

/// Waits until a put through the member at `addr` succeeds (the cluster has a leader).
async fn wait_for_etcd(addr: &str, root: &Path) -> anyhow::Result<String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut connection = EtcdConnection::new(addr);
    loop {
        let attempt = tokio::time::Instant::now() + Duration::from_secs(1);
        if connection.put("warmup", b"0", attempt).await.is_ok() {
            return Ok(addr.to_string());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "etcd did not come up within 30 s (logs in {})",
                root.join("etcd").display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn null_system_measurement_records_every_operation_it_counts() {
        let dir = std::env::temp_dir().join(format!(
            "splitbrain-bench-driver-test-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let history = dir.join("h.jsonl");
        let _ = std::fs::remove_file(&history);
        let m = through_driver(
            (0..4).map(|_| NullClient::default()).collect(),
            WorkloadKind::Kv,
            7,
            1,
            &history,
        )
        .await
        .unwrap();
        assert!(m.ops > 0);
        assert_eq!(m.ok, m.ops, "the null system answers everything ok");
        let recorded = std::fs::read_to_string(&history).unwrap().lines().count() as u64;
        // Two events per operation; a worker stopped mid-operation may add one invoke.
        assert!(
            (2 * m.ops..=2 * m.ops + 4).contains(&recorded),
            "{recorded} lines for {} ops",
            m.ops
        );
        assert!(m.p50_us <= m.p99_us);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn percentile_picks_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 51.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }
}
