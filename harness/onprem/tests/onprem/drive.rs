//! The delivery loop's hooks ([`drive`] with [`DriveHooks`]) against the mock EOP in memory under
//! paused time: an admin change due at an attempt's time comes first, each wake-up that tried the
//! queue is observed, a refused target stops the run, pending changes extend the step bound, and
//! a change past the end of the run never happens.

use std::net::SocketAddr;

use hybridlab_onprem::resolver::Target;
use hybridlab_onprem::transport::{DriveHooks, Transport, TransportRecord, drive};
use time::{Duration, OffsetDateTime};

use crate::support::mocklab::{self, MockLab, Net, message, pinned, t0};

/// An admin change: what it does to the transport at its time.
type Change = Box<dyn FnMut(&mut Transport, OffsetDateTime)>;

/// Hooks that apply scripted changes and write down, in order, everything the loop told them.
#[derive(Default)]
struct Script {
    /// The changes still to apply, in time order.
    changes: Vec<(OffsetDateTime, Change)>,
    /// What happened, one line per hook call, times relative to [`t0`].
    log: Vec<String>,
    /// Refuse every target (the lab's rule for a target off loopback).
    refuse: bool,
}

impl DriveHooks for Script {
    type Error = String;

    fn next_change_at(&self) -> Option<OffsetDateTime> {
        self.changes.first().map(|(at, _)| *at)
    }

    fn apply_change(&mut self, transport: &mut Transport, now: OffsetDateTime) {
        let (_, mut change) = self.changes.remove(0);
        change(transport, now);
        self.log.push(format!("change at {}", now - t0()));
    }

    fn pending_changes(&self) -> usize {
        self.changes.len()
    }

    fn before_attempt(&mut self, target: &Target) -> Result<(), String> {
        if self.refuse {
            return Err(format!("refused {}", target.addr));
        }
        self.log.push(format!("attempt to {}", target.host));
        Ok(())
    }

    async fn after_attempt(&mut self, _target: &Target, _connected: bool) {
        self.log.push("attempted".into());
    }

    fn after_wakeup(&mut self, transport: &Transport, now: OffsetDateTime) {
        let led = transport.snapshot().last_error.map(|l| l.led);
        self.log
            .push(format!("woke at {}: LastError {led:?}", now - t0()));
    }
}

fn peer() -> SocketAddr {
    "10.0.0.5:27436".parse().unwrap()
}

async fn classic_lab() -> MockLab {
    mocklab::start(true, Net::Memory).await
}

#[tokio::test(start_paused = true)]
async fn a_change_due_at_a_retry_comes_before_it_and_every_wakeup_is_observed() {
    let lab = classic_lab().await;
    let keyless = lab
        .store
        .entry("twin-nokey")
        .unwrap()
        .facts
        .thumbprint
        .clone();
    let clock = lab.clock.clone();
    let resolver = lab.resolver_as("104.47.10.36:25".parse().unwrap());
    let mut d = lab.memory(peer());
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut hooks = Script::default();
    // the first glitch retry is one minute after the failed attempt
    hooks.changes.push((
        t0() + Duration::minutes(1),
        Box::new(move |t: &mut Transport, now| {
            t.remove_certificate(&keyless, now)
                .expect("the twin is there");
            t.restart(now);
        }),
    ));
    let until = t0() + Duration::hours(1);
    drive(&mut t, &resolver, &mut d, &clock, until, 10, &mut hooks)
        .await
        .unwrap();
    let host = mocklab::SMART_HOST;
    let classic = "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out";
    assert_eq!(
        hooks.log,
        [
            format!("attempt to {host}"),
            "attempted".into(),
            format!("woke at 0s: LastError Some({classic:?})"),
            "change at 1m".into(),
            format!("attempt to {host}"),
            "attempted".into(),
            "woke at 1m: LastError None".into(),
        ]
    );
    let at_one_minute: Vec<&TransportRecord> = t
        .records()
        .iter()
        .filter(|r| r.at == t0() + Duration::minutes(1))
        .map(|r| &r.record)
        .collect();
    assert!(
        matches!(
            at_one_minute.as_slice(),
            [
                TransportRecord::AdminChange { .. },
                TransportRecord::AdminChange { .. },
                TransportRecord::Attempt { .. },
                TransportRecord::Delivered { .. }
            ]
        ),
        "{at_one_minute:?}"
    );
    assert!(t.messages().is_empty());
    // the queue is empty and no change is left: the loop stopped without waiting for `until`
    assert_eq!(clock.now(), t0() + Duration::minutes(1));
}

#[tokio::test(start_paused = true)]
async fn a_refused_target_stops_the_run_before_any_session() {
    let lab = classic_lab().await;
    let clock = lab.clock.clone();
    let resolver = lab.resolver_as("104.47.10.36:25".parse().unwrap());
    let mut d = lab.memory(peer());
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut hooks = Script {
        refuse: true,
        ..Script::default()
    };
    let err = drive(&mut t, &resolver, &mut d, &clock, t0(), 10, &mut hooks)
        .await
        .unwrap_err();
    assert_eq!(err, "refused 104.47.10.36:25");
    assert!(t.sessions().is_empty());
    assert_eq!(t.messages().len(), 1);
    assert!(hooks.log.is_empty(), "{:?}", hooks.log);
}

#[tokio::test(start_paused = true)]
async fn pending_changes_run_on_an_empty_queue_with_no_steps_left() {
    let lab = classic_lab().await;
    let clock = lab.clock.clone();
    let resolver = lab.resolver_as("104.47.10.36:25".parse().unwrap());
    let mut d = lab.memory(peer());
    let mut t = lab.transport(pinned());
    let mut hooks = Script::default();
    hooks.changes.push((
        t0() + Duration::minutes(5),
        Box::new(|t: &mut Transport, now| t.restart(now)),
    ));
    let until = t0() + Duration::hours(1);
    drive(&mut t, &resolver, &mut d, &clock, until, 0, &mut hooks)
        .await
        .unwrap();
    assert_eq!(hooks.log, ["change at 5m"]);
    assert_eq!(clock.now(), t0() + Duration::minutes(5));
    assert!(matches!(
        t.records(),
        [r] if matches!(r.record, TransportRecord::AdminChange { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn a_change_after_the_end_of_the_run_never_happens() {
    let lab = classic_lab().await;
    let clock = lab.clock.clone();
    let resolver = lab.resolver_as("104.47.10.36:25".parse().unwrap());
    let mut d = lab.memory(peer());
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut hooks = Script::default();
    hooks.changes.push((
        t0() + Duration::days(1),
        Box::new(|_: &mut Transport, _| panic!("past the end of the run")),
    ));
    let until = t0() + Duration::seconds(30);
    drive(&mut t, &resolver, &mut d, &clock, until, 10, &mut hooks)
        .await
        .unwrap();
    // one attempt at t0; the glitch retry at 1m is past `until`, so is the change
    assert_eq!(t.sessions().len(), 1);
    assert_eq!(hooks.changes.len(), 1);
    assert_eq!(clock.now(), until);
}
