//! Walking the folders a support case arrives in, safely: what [`crate::ArtefactReader::add_path`]
//! reads and what it leaves out, and why.
//!
//! - Symbolic links to folders are not followed (a link to `.` or to a parent would loop); links
//!   to regular files are read. The path given by the caller is followed even when it is a link.
//! - Only regular files are read: FIFOs, sockets and devices (`/dev/zero`) are skipped unopened.
//! - A file larger than [`ReadOptions::max_file_bytes`] is skipped (and never read past the cap,
//!   even when its size changes while it is read).
//! - An entry that cannot be read (permission denied, a dangling link, a file gone meanwhile)
//!   is skipped; the walk goes on.
//! - Folders deeper than [`ReadOptions::max_depth`] are skipped.
//!
//! Each skipped entry is a [`SkippedFile`] with its [`SkipReason`], kept in
//! [`crate::Artefacts::skipped_files`] so a report can list every file and why it was not read.
//!
//! Folders also tell which server a file belongs to: [`folder_server`] reads a sub-folder name
//! (`EXCH01/`, `servers/EXCH02/`) as a server name unless it is one of the usual folder names of a
//! collection (`logs`, `ProtocolLog`, `SmtpSend`, `certificates`...).

use serde::{Deserialize, Serialize};

use super::ps::server_name;

/// Limits of a folder walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// Files larger than this are skipped ([`SkipReason::TooLarge`]). Default 4 GiB: a single
    /// protocol log is at most tens of megabytes (MaxFileSize defaults to 10 MB), but a merged
    /// export can be large.
    pub max_file_bytes: u64,
    /// Folders nested deeper than this below the given path are skipped.
    pub max_depth: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self {
            max_file_bytes: 4 << 30,
            max_depth: crate::MAX_DEPTH,
        }
    }
}

/// Why an entry was not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum SkipReason {
    /// A symbolic link to a folder (not followed: links can loop).
    SymlinkedFolder,
    /// A symbolic link whose target does not exist.
    DanglingSymlink,
    /// Not a regular file or folder (FIFO, socket, device).
    NotRegularFile {
        /// What it is (`fifo`, `socket`, `character device`, `block device`, `other`).
        what: String,
    },
    /// Larger than the cap.
    TooLarge {
        /// Its size in bytes (at least the cap + 1 when it grew while read).
        size: u64,
        /// The cap ([`ReadOptions::max_file_bytes`]).
        cap: u64,
    },
    /// Deeper than [`ReadOptions::max_depth`].
    TooDeep,
    /// Opening or reading it failed.
    Unreadable {
        /// What the operating system said.
        error: String,
    },
}

impl std::fmt::Display for SkipReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SymlinkedFolder => f.write_str("symbolic link to a folder (not followed)"),
            Self::DanglingSymlink => f.write_str("symbolic link to nothing"),
            Self::NotRegularFile { what } => write!(f, "not a regular file ({what})"),
            Self::TooLarge { size, cap } => {
                write!(f, "larger than the {cap}-byte cap ({size} bytes)")
            }
            Self::TooDeep => f.write_str("folder nested too deep"),
            Self::Unreadable { error } => write!(f, "unreadable: {error}"),
        }
    }
}

/// An entry the walk did not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedFile {
    /// The path as walked.
    pub path: String,
    /// Why.
    #[serde(flatten)]
    pub reason: SkipReason,
}

/// What a non-regular, non-folder entry is.
pub(crate) fn file_type_name(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if t.is_fifo() {
            return "fifo";
        }
        if t.is_socket() {
            return "socket";
        }
        if t.is_char_device() {
            return "character device";
        }
        if t.is_block_device() {
            return "block device";
        }
    }
    let _ = t;
    "other"
}

/// Reads at most `cap` bytes of a regular file; `Ok(None)` when it holds more.
pub(crate) fn read_capped(path: &std::path::Path, cap: u64) -> std::io::Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)?;
    let mut buf = Vec::new();
    f.take(cap.saturating_add(1)).read_to_end(&mut buf)?;
    Ok((buf.len() as u64 <= cap).then_some(buf))
}

/// Folder names that organise a collection rather than name a server (compared case-insensitively).
const NOT_SERVERS: &[&str] = &[
    "logs",
    "log",
    "protocollog",
    "smtpsend",
    "smtpreceive",
    "smtp",
    "hub",
    "frontend",
    "connectivity",
    "messagetracking",
    "transportroles",
    "certificates",
    "certs",
    "cert",
    "exo",
    "eop",
    "online",
    "exchangeonline",
    "trace",
    "traces",
    "messagetrace",
    "events",
    "eventlogs",
    "eventlog",
    "listings",
    "output",
    "out",
    "bundle",
    "send",
    "receive",
    "recv",
    "exchange",
    "v15",
    "queues",
    "ndr",
    "ndrs",
    "servers",
    "collection",
    "data",
    "tmp",
    "temp",
    "before",
    "after",
    "old",
    "new",
    "export",
    "exports",
    "files",
    "attachments",
    "screenshots",
    "case",
    "ticket",
];

/// The server a folder name names, when it can be one (a NetBIOS-like name with a letter that is
/// not one of the usual folder names of a collection, without dots), upper case.
pub fn folder_server(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if NOT_SERVERS.contains(&lower.as_str())
        || name.starts_with('.')
        || name.contains('.')
        || !name.chars().any(|c| c.is_ascii_alphabetic())
    {
        return None;
    }
    server_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_names() {
        assert_eq!(folder_server("exch01").as_deref(), Some("EXCH01"));
        assert_eq!(folder_server("SmtpSend"), None);
        assert_eq!(folder_server("certificates"), None);
        assert_eq!(folder_server("2019"), None);
        assert_eq!(folder_server("2019-05-02"), None);
        assert_eq!(folder_server("Before"), None);
        assert_eq!(folder_server("my logs"), None);
    }
}
