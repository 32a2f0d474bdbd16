//! The one result vocabulary: a [`Verdict`], and an [`Analysis`] (what a consistency
//! check concluded, linearizability or transactional).
//!
//! Everything downstream — `splitbrain check`, `splitbrain test`, the reports and the
//! `results.json` they write and read back — uses these types, so a verdict means the
//! same thing, and is spelled the same way, wherever it appears. They serialise both
//! ways: the JSON written is the JSON read.

use crate::elle::ElleResult;
use crate::linear::LinearizabilityResult;
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

/// What one consistency check of a history concluded: the linearizability checker's
/// result, or the transactional (Elle-style) analysis'.
// There is one `Analysis` per history checked, never a collection of them, so the
// variants' difference in size costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Analysis {
    Linearizability(LinearizabilityResult),
    /// list-append or rw-register.
    Transactional(ElleResult),
}

impl Analysis {
    /// The analysis' verdict. The transactional analysis has no budget that leaves it
    /// undecided: it is valid exactly when no checked model is ruled out.
    pub fn verdict(&self) -> Verdict {
        match self {
            Analysis::Linearizability(r) => r.verdict,
            Analysis::Transactional(r) => r.verdict(),
        }
    }

    /// The checker's name in `results.json`'s `checkers`: `linearizability`, or the
    /// transactional analysis' own name, `list-append` or `rw-register`. (Files written
    /// before rw-register had its name call it `list-append`; the reports crate reads
    /// them.)
    pub fn checker_name(&self) -> &'static str {
        match self {
            Analysis::Linearizability(_) => "linearizability",
            Analysis::Transactional(r) if r.analysis == "rw-register" => "rw-register",
            Analysis::Transactional(_) => "list-append",
        }
    }

    /// One line of plain text: what was checked and what was found.
    pub fn summary(&self) -> String {
        match self {
            Analysis::Linearizability(r) => r.summary(),
            Analysis::Transactional(r) => r.summary(),
        }
    }
}
