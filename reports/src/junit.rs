//! `junit.xml`: the run's verdicts in the format every CI system shows natively.
//!
//! One test suite per run with one test case per checker (`linearizability`,
//! `convergence`, …); a failing case carries the witness summary, so the CI page says
//! which key and operation broke without opening the report. For `test-all`,
//! [`junit_for_runs`] makes one suite with one test case per run.
//!
//! `unknown` is reported as an *error* (the check did not finish), `invalid` as a
//! *failure*. No timestamps are written, so the file is deterministic.

use crate::results::{CheckerResult, Results, Verdict};
use crate::ReportError;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// `junit.xml` for one run.
pub fn junit_for_run(results: &Results) -> Result<String, ReportError> {
    let mut report = Report::new("splitbrain");
    let mut suite = TestSuite::new(results.name.as_str());
    let cases: Vec<TestCase> = if results.checkers.is_empty() {
        // Nothing was checked: still say so, rather than an empty (green) suite.
        vec![case(
            &results.name,
            "splitbrain",
            Verdict::Unknown,
            "no checker ran".into(),
            String::new(),
        )]
    } else {
        results
            .checkers
            .iter()
            .map(|c| {
                case(
                    &c.name,
                    &results.name,
                    c.verdict,
                    c.summary.clone(),
                    details(results, c),
                )
            })
            .collect()
    };
    suite.add_test_cases(cases);
    suite.set_time(duration(results.duration_s));
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| ReportError::Junit(e.to_string()))
}

/// `junit.xml` for several runs (`test-all`): one test case per run.
pub fn junit_for_runs(runs: &[&Results]) -> Result<String, ReportError> {
    let mut report = Report::new("splitbrain");
    let mut suite = TestSuite::new("splitbrain test-all");
    for r in runs {
        let mut text = String::new();
        for c in &r.checkers {
            text.push_str(&format!("{}: {} — {}\n", c.name, c.verdict, c.summary));
            text.push_str(&details(r, c));
        }
        if let Some(cmd) = &r.reproduce {
            text.push_str(&format!("reproduce: {cmd}\n"));
        }
        let mut tc = case(&r.name, "test-all", r.verdict, r.headline(), text);
        tc.set_time(duration(r.duration_s));
        suite.add_test_case(tc);
    }
    report.add_test_suite(suite);
    report
        .to_string()
        .map_err(|e| ReportError::Junit(e.to_string()))
}

fn duration(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or_default()
}

fn case(name: &str, classname: &str, verdict: Verdict, message: String, text: String) -> TestCase {
    let status = match verdict {
        Verdict::Valid => TestCaseStatus::success(),
        Verdict::Invalid | Verdict::Unknown => {
            let kind = if verdict == Verdict::Invalid {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(message);
            s.set_type(verdict.as_str());
            if !text.is_empty() {
                s.set_description(text);
            }
            s
        }
    };
    let mut tc = TestCase::new(name, status);
    tc.set_classname(classname);
    tc
}

/// The failure body of a checker: witness summaries for linearizability, node states for
/// convergence.
fn details(results: &Results, checker: &CheckerResult) -> String {
    let mut out = String::new();
    if checker.verdict == Verdict::Valid {
        return out;
    }
    match checker.name.as_str() {
        "linearizability" => {
            if let Some(l) = &results.linearizability {
                for k in &l.keys {
                    if let Some(w) = &k.witness {
                        out.push_str(&w.summary());
                        out.push('\n');
                        if !w.explanation.is_empty() {
                            out.push_str(&format!("  {}\n", w.explanation));
                        }
                    } else if let Some(reason) = &k.unknown_reason {
                        let key = k
                            .key
                            .as_ref()
                            .map_or("(single register)".into(), |k| k.to_string());
                        out.push_str(&format!("key {key}: unknown: {reason}\n"));
                    }
                }
            }
        }
        "convergence" => {
            if let Some(c) = &results.convergence {
                out.push_str(&c.explanation);
                out.push('\n');
                for n in &c.nodes {
                    out.push_str(&format!(
                        "  {}: applied {:?}, digest {}, reachable {}\n",
                        n.name,
                        n.applied_index,
                        n.digest.as_deref().unwrap_or("-"),
                        n.reachable
                    ));
                }
            }
        }
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{invalid_results, valid_results};

    #[test]
    fn one_case_per_checker_with_witness_in_failure() {
        let (r, _) = invalid_results();
        let xml = junit_for_run(&r).unwrap();
        assert_eq!(xml.matches("<testcase").count(), r.checkers.len());
        assert!(xml.contains("<failure"), "{xml}");
        assert!(xml.contains("cannot be linearized"), "{xml}");
        assert_eq!(xml, junit_for_run(&r).unwrap(), "deterministic");
    }

    #[test]
    fn valid_run_has_no_failure_and_runs_are_cases() {
        let (v, _) = valid_results();
        let (i, _) = invalid_results();
        let xml = junit_for_run(&v).unwrap();
        assert!(
            !xml.contains("<failure") && !xml.contains("<error"),
            "{xml}"
        );
        let all = junit_for_runs(&[&v, &i]).unwrap();
        assert_eq!(all.matches("<testcase").count(), 2);
        assert_eq!(all.matches("<failure").count(), 1);
    }
}
