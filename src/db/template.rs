//! Templates: the strings of a description with `{placeholders}` in them.
//!
//! A template is parsed once, when the description is loaded, into literal text and
//! placeholders, so that a misspelt placeholder, a `{port.X}` naming no port, or a
//! placeholder used where it has no meaning (`{peers}` in a wipe path) is an error at
//! load time with its line and key — not a node that fails to start an hour into a run.
//! Expanding a parsed template for a node cannot fail.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;

/// One `{...}` of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholder {
    /// `{name}`: the node's name (`n1`, `n2`, ...).
    Name,
    /// `{id}`: the node's 1-based number.
    Id,
    /// `{addr}`: the IP address the node listens on.
    Addr,
    /// `{port.NAME}`: a port named in `node.ports`.
    Port(String),
    /// `{data_dir}`: the node's data directory (inside its node directory).
    DataDir,
    /// `{node_dir}`: the node's folder in the run store.
    NodeDir,
    /// `{peers}`: every node's `peer` template, joined by `peer_separator`.
    Peers,
    /// `{cluster_state}`: `new` on a node's first start, `existing` on a restart.
    ClusterState,
    /// `{token}`: unique per run.
    Token,
    /// `{nodes}`: how many nodes the cluster has.
    Nodes,
    /// `{description_dir}`: the folder holding the description file (absolute), so a
    /// description can name scripts that sit beside it; `.` for a built-in one.
    DescriptionDir,
}

impl Placeholder {
    fn parse(inner: &str) -> Option<Placeholder> {
        Some(match inner {
            "name" => Placeholder::Name,
            "id" => Placeholder::Id,
            "addr" => Placeholder::Addr,
            "data_dir" => Placeholder::DataDir,
            "node_dir" => Placeholder::NodeDir,
            "peers" => Placeholder::Peers,
            "cluster_state" => Placeholder::ClusterState,
            "token" => Placeholder::Token,
            "nodes" => Placeholder::Nodes,
            "description_dir" => Placeholder::DescriptionDir,
            _ => Placeholder::Port(inner.strip_prefix("port.")?.to_string()),
        })
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placeholder::Name => write!(f, "{{name}}"),
            Placeholder::Id => write!(f, "{{id}}"),
            Placeholder::Addr => write!(f, "{{addr}}"),
            Placeholder::Port(p) => write!(f, "{{port.{p}}}"),
            Placeholder::DataDir => write!(f, "{{data_dir}}"),
            Placeholder::NodeDir => write!(f, "{{node_dir}}"),
            Placeholder::Peers => write!(f, "{{peers}}"),
            Placeholder::ClusterState => write!(f, "{{cluster_state}}"),
            Placeholder::Token => write!(f, "{{token}}"),
            Placeholder::Nodes => write!(f, "{{nodes}}"),
            Placeholder::DescriptionDir => write!(f, "{{description_dir}}"),
        }
    }
}

/// All placeholders, for error messages.
pub(crate) const KNOWN: &str = "{name}, {id}, {addr}, {port.NAME}, {data_dir}, {node_dir}, \
                                {peers}, {cluster_state}, {token}, {nodes}, {description_dir}";

/// Which placeholders a key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// `node.start`, `node.env`: everything.
    Start,
    /// `node.peer`: only what is known about every node of the cluster.
    Peer,
    /// `ready`, `wipe`, `logs`: everything but `{peers}`.
    Node,
}

impl Scope {
    /// Why `p` is not allowed here, if it is not.
    fn forbids(self, p: &Placeholder) -> Option<&'static str> {
        match (self, p) {
            (Scope::Start, _) => None,
            (Scope::Node, Placeholder::Peers) => {
                Some("{peers} is only allowed in node.start and node.env")
            }
            (Scope::Node, _) => None,
            (
                Scope::Peer,
                Placeholder::Peers
                | Placeholder::DataDir
                | Placeholder::NodeDir
                | Placeholder::ClusterState,
            ) => Some(
                "node.peer describes every node of the cluster; it may use {name}, {id}, \
                 {addr}, {port.NAME}, {token} and {nodes}",
            ),
            (Scope::Peer, _) => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Var(Placeholder),
}

/// A parsed template: its text as written and its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`, checking each placeholder against `ports` and `scope`. The error
    /// is a message without location; the caller adds it.
    pub(crate) fn parse(
        text: &str,
        ports: &BTreeMap<String, u16>,
        scope: Scope,
    ) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|&(_, c)| c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|&(_, c)| c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[at + 1..];
                    let Some(end) = rest.find('}') else {
                        return Err(format!(
                            "unclosed `{{` at character {} of {text:?} (write `{{{{` for a literal brace)",
                            at + 1
                        ));
                    };
                    let inner = &rest[..end];
                    let placeholder = Placeholder::parse(inner).ok_or_else(|| {
                        format!("unknown placeholder `{{{inner}}}`; known: {KNOWN}")
                    })?;
                    if let Placeholder::Port(name) = &placeholder {
                        if !ports.contains_key(name) {
                            return Err(format!(
                                "`{{port.{name}}}`: no port named `{name}` in node.ports (named: {})",
                                names(ports)
                            ));
                        }
                    }
                    if let Some(why) = scope.forbids(&placeholder) {
                        return Err(format!("`{placeholder}` is not allowed here: {why}"));
                    }
                    // Skip the placeholder's characters.
                    for _ in 0..inner.chars().count() + 1 {
                        chars.next();
                    }
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(Part::Var(placeholder));
                }
                '}' => {
                    return Err(format!(
                        "stray `}}` at character {} of {text:?} (write `}}}}` for a literal brace)",
                        at + 1
                    ));
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Template {
            text: text.to_string(),
            parts,
        })
    }

    /// The template as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether the template contains `p`.
    pub fn uses(&self, p: &Placeholder) -> bool {
        self.parts
            .iter()
            .any(|part| matches!(part, Part::Var(v) if v == p))
    }

    /// The paths written right after `{description_dir}/` (up to a space, a separator
    /// such as `,` `:` `;` `=` or a quote, or the next placeholder), relative to it.
    /// `{description_dir}` on its own names no file.
    pub fn description_dir_paths(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for pair in self.parts.windows(2) {
            if let [Part::Var(Placeholder::DescriptionDir), Part::Text(t)] = pair {
                if let Some(rest) = t.strip_prefix('/') {
                    let end = rest
                        .find(|c: char| c.is_whitespace() || ",:;='\"".contains(c))
                        .unwrap_or(rest.len());
                    if end > 0 {
                        out.push(PathBuf::from(&rest[..end]));
                    }
                }
            }
        }
        out
    }

    /// The first part, if it is a placeholder.
    pub(crate) fn leading_placeholder(&self) -> Option<&Placeholder> {
        match self.parts.first() {
            Some(Part::Var(p)) => Some(p),
            _ => None,
        }
    }

    /// The text after the leading placeholder (empty if there is none).
    pub(crate) fn after_leading(&self) -> String {
        let mut out = String::new();
        for part in self.parts.iter().skip(1) {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(p) => out.push_str(&p.to_string()),
            }
        }
        out
    }

    /// The template with every placeholder replaced.
    pub fn expand(&self, vars: &Vars<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Var(p) => vars.push(p, &mut out),
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn names(ports: &BTreeMap<String, u16>) -> String {
    if ports.is_empty() {
        return "none".to_string();
    }
    ports
        .keys()
        .map(|k| format!("`{k}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The values placeholders expand to, for one node.
#[derive(Debug, Clone)]
pub struct Vars<'a> {
    pub name: &'a str,
    pub id: u64,
    pub addr: IpAddr,
    pub ports: &'a BTreeMap<String, u16>,
    /// `None` for the peer template, which cannot use it (checked at load).
    pub data_dir: Option<&'a PathBuf>,
    pub node_dir: Option<&'a PathBuf>,
    pub peers: Option<&'a str>,
    pub cluster_state: Option<&'static str>,
    pub token: &'a str,
    pub nodes: usize,
    /// `None` for a built-in description (expands to `.`).
    pub description_dir: Option<&'a PathBuf>,
}

impl Vars<'_> {
    fn push(&self, p: &Placeholder, out: &mut String) {
        use std::fmt::Write;
        let path = |p: Option<&PathBuf>| p.map(|p| p.display().to_string()).unwrap_or_default();
        match p {
            Placeholder::Name => out.push_str(self.name),
            Placeholder::Id => {
                let _ = write!(out, "{}", self.id);
            }
            Placeholder::Addr => {
                let _ = write!(out, "{}", self.addr);
            }
            Placeholder::Port(name) => {
                // Checked at load time; 0 cannot be reached.
                let _ = write!(out, "{}", self.ports.get(name).copied().unwrap_or(0));
            }
            Placeholder::DataDir => out.push_str(&path(self.data_dir)),
            Placeholder::NodeDir => out.push_str(&path(self.node_dir)),
            Placeholder::Peers => out.push_str(self.peers.unwrap_or("")),
            Placeholder::ClusterState => out.push_str(self.cluster_state.unwrap_or("")),
            Placeholder::Token => out.push_str(self.token),
            Placeholder::Nodes => {
                let _ = write!(out, "{}", self.nodes);
            }
            Placeholder::DescriptionDir => match self.description_dir {
                Some(dir) => out.push_str(&dir.display().to_string()),
                None => out.push('.'),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ports() -> BTreeMap<String, u16> {
        BTreeMap::from([("client".to_string(), 2379)])
    }

    fn vars<'a>(ports: &'a BTreeMap<String, u16>, dir: &'a PathBuf) -> Vars<'a> {
        Vars {
            name: "n2",
            id: 2,
            addr: "10.0.0.2".parse().expect("literal"),
            ports,
            data_dir: Some(dir),
            node_dir: Some(dir),
            peers: Some("P"),
            cluster_state: Some("new"),
            token: "T",
            nodes: 3,
            description_dir: None,
        }
    }

    #[test]
    fn expands_placeholders_and_escapes() {
        let p = ports();
        let dir = PathBuf::from("/d");
        let t = Template::parse(
            "{{x}} {name}/{id}@{addr}:{port.client} {nodes}{token}",
            &p,
            Scope::Start,
        )
        .expect("valid");
        assert_eq!(t.expand(&vars(&p, &dir)), "{x} n2/2@10.0.0.2:2379 3T");
    }

    #[test]
    fn rejects_bad_templates() {
        let p = ports();
        let err = |s: &str, scope| Template::parse(s, &p, scope).expect_err(s);
        assert!(err("{nam}", Scope::Start).contains("unknown placeholder `{nam}`"));
        assert!(err("{port.peer}", Scope::Start).contains("no port named `peer`"));
        assert!(err("{peers}", Scope::Node).contains("only allowed in node.start"));
        assert!(err("{data_dir}", Scope::Peer).contains("node.peer"));
        assert!(err("a{b", Scope::Start).contains("unclosed"));
        assert!(err("a}b", Scope::Start).contains("stray"));
    }
}
