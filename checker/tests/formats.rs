//! The history readers and writer against real fixtures, malformed input of every kind,
//! and the independent-key rule.

use serde_json::{json, Value};
use splitbrain_checker::formats::{
    read_history, read_history_with, read_jsonl_until_error, read_path, write_jsonl, Format,
    FormatError, Independent, JsonlWriter, ReadOptions,
};
use splitbrain_checker::{Event, EventType, History, Key, Outcome, Process};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// `shared/fixtures`, beside the workspace (as in CI: `<clone>/../shared`).
fn fixtures_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        manifest.join("../../shared/fixtures"),
        manifest.join("../shared/fixtures"),
    ];
    for candidate in &candidates {
        if candidate.join("EXPECTED.tsv").is_file() {
            return candidate.clone();
        }
    }
    panic!("fixtures not found; looked in {candidates:?}");
}

/// (path, format) for every row of EXPECTED.tsv.
fn expected_fixtures() -> Vec<(PathBuf, Format)> {
    let dir = fixtures_dir();
    let table = std::fs::read_to_string(dir.join("EXPECTED.tsv")).expect("EXPECTED.tsv");
    let rows: Vec<(PathBuf, Format)> = table
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let format: Format = cols[1].parse().expect("format column");
            (dir.join(cols[0]), format)
        })
        .collect();
    assert!(
        rows.len() >= 40,
        "EXPECTED.tsv has only {} rows",
        rows.len()
    );
    rows
}

fn fixture(rel: &str) -> History {
    let path = fixtures_dir().join(rel);
    match read_path(&path, None) {
        Ok((history, _)) => history,
        Err(e) => panic!("{rel}: {e}"),
    }
}

fn read_str(text: &str, format: Format, source: &str) -> Result<History, FormatError> {
    read_history(Cursor::new(text.as_bytes()), format, source)
}

fn read_bytes(bytes: &[u8], format: Format, source: &str) -> Result<History, FormatError> {
    read_history(Cursor::new(bytes), format, source)
}

/// The error a malformed input must produce, as text.
fn error_of(result: Result<History, FormatError>) -> (String, Option<usize>) {
    match result {
        Ok(h) => panic!("expected an error, read {} events", h.events.len()),
        Err(e) => (e.to_string(), e.line()),
    }
}

fn assert_error(result: Result<History, FormatError>, source: &str, line: usize, reason: &str) {
    let (text, at) = error_of(result);
    assert_eq!(at, Some(line), "wrong line in: {text}");
    assert!(text.contains(source), "no source name in: {text}");
    assert!(text.contains(&format!("line {line}")), "no line in: {text}");
    assert!(text.contains(reason), "expected {reason:?} in: {text}");
}

#[test]
fn every_fixture_parses_and_pairs_in_its_listed_format() {
    for (path, format) in expected_fixtures() {
        let (history, used) = match read_path(&path, Some(format)) {
            Ok(read) => read,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        assert_eq!(used, format);
        for (i, e) in history.events.iter().enumerate() {
            assert_eq!(
                e.index,
                i as u64,
                "{}: indexes must be dense",
                path.display()
            );
            assert!(
                e.line.is_some(),
                "{}: event {i} has no line",
                path.display()
            );
        }
        let empty = std::fs::metadata(&path)
            .map(|m| m.len() == 0)
            .unwrap_or(false);
        assert_eq!(history.events.is_empty(), empty, "{}", path.display());
        if let Err(e) = history.pair() {
            panic!("{}: {e}", path.display());
        }
    }
}

#[test]
fn auto_detection_picks_the_listed_format() {
    for (path, format) in expected_fixtures() {
        let bytes = std::fs::read(&path).expect("fixture");
        let sample = String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]);
        let (history, detected) = read_path(&path, None).expect("auto-detected read");
        if bytes.is_empty() {
            // An empty file has no format; it is an empty history whatever it is.
            assert_eq!(Format::detect(&sample), None);
            assert!(history.events.is_empty());
        } else {
            assert_eq!(Format::detect(&sample), Some(format), "{}", path.display());
            assert_eq!(detected, format, "{}", path.display());
        }
    }
}

#[test]
fn knossos_vector_with_comments_and_spanning_maps() {
    let h = fixture("knossos/multi-register/good/multi-register.edn");
    let first = &h.events[0];
    assert_eq!(first.line, Some(2), "line 1 is a comment");
    assert_eq!(first.value, json!([["read", "x", null]]));
    assert_eq!(first.kind, EventType::Invoke);
    assert_eq!(first.f, "txn");
    assert_eq!(first.process, Process::Client(3));
    assert_eq!(first.time, 7686455705);
    // Real-time order is file order even where :time goes backwards.
    assert_eq!(h.events[1].time, 7686334122);
    assert_eq!(h.events[1].index, 1);
    assert_eq!(h.events[1].line, Some(7));
    let last = h.events.last().expect("events");
    assert_eq!(last.process, Process::Nemesis);
    assert_eq!(last.value, json!("fully connected"));
}

#[test]
fn edn_errors_indexes_and_nemesis() {
    let h = fixture("knossos/mutex/bad/etcd.edn");
    assert_eq!(h.events[1].error.as_deref(), Some("not-held"));
    let last = h.events.last().expect("events");
    assert_eq!(
        last.error.as_deref(),
        Some(r#"[:not-found "etcdserver: requested lease not found"]"#)
    );
    assert_eq!(last.index, 1134);

    let h = fixture("knossos/cas-register/bad/immediate-failure.edn");
    assert_eq!(
        h.events[2].error.as_deref(),
        Some("[:temporarily-unavailable nil]")
    );

    let h = fixture("knossos/cas-register/bad/cas-failure.edn");
    let nemesis: Vec<&Event> = h
        .events
        .iter()
        .filter(|e| e.process == Process::Nemesis)
        .collect();
    assert_eq!(nemesis.len(), 8);
    assert!(nemesis[5]
        .value
        .as_str()
        .is_some_and(|v| v.starts_with("Cut off")));
    // A plain cas-register history is never taken for an independent one.
    assert!(h.events.iter().all(|e| e.key.is_none()));

    // A list instead of a vector, with comments between the maps.
    let h = fixture("knossos/cas-register/bad/rethink-fail-minimal.edn");
    assert_eq!(h.events.len(), 8);
    assert_eq!(h.events[2].line, Some(4));
}

#[test]
fn porcupine_etcd_tabs_spaces_and_timeouts() {
    let h = fixture("porcupine/etcd/etcd_000.log");
    assert_eq!(h.events[0].process, Process::Client(0));
    assert_eq!(h.events[0].kind, EventType::Invoke);
    assert_eq!(h.events[0].f, "read");
    assert_eq!(h.events[0].value, Value::Null);
    assert_eq!(h.events[18].value, json!([3, 0]));
    assert_eq!(h.events[18].line, Some(19));

    let spaced = fixture("porcupine/etcd/etcd_100.log");
    assert_eq!(spaced.events[2].f, "cas");
    assert_eq!(spaced.events[2].value, json!([1, 2]));

    // Timed-out completions keep the invocation's value and say why.
    let mut timed_out = 0;
    for rel in ["porcupine/etcd/etcd_000.log", "porcupine/etcd/etcd_100.log"] {
        let h = fixture(rel);
        for e in &h.events {
            if e.error.as_deref() == Some("timed-out") {
                timed_out += 1;
                assert!(matches!(e.kind, EventType::Info | EventType::Fail));
                assert_ne!(e.value, json!("timed-out"));
            }
        }
        let ops = h.pair().expect("pairs");
        for op in ops.ops.iter().filter(|o| o.outcome == Outcome::Info) {
            assert_eq!(op.output, op.input, "{op}");
        }
    }
    assert!(timed_out > 0, "the fixtures have timed-out operations");

    let text = "INFO  jepsen.util - 4\t:invoke\t:write\t3\nINFO  jepsen.util - 4\t:info\t:write\t:timed-out\n";
    let h = read_str(text, Format::PorcupineEtcd, "t.log").unwrap();
    assert_eq!(h.events[1].value, json!(3));
    assert_eq!(h.events[1].error.as_deref(), Some("timed-out"));
    let ops = h.pair().unwrap();
    assert_eq!(ops.ops[0].input, json!(3));
}

#[test]
fn porcupine_kv_has_explicit_string_keys() {
    let h = fixture("porcupine/kv/c01-ok.txt");
    assert!(h.events.iter().all(|e| matches!(e.key, Some(Key::Str(_)))));
    assert!(h
        .events
        .iter()
        .all(|e| ["get", "put", "append"].contains(&e.f.as_str())));
    assert_eq!(h.events[0].value, json!("x 0 0 y"));

    let text = "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n{:process 0, :type :ok, :f :get, :value \"\"}\n";
    assert_error(
        read_str(text, Format::PorcupineKv, "kv.txt"),
        "kv.txt",
        2,
        "`:key` is missing",
    );
    // As plain EDN the same lines are fine: the key is optional there.
    assert!(read_str(text, Format::Edn, "kv.txt").is_ok());
}

#[test]
fn jsonl_round_trip_through_the_writer() {
    let h = fixture("knossos/mutex/bad/etcd.edn");
    let mut out = Vec::new();
    write_jsonl(&mut out, &h).unwrap();
    let back = read_bytes(&out, Format::Jsonl, "rt.jsonl").unwrap();
    assert_eq!(back.events.len(), h.events.len());
    for (i, (a, b)) in h.events.iter().zip(&back.events).enumerate() {
        assert_eq!(b.line, Some(i + 1));
        let mut a = a.clone();
        a.line = b.line;
        assert_eq!(&a, b);
    }

    // The streaming writer produces the same bytes, one flushed line per event.
    let mut writer = JsonlWriter::new(Vec::new());
    for e in &h.events {
        writer.append(e).unwrap();
    }
    assert_eq!(writer.get_ref().len(), out.len());
    assert_eq!(writer.into_inner(), out);
}

#[test]
fn jsonl_optional_fields_blank_lines_and_extras() {
    let text = concat!(
        "\u{feff}{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"key\":\"k3\",\"value\":5,\"extra\":{\"x\":1}}\r\n",
        "\n",
        "   \n",
        "{\"index\":1,\"time\":2400,\"process\":0,\"type\":\"ok\",\"f\":\"write\",\"key\":\"k3\",\"value\":5,\"node\":\"n1\"}\n",
        "{\"process\":\"nemesis\",\"type\":\"info\",\"f\":\"start-partition\",\"value\":{\"n1\":[\"n3\"]},\"error\":null}\n",
        "{\"process\":1,\"type\":\"invoke\",\"f\":\"read\",\"key\":7}",
    );
    let h = read_str(text, Format::Jsonl, "h.jsonl").unwrap();
    assert_eq!(h.events.len(), 4);
    assert_eq!(h.events[0].index, 0);
    assert_eq!(h.events[0].time, 0);
    assert_eq!(h.events[0].line, Some(1));
    assert_eq!(h.events[1].time, 2400);
    assert_eq!(h.events[1].line, Some(4));
    assert_eq!(h.events[1].node.as_deref(), Some("n1"));
    assert_eq!(h.events[2].process, Process::Nemesis);
    assert_eq!(h.events[2].index, 2);
    assert_eq!(h.events[3].key, Some(Key::Int(7)));
    assert_eq!(h.events[3].value, Value::Null);
    assert_eq!(h.events[3].line, Some(6));
    // Keys that are not event fields are kept, as the event's extra fields.
    assert_eq!(
        Value::Object(h.events[0].extra.clone()),
        json!({"extra": {"x": 1}})
    );
    assert!(h.events[1..].iter().all(|e| e.extra.is_empty()));
}

#[test]
fn jsonl_extra_fields_are_kept_but_event_fields_are_still_checked() {
    let h = read_str(
        r#"{"process":0,"type":"ok","f":"read","value":3,"revision":12,"leader":"n2","late":null}"#,
        Format::Jsonl,
        "h.jsonl",
    )
    .unwrap();
    assert_eq!(
        Value::Object(h.events[0].extra.clone()),
        json!({"revision": 12, "leader": "n2", "late": null})
    );
    assert_eq!(h.events[0].value, json!(3));
    // An event field given twice, or of the wrong type, is an error as before; an extra
    // field is never taken for an event field.
    assert_error(
        read_str(
            r#"{"process":0,"type":"ok","f":"read","f":"write","revision":1}"#,
            Format::Jsonl,
            "h.jsonl",
        ),
        "h.jsonl",
        1,
        "duplicate field `f`",
    );
    assert_error(
        read_str(
            r#"{"process":0,"type":"ok","f":"read","node":7,"revision":1}"#,
            Format::Jsonl,
            "h.jsonl",
        ),
        "h.jsonl",
        1,
        "`node` must be a string; got 7",
    );
}

#[test]
fn jsonl_malformed_input() {
    const OK: &str = r#"{"index":0,"time":1,"process":0,"type":"invoke","f":"read","value":null}"#;
    let with = |second: &str| format!("{OK}\n{second}\n");

    let truncated = with(r#"{"index":1,"ti"#);
    assert_error(
        read_str(&truncated, Format::Jsonl, "history.jsonl"),
        "history.jsonl",
        2,
        "not valid JSON",
    );
    let (text, _) = error_of(read_str(&truncated, Format::Jsonl, "history.jsonl"));
    assert!(text.contains("truncated"), "{text}");

    let bad_type = with(r#"{"index":1,"process":0,"type":"okay","f":"read","value":1}"#);
    assert_error(
        read_str(&bad_type, Format::Jsonl, "history.jsonl"),
        "history.jsonl",
        2,
        "`type` must be one of invoke, ok, fail, info; got \"okay\"",
    );
    assert_error(
        read_str(
            &with(r#"{"index":1,"type":"ok","f":"read","value":1}"#),
            Format::Jsonl,
            "history.jsonl",
        ),
        "history.jsonl",
        2,
        "`process` is missing",
    );
    assert_error(
        read_str(
            &with(r#"{"process":0,"type":"ok","value":1}"#),
            Format::Jsonl,
            "h.jsonl",
        ),
        "h.jsonl",
        2,
        "`f` is missing",
    );
    assert_error(
        read_str(
            &with(r#"{"process":-1,"type":"ok","f":"read"}"#),
            Format::Jsonl,
            "h.jsonl",
        ),
        "h.jsonl",
        2,
        "`process` must be a non-negative integer or \"nemesis\"; got -1",
    );
    assert_error(
        read_str(
            &with(r#"{"process":"n1","type":"ok","f":"read"}"#),
            Format::Jsonl,
            "h.jsonl",
        ),
        "h.jsonl",
        2,
        "got \"n1\"",
    );
    assert_error(
        read_str(
            &with(r#"{"process":0,"type":"ok","f":"read","time":"soon"}"#),
            Format::Jsonl,
            "h.jsonl",
        ),
        "h.jsonl",
        2,
        "`time` must be a non-negative integer",
    );
    assert_error(
        read_str(
            &with(r#"{"process":0,"type":"ok","f":"read","key":[1]}"#),
            Format::Jsonl,
            "h.jsonl",
        ),
        "h.jsonl",
        2,
        "`key` must be an integer or a string; got [1]",
    );
    assert_error(
        read_str(&with("[1, 2]"), Format::Jsonl, "h.jsonl"),
        "h.jsonl",
        2,
        "expected a JSON object",
    );
    assert_error(
        read_str(
            &with(r#"{"index":5,"process":0,"type":"ok","f":"read"}"#),
            Format::Jsonl,
            "h.jsonl",
        ),
        "h.jsonl",
        2,
        "`index` must be 1 here",
    );
    assert_error(
        read_str(&with("}"), Format::Jsonl, "h.jsonl"),
        "h.jsonl",
        2,
        "not valid JSON",
    );

    let mut garbage = format!("{OK}\n").into_bytes();
    garbage.extend_from_slice(b"{\"process\":0,\"f\":\"r\xff\xfe\"}\n");
    assert_error(
        read_bytes(&garbage, Format::Jsonl, "h.jsonl"),
        "h.jsonl",
        2,
        "not valid UTF-8",
    );
    let (text, _) = error_of(read_bytes(&garbage, Format::Jsonl, "h.jsonl"));
    assert!(text.contains("column 20"), "{text}");
}

#[test]
fn edn_malformed_input() {
    const OK: &str = "{:process 0, :type :invoke, :f :read, :value nil}";

    assert_error(
        read_str(&format!("[{OK}\n {OK}\n"), Format::Edn, "history.edn"),
        "history.edn",
        1,
        "unterminated vector",
    );
    assert_error(
        read_str(&format!("{OK}\n{OK}}}\n"), Format::Edn, "history.edn"),
        "history.edn",
        2,
        "unmatched `}`",
    );
    assert_error(
        read_str(
            &format!("{OK}\n{{:process 0, :type :okay, :f :read}}\n"),
            Format::Edn,
            "history.edn",
        ),
        "history.edn",
        2,
        "`:type` must be one of :invoke, :ok, :fail, :info; got :okay",
    );
    assert_error(
        read_str(
            &format!("[{OK}\n\n {{:type :ok, :f :read, :value 1}}]"),
            Format::Edn,
            "h.edn",
        ),
        "h.edn",
        3,
        "`:process` is missing",
    );
    assert_error(
        read_str(
            &format!("{OK}\n{{:process 0, :type :ok, :value 1}}"),
            Format::Edn,
            "h.edn",
        ),
        "h.edn",
        2,
        "`:f` is missing",
    );
    assert_error(
        read_str(&format!("{OK}\n{{:process 0, :ty"), Format::Edn, "h.edn"),
        "h.edn",
        2,
        "unterminated map",
    );
    assert_error(
        read_str(&format!("{OK}\n{{:process 0 :type}}"), Format::Edn, "h.edn"),
        "h.edn",
        2,
        "odd number of forms",
    );
    assert_error(
        read_str(&format!("{OK}\n[1 2]"), Format::Edn, "h.edn"),
        "h.edn",
        2,
        "expected an operation map",
    );
    assert_error(
        read_str(
            &format!("{OK}\n{{:process 0, :type :ok, :f :read, :value \"open}}\n"),
            Format::Edn,
            "h.edn",
        ),
        "h.edn",
        2,
        "unterminated string",
    );
    assert_error(
        read_str(
            "{:process 0, :type :invoke, :f :read, :index 3}\n{:process 0, :type :ok, :f :read, :index 3}",
            Format::Edn,
            "h.edn",
        ),
        "h.edn",
        2,
        "does not follow the index 3 on line 1",
    );

    let mut garbage = format!("{OK}\n").into_bytes();
    garbage.extend_from_slice(b"{:process \x80}\n");
    assert_error(
        read_bytes(&garbage, Format::Edn, "h.edn"),
        "h.edn",
        2,
        "not valid UTF-8",
    );
    // Column numbers survive into the message.
    let (text, _) = error_of(read_str(&format!("{OK}\n  ]"), Format::Edn, "h.edn"));
    assert!(text.contains("line 2, column 3"), "{text}");
}

#[test]
fn edn_sparse_indexes_are_renumbered_in_order() {
    let text = "{:process 0, :type :invoke, :f :read, :index 10}\n{:process 0, :type :ok, :f :read, :value 1, :index 12}";
    let h = read_str(text, Format::Edn, "sub.edn").unwrap();
    assert_eq!(
        h.events.iter().map(|e| e.index).collect::<Vec<_>>(),
        vec![0, 1]
    );
}

#[test]
fn porcupine_etcd_malformed_input() {
    const OK: &str = "INFO  jepsen.util - 0\t:invoke\t:read\tnil";
    assert_error(
        read_str(
            &format!("{OK}\nWARN  something else\n"),
            Format::PorcupineEtcd,
            "etcd.log",
        ),
        "etcd.log",
        2,
        "expected a Jepsen log line",
    );
    assert_error(
        read_str(
            &format!("{OK}\n\nINFO  jepsen.util - 0\t:okay\t:read\t3\n"),
            Format::PorcupineEtcd,
            "etcd.log",
        ),
        "etcd.log",
        3,
        "the type must be one of :invoke, :ok, :fail, :info; got \":okay\"",
    );
    assert_error(
        read_str(
            &format!("{OK}\nINFO  jepsen.util - 0\t:ok\t:read\n"),
            Format::PorcupineEtcd,
            "etcd.log",
        ),
        "etcd.log",
        2,
        "ends before the value",
    );
    assert_error(
        read_str(
            &format!("{OK}\nINFO  jepsen.util - 2\t:invoke\t:cas\t[3 0\n"),
            Format::PorcupineEtcd,
            "etcd.log",
        ),
        "etcd.log",
        2,
        "unterminated vector",
    );
    let (text, _) = error_of(read_str(
        &format!("{OK}\nINFO  jepsen.util - 2\t:invoke\t:cas\t[3 0}}\n"),
        Format::PorcupineEtcd,
        "etcd.log",
    ));
    assert!(
        text.contains("line 2, column 40")
            && text.contains("mismatched `}`")
            && text.contains("opened at line 2, column 36"),
        "{text}"
    );
    assert_error(
        read_str(
            &format!("{OK}\nINFO  jepsen.util - x\t:invoke\t:cas\t[3 0]\n"),
            Format::PorcupineEtcd,
            "etcd.log",
        ),
        "etcd.log",
        2,
        "the process must be",
    );
    let mut garbage = format!("{OK}\n").into_bytes();
    garbage.extend_from_slice(b"INFO  jepsen.util - 0\t:ok\t:read\t\xc3\x28\n");
    assert_error(
        read_bytes(&garbage, Format::PorcupineEtcd, "etcd.log"),
        "etcd.log",
        2,
        "not valid UTF-8",
    );
    assert!(read_str("", Format::PorcupineEtcd, "e.log")
        .unwrap()
        .events
        .is_empty());
}

#[test]
fn pairing_errors_keep_the_source_line() {
    let jsonl = concat!(
        r#"{"process":0,"type":"invoke","f":"read"}"#,
        "\n\n",
        r#"{"process":1,"type":"ok","f":"read","value":3}"#,
        "\n"
    );
    let h = read_str(jsonl, Format::Jsonl, "h.jsonl").unwrap();
    let e = h.pair().unwrap_err().to_string();
    assert!(
        e.contains("line 3") && e.contains("no open invocation"),
        "{e}"
    );

    let edn = "[{:process 0, :type :invoke, :f :read}\n\n {:process 0,\n  :type :invoke, :f :write, :value 1}]";
    let h = read_str(edn, Format::Edn, "h.edn").unwrap();
    let e = h.pair().unwrap_err().to_string();
    assert!(e.contains("line 3") && e.contains("line 1"), "{e}");
}

/// A Jepsen independent history: values are `[key value]`, reads invoke with `[k nil]`.
const INDEPENDENT: &str = r#"
{:process 0, :type :invoke, :f :write, :value [1 3]}
{:process 1, :type :invoke, :f :read, :value [2 nil]}
{:process 0, :type :ok, :f :write, :value [1 3]}
{:process 1, :type :ok, :f :read, :value [2 nil]}
{:process :nemesis, :type :info, :f :start, :value nil}
{:process 0, :type :invoke, :f :cas, :value [1 [3 4]]}
{:process 0, :type :fail, :f :cas, :value [1 [3 4]]}
"#;

#[test]
fn independent_tuples_split_automatically_or_on_request() {
    let h = read_str(INDEPENDENT, Format::Edn, "ind.edn").unwrap();
    assert_eq!(h.events[0].key, Some(Key::Int(1)));
    assert_eq!(h.events[0].value, json!(3));
    assert_eq!(h.events[1].key, Some(Key::Int(2)));
    assert_eq!(h.events[1].value, Value::Null);
    assert_eq!(h.events[4].key, None);
    assert_eq!(h.events[5].value, json!([3, 4]));
    let ops = h.pair().unwrap();
    assert_eq!(ops.by_key().len(), 2);

    let no = ReadOptions {
        independent: Independent::No,
    };
    let h = read_history_with(Cursor::new(INDEPENDENT), Format::Edn, "ind.edn", &no).unwrap();
    assert_eq!(h.events[0].key, None);
    assert_eq!(h.events[0].value, json!([1, 3]));

    // A cas-register whose reads are invoked with nil is not independent under Auto,
    // even when every other value is a pair ...
    let plain = "{:process 0, :type :invoke, :f :cas, :value [1 2]}\n{:process 0, :type :fail, :f :cas, :value [1 2]}\n{:process 1, :type :invoke, :f :read, :value nil}\n{:process 1, :type :ok, :f :read, :value [0 1]}";
    let h = read_str(plain, Format::Edn, "plain.edn").unwrap();
    assert!(h.events.iter().all(|e| e.key.is_none()));
    // ... nor is a history of pairs without any read.
    let h = read_str(
        "{:process 0, :type :invoke, :f :cas, :value [1 2]}",
        Format::Edn,
        "p.edn",
    )
    .unwrap();
    assert_eq!(h.events[0].key, None);

    // Forcing it says which line is not a tuple.
    let yes = ReadOptions {
        independent: Independent::Yes,
    };
    let result = read_history_with(Cursor::new(plain), Format::Edn, "plain.edn", &yes);
    assert_error(result, "plain.edn", 3, "`[key value]` pair");
    let h = read_history_with(
        Cursor::new("{:process 0, :type :invoke, :f :cas, :value [\"k\" [1 2]]}"),
        Format::Edn,
        "p.edn",
        &yes,
    )
    .unwrap();
    assert_eq!(h.events[0].key, Some(Key::Str("k".into())));
    assert_eq!(h.events[0].value, json!([1, 2]));
}

#[test]
fn format_names_detection_and_path_errors() {
    for name in Format::NAMES {
        let format: Format = name.parse().unwrap();
        assert_eq!(format.to_string(), *name);
    }
    let e = "yaml".parse::<Format>().unwrap_err().to_string();
    assert!(e.contains("yaml") && e.contains("porcupine-etcd"), "{e}");

    assert_eq!(Format::detect("\n{\"index\":0}"), Some(Format::Jsonl));
    assert_eq!(Format::detect("; comment\n[{:a 1}]"), Some(Format::Edn));
    assert_eq!(Format::detect("({:process 0})"), Some(Format::Edn));
    assert_eq!(
        Format::detect("{:process 0, :type :invoke, :f :read, :value nil}"),
        Some(Format::Edn)
    );
    assert_eq!(
        Format::detect("{:process 0, :type :invoke, :f :put, :key \"1\", :value \"x\"}"),
        Some(Format::PorcupineKv)
    );
    assert_eq!(
        Format::detect("INFO  jepsen.util - 0\t:invoke\t:read\tnil"),
        Some(Format::PorcupineEtcd)
    );
    assert_eq!(Format::detect("hello"), None);
    assert_eq!(Format::detect("  \n"), None);

    let dir = std::env::temp_dir().join(format!("splitbrain-formats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let odd = dir.join("odd.txt");
    std::fs::write(&odd, "hello world\n").unwrap();
    let e = read_path(&odd, None).unwrap_err().to_string();
    assert!(
        e.contains("odd.txt") && e.contains("--format") && e.contains("porcupine-kv"),
        "{e}"
    );
    let empty = dir.join("empty.log");
    std::fs::write(&empty, "").unwrap();
    assert!(read_path(&empty, None).unwrap().0.events.is_empty());
    let missing = dir.join("missing.jsonl");
    let e = read_path(&missing, None).unwrap_err();
    assert!(matches!(e, FormatError::Io { .. }));
    assert!(e.to_string().contains("missing.jsonl"), "{e}");
    let e = read_path(&odd, Some(Format::Jsonl))
        .unwrap_err()
        .to_string();
    assert!(e.contains("odd.txt line 1"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Parse speed of a 1M-event JSONL history. Run with
/// `cargo test --release -p splitbrain-checker --test checker -- --ignored --nocapture history_parse_speed`.
/// With `SPLITBRAIN_PARSE_BENCH=<file>` it only reads that file, in whatever format it
/// is detected as (so `time` on the test binary measures parsing alone); otherwise it writes a seeded-shape 1M-event history to
/// a temporary file first and removes it afterwards.
#[test]
#[ignore = "measurement, run by hand in release mode"]
fn history_parse_speed() {
    const EVENTS: u64 = 1_000_000;
    if let Some(given) = std::env::var_os("SPLITBRAIN_PARSE_BENCH") {
        let started = std::time::Instant::now();
        let (history, format) = read_path(Path::new(&given), None).unwrap();
        eprintln!(
            "read {} {format} events in {:?}",
            history.events.len(),
            started.elapsed()
        );
        return;
    }
    let path = std::env::temp_dir().join(format!("splitbrain-1m-{}.jsonl", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let mut writer = std::io::BufWriter::new(file);
    let started = std::time::Instant::now();
    let mut events = Vec::with_capacity(EVENTS as usize);
    for i in 0..EVENTS {
        let process = (i / 2) % 10;
        let invoke = i % 2 == 0;
        events.push(Event {
            index: i,
            time: i * 1000,
            process: Process::Client(process),
            kind: if invoke {
                EventType::Invoke
            } else {
                EventType::Ok
            },
            f: if (i / 2) % 3 == 0 { "read" } else { "write" }.into(),
            key: Some(Key::Str(format!("k{}", (i / 2) % 16))),
            value: if invoke && (i / 2) % 3 == 0 {
                Value::Null
            } else {
                json!(i / 2)
            },
            node: invoke.then(|| format!("n{}", process % 5 + 1)),
            error: None,
            line: None,
            extra: Default::default(),
        });
    }
    write_jsonl(&mut writer, &History::new(events)).unwrap();
    drop(writer);
    let size = std::fs::metadata(&path).unwrap().len();
    eprintln!(
        "wrote {EVENTS} events ({:.1} MB) in {:?}",
        size as f64 / 1e6,
        started.elapsed()
    );
    let started = std::time::Instant::now();
    let (history, format) = read_path(&path, None).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(format, Format::Jsonl);
    assert_eq!(history.events.len() as u64, EVENTS);
    eprintln!("read {EVENTS} events in {elapsed:?}");
    std::fs::remove_file(&path).unwrap();
}

mod generated {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngSeed};

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn event() -> impl Strategy<Value = Event> {
        (
            prop_oneof![
                any::<u64>().prop_map(Process::Client),
                Just(Process::Nemesis)
            ],
            prop_oneof![
                Just(EventType::Invoke),
                Just(EventType::Ok),
                Just(EventType::Fail),
                Just(EventType::Info)
            ],
            "[a-z-]{1,10}",
            prop::option::of(prop_oneof![
                any::<i64>().prop_map(Key::Int),
                any::<String>().prop_map(Key::Str)
            ]),
            json_value(),
            prop::option::of(any::<String>()),
            prop::option::of(any::<String>()),
            any::<u64>(),
            // Extra fields, named so they never collide with an event field.
            prop::collection::btree_map("x_[a-z]{0,4}", json_value(), 0..3),
        )
            .prop_map(
                |(process, kind, f, key, value, node, error, time, extra)| Event {
                    index: 0,
                    time,
                    process,
                    kind,
                    f,
                    key,
                    value,
                    node,
                    error,
                    line: None,
                    extra: extra.into_iter().collect(),
                },
            )
    }

    proptest! {
        #![proptest_config(Config {
            cases: 128,
            rng_seed: RngSeed::Fixed(0x1_5eed),
            failure_persistence: None,
            ..Config::default()
        })]

        /// Whatever the writer writes, the JSONL reader reads back unchanged.
        #[test]
        fn written_histories_read_back(events in prop::collection::vec(event(), 0..20)) {
            let events: Vec<Event> = events
                .into_iter()
                .enumerate()
                .map(|(i, mut e)| {
                    e.index = i as u64;
                    e.line = Some(i + 1);
                    e
                })
                .collect();
            let history = History::new(events);
            let mut out = Vec::new();
            write_jsonl(&mut out, &history).unwrap();
            let back = read_bytes(&out, Format::Jsonl, "gen.jsonl");
            prop_assert_eq!(back.as_ref().ok(), Some(&history));
            // Detection agrees, whatever the first event is.
            if !history.events.is_empty() {
                let text = String::from_utf8(out).unwrap();
                prop_assert_eq!(Format::detect(&text), Some(Format::Jsonl));
            }
        }
    }
}

/// The lenient mode of the one JSONL reader keeps every event before the first bad line
/// and says where and what it was; strict reading fails with the same error.
#[test]
fn jsonl_until_error_keeps_what_came_before_the_first_bad_line() {
    let good = "{\"index\":0,\"process\":0,\"type\":\"invoke\",\"f\":\"read\",\"value\":null}\n\
                {\"index\":1,\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n";
    let whole = read_jsonl_until_error(Cursor::new(good), "h.jsonl");
    assert!(whole.error.is_none());
    assert_eq!(whole.history.events.len(), 2);

    // A bad line in the middle: reading stops there.
    let text = format!("{good}{{\"index\": oops\n{good}");
    let partial = read_jsonl_until_error(Cursor::new(text.as_str()), "h.jsonl");
    assert_eq!(partial.history.events.len(), 2);
    assert!(!partial.incomplete_last_line);
    let err = partial.error.expect("an error");
    assert_eq!(err.line(), Some(3));
    assert!(err.to_string().starts_with("h.jsonl line 3"), "{err}");
    let strict = read_str(&text, Format::Jsonl, "h.jsonl").unwrap_err();
    assert_eq!(strict.to_string(), err.to_string());

    // A last line cut off mid-write.
    let cut = format!("{good}{{\"index\":2,\"proc");
    let partial = read_jsonl_until_error(Cursor::new(cut.as_str()), "h.jsonl");
    assert_eq!(partial.history.events.len(), 2);
    assert!(partial.incomplete_last_line);
    assert_eq!(partial.error.and_then(|e| e.line()), Some(3));
}
