//! Queue timelines on the virtual clock against the mock EOP (paused tokio time, in-memory
//! streams): quick retries, long retries, delay DSN, expiry NDR, recovery after N failed attempts,
//! opportunistic fallback, message-level 4xx, DNS failure, and the classic case end to end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use crate::support::mocklab::{self, MockLab, Net, SMART_HOST, message, pinned};
use hybridlab_model::exchange::QueueStatus;
use hybridlab_onprem::resolver::LabResolver;
use hybridlab_onprem::transport::{Transport, TransportConfig, TransportRecord, run_until};
use mock_eop::config::EopConfig;
use mock_eop::fault::{Fault, FaultAction, Stage};
use time::{Duration, OffsetDateTime};

fn t0() -> OffsetDateTime {
    mocklab::t0()
}

/// The on-prem twins against the contoso mock, with `faults`.
async fn make_lab(keyless_first: bool, faults: Vec<Fault>) -> MockLab {
    mocklab::start_with(
        EopConfig::contoso(),
        faults,
        &hybridlab_onprem::certstore::fixtures::classic_twins(keyless_first),
        Net::Memory,
        true,
    )
    .await
}

/// The on-prem server's address as the mock sees it.
fn peer() -> SocketAddr {
    "10.0.0.5:27436".parse().unwrap()
}

/// The smart host resolves to an EOP address (shown in the logs and LastError).
fn resolver(lab: &MockLab) -> LabResolver {
    lab.resolver_as("104.47.10.36:25".parse().unwrap())
}

fn attempts(t: &Transport) -> Vec<Duration> {
    t.records()
        .iter()
        .filter(|r| matches!(r.record, TransportRecord::Attempt { .. }))
        .map(|r| r.at - t0())
        .collect()
}

/// The mock's records once `n` sessions have finished.
async fn mock_records(lab: &MockLab, n: u64) -> Vec<hybridlab_model::record::SessionRecord> {
    tokio::time::timeout(StdDuration::from_secs(60), lab.mock.wait_for_sessions(n))
        .await
        .expect("the mock finishes its sessions");
    lab.mock.records()
}

#[tokio::test(start_paused = true)]
async fn classic_case_end_to_end_over_two_days() {
    let lab = make_lab(true, vec![]).await;
    let keyless = lab
        .store
        .entry("twin-nokey")
        .unwrap()
        .facts
        .thumbprint
        .clone();
    let clock = lab.clock.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(12884901890));
    let mut d = lab.memory(peer());

    // first attempt
    run_until(&mut t, &resolver(&lab), &mut d, &clock, t0(), 10).await;
    let q = t.snapshot();
    assert_eq!(q.status, QueueStatus::Retry);
    assert_eq!(q.identity, "EDGE01\\3");
    let le = q.last_error.clone().unwrap();
    assert_eq!(
        le.led,
        "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out"
    );
    assert_eq!(le.fqdn, SMART_HOST);
    assert_eq!(le.ip, "104.47.10.36");
    assert_eq!(le.lrt, "5/2/2019 6:30:00 AM");
    assert_eq!(q.next_retry_time, Some(t0() + Duration::minutes(1)));
    let s = &t.sessions()[0];
    let tail: Vec<String> = s
        .transcript()
        .lines()
        .rev()
        .take(3)
        // drop date-time, connector-id, session-id, sequence, local and remote: event,data,context
        .map(|l| l.splitn(7, ',').nth(6).unwrap().to_string())
        .collect();
    assert_eq!(tail[0], "-,,Local");
    assert_eq!(
        tail[1],
        "*,,TLS negotiation failed with error NoCredentials"
    );
    assert_eq!(
        tail[2],
        "*,mail.contoso.com;autodiscover.contoso.com,Certificate alternate names"
    );
    assert!(
        s.transcript()
            .contains(&format!("*,{keyless},Certificate thumbprint"))
    );

    // two virtual days
    let until = t0() + Duration::days(2) + Duration::minutes(1);
    run_until(&mut t, &resolver(&lab), &mut d, &clock, until, 10_000).await;
    let a = attempts(&t);
    let m = Duration::minutes;
    assert_eq!(&a[..5], &[m(0), m(1), m(2), m(3), m(4)], "glitch retries");
    assert_eq!(
        &a[5..11],
        &[m(14), m(24), m(34), m(44), m(54), m(64)],
        "transient retries"
    );
    assert_eq!(
        a[11],
        m(94),
        "then OutboundConnectionFailureRetryInterval (Edge: 30 min)"
    );
    assert!(a.windows(2).skip(11).all(|w| w[1] - w[0] == m(30)));
    assert!(a.last().unwrap() < &Duration::days(2));
    let dsn = t
        .records()
        .iter()
        .find(|r| matches!(r.record, TransportRecord::DelayDsn { .. }))
        .unwrap();
    assert_eq!(dsn.at, t0() + Duration::hours(4));
    let (_, ndr) = t.finished().last().unwrap();
    assert_eq!(
        ndr,
        &TransportRecord::Ndr {
            internal_id: 12884901890,
            reply: hybridlab_model::exchange::synthetic::queue_expired()
        }
    );
    assert!(t.messages().is_empty());
    assert_eq!(
        clock.now(),
        t0() + Duration::days(2),
        "stops when the queue is empty"
    );
}

#[tokio::test(start_paused = true)]
async fn keyed_twin_first_delivers_with_2_6_0() {
    let lab = make_lab(false, vec![]).await;
    let clock = lab.clock.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut d = lab.memory(peer());
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::hours(1),
        100,
    )
    .await;
    let (_, rec) = &t.finished()[0];
    let TransportRecord::Delivered { reply, .. } = rec else {
        panic!("{rec:?}")
    };
    assert!(reply.one_line().starts_with("250 2.6.0"));
    assert_eq!(t.snapshot().message_count, 0);
    let rec = &mock_records(&lab, 1).await[0];
    assert!(rec.tls.is_some());
    assert_eq!(rec.messages.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn recovery_after_three_failed_attempts_and_fix_in_store() {
    // a middlebox resets the first three handshakes
    let lab = make_lab(
        false,
        vec![Fault::new(Stage::TlsHandshake, FaultAction::Drop).first(3)],
    )
    .await;
    let clock = lab.clock.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut d = lab.memory(peer());
    run_until(&mut t, &resolver(&lab), &mut d, &clock, t0(), 10).await;
    assert_eq!(
        t.snapshot().last_error.unwrap().led,
        "451 4.4.397 Error communicating with target host. -> 421 4.4.2 Connection dropped due to SocketError"
    );
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::hours(1),
        100,
    )
    .await;
    assert_eq!(
        attempts(&t),
        vec![
            Duration::ZERO,
            Duration::minutes(1),
            Duration::minutes(2),
            Duration::minutes(3)
        ]
    );
    assert!(matches!(
        t.finished()[0].1,
        TransportRecord::Delivered { .. }
    ));
    let q = t.snapshot();
    assert_eq!(q.status, QueueStatus::Ready);
    assert!(q.last_error.is_none());

    // the classic case fixed by removing the key-less twin after an hour
    let lab = make_lab(true, vec![]).await;
    let keyless = lab
        .store
        .entry("twin-nokey")
        .unwrap()
        .facts
        .thumbprint
        .clone();
    let mut fixed = lab.store.clone();
    fixed.remove(&keyless);
    let clock = lab.clock.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(2));
    let mut d = lab.memory(peer());
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::hours(1),
        1000,
    )
    .await;
    assert_eq!(t.snapshot().status, QueueStatus::Retry);
    t.set_store(Arc::new(fixed));
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::hours(3),
        1000,
    )
    .await;
    assert!(matches!(
        t.finished()[0].1,
        TransportRecord::Delivered { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn opportunistic_fallback_only_when_tls_not_required() {
    let lab = make_lab(true, vec![]).await;
    let mut c = pinned();
    c.require_tls = false;
    c.tls_auth_level = None;
    c.tls_domain = None;
    let clock = lab.clock.clone();
    let mut t = lab.transport(c);
    t.submit(message(1));
    let mut d = lab.memory(peer());
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::hours(1),
        100,
    )
    .await;
    let kinds: Vec<bool> = t
        .records()
        .iter()
        .filter_map(|r| match r.record {
            TransportRecord::Attempt {
                fallback_plaintext, ..
            } => Some(fallback_plaintext),
            _ => None,
        })
        .collect();
    assert_eq!(kinds, vec![false, true]);
    assert!(matches!(
        t.finished()[0].1,
        TransportRecord::Delivered { .. }
    ));
    // the plain-text session reaches EOP unattributed by certificate (FM-08/FM-21 territory)
    let second = mock_records(&lab, 2).await[1].clone();
    assert!(second.tls.is_none());
    assert!(
        !second
            .commands()
            .any(|c| c.eq_ignore_ascii_case("STARTTLS"))
    );
    assert_eq!(
        second.attribution.as_ref().map(|v| v.kind()),
        Some(hybridlab_model::attribution::VerdictKind::Unattributed)
    );

    // RequireTLS: never falls back
    let lab = make_lab(true, vec![]).await;
    let clock = lab.clock.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut d = lab.memory(peer());
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::hours(1),
        100,
    )
    .await;
    assert!(t.records().iter().all(|r| !matches!(
        r.record,
        TransportRecord::Attempt {
            fallback_plaintext: true,
            ..
        }
    )));
    assert!(t.finished().is_empty());
}

#[tokio::test(start_paused = true)]
async fn message_level_4xx_uses_message_retry_interval() {
    let lab = make_lab(
        false,
        vec![Fault::new(Stage::Rcpt, FaultAction::Throttle(Default::default())).first(2)],
    )
    .await;
    let clock = lab.clock.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut d = lab.memory(peer());
    run_until(&mut t, &resolver(&lab), &mut d, &clock, t0(), 10).await;
    let msgs = t.message_rows();
    assert_eq!(msgs[0].identity, "EDGE01\\3\\1");
    assert_eq!(msgs[0].retry_count, 1);
    assert_eq!(
        msgs[0].last_error.as_ref().unwrap().led,
        "451 4.4.395 Target host responded with error. -> 451 4.7.500 Server busy. Please try again later from [10.0.0.5]. (S77714)"
    );
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::hours(1),
        100,
    )
    .await;
    assert_eq!(
        attempts(&t),
        vec![Duration::ZERO, Duration::minutes(5), Duration::minutes(10)]
    );
    assert!(matches!(
        t.finished()[0].1,
        TransportRecord::Delivered { .. }
    ));
}

#[tokio::test(start_paused = true)]
async fn dns_failure_and_mailbox_defaults() {
    let lab = make_lab(false, vec![]).await;
    let clock = lab.clock.clone();
    let mut cfg = TransportConfig::new(pinned());
    cfg.settings = hybridlab_onprem::transport::TransportSettings::mailbox();
    cfg.settings.retry_interleaving = hybridlab_onprem::transport::RetryInterleaving::TransientOnly;
    let mut t = Transport::new(cfg, Arc::new(lab.store.clone()));
    t.submit(message(1));
    let mut d = lab.memory(peer());
    run_until(
        &mut t,
        &LabResolver::new(),
        &mut d,
        &clock,
        t0() + Duration::hours(2),
        100,
    )
    .await;
    let q = t.snapshot();
    assert_eq!(
        q.last_error.unwrap().led,
        "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
    );
    let fails: Vec<Duration> = t
        .records()
        .iter()
        .filter(|r| matches!(r.record, TransportRecord::DnsFailed { .. }))
        .map(|r| r.at - t0())
        .collect();
    let m = Duration::minutes;
    // Mailbox: 6 transient retries 5 min apart, then every 10 min
    assert_eq!(
        &fails[..8],
        &[m(0), m(5), m(10), m(15), m(20), m(25), m(30), m(40)]
    );
    assert!(t.sessions().is_empty());
}

#[tokio::test(start_paused = true)]
async fn suspend_resume_and_retry_queue() {
    let lab = make_lab(true, vec![]).await;
    let keyless = lab
        .store
        .entry("twin-nokey")
        .unwrap()
        .facts
        .thumbprint
        .clone();
    let mut fixed = lab.store.clone();
    fixed.remove(&keyless);
    let clock = lab.clock.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut d = lab.memory(peer());
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::minutes(30),
        1000,
    )
    .await;
    let before = attempts(&t).len();
    t.suspend();
    assert_eq!(t.snapshot().status, QueueStatus::Suspended);
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::hours(5),
        1000,
    )
    .await;
    assert_eq!(attempts(&t).len(), before, "no attempt while suspended");
    assert_eq!(clock.now(), t0() + Duration::hours(5));
    assert!(
        t.records()
            .iter()
            .any(|r| matches!(r.record, TransportRecord::DelayDsn { .. }))
    );
    // fix the store, resume and Retry-Queue: delivered at once
    t.set_store(Arc::new(fixed));
    t.resume();
    assert_eq!(t.snapshot().status, QueueStatus::Retry);
    t.retry_now(clock.now());
    run_until(
        &mut t,
        &resolver(&lab),
        &mut d,
        &clock,
        t0() + Duration::hours(6),
        1000,
    )
    .await;
    let (_, rec) = &t.finished()[0];
    assert!(matches!(rec, TransportRecord::Delivered { .. }));
    assert_eq!(*attempts(&t).last().unwrap(), Duration::hours(5));
}
