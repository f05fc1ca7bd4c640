//! What an admin does while the queue runs: certificate store changes, `Set-SendConnector`,
//! `Restart-Service MSExchangeTransport`, `Suspend-Queue`/`Resume-Queue`/`Retry-Queue`. Each
//! recorded action is a [`TransportRecord::AdminChange`] on the timeline.

use std::sync::Arc;

use hybridlab_artefacts::queue::MessageStatus;
use hybridlab_model::exchange::QueueStatus;
use time::OffsetDateTime;

use super::{Transport, TransportRecord};
use crate::certstore::{CertStore, StoreEntry};
use crate::connector::SendConnector;

impl Transport {
    /// Replaces the certificate store (an admin removed the key-less twin and restarted transport):
    /// the certificate cache is cleared too. For a store change without a restart use
    /// [`Self::remove_certificate`] / [`Self::install_certificate`].
    pub fn set_store(&mut self, store: Arc<CertStore>) {
        self.store = store;
        self.cert_cache.clear();
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
            if m.status != MessageStatus::Suspended {
                m.status = MessageStatus::Ready;
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
}
