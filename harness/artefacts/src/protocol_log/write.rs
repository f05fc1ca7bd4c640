//! The protocol-log writer: sessions to the CSV lines Exchange writes, files with their header,
//! split per UTC day and by size.

use time::OffsetDateTime;

use super::cert_block::{self, CertBlockStyle};
use super::{LogKind, ProtocolLogSession, SessionEvent};

/// The `#Fields` header of both protocol logs.
pub const FIELDS: &str = "date-time,connector-id,session-id,sequence-number,local-endpoint,remote-endpoint,event,data,context";

/// Options for writing protocol logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogWriterOptions {
    /// Which log: the file prefix (`SEND`/`RECV`) and the `#Log-type` header.
    pub kind: LogKind,
    /// How certificate events are written: the classic six-line block or one line.
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
    /// `date-time`: when the event happened (written in UTC with milliseconds).
    pub at: OffsetDateTime,
    /// `connector-id`: the send connector's name, or `SERVER\Connector` in a receive log.
    pub connector_id: String,
    /// `session-id`: 16 hex digits shared by every line of one session.
    pub session_id: String,
    /// `sequence-number`: the line's place in its session, from 0.
    pub sequence: u32,
    /// `local-endpoint`: this server's address and port (empty before the connection exists).
    pub local: String,
    /// `remote-endpoint`: the peer's address and port.
    pub remote: String,
    /// `event`: `+` connect, `-` disconnect, `>` sent, `<` received, `*` information.
    pub event: char,
    /// `data`: the command or reply sent or received, or the value an information line reports.
    pub data: String,
    /// `context`: what an information line is about (`Sending certificate`, `TLS negotiation
    /// failed with error ...`), or the disconnect reason.
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
            SessionEvent::Certificate { role, cert } => {
                for (data, context) in cert_block::block_lines(*role, cert, style) {
                    push('*', data, context);
                }
            }
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
