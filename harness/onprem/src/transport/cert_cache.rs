//! The certificate cache: the transport keeps the certificate it selected by `TlsCertificateName`
//! keyed by the identifier (FM-34), so a store change does not reach a cached selection until the
//! service restarts.

use std::sync::Arc;

use hybridlab_artefacts::protocol_log::SessionEvent;
use time::OffsetDateTime;

use super::{CertificateCache, Transport, TransportRecord};
use crate::certstore::CertStore;
use crate::selection::{SelectionOutcome, SelectionPath};
use crate::sender::SessionReport;

/// One selection the transport keeps in its certificate cache.
#[derive(Debug, Clone)]
pub struct CachedCertificate {
    /// The `<I>issuer<S>subject` identifier it is cached under.
    pub identifier: String,
    /// The thumbprint of the certificate the cache holds for it.
    pub thumbprint: String,
    /// When the transport selected it.
    pub selected_at: OffsetDateTime,
    /// The store as it was then: a session that hits the cache selects from it.
    store: Arc<CertStore>,
}

impl Transport {
    /// The selections the certificate cache holds.
    pub fn cached_certificates(&self) -> &[CachedCertificate] {
        &self.cert_cache
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
    pub(super) fn store_for_session(&mut self, now: OffsetDateTime) -> Arc<CertStore> {
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
    pub(super) fn cache_selection(
        &mut self,
        report: &SessionReport,
        store: Option<Arc<CertStore>>,
    ) {
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
                .find(|e| matches!(e.event, SessionEvent::Certificate { .. }))
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
}
