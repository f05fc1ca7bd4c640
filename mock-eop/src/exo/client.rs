//! The sans-IO SMTP client core of Exchange Online's delivery through an outbound connector:
//! one session, one message. Bytes, end of input, timer expiries, the connect result and the TLS
//! result go in with the current (virtual) time; [`Action`]s come out; the attempt's record
//! ([`DeliveryAttempt`]) comes out of [`ExoClient::finish`]. It never reads a clock, touches a
//! socket or runs a handshake itself (the driver in [`super::driver`] does).
//!
//! The dialogue: banner; `EHLO <EXO name>`; STARTTLS when offered (required unless TlsSettings
//! is opportunistic: no STARTTLS then defers with `451 5.7.3 STARTTLS is required to send mail`);
//! after the handshake the certificate is judged per TlsSettings (DomainValidation: the name
//! first, then the chain; CertificateValidation: the chain; EncryptionOnly: nothing) and a
//! refused certificate ends the session without QUIT; EHLO again; `MAIL FROM:<a> [SIZE=n]
//! [XOORG=<organisation>]`; RCPT for each recipient; `BDAT <n> LAST` when CHUNKING is offered,
//! else DATA; QUIT. One command at a time (no pipelining).
//!
//! Outcome: `Delivered` on a 2xx for the message; `Failed` on a 5xx for MAIL, all RCPTs or the
//! message; otherwise `Deferred` with Exchange Online's LED (see [`super::led`]).

use std::collections::VecDeque;
use std::net::SocketAddr;

use hybridlab_model::core::ProtocolCore;
use hybridlab_model::delivery::{
    AttemptOutcome, AttemptTls, CertificateFailureForm, DeliveryAttempt, Direction, TranscriptLine,
};
use hybridlab_model::exo::OutboundTlsSettings;
use hybridlab_model::reply::Reply;
use hybridlab_model::timespan::TimeSpan;
use hybridlab_model::x509::names_match;
use time::OffsetDateTime;

use super::led::{self, CertificateProblem, Failure, LedContext, TlsFailure};
use super::message::{ExoMessage, dot_stuff};
use super::reply::{Capabilities, ReplyReader};

/// What one session needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionParams {
    /// The outbound connector's name.
    pub connector: String,
    /// The connector's TlsSettings.
    pub tls_settings: OutboundTlsSettings,
    /// The name the certificate must carry under DomainValidation (TlsDomain, else the host).
    pub expected_name: String,
    /// The host name connected to (`LastAttemptedServerName`).
    pub target_host: String,
    /// The address and port connected to.
    pub target: SocketAddr,
    /// The EHLO name (`NAM12-DM6-obe.outbound.protection.outlook.com`).
    pub ehlo_name: String,
    /// The organisation named in `XOORG=` (the tenant's initial domain).
    pub organization: String,
    /// CloudServicesMailEnabled: add the cross-premises headers.
    pub cross_premises: bool,
    /// The Exchange Online server stamped as the headers' AuthSource.
    pub auth_source: String,
    /// The session id (16 hex digits).
    pub session_id: String,
    /// The service host of the LED tag.
    pub service_host: String,
    /// How long to wait for a reply or a handshake.
    pub reply_timeout: TimeSpan,
    /// Which code certificate failures get.
    pub certificate_failure: CertificateFailureForm,
    /// The attempt's number (1 for the first).
    pub attempt: u32,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Run a TLS client handshake on the connection (SNI `server_name`) and report the result
    /// with [`ExoClient::handle_tls`].
    StartTls {
        /// The host name connected to.
        server_name: String,
    },
    /// Close the connection.
    Close,
}

/// Why the TCP connection could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectFailure {
    /// Refused (RST): Winsock 10061.
    Refused,
    /// No answer within the connect timeout: Winsock 10060.
    TimedOut,
    /// Another socket error, with its Winsock code (10051 network unreachable, 10065 host
    /// unreachable...).
    Other(u32),
}

/// The result of the handshake the driver ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsOutcome {
    /// The handshake completed; the facts include the chain check's result.
    Established(Box<AttemptTls>),
    /// The handshake failed.
    Failed(TlsFailure),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Smtp,
    Handshaking,
    Closing,
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Banner,
    Ehlo,
    StartTls,
    Mail,
    Rcpt(usize),
    Data,
    Final,
    Quit,
}

/// How a failed session ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Quit,
    Drop,
}

/// The client core (see the module documentation).
#[derive(Debug)]
pub struct ExoClient {
    params: SessionParams,
    message: ExoMessage,
    wire: Vec<u8>,
    started: OffsetDateTime,
    last_activity: OffsetDateTime,
    transcript: Vec<TranscriptLine>,
    actions: VecDeque<Action>,
    reader: ReplyReader,
    phase: Phase,
    step: Option<Step>,
    tls_active: bool,
    tls: Option<AttemptTls>,
    caps: Capabilities,
    rcpt_replies: Vec<Reply>,
    source: Option<SocketAddr>,
    outcome: Option<AttemptOutcome>,
}

impl ExoClient {
    /// A session for `message` starting at `now` (before the connect).
    pub fn new(params: SessionParams, message: ExoMessage, now: OffsetDateTime) -> Self {
        let wire = message.wire(params.cross_premises, &params.auth_source);
        let mut c = Self {
            params,
            message,
            wire,
            started: now,
            last_activity: now,
            transcript: Vec::new(),
            actions: VecDeque::new(),
            reader: ReplyReader::default(),
            phase: Phase::Connecting,
            step: None,
            tls_active: false,
            tls: None,
            caps: Capabilities::default(),
            rcpt_replies: Vec::new(),
            source: None,
            outcome: None,
        };
        let note = format!("attempting to connect to {}", c.params.target);
        c.note(now, note);
        c
    }

    /// The session's parameters.
    pub fn params(&self) -> &SessionParams {
        &self.params
    }

    /// The message bytes as sent (headers included).
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    fn note(&mut self, at: OffsetDateTime, text: String) {
        self.line(at, Direction::Info, text);
    }

    fn line(&mut self, at: OffsetDateTime, direction: Direction, text: String) {
        self.transcript.push(TranscriptLine {
            at,
            direction,
            text,
        });
    }

    /// The TCP connection is up; `local` is the sender's address.
    pub fn handle_connected(&mut self, now: OffsetDateTime, local: SocketAddr) {
        if self.phase != Phase::Connecting {
            return;
        }
        self.source = Some(local);
        self.last_activity = now;
        self.phase = Phase::Smtp;
        self.step = Some(Step::Banner);
        self.note(now, format!("connected from {local}"));
    }

    /// The TCP connection could not be made.
    pub fn handle_connect_failed(&mut self, now: OffsetDateTime, failure: ConnectFailure) {
        if self.phase != Phase::Connecting {
            return;
        }
        let f = match failure {
            ConnectFailure::Refused => Failure::ConnectRefused,
            ConnectFailure::TimedOut => Failure::ConnectTimedOut,
            ConnectFailure::Other(code) => Failure::ConnectFailed(code),
        };
        self.note(now, format!("connect failed: {failure:?}"));
        self.fail(now, &f, End::Drop);
    }

    /// The handshake's result.
    pub fn handle_tls(&mut self, now: OffsetDateTime, outcome: TlsOutcome) {
        if self.phase != Phase::Handshaking {
            return;
        }
        self.last_activity = now;
        let facts = match outcome {
            TlsOutcome::Failed(f) => {
                self.note(now, format!("TLS negotiation failed: {f:?}"));
                self.fail(now, &Failure::Tls(f), End::Drop);
                return;
            }
            TlsOutcome::Established(facts) => *facts,
        };
        self.note(
            now,
            format!("TLS {} {} established", facts.version, facts.cipher_suite),
        );
        if let Some(c) = &facts.presented {
            let text = format!(
                "remote certificate {} issued by {} thumbprint {} chain {:?}",
                c.subject, c.issuer, c.thumbprint, facts.chain_status
            );
            self.note(now, text);
        }
        let problem = self.judge(&facts);
        self.tls = Some(facts);
        if let Some(problem) = problem {
            let (subject, thumbprint) = self
                .tls
                .as_ref()
                .and_then(|t| t.presented.as_ref())
                .map(|c| (c.subject.clone(), c.thumbprint.clone()))
                .unwrap_or_default();
            let f = Failure::Certificate {
                problem,
                expected: self.params.expected_name.clone(),
                subject,
                thumbprint,
            };
            self.fail(now, &f, End::Drop);
            return;
        }
        self.phase = Phase::Smtp;
        self.tls_active = true;
        self.send_ehlo(now);
    }

    /// The certificate judged per TlsSettings: under DomainValidation the name first (a
    /// self-signed certificate with the wrong name is reported as SubjectMismatch in public
    /// cases), then the chain.
    fn judge(&self, facts: &AttemptTls) -> Option<CertificateProblem> {
        let s = self.params.tls_settings;
        if s.validates_name() {
            let ok = facts
                .presented
                .as_ref()
                .is_some_and(|c| names_match(&self.params.expected_name, c.names()));
            if !ok {
                return Some(CertificateProblem::SubjectMismatch);
            }
        }
        if s.validates_chain()
            && facts.chain_status != hybridlab_model::delivery::ChainStatus::Valid
        {
            return Some(CertificateProblem::Chain(facts.chain_status.clone()));
        }
        None
    }

    fn send(&mut self, now: OffsetDateTime, command: String, step: Step) {
        let clean: String = command
            .chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect();
        self.line(now, Direction::Sent, clean.clone());
        let mut bytes = clean.into_bytes();
        bytes.extend_from_slice(b"\r\n");
        self.actions.push_back(Action::Send(bytes));
        self.step = Some(step);
    }

    fn send_ehlo(&mut self, now: OffsetDateTime) {
        let cmd = format!("EHLO {}", self.params.ehlo_name);
        self.send(now, cmd, Step::Ehlo);
    }

    /// Records the outcome (the first one wins) and ends the session.
    fn fail(&mut self, now: OffsetDateTime, failure: &Failure, end: End) {
        if self.outcome.is_none() {
            let ctx = LedContext {
                target_host: &self.params.target_host,
                target: Some(self.params.target),
                service_host: &self.params.service_host,
                session_id: &self.params.session_id,
                now,
                form: self.params.certificate_failure,
            };
            let led = led::deferral(failure, &ctx);
            self.outcome = Some(AttemptOutcome::Deferred { led });
        }
        self.end(now, end);
    }

    fn fail_permanently(&mut self, now: OffsetDateTime, reply: &Reply) {
        if self.outcome.is_none() {
            self.outcome = Some(AttemptOutcome::Failed {
                led: led::permanent(reply),
            });
        }
        self.end(now, End::Quit);
    }

    fn end(&mut self, now: OffsetDateTime, end: End) {
        match (end, self.phase) {
            (End::Quit, Phase::Smtp) => {
                self.send(now, "QUIT".into(), Step::Quit);
                self.phase = Phase::Closing;
            }
            (_, Phase::Done) => {}
            _ => self.close(now),
        }
    }

    fn close(&mut self, now: OffsetDateTime) {
        if self.phase == Phase::Done {
            return;
        }
        let connected = self.phase != Phase::Connecting;
        self.phase = Phase::Done;
        self.step = None;
        self.last_activity = now;
        if connected {
            self.note(now, "disconnected".into());
            self.actions.push_back(Action::Close);
        }
    }

    fn on_reply(&mut self, now: OffsetDateTime, reply: Reply) {
        self.line(now, Direction::Received, reply.exchange_log_text());
        let Some(step) = self.step else {
            // unsolicited: a 421 means the server is closing
            if reply.code == 421 {
                self.fail(now, &Failure::Reply(reply), End::Drop);
            }
            return;
        };
        if reply.code == 421 && step != Step::Quit {
            self.fail(now, &Failure::Reply(reply), End::Drop);
            return;
        }
        match step {
            Step::Banner if reply.code == 220 => self.send_ehlo(now),
            Step::Ehlo if reply.is_positive() => self.after_ehlo(now, &reply),
            Step::Banner | Step::Ehlo => self.fail(now, &Failure::Reply(reply), End::Quit),
            Step::StartTls => self.after_starttls(now, reply),
            Step::Mail => self.after_mail(now, &reply),
            Step::Rcpt(i) => self.after_rcpt(now, i, reply),
            Step::Data if reply.code == 354 => {
                self.note(now, format!("{} bytes of message content", self.wire.len()));
                self.actions.push_back(Action::Send(dot_stuff(&self.wire)));
                self.step = Some(Step::Final);
            }
            Step::Data | Step::Final => self.after_final(now, reply),
            Step::Quit => self.close(now),
        }
    }

    fn after_ehlo(&mut self, now: OffsetDateTime, reply: &Reply) {
        self.caps = Capabilities::from_ehlo(reply);
        if !self.tls_active {
            if self.caps.starttls {
                self.send(now, "STARTTLS".into(), Step::StartTls);
                return;
            }
            if self.params.tls_settings.requires_tls() {
                self.fail(now, &Failure::StartTlsRequired, End::Quit);
                return;
            }
        }
        self.send_mail(now);
    }

    fn after_starttls(&mut self, now: OffsetDateTime, reply: Reply) {
        if reply.code == 220 {
            self.phase = Phase::Handshaking;
            self.step = None;
            self.reader.reset();
            self.actions.push_back(Action::StartTls {
                server_name: self.params.target_host.clone(),
            });
        } else if self.params.tls_settings.requires_tls() {
            self.fail(now, &Failure::Reply(reply), End::Quit);
        } else {
            self.send_mail(now);
        }
    }

    fn send_mail(&mut self, now: OffsetDateTime) {
        let mut cmd = format!("MAIL FROM:<{}>", self.message.from);
        if self.caps.size.is_some() {
            cmd.push_str(&format!(" SIZE={}", self.wire.len()));
        }
        if self.caps.xoorg {
            cmd.push_str(&format!(" XOORG={}", self.params.organization));
        }
        self.send(now, cmd, Step::Mail);
    }

    fn after_mail(&mut self, now: OffsetDateTime, reply: &Reply) {
        if reply.is_positive() {
            self.send_rcpt(now, 0);
        } else {
            self.transaction_failed(now, reply);
        }
    }

    fn send_rcpt(&mut self, now: OffsetDateTime, i: usize) {
        match self.message.to.get(i) {
            Some(r) => {
                let cmd = format!("RCPT TO:<{r}>");
                self.send(now, cmd, Step::Rcpt(i));
            }
            None => self.fail_permanently(now, &Reply::new(550, "5.1.0 No recipients")),
        }
    }

    fn after_rcpt(&mut self, now: OffsetDateTime, i: usize, reply: Reply) {
        self.rcpt_replies.push(reply);
        if i + 1 < self.message.to.len() {
            self.send_rcpt(now, i + 1);
            return;
        }
        if self.rcpt_replies.iter().any(Reply::is_positive) {
            self.send_content(now);
            return;
        }
        let first = self
            .rcpt_replies
            .iter()
            .find(|r| r.is_transient())
            .or_else(|| self.rcpt_replies.first())
            .cloned()
            .unwrap_or_else(|| Reply::new(550, "5.1.0 No recipients"));
        self.transaction_failed(now, &first);
    }

    fn send_content(&mut self, now: OffsetDateTime) {
        if self.caps.chunking {
            let cmd = format!("BDAT {} LAST", self.wire.len());
            self.line(now, Direction::Sent, cmd.clone());
            self.note(now, format!("{} bytes of message content", self.wire.len()));
            let mut bytes = cmd.into_bytes();
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(&self.wire);
            self.actions.push_back(Action::Send(bytes));
            self.step = Some(Step::Final);
        } else {
            self.send(now, "DATA".into(), Step::Data);
        }
    }

    fn after_final(&mut self, now: OffsetDateTime, reply: Reply) {
        if reply.is_positive() {
            if self.outcome.is_none() {
                self.outcome = Some(AttemptOutcome::Delivered { reply });
            }
            self.end(now, End::Quit);
        } else {
            self.transaction_failed(now, &reply);
        }
    }

    /// A reply refusing the transaction: 5xx fails the message, anything else defers it.
    fn transaction_failed(&mut self, now: OffsetDateTime, reply: &Reply) {
        if reply.is_permanent() {
            self.fail_permanently(now, reply);
        } else {
            self.fail(now, &Failure::Reply(reply.clone()), End::Quit);
        }
    }

    /// Ends the core and hands back the attempt's record. A session that ended without an
    /// outcome (the driver stopped early) counts as closed abruptly.
    pub fn finish(mut self) -> DeliveryAttempt {
        let ended = self
            .transcript
            .last()
            .map(|l| l.at)
            .unwrap_or(self.started)
            .max(self.last_activity);
        if self.outcome.is_none() {
            self.fail(ended, &Failure::ClosedAbruptly, End::Drop);
        }
        let outcome = self.outcome.take().unwrap_or(AttemptOutcome::Deferred {
            led: hybridlab_model::led::Led::new(450, None, "Connection was closed abruptly"),
        });
        DeliveryAttempt {
            number: self.params.attempt,
            started: self.started,
            ended,
            connector: self.params.connector,
            session_id: self.params.session_id,
            target_host: self.params.target_host,
            target: Some(self.params.target),
            source: self.source,
            tls: self.tls,
            transcript: self.transcript,
            outcome,
        }
    }
}

impl ProtocolCore for ExoClient {
    type Action = Action;

    fn handle_input(&mut self, now: OffsetDateTime, bytes: &[u8]) {
        if !matches!(self.phase, Phase::Smtp | Phase::Closing) {
            return;
        }
        self.last_activity = now;
        for r in self.reader.push(bytes) {
            if !matches!(self.phase, Phase::Smtp | Phase::Closing) {
                break;
            }
            match r {
                Ok(reply) => self.on_reply(now, reply),
                Err(e) => {
                    self.note(now, e.to_string());
                    self.fail(now, &Failure::ProtocolError, End::Drop);
                }
            }
        }
    }

    fn handle_eof(&mut self, now: OffsetDateTime) {
        match self.phase {
            Phase::Closing => self.close(now),
            Phase::Smtp | Phase::Handshaking => {
                self.note(now, "the server closed the connection".into());
                self.fail(now, &Failure::ClosedAbruptly, End::Drop);
            }
            Phase::Connecting | Phase::Done => {}
        }
    }

    fn handle_timeout(&mut self, now: OffsetDateTime) {
        let Some(deadline) = self.poll_timeout() else {
            return;
        };
        if now < deadline {
            return;
        }
        if self.phase == Phase::Closing {
            self.close(now);
            return;
        }
        self.note(now, "timed out waiting for the server".into());
        self.fail(now, &Failure::ClosedAbruptly, End::Drop);
    }

    fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn poll_timeout(&self) -> Option<OffsetDateTime> {
        match self.phase {
            Phase::Smtp | Phase::Handshaking | Phase::Closing => {
                Some(self.last_activity + self.params.reply_timeout.to_time())
            }
            Phase::Connecting | Phase::Done => None,
        }
    }

    fn is_closed(&self) -> bool {
        self.phase == Phase::Done && self.actions.is_empty()
    }
}
