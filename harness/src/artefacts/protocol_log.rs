//! SMTP protocol logs (`SENDyyyymmdd-N.LOG`, `RECVyyyymmdd-N.LOG`).
//!
//! The sender records what happened as [`SessionEvent`]s with their lab time; a writer turns a
//! [`ProtocolLogSession`] into the CSV lines Exchange writes (one `+`, `-`, `>`, `<` or `*` line per
//! event, the certificate block multi-line or one-line), and a reader turns a real file back into
//! lines and sessions.

use std::net::SocketAddr;

use mock_eop::reply::Reply;
use mock_eop::x509::CertFacts;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::exchange::{DisconnectReason, SecurityStatus};

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
