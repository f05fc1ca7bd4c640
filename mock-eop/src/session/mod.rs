//! The sans-IO server session: bytes and `now` in, [`Action`]s out. No sockets, no clock.
//!
//! A driver creates a [`Session`] per connection, drains [`Session::poll_action`] after every
//! call and executes the actions in order (write bytes, wait until a virtual time, arm the idle
//! timer, start TLS, publish a message, close). It feeds the session with
//! [`Session::handle_input`], [`Session::handle_tls_established`] (or `handle_tls_failed`),
//! [`Session::handle_timeout`] when the armed time has come, and `handle_eof` /
//! `handle_io_error` / `handle_shutdown`. [`Session::finish`] returns the [`SessionRecord`].
//!
//! Command lines are framed here (so the line-length limit holds and the record does not
//! depend on how the input was chunked) and parsed with smtp-proto's `Request::parse`; message
//! data goes through smtp-proto's `DataReceiver`, `BdatReceiver` and `DummyDataReceiver`.
//!
//! The dialogue follows exchange-hybrid.md 4.2: EOP's banner and EHLO list, `220 2.0.0 SMTP
//! server ready`, `250 2.1.0 Sender OK`, `250 2.1.5 Recipient OK`, `354 ...`,
//! `250 2.6.0 <id> [InternalId=..., Hostname=...] ... Queued mail for delivery`, `221 2.0.0 ...`,
//! with attribution at MAIL and RCPT ([`crate::attribution`]) and faults at every stage
//! ([`crate::fault`]).

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, DummyDataReceiver};
use smtp_proto::{Error as ProtoError, Request};
use time::OffsetDateTime;

use crate::attribution::{self, AttributionVerdict, SessionFacts};
use crate::config::EopConfig;
use crate::fault::{FaultAction, FaultBook, Stage, TlsAlert, mix};
use hybridlab_model::record::{
    CloseReason, Discarded, FaultFired, MessageRecord, SessionRecord, TlsFacts, TranscriptEntry,
};
use hybridlab_model::reply::{Reply, eop};

#[cfg(test)]
mod tests;

/// What the session is told about its connection.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The endpoint configuration.
    pub config: Arc<EopConfig>,
    /// The shared fault book.
    pub faults: Arc<FaultBook>,
    /// 0-based connection number (drives fault attempts, ids).
    pub index: u64,
    /// Seed for ids.
    pub seed: u64,
    /// The client's address (used for IP attribution and `Hello [ip]`).
    pub peer: SocketAddr,
    /// The mock's address.
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
    /// Call [`Session::handle_timeout`] at this time unless input arrives first (replaces any
    /// earlier timer).
    ArmTimer(OffsetDateTime),
    /// Switch to TLS (after the 220 was written): run the handshake, or the fault.
    StartTls(Option<HandshakeFault>),
    /// A message was accepted: publish it.
    Message(Box<MessageRecord>),
    /// Close the connection (after writing what came before).
    Close,
}

/// How the current message arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    Data,
    Bdat,
}

impl Transfer {
    fn as_str(self) -> &'static str {
        match self {
            Self::Data => "data",
            Self::Bdat => "bdat",
        }
    }
}

/// The mail transaction between MAIL and the end of data.
#[derive(Debug)]
struct Txn {
    mail_from: String,
    declared_size: usize,
    rcpts: Vec<String>,
    verdict: AttributionVerdict,
    cross_premises: bool,
    body: Vec<u8>,
    transfer: Option<Transfer>,
    data_started: Option<OffsetDateTime>,
}

enum Phase {
    Command,
    Data(DataReceiver),
    DataDiscard(DummyDataReceiver),
    Bdat {
        recv: BdatReceiver,
        size: usize,
    },
    BdatDiscard {
        recv: DummyDataReceiver,
        reply: Reply,
        close: bool,
    },
    AwaitingTls,
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

/// Stage fault outcome for a command.
enum StageFault {
    Proceed,
    Reply(Reply, bool),
    Drop,
}

/// The extensions EOP advertises, in its order (STARTTLS only before TLS).
const EXTENSIONS: [&str; 8] = [
    "PIPELINING",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "STARTTLS",
    "8BITMIME",
    "BINARYMIME",
    "CHUNKING",
    "SMTPUTF8",
];

/// One SMTP server session.
pub struct Session {
    ctx: SessionContext,
    record: SessionRecord,
    actions: VecDeque<Action>,
    out: Vec<u8>,
    phase: Phase,
    line: Vec<u8>,
    line_overflow: usize,
    discarded: Vec<u8>,
    helo: bool,
    tls_active: bool,
    txn: Option<Txn>,
    decided: Vec<Option<bool>>,
    omit_starttls: bool,
    mask: bool,
    cur: OffsetDateTime,
    idle_deadline: OffsetDateTime,
    armed: Option<OffsetDateTime>,
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
    /// A new session at `now`: runs the connect and banner stages, so the first actions are the
    /// banner (or a fault) and the idle timer.
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
            armed: None,
            messages: 0,
        };
        s.info(format!("connected from {} to {}", s.ctx.peer, s.ctx.local));
        s.greet();
        s.end_of_turn();
        s
    }

    /// The next thing the driver must do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The record so far.
    pub fn record(&self) -> &SessionRecord {
        &self.record
    }

    /// Whether the session has closed (no more input is processed).
    pub fn is_closed(&self) -> bool {
        matches!(self.phase, Phase::Closed)
    }

    /// The session id (as in the banner).
    pub fn session_id(&self) -> &str {
        &self.record.session_id
    }

    /// Bytes from the client.
    pub fn handle_input(&mut self, bytes: &[u8], now: OffsetDateTime) {
        self.advance(now);
        let mut rest = bytes;
        while !rest.is_empty() {
            rest = match &mut self.phase {
                Phase::Closed => break,
                Phase::AwaitingTls => {
                    self.discard_after_starttls(rest);
                    break;
                }
                Phase::Command => self.command_bytes(rest),
                Phase::Data(recv) => {
                    let mut it = rest.iter();
                    let txn = self.txn.as_mut();
                    let done = match txn {
                        Some(t) => recv.ingest(&mut it, &mut t.body),
                        None => true,
                    };
                    let left = it.as_slice();
                    let too_big = self.txn.as_ref().is_some_and(|t| {
                        t.body.len().saturating_sub(2) as u64
                            > self.ctx.config.limits.max_message_size
                    });
                    if done {
                        self.end_of_data();
                    } else if too_big && let Phase::Data(recv) = &self.phase {
                        let dummy = DummyDataReceiver::new_data(recv);
                        if let Some(t) = self.txn.as_mut() {
                            t.body = Vec::new();
                        }
                        self.phase = Phase::DataDiscard(dummy);
                    }
                    left
                }
                Phase::DataDiscard(recv) => {
                    let mut it = rest.iter();
                    let done = recv.ingest(&mut it);
                    let left = it.as_slice();
                    if done {
                        self.phase = Phase::Command;
                        self.txn = None;
                        self.info("message discarded: larger than the size limit".into());
                        self.reply(eop::message_too_large());
                    }
                    left
                }
                Phase::Bdat { recv, size } => {
                    let size = *size;
                    let mut it = rest.iter();
                    let done = match self.txn.as_mut() {
                        Some(t) => recv.ingest(&mut it, &mut t.body),
                        None => true,
                    };
                    let last = recv.is_last;
                    let left = it.as_slice();
                    if done {
                        self.bdat_chunk_done(size, last);
                    }
                    left
                }
                Phase::BdatDiscard { recv, .. } => {
                    let mut it = rest.iter();
                    let done = recv.ingest(&mut it);
                    let left = it.as_slice();
                    if done
                        && let Phase::BdatDiscard { reply, close, .. } =
                            std::mem::replace(&mut self.phase, Phase::Command)
                    {
                        self.reply(reply);
                        if close {
                            self.close(CloseReason::Fault);
                        }
                    }
                    left
                }
            };
        }
        self.end_of_turn();
    }

    /// The TLS handshake completed.
    pub fn handle_tls_established(&mut self, facts: TlsFacts, now: OffsetDateTime) {
        self.advance(now);
        if !matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        let mut note = format!(
            "TLS established: {} {}{}",
            facts.version,
            facts.cipher_suite,
            if facts.resumed { " (resumed)" } else { "" }
        );
        match &facts.client_certificate {
            Some(c) => note.push_str(&format!(
                "; client certificate {} issued by {} thumbprint {} chain {}",
                c.leaf.subject, c.leaf.issuer, c.leaf.thumbprint, c.verdict
            )),
            None => note.push_str("; no client certificate"),
        }
        self.info(note);
        self.record.tls = Some(facts);
        self.tls_active = true;
        self.phase = Phase::Command;
        self.end_of_turn();
    }

    /// The TLS handshake failed (or a handshake fault ran): the session ends.
    pub fn handle_tls_failed(&mut self, error: &str, now: OffsetDateTime) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        self.info(format!("TLS negotiation failed: {error}"));
        self.record.tls_error = Some(error.to_string());
        self.close(CloseReason::TlsFailed);
        self.end_of_turn();
    }

    /// The armed time has come.
    pub fn handle_timeout(&mut self, now: OffsetDateTime) {
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
        self.armed = None;
        self.end_of_turn_with(false);
    }

    /// The client closed its side.
    pub fn handle_eof(&mut self, now: OffsetDateTime) {
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

    /// Reading or writing failed.
    pub fn handle_io_error(&mut self, error: &str, now: OffsetDateTime) {
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

    // ---- internals ----

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

    /// Flushes replies and re-arms the idle timer after every call; `activity` restarts the idle
    /// period (input or TLS, not a timer wake-up).
    fn end_of_turn_with(&mut self, activity: bool) {
        self.flush();
        if self.is_closed() || matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        if activity {
            self.idle_deadline = self.cur + self.cfg().limits.idle_timeout.to_time();
        }
        let deadline = match self.session_deadline() {
            Some(s) if s < self.idle_deadline => s,
            _ => self.idle_deadline,
        };
        if self.armed != Some(deadline) {
            self.armed = Some(deadline);
            self.actions.push_back(Action::ArmTimer(deadline));
        }
    }

    fn end_of_turn(&mut self) {
        self.end_of_turn_with(true);
    }

    fn fault_at(&mut self, stage: Stage) -> Option<FaultAction> {
        let book = Arc::clone(&self.ctx.faults);
        if !book.has_stage(stage) {
            return None;
        }
        for (i, f) in book.faults().iter().enumerate() {
            if f.stage != stage {
                continue;
            }
            let armed = *self.decided[i].get_or_insert_with(|| book.decide(i, self.ctx.index));
            if armed {
                self.record.faults_fired.push(FaultFired {
                    at: self.cur,
                    index: i,
                    name: f.name.clone(),
                    stage: stage.as_str().to_string(),
                    action: f.action.describe(),
                });
                self.info(format!(
                    "fault {i} at {}: {}",
                    stage.as_str(),
                    f.action.describe()
                ));
                return Some(f.action.clone());
            }
        }
        None
    }

    fn stage_fault(&mut self, stage: Stage) -> StageFault {
        match self.fault_at(stage) {
            None => StageFault::Proceed,
            Some(FaultAction::Stall(d)) => {
                self.stall(d.0);
                StageFault::Proceed
            }
            Some(FaultAction::Reply(r)) => {
                let close = r.0.code == 421;
                StageFault::Reply(r.0, close)
            }
            Some(FaultAction::Throttle(t)) => StageFault::Reply(
                eop::throttled(&self.ctx.peer.ip().to_string(), &t.tag),
                false,
            ),
            Some(FaultAction::Close421) => StageFault::Reply(eop::service_not_available(), true),
            Some(FaultAction::Drop) => StageFault::Drop,
            Some(FaultAction::OmitStarttls) => {
                self.omit_starttls = true;
                StageFault::Proceed
            }
            Some(FaultAction::MaskStarttls) => {
                self.mask = true;
                StageFault::Proceed
            }
            // Only valid at STARTTLS / TLS handshake, where they are handled directly.
            Some(
                FaultAction::CloseAfterStarttls
                | FaultAction::TlsGarbage(_)
                | FaultAction::TlsAlert(_),
            ) => StageFault::Proceed,
        }
    }

    /// Applies a command-stage fault; returns `true` when the command must not be processed.
    fn command_fault(&mut self, stage: Stage) -> bool {
        match self.stage_fault(stage) {
            StageFault::Proceed => false,
            StageFault::Reply(r, close) => {
                self.reply(r);
                if close {
                    self.close(CloseReason::Fault);
                }
                true
            }
            StageFault::Drop => {
                self.close(CloseReason::Fault);
                true
            }
        }
    }

    fn greet(&mut self) {
        for stage in [Stage::Connect, Stage::Banner] {
            match self.stage_fault(stage) {
                StageFault::Proceed => {}
                StageFault::Reply(r, close) => {
                    let positive = r.code == 220;
                    self.reply(r);
                    if close || !positive {
                        self.close(CloseReason::Fault);
                    }
                    return;
                }
                StageFault::Drop => {
                    self.close(CloseReason::Fault);
                    return;
                }
            }
        }
        let date = self
            .cur
            .to_offset(time::UtcOffset::UTC)
            .format(BANNER_DATE)
            .unwrap_or_default();
        let mut text = format!(
            "{} Microsoft ESMTP MAIL Service ready at {date} +0000",
            self.cfg().endpoint.hostname
        );
        if self.cfg().endpoint.banner_session_id {
            text.push_str(&format!(" [{}]", self.record.session_id));
        }
        if self.mask {
            text = "*".repeat(text.chars().count());
        }
        self.reply(Reply::new(220, text));
    }

    fn discard_after_starttls(&mut self, bytes: &[u8]) {
        let d = self
            .record
            .discarded_after_starttls
            .get_or_insert_with(Discarded::default);
        d.bytes += bytes.len();
        let room = 512usize.saturating_sub(self.discarded.len());
        if room > 0 {
            let take = &bytes[..bytes.len().min(room)];
            self.discarded.extend_from_slice(take);
            d.preview = String::from_utf8_lossy(&self.discarded).into_owned();
        }
    }

    /// Frames command lines out of `bytes`; returns what is left for the next phase.
    fn command_bytes<'b>(&mut self, bytes: &'b [u8]) -> &'b [u8] {
        let max = self.cfg().limits.max_line_length;
        match memchr(bytes) {
            Some(pos) => {
                let (head, rest) = bytes.split_at(pos + 1);
                if self.line_overflow > 0 {
                    let total = self.line_overflow + head.len();
                    self.line_overflow = 0;
                    self.line.clear();
                    self.info(format!("command line too long: {total} bytes"));
                    self.protocol_error(eop::line_too_long());
                    return rest;
                }
                if self.line.len() + head.len() > max {
                    let total = self.line.len() + head.len();
                    self.line.clear();
                    self.info(format!("command line too long: {total} bytes"));
                    self.protocol_error(eop::line_too_long());
                    return rest;
                }
                if self.line.is_empty() {
                    self.command_line(head);
                } else {
                    let mut line = std::mem::take(&mut self.line);
                    line.extend_from_slice(head);
                    self.command_line(&line);
                    line.clear();
                    if self.line.is_empty() {
                        self.line = line;
                    }
                }
                rest
            }
            None => {
                if self.line_overflow > 0 {
                    self.line_overflow += bytes.len();
                } else if self.line.len() + bytes.len() > max {
                    self.line_overflow = self.line.len() + bytes.len();
                    self.line.clear();
                } else {
                    self.line.extend_from_slice(bytes);
                }
                &[]
            }
        }
    }

    fn protocol_error(&mut self, reply: Reply) {
        self.record.protocol_errors += 1;
        if self.record.protocol_errors > self.cfg().limits.max_protocol_errors {
            self.reply(eop::too_many_errors());
            self.close(CloseReason::TooManyErrors);
        } else {
            self.reply(reply);
        }
    }

    fn command_line(&mut self, line: &[u8]) {
        let shown = String::from_utf8_lossy(line)
            .trim_end_matches(['\r', '\n'])
            .to_string();
        self.record.transcript.push(TranscriptEntry::Command {
            at: self.cur,
            line: shown,
        });
        let parsed = Request::parse(&mut line.iter()).map(Request::into_owned);
        match parsed {
            Ok(req) => self.request(req),
            Err(e) => {
                let reply = match e {
                    ProtoError::UnknownCommand | ProtoError::InvalidResponse { .. } => {
                        eop::unrecognized_command()
                    }
                    ProtoError::InvalidSenderAddress => Reply::new(501, "5.1.7 Invalid address"),
                    ProtoError::InvalidRecipientAddress => Reply::new(501, "5.1.3 Invalid address"),
                    ProtoError::ResponseTooLong => eop::line_too_long(),
                    ProtoError::SyntaxError { .. }
                    | ProtoError::InvalidParameter { .. }
                    | ProtoError::UnsupportedParameter { .. }
                    | ProtoError::NeedsMoreData { .. } => eop::invalid_arguments(),
                };
                self.protocol_error(reply);
            }
        }
    }

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
            Request::Lhlo { .. }
            | Request::Auth { .. }
            | Request::Vrfy { .. }
            | Request::Expn { .. }
            | Request::Help { .. }
            | Request::Etrn { .. }
            | Request::Atrn { .. }
            | Request::Burl { .. } => self.protocol_error(eop::unrecognized_command()),
        }
    }

    fn hello(&mut self, host: String, extended: bool) {
        let stage = if self.tls_active {
            Stage::PostTlsEhlo
        } else {
            Stage::Ehlo
        };
        if self.command_fault(stage) {
            return;
        }
        self.txn = None;
        self.helo = true;
        self.record.helo = Some(host);
        let ip = self.ctx.peer.ip();
        let first = format!("{} Hello [{ip}]", self.cfg().endpoint.hostname);
        if !extended {
            self.reply(Reply::new(250, first));
            return;
        }
        let mut lines = vec![
            first,
            format!("SIZE {}", self.cfg().limits.max_message_size),
        ];
        let offer_tls = self.cfg().tls.starttls && !self.tls_active && !self.omit_starttls;
        for ext in EXTENSIONS {
            if ext == "STARTTLS" {
                if !offer_tls {
                    continue;
                }
                if self.mask {
                    lines.push("XXXXXXXA".into());
                    continue;
                }
            }
            lines.push(ext.to_string());
        }
        self.reply(Reply::multi(250, lines));
    }

    fn starttls(&mut self) {
        if !self.cfg().tls.starttls || self.omit_starttls || self.mask {
            if self.mask {
                self.info("STARTTLS arrives masked as XXXXXXXX".into());
            }
            self.protocol_error(eop::unrecognized_command());
            return;
        }
        if self.tls_active {
            self.protocol_error(eop::starttls_twice());
            return;
        }
        if !self.helo {
            self.protocol_error(eop::send_hello_first());
            return;
        }
        let mut handshake_fault = None;
        match self.fault_at(Stage::Starttls) {
            None => {}
            Some(FaultAction::Stall(d)) => self.stall(d.0),
            Some(FaultAction::Reply(r)) => {
                let close = r.0.code == 421;
                self.reply(r.0);
                if close {
                    self.close(CloseReason::Fault);
                }
                return;
            }
            Some(FaultAction::Throttle(t)) => {
                let ip = self.ctx.peer.ip().to_string();
                self.reply(eop::throttled(&ip, &t.tag));
                return;
            }
            Some(FaultAction::Close421) => {
                self.reply(eop::service_not_available());
                self.close(CloseReason::Fault);
                return;
            }
            Some(FaultAction::Drop) => {
                self.close(CloseReason::Fault);
                return;
            }
            Some(FaultAction::CloseAfterStarttls) => {
                self.reply(eop::starttls_ready());
                self.close(CloseReason::Fault);
                return;
            }
            Some(FaultAction::TlsGarbage(g)) => {
                handshake_fault = Some(HandshakeFault::Garbage(g.into_bytes()))
            }
            Some(FaultAction::TlsAlert(a)) => handshake_fault = Some(HandshakeFault::Alert(a)),
            Some(FaultAction::OmitStarttls | FaultAction::MaskStarttls) => {}
        }
        self.reply(eop::starttls_ready());
        if handshake_fault.is_none() {
            match self.fault_at(Stage::TlsHandshake) {
                Some(FaultAction::Stall(d)) => self.stall(d.0),
                Some(FaultAction::Drop) => handshake_fault = Some(HandshakeFault::Drop),
                Some(FaultAction::TlsGarbage(g)) => {
                    handshake_fault = Some(HandshakeFault::Garbage(g.into_bytes()))
                }
                Some(FaultAction::TlsAlert(a)) => handshake_fault = Some(HandshakeFault::Alert(a)),
                _ => {}
            }
        }
        // RFC 3207: forget everything learnt before TLS.
        self.helo = false;
        self.txn = None;
        self.flush();
        self.actions.push_back(Action::StartTls(handshake_fault));
        self.phase = Phase::AwaitingTls;
    }

    fn facts(&self) -> SessionFacts<'_> {
        SessionFacts {
            peer: self.ctx.peer.ip(),
            tls: self.tls_active,
            client_certificate: self
                .record
                .tls
                .as_ref()
                .and_then(|t| t.client_certificate.as_ref()),
        }
    }

    fn mail(&mut self, from: String, size: usize) {
        if !self.helo {
            self.protocol_error(eop::send_hello_first());
            return;
        }
        if self.txn.is_some() {
            self.protocol_error(Reply::new(503, "5.5.2 Sender already specified"));
            return;
        }
        if size as u64 > self.cfg().limits.max_message_size {
            self.reply(eop::message_too_large());
            return;
        }
        if self.command_fault(Stage::Mail) {
            return;
        }
        let decision = attribution::evaluate_mail(self.cfg(), &self.facts(), &from);
        self.info(format!("attribution at MAIL: {}", decision.verdict));
        self.record.attribution = Some(decision.verdict.clone());
        if let Some(r) = decision.reject {
            self.reply(r);
            return;
        }
        self.txn = Some(Txn {
            mail_from: from,
            declared_size: size,
            rcpts: Vec::new(),
            verdict: decision.verdict,
            cross_premises: decision.cross_premises,
            body: Vec::new(),
            transfer: None,
            data_started: None,
        });
        self.reply(eop::sender_ok());
    }

    fn rcpt(&mut self, to: String) {
        let Some(txn) = &self.txn else {
            self.protocol_error(Reply::new(503, "5.5.2 Need mail command"));
            return;
        };
        if txn.transfer.is_some() {
            self.protocol_error(eop::bad_sequence());
            return;
        }
        if txn.rcpts.len() >= self.cfg().limits.max_recipients {
            self.reply(Reply::new(452, "4.5.3 Too many recipients"));
            return;
        }
        let sender = txn.mail_from.clone();
        if self.command_fault(Stage::Rcpt) {
            return;
        }
        let decision = attribution::evaluate_rcpt(self.cfg(), &self.facts(), &sender, &to);
        self.info(format!("attribution at RCPT {to}: {}", decision.verdict));
        self.record.attribution = Some(decision.verdict.clone());
        if let Some(r) = decision.reject {
            self.reply(r);
            return;
        }
        if let Some(t) = self.txn.as_mut() {
            t.rcpts.push(to);
            t.verdict = decision.verdict;
            t.cross_premises = decision.cross_premises;
        }
        self.reply(eop::recipient_ok());
    }

    fn data(&mut self) {
        match &self.txn {
            None => {
                self.protocol_error(Reply::new(503, "5.5.2 Need mail command"));
                return;
            }
            Some(t) if t.rcpts.is_empty() => {
                self.protocol_error(Reply::new(503, "5.5.2 Need rcpt command"));
                return;
            }
            Some(t) if t.transfer.is_some() => {
                self.protocol_error(eop::bad_sequence());
                return;
            }
            Some(_) => {}
        }
        if self.command_fault(Stage::Data) {
            return;
        }
        let now = self.cur;
        let mut recv = DataReceiver::new();
        if let Some(t) = self.txn.as_mut() {
            t.transfer = Some(Transfer::Data);
            t.data_started = Some(now);
            // Prime the receiver with the CRLF that precedes the data (so a message that starts
            // with "." or is empty is read right); removed when the message is complete.
            t.body.clear();
            t.body.reserve(t.declared_size.clamp(4096, 1 << 20) + 8);
            recv.ingest(&mut b"\r\n".iter(), &mut t.body);
        }
        self.reply(eop::start_mail_input());
        self.phase = Phase::Data(recv);
    }

    fn bdat(&mut self, size: usize, last: bool) {
        let state = self
            .txn
            .as_ref()
            .map(|t| (t.rcpts.is_empty(), t.transfer, t.body.len()));
        let body_len = match state {
            None => {
                let r = Reply::new(503, "5.5.2 Need mail command");
                return self.bdat_refuse(size, r, true, false);
            }
            Some((true, _, _)) => {
                let r = Reply::new(503, "5.5.2 Need rcpt command");
                return self.bdat_refuse(size, r, true, false);
            }
            Some((false, Some(Transfer::Data), _)) => {
                return self.bdat_refuse(size, eop::bad_sequence(), true, false);
            }
            Some((false, first, len)) => {
                if first.is_none() {
                    match self.stage_fault(Stage::Data) {
                        StageFault::Proceed => {}
                        StageFault::Reply(r, close) => {
                            return self.bdat_refuse(size, r, false, close);
                        }
                        StageFault::Drop => {
                            self.close(CloseReason::Fault);
                            return;
                        }
                    }
                }
                len
            }
        };
        if (body_len + size) as u64 > self.cfg().limits.max_message_size {
            self.txn = None;
            self.info("message discarded: larger than the size limit".into());
            return self.bdat_refuse(size, eop::message_too_large(), false, false);
        }
        let now = self.cur;
        if let Some(t) = self.txn.as_mut()
            && t.transfer.is_none()
        {
            t.transfer = Some(Transfer::Bdat);
            t.data_started = Some(now);
            t.body.reserve(size.min(1 << 20));
        }
        if size == 0 {
            self.bdat_chunk_done(0, last);
        } else {
            self.phase = Phase::Bdat {
                recv: BdatReceiver::new(size, last),
                size,
            };
        }
    }

    /// Refuses a BDAT: its chunk is read and thrown away, then `reply` is sent.
    fn bdat_refuse(&mut self, size: usize, reply: Reply, counts: bool, close: bool) {
        if counts {
            self.record.protocol_errors += 1;
            if self.record.protocol_errors > self.cfg().limits.max_protocol_errors {
                self.reply(eop::too_many_errors());
                self.close(CloseReason::TooManyErrors);
                return;
            }
        }
        if size == 0 {
            self.reply(reply);
            if close {
                self.close(CloseReason::Fault);
            }
        } else {
            self.phase = Phase::BdatDiscard {
                recv: DummyDataReceiver::new_bdat(size),
                reply,
                close,
            };
        }
    }

    fn bdat_chunk_done(&mut self, size: usize, last: bool) {
        self.phase = Phase::Command;
        if last {
            self.finish_message(0);
        } else {
            let reply = match &self.cfg().replies.bdat_chunk {
                Some(t) => t.render(
                    &self.cfg().endpoint.reject_host,
                    &self.ctx.peer.ip().to_string(),
                    size,
                ),
                None => Reply::new(250, format!("2.6.0 CHUNK received OK, {size} octets")),
            };
            self.reply(reply);
        }
    }

    fn end_of_data(&mut self) {
        self.phase = Phase::Command;
        self.finish_message(2);
    }

    /// The message is complete; `skip` leading bytes of the body are the DATA primer.
    fn finish_message(&mut self, skip: usize) {
        let Some(mut txn) = self.txn.take() else {
            return;
        };
        let raw: Arc<[u8]> = Arc::from(txn.body.get(skip..).unwrap_or_default());
        txn.body = Vec::new();
        let size = raw.len();
        self.info(format!("message data: {size} bytes"));
        let mut reply_override = None;
        match self.stage_fault(Stage::EndOfData) {
            StageFault::Proceed => {}
            StageFault::Reply(r, close) => {
                if r.code == 250 {
                    reply_override = Some(r);
                } else {
                    self.reply(r);
                    if close {
                        self.close(CloseReason::Fault);
                    }
                    return;
                }
            }
            StageFault::Drop => {
                self.close(CloseReason::Fault);
                return;
            }
        }
        self.messages += 1;
        let internal_id = 10_000_000_000_000
            + mix(self.ctx.seed ^ (self.ctx.index << 20) ^ u64::from(self.messages))
                % 90_000_000_000_000;
        let message_id = header_message_id(&raw).unwrap_or_else(|| {
            format!(
                "<{:016x}.{}@{}>",
                internal_id,
                self.messages,
                self.cfg().endpoint.backend_host
            )
        });
        let secs = txn
            .data_started
            .map(|s| (self.cur - s).as_seconds_f64())
            .unwrap_or(0.0);
        let reply = reply_override.unwrap_or_else(|| {
            eop::queued(
                &message_id,
                internal_id,
                &self.cfg().endpoint.backend_host,
                size,
                secs,
            )
        });
        let message = MessageRecord {
            internal_id,
            message_id,
            session_id: self.record.session_id.clone(),
            received_at: self.cur,
            mail_from: txn.mail_from,
            rcpt_to: txn.rcpts,
            size,
            transfer: txn
                .transfer
                .map(Transfer::as_str)
                .unwrap_or("data")
                .to_string(),
            tls: self.tls_active,
            attribution: txn.verdict,
            cross_premises_honoured: txn.cross_premises,
            reply: reply.clone(),
            raw,
            parsed: None,
        };
        self.reply(reply);
        self.flush();
        self.record.messages.push(message.clone());
        self.actions.push_back(Action::Message(Box::new(message)));
    }
}

/// `Thu, 2 May 2019 06:32:13` (the `+0000` is appended).
const BANNER_DATE: &[time::format_description::FormatItem<'static>] = time::macros::format_description!(
    "[weekday repr:short], [day padding:none] [month repr:short] [year] [hour]:[minute]:[second]"
);

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

/// The Message-ID header's value (angle brackets kept), found by a bounded scan of the header
/// section: no MIME parsing on the reply path.
fn header_message_id(raw: &[u8]) -> Option<String> {
    let limit = raw.len().min(64 * 1024);
    let mut start = 0;
    while start < limit {
        let end = raw[start..limit]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| start + p)
            .unwrap_or(limit);
        let line = &raw[start..end];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        if line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            let v = String::from_utf8_lossy(&line[11..]).trim().to_string();
            if v.is_empty() {
                return None;
            }
            return Some(if v.starts_with('<') {
                v
            } else {
                format!("<{v}>")
            });
        }
        start = end + 1;
    }
    None
}
