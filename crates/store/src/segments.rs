//! The message log's append-only segment files: `log/0000000001.seg`, … in
//! the store's directory. Only the committer writes them, at their end; any
//! task reads them at an offset.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::StoreError;
use crate::codec::{Frame, Position, read_frame};

/// A new segment is begun once the current one has grown past this.
pub(crate) const SEGMENT_BYTES: u64 = 32 << 20;

pub(crate) struct Segments {
    dir: PathBuf,
    /// Opened for reading only (an audit, a check): nothing is written or cut.
    read_only: bool,
    /// Segment `n` is `files[n - 1]`.
    files: RwLock<Vec<Arc<File>>>,
    /// The frames read last, checked: segment, offset, bytes. Reads of several
    /// values of one frame (a commit's entries, a large document's record) read
    /// and check it once.
    recent: std::sync::Mutex<std::collections::VecDeque<CheckedFrame>>,
}

/// A frame read and checked: segment, offset, its bytes.
type CheckedFrame = (u32, u64, Arc<Vec<u8>>);

/// Frames kept in [`Segments::recent`], and the largest kept.
const RECENT_FRAMES: usize = 8;
const RECENT_FRAME_BYTES: usize = 4 << 20;

fn io(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Flush { path: path.display().to_string(), source: Arc::new(error) }
}

impl Segments {
    pub(crate) fn path_of(dir: &Path, segment: u32) -> PathBuf {
        dir.join(format!("{segment:010}.seg"))
    }

    /// Opens the segments in `dir`, which must be numbered 1, 2, … without a gap.
    pub(crate) fn open(dir: &Path) -> Result<Segments, StoreError> {
        Segments::open_as(dir, false)
    }

    /// [`Segments::open`] for reading only: the files are opened read-only.
    pub(crate) fn open_read_only(dir: &Path) -> Result<Segments, StoreError> {
        Segments::open_as(dir, true)
    }

    fn open_as(dir: &Path, read_only: bool) -> Result<Segments, StoreError> {
        let mut numbers = Vec::new();
        for item in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let item = item.map_err(|e| io(dir, e))?;
            let name = item.file_name();
            let name = name.to_string_lossy();
            if let Some(number) = name.strip_suffix(".seg").and_then(|n| n.parse::<u32>().ok()) {
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
        let mut files = Vec::with_capacity(numbers.len());
        for (index, number) in numbers.iter().enumerate() {
            let path = Segments::path_of(dir, *number);
            if *number as usize != index + 1 {
                return Err(StoreError::Corrupt {
                    key: path.display().to_string(),
                    reason: format!("segment {} is missing: the log's segments must follow one another", index + 1),
                });
            }
            let file = OpenOptions::new().read(true).write(!read_only).open(&path).map_err(|e| io(&path, e))?;
            files.push(Arc::new(file));
        }
        Ok(Segments { dir: dir.to_owned(), read_only, files: RwLock::new(files), recent: Default::default() })
    }

    fn writable(&self) -> Result<(), StoreError> {
        if self.read_only {
            return Err(StoreError::Flush {
                path: self.dir.display().to_string(),
                source: Arc::new(std::io::Error::other("the log is open for reading only")),
            });
        }
        Ok(())
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn count(&self) -> u32 {
        self.files.read().map_or(0, |files| files.len() as u32)
    }

    pub(crate) fn file(&self, segment: u32) -> Result<Arc<File>, StoreError> {
        let files = self.files.read().map_err(|_| StoreError::Stopped)?;
        files.get((segment as usize).wrapping_sub(1)).cloned().ok_or_else(|| StoreError::Corrupt {
            key: Segments::path_of(&self.dir, segment).display().to_string(),
            reason: "the segment is missing".to_owned(),
        })
    }

    /// Begins segment `count() + 1` (empty), durably: its directory entry is synced too.
    pub(crate) fn begin(&self) -> Result<u32, StoreError> {
        self.writable()?;
        let mut files = self.files.write().map_err(|_| StoreError::Stopped)?;
        let segment = files.len() as u32 + 1;
        let path = Segments::path_of(&self.dir, segment);
        let file = OpenOptions::new().read(true).write(true).create_new(true).open(&path).map_err(|e| io(&path, e))?;
        file.sync_all().map_err(|e| io(&path, e))?;
        File::open(&self.dir).and_then(|dir| dir.sync_all()).map_err(|e| io(&self.dir, e))?;
        files.push(Arc::new(file));
        Ok(segment)
    }

    pub(crate) fn len(&self, segment: u32) -> Result<u64, StoreError> {
        let path = Segments::path_of(&self.dir, segment);
        Ok(self.file(segment)?.metadata().map_err(|e| io(&path, e))?.len())
    }

    /// The value at `position`, once the frame that holds it matches its CRC:
    /// damage is `store.corrupt`, never served.
    pub(crate) fn read(&self, position: Position) -> Result<Vec<u8>, StoreError> {
        let start = (position.offset - position.frame_at) as usize;
        let end = start + position.len as usize;
        let cached = self.recent.lock().ok().and_then(|recent| {
            recent
                .iter()
                .find(|(segment, at, bytes)| {
                    (*segment, *at, bytes.len()) == (position.segment, position.frame_at, position.frame_len as usize)
                })
                .map(|(_, _, bytes)| Arc::clone(bytes))
        });
        if let Some(frame) = cached {
            return Ok(frame[start..end].to_vec());
        }
        let frame = self.read_raw(position.segment, position.frame_at, position.frame_len as usize)?;
        let damaged = |reason: String| StoreError::Corrupt {
            key: format!(
                "{} at offset {}",
                Segments::path_of(&self.dir, position.segment).display(),
                position.frame_at
            ),
            reason,
        };
        match read_frame(&frame) {
            Frame::Whole(_, size) if size == frame.len() => {}
            Frame::Whole(_, size) => {
                return Err(damaged(format!(
                    "the frame's header gives {size} bytes where the index knows {}",
                    frame.len()
                )));
            }
            Frame::Torn => return Err(damaged("the frame the index points to is cut short".to_owned())),
            Frame::Damaged => return Err(damaged("a frame of the log does not match its checksum".to_owned())),
        }
        let value = frame[start..end].to_vec();
        if frame.len() <= RECENT_FRAME_BYTES
            && let Ok(mut recent) = self.recent.lock()
        {
            if recent.len() >= RECENT_FRAMES {
                recent.pop_front();
            }
            recent.push_back((position.segment, position.frame_at, Arc::new(frame)));
        }
        Ok(value)
    }

    /// `len` bytes of `segment` at `offset`, unchecked (the caller checks the frames they hold).
    fn read_raw(&self, segment: u32, offset: u64, len: usize) -> Result<Vec<u8>, StoreError> {
        let mut bytes = vec![0; len];
        self.file(segment)?.read_exact_at(&mut bytes, offset).map_err(|e| StoreError::Corrupt {
            key: Segments::path_of(&self.dir, segment).display().to_string(),
            reason: format!("{len} bytes at offset {offset} cannot be read: {e}"),
        })?;
        Ok(bytes)
    }

    /// The whole of segment `segment` from `offset` on, unchecked (the caller walks its frames).
    pub(crate) fn read_from(&self, segment: u32, offset: u64) -> Result<Vec<u8>, StoreError> {
        let len = self.len(segment)?;
        self.read_raw(segment, offset, len.saturating_sub(offset) as usize)
    }

    pub(crate) fn write_at(&self, segment: u32, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.writable()?;
        if let Ok(mut recent) = self.recent.lock() {
            let end = offset + bytes.len() as u64;
            recent.retain(|(at_segment, at, frame)| {
                *at_segment != segment || *at + frame.len() as u64 <= offset || *at >= end
            });
        }
        let path = Segments::path_of(&self.dir, segment);
        self.file(segment)?.write_all_at(bytes, offset).map_err(|e| io(&path, e))
    }

    /// Makes what was written to `segment` durable (`fdatasync`).
    pub(crate) fn sync(&self, segment: u32) -> Result<(), StoreError> {
        let path = Segments::path_of(&self.dir, segment);
        self.file(segment)?.sync_data().map_err(|e| io(&path, e))
    }

    /// Cuts `segment` back to `len` bytes (a write that failed or never completed).
    pub(crate) fn truncate(&self, segment: u32, len: u64) -> Result<(), StoreError> {
        self.writable()?;
        if let Ok(mut recent) = self.recent.lock() {
            recent.retain(|(at_segment, at, _)| *at_segment < segment || *at < len);
        }
        let path = Segments::path_of(&self.dir, segment);
        let file = self.file(segment)?;
        file.set_len(len).map_err(|e| io(&path, e))?;
        file.sync_all().map_err(|e| io(&path, e))
    }
}

/// The file `acknowledged` in a store's directory: where the log ended after
/// the last flushed commit was synced (segment, offset, and the log's head
/// then: its sequence and the Merkle tree's root). It witnesses the log's acknowledged end outside sled: a log that
/// ends before it lost acknowledged commits, even with sled's files gone.
///
/// Two slots of [`MARK_BYTES`] written in turn, each with a counter and a
/// CRC, so that a write cut short leaves the other one whole. It is written
/// (`pwrite`) only after the segment's `fdatasync` returned, so it is never
/// ahead of what the log holds durably; it is synced when the store closes,
/// and by the operating system's writeback before that (after a power loss
/// it may be behind, never ahead).
pub(crate) struct Acknowledged {
    file: File,
    counter: std::sync::atomic::AtomicU64,
}

/// What the marker says: the log's end after the last flushed commit, and the head then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mark {
    pub segment: u32,
    pub end: u64,
    pub sequence: u64,
    pub hash: Vec<u8>,
}

/// One slot: magic, counter, segment, end, sequence, hash (32), CRC.
const MARK_BYTES: usize = 4 + 8 + 4 + 8 + 8 + 32 + 4;
const MARK_MAGIC: &[u8; 4] = b"EGAK";
pub(crate) const ACKNOWLEDGED_FILE: &str = "acknowledged";

impl Acknowledged {
    /// Opens (or creates) the marker in the store's directory `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Acknowledged, StoreError> {
        let path = dir.join(ACKNOWLEDGED_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        let counter = Acknowledged::read_file(&file).map_or(0, |(counter, _)| counter);
        Ok(Acknowledged { file, counter: std::sync::atomic::AtomicU64::new(counter) })
    }

    /// What the marker in `dir` says, read only: `Ok(None)` when there is none
    /// (a store written before it existed, or whose marker was removed).
    pub(crate) fn read(dir: &Path) -> Result<Option<Mark>, StoreError> {
        let path = dir.join(ACKNOWLEDGED_FILE);
        match File::open(&path) {
            Ok(file) => Ok(Acknowledged::read_file(&file).map(|(_, mark)| mark)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(io(&path, error)),
        }
    }

    /// The newest whole slot.
    fn read_file(file: &File) -> Option<(u64, Mark)> {
        let mut bytes = [0u8; 2 * MARK_BYTES];
        let read = file.read_at(&mut bytes, 0).ok()?;
        bytes[..read.min(2 * MARK_BYTES)]
            .chunks_exact(MARK_BYTES)
            .filter_map(|slot| {
                let (body, crc) = slot.split_at(MARK_BYTES - 4);
                if &body[..4] != MARK_MAGIC || crc32fast::hash(body).to_le_bytes() != crc {
                    return None;
                }
                let u64_at = |at: usize| u64::from_be_bytes(body[at..at + 8].try_into().unwrap_or_default());
                let mark = Mark {
                    segment: u32::from_be_bytes(body[12..16].try_into().unwrap_or_default()),
                    end: u64_at(16),
                    sequence: u64_at(24),
                    hash: body[32..64].to_vec(),
                };
                Some((u64_at(4), mark))
            })
            .max_by_key(|(counter, _)| *counter)
    }

    /// Records `mark` (a `pwrite`, not synced: see the type).
    pub(crate) fn record(&self, mark: &Mark) -> Result<(), StoreError> {
        let counter = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let mut slot = Vec::with_capacity(MARK_BYTES);
        slot.extend_from_slice(MARK_MAGIC);
        slot.extend_from_slice(&counter.to_be_bytes());
        slot.extend_from_slice(&mark.segment.to_be_bytes());
        slot.extend_from_slice(&mark.end.to_be_bytes());
        slot.extend_from_slice(&mark.sequence.to_be_bytes());
        let mut hash = [0u8; 32];
        let n = mark.hash.len().min(32);
        hash[..n].copy_from_slice(&mark.hash[..n]);
        slot.extend_from_slice(&hash);
        slot.extend_from_slice(&crc32fast::hash(&slot).to_le_bytes());
        let at = (counter % 2) * MARK_BYTES as u64;
        self.file
            .write_all_at(&slot, at)
            .map_err(|e| StoreError::Flush { path: ACKNOWLEDGED_FILE.to_owned(), source: Arc::new(e) })
    }

    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        self.file.sync_data().map_err(|e| StoreError::Flush { path: ACKNOWLEDGED_FILE.to_owned(), source: Arc::new(e) })
    }
}
