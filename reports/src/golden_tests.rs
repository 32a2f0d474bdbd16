//! The golden `results.json`: a small fixed history checked by the real checkers,
//! written by [`crate::store::write_run_outputs`] and compared byte for byte with
//! `tests/golden/results.json`, so that any change to the on-disk schema (a field
//! renamed, moved, added or formatted differently) fails here and is a decision, not an
//! accident. The measured times are fixed before writing.
//!
//! To accept a deliberate schema change, rerun with `SPLITBRAIN_UPDATE_GOLDEN=1` and
//! review the diff of the golden file.

use crate::results::{CheckerResult, Results, Verdict};
use crate::store::{parse_results, write_run_outputs, RESULTS_JSON};
use crate::testutil::list_append_results;
use splitbrain_checker::formats::{self, Format};
use splitbrain_checker::history::PairedHistory;
use splitbrain_checker::linear;
use splitbrain_checker::model::ModelKind;
use std::fs;
use std::path::Path;

const GOLDEN_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

#[test]
fn results_json_matches_the_golden_file() {
    let dir = Path::new(GOLDEN_DIR);
    let text = fs::read_to_string(dir.join("history.jsonl")).unwrap();
    let history = formats::read_history(text.as_bytes(), Format::Jsonl, "history.jsonl").unwrap();
    let history = PairedHistory::new(history);
    let ops = history.operations().unwrap();

    let mut r = Results::new("golden", "2026-12-04T06:00:00Z", &history);
    r.duration_s = 9.5;
    r.seed = Some(7);
    r.reproduce = Some("splitbrain test --name golden --seed 7".into());
    r.config = serde_json::json!({"name": "golden", "workload": "register", "seed": 7});
    r.node_logs = vec!["nodes/n1/node.log".into()];
    r.notes = vec!["a note".into()];

    let mut lin = linear::check(
        &ops,
        ModelKind::Register,
        None,
        &linear::CheckOptions::default(),
    )
    .unwrap();
    lin.elapsed_ms = 1.5;
    for k in &mut lin.keys {
        k.elapsed_ms = 0.5;
    }
    r.set_linearizability(&lin);
    assert_eq!(r.verdict, Verdict::Invalid);

    // The transactional part of the schema, from the crate's list-append sample (its
    // time is fixed there); its checker entry is given here, so the file pins the schema
    // rather than the summary's wording.
    let (la, _) = list_append_results();
    r.list_append = la.list_append.clone();
    r.checkers.push(CheckerResult {
        name: "list-append".into(),
        verdict: Verdict::Invalid,
        summary: "list-append anomalies".into(),
    });
    r.settle_verdict();

    let out = std::env::temp_dir().join(format!("splitbrain-golden-{}", std::process::id()));
    let _ = fs::remove_dir_all(&out);
    fs::create_dir_all(&out).unwrap();
    write_run_outputs(&out, &r, &history, Some(&ops)).unwrap();
    let written = fs::read_to_string(out.join(RESULTS_JSON)).unwrap();
    let back = parse_results(&out.join(RESULTS_JSON), written.as_bytes()).unwrap();
    let _ = fs::remove_dir_all(&out);
    assert_eq!(
        back, r,
        "results.json does not read back to what was written"
    );

    let golden = dir.join("results.json");
    if std::env::var_os("SPLITBRAIN_UPDATE_GOLDEN").is_some() {
        fs::write(&golden, &written).unwrap();
        return;
    }
    let expected = fs::read_to_string(&golden).unwrap();
    assert!(
        written == expected,
        "results.json differs from {}; if the schema change is deliberate, rerun with \
         SPLITBRAIN_UPDATE_GOLDEN=1 and review the diff\n--- written ---\n{written}",
        golden.display()
    );
}
