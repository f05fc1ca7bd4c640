//! Exchange Online's queue for outbound connectors, without IO: messages are submitted, become
//! due, are handed out as ready-to-run [`ExoClient`]s ([`ExoQueue::take_due`]), and the attempts'
//! records come back ([`ExoQueue::complete`]). Each message's message trace is kept up to date
//! (`Receive`, `Submit`, a `Defer` per failed attempt, then `Deliver` or `Fail`), retries follow
//! [`DeliverySettings`] on the caller's clock, and a message still undelivered when its expiry
//! has passed fails at its next retry time with `550 5.4.3xx Message expired ...` (a public
//! expiry NDR came about 24h13m after receipt).
//!
//! [`run_until`] drives a queue on the lab clock with a [`Dialer`] and a [`Resolver`].

use std::net::SocketAddr;

use hybridlab_labkit::clock::LabClock;
use hybridlab_model::delivery::{
    AttemptOutcome, DeliveryAttempt, DeliveryRecord, DeliverySettings, Direction, TargetOrder,
    TranscriptLine,
};
use hybridlab_model::led::{LastError, Led, TraceReason, en_us_datetime};
use hybridlab_model::trace::{
    MepValue, MessageTrace, TraceData, TraceEvent, TraceEventKind, TraceStatus,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use time::OffsetDateTime;

use super::client::{ExoClient, SessionParams};
use super::driver::{Dialer, attempt};
use super::led::{self, Failure, LedContext};
use super::message::ExoMessage;
use super::routing::{Resolver, Route, Target, targets};
use super::tls::ExoTls;

/// A message as submitted: envelope and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// Envelope sender.
    pub from: String,
    /// The recipient (one per queued message, as the trace shows one row per recipient).
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Which queued message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageKey(pub usize);

/// An attempt ready to run: the core to drive and the message it belongs to.
#[derive(Debug)]
pub struct Planned {
    /// The message.
    pub key: MessageKey,
    /// The session core (target chosen, session id assigned).
    pub client: ExoClient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Due(OffsetDateTime),
    InFlight,
    Done,
}

#[derive(Debug)]
struct Entry {
    message: ExoMessage,
    route: Route,
    record: DeliveryRecord,
    state: State,
}

/// The queue (see the module documentation).
#[derive(Debug)]
pub struct ExoQueue {
    settings: DeliverySettings,
    entries: Vec<Entry>,
    rng: StdRng,
    next_target: usize,
    service_ticks: u64,
    sessions: u64,
}

/// .NET ticks (100 ns since 0001-01-01) of `t`: the base of Exchange's 16-hex session ids.
pub fn dotnet_ticks(t: OffsetDateTime) -> u64 {
    let since_unix = t.unix_timestamp_nanos() / 100;
    u64::try_from(since_unix + 621_355_968_000_000_000).unwrap_or(0)
}

impl ExoQueue {
    /// An empty queue; `seed` drives the GUIDs and the random target order; `start` is when
    /// the service started (the base of session ids).
    pub fn new(settings: DeliverySettings, seed: u64, start: OffsetDateTime) -> Self {
        Self {
            settings,
            entries: Vec::new(),
            rng: StdRng::seed_from_u64(seed),
            next_target: 0,
            service_ticks: dotnet_ticks(start),
            sessions: 0,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &DeliverySettings {
        &self.settings
    }

    fn guid(&mut self) -> String {
        let mut b: [u8; 16] = self.rng.random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }

    /// Queues `message` for `route` at `now` (received and submitted now; due at once).
    pub fn submit(&mut self, route: Route, message: NewMessage, now: OffsetDateTime) -> MessageKey {
        let key = MessageKey(self.entries.len());
        let server = self.settings.mailbox_server.clone();
        let msg = ExoMessage {
            message_id: format!("<{:016X}@{server}>", self.service_ticks + key.0 as u64),
            network_message_id: self.guid(),
            from: message.from,
            to: vec![message.to],
            subject: message.subject,
            body: message.body,
            received: now,
        };
        let size = msg
            .wire(route.connector.cloud_services_mail_enabled, &server)
            .len();
        let events = vec![
            event(
                now,
                TraceEventKind::Receive,
                format!("Message received by: {server}"),
                TraceData::default().with("ServerHostName", MepValue::String(server)),
            ),
            event(
                now,
                TraceEventKind::Submit,
                "The message was submitted.".into(),
                TraceData::default(),
            ),
        ];
        let trace = MessageTrace {
            organization: route.organization.clone(),
            message_id: msg.message_id.clone(),
            received: now,
            sender_address: msg.from.clone(),
            recipient_address: msg.to[0].clone(),
            subject: msg.subject.clone(),
            status: TraceStatus::Pending,
            to_ip: None,
            from_ip: None,
            size: size as u64,
            message_trace_id: self.guid(),
            events,
        };
        self.entries.push(Entry {
            message: msg,
            route,
            record: DeliveryRecord {
                trace,
                attempts: Vec::new(),
            },
            state: State::Due(now),
        });
        key
    }

    /// When the next message is due; `None` when nothing waits (all done or in flight).
    pub fn next_due(&self) -> Option<OffsetDateTime> {
        self.entries
            .iter()
            .filter_map(|e| match e.state {
                State::Due(t) => Some(t),
                _ => None,
            })
            .min()
    }

    /// Whether every message is delivered or failed.
    pub fn is_finished(&self) -> bool {
        self.entries.iter().all(|e| e.state == State::Done)
    }

    /// The record of one message.
    pub fn record(&self, key: MessageKey) -> Option<&DeliveryRecord> {
        self.entries.get(key.0).map(|e| &e.record)
    }

    /// Every message's record, in submission order.
    pub fn records(&self) -> impl Iterator<Item = &DeliveryRecord> {
        self.entries.iter().map(|e| &e.record)
    }

    /// Hands out an attempt for every message due at `now` (messages past their expiry fail
    /// instead; a smart host that does not resolve defers without a connection).
    pub fn take_due(&mut self, now: OffsetDateTime, resolver: &dyn Resolver) -> Vec<Planned> {
        let mut out = Vec::new();
        for i in 0..self.entries.len() {
            let State::Due(at) = self.entries[i].state else {
                continue;
            };
            if at > now {
                continue;
            }
            let key = MessageKey(i);
            let e = &self.entries[i];
            let expires = e.record.trace.received + self.settings.expiry.to_time();
            if !e.record.attempts.is_empty() && now >= expires {
                self.expire(key, now);
                continue;
            }
            let domain = e.message.recipient_domain().to_string();
            match targets(&e.route, &domain, resolver) {
                Ok(ts) => {
                    let target = self.pick(&ts);
                    let client = self.client(key, target, now);
                    self.entries[i].state = State::InFlight;
                    out.push(Planned { key, client });
                }
                Err((name, err)) => {
                    let a = self.dns_failure(key, &name, &err.to_string(), now);
                    self.complete(key, a, now);
                }
            }
        }
        out
    }

    fn pick(&mut self, ts: &[Target]) -> Target {
        let i = match self.settings.target_order {
            TargetOrder::RoundRobin => {
                let i = self.next_target % ts.len();
                self.next_target = self.next_target.wrapping_add(1);
                i
            }
            TargetOrder::Random => self.rng.random_range(0..ts.len()),
        };
        ts[i].clone()
    }

    fn session_id(&mut self) -> String {
        self.sessions += 1;
        format!("{:016X}", self.service_ticks.wrapping_add(self.sessions))
    }

    fn client(&mut self, key: MessageKey, target: Target, now: OffsetDateTime) -> ExoClient {
        let session_id = self.session_id();
        let e = &self.entries[key.0];
        let c = &e.route.connector;
        let params = SessionParams {
            connector: c.name.clone(),
            tls_settings: c.tls_settings,
            expected_name: c.expected_certificate_name(&target.host).to_string(),
            target_host: target.host.clone(),
            target: target.addr,
            ehlo_name: self.settings.ehlo_name.clone(),
            organization: e.route.organization.clone(),
            cross_premises: c.cloud_services_mail_enabled,
            auth_source: self.settings.mailbox_server.clone(),
            session_id,
            service_host: self.settings.service_host.clone(),
            reply_timeout: self.settings.reply_timeout,
            certificate_failure: self.settings.certificate_failure,
            attempt: e.record.attempts.len() as u32 + 1,
        };
        ExoClient::new(params, e.message.clone(), now)
    }

    fn dns_failure(
        &mut self,
        key: MessageKey,
        name: &str,
        error: &str,
        now: OffsetDateTime,
    ) -> DeliveryAttempt {
        let session_id = self.session_id();
        let e = &self.entries[key.0];
        let ctx = LedContext {
            target_host: name,
            target: None,
            service_host: &self.settings.service_host,
            session_id: &session_id,
            now,
            form: self.settings.certificate_failure,
        };
        let led = led::deferral(&Failure::Dns(error.to_string()), &ctx);
        DeliveryAttempt {
            number: e.record.attempts.len() as u32 + 1,
            started: now,
            ended: now,
            connector: e.route.connector.name.clone(),
            session_id,
            target_host: name.to_string(),
            target: None,
            source: None,
            tls: None,
            transcript: vec![TranscriptLine {
                at: now,
                direction: Direction::Info,
                text: format!("DNS query for {name} failed: {error}"),
            }],
            outcome: AttemptOutcome::Deferred { led },
        }
    }

    /// Records an attempt's result at `now`: the trace event, the status, the next retry.
    pub fn complete(&mut self, key: MessageKey, attempt: DeliveryAttempt, now: OffsetDateTime) {
        let Some(e) = self.entries.get_mut(key.0) else {
            return;
        };
        let data = attempt_data(&e.route.connector.name, &attempt);
        let ip = attempt.target.map(|a| a.ip().to_string());
        if ip.is_some() {
            e.record.trace.to_ip.clone_from(&ip);
        }
        let (kind, detail, status, next) = match &attempt.outcome {
            AttemptOutcome::Delivered { .. } => (
                TraceEventKind::Deliver,
                "The message was successfully delivered.".to_string(),
                TraceStatus::Delivered,
                State::Done,
            ),
            AttemptOutcome::Deferred { led } => {
                let wait = if e.record.attempts.is_empty() {
                    self.settings.first_retry
                } else {
                    self.settings.retry_interval
                };
                (
                    TraceEventKind::Defer,
                    reason(led, &attempt.target_host, attempt.target, now).to_string(),
                    TraceStatus::Pending,
                    State::Due(now + wait.to_time()),
                )
            }
            AttemptOutcome::Failed { led } => (
                TraceEventKind::Fail,
                reason(led, &attempt.target_host, attempt.target, now).to_string(),
                TraceStatus::Failed,
                State::Done,
            ),
        };
        e.record
            .trace
            .events
            .push(event(attempt.ended.max(now), kind, detail, data));
        e.record.trace.status = status;
        e.record.attempts.push(attempt);
        e.state = next;
    }

    fn expire(&mut self, key: MessageKey, now: OffsetDateTime) {
        let e = &mut self.entries[key.0];
        let last = e.record.attempts.last();
        let led = led::expired(last.and_then(|a| a.outcome.led()));
        let (host, target) = last
            .map(|a| (a.target_host.clone(), a.target))
            .unwrap_or_default();
        let data = TraceData::default().with(
            "ConnectorId",
            MepValue::String(e.route.connector.name.clone()),
        );
        let detail = reason(&led, &host, target, now).to_string();
        e.record
            .trace
            .events
            .push(event(now, TraceEventKind::Fail, detail, data));
        e.record.trace.status = TraceStatus::Failed;
        e.state = State::Done;
    }
}

fn event(
    date: OffsetDateTime,
    kind: TraceEventKind,
    detail: String,
    data: TraceData,
) -> TraceEvent {
    TraceEvent {
        date,
        event: kind,
        action: String::new(),
        detail,
        data: data.to_string(),
    }
}

/// The trace's `Reason: [{LED=...};{MSG=};{FQDN=...};{IP=...};{LRT=...}]. OutboundProxyTargetIP:
/// ... OutboundProxyTargetHostName: ...` for an LED.
pub fn reason(
    led: &Led,
    host: &str,
    target: Option<SocketAddr>,
    now: OffsetDateTime,
) -> TraceReason {
    let ip = target.map(|a| a.ip().to_string());
    TraceReason {
        last_error: LastError {
            led: led.to_string(),
            msg: String::new(),
            fqdn: host.to_string(),
            ip: ip.clone().unwrap_or_default(),
            lrt: en_us_datetime(now),
        },
        proxy_target_ip: ip,
        proxy_target_host: (!host.is_empty()).then(|| host.to_string()),
    }
}

fn attempt_data(connector: &str, a: &DeliveryAttempt) -> TraceData {
    let mut d = TraceData::default().with("ConnectorId", MepValue::String(connector.to_string()));
    if let Some(t) = a.target {
        d = d.with(
            "OutboundProxyTargetIPAddress",
            MepValue::String(t.ip().to_string()),
        );
    }
    d = d.with(
        "OutboundProxyTargetHostName",
        MepValue::String(a.target_host.clone()),
    );
    if let Some(tls) = &a.tls {
        let proto = match tls.version.as_str() {
            "TLS1_3" => "SP_PROT_TLS1_3_CLIENT",
            _ => "SP_PROT_TLS1_2_CLIENT",
        };
        d = d.with(
            "CustomData",
            MepValue::Blob(format!(
                "S:tlsversion={proto};S:tlscipher={}",
                tls.cipher_suite
            )),
        );
    }
    d.with("RcptCount", MepValue::Integer(1))
}

/// One trace event as the default table of `Get-MessageTraceDetail` shows it:
/// `<date>  <Event>  <Detail>` (en-US date).
pub fn trace_line(e: &TraceEvent) -> String {
    format!("{}  {}  {}", en_us_datetime(e.date), e.event, e.detail)
}

/// The most queue rounds [`run_until`] runs (each round runs due attempts or sleeps).
pub const MAX_ROUNDS: usize = 1_000_000;

/// Runs `queue` on the lab clock: due attempts one after the other through `dialer`, then a
/// sleep (on the lab clock) until the next retry; returns when every message is done, when the
/// next retry is later than `until`, or when nothing is due.
pub async fn run_until<D: Dialer>(
    queue: &mut ExoQueue,
    dialer: &D,
    resolver: &dyn Resolver,
    tls: &ExoTls,
    clock: &LabClock,
    until: Option<OffsetDateTime>,
) {
    let connect_timeout = queue.settings.connect_timeout.0;
    for _ in 0..MAX_ROUNDS {
        let plans = queue.take_due(clock.now(), resolver);
        if plans.is_empty() {
            let Some(next) = queue.next_due() else { return };
            if until.is_some_and(|u| next > u) {
                return;
            }
            tokio::time::sleep_until(clock.instant_at(next)).await;
            continue;
        }
        for p in plans {
            let a = attempt(p.client, dialer, tls, clock, connect_timeout).await;
            queue.complete(p.key, a, clock.now());
        }
    }
}
