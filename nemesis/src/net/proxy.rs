//! `ProxyNet`: partitions without root, by a TCP proxy on every directed link.
//!
//! For each ordered pair of nodes (from, to) a listener on `127.0.0.1:<ephemeral>`
//! forwards to `to`'s real peer address; node `from` is told to dial that listener
//! instead of `to`. Because the bundled node sends its messages to a peer over its *own*
//! outgoing connection, the link from→to carries exactly `from`'s messages to `to`, and a
//! directed grudge maps onto links one to one: the link is cut when `to` drops `from`.
//!
//! A cut link loses traffic the way an iptables DROP does, as far as the nodes can tell:
//! its open connections are closed (whatever was queued in them is gone), and new
//! connections are accepted but then held without reading or forwarding a byte — the
//! sender's writes vanish into a buffer until it gives up. On heal the held connections
//! are closed, so senders reconnect and get a fresh, forwarding connection.
//!
//! Listeners and connections are tokio tasks in a `JoinSet`: `teardown` aborts and awaits
//! them, and dropping the `ProxyNet` aborts them too, so no task or port outlives it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::NetBackend;
use crate::error::NemesisError;
use crate::grudge::{Grudge, NodeName};

/// One directed link's proxy.
#[derive(Debug)]
struct Link {
    /// Where the sender dials (the proxy's listener).
    listen: SocketAddr,
    /// `true` while the link is cut; every connection task of the link watches it.
    cut: watch::Sender<bool>,
}

/// A userspace TCP proxy per directed link, on loopback.
#[derive(Debug)]
pub struct ProxyNet {
    /// Each node's real peer address (what the proxies forward to).
    real: BTreeMap<NodeName, SocketAddr>,
    /// (from, to) → the proxy for the link carrying `from`'s messages to `to`.
    links: BTreeMap<(NodeName, NodeName), Link>,
    /// Every listener task (each owns its connection tasks); aborted on teardown or drop.
    tasks: Mutex<JoinSet<()>>,
}

impl ProxyNet {
    /// Binds a proxy for every directed link between the given nodes and starts
    /// forwarding. `real` maps each node to its real peer address, which must be on
    /// loopback. Call it before starting the nodes; they dial [`NetBackend::peer_addr`].
    pub async fn start(real: BTreeMap<NodeName, SocketAddr>) -> Result<Self, NemesisError> {
        if let Some((node, addr)) = real.iter().find(|(_, addr)| !addr.ip().is_loopback()) {
            return Err(NemesisError::NonLoopbackTarget {
                node: node.clone(),
                addr: *addr,
            });
        }
        let mut links = BTreeMap::new();
        let mut tasks = JoinSet::new();
        for from in real.keys() {
            for (to, target) in &real {
                if from == to {
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|source| {
                    NemesisError::ProxyBind {
                        from: from.clone(),
                        to: to.clone(),
                        source,
                    }
                })?;
                let listen = listener
                    .local_addr()
                    .map_err(|source| NemesisError::ProxyBind {
                        from: from.clone(),
                        to: to.clone(),
                        source,
                    })?;
                let (cut, cut_rx) = watch::channel(false);
                tasks.spawn(serve_link(listener, *target, cut_rx));
                links.insert((from.clone(), to.clone()), Link { listen, cut });
            }
        }
        Ok(ProxyNet {
            real,
            links,
            tasks: Mutex::new(tasks),
        })
    }

    /// The real peer address of `node` (what its proxies forward to).
    pub fn real_addr(&self, node: &str) -> Result<SocketAddr, NemesisError> {
        self.real
            .get(node)
            .copied()
            .ok_or_else(|| self.unknown(node))
    }

    /// Is the link from→to cut right now?
    pub fn is_cut(&self, from: &str, to: &str) -> bool {
        self.links
            .get(&(from.to_string(), to.to_string()))
            .is_some_and(|link| *link.cut.borrow())
    }

    fn unknown(&self, node: &str) -> NemesisError {
        NemesisError::UnknownNode {
            node: node.to_string(),
            known: self.real.keys().cloned().collect::<Vec<_>>().join(", "),
        }
    }

    fn set_cuts(&self, cut: impl Fn(&str, &str) -> bool) {
        for ((from, to), link) in &self.links {
            let wanted = cut(from, to);
            // Only wake the link's connections when its state really changes.
            link.cut.send_if_modified(|current| {
                let changed = *current != wanted;
                *current = wanted;
                changed
            });
        }
    }
}

impl NetBackend for ProxyNet {
    fn peer_addr(&self, from: &str, to: &str) -> Result<SocketAddr, NemesisError> {
        if from == to {
            return self.real_addr(to);
        }
        self.real_addr(from)?;
        self.links
            .get(&(from.to_string(), to.to_string()))
            .map(|link| link.listen)
            .ok_or_else(|| self.unknown(to))
    }

    async fn partition(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        for (node, dropped) in grudge.entries() {
            for name in std::iter::once(node).chain(dropped) {
                self.real_addr(name)?;
            }
        }
        self.set_cuts(|from, to| grudge.blocked(from, to));
        Ok(())
    }

    async fn heal(&self) -> Result<(), NemesisError> {
        self.set_cuts(|_, _| false);
        Ok(())
    }

    async fn teardown(&self) -> Result<(), NemesisError> {
        let mut tasks = match self.tasks.lock() {
            Ok(mut guard) => std::mem::take(&mut *guard),
            // A poisoned lock still holds the JoinSet; tearing down must not give up.
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        tasks.shutdown().await;
        Ok(())
    }
}

/// Accepts connections on one link's listener, each handled by its own task; returns
/// only when aborted (teardown or drop), which also aborts every connection task.
async fn serve_link(listener: TcpListener, target: SocketAddr, cut: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) => {
                    connections.spawn(forward(inbound, target, cut.clone()));
                }
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(%target, %error, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Forwards one connection until it ends or the link is cut; while the link is cut it
/// holds the connection unread, and closes it on heal.
async fn forward(mut inbound: TcpStream, target: SocketAddr, mut cut: watch::Receiver<bool>) {
    if *cut.borrow_and_update() {
        // Accepted during a cut: swallow nothing, forward nothing, like a dropped SYN's
        // connection that never really gets anywhere. (An Err means teardown.)
        let _ = cut.wait_for(|is_cut| !*is_cut).await;
        return;
    }
    let connected = tokio::select! {
        connected = TcpStream::connect(target) => connected,
        _ = cut.wait_for(|is_cut| *is_cut) => return,
    };
    let mut outbound = match connected {
        Ok(outbound) => outbound,
        // The target is down (killed node): closing the inbound side tells the sender,
        // as a refused connection would.
        Err(_) => return,
    };
    // Raft messages are small and latency matters more than batching.
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        // Cut: returning drops (closes) both sockets and loses whatever was in flight.
        _ = cut.wait_for(|is_cut| *is_cut) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::timeout;

    /// An echo server on loopback that counts the bytes it receives.
    async fn echo_server() -> (SocketAddr, Arc<AtomicUsize>, tokio::task::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(AtomicUsize::new(0));
        let counter = received.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let counter = counter.clone();
                connections.spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        counter.fetch_add(n, Ordering::SeqCst);
                        if stream.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (addr, received, task)
    }

    /// Writes `message` and reads the echo; `None` if nothing came back in time or the
    /// connection closed.
    async fn round_trip(stream: &mut TcpStream, message: &[u8]) -> Option<Vec<u8>> {
        stream.write_all(message).await.ok()?;
        let mut buf = vec![0u8; message.len()];
        match timeout(Duration::from_millis(300), stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => Some(buf),
            _ => None,
        }
    }

    async fn connect(addr: SocketAddr) -> TcpStream {
        timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap()
    }

    /// Waits until the peer closes the connection (read returns 0 or an error).
    async fn closed(stream: &mut TcpStream) -> bool {
        let mut buf = [0u8; 64];
        loop {
            match timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue,
                Err(_) => return false,
            }
        }
    }

    #[tokio::test]
    async fn cut_blocks_only_the_grudged_link_heal_restores_teardown_closes_ports() {
        let (n1_addr, _, n1_task) = echo_server().await;
        let (n2_addr, n2_received, n2_task) = echo_server().await;
        let real = BTreeMap::from([("n1".to_string(), n1_addr), ("n2".to_string(), n2_addr)]);
        let net = ProxyNet::start(real).await.unwrap();
        let to_n2 = net.peer_addr("n1", "n2").unwrap();
        let to_n1 = net.peer_addr("n2", "n1").unwrap();
        assert!(to_n2.ip().is_loopback() && to_n2 != n2_addr && to_n1 != to_n2);

        // Healthy: data passes.
        let mut before = connect(to_n2).await;
        assert_eq!(
            round_trip(&mut before, b"ping").await.as_deref(),
            Some(&b"ping"[..])
        );

        // n2 drops n1: the link n1→n2 is cut, n2→n1 is not.
        let grudge = Grudge::from_entries([("n2".to_string(), vec!["n1".to_string()])]);
        net.partition(&grudge).await.unwrap();
        assert!(net.is_cut("n1", "n2") && !net.is_cut("n2", "n1"));
        assert!(
            closed(&mut before).await,
            "open connection survived the cut"
        );
        let received_at_cut = n2_received.load(Ordering::SeqCst);
        let mut during = connect(to_n2).await;
        assert_eq!(round_trip(&mut during, b"lost").await, None);
        assert_eq!(n2_received.load(Ordering::SeqCst), received_at_cut);
        let mut other_way = connect(to_n1).await;
        assert!(round_trip(&mut other_way, b"fine").await.is_some());

        // Healed: the held connection is closed, a new one passes.
        net.heal().await.unwrap();
        assert!(
            closed(&mut during).await,
            "held connection not closed on heal"
        );
        let mut after = connect(to_n2).await;
        assert_eq!(
            round_trip(&mut after, b"back").await.as_deref(),
            Some(&b"back"[..])
        );
        assert_eq!(n2_received.load(Ordering::SeqCst), received_at_cut + 4);

        // Torn down: the proxy ports no longer accept, and teardown is idempotent.
        net.teardown().await.unwrap();
        net.teardown().await.unwrap();
        assert!(TcpStream::connect(to_n2).await.is_err());
        assert!(TcpStream::connect(to_n1).await.is_err());
        n1_task.abort();
        n2_task.abort();
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_ports() {
        let (addr, _, task) = echo_server().await;
        let real = BTreeMap::from([("a".to_string(), addr), ("b".to_string(), addr)]);
        let net = ProxyNet::start(real).await.unwrap();
        let link = net.peer_addr("a", "b").unwrap();
        drop(net);
        // Aborted tasks are dropped by the runtime shortly after; poll until closed.
        let mut refused = false;
        for _ in 0..100 {
            if TcpStream::connect(link).await.is_err() {
                refused = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(refused, "listener outlived the ProxyNet");
        task.abort();
    }

    #[tokio::test]
    async fn unknown_nodes_and_non_loopback_targets_are_errors() {
        let (addr, _, task) = echo_server().await;
        let real = BTreeMap::from([("a".to_string(), addr), ("b".to_string(), addr)]);
        let net = ProxyNet::start(real).await.unwrap();
        assert!(matches!(
            net.peer_addr("a", "z"),
            Err(NemesisError::UnknownNode { .. })
        ));
        let grudge = Grudge::from_entries([("a".to_string(), vec!["z".to_string()])]);
        assert!(net.partition(&grudge).await.is_err());
        net.teardown().await.unwrap();

        let outside: SocketAddr = "192.0.2.1:7000".parse().unwrap();
        let real = BTreeMap::from([("a".to_string(), outside)]);
        assert!(matches!(
            ProxyNet::start(real).await,
            Err(NemesisError::NonLoopbackTarget { .. })
        ));
        task.abort();
    }
}
