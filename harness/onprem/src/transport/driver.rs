//! The tokio driver: the one delivery loop ([`drive`]) around the sans-IO [`Transport`], the
//! [`Deliver`] implementations that carry a session (TCP, in-memory duplex), and the
//! [`DriveHooks`] a caller adds (admin changes on the same clock, checks, observation).

use std::future::Future;
use std::net::SocketAddr;

use hybridlab_labkit::clock::LabClock;
use time::OffsetDateTime;

use super::Transport;
use crate::message::OutboundMessage;
use crate::resolver::{ConnectFailure, LabResolver, Target};
use crate::sender::{
    ConnectOptions, FailureKind, SenderMachine, SessionConfig, SessionReport, deliver_tcp,
    run_session,
};

/// How the driver reaches a target, and how the lab clock gets to the queue's next wake-up.
pub trait Deliver {
    /// Runs one session to `cfg.target` carrying `messages`.
    fn deliver(
        &mut self,
        cfg: SessionConfig,
        messages: Vec<OutboundMessage>,
        clock: &LabClock,
    ) -> impl Future<Output = SessionReport>;

    /// Brings the lab clock to `at` (the next retry, delay DSN, expiry or admin change). By
    /// default a tokio sleep: under a paused runtime time jumps there at once.
    fn wait_until(&mut self, clock: &LabClock, at: OffsetDateTime) -> impl Future<Output = ()> {
        let deadline = clock.instant_at(at);
        async move { tokio::time::sleep_until(deadline).await }
    }
}

/// Over TCP (the mock on loopback, Postfix, any SMTP server).
///
/// Sessions run in real time; between them the lab clock skips to the queue's next wake-up
/// ([`LabClock::skip_to`]) rather than sleeping, so a retry fifteen minutes later comes at once and
/// tokio's own clock is left alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDeliver {
    /// Connect options (source address within 127.0.0.0/8).
    pub opts: ConnectOptions,
}

impl Deliver for TcpDeliver {
    async fn deliver(
        &mut self,
        cfg: SessionConfig,
        messages: Vec<OutboundMessage>,
        clock: &LabClock,
    ) -> SessionReport {
        let opts = self.opts;
        let fallback = cfg.clone();
        match deliver_tcp(cfg, messages.clone(), clock, opts).await {
            Ok(r) => r,
            Err(_) => {
                // a non-loopback source address: refused before connecting
                let mut m = SenderMachine::new(fallback, messages, clock.now());
                m.handle_connect_failed(clock.now(), ConnectFailure::Refused);
                m.finish()
            }
        }
    }

    async fn wait_until(&mut self, clock: &LabClock, at: OffsetDateTime) {
        clock.skip_to(at);
    }
}

/// Over an in-memory stream: `connect` hands out the client end of a fresh duplex whose server end
/// it has given to an in-process server. Meant for a paused tokio clock: the driver sleeps to each
/// wake-up, which lets the server finish its side of a session before time moves on.
#[derive(Debug)]
pub struct MemoryDeliver<F> {
    /// Makes a connection: hands out the client end of a fresh duplex.
    pub connect: F,
    /// The local endpoint the log shows.
    pub local: SocketAddr,
}

impl<F> Deliver for MemoryDeliver<F>
where
    F: FnMut() -> tokio::io::DuplexStream,
{
    async fn deliver(
        &mut self,
        cfg: SessionConfig,
        messages: Vec<OutboundMessage>,
        clock: &LabClock,
    ) -> SessionReport {
        let target = cfg.target.clone();
        let mut machine = SenderMachine::new(cfg, messages, clock.now());
        if let Some(f) = target.unreachable {
            machine.handle_connect_failed(clock.now(), f);
            return machine.finish();
        }
        let stream = (self.connect)();
        run_session(machine, stream, self.local, clock, 100_000).await
    }
}

/// What a caller adds to the delivery loop of [`drive`]: admin changes on the same clock, a check
/// before each session, and a look at the queue after each wake-up. Every method has a default
/// that does nothing, so [`NoHooks`] is the plain loop.
pub trait DriveHooks {
    /// Why the caller stops the run early (returned by [`drive`]).
    type Error;

    /// When the next admin change is due (`None`: no change left).
    fn next_change_at(&self) -> Option<OffsetDateTime> {
        None
    }

    /// Applies the change due at `now` (the one [`Self::next_change_at`] gave) to the transport.
    fn apply_change(&mut self, _transport: &mut Transport, _now: OffsetDateTime) {}

    /// How many changes are still to come (each is one more step of the loop's bound).
    fn pending_changes(&self) -> usize {
        0
    }

    /// Just before a session to `target` is configured; an error ends the run.
    ///
    /// # Errors
    /// Whatever the caller refuses (the lab refuses a target off loopback over TCP).
    fn before_attempt(&mut self, _target: &Target) -> Result<(), Self::Error> {
        Ok(())
    }

    /// After the transport took the report of the session to `target`; `connected` says whether
    /// the session got a TCP connection (a DNS or connect failure never reached the server).
    fn after_attempt(&mut self, _target: &Target, _connected: bool) -> impl Future<Output = ()> {
        async {}
    }

    /// After a wake-up that tried the queue (a session or a DNS failure), at `now`, the time the
    /// wake-up began.
    fn after_wakeup(&mut self, _transport: &Transport, _now: OffsetDateTime) {}
}

/// The plain delivery loop: no admin changes, nothing observed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl DriveHooks for NoHooks {
    type Error = std::convert::Infallible;
}

/// The delivery loop: runs the transport until the queue is empty and no change is left, the lab
/// clock reaches `until`, or `max_steps` wake-ups (plus one per admin change) have happened.
///
/// Each step asks the transport when it wants to run ([`Transport::next_wakeup`]: all retry timing
/// lives there) and the hooks when their next change is due; a change at T happens before any
/// attempt at or after T. The clock moves through [`Deliver::wait_until`]. At a wake-up the
/// transport sends delay DSNs and expiry NDRs, resolves the next hop with `resolver`, and hands
/// the due messages to `deliver` for one session.
///
/// # Errors
/// Whatever [`DriveHooks::before_attempt`] refused; the loop stops there.
pub async fn drive<D: Deliver, H: DriveHooks>(
    transport: &mut Transport,
    resolver: &LabResolver,
    deliver: &mut D,
    clock: &LabClock,
    until: OffsetDateTime,
    max_steps: usize,
    hooks: &mut H,
) -> Result<(), H::Error> {
    for _ in 0..max_steps.saturating_add(hooks.pending_changes()) {
        let wake = transport.next_wakeup();
        if let Some(at) = hooks.next_change_at()
            && at <= until
            && wake.is_none_or(|w| at <= w)
        {
            deliver.wait_until(clock, at).await;
            hooks.apply_change(transport, clock.now());
            continue;
        }
        let Some(wake) = wake else {
            break;
        };
        if wake > until {
            deliver.wait_until(clock, until).await;
            break;
        }
        deliver.wait_until(clock, wake).await;
        let now = clock.now();
        transport.on_time(now);
        let due = transport.due_messages(now);
        if due.is_empty() {
            continue;
        }
        let domain = due[0].recipient_domain().to_string();
        let connector = transport.config().connector.clone();
        match resolver.next_hop(&connector, &domain) {
            Err(e) => transport.on_dns_failure(&e, now),
            Ok(targets) => {
                let Some(target) = targets.into_iter().next() else {
                    continue;
                };
                hooks.before_attempt(&target)?;
                let cfg = transport.session_config(target.clone(), &domain);
                let fallback = cfg.skip_starttls;
                let report = deliver.deliver(cfg, due, clock).await;
                let connected = !report.failure.as_ref().is_some_and(|f| {
                    matches!(f.kind, FailureKind::Dns | FailureKind::ConnectFailed { .. })
                });
                transport.on_session(report, fallback, clock.now());
                hooks.after_attempt(&target, connected).await;
            }
        }
        hooks.after_wakeup(transport, now);
    }
    Ok(())
}

/// [`drive`] without hooks: runs the transport until the queue is empty, the lab clock reaches
/// `until`, or `max_steps` wake-ups have happened.
pub async fn run_until<D: Deliver>(
    transport: &mut Transport,
    resolver: &LabResolver,
    deliver: &mut D,
    clock: &LabClock,
    until: OffsetDateTime,
    max_steps: usize,
) {
    let Ok(()) = drive(
        transport,
        resolver,
        deliver,
        clock,
        until,
        max_steps,
        &mut NoHooks,
    )
    .await;
}
