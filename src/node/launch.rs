//! Starting bundled nodes as child processes, and talking to them: shared by
//! `splitbrain cluster`, `splitbrain bench-cluster` and the test harness, so that every
//! launcher passes exactly the same flags, ties its children to its own life the same
//! way ([`spawn_tied`]), picks ports the same way ([`free_port_base`]) and speaks the
//! admin protocol through one function ([`admin_request`]).

use crate::node::server::ReadMode;
use anyhow::{anyhow, bail, Context};
use rand::Rng;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Everything needed to start one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeSpec {
    /// The Raft id (1-based, unique in the cluster).
    pub id: u64,
    /// Human name, `n1`…, used in logs and histories.
    pub name: String,
    /// Where the node accepts peer connections.
    pub peer_listen: String,
    /// Where the node accepts client connections.
    pub client_listen: String,
    /// Where the node accepts admin connections.
    pub admin_listen: String,
    /// Peer id → the address this node DIALS to reach that peer (the peer's own peer
    /// address, or a proxy in front of it for the directed link this→peer).
    pub peers: BTreeMap<u64, String>,
    /// Peer id → that peer's client address, returned in not-leader replies.
    pub client_addrs: BTreeMap<u64, String>,
    pub data_dir: PathBuf,
    pub read_mode: ReadMode,
    /// Deliberate bugs (`splitbrain bugs` lists them).
    pub bugs: Vec<String>,
    /// Where the node writes its log (stderr when None).
    pub log_file: Option<PathBuf>,
    pub tick_ms: u64,
    /// Seeds the node's randomness (election timeouts).
    pub seed: u64,
}

impl NodeSpec {
    /// Specs for an `n`-node cluster on consecutive loopback ports from `base_port`
    /// (3 ports per node: peer, client, admin), data under `data_root/n<i>`.
    pub fn local_cluster(
        n: u64,
        base_port: u16,
        data_root: &Path,
        read_mode: ReadMode,
        seed: u64,
    ) -> Vec<NodeSpec> {
        let port = |i: u64, k: u64| format!("127.0.0.1:{}", u64::from(base_port) + (i - 1) * 3 + k);
        (1..=n)
            .map(|i| NodeSpec {
                id: i,
                name: format!("n{i}"),
                peer_listen: port(i, 0),
                client_listen: port(i, 1),
                admin_listen: port(i, 2),
                peers: (1..=n)
                    .filter(|&j| j != i)
                    .map(|j| (j, port(j, 0)))
                    .collect(),
                client_addrs: (1..=n)
                    .filter(|&j| j != i)
                    .map(|j| (j, port(j, 1)))
                    .collect(),
                data_dir: data_root.join(format!("n{i}")),
                read_mode,
                bugs: Vec::new(),
                log_file: Some(data_root.join(format!("n{i}.log"))),
                tick_ms: 10,
                seed: seed.wrapping_add(i),
            })
            .collect()
    }

    /// The `splitbrain node …` arguments for this spec.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "node".to_string(),
            "--id".into(),
            self.id.to_string(),
            "--name".into(),
            self.name.clone(),
            "--peer-listen".into(),
            self.peer_listen.clone(),
            "--client-listen".into(),
            self.client_listen.clone(),
            "--admin-listen".into(),
            self.admin_listen.clone(),
            "--data-dir".into(),
            self.data_dir.display().to_string(),
            "--read-mode".into(),
            self.read_mode.name().to_string(),
            "--tick-ms".into(),
            self.tick_ms.to_string(),
            "--seed".into(),
            self.seed.to_string(),
        ];
        for (id, addr) in &self.peers {
            args.push("--peer".into());
            args.push(format!("{id}={addr}"));
        }
        for (id, addr) in &self.client_addrs {
            args.push("--client-addr-of".into());
            args.push(format!("{id}={addr}"));
        }
        for bug in &self.bugs {
            args.push("--bug".into());
            args.push(bug.clone());
        }
        if let Some(log) = &self.log_file {
            args.push("--log-file".into());
            args.push(log.display().to_string());
        }
        args
    }

    /// A ready-to-spawn command running `exe node …` for this spec.
    pub fn command(&self, exe: &Path) -> std::process::Command {
        let mut cmd = std::process::Command::new(exe);
        cmd.args(self.args());
        cmd
    }
}

/// A JSON-lines connection to a node's client or admin port, one request at a time.
#[derive(Debug)]
pub struct LineClient {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    next_id: u64,
    line: String,
}

impl LineClient {
    pub async fn connect(addr: &str) -> anyhow::Result<LineClient> {
        let stream = tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(addr))
            .await
            .map_err(|_| anyhow!("connecting to {addr} timed out"))?
            .with_context(|| format!("connecting to {addr}"))?;
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        Ok(LineClient {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
            line: String::new(),
        })
    }

    /// Sends `request` (an object; its `id` is set here) and returns the reply object.
    pub async fn request(&mut self, mut request: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let obj = request
            .as_object_mut()
            .ok_or_else(|| anyhow!("request must be a JSON object"))?;
        obj.insert("id".into(), Value::from(id));
        let mut bytes = serde_json::to_vec(&request)?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await?;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line).await? == 0 {
                bail!("connection closed before the reply to request {id}");
            }
            let reply: Value = serde_json::from_str(&self.line).context("reply is not JSON")?;
            if reply.get("id").and_then(Value::as_u64) == Some(id) {
                return Ok(reply);
            }
        }
    }
}

/// One admin request on a fresh connection, within 5 s: the reply's `value` when the
/// node answered `ok`, its error otherwise.
pub async fn admin_request(addr: &str, request: Value) -> anyhow::Result<Value> {
    admin_request_within(addr, request, Duration::from_secs(5)).await
}

/// [`admin_request`] with a chosen timeout.
pub async fn admin_request_within(
    addr: &str,
    request: Value,
    timeout: Duration,
) -> anyhow::Result<Value> {
    let reply = tokio::time::timeout(timeout, async {
        let mut c = LineClient::connect(addr).await?;
        c.request(request).await
    })
    .await
    .map_err(|_| anyhow!("admin request to {addr} timed out"))??;
    if reply.get("ok") == Some(&Value::Bool(true)) {
        Ok(reply.get("value").cloned().unwrap_or(Value::Null))
    } else {
        Err(anyhow!(
            "admin request to {addr} failed: {}",
            reply.get("error").cloned().unwrap_or(Value::Null)
        ))
    }
}

/// Polls the admin ports until one node reports itself leader; returns its index in
/// `admin_addrs`.
pub async fn wait_for_leader(admin_addrs: &[String], timeout: Duration) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        for (i, addr) in admin_addrs.iter().enumerate() {
            if let Ok(status) = admin_request(addr, serde_json::json!({"op": "status"})).await {
                if status.get("role").and_then(Value::as_str) == Some("leader") {
                    return Ok(i);
                }
            }
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no leader elected within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Child processes that are stopped (SIGTERM, then SIGKILL after a grace period) when
/// this guard is dropped, so that no exit path of `cluster` leaves orphans behind.
pub struct Children {
    pub children: Vec<Child>,
    pub grace: Duration,
}

impl Children {
    pub fn stop_all(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        for child in &mut self.children {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            }
        }
        let deadline = std::time::Instant::now() + self.grace;
        for child in &mut self.children {
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if std::time::Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.children.clear();
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Spawns `spec`'s node, asking the kernel to SIGKILL it should this process die
/// without cleaning up.
pub fn spawn_node(spec: &NodeSpec, exe: &std::path::Path) -> anyhow::Result<Child> {
    let mut cmd = spec.command(exe);
    cmd.stdin(std::process::Stdio::null());
    spawn_tied(cmd).with_context(|| format!("starting node {} ({})", spec.name, exe.display()))
}

/// Spawns `cmd` with `PR_SET_PDEATHSIG` = SIGKILL, so that no node outlives a harness
/// that was itself killed. The death signal fires when the thread that forked the child
/// exits, so the fork happens on the harness's spawner thread, which lives as long as
/// the process (`splitbrain_workloads::child`); any caller's thread will do.
pub fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    splitbrain_workloads::child::tie_to_harness(&mut cmd);
    splitbrain_workloads::child::on_spawner_thread(move || cmd.spawn())?
}

/// The ports a node may listen on without racing the kernel: the largest stretch
/// outside the ephemeral range (`ip_local_port_range`), above the well-known ports.
/// Ephemeral ports are also handed out as source ports of outgoing connections (clients,
/// proxies), which could take a node's port between our check and the node's bind.
pub fn listen_port_range() -> (u16, u16) {
    let (low, high) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut parts = s.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999));
    if low.saturating_sub(10_000) >= 65535 - high {
        (10_000, low.saturating_sub(1))
    } else {
        (high.saturating_add(1), 65535)
    }
}

/// `count` consecutive loopback ports in [`listen_port_range`] that are free right now
/// (best effort: the listeners are closed again before the nodes bind them).
pub fn free_port_base(count: u16, rng: &mut impl Rng) -> anyhow::Result<u16> {
    let (from, to) = listen_port_range();
    let last_base = to.saturating_sub(count.saturating_sub(1)).max(from);
    for _ in 0..200 {
        let base = rng.gen_range(from..=last_base);
        let all_free = (0..count).all(|k| {
            base.checked_add(k)
                .is_some_and(|port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        });
        if all_free {
            return Ok(base);
        }
    }
    bail!("no {count} consecutive free loopback ports between {from} and {to}")
}

/// One free loopback port in [`listen_port_range`].
pub fn free_port(rng: &mut impl Rng) -> anyhow::Result<std::net::SocketAddr> {
    let port = free_port_base(1, rng)?;
    Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The random source of port picks: seeded from `seed` xor the pid, so that runs with
/// one seed repeat their ports while parallel runs (tests) differ.
pub fn port_rng(seed: u64) -> rand_chacha::ChaCha8Rng {
    <rand_chacha::ChaCha8Rng as rand::SeedableRng>::seed_from_u64(
        seed ^ u64::from(std::process::id()),
    )
}
