//! The sender's driver against a real rustls server in-process, over TCP on loopback and over a
//! memory duplex: every TLS outcome the sender reports (established, each SChannel failure, a
//! remote certificate the TlsAuthLevel refuses, a dropped or garbled handshake).

use std::sync::Arc;

use crate::support::tls_server::{self, AfterStartTls, ServerOpts};
use hybridlab_labkit::clock::LabClock;
use hybridlab_labkit::pki::{CertAuthority, CertSpec, IssuedCert};
use hybridlab_model::exchange::{SecurityStatus, TlsAuthLevel};
use hybridlab_onprem::certstore::{CertStore, fixtures};
use hybridlab_onprem::connector::SendConnector;
use hybridlab_onprem::message::OutboundMessage;
use hybridlab_onprem::resolver::Target;
use hybridlab_onprem::schannel::SchannelSettings;
use hybridlab_onprem::selection::SelectionSettings;
use hybridlab_onprem::sender::{
    ConnectOptions, DeliveryOutcome, FailureKind, SenderMachine, SessionConfig, SessionReport,
    deliver_tcp, run_session,
};
use hybridlab_onprem::server::ServerIdentity;
use time::OffsetDateTime;

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

struct Eop {
    root: CertAuthority,
    leaf: IssuedCert,
}

fn eop_pki(cn: &str, at: OffsetDateTime) -> Eop {
    let root = CertAuthority::root(&CertSpec::authority(
        "CN=Lab EOP Root, O=hybridlab, C=US".parse().unwrap(),
        at,
    ))
    .unwrap();
    let mut spec = CertSpec::leaf(cn, at);
    spec.dns_names.push(format!("*.{cn}"));
    let leaf = root.issue(&spec).unwrap();
    Eop { root, leaf }
}

fn opts(eop: &Eop, store: &CertStore) -> ServerOpts {
    let mut client_roots = rustls::RootCertStore::empty();
    for r in store.roots() {
        client_roots.add(r.der.clone()).unwrap();
    }
    ServerOpts {
        cert: Some((vec![eop.leaf.der.clone()], eop.leaf.key_pkcs8.clone())),
        client_roots: Some(client_roots),
        ..Default::default()
    }
}

fn store(keyless_first: bool, eop: &Eop, trust_eop: bool) -> CertStore {
    let mut s = CertStore::build(&fixtures::classic_twins(keyless_first), t0()).unwrap();
    if trust_eop {
        s.add_trusted_root("eop-root", eop.root.cert.der.clone())
            .unwrap();
    }
    s
}

fn pinned() -> SendConnector {
    SendConnector::hybrid(
        "contoso",
        Some(format!(
            "<I>{}<S>{}",
            fixtures::ISSUING_CA,
            fixtures::CONTOSO_SUBJECT
        )),
    )
}

fn session(
    connector: SendConnector,
    store: CertStore,
    addr: std::net::SocketAddr,
) -> SessionConfig {
    SessionConfig {
        connector,
        server: ServerIdentity::default(),
        store: Arc::new(store),
        selection: SelectionSettings::default(),
        schannel: SchannelSettings::default(),
        session_id: "08D6CEB1A2F3C4D5".into(),
        target: Target {
            host: "mail.protection.outlook.com".into(),
            addr,
            unreachable: None,
        },
        next_hop_domain: "contoso.mail.onmicrosoft.com".into(),
        skip_starttls: false,
    }
}

fn msg() -> OutboundMessage {
    OutboundMessage::simple(
        1,
        "alice@contoso.com",
        "bob@contoso.mail.onmicrosoft.com",
        t0(),
    )
}

async fn send(cfg: SessionConfig, clock: LabClock) -> SessionReport {
    deliver_tcp(cfg, vec![msg()], &clock, ConnectOptions::default())
        .await
        .unwrap()
}

fn failure(r: &SessionReport) -> hybridlab_onprem::sender::SessionFailure {
    match r.outcome() {
        DeliveryOutcome::SessionFailed(f) => f,
        other => panic!(
            "expected a session failure, got {other:?}\n{}",
            r.transcript()
        ),
    }
}

#[tokio::test]
async fn keyed_twin_delivers_and_presents_the_keyed_certificate() {
    let eop = eop_pki("mail.protection.outlook.com", t0());
    let st = store(false, &eop, true);
    let keyed = st.entry("keyed").unwrap().facts.thumbprint.clone();
    let (addr, sink) = tls_server::start(opts(&eop, &st)).await;
    let r = send(session(pinned(), st, addr), LabClock::starting_at(t0())).await;
    let DeliveryOutcome::Delivered(reply) = r.outcome() else {
        panic!("{}", r.transcript())
    };
    assert!(reply.text().starts_with("2.6.0"), "{reply}");
    let cap = sink.wait(0).await;
    assert!(cap.tls);
    let client =
        hybridlab_model::x509::CertFacts::from_der(cap.client_cert.as_ref().unwrap()).unwrap();
    assert_eq!(client.thumbprint, keyed);
    assert_eq!(
        cap.commands,
        ["EHLO", "STARTTLS", "EHLO", "MAIL", "RCPT", "BDAT", "QUIT"]
    );
    let t = r.transcript();
    assert!(t.contains(&format!("*,{keyed},Certificate thumbprint")));
    assert!(t.contains("*,,Remote certificate"));
    assert!(t.contains("*,CN=mail.protection.outlook.com,Certificate subject"));
    assert!(
        t.contains("SP_PROT_TLS1_2_CLIENT"),
        "Exchange negotiates TLS 1.2: {t}"
    );
    assert!(
        std::str::from_utf8(&cap.messages[0])
            .unwrap()
            .contains("X-MS-Exchange-CrossPremises-AuthAs")
    );
    assert_eq!(
        r.tls.as_ref().unwrap().chain,
        hybridlab_onprem::sender::RemoteChainStatus::Trusted
    );
}

#[tokio::test]
async fn keyless_twin_first_sends_no_tls_bytes() {
    let eop = eop_pki("mail.protection.outlook.com", t0());
    let st = store(true, &eop, true);
    let keyless = st.entry("twin-nokey").unwrap().facts.thumbprint.clone();
    let (addr, sink) = tls_server::start(opts(&eop, &st)).await;
    let r = send(session(pinned(), st, addr), LabClock::starting_at(t0())).await;
    let f = failure(&r);
    assert_eq!(
        f.kind,
        FailureKind::Tls {
            status: SecurityStatus::NoCredentials
        }
    );
    assert_eq!(f.ack.one_line(), "421 4.4.1 Connection timed out");
    let t = r.transcript();
    assert!(t.contains(&format!("*,{keyless},Certificate thumbprint")));
    assert!(
        t.ends_with(
            "*,,TLS negotiation failed with error NoCredentials\n2026-05-02T06:30:00.000Z -,,Local\n"
        ) || t.contains("*,,TLS negotiation failed with error NoCredentials\n")
    );
    // the server saw STARTTLS then a close, never a handshake
    let cap = sink.wait(0).await;
    assert!(!cap.tls);
}

#[tokio::test]
async fn untrusted_root_with_certificate_validation() {
    let eop = eop_pki("mail.protection.outlook.com", t0());
    let st = store(false, &eop, false);
    let (addr, _) = tls_server::start(opts(&eop, &st)).await;
    let mut c = pinned();
    c.tls_auth_level = Some(TlsAuthLevel::CertificateValidation);
    c.tls_domain = None;
    let r = send(
        session(c.clone(), st.clone(), addr),
        LabClock::starting_at(t0()),
    )
    .await;
    let f = failure(&r);
    assert_eq!(f.ack.one_line(), "454 4.7.5 Certificate validation failure");
    assert_eq!(
        f.kind,
        FailureKind::CertificateValidation {
            status: "UntrustedRoot".into()
        }
    );
    assert!(
        r.transcript()
            .contains("Remote certificate validation failed with status UntrustedRoot")
    );
    // EncryptionOnly: the same untrusted chain is accepted, and still recorded
    c.tls_auth_level = Some(TlsAuthLevel::EncryptionOnly);
    let r = send(session(c, st, addr), LabClock::starting_at(t0())).await;
    assert!(
        matches!(r.outcome(), DeliveryOutcome::Delivered(_)),
        "{}",
        r.transcript()
    );
    assert_eq!(
        r.tls.unwrap().chain,
        hybridlab_onprem::sender::RemoteChainStatus::UntrustedRoot
    );
}

#[tokio::test]
async fn wrong_name_with_domain_validation() {
    let eop = eop_pki("mx.fabrikam.com", t0());
    let st = store(false, &eop, true);
    let (addr, _) = tls_server::start(opts(&eop, &st)).await;
    let r = send(session(pinned(), st, addr), LabClock::starting_at(t0())).await;
    assert_eq!(
        failure(&r).kind,
        FailureKind::CertificateValidation {
            status: "SubjectMismatch".into()
        }
    );
}

#[tokio::test]
async fn expired_at_virtual_time() {
    // EOP's certificate expired 35 days before the lab time; validity is judged at lab time
    let eop = eop_pki(
        "mail.protection.outlook.com",
        t0() - time::Duration::days(400),
    );
    let st = store(false, &eop, true);
    let (addr, _) = tls_server::start(opts(&eop, &st)).await;
    let r = send(session(pinned(), st, addr), LabClock::starting_at(t0())).await;
    assert_eq!(
        failure(&r).kind,
        FailureKind::CertificateValidation {
            status: "Expired".into()
        }
    );
}

#[tokio::test]
async fn no_common_protocol_version_is_algorithm_mismatch() {
    let eop = eop_pki("mail.protection.outlook.com", t0());
    let st = store(false, &eop, true);
    let mut o = opts(&eop, &st);
    o.versions = vec![&rustls::version::TLS13];
    let (addr, _) = tls_server::start(o).await;
    let r = send(
        session(pinned(), st.clone(), addr),
        LabClock::starting_at(t0()),
    )
    .await;
    let f = failure(&r);
    assert_eq!(
        f.kind,
        FailureKind::Tls {
            status: SecurityStatus::AlgorithmMismatch
        }
    );
    assert_eq!(f.ack.one_line(), "421 4.4.1 Connection timed out");
    // and with TLS 1.3 enabled on the client the same server works
    let mut cfg = session(pinned(), st, addr);
    cfg.schannel = SchannelSettings {
        tls13: true,
        ..Default::default()
    };
    let r = send(cfg, LabClock::starting_at(t0())).await;
    assert!(
        matches!(r.outcome(), DeliveryOutcome::Delivered(_)),
        "{}",
        r.transcript()
    );
    assert!(r.transcript().contains("SP_PROT_TLS1_3_CLIENT"));
}

#[tokio::test]
async fn no_common_cipher_is_algorithm_mismatch() {
    let eop = eop_pki("mail.protection.outlook.com", t0());
    let st = store(false, &eop, true);
    let (addr, _) = tls_server::start(opts(&eop, &st)).await;
    let mut cfg = session(pinned(), st, addr);
    // the lab's leaf certificates are RSA, as EOP's: leave only ECDSA suites
    cfg.schannel.cipher_suites = Some(vec!["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384".into()]);
    let r = send(cfg, LabClock::starting_at(t0())).await;
    assert_eq!(
        failure(&r).kind,
        FailureKind::Tls {
            status: SecurityStatus::AlgorithmMismatch
        }
    );
}

#[tokio::test]
async fn reset_during_handshake_is_socket_error() {
    let eop = eop_pki("mail.protection.outlook.com", t0());
    let st = store(false, &eop, true);
    let mut o = opts(&eop, &st);
    o.after_starttls = AfterStartTls::Reset;
    let (addr, _) = tls_server::start(o).await;
    let r = send(session(pinned(), st, addr), LabClock::starting_at(t0())).await;
    let f = failure(&r);
    assert_eq!(
        f.kind,
        FailureKind::Tls {
            status: SecurityStatus::SocketError
        }
    );
    assert_eq!(
        f.ack.one_line(),
        "421 4.4.2 Connection dropped due to SocketError"
    );
    assert!(f.is_communication_error());
    assert!(
        r.transcript().ends_with("-,,Remote(SocketError)\n"),
        "{}",
        r.transcript()
    );
}

#[tokio::test]
async fn plaintext_garbage_during_handshake_is_illegal_message() {
    let eop = eop_pki("mail.protection.outlook.com", t0());
    let st = store(false, &eop, true);
    let mut o = opts(&eop, &st);
    o.after_starttls = AfterStartTls::Garbage;
    let (addr, _) = tls_server::start(o).await;
    let r = send(session(pinned(), st, addr), LabClock::starting_at(t0())).await;
    assert_eq!(
        failure(&r).kind,
        FailureKind::Tls {
            status: SecurityStatus::IllegalMessage
        }
    );
}

#[tokio::test]
async fn source_address_bind_and_refused_connect() {
    let eop = eop_pki("mail.protection.outlook.com", t0());
    let st = store(false, &eop, true);
    let (addr, sink) = tls_server::start(opts(&eop, &st)).await;
    let clock = LabClock::starting_at(t0());
    let r = deliver_tcp(
        session(pinned(), st, addr),
        vec![msg()],
        &clock,
        ConnectOptions {
            source_ip: Some("127.0.0.2".parse().unwrap()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(matches!(r.outcome(), DeliveryOutcome::Delivered(_)));
    assert_eq!(r.log.local.unwrap().ip().to_string(), "127.0.0.2");
    assert_eq!(
        sink.wait(0).await.peer.unwrap().ip().to_string(),
        "127.0.0.2"
    );
    let st = store(false, &eop, true);
    assert!(
        deliver_tcp(
            session(pinned(), st, addr),
            vec![msg()],
            &clock,
            ConnectOptions {
                source_ip: Some("10.0.0.5".parse().unwrap()),
                ..Default::default()
            }
        )
        .await
        .is_err()
    );
    // a port nobody listens on
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let st = store(false, &eop, true);
    let r = send(session(pinned(), st, closed), clock).await;
    let f = failure(&r);
    assert_eq!(f.ack.one_line(), "421 4.2.1 Unable to connect");
    assert!(f.is_communication_error());
}

#[tokio::test(start_paused = true)]
async fn memory_duplex_and_virtual_inactivity_timeout() {
    let eop = eop_pki("mail.protection.outlook.com", t0());
    let st = store(false, &eop, true);
    let o = opts(&eop, &st);
    let (client, server) = tokio::io::duplex(64 * 1024);
    let sink: tls_server::Sink = Arc::default();
    tokio::spawn(tls_server::serve(server, None, o, sink.clone()));
    let clock = LabClock::starting_at(t0());
    let cfg = session(pinned(), st, "127.0.0.1:25".parse().unwrap());
    let m = SenderMachine::new(cfg, vec![msg()], clock.now());
    let r = run_session(
        m,
        client,
        "127.0.0.1:40000".parse().unwrap(),
        &clock,
        10_000,
    )
    .await;
    assert!(
        matches!(r.outcome(), DeliveryOutcome::Delivered(_)),
        "{}",
        r.transcript()
    );

    // a server that never answers: the connector's inactivity timeout (10 min) fires on the virtual clock
    let (client, _server) = tokio::io::duplex(1024);
    let st = store(false, &eop, true);
    let cfg = session(pinned(), st, "127.0.0.1:25".parse().unwrap());
    let m = SenderMachine::new(cfg, vec![msg()], clock.now());
    let start = clock.now();
    let r = run_session(
        m,
        client,
        "127.0.0.1:40001".parse().unwrap(),
        &clock,
        10_000,
    )
    .await;
    assert_eq!(failure(&r).kind, FailureKind::TimedOut);
    assert_eq!(clock.now() - start, time::Duration::minutes(10));
}
