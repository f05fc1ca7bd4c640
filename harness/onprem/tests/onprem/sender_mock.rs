//! The Exchange-like sender and transport against the real mock EOP, over in-memory streams under
//! paused (virtual) time and over TCP on loopback: the classic case end to end, the keyed twin
//! delivering, every verdict of the mock's attribution, throttling then recovery, a firewall
//! stripping STARTTLS, handshake faults, and an EOP certificate from an untrusted root. Each case
//! checks the reply, the queue and the send log lines, and the mock's own record of the session.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration as StdDuration;

use crate::support::mocklab::{self, MockLab, Net, SMART_HOST, message, pinned, t0};
use hybridlab_artefacts::csv;
use hybridlab_model::attribution::{AttributedBy, AttributionVerdict, VerdictKind};
use hybridlab_model::exchange::{QueueStatus, TlsAuthLevel};
use hybridlab_model::record::SessionRecord;
use hybridlab_model::reply::eop;
use hybridlab_onprem::certstore::{CertDescription, StoreDescription, fixtures};
use hybridlab_onprem::connector::SendConnector;
use hybridlab_onprem::message::OutboundMessage;
use hybridlab_onprem::sender::ConnectOptions;
use hybridlab_onprem::transport::{TcpDeliver, Transport, TransportRecord, run_until};
use mock_eop::config::{ConnectorType, EopConfig, InboundConnector, SenderIpRange};
use mock_eop::fault::{Fault, FaultAction, Stage, TlsAlert};
use time::Duration;

const CLASSIC_LED: &str =
    "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out";
const MEMORY_PEER: &str = "10.0.0.5";

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// One delivery attempt now, from `src` (in memory: the address the mock is told; over TCP: the
/// loopback address bound).
async fn attempt(lab: &MockLab, t: &mut Transport, net: Net, src: IpAddr) {
    let until = lab.clock.now();
    match net {
        Net::Memory => {
            let mut d = lab.memory(SocketAddr::new(src, 27436));
            run_until(t, &lab.resolver(), &mut d, &lab.clock, until, 3).await;
        }
        Net::Tcp => {
            let mut d = TcpDeliver {
                opts: ConnectOptions {
                    source_ip: Some(src),
                    ..Default::default()
                },
            };
            run_until(t, &lab.resolver(), &mut d, &lab.clock, until, 3).await;
        }
    }
}

/// The source address for `net` (memory: a documentation-range "on-prem" address).
fn source(net: Net) -> IpAddr {
    match net {
        Net::Memory => ip(MEMORY_PEER),
        Net::Tcp => ip("127.0.0.1"),
    }
}

/// The mock's records once `n` sessions have finished (bounded wait, no polling).
async fn records(lab: &MockLab, n: u64) -> Vec<SessionRecord> {
    tokio::time::timeout(StdDuration::from_secs(60), lab.mock.wait_for_sessions(n))
        .await
        .expect("the mock finishes its sessions");
    lab.mock.records()
}

/// The last `n` send log lines of session `i` as `event,data,context`.
fn tail(t: &Transport, i: usize, n: usize) -> Vec<String> {
    let lines: Vec<String> = t.sessions()[i]
        .transcript()
        .lines()
        .map(|l| {
            let f = csv::split_record(l);
            let mut out = String::new();
            csv::write_record(&mut out, [&*f[6], &*f[7], &*f[8]]);
            out
        })
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

fn led(t: &Transport) -> String {
    t.snapshot().last_error.expect("a LastError").led
}

fn message_to(id: u64, to: &str) -> OutboundMessage {
    OutboundMessage::simple(id, "alice@contoso.com", to, t0())
}

fn ndr_reply(t: &Transport) -> hybridlab_model::reply::Reply {
    match &t.finished()[0].1 {
        TransportRecord::Ndr { reply, .. } => reply.clone(),
        other => panic!("expected an NDR, got {other:?}"),
    }
}

fn delivered_reply(t: &Transport) -> hybridlab_model::reply::Reply {
    match &t.finished()[0].1 {
        TransportRecord::Delivered { reply, .. } => reply.clone(),
        other => panic!("expected a delivery, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The classic case and its fix
// ---------------------------------------------------------------------------------------------

async fn classic_case(net: Net) {
    let lab = mocklab::start(true, net).await;
    let twin = lab.store.entry("twin-nokey").unwrap().facts.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(12_884_901_890));
    attempt(&lab, &mut t, net, source(net)).await;

    let expected = format!(
        "<,220 2.0.0 SMTP server ready,\n\
         *,,Sending certificate\n\
         *,\"CN=mail.contoso.com, O=Contoso Ltd, L=Redmond, S=Washington, C=US\",Certificate subject\n\
         *,\"CN=Lab Global G2 TLS RSA SHA256 2020 CA1, O=Lab CA Inc, C=US\",Certificate issuer name\n\
         *,{serial},Certificate serial number\n\
         *,{thumb},Certificate thumbprint\n\
         *,mail.contoso.com;autodiscover.contoso.com,Certificate alternate names\n\
         *,,TLS negotiation failed with error NoCredentials\n\
         -,,Local",
        serial = twin.serial,
        thumb = twin.thumbprint
    );
    assert_eq!(tail(&t, 0, 9).join("\n"), expected);
    let first: Vec<String> = t.sessions()[0]
        .transcript()
        .lines()
        .take(2)
        .map(str::to_string)
        .collect();
    assert!(first[0].ends_with(",*,,attempting to connect"), "{first:?}");
    assert!(first[1].ends_with(",+,,"), "{first:?}");

    let q = t.snapshot();
    assert_eq!(q.status, QueueStatus::Retry);
    assert_eq!(q.message_count, 1);
    assert_eq!(led(&t), CLASSIC_LED);
    assert_eq!(q.last_error.as_ref().unwrap().fqdn, SMART_HOST);
    assert_eq!(
        t.messages()[0].last_error.as_ref().unwrap().led,
        CLASSIC_LED
    );

    // the mock answered STARTTLS and never saw a ClientHello
    let r = &records(&lab, 1).await[0];
    assert!(r.tls.is_none());
    assert!(r.commands().any(|c| c.eq_ignore_ascii_case("STARTTLS")));
    assert!(r.messages.is_empty());
    assert_eq!(r.helo.as_deref(), Some("mail.contoso.com"));
    if net == Net::Memory {
        assert_eq!(r.peer.ip(), ip(MEMORY_PEER));
    }
}

#[tokio::test(start_paused = true)]
async fn classic_case_in_memory() {
    classic_case(Net::Memory).await;
}

#[tokio::test]
async fn classic_case_over_tcp() {
    classic_case(Net::Tcp).await;
}

async fn keyed_twin_delivers(net: Net) {
    let lab = mocklab::start(false, net).await;
    let keyed = lab.store.entry("keyed").unwrap().facts.clone();
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    attempt(&lab, &mut t, net, source(net)).await;
    let reply = delivered_reply(&t);
    assert!(reply.one_line().starts_with("250 2.6.0 <"), "{reply}");
    assert!(reply.text().ends_with("Queued mail for delivery"));
    assert_eq!(t.snapshot().status, QueueStatus::Ready);
    assert_eq!(t.snapshot().message_count, 0);
    let text = t.sessions()[0].transcript();
    assert!(text.contains(&format!(",*,{},Certificate thumbprint\n", keyed.thumbprint)));
    assert!(
        text.contains(",*,,\"TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_"),
        "{text}"
    );
    assert!(text.contains(",*,,Remote certificate\n"));
    assert!(text.contains(",*,\"CN=mail.protection.outlook.com, O=Microsoft Corporation, L=Redmond, S=Washington, C=US\",Certificate subject\n"));
    assert!(text.contains(",>,BDAT "));
    assert_eq!(tail(&t, 0, 3)[2], "-,,Local");
    assert!(tail(&t, 0, 3)[1].starts_with("<,221 2.0.0"));

    let r = &records(&lab, 1).await[0];
    assert_eq!(
        r.attribution,
        Some(AttributionVerdict::Attributed {
            tenant: "contoso".into(),
            connector: "Inbound from contoso".into(),
            by: AttributedBy::Certificate,
        })
    );
    let tls = r.tls.as_ref().unwrap();
    let cc = tls
        .client_certificate
        .as_ref()
        .expect("a client certificate");
    assert_eq!(cc.leaf.thumbprint, keyed.thumbprint);
    assert_eq!(r.messages.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn keyed_twin_first_delivers_in_memory() {
    keyed_twin_delivers(Net::Memory).await;
}

#[tokio::test]
async fn keyed_twin_first_delivers_over_tcp() {
    keyed_twin_delivers(Net::Tcp).await;
}

#[tokio::test(start_paused = true)]
async fn removing_the_keyless_twin_fixes_the_queue() {
    let lab = mocklab::start(true, Net::Memory).await;
    let twin = lab
        .store
        .entry("twin-nokey")
        .unwrap()
        .facts
        .thumbprint
        .clone();
    let mut fixed = lab.store.clone();
    fixed.remove(&twin);
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut d = lab.memory(SocketAddr::new(ip(MEMORY_PEER), 27436));
    let r = lab.resolver();
    run_until(
        &mut t,
        &r,
        &mut d,
        &lab.clock,
        t0() + Duration::minutes(20),
        100,
    )
    .await;
    assert_eq!(t.snapshot().status, QueueStatus::Retry);
    assert_eq!(
        t.sessions().len(),
        6,
        "glitch retries, then a transient one"
    );
    // Remove-Item the twin, restart transport, Retry-Queue
    t.set_store(std::sync::Arc::new(fixed));
    t.retry_now(lab.clock.now());
    run_until(
        &mut t,
        &r,
        &mut d,
        &lab.clock,
        t0() + Duration::hours(1),
        100,
    )
    .await;
    assert!(delivered_reply(&t).one_line().starts_with("250 2.6.0"));
    let recs = records(&lab, 7).await;
    assert_eq!(recs.len(), 7);
    assert!(recs[..6].iter().all(|r| r.tls.is_none()));
    assert_eq!(
        recs[6].attribution.as_ref().map(|v| v.kind()),
        Some(VerdictKind::Attributed)
    );
}

// ---------------------------------------------------------------------------------------------
// Attribution verdicts
// ---------------------------------------------------------------------------------------------

/// The contoso tenant whose only connector is attributed by IP (`range`), TLS required or not.
fn ip_config(range: &str, require_tls: bool) -> EopConfig {
    let mut c = EopConfig::contoso();
    c.tenants[0].inbound_connectors = vec![InboundConnector {
        name: "Inbound from contoso (IP)".into(),
        connector_type: ConnectorType::OnPremises,
        sender_ip_addresses: vec![range.parse::<SenderIpRange>().unwrap()],
        require_tls,
        cloud_services_mail_enabled: true,
        ..InboundConnector::default()
    }];
    c
}

async fn attributed_by_ip(net: Net, inside: IpAddr, outside: IpAddr) {
    let cfg = ip_config(&format!("{inside}/32"), false);
    let lab = mocklab::start_with(cfg, vec![], &fixtures::classic_twins(false), net, true).await;
    // an OnPremises connector may relay: an Internet recipient is accepted
    let mut t = lab.transport(pinned());
    t.submit(message_to(1, "carol@fabrikam.example"));
    attempt(&lab, &mut t, net, inside).await;
    assert!(delivered_reply(&t).one_line().starts_with("250 2.6.0"));
    // the same from an address outside SenderIPAddresses: relay denied
    let mut t2 = lab.transport(pinned());
    t2.submit(message_to(2, "carol@fabrikam.example"));
    attempt(&lab, &mut t2, net, outside).await;
    let ndr = ndr_reply(&t2);
    // the tag names the host, then (current era) the time and the session id
    let host = &lab.mock.config().endpoint.reject_host;
    assert!(
        ndr.one_line()
            .starts_with(&eop::relay_denied(host).one_line().replace(']', " ")),
        "{ndr}"
    );
    assert_eq!(t2.snapshot().message_count, 0);

    let recs = records(&lab, 2).await;
    assert_eq!(recs[0].peer.ip(), inside);
    assert_eq!(
        recs[0].attribution,
        Some(AttributionVerdict::Attributed {
            tenant: "contoso".into(),
            connector: "Inbound from contoso (IP)".into(),
            by: AttributedBy::Ip,
        })
    );
    assert_eq!(recs[1].peer.ip(), outside);
    assert_eq!(
        recs[1].attribution.as_ref().map(|v| v.kind()),
        Some(VerdictKind::RelayDenied)
    );
}

#[tokio::test(start_paused = true)]
async fn attributed_by_ip_in_memory() {
    attributed_by_ip(Net::Memory, ip("198.51.100.10"), ip("203.0.113.77")).await;
}

#[tokio::test]
async fn attributed_by_ip_from_a_loopback_source_bind() {
    attributed_by_ip(Net::Tcp, ip("127.0.0.23"), ip("127.0.0.24")).await;
}

async fn wrong_certificate_name_is_relay_denied(net: Net) {
    // the pinned certificate is fabrikam's: the contoso connector wants mail.contoso.com
    let mut desc = StoreDescription {
        authorities: fixtures::authorities(),
        certificates: Vec::new(),
    };
    desc.certificates.push(
        CertDescription::new(
            "fabrikam",
            "CN=mail.fabrikam.com, O=Fabrikam, C=US",
            Some("issuing"),
        )
        .unwrap(),
    );
    let lab = mocklab::start_with(EopConfig::contoso(), vec![], &desc, net, true).await;
    let pin = lab.store.entry("fabrikam").unwrap().x509_identifier();
    let c = SendConnector {
        tls_certificate_name: Some(pin),
        ..pinned()
    };
    let mut t = lab.transport(c);
    // internal recipient: accepted as anonymous Internet mail
    t.submit(message(1));
    // external recipient: relay denied
    t.submit(message_to(2, "carol@fabrikam.example"));
    attempt(&lab, &mut t, net, source(net)).await;
    let done = t.finished();
    assert!(
        matches!(&done[0].1, TransportRecord::Delivered { reply, .. } if reply.code == 250),
        "{done:?}"
    );
    let TransportRecord::Ndr { internal_id, reply } = &done[1].1 else {
        panic!("{done:?}")
    };
    assert_eq!(*internal_id, 2);
    assert_eq!(reply.code, 550);
    assert!(
        reply
            .text()
            .starts_with("5.7.64 TenantAttribution; Relay Access Denied [")
    );
    let text = t.sessions()[0].transcript();
    assert!(text.contains(",<,550 5.7.64 TenantAttribution; Relay Access Denied ["));
    assert!(text.contains(",>,RSET,") || text.contains(",>,QUIT,"));
    let q = t.snapshot();
    assert_eq!((q.status, q.message_count), (QueueStatus::Ready, 0));

    let r = &records(&lab, 1).await[0];
    let cc = r.tls.as_ref().unwrap().client_certificate.as_ref().unwrap();
    assert_eq!(cc.leaf.subject, "CN=mail.fabrikam.com, O=Fabrikam, C=US");
    assert_eq!(
        r.attribution.as_ref().map(|v| v.kind()),
        Some(VerdictKind::RelayDenied)
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_certificate_name_is_relay_denied_in_memory() {
    wrong_certificate_name_is_relay_denied(Net::Memory).await;
}

#[tokio::test]
async fn wrong_certificate_name_is_relay_denied_over_tcp() {
    wrong_certificate_name_is_relay_denied(Net::Tcp).await;
}

#[tokio::test(start_paused = true)]
async fn require_tls_connector_and_cleartext_session_is_451_5_7_3() {
    let cfg = ip_config(&format!("{MEMORY_PEER}/32"), true);
    let lab = mocklab::start_with(
        cfg,
        vec![],
        &fixtures::classic_twins(false),
        Net::Memory,
        true,
    )
    .await;
    // IgnoreSTARTTLS on-prem: the session stays in clear text
    let c = SendConnector {
        require_tls: false,
        tls_auth_level: None,
        tls_domain: None,
        ignore_starttls: true,
        ..pinned()
    };
    c.validate().unwrap();
    let mut t = lab.transport(c);
    t.submit(message(1));
    attempt(&lab, &mut t, Net::Memory, ip(MEMORY_PEER)).await;
    let text = t.sessions()[0].transcript();
    assert!(!text.contains(",>,STARTTLS,"), "{text}");
    assert!(text.contains(",<,451 5.7.3 STARTTLS is required to send mail,"));
    let q = t.snapshot();
    assert_eq!(q.status, QueueStatus::Retry);
    assert_eq!(
        q.last_error.unwrap().led,
        "451 4.4.395 Target host responded with error. -> 451 5.7.3 STARTTLS is required to send mail"
    );
    assert_eq!(
        q.next_retry_time,
        Some(t0() + Duration::minutes(5)),
        "a message-level 4xx waits MessageRetryInterval"
    );
    let r = &records(&lab, 1).await[0];
    assert!(r.tls.is_none());
    assert_eq!(
        r.attribution,
        Some(AttributionVerdict::TlsRequired {
            tenant: "contoso".into(),
            connector: "Inbound from contoso (IP)".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn tenant_in_another_region_is_451_4_4_62() {
    let mut cfg = EopConfig::contoso();
    cfg.tenants[0].region = Some("NAM".into());
    let lab = mocklab::start_with(
        cfg,
        vec![],
        &fixtures::classic_twins(false),
        Net::Memory,
        true,
    )
    .await;
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    attempt(&lab, &mut t, Net::Memory, ip(MEMORY_PEER)).await;
    let wrong = eop::wrong_region();
    assert!(
        t.sessions()[0]
            .transcript()
            .contains(&format!(",<,{},", wrong.one_line()))
    );
    assert_eq!(t.snapshot().status, QueueStatus::Retry);
    assert_eq!(
        led(&t),
        format!(
            "451 4.4.395 Target host responded with error. -> {}",
            wrong.one_line()
        )
    );
    let r = &records(&lab, 1).await[0];
    assert_eq!(
        r.attribution.as_ref().map(|v| v.kind()),
        Some(VerdictKind::WrongRegion)
    );
}

#[tokio::test(start_paused = true)]
async fn partner_connector_restriction_is_550_5_7_51() {
    let mut cfg = EopConfig::contoso();
    cfg.tenants[0].inbound_connectors = vec![InboundConnector {
        name: "Partner fabrikam relay".into(),
        connector_type: ConnectorType::Partner,
        sender_domains: vec![serde_json::from_str("\"contoso.com\"").unwrap()],
        sender_ip_addresses: vec!["192.0.2.10".parse().unwrap()],
        restrict_domains_to_ip_addresses: true,
        ..InboundConnector::default()
    }];
    let lab = mocklab::start_with(
        cfg,
        vec![],
        &fixtures::classic_twins(false),
        Net::Memory,
        true,
    )
    .await;
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    attempt(&lab, &mut t, Net::Memory, ip(MEMORY_PEER)).await;
    let ndr = ndr_reply(&t);
    assert_eq!(ndr.code, 550);
    assert!(
        ndr.text().starts_with(
            "5.7.51 TenantInboundAttribution; There is a partner connector configured that matched the message's recipient domain."
        ),
        "{ndr}"
    );
    assert!(
        t.sessions()[0]
            .transcript()
            .contains(",<,550 5.7.51 TenantInboundAttribution; There is a partner connector")
    );
    let q = t.snapshot();
    assert_eq!((q.status, q.message_count), (QueueStatus::Ready, 0));
    let r = &records(&lab, 1).await[0];
    assert_eq!(
        r.attribution,
        Some(AttributionVerdict::PartnerRestricted {
            tenant: "contoso".into(),
            connector: "Partner fabrikam relay".into()
        })
    );
}

#[tokio::test(start_paused = true)]
async fn throttled_for_the_first_two_attempts_then_delivered() {
    let faults = vec![Fault::new(Stage::Mail, FaultAction::Throttle(Default::default())).first(2)];
    let lab = mocklab::start_with(
        EopConfig::contoso(),
        faults,
        &fixtures::classic_twins(false),
        Net::Memory,
        true,
    )
    .await;
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    let mut d = lab.memory(SocketAddr::new(ip(MEMORY_PEER), 27436));
    let r = lab.resolver();
    run_until(&mut t, &r, &mut d, &lab.clock, t0(), 3).await;
    let busy = eop::throttled(MEMORY_PEER, "S77714");
    assert_eq!(
        led(&t),
        format!(
            "451 4.4.395 Target host responded with error. -> {}",
            busy.one_line()
        )
    );
    assert!(
        t.sessions()[0]
            .transcript()
            .contains(&format!(",<,{},", busy.one_line()))
    );
    assert_eq!(t.messages()[0].retry_count, 1);
    run_until(
        &mut t,
        &r,
        &mut d,
        &lab.clock,
        t0() + Duration::hours(1),
        100,
    )
    .await;
    let at: Vec<Duration> = t
        .records()
        .iter()
        .filter(|r| matches!(r.record, TransportRecord::Attempt { .. }))
        .map(|r| r.at - t0())
        .collect();
    assert_eq!(
        at,
        [Duration::ZERO, Duration::minutes(5), Duration::minutes(10)]
    );
    assert!(delivered_reply(&t).one_line().starts_with("250 2.6.0"));
    let q = t.snapshot();
    assert_eq!(q.status, QueueStatus::Ready);
    assert!(q.last_error.is_none());
    let recs = records(&lab, 3).await;
    assert_eq!(
        recs.iter()
            .map(|r| r.faults_fired.len())
            .collect::<Vec<_>>(),
        [1, 1, 0]
    );
}

// ---------------------------------------------------------------------------------------------
// STARTTLS stripped, handshake faults, EOP's certificate
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn starttls_masked_by_a_firewall_with_require_tls() {
    let faults = vec![Fault::new(Stage::Ehlo, FaultAction::MaskStarttls)];
    let lab = mocklab::start_with(
        EopConfig::contoso(),
        faults,
        &fixtures::classic_twins(false),
        Net::Memory,
        true,
    )
    .await;
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    attempt(&lab, &mut t, Net::Memory, ip(MEMORY_PEER)).await;
    let text = t.sessions()[0].transcript();
    assert!(text.contains(" XXXXXXXA "), "{text}");
    assert!(!text.contains(",>,STARTTLS,"));
    assert!(!text.contains("Sending certificate"));
    let tail = tail(&t, 0, 3);
    assert_eq!(tail[0], ">,QUIT,");
    assert!(tail[1].starts_with("<,221 "));
    assert_eq!(tail[2], "-,,Local");
    assert_eq!(t.snapshot().status, QueueStatus::Retry);
    assert_eq!(
        led(&t),
        "451 4.4.395 Target host responded with error. -> 451 5.7.3 STARTTLS is required to send mail"
    );
    let r = &records(&lab, 1).await[0];
    assert!(r.tls.is_none());
    assert!(r.messages.is_empty());
}

/// A handshake fault: the status logged, the disconnect line and the LED.
async fn handshake_fault(net: Net, action: FaultAction, status: &str, local: bool) {
    let faults = vec![Fault::new(Stage::TlsHandshake, action.clone())];
    let lab = mocklab::start_with(
        EopConfig::contoso(),
        faults,
        &fixtures::classic_twins(false),
        net,
        true,
    )
    .await;
    let mut t = lab.transport(pinned());
    t.submit(message(1));
    attempt(&lab, &mut t, net, source(net)).await;
    let (disconnect, led_text) = if local {
        ("-,,Local", CLASSIC_LED)
    } else {
        (
            "-,,Remote(SocketError)",
            "451 4.4.397 Error communicating with target host. -> 421 4.4.2 Connection dropped due to SocketError",
        )
    };
    let tail = tail(&t, 0, 3);
    assert_eq!(
        tail,
        [
            "*,mail.contoso.com;autodiscover.contoso.com,Certificate alternate names".to_string(),
            format!("*,,TLS negotiation failed with error {status}"),
            disconnect.to_string()
        ],
        "{action:?}"
    );
    assert_eq!(led(&t), led_text, "{action:?}");
    assert_eq!(t.snapshot().status, QueueStatus::Retry);
    let r = &records(&lab, 1).await[0];
    assert!(r.tls.is_none());
    assert_eq!(r.faults_fired.len(), 1, "{action:?}");
}

#[tokio::test(start_paused = true)]
async fn handshake_faults_in_memory() {
    handshake_fault(Net::Memory, FaultAction::Drop, "SocketError", false).await;
    handshake_fault(
        Net::Memory,
        FaultAction::TlsGarbage("HTTP/1.1 400 Bad Request\r\n\r\n".into()),
        "IllegalMessage",
        true,
    )
    .await;
    handshake_fault(
        Net::Memory,
        FaultAction::TlsAlert(TlsAlert::InternalError),
        "IllegalMessage",
        true,
    )
    .await;
    handshake_fault(
        Net::Memory,
        FaultAction::TlsAlert(TlsAlert::HandshakeFailure),
        "AlgorithmMismatch",
        true,
    )
    .await;
}

#[tokio::test]
async fn handshake_faults_over_tcp() {
    handshake_fault(Net::Tcp, FaultAction::Drop, "SocketError", false).await;
    handshake_fault(
        Net::Tcp,
        FaultAction::TlsGarbage("220 inspected\r\n".into()),
        "IllegalMessage",
        true,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn eop_certificate_from_an_untrusted_root() {
    let mut cfg = EopConfig::contoso();
    cfg.tls.server_certificate.issuer = mock_eop::config::CertIssuer::Untrusted;
    let lab = mocklab::start_with(
        cfg,
        vec![],
        &fixtures::classic_twins(false),
        Net::Memory,
        true,
    )
    .await;
    let c = SendConnector {
        tls_auth_level: Some(TlsAuthLevel::CertificateValidation),
        tls_domain: None,
        ..pinned()
    };
    let mut t = lab.transport(c.clone());
    t.submit(message(1));
    attempt(&lab, &mut t, Net::Memory, ip(MEMORY_PEER)).await;
    let text = t.sessions()[0].transcript();
    assert!(text.contains(",*,,Remote certificate\n"));
    assert!(
        text.contains(
            ",*,\"CN=Untrusted Lab TLS CA, O=Not Trusted, C=US\",Certificate issuer name\n"
        ),
        "{text}"
    );
    let tail = tail(&t, 0, 4);
    assert_eq!(
        tail[0],
        "*,,Remote certificate validation failed with status UntrustedRoot (TlsAuthLevel CertificateValidation)"
    );
    assert_eq!(tail[1], ">,QUIT,");
    assert_eq!(tail[3], "-,,Local");
    assert_eq!(
        led(&t),
        "451 4.4.395 Target host responded with error. -> 454 4.7.5 Certificate validation failure"
    );
    assert_eq!(t.snapshot().status, QueueStatus::Retry);
    let r = &records(&lab, 1).await[0];
    assert!(r.tls.is_some(), "the handshake itself completed");
    assert!(r.messages.is_empty());

    // EncryptionOnly does not judge the chain: delivered
    let c = SendConnector {
        tls_auth_level: Some(TlsAuthLevel::EncryptionOnly),
        ..c
    };
    let mut t = lab.transport(c);
    t.submit(message(2));
    attempt(&lab, &mut t, Net::Memory, ip(MEMORY_PEER)).await;
    assert!(delivered_reply(&t).one_line().starts_with("250 2.6.0"));
}
