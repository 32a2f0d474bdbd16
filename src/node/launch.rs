//! Starting bundled nodes as child processes, and talking to them: shared by
//! `splitbrain cluster`, `splitbrain bench-cluster` and the test harness, so that every
//! launcher passes exactly the same flags, ties its children to its own life the same
//! way ([`spawn_tied`]), picks ports the same way ([`free_port_base`]) and speaks the
//! admin protocol through one typed function ([`admin`]).

use crate::node::protocol::{self, AdminOp, AdminRequest, Reply, Request, Role, Status};
use crate::node::server::ReadMode;
use anyhow::{anyhow, bail, Context};
use rand::Rng;
use serde::de::DeserializeOwned;
use serde::Serialize;
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

    /// Sends one client-API command (a client port) and returns the node's reply.
    pub async fn request(&mut self, command: protocol::Command) -> anyhow::Result<Reply> {
        let id = self.take_id();
        self.exchange(id, &Request { id, command }).await
    }

    /// Sends one admin operation (an admin port) and returns the node's reply.
    pub async fn admin(&mut self, op: AdminOp) -> anyhow::Result<Reply> {
        let id = self.take_id();
        self.exchange(id, &AdminRequest { id, op }).await
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Writes `request` as one line and reads lines until the reply to `id`.
    async fn exchange(&mut self, id: u64, request: &impl Serialize) -> anyhow::Result<Reply> {
        let mut bytes = serde_json::to_vec(request).context("encoding the request")?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await?;
        loop {
            self.line.clear();
            if self.reader.read_line(&mut self.line).await? == 0 {
                bail!("connection closed before the reply to request {id}");
            }
            let reply: Reply = serde_json::from_str(&self.line)
                .with_context(|| format!("malformed reply line {:?}", self.line.trim_end()))?;
            if reply.id == Some(id) {
                return Ok(reply);
            }
        }
    }
}

/// One admin request on a fresh connection, within `timeout`: the value of the node's
/// ok reply as the type `op` answers with (`Status` for `status`, ...), or an error that
/// says which node refused, or which field of its answer did not fit.
pub async fn admin<R: DeserializeOwned>(
    addr: &str,
    op: AdminOp,
    timeout: Duration,
) -> anyhow::Result<R> {
    let name = op.name();
    let reply = tokio::time::timeout(timeout, async {
        let mut c = LineClient::connect(addr).await?;
        c.admin(op).await
    })
    .await
    .map_err(|_| anyhow!("admin request `{name}` to {addr} timed out after {timeout:?}"))?
    .with_context(|| format!("admin request `{name}` to {addr}"))?;
    reply
        .into_value()
        .with_context(|| format!("admin request `{name}` to {addr}"))
}

/// Polls the admin ports until one node reports itself leader; returns its index in
/// `admin_addrs`.
pub async fn wait_for_leader(admin_addrs: &[String], timeout: Duration) -> anyhow::Result<usize> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        for (i, addr) in admin_addrs.iter().enumerate() {
            let status = admin::<Status>(addr, AdminOp::Status, Duration::from_secs(5)).await;
            if status.is_ok_and(|s| s.role == Role::Leader) {
                return Ok(i);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::protocol::ClockSkew;
    use serde_json::{json, Value};
    use tokio::net::TcpListener;

    /// An admin port on loopback that answers its first request line with `value` as an
    /// ok reply (or with `error` as a refusal), echoing the request's id; returns its
    /// address and the request line it got.
    async fn fake_admin(
        answer: Result<Value, &'static str>,
    ) -> (String, tokio::task::JoinHandle<Value>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.expect("accept");
            let (r, mut w) = stream.into_split();
            let mut line = String::new();
            BufReader::new(r).read_line(&mut line).await.expect("read");
            let request: Value = serde_json::from_str(&line).expect("request json");
            let reply = match answer {
                Ok(value) => json!({"id": request["id"], "ok": true, "value": value}),
                Err(error) => json!({"id": request["id"], "ok": false, "error": error,
                                     "definite": true, "message": "said no"}),
            };
            let mut out = serde_json::to_vec(&reply).expect("reply json");
            out.push(b'\n');
            w.write_all(&out).await.expect("write");
            request
        });
        (addr, task)
    }

    #[tokio::test]
    async fn admin_sends_the_documented_line_and_decodes_the_typed_value() {
        let (addr, node) = fake_admin(Ok(json!({"offset_ms": 5, "rate": 2.0}))).await;
        let op = AdminOp::Clock {
            offset_ms: 5,
            rate: 2.0,
        };
        let skew: ClockSkew = admin(&addr, op, Duration::from_secs(5))
            .await
            .expect("a skew");
        assert_eq!(
            skew,
            ClockSkew {
                offset_ms: 5,
                rate: 2.0
            }
        );
        let sent = node.await.expect("fake node");
        assert_eq!(
            sent,
            json!({"id": 1, "op": "clock", "offset_ms": 5, "rate": 2.0})
        );
        // A digest without `at` leaves it out, as the protocol documents.
        let (addr, node) = fake_admin(Err("bad-request")).await;
        let _ = admin::<Value>(&addr, AdminOp::Digest { at: None }, Duration::from_secs(5)).await;
        assert_eq!(
            node.await.expect("fake node"),
            json!({"id": 1, "op": "digest"})
        );
    }

    #[tokio::test]
    async fn admin_errors_name_the_node_the_op_and_what_was_wrong() {
        let (addr, _node) = fake_admin(Ok(json!({"id": 1, "role": "boss"}))).await;
        let err = admin::<Status>(&addr, AdminOp::Status, Duration::from_secs(5))
            .await
            .expect_err("not a status");
        let text = format!("{err:#}");
        assert!(
            text.contains(&format!("`status` to {addr}"))
                && text.contains("role")
                && text.contains("boss"),
            "{text}"
        );
        let (addr, _node) = fake_admin(Err("bad-request")).await;
        let err = admin::<Status>(&addr, AdminOp::LogTerms, Duration::from_secs(5))
            .await
            .expect_err("refused");
        assert!(
            format!("{err:#}").ends_with("the node answered bad-request: said no"),
            "{err:#}"
        );
    }
}
