//! The Exchange-like SMTP receiver core: sans-IO, bytes and `now` in, [`ReceiveAction`]s out
//! ([`ProtocolCore`]). It answers as a receive connector of Exchange 2016/2019 answers Exchange
//! Online: the banner, the EHLO list with `X-ANONYMOUSTLS`, `X-EXPS` and `XRDST`, STARTTLS with
//! the connector's certificate, the client certificate judged for `TlsDomainCapabilities` at the
//! EHLO after TLS, MAIL/RCPT/DATA/BDAT with the connector's limits, back pressure at MAIL,
//! cross-premises headers honoured or dropped, the idle timeout and the protocol-error limit.
//!
//! Everything it does is written as it happens into the session's RECV-log events
//! ([`ProtocolLogSession`]), so [`ReceiveSession::finish`] hands back the protocol-log session,
//! the accepted messages and the events, ready for the artefact writers.
//!
//! Files: this one holds the state, the [`ProtocolCore`] entry points and command framing;
//! `commands` the verbs, `tls` STARTTLS and the capability verdict, `message` the accepted
//! message and its headers.

mod commands;
mod message;
mod tls;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;

use hybridlab_artefacts::protocol_log::{ProtocolLogSession, SessionEvent, TimedEvent};
use hybridlab_model::core::ProtocolCore;
use hybridlab_model::event::WindowsEvent;
use hybridlab_model::exchange::DisconnectReason;
use hybridlab_model::reply::Reply;
use serde::{Deserialize, Serialize};
use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, DummyDataReceiver};
use time::OffsetDateTime;

pub use message::{CrossPremises, ReceivedMessage, Transfer};
pub use tls::{ClientCertificateFacts, SessionTls, TlsHandshake};

use super::connector::ProtocolLoggingLevel;
use super::server::{ConnectorRuntime, EhloLogLayout, ServerContext};
use super::tls::TlsPlan;

/// Longest command line accepted (CRLF included) \[U\].
const MAX_LINE: usize = 4096;

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiveAction {
    /// Write these bytes to the client.
    Write(Vec<u8>),
    /// The `220 2.0.0 SMTP server ready` went out: run the TLS handshake (or refuse it), then
    /// call [`ReceiveSession::handle_tls_established`] or
    /// [`ReceiveSession::handle_tls_failed`].
    StartTls(TlsPlan),
    /// A message was accepted (its 250 is in the preceding write).
    Message(Box<ReceivedMessage>),
    /// Close the connection once the writes before it are done.
    Close,
}

/// Why the session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Still open.
    Open,
    /// QUIT.
    Quit,
    /// The client closed the connection.
    ClientClosed,
    /// `451 4.7.0 Timeout waiting for client input`.
    IdleTimeout,
    /// `ConnectionTimeout` reached.
    SessionTimeout,
    /// `421 4.7.0 Too many errors on this connection`.
    TooManyErrors,
    /// The TLS handshake failed or was refused.
    TlsFailed,
    /// The service is stopping.
    Shutdown,
    /// Reading or writing failed.
    IoError,
}

/// Everything one session produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiveSessionRecord {
    /// The server's name.
    pub server: String,
    /// `SERVER\Connector`.
    pub connector_id: String,
    /// The session id of the RECV log.
    pub session_id: String,
    /// The client.
    pub peer: SocketAddr,
    /// The local endpoint.
    pub local: SocketAddr,
    /// When it started.
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When it ended.
    #[serde(with = "time::serde::rfc3339")]
    pub ended_at: OffsetDateTime,
    /// The EHLO/HELO name.
    pub helo: Option<String>,
    /// Whether STARTTLS was advertised.
    pub starttls_offered: bool,
    /// TLS facts, when the handshake completed.
    pub tls: Option<SessionTls>,
    /// The RECV-log session (`None` when the connector's `ProtocolLoggingLevel` is `None`).
    pub protocol_log: Option<ProtocolLogSession>,
    /// The full event list, whatever the logging level (for narration).
    pub events: Vec<TimedEvent>,
    /// Messages accepted.
    pub messages: Vec<ReceivedMessage>,
    /// Windows events the session caused (11022).
    pub windows_events: Vec<WindowsEvent>,
    /// Protocol errors counted.
    pub protocol_errors: u32,
    /// Why it ended.
    pub close_reason: CloseReason,
}

/// The mail transaction between MAIL and the end of the data.
#[derive(Debug)]
struct Txn {
    mail_from: String,
    xoorg: Option<String>,
    declared_size: usize,
    rcpts: Vec<String>,
    body: Vec<u8>,
    transfer: Option<Transfer>,
    data_started: Option<OffsetDateTime>,
}

enum Phase {
    Command,
    Data(DataReceiver),
    DataDiscard(DummyDataReceiver),
    Bdat(BdatReceiver),
    BdatDiscard(DummyDataReceiver, Reply),
    AwaitingTls,
    Closed,
}

/// One SMTP session on a receive connector.
pub struct ReceiveSession {
    server: Arc<ServerContext>,
    connector: Arc<ConnectorRuntime>,
    session_id: String,
    local: SocketAddr,
    peer: SocketAddr,
    started: OffsetDateTime,
    cur: OffsetDateTime,
    idle_deadline: OffsetDateTime,
    events: Vec<TimedEvent>,
    actions: VecDeque<ReceiveAction>,
    out: Vec<u8>,
    phase: Phase,
    line: Vec<u8>,
    line_overflow: usize,
    helo: Option<String>,
    tls: Option<SessionTls>,
    client_chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    capabilities_judged: bool,
    txn: Option<Txn>,
    protocol_errors: u32,
    messages: Vec<ReceivedMessage>,
    message_count: u32,
    windows_events: Vec<WindowsEvent>,
    close_reason: CloseReason,
}

impl std::fmt::Debug for ReceiveSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiveSession")
            .field("session_id", &self.session_id)
            .field("peer", &self.peer)
            .field("tls", &self.tls.is_some())
            .field("close_reason", &self.close_reason)
            .finish_non_exhaustive()
    }
}

impl ReceiveSession {
    /// A session at `now` for a connection from `peer` to `local`: logs the connection and the
    /// session permissions and queues the banner.
    pub fn new(
        server: Arc<ServerContext>,
        connector: Arc<ConnectorRuntime>,
        session_id: String,
        local: SocketAddr,
        peer: SocketAddr,
        now: OffsetDateTime,
    ) -> Self {
        let idle = connector.connector.connection_inactivity_timeout.to_time();
        let mut s = Self {
            server,
            connector,
            session_id,
            local,
            peer,
            started: now,
            cur: now,
            idle_deadline: now + idle,
            events: Vec::new(),
            actions: VecDeque::new(),
            out: Vec::new(),
            phase: Phase::Command,
            line: Vec::new(),
            line_overflow: 0,
            helo: None,
            tls: None,
            client_chain: Vec::new(),
            capabilities_judged: false,
            txn: None,
            protocol_errors: 0,
            messages: Vec::new(),
            message_count: 0,
            windows_events: Vec::new(),
            close_reason: CloseReason::Open,
        };
        s.log(SessionEvent::Connected);
        s.log(SessionEvent::Info {
            data: s.session_permissions().into(),
            context: "Set Session Permissions".into(),
        });
        let banner = s.banner();
        s.reply(banner);
        s.flush();
        s
    }

    /// The session id (as in the RECV log).
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The connector serving the session.
    pub fn connector(&self) -> &ConnectorRuntime {
        &self.connector
    }

    /// The events logged so far.
    pub fn events(&self) -> &[TimedEvent] {
        &self.events
    }

    /// The service is stopping: `421 4.3.2 Service not available`, close.
    pub fn handle_shutdown(&mut self, now: OffsetDateTime) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        if !matches!(self.phase, Phase::AwaitingTls) {
            self.reply(Reply::new(421, "4.3.2 Service not available"));
        }
        self.close(CloseReason::Shutdown, DisconnectReason::Local);
    }

    /// Reading or writing failed (a reset): `-,,Remote(<what>)`.
    pub fn handle_io_error(&mut self, now: OffsetDateTime, what: &str) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        self.close(CloseReason::IoError, DisconnectReason::Remote(what.into()));
    }

    /// The session's record (closing it first, as a lost connection, if it is still open).
    pub fn finish(mut self, now: OffsetDateTime) -> ReceiveSessionRecord {
        self.advance(now);
        if !self.is_closed() {
            self.close(
                CloseReason::ClientClosed,
                DisconnectReason::Remote(String::new()),
            );
        }
        let logged = self.connector.connector.protocol_logging_level != ProtocolLoggingLevel::None;
        ReceiveSessionRecord {
            server: self.server.name.clone(),
            connector_id: self.connector.connector.identity(),
            session_id: self.session_id.clone(),
            peer: self.peer,
            local: self.local,
            started_at: self.started,
            ended_at: self.cur,
            helo: self.helo,
            starttls_offered: self.connector.offers_starttls(),
            tls: self.tls,
            protocol_log: logged.then(|| ProtocolLogSession {
                connector_id: self.connector.connector.identity(),
                session_id: self.session_id.clone(),
                local: Some(self.local),
                remote: self.peer,
                events: self.events.clone(),
            }),
            events: self.events,
            messages: self.messages,
            windows_events: self.windows_events,
            protocol_errors: self.protocol_errors,
            close_reason: self.close_reason,
        }
    }

    // ---- bookkeeping ----

    fn advance(&mut self, now: OffsetDateTime) {
        if now > self.cur {
            self.cur = now;
        }
    }

    fn log(&mut self, event: SessionEvent) {
        self.events.push(TimedEvent {
            at: self.cur,
            event,
        });
    }

    /// Queues `reply` and logs it (`>` line).
    fn reply(&mut self, reply: Reply) {
        reply.write_wire(&mut self.out);
        let line = reply.exchange_log_text();
        self.log(SessionEvent::Sent { line });
    }

    /// Queues a multi-line reply and logs it in the server's EHLO layout.
    fn reply_ehlo(&mut self, reply: Reply) {
        reply.write_wire(&mut self.out);
        match self.server.settings.ehlo_log_layout {
            EhloLogLayout::Joined => {
                let line = reply.exchange_log_text();
                self.log(SessionEvent::Sent { line });
            }
            EhloLogLayout::PerKeyword => {
                let wire = String::from_utf8_lossy(&reply.to_wire()).into_owned();
                for l in wire.split("\r\n").filter(|l| !l.is_empty()) {
                    self.log(SessionEvent::Sent {
                        line: l.to_string(),
                    });
                }
            }
        }
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            self.actions
                .push_back(ReceiveAction::Write(std::mem::take(&mut self.out)));
        }
    }

    fn close(&mut self, reason: CloseReason, disconnect: DisconnectReason) {
        self.flush();
        if !self.is_closed() {
            self.actions.push_back(ReceiveAction::Close);
            self.log(SessionEvent::Disconnected { reason: disconnect });
        }
        if self.close_reason == CloseReason::Open {
            self.close_reason = reason;
        }
        self.phase = Phase::Closed;
        self.txn = None;
    }

    fn protocol_error(&mut self, reply: Reply) {
        self.protocol_errors += 1;
        if self.protocol_errors > self.connector.connector.max_protocol_errors {
            self.reply(too_many_errors());
            self.close(CloseReason::TooManyErrors, DisconnectReason::Local);
        } else {
            self.reply(reply);
        }
    }

    fn session_deadline(&self) -> OffsetDateTime {
        self.started + self.connector.connector.connection_timeout.to_time()
    }

    fn end_of_turn(&mut self, activity: bool) {
        self.flush();
        if activity {
            self.idle_deadline = self.cur
                + self
                    .connector
                    .connector
                    .connection_inactivity_timeout
                    .to_time();
        }
    }

    /// `*,SMTPSubmit ...,Set Session Permissions`: what an anonymous session may do.
    fn session_permissions(&self) -> &'static str {
        use super::connector::PermissionGroup;
        if self
            .connector
            .connector
            .permission_groups
            .contains(&PermissionGroup::AnonymousUsers)
        {
            "SMTPSubmit SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender AcceptRoutingHeaders"
        } else {
            "None"
        }
    }

    fn banner(&self) -> Reply {
        if let Some(b) = &self.connector.connector.banner {
            return Reply::new(220, b.strip_prefix("220 ").unwrap_or(b).to_string());
        }
        let date = self
            .cur
            .to_offset(time::UtcOffset::UTC)
            .format(BANNER_DATE)
            .unwrap_or_default();
        Reply::new(
            220,
            format!(
                "{} Microsoft ESMTP MAIL Service ready at {date} +0000",
                self.fqdn()
            ),
        )
    }

    fn fqdn(&self) -> &str {
        self.connector.connector.effective_fqdn(&self.server.fqdn)
    }

    // ---- input framing ----

    fn ingest(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = match &mut self.phase {
                Phase::Closed | Phase::AwaitingTls => break,
                Phase::Command => self.command_bytes(rest),
                Phase::Data(recv) => {
                    let mut it = rest.iter();
                    let done = match self.txn.as_mut() {
                        Some(t) => recv.ingest(&mut it, &mut t.body),
                        None => true,
                    };
                    let left = it.as_slice();
                    let max = self.connector.connector.max_message_size;
                    let too_big = self
                        .txn
                        .as_ref()
                        .is_some_and(|t| t.body.len().saturating_sub(2) as u64 > max);
                    if done {
                        self.phase = Phase::Command;
                        self.finish_message(2);
                    } else if too_big && let Phase::Data(recv) = &self.phase {
                        self.phase = Phase::DataDiscard(DummyDataReceiver::new_data(recv));
                        self.txn = None;
                    }
                    left
                }
                Phase::DataDiscard(recv) => {
                    let mut it = rest.iter();
                    let done = recv.ingest(&mut it);
                    let left = it.as_slice();
                    if done {
                        self.phase = Phase::Command;
                        self.reply(message_too_large());
                    }
                    left
                }
                Phase::Bdat(recv) => {
                    let mut it = rest.iter();
                    let done = match self.txn.as_mut() {
                        Some(t) => recv.ingest(&mut it, &mut t.body),
                        None => true,
                    };
                    let last = recv.is_last;
                    let left = it.as_slice();
                    if done {
                        self.phase = Phase::Command;
                        self.bdat_chunk_done(last);
                    }
                    left
                }
                Phase::BdatDiscard(recv, _) => {
                    let mut it = rest.iter();
                    let done = recv.ingest(&mut it);
                    let left = it.as_slice();
                    if done
                        && let Phase::BdatDiscard(_, reply) =
                            std::mem::replace(&mut self.phase, Phase::Command)
                    {
                        self.reply(reply);
                    }
                    left
                }
            };
        }
    }

    /// Frames command lines out of `bytes`; returns what is left for the next phase.
    fn command_bytes<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let Some(pos) = bytes.iter().position(|&b| b == b'\n') else {
            if self.line_overflow > 0 || self.line.len() + bytes.len() > MAX_LINE {
                self.line_overflow += self.line.len() + bytes.len();
                self.line.clear();
            } else {
                self.line.extend_from_slice(bytes);
            }
            return &[];
        };
        let (head, rest) = bytes.split_at(pos + 1);
        if self.line_overflow > 0 || self.line.len() + head.len() > MAX_LINE {
            self.line_overflow = 0;
            self.line.clear();
            self.log(SessionEvent::ReceivedLine {
                line: "<line too long>".into(),
            });
            self.protocol_error(Reply::new(500, "5.5.2 Line too long"));
            return rest;
        }
        let mut line = std::mem::take(&mut self.line);
        line.extend_from_slice(head);
        self.command_line(&line);
        rest
    }
}

impl ProtocolCore for ReceiveSession {
    type Action = ReceiveAction;

    fn handle_input(&mut self, now: OffsetDateTime, bytes: &[u8]) {
        self.advance(now);
        if matches!(self.phase, Phase::AwaitingTls | Phase::Closed) {
            return;
        }
        self.ingest(bytes);
        self.end_of_turn(true);
    }

    fn handle_eof(&mut self, now: OffsetDateTime) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        self.close(
            CloseReason::ClientClosed,
            DisconnectReason::Remote(String::new()),
        );
    }

    fn handle_timeout(&mut self, now: OffsetDateTime) {
        self.advance(now);
        if self.is_closed() || matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        if self.cur >= self.session_deadline() {
            self.reply(Reply::new(421, "4.4.1 Connection timed out"));
            self.close(CloseReason::SessionTimeout, DisconnectReason::Local);
        } else if self.cur >= self.idle_deadline {
            self.reply(Reply::new(451, "4.7.0 Timeout waiting for client input"));
            self.close(CloseReason::IdleTimeout, DisconnectReason::Local);
        }
        self.end_of_turn(false);
    }

    fn poll_action(&mut self) -> Option<ReceiveAction> {
        self.actions.pop_front()
    }

    fn poll_timeout(&self) -> Option<OffsetDateTime> {
        if self.is_closed() || matches!(self.phase, Phase::AwaitingTls) {
            return None;
        }
        Some(self.idle_deadline.min(self.session_deadline()))
    }

    fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }
}

/// `421 4.7.0 Too many errors on this connection, closing transmission channel`.
fn too_many_errors() -> Reply {
    Reply::new(
        421,
        "4.7.0 Too many errors on this connection, closing transmission channel",
    )
}

/// `552 5.3.4 Message size exceeds fixed maximum message size`.
fn message_too_large() -> Reply {
    Reply::new(552, "5.3.4 Message size exceeds fixed maximum message size")
}

/// `Wed, 29 Jan 2025 20:14:51` (the ` +0000` is appended).
const BANNER_DATE: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day padding:none] [month repr:short] [year] [hour]:[minute]:[second]"
);

#[cfg(test)]
mod tests;
