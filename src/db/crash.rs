//! Crash detection: a node that printed a line matching one of its description's
//! patterns (`^panic:`, `fatal error:`) crashed, whatever its exit status says.
//!
//! Separate from the driver because it is pure and testable: patterns compile once at
//! load time (a bad regex is a load error with its line), and [`CrashPatterns::scan`]
//! reads log files through a fixed buffer, so no log is ever held whole:
//! - a line ends at `\n` or `\r` (a progress bar redrawn with `\r` is many lines, not
//!   one of hundreds of megabytes);
//! - a line longer than [`PIECE`] is scanned in pieces, each with the [`OVERLAP`] bytes
//!   before it as context, so a match of up to that length across a boundary is still
//!   found, and `^` and `$` still mean the line's start and end;
//! - a file larger than [`SCAN_HEAD`] + [`SCAN_TAIL`] is scanned at its head and tail
//!   only, and the scan says so;
//! - a file is opened only if it is a regular file inside its node's folder, reached
//!   without following a link ([`crate::confine`]); any other is named in a note.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use regex::bytes::Regex;
use regex_automata::{meta, Input, MatchKind, PatternSet};

use crate::confine;

/// At most this many matches are reported per file: a node that logs a panic in a loop
/// should not fill the report.
pub const MAX_MATCHES_PER_FILE: usize = 100;
/// Matched lines are cut to this many characters in a [`CrashMatch`].
pub const MAX_LINE_CHARS: usize = 500;
/// A line longer than this is scanned in pieces of this size.
pub const PIECE: usize = 64 * 1024;
/// How much of the previous piece is scanned again with the next: a match this long
/// or shorter that straddles two pieces is found.
pub const OVERLAP: usize = 4 * 1024;
/// Of a log larger than `SCAN_HEAD + SCAN_TAIL`, only its first `SCAN_HEAD` and last
/// `SCAN_TAIL` bytes are scanned: a crash is usually at the end, and the start shows
/// how the node came up.
pub const SCAN_HEAD: u64 = 64 << 20;
/// See [`SCAN_HEAD`].
pub const SCAN_TAIL: u64 = 64 << 20;
/// The read buffer.
const READ_BUF: usize = 64 * 1024;

/// The compiled `crash.patterns` of a description.
#[derive(Debug, Clone)]
pub struct CrashPatterns {
    /// The patterns as written, in order.
    patterns: Vec<String>,
    /// All patterns at once, reporting every one that matches.
    set: meta::Regex,
    /// Each pattern alone, to find where the chosen one matched.
    each: Vec<Regex>,
}

/// One line that matched a crash pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashMatch {
    pub file: PathBuf,
    /// 1-based; `None` past the unread middle of a file too large to scan whole.
    pub line: Option<usize>,
    /// The line, without its end, cut to [`MAX_LINE_CHARS`] (a long line from a little
    /// before the match, after `…`); invalid UTF-8 replaced.
    pub text: String,
    /// The first pattern (in file order) that matched.
    pub pattern: String,
}

/// A log to scan: `path`, which must be a regular file inside `root` (its node's
/// folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    pub root: PathBuf,
    pub path: PathBuf,
}

/// What [`CrashPatterns::scan`] found, and what it could not read or read only in part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub matches: Vec<CrashMatch>,
    /// One sentence per file refused (outside the folder, a link, not a regular file),
    /// unreadable, or too large to scan whole.
    pub notes: Vec<String>,
}

impl CrashPatterns {
    /// Compiles `patterns`; the error names the index of the first bad one and why.
    pub fn new(patterns: Vec<String>) -> Result<CrashPatterns, (usize, String)> {
        let mut each = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            match Regex::new(p) {
                Ok(r) => each.push(r),
                Err(e) => {
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
        }
        let set = meta::Regex::builder()
            .configure(meta::Regex::config().match_kind(MatchKind::All))
            .build_many(&patterns)
            .map_err(|e| (0, e.to_string()))?;
        Ok(CrashPatterns {
            patterns,
            set,
            each,
        })
    }

    /// No patterns: nothing is ever a crash.
    pub fn none() -> CrashPatterns {
        CrashPatterns::new(Vec::new()).unwrap_or_else(|_| unreachable!("no pattern to fail"))
    }

    /// The patterns as written.
    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }

    /// The first pattern `line` matches, if any (for a driver that watches output as
    /// it arrives).
    pub fn matches(&self, line: &str) -> Option<&str> {
        self.first_match(&Input::new(line.as_bytes()))
            .map(|i| self.patterns[i].as_str())
    }

    /// The index of the first pattern (in file order) matching within `input`.
    fn first_match(&self, input: &Input<'_>) -> Option<usize> {
        if self.patterns.is_empty() {
            return None;
        }
        let mut set = PatternSet::new(self.set.pattern_len());
        self.set.which_overlapping_matches(input, &mut set);
        set.iter().map(|p| p.as_usize()).min()
    }

    /// Every line of `files` that matches a pattern, in file then line order, and a
    /// note for each file refused, unreadable, or scanned only in part. Missing files
    /// are skipped: a node may not have written its log yet.
    pub fn scan(&self, files: &[LogFile]) -> ScanReport {
        let mut report = ScanReport::default();
        for file in files {
            self.scan_file(file, &mut report);
        }
        report
    }

    fn scan_file(&self, log: &LogFile, report: &mut ScanReport) {
        let (file, size) = match confine::open_inside(&log.root, &log.path) {
            Ok(Some(opened)) => opened,
            Ok(None) => return,
            Err(e) => {
                report.notes.push(format!("log not read: {e}"));
                return;
            }
        };
        if self.patterns.is_empty() {
            return;
        }
        let mut scanner = LineScanner::new(self, &log.path);
        let result = if size <= SCAN_HEAD + SCAN_TAIL {
            scanner.feed_reader(file.take(size))
        } else {
            scanner.scan_head_and_tail(file, size).inspect(|()| {
                report.notes.push(format!(
                    "{} is {size} bytes: only its first {} MiB and last {} MiB were scanned for crash patterns ({} bytes in between were not)",
                    log.path.display(),
                    SCAN_HEAD >> 20,
                    SCAN_TAIL >> 20,
                    size - SCAN_HEAD - SCAN_TAIL
                ))
            })
        };
        if let Err(e) = result {
            report.notes.push(format!(
                "reading {}: {e} (scanned up to there)",
                log.path.display()
            ));
        }
        report.matches.extend(scanner.finish());
    }
}

/// Scans one stream line by line through a bounded window: at most [`PIECE`] +
/// [`OVERLAP`] bytes of a line are held at once, however long it is.
pub(crate) struct LineScanner<'a> {
    patterns: &'a CrashPatterns,
    file: &'a Path,
    /// The current piece of the current line, after the previous piece's last
    /// [`OVERLAP`] bytes when `continued`.
    hay: Vec<u8>,
    /// `hay` starts mid-line: its first byte is context only (so `^` cannot match
    /// there, and a match starting there was already looked for).
    continued: bool,
    /// The current line did not fit in one piece.
    long: bool,
    /// The current line already matched: the rest of it is skipped.
    matched: bool,
    /// The current line's number; `None` after a gap.
    line: Option<usize>,
    /// The last byte was `\r` (so a `\n` right after it ends no second line).
    after_cr: bool,
    found: Vec<CrashMatch>,
    most_held: usize,
}

/// The most a [`LineScanner`] holds of a line.
const HELD: usize = PIECE + OVERLAP;

impl<'a> LineScanner<'a> {
    pub(crate) fn new(patterns: &'a CrashPatterns, file: &'a Path) -> LineScanner<'a> {
        LineScanner {
            patterns,
            file,
            hay: Vec::with_capacity(HELD),
            continued: false,
            long: false,
            matched: false,
            line: Some(1),
            after_cr: false,
            found: Vec::new(),
            most_held: 0,
        }
    }

    /// The most bytes of a line held at once so far.
    #[cfg(test)]
    pub(crate) fn most_held(&self) -> usize {
        self.most_held
    }

    fn full(&self) -> bool {
        self.found.len() >= MAX_MATCHES_PER_FILE
    }

    /// Scans all of `reader` and returns what matched (for tests).
    #[cfg(test)]
    pub(crate) fn scan_reader(&mut self, reader: impl Read) -> Vec<CrashMatch> {
        let _ = self.feed_reader(reader);
        self.end_line();
        std::mem::take(&mut self.found)
    }

    /// Feeds `reader` to its end (or until the match limit), through a fixed buffer.
    fn feed_reader(&mut self, mut reader: impl Read) -> std::io::Result<()> {
        let mut buf = vec![0u8; READ_BUF];
        while !self.full() {
            let n = match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.feed(&buf[..n]);
        }
        Ok(())
    }

    /// The head, a gap, the tail.
    fn scan_head_and_tail(&mut self, mut file: File, size: u64) -> std::io::Result<()> {
        self.feed_reader((&mut file).take(SCAN_HEAD))?;
        self.end_line();
        // Past the gap: line numbers are unknown, and the tail starts mid-line.
        self.line = None;
        self.hay.push(b'\n');
        self.continued = true;
        self.long = true;
        file.seek(SeekFrom::Start(size - SCAN_TAIL))?;
        self.feed_reader(file.take(SCAN_TAIL))
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() && !self.full() {
            match data.iter().position(|b| *b == b'\n' || *b == b'\r') {
                Some(i) => {
                    self.push(&data[..i]);
                    let crlf = i == 0 && data[0] == b'\n' && self.after_cr;
                    if !crlf {
                        self.end_line();
                    }
                    self.after_cr = data[i] == b'\r';
                    data = &data[i + 1..];
                }
                None => {
                    self.push(data);
                    self.after_cr = false;
                    break;
                }
            }
        }
    }

    /// Appends bytes of the current line, scanning each piece as it fills.
    fn push(&mut self, mut bytes: &[u8]) {
        if !bytes.is_empty() {
            self.after_cr = false;
        }
        while !bytes.is_empty() {
            if self.hay.len() == HELD {
                // Full, and the line goes on: scan all but the last byte, which stays
                // as context so `$` does not match mid-line; keep the tail as the next
                // piece's context.
                if !self.matched {
                    self.search(HELD - 1);
                }
                self.hay.drain(..HELD - 1 - OVERLAP);
                self.continued = true;
                self.long = true;
            }
            let take = (HELD - self.hay.len()).min(bytes.len());
            self.hay.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            self.most_held = self.most_held.max(self.hay.len());
        }
    }

    /// The current line ended: scan its last piece and start the next.
    fn end_line(&mut self) {
        if !self.matched {
            self.search(self.hay.len());
        }
        self.hay.clear();
        self.continued = false;
        self.long = false;
        self.matched = false;
        self.line = self.line.map(|l| l + 1);
    }

    /// Looks for a match ending by `end` in the current piece.
    fn search(&mut self, end: usize) {
        let start = usize::from(self.continued).min(end);
        let input = Input::new(&self.hay).range(start..end);
        let Some(p) = self.patterns.first_match(&input) else {
            return;
        };
        self.matched = true;
        let at = self.patterns.each[p]
            .find_at(&self.hay[..end], start)
            .map_or(start, |m| m.start());
        let text = if self.long {
            // From a little before the match, at a character boundary if there is one.
            let mut from = at.saturating_sub(80).max(start);
            while from < at && (self.hay[from] & 0xC0) == 0x80 {
                from += 1;
            }
            let shown: String = String::from_utf8_lossy(&self.hay[from..end])
                .chars()
                .take(MAX_LINE_CHARS)
                .collect();
            format!("…{shown}")
        } else {
            String::from_utf8_lossy(&self.hay[..end])
                .chars()
                .take(MAX_LINE_CHARS)
                .collect()
        };
        self.found.push(CrashMatch {
            file: self.file.to_path_buf(),
            line: self.line,
            text,
            pattern: self.patterns.patterns[p].clone(),
        });
    }

    fn finish(mut self) -> Vec<CrashMatch> {
        // A last line without its end still counts; the nothing after a final
        // newline does not.
        if !self.full() && (!self.hay.is_empty() || self.continued) {
            self.end_line();
        }
        self.found
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
        let report = patterns.scan(&[
            LogFile {
                root: dir.0.clone(),
                path: missing,
            },
            LogFile {
                root: dir.0.clone(),
                path: log.clone(),
            },
        ]);
        assert_eq!(report.notes, Vec::<String>::new());
        assert_eq!(
            report.matches,
            vec![CrashMatch {
                file: log,
                line: Some(3),
                text: "panic: runtime error: index out of range".into(),
                pattern: "^panic:".into(),
            }]
        );
    }

    #[test]
    fn a_carriage_return_ends_a_line() {
        let dir = TempDir::new("crash-cr");
        let log = dir.0.join("stderr.log");
        std::fs::write(&log, "progress 10%\rprogress 20%\rpanic: boom\n").expect("write");
        let patterns = CrashPatterns::new(vec!["^panic:".into()]).expect("valid");
        let found = patterns
            .scan(&[LogFile {
                root: dir.0.clone(),
                path: log,
            }])
            .matches;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, Some(3));
        assert_eq!(found[0].text, "panic: boom");
    }

    /// 100 MB of one line, made as it is read.
    struct LongLine {
        left: usize,
        /// Where `needle` goes, counted from the start.
        at: usize,
        needle: &'static [u8],
        pos: usize,
    }
    impl std::io::Read for LongLine {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = buf.len().min(self.left);
            for (i, b) in buf[..n].iter_mut().enumerate() {
                let p = self.pos + i;
                *b = if p >= self.at && p < self.at + self.needle.len() {
                    self.needle[p - self.at]
                } else {
                    b'#'
                };
            }
            self.pos += n;
            self.left -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_100_mb_line_is_scanned_in_bounded_pieces() {
        let patterns =
            CrashPatterns::new(vec!["fatal error: out of memory".into(), "^panic:".into()])
                .expect("valid");
        // The needle straddles a piece boundary wherever the boundaries fall, since it
        // is placed at an odd offset; `^panic:` must not match mid-line.
        let reader = LongLine {
            left: 100 << 20,
            at: (50 << 20) + 7,
            needle: b"panic: fatal error: out of memory",
            pos: 0,
        };
        let mut scanner = LineScanner::new(&patterns, Path::new("long.log"));
        let found = scanner.scan_reader(reader);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].line, Some(1));
        assert_eq!(found[0].pattern, "fatal error: out of memory");
        assert!(
            found[0].text.contains("fatal error: out of memory"),
            "{}",
            found[0].text
        );
        assert!(found[0].text.chars().count() <= MAX_LINE_CHARS + 1);
        // By construction: the scanner never held more than one piece and its overlap.
        assert!(
            scanner.most_held() <= PIECE + OVERLAP,
            "held {} bytes",
            scanner.most_held()
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
