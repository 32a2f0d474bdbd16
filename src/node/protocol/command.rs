//! The client API's commands: what a client asks the key-value store to do. The node
//! also writes them, in this form, into its log entries, so their serde form is both
//! wire and disk format.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The function of one transaction micro-op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MicroFn {
    /// Read the key; the reply carries the value read (null when absent).
    #[serde(rename = "r")]
    Read,
    /// Write the value to the key.
    #[serde(rename = "w")]
    Write,
    /// Append the value to the list at the key (absent: a new one-element list).
    #[serde(rename = "append")]
    Append,
}

/// One micro-op of a transaction, `["r", "k", null]`, `["w", "k", V]` or
/// `["append", "k", V]` on the wire (Elle's notation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MicroOp(pub MicroFn, pub String, pub Value);

/// A command carried in a log entry (or, for `Get` in `log` read mode, a read that goes
/// through the log to be linearizable).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Command {
    Get { key: String },
    Put { key: String, value: Value },
    Cas { key: String, from: Value, to: Value },
    Append { key: String, value: Value },
    Txn { ops: Vec<MicroOp> },
}

impl Command {
    /// Whether the command only reads.
    pub fn is_read_only(&self) -> bool {
        match self {
            Command::Get { .. } => true,
            Command::Txn { ops } => ops.iter().all(|op| op.0 == MicroFn::Read),
            _ => false,
        }
    }
}
