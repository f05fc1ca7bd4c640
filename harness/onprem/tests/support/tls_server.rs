//! A deliberately odd in-process SMTP receiver for the sender's TLS tests: smtp-proto for parsing,
//! tokio-rustls for STARTTLS, behaviours the mock EOP does not have switchable per test (any TLS
//! version set, any certificate, no STARTTLS, reset or garbage after `220 2.0.0 SMTP server
//! ready`). Binds 127.0.0.1:0 or serves any stream. Tests that want EOP's behaviour use the mock
//! (`super::mocklab`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use smtp_proto::request::receiver::{BdatReceiver, DataReceiver, RequestReceiver};
use smtp_proto::{Error as SmtpError, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

/// What to do after answering STARTTLS with 220.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterStartTls {
    Handshake,
    Reset,
    Garbage,
}

#[derive(Clone)]
pub(crate) struct ServerOpts {
    /// Chain and PKCS#8 key.
    pub cert: Option<(Vec<CertificateDer<'static>>, Vec<u8>)>,
    pub versions: Vec<&'static SupportedProtocolVersion>,
    /// Request (not require) a client certificate, verified against these roots.
    pub client_roots: Option<RootCertStore>,
    pub after_starttls: AfterStartTls,
    pub offer_starttls: bool,
    pub chunking: bool,
    pub pipelining: bool,
    pub size: usize,
}

impl Default for ServerOpts {
    fn default() -> Self {
        Self {
            cert: None,
            versions: vec![&rustls::version::TLS12, &rustls::version::TLS13],
            client_roots: None,
            after_starttls: AfterStartTls::Handshake,
            offer_starttls: true,
            chunking: true,
            pipelining: true,
            size: 157_286_400,
        }
    }
}

#[derive(Debug, Default, Clone)]
pub(crate) struct Captured {
    pub peer: Option<SocketAddr>,
    pub tls: bool,
    pub client_cert: Option<CertificateDer<'static>>,
    pub messages: Vec<Vec<u8>>,
    pub commands: Vec<String>,
}

/// What the server saw, one entry per finished connection.
#[derive(Default)]
pub(crate) struct SinkInner {
    caps: Mutex<Vec<Captured>>,
    notify: tokio::sync::Notify,
}

pub(crate) type Sink = Arc<SinkInner>;

impl SinkInner {
    fn push(&self, c: Captured) {
        self.caps.lock().unwrap().push(c);
        self.notify.notify_waiters();
    }

    /// Waits (signal-driven, bounded) until connection `i` has finished, and returns it.
    pub(crate) async fn wait(&self, i: usize) -> Captured {
        for _ in 0..1000 {
            let notified = self.notify.notified();
            if let Some(c) = self.caps.lock().unwrap().get(i).cloned() {
                return c;
            }
            if tokio::time::timeout(std::time::Duration::from_secs(10), notified)
                .await
                .is_err()
            {
                break;
            }
        }
        panic!("connection {i} never finished on the test server");
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn server_config(opts: &ServerOpts) -> Option<Arc<ServerConfig>> {
    let (chain, key) = opts.cert.clone()?;
    let b = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&opts.versions)
        .ok()?;
    let b = match &opts.client_roots {
        Some(roots) => b.with_client_cert_verifier(
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots.clone()), provider())
                .allow_unauthenticated()
                .build()
                .ok()?,
        ),
        None => b.with_no_client_auth(),
    };
    b.with_single_cert(
        chain,
        PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(key)),
    )
    .ok()
    .map(Arc::new)
}

/// Starts a TCP server on 127.0.0.1:0.
pub(crate) async fn start(opts: ServerOpts) -> (SocketAddr, Sink) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sink: Sink = Arc::default();
    let s2 = sink.clone();
    tokio::spawn(async move {
        for _ in 0..64 {
            let Ok((stream, peer)) = listener.accept().await else {
                return;
            };
            let opts = opts.clone();
            let sink = s2.clone();
            tokio::spawn(async move { serve(stream, Some(peer), opts, sink).await });
        }
    });
    (addr, sink)
}

enum Upgrade {
    Closed,
    StartTls,
}

/// Serves one connection on any stream.
pub(crate) async fn serve<S>(stream: S, peer: Option<SocketAddr>, opts: ServerOpts, sink: Sink)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut cap = Captured {
        peer,
        ..Default::default()
    };
    let mut stream = stream;
    let _ = stream
        .write_all(
            b"220 AM5EUR02FT017.mail.protection.outlook.com Microsoft ESMTP MAIL Service ready\r\n",
        )
        .await;
    let up = smtp_loop(&mut stream, &opts, &mut cap, false).await;
    if let Upgrade::StartTls = up {
        match opts.after_starttls {
            AfterStartTls::Reset => {
                drop(stream);
            }
            AfterStartTls::Garbage => {
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
            }
            AfterStartTls::Handshake => {
                if let Some(cfg) = server_config(&opts) {
                    let accepted = tokio_rustls::TlsAcceptor::from(cfg).accept(stream).await;
                    if let Err(e) = &accepted {
                        let _ = e; // the sender gave up (NoCredentials) or a fault was injected
                    }
                    if let Ok(mut tls) = accepted {
                        cap.tls = true;
                        cap.client_cert = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first().cloned());
                        smtp_loop(&mut tls, &opts, &mut cap, true).await;
                        let _ = tls.shutdown().await;
                    }
                }
            }
        }
    }
    sink.push(cap);
}

async fn smtp_loop<S>(s: &mut S, opts: &ServerOpts, cap: &mut Captured, tls: bool) -> Upgrade
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut rx = RequestReceiver::default();
    let mut data: Option<DataReceiver> = None;
    let mut bdat: Option<BdatReceiver> = None;
    let mut body = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..10_000 {
        let n = match s.read(&mut buf).await {
            Ok(0) | Err(_) => return Upgrade::Closed,
            Ok(n) => n,
        };
        let mut it = buf[..n].iter();
        let mut out = Vec::new();
        loop {
            if let Some(d) = data.as_mut() {
                if d.ingest(&mut it, &mut body) {
                    data = None;
                    cap.messages.push(std::mem::take(&mut body));
                    out.extend_from_slice(b"250 2.6.0 <lab@test> [InternalId=1, Hostname=LAB] Queued mail for delivery\r\n");
                    continue;
                }
                break;
            }
            if let Some(b) = bdat.as_mut() {
                if b.ingest(&mut it, &mut body) {
                    bdat = None;
                    cap.messages.push(std::mem::take(&mut body));
                    out.extend_from_slice(b"250 2.6.0 <lab@test> [InternalId=1, Hostname=LAB] Queued mail for delivery\r\n");
                    continue;
                }
                break;
            }
            let req = match rx.ingest(&mut it) {
                Ok(r) => r.into_owned(),
                Err(SmtpError::NeedsMoreData { .. }) => break,
                Err(_) => {
                    out.extend_from_slice(b"500 5.3.3 Unrecognized command\r\n");
                    continue;
                }
            };
            cap.commands.push(req.name().to_string());
            match req {
                Request::Ehlo { .. } | Request::Helo { .. } => {
                    let mut lines = vec![
                        "AM5EUR02FT017.mail.protection.outlook.com Hello [127.0.0.1]".to_string(),
                    ];
                    lines.push(format!("SIZE {}", opts.size));
                    if opts.pipelining {
                        lines.push("PIPELINING".into());
                    }
                    if opts.offer_starttls && !tls {
                        lines.push("STARTTLS".into());
                    }
                    if opts.chunking {
                        lines.push("CHUNKING".into());
                    }
                    let reply = hybridlab_model::reply::Reply::multi(250, lines);
                    out.extend_from_slice(&reply.to_wire());
                }
                Request::StartTls => {
                    out.extend_from_slice(b"220 2.0.0 SMTP server ready\r\n");
                    let _ = s.write_all(&out).await;
                    return Upgrade::StartTls;
                }
                Request::Mail { .. } => out.extend_from_slice(b"250 2.1.0 Sender OK\r\n"),
                Request::Rcpt { .. } => out.extend_from_slice(b"250 2.1.5 Recipient OK\r\n"),
                Request::Data => {
                    data = Some(DataReceiver::new());
                    out.extend_from_slice(b"354 Start mail input; end with <CRLF>.<CRLF>\r\n");
                }
                Request::Bdat {
                    chunk_size,
                    is_last,
                } => {
                    bdat = Some(BdatReceiver::new(chunk_size, is_last));
                }
                Request::Rset => out.extend_from_slice(b"250 2.0.0 Resetting\r\n"),
                Request::Quit => {
                    out.extend_from_slice(b"221 2.0.0 Service closing transmission channel\r\n");
                    let _ = s.write_all(&out).await;
                    return Upgrade::Closed;
                }
                _ => out.extend_from_slice(b"502 5.5.2 Command not implemented\r\n"),
            }
        }
        if !out.is_empty() && s.write_all(&out).await.is_err() {
            return Upgrade::Closed;
        }
    }
    Upgrade::Closed
}
