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
//! Started with a [`FrameClassifier`] ([`ProxyNet::start_with_frames`]), the proxy also
//! understands the peer protocol's framing (`[u32 big-endian length][payload]`) and can
//! drop or hold single messages by kind ([`ProxyNet::set_message_rules`], see
//! [`super::messages`]).
//!
//! Listeners and connections are tokio tasks in a `JoinSet`: `teardown` aborts and awaits
//! them, and dropping the `ProxyNet` aborts them too, so no task or port outlives it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use super::messages::{split_frames, FrameAction, FrameClassifier, LinkRule, MessageRules};
use super::NetBackend;
use crate::error::NemesisError;
use crate::grudge::{Grudge, NodeName};

/// Largest frame the framing proxy passes (as the bundled node's transport).
const MAX_FRAME: usize = 256 << 20;

/// What one directed link's connections share.
#[derive(Debug)]
struct LinkShared {
    /// The receiver's real peer address.
    target: SocketAddr,
    /// `true` while the link is cut; every connection task of the link watches it.
    cut: watch::Sender<bool>,
    /// Message rules (used only with a classifier).
    rule: watch::Sender<LinkRule>,
    /// Held frames, in arrival order, with their kinds.
    held: Mutex<Vec<(Option<String>, Vec<u8>)>>,
    /// The first frame of the sender's latest connection (its greeting), replayed when
    /// the proxy has to deliver released frames on a connection of its own.
    greeting: Mutex<Option<Vec<u8>>>,
    /// Connections that have passed their greeting and can deliver frames.
    live: AtomicUsize,
    /// Frames released one by one ([`ProxyNet::release_held`]) for a live connection to
    /// deliver; `kick` wakes the connections.
    forced: Mutex<Vec<u8>>,
    kick: watch::Sender<u64>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl LinkShared {
    /// Takes the held frames the rule no longer holds: those it forwards, concatenated
    /// (those it now drops are discarded).
    fn take_released(&self, rule: &LinkRule) -> Vec<u8> {
        let mut held = lock(&self.held);
        if held.is_empty() {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for (kind, frame) in held.drain(..) {
            match rule.action(kind.as_deref()) {
                FrameAction::Hold => keep.push((kind, frame)),
                FrameAction::Drop => {}
                FrameAction::Forward => out.extend_from_slice(&frame),
            }
        }
        *held = keep;
        out
    }
}

/// One directed link's proxy.
#[derive(Debug)]
struct Link {
    /// Where the sender dials (the proxy's listener).
    listen: SocketAddr,
    shared: Arc<LinkShared>,
}

/// A userspace TCP proxy per directed link, on loopback.
#[derive(Debug)]
pub struct ProxyNet {
    /// Each node's real peer address (what the proxies forward to).
    real: BTreeMap<NodeName, SocketAddr>,
    /// (from, to) → the proxy for the link carrying `from`'s messages to `to`.
    links: BTreeMap<(NodeName, NodeName), Link>,
    /// Names each frame's kind; `None` makes the proxy a plain byte forwarder.
    classify: Option<FrameClassifier>,
    /// Every listener task (each owns its connection tasks) and delivery task; aborted on
    /// teardown or drop.
    tasks: Mutex<JoinSet<()>>,
}

impl ProxyNet {
    /// Binds a proxy for every directed link between the given nodes and starts
    /// forwarding. `real` maps each node to its real peer address, which must be on
    /// loopback. Call it before starting the nodes; they dial [`NetBackend::peer_addr`].
    pub async fn start(real: BTreeMap<NodeName, SocketAddr>) -> Result<Self, NemesisError> {
        Self::start_inner(real, None).await
    }

    /// As [`ProxyNet::start`], for a peer protocol framed as `[u32 big-endian
    /// length][payload]` whose payloads `classify` names: message rules become possible.
    pub async fn start_with_frames(
        real: BTreeMap<NodeName, SocketAddr>,
        classify: FrameClassifier,
    ) -> Result<Self, NemesisError> {
        Self::start_inner(real, Some(classify)).await
    }

    async fn start_inner(
        real: BTreeMap<NodeName, SocketAddr>,
        classify: Option<FrameClassifier>,
    ) -> Result<Self, NemesisError> {
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
                let bind_error = |source| NemesisError::ProxyBind {
                    from: from.clone(),
                    to: to.clone(),
                    source,
                };
                let listener = TcpListener::bind("127.0.0.1:0").await.map_err(bind_error)?;
                let listen = listener.local_addr().map_err(bind_error)?;
                let shared = Arc::new(LinkShared {
                    target: *target,
                    cut: watch::channel(false).0,
                    rule: watch::channel(LinkRule::default()).0,
                    held: Mutex::new(Vec::new()),
                    greeting: Mutex::new(None),
                    live: AtomicUsize::new(0),
                    forced: Mutex::new(Vec::new()),
                    kick: watch::channel(0).0,
                });
                tasks.spawn(serve_link(listener, shared.clone(), classify));
                links.insert((from.clone(), to.clone()), Link { listen, shared });
            }
        }
        Ok(ProxyNet {
            real,
            links,
            classify,
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
            .is_some_and(|link| *link.shared.cut.borrow())
    }

    /// Frames held on the link from→to right now.
    pub fn held(&self, from: &str, to: &str) -> usize {
        self.links
            .get(&(from.to_string(), to.to_string()))
            .map_or(0, |link| lock(&link.shared.held).len())
    }

    /// Replaces the message rules of every link (links `rules` does not name forward
    /// everything again). Held frames whose kind is no longer held are delivered, or
    /// discarded when their kind is now dropped. Needs a classifier.
    pub fn set_message_rules(&self, rules: &MessageRules) -> Result<(), NemesisError> {
        if self.classify.is_none() {
            return Err(NemesisError::Unsupported {
                what: "dropping or holding single messages",
                backend: "the proxy without a frame classifier",
            });
        }
        for node in rules.nodes() {
            self.real_addr(node)?;
        }
        for ((from, to), link) in &self.links {
            let rule = rules.rule(from, to);
            link.shared.rule.send_if_modified(|current| {
                let changed = *current != rule;
                *current = rule.clone();
                changed
            });
            // A live connection delivers released frames itself (it watches the rule);
            // without one, the proxy opens its own with the sender's greeting.
            if link.shared.live.load(Ordering::SeqCst) == 0 {
                let greeting = lock(&link.shared.greeting).clone();
                if let Some(greeting) = greeting {
                    let released = link.shared.take_released(&rule);
                    if !released.is_empty() {
                        let target = link.shared.target;
                        lock(&self.tasks).spawn(deliver(target, greeting, released));
                    }
                }
            }
        }
        Ok(())
    }

    /// Delivers the first `count` frames held on the link from→to, whatever their kind,
    /// and keeps holding the rest; returns how many it released.
    pub fn release_held(&self, from: &str, to: &str, count: usize) -> Result<usize, NemesisError> {
        self.real_addr(from)?;
        self.real_addr(to)?;
        let Some(link) = self.links.get(&(from.to_string(), to.to_string())) else {
            return Ok(0);
        };
        let shared = &link.shared;
        let (released, frames): (usize, Vec<u8>) = {
            let mut held = lock(&shared.held);
            let n = count.min(held.len());
            (n, held.drain(..n).flat_map(|(_, frame)| frame).collect())
        };
        if released == 0 {
            return Ok(0);
        }
        if shared.live.load(Ordering::SeqCst) > 0 {
            lock(&shared.forced).extend_from_slice(&frames);
            shared.kick.send_modify(|k| *k += 1);
        } else if let Some(greeting) = lock(&shared.greeting).clone() {
            lock(&self.tasks).spawn(deliver(shared.target, greeting, frames));
        }
        Ok(released)
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
            link.shared.cut.send_if_modified(|current| {
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

    /// Restores every link: no cut, no message rule; held messages are lost.
    async fn heal(&self) -> Result<(), NemesisError> {
        self.set_cuts(|_, _| false);
        for link in self.links.values() {
            lock(&link.shared.held).clear();
            link.shared.rule.send_if_modified(|current| {
                let changed = !current.is_empty();
                *current = LinkRule::default();
                changed
            });
        }
        Ok(())
    }

    async fn set_message_rules(&self, rules: &MessageRules) -> Result<(), NemesisError> {
        ProxyNet::set_message_rules(self, rules)
    }

    async fn release_held(
        &self,
        from: &str,
        to: &str,
        count: usize,
    ) -> Result<usize, NemesisError> {
        ProxyNet::release_held(self, from, to, count)
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
async fn serve_link(
    listener: TcpListener,
    link: Arc<LinkShared>,
    classify: Option<FrameClassifier>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((inbound, _)) => match classify {
                    Some(classify) => {
                        connections.spawn(forward_frames(inbound, link.clone(), classify));
                    }
                    None => {
                        connections.spawn(forward(inbound, link.target, link.cut.subscribe()));
                    }
                },
                Err(error) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(target = %link.target, %error, "proxy accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Reap finished connection tasks so the set does not grow without bound.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Connects to the link's target unless the link is cut (then waits for the heal and
/// gives up). `None`: cut, or the target is down.
async fn connect_unless_cut(
    inbound: &TcpStream,
    target: SocketAddr,
    cut: &mut watch::Receiver<bool>,
) -> Option<TcpStream> {
    if *cut.borrow_and_update() {
        // Accepted during a cut: swallow nothing, forward nothing, like a dropped SYN's
        // connection that never really gets anywhere. (An Err means teardown.)
        let _ = cut.wait_for(|is_cut| !*is_cut).await;
        return None;
    }
    let connected = tokio::select! {
        connected = TcpStream::connect(target) => connected,
        _ = cut.wait_for(|is_cut| *is_cut) => return None,
    };
    // The target is down (killed node): returning closes the inbound side, which tells
    // the sender as a refused connection would.
    let outbound = connected.ok()?;
    // Raft messages are small and latency matters more than batching.
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    Some(outbound)
}

/// Forwards one connection until it ends or the link is cut; while the link is cut it
/// holds the connection unread, and closes it on heal.
async fn forward(mut inbound: TcpStream, target: SocketAddr, mut cut: watch::Receiver<bool>) {
    let Some(mut outbound) = connect_unless_cut(&inbound, target, &mut cut).await else {
        return;
    };
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        // Cut: returning drops (closes) both sockets and loses whatever was in flight.
        _ = cut.wait_for(|is_cut| *is_cut) => {}
    }
}

/// Counts a connection as live while it exists.
struct LiveGuard<'a>(&'a AtomicUsize);

impl Drop for LiveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// As [`forward`], frame by frame in the sender's direction, applying the link's
/// message rules; the first frame (the sender's greeting) always passes.
async fn forward_frames(inbound: TcpStream, link: Arc<LinkShared>, classify: FrameClassifier) {
    let mut cut = link.cut.subscribe();
    let Some(outbound) = connect_unless_cut(&inbound, link.target, &mut cut).await else {
        return;
    };
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let mut rule_rx = link.rule.subscribe();
    let mut kick_rx = link.kick.subscribe();
    let mut pending = Vec::with_capacity(64 << 10);
    let mut chunk = vec![0u8; 64 << 10];
    let mut back = vec![0u8; 4 << 10];
    let mut live: Option<LiveGuard<'_>> = None;
    loop {
        let mut out = Vec::new();
        tokio::select! {
            read = in_read.read(&mut chunk) => {
                let n = match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&chunk[..n]);
                let Ok(frames) = split_frames(&mut pending, MAX_FRAME) else {
                    return;
                };
                let rule = rule_rx.borrow_and_update().clone();
                for frame in frames {
                    if live.is_none() {
                        *lock(&link.greeting) = Some(frame.clone());
                        out.extend_from_slice(&frame);
                        link.live.fetch_add(1, Ordering::SeqCst);
                        live = Some(LiveGuard(&link.live));
                        continue;
                    }
                    let kind = if rule.is_empty() { None } else { classify(&frame[4..]) };
                    match rule.action(kind.as_deref()) {
                        FrameAction::Forward => out.extend_from_slice(&frame),
                        FrameAction::Drop => {}
                        FrameAction::Hold => lock(&link.held).push((kind, frame)),
                    }
                }
            }
            changed = rule_rx.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            kicked = kick_rx.changed() => {
                if kicked.is_err() {
                    return;
                }
            }
            // The receiver never writes on a peer link; pass anything through anyway.
            read = out_read.read(&mut back) => match read {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if in_write.write_all(&back[..n]).await.is_err() {
                        return;
                    }
                }
            },
            // Cut: returning drops (closes) both sockets and loses whatever was in flight.
            // (The guard `wait_for` returns is not Send: drop it inside the branch.)
            () = async { let _ = cut.wait_for(|is_cut| *is_cut).await; } => return,
        }
        if live.is_some() {
            out.extend(std::mem::take(&mut *lock(&link.forced)));
            let rule = rule_rx.borrow_and_update().clone();
            out.extend(link.take_released(&rule));
        }
        if !out.is_empty() && out_write.write_all(&out).await.is_err() {
            return;
        }
    }
}

/// Delivers released frames on a connection of the proxy's own, after the sender's
/// greeting, then closes it: the receiver reads to the end and handles every frame.
async fn deliver(target: SocketAddr, greeting: Vec<u8>, frames: Vec<u8>) {
    let Ok(Ok(mut stream)) =
        tokio::time::timeout(Duration::from_secs(2), TcpStream::connect(target)).await
    else {
        tracing::debug!(%target, "could not deliver released messages: target down");
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut bytes = greeting;
    bytes.extend_from_slice(&frames);
    if stream.write_all(&bytes).await.is_ok() {
        let _ = stream.shutdown().await;
        // Give the receiver time to read before the socket is dropped.
        let mut sink = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut sink)).await;
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

    /// A receiver that collects the payloads of every frame it is sent, per connection.
    async fn frame_sink() -> (
        SocketAddr,
        Arc<Mutex<Vec<String>>>,
        tokio::task::JoinHandle<()>,
    ) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let task = tokio::spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut stream, _)) = listener.accept().await {
                let sink = sink.clone();
                connections.spawn(async move {
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 4096];
                    while let Ok(n) = stream.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        pending.extend_from_slice(&buf[..n]);
                        for frame in split_frames(&mut pending, 1 << 20).unwrap() {
                            let text = String::from_utf8(frame[4..].to_vec()).unwrap();
                            lock(&sink).push(text);
                        }
                    }
                });
            }
        });
        (addr, got, task)
    }

    fn framed(payload: &str) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(payload.as_bytes());
        f
    }

    /// The kind is the payload up to its first colon ("hello" has none).
    fn kind_before_colon(payload: &[u8]) -> Option<String> {
        let text = std::str::from_utf8(payload).ok()?;
        text.split_once(':').map(|(kind, _)| kind.to_string())
    }

    async fn eventually(what: &str, check: impl Fn() -> bool) {
        for _ in 0..200 {
            if check() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    #[tokio::test]
    async fn message_rules_drop_and_hold_by_kind_and_release_even_after_the_sender_left() {
        let (n2_addr, got, n2_task) = frame_sink().await;
        let real = BTreeMap::from([
            ("n1".to_string(), "127.0.0.1:9".parse().unwrap()),
            ("n2".to_string(), n2_addr),
        ]);
        let net = ProxyNet::start_with_frames(real, kind_before_colon)
            .await
            .unwrap();
        let mut rules = MessageRules::new();
        rules
            .drop("n1", "n2", &["append"])
            .hold("n1", "n2", &["vote"]);
        net.set_message_rules(&rules).unwrap();

        let mut sender = connect(net.peer_addr("n1", "n2").unwrap()).await;
        for payload in [
            "hello", "append:1", "vote:2", "other:3", "append:4", "vote:5",
        ] {
            sender.write_all(&framed(payload)).await.unwrap();
        }
        eventually("the forwarded frames", || lock(&got).len() == 2).await;
        assert_eq!(*lock(&got), vec!["hello", "other:3"]);
        assert_eq!(net.held("n1", "n2"), 2);

        // The sender's connection goes away; releasing the votes delivers them on the
        // proxy's own connection, after the sender's greeting.
        drop(sender);
        eventually("the connection to close", || {
            net.links[&("n1".to_string(), "n2".to_string())]
                .shared
                .live
                .load(Ordering::SeqCst)
                == 0
        })
        .await;
        net.set_message_rules(&MessageRules::new()).unwrap();
        eventually("the released frames", || lock(&got).len() == 5).await;
        assert_eq!(
            *lock(&got),
            vec!["hello", "other:3", "hello", "vote:2", "vote:5"]
        );
        assert_eq!(net.held("n1", "n2"), 0);

        // One held frame at a time, on the live connection, whatever the rules say.
        let mut sender = connect(net.peer_addr("n1", "n2").unwrap()).await;
        net.set_message_rules(&rules).unwrap();
        sender.write_all(&framed("hello")).await.unwrap();
        sender.write_all(&framed("vote:6")).await.unwrap();
        sender.write_all(&framed("vote:7")).await.unwrap();
        eventually("the held votes", || net.held("n1", "n2") == 2).await;
        assert_eq!(net.release_held("n1", "n2", 1).unwrap(), 1);
        eventually("one released vote", || lock(&got).len() == 7).await;
        assert_eq!(lock(&got)[5..], ["hello", "vote:6"]);
        assert_eq!(net.held("n1", "n2"), 1);

        // Healing drops held frames; a plain proxy refuses message rules.
        net.heal().await.unwrap();
        assert_eq!(net.held("n1", "n2"), 0);
        let plain = ProxyNet::start(BTreeMap::from([("n1".to_string(), n2_addr)]))
            .await
            .unwrap();
        assert!(matches!(
            plain.set_message_rules(&rules),
            Err(NemesisError::Unsupported { .. })
        ));
        net.teardown().await.unwrap();
        n2_task.abort();
    }
}
