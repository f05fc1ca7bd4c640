//! The sans-IO client state machine: an Exchange send connector's SMTP session.
//!
//! It is a [`ProtocolCore`]: bytes, end of input and timer expiries go in with `now`
//! (`handle_input`, `handle_eof`, `handle_timeout`), plus the sender's own inputs
//! ([`SenderMachine::handle_connected`], [`SenderMachine::handle_connect_failed`],
//! [`SenderMachine::handle_tls`]); actions come out of `poll_action` (`Send`, `StartTls`,
//! `Close`) and the inactivity timer out of `poll_timeout`. It never reads a clock and never
//! touches a socket; the tokio driver in [`super::driver`] does.
//!
//! What it does: banner; EHLO with the connector FQDN; STARTTLS when offered (unless
//! IgnoreSTARTTLS or an opportunistic fallback attempt); certificate selection ([`crate::selection`]) and the
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

use hybridlab_artefacts::protocol_log::{ProtocolLogSession, SessionEvent, TimedEvent};
use hybridlab_model::core::ProtocolCore;
use hybridlab_model::exchange::{DisconnectReason, synthetic};
use hybridlab_model::reply::Reply;
use smtp_proto::EXT_PIPELINING;
use time::OffsetDateTime;

use super::command::{self, Ehlo, Helo, Quit};
use super::reply_reader::{RawReply, ReplyReader};
use super::report::{
    FailureKind, MessageDisposition, MessageResult, SessionFailure, SessionReport,
};
use super::tls::{TlsInfo, TlsRequest};
use crate::certstore::CertStore;
use crate::connector::SendConnector;
use crate::message::{OutboundMessage, dot_stuff};
use crate::resolver::{ConnectFailure, Target};
use crate::schannel::SchannelSettings;
use crate::selection::{Selection, SelectionSettings};
use crate::server::ServerIdentity;

mod starttls;
mod transaction;

/// Everything one session needs.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// The send connector the session goes out on (EHLO name, TLS rules, limits).
    pub connector: SendConnector,
    /// The sending server (its FQDN is the EHLO name when the connector has none).
    pub server: ServerIdentity,
    /// `LocalMachine\My` and the trust stores.
    pub store: Arc<CertStore>,
    /// How the certificate for STARTTLS is picked among duplicates and when nothing matches.
    pub selection: SelectionSettings,
    /// SChannel versions and suites.
    pub schannel: SchannelSettings,
    /// The session id the log shows: 16 uppercase hex digits.
    pub session_id: String,
    /// Where the session goes: the host name as routed and its address.
    pub target: Target,
    /// The next-hop domain (recipient domain; the DomainValidation name on MX-routed connectors).
    pub next_hop_domain: String,
    /// Opportunistic fallback: this attempt does not issue STARTTLS.
    pub skip_starttls: bool,
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Action {
    /// Write these bytes to the connection.
    Send(Vec<u8>),
    /// Run the TLS handshake on the connection (the plaintext stream is consumed).
    StartTls(Box<TlsRequest>),
    /// Close the connection; the session is over.
    Close,
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

/// One SMTP client session of an Exchange send connector, sans IO (see the module docs).
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
                status: MessageDisposition::NotAttempted,
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

    /// The TCP connection is up at `now`, from `local`.
    pub fn handle_connected(&mut self, now: OffsetDateTime, local: SocketAddr) {
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
    pub fn handle_connect_failed(&mut self, _now: OffsetDateTime, failure: ConnectFailure) {
        self.failure = Some(SessionFailure {
            kind: FailureKind::ConnectFailed { failure },
            ack: synthetic::unable_to_connect(),
        });
        self.phase = Phase::Done;
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
            && r.status == MessageDisposition::NotAttempted
            && self.sent_in_session > 0
        {
            r.status = MessageDisposition::Deferred {
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

impl ProtocolCore for SenderMachine {
    type Action = Action;

    /// Bytes from the server: replies are framed and answered in order.
    fn handle_input(&mut self, now: OffsetDateTime, bytes: &[u8]) {
        if !matches!(self.phase, Phase::Open | Phase::Closing) {
            return;
        }
        self.last_activity = now;
        for r in self.reader.push(bytes) {
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

    /// The peer closed (or reset) the connection: the end of a QUIT exchange, else a drop.
    fn handle_eof(&mut self, now: OffsetDateTime) {
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

    /// No input within the connector's ConnectionInactivityTimeOut.
    fn handle_timeout(&mut self, now: OffsetDateTime) {
        if let Some(d) = self.poll_timeout()
            && now >= d
        {
            if self.phase == Phase::Closing {
                self.handle_eof(now);
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

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The end of the inactivity timeout while the SMTP channel is open (none while connecting or
    /// during the TLS handshake, which the driver bounds itself).
    fn poll_timeout(&self) -> Option<OffsetDateTime> {
        match self.phase {
            Phase::Open | Phase::Closing => Some(
                self.last_activity + self.cfg.connector.connection_inactivity_timeout.to_time(),
            ),
            _ => None,
        }
    }

    fn is_closed(&self) -> bool {
        self.phase == Phase::Done && self.actions.is_empty()
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
