//! Network backends: how a grudge becomes dropped packets.
//!
//! Three backends implement [`NetBackend`]: [`proxy::ProxyNet`] (a userspace TCP proxy per
//! directed link, any user, loopback only) and [`netns::NetnsNet`] (a network namespace
//! per node on a private bridge, `iptables` DROP rules, needs root), and
//! [`remote::RemoteNet`] (real hosts, tagged iptables rules over a remote shell). All
//! must be set up before the nodes start, because a node learns where to dial each peer
//! from [`NetBackend::peer_addr`]. [`Net`] wraps any, so the driver can pick one at run
//! time without trait objects.

pub mod messages;
pub mod netns;
pub mod proxy;
pub mod remote;

use std::future::Future;
use std::net::SocketAddr;

use crate::error::NemesisError;
use crate::grudge::Grudge;
use messages::MessageRules;
use proxy::ProxyNet;

/// A network that can be partitioned according to a grudge, healed and torn down.
///
/// `partition` replaces whatever grudge was in force; `heal` and `teardown` are
/// idempotent (calling them twice, or on a healthy network, is fine).
pub trait NetBackend {
    /// The address node `from` must dial to reach the peer port of node `to`.
    fn peer_addr(&self, from: &str, to: &str) -> Result<SocketAddr, NemesisError>;

    /// Cuts exactly the links the grudge names (and heals every other link).
    fn partition(&self, grudge: &Grudge) -> impl Future<Output = Result<(), NemesisError>> + Send;

    /// Restores every link: no partition and no message rule.
    fn heal(&self) -> impl Future<Output = Result<(), NemesisError>> + Send;

    /// Drops or holds single messages by kind on some links (see [`messages`]),
    /// replacing the previous rules. Backends that cannot see messages refuse.
    fn set_message_rules(
        &self,
        rules: &MessageRules,
    ) -> impl Future<Output = Result<(), NemesisError>> + Send;

    /// Delivers the first `count` messages held on the link from→to (of any kind) and
    /// keeps holding the rest; returns how many were released.
    fn release_held(
        &self,
        from: &str,
        to: &str,
        count: usize,
    ) -> impl Future<Output = Result<usize, NemesisError>> + Send;

    /// Removes everything the backend created (listeners, namespaces, bridges).
    fn teardown(&self) -> impl Future<Output = Result<(), NemesisError>> + Send;
}

/// One backend, chosen at run time (`--net proxy`, `--net netns`, or `--hosts`).
#[derive(Debug)]
pub enum Net {
    /// The userspace TCP proxy.
    Proxy(proxy::ProxyNet),
    /// Network namespaces with iptables.
    Netns(netns::NetnsNet),
    /// Real hosts (`--hosts`), iptables over a remote shell.
    Remote(remote::RemoteNet),
}

impl NetBackend for Net {
    fn peer_addr(&self, from: &str, to: &str) -> Result<SocketAddr, NemesisError> {
        match self {
            Net::Proxy(net) => net.peer_addr(from, to),
            Net::Netns(net) => net.peer_addr(from, to),
            Net::Remote(net) => net.peer_addr(from, to),
        }
    }

    async fn partition(&self, grudge: &Grudge) -> Result<(), NemesisError> {
        match self {
            Net::Proxy(net) => net.partition(grudge).await,
            Net::Netns(net) => net.partition(grudge).await,
            Net::Remote(net) => net.partition(grudge).await,
        }
    }

    async fn heal(&self) -> Result<(), NemesisError> {
        match self {
            Net::Proxy(net) => net.heal().await,
            Net::Netns(net) => net.heal().await,
            Net::Remote(net) => net.heal().await,
        }
    }

    async fn set_message_rules(&self, rules: &MessageRules) -> Result<(), NemesisError> {
        match self {
            Net::Proxy(net) => NetBackend::set_message_rules(net, rules).await,
            Net::Netns(net) => net.set_message_rules(rules).await,
            Net::Remote(net) => net.set_message_rules(rules).await,
        }
    }

    async fn release_held(
        &self,
        from: &str,
        to: &str,
        count: usize,
    ) -> Result<usize, NemesisError> {
        match self {
            Net::Proxy(net) => ProxyNet::release_held(net, from, to, count),
            Net::Netns(net) => net.release_held(from, to, count).await,
            Net::Remote(net) => net.release_held(from, to, count).await,
        }
    }

    async fn teardown(&self) -> Result<(), NemesisError> {
        match self {
            Net::Proxy(net) => net.teardown().await,
            Net::Netns(net) => net.teardown().await,
            Net::Remote(net) => net.teardown().await,
        }
    }
}
