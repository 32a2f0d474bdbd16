//! History readers and the JSONL writer: every way a history gets into or out of
//! splitbrain.
//!
//! | [`Format`] | what | module |
//! |---|---|---|
//! | `jsonl` | our own history (README, "The history format"), one event per line | `jsonl.rs` |
//! | `edn` | Jepsen `history.edn` (one map per line) and Knossos' test data (one vector of maps) | `jepsen.rs`, over the EDN reader [`edn`] |
//! | `porcupine-etcd` | Porcupine's etcd logs: `INFO  jepsen.util - 0 :invoke :read nil` (TAB-separated) | `porcupine.rs` |
//! | `porcupine-kv` | Porcupine's kv logs: one EDN map per line with `:key` | `jepsen.rs` |
//!
//! Readers produce a [`History`] of [`Event`](crate::history::Event)s with dense indexes in file order and each
//! event's source line, so later errors (pairing, checking) can point back into the file.
//! They check everything that concerns one event (fields present and well-typed, indexes
//! dense); pairing invocations with completions is [`History::pair`]'s job.
//! Every content error names the file, the 1-based line and what to fix
//! ([`FormatError`]).
//!
//! # Independent keys
//!
//! Jepsen's `independent` checker writes per-key histories as one history whose values are
//! `[key value]` tuples. [`ReadOptions::independent`] says whether to split them into
//! [`Event::key`](crate::history::Event::key) and [`Event::value`](crate::history::Event::value):
//! - [`Independent::No`] never splits.
//! - [`Independent::Yes`] always splits; every client event's value must be a 2-element vector
//!   whose first element is an integer or a string (the key), else an error names the line.
//! - [`Independent::Auto`] (the default) splits only if no event has an explicit key, every
//!   client (non-nemesis) event's value is such a 2-element vector, there is at least one
//!   `read` invocation, and every `read` is invoked with `[k nil]`. A plain cas-register
//!   history invokes reads with `nil` (not a vector), so it is never taken for an
//!   independent one, however many `[old new]` cas values it has.
//!
//! # Detection
//!
//! [`Format::detect`] looks at the first non-blank line: `{"` is JSONL, `INFO … jepsen.util`
//! is a Porcupine etcd log, `[`, `(`, `;` or `#` is EDN, and `{:` is EDN unless the map has
//! a string `:key` and `:f` of `:get`, `:put` or `:append` (Porcupine kv).

pub mod edn;
mod jepsen;
mod jsonl;
mod porcupine;

pub use jsonl::{
    read_until_error as read_jsonl_until_error, write_jsonl, JsonlWriter, PartialHistory,
};

use crate::history::{History, Key, Process};
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// How much of a file [`read_path`] looks at to detect its format.
const DETECT_BYTES: u64 = 64 * 1024;

/// A history file format; its name (kebab-case of the variant) is what `--format`
/// accepts and `Display` prints.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    strum::Display,
    strum::IntoStaticStr,
    strum::VariantNames,
    strum::VariantArray,
)]
#[strum(serialize_all = "kebab-case")]
pub enum Format {
    /// Our JSON Lines history.
    Jsonl,
    /// Jepsen / Knossos EDN.
    Edn,
    /// Porcupine's etcd logs (Jepsen log lines).
    PorcupineEtcd,
    /// Porcupine's kv logs (EDN maps with `:key`).
    PorcupineKv,
}

impl Format {
    /// Every format's name, as accepted by `FromStr` and printed by `Display`.
    pub const NAMES: &'static [&'static str] = <Format as strum::VariantNames>::VARIANTS;

    /// Every format, in the order of [`Format::NAMES`].
    pub const ALL: &'static [Format] = <Format as strum::VariantArray>::VARIANTS;

    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Guesses the format from the start of a file; `None` when unsure (including an
    /// empty sample). See the module documentation for the rules.
    pub fn detect(sample: &str) -> Option<Format> {
        let sample = sample.strip_prefix('\u{feff}').unwrap_or(sample);
        let first = sample.lines().map(str::trim).find(|l| !l.is_empty())?;
        if first.starts_with("INFO") && first.contains("jepsen.util") {
            return Some(Format::PorcupineEtcd);
        }
        if let Some(after_brace) = first.strip_prefix('{') {
            let after_brace = after_brace.trim_start();
            if after_brace.starts_with('"') {
                return Some(Format::Jsonl);
            }
            if after_brace.starts_with(':') {
                return Some(if is_kv_operation(first) {
                    Format::PorcupineKv
                } else {
                    Format::Edn
                });
            }
            return None;
        }
        if first.starts_with(['[', '(', ';', '#']) {
            return Some(Format::Edn);
        }
        None
    }
}

/// True if `line` is one EDN map with a string `:key` and `:f` of get, put or append.
fn is_kv_operation(line: &str) -> bool {
    let Ok(form) = edn::parse_one(line) else {
        return false;
    };
    let key_is_string = matches!(form.get("key"), Some(edn::Edn::Str(_)));
    let f_is_kv = matches!(form.get("f"), Some(edn::Edn::Keyword(f)) if matches!(f.as_str(), "get" | "put" | "append"));
    key_is_string && f_is_kv
}

impl FromStr for Format {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Format, FormatError> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| FormatError::UnknownFormat {
                name: s.to_string(),
            })
    }
}

/// Whether `[key value]` tuples are split into per-key events (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Independent {
    #[default]
    Auto,
    Yes,
    No,
}

/// Options for the readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOptions {
    pub independent: Independent,
}

/// Why a history could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The text itself is malformed (not JSON, not EDN, not UTF-8).
    #[error("{file} line {line}, column {column}: {reason}")]
    Syntax {
        file: String,
        line: usize,
        column: usize,
        reason: String,
    },
    /// Well-formed text that is not a valid event.
    #[error("{file} line {line}: {reason}")]
    Invalid {
        file: String,
        line: usize,
        reason: String,
    },
    /// Reading failed part way through.
    #[error("{file} line {line}: cannot read: {source}")]
    Read {
        file: String,
        line: usize,
        #[source]
        source: io::Error,
    },
    /// The file could not be opened or read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot detect the format of {}; pass --format (one of {})", path.display(), Format::NAMES.join(", "))]
    Undetected { path: PathBuf },
    #[error("unknown history format {name:?}; expected one of {}", Format::NAMES.join(", "))]
    UnknownFormat { name: String },
}

impl FormatError {
    /// What is wrong, without the file and line the message starts with (for callers
    /// that say where themselves).
    pub fn reason(&self) -> String {
        match self {
            FormatError::Syntax { column, reason, .. } => format!("column {column}: {reason}"),
            FormatError::Invalid { reason, .. } => reason.clone(),
            FormatError::Read { source, .. } => format!("cannot read: {source}"),
            other => other.to_string(),
        }
    }

    /// The 1-based line the error concerns, if it concerns content.
    pub fn line(&self) -> Option<usize> {
        match self {
            FormatError::Syntax { line, .. }
            | FormatError::Invalid { line, .. }
            | FormatError::Read { line, .. } => Some(*line),
            _ => None,
        }
    }
}

/// A "not UTF-8" error at the first bad byte of `bytes` (one line, or a whole file
/// starting at `first_line`).
fn utf8_error(file: &str, first_line: usize, bytes: &[u8], e: &std::str::Utf8Error) -> FormatError {
    let valid = &bytes[..e.valid_up_to()];
    let newlines = valid.iter().filter(|&&b| b == b'\n').count();
    let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let column = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count()
        + 1;
    let bad = bytes.get(e.valid_up_to()).copied().unwrap_or(0);
    FormatError::Syntax {
        file: file.to_string(),
        line: first_line + newlines,
        column,
        reason: format!("not valid UTF-8 (byte 0x{bad:02x}); a history must be UTF-8 text"),
    }
}

/// Reads a history in `format`; `source` names the input in error messages.
pub fn read_history<R: BufRead>(
    reader: R,
    format: Format,
    source: &str,
) -> Result<History, FormatError> {
    read_history_with(reader, format, source, &ReadOptions::default())
}

/// [`read_history`] with options.
pub fn read_history_with<R: BufRead>(
    mut reader: R,
    format: Format,
    source: &str,
    options: &ReadOptions,
) -> Result<History, FormatError> {
    let mut history = match format {
        Format::Jsonl => jsonl::read(reader, source)?,
        Format::PorcupineEtcd => porcupine::read_etcd(reader, source)?,
        Format::Edn | Format::PorcupineKv => {
            let mut bytes = Vec::new();
            reader
                .read_to_end(&mut bytes)
                .map_err(|e| FormatError::Read {
                    file: source.to_string(),
                    line: bytes.iter().filter(|&&b| b == b'\n').count() + 1,
                    source: e,
                })?;
            let text =
                std::str::from_utf8(&bytes).map_err(|e| utf8_error(source, 1, &bytes, &e))?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            jepsen::read(text, source, format == Format::PorcupineKv)?
        }
    };
    split_independent(&mut history, options.independent, source)?;
    Ok(history)
}

/// Reads the history at `path`; `None` detects the format from the first 64 KiB. An
/// empty (or blank) file is an empty history in any format; detected, it reports `Jsonl`.
pub fn read_path(path: &Path, format: Option<Format>) -> Result<(History, Format), FormatError> {
    read_path_with(path, format, &ReadOptions::default())
}

/// [`read_path`] with options.
pub fn read_path_with(
    path: &Path,
    format: Option<Format>,
    options: &ReadOptions,
) -> Result<(History, Format), FormatError> {
    let io_error = |source| FormatError::Io {
        path: path.to_path_buf(),
        source,
    };
    let source = path.display().to_string();
    let file = std::fs::File::open(path).map_err(io_error)?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    if let Some(format) = format {
        return Ok((read_history_with(reader, format, &source, options)?, format));
    }
    let mut head = Vec::new();
    (&mut reader)
        .take(DETECT_BYTES)
        .read_to_end(&mut head)
        .map_err(io_error)?;
    // The sample may end inside a multi-byte character: look at the valid prefix.
    let sample = match std::str::from_utf8(&head) {
        Ok(s) => s,
        Err(e) => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
    };
    let format = match Format::detect(sample) {
        Some(format) => format,
        None if (head.len() as u64) < DETECT_BYTES
            && sample.trim().is_empty()
            && sample.len() == head.len() =>
        {
            return Ok((History::default(), Format::Jsonl));
        }
        None => {
            return Err(FormatError::Undetected {
                path: path.to_path_buf(),
            })
        }
    };
    let whole = io::Cursor::new(head).chain(reader);
    Ok((read_history_with(whole, format, &source, options)?, format))
}

/// The key of a `[key value]` tuple, if `value` is one.
fn tuple_key(value: &Value) -> Option<Key> {
    match value {
        Value::Array(items) if items.len() == 2 => match &items[0] {
            Value::Number(_) | Value::String(_) => Key::from_json(&items[0]),
            _ => None,
        },
        _ => None,
    }
}

fn looks_independent(history: &History) -> bool {
    let mut reads = 0usize;
    for e in &history.events {
        if e.key.is_some() {
            return false;
        }
        if e.process == Process::Nemesis {
            continue;
        }
        if tuple_key(&e.value).is_none() {
            return false;
        }
        if e.kind == crate::history::EventType::Invoke && e.f == "read" {
            reads += 1;
            if e.value.get(1) != Some(&Value::Null) {
                return false;
            }
        }
    }
    reads > 0
}

/// Splits `[key value]` tuples into keys and values according to `mode`.
fn split_independent(
    history: &mut History,
    mode: Independent,
    file: &str,
) -> Result<(), FormatError> {
    match mode {
        Independent::No => return Ok(()),
        Independent::Auto if !looks_independent(history) => return Ok(()),
        Independent::Auto | Independent::Yes => {}
    }
    for e in &mut history.events {
        if e.process == Process::Nemesis {
            continue;
        }
        let line = e.line.unwrap_or(e.index as usize + 1);
        if e.key.is_some() {
            return Err(FormatError::Invalid {
                file: file.to_string(),
                line,
                reason: "this operation has an explicit key, so its value cannot also be an independent `[key value]` tuple (read it without independent keys)".into(),
            });
        }
        let Some(key) = tuple_key(&e.value) else {
            return Err(FormatError::Invalid {
                file: file.to_string(),
                line,
                reason: format!(
                    "with independent keys every client operation's value must be a `[key value]` pair whose key is an integer or a string; got {}",
                    e.value
                ),
            });
        };
        let inner = match &mut e.value {
            Value::Array(items) => items.pop().unwrap_or(Value::Null),
            _ => Value::Null,
        };
        e.key = Some(key);
        e.value = inner;
    }
    Ok(())
}
