//! Real histories recorded by other tools (`shared/fixtures/`): every row of
//! `EXPECTED.tsv`, read with its format, checked with its model and initial value, must
//! give the verdict those tools' own test suites assert.
//!
//! The fixtures live beside the repository (`../shared/fixtures` from the workspace root,
//! as in CI). A missing folder fails the test: a silently skipped reference suite is
//! worse than none.

use serde_json::Value;
use splitbrain_checker::formats::{read_path, Format};
use splitbrain_checker::linear::{self, CheckOptions, Verdict};
use splitbrain_checker::model::ModelKind;
use std::path::PathBuf;
use std::str::FromStr;

/// The fixtures folder: beside the workspace (`<workspace>/../shared/fixtures`), or
/// `../shared/fixtures` from the current directory.
fn fixtures_dir() -> PathBuf {
    let candidates = [
        PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/fixtures"
        )),
        PathBuf::from("../shared/fixtures"),
        PathBuf::from("../../shared/fixtures"),
    ];
    for dir in &candidates {
        if dir.join("EXPECTED.tsv").is_file() {
            return dir.clone();
        }
    }
    panic!(
        "fixtures not found: looked for EXPECTED.tsv in {}; the shared/ folder must sit beside the repository",
        candidates
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The `initial` column: `nil` is null, `free` the free mutex, `""` the empty string,
/// anything else JSON.
fn parse_initial(text: &str) -> Value {
    match text {
        "nil" => Value::Null,
        "free" => Value::String("free".into()),
        "\"\"" => Value::String(String::new()),
        json => serde_json::from_str(json)
            .unwrap_or_else(|e| panic!("EXPECTED.tsv: initial `{json}` is not JSON: {e}")),
    }
}

/// One row of `EXPECTED.tsv`.
struct Row {
    path: String,
    format: Format,
    model: ModelKind,
    initial: Value,
    expected: Verdict,
}

fn rows() -> (PathBuf, Vec<Row>) {
    let dir = fixtures_dir();
    let text = std::fs::read_to_string(dir.join("EXPECTED.tsv"))
        .unwrap_or_else(|e| panic!("reading EXPECTED.tsv: {e}"));
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let [path, format, model, initial, expected] = cols.as_slice() else {
            panic!("EXPECTED.tsv line {}: expected 5 columns: {line}", n + 1);
        };
        out.push(Row {
            path: path.to_string(),
            format: Format::from_str(format)
                .unwrap_or_else(|e| panic!("EXPECTED.tsv line {}: {e}", n + 1)),
            model: ModelKind::from_str(model)
                .unwrap_or_else(|e| panic!("EXPECTED.tsv line {}: {e}", n + 1)),
            initial: parse_initial(initial),
            expected: match *expected {
                "valid" => Verdict::Valid,
                "invalid" => Verdict::Invalid,
                other => panic!("EXPECTED.tsv line {}: verdict `{other}`", n + 1),
            },
        });
    }
    (dir, out)
}

#[test]
fn every_fixture_gives_its_expected_verdict() {
    let (dir, rows) = rows();
    assert!(
        rows.len() >= 48,
        "EXPECTED.tsv lists only {} files",
        rows.len()
    );
    let mut failures = Vec::new();
    for row in &rows {
        let path = dir.join(&row.path);
        let (history, _) =
            read_path(&path, Some(row.format)).unwrap_or_else(|e| panic!("{}: {e}", row.path));
        let ops = history
            .pair()
            .unwrap_or_else(|e| panic!("{}: {e}", row.path));
        let result = linear::check(
            &ops,
            row.model,
            Some(&row.initial),
            &CheckOptions::default(),
        )
        .unwrap_or_else(|e| panic!("{}: {e}", row.path));
        if result.verdict != row.expected {
            failures.push(format!(
                "{}: expected {:?}, got {:?} ({})",
                row.path,
                row.expected,
                result.verdict,
                result
                    .keys
                    .iter()
                    .filter_map(|k| k.unknown_reason.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if result.verdict == Verdict::Invalid {
            let witnessed = result
                .keys
                .iter()
                .filter(|k| k.verdict == Verdict::Invalid)
                .all(|k| k.witness.is_some());
            assert!(witnessed, "{}: invalid key without a witness", row.path);
        }
    }
    assert!(
        failures.is_empty(),
        "fixture verdicts differ:\n{}",
        failures.join("\n")
    );
}
