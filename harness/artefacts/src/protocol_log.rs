//! SMTP protocol logs (`SENDyyyymmdd-N.LOG`, `RECVyyyymmdd-N.LOG`).
//!
//! The sender records what happened as [`SessionEvent`]s with their lab time; a writer turns a
//! [`ProtocolLogSession`] into the CSV lines Exchange writes (one `+`, `-`, `>`, `<` or `*` line per
//! event, the certificate block multi-line or one-line), and a reader turns real files back into
//! sessions.
//!
//! Writer: [`session_records`] (one session's lines), [`write_log`] (one file's text),
//! [`write_files`] (interleaved by time, one file per UTC day, numbered by size), [`header`],
//! [`file_name`].
//!
//! Reader: [`ProtocolLogReader`] takes any number of files (any `#Version`, with or without the
//! header, CRLF or LF, already decoded from UTF-8/UTF-16 by [`crate::text::decode`]),
//! groups lines by session id across files and days, orders them by sequence number, and rebuilds
//! [`ParsedSession`]s: the lab's own [`ProtocolLogSession`] plus, per event, the lines it came from
//! ([`EventSource`]). A write then read round trip gives back the sessions, certificates reduced to
//! what the log carries ([`logged_view`]). Lines it does not understand are counted per file
//! ([`LogFileInfo::skipped`]) and skipped. The reader keeps each file's text and reads the lines
//! as slices of it; big inputs are read on several threads (files in parallel, then sessions in
//! parallel), merged in a fixed order so the result is the same whatever the thread count.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;

use hybridlab_model::reply::Reply;
use hybridlab_model::x509::CertFacts;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::text::{Evidence, FileLabel, Skipped, split_lines};
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus};

/// Which certificate a certificate block describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertRole {
    /// `Sending certificate`: the one this server presents (logged before the handshake).
    Sending,
    /// `Remote certificate`: the one the peer presented (send log).
    Remote,
    /// `Received certificate`: the one the peer presented (receive log wording).
    Received,
}

impl CertRole {
    /// The info line's context text.
    pub fn log_text(self) -> &'static str {
        match self {
            Self::Sending => "Sending certificate",
            Self::Remote => "Remote certificate",
            Self::Received => "Received certificate",
        }
    }
}

/// One thing that happened in an SMTP session, as the protocol log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SessionEvent {
    /// `*,,attempting to connect` (send log line 0, before the TCP connection exists).
    AttemptingConnect,
    /// `+,,` the TCP connection is up.
    Connected,
    /// `>,<command>,` a command this server sent (send log) or a reply it sent (receive log).
    Sent {
        /// The line without CRLF (`EHLO edge01.contoso.com`, `BDAT 2048 LAST`).
        line: String,
    },
    /// `<,<reply>,` a reply received (send log); multi-line replies are collapsed on one line.
    Received {
        /// The reply.
        reply: Reply,
    },
    /// `<,<text>,` a received line that is not an SMTP reply: the client's command in a receive
    /// log (`EHLO ...`, `MAIL FROM:<...>`), or unparseable text from the peer in a send log.
    ReceivedLine {
        /// The line without CRLF.
        line: String,
    },
    /// The certificate block: `*,,Sending certificate` then subject, issuer, serial, thumbprint and
    /// alternate names (or the one-line form of newer builds).
    Certificate {
        /// Whose certificate.
        role: CertRole,
        /// The certificate.
        cert: CertFacts,
    },
    /// `*,,TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm ...`.
    TlsNegotiated {
        /// The full info text, as SChannel words it.
        text: String,
    },
    /// `*,,TLS negotiation failed with error <status>`.
    TlsFailed {
        /// The SChannel status.
        status: SecurityStatus,
    },
    /// Any other `*` line: `data` and `context` columns verbatim (`sending message`, chain status...).
    Info {
        /// The data column.
        data: String,
        /// The context column.
        context: String,
    },
    /// `-,,Local` / `-,,Remote(SocketError)`.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
    },
}

/// An event with its lab time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedEvent {
    /// When it happened (UTC; the log writes ISO 8601 with milliseconds and `Z`).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened.
    pub event: SessionEvent,
}

/// One SMTP session as a protocol log holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolLogSession {
    /// Send connector name (send log) or `SERVER\Connector` (receive log).
    pub connector_id: String,
    /// 16 uppercase hex digits, the same on every line of the session.
    pub session_id: String,
    /// Local endpoint once connected (`None` before the connection: line 0 of a send log).
    pub local: Option<SocketAddr>,
    /// Remote endpoint.
    pub remote: SocketAddr,
    /// What happened, in order.
    pub events: Vec<TimedEvent>,
}

// ---------------------------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------------------------

/// Send or receive protocol log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// `SENDyyyymmdd-N.LOG`, `#Log-type: SMTP Send Protocol Log`.
    Send,
    /// `RECVyyyymmdd-N.LOG`, `#Log-type: SMTP Receive Protocol Log`.
    Receive,
}

impl LogKind {
    /// The `#Log-type` header value.
    pub fn log_type(self) -> &'static str {
        match self {
            Self::Send => "SMTP Send Protocol Log",
            Self::Receive => "SMTP Receive Protocol Log",
        }
    }

    /// The file name prefix.
    pub fn file_prefix(self) -> &'static str {
        match self {
            Self::Send => "SEND",
            Self::Receive => "RECV",
        }
    }
}

/// How the certificate block is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CertBlockStyle {
    /// Exchange 2013-2019 classic: `*,,Sending certificate` then one line each for subject,
    /// issuer name, serial number, thumbprint and alternate names.
    #[default]
    MultiLine,
    /// Newer builds: one info line whose data holds subject, issuer, serial, thumbprint, not before,
    /// not after and the alternate names separated by spaces, and whose context names them
    /// (`Sending certificate Subject Issuer name Serial number Thumbprint Not before Not after
    /// Subject alternate names`).
    OneLine,
}

/// The context column of a one-line certificate block after the role text.
pub const ONE_LINE_CERT_FIELDS: &str =
    "Subject Issuer name Serial number Thumbprint Not before Not after Subject alternate names";

/// The `#Fields` header of both protocol logs.
pub const FIELDS: &str = "date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context";

/// Options for writing protocol logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogWriterOptions {
    /// Send or receive.
    pub kind: LogKind,
    /// Certificate block style.
    pub cert_style: CertBlockStyle,
    /// `#Version` (real files carry `15.0.0.0` or the build, `15.02.1118.007`).
    pub version: String,
    /// Line ends (Exchange writes CRLF).
    pub line_ending: crate::text::LineEnding,
    /// Start a new file (`-2`, `-3`...) when one would exceed this many bytes
    /// (`SendProtocolLogMaxFileSize`, 10 MB by default).
    pub max_file_bytes: usize,
}

impl LogWriterOptions {
    /// A send log with the classic certificate block, `#Version: 15.0.0.0`, CRLF, 10 MB files.
    pub fn send() -> Self {
        Self {
            kind: LogKind::Send,
            cert_style: CertBlockStyle::MultiLine,
            version: "15.0.0.0".to_string(),
            line_ending: crate::text::LineEnding::CrLf,
            max_file_bytes: 10 * 1024 * 1024,
        }
    }

    /// A receive log, otherwise as [`LogWriterOptions::send`].
    pub fn receive() -> Self {
        Self {
            kind: LogKind::Receive,
            ..Self::send()
        }
    }

    /// The same options with another certificate block style.
    pub fn with_cert_style(mut self, style: CertBlockStyle) -> Self {
        self.cert_style = style;
        self
    }
}

/// One line of a protocol log, before CSV encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// When.
    pub at: OffsetDateTime,
    /// connector-id.
    pub connector_id: String,
    /// session-id.
    pub session_id: String,
    /// sequence-number.
    pub sequence: u32,
    /// local-endpoint (empty before the connection exists).
    pub local: String,
    /// remote-endpoint.
    pub remote: String,
    /// `+`, `-`, `>`, `<` or `*`.
    pub event: char,
    /// data.
    pub data: String,
    /// context.
    pub context: String,
}

impl LogRecord {
    /// The CSV line (no line end).
    pub fn to_csv(&self) -> String {
        let mut out = String::with_capacity(96 + self.data.len() + self.context.len());
        let at = log_time(self.at);
        let seq = self.sequence.to_string();
        let ev = self.event.to_string();
        crate::csv::write_record(
            &mut out,
            [
                at.as_str(),
                self.connector_id.as_str(),
                self.session_id.as_str(),
                seq.as_str(),
                self.local.as_str(),
                self.remote.as_str(),
                ev.as_str(),
                self.data.as_str(),
                self.context.as_str(),
            ],
        );
        out
    }
}

/// `2019-05-02T06:30:01.101Z`: UTC, milliseconds, `Z`.
pub fn log_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The records of one session, sequence numbers from 0. The local endpoint is empty for lines
/// before the `+` connect line when the session starts with `attempting to connect` (send log
/// line 0); otherwise every line carries it.
pub fn session_records(session: &ProtocolLogSession, style: CertBlockStyle) -> Vec<LogRecord> {
    let local = session.local.map(|a| a.to_string()).unwrap_or_default();
    let remote = session.remote.to_string();
    let mut connected = !session
        .events
        .iter()
        .take_while(|e| !matches!(e.event, SessionEvent::Connected))
        .any(|e| matches!(e.event, SessionEvent::AttemptingConnect));
    let mut out = Vec::with_capacity(session.events.len() + 8);
    let mut seq = 0u32;
    for te in &session.events {
        if matches!(te.event, SessionEvent::Connected) {
            connected = true;
        }
        let mut push = |event: char, data: String, context: String| {
            out.push(LogRecord {
                at: te.at,
                connector_id: session.connector_id.clone(),
                session_id: session.session_id.clone(),
                sequence: seq,
                local: if connected {
                    local.clone()
                } else {
                    String::new()
                },
                remote: remote.clone(),
                event,
                data,
                context,
            });
            seq += 1;
        };
        match &te.event {
            SessionEvent::AttemptingConnect => {
                push('*', String::new(), "attempting to connect".into())
            }
            SessionEvent::Connected => push('+', String::new(), String::new()),
            SessionEvent::Sent { line } => push('>', line.clone(), String::new()),
            SessionEvent::Received { reply } => push('<', reply.exchange_log_text(), String::new()),
            SessionEvent::ReceivedLine { line } => push('<', line.clone(), String::new()),
            SessionEvent::Certificate { role, cert } => match style {
                CertBlockStyle::MultiLine => {
                    push('*', String::new(), role.log_text().into());
                    push('*', cert.subject.clone(), "Certificate subject".into());
                    push('*', cert.issuer.clone(), "Certificate issuer name".into());
                    push('*', cert.serial.clone(), "Certificate serial number".into());
                    push(
                        '*',
                        cert.thumbprint.clone(),
                        "Certificate thumbprint".into(),
                    );
                    push(
                        '*',
                        cert.dns_names.join(";"),
                        "Certificate alternate names".into(),
                    );
                }
                CertBlockStyle::OneLine => {
                    let data = format!(
                        "{} {} {} {} {} {} {}",
                        cert.subject,
                        cert.issuer,
                        cert.serial,
                        cert.thumbprint,
                        log_time(cert.not_before),
                        log_time(cert.not_after),
                        cert.dns_names.join(";")
                    );
                    push(
                        '*',
                        data,
                        format!("{} {ONE_LINE_CERT_FIELDS}", role.log_text()),
                    );
                }
            },
            SessionEvent::TlsNegotiated { text } => push('*', String::new(), text.clone()),
            SessionEvent::TlsFailed { status } => push('*', String::new(), status.log_text()),
            SessionEvent::Info { data, context } => push('*', data.clone(), context.clone()),
            SessionEvent::Disconnected { reason } => push('-', String::new(), reason.to_string()),
        }
    }
    out
}

/// The header block of a file created at `date`.
pub fn header(kind: LogKind, date: OffsetDateTime, version: &str, eol: &str) -> String {
    format!(
        "#Software: Microsoft Exchange Server{eol}#Version: {version}{eol}#Log-type: {}{eol}#Date: {}{eol}#Fields: {FIELDS}{eol}",
        kind.log_type(),
        log_time(date)
    )
}

/// `SEND20190502-1.LOG` / `RECV20190502-1.LOG`.
pub fn file_name(kind: LogKind, day: time::Date, n: u32) -> String {
    format!(
        "{}{:04}{:02}{:02}-{n}.LOG",
        kind.file_prefix(),
        day.year(),
        u8::from(day.month()),
        day.day()
    )
}

/// One written log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// File name (`SEND20190502-1.LOG`).
    pub name: String,
    /// Content (UTF-8, header included).
    pub content: String,
}

/// Writes sessions as Exchange does: the lines of all sessions interleaved by time, one file per
/// UTC day, a new numbered file when one reaches `max_file_bytes`.
pub fn write_files(sessions: &[ProtocolLogSession], opts: &LogWriterOptions) -> Vec<LogFile> {
    let eol = opts.line_ending.as_str();
    let mut records: Vec<(usize, LogRecord)> = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        records.extend(
            session_records(s, opts.cert_style)
                .into_iter()
                .map(|r| (i, r)),
        );
    }
    // Stable: same instant keeps session order, then sequence order.
    records.sort_by(|a, b| {
        a.1.at
            .cmp(&b.1.at)
            .then(a.0.cmp(&b.0))
            .then(a.1.sequence.cmp(&b.1.sequence))
    });
    let mut files: Vec<LogFile> = Vec::new();
    let mut current: Option<(time::Date, u32)> = None;
    for (_, r) in &records {
        let day = r.at.to_offset(time::UtcOffset::UTC).date();
        let line = r.to_csv();
        let need_new = match (current, files.last()) {
            (Some((d, _)), Some(f)) => {
                d != day || f.content.len() + line.len() + eol.len() > opts.max_file_bytes
            }
            _ => true,
        };
        if need_new {
            let n = match current {
                Some((d, n)) if d == day => n + 1,
                _ => 1,
            };
            current = Some((day, n));
            files.push(LogFile {
                name: file_name(opts.kind, day, n),
                content: header(opts.kind, r.at, &opts.version, eol),
            });
        }
        let f = files.last_mut().expect("a file was just pushed");
        f.content.push_str(&line);
        f.content.push_str(eol);
    }
    files
}

/// Writes sessions into one file's text (header dated at the first line; no day split).
pub fn write_log(sessions: &[ProtocolLogSession], opts: &LogWriterOptions) -> String {
    let eol = opts.line_ending.as_str();
    let mut records: Vec<(usize, LogRecord)> = Vec::new();
    for (i, s) in sessions.iter().enumerate() {
        records.extend(
            session_records(s, opts.cert_style)
                .into_iter()
                .map(|r| (i, r)),
        );
    }
    records.sort_by(|a, b| {
        a.1.at
            .cmp(&b.1.at)
            .then(a.0.cmp(&b.0))
            .then(a.1.sequence.cmp(&b.1.sequence))
    });
    let date = records
        .first()
        .map(|(_, r)| r.at)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut out = header(opts.kind, date, &opts.version, eol);
    for (_, r) in &records {
        out.push_str(&r.to_csv());
        out.push_str(eol);
    }
    out
}

/// What a protocol log keeps of a certificate, for comparing a written and a read session: the
/// subject, issuer, serial, thumbprint and alternate names; the validity only in the one-line
/// style (the classic block reads back with [`UNKNOWN_TIME`]); CN derived from the subject;
/// `is_self_signed` from subject = issuer; nothing about the key or the extensions.
pub fn logged_view(cert: &CertFacts, style: CertBlockStyle) -> CertFacts {
    let (not_before, not_after) = match style {
        CertBlockStyle::MultiLine => (UNKNOWN_TIME, UNKNOWN_TIME),
        CertBlockStyle::OneLine => (truncate_ms(cert.not_before), truncate_ms(cert.not_after)),
    };
    CertFacts {
        subject: cert.subject.clone(),
        issuer: cert.issuer.clone(),
        serial: cert.serial.clone(),
        thumbprint: cert.thumbprint.clone(),
        not_before,
        not_after,
        common_names: common_names_of(&cert.subject),
        dns_names: cert
            .dns_names
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        is_self_signed: hybridlab_model::x509::dn_eq(&cert.subject, &cert.issuer),
        is_ca: false,
        public_key_bits: 0,
        key_algorithm: String::new(),
        extended_key_usages: Vec::new(),
    }
}

/// The validity a classic (multi-line) certificate block reads back with: the log does not carry
/// it. Check [`EventSource::cert_validity_logged`] before using a logged certificate's dates.
pub const UNKNOWN_TIME: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

fn truncate_ms(t: OffsetDateTime) -> OffsetDateTime {
    let ns = t.unix_timestamp_nanos();
    OffsetDateTime::from_unix_timestamp_nanos(ns - ns.rem_euclid(1_000_000)).unwrap_or(t)
}

/// The CN values of a .NET-rendered DN, in order.
pub fn common_names_of(dn: &str) -> Vec<String> {
    match dn.parse::<hybridlab_model::dn::DnSpec>() {
        Ok(spec) => spec
            .0
            .into_iter()
            .filter(|a| a.key.eq_ignore_ascii_case("CN"))
            .map(|a| a.value)
            .collect(),
        Err(_) => dn
            .split(", ")
            .filter_map(|p| {
                p.strip_prefix("CN=")
                    .or_else(|| p.strip_prefix("cn="))
                    .map(str::to_string)
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------------------------

/// A protocol log file's header block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogHeader {
    /// `#Software`.
    pub software: Option<String>,
    /// `#Version` (any build).
    pub version: Option<String>,
    /// `#Log-type`.
    pub log_type: Option<String>,
    /// `#Date`.
    #[serde(with = "time::serde::rfc3339::option")]
    pub date: Option<OffsetDateTime>,
    /// `#Fields`, in order.
    pub fields: Vec<String>,
}

impl LogHeader {
    /// The kind the `#Log-type` names.
    pub fn kind(&self) -> Option<LogKind> {
        let t = self.log_type.as_deref()?.to_ascii_lowercase();
        if t.contains("send") {
            Some(LogKind::Send)
        } else if t.contains("receive") {
            Some(LogKind::Receive)
        } else {
            None
        }
    }
}

/// One protocol log file as read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFileInfo {
    /// The file as the caller named it.
    pub file: String,
    /// Send or receive (from `#Log-type`, else inferred from the lines; `None` when neither says).
    pub kind: Option<LogKind>,
    /// The header, as far as present.
    pub header: LogHeader,
    /// Lines read as records.
    pub records: usize,
    /// Lines not understood.
    pub skipped: Skipped,
}

/// Where a reconstructed event came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSource {
    /// The log lines that make the event, in order (one, or six for a classic certificate block).
    pub lines: Vec<Evidence>,
    /// The sequence number of the first line.
    pub sequence: u32,
    /// For a certificate event: whether the log carried the validity (one-line style). When
    /// false, `not_before`/`not_after` are [`UNKNOWN_TIME`].
    pub cert_validity_logged: bool,
}

impl EventSource {
    /// The first line.
    pub fn first(&self) -> &Evidence {
        &self.lines[0]
    }

    /// The line whose text contains `needle` (e.g. `Certificate thumbprint`), else the first.
    pub fn line_containing(&self, needle: &str) -> &Evidence {
        self.lines
            .iter()
            .find(|l| l.text.contains(needle))
            .unwrap_or(&self.lines[0])
    }
}

/// A session reconstructed from one or more files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParsedSession {
    /// Send or receive log (`None` if nothing said which).
    pub kind: Option<LogKind>,
    /// The session, as the lab's own type.
    pub session: ProtocolLogSession,
    /// For each of `session.events`, where it came from.
    pub sources: Vec<EventSource>,
}

impl ParsedSession {
    /// Events with their sources.
    pub fn events(&self) -> impl Iterator<Item = (&TimedEvent, &EventSource)> {
        self.session.events.iter().zip(self.sources.iter())
    }
}

/// All sessions of a set of protocol log files.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProtocolLogs {
    /// Sessions, ordered by their first line's time.
    pub sessions: Vec<ParsedSession>,
    /// The files, in the order added.
    pub files: Vec<LogFileInfo>,
}

/// One record before sessions are rebuilt: where its line is in its file's text and what its
/// columns say. Nothing is copied out of the text until the session is built, so a session's
/// strings are allocated together, in session order, and freed together. The columns that repeat
/// on every line of a session (connector, session id, endpoints) are interned.
#[derive(Debug, Clone, Copy)]
struct RawLine {
    file: u32,
    line_no: usize,
    /// The line: byte offset in the file's text and length.
    start: usize,
    len: u32,
    at: OffsetDateTime,
    connector: u32,
    session: u32,
    seq: u32,
    local: u32,
    remote: u32,
    event: u8,
    /// What the line says about the log's kind ([`vote`]).
    vote: Option<LogKind>,
    data: Field,
    context: Field,
}

/// A column's value: a slice of its line, or (when unquoting changed it) an entry of the file's
/// table of unquoted values.
#[derive(Debug, Clone, Copy)]
enum Field {
    Span { start: u32, len: u32 },
    Owned(u32),
}

/// Distinct column values, by index, borrowed from the files' text where possible. Each column
/// remembers its last value: consecutive lines usually belong to the same session, so most
/// lookups are one comparison.
#[derive(Debug, Default)]
struct Interner<'t> {
    index: HashMap<Cow<'t, str>, u32>,
    values: Vec<Cow<'t, str>>,
    recent: [Option<u32>; 4],
}

impl<'t> Interner<'t> {
    /// The id of `s` in column `col` (0..4).
    fn id(&mut self, col: usize, s: Cow<'t, str>) -> u32 {
        let slot = col.min(3);
        if let Some(i) = self.recent[slot]
            && self.values[i as usize] == s
        {
            return i;
        }
        let i = self.intern(s);
        self.recent[slot] = Some(i);
        i
    }

    /// The id of `s`.
    fn intern(&mut self, s: Cow<'t, str>) -> u32 {
        if let Some(&i) = self.index.get(s.as_ref()) {
            return i;
        }
        let i = u32::try_from(self.values.len()).unwrap_or(u32::MAX);
        self.values.push(s.clone());
        self.index.insert(s, i);
        i
    }

    fn get(&self, i: u32) -> &str {
        self.values.get(i as usize).map_or("", |v| v.as_ref())
    }
}

/// Reads protocol log files (any number, any order, sessions spread over several files) into
/// sessions. Lines it cannot read are counted per file and skipped.
///
/// Files are kept as added and read by [`ProtocolLogReader::finish`], on several threads when
/// the input is large; the result does not depend on how many.
#[derive(Default)]
pub struct ProtocolLogReader {
    /// Name and text of each file, in the order added.
    files: Vec<(String, String)>,
    threads: Option<usize>,
}

impl std::fmt::Debug for ProtocolLogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtocolLogReader")
            .field(
                "files",
                &self
                    .files
                    .iter()
                    .map(|(name, text)| (name, text.len()))
                    .collect::<Vec<_>>(),
            )
            .field("threads", &self.threads)
            .finish()
    }
}

const DEFAULT_FIELDS: [&str; 9] = [
    "date-time",
    "connector-id",
    "session-id",
    "sequence-number",
    "local-endpoint",
    "remote-endpoint",
    "event",
    "data",
    "context",
];

/// Below this much text, [`ProtocolLogReader::finish`] uses one thread by default.
const PARALLEL_MIN_BYTES: usize = 4 << 20;

/// At most this many threads by default.
const MAX_THREADS: usize = 8;

impl ProtocolLogReader {
    /// A reader with no files yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same reader with `n` worker threads for [`ProtocolLogReader::finish`] (at least one).
    /// By default: the machine's parallelism (at most 8) for a few megabytes of logs and more,
    /// else one. The sessions, evidence and counts are the same whatever the number.
    pub fn with_threads(mut self, n: usize) -> Self {
        self.threads = Some(n.max(1));
        self
    }

    /// Adds one decoded file. `file` names it in evidence.
    pub fn add_text(&mut self, file: &str, text: &str) {
        self.add_text_owned(file, text.to_string());
    }

    /// [`ProtocolLogReader::add_text`] without copying the text.
    pub fn add_text_owned(&mut self, file: &str, text: String) {
        self.files.push((file.to_string(), text));
    }

    fn thread_count(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            let bytes: usize = self.files.iter().map(|(_, t)| t.len()).sum();
            if bytes < PARALLEL_MIN_BYTES {
                1
            } else {
                std::thread::available_parallelism()
                    .map_or(1, std::num::NonZero::get)
                    .min(MAX_THREADS)
            }
        })
    }

    /// Reads the files and builds the sessions.
    pub fn finish(self) -> ProtocolLogs {
        let threads = self.thread_count();
        // Each file on its own (in parallel), then merged in file order.
        let parsed = par_map(&self.files, threads, |i, (name, text)| {
            parse_file(u32::try_from(i).unwrap_or(u32::MAX), name, text)
        });
        let total = parsed.iter().map(|p| p.lines.len()).sum();
        let mut names = Interner::default();
        let mut lines: Vec<RawLine> = Vec::with_capacity(total);
        let mut files = Vec::with_capacity(parsed.len());
        let mut unquoted = Vec::with_capacity(parsed.len());
        for p in parsed {
            let ids: Vec<u32> = p
                .names
                .values
                .iter()
                .map(|v| names.intern(v.clone()))
                .collect();
            let global = |i: u32| ids.get(i as usize).copied().unwrap_or(u32::MAX);
            lines.extend(p.lines.into_iter().map(|mut l| {
                l.connector = global(l.connector);
                l.session = global(l.session);
                l.local = global(l.local);
                l.remote = global(l.remote);
                l
            }));
            files.push(p.info);
            unquoted.push(p.unquoted);
        }
        let (order, bounds) = group_lines(&lines, names.values.len());

        // Sessions in chunks of groups (in parallel), then concatenated in group order.
        let src = Sources {
            texts: &self.files,
            unquoted: &unquoted,
            files: &files,
            names: &names,
            lines: &lines,
        };
        let chunks = chunk_groups(&bounds, if threads > 1 { threads * 4 } else { 1 });
        let built = par_map(&chunks, threads, |_, groups| {
            let mut b = Rebuild {
                src: &src,
                dn: DnCache::default(),
                labels: vec![None; src.files.len()],
                skipped: Vec::new(),
            };
            let sessions: Vec<ParsedSession> = groups
                .clone()
                .map(|g| b.session(&order[bounds[g]..bounds[g + 1]]))
                .collect();
            (sessions, b.skipped)
        });
        let mut sessions = Vec::with_capacity(bounds.len().saturating_sub(1));
        let mut skipped_lines = Vec::new();
        for (s, k) in built {
            sessions.extend(s);
            skipped_lines.extend(k);
        }
        for i in skipped_lines {
            let l = &lines[i as usize];
            let f = &mut files[l.file as usize];
            let text = src_line(&self.files, l);
            f.skipped.push(&f.file.clone(), l.line_no, text);
        }
        sessions.sort_by(|a, b| {
            let ta = a.session.events.first().map(|e| e.at);
            let tb = b.session.events.first().map(|e| e.at);
            ta.cmp(&tb)
        });
        ProtocolLogs { sessions, files }
    }
}

/// `f` over `items` on up to `threads` scoped threads (items taken in turn), results in item
/// order.
fn par_map<'a, T: Sync, R: Send>(
    items: &'a [T],
    threads: usize,
    f: impl Fn(usize, &'a T) -> R + Sync,
) -> Vec<R> {
    let threads = threads.min(items.len());
    if threads <= 1 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut out = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(t) = items.get(i) else { break };
            out.push((i, f(i, t)));
        }
        out
    };
    let mut done: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        let mut all = work();
        for h in handles {
            match h.join() {
                Ok(v) => all.extend(v),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

/// Line indices grouped by (session id, connector) in order of first appearance, each group in
/// sequence-number order (lines with the same number in the order read), and where each group
/// starts (plus the end).
fn group_lines(lines: &[RawLine], distinct: usize) -> (Vec<u32>, Vec<usize>) {
    // Session ids are interned, so the usual case (one connector per session id) is an array
    // lookup.
    const NONE: u32 = u32::MAX;
    let mut by_session = vec![NONE; distinct];
    let mut other: HashMap<(u32, u32), u32> = HashMap::new();
    let mut connector_of: Vec<u32> = Vec::new();
    let mut group_of = Vec::with_capacity(lines.len());
    for l in lines {
        let first = by_session.get(l.session as usize).copied().unwrap_or(NONE);
        let g = if first != NONE && connector_of[first as usize] == l.connector {
            first
        } else {
            let new = u32::try_from(connector_of.len()).unwrap_or(NONE);
            let g = if first == NONE {
                if let Some(slot) = by_session.get_mut(l.session as usize) {
                    *slot = new;
                }
                new
            } else {
                *other.entry((l.session, l.connector)).or_insert(new)
            };
            if g == new {
                connector_of.push(l.connector);
            }
            g
        };
        group_of.push(g);
    }
    // Counting sort by group keeps the read order within a group; then by sequence number.
    let mut bounds = vec![0usize; connector_of.len() + 1];
    for g in &group_of {
        bounds[*g as usize + 1] += 1;
    }
    for i in 1..bounds.len() {
        bounds[i] += bounds[i - 1];
    }
    let mut fill = bounds.clone();
    let mut order = vec![0u32; lines.len()];
    for (i, g) in group_of.iter().enumerate() {
        let at = &mut fill[*g as usize];
        order[*at] = u32::try_from(i).unwrap_or(u32::MAX);
        *at += 1;
    }
    for w in bounds.windows(2) {
        order[w[0]..w[1]].sort_by_key(|i| lines[*i as usize].seq);
    }
    (order, bounds)
}

/// Groups `0..bounds.len() - 1` cut into about `n` runs of similar line counts.
fn chunk_groups(bounds: &[usize], n: usize) -> Vec<std::ops::Range<usize>> {
    let groups = bounds.len().saturating_sub(1);
    let total = bounds.last().copied().unwrap_or(0);
    let per = total.div_ceil(n.max(1)).max(1);
    let mut out = Vec::new();
    let mut start = 0;
    for g in 0..groups {
        if bounds[g + 1] - bounds[start] >= per {
            out.push(start..g + 1);
            start = g + 1;
        }
    }
    if start < groups {
        out.push(start..groups);
    }
    out
}

/// The text of a line.
fn src_line<'a>(texts: &'a [(String, String)], l: &RawLine) -> &'a str {
    texts
        .get(l.file as usize)
        .and_then(|(_, t)| t.get(l.start..l.start + l.len as usize))
        .unwrap_or("")
}

/// One file read into records.
struct ParsedFile<'t> {
    info: LogFileInfo,
    lines: Vec<RawLine>,
    names: Interner<'t>,
    /// Column values that unquoting changed (a doubled quote, text after the closing quote, a
    /// data column split by unquoted commas).
    unquoted: Vec<String>,
}

fn parse_file<'t>(file_idx: u32, file: &str, text: &'t str) -> ParsedFile<'t> {
    let mut p = ParsedFile {
        info: LogFileInfo {
            file: file.to_string(),
            kind: None,
            header: LogHeader::default(),
            records: 0,
            skipped: Skipped::default(),
        },
        lines: Vec::new(),
        names: Interner::default(),
        unquoted: Vec::new(),
    };
    let mut index = FieldIndex::from_names(&DEFAULT_FIELDS);
    let mut votes = (0usize, 0usize);
    // One field buffer for every line: the fields borrow from `text`.
    let mut fields = Vec::with_capacity(MAX_FIELDS + 1);
    for (i, raw) in split_lines(text).enumerate() {
        let line_no = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        if let Some(h) = raw.strip_prefix('#') {
            if !read_header_line(h, &mut p.info.header) {
                p.info.skipped.push(file, line_no, raw);
            } else if !p.info.header.fields.is_empty() {
                let names: Vec<&str> = p.info.header.fields.iter().map(String::as_str).collect();
                index = FieldIndex::from_names(&names);
            }
            continue;
        }
        let start = offset_in(text, raw);
        match parse_record(raw, &index, &mut p, &mut fields) {
            Some(mut r) => {
                r.file = file_idx;
                r.line_no = line_no;
                r.start = start;
                match r.vote {
                    Some(LogKind::Send) => votes.0 += 1,
                    Some(LogKind::Receive) => votes.1 += 1,
                    None => {}
                }
                p.info.records += 1;
                p.lines.push(r);
            }
            None => p.info.skipped.push(file, line_no, raw),
        }
    }
    p.info.kind = p.info.header.kind().or(match votes {
        (0, 0) => None,
        (s, r) if s >= r => Some(LogKind::Send),
        _ => Some(LogKind::Receive),
    });
    p
}

/// Where `part`, a slice of `whole`, starts in it.
fn offset_in(whole: &str, part: &str) -> usize {
    (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize)
}

/// Reads one file's text (a convenience over [`ProtocolLogReader`]).
pub fn read_log(file: &str, text: &str) -> ProtocolLogs {
    let mut r = ProtocolLogReader::new();
    r.add_text(file, text);
    r.finish()
}

fn read_header_line(h: &str, header: &mut LogHeader) -> bool {
    let Some((k, v)) = h.split_once(':') else {
        return false;
    };
    let v = v.trim();
    match k.trim().to_ascii_lowercase().as_str() {
        "software" => header.software = Some(v.to_string()),
        "version" => header.version = Some(v.to_string()),
        "log-type" => header.log_type = Some(v.to_string()),
        "date" => header.date = crate::ps::parse_iso(v),
        "fields" => {
            header.fields = v.split(',').map(|f| f.trim().to_string()).collect();
        }
        _ => return false,
    }
    true
}

#[derive(Debug, Clone, Copy)]
struct FieldIndex {
    at: usize,
    connector: Option<usize>,
    session: usize,
    seq: usize,
    local: Option<usize>,
    remote: Option<usize>,
    event: usize,
    data: Option<usize>,
    context: Option<usize>,
}

impl FieldIndex {
    fn from_names(names: &[&str]) -> Self {
        let pos = |n: &str| names.iter().position(|x| x.eq_ignore_ascii_case(n));
        let d = Self {
            at: 0,
            connector: Some(1),
            session: 2,
            seq: 3,
            local: Some(4),
            remote: Some(5),
            event: 6,
            data: Some(7),
            context: Some(8),
        };
        match (
            pos("date-time"),
            pos("session-id"),
            pos("sequence-number"),
            pos("event"),
        ) {
            (Some(at), Some(session), Some(seq), Some(event)) => Self {
                at,
                connector: pos("connector-id"),
                session,
                seq,
                local: pos("local-endpoint"),
                remote: pos("remote-endpoint"),
                event,
                data: pos("data"),
                context: pos("context"),
            },
            _ => d,
        }
    }

    fn required(&self) -> usize {
        self.at.max(self.session).max(self.seq).max(self.event) + 1
    }
}

/// At most this many fields on a line with the standard nine columns (more is not a record).
const MAX_FIELDS: usize = 9 + 8;

fn parse_record<'t>(
    raw: &'t str,
    idx: &FieldIndex,
    p: &mut ParsedFile<'t>,
    f: &mut Vec<Cow<'t, str>>,
) -> Option<RawLine> {
    // Offsets are kept as u32 within a line: a line of 4 GiB is not a record.
    let len = u32::try_from(raw.len()).ok()?;
    let required = idx.required();
    let max = 9.max(required) + 8;
    f.clear();
    f.extend(crate::csv::fields_of(raw).take(max + 1));
    if f.len() < required || f.len() > max {
        return None;
    }
    let at = crate::ps::parse_iso(f[idx.at].trim())?;
    let session = trim_cow(&f[idx.session]);
    if session.is_empty() || session.len() > 64 {
        return None;
    }
    let seq: u32 = f[idx.seq].trim().parse().ok()?;
    let event = match f[idx.event].trim().as_bytes() {
        [c @ (b'+' | b'-' | b'>' | b'<' | b'*')] => *c,
        _ => return None,
    };
    let mut field = |v: &Cow<'t, str>| match v {
        Cow::Borrowed(s) => Field::Span {
            start: u32::try_from(offset_in(raw, s)).unwrap_or(0),
            len: u32::try_from(s.len()).unwrap_or(0),
        },
        Cow::Owned(s) => {
            p.unquoted.push(s.clone());
            Field::Owned(u32::try_from(p.unquoted.len() - 1).unwrap_or(u32::MAX))
        }
    };
    // An unquoted comma in the data column (a hand-edited or re-exported file) splits it: with
    // the standard layout, everything between `event` and the last field is the data.
    let (data, context) = match (idx.data, idx.context) {
        (Some(d), Some(c)) if c == d + 1 && c + 1 == 9 && f.len() > 9 => (
            field(&Cow::Owned(f[d..f.len() - 1].join(","))),
            field(&f[f.len() - 1]),
        ),
        _ => (field(&col(f, idx.data)), field(&col(f, idx.context))),
    };
    let vote = vote(
        event,
        field_text(raw, &p.unquoted, data),
        field_text(raw, &p.unquoted, context),
    );
    Some(RawLine {
        file: 0,
        line_no: 0,
        start: 0,
        len,
        at,
        connector: p.names.id(0, col(f, idx.connector)),
        session: p.names.id(1, session),
        seq,
        local: p.names.id(2, col(f, idx.local)),
        remote: p.names.id(3, col(f, idx.remote)),
        event,
        vote,
        data,
        context,
    })
}

/// Column `i` of a split record ("" when absent).
fn col<'t>(f: &[Cow<'t, str>], i: Option<usize>) -> Cow<'t, str> {
    i.and_then(|i| f.get(i))
        .cloned()
        .unwrap_or(Cow::Borrowed(""))
}

fn trim_cow<'t>(v: &Cow<'t, str>) -> Cow<'t, str> {
    match v {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    }
}

/// The value of a column of `line`.
fn field_text<'a>(line: &'a str, unquoted: &'a [String], f: Field) -> &'a str {
    match f {
        Field::Span { start, len } => line
            .get(start as usize..start as usize + len as usize)
            .unwrap_or(""),
        Field::Owned(i) => unquoted.get(i as usize).map_or("", String::as_str),
    }
}

const SMTP_VERBS: [&str; 14] = [
    "EHLO",
    "HELO",
    "MAIL",
    "RCPT",
    "DATA",
    "BDAT",
    "QUIT",
    "STARTTLS",
    "RSET",
    "NOOP",
    "AUTH",
    "XEXCH50",
    "X-ANONYMOUSTLS",
    "XSHADOW",
];

fn starts_with_verb(s: &str) -> bool {
    let w = s.split([' ', ':']).next().unwrap_or("");
    SMTP_VERBS.iter().any(|v| v.eq_ignore_ascii_case(w))
}

fn starts_with_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 3
        && b[..3].iter().all(u8::is_ascii_digit)
        && b.get(3).is_none_or(|c| *c == b' ' || *c == b'-')
}

/// What a line says about the log's kind: a command sent or a reply received is a send log.
fn vote(event: u8, data: &str, context: &str) -> Option<LogKind> {
    match event {
        b'*' if context.eq_ignore_ascii_case("attempting to connect") => Some(LogKind::Send),
        b'>' if starts_with_verb(data) => Some(LogKind::Send),
        b'>' if starts_with_code(data) => Some(LogKind::Receive),
        b'<' if starts_with_verb(data) => Some(LogKind::Receive),
        b'<' if starts_with_code(data) => Some(LogKind::Send),
        _ => None,
    }
}

fn parse_endpoint(s: &str) -> Option<SocketAddr> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if let Ok(a) = t.parse::<SocketAddr>() {
        return Some(a);
    }
    let (ip, port) = t.rsplit_once(':')?;
    let ip: std::net::IpAddr = ip.trim_matches(['[', ']']).parse().ok()?;
    Some(SocketAddr::new(ip, port.parse().ok()?))
}

fn cert_role(context: &str) -> Option<CertRole> {
    [CertRole::Sending, CertRole::Remote, CertRole::Received]
        .into_iter()
        .find(|r| context.trim().eq_ignore_ascii_case(r.log_text()))
}

fn one_line_cert_role(context: &str) -> Option<CertRole> {
    let c = context.trim();
    [CertRole::Sending, CertRole::Remote, CertRole::Received]
        .into_iter()
        .find(|r| {
            c.len() > r.log_text().len()
                && c[..r.log_text().len()].eq_ignore_ascii_case(r.log_text())
                && c[r.log_text().len()..].trim_start().starts_with("Subject")
        })
}

#[derive(Default)]
struct CertParts {
    subject: Option<String>,
    issuer: Option<String>,
    serial: Option<String>,
    thumbprint: Option<String>,
    sans: Option<String>,
}

impl CertParts {
    /// Takes one classic-block line; false if it is not one or its field is already set.
    fn take(&mut self, context: &str, data: &str) -> bool {
        let c = context.trim();
        let is = |name: &str| c.eq_ignore_ascii_case(name);
        let slot = if is("certificate subject") {
            &mut self.subject
        } else if is("certificate issuer name") || is("certificate issuer") {
            &mut self.issuer
        } else if is("certificate serial number") {
            &mut self.serial
        } else if is("certificate thumbprint") {
            &mut self.thumbprint
        } else if is("certificate alternate names") || is("certificate subject alternate names") {
            &mut self.sans
        } else {
            return false;
        };
        if slot.is_some() {
            return false;
        }
        *slot = Some(data.to_string());
        true
    }

    fn into_facts(self, dn: &mut DnCache) -> CertFacts {
        facts_from_parts(
            self.subject.unwrap_or_default(),
            self.issuer.unwrap_or_default(),
            self.serial.unwrap_or_default(),
            self.thumbprint.unwrap_or_default(),
            UNKNOWN_TIME,
            UNKNOWN_TIME,
            self.sans.as_deref().unwrap_or(""),
            dn,
        )
    }
}

/// What a certificate's subject and issuer give ([`common_names_of`], self-signed), per distinct
/// pair: a big log repeats the same few certificates in every session.
#[derive(Debug, Default)]
struct DnCache(HashMap<String, HashMap<String, (Vec<String>, bool)>>);

impl DnCache {
    fn facts(&mut self, subject: &str, issuer: &str) -> (Vec<String>, bool) {
        if let Some(hit) = self.0.get(subject).and_then(|m| m.get(issuer)) {
            return hit.clone();
        }
        let facts = (
            common_names_of(subject),
            !subject.is_empty() && hybridlab_model::x509::dn_eq(subject, issuer),
        );
        self.0
            .entry(subject.to_string())
            .or_default()
            .insert(issuer.to_string(), facts.clone());
        facts
    }
}

#[allow(clippy::too_many_arguments)]
fn facts_from_parts(
    subject: String,
    issuer: String,
    serial: String,
    thumbprint: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    sans: &str,
    dn: &mut DnCache,
) -> CertFacts {
    let (common_names, is_self_signed) = dn.facts(&subject, &issuer);
    CertFacts {
        common_names,
        is_self_signed,
        subject,
        issuer,
        serial: serial.trim().to_string(),
        thumbprint: thumbprint.trim().to_string(),
        not_before,
        not_after,
        dns_names: sans
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        is_ca: false,
        public_key_bits: 0,
        key_algorithm: String::new(),
        extended_key_usages: Vec::new(),
    }
}

/// Parses the data column of a one-line certificate block:
/// `<subject> <issuer> <serial> <thumbprint> <not before> <not after> <alternate names>`.
/// Read from the right (names, dates, thumbprint, serial), then the subject/issuer boundary is
/// the first space not preceded by a comma and followed by an attribute (`CN=`).
pub fn parse_one_line_cert(data: &str) -> Option<CertFacts> {
    parse_one_line_cert_with(data, &mut DnCache::default())
}

fn parse_one_line_cert_with(data: &str, dn: &mut DnCache) -> Option<CertFacts> {
    let mut rest = data.trim();
    // Alternate names: the last token, unless it is the not-after date.
    let (head, last) = rest.rsplit_once(' ')?;
    let sans;
    if looks_like_time_token(last) {
        sans = "";
    } else {
        sans = last;
        rest = head.trim_end();
    }
    let (rest2, not_after) = take_time_from_right(rest)?;
    let (rest3, not_before) = take_time_from_right(rest2)?;
    let (rest4, thumb) = rest3.rsplit_once(' ')?;
    if thumb.len() < 16 || !thumb.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let (names, serial) = rest4.trim_end().rsplit_once(' ')?;
    if serial.is_empty() || !serial.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let (subject, issuer) = split_subject_issuer(names.trim())?;
    Some(facts_from_parts(
        subject.to_string(),
        issuer.to_string(),
        serial.to_string(),
        thumb.to_string(),
        not_before,
        not_after,
        sans,
        dn,
    ))
}

fn looks_like_time_token(t: &str) -> bool {
    crate::ps::parse_iso(t).is_some()
        || t.eq_ignore_ascii_case("AM")
        || t.eq_ignore_ascii_case("PM")
}

/// Takes an ISO timestamp, or an en-US `M/d/yyyy h:mm:ss AM` one, off the right end.
fn take_time_from_right(s: &str) -> Option<(&str, OffsetDateTime)> {
    let s = s.trim_end();
    let (head, last) = s.rsplit_once(' ')?;
    if let Some(t) = crate::ps::parse_iso(last) {
        return Some((head, t));
    }
    // Up to three tokens: date, time, AM/PM.
    let mut cut = s.len();
    let mut tokens = 0;
    let mut best = None;
    while tokens < 3 {
        let Some(sp) = s[..cut].rfind(' ') else { break };
        cut = sp;
        tokens += 1;
        if let Some(t) = crate::ps::parse_ps_datetime(&s[cut + 1..]) {
            best = Some((&s[..cut], t));
        }
    }
    best
}

fn split_subject_issuer(names: &str) -> Option<(&str, &str)> {
    let b = names.as_bytes();
    let mut in_quotes = false;
    for i in 0..b.len() {
        match b[i] {
            b'"' => in_quotes = !in_quotes,
            b' ' if !in_quotes && i > 0 && b[i - 1] != b',' => {
                let rest = &names[i + 1..];
                let key_end = rest.find('=')?;
                let key = &rest[..key_end];
                if !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
                    return Some((&names[..i], rest));
                }
            }
            _ => {}
        }
    }
    None
}

/// Splits a collapsed EHLO reply's keywords back into lines.
const EHLO_KEYWORDS: [&str; 36] = [
    "SIZE",
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "X-ANONYMOUSTLS",
    "AUTH",
    "X-EXPS",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "SMTPUTF8",
    "XRDST",
    "XEXCH50",
    "X-LINK2STATE",
    "XSHADOW",
    "XSHADOWREQUEST",
    "XOORG",
    "XPROXY",
    "XPROXYFROM",
    "XPROXYTO",
    "XSESSIONPARAMS",
    "XMSEXCHAUTH",
    "VRFY",
    "EXPN",
    "ETRN",
    "HELP",
    "DELIVERBY",
    "REQUIRETLS",
    "MT-PRIORITY",
    "XCLIENT",
    "XFORWARD",
    "TURN",
    "ATRN",
    "XXXXXXXA",
    "X-MS-EXCHANGE-ORGANIZATION",
];

fn is_known_keyword(t: &str) -> bool {
    EHLO_KEYWORDS.contains(&t)
}

fn looks_like_keyword(t: &str) -> bool {
    t.len() >= 3
        && t.chars().any(|c| c.is_ascii_alphabetic())
        && t.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
}

/// Parses a `<` line's data as a reply: `250 2.1.0 Sender OK`, or the collapsed multi-line form
/// `250  host Hello [ip] SIZE 157286400 PIPELINING ...` (two spaces after the code), split back
/// into one line per EHLO keyword.
pub fn parse_log_reply(text: &str) -> Option<Reply> {
    let Some(body) = text.get(3..).and_then(|r| r.strip_prefix("  ")) else {
        return Reply::parse_line(text);
    };
    // The code alone: the whole line would be copied into a reply only to be split again.
    let code = Reply::parse_line(text.get(..3)?)?.code;
    let mut lines: Vec<String> = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut cur_keyword: Option<&str> = None;
    for tok in body.split(' ') {
        let starts_line = if lines.is_empty() && cur_keyword.is_none() {
            !cur.is_empty() && is_known_keyword(tok)
        } else {
            is_known_keyword(tok)
                || (looks_like_keyword(tok) && !matches!(cur_keyword, Some("AUTH" | "X-EXPS")))
        };
        if starts_line {
            lines.push(cur.join(" "));
            cur.clear();
            cur_keyword = Some(tok);
        }
        cur.push(tok);
    }
    lines.push(cur.join(" "));
    Some(Reply::multi(code, lines))
}

/// What rebuilding sessions reads: the files' text and what parsing them gave.
struct Sources<'a, 't> {
    texts: &'a [(String, String)],
    unquoted: &'a [Vec<String>],
    files: &'a [LogFileInfo],
    names: &'a Interner<'t>,
    lines: &'a [RawLine],
}

impl Sources<'_, '_> {
    fn line(&self, l: &RawLine) -> &str {
        src_line(self.texts, l)
    }

    fn data(&self, l: &RawLine) -> &str {
        self.field(l, l.data)
    }

    fn context(&self, l: &RawLine) -> &str {
        self.field(l, l.context)
    }

    fn field(&self, l: &RawLine, f: Field) -> &str {
        let unquoted = self
            .unquoted
            .get(l.file as usize)
            .map_or(&[][..], Vec::as_slice);
        field_text(self.line(l), unquoted, f)
    }
}

/// Sessions from their lines, with a certificate name cache; the lines of unreadable events
/// are noted for the files' skipped counts.
struct Rebuild<'a, 'b, 't> {
    src: &'b Sources<'a, 't>,
    dn: DnCache,
    /// Each file's name, made once (per chunk: threads do not share the reference counts).
    labels: Vec<Option<FileLabel>>,
    /// Indices (in `src.lines`) of lines skipped, in the order met.
    skipped: Vec<u32>,
}

impl Rebuild<'_, '_, '_> {
    fn label(&mut self, file: u32) -> FileLabel {
        let files = self.src.files;
        match self.labels.get_mut(file as usize) {
            Some(slot) => slot
                .get_or_insert_with(|| FileLabel::from(files[file as usize].file.as_str()))
                .clone(),
            None => FileLabel::default(),
        }
    }

    /// One session from the indices of its lines (in sequence-number order).
    fn session(&mut self, idx: &[u32]) -> ParsedSession {
        let src = self.src;
        let files = src.files;
        let names = src.names;
        let lines: Vec<&RawLine> = idx.iter().map(|i| &src.lines[*i as usize]).collect();
        let first = lines[0];
        let connector_id = names.get(first.connector).to_string();
        let session_id = names.get(first.session).to_string();
        let local = lines
            .iter()
            .find_map(|l| parse_endpoint(names.get(l.local)));
        let remote = lines
            .iter()
            .find_map(|l| parse_endpoint(names.get(l.remote)))
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let mut kind_votes = (0usize, 0usize);
        let mut header_kind = None;
        for l in &lines {
            if header_kind.is_none() {
                header_kind = files[l.file as usize].header.kind();
            }
            match l.vote {
                Some(LogKind::Send) => kind_votes.0 += 1,
                Some(LogKind::Receive) => kind_votes.1 += 1,
                None => {}
            }
        }
        let kind = header_kind.or(match kind_votes {
            (0, 0) => files[first.file as usize].kind,
            (s, r) if s >= r => Some(LogKind::Send),
            _ => Some(LogKind::Receive),
        });

        let mut events = Vec::with_capacity(lines.len());
        let mut sources = Vec::with_capacity(lines.len());
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i];
            let mut consumed = 1;
            let mut validity = false;
            let data = src.data(l);
            let event = match l.event {
                b'+' => Some(SessionEvent::Connected),
                b'-' => {
                    let ctx = src.context(l);
                    let reason_text = if ctx.trim().is_empty() {
                        data.trim()
                    } else {
                        ctx.trim()
                    };
                    reason_text
                        .parse::<DisconnectReason>()
                        .ok()
                        .map(|reason| SessionEvent::Disconnected { reason })
                }
                b'>' => Some(SessionEvent::Sent {
                    line: data.to_string(),
                }),
                b'<' => Some(match parse_log_reply(data) {
                    Some(reply) => SessionEvent::Received { reply },
                    None => SessionEvent::ReceivedLine {
                        line: data.to_string(),
                    },
                }),
                _ => Some(self.info_event(&lines[i..], &mut consumed, &mut validity)),
            };
            match event {
                Some(event) => {
                    events.push(TimedEvent { at: l.at, event });
                    sources.push(EventSource {
                        lines: lines[i..i + consumed]
                            .iter()
                            .map(|x| Evidence {
                                file: self.label(x.file),
                                line: x.line_no,
                                text: src.line(x).to_string(),
                            })
                            .collect(),
                        sequence: l.seq,
                        cert_validity_logged: validity,
                    });
                }
                None => self.skipped.push(idx[i]),
            }
            i += consumed;
        }
        ParsedSession {
            kind,
            session: ProtocolLogSession {
                connector_id,
                session_id,
                local,
                remote,
                events,
            },
            sources,
        }
    }

    /// The event of the `*` line `lines[0]` (with the lines after it for a classic certificate
    /// block: `consumed` says how many).
    fn info_event(
        &mut self,
        lines: &[&RawLine],
        consumed: &mut usize,
        validity: &mut bool,
    ) -> SessionEvent {
        let src = self.src;
        let (data, ctx) = (src.data(lines[0]), src.context(lines[0]));
        if let (true, Some(role)) = (data.is_empty(), cert_role(ctx)) {
            let mut parts = CertParts::default();
            let mut n = 1;
            while let Some(next) = lines.get(n) {
                if next.event != b'*' || !parts.take(src.context(next), src.data(next)) {
                    break;
                }
                n += 1;
            }
            if n > 1 {
                *consumed = n;
                SessionEvent::Certificate {
                    role,
                    cert: parts.into_facts(&mut self.dn),
                }
            } else {
                SessionEvent::Info {
                    data: String::new(),
                    context: ctx.to_string(),
                }
            }
        } else if let Some(role) = one_line_cert_role(ctx).filter(|_| !data.is_empty()) {
            match parse_one_line_cert_with(data, &mut self.dn) {
                Some(cert) => {
                    *validity = true;
                    SessionEvent::Certificate { role, cert }
                }
                None => SessionEvent::Info {
                    data: data.to_string(),
                    context: ctx.to_string(),
                },
            }
        } else if data.is_empty() && ctx.eq_ignore_ascii_case("attempting to connect") {
            SessionEvent::AttemptingConnect
        } else if data.is_empty()
            && ctx.starts_with("TLS protocol ")
            && ctx.contains("negotiation succeeded")
        {
            SessionEvent::TlsNegotiated {
                text: ctx.to_string(),
            }
        } else if let Some(status) = SecurityStatus::from_log_text(ctx).filter(|_| data.is_empty())
        {
            SessionEvent::TlsFailed { status }
        } else {
            SessionEvent::Info {
                data: data.to_string(),
                context: ctx.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn one_line_certificate_data_splits_from_the_right() {
        let data = "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US 0C5A1F0E8B7D6C5B4A39281706F5E4D3 78E1BE82F683EE6D8CB9B9266FC1185AE0890C41 2024-01-01T00:00:00.000Z 2025-01-31T23:59:59.000Z mail.contoso.com;autodiscover.contoso.com";
        let c = parse_one_line_cert(data).unwrap();
        assert_eq!(
            c.subject,
            "CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US"
        );
        assert_eq!(
            c.issuer,
            "CN=DigiCert Global G2 TLS RSA SHA256 2020 CA1, O=DigiCert Inc, C=US"
        );
        assert_eq!(c.serial, "0C5A1F0E8B7D6C5B4A39281706F5E4D3");
        assert_eq!(c.thumbprint, "78E1BE82F683EE6D8CB9B9266FC1185AE0890C41");
        assert_eq!(c.not_after, datetime!(2025-01-31 23:59:59 UTC));
        assert_eq!(
            c.dns_names,
            ["mail.contoso.com", "autodiscover.contoso.com"]
        );
        assert_eq!(c.common_names, ["mail.contoso.com"]);
        // No alternate names, en-US dates.
        let c = parse_one_line_cert("CN=EXCH01 CN=EXCH01 1A2B 78E1BE82F683EE6D8CB9B9266FC1185AE0890C41 1/1/2024 12:00:00 AM 1/1/2029 12:00:00 AM").unwrap();
        assert!(c.is_self_signed);
        assert!(c.dns_names.is_empty());
        assert_eq!(c.not_after, datetime!(2029-01-01 00:00:00 UTC));
        assert!(parse_one_line_cert("nonsense").is_none());
        assert!(parse_one_line_cert("").is_none());
    }

    #[test]
    fn collapsed_ehlo_replies_split_back_into_keywords() {
        let r = parse_log_reply("250  AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10] SIZE 157286400 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS 8BITMIME BINARYMIME CHUNKING SMTPUTF8").unwrap();
        assert_eq!(r.code, 250);
        assert_eq!(
            r.lines[0],
            "AM5EUR02FT017.mail.protection.outlook.com Hello [198.51.100.10]"
        );
        assert_eq!(r.lines[1], "SIZE 157286400");
        assert!(r.lines.iter().any(|l| l == "STARTTLS"));
        let r = parse_log_reply("250  mail.contoso.com Hello [40.107.22.55] SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS X-ANONYMOUSTLS AUTH NTLM X-EXPS GSSAPI NTLM 8BITMIME BINARYMIME CHUNKING XRDST XXXXXXXA XFOO").unwrap();
        assert!(r.lines.contains(&"AUTH NTLM".to_string()));
        assert!(r.lines.contains(&"X-EXPS GSSAPI NTLM".to_string()));
        assert_eq!(r.lines.last().unwrap(), "XFOO");
        assert_eq!(
            parse_log_reply("421 4.4.1 Connection timed out").unwrap(),
            Reply::new(421, "4.4.1 Connection timed out")
        );
        assert!(parse_log_reply("EHLO x").is_none());
    }

    fn sample_session(i: u64) -> ProtocolLogSession {
        let t0 = datetime!(2019-05-02 06:00:00 UTC) + time::Duration::milliseconds(i as i64 * 7);
        let cert = CertFacts {
            subject: format!("CN=mail{}.contoso.com, O=Contoso, C=US", i % 3),
            issuer: "CN=Contoso CA, O=Contoso, C=US".into(),
            serial: "0A1B".into(),
            thumbprint: "78E1BE82F683EE6D8CB9B9266FC1185AE0890C41".into(),
            not_before: UNKNOWN_TIME,
            not_after: UNKNOWN_TIME,
            common_names: vec![],
            dns_names: vec![format!("mail{}.contoso.com", i % 3)],
            is_self_signed: false,
            is_ca: false,
            public_key_bits: 0,
            key_algorithm: String::new(),
            extended_key_usages: vec![],
        };
        let events = [
            SessionEvent::AttemptingConnect,
            SessionEvent::Connected,
            SessionEvent::Received {
                reply: Reply::new(220, "mx ready at Thu, 2 May 2019 \"06:00\""),
            },
            SessionEvent::Sent {
                line: "EHLO edge01.contoso.com".into(),
            },
            SessionEvent::Certificate {
                role: CertRole::Sending,
                cert,
            },
            SessionEvent::Info {
                data: format!("{i};x,y"),
                context: "sending message".into(),
            },
            SessionEvent::Disconnected {
                reason: DisconnectReason::Local,
            },
        ];
        ProtocolLogSession {
            connector_id: if i.is_multiple_of(4) {
                "Internet"
            } else {
                "Outbound to Office 365"
            }
            .into(),
            session_id: format!("{:016X}", 0x08D6_CEAF_0000_0000u64 + i),
            local: Some(format!("10.0.0.5:{}", 20000 + i).parse().unwrap()),
            remote: "104.47.10.36:25".parse().unwrap(),
            events: events
                .into_iter()
                .enumerate()
                .map(|(k, event)| TimedEvent {
                    at: t0 + time::Duration::milliseconds(k as i64 * 5),
                    event,
                })
                .collect(),
        }
    }

    #[test]
    fn threads_do_not_change_the_result() {
        // Interleaved sessions over many small files, plus odd lines: a session id under a second
        // connector, disconnect reasons nobody knows (skipped while rebuilding), a doubled quote,
        // garbage, and a `#Fields` header that reorders the columns halfway.
        let sessions: Vec<ProtocolLogSession> = (0..90).map(sample_session).collect();
        let opts = LogWriterOptions {
            max_file_bytes: 6_000,
            ..LogWriterOptions::send()
        };
        let mut files: Vec<(String, String)> = write_files(&sessions, &opts)
            .into_iter()
            .map(|f| (f.name, f.content))
            .collect();
        assert!(files.len() > 8, "{}", files.len());
        let mut odd = String::new();
        for i in (0..90).step_by(7) {
            odd.push_str(&format!(
                "2019-05-02T06:10:00.000Z,Other,{:016X},9,,1.2.3.4:25,-,,Whatever{i}\r\n",
                0x08D6_CEAF_0000_0000u64 + i
            ));
            odd.push_str(&format!(
                "2019-05-02T06:10:00.000Z,Internet,{:016X},9,,1.2.3.4:25,-,,Unknown\r\n",
                0x08D6_CEAF_0000_0000u64 + i
            ));
            odd.push_str("not a record\r\n");
        }
        odd.push_str("#Fields: event,date-time,session-id,sequence-number,data,context\r\n");
        odd.push_str("*,2019-05-02T06:11:00.000Z,08D6CEAF00000003,20,\"say \"\"hi\"\"\",ctx\r\n");
        files.insert(3, ("odd.LOG".into(), odd));
        let read = |threads: usize| {
            let mut r = ProtocolLogReader::new().with_threads(threads);
            for (name, text) in &files {
                r.add_text(name, text);
            }
            r.finish()
        };
        let one = read(1);
        let odd = one.files.iter().find(|f| f.file == "odd.LOG").unwrap();
        assert_eq!(odd.skipped.count, 13 + 26);
        assert_eq!(odd.skipped.samples.len(), Skipped::MAX_SAMPLES);
        assert!(one.sessions.len() > 90, "{}", one.sessions.len());
        for threads in [2, 3, 8] {
            assert_eq!(read(threads), one, "{threads} threads");
        }
    }

    #[test]
    fn headerless_fragment_with_unknown_lines() {
        let text = "2019-05-02T06:32:13.900Z,Outbound to Office 365,08D6CEB1A2F3C4D5,1,10.0.0.5:27436,104.47.10.36:25,+,,\r\ngarbage\r\n2019-05-02T06:32:13.800Z,Outbound to Office 365,08D6CEB1A2F3C4D5,0,,104.47.10.36:25,*,,attempting to connect\r\n2019-05-02T06:32:14.123Z,Outbound to Office 365,08D6CEB1A2F3C4D5,2,10.0.0.5:27436,104.47.10.36:25,-,,Whatever\r\n";
        let logs = read_log("frag", text);
        assert_eq!(logs.files[0].skipped.count, 2);
        assert_eq!(logs.files[0].kind, Some(LogKind::Send));
        let s = &logs.sessions[0];
        assert_eq!(s.session.events[0].event, SessionEvent::AttemptingConnect);
        assert_eq!(s.session.events[1].event, SessionEvent::Connected);
        assert_eq!(s.sources[1].first().line, 1);
        assert_eq!(s.session.local, Some("10.0.0.5:27436".parse().unwrap()));
    }
}
