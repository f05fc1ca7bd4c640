//! A small in-process SMTP receiver for the Exchange Online sender's tests: banner, EHLO (with or
//! without STARTTLS, XOORG, CHUNKING), STARTTLS with tokio-rustls and a lab certificate, an
//! optional client-certificate request (what was presented is recorded), MAIL/RCPT/DATA/BDAT,
//! QUIT; a scripted reply to MAIL. Over any stream (a duplex or TCP).
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use hybridlab_labkit::clock::LabClock;
use hybridlab_labkit::pki::{CertAuthority, CertSpec, IssuedCert};
use mock_eop::config::InvalidClientCertificate;
use mock_eop::tls::ClientVerifier;
use rustls::ServerConfig;
use rustls::pki_types::CertificateDer;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_rustls::TlsAcceptor;

pub fn epoch() -> time::OffsetDateTime {
    time::macros::datetime!(2026-05-02 06:30:00 UTC)
}

/// The on-premises side's lab PKI: a root and a `mail.contoso.com` certificate it issued.
pub struct OnPremPki {
    pub root: CertAuthority,
    pub leaf: IssuedCert,
}

impl OnPremPki {
    pub fn new(cn: &str) -> Self {
        let root = CertAuthority::root(&CertSpec::authority(
            "CN=Lab OnPrem Root, O=hybridlab, C=US".parse().unwrap(),
            epoch(),
        ))
        .unwrap();
        let mut spec = CertSpec::leaf(cn, epoch());
        spec.subject = format!("CN={cn}, O=Contoso Ltd, L=Redmond, S=Washington, C=US")
            .parse()
            .unwrap();
        let leaf = root.issue(&spec).unwrap();
        Self { root, leaf }
    }

    pub fn root_pem(&self) -> String {
        self.root.cert.cert_pem()
    }
}

/// How the stub behaves.
#[derive(Clone)]
pub struct StubOptions {
    /// STARTTLS with this certificate (offered in EHLO); `None`: no STARTTLS.
    pub tls: Option<Arc<ServerConfig>>,
    /// Advertise XOORG.
    pub xoorg: bool,
    /// Advertise CHUNKING.
    pub chunking: bool,
    /// Answer MAIL with this line instead of `250 2.1.0 Sender OK`.
    pub mail_reply: Option<String>,
}

impl StubOptions {
    pub fn plain() -> Self {
        Self {
            tls: None,
            xoorg: false,
            chunking: false,
            mail_reply: None,
        }
    }

    pub fn exchange_like(pki: &OnPremPki) -> Self {
        Self {
            tls: Some(server_config(pki, true)),
            xoorg: true,
            chunking: true,
            mail_reply: None,
        }
    }
}

/// A server config presenting `pki.leaf`, asking for (not requiring) a client certificate.
pub fn server_config(pki: &OnPremPki, ask_client_cert: bool) -> Arc<ServerConfig> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let chain: Vec<CertificateDer<'static>> = vec![pki.leaf.der.clone()];
    let builder = ServerConfig::builder();
    let builder = if ask_client_cert {
        let v = ClientVerifier::new(
            &[],
            InvalidClientCertificate::Ignore,
            LabClock::starting_at(epoch()),
        )
        .unwrap();
        builder.with_client_cert_verifier(Arc::new(v))
    } else {
        builder.with_no_client_auth()
    };
    Arc::new(
        builder
            .with_single_cert(chain, pki.leaf.private_key())
            .unwrap(),
    )
}

/// What the stub saw.
#[derive(Debug, Default, Clone)]
pub struct Saw {
    pub ehlo: Vec<String>,
    pub mail_from: Option<String>,
    pub rcpt: Vec<String>,
    pub tls: bool,
    pub client_cert_subject: Option<String>,
    pub message: Option<Vec<u8>>,
}

enum Next {
    StartTls,
    Done,
}

/// Serves one session on `stream`.
pub async fn serve<S>(stream: S, opts: &StubOptions) -> Saw
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut saw = Saw::default();
    let mut r = BufReader::new(stream);
    if r.get_mut()
        .write_all(b"220 mail.contoso.com Microsoft ESMTP MAIL Service ready\r\n")
        .await
        .is_err()
    {
        return saw;
    }
    if let Next::StartTls = dialogue(&mut r, opts, &mut saw, false).await {
        let Some(cfg) = &opts.tls else { return saw };
        let plain = r.into_inner();
        if let Ok(tls) = TlsAcceptor::from(cfg.clone()).accept(plain).await {
            saw.tls = true;
            saw.client_cert_subject = tls.get_ref().1.peer_certificates().and_then(|c| {
                hybridlab_model::x509::CertFacts::from_der(&c[0])
                    .ok()
                    .map(|f| f.subject)
            });
            let mut r = BufReader::new(tls);
            dialogue(&mut r, opts, &mut saw, true).await;
        }
    }
    saw
}

async fn dialogue<S>(r: &mut BufReader<S>, opts: &StubOptions, saw: &mut Saw, tls: bool) -> Next
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut line = String::new();
    for _ in 0..100 {
        line.clear();
        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
            return Next::Done;
        }
        let cmd = line.trim_end().to_string();
        let upper = cmd.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            saw.ehlo.push(cmd.clone());
            let mut kw = vec!["mail.contoso.com Hello [127.0.0.1]", "SIZE 37748736"];
            if opts.tls.is_some() && !tls {
                kw.push("STARTTLS");
            }
            if opts.xoorg {
                kw.push("XOORG");
            }
            if opts.chunking {
                kw.push("CHUNKING");
            }
            let n = kw.len();
            kw.iter()
                .enumerate()
                .map(|(i, k)| format!("250{}{k}\r\n", if i + 1 == n { ' ' } else { '-' }))
                .collect()
        } else if upper == "STARTTLS" {
            let _ = r
                .get_mut()
                .write_all(b"220 2.0.0 SMTP server ready\r\n")
                .await;
            return Next::StartTls;
        } else if upper.starts_with("MAIL FROM:") {
            saw.mail_from = Some(cmd.clone());
            format!(
                "{}\r\n",
                opts.mail_reply.as_deref().unwrap_or("250 2.1.0 Sender OK")
            )
        } else if upper.starts_with("RCPT TO:") {
            saw.rcpt.push(cmd.clone());
            "250 2.1.5 Recipient OK\r\n".into()
        } else if upper == "DATA" {
            let _ = r
                .get_mut()
                .write_all(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n")
                .await;
            let mut body = Vec::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return Next::Done;
                }
                if l == ".\r\n" {
                    break;
                }
                body.extend_from_slice(l.as_bytes());
            }
            saw.message = Some(body);
            "250 2.6.0 <x@EXCH01> [InternalId=1, Hostname=EXCH01.contoso.com] Queued mail for delivery\r\n".into()
        } else if let Some(n) = upper.strip_prefix("BDAT ") {
            let len: usize = n
                .split_whitespace()
                .next()
                .unwrap_or("0")
                .parse()
                .unwrap_or(0);
            let mut body = vec![0u8; len.min(1 << 20)];
            if r.read_exact(&mut body).await.is_err() {
                return Next::Done;
            }
            saw.message = Some(body);
            "250 2.6.0 <x@EXCH01> [InternalId=1, Hostname=EXCH01.contoso.com] Queued mail for delivery\r\n".into()
        } else if upper == "QUIT" {
            let _ = r
                .get_mut()
                .write_all(b"221 2.0.0 Service closing transmission channel\r\n")
                .await;
            let _ = r.get_mut().shutdown().await;
            return Next::Done;
        } else {
            "500 5.3.3 Unrecognized command\r\n".into()
        };
        if r.get_mut().write_all(reply.as_bytes()).await.is_err() {
            return Next::Done;
        }
    }
    Next::Done
}

/// Serves sessions on a loopback listener until the test ends; each session's [`Saw`] is sent on
/// the returned channel.
pub async fn listen(
    opts: StubOptions,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Saw>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let opts = opts.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(serve(s, &opts).await);
            });
        }
    });
    (addr, rx)
}
