//! An in-process test cluster: real nodes (real TCP on ephemeral loopback ports, real
//! fsync in a temporary directory) as tokio tasks of the test, each with a clock the
//! test can skew directly and a stop signal of its own.

use super::*;
use crate::node::launch::admin;
use crate::node::protocol::{AdminOp, Role, Status};
use crate::node::wal::tests::TempDir;
use std::time::Duration;
use tokio::sync::oneshot;

/// An in-process cluster on ephemeral loopback ports.
pub(crate) struct TestCluster {
    _dir: TempDir,
    /// Each node's client address.
    pub client: Vec<String>,
    /// Each node's admin address.
    pub admin: Vec<String>,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Each node's clock, shared with it (clock faults without the admin API).
    pub clocks: Vec<Clock>,
}

impl TestCluster {
    pub async fn start(n: u64, read_mode: ReadMode) -> TestCluster {
        let dir = TempDir::new("cluster");
        let mut listeners = Vec::new();
        for _ in 0..n {
            listeners.push(
                Listeners::bind("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0")
                    .await
                    .expect("bind"),
            );
        }
        let addrs: Vec<_> = listeners
            .iter()
            .map(|l| l.addrs().expect("addrs"))
            .collect();
        let client_addrs: BTreeMap<u64, String> = addrs
            .iter()
            .enumerate()
            .map(|(i, a)| (i as u64 + 1, a.1.to_string()))
            .collect();
        let mut cluster = TestCluster {
            client: addrs.iter().map(|a| a.1.to_string()).collect(),
            admin: addrs.iter().map(|a| a.2.to_string()).collect(),
            stops: Vec::new(),
            tasks: Vec::new(),
            clocks: Vec::new(),
            _dir: dir,
        };
        for (i, l) in listeners.into_iter().enumerate() {
            let id = i as u64 + 1;
            let cfg = NodeConfig {
                id,
                name: format!("n{id}"),
                peers: addrs
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(j, a)| (j as u64 + 1, a.0.to_string()))
                    .collect(),
                client_addrs: client_addrs.clone(),
                data_dir: cluster._dir.0.join(format!("n{id}")),
                read_mode,
                bugs: BugSet::default(),
                tick_ms: 10,
                snapshot_every: 20,
                request_timeout_ms: 3000,
                seed: 42 + id,
            };
            let (tx, rx) = oneshot::channel::<()>();
            cluster.stops.push(tx);
            let clock = Clock::new();
            cluster.clocks.push(clock.clone());
            cluster
                .tasks
                .push(tokio::spawn(run(cfg, l, clock, async move {
                    let _ = rx.await;
                })));
        }
        cluster
    }

    pub async fn leader(&self) -> usize {
        crate::node::launch::wait_for_leader(&self.admin, Duration::from_secs(10))
            .await
            .expect("a leader")
    }

    /// Stops one node (its task ends; `stop` later skips it).
    pub fn stop_node(&mut self, i: usize) {
        let (dummy, _) = oneshot::channel();
        let _ = std::mem::replace(&mut self.stops[i], dummy).send(());
    }

    /// Role and term of each running node (`None` where it does not answer).
    pub async fn roles(&self) -> Vec<Option<(Role, u64)>> {
        let mut out = Vec::new();
        for addr in &self.admin {
            let status = admin::<Status>(addr, AdminOp::Status, Duration::from_secs(5)).await;
            out.push(status.ok().map(|s| (s.role, s.term)));
        }
        out
    }

    pub async fn stop(self) {
        for s in self.stops {
            let _ = s.send(());
        }
        for t in self.tasks {
            let r = tokio::time::timeout(Duration::from_secs(5), t)
                .await
                .expect("node stops in time");
            r.expect("node task").expect("node ran without error");
        }
    }
}
