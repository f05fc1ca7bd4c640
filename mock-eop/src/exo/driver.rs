//! The tokio driver of [`ExoClient`]: runs the core over any stream (an in-memory duplex, TCP),
//! performs the STARTTLS upgrade with tokio-rustls, feeds the core the lab clock's `now`, and
//! sleeps until the core's `poll_timeout` on that clock (paused tokio time in tests: no real
//! waiting). [`Dialer`] is how an attempt gets its stream: [`TcpDialer`] for real sockets
//! (loopback source addresses only), or the lab's own dialer over `tokio::io::duplex`.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use hybridlab_labkit::clock::LabClock;
use hybridlab_model::core::ProtocolCore;
use hybridlab_model::delivery::DeliveryAttempt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpSocket;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::client::{Action, ConnectFailure, ExoClient, TlsOutcome};
use super::led::TlsFailure;
use super::tls::{ExoTls, server_name, tls_failure};

/// Upper bound on the driver's read/act rounds per session (every loop is bounded).
pub const MAX_STEPS: usize = 100_000;

/// A connected stream and the sender's local address.
#[derive(Debug)]
pub struct Dialed<S> {
    /// The stream.
    pub stream: S,
    /// The local address (the sender's source).
    pub local: SocketAddr,
}

/// How an attempt reaches its target. The lab implements it over `tokio::io::duplex` (handing
/// the other end to its on-premises receiver, or refusing per its perimeter); [`TcpDialer`]
/// connects real sockets.
pub trait Dialer {
    /// The stream type.
    type Stream: AsyncRead + AsyncWrite + Unpin + Send;

    /// Connects to `target`. The caller bounds the wait with the connect timeout (a dialer that
    /// never answers is a timed-out connect).
    fn dial(
        &self,
        target: SocketAddr,
    ) -> impl Future<Output = Result<Dialed<Self::Stream>, ConnectFailure>> + Send;
}

/// Errors refusing a dialer's settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialerError {
    /// A source address outside loopback.
    #[error("source address {0} is not a loopback address (only 127.0.0.0/8 or ::1 may be bound)")]
    NonLoopbackSource(IpAddr),
}

/// Connects over TCP, optionally from a loopback source address (127.0.0.x: the lab's stand-in
/// for Exchange Online's outbound addresses).
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDialer {
    source_ip: Option<IpAddr>,
}

impl TcpDialer {
    /// A dialer binding `source_ip` (loopback only) before connecting.
    pub fn new(source_ip: Option<IpAddr>) -> Result<Self, DialerError> {
        match source_ip {
            Some(ip) if !ip.is_loopback() => Err(DialerError::NonLoopbackSource(ip)),
            _ => Ok(Self { source_ip }),
        }
    }
}

impl Dialer for TcpDialer {
    type Stream = tokio::net::TcpStream;

    async fn dial(&self, target: SocketAddr) -> Result<Dialed<Self::Stream>, ConnectFailure> {
        let connect = async {
            let sock = match target {
                SocketAddr::V4(_) => TcpSocket::new_v4()?,
                SocketAddr::V6(_) => TcpSocket::new_v6()?,
            };
            if let Some(src) = self.source_ip {
                sock.bind(SocketAddr::new(src, 0))?;
            }
            sock.connect(target).await
        };
        match connect.await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                let local = stream
                    .local_addr()
                    .unwrap_or_else(|_| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0));
                Ok(Dialed { stream, local })
            }
            Err(e) => Err(connect_failure(&e)),
        }
    }
}

/// A socket error as the Winsock failure Exchange Online reports.
pub fn connect_failure(e: &io::Error) -> ConnectFailure {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ConnectFailure::Refused,
        io::ErrorKind::TimedOut => ConnectFailure::TimedOut,
        io::ErrorKind::NetworkUnreachable => ConnectFailure::Other(10051),
        io::ErrorKind::HostUnreachable => ConnectFailure::Other(10065),
        io::ErrorKind::AddrNotAvailable => ConnectFailure::Other(10049),
        _ => ConnectFailure::Other(10060),
    }
}

/// One attempt end to end: dial (bounded by `connect_timeout` on the lab clock), then the
/// session. The record always comes back; failures are in its outcome.
pub async fn attempt<D: Dialer>(
    mut client: ExoClient,
    dialer: &D,
    tls: &ExoTls,
    clock: &LabClock,
    connect_timeout: Duration,
) -> DeliveryAttempt {
    let target = client.params().target;
    match tokio::time::timeout(connect_timeout, dialer.dial(target)).await {
        Ok(Ok(d)) => run_session(client, d.stream, d.local, tls, clock).await,
        Ok(Err(f)) => {
            client.handle_connect_failed(clock.now(), f);
            client.finish()
        }
        Err(_) => {
            client.handle_connect_failed(clock.now(), ConnectFailure::TimedOut);
            client.finish()
        }
    }
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
        *self = Self::Gone;
    }
}

/// Runs `client` over an established `stream` (local address `local`) to its end.
pub async fn run_session<S>(
    mut client: ExoClient,
    stream: S,
    local: SocketAddr,
    tls: &ExoTls,
    clock: &LabClock,
) -> DeliveryAttempt
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    client.handle_connected(clock.now(), local);
    let mut conn = Conn::Plain(stream);
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..MAX_STEPS {
        while let Some(action) = client.poll_action() {
            match action {
                Action::Send(bytes) => {
                    if conn.write_all(&bytes).await.is_err() {
                        client.handle_eof(clock.now());
                    }
                }
                Action::StartTls { server_name } => {
                    let deadline = client.poll_timeout();
                    let (outcome, next) =
                        handshake(conn, &server_name, local, tls, clock, deadline).await;
                    conn = next;
                    match outcome {
                        Some(o) => client.handle_tls(clock.now(), o),
                        None => client.handle_timeout(clock.now()),
                    }
                }
                Action::Close => conn.shutdown().await,
            }
        }
        if client.is_closed() {
            break;
        }
        let read = conn.read(&mut buf);
        let outcome = match client.poll_timeout() {
            Some(d) => tokio::select! {
                r = read => Some(r),
                () = tokio::time::sleep_until(clock.instant_at(d)) => None,
            },
            None => Some(read.await),
        };
        match outcome {
            None => client.handle_timeout(clock.now()),
            Some(Ok(0) | Err(_)) => client.handle_eof(clock.now()),
            Some(Ok(n)) => client.handle_input(clock.now(), &buf[..n]),
        }
    }
    conn.shutdown().await;
    client.finish()
}

/// Runs the handshake, bounded by `deadline` on the lab clock (`None` outcome: timed out).
async fn handshake<S>(
    conn: Conn<S>,
    name: &str,
    local: SocketAddr,
    tls: &ExoTls,
    clock: &LabClock,
    deadline: Option<time::OffsetDateTime>,
) -> (Option<TlsOutcome>, Conn<S>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let Conn::Plain(plain) = conn else {
        return (Some(TlsOutcome::Failed(TlsFailure::SocketError)), conn);
    };
    let Ok((config, probe)) = tls.client_config(clock.now()) else {
        return (
            Some(TlsOutcome::Failed(TlsFailure::SocketError)),
            Conn::Plain(plain),
        );
    };
    let fallback = match local.ip() {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        v6 => v6,
    };
    let connect = TlsConnector::from(config).connect(server_name(name, fallback), plain);
    let result = match deadline {
        Some(d) => tokio::select! {
            r = connect => Some(r),
            () = tokio::time::sleep_until(clock.instant_at(d)) => None,
        },
        None => Some(connect.await),
    };
    match result {
        None => (None, Conn::Gone),
        Some(Ok(stream)) => {
            let facts = probe.facts(stream.get_ref().1);
            (
                Some(TlsOutcome::Established(Box::new(facts))),
                Conn::Tls(Box::new(stream)),
            )
        }
        Some(Err(e)) => (Some(TlsOutcome::Failed(tls_failure(&e))), Conn::Gone),
    }
}
