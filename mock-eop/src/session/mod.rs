//! The sans-IO server session: bytes and `now` in, [`Action`]s out. No sockets, no clock.
//!
//! [`Session`] implements [`ProtocolCore`], the lab's one core vocabulary. A driver creates a
//! session per connection, drains [`ProtocolCore::poll_action`] after every call and executes the
//! actions in order (write bytes, wait until a virtual time, start TLS, publish a message, close),
//! then arms its timer for [`ProtocolCore::poll_timeout`]. It feeds the session with
//! [`ProtocolCore::handle_input`], [`Session::handle_tls_established`] (or
//! [`Session::handle_tls_failed`]), [`ProtocolCore::handle_timeout`] when that time has come, and
//! [`ProtocolCore::handle_eof`] / [`Session::handle_io_error`] / [`Session::handle_shutdown`].
//! [`Session::finish`] returns the [`SessionRecord`].
//!
//! The dialogue follows EOP's: its banner and EHLO list, `220 2.0.0 SMTP server ready`,
//! `250 2.1.0 Sender OK`, `250 2.1.5 Recipient OK`, `354 ...`,
//! `250 2.6.0 <id> [InternalId=..., Hostname=...] ... Queued mail for delivery`, `221 2.0.0 ...`,
//! with attribution at MAIL and RCPT ([`crate::attribution`]) and faults at every stage
//! ([`crate::fault`]).
//!
//! # Layout (one file per protocol phase, as Stalwart's inbound session)
//! - this file: the state ([`Session`], its phase), the public inputs, command dispatch, the
//!   helpers every phase uses (replies, transcript, stall, close, the idle timer);
//! - `framing`: command lines out of the byte stream, the line-length limit, smtp-proto's
//!   `Request::parse` and the protocol-error count;
//! - `faults`: the scripted fault that fires at a stage and what it does to a command;
//! - `hello`: the banner and EHLO/HELO with EOP's extension list;
//! - `lenient`: what EOP accepts although smtp-proto refuses it (bare HELO, `MAIL FROM: addr`)
//!   and its texts for what it refuses (`500 5.3.3 Unrecognized command '<verb>'`, `501 5.5.4
//!   Unrecognized parameter [<tag>]`), and the bracketed tag of reject texts;
//! - `starttls`: STARTTLS, its handshake faults, the handshake's outcome, bytes pipelined after it;
//! - `envelope`: MAIL and RCPT with tenant attribution;
//! - `data`: DATA and BDAT through smtp-proto's receivers, the size limit, the queued reply and
//!   the message record.

mod data;
mod envelope;
mod faults;
mod framing;
mod hello;
mod lenient;
mod starttls;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto::Request;
use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, DummyDataReceiver};
use time::OffsetDateTime;

use crate::config::EopConfig;
use crate::fault::{FaultBook, TlsAlert, mix};
pub use hybridlab_model::core::ProtocolCore;
use hybridlab_model::record::{CloseReason, MessageRecord, SessionRecord, TranscriptEntry};
use hybridlab_model::reply::{Reply, eop};

use envelope::Txn;

/// What the session is told about its connection.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The endpoint configuration the session answers with (shared by all sessions).
    pub config: Arc<EopConfig>,
    /// The scripted faults in force when the connection was accepted.
    pub faults: Arc<FaultBook>,
    /// 0-based number of the connection since the mock started: which attempt a fault's
    /// `first = N` counts, and an input of the session and message ids.
    pub index: u64,
    /// The mock's seed: with `index`, makes session ids, internal ids and probabilistic faults
    /// repeatable.
    pub seed: u64,
    /// The client's address: its IP is matched against connectors' SenderIPAddresses and shown
    /// in `Hello [ip]`.
    pub peer: SocketAddr,
    /// The mock's own address, as recorded in the session record.
    pub local: SocketAddr,
}

/// A TLS handshake fault the driver must carry out instead of a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeFault {
    /// Read the ClientHello, then close.
    Drop,
    /// Read the ClientHello, answer with these bytes, close.
    Garbage(Vec<u8>),
    /// Read the ClientHello, answer with this fatal alert, close.
    Alert(TlsAlert),
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write these bytes (one or more replies).
    Write(Vec<u8>),
    /// Wait until this (virtual) time before executing the next action.
    Stall(OffsetDateTime),
    /// Switch to TLS (after the 220 was written): run the handshake, or the fault.
    StartTls(Option<HandshakeFault>),
    /// A message was accepted: publish it.
    Message(Box<MessageRecord>),
    /// Close the connection (after writing what came before).
    Close,
}

/// Where the session is in the dialogue: what the next input bytes are.
enum Phase {
    /// Command lines.
    Command,
    /// DATA content, up to the lone dot.
    Data(DataReceiver),
    /// DATA content of a message over the size limit: read and thrown away.
    DataDiscard(DummyDataReceiver),
    /// A BDAT chunk of `size` bytes.
    Bdat { recv: BdatReceiver, size: usize },
    /// A refused BDAT chunk, read and thrown away; then `reply` is sent (and the session closed
    /// when `close`).
    BdatDiscard {
        recv: DummyDataReceiver,
        reply: Reply,
        close: bool,
    },
    /// After `220 2.0.0 SMTP server ready`: the driver runs the handshake; bytes are discarded.
    AwaitingTls,
    /// The session is over.
    Closed,
}

impl Phase {
    fn name(&self) -> &'static str {
        match self {
            Self::Command => "command",
            Self::Data(_) => "data",
            Self::DataDiscard(_) => "data_discard",
            Self::Bdat { .. } => "bdat",
            Self::BdatDiscard { .. } => "bdat_discard",
            Self::AwaitingTls => "awaiting_tls",
            Self::Closed => "closed",
        }
    }
}

/// One SMTP server session.
pub struct Session {
    ctx: SessionContext,
    record: SessionRecord,
    actions: VecDeque<Action>,
    /// Replies not yet handed to the driver (one `Write` per turn).
    out: Vec<u8>,
    phase: Phase,
    /// The start of a command line whose end has not arrived.
    line: Vec<u8>,
    /// Bytes of an over-long command line seen so far (0 when the line fits).
    line_overflow: usize,
    /// The first bytes pipelined after STARTTLS (the record's preview).
    discarded: Vec<u8>,
    /// Whether EHLO/HELO was accepted (since the connection, or since TLS started).
    helo: bool,
    tls_active: bool,
    txn: Option<Txn>,
    /// Per fault of the book: whether it fires in this session, decided the first time its stage
    /// is reached.
    decided: Vec<Option<bool>>,
    /// An `omit_starttls` fault fired: no STARTTLS in EHLO, the command is unrecognised.
    omit_starttls: bool,
    /// A `mask_starttls` fault fired (an inspecting firewall): the banner is asterisks and
    /// STARTTLS shows as `XXXXXXXA`.
    mask: bool,
    /// The session's virtual time: the latest `now` given, plus stalls.
    cur: OffsetDateTime,
    /// When the idle timeout fires unless input arrives.
    idle_deadline: OffsetDateTime,
    /// What [`ProtocolCore::poll_timeout`] returns: the earlier of the idle and session deadlines.
    timer: Option<OffsetDateTime>,
    /// Messages accepted so far (an input of the internal id).
    messages: u32,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("session_id", &self.record.session_id)
            .field("peer", &self.ctx.peer)
            .field("phase", &self.phase.name())
            .field("tls", &self.tls_active)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// A new session at `now`: runs the connect and banner stages, so the first action is the
    /// banner (or a fault) and [`ProtocolCore::poll_timeout`] gives the idle deadline.
    pub fn new(ctx: SessionContext, now: OffsetDateTime) -> Self {
        let session_id = format!(
            "08DE{:012X}",
            mix(ctx.seed ^ mix(ctx.index.wrapping_add(0x5E55))) & 0xFFFF_FFFF_FFFF
        );
        let record = SessionRecord {
            session_id,
            index: ctx.index,
            peer: ctx.peer,
            local: ctx.local,
            started_at: now,
            ended_at: None,
            helo: None,
            tls: None,
            tls_error: None,
            attribution: None,
            transcript: Vec::new(),
            faults_fired: Vec::new(),
            discarded_after_starttls: None,
            protocol_errors: 0,
            close_reason: CloseReason::Open,
            messages: Vec::new(),
        };
        let n = ctx.faults.faults().len();
        let idle = ctx.config.limits.idle_timeout.to_time();
        let mut s = Self {
            ctx,
            record,
            actions: VecDeque::new(),
            out: Vec::new(),
            phase: Phase::Command,
            line: Vec::new(),
            line_overflow: 0,
            discarded: Vec::new(),
            helo: false,
            tls_active: false,
            txn: None,
            decided: vec![None; n],
            omit_starttls: false,
            mask: false,
            cur: now,
            idle_deadline: now + idle,
            timer: None,
            messages: 0,
        };
        s.info(format!("connected from {} to {}", s.ctx.peer, s.ctx.local));
        s.greet();
        s.end_of_turn();
        s
    }

    /// The record so far.
    pub fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// The session id (as in the banner).
    pub fn session_id(&self) -> &str {
        &self.record.session_id
    }

    /// Reading or writing failed at `now`: the session ends.
    pub fn handle_io_error(&mut self, now: OffsetDateTime, error: &str) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        self.info(format!("I/O error: {error}"));
        self.close(CloseReason::IoError);
        self.end_of_turn();
    }

    /// The mock is shutting down: `421 4.3.2 Service not available` and close.
    pub fn handle_shutdown(&mut self, now: OffsetDateTime) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        if !matches!(self.phase, Phase::AwaitingTls) {
            self.reply(eop::service_not_available());
        }
        self.close(CloseReason::Shutdown);
        self.end_of_turn();
    }

    /// The final record (marks the session closed if it was not).
    pub fn finish(mut self, now: OffsetDateTime) -> SessionRecord {
        self.advance(now);
        if self.record.close_reason == CloseReason::Open {
            self.record.close_reason = CloseReason::ClientClosed;
        }
        self.record.ended_at = Some(self.cur);
        self.record
    }

    // ---- dispatch ----

    /// Hands one parsed command to its phase.
    fn request(&mut self, req: Request<String>) {
        match req {
            Request::Ehlo { host } => self.hello(host, true),
            Request::Helo { host } => self.hello(host, false),
            Request::StartTls => self.starttls(),
            Request::Mail { from } => self.mail(from.address, from.size),
            Request::Rcpt { to } => self.rcpt(to.address),
            Request::Data => self.data(),
            Request::Bdat {
                chunk_size,
                is_last,
            } => self.bdat(chunk_size, is_last),
            Request::Rset => {
                self.txn = None;
                self.reply(eop::resetting());
            }
            Request::Noop { .. } => self.reply(eop::ok()),
            Request::Quit => {
                self.reply(eop::closing());
                self.close(CloseReason::Quit);
            }
            other @ (Request::Lhlo { .. }
            | Request::Auth { .. }
            | Request::Vrfy { .. }
            | Request::Expn { .. }
            | Request::Help { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. }) => {
                let verb = lenient::unoffered_verb(&other);
                self.protocol_error(eop::unrecognized_verb(verb));
            }
        }
    }

    // ---- helpers of every phase ----

    fn advance(&mut self, now: OffsetDateTime) {
        if now > self.cur {
            self.cur = now;
        }
    }

    fn cfg(&self) -> &EopConfig {
        &self.ctx.config
    }

    fn session_deadline(&self) -> Option<OffsetDateTime> {
        self.cfg()
            .limits
            .session_timeout
            .map(|t| self.record.started_at + t.to_time())
    }

    fn info(&mut self, text: String) {
        self.record
            .transcript
            .push(TranscriptEntry::Info { at: self.cur, text });
    }

    fn reply(&mut self, reply: Reply) {
        reply.write_wire(&mut self.out);
        self.record.transcript.push(TranscriptEntry::Reply {
            at: self.cur,
            reply,
        });
    }

    fn flush(&mut self) {
        if !self.out.is_empty() {
            self.actions
                .push_back(Action::Write(std::mem::take(&mut self.out)));
        }
    }

    fn stall(&mut self, d: std::time::Duration) {
        self.flush();
        let until = self.cur + time::Duration::try_from(d).unwrap_or(time::Duration::MAX);
        self.actions.push_back(Action::Stall(until));
        self.cur = until;
    }

    fn close(&mut self, reason: CloseReason) {
        self.flush();
        if !self.is_closed() {
            self.actions.push_back(Action::Close);
        }
        if self.record.close_reason == CloseReason::Open {
            self.record.close_reason = reason;
        }
        self.phase = Phase::Closed;
        self.txn = None;
    }

    /// Flushes replies and sets the timer after every call; `activity` restarts the idle period
    /// (input or TLS, not a timer wake-up). No timer runs while the driver runs the handshake
    /// (it has its own handshake timeout) or once the session is closed.
    fn end_of_turn_with(&mut self, activity: bool) {
        self.flush();
        if self.is_closed() || matches!(self.phase, Phase::AwaitingTls) {
            self.timer = None;
            return;
        }
        if activity {
            self.idle_deadline = self.cur + self.cfg().limits.idle_timeout.to_time();
        }
        self.timer = Some(match self.session_deadline() {
            Some(s) if s < self.idle_deadline => s,
            _ => self.idle_deadline,
        });
    }

    fn end_of_turn(&mut self) {
        self.end_of_turn_with(true);
    }
}

impl ProtocolCore for Session {
    type Action = Action;

    /// Bytes from the client: command lines, message data, or bytes pipelined after STARTTLS.
    fn handle_input(&mut self, now: OffsetDateTime, bytes: &[u8]) {
        self.advance(now);
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = match &self.phase {
                Phase::Closed => break,
                Phase::AwaitingTls => {
                    self.discard_after_starttls(rest);
                    break;
                }
                Phase::Command => self.command_bytes(rest),
                Phase::Data(_) => self.data_bytes(rest),
                Phase::DataDiscard(_) => self.data_discard_bytes(rest),
                Phase::Bdat { .. } => self.bdat_bytes(rest),
                Phase::BdatDiscard { .. } => self.bdat_discard_bytes(rest),
            };
        }
        self.end_of_turn();
    }

    /// The client closed its side.
    fn handle_eof(&mut self, now: OffsetDateTime) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        if !matches!(self.phase, Phase::Command | Phase::AwaitingTls) {
            self.info(format!(
                "connection closed in the middle of {}",
                self.phase.name()
            ));
        }
        self.close(CloseReason::ClientClosed);
        self.end_of_turn();
    }

    /// The idle or session deadline has come: `451 4.7.0` (idle) or `421 4.4.1` (lifetime) and
    /// close; a wake-up before either deadline changes nothing.
    fn handle_timeout(&mut self, now: OffsetDateTime) {
        self.advance(now);
        if self.is_closed() || matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        if let Some(deadline) = self.session_deadline()
            && self.cur >= deadline
        {
            self.info("session lifetime exceeded".into());
            self.reply(Reply::new(421, "4.4.1 Connection timed out"));
            self.close(CloseReason::SessionTimeout);
        } else if self.cur >= self.idle_deadline {
            self.info("idle timeout".into());
            self.reply(eop::idle_timeout());
            self.close(CloseReason::IdleTimeout);
        }
        self.end_of_turn_with(false);
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The earlier of the idle deadline and the session deadline; `None` while the driver runs
    /// the TLS handshake and once the session is closed.
    fn poll_timeout(&self) -> Option<OffsetDateTime> {
        self.timer
    }

    fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }
}
