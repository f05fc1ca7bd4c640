//! SMTP protocol logs (`SENDyyyymmdd-N.LOG`, `RECVyyyymmdd-N.LOG`).
//!
//! The sender records what happened as [`SessionEvent`]s with their lab time; a writer turns a
//! [`ProtocolLogSession`] into the CSV lines Exchange writes (one `+`, `-`, `>`, `<` or `*` line per
//! event, the certificate block multi-line or one-line), and a reader turns real files back into
//! sessions.
//!
//! This module holds the session model both directions share ([`SessionEvent`], [`TimedEvent`],
//! [`ProtocolLogSession`], [`CertRole`], [`LogKind`]); the rest is one file per concept:
//! - `write`: [`session_records`] (one session's lines), [`write_log`] (one file's text),
//!   [`write_files`] (interleaved by time, one file per UTC day, numbered by size), [`header`],
//!   [`file_name`].
//! - `read`: [`ProtocolLogReader`] takes any number of files (any `#Version`, with or without the
//!   header, CRLF or LF, already decoded from UTF-8/UTF-16 by [`crate::text::decode`]), splits
//!   their lines into records and hands them to `rebuild`. Lines it does not understand are
//!   counted per file ([`LogFileInfo::skipped`]) and skipped. The reader keeps each file's text and
//!   reads the lines as slices of it.
//! - `parallel`: grouping the records by session id across files and days (in sequence-number
//!   order), and the scoped threads big inputs are read on (files in parallel, then sessions in
//!   parallel), merged in a fixed order so the result is the same whatever the thread count.
//! - `rebuild`: a group of records back into a [`ParsedSession`]: the lab's own
//!   [`ProtocolLogSession`] plus, per event, the lines it came from ([`EventSource`]); collapsed
//!   EHLO replies ([`parse_log_reply`]).
//! - `cert_block`: the certificate block in both styles ([`CertBlockStyle`]), written and read
//!   ([`parse_one_line_cert`]); a write then read round trip gives back the sessions,
//!   certificates reduced to what the log carries ([`logged_view`]).

mod cert_block;
mod parallel;
mod read;
mod rebuild;
mod write;

pub use self::cert_block::{
    CertBlockStyle, ONE_LINE_CERT_FIELDS, UNKNOWN_TIME, common_names_of, logged_view,
    parse_one_line_cert,
};
pub use self::read::{
    EventSource, LogFileInfo, LogHeader, ParsedSession, ProtocolLogReader, ProtocolLogs, read_log,
};
pub use self::rebuild::parse_log_reply;
pub use self::write::{
    FIELDS, LogFile, LogRecord, LogWriterOptions, file_name, header, log_time, session_records,
    write_files, write_log,
};

use std::net::SocketAddr;

use hybridlab_model::reply::Reply;
use hybridlab_model::x509::CertFacts;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

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
        /// The reply as received: code and lines (a collapsed EHLO reply split back into its
        /// keywords).
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
        /// Whose certificate it is: the one this server presents or the peer's.
        role: CertRole,
        /// What the block shows of it: subject, issuer, serial, thumbprint, alternate names (and
        /// the validity in the one-line style).
        cert: CertFacts,
    },
    /// `*,,TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm ...`.
    TlsNegotiated {
        /// The full info text, as SChannel words it.
        text: String,
    },
    /// `*,,TLS negotiation failed with error <status>`.
    TlsFailed {
        /// The SChannel status name that says why the handshake failed (`NoCredentials`...).
        status: SecurityStatus,
    },
    /// Any other `*` line: `data` and `context` columns verbatim (`sending message`, chain status...).
    Info {
        /// The data column: the value the line reports, often empty.
        data: String,
        /// The context column: what the line is about (`sending message`, `Remote certificate
        /// chain validation status: ...`).
        context: String,
    },
    /// `-,,Local` / `-,,Remote(SocketError)`.
    Disconnected {
        /// Which side ended the session and how (`Local`, `Remote(SocketError)`).
        reason: DisconnectReason,
    },
}

/// An event with its lab time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedEvent {
    /// When it happened (UTC; the log writes ISO 8601 with milliseconds and `Z`).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The event the protocol log records at that time.
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
    /// The peer's address and port (EOP's front door for a hybrid send session).
    pub remote: SocketAddr,
    /// What happened, in order.
    pub events: Vec<TimedEvent>,
}

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
