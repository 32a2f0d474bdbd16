//! The history recorder: assigns each event its dense index and monotonic time and
//! streams it to `history.jsonl` as it happens, so a crash of the harness loses at most
//! the line being written. It also keeps the events in memory for the checker.
//!
//! One mutex orders everything: the index order *is* the real-time order the checker
//! relies on, so an event must get its index at the moment it is recorded, never later.

use serde_json::Value;
use splitbrain_checker::formats::JsonlWriter;
use splitbrain_checker::{Event, EventType, History, Key, Process};
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What a caller records; the recorder adds `index` and `time`.
pub struct Record {
    pub process: Process,
    pub kind: EventType,
    pub f: String,
    pub key: Option<Key>,
    pub value: Value,
    pub node: Option<String>,
    pub error: Option<String>,
}

struct Inner {
    writer: Option<JsonlWriter<BufWriter<File>>>,
    events: Vec<Event>,
    write_error: Option<String>,
}

/// Cheap to clone; all clones append to the same history.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    inner: Arc<Mutex<Inner>>,
}

impl Recorder {
    /// Creates `path` (which must not exist: a recorded history is never overwritten).
    pub fn create(path: &Path, started: Instant) -> std::io::Result<Recorder> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Recorder {
            started,
            inner: Arc::new(Mutex::new(Inner {
                writer: Some(JsonlWriter::new(BufWriter::new(file))),
                events: Vec::new(),
                write_error: None,
            })),
        })
    }

    /// Records one event and returns it (with its index and time).
    pub fn record(&self, r: Record) -> Event {
        self.record_with_extra(r, serde_json::Map::new())
    }

    /// [`Recorder::record`] with the event's extra fields (what a client's completion
    /// carried besides its value, e.g. etcd's `revision`). A field named like one of the
    /// event's own ([`Event::FIELDS`]) is dropped, as it could not be written.
    pub fn record_with_extra(&self, r: Record, mut extra: serde_json::Map<String, Value>) -> Event {
        extra.retain(|name, _| !Event::FIELDS.contains(&name.as_str()));
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let event = Event {
            index: inner.events.len() as u64,
            time: self.started.elapsed().as_nanos() as u64,
            process: r.process,
            kind: r.kind,
            f: r.f,
            key: r.key,
            value: r.value,
            node: r.node,
            error: r.error,
            extra,
            line: Some(inner.events.len() + 1),
        };
        if let Some(w) = inner.writer.as_mut() {
            if let Err(e) = w.append(&event) {
                // Keep recording in memory; the run reports the write failure.
                inner.write_error = Some(e.to_string());
                inner.writer = None;
            }
        }
        inner.events.push(event.clone());
        event
    }

    /// A copy of the history so far.
    pub fn history(&self) -> History {
        History::new(
            self.inner
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .events
                .clone(),
        )
    }

    /// Flushes and closes the file; returns the first write error, if any happened.
    pub fn finish(&self) -> Option<String> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = inner.writer.take() {
            let mut buffered = w.into_inner();
            let flushed =
                std::io::Write::flush(&mut buffered).and_then(|()| buffered.get_ref().sync_all());
            if let Err(e) = flushed {
                inner.write_error.get_or_insert(e.to_string());
            }
        }
        inner.write_error.clone()
    }
}
