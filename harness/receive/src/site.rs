//! Several receiving servers behind one name, with the perimeter in front: the unit a scenario
//! serves and `hybridlab receive` puts on a socket.
//!
//! A connection is first judged by the [`Perimeter`] (allow-list, NAT), then given to one server
//! ([`Balancing`]: round robin or seeded), whose connector for the client's address answers it.
//! With SMTP inspection the bytes pass through [`SmtpInspection`] both ways; with a TLS device the
//! device's front half answers until TLS is up and only then is a server session opened.
//! Everything is recorded in [`SiteRecords`]: each server's sessions (their RECV-log sessions
//! inside), accepted messages, refused connections, device sessions and Windows events.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use hybridlab_artefacts::format_list::FlOptions;
use hybridlab_artefacts::protocol_log::{
    LogFile, LogWriterOptions, ProtocolLogSession, write_files,
};
use hybridlab_labkit::clock::LabClock;
use hybridlab_model::event::WindowsEvent;
use hybridlab_model::reply::Reply;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::driver::drive_session;
use super::perimeter::{
    Admission, DeviceAction, DeviceFront, DeviceSession, Perimeter, Refusal, SmtpInspection,
};
use super::server::{ReceiveServer, RunningServer, StartError, mix};
use super::session::{ReceiveSessionRecord, ReceivedMessage};
use super::tls::{ServerTlsVersions, server_config};

/// Which server a session lands on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Balancing {
    /// In turn.
    #[default]
    RoundRobin,
    /// Pseudo-randomly from a seed (reproducible).
    Seeded {
        /// The seed.
        seed: u64,
    },
}

/// A connection the site did not serve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedConnection {
    /// The client.
    pub peer: SocketAddr,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Why (`allow-list (reset)`, `no connector`, `MaxInboundConnectionPerSource`...).
    pub reason: String,
}

/// Everything the site produced so far.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct SiteRecords {
    /// Finished sessions, all servers, in the order they ended.
    pub sessions: Vec<ReceiveSessionRecord>,
    /// Accepted messages, in the order they were accepted.
    pub messages: Vec<ReceivedMessage>,
    /// Connections turned away.
    pub refused: Vec<RefusedConnection>,
    /// Sessions at the TLS device.
    pub device_sessions: Vec<DeviceSession>,
    /// Windows events: each server's start-up events, then those sessions caused.
    pub events: Vec<(String, WindowsEvent)>,
}

/// The TLS device, ready.
#[derive(Debug)]
struct DeviceRuntime {
    config: Arc<rustls::ServerConfig>,
    certificate: hybridlab_model::x509::CertFacts,
    hostname: String,
    inside: IpAddr,
}

/// Started servers behind one name, with the perimeter.
#[derive(Debug)]
pub struct ReceiveSite {
    servers: Vec<RunningServer>,
    perimeter: Perimeter,
    device: Option<DeviceRuntime>,
    balancing: Balancing,
    clock: LabClock,
    counter: std::sync::atomic::AtomicU64,
    active: Mutex<HashMap<(usize, IpAddr), u32>>,
    records: Mutex<SiteRecords>,
    shutdown: watch::Sender<bool>,
}

/// Errors starting a site.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SiteError {
    /// A server did not start.
    #[error("server {server}: {source}")]
    Server {
        /// The server.
        server: String,
        /// Why.
        #[source]
        source: StartError,
    },
    /// The TLS device's certificate is not usable.
    #[error("TLS device: {0}")]
    Device(String),
    /// No server.
    #[error("a receive site needs at least one server")]
    Empty,
}

impl ReceiveSite {
    /// Starts every server at the clock's time (session ids seeded by `seed`) behind
    /// `perimeter`, round robin.
    ///
    /// # Errors
    /// A server that does not start, an unusable device certificate, or no server.
    pub fn start(
        servers: Vec<ReceiveServer>,
        perimeter: Perimeter,
        clock: LabClock,
        seed: u64,
    ) -> Result<Self, SiteError> {
        if servers.is_empty() {
            return Err(SiteError::Empty);
        }
        let now = clock.now();
        let mut records = SiteRecords::default();
        let mut running = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            let r = s
                .start(now, mix(seed ^ i as u64))
                .map_err(|source| SiteError::Server {
                    server: s.name.clone(),
                    source,
                })?;
            records
                .events
                .extend(r.start_events.iter().map(|e| (s.name.clone(), e.clone())));
            running.push(r);
        }
        let device = match &perimeter.tls_device {
            None => None,
            Some(d) => {
                let entry = d.store.entry(&d.certificate).ok_or_else(|| {
                    SiteError::Device(format!("no certificate {:?}", d.certificate))
                })?;
                let config = server_config(&d.store, entry, ServerTlsVersions::default())
                    .map_err(|e| SiteError::Device(e.to_string()))?
                    .ok_or_else(|| SiteError::Device("no TLS version".into()))?;
                Some(DeviceRuntime {
                    config,
                    certificate: entry.facts.clone(),
                    hostname: d.hostname.clone(),
                    inside: d.inside_address,
                })
            }
        };
        let (shutdown, _) = watch::channel(false);
        Ok(Self {
            servers: running,
            perimeter,
            device,
            balancing: Balancing::RoundRobin,
            clock,
            counter: Default::default(),
            active: Mutex::new(HashMap::new()),
            records: Mutex::new(records),
            shutdown,
        })
    }

    /// The same site with another balancing rule.
    pub fn with_balancing(mut self, balancing: Balancing) -> Self {
        self.balancing = balancing;
        self
    }

    /// The started servers.
    pub fn servers(&self) -> &[RunningServer] {
        &self.servers
    }

    /// A copy of the records so far.
    pub fn records(&self) -> SiteRecords {
        self.lock().clone()
    }

    /// Asks every session to end (`421 4.3.2 Service not available`) and
    /// [`ReceiveSite::serve_listener`] to stop accepting.
    pub fn shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Each server's RECV log files (`RECVyyyymmdd-N.LOG`), in the server's certificate block
    /// style: `(server name, files)`.
    pub fn protocol_log_files(&self) -> Vec<(String, Vec<LogFile>)> {
        let records = self.lock();
        self.servers
            .iter()
            .map(|s| {
                let sessions: Vec<ProtocolLogSession> = records
                    .sessions
                    .iter()
                    .filter(|r| r.server == s.context.name)
                    .filter_map(|r| r.protocol_log.clone())
                    .collect();
                let opts =
                    LogWriterOptions::receive().with_cert_style(s.context.settings.cert_block);
                (s.context.name.clone(), write_files(&sessions, &opts))
            })
            .collect()
    }

    /// `Get-ReceiveConnector | Format-List` of every server.
    pub fn receive_connector_listing(&self) -> String {
        let rows: Vec<_> = self
            .servers
            .iter()
            .flat_map(|s| s.connectors.iter().map(|c| c.connector.listing_row()))
            .collect();
        hybridlab_artefacts::connectors::write_receive_connector_list(&rows, &FlOptions::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SiteRecords> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn refuse(&self, peer: SocketAddr, reason: String) {
        let at = self.clock.now();
        self.lock()
            .refused
            .push(RefusedConnection { peer, at, reason });
    }

    fn pick_server(&self) -> usize {
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let len = self.servers.len() as u64;
        (match self.balancing {
            Balancing::RoundRobin => n % len,
            Balancing::Seeded { seed } => mix(seed ^ mix(n)) % len,
        }) as usize
    }

    /// Serves one connection from `peer` arriving at `local` over `stream` until it ends.
    /// Returns `false` when the perimeter or the server refused it.
    pub async fn serve_stream<S>(&self, mut stream: S, peer: SocketAddr, local: SocketAddr) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let seen_as = match self.perimeter.admit(peer) {
            Admission::Accept { seen_as } => seen_as,
            Admission::Refuse { refusal } => {
                self.refuse(peer, format!("perimeter allow-list ({refusal:?})"));
                if refusal == Refusal::Drop {
                    let _ = tokio::time::timeout(self.perimeter.drop_hold, async {
                        let mut b = [0u8; 512];
                        while matches!(stream.read(&mut b).await, Ok(n) if n > 0) {}
                    })
                    .await;
                }
                return false;
            }
        };
        if let Some(device) = &self.device {
            return self.serve_through_device(device, stream, peer, local).await;
        }
        let index = self.pick_server();
        let Some(guard) = self.enter(index, seen_as, &mut stream).await else {
            return false;
        };
        let server = &self.servers[index];
        let Some(session) = server.open_session(local, seen_as, self.clock.now()) else {
            drop(guard);
            self.refuse(
                peer,
                format!(
                    "{}: no receive connector for {}",
                    server.context.name,
                    seen_as.ip()
                ),
            );
            return false;
        };
        let tls = session.connector().tls_config.clone();
        let record = if self.perimeter.smtp_inspection {
            let (inner, outer) = tokio::io::duplex(64 * 1024);
            let pump = relay(
                stream,
                outer,
                Some(SmtpInspection::default()),
                Vec::new(),
                false,
            );
            let drive = self.drive(session, inner, tls);
            let (record, ()) = tokio::join!(drive, pump);
            record
        } else {
            self.drive(session, stream, tls).await
        };
        drop(guard);
        self.finish(record);
        true
    }

    async fn drive<S>(
        &self,
        session: super::session::ReceiveSession,
        stream: S,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> ReceiveSessionRecord
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut on_message = |m: &ReceivedMessage| self.lock().messages.push(m.clone());
        drive_session(
            session,
            stream,
            tls,
            self.clock.clone(),
            self.shutdown.subscribe(),
            &mut on_message,
        )
        .await
    }

    fn finish(&self, record: ReceiveSessionRecord) {
        let mut r = self.lock();
        for e in &record.windows_events {
            r.events.push((record.server.clone(), e.clone()));
        }
        r.sessions.push(record);
    }

    /// Counts the session against the connector's connection limits; over a limit the client
    /// gets `421 4.3.2 The maximum number of concurrent connections has exceeded a limit,
    /// closing transmission channel`.
    async fn enter<S>(
        &self,
        index: usize,
        seen_as: SocketAddr,
        stream: &mut S,
    ) -> Option<ActiveGuard<'_>>
    where
        S: AsyncWrite + Unpin,
    {
        let server = &self.servers[index];
        let connector = server.connector_for(seen_as.ip());
        let (per_source, total) = connector
            .as_ref()
            .map(|c| {
                (
                    c.connector.max_inbound_connection_per_source,
                    c.connector.max_inbound_connection,
                )
            })
            .unwrap_or((u32::MAX, u32::MAX));
        let over = {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            let all: u32 = active
                .iter()
                .filter(|((i, _), _)| *i == index)
                .map(|(_, n)| *n)
                .sum();
            let mine = active.entry((index, seen_as.ip())).or_insert(0);
            if *mine >= per_source || all >= total {
                true
            } else {
                *mine += 1;
                false
            }
        };
        if over {
            let r = Reply::new(
                421,
                "4.3.2 The maximum number of concurrent connections has exceeded a limit, closing transmission channel",
            );
            let _ = stream.write_all(&r.to_wire()).await;
            let _ = stream.shutdown().await;
            self.refuse(
                seen_as,
                format!("{}: connection limit", server.context.name),
            );
            return None;
        }
        Some(ActiveGuard {
            site: self,
            key: (index, seen_as.ip()),
        })
    }

    async fn serve_through_device<S>(
        &self,
        device: &DeviceRuntime,
        mut stream: S,
        peer: SocketAddr,
        local: SocketAddr,
    ) -> bool
    where
        S: AsyncRead + AsyncWrite + Unpin + Send,
    {
        let mut record = DeviceSession {
            peer,
            certificate: device.certificate.clone(),
            handshake_completed: false,
            error: None,
            relayed: false,
        };
        let mut front = DeviceFront::new(&device.hostname);
        // Plaintext until STARTTLS.
        let started = device_phase(&mut front, &mut stream).await;
        if !started {
            self.lock().device_sessions.push(record);
            return true;
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&device.config));
        let mut tls = match acceptor.accept(stream).await {
            Ok(t) => t,
            Err(e) => {
                record.error = Some(e.to_string());
                self.lock().device_sessions.push(record);
                return true;
            }
        };
        record.handshake_completed = true;
        front.handle_tls_established();
        let first = device_phase_tls(&mut front, &mut tls).await;
        let Some(first) = first else {
            self.lock().device_sessions.push(record);
            return true;
        };
        let seen_as = SocketAddr::new(device.inside, peer.port());
        let index = self.pick_server();
        let server = &self.servers[index];
        let Some(session) = server.open_session(local, seen_as, self.clock.now()) else {
            self.lock().device_sessions.push(record);
            self.refuse(
                seen_as,
                format!("{}: no receive connector", server.context.name),
            );
            return false;
        };
        record.relayed = true;
        let inner_tls = session.connector().tls_config.clone();
        let (inner, outer) = tokio::io::duplex(64 * 1024);
        let pump = relay(tls, outer, None, first, true);
        let drive = self.drive(session, inner, inner_tls);
        let (session_record, ()) = tokio::join!(drive, pump);
        self.finish(session_record);
        self.lock().device_sessions.push(record);
        true
    }

    /// Accepts connections on `listener` until [`ReceiveSite::shutdown`], then waits for the
    /// sessions in flight (they were told to end) and returns. Refused sources get a TCP reset.
    pub async fn serve_listener(self: Arc<Self>, listener: tokio::net::TcpListener) {
        let mut stop = self.shutdown.subscribe();
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((stream, peer)) = accepted else { continue };
                    let local = stream.local_addr().unwrap_or(peer);
                    if matches!(self.perimeter.admit(peer), Admission::Refuse { refusal: Refusal::Reset }) {
                        // SO_LINGER 0: close with a reset, as a firewall's reject rule.
                        #[allow(deprecated)]
                        let _ = stream.set_linger(Some(std::time::Duration::ZERO));
                        self.refuse(peer, "perimeter allow-list (Reset)".into());
                        drop(stream);
                        continue;
                    }
                    let site = Arc::clone(&self);
                    tasks.spawn(async move { site.serve_stream(stream, peer, local).await; });
                }
                _ = stop.changed() => break,
            }
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Releases a connection slot.
struct ActiveGuard<'a> {
    site: &'a ReceiveSite,
    key: (usize, IpAddr),
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        let mut active = self.site.active.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = active.get_mut(&self.key) {
            *n = n.saturating_sub(1);
        }
    }
}

/// Runs the device's front half in plaintext; `true` when STARTTLS was accepted.
async fn device_phase<S: AsyncRead + AsyncWrite + Unpin>(
    front: &mut DeviceFront,
    stream: &mut S,
) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        while let Some(a) = front.poll_action() {
            match a {
                DeviceAction::Write(b) => {
                    if stream.write_all(&b).await.is_err() {
                        return false;
                    }
                }
                DeviceAction::StartTls => {
                    let _ = stream.flush().await;
                    return true;
                }
                DeviceAction::Attach(_) => return false,
                DeviceAction::Close => {
                    let _ = stream.shutdown().await;
                    return false;
                }
            }
        }
        let _ = stream.flush().await;
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => {
                front.handle_eof();
                return false;
            }
            Ok(n) => front.handle_input(&buf[..n]),
        }
    }
}

/// After the device's handshake: waits for the first client bytes (they attach the session).
async fn device_phase_tls<S: AsyncRead + AsyncWrite + Unpin>(
    front: &mut DeviceFront,
    stream: &mut S,
) -> Option<Vec<u8>> {
    let mut buf = [0u8; 4096];
    match stream.read(&mut buf).await {
        Ok(0) | Err(_) => {
            front.handle_eof();
            None
        }
        Ok(n) => {
            front.handle_input(&buf[..n]);
            match front.poll_action() {
                Some(DeviceAction::Attach(b)) => Some(b),
                _ => None,
            }
        }
    }
}

/// Relays between a client stream and the server side of a duplex, through `inspection` when
/// given; `first` goes to the server before anything else; `skip_banner` drops the server's first
/// line (the device already greeted the client).
async fn relay<C, S>(
    client: C,
    server: S,
    inspection: Option<SmtpInspection>,
    first: Vec<u8>,
    skip_banner: bool,
) where
    C: AsyncRead + AsyncWrite + Unpin + Send,
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let inspection = inspection.map(|i| Arc::new(Mutex::new(i)));
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(server);
    let up_filter = inspection.clone();
    let up = async move {
        if !first.is_empty() && sw.write_all(&first).await.is_err() {
            return;
        }
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let bytes = match &up_filter {
                        Some(f) => f
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .client_to_server(&buf[..n]),
                        None => buf[..n].to_vec(),
                    };
                    if sw.write_all(&bytes).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 16 * 1024];
        let mut skipping = skip_banner;
        loop {
            match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let mut chunk = &buf[..n];
                    if skipping {
                        match chunk.iter().position(|&b| b == b'\n') {
                            Some(p) => {
                                chunk = &chunk[p + 1..];
                                skipping = false;
                            }
                            None => continue,
                        }
                    }
                    let bytes = match &inspection {
                        Some(f) => f
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .server_to_client(chunk),
                        None => chunk.to_vec(),
                    };
                    if cw.write_all(&bytes).await.is_err() {
                        break;
                    }
                    let _ = cw.flush().await;
                }
            }
        }
        let _ = cw.shutdown().await;
    };
    // The server's side ending ends the relay (the client may still hold its side open); the
    // client's side ending only half-closes toward the server, which then answers and closes.
    tokio::pin!(up, down);
    tokio::select! {
        () = &mut down => {}
        () = &mut up => down.await,
    }
}
