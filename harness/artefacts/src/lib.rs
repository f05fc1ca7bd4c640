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
//! - [`trace`]: Exchange Online's `Get-MessageTrace` / `Get-MessageTraceDetail` rows and the EAC's
//!   trace reports, with their LEDs parsed ([`trace::TraceLed`]).
//! - [`events`]: Windows Application-log events (`Get-EventLog | fl`, `Get-WinEvent | fl`,
//!   `wevtutil qe /f:text`).
//! - [`tracking`]: `Get-MessageTrackingLog` entries and `Test-NetConnection` results.
//!
//! Shared layers:
//! - [`text`]: bytes to lines (BOM, UTF-16, CRLF, truncation), evidence and skipped-line counts.
//! - [`csv`]: the CSV dialect of the transport logs.
//! - [`ps`], [`format_list`], [`ps_json`], [`table`], [`export_csv`]: PowerShell objects read
//!   from `Format-List` text, `ConvertTo-Json`, the default table view (any object, columns cut
//!   with `...`) and `Export-Csv` (and the EAC's CSV reports), shared by every listing. Each
//!   object is classified by its properties ([`classify_object`]) into its typed collection and
//!   keeps the server it names ([`ps::Parsed::server`]).
//! - [`walk`]: folder walking that never follows symlinked folders, reads regular files only,
//!   caps file sizes and skips unreadable entries with a reason ([`walk::SkippedFile`]); sub-folder
//!   names tell the server of the files below them.
//!
//! Writing a whole lab run: [`bundle`] (every file above into one folder, keys mode 0600).
//!
//! Entry points: [`detect`] names a file's kind from its content (never its name);
//! [`read_paths`] / [`ArtefactReader`] read files and folders into one [`Artefacts`] set with
//! per-file skipped-line counts. A path given that does not exist is an error; an entry inside a
//! folder that cannot be read is skipped with its reason ([`Artefacts::skipped_files`]); a file of
//! no known kind is reported as [`ArtefactKind::Unknown`], never an error.

pub mod bundle;
pub mod certs;
pub mod connectivity;
pub mod connectors;
pub mod csv;
pub mod events;
pub mod export_csv;
pub mod format_list;
pub mod mock_records;
pub mod ndr;
pub mod protocol_log;
pub mod ps;
pub mod ps_json;
pub mod queue;
pub mod table;
pub mod text;
pub mod trace;
pub mod tracking;
pub mod walk;

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
use self::trace::{TraceDetailRow, TraceRow};
use self::tracking::{NetConnectionRow, TrackingRow};
use self::walk::{ReadOptions, SkipReason, SkippedFile};
use hybridlab_model::event::WindowsEvent;

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
    /// `Get-MessageTrace` (Exchange Online), or the EAC's summary report.
    MessageTrace,
    /// `Get-MessageTraceDetail` (Exchange Online), or the EAC's extended report.
    MessageTraceDetail,
    /// Windows events (`Get-EventLog`, `Get-WinEvent`, `wevtutil`).
    WindowsEvent,
    /// `Get-MessageTrackingLog`.
    MessageTrackingLog,
    /// `Test-NetConnection`.
    NetConnection,
}

impl ListingKind {
    /// The cmdlet (or command) whose output it is, as a report names it.
    pub fn cmdlet(self) -> &'static str {
        match self {
            Self::ExchangeCertificate => "Get-ExchangeCertificate",
            Self::CertProvider => "Get-ChildItem Cert:\\LocalMachine\\My",
            Self::Queue => "Get-Queue",
            Self::Message => "Get-Message",
            Self::SendConnector => "Get-SendConnector",
            Self::ReceiveConnector => "Get-ReceiveConnector",
            Self::InboundConnector => "Get-InboundConnector",
            Self::OutboundConnector => "Get-OutboundConnector",
            Self::MessageTrace => "Get-MessageTrace",
            Self::MessageTraceDetail => "Get-MessageTraceDetail",
            Self::WindowsEvent => "Windows event log",
            Self::MessageTrackingLog => "Get-MessageTrackingLog",
            Self::NetConnection => "Test-NetConnection",
        }
    }
}

/// How a listing was exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListingFormat {
    /// `| Format-List` text.
    FormatList,
    /// `| ConvertTo-Json`.
    Json,
    /// PowerShell's default table view (`Format-Table`, `Select-Object a,b`).
    Table,
    /// `| Export-Csv` (or a CSV report downloaded from the admin center).
    Csv,
    /// `wevtutil qe /f:text`.
    EventText,
}

impl ListingFormat {
    /// How a report names the format.
    pub fn label(self) -> &'static str {
        match self {
            Self::FormatList => "Format-List",
            Self::Json => "JSON",
            Self::Table => "table",
            Self::Csv => "CSV",
            Self::EventText => "wevtutil text",
        }
    }
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
    if trace::is_trace_detail(obj) {
        return Some(ListingKind::MessageTraceDetail);
    }
    if trace::is_trace(obj) {
        return Some(ListingKind::MessageTrace);
    }
    if events::is_event(obj) {
        return Some(ListingKind::WindowsEvent);
    }
    if tracking::is_tracking(obj) {
        return Some(ListingKind::MessageTrackingLog);
    }
    if tracking::is_net_connection(obj) {
        return Some(ListingKind::NetConnection);
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
    let listing = |of, format| ArtefactKind::Listing { of, format };
    if events::is_wevtutil_text(text) {
        return listing(ListingKind::WindowsEvent, ListingFormat::EventText);
    }
    if export_csv::is_export_csv(text) {
        let doc = export_csv::parse("", text);
        return majority(&doc.objects)
            .map_or(ArtefactKind::Unknown, |of| listing(of, ListingFormat::Csv));
    }
    let doc = format_list::parse("", text);
    if let Some(of) = majority(&doc.objects) {
        return listing(of, ListingFormat::FormatList);
    }
    let tables = table::find_tables("", text);
    majority(&tables.objects).map_or(ArtefactKind::Unknown, |of| {
        listing(of, ListingFormat::Table)
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
    /// The server its folder names ([`walk::folder_server`]), when it is below one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
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
    /// Exchange Online `Get-MessageTrace` rows (and EAC summary report rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub traces: Vec<Parsed<TraceRow>>,
    /// Exchange Online `Get-MessageTraceDetail` rows (and EAC extended report rows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace_details: Vec<Parsed<TraceDetailRow>>,
    /// Windows Application-log events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Parsed<WindowsEvent>>,
    /// `Get-MessageTrackingLog` entries.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tracking: Vec<Parsed<TrackingRow>>,
    /// `Test-NetConnection` results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub net_connections: Vec<Parsed<NetConnectionRow>>,
    /// Entries of the folders walked that were not read, with the reason ([`walk`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped_files: Vec<SkippedFile>,
}

impl Artefacts {
    /// Skipped lines over all files.
    pub fn skipped_total(&self) -> usize {
        self.files.iter().map(|f| f.skipped.count).sum()
    }

    /// The server a file's folder names (by the file's label as evidence carries it).
    pub fn file_server(&self, file: &str) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.file == file)
            .and_then(|f| f.server.as_deref())
    }

    /// Every file not read, with why: the entries the walk skipped, then files of no known kind.
    /// Empty when every file was read as something.
    pub fn not_read(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .skipped_files
            .iter()
            .map(|s| (s.path.clone(), s.reason.to_string()))
            .collect();
        out.extend(
            self.files
                .iter()
                .filter(|f| f.kind == ArtefactKind::Unknown)
                .map(|f| {
                    let why = if f.skipped.count == 0 {
                        "empty".to_string()
                    } else {
                        format!(
                            "not a format diagnose reads ({} line(s) not understood)",
                            f.skipped.count
                        )
                    };
                    (f.file.clone(), why)
                }),
        );
        out
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
    options: ReadOptions,
    /// The server the folder being walked names (rows that name none get it).
    folder_server: Option<String>,
}

/// How deep [`ArtefactReader::add_path`] descends into folders by default.
pub const MAX_DEPTH: usize = 16;

impl ArtefactReader {
    /// An empty reader.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same reader with other walk limits (file size cap, depth).
    pub fn with_options(mut self, options: ReadOptions) -> Self {
        self.options = options;
        self
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
            server: self.folder_server.clone(),
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
                let objects = listing_objects(file, text, format, &mut entry.skipped);
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
        let fs = self.folder_server.clone();
        let o = &mut self.out;
        fn push<T>(v: &mut Vec<Parsed<T>>, p: Option<Parsed<T>>, fs: &Option<String>) -> bool {
            match p {
                Some(mut p) => {
                    if p.server.is_none() {
                        p.server.clone_from(fs);
                    }
                    v.push(p);
                    true
                }
                None => false,
            }
        }
        match kind {
            ListingKind::ExchangeCertificate | ListingKind::CertProvider => {
                let source = if kind == ListingKind::ExchangeCertificate {
                    CertListingSource::ExchangeCertificate
                } else {
                    CertListingSource::CertProvider
                };
                certs::row_from_object(obj)
                    .map(|mut parsed| {
                        if parsed.server.is_none() {
                            parsed.server.clone_from(&fs);
                        }
                        o.certificates.push(CertificateEntry {
                            source,
                            format,
                            parsed,
                        })
                    })
                    .is_some()
            }
            ListingKind::Queue => push(&mut o.queues, queue::queue_from_object(obj), &fs),
            ListingKind::Message => push(&mut o.messages, queue::message_from_object(obj), &fs),
            ListingKind::SendConnector => push(
                &mut o.send_connectors,
                connectors::send_connector_from_object(obj),
                &fs,
            ),
            ListingKind::ReceiveConnector => push(
                &mut o.receive_connectors,
                connectors::receive_connector_from_object(obj),
                &fs,
            ),
            ListingKind::InboundConnector => push(
                &mut o.inbound_connectors,
                connectors::inbound_connector_from_object(obj),
                &fs,
            ),
            ListingKind::OutboundConnector => push(
                &mut o.outbound_connectors,
                connectors::outbound_connector_from_object(obj),
                &fs,
            ),
            ListingKind::MessageTrace => push(&mut o.traces, trace::trace_from_object(obj), &fs),
            ListingKind::MessageTraceDetail => push(
                &mut o.trace_details,
                trace::trace_detail_from_object(obj),
                &fs,
            ),
            ListingKind::WindowsEvent => push(&mut o.events, events::event_from_object(obj), &fs),
            ListingKind::MessageTrackingLog => {
                push(&mut o.tracking, tracking::tracking_from_object(obj), &fs)
            }
            ListingKind::NetConnection => push(
                &mut o.net_connections,
                tracking::net_connection_from_object(obj),
                &fs,
            ),
        }
    }

    /// Adds a file, or every file under a folder (sorted by name, at most
    /// [`ReadOptions::max_depth`] deep). Entries inside a folder that cannot or must not be read
    /// are skipped with their reason ([`Artefacts::skipped_files`]; see [`walk`]).
    ///
    /// # Errors
    /// `path` itself does not exist, or it is a folder that cannot be listed, or a file that
    /// cannot be read.
    pub fn add_path(&mut self, path: &Path) -> Result<(), ReadError> {
        let io = |source| ReadError::Io {
            path: path.to_path_buf(),
            source,
        };
        // The path given is followed even when it is a link.
        let meta = std::fs::metadata(path).map_err(io)?;
        if meta.is_dir() {
            let entries = list_dir(path).map_err(io)?;
            for p in entries {
                self.walk(&p, 1);
            }
            return Ok(());
        }
        if !meta.is_file() {
            self.skip(
                path,
                SkipReason::NotRegularFile {
                    what: walk::file_type_name(&meta.file_type()).to_string(),
                },
            );
            return Ok(());
        }
        match walk::read_capped(path, self.options.max_file_bytes).map_err(io)? {
            Some(bytes) => {
                self.add_bytes(&path.display().to_string(), &bytes);
            }
            None => self.skip(
                path,
                SkipReason::TooLarge {
                    size: meta
                        .len()
                        .max(self.options.max_file_bytes.saturating_add(1)),
                    cap: self.options.max_file_bytes,
                },
            ),
        }
        Ok(())
    }

    fn skip(&mut self, path: &Path, reason: SkipReason) {
        self.out.skipped_files.push(SkippedFile {
            path: path.display().to_string(),
            reason,
        });
    }

    /// One entry inside a folder: never an error, never a followed folder link.
    fn walk(&mut self, path: &Path, depth: usize) {
        let unreadable = |e: std::io::Error| SkipReason::Unreadable {
            error: e.to_string(),
        };
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => return self.skip(path, unreadable(e)),
        };
        let meta = if meta.file_type().is_symlink() {
            match std::fs::metadata(path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return self.skip(path, SkipReason::DanglingSymlink);
                }
                Err(e) => return self.skip(path, unreadable(e)),
                Ok(t) if t.is_dir() => return self.skip(path, SkipReason::SymlinkedFolder),
                Ok(t) => t,
            }
        } else {
            meta
        };
        if meta.is_dir() {
            if depth >= self.options.max_depth {
                return self.skip(path, SkipReason::TooDeep);
            }
            let entries = match list_dir(path) {
                Ok(v) => v,
                Err(e) => return self.skip(path, unreadable(e)),
            };
            let named = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(walk::folder_server);
            let outer = self.folder_server.clone();
            if self.folder_server.is_none() {
                self.folder_server = named;
            }
            for p in entries {
                self.walk(&p, depth + 1);
            }
            self.folder_server = outer;
            return;
        }
        if !meta.is_file() {
            let what = walk::file_type_name(&meta.file_type()).to_string();
            return self.skip(path, SkipReason::NotRegularFile { what });
        }
        let cap = self.options.max_file_bytes;
        if meta.len() > cap {
            return self.skip(
                path,
                SkipReason::TooLarge {
                    size: meta.len(),
                    cap,
                },
            );
        }
        match walk::read_capped(path, cap) {
            Ok(Some(bytes)) => {
                self.add_bytes(&path.display().to_string(), &bytes);
            }
            Ok(None) => self.skip(
                path,
                SkipReason::TooLarge {
                    size: cap.saturating_add(1),
                    cap,
                },
            ),
            Err(e) => self.skip(path, unreadable(e)),
        }
    }

    /// Builds the set: protocol log sessions are assembled across all files now.
    pub fn finish(self) -> Artefacts {
        let Self {
            protocol,
            protocol_files,
            mut out,
            ..
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

/// The entries of a folder, sorted by path.
fn list_dir(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    // An entry whose listing failed is left out; one that vanishes later is skipped then.
    for e in std::fs::read_dir(path)?.flatten() {
        entries.push(e.path());
    }
    entries.sort();
    Ok(entries)
}

/// The objects of a listing file in `format`; lines no object used go to `skipped`. A
/// `Format-List` file may also hold tables (a pasted console session): both are read.
fn listing_objects(
    file: &str,
    text: &str,
    format: ListingFormat,
    skipped: &mut Skipped,
) -> Vec<PsObject> {
    match format {
        ListingFormat::Json => ps_json::parse(file, text).unwrap_or_default(),
        ListingFormat::FormatList => {
            let tables = table::find_tables(file, text);
            let doc = format_list::parse_except(file, text, &tables.lines);
            *skipped = doc.skipped;
            let mut objects = doc.objects;
            objects.extend(tables.objects);
            objects
        }
        ListingFormat::Table => {
            let tables = table::find_tables(file, text);
            for (i, l) in text::split_lines(text).enumerate() {
                if !l.trim().is_empty() && tables.lines.binary_search(&(i + 1)).is_err() {
                    skipped.push(file, i + 1, l);
                }
            }
            tables.objects
        }
        ListingFormat::Csv => {
            let doc = export_csv::parse(file, text);
            *skipped = doc.skipped;
            doc.objects
        }
        ListingFormat::EventText => {
            let (objects, stray) = events::parse_wevtutil(file, text);
            for e in stray {
                skipped.push(file, e.line, &e.text);
            }
            objects
        }
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
