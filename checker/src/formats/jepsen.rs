//! Jepsen and Knossos EDN histories (and Porcupine's kv logs, which are the same shape)
//! turned into [`Event`]s.
//!
//! The EDN language itself lives in [`super::edn`]; this module owns what an operation
//! map means. Accepted layouts: one map per line (`history.edn` as Jepsen writes it),
//! one top-level vector or list of maps (Knossos' test data), maps spanning several
//! lines, and record literals such as `#jepsen.history.Op{…}` (the tag is ignored).
//!
//! Fields: `:process` (a non-negative integer; `:nemesis`, or any other keyword, symbol or
//! string, is a nemesis-like process), `:type` (`:invoke`, `:ok`, `:fail`, `:info`), `:f`,
//! optional `:value` (absent means `nil`), `:time`, `:index`, `:error` (kept as text: a
//! keyword by name, anything else as EDN), `:key` and `:node`. Unknown fields are ignored.
//!
//! `:process` may be missing, as in Elle's own test histories, when each invocation is
//! directly followed by its completion: those operations ran one at a time, and become
//! one client process (as Elle groups them under a nil process), numbered one above
//! every client process the file names.
//!
//! Real-time order is the order of appearance, never `:time` (Knossos' multi-register
//! history has non-monotonic times). Events are numbered densely in file order; an
//! explicit `:index` must increase from one operation to the next (so file order and
//! index order agree), but may skip numbers, as a per-key subhistory does.

use super::edn::{Edn, EdnError, Parser, Position};
use super::FormatError;
use crate::history::{Event, EventType, History, Key, Process};

/// Reads an EDN history from `text`. With `require_keys`, every client operation must
/// carry an explicit `:key` (Porcupine's kv logs).
pub(crate) fn read(text: &str, file: &str, require_keys: bool) -> Result<History, FormatError> {
    let syntax = |e: EdnError| FormatError::Syntax {
        file: file.to_string(),
        line: e.line,
        column: e.column,
        reason: e.reason,
    };
    let mut parser = Parser::new(text);
    let mut builder = Builder {
        file,
        require_keys,
        events: Vec::new(),
        last_index: None,
        unnamed: Vec::new(),
        unnamed_open: None,
    };
    loop {
        if parser.enter_sequence().map_err(syntax)?.is_some() {
            while let Some((at, form)) = parser.next_in_sequence().map_err(syntax)? {
                builder.push(at, form)?;
            }
            continue;
        }
        match parser.next_form().map_err(syntax)? {
            Some((at, form)) => builder.push(at, form)?,
            None => break,
        }
    }
    builder.name_unnamed();
    Ok(History::new(builder.events))
}

struct Builder<'f> {
    file: &'f str,
    require_keys: bool,
    events: Vec<Event>,
    /// The last explicit `:index` seen, and its line.
    last_index: Option<(u64, usize)>,
    /// Events without `:process`, numbered once the whole file is read.
    unnamed: Vec<usize>,
    /// An invocation without `:process` whose completion must come next, and its line.
    unnamed_open: Option<usize>,
}

/// A scalar's name as text: keywords and symbols without decoration, strings as is.
fn name_of(form: &Edn) -> Option<&str> {
    match form {
        Edn::Keyword(s) | Edn::Symbol(s) | Edn::Str(s) => Some(s),
        _ => None,
    }
}

fn non_negative(form: &Edn) -> Option<u64> {
    match form {
        Edn::Int(i) => u64::try_from(*i).ok(),
        _ => None,
    }
}

impl Builder<'_> {
    /// The process of an event: as given, or, without `:process`, the one-at-a-time
    /// client (an invocation must be directly followed by its completion).
    fn resolve_process(
        &mut self,
        line: usize,
        process: Option<Process>,
        kind: EventType,
    ) -> Result<Process, FormatError> {
        let open = self.unnamed_open.take();
        match (process, kind, open) {
            (Some(_), _, Some(open_line)) | (None, EventType::Invoke, Some(open_line)) => Err(self.invalid(
                line,
                format!("the invocation without `:process` on line {open_line} must be directly followed by its completion; give every operation a `:process` when operations overlap"),
            )),
            (Some(p), _, None) => Ok(p),
            (None, EventType::Invoke, None) => {
                self.unnamed_open = Some(line);
                self.unnamed.push(self.events.len());
                Ok(Process::Client(0))
            }
            (None, _, Some(_)) => {
                self.unnamed.push(self.events.len());
                Ok(Process::Client(0))
            }
            (None, _, None) => Err(self.invalid(
                line,
                "`:process` is missing (an integer for a client, :nemesis for faults); without it, a completion must directly follow its invocation".into(),
            )),
        }
    }

    /// Gives the events without `:process` one client number above every other.
    fn name_unnamed(&mut self) {
        if self.unnamed.is_empty() {
            return;
        }
        let mut unnamed = vec![false; self.events.len()];
        for &i in &self.unnamed {
            unnamed[i] = true;
        }
        let next = self
            .events
            .iter()
            .zip(&unnamed)
            .filter_map(|(e, &u)| match e.process {
                Process::Client(p) if !u => Some(p.saturating_add(1)),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        for &i in &self.unnamed {
            self.events[i].process = Process::Client(next);
        }
    }

    fn invalid(&self, line: usize, reason: String) -> FormatError {
        FormatError::Invalid {
            file: self.file.to_string(),
            line,
            reason,
        }
    }

    fn push(&mut self, at: Position, form: Edn) -> Result<(), FormatError> {
        let line = at.line;
        let form = match form {
            Edn::Tagged(_, inner) => *inner,
            other => other,
        };
        if !matches!(form, Edn::Map(_)) {
            return Err(self.invalid(
                line,
                format!(
                    "expected an operation map like {{:process 0, :type :invoke, :f :read, :value nil}}; got {}",
                    form.kind_name()
                ),
            ));
        }
        let field = |name: &str| form.get(name).filter(|v| **v != Edn::Nil);

        let process = match field("process") {
            // Resolved once `:type` is known.
            None => None,
            Some(Edn::Int(i)) => match u64::try_from(*i) {
                Ok(p) => Some(Process::Client(p)),
                Err(_) => {
                    return Err(self.invalid(
                        line,
                        format!("`:process` must be a non-negative integer or a keyword like :nemesis; got {i}"),
                    ))
                }
            },
            // Jepsen names non-client actors by keyword; all of them are nemesis-like.
            Some(Edn::Keyword(_) | Edn::Symbol(_) | Edn::Str(_)) => Some(Process::Nemesis),
            Some(other) => {
                return Err(self.invalid(
                    line,
                    format!("`:process` must be a non-negative integer or a keyword like :nemesis; got {other}"),
                ))
            }
        };

        let kind = match field("type") {
            None => {
                return Err(self.invalid(
                    line,
                    "`:type` is missing (one of :invoke, :ok, :fail, :info)".into(),
                ))
            }
            Some(t) => match name_of(t).and_then(EventType::parse) {
                Some(kind) => kind,
                None => {
                    return Err(self.invalid(
                        line,
                        format!("`:type` must be one of :invoke, :ok, :fail, :info; got {t}"),
                    ))
                }
            },
        };

        let process = self.resolve_process(line, process, kind)?;

        let f = match field("f") {
            None => {
                return Err(self.invalid(
                    line,
                    "`:f` is missing (the operation's function, e.g. :read)".into(),
                ))
            }
            Some(f) => match name_of(f) {
                Some(name) => name.to_string(),
                None => {
                    return Err(
                        self.invalid(line, format!("`:f` must be a keyword like :read; got {f}"))
                    )
                }
            },
        };

        let time = match field("time") {
            None => 0,
            Some(t) => non_negative(t).ok_or_else(|| {
                self.invalid(
                    line,
                    format!("`:time` must be a non-negative integer (nanoseconds); got {t}"),
                )
            })?,
        };

        if let Some(i) = field("index") {
            let index = non_negative(i).ok_or_else(|| {
                self.invalid(
                    line,
                    format!("`:index` must be a non-negative integer; got {i}"),
                )
            })?;
            if let Some((previous, previous_line)) = self.last_index {
                if index <= previous {
                    return Err(self.invalid(
                        line,
                        format!(
                            "`:index` {index} does not follow the index {previous} on line {previous_line}; operations must appear in index order"
                        ),
                    ));
                }
            }
            self.last_index = Some((index, line));
        }

        let key = match field("key") {
            None => None,
            Some(Edn::Int(i)) if i64::try_from(*i).is_ok() => i64::try_from(*i).ok().map(Key::Int),
            Some(k) => match name_of(k) {
                Some(name) => Some(Key::Str(name.to_string())),
                None => {
                    return Err(self.invalid(
                        line,
                        format!("`:key` must be an integer, a string or a keyword; got {k}"),
                    ))
                }
            },
        };
        if self.require_keys && key.is_none() && process != Process::Nemesis {
            return Err(self.invalid(
                line,
                "`:key` is missing; every operation of a Porcupine kv log names its key".into(),
            ));
        }

        let text_of = |v: &Edn| name_of(v).map_or_else(|| v.to_string(), str::to_string);
        let error = field("error").map(text_of);
        let node = field("node").map(text_of);
        let value = form
            .get("value")
            .map_or(serde_json::Value::Null, Edn::to_json);

        self.events.push(Event {
            index: self.events.len() as u64,
            time,
            process,
            kind,
            f,
            key,
            value,
            node,
            error,
            line: Some(line),
            extra: Default::default(),
        });
        Ok(())
    }
}
