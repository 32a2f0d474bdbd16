//! The one error type of the nemesis crate.
//!
//! Every variant carries what a user needs to act on it: the missing tool and how to
//! install it, the exact command that failed with its stderr, the node that was unknown.
//! Callers in the binary wrap it in `anyhow`; here it stays a plain `thiserror` enum so
//! the driver can match on, say, [`NemesisError::NotRoot`] and suggest `--net proxy`.

use std::net::SocketAddr;

/// Everything that can go wrong while injecting or healing a fault.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// A node name that the network backend or fault state was not built with.
    #[error("unknown node {node:?}: the nemesis was set up for {known}")]
    UnknownNode { node: String, known: String },

    /// A partition shape needs more nodes than the cluster has.
    #[error("partition shape {shape} needs at least {needed} nodes, the cluster has {got}")]
    NotEnoughNodes {
        shape: &'static str,
        needed: usize,
        got: usize,
    },

    /// The network-namespace backend needs root (namespaces, veths, iptables).
    #[error("--net netns needs root: run as root or use --net proxy")]
    NotRoot,

    /// A command-line tool the netns backend runs is not installed.
    #[error("{tool} not found: {install}")]
    MissingTool {
        tool: &'static str,
        install: &'static str,
    },

    /// An external command (ip, iptables) ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        command: String,
        status: String,
        stderr: String,
    },

    /// An I/O error with what we were doing when it happened.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// The netns subnet is malformed or collides with an address already on this host.
    #[error("subnet {subnet}: {reason}")]
    Subnet { subnet: String, reason: String },

    /// A pid that must never be signalled (0 or beyond i32: it would hit a process group).
    #[error("refusing to signal pid {pid}: not a single process id")]
    InvalidPid { pid: u32 },

    /// `kill(2)` failed for a reason other than "no such process".
    #[error("sending {signal} to pid {pid}: {source}")]
    Signal {
        pid: u32,
        signal: &'static str,
        #[source]
        source: nix::Error,
    },

    /// A name that should parse as a fault kind or partition shape did not.
    #[error("unknown {what} {got:?}: expected one of {expected}")]
    Parse {
        what: &'static str,
        got: String,
        expected: std::borrow::Cow<'static, str>,
    },

    /// The cluster (the driver's `ClusterControl`) failed to perform a fault action.
    #[error("{action} {node}: {message}")]
    Cluster {
        action: &'static str,
        node: String,
        message: String,
    },

    /// A proxy listener could not be bound on loopback.
    #[error("binding the proxy for link {from} -> {to} on 127.0.0.1: {source}")]
    ProxyBind {
        from: String,
        to: String,
        #[source]
        source: std::io::Error,
    },

    /// The proxy was asked for a link whose real target is not a loopback address.
    #[error("proxy target {addr} of node {node} is not on loopback; the proxy backend only forwards to 127.0.0.0/8 or ::1")]
    NonLoopbackTarget { node: String, addr: SocketAddr },

    /// Healing or teardown tried everything and some steps still failed.
    /// The backend cannot inject this kind of fault.
    #[error("{what} is not possible with {backend}; use --net proxy")]
    Unsupported {
        what: &'static str,
        backend: &'static str,
    },
    #[error("{what} left {} problem(s): {}", problems.len(), problems.join("; "))]
    Incomplete {
        what: &'static str,
        problems: Vec<String>,
    },
}

impl NemesisError {
    /// Wraps an I/O error with the action that hit it.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        NemesisError::Io {
            context: context.into(),
            source,
        }
    }
}
