//! The environment of one run: the network backend (proxy or netns) and the database
//! wired through it.
//!
//! Set-up order matters: the network exists before any node starts (nodes are told the
//! proxy addresses, or are started inside their namespaces); teardown is the reverse and
//! runs on every exit path.

use anyhow::{anyhow, Context};
use splitbrain_nemesis::{self as nemesis, Net, NetBackend, NetnsConfig};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use super::config::{NetKind, TestConfig};
use super::db::bundled::{BundledCluster, CommandWrapper};
use super::db::described::DescribedCluster;
use super::db::processes::LocalRunner;
use super::db::{self, Control, Database};
use super::hosts::{self, Hosts, HostsFile};
use super::store::RunDir;
use crate::node::launch::NodeSpec;

/// Ports inside each node's namespace (every node has its own address).
const NETNS_PEER_PORT: u16 = 7000;
const NETNS_CLIENT_PORT: u16 = 7001;
const NETNS_ADMIN_PORT: u16 = 7002;

pub struct Environment {
    pub db: Arc<dyn Database>,
    pub net: Arc<Net>,
    /// With `--hosts`: the run's folder on the hosts, emptied into the store at teardown.
    pub remote: Option<hosts::RemoteRun>,
}

/// Each node's listeners (peer, client, admin), as the harness reaches them.
type Listeners = BTreeMap<String, (SocketAddr, SocketAddr, SocketAddr)>;

/// The launch specification of bundled node `n`, whose folder is `node_dir` (on this
/// machine or on its host): its peers reached through `net`, its settings from `cfg`.
fn bundled_spec(
    cfg: &TestConfig,
    n: &str,
    listen: &Listeners,
    net: &Net,
    node_dir: std::path::PathBuf,
) -> anyhow::Result<NodeSpec> {
    let id_of = |name: &str| -> u64 { name[1..].parse().unwrap_or(0) };
    let (peer, client, admin) = listen[n];
    let mut peers = BTreeMap::new();
    let mut client_addrs = BTreeMap::new();
    for other in listen.keys().filter(|o| *o != n) {
        peers.insert(id_of(other), net.peer_addr(n, other)?.to_string());
        client_addrs.insert(id_of(other), listen[other].1.to_string());
    }
    Ok(NodeSpec {
        id: id_of(n),
        name: n.to_string(),
        peer_listen: peer.to_string(),
        client_listen: client.to_string(),
        admin_listen: admin.to_string(),
        peers,
        client_addrs,
        data_dir: node_dir.join("data"),
        read_mode: cfg.read_mode.bundled(),
        bugs: cfg.bugs.clone(),
        log_file: Some(node_dir.join("node.log")),
        // 20 ms ticks: elections after 200–400 ms, which a busy 2-core machine does not
        // trigger spuriously.
        tick_ms: 20,
        seed: cfg.seed.wrapping_add(id_of(n)),
    })
}

/// Starts each node's command inside its namespace.
fn netns_wrapper(net: &Arc<Net>) -> CommandWrapper {
    let net = net.clone();
    Box::new(move |node: &str, cmd: std::process::Command| match &*net {
        Net::Netns(ns) => ns
            .wrap_command(node, &cmd)
            .map_err(|e| anyhow!("placing {node} in its namespace: {e}")),
        _ => Ok(cmd),
    })
}

impl Environment {
    pub async fn setup(cfg: &TestConfig, run_dir: &RunDir) -> anyhow::Result<Environment> {
        if let Some(path) = &cfg.hosts {
            return Self::setup_hosts(cfg, run_dir, path).await;
        }
        match cfg.db.description()? {
            Some(desc) => Self::setup_described(cfg, run_dir, desc).await,
            None => Self::setup_bundled(cfg, run_dir).await,
        }
    }

    /// A described database: every node in its own namespace (the configuration refuses
    /// the proxy for these), listening on the description's ports at its own address.
    async fn setup_described(
        cfg: &TestConfig,
        run_dir: &RunDir,
        desc: splitbrain_db::Description,
    ) -> anyhow::Result<Environment> {
        let names = super::node_names(cfg.nodes);
        // The namespace layout wants a peer port per node; it only labels addresses.
        let peer_port = desc
            .ports()
            .get("peer")
            .or_else(|| desc.ports().values().next())
            .copied()
            .unwrap_or(NETNS_PEER_PORT);
        let ns = tokio::task::spawn_blocking({
            let names = names.clone();
            move || nemesis::NetnsNet::setup(&NetnsConfig::new(&names, peer_port))
        })
        .await
        .context("setting up network namespaces")??;
        let mut nodes = Vec::new();
        for n in &names {
            nodes.push((n.clone(), std::net::IpAddr::from(ns.node_ip(n)?)));
        }
        let net = Arc::new(Net::Netns(ns));
        let token = format!(
            "splitbrain-{}-{}",
            cfg.seed,
            run_dir
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let db = Arc::new(DescribedCluster::new(
            desc,
            cfg.workload,
            cfg.read_mode.etcd(),
            // Absolute: each node runs in its own folder.
            std::path::absolute(&run_dir.path).context("resolving the run folder")?,
            &nodes,
            token,
            Box::new(LocalRunner::new(Some(netns_wrapper(&net)))),
        ));
        Ok(Environment {
            db,
            net,
            remote: None,
        })
    }

    async fn setup_bundled(cfg: &TestConfig, run_dir: &RunDir) -> anyhow::Result<Environment> {
        let names = super::node_names(cfg.nodes);
        let exe = std::env::current_exe().context("locating the splitbrain executable")?;

        // Addresses each node listens on, and how the harness reaches them.
        let mut listen: BTreeMap<String, (SocketAddr, SocketAddr, SocketAddr)> = BTreeMap::new();
        let net = match cfg.net {
            NetKind::Netns => {
                let net = tokio::task::spawn_blocking({
                    let names = names.clone();
                    move || nemesis::NetnsNet::setup(&NetnsConfig::new(&names, NETNS_PEER_PORT))
                })
                .await
                .context("setting up network namespaces")??;
                for n in &names {
                    let ip = net.node_ip(n)?;
                    listen.insert(
                        n.clone(),
                        (
                            SocketAddr::new(ip.into(), NETNS_PEER_PORT),
                            SocketAddr::new(ip.into(), NETNS_CLIENT_PORT),
                            SocketAddr::new(ip.into(), NETNS_ADMIN_PORT),
                        ),
                    );
                }
                Net::Netns(net)
            }
            _ => {
                let mut rng = crate::node::launch::port_rng(cfg.seed);
                let mut taken = std::collections::BTreeSet::new();
                for n in &names {
                    let mut three = Vec::new();
                    while three.len() < 3 {
                        let addr = crate::node::launch::free_port(&mut rng)?;
                        if taken.insert(addr) {
                            three.push(addr);
                        }
                    }
                    listen.insert(n.clone(), (three[0], three[1], three[2]));
                }
                let real = listen.iter().map(|(n, l)| (n.clone(), l.0)).collect();
                Net::Proxy(
                    nemesis::ProxyNet::start_with_frames(real, crate::node::transport::frame_kind)
                        .await
                        .context("starting the link proxies")?,
                )
            }
        };
        let net = Arc::new(net);

        let mut specs = BTreeMap::new();
        for n in &names {
            let node_dir = run_dir.node_dir(n);
            std::fs::create_dir_all(&node_dir)
                .with_context(|| format!("creating {}", node_dir.display()))?;
            specs.insert(n.clone(), bundled_spec(cfg, n, &listen, &net, node_dir)?);
        }
        let wrap = match &*net {
            Net::Netns(_) => Some(netns_wrapper(&net)),
            _ => None,
        };
        let client = listen.iter().map(|(n, l)| (n.clone(), l.1)).collect();
        let admin = listen.iter().map(|(n, l)| (n.clone(), l.2)).collect();
        let db = Arc::new(BundledCluster::new(
            exe,
            cfg.workload,
            specs,
            client,
            admin,
            Box::new(LocalRunner::new(wrap)),
        ));
        Ok(Environment {
            db,
            net,
            remote: None,
        })
    }

    /// Nodes on SSH hosts: connect, check the hosts, make the run's folder on each (a
    /// fresh private one, refused in a parent someone else could write), upload what the
    /// nodes need into it; the nodes listen on their host's address.
    async fn setup_hosts(
        cfg: &TestConfig,
        run_dir: &RunDir,
        path: &std::path::Path,
    ) -> anyhow::Result<Environment> {
        let file = HostsFile::load(path)?;
        let stamp = run_dir
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // Tags the run's iptables rules; the folders' names come from the hosts.
        let run_id: String = format!("{stamp}-{}", cfg.seed)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let desc = cfg.db.description()?;
        let names = super::node_names(cfg.nodes);
        let mut ips = BTreeMap::new();
        for n in &names {
            let entry = file
                .hosts
                .get(n)
                .ok_or_else(|| anyhow!("the hosts file names no host {n}"))?;
            ips.insert(n.clone(), entry.ip()?);
        }
        // What of the description's folder goes along: refused here, before any host is
        // touched, when it leaves the folder or is too large.
        let upload = match &desc {
            Some(d) => d.upload_files().map_err(|e| anyhow!("{e}"))?,
            None => Vec::new(),
        };
        let required: Vec<String> = desc
            .iter()
            .flat_map(|d| d.requires.iter().map(|r| r.command.clone()))
            .collect();
        let pool = Arc::new(
            Hosts::connect(&file)
                .await
                .context("connecting to the hosts")?,
        );
        pool.keep_alive();
        pool.preflight(&required, &ips).await?;
        let roots = pool.make_run_dirs().await?;
        let remote = hosts::RemoteRun {
            hosts: pool.clone(),
            roots: roots.clone(),
            local_nodes: run_dir.path.join("nodes"),
        };
        let built = match desc {
            Some(desc) => {
                Self::setup_hosts_described(cfg, run_dir, desc, upload, &ips, &remote, &run_id)
                    .await
            }
            None => Self::setup_hosts_bundled(cfg, &ips, &remote, &run_id).await,
        };
        match built {
            Ok((db, net)) => Ok(Environment {
                db,
                net,
                remote: Some(remote),
            }),
            Err(e) => {
                for problem in remote.remove().await {
                    tracing::warn!("removing the run folder from the hosts: {problem}");
                }
                Err(e)
            }
        }
    }

    /// A described database on hosts: the description's command runs on each host (the
    /// hosts must have it), listening on the host's address.
    async fn setup_hosts_described(
        cfg: &TestConfig,
        run_dir: &RunDir,
        desc: splitbrain_db::Description,
        upload: Vec<std::path::PathBuf>,
        ips: &BTreeMap<String, std::net::IpAddr>,
        remote: &hosts::RemoteRun,
        run_id: &str,
    ) -> anyhow::Result<(Arc<dyn Database>, Arc<Net>)> {
        let (pool, roots) = (remote.hosts.clone(), &remote.roots);
        let local = desc.dir.clone();
        let peer_port = desc
            .ports()
            .get("peer")
            .or_else(|| desc.ports().values().next())
            .copied()
            .unwrap_or(NETNS_PEER_PORT);
        let mut nodes = Vec::new();
        let mut peers = BTreeMap::new();
        for (n, ip) in ips {
            let ip = *ip;
            nodes.push((n.clone(), ip));
            peers.insert(n.clone(), SocketAddr::new(ip, peer_port));
        }
        // The files the description names (a start script) go along, once per host;
        // `{description_dir}` is their folder there.
        let mut description_dirs = BTreeMap::new();
        if let Some(local) = &local {
            for (n, root) in roots {
                let remote = format!("{root}/description");
                if upload.is_empty() {
                    pool.run(n, &format!("mkdir -p {}", hosts::sq(&remote)))
                        .await?;
                } else {
                    pool.upload_files(n, local, &upload, &remote).await?;
                }
                description_dirs.insert(n.clone(), std::path::PathBuf::from(remote));
            }
        }
        let shell: Arc<dyn nemesis::net::remote::RemoteShell> = pool.clone();
        let tag = format!("{}{run_id}", nemesis::net::remote::TAG_PREFIX);
        let net = Arc::new(Net::Remote(nemesis::net::remote::RemoteNet::new(
            shell,
            peers,
            tag.clone(),
        )?));
        let node_roots = roots
            .iter()
            .map(|(n, r)| (n.clone(), std::path::PathBuf::from(r)))
            .collect();
        let db: Arc<dyn Database> = Arc::new(
            DescribedCluster::new(
                desc,
                cfg.workload,
                cfg.read_mode.etcd(),
                std::path::absolute(&run_dir.path).context("resolving the run folder")?,
                &nodes,
                tag,
                Box::new(hosts::runner::RemoteRunner::new(pool, roots.clone())),
            )
            .on_hosts(node_roots, description_dirs),
        );
        Ok((db, net))
    }

    async fn setup_hosts_bundled(
        cfg: &TestConfig,
        ips: &BTreeMap<String, std::net::IpAddr>,
        remote: &hosts::RemoteRun,
        run_id: &str,
    ) -> anyhow::Result<(Arc<dyn Database>, Arc<Net>)> {
        let (pool, roots) = (remote.hosts.clone(), &remote.roots);
        let exe = std::env::current_exe().context("locating the splitbrain executable")?;
        let mut exes = BTreeMap::new();
        let mut uploads = Vec::new();
        for (n, root) in roots {
            let to = format!("{root}/bin/splitbrain");
            exes.insert(n.clone(), std::path::PathBuf::from(&to));
            let (pool, exe, n) = (pool.clone(), exe.clone(), n.clone());
            uploads.push(tokio::spawn(async move {
                pool.upload_file(&n, &exe, &to, "755").await
            }));
        }
        for upload in uploads {
            upload.await.context("uploading splitbrain")??;
        }
        let mut listen = BTreeMap::new();
        for (n, ip) in ips {
            let ip = *ip;
            listen.insert(
                n.clone(),
                (
                    SocketAddr::new(ip, NETNS_PEER_PORT),
                    SocketAddr::new(ip, NETNS_CLIENT_PORT),
                    SocketAddr::new(ip, NETNS_ADMIN_PORT),
                ),
            );
        }
        let peers = listen.iter().map(|(n, l)| (n.clone(), l.0)).collect();
        let shell: Arc<dyn nemesis::net::remote::RemoteShell> = pool.clone();
        let net = Arc::new(Net::Remote(nemesis::net::remote::RemoteNet::new(
            shell,
            peers,
            format!("{}{run_id}", nemesis::net::remote::TAG_PREFIX),
        )?));
        let mut specs = BTreeMap::new();
        for (n, root) in roots {
            let node_dir = std::path::PathBuf::from(format!("{root}/{n}"));
            specs.insert(n.clone(), bundled_spec(cfg, n, &listen, &net, node_dir)?);
        }
        let client = listen.iter().map(|(n, l)| (n.clone(), l.1)).collect();
        let admin = listen.iter().map(|(n, l)| (n.clone(), l.2)).collect();
        let db: Arc<dyn Database> = Arc::new(
            BundledCluster::new(
                exe,
                cfg.workload,
                specs,
                client,
                admin,
                Box::new(hosts::runner::RemoteRunner::new(pool, roots.clone())),
            )
            .with_node_exes(exes),
        );
        Ok((db, net))
    }

    /// The nodes' log files after teardown (downloaded from the hosts, with `--hosts`).
    pub fn log_files(&self) -> Vec<std::path::PathBuf> {
        match &self.remote {
            Some(remote) => remote.log_files(),
            None => self.db.log_files(),
        }
    }

    /// Heals everything the nemesis may have done (network, paused, killed, clocks),
    /// then makes sure every node runs; returns what could not be healed.
    pub async fn heal_all(&self, state: &mut nemesis::FaultState) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = nemesis::heal_all(&Control(&*self.db), &*self.net, state).await {
            problems.push(e.to_string());
        }
        // Belt and braces: a fault the nemesis never recorded (it was cancelled between
        // acting and recording) must not survive either.
        if let Err(e) = self.net.heal().await {
            problems.push(format!("healing the network: {e}"));
        }
        problems.extend(db::heal_processes(&*self.db));
        for node in self.db.nodes() {
            if self.db.is_running(&node) {
                let _ = self.db.reset_clock(&node).await;
            }
        }
        problems
    }

    /// Stops every node and removes the network; returns what went wrong.
    pub async fn teardown(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let db = self.db.clone();
        match tokio::task::spawn_blocking(move || db.stop_all()).await {
            Ok(stopping) => problems.extend(stopping),
            Err(e) => problems.push(format!("stopping nodes: {e}")),
        }
        if let Err(e) = self.net.teardown().await {
            problems.push(format!("tearing down the network: {e}"));
        }
        if let Some(remote) = &self.remote {
            problems.extend(remote.finish().await);
        }
        problems
    }
}
