//! Our own history format (see the README, "The history format"): JSON Lines, one [`Event`] per line.
//!
//! Reading is on the hot path (a long run records millions of events), so each line is
//! first deserialized straight into a typed struct with no intermediate `Value`. Only
//! when that fails is the line parsed again, generically, to find the field at fault and
//! say what was expected: the slow path runs at most once per history.
//!
//! On input, `index` and `time` are optional: a missing `index` is the event's position,
//! a missing `time` is 0. A present `index` must equal the position (dense, from 0, in
//! line order). Blank lines are skipped. Keys that are not event fields are kept, as the
//! event's [`Event::extra`] (a client's own fields, such as etcd's `revision`), so later
//! versions can add fields without breaking older readers; a key given twice is an error
//! for event fields, and the last one wins for extra fields.
//!
//! Writing ([`JsonlWriter`]) emits one line per event and flushes it, so a run that
//! crashes loses at most the line being written.

use super::{utf8_error, FormatError};
use crate::history::{Event, EventType, History, Key, Process};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value;
use std::fmt;
use std::io::{self, BufRead, BufWriter, Write};

/// Reads a JSONL history, failing at the first line that is not an event (`check`).
pub(crate) fn read<R: BufRead>(reader: R, file: &str) -> Result<History, FormatError> {
    let partial = read_until_error(reader, file);
    match partial.error {
        Some(e) => Err(e),
        None => Ok(partial.history),
    }
}

/// What [`read_until_error`] read: every event before the first error, and the error.
#[derive(Debug)]
pub struct PartialHistory {
    /// The events before the first line that could not be read (all of them if none).
    pub history: History,
    /// The first error (it names the file and line), if reading stopped at one.
    pub error: Option<FormatError>,
    /// The error is on a last line without its newline: the writer was cut off mid-line
    /// (a crash of the harness loses at most that line), rather than wrote a bad event.
    pub incomplete_last_line: bool,
}

/// The one JSONL reader, stopping at the first error and keeping what came before it:
/// the lenient mode that shows a partial or crashed run's history. The strict mode
/// (`check`) is the same reader turning that error into a failure.
pub fn read_until_error<R: BufRead>(mut reader: R, file: &str) -> PartialHistory {
    let mut events = Vec::new();
    let mut buf = Vec::with_capacity(512);
    let mut line = 0usize;
    let stop =
        |events: Vec<Event>, error: FormatError, incomplete_last_line: bool| PartialHistory {
            history: History::new(events),
            error: Some(error),
            incomplete_last_line,
        };
    loop {
        buf.clear();
        let read = match reader.read_until(b'\n', &mut buf) {
            Ok(read) => read,
            Err(source) => {
                let error = FormatError::Read {
                    file: file.to_string(),
                    line: line + 1,
                    source,
                };
                return stop(events, error, false);
            }
        };
        if read == 0 {
            break;
        }
        line += 1;
        let incomplete = buf.last() != Some(&b'\n');
        let mut bytes = buf.as_slice();
        if line == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        while let Some((b'\n' | b'\r', rest)) = bytes.split_last() {
            bytes = rest;
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let position = events.len() as u64;
        let parsed = std::str::from_utf8(bytes)
            .map_err(|e| utf8_error(file, line, bytes, &e))
            .and_then(|text| parse_line(text, file, line, position));
        match parsed {
            Ok(event) => events.push(event),
            Err(error) => return stop(events, error, incomplete),
        }
    }
    PartialHistory {
        history: History::new(events),
        error: None,
        incomplete_last_line: false,
    }
}

/// The typed shape of a line. Every field that is not plain data has a strict
/// deserializer; anything unusual falls through to [`explain`].
struct FastEvent {
    index: Option<u64>,
    time: Option<u64>,
    process: FastProcess,
    kind: EventType,
    f: String,
    key: Option<FastKey>,
    value: Value,
    node: Option<String>,
    error: Option<String>,
    /// Every key that is not one of the above.
    extra: serde_json::Map<String, Value>,
}

/// A key of a line: one of the event's fields, or an extra one.
enum Field {
    Index,
    Time,
    Process,
    Type,
    F,
    Key,
    Value,
    Node,
    Error,
    Extra(String),
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                Ok(match v {
                    "index" => Field::Index,
                    "time" => Field::Time,
                    "process" => Field::Process,
                    "type" => Field::Type,
                    "f" => Field::F,
                    "key" => Field::Key,
                    "value" => Field::Value,
                    "node" => Field::Node,
                    "error" => Field::Error,
                    other => Field::Extra(other.to_string()),
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// Stores a field's value, refusing a field given twice (as serde's derive does).
fn once<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(name));
    }
    *slot = Some(value);
    Ok(())
}

impl<'de> Deserialize<'de> for FastEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FastEvent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event (a JSON object)")
            }
            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<FastEvent, A::Error> {
                let (mut index, mut time, mut process, mut kind, mut f) =
                    (None, None, None, None, None);
                let (mut key, mut value, mut node, mut error) = (None, None, None, None);
                let mut extra = serde_json::Map::new();
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Index => {
                            once(&mut index, "index", map.next_value::<Option<u64>>()?)?
                        }
                        Field::Time => once(&mut time, "time", map.next_value::<Option<u64>>()?)?,
                        Field::Process => once(&mut process, "process", map.next_value()?)?,
                        Field::Type => once(&mut kind, "type", map.next_value()?)?,
                        Field::F => once(&mut f, "f", map.next_value()?)?,
                        Field::Key => once(&mut key, "key", map.next_value::<Option<FastKey>>()?)?,
                        Field::Value => once(&mut value, "value", map.next_value()?)?,
                        Field::Node => {
                            once(&mut node, "node", map.next_value::<Option<String>>()?)?
                        }
                        Field::Error => {
                            once(&mut error, "error", map.next_value::<Option<String>>()?)?
                        }
                        Field::Extra(name) => {
                            extra.insert(name, map.next_value()?);
                        }
                    }
                }
                Ok(FastEvent {
                    index: index.flatten(),
                    time: time.flatten(),
                    process: process.ok_or_else(|| de::Error::missing_field("process"))?,
                    kind: kind.ok_or_else(|| de::Error::missing_field("type"))?,
                    f: f.ok_or_else(|| de::Error::missing_field("f"))?,
                    key: key.flatten(),
                    value: value.unwrap_or(Value::Null),
                    node: node.flatten(),
                    error: error.flatten(),
                    extra,
                })
            }
        }
        d.deserialize_map(V)
    }
}

struct FastProcess(Process);

impl<'de> Deserialize<'de> for FastProcess {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FastProcess;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative integer or \"nemesis\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FastProcess, E> {
                Ok(FastProcess(Process::Client(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FastProcess, E> {
                if v == "nemesis" {
                    Ok(FastProcess(Process::Nemesis))
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

struct FastKey(Key);

impl<'de> Deserialize<'de> for FastKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FastKey;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer or a string")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<FastKey, E> {
                Ok(FastKey(Key::Int(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<FastKey, E> {
                i64::try_from(v)
                    .map(|v| FastKey(Key::Int(v)))
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<FastKey, E> {
                Ok(FastKey(Key::Str(v.to_string())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<FastKey, E> {
                Ok(FastKey(Key::Str(v)))
            }
        }
        d.deserialize_any(V)
    }
}

fn parse_line(text: &str, file: &str, line: usize, position: u64) -> Result<Event, FormatError> {
    let fast: FastEvent = match serde_json::from_str(text) {
        Ok(fast) => fast,
        Err(e) => return Err(explain(text, file, line, &e)),
    };
    if let Some(index) = fast.index {
        if index != position {
            return Err(FormatError::Invalid {
                file: file.to_string(),
                line,
                reason: format!(
                    "`index` must be {position} here (indexes are dense and increasing from 0, in line order); got {index}"
                ),
            });
        }
    }
    Ok(Event {
        index: position,
        time: fast.time.unwrap_or(0),
        process: fast.process.0,
        kind: fast.kind,
        f: fast.f,
        key: fast.key.map(|k| k.0),
        value: fast.value,
        node: fast.node,
        error: fast.error,
        extra: fast.extra,
        line: Some(line),
    })
}

/// serde_json's message without its " at line L column C" suffix (we say where ourselves).
fn bare_message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(cut) => text[..cut].to_string(),
        None => text,
    }
}

/// Finds out why a line did not deserialize, and says it in terms of our fields.
fn explain(text: &str, file: &str, line: usize, fast_error: &serde_json::Error) -> FormatError {
    let invalid = |reason: String| FormatError::Invalid {
        file: file.to_string(),
        line,
        reason,
    };
    let object = match serde_json::from_str::<Value>(text) {
        Err(e) => {
            let hint = if e.is_eof() {
                " (the line ends early: was the file truncated?)"
            } else {
                ""
            };
            return FormatError::Syntax {
                file: file.to_string(),
                line,
                column: e.column().max(1),
                reason: format!("not valid JSON: {}{hint}", bare_message(&e)),
            };
        }
        Ok(Value::Object(map)) => map,
        Ok(other) => {
            return invalid(format!(
                "expected a JSON object (one event per line); got {}",
                json_kind(&other)
            ))
        }
    };
    let field = |name: &str| object.get(name).filter(|v| !v.is_null());
    for name in ["index", "time"] {
        if let Some(v) = field(name) {
            if v.as_u64().is_none() {
                let unit = if name == "time" {
                    " (nanoseconds since the run started)"
                } else {
                    ""
                };
                return invalid(format!(
                    "`{name}` must be a non-negative integer{unit}; got {v}"
                ));
            }
        }
    }
    match field("process") {
        None => {
            return invalid(
                "`process` is missing (an integer for a client, \"nemesis\" for faults)".into(),
            )
        }
        Some(v) if Process::from_json(v).is_none() => {
            return invalid(format!(
                "`process` must be a non-negative integer or \"nemesis\"; got {v}"
            ))
        }
        Some(_) => {}
    }
    match field("type") {
        None => return invalid("`type` is missing (one of invoke, ok, fail, info)".into()),
        Some(v) if v.as_str().and_then(EventType::parse).is_none() => {
            return invalid(format!(
                "`type` must be one of invoke, ok, fail, info; got {v}"
            ))
        }
        Some(_) => {}
    }
    match field("f") {
        None => return invalid("`f` is missing (the operation's function, e.g. \"read\")".into()),
        Some(v) if !v.is_string() => return invalid(format!("`f` must be a string; got {v}")),
        Some(_) => {}
    }
    if let Some(v) = field("key") {
        if v.as_i64().is_none() && !v.is_string() {
            return invalid(format!("`key` must be an integer or a string; got {v}"));
        }
    }
    for name in ["node", "error"] {
        if let Some(v) = field(name) {
            if !v.is_string() {
                return invalid(format!("`{name}` must be a string; got {v}"));
            }
        }
    }
    // Nothing field-specific (for example a field given twice): serde's own words.
    invalid(bare_message(fast_error))
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Streams events to a `history.jsonl` as they happen: one line per event, flushed.
pub struct JsonlWriter<W: Write> {
    out: W,
    /// The line being built, so each event reaches `out` in a single write.
    line: Vec<u8>,
}

impl<W: Write> JsonlWriter<W> {
    pub fn new(out: W) -> JsonlWriter<W> {
        JsonlWriter {
            out,
            line: Vec::with_capacity(256),
        }
    }

    /// Writes `event` as one line and flushes it.
    pub fn append(&mut self, event: &Event) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, event)?;
        self.line.push(b'\n');
        self.out.write_all(&self.line)?;
        self.out.flush()
    }

    pub fn get_ref(&self) -> &W {
        &self.out
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Writes a whole history as JSONL (buffered; flushed at the end).
pub fn write_jsonl<W: Write>(w: W, history: &History) -> io::Result<()> {
    let mut out = BufWriter::new(w);
    for event in &history.events {
        serde_json::to_writer(&mut out, event)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
