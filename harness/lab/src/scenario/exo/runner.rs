//! The replay of an `exo-to-onprem` scenario: the receive side's PKI is generated once (every
//! server's `LocalMachine\My` is a subset of it, so one certificate keeps one thumbprint), each
//! server trusts Exchange Online's client-certificate root, the site starts behind its
//! perimeter, and Exchange Online's queue (`mock_eop::exo::ExoQueue`) delivers every message
//! through the tenant's outbound connector, retrying on the lab clock.
//!
//! Sessions come from `[exo] sources` in turn. In memory each dial is an in-memory duplex whose
//! other end the site serves (the perimeter judges the source first: a refused source is a
//! refused or timed-out connect for Exchange Online, and a refusal record for the site). Over
//! tcp the site listens on `127.0.0.1:0`; the dialer binds a loopback port, tells the accept loop
//! which Exchange Online address that port stands for, and the site sees that address.
//!
//! `[[changes]]` run before any attempt at or after their time: certificate changes touch the
//! server's store and take effect at the next restart (the transport caches its selection);
//! `set_receive_connector` takes effect at once (the connector reloads and selects again);
//! `restart_transport` restarts the server (or every server).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hybridlab_labkit::clock::LabClock;
use hybridlab_model::delivery::DeliveryRecord;
use hybridlab_model::exo::Tenant;
use hybridlab_model::identifier::X509Identifier;
use hybridlab_model::x509::CertFacts;
use hybridlab_onprem::certstore::{CertStore, StoreDescription};
use hybridlab_receive::connector::ReceiveConnector;
use hybridlab_receive::perimeter::{Admission, Perimeter, Refusal, TlsDevice};
use hybridlab_receive::server::{ReceiveServer, ServerSettings};
use hybridlab_receive::site::{ReceiveSite, SiteRecords};
use mock_eop::exo::{
    ConnectFailure, Dialed, Dialer, ExoIdentity, ExoQueue, ExoTls, NewMessage, ResolveError,
    Resolver, Route, attempt,
};
use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::model::ReceiveSpec;
use crate::scenario::RunError;
use crate::scenario::model::{ChangeAction, Scenario, TransportKind};

/// One receiving server as the run left it.
#[derive(Debug, Clone)]
pub struct ServerView {
    /// NetBIOS name.
    pub name: String,
    /// FQDN.
    pub fqdn: String,
    /// `LocalMachine\My` and the trust stores at the end of the run.
    pub store: Arc<CertStore>,
    /// Its receive connectors at the end of the run.
    pub connectors: Vec<ReceiveConnector>,
    /// Its settings.
    pub settings: ServerSettings,
    /// How each connector's STARTTLS certificate was chosen at the last (re)start:
    /// `(connector, narration, certificate)`.
    pub selections: Vec<(String, Vec<String>, Option<CertFacts>)>,
}

/// Everything an `exo-to-onprem` replay produced.
#[derive(Debug, Clone)]
pub struct ExoReplay {
    /// The scenario id.
    pub id: String,
    /// What carried the sessions.
    pub transport: TransportKind,
    /// Lab time at the start.
    pub start: OffsetDateTime,
    /// Lab time at the end.
    pub end: OffsetDateTime,
    /// The sending tenant (its outbound connectors).
    pub tenant: Tenant,
    /// Exchange Online's record of every message (trace and attempts), in submission order.
    pub records: Vec<DeliveryRecord>,
    /// The receive side's records, every (re)start of the site together.
    pub site: SiteRecords,
    /// The servers at the end of the run.
    pub servers: Vec<ServerView>,
    /// The TLS device's certificate, when there is one.
    pub device_certificate: Option<CertFacts>,
    /// Exchange Online's client certificate.
    pub exo_certificate: CertFacts,
    /// The admin's commands, with the lab time they ran at.
    pub admin: Vec<(OffsetDateTime, String)>,
    /// The files of both sides ([`super::artefacts`]).
    pub files: Vec<super::artefacts::OutFile>,
    /// The diagnosis of those files (the closed loop).
    pub diagnosis: hybridlab_diagnose::Report,
    /// Real time the replay took.
    pub wall: Duration,
}

impl ExoReplay {
    /// Messages Exchange Online delivered.
    pub fn delivered(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r.attempts.last().is_some_and(|a| a.outcome.is_delivered()))
            .count()
    }

    /// Delivery attempts (connections tried, DNS failures included).
    pub fn attempts(&self) -> usize {
        self.records.iter().map(|r| r.attempts.len()).sum()
    }
}

/// Replays an `exo-to-onprem` scenario on a fresh current-thread runtime.
///
/// # Errors
/// The lab could not be built (see [`RunError`]).
pub fn replay(s: &Scenario, kind: TransportKind) -> Result<ExoReplay, RunError> {
    if kind == TransportKind::Tcp && s.run.memory_only {
        return Err(RunError::Unsupported(
            "memory-only scenario (virtual time inside a session): skipped over tcp".into(),
        ));
    }
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all();
    if kind == TransportKind::Memory {
        b.start_paused(true);
    }
    let rt = b.build()?;
    #[allow(clippy::disallowed_methods)] // measuring the replay's real duration for the report
    let wall = std::time::Instant::now();
    let mut r = rt.block_on(run(s, kind))?;
    r.wall = wall.elapsed();
    Ok(r)
}

fn unsupported(e: impl std::fmt::Display) -> RunError {
    RunError::Unsupported(e.to_string())
}

/// The receive side as the admin's changes leave it.
struct Side {
    spec: ReceiveSpec,
    master: CertStore,
    stores: Vec<CertStore>,
    connectors: Vec<ReceiveConnector>,
    perimeter: Perimeter,
    clock: LabClock,
    seed: u64,
    generation: u64,
}

impl Side {
    fn build(
        s: &Scenario,
        clock: &LabClock,
        exo_root: &CertificateDer<'static>,
    ) -> Result<Self, RunError> {
        let spec = s
            .receive
            .clone()
            .ok_or_else(|| unsupported("no [receive]"))?;
        let desc = StoreDescription {
            authorities: crate::scenario::load::authorities_in_order(&spec.authorities),
            certificates: spec.certificates.clone(),
        };
        let master = CertStore::build(&desc, clock.now())?;
        let mut stores = Vec::new();
        for sv in &spec.servers {
            let mut store = master.clone();
            let wanted: Vec<String> = match &sv.certificates {
                Some(list) => list.clone(),
                None => spec.certificates.iter().map(|c| c.name.clone()).collect(),
            };
            let thumbs: Vec<String> = store
                .my()
                .iter()
                .map(|e| e.facts.thumbprint.clone())
                .collect();
            let mut removed = Vec::new();
            for t in thumbs {
                removed.extend(store.remove(&t));
            }
            for name in &wanted {
                if let Some(e) = removed.iter().find(|e| &e.name == name) {
                    store.insert(e.clone(), usize::MAX);
                }
            }
            if sv.trusts_exo_root {
                store.add_trusted_root("Exchange Online root", exo_root.clone())?;
            }
            stores.push(store);
        }
        let mut connectors = Vec::new();
        for sv in &spec.servers {
            let mine: Vec<(usize, &ReceiveConnector)> = spec
                .connectors
                .iter()
                .enumerate()
                .filter(|(_, c)| c.server.eq_ignore_ascii_case(&sv.name))
                .collect();
            if mine.is_empty() {
                connectors.push(ReceiveConnector::default_frontend(&sv.name));
            }
            for (i, c) in mine {
                let mut c = c.clone();
                if let Some(name) = spec.connector_certificates.get(&i) {
                    c.tls_certificate_name = Some(identifier_of(&master, name)?);
                }
                connectors.push(c);
            }
        }
        let p = &spec.perimeter;
        let perimeter = Perimeter {
            allow: p.allow.clone(),
            refusal: p.refusal,
            drop_hold: p.drop_hold.0,
            nat: p.nat,
            smtp_inspection: p.smtp_inspection,
            tls_device: p.tls_device.as_ref().map(|d| TlsDevice {
                store: Arc::new(master.clone()),
                certificate: d.certificate.clone(),
                hostname: d.hostname.clone(),
                inside_address: d.inside_address,
            }),
        };
        Ok(Self {
            spec,
            master,
            stores,
            connectors,
            perimeter,
            clock: clock.clone(),
            seed: s.scenario.seed,
            generation: 0,
        })
    }

    fn servers(&self) -> Vec<ReceiveServer> {
        self.spec
            .servers
            .iter()
            .zip(&self.stores)
            .map(|(sv, store)| {
                let mut server = ReceiveServer::new(&sv.name, &sv.fqdn(), Arc::new(store.clone()));
                server.connectors = self
                    .connectors
                    .iter()
                    .filter(|c| c.server.eq_ignore_ascii_case(&sv.name))
                    .cloned()
                    .collect();
                server.settings = sv.settings.clone();
                server
            })
            .collect()
    }

    /// Starts the site anew (a restart, or the start).
    fn start_site(&mut self) -> Result<ReceiveSite, RunError> {
        self.generation += 1;
        let site = ReceiveSite::start(
            self.servers(),
            self.perimeter.clone(),
            self.clock.clone(),
            self.seed ^ self.generation.wrapping_mul(0x9E37),
        )
        .map_err(unsupported)?;
        Ok(site.with_balancing(self.spec.balancing))
    }

    fn server_index(&self, name: &str) -> Option<usize> {
        self.spec
            .servers
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(name))
    }

    fn targets(&self, server: Option<&str>) -> Vec<usize> {
        match server.and_then(|n| self.server_index(n)) {
            Some(i) => vec![i],
            None => (0..self.stores.len()).collect(),
        }
    }

    fn views(&self, site: &ReceiveSite) -> Vec<ServerView> {
        self.spec
            .servers
            .iter()
            .zip(&self.stores)
            .zip(site.servers())
            .map(|((sv, store), running)| ServerView {
                name: sv.name.clone(),
                fqdn: sv.fqdn(),
                store: Arc::new(store.clone()),
                connectors: self
                    .connectors
                    .iter()
                    .filter(|c| c.server.eq_ignore_ascii_case(&sv.name))
                    .cloned()
                    .collect(),
                settings: sv.settings.clone(),
                selections: running
                    .connectors
                    .iter()
                    .map(|c| {
                        (
                            c.connector.name.clone(),
                            c.selection.narrate(),
                            c.certificate.clone(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }
}

/// A scenario's receive side, started for a real listener (`hybridlab receive --scenario`).
#[derive(Debug)]
pub struct ServedSide {
    /// The started site (serve it with [`ReceiveSite::serve_listener`]).
    pub site: ReceiveSite,
    /// The servers as started (stores, connectors, settings).
    pub servers: Vec<ReceiveServer>,
    /// The roots of the scenario's PKI (`[receive.authorities]` without an issuer), for a
    /// client's trust file.
    pub roots: Vec<CertificateDer<'static>>,
}

/// Starts the receive side of an `exo-to-onprem` scenario on `clock`. Every server trusts the
/// scenario's Exchange Online client root and `client_roots` (e.g. `mock-eop deliver`'s).
///
/// # Errors
/// The scenario has no `[receive]`, or its PKI or a server does not start.
pub fn receive_side(
    s: &Scenario,
    clock: &LabClock,
    client_roots: &[CertificateDer<'static>],
) -> Result<ServedSide, RunError> {
    let identity = ExoIdentity::generate(clock.epoch()).map_err(unsupported)?;
    let mut side = Side::build(s, clock, &identity.trust_anchor)?;
    for store in &mut side.stores {
        for (i, r) in client_roots.iter().enumerate() {
            store.add_trusted_root(&format!("client root {i}"), r.clone())?;
        }
    }
    let roots = side
        .spec
        .authorities
        .values()
        .filter(|a| a.issuer.is_none())
        .filter_map(|a| side.master.authority(&a.name).map(|ca| ca.cert.der.clone()))
        .collect();
    let site = side.start_site()?;
    Ok(ServedSide {
        site,
        servers: side.servers(),
        roots,
    })
}

fn identifier_of(store: &CertStore, name: &str) -> Result<X509Identifier, RunError> {
    let e = store
        .entry(name)
        .ok_or_else(|| unsupported(format!("no certificate named {name:?}")))?;
    e.x509_identifier().parse().map_err(unsupported)
}

/// What the dialers share with the loop: the site in service, the sessions it serves, and what
/// earlier sites (before a restart) recorded.
struct Hub {
    site: Mutex<Arc<ReceiveSite>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    perimeter: Perimeter,
    sources: Vec<IpAddr>,
    next: AtomicUsize,
    /// The address the servers listen on (the LED's `LastAttemptedIP`).
    local: SocketAddr,
    harvest: Mutex<SiteRecords>,
    /// Servers whose start-up events the current site should contribute.
    started: Mutex<Vec<String>>,
    kind: TransportKind,
}

impl Hub {
    fn site(&self) -> Arc<ReceiveSite> {
        Arc::clone(&self.site.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn peer(&self) -> SocketAddr {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let src = self
            .sources
            .get(n % self.sources.len().max(1))
            .copied()
            .unwrap_or(IpAddr::V4(Ipv4Addr::new(40, 107, 22, 55)));
        SocketAddr::new(src, 49152 + (n % 16_000) as u16)
    }

    fn push(&self, h: JoinHandle<()>) {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner()).push(h);
    }

    /// Waits for every session the site is serving (bounded).
    async fn settle(&self) {
        let handles: Vec<_> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(30), h).await;
        }
    }

    /// Puts the site's records (start-up events only of the servers that started with it) into
    /// the harvest.
    fn harvest_site(&self, site: &ReceiveSite) {
        let records = site.records();
        let start_count: usize = site.servers().iter().map(|s| s.start_events.len()).sum();
        let started = self
            .started
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let mut h = self.harvest.lock().unwrap_or_else(|p| p.into_inner());
        for (i, e) in records.events.into_iter().enumerate() {
            if i >= start_count || started.iter().any(|s| s.eq_ignore_ascii_case(&e.0)) {
                h.events.push(e);
            }
        }
        h.sessions.extend(records.sessions);
        h.messages.extend(records.messages);
        h.refused.extend(records.refused);
        h.device_sessions.extend(records.device_sessions);
    }

    /// Replaces the site (after settling the old one's sessions).
    async fn replace(&self, site: ReceiveSite, started: Vec<String>) {
        self.settle().await;
        let old = std::mem::replace(
            &mut *self.site.lock().unwrap_or_else(|p| p.into_inner()),
            Arc::new(site),
        );
        old.shutdown();
        self.harvest_site(&old);
        *self.started.lock().unwrap_or_else(|p| p.into_inner()) = started;
    }
}

/// In-memory dialing: a duplex per session, the site serving the other end.
struct MemoryDialer(Arc<Hub>);

impl Dialer for MemoryDialer {
    type Stream = tokio::io::DuplexStream;

    async fn dial(&self, _target: SocketAddr) -> Result<Dialed<Self::Stream>, ConnectFailure> {
        let hub = &self.0;
        let peer = hub.peer();
        let (client, server) = tokio::io::duplex(64 * 1024);
        let site = hub.site();
        let local = hub.local;
        hub.push(tokio::spawn(async move {
            site.serve_stream(server, peer, local).await;
        }));
        match hub.perimeter.admit(peer) {
            Admission::Accept { .. } => Ok(Dialed {
                stream: client,
                local: peer,
            }),
            Admission::Refuse {
                refusal: Refusal::Reset,
            } => Err(ConnectFailure::Refused),
            Admission::Refuse {
                refusal: Refusal::Drop,
            } => {
                drop(client);
                // silence: the connect timeout ends the attempt (4.4.315)
                std::future::pending::<()>().await;
                Err(ConnectFailure::TimedOut)
            }
        }
    }
}

/// Local port -> the Exchange Online address it stands for, and the accept loop's
/// acknowledgement.
type Pending = Arc<Mutex<HashMap<u16, (IpAddr, oneshot::Sender<()>)>>>;

/// Loopback dialing: the accept loop learns which Exchange Online address a local port stands
/// for before the connect.
struct TcpSiteDialer {
    hub: Arc<Hub>,
    listener: SocketAddr,
    pending: Pending,
}

impl Dialer for TcpSiteDialer {
    type Stream = tokio::net::TcpStream;

    async fn dial(&self, _target: SocketAddr) -> Result<Dialed<Self::Stream>, ConnectFailure> {
        let peer = self.hub.peer();
        let sock = tokio::net::TcpSocket::new_v4()
            .map_err(|e| mock_eop::exo::driver::connect_failure(&e))?;
        sock.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0))
            .map_err(|e| mock_eop::exo::driver::connect_failure(&e))?;
        let port = sock
            .local_addr()
            .map_err(|e| mock_eop::exo::driver::connect_failure(&e))?
            .port();
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(port, (peer.ip(), tx));
        let stream = sock
            .connect(self.listener)
            .await
            .map_err(|e| mock_eop::exo::driver::connect_failure(&e))?;
        let _ = tokio::time::timeout(Duration::from_secs(5), rx).await;
        let _ = stream.set_nodelay(true);
        match self.hub.perimeter.admit(peer) {
            Admission::Accept { .. } => Ok(Dialed {
                stream,
                local: SocketAddr::new(peer.ip(), port),
            }),
            Admission::Refuse { refusal } => {
                drop(stream);
                Err(match refusal {
                    Refusal::Reset => ConnectFailure::Refused,
                    Refusal::Drop => ConnectFailure::TimedOut,
                })
            }
        }
    }
}

/// Accepts loopback connections and serves each as coming from the address its port stands for.
async fn accept_loop(listener: tokio::net::TcpListener, hub: Arc<Hub>, pending: Pending) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            continue;
        };
        let entry = pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&addr.port());
        let Some((src, ack)) = entry else { continue };
        let site = hub.site();
        let peer = SocketAddr::new(src, addr.port());
        let local = hub.local;
        hub.push(tokio::spawn(async move {
            site.serve_stream(stream, peer, local).await;
        }));
        let _ = ack.send(());
    }
}

/// Resolves every name to the site's address (the smart host's A record); MX hosts are
/// `mail.<domain>`.
struct SiteResolver(IpAddr);

impl Resolver for SiteResolver {
    fn resolve(&self, _host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        Ok(vec![self.0])
    }

    fn mx(&self, domain: &str) -> Result<Vec<String>, ResolveError> {
        Ok(vec![format!("mail.{domain}")])
    }
}

/// One admin change, resolved.
#[derive(Debug, Clone)]
enum Step {
    Remove(Option<String>, String),
    Install(Option<String>, String),
    SetConnector(super::model::ReceiveConnectorChange),
    Restart(Option<String>),
}

fn timeline(s: &Scenario) -> Vec<(OffsetDateTime, Step)> {
    let mut order: Vec<usize> = (0..s.changes.len()).collect();
    order.sort_by_key(|&i| s.changes[i].at.0);
    order
        .into_iter()
        .filter_map(|i| {
            let c = &s.changes[i];
            let at = s.run.start + c.at.to_time();
            let step = match c.action()? {
                ChangeAction::RemoveCertificate(n) => Step::Remove(c.server.clone(), n.into()),
                ChangeAction::InstallCertificate(n) => Step::Install(c.server.clone(), n.into()),
                ChangeAction::SetReceiveConnector(rc) => Step::SetConnector(rc.clone()),
                ChangeAction::RestartTransport => Step::Restart(c.server.clone()),
                ChangeAction::SetSendConnector(_) | ChangeAction::RetryQueue => return None,
            };
            Some((at, step))
        })
        .collect()
}

/// Applies one change; gives the command the admin ran and the servers to restart (if any).
fn apply(side: &mut Side, step: &Step) -> Result<(String, Option<Vec<String>>), RunError> {
    let names = |ix: &[usize]| -> Vec<String> {
        ix.iter()
            .map(|&i| side.spec.servers[i].name.clone())
            .collect()
    };
    Ok(match step {
        Step::Remove(server, cert) => {
            let thumb = side
                .master
                .entry(cert)
                .map(|e| e.facts.thumbprint.clone())
                .unwrap_or_default();
            let ix = side.targets(server.as_deref());
            for &i in &ix {
                side.stores[i].remove(&thumb);
            }
            (
                format!(
                    "Remove-Item Cert:\\LocalMachine\\My\\{thumb} (on {})",
                    names(&ix).join(", ")
                ),
                None,
            )
        }
        Step::Install(server, cert) => {
            let entry = side
                .master
                .entry(cert)
                .cloned()
                .ok_or_else(|| unsupported(format!("no certificate {cert:?}")))?;
            let ix = side.targets(server.as_deref());
            for &i in &ix {
                if side.stores[i]
                    .by_thumbprint(&entry.facts.thumbprint)
                    .is_none()
                {
                    side.stores[i].insert(entry.clone(), usize::MAX);
                }
            }
            (
                format!(
                    "Import-ExchangeCertificate -Server {} ({}, thumbprint {})",
                    names(&ix).join(","),
                    entry.facts.subject,
                    entry.facts.thumbprint
                ),
                None,
            )
        }
        Step::SetConnector(rc) => {
            let server = rc.server().unwrap_or_default().to_string();
            let slot = super::find_connector(&side.connectors, &server, rc.name())
                .ok_or_else(|| unsupported(format!("{server}: no such receive connector")))?;
            let mut after = rc.apply(&side.connectors[slot]).map_err(unsupported)?;
            if let Some(name) = &rc.certificate {
                after.tls_certificate_name = Some(identifier_of(&side.master, name)?);
            }
            let command = set_receive_connector_command(&after, rc);
            side.connectors[slot] = after;
            (command, Some(vec![server]))
        }
        Step::Restart(server) => {
            let ix = side.targets(server.as_deref());
            (
                format!(
                    "Restart-Service MSExchangeFrontEndTransport (on {})",
                    names(&ix).join(", ")
                ),
                Some(names(&ix)),
            )
        }
    })
}

/// `Set-ReceiveConnector "SERVER\Name" -Key value ...` from the change's keys.
fn set_receive_connector_command(
    after: &ReceiveConnector,
    rc: &super::model::ReceiveConnectorChange,
) -> String {
    fn param(key: &str) -> String {
        match key {
            "require_tls" => "RequireTLS".into(),
            "remote_ip_ranges" => "RemoteIPRanges".into(),
            "suppress_x_anonymous_tls" => "SuppressXAnonymousTls".into(),
            k => k
                .split('_')
                .map(|w| {
                    let mut c = w.chars();
                    c.next()
                        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                        .unwrap_or_default()
                })
                .collect(),
        }
    }
    fn value(v: &toml::Value) -> String {
        match v {
            toml::Value::String(s) if s.is_empty() => "$null".into(),
            toml::Value::String(s) => format!("\"{s}\""),
            toml::Value::Boolean(b) => if *b { "$true" } else { "$false" }.into(),
            toml::Value::Array(a) => a.iter().map(value).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        }
    }
    let mut out = format!("Set-ReceiveConnector \"{}\"", after.identity());
    if let Some(id) = rc
        .certificate
        .as_ref()
        .and(after.tls_certificate_name.as_ref())
    {
        out.push_str(&format!(" -TlsCertificateName \"{id}\""));
    }
    for (k, v) in &rc.keys {
        if k != "server" && k != "name" {
            out.push_str(&format!(" -{} {}", param(k), value(v)));
        }
    }
    out
}

async fn run(s: &Scenario, kind: TransportKind) -> Result<ExoReplay, RunError> {
    let start = s.run.start;
    let clock = LabClock::starting_at(start);
    let identity = Arc::new(ExoIdentity::generate(clock.epoch()).map_err(unsupported)?);
    let mut side = Side::build(s, &clock, &identity.trust_anchor)?;
    let public_roots: Vec<CertificateDer<'static>> = side
        .spec
        .authorities
        .values()
        .filter(|a| a.issuer.is_none() && a.public)
        .filter_map(|a| side.master.authority(&a.name).map(|ca| ca.cert.der.clone()))
        .collect();
    let settings = s.eop.delivery.clone();
    let tls =
        ExoTls::new(Arc::clone(&identity), &public_roots, settings.tls13).map_err(unsupported)?;
    let tenant = super::sending_tenant(s).map_err(unsupported)?.clone();

    let listener = match kind {
        TransportKind::Memory => None,
        TransportKind::Tcp => Some(tokio::net::TcpListener::bind("127.0.0.1:0").await?),
    };
    let (site_ip, port) = match &listener {
        None => (side.spec.address, 25),
        Some(l) => {
            let a = l.local_addr()?;
            (a.ip(), a.port())
        }
    };
    let first = side.start_site()?;
    let all: Vec<String> = side.spec.servers.iter().map(|s| s.name.clone()).collect();
    let hub = Arc::new(Hub {
        site: Mutex::new(Arc::new(first)),
        tasks: Mutex::new(Vec::new()),
        perimeter: side.perimeter.clone(),
        sources: s.exo.sources.clone(),
        next: AtomicUsize::new(0),
        local: SocketAddr::new(side.spec.address, 25),
        harvest: Mutex::new(SiteRecords::default()),
        started: Mutex::new(all),
        kind,
    });

    let mut queue = ExoQueue::new(settings.clone(), s.scenario.seed, start);
    for m in &s.messages {
        for to in &m.to {
            let mut route = Route::for_recipient(&tenant, to).map_err(unsupported)?;
            route.port = port;
            for _ in 0..m.count {
                let body = m.body.clone().unwrap_or_else(|| {
                    "This message was sent from Exchange Online to the on-premises organisation.\n".into()
                });
                queue.submit(
                    route.clone(),
                    NewMessage {
                        from: m.from.clone(),
                        to: to.clone(),
                        subject: m.subject.clone(),
                        body,
                    },
                    start,
                );
            }
        }
    }
    let resolver = SiteResolver(site_ip);
    let until = start + s.run.duration.to_time();
    let steps = timeline(s);
    let mut loop_ = Loop {
        side: &mut side,
        hub: &hub,
        steps,
        next_step: 0,
        admin: Vec::new(),
        clock: &clock,
        until,
        max_steps: s.run.max_steps,
    };
    let admin = match listener {
        None => {
            let d = MemoryDialer(Arc::clone(&hub));
            loop_.run(&mut queue, &d, &resolver, &tls).await?;
            std::mem::take(&mut loop_.admin)
        }
        Some(l) => {
            let pending = Arc::new(Mutex::new(HashMap::new()));
            let acceptor = tokio::spawn(accept_loop(l, Arc::clone(&hub), Arc::clone(&pending)));
            let d = TcpSiteDialer {
                hub: Arc::clone(&hub),
                listener: SocketAddr::new(site_ip, port),
                pending,
            };
            loop_.run(&mut queue, &d, &resolver, &tls).await?;
            acceptor.abort();
            std::mem::take(&mut loop_.admin)
        }
    };
    hub.settle().await;
    let end = clock.now();
    let site = hub.site();
    site.shutdown();
    hub.harvest_site(&site);
    let records: Vec<DeliveryRecord> = queue.records().cloned().collect();
    let site_records = std::mem::take(&mut *hub.harvest.lock().unwrap_or_else(|p| p.into_inner()));
    let servers = side.views(&site);
    let device_certificate = side
        .perimeter
        .tls_device
        .as_ref()
        .and_then(|d| d.store.entry(&d.certificate).map(|e| e.facts.clone()));
    let mut r = ExoReplay {
        id: s.scenario.id.clone(),
        transport: kind,
        start,
        end,
        tenant,
        records,
        site: site_records,
        servers,
        device_certificate,
        exo_certificate: identity.leaf.clone(),
        admin,
        files: Vec::new(),
        diagnosis: hybridlab_diagnose::Report::default(),
        wall: Duration::ZERO,
    };
    r.files = super::artefacts::files(s, &r, &settings);
    r.diagnosis = super::artefacts::diagnose_files(&r.files);
    Ok(r)
}

/// The delivery loop with the admin's timeline.
struct Loop<'a> {
    side: &'a mut Side,
    hub: &'a Arc<Hub>,
    steps: Vec<(OffsetDateTime, Step)>,
    next_step: usize,
    admin: Vec<(OffsetDateTime, String)>,
    clock: &'a LabClock,
    until: OffsetDateTime,
    max_steps: usize,
}

impl Loop<'_> {
    async fn apply_due(&mut self) -> Result<(), RunError> {
        let now = self.clock.now();
        while let Some((at, step)) = self.steps.get(self.next_step).cloned() {
            if at > now {
                break;
            }
            self.next_step += 1;
            let (command, restart) = apply(self.side, &step)?;
            self.admin.push((now, command));
            if let Some(servers) = restart {
                let site = self.side.start_site()?;
                self.hub.replace(site, servers).await;
            }
        }
        Ok(())
    }

    async fn wait_until(&self, t: OffsetDateTime) {
        match self.hub.kind {
            TransportKind::Memory => tokio::time::sleep_until(self.clock.instant_at(t)).await,
            TransportKind::Tcp => self.clock.skip_to(t),
        }
    }

    async fn run<D: Dialer>(
        &mut self,
        queue: &mut ExoQueue,
        dialer: &D,
        resolver: &dyn Resolver,
        tls: &ExoTls,
    ) -> Result<(), RunError> {
        let connect_timeout = queue.settings().connect_timeout.0;
        for _ in 0..self.max_steps {
            self.apply_due().await?;
            let now = self.clock.now();
            let plans = queue.take_due(now, resolver);
            if plans.is_empty() {
                let next_change = self.steps.get(self.next_step).map(|(t, _)| *t);
                let next = match (queue.next_due(), next_change) {
                    (Some(a), Some(b)) => a.min(b),
                    (Some(a), None) => a,
                    // changes still due: apply them (the listings show the final state)
                    (None, Some(b)) => b,
                    (None, None) => return Ok(()),
                };
                if next > self.until {
                    return Ok(());
                }
                self.wait_until(next).await;
                continue;
            }
            for p in plans {
                let a = attempt(p.client, dialer, tls, self.clock, connect_timeout).await;
                self.hub.settle().await;
                queue.complete(p.key, a, self.clock.now());
            }
        }
        Ok(())
    }
}
