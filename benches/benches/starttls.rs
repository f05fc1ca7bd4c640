//! One end-to-end STARTTLS session per iteration against the in-process mock on loopback:
//! TCP connect, banner, EHLO, STARTTLS, a full TLS 1.3 (or 1.2) handshake with a client
//! certificate, EHLO, MAIL, RCPT, DATA with a 1 KB message, QUIT. A plain variant without TLS is
//! the control. Client and mock share one current-thread runtime (one core), so the figure is
//! the cost of both ends.

use std::net::SocketAddr;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hybridlab_labkit::pki::{CertAuthority, CertSpec, IssuedCert};
use mock_eop::config::MockFile;
use mock_eop::{MockEop, MockEopHandle};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

const MESSAGE: &str = "From: alice@contoso.com\r\nTo: someone@example.com\r\nSubject: bench\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n";

async fn reply<S: AsyncRead + Unpin>(r: &mut BufReader<S>, line: &mut String) -> u16 {
    loop {
        line.clear();
        let n = r.read_line(line).await.expect("read");
        assert!(n >= 4, "short or no reply: {line:?}");
        if line.as_bytes()[3] != b'-' {
            return line[..3].parse().expect("code");
        }
    }
}

async fn transaction<S: AsyncRead + AsyncWrite + Unpin>(r: &mut BufReader<S>, line: &mut String) {
    let w = r.get_mut();
    w.write_all(b"EHLO edge01.contoso.com\r\n").await.unwrap();
    assert_eq!(reply(r, line).await, 250);
    let w = r.get_mut();
    w.write_all(b"MAIL FROM:<alice@contoso.com>\r\nRCPT TO:<someone@example.com>\r\nDATA\r\n")
        .await
        .unwrap();
    assert_eq!(reply(r, line).await, 250);
    assert_eq!(reply(r, line).await, 250);
    assert_eq!(reply(r, line).await, 354);
    let w = r.get_mut();
    w.write_all(MESSAGE.as_bytes()).await.unwrap();
    w.write_all(b".\r\nQUIT\r\n").await.unwrap();
    assert_eq!(reply(r, line).await, 250);
    assert_eq!(reply(r, line).await, 221);
}

async fn session(addr: SocketAddr, tls: Option<&TlsConnector>) {
    let stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    assert_eq!(reply(&mut r, &mut line).await, 220);
    let Some(connector) = tls else {
        transaction(&mut r, &mut line).await;
        return;
    };
    r.get_mut()
        .write_all(b"EHLO edge01.contoso.com\r\nSTARTTLS\r\n")
        .await
        .unwrap();
    assert_eq!(reply(&mut r, &mut line).await, 250);
    assert_eq!(reply(&mut r, &mut line).await, 220);
    let stream = r.into_inner();
    let name = ServerName::try_from("mail.protection.outlook.com").unwrap();
    let tls_stream = connector.connect(name, stream).await.unwrap();
    let mut r = BufReader::new(tls_stream);
    transaction(&mut r, &mut line).await;
}

fn connector(mock: &MockEopHandle, cert: &IssuedCert, tls12: bool) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(mock.ca_certificate().clone()).unwrap();
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert.der.clone()], cert.private_key())
        .unwrap();
    // a full handshake every time, as the peers' load client does
    cfg.resumption = rustls::client::Resumption::disabled();
    TlsConnector::from(Arc::new(cfg))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let epoch = time::macros::datetime!(2026-05-02 06:30:00 UTC);
    let ca = CertAuthority::root(&CertSpec::authority(
        "CN=Bench OnPrem CA".parse().unwrap(),
        epoch,
    ))
    .unwrap();
    let cert = ca
        .issue(&CertSpec::leaf("mail.contoso.com", epoch))
        .unwrap();
    let roots: Vec<CertificateDer<'static>> = vec![ca.cert.der.clone()];
    let cfg = MockFile::from_toml(
        r#"
[[eop.tenants]]
name = "contoso"
accepted_domains = [{ domain = "contoso.com" }, { domain = "example.com" }]
[[eop.tenants.inbound_connectors]]
name = "Inbound from contoso"
connector_type = "on_premises"
tls_sender_certificate_name = "mail.contoso.com"
# the load-test key and TLS 1.3 (EOP's defaults are RSA-2048 and TLS 1.2 only)
[eop.tls]
tls13 = true
[eop.tls.server_certificate]
key = "ecdsa-p256"
"#,
        "bench.toml",
    )
    .unwrap()
    .eop;
    let mock = rt.block_on(async {
        MockEop::builder()
            .config(cfg)
            .trust_roots(roots)
            .retain_sessions(1000)
            .start()
            .await
            .unwrap()
    });
    let addr = mock.local_addr();
    let tls13 = connector(&mock, &cert, false);
    let tls12 = connector(&mock, &cert, true);
    let mut g = c.benchmark_group("e2e");
    g.throughput(Throughput::Elements(1));
    g.bench_function("plain_session", |b| {
        b.to_async(&rt).iter(|| session(addr, None))
    });
    g.bench_function("starttls13_session", |b| {
        b.to_async(&rt).iter(|| session(addr, Some(&tls13)))
    });
    g.bench_function("starttls12_session", |b| {
        b.to_async(&rt).iter(|| session(addr, Some(&tls12)))
    });
    g.finish();
    let counts = mock.counts();
    assert!(counts.messages > 0);
    rt.block_on(async { mock.shutdown().await });
}

criterion_group!(benches, bench);
criterion_main!(benches);
