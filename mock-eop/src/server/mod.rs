//! The tokio driver and the embedding API: [`MockEop::builder`] ... [`MockEopBuilder::start`]
//! gives a [`MockEopHandle`].
//!
//! # Contract
//! - `start()` binds `127.0.0.1:0` unless given a listener ([`MockEopBuilder::listener`]) or told
//!   to serve in memory only ([`MockEopBuilder::in_memory_only`]).
//! - The handle gives the address, the lab CA a client should trust
//!   ([`MockEopHandle::ca_certificate`]), the server chain, snapshots of the records
//!   ([`MockEopHandle::records`], [`MockEopHandle::messages`]), waits without sleeping
//!   ([`MockEopHandle::wait_for_sessions`], [`MockEopHandle::wait_for_messages`]) and a draining
//!   [`MockEopHandle::shutdown`].
//! - At run time the handle can forget the kept records and restart the counters
//!   ([`MockEopHandle::clear_records`]) and replace the scripted faults for the sessions that
//!   start afterwards ([`MockEopHandle::replace_faults`]); `mock-eop serve --api` exposes both.
//! - The driver is generic over `AsyncRead + AsyncWrite + Unpin` streams:
//!   [`MockEopHandle::connect_in_memory`] gives a `DuplexStream` whose session believes the
//!   client is at `peer` (so IP attribution works in memory), [`MockEopHandle::serve_stream`]
//!   takes any stream. STARTTLS moves the stream into `TlsStream<S>`.
//! - All time comes from the [`LabClock`] and tokio timers (idle timeout, stall faults,
//!   handshake timeout), so the mock runs under `tokio::time::pause()`.
//! - Session counts include only finished sessions; messages are counted when answered 250.
//!
//! # Layout
//! - this file: the builder, the handle and the store of records and counters they share;
//! - `driver`: the accept loop and the per-session task that drives a
//!   [`crate::session::Session`] over a stream (and into TLS).

mod driver;

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeBounds;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::{EopConfig, Invalid};
use crate::fault::{Fault, FaultBook};
use crate::tls::{ClientVerifier, ServerIdentity, TlsError, server_config};
use hybridlab_labkit::clock::LabClock;
use hybridlab_model::record::{MessageRecord, SessionRecord};
use hybridlab_model::x509::CertFacts;

use driver::{accept_loop, spawn_session};

/// Errors starting the mock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MockEopError {
    /// The configuration is inconsistent.
    #[error("invalid configuration: {0}")]
    Config(Invalid),
    /// A fault makes no sense.
    #[error("invalid fault {index}: {message}")]
    Fault {
        /// 0-based position of the fault in the list given.
        index: usize,
        /// Why the fault cannot be used (e.g. an action that does not apply at its stage).
        message: String,
    },
    /// TLS could not be set up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// Binding or reading the listener failed.
    #[error("listener: {0}")]
    Io(#[from] std::io::Error),
}

/// Called with each finished session's record (before it is stored), on a blocking thread (so a
/// hook that writes a large record to disk does not hold up other sessions).
pub type SessionHook = Arc<dyn Fn(&SessionRecord) + Send + Sync>;

/// Called with each accepted message, on a blocking thread, **before** its `250` is written: a
/// snapshot of its session (`close_reason` `open`, no transcript) holding that one message. A
/// hook that appends it to a file and flushes makes every `250` durable.
pub type MessageHook = Arc<dyn Fn(&SessionRecord) + Send + Sync>;

/// Entry point of the embedding API.
#[derive(Debug, Clone, Copy)]
pub struct MockEop;

impl MockEop {
    /// A builder with an empty configuration (no tenant), no faults, seed 0, the system clock,
    /// no client-certificate trust roots, and a listener on `127.0.0.1:0`.
    pub fn builder() -> MockEopBuilder {
        MockEopBuilder::default()
    }
}

/// Configures and starts a mock.
#[derive(Default)]
pub struct MockEopBuilder {
    config: EopConfig,
    faults: Vec<Fault>,
    seed: u64,
    clock: Option<LabClock>,
    trust_roots: Vec<CertificateDer<'static>>,
    listener: Option<TcpListener>,
    in_memory_only: bool,
    identity: Option<ServerIdentity>,
    retain: Option<usize>,
    retain_bytes: Option<u64>,
    hook: Option<SessionHook>,
    message_hook: Option<MessageHook>,
}

impl std::fmt::Debug for MockEopBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockEopBuilder")
            .field("tenants", &self.config.tenants.len())
            .field("faults", &self.faults.len())
            .field("seed", &self.seed)
            .field("trust_roots", &self.trust_roots.len())
            .field("in_memory_only", &self.in_memory_only)
            .finish_non_exhaustive()
    }
}

impl MockEopBuilder {
    /// The `[eop]` configuration.
    pub fn config(mut self, config: EopConfig) -> Self {
        self.config = config;
        self
    }

    /// The faults sessions meet (replaceable at run time: [`MockEopHandle::replace_faults`]).
    pub fn faults(mut self, faults: Vec<Fault>) -> Self {
        self.faults = faults;
        self
    }

    /// Seed for probabilistic faults and ids.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The lab clock (default: [`LabClock::system`] at start).
    pub fn clock(mut self, clock: LabClock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Roots client certificates must chain to (the harness's lab CAs).
    pub fn trust_roots(mut self, roots: Vec<CertificateDer<'static>>) -> Self {
        self.trust_roots = roots;
        self
    }

    /// Serve on this listener instead of binding `127.0.0.1:0`.
    pub fn listener(mut self, listener: TcpListener) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Bind nothing: sessions come only through [`MockEopHandle::connect_in_memory`] and
    /// [`MockEopHandle::serve_stream`].
    pub fn in_memory_only(mut self) -> Self {
        self.in_memory_only = true;
        self
    }

    /// Use this certificate and key instead of generating one from the configuration.
    pub fn server_identity(mut self, identity: ServerIdentity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// Keep at most `n` finished sessions (and `n` messages) in memory, dropping the oldest
    /// (for long-running `serve`; the hook still sees every session). Default: keep all.
    pub fn retain_sessions(mut self, n: usize) -> Self {
        self.retain = Some(n);
        self
    }

    /// Also keep at most about `bytes` of message content in memory (sessions' and messages'
    /// raw bytes), dropping the oldest records first. Default: no byte bound.
    pub fn retain_bytes(mut self, bytes: u64) -> Self {
        self.retain_bytes = Some(bytes);
        self
    }

    /// Call `hook` with every finished session's record (on a blocking thread).
    pub fn on_session(mut self, hook: impl Fn(&SessionRecord) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Call `hook` with every accepted message before its `250` is sent ([`MessageHook`]).
    pub fn on_message(mut self, hook: impl Fn(&SessionRecord) + Send + Sync + 'static) -> Self {
        self.message_hook = Some(Arc::new(hook));
        self
    }

    /// Validates, builds TLS, binds, and starts accepting.
    pub async fn start(self) -> Result<MockEopHandle, MockEopError> {
        self.config.validate().map_err(MockEopError::Config)?;
        for (index, f) in self.faults.iter().enumerate() {
            f.validate()
                .map_err(|message| MockEopError::Fault { index, message })?;
        }
        let clock = self.clock.unwrap_or_else(LabClock::system);
        let identity = match self.identity {
            Some(i) => i,
            None => ServerIdentity::from_spec(&self.config.tls.server_certificate, clock.epoch())?,
        };
        let verifier = Arc::new(ClientVerifier::new(
            &self.trust_roots,
            self.config.tls.invalid_client_certificate,
            clock.clone(),
        )?);
        let tls = server_config(&self.config.tls, &identity, Arc::clone(&verifier))?;
        let listener = match (self.listener, self.in_memory_only) {
            (Some(l), _) => Some(l),
            (None, true) => None,
            (None, false) => Some(TcpListener::bind(("127.0.0.1", 0)).await?),
        };
        let local_addr = match &listener {
            Some(l) => l.local_addr()?,
            None => SocketAddr::from(([127, 0, 0, 1], 25)),
        };
        let (counts, _) = watch::channel(Counts::default());
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            config: Arc::new(self.config),
            faults: Mutex::new(Arc::new(FaultBook::new(self.faults, self.seed))),
            seed: self.seed,
            clock,
            acceptor: TlsAcceptor::from(tls),
            verifier,
            identity,
            next_index: AtomicU64::new(0),
            store: Mutex::new(Store::default()),
            counts,
            shutdown,
            retain: self.retain,
            retain_bytes: self.retain_bytes,
            hook: self.hook,
            message_hook: self.message_hook,
            per_ip: Mutex::new(HashMap::new()),
            local_addr,
        });
        let accept = listener.map(|l| tokio::spawn(accept_loop(Arc::clone(&shared), l)));
        Ok(MockEopHandle { shared, accept })
    }
}

/// Live counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Sessions that have ended and been recorded (since start or the last clear).
    pub sessions: u64,
    /// Messages answered 250 (since start or the last clear).
    pub messages: u64,
    /// Connections being served now.
    pub active: u64,
    /// Connections refused over `max_sessions` or `max_sessions_per_ip` (`421 4.3.2`, no session
    /// record).
    pub refused: u64,
}

#[derive(Default)]
struct Store {
    sessions: VecDeque<SessionRecord>,
    messages: VecDeque<MessageRecord>,
    /// Raw message bytes held by `sessions` and `messages`.
    bytes: u64,
    /// Messages dropped from the front since the start or the last clear: the number of
    /// `messages[i]` is `messages_dropped + i`.
    messages_dropped: u64,
}

/// Raw message bytes a session record holds.
fn session_bytes(r: &SessionRecord) -> u64 {
    r.messages.iter().map(|m| m.raw.len() as u64).sum()
}

impl Store {
    /// Drops the oldest records until at most `n` of each are kept and their raw bytes are
    /// under `bytes` (the newest record of each kind is always kept).
    fn trim(&mut self, n: Option<usize>, bytes: Option<u64>) {
        let n = n.unwrap_or(usize::MAX);
        let max = bytes.unwrap_or(u64::MAX);
        while self.messages.len() > n || (self.bytes > max && self.messages.len() > 1) {
            let Some(m) = self.messages.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(m.raw.len() as u64);
        }
        while self.sessions.len() > n || (self.bytes > max && self.sessions.len() > 1) {
            let Some(r) = self.sessions.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(session_bytes(&r));
        }
    }
}

struct Shared {
    config: Arc<EopConfig>,
    /// The book new sessions take (sessions keep the one they started with).
    faults: Mutex<Arc<FaultBook>>,
    seed: u64,
    clock: LabClock,
    acceptor: TlsAcceptor,
    verifier: Arc<ClientVerifier>,
    identity: ServerIdentity,
    next_index: AtomicU64,
    store: Mutex<Store>,
    counts: watch::Sender<Counts>,
    shutdown: watch::Sender<bool>,
    retain: Option<usize>,
    retain_bytes: Option<u64>,
    hook: Option<SessionHook>,
    message_hook: Option<MessageHook>,
    /// Sessions open now per client IP (TCP connections only).
    per_ip: Mutex<HashMap<IpAddr, u64>>,
    local_addr: SocketAddr,
}

impl Shared {
    fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fault_book(&self) -> Arc<FaultBook> {
        Arc::clone(&self.faults.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn publish_message(&self, m: MessageRecord) {
        {
            let mut s = self.store();
            s.bytes += m.raw.len() as u64;
            s.messages.push_back(m);
            s.trim(self.retain, self.retain_bytes);
            // Counted under the store lock, so `clear_records` drops a record and its count together.
            self.counts.send_modify(|c| c.messages += 1);
        }
    }

    fn finish_session(&self, record: SessionRecord) {
        tracing::debug!(
            session = %record.session_id,
            peer = %record.peer,
            verdict = record.attribution.as_ref().map(|v| v.kind().as_str()).unwrap_or("none"),
            close = ?record.close_reason,
            "session ended"
        );
        {
            let mut s = self.store();
            s.bytes += session_bytes(&record);
            s.sessions.push_back(record);
            s.trim(self.retain, self.retain_bytes);
            self.counts.send_modify(|c| c.sessions += 1);
        }
    }
}

/// Decrements the active count when a session task ends, however it ends.
struct ActiveGuard(Arc<Shared>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0
            .counts
            .send_modify(|c| c.active = c.active.saturating_sub(1));
    }
}

/// A running mock.
pub struct MockEopHandle {
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MockEopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockEopHandle")
            .field("local_addr", &self.shared.local_addr)
            .field("counts", &*self.shared.counts.borrow())
            .finish_non_exhaustive()
    }
}

impl MockEopHandle {
    /// The listening address (`127.0.0.1:25` stands in when serving in memory only).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The lab root a client should trust (DER).
    pub fn ca_certificate(&self) -> &CertificateDer<'static> {
        &self.shared.identity.trust_anchor
    }

    /// The lab root as PEM.
    pub fn ca_pem(&self) -> String {
        self.shared.identity.trust_anchor_pem()
    }

    /// The chain the endpoint sends, leaf first.
    pub fn server_chain(&self) -> &[CertificateDer<'static>] {
        &self.shared.identity.chain
    }

    /// The endpoint certificate's facts (subject, SANs, thumbprint...).
    pub fn server_certificate(&self) -> &CertFacts {
        &self.shared.identity.leaf
    }

    /// The configuration in force.
    pub fn config(&self) -> &EopConfig {
        &self.shared.config
    }

    /// The lab clock sessions read (the times in the records and banners).
    pub fn clock(&self) -> LabClock {
        self.shared.clock.clone()
    }

    /// Current counters.
    pub fn counts(&self) -> Counts {
        *self.shared.counts.borrow()
    }

    /// Finished sessions in connection order (by `index`), with message headers parsed.
    pub fn records(&self) -> Vec<SessionRecord> {
        self.records_in(..)
    }

    /// The finished sessions whose `index` (connection order) is in `range`, in that order,
    /// with message headers parsed; only those are copied.
    pub fn records_in(&self, range: impl RangeBounds<u64>) -> Vec<SessionRecord> {
        let mut out: Vec<SessionRecord> = {
            let mut s = self.shared.store();
            s.sessions
                .iter_mut()
                .filter(|r| range.contains(&r.index))
                .map(|r| {
                    r.ensure_parsed();
                    r.clone()
                })
                .collect()
        };
        out.sort_by_key(|r| r.index);
        out
    }

    /// Forgets the kept session and message records and restarts the `sessions` and `messages`
    /// counters from zero (so [`Self::wait_for_sessions`]`(1)` waits for the next session);
    /// returns how many records were dropped (sessions, messages). Sessions in progress are
    /// recorded and counted when they end; session indexes keep increasing.
    pub fn clear_records(&self) -> (usize, usize) {
        let mut s = self.shared.store();
        let dropped = (s.sessions.len(), s.messages.len());
        s.sessions.clear();
        s.messages.clear();
        s.bytes = 0;
        s.messages_dropped = 0;
        self.shared.counts.send_modify(|c| {
            c.sessions = 0;
            c.messages = 0;
        });
        dropped
    }

    /// The scripted faults in force for new sessions.
    pub fn faults(&self) -> Vec<Fault> {
        self.shared.fault_book().faults().to_vec()
    }

    /// Replaces the scripted faults (after validating every one) for the sessions that start
    /// from now on, with the same seed; `first_attempts` counts start again from zero. Sessions
    /// in progress keep the faults they started with.
    pub fn replace_faults(&self, faults: Vec<Fault>) -> Result<(), MockEopError> {
        for (index, f) in faults.iter().enumerate() {
            f.validate()
                .map_err(|message| MockEopError::Fault { index, message })?;
        }
        let book = Arc::new(FaultBook::new(faults, self.shared.seed));
        *self.shared.faults.lock().unwrap_or_else(|p| p.into_inner()) = book;
        Ok(())
    }

    /// Messages answered 250, oldest first, headers parsed.
    pub fn messages(&self) -> Vec<MessageRecord> {
        let mut s = self.shared.store();
        for m in s.messages.iter_mut() {
            m.ensure_parsed();
        }
        s.messages.iter().cloned().collect()
    }

    /// Messages numbered from `since` (0 = the first since the start or the last clear; a
    /// number dropped by `--keep` is skipped), at most `limit`, headers parsed, with their
    /// numbers. Only those are copied (their raw bytes are shared, not copied).
    pub fn messages_page(&self, since: u64, limit: usize) -> Vec<(u64, MessageRecord)> {
        let mut s = self.shared.store();
        let first = s.messages_dropped;
        let skip = usize::try_from(since.saturating_sub(first)).unwrap_or(usize::MAX);
        s.messages
            .iter_mut()
            .enumerate()
            .skip(skip)
            .take(limit)
            .map(|(i, m)| {
                m.ensure_parsed();
                (first + i as u64, m.clone())
            })
            .collect()
    }

    /// The number the next message will get, and the number of the oldest one kept.
    pub fn message_numbers(&self) -> (u64, u64) {
        let s = self.shared.store();
        (
            s.messages_dropped + s.messages.len() as u64,
            s.messages_dropped,
        )
    }

    /// The raw bytes of message number `n` ([`Self::messages_page`]), if it is kept.
    pub fn message_raw(&self, n: u64) -> Option<Arc<[u8]>> {
        let s = self.shared.store();
        let i = usize::try_from(n.checked_sub(s.messages_dropped)?).ok()?;
        s.messages.get(i).map(|m| Arc::clone(&m.raw))
    }

    /// Waits until at least `n` sessions have finished (no polling; bound it with
    /// `tokio::time::timeout`).
    pub async fn wait_for_sessions(&self, n: u64) -> Counts {
        let mut rx = self.shared.counts.subscribe();
        let c = rx.wait_for(|c| c.sessions >= n).await.map(|c| *c);
        c.unwrap_or_else(|_| self.counts())
    }

    /// Waits until at least `n` messages have been answered 250.
    pub async fn wait_for_messages(&self, n: u64) -> Counts {
        let mut rx = self.shared.counts.subscribe();
        let c = rx.wait_for(|c| c.messages >= n).await.map(|c| *c);
        c.unwrap_or_else(|_| self.counts())
    }

    /// A new in-memory connection; the session believes the client is at `peer`.
    pub fn connect_in_memory(&self, peer: SocketAddr) -> DuplexStream {
        let (client, server) = tokio::io::duplex(64 * 1024);
        self.serve_stream(server, peer, self.local_addr());
        client
    }

    /// Serves one SMTP session on `stream` (any async byte stream).
    pub fn serve_stream<S>(&self, stream: S, peer: SocketAddr, local: SocketAddr) -> JoinHandle<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        spawn_session(Arc::clone(&self.shared), stream, peer, local)
    }

    /// Stops accepting, tells open sessions `421 4.3.2 Service not available` (a session
    /// reading a message gets `limits.shutdown_grace` to finish it first), waits for them to
    /// end, and returns the records.
    pub async fn shutdown(mut self) -> Vec<SessionRecord> {
        if let Some(a) = self.accept.take() {
            self.shared.shutdown.send_replace(true);
            let _ = a.await;
        }
        self.stop().await;
        self.records()
    }

    /// [`Self::shutdown`] through a shared handle (the API holds one too): stops accepting,
    /// ends the sessions as `shutdown` does and waits until every session's record (and its
    /// hooks) is done. The handle still answers for records afterwards.
    pub async fn stop(&self) {
        self.shared.shutdown.send_replace(true);
        let mut rx = self.shared.counts.subscribe();
        let _ = rx.wait_for(|c| c.active == 0).await;
    }
}

impl Drop for MockEopHandle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}
