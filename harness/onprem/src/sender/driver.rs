//! The tokio driver: runs a [`SenderMachine`] over any stream (a memory duplex or TCP), performs the
//! STARTTLS upgrade with tokio-rustls, and feeds the machine the lab clock's `now`. It is the only
//! part of the sender that touches sockets, TLS streams or the clock.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::machine::{Action, SenderMachine, SessionConfig};
use super::report::SessionReport;
use super::tls::{TlsInfo, TlsResult, client_config, security_status};
use crate::message::OutboundMessage;
use crate::resolver::ConnectFailure;
use hybridlab_labkit::clock::LabClock;
use hybridlab_model::core::ProtocolCore;

/// How the driver connects.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// Bind this source address before connecting (loopback only in the lab: 127.0.0.0/8 or ::1).
    pub source_ip: Option<IpAddr>,
    /// How long the TCP connect may take before the session fails as unreachable (10060).
    pub connect_timeout: Duration,
    /// Upper bound on read/handshake steps (every loop is bounded).
    pub max_steps: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            source_ip: None,
            connect_timeout: Duration::from_secs(30),
            max_steps: 100_000,
        }
    }
}

/// Errors the driver refuses before doing anything.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// A source address outside loopback.
    #[error("source address {0} is not a loopback address (the lab binds only 127.0.0.0/8 or ::1)")]
    NonLoopbackSource(IpAddr),
}

enum Conn<S> {
    Plain(S),
    Tls(Box<TlsStream<S>>),
    Gone,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf).await,
            Self::Tls(s) => s.read(buf).await,
            Self::Gone => Ok(0),
        }
    }

    async fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Self::Tls(s) => {
                s.write_all(data).await?;
                s.flush().await
            }
            Self::Gone => Err(io::Error::new(io::ErrorKind::NotConnected, "closed")),
        }
    }

    async fn shutdown(&mut self) {
        match self {
            Self::Plain(s) => {
                let _ = s.shutdown().await;
            }
            Self::Tls(s) => {
                let _ = s.shutdown().await;
            }
            Self::Gone => {}
        }
    }
}

/// Runs `machine` over an established `stream` whose local address is `local`.
pub async fn run_session<S>(
    mut machine: SenderMachine,
    stream: S,
    local: SocketAddr,
    clock: &LabClock,
    max_steps: usize,
) -> SessionReport
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    machine.handle_connected(clock.now(), local);
    let mut conn = Conn::Plain(stream);
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..max_steps {
        // drain actions
        let mut closed = false;
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Send(bytes) => {
                    if conn.write_all(&bytes).await.is_err() {
                        machine.handle_eof(clock.now());
                    }
                }
                Action::StartTls(req) => {
                    let Conn::Plain(plain) = std::mem::replace(&mut conn, Conn::Gone) else {
                        machine.handle_tls(
                            clock.now(),
                            TlsResult::Failed(
                                hybridlab_model::exchange::SecurityStatus::InvalidToken,
                            ),
                        );
                        continue;
                    };
                    let name = req.server_name.clone();
                    let (result, next) = handshake(plain, *req, &name, clock).await;
                    conn = next;
                    machine.handle_tls(clock.now(), result);
                }
                Action::Close => {
                    conn.shutdown().await;
                    closed = true;
                }
            }
        }
        if closed || machine.is_closed() {
            break;
        }
        let deadline = machine.poll_timeout();
        let read = async { conn.read(&mut buf).await };
        let outcome = match deadline {
            Some(d) => {
                tokio::select! {
                    r = read => Some(r),
                    _ = tokio::time::sleep_until(clock.instant_at(d)) => None,
                }
            }
            None => Some(read.await),
        };
        match outcome {
            None => machine.handle_timeout(clock.now()),
            Some(Ok(0)) | Some(Err(_)) => machine.handle_eof(clock.now()),
            Some(Ok(n)) => machine.handle_input(clock.now(), &buf[..n]),
        }
    }
    machine.finish()
}

async fn handshake<S>(
    plain: S,
    req: super::tls::TlsRequest,
    name: &str,
    clock: &LabClock,
) -> (TlsResult, Conn<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let (config, verifier) = match client_config(req, clock.now()) {
        Ok(c) => c,
        Err(status) => return (TlsResult::Failed(status), Conn::Plain(plain)),
    };
    let server_name = ServerName::try_from(name.to_string())
        .unwrap_or_else(|_| ServerName::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST).into()));
    match TlsConnector::from(config).connect(server_name, plain).await {
        Ok(tls) => {
            let (_, c) = tls.get_ref();
            let (peer_chain, chain) = verifier
                .take()
                .unwrap_or_else(|| (Vec::new(), super::tls::RemoteChainStatus::NoCertificate));
            let info = TlsInfo {
                protocol: match c.protocol_version() {
                    Some(rustls::ProtocolVersion::TLSv1_3) => "TLS1_3".into(),
                    _ => "TLS1_2".into(),
                },
                cipher_suite: c
                    .negotiated_cipher_suite()
                    .map(|s| format!("{:?}", s.suite()))
                    .unwrap_or_default(),
                kx_group: c
                    .negotiated_key_exchange_group()
                    .map(|g| format!("{:?}", g.name())),
                peer_chain,
                chain,
            };
            (TlsResult::Established(info), Conn::Tls(Box::new(tls)))
        }
        Err(e) => (TlsResult::Failed(security_status(&e)), Conn::Gone),
    }
}

/// Connects over TCP (optionally from a loopback source address) and runs the session. A target the
/// lab resolver marks unreachable fails without a connection attempt.
///
/// # Errors
/// A non-loopback source address.
pub async fn deliver_tcp(
    cfg: SessionConfig,
    messages: Vec<OutboundMessage>,
    clock: &LabClock,
    opts: ConnectOptions,
) -> Result<SessionReport, DriverError> {
    if let Some(src) = opts.source_ip
        && !src.is_loopback()
    {
        return Err(DriverError::NonLoopbackSource(src));
    }
    let target = cfg.target.clone();
    let mut machine = SenderMachine::new(cfg, messages, clock.now());
    if let Some(failure) = target.unreachable {
        machine.handle_connect_failed(clock.now(), failure);
        return Ok(machine.finish());
    }
    let connect = async {
        let sock = match target.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(src) = opts.source_ip {
            sock.bind(SocketAddr::new(src, 0))?;
        }
        sock.connect(target.addr).await
    };
    let stream: TcpStream = match tokio::time::timeout(opts.connect_timeout, connect).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            let f = if e.kind() == io::ErrorKind::ConnectionRefused {
                ConnectFailure::Refused
            } else {
                ConnectFailure::TimedOut
            };
            machine.handle_connect_failed(clock.now(), f);
            return Ok(machine.finish());
        }
        Err(_) => {
            machine.handle_connect_failed(clock.now(), ConnectFailure::TimedOut);
            return Ok(machine.finish());
        }
    };
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
    Ok(run_session(machine, stream, local, clock, opts.max_steps).await)
}
