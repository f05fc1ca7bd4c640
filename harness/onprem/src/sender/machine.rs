//! The sans-IO client state machine: an Exchange send connector's SMTP session.
//!
//! Bytes and `now` go in (`on_connected`, `on_data`, `on_eof`, `on_tls`, `on_timeout`); actions come
//! out of [`SenderMachine::poll_action`] (`Send`, `StartTls`, `Close`). It never reads a clock and
//! never touches a socket; the tokio driver in [`super::driver`] does.
//!
//! What it does (exchange-hybrid.md 8.2): banner; EHLO with the connector FQDN; STARTTLS when offered
//! (unless IgnoreSTARTTLS or an opportunistic fallback attempt); certificate selection (2.2) and the
//! certificate block logged *before* the handshake; SChannel-like outcomes decided from the store
//! flags (no private key: `NoCredentials`, unreadable key: `UnknownCredentials`, no TLS bytes sent);
//! the remote certificate judged per TlsAuthLevel/TlsDomain after the handshake
//! (`454 4.7.5 Certificate validation failure`); RequireTLS without STARTTLS
//! (`451 5.7.3 STARTTLS is required to send mail`); EHLO again after TLS; SIZE check
//! (OverAdvertisedSize NDR); MAIL and RCPT pipelined when PIPELINING is offered; BDAT when CHUNKING is
//! offered, else DATA with dot-stuffing; QUIT. Everything is recorded as
//! [`SessionEvent`]s; outcomes are data ([`SessionReport`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use hybridlab_model::reply::Reply;
use hybridlab_model::x509::{CertFacts, names_match};
use serde::{Deserialize, Serialize};
use smtp_proto::{EXT_CHUNKING, EXT_PIPELINING, EXT_SIZE, EXT_START_TLS};
use time::OffsetDateTime;

use super::command::{self, Bdat, Data, Ehlo, Helo, MailFrom, Quit, RcptTo, Rset, StartTls};
use super::reply_reader::{RawReply, ReplyReader};
use super::tls::{ChainVerdict, ClientCredential, TlsInfo, TlsRequest, TlsResult};
use crate::certstore::CertStore;
use crate::connector::{SchannelSettings, SendConnector, ServerIdentity};
use crate::message::{OutboundMessage, dot_stuff};
use crate::resolver::{ConnectFailure, Target};
use crate::selection::{Selection, SelectionOutcome, SelectionSettings, select};
use hybridlab_artefacts::protocol_log::{
    CertBlockStyle, CertRole, ProtocolLogSession, SessionEvent, TimedEvent, log_time,
    session_records,
};
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus, TlsAuthLevel, synthetic};

/// Everything one session needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The send connector.
    pub connector: SendConnector,
    /// The sending server.
    pub server: ServerIdentity,
    /// `LocalMachine\My` and the trust stores.
    pub store: Arc<CertStore>,
    /// Certificate selection knobs.
    pub selection: SelectionSettings,
    /// SChannel versions and suites.
    pub schannel: SchannelSettings,
    /// 16 uppercase hex digits.
    pub session_id: String,
    /// Where the session goes.
    pub target: Target,
    /// The next-hop domain (recipient domain; the DomainValidation name on MX-routed connectors).
    pub next_hop_domain: String,
    /// Opportunistic fallback: this attempt does not issue STARTTLS.
    pub skip_starttls: bool,
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Action {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Run the TLS handshake on the connection (the plaintext stream is consumed).
    StartTls(Box<TlsRequest>),
    /// Close the connection; the session is over.
    Close,
}

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

/// What happened to one message in a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum MessageStatus {
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
    pub status: MessageStatus,
    /// RCPT replies, in order (`None` when not sent).
    pub recipients: Vec<(String, Option<Reply>)>,
}

/// The outcome of one delivery attempt of one message, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum Outcome {
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
    pub fn outcome_of(&self, i: usize) -> Outcome {
        match self.messages.get(i).map(|m| &m.status) {
            Some(MessageStatus::Delivered { reply }) => Outcome::Delivered(reply.clone()),
            Some(MessageStatus::Deferred { reply }) => Outcome::Deferred(reply.clone()),
            Some(MessageStatus::Rejected { reply, .. }) => Outcome::Rejected(reply.clone()),
            _ => Outcome::SessionFailed(self.failure.clone().unwrap_or(SessionFailure {
                kind: FailureKind::Dropped,
                ack: synthetic::connection_dropped(),
            })),
        }
    }

    /// The outcome of the first message.
    pub fn outcome(&self) -> Outcome {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Banner,
    Ehlo,
    StartTls,
    Mail,
    Rcpt(usize),
    DataGo,
    Final,
    Rset,
    Quit,
}

#[derive(Debug, PartialEq, Eq)]
enum Phase {
    Connecting,
    Open,
    Handshaking,
    Closing,
    Done,
}

/// The state machine.
#[derive(Debug)]
pub struct SenderMachine {
    cfg: SessionConfig,
    messages: Vec<OutboundMessage>,
    results: Vec<MessageResult>,
    log: ProtocolLogSession,
    actions: VecDeque<Action>,
    reader: ReplyReader,
    expect: VecDeque<Expect>,
    phase: Phase,
    tls_active: bool,
    ehlo_caps: u32,
    ehlo_size: usize,
    ehlo_keywords: Vec<String>,
    current: usize,
    sent_in_session: u32,
    mail_reply: Option<Reply>,
    failure: Option<SessionFailure>,
    selection: Option<Selection>,
    tls: Option<TlsInfo>,
    last_activity: OffsetDateTime,
}

impl SenderMachine {
    /// A session for `messages` (at most `SmtpMaxMessagesPerConnection` are sent; the rest stay
    /// `NotAttempted`). Logs `attempting to connect`.
    pub fn new(cfg: SessionConfig, messages: Vec<OutboundMessage>, now: OffsetDateTime) -> Self {
        let results = messages
            .iter()
            .map(|m| MessageResult {
                internal_id: m.internal_id,
                status: MessageStatus::NotAttempted,
                recipients: m.to.iter().map(|r| (r.clone(), None)).collect(),
            })
            .collect();
        let log = ProtocolLogSession {
            connector_id: cfg.connector.name.clone(),
            session_id: cfg.session_id.clone(),
            local: None,
            remote: cfg.target.addr,
            events: Vec::new(),
        };
        let mut m = Self {
            cfg,
            messages,
            results,
            log,
            actions: VecDeque::new(),
            reader: ReplyReader::new(),
            expect: VecDeque::new(),
            phase: Phase::Connecting,
            tls_active: false,
            ehlo_caps: 0,
            ehlo_size: 0,
            ehlo_keywords: Vec::new(),
            current: 0,
            sent_in_session: 0,
            mail_reply: None,
            failure: None,
            selection: None,
            tls: None,
            last_activity: now,
        };
        m.event(now, SessionEvent::AttemptingConnect);
        m
    }

    fn event(&mut self, at: OffsetDateTime, event: SessionEvent) {
        self.log.events.push(TimedEvent { at, event });
    }

    fn send_cmd(&mut self, now: OffsetDateTime, cmd: &impl std::fmt::Display, expect: Expect) {
        let wire = cmd.to_string();
        self.event(
            now,
            SessionEvent::Sent {
                line: command::line(cmd),
            },
        );
        self.expect.push_back(expect);
        self.actions.push_back(Action::Send(wire.into_bytes()));
    }

    /// The TCP connection is up.
    pub fn on_connected(&mut self, local: SocketAddr, now: OffsetDateTime) {
        if self.phase != Phase::Connecting {
            return;
        }
        self.log.local = Some(local);
        self.last_activity = now;
        self.phase = Phase::Open;
        self.event(now, SessionEvent::Connected);
        self.expect.push_back(Expect::Banner);
    }

    /// The TCP connection could not be made. Nothing more is logged in the send log (the
    /// connectivity log has the failure), as on a real server.
    pub fn on_connect_failed(&mut self, failure: ConnectFailure, _now: OffsetDateTime) {
        self.failure = Some(SessionFailure {
            kind: FailureKind::ConnectFailed { failure },
            ack: synthetic::unable_to_connect(),
        });
        self.phase = Phase::Done;
    }

    /// When the driver must call [`Self::on_timeout`] if no input arrives.
    pub fn deadline(&self) -> Option<OffsetDateTime> {
        match self.phase {
            Phase::Open | Phase::Closing => Some(
                self.last_activity + self.cfg.connector.connection_inactivity_timeout.to_time(),
            ),
            _ => None,
        }
    }

    /// Whether the session is over.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done && self.actions.is_empty()
    }

    /// The next thing to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Bytes from the server.
    pub fn on_data(&mut self, data: &[u8], now: OffsetDateTime) {
        if !matches!(self.phase, Phase::Open | Phase::Closing) {
            return;
        }
        self.last_activity = now;
        for r in self.reader.push(data) {
            if self.phase == Phase::Done {
                break;
            }
            match r {
                Ok(raw) => self.on_reply(raw, now),
                Err(_) => {
                    self.fail_and_close(
                        now,
                        FailureKind::ProtocolError,
                        Reply::new(421, "4.4.0 Remote server response was not RFC conformant"),
                        DisconnectReason::Local,
                    );
                }
            }
        }
    }

    /// The peer closed (or reset) the connection.
    pub fn on_eof(&mut self, now: OffsetDateTime) {
        match self.phase {
            Phase::Closing => {
                self.event(
                    now,
                    SessionEvent::Disconnected {
                        reason: DisconnectReason::Local,
                    },
                );
                self.phase = Phase::Done;
                self.actions.push_back(Action::Close);
            }
            Phase::Open | Phase::Handshaking => {
                self.fail_and_close(
                    now,
                    FailureKind::Dropped,
                    synthetic::connection_dropped(),
                    DisconnectReason::Remote("SocketError".into()),
                );
            }
            _ => {}
        }
    }

    /// No input within the inactivity timeout.
    pub fn on_timeout(&mut self, now: OffsetDateTime) {
        if let Some(d) = self.deadline()
            && now >= d
        {
            if self.phase == Phase::Closing {
                self.on_eof(now);
                return;
            }
            self.fail_and_close(
                now,
                FailureKind::TimedOut,
                synthetic::connection_timed_out(),
                DisconnectReason::Local,
            );
        }
    }

    fn fail_and_close(
        &mut self,
        now: OffsetDateTime,
        kind: FailureKind,
        ack: Reply,
        reason: DisconnectReason,
    ) {
        if self.failure.is_none() {
            self.failure = Some(SessionFailure { kind, ack });
        }
        self.event(now, SessionEvent::Disconnected { reason });
        self.phase = Phase::Done;
        self.actions.push_back(Action::Close);
    }

    /// A session failure decided locally while the SMTP channel is usable: QUIT, then close.
    fn fail_with_quit(&mut self, now: OffsetDateTime, kind: FailureKind, ack: Reply) {
        if self.failure.is_none() {
            self.failure = Some(SessionFailure { kind, ack });
        }
        self.quit(now);
    }

    fn quit(&mut self, now: OffsetDateTime) {
        self.expect.clear();
        self.send_cmd(now, &Quit, Expect::Quit);
        self.phase = Phase::Closing;
    }

    fn on_reply(&mut self, raw: RawReply, now: OffsetDateTime) {
        let reply = raw.reply.clone();
        self.event(
            now,
            SessionEvent::Received {
                reply: reply.clone(),
            },
        );
        let Some(expect) = self.expect.pop_front() else {
            // unsolicited (e.g. 421 on idle): the server is closing
            if reply.code == 421 {
                self.server_closed(reply, now);
            }
            return;
        };
        if reply.code == 421 && !matches!(expect, Expect::Quit) {
            self.server_closed(reply, now);
            return;
        }
        match expect {
            Expect::Banner => {
                if reply.code == 220 {
                    self.send_ehlo(now);
                } else {
                    self.fail_with_quit(now, FailureKind::BannerRejected, reply);
                }
            }
            Expect::Ehlo => {
                if reply.is_positive() {
                    if let Some(e) = raw.ehlo() {
                        self.ehlo_caps = e.capabilities;
                        self.ehlo_size = e.size;
                    } else {
                        self.ehlo_caps = 0;
                        self.ehlo_size = 0;
                    }
                    self.ehlo_keywords = reply.lines.iter().skip(1).cloned().collect();
                    self.after_ehlo(now);
                } else {
                    self.fail_with_quit(now, FailureKind::EhloRejected, reply);
                }
            }
            Expect::StartTls => self.after_starttls_reply(reply, now),
            Expect::Mail => {
                self.mail_reply = Some(reply);
                self.maybe_after_envelope(now);
            }
            Expect::Rcpt(i) => {
                if let Some(r) = self.results.get_mut(self.current)
                    && let Some(slot) = r.recipients.get_mut(i)
                {
                    slot.1 = Some(reply);
                }
                if !self.cfg_pipelining() {
                    self.send_next_rcpt_or_data(now);
                } else {
                    self.maybe_after_envelope(now);
                }
            }
            Expect::DataGo => {
                if reply.code == 354 {
                    let wire = self.messages[self.current]
                        .wire(self.cfg.connector.cloud_services_mail_enabled);
                    self.actions.push_back(Action::Send(dot_stuff(&wire)));
                    self.expect.push_back(Expect::Final);
                } else {
                    self.finish_message(reply, now);
                }
            }
            Expect::Final => self.finish_message(reply, now),
            Expect::Rset => self.next_message(now),
            Expect::Quit => {
                self.event(
                    now,
                    SessionEvent::Disconnected {
                        reason: DisconnectReason::Local,
                    },
                );
                self.phase = Phase::Done;
                self.actions.push_back(Action::Close);
            }
        }
    }

    fn server_closed(&mut self, reply: Reply, now: OffsetDateTime) {
        let kind = FailureKind::ServerClosed;
        if let Some(r) = self.results.get_mut(self.current)
            && r.status == MessageStatus::NotAttempted
            && self.sent_in_session > 0
        {
            r.status = MessageStatus::Deferred {
                reply: reply.clone(),
            };
        }
        self.fail_and_close(now, kind, reply, DisconnectReason::Local);
    }

    fn cfg_pipelining(&self) -> bool {
        self.ehlo_caps & EXT_PIPELINING != 0
    }

    fn send_ehlo(&mut self, now: OffsetDateTime) {
        let name = self
            .cfg
            .connector
            .effective_fqdn(&self.cfg.server.fqdn)
            .to_string();
        if self.cfg.connector.force_helo {
            self.send_cmd(now, &Helo(&name), Expect::Ehlo);
        } else {
            self.send_cmd(now, &Ehlo(&name), Expect::Ehlo);
        }
    }

    fn after_ehlo(&mut self, now: OffsetDateTime) {
        if !self.tls_active {
            let offered = self.ehlo_caps & EXT_START_TLS != 0;
            let attempt = offered && !self.cfg.connector.ignore_starttls && !self.cfg.skip_starttls;
            if attempt {
                if self.cfg.connector.tls_auth_level == Some(TlsAuthLevel::DomainValidation)
                    && self
                        .cfg
                        .connector
                        .tls_domain
                        .as_deref()
                        .unwrap_or("")
                        .is_empty()
                    && !self.cfg.connector.dns_routing_enabled
                {
                    self.fail_with_quit(
                        now,
                        FailureKind::DomainValidationWithoutDomain,
                        synthetic::domain_validation_without_domain(),
                    );
                    return;
                }
                self.send_cmd(now, &StartTls, Expect::StartTls);
                return;
            }
            if self.cfg.connector.tls_required() {
                self.fail_with_quit(
                    now,
                    FailureKind::StartTlsRequired,
                    synthetic::starttls_required(),
                );
                return;
            }
        }
        self.start_message(now);
    }

    fn after_starttls_reply(&mut self, reply: Reply, now: OffsetDateTime) {
        if reply.code != 220 {
            if self.cfg.connector.tls_required() {
                self.fail_with_quit(now, FailureKind::StartTlsRejected, reply);
            } else {
                self.start_message(now);
            }
            return;
        }
        let Ok(sel) = select(
            &self.cfg.store,
            &self.cfg.connector,
            &self.cfg.server.fqdn,
            &self.cfg.selection,
            now,
        ) else {
            // validate() refuses such a connector; treat a stale unparsable value as not found
            self.fail_and_close(
                now,
                FailureKind::CertificateNotFound,
                synthetic::tls_certificate_name_not_found(),
                DisconnectReason::Local,
            );
            return;
        };
        let outcome = sel.outcome.clone();
        let chosen = sel.chosen(&self.cfg.store).cloned();
        self.selection = Some(sel);
        let credential = match outcome {
            SelectionOutcome::NotFound { ack } => {
                self.fail_and_close(
                    now,
                    FailureKind::CertificateNotFound,
                    ack,
                    DisconnectReason::Local,
                );
                return;
            }
            SelectionOutcome::NoCertificate => None,
            SelectionOutcome::Selected { .. } => {
                let Some(entry) = chosen else {
                    return;
                };
                self.event(
                    now,
                    SessionEvent::Certificate {
                        role: CertRole::Sending,
                        cert: entry.facts.clone(),
                    },
                );
                // SChannel's AcquireCredentialsHandle needs the key before any TLS byte is sent.
                let key = match entry.private_key() {
                    None => {
                        self.tls_failed(SecurityStatus::NoCredentials, now);
                        return;
                    }
                    Some(_) if !entry.key_readable => {
                        self.tls_failed(SecurityStatus::UnknownCredentials, now);
                        return;
                    }
                    Some(k) => k,
                };
                Some(ClientCredential {
                    chain: self.cfg.store.chain_for(&entry),
                    key,
                })
            }
        };
        self.phase = Phase::Handshaking;
        self.actions
            .push_back(Action::StartTls(Box::new(TlsRequest {
                server_name: self
                    .cfg
                    .target
                    .host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string(),
                credential,
                roots: self.cfg.store.root_cert_store(),
                schannel: self.cfg.schannel.clone(),
            })));
    }

    fn tls_failed(&mut self, status: SecurityStatus, now: OffsetDateTime) {
        self.event(now, SessionEvent::TlsFailed { status });
        let (ack, reason) = if status.is_local() {
            (synthetic::connection_timed_out(), DisconnectReason::Local)
        } else {
            (
                synthetic::connection_dropped(),
                DisconnectReason::Remote("SocketError".into()),
            )
        };
        self.fail_and_close(now, FailureKind::Tls { status }, ack, reason);
    }

    /// The handshake's result.
    pub fn on_tls(&mut self, result: TlsResult, now: OffsetDateTime) {
        if self.phase != Phase::Handshaking {
            return;
        }
        self.last_activity = now;
        let info = match result {
            TlsResult::Failed(status) => {
                self.tls_failed(status, now);
                return;
            }
            TlsResult::Established(info) => info,
        };
        self.phase = Phase::Open;
        self.tls_active = true;
        self.reader = ReplyReader::new();
        self.event(
            now,
            SessionEvent::TlsNegotiated {
                text: info.schannel_text(),
            },
        );
        let leaf = info
            .peer_chain
            .first()
            .and_then(|d| CertFacts::from_der(d).ok());
        if let Some(facts) = &leaf {
            self.event(
                now,
                SessionEvent::Certificate {
                    role: CertRole::Remote,
                    cert: facts.clone(),
                },
            );
        }
        let level = self
            .cfg
            .connector
            .tls_auth_level
            .unwrap_or(TlsAuthLevel::EncryptionOnly);
        let mut status: Option<String> = None;
        if level != TlsAuthLevel::EncryptionOnly && info.chain != ChainVerdict::Trusted {
            status = Some(info.chain.status_name().to_string());
        }
        if status.is_none() && level == TlsAuthLevel::DomainValidation {
            let domain = self
                .cfg
                .connector
                .tls_domain
                .clone()
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| self.cfg.next_hop_domain.clone());
            let ok = leaf
                .as_ref()
                .is_some_and(|f| names_match(&domain, f.names()));
            if !ok {
                status = Some("SubjectMismatch".into());
            }
        }
        self.tls = Some(info);
        if let Some(status) = status {
            self.event(
                now,
                SessionEvent::Info {
                    data: String::new(),
                    context: format!(
                        "Remote certificate validation failed with status {status} (TlsAuthLevel {level})"
                    ),
                },
            );
            self.fail_with_quit(
                now,
                FailureKind::CertificateValidation { status },
                synthetic::certificate_validation_failure(),
            );
            return;
        }
        self.send_ehlo(now);
    }

    // ------------------------------------------------------------------ messages

    fn start_message(&mut self, now: OffsetDateTime) {
        // bounded: each iteration moves `current` forward
        while self.current < self.messages.len() {
            if self.sent_in_session >= self.cfg.connector.smtp_max_messages_per_connection {
                break;
            }
            let msg = &self.messages[self.current];
            let wire_len = msg
                .wire(self.cfg.connector.cloud_services_mail_enabled)
                .len();
            if self.ehlo_caps & EXT_SIZE != 0 && self.ehlo_size > 0 && wire_len > self.ehlo_size {
                self.results[self.current].status = MessageStatus::Rejected {
                    reply: synthetic::over_advertised_size(),
                    local: true,
                };
                self.current += 1;
                continue;
            }
            let id = msg.internal_id;
            let arrival = log_time(msg.arrival);
            let from = msg.from.clone();
            let size = (self.ehlo_caps & EXT_SIZE != 0).then_some(wire_len);
            self.event(
                now,
                SessionEvent::Info {
                    data: format!("{id};{arrival};1"),
                    context: "sending message".into(),
                },
            );
            self.sent_in_session += 1;
            self.mail_reply = None;
            self.send_cmd(now, &MailFrom { from: &from, size }, Expect::Mail);
            if self.cfg_pipelining() {
                let rcpts = self.messages[self.current].to.clone();
                for (i, r) in rcpts.iter().enumerate() {
                    self.send_cmd(now, &RcptTo(r), Expect::Rcpt(i));
                }
            }
            return;
        }
        self.quit(now);
    }

    fn next_rcpt_index(&self) -> Option<usize> {
        self.results[self.current]
            .recipients
            .iter()
            .position(|(_, r)| r.is_none())
    }

    fn maybe_after_envelope(&mut self, now: OffsetDateTime) {
        if self.cfg_pipelining() {
            if !self.expect.is_empty() {
                return;
            }
            self.after_envelope(now);
            return;
        }
        // not pipelining: MAIL answered, now RCPTs one by one
        match &self.mail_reply {
            Some(r) if r.is_positive() => self.send_next_rcpt_or_data(now),
            _ => self.after_envelope(now),
        }
    }

    fn send_next_rcpt_or_data(&mut self, now: OffsetDateTime) {
        match self.next_rcpt_index() {
            Some(i) => {
                let r = self.results[self.current].recipients[i].0.clone();
                self.send_cmd(now, &RcptTo(&r), Expect::Rcpt(i));
            }
            None => self.after_envelope(now),
        }
    }

    fn after_envelope(&mut self, now: OffsetDateTime) {
        let mail = self.mail_reply.clone();
        let result = &self.results[self.current];
        if let Some(m) = mail.filter(|m| !m.is_positive()) {
            self.finish_message_no_data(m, now, false);
            return;
        }
        let accepted = result
            .recipients
            .iter()
            .any(|(_, r)| r.as_ref().is_some_and(Reply::is_positive));
        if !accepted {
            let first = result
                .recipients
                .iter()
                .filter_map(|(_, r)| r.clone())
                .find(|r| r.is_transient())
                .or_else(|| result.recipients.iter().find_map(|(_, r)| r.clone()))
                .unwrap_or_else(|| Reply::new(550, "5.1.0 No recipients"));
            self.finish_message_no_data(first, now, true);
            return;
        }
        let wire = self.messages[self.current].wire(self.cfg.connector.cloud_services_mail_enabled);
        if self.ehlo_caps & EXT_CHUNKING != 0 {
            let cmd = Bdat {
                len: wire.len(),
                last: true,
            };
            self.event(
                now,
                SessionEvent::Sent {
                    line: command::line(&cmd),
                },
            );
            let mut bytes = cmd.to_string().into_bytes();
            bytes.extend_from_slice(&wire);
            self.actions.push_back(Action::Send(bytes));
            self.expect.push_back(Expect::Final);
        } else {
            self.send_cmd(now, &Data, Expect::DataGo);
        }
    }

    fn finish_message_no_data(
        &mut self,
        reply: Reply,
        now: OffsetDateTime,
        transaction_open: bool,
    ) {
        self.set_status(reply);
        self.current += 1;
        if transaction_open && self.has_more() {
            self.send_cmd(now, &Rset, Expect::Rset);
        } else {
            self.next_message(now);
        }
    }

    fn finish_message(&mut self, reply: Reply, now: OffsetDateTime) {
        self.set_status(reply);
        self.current += 1;
        self.next_message(now);
    }

    fn set_status(&mut self, reply: Reply) {
        self.results[self.current].status = if reply.is_positive() {
            MessageStatus::Delivered { reply }
        } else if reply.is_transient() {
            MessageStatus::Deferred { reply }
        } else {
            MessageStatus::Rejected {
                reply,
                local: false,
            }
        };
    }

    fn has_more(&self) -> bool {
        self.current < self.messages.len()
            && self.sent_in_session < self.cfg.connector.smtp_max_messages_per_connection
    }

    fn next_message(&mut self, now: OffsetDateTime) {
        if self.has_more() {
            self.start_message(now);
        } else {
            self.quit(now);
        }
    }

    /// Ends the machine and hands back what happened.
    pub fn finish(self) -> SessionReport {
        SessionReport {
            target: self.cfg.target.clone(),
            log: self.log,
            failure: self.failure,
            messages: self.results,
            selection: self.selection,
            tls: self.tls,
            ehlo_keywords: self.ehlo_keywords,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::certstore::fixtures::{self, CONTOSO_SUBJECT, ISSUING_CA};
    use crate::certstore::{CertStore, StoreDescription};

    fn t0() -> OffsetDateTime {
        time::macros::datetime!(2026-05-02 06:30:00 UTC)
    }

    fn cfg(desc: &StoreDescription, connector: SendConnector) -> SessionConfig {
        SessionConfig {
            connector,
            server: ServerIdentity::default(),
            store: Arc::new(CertStore::build(desc, t0()).unwrap()),
            selection: SelectionSettings::default(),
            schannel: SchannelSettings::default(),
            session_id: "08D6CEB1A2F3C4D5".into(),
            target: Target {
                host: "contoso-com.mail.protection.outlook.com".into(),
                addr: "127.0.0.1:25".parse().unwrap(),
                unreachable: None,
            },
            next_hop_domain: "contoso.mail.onmicrosoft.com".into(),
            skip_starttls: false,
        }
    }

    fn hybrid() -> SendConnector {
        SendConnector::hybrid(
            "contoso",
            Some(format!("<I>{ISSUING_CA}<S>{CONTOSO_SUBJECT}")),
        )
    }

    fn plain_connector() -> SendConnector {
        SendConnector::to_smart_host("To relay", "relay.lab", 25)
    }

    fn msg() -> OutboundMessage {
        OutboundMessage::simple(
            12884901890,
            "alice@contoso.com",
            "bob@contoso.mail.onmicrosoft.com",
            t0(),
        )
    }

    const BANNER: &[u8] =
        b"220 AM5EUR02FT017.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready\r\n";
    const EHLO_TLS: &[u8] = b"250-AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 CHUNKING\r\n";
    const EHLO_AFTER: &[u8] = b"250-AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250 CHUNKING\r\n";

    /// Drains actions; returns the bytes sent and whether a StartTls / Close came out.
    fn drain(m: &mut SenderMachine) -> (String, Option<Box<TlsRequest>>, bool) {
        let mut sent = String::new();
        let mut tls = None;
        let mut close = false;
        while let Some(a) = m.poll_action() {
            match a {
                Action::Send(b) => sent.push_str(&String::from_utf8_lossy(&b)),
                Action::StartTls(r) => tls = Some(r),
                Action::Close => close = true,
            }
        }
        (sent, tls, close)
    }

    fn connect(m: &mut SenderMachine) {
        m.on_connected("127.0.0.1:27436".parse().unwrap(), t0());
        m.on_data(BANNER, t0());
    }

    /// The last `n` log lines as `event,data,context` (CSV-quoted like the log).
    fn tail(r: &SessionReport, n: usize) -> Vec<String> {
        let lines: Vec<String> = session_records(&r.log, CertBlockStyle::MultiLine)
            .iter()
            .map(|rec| {
                let mut line = String::new();
                let ev = rec.event.to_string();
                hybridlab_artefacts::csv::write_record(
                    &mut line,
                    [ev.as_str(), rec.data.as_str(), rec.context.as_str()],
                );
                line
            })
            .collect();
        lines[lines.len().saturating_sub(n)..].to_vec()
    }

    #[test]
    fn classic_keyless_twin_fails_with_no_credentials_before_any_tls_byte() {
        let c = cfg(&fixtures::classic_twins(true), hybrid());
        let keyless = c
            .store
            .entry("twin-nokey")
            .unwrap()
            .facts
            .thumbprint
            .clone();
        let mut m = SenderMachine::new(c, vec![msg()], t0());
        connect(&mut m);
        assert_eq!(drain(&mut m).0, "EHLO mail.contoso.com\r\n");
        m.on_data(EHLO_TLS, t0());
        assert_eq!(drain(&mut m).0, "STARTTLS\r\n");
        m.on_data(b"220 2.0.0 SMTP server ready\r\n", t0());
        let (sent, tls, close) = drain(&mut m);
        assert!(sent.is_empty() && tls.is_none() && close);
        assert!(m.is_done());
        let r = m.finish();
        let t = tail(&r, 9);
        assert_eq!(t[0], "<,220 2.0.0 SMTP server ready,");
        assert_eq!(t[1], "*,,Sending certificate");
        assert_eq!(t[5], format!("*,{keyless},Certificate thumbprint"));
        assert_eq!(t[7], "*,,TLS negotiation failed with error NoCredentials");
        assert_eq!(t[8], "-,,Local");
        let Outcome::SessionFailed(f) = r.outcome() else {
            panic!()
        };
        assert_eq!(f.ack.one_line(), "421 4.4.1 Connection timed out");
        assert!(!f.is_communication_error());
        let t = r.transcript();
        assert!(
            t.starts_with(
                "2026-05-02T06:30:00.000Z,Outbound to Office 365,08D6CEB1A2F3C4D5,0,,127.0.0.1:25,*,,attempting to connect\n"
            ),
            "{t}"
        );
    }

    #[test]
    fn unreadable_key_gives_unknown_credentials() {
        let mut d = fixtures::classic_twins(false);
        d.certificates[0].key_readable = false;
        let mut m = SenderMachine::new(cfg(&d, hybrid()), vec![msg()], t0());
        connect(&mut m);
        m.on_data(EHLO_TLS, t0());
        m.on_data(b"220 2.0.0 SMTP server ready\r\n", t0());
        let r = {
            drain(&mut m);
            m.finish()
        };
        assert_eq!(
            tail(&r, 2),
            vec![
                "*,,TLS negotiation failed with error UnknownCredentials",
                "-,,Local"
            ]
        );
    }

    #[test]
    fn keyed_twin_first_hands_the_handshake_to_the_driver_and_delivers() {
        let c = cfg(&fixtures::classic_twins(false), hybrid());
        let mut m = SenderMachine::new(c, vec![msg()], t0());
        connect(&mut m);
        m.on_data(EHLO_TLS, t0());
        drain(&mut m);
        m.on_data(b"220 2.0.0 SMTP server ready\r\n", t0());
        let (_, tls, _) = drain(&mut m);
        let req = tls.expect("StartTls action");
        assert_eq!(req.server_name, "contoso-com.mail.protection.outlook.com");
        assert_eq!(req.credential.as_ref().unwrap().chain.len(), 2);
        let eop = hybridlab_labkit::pki::IssuedCert::self_signed(
            &hybridlab_labkit::pki::CertSpec::leaf("mail.protection.outlook.com", t0()),
        )
        .unwrap();
        m.on_tls(
            TlsResult::Established(TlsInfo {
                protocol: "TLS1_2".into(),
                cipher_suite: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(),
                kx_group: Some("secp384r1".into()),
                peer_chain: vec![eop.der.clone()],
                chain: ChainVerdict::Trusted,
            }),
            t0(),
        );
        assert_eq!(drain(&mut m).0, "EHLO mail.contoso.com\r\n");
        m.on_data(EHLO_AFTER, t0());
        let (sent, _, _) = drain(&mut m);
        assert!(
            sent.starts_with("MAIL FROM:<alice@contoso.com> SIZE="),
            "{sent}"
        );
        assert!(
            sent.ends_with("RCPT TO:<bob@contoso.mail.onmicrosoft.com>\r\n"),
            "{sent}"
        );
        m.on_data(b"250 2.1.0 Sender OK\r\n", t0());
        assert!(
            drain(&mut m).0.is_empty(),
            "waits for every pipelined reply"
        );
        m.on_data(b"250 2.1.5 Recipient OK\r\n", t0());
        let (sent, _, _) = drain(&mut m);
        assert!(
            sent.starts_with("BDAT ") && sent.contains(" LAST\r\n"),
            "{sent}"
        );
        assert!(sent.contains("X-MS-Exchange-CrossPremises-AuthAs: Internal"));
        m.on_data(b"250 2.6.0 <x@contoso.com> [InternalId=1, Hostname=AM0PR01MB1234] Queued mail for delivery\r\n", t0());
        assert_eq!(drain(&mut m).0, "QUIT\r\n");
        m.on_data(b"221 2.0.0 Service closing transmission channel\r\n", t0());
        assert!(drain(&mut m).2);
        let r = m.finish();
        assert!(
            matches!(r.outcome(), Outcome::Delivered(ref rep) if rep.text().starts_with("2.6.0"))
        );
        let t = r.transcript();
        assert!(t.contains("*,,\"TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256"));
        assert!(t.contains("*,,Remote certificate\n"));
        assert!(t.contains("*,12884901890;2026-05-02T06:30:00.000Z;1,sending message"));
        assert!(t.contains("<,250  AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.1] SIZE 157286400 PIPELINING STARTTLS CHUNKING,"));
        assert_eq!(tail(&r, 1), vec!["-,,Local"]);
    }

    fn established(m: &mut SenderMachine, chain: ChainVerdict, cn: &str) {
        connect(m);
        m.on_data(EHLO_TLS, t0());
        m.on_data(b"220 2.0.0 SMTP server ready\r\n", t0());
        drain(m);
        let eop = hybridlab_labkit::pki::IssuedCert::self_signed(
            &hybridlab_labkit::pki::CertSpec::leaf(cn, t0()),
        )
        .unwrap();
        m.on_tls(
            TlsResult::Established(TlsInfo {
                protocol: "TLS1_2".into(),
                cipher_suite: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
                kx_group: None,
                peer_chain: vec![eop.der.clone()],
                chain,
            }),
            t0(),
        );
    }

    #[test]
    fn remote_certificate_judged_per_tls_auth_level() {
        // DomainValidation, trusted chain, wrong name
        let mut m = SenderMachine::new(
            cfg(&fixtures::classic_twins(false), hybrid()),
            vec![msg()],
            t0(),
        );
        established(&mut m, ChainVerdict::Trusted, "mx.fabrikam.com");
        assert_eq!(drain(&mut m).0, "QUIT\r\n");
        m.on_eof(t0());
        let r = m.finish();
        let Outcome::SessionFailed(f) = r.outcome() else {
            panic!()
        };
        assert_eq!(f.ack.one_line(), "454 4.7.5 Certificate validation failure");
        assert_eq!(
            f.kind,
            FailureKind::CertificateValidation {
                status: "SubjectMismatch".into()
            }
        );
        assert!(
            r.transcript()
                .contains("Remote certificate validation failed with status SubjectMismatch")
        );
        // wildcard name matches TlsDomain's host
        let mut m = SenderMachine::new(
            cfg(&fixtures::classic_twins(false), hybrid()),
            vec![msg()],
            t0(),
        );
        established(&mut m, ChainVerdict::Trusted, "mail.protection.outlook.com");
        assert!(drain(&mut m).0.starts_with("EHLO"));
        // CertificateValidation: untrusted root fails, name ignored
        let mut c = hybrid();
        c.tls_auth_level = Some(TlsAuthLevel::CertificateValidation);
        c.tls_domain = None;
        let mut m = SenderMachine::new(
            cfg(&fixtures::classic_twins(false), c.clone()),
            vec![msg()],
            t0(),
        );
        established(&mut m, ChainVerdict::UntrustedRoot, "whatever");
        drain(&mut m);
        let r = m.finish();
        assert_eq!(
            r.failure.unwrap().kind,
            FailureKind::CertificateValidation {
                status: "UntrustedRoot".into()
            }
        );
        let mut m = SenderMachine::new(
            cfg(&fixtures::classic_twins(false), c.clone()),
            vec![msg()],
            t0(),
        );
        established(&mut m, ChainVerdict::Expired, "whatever");
        drain(&mut m);
        assert_eq!(
            m.finish().failure.unwrap().kind,
            FailureKind::CertificateValidation {
                status: "Expired".into()
            }
        );
        // EncryptionOnly accepts anything
        c.tls_auth_level = Some(TlsAuthLevel::EncryptionOnly);
        let mut m = SenderMachine::new(cfg(&fixtures::classic_twins(false), c), vec![msg()], t0());
        established(&mut m, ChainVerdict::UntrustedRoot, "whatever");
        assert!(drain(&mut m).0.starts_with("EHLO"));
    }

    #[test]
    fn tls_failures_from_the_driver() {
        for (status, ack, reason) in [
            (
                SecurityStatus::AlgorithmMismatch,
                "421 4.4.1 Connection timed out",
                "-,,Local",
            ),
            (
                SecurityStatus::SocketError,
                "421 4.4.2 Connection dropped due to SocketError",
                "-,,Remote(SocketError)",
            ),
        ] {
            let mut m = SenderMachine::new(
                cfg(&fixtures::classic_twins(false), hybrid()),
                vec![msg()],
                t0(),
            );
            connect(&mut m);
            m.on_data(EHLO_TLS, t0());
            m.on_data(b"220 2.0.0 SMTP server ready\r\n", t0());
            drain(&mut m);
            m.on_tls(TlsResult::Failed(status), t0());
            let r = m.finish();
            assert_eq!(
                tail(&r, 2),
                vec![
                    status.log_text().replace("TLS", "*,,TLS"),
                    reason.to_string()
                ]
            );
            let Outcome::SessionFailed(f) = r.outcome() else {
                panic!()
            };
            assert_eq!(f.ack.one_line(), ack);
            assert_eq!(
                f.is_communication_error(),
                status == SecurityStatus::SocketError
            );
        }
    }

    #[test]
    fn require_tls_without_starttls_offered() {
        let mut m = SenderMachine::new(
            cfg(&fixtures::classic_twins(false), hybrid()),
            vec![msg()],
            t0(),
        );
        connect(&mut m);
        m.on_data(
            b"250-host Hello\r\n250-XXXXXXXA\r\n250 PIPELINING\r\n",
            t0(),
        );
        assert_eq!(drain(&mut m).0, "EHLO mail.contoso.com\r\nQUIT\r\n");
        m.on_data(b"221 2.0.0 Bye\r\n", t0());
        let r = m.finish();
        let Outcome::SessionFailed(f) = r.outcome() else {
            panic!()
        };
        assert_eq!(
            f.ack.one_line(),
            "451 5.7.3 STARTTLS is required to send mail"
        );
    }

    #[test]
    fn certificate_not_found_and_domain_validation_without_domain() {
        let mut c = hybrid();
        c.tls_certificate_name = Some("<I>CN=Old CA<S>CN=mail.contoso.com".into());
        let mut m = SenderMachine::new(cfg(&fixtures::classic_twins(false), c), vec![msg()], t0());
        connect(&mut m);
        m.on_data(EHLO_TLS, t0());
        m.on_data(b"220 2.0.0 SMTP server ready\r\n", t0());
        let r = {
            drain(&mut m);
            m.finish()
        };
        assert!(!r.transcript().contains("Sending certificate"));
        assert_eq!(r.selection.as_ref().unwrap().events[0].id, 12014);
        let Outcome::SessionFailed(f) = r.outcome() else {
            panic!()
        };
        assert_eq!(f.ack, synthetic::tls_certificate_name_not_found());

        let mut c = hybrid();
        c.tls_domain = None;
        let mut m = SenderMachine::new(cfg(&fixtures::classic_twins(false), c), vec![msg()], t0());
        connect(&mut m);
        m.on_data(EHLO_TLS, t0());
        let r = {
            drain(&mut m);
            m.finish()
        };
        assert_eq!(
            r.failure.unwrap().ack.one_line(),
            "421 TLSAuthLevel cannot be DomainValidation with out a valid TLS Domain."
        );
    }

    #[test]
    fn plain_data_with_dot_stuffing_and_size_check() {
        let mut c = plain_connector();
        c.smtp_max_messages_per_connection = 5;
        let mut big = msg();
        big.internal_id = 2;
        big.min_size = Some(3000);
        let mut dotted = msg();
        dotted.internal_id = 3;
        dotted.body = ".leading dot\r\n".into();
        let mut m = SenderMachine::new(
            cfg(&fixtures::classic_twins(false), c),
            vec![big, dotted],
            t0(),
        );
        connect(&mut m);
        drain(&mut m);
        m.on_data(b"250-relay.lab\r\n250 SIZE 2000\r\n", t0());
        let (sent, _, _) = drain(&mut m);
        assert!(
            sent.starts_with("MAIL FROM:<alice@contoso.com> SIZE="),
            "no STARTTLS offered: plain text, {sent}"
        );
        assert!(
            !sent.contains("RCPT"),
            "no PIPELINING: one command at a time"
        );
        m.on_data(b"250 2.1.0 OK\r\n", t0());
        assert_eq!(
            drain(&mut m).0,
            "RCPT TO:<bob@contoso.mail.onmicrosoft.com>\r\n"
        );
        m.on_data(b"250 2.1.5 OK\r\n", t0());
        assert_eq!(drain(&mut m).0, "DATA\r\n");
        m.on_data(b"354 go\r\n", t0());
        let (sent, _, _) = drain(&mut m);
        assert!(
            sent.contains("\r\n..leading dot\r\n") && sent.ends_with("\r\n.\r\n"),
            "{sent}"
        );
        m.on_data(b"250 2.6.0 queued\r\n", t0());
        assert_eq!(drain(&mut m).0, "QUIT\r\n");
        m.on_data(b"221 bye\r\n", t0());
        let r = m.finish();
        assert_eq!(
            r.messages[0].status,
            MessageStatus::Rejected {
                reply: synthetic::over_advertised_size(),
                local: true
            }
        );
        assert!(matches!(r.outcome_of(1), Outcome::Delivered(_)));
    }

    #[test]
    fn recipient_and_message_level_replies() {
        let mut m = SenderMachine::new(
            cfg(&fixtures::classic_twins(false), plain_connector()),
            vec![msg(), msg()],
            t0(),
        );
        connect(&mut m);
        drain(&mut m);
        m.on_data(b"250-relay\r\n250 PIPELINING\r\n", t0());
        drain(&mut m);
        m.on_data(
            b"250 2.1.0 OK\r\n550 5.7.64 TenantAttribution; Relay Access Denied [x]\r\n",
            t0(),
        );
        assert_eq!(drain(&mut m).0, "RSET\r\n");
        m.on_data(b"250 2.0.0 Resetting\r\n", t0());
        let (sent, _, _) = drain(&mut m);
        assert!(sent.starts_with("MAIL FROM"));
        m.on_data(b"451 4.7.500 Server busy. Please try again later from [127.0.0.1]. (S77714)\r\n503 5.5.1 Bad sequence\r\n", t0());
        assert_eq!(drain(&mut m).0, "QUIT\r\n");
        m.on_eof(t0());
        let r = m.finish();
        assert!(
            matches!(r.outcome_of(0), Outcome::Rejected(ref x) if x.text().starts_with("5.7.64"))
        );
        assert!(
            matches!(r.outcome_of(1), Outcome::Deferred(ref x) if x.text().starts_with("4.7.500"))
        );
        assert_eq!(tail(&r, 1), vec!["-,,Local"]);
    }

    #[test]
    fn timeouts_drops_and_garbage() {
        let c = cfg(&fixtures::classic_twins(false), plain_connector());
        let mut m = SenderMachine::new(c.clone(), vec![msg()], t0());
        connect(&mut m);
        let d = m.deadline().unwrap();
        assert_eq!(d, t0() + time::Duration::minutes(10));
        m.on_timeout(t0() + time::Duration::minutes(5));
        assert!(!m.is_done());
        m.on_timeout(d);
        let r = m.finish();
        assert_eq!(
            r.failure.unwrap().ack.one_line(),
            "421 4.4.1 Connection timed out"
        );

        let mut m = SenderMachine::new(c.clone(), vec![msg()], t0());
        connect(&mut m);
        m.on_eof(t0());
        let r = m.finish();
        let f = r.failure.clone().unwrap();
        assert_eq!(
            f.ack.one_line(),
            "421 4.4.2 Connection dropped due to SocketError"
        );
        assert!(f.is_communication_error());
        assert_eq!(tail(&r, 1), vec!["-,,Remote(SocketError)"]);

        let mut m = SenderMachine::new(c.clone(), vec![msg()], t0());
        m.on_connected("127.0.0.1:1".parse().unwrap(), t0());
        m.on_data(b"\x16\x03\x01 not smtp\r\n", t0());
        assert_eq!(m.finish().failure.unwrap().kind, FailureKind::ProtocolError);

        let mut m = SenderMachine::new(c.clone(), vec![msg()], t0());
        m.on_connected("127.0.0.1:1".parse().unwrap(), t0());
        m.on_data(b"554 5.7.1 go away\r\n", t0());
        assert_eq!(drain(&mut m).0, "QUIT\r\n");
        assert_eq!(
            m.finish().failure.unwrap().kind,
            FailureKind::BannerRejected
        );

        let mut m = SenderMachine::new(c, vec![msg()], t0());
        m.on_connect_failed(ConnectFailure::Refused, t0());
        let r = m.finish();
        assert_eq!(
            r.failure.unwrap().ack.one_line(),
            "421 4.2.1 Unable to connect"
        );
        assert_eq!(r.log.events.len(), 1);
    }

    #[test]
    fn opportunistic_fallback_skips_starttls() {
        let mut c = cfg(&fixtures::classic_twins(true), plain_connector());
        c.skip_starttls = true;
        let mut m = SenderMachine::new(c, vec![msg()], t0());
        connect(&mut m);
        drain(&mut m);
        m.on_data(EHLO_TLS, t0());
        assert!(drain(&mut m).0.starts_with("MAIL FROM"));
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use crate::certstore::{CertStore, fixtures};
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn store() -> Arc<CertStore> {
        static S: OnceLock<Arc<CertStore>> = OnceLock::new();
        S.get_or_init(|| {
            Arc::new(
                CertStore::build(
                    &fixtures::classic_twins(false),
                    time::macros::datetime!(2026-05-02 06:30:00 UTC),
                )
                .unwrap(),
            )
        })
        .clone()
    }

    fn machine() -> SenderMachine {
        let t = time::macros::datetime!(2026-05-02 06:30:00 UTC);
        let cfg = SessionConfig {
            connector: SendConnector::to_smart_host("x", "relay.lab", 25),
            server: ServerIdentity::default(),
            store: store(),
            selection: SelectionSettings::default(),
            schannel: SchannelSettings::default(),
            session_id: "0000000000000001".into(),
            target: Target {
                host: "relay.lab".into(),
                addr: "127.0.0.1:25".parse().unwrap(),
                unreachable: None,
            },
            next_hop_domain: "lab".into(),
            skip_starttls: false,
        };
        let mut m = SenderMachine::new(
            cfg,
            vec![OutboundMessage::simple(1, "a@b.c", "d@e.f", t)],
            t,
        );
        m.on_connected("127.0.0.1:2000".parse().unwrap(), t);
        m
    }

    fn smtpish() -> impl Strategy<Value = Vec<u8>> {
        let tokens = prop::sample::select(vec![
            &b"220 ok\r\n"[..],
            b"250-x\r\n",
            b"250 STARTTLS\r\n",
            b"250 PIPELINING\r\n",
            b"250 CHUNKING\r\n",
            b"250 SIZE 10\r\n",
            b"354 go\r\n",
            b"421 bye\r\n",
            b"451 4.4.395 x\r\n",
            b"550 5.7.64 no\r\n",
            b"\r\n",
            b"\x00\xff",
            b"2",
            b"-",
        ]);
        prop::collection::vec(tokens, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_bounded(data in prop_oneof![smtpish(), prop::collection::vec(any::<u8>(), 0..512)], split in 1usize..64) {
            let t = time::macros::datetime!(2026-05-02 06:30:00 UTC);
            let mut m = machine();
            let mut actions = 0usize;
            for chunk in data.chunks(split) {
                m.on_data(chunk, t);
                while m.poll_action().is_some() {
                    actions += 1;
                }
            }
            m.on_eof(t);
            while m.poll_action().is_some() {
                actions += 1;
            }
            prop_assert!(actions < 200);
            let r = m.finish();
            prop_assert!(r.log.events.len() < 400);
        }
    }
}
