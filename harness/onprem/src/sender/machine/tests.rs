//! The machine driven by hand: the classic case, credentials, TLS outcomes, transactions.

use super::*;
use crate::certstore::fixtures::{self, CONTOSO_SUBJECT, ISSUING_CA};
use crate::certstore::{CertStore, StoreDescription};
use crate::sender::report::DeliveryOutcome;
use crate::sender::tls::{RemoteChainStatus, TlsResult};
use hybridlab_artefacts::protocol_log::{CertBlockStyle, session_records};
use hybridlab_model::exchange::{SecurityStatus, TlsAuthLevel};

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

fn cfg(desc: &StoreDescription, connector: SendConnector) -> SessionConfig {
    SessionConfig {
        connector,
        server: ServerIdentity::default(),
        store: Arc::new(CertStore::build(desc, t0()).unwrap()),
        selection: SelectionSettings::default(),
        schannel: SchannelSettings::default(),
        session_id: "08D6CEB1A2F3C4D5".into(),
        target: Target {
            host: "contoso-com.mail.protection.outlook.com".into(),
            addr: "127.0.0.1:25".parse().unwrap(),
            unreachable: None,
        },
        next_hop_domain: "contoso.mail.onmicrosoft.com".into(),
        skip_starttls: false,
    }
}

fn hybrid() -> SendConnector {
    SendConnector::hybrid(
        "contoso",
        Some(format!("<I>{ISSUING_CA}<S>{CONTOSO_SUBJECT}")),
    )
}

fn plain_connector() -> SendConnector {
    SendConnector::to_smart_host("To relay", "relay.lab", 25)
}

fn msg() -> OutboundMessage {
    OutboundMessage::simple(
        12884901890,
        "alice@contoso.com",
        "bob@contoso.mail.onmicrosoft.com",
        t0(),
    )
}

const BANNER: &[u8] =
    b"220 AM5EUR02FT017.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready\r\n";
const EHLO_TLS: &[u8] = b"250-AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 CHUNKING\r\n";
const EHLO_AFTER: &[u8] = b"250-AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.1]\r\n250-SIZE 157286400\r\n250-PIPELINING\r\n250 CHUNKING\r\n";

/// Drains actions; returns the bytes sent and whether a StartTls / Close came out.
fn drain(m: &mut SenderMachine) -> (String, Option<Box<TlsRequest>>, bool) {
    let mut sent = String::new();
    let mut tls = None;
    let mut close = false;
    while let Some(a) = m.poll_action() {
        match a {
            Action::Send(b) => sent.push_str(&String::from_utf8_lossy(&b)),
            Action::StartTls(r) => tls = Some(r),
            Action::Close => close = true,
        }
    }
    (sent, tls, close)
}

fn connect(m: &mut SenderMachine) {
    m.handle_connected(t0(), "127.0.0.1:27436".parse().unwrap());
    m.handle_input(t0(), BANNER);
}

/// The last `n` log lines as `event,data,context` (CSV-quoted like the log).
fn tail(r: &SessionReport, n: usize) -> Vec<String> {
    let lines: Vec<String> = session_records(&r.log, CertBlockStyle::MultiLine)
        .iter()
        .map(|rec| {
            let mut line = String::new();
            let ev = rec.event.to_string();
            hybridlab_artefacts::csv::write_record(
                &mut line,
                [ev.as_str(), rec.data.as_str(), rec.context.as_str()],
            );
            line
        })
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[test]
fn classic_keyless_twin_fails_with_no_credentials_before_any_tls_byte() {
    let c = cfg(&fixtures::classic_twins(true), hybrid());
    let keyless = c
        .store
        .entry("twin-nokey")
        .unwrap()
        .facts
        .thumbprint
        .clone();
    let mut m = SenderMachine::new(c, vec![msg()], t0());
    connect(&mut m);
    assert_eq!(drain(&mut m).0, "EHLO mail.contoso.com\r\n");
    m.handle_input(t0(), EHLO_TLS);
    assert_eq!(drain(&mut m).0, "STARTTLS\r\n");
    m.handle_input(t0(), b"220 2.0.0 SMTP server ready\r\n");
    let (sent, tls, close) = drain(&mut m);
    assert!(sent.is_empty() && tls.is_none() && close);
    assert!(m.is_closed());
    let r = m.finish();
    let t = tail(&r, 9);
    assert_eq!(t[0], "<,220 2.0.0 SMTP server ready,");
    assert_eq!(t[1], "*,,Sending certificate");
    assert_eq!(t[5], format!("*,{keyless},Certificate thumbprint"));
    assert_eq!(t[7], "*,,TLS negotiation failed with error NoCredentials");
    assert_eq!(t[8], "-,,Local");
    let DeliveryOutcome::SessionFailed(f) = r.outcome() else {
        panic!()
    };
    assert_eq!(f.ack.one_line(), "421 4.4.1 Connection timed out");
    assert!(!f.is_communication_error());
    let t = r.transcript();
    assert!(
        t.starts_with(
            "2026-05-02T06:30:00.000Z,Outbound to Office 365,08D6CEB1A2F3C4D5,0,,127.0.0.1:25,*,,attempting to connect\n"
        ),
        "{t}"
    );
}

#[test]
fn unreadable_key_gives_unknown_credentials() {
    let mut d = fixtures::classic_twins(false);
    d.certificates[0].key_readable = false;
    let mut m = SenderMachine::new(cfg(&d, hybrid()), vec![msg()], t0());
    connect(&mut m);
    m.handle_input(t0(), EHLO_TLS);
    m.handle_input(t0(), b"220 2.0.0 SMTP server ready\r\n");
    let r = {
        drain(&mut m);
        m.finish()
    };
    assert_eq!(
        tail(&r, 2),
        vec![
            "*,,TLS negotiation failed with error UnknownCredentials",
            "-,,Local"
        ]
    );
}

#[test]
fn keyed_twin_first_hands_the_handshake_to_the_driver_and_delivers() {
    let c = cfg(&fixtures::classic_twins(false), hybrid());
    let mut m = SenderMachine::new(c, vec![msg()], t0());
    connect(&mut m);
    m.handle_input(t0(), EHLO_TLS);
    drain(&mut m);
    m.handle_input(t0(), b"220 2.0.0 SMTP server ready\r\n");
    let (_, tls, _) = drain(&mut m);
    let req = tls.expect("StartTls action");
    assert_eq!(req.server_name, "contoso-com.mail.protection.outlook.com");
    assert_eq!(req.credential.as_ref().unwrap().chain.len(), 2);
    let eop = hybridlab_labkit::pki::IssuedCert::self_signed(
        &hybridlab_labkit::pki::CertSpec::leaf("mail.protection.outlook.com", t0()),
    )
    .unwrap();
    m.handle_tls(
        t0(),
        TlsResult::Established(TlsInfo {
            protocol: "TLS1_2".into(),
            cipher_suite: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(),
            kx_group: Some("secp384r1".into()),
            peer_chain: vec![eop.der.clone()],
            chain: RemoteChainStatus::Trusted,
        }),
    );
    assert_eq!(drain(&mut m).0, "EHLO mail.contoso.com\r\n");
    m.handle_input(t0(), EHLO_AFTER);
    let (sent, _, _) = drain(&mut m);
    assert!(
        sent.starts_with("MAIL FROM:<alice@contoso.com> SIZE="),
        "{sent}"
    );
    assert!(
        sent.ends_with("RCPT TO:<bob@contoso.mail.onmicrosoft.com>\r\n"),
        "{sent}"
    );
    m.handle_input(t0(), b"250 2.1.0 Sender OK\r\n");
    assert!(
        drain(&mut m).0.is_empty(),
        "waits for every pipelined reply"
    );
    m.handle_input(t0(), b"250 2.1.5 Recipient OK\r\n");
    let (sent, _, _) = drain(&mut m);
    assert!(
        sent.starts_with("BDAT ") && sent.contains(" LAST\r\n"),
        "{sent}"
    );
    assert!(sent.contains("X-MS-Exchange-CrossPremises-AuthAs: Internal"));
    m.handle_input(t0(), b"250 2.6.0 <x@contoso.com> [InternalId=1, Hostname=AM0PR01MB1234] Queued mail for delivery\r\n");
    assert_eq!(drain(&mut m).0, "QUIT\r\n");
    m.handle_input(t0(), b"221 2.0.0 Service closing transmission channel\r\n");
    assert!(drain(&mut m).2);
    let r = m.finish();
    assert!(
        matches!(r.outcome(), DeliveryOutcome::Delivered(ref rep) if rep.text().starts_with("2.6.0"))
    );
    let t = r.transcript();
    assert!(t.contains("*,,\"TLS protocol SP_PROT_TLS1_2_CLIENT negotiation succeeded using bulk encryption algorithm CALG_AES_256"));
    assert!(t.contains("*,,Remote certificate\n"));
    assert!(t.contains("*,12884901890;2026-05-02T06:30:00.000Z;1,sending message"));
    assert!(t.contains("<,250  AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.1] SIZE 157286400 PIPELINING STARTTLS CHUNKING,"));
    assert_eq!(tail(&r, 1), vec!["-,,Local"]);
}

fn established(m: &mut SenderMachine, chain: RemoteChainStatus, cn: &str) {
    connect(m);
    m.handle_input(t0(), EHLO_TLS);
    m.handle_input(t0(), b"220 2.0.0 SMTP server ready\r\n");
    drain(m);
    let eop = hybridlab_labkit::pki::IssuedCert::self_signed(
        &hybridlab_labkit::pki::CertSpec::leaf(cn, t0()),
    )
    .unwrap();
    m.handle_tls(
        t0(),
        TlsResult::Established(TlsInfo {
            protocol: "TLS1_2".into(),
            cipher_suite: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
            kx_group: None,
            peer_chain: vec![eop.der.clone()],
            chain,
        }),
    );
}

#[test]
fn remote_certificate_judged_per_tls_auth_level() {
    // DomainValidation, trusted chain, wrong name
    let mut m = SenderMachine::new(
        cfg(&fixtures::classic_twins(false), hybrid()),
        vec![msg()],
        t0(),
    );
    established(&mut m, RemoteChainStatus::Trusted, "mx.fabrikam.com");
    assert_eq!(drain(&mut m).0, "QUIT\r\n");
    m.handle_eof(t0());
    let r = m.finish();
    let DeliveryOutcome::SessionFailed(f) = r.outcome() else {
        panic!()
    };
    assert_eq!(f.ack.one_line(), "454 4.7.5 Certificate validation failure");
    assert_eq!(
        f.kind,
        FailureKind::CertificateValidation {
            status: "SubjectMismatch".into()
        }
    );
    assert!(
        r.transcript()
            .contains("Remote certificate validation failed with status SubjectMismatch")
    );
    // wildcard name matches TlsDomain's host
    let mut m = SenderMachine::new(
        cfg(&fixtures::classic_twins(false), hybrid()),
        vec![msg()],
        t0(),
    );
    established(
        &mut m,
        RemoteChainStatus::Trusted,
        "mail.protection.outlook.com",
    );
    assert!(drain(&mut m).0.starts_with("EHLO"));
    // CertificateValidation: untrusted root fails, name ignored
    let mut c = hybrid();
    c.tls_auth_level = Some(TlsAuthLevel::CertificateValidation);
    c.tls_domain = None;
    let mut m = SenderMachine::new(
        cfg(&fixtures::classic_twins(false), c.clone()),
        vec![msg()],
        t0(),
    );
    established(&mut m, RemoteChainStatus::UntrustedRoot, "whatever");
    drain(&mut m);
    let r = m.finish();
    assert_eq!(
        r.failure.unwrap().kind,
        FailureKind::CertificateValidation {
            status: "UntrustedRoot".into()
        }
    );
    let mut m = SenderMachine::new(
        cfg(&fixtures::classic_twins(false), c.clone()),
        vec![msg()],
        t0(),
    );
    established(&mut m, RemoteChainStatus::Expired, "whatever");
    drain(&mut m);
    assert_eq!(
        m.finish().failure.unwrap().kind,
        FailureKind::CertificateValidation {
            status: "Expired".into()
        }
    );
    // EncryptionOnly accepts anything
    c.tls_auth_level = Some(TlsAuthLevel::EncryptionOnly);
    let mut m = SenderMachine::new(cfg(&fixtures::classic_twins(false), c), vec![msg()], t0());
    established(&mut m, RemoteChainStatus::UntrustedRoot, "whatever");
    assert!(drain(&mut m).0.starts_with("EHLO"));
}

#[test]
fn tls_failures_from_the_driver() {
    for (status, ack, reason) in [
        (
            SecurityStatus::AlgorithmMismatch,
            "421 4.4.1 Connection timed out",
            "-,,Local",
        ),
        (
            SecurityStatus::SocketError,
            "421 4.4.2 Connection dropped due to SocketError",
            "-,,Remote(SocketError)",
        ),
    ] {
        let mut m = SenderMachine::new(
            cfg(&fixtures::classic_twins(false), hybrid()),
            vec![msg()],
            t0(),
        );
        connect(&mut m);
        m.handle_input(t0(), EHLO_TLS);
        m.handle_input(t0(), b"220 2.0.0 SMTP server ready\r\n");
        drain(&mut m);
        m.handle_tls(t0(), TlsResult::Failed(status));
        let r = m.finish();
        assert_eq!(
            tail(&r, 2),
            vec![
                status.log_text().replace("TLS", "*,,TLS"),
                reason.to_string()
            ]
        );
        let DeliveryOutcome::SessionFailed(f) = r.outcome() else {
            panic!()
        };
        assert_eq!(f.ack.one_line(), ack);
        assert_eq!(
            f.is_communication_error(),
            status == SecurityStatus::SocketError
        );
    }
}

#[test]
fn require_tls_without_starttls_offered() {
    let mut m = SenderMachine::new(
        cfg(&fixtures::classic_twins(false), hybrid()),
        vec![msg()],
        t0(),
    );
    connect(&mut m);
    m.handle_input(
        t0(),
        b"250-host Hello\r\n250-XXXXXXXA\r\n250 PIPELINING\r\n",
    );
    assert_eq!(drain(&mut m).0, "EHLO mail.contoso.com\r\nQUIT\r\n");
    m.handle_input(t0(), b"221 2.0.0 Bye\r\n");
    let r = m.finish();
    let DeliveryOutcome::SessionFailed(f) = r.outcome() else {
        panic!()
    };
    assert_eq!(
        f.ack.one_line(),
        "451 5.7.3 STARTTLS is required to send mail"
    );
}

#[test]
fn certificate_not_found_and_domain_validation_without_domain() {
    let mut c = hybrid();
    c.tls_certificate_name = Some("<I>CN=Old CA<S>CN=mail.contoso.com".into());
    let mut m = SenderMachine::new(cfg(&fixtures::classic_twins(false), c), vec![msg()], t0());
    connect(&mut m);
    m.handle_input(t0(), EHLO_TLS);
    m.handle_input(t0(), b"220 2.0.0 SMTP server ready\r\n");
    let r = {
        drain(&mut m);
        m.finish()
    };
    assert!(!r.transcript().contains("Sending certificate"));
    assert_eq!(r.selection.as_ref().unwrap().events[0].id, 12014);
    let DeliveryOutcome::SessionFailed(f) = r.outcome() else {
        panic!()
    };
    assert_eq!(f.ack, synthetic::tls_certificate_name_not_found());

    let mut c = hybrid();
    c.tls_domain = None;
    let mut m = SenderMachine::new(cfg(&fixtures::classic_twins(false), c), vec![msg()], t0());
    connect(&mut m);
    m.handle_input(t0(), EHLO_TLS);
    let r = {
        drain(&mut m);
        m.finish()
    };
    assert_eq!(
        r.failure.unwrap().ack.one_line(),
        "421 TLSAuthLevel cannot be DomainValidation with out a valid TLS Domain."
    );
}

#[test]
fn plain_data_with_dot_stuffing_and_size_check() {
    let mut c = plain_connector();
    c.smtp_max_messages_per_connection = 5;
    let mut big = msg();
    big.internal_id = 2;
    big.min_size = Some(3000);
    let mut dotted = msg();
    dotted.internal_id = 3;
    dotted.body = ".leading dot\r\n".into();
    let mut m = SenderMachine::new(
        cfg(&fixtures::classic_twins(false), c),
        vec![big, dotted],
        t0(),
    );
    connect(&mut m);
    drain(&mut m);
    m.handle_input(t0(), b"250-relay.lab\r\n250 SIZE 2000\r\n");
    let (sent, _, _) = drain(&mut m);
    assert!(
        sent.starts_with("MAIL FROM:<alice@contoso.com> SIZE="),
        "no STARTTLS offered: plain text, {sent}"
    );
    assert!(
        !sent.contains("RCPT"),
        "no PIPELINING: one command at a time"
    );
    m.handle_input(t0(), b"250 2.1.0 OK\r\n");
    assert_eq!(
        drain(&mut m).0,
        "RCPT TO:<bob@contoso.mail.onmicrosoft.com>\r\n"
    );
    m.handle_input(t0(), b"250 2.1.5 OK\r\n");
    assert_eq!(drain(&mut m).0, "DATA\r\n");
    m.handle_input(t0(), b"354 go\r\n");
    let (sent, _, _) = drain(&mut m);
    assert!(
        sent.contains("\r\n..leading dot\r\n") && sent.ends_with("\r\n.\r\n"),
        "{sent}"
    );
    m.handle_input(t0(), b"250 2.6.0 queued\r\n");
    assert_eq!(drain(&mut m).0, "QUIT\r\n");
    m.handle_input(t0(), b"221 bye\r\n");
    let r = m.finish();
    assert_eq!(
        r.messages[0].status,
        MessageDisposition::Rejected {
            reply: synthetic::over_advertised_size(),
            local: true
        }
    );
    assert!(matches!(r.outcome_of(1), DeliveryOutcome::Delivered(_)));
}

#[test]
fn recipient_and_message_level_replies() {
    let mut m = SenderMachine::new(
        cfg(&fixtures::classic_twins(false), plain_connector()),
        vec![msg(), msg()],
        t0(),
    );
    connect(&mut m);
    drain(&mut m);
    m.handle_input(t0(), b"250-relay\r\n250 PIPELINING\r\n");
    drain(&mut m);
    m.handle_input(
        t0(),
        b"250 2.1.0 OK\r\n550 5.7.64 TenantAttribution; Relay Access Denied [x]\r\n",
    );
    assert_eq!(drain(&mut m).0, "RSET\r\n");
    m.handle_input(t0(), b"250 2.0.0 Resetting\r\n");
    let (sent, _, _) = drain(&mut m);
    assert!(sent.starts_with("MAIL FROM"));
    m.handle_input(t0(), b"451 4.7.500 Server busy. Please try again later from [127.0.0.1]. (S77714)\r\n503 5.5.1 Bad sequence\r\n");
    assert_eq!(drain(&mut m).0, "QUIT\r\n");
    m.handle_eof(t0());
    let r = m.finish();
    assert!(
        matches!(r.outcome_of(0), DeliveryOutcome::Rejected(ref x) if x.text().starts_with("5.7.64"))
    );
    assert!(
        matches!(r.outcome_of(1), DeliveryOutcome::Deferred(ref x) if x.text().starts_with("4.7.500"))
    );
    assert_eq!(tail(&r, 1), vec!["-,,Local"]);
}

#[test]
fn timeouts_drops_and_garbage() {
    let c = cfg(&fixtures::classic_twins(false), plain_connector());
    let mut m = SenderMachine::new(c.clone(), vec![msg()], t0());
    connect(&mut m);
    let d = m.poll_timeout().unwrap();
    assert_eq!(d, t0() + time::Duration::minutes(10));
    m.handle_timeout(t0() + time::Duration::minutes(5));
    assert!(!m.is_closed());
    m.handle_timeout(d);
    let r = m.finish();
    assert_eq!(
        r.failure.unwrap().ack.one_line(),
        "421 4.4.1 Connection timed out"
    );

    let mut m = SenderMachine::new(c.clone(), vec![msg()], t0());
    connect(&mut m);
    m.handle_eof(t0());
    let r = m.finish();
    let f = r.failure.clone().unwrap();
    assert_eq!(
        f.ack.one_line(),
        "421 4.4.2 Connection dropped due to SocketError"
    );
    assert!(f.is_communication_error());
    assert_eq!(tail(&r, 1), vec!["-,,Remote(SocketError)"]);

    let mut m = SenderMachine::new(c.clone(), vec![msg()], t0());
    m.handle_connected(t0(), "127.0.0.1:1".parse().unwrap());
    m.handle_input(t0(), b"\x16\x03\x01 not smtp\r\n");
    assert_eq!(m.finish().failure.unwrap().kind, FailureKind::ProtocolError);

    let mut m = SenderMachine::new(c.clone(), vec![msg()], t0());
    m.handle_connected(t0(), "127.0.0.1:1".parse().unwrap());
    m.handle_input(t0(), b"554 5.7.1 go away\r\n");
    assert_eq!(drain(&mut m).0, "QUIT\r\n");
    assert_eq!(
        m.finish().failure.unwrap().kind,
        FailureKind::BannerRejected
    );

    let mut m = SenderMachine::new(c, vec![msg()], t0());
    m.handle_connect_failed(t0(), ConnectFailure::Refused);
    let r = m.finish();
    assert_eq!(
        r.failure.unwrap().ack.one_line(),
        "421 4.2.1 Unable to connect"
    );
    assert_eq!(r.log.events.len(), 1);
}

#[test]
fn opportunistic_fallback_skips_starttls() {
    let mut c = cfg(&fixtures::classic_twins(true), plain_connector());
    c.skip_starttls = true;
    let mut m = SenderMachine::new(c, vec![msg()], t0());
    connect(&mut m);
    drain(&mut m);
    m.handle_input(t0(), EHLO_TLS);
    assert!(drain(&mut m).0.starts_with("MAIL FROM"));
}
