//! The transport service around the sender: the delivery queue, retries on the virtual clock, delay
//! DSNs, expiry NDRs, the LastError wrapper by Exchange version, and the opportunistic fallback to
//! plain text.
//!
//! [`Transport`] is sans-IO: it is told the time and the sessions' results and says when it wants to
//! run next ([`Transport::next_wakeup`]). [`drive`] is the tokio driver, the one delivery loop: it
//! waits on the lab clock until the next wake-up, resolves the next hop with the
//! [`LabResolver`](crate::resolver::LabResolver), runs a session through a [`Deliver`]
//! implementation (TCP or an in-memory stream), and feeds the result back; [`DriveHooks`] add
//! admin changes and observation. Under a paused tokio clock two virtual days of retries pass in
//! milliseconds.
//!
//! An admin can act while the queue runs ([`Transport::remove_certificate`],
//! [`Transport::install_certificate`], [`Transport::set_send_connector`], [`Transport::restart`],
//! [`Transport::retry_now`]); each action is a [`TransportRecord::AdminChange`] on the timeline.
//! The transport keeps the certificate it selected by `TlsCertificateName` in a cache keyed by the
//! identifier ([`CertificateCache`], FM-34): store changes do not reach a cached selection until
//! the service restarts.
//!
//! # Layout
//! - this file: the [`Transport`] state and its plain accessors;
//! - `config`: [`TransportConfig`], [`CertificateCache`];
//! - `settings`: the `Set-TransportService` retry settings ([`TransportSettings`]);
//! - `queued`: the messages in the queue ([`QueuedMessage`]);
//! - `record`: the timeline ([`TransportRecord`], [`TimedRecord`]);
//! - `schedule`: retry timing, due messages, delay DSNs and expiry NDRs;
//! - `attempt`: a session's configuration and its report turned into queue state;
//! - `last_error`: the LastError wording by Exchange version ([`wrap_led`]);
//! - `cert_cache`: the certificate cache ([`CachedCertificate`]);
//! - `admin`: the admin's actions;
//! - `connectivity`: the connectivity log lines of a session;
//! - `listing`: `Get-Queue`, `Get-Message` and the artefact bundle;
//! - `driver`: [`drive`], [`Deliver`] ([`TcpDeliver`], [`MemoryDeliver`]), [`DriveHooks`].

use std::sync::Arc;

use hybridlab_artefacts::connectivity::ConnectivityEvent;
use hybridlab_artefacts::ndr::NdrReport;
use hybridlab_artefacts::queue::{LastError, MessageStatus};
use hybridlab_model::exchange::QueueStatus;
use time::OffsetDateTime;

use crate::certstore::CertStore;
use crate::message::OutboundMessage;
use crate::sender::SessionReport;

mod admin;
mod attempt;
mod cert_cache;
mod config;
mod connectivity;
mod driver;
mod last_error;
mod listing;
mod queued;
mod record;
mod schedule;
mod settings;

pub use cert_cache::CachedCertificate;
pub use config::{CertificateCache, TransportConfig};
pub use driver::{Deliver, DriveHooks, MemoryDeliver, NoHooks, TcpDeliver, drive, run_until};
pub use last_error::{ErrorSource, wrap_led};
pub use queued::QueuedMessage;
pub use record::{TimedRecord, TransportRecord};
pub use settings::{RetryInterleaving, TransportSettings};

/// The sans-IO transport: one delivery queue for one next hop.
#[derive(Debug)]
pub struct Transport {
    /// The server, connector, retry settings and knobs.
    cfg: TransportConfig,
    /// `LocalMachine\My` and the trust stores as they are now.
    store: Arc<CertStore>,
    /// The messages still queued, in submission order.
    messages: Vec<QueuedMessage>,
    /// The queue's `Get-Queue` Status.
    status: QueueStatus,
    /// The queue's LastError (cleared when a connection works).
    last_error: Option<LastError>,
    /// The queue's RetryCount: failed attempts since the last working connection.
    retry_count: u32,
    /// When the current run of failures began.
    first_retry_time: Option<OffsetDateTime>,
    /// The last failed attempt.
    last_retry_time: Option<OffsetDateTime>,
    /// When the queue tries again (`None`: as soon as a message is due).
    next_retry_time: Option<OffsetDateTime>,
    /// Connection failures in a row: the position in the retry schedule.
    consecutive_failures: u32,
    /// The next attempt skips STARTTLS (opportunistic fallback after a TLS failure).
    fallback_next: bool,
    /// The session id the next session gets.
    next_session: u64,
    /// Every session run so far.
    sessions: Vec<SessionReport>,
    /// What the transport did, in order (attempts, retries, DSNs, NDRs, admin changes).
    records: Vec<TimedRecord>,
    /// Messages that left the queue (delivered or NDR'd), by internal id.
    done: Vec<(u64, TransportRecord)>,
    /// The connectivity log lines so far.
    connectivity: Vec<ConnectivityEvent>,
    /// The NDRs sent back to senders.
    ndrs: Vec<NdrReport>,
    /// The certificate cache's selections.
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
            status: MessageStatus::Ready,
            retry_count: 0,
            last_error: None,
            next_retry_time: None,
            delay_dsn_sent: false,
        });
    }

    /// The store as it is now.
    pub fn store(&self) -> &Arc<CertStore> {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.cfg
    }

    /// Mutable configuration (an admin changes the connector).
    pub fn config_mut(&mut self) -> &mut TransportConfig {
        &mut self.cfg
    }

    /// Messages still queued.
    pub fn messages(&self) -> &[QueuedMessage] {
        &self.messages
    }

    /// Every session run so far.
    pub fn sessions(&self) -> &[SessionReport] {
        &self.sessions
    }

    /// What the transport did so far, in order (attempts, retries, DSNs, NDRs, admin changes).
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

    fn record(&mut self, at: OffsetDateTime, record: TransportRecord) {
        self.records.push(TimedRecord { at, record });
    }
}
