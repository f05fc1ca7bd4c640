//! STARTTLS on the receive side: the `220 2.0.0 SMTP server ready`, the certificate block of the
//! certificate presented, the handshake result the driver reports (SChannel's success line, or
//! `TLS negotiation failed with error <status>`), and, at the first EHLO after TLS, the client
//! certificate judged for `TlsDomainCapabilities`, logged as Exchange's code logs it:
//!
//! - no certificate: `Client certificate chain validation status: 'EmptyCertificate'` then
//!   `TlsDomainCapabilities='None'; Status='NoRemoteCertificate'`;
//! - a valid chain: the certificate block, then `TlsDomainCapabilities='<caps>'; Status='Success';
//!   Domain='<domain>'` (`'None'` and an empty domain when no entry matches its name);
//! - an invalid chain: `Client certificate chain validation status: '<status>'`; if an entry
//!   matches its name, event 11022 and no status line; otherwise `TlsDomainCapabilities='None';
//!   Status='Success'; Domain=''`.

use hybridlab_artefacts::protocol_log::{CertRole, SessionEvent};
use hybridlab_model::core::ProtocolCore;
use hybridlab_model::exchange::{DisconnectReason, SecurityStatus};
use hybridlab_model::reply::Reply;
use hybridlab_model::x509::CertFacts;
use rustls_pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{CloseReason, Phase, ReceiveAction, ReceiveSession};
use crate::connector::Capability;
use crate::events::{self, EventOrigin};
use crate::tls::{ChainStatus, TlsPlan, judge_client_chain, schannel_server_text};

/// What the driver reports after a completed handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsHandshake {
    /// rustls' version name (`TLSv1_2`).
    pub protocol: String,
    /// rustls' suite name (`TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384`).
    pub cipher_suite: String,
    /// The key-exchange group (`secp384r1`, `X25519`), when known.
    pub kx_group: Option<String>,
    /// The client's chain, leaf first (empty: no client certificate).
    pub client_chain: Vec<CertificateDer<'static>>,
}

/// The client certificate as the session judged it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientCertificateFacts {
    /// The leaf.
    pub leaf: CertFacts,
    /// Exchange's chain status.
    pub chain_status: ChainStatus,
}

/// TLS as the session knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionTls {
    /// rustls' version name.
    pub protocol: String,
    /// rustls' suite name.
    pub cipher_suite: String,
    /// The certificate the server presented.
    pub server_certificate: Option<CertFacts>,
    /// The client certificate, if one was sent.
    pub client_certificate: Option<ClientCertificateFacts>,
    /// Capabilities granted by `TlsDomainCapabilities` (empty: none).
    pub capabilities: Vec<Capability>,
    /// The domain entry that granted them.
    pub capability_domain: Option<String>,
}

impl ReceiveSession {
    pub(super) fn starttls(&mut self) {
        if !self.connector.offers_starttls() {
            return self.protocol_error(Reply::new(
                454,
                "4.7.0 TLS not available due to temporary reason",
            ));
        }
        if self.tls.is_some() {
            return self.protocol_error(Reply::new(
                503,
                "5.5.2 Only one STARTTLS command can be issued per session",
            ));
        }
        self.reply(Reply::new(220, "2.0.0 SMTP server ready"));
        if let Some(cert) = self.connector.certificate.clone() {
            self.log(SessionEvent::Certificate {
                role: CertRole::Sending,
                cert,
            });
        }
        // RFC 3207: what was said before TLS is forgotten.
        self.helo = None;
        self.txn = None;
        self.flush();
        let plan = if self.connector.tls_config.is_some() {
            TlsPlan::Handshake
        } else {
            TlsPlan::Refuse
        };
        self.actions.push_back(ReceiveAction::StartTls(plan));
        self.phase = Phase::AwaitingTls;
    }

    /// The handshake completed at `now`: logs the client's certificate (if any) and SChannel's
    /// success line; the chain is judged now, the capabilities at the next EHLO.
    pub fn handle_tls_established(&mut self, now: OffsetDateTime, hs: TlsHandshake) {
        self.advance(now);
        if !matches!(self.phase, Phase::AwaitingTls) {
            return;
        }
        let client_certificate = hs.client_chain.first().and_then(|leaf| {
            let facts = CertFacts::from_der(leaf).ok()?;
            Some(ClientCertificateFacts {
                leaf: facts,
                chain_status: judge_client_chain(&self.server.store, &hs.client_chain, self.cur),
            })
        });
        if let Some(c) = &client_certificate {
            self.log(SessionEvent::Certificate {
                role: CertRole::Remote,
                cert: c.leaf.clone(),
            });
        }
        self.log(SessionEvent::TlsNegotiated {
            text: schannel_server_text(&hs.protocol, &hs.cipher_suite, hs.kx_group.as_deref()),
        });
        self.tls = Some(SessionTls {
            protocol: hs.protocol,
            cipher_suite: hs.cipher_suite,
            server_certificate: self.connector.certificate.clone(),
            client_certificate,
            capabilities: Vec::new(),
            capability_domain: None,
        });
        self.client_chain = hs.client_chain;
        self.phase = Phase::Command;
        self.end_of_turn(true);
    }

    /// The handshake failed (or was refused) with SChannel `status`: the session ends.
    pub fn handle_tls_failed(&mut self, now: OffsetDateTime, status: SecurityStatus) {
        self.advance(now);
        if self.is_closed() {
            return;
        }
        self.log(SessionEvent::TlsFailed { status });
        let reason = if status.is_local() {
            DisconnectReason::Local
        } else {
            DisconnectReason::Remote(status.to_string())
        };
        self.close(CloseReason::TlsFailed, reason);
    }

    /// `TryDetermineTlsDomainCapabilities`: runs once, at the first EHLO after TLS.
    pub(super) fn judge_capabilities(&mut self) {
        self.capabilities_judged = true;
        let Some(tls) = self.tls.clone() else {
            return;
        };
        let Some(client) = &tls.client_certificate else {
            self.info("Client certificate chain validation status: 'EmptyCertificate'");
            self.info("TlsDomainCapabilities='None'; Status='NoRemoteCertificate'");
            return;
        };
        let valid = client.chain_status == ChainStatus::Valid;
        if valid {
            self.log(SessionEvent::Certificate {
                role: CertRole::Received,
                cert: client.leaf.clone(),
            });
        } else {
            self.info(&format!(
                "Client certificate chain validation status: '{}'",
                client.chain_status
            ));
        }
        let names = client.leaf.names();
        let entry = self.connector.connector.capabilities_for(&names).cloned();
        match (entry, valid) {
            (Some(entry), false) => {
                let caps = caps_text(&entry.capabilities);
                let origin = EventOrigin::for_role(
                    self.connector.connector.transport_role,
                    &self.server.fqdn,
                    self.cur,
                );
                self.windows_events
                    .push(events::tls_domain_capabilities_validation_failure(
                        &origin,
                        &caps,
                        &self.connector.connector.name,
                        client.chain_status.as_str(),
                        &entry.domain,
                    ));
            }
            (Some(entry), true) => {
                self.info(&format!(
                    "TlsDomainCapabilities='{}'; Status='Success'; Domain='{}'",
                    caps_text(&entry.capabilities),
                    entry.domain
                ));
                if let Some(t) = self.tls.as_mut() {
                    t.capabilities = entry.capabilities.clone();
                    t.capability_domain = Some(entry.domain);
                }
            }
            (None, _) => {
                self.info("TlsDomainCapabilities='None'; Status='Success'; Domain=''");
            }
        }
    }

    fn info(&mut self, context: &str) {
        self.log(SessionEvent::Info {
            data: String::new(),
            context: context.into(),
        });
    }
}

/// `AcceptCloudServicesMail` / `AcceptOorgProtocol, AcceptOorgHeader` (.NET flags rendering).
fn caps_text(caps: &[Capability]) -> String {
    caps.iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}
