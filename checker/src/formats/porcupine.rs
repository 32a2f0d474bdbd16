//! Porcupine's etcd test data: Jepsen log lines, one event per line.
//!
//! ```text
//! INFO  jepsen.util - 2 :invoke :cas [3 0]
//! INFO  jepsen.util - 4   :info   :write  :timed-out
//! ```
//!
//! After the `INFO  jepsen.util -` marker come the process, the type, the function and
//! the value, separated by TABs or runs of spaces; the value is EDN (read with
//! [`super::edn`]) and may itself contain spaces (`[3 0]`). Porcupine's logs replace the
//! value of a timed-out completion with `:timed-out`; we record that as the event's
//! `error` and give the completion its invocation's value, so pairing keeps the
//! operation's argument (a timed-out write still may have written it).
//!
//! Porcupine's kv logs are EDN maps and go through [`super::jepsen`] instead.

use super::edn::{self, Edn};
use super::{utf8_error, FormatError};
use crate::history::{Event, EventType, History, Process};
use serde_json::Value;
use std::collections::HashMap;
use std::io::BufRead;

/// Reads a Porcupine etcd log.
pub(crate) fn read_etcd<R: BufRead>(mut reader: R, file: &str) -> Result<History, FormatError> {
    let mut events = Vec::new();
    // Open invocation value per client process, for `:timed-out` completions.
    let mut open: HashMap<Process, Value> = HashMap::new();
    let mut buf = Vec::with_capacity(128);
    let mut line = 0usize;
    loop {
        buf.clear();
        let read = reader
            .read_until(b'\n', &mut buf)
            .map_err(|source| FormatError::Read {
                file: file.to_string(),
                line: line + 1,
                source,
            })?;
        if read == 0 {
            break;
        }
        line += 1;
        let text = std::str::from_utf8(&buf).map_err(|e| utf8_error(file, line, &buf, &e))?;
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        let (mut event, timed_out) = parse_line(text, file, line)?;
        event.index = events.len() as u64;
        match event.kind {
            EventType::Invoke => {
                open.insert(event.process, event.value.clone());
            }
            kind => {
                let invoked = open.remove(&event.process);
                if timed_out && matches!(kind, EventType::Info | EventType::Fail) {
                    event.error = Some("timed-out".into());
                    // Without an open invocation, pairing reports the real problem.
                    event.value = invoked.unwrap_or(Value::Null);
                }
            }
        }
        events.push(event);
    }
    Ok(History::new(events))
}

/// Splits off the next whitespace-separated field.
fn next_field(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    let end = text.find(char::is_whitespace).unwrap_or(text.len());
    Some((&text[..end], &text[end..]))
}

/// Parses one line; the flag says whether its value was the keyword `:timed-out`.
fn parse_line(text: &str, file: &str, line: usize) -> Result<(Event, bool), FormatError> {
    let invalid = |reason: String| FormatError::Invalid {
        file: file.to_string(),
        line,
        reason,
    };
    let rest = text
        .strip_prefix("INFO")
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix("jepsen.util"))
        .map(str::trim_start)
        .and_then(|r| r.strip_prefix('-'));
    let Some(rest) = rest else {
        let shown: String = text.chars().take(60).collect();
        return Err(invalid(format!(
            "expected a Jepsen log line `INFO  jepsen.util - <process> <type> <f> <value>`; got {shown:?}"
        )));
    };
    let missing = |what: &str| {
        invalid(format!(
            "the line ends before the {what} (expected `<process> <type> <f> <value>` after `jepsen.util -`)"
        ))
    };
    let (process_text, rest) = next_field(rest).ok_or_else(|| missing("process"))?;
    let (type_text, rest) = next_field(rest).ok_or_else(|| missing("type"))?;
    let (f_text, rest) = next_field(rest).ok_or_else(|| missing("function"))?;
    if rest.trim().is_empty() {
        return Err(missing("value (write nil for none)"));
    }

    let process = if let Ok(p) = process_text.parse::<u64>() {
        Process::Client(p)
    } else if process_text.starts_with(':') {
        Process::Nemesis
    } else {
        return Err(invalid(format!(
            "the process must be a non-negative integer or a keyword like :nemesis; got {process_text:?}"
        )));
    };
    let kind = type_text
        .strip_prefix(':')
        .and_then(EventType::parse)
        .ok_or_else(|| {
            invalid(format!(
                "the type must be one of :invoke, :ok, :fail, :info; got {type_text:?}"
            ))
        })?;
    let f = f_text.strip_prefix(':').unwrap_or(f_text).to_string();

    // Errors inside the value point at its column in the whole line.
    let value_offset = text.len() - rest.trim_start().len();
    let value = edn::parse_one_at(text, value_offset, line).map_err(|e| FormatError::Syntax {
        file: file.to_string(),
        line: e.line,
        column: e.column,
        reason: format!("in the value: {}", e.reason),
    })?;
    let timed_out = value == Edn::Keyword("timed-out".into());
    let event = Event {
        index: 0,
        time: 0,
        process,
        kind,
        f,
        key: None,
        value: value.to_json(),
        node: None,
        error: None,
        line: Some(line),
        extra: Default::default(),
    };
    Ok((event, timed_out))
}
