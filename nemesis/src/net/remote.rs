//! `RemoteNet`: partitions between real hosts, with iptables rules installed over a
//! remote shell.
//!
//! Each node runs on its own host. A grudge entry `a drops b` becomes, on host `a`,
//! `iptables -w -I INPUT -s <b's address> -m comment --comment <tag> -j DROP`. Every rule
//! carries the run's tag (`splitbrain-<run>`), so heal removes exactly the rules of this
//! run and `splitbrain clean --hosts` those of any run, and nothing else in the host's
//! firewall is touched. Only the peer hosts' addresses are ever dropped: the control
//! connection (SSH, clients from the harness) comes from another address and passes.
//!
//! This crate knows nothing of SSH: the binary hands in a [`RemoteShell`] (its pool of
//! multiplexed SSH sessions). All of one host's changes go in one script, one round trip.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

use super::NetBackend;
use crate::error::NemesisError;
use crate::grudge::{Grudge, NodeName};

/// A boxed future, as trait objects need.
pub type ShellFuture<'a> = Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>>;

/// Runs a POSIX shell script on a host (as root) and returns its standard output; an
/// error carries the exit status and standard error.
pub trait RemoteShell: Send + Sync {
    fn run<'a>(&'a self, host: &'a str, script: String) -> ShellFuture<'a>;
}

/// The prefix every tag starts with; `clean` removes rules whose comment starts with it.
pub const TAG_PREFIX: &str = "splitbrain-";

/// One host per node, partitioned with tagged iptables rules.
pub struct RemoteNet {
    shell: Arc<dyn RemoteShell>,
    /// Node → the address and peer port its peers dial (the host's own address).
    nodes: BTreeMap<NodeName, SocketAddr>,
    /// `splitbrain-<run>`: the comment on every rule of this run.
    tag: String,
}

impl fmt::Debug for RemoteNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteNet")
            .field("nodes", &self.nodes)
            .field("tag", &self.tag)
            .finish_non_exhaustive()
    }
}

/// A shell snippet that deletes every INPUT rule whose comment is `tag` (or, with
/// `prefix`, starts with it). `iptables -S` prints rules as `-A INPUT ...`; the same
/// words with `-D` delete that rule.
pub fn remove_tagged_script(tag: &str, prefix: bool) -> String {
    let pattern = if prefix {
        format!("--comment \"\\?{tag}")
    } else {
        format!("--comment \"\\?{tag}\"\\?\\( \\|$\\)")
    };
    format!(
        "iptables -w -S INPUT | grep -e '{pattern}' | sed 's/^-A /-D /' | \
         while read -r rule; do eval \"iptables -w $rule\" || exit 1; done\n"
    )
}

impl RemoteNet {
    /// `tag` must be `splitbrain-` followed by letters, digits, `-` or `_` (it goes into
    /// shell scripts and iptables comments unquoted).
    pub fn new(
        shell: Arc<dyn RemoteShell>,
        nodes: BTreeMap<NodeName, SocketAddr>,
        tag: String,
    ) -> Result<Self, NemesisError> {
        let tail = tag.strip_prefix(TAG_PREFIX).unwrap_or("");
        if tail.is_empty()
            || !tail
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(NemesisError::Parse {
                what: "rule tag",
                got: tag,
                expected: "splitbrain-[A-Za-z0-9_-]+".into(),
            });
        }
        Ok(RemoteNet { shell, nodes, tag })
    }

    /// The comment on this run's rules.
    pub fn tag(&self) -> &str {
        &self.tag
    }

    fn ip(&self, node: &str) -> Result<IpAddr, NemesisError> {
        self.nodes
            .get(node)
            .map(SocketAddr::ip)
            .ok_or_else(|| NemesisError::UnknownNode {
                node: node.to_string(),
                known: self.nodes.keys().cloned().collect::<Vec<_>>().join(", "),
            })
    }

    /// Per host, the script that removes this run's rules and installs `grudge`'s.
    pub fn scripts(&self, grudge: &Grudge) -> Result<BTreeMap<NodeName, String>, NemesisError> {
        let mut scripts: BTreeMap<NodeName, String> = self
            .nodes
            .keys()
            .map(|n| (n.clone(), remove_tagged_script(&self.tag, false)))
            .collect();
        for (node, dropped) in grudge.entries() {
            self.ip(node)?;
            for peer in dropped {
                let ip = self.ip(peer)?;
                if let Some(script) = scripts.get_mut(node) {
                    script.push_str(&format!(
                        "iptables -w -I INPUT -s {ip} -m comment --comment {} -j DROP\n",
                        self.tag
                    ));
                }
            }
        }
        Ok(scripts)
    }

    async fn apply(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        let scripts = self.scripts(grudge)?;
        let mut tasks = Vec::new();
        for (node, script) in scripts {
            let shell = self.shell.clone();
            tasks.push((
                node.clone(),
                tokio::spawn(async move {
                    let script = format!("set -e\n{script}");
                    shell.run(&node, script).await
                }),
            ));
        }
        let mut problems = Vec::new();
        for (node, task) in tasks {
            match task.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => problems.push(format!("{node}: {e}")),
                Err(e) => problems.push(format!("{node}: {e}")),
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(NemesisError::Incomplete {
                what: "iptables rules on the hosts",
                problems,
            })
        }
    }
}

impl NetBackend for RemoteNet {
    fn peer_addr(&self, from: &str, to: &str) -> Result<SocketAddr, NemesisError> {
        self.ip(from)?;
        self.ip(to)?;
        Ok(self.nodes[to])
    }

    async fn partition(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        self.apply(grudge).await
    }

    async fn heal(&self) -> Result<(), NemesisError> {
        self.apply(&Grudge::none()).await
    }

    async fn set_message_rules(
        &self,
        rules: &crate::net::messages::MessageRules,
    ) -> Result<(), NemesisError> {
        if rules.is_empty() {
            return Ok(());
        }
        Err(NemesisError::Unsupported {
            what: "dropping or holding single messages",
            backend: "--hosts",
        })
    }

    async fn release_held(
        &self,
        _from: &str,
        _to: &str,
        _count: usize,
    ) -> Result<usize, NemesisError> {
        Ok(0)
    }

    /// Removes this run's rules; the hosts themselves stay.
    async fn teardown(&self) -> Result<(), NemesisError> {
        self.heal().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, String)>>);

    impl RemoteShell for Recorded {
        fn run<'a>(&'a self, host: &'a str, script: String) -> ShellFuture<'a> {
            self.0.lock().unwrap().push((host.to_string(), script));
            Box::pin(async { Ok(String::new()) })
        }
    }

    fn net(shell: Arc<Recorded>) -> RemoteNet {
        let nodes = (1..=3)
            .map(|i| {
                (
                    format!("n{i}"),
                    SocketAddr::from(([10, 79, 0, i as u8 + 1], 7000)),
                )
            })
            .collect();
        RemoteNet::new(shell, nodes, "splitbrain-t1".into()).unwrap()
    }

    #[test]
    fn tags_must_be_safe_for_a_shell() {
        let shell: Arc<dyn RemoteShell> = Arc::new(Recorded::default());
        for bad in [
            "splitbrain-",
            "other-1",
            "splitbrain-a b",
            "splitbrain-$(x)",
        ] {
            assert!(RemoteNet::new(shell.clone(), BTreeMap::new(), bad.into()).is_err());
        }
    }

    #[tokio::test]
    async fn a_grudge_becomes_tagged_drops_of_peer_addresses_only() {
        let shell = Arc::new(Recorded::default());
        let net = net(shell.clone());
        let grudge = Grudge::from_entries([("n1".to_string(), vec!["n2".to_string()])]);
        net.partition(&grudge).await.unwrap();
        let mut calls = shell.0.lock().unwrap().clone();
        calls.sort();
        assert_eq!(calls.len(), 3, "one round trip per host");
        assert!(calls[0].1.contains(
            "iptables -w -I INPUT -s 10.79.0.3 -m comment --comment splitbrain-t1 -j DROP"
        ));
        for (host, script) in &calls {
            assert!(
                script.contains("grep -e '--comment"),
                "{host} removes old rules"
            );
            if host != "n1" {
                assert!(!script.contains("-j DROP"), "{host}: {script}");
            }
        }
    }
}
