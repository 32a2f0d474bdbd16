//! Crash detection: a node that printed a line matching one of its description's
//! patterns (`^panic:`, `fatal error:`) crashed, whatever its exit status says.
//!
//! Separate from the driver because it is pure and testable: patterns compile once at
//! load time (a bad regex is a load error with its line), and [`CrashPatterns::scan`]
//! reads log files line by line, so a node's multi-gigabyte log is never held whole.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use regex::{Regex, RegexSet};

/// At most this many matches are reported per file: a node that logs a panic in a loop
/// should not fill the report.
pub const MAX_MATCHES_PER_FILE: usize = 100;
/// Matched lines are cut to this many characters in a [`CrashMatch`].
pub const MAX_LINE_CHARS: usize = 500;

/// The compiled `crash.patterns` of a description.
#[derive(Debug, Clone)]
pub struct CrashPatterns {
    /// The patterns as written, in order.
    patterns: Vec<String>,
    /// One pass over each line for all patterns.
    set: RegexSet,
}

/// One line that matched a crash pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashMatch {
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// The line, without its newline, cut to [`MAX_LINE_CHARS`]; invalid UTF-8 replaced.
    pub text: String,
    /// The first pattern (in file order) that matched.
    pub pattern: String,
}

impl CrashPatterns {
    /// Compiles `patterns`; the error names the index of the first bad one and why.
    pub fn new(patterns: Vec<String>) -> Result<CrashPatterns, (usize, String)> {
        for (i, p) in patterns.iter().enumerate() {
            if let Err(e) = Regex::new(p) {
                // regex's message spans several lines with a caret; keep the last,
                // which says what is wrong.
                let why = e.to_string();
                let why = why
                    .lines()
                    .last()
                    .unwrap_or("invalid regex")
                    .trim()
                    .to_string();
                return Err((i, format!("bad regex {p:?}: {why}")));
            }
        }
        let set = RegexSet::new(&patterns).map_err(|e| (0, e.to_string()))?;
        Ok(CrashPatterns { patterns, set })
    }

    /// No patterns: nothing is ever a crash.
    pub fn none() -> CrashPatterns {
        CrashPatterns {
            patterns: Vec::new(),
            set: RegexSet::empty(),
        }
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The first pattern `line` matches, if any (for a driver that watches output as
    /// it arrives).
    pub fn matches(&self, line: &str) -> Option<&str> {
        self.set
            .matches(line)
            .iter()
            .next()
            .map(|i| self.patterns[i].as_str())
    }

    /// Every line of `files` that matches a pattern, in file then line order. Missing
    /// or unreadable files are skipped.
    pub fn scan(&self, files: &[PathBuf]) -> Vec<CrashMatch> {
        let mut out = Vec::new();
        if self.patterns.is_empty() {
            return out;
        }
        for file in files {
            self.scan_file(file, &mut out);
        }
        out
    }

    fn scan_file(&self, file: &Path, out: &mut Vec<CrashMatch>) {
        let Ok(f) = File::open(file) else {
            return;
        };
        let mut reader = BufReader::new(f);
        let mut buf = Vec::new();
        let mut line_no = 0;
        let mut found = 0;
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            line_no += 1;
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            let line = String::from_utf8_lossy(&buf);
            if let Some(pattern) = self.matches(&line) {
                out.push(CrashMatch {
                    file: file.to_path_buf(),
                    line: line_no,
                    text: line.chars().take(MAX_LINE_CHARS).collect(),
                    pattern: pattern.to_string(),
                });
                found += 1;
                if found >= MAX_MATCHES_PER_FILE {
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct TempDir(PathBuf);
    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let dir = std::env::temp_dir().join(format!(
                "splitbrain-db-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            TempDir(dir)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn scan_finds_a_panic_line_with_its_number() {
        let dir = TempDir::new("crash");
        let log = dir.0.join("stderr.log");
        std::fs::write(
            &log,
            "starting\nINFO: panic: is fine mid-line\npanic: runtime error: index out of range\n\tgoroutine 1\n",
        )
        .expect("write");
        let patterns =
            CrashPatterns::new(vec!["^panic:".into(), "fatal error:".into()]).expect("valid");
        let missing = dir.0.join("missing.log");
        let found = patterns.scan(&[missing, log.clone()]);
        assert_eq!(
            found,
            vec![CrashMatch {
                file: log,
                line: 3,
                text: "panic: runtime error: index out of range".into(),
                pattern: "^panic:".into(),
            }]
        );
    }

    #[test]
    fn a_bad_regex_names_its_index() {
        let (i, why) = CrashPatterns::new(vec!["ok".into(), "(".into()]).expect_err("bad");
        assert_eq!(i, 1);
        assert!(why.contains("bad regex \"(\""), "{why}");
    }

    #[test]
    fn no_patterns_match_nothing() {
        assert_eq!(CrashPatterns::none().matches("panic: x"), None);
    }
}
