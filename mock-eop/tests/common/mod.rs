//! Shared helpers for the mock's integration tests: a lab CA for client certificates, a small
//! SMTP client over any stream (TCP from a chosen 127.0.0.x source address, or in memory), and
//! STARTTLS with rustls (ring).
#![allow(dead_code, unreachable_pub)]

pub mod http;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hybridlab_labkit::pki::{CertAuthority, CertSpec, IssuedCert};
use hybridlab_model::reply::Reply;
use mock_eop::config::{CONTOSO_TOML, EopConfig, MockFile};
use mock_eop::fault::Fault;
use mock_eop::{MockEop, MockEopHandle};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// Every wait in these tests is bounded by this.
pub const BOUND: Duration = Duration::from_secs(20);

pub fn epoch() -> time::OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

/// The on-premises side's lab CA (what the harness would pass as trust roots).
pub fn onprem_ca() -> CertAuthority {
    CertAuthority::root(&CertSpec::authority(
        "CN=Lab OnPrem Public CA, O=hybridlab, C=US"
            .parse()
            .unwrap(),
        epoch(),
    ))
    .unwrap()
}

/// A client certificate for `cn` (also the DNS SAN) issued by `ca`.
pub fn client_cert(ca: &CertAuthority, cn: &str) -> IssuedCert {
    let mut spec = CertSpec::leaf(cn, epoch());
    spec.subject = format!("CN={cn}, O=Contoso Ltd, L=Redmond, S=Washington, C=US")
        .parse()
        .unwrap();
    ca.issue(&spec).unwrap()
}

pub fn config(toml_src: &str) -> EopConfig {
    MockFile::from_toml(toml_src, "test.toml").unwrap().eop
}

/// What the attribution tests add to the contoso tenant: a second contoso connector by IP
/// (127.0.0.5), fabrikam in another region (NAM), and tailspin with RejectDirectSend and a Partner
/// connector for woodgrove.com restricted to 127.0.0.9.
const MORE_TENANTS: &str = r#"
[[eop.tenants.inbound_connectors]]
name = "Contoso Edge by IP"
connector_type = "on_premises"
sender_ip_addresses = ["127.0.0.5"]

[[eop.tenants]]
name = "fabrikam"
region = "NAM"
accepted_domains = [{ domain = "fabrikam.com" }]

[[eop.tenants]]
name = "tailspin"
accepted_domains = [{ domain = "tailspin.com" }]
reject_direct_send = true
[[eop.tenants.inbound_connectors]]
name = "Partner woodgrove"
sender_domains = ["woodgrove.com"]
sender_ip_addresses = ["127.0.0.9"]
restrict_domains_to_ip_addresses = true
"#;

/// What most tests serve: the contoso tenant of `mock-eop serve` ([`CONTOSO_TOML`]) with its
/// certificate connector widened to `*.contoso.com` (so `smtp.contoso.com` is attributed and
/// `a.b.contoso.com` shows the wildcard depth), then [`MORE_TENANTS`].
pub fn lab_tenants() -> EopConfig {
    let mut cfg = config(&format!("{CONTOSO_TOML}{MORE_TENANTS}"));
    cfg.tenants[0].inbound_connectors[0].tls_sender_certificate_name = Some("*.contoso.com".into());
    cfg
}

pub async fn start(
    cfg: EopConfig,
    faults: Vec<Fault>,
    roots: Vec<CertificateDer<'static>>,
) -> MockEopHandle {
    let _ = rustls::crypto::ring::default_provider().install_default();
    MockEop::builder()
        .config(cfg)
        .faults(faults)
        .seed(7)
        .trust_roots(roots)
        .start()
        .await
        .unwrap()
}

/// A minimal SMTP client for tests.
pub struct Client<S> {
    pub stream: S,
    buf: Vec<u8>,
    pub transcript: Vec<String>,
    /// How long to wait for a reply (virtual time under a paused clock).
    pub bound: Duration,
}

pub async fn connect_from(addr: SocketAddr, source_ip: &str) -> Client<TcpStream> {
    let sock = TcpSocket::new_v4().unwrap();
    sock.bind(format!("{source_ip}:0").parse().unwrap())
        .unwrap();
    let stream = tokio::time::timeout(BOUND, sock.connect(addr))
        .await
        .unwrap()
        .unwrap();
    Client::new(stream)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            transcript: Vec::new(),
            bound: BOUND,
        }
    }

    /// Waits up to `bound` for each reply (use a long bound under paused time).
    pub fn with_bound(mut self, bound: Duration) -> Self {
        self.bound = bound;
        self
    }

    /// Reads one (possibly multi-line) reply; `None` on EOF.
    pub async fn try_reply(&mut self) -> Option<Reply> {
        let mut lines: Vec<String> = Vec::new();
        let mut code = 0;
        loop {
            while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=pos).collect();
                let line = String::from_utf8_lossy(&raw).trim_end().to_string();
                self.transcript.push(format!("S: {line}"));
                let r = Reply::parse_line(&line)
                    .unwrap_or_else(|| panic!("not a reply line: {line:?}"));
                code = r.code;
                lines.push(r.text().to_string());
                if line.as_bytes().get(3) != Some(&b'-') {
                    return Some(Reply::multi(code, lines));
                }
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(self.bound, self.stream.read(&mut chunk))
                .await
                .expect("reply within the bound")
                .unwrap_or(0);
            if n == 0 {
                let _ = code;
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    pub async fn reply(&mut self) -> Reply {
        self.try_reply().await.expect("a reply, not EOF")
    }

    pub async fn send(&mut self, data: &str) {
        self.send_bytes(data.as_bytes()).await;
    }

    pub async fn send_bytes(&mut self, data: &[u8]) {
        tokio::time::timeout(BOUND, self.stream.write_all(data))
            .await
            .unwrap()
            .unwrap();
        let _ = self.stream.flush().await;
    }

    /// Sends a command line and reads its reply.
    pub async fn cmd(&mut self, line: &str) -> Reply {
        self.transcript.push(format!("C: {line}"));
        self.send(&format!("{line}\r\n")).await;
        self.reply().await
    }

    /// MAIL, RCPT..., DATA, body; returns the replies to RCPTs and the final reply (None when
    /// no recipient was accepted).
    pub async fn message(
        &mut self,
        from: &str,
        to: &[&str],
        body: &str,
    ) -> (Reply, Vec<Reply>, Option<Reply>) {
        let mail = self.cmd(&format!("MAIL FROM:<{from}>")).await;
        if !mail.is_positive() {
            return (mail, Vec::new(), None);
        }
        let mut rcpts = Vec::new();
        for t in to {
            rcpts.push(self.cmd(&format!("RCPT TO:<{t}>")).await);
        }
        if !rcpts.iter().any(Reply::is_positive) {
            let _ = self.cmd("RSET").await;
            return (mail, rcpts, None);
        }
        let data = self.cmd("DATA").await;
        assert_eq!(data.code, 354, "{data}");
        self.send(&format!("{body}\r\n.\r\n")).await;
        let end = self.reply().await;
        (mail, rcpts, Some(end))
    }
}

pub fn tls_connector(
    roots: &[CertificateDer<'static>],
    identity: Option<&IssuedCert>,
    max12: bool,
) -> TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let versions: &[&rustls::SupportedProtocolVersion] = if max12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(store);
    let config = match identity {
        Some(id) => builder
            .with_client_auth_cert(vec![id.der.clone()], id.private_key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    TlsConnector::from(Arc::new(config))
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    /// EHLO, STARTTLS, handshake (verifying `mail.protection.outlook.com` against `roots`).
    pub async fn starttls(
        self,
        roots: &[CertificateDer<'static>],
        identity: Option<&IssuedCert>,
    ) -> Result<Client<TlsStream<S>>, std::io::Error> {
        self.starttls_with(tls_connector(roots, identity, false))
            .await
    }

    pub async fn starttls_with(
        mut self,
        connector: TlsConnector,
    ) -> Result<Client<TlsStream<S>>, std::io::Error> {
        let banner = self.reply().await;
        assert_eq!(banner.code, 220, "{banner}");
        let ehlo = self.cmd("EHLO edge01.contoso.com").await;
        assert!(ehlo.lines.iter().any(|l| l == "STARTTLS"), "{ehlo:?}");
        let r = self.cmd("STARTTLS").await;
        assert_eq!(r.one_line(), "220 2.0.0 SMTP server ready");
        let name = ServerName::try_from("mail.protection.outlook.com").unwrap();
        let tls = tokio::time::timeout(BOUND, connector.connect(name, self.stream))
            .await
            .expect("handshake within the bound")?;
        let mut c = Client {
            stream: tls,
            buf: Vec::new(),
            transcript: self.transcript,
            bound: self.bound,
        };
        let ehlo = c.cmd("EHLO edge01.contoso.com").await;
        if ehlo.code != 250 {
            return Err(std::io::Error::other(format!("EHLO after TLS: {ehlo}")));
        }
        assert!(!ehlo.lines.iter().any(|l| l == "STARTTLS"));
        Ok(c)
    }
}

pub fn key_of(c: &IssuedCert) -> PrivateKeyDer<'static> {
    c.private_key()
}

/// Whether an external program can be used: `false` (with a notice) when it is missing and
/// `CI` is not set; a panic when it is missing under `CI`, where interop tests must run.
pub fn have_program(name: &str) -> bool {
    let found = std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(name).is_file()));
    if !found {
        if std::env::var_os("CI").is_some() {
            panic!("{name} is not installed, and CI is set: interop tests must run (see .ci/run)");
        }
        eprintln!("SKIP: {name} is not installed (set CI=1 to make this a failure)");
    }
    found
}

/// Runs a program under `timeout(1)` (killed after `secs`), off the async threads.
pub async fn run_program(args: Vec<String>, secs: u64) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .arg("-k")
            .arg("5")
            .arg(secs.to_string())
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run timeout(1)")
    })
    .await
    .unwrap()
}

/// Writes a file; private keys get mode 0600.
pub fn write_file(path: &std::path::Path, contents: &str, private: bool) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    if private {
        opts.mode(0o600);
    }
    let mut f = opts.open(path).unwrap();
    std::io::Write::write_all(&mut f, contents.as_bytes()).unwrap();
}
