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
        /// How.
        failure: ConnectFailure,
    },
    /// The banner was not 220.
    BannerRejected,
    /// EHLO/HELO was refused.
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
        /// The status.
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
    /// What happened.
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

    /// Whether the failure is permanent (5xx session responses are still retried by the queue when
    /// they are connection-level, as Exchange does; only DNS and routing are special).
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
    /// Transient failure: stays queued.
    Deferred {
        /// Why.
        reply: Reply,
    },
    /// Permanent failure: NDR.
    Rejected {
        /// Why.
        reply: Reply,
        /// Generated locally (OverAdvertisedSize) rather than by the server.
        local: bool,
    },
    /// Not reached (the session failed first).
    NotAttempted,
}

/// Per-message result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageResult {
    /// Internal id.
    pub internal_id: u64,
    /// Status.
    pub status: MessageDisposition,
    /// RCPT replies, in order (`None` when not sent).
    pub recipients: Vec<(String, Option<Reply>)>,
}

/// The outcome of one delivery attempt of one message, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum DeliveryOutcome {
    /// Delivered (`250 2.6.0`).
    Delivered(Reply),
    /// Deferred by the server (4xx for the message).
    Deferred(Reply),
    /// Rejected (5xx; NDR).
    Rejected(Reply),
    /// The session failed: TLS, connect, DNS, certificate, timeout...
    SessionFailed(SessionFailure),
}

/// Everything a session produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionReport {
    /// Where the session went (host name as configured, address).
    pub target: Target,
    /// The send protocol log session.
    pub log: ProtocolLogSession,
    /// Session-level failure, if any.
    pub failure: Option<SessionFailure>,
    /// Per message.
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
