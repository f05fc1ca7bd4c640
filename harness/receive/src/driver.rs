//! The tokio driver of a [`ReceiveSession`]: a loop around `poll_action`, `poll_timeout` and the
//! `handle_*` inputs over any byte stream (a TCP socket, an in-memory duplex), with STARTTLS
//! carried out by tokio-rustls and timers taken from the [`LabClock`] (so a paused tokio clock
//! runs the idle timeout in virtual time).
//!
//! A refused handshake ([`TlsPlan::Refuse`], TLS 1.2 disabled on the server) reads the
//! ClientHello and answers with a fatal `protocol_version` alert, then closes: what a TLS 1.2
//! client meets at a TLS 1.0/1.1-only SChannel.

use std::io;
use std::sync::Arc;

use hybridlab_labkit::clock::LabClock;
use hybridlab_model::core::ProtocolCore;
use hybridlab_model::exchange::SecurityStatus;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::session::{
    ReceiveAction, ReceiveSession, ReceiveSessionRecord, ReceivedMessage, TlsHandshake,
};
use super::tls::TlsPlan;

/// A TLS alert record: fatal `protocol_version` (70), as a TLS 1.2 record.
pub const PROTOCOL_VERSION_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46];

/// How a phase of the session (before or after TLS) ended.
enum PhaseEnd {
    Closed,
    StartTls(TlsPlan),
}

/// Runs `session` over `stream` until it closes; `tls` is the connector's configuration,
/// `shutdown` turning `true` sends `421 4.3.2` and closes, `on_message` sees every accepted
/// message as it is accepted. Returns the session's record.
pub async fn drive_session<S>(
    mut session: ReceiveSession,
    mut stream: S,
    tls: Option<Arc<ServerConfig>>,
    clock: LabClock,
    mut shutdown: watch::Receiver<bool>,
    on_message: &mut (dyn FnMut(&ReceivedMessage) + Send),
) -> ReceiveSessionRecord
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    match run_phase(&mut session, &mut stream, &clock, &mut shutdown, on_message).await {
        PhaseEnd::Closed => {}
        PhaseEnd::StartTls(TlsPlan::Refuse) => {
            refuse_handshake(&mut stream).await;
            session.handle_tls_failed(clock.now(), SecurityStatus::AlgorithmMismatch);
            drain(&mut session, on_message);
        }
        PhaseEnd::StartTls(TlsPlan::Handshake) => match tls {
            None => {
                session.handle_tls_failed(clock.now(), SecurityStatus::NoCredentials);
                drain(&mut session, on_message);
            }
            Some(config) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(config);
                match acceptor.accept(stream).await {
                    Ok(mut tls_stream) => {
                        let hs = handshake_facts(tls_stream.get_ref().1);
                        session.handle_tls_established(clock.now(), hs);
                        run_phase(
                            &mut session,
                            &mut tls_stream,
                            &clock,
                            &mut shutdown,
                            on_message,
                        )
                        .await;
                        let _ = tls_stream.shutdown().await;
                    }
                    Err(e) => {
                        session.handle_tls_failed(clock.now(), handshake_status(&e));
                        drain(&mut session, on_message);
                    }
                }
            }
        },
    }
    session.finish(clock.now())
}

/// Executes the actions a closed session still queued (messages are not lost).
fn drain(session: &mut ReceiveSession, on_message: &mut (dyn FnMut(&ReceivedMessage) + Send)) {
    while let Some(a) = session.poll_action() {
        if let ReceiveAction::Message(m) = a {
            on_message(&m);
        }
    }
}

async fn run_phase<T>(
    session: &mut ReceiveSession,
    stream: &mut T,
    clock: &LabClock,
    shutdown: &mut watch::Receiver<bool>,
    on_message: &mut (dyn FnMut(&ReceivedMessage) + Send),
) -> PhaseEnd
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut buf = vec![0u8; 16 * 1024];
    let mut shutting_down = *shutdown.borrow();
    if shutting_down {
        session.handle_shutdown(clock.now());
    }
    loop {
        while let Some(action) = session.poll_action() {
            match action {
                ReceiveAction::Write(bytes) => {
                    if let Err(e) = stream.write_all(&bytes).await {
                        session.handle_io_error(clock.now(), io_reason(&e));
                    }
                }
                ReceiveAction::StartTls(plan) => {
                    let _ = stream.flush().await;
                    return PhaseEnd::StartTls(plan);
                }
                ReceiveAction::Message(m) => on_message(&m),
                ReceiveAction::Close => {
                    let _ = stream.flush().await;
                    let _ = stream.shutdown().await;
                    drain(session, on_message);
                    return PhaseEnd::Closed;
                }
            }
        }
        if session.is_closed() {
            return PhaseEnd::Closed;
        }
        let _ = stream.flush().await;
        let deadline = session.poll_timeout();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(clock.instant_at(at)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = stream.read(&mut buf) => match r {
                Ok(0) => session.handle_eof(clock.now()),
                Ok(n) => session.handle_input(clock.now(), &buf[..n]),
                Err(e) => session.handle_io_error(clock.now(), io_reason(&e)),
            },
            () = sleep => session.handle_timeout(clock.now()),
            changed = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                if changed.is_err() || *shutdown.borrow() {
                    session.handle_shutdown(clock.now());
                }
            }
        }
    }
}

/// Reads what the client sent (its ClientHello), answers with a `protocol_version` alert.
async fn refuse_handshake<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf)).await;
    let _ = stream.write_all(&PROTOCOL_VERSION_ALERT).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}

/// What the handshake established.
pub fn handshake_facts(conn: &rustls::ServerConnection) -> TlsHandshake {
    TlsHandshake {
        protocol: conn
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher_suite: conn
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default(),
        kx_group: conn
            .negotiated_key_exchange_group()
            .map(|g| format!("{:?}", g.name())),
        client_chain: conn
            .peer_certificates()
            .map(<[_]>::to_vec)
            .unwrap_or_default(),
    }
}

/// The SChannel status a failed server handshake logs.
pub fn handshake_status(e: &io::Error) -> SecurityStatus {
    use rustls::AlertDescription as A;
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return match e.kind() {
            io::ErrorKind::InvalidData => SecurityStatus::IllegalMessage,
            _ => SecurityStatus::SocketError,
        };
    };
    match tls {
        rustls::Error::AlertReceived(
            A::BadCertificate
            | A::CertificateUnknown
            | A::UnknownCA
            | A::CertificateExpired
            | A::UnsupportedCertificate
            | A::CertificateRevoked,
        ) => SecurityStatus::CertUnknown,
        rustls::Error::AlertReceived(A::HandshakeFailure | A::ProtocolVersion)
        | rustls::Error::PeerIncompatible(_) => SecurityStatus::AlgorithmMismatch,
        rustls::Error::DecryptError => SecurityStatus::DecryptFailure,
        _ => SecurityStatus::IllegalMessage,
    }
}

fn io_reason(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionReset => "ConnectionReset",
        io::ErrorKind::ConnectionAborted => "ConnectionAborted",
        _ => "SocketError",
    }
}
