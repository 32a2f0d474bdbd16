//! The checker's one entry point: [`check`] a history's operations for [`What`] the
//! caller asks — linearizability against a model (built-in, by [`ModelKind`], or a
//! user's own [`Model`]), or an Elle-style transactional analysis ([`TxnAnalysis`]) —
//! and get an [`Analysis`].
//!
//! This is the only place that dispatches on the kind of analysis: `splitbrain check`
//! and `splitbrain test` both name what to check ([`AnalysisKind`] is what `--model`
//! accepts) and call [`check`]. It sits above `linear` and `elle`, which know nothing of
//! each other or of it; the shared result vocabulary ([`crate::Verdict`]) is below them
//! all.

use crate::elle::{self, ElleError, ElleOptions, ElleResult, TxnAnalysis};
use crate::history::Operations;
use crate::linear::{self, CheckOptions, LinearizabilityResult};
use crate::model::{Model, ModelError, ModelKind};
use crate::verdict::Verdict;
use serde_json::Value;
use std::fmt;
use std::str::FromStr;
use strum::VariantArray;

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
            Analysis::Linearizability(_) => LINEARIZABILITY,
            Analysis::Transactional(r) => r.analysis.name(),
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

/// The linearizability checker's name in results.
pub const LINEARIZABILITY: &str = "linearizability";

/// An analysis by name: a built-in model (checked for linearizability) or a
/// transactional analysis. What `splitbrain check --model` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AnalysisKind {
    Linearizability(ModelKind),
    Transactional(TxnAnalysis),
}

impl AnalysisKind {
    /// Every analysis: the built-in models in table order, then the transactional ones.
    pub fn all() -> Vec<AnalysisKind> {
        ModelKind::ALL
            .into_iter()
            .map(AnalysisKind::Linearizability)
            .chain(
                TxnAnalysis::VARIANTS
                    .iter()
                    .copied()
                    .map(AnalysisKind::Transactional),
            )
            .collect()
    }

    pub fn name(self) -> &'static str {
        match self {
            AnalysisKind::Linearizability(m) => m.name(),
            AnalysisKind::Transactional(t) => t.name(),
        }
    }

    /// The name of the checker this analysis is in results (see
    /// [`Analysis::checker_name`]), also when it could not run.
    pub fn checker_name(self) -> &'static str {
        match self {
            AnalysisKind::Linearizability(_) => LINEARIZABILITY,
            AnalysisKind::Transactional(t) => t.name(),
        }
    }
}

impl fmt::Display for AnalysisKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AnalysisKind {
    type Err = UnknownAnalysis;

    fn from_str(s: &str) -> Result<AnalysisKind, UnknownAnalysis> {
        AnalysisKind::all()
            .into_iter()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAnalysis(s.to_string()))
    }
}

/// A name that is neither a model nor a transactional analysis.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a model; use one of {known}", known = AnalysisKind::all().iter().map(|a| a.name()).collect::<Vec<_>>().join(", "))]
pub struct UnknownAnalysis(pub String);

/// A [`Model`] behind a reference, whatever its op type: how [`What::Model`] holds a
/// user's model. Every [`Model`] is one.
pub trait DynModel: Send + Sync {
    fn name(&self) -> &'static str;
    /// [`linear::check_model`] with this model.
    fn check_linearizability(
        &self,
        ops: &Operations,
        initial: Option<&Value>,
        options: &CheckOptions,
    ) -> Result<LinearizabilityResult, ModelError>;
}

impl<M: Model> DynModel for M {
    fn name(&self) -> &'static str {
        Model::name(self)
    }

    fn check_linearizability(
        &self,
        ops: &Operations,
        initial: Option<&Value>,
        options: &CheckOptions,
    ) -> Result<LinearizabilityResult, ModelError> {
        linear::check_model(ops, self, initial, options)
    }
}

/// What to check a history for.
pub enum What<'a> {
    /// Linearizability against a built-in model, from `initial` (or the model's default).
    Builtin {
        model: ModelKind,
        initial: Option<Value>,
    },
    /// Linearizability against a user's own model (decided by the generic search).
    Model {
        model: &'a dyn DynModel,
        initial: Option<Value>,
    },
    /// An Elle-style analysis of `txn` operations, against [`Options::elle`]'s
    /// consistency models.
    Transactional(TxnAnalysis),
}

impl What<'_> {
    /// The analysis named `kind`; `initial` is for a model (a transactional analysis
    /// starts from empty keys).
    pub fn named(kind: AnalysisKind, initial: Option<Value>) -> What<'static> {
        match kind {
            AnalysisKind::Linearizability(model) => What::Builtin { model, initial },
            AnalysisKind::Transactional(t) => What::Transactional(t),
        }
    }

    /// The model's or the analysis' name.
    pub fn name(&self) -> &'static str {
        match self {
            What::Builtin { model, .. } => model.name(),
            What::Model { model, .. } => model.name(),
            What::Transactional(t) => t.name(),
        }
    }
}

/// Budgets and settings of both kinds of analysis.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// For linearizability: time, memory, threads, verdict first, progress.
    pub linear: CheckOptions,
    /// For the transactional analyses: the consistency models and search budgets.
    pub elle: ElleOptions,
}

/// Why a history could not be checked (never a verdict: running out of budget is
/// `unknown`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckError {
    /// An operation or the initial value does not fit the model.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The history is not one the transactional analysis can read.
    #[error(transparent)]
    Transactional(#[from] ElleError),
}

/// Checks `ops` for `what`.
pub fn check(ops: &Operations, what: &What<'_>, options: &Options) -> Result<Analysis, CheckError> {
    Ok(match what {
        What::Builtin { model, initial } => Analysis::Linearizability(linear::check(
            ops,
            *model,
            initial.as_ref(),
            &options.linear,
        )?),
        What::Model { model, initial } => Analysis::Linearizability(model.check_linearizability(
            ops,
            initial.as_ref(),
            &options.linear,
        )?),
        What::Transactional(TxnAnalysis::ListAppend) => {
            Analysis::Transactional(elle::check_list_append_with(ops, &options.elle)?)
        }
        What::Transactional(TxnAnalysis::RwRegister) => {
            Analysis::Transactional(elle::check_rw_register_with(ops, &options.elle)?)
        }
    })
}
