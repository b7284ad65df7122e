//! The message log's append-only segment files: `log/0000000001.seg`, … in
//! the store's directory. Only the committer writes them, at their end; any
//! task reads them at an offset.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::StoreError;
use crate::codec::Position;

/// A new segment is begun once the current one has grown past this.
pub(crate) const SEGMENT_BYTES: u64 = 32 << 20;

pub(crate) struct Segments {
    dir: PathBuf,
    /// Segment `n` is `files[n - 1]`.
    files: RwLock<Vec<Arc<File>>>,
}

fn io(path: &Path, error: std::io::Error) -> StoreError {
    StoreError::Flush { path: path.display().to_string(), source: Arc::new(error) }
}

impl Segments {
    pub(crate) fn path_of(dir: &Path, segment: u32) -> PathBuf {
        dir.join(format!("{segment:010}.seg"))
    }

    /// Opens the segments in `dir`, which must be numbered 1, 2, … without a gap.
    pub(crate) fn open(dir: &Path) -> Result<Segments, StoreError> {
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
            let file = OpenOptions::new().read(true).write(true).open(&path).map_err(|e| io(&path, e))?;
            files.push(Arc::new(file));
        }
        Ok(Segments { dir: dir.to_owned(), files: RwLock::new(files) })
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

    /// Reads the bytes at `position`.
    pub(crate) fn read(&self, position: Position) -> Result<Vec<u8>, StoreError> {
        let mut bytes = vec![0; position.len as usize];
        self.file(position.segment)?.read_exact_at(&mut bytes, position.offset).map_err(|e| StoreError::Corrupt {
            key: Segments::path_of(&self.dir, position.segment).display().to_string(),
            reason: format!("{} bytes at offset {} cannot be read: {e}", position.len, position.offset),
        })?;
        Ok(bytes)
    }

    /// The whole of segment `segment` from `offset` on.
    pub(crate) fn read_from(&self, segment: u32, offset: u64) -> Result<Vec<u8>, StoreError> {
        let len = self.len(segment)?;
        self.read(Position { segment, offset, len: len.saturating_sub(offset) as u32 })
    }

    pub(crate) fn write_at(&self, segment: u32, offset: u64, bytes: &[u8]) -> Result<(), StoreError> {
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
        let path = Segments::path_of(&self.dir, segment);
        let file = self.file(segment)?;
        file.set_len(len).map_err(|e| io(&path, e))?;
        file.sync_all().map_err(|e| io(&path, e))
    }
}
