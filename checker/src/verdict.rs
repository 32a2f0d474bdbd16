//! The one result vocabulary every analysis shares: a [`Verdict`]. (What a whole check
//! concluded, [`crate::Analysis`], is the entry point's, above the analyses.)
//!
//! Everything downstream — `splitbrain check`, `splitbrain test`, the reports and the
//! `results.json` they write and read back — uses these types, so a verdict means the
//! same thing, and is spelled the same way, wherever it appears. They serialise both
//! ways: the JSON written is the JSON read.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A consistency verdict (Jepsen's tri-state). Composition: invalid beats unknown beats
/// valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    Invalid,
    /// A time or memory budget ran out before the check was decided, or nothing was
    /// checked.
    Unknown,
}

impl Verdict {
    /// Jepsen's exit codes: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Valid => 0,
            Verdict::Invalid => 1,
            Verdict::Unknown => 2,
        }
    }

    /// Combines the verdicts of independent parts: invalid beats unknown beats valid.
    pub fn combine(self, other: Verdict) -> Verdict {
        match (self, other) {
            (Verdict::Invalid, _) | (_, Verdict::Invalid) => Verdict::Invalid,
            (Verdict::Unknown, _) | (_, Verdict::Unknown) => Verdict::Unknown,
            _ => Verdict::Valid,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Invalid => "invalid",
            Verdict::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
