//! What can be wrong with a description, and where.
//!
//! Every problem found while loading a description carries its [`Source`] (a file, or
//! `built-in NAME`), a 1-based line and the key path (`node.start[3]`), so that the one
//! line a user sees is enough to fix the file: `etcd.toml:12: node.strat: unknown key,
//! expected one of ...`. Lines come from toml's spans; this module turns byte offsets
//! into lines and serde's wording (`field`) into the file's (`key`).

use std::fmt;
use std::path::PathBuf;

use crate::Source;

/// A problem with a database description: loading it, expanding it for a node, or
/// running what it requires.
#[derive(Debug, thiserror::Error)]
pub enum DescriptionError {
    /// The description itself is wrong (syntax, unknown or missing keys, wrong types,
    /// bad templates, bad regexes, ...).
    #[error("{at}{message}")]
    Invalid {
        /// Where: file or built-in, line, key path.
        at: Location,
        /// What was wrong, in the file's words.
        message: String,
    },
    /// The description file could not be read.
    #[error("cannot read the description {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `--db NAME` named neither a built-in description nor a file.
    #[error(
        "unknown database `{name}`: built-in descriptions are {known}, `bundled` is the \
         built-in Raft KV; a description file is a path (contains `/` or ends in .toml)"
    )]
    UnknownDatabase { name: String, known: String },
    /// `bundled` is not a description: the caller runs the built-in Raft KV itself.
    #[error(
        "`bundled` is the built-in Raft KV, not a database description; the caller \
         runs it without a description"
    )]
    Bundled,
    /// A command the description requires is not on PATH.
    #[error("{command} is not installed{}", install_hint(package))]
    NotInstalled {
        command: String,
        /// The Debian package that provides it, when the description names one.
        package: Option<String>,
    },
    /// A file the description would upload to SSH hosts cannot go: it is missing,
    /// leaves the description's folder, or is over the size limit.
    #[error("{source_name}: uploading {}: {message}", path.display())]
    Upload {
        source_name: String,
        /// Relative to the description's folder.
        path: PathBuf,
        message: String,
    },
    /// A template expanded for one node gave something unusable (a wipe path outside
    /// the node's folder, ...).
    #[error("{source_name}: {key}: {message}")]
    Expand {
        source_name: String,
        key: String,
        message: String,
    },
}

fn install_hint(package: &Option<String>) -> String {
    match package {
        Some(p) => format!(": apt-get install {p}"),
        None => " (not found on PATH)".to_string(),
    }
}

/// Where in a description a problem is: `etcd.toml:12: node.strat: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file as given, or `built-in NAME`.
    pub source: String,
    /// 1-based; `None` when the problem has no single place.
    pub line: Option<usize>,
    /// Dotted key path (`node.start[3]`); empty for the whole document.
    pub key: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        write!(f, ": ")?;
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        Ok(())
    }
}

/// Turns byte offsets of one text into 1-based lines and builds located errors.
pub(crate) struct Locator<'a> {
    text: &'a str,
    source: String,
}

impl<'a> Locator<'a> {
    pub(crate) fn new(text: &'a str, source: &Source) -> Locator<'a> {
        Locator {
            text,
            source: source.to_string(),
        }
    }

    /// The 1-based line of byte `offset`.
    pub(crate) fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }

    /// An error at the start of `span` (or with no line), under `key`.
    pub(crate) fn error(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> DescriptionError {
        DescriptionError::Invalid {
            at: Location {
                source: self.source.clone(),
                line: span.map(|s| self.line(s.start)),
                key: key.into(),
            },
            message: message.into(),
        }
    }

    /// Translates a toml/serde error with its path into a located error.
    pub(crate) fn toml_error(
        &self,
        error: serde_path_to_error::Error<toml::de::Error>,
    ) -> DescriptionError {
        let path = error
            .path()
            .to_string()
            .replace(".$__serde_spanned_private_value", "");
        let path = if path == "." { String::new() } else { path };
        let inner = error.into_inner();
        let span = inner.span();
        // Syntax errors span several lines of explanation; keep them on one.
        let raw = inner
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        let (key, message) = reword(&path, &raw);
        self.error(span, key, message)
    }
}

/// Serde speaks of fields; a TOML file has keys. A missing key's path is its table's,
/// so the key is added to the path here. Returns (key path, message).
fn reword(path: &str, message: &str) -> (String, String) {
    let join = |field: &str| {
        if path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        }
    };
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some(field) = rest.split('`').next() {
            return (join(field), "missing required key".to_string());
        }
    }
    if let Some(rest) = message.strip_prefix("unknown field `") {
        // "unknown field `x`, expected one of `a`, `b`" (or "expected `a`", or "there are
        // no fields").
        let expected = rest.split_once("`, ").map(|(_, e)| e).unwrap_or("");
        let message = if expected.is_empty() {
            "unknown key".to_string()
        } else {
            format!(
                "unknown key, {}",
                expected.replace("there are no fields", "no keys are allowed here")
            )
        };
        return (path.to_string(), message);
    }
    if let Some(rest) = message.strip_prefix("invalid type:") {
        return (path.to_string(), format!("wrong type: {}", rest.trim()));
    }
    (path.to_string(), message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_words_become_toml_words() {
        assert_eq!(
            reword("node", "missing field `start`"),
            ("node.start".into(), "missing required key".into())
        );
        assert_eq!(
            reword(
                "node.strat",
                "unknown field `strat`, expected one of `a`, `b`"
            ),
            (
                "node.strat".into(),
                "unknown key, expected one of `a`, `b`".into()
            )
        );
        assert_eq!(
            reword("x", "invalid type: string \"a\", expected f64"),
            ("x".into(), "wrong type: string \"a\", expected f64".into())
        );
    }

    #[test]
    fn location_reads_file_line_key() {
        let at = Location {
            source: "etcd.toml".into(),
            line: Some(12),
            key: "node.strat".into(),
        };
        assert_eq!(at.to_string(), "etcd.toml:12: node.strat: ");
    }
}
