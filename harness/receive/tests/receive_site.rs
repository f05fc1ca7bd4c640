//! The receive site over in-memory duplex streams, with a small in-process SMTP client (rustls):
//! two servers behind one name (one presents its self-signed certificate), SMTP inspection
//! masking STARTTLS, an allow-list refusing a source, a TLS-terminating device with an expired
//! certificate, a TLS 1.0/1.1-only server, and the idle timeout on the paused clock.

use std::net::SocketAddr;
use std::sync::Arc;

use hybridlab_artefacts::protocol_log::SessionEvent;
use hybridlab_labkit::clock::LabClock;
use hybridlab_model::exchange::SecurityStatus;
use hybridlab_onprem::certstore::{CertStore, StoreDescription, TimeSpec, fixtures};
use hybridlab_receive::perimeter::{Perimeter, TlsDevice};
use hybridlab_receive::server::ReceiveServer;
use hybridlab_receive::session::CloseReason;
use hybridlab_receive::site::ReceiveSite;
use hybridlab_receive::tls::ServerTlsVersions;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, DuplexStream};

fn clock() -> LabClock {
    LabClock::starting_at(time::macros::datetime!(2026-05-02 06:30 UTC))
}

fn eop() -> SocketAddr {
    "40.107.22.55:57811".parse().unwrap()
}

fn local() -> SocketAddr {
    "10.0.0.10:25".parse().unwrap()
}

/// A server `name` whose store holds the lab CA, `mail.contoso.com` and its self-signed
/// certificate; `pinned` pins the connector to `mail.contoso.com` (else the FQDN search runs for
/// `name.contoso.com` and ends at the self-signed one).
fn server(name: &str, pinned: bool, clock: &LabClock) -> ReceiveServer {
    let fqdn = format!("{name}.contoso.com");
    let store = Arc::new(
        CertStore::build(
            &StoreDescription {
                authorities: fixtures::authorities(),
                certificates: vec![
                    fixtures::exchange_self_signed(name, &fqdn),
                    fixtures::contoso("hybrid"),
                ],
            },
            clock.now(),
        )
        .unwrap(),
    );
    let mut s = ReceiveServer::new(name, &fqdn, Arc::clone(&store));
    if pinned {
        let pin = store
            .entry("hybrid")
            .unwrap()
            .x509_identifier()
            .parse()
            .unwrap();
        s.connectors[0] = s.connectors[0]
            .clone()
            .hybrid(pin, Some("mail.contoso.com"));
    }
    s
}

/// The lab root every store above shares (the fixtures are regenerated per store, so each
/// store has its own root: take it from the server the client talks to).
fn roots(s: &ReceiveServer) -> rustls::RootCertStore {
    s.store.root_cert_store()
}

async fn reply<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> String {
    let mut all = String::new();
    for _ in 0..64 {
        let mut line = String::new();
        if r.read_line(&mut line).await.unwrap() == 0 {
            return all;
        }
        all.push_str(&line);
        if line.as_bytes().get(3) == Some(&b' ') {
            break;
        }
    }
    all
}

async fn say<S: AsyncRead + AsyncWrite + Unpin>(s: &mut BufReader<S>, line: &str) -> String {
    s.get_mut().write_all(line.as_bytes()).await.unwrap();
    reply(s).await
}

/// Banner, EHLO and STARTTLS in plaintext, then a TLS handshake verifying `mail.contoso.com`.
async fn starttls(
    client: DuplexStream,
    roots: rustls::RootCertStore,
) -> Result<tokio_rustls::client::TlsStream<DuplexStream>, std::io::Error> {
    let mut c = BufReader::new(client);
    assert!(reply(&mut c).await.starts_with("220 "));
    let ehlo = say(&mut c, "EHLO eop\r\n").await;
    assert!(ehlo.contains("STARTTLS"), "{ehlo}");
    assert_eq!(
        say(&mut c, "STARTTLS\r\n").await,
        "220 2.0.0 SMTP server ready\r\n"
    );
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect("mail.contoso.com".try_into().unwrap(), c.into_inner())
        .await
}

#[tokio::test]
async fn second_server_presents_its_self_signed_certificate() {
    let clock = clock();
    let good = server("EXCH01", true, &clock);
    let bad = server("EXCH02", false, &clock);
    let (good_roots, bad_roots) = (roots(&good), roots(&bad));
    let site = Arc::new(ReceiveSite::start(vec![good, bad], Perimeter::open(), clock, 3).unwrap());
    for (i, r) in [good_roots, bad_roots].into_iter().enumerate() {
        let (client, server_side) = tokio::io::duplex(64 * 1024);
        let s = Arc::clone(&site);
        let serving =
            tokio::spawn(async move { s.serve_stream(server_side, eop(), local()).await });
        let result = starttls(client, r).await;
        if i == 0 {
            let mut tls = BufReader::new(result.expect("EXCH01 presents mail.contoso.com"));
            assert!(
                say(&mut tls, "EHLO eop\r\n")
                    .await
                    .contains("250-mail.contoso.com Hello")
            );
            say(&mut tls, "QUIT\r\n").await;
        } else {
            let err = result.expect_err("EXCH02 presents CN=EXCH02");
            assert!(err.to_string().contains("certificate"), "{err}");
        }
        assert!(serving.await.unwrap());
    }
    let records = site.records();
    assert_eq!(records.sessions.len(), 2);
    let by = |name: &str| records.sessions.iter().find(|s| s.server == name).unwrap();
    assert_eq!(by("EXCH01").close_reason, CloseReason::Quit);
    let sent = by("EXCH02").events.iter().find_map(|e| match &e.event {
        SessionEvent::Certificate { cert, .. } => Some(cert.subject.clone()),
        _ => None,
    });
    assert_eq!(sent.as_deref(), Some("CN=EXCH02"));
    assert_eq!(by("EXCH02").close_reason, CloseReason::TlsFailed);
    let files = site.protocol_log_files();
    assert_eq!(files.len(), 2);
    assert!(
        files[1].1[0]
            .content
            .contains("EXCH02\\Default Frontend EXCH02")
    );
}

#[tokio::test]
async fn inspection_masks_starttls_and_allow_list_refuses() {
    let clock = clock();
    let perimeter = Perimeter {
        allow: vec![
            "40.92.0.0/15".parse().unwrap(),
            "40.107.0.0/16".parse().unwrap(),
        ],
        smtp_inspection: true,
        ..Perimeter::default()
    };
    let site = Arc::new(
        ReceiveSite::start(vec![server("EXCH01", true, &clock)], perimeter, clock, 1).unwrap(),
    );
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    let s = Arc::clone(&site);
    let serving = tokio::spawn(async move { s.serve_stream(server_side, eop(), local()).await });
    let mut c = BufReader::new(client);
    reply(&mut c).await;
    let ehlo = say(&mut c, "EHLO eop\r\n").await;
    assert!(
        ehlo.contains("250-XXXXXXXA\r\n") && !ehlo.contains("STARTTLS"),
        "{ehlo}"
    );
    assert_eq!(
        say(&mut c, "STARTTLS\r\n").await,
        "500 5.3.3 Unrecognized command\r\n"
    );
    say(&mut c, "QUIT\r\n").await;
    assert!(serving.await.unwrap());

    let (client, server_side) = tokio::io::duplex(1024);
    let refused = site
        .serve_stream(server_side, "52.100.1.1:4000".parse().unwrap(), local())
        .await;
    assert!(!refused);
    let mut c = BufReader::new(client);
    assert_eq!(reply(&mut c).await, "", "a refused source reads nothing");
    let records = site.records();
    assert_eq!(records.refused.len(), 1);
    assert_eq!(records.sessions.len(), 1);
    assert!(
        records.sessions[0]
            .events
            .iter()
            .any(|e| matches!(&e.event, SessionEvent::ReceivedLine { line } if line == "XXXXXXXX"))
    );
}

#[tokio::test]
async fn tls_device_with_an_expired_certificate_leaves_no_server_session() {
    let clock = clock();
    let mut expired = fixtures::contoso("device");
    expired.not_before = Some(TimeSpec::Days(-400));
    expired.not_after = Some(TimeSpec::Days(-3));
    let device_store = Arc::new(
        CertStore::build(
            &StoreDescription {
                authorities: fixtures::authorities(),
                certificates: vec![expired],
            },
            clock.now(),
        )
        .unwrap(),
    );
    let roots = device_store.root_cert_store();
    let perimeter = Perimeter {
        tls_device: Some(TlsDevice {
            store: device_store,
            certificate: "device".into(),
            hostname: "fw.contoso.com".into(),
            inside_address: "10.0.0.1".parse().unwrap(),
        }),
        ..Perimeter::default()
    };
    let site = Arc::new(
        ReceiveSite::start(vec![server("EXCH01", true, &clock)], perimeter, clock, 1).unwrap(),
    );
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    let s = Arc::clone(&site);
    let serving = tokio::spawn(async move { s.serve_stream(server_side, eop(), local()).await });
    let mut c = BufReader::new(client);
    reply(&mut c).await;
    assert!(say(&mut c, "EHLO eop\r\n").await.contains("STARTTLS"));
    say(&mut c, "STARTTLS\r\n").await;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let err = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect("mail.contoso.com".try_into().unwrap(), c.into_inner())
        .await
        .expect_err("the device's certificate is expired");
    assert!(err.to_string().to_lowercase().contains("expired"), "{err}");
    serving.await.unwrap();
    let records = site.records();
    assert!(
        records.sessions.is_empty(),
        "Exchange never saw the session"
    );
    assert_eq!(records.device_sessions.len(), 1);
    assert!(!records.device_sessions[0].handshake_completed);
}

#[tokio::test]
async fn legacy_only_server_refuses_the_handshake() {
    let clock = clock();
    let mut s = server("EXCH01", true, &clock);
    s.settings.tls = ServerTlsVersions::legacy_only();
    let r = roots(&s);
    let site = Arc::new(ReceiveSite::start(vec![s], Perimeter::open(), clock, 1).unwrap());
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    let st = Arc::clone(&site);
    let serving = tokio::spawn(async move { st.serve_stream(server_side, eop(), local()).await });
    let err = starttls(client, r).await.expect_err("no common version");
    assert!(err.to_string().contains("ProtocolVersion"), "{err}");
    serving.await.unwrap();
    let rec = &site.records().sessions[0];
    assert_eq!(rec.close_reason, CloseReason::TlsFailed);
    assert!(rec.events.iter().any(|e| matches!(&e.event, SessionEvent::TlsFailed { status } if *status == SecurityStatus::AlgorithmMismatch)));
}

#[tokio::test(start_paused = true)]
async fn idle_client_is_timed_out_on_the_lab_clock() {
    let clock = clock();
    let site = Arc::new(
        ReceiveSite::start(
            vec![server("EXCH01", true, &clock)],
            Perimeter::open(),
            clock,
            1,
        )
        .unwrap(),
    );
    let (client, server_side) = tokio::io::duplex(64 * 1024);
    let s = Arc::clone(&site);
    let serving = tokio::spawn(async move { s.serve_stream(server_side, eop(), local()).await });
    let mut c = BufReader::new(client);
    reply(&mut c).await;
    assert_eq!(
        reply(&mut c).await,
        "451 4.7.0 Timeout waiting for client input\r\n"
    );
    serving.await.unwrap();
    let rec = &site.records().sessions[0];
    assert_eq!(rec.close_reason, CloseReason::IdleTimeout);
    assert_eq!(rec.ended_at - rec.started_at, time::Duration::minutes(5));
}
