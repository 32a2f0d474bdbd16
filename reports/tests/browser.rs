//! Opens generated reports in headless Chromium and checks that the page works: its
//! script ran to the end without errors, and the timeline, charts and (for an invalid
//! run) the witness are present. Screenshots are saved for people to look at.
//!
//! Needs `/usr/bin/chromium` (or `$CHROMIUM`); without it the test fails with how to
//! install it, unless `SPLITBRAIN_SKIP_BROWSER=1` is set.

use splitbrain_checker::PairedHistory;
use splitbrain_reports::results::Results;
use splitbrain_reports::store::{update_index, write_run_outputs, REPORT_HTML};
use splitbrain_reports::testutil::{
    attach_linearizability, invalid_results, list_append_results, register_history, valid_results,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    let candidates = [
        std::env::var("CHROMIUM").ok(),
        Some("/usr/bin/chromium".into()),
        Some("/usr/bin/chromium-browser".into()),
    ];
    candidates
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("splitbrain-browser-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs Chromium headless with `args` on `page`, bounded in time; returns stdout.
fn run_chromium(bin: &Path, page: &Path, args: &[String]) -> String {
    let profile = TempDir::new("profile");
    let mut cmd = Command::new(bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--virtual-time-budget=5000",
    ])
    .arg(format!("--user-data-dir={}", profile.0.display()))
    .args(args)
    .arg(format!("file://{}", page.display()))
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start chromium");
    let started = Instant::now();
    // Read stdout on a thread so a large DOM cannot block the child.
    let mut stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    loop {
        match child.try_wait().expect("wait for chromium") {
            Some(_) => break,
            None if started.elapsed() > Duration::from_secs(90) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("chromium did not finish within 90 s on {}", page.display());
            }
            None => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    reader.join().expect("reader thread")
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("report-screenshots");
    std::fs::create_dir_all(&dir).expect("create screenshot dir");
    dir
}

/// Which sample run a page shows.
#[derive(Clone, Copy, PartialEq)]
enum Sample {
    Valid,
    Invalid,
    /// 100,000 operations: the timeline must still load and draw.
    Large,
    /// A list-append run with anomalies: their cycles must be drawn.
    ListAppend,
}

/// Renders a run, loads it, checks the DOM after the scripts ran, takes screenshots.
fn check_page(bin: &Path, name: &str, sample: Sample) {
    let invalid = matches!(sample, Sample::Invalid | Sample::ListAppend);
    let (results, history) = match sample {
        Sample::Valid => valid_results(),
        Sample::Invalid => invalid_results(),
        Sample::ListAppend => list_append_results(),
        Sample::Large => {
            let history = PairedHistory::new(register_history(1, 100_000, 20));
            let mut r = Results::new("large", "2026-11-26T15:00:00Z", &history);
            attach_linearizability(&mut r, &history);
            (r, history)
        }
    };
    let run = TempDir::new(name);
    write_run_outputs(&run.0, &results, &history, None).expect("write outputs");
    let page = run.0.join(REPORT_HTML);

    let dom = run_chromium(bin, &page, &["--dump-dom".into()]);
    assert!(
        dom.contains("data-ready=\"1\""),
        "{name}: the page script did not finish (no data-ready on <body>)"
    );
    let errors = dom
        .split("id=\"js-errors\"")
        .nth(1)
        .and_then(|rest| rest.split_once('>'))
        .map(|(attrs, rest)| {
            (
                attrs.to_string(),
                rest.split("</pre>").next().unwrap_or("").to_string(),
            )
        })
        .expect("the error box is on the page");
    assert!(
        errors.1.trim().is_empty(),
        "{name}: script errors: {}",
        errors.1
    );
    assert!(
        errors.0.contains("hidden"),
        "{name}: the error box was shown"
    );
    assert!(
        dom.contains("<canvas id=\"timeline\""),
        "{name}: no timeline canvas"
    );
    assert!(
        dom.contains("style=\"width:") || dom.contains("style=\"width: "),
        "{name}: the timeline was never sized by the script"
    );
    assert!(
        dom.contains("aria-label=\"latency over time\""),
        "{name}: no latency chart"
    );
    assert!(
        dom.contains("aria-label=\"throughput over time\""),
        "{name}: no throughput chart"
    );
    assert_eq!(
        dom.contains("id=\"witnesses\""),
        sample == Sample::Invalid,
        "{name}: witness section presence"
    );
    assert_eq!(
        dom.contains("class=\"cycle-svg\""),
        sample == Sample::ListAppend,
        "{name}: anomaly cycle drawings"
    );
    let draw_ms = dom
        .split("data-draw-ms=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next());
    assert!(draw_ms.is_some(), "{name}: the timeline was never drawn");
    eprintln!(
        "{name}: {} operations; a full timeline redraw took {} ms",
        results.stats.operations,
        draw_ms.unwrap_or("?")
    );
    if sample == Sample::Invalid {
        assert!(
            dom.contains("class=\"witness-svg\""),
            "{name}: no witness drawing"
        );
    }
    if invalid {
        assert!(dom.contains("data-verdict=\"invalid\""));
    } else {
        assert!(dom.contains("data-verdict=\"valid\""));
    }

    let dir = screenshot_dir();
    std::fs::copy(&page, dir.join(format!("{name}.html"))).expect("keep the page");
    let shots: &[(&str, &str)] = if sample == Sample::Large {
        &[("top", "1400,1000")]
    } else {
        &[("top", "1400,1000"), ("full", "1400,4800")]
    };
    for (suffix, size) in shots {
        let shot = dir.join(format!("{name}-{suffix}.png"));
        let _ = std::fs::remove_file(&shot);
        run_chromium(
            bin,
            &page,
            &[
                format!("--screenshot={}", shot.display()),
                format!("--window-size={size}"),
            ],
        );
        let len = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(
            len > 10_000,
            "{name}: screenshot {} missing or blank ({len} bytes)",
            shot.display()
        );
        eprintln!("screenshot: {}", shot.display());
    }
}

/// The store index lists both runs and links to their reports.
fn check_index(bin: &Path) {
    let store = TempDir::new("store");
    let (valid, vh) = valid_results();
    let (invalid, ih) = invalid_results();
    let a = store.0.join("register-valid/20261126T150000");
    let b = store.0.join("register-stale-read/20261126T150500");
    for (dir, r, h) in [(&a, &valid, &vh), (&b, &invalid, &ih)] {
        std::fs::create_dir_all(dir).expect("run dir");
        write_run_outputs(dir, r, h, None).expect("write outputs");
    }
    assert_eq!(update_index(&store.0).expect("index"), 2);
    let page = store.0.join("index.html");
    let dom = run_chromium(bin, &page, &["--dump-dom".into()]);
    assert!(
        dom.contains("register-valid/20261126T150000/report.html"),
        "index: no link to the valid run"
    );
    assert!(
        dom.contains("register-stale-read/20261126T150500/report.html"),
        "index: no link to the invalid run"
    );
    let shot = screenshot_dir().join("index.png");
    run_chromium(
        bin,
        &page,
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1400,500".into(),
        ],
    );
    assert!(shot.is_file(), "index: no screenshot");
    eprintln!("screenshot: {}", shot.display());
}

#[test]
fn reports_load_in_a_real_browser() {
    let Some(bin) = chromium() else {
        if std::env::var("SPLITBRAIN_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("chromium absent; skipped because SPLITBRAIN_SKIP_BROWSER=1");
            return;
        }
        panic!("install chromium (apt-get install -y chromium), or set SPLITBRAIN_SKIP_BROWSER=1 to skip this test");
    };
    check_page(&bin, "valid", Sample::Valid);
    check_page(&bin, "invalid", Sample::Invalid);
    check_page(&bin, "large", Sample::Large);
    check_page(&bin, "list-append", Sample::ListAppend);
    check_index(&bin);
}
