//! Helpers shared by the end-to-end tests: running the binary, temporary stores, and
//! the leftover checks every run must pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_splitbrain")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("CI", "true")
        .output()
        .expect("the splitbrain binary runs")
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh folder under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!(
            "splitbrain-it-{name}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&path).expect("temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Cluster runs share two cores: one at a time.
pub fn cluster_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Processes whose command line mentions `needle` (other than ourselves).
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == me || !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(raw) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&raw).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{name}: {cmd}"));
            }
        }
    }
    found
}

/// Network namespaces the netns backend creates (`sb<4 hex>-n<i>`) currently present; a
/// lab's (`sbl<4 hex>-n<i>`, made on purpose by `splitbrain lab up`) are not among them.
pub fn our_namespaces() -> Vec<String> {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| splitbrain_nemesis::net::netns::is_our_name(n))
        .map(str::to_string)
        .collect()
}

/// Asserts that no node of this store runs and no namespace of ours remains.
pub fn assert_nothing_left(store: &Path) {
    let procs = processes_mentioning(&store.display().to_string());
    assert!(procs.is_empty(), "node processes left behind: {procs:?}");
    let ns = our_namespaces();
    assert!(ns.is_empty(), "network namespaces left behind: {ns:?}");
}

/// The newest run folder of a store.
pub fn latest_run(store: &Path) -> PathBuf {
    let link = store.join("latest");
    let target = std::fs::read_link(&link).expect("store/latest exists");
    store.join(target)
}

pub fn results(run: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(run.join("results.json")).expect("results.json");
    serde_json::from_str(&text).expect("results.json is JSON")
}

pub fn is_root() -> bool {
    // SAFETY-free check through /proc: uid 0 on the "Uid:" line.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

pub fn fixtures() -> PathBuf {
    let candidates = [
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"),
        PathBuf::from("../shared/fixtures"),
    ];
    candidates
        .into_iter()
        .find(|p| p.join("EXPECTED.tsv").is_file())
        .expect("the shared fixtures (../shared/fixtures beside the checkout)")
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// `splitbrain test` with the short-run settings the end-to-end tests share (rate 100,
/// 6 clients, 1 s of recovery) and `extra` flags.
pub fn short_test(store: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "test",
        "--store",
        store.to_str().expect("a UTF-8 temp path"),
        "--rate",
        "100",
        "--concurrency",
        "6",
        "--recovery-time",
        "1",
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// Runs `run(seed)` for seeds 1..=`seeds` until one exits 1 (invalid) and returns that
/// run's output; panics with every exit code (`what` says what was never caught) if none
/// does, and at once on an internal error (255).
pub fn caught_within_seeds(seeds: u64, what: &str, mut run: impl FnMut(&str) -> Output) -> Output {
    let mut codes = Vec::new();
    for seed in 1..=seeds {
        let out = run(&seed.to_string());
        assert_ne!(code(&out), 255, "{}", text(&out));
        codes.push(code(&out));
        if code(&out) == 1 {
            return out;
        }
    }
    panic!("{what} never caught in {seeds} runs: exit codes {codes:?}");
}
