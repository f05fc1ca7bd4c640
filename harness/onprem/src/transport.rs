//! The transport service around the sender: the delivery queue, retries on the virtual clock, delay
//! DSNs, expiry NDRs, the LastError wrapper by Exchange version, and the opportunistic fallback to
//! plain text (exchange-hybrid.md 2.6, 5.6, 5.7).
//!
//! [`Transport`] is sans-IO: it is told the time and the sessions' results and says when it wants to
//! run next ([`Transport::next_wakeup`]). [`run_until`] is the tokio driver: it sleeps on the lab
//! clock until the next wake-up, resolves the next hop with the [`LabResolver`], runs a session
//! through a [`Deliver`] implementation (TCP or an in-memory stream), and feeds the result back.
//! Under a paused tokio clock two virtual days of retries pass in milliseconds.
//!
//! An admin can act while the queue runs ([`Transport::remove_certificate`],
//! [`Transport::install_certificate`], [`Transport::set_send_connector`], [`Transport::restart`],
//! [`Transport::retry_now`]); each action is a [`TransportRecord::AdminChange`] on the timeline.
//! The transport keeps the certificate it selected by `TlsCertificateName` in a cache keyed by the
//! identifier ([`CertificateCache`], exchange-hybrid.md 2.2 step 1a, FM-34): store changes do not
//! reach a cached selection until the service restarts.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use hybridlab_labkit::clock::LabClock;
use hybridlab_model::reply::Reply;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::certstore::{CertStore, StoreEntry};
use crate::connector::{
    ProtocolLoggingLevel, RetryInterleaving, SchannelSettings, SendConnector, ServerIdentity,
    ServerRole, TransportSettings,
};
use crate::message::OutboundMessage;
use crate::resolver::{DnsFailure, LabResolver, Target};
use crate::selection::{SelectionOutcome, SelectionPath, SelectionSettings};
use crate::sender::{
    ConnectOptions, MessageStatus, SenderMachine, SessionConfig, SessionFailure, SessionReport,
    deliver_tcp, run_session,
};
use hybridlab_artefacts::bundle::{ArtefactBundle, ExportedCertificate};
use hybridlab_artefacts::connectivity::ConnectivityEvent;
use hybridlab_artefacts::queue::{self, LastError, QueueSnapshot, en_us_datetime};
use hybridlab_model::exchange::{DeliveryType, ExchangeVersion, QueueStatus, synthetic};

// ---------------------------------------------------------------------------------------------
// LastError wording
// ---------------------------------------------------------------------------------------------

/// What went wrong, for the LastError wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorSource<'a> {
    /// A reply (from the server, or the session's synthetic ack): "responded with error".
    Response(&'a Reply),
    /// A communication failure (socket error, connect failure): "error communicating".
    Communication {
        /// The synthetic ack (`421 4.4.2 ...`, `421 4.2.1 Unable to connect`).
        ack: &'a Reply,
        /// Winsock code for connect failures (10060, 10061).
        winsock: Option<u32>,
    },
    /// DNS failure: not wrapped.
    Dns(&'a Reply),
}

/// The `LED` text Exchange `version` writes for `source`, `endpoint` being the last address tried.
pub fn wrap_led(
    version: ExchangeVersion,
    source: &ErrorSource<'_>,
    endpoint: SocketAddr,
) -> String {
    const FAILOVER: &str = "Attempted failover to alternate host, but that did not succeed. Either there are no alternate hosts, or delivery failed to all alternate hosts.";
    match source {
        ErrorSource::Dns(r) => r.one_line(),
        ErrorSource::Response(r) if version.uses_arrow_wrappers() => {
            format!(
                "451 4.4.395 Target host responded with error. -> {}",
                r.one_line()
            )
        }
        ErrorSource::Communication { ack, .. } if version.uses_arrow_wrappers() => {
            format!(
                "451 4.4.397 Error communicating with target host. -> {}",
                ack.one_line()
            )
        }
        ErrorSource::Response(r) => format!(
            "451 4.4.0 Primary target IP address responded with: \"{}.\" {FAILOVER} The last endpoint attempted was {endpoint}",
            r.one_line()
        ),
        ErrorSource::Communication { ack, winsock } => {
            let detail = match winsock {
                Some(code) => format!(
                    "Failed to connect. Winsock error code: {code}, Win32 error code: {code}."
                ),
                None => format!("{}.", ack.one_line()),
            };
            format!(
                "441 4.4.1 Error encountered while communicating with primary target IP address: \"{detail}\" {FAILOVER} The last endpoint attempted was {endpoint}"
            )
        }
    }
}

fn failure_source(f: &SessionFailure) -> ErrorSource<'_> {
    match &f.kind {
        crate::sender::FailureKind::Dns => ErrorSource::Dns(&f.ack),
        crate::sender::FailureKind::ConnectFailed { failure } => ErrorSource::Communication {
            ack: &f.ack,
            winsock: Some(failure.winsock_code()),
        },
        _ if f.is_communication_error() => ErrorSource::Communication {
            ack: &f.ack,
            winsock: None,
        },
        _ => ErrorSource::Response(&f.ack),
    }
}

// ---------------------------------------------------------------------------------------------
// Queue and messages
// ---------------------------------------------------------------------------------------------

/// `Get-Message` status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MessageQueueStatus {
    /// Being delivered.
    Active,
    /// Waiting.
    Ready,
    /// Waiting for a retry after a failure.
    Retry,
    /// Suspended.
    Suspended,
}

/// One message in the queue, with what `Get-Message | Format-List` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// The message.
    pub message: OutboundMessage,
    /// Status.
    pub status: MessageQueueStatus,
    /// Retries so far.
    pub retry_count: u32,
    /// Last error.
    pub last_error: Option<LastError>,
    /// When this message may be tried again (message-level 4xx).
    #[serde(with = "time::serde::rfc3339::option")]
    pub next_retry_time: Option<OffsetDateTime>,
    /// Whether the delay DSN went out.
    pub delay_dsn_sent: bool,
}

/// A `Get-Message` row (the fields the lab models).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSnapshot {
    /// `SERVER\<queue>\<internal id>`.
    pub identity: String,
    /// Envelope sender.
    pub from_address: String,
    /// Status.
    pub status: MessageQueueStatus,
    /// Size in bytes (MIME text as sent).
    pub size: u64,
    /// Subject.
    pub subject: String,
    /// When it arrived.
    #[serde(with = "time::serde::rfc3339")]
    pub date_received: OffsetDateTime,
    /// When it expires.
    #[serde(with = "time::serde::rfc3339")]
    pub expiration_time: OffsetDateTime,
    /// Last error.
    pub last_error: Option<LastError>,
    /// Retries.
    pub retry_count: u32,
    /// The queue's identity.
    pub queue: String,
    /// Recipients.
    pub recipients: Vec<String>,
}

/// Something the transport did, for timelines and narration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum TransportRecord {
    /// A session ran (index into [`Transport::sessions`]).
    Attempt {
        /// Which session.
        session: usize,
        /// Whether it ran in plain text as an opportunistic fallback.
        fallback_plaintext: bool,
    },
    /// The next hop did not resolve.
    DnsFailed {
        /// The LastError LED.
        led: String,
    },
    /// The queue goes to Retry.
    RetryScheduled {
        /// When.
        #[serde(with = "time::serde::rfc3339")]
        next: OffsetDateTime,
        /// Which stage of the schedule: `glitch`, `transient`, `long`, `message`.
        stage: String,
    },
    /// A message was accepted.
    Delivered {
        /// Internal id.
        internal_id: u64,
        /// The reply.
        reply: Reply,
    },
    /// A delay DSN went to the sender.
    DelayDsn {
        /// Internal id.
        internal_id: u64,
    },
    /// An NDR went to the sender.
    Ndr {
        /// Internal id.
        internal_id: u64,
        /// The reason (`550 4.4.7 QUEUE.Expired; message expired`, a 5xx reply...).
        reply: Reply,
    },
    /// An admin ran a command (`Remove-Item Cert:\LocalMachine\My\<thumbprint>`,
    /// `Restart-Service MSExchangeTransport`...).
    AdminChange {
        /// The PowerShell, as the admin would type it.
        command: String,
    },
    /// A session took its certificate from the transport's cache although the store now selects
    /// another one (or none): FM-34.
    CachedCertificate {
        /// Which session (index into [`Transport::sessions`]).
        session: usize,
        /// The `TlsCertificateName` the selection is cached under.
        identifier: String,
        /// The thumbprint the cache holds.
        cached: String,
        /// When the transport selected it.
        #[serde(with = "time::serde::rfc3339")]
        selected_at: OffsetDateTime,
        /// What the store selects now (`None`: nothing).
        current: Option<String>,
    },
}

/// A record with its time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimedRecord {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What.
    pub record: TransportRecord,
}

/// The transport's configuration.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Who sends.
    pub server: ServerIdentity,
    /// The connector every message in the queue uses.
    pub connector: SendConnector,
    /// Retry settings.
    pub settings: TransportSettings,
    /// Certificate selection.
    pub selection: SelectionSettings,
    /// SChannel.
    pub schannel: SchannelSettings,
    /// Queue number (`EDGE01\3`).
    pub queue_number: u32,
    /// First session id (incremented per session), 64 bits shown as 16 hex digits.
    pub first_session_id: u64,
    /// How long a certificate selected by `TlsCertificateName` is kept \[U\].
    pub certificate_cache: CertificateCache,
}

/// How long the transport keeps the certificate it selected by `TlsCertificateName`
/// (exchange-hybrid.md 2.2 step 1a; FM-34). The exact refresh timing is uncertain \[U\]: the
/// reference reconstructs a cache keyed by the identifier that a store change or a restart
/// invalidates, while the community guidance is to restart the transport after any certificate
/// change, which is what the default models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateCache {
    /// The first successful selection for an identifier is kept until `Restart-Service
    /// MSExchangeTransport`; store changes do not reach it, a new identifier is a new key
    /// (default).
    #[default]
    UntilRestart,
    /// Every session selects again from the store as it is (equivalent, in the lab, to a cache
    /// the store-change bookmark invalidates).
    #[serde(rename = "none")]
    Disabled,
}

impl CertificateCache {
    /// `until_restart` / `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UntilRestart => "until_restart",
            Self::Disabled => "none",
        }
    }
}

/// One selection the transport keeps in its certificate cache.
#[derive(Debug, Clone)]
pub struct CachedCertificate {
    /// The `<I>issuer<S>subject` identifier it is cached under.
    pub identifier: String,
    /// The certificate's thumbprint.
    pub thumbprint: String,
    /// When the transport selected it.
    pub selected_at: OffsetDateTime,
    /// The store as it was then: a session that hits the cache selects from it.
    store: Arc<CertStore>,
}

impl TransportConfig {
    /// Defaults for `connector` on an Edge server named EDGE01.
    pub fn new(connector: SendConnector) -> Self {
        let server = ServerIdentity::default();
        Self {
            settings: TransportSettings::for_role(server.role),
            server,
            connector,
            selection: SelectionSettings::default(),
            schannel: SchannelSettings::default(),
            queue_number: 3,
            first_session_id: 0x08D6_CEB1_A2F3_C4D5,
            certificate_cache: CertificateCache::default(),
        }
    }
}

/// The sans-IO transport: one delivery queue for one next hop.
#[derive(Debug)]
pub struct Transport {
    cfg: TransportConfig,
    store: Arc<CertStore>,
    messages: Vec<QueuedMessage>,
    status: QueueStatus,
    last_error: Option<LastError>,
    retry_count: u32,
    first_retry_time: Option<OffsetDateTime>,
    last_retry_time: Option<OffsetDateTime>,
    next_retry_time: Option<OffsetDateTime>,
    consecutive_failures: u32,
    fallback_next: bool,
    next_session: u64,
    sessions: Vec<SessionReport>,
    records: Vec<TimedRecord>,
    done: Vec<(u64, TransportRecord)>,
    connectivity: Vec<ConnectivityEvent>,
    ndrs: Vec<hybridlab_artefacts::ndr::NdrReport>,
    cert_cache: Vec<CachedCertificate>,
    /// The cache hit of the session being run, recorded when it finishes.
    pending_cache_note: Option<TransportRecord>,
    /// The store the session being run selects from.
    session_store: Option<Arc<CertStore>>,
    /// The time of the last [`Self::on_time`] (the time sessions are configured at).
    last_wakeup: OffsetDateTime,
}

impl Transport {
    /// A transport with an empty queue.
    pub fn new(cfg: TransportConfig, store: Arc<CertStore>) -> Self {
        let next_session = cfg.first_session_id;
        Self {
            cfg,
            store,
            messages: Vec::new(),
            status: QueueStatus::Ready,
            last_error: None,
            retry_count: 0,
            first_retry_time: None,
            last_retry_time: None,
            next_retry_time: None,
            consecutive_failures: 0,
            fallback_next: false,
            next_session,
            sessions: Vec::new(),
            records: Vec::new(),
            done: Vec::new(),
            connectivity: Vec::new(),
            ndrs: Vec::new(),
            cert_cache: Vec::new(),
            pending_cache_note: None,
            session_store: None,
            last_wakeup: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// Queues a message.
    pub fn submit(&mut self, message: OutboundMessage) {
        self.messages.push(QueuedMessage {
            message,
            status: MessageQueueStatus::Ready,
            retry_count: 0,
            last_error: None,
            next_retry_time: None,
            delay_dsn_sent: false,
        });
    }

    /// Replaces the certificate store (an admin removed the key-less twin and restarted transport):
    /// the certificate cache is cleared too. For a store change without a restart use
    /// [`Self::remove_certificate`] / [`Self::install_certificate`].
    pub fn set_store(&mut self, store: Arc<CertStore>) {
        self.store = store;
        self.cert_cache.clear();
    }

    /// The store as it is now.
    pub fn store(&self) -> &Arc<CertStore> {
        &self.store
    }

    /// The selections the certificate cache holds.
    pub fn cached_certificates(&self) -> &[CachedCertificate] {
        &self.cert_cache
    }

    fn admin(&mut self, now: OffsetDateTime, command: String) {
        self.record(now, TransportRecord::AdminChange { command });
    }

    /// `Remove-Item Cert:\LocalMachine\My\<thumbprint>`: the store changes at once; a selection
    /// the certificate cache holds does not (FM-34). Gives the entry back (`None`: not in the
    /// store, nothing recorded).
    pub fn remove_certificate(
        &mut self,
        thumbprint: &str,
        now: OffsetDateTime,
    ) -> Option<StoreEntry> {
        self.store.by_thumbprint(thumbprint)?;
        let e = Arc::make_mut(&mut self.store).remove(thumbprint)?;
        self.admin(
            now,
            format!(
                "Remove-Item Cert:\\LocalMachine\\My\\{}",
                e.facts.thumbprint
            ),
        );
        Some(e)
    }

    /// `Import-PfxCertificate -CertStoreLocation Cert:\LocalMachine\My` (or `Import-Certificate`
    /// for a key-less one): `entry` enters the store at enumeration position `index` (past the
    /// end appends); a selection the certificate cache holds does not change.
    pub fn install_certificate(&mut self, entry: StoreEntry, index: usize, now: OffsetDateTime) {
        let command = if entry.has_private_key {
            format!(
                "Import-PfxCertificate -FilePath C:\\Temp\\{}.pfx -CertStoreLocation Cert:\\LocalMachine\\My   # {}",
                entry.name, entry.facts.thumbprint
            )
        } else {
            format!(
                "Import-Certificate -FilePath C:\\Temp\\{}.cer -CertStoreLocation Cert:\\LocalMachine\\My   # {}",
                entry.name, entry.facts.thumbprint
            )
        };
        Arc::make_mut(&mut self.store).insert(entry, index);
        self.admin(now, command);
    }

    /// `Set-SendConnector`: the connector every later session uses. A new `TlsCertificateName` is
    /// a new cache key, so it is selected afresh; an unchanged one keeps its cached selection.
    /// `command` is what the admin typed (recorded as is).
    pub fn set_send_connector(
        &mut self,
        connector: SendConnector,
        command: String,
        now: OffsetDateTime,
    ) {
        self.cfg.connector = connector;
        self.admin(now, command);
    }

    /// `Restart-Service MSExchangeTransport`: the certificate cache is empty again and the queue
    /// is rebuilt from the queue database: it keeps its messages (with their retry counts) and
    /// tries them at once; the queue's own retry state and LastError start over \[U\].
    pub fn restart(&mut self, now: OffsetDateTime) {
        self.cert_cache.clear();
        self.fallback_next = false;
        self.consecutive_failures = 0;
        self.retry_count = 0;
        self.first_retry_time = None;
        self.last_retry_time = None;
        self.next_retry_time = None;
        self.last_error = None;
        if self.status != QueueStatus::Suspended {
            self.status = QueueStatus::Ready;
        }
        for m in &mut self.messages {
            m.next_retry_time = None;
            if m.status != MessageQueueStatus::Suspended {
                m.status = MessageQueueStatus::Ready;
            }
        }
        self.admin(now, "Restart-Service MSExchangeTransport".to_string());
    }

    /// `Retry-Queue -Identity <queue>` as an admin's action: [`Self::retry_now`], recorded on the
    /// timeline.
    pub fn retry_queue(&mut self, now: OffsetDateTime) {
        self.retry_now(now);
        let id = self.identity();
        self.admin(now, format!("Retry-Queue -Identity {id}"));
    }

    /// The certificate-cache key of the connector: its `TlsCertificateName`, when it parses.
    fn cache_key(&self) -> Option<String> {
        if self.cfg.certificate_cache == CertificateCache::Disabled {
            return None;
        }
        match self.cfg.connector.tls_certificate_identifier() {
            Ok(Some(id)) => Some(id.to_string()),
            _ => None,
        }
    }

    /// The store a session selects from: the cached snapshot on a cache hit, else the store as it
    /// is. Notes a hit whose certificate the store would no longer select.
    fn store_for_session(&mut self, now: OffsetDateTime) -> Arc<CertStore> {
        self.pending_cache_note = None;
        let Some(key) = self.cache_key() else {
            return self.store.clone();
        };
        let Some(hit) = self.cert_cache.iter().find(|c| c.identifier == key) else {
            return self.store.clone();
        };
        if !Arc::ptr_eq(&hit.store, &self.store) {
            let current = crate::selection::select(
                &self.store,
                &self.cfg.connector,
                &self.cfg.server.fqdn,
                &self.cfg.selection,
                now,
            )
            .ok()
            .and_then(|s| match s.outcome {
                SelectionOutcome::Selected { thumbprint, .. } => Some(thumbprint),
                _ => None,
            });
            if current.as_deref() != Some(hit.thumbprint.as_str()) {
                self.pending_cache_note = Some(TransportRecord::CachedCertificate {
                    session: self.sessions.len(),
                    identifier: hit.identifier.clone(),
                    cached: hit.thumbprint.clone(),
                    selected_at: hit.selected_at,
                    current,
                });
            }
        }
        hit.store.clone()
    }

    /// Keeps a session's successful `TlsCertificateName` selection in the cache (first one wins).
    fn cache_selection(&mut self, report: &SessionReport, store: Option<Arc<CertStore>>) {
        let (Some(key), Some(store), Some(sel)) = (self.cache_key(), store, &report.selection)
        else {
            return;
        };
        if !matches!(sel.path, SelectionPath::TlsCertificateName { .. })
            || self.cert_cache.iter().any(|c| c.identifier == key)
        {
            return;
        }
        if let SelectionOutcome::Selected { thumbprint, .. } = &sel.outcome {
            let selected_at = report
                .log
                .events
                .iter()
                .find(|e| {
                    matches!(
                        e.event,
                        hybridlab_artefacts::protocol_log::SessionEvent::Certificate { .. }
                    )
                })
                .or(report.log.events.first())
                .map_or(OffsetDateTime::UNIX_EPOCH, |e| e.at);
            self.cert_cache.push(CachedCertificate {
                identifier: key,
                thumbprint: thumbprint.clone(),
                selected_at,
                store,
            });
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.cfg
    }

    /// Mutable configuration (an admin changes the connector).
    pub fn config_mut(&mut self) -> &mut TransportConfig {
        &mut self.cfg
    }

    /// `Suspend-Queue`: no delivery attempts until resumed.
    pub fn suspend(&mut self) {
        self.status = QueueStatus::Suspended;
    }

    /// `Resume-Queue`.
    pub fn resume(&mut self) {
        if self.status == QueueStatus::Suspended {
            self.status = if self.next_retry_time.is_some() {
                QueueStatus::Retry
            } else {
                QueueStatus::Ready
            };
        }
    }

    /// `Retry-Queue`: try now instead of waiting for NextRetryTime.
    pub fn retry_now(&mut self, now: OffsetDateTime) {
        if self.status == QueueStatus::Retry {
            self.next_retry_time = Some(now);
        }
        for m in &mut self.messages {
            if m.next_retry_time.is_some_and(|t| t > now) {
                m.next_retry_time = Some(now);
            }
        }
    }

    /// Messages still queued.
    pub fn messages(&self) -> &[QueuedMessage] {
        &self.messages
    }

    /// Every session run so far.
    pub fn sessions(&self) -> &[SessionReport] {
        &self.sessions
    }

    /// The timeline.
    pub fn records(&self) -> &[TimedRecord] {
        &self.records
    }

    /// Messages that left the queue (delivered or NDR'd), by internal id.
    pub fn finished(&self) -> &[(u64, TransportRecord)] {
        &self.done
    }

    /// The connectivity log lines the queue produced so far, in time order (one `+` per
    /// connection attempt, the DNS answer or failure, `Established connection` or
    /// `Failed connection`, and the `-` summary `Messages: 0 Bytes: 0 (Retry : <ack>)`).
    pub fn connectivity(&self) -> &[ConnectivityEvent] {
        &self.connectivity
    }

    fn identity(&self) -> String {
        format!("{}\\{}", self.cfg.server.name, self.cfg.queue_number)
    }

    fn delivery_type(&self) -> DeliveryType {
        if self.cfg.connector.dns_routing_enabled {
            DeliveryType::DnsConnectorDelivery
        } else {
            DeliveryType::SmartHostConnectorDelivery
        }
    }

    fn next_hop_domain(&self) -> String {
        if self.cfg.connector.dns_routing_enabled {
            self.messages
                .first()
                .map(|m| m.message.recipient_domain().to_string())
                .unwrap_or_default()
        } else {
            self.cfg.connector.smart_hosts.join(",")
        }
    }

    /// `Get-Queue` for this queue.
    pub fn snapshot(&self) -> QueueSnapshot {
        QueueSnapshot {
            identity: self.identity(),
            delivery_type: self.delivery_type(),
            status: self.status,
            message_count: self.messages.len() as u32,
            next_hop_domain: self.next_hop_domain(),
            tls_domain: self.cfg.connector.tls_domain.clone(),
            next_hop_connector: Some(self.cfg.connector.name.clone()),
            last_error: self.last_error.clone(),
            retry_count: self.retry_count,
            first_retry_time: self.first_retry_time,
            last_retry_time: self.last_retry_time,
            next_retry_time: self.next_retry_time,
        }
    }

    /// `Get-Message` for the queued messages.
    pub fn message_snapshots(&self) -> Vec<MessageSnapshot> {
        let exp = self.cfg.settings.message_expiration_timeout.to_time();
        self.messages
            .iter()
            .map(|m| MessageSnapshot {
                identity: format!("{}\\{}", self.identity(), m.message.internal_id),
                from_address: m.message.from.clone(),
                status: m.status,
                size: m
                    .message
                    .wire(self.cfg.connector.cloud_services_mail_enabled)
                    .len() as u64,
                subject: m.message.subject.clone(),
                date_received: m.message.arrival,
                expiration_time: m.message.arrival + exp,
                last_error: m.last_error.clone(),
                retry_count: m.retry_count,
                queue: self.identity(),
                recipients: m.message.to.clone(),
            })
            .collect()
    }

    /// `Get-Message` rows in the listing's shape.
    ///
    /// The lab has no previous hop, so two values are stand-ins \[U\]: MessageSourceName is what an
    /// Edge shows for mail from the Mailbox servers (`SMTP:Default internal receive connector
    /// <server>`) or what a Mailbox server shows for mailbox submissions (`FromLocal`), and SourceIP
    /// is `127.0.0.1`. SCL is -1 (authenticated mail).
    pub fn message_rows(&self) -> Vec<queue::MessageSnapshot> {
        let source = match self.cfg.server.role {
            ServerRole::Edge => format!(
                "SMTP:Default internal receive connector {}",
                self.cfg.server.name
            ),
            ServerRole::Mailbox => "FromLocal".to_string(),
        };
        self.message_snapshots()
            .into_iter()
            .zip(&self.messages)
            .map(|(s, m)| queue::MessageSnapshot {
                identity: s.identity,
                queue: s.queue,
                subject: s.subject,
                from_address: s.from_address,
                status: match s.status {
                    MessageQueueStatus::Active => queue::MessageStatus::Active,
                    MessageQueueStatus::Ready => queue::MessageStatus::Ready,
                    MessageQueueStatus::Retry => queue::MessageStatus::Retry,
                    MessageQueueStatus::Suspended => queue::MessageStatus::Suspended,
                },
                size_bytes: Some(s.size),
                message_source_name: source.clone(),
                source_ip: "127.0.0.1".to_string(),
                scl: Some(-1),
                date_received: Some(s.date_received),
                expiration_time: Some(s.expiration_time),
                last_error: s.last_error,
                retry_count: s.retry_count,
                recipients: s.recipients,
                internet_message_id: format!("<{}>", m.message.message_id),
            })
            .collect()
    }

    /// Everything the transport knows, as the files a real server gives at `now`: the send
    /// protocol log (only when the connector's ProtocolLoggingLevel is Verbose, as on a real
    /// server), the connectivity log, `Get-Queue`, `Get-Message`, both certificate listings (Status
    /// judged at `now`) and `Get-SendConnector`. Add the mock's records with
    /// [`ArtefactBundle::with_mock_records`] and certificates with [`Self::exported_certificates`];
    /// write it with [`ArtefactBundle::write_to`].
    pub fn artefact_bundle(&self, now: OffsetDateTime) -> ArtefactBundle {
        let verbose = self.cfg.connector.protocol_logging_level == ProtocolLoggingLevel::Verbose;
        ArtefactBundle {
            server: self.cfg.server.name.clone(),
            send_sessions: if verbose {
                self.sessions.iter().map(|r| r.log.clone()).collect()
            } else {
                Vec::new()
            },
            connectivity: self.connectivity.clone(),
            queues: vec![self.snapshot()],
            messages: self.message_rows(),
            certificates: self.store.listing_rows(now),
            send_connectors: vec![self.cfg.connector.listing_row(&self.cfg.server)],
            mock_records: None,
            inbound_connectors: None,
            ndrs: self.ndrs.clone(),
            exported_certificates: Vec::new(),
        }
    }

    /// The store's certificates as PEM, with their private keys when `with_keys` (the bundle
    /// writes key files mode 0600).
    pub fn exported_certificates(&self, with_keys: bool) -> Vec<ExportedCertificate> {
        self.store
            .my()
            .iter()
            .map(|e| ExportedCertificate {
                thumbprint: e.facts.thumbprint.clone(),
                cert_pem: e.cert_pem(),
                key_pem: if with_keys { e.key_pem() } else { None },
            })
            .collect()
    }

    /// The NDR the transport sends back for `m`.
    fn ndr_report(
        &self,
        m: &OutboundMessage,
        reply: &Reply,
        remote_mta: Option<String>,
        now: OffsetDateTime,
    ) -> hybridlab_artefacts::ndr::NdrReport {
        hybridlab_artefacts::ndr::NdrReport {
            internal_id: m.internal_id,
            server_fqdn: self.cfg.server.fqdn.clone(),
            sender: m.from.clone(),
            arrival: m.arrival,
            generated: now,
            subject: m.subject.clone(),
            original_message_id: m.message_id.clone(),
            recipients: m.to.clone(),
            reply: reply.clone(),
            remote_mta,
        }
    }

    fn record(&mut self, at: OffsetDateTime, record: TransportRecord) {
        self.records.push(TimedRecord { at, record });
    }

    /// When the transport wants to run next: a retry, a message retry, a delay DSN or an expiry.
    pub fn next_wakeup(&self) -> Option<OffsetDateTime> {
        if self.messages.is_empty() {
            return None;
        }
        let s = &self.cfg.settings;
        let mut t: Option<OffsetDateTime> = None;
        let mut consider = |x: OffsetDateTime| {
            t = Some(t.map_or(x, |y: OffsetDateTime| y.min(x)));
        };
        let suspended = self.status == QueueStatus::Suspended;
        if !suspended {
            consider(self.queue_ready_at());
        }
        for m in &self.messages {
            if let Some(n) = m.next_retry_time
                && !suspended
            {
                consider(n.max(self.queue_ready_at()));
            }
            consider(m.message.arrival + s.message_expiration_timeout.to_time());
            if s.delay_dsn_enabled && !m.delay_dsn_sent {
                consider(m.message.arrival + s.delay_notification_timeout.to_time());
            }
        }
        t
    }

    fn queue_ready_at(&self) -> OffsetDateTime {
        self.next_retry_time.unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    /// Expiry NDRs and delay DSNs due at `now`.
    pub fn on_time(&mut self, now: OffsetDateTime) {
        self.last_wakeup = now;
        let s = self.cfg.settings.clone();
        let mut i = 0;
        while i < self.messages.len() {
            let m = &self.messages[i];
            if now >= m.message.arrival + s.message_expiration_timeout.to_time() {
                let id = m.message.internal_id;
                let gone = self.messages.remove(i);
                let reply = synthetic::queue_expired();
                self.ndrs
                    .push(self.ndr_report(&gone.message, &reply, None, now));
                let rec = TransportRecord::Ndr {
                    internal_id: id,
                    reply,
                };
                self.done.push((id, rec.clone()));
                self.record(now, rec);
                continue;
            }
            if s.delay_dsn_enabled
                && !m.delay_dsn_sent
                && now >= m.message.arrival + s.delay_notification_timeout.to_time()
            {
                let id = m.message.internal_id;
                self.messages[i].delay_dsn_sent = true;
                self.record(now, TransportRecord::DelayDsn { internal_id: id });
            }
            i += 1;
        }
        if self.messages.is_empty() {
            self.status = QueueStatus::Ready;
            self.next_retry_time = None;
        }
    }

    /// The messages a session at `now` should carry (queue not in retry, message not waiting).
    pub fn due_messages(&self, now: OffsetDateTime) -> Vec<OutboundMessage> {
        if self.status == QueueStatus::Suspended || self.queue_ready_at() > now {
            return Vec::new();
        }
        self.messages
            .iter()
            .filter(|m| m.status != MessageQueueStatus::Suspended)
            .filter(|m| m.next_retry_time.is_none_or(|t| t <= now))
            .map(|m| m.message.clone())
            .collect()
    }

    /// Builds the session configuration for an attempt to `target` (and consumes the fallback flag).
    pub fn session_config(&mut self, target: Target, next_hop_domain: &str) -> SessionConfig {
        let id = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        let skip = std::mem::take(&mut self.fallback_next);
        self.status = QueueStatus::Active;
        let now = self.last_wakeup;
        let store = self.store_for_session(now);
        self.session_store = Some(store.clone());
        SessionConfig {
            connector: self.cfg.connector.clone(),
            server: self.cfg.server.clone(),
            store,
            selection: self.cfg.selection,
            schannel: self.cfg.schannel.clone(),
            session_id: hybridlab_model::x509::hex_upper(&id.to_be_bytes()),
            target,
            next_hop_domain: next_hop_domain.to_string(),
            skip_starttls: skip,
        }
    }

    fn schedule_connection_retry(&mut self, now: OffsetDateTime) {
        let s = &self.cfg.settings;
        let n = self.consecutive_failures;
        let glitch = match s.retry_interleaving {
            RetryInterleaving::GlitchThenTransient => s.queue_glitch_retry_count,
            RetryInterleaving::TransientOnly => 0,
        };
        let (interval, stage, status) = if n <= glitch {
            (s.queue_glitch_retry_interval, "glitch", QueueStatus::Retry)
        } else if n <= glitch + s.transient_failure_retry_count {
            (
                s.transient_failure_retry_interval,
                "transient",
                QueueStatus::Retry,
            )
        } else {
            (
                s.outbound_connection_failure_retry_interval,
                "long",
                QueueStatus::Retry,
            )
        };
        let next = now + interval.to_time();
        self.status = status;
        self.next_retry_time = Some(next);
        self.record(
            now,
            TransportRecord::RetryScheduled {
                next,
                stage: stage.into(),
            },
        );
    }

    fn last_error(&self, led: String, target: Option<&Target>, now: OffsetDateTime) -> LastError {
        LastError {
            led,
            msg: String::new(),
            fqdn: target.map(|t| t.host.clone()).unwrap_or_default(),
            ip: target.map(|t| t.addr.ip().to_string()).unwrap_or_default(),
            lrt: en_us_datetime(now),
        }
    }

    fn queue_failed(&mut self, le: LastError, now: OffsetDateTime) {
        self.consecutive_failures += 1;
        self.retry_count += 1;
        self.first_retry_time.get_or_insert(now);
        self.last_retry_time = Some(now);
        for m in &mut self.messages {
            m.status = MessageQueueStatus::Retry;
            m.last_error = Some(le.clone());
            m.retry_count += 1;
        }
        self.last_error = Some(le);
        self.schedule_connection_retry(now);
    }

    /// The next hop did not resolve.
    pub fn on_dns_failure(&mut self, failure: &DnsFailure, now: OffsetDateTime) {
        let reply = failure.reply();
        // the queue opens a connection attempt that ends at the lookup [U: lines reconstructed]
        let id = self.next_session;
        self.next_session = self.next_session.wrapping_add(1);
        let sid = hybridlab_model::x509::hex_upper(&id.to_be_bytes());
        let dest = self.next_hop_domain();
        let n = self.messages.len() as u32;
        let name = self.cfg.connector.name.clone();
        // the text without the status codes: `DNS query failed. The error was: ...`
        let text = reply
            .text()
            .split_once(' ')
            .filter(|(code, _)| code.contains('.'))
            .map_or(reply.text(), |(_, t)| t)
            .to_string();
        self.connectivity.extend([
            ConnectivityEvent::queue_start(now, &sid, &dest, &name, n),
            ConnectivityEvent::dns_failed(now, &sid, &dest, &text),
            ConnectivityEvent::summary(now, &sid, &dest, 0, 0, Some(&text)),
        ]);
        let led = wrap_led(
            self.cfg.server.version,
            &ErrorSource::Dns(&reply),
            SocketAddr::from(([0, 0, 0, 0], self.cfg.connector.port)),
        );
        self.record(now, TransportRecord::DnsFailed { led: led.clone() });
        let le = self.last_error(led, None, now);
        self.queue_failed(le, now);
    }

    /// The connectivity log lines of a finished session (before the queue changes).
    fn log_connectivity(&mut self, report: &SessionReport, now: OffsetDateTime) {
        use hybridlab_artefacts::protocol_log::SessionEvent;
        let sid = report.log.session_id.clone();
        let dest = self.next_hop_domain();
        let start = report.log.events.first().map_or(now, |e| e.at);
        let connected = report
            .log
            .events
            .iter()
            .find(|e| matches!(e.event, SessionEvent::Connected))
            .map(|e| e.at);
        let end = report.log.events.last().map_or(now, |e| e.at).max(start);
        let cross = self.cfg.connector.cloud_services_mail_enabled;
        let (mut sent, mut bytes) = (0u64, 0u64);
        let mut deferred: Option<&Reply> = None;
        for r in &report.messages {
            match &r.status {
                MessageStatus::Delivered { .. } => {
                    sent += 1;
                    bytes += self
                        .messages
                        .iter()
                        .find(|m| m.message.internal_id == r.internal_id)
                        .map_or(0, |m| m.message.wire(cross).len() as u64);
                }
                MessageStatus::Deferred { reply } => {
                    deferred.get_or_insert(reply);
                }
                _ => {}
            }
        }
        let detail = match (&report.failure, deferred) {
            _ if sent > 0 => None,
            (Some(f), _) => Some(format!("Retry : {}", f.ack.one_line())),
            (None, Some(r)) => Some(format!("Retry : {}", r.one_line())),
            (None, None) => None,
        };
        let n = self.messages.len() as u32;
        let name = &self.cfg.connector.name;
        let mut lines = vec![
            ConnectivityEvent::queue_start(start, &sid, &dest, name, n),
            ConnectivityEvent::dns_resolved(
                start,
                &sid,
                &dest,
                &report.target.host,
                &[report.target.addr.ip()],
            ),
        ];
        match (connected, &report.failure) {
            (Some(at), _) => lines.push(ConnectivityEvent::established(
                at,
                &sid,
                &dest,
                report.log.remote,
            )),
            (
                None,
                Some(SessionFailure {
                    kind: crate::sender::FailureKind::ConnectFailed { failure },
                    ..
                }),
            ) => lines.push(ConnectivityEvent::failed_connection(
                now,
                &sid,
                &dest,
                report.log.remote,
                &format!("{}:{}", failure.as_str(), failure.winsock_code()),
            )),
            _ => {}
        }
        let end = if connected.is_some() { end } else { now };
        lines.push(ConnectivityEvent::summary(
            end,
            &sid,
            &dest,
            sent,
            bytes,
            detail.as_deref(),
        ));
        self.connectivity.extend(lines);
    }

    /// A session finished.
    pub fn on_session(
        &mut self,
        report: SessionReport,
        fallback_plaintext: bool,
        now: OffsetDateTime,
    ) {
        let target = report.target.clone();
        self.log_connectivity(&report, now);
        let index = self.sessions.len();
        let store = self.session_store.take();
        if let Some(note) = self.pending_cache_note.take()
            && report.selection.is_some()
        {
            self.record(now, note);
        }
        self.cache_selection(&report, store);
        self.record(
            now,
            TransportRecord::Attempt {
                session: index,
                fallback_plaintext,
            },
        );
        let version = self.cfg.server.version;
        let mut delivered_any = false;
        let mut deferred: Option<Reply> = None;
        for r in &report.messages {
            let Some(pos) = self
                .messages
                .iter()
                .position(|m| m.message.internal_id == r.internal_id)
            else {
                continue;
            };
            match &r.status {
                MessageStatus::Delivered { reply } => {
                    delivered_any = true;
                    self.messages.remove(pos);
                    let rec = TransportRecord::Delivered {
                        internal_id: r.internal_id,
                        reply: reply.clone(),
                    };
                    self.done.push((r.internal_id, rec.clone()));
                    self.record(now, rec);
                }
                MessageStatus::Rejected { reply, local } => {
                    let gone = self.messages.remove(pos);
                    let remote = (!local).then(|| target.host.clone());
                    self.ndrs
                        .push(self.ndr_report(&gone.message, reply, remote, now));
                    let rec = TransportRecord::Ndr {
                        internal_id: r.internal_id,
                        reply: reply.clone(),
                    };
                    self.done.push((r.internal_id, rec.clone()));
                    self.record(now, rec);
                }
                MessageStatus::Deferred { reply } => {
                    let led = wrap_led(version, &ErrorSource::Response(reply), report.log.remote);
                    let le = self.last_error(led, Some(&target), now);
                    let next = now + self.cfg.settings.message_retry_interval.to_time();
                    let m = &mut self.messages[pos];
                    m.status = MessageQueueStatus::Retry;
                    m.retry_count += 1;
                    m.last_error = Some(le);
                    m.next_retry_time = Some(next);
                    deferred.get_or_insert(reply.clone());
                }
                MessageStatus::NotAttempted => {}
            }
        }
        match &report.failure {
            Some(f) if !delivered_any => {
                let led = wrap_led(version, &failure_source(f), report.log.remote);
                let le = self.last_error(led, Some(&target), now);
                if f.is_tls_negotiation_failure() && !self.cfg.connector.tls_required() {
                    self.fallback_next = true;
                }
                self.sessions.push(report);
                self.queue_failed(le, now);
                return;
            }
            _ => {}
        }
        self.sessions.push(report);
        if !delivered_any && let Some(reply) = deferred {
            // the connection worked, every message was deferred: the queue shows the reply and
            // waits MessageRetryInterval [U]
            let led = wrap_led(version, &ErrorSource::Response(&reply), target.addr);
            self.retry_count += 1;
            self.first_retry_time.get_or_insert(now);
            self.last_retry_time = Some(now);
            self.last_error = Some(self.last_error(led, Some(&target), now));
            let next = now + self.cfg.settings.message_retry_interval.to_time();
            self.status = QueueStatus::Retry;
            self.next_retry_time = Some(next);
            self.record(
                now,
                TransportRecord::RetryScheduled {
                    next,
                    stage: "message".into(),
                },
            );
            return;
        }
        // the connection worked
        self.consecutive_failures = 0;
        self.status = QueueStatus::Ready;
        self.last_error = None;
        self.retry_count = 0;
        self.first_retry_time = None;
        self.next_retry_time = None;
        for m in &mut self.messages {
            if m.next_retry_time.is_none() {
                m.status = MessageQueueStatus::Ready;
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------------------

/// How the driver reaches a target, and how the lab clock gets to the queue's next wake-up.
pub trait Deliver {
    /// Runs one session to `cfg.target` carrying `messages`.
    fn deliver(
        &mut self,
        cfg: SessionConfig,
        messages: Vec<OutboundMessage>,
        clock: &LabClock,
    ) -> impl Future<Output = SessionReport>;

    /// Brings the lab clock to `at` (the next retry, delay DSN, expiry or admin change). By
    /// default a tokio sleep: under a paused runtime time jumps there at once.
    fn wait_until(&mut self, clock: &LabClock, at: OffsetDateTime) -> impl Future<Output = ()> {
        let deadline = clock.instant_at(at);
        async move { tokio::time::sleep_until(deadline).await }
    }
}

/// Over TCP (the mock on loopback, Postfix, any SMTP server).
///
/// Sessions run in real time; between them the lab clock skips to the queue's next wake-up
/// ([`LabClock::skip_to`]) rather than sleeping, so a retry fifteen minutes later comes at once and
/// tokio's own clock is left alone.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpDeliver {
    /// Connect options (source address within 127.0.0.0/8).
    pub opts: ConnectOptions,
}

impl Deliver for TcpDeliver {
    async fn deliver(
        &mut self,
        cfg: SessionConfig,
        messages: Vec<OutboundMessage>,
        clock: &LabClock,
    ) -> SessionReport {
        let opts = self.opts;
        let fallback = cfg.clone();
        match deliver_tcp(cfg, messages.clone(), clock, opts).await {
            Ok(r) => r,
            Err(_) => {
                // a non-loopback source address: refused before connecting
                let mut m = SenderMachine::new(fallback, messages, clock.now());
                m.on_connect_failed(crate::resolver::ConnectFailure::Refused, clock.now());
                m.finish()
            }
        }
    }

    async fn wait_until(&mut self, clock: &LabClock, at: OffsetDateTime) {
        clock.skip_to(at);
    }
}

/// Over an in-memory stream: `connect` hands out the client end of a fresh duplex whose server end
/// it has given to an in-process server. Meant for a paused tokio clock: the driver sleeps to each
/// wake-up, which lets the server finish its side of a session before time moves on.
#[derive(Debug)]
pub struct MemoryDeliver<F> {
    /// Makes a connection.
    pub connect: F,
    /// The local endpoint the log shows.
    pub local: SocketAddr,
}

impl<F> Deliver for MemoryDeliver<F>
where
    F: FnMut() -> tokio::io::DuplexStream,
{
    async fn deliver(
        &mut self,
        cfg: SessionConfig,
        messages: Vec<OutboundMessage>,
        clock: &LabClock,
    ) -> SessionReport {
        let target = cfg.target.clone();
        let mut machine = SenderMachine::new(cfg, messages, clock.now());
        if let Some(f) = target.unreachable {
            machine.on_connect_failed(f, clock.now());
            return machine.finish();
        }
        let stream = (self.connect)();
        run_session(machine, stream, self.local, clock, 100_000).await
    }
}

/// What a caller adds to the delivery loop of [`drive`]: admin changes on the same clock, a check
/// before each session, and a look at the queue after each wake-up. Every method has a default
/// that does nothing, so [`NoHooks`] is the plain loop.
pub trait DriveHooks {
    /// Why the caller stops the run early (returned by [`drive`]).
    type Error;

    /// When the next admin change is due (`None`: no change left).
    fn next_change_at(&self) -> Option<OffsetDateTime> {
        None
    }

    /// Applies the change due at `now` (the one [`Self::next_change_at`] gave) to the transport.
    fn apply_change(&mut self, _transport: &mut Transport, _now: OffsetDateTime) {}

    /// How many changes are still to come (each is one more step of the loop's bound).
    fn pending_changes(&self) -> usize {
        0
    }

    /// Just before a session to `target` is configured; an error ends the run.
    ///
    /// # Errors
    /// Whatever the caller refuses (the lab refuses a target off loopback over TCP).
    fn before_attempt(&mut self, _target: &Target) -> Result<(), Self::Error> {
        Ok(())
    }

    /// After the transport took the report of the session to `target`.
    fn after_attempt(&mut self, _target: &Target) -> impl Future<Output = ()> {
        async {}
    }

    /// After a wake-up that tried the queue (a session or a DNS failure), at `now`, the time the
    /// wake-up began.
    fn after_wakeup(&mut self, _transport: &Transport, _now: OffsetDateTime) {}
}

/// The plain delivery loop: no admin changes, nothing observed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl DriveHooks for NoHooks {
    type Error = std::convert::Infallible;
}

/// The delivery loop: runs the transport until the queue is empty and no change is left, the lab
/// clock reaches `until`, or `max_steps` wake-ups (plus one per admin change) have happened.
///
/// Each step asks the transport when it wants to run ([`Transport::next_wakeup`]: all retry timing
/// lives there) and the hooks when their next change is due; a change at T happens before any
/// attempt at or after T. The clock moves through [`Deliver::wait_until`]. At a wake-up the
/// transport sends delay DSNs and expiry NDRs, resolves the next hop with `resolver`, and hands
/// the due messages to `deliver` for one session.
///
/// # Errors
/// Whatever [`DriveHooks::before_attempt`] refused; the loop stops there.
pub async fn drive<D: Deliver, H: DriveHooks>(
    transport: &mut Transport,
    resolver: &LabResolver,
    deliver: &mut D,
    clock: &LabClock,
    until: OffsetDateTime,
    max_steps: usize,
    hooks: &mut H,
) -> Result<(), H::Error> {
    for _ in 0..max_steps.saturating_add(hooks.pending_changes()) {
        let wake = transport.next_wakeup();
        if let Some(at) = hooks.next_change_at()
            && at <= until
            && wake.is_none_or(|w| at <= w)
        {
            deliver.wait_until(clock, at).await;
            hooks.apply_change(transport, clock.now());
            continue;
        }
        let Some(wake) = wake else {
            break;
        };
        if wake > until {
            deliver.wait_until(clock, until).await;
            break;
        }
        deliver.wait_until(clock, wake).await;
        let now = clock.now();
        transport.on_time(now);
        let due = transport.due_messages(now);
        if due.is_empty() {
            continue;
        }
        let domain = due[0].recipient_domain().to_string();
        let connector = transport.config().connector.clone();
        match resolver.next_hop(&connector, &domain) {
            Err(e) => transport.on_dns_failure(&e, now),
            Ok(targets) => {
                let Some(target) = targets.into_iter().next() else {
                    continue;
                };
                hooks.before_attempt(&target)?;
                let cfg = transport.session_config(target.clone(), &domain);
                let fallback = cfg.skip_starttls;
                let report = deliver.deliver(cfg, due, clock).await;
                transport.on_session(report, fallback, clock.now());
                hooks.after_attempt(&target).await;
            }
        }
        hooks.after_wakeup(transport, now);
    }
    Ok(())
}

/// [`drive`] without hooks: runs the transport until the queue is empty, the lab clock reaches
/// `until`, or `max_steps` wake-ups have happened.
pub async fn run_until<D: Deliver>(
    transport: &mut Transport,
    resolver: &LabResolver,
    deliver: &mut D,
    clock: &LabClock,
    until: OffsetDateTime,
    max_steps: usize,
) {
    let Ok(()) = drive(
        transport,
        resolver,
        deliver,
        clock,
        until,
        max_steps,
        &mut NoHooks,
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use hybridlab_model::exchange::synthetic;

    #[test]
    fn wrappers_by_version() {
        let ep: SocketAddr = "104.47.10.36:25".parse().unwrap();
        let timed_out = synthetic::connection_timed_out();
        assert_eq!(
            wrap_led(
                ExchangeVersion::Exchange2019,
                &ErrorSource::Response(&timed_out),
                ep
            ),
            "451 4.4.395 Target host responded with error. -> 421 4.4.1 Connection timed out"
        );
        let dropped = synthetic::connection_dropped();
        assert_eq!(
            wrap_led(
                ExchangeVersion::Exchange2016,
                &ErrorSource::Communication {
                    ack: &dropped,
                    winsock: None
                },
                ep
            ),
            "451 4.4.397 Error communicating with target host. -> 421 4.4.2 Connection dropped due to SocketError"
        );
        assert_eq!(
            wrap_led(
                ExchangeVersion::Exchange2013,
                &ErrorSource::Response(&timed_out),
                ep
            ),
            "451 4.4.0 Primary target IP address responded with: \"421 4.4.1 Connection timed out.\" Attempted failover to alternate host, but that did not succeed. Either there are no alternate hosts, or delivery failed to all alternate hosts. The last endpoint attempted was 104.47.10.36:25"
        );
        let unable = synthetic::unable_to_connect();
        assert_eq!(
            wrap_led(
                ExchangeVersion::Exchange2010,
                &ErrorSource::Communication {
                    ack: &unable,
                    winsock: Some(10060)
                },
                ep
            ),
            "441 4.4.1 Error encountered while communicating with primary target IP address: \"Failed to connect. Winsock error code: 10060, Win32 error code: 10060.\" Attempted failover to alternate host, but that did not succeed. Either there are no alternate hosts, or delivery failed to all alternate hosts. The last endpoint attempted was 104.47.10.36:25"
        );
        assert_eq!(
            wrap_led(
                ExchangeVersion::ExchangeSe,
                &ErrorSource::Communication {
                    ack: &unable,
                    winsock: Some(10060)
                },
                ep
            ),
            "451 4.4.397 Error communicating with target host. -> 421 4.2.1 Unable to connect"
        );
        let dns = DnsFailure::NonExistentDomain { name: "x".into() }.reply();
        assert_eq!(
            wrap_led(ExchangeVersion::Exchange2019, &ErrorSource::Dns(&dns), ep),
            "451 4.4.0 DNS query failed. The error was: SMTPSEND.DNS.NonExistentDomain; nonexistent domain"
        );
    }
}
