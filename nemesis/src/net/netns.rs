//! `NetnsNet`: real packet loss, with a network namespace per node and iptables.
//!
//! Each node runs in its own network namespace (`sb<4 hex>-n<i>`), joined to a bridge in
//! the root namespace (`sb<4 hex>br`) by a veth pair (`sb<4 hex>h<i>` on the bridge,
//! `sb<4 hex>p<i>` inside the namespace). Addresses come from a private /24 (default
//! 10.77.0.0/24): `.1` on the bridge, so the harness in the root namespace reaches every
//! node, and `.2`, `.3`, ... for the nodes in name order. There is no default route, no
//! NAT and no forwarding to any other interface: nodes can reach each other and the
//! harness, nothing else. The 4-hex prefix is random per run so that runs cannot collide,
//! and every name matches one pattern so that `clean_leftovers` finds (only) ours.
//!
//! A partition is Jepsen's: inside each node's namespace,
//! `iptables -A INPUT -s <peer ip> -j DROP` for every peer the node drops; heal flushes
//! INPUT. Unlike the proxy, existing connections are not closed: their packets are
//! dropped, and TCP retransmits whatever is still queued after the heal, exactly as on a
//! real network. Because TCP needs acknowledgements, a one-way grudge also stalls
//! connections in the other direction once the sender's window fills.
//!
//! Teardown deletes namespaces, veths and the bridge; it is idempotent, best effort, and
//! reports every failure together. Dropping a `NetnsNet` tears it down too.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};

use super::NetBackend;
use crate::error::NemesisError;
use crate::grudge::{Grudge, NodeName};

/// The private /24 used when the caller does not choose one.
pub const DEFAULT_SUBNET: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 0);

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetnsConfig {
    /// Node → the TCP port its peer (Raft) listener binds inside its namespace. Every
    /// node has its own address, so all may use the same port.
    pub peer_ports: BTreeMap<NodeName, u16>,
    /// The network address of a private /24 (last octet 0), used only on our bridge.
    pub subnet: Ipv4Addr,
}

impl NetnsConfig {
    /// The given nodes, all with the same peer port, on [`DEFAULT_SUBNET`].
    pub fn new(nodes: &[NodeName], peer_port: u16) -> Self {
        NetnsConfig {
            peer_ports: nodes.iter().map(|node| (node.clone(), peer_port)).collect(),
            subnet: DEFAULT_SUBNET,
        }
    }
}

/// One node's namespace and addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NsNode {
    /// The network namespace (`ip netns` name).
    namespace: String,
    /// The veth end attached to the bridge, in the root namespace.
    host_veth: String,
    /// The veth end inside the namespace.
    inner_veth: String,
    /// The node's address on the bridge's subnet.
    ip: Ipv4Addr,
    /// The node's peer port.
    peer_port: u16,
}

/// The names and addresses of one run's network; enough to build or remove it.
#[derive(Debug, Clone)]
struct Layout {
    /// `sb` + 4 hex digits, unique per run.
    prefix: String,
    /// The bridge in the root namespace.
    bridge: String,
    /// The bridge's address (the harness side).
    bridge_ip: Ipv4Addr,
    nodes: BTreeMap<NodeName, NsNode>,
}

/// Network namespaces on a private bridge, partitioned with iptables.
#[derive(Debug)]
pub struct NetnsNet {
    layout: Layout,
    /// Set once teardown has run, so drop does not run it again.
    torn_down: AtomicBool,
}

impl NetnsNet {
    /// Explains exactly what is missing for this backend: root, `ip`, `iptables`.
    pub fn check_prerequisites() -> Result<(), NemesisError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(NemesisError::NotRoot);
        }
        tool_present("ip", &["-V"], "apt-get install -y iproute2")?;
        tool_present("iptables", &["--version"], "apt-get install -y iptables")?;
        Ok(())
    }

    /// Creates the bridge, the namespaces and the veths. Blocking (it runs `ip`); call it
    /// before starting the nodes. On failure, everything created so far is removed.
    pub fn setup(config: &NetnsConfig) -> Result<Self, NemesisError> {
        NetnsNet::check_prerequisites()?;
        check_subnet(config)?;
        warn_if_bridged_traffic_is_filtered();
        let prefix = unused_prefix()?;
        let base = config.subnet.octets();
        let address = |host: usize| Ipv4Addr::new(base[0], base[1], base[2], host as u8);
        let nodes = config
            .peer_ports
            .iter()
            .enumerate()
            .map(|(i, (node, port))| {
                let index = i + 1;
                let ns_node = NsNode {
                    namespace: format!("{prefix}-n{index}"),
                    host_veth: format!("{prefix}h{index}"),
                    inner_veth: format!("{prefix}p{index}"),
                    ip: address(index + 1),
                    peer_port: *port,
                };
                (node.clone(), ns_node)
            })
            .collect();
        let layout = Layout {
            bridge: format!("{prefix}br"),
            bridge_ip: address(1),
            prefix,
            nodes,
        };
        if let Err(error) = layout.create() {
            if let Err(cleanup) = layout.remove() {
                tracing::warn!(%cleanup, "cleaning up after a failed netns setup");
            }
            return Err(error);
        }
        Ok(NetnsNet {
            layout,
            torn_down: AtomicBool::new(false),
        })
    }

    /// The per-run name prefix (`sb` + 4 hex digits).
    pub fn prefix(&self) -> &str {
        &self.layout.prefix
    }

    /// The bridge's address: where the nodes see the harness.
    pub fn bridge_ip(&self) -> Ipv4Addr {
        self.layout.bridge_ip
    }

    /// The node's address (reachable from the root namespace and from the other nodes).
    pub fn node_ip(&self, node: &str) -> Result<Ipv4Addr, NemesisError> {
        Ok(self.node(node)?.ip)
    }

    /// The node's network namespace name.
    pub fn namespace(&self, node: &str) -> Result<&str, NemesisError> {
        Ok(&self.node(node)?.namespace)
    }

    /// `command`, run inside the node's namespace (`ip netns exec NS program args...`).
    /// Program, arguments, environment changes and working directory carry over; set
    /// stdio (and anything else) on the returned command. `ip netns exec` execs the
    /// program, so the spawned pid is the program's own (kill/pause reach it).
    pub fn wrap_command(&self, node: &str, command: &Command) -> Result<Command, NemesisError> {
        let namespace = &self.node(node)?.namespace;
        let mut wrapped = Command::new("ip");
        wrapped
            .args(["netns", "exec", namespace])
            .arg(command.get_program())
            .args(command.get_args());
        for (key, value) in command.get_envs() {
            match value {
                Some(value) => wrapped.env(key, value),
                None => wrapped.env_remove(key),
            };
        }
        if let Some(dir) = command.get_current_dir() {
            wrapped.current_dir(dir);
        }
        Ok(wrapped)
    }

    fn node(&self, node: &str) -> Result<&NsNode, NemesisError> {
        self.layout
            .nodes
            .get(node)
            .ok_or_else(|| NemesisError::UnknownNode {
                node: node.to_string(),
                known: self
                    .layout
                    .nodes
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// Flushes INPUT in every namespace, then adds a DROP rule per grudge entry.
    async fn apply(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        let mut rules: Vec<(String, Option<Ipv4Addr>)> = Vec::new();
        for ns_node in self.layout.nodes.values() {
            rules.push((ns_node.namespace.clone(), None));
        }
        for (node, dropped) in grudge.entries() {
            let namespace = self.node(node)?.namespace.clone();
            for peer in dropped {
                rules.push((namespace.clone(), Some(self.node(peer)?.ip)));
            }
        }
        for (namespace, source) in rules {
            let mut args = vec!["netns", "exec", &namespace, "iptables", "-w"];
            let source = source.map(|ip| ip.to_string());
            match &source {
                None => args.extend(["-F", "INPUT"]),
                Some(ip) => args.extend(["-A", "INPUT", "-s", ip, "-j", "DROP"]),
            }
            run_async("ip", &args).await?;
        }
        Ok(())
    }
}

impl NetBackend for NetnsNet {
    fn peer_addr(&self, from: &str, to: &str) -> Result<SocketAddr, NemesisError> {
        self.node(from)?;
        let target = self.node(to)?;
        Ok(SocketAddr::new(IpAddr::V4(target.ip), target.peer_port))
    }

    async fn partition(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        self.apply(grudge).await
    }

    async fn heal(&self) -> Result<(), NemesisError> {
        self.apply(&Grudge::none()).await
    }

    /// iptables sees packets, not messages: dropping one TCP segment only delays the
    /// stream (TCP retransmits it), so single messages cannot be dropped here. An empty
    /// rule set (nothing to do) is accepted.
    async fn set_message_rules(
        &self,
        rules: &crate::net::messages::MessageRules,
    ) -> Result<(), NemesisError> {
        if rules.is_empty() {
            return Ok(());
        }
        Err(NemesisError::Unsupported {
            what: "dropping or holding single messages",
            backend: "--net netns",
        })
    }

    /// Nothing is ever held here.
    async fn release_held(
        &self,
        _from: &str,
        _to: &str,
        _count: usize,
    ) -> Result<usize, NemesisError> {
        Ok(0)
    }

    async fn teardown(&self) -> Result<(), NemesisError> {
        let layout = self.layout.clone();
        let result = match tokio::task::spawn_blocking(move || layout.remove()).await {
            Ok(result) => result,
            // The blocking task panicked or was cancelled: fall back to doing it here.
            Err(_) => self.layout.remove(),
        };
        // After a failed teardown, drop tries once more.
        if result.is_ok() {
            self.torn_down.store(true, Ordering::SeqCst);
        }
        result
    }
}

impl Drop for NetnsNet {
    fn drop(&mut self) {
        if !self.torn_down.swap(true, Ordering::SeqCst) {
            if let Err(error) = self.layout.remove() {
                tracing::warn!(%error, "tearing down the netns network on drop");
            }
        }
    }
}

impl Layout {
    fn create(&self) -> Result<(), NemesisError> {
        let bridge = self.bridge.as_str();
        let bridge_cidr = format!("{}/24", self.bridge_ip);
        run("ip", &["link", "add", bridge, "type", "bridge"])?;
        run("ip", &["addr", "add", &bridge_cidr, "dev", bridge])?;
        run("ip", &["link", "set", bridge, "up"])?;
        for node in self.nodes.values() {
            let ns = node.namespace.as_str();
            let (host, inner) = (node.host_veth.as_str(), node.inner_veth.as_str());
            let cidr = format!("{}/24", node.ip);
            run("ip", &["netns", "add", ns])?;
            run(
                "ip",
                &[
                    "link", "add", host, "type", "veth", "peer", "name", inner, "netns", ns,
                ],
            )?;
            run("ip", &["link", "set", host, "master", bridge])?;
            run("ip", &["link", "set", host, "up"])?;
            run("ip", &["-n", ns, "addr", "add", &cidr, "dev", inner])?;
            run("ip", &["-n", ns, "link", "set", inner, "up"])?;
            run("ip", &["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Removes whatever of this layout exists; idempotent.
    fn remove(&self) -> Result<(), NemesisError> {
        let ours: BTreeSet<String> = self
            .nodes
            .values()
            .flat_map(|node| [node.namespace.clone(), node.host_veth.clone()])
            .chain([self.bridge.clone()])
            .collect();
        let cleanup = remove_matching(|name| ours.contains(name));
        if cleanup.failed.is_empty() {
            Ok(())
        } else {
            Err(NemesisError::Incomplete {
                what: "netns teardown",
                problems: cleanup.failed,
            })
        }
    }
}

/// What a cleanup removed and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Names removed, namespaces first, then veths, then bridges.
    pub removed: Vec<String>,
    /// One line per failure, with the command's error.
    pub failed: Vec<String>,
}

/// Removes every namespace, veth and bridge that a killed harness left behind (only names
/// of our pattern: `sb<4 hex>-n<i>`, `sb<4 hex>h<i>`, `sb<4 hex>br`). Returns the names
/// removed; see [`clean_leftovers_report`] for the failures too. Do not run it while
/// another splitbrain netns run is live: it would remove that run's network.
pub fn clean_leftovers() -> Vec<String> {
    let cleanup = clean_leftovers_report();
    for failure in &cleanup.failed {
        tracing::warn!(%failure, "cleaning leftovers");
    }
    cleanup.removed
}

/// Like [`clean_leftovers`], with the failures.
pub fn clean_leftovers_report() -> Cleanup {
    remove_matching(is_our_name)
}

/// Is `name` one of the names a `NetnsNet` creates?
pub fn is_our_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("sb") else {
        return false;
    };
    if rest.len() < 5 || !rest.is_char_boundary(4) {
        return false;
    }
    let (hex, suffix) = rest.split_at(4);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && (suffix == "br"
            || suffix.strip_prefix("-n").is_some_and(digits)
            || suffix.strip_prefix('h').is_some_and(digits)
            || suffix.strip_prefix('p').is_some_and(digits))
}

/// Deletes namespaces, then links, whose names satisfy `wanted`.
fn remove_matching(wanted: impl Fn(&str) -> bool) -> Cleanup {
    let mut cleanup = Cleanup::default();
    match list_namespaces() {
        Ok(namespaces) => {
            for ns in namespaces.iter().filter(|ns| wanted(ns)) {
                match run("ip", &["netns", "delete", ns]) {
                    Ok(_) => cleanup.removed.push(ns.clone()),
                    Err(error) => cleanup.failed.push(error.to_string()),
                }
            }
        }
        Err(error) => cleanup.failed.push(error.to_string()),
    }
    // Deleting a namespace destroys its veth end and with it the pair; list links only
    // now, so the host ends already gone are not deleted twice.
    match list_links() {
        Ok(links) => {
            let (bridges, others): (Vec<String>, Vec<String>) = links
                .into_iter()
                .filter(|link| wanted(link))
                .partition(|link| link.ends_with("br"));
            for link in others.iter().chain(&bridges) {
                match run("ip", &["link", "delete", link]) {
                    Ok(_) => cleanup.removed.push(link.clone()),
                    // The kernel destroys a deleted namespace's veth pairs in the
                    // background; one that vanished meanwhile is not a failure.
                    Err(_) if !link_exists(link) => {}
                    Err(error) => cleanup.failed.push(error.to_string()),
                }
            }
        }
        Err(error) => cleanup.failed.push(error.to_string()),
    }
    cleanup
}

/// Names from `ip netns list` ("name" or "name (id: 3)").
fn list_namespaces() -> Result<Vec<String>, NemesisError> {
    let out = run("ip", &["netns", "list"])?;
    Ok(out
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect())
}

/// Interface names from `ip -o link show` ("5: name@if4: <...> ...").
fn list_links() -> Result<Vec<String>, NemesisError> {
    let out = run("ip", &["-o", "link", "show"])?;
    Ok(out
        .lines()
        .filter_map(|line| line.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .collect())
}

fn link_exists(link: &str) -> bool {
    list_links().is_ok_and(|links| links.iter().any(|name| name == link))
}

/// A fresh `sb<4 hex>` prefix that no existing namespace or link uses.
fn unused_prefix() -> Result<String, NemesisError> {
    let mut taken: Vec<String> = list_namespaces()?;
    taken.extend(list_links()?);
    for _ in 0..64 {
        let prefix = format!("sb{:04x}", rand::random::<u16>());
        if !taken.iter().any(|name| name.starts_with(&prefix)) {
            return Ok(prefix);
        }
    }
    Err(NemesisError::Incomplete {
        what: "choosing a netns name prefix",
        problems: vec!["64 random prefixes were all in use; run `splitbrain clean`".into()],
    })
}

/// The subnet must be a private /24 network that no address or route on this host
/// overlaps: our bridge route would otherwise shadow (or be shadowed by) a real network.
fn check_subnet(config: &NetnsConfig) -> Result<(), NemesisError> {
    let subnet = format!("{}/24", config.subnet);
    let reject = |reason: String| NemesisError::Subnet {
        subnet: subnet.clone(),
        reason,
    };
    if config.subnet.octets()[3] != 0 {
        return Err(reject("the last octet must be 0 (a /24 network)".into()));
    }
    if !config.subnet.is_private() {
        return Err(reject(
            "not a private network (use 10.x.y.0, 172.16-31.x.0 or 192.168.x.0)".into(),
        ));
    }
    let hosts = config.peer_ports.len() + 1;
    if hosts > 254 {
        return Err(reject(format!("{hosts} addresses do not fit in a /24")));
    }
    let ours = u32::from(config.subnet);
    let addrs = run("ip", &["-4", "-o", "addr", "show"])?;
    for line in addrs.lines() {
        let mut words = line.split_whitespace();
        let interface = words.nth(1).unwrap_or("?");
        if let Some(cidr) = words.skip_while(|w| *w != "inet").nth(1) {
            if overlaps(ours, 24, cidr) {
                return Err(reject(format!(
                    "already used by {cidr} on {interface} (a leftover run? `splitbrain clean`; or choose another subnet)"
                )));
            }
        }
    }
    let routes = run("ip", &["-4", "route", "show"])?;
    for line in routes.lines() {
        let Some(destination) = line.split_whitespace().next() else {
            continue;
        };
        if destination != "default" && overlaps(ours, 24, destination) {
            return Err(reject(format!(
                "overlaps the route `{line}`; choose another subnet"
            )));
        }
    }
    Ok(())
}

/// Do `network/len` and `cidr` ("a.b.c.d/n" or a bare address) share addresses?
fn overlaps(network: u32, len: u32, cidr: &str) -> bool {
    let (addr, other_len) = match cidr.split_once('/') {
        Some((addr, len)) => (addr, len.parse::<u32>().unwrap_or(32)),
        None => (cidr, 32),
    };
    let Ok(addr) = addr.parse::<Ipv4Addr>() else {
        return false;
    };
    let common = len.min(other_len).min(32);
    let mask = if common == 0 {
        0
    } else {
        u32::MAX << (32 - common)
    };
    network & mask == u32::from(addr) & mask
}

/// With `bridge-nf-call-iptables` on, bridged packets traverse the host's FORWARD chain;
/// a DROP policy there (Docker sets one) silently cuts every node from every other.
fn warn_if_bridged_traffic_is_filtered() {
    let bridged = std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .is_ok_and(|value| value.trim() == "1");
    if !bridged {
        return;
    }
    if let Ok(forward) = run("iptables", &["-w", "-S", "FORWARD"]) {
        if forward.lines().any(|line| line.trim() == "-P FORWARD DROP") {
            tracing::warn!(
                "the host's iptables FORWARD policy is DROP and bridged traffic passes \
                 through it (net.bridge.bridge-nf-call-iptables=1): nodes may not reach \
                 each other; `sysctl net.bridge.bridge-nf-call-iptables=0` or use --net proxy"
            );
        }
    }
}

/// Errors with an install hint when `tool` cannot be run at all.
fn tool_present(
    tool: &'static str,
    args: &[&str],
    install: &'static str,
) -> Result<(), NemesisError> {
    match Command::new(tool).args(args).output() {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Err(NemesisError::MissingTool { tool, install })
        }
        Err(error) => Err(NemesisError::io(format!("running `{tool}`"), error)),
    }
}

/// Runs a command to completion; its stdout, or an error with its stderr.
fn run(program: &str, args: &[&str]) -> Result<String, NemesisError> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|error| NemesisError::io(format!("running `{program}`"), error))?;
    check_output(program, args, output)
}

/// `run`, without blocking the async runtime.
async fn run_async(program: &str, args: &[&str]) -> Result<String, NemesisError> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .map_err(|error| NemesisError::io(format!("running `{program}`"), error))?;
    check_output(program, args, output)
}

fn check_output(program: &str, args: &[&str], output: Output) -> Result<String, NemesisError> {
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(NemesisError::Command {
            command: format!("{program} {}", args.join(" ")),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;
    use std::sync::Arc;
    use std::thread::JoinHandle;
    use std::time::Duration;

    #[test]
    fn our_names_and_only_ours_match_the_leftover_pattern() {
        for name in [
            "sb1a2f-n1",
            "sb0000-n12",
            "sbbeefbr",
            "sb00ffh3",
            "sb00ffp10",
        ] {
            assert!(is_our_name(name), "{name}");
        }
        for name in [
            "sb1a2f",
            "sbXYZW-n1",
            "sb1a2f-n",
            "sb1A2Fbr",
            "sb1a2fbr0",
            "eth0",
            "sbx",
            "sb12",
            "docker0",
            "sb1a2f-nx",
            "sb1a2fh",
            "sbé1a2br",
        ] {
            assert!(!is_our_name(name), "{name}");
        }
    }

    #[test]
    fn overlap_of_networks() {
        let ours = u32::from(Ipv4Addr::new(10, 77, 0, 0));
        assert!(overlaps(ours, 24, "10.0.0.0/8"));
        assert!(overlaps(ours, 24, "10.77.0.5/32"));
        assert!(overlaps(ours, 24, "10.77.0.1"));
        assert!(!overlaps(ours, 24, "10.78.0.0/24"));
        assert!(!overlaps(ours, 24, "192.168.1.10/24"));
        assert!(!overlaps(ours, 24, "garbage"));
    }

    /// Runs `f` on a fresh thread that has entered the namespace `ns`; the calling
    /// thread stays where it is.
    fn in_namespace<T: Send + 'static>(
        ns: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = format!("/run/netns/{ns}");
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            f()
        })
    }

    /// A one-byte echo server inside `ns` until `stop` is set.
    fn echo_in_namespace(ns: &str, addr: SocketAddr, stop: Arc<AtomicBool>) -> JoinHandle<()> {
        in_namespace(ns, move || {
            let listener = TcpListener::bind(addr).unwrap();
            listener.set_nonblocking(true).unwrap();
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut byte = [0u8; 1];
                        if stream.read_exact(&mut byte).is_ok() {
                            let _ = stream.write_all(&byte);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    }

    /// Can a TCP round trip to `addr` complete (from `ns`, or from the root namespace)?
    fn reachable(ns: Option<&str>, addr: SocketAddr) -> bool {
        let probe = move || {
            let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
            else {
                return false;
            };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut byte = [0u8; 1];
            stream.write_all(b"x").is_ok() && stream.read_exact(&mut byte).is_ok()
        };
        match ns {
            Some(ns) => in_namespace(ns, probe).join().unwrap_or(false),
            None => probe(),
        }
    }

    fn names_with_prefix(prefix: &str) -> Vec<String> {
        let mut names = list_namespaces().unwrap();
        names.extend(list_links().unwrap());
        names.retain(|name| name.starts_with(prefix));
        names
    }

    /// Sets up a net on the first free test subnet (tests may run beside real runs).
    fn setup_on_a_free_subnet(nodes: &[NodeName]) -> NetnsNet {
        let mut last_error = None;
        for third in [211, 212, 213, 214] {
            let mut config = NetnsConfig::new(nodes, 7001);
            config.subnet = Ipv4Addr::new(10, 77, third, 0);
            match NetnsNet::setup(&config) {
                Ok(net) => return net,
                Err(error @ NemesisError::Subnet { .. }) => last_error = Some(error),
                Err(error) => panic!("netns setup failed: {error}"),
            }
        }
        panic!("no free test subnet: {last_error:?}");
    }

    #[test]
    fn netns_partition_blocks_and_heal_restores_and_teardown_leaves_nothing() {
        if let Err(why) = NetnsNet::check_prerequisites() {
            eprintln!("skipping the netns test: {why}");
            return;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let nodes: Vec<NodeName> = ["n1", "n2", "n3"].map(String::from).to_vec();
        let net = setup_on_a_free_subnet(&nodes);
        let prefix = net.prefix().to_string();
        assert!(prefix.len() == 6 && is_our_name(&format!("{prefix}br")));
        let n1 = net.peer_addr("n2", "n1").unwrap();
        assert_eq!(
            n1,
            SocketAddr::new(IpAddr::V4(net.node_ip("n1").unwrap()), 7001)
        );

        let stop = Arc::new(AtomicBool::new(false));
        let server = echo_in_namespace(net.namespace("n1").unwrap(), n1, stop.clone());
        std::thread::sleep(Duration::from_millis(100));
        let ns2 = net.namespace("n2").unwrap().to_string();
        let ns3 = net.namespace("n3").unwrap().to_string();

        assert!(
            reachable(Some(&ns2), n1),
            "n2 cannot reach n1 before any fault"
        );
        assert!(
            reachable(Some(&ns3), n1),
            "n3 cannot reach n1 before any fault"
        );
        assert!(reachable(None, n1), "the harness cannot reach n1");

        // n1 drops n2's packets: n2 is cut off, n3 and the harness are not.
        let grudge = Grudge::from_entries([("n1".to_string(), vec!["n2".to_string()])]);
        runtime.block_on(net.partition(&grudge)).unwrap();
        assert!(
            !reachable(Some(&ns2), n1),
            "n2 reached n1 through the partition"
        );
        assert!(
            reachable(Some(&ns3), n1),
            "n3 was cut by a grudge that spares it"
        );
        assert!(reachable(None, n1), "the harness was cut");

        runtime.block_on(net.heal()).unwrap();
        assert!(reachable(Some(&ns2), n1), "n2 cannot reach n1 after heal");

        // wrap_command runs inside the namespace, which has no route out.
        let wrapped = |args: &[&str]| {
            let mut command = Command::new("ip");
            command.args(args);
            net.wrap_command("n2", &command).unwrap().output().unwrap()
        };
        let addrs = String::from_utf8_lossy(&wrapped(&["-4", "-o", "addr"]).stdout).to_string();
        assert!(
            addrs.contains(&net.node_ip("n2").unwrap().to_string()),
            "{addrs}"
        );
        assert!(wrapped(&["route", "show", "default"]).stdout.is_empty());
        assert!(!wrapped(&["route", "get", "192.0.2.1"]).status.success());

        stop.store(true, Ordering::SeqCst);
        server.join().unwrap();
        runtime.block_on(net.teardown()).unwrap();
        runtime.block_on(net.teardown()).unwrap();
        assert_eq!(names_with_prefix(&prefix), Vec::<String>::new());
        drop(net);
    }

    #[test]
    fn leftovers_of_a_killed_harness_are_removed_by_pattern() {
        if let Err(why) = NetnsNet::check_prerequisites() {
            eprintln!("skipping the netns leftovers test: {why}");
            return;
        }
        let nodes: Vec<NodeName> = ["a", "b"].map(String::from).to_vec();
        let net = setup_on_a_free_subnet(&nodes);
        let prefix = net.prefix().to_string();
        // As if the harness were SIGKILLed: no teardown, no drop.
        std::mem::forget(net);
        assert_eq!(
            names_with_prefix(&prefix).len(),
            5,
            "2 namespaces, 2 veths, bridge"
        );
        // Only this test's prefix: other runs may be live on this machine.
        let cleanup = remove_matching(|name| is_our_name(name) && name.starts_with(&prefix));
        assert!(cleanup.failed.is_empty(), "{:?}", cleanup.failed);
        for name in ["-n1", "-n2", "br"] {
            let name = format!("{prefix}{name}");
            assert!(
                cleanup.removed.contains(&name),
                "{name} not in {:?}",
                cleanup.removed
            );
        }
        assert_eq!(names_with_prefix(&prefix), Vec::<String>::new());
    }
}
