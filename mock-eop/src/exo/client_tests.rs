//! Scripted sessions of the client core: the server's bytes and the TLS result in, the
//! commands and the outcome out (no IO, fixed times).

use hybridlab_labkit::pki::{CertAuthority, CertSpec, IssuedCert};
use hybridlab_model::core::ProtocolCore;
use hybridlab_model::delivery::{AttemptOutcome, AttemptTls, CertificateFailureForm, ChainStatus};
use hybridlab_model::exo::OutboundTlsSettings;
use hybridlab_model::timespan::TimeSpan;
use time::OffsetDateTime;

use super::client::{Action, ConnectFailure, ExoClient, SessionParams, TlsOutcome};
use super::led::TlsFailure;
use super::message::ExoMessage;

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

fn params(tls: OutboundTlsSettings) -> SessionParams {
    SessionParams {
        connector: "Outbound to 5d3f1c2a".into(),
        tls_settings: tls,
        expected_name: "mail.contoso.com".into(),
        target_host: "mail.contoso.com".into(),
        target: "127.0.0.10:25".parse().unwrap(),
        ehlo_name: "NAM12-DM6-obe.outbound.protection.outlook.com".into(),
        organization: "contoso.onmicrosoft.com".into(),
        cross_premises: true,
        auth_source: "DM6PR12MB4321.namprd12.prod.outlook.com".into(),
        session_id: "08DE8A01A0B45E1B".into(),
        service_host: "DM6NAM12FT012.eop-nam12.prod.protection.outlook.com".into(),
        reply_timeout: TimeSpan::minutes(10),
        certificate_failure: CertificateFailureForm::CannotConnect,
        attempt: 1,
    }
}

fn message() -> ExoMessage {
    ExoMessage {
        message_id: "<1@DM6PR12MB4321.namprd12.prod.outlook.com>".into(),
        network_message_id: "8e9b967e-b07a-46d7-081f-08d8f8f9f041".into(),
        from: "alice@contoso.com".into(),
        to: vec!["bob@contoso.com".into()],
        subject: "hello".into(),
        body: "hi\n.dot\n".into(),
        received: t0(),
    }
}

fn connected(tls: OutboundTlsSettings) -> ExoClient {
    let mut c = ExoClient::new(params(tls), message(), t0());
    c.handle_connected(t0(), "127.0.0.1:50000".parse().unwrap());
    c
}

/// The commands sent since the last call, one string per Send, and the other actions.
fn drain(c: &mut ExoClient) -> Vec<String> {
    let mut out = Vec::new();
    while let Some(a) = c.poll_action() {
        out.push(match a {
            Action::Send(b) => String::from_utf8_lossy(&b).trim_end().to_string(),
            Action::StartTls { server_name } => format!("<starttls {server_name}>"),
            Action::Close => "<close>".into(),
        });
    }
    out
}

fn say(c: &mut ExoClient, s: &str) -> Vec<String> {
    c.handle_input(t0(), s.as_bytes());
    drain(c)
}

const EHLO_TLS: &str = "250-mail.contoso.com Hello [40.92.0.1]\r\n250-SIZE 37748736\r\n250-STARTTLS\r\n250-XOORG\r\n250 CHUNKING\r\n";
const EHLO_AFTER: &str =
    "250-mail.contoso.com Hello [40.92.0.1]\r\n250-SIZE 37748736\r\n250-XOORG\r\n250 CHUNKING\r\n";

fn cert(cn: &str, self_signed: bool) -> IssuedCert {
    let spec = CertSpec::leaf(cn, t0());
    if self_signed {
        return IssuedCert::self_signed(&spec).unwrap();
    }
    let ca =
        CertAuthority::root(&CertSpec::authority("CN=Lab Root".parse().unwrap(), t0())).unwrap();
    ca.issue(&spec).unwrap()
}

fn established(cert: &IssuedCert, status: ChainStatus) -> TlsOutcome {
    TlsOutcome::Established(Box::new(AttemptTls {
        version: "TLS1_3".into(),
        cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
        presented: Some(cert.facts.clone()),
        chain: Vec::new(),
        chain_status: status,
        client_certificate_requested: true,
    }))
}

/// Banner, EHLO with STARTTLS, STARTTLS accepted: the core asks for the handshake.
fn up_to_handshake(tls: OutboundTlsSettings) -> ExoClient {
    let mut c = connected(tls);
    assert_eq!(
        say(
            &mut c,
            "220 mail.contoso.com Microsoft ESMTP MAIL Service ready\r\n"
        ),
        ["EHLO NAM12-DM6-obe.outbound.protection.outlook.com"]
    );
    assert_eq!(say(&mut c, EHLO_TLS), ["STARTTLS"]);
    assert_eq!(
        say(&mut c, "220 2.0.0 SMTP server ready\r\n"),
        ["<starttls mail.contoso.com>"]
    );
    c
}

fn led_text(c: ExoClient) -> String {
    match c.finish().outcome {
        AttemptOutcome::Deferred { led } => led.to_string(),
        other => panic!("not deferred: {other:?}"),
    }
}

#[test]
fn delivers_over_tls_with_bdat_xoorg_and_cross_premises_headers() {
    let mut c = up_to_handshake(OutboundTlsSettings::DomainValidation);
    c.handle_tls(
        t0(),
        established(&cert("mail.contoso.com", false), ChainStatus::Valid),
    );
    assert_eq!(
        drain(&mut c),
        ["EHLO NAM12-DM6-obe.outbound.protection.outlook.com"]
    );
    let size = c.wire().len();
    assert_eq!(
        say(&mut c, EHLO_AFTER),
        [format!(
            "MAIL FROM:<alice@contoso.com> SIZE={size} XOORG=contoso.onmicrosoft.com"
        )]
    );
    assert_eq!(
        say(&mut c, "250 2.1.0 Sender OK\r\n"),
        ["RCPT TO:<bob@contoso.com>"]
    );
    let bdat = say(&mut c, "250 2.1.5 Recipient OK\r\n");
    assert!(bdat[0].starts_with(&format!("BDAT {size} LAST\r\nFrom: alice@contoso.com")));
    assert!(bdat[0].contains("X-MS-Exchange-CrossPremises-AuthAs: Internal"));
    assert_eq!(
        say(
            &mut c,
            "250 2.6.0 <1@x> [InternalId=1, Hostname=EXCH01] Queued mail for delivery\r\n"
        ),
        ["QUIT"]
    );
    assert_eq!(
        say(&mut c, "221 2.0.0 Service closing transmission channel\r\n"),
        ["<close>"]
    );
    assert!(c.is_closed());
    let a = c.finish();
    assert!(a.outcome.is_delivered());
    let tls = a.tls.unwrap();
    assert!(tls.client_certificate_requested);
    assert_eq!(a.source.unwrap().to_string(), "127.0.0.1:50000");
    assert!(a.transcript.iter().any(|l| l.text == "STARTTLS"));
}

#[test]
fn required_tls_without_starttls_defers_with_5_7_3() {
    let mut c = connected(OutboundTlsSettings::EncryptionOnly);
    say(&mut c, "220 mail.contoso.com ESMTP\r\n");
    assert_eq!(say(&mut c, EHLO_AFTER), ["QUIT"]);
    assert_eq!(say(&mut c, "221 bye\r\n"), ["<close>"]);
    let led = led_text(c);
    assert!(
        led.starts_with("450 4.4.317 Cannot connect to remote server [Message=451 5.7.3 STARTTLS is required to send mail] [LastAttemptedServerName=mail.contoso.com] [LastAttemptedIP=127.0.0.10:25] [SmtpSecurity=-2;-2] [DM6NAM12FT012.eop-nam12.prod.protection.outlook.com 2026-05-02T06:30:00.000Z 08DE8A01A0B45E1B]"),
        "{led}"
    );
}

#[test]
fn opportunistic_delivers_in_clear_with_data() {
    let mut c = connected(OutboundTlsSettings::Opportunistic);
    say(&mut c, "220 postfix ESMTP\r\n");
    assert_eq!(
        say(&mut c, "250-postfix\r\n250 PIPELINING\r\n"),
        ["MAIL FROM:<alice@contoso.com>"]
    );
    say(&mut c, "250 ok\r\n");
    assert_eq!(say(&mut c, "250 ok\r\n"), ["DATA"]);
    let body = say(&mut c, "354 go ahead\r\n");
    assert!(body[0].contains("\r\n..dot\r\n") && body[0].ends_with("\r\n."));
    assert_eq!(say(&mut c, "250 2.0.0 Ok: queued\r\n"), ["QUIT"]);
    say(&mut c, "221 bye\r\n");
    assert!(c.finish().tls.is_none());
}

#[test]
fn domain_validation_reports_the_name_before_the_chain() {
    let mut c = up_to_handshake(OutboundTlsSettings::DomainValidation);
    let exch = cert("EXCH01", true);
    c.handle_tls(t0(), established(&exch, ChainStatus::UntrustedRoot));
    assert_eq!(
        drain(&mut c),
        ["<close>"],
        "no QUIT after a refused certificate"
    );
    let led = led_text(c);
    assert!(led.contains(&format!(
        "[Message=SubjectMismatch Expected Subject: mail.contoso.com. Presented Subject: CN=EXCH01. Thumbprint: {}.] [LastAttemptedServerName=mail.contoso.com] [LastAttemptedIP=127.0.0.10:25] [SmtpSecurity=-1;-1]",
        exch.facts.thumbprint
    )), "{led}");
}

#[test]
fn certificate_validation_checks_the_chain_only() {
    let expired = cert("other.example", false);
    let mut c = up_to_handshake(OutboundTlsSettings::CertificateValidation);
    c.handle_tls(t0(), established(&expired, ChainStatus::Expired));
    assert!(led_text(c).contains("[Message=CertificateExpired Expected Subject: mail.contoso.com. Presented Subject: CN=other.example."));
    let mut c = up_to_handshake(OutboundTlsSettings::CertificateValidation);
    c.handle_tls(t0(), established(&expired, ChainStatus::UntrustedRoot));
    assert!(led_text(c).contains("[Message=UntrustedRoot Expected Subject"));
    let mut c = up_to_handshake(OutboundTlsSettings::CertificateValidation);
    c.handle_tls(t0(), established(&expired, ChainStatus::Valid));
    assert_eq!(
        drain(&mut c),
        ["EHLO NAM12-DM6-obe.outbound.protection.outlook.com"]
    );
    // EncryptionOnly takes a self-signed certificate with any name
    let mut c = up_to_handshake(OutboundTlsSettings::EncryptionOnly);
    c.handle_tls(
        t0(),
        established(&cert("EXCH01", true), ChainStatus::UntrustedRoot),
    );
    assert_eq!(
        drain(&mut c),
        ["EHLO NAM12-DM6-obe.outbound.protection.outlook.com"]
    );
}

#[test]
fn handshake_failure_and_server_replies() {
    let mut c = up_to_handshake(OutboundTlsSettings::DomainValidation);
    c.handle_tls(t0(), TlsOutcome::Failed(TlsFailure::SocketError));
    assert!(
        led_text(c).contains("[Message=451 4.4.0 TLS negotiation failed with error SocketError]")
    );

    let mut c = connected(OutboundTlsSettings::Opportunistic);
    say(&mut c, "220 x\r\n");
    say(&mut c, "250 x\r\n");
    assert_eq!(
        say(
            &mut c,
            "452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Queue])\r\n"
        ),
        ["QUIT"]
    );
    assert!(led_text(c).starts_with("450 4.4.317 Cannot connect to remote server [Message=452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Queue])] [LastAttemptedServerName="));

    let mut c = connected(OutboundTlsSettings::Opportunistic);
    say(&mut c, "220 x\r\n");
    say(&mut c, "250 x\r\n");
    say(&mut c, "250 ok\r\n");
    assert_eq!(say(&mut c, "550 5.1.1 User unknown\r\n"), ["QUIT"]);
    match c.finish().outcome {
        AttemptOutcome::Failed { led } => assert_eq!(led.to_string(), "550 5.1.1 User unknown"),
        other => panic!("{other:?}"),
    }

    let mut c = connected(OutboundTlsSettings::Opportunistic);
    assert_eq!(
        say(&mut c, "421 4.3.2 Service not available\r\n"),
        ["<close>"]
    );
    assert!(led_text(c).contains("[Message=421 4.3.2 Service not available]"));
}

#[test]
fn drops_timeouts_and_connect_failures() {
    let mut c = connected(OutboundTlsSettings::DomainValidation);
    say(&mut c, "220 x\r\n");
    c.handle_eof(t0());
    assert_eq!(drain(&mut c), ["<close>"]);
    assert!(led_text(c).starts_with(
        "450 4.4.318 Connection was closed abruptly [LastAttemptedServerName=mail.contoso.com]"
    ));

    let mut c = connected(OutboundTlsSettings::DomainValidation);
    let deadline = c.poll_timeout().unwrap();
    assert_eq!(deadline, t0() + time::Duration::minutes(10));
    c.handle_timeout(deadline - time::Duration::seconds(1));
    assert!(!c.is_closed());
    c.handle_timeout(deadline);
    assert_eq!(drain(&mut c), ["<close>"]);
    assert!(led_text(c).contains("4.4.318"));

    let mut c = ExoClient::new(
        params(OutboundTlsSettings::DomainValidation),
        message(),
        t0(),
    );
    c.handle_connect_failed(t0(), ConnectFailure::Refused);
    assert!(drain(&mut c).is_empty(), "nothing to close");
    assert!(c.is_closed());
    let a = c.finish();
    assert!(a.source.is_none());
    assert!(a.outcome.led().unwrap().to_string().starts_with("450 4.4.316 Connection refused [Message=Socket error code 10061] [LastAttemptedServerName=mail.contoso.com] [LastAttemptedIP=127.0.0.10:25]"));

    let mut c = ExoClient::new(
        params(OutboundTlsSettings::DomainValidation),
        message(),
        t0(),
    );
    c.handle_connect_failed(t0(), ConnectFailure::TimedOut);
    assert!(
        led_text(c)
            .starts_with("450 4.4.315 Connection timed out [Message=Socket error code 10060]")
    );

    let mut c = connected(OutboundTlsSettings::DomainValidation);
    assert_eq!(say(&mut c, "HTTP/1.1 400 Bad Request\r\n"), ["<close>"]);
    assert!(led_text(c).contains("not RFC conformant"));
}
