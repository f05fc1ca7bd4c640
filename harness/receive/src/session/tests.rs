//! Dialogue tests of the receiver core: bytes in, replies and RECV-log events out.

use std::sync::Arc;

use hybridlab_artefacts::protocol_log::{CertBlockStyle, SessionEvent, session_records};
use hybridlab_model::core::ProtocolCore;
use hybridlab_model::exchange::SecurityStatus;
use proptest::prelude::*;
use time::OffsetDateTime;

use super::*;
use crate::server::{BackPressure, EhloLogLayout, ReceiveServer, RunningServer};
use crate::tls::TlsPlan;
use hybridlab_onprem::certstore::{CertDescription, CertStore, StoreDescription, fixtures};

fn now() -> OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30 UTC)
}

fn eop_client() -> CertDescription {
    let mut c = CertDescription::new(
        "eop",
        "CN=mail.protection.outlook.com, O=Microsoft Corporation, L=Redmond, S=Washington, C=US",
        Some("issuing"),
    )
    .unwrap();
    c.dns_names = Some(vec![
        "mail.protection.outlook.com".into(),
        "*.mail.protection.outlook.com".into(),
    ]);
    c
}

fn store() -> Arc<CertStore> {
    Arc::new(
        CertStore::build(
            &StoreDescription {
                authorities: fixtures::authorities(),
                certificates: vec![
                    fixtures::exchange_self_signed("EXCH01", "EXCH01.contoso.com"),
                    fixtures::contoso("hybrid"),
                    eop_client(),
                ],
            },
            now(),
        )
        .unwrap(),
    )
}

fn server(f: impl FnOnce(&mut ReceiveServer)) -> RunningServer {
    let store = store();
    let pin = store
        .entry("hybrid")
        .unwrap()
        .x509_identifier()
        .parse()
        .unwrap();
    let mut s = ReceiveServer::new("EXCH01", "EXCH01.contoso.com", Arc::clone(&store));
    s.connectors[0] = s.connectors[0]
        .clone()
        .hybrid(pin, Some("mail.contoso.com"));
    s.settings.accepted_domains = vec!["contoso.com".into()];
    f(&mut s);
    s.start(now(), 1).unwrap()
}

fn open(s: &RunningServer) -> ReceiveSession {
    s.open_session(
        "10.0.0.10:25".parse().unwrap(),
        "40.107.22.55:57811".parse().unwrap(),
        now(),
    )
    .unwrap()
}

/// Feeds `input` and returns what the session wrote, as text.
fn say(s: &mut ReceiveSession, input: &str) -> String {
    s.handle_input(now(), input.as_bytes());
    written(s)
}

fn written(s: &mut ReceiveSession) -> String {
    let mut out = String::new();
    while let Some(a) = s.poll_action() {
        if let ReceiveAction::Write(b) = a {
            out.push_str(&String::from_utf8_lossy(&b));
        }
    }
    out
}

fn handshake(s: &mut ReceiveSession, chain: Vec<rustls_pki_types::CertificateDer<'static>>) {
    s.handle_tls_established(
        now(),
        TlsHandshake {
            protocol: "TLSv1_2".into(),
            cipher_suite: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into(),
            kx_group: Some("secp384r1".into()),
            client_chain: chain,
        },
    );
}

#[test]
fn healthy_hybrid_session_from_eop() {
    let srv = server(|_| {});
    let mut s = open(&srv);
    let banner = written(&mut s);
    assert!(
        banner.starts_with("220 mail.contoso.com Microsoft ESMTP MAIL Service ready at Sat, 2 May 2026 06:30:00 +0000\r\n"),
        "{banner}"
    );
    let ehlo = say(
        &mut s,
        "EHLO NAM12-DM6-obe.outbound.protection.outlook.com\r\n",
    );
    assert_eq!(
        ehlo,
        "250-mail.contoso.com Hello [40.107.22.55]\r\n250-SIZE 37748736\r\n250-PIPELINING\r\n250-DSN\r\n250-ENHANCEDSTATUSCODES\r\n250-STARTTLS\r\n250-X-ANONYMOUSTLS\r\n250-AUTH NTLM\r\n250-X-EXPS GSSAPI NTLM\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250-SMTPUTF8\r\n250 XRDST\r\n"
    );
    s.handle_input(now(), b"STARTTLS\r\n");
    assert_eq!(
        s.poll_action(),
        Some(ReceiveAction::Write(
            b"220 2.0.0 SMTP server ready\r\n".to_vec()
        ))
    );
    assert_eq!(
        s.poll_action(),
        Some(ReceiveAction::StartTls(TlsPlan::Handshake))
    );
    assert_eq!(s.poll_timeout(), None);
    let st = store();
    let _ = st;
    let eop = srv.context.store.entry("eop").unwrap();
    let chain = srv.context.store.chain_for(eop);
    handshake(&mut s, chain);
    let ehlo2 = say(
        &mut s,
        "EHLO NAM12-DM6-obe.outbound.protection.outlook.com\r\n",
    );
    assert!(
        !ehlo2.contains("STARTTLS") && !ehlo2.contains("X-ANONYMOUSTLS"),
        "{ehlo2}"
    );
    assert!(
        ehlo2.contains("250-AUTH NTLM LOGIN\r\n") && ehlo2.ends_with("250-XRDST\r\n250 XOORG\r\n"),
        "{ehlo2}"
    );
    let r = say(
        &mut s,
        "MAIL FROM:<alice@contoso.com> SIZE=120 XOORG=contoso.onmicrosoft.com\r\nRCPT TO:<bob@contoso.com>\r\nBDAT 90 LAST\r\nMessage-ID: <m1@exo>\r\nX-MS-Exchange-CrossPremises-AuthAs: Internal\r\nSubject: hi\r\n\r\nhello\r\n",
    );
    assert!(
        r.starts_with(
            "250 2.1.0 Sender OK\r\n250 2.1.5 Recipient OK\r\n250 2.6.0 <m1@exo> [InternalId="
        ),
        "{r}"
    );
    let bye = say(&mut s, "QUIT\r\n");
    assert_eq!(bye, "221 2.0.0 Service closing transmission channel\r\n");
    assert!(s.is_closed());
    let rec = s.finish(now());
    assert_eq!(rec.close_reason, CloseReason::Quit);
    let m = &rec.messages[0];
    assert_eq!(m.cross_premises, CrossPremises::Honoured);
    assert_eq!(m.auth_as, "Internal");
    assert_eq!(m.xoorg.as_deref(), Some("contoso.onmicrosoft.com"));
    assert_eq!(m.transfer, Transfer::Bdat);
    let log = rec.protocol_log.unwrap();
    let lines: Vec<String> = session_records(&log, CertBlockStyle::OneLine)
        .iter()
        .map(|r| format!("{},{},{}", r.event, r.data, r.context))
        .collect();
    let text = lines.join("\n");
    assert!(text.starts_with("+,,\n*,SMTPSubmit SMTPAcceptAnySender SMTPAcceptAuthoritativeDomainSender AcceptRoutingHeaders,Set Session Permissions\n>,220 mail.contoso.com"), "{text}");
    assert!(text.contains(">,250  mail.contoso.com Hello [40.107.22.55] SIZE 37748736 PIPELINING DSN ENHANCEDSTATUSCODES STARTTLS X-ANONYMOUSTLS AUTH NTLM X-EXPS GSSAPI NTLM 8BITMIME BINARYMIME CHUNKING SMTPUTF8 XRDST,"), "{text}");
    assert!(text.contains("*,,TLS protocol SP_PROT_TLS1_2_SERVER negotiation succeeded using bulk encryption algorithm CALG_AES_256"));
    assert!(text.contains("*,,TlsDomainCapabilities='AcceptCloudServicesMail'; Status='Success'; Domain='mail.protection.outlook.com'"), "{text}");
    assert!(text.contains(",receiving message"));
    assert!(text.ends_with("-,,Local"), "{text}");
}

#[test]
fn no_client_certificate_and_old_ehlo_layout() {
    let srv = server(|s| s.settings.ehlo_log_layout = EhloLogLayout::PerKeyword);
    let mut s = open(&srv);
    written(&mut s);
    say(&mut s, "EHLO client\r\nSTARTTLS\r\n");
    handshake(&mut s, Vec::new());
    say(&mut s, "EHLO client\r\n");
    let r = say(
        &mut s,
        "MAIL FROM:<a@fabrikam.com>\r\nRCPT TO:<bob@contoso.com>\r\nDATA\r\n",
    );
    assert!(
        r.ends_with("354 Start mail input; end with <CRLF>.<CRLF>\r\n"),
        "{r}"
    );
    let r = say(
        &mut s,
        "X-MS-Exchange-CrossPremises-AuthAs: Internal\r\n\r\nbody\r\n.\r\n",
    );
    assert!(r.starts_with("250 2.6.0 <"), "{r}");
    let rec = s.finish(now());
    assert_eq!(rec.messages[0].cross_premises, CrossPremises::Dropped);
    assert_eq!(rec.messages[0].auth_as, "Anonymous");
    let infos: Vec<&str> = rec
        .events
        .iter()
        .filter_map(|e| match &e.event {
            SessionEvent::Info { context, .. } => Some(context.as_str()),
            _ => None,
        })
        .collect();
    assert!(infos.contains(&"Client certificate chain validation status: 'EmptyCertificate'"));
    assert!(infos.contains(&"TlsDomainCapabilities='None'; Status='NoRemoteCertificate'"));
    let sent: Vec<&str> = rec
        .events
        .iter()
        .filter_map(|e| match &e.event {
            SessionEvent::Sent { line } => Some(line.as_str()),
            _ => None,
        })
        .collect();
    assert!(sent.contains(&"250-mail.contoso.com Hello [40.107.22.55]"));
    assert!(sent.contains(&"250-STARTTLS"));
    assert!(sent.contains(&"250 XRDST"));
}

#[test]
fn untrusted_client_certificate_earns_nothing_and_logs_11022() {
    let srv = server(|_| {});
    let mut s = open(&srv);
    written(&mut s);
    say(&mut s, "EHLO eop\r\nSTARTTLS\r\n");
    // The self-signed server certificate stands in for a certificate from an unknown CA.
    let mut rogue = eop_client();
    rogue.issuer = None;
    let other = CertStore::build(
        &StoreDescription {
            authorities: Vec::new(),
            certificates: vec![rogue],
        },
        now(),
    )
    .unwrap();
    handshake(&mut s, vec![other.entry("eop").unwrap().der.clone()]);
    let ehlo = say(&mut s, "EHLO eop\r\n");
    assert!(!ehlo.contains("XOORG"));
    let rec = s.finish(now());
    assert_eq!(rec.windows_events[0].id, 11022);
    let tls = rec.tls.unwrap();
    assert!(tls.capabilities.is_empty());
    assert_eq!(
        tls.client_certificate.unwrap().chain_status,
        crate::tls::ChainStatus::UntrustedRoot
    );
}

#[test]
fn stale_pin_removes_starttls_and_require_tls_refuses_mail() {
    let srv = server(|s| {
        s.connectors[0].tls_certificate_name =
            Some("<I>CN=Gone CA<S>CN=mail.contoso.com".parse().unwrap());
        s.connectors[0].require_tls = true;
    });
    assert_eq!(srv.start_events[0].id, 12014);
    let mut s = open(&srv);
    written(&mut s);
    let ehlo = say(&mut s, "EHLO eop\r\n");
    assert!(
        !ehlo.contains("STARTTLS") && !ehlo.contains("X-ANONYMOUSTLS"),
        "{ehlo}"
    );
    assert_eq!(
        say(&mut s, "STARTTLS\r\n"),
        "454 4.7.0 TLS not available due to temporary reason\r\n"
    );
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@b.c>\r\n"),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
}

#[test]
fn back_pressure_refuses_mail_from() {
    let srv = server(|s| s.settings.back_pressure = Some(BackPressure::default()));
    assert!(srv.start_events.iter().any(|e| e.id == 15004));
    assert!(srv.start_events.iter().any(|e| e.id == 15006));
    let mut s = open(&srv);
    written(&mut s);
    say(&mut s, "EHLO eop\r\n");
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@b.c>\r\n"),
        "452 4.3.1 Insufficient system resources (UsedDiskSpace[C:\\Program Files\\Microsoft\\Exchange Server\\V15\\TransportRoles\\data\\Queue])\r\n"
    );
}

#[test]
fn legacy_only_tls_refuses_the_handshake() {
    let srv = server(|s| s.settings.tls = crate::tls::ServerTlsVersions::legacy_only());
    let mut s = open(&srv);
    written(&mut s);
    say(&mut s, "EHLO eop\r\n");
    s.handle_input(now(), b"STARTTLS\r\n");
    let _ = s.poll_action();
    assert_eq!(
        s.poll_action(),
        Some(ReceiveAction::StartTls(TlsPlan::Refuse))
    );
    s.handle_tls_failed(now(), SecurityStatus::AlgorithmMismatch);
    let rec = s.finish(now());
    assert_eq!(rec.close_reason, CloseReason::TlsFailed);
    assert!(rec.events.iter().any(|e| matches!(&e.event, SessionEvent::TlsFailed { status } if *status == SecurityStatus::AlgorithmMismatch)));
}

#[test]
fn idle_timeout_and_too_many_errors() {
    let srv = server(|_| {});
    let mut s = open(&srv);
    written(&mut s);
    let at = s.poll_timeout().unwrap();
    assert_eq!(at, now() + time::Duration::minutes(5));
    s.handle_timeout(at);
    assert_eq!(
        written(&mut s),
        "451 4.7.0 Timeout waiting for client input\r\n"
    );
    assert!(s.is_closed());

    let mut s = open(&srv);
    written(&mut s);
    let out = say(&mut s, &"XXXXXXXX\r\n".repeat(6));
    assert!(
        out.ends_with(
            "421 4.7.0 Too many errors on this connection, closing transmission channel\r\n"
        ),
        "{out}"
    );
    assert!(s.is_closed());
    assert_eq!(s.finish(now()).close_reason, CloseReason::TooManyErrors);
}

#[test]
fn relay_and_limits() {
    let srv = server(|s| s.connectors[0].max_recipients_per_message = 1);
    let mut s = open(&srv);
    written(&mut s);
    say(&mut s, "EHLO eop\r\nMAIL FROM:<a@b.c>\r\n");
    assert_eq!(
        say(&mut s, "RCPT TO:<x@fabrikam.com>\r\n"),
        "550 5.7.54 SMTP; Unable to relay recipient in non-accepted domain\r\n"
    );
    say(&mut s, "RCPT TO:<bob@contoso.com>\r\n");
    assert_eq!(
        say(&mut s, "RCPT TO:<carol@contoso.com>\r\n"),
        "452 4.5.3 Too many recipients\r\n"
    );
    assert_eq!(
        say(&mut s, "MAIL FROM:<a@b.c> SIZE=99999999999\r\n"),
        "503 5.5.2 Sender already specified\r\n"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn arbitrary_client_bytes_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..12),
                                          prefix in proptest::sample::select(vec!["", "EHLO x\r\n", "EHLO x\r\nMAIL FROM:<a@contoso.com>\r\nRCPT TO:<b@contoso.com>\r\nDATA\r\n", "EHLO x\r\nMAIL FROM:<a@contoso.com>\r\nRCPT TO:<b@contoso.com>\r\nBDAT 100\r\n"])) {
        let srv = server(|_| {});
        let mut s = open(&srv);
        let mut t = now();
        s.handle_input(t, prefix.as_bytes());
        for c in &chunks {
            t += time::Duration::seconds(1);
            s.handle_input(t, c);
            while s.poll_action().is_some() {}
            if let Some(at) = s.poll_timeout() {
                prop_assert!(at > t - time::Duration::seconds(1));
            }
        }
        s.handle_eof(t);
        let rec = s.finish(t);
        prop_assert!(rec.close_reason != CloseReason::Open);
    }
}
