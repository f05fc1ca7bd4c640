//! Artefacts in Exchange's own formats: what the lab writes and what `diagnose` reads, from the lab
//! or from a real server (docs/formats.md).
//!
//! One module per artefact kind, each with a writer (lab -> Exchange's format) and a reader (real or
//! lab file -> data), so the same parser reads a customer's file and the lab's:
//! - [`protocol_log`]: SMTP send/receive protocol logs (the session events the sender records, the
//!   CSV lines they become, and the sessions rebuilt from any number of files).
//! - [`connectivity`]: the transport connectivity log.
//! - [`certs`]: `Get-ExchangeCertificate` and `Get-ChildItem Cert:\LocalMachine\My` listings.
//! - [`queue`]: `Get-Queue` / `Get-Message` rows and the `LastError` field.
//! - [`connectors`]: `Get-SendConnector`, `Get-ReceiveConnector`, `Get-InboundConnector`,
//!   `Get-OutboundConnector` listings.
//! - [`ndr`]: non-delivery reports (`.eml`, RFC 3464 delivery status) the transport generated.
//! - [`mock_records`]: the mock EOP's per-session JSON records (the lab's stand-in for Exchange
//!   Online's message trace).
//!
//! Shared layers:
//! - [`text`]: bytes to lines (BOM, UTF-16, CRLF, truncation), evidence and skipped-line counts.
//! - [`csv`]: the CSV dialect of the transport logs.
//! - [`ps`], [`format_list`], [`ps_json`]: PowerShell objects, `Format-List` text and
//!   `ConvertTo-Json`, shared by every listing.
//!
//! Writing a whole lab run: [`bundle`] (every file above into one folder, keys mode 0600).
//!
//! Entry points: [`detect`] names a file's kind from its content (never its name);
//! [`read_paths`] / [`ArtefactReader`] read files and folders into one [`Artefacts`] set with
//! per-file skipped-line counts. An unreadable path is an error; a file of no known kind is
//! reported as [`ArtefactKind::Unknown`], never an error.

pub mod bundle;
pub mod certs;
pub mod connectivity;
pub mod connectors;
pub mod csv;
pub mod format_list;
pub mod mock_records;
pub mod ndr;
pub mod protocol_log;
pub mod ps;
pub mod ps_json;
pub mod queue;
pub mod text;

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use self::certs::{CertListingRow, CertListingSource};
use self::connectivity::ConnectivityEvent;
use self::connectors::{
    ConnectorKind, InboundConnectorRow, OutboundConnectorRow, ReceiveConnectorRow, SendConnectorRow,
};
use self::mock_records::MockSession;
use self::ndr::Ndr;
use self::protocol_log::{LogKind, ProtocolLogReader, ProtocolLogs};
use self::ps::{Parsed, PsObject};
use self::queue::{MessageRow, QueueRow};
use self::text::{Evidence, Skipped, TextEncoding};

/// Which listing an object or file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingKind {
    /// `Get-ExchangeCertificate`.
    ExchangeCertificate,
    /// `Get-ChildItem Cert:\LocalMachine\My`.
    CertProvider,
    /// `Get-Queue`.
    Queue,
    /// `Get-Message`.
    Message,
    /// `Get-SendConnector`.
    SendConnector,
    /// `Get-ReceiveConnector`.
    ReceiveConnector,
    /// `Get-InboundConnector` (Exchange Online).
    InboundConnector,
    /// `Get-OutboundConnector` (Exchange Online).
    OutboundConnector,
}

/// How a listing was exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingFormat {
    /// `| Format-List` text.
    FormatList,
    /// `| ConvertTo-Json`.
    Json,
}

/// What a file is, judged from its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum ArtefactKind {
    /// SMTP send protocol log.
    SendProtocolLog,
    /// SMTP receive protocol log.
    ReceiveProtocolLog,
    /// Transport connectivity log.
    ConnectivityLog,
    /// A non-delivery report (`multipart/report; report-type=delivery-status`).
    Ndr,
    /// The mock EOP's session records (JSON lines).
    MockRecords,
    /// A cmdlet listing (the kind most of its objects are, for a file holding several).
    Listing {
        /// The cmdlet whose output it is.
        of: ListingKind,
        /// `Format-List` text or `ConvertTo-Json`.
        format: ListingFormat,
    },
    /// None of the above.
    Unknown,
}

/// Classifies one listed object.
pub fn classify_object(obj: &PsObject) -> Option<ListingKind> {
    if let Some(src) = certs::classify(obj) {
        return Some(match src {
            CertListingSource::ExchangeCertificate => ListingKind::ExchangeCertificate,
            CertListingSource::CertProvider => ListingKind::CertProvider,
        });
    }
    if queue::is_queue(obj) {
        return Some(ListingKind::Queue);
    }
    if queue::is_message(obj) {
        return Some(ListingKind::Message);
    }
    connectors::classify(obj).map(|k| match k {
        ConnectorKind::Send => ListingKind::SendConnector,
        ConnectorKind::Receive => ListingKind::ReceiveConnector,
        ConnectorKind::Inbound => ListingKind::InboundConnector,
        ConnectorKind::Outbound => ListingKind::OutboundConnector,
    })
}

fn majority(objects: &[PsObject]) -> Option<ListingKind> {
    let mut counts: Vec<(ListingKind, usize)> = Vec::new();
    for o in objects {
        if let Some(k) = classify_object(o) {
            match counts.iter_mut().find(|(x, _)| *x == k) {
                Some((_, n)) => *n += 1,
                None => counts.push((k, 1)),
            }
        }
    }
    // First kind wins ties (file order).
    let mut best: Option<(ListingKind, usize)> = None;
    for (k, n) in counts {
        if best.is_none_or(|(_, b)| n > b) {
            best = Some((k, n));
        }
    }
    best.map(|(k, _)| k)
}

/// The kind of a file, from its bytes (any encoding [`text::decode`] reads).
pub fn detect(bytes: &[u8]) -> ArtefactKind {
    detect_text(&text::decode_cow(bytes).0)
}

/// What the first lines of a transport log say.
fn sniff_log(text: &str) -> Option<ArtefactKind> {
    let mut votes = (0usize, 0usize);
    let mut log_lines = 0usize;
    let mut conn_lines = 0usize;
    for line in text::split_lines(text)
        .filter(|l| !l.trim().is_empty())
        .take(64)
    {
        if let Some(h) = line.strip_prefix('#') {
            let (k, v) = h.split_once(':').unwrap_or((h, ""));
            let k = k.trim().to_ascii_lowercase();
            let v = v.trim().to_ascii_lowercase();
            if k == "log-type" {
                if v.contains("connectivity") {
                    return Some(ArtefactKind::ConnectivityLog);
                }
                if v.contains("smtp send") {
                    return Some(ArtefactKind::SendProtocolLog);
                }
                if v.contains("smtp receive") {
                    return Some(ArtefactKind::ReceiveProtocolLog);
                }
            }
            if k == "fields" {
                if v.contains("connector-id") && v.contains("sequence-number") {
                    log_lines += 1;
                } else if v.contains("session") && v.contains("direction") {
                    conn_lines += 1;
                }
            }
            continue;
        }
        let f = csv::split_record(line);
        let iso = f.first().is_some_and(|d| ps::parse_iso(d.trim()).is_some());
        if !iso {
            continue;
        }
        let event = f.get(6).map(|e| e.trim().as_bytes().to_vec());
        if f.len() >= 7
            && f.len() <= 11
            && f[3].trim().parse::<u32>().is_ok()
            && let Some([c @ (b'+' | b'-' | b'<' | b'>' | b'*')]) = event.as_deref()
        {
            log_lines += 1;
            let data = f.get(7).map(|c| c.as_ref()).unwrap_or("");
            let ctx = f.get(8).map(|c| c.as_ref()).unwrap_or("");
            let code = |d: &str| d.len() >= 3 && d.as_bytes()[..3].iter().all(u8::is_ascii_digit);
            match c {
                b'*' if ctx.eq_ignore_ascii_case("attempting to connect") => votes.0 += 1,
                b'>' if code(data) => votes.1 += 1,
                b'<' if code(data) => votes.0 += 1,
                b'>' if !data.is_empty() => votes.0 += 1,
                b'<' if !data.is_empty() => votes.1 += 1,
                _ => {}
            }
            continue;
        }
        if f.len() >= 5 && f.len() <= 7 && matches!(f[4].trim(), "+" | "-" | ">") {
            conn_lines += 1;
        }
    }
    if log_lines > 0 && log_lines >= conn_lines {
        Some(if votes.1 > votes.0 {
            ArtefactKind::ReceiveProtocolLog
        } else {
            ArtefactKind::SendProtocolLog
        })
    } else if conn_lines > 0 {
        Some(ArtefactKind::ConnectivityLog)
    } else {
        None
    }
}

/// The kind of decoded text.
pub fn detect_text(text: &str) -> ArtefactKind {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') && mock_records::is_records(text) {
        return ArtefactKind::MockRecords;
    }
    if trimmed.starts_with(['{', '['])
        && let Ok(objs) = ps_json::parse("", text)
    {
        return majority(&objs).map_or(ArtefactKind::Unknown, |of| ArtefactKind::Listing {
            of,
            format: ListingFormat::Json,
        });
    }
    if let Some(k) = sniff_log(text) {
        return k;
    }
    if ndr::is_dsn(text) {
        return ArtefactKind::Ndr;
    }
    let doc = format_list::parse("", text);
    majority(&doc.objects).map_or(ArtefactKind::Unknown, |of| ArtefactKind::Listing {
        of,
        format: ListingFormat::FormatList,
    })
}

/// One input file and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtefactFile {
    /// The path (or label) as given.
    pub file: String,
    /// The kind its content showed ([`detect`]); [`ArtefactKind::Unknown`] when nothing matched.
    pub kind: ArtefactKind,
    /// How it was encoded.
    pub encoding: TextEncoding,
    /// Records (log lines) or objects (listings) read.
    pub items: usize,
    /// Lines not understood (every line of an unknown file).
    pub skipped: Skipped,
}

/// A certificate row with the listing it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateEntry {
    /// Which cmdlet listed it (only `Get-ExchangeCertificate` hides key-less certificates).
    pub source: CertListingSource,
    /// Whether it came from `Format-List` text or `ConvertTo-Json` (JSON dates are exact instants,
    /// Format-List dates are local and culture-bound).
    pub format: ListingFormat,
    /// The row and its lines.
    pub parsed: Parsed<CertListingRow>,
}

/// Everything read from a set of files: the contract the diagnosis works on.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Artefacts {
    /// Every input file, in the order read (folders sorted by name).
    pub files: Vec<ArtefactFile>,
    /// Protocol log sessions (send and receive), rebuilt across files and days.
    pub protocol: ProtocolLogs,
    /// Connectivity log events with their lines, in file order.
    pub connectivity: Vec<(ConnectivityEvent, Evidence)>,
    /// Certificate rows from both cmdlets, text and JSON.
    pub certificates: Vec<CertificateEntry>,
    /// `Get-Queue` rows.
    pub queues: Vec<Parsed<QueueRow>>,
    /// `Get-Message` rows.
    pub messages: Vec<Parsed<MessageRow>>,
    /// `Get-SendConnector` rows.
    pub send_connectors: Vec<Parsed<SendConnectorRow>>,
    /// `Get-ReceiveConnector` rows.
    pub receive_connectors: Vec<Parsed<ReceiveConnectorRow>>,
    /// `Get-InboundConnector` rows.
    pub inbound_connectors: Vec<Parsed<InboundConnectorRow>>,
    /// `Get-OutboundConnector` rows.
    pub outbound_connectors: Vec<Parsed<OutboundConnectorRow>>,
    /// Non-delivery reports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ndrs: Vec<Ndr>,
    /// The mock EOP's session records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mock_sessions: Vec<MockSession>,
}

impl Artefacts {
    /// Skipped lines over all files.
    pub fn skipped_total(&self) -> usize {
        self.files.iter().map(|f| f.skipped.count).sum()
    }

    /// Certificates from one cmdlet.
    pub fn certificates_from(
        &self,
        source: CertListingSource,
    ) -> impl Iterator<Item = &Parsed<CertListingRow>> {
        self.certificates
            .iter()
            .filter(move |c| c.source == source)
            .map(|c| &c.parsed)
    }
}

/// An input that could not be read at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// Opening or reading a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder that could not be read.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
}

/// Reads files one by one into an [`Artefacts`] set.
#[derive(Debug, Default)]
pub struct ArtefactReader {
    protocol: ProtocolLogReader,
    /// For each protocol log file added, its index in `out.files`.
    protocol_files: Vec<usize>,
    out: Artefacts,
}

/// How deep [`ArtefactReader::add_path`] descends into folders.
pub const MAX_DEPTH: usize = 16;

impl ArtefactReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one file's bytes; `file` names it in evidence. Returns its kind.
    pub fn add_bytes(&mut self, file: &str, bytes: &[u8]) -> ArtefactKind {
        let (text, encoding) = text::decode_cow(bytes);
        self.add_decoded(file, text, encoding)
    }

    fn add_decoded(
        &mut self,
        file: &str,
        decoded: Cow<'_, str>,
        encoding: TextEncoding,
    ) -> ArtefactKind {
        let kind = detect_text(&decoded);
        let mut entry = ArtefactFile {
            file: file.to_string(),
            kind,
            encoding,
            items: 0,
            skipped: Skipped::default(),
        };
        let text = decoded.as_ref();
        match kind {
            ArtefactKind::SendProtocolLog | ArtefactKind::ReceiveProtocolLog => {
                self.protocol.add_text_owned(file, decoded.into_owned());
                self.protocol_files.push(self.out.files.len());
                self.out.files.push(entry);
                return kind;
            }
            ArtefactKind::ConnectivityLog => {
                let log = connectivity::read_log(file, text);
                entry.items = log.events.len();
                entry.skipped = log.skipped;
                self.out.connectivity.extend(log.events);
            }
            ArtefactKind::Ndr => {
                if let Some(n) = ndr::read_dsn(file, text) {
                    entry.items = n.recipients.len();
                    self.out.ndrs.push(n);
                }
            }
            ArtefactKind::MockRecords => {
                let r = mock_records::read_records(file, text);
                entry.items = r.sessions.len();
                entry.skipped = r.skipped;
                self.out.mock_sessions.extend(r.sessions);
            }
            ArtefactKind::Listing { format, .. } => {
                let objects = match format {
                    ListingFormat::Json => ps_json::parse(file, text).unwrap_or_default(),
                    ListingFormat::FormatList => {
                        let doc = format_list::parse(file, text);
                        entry.skipped = doc.skipped;
                        doc.objects
                    }
                };
                for obj in &objects {
                    if self.add_object(obj, format) {
                        entry.items += 1;
                    } else {
                        for p in &obj.props {
                            entry.skipped.push(file, p.evidence.line, &p.evidence.text);
                        }
                    }
                }
            }
            ArtefactKind::Unknown => {
                for (i, l) in text::split_lines(text).enumerate() {
                    if !l.trim().is_empty() {
                        entry.skipped.push(file, i + 1, l);
                    }
                }
            }
        }
        self.out.files.push(entry);
        kind
    }

    /// Files one object into its typed collection; false if it is none of the known kinds.
    fn add_object(&mut self, obj: &PsObject, format: ListingFormat) -> bool {
        let Some(kind) = classify_object(obj) else {
            return false;
        };
        let o = &mut self.out;
        match kind {
            ListingKind::ExchangeCertificate | ListingKind::CertProvider => {
                let source = if kind == ListingKind::ExchangeCertificate {
                    CertListingSource::ExchangeCertificate
                } else {
                    CertListingSource::CertProvider
                };
                certs::row_from_object(obj).map(|parsed| {
                    o.certificates.push(CertificateEntry {
                        source,
                        format,
                        parsed,
                    })
                })
            }
            ListingKind::Queue => queue::queue_from_object(obj).map(|p| o.queues.push(p)),
            ListingKind::Message => queue::message_from_object(obj).map(|p| o.messages.push(p)),
            ListingKind::SendConnector => {
                connectors::send_connector_from_object(obj).map(|p| o.send_connectors.push(p))
            }
            ListingKind::ReceiveConnector => {
                connectors::receive_connector_from_object(obj).map(|p| o.receive_connectors.push(p))
            }
            ListingKind::InboundConnector => {
                connectors::inbound_connector_from_object(obj).map(|p| o.inbound_connectors.push(p))
            }
            ListingKind::OutboundConnector => connectors::outbound_connector_from_object(obj)
                .map(|p| o.outbound_connectors.push(p)),
        }
        .is_some()
    }

    /// Adds a file, or every file under a folder (sorted by name, at most [`MAX_DEPTH`] deep).
    pub fn add_path(&mut self, path: &Path) -> Result<(), ReadError> {
        self.add_path_at(path, 0)
    }

    fn add_path_at(&mut self, path: &Path, depth: usize) -> Result<(), ReadError> {
        let io = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            if depth >= MAX_DEPTH {
                return Ok(());
            }
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .map(|e| e.map(|e| e.path()))
                .collect::<Result<_, _>>()
                .map_err(io)?;
            entries.sort();
            for p in entries {
                self.add_path_at(&p, depth + 1)?;
            }
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(io)?;
        self.add_bytes(&path.display().to_string(), &bytes);
        Ok(())
    }

    /// Builds the set: protocol log sessions are assembled across all files now.
    pub fn finish(self) -> Artefacts {
        let Self {
            protocol,
            protocol_files,
            mut out,
        } = self;
        let logs = protocol.finish();
        for (info, idx) in logs.files.iter().zip(protocol_files) {
            let f = &mut out.files[idx];
            f.items = info.records;
            f.skipped = info.skipped.clone();
            f.kind = match info.kind {
                Some(LogKind::Receive) => ArtefactKind::ReceiveProtocolLog,
                Some(LogKind::Send) => ArtefactKind::SendProtocolLog,
                None => f.kind,
            };
        }
        out.protocol = logs;
        out
    }
}

/// Reads files and folders (folders recursively, sorted) into one set.
pub fn read_paths<P: AsRef<Path>>(paths: &[P]) -> Result<Artefacts, ReadError> {
    let mut r = ArtefactReader::new();
    for p in paths {
        r.add_path(p.as_ref())?;
    }
    Ok(r.finish())
}

/// Reads one file or folder.
pub fn read_path(path: &Path) -> Result<Artefacts, ReadError> {
    read_paths(&[path])
}

/// Reads every file under a folder.
pub fn read_dir(dir: &Path) -> Result<Artefacts, ReadError> {
    read_paths(&[dir])
}
