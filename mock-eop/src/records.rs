//! The records file of `mock-eop serve --records`: one JSON session record per line
//! (docs/formats.md, "The mock EOP's session records"), written so that nothing answered `250`
//! is lost.
//!
//! - Every accepted message is appended as a snapshot of its session (`close_reason` `open`,
//!   no transcript, that one message) and flushed (and, by default, fsynced) **before** its `250`
//!   is sent ([`crate::server::MessageHook`]); the complete record follows when the session ends.
//!   A reader takes a later line with the same `session_id` as superseding the open snapshots.
//! - A line cut off by a crash (a last line without its newline) is found and truncated when the
//!   file is opened again, never appended to.
//! - The file is opened with `O_NOFOLLOW` (a symlink at its path is refused) and appended to
//!   under a lock, a line at a time.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hybridlab_model::record::SessionRecord;

/// Errors opening or repairing the records file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecordsError {
    /// The file cannot be opened, read or truncated (a symlink at the path is refused).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// The records file, open for appending.
#[derive(Debug)]
pub struct RecordsFile {
    path: PathBuf,
    file: Mutex<File>,
    fsync: bool,
}

/// A torn last line found (and removed) when the file was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornLine {
    /// Bytes of the incomplete line that were cut.
    pub bytes: u64,
    /// The file's length after the cut.
    pub kept: u64,
}

impl RecordsFile {
    /// Opens (or creates, mode 0600) `path` for appending, refusing a symlink, and truncates a
    /// torn last line (returned, for a warning). `fsync`: each line is synced to disk before
    /// [`Self::append`] returns.
    pub fn open(path: &Path, fsync: bool) -> Result<(Self, Option<TornLine>), RecordsError> {
        let io = |source| RecordsError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
            .map_err(io)?;
        let torn = repair(&mut file).map_err(io)?;
        Ok((
            Self {
                path: path.to_path_buf(),
                file: Mutex::new(file),
                fsync,
            },
            torn,
        ))
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` as one line, flushed, and synced when `fsync` is on. The JSON is
    /// streamed through a 1 MiB buffer (a 100 MB message is not encoded in memory first); a
    /// crash in the middle leaves a torn line, which the next [`Self::open`] cuts.
    pub fn append(&self, record: &SessionRecord) -> std::io::Result<()> {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let mut w = std::io::BufWriter::with_capacity(1 << 20, &mut *f);
        serde_json::to_writer(&mut w, record).map_err(std::io::Error::other)?;
        w.write_all(b"\n")?;
        w.flush()?;
        drop(w);
        if self.fsync {
            f.sync_data()?;
        }
        Ok(())
    }
}

/// Cuts the file after its last newline when it does not end with one.
fn repair(file: &mut File) -> std::io::Result<Option<TornLine>> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(None);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] == b'\n' {
        return Ok(None);
    }
    // Scan backwards, a block at a time, for the last newline.
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    let mut keep = 0;
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..n])?;
        if let Some(p) = memchr::memrchr(b'\n', &block[..n]) {
            keep = start + p as u64 + 1;
            break;
        }
        end = start;
    }
    file.set_len(keep)?;
    file.sync_data()?;
    Ok(Some(TornLine {
        bytes: len - keep,
        kept: keep,
    }))
}

/// Writes `contents` to `path`, refusing a symlink there (`O_NOFOLLOW`); `create_new` also
/// refuses an existing file (for files in a fresh private directory). Mode 0644.
pub fn write_file_nofollow(path: &Path, contents: &[u8], create_new: bool) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).mode(0o644).custom_flags(libc::O_NOFOLLOW);
    if create_new {
        opts.create_new(true);
    } else {
        opts.create(true).truncate(true);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_cut_and_a_symlink_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.jsonl");
        std::fs::write(&path, b"{\"a\":1}\n{\"b\":2}\n{\"c\":").unwrap();
        let (_f, torn) = RecordsFile::open(&path, false).unwrap();
        assert_eq!(torn, Some(TornLine { bytes: 5, kept: 16 }));
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n{\"b\":2}\n");
        let (_f, torn) = RecordsFile::open(&path, false).unwrap();
        assert_eq!(torn, None);
        // A file that is one torn line is emptied.
        std::fs::write(&path, b"{\"c\":").unwrap();
        let (_f, torn) = RecordsFile::open(&path, false).unwrap();
        assert_eq!(torn.unwrap().kept, 0);
        // A symlink at the path (to another file) is refused, and the target is untouched.
        let target = dir.path().join("other");
        std::fs::write(&target, b"precious").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(RecordsFile::open(&link, false).is_err());
        assert!(write_file_nofollow(&link, b"x", false).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }
}
