//! The write-ahead log: the node's durable memory of its Raft hard state and log, plus
//! the snapshot file that lets the log be compacted.
//!
//! Layout of `DATA_DIR`:
//! - `wal/<seq:016>.wal`: segments, each a sequence of records
//!   `[len: u32 LE][crc32(len): u32 LE][crc32(len ++ payload): u32 LE][payload: len bytes]`.
//!   The length has a checksum of its own so that a damaged length is recognised as
//!   damage, not taken for a record cut short by a crash (which would silently drop
//!   every record after it); the record checksum covers the length too. A payload is a tag byte
//!   and a body: a hard state (opaque bytes), an entry (index, term, opaque bytes) or a
//!   truncation marker (every entry at or after `from` is void). A later entry with an
//!   index already present replaces it and everything after it. Every new segment
//!   begins with the latest hard state, so old segments can be deleted.
//! - `snapshot`: `[magic][crc32: u32][index: u64][term: u64][payload]`, replaced
//!   atomically (write `snapshot.tmp`, fsync, rename, fsync the directory).
//!
//! Durability: [`Wal::append`] only buffers; [`Wal::sync`] writes and fsyncs (fdatasync)
//! the whole buffer at once. The node calls `sync` once per batch of Raft work (group
//! commit) and acknowledges nothing before it returns.
//!
//! Recovery after kill -9 ([`Wal::open`]): a short or checksum-failing record at the
//! very END of the last segment is a torn write, truncated away with a warning: a header
//! cut short, a zero-filled tail, a record whose (verified) length runs past the end of
//! the file, or a payload whose checksum fails and that ends exactly at the end of the
//! file. Anything else — a length whose own checksum fails, any bad record followed by
//! more data, damage in an older segment — is corruption of data that was already
//! acknowledged: opening fails with an error naming the file and offset, instead of
//! silently dropping it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `[len][crc32(len)][crc32(len ++ payload)]`, each a u32.
const HEADER_BYTES: usize = 12;
const TAG_HARD_STATE: u8 = 1;
const TAG_ENTRY: u8 = 2;
const TAG_TRUNCATE: u8 = 3;
const SNAPSHOT_MAGIC: &[u8; 8] = b"SBSNAP1\n";
/// A segment is closed and a new one started once it grows past this size.
const SEGMENT_BYTES: u64 = 64 << 20;
/// With the `skip-fsync` bug, buffered records reach the OS at most this often.
const SKIP_FSYNC_FLUSH: Duration = Duration::from_secs(2);

/// Errors opening or writing the log.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error(
        "{path}: corrupt WAL record at byte offset {offset} ({reason}), with valid data after it; \
         refusing to start rather than drop acknowledged writes"
    )]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One log entry as the WAL sees it: the payload is the node's encoding of the entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalEntry {
    pub index: u64,
    pub term: u64,
    pub payload: Vec<u8>,
}

/// One record of a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    HardState(Vec<u8>),
    Entry(WalEntry),
    Truncate { from: u64 },
}

impl Record {
    fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0u8; HEADER_BYTES]);
        match self {
            Record::HardState(bytes) => {
                out.push(TAG_HARD_STATE);
                out.extend_from_slice(bytes);
            }
            Record::Entry(e) => {
                out.push(TAG_ENTRY);
                out.extend_from_slice(&e.index.to_le_bytes());
                out.extend_from_slice(&e.term.to_le_bytes());
                out.extend_from_slice(&e.payload);
            }
            Record::Truncate { from } => {
                out.push(TAG_TRUNCATE);
                out.extend_from_slice(&from.to_le_bytes());
            }
        }
        let len_bytes = ((out.len() - start - HEADER_BYTES) as u32).to_le_bytes();
        let len_crc = crc32fast::hash(&len_bytes);
        let crc = record_crc(len_bytes, &out[start + HEADER_BYTES..]);
        out[start..start + 4].copy_from_slice(&len_bytes);
        out[start + 4..start + 8].copy_from_slice(&len_crc.to_le_bytes());
        out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
    }

    fn decode(payload: &[u8]) -> Result<Record, String> {
        let (&tag, body) = payload.split_first().ok_or("empty record")?;
        let u64_at = |at: usize| -> Result<u64, String> {
            body.get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_le_bytes)
                .ok_or_else(|| "record body too short".to_string())
        };
        match tag {
            TAG_HARD_STATE => Ok(Record::HardState(body.to_vec())),
            TAG_ENTRY => Ok(Record::Entry(WalEntry {
                index: u64_at(0)?,
                term: u64_at(8)?,
                payload: body[16..].to_vec(),
            })),
            TAG_TRUNCATE => Ok(Record::Truncate { from: u64_at(0)? }),
            other => Err(format!("unknown record tag {other}")),
        }
    }
}

/// The snapshot as stored: the index and term it covers plus the node's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub index: u64,
    pub term: u64,
    pub payload: Vec<u8>,
}

/// What recovery found on disk.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The latest hard state written, if any.
    pub hard_state: Option<Vec<u8>>,
    pub snapshot: Option<StoredSnapshot>,
    /// The log after the snapshot, contiguous, truncations applied.
    pub entries: Vec<WalEntry>,
    /// Torn-tail repairs made while opening (file, offset, bytes dropped), for logging.
    pub repairs: Vec<String>,
}

#[derive(Debug)]
struct Segment {
    seq: u64,
    path: PathBuf,
    /// The highest entry index written to this segment (0 when none).
    max_index: u64,
}

/// An open write-ahead log.
#[derive(Debug)]
pub struct Wal {
    dir: PathBuf,
    wal_dir: PathBuf,
    segments: Vec<Segment>,
    active: File,
    active_len: u64,
    /// Encoded records not yet written to the active segment.
    buffer: Vec<u8>,
    /// The last hard state appended, re-written at the head of each new segment.
    last_hard_state: Option<Vec<u8>>,
    /// The deliberate `skip-fsync` bug: never fsync, and keep records in memory (where
    /// a kill loses them) for up to [`SKIP_FSYNC_FLUSH`].
    skip_fsync: bool,
    last_flush: Instant,
}

/// The record checksum: over the length field and the payload.
fn record_crc(len_bytes: [u8; 4], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&len_bytes);
    hasher.update(payload);
    hasher.finalize()
}

fn segment_path(wal_dir: &Path, seq: u64) -> PathBuf {
    wal_dir.join(format!("{seq:016}.wal"))
}

fn fsync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// Parses one segment's bytes into records; `Err(offset, reason, torn)` tells where it
/// went wrong and whether the damage is a torn tail (nothing valid after it).
fn parse_segment(bytes: &[u8]) -> (Vec<Record>, Option<(u64, String, bool)>) {
    let mut records = Vec::new();
    let mut at = 0usize;
    while at < bytes.len() {
        let rest = &bytes[at..];
        // Trailing zeroes are what a file system leaves after an interrupted extend.
        if rest.iter().all(|&b| b == 0) {
            return (records, Some((at as u64, "zero-filled tail".into(), true)));
        }
        if rest.len() < HEADER_BYTES {
            return (
                records,
                Some((at as u64, "short record header".into(), true)),
            );
        }
        let u32_at =
            |i: usize| u32::from_le_bytes([rest[i], rest[i + 1], rest[i + 2], rest[i + 3]]);
        let len_bytes = [rest[0], rest[1], rest[2], rest[3]];
        if crc32fast::hash(&len_bytes) != u32_at(4) {
            // A crash leaves a prefix of what was written; a whole header with a wrong
            // length checksum is damage, wherever it is.
            return (
                records,
                Some((at as u64, "record length fails its checksum".into(), false)),
            );
        }
        let len = u32::from_le_bytes(len_bytes) as usize;
        let crc = u32_at(8);
        if rest.len() - HEADER_BYTES < len {
            return (
                records,
                Some((
                    at as u64,
                    format!("record of {len} bytes is cut short"),
                    true,
                )),
            );
        }
        let payload = &rest[HEADER_BYTES..HEADER_BYTES + len];
        let end_of_file = HEADER_BYTES + len == rest.len();
        if record_crc(len_bytes, payload) != crc {
            return (
                records,
                Some((at as u64, "checksum mismatch".into(), end_of_file)),
            );
        }
        match Record::decode(payload) {
            Ok(r) => records.push(r),
            Err(reason) => return (records, Some((at as u64, reason, end_of_file))),
        }
        at += HEADER_BYTES + len;
    }
    (records, None)
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, recovering its contents.
    pub fn open(dir: &Path, skip_fsync: bool) -> Result<(Wal, Recovered), WalError> {
        let wal_dir = dir.join("wal");
        fs::create_dir_all(&wal_dir).map_err(io_err(&wal_dir))?;
        let mut recovered = Recovered {
            snapshot: read_snapshot(dir)?,
            ..Recovered::default()
        };
        let snapshot_index = recovered.snapshot.as_ref().map_or(0, |s| s.index);

        let mut seqs = Vec::new();
        for item in fs::read_dir(&wal_dir).map_err(io_err(&wal_dir))? {
            let item = item.map_err(io_err(&wal_dir))?;
            let name = item.file_name().to_string_lossy().into_owned();
            if let Some(seq) = name
                .strip_suffix(".wal")
                .and_then(|s| s.parse::<u64>().ok())
            {
                seqs.push(seq);
            }
        }
        seqs.sort_unstable();

        let mut segments = Vec::new();
        let last_pos = seqs.len().saturating_sub(1);
        for (pos, &seq) in seqs.iter().enumerate() {
            let path = segment_path(&wal_dir, seq);
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let (records, damage) = parse_segment(&bytes);
            if let Some((offset, reason, torn)) = damage {
                if !(torn && pos == last_pos) {
                    return Err(WalError::Corrupt {
                        path,
                        offset,
                        reason,
                    });
                }
                let f = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                f.set_len(offset)
                    .and_then(|_| f.sync_all())
                    .map_err(io_err(&path))?;
                recovered.repairs.push(format!(
                    "{}: torn tail at byte offset {offset} ({reason}); truncated {} bytes",
                    path.display(),
                    bytes.len() as u64 - offset
                ));
            }
            let mut max_index = 0;
            for record in records {
                match record {
                    Record::HardState(hs) => recovered.hard_state = Some(hs),
                    Record::Truncate { from } => recovered.entries.retain(|e| e.index < from),
                    Record::Entry(e) => {
                        max_index = max_index.max(e.index);
                        if e.index <= snapshot_index {
                            continue;
                        }
                        recovered.entries.retain(|old| old.index < e.index);
                        let expected = recovered
                            .entries
                            .last()
                            .map_or(snapshot_index + 1, |l| l.index + 1);
                        if e.index != expected {
                            return Err(WalError::Corrupt {
                                path,
                                offset: 0,
                                reason: format!(
                                    "log gap: entry {} follows {}",
                                    e.index,
                                    expected - 1
                                ),
                            });
                        }
                        recovered.entries.push(e);
                    }
                }
            }
            segments.push(Segment {
                seq,
                path,
                max_index,
            });
        }

        let next_seq = segments.last().map_or(1, |s| s.seq + 1);
        let hard_state = recovered.hard_state.clone();
        let (active, path) = create_segment(&wal_dir, next_seq)?;
        segments.push(Segment {
            seq: next_seq,
            path,
            max_index: 0,
        });
        let mut wal = Wal {
            dir: dir.to_path_buf(),
            wal_dir,
            segments,
            active,
            active_len: 0,
            buffer: Vec::new(),
            last_hard_state: None,
            skip_fsync,
            last_flush: Instant::now(),
        };
        if let Some(hs) = hard_state {
            wal.append(&[Record::HardState(hs)]);
            wal.sync()?;
        }
        Ok((wal, recovered))
    }

    /// Buffers records; nothing is durable until [`Wal::sync`].
    pub fn append(&mut self, records: &[Record]) {
        for record in records {
            match record {
                Record::HardState(hs) => self.last_hard_state = Some(hs.clone()),
                Record::Entry(e) => {
                    if let Some(active) = self.segments.last_mut() {
                        active.max_index = active.max_index.max(e.index);
                    }
                }
                Record::Truncate { .. } => {}
            }
            record.encode_into(&mut self.buffer);
        }
    }

    /// Writes the buffer and fsyncs it (one fsync for everything appended since the last
    /// call: group commit). Rotates to a new segment when the active one is full.
    pub fn sync(&mut self) -> Result<(), WalError> {
        if self.skip_fsync && self.last_flush.elapsed() < SKIP_FSYNC_FLUSH {
            return Ok(());
        }
        self.last_flush = Instant::now();
        if self.buffer.is_empty() {
            return Ok(());
        }
        let path = self.active_path();
        self.active.write_all(&self.buffer).map_err(io_err(&path))?;
        self.active_len += self.buffer.len() as u64;
        self.buffer.clear();
        if !self.skip_fsync {
            self.active.sync_data().map_err(io_err(&path))?;
        }
        if self.active_len > SEGMENT_BYTES {
            self.rotate()?;
        }
        Ok(())
    }

    fn active_path(&self) -> PathBuf {
        self.segments
            .last()
            .map_or_else(|| self.wal_dir.clone(), |s| s.path.clone())
    }

    /// Closes the active segment and starts a new one headed by the latest hard state.
    fn rotate(&mut self) -> Result<(), WalError> {
        let seq = self.segments.last().map_or(1, |s| s.seq + 1);
        let (file, path) = create_segment(&self.wal_dir, seq)?;
        self.active = file;
        self.active_len = 0;
        self.segments.push(Segment {
            seq,
            path,
            max_index: 0,
        });
        if let Some(hs) = self.last_hard_state.clone() {
            self.append(&[Record::HardState(hs)]);
            let skip = std::mem::replace(&mut self.skip_fsync, false);
            let result = self.sync();
            self.skip_fsync = skip;
            result?;
        }
        Ok(())
    }

    /// Durably replaces the snapshot, then deletes the segments it makes obsolete (every
    /// closed segment whose entries all lie at or below the snapshot's index).
    pub fn save_snapshot(&mut self, snapshot: &StoredSnapshot) -> Result<(), WalError> {
        // Whatever is buffered must not end up after the rotation point out of order.
        let skip = std::mem::replace(&mut self.skip_fsync, false);
        let flushed = self.sync();
        self.skip_fsync = skip;
        flushed?;
        let tmp = self.dir.join("snapshot.tmp");
        let dest = self.dir.join("snapshot");
        let mut bytes = Vec::with_capacity(snapshot.payload.len() + 32);
        bytes.extend_from_slice(SNAPSHOT_MAGIC);
        bytes.extend_from_slice(&[0u8; 4]);
        bytes.extend_from_slice(&snapshot.index.to_le_bytes());
        bytes.extend_from_slice(&snapshot.term.to_le_bytes());
        bytes.extend_from_slice(&snapshot.payload);
        let crc = crc32fast::hash(&bytes[12..]);
        bytes[8..12].copy_from_slice(&crc.to_le_bytes());
        {
            let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
            f.write_all(&bytes)
                .and_then(|_| f.sync_all())
                .map_err(io_err(&tmp))?;
        }
        fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        fsync_dir(&self.dir)?;
        self.rotate()?;
        let active_seq = self.segments.last().map_or(0, |s| s.seq);
        // Delete only a PREFIX of segments: a later segment may hold truncation markers
        // or overwrites for entries of an earlier one, so dropping a middle segment
        // could resurrect entries that were truncated.
        let mut kept = Vec::new();
        let mut deleting = true;
        for seg in std::mem::take(&mut self.segments) {
            deleting &= seg.seq != active_seq && seg.max_index <= snapshot.index;
            if deleting {
                fs::remove_file(&seg.path).map_err(io_err(&seg.path))?;
            } else {
                kept.push(seg);
            }
        }
        self.segments = kept;
        fsync_dir(&self.wal_dir)
    }

    /// The number of segment files (for tests and status).
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

fn create_segment(wal_dir: &Path, seq: u64) -> Result<(File, PathBuf), WalError> {
    let path = segment_path(wal_dir, seq);
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io_err(&path))?;
    fsync_dir(wal_dir)?;
    Ok((file, path))
}

fn read_snapshot(dir: &Path) -> Result<Option<StoredSnapshot>, WalError> {
    let path = dir.join("snapshot");
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut f) => f.read_to_end(&mut bytes).map_err(io_err(&path))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(WalError::Io { path, source: e }),
    };
    let corrupt = |reason: &str| WalError::Corrupt {
        path: path.clone(),
        offset: 0,
        reason: reason.to_string(),
    };
    if bytes.len() < 28 || &bytes[..8] != SNAPSHOT_MAGIC {
        return Err(corrupt("not a snapshot file"));
    }
    let crc = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if crc32fast::hash(&bytes[12..]) != crc {
        return Err(corrupt("snapshot checksum mismatch"));
    }
    let u64_at = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    Ok(Some(StoredSnapshot {
        index: u64_at(12),
        term: u64_at(20),
        payload: bytes[28..].to_vec(),
    }))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A fresh directory under the system temp dir, removed on drop.
    pub(crate) struct TempDir(pub PathBuf);
    impl TempDir {
        pub(crate) fn new(tag: &str) -> TempDir {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let p =
                std::env::temp_dir().join(format!("splitbrain-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).expect("temp dir");
            TempDir(p)
        }
    }
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn entry(index: u64, term: u64) -> Record {
        Record::Entry(WalEntry {
            index,
            term,
            payload: format!("cmd{index}").into_bytes(),
        })
    }

    fn indexes(r: &Recovered) -> Vec<(u64, u64)> {
        r.entries.iter().map(|e| (e.index, e.term)).collect()
    }

    fn only_segment(dir: &Path) -> PathBuf {
        let mut files: Vec<_> = fs::read_dir(dir.join("wal"))
            .expect("wal dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| fs::metadata(p).map(|m| m.len() > 0).unwrap_or(false))
            .collect();
        files.sort();
        files.pop().expect("a non-empty segment")
    }

    #[test]
    fn round_trip_with_hard_state_and_truncation() {
        let dir = TempDir::new("wal-rt");
        {
            let (mut wal, rec) = Wal::open(&dir.0, false).expect("open");
            assert_eq!(rec, Recovered::default());
            wal.append(&[
                Record::HardState(b"hs1".to_vec()),
                entry(1, 1),
                entry(2, 1),
                entry(3, 1),
            ]);
            wal.sync().expect("sync");
            // A conflicting suffix: truncate from 3 and rewrite 3 in term 2, then an
            // implicit overwrite of 4.
            wal.append(&[
                Record::Truncate { from: 3 },
                entry(3, 2),
                entry(4, 2),
                entry(4, 3),
            ]);
            wal.append(&[Record::HardState(b"hs2".to_vec())]);
            wal.sync().expect("sync");
        }
        let (_wal, rec) = Wal::open(&dir.0, false).expect("reopen");
        assert_eq!(rec.hard_state.as_deref(), Some(&b"hs2"[..]));
        assert_eq!(indexes(&rec), vec![(1, 1), (2, 1), (3, 2), (4, 3)]);
        assert_eq!(rec.entries[0].payload, b"cmd1");
        assert!(rec.repairs.is_empty());
        // Reopening twice keeps the hard state (it heads each new segment).
        drop(_wal);
        let (_wal, rec) = Wal::open(&dir.0, false).expect("reopen again");
        assert_eq!(rec.hard_state.as_deref(), Some(&b"hs2"[..]));
    }

    #[test]
    fn torn_tail_is_truncated_with_a_repair_note() {
        let dir = TempDir::new("wal-torn");
        {
            let (mut wal, _) = Wal::open(&dir.0, false).expect("open");
            wal.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
            wal.sync().expect("sync");
        }
        let seg = only_segment(&dir.0);
        let len = fs::metadata(&seg).expect("meta").len();
        let f = OpenOptions::new().write(true).open(&seg).expect("open seg");
        f.set_len(len - 3).expect("tear");
        drop(f);
        let (_wal, rec) = Wal::open(&dir.0, false).expect("torn tail recovers");
        assert_eq!(indexes(&rec), vec![(1, 1), (2, 1)]);
        assert_eq!(rec.repairs.len(), 1, "{:?}", rec.repairs);
        assert_eq!(
            fs::metadata(&seg).expect("meta").len(),
            2 * 33,
            "cut at the torn record"
        );
    }

    #[test]
    fn corruption_in_the_middle_is_refused_naming_file_and_offset() {
        let dir = TempDir::new("wal-mid");
        {
            let (mut wal, _) = Wal::open(&dir.0, false).expect("open");
            wal.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
            wal.sync().expect("sync");
        }
        let seg = only_segment(&dir.0);
        let mut bytes = fs::read(&seg).expect("read");
        // Records are 12 + 1 + 16 + 4 = 33 bytes; flip a payload byte of the second.
        bytes[33 + 24] ^= 0xff;
        fs::write(&seg, &bytes).expect("write");
        let err = Wal::open(&dir.0, false).expect_err("must refuse");
        let msg = err.to_string();
        assert!(
            msg.contains("offset 33") && msg.contains(&seg.display().to_string()),
            "{msg}"
        );
        // The same damage at the very end is a torn tail instead.
        let dir2 = TempDir::new("wal-end");
        {
            let (mut wal, _) = Wal::open(&dir2.0, false).expect("open");
            wal.append(&[entry(1, 1), entry(2, 1)]);
            wal.sync().expect("sync");
        }
        let seg2 = only_segment(&dir2.0);
        let mut bytes = fs::read(&seg2).expect("read");
        bytes[33 + 24] ^= 0xff;
        fs::write(&seg2, &bytes).expect("write");
        let (_w, rec) = Wal::open(&dir2.0, false).expect("torn last record");
        assert_eq!(indexes(&rec), vec![(1, 1)]);
    }

    /// A damaged length field in the last segment is corruption, not a torn tail: with
    /// the length outside the checksum, a length pointing past the end of the file
    /// looked like a record cut short, and every valid record after it was dropped.
    #[test]
    fn a_damaged_length_is_refused_not_taken_for_a_torn_tail() {
        for (name, damage) in [("longer", 0x40u8), ("shorter", 0x01u8)] {
            let dir = TempDir::new(&format!("wal-len-{name}"));
            {
                let (mut wal, _) = Wal::open(&dir.0, false).expect("open");
                wal.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
                wal.sync().expect("sync");
            }
            let seg = only_segment(&dir.0);
            let mut bytes = fs::read(&seg).expect("read");
            // The second record's length: 0x40 in its low byte makes it run past the end
            // of the file; 0x01 makes it one byte off (shorter).
            bytes[33] ^= damage;
            fs::write(&seg, &bytes).expect("write");
            let err = Wal::open(&dir.0, false).expect_err("a damaged length must refuse to start");
            let msg = err.to_string();
            assert!(
                msg.contains("offset 33") && msg.contains("length"),
                "{name}: {msg}"
            );
            assert_eq!(
                fs::read(&seg).expect("read"),
                bytes,
                "{name}: nothing truncated"
            );
        }
    }

    /// A record whose checksum fails while its payload runs exactly to the end of the
    /// file is a torn write; the same record with valid data after it is corruption.
    #[test]
    fn a_damaged_checksum_field_is_torn_only_at_the_end() {
        let dir = TempDir::new("wal-crc");
        {
            let (mut wal, _) = Wal::open(&dir.0, false).expect("open");
            wal.append(&[entry(1, 1), entry(2, 1), entry(3, 1)]);
            wal.sync().expect("sync");
        }
        let seg = only_segment(&dir.0);
        let mut bytes = fs::read(&seg).expect("read");
        bytes[33 + 8] ^= 0xff;
        fs::write(&seg, &bytes).expect("write");
        let err = Wal::open(&dir.0, false).expect_err("refuse");
        assert!(err.to_string().contains("checksum mismatch"), "{err}");
    }

    #[test]
    fn snapshot_compacts_old_segments_and_recovers() {
        let dir = TempDir::new("wal-snap");
        {
            let (mut wal, _) = Wal::open(&dir.0, false).expect("open");
            wal.append(&[
                Record::HardState(b"hs".to_vec()),
                entry(1, 1),
                entry(2, 1),
                entry(3, 1),
            ]);
            wal.sync().expect("sync");
            let before = wal.segment_count();
            wal.save_snapshot(&StoredSnapshot {
                index: 3,
                term: 1,
                payload: b"state@3".to_vec(),
            })
            .expect("snapshot");
            assert!(wal.segment_count() < before + 1, "old segment deleted");
            wal.append(&[entry(4, 2), entry(5, 2)]);
            wal.sync().expect("sync");
        }
        let (_wal, rec) = Wal::open(&dir.0, false).expect("reopen");
        let snap = rec.snapshot.clone().expect("snapshot");
        assert_eq!(
            (snap.index, snap.term, snap.payload.as_slice()),
            (3, 1, &b"state@3"[..])
        );
        assert_eq!(indexes(&rec), vec![(4, 2), (5, 2)]);
        assert_eq!(rec.hard_state.as_deref(), Some(&b"hs"[..]));
    }

    #[test]
    fn compaction_never_resurrects_truncated_entries() {
        let dir = TempDir::new("wal-prefix");
        {
            let (mut wal, _) = Wal::open(&dir.0, false).expect("open");
            wal.append(&(1..=10).map(|i| entry(i, 1)).collect::<Vec<_>>());
            wal.sync().expect("sync");
            let snap = |index| StoredSnapshot {
                index,
                term: 1,
                payload: Vec::new(),
            };
            wal.save_snapshot(&snap(1)).expect("snapshot 1");
            // A new leader truncates 3..=10 and writes 3, 4 in term 2 (a later segment).
            wal.append(&[Record::Truncate { from: 3 }, entry(3, 2), entry(4, 2)]);
            wal.sync().expect("sync");
            // Compacting up to 4 must not delete the segment holding the truncation while
            // the older segment holding the stale 5..=10 stays.
            wal.save_snapshot(&snap(4)).expect("snapshot 4");
        }
        let (_wal, rec) = Wal::open(&dir.0, false).expect("reopen");
        assert_eq!(indexes(&rec), Vec::<(u64, u64)>::new());
    }

    #[test]
    fn skip_fsync_keeps_records_in_memory() {
        let dir = TempDir::new("wal-skip");
        {
            let (mut wal, _) = Wal::open(&dir.0, true).expect("open");
            wal.append(&[entry(1, 1)]);
            wal.sync().expect("sync");
            // Dropped without a flush: like a kill -9 of a process with the bug.
        }
        let (_wal, rec) = Wal::open(&dir.0, false).expect("reopen");
        assert!(rec.entries.is_empty());
    }
}
