//! What a session produced, as data: the session-level failure, what happened to each message,
//! the summary of one attempt, and the whole report with its send protocol log.

use hybridlab_artefacts::protocol_log::{
    CertBlockStyle, ProtocolLogSession, SessionEvent, session_records,
};
use hybridlab_model::exchange::{SecurityStatus, synthetic};
use hybridlab_model::reply::Reply;
use serde::{Deserialize, Serialize};

use super::tls::TlsInfo;
use crate::resolver::{ConnectFailure, Target};
use crate::selection::Selection;

/// Why a session failed as a whole (every message not yet answered stays queued).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FailureKind {
    /// DNS found nothing (FM-25).
    Dns,
    /// TCP connect failed (FM-19).
    ConnectFailed {
        /// Refused, or timed out (unreachable).
        failure: ConnectFailure,
    },
    /// The banner was not 220.
    BannerRejected,
    /// The server answered EHLO (or HELO) with an error.
    EhloRejected,
    /// RequireTLS and the server does not offer STARTTLS (FM-17/21).
    StartTlsRequired,
    /// The server refused STARTTLS and TLS is required.
    StartTlsRejected,
    /// `TlsCertificateName` matched nothing (FM-04).
    CertificateNotFound,
    /// DomainValidation on a smart-host connector without TlsDomain (FM-35).
    DomainValidationWithoutDomain,
    /// SChannel failed (FM-01/02/03/15/16/18).
    Tls {
        /// The SChannel status Exchange logs (`NoCredentials`, `AlgorithmMismatch`...).
        status: SecurityStatus,
    },
    /// The remote certificate failed TlsAuthLevel (FM-11/35).
    CertificateValidation {
        /// Chain status (`UntrustedRoot`, `Expired`, `SubjectMismatch`...).
        status: String,
    },
    /// No input within ConnectionInactivityTimeOut (FM-20).
    TimedOut,
    /// The peer closed or reset the connection.
    Dropped,
    /// The server answered with something that is not SMTP.
    ProtocolError,
    /// The server closed the session with 421 (or another reply ending the session).
    ServerClosed,
}

/// A session-level failure and the response Exchange records for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionFailure {
    /// Why the session failed.
    pub kind: FailureKind,
    /// The per-connection ack response (`421 4.4.1 Connection timed out`...).
    pub ack: Reply,
}

impl SessionFailure {
    /// Whether the queue wraps it as a communication error (`451 4.4.397 Error communicating with
    /// target host.`) rather than a response (`451 4.4.395 Target host responded with error.`).
    pub fn is_communication_error(&self) -> bool {
        matches!(
            self.kind,
            FailureKind::ConnectFailed { .. }
                | FailureKind::Dropped
                | FailureKind::Tls {
                    status: SecurityStatus::SocketError
                }
        )
    }

    /// Whether it was a TLS negotiation failure (the trigger for the opportunistic fallback).
    pub fn is_tls_negotiation_failure(&self) -> bool {
        matches!(self.kind, FailureKind::Tls { .. })
    }

    /// Whether the next hop did not resolve (no connection was attempted).
    pub fn is_dns(&self) -> bool {
        matches!(self.kind, FailureKind::Dns)
    }
}

/// What happened to one message in one session; the queue turns it into a delivery, an NDR or a
/// message-level retry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum MessageDisposition {
    /// Accepted by the server.
    Delivered {
        /// The final reply (`250 2.6.0 ... Queued mail for delivery`).
        reply: Reply,
    },
    /// A transient failure (4xx for the message): it stays queued for a message-level retry.
    Deferred {
        /// The 4xx reply the server gave the message.
        reply: Reply,
    },
    /// A permanent failure: the sender gets an NDR.
    Rejected {
        /// The 5xx reply: the server's, or the sender's own for OverAdvertisedSize.
        reply: Reply,
        /// Generated locally (OverAdvertisedSize) rather than by the server.
        local: bool,
    },
    /// Not reached (the session failed first).
    NotAttempted,
}

/// What one session did with one of its messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageResult {
    /// The message's internal id in the queue.
    pub internal_id: u64,
    /// Delivered, deferred, rejected, or not reached.
    pub status: MessageDisposition,
    /// RCPT replies, in order (`None` when not sent).
    pub recipients: Vec<(String, Option<Reply>)>,
}

/// The outcome of one delivery attempt of one message, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum DeliveryOutcome {
    /// Accepted; the final reply (`250 2.6.0 ... Queued mail for delivery`).
    Delivered(Reply),
    /// Deferred by the server; its 4xx reply for the message.
    Deferred(Reply),
    /// Rejected (an NDR goes to the sender); the 5xx reply.
    Rejected(Reply),
    /// The session failed: TLS, connect, DNS, certificate, timeout...
    SessionFailed(SessionFailure),
}

/// Everything a session produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionReport {
    /// Where the session went (host name as configured, address).
    pub target: Target,
    /// The session's lines of the send protocol log, as events with times.
    pub log: ProtocolLogSession,
    /// Why the session as a whole failed (`None`: it ended with QUIT).
    pub failure: Option<SessionFailure>,
    /// What happened to each message the session was given, in the order given.
    pub messages: Vec<MessageResult>,
    /// The certificate selection, when STARTTLS was reached.
    pub selection: Option<Selection>,
    /// TLS facts, when the handshake completed.
    pub tls: Option<TlsInfo>,
    /// The EHLO keywords the server advertised last.
    pub ehlo_keywords: Vec<String>,
}

impl SessionReport {
    /// The outcome of message `i` (the first by default).
    pub fn outcome_of(&self, i: usize) -> DeliveryOutcome {
        match self.messages.get(i).map(|m| &m.status) {
            Some(MessageDisposition::Delivered { reply }) => {
                DeliveryOutcome::Delivered(reply.clone())
            }
            Some(MessageDisposition::Deferred { reply }) => {
                DeliveryOutcome::Deferred(reply.clone())
            }
            Some(MessageDisposition::Rejected { reply, .. }) => {
                DeliveryOutcome::Rejected(reply.clone())
            }
            _ => DeliveryOutcome::SessionFailed(self.failure.clone().unwrap_or(SessionFailure {
                kind: FailureKind::Dropped,
                ack: synthetic::connection_dropped(),
            })),
        }
    }

    /// The outcome of the first message.
    pub fn outcome(&self) -> DeliveryOutcome {
        self.outcome_of(0)
    }

    /// The log's events without times (for assertions).
    pub fn events(&self) -> Vec<&SessionEvent> {
        self.log.events.iter().map(|e| &e.event).collect()
    }

    /// The session as the send protocol log writes it (classic certificate block), one CSV line
    /// per record.
    pub fn transcript(&self) -> String {
        let mut out = String::new();
        for r in session_records(&self.log, CertBlockStyle::MultiLine) {
            out.push_str(&r.to_csv());
            out.push('\n');
        }
        out
    }
}
