//! The protocol-log reader: files (any `#Version`, any `#Fields` order, with or without the
//! header) into records, then records into sessions (`super::parallel` groups them,
//! `super::rebuild` builds each session).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::parallel::{chunk_groups, default_threads, group_lines, par_map};
use super::rebuild::{Rebuild, Sources};
use super::{LogKind, ProtocolLogSession, TimedEvent};
use crate::text::{Evidence, Skipped, split_lines};

/// A protocol log file's header block.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct LogHeader {
    /// `#Software`: the product that wrote the file (`Microsoft Exchange Server`).
    pub software: Option<String>,
    /// `#Version`: `15.0.0.0` or the build that wrote the file (`15.02.1118.007`); any is read.
    pub version: Option<String>,
    /// `#Log-type`: `SMTP Send Protocol Log` or `SMTP Receive Protocol Log` ([`LogHeader::kind`]).
    pub log_type: Option<String>,
    /// `#Date`: when the file was created (UTC).
    #[serde(with = "time::serde::rfc3339::option")]
    pub date: Option<OffsetDateTime>,
    /// `#Fields`: the column names in the file's order (records are read by these names).
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
    /// How many lines were read as records (header lines not counted).
    pub records: usize,
    /// The lines that were neither header nor record: their count and the first few.
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
    /// false, `not_before`/`not_after` are [`super::UNKNOWN_TIME`].
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
pub(super) struct RawLine {
    /// Index of the file in the reader's list.
    pub(super) file: u32,
    /// 1-based line number in that file.
    pub(super) line_no: usize,
    /// The line: byte offset in the file's text and length.
    pub(super) start: usize,
    pub(super) len: u32,
    /// The date-time column.
    pub(super) at: OffsetDateTime,
    /// Interned connector-id, session-id, local and remote endpoint columns.
    pub(super) connector: u32,
    pub(super) session: u32,
    /// The sequence-number column.
    pub(super) seq: u32,
    pub(super) local: u32,
    pub(super) remote: u32,
    /// The event column as a byte (`+`, `-`, `>`, `<`, `*`).
    pub(super) event: u8,
    /// What the line says about the log's kind ([`vote`]).
    pub(super) vote: Option<LogKind>,
    pub(super) data: Field,
    pub(super) context: Field,
}

/// A column's value: a slice of its line, or (when unquoting changed it) an entry of the file's
/// table of unquoted values.
#[derive(Debug, Clone, Copy)]
pub(super) enum Field {
    Span { start: u32, len: u32 },
    Owned(u32),
}

/// Distinct column values, by index, borrowed from the files' text where possible. Each column
/// remembers its last value: consecutive lines usually belong to the same session, so most
/// lookups are one comparison.
#[derive(Debug, Default)]
pub(super) struct Interner<'t> {
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

    pub(super) fn get(&self, i: u32) -> &str {
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
        self.threads
            .unwrap_or_else(|| default_threads(self.files.iter().map(|(_, t)| t.len()).sum()))
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
            let mut b = Rebuild::new(&src);
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

/// The text of a line.
pub(super) fn src_line<'a>(texts: &'a [(String, String)], l: &RawLine) -> &'a str {
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
pub(super) fn field_text<'a>(line: &'a str, unquoted: &'a [String], f: Field) -> &'a str {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol_log::{
        CertRole, LogWriterOptions, SessionEvent, UNKNOWN_TIME, write_files,
    };
    use hybridlab_model::exchange::DisconnectReason;
    use hybridlab_model::reply::Reply;
    use hybridlab_model::x509::CertFacts;
    use time::macros::datetime;

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
