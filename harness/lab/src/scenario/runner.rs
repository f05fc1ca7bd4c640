//! The replay runner: builds the PKI, the store, the connector, the mock and the resolver from a
//! [`Scenario`], submits the messages, lets the queue run through retries and timeouts on the lab
//! clock, and collects everything that came out ([`Replay`]).
//!
//! Each scenario runs on its own current-thread tokio runtime:
//! - memory transport: the clock is paused from the start, sessions run over in-memory duplex
//!   streams into [`MockEopHandle::connect_in_memory`] with the scenario's source address as the
//!   peer, so two virtual days of retries take milliseconds and every run is the same;
//! - tcp transport: the mock listens on `127.0.0.1:0`, the sender binds the scenario's source
//!   address; sessions run in real time; between attempts the lab clock (shared with the mock)
//!   skips to the next retry, tokio's clock is left alone. Scenarios marked `memory_only` (long
//!   stalls inside a session) are skipped there.
//!
//! The delivery loop is onprem's [`drive`]; the runner hands it `LabHooks`. `[[changes]]` run on
//! the same clock: before each wake-up of the queue the loop applies every admin change due by
//! then (a change at T happens before any attempt at or after T), through the transport's admin
//! actions ([`Transport::remove_certificate`], [`Transport::restart`]...). The run goes on until
//! the queue is empty and every change has been applied, or the duration ends.
//!
//! [`run_parallel`] runs many scenarios on a small pool of threads (`available_parallelism`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hybridlab_labkit::clock::LabClock;
use hybridlab_model::record::SessionRecord;
use hybridlab_model::x509::CertFacts;
use mock_eop::{MockEop, MockEopHandle};
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use time::OffsetDateTime;

use super::model::{ChangeAction, ConnectorChange, DnsEntry, Scenario, TransportKind};
use hybridlab_artefacts::queue::{LastError, QueueRow};
use hybridlab_onprem::certstore::{CertStore, StoreDescription, StoreEntry};
use hybridlab_onprem::connector::SendConnector;
use hybridlab_onprem::message::OutboundMessage;
use hybridlab_onprem::resolver::{HostEntry, LabResolver, Target};
use hybridlab_onprem::sender::{ConnectOptions, SessionReport};
use hybridlab_onprem::server::ServerIdentity;
use hybridlab_onprem::transport::{
    DriveHooks, MemoryDeliver, QueuedMessage, TcpDeliver, TimedRecord, Transport, TransportConfig,
    TransportRecord, TransportSettings, drive,
};

/// The first internal message id (as in the background case's send log).
pub const FIRST_INTERNAL_ID: u64 = 12_884_901_890;

/// Why a scenario could not be replayed (not an outcome: the lab itself could not run it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The certificate store could not be built.
    #[error("building the certificate store: {0}")]
    Store(#[from] hybridlab_onprem::certstore::CertStoreError),
    /// The mock refused its configuration.
    #[error("starting the mock EOP: {0}")]
    Mock(#[from] mock_eop::MockEopError),
    /// The runtime could not start.
    #[error("starting the runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// The scenario cannot run on this transport.
    #[error("{0}")]
    Unsupported(String),
}

/// One certificate of `LocalMachine\My` as the run saw it.
#[derive(Debug, Clone, Serialize)]
pub struct CertRow {
    /// The name the scenario gave it in `[[onprem.certificates]]`.
    pub name: String,
    /// 0-based position in the store's enumeration order, the order selection walks (a
    /// certificate not installed at the start keeps the position it had in the full store).
    pub enumeration_index: usize,
    /// `HasPrivateKey`: whether a private key is attached (false for a key-less twin).
    pub has_private_key: bool,
    /// Whether the transport's account may read the key (false: FM-03, the key's permissions
    /// leave the transport out).
    pub key_readable: bool,
    /// The Exchange services it is enabled for, as `Get-ExchangeCertificate` shows them
    /// (`IIS, SMTP`).
    pub services: String,
    /// FriendlyName as the certificate listings show it.
    pub friendly_name: String,
    /// Subject, issuer, serial, thumbprint, names and validity.
    pub facts: CertFacts,
    /// In the store at the start (`false`: declared `installed = false`, for a `[[changes]]`
    /// entry to install).
    pub installed: bool,
}

/// Everything a replay produced.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The id of the scenario that was replayed.
    pub id: String,
    /// What carried the sessions: in-memory streams on the paused clock, or loopback sockets.
    pub transport: TransportKind,
    /// Lab time at the start.
    pub start: OffsetDateTime,
    /// Lab time at the end.
    pub end: OffsetDateTime,
    /// The sending server's name, FQDN, role and Exchange version.
    pub server: ServerIdentity,
    /// The send connector, `TlsCertificateName` resolved.
    pub connector: SendConnector,
    /// The retry settings in force (`[onprem.transport]`, else the role's defaults).
    pub settings: TransportSettings,
    /// The store as it was at the start (entries, roots, intermediates).
    pub store: Arc<CertStore>,
    /// The store at the end, after the `[[changes]]`.
    pub final_store: Arc<CertStore>,
    /// `LocalMachine\My`, in enumeration order, followed by the certificates declared with
    /// `installed = false` (see [`CertRow::installed`]).
    pub certificates: Vec<CertRow>,
    /// How many messages were put in the queue at the start (every copy of every
    /// `[[messages]]` entry).
    pub submitted: u32,
    /// Every on-premises session (the send protocol log).
    pub sessions: Vec<SessionReport>,
    /// The queue's timeline (attempts, retries, DSNs, NDRs).
    pub timeline: Vec<TimedRecord>,
    /// Messages that left the queue, by internal id.
    pub finished: Vec<(u64, TransportRecord)>,
    /// Every LastError the queue showed, in order, with the time it was set.
    pub last_errors: Vec<(OffsetDateTime, LastError)>,
    /// The queue as `Get-Queue` shows it at the end of the run.
    pub queue: QueueRow,
    /// The messages still queued at the end (their `Get-Message` rows are in the bundle).
    pub queued: Vec<QueuedMessage>,
    /// The mock's session records.
    pub mock_sessions: Vec<SessionRecord>,
    /// The mock's certificate (what EOP presented).
    pub eop_certificate: CertFacts,
    /// The run as the files a real server gives (send log, connectivity log, listings) plus the
    /// mock's records.
    pub bundle: hybridlab_artefacts::bundle::ArtefactBundle,
    /// What `hybridlab diagnose` makes of that bundle: the files rendered as a real server's and
    /// read back through the same readers (the closed loop).
    pub diagnosis: hybridlab_diagnose::Report,
    /// Real time the replay took.
    pub wall: Duration,
}

impl Replay {
    /// Messages accepted (the sender saw 250).
    pub fn delivered(&self) -> usize {
        self.finished
            .iter()
            .filter(|(_, r)| matches!(r, TransportRecord::Delivered { .. }))
            .count()
    }

    /// The reply each NDR gives as its reason, one per message that left the queue with one.
    pub fn ndrs(&self) -> Vec<&hybridlab_model::reply::Reply> {
        self.finished
            .iter()
            .filter_map(|(_, r)| match r {
                TransportRecord::Ndr { reply, .. } => Some(reply),
                _ => None,
            })
            .collect()
    }

    /// Connection attempts, DNS failures included.
    pub fn attempts(&self) -> usize {
        self.timeline
            .iter()
            .filter(|r| {
                matches!(
                    r.record,
                    TransportRecord::Attempt { .. } | TransportRecord::DnsFailed { .. }
                )
            })
            .count()
    }

    /// The last LastError the queue showed during the run.
    pub fn last_error(&self) -> Option<&LastError> {
        self.last_errors.last().map(|(_, l)| l)
    }

    /// The mock's last attribution verdict.
    pub fn last_verdict(&self) -> Option<&hybridlab_model::attribution::AttributionVerdict> {
        self.mock_sessions
            .iter()
            .rev()
            .find_map(|s| s.attribution.as_ref())
    }

    /// The scenario-local name of the certificate with `thumbprint`.
    pub fn cert_name(&self, thumbprint: &str) -> Option<&str> {
        self.certificates
            .iter()
            .find(|c| c.facts.thumbprint.eq_ignore_ascii_case(thumbprint))
            .map(|c| c.name.as_str())
    }
}

/// The MX host EOP publishes for `domain` (`contoso.mail.onmicrosoft.com` ->
/// `contoso-mail-onmicrosoft-com.mail.protection.outlook.com`).
pub fn mx_host(domain: &str) -> String {
    format!(
        "{}.mail.protection.outlook.com",
        domain.trim_end_matches('.').replace('.', "-")
    )
}

/// Replays `scenario` over `transport` on a fresh current-thread runtime.
///
/// # Errors
/// The lab could not be built (see [`RunError`]); outcomes are data in the [`Replay`].
pub fn replay(scenario: &Scenario, transport: TransportKind) -> Result<Replay, RunError> {
    if transport == TransportKind::Tcp && scenario.run.memory_only {
        return Err(RunError::Unsupported(
            "memory-only scenario (virtual time inside a session): skipped over tcp".into(),
        ));
    }
    let mut b = tokio::runtime::Builder::new_current_thread();
    b.enable_all();
    if transport == TransportKind::Memory {
        b.start_paused(true);
    }
    let rt = b.build()?;
    #[allow(clippy::disallowed_methods)] // measuring the replay's real duration for the report
    let wall = std::time::Instant::now();
    let mut r = rt.block_on(run(scenario, transport))?;
    r.wall = wall.elapsed();
    Ok(r)
}

async fn run(s: &Scenario, kind: TransportKind) -> Result<Replay, RunError> {
    let start = s.run.start;
    let clock = LabClock::starting_at(start);
    let (mut store, public_roots) = build_store(s)?;
    let mock = start_mock(s, kind, clock.clone(), public_roots).await?;
    if s.onprem.trust_eop_root {
        store.add_trusted_root("EOP root", mock.ca_certificate().clone())?;
    }
    let connector = build_connector(s, &store)?;
    let (certificates, mut timeline) = hold_back_certificates(s, &mut store, &connector)?;

    // the resolver
    let mock_addr = match kind {
        TransportKind::Memory => SocketAddr::new(s.run.eop_address, 0),
        TransportKind::Tcp => mock.local_addr(),
    };
    let mut connectors = vec![&connector];
    connectors.extend(timeline.connectors());
    let resolver = build_resolver(s, &connectors, mock_addr);

    let Queue {
        mut transport,
        server,
        settings,
        store,
        submitted,
    } = build_queue(s, &connector, store);

    // the queue runs
    let src = s.onprem.source_address;
    let until = start + s.run.duration.to_time();
    let mut hooks = LabHooks {
        timeline: &mut timeline,
        mock: &mock,
        kind,
        last_errors: Vec::new(),
        sessions_before: 0,
    };
    match kind {
        TransportKind::Memory => {
            let peer = SocketAddr::new(src, 27436);
            let mut d = MemoryDeliver {
                connect: || mock.connect_in_memory(peer),
                local: peer,
            };
            let (steps, r) = (s.run.max_steps, &resolver);
            drive(&mut transport, r, &mut d, &clock, until, steps, &mut hooks).await?;
        }
        TransportKind::Tcp => {
            let mut d = TcpDeliver {
                opts: ConnectOptions {
                    source_ip: Some(src),
                    connect_timeout: Duration::from_secs(10),
                    ..ConnectOptions::default()
                },
            };
            let (steps, r) = (s.run.max_steps, &resolver);
            drive(&mut transport, r, &mut d, &clock, until, steps, &mut hooks).await?;
        }
    }
    let last_errors = hooks.last_errors;
    let end = clock.now();
    let eop_certificate = mock.server_certificate().clone();
    let mock_sessions = match kind {
        TransportKind::Memory => mock.shutdown().await,
        TransportKind::Tcp => tokio::time::timeout(Duration::from_secs(10), mock.shutdown())
            .await
            .unwrap_or_default(),
    };
    let (bundle, diagnosis) = close_the_loop(s, &connector, &transport, end, &mock_sessions);
    Ok(Replay {
        bundle,
        diagnosis,
        id: s.scenario.id.clone(),
        transport: kind,
        start,
        end,
        server,
        connector,
        settings,
        store,
        certificates,
        final_store: transport.store().clone(),
        submitted,
        sessions: transport.sessions().to_vec(),
        timeline: transport.records().to_vec(),
        finished: transport.finished().to_vec(),
        last_errors,
        queue: transport.snapshot(),
        queued: transport.messages().to_vec(),
        mock_sessions,
        eop_certificate,
        wall: Duration::ZERO,
    })
}

/// The on-premises PKI and `LocalMachine\My` as the scenario describes them, and the public
/// roots among the authorities (which the mock trusts as EOP trusts public CAs).
fn build_store(s: &Scenario) -> Result<(CertStore, Vec<CertificateDer<'static>>), RunError> {
    let desc = StoreDescription {
        authorities: super::load::authorities_in_order(&s.onprem.authorities),
        certificates: s.onprem.certificates.clone(),
    };
    let store = CertStore::build(&desc, s.run.start)?;
    let public_roots = desc
        .authorities
        .iter()
        .filter(|a| a.issuer.is_none() && a.public)
        .filter_map(|a| store.authority(&a.name).map(|ca| ca.cert.der.clone()))
        .collect();
    Ok((store, public_roots))
}

/// The mock EOP with the scenario's configuration, faults and seed on the lab clock (without a
/// listener for the memory transport).
async fn start_mock(
    s: &Scenario,
    kind: TransportKind,
    clock: LabClock,
    public_roots: Vec<CertificateDer<'static>>,
) -> Result<MockEopHandle, RunError> {
    let mut builder = MockEop::builder()
        .config(s.eop.clone())
        .faults(s.faults.clone())
        .seed(s.scenario.seed)
        .clock(clock)
        .trust_roots(public_roots);
    if kind == TransportKind::Memory {
        builder = builder.in_memory_only();
    }
    Ok(builder.start().await?)
}

/// The send connector with `tls_certificate_name = { cert = "name" }` resolved against the store.
fn build_connector(s: &Scenario, store: &CertStore) -> Result<SendConnector, RunError> {
    let mut connector = s
        .onprem
        .send_connector
        .clone()
        .ok_or_else(|| RunError::Unsupported("no send connector".into()))?;
    if let Some(name) = &s.source.tls_certificate_ref {
        connector.tls_certificate_name = Some(identifier_of(store, name)?);
    }
    Ok(connector)
}

/// The admin's timeline; certificates declared `installed = false` leave the store until then.
/// Gives the store's rows (installed ones in enumeration order, then the held-back ones) and the
/// timeline holding them.
fn hold_back_certificates(
    s: &Scenario,
    store: &mut CertStore,
    connector: &SendConnector,
) -> Result<(Vec<CertRow>, AdminTimeline), RunError> {
    let certificates: Vec<CertRow> = store
        .my()
        .iter()
        .map(|e| cert_row(e, !s.onprem.not_installed.contains(&e.name)))
        .collect();
    let mut timeline = AdminTimeline::build(s, store, connector)?;
    for name in &s.onprem.not_installed {
        if let Some(t) = store.entry(name).map(|e| e.facts.thumbprint.clone())
            && let Some(e) = store.remove(&t)
        {
            timeline.held.push(e);
        }
    }
    let (mut on, off): (Vec<CertRow>, Vec<CertRow>) =
        certificates.into_iter().partition(|c| c.installed);
    for (i, c) in on.iter_mut().enumerate() {
        c.enumeration_index = i;
    }
    on.extend(off);
    Ok((on, timeline))
}

/// The transport with the scenario's messages submitted, and what the replay reports about it.
struct Queue {
    /// The on-premises transport, every message in its queue.
    transport: Transport,
    /// The sending server (the scenario's Exchange version).
    server: ServerIdentity,
    /// The retry settings in force (`[onprem.transport]`, else the role's defaults).
    settings: TransportSettings,
    /// The store at the start, shared with the transport.
    store: Arc<CertStore>,
    /// How many messages were submitted (every copy of every `[[messages]]` entry).
    submitted: u32,
}

/// The transport and its queue: server, retry settings, selection, SChannel and certificate
/// cache as the scenario sets them; every message submitted at the start.
fn build_queue(s: &Scenario, connector: &SendConnector, store: CertStore) -> Queue {
    let server = ServerIdentity {
        version: s.scenario.exchange_version,
        ..s.onprem.server.clone()
    };
    let settings = s
        .onprem
        .transport
        .clone()
        .unwrap_or_else(|| TransportSettings::for_role(server.role));
    let mut cfg = TransportConfig::new(connector.clone());
    cfg.server = server.clone();
    cfg.settings = settings.clone();
    cfg.selection = s.onprem.selection;
    cfg.schannel = s.onprem.schannel.clone();
    cfg.certificate_cache = s.onprem.certificate_cache;
    let store = Arc::new(store);
    let mut transport = Transport::new(cfg, Arc::clone(&store));
    let mut next_id = FIRST_INTERNAL_ID;
    let mut submitted = 0;
    for m in &s.messages {
        for _ in 0..m.count {
            transport.submit(outbound(m, next_id, s.run.start));
            next_id += 1;
            submitted += 1;
        }
    }
    Queue {
        transport,
        server,
        settings,
        store,
        submitted,
    }
}

/// The run's files as a real server's (plus the mock's records and the tenant's inbound
/// connectors) and what `hybridlab diagnose` makes of them.
fn close_the_loop(
    s: &Scenario,
    connector: &SendConnector,
    transport: &Transport,
    end: OffsetDateTime,
    mock_sessions: &[SessionRecord],
) -> (
    hybridlab_artefacts::bundle::ArtefactBundle,
    hybridlab_diagnose::Report,
) {
    let mut bundle = transport
        .artefact_bundle(end)
        .with_mock_records(mock_sessions.to_vec());
    if let Some(t) = super::artefacts::organisation_tenant(s, connector) {
        bundle = bundle.with_inbound_connectors(
            t.inbound_connectors
                .iter()
                .map(hybridlab_artefacts::connectors::InboundConnectorRow::from)
                .collect(),
        );
    }
    let diagnosis = super::artefacts::diagnose_bundle(&bundle);
    (bundle, diagnosis)
}

fn outbound(m: &super::model::MessageSpec, id: u64, at: OffsetDateTime) -> OutboundMessage {
    let first = m.to.first().map(String::as_str).unwrap_or("");
    let mut o = OutboundMessage::simple(id, &m.from, first, at);
    o.to = m.to.clone();
    o.subject = m.subject.clone();
    if let Some(b) = &m.body {
        o.body = b.replace("\r\n", "\n").replace('\n', "\r\n");
    }
    if !m.org_headers {
        o.headers.clear();
    }
    o.headers.extend(m.headers.iter().cloned());
    o.min_size = m
        .size
        .and_then(|q| q.bytes())
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    o
}

fn build_resolver(s: &Scenario, connectors: &[&SendConnector], mock: SocketAddr) -> LabResolver {
    let mut r = LabResolver::new();
    let mut names: Vec<String> = Vec::new();
    for connector in connectors {
        if connector.dns_routing_enabled {
            for m in &s.messages {
                for to in &m.to {
                    if let Some((_, domain)) = to.rsplit_once('@') {
                        let host = mx_host(domain);
                        if !r.mx.contains_key(&domain.to_ascii_lowercase()) {
                            r = r.with_mx(domain, 10, &host);
                        }
                        names.push(host);
                    }
                }
            }
        } else {
            names.extend(connector.smart_hosts.iter().cloned());
        }
    }
    names.extend(s.onprem.dns.keys().cloned());
    for name in names {
        if name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok()
        {
            continue;
        }
        let entry = s
            .onprem
            .dns
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(&name))
            .map(|(_, v)| *v)
            .unwrap_or(DnsEntry::Mock);
        match entry {
            DnsEntry::Mock => r.insert(&name, HostEntry::Addresses { addrs: vec![mock] }),
            DnsEntry::Nxdomain => {}
            DnsEntry::ServerFailure => r.insert(&name, HostEntry::ServerFailure),
            DnsEntry::Unreachable | DnsEntry::Refused => {
                if let Some(failure) = entry.connect_failure() {
                    r.insert(
                        &name,
                        HostEntry::Unreachable {
                            ip: s.run.eop_address,
                            failure,
                        },
                    );
                }
            }
        }
    }
    r
}

/// What the lab adds to the onprem delivery loop ([`drive`]): the `[[changes]]` timeline, the
/// loopback rule of the tcp transport, the wait for the mock's record of a session, and the
/// LastError history.
struct LabHooks<'a> {
    /// The admin changes still to apply.
    timeline: &'a mut AdminTimeline,
    /// The mock the sessions go to.
    mock: &'a MockEopHandle,
    /// How sessions travel (over tcp a session must stay on loopback).
    kind: TransportKind,
    /// Every LastError the queue showed, in order, with the time of the wake-up that set it.
    last_errors: Vec<(OffsetDateTime, LastError)>,
    /// The mock's finished-session count before the session under way.
    sessions_before: u64,
}

impl DriveHooks for LabHooks<'_> {
    type Error = RunError;

    fn next_change_at(&self) -> Option<OffsetDateTime> {
        self.timeline.next_at()
    }

    fn apply_change(&mut self, transport: &mut Transport, now: OffsetDateTime) {
        self.timeline.apply_next(transport, now);
    }

    fn pending_changes(&self) -> usize {
        self.timeline.remaining()
    }

    fn before_attempt(&mut self, target: &Target) -> Result<(), RunError> {
        if self.kind == TransportKind::Tcp
            && target.unreachable.is_none()
            && !target.addr.ip().is_loopback()
        {
            return Err(RunError::Unsupported(format!(
                "target {} is not on loopback: the tcp transport never leaves the machine",
                target.addr
            )));
        }
        self.sessions_before = self.mock.counts().sessions;
        Ok(())
    }

    async fn after_attempt(&mut self, target: &Target, connected: bool) {
        if self.kind == TransportKind::Tcp && connected && target.unreachable.is_none() {
            // let the mock finish its record before the lab clock skips ahead
            let _ = tokio::time::timeout(
                Duration::from_secs(5),
                self.mock.wait_for_sessions(self.sessions_before + 1),
            )
            .await;
        }
    }

    fn after_wakeup(&mut self, transport: &Transport, now: OffsetDateTime) {
        if let Some(le) = transport.snapshot().last_error
            && self.last_errors.last().is_none_or(|(_, l)| *l != le)
        {
            self.last_errors.push((now, le));
        }
    }
}

fn cert_row(e: &StoreEntry, installed: bool) -> CertRow {
    CertRow {
        name: e.name.clone(),
        enumeration_index: e.enumeration_index,
        has_private_key: e.has_private_key,
        key_readable: e.key_readable,
        services: hybridlab_artefacts::certs::services_text(&e.services),
        friendly_name: e.friendly_name.clone(),
        facts: e.facts.clone(),
        installed,
    }
}

fn identifier_of(store: &CertStore, name: &str) -> Result<String, RunError> {
    store
        .entry(name)
        .map(StoreEntry::x509_identifier)
        .ok_or_else(|| RunError::Unsupported(format!("no certificate named {name:?}")))
}

/// What the admin does, resolved against the store the run built.
#[derive(Debug)]
enum AdminStep {
    Remove(String),
    Install(String),
    SetConnector(Box<SendConnector>, String),
    Restart,
    Retry,
}

/// The `[[changes]]` of a scenario in time order, with the certificates waiting to be installed.
#[derive(Debug, Default)]
struct AdminTimeline {
    steps: Vec<(OffsetDateTime, AdminStep)>,
    next: usize,
    /// Certificates declared `installed = false` (taken out of the store before the run).
    held: Vec<StoreEntry>,
    /// Enumeration keys (`order`, else the listing position; then the listing position) by name.
    keys: Vec<(String, (i64, usize), bool)>,
}

impl AdminTimeline {
    /// Resolves the scenario's changes against the store (which still holds every certificate).
    fn build(s: &Scenario, store: &CertStore, first: &SendConnector) -> Result<Self, RunError> {
        let mut order: Vec<usize> = (0..s.changes.len()).collect();
        order.sort_by_key(|&i| s.changes[i].at.0);
        let mut steps = Vec::new();
        let mut previous = first.clone();
        for i in order {
            let c = &s.changes[i];
            let at = s.run.start + c.at.to_time();
            let step = match c.action() {
                Some(ChangeAction::RemoveCertificate(n)) => AdminStep::Remove(
                    store
                        .entry(n)
                        .map(|e| e.facts.thumbprint.clone())
                        .ok_or_else(|| {
                            RunError::Unsupported(format!("no certificate named {n:?}"))
                        })?,
                ),
                Some(ChangeAction::InstallCertificate(n)) => AdminStep::Install(n.to_string()),
                Some(ChangeAction::SetSendConnector(cc)) => {
                    let mut conn = cc
                        .connector
                        .as_deref()
                        .cloned()
                        .unwrap_or_else(|| previous.clone());
                    if let Some(name) = &cc.connector_certificate {
                        conn.tls_certificate_name = Some(identifier_of(store, name)?);
                    }
                    let command = set_send_connector_command(&previous.name, cc, &conn);
                    previous = conn.clone();
                    AdminStep::SetConnector(Box::new(conn), command)
                }
                Some(ChangeAction::RestartTransport) => AdminStep::Restart,
                Some(ChangeAction::RetryQueue) => AdminStep::Retry,
                Some(ChangeAction::SetReceiveConnector(_)) | None => continue,
            };
            steps.push((at, step));
        }
        let keys = s
            .onprem
            .certificates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                (
                    c.name.clone(),
                    (c.order.unwrap_or(i as i64), i),
                    c.order.is_some(),
                )
            })
            .collect();
        Ok(Self {
            steps,
            keys,
            ..Self::default()
        })
    }

    /// How many changes are still to apply.
    fn remaining(&self) -> usize {
        self.steps.len() - self.next
    }

    /// The connectors the changes install (for the resolver).
    fn connectors(&self) -> impl Iterator<Item = &SendConnector> {
        self.steps.iter().filter_map(|(_, s)| match s {
            AdminStep::SetConnector(c, _) => Some(c.as_ref()),
            _ => None,
        })
    }

    fn next_at(&self) -> Option<OffsetDateTime> {
        self.steps.get(self.next).map(|(t, _)| *t)
    }

    fn key(&self, name: &str) -> Option<((i64, usize), bool)> {
        self.keys
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, k, explicit)| (*k, *explicit))
    }

    /// Applies the next change at `now`.
    fn apply_next(&mut self, t: &mut Transport, now: OffsetDateTime) {
        let Some((_, step)) = self.steps.get(self.next) else {
            return;
        };
        self.next += 1;
        match step {
            AdminStep::Remove(thumb) => {
                let thumb = thumb.clone();
                if let Some(e) = t.remove_certificate(&thumb, now) {
                    self.held.push(e);
                }
            }
            AdminStep::Install(name) => {
                let Some(pos) = self.held.iter().position(|e| &e.name == name) else {
                    return;
                };
                let entry = self.held.remove(pos);
                // appended, unless an explicit `order` places it among the others
                let index = match self.key(name) {
                    Some((k, true)) => t
                        .store()
                        .my()
                        .iter()
                        .filter(|e| self.key(&e.name).is_some_and(|(o, _)| o < k))
                        .count(),
                    _ => usize::MAX,
                };
                t.install_certificate(entry, index, now);
            }
            AdminStep::SetConnector(c, command) => {
                let (c, command) = (c.as_ref().clone(), command.clone());
                t.set_send_connector(c, command, now);
            }
            AdminStep::Restart => t.restart(now),
            AdminStep::Retry => t.retry_queue(now),
        }
    }
}

/// `Set-SendConnector "<name>" -TlsCertificateName "<I>...<S>..." -RequireTLS $true`: the keys of
/// the change as `Set-SendConnector` parameters, values from the connector they give.
fn set_send_connector_command(name: &str, cc: &ConnectorChange, after: &SendConnector) -> String {
    const PARAMS: &[(&str, &str)] = &[
        ("name", "Name"),
        ("address_spaces", "AddressSpaces"),
        ("dns_routing_enabled", "DNSRoutingEnabled"),
        ("smart_hosts", "SmartHosts"),
        ("smart_host_auth_mechanism", "SmartHostAuthMechanism"),
        ("port", "Port"),
        ("fqdn", "Fqdn"),
        ("require_tls", "RequireTLS"),
        ("ignore_starttls", "IgnoreSTARTTLS"),
        ("tls_auth_level", "TlsAuthLevel"),
        ("tls_domain", "TlsDomain"),
        ("tls_certificate_name", "TlsCertificateName"),
        ("cloud_services_mail_enabled", "CloudServicesMailEnabled"),
        ("connector_type", "ConnectorType"),
        (
            "connection_inactivity_timeout",
            "ConnectionInactivityTimeOut",
        ),
        ("max_message_size", "MaxMessageSize"),
        (
            "smtp_max_messages_per_connection",
            "SmtpMaxMessagesPerConnection",
        ),
        ("protocol_logging_level", "ProtocolLoggingLevel"),
        ("source_ip_address", "SourceIPAddress"),
        ("force_helo", "ForceHELO"),
        ("enabled", "Enabled"),
    ];
    fn value(v: &toml::Value) -> String {
        match v {
            toml::Value::String(s) if s.is_empty() => "$null".into(),
            toml::Value::String(s) => format!("\"{s}\""),
            toml::Value::Boolean(b) => if *b { "$true" } else { "$false" }.into(),
            toml::Value::Array(a) => a.iter().map(value).collect::<Vec<_>>().join(","),
            other => other.to_string(),
        }
    }
    let mut out = format!("Set-SendConnector \"{name}\"");
    for (key, param) in PARAMS {
        let v = if *key == "tls_certificate_name" && cc.certificate.is_some() {
            after
                .tls_certificate_name
                .as_deref()
                .map(|t| format!("\"{t}\""))
        } else {
            cc.keys.get(*key).map(value)
        };
        if let Some(v) = v {
            out.push_str(&format!(" -{param} {v}"));
        }
    }
    out
}

/// Runs `f` over `items` on up to `threads` threads (at least one), results in input order.
pub fn run_parallel<T, R, F>(items: &[T], threads: usize, f: F) -> Vec<R>
where
    T: Sync,
    R: Send,
    F: Fn(usize, &T) -> R + Sync,
{
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let threads = threads.clamp(1, items.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let r = f(i, item);
                    let mut guard = results.lock().unwrap_or_else(|p| p.into_inner());
                    guard[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// The number of worker threads to use: `available_parallelism`.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
