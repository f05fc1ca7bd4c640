//! The tokio driver: the accept loop, one task per session, and the loop that carries a
//! [`Session`]'s actions out over any `AsyncRead + AsyncWrite` stream. STARTTLS moves the stream
//! into rustls' `TlsStream` (or runs a handshake fault instead) and the same loop goes on.
//!
//! After every input the driver drains [`ProtocolCore::poll_action`], then waits for the first
//! of: bytes (or end of input) from the client, the time [`ProtocolCore::poll_timeout`] gives
//! (mapped onto tokio's clock by the [`LabClock`](hybridlab_labkit::clock::LabClock)), or the
//! mock's shutdown.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{ActiveGuard, Shared};
use crate::session::{Action, HandshakeFault, ProtocolCore, Session, SessionContext};
use crate::tls::tls_facts;
use hybridlab_model::record::{CloseReason, MessageRecord, SessionRecord};

/// Resolves once the shutdown flag is set (drops the watch guard before returning).
pub(super) async fn signalled(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let mut shutdown = shared.shutdown.subscribe();
    // Backoff after a failed accept (EMFILE: no file descriptor left): doubles up to a second,
    // so a full descriptor table is not retried (and logged) every few milliseconds; the API,
    // a task of its own, keeps being served meanwhile.
    let mut backoff = Duration::ZERO;
    loop {
        tokio::select! {
            () = signalled(&mut shutdown) => break,
            r = listener.accept() => match r {
                Ok((stream, peer)) => {
                    backoff = Duration::ZERO;
                    let _ = stream.set_nodelay(true);
                    // A listener bound to one address accepts only on that address: ask the
                    // kernel (one more system call per session) only for a wildcard listener.
                    let local = if shared.local_addr.ip().is_unspecified() {
                        stream.local_addr().unwrap_or(shared.local_addr)
                    } else {
                        shared.local_addr
                    };
                    match admit(&shared, peer.ip()) {
                        Some(slot) => {
                            spawn_session_in(Arc::clone(&shared), stream, peer, local, Some(slot));
                        }
                        None => refuse(&shared, stream),
                    }
                }
                Err(e) => {
                    if backoff.is_zero() {
                        tracing::warn!(error = %e, "accept failed; backing off");
                    }
                    backoff = (backoff * 2).clamp(Duration::from_millis(20), Duration::from_secs(1));
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = signalled(&mut shutdown) => break,
                    }
                }
            }
        }
    }
}

/// A session slot for a client IP, freed when dropped.
pub(super) struct Slot {
    shared: Arc<Shared>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// A slot when the mock serves fewer than `max_sessions` sessions and fewer than
/// `max_sessions_per_ip` from `ip`.
fn admit(shared: &Arc<Shared>, ip: IpAddr) -> Option<Slot> {
    let limits = &shared.config.limits;
    if shared.counts.borrow().active >= limits.max_sessions {
        return None;
    }
    let mut m = shared.per_ip.lock().unwrap_or_else(|p| p.into_inner());
    let n = m.entry(ip).or_insert(0);
    if *n >= limits.max_sessions_per_ip {
        return None;
    }
    *n += 1;
    Some(Slot {
        shared: Arc::clone(shared),
        ip,
    })
}

/// Over a session limit: `421 4.3.2 Service not available` and close, without a session (and
/// without a record); bounded by a short write timeout.
fn refuse(shared: &Arc<Shared>, mut stream: tokio::net::TcpStream) {
    shared.counts.send_modify(|c| c.refused += 1);
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = stream
                .write_all(b"421 4.3.2 Service not available\r\n")
                .await;
            let _ = stream.shutdown().await;
        })
        .await;
    });
}

pub(super) fn spawn_session<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
) -> JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    spawn_session_in(shared, stream, peer, local, None)
}

fn spawn_session_in<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    slot: Option<Slot>,
) -> JoinHandle<()>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    shared.counts.send_modify(|c| c.active += 1);
    let guard = ActiveGuard(Arc::clone(&shared));
    tokio::spawn(async move {
        let _guard = guard;
        run_session(shared, stream, peer, local, slot).await;
    })
}

/// How [`drive`] ended.
enum Outcome<S> {
    /// The session is closed.
    Done,
    /// The session asked for TLS on this stream (with a handshake fault to run instead, if any).
    StartTls(S, Option<HandshakeFault>),
}

/// What carrying out the pending actions left the driver to do.
enum Step {
    /// Wait for input, the timer or shutdown.
    Wait,
    /// Switch to TLS.
    StartTls(Option<HandshakeFault>),
    /// The connection was closed.
    Closed,
}

async fn run_session<S>(
    shared: Arc<Shared>,
    stream: S,
    peer: SocketAddr,
    local: SocketAddr,
    slot: Option<Slot>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let index = shared.next_index.fetch_add(1, Ordering::Relaxed);
    let ctx = SessionContext {
        config: Arc::clone(&shared.config),
        faults: shared.fault_book(),
        index,
        seed: shared.seed,
        peer,
        local,
    };
    let clock = shared.clock.clone();
    let mut session = Session::new(ctx, clock.now());
    let mut shutdown = shared.shutdown.subscribe();
    // One read buffer for the whole session (plaintext and TLS phases), filled through
    // `read_buf` so it is never zeroed.
    let mut buf = Vec::with_capacity(READ_BUFFER);
    if let Outcome::StartTls(stream, fault) =
        drive(&shared, &mut session, stream, &mut shutdown, &mut buf).await
    {
        // The TLS phase (rustls connection, handshake, TLS driver) is a large future: keep it in
        // its own allocation so the spawned task, which tokio moves on spawn and completion,
        // stays small for every session.
        Box::pin(tls_phase(
            &shared,
            &mut session,
            stream,
            fault,
            &mut shutdown,
            &mut buf,
        ))
        .await;
    }
    while let Some(a) = session.poll_action() {
        if let Action::Message(m) = a {
            Box::pin(record_message(&shared, &session, *m)).await;
        }
    }
    let record = session.finish(clock.now());
    let record = match shared.hook.clone() {
        // The hook may write megabytes to disk: off the runtime's threads (boxed, so the wait
        // does not enlarge every session's future).
        Some(h) => Box::pin(tokio::task::spawn_blocking(move || {
            h(&record);
            record
        }))
        .await
        .ok(),
        None => Some(record),
    };
    // The slot is free before the session counts as finished.
    drop(slot);
    if let Some(record) = record {
        shared.finish_session(record);
    }
}

/// A message was accepted: the message hook gets its snapshot (on a blocking thread, awaited, so
/// the record is on disk before the `250` that follows), then it is published.
async fn record_message(shared: &Shared, session: &Session, m: MessageRecord) {
    if let Some(h) = shared.message_hook.clone() {
        let r = session.record();
        let snapshot = SessionRecord {
            session_id: r.session_id.clone(),
            index: r.index,
            peer: r.peer,
            local: r.local,
            started_at: r.started_at,
            ended_at: None,
            helo: r.helo.clone(),
            tls: r.tls.clone(),
            tls_error: None,
            attribution: r.attribution.clone(),
            transcript: Vec::new(),
            faults_fired: r.faults_fired.clone(),
            discarded_after_starttls: None,
            protocol_errors: r.protocol_errors,
            close_reason: CloseReason::Open,
            messages: vec![m.clone()],
        };
        let _ = tokio::task::spawn_blocking(move || h(&snapshot)).await;
    }
    shared.publish_message(m);
}

/// Bytes read from the client at a time (a TLS record's plaintext is at most 16 KiB).
const READ_BUFFER: usize = 16 * 1024;

/// After the STARTTLS 220: the handshake (or the handshake fault), then the session over TLS.
async fn tls_phase<S>(
    shared: &Shared,
    session: &mut Session,
    mut stream: S,
    fault: Option<HandshakeFault>,
    shutdown: &mut watch::Receiver<bool>,
    buf: &mut Vec<u8>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let clock = shared.clock.clone();
    let hs_timeout = shared.config.tls.handshake_timeout.0;
    match fault {
        None => {
            let accept = tokio::time::timeout(hs_timeout, shared.acceptor.accept(stream));
            let result = tokio::select! {
                r = accept => Some(r),
                () = signalled(shutdown) => None,
            };
            match result {
                Some(Ok(Ok(tls))) => {
                    let facts = tls_facts(tls.get_ref().1, &shared.verifier);
                    session.handle_tls_established(clock.now(), facts);
                    if let Outcome::StartTls(..) = drive(shared, session, tls, shutdown, buf).await
                    {
                        session.handle_io_error(clock.now(), "STARTTLS inside TLS");
                    }
                }
                Some(Ok(Err(e))) => session.handle_tls_failed(clock.now(), &e.to_string()),
                Some(Err(_)) => session.handle_tls_failed(clock.now(), "handshake timed out"),
                None => session.handle_shutdown(clock.now()),
            }
        }
        Some(f) => {
            // Read (part of) the ClientHello first, as a real peer would.
            buf.clear();
            let _ = tokio::time::timeout(hs_timeout, stream.read_buf(buf)).await;
            let what = match f {
                HandshakeFault::Drop => {
                    "fault: connection dropped during the handshake".to_string()
                }
                HandshakeFault::Garbage(g) => {
                    let _ = stream.write_all(&g).await;
                    format!(
                        "fault: {} bytes of garbage instead of a ServerHello",
                        g.len()
                    )
                }
                HandshakeFault::Alert(a) => {
                    let _ = stream.write_all(&a.record()).await;
                    format!("fault: TLS alert {} instead of a ServerHello", a.code())
                }
            };
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
            session.handle_tls_failed(clock.now(), &what);
        }
    }
}

/// Reads what is there (up to the buffer's capacity) into the emptied `buf`.
async fn read_some<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
) -> std::io::Result<usize> {
    buf.clear();
    stream.read_buf(buf).await
}

/// Runs the session over `stream` until it closes or asks for TLS.
async fn drive<S>(
    shared: &Shared,
    session: &mut Session,
    mut stream: S,
    shutdown: &mut watch::Receiver<bool>,
    buf: &mut Vec<u8>,
) -> Outcome<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let clock = shared.clock.clone();
    // Once the mock shuts down: when a session reading a message must give up (its grace).
    let mut stopping = false;
    let mut grace: Option<tokio::time::Instant> = None;
    loop {
        match carry_out(shared, session, &mut stream, shutdown).await {
            Step::Wait => {}
            Step::StartTls(f) => return Outcome::StartTls(stream, f),
            Step::Closed => return Outcome::Done,
        }
        if session.is_closed() {
            return Outcome::Done;
        }
        if stopping && !session.in_message() {
            // The message is done (or refused): now the shutdown reply.
            session.handle_shutdown(clock.now());
            continue;
        }
        // The core's timer, read after its actions are drained (it may have moved).
        let deadline = session.poll_timeout().map(|t| clock.instant_at(t));
        let timer = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let grace_over = async {
            match grace {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = signalled(shutdown), if !stopping => {
                if session.in_message() {
                    stopping = true;
                    let d = shared.config.limits.shutdown_grace.to_time();
                    grace = clock.now().checked_add(d).map(|t| clock.instant_at(t));
                } else {
                    session.handle_shutdown(clock.now());
                }
            }
            () = grace_over => session.handle_shutdown(clock.now()),
            r = read_some(&mut stream, buf) => match r {
                Ok(0) => session.handle_eof(clock.now()),
                Ok(n) => session.handle_input(clock.now(), &buf[..n]),
                Err(e) => session.handle_io_error(clock.now(), &e.to_string()),
            },
            () = timer => session.handle_timeout(clock.now()),
        }
    }
}

/// Carries out the session's pending actions in order: writes (flushed before a stall, a message
/// or a wait), stalls until a lab time, messages published, TLS, close.
async fn carry_out<S>(
    shared: &Shared,
    session: &mut Session,
    stream: &mut S,
    shutdown: &mut watch::Receiver<bool>,
) -> Step
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let clock = shared.clock.clone();
    let write_timeout = shared.config.limits.idle_timeout.0;
    let mut wrote = false;
    while let Some(action) = session.poll_action() {
        match action {
            Action::Write(bytes) => {
                match tokio::time::timeout(write_timeout, stream.write_all(&bytes)).await {
                    Ok(Ok(())) => wrote = true,
                    Ok(Err(e)) => session.handle_io_error(clock.now(), &e.to_string()),
                    Err(_) => session.handle_io_error(clock.now(), "write timed out"),
                }
            }
            Action::Stall(until) => {
                let at = clock.instant_at(until);
                if wrote {
                    let _ = stream.flush().await;
                    wrote = false;
                }
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    () = signalled(shutdown) => session.handle_shutdown(clock.now()),
                }
            }
            Action::StartTls(f) => {
                let _ = stream.flush().await;
                return Step::StartTls(f);
            }
            Action::Message(m) => {
                if wrote {
                    let _ = stream.flush().await;
                    wrote = false;
                }
                // Boxed: the message held across the await would otherwise enlarge every
                // session's future, idle or not.
                Box::pin(record_message(shared, session, *m)).await;
            }
            Action::Close => {
                let _ = tokio::time::timeout(write_timeout, async {
                    let _ = stream.flush().await;
                    let _ = stream.shutdown().await;
                })
                .await;
                return Step::Closed;
            }
        }
    }
    if wrote {
        let _ = stream.flush().await;
    }
    Step::Wait
}
